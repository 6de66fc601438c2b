//! The registry of codes, the docs pages and the fixtures agree: every code
//! has a page and a fixture, every page and fixture names a real code, the
//! pages are embedded for `herald explain`, and each compile-time page's
//! examples do what the page says.

mod common;

use common::{fixtures, header, rel, root};
use herald::compile::{self, SchemaChoice};
use herald::diag::{Code, Severity};
use herald::span::SourceMap;
use std::collections::BTreeSet;
use std::process::Command;

fn page_path(code: Code) -> std::path::PathBuf {
    root().join("docs/errors").join(format!("{}.md", code.as_str()))
}

fn fixture_dir(code: Code) -> &'static str {
    if code.as_str().starts_with('R') {
        "runtime"
    } else {
        "errors"
    }
}

#[test]
fn every_code_has_a_page_in_house_style() {
    let mut problems = Vec::new();
    for &code in Code::ALL {
        let Ok(page) = std::fs::read_to_string(page_path(code)) else {
            problems.push(format!("{code}: no docs/errors/{code}.md"));
            continue;
        };
        let title = format!("# {}: {}\n", code.as_str(), code.title());
        if !page.starts_with(&title) {
            problems.push(format!("{code}: the page must start with {title:?}"));
        }
        for section in ["\n## What it means\n", "\n## Example\n", "\n## How to fix it\n"] {
            if !page.contains(section) {
                problems.push(format!("{code}: no {:?} section", section.trim()));
            }
        }
        if page.matches("```herald\n").count() < 2 {
            problems.push(format!("{code}: needs an example and a fixed example"));
        }
        if !std::fs::read_to_string(root().join("docs/errors/README.md"))
            .unwrap()
            .contains(&format!("[{code}]({code}.md)"))
        {
            problems.push(format!("{code}: missing from the index in docs/errors/README.md"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_page_names_a_real_code() {
    for e in std::fs::read_dir(root().join("docs/errors")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        let stem = name.strip_suffix(".md").unwrap_or_else(|| panic!("unexpected file docs/errors/{name}"));
        assert!(Code::parse(stem).is_some_and(|c| c.as_str() == stem), "docs/errors/{name} names no code");
    }
}

#[test]
fn every_code_has_a_fixture_and_every_fixture_a_real_code() {
    let mut covered = BTreeSet::new();
    for dir in ["errors", "runtime"] {
        for path in fixtures(dir) {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let code = Code::parse(&stem[..stem.len().min(5)])
                .unwrap_or_else(|| panic!("{}: the name does not start with a code", rel(&path)));
            let text = std::fs::read_to_string(&path).unwrap();
            if dir == "errors" {
                let h = header(&path, &text);
                assert_eq!(h.code, Some(code), "{}: header and file name disagree", rel(&path));
                assert!(!code.as_str().starts_with('R'), "{}: run-time codes go in runtime/", rel(&path));
            } else {
                let want = format!("# rule-error: {code} in ");
                assert!(text.starts_with(&want), "{}: must start with {want:?}", rel(&path));
            }
            covered.insert(code);
        }
    }
    let missing: Vec<String> = Code::ALL
        .iter()
        .filter(|c| !covered.contains(*c))
        .map(|c| format!("{c} (in tests/fixtures/{})", fixture_dir(*c)))
        .collect();
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
}

#[test]
fn explain_prints_every_page() {
    for &code in Code::ALL {
        let page = std::fs::read_to_string(page_path(code)).unwrap();
        assert_eq!(herald::cli::explain_page(code), Some(page.as_str()), "{code}: embedded page is stale");
    }
    // The binary prints each of them, byte for byte.
    for &code in Code::ALL {
        let out = Command::new(env!("CARGO_BIN_EXE_herald")).args(["explain", code.as_str()]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{code}");
        let page = std::fs::read_to_string(page_path(code)).unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), page, "{code}");
    }
}

/// The ```herald blocks of a page.
fn examples(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find("```herald\n") {
        let body = &rest[i + 10..];
        let end = body.find("\n```").expect("unclosed code block");
        out.push(body[..end].to_string());
        rest = &body[end + 4..];
    }
    out
}

/// Pages whose examples are whole schemas (compiled as `--schema FILE`).
const SCHEMA_EXAMPLES: &[&str] = &["E0120"];

fn check_example(code: Code, text: &str) -> Vec<herald::diag::Diagnostic> {
    let mut sources = SourceMap::new();
    let f = sources.add(format!("{code}.md"), text);
    let compiled = if SCHEMA_EXAMPLES.contains(&code.as_str()) {
        compile::compile(&mut sources, SchemaChoice::File(f), &[])
    } else {
        compile::compile(&mut sources, SchemaChoice::Auto, &[f])
    };
    compiled.diagnostics
}

#[test]
fn page_examples_trigger_and_fixes_check_clean() {
    let mut problems = Vec::new();
    for &code in Code::ALL {
        let page = std::fs::read_to_string(page_path(code)).unwrap();
        let ex = examples(&page);
        let (Some(first), Some(fixed)) = (ex.first(), ex.last()) else { continue };
        let fixed_diags = check_example(code, fixed);
        if let Some(d) = fixed_diags.first() {
            problems.push(format!("{code}: the fixed example reports {} {}", d.code, d.message));
        }
        if code.as_str().starts_with('R') {
            // Run-time codes: both examples compile; tests/runtime_gallery.rs
            // runs the fixture the example comes from.
            if let Some(d) = check_example(code, first).iter().find(|d| d.severity == Severity::Error) {
                problems.push(format!("{code}: the example does not compile: {} {}", d.code, d.message));
            }
            continue;
        }
        if !check_example(code, first).iter().any(|d| d.code == code) {
            problems.push(format!("{code}: the example does not report {code}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
