//! The command-line contract of `run`, `db init`, `db load`, `outbox list`
//! and `demo`: output formats and exit codes.

mod runtime_support;

use runtime_support::*;
use serde_json::Value;

fn tables(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
    st.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
}

fn fresh(tmp: &Tmp) -> String {
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    db
}

#[test]
fn run_prints_one_json_line_per_firing_and_a_summary() {
    let tmp = Tmp::new();
    let db = fresh(&tmp);
    let mut args = vec!["run", "--db", &db, "--events", AUTHENTIK_EVENTS];
    args.extend(AUTHENTIK_POLICIES);
    let out = herald(&args, None).ok();
    let lines = out.stdout_lines();
    assert!(lines.len() >= 5, "{}", out.stdout);
    let events: Vec<Value> = std::fs::read_to_string(root().join(AUTHENTIK_EVENTS))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for l in &lines {
        let obj = l.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys, ["event_uuid", "rule", "line"], "{l}");
        // The line number points at the event with that id.
        let n = l["line"].as_u64().unwrap() as usize;
        assert_eq!(events[n - 1]["event_uuid"], l["event_uuid"], "{l}");
        assert!(AUTHENTIK_POLICIES.iter().any(|p| std::fs::read_to_string(root().join(p))
            .unwrap()
            .contains(&format!("rule {} ", l["rule"].as_str().unwrap()))));
    }
    // The summary on stderr: counts, elapsed time and rate.
    let s = &out.stderr;
    assert!(s.contains(&format!("herald: {} events in ", events.len())), "{s}");
    assert!(s.contains(" events/s)"), "{s}");
    assert!(s.contains(&format!("fired {} rules on ", lines.len())), "{s}");
    // Two example events carry values the reference policies cannot use as
    // `User` keys (an expanded diff of user objects, a uuid for an int key):
    // rule errors, per the language's run-time semantics.
    assert!(s.contains("dead letters: 0, rule errors: 2"), "{s}");
    assert!(s.contains("line 17: rule `group_addition_history` failed: R0001"), "{s}");
    assert!(s.contains("line 44: rule `archive_ssh_keys_on_deactivation` failed: R0001"), "{s}");
    assert!(s.contains("queued in the outbox"), "{s}");

    // --quiet: the same stdout, nothing on stderr.
    let tmp2 = Tmp::new();
    let db2 = fresh(&tmp2);
    let quiet = run(&db2, AUTHENTIK_EVENTS, &[], &AUTHENTIK_POLICIES).ok();
    assert_eq!(quiet.stdout, out.stdout);
    // --quiet drops the summary only: the per-line rule-error reports stay.
    assert!(!quiet.stderr.contains("events in"), "{}", quiet.stderr);
    let reports: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("herald: line ")).collect();
    assert_eq!(quiet.stderr.lines().collect::<Vec<_>>(), reports);
}

#[test]
fn exit_codes() {
    let tmp = Tmp::new();
    let db = fresh(&tmp);
    let bad_policy = tmp.write("bad.herald", "rule r { match login where event.nope == 1 }\n");
    let compile = run(&db, AUTHENTIK_EVENTS, &[], &[&bad_policy]).expect_code(1);
    assert!(compile.stderr.contains("nope"), "{}", compile.stderr);
    let missing = run(&db, &tmp.p("missing.ndjson"), &[], &AUTHENTIK_POLICIES).expect_code(2);
    assert!(missing.stderr.contains("missing.ndjson"), "{}", missing.stderr);
    // A directory where the database should be.
    std::fs::create_dir(tmp.path("dir.db")).unwrap();
    run(&tmp.p("dir.db"), AUTHENTIK_EVENTS, &[], &AUTHENTIK_POLICIES).expect_code(2);
    // A file that is not a database.
    let junk = tmp.write("junk.db", "this is not SQLite, just text that is long enough to have a header......");
    run(&junk, AUTHENTIK_EVENTS, &[], &AUTHENTIK_POLICIES).expect_code(2);
    run(&db, AUTHENTIK_EVENTS, &["--batch", "0"], &AUTHENTIK_POLICIES).expect_code(2);
    run(&db, AUTHENTIK_EVENTS, &["--engine", "turbo"], &AUTHENTIK_POLICIES).expect_code(2);
    run(&db, AUTHENTIK_EVENTS, &["--schema", "no/such/schema.herald"], &AUTHENTIK_POLICIES).expect_code(2);
    run(&db, AUTHENTIK_EVENTS, &[], &["no/such/policy.herald"]).expect_code(2);
    herald(&["run"], None).expect_code(2);
    herald(&["frobnicate"], None).expect_code(2);
    // Bad lines are not fatal.
    let events = tmp.write("bad.ndjson", "{oops\n");
    run(&db, &events, &[], &AUTHENTIK_POLICIES).ok();
    herald(&["--help"], None).ok();
}

#[test]
fn db_init_creates_the_schema_tables_and_herald_tables() {
    let tmp = Tmp::new();
    let out = herald(&["db", "init", "--db", &tmp.p("a.db")], None).ok();
    assert!(out.stderr.contains("is ready"), "{}", out.stderr);
    let t = tables(&tmp.path("a.db"));
    for name in [
        "User",
        "Group",
        "Application",
        "PolicyBinding",
        "herald_notification",
        "herald_outbox",
        "herald_firing",
        "herald_dead_letter",
        "herald_rule_error",
    ] {
        assert!(t.iter().any(|x| x == name), "{name} in {t:?}");
    }
    // Columns as the contract names them.
    let conn = rusqlite::Connection::open(tmp.path("a.db")).unwrap();
    let cols = |table: &str| -> Vec<String> {
        let mut st = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')")).unwrap();
        st.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
    };
    for c in ["pk", "username", "name", "email", "is_active", "attributes"] {
        assert!(cols("User").contains(&c.to_string()), "{c}");
    }
    for c in ["id", "rule", "event_uuid", "user_pk", "severity", "body", "created", "seen"] {
        assert!(cols("herald_notification").contains(&c.to_string()), "{c}");
    }
    for c in [
        "id",
        "rule",
        "event_uuid",
        "to_addrs",
        "cc",
        "bcc",
        "subject",
        "body",
        "status",
        "attempts",
        "last_error",
        "created",
        "sent_at",
    ] {
        assert!(cols("herald_outbox").contains(&c.to_string()), "{c}");
    }
    // Idempotent.
    herald(&["db", "init", "--db", &tmp.p("a.db")], None).ok();

    // A custom schema.
    herald(&["db", "init", "--schema", "examples/github/schema.herald", "--db", &tmp.p("g.db")], None).ok();
    let t = tables(&tmp.path("g.db"));
    assert!(t.iter().any(|x| x == "Member") && t.iter().any(|x| x == "Repo"), "{t:?}");
    assert!(!t.iter().any(|x| x == "User"), "{t:?}");
    // A schema that does not compile: exit 1.
    let bad = tmp.write("bad.herald", "entity X key k: nosuchtype { }\n");
    herald(&["db", "init", "--schema", &bad, "--db", &tmp.p("b.db")], None).expect_code(1);
}

#[test]
fn db_load_errors_name_the_row_and_field_and_load_nothing() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    herald(&["db", "init", "--db", &db], None).ok();
    let before = dump(&tmp.path("h.db"), None, None);
    let cases: [(&str, &[&str]); 5] = [
        (r#"{"Nobody": [{"pk": 1}]}"#, &["Nobody"]),
        (
            r#"{"User": [{"pk": 1, "username": "a", "name": "A", "email": "", "is_active": true, "attributes": {}, "colour": "red"}]}"#,
            &["User[", "colour"],
        ),
        (
            r#"{"User": [{"pk": 1, "username": "a", "name": "A", "email": "", "attributes": {}}]}"#,
            &["User[", "is_active"],
        ),
        (
            r#"{"User": [{"pk": 1, "username": "a", "name": "A", "email": "", "is_active": true, "attributes": {}},
                         {"pk": 2, "username": "b", "name": "B", "email": "", "is_active": "yes", "attributes": {}}]}"#,
            &["User[", "is_active", "bool"],
        ),
        (r#"{"User": [{"pk": 1, "#, &["line 1"]),
    ];
    for (text, needles) in cases {
        let f = tmp.write("f.json", text);
        let out = herald(&["db", "load", "--db", &db, &f], None).expect_code(2);
        for n in needles {
            assert!(out.stderr.contains(n), "`{n}` in:\n{}", out.stderr);
        }
        assert!(out.stderr.contains("nothing was loaded") || needles == ["line 1"], "{}", out.stderr);
        assert_eq!(dump(&tmp.path("h.db"), None, None), before, "nothing loaded for {text}");
    }
    // The second row is the bad one: the message says which.
    let f = tmp.write(
        "f.json",
        r#"{"User": [{"pk": 1, "username": "a", "name": "A", "email": "", "is_active": true, "attributes": {}},
                     {"pk": 2, "username": "b", "name": "B", "email": "", "is_active": "yes", "attributes": {}}]}"#,
    );
    let out = herald(&["db", "load", "--db", &db, &f], None).expect_code(2);
    let first_row_named = out.stderr.contains("User[0]") || out.stderr.contains("User[1]");
    assert!(first_row_named, "{}", out.stderr);
    assert!(out.stderr.contains("(row key 2)"), "{}", out.stderr);
    // A missing fixtures file.
    herald(&["db", "load", "--db", &db, &tmp.p("none.json")], None).expect_code(2);
    // And a good one loads.
    let ok = herald(&["db", "load", "--db", &db, AUTHENTIK_FIXTURES], None).ok();
    assert!(ok.stderr.contains("8 User"), "{}", ok.stderr);
}

#[test]
fn outbox_list_shows_queued_email() {
    let tmp = Tmp::new();
    let db = fresh(&tmp);
    run(&db, AUTHENTIK_EVENTS, &[], &[AUTHENTIK_POLICIES[4]]).ok();
    let human = herald(&["outbox", "list", "--db", &db], None).ok();
    assert!(human.stdout.contains("dave.kowalski@example.com"), "{}", human.stdout);
    assert!(human.stdout.contains("pending"), "{}", human.stdout);
    let json = herald(&["outbox", "list", "--db", &db, "--format", "json"], None).ok();
    let text = json.stdout.trim();
    let parsed: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => a,
        Ok(other) => vec![other],
        Err(_) => text.lines().map(|l| serde_json::from_str(l).expect("JSON lines")).collect(),
    };
    assert!(!parsed.is_empty());
    assert!(json.stdout.contains("Welcome to authentik"), "{}", json.stdout);
    herald(&["outbox", "list", "--db", &tmp.p("none.db")], None).expect_code(2);
}

#[test]
fn demo_runs_the_bundled_example() {
    let tmp = Tmp::new();
    for engine in ["interp", "jit"] {
        let out = herald(&["demo", "--engine", engine, "--db", &tmp.p("demo.db")], None).ok();
        assert!(out.stdout.contains("\"rule\":\"welcome_email\""), "{}", out.stdout);
        assert!(out.stdout.contains("What happened"), "{}", out.stdout);
        assert!(out.stderr.contains("events/s"), "{}", out.stderr);
        // The demo's store is the same as the five policies run by hand.
        let by_hand = Tmp::new();
        let db = fresh(&by_hand);
        let manual = run(&db, AUTHENTIK_EVENTS, &["--engine", engine], &AUTHENTIK_POLICIES).ok();
        assert!(out.stdout.starts_with(&manual.stdout), "{}\nvs\n{}", out.stdout, manual.stdout);
        let a = effects_dump(&tmp.path("demo.db"), None);
        let b = effects_dump(&by_hand.path("h.db"), None);
        // Dead letters name their source; the demo's is the bundled path.
        assert_eq!(a, b.replace(&by_hand.p("x"), "x"));
    }
}
