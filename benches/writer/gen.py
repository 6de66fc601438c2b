#!/usr/bin/env python3
"""Events for the writer benchmark (BENCHMARKS.md, "Writer (issue 12)").

Every event is a `login_failed` of a user in examples/authentik/fixtures.json,
so every event fires `policy.herald`'s notification-only rule: what is
measured is the writer, not the matcher. Deterministic: same arguments, same
bytes.

    gen.py -n 1000000 --seed 42 -o events.ndjson
"""
import argparse
import random
import uuid

USERS = [(2, "AnonymousUser"), (4, "akadmin"), (12, "alice"), (15, "bob"), (23, "carol"), (31, "dave.k")]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("-o", required=True)
    a = p.parse_args()
    rng = random.Random(a.seed)
    with open(a.o, "w") as f:
        for i in range(a.n):
            pk, name = USERS[rng.randrange(len(USERS))]
            u = uuid.UUID(int=rng.getrandbits(128), version=4)
            s = i // 1000
            created = f"2026-04-14T{10 + s // 3600 % 10:02}:{s // 60 % 60:02}:{s % 60:02}.{i % 1000:03}000Z"
            f.write(
                f'{{"event_uuid":"{u}","user":{{"username":"{name}","pk":{pk}}},"action":"login_failed",'
                f'"app":"authentik.events.signals","context":{{"username":"{name}"}},'
                f'"client_ip":"203.0.113.{i % 250}","created":"{created}"}}\n'
            )


if __name__ == "__main__":
    main()
