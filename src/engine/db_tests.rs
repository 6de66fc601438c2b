//! Rule savepoints opened at the first write (`RuleStore`): a rule that
//! fails after writing loses its writes, the rules around it keep theirs,
//! and rules that only read leave nothing behind.

use crate::compile::{self, SchemaChoice};
use crate::engine::{self, InterpMatcher, RunOptions};
use crate::span::SourceMap;
use crate::store::Store;
use std::sync::Arc;

const POLICY: &str = r#"
rule keeps_its_write {
  match login { user.pk: pk }
  guard let u = User[pk]
  action set u.attributes.first = "yes"
}
rule fails_after_a_write {
  match login { user.pk: pk }
  guard let u = User[pk]
  action {
    set u.attributes.second = "yes"
    set u.name = event.context.auth_method
  }
}
rule stops_in_a_guard {
  match login { user.pk: pk }
  guard let u = User[pk]
  guard u.username == "nobody"
  action set u.attributes.third = "yes"
}
rule writes_after_the_failure {
  match login { user.pk: pk }
  guard let u = User[pk]
  action set u.attributes.fourth = "yes"
}
"#;

const FIXTURES: &str = r#"{"User": [{"pk": 12, "username": "alice", "name": "Alice", "email": "alice@example.com",
  "is_active": true, "attributes": {}}]}"#;

const EVENT: &str = r#"{"event_uuid":"f3f96358-b6aa-4140-a66f-48758f289d20","user":{"username":"alice","pk":12},"action":"login","context":{},"created":"2026-04-14T10:10:39.565808Z"}
"#;

#[test]
fn a_failing_rule_rolls_back_only_its_own_writes() {
    let mut sources = SourceMap::new();
    let id = sources.add("policy.herald", POLICY);
    let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &[id]);
    let program = Arc::new(compiled.program.expect("the policy compiles"));
    let mut store = Store::open_in_memory(program.schema.clone()).expect("store");
    store.load_fixtures(FIXTURES).expect("fixtures load");
    let matcher = Arc::new(InterpMatcher::new(program.clone()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let opts = RunOptions { workers: 1, ..RunOptions::default() };
    let stats = engine::run(program, matcher, &store, EVENT.as_bytes(), opts, &mut out, &mut err).expect("runs");
    assert_eq!((stats.firings, stats.rule_errors), (2, 1), "{}", String::from_utf8_lossy(&err));
    let (name, attributes): (String, String) = store
        .connection()
        .query_row("SELECT name, attributes FROM User WHERE pk = 12", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("alice is there");
    let attributes: serde_json::Value = serde_json::from_str(&attributes).expect("JSON attributes");
    assert_eq!(name, "Alice");
    assert_eq!(attributes, serde_json::json!({"first": "yes", "fourth": "yes"}));
    let errors: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM herald_rule_error WHERE rule = 'fails_after_a_write'", [], |r| r.get(0))
        .expect("count");
    assert_eq!(errors, 1);
}
