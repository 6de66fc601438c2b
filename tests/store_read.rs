//! Reads: lookup, lookup_many, related.

mod store_support;
use herald::diag::Code;
use herald::store::Store;
use herald::value::{parse_uuid, Value};
use std::sync::Arc;
use store_support::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("h.db"), Arc::new(authentik_schema())).unwrap();
    s.load_fixtures(&authentik_fixtures()).unwrap();
    (dir, s)
}

#[test]
fn lookup_by_int_key() {
    let (_d, s) = store();
    let u = s.lookup(USER, &Value::Int(12)).unwrap().unwrap();
    assert_eq!(u.entity, USER);
    assert_eq!(u.fields[0], Value::str("alice"));
    assert_eq!(s.lookup(USER, &Value::Float(12.0)).unwrap().unwrap().key, Value::Int(12));
    assert!(s.lookup(USER, &Value::Int(999)).unwrap().is_none());
    assert!(s.lookup(USER, &Value::Absent).unwrap().is_none());
    assert!(s.lookup(USER, &Value::Null).unwrap().is_none());
    // A row stands for its key.
    assert_eq!(s.lookup(USER, &Value::Entity(u.clone())).unwrap().unwrap(), u);
}

#[test]
fn bad_keys_are_r0001() {
    let (_d, s) = store();
    let e = s.lookup(USER, &Value::str("abc")).unwrap_err();
    assert_eq!(e.code, Code::DynamicType);
    assert_eq!(e.message, "expected an int key for `User`, found string \"abc\"");
    let e = s.lookup(USER, &Value::Float(1.5)).unwrap_err();
    assert_eq!(e.code, Code::DynamicType);
    let e = s.lookup(GROUP, &Value::str("not-a-uuid")).unwrap_err();
    assert_eq!(e.code, Code::DynamicType);
    assert_eq!(e.message, "expected a uuid key for `Group`, found string \"not-a-uuid\"");
    let e = s.lookup(GROUP, &Value::Int(3)).unwrap_err();
    assert_eq!(e.code, Code::DynamicType);
    let g = s.lookup(GROUP, &Value::str(ADMINS)).unwrap().unwrap();
    let e = s.lookup(USER, &Value::Entity(g)).unwrap_err();
    assert!(e.message.contains("found a `Group` row"), "{}", e.message);
}

#[test]
fn uuid_keys_accept_hex_dashed_and_uuid_values() {
    let (_d, s) = store();
    let hex = ADMINS.replace('-', "");
    let a = s.lookup(GROUP, &Value::str(ADMINS)).unwrap().unwrap();
    let b = s.lookup(GROUP, &Value::str(&hex)).unwrap().unwrap();
    let c = s.lookup(GROUP, &Value::str(&hex.to_uppercase())).unwrap().unwrap();
    let d = s.lookup(GROUP, &Value::Uuid(parse_uuid(ADMINS).unwrap())).unwrap().unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a, d);
    assert_eq!(a.key, Value::Uuid(parse_uuid(ADMINS).unwrap()));
    assert_eq!(a.fields[0], Value::str("authentik Admins"));
    assert_eq!(a.fields[2], Value::Bool(true));
    let ops = s.lookup(GROUP, &Value::str("0b7e2f6a-9c3d-4e5f-8a1b-2c3d4e5f6a7b")).unwrap().unwrap();
    assert_eq!(ops.fields[2], Value::Null);
    // An application by the hex form authentik puts in event context.
    let app = s.lookup(APPLICATION, &Value::str(&GRAFANA.replace('-', ""))).unwrap().unwrap();
    assert_eq!(app.fields[0], Value::str("Grafana"));
}

#[test]
fn lookup_many_keeps_the_order_of_keys() {
    let (_d, s) = store();
    let keys = [Value::Int(31), Value::Int(999), Value::Absent, Value::Int(1), Value::Float(12.0), Value::Int(31)];
    let rows = s.lookup_many(USER, &keys).unwrap();
    let got: Vec<Value> = rows.iter().map(|r| r.key.clone()).collect();
    assert_eq!(got, vec![Value::Int(31), Value::Int(1), Value::Int(12), Value::Int(31)]);
    assert_eq!(rows[1].fields[0], Value::str("akadmin"));
    assert!(s.lookup_many(USER, &[]).unwrap().is_empty());
    assert!(s.lookup_many(USER, &[Value::Null]).unwrap().is_empty());
    let e = s.lookup_many(USER, &[Value::Int(1), Value::str("x")]).unwrap_err();
    assert_eq!(e.code, Code::DynamicType);
    // uuid keys in either form.
    let groups = s.lookup_many(GROUP, &[Value::str(OPS_HEX), Value::str(&ADMINS.replace('-', ""))]).unwrap();
    let names: Vec<Value> = groups.iter().map(|r| r.fields[0].clone()).collect();
    assert_eq!(names, vec![Value::str("ops"), Value::str("authentik Admins")]);
}

#[test]
fn related_reads_many_to_many_in_key_order() {
    let (_d, s) = store();
    s.connection()
        .execute("INSERT INTO \"Group_users\" (source, target) VALUES (?1, 40), (?1, 7777)", [ADMINS])
        .unwrap();
    let members = s.related(GROUP, &Value::str(&ADMINS.replace('-', "")), 3).unwrap();
    let keys: Vec<Value> = members.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, vec![Value::Int(1), Value::Int(12), Value::Int(40)], "a dangling link is skipped");
    assert_eq!(members[1].fields[0], Value::str("alice"));
    assert!(s.related(GROUP, &Value::Absent, 3).unwrap().is_empty());
    assert!(s.related(GROUP, &Value::str("00000000000000000000000000000000"), 3).unwrap().is_empty());
    assert!(s.related(GROUP, &Value::str(ADMINS), 0).is_err(), "`name` is not many-to-many");
}
