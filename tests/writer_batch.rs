//! The writer's batch buffers (`engine::batch`, issue 12): firing,
//! notification and replay rows are inserted once per transaction, yet a
//! store records exactly what per-event statements recorded. Each scenario
//! runs on a real SQLite file twice — with the default batch and with
//! `--batch 1`, where every event is its own transaction and so its rows
//! are written before the next event runs — and the two stores must dump
//! the same.

mod runtime_support;

use runtime_support::*;
use serde_json::json;

const POLICY: &str = r#"
rule note {
  match login_failed { user.pk: pk, context.username: name }
  guard name != "boom"
  action notify(to: pk, severity: "warning", body: "failed sign-in for {name}")
}
# Fails when applying its second notification (R0001: "de" is no int key),
# after its first was applied.
rule bad_key {
  match login_failed { context.username: name }
  guard name == "boom"
  action {
    notify(to: 4, body: "applied only if the rule succeeds")
    notify(to: User[12].attributes.settings.locale, body: "never")
  }
}
rule offboard {
  match logout { user.pk: pk }
  action delete User[pk]
}
"#;

fn failed(n: u32, pk: i64, name: &str) -> String {
    json!({
        "event_uuid": format!("00000000-0000-4000-8000-{n:012}"),
        "action": "login_failed",
        "created": "2026-04-14T08:00:00Z",
        "user": {"pk": pk},
        "context": {"username": name},
    })
    .to_string()
}

fn logout(n: u32, pk: i64) -> String {
    json!({
        "event_uuid": format!("00000000-0000-4000-8000-{n:012}"),
        "action": "logout",
        "created": "2026-04-14T08:00:00Z",
        "user": {"pk": pk},
    })
    .to_string()
}

/// Run `policy` over `lines` on a fresh store with the example fixtures;
/// returns the dump, the run's output and the store's path.
fn run_once(tmp: &Tmp, name: &str, policy: &str, lines: &[String], extra: &[&str]) -> (String, Out) {
    let db = tmp.p(&format!("{name}.db"));
    load(&db, None, AUTHENTIK_FIXTURES);
    // One file for both runs: its name is in the checkpoint row.
    let events = tmp.write("events.ndjson", lines.join("\n") + "\n");
    let mut args = vec!["run", "--db", &db, "--events", &events];
    args.extend_from_slice(extra);
    args.push(policy);
    let out = herald(&args, None).ok();
    let dump = dump(&tmp.path(&format!("{name}.db")), None, Some(tmp)).replace(&format!("{name}.db"), "DB");
    (dump, out)
}

/// The dumps of two stores are the same (else the first differing line).
fn same(a: &str, b: &str) {
    if a != b {
        let diff = a.lines().zip(b.lines()).enumerate().find(|(_, (x, y))| x != y);
        panic!("the stores differ ({} vs {} lines); first difference: {diff:?}", a.lines().count(), b.lines().count());
    }
}

fn integrity(db: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check")
}

#[test]
fn a_batch_mixing_errors_drops_deletes_and_duplicates_records_what_each_event_did() {
    let tmp = Tmp::new();
    let policy = tmp.write("policy.herald", POLICY);
    let lines = [
        failed(1, 31, "dave.k"),
        // Deletes user 31 in the same batch: the first notification was
        // stored before the delete, the next one to 31 is dropped.
        logout(2, 31),
        failed(3, 31, "dave.k"),
        // `bad_key` fails after its first notification was applied: none of
        // its notifications is stored.
        failed(4, 15, "boom"),
        // A duplicate of an event recorded earlier in the same batch.
        failed(1, 31, "dave.k"),
        failed(5, 999, "nobody"),
        failed(6, 15, "bob"),
    ];
    let (batched, out) = run_once(&tmp, "batched", &policy, &lines, &[]);
    let (single, _) = run_once(&tmp, "single", &policy, &lines, &["--batch", "1"]);
    same(&batched, &single);

    let notes: Vec<(i64, String)> = table(&batched, "herald_notification")
        .iter()
        .map(|n| (n["user_pk"].as_i64().unwrap(), n["body"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(notes, vec![(31, "failed sign-in for dave.k".into()), (15, "failed sign-in for bob".into())]);
    let severities: Vec<String> =
        table(&batched, "herald_notification").iter().map(|n| n["severity"].as_str().unwrap().to_string()).collect();
    assert_eq!(severities, ["warning", "warning"]);
    let firings: Vec<(String, i64)> = table(&batched, "herald_firing")
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_string(), f["line"].as_i64().unwrap()))
        .collect();
    let expected: Vec<(String, i64)> =
        [("note", 1), ("offboard", 2), ("note", 3), ("note", 6), ("note", 7)].map(|(r, l)| (r.into(), l)).into();
    assert_eq!(firings, expected, "firing rows in input order");
    let errors = table(&batched, "herald_rule_error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0]["rule"].as_str(), errors[0]["code"].as_str()), (Some("bad_key"), Some("R0001")));
    assert_eq!(table(&batched, "herald_processed").len(), 6, "one replay record per distinct event");

    // The summary counts what was stored: two notifications, two dropped
    // (the deleted user and 999), one duplicate.
    assert_eq!(out.stdout_lines().len(), 5, "{}", out.stdout);
    assert!(out.stderr.contains(" 2 notifications,"), "{}", out.stderr);
    assert!(out.stderr.contains("  2 notifications dropped: no such recipient\n"), "{}", out.stderr);
    assert!(out.stderr.contains("duplicate events skipped: 1"), "{}", out.stderr);
    assert_eq!(integrity(&tmp.path("batched.db")), "ok");
}

#[test]
fn buffers_written_mid_batch_keep_order_and_replay_protection() {
    // More rows than a buffer holds (4096), in one transaction: the
    // buffers are written between events, and a duplicate after that is
    // found in the store, not the buffer.
    let tmp = Tmp::new();
    let policy = tmp.write("policy.herald", POLICY);
    let users = [(2, "anon"), (4, "akadmin"), (12, "alice"), (15, "bob")];
    let mut lines: Vec<String> = (1..=5000u32)
        .map(|n| {
            let (pk, name) = users[n as usize % users.len()];
            failed(n, pk, name)
        })
        .collect();
    lines.push(failed(7, 12, "alice"));
    lines.push(failed(4999, 12, "alice"));
    let (batched, out) = run_once(&tmp, "batched", &policy, &lines, &[]);
    let (small, _) = run_once(&tmp, "small", &policy, &lines, &["--batch", "97"]);
    same(&batched, &small);
    let lines_fired: Vec<i64> = table(&batched, "herald_firing").iter().map(|f| f["line"].as_i64().unwrap()).collect();
    assert_eq!(lines_fired, (1..=5000).collect::<Vec<i64>>());
    assert_eq!(table(&batched, "herald_notification").len(), 5000);
    assert!(out.stderr.contains("duplicate events skipped: 2"), "{}", out.stderr);
    assert_eq!(integrity(&tmp.path("batched.db")), "ok");
}

#[test]
fn integrity_check_sees_a_check_constraint_herald_does_not_evaluate() {
    // Herald's connections skip CHECK constraints (their values come from
    // Herald's own enumerations); `PRAGMA integrity_check` still verifies
    // them, which is what the tests above rely on.
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.pragma_update(None, "ignore_check_constraints", true).expect("pragma");
    conn.execute(
        "INSERT INTO herald_notification (rule, event_uuid, user_pk, severity, body, created) \
         VALUES ('r', 'e', 12, 'loud', 'b', '2026-04-14T08:00:00.000000Z')",
        [],
    )
    .expect("insert");
    drop(conn);
    let report = integrity(&tmp.path("h.db"));
    assert!(report.contains("CHECK constraint failed"), "{report}");
}

const STATEFUL: &str = r#"
rule burst {
  match login_failed { context.username: name }
  window 2m by name count >= 3
  throttle 5m by name
  action log(message: "{window.count} failures of {name}")
}
rule broken {
  match login_failed { context.username: name }
  window 2m by name count >= 1
  action log(message: "{int(name)}")
}
"#;

#[test]
fn watermarks_written_once_per_transaction_match_one_transaction_per_event() {
    // `broken` fails on most events (R0001 from `int`), rolling back its
    // window entries while earlier events' watermark is not yet written.
    let tmp = Tmp::new();
    let policy = tmp.write("stateful.herald", STATEFUL);
    let lines: Vec<String> = (0..400u32)
        .map(|i| {
            let secs = 8 * 3600 + i * 11;
            json!({
                "event_uuid": format!("00000000-0000-4000-8000-{i:012}"),
                "action": "login_failed",
                "created": format!("2026-04-14T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60),
                "context": {"username": if i % 7 == 0 { "42".to_string() } else { format!("user{}", i % 5) }},
            })
            .to_string()
        })
        .collect();
    let (batched, out) = run_once(&tmp, "batched", &policy, &lines, &[]);
    let (single, _) = run_once(&tmp, "single", &policy, &lines, &["--batch", "1"]);
    same(&batched, &single);
    let marks = table(&batched, "herald_state_mark");
    assert_eq!(marks.len(), 3, "a window and a throttle, and a window: {marks:?}");
    assert!(table(&batched, "herald_rule_error").len() > 300);
    assert!(out.stderr.contains("failures of user"), "{}", out.stderr);
}
