//! The JIT against the interpreter (the oracle): same program, same decoded
//! events, same matched rules (with the same run-time errors) and the same
//! pattern bindings.
//!
//! 1. The corpus: every policy of examples/authentik and the good policy
//!    fixtures, against the example events and the reference sample events.
//! 2. Generated programs (random match conditions over a small schema) and
//!    generated events biased to absent, null, wrong-typed and boundary values.

use herald::compile::{compile, SchemaChoice};
use herald::decode::{DecodePlan, Decoder, PlanSpec};
use herald::interp::{self, Env};
use herald::ir::Program;
use herald::jit::JitMatcher;
use herald::matcher::{InterpMatcher, MatchScratch, Matcher};
use herald::span::SourceMap;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::Path;
use std::sync::Arc;

/// What one engine decided for one event: (rule, error text) in order,
/// and the pattern bindings of every matched rule.
type Outcome = (Vec<(u32, Option<String>)>, Vec<Env>);

fn compile_files(files: &[(&str, String)]) -> Result<Arc<Program>, String> {
    let mut sources = SourceMap::default();
    let ids: Vec<_> = files.iter().map(|(n, t)| sources.add(*n, t)).collect();
    let c = compile(&mut sources, SchemaChoice::Auto, &ids);
    match c.program {
        Some(p) => Ok(Arc::new(p)),
        None => Err(format!("{:#?}", c.diagnostics)),
    }
}

struct Pair {
    program: Arc<Program>,
    jit: JitMatcher,
    interp: InterpMatcher,
    dec_match: Decoder,
    dec_full: Decoder,
    scratch: MatchScratch,
}

impl Pair {
    fn new(program: Arc<Program>) -> Pair {
        let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&program)));
        let jit = JitMatcher::compile(program.clone(), &plan).expect("JIT compiles");
        let interp = InterpMatcher::new(program.clone());
        Pair {
            dec_match: Decoder::new(plan.clone()),
            dec_full: Decoder::new(plan.clone()),
            program,
            jit,
            interp,
            scratch: MatchScratch::default(),
        }
    }

    /// `None` when the line is a dead letter (neither engine sees it).
    fn outcome(&mut self, jit: bool, line: &[u8]) -> Option<Outcome> {
        let ev = self.dec_match.decode_match(line).ok()?;
        let m: &dyn Matcher = if jit { &self.jit } else { &self.interp };
        m.matches(&ev, &mut self.scratch);
        let matched: Vec<(u32, Option<String>)> =
            self.scratch.matched.iter().map(|(r, e)| (r.0, e.as_ref().map(|e| format!("{e:?}")))).collect();
        let mut binds = Vec::new();
        if jit {
            // The engine binds patterns again from the full decode, as the
            // writer does after the JIT decided.
            let full = self.dec_full.decode_full(line).ok()?;
            for (r, _) in &matched {
                let mut env = Env::new();
                interp::bind_patterns(self.program.rule(herald::ir::RuleId(*r)), &full, &mut env);
                binds.push(env);
            }
        } else {
            for (r, _) in &matched {
                let mut env = Env::new();
                let rule = self.program.rule(herald::ir::RuleId(*r));
                let _ = interp::eval_match(&self.program, rule, &ev, &mut env);
                binds.push(env);
            }
        }
        Some((matched, binds))
    }

    /// Compare both engines on one line; the number of rule evaluations.
    fn check(&mut self, line: &[u8]) -> Result<usize, String> {
        let i = self.outcome(false, line);
        let j = self.outcome(true, line);
        if i != j {
            return Err(format!(
                "engines disagree on {}\n interp: {i:?}\n jit:    {j:?}\n fallbacks: {:?}",
                String::from_utf8_lossy(line),
                self.jit.fallbacks()
            ));
        }
        let ev = match self.dec_match.decode_match(line) {
            Ok(ev) => ev,
            Err(_) => return Ok(0),
        };
        let index = herald::matcher::RuleIndex::new(&self.program);
        // `herald trace` explains a `match` by evaluating it part by part:
        // its verdict, error and bindings must be the interpreter's.
        for &id in index.rules(ev.event_type) {
            let rule = self.program.rule(id);
            let (mut a, mut b) = (Env::new(), Env::new());
            let real = interp::eval_match(&self.program, rule, &ev, &mut a);
            let (traced, _) =
                interp::trace::trace_match(&self.program, rule, &ev, ev.event_type, ev.type_name(), &mut b);
            if format!("{real:?}") != format!("{traced:?}") || a != b {
                return Err(format!(
                    "trace disagrees on rule {} for {}\n real:   {real:?} {a:?}\n traced: {traced:?} {b:?}",
                    rule.name,
                    String::from_utf8_lossy(line)
                ));
            }
        }
        Ok(index.rules(ev.event_type).len())
    }
}

fn read_lines(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(|l| l.to_vec()).collect()
}

fn herald_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            herald_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "herald") {
            out.push(p);
        }
    }
}

#[test]
fn corpus_agrees() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut events = read_lines(&root.join("examples/authentik/events.ndjson"));
    // The reference sample events live beside the checkout (../shared), as on
    // CI; read by a relative path so the test runs on any machine.
    events.extend(read_lines(&root.join("../shared/reference/authentik-events.ndjson")));
    assert!(events.len() >= 92, "the sample events are missing");

    let mut examples = Vec::new();
    herald_files(&root.join("examples/authentik"), &mut examples);
    // Nine policies and `tests.herald` (test items only; `herald test` runs them).
    assert_eq!(examples.len(), 10);
    let texts: Vec<(String, String)> =
        examples.iter().map(|p| (p.display().to_string(), std::fs::read_to_string(p).expect("read policy"))).collect();
    let refs: Vec<(&str, String)> = texts.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let mut programs = vec![compile_files(&refs).expect("the examples compile")];
    let mut fixtures = Vec::new();
    herald_files(&root.join("tests/fixtures"), &mut fixtures);
    for f in fixtures {
        let text = std::fs::read_to_string(&f).expect("read fixture");
        // Only fixtures that compile on their own are "good".
        if let Ok(p) = compile_files(&[(&f.display().to_string(), text)]) {
            programs.push(p);
        }
    }
    let mut evaluations = 0;
    let mut fired = 0;
    for p in programs {
        let mut pair = Pair::new(p);
        for l in &events {
            evaluations += pair.check(l).unwrap_or_else(|e| panic!("{e}"));
            if pair.outcome(true, l).is_some_and(|o| !o.0.is_empty()) {
                fired += 1;
            }
        }
    }
    assert!(evaluations > 200, "{evaluations}");
    assert!(fired > 5, "the corpus should match some events: {fired}");
}

// ------------------------------------------------------------ generated

const SCHEMA: &str = r#"
discriminator kind
type R { s: string?, n: int? }
event * { id: int?, k: string? }
event e0 { s: string?, n: int?, f: float?, b: bool?, u: uuid?, t: timestamp?, x: any, r: R? }
event e1 { s: string?, n: int?, f: float?, b: bool?, u: uuid?, t: timestamp?, x: any, r: R? }
event e2 { s: string?, n: int?, f: float?, b: bool?, u: uuid?, t: timestamp?, x: any, r: R? }
"#;

/// Herald literal text and the JSON text of the same value.
const STRS: &[(&str, &str)] = &[
    (r#""""#, r#""""#),
    (r#""a""#, r#""a""#),
    (r#""b""#, r#""b""#),
    (r#""ab""#, r#""ab""#),
    (r#""a\"b""#, r#""a\"b""#),
    (r#""line\nbreak""#, r#""line\nbreak""#),
    (r#""é""#, r#""é""#),
    (r#""\u{1F600}""#, r#""😀""#),
    (r#""10.1.2.3""#, r#""10.1.2.3""#),
    (r#""192.168.1.7""#, r#""192.168.1.7""#),
    (r#""2001:db8::1""#, r#""2001:db8::1""#),
    (r#""ABc""#, r#""ABc""#),
];
const INTS: &[&str] = &["0", "1", "2", "42", "9223372036854775807", "9007199254740993"];
const FLOATS: &[&str] = &["0.0", "1.5", "42.0", "0.1", "9007199254740992.0"];
const UUIDS: &[&str] = &[
    "305332a4-50ac-475e-b97c-e2cd167238a6",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
];
const TSS: &[&str] = &[
    "2026-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999999Z",
    "2026-01-01T01:00:00+01:00",
    "9999-12-31T23:59:59Z",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Int,
    Float,
    Bool,
    Uuid,
    Ts,
    Any,
}

/// Fields a typed rule may read, and the common ones `match any` reads.
const FIELDS: &[(&str, Kind)] = &[
    ("event.s", Kind::Str),
    ("event.n", Kind::Int),
    ("event.f", Kind::Float),
    ("event.b", Kind::Bool),
    ("event.u", Kind::Uuid),
    ("event.t", Kind::Ts),
    ("event.x", Kind::Any),
    ("event.r.s", Kind::Str),
    ("event.r.n", Kind::Int),
    ("event.id", Kind::Int),
    ("event.k", Kind::Str),
];
const COMMON: &[(&str, Kind)] = &[("event.id", Kind::Int), ("event.k", Kind::Str)];

fn lit_for(kind: Kind, i: usize) -> String {
    let pick = |xs: &[&str]| xs[i % xs.len()].to_string();
    match kind {
        Kind::Str => STRS[i % STRS.len()].0.to_string(),
        Kind::Int => pick(INTS),
        Kind::Float => pick(FLOATS),
        Kind::Bool => ["true", "false"][i % 2].to_string(),
        Kind::Uuid => format!("{:?}", UUIDS[i % UUIDS.len()]),
        Kind::Ts => format!("{:?}", TSS[i % TSS.len()]),
        Kind::Any => match i % 6 {
            0 => lit_for(Kind::Str, i / 6),
            1 => lit_for(Kind::Int, i / 6),
            2 => lit_for(Kind::Float, i / 6),
            3 => lit_for(Kind::Bool, i / 6),
            4 => lit_for(Kind::Uuid, i / 6),
            _ => lit_for(Kind::Ts, i / 6),
        },
    }
}

/// A literal of a kind the checker accepts against `kind` (ints and floats mix).
fn lit_against(kind: Kind, i: usize) -> String {
    match kind {
        Kind::Int if i.is_multiple_of(3) => lit_for(Kind::Float, i / 3),
        Kind::Float if i.is_multiple_of(3) => lit_for(Kind::Int, i / 3),
        k => lit_for(k, i),
    }
}

/// Duration literals for time arithmetic, from nothing to the longest
/// literal that fits (so sums overflow now and then).
const DURS: &[&str] = &["0s", "1ns", "1h", "90m", "1h30m", "7d", "-1s", "1d1ns", "106751d"];

/// Time arithmetic on a `timestamp` field against a literal, which the JIT
/// solves for the field (`Atom::Time`).
fn time_atom(f: &str, li: usize, opi: usize) -> String {
    let ops = ["==", "!=", "<", "<=", ">", ">="];
    let op = ops[opi % 6];
    let d = DURS[li % DURS.len()];
    let d2 = DURS[li / 3 % DURS.len()];
    let t = lit_for(Kind::Ts, li / 2);
    match li % 8 {
        0 => format!("{f} + {d} {op} {t}"),
        1 => format!("{f} - {d} {op} {t}"),
        2 => format!("{f} - {t} {op} {d}"),
        3 => format!("{t} {op} {d} + {f}"),
        4 => format!("{f} + {d} - {d2} {op} {t}"),
        // Literal arithmetic that fails (`106751d * 2`) is left to the
        // interpreter, which reports it: keep the product in range.
        5 => format!("{f} - {t} + {d} {op} {} * 2", DURS[li / 3 % (DURS.len() - 1)]),
        6 if opi.is_multiple_of(2) => format!("-({f} - {t}) {op} {d}"),
        6 => format!("{f} - {t} {op} -({d})"),
        _ if opi.is_multiple_of(2) => format!("{t} - {f} {op} {d2}"),
        _ => format!("{d} - ({f} - {t}) {op} {d2}"),
    }
}

fn ordered(kind: Kind) -> bool {
    matches!(kind, Kind::Str | Kind::Int | Kind::Float | Kind::Ts | Kind::Any)
}

/// A predicate call (or substring test) on a string or `any` field, with
/// arguments that match some of the generated values.
fn predicate(f: &str, which: usize, li: usize) -> String {
    let pick = |xs: &[&str]| xs[li % xs.len()].to_string();
    let sub = pick(&["", "a", "ab", "l", "é", "1", "A", "b", "."]);
    let ops = ["==", "!=", "<", "<=", ">", ">="];
    match which {
        0 => format!("starts_with({f}, {sub:?})"),
        1 => format!("ends_with({f}, {sub:?})"),
        2 => format!("contains({f}, {sub:?})"),
        3 => {
            format!("matches({f}, {:?})", pick(&["^a", "b$", "^[a-z]+$", "\n", "é", "^$", "^[0-9.]+$", "(?i)ab", "."]))
        }
        4 => format!(
            "ip_in({f}, {:?})",
            pick(&["10.0.0.0/8", "192.168.1.0/24", "::ffff:0:0/96", "0.0.0.0/0", "2001:db8::/32", "10.1.2.3"])
        ),
        5 => format!("empty({f})"),
        6 => {
            let n = pick(&["0", "1", "2", "3", "11", "1.5"]);
            if li.is_multiple_of(7) {
                format!("{n} {} len({f})", ops[li / 7 % 6])
            } else {
                format!("len({f}) {} {n}", ops[li % 6])
            }
        }
        7 => format!("{sub:?} in {f}"),
        8 => format!("{f} in {:?}", pick(&["labé", "ab", "", "line\nbreak!", "10.1.2.3 ABc"])),
        _ => {
            let (func, lit) = if li.is_multiple_of(2) { ("lower", "abc") } else { ("upper", "ABC") };
            let lit = if li.is_multiple_of(3) { "a" } else { lit };
            format!("{func}({f}) {} {lit:?}", ["==", "!="][li / 2 % 2])
        }
    }
}

/// A random condition over `fields`, as Herald text.
fn cond(fields: &'static [(&'static str, Kind)]) -> impl Strategy<Value = String> {
    let atom = (0..fields.len(), 0usize..8, 0usize..64, 0usize..4, 0usize..20, 0usize..12).prop_map(
        move |(fi, opi, li, shape, pr, co)| {
            let (f, kind) = fields[fi];
            // Sometimes the field has a default: `(f ?? literal)`, or another
            // field of its kind first (`(f ?? g ?? literal)`), so both engines
            // see `??` in every position an atom has.
            let with_default;
            // An `any` field's default is a string, which every predicate
            // accepts (`starts_with(x ?? 0, "a")` is a run-time type error
            // whenever `x` is absent, which the JIT leaves to the interpreter).
            let dkind = if kind == Kind::Any { Kind::Str } else { kind };
            let f: &str = match co {
                0..=2 => {
                    with_default = format!("({f} ?? {})", lit_for(dkind, li / 2 + co));
                    &with_default
                }
                3 => {
                    let other = fields.iter().find(|(g, k)| *k == kind && *g != f).map(|(g, _)| *g);
                    with_default = match other {
                        Some(g) => format!("({f} ?? {g} ?? {})", lit_for(dkind, li / 3)),
                        None => format!("({f} ?? {})", lit_for(dkind, li / 3)),
                    };
                    &with_default
                }
                _ => f,
            };
            let ops = ["==", "!=", "<", "<=", ">", ">="];
            let op = if ordered(kind) { ops[opi % 6] } else { ops[opi % 2] };
            if matches!(kind, Kind::Str | Kind::Any) && pr < 10 {
                return predicate(f, pr, li + opi);
            }
            if kind == Kind::Ts && pr >= 12 {
                return time_atom(f, li, opi);
            }
            match (shape, opi) {
                // `!=` against null: the literal and a const holding it.
                (_, 6) => format!("{f} {} {}", ["==", "!="][li % 2], ["null", "nothing"][li / 2 % 2]),
                (_, 7) => {
                    let n = 1 + li % 3;
                    let items: Vec<String> = (0..n).map(|j| lit_against(kind, li + j * 18)).collect();
                    format!("{f} in [{}]", items.join(", "))
                }
                _ => {
                    let l = lit_against(kind, li);
                    // Bools have no order, even through `any`.
                    let op = if l == "true" || l == "false" { ops[opi % 2] } else { op };
                    if shape == 0 {
                        format!("{l} {op} {f}")
                    } else {
                        format!("{f} {op} {l}")
                    }
                }
            }
        },
    );
    atom.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("not ({c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} and {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a} or {b})")),
        ]
    })
}

/// One rule: `match any`, one type or several, optional patterns.
fn rule() -> impl Strategy<Value = String> {
    let typed =
        (0usize..4, proptest::option::of(cond(FIELDS)), 0usize..64, 0usize..4).prop_map(|(types, c, li, pat)| {
            let events = ["e0", "e1 | e0", "e2", "e0 | e1 | e2"][types];
            let patterns = match pat {
                0 => String::new(),
                1 => format!(" {{ s: {} }}", lit_for(Kind::Str, li)),
                2 => " { n: v, r: { s: _ } }".to_string(),
                _ => format!(" {{ r.n: {}, t: w }}", lit_for(Kind::Int, li)),
            };
            let wh = match (c, pat) {
                (Some(c), 2) => format!(" where v > 1 and {c}"),
                (Some(c), _) => format!(" where {c}"),
                (None, _) => String::new(),
            };
            format!("match {events}{patterns}{wh}")
        });
    let any = proptest::option::of(cond(COMMON)).prop_map(|c| match c {
        Some(c) => format!("match any where {c}"),
        None => "match any".to_string(),
    });
    prop_oneof![4 => typed, 1 => any]
}

/// A JSON string with some characters escaped (so the decoder unescapes
/// into its scratch buffer).
fn json_str(text: &str, escape: bool) -> String {
    if !escape {
        return text.to_string();
    }
    // `text` is JSON already: re-escape plain ASCII letters as \u00XX.
    let mut out = String::new();
    let inner = &text[1..text.len() - 1];
    out.push('"');
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(c);
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else if c.is_ascii_alphabetic() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// A JSON value for a field of `kind`: biased to absent (None), null,
/// boundary values and, rarely, a value that contradicts the schema (the
/// wrong type, a number out of range, a timestamp outside years 1-9999):
/// a rule error of every rule that reads it, which both engines must report
/// alike while deciding the other rules.
fn json_value(kind: Kind) -> impl Strategy<Value = Option<String>> {
    (0usize..100, 0usize..64, any::<bool>()).prop_map(move |(roll, i, esc)| {
        let ints = ["0", "1", "-1", "2", "42", "9223372036854775807", "-9223372036854775808", "9007199254740993"];
        let floats = ["0.0", "-0.0", "1.5", "-2.25", "42", "0.1", "1e300", "9007199254740992", "-0"];
        let typed = |k: Kind, i: usize| -> String {
            match k {
                Kind::Str => json_str(STRS[i % STRS.len()].1, esc),
                Kind::Int => ints[i % ints.len()].to_string(),
                Kind::Float => floats[i % floats.len()].to_string(),
                Kind::Bool => ["true", "false"][i % 2].to_string(),
                Kind::Uuid => {
                    let u = UUIDS[i % UUIDS.len()];
                    if i.is_multiple_of(2) {
                        format!("{u:?}")
                    } else {
                        format!("{:?}", u.replace('-', ""))
                    }
                }
                Kind::Ts => format!("{:?}", TSS[i % TSS.len()]),
                Kind::Any => String::new(),
            }
        };
        match roll {
            0..=14 => None,
            15..=24 => Some("null".into()),
            25..=27 => Some(["\"1\"", "1", "true", "[1]", "{}"][i % 5].into()),
            28 => Some(
                ["1e400", "-1e400", "18446744073709551617", "\"9999-12-31T23:59:59-23:59\"", "[1e400]"][i % 5].into(),
            ),
            _ => Some(match kind {
                Kind::Any => match i % 9 {
                    0 => typed(Kind::Str, i / 9),
                    1 => typed(Kind::Int, i / 9),
                    2 => typed(Kind::Float, i / 9),
                    3 => typed(Kind::Bool, i / 9),
                    4 => typed(Kind::Uuid, i / 9),
                    5 => typed(Kind::Ts, i / 9),
                    6 => ["[1, \"a\"]", "{\"a\": 1}", "[]"][i / 9 % 3].into(),
                    7 => ["100000000000000000000", "-9223372036854775809", "1.0"][i / 9 % 3].into(),
                    _ => "\"2026-01-01T00:00:00Z\"".into(),
                },
                k => typed(k, i),
            }),
        }
    })
}

fn event() -> impl Strategy<Value = String> {
    let kinds = ["e0", "e1", "e2", "zz"];
    (
        0usize..4,
        json_value(Kind::Int),
        json_value(Kind::Str),
        json_value(Kind::Str),
        json_value(Kind::Int),
        json_value(Kind::Float),
        json_value(Kind::Bool),
        json_value(Kind::Uuid),
        json_value(Kind::Ts),
        json_value(Kind::Any),
        (0usize..4, json_value(Kind::Str), json_value(Kind::Int)),
    )
        .prop_map(move |(k, id, kk, s, n, f, b, u, t, x, (rshape, rs, rn))| {
            let mut parts = vec![format!("\"kind\":\"{}\"", kinds[k])];
            for (name, v) in
                [("id", id), ("k", kk), ("s", s), ("n", n), ("f", f), ("b", b), ("u", u), ("t", t), ("x", x)]
            {
                if let Some(v) = v {
                    parts.push(format!("\"{name}\":{v}"));
                }
            }
            match rshape {
                0 => {}
                1 => parts.push("\"r\":null".into()),
                _ => {
                    let mut rp = Vec::new();
                    if let Some(v) = rs {
                        rp.push(format!("\"s\":{v}"));
                    }
                    if let Some(v) = rn {
                        rp.push(format!("\"n\":{v}"));
                    }
                    parts.push(format!("\"r\":{{{}}}", rp.join(",")));
                }
            }
            format!("{{{}}}", parts.join(","))
        })
}

#[test]
fn generated_programs_agree() {
    const PROGRAMS: u32 = 800;
    const EVENTS: usize = 64;
    let mut runner = TestRunner::new(Config { cases: PROGRAMS, failure_persistence: None, ..Config::default() });
    let evaluations = std::cell::Cell::new(0usize);
    let events_seen = std::cell::Cell::new(0usize);
    let rejected = std::cell::Cell::new(0usize);
    let (rules_total, rules_interpreted) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    // (rule, event) decisions the JIT left to the interpreter.
    let asked = std::cell::Cell::new(0u64);
    let strategy = (proptest::collection::vec(rule(), 1..12), proptest::collection::vec(event(), EVENTS));
    let result = runner.run(&strategy, |(rules, events)| {
        let mut text = String::from("const nothing = null\n");
        text.extend(rules.iter().enumerate().map(|(i, r)| format!("rule g{i} {{ {r} }}\n")));
        let program = match compile_files(&[("schema.herald", SCHEMA.to_string()), ("gen.herald", text.clone())]) {
            Ok(p) => p,
            Err(e) => {
                rejected.set(rejected.get() + 1);
                // A generator bug, not an engine bug: say so loudly but keep the count.
                if rejected.get() < 3 {
                    eprintln!("generated program rejected:\n{text}\n{e}");
                }
                return Ok(());
            }
        };
        let mut pair = Pair::new(program);
        rules_total.set(rules_total.get() + rules.len());
        rules_interpreted.set(rules_interpreted.get() + pair.jit.interpreted().len());
        if let Some((r, why)) = pair.jit.fallbacks().first() {
            // Everything the generator writes is in the compiled subset.
            return Err(TestCaseError::fail(format!("rule {} runs interpreted: {why}\nprogram:\n{text}", r.0)));
        }
        for e in &events {
            let n = pair.check(e.as_bytes()).map_err(|m| TestCaseError::fail(format!("{m}\nprogram:\n{text}")))?;
            evaluations.set(evaluations.get() + n);
            events_seen.set(events_seen.get() + 1);
        }
        // `check` runs the JIT once per event, so every rule evaluation is
        // one JIT decision (all generated rules are compiled, checked above).
        asked.set(asked.get() + pair.jit.asked());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "generated: {PROGRAMS} programs, {} rules ({} interpreted), {} events compared, {} rule evaluations, \
         {} programs rejected",
        rules_total.get(),
        rules_interpreted.get(),
        events_seen.get(),
        evaluations.get(),
        rejected.get()
    );
    assert!(rejected.get() * 20 < PROGRAMS as usize, "too many generated programs fail to check");
    assert!(evaluations.get() >= 100_000, "only {} generated cases", evaluations.get());
    // The JIT earns its keep only if it decides by itself: at least 90% of
    // the generated (rule, event) pairs natively, not by asking the
    // interpreter (which the generator's bad values and subtle kinds do).
    let native = 1.0 - asked.get() as f64 / evaluations.get().max(1) as f64;
    eprintln!("JIT decided {:.1}% of {} (rule, event) pairs natively", native * 100.0, evaluations.get());
    assert!(native >= 0.90, "the JIT decided only {:.1}% of generated pairs natively", native * 100.0);
}

/// LANGUAGE.md v1: `!=` is exactly `not ==`, so it holds on an absent or
/// null value; `x != null` holds when `x` has a value. Both engines, and
/// the expected answers spelled out.
#[test]
fn not_equal_on_absent_and_null() {
    let rules = r#"
const nothing = null
rule ne_str { match e0 where event.s != "a" }
rule ne_int { match e0 where event.n != 1 }
rule ne_float { match e0 where 1.5 != event.f }
rule ne_bool { match e0 where event.b != true }
rule ne_null { match e0 where event.s != null }
rule ne_const_null { match e0 where event.n != nothing }
rule ne_any { match e0 where event.x != "a" }
rule ne_nested { match e0 where event.r.s != "a" }
rule not_eq { match e0 where not (event.s == "a") }
rule ne_len { match e0 where len(event.s) != 1 }
rule ne_lower { match e0 where lower(event.s) != "a" }
"#;
    let program =
        compile_files(&[("schema.herald", SCHEMA.to_string()), ("ne.herald", rules.to_string())]).expect("compiles");
    let mut pair = Pair::new(program.clone());
    assert!(pair.jit.fallbacks().is_empty(), "all compiled: {:?}", pair.jit.fallbacks());
    let names = |line: &str, pair: &mut Pair| -> Vec<String> {
        pair.check(line.as_bytes()).unwrap_or_else(|m| panic!("{m}"));
        let (matched, _) = pair.outcome(true, line.as_bytes()).expect("not a dead letter");
        matched.iter().map(|(r, _)| program.rules[*r as usize].name.clone()).collect()
    };
    let all: Vec<String> = program.rules.iter().map(|r| r.name.clone()).collect();
    // Everything absent: every `!=` holds, `s != null` does not.
    let absent: Vec<String> = all.iter().filter(|n| *n != "ne_null" && *n != "ne_const_null").cloned().collect();
    assert_eq!(names(r#"{"kind":"e0"}"#, &mut pair), absent);
    // Everything null: the same.
    let line = r#"{"kind":"e0","s":null,"n":null,"f":null,"b":null,"x":null,"r":{"s":null}}"#;
    assert_eq!(names(line, &mut pair), absent);
    // Present and equal: only the null tests hold (and `len("a") != 1` is false).
    let line = r#"{"kind":"e0","s":"a","n":1,"f":1.5,"b":true,"x":"a","r":{"s":"a"}}"#;
    assert_eq!(names(line, &mut pair), vec!["ne_null".to_string(), "ne_const_null".to_string()]);
    // Present and different: everything holds.
    let line = r#"{"kind":"e0","s":"bb","n":2,"f":2.5,"b":false,"x":"b","r":{"s":"b"}}"#;
    assert_eq!(names(line, &mut pair), all);
}

/// Found by `generated_programs_agree`: the JIT's switch on a string path
/// decided a rule from its key alone, while the interpreter reads an earlier
/// pattern first and reports the contradiction there (R0006). Every rule
/// here must agree with the interpreter, whichever value the key path has.
#[test]
fn dispatch_respects_a_contradiction_read_before_the_key() {
    let rules = r#"
rule g0 { match e2 { r.n: 0, t: w } where "b" == event.s }
rule g1 { match e2 { s: "" } }
rule g2 { match e2 { r.n: 1 } where event.s == "c" }
"#;
    let program =
        compile_files(&[("schema.herald", SCHEMA.to_string()), ("d.herald", rules.to_string())]).expect("compiles");
    let mut pair = Pair::new(program);
    assert!(pair.jit.fallbacks().is_empty(), "all compiled: {:?}", pair.jit.fallbacks());
    for s in [r#""10.1.2.3""#, r#""b""#, r#""""#, r#""c""#, "null", "5"] {
        for n in ["[1]", "0", "1", "\"x\"", "null"] {
            let line = format!(r#"{{"kind":"e2","s":{s},"t":"2026-01-01T00:00:00Z","r":{{"n":{n}}}}}"#);
            pair.check(line.as_bytes()).unwrap_or_else(|m| panic!("{m}"));
        }
    }
}

/// LANGUAGE.md v1: `a ?? b` is `a` unless absent or null. The JIT compiles
/// it (a null test splitting the condition), and both engines give the
/// answers spelled out here.
#[test]
fn coalesce_defaults_in_both_engines() {
    let rules = r#"
rule d_str { match e0 where (event.s ?? "none") == "none" }
rule d_int { match e0 where event.n ?? 0 > 5 }
rule d_chain { match e0 where event.s ?? event.r.s ?? "z" == "b" }
rule d_bool { match e0 where event.b ?? true }
rule d_pred { match e0 where starts_with(event.s ?? "ab", "a") }
rule d_len { match e0 where len(event.s ?? "") == 0 }
rule d_in { match e0 where event.n ?? 7 in [1, 7] }
rule d_bind { match e0 { r: { n: v } } where v ?? 0 == 3 }
"#;
    let program =
        compile_files(&[("schema.herald", SCHEMA.to_string()), ("c.herald", rules.to_string())]).expect("compiles");
    let mut pair = Pair::new(program.clone());
    assert!(pair.jit.fallbacks().is_empty(), "all compiled: {:?}", pair.jit.fallbacks());
    let mut names = |line: &str| -> Vec<String> {
        pair.check(line.as_bytes()).unwrap_or_else(|m| panic!("{m}"));
        let (matched, _) = pair.outcome(true, line.as_bytes()).expect("not a dead letter");
        matched.iter().map(|(r, _)| program.rules[*r as usize].name.clone()).collect()
    };
    // Everything absent: the defaults decide.
    assert_eq!(names(r#"{"kind":"e0"}"#), ["d_str", "d_bool", "d_pred", "d_len", "d_in"]);
    // Null is no value either; `r.n` null still binds nothing (the pattern fails).
    let line = r#"{"kind":"e0","s":null,"n":null,"b":null,"r":{"s":"b","n":null}}"#;
    assert_eq!(names(line), ["d_str", "d_chain", "d_bool", "d_pred", "d_len", "d_in"]);
    // Present values win over the defaults.
    let line = r#"{"kind":"e0","s":"b","n":9,"b":false,"r":{"s":"x","n":3}}"#;
    assert_eq!(names(line), ["d_int", "d_chain", "d_bind"]);
    // Values that contradict the schema: rule errors in both engines, alike.
    for line in [r#"{"kind":"e0","s":5,"n":"x","b":"y"}"#, r#"{"kind":"e0","s":null,"r":{"s":[1]}}"#] {
        pair.check(line.as_bytes()).unwrap_or_else(|m| panic!("{m}"));
    }
}

/// Projections over an event list of records in `match` clauses (which run
/// in the interpreter, rule by rule, beside compiled ones): both engines
/// agree on every shape of the list, contradictions included, and give the
/// answers spelled out here.
#[test]
fn projections_over_event_lists_agree() {
    let schema = r#"
discriminator kind
type R { s: string?, n: int?, tags: [string]? }
event * { id: int? }
event e0 { items: [R]?, s: string? }
"#;
    let rules = r#"
rule has_a { match e0 where "a" in event.items.s }
rule all_names { match e0 where event.items.s == ["a", "b"] }
rule no_names { match e0 where event.items.s == [] }
rule tagged { match e0 where "t" in event.items.tags }
rule counted { match e0 where len(event.items.n) ?? 0 >= 2 }
rule compiled { match e0 where (event.s ?? "a") == "a" }
"#;
    let program =
        compile_files(&[("schema.herald", schema.to_string()), ("p.herald", rules.to_string())]).expect("compiles");
    let mut pair = Pair::new(program.clone());
    let interpreted: Vec<u32> = pair.jit.fallbacks().iter().map(|(r, _)| r.0).collect();
    assert_eq!(interpreted, [0, 1, 2, 3, 4], "projections run interpreted, `??` compiled");
    let items = [
        None,
        Some("null"),
        Some("[]"),
        Some("[{}]"),
        Some(r#"[{"s":"a"}]"#),
        Some(r#"[{"s":"a","n":1},{"s":null,"n":2},{"s":"b","tags":["t"]}]"#),
        Some(r#"[{"tags":null},{"tags":[]},{"tags":["u","t"]}]"#),
        Some(r#"[{"s":5}]"#),
        Some("[1]"),
        Some(r#"{"s":"a"}"#),
        Some(r#"[{"s":"a"},null]"#),
    ];
    let mut answers = Vec::new();
    for it in items {
        let line = match it {
            Some(v) => format!(r#"{{"kind":"e0","items":{v}}}"#),
            None => r#"{"kind":"e0"}"#.to_string(),
        };
        pair.check(line.as_bytes()).unwrap_or_else(|m| panic!("{m}"));
        let (matched, _) = pair.outcome(true, line.as_bytes()).expect("not a dead letter");
        let names: Vec<String> = matched
            .iter()
            .map(|(r, e)| {
                let name = program.rules[*r as usize].name.clone();
                if e.is_some() {
                    format!("{name}!")
                } else {
                    name
                }
            })
            .collect();
        answers.push(names.join(" "));
    }
    assert_eq!(
        answers,
        [
            "compiled",
            "compiled",
            "no_names compiled",
            "no_names compiled",
            "has_a compiled",
            "has_a all_names tagged counted compiled",
            "no_names tagged compiled",
            // Contradictions are rule errors of the rules that read the list.
            "has_a! all_names! no_names! tagged! counted! compiled",
            "has_a! all_names! no_names! tagged! counted! compiled",
            "has_a! all_names! no_names! tagged! counted! compiled",
            "has_a! all_names! no_names! tagged! counted! compiled",
        ]
    );
}

/// Time arithmetic at the edges of the timestamp and duration ranges: the
/// JIT compiles every rule (`Atom::Time`), asks the interpreter exactly
/// where an intermediate result leaves its range (R0007), and agrees on
/// everything else, including absent and null.
#[test]
fn time_arithmetic_at_the_edges() {
    let rules = r#"
rule plus { match e0 where event.t + 1h > "2026-01-01T00:00:00Z" }
rule minus_lit { match e0 where event.t - "2026-01-01T00:00:00Z" >= 0s }
rule lit_minus { match e0 where "2026-01-01T00:00:00Z" - event.t < 1ns }
rule neg { match e0 where -(event.t - "2026-01-01T00:00:00Z") != 1h }
rule chain { match e0 where event.t + 106751d - 106751d == "2026-01-01T00:00:00Z" }
rule far { match e0 where event.t - "0001-01-01T00:00:00Z" > 1d }
rule top { match e0 where event.t + 1ns <= "9999-12-31T23:59:59.999999999Z" }
rule bound { match e2 { t: w } where w - 1d < "2026-01-01T00:00:00Z" }
"#;
    let program =
        compile_files(&[("schema.herald", SCHEMA.to_string()), ("t.herald", rules.to_string())]).expect("compiles");
    let mut pair = Pair::new(program.clone());
    assert!(pair.jit.fallbacks().is_empty(), "all compiled: {:?}", pair.jit.fallbacks());
    let ts = [
        "\"2026-01-01T00:00:00Z\"",
        "\"2025-12-31T23:59:59.999999999Z\"",
        "\"2026-01-01T01:00:00+01:00\"",
        "\"0001-01-01T00:00:00Z\"",
        "\"0001-01-01T00:59:59Z\"",
        "\"9999-12-31T23:59:59.999999999Z\"",
        "\"9999-12-31T23:00:00Z\"",
        "\"1733-09-01T00:00:00Z\"",
        "\"2318-04-01T00:00:00Z\"",
        "null",
        "5",
        "\"not a time\"",
    ];
    for kind in ["e0", "e2"] {
        for t in ts {
            let line = format!(r#"{{"kind":"{kind}","t":{t}}}"#);
            pair.check(line.as_bytes()).unwrap_or_else(|m| panic!("{m}"));
        }
        pair.check(format!(r#"{{"kind":"{kind}"}}"#).as_bytes()).unwrap_or_else(|m| panic!("{m}"));
    }
    // The expected answers for one ordinary time, spelled out.
    pair.check(br#"{"kind":"e0","t":"2026-01-01T00:00:00Z"}"#).unwrap();
    let (matched, _) = pair.outcome(true, br#"{"kind":"e0","t":"2026-01-01T00:00:00Z"}"#).expect("not a dead letter");
    let names: Vec<(&str, bool)> =
        matched.iter().map(|(r, e)| (program.rules[*r as usize].name.as_str(), e.is_some())).collect();
    // `far` is some 2,025 years: no duration holds it, a rule error.
    assert_eq!(
        names,
        [
            ("plus", false),
            ("minus_lit", false),
            ("lit_minus", false),
            ("neg", false),
            ("chain", false),
            ("far", true),
            ("top", false)
        ]
    );
    let far = matched.iter().find_map(|(_, e)| e.as_ref()).unwrap();
    assert!(far.contains("TimeOutOfRange") && far.contains("out of range"), "{far}");
}
