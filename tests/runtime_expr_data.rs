//! Language v1's data expressions end to end, with the real binary and a
//! real SQLite store, under both engines: `??` in a `match`, a guard and a
//! body; an object literal stored into an `any` field and read back (and
//! compared by value); a projection `group.users.email` as the recipients
//! of `send_email`.

mod runtime_support;

use runtime_support::*;
use serde_json::{json, Value};

const ENGINES: [&str; 2] = ["interp", "jit"];

const POLICY: &str = r#"
const TAGS = { source: "herald", level: 1 }

rule remember_login {
  match login where event.context.geo.country ?? "unknown" == "unknown" or (event.client_ip ?? "") == "203.0.113.9"
  guard let u = User[int(event.user.pk)]
  guard (event.context.auth_method ?? "password") != "token"
  let ip = event.client_ip ?? "no ip"
  action {
    set u.attributes.last_login = {
      ip: ip,
      "geo country": event.context.geo.country ?? "unknown",
      tags: ["a", "b"],
      meta: TAGS,
      nested: { n: [1, 2], empty: {} },
    }
    log(message: "login {u.username}: {u.attributes.last_login}")
  }
}

rule read_back {
  match logout
  guard let u = User[int(event.user.pk)]
  guard u.attributes.last_login == {
    nested: { empty: {}, n: [1, 2] },
    "geo country": "unknown",
    ip: "198.51.100.7",
    tags: ["a", "b"],
    meta: { level: 1, source: "herald" },
  }
  action log(message: "read back {u.attributes.last_login.ip} for {u.username}")
}

rule tell_the_group {
  match model_updated { context.model: { model_name: "group", pk: pk } }
  guard let g = Group[pk]
  action send_email(to: g.users.email, subject: "{g.name} changed", body: "members: {g.users.username}")
}
"#;

fn event(n: u32, action: &str, extra: Value) -> String {
    let mut e = json!({
        "event_uuid": format!("00000000-0000-4000-8000-{n:012}"),
        "action": action,
        "created": "2026-04-14T08:00:00Z",
        "user": {"pk": 12, "username": "alice"},
    });
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e.to_string()
}

#[test]
fn defaults_objects_and_projections_end_to_end() {
    let events = [
        // No geo: the default "unknown" fires the rule; stored and logged.
        event(1, "login", json!({"client_ip": "198.51.100.7"})),
        // A country and another address: no default applies, no match.
        event(2, "login", json!({"client_ip": "198.51.100.8", "context": {"geo": {"country": "DE"}}})),
        // The guard's default: an explicit token login stops the rule.
        event(3, "login", json!({"client_ip": "203.0.113.9", "context": {"auth_method": "token"}})),
        event(4, "logout", json!({})),
        event(
            5,
            "model_updated",
            json!({"context": {"model": {"app": "authentik_core", "model_name": "group",
                "pk": "281d1ad2eae745b78ce0022d209507cf", "name": "ops-oncall"}}}),
        ),
    ]
    .join("\n");
    for engine in ENGINES {
        let tmp = Tmp::new();
        let db = tmp.p("h.db");
        load(&db, None, AUTHENTIK_FIXTURES);
        let policy = tmp.write("data.herald", POLICY);
        let events = tmp.write("events.ndjson", format!("{events}\n"));
        let out = run(&db, &events, &["--engine", engine], &[&policy]).ok();
        let fired: Vec<(String, String)> = out
            .stdout_lines()
            .iter()
            .map(|l| (l["event_uuid"].as_str().unwrap()[24..].to_string(), l["rule"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            fired,
            [
                ("000000000001".to_string(), "remember_login".to_string()),
                ("000000000004".to_string(), "read_back".to_string()),
                ("000000000005".to_string(), "tell_the_group".to_string()),
            ],
            "{engine}: {}",
            out.stderr
        );
        let dump = dump(&tmp.path("h.db"), None, Some(&tmp));
        assert!(table(&dump, "herald_rule_error").is_empty(), "{engine}: {dump}");
        // The object is stored as JSON in the `any` column, keys in source order.
        let alice = table(&dump, "User").into_iter().find(|u| u["pk"] == 12).expect("alice");
        let attributes: Value = serde_json::from_str(alice["attributes"].as_str().expect("JSON text")).unwrap();
        assert_eq!(
            attributes["last_login"],
            json!({"ip": "198.51.100.7", "geo country": "unknown", "tags": ["a", "b"],
                   "meta": {"source": "herald", "level": 1}, "nested": {"n": [1, 2], "empty": {}}}),
            "{engine}"
        );
        // Interpolated, an object renders as compact JSON.
        assert!(
            out.stderr.contains(
                r#"login alice: {\"ip\":\"198.51.100.7\",\"geo country\":\"unknown\",\"tags\":[\"a\",\"b\"],\"meta\":{\"source\":\"herald\",\"level\":1},\"nested\":{\"n\":[1,2],\"empty\":{}}}"#
            ),
            "{engine}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("read back 198.51.100.7 for alice"), "{engine}: {}", out.stderr);
        // `g.users.email`: the members' addresses, in key order.
        let outbox = table(&dump, "herald_outbox");
        assert_eq!(outbox.len(), 1, "{engine}: {dump}");
        let row = outbox[0].to_string();
        assert!(row.contains(r#"[\"alice@example.com\",\"bob.martin@example.com\"]"#), "{engine}: {row}");
        assert!(row.contains(r#"members: [\"alice\",\"bob\"]"#), "{engine}: {row}");
        assert!(row.contains("ops-oncall changed"), "{engine}: {row}");
    }
}
