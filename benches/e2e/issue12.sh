#!/usr/bin/env bash
# Decoder and matching throughput (issue 12, BENCHMARKS.md), side by side in one run:
#
#   benches/e2e/issue12.sh [N]      # N events per input, default 500,000
#
# Inputs (cached in $WORK, derived from benches/e2e/gen_events.py's events, seed 42):
#   events    the generator's mix (about 10% of events fire a reference rule)
#   unnamed   only `authorize_application` and `logout` events: types no rule names
#   nomatch   only `login` events from known devices: a type two rules and an
#             `after` clause name, whose conditions they never meet
# Policies: the reference rules (examples/authentik/*.herald) and the same plus 991
# generated rules over 30 types (benches/e2e/gen_rules.py: 1,000 rules).
# Runners: `wc -l` on each input, then `herald run --engine jit` for every binary in
# $BINS (default: target/release/herald; give the branch point's binary too for a
# before/after in the same session), REPEAT times each (default 3), alternating.
# Prints wall and CPU seconds (best of REPEAT) and the throughput relative to wc.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-${N:-500000}}
WORK=${WORK:-/tmp/herald-issue12}
REPEAT=${REPEAT:-3}
BINS=${BINS:-$ROOT/target/release/herald}
mkdir -p "$WORK"
cd "$ROOT"
EV=$WORK/events-$N.ndjson
if [ ! -s "$EV" ]; then
    python3 benches/e2e/gen_events.py -n "$N" --seed 42 -o "$EV.tmp" --fixtures "$WORK/fixtures.json"
    mv "$EV.tmp" "$EV"
fi
python3 - "$EV" "$N" "$WORK" <<'PY'
import os, sys
src, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = [l for l in open(src, "rb").read().split(b"\n") if l]
pick = {
    "unnamed": [l for l in lines if b'"action":"authorize_application"' in l or b'"action":"logout"' in l],
    "nomatch": [l for l in lines if b'"action":"login"' in l and b'"known_device":true' in l],
}
for name, ls in pick.items():
    out = os.path.join(work, f"{name}-{n}.ndjson")
    if not os.path.exists(out):
        with open(out, "wb") as f:
            for i in range(n):
                f.write(ls[i % len(ls)] + b"\n")
PY
python3 benches/e2e/gen_rules.py -o "$WORK/rules1000.herald"
FIRST=${BINS%% *}
rm -f "$WORK"/base.db*
"$FIRST" db load --db "$WORK/base.db" "$WORK/fixtures.json" >&2
REF=("$ROOT"/examples/authentik/*.herald)
RESULTS=$WORK/results.tsv
: > "$RESULTS"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for input in unnamed nomatch events; do
    f=$WORK/$input-$N.ndjson
    [ "$input" = events ] && f=$EV
    cat "$f" > /dev/null
    for ((i = 1; i <= REPEAT; i++)); do
        /usr/bin/time -f "%e %U %S" -o "$WORK/t" wc -l "$f" > /dev/null
        echo "$input wc - $(cat "$WORK/t")" >> "$RESULTS"
        for bin in $BINS; do
            for set in 5 1000; do
                pol=("${REF[@]}")
                [ "$set" = 1000 ] && pol+=("$WORK/rules1000.herald")
                rm -f "$WORK"/run.db*
                cp "$WORK/base.db" "$WORK/run.db"
                /usr/bin/time -f "%e %U %S" -o "$WORK/t" "$bin" run --engine jit --quiet --db "$WORK/run.db" \
                    --events "$f" "${pol[@]}" > /dev/null 2> /dev/null
                echo "$input $bin $set $(cat "$WORK/t")" >> "$RESULTS"
            done
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$RESULTS" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    p = line.split()
    if p[1] == "wc":
        key = (p[0], "wc", "-")
        wall, cpu = float(p[3]), float(p[4]) + float(p[5])
    else:
        key = (p[0], p[1], p[2])
        wall, cpu = float(p[3]), float(p[4]) + float(p[5])
    if key not in best or wall < best[key][0]:
        best[key] = (wall, cpu)
print(f"{'input':<9} {'runner':<48} {'rules':>5} {'wall s':>7} {'CPU s':>7} {'x wc':>6}")
for key, (wall, cpu) in sorted(best.items()):
    wc = best[(key[0], "wc", "-")][0]
    print(f"{key[0]:<9} {key[1][-48:]:<48} {key[2]:>5} {wall:>7.2f} {cpu:>7.2f} {wc / max(wall, 1e-9):>6.2f}")
PY
