#!/usr/bin/env bash
# The PostgreSQL store benchmark (BENCHMARKS.md, "SQLite and PostgreSQL
# stores" and "PostgreSQL batched writes"): one `herald run` of the same input
# and policy on a SQLite file and on PostgreSQL, the summary's events/s.
#
#   benches/pg/run.sh                 # load `core`, 2,200 copies of the example events
#   LOAD=notify benches/pg/run.sh 100000
#
# Loads: `core` (default; N copies of the 46 example events, default 2,200,
# with benches/pg/core.herald: logs, emails, rule errors, a window and a
# throttle, no entity access) and `notify` (N `login_failed` events, default
# 100,000, with benches/writer/policy.herald: one notification per event,
# recipients from the example fixtures).
#
# Environment: PG_URL (a server whose user may create databases; default: a
# private cluster with fsync on, started here through scripts/postgres.sh in
# /tmp/herald-pg-bench on port 54343 and left running), HERALD (the binary;
# default this tree's release build), HERALD_BEFORE (another binary, e.g. a
# build of main, measured in the same session), COMPARE (more binaries, as
# space-separated LABEL:PATH pairs), REPEAT (runs per store and
# binary, default 1; each is printed), SKIP_BUILD=1, WORK (/tmp/herald-pg-bench-work).
#
# Each PostgreSQL run gets a database of its own (dropped afterwards); the
# firing lines on stdout must be the same for every store and binary.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LOAD=${LOAD:-core}
case "$LOAD" in
    core) N=${1:-${N:-2200}}; POLICY=$ROOT/benches/pg/core.herald; FIXTURES= ;;
    notify) N=${1:-${N:-100000}}; POLICY=$ROOT/benches/writer/policy.herald; FIXTURES=$ROOT/examples/authentik/fixtures.json ;;
    *) echo "LOAD is core or notify" >&2; exit 2 ;;
esac
WORK=${WORK:-/tmp/herald-pg-bench-work}
REPEAT=${REPEAT:-1}
mkdir -p "$WORK"
cd "$ROOT"

if [ -z "${SKIP_BUILD:-}" ] && [ -z "${HERALD:-}" ]; then
    cargo build --release --bin herald
fi
HERALD=${HERALD:-$ROOT/target/release/herald}
if [ -z "${PG_URL:-}" ]; then
    PG_URL=$(HERALD_PG_FSYNC=on HERALD_PG_DIR=/tmp/herald-pg-bench HERALD_PG_PORT=54343 scripts/postgres.sh start | tail -1)
fi
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$PG_URL" "$@"; }

EVENTS=$WORK/$LOAD-$N.ndjson
if [ ! -s "$EVENTS" ]; then
    python3 benches/pg/gen.py --load "$LOAD" -n "$N" -o "$EVENTS.tmp"
    mv "$EVENTS.tmp" "$EVENTS"
fi
cat "$EVENTS" > /dev/null # page cache
echo "load $LOAD: $(wc -l < "$EVENTS") events, policy $(basename "$POLICY")" >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "server: $(psql_admin -At -c 'SHOW server_version') fsync=$(psql_admin -At -c 'SHOW fsync') synchronous_commit=$(psql_admin -At -c 'SHOW synchronous_commit')" >&2

# run LABEL BINARY DB: one run; prints "LABEL: events/s" from the summary.
run() {
    local label=$1 bin=$2 db=$3
    if [ -n "$FIXTURES" ]; then
        "$bin" db load --db "$db" "$FIXTURES" "$POLICY" > /dev/null
    fi
    "$bin" run --db "$db" --events "$EVENTS" "$POLICY" > "$WORK/out" 2> "$WORK/err" || {
        echo "$label: herald failed:" >&2
        tail -5 "$WORK/err" >&2
        exit 1
    }
    local summary
    summary=$(grep -E '^herald: [0-9]+ events in' "$WORK/err" | tail -1)
    if [ -f "$WORK/first.out" ]; then
        cmp -s "$WORK/out" "$WORK/first.out" || { echo "$label: other firing lines than the first run" >&2; exit 1; }
    else
        cp "$WORK/out" "$WORK/first.out"
    fi
    echo "$label: $summary ($(wc -l < "$WORK/out") firing lines)"
}

rm -f "$WORK/first.out"
base=${PG_URL%/*}
for ((i = 1; i <= REPEAT; i++)); do
    rm -f "$WORK"/run.db*
    run "sqlite" "$HERALD" "$WORK/run.db"
    # shellcheck disable=SC2086 # COMPARE is a list
    for pair in ${HERALD_BEFORE:+"before:$HERALD_BEFORE"} ${COMPARE:-} "this:$HERALD"; do
        label=${pair%%:*} bin=${pair#*:}
        name="herald_bench_$$_${i}_$label"
        psql_admin -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
        run "postgres ($label)" "$bin" "$base/$name"
        psql_admin -c "DROP DATABASE $name WITH (FORCE)"
    done
done
