//! `notify` to a recipient key with no row notifies nobody (as in
//! authentik): no notification row, the rule still fires, and the run
//! summary counts the dropped notifications. Both engines.

mod runtime_support;

use runtime_support::*;
use serde_json::json;

fn login(n: u32, pk: serde_json::Value) -> String {
    json!({
        "event_uuid": format!("00000000-0000-4000-8000-{n:012}"),
        "action": "login",
        "created": "2026-04-14T08:00:00Z",
        "user": {"pk": pk},
        "context": {"auth_method_args": {"known_device": false}},
    })
    .to_string()
}

#[test]
fn notify_to_a_missing_recipient_is_dropped_and_counted() {
    for engine in ["jit", "interp"] {
        let tmp = Tmp::new();
        let db = tmp.p("h.db");
        load(&db, None, AUTHENTIK_FIXTURES);
        // 12 and 15 exist; 999 and 1000 do not (1000 as a whole float).
        let lines = [login(1, json!(12)), login(2, json!(999)), login(3, json!(15)), login(4, json!(1000.0))];
        let events = tmp.write("events.ndjson", lines.join("\n") + "\n");
        let out = herald(
            &[
                "run",
                "--engine",
                engine,
                "--db",
                &db,
                "--events",
                &events,
                "examples/authentik/unknown_device_login.herald",
            ],
            None,
        )
        .ok();
        // The rule fired on every event: its action ran.
        assert_eq!(out.stdout_lines().len(), 4, "{engine}: {}", out.stdout);
        let notes = table(&dump(&tmp.path("h.db"), None, None), "herald_notification");
        let to: Vec<i64> = notes.iter().map(|n| n["user_pk"].as_i64().unwrap()).collect();
        assert_eq!(to, vec![12, 15], "{engine}");
        assert!(out.stderr.contains(" 2 notifications,"), "{engine}: {}", out.stderr);
        assert!(out.stderr.contains("  2 notifications dropped: no such recipient\n"), "{engine}: {}", out.stderr);
        assert!(table(&dump(&tmp.path("h.db"), None, None), "herald_rule_error").is_empty(), "{engine}");
    }
}
