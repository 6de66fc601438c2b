import sqlite3, uuid, random, sys, os, time
mode = sys.argv[1]; ac = int(sys.argv[2])
path = '/tmp/herald-writer/sim.db'
for s in ('', '-wal', '-shm'):
    try: os.remove(path + s)
    except FileNotFoundError: pass
c = sqlite3.connect(path, isolation_level=None)
c.execute('pragma journal_mode=wal'); c.execute('pragma synchronous=full'); c.execute(f'pragma wal_autocheckpoint={ac}')
c.execute('pragma cache_size=-32768')
c.execute('create table p (k text primary key, line integer, at text, rs integer) without rowid')
c.execute('create table f (id integer primary key, rule text, ev text, at text, line integer)')
rng = random.Random(1)
t = time.time()
for b in range(30):
    c.execute('begin immediate')
    rows = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), i, '2026-04-14T10:00:00.000000Z', 1) for i in range(10000)]
    if len(sys.argv) > 3: rows.sort()
    if mode == "p" or mode == "both":
        c.executemany('insert into p values (?,?,?,?)', rows)
    if mode == 'f' or mode == 'both':
        c.executemany('insert into f (rule, ev, at, line) values (?,?,?,?)', [('failed_login_notice', r[0], r[2], r[1]) for r in rows])
    c.execute('commit')
print(mode, ac, round(time.time() - t, 2), 's', open('/proc/self/io').read().split('\n')[5])
