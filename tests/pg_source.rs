//! `herald run --source postgres://…`: authentik's event table as input, on a
//! real PostgreSQL server (tests/pg_support) with authentik's tables created
//! from the recorded DDL. The same events give the same result as an NDJSON
//! run; events inserted while following are processed once, in order; a
//! SIGKILLed run resumes to the uninterrupted result; a row that commits
//! late (an earlier `created` than rows already processed) is still
//! processed, once; a server that goes away or never answers, and a missing
//! table, are clear errors with exit code 2.

mod pg_support;
mod runtime_support;

use herald::store::pg_source::{SourceReader, SourceSpec};
use herald::store::SourceCursor;
use pg_support::TestDb;
use runtime_support::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A database with authentik's tables.
fn authentik_db(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    let sql = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/authentik-postgres.sql");
    db.run_sql_file(&sql, None);
    db
}

/// Inserts NDJSON events as rows of `authentik_events_event`, as authentik
/// stores them (all values bound: the JSON is one parameter).
fn insert_events(client: &mut impl postgres::GenericClient, ndjson: &str) {
    let lines: Vec<&str> = ndjson.lines().filter(|l| !l.trim().is_empty()).collect();
    for chunk in lines.chunks(2000) {
        let array = format!("[{}]", chunk.join(","));
        client
            .execute(
                "INSERT INTO authentik_events_event \
                   (event_uuid, action, app, context, client_ip, created, \"user\", expires, expiring, brand) \
                 SELECT (j->>'event_uuid')::uuid, j->>'action', j->>'app', j->'context', \
                        (j->>'client_ip')::inet, (j->>'created')::timestamptz, j->'user', \
                        (j->>'expires')::timestamptz, true, j->'brand' \
                 FROM jsonb_array_elements($1::text::jsonb) AS j",
                &[&array],
            )
            .expect("insert events");
    }
}

fn example_events() -> String {
    std::fs::read_to_string(root().join(AUTHENTIK_EVENTS)).expect("example events")
}

fn example_lines() -> Vec<String> {
    example_events().lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// A policy that fires on every event.
const EVERY: &str = "rule every_event {\n  match any\n  action log(\"seen {event.event_uuid}\")\n}\n";

/// A dump without the file checkpoints (a file run has one, a source run
/// keeps its cursor in `herald_source_event` instead).
fn without_checkpoints(dump: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in dump.lines() {
        if let Some(rest) = line.strip_prefix("== ") {
            skip = rest.starts_with("herald_checkpoint ");
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `herald run` following the source, its stdout lines delivered through
/// a channel as they come.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Follower {
    fn start(db: &str, url: &str, policies: &[&str]) -> Follower {
        let mut args = vec!["run", "--quiet", "--db", db, "--source", url, "--follow"];
        args.extend_from_slice(policies);
        let mut child = command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Follower { child, lines, stderr }
    }

    /// The next `n` firing lines, waiting at most `limit` for each.
    fn take(&mut self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| {
                let line = self.lines.recv_timeout(limit).unwrap_or_else(|_| {
                    let _ = self.child.kill();
                    panic!("firing {} of {n} did not arrive within {limit:?}", i + 1)
                });
                serde_json::from_str(&line).expect("a firing line is JSON")
            })
            .collect()
    }

    /// Sends `signal` and waits for the exit: (exit code, stderr).
    fn stop(self, signal: &str) -> (i32, String) {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill").args([signal, &pid]).status().expect("kill").success();
        assert!(ok, "kill {signal} {pid}");
        self.wait(Duration::from_secs(20))
    }

    fn wait(mut self, limit: Duration) -> (i32, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let stderr = self.stderr.join().expect("stderr reader");
                return (status.code().unwrap_or(-1), stderr);
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("herald did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn no_more(&self, wait: Duration) {
        if let Ok(line) = self.lines.recv_timeout(wait) {
            panic!("an unexpected firing: {line}");
        }
    }
}

fn source_run(db: &str, url: &str, extra: &[&str], policies: &[&str]) -> Out {
    let mut args = vec!["run", "--quiet", "--db", db, "--source", url];
    args.extend_from_slice(extra);
    args.extend_from_slice(policies);
    herald(&args, None)
}

#[test]
fn each_row_becomes_the_json_of_the_exported_event() {
    let pg = authentik_db("source_shape");
    insert_events(&mut pg.client(), &example_events());
    let spec = SourceSpec::new(&pg.url, "public", false).unwrap();
    let mut reader = SourceReader::open(spec, SourceCursor::default(), Arc::new(AtomicBool::new(false))).unwrap();
    let mut text = String::new();
    reader.read_to_string(&mut text).expect("read every event");
    let got: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let want: Vec<serde_json::Value> = example_lines().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), want.len());
    // The example file is in (created, event_uuid) order, as the table is read.
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "the event as read from the table");
    }
    // Handed over in order, numbered from 1.
    let fed = reader.fed();
    let fed = fed.lock().unwrap();
    assert_eq!(fed.iter().map(|e| e.line).collect::<Vec<_>>(), (1..=want.len() as u64).collect::<Vec<_>>());
}

#[test]
fn odd_values_keep_their_json_form() {
    let pg = authentik_db("source_odd_values");
    // Quotes, a backslash, a control character and non-ASCII text in the
    // text columns; an IPv6 address and a NULL one; a time zone other than UTC
    // and a time with no fraction.
    pg.client()
        .batch_execute(
            "INSERT INTO authentik_events_event VALUES              ('0b0e0000-0000-4000-8000-000000000001', 'custom_\"quoted\" \\ ✓', E'app\tx',               '{\"k\": [1, 2.50, null, \"é\"]}', '2001:db8::1', '2026-04-14 10:00:00.5+02', '{}',               '2027-04-14 08:00:00+00', true, '{\"pk\": \"b\"}'),              ('0b0e0000-0000-4000-8000-000000000002', 'login', 'a', '{}', NULL, '2026-04-14 09:00:01+00',               '{\"pk\": 4}', '2027-04-14 08:00:00+00', true, '{}')",
        )
        .unwrap();
    let spec = SourceSpec::new(&pg.url, "public", false).unwrap();
    let mut reader = SourceReader::open(spec, SourceCursor::default(), Arc::new(AtomicBool::new(false))).unwrap();
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    let got: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(
        got[0],
        serde_json::json!({
            "event_uuid": "0b0e0000-0000-4000-8000-000000000001", "user": {}, "action": "custom_\"quoted\" \\ ✓",
            "app": "app\tx", "context": {"k": [1, 2.50, null, "é"]}, "client_ip": "2001:db8::1",
            "created": "2026-04-14T08:00:00.500000Z", "expires": "2027-04-14T08:00:00.000000Z", "brand": {"pk": "b"},
        })
    );
    assert_eq!(got[1]["client_ip"], serde_json::Value::Null);
    assert_eq!(got[1]["created"], "2026-04-14T09:00:01.000000Z");
    assert_eq!(got.len(), 2);
}

#[test]
fn a_source_run_equals_the_ndjson_run_on_the_same_events() {
    let pg = authentik_db("source_same");
    insert_events(&mut pg.client(), &example_events());
    let tmp = Tmp::new();
    let (file_db, source_db) = (tmp.p("file.db"), tmp.p("source.db"));
    load(&file_db, None, AUTHENTIK_FIXTURES);
    load(&source_db, None, AUTHENTIK_FIXTURES);
    let from_file = run(&file_db, AUTHENTIK_EVENTS, &[], &AUTHENTIK_POLICIES).ok();
    let from_source = source_run(&source_db, &pg.url, &[], &AUTHENTIK_POLICIES).ok();
    assert!(from_file.stdout.lines().count() >= 5, "the policies fire: {}", from_file.stdout);
    assert_eq!(from_source.stdout, from_file.stdout, "the same firing lines, the same line numbers");
    let a = without_checkpoints(&dump(&tmp.path("file.db"), None, Some(&tmp)));
    let b = without_checkpoints(&dump(&tmp.path("source.db"), None, Some(&tmp)));
    assert_eq!(b, a, "the same store");
    // Nothing new: a second run reads nothing and fires nothing.
    let again = herald(&["run", "--db", &source_db, "--source", &pg.url, AUTHENTIK_POLICIES[0]], None).ok();
    assert_eq!(again.stdout, "");
    assert!(again.stderr.contains("0 events"), "{}", again.stderr);
    // `--source PATH` is `--events PATH`.
    let tmp2 = Tmp::new();
    let db2 = tmp2.p("path.db");
    load(&db2, None, AUTHENTIK_FIXTURES);
    let by_path = herald(
        &[&["run", "--quiet", "--db", &db2, "--source", AUTHENTIK_EVENTS][..], &AUTHENTIK_POLICIES].concat(),
        None,
    )
    .ok();
    assert_eq!(by_path.stdout, from_file.stdout);
}

#[test]
fn events_inserted_while_following_are_processed_once_in_order() {
    let pg = authentik_db("source_follow");
    let tmp = Tmp::new();
    let every = tmp.write("every.herald", EVERY);
    let db = tmp.p("follow.db");
    let lines = example_lines();
    let mut client = pg.client();
    // Some events before the run starts, the rest in rounds while it runs.
    insert_events(&mut client, &lines[..6].join("\n"));
    let mut f = Follower::start(&db, &pg.url, &[&every]);
    let mut got = f.take(6, Duration::from_secs(20));
    for round in lines[6..].chunks(10) {
        insert_events(&mut client, &round.join("\n"));
        got.extend(f.take(round.len(), Duration::from_secs(10)));
    }
    f.no_more(Duration::from_millis(600));
    let (code, stderr) = f.stop("-TERM");
    assert_eq!(code, 0, "SIGTERM is a clean stop: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let uuids: Vec<String> =
        lines.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_uuid"].to_string()).collect();
    let got_uuids: Vec<String> = got.iter().map(|v| v["event_uuid"].to_string()).collect();
    assert_eq!(got_uuids, uuids, "every event once, in (created, event_uuid) order");
    let numbers: Vec<u64> = got.iter().map(|v| v["line"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=lines.len() as u64).collect::<Vec<_>>(), "line = position in that order");
    // The store agrees, and a restart finds nothing new.
    let d = dump(&tmp.path("follow.db"), None, None);
    assert_eq!(table(&d, "herald_firing").len(), lines.len());
    let again = source_run(&db, &pg.url, &[], &[&every]).ok();
    assert_eq!(again.stdout, "");
    // One more event after the restart continues the numbering.
    let extra = event_with(&lines[0], "e0000000-0000-4000-8000-000000000001", "2026-04-15T00:00:00.000000Z");
    insert_events(&mut client, &extra);
    let next = source_run(&db, &pg.url, &[], &[&every]).ok();
    let next = next.stdout_lines();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["line"], lines.len() as u64 + 1);
}

/// The row's JSON with another `event_uuid` and `created`.
fn event_with(line: &str, uuid: &str, created: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["event_uuid"] = uuid.into();
    v["created"] = created.into();
    v.to_string()
}

#[test]
fn a_row_that_commits_late_is_processed_exactly_once() {
    let pg = authentik_db("source_late");
    let tmp = Tmp::new();
    let every = tmp.write("every.herald", EVERY);
    let db = tmp.p("late.db");
    let lines = example_lines();
    let mut late_client = pg.client();
    let mut client = pg.client();

    // 1. While following. An authentik transaction takes its `created`
    // (09:09:00, before the tenth event's 09:09:29) and inserts, but
    // commits only after the ten later events were processed.
    let mut late = late_client.transaction().unwrap();
    let late_uuid = "1a7e0000-0000-4000-8000-000000000001";
    insert_events(&mut late, &event_with(&lines[0], late_uuid, "2026-04-14T09:09:00.000000Z"));
    insert_events(&mut client, &lines[..10].join("\n"));
    let mut f = Follower::start(&db, &pg.url, &[&every]);
    let first = f.take(10, Duration::from_secs(20));
    assert!(first.iter().all(|v| v["event_uuid"] != late_uuid));
    f.no_more(Duration::from_millis(300));
    late.commit().unwrap();
    let got = f.take(1, Duration::from_secs(5));
    assert_eq!(got[0]["event_uuid"], late_uuid, "the late row is picked up");
    assert_eq!(got[0]["line"], 11, "it takes the next line number");
    // And the stream goes on; the late row is not taken again.
    insert_events(&mut client, &lines[10..12].join("\n"));
    let more = f.take(2, Duration::from_secs(5));
    assert_eq!(more.iter().map(|v| v["line"].as_u64().unwrap()).collect::<Vec<_>>(), [12, 13]);
    f.no_more(Duration::from_millis(1500));
    let (code, stderr) = f.stop("-INT");
    assert_eq!(code, 0, "{stderr}");

    // 2. Between runs: the row commits while no run is reading, behind the
    // cursor a run already passed; the next run looks behind its cursor.
    let mut late = late_client.transaction().unwrap();
    let late2 = "1a7e0000-0000-4000-8000-000000000002";
    insert_events(&mut late, &event_with(&lines[0], late2, "2026-04-14T09:30:00.000000Z"));
    insert_events(&mut client, &lines[12..14].join("\n"));
    let out = source_run(&db, &pg.url, &[], &[&every]).ok();
    assert_eq!(out.stdout_lines().len(), 2);
    late.commit().unwrap();
    let out = source_run(&db, &pg.url, &[], &[&every]).ok();
    let out = out.stdout_lines();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["event_uuid"], late2);
    assert_eq!(out[0]["line"], 16);

    // Exactly once each, for good.
    assert_eq!(source_run(&db, &pg.url, &[], &[&every]).ok().stdout, "");
    let d = dump(&tmp.path("late.db"), None, None);
    let firings = table(&d, "herald_firing");
    assert_eq!(firings.len(), 16);
    let mut uuids: Vec<String> = firings.iter().map(|r| r["event_uuid"].to_string()).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 16, "no event fired twice");
}

/// Every reference policy but `group_addition_history` (quadratic work on
/// repeated copies of the input; see tests/crash.rs).
const CRASH_POLICIES: [&str; 4] =
    [AUTHENTIK_POLICIES[0], AUTHENTIK_POLICIES[1], AUTHENTIK_POLICIES[3], AUTHENTIK_POLICIES[4]];

#[test]
fn killed_source_runs_resume_to_the_uninterrupted_result() {
    let pg = authentik_db("source_crash");
    // 27,600 events; copies share their `created`, so ties are ordered by
    // uuid, and the window holds many events at each time.
    insert_events(&mut pg.client(), &generated_events(600));
    let tmp = Tmp::new();
    let every = tmp.write("every.herald", EVERY);
    let mut policies: Vec<&str> = CRASH_POLICIES.to_vec();
    policies.push(&every);
    let args = |db: &str| -> Vec<String> {
        let mut a: Vec<String> = ["run", "--quiet", "--db", db, "--source", &pg.url, "--batch", "500"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(policies.iter().map(|s| s.to_string()));
        a
    };
    let reference = tmp.p("reference.db");
    load(&reference, None, AUTHENTIK_FIXTURES);
    let started = Instant::now();
    let a = args(&reference);
    let out = herald(&a.iter().map(String::as_str).collect::<Vec<_>>(), None).ok();
    let full = started.elapsed();
    assert!(out.stdout.lines().count() > 27_600, "every event fires `every_event`");
    let expected = dump(&tmp.path("reference.db"), None, Some(&tmp)).replace("reference.db", "DB");

    let crashed = tmp.p("crashed.db");
    load(&crashed, None, AUTHENTIK_FIXTURES);
    let delays = [full / 5, full / 3, full / 2, full / 4, Duration::from_millis(300)];
    let mut interrupted = 0;
    for (runs, delay) in delays.iter().copied().chain(std::iter::repeat(Duration::ZERO)).enumerate() {
        assert!(runs < 40, "the run never finished");
        let a = args(&crashed);
        let mut child = command(&a.iter().map(String::as_str).collect::<Vec<_>>())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        if delay.is_zero() {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
        std::thread::sleep(delay);
        if child.try_wait().expect("try_wait").is_none() {
            interrupted += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    assert!(interrupted >= 3, "only {interrupted} runs were killed mid-way (a full run takes {full:?})");
    let got = dump(&tmp.path("crashed.db"), None, Some(&tmp)).replace("crashed.db", "DB");
    if got != expected {
        let diff = got.lines().zip(expected.lines()).enumerate().find(|(_, (a, b))| a != b);
        panic!(
            "the stores differ ({} vs {} lines); first difference: {diff:?}",
            got.lines().count(),
            expected.lines().count()
        );
    }
    // The cursors agree too: the same events remembered under the same lines.
    let key = SourceSpec::new(&pg.url, "public", false).unwrap().key();
    let cursor = |name: &str| open_store(&tmp.path(name), None).source_cursor(&key).unwrap();
    let (r, c) = (cursor("reference.db"), cursor("crashed.db"));
    assert_eq!(r.last_line, 27_600);
    assert_eq!(c, r);
}

#[test]
fn a_server_that_goes_away_mid_follow_is_a_clear_error() {
    let pg = authentik_db("source_gone");
    let tmp = Tmp::new();
    let every = tmp.write("every.herald", EVERY);
    let db = tmp.p("gone.db");
    let lines = example_lines();
    insert_events(&mut pg.client(), &lines[..3].join("\n"));
    let mut f = Follower::start(&db, &pg.url, &[&every]);
    f.take(3, Duration::from_secs(20));
    // The server ends the source's connection (as a restart or an
    // administrator's pg_terminate_backend does).
    let ended: i64 = pg
        .client()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'herald-source'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, 1);
    let (code, stderr) = f.wait(Duration::from_secs(10));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the event source postgres://"), "{stderr}");
    assert!(stderr.contains("terminat"), "the server's reason: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // What was processed stays processed; a restart goes on from there.
    insert_events(&mut pg.client(), &lines[3..5].join("\n"));
    let out = source_run(&db, &pg.url, &[], &[&every]).ok().stdout_lines();
    assert_eq!(out.iter().map(|v| v["line"].as_u64().unwrap()).collect::<Vec<_>>(), [4, 5]);
}

/// Exit code 2 with `needle` in the message, and no panic.
fn usage_error(out: Out, needle: &str) -> Out {
    let out = out.expect_code(2);
    assert!(out.stderr.contains(needle), "{needle:?} in: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

#[test]
fn a_missing_table_or_a_bad_source_is_a_usage_error() {
    let empty = TestDb::new("source_empty");
    let tmp = Tmp::new();
    let db = tmp.p("x.db");
    let p = AUTHENTIK_POLICIES[0];
    usage_error(source_run(&db, &empty.url, &[], &[p]), "has no table public.authentik_events_event");
    // Another schema than authentik's.
    let ak = authentik_db("source_schema");
    usage_error(
        source_run(&db, &ak.url, &["--authentik-schema", "ak"], &[p]),
        "has no table ak.authentik_events_event",
    );
    usage_error(
        source_run(&db, &ak.url, &["--authentik-schema", "x\"; DROP TABLE y; --"], &[p]),
        "not a plain schema name",
    );
    // A table without authentik's columns.
    let odd = TestDb::new("source_odd");
    odd.client().batch_execute("CREATE TABLE authentik_events_event (event_uuid uuid PRIMARY KEY)").unwrap();
    usage_error(source_run(&db, &odd.url, &[], &[p]), "does not have the columns authentik's has");
    // Nothing listens.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out =
        usage_error(source_run(&db, &format!("postgres://u:secret@127.0.0.1:{port}/db"), &[], &[p]), "cannot connect");
    assert!(!out.stderr.contains("secret"), "the password is not printed: {}", out.stderr);
    // `--follow` needs a database source; `--backfill` does not apply to one.
    usage_error(herald(&["run", "--db", &db, "--follow", p], None), "--follow");
    usage_error(source_run(&db, &ak.url, &["--backfill"], &[p]), "--backfill");
}

#[test]
fn a_server_that_answers_garbage_or_nothing_is_a_clear_error() {
    let tmp = Tmp::new();
    let db = tmp.p("x.db");
    let p = AUTHENTIK_POLICIES[0];
    // Garbage: an HTTP server's answer to the start-up message.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for s in garbage.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let out = source_run(&db, &format!("postgres://u@127.0.0.1:{port}/db"), &[], &[p]).expect_code(2);
    assert!(out.stderr.contains("the event source postgres://u@127.0.0.1"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // Silence: the connection is accepted and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming() {
            held.push(s);
        }
    });
    let started = Instant::now();
    let out = source_run(&db, &format!("postgres://u@127.0.0.1:{port}/db"), &[], &[p]).expect_code(2);
    assert!(out.stderr.contains("did not answer within"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(40));
}

/// Insert-to-firing latency while following (BENCHMARKS.md, "PostgreSQL
/// source latency"): `cargo test --release --test pg_source -- --ignored
/// --nocapture latency`. Not a pass/fail test: speed is measured, not
/// asserted.
#[test]
#[ignore]
fn latency_insert_to_firing() {
    let n: usize = std::env::var("HERALD_LATENCY_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(400);
    let pg = authentik_db("source_latency");
    let tmp = Tmp::new();
    let every = tmp.write("every.herald", EVERY);
    let db = tmp.p("latency.db");
    let mut f = Follower::start(&db, &pg.url, &[&every]);
    let mut client = pg.client();
    // Warm up (the first read prepares statements).
    let template = example_lines()[0].clone();
    insert_events(&mut client, &event_with(&template, "00000000-0000-4000-8000-ffffffffffff", "2026-01-01T00:00:00Z"));
    f.take(1, Duration::from_secs(20));
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let uuid = format!("00000000-0000-4000-8000-{i:012x}");
        let created = format!("2026-02-01T00:00:{:02}.{:06}Z", i / 1_000_000, i % 1_000_000);
        insert_events(&mut client, &event_with(&template, &uuid, &created));
        let committed = Instant::now();
        let got = f.take(1, Duration::from_secs(10));
        latencies.push(committed.elapsed());
        assert_eq!(got[0]["event_uuid"], uuid.as_str());
        // Inserts arrive at random moments of the poll cycle.
        std::thread::sleep(Duration::from_millis(7 + (i as u64 * 37) % 50));
    }
    let (code, _) = f.stop("-TERM");
    assert_eq!(code, 0);
    latencies.sort();
    let q = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    eprintln!(
        "insert-to-firing over {n} events: min {:?}, median {:?}, p90 {:?}, p99 {:?}, max {:?}",
        latencies[0],
        q(0.5),
        q(0.9),
        q(0.99),
        latencies[n - 1]
    );
}

/// The deployment the issue is about: events from authentik's table, Herald's
/// records (the cursor included) in a PostgreSQL store. The cursor advances
/// in the PostgreSQL store's batch transaction: the same lines as a file
/// run, a second run takes nothing, and a new row continues the numbering.
#[test]
fn the_cursor_lives_in_a_postgres_store_too() {
    let pg = authentik_db("source_pgstore");
    insert_events(&mut pg.client(), &example_events());
    let store = TestDb::new("source_pgstore_herald");
    let tmp = Tmp::new();
    let every = tmp.write("every.herald", EVERY);
    let file_db = tmp.p("file.db");
    let from_file = run(&file_db, AUTHENTIK_EVENTS, &[], &[&every]).ok();
    let first = source_run(&store.url, &pg.url, &[], &[&every]).ok();
    assert_eq!(first.stdout, from_file.stdout, "the same firing lines, the same line numbers");
    let n = example_lines().len() as i64;
    let recorded: i64 = store
        .client()
        .query_one("SELECT max(line) FROM herald.herald_source_event", &[])
        .expect("the cursor table is in the herald schema")
        .get(0);
    assert_eq!(recorded, n);
    let again = source_run(&store.url, &pg.url, &[], &[&every]).ok();
    assert_eq!(again.stdout, "", "nothing is taken twice");
    let extra = event_with(&example_lines()[0], "0f0e0d0c-0b0a-4909-8807-060504030201", "2030-01-01T00:00:00Z");
    insert_events(&mut pg.client(), &extra);
    let third = source_run(&store.url, &pg.url, &[], &[&every]).ok();
    assert_eq!(third.stdout.lines().count(), 1, "{}", third.stdout);
    assert!(third.stdout.contains(&format!("\"line\":{}", n + 1)), "{}", third.stdout);
}
