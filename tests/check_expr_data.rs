//! The typing of language v1's data expressions: `??`, object literals and
//! projections, read off the checked program (the types of `let` bindings),
//! and their diagnostics.

use herald::compile::{compile, SchemaChoice};
use herald::diag::Diagnostic;
use herald::ir::Program;
use herald::span::SourceMap;
use herald::types::TyDisplay;

fn check(policy: &str) -> (Option<Program>, Vec<Diagnostic>) {
    let mut sources = SourceMap::default();
    let id = sources.add("t.herald", policy);
    let c = compile(&mut sources, SchemaChoice::Auto, &[id]);
    (c.program, c.diagnostics)
}

/// The type of every `let` binding of the policy's first rule, as shown in
/// messages; the policy must check without errors.
fn let_types(policy: &str) -> Vec<(String, String)> {
    let (program, diags) = check(policy);
    let program = program.unwrap_or_else(|| panic!("does not check: {diags:#?}"));
    let rule = &program.rules[0];
    rule.locals
        .iter()
        .filter(|l| l.name.starts_with('t'))
        .map(|l| (l.name.clone(), TyDisplay { ty: &l.ty, schema: &program.schema }.to_string()))
        .collect()
}

fn codes(policy: &str) -> Vec<String> {
    check(policy).1.iter().map(|d| d.code.as_str().to_string()).collect()
}

#[test]
fn coalesce_types() {
    let types = let_types(
        r#"rule r {
  match login
  let t1 = event.client_ip ?? "none"
  let t2 = event.client_ip ?? event.app
  let t3 = event.context.geo.lat ?? 0
  let t4 = event.client_ip ?? event.app ?? "x"
  let t5 = event.context.asn ?? 1
  let t6 = event.expires ?? "2026-01-01T00:00:00Z"
  action log("{t1}{t2}{t3}{t4}{t5}{t6}")
}"#,
    );
    let want =
        [("t1", "string"), ("t2", "string?"), ("t3", "float"), ("t4", "string"), ("t5", "any"), ("t6", "timestamp")];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(types, want);
}

#[test]
fn coalesce_binds_tighter_than_comparisons_and_looser_than_sums() {
    // `(n ?? 0) > 5`: were it `n ?? (0 > 5)`, the sides would not agree.
    let (p, d) = check("rule r { match login where event.context.geo.lat ?? 0 > 5 }");
    assert!(p.is_some() && d.is_empty(), "{d:#?}");
    // `(lat ?? 0) + 1` would not parse like this: `lat ?? (0 + 1)`.
    let types = let_types(r#"rule r { match login let t = event.context.geo.lat ?? 0 + 1 action log("{t}") }"#);
    assert_eq!(types, [("t".to_string(), "float".to_string())]);
    // Right-associative: `a ?? (b ?? c)`; the chain is a plain string.
    let types = let_types(r#"rule r { match login let t = event.client_ip ?? event.app ?? "-" action log("{t}") }"#);
    assert_eq!(types, [("t".to_string(), "string".to_string())]);
}

#[test]
fn coalesce_diagnostics() {
    assert_eq!(codes(r#"rule r { match login where event.client_ip ?? 0 == "a" }"#), ["E0215"]);
    assert_eq!(codes(r#"rule r { match login where event.app ?? [1] == [1] }"#), ["E0215"]);
    // Never absent: a warning, and the program still checks.
    let (p, d) =
        check(r#"rule r { match login where event.created ?? "2026-01-01T00:00:00Z" > "2025-01-01T00:00:00Z" }"#);
    assert!(p.is_some());
    assert_eq!(d.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["W0006"]);
    // A failed side is not reported again.
    assert_eq!(codes(r#"rule r { match login where event.nope ?? 0 > 1 }"#), ["E0109"]);
}

#[test]
fn object_types_and_access() {
    let types = let_types(
        r#"rule r {
  match login
  let t1 = { a: 1, "b c": [1, 2], d: { e: event.client_ip } }
  let t2 = t1.d.e
  let t3 = {}
  let t4 = [{ a: 1 }, { a: 2 }].a
  let t5 = t1 == { d: { e: "x" }, "b c": [], a: 2 }
  let t6 = [{ a: 1 }, { a: 2.5 }]
  let t7 = [{ a: 1 }, { b: "x" }]
  action log("{t1}{t2}{t3}{t4}{t5}{t6}{t7}")
}"#,
    );
    let want = [
        ("t1", r#"{ a: int, "b c": [int], d: { e: string? } }"#),
        ("t2", "string?"),
        ("t3", "{}"),
        ("t4", "[int]"),
        ("t5", "bool"),
        ("t6", "[{ a: float }]"),
        // Objects of different shapes: a JSON array of `any`.
        ("t7", "[any]"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(types, want);
}

#[test]
fn object_diagnostics() {
    assert_eq!(codes(r#"rule r { match login action log("{ { a: 1, a: 2 } }") }"#), ["E0124"]);
    assert_eq!(codes(r#"rule r { match login action log("{ { a: 1, "a": 2 } }") }"#), ["E0124"]);
    assert_eq!(codes(r#"rule r { match login action log("{ { a: 1 }.b }") }"#), ["E0109"]);
    assert_eq!(codes(r#"rule r { match login where { a: 1 } > 1 }"#), ["E0211"]);
    assert_eq!(codes(r#"rule r { match login action log("{[{ a: 1 }, 2]}") }"#), ["E0210"]);
    let (p, d) = check(r#"const L = [{ a: 1 }, { b: 2 }, { a: 3 }] rule r { match login action log("{L}") }"#);
    assert!(p.is_some() && d.is_empty(), "{d:#?}");
    assert_eq!(codes(r#"rule r { match login where { a: 1 } == { a: "x" } }"#), ["E0203"]);
    assert_eq!(codes(r#"rule r { match login action send_email(to: { a: 1 }, subject: "s", body: "b") }"#), ["E0410"]);
    // Braces where a block or patterns belong are still blocks and patterns.
    let (p, d) = check(
        r#"rule r {
  match login { user: { username: name } } where name != "x"
  action { if name == "a" { log("{ { n: name } }") } else { log("-") } }
}"#,
    );
    assert!(p.is_some() && d.is_empty(), "{d:#?}");
}

#[test]
fn projection_types() {
    let types = let_types(
        r#"rule r {
  match model_updated
  guard let g = first Group()
  let t1 = g.users.email
  let t2 = all Group().users
  let t3 = all Group().users.email
  let t4 = g.users.path
  let t5 = all User().attributes.x
  let t6 = event.context.model.pk
  action log("{t1}{t2}{t3}{t4}{t5}{t6}")
}"#,
    );
    let want = [
        ("t1", "[string]"),
        // A list-valued field is flattened one level: a list of users.
        ("t2", "[User]"),
        ("t3", "[string]"),
        // `[T?]` fields give `[T]`: absent values are skipped.
        ("t4", "[string]"),
        ("t5", "[any]"),
        ("t6", "any"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(types, want);
    let types = let_types(r#"rule r { match email_sent let t = event.context.to_email action log("{t}") }"#);
    assert_eq!(types, [("t".to_string(), "[string]?".to_string())]);
}

#[test]
fn projection_diagnostics() {
    let p = r#"rule r { match model_updated guard let g = first Group() action log("{g.users.emial}") }"#;
    let (_, d) = check(p);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code.as_str(), "E0109");
    assert_eq!(d[0].help.as_deref(), Some("did you mean `email`?"));
    assert_eq!(codes(r#"rule r { match login action log("{[1, 2].x}") }"#), ["E0207"]);
}
