//! The v1 statements end to end: `upsert`, `delete`, `add … to` and
//! `remove … from` run by the real binary on an SQLite store, under both
//! engines; a failing rule rolls back only its own writes; a replay of the
//! input changes nothing.

mod runtime_support;

use runtime_support::*;
use serde_json::{json, Value};

const POLICY: &str = "tests/runtime_data/statements.herald";
const ADMINS: &str = "219b810c-f126-4f95-9602-18b89b2194b2";
const ONCALL: &str = "281d1ad2-eae7-45b7-8ce0-022d209507cf";
const CONTRACTORS: &str = "781c78b2-ad94-415d-9209-05756dfcc62e";

fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn event(n: u32, action: &str, context: Value) -> String {
    json!({"event_uuid": uuid(n), "action": action, "created": "2026-04-14T08:00:00Z", "context": context}).to_string()
}

fn model(name: &str, pk: Value) -> Value {
    json!({"app": "authentik_core", "model_name": name, "pk": pk, "name": "x"})
}

fn change(new: Value) -> Value {
    json!({"previous_value": null, "new_value": new})
}

fn events() -> Vec<String> {
    vec![
        // 1: three users join the admins (999 has no row: `User[keys]` skips
        //    it), akadmin (4) leaves.
        event(
            1,
            "model_updated",
            json!({"model": model("group", json!(ADMINS)), "diff": {"users": {"add": [15, 31, 12, 999], "remove": [4]}}}),
        ),
        // 2: bob joins again (a no-op for the link) and a non-member leaves
        //    (a no-op too).
        event(
            2,
            "model_updated",
            json!({"model": model("group", json!(ADMINS)), "diff": {"users": {"add": [15], "remove": [44]}}}),
        ),
        // 3: a new user: `upsert` creates the row.
        event(
            3,
            "model_created",
            json!({"model": model("user", json!(77)), "diff": {
                "username": change(json!("seven")), "name": change(json!("Seven")),
                "email": change(json!("seven@example.com")), "attributes": change(json!({"team": "blue"})),
            }}),
        ),
        // 4: the new user is renamed: `upsert` updates one field.
        event(
            4,
            "model_updated",
            json!({"model": model("user", json!(77)), "diff": {"name": change(json!("Seventy-Seven"))}}),
        ),
        // 5: a creation for a user who exists (carol): the given fields are
        //    replaced, `attributes` included (not merged).
        event(
            5,
            "model_created",
            json!({"model": model("user", json!(23)), "diff": {
                "username": change(json!("carol")), "name": change(json!("Carol N.")),
                "email": change(json!("carol@example.com")), "attributes": change(json!({"team": "red"})),
            }}),
        ),
        // 6: alice is deleted, with her memberships of two groups.
        event(6, "model_deleted", json!({"model": model("user", json!(12))})),
        // 7: a group is deleted, with its links.
        event(7, "model_deleted", json!({"model": model("group", json!(ONCALL))})),
        // 8: bob logs in: `b_fails` links him to the contractors, then fails.
        json!({"event_uuid": uuid(8), "action": "login", "created": "2026-04-14T08:00:00Z",
               "user": {"pk": 15, "username": "bob"}})
        .to_string(),
        // 9: a write through a binding whose row the rule deleted.
        json!({"event_uuid": uuid(9), "action": "logout", "created": "2026-04-14T08:00:00Z", "user": {"pk": 44}})
            .to_string(),
    ]
}

fn row<'a>(rows: &'a [Value], key: &str, value: Value) -> Option<&'a Value> {
    rows.iter().find(|r| r[key] == value)
}

fn attrs(user: &Value) -> Value {
    match &user["attributes"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    }
}

fn users_of(dump: &str, group: &str) -> Value {
    row(&table(dump, "Group"), "pk", json!(group)).map(|g| g["users"].clone()).unwrap_or(Value::Null)
}

struct Ran {
    first: Out,
    dump: String,
    replay: Out,
    replay_dump: String,
}

fn run_engine(engine: &str) -> Ran {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let events = tmp.write("events.ndjson", events().join("\n") + "\n");
    let first = run(&db, &events, &["--engine", engine], &[POLICY]).ok();
    let dump = effects_dump(&tmp.path("h.db"), None);
    let replay = run(&db, &events, &["--engine", engine, "--from-start"], &[POLICY]).ok();
    let replay_dump = effects_dump(&tmp.path("h.db"), None);
    Ran { first, dump, replay, replay_dump }
}

#[test]
fn statements_write_the_store_under_both_engines() {
    let mut dumps = Vec::new();
    for engine in ["interp", "jit"] {
        let ran = run_engine(engine);
        let d = &ran.dump;
        let users = table(d, "User");

        // `add`/`remove … from`: admins were [4, 12]; 15, 31 and 12 joined
        // (12 twice over: no duplicate link), 4 left, 12 was deleted later.
        assert_eq!(users_of(d, ADMINS), json!([15, 31]), "{engine}");
        // One history line per joined user per event, for the users that exist.
        let admins = row(&table(d, "Group"), "pk", json!(ADMINS)).unwrap().clone();
        let history = attrs(&admins)["history"].clone();
        let expect: Vec<String> = ["bob", "dave.k", "alice", "bob"]
            .iter()
            .map(|u| format!("2026-04-14T08:00:00Z - Added user: {u}"))
            .collect();
        assert_eq!(history, json!(expect), "{engine}");

        // `upsert` created user 77, then updated its name only.
        let seven = row(&users, "pk", json!(77)).unwrap_or_else(|| panic!("{engine}: user 77 created: {users:#?}"));
        assert_eq!(seven["username"], "seven");
        assert_eq!(seven["name"], "Seventy-Seven");
        assert_eq!(seven["email"], "seven@example.com");
        assert_eq!(seven["is_active"], 1, "bools dump as SQLite integers");
        // The binding taken before the upsert saw the new name.
        assert_eq!(attrs(seven), json!({"team": "blue", "renamed_to": "Seventy-Seven"}), "{engine}");

        // `upsert` of an existing row replaced `attributes` exactly.
        let carol = row(&users, "pk", json!(23)).unwrap();
        assert_eq!(carol["name"], "Carol N.");
        assert_eq!(attrs(carol), json!({"team": "red"}), "{engine}: not merged");

        // `delete` removed alice and every link to her; the deleted
        // group's row and links are gone, the other groups are untouched.
        assert!(row(&users, "pk", json!(12)).is_none(), "{engine}");
        assert!(row(&table(d, "Group"), "pk", json!(ONCALL)).is_none(), "{engine}");
        assert_eq!(table(d, "Group").len(), 2, "{engine}");
        assert!(
            ran.first.stderr.contains("deleted alice"),
            "{engine}: the binding outlives the row: {}",
            ran.first.stderr
        );

        // `b_fails` failed with R0002 on event 8; its `add` was rolled back,
        // `a_before` and `c_after` applied, and `c_after` saw `a_before`'s
        // mark but not the rolled-back link.
        assert_eq!(users_of(d, CONTRACTORS), json!([]), "{engine}");
        let bob = row(&users, "pk", json!(15)).unwrap();
        assert_eq!(attrs(bob)["a_mark"], format!("a saw {}", uuid(8)));
        assert_eq!(attrs(bob)["c_saw"], format!("a=a saw {} contractors=0", uuid(8)), "{engine}");

        // A write through a binding whose row was deleted: R0005, and the
        // rule's delete is rolled back with it.
        assert!(row(&users, "pk", json!(44)).is_some(), "{engine}");
        let errors = table(d, "herald_rule_error");
        let codes: Vec<(String, String, String)> = errors
            .iter()
            .map(|e| {
                (
                    e["rule"].as_str().unwrap().to_string(),
                    e["code"].as_str().unwrap().to_string(),
                    e["event_uuid"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                ("b_fails".to_string(), "R0002".to_string(), uuid(8)),
                ("write_after_delete".to_string(), "R0005".to_string(), uuid(9)),
            ],
            "{engine}: {errors:#?}"
        );
        let b = errors[0]["message"].as_str().unwrap();
        assert!(b.contains("`email`") && b.contains("1015"), "{b}");

        // Replaying the input applies nothing twice.
        assert_eq!(ran.replay_dump, ran.dump, "{engine}: the replay changed the store");
        assert!(!ran.replay.stderr.contains("deleted alice"), "{engine}: {}", ran.replay.stderr);
        dumps.push(ran.dump);
    }
    assert_eq!(dumps[0], dumps[1], "the engines disagree");
}
