//! `herald test` as a user or a CI job runs it: the built binary on a
//! passing and a failing suite, its exit codes, and its three outputs
//! (human, `--format json`, `--junit`) as snapshots.

use serde_json::Value;
use std::process::{Command, Output};

fn herald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .output()
        .expect("run herald")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

const PASSING: &str = "tests/fixtures/suites/passing.herald";
const FAILING: &str = "tests/fixtures/suites/failing.herald";

#[test]
fn passing_suite_exits_0() {
    let out = herald(&["test", PASSING]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "no diagnostics: {}", String::from_utf8_lossy(&out.stderr));
    insta::assert_snapshot!("passing_human", stdout(&out));
}

#[test]
fn failing_suite_exits_1_and_says_what_happened() {
    let out = herald(&["test", FAILING]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("failing_human", stdout(&out));
}

#[test]
fn json_has_the_contract_shape() {
    let out = herald(&["test", "--format", "json", FAILING]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["passed"], 1);
    assert_eq!(v["failed"], 2);
    for t in v["tests"].as_array().unwrap() {
        let mut keys: Vec<&str> = t.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["failures", "file", "line", "name", "passed"]);
        assert_eq!(t["passed"].as_bool().unwrap(), t["failures"].as_array().unwrap().is_empty());
    }
    insta::assert_snapshot!("failing_json", serde_json::to_string_pretty(&v).unwrap());
}

#[test]
fn junit_is_written_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    let out = herald(&["test", "--junit", path.to_str().unwrap(), FAILING]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&path).unwrap();
    // The test name has `<`, `>`, `&` and `"`: none may appear raw inside
    // an attribute.
    assert!(xml.contains("name=\"wrong &lt;expectations&gt; &amp; &quot;quotes&quot;\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 3);
    assert_eq!(xml.matches("<failure ").count(), 9);
    insta::assert_snapshot!("failing_junit", xml);
}

#[test]
fn the_authentik_examples_pass() {
    let out = herald(&["test", "examples/authentik/"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).ends_with(" passed, 0 failed\n"));
    // The example tests cover every example rule, clause and guard.
    let out = herald(&["test", "--coverage", "--format", "json", "examples/authentik/"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["coverage"]["gaps"], serde_json::json!([]), "{}", v["coverage"]);
    assert_eq!(v["coverage"]["summary"]["complete"], true);
}

#[test]
fn files_that_do_not_compile_exit_1() {
    let out = herald(&["test", "tests/fixtures/errors/E0701_unknown_rule.herald"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E0701"));
    assert!(out.stdout.is_empty());
}

#[test]
fn run_ignores_test_items() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let events = dir.path().join("e.ndjson");
    std::fs::write(
        &events,
        r#"{"action":"login_failed","event_uuid":"6f1c2d3e-4a5b-4c6d-8e9f-001122334455","created":"2026-05-04T09:51:00Z","context":{"username":"nobody"}}"#,
    )
    .unwrap();
    let out = herald(&["run", "--quiet", "--db", db.to_str().unwrap(), "--events", events.to_str().unwrap(), PASSING]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // The test's `given` row is not in the store: nobody fired.
    assert!(out.stdout.is_empty());
}

const COVERED: &str = "tests/fixtures/suites/covered.herald";
const GAPS: &str = "tests/fixtures/suites/gaps.herald";

#[test]
fn coverage_of_a_suite_that_covers_everything() {
    let out = herald(&["test", "--coverage", COVERED]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("2 of 2 rules fired, 5 of 5 clauses reached, 2 of 2 guards"), "{text}");
    insta::assert_snapshot!("coverage_complete_human", text);
    let out = herald(&["test", "--coverage", "--format", "json", COVERED]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["coverage"]["summary"]["complete"], true);
    assert_eq!(v["coverage"]["gaps"], serde_json::json!([]));
    // Every clause was reached; the window stopped `burst` on the first
    // event of each address and passed on the second.
    let burst = &v["coverage"]["rules"][1];
    assert_eq!(burst["rule"], "burst");
    assert_eq!((burst["matched"].as_u64(), burst["fired"].as_u64()), (Some(6), Some(1)));
    let window = &burst["clauses"][0];
    assert_eq!(
        (window["clause"].as_str(), window["passed"].as_u64(), window["stopped"].as_u64()),
        (Some("window"), Some(2), Some(4))
    );
    insta::assert_snapshot!("coverage_complete_json", serde_json::to_string_pretty(&v["coverage"]).unwrap());
}

#[test]
fn coverage_names_unreached_rules_and_one_sided_guards() {
    let out = herald(&["test", "--coverage", GAPS]);
    // The suite passes: gaps are reported, never a failure.
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    insta::assert_snapshot!("coverage_gaps_human", text);
    let out = herald(&["test", "--coverage", "--format", "json", GAPS]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["coverage"];
    let status: Vec<(&str, &str)> = c["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [
            ("lock_on_failure", "fired"),
            ("root_failure", "never_fired"),
            ("service_failure", "never_matched"),
            ("password_changed", "never_matched")
        ]
    );
    let gaps: Vec<(&str, &str, Option<&str>)> = c["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["kind"].as_str().unwrap(), g["rule"].as_str().unwrap(), g["text"].as_str()))
        .collect();
    // The guard that only ever passed.
    assert!(gaps.contains(&("guard_one_sided", "lock_on_failure", Some("guard let u = first User(username == who)"))));
    // The clause and the query behind a guard that always stopped the rule.
    assert!(gaps.contains(&("clause_not_reached", "root_failure", Some("guard exists Group(name == \"admins\")"))));
    assert!(gaps.contains(&("clause_not_reached", "root_failure", Some("exists Group(name == \"admins\")"))));
    // The rule no test reached: one gap for the rule, none per clause.
    assert!(gaps.contains(&("rule_never_matched", "password_changed", None)));
    assert_eq!(gaps.iter().filter(|g| g.1 == "password_changed").count(), 1);
    insta::assert_snapshot!("coverage_gaps_json", serde_json::to_string_pretty(c).unwrap());
}

#[test]
fn coverage_changes_neither_results_nor_exit_codes() {
    for (suite, code) in [(PASSING, 0), (FAILING, 1), (GAPS, 0)] {
        let plain = herald(&["test", suite]);
        let covered = herald(&["test", "--coverage", suite]);
        assert_eq!(plain.status.code(), Some(code));
        assert_eq!(covered.status.code(), Some(code));
        // The results come first, unchanged; the coverage section follows.
        let (p, c) = (stdout(&plain), stdout(&covered));
        assert!(c.starts_with(&p) && c[p.len()..].starts_with("\ncoverage: "), "{c}");
        // Without the flag, the JSON has no `coverage` key.
        let v: Value = serde_json::from_slice(&herald(&["test", "--format", "json", suite]).stdout).unwrap();
        assert!(v.get("coverage").is_none());
        let w: Value =
            serde_json::from_slice(&herald(&["test", "--coverage", "--format", "json", suite]).stdout).unwrap();
        assert_eq!(v["tests"], w["tests"]);
    }
}
