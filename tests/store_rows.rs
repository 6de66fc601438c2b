//! The store's row and link writes behind `upsert`, `delete`, `add … to` and
//! `remove … from`: conversions and errors of `upsert`, both sides of the
//! links `delete` removes, idempotent links, and atomicity of a failed write.

mod store_support;
use herald::diag::Code;
use herald::store::Store;
use herald::types::EntityId;
use herald::value::{parse_uuid, Value};
use std::sync::Arc;
use store_support::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("h.db"), Arc::new(authentik_schema())).unwrap();
    s.load_fixtures(&authentik_fixtures()).unwrap();
    (dir, s)
}

fn idx(s: &Store, entity: EntityId, name: &str) -> usize {
    s.schema().entity(entity).fields.iter().position(|f| f.name == name).unwrap()
}

fn members(s: &Store, group: &Value) -> Vec<Value> {
    let f = idx(s, GROUP, "users");
    s.related(GROUP, group, f).unwrap().iter().map(|r| r.key.clone()).collect()
}

fn uuid(text: &str) -> Value {
    Value::Uuid(parse_uuid(text).unwrap())
}

fn user_fields(s: &Store, name: &str) -> Vec<(usize, Value)> {
    vec![
        (idx(s, USER, "username"), Value::str(name)),
        (idx(s, USER, "name"), Value::str(name)),
        (idx(s, USER, "email"), Value::str(&format!("{name}@example.com"))),
        (idx(s, USER, "is_active"), Value::Bool(true)),
    ]
}

#[test]
fn upsert_creates_then_updates_only_the_given_fields() {
    let (_d, s) = store();
    let row = s.upsert(USER, &Value::Int(77), &user_fields(&s, "dora")).unwrap();
    assert_eq!(row.key, Value::Int(77));
    assert_eq!(row.fields[idx(&s, USER, "email")], Value::str("dora@example.com"));
    // Omitted optional columns are empty on creation.
    assert!(row.fields[idx(&s, USER, "type")].is_nullish());

    let attrs = Value::from_json(&serde_json::json!({"team": "red"}));
    let row = s
        .upsert(
            USER,
            &Value::Int(12),
            &[(idx(&s, USER, "name"), Value::str("Alice B.")), (idx(&s, USER, "attributes"), attrs.clone())],
        )
        .unwrap();
    assert_eq!(row.fields[idx(&s, USER, "name")], Value::str("Alice B."));
    // Not given: kept.
    assert_eq!(row.fields[idx(&s, USER, "email")], Value::str("alice@example.com"));
    // `any` is replaced, not merged (alice had sshPublicKey, level, admin).
    assert_eq!(row.fields[idx(&s, USER, "attributes")].to_json(None), serde_json::json!({"team": "red"}));
    // An upsert with no fields of an existing row changes nothing.
    let again = s.upsert(USER, &Value::Int(12), &[]).unwrap();
    assert_eq!(again, row);
    // An int key may come as a whole float, a uuid key in 32-hex form.
    let g = s.upsert(GROUP, &Value::str(OPS_HEX), &[(idx(&s, GROUP, "name"), Value::str("ops!"))]).unwrap();
    assert_eq!(g.key, uuid(OPS_HEX));
}

#[test]
fn upsert_errors_are_rule_errors_and_write_nothing() {
    let (_d, s) = store();
    // Creating without a required field.
    let e = s.upsert(USER, &Value::Int(78), &[(idx(&s, USER, "name"), Value::str("x"))]).unwrap_err();
    assert_eq!(e.code, Code::RequiredAbsent);
    assert!(e.message.contains("`username`") && e.message.contains("`email`"), "{}", e.message);
    assert!(s.lookup(USER, &Value::Int(78)).unwrap().is_none());
    // An absent key.
    assert_eq!(s.upsert(USER, &Value::Absent, &user_fields(&s, "x")).unwrap_err().code, Code::RequiredAbsent);
    // A key of the wrong kind.
    assert_eq!(s.upsert(USER, &Value::str("abc"), &user_fields(&s, "x")).unwrap_err().code, Code::DynamicType);
    // A value of the wrong type, and absent for a required column, on update.
    let e = s.upsert(USER, &Value::Int(12), &[(idx(&s, USER, "is_active"), Value::str("yes"))]).unwrap_err();
    assert_eq!(e.code, Code::DynamicType);
    let e = s.upsert(USER, &Value::Int(12), &[(idx(&s, USER, "name"), Value::Absent)]).unwrap_err();
    assert_eq!(e.code, Code::RequiredAbsent);
    // A many-to-many field (the checker refuses it; the store does too).
    let e = s.upsert(GROUP, &uuid(ADMINS), &[(idx(&s, GROUP, "users"), Value::list(vec![]))]).unwrap_err();
    assert_eq!(e.code, Code::DynamicType);
    // Nothing of the failed updates was written: one bad field fails all.
    let e = s
        .upsert(
            USER,
            &Value::Int(12),
            &[(idx(&s, USER, "name"), Value::str("changed")), (idx(&s, USER, "is_active"), Value::Int(3))],
        )
        .unwrap_err();
    assert_eq!(e.code, Code::DynamicType);
    let alice = s.lookup(USER, &Value::Int(12)).unwrap().unwrap();
    assert_eq!(alice.fields[idx(&s, USER, "name")], Value::str("Alice"));
}

#[test]
fn links_are_idempotent_and_typed() {
    let (_d, s) = store();
    let admins = uuid(ADMINS);
    let f = idx(&s, GROUP, "users");
    assert_eq!(members(&s, &admins), vec![Value::Int(1), Value::Int(12)]);
    s.link(GROUP, &admins, f, &Value::Int(31), true).unwrap();
    s.link(GROUP, &admins, f, &Value::Int(31), true).unwrap();
    // A row of the target entity works like its key.
    let carol = s.lookup(USER, &Value::Int(40)).unwrap().unwrap();
    s.link(GROUP, &admins, f, &Value::Entity(carol), true).unwrap();
    assert_eq!(members(&s, &admins), vec![Value::Int(1), Value::Int(12), Value::Int(31), Value::Int(40)]);
    s.link(GROUP, &admins, f, &Value::Int(1), false).unwrap();
    s.link(GROUP, &admins, f, &Value::Int(1), false).unwrap();
    s.link(GROUP, &admins, f, &Value::Int(999), false).unwrap();
    assert_eq!(members(&s, &admins), vec![Value::Int(12), Value::Int(31), Value::Int(40)]);

    // A row of another entity, a key of the wrong kind: R0001. A group that
    // does not exist: R0005. A field that is not many-to-many: R0001.
    let grafana = s.lookup(APPLICATION, &uuid(GRAFANA)).unwrap().unwrap();
    assert_eq!(s.link(GROUP, &admins, f, &Value::Entity(grafana), true).unwrap_err().code, Code::DynamicType);
    assert_eq!(s.link(GROUP, &admins, f, &Value::str("alice"), true).unwrap_err().code, Code::DynamicType);
    let nowhere = uuid("00000000-0000-4000-8000-000000000000");
    assert_eq!(s.link(GROUP, &nowhere, f, &Value::Int(12), true).unwrap_err().code, Code::StoreFailure);
    assert_eq!(members(&s, &nowhere), Vec::<Value>::new());
    let name = idx(&s, GROUP, "name");
    assert_eq!(s.link(GROUP, &admins, name, &Value::Int(12), true).unwrap_err().code, Code::DynamicType);
}

#[test]
fn delete_removes_the_row_and_its_links_on_both_sides() {
    let (_d, s) = store();
    let admins = uuid(ADMINS);
    let ops = uuid(OPS_HEX);
    // User 12 is in admins; link it to ops too.
    let f = idx(&s, GROUP, "users");
    s.link(GROUP, &ops, f, &Value::Int(12), true).unwrap();
    assert!(s.delete(USER, &Value::Int(12)).unwrap());
    assert!(s.lookup(USER, &Value::Int(12)).unwrap().is_none());
    assert_eq!(members(&s, &admins), vec![Value::Int(1)]);
    assert_eq!(members(&s, &ops), vec![Value::Int(31)]);
    // Re-created, the user starts without memberships.
    s.upsert(USER, &Value::Int(12), &user_fields(&s, "alice")).unwrap();
    assert_eq!(members(&s, &admins), vec![Value::Int(1)]);

    // Deleting a group removes its own links.
    assert!(s.delete(GROUP, &admins).unwrap());
    s.upsert(GROUP, &admins, &[(idx(&s, GROUP, "name"), Value::str("again"))]).unwrap();
    assert_eq!(members(&s, &admins), Vec::<Value>::new());

    // No row, an absent key: nothing happens. A key of the wrong kind: R0001.
    assert!(!s.delete(USER, &Value::Int(12345)).unwrap());
    assert!(!s.delete(USER, &Value::Absent).unwrap());
    assert_eq!(s.delete(USER, &Value::str("x")).unwrap_err().code, Code::DynamicType);
}
