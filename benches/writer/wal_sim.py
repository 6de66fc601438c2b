#!/usr/bin/env python3
"""Bytes written by SQLite for the writer's two kinds of rows (BENCHMARKS.md,
"Writer (issue 12)"): 30 commits of 10,000 rows, in WAL mode with
synchronous=FULL and the store's page cache, either replay records keyed by a
random uuid (`p`, like herald_processed), appended rows (`f`, like
herald_firing) or both, at a given wal_autocheckpoint. Prints the seconds and
the bytes written (/proc/self/io, Linux).

    wal_sim.py p 1000          # SQLite's default checkpoint interval
    wal_sim.py p 10000         # Herald's
    wal_sim.py p 10000 sort    # the batch's keys sorted first
"""
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid

mode, ac = sys.argv[1], int(sys.argv[2])
path = os.path.join(tempfile.mkdtemp(), "sim.db")
c = sqlite3.connect(path, isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("pragma synchronous=full")
c.execute(f"pragma wal_autocheckpoint={ac}")
c.execute("pragma cache_size=-32768")
c.execute("create table p (k text primary key, line integer, at text, rs integer) without rowid")
c.execute("create table f (id integer primary key, rule text, ev text, at text, line integer)")
rng = random.Random(1)
t = time.time()
for b in range(30):
    c.execute("begin immediate")
    rows = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), i, "2026-04-14T10:00:00.000000Z", 1) for i in range(10000)]
    if len(sys.argv) > 3:
        rows.sort()
    if mode in ("p", "both"):
        c.executemany("insert into p values (?,?,?,?)", rows)
    if mode in ("f", "both"):
        c.executemany("insert into f (rule, ev, at, line) values (?,?,?,?)", [("r", r[0], r[2], r[1]) for r in rows])
    c.execute("commit")
written = [l for l in open("/proc/self/io").read().splitlines() if l.startswith("write_bytes")][0]
print(mode, ac, round(time.time() - t, 2), "s", written)
