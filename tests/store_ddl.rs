//! Store DDL: tables, columns, types, join tables, reopening, upgrades.

mod store_support;
use herald::store::{Store, StoreError};
use herald::types::Ty;
use std::sync::Arc;
use store_support::{authentik_entities, authentik_schema, entity, schema_of};

fn columns(store: &Store, table: &str) -> Vec<(String, String, bool, bool)> {
    let mut st = store
        .connection()
        .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid")
        .unwrap();
    st.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? > 0)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn col(name: &str, ty: &str, notnull: bool, pk: bool) -> (String, String, bool, bool) {
    (name.to_string(), ty.to_string(), notnull, pk)
}

fn tables(store: &Store) -> Vec<String> {
    let mut st =
        store.connection().prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").unwrap();
    st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn creates_entity_tables_with_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = Store::open(&path, Arc::new(authentik_schema())).unwrap();
    assert!(path.exists());
    assert_eq!(
        columns(&store, "User"),
        vec![
            col("pk", "INTEGER", true, true),
            col("username", "TEXT", true, false),
            col("name", "TEXT", true, false),
            col("email", "TEXT", true, false),
            col("is_active", "INTEGER", true, false),
            col("attributes", "TEXT", false, false),
            col("type", "TEXT", false, false),
            col("path", "TEXT", false, false),
        ]
    );
    assert_eq!(
        columns(&store, "Group"),
        vec![
            col("pk", "TEXT", true, true),
            col("name", "TEXT", true, false),
            col("attributes", "TEXT", false, false),
            col("is_superuser", "INTEGER", false, false),
        ]
    );
    assert_eq!(
        columns(&store, "Group_users"),
        vec![col("source", "TEXT", true, true), col("target", "INTEGER", true, true)]
    );
    let pb = columns(&store, "PolicyBinding");
    assert!(pb.contains(&col("order", "INTEGER", false, false)), "{pb:?}");
    assert!(pb.contains(&col("group", "TEXT", false, false)));
    let t = tables(&store);
    for name in [
        "Application",
        "Group",
        "Group_users",
        "PolicyBinding",
        "User",
        "herald_checkpoint",
        "herald_dead_letter",
        "herald_firing",
        "herald_meta",
        "herald_notification",
        "herald_outbox",
        "herald_processed",
        "herald_rule_error",
    ] {
        assert!(t.contains(&name.to_string()), "missing {name}: {t:?}");
    }
    // The join table's target index.
    let idx: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'Group_users' AND sql LIKE '%target%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(idx, 1);
}

#[test]
fn pragmas_and_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("h.db"), Arc::new(authentik_schema())).unwrap();
    let c = store.connection();
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!(sync, 2, "FULL");
    let fk: i64 = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 0);
    let busy: i64 = c.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).unwrap();
    assert_eq!(busy, 5000);
    let fp: String =
        c.query_row("SELECT value FROM herald_meta WHERE key = 'schema_fingerprint'", [], |r| r.get(0)).unwrap();
    assert_eq!(fp, store.fingerprint());
    assert_eq!(fp.len(), 16);
}

#[test]
fn reopen_is_idempotent_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let schema = Arc::new(authentik_schema());
    {
        let mut s = Store::open(&path, schema.clone()).unwrap();
        s.load_fixtures(&store_support::authentik_fixtures()).unwrap();
    }
    let before = Store::open(&path, schema.clone()).unwrap().dump();
    let s = Store::open(&path, schema.clone()).unwrap();
    assert_eq!(s.dump(), before);
    assert!(before.contains("\"username\":\"alice\""));
    assert_eq!(columns(&s, "User").len(), 8);
    let fp1 = s.fingerprint().to_string();
    drop(s);
    assert_eq!(Store::open(&path, schema).unwrap().fingerprint(), fp1);
}

#[test]
fn upgrade_adds_tables_and_optional_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let old = schema_of(vec![entity("User", ("pk", Ty::Int), &[("username", Ty::String)])]);
    {
        let s = Store::open(&path, Arc::new(old)).unwrap();
        s.connection().execute("INSERT INTO \"User\" (pk, username) VALUES (1, 'a')", []).unwrap();
    }
    let new = schema_of(vec![
        entity(
            "User",
            ("pk", Ty::Int),
            &[("username", Ty::String), ("nick", Ty::String.optional()), ("attributes", Ty::Any)],
        ),
        entity("Team", ("id", Ty::String), &[("members", Ty::Entity(herald::types::EntityId(0)).list())]),
    ]);
    let s = Store::open(&path, Arc::new(new)).unwrap();
    assert_eq!(
        columns(&s, "User"),
        vec![
            col("pk", "INTEGER", true, true),
            col("username", "TEXT", true, false),
            col("nick", "TEXT", false, false),
            col("attributes", "TEXT", false, false),
        ]
    );
    assert!(tables(&s).contains(&"Team_members".to_string()));
    let row = s.lookup(herald::types::EntityId(0), &herald::value::Value::Int(1)).unwrap().unwrap();
    assert_eq!(row.fields[0], herald::value::Value::str("a"));
    assert_eq!(row.fields[1], herald::value::Value::Null);
}

#[test]
fn upgrade_rejects_new_required_column_and_type_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let old = schema_of(vec![entity("User", ("pk", Ty::Int), &[("username", Ty::String)])]);
    drop(Store::open(&path, Arc::new(old)).unwrap());

    let required = schema_of(vec![entity("User", ("pk", Ty::Int), &[("username", Ty::String), ("email", Ty::String)])]);
    match Store::open(&path, Arc::new(required)) {
        Err(StoreError::Incompatible { table, column, .. }) => {
            assert_eq!((table.as_str(), column.as_str()), ("User", "email"));
        }
        other => panic!("expected an incompatible store, got {other:?}"),
    }
    let retyped = schema_of(vec![entity("User", ("pk", Ty::Int), &[("username", Ty::Int)])]);
    let err = Store::open(&path, Arc::new(retyped)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`User`") && msg.contains("`username`") && msg.contains("TEXT"), "{msg}");
    let rekeyed = schema_of(vec![entity("User", ("pk", Ty::Uuid), &[("username", Ty::String)])]);
    let err = Store::open(&path, Arc::new(rekeyed)).unwrap_err();
    assert!(matches!(err, StoreError::Incompatible { ref column, .. } if column == "pk"), "{err}");
    // Nothing was changed by the failed opens.
    let old = schema_of(vec![entity("User", ("pk", Ty::Int), &[("username", Ty::String)])]);
    let s = Store::open(&path, Arc::new(old)).unwrap();
    assert_eq!(columns(&s, "User").len(), 2);
}

#[test]
fn upgrade_relaxes_a_field_that_became_optional() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let old = schema_of(vec![entity("User", ("pk", Ty::Int), &[("username", Ty::String), ("email", Ty::String)])]);
    {
        let s = Store::open(&path, Arc::new(old)).unwrap();
        s.connection().execute("INSERT INTO \"User\" VALUES (1, 'a', 'a@x')", []).unwrap();
    }
    let new =
        schema_of(vec![entity("User", ("pk", Ty::Int), &[("username", Ty::String), ("email", Ty::String.optional())])]);
    let s = Store::open(&path, Arc::new(new)).unwrap();
    assert_eq!(columns(&s, "User")[2], col("email", "TEXT", false, false));
    let email: String = s.connection().query_row("SELECT email FROM \"User\" WHERE pk = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(email, "a@x");
}

#[test]
fn reserved_and_clashing_names_are_rejected() {
    let s = schema_of(vec![entity("herald_firing", ("pk", Ty::Int), &[])]);
    assert!(matches!(Store::open_in_memory(Arc::new(s)), Err(StoreError::Schema(_))));
    let s = schema_of(vec![
        entity("Group", ("pk", Ty::Int), &[("users", Ty::Entity(herald::types::EntityId(1)).list())]),
        entity("group_users", ("pk", Ty::Int), &[]),
    ]);
    let err = Store::open_in_memory(Arc::new(s)).unwrap_err();
    assert!(err.to_string().contains("group_users") || err.to_string().contains("Group_users"), "{err}");
}

#[test]
fn not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    std::fs::write(&path, "this is not sqlite, just some text that is long enough to be a header....").unwrap();
    let err = Store::open(&path, Arc::new(authentik_schema())).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("h.db"));
}

#[test]
fn quoted_identifiers_survive_odd_names() {
    let s = schema_of(vec![entity(
        "Odd\"Name",
        ("select", Ty::String),
        &[("order", Ty::Int.optional()), ("a b", Ty::Any)],
    )]);
    let mut store = Store::open_in_memory(Arc::new(s)).unwrap();
    store.load_fixtures(r#"{"Odd\"Name": [{"select": "k", "order": 2, "a b": {"x": 1}}]}"#).unwrap();
    let row = store.lookup(herald::types::EntityId(0), &herald::value::Value::str("k")).unwrap().unwrap();
    assert_eq!(row.fields[0], herald::value::Value::Int(2));
    let _ = authentik_entities();
}
