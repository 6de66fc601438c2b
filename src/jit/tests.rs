//! Unit tests: every fallback reason is reported, and a few exact cases.
use super::*;
use crate::compile::{compile, SchemaChoice};
use crate::decode::{Decoder, PlanSpec};
use crate::matcher::InterpMatcher;
use crate::span::SourceMap;

const SCHEMA: &str = r#"
discriminator kind
event * { id: int }
event a { s: string?, n: int?, f: float?, b: bool?, x: any, u: uuid?, t: timestamp?, l: [string]? }
event b { s: string?, n: int? }
"#;

fn program(rules: &str) -> Arc<Program> {
    let mut sources = SourceMap::default();
    let f = sources.add("t.herald", format!("{SCHEMA}\n{rules}"));
    let c = compile(&mut sources, SchemaChoice::Auto, &[f]);
    assert_eq!(c.errors(), 0, "{:#?}", c.diagnostics);
    Arc::new(c.program.expect("program"))
}

fn plan(p: &Program) -> Arc<DecodePlan> {
    Arc::new(DecodePlan::new(PlanSpec::for_program(p)))
}

#[test]
fn every_fallback_reason_is_reported() {
    let p = program(
        r#"
        rule r0 { match a where event.s == "x" and event.n < 3 }
        rule r1 { match a where trim(event.s) == "a" }
        rule r2 { match a where starts_with(event.s, event.s) }
        rule r3 { match a where event.n + 1 == 2 }
        rule r4 { match a where "{event.n}" == "1" }
        rule r5 { match a where event.x["deep"] == 1 }
        rule r6 { match a where event.n == event.id }
        rule r7 { match a where lower(event.s) < "b" }
        rule r8 { match a where "a" in event.l }
        rule r9 { match a where event.l == ["a"] }
        rule r10 { match a where len(event.s) > event.n }
        rule r11 { match a where -event.n == 1 }
        rule r12 { match a | b where event.s != null }
    "#,
    );
    let sup = support(&p);
    let ids: Vec<u32> = sup.iter().map(|(r, _)| r.0).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "{sup:#?}");
    let reason = |i: u32| sup.iter().find(|(r, _)| r.0 == i).map(|(_, w)| w.as_str()).unwrap_or("");
    assert!(reason(1).contains("trim"), "{}", reason(1));
    assert!(reason(2).contains("starts_with") && reason(2).contains("non-literal"), "{}", reason(2));
    assert!(reason(3).contains("arithmetic"), "{}", reason(3));
    assert!(reason(4).contains("interpolation"), "{}", reason(4));
    assert!(reason(5).contains("indexing"), "{}", reason(5));
    assert!(reason(6).contains("two event values"), "{}", reason(6));
    assert!(reason(7).contains("lower"), "{}", reason(7));
    assert!(reason(8).contains("over an event value"), "{}", reason(8));
    assert!(reason(9).contains("list literal"), "{}", reason(9));
    assert!(reason(10).contains("len") && reason(10).contains("non-literal"), "{}", reason(10));
    assert!(reason(11).contains("arithmetic"), "{}", reason(11));
    for (_, why) in &sup {
        assert!(!why.is_empty());
    }
    // The matcher reports the same rules, with the same reasons.
    let m = JitMatcher::compile(p.clone(), &plan(&p)).expect("jit");
    assert_eq!(m.fallbacks(), &sup[..]);
    assert_eq!(m.interpreted(), sup.iter().map(|(r, _)| *r).collect::<Vec<_>>());
    assert!(m.is_compiled(RuleId(0)) && m.is_compiled(RuleId(12)));
    let st = status(&p);
    assert_eq!(st.iter().filter(|(_, w)| w.is_some()).count(), sup.len());
}

#[test]
fn literal_not_interned_by_plan_falls_back() {
    let p = program(r#"rule r0 { match a where event.s == "x" }"#);
    // A plan built without the program's literals.
    let mut spec = PlanSpec::for_program(&p);
    spec.literals.clear();
    let m = JitMatcher::compile(p.clone(), &DecodePlan::new(spec)).expect("jit");
    assert_eq!(m.fallbacks().len(), 1);
    assert!(m.fallbacks()[0].1.contains("not interned"), "{:?}", m.fallbacks());
}

fn run(m: &dyn Matcher, plan: &Arc<DecodePlan>, line: &str) -> Vec<(u32, bool)> {
    let mut dec = Decoder::new(plan.clone());
    let mut scratch = MatchScratch::default();
    let ev = dec.decode_match(line.as_bytes()).expect("decode");
    m.matches(&ev, &mut scratch);
    scratch.matched.iter().map(|(r, e)| (r.0, e.is_some())).collect()
}

#[test]
fn agrees_with_the_interpreter_on_edge_cases() {
    let p = program(
        r#"
        rule r0 { match a where event.s == "x" }
        rule r1 { match a where event.n != 3 }
        rule r2 { match a where event.f == 0 }
        rule r3 { match a where event.x == 1.5 }
        rule r4 { match a where event.x < "b" }
        rule r5 { match a where int(event.s) == 1 }
        rule r6 { match any where event.id >= 9223372036854775807 }
        rule r7 { match a where event.t > "2026-01-01T00:00:00Z" }
        rule r8 { match a where event.u == "305332a4-50ac-475e-b97c-e2cd167238a6" }
        rule r9 { match a where event.s in ["x", "y\n"] and not (event.b == true) }
        rule r10 { match a where event.x != "q" or event.x == null }
        rule r11 { match b where event.s == "x" }
    "#,
    );
    let plan = plan(&p);
    let jit = JitMatcher::compile(p.clone(), &plan).expect("jit");
    // Only r5 runs interpreted; its run-time error keeps its place in the order.
    assert_eq!(jit.interpreted(), vec![RuleId(5)], "{:?}", jit.fallbacks());
    let interp = InterpMatcher::new(p.clone());
    let lines = [
        r#"{"kind":"a","id":1,"s":"x","n":3,"f":-0.0,"x":1.5,"b":false}"#,
        r#"{"kind":"a","id":9223372036854775807,"s":"y\n","n":null,"f":0,"x":"a","b":true}"#,
        r#"{"kind":"a","id":2,"x":true,"t":"2026-06-01T00:00:00Z","u":"305332a450ac475eb97ce2cd167238a6"}"#,
        r#"{"kind":"a","id":2,"x":[1],"t":"2025-06-01T00:00:00Z"}"#,
        r#"{"kind":"a","id":2,"x":{"q":1},"s":"\u0078"}"#,
        r#"{"kind":"a","id":-9223372036854775808,"x":null}"#,
        r#"{"kind":"b","id":3,"s":"x"}"#,
        r#"{"kind":"zzz","id":9223372036854775807}"#,
    ];
    for l in lines {
        assert_eq!(run(&jit, &plan, l), run(&interp, &plan, l), "{l}");
    }
    assert_eq!(
        run(&jit, &plan, lines[0]),
        vec![(0, false), (2, false), (3, false), (5, true), (9, false), (10, false)]
    );
    // `int("y\n")` fails: the interpreter's error, between compiled rules.
    assert_eq!(run(&jit, &plan, lines[1]).iter().find(|(r, _)| *r == 5), Some(&(5, true)));
}

#[test]
fn predicates_agree_with_the_interpreter() {
    let p = program(
        r#"
        rule r0 { match a where starts_with(event.s, "ab") }
        rule r1 { match a where ends_with(event.s, "yz") or contains(event.s, "mm") }
        rule r2 { match a where matches(event.s, "^[a-c]+[0-9]*$") }
        rule r3 { match a where ip_in(event.s, "10.0.0.0/8") }
        rule r4 { match a where empty(event.s) }
        rule r5 { match a where len(event.s) >= 3 and not (len(event.s) > 5) }
        rule r6 { match a where event.s in "abcdef" }
        rule r7 { match a where "é" in event.s }
        rule r8 { match a where lower(event.s) == "abc" }
        rule r9 { match a where upper(event.s) != "ABC" }
        rule r10 { match a where starts_with(event.x, "a") }
        rule r11 { match a where empty(event.x) or len(event.x) == 1 }
        rule r12 { match a where event.x in "abc" }
        rule r13 { match a where contains(event.x, "a") }
        rule r14 { match a where matches(event.x, "a") }
        rule r15 { match a where lower(event.x) == "a" }
    "#,
    );
    let plan = plan(&p);
    let jit = JitMatcher::compile(p.clone(), &plan).expect("jit");
    assert_eq!(jit.interpreted(), vec![], "{:?}", jit.fallbacks());
    let interp = InterpMatcher::new(p.clone());
    let lines = [
        r#"{"kind":"a","id":1,"s":"abc","x":"a","l":["a"]}"#,
        r#"{"kind":"a","id":1,"s":"ab12xyz","x":1,"l":[]}"#,
        r#"{"kind":"a","id":1,"s":"10.2.3.4","x":[1],"l":null}"#,
        r#"{"kind":"a","id":1,"s":"","x":{"a":1}}"#,
        r#"{"kind":"a","id":1,"s":null,"x":null}"#,
        r#"{"kind":"a","id":1,"x":true}"#,
        r#"{"kind":"a","id":1,"s":"ÀBCé","x":"ABC"}"#,
        r#"{"kind":"a","id":1,"s":"aBc","x":"À"}"#,
        r#"{"kind":"a","id":1,"s":"cde","x":"bc"}"#,
        r#"{"kind":"a","id":1,"s":" ::ffff:10.0.0.1 ","x":""}"#,
    ];
    for l in lines {
        assert_eq!(run(&jit, &plan, l), run(&interp, &plan, l), "{l}");
    }
    // Spot checks that the answers are not all "ask the interpreter".
    assert_eq!(
        run(&jit, &plan, lines[0]),
        vec![
            (0, false),
            (2, false),
            (5, false),
            (6, false),
            (8, false),
            (10, false),
            (11, false),
            (12, false),
            (13, false),
            (14, false),
            (15, false)
        ]
    );
    assert!(run(&jit, &plan, lines[1]).contains(&(10, true)), "a run-time error on an int");
}

#[test]
fn a_contradicted_slot_asks_the_interpreter_for_the_rules_that_read_it() {
    // r0..r2 test `s` against different literals: the function dispatches
    // on its interned id, which a contradicted slot does not have.
    let p = program(
        r#"
        rule r0 { match a where event.s == "x" }
        rule r1 { match a where event.s == "y" }
        rule r2 { match a where event.s == "z" and event.n == 1 }
        rule r3 { match a where event.n == 1 }
        rule r4 { match a where event.n == 2 and event.s != "x" }
        rule r5 { match a where event.t > "2026-01-01T00:00:00Z" or event.n == 1 }
        rule r6 { match a where event.f == 1.5 }
    "#,
    );
    let plan = plan(&p);
    let jit = JitMatcher::compile(p.clone(), &plan).expect("jit");
    assert!(jit.interpreted().is_empty(), "{:?}", jit.fallbacks());
    let interp = InterpMatcher::new(p.clone());
    let lines = [
        r#"{"kind":"a","id":1,"s":7,"n":1}"#,
        r#"{"kind":"a","id":1,"s":"x","n":"one","f":1e400}"#,
        r#"{"kind":"a","id":1,"s":"z","n":1,"t":"9999-12-31T23:59:59-23:59"}"#,
    ];
    for l in lines {
        assert_eq!(run(&jit, &plan, l), run(&interp, &plan, l), "{l}");
    }
    // Every rule reading `s` fails; r3 and r5 match; r4 stops at `n == 2`
    // before it reads `s`.
    assert_eq!(run(&jit, &plan, lines[0]), vec![(0, true), (1, true), (2, true), (3, false), (5, false)]);
    // `n` and `f` contradicted: r0 matches, r2 stops at `s == "z"` before
    // it reads `n`, the rules that read them fail.
    assert_eq!(run(&jit, &plan, lines[1]), vec![(0, false), (3, true), (4, true), (5, true), (6, true)]);
    // A timestamp in year 10000: only the rule that reads `t` fails.
    assert_eq!(run(&jit, &plan, lines[2]), vec![(2, false), (3, false), (5, true)]);
}
