//! The editor queries of `herald::analysis` on a checked policy (the built-in
//! authentik schema): types at offsets, definitions, completions, fixes.

use herald::analysis::{self, CompletionKind};
use herald::compile::{self, SchemaChoice};
use herald::span::SourceMap;
use herald::syntax;

const POLICY: &str = r#"const admins = "authentik Admins"

rule r {
  match model_created { context.model: { pk: pk } }
  guard let user = Group[pk]
  guard exists Group(name == admins)
  action for g in user.users {
    log("member {g.username}")
  }
}
"#;

fn at(text: &str, needle: &str) -> usize {
    text.find(needle).unwrap_or_else(|| panic!("no `{needle}`"))
}

fn labels(c: &[analysis::Completion]) -> Vec<&str> {
    c.iter().map(|c| c.label.as_str()).collect()
}

#[test]
fn types_definitions_and_docs() {
    let mut sources = SourceMap::new();
    let f = sources.add("p.herald", POLICY);
    let compiled = compile::compile(&mut sources, SchemaChoice::Auto, &[f]);
    assert_eq!(compiled.errors(), 0, "{:?}", compiled.diagnostics);
    let program = compiled.program.as_ref().unwrap();
    let ast = syntax::parse(f, POLICY).ast;

    let (_, ty) = analysis::type_at(program, f, at(POLICY, "user.users")).unwrap();
    assert!(ty.starts_with("user: "), "{ty}");
    let (_, ty) = analysis::type_at(program, f, at(POLICY, "users {") + 1).unwrap();
    assert_eq!(ty, "[User]");

    // A use of `user` leads to its `guard let`; of `g` to the `for`; of a const to the const.
    let def = analysis::definition(Some(program), &ast, POLICY, f, at(POLICY, "user.users")).unwrap();
    assert_eq!(&POLICY[def.range()], "user");
    assert_eq!(def.start as usize, at(POLICY, "user = "));
    let def = analysis::definition(Some(program), &ast, POLICY, f, at(POLICY, "admins)")).unwrap();
    assert_eq!(def.start as usize, at(POLICY, "admins ="));
    let def = analysis::definition(Some(program), &ast, POLICY, f, at(POLICY, "g.username")).unwrap();
    assert_eq!(def.start as usize, at(POLICY, "g in"));

    let (_, doc) = analysis::hover(Some(program), POLICY, f, at(POLICY, "log(")).unwrap();
    assert!(doc.contains("log(") && doc.contains("message"), "{doc}");
}

#[test]
fn completions_follow_the_context() {
    let mut sources = SourceMap::new();
    let (schema, _) = compile::compile_schema(&mut sources, SchemaChoice::Builtin);

    // After `event.` in a rule matching `login`: login's and every event's fields.
    let text = "rule r {\n  match login\n  guard event.context.\n}\n";
    let c = analysis::complete(&schema, None, text, at(text, "context.\n") + "context.".len());
    let l = labels(&c);
    assert!(l.contains(&"auth_method") && l.contains(&"message"), "{l:?}");
    assert!(c.iter().all(|c| c.kind == CompletionKind::Field));

    // In a query filter: the entity's fields.
    let text = "rule r {\n  match login\n  guard exists User(us\n}\n";
    let c = analysis::complete(&schema, None, text, at(text, "(us") + 3);
    let l = labels(&c);
    assert!(l.contains(&"username") && l.contains(&"pk") && !l.contains(&"starts_with"), "{l:?}");

    // At the start of a pattern field: the event's top-level fields.
    let text = "rule r {\n  match model_created { \n}\n";
    let c = analysis::complete(&schema, None, text, at(text, "{ ") + 2);
    let l = labels(&c);
    assert!(l.contains(&"context") && l.contains(&"user"), "{l:?}");

    // After a non-ASCII character.
    let text = "rule r {\n  match login\n  guard \"é\"é\n}\n";
    let c = analysis::complete(&schema, None, text, at(text, "é\n") + "é".len());
    assert!(labels(&c).contains(&"lower"));

    // Elsewhere: functions and actions.
    let text = "rule r {\n  match login\n  guard st\n}\n";
    let c = analysis::complete(&schema, None, text, at(text, "st\n") + 2);
    let l = labels(&c);
    assert!(l.contains(&"starts_with") && l.contains(&"notify") && l.contains(&"User"), "{l:?}");
}

#[test]
fn did_you_mean_becomes_a_fix() {
    let text = "rule r {\n  match login\n  guard startswith(\"a\", \"b\")\n}\n";
    let mut sources = SourceMap::new();
    let f = sources.add("p.herald", text);
    let compiled = compile::compile(&mut sources, SchemaChoice::Auto, &[f]);
    let d = &compiled.diagnostics[0];
    let (span, new) = analysis::suggested_fix(d).expect("a fix");
    assert_eq!(&text[span.range()], "startswith");
    assert_eq!(new, "starts_with");
}

/// No query panics, at any offset of any fixture or example (checked or not).
#[test]
fn queries_answer_at_every_offset_of_every_fixture() {
    let mut files = Vec::new();
    for dir in ["tests/fixtures/good", "tests/fixtures/errors", "tests/fixtures/syntax", "examples/authentik"] {
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "herald") {
                files.push(e.path());
            }
        }
    }
    let mut answered = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut sources = SourceMap::new();
        let f = sources.add(path.display().to_string(), text.clone());
        let compiled = compile::compile(&mut sources, SchemaChoice::Auto, &[f]);
        let ast = syntax::parse(f, &text).ast;
        let program = compiled.program.as_ref();
        for off in (0..=text.len()).filter(|&o| text.is_char_boundary(o)) {
            answered += analysis::hover(program, &text, f, off).is_some() as usize;
            let _ = analysis::definition(program, &ast, &text, f, off);
            let _ = analysis::complete(&compiled.schema, Some(&ast), &text, off);
        }
        for d in &compiled.diagnostics {
            let _ = analysis::suggested_fix(d);
        }
    }
    assert!(answered > 1000, "hover answered only {answered} times");
}

#[test]
fn expect_rule_error_has_hover_and_completes_rules() {
    let text = "rule welcome { match login  action log(\"hi\") }\n\ntest \"t\" {\n  expect rule_error(welcome, \"R0003\")\n  expect dead_letter\n}\n";
    let mut sources = SourceMap::new();
    let f = sources.add("t.herald", text);
    let compiled = compile::compile(&mut sources, SchemaChoice::Auto, &[f]);
    assert_eq!(compiled.errors(), 0, "{:?}", compiled.diagnostics);
    let program = compiled.program.as_ref();
    let (span, doc) = analysis::hover(program, text, f, at(text, "rule_error(") + 3).unwrap();
    assert_eq!(&text[span.range()], "rule_error");
    assert!(doc.contains("expect rule_error(RULE") && doc.contains("fails the test"), "{doc}");
    let (_, doc) = analysis::hover(program, text, f, at(text, "dead_letter") + 1).unwrap();
    assert!(doc.contains("expect dead_letter"), "{doc}");
    // A rule named `rule_error` elsewhere is not an expectation: no test doc.
    let other = "rule r { match login  guard let rule_error = 1  action log(\"{rule_error}\") }\n";
    let hover = analysis::hover(None, other, f, at(other, "rule_error") + 1);
    assert!(hover.as_ref().is_none_or(|(_, d)| !d.contains("expect rule_error")), "{hover:?}");

    // Inside `rule_error(`: the file's rules, nothing else.
    let typing = "rule welcome { match login  action log(\"hi\") }\nrule bye { match logout  action log(\"bye\") }\n\ntest \"t\" {\n  expect rule_error(we\n}\n";
    let ast = syntax::parse(f, typing).ast;
    let (schema, _) = compile::compile_schema(&mut SourceMap::new(), SchemaChoice::Builtin);
    let c = analysis::complete(&schema, Some(&ast), typing, at(typing, "(we") + 3);
    assert_eq!(labels(&c), ["welcome", "bye"]);
    assert!(c.iter().all(|c| c.kind == CompletionKind::Rule));
}
