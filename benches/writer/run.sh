#!/usr/bin/env bash
# The writer benchmark (BENCHMARKS.md, "Writer (issue 12)"): every event fires
# one notification-only rule, so `herald run` spends its time in the single
# writer (replay record, firing row, notification row, stdout line).
#
#   benches/writer/run.sh [N]        # N events, default 1,000,000
#
# Environment: SEED (42), WORK (/tmp/herald-writer), REPEAT (1; the best wall
# time is reported), SKIP_BUILD=1, HERALD (a binary to measure instead of this
# tree's, e.g. a build of main for a before/after run), CALLGRIND=N (also
# count instructions with valgrind --tool=callgrind on the first N events:
# the stable figure on a shared machine).
#
# Checks that every event fired once and that the store holds one
# notification, one firing and one replay record per event.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-${N:-1000000}}
SEED=${SEED:-42}
WORK=${WORK:-/tmp/herald-writer}
REPEAT=${REPEAT:-1}
mkdir -p "$WORK"
cd "$ROOT"

if [ -z "${SKIP_BUILD:-}" ] && [ -z "${HERALD:-}" ]; then
    cargo build --release --bin herald
fi
HERALD=${HERALD:-$ROOT/target/release/herald}
POLICY=$ROOT/benches/writer/policy.herald
EVENTS=$WORK/events-$N-$SEED.ndjson
if [ ! -s "$EVENTS" ]; then
    echo "generating $N events (seed $SEED) into $EVENTS" >&2
    python3 benches/writer/gen.py -n "$N" --seed "$SEED" -o "$EVENTS.tmp"
    mv "$EVENTS.tmp" "$EVENTS"
fi
rm -f "$WORK"/base.db*
"$HERALD" db load --db "$WORK/base.db" examples/authentik/fixtures.json "$POLICY" > /dev/null
cat "$EVENTS" > /dev/null # page cache

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
best=
for ((i = 1; i <= REPEAT; i++)); do
    rm -f "$WORK"/run.db*
    cp "$WORK/base.db" "$WORK/run.db"
    /usr/bin/time -f "%e %M %U %S" -o "$WORK/time" \
        "$HERALD" run --quiet --db "$WORK/run.db" --events "$EVENTS" "$POLICY" > "$WORK/out" 2> "$WORK/err" || {
        echo "herald failed:" >&2
        tail -5 "$WORK/err" >&2
        exit 1
    }
    read -r secs kb user sys < "$WORK/time"
    echo "  run $i: $secs s wall, $user s user, $sys s sys, $((kb / 1024)) MB max RSS" >&2
    if [ -z "$best" ] || awk "BEGIN { exit !($secs < $best) }"; then best=$secs; fi
done
lines=$(wc -l < "$WORK/out")
counts=$(sqlite3 "$WORK/run.db" "SELECT (SELECT count(*) FROM herald_notification) || ' ' || (SELECT count(*) FROM herald_firing) || ' ' || (SELECT count(*) FROM herald_processed)" 2>/dev/null || echo "? ? ?")
echo "stdout lines $lines; notifications, firings, replay records: $counts" >&2
if [ "$lines" != "$N" ]; then
    echo "expected $N firings on stdout" >&2
    exit 1
fi
awk -v n="$N" -v s="$best" 'BEGIN { printf "%d firings in %.2f s: %.0f firings/s\n", n, s, n / s }'

if [ -n "${CALLGRIND:-}" ]; then
    head -n "$CALLGRIND" "$EVENTS" > "$WORK/cg.ndjson"
    rm -f "$WORK"/cg.db* "$WORK"/callgrind.out
    cp "$WORK/base.db" "$WORK/cg.db"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
        "$HERALD" run --quiet --threads 1 --db "$WORK/cg.db" --events "$WORK/cg.ndjson" "$POLICY" \
        > /dev/null 2> "$WORK/cg.err"
    total=$(grep -m1 '^summary:' "$WORK/callgrind.out" | awk '{ print $2 }')
    awk -v t="$total" -v n="$CALLGRIND" 'BEGIN { printf "callgrind: %d instructions for %d events: %.0f per event\n", t, n, t / n }'
fi
