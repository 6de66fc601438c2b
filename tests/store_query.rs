//! Queries: each kind, each filter form, absent/null semantics, indexes.

mod store_support;
use herald::filter::classify;
use herald::ir::{Builtin, CmpOp, Expr, ExprKind, QueryKind};
use herald::store::Store;
use herald::types::{EntityId, Ty};
use herald::value::{parse_timestamp, parse_uuid, Value};
use std::sync::Arc;
use store_support::*;

struct T {
    _dir: tempfile::TempDir,
    s: Store,
}

fn authentik() -> T {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("h.db"), Arc::new(authentik_schema())).unwrap();
    s.load_fixtures(&authentik_fixtures()).unwrap();
    T { _dir: dir, s }
}

impl T {
    fn schema(&self) -> Arc<herald::schema::Schema> {
        self.s.schema().clone()
    }

    fn run(&self, kind: QueryKind, e: EntityId, f: Option<&Expr>, locals: Vec<Value>) -> Value {
        if let Some(f) = f {
            classify(f).unwrap_or_else(|u| panic!("checker would reject: {}", u.reason));
        }
        self.s.query(kind, e, f, &mut eval_locals(locals)).unwrap()
    }

    /// Keys of `all E(f)`.
    fn keys(&self, e: EntityId, f: &Expr, locals: Vec<Value>) -> Vec<Value> {
        match self.run(QueryKind::All, e, Some(f), locals) {
            Value::List(rows) => rows
                .iter()
                .map(|r| match r {
                    Value::Entity(row) => row.key.clone(),
                    v => panic!("not a row: {v:?}"),
                })
                .collect(),
            v => panic!("not a list: {v:?}"),
        }
    }

    fn users(&self, f: &Expr) -> Vec<i64> {
        self.users_with(f, vec![])
    }

    fn users_with(&self, f: &Expr, locals: Vec<Value>) -> Vec<i64> {
        let keys = self.keys(USER, f, locals.clone());
        // `count` and `exists` agree with `all`.
        assert_eq!(self.run(QueryKind::Count, USER, Some(f), locals.clone()), Value::Int(keys.len() as i64));
        assert_eq!(self.run(QueryKind::Exists, USER, Some(f), locals), Value::Bool(!keys.is_empty()));
        keys.into_iter()
            .map(|k| match k {
                Value::Int(i) => i,
                v => panic!("{v:?}"),
            })
            .collect()
    }
}

fn s(x: &str) -> Expr {
    lit(Value::str(x))
}

fn i(x: i64) -> Expr {
    lit(Value::Int(x))
}

#[test]
fn exists_policy_binding_for_an_application() {
    let t = authentik();
    let sc = t.schema();
    // exists PolicyBinding(target == app.pk), app.pk as a uuid value.
    let f = eq(row(&sc, POLICY_BINDING, "target"), local(0, Ty::Uuid));
    let grafana = Value::Uuid(parse_uuid(GRAFANA).unwrap());
    let wiki = Value::Uuid(parse_uuid(WIKI).unwrap());
    assert_eq!(t.run(QueryKind::Exists, POLICY_BINDING, Some(&f), vec![grafana]), Value::Bool(true));
    assert_eq!(t.run(QueryKind::Exists, POLICY_BINDING, Some(&f), vec![wiki]), Value::Bool(false));
    // The same through `any` (hex text from event context), and reversed.
    let f = eq(local(0, Ty::Any), row(&sc, POLICY_BINDING, "target"));
    let hex = Value::str(&GRAFANA.replace('-', ""));
    assert_eq!(t.run(QueryKind::Exists, POLICY_BINDING, Some(&f), vec![hex]), Value::Bool(true));
    assert_eq!(t.run(QueryKind::Exists, POLICY_BINDING, Some(&f), vec![Value::str("garbage")]), Value::Bool(false));
    assert_eq!(t.run(QueryKind::Exists, POLICY_BINDING, Some(&f), vec![Value::Absent]), Value::Bool(false));
    assert_eq!(t.run(QueryKind::Exists, POLICY_BINDING, Some(&f), vec![Value::Int(5)]), Value::Bool(false));
}

#[test]
fn first_group_by_name_then_its_users() {
    let t = authentik();
    let sc = t.schema();
    let f = eq(row(&sc, GROUP, "name"), s("authentik Admins"));
    let g = t.run(QueryKind::First, GROUP, Some(&f), vec![]);
    let Value::Entity(g) = g else { panic!("{g:?}") };
    assert_eq!(g.key, Value::Uuid(parse_uuid(ADMINS).unwrap()));
    let users: Vec<Value> = t.s.related(GROUP, &g.key, 3).unwrap().iter().map(|r| r.key.clone()).collect();
    assert_eq!(users, vec![Value::Int(1), Value::Int(12)]);
    let f = eq(row(&sc, GROUP, "name"), s("nobody"));
    assert_eq!(t.run(QueryKind::First, GROUP, Some(&f), vec![]), Value::Absent);
    assert_eq!(t.run(QueryKind::All, GROUP, Some(&f), vec![]), Value::list(vec![]));
    assert_eq!(t.run(QueryKind::Count, GROUP, Some(&f), vec![]), Value::Int(0));
}

#[test]
fn kinds_without_and_with_filters() {
    let t = authentik();
    let sc = t.schema();
    assert_eq!(t.run(QueryKind::Count, USER, None, vec![]), Value::Int(4));
    assert_eq!(t.run(QueryKind::Exists, USER, None, vec![]), Value::Bool(true));
    let Value::Entity(first) = t.run(QueryKind::First, USER, None, vec![]) else { panic!() };
    assert_eq!(first.key, Value::Int(1), "first is the lowest key");
    let active = row(&sc, USER, "is_active");
    assert_eq!(t.users(&active), vec![1, 12, 40]);
    assert_eq!(t.users(&not(active.clone())), vec![31]);
    let Value::Entity(f) = t.run(QueryKind::First, USER, Some(&not(active)), vec![]) else { panic!() };
    assert_eq!(f.fields[0], Value::str("bob"));
    assert_eq!(t.users(&lit(Value::Bool(true))), vec![1, 12, 31, 40]);
    assert_eq!(t.users(&lit(Value::Bool(false))), Vec::<i64>::new());
    // A filter that does not read the row is one bound bool.
    assert_eq!(t.users_with(&local(0, Ty::Bool), vec![Value::Bool(true)]).len(), 4);
    assert_eq!(t.run(QueryKind::Count, USER, Some(&local(0, Ty::Bool)), vec![Value::Absent]), Value::Int(0));
}

#[test]
fn comparisons_with_absent_and_null_are_false() {
    let t = authentik();
    let sc = t.schema();
    let ty = || row(&sc, USER, "type");
    // type: 1 and 12 "internal", 31 and 40 NULL.
    assert_eq!(t.users(&eq(ty(), s("internal"))), vec![1, 12]);
    // `!=` is `not ==` (LANGUAGE.md v1): true where `type` is NULL.
    assert_eq!(t.users(&cmp(CmpOp::Ne, ty(), s("internal"))), vec![31, 40]);
    assert_eq!(t.users(&not(eq(ty(), s("internal")))), vec![31, 40], "not (x == v) holds when x is null");
    assert_eq!(t.users(&not(cmp(CmpOp::Ne, ty(), s("internal")))), vec![1, 12]);
    assert_eq!(t.users(&is_null(ty(), false)), vec![31, 40]);
    assert_eq!(t.users(&is_null(ty(), true)), vec![1, 12]);
    assert_eq!(t.users(&not(is_null(ty(), false))), vec![1, 12]);
    // Against an absent outer value: every comparison is false but `!=`.
    for op in [CmpOp::Eq, CmpOp::Lt, CmpOp::Ge] {
        let f = cmp(op, ty(), local(0, Ty::String.optional()));
        assert_eq!(t.users_with(&f, vec![Value::Absent]), Vec::<i64>::new(), "{op:?}");
        assert_eq!(t.users_with(&not(f), vec![Value::Null]), vec![1, 12, 31, 40], "not {op:?}");
    }
    let f = cmp(CmpOp::Ne, ty(), local(0, Ty::String.optional()));
    assert_eq!(t.users_with(&f, vec![Value::Absent]), vec![1, 12, 31, 40]);
    assert_eq!(t.users_with(&not(f), vec![Value::Null]), Vec::<i64>::new());
    // or / and stay two-valued under not.
    let f = not(or(eq(ty(), s("x")), eq(row(&sc, USER, "username"), s("bob"))));
    assert_eq!(t.users(&f), vec![1, 12, 40]);
    let f = not(and(eq(ty(), s("internal")), eq(row(&sc, USER, "username"), s("alice"))));
    assert_eq!(t.users(&f), vec![1, 31, 40]);
}

#[test]
fn any_paths_compare_by_kind() {
    let t = authentik();
    let sc = t.schema();
    let level = || row_path(&sc, USER, "attributes", &["level"]);
    // level: 12 -> 3, 40 -> "high", 1 -> missing, 31 -> attributes NULL.
    assert_eq!(t.users(&eq(level(), i(3))), vec![12]);
    assert_eq!(t.users(&eq(level(), lit(Value::Float(3.0)))), vec![12]);
    assert_eq!(t.users(&eq(level(), s("3"))), Vec::<i64>::new());
    assert_eq!(t.users(&eq(level(), s("high"))), vec![40]);
    assert_eq!(t.users(&cmp(CmpOp::Gt, level(), i(2))), vec![12]);
    assert_eq!(t.users(&cmp(CmpOp::Lt, i(2), level())), vec![12], "operands swap");
    assert_eq!(t.users(&cmp(CmpOp::Ne, level(), i(3))), vec![1, 31, 40], "a string and absent differ from 3");
    assert_eq!(t.users(&not(eq(level(), i(3)))), vec![1, 31, 40]);
    assert_eq!(t.users(&is_null(level(), false)), vec![1, 31]);
    assert_eq!(t.users(&is_null(level(), true)), vec![12, 40]);
    assert_eq!(t.users_with(&eq(level(), local(0, Ty::Any)), vec![Value::Int(3)]), vec![12]);
    assert_eq!(t.users_with(&eq(level(), local(0, Ty::Any)), vec![Value::str("high")]), vec![40]);
    // A bool inside `any` is not the number 1.
    let admin = || row_path(&sc, USER, "attributes", &["admin"]);
    assert_eq!(t.users(&eq(admin(), lit(Value::Bool(true)))), vec![12]);
    assert_eq!(t.users(&eq(admin(), i(1))), Vec::<i64>::new());
    assert_eq!(t.users(&admin()), vec![12]);
    assert_eq!(t.users(&not(admin())), vec![1, 31, 40]);
    // A path into a typed column compared with a row column.
    assert_eq!(
        t.users(&eq(row_path(&sc, USER, "attributes", &["note"]), row(&sc, USER, "username"))),
        Vec::<i64>::new()
    );
    // The whole `any` column.
    assert_eq!(t.users(&is_null(row(&sc, USER, "attributes"), false)), vec![31]);
}

#[test]
fn membership_in_lists_strings_and_many_to_many() {
    let t = authentik();
    let sc = t.schema();
    let pk = || row(&sc, USER, "pk");
    let list_ty = Ty::Int.list();
    let keys = Value::list(vec![Value::Int(1), Value::Int(31), Value::str("x"), Value::Null]);
    assert_eq!(t.users_with(&in_(pk(), local(0, list_ty.clone())), vec![keys.clone()]), vec![1, 31]);
    assert_eq!(t.users_with(&not(in_(pk(), local(0, list_ty.clone()))), vec![keys]), vec![12, 40]);
    assert_eq!(t.users_with(&in_(pk(), local(0, list_ty.clone())), vec![Value::Absent]), Vec::<i64>::new());
    assert_eq!(t.users_with(&in_(pk(), local(0, list_ty)), vec![Value::list(vec![])]), Vec::<i64>::new());
    // Substring of an outer string.
    let uname = || row(&sc, USER, "username");
    assert_eq!(t.users(&in_(uname(), s("xalicey bob"))), vec![12, 31]);
    // An `any` container: list or string, decided at run time.
    let f = in_(uname(), local(0, Ty::Any));
    assert_eq!(t.users_with(&f, vec![Value::list(vec![Value::str("carol")])]), vec![40]);
    assert_eq!(t.users_with(&f, vec![Value::str("--carol--")]), vec![40]);
    assert_eq!(t.users_with(&f, vec![Value::Int(4)]), Vec::<i64>::new());
    // An outer value in an `any` field (list, then string).
    let tags = || row_path(&sc, USER, "attributes", &["tags"]);
    let note = || row_path(&sc, USER, "attributes", &["note"]);
    assert_eq!(t.users(&in_(s("x"), tags())), vec![40]);
    assert_eq!(t.users(&in_(s("z"), tags())), Vec::<i64>::new());
    assert_eq!(t.users(&not(in_(s("x"), tags()))), vec![1, 12, 31]);
    assert_eq!(t.users(&in_(s("grafana"), note())), vec![40]);
    assert_eq!(t.users(&call(Builtin::Contains, vec![note(), s("dash")])), vec![40]);
    assert_eq!(
        t.users(&in_(s("ssh-ed25519 AAAA alice"), row_path(&sc, USER, "attributes", &["sshPublicKey"]))),
        vec![12]
    );
    // An `any` field in an outer list.
    let level = || row_path(&sc, USER, "attributes", &["level"]);
    let f = in_(level(), local(0, Ty::Any.list()));
    assert_eq!(t.users_with(&f, vec![Value::list(vec![Value::Int(3), Value::Int(4)])]), vec![12]);
    assert_eq!(t.users_with(&f, vec![Value::list(vec![Value::str("3"), Value::str("high")])]), vec![40]);
    // Substring of an outer string, `any` elem.
    assert_eq!(t.users(&in_(level(), s("very high"))), vec![40]);
    // Many-to-many: a user (row or key) among a group's users.
    let users = || row(&sc, GROUP, "users");
    let alice = t.s.lookup(USER, &Value::Int(12)).unwrap().unwrap();
    let count = |f: &Expr, v: Value| t.run(QueryKind::Count, GROUP, Some(f), vec![v]);
    assert_eq!(count(&in_(local(0, Ty::Entity(USER)), users()), Value::Entity(alice)), Value::Int(1));
    assert_eq!(count(&in_(local(0, Ty::Int), users()), Value::Int(31)), Value::Int(1));
    assert_eq!(count(&in_(local(0, Ty::Int), users()), Value::Int(40)), Value::Int(0));
    assert_eq!(count(&not(in_(local(0, Ty::Int), users())), Value::Int(40)), Value::Int(2));
    assert_eq!(count(&in_(local(0, Ty::Int.optional()), users()), Value::Absent), Value::Int(0));
}

#[test]
fn string_functions_empty_and_len() {
    let t = authentik();
    let sc = t.schema();
    let email = || row(&sc, USER, "email");
    assert_eq!(t.users(&call(Builtin::StartsWith, vec![email(), s("a")])), vec![1, 12]);
    assert_eq!(t.users(&call(Builtin::EndsWith, vec![email(), s("@example.com")])), vec![1, 12, 31]);
    assert_eq!(t.users(&call(Builtin::EndsWith, vec![email(), s("")])), vec![1, 12, 31, 40]);
    assert_eq!(t.users(&call(Builtin::EndsWith, vec![row(&sc, USER, "username"), s("xbob")])), Vec::<i64>::new());
    assert_eq!(t.users(&call(Builtin::StartsWith, vec![email(), s("")])), vec![1, 12, 31, 40]);
    assert_eq!(t.users(&call(Builtin::Contains, vec![row(&sc, USER, "username"), s("ob")])), vec![31]);
    let ty = || row(&sc, USER, "type");
    assert_eq!(t.users(&call(Builtin::StartsWith, vec![ty(), s("int")])), vec![1, 12]);
    assert_eq!(t.users(&not(call(Builtin::StartsWith, vec![ty(), s("int")]))), vec![31, 40]);
    assert_eq!(
        t.users_with(&call(Builtin::StartsWith, vec![email(), local(0, Ty::Any)]), vec![Value::Absent]),
        Vec::<i64>::new()
    );
    // starts_with on an `any` path: only strings match.
    let level = row_path(&sc, USER, "attributes", &["level"]);
    assert_eq!(t.users(&call(Builtin::StartsWith, vec![level, s("h")])), vec![40]);
    // empty: absent, null, "", [], {}.
    assert_eq!(t.users(&call(Builtin::Empty, vec![email()])), vec![40]);
    assert_eq!(t.users(&not(call(Builtin::Empty, vec![email()]))), vec![1, 12, 31]);
    assert_eq!(t.users(&call(Builtin::Empty, vec![ty()])), vec![31, 40]);
    assert_eq!(t.users(&call(Builtin::Empty, vec![row(&sc, USER, "attributes")])), vec![1, 31]);
    let tags = || row_path(&sc, USER, "attributes", &["tags"]);
    assert_eq!(t.users(&call(Builtin::Empty, vec![tags()])), vec![1, 12, 31]);
    assert_eq!(
        t.users(&call(Builtin::Empty, vec![row_path(&sc, USER, "attributes", &["sshPublicKey"])])),
        vec![1, 31, 40]
    );
    // len.
    assert_eq!(t.users(&eq(call(Builtin::Len, vec![tags()]), i(2))), vec![40]);
    assert_eq!(t.users(&cmp(CmpOp::Gt, call(Builtin::Len, vec![row(&sc, USER, "username")]), i(4))), vec![1, 12, 40]);
    assert_eq!(t.users(&eq(call(Builtin::Len, vec![row(&sc, USER, "attributes")]), i(0))), vec![1]);
    assert_eq!(t.users(&not(eq(call(Builtin::Len, vec![tags()]), i(2)))), vec![1, 12, 31]);
    assert_eq!(t.users(&is_null(call(Builtin::Len, vec![tags()]), false)), vec![1, 12, 31]);
    let users = || row(&sc, GROUP, "users");
    let count = |f: &Expr| t.run(QueryKind::Count, GROUP, Some(f), vec![]);
    assert_eq!(count(&eq(call(Builtin::Len, vec![users()]), i(2))), Value::Int(1));
    assert_eq!(count(&call(Builtin::Empty, vec![users()])), Value::Int(0));
    assert_eq!(
        count(&call(Builtin::Empty, vec![row_path(&sc, GROUP, "attributes", &["UserAddedHistory"])])),
        Value::Int(2)
    );
}

/// A schema with every column kind.
fn things() -> T {
    let schema = schema_of(vec![entity(
        "Thing",
        ("id", Ty::String),
        &[
            ("n", Ty::Int.optional()),
            ("x", Ty::Float.optional()),
            ("flag", Ty::Bool.optional()),
            ("tags", Ty::String.list().optional()),
            ("nums", Ty::Int.list().optional()),
            ("seen", Ty::Timestamp.optional()),
            ("ref", Ty::Uuid.optional()),
            ("a", Ty::String.optional()),
            ("b", Ty::String.optional()),
            ("data", Ty::Any),
        ],
    )]);
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("h.db"), Arc::new(schema)).unwrap();
    s.load_fixtures(
        r#"{"Thing": [
        {"id": "a", "n": 1, "x": 1.5, "flag": true, "tags": ["red", "blue"], "nums": [1, 2],
         "seen": "2026-01-01T00:00:00Z", "ref": "305332a450ac475eb97ce2cd167238a6", "a": "ab", "b": "abc",
         "data": [1, "two"]},
        {"id": "b", "n": 2, "x": 2, "flag": false, "tags": [], "seen": "2026-06-01T12:00:00+02:00",
         "a": "same", "b": "same", "data": "text"},
        {"id": "c", "data": {"k": {"deep": 5}}}
    ]}"#,
    )
    .unwrap();
    T { _dir: dir, s }
}

fn thing_ids(t: &T, f: &Expr, locals: Vec<Value>) -> Vec<String> {
    t.keys(EntityId(0), f, locals)
        .into_iter()
        .map(|k| match k {
            Value::Str(s) => s.to_string(),
            v => panic!("{v:?}"),
        })
        .collect()
}

#[test]
fn every_column_kind_in_filters() {
    let t = things();
    let sc = t.schema();
    let c = |name: &str| row(&sc, EntityId(0), name);
    let ids = |f: Expr| thing_ids(&t, &f, vec![]);
    let none: Vec<String> = vec![];
    // Numbers compare across int and float.
    assert_eq!(ids(eq(c("x"), i(2))), vec!["b"]);
    assert_eq!(ids(cmp(CmpOp::Lt, c("n"), lit(Value::Float(1.5)))), vec!["a"]);
    assert_eq!(ids(cmp(CmpOp::Lt, c("n"), c("x"))), vec!["a"]);
    assert_eq!(ids(cmp(CmpOp::Ne, c("n"), c("x"))), vec!["a", "c"]);
    assert_eq!(ids(not(cmp(CmpOp::Ge, c("n"), i(2)))), vec!["a", "c"]);
    // Bools.
    assert_eq!(ids(eq(c("flag"), lit(Value::Bool(false)))), vec!["b"]);
    assert_eq!(ids(not(c("flag"))), vec!["b", "c"]);
    assert_eq!(ids(cmp(CmpOp::Ne, c("flag"), lit(Value::Bool(true)))), vec!["b", "c"]);
    // Typed lists.
    assert_eq!(ids(in_(s("red"), c("tags"))), vec!["a"]);
    assert_eq!(ids(in_(lit(Value::Float(2.0)), c("nums"))), vec!["a"]);
    assert_eq!(ids(call(Builtin::Empty, vec![c("tags")])), vec!["b", "c"]);
    assert_eq!(ids(eq(call(Builtin::Len, vec![c("tags")]), i(2))), vec!["a"]);
    assert_eq!(ids(in_(c("a"), c("tags"))), none);
    // Timestamps: parsed, compared in UTC, strings accepted.
    let noon_utc = parse_timestamp("2026-06-01T10:00:00Z").unwrap();
    assert_eq!(ids(eq(c("seen"), lit(Value::Timestamp(noon_utc)))), vec!["b"]);
    assert_eq!(ids(eq(c("seen"), s("2026-06-01T10:00:00Z"))), vec!["b"]);
    assert_eq!(ids(cmp(CmpOp::Gt, c("seen"), s("2026-03-01T00:00:00+00:00"))), vec!["b"]);
    assert_eq!(ids(cmp(CmpOp::Lt, c("seen"), s("not a time"))), none);
    assert_eq!(
        thing_ids(
            &t,
            &in_(c("seen"), local(0, Ty::Timestamp.list())),
            vec![Value::list(vec![Value::Timestamp(noon_utc)])]
        ),
        vec!["b"]
    );
    // Uuids: either form, or a Uuid value.
    assert_eq!(ids(eq(c("ref"), s("305332A4-50AC-475E-B97C-E2CD167238A6"))), vec!["a"]);
    assert_eq!(ids(eq(c("ref"), lit(Value::Uuid(parse_uuid("305332a450ac475eb97ce2cd167238a6").unwrap())))), vec!["a"]);
    assert_eq!(ids(cmp(CmpOp::Ne, c("ref"), s("garbage"))), vec!["a", "b", "c"], "unparsable text: different");
    // Two string columns; substring of another column.
    assert_eq!(ids(eq(c("a"), c("b"))), vec!["b"]);
    assert_eq!(ids(cmp(CmpOp::Ne, c("a"), c("b"))), vec!["a", "c"]);
    assert_eq!(ids(in_(c("a"), c("b"))), vec!["a", "b"]);
    assert_eq!(ids(call(Builtin::StartsWith, vec![c("b"), c("a")])), vec!["a", "b"]);
    assert_eq!(ids(cmp(CmpOp::Lt, c("a"), c("b"))), vec!["a"]);
    // `any` at the root and deep.
    assert_eq!(ids(in_(s("two"), c("data"))), vec!["a"]);
    assert_eq!(ids(in_(s("ex"), c("data"))), vec!["b"]);
    assert_eq!(ids(eq(row_path(&sc, EntityId(0), "data", &["k", "deep"]), i(5))), vec!["c"]);
    assert_eq!(ids(eq(call(Builtin::Len, vec![c("data")]), i(1))), vec!["c"]);
    assert_eq!(ids(in_(c("n"), c("data"))), vec!["a"], "column 1 in [1, \"two\"]");
    assert_eq!(ids(eq(c("data"), local(0, Ty::Any))), none);
    assert_eq!(
        thing_ids(&t, &eq(c("data"), local(0, Ty::Any)), vec![Value::list(vec![Value::Int(1), Value::str("two")])]),
        vec!["a"]
    );
    // Key column.
    assert_eq!(ids(cmp(CmpOp::Gt, c("id"), s("a"))), vec!["b", "c"]);
}

#[test]
fn outer_values_are_evaluated_once_in_order() {
    let t = authentik();
    let sc = t.schema();
    let f = and(
        eq(row(&sc, USER, "username"), local(0, Ty::String)),
        or(
            cmp(CmpOp::Ne, row(&sc, USER, "email"), local(1, Ty::String)),
            not(eq(local(2, Ty::Int), local(3, Ty::Int))),
        ),
    );
    let mut seen = Vec::new();
    let mut eval = |e: &Expr| {
        let ExprKind::Local(l) = e.kind else {
            // `not (local2 == local3)`: one outer bool.
            assert!(matches!(e.kind, ExprKind::Not(_)), "{e:?}");
            seen.push(99);
            return Ok(Value::Bool(false));
        };
        seen.push(l.0);
        Ok(match l.0 {
            0 => Value::str("alice"),
            _ => Value::str("x"),
        })
    };
    let v = t.s.query(QueryKind::Count, USER, Some(&f), &mut eval).unwrap();
    assert_eq!(v, Value::Int(1));
    assert_eq!(seen, vec![0, 1, 99]);
    // An evaluation error is the query's error.
    let mut failing = |_: &Expr| Err(herald::diag::RuntimeError::new(herald::diag::Code::DynamicType, "boom"));
    let e = t.s.query(QueryKind::Count, USER, Some(&f), &mut failing).unwrap_err();
    assert_eq!(e.message, "boom");
}

#[test]
fn unsupported_filters_are_rejected_not_run() {
    let t = authentik();
    let sc = t.schema();
    let name = || row(&sc, USER, "name");
    let lower_any = expr(ExprKind::Call { func: Builtin::Lower, args: vec![row(&sc, USER, "attributes")] }, Ty::String);
    let arith = expr(
        ExprKind::Arith { op: herald::ir::ArithOp::Add, lhs: Box::new(row(&sc, USER, "pk")), rhs: Box::new(i(1)) },
        Ty::Int,
    );
    let re = expr(
        ExprKind::Call { func: Builtin::Matches(Arc::new(regex::Regex::new("a").unwrap())), args: vec![name()] },
        Ty::Bool,
    );
    let bad = [
        eq(lower_any, s("x")),
        eq(arith, i(2)),
        re,
        eq(row(&sc, GROUP, "users"), local(0, Ty::Any)),
        call(Builtin::StartsWith, vec![row(&sc, USER, "pk"), s("1")]),
        in_(s("x"), row(&sc, USER, "pk")),
        eq(row_path(&sc, USER, "attributes", &["a\"b"]), i(1)),
    ];
    for f in &bad {
        let why = classify(f).expect_err("the checker must reject this filter").reason;
        assert!(!why.is_empty());
        let e = t.s.query(QueryKind::Count, USER, Some(f), &mut eval_locals(vec![])).unwrap_err();
        assert_eq!(e.code, herald::diag::Code::StoreFailure);
    }
    // A nested query is an outer value, even though it reads rows.
    let inner = expr(
        ExprKind::Query {
            kind: QueryKind::Exists,
            entity: GROUP,
            filter: Some(Box::new(eq(row(&sc, GROUP, "name"), s("ops")))),
        },
        Ty::Bool,
    );
    assert!(classify(&and(row(&sc, USER, "is_active"), inner)).is_ok());
}

#[test]
fn statements_are_cached_by_shape() {
    let t = authentik();
    let sc = t.schema();
    let f = eq(row(&sc, USER, "username"), local(0, Ty::String));
    for name in ["alice", "bob", "nobody"] {
        t.s.query(QueryKind::Count, USER, Some(&f), &mut eval_locals(vec![Value::str(name)])).unwrap();
    }
    let p1 = t.s.query_plan(QueryKind::Count, USER, Some(&f), &mut eval_locals(vec![Value::str("a")])).unwrap();
    let p2 = t.s.query_plan(QueryKind::Count, USER, Some(&f), &mut eval_locals(vec![Value::Absent])).unwrap();
    assert_eq!(p1, p2);
}

/// A program with one rule whose guard runs `filter` on `entity`.
fn program(schema: Arc<herald::schema::Schema>, entity: EntityId, filter: Expr) -> herald::ir::Program {
    use herald::ir::*;
    let q = expr(ExprKind::Query { kind: QueryKind::Exists, entity, filter: Some(Box::new(filter)) }, Ty::Bool);
    Program {
        schema,
        rules: vec![Rule {
            id: RuleId(0),
            name: "r".into(),
            name_span: sp(),
            span: sp(),
            matcher: Match { events: MatchEvents::Any, cond: lit(Value::Bool(true)), bindings: vec![], span: sp() },
            steps: vec![Step::Guard { cond: q, span: sp() }],
            actions: vec![],
            locals: vec![],
        }],
        paths: vec![],
        sources: Default::default(),
    }
}

#[test]
fn ensure_indexes_serves_equality_filters() {
    let t = authentik();
    let sc = t.schema();
    let by_target = eq(row(&sc, POLICY_BINDING, "target"), local(0, Ty::Uuid));
    let g = Value::Uuid(parse_uuid(GRAFANA).unwrap());
    let before =
        t.s.query_plan(QueryKind::Exists, POLICY_BINDING, Some(&by_target), &mut eval_locals(vec![g.clone()])).unwrap();
    assert!(before.contains("SCAN"), "{before}");
    t.s.ensure_indexes(&program(sc.clone(), POLICY_BINDING, by_target.clone())).unwrap();
    t.s.ensure_indexes(&program(sc.clone(), POLICY_BINDING, by_target.clone())).unwrap();
    let after =
        t.s.query_plan(QueryKind::Exists, POLICY_BINDING, Some(&by_target), &mut eval_locals(vec![g.clone()])).unwrap();
    assert!(after.contains("USING") && after.contains("herald_ix.PolicyBinding.target"), "{after}");
    assert_eq!(t.run(QueryKind::Exists, POLICY_BINDING, Some(&by_target), vec![g]), Value::Bool(true));

    // `first Group(name == ...)`, a membership test, and a path in `any`.
    let by_name = and(eq(row(&sc, GROUP, "name"), s("ops")), lit(Value::Bool(true)));
    t.s.ensure_indexes(&program(sc.clone(), GROUP, by_name.clone())).unwrap();
    let plan = t.s.query_plan(QueryKind::First, GROUP, Some(&by_name), &mut eval_locals(vec![])).unwrap();
    assert!(plan.contains("herald_ix.Group.name"), "{plan}");
    let by_level = eq(row_path(&sc, USER, "attributes", &["level"]), i(3));
    t.s.ensure_indexes(&program(sc.clone(), USER, by_level.clone())).unwrap();
    let plan = t.s.query_plan(QueryKind::All, USER, Some(&by_level), &mut eval_locals(vec![])).unwrap();
    assert!(plan.contains("herald_ix.User.attributes.level"), "{plan}");
    assert_eq!(t.users(&by_level), vec![12]);
    let by_names = in_(row(&sc, USER, "username"), local(0, Ty::String.list()));
    t.s.ensure_indexes(&program(sc.clone(), USER, by_names.clone())).unwrap();
    let names = Value::list(vec![Value::str("bob"), Value::str("carol")]);
    let plan = t.s.query_plan(QueryKind::All, USER, Some(&by_names), &mut eval_locals(vec![names.clone()])).unwrap();
    assert!(plan.contains("herald_ix.User.username"), "{plan}");
    assert_eq!(t.users_with(&by_names, vec![names]), vec![31, 40]);
}

#[test]
fn lookup_many_and_related_use_keys() {
    let t = authentik();
    // `User[added]` with a list: the rows in list order, one query.
    let rows = t.s.lookup_many(USER, &[Value::Int(40), Value::Int(12)]).unwrap();
    let names: Vec<Value> = rows.iter().map(|r| r.fields[0].clone()).collect();
    assert_eq!(names, vec![Value::str("carol"), Value::str("alice")]);
}

#[test]
fn case_functions_and_list_literals_in_filters() {
    let t = things();
    let sc = t.schema();
    let c = |name: &str| row(&sc, EntityId(0), name);
    let ids = |f: Expr| thing_ids(&t, &f, vec![]);
    let f1 = |func: Builtin, e: Expr| expr(ExprKind::Call { func, args: vec![e] }, Ty::String);
    // Rust's Unicode mappings, not SQLite's ASCII-only ones.
    let t2 = {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("h.db"), sc.clone()).unwrap();
        s.load_fixtures(
            r#"{"Thing": [{"id": "u", "a": "STRASSE", "b": " Émile "}, {"id": "v", "a": "straße", "b": "émile"}]}"#,
        )
        .unwrap();
        T { _dir: dir, s }
    };
    let ids2 = |f: Expr| thing_ids(&t2, &f, vec![]);
    assert_eq!(ids2(eq(f1(Builtin::Upper, c("a")), s("STRASSE"))), vec!["u", "v"]);
    assert_eq!(ids2(eq(f1(Builtin::Lower, f1(Builtin::Trim, c("b"))), s("émile"))), vec!["u", "v"]);
    assert_eq!(ids2(eq(f1(Builtin::Lower, c("b")), s(" émile "))), vec!["u"]);
    // `x in [value, field]` is `x == value or x == field`.
    let list = |items: Vec<Expr>| expr(ExprKind::List(items), Ty::String.list());
    assert_eq!(ids(in_(c("a"), list(vec![s("ab"), c("b")]))), vec!["a", "b"]);
    assert_eq!(ids(in_(c("a"), list(vec![s("nope"), c("b")]))), vec!["b"]);
    assert_eq!(ids(not(in_(c("a"), list(vec![s("ab"), c("b")])))), vec!["c"]);
    assert_eq!(ids(in_(c("a"), lit(Value::list(vec![])))), Vec::<String>::new());
}
