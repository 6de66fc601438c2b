#!/usr/bin/env python3
"""Input of the PostgreSQL store benchmark (benches/pg/run.sh).

`--load core`: the 46 example events (examples/authentik/events.ndjson) COPIES
times, each copy with fresh `event_uuid`s (BENCHMARKS.md, "SQLite and
PostgreSQL stores": 2,200 copies, 101,200 events).

`--load notify`: N `login_failed` events of the example fixtures' users,
benches/writer/gen.py's (every event fires one `notify`).

Deterministic: same arguments, same bytes.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--load", choices=["core", "notify"], default="core")
    p.add_argument("-n", type=int, default=2200, help="copies (core) or events (notify)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("-o", required=True)
    a = p.parse_args()
    if a.load == "notify":
        gen = os.path.join(ROOT, "benches", "writer", "gen.py")
        sys.exit(subprocess.call([sys.executable, gen, "-n", str(a.n), "--seed", str(a.seed), "-o", a.o]))
    rng = random.Random(a.seed)
    with open(os.path.join(ROOT, "examples", "authentik", "events.ndjson")) as f:
        events = [json.loads(l) for l in f if l.strip()]
    with open(a.o, "w") as out:
        for _ in range(a.n):
            for ev in events:
                ev["event_uuid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                out.write(json.dumps(ev, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
