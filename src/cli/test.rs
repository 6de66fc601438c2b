//! `herald test`: compile the files (rules and `test` items together), run
//! every test (see `engine::suite`) and report: human text or JSON on
//! stdout, and optionally JUnit XML to a file.

use super::{load_sources, render, Format, UsageError, EXIT_COMPILE, EXIT_OK, EXIT_USAGE};
use crate::compile;
use crate::engine::suite::{self, TestResult};
use crate::engine::{InterpMatcher, Matcher};
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

pub fn test(schema: Option<&str>, format: Format, junit: Option<&Path>, files: &[PathBuf]) -> i32 {
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
    let results = suite::run_tests(&program, &matcher, &compiled.tests);
    let failed = results.iter().filter(|r| !r.passed()).count();
    let passed = results.len() - failed;
    let mut out = std::io::stdout().lock();
    let text = match format {
        Format::Human => human(&sources, &results, passed, failed),
        Format::Json => format!("{}\n", to_json(&sources, &results, passed, failed)),
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
            s.push_str(&format!("     {file}:{line}:{col}: {}\n", snippet(sources, f.span)));
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
                    json!({"file": file, "line": line, "column": column, "expect": snippet(sources, f.span),
                           "expected": f.expected, "actual": f.actual})
                })
                .collect();
            json!({"name": r.name, "file": file, "line": line, "passed": r.passed(), "failures": failures})
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
            let body = format!(
                "{file}:{line}:{col}: {}\nexpected: {}\nbut:      {}",
                snippet(sources, f.span),
                f.expected,
                f.actual
            );
            s.push_str(&format!(
                "      <failure message=\"{}\" type=\"expectation\">{}</failure>\n",
                xml_escape(&message),
                xml_escape(&body)
            ));
        }
        s.push_str("    </testcase>\n");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
