//! Many workers on one PostgreSQL source (`herald run --partitions`,
//! store::workers), on a real server (tests/pg_support): three workers over
//! a generated stream of 200,000 events, one of them killed with SIGKILL
//! mid-run, end with exactly the state one unpartitioned worker leaves:
//! every event processed once, the same firings of the rules keyed by
//! account, the same attribute histories; the window keyed by address
//! (across partitions) recorded every event once. And the refusals that
//! keep a partitioned source from being read any other way.

mod pg_support;
mod runtime_support;

use pg_support::TestDb;
use runtime_support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = "tests/fixtures/workers/policy.herald";

/// `n` events as authentik stores them: 40% failed sign-ins by 200
/// anonymous accounts from 1,400 addresses, sign-ins and other events by
/// 997 users, and every hundredth a sign-in by a user of the fixtures; 50 ms
/// apart.
const GENERATE: &str = r#"
INSERT INTO authentik_events_event (event_uuid, action, app, context, client_ip, created, "user", expires, expiring, brand)
SELECT md5('herald-ev-' || i)::uuid,
  CASE WHEN i % 10 < 4 THEN 'login_failed' WHEN i % 100 = 6 OR i % 10 IN (4, 5) THEN 'login'
       WHEN i % 2 = 0 THEN 'authorize_application' ELSE 'logout' END,
  'authentik.events.signals',
  CASE WHEN i % 10 < 4 THEN jsonb_build_object('username', 'acct' || (i * 7919 % 500))
       ELSE jsonb_build_object('auth_method_args', jsonb_build_object('known_device', i % 3 = 0)) END,
  ('10.1.' || (i % 7) || '.' || (i * 13 % 200))::inet,
  timestamptz '2026-03-01 00:00:00+00' + i * interval '50 milliseconds',
  CASE WHEN i % 10 < 4 THEN '{"pk": 2, "username": "AnonymousUser", "email": ""}'::jsonb
       WHEN i % 100 = 6 THEN jsonb_build_object('pk', (ARRAY[12, 15, 23, 31, 44, 47])[1 + i / 100 % 6],
                                                'username', (ARRAY['alice','bob','carol','dave.k','ci-deployer','backup-job'])[1 + i / 100 % 6])
       ELSE jsonb_build_object('pk', 1000 + i % 997, 'username', 'u' || (i % 997), 'email', 'u' || (i % 997) || '@example.com') END,
  timestamptz '2027-03-01 00:00:00+00', true, '{}'::jsonb
FROM generate_series($1::int, $2::int) AS i
"#;

/// A database with authentik's tables, `n` generated events and the
/// example fixtures in Herald's own entity tables.
fn source_db(tag: &str, n: i32) -> TestDb {
    let db = TestDb::new(tag);
    let sql = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/authentik-postgres.sql");
    db.run_sql_file(&sql, None);
    insert(&db, 1, n);
    load(&db.url, None, AUTHENTIK_FIXTURES);
    db
}

fn insert(db: &TestDb, from: i32, to: i32) {
    db.client().execute(GENERATE, &[&from, &to]).expect("generate events");
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.client().query_one(sql, &[]).expect(sql).get(0)
}

/// A following worker, its stderr (one `log` line per firing) to a file.
fn worker(db: &TestDb, id: &str, log: &std::path::Path) -> Child {
    let err = std::fs::File::create(log).expect("log file");
    command(&[
        "run",
        "--quiet",
        "--db",
        &db.url,
        "--source",
        &db.url,
        "--follow",
        "--partitions",
        "16",
        "--lease-seconds",
        "2",
        "--worker-id",
        id,
        POLICY,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(err)
    .spawn()
    .expect("spawn a worker")
}

/// Waits until `cond` holds, checking every 200 ms, at most `limit`.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM and the exit code.
fn stop(mut child: Child) -> i32 {
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "worker {pid} did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What must come out the same: each rule's firings (as event sets), the
/// replay records, the users' attributes.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    firings: BTreeMap<String, BTreeSet<String>>,
    processed: usize,
    users: Vec<(String, String)>,
}

fn outcome(db: &TestDb, rules: &[&str]) -> Outcome {
    let mut c = db.client();
    let mut firings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in c.query("SELECT rule, event_uuid FROM herald.herald_firing", &[]).expect("firings") {
        let (rule, uuid): (String, String) = (r.get(0), r.get(1));
        if rules.contains(&rule.as_str()) {
            assert!(firings.entry(rule.clone()).or_default().insert(uuid.clone()), "{rule} fired twice for {uuid}");
        }
    }
    let processed: i64 = c.query_one("SELECT count(*) FROM herald.herald_processed", &[]).expect("processed").get(0);
    let users = c
        .query("SELECT username, attributes::text FROM herald.\"User\" ORDER BY pk", &[])
        .expect("users")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Outcome { firings, processed: processed as usize, users }
}

/// The address window's event entries newer than `horizon` before the
/// newest: (key, time, value), each once.
fn spray_entries(db: &TestDb) -> BTreeSet<(String, i128, String)> {
    let rows = db
        .client()
        .query("SELECT key, time, value FROM herald.herald_state_entry WHERE rule = 'spray' AND kind = 'event'", &[])
        .expect("entries");
    let all: Vec<(String, i128, String)> = rows
        .iter()
        .map(|r| {
            let t: String = r.get(1);
            (r.get(0), t.parse().expect("a time"), r.get::<_, Option<String>>(2).unwrap_or_default())
        })
        .collect();
    let newest = all.iter().map(|e| e.1).max().unwrap_or(0);
    // 5 minutes: whatever either run swept is older.
    let horizon = newest - 300 * 1_000_000_000;
    let mut set = BTreeSet::new();
    for e in all.into_iter().filter(|e| e.1 > horizon) {
        assert!(set.insert(e.clone()), "an address-window entry twice: {e:?}");
    }
    set
}

#[test]
fn three_workers_and_a_kill_end_as_one_worker_does() {
    const N: i32 = 200_000;
    let tmp = Tmp::new();
    // The reference: one worker, no partitions, to the end of the table.
    let one = source_db("workers_one", N);
    herald(&["run", "--quiet", "--db", &one.url, "--source", &one.url, POLICY], None).ok();

    let many = source_db("workers_many", N);
    let mut workers: Vec<Child> =
        (1..=3).map(|i| worker(&many, &format!("w{i}"), &tmp.path(&format!("w{i}.log")))).collect();
    // All three take part: each holds partitions at some point.
    wait_until(Duration::from_secs(60), "three workers holding partitions", || {
        count(&many, "SELECT count(DISTINCT split_part(owner, ':', 1)) FROM herald.herald_partition") == 3
    });
    wait_until(Duration::from_secs(600), "a third of the events processed", || {
        count(&many, "SELECT count(*) FROM herald.herald_processed") >= i64::from(N / 3)
    });
    let killed = workers.remove(0);
    let mut killed = killed;
    killed.kill().expect("SIGKILL");
    killed.wait().expect("reap");
    let at = Instant::now();
    // Its leases expire (2 s) and the others take its partitions over.
    wait_until(Duration::from_secs(30), "the killed worker's partitions taken over", || {
        count(
            &many,
            "SELECT count(*) FROM herald.herald_partition WHERE owner IS NULL OR split_part(owner, ':', 1) = 'w1'",
        ) == 0
    });
    let takeover = at.elapsed();
    wait_until(Duration::from_secs(900), "every event processed", || {
        count(&many, "SELECT count(*) FROM herald.herald_processed") == i64::from(N)
    });
    for w in workers {
        assert_eq!(stop(w), 0, "a worker's exit code after SIGTERM");
    }
    // They gave their partitions back on the way out.
    assert_eq!(count(&many, "SELECT count(*) FROM herald.herald_partition WHERE owner IS NOT NULL"), 0);

    let keyed = ["every_event", "burst", "login_history"];
    let (a, b) = (outcome(&one, &keyed), outcome(&many, &keyed));
    assert_eq!(a.processed, N as usize);
    assert_eq!(a.firings["every_event"].len(), N as usize);
    assert!(a.firings["burst"].len() > 100, "the account window fires: {}", a.firings["burst"].len());
    assert!(a.users.iter().any(|(_, attrs)| attrs.contains("logins")), "the histories grew");
    assert_eq!(a, b, "three workers (one killed) against one");
    let (sa, sb) = (spray_entries(&one), spray_entries(&many));
    assert!(sa.len() > 1000, "address-window entries: {}", sa.len());
    assert_eq!(sa, sb, "the address window recorded each event once");
    eprintln!("takeover after SIGKILL: {takeover:?}");
}

#[test]
fn a_partitioned_source_is_read_only_by_partitioned_workers() {
    let db = source_db("workers_refusals", 2_000);
    let tmp = Tmp::new();
    // Before any partitioning: a plain run reads the first half.
    herald(&["run", "--quiet", "--db", &db.url, "--source", &db.url, POLICY], None).ok();
    assert_eq!(count(&db, "SELECT count(*) FROM herald.herald_processed"), 2_000);
    insert(&db, 2_001, 3_000);

    // Partitions need a PostgreSQL store and --follow.
    let sqlite = tmp.p("herald.db");
    let out = herald(
        &["run", "--quiet", "--db", &sqlite, "--source", &db.url, "--follow", "--partitions", "4", POLICY],
        None,
    )
    .expect_code(2);
    assert!(out.stderr.contains("needs a PostgreSQL store"), "{}", out.stderr);
    let out = herald(&["run", "--quiet", "--db", &db.url, "--source", &db.url, "--partitions", "4", POLICY], None)
        .expect_code(2);
    assert!(out.stderr.contains("needs `--follow`"), "{}", out.stderr);

    // The first partitioned worker carries the cursor over: only the new
    // thousand events are processed.
    let w = worker(&db, "solo", &tmp.path("solo.log"));
    wait_until(Duration::from_secs(120), "the new events processed", || {
        count(&db, "SELECT count(*) FROM herald.herald_processed") >= 3_000
    });
    assert_eq!(stop(w), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM herald.herald_processed"), 3_000);
    assert_eq!(count(&db, "SELECT count(*) FROM herald.herald_firing WHERE rule = 'every_event'"), 3_000);

    // From now on: no plain run, and no other partition count.
    let out = herald(&["run", "--quiet", "--db", &db.url, "--source", &db.url, POLICY], None).expect_code(2);
    assert!(out.stderr.contains("partitioned into 16"), "{}", out.stderr);
    let out = herald(
        &["run", "--quiet", "--db", &db.url, "--source", &db.url, "--follow", "--partitions", "8", POLICY],
        None,
    )
    .expect_code(2);
    assert!(out.stderr.contains("partitioned into 16"), "{}", out.stderr);
}
