#!/usr/bin/env bash
# Many workers on one PostgreSQL source (BENCHMARKS.md, "Many workers").
#
#   benches/workers/run.sh [N]        (default 200000 events)
#
# Generates N authentik-like events (benches/e2e/gen_events.py, seed 42)
# into authentik's event table on the test cluster (scripts/postgres.sh),
# then times, on the same events and the same policies, one after another:
#   sqlite   one worker, SQLite store          (`run --source`, to the end)
#   pg       one worker, PostgreSQL store      (the same, `--db postgres://`)
#   pg-1/2/3 1, 2, 3 workers, `--partitions 16 --follow`, until every
#            partition's newest event is recorded in its cursor
# POLICY_FILES (default: the five reference rules) names the policies.
# Each PostgreSQL configuration starts from an empty `herald` schema with
# the generator's fixtures loaded. Prints events/s per configuration.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}
PARTS=${PARTS:-16}
POLICY_FILES=${POLICY_FILES:-"examples/authentik/welcome_email.herald examples/authentik/unknown_device_login.herald examples/authentik/archive_ssh_keys.herald examples/authentik/application_without_bindings.herald examples/authentik/group_addition_history.herald"}
WORK=${WORK:-/tmp/herald-bench-workers}
mkdir -p "$WORK"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin herald --example partition_sql
H=target/release/herald
BASE=$(scripts/postgres.sh start | tail -1)
BASE=${BASE%/*}
SRC=$BASE/bench_workers

python3 benches/e2e/gen_events.py -n "$N" --seed 42 -o "$WORK/events.ndjson" --fixtures "$WORK/fixtures.json"
psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS bench_workers" -c "CREATE DATABASE bench_workers"
psql -q "$SRC" -f ../shared/reference/authentik-postgres.sql >/dev/null
# Lines as they are: CSV with quote and delimiter bytes that never occur.
psql -q "$SRC" <<SQL
CREATE TEMP TABLE raw (j text);
\copy raw (j) FROM '$WORK/events.ndjson' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
INSERT INTO authentik_events_event (event_uuid, action, app, context, client_ip, created, "user", expires, expiring, brand)
SELECT (j::jsonb->>'event_uuid')::uuid, j::jsonb->>'action', j::jsonb->>'app', j::jsonb->'context',
       (j::jsonb->>'client_ip')::inet, (j::jsonb->>'created')::timestamptz, j::jsonb->'user',
       (j::jsonb->>'expires')::timestamptz, true, coalesce(j::jsonb->'brand', '{}'::jsonb)
FROM raw;
ANALYZE authentik_events_event;
SQL
EXPR=$(target/release/examples/partition_sql "$PARTS")
LAST=$(psql -tA "$SRC" -c "SELECT string_agg(quote_literal(u), ',') FROM (SELECT DISTINCT ON (part) part, event_uuid::text AS u
  FROM (SELECT $EXPR AS part, e.event_uuid, e.created FROM authentik_events_event e) x ORDER BY part, created DESC, event_uuid DESC) y")
NPARTS=$(psql -tA "$SRC" -c "SELECT count(DISTINCT $EXPR) FROM authentik_events_event e")

fresh_pg() {
    psql -q "$SRC" -c "DROP SCHEMA IF EXISTS herald CASCADE" 2>/dev/null
    $H db load --db "$SRC" "$WORK/fixtures.json" 2>/dev/null
}
now() { date +%s.%N; }
# Busy CPU seconds of the whole machine (every core; /proc/stat ticks), and
# the CPU seconds of this script's finished children (herald): the server's
# share is the difference, as nothing else runs during the benchmark.
busy() { awk '/^cpu /{print ($2+$3+$4+$7+$8)/100}' /proc/stat; }
# Each herald process runs under /usr/bin/time, appending "user sys" to $CPU.
CPU=$WORK/cpu.txt
T="/usr/bin/time -a -o $CPU -f %U+%S"
kids() { [ -s "$CPU" ] && paste -sd+ "$CPU" | bc || echo 0; }
mark() { B0=$(busy); K0=$(kids); }
report() { # name seconds
    local b k
    b=$(echo "$(busy) - $B0" | bc); k=$(echo "$(kids) - $K0" | bc)
    printf "%-8s %8.2f s %10.0f events/s  CPU: herald %6.2f s, server and rest %6.2f s  (load %s)\n" \
        "$1" "$2" "$(echo "$N / $2" | bc -l)" "$k" "$(echo "$b - $k" | bc)" "$(cut -d' ' -f1 /proc/loadavg)"
}

# One worker, to the end of the table.
rm -f "$WORK/bench.db"* "$CPU"
$H db load --db "$WORK/bench.db" "$WORK/fixtures.json" 2>/dev/null
mark; t0=$(now); $T $H run --quiet --db "$WORK/bench.db" --source "$SRC" $POLICY_FILES >/dev/null 2>"$WORK/sqlite.err"; t1=$(now)
report sqlite "$(echo "$t1 - $t0" | bc)"
fresh_pg
mark; t0=$(now); $T $H run --quiet --db "$SRC" --source "$SRC" $POLICY_FILES >/dev/null 2>"$WORK/pg.err"; t1=$(now)
report pg "$(echo "$t1 - $t0" | bc)"

for W in ${WORKERS:-1 2 3}; do
    fresh_pg
    pids=()
    mark; t0=$(now)
    for i in $(seq 1 "$W"); do
        $T $H run --quiet --db "$SRC" --source "$SRC" --follow --partitions "$PARTS" --worker-id "bench$i" \
            $POLICY_FILES >/dev/null 2>"$WORK/w$W-$i.err" &
        pids+=($!)
    done
    until [ "$(psql -tA "$SRC" -c "SELECT count(DISTINCT event_uuid) FROM herald.herald_source_event WHERE event_uuid IN ($LAST)" 2>/dev/null || echo 0)" = "$NPARTS" ]; do
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "worker $p died:"; cat "$WORK"/w$W-*.err; exit 1; }; done
        sleep 0.05
    done
    t1=$(now)
    # The pids are /usr/bin/time's: signal the herald under each.
    for p in "${pids[@]}"; do pkill -TERM -P "$p" || true; done
    wait "${pids[@]}" || true
    # (herald's CPU includes its shutdown; the wall time stops before it.)
    report "pg-$W" "$(echo "$t1 - $t0" | bc)"
done
