//! Shared helpers for the diagnostics gallery tests: finding fixtures,
//! reading their header comments and compiling them.
#![allow(dead_code)]

use herald::compile::{self, Compiled, SchemaChoice};
use herald::diag::Code;
use herald::span::SourceMap;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.herald` files of `tests/fixtures/<dir>`, sorted by name.
pub fn fixtures(dir: &str) -> Vec<PathBuf> {
    let d = root().join("tests/fixtures").join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", d.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "herald"))
        .collect();
    v.sort();
    v
}

/// Every good policy: `tests/fixtures/good` and the authentik examples.
pub fn good_fixtures() -> Vec<PathBuf> {
    let mut v = fixtures("good");
    let mut ex: Vec<PathBuf> = std::fs::read_dir(root().join("examples/authentik"))
        .expect("examples/authentik")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "herald"))
        // The example tests name the rules of the other files: they compile
        // only with them (`herald test examples/authentik/`, tests/cli_test.rs).
        .filter(|p| !p.ends_with("tests.herald"))
        .collect();
    ex.sort();
    v.extend(ex);
    v
}

/// What a fixture's header says: `# expect: CODE at LINE:COL`,
/// `# schema: PATH|self`.
#[derive(Debug, Clone)]
pub struct Header {
    pub code: Option<Code>,
    pub code_text: Option<String>,
    pub line: usize,
    pub column: usize,
    /// `None`: the default schema choice; `Some(None)`: the file is its own
    /// schema (`self`); `Some(Some(path))`: that schema file.
    pub schema: Option<Option<PathBuf>>,
}

pub fn header(path: &Path, text: &str) -> Header {
    let mut h = Header { code: None, code_text: None, line: 0, column: 0, schema: None };
    for l in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = l.strip_prefix("# expect: ") {
            let (code, pos) = rest.split_once(" at ").unwrap_or_else(|| panic!("{}: bad header", path.display()));
            let (line, col) = pos.trim().split_once(':').unwrap_or_else(|| panic!("{}: bad position", path.display()));
            h.code_text = Some(code.trim().to_string());
            h.code = Code::parse(code);
            h.line = line.parse().unwrap_or_else(|_| panic!("{}: bad line", path.display()));
            h.column = col.parse().unwrap_or_else(|_| panic!("{}: bad column", path.display()));
        } else if let Some(rest) = l.strip_prefix("# schema: ") {
            let rest = rest.trim();
            h.schema = Some(if rest == "self" { None } else { Some(path.parent().unwrap().join(rest)) });
        }
    }
    h
}

/// A path relative to the repository root, with `/` separators, for
/// stable snapshots.
pub fn rel(path: &Path) -> String {
    let p = path.strip_prefix(root()).unwrap_or(path);
    // Normalise `good/../schemas` into `schemas`.
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    parts.join("/")
}

/// Compile one fixture as `herald check` would, honouring its header.
pub fn compile_fixture(path: &Path) -> (Compiled, SourceMap, Header) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let h = header(path, &text);
    let mut sources = SourceMap::new();
    let compiled = match &h.schema {
        None => {
            let f = sources.add(rel(path), text);
            compile::compile(&mut sources, SchemaChoice::Auto, &[f])
        }
        Some(None) => {
            let f = sources.add(rel(path), text);
            compile::compile(&mut sources, SchemaChoice::File(f), &[])
        }
        Some(Some(schema)) => {
            let st = std::fs::read_to_string(schema).unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
            let s = sources.add(rel(schema), st);
            let f = sources.add(rel(path), text);
            compile::compile(&mut sources, SchemaChoice::File(s), &[f])
        }
    };
    (compiled, sources, h)
}
