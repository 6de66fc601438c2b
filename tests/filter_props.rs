//! Query filters: the SQLite store against the interpreter (the oracle).
//!
//! The SQL counterpart of `tests/differential.rs`. Generated rows (awkward
//! strings with NUL characters, case variants, unicode, empty strings,
//! large and negative ints, floats, null and absent optional columns, JSON
//! `any` values) are loaded into a real SQLite store; generated filters
//! (comparisons, `!=`, `and/or/not`, `in`, string predicates, `len`,
//! `lower`/`upper`, null tests) are compiled by the real checker from
//! policy text, then each query kind runs through the store (SQL) and
//! through `Interp::query_rows` over all rows. The answers must be equal.

use herald::interp::Interp;
use herald::ir::QueryKind;
use herald::store::Store;
use herald::value::Value;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

mod filter_support;
use filter_support::*;

/// Run every query kind both ways over the store's rows.
fn compare(store: &Store, rows_json: &str, filter: &str) -> Result<Verdict, String> {
    let program = program(filter).map_err(|e| format!("`{filter}` does not check: {e}"))?;
    let f = filter_of(&program);
    let entity = program.schema.entity_by_name("Thing").unwrap();
    let interp = Interp { program: &program, event: &NoEvent, db: store, now: 0 };
    let env = vec![Value::Absent; program.rules[0].locals.len()];
    let all = store.query(QueryKind::All, entity, None, &mut |e| interp.eval(e, &env)).map_err(|e| e.message)?;
    let Value::List(all) = all else { return Err("`all` is not a list".into()) };
    let rows: Vec<_> = all
        .iter()
        .map(|v| match v {
            Value::Entity(r) => r.clone(),
            other => panic!("not a row: {other:?}"),
        })
        .collect();
    for kind in [QueryKind::All, QueryKind::Count, QueryKind::Exists, QueryKind::First] {
        let oracle = match interp.query_rows(kind, Some(f), &env, &rows) {
            Ok(v) => v,
            Err(_) => return Ok(Verdict::InterpError),
        };
        let sql = store
            .query(kind, entity, Some(f), &mut |e| interp.eval(e, &env))
            .map_err(|e| format!("SQL failed on `{filter}`: {} ({:?})\nrows: {rows_json}", e.message, e.code))?;
        let same = match kind {
            QueryKind::All | QueryKind::First => keys(&sql) == keys(&oracle),
            QueryKind::Count | QueryKind::Exists => sql == oracle,
        };
        if !same {
            return Err(format!(
                "{kind:?} Thing({filter}) disagrees\n sql:    {:?}\n interp: {:?}\n rows: {rows_json}",
                keys(&sql),
                keys(&oracle)
            ));
        }
    }
    Ok(Verdict::Agree)
}

// ---- generated rows ---------------------------------------------------

const STRINGS: &[&str] = &[
    "",
    "bob",
    "bob\u{0}admin",
    "\u{0}",
    "x\u{0}",
    "admin",
    "Admin",
    "ADMIN",
    "akadmin",
    "é",
    "É",
    "straße",
    "STRASSE",
    "ǅ",
    "İ",
    " pad ",
    "a",
    "ab",
    "abc",
    "😀",
    "a😀b",
    "1",
    "true",
];

#[test]
fn sql_agrees_with_the_interpreter() {
    let cases: u32 = std::env::var("HERALD_FILTER_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let compared = std::cell::Cell::new((0u32, 0u32));
    runner
        .run(&(rows(), prop::collection::vec(filter(), 1..6)), |(rows_json, filters)| {
            let (_dir, store) = open(&rows_json);
            for f in &filters {
                let v = compare(&store, &rows_json, f).map_err(TestCaseError::fail)?;
                let (a, e) = compared.get();
                compared.set(match v {
                    Verdict::Agree => (a + 1, e),
                    Verdict::InterpError => (a, e + 1),
                });
            }
            Ok(())
        })
        .unwrap();
    let (agreed, errors) = compared.get();
    // The interpreter's run-time errors (a string function on an `any`
    // value that is not a string) have no SQL counterpart; they must stay
    // a minority or the test compares too little.
    assert!(agreed > 4 * errors, "{agreed} filters compared, {errors} skipped for interpreter errors");
}

/// Issue 13, item 9: SQLite's string functions stop at NUL.
#[test]
fn nul_inside_strings() {
    let rows = r#"{"Thing": [
        {"id": "a", "name": "bob\u0000admin", "nick": "x", "data": {"s": "bob\u0000admin"}, "tags": ["bob\u0000admin"],
         "nums": [], "on": true},
        {"id": "b", "name": "admin", "nick": "\u0000", "data": {"s": "admin"}, "tags": ["bob"], "nums": [], "on": true},
        {"id": "c", "name": "bob", "nick": "", "data": {"s": "bob\u0000"}, "tags": [], "nums": [], "on": true}
    ]}"#;
    let (_dir, store) = open(rows);
    let expect = |filter: &str, want: &[&str]| {
        let p = program(filter).unwrap();
        let interp = Interp { program: &p, event: &NoEvent, db: &store, now: 0 };
        let entity = p.schema.entity_by_name("Thing").unwrap();
        let got = store.query(QueryKind::All, entity, Some(filter_of(&p)), &mut |e| interp.eval(e, &vec![])).unwrap();
        let want: Vec<Value> = want.iter().map(|k| Value::str(k)).collect();
        assert_eq!(keys(&got), want, "all Thing({filter})");
        assert!(matches!(compare(&store, rows, filter), Ok(Verdict::Agree)), "{filter}");
    };
    expect(r#"ends_with(name, "admin")"#, &["a", "b"]);
    expect(r#"starts_with(name, "bob")"#, &["a", "c"]);
    expect(r#"contains(name, "admin")"#, &["a", "b"]);
    expect(r#""\u{0}a" in name"#, &["a"]);
    expect(r#"len(name) == 9"#, &["a"]);
    expect(r#"len(nick) == 1"#, &["a", "b"]);
    expect(r#"empty(nick)"#, &["c"]);
    expect(r#"name == "bob\u{0}admin""#, &["a"]);
    expect(r#"name > "bob""#, &["a"]);
    expect(r#"ends_with(data.s, "admin")"#, &["a", "b"]);
    expect(r#"data.s == "bob\u{0}admin""#, &["a"]);
    expect(r#"len(data.s) == 4"#, &["c"]);
    expect(r#""bob\u{0}admin" in tags"#, &["a"]);
    expect(r#"upper(name) == "BOB\u{0}ADMIN""#, &["a"]);
}
