//! Shared by `tests/filter_props.rs` (SQLite against the interpreter) and
//! `tests/pg_filter_props.rs` (PostgreSQL as well): the entity the filters
//! query, checking one filter, and the generators of rows and filters.
//! Each including file defines `STRINGS`, the awkward strings rows and
//! literals draw from (PostgreSQL text cannot hold NUL, so its list has none).
#![allow(dead_code)]

use super::STRINGS;
use herald::compile::{compile, SchemaChoice};
use herald::interp::EventView;
use herald::ir::{Expr, ExprKind, PathId, Program, Step};
use herald::span::SourceMap;
use herald::store::Store;
use herald::value::Value;
use proptest::prelude::*;
use std::sync::Arc;

pub const ENTITY: &str = "entity Thing key id: string {
  name: string, nick: string?, n: int?, x: float?, flag: bool?, on: bool,
  tags: [string], nums: [int], data: any
}
";

pub struct NoEvent;

impl EventView for NoEvent {
    fn path(&self, _: PathId) -> Result<Value, herald::diag::RuntimeError> {
        Ok(Value::Absent)
    }
}

/// The checked program of one filter: `guard count Thing(FILTER) >= 0`.
pub fn program(filter: &str) -> Result<Arc<Program>, String> {
    let text = format!("{ENTITY}\nrule r {{\n  match login\n  guard count Thing({filter}) >= 0\n}}\n");
    let mut sources = SourceMap::default();
    let id = sources.add("filter.herald", &text);
    let c = compile(&mut sources, SchemaChoice::Auto, &[id]);
    match c.program {
        Some(p) => Ok(Arc::new(p)),
        None => Err(c.diagnostics.iter().map(|d| format!("{}: {}", d.code.as_str(), d.message)).collect()),
    }
}

/// The filter of the program's one query.
pub fn filter_of(p: &Program) -> &Expr {
    let Step::Guard { cond, .. } = &p.rules[0].steps[0] else { panic!("no guard") };
    let ExprKind::Cmp { lhs, .. } = &cond.kind else { panic!("no comparison") };
    let ExprKind::Query { filter: Some(f), .. } = &lhs.kind else { panic!("no query") };
    f
}

pub fn keys(v: &Value) -> Vec<Value> {
    match v {
        Value::List(rows) => rows.iter().flat_map(keys).collect(),
        Value::Entity(r) => vec![r.key.clone()],
        Value::Absent => vec![],
        other => vec![other.clone()],
    }
}

/// What happened when one filter ran both ways.
pub enum Verdict {
    Agree,
    /// The interpreter raised a run-time error (a dynamic value of the
    /// wrong kind): SQL has no row-by-row error, so nothing to compare.
    InterpError,
}

// ---- generated rows ---------------------------------------------------

pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

pub fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(STRINGS).prop_map(str::to_string),
        1 => (prop::sample::select(STRINGS), prop::sample::select(STRINGS)).prop_map(|(a, b)| format!("{a}{b}")),
    ]
}

pub fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => -3i64..4,
        1 => prop::sample::select(vec![i64::MAX, i64::MIN, 9_007_199_254_740_993, -1_000_000, 42, 255]),
    ]
}

/// Not 2^53 and beyond: an int there equals a float in the interpreter
/// (compared as `f64`) but not in SQLite (exact), a known difference.
pub fn float() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![0.0, -0.0, 1.0, 1.5, -2.5, 3.0, 1e300, -1e-300, 42.0, 4_503_599_627_370_496.5])
}

pub fn float_json(f: f64) -> String {
    // JSON has no -0.0 distinction worth testing through serde; keep the text.
    let s = serde_json::to_string(&f).unwrap();
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

pub fn scalar_json() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        int().prop_map(|i| i.to_string()),
        float().prop_map(float_json),
        string().prop_map(|s| json_str(&s)),
    ]
}

pub fn any_json() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => scalar_json(),
        1 => prop::collection::vec(scalar_json(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
        2 => (scalar_json(), string(), any::<bool>(), prop::collection::vec(scalar_json(), 0..3)).prop_map(
            |(k, s, b, l)| format!("{{\"k\": {k}, \"s\": {}, \"b\": {b}, \"l\": [{}]}}", json_str(&s), l.join(", "))
        ),
    ]
}

/// An optional field: omitted, `null`, or a value.
pub fn opt(v: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 1 => Just(Some("null".to_string())), 4 => v.prop_map(Some)]
}

pub fn row() -> impl Strategy<Value = String> {
    (
        string(),
        opt(string().prop_map(|s| json_str(&s))),
        opt(int().prop_map(|i| i.to_string())),
        opt(float().prop_map(float_json)),
        opt(any::<bool>().prop_map(|b| b.to_string())),
        // List fields are required (`[T]?` cannot be stored, E0118).
        prop::collection::vec(string().prop_map(|s| json_str(&s)), 0..3)
            .prop_map(|v| Some(format!("[{}]", v.join(", ")))),
        prop::collection::vec(int().prop_map(|i| i.to_string()), 0..3)
            .prop_map(|v| Some(format!("[{}]", v.join(", ")))),
        opt(any_json()),
    )
        .prop_map(|(name, nick, n, x, flag, tags, nums, data)| {
            let on = name.len() % 2 == 0;
            let mut fields = vec![format!("\"name\": {}, \"on\": {on}", json_str(&name))];
            for (k, v) in
                [("nick", nick), ("n", n), ("x", x), ("flag", flag), ("tags", tags), ("nums", nums), ("data", data)]
            {
                if let Some(v) = v {
                    fields.push(format!("\"{k}\": {v}"));
                }
            }
            fields.join(", ")
        })
}

pub fn rows() -> impl Strategy<Value = String> {
    prop::collection::vec(row(), 0..7).prop_map(|rows| {
        let rows: Vec<String> = rows.iter().enumerate().map(|(i, r)| format!("{{\"id\": \"r{i}\", {r}}}")).collect();
        format!("{{\"Thing\": [{}]}}", rows.join(",\n "))
    })
}

// ---- generated filters --------------------------------------------------

/// A string literal in policy syntax (NUL and others as `\u{..}`).
pub fn lit_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '{' => out.push_str("\\{"),
            '}' => out.push_str("\\}"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:X}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn str_lit() -> impl Strategy<Value = String> {
    string().prop_map(|s| lit_str(&s))
}

pub fn num_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        int().prop_map(|i| if i == i64::MIN { format!("({} - 1)", i64::MIN + 1) } else { i.to_string() }),
        float().prop_map(|f| {
            let s = float_json(f.abs());
            if f.is_sign_negative() && f != 0.0 {
                format!("-{s}")
            } else {
                s
            }
        }),
    ]
}

/// A string-valued operand that reads the row.
pub fn str_field() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["name", "nick", "lower(name)", "upper(nick)", "trim(name)", "lower(nick)"])
        .prop_map(str::to_string)
}

/// A number-valued operand that reads the row.
pub fn num_field() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["n", "x", "len(name)", "len(nick)", "len(tags)", "len(nums)", "len(data)"])
        .prop_map(str::to_string)
}

/// An `any` operand that reads the row.
pub fn any_field() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["data", "data.k", "data.s", "data.b", "data.l", "data.k.k"]).prop_map(str::to_string)
}

pub fn op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="])
}

pub fn eq_op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["==", "!="])
}

pub fn atom() -> impl Strategy<Value = String> {
    let any_rhs = prop_oneof![str_lit(), num_lit(), str_field(), num_field()];
    prop_oneof![
        (str_field(), op(), str_lit()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (str_lit(), op(), str_field()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (str_field(), op(), str_field()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (num_field(), op(), num_lit()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (num_field(), op(), num_field()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (any_field(), op(), any_rhs).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (any_field(), op(), any_field()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (any_field(), eq_op(), prop::sample::select(vec!["true", "false", "null"]))
            .prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (prop::sample::select(vec!["flag", "data.b"]), eq_op(), any::<bool>())
            .prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        Just("on".to_string()),
        (prop::sample::select(vec!["nick", "n", "x", "flag", "tags", "data", "data.k", "data.s"]), eq_op())
            .prop_map(|(a, o)| format!("{a} {o} null")),
        (str_field(), prop::collection::vec(str_lit(), 0..3)).prop_map(|(a, l)| format!("{a} in [{}]", l.join(", "))),
        (str_field(), str_lit(), str_field()).prop_map(|(a, l, b)| format!("{a} in [{l}, {b}]")),
        (num_field(), prop::collection::vec(num_lit(), 0..3)).prop_map(|(a, l)| format!("{a} in [{}]", l.join(", "))),
        (str_lit(), prop::sample::select(vec!["tags", "name", "nick", "data", "data.l", "data.s"]))
            .prop_map(|(a, c)| format!("{a} in {c}")),
        (num_lit(), prop::sample::select(vec!["nums", "data", "data.l"])).prop_map(|(a, c)| format!("{a} in {c}")),
        (
            prop::sample::select(vec!["name", "nick"]),
            prop::sample::select(vec!["tags", "name", "nick", "data", "data.l"])
        )
            .prop_map(|(a, c)| format!("{a} in {c}")),
        (prop::sample::select(vec!["n", "x"]), prop::sample::select(vec!["nums", "data", "data.l"]))
            .prop_map(|(a, c)| format!("{a} in {c}")),
        (str_field(), str_lit()).prop_map(|(a, l)| format!("{a} in {l}")),
        (
            prop::sample::select(vec!["starts_with", "ends_with", "contains"]),
            prop::sample::select(vec!["name", "nick", "data.s", "lower(name)"]),
            str_lit()
        )
            .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
        (prop::sample::select(vec!["starts_with", "ends_with", "contains"]), str_lit(), str_field())
            .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
        (prop::sample::select(vec!["starts_with", "ends_with"]), str_field(), str_field())
            .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
        (prop::sample::select(vec!["tags", "data.l"]), str_lit()).prop_map(|(a, b)| format!("contains({a}, {b})")),
        prop::sample::select(vec!["name", "nick", "tags", "nums", "data", "data.s", "data.l", "n"])
            .prop_map(|a| format!("empty({a})")),
    ]
}

pub fn filter() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} and {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

pub fn open(rows_json: &str) -> (tempfile::TempDir, Store) {
    let p = program("true").expect("the entity checks");
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("h.db"), p.schema.clone()).unwrap();
    s.load_fixtures(rows_json).unwrap_or_else(|e| panic!("fixtures do not load: {e:?}\n{rows_json}"));
    (dir, s)
}
