//! Policy files may extend the built-in schema: a redeclared event type in
//! another file merges its fields; a duplicate within one file is an error.

use herald::compile::{compile, SchemaChoice};
use herald::span::SourceMap;

fn codes(src: &str) -> Vec<String> {
    let mut sources = SourceMap::default();
    let f = sources.add("p.herald", src);
    let out = compile(&mut sources, SchemaChoice::Auto, &[f]);
    out.diagnostics.iter().map(|d| d.code.as_str().to_string()).collect()
}

#[test]
fn a_policy_file_adds_fields_to_a_builtin_event() {
    let src = "event login { context: { extra_flag: bool? }? }\n\
               rule r { match login where event.context.extra_flag == true }\n";
    assert_eq!(codes(src), Vec::<String>::new());
}

#[test]
fn the_builtin_fields_stay_after_an_extension() {
    let src = "event login { context: { extra_flag: bool? }? }\n\
               rule r { match login { context.auth_method_args.known_device: false } where event.context.extra_flag == true }\n";
    assert_eq!(codes(src), Vec::<String>::new());
}

#[test]
fn a_duplicate_event_in_one_file_is_an_error() {
    let src = "event foo { a: int }\nevent foo { b: int }\nrule r { match foo }\n";
    assert_eq!(codes(src), vec!["E0103".to_string()]);
}

#[test]
fn an_undeclared_field_is_an_error_without_a_stray_null_warning() {
    let src = "rule r { match login where event.context.extra_flag == true }\n";
    assert_eq!(codes(src), vec!["E0109".to_string()]);
}

#[test]
fn rules_in_a_schema_file_are_checked_and_kept() {
    let mut sources = SourceMap::default();
    let schema = sources
        .add("k.herald", "discriminator kind\nevent ping { n: int }\nrule from_schema { match ping { n: 1 } }\n");
    let policy = sources.add("p.herald", "rule from_policy { match ping }\n");
    let out = compile(&mut sources, SchemaChoice::File(schema), &[policy]);
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    let names: Vec<String> = out.program.expect("compiles").rules.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, vec!["from_schema".to_string(), "from_policy".to_string()]);
}

#[test]
fn the_builtin_schema_names_created_as_the_event_time() {
    let mut sources = SourceMap::default();
    let f = sources.add("p.herald", "rule r { match login }\n");
    let out = compile(&mut sources, SchemaChoice::Auto, &[f]);
    assert_eq!(out.schema.time.as_deref(), Some("created"));
}

#[test]
fn time_is_an_item_only_at_the_top_level_before_a_name() {
    // `time` stays a name: a binding, a field, a line that starts with it.
    let src = "rule r {\n  match login\n  let time = event.created\n  guard time > \"2026-01-01T00:00:00Z\" and\ntime < now()\n  action log(message: \"{time}\")\n}\n";
    assert_eq!(codes(src), Vec::<String>::new());
    // A second `time` over the built-in schema is a duplicate.
    assert_eq!(codes("time expires\nrule r { match login }\n"), vec!["E0107".to_string()]);
}

#[test]
fn a_schema_of_its_own_may_take_its_time_from_every_event() {
    let src = "discriminator kind\ntime at\nevent push { at: timestamp }\nevent pull { at: timestamp, n: int }\n\
               rule r { match push where event.at + 1h > \"2026-01-01T00:00:00Z\" }\n";
    assert_eq!(codes(src), Vec::<String>::new());
}
