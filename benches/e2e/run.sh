#!/usr/bin/env bash
# End-to-end benchmark of `herald run` against baselines, all in one session on the
# same input (BENCHMARKS.md):
#
#   benches/e2e/run.sh [N]          # N events, default 1,000,000
#
# Steps: build release (herald + the match_count oracle), generate N authentik-like
# events (benches/e2e/gen_events.py, seeded; cached in $WORK), then time each runner
# with /usr/bin/time (wall time, max RSS):
#   wc        `wc -l` (a plain byte scan: the floor for reading the file)
#   jit       herald run --engine jit    (five examples/authentik policies, fresh SQLite
#             store with fixtures, --quiet; the interpreter until src/jit lands)
#   interp    herald run --engine interp
#   jaq       jaq with benches/e2e/match.jq (the five rules' match clauses)
#   python    benches/e2e/match.py (json.loads + the same conditions)
#   jq        jq with match.jq (only when RUNNERS includes it: slow)
# and check that jaq, Python and Herald's own matcher (match_count) select the same
# events per rule, and that both engines fire the same rules.
#
# Environment: SEED (42), WORK (/tmp/herald-bench), THREADS (herald --threads; default
# one per core), POLICY_FILES (default: every examples/authentik policy), RUNNERS ("wc jit interp jaq python"), SKIP_BUILD=1, REPEAT (1: runs of
# each runner, the best wall time is reported), JAQ (path of jaq).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-${N:-1000000}}
SEED=${SEED:-42}
WORK=${WORK:-/tmp/herald-bench}
RUNNERS=${RUNNERS:-wc jit interp jaq python}
REPEAT=${REPEAT:-1}
mkdir -p "$WORK"
cd "$ROOT"

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --bin herald --example match_count
fi
HERALD=$ROOT/target/release/herald
MATCH_COUNT=$ROOT/target/release/examples/match_count
if [ -z "${JAQ:-}" ]; then
    if [ -x "$HOME/.cargo/bin/jaq" ]; then JAQ=$HOME/.cargo/bin/jaq; else JAQ=$(command -v jaq || true); fi
fi
# POLICY_FILES (space-separated paths) narrows the policies, e.g. to the five
# reference rules the jq and Python baselines implement.
if [ -n "${POLICY_FILES:-}" ]; then
    read -ra POLICIES <<< "$POLICY_FILES"
else
    POLICIES=("$ROOT"/examples/authentik/*.herald)
fi

EVENTS=$WORK/events-$N-$SEED.ndjson
FIXTURES=$WORK/fixtures-$SEED.json
if [ ! -s "$EVENTS" ] || [ ! -s "$FIXTURES" ]; then
    echo "generating $N events (seed $SEED) into $EVENTS" >&2
    python3 benches/e2e/gen_events.py -n "$N" --seed "$SEED" -o "$EVENTS.tmp" --fixtures "$FIXTURES"
    mv "$EVENTS.tmp" "$EVENTS"
fi
# A store with the fixtures, copied fresh for every herald run.
rm -f "$WORK"/base.db*
"$HERALD" db load --db "$WORK/base.db" "$FIXTURES" >&2
cat "$EVENTS" > /dev/null # page cache

RESULTS=$WORK/results.tsv
: > "$RESULTS"
# measure NAME CMD... : run REPEAT times, record the best wall time and its max RSS.
measure() {
    local name=$1
    shift
    local i
    for ((i = 1; i <= REPEAT; i++)); do
        if [ "$name" = jit ] || [ "$name" = interp ]; then
            rm -f "$WORK"/run.db*
            cp "$WORK/base.db" "$WORK/run.db"
        fi
        /usr/bin/time -f "%e %M %U %S" -o "$WORK/$name.time" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || {
            echo "$name failed:" >&2
            tail -5 "$WORK/$name.err" >&2
            exit 1
        }
        echo "$name $(cat "$WORK/$name.time")" >> "$RESULTS"
        echo "  $name run $i: $(cat "$WORK/$name.time") (wall s, max RSS KB, user s, sys s)" >&2
    done
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $RUNNERS; do
    case $r in
    wc) measure wc wc -l "$EVENTS" ;;
    jit | interp)
        args=(run --engine "$r" --quiet --db "$WORK/run.db" --events "$EVENTS")
        if [ -n "${THREADS:-}" ]; then args+=(--threads "$THREADS"); fi
        measure "$r" "$HERALD" "${args[@]}" "${POLICIES[@]}"
        ;;
    jaq)
        if [ -z "$JAQ" ]; then
            echo "jaq: not installed (looked for ~/.cargo/bin/jaq and jaq on PATH): skipped" >&2
            continue
        fi
        measure jaq "$JAQ" -r -f benches/e2e/match.jq "$EVENTS"
        ;;
    jq)
        measure jq jq -r -f benches/e2e/match.jq "$EVENTS"
        ;;
    python) measure python python3 benches/e2e/match.py "$EVENTS" ;;
    *)
        echo "unknown runner $r" >&2
        exit 2
        ;;
    esac
done

echo "counting matches with Herald's matcher (match_count)" >&2
"$MATCH_COUNT" "$EVENTS" "${POLICIES[@]}" > "$WORK/match_count.json"

python3 - "$WORK" "$N" "$RUNNERS" <<'EOF'
import collections, json, os, sys
work, n, runners = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
best = {}
for line in open(os.path.join(work, "results.tsv")):
    name, secs, kb, user, sys_ = line.split()
    secs, kb, cpu = float(secs), int(kb), float(user) + float(sys_)
    if name not in best or secs < best[name][0]:
        best[name] = (secs, kb, cpu)
print(f"\n{n:,} events, {os.path.getsize(os.path.join(work, f'events-{n}-' + os.environ.get('SEED', '42') + '.ndjson')) / 1e6:,.0f} MB")
print(f"{'runner':<8} {'wall s':>8} {'CPU s':>7} {'max RSS MB':>11} {'events/s':>12}")
for name in runners:
    if name in best:
        secs, kb, cpu = best[name]
        print(f"{name:<8} {secs:>8.2f} {cpu:>7.2f} {kb / 1024:>11.1f} {n / max(secs, 1e-9):>12,.0f}")
def ratio(a, b):
    if a in best and b in best:
        print(f"{a}/{b} throughput: {best[b][0] / max(best[a][0], 1e-9):.2f}x")
for h in ("jit", "interp"):
    for base in ("jaq", "python", "jq", "wc"):
        ratio(h, base)
ratio("jit", "interp")

# Match counts per rule: Herald's matcher, jaq, python; firings per rule: jit, interp.
oracle = json.load(open(os.path.join(work, "match_count.json")))
cols = {"herald": oracle["by_rule"]}
for tool in ("jaq", "jq"):
    p = os.path.join(work, f"{tool}.out")
    if tool in best and os.path.exists(p):
        cols[tool] = collections.Counter(l.strip() for l in open(p) if l.strip())
if "python" in best:
    cols["python"] = json.load(open(os.path.join(work, "python.out")))["by_rule"]
fired = {}
for eng in ("jit", "interp"):
    if eng in best:
        fired[eng] = collections.Counter(json.loads(l)["rule"] for l in open(os.path.join(work, f"{eng}.out")) if l.strip())
rules = sorted(oracle["by_rule"])
print(f"\nmatches per rule (dead letters {oracle['dead_letters']}, match errors {oracle['match_errors']}); firings after guards")
print(f"{'rule':<34}" + "".join(f"{c:>9}" for c in cols) + "".join(f"{'fired/' + e:>14}" for e in fired))
ok = True
for r in rules:
    vals = [cols[c].get(r, 0) for c in cols]
    ok &= len(set(vals)) == 1
    fv = [fired[e].get(r, 0) for e in fired]
    ok &= len(set(fv)) <= 1 and all(f <= vals[0] for f in fv)
    print(f"{r:<34}" + "".join(f"{v:>9}" for v in vals) + "".join(f"{v:>14}" for v in fv))
print("match counts agree" if ok else "MISMATCH between runners")
sys.exit(0 if ok else 1)
EOF
