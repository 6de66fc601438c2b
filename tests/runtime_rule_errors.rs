//! A run-time error in a rule rolls back that rule's effects for that event
//! only; other rules and other events still apply; the error is recorded in
//! `herald_rule_error` with its R code; later rules see earlier rules'
//! writes.

mod runtime_support;

use runtime_support::*;
use serde_json::{json, Value};

const POLICY: &str = "tests/runtime_data/rule_errors.herald";

fn event(n: u32, pk: i64, message: Option<&str>) -> String {
    let mut ctx = json!({"model": {"app": "authentik_core", "model_name": "user", "pk": pk, "name": "x"}});
    if let Some(m) = message {
        ctx["message"] = json!(m);
    }
    json!({
        "event_uuid": format!("00000000-0000-4000-8000-{n:012}"),
        "action": "model_updated",
        "created": "2026-04-14T08:00:00Z",
        "context": ctx,
    })
    .to_string()
}

fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

struct Ran {
    out: Out,
    dump: String,
}

fn run_events(engine: &str, fixtures_patch: &str, lines: &[String]) -> Ran {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let patch = tmp.write("patch.json", fixtures_patch);
    load(&db, None, &patch);
    let events = tmp.write("events.ndjson", lines.join("\n") + "\n");
    let out = run(&db, &events, &["--engine", engine], &[POLICY]).ok();
    Ran { out, dump: dump(&tmp.path("h.db"), None, Some(&tmp)) }
}

fn user(dump: &str, pk: i64) -> Value {
    table(dump, "User").into_iter().find(|u| u["pk"] == pk).expect("user row")
}

fn rows_for<'a>(rows: &'a [Value], event: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["event_uuid"] == event).collect()
}

#[test]
fn a_failing_rule_rolls_back_only_its_own_effects_for_that_event() {
    for engine in ["interp", "jit"] {
        // User 12 gets a message-less event (b fails), then user 15 an event
        // with a message (b succeeds), then user 12 again without.
        let lines = [event(1, 12, None), event(2, 15, Some("Robert Martin")), event(3, 12, None)];
        let ran = run_events(engine, "{}", &lines);

        // The errors: b on events 1 and 3, with R0002 and a message naming
        // the field and the policy location.
        let errors = table(&ran.dump, "herald_rule_error");
        let b_errors: Vec<&Value> = errors.iter().filter(|e| e["rule"] == "b_fails").collect();
        assert_eq!(b_errors.len(), 2, "{errors:#?}");
        assert_eq!(b_errors[0]["event_uuid"], uuid(1));
        assert_eq!(b_errors[1]["event_uuid"], uuid(3));
        for e in &b_errors {
            assert_eq!(e["code"], "R0002");
            let msg = e["message"].as_str().unwrap();
            assert!(msg.contains("name"), "{msg}");
            assert!(msg.contains(POLICY), "the location is named: {msg}");
        }
        assert_eq!(b_errors[0]["line"], 1);
        assert_eq!(b_errors[1]["line"], 3);

        // b's writes and notification of events 1 and 3 are gone; a's stay.
        let alice = user(&ran.dump, 12);
        assert_eq!(alice["name"], "Alice Example-Weber");
        let attrs: Value = serde_json::from_str(alice["attributes"].as_str().unwrap()).unwrap();
        assert_eq!(attrs["a_mark"], format!("a saw {}", uuid(3)));
        assert!(attrs.get("b_mark").is_none(), "b's write was rolled back: {attrs}");
        // b succeeded on event 2.
        let bob = user(&ran.dump, 15);
        assert_eq!(bob["name"], "Robert Martin");
        let attrs: Value = serde_json::from_str(bob["attributes"].as_str().unwrap()).unwrap();
        assert_eq!(attrs["b_mark"], true);

        let notes = table(&ran.dump, "herald_notification");
        let bodies = |ev: u32| -> Vec<String> {
            rows_for(&notes, &uuid(ev)).iter().map(|n| n["body"].as_str().unwrap().to_string()).collect()
        };
        // Later rules see earlier rules' writes of the same event (a's mark,
        // b's committed name), never a rolled-back one.
        assert_eq!(bodies(1), vec![format!("c sees name=Alice Example-Weber a=a saw {} b=", uuid(1))]);
        assert_eq!(
            bodies(2),
            vec!["from b".to_string(), format!("c sees name=Robert Martin a=a saw {} b=true", uuid(2))]
        );
        assert_eq!(bodies(3), vec![format!("c sees name=Alice Example-Weber a=a saw {} b=", uuid(3))]);

        // Firings: a and c on every event, b only on event 2.
        let firings: Vec<(String, String)> = table(&ran.dump, "herald_firing")
            .iter()
            .map(|f| (f["rule"].as_str().unwrap().to_string(), f["event_uuid"].as_str().unwrap().to_string()))
            .collect();
        let expect: Vec<(String, String)> = [
            ("a_marks", 1),
            ("c_reads", 1),
            ("a_marks", 2),
            ("b_fails", 2),
            ("c_reads", 2),
            ("a_marks", 3),
            ("c_reads", 3),
        ]
        .iter()
        .map(|(r, n)| (r.to_string(), uuid(*n)))
        .collect();
        assert_eq!(firings, expect);
        let stdout: Vec<(String, i64)> = ran
            .out
            .stdout_lines()
            .iter()
            .map(|l| (l["rule"].as_str().unwrap().to_string(), l["line"].as_i64().unwrap()))
            .collect();
        assert_eq!(stdout.len(), 7);
        assert_eq!(stdout[3], ("b_fails".to_string(), 2));
        // The failing events are still processed (a replay does not retry them).
        assert_eq!(table(&ran.dump, "herald_processed").len(), 3);
        assert!(ran.out.stderr.contains("rule `b_fails` failed: R0002"), "{}", ran.out.stderr);
    }
}

#[test]
fn a_dynamic_type_error_is_r0001_and_other_events_continue() {
    for engine in ["interp", "jit"] {
        // Alice's level is a string: `+ 1` fails at run time. Bob's is a number.
        let patch = r#"{"User": [
            {"pk": 12, "username": "alice", "name": "Alice Example-Weber", "email": "alice@example.com", "is_active": true, "attributes": {"level": "high"}},
            {"pk": 15, "username": "bob", "name": "Bob Martin", "email": "bob.martin@example.com", "is_active": true, "attributes": {"level": 5}}
        ]}"#;
        let lines = [event(1, 12, Some("Alice")), event(2, 15, Some("Bob"))];
        let ran = run_events(engine, patch, &lines);
        let errors = table(&ran.dump, "herald_rule_error");
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0]["rule"], "d_dynamic");
        assert_eq!(errors[0]["code"], "R0001");
        assert_eq!(errors[0]["event_uuid"], uuid(1));
        let msg = errors[0]["message"].as_str().unwrap();
        assert!(msg.contains("string"), "the message says what was found: {msg}");
        let notes = table(&ran.dump, "herald_notification");
        let d_notes: Vec<&Value> = notes.iter().filter(|n| n["body"] == "level above one").collect();
        assert_eq!(d_notes.len(), 1);
        assert_eq!(d_notes[0]["event_uuid"], uuid(2));
        assert_eq!(d_notes[0]["user_pk"], 15);
        // a, b and c all applied on event 1 despite d's failure.
        assert_eq!(user(&ran.dump, 12)["name"], "Alice");
    }
}

/// `notify` keys take the recipient's key type, as lookups do (an int key
/// is an int or a whole float): `12.0` is user 12; `"12"`, `"abc"`, `1.5` or
/// an object are R0001, not a notification for nobody.
#[test]
fn notify_converts_keys_to_the_recipient_key_type() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    let pks = [json!("12"), json!(12.0), json!("abc"), json!(1.5), json!({"pk": 12}), json!(15)];
    let lines: Vec<String> = pks
        .iter()
        .enumerate()
        .map(|(i, pk)| {
            json!({
                "event_uuid": uuid(i as u32 + 1),
                "action": "login",
                "created": "2026-04-14T08:00:00Z",
                "user": {"pk": pk},
                "context": {"auth_method_args": {"known_device": false}},
            })
            .to_string()
        })
        .collect();
    let events = tmp.write("events.ndjson", lines.join("\n") + "\n");
    // Users 12 and 15 exist: a notification for a key with no row is dropped.
    load(&db, None, AUTHENTIK_FIXTURES);
    run(&db, &events, &[], &["examples/authentik/unknown_device_login.herald"]).ok();
    let conn = rusqlite::Connection::open(tmp.path("h.db")).unwrap();
    let mut st =
        conn.prepare("SELECT event_uuid, user_pk, typeof(user_pk) FROM herald_notification ORDER BY id").unwrap();
    let rows: Vec<(String, i64, String)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows, vec![(uuid(2), 12, "integer".to_string()), (uuid(6), 15, "integer".to_string())]);
    let errors = table(&dump(&tmp.path("h.db"), None, None), "herald_rule_error");
    let failed: Vec<(&str, &str)> =
        errors.iter().map(|e| (e["event_uuid"].as_str().unwrap(), e["code"].as_str().unwrap())).collect();
    assert_eq!(
        failed,
        vec![
            (uuid(1).as_str(), "R0001"),
            (uuid(3).as_str(), "R0001"),
            (uuid(4).as_str(), "R0001"),
            (uuid(5).as_str(), "R0001")
        ]
    );
}
