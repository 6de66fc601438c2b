#!/usr/bin/env bash
# `herald serve` under load, with `herald run` on the same events as the
# baseline, in one session (BENCHMARKS.md, "herald serve"):
#
#   benches/serve/run.sh [N]        # N events (default 200,000)
#
# Generates N authentik-like events and their fixtures (benches/e2e/gen_events.py,
# seeded), then on a fresh copy of the fixture store each time:
#   run       herald run --events FILE with the five examples/authentik policies
#   serve/C   herald serve with the same policies; benches/serve/load.rs posts the
#             events in NDJSON batches of $BATCH from C concurrent clients and reports
#             events/s acknowledged, the time until all were processed, and p50/p99
#             from acknowledgment to the firing row.
# Environment: SEED (42), WORK (/tmp/herald-serve-bench), CLIENTS ("1 4 16"),
# BATCH (100), SKIP_BUILD=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-${N:-200000}}
SEED=${SEED:-42}
WORK=${WORK:-/tmp/herald-serve-bench}
CLIENTS=${CLIENTS:-1 4 16}
BATCH=${BATCH:-100}
mkdir -p "$WORK"
cd "$ROOT"
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --bin herald --example serve_load
fi
HERALD=$ROOT/target/release/herald
LOAD=$ROOT/target/release/examples/serve_load
POLICIES=("$ROOT"/examples/authentik/*.herald)
EVENTS=$WORK/events-$N-$SEED.ndjson
FIXTURES=$WORK/fixtures-$SEED.json
if [ ! -s "$EVENTS" ] || [ ! -s "$FIXTURES" ]; then
    python3 benches/e2e/gen_events.py -n "$N" --seed "$SEED" -o "$EVENTS.tmp" --fixtures "$FIXTURES"
    mv "$EVENTS.tmp" "$EVENTS"
fi
rm -f "$WORK"/base.db*
"$HERALD" db load --db "$WORK/base.db" "$FIXTURES" >&2 2>/dev/null
fresh() { rm -f "$WORK"/run.db*; cp "$WORK/base.db" "$WORK/run.db"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
fresh
start=$(date +%s.%N)
"$HERALD" run --quiet --db "$WORK/run.db" --events "$EVENTS" "${POLICIES[@]}" > /dev/null
end=$(date +%s.%N)
fired=$(python3 -c "import sqlite3;print(sqlite3.connect('$WORK/run.db').execute('select count(*) from herald_firing').fetchone()[0])")
python3 -c "print(f'run\tevents=$N\tseconds={$end-$start:.2f}\tper_s={$N/($end-$start):.0f}\tfirings=$fired')"

echo "bench-token" > "$WORK/token"
for c in $CLIENTS; do
    fresh
    "$HERALD" serve --listen 127.0.0.1:0 --db "$WORK/run.db" --token-file "$WORK/token" "${POLICIES[@]}" \
        > /dev/null 2> "$WORK/serve.log" &
    pid=$!
    port=""
    for _ in $(seq 100); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/serve.log" | grep -o '[0-9]*$' || true)
        [ -n "$port" ] && break
        sleep 0.1
    done
    "$LOAD" "$port" bench-token "$EVENTS" "$c" "$BATCH" "$WORK/run.db"
    kill -TERM "$pid"
    wait "$pid"
    fired=$(python3 -c "import sqlite3;print(sqlite3.connect('$WORK/run.db').execute('select count(*) from herald_firing').fetchone()[0])")
    echo "serve/$c firings=$fired"
done
