//! The PostgreSQL store (`--db postgres://…`) against a real server: the
//! same runs on SQLite and on PostgreSQL leave the same Herald tables
//! (compared through the normalised dumps), replay protection, dead letters,
//! rule errors (a statement that fails inside a rule's savepoint, which
//! aborts a PostgreSQL transaction until it is rolled back to), window and
//! throttle state across a restart, outbox claims by two senders at once,
//! the CLI on a URL, and servers that refuse, stay silent or are no server.
//!
//! Entity tables are not on PostgreSQL yet (`store::pg::entity`), so these
//! policies use no entity access; the entity parts of the dumps are left
//! out of the comparison.

mod pg_support;
mod runtime_support;

use herald::compile::{self, SchemaChoice};
use herald::engine::{self, InterpMatcher, RunOptions, RunStats};
use herald::ir::Program;
use herald::span::SourceMap;
use herald::store::{self, Backend, Due, Kind, OpenOptions, OutboxStore, Store};
use pg_support::TestDb;
use runtime_support::{command, generated_events, herald, Tmp};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rules that exercise every Herald table without reading an entity.
const POLICY: &str = r#"
rule every_login {
  match login { user.username: name }
  action log(message: "login {name}")
}
rule mail_on_update {
  match model_updated { user.username: name }
  action send_email(to: "it@example.com", subject: "updated by {name}", body: "event {event.event_uuid}")
}
rule hook_on_failure {
  match login_failed
  action webhook(url: "http://127.0.0.1:9/failed", body: { user: event.context.username ?? "?" })
}
rule bad_address {
  match login { user.username: name }
  action send_email(to: name, subject: "hi", body: "a username is not an address")
}
rule fail_burst {
  match login_failed { context.username: name }
  window 1h by name count >= 2
  throttle 1h by name
  action log(message: "burst {name} {window.count}")
}
"#;

fn compile(policy: &str) -> Arc<Program> {
    let mut sources = SourceMap::new();
    let id = sources.add("pg_core.herald", policy.to_string());
    let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &[id]);
    Arc::new(compiled.program.unwrap_or_else(|| panic!("the policy compiles: {:?}", compiled.diagnostics)))
}

fn open_pg(db: &TestDb, program: &Program) -> Box<dyn Backend> {
    store::open(Path::new(&db.url), program.schema.clone(), OpenOptions::default()).expect("the PostgreSQL store opens")
}

fn open_sqlite(tmp: &Tmp, name: &str, program: &Program) -> Box<dyn Backend> {
    store::open(&tmp.path(name), program.schema.clone(), OpenOptions::default()).expect("the SQLite store opens")
}

/// One run of `input` (named `events.ndjson`); stdout and the stats.
fn run_with(store: &dyn Backend, program: &Arc<Program>, input: &str, opts: RunOptions) -> (String, RunStats) {
    let matcher = Arc::new(InterpMatcher::new(program.clone()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let opts = RunOptions { source: "events.ndjson".into(), ..opts };
    let stats = engine::run(
        program.clone(),
        matcher,
        store,
        std::io::Cursor::new(input.as_bytes().to_vec()),
        opts,
        &mut out,
        &mut err,
    )
    .unwrap_or_else(|e| panic!("the run fails: {e}\n{}", String::from_utf8_lossy(&err)));
    (String::from_utf8(out).unwrap(), stats)
}

fn run(store: &dyn Backend, program: &Arc<Program>, input: &str, batch: usize) -> (String, RunStats) {
    run_with(store, program, input, RunOptions { batch, ..RunOptions::default() })
}

/// The dump from Herald's first table on: entity tables are compared once
/// PostgreSQL has them. The schema fingerprint is of each backend's own
/// table layout, so it differs between them by design.
fn herald_part(dump: &str) -> String {
    let Some(i) = dump.find("== herald_") else { panic!("no Herald tables in the dump:\n{dump}") };
    dump[i..].lines().filter(|l| !l.contains("\"schema_fingerprint\"")).map(|l| format!("{l}\n")).collect()
}

fn rows<'a>(dump: &'a str, table: &str) -> Vec<&'a str> {
    let head = format!("== {table} (");
    let mut lines = dump.lines().skip_while(|l| !l.starts_with(&head));
    lines.next().unwrap_or_else(|| panic!("no table {table} in the dump"));
    lines.take_while(|l| !l.starts_with("== ")).collect()
}

/// The example events, `copies` times, with malformed lines among them.
fn input(copies: usize) -> String {
    let mut out = String::new();
    for (i, l) in generated_events(copies).lines().enumerate() {
        out.push_str(l);
        out.push('\n');
        if i % 37 == 5 {
            out.push_str("{\"action\": broken\n");
        }
        if i % 53 == 7 {
            out.push_str("{\"no_action\": 1}\n");
        }
    }
    out
}

fn assert_same(sqlite: &str, pg: &str) {
    if sqlite != pg {
        let diff = sqlite.lines().zip(pg.lines()).enumerate().find(|(_, (a, b))| a != b);
        panic!(
            "the dumps differ ({} vs {} lines); first difference (line, (SQLite, PostgreSQL)): {diff:?}",
            sqlite.lines().count(),
            pg.lines().count()
        );
    }
}

#[test]
fn opening_creates_schema_herald_with_every_table_once() {
    let db = TestDb::new("pgcore_open");
    let program = compile(POLICY);
    let first = open_pg(&db, &program);
    drop(first);
    // Again: nothing to create, the fingerprint is the same.
    let second = open_pg(&db, &program);
    let mut c = db.client();
    let tables: BTreeSet<String> = c
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'herald'", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in [
        "herald_notification",
        "herald_outbox",
        "herald_firing",
        "herald_dead_letter",
        "herald_rule_error",
        "herald_processed",
        "herald_rule_set",
        "herald_checkpoint",
        "herald_meta",
        "herald_state_mark",
        "herald_state_entry",
    ] {
        assert!(tables.contains(t), "{t} is missing from schema herald: {tables:?}");
    }
    let public: i64 = c
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .unwrap()
        .get(0);
    assert_eq!(public, 0, "nothing is created outside schema herald");
    let fp: String =
        c.query_one("SELECT value FROM herald.herald_meta WHERE key = 'schema_fingerprint'", &[]).unwrap().get(0);
    assert_eq!(fp, second.fingerprint());
    assert_eq!(second.kind(), "postgres");
}

#[test]
fn the_same_runs_leave_the_same_herald_tables_on_both_backends() {
    let program = compile(POLICY);
    let text = input(4);
    for batch in [1, 64] {
        let tmp = Tmp::new();
        let lite = open_sqlite(&tmp, "h.db", &program);
        let db = TestDb::new("pgcore_same");
        let pg = open_pg(&db, &program);
        let (out_l, stats_l) = run(&*lite, &program, &text, batch);
        let (out_p, stats_p) = run(&*pg, &program, &text, batch);
        assert_eq!(out_l, out_p, "the same firings, in the same order (batch {batch})");
        assert_eq!(stats_l.firings, stats_p.firings);
        assert!(stats_p.firings > 20, "the policy fires: {}", stats_p.firings);
        let (dl, dp) = (herald_part(&lite.dump()), herald_part(&pg.dump()));
        assert_same(&dl, &dp);
        // Every kind of record is there.
        for t in ["herald_outbox", "herald_firing", "herald_dead_letter", "herald_rule_error", "herald_processed"] {
            assert!(!rows(&dp, t).is_empty(), "{t} is empty (batch {batch})");
        }
        assert!(rows(&dp, "herald_rule_error").iter().all(|r| r.contains("R0003")), "the bad addresses");
        assert!(rows(&dp, "herald_outbox").iter().any(|r| r.contains("\"kind\":\"webhook\"")), "a webhook");
        assert!(!rows(&dp, "herald_state_entry").is_empty(), "window and throttle state");
    }
}

#[test]
fn re_running_applies_nothing_twice_on_postgres() {
    let program = compile(POLICY);
    let db = TestDb::new("pgcore_replay");
    let pg = open_pg(&db, &program);
    let text = input(2);
    let (first, _) = run(&*pg, &program, &text, 16);
    assert!(!first.is_empty());
    let after = pg.dump();
    // Resumes after the checkpoint: nothing to do.
    let (second, stats) = run(&*pg, &program, &text, 16);
    assert_eq!(second, "");
    assert_eq!(stats.resumed_lines, text.lines().count() as u64);
    assert_eq!(pg.dump(), after);
    // From the start: every event read again, each already processed.
    let (third, _) = run_with(&*pg, &program, &text, RunOptions { from_start: true, ..RunOptions::default() });
    assert_eq!(third, "");
    assert_eq!(pg.dump(), after);
    // The same events twice in one input (same ids): applied once.
    let db2 = TestDb::new("pgcore_replay_dup");
    let pg2 = open_pg(&db2, &program);
    let once = generated_events(1);
    let (twice_out, _) = run(&*pg2, &program, &format!("{once}{once}"), 8);
    let db3 = TestDb::new("pgcore_replay_once");
    let pg3 = open_pg(&db3, &program);
    let (once_out, _) = run(&*pg3, &program, &once, 8);
    assert_eq!(twice_out, once_out);

    // A rule added later: skipped on processed events (every login fired
    // `every_login`), applied to them by a backfill.
    let more =
        compile(&format!("{POLICY}\nrule login_again {{\n  match login\n  action log(message: \"again\")\n}}\n"));
    let pg_more = open_pg(&db, &more);
    let (skipped, _) = run_with(&*pg_more, &more, &text, RunOptions { from_start: true, ..RunOptions::default() });
    assert_eq!(skipped, "");
    let (backfilled, _) = run_with(&*pg_more, &more, &text, RunOptions { backfill: true, ..RunOptions::default() });
    assert!(backfilled.lines().all(|l| l.contains("login_again")), "{backfilled}");
    let logins = text.lines().filter(|l| l.contains("\"action\":\"login\"")).count();
    assert_eq!(backfilled.lines().count(), logins, "once per login");
    // And the same on SQLite ends in the same Herald tables.
    let tmp = Tmp::new();
    let lite = open_sqlite(&tmp, "h.db", &program);
    run(&*lite, &program, &text, 16);
    drop(lite);
    let lite = open_sqlite(&tmp, "h.db", &more);
    run_with(&*lite, &more, &text, RunOptions { backfill: true, ..RunOptions::default() });
    assert_same(&herald_part(&lite.dump()), &herald_part(&pg_more.dump()));
}

#[test]
fn dead_letters_are_recorded_once_and_resolved_when_fixed() {
    let program = compile(POLICY);
    let db = TestDb::new("pgcore_dead");
    let pg = open_pg(&db, &program);
    let good = generated_events(1);
    let first_line = good.lines().next().unwrap();
    // A NUL byte in a malformed line: PostgreSQL text cannot hold it.
    let bad = format!("{first_line}\n{{\"action\": \"login\", \u{0}broken\n");
    run(&*pg, &program, &bad, 4);
    run_with(&*pg, &program, &bad, RunOptions { from_start: true, ..RunOptions::default() });
    let d = pg.dump();
    let dead = rows(&d, "herald_dead_letter");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("\u{FFFD}broken"), "the NUL is replaced: {}", dead[0]);
    assert!(dead[0].contains("\"resolved\":null"));
    // The line fixed in place: read from the start, it resolves.
    let fixed = format!("{first_line}\n{}\n", good.lines().nth(1).unwrap());
    run_with(&*pg, &program, &fixed, RunOptions { from_start: true, ..RunOptions::default() });
    let d = pg.dump();
    let dead = rows(&d, "herald_dead_letter");
    assert!(dead[0].contains("\"resolved\":\"<time>\""), "{dead:?}");
}

#[test]
fn a_failed_statement_in_a_rule_is_that_rules_error_and_the_batch_goes_on() {
    // A constraint of the operator's makes one insert fail inside a rule's
    // savepoint. PostgreSQL then refuses every statement until the engine
    // rolls back to the savepoint; the other events of the same
    // transaction must still be applied.
    let program = compile(
        r#"
rule mail_on_login {
  match login { user.username: name }
  action send_email(to: "it@example.com", subject: "login {name}", body: "b")
}
rule log_on_login {
  match login { user.username: name }
  action log(message: "login {name}")
}
"#,
    );
    let db = TestDb::new("pgcore_rule_error");
    let pg = open_pg(&db, &program);
    db.client()
        .batch_execute("ALTER TABLE herald.herald_outbox ADD CONSTRAINT no_bob CHECK (subject <> 'login bob.m')")
        .unwrap();
    let text = generated_events(1);
    let logins = text.lines().filter(|l| l.contains("\"action\":\"login\"")).count();
    let bobs =
        text.lines().filter(|l| l.contains("\"action\":\"login\"") && l.contains("\"username\":\"bob.m\"")).count();
    assert!(bobs > 0 && bobs < logins);
    let (out, stats) = run(&*pg, &program, &text, 1000);
    assert_eq!(stats.rule_errors, bobs as u64);
    assert_eq!(out.lines().filter(|l| l.contains("log_on_login")).count(), logins, "every login logged");
    assert_eq!(out.lines().filter(|l| l.contains("mail_on_login")).count(), logins - bobs);
    let d = pg.dump();
    assert_eq!(rows(&d, "herald_outbox").len(), logins - bobs);
    let errors = rows(&d, "herald_rule_error");
    assert_eq!(errors.len(), bobs);
    assert!(errors[0].contains("R0005") && errors[0].contains("no_bob"), "{}", errors[0]);
}

/// The stateful rules of tests/stateful.rs (windows, throttles, `after`).
const STATEFUL: &str = r#"
rule per_user {
  match login_failed { context.username: name }
  window 10m by name count >= 3
  action log(message: "count={window.count} first={window.first} last={window.last}")
}
rule per_ip_users {
  match login_failed { client_ip: ip, context.username: name }
  window 5m by ip distinct name >= 2
  action log(message: "count={window.count} distinct={window.distinct}")
}
rule quiet {
  match login_failed { context.username: name }
  throttle 10m by name
  action log(message: "suppressed={throttle.suppressed}")
}
rule global {
  match login_failed
  throttle 1h
  action log(message: "suppressed={throttle.suppressed}")
}
rule seq {
  match login_failed { context.username: name }
  after login as prev { user.username: name, client_ip: ip } within 10m
  action log(message: "prev={prev.created} ip={ip}")
}
"#;

/// A deterministic stream: bursts, gaps, events out of order, repeats.
fn stateful_input(n: usize) -> String {
    let users = ["ann", "ben", "cid"];
    let ips = ["10.0.0.1", "10.0.0.2"];
    let steps = [0i64, 60, 60, 300, 0, 600, -60, 1800, 60, -300, 3600, 60];
    let mut t = 1_767_225_600i64; // 2026-01-01T00:00:00Z
    let mut out = String::new();
    for i in 0..n {
        t += steps[i % steps.len()];
        let user = users[(i * 7 / 3) % users.len()];
        let ip = ips[(i / 4) % ips.len()];
        let created = time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let id = if i % 17 == 16 { i - 3 } else { i };
        let ev = if i % 5 == 0 {
            serde_json::json!({"action": "login", "event_uuid": format!("00000000-0000-4000-8000-{id:012x}"),
                "created": created, "client_ip": ip, "user": {"username": user}})
        } else {
            serde_json::json!({"action": "login_failed", "event_uuid": format!("00000000-0000-4000-8000-{id:012x}"),
                "created": created, "client_ip": ip, "context": {"username": user}})
        };
        out.push_str(&ev.to_string());
        out.push('\n');
    }
    out
}

#[test]
fn window_and_throttle_state_agree_across_backends_and_a_restart() {
    let program = compile(STATEFUL);
    let text = stateful_input(400);
    let tmp = Tmp::new();
    let lite = open_sqlite(&tmp, "h.db", &program);
    let (expected, _) = run(&*lite, &program, &text, 1);
    assert!(expected.lines().count() > 50, "the rules fire");

    let db = TestDb::new("pgcore_state");
    let pg = open_pg(&db, &program);
    let (got, _) = run(&*pg, &program, &text, 1);
    assert_eq!(got, expected);
    assert_same(&herald_part(&lite.dump()), &herald_part(&pg.dump()));

    // In two parts, each on a fresh connection (a restart: the state cache
    // reads the windows back from the tables), batches of 50.
    let db2 = TestDb::new("pgcore_state_split");
    let half: usize = text.lines().take(230).map(|l| l.len() + 1).sum();
    let first = {
        let pg = open_pg(&db2, &program);
        run(&*pg, &program, &text[..half], 50).0
    };
    let pg = open_pg(&db2, &program);
    // A longer input that starts like the first: resumes at its checkpoint.
    let second = run(&*pg, &program, &text, 50).0;
    assert_eq!(format!("{first}{second}"), expected);
    let whole = herald_part(&lite.dump());
    let split = herald_part(&pg.dump());
    // The checkpoint row names the other input (the first part's hash).
    let strip = |d: &str| d.lines().filter(|l| !l.contains("\"source_key\"")).collect::<Vec<_>>().join("\n");
    assert_same(&strip(&whole), &strip(&split));
}

#[test]
fn two_senders_claiming_at_once_get_each_row_once() {
    let program = compile(POLICY);
    let db = TestDb::new("pgcore_claim");
    let pg = open_pg(&db, &program);
    pg.begin().unwrap();
    let mut ids = BTreeSet::new();
    for i in 0..300 {
        let to = vec![format!("u{i}@example.com")];
        ids.insert(pg.insert_outbox("r", &format!("e{i}"), &to, &[], &[], "s", "b").unwrap());
    }
    pg.commit().unwrap();
    let now = "2030-01-01T00:00:00.000000Z";
    let until = "2030-01-01T00:05:00.000000Z";
    let claimers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|owner| {
            let url = db.url.clone();
            std::thread::spawn(move || {
                let outbox = OutboxStore::open(Path::new(&url)).expect("the outbox opens");
                let mut got = Vec::new();
                loop {
                    let rows = outbox.claim(owner, Due::At(now), now, until, 0, 7).unwrap();
                    if rows.is_empty() {
                        break;
                    }
                    for r in rows {
                        assert!(outbox.mark_sent(r.id, owner, now).unwrap(), "the holder marks its row");
                        got.push(r.id);
                    }
                }
                got
            })
        })
        .collect();
    let got: Vec<Vec<i64>> = claimers.into_iter().map(|t| t.join().unwrap()).collect();
    let all: Vec<i64> = got.iter().flatten().copied().collect();
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "no row claimed twice");
    assert_eq!(distinct, ids, "every row claimed");
    assert!(
        got.iter().all(|g| !g.is_empty()),
        "both senders worked: {:?}",
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(pg.outbox_counts_of(Kind::Email).unwrap().sent, 300);
}

#[test]
fn leases_decide_who_may_record_a_result() {
    let program = compile(POLICY);
    let db = TestDb::new("pgcore_lease");
    let pg = open_pg(&db, &program);
    let id = pg.insert_outbox("r", "e", &["a@example.com".into()], &[], &[], "s", "b").unwrap();
    let wid = pg.insert_webhook("r", "e", "https://example.com/h", "POST", "{}", "{}").unwrap();
    let outbox = OutboxStore::open(Path::new(&db.url)).unwrap();
    let t0 = "2030-01-01T00:00:00.000000Z";
    let t1 = "2030-01-01T00:01:00.000000Z";
    let t2 = "2030-01-01T00:02:00.000000Z";
    let rows = outbox.claim("a", Due::At(t0), t0, t1, 0, 10).unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id], "emails only");
    // Leased to `a` until t1: `b` gets nothing before, and the row after.
    assert!(outbox.claim("b", Due::At(t0), t0, t1, 0, 10).unwrap().is_empty());
    assert_eq!(outbox.leased_elsewhere("b", t0).unwrap(), 1);
    assert!(!outbox.mark_sent(id, "b", t0).unwrap(), "only the holder records");
    let taken = outbox.claim("b", Due::At(t2), t2, "2030-01-01T00:03:00.000000Z", 0, 10).unwrap();
    assert_eq!(taken.len(), 1);
    assert!(outbox.renew(id, "a", t2).unwrap().is_none(), "a's lease was taken over");
    assert!(outbox.mark_failed(id, "b", "refused", "2031-01-01T00:00:00.000000Z").unwrap());
    // Failed with a retry time in the future: not due, unless any is asked.
    assert_eq!(outbox.count_due(Due::At(t2)).unwrap(), 0);
    assert_eq!(outbox.count_due(Due::Any).unwrap(), 1);
    // Webhooks: a 4xx gives the row up.
    let w = outbox.claim_of(Kind::Webhook, "w", Due::Any, t0, t1, 0, 10).unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].id, wid);
    let failure = store::AttemptFailure { error: "404", retry_at: None, status: Some(404), excerpt: Some("no") };
    assert!(outbox.mark_attempt_failed(wid, "w", &failure, t0).unwrap());
    assert_eq!(outbox.given_up(Kind::Webhook).unwrap(), 1);
    assert!(outbox.claim_of(Kind::Webhook, "w", Due::Any, t2, t2, 0, 10).unwrap().is_empty());
    let mut listed = Vec::new();
    outbox
        .for_each(|r| {
            listed.push((r.id, r.status, r.kind));
            Ok(())
        })
        .unwrap();
    assert_eq!(listed, vec![(id, "failed".into(), "email".into()), (wid, "failed".into(), "webhook".into())]);
}

/// The error opening `url` (which must fail).
fn open_err(url: &str, program: &Program, options: OpenOptions) -> String {
    match store::open(Path::new(url), program.schema.clone(), options) {
        Ok(_) => panic!("{url} opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unreachable_silent_and_foreign_servers_are_clear_errors() {
    let program = compile(POLICY);
    let quick = OpenOptions { wait: Duration::from_secs(2), mapping: None };
    // Nothing listens.
    let e = open_err("postgres://postgres@127.0.0.1:1/x", &program, quick.clone());
    assert!(e.contains("cannot open the database"), "{e}");
    // Something accepts and never answers: bounded by the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(6));
        drop(conns);
    });
    let started = Instant::now();
    let url = format!("postgres://postgres@127.0.0.1:{port}/x");
    let e = open_err(&url, &program, quick.clone());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(e.contains("did not complete the connection"), "{e}");
    keep.join().unwrap();
    // Something that answers garbage.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        if let Some(Ok(mut s)) = garbage.incoming().next() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nnot postgres at all");
        }
    });
    let url = format!("postgres://postgres@127.0.0.1:{port}/x");
    let e = open_err(&url, &program, quick.clone());
    assert!(e.contains("cannot open the database"), "{e}");
    // A database that does not exist: the server's own words.
    let db = TestDb::new("pgcore_nodb");
    let url = db.url.replace(&db.name, "herald_no_such_database");
    let e = open_err(&url, &program, quick.clone());
    assert!(e.contains("herald_no_such_database"), "{e}");
}

#[test]
fn the_cli_runs_on_a_postgres_url() {
    let tmp = Tmp::new();
    let db = TestDb::new("pgcore_cli");
    let policy = tmp.write("p.herald", POLICY);
    let events = tmp.write("events.ndjson", input(1));
    let init = herald(&["db", "init", "--db", &db.url, &policy], None).ok();
    assert!(init.stderr.contains("is ready"), "{}", init.stderr);
    let out = herald(&["run", "--quiet", "--db", &db.url, "--events", &events, &policy], None).ok();
    assert!(out.stdout.lines().count() > 5);
    let again = herald(&["run", "--quiet", "--db", &db.url, "--events", &events, &policy], None).ok();
    assert_eq!(again.stdout, "");
    let listed = herald(&["outbox", "list", "--db", &db.url, "--format", "json"], None).ok();
    assert!(listed.stdout.contains("it@example.com") && listed.stdout.contains("webhook"), "{}", listed.stdout);
    // Commands that need SQLite for now say so, with the usage exit code.
    let serve = herald(&["serve", "--db", &db.url, &policy], None);
    assert_eq!(serve.code, 2, "{}", serve.stderr);
    assert!(serve.stderr.contains("needs a SQLite store"), "{}", serve.stderr);
    let trace = herald(&["trace", "--db", &db.url, "--events", &events, &policy], None);
    assert_eq!(trace.code, 2, "{}", trace.stderr);
    assert!(trace.stderr.contains("need a SQLite store"), "{}", trace.stderr);
    // A server that is not there: exit 2 and a sentence.
    let down = herald(&["run", "--db", "postgres://postgres@127.0.0.1:1/x", "--events", &events, &policy], None);
    assert_eq!(down.code, 2);
    assert!(down.stderr.contains("cannot open the database"), "{}", down.stderr);
}

#[test]
fn killed_runs_on_postgres_resume_to_the_uninterrupted_result() {
    let tmp = Tmp::new();
    // Without the webhook rule: `run` delivers webhooks, and how many
    // attempts a killed run made is not part of what this compares.
    let policy_text = POLICY.replace("action webhook(url:", "action log(message: \"hook\", level: \"info\") #");
    let policy = tmp.write("p.herald", &policy_text);
    let events = tmp.write("events.ndjson", input(600));
    let args = |url: &str| -> Vec<String> {
        ["run", "--quiet", "--db", url, "--events", &events, "--batch", "200", &policy].map(String::from).to_vec()
    };
    let reference = TestDb::new("pgcore_crash_ref");
    let started = Instant::now();
    let a = args(&reference.url);
    let out = herald(&a.iter().map(String::as_str).collect::<Vec<_>>(), None).ok();
    let full = started.elapsed();
    assert!(out.stdout.lines().count() > 5_000, "the run does real work");
    let program = compile(&policy_text);
    let expected = herald_part(&open_pg(&reference, &program).dump());
    assert!(!expected.contains("\"kind\":\"webhook\""));

    let crashed = TestDb::new("pgcore_crash");
    let delays = [Duration::from_millis(50), full / 5, full / 3, full / 2];
    let (mut runs, mut interrupted) = (0, 0);
    for delay in delays.iter().copied().chain(std::iter::repeat(Duration::ZERO)) {
        runs += 1;
        assert!(runs < 30, "the run never finished");
        let a = args(&crashed.url);
        let mut child = command(&a.iter().map(String::as_str).collect::<Vec<_>>())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if delay.is_zero() {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(interrupted >= 2, "only {interrupted} runs were killed mid-way (a full run takes {full:?})");
    let got = herald_part(&open_pg(&crashed, &program).dump());
    assert_same(&expected, &got);

    // And an uninterrupted SQLite run of the same input leaves the same.
    let lite = Store::open(&tmp.path("h.db"), program.schema.clone()).unwrap();
    drop(lite);
    let a = args(&tmp.p("h.db"));
    herald(&a.iter().map(String::as_str).collect::<Vec<_>>(), None).ok();
    let lite = Store::open(&tmp.path("h.db"), program.schema.clone()).unwrap();
    assert_same(&herald_part(&lite.dump()), &expected);
}

#[test]
fn a_lock_held_elsewhere_ends_the_run_with_a_timeout_not_a_hang() {
    let tmp = Tmp::new();
    let db = TestDb::new("pgcore_lock");
    let policy = tmp.write("p.herald", POLICY);
    let events = tmp.write("events.ndjson", input(1));
    herald(&["db", "init", "--db", &db.url, &policy], None).ok();
    // Another session holds the firings table; the URL's own `options`
    // shorten the lock timeout (they are kept beside Herald's).
    let mut holder = db.client();
    holder.batch_execute("BEGIN; LOCK TABLE herald.herald_firing IN ACCESS EXCLUSIVE MODE").unwrap();
    let url = format!("{}?options=-c%20lock_timeout%3D300", db.url);
    let started = Instant::now();
    let out = herald(&["run", "--quiet", "--db", &url, "--events", &events, &policy], None);
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("lock timeout"), "{}", out.stderr);
    holder.batch_execute("ROLLBACK").unwrap();
    // Nothing of the failed batch was kept: the next run does it all.
    let n: i64 = db.client().query_one("SELECT count(*) FROM herald.herald_processed", &[]).unwrap().get(0);
    assert_eq!(n, 0);
    let again = herald(&["run", "--quiet", "--db", &url, "--events", &events, &policy], None).ok();
    assert!(again.stdout.lines().count() > 5);
}
