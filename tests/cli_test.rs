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
        assert_eq!(keys, ["failures", "file", "line", "name", "passed", "rule_errors"]);
        assert_eq!(t["passed"].as_bool().unwrap(), t["failures"].as_array().unwrap().is_empty());
        for f in t["failures"].as_array().unwrap() {
            let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            keys.sort();
            assert_eq!(keys, ["actual", "column", "expect", "expected", "file", "kind", "line"]);
        }
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
    for (suite, code) in [(PASSING, 0), (FAILING, 1), (GAPS, 0), (RULE_ERRORS, 0), (UNMET, 1)] {
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

const RULE_ERRORS: &str = "tests/fixtures/suites/rule_errors.herald";
const UNMET: &str = "tests/fixtures/suites/rule_errors_unmet.herald";
/// The guard of `RULE_ERRORS` that keeps service accounts out.
const GUARD: &str = "  guard not empty(user.email)  # service accounts have no address\n";

/// `herald test` in `dir`, on a file named relative to it (so the paths in
/// the output do not depend on where the temporary directory is).
fn herald_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("run herald")
}

#[test]
fn expected_rule_errors_pass() {
    let out = herald(&["test", RULE_ERRORS]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    insta::assert_snapshot!("rule_errors_passing_human", stdout(&out));
    // The JSON still lists the errors the test expected, marked so.
    let v: Value = serde_json::from_slice(&herald(&["test", "--format", "json", RULE_ERRORS]).stdout).unwrap();
    let errors: Vec<(u64, &str, bool)> = v["tests"][2]["rule_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].as_u64().unwrap(), e["code"].as_str().unwrap(), e["expected"].as_bool().unwrap()))
        .collect();
    assert_eq!(errors, [(1, "R0001", true), (2, "R0001", true)]);
    assert_eq!(v["tests"][1]["rule_errors"], serde_json::json!([]));
}

#[test]
fn deleting_a_guard_fails_the_test_through_its_rule_error() {
    // The same suite without the guard: the rule no longer stops on the
    // service account, it fails on its empty address instead. The test's
    // own expectations (`does not fire`, `no send_email`) still hold, so
    // only the rule error can tell.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(RULE_ERRORS).unwrap();
    assert!(text.contains(GUARD), "the guard the test deletes is in {RULE_ERRORS}");
    std::fs::write(dir.path().join("rule_errors.herald"), text.replace(GUARD, "")).unwrap();

    let out = herald_in(dir.path(), &["test", "rule_errors.herald"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    // The failure names the event (position and id), the rule, the code and
    // the message.
    assert!(text.contains("FAIL a service account gets no email"), "{text}");
    assert!(text.contains("event 1 (0e000000-0000-4000-8000-000000000002)"), "{text}");
    assert!(text.contains("`welcome` failed with R0003: empty email address"), "{text}");
    insta::assert_snapshot!("rule_errors_guard_deleted_human", text);

    let out = herald_in(dir.path(), &["test", "--format", "json", "rule_errors.herald"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["passed"].as_u64(), v["failed"].as_u64()), (Some(2), Some(1)));
    let t = &v["tests"][1];
    assert_eq!(t["failures"].as_array().unwrap().len(), 1);
    assert_eq!(t["failures"][0]["kind"], "rule_error");
    assert_eq!(t["rule_errors"][0]["expected"], false);
    insta::assert_snapshot!("rule_errors_guard_deleted_json", serde_json::to_string_pretty(&v).unwrap());

    // JUnit reports it as a failure of its own type.
    let junit = dir.path().join("junit.xml");
    let out = herald_in(dir.path(), &["test", "--junit", junit.to_str().unwrap(), "rule_errors.herald"]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert!(xml.contains("type=\"rule_error\""), "{xml}");
}

#[test]
fn unmet_and_unexpected_rule_errors_fail() {
    let out = herald(&["test", UNMET]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("rule_errors_unmet_human", stdout(&out));
    let v: Value = serde_json::from_slice(&herald(&["test", "--format", "json", UNMET]).stdout).unwrap();
    assert_eq!((v["passed"].as_u64(), v["failed"].as_u64()), (Some(0), Some(4)));
    let kinds = |i: usize| -> Vec<String> {
        v["tests"][i]["failures"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_string()).collect()
    };
    // The error that did not happen: the expectation alone.
    assert_eq!(kinds(0), ["expectation"]);
    assert_eq!(v["tests"][0]["rule_errors"], serde_json::json!([]));
    // Another code: the error is unexpected and the expectation unmet.
    assert_eq!(kinds(1), ["rule_error", "expectation"]);
    // Unexpected errors come first, then the expectations they broke.
    assert_eq!(kinds(2), ["rule_error", "expectation"]);
    let e = &v["tests"][2]["rule_errors"][0];
    assert_eq!(
        (e["rule"].as_str(), e["event"].as_u64(), e["id"].as_str(), e["code"].as_str(), e["expected"].as_bool()),
        (Some("welcome"), Some(2), Some("0f000000-0000-4000-8000-000000000004"), Some("R0003"), Some(false))
    );
    assert_eq!(e["at"], format!("{UNMET}:27:3"));
    // Expected codes are compared without case and listed once each.
    assert_eq!(kinds(3), ["rule_error", "expectation", "expectation", "expectation"]);
    assert_eq!(v["tests"][3]["failures"][0]["expected"], "only rule errors R0003, R0005 in `welcome`");
    insta::assert_snapshot!("rule_errors_unmet_json", serde_json::to_string_pretty(&v).unwrap());
}

#[test]
fn coverage_counts_the_rule_errors_the_tests_report() {
    for suite in [RULE_ERRORS, UNMET] {
        let out = herald(&["test", "--coverage", "--format", "json", suite]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let in_tests: usize =
            v["tests"].as_array().unwrap().iter().map(|t| t["rule_errors"].as_array().unwrap().len()).sum();
        let in_coverage: u64 =
            v["coverage"]["rules"].as_array().unwrap().iter().map(|r| r["errors"].as_u64().unwrap()).sum();
        assert!(in_tests > 0);
        assert_eq!(in_tests as u64, in_coverage, "{suite}");
    }
}

#[test]
fn an_expected_rule_error_of_an_unknown_rule_is_e0701() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.herald"),
        "rule welcome { match login  action log(\"hello\") }\ntest \"t\" {\n  expect rule_error(welcom, \"R0001\")\n}\n",
    )
    .unwrap();
    let out = herald_in(dir.path(), &["test", "t.herald"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E0701") && err.contains("welcome"), "{err}");
    assert!(out.stdout.is_empty());
}
