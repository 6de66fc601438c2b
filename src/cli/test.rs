//! `herald test`: compile the files (rules and `test` items together), run
//! every test (see `engine::suite`) and report: human text or JSON on
//! stdout, and optionally JUnit XML to a file.

use super::{load_sources, render, Format, UsageError, EXIT_COMPILE, EXIT_OK, EXIT_USAGE};
use crate::compile;
use crate::engine::coverage::{ClauseCoverage, CoverageReport, RuleCoverage, RuleStatus};
use crate::engine::suite::{self, Failure, TestResult};
use crate::engine::{InterpMatcher, Matcher};
use crate::ir::Program;
use crate::span::{SourceMap, Span};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a span starts: file name, 1-based line and column.
fn place(sources: &SourceMap, span: Span) -> (String, usize, usize) {
    let f = sources.get(span.file);
    let (line, col) = f.line_col(span.start as usize);
    (f.name.clone(), line, col)
}

/// The first line of a span's text (an `expect` step as written).
fn snippet(sources: &SourceMap, span: Span) -> String {
    let text = &sources.text(span.file)[span.start as usize..span.end as usize];
    text.lines().next().unwrap_or("").trim().to_string()
}

/// The step a failure names: the `expect` as written, or what the suite
/// says instead (`event 2 (ID)` for a rule error).
fn step(sources: &SourceMap, f: &Failure) -> String {
    f.step.clone().unwrap_or_else(|| snippet(sources, f.span))
}

pub fn test(schema: Option<&str>, format: Format, junit: Option<&Path>, coverage: bool, files: &[PathBuf]) -> i32 {
    let (mut sources, choice, ids) = match load_sources(schema, files) {
        Ok(x) => x,
        Err(UsageError(m)) => {
            eprintln!("herald: {m}");
            return EXIT_USAGE;
        }
    };
    let compiled = compile::compile(&mut sources, choice, &ids);
    if !compiled.diagnostics.is_empty() {
        let style = render::Style::detect(std::io::stderr().is_terminal());
        eprint!("{}", render::human(&compiled.diagnostics, &sources, style));
        eprint!("{}", render::summary(compiled.errors(), compiled.warnings()));
    }
    let Some(program) = compiled.program else {
        return EXIT_COMPILE;
    };
    let program = Arc::new(program);
    // The interpreter is the reference semantics, and it costs nothing to
    // build: the same matcher serves every test.
    let matcher: Arc<dyn Matcher> = Arc::new(InterpMatcher::new(program.clone()));
    let (results, cov) = if coverage {
        let (r, c) = suite::run_tests_with_coverage(&program, &matcher, &compiled.tests);
        (r, Some(c))
    } else {
        (suite::run_tests(&program, &matcher, &compiled.tests), None)
    };
    let failed = results.iter().filter(|r| !r.passed()).count();
    let passed = results.len() - failed;
    let mut out = std::io::stdout().lock();
    // Coverage is a report, never a verdict: it changes neither the results
    // nor the exit code (a gap is for the author to judge, not for CI to
    // fail on by surprise).
    let text = match format {
        Format::Human => {
            let mut t = human(&sources, &results, passed, failed);
            if let Some(c) = &cov {
                t.push_str(&coverage_human(&program, &sources, c));
            }
            t
        }
        Format::Json => {
            let mut j = to_json(&sources, &results, passed, failed);
            if let Some(c) = &cov {
                j["coverage"] = coverage_json(&program, &sources, c);
            }
            format!("{j}\n")
        }
    };
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if let Some(path) = junit {
        if let Err(e) = std::fs::write(path, junit_xml(&sources, &results, failed)) {
            eprintln!("herald: cannot write `{}`: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    if failed > 0 {
        EXIT_COMPILE
    } else {
        EXIT_OK
    }
}

pub fn human(sources: &SourceMap, results: &[TestResult], passed: usize, failed: usize) -> String {
    let mut s = String::new();
    for r in results {
        let (file, line, _) = place(sources, r.span);
        let verdict = if r.passed() { "ok  " } else { "FAIL" };
        s.push_str(&format!("{verdict} {} ({file}:{line})\n", r.name));
        for f in &r.failures {
            let (file, line, col) = place(sources, f.span);
            s.push_str(&format!("     {file}:{line}:{col}: {}\n", step(sources, f)));
            s.push_str(&format!("       expected: {}\n", f.expected));
            s.push_str(&format!("       but:      {}\n", f.actual));
        }
    }
    s.push_str(&format!("{passed} passed, {failed} failed\n"));
    s
}

pub fn to_json(sources: &SourceMap, results: &[TestResult], passed: usize, failed: usize) -> serde_json::Value {
    let tests: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let (file, line, _) = place(sources, r.span);
            let failures: Vec<serde_json::Value> = r
                .failures
                .iter()
                .map(|f| {
                    let (file, line, column) = place(sources, f.span);
                    json!({"kind": f.kind.as_str(), "file": file, "line": line, "column": column,
                           "expect": step(sources, f), "expected": f.expected, "actual": f.actual})
                })
                .collect();
            let rule_errors: Vec<serde_json::Value> = r
                .rule_errors
                .iter()
                .map(|e| {
                    json!({"rule": e.rule, "event": e.event, "id": e.id, "at": at(sources, e.span),
                           "code": e.code, "message": e.message, "expected": e.expected})
                })
                .collect();
            json!({"name": r.name, "file": file, "line": line, "passed": r.passed(), "failures": failures,
                   "rule_errors": rule_errors})
        })
        .collect();
    json!({"tests": tests, "passed": passed, "failed": failed})
}

/// Text for an XML attribute or element: the five special characters
/// escaped, and characters XML 1.0 cannot hold at all (most controls)
/// replaced, since a test name or an event value may contain anything.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub fn junit_xml(sources: &SourceMap, results: &[TestResult], failed: usize) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!("<testsuites name=\"herald\" tests=\"{}\" failures=\"{failed}\">\n", results.len()));
    s.push_str(&format!("  <testsuite name=\"herald\" tests=\"{}\" failures=\"{failed}\">\n", results.len()));
    for r in results {
        let (file, line, _) = place(sources, r.span);
        s.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{line}\"",
            xml_escape(&r.name),
            xml_escape(&file),
            xml_escape(&file)
        ));
        if r.passed() {
            s.push_str("/>\n");
            continue;
        }
        s.push_str(">\n");
        for f in &r.failures {
            let (file, line, col) = place(sources, f.span);
            let message = format!("expected {}, but {}", f.expected, f.actual);
            let body =
                format!("{file}:{line}:{col}: {}\nexpected: {}\nbut:      {}", step(sources, f), f.expected, f.actual);
            s.push_str(&format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                xml_escape(&message),
                f.kind.as_str(),
                xml_escape(&body)
            ));
        }
        s.push_str("    </testcase>\n");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// A clause's text for a report: its first line, spaces collapsed, cut at
/// 60 characters.
fn clause_text(sources: &SourceMap, span: Span) -> String {
    let t = snippet(sources, span).split_whitespace().collect::<Vec<_>>().join(" ");
    if t.chars().count() > 60 {
        format!("{}...", t.chars().take(57).collect::<String>())
    } else {
        t
    }
}

fn at(sources: &SourceMap, span: Span) -> String {
    let (file, line, col) = place(sources, span);
    format!("{file}:{line}:{col}")
}

fn n_times(n: u64) -> String {
    if n == 1 {
        "1 time".into()
    } else {
        format!("{n} times")
    }
}

/// One coverage gap, as the human and JSON reports list it.
struct Gap {
    kind: &'static str,
    rule: String,
    span: Span,
    /// The clause's text (empty for a rule).
    text: String,
    detail: String,
}

/// The gaps, rule by rule in declaration order: a rule that never fired
/// (and why), then its clauses no test reached and its guards that went
/// only one way. The clauses of a rule no event matched are all unreached;
/// the rule's line says so once instead of listing each.
fn gaps(program: &Program, sources: &SourceMap, report: &CoverageReport) -> Vec<Gap> {
    let mut out = Vec::new();
    for r in &report.rules {
        let rule = program.rule(r.rule);
        let errors = if r.errors > 0 { format!("; failed {} (rule errors)", n_times(r.errors)) } else { String::new() };
        match r.status() {
            RuleStatus::Fired => {}
            RuleStatus::NeverMatched => out.push(Gap {
                kind: "rule_never_matched",
                rule: rule.name.clone(),
                span: rule.name_span,
                text: String::new(),
                detail: format!(
                    "never matched: {} ({}){errors}",
                    match (r.events_of_type, &rule.matcher.events) {
                        (0, crate::ir::MatchEvents::Types(ts)) => {
                            let names: Vec<String> =
                                ts.iter().map(|t| format!("`{}`", program.schema.event(*t).name)).collect();
                            format!("no test has an event of its type ({})", names.join(" or "))
                        }
                        (0, crate::ir::MatchEvents::Any) => "no test has an event".to_string(),
                        (n, _) => format!(
                            "its `match` at {} was false on all {n} test event{} of its type",
                            at(sources, rule.matcher.span),
                            if n == 1 { "" } else { "s" }
                        ),
                    },
                    match r.clauses.len() {
                        0 => "it has no other clause".to_string(),
                        1 => "so its 1 clause was not reached".to_string(),
                        n => format!("so none of its {n} clauses was reached"),
                    }
                ),
            }),
            RuleStatus::NeverFired => {
                let stops: Vec<String> = r
                    .clauses
                    .iter()
                    .filter(|c| c.stopped > 0)
                    .map(|c| format!("the {} at {} ({})", c.kind.keyword(), at(sources, c.span), n_times(c.stopped)))
                    .collect();
                let why = if stops.is_empty() { String::new() } else { format!(": stopped by {}", stops.join(", ")) };
                out.push(Gap {
                    kind: "rule_never_fired",
                    rule: rule.name.clone(),
                    span: rule.name_span,
                    text: String::new(),
                    detail: format!("matched {}, never fired{why}{errors}", n_times(r.matched)),
                });
            }
        }
        if r.status() == RuleStatus::NeverMatched {
            continue;
        }
        for c in &r.clauses {
            let gap = |kind, detail| Gap {
                kind,
                rule: rule.name.clone(),
                span: c.span,
                text: clause_text(sources, c.span),
                detail,
            };
            if c.reached() == 0 {
                let what = if c.kind.keyword() == "query" { "never evaluated" } else { "never reached" };
                out.push(gap("clause_not_reached", what.to_string()));
            } else if c.kind.is_guard() && c.stopped == 0 {
                out.push(gap("guard_one_sided", format!("passed {}, never stopped the rule", n_times(c.passed))));
            } else if c.kind.is_guard() && c.passed == 0 {
                out.push(gap("guard_one_sided", format!("stopped the rule {}, never passed", n_times(c.stopped))));
            }
        }
    }
    out
}

pub fn coverage_human(program: &Program, sources: &SourceMap, report: &CoverageReport) -> String {
    let mut s = format!(
        "\ncoverage: {} of {} rules fired, {} of {} clauses reached, {} of {} guards both passed and stopped a rule\n",
        report.rules_fired(),
        report.rules.len(),
        report.clauses_reached(),
        report.clause_count(),
        report.guards_both(),
        report.guard_count()
    );
    let gaps = gaps(program, sources, report);
    if gaps.is_empty() {
        s.push_str("  nothing left uncovered\n");
    }
    for g in gaps {
        if g.text.is_empty() {
            s.push_str(&format!("  rule {} ({}): {}\n", g.rule, at(sources, g.span), g.detail));
        } else {
            s.push_str(&format!("  {}: `{}` (rule {}): {}\n", at(sources, g.span), g.text, g.rule, g.detail));
        }
    }
    s
}

fn clause_json(sources: &SourceMap, c: &ClauseCoverage) -> serde_json::Value {
    json!({"clause": c.kind.keyword(), "at": at(sources, c.span), "text": clause_text(sources, c.span),
           "reached": c.reached(), "passed": c.passed, "stopped": c.stopped})
}

fn rule_json(program: &Program, sources: &SourceMap, r: &RuleCoverage) -> serde_json::Value {
    let rule = program.rule(r.rule);
    json!({"rule": rule.name, "at": at(sources, rule.name_span), "status": r.status().as_str(),
           "events_of_type": r.events_of_type, "matched": r.matched, "fired": r.fired, "errors": r.errors,
           "clauses": r.clauses.iter().map(|c| clause_json(sources, c)).collect::<Vec<_>>()})
}

pub fn coverage_json(program: &Program, sources: &SourceMap, report: &CoverageReport) -> serde_json::Value {
    let gaps: Vec<serde_json::Value> = gaps(program, sources, report)
        .into_iter()
        .map(|g| {
            json!({"kind": g.kind, "rule": g.rule, "at": at(sources, g.span),
                   "text": if g.text.is_empty() { serde_json::Value::Null } else { json!(g.text) },
                   "detail": g.detail})
        })
        .collect();
    json!({
        "summary": {"rules": report.rules.len(), "rules_fired": report.rules_fired(),
                    "clauses": report.clause_count(), "clauses_reached": report.clauses_reached(),
                    "guards": report.guard_count(), "guards_both_ways": report.guards_both(),
                    "complete": report.complete()},
        "rules": report.rules.iter().map(|r| rule_json(program, sources, r)).collect::<Vec<_>>(),
        "gaps": gaps,
    })
}
