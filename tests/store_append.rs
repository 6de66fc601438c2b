//! `append` buffered per place (`Store::append_buffered`) behaves exactly
//! like the immediate `Store::append`: the same value after each append,
//! the same stored JSON once flushed, the same errors; an unflushed buffer
//! writes nothing.

mod store_support;
use herald::store::{PendingAppend, Store};
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

fn attributes(s: &Store, entity: EntityId, key: &Value) -> Value {
    let row = s.lookup(entity, key).unwrap().expect("the row");
    let schema = s.schema();
    let i = schema.entity(entity).fields.iter().position(|f| f.name == "attributes").unwrap();
    row.fields[i].clone()
}

fn field(s: &Store, entity: EntityId) -> usize {
    s.schema().entity(entity).fields.iter().position(|f| f.name == "attributes").unwrap()
}

fn path(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

#[test]
fn buffered_appends_match_immediate_ones() {
    let (_d1, a) = store();
    let (_d2, b) = store();
    let ops = Value::Uuid(parse_uuid(OPS_HEX).unwrap());
    let admins = Value::Uuid(parse_uuid(ADMINS).unwrap());
    let alice = Value::Int(12);
    let gf = field(&a, GROUP);
    let uf = field(&a, USER);
    // (entity, key, field, path, value): runs on one place, a switch to
    // another place and back, a new path, an absent value, nested objects.
    let steps: Vec<(EntityId, Value, usize, Vec<String>, Value)> = vec![
        (GROUP, ops.clone(), gf, path(&["UserAddedHistory"]), Value::str("one")),
        (GROUP, ops.clone(), gf, path(&["UserAddedHistory"]), Value::Int(2)),
        (GROUP, ops.clone(), gf, path(&["UserAddedHistory"]), Value::Absent),
        (GROUP, ops.clone(), gf, path(&["UserAddedHistory"]), Value::list(vec![Value::Bool(true)])),
        (GROUP, admins.clone(), gf, path(&["new", "deep"]), Value::str("x")),
        (GROUP, admins.clone(), gf, path(&["new", "deep"]), Value::str("y")),
        (USER, alice.clone(), uf, path(&["sshPublicKey"]), Value::str("ssh-ed25519 BBBB")),
        (GROUP, ops.clone(), gf, path(&["UserAddedHistory"]), Value::str("after")),
    ];
    b.begin().unwrap();
    let mut buf: Option<PendingAppend> = None;
    for (e, k, f, p, v) in &steps {
        let want = a.append(*e, k, *f, p, v).unwrap();
        let got = b.append_buffered(&mut buf, *e, k, *f, p, v).unwrap();
        assert_eq!(got, want, "{p:?} {v:?}");
    }
    b.flush_append(&mut buf).unwrap();
    b.commit().unwrap();
    for (e, k) in [(GROUP, &ops), (GROUP, &admins), (USER, &alice)] {
        assert_eq!(attributes(&b, e, k), attributes(&a, e, k), "{k:?}");
    }
    let hist = attributes(&b, GROUP, &ops).get("UserAddedHistory");
    assert_eq!(
        hist,
        Value::list(vec![Value::str("one"), Value::Int(2), Value::list(vec![Value::Bool(true)]), Value::str("after")])
    );
}

#[test]
fn errors_match_and_an_unflushed_buffer_writes_nothing() {
    let (_d1, a) = store();
    let (_d2, b) = store();
    let alice = Value::Int(12);
    let uf = field(&a, USER);
    // `level` is an int, not a list: the same error either way.
    let want = a.append(USER, &alice, uf, &path(&["level"]), &Value::Int(1)).unwrap_err();
    let mut buf = None;
    let got = b.append_buffered(&mut buf, USER, &alice, uf, &path(&["level"]), &Value::Int(1)).unwrap_err();
    assert_eq!((got.code, got.message), (want.code, want.message));
    // Appends dropped without a flush (a failed rule) leave the store as it was.
    let before = attributes(&b, USER, &alice);
    b.begin().unwrap();
    for i in 0..3 {
        b.append_buffered(&mut buf, USER, &alice, uf, &path(&["sshPublicKey"]), &Value::Int(i)).unwrap();
    }
    drop(buf);
    b.commit().unwrap();
    assert_eq!(attributes(&b, USER, &alice), before);
}
