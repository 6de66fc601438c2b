//! `herald fmt`: snapshots of the formatted examples and some fixtures, and
//! properties over every file that parses and over re-spaced variants of them:
//! formatting is idempotent, keeps every comment, and the formatted program
//! checks to the same IR (spans aside) with the same diagnostic codes.

mod common;

use common::{header, rel, root};
use herald::compile::{self, SchemaChoice};
use herald::span::SourceMap;
use herald::syntax::fmt::{comments, format, FormatError};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn herald_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            herald_files(&e, out);
        } else if e.extension().is_some_and(|x| x == "herald") {
            out.push(e);
        }
    }
}

/// Every `.herald` file of the repository: fixtures, examples, the built-in schema.
fn corpus() -> &'static [(PathBuf, String)] {
    static C: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    C.get_or_init(|| {
        let mut files = Vec::new();
        herald_files(&root().join("tests/fixtures"), &mut files);
        herald_files(&root().join("examples"), &mut files);
        files.push(root().join("src/schema/authentik.herald"));
        files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
    })
}

/// The checked program with spans erased, and the sorted diagnostic codes.
/// Spans print as `file:start..end`; nothing else in the IR's debug form has
/// that shape.
fn checked(path: &Path, text: &str) -> (String, Vec<String>) {
    // The header (expected code, schema) of the file on disk: a variant may
    // have moved its first comment lines.
    let h = header(path, &std::fs::read_to_string(path).unwrap());
    let mut sources = SourceMap::new();
    let example_schema = path.parent().map(|d| d.join("schema.herald")).filter(|s| s.is_file() && s != path);
    let compiled = match (h.schema.clone(), example_schema) {
        (Some(None), _) => {
            let f = sources.add(rel(path), text.to_string());
            compile::compile(&mut sources, SchemaChoice::File(f), &[])
        }
        (Some(Some(schema)), _) | (None, Some(schema)) => {
            let s = sources.add(rel(&schema), std::fs::read_to_string(&schema).unwrap());
            let f = sources.add(rel(path), text.to_string());
            compile::compile(&mut sources, SchemaChoice::File(s), &[f])
        }
        (None, None) => {
            let f = sources.add(rel(path), text.to_string());
            compile::compile(&mut sources, SchemaChoice::Auto, &[f])
        }
    };
    let mut codes: Vec<String> = compiled.diagnostics.iter().map(|d| d.code.as_str().to_string()).collect();
    codes.sort();
    let ir = match &compiled.program {
        Some(p) => {
            // The schema holds hash maps: compare its debug form as a sorted
            // multiset of fragments, so their iteration order does not count.
            let schema = format!("{:?}", p.schema);
            let mut parts: Vec<&str> = schema.split(['{', '}', '[', ']', '(', ')', ',', ' ']).collect();
            parts.sort_unstable();
            format!("{:?}\n{:?}\n{}", p.rules, p.paths, parts.join(", "))
        }
        None => String::new(),
    };
    let spans = regex::Regex::new(r"\d+:\d+\.\.\d+").unwrap();
    (spans.replace_all(&ir, "_").into_owned(), codes)
}

/// The properties of one file that parses; `Err` names the broken one.
fn properties(path: &Path, text: &str, formatted: &str) -> Result<(), String> {
    let again = format(formatted).map_err(|e| format!("formatted text fails: {e:?}"))?;
    if again != formatted {
        return Err(format!("not idempotent:\n--- once\n{formatted}\n--- twice\n{again}"));
    }
    if comments(text) != comments(formatted) {
        return Err(format!("comments differ: {:?} vs {:?}", comments(text), comments(formatted)));
    }
    let (ir0, codes0) = checked(path, text);
    let (ir1, codes1) = checked(path, formatted);
    if codes0 != codes1 {
        return Err(format!("diagnostic codes differ: {codes0:?} vs {codes1:?}"));
    }
    if ir0 != ir1 {
        return Err("the formatted program checks to a different IR".into());
    }
    Ok(())
}

#[test]
fn every_parsing_file_formats_idempotently_to_the_same_program() {
    let mut formatted_count = 0;
    let mut problems = Vec::new();
    for (path, text) in corpus() {
        match format(text) {
            Ok(out) => {
                formatted_count += 1;
                if let Err(p) = properties(path, text, &out) {
                    problems.push(format!("{}: {p}", rel(path)));
                }
            }
            Err(FormatError::Syntax(d)) => assert!(!d.is_empty()),
            Err(FormatError::Internal(m)) => problems.push(format!("{}: internal: {m}", rel(path))),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(formatted_count > 100, "only {formatted_count} files parsed");
}

#[test]
fn a_file_that_does_not_parse_is_reported_not_formatted() {
    let Err(FormatError::Syntax(d)) = format("rule r {\n  match login where 1 <\n}\n") else { panic!("formatted") };
    assert_eq!(d[0].code.as_str(), "E0009");
}

#[test]
fn snapshots_of_examples_and_fixtures() {
    let mut files = Vec::new();
    herald_files(&root().join("examples"), &mut files);
    for f in [
        "fmt/messy.herald",
        "fmt/corners.herald",
        "syntax/schema.herald",
        "syntax/scenarios.herald",
        "good/tickets_priority.herald",
    ] {
        files.push(root().join("tests/fixtures").join(f));
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let out = format(&text).unwrap_or_else(|e| panic!("{}: {e:?}", rel(&path)));
        let name = rel(&path).replace(['/', '.'], "_");
        insta::assert_snapshot!(name, out);
    }
}

#[test]
fn check_mode_lists_files_that_would_change_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let messy = dir.path().join("messy.herald");
    let tidy = dir.path().join("sub/tidy.herald");
    let broken = dir.path().join("broken.herald");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let messy_text = std::fs::read_to_string(root().join("tests/fixtures/fmt/messy.herald")).unwrap();
    std::fs::write(&messy, &messy_text).unwrap();
    std::fs::write(&tidy, "rule r {\n  match login\n}\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_herald");
    let out = std::process::Command::new(bin).args(["fmt", "--check"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\n", messy.display()));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), messy_text, "--check must not write");

    let out = std::process::Command::new(bin).arg("fmt").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), format(&messy_text).unwrap());
    let out = std::process::Command::new(bin).args(["fmt", "--check"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());

    std::fs::write(&broken, "rule r {\n  match login where\n}\n").unwrap();
    let out = std::process::Command::new(bin).arg("fmt").arg(&broken).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not parse"));
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "rule r {\n  match login where\n}\n");
}

/// The stretches of whitespace and comments of `text` outside strings (and
/// interpolations), as byte ranges.
fn gaps(text: &str) -> Vec<(usize, usize)> {
    #[derive(PartialEq)]
    enum Mode {
        Str,
        Interp,
    }
    let b = text.as_bytes();
    let mut stack: Vec<Mode> = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match stack.last() {
            Some(Mode::Str) => match b[i] {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'{' => stack.push(Mode::Interp),
                _ => {}
            },
            Some(Mode::Interp) => match b[i] {
                b'"' => stack.push(Mode::Str),
                b'}' => {
                    stack.pop();
                }
                _ => {}
            },
            None => match b[i] {
                b'"' => stack.push(Mode::Str),
                b' ' | b'\t' | b'\n' | b'\r' | b'#' => {
                    let start = i;
                    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'#') {
                        if b[i] == b'#' {
                            while i < b.len() && b[i] != b'\n' {
                                i += 1;
                            }
                        } else {
                            i += 1;
                        }
                    }
                    out.push((start, i));
                    continue;
                }
                _ => {}
            },
        }
        i += 1;
    }
    out
}

/// The files of the corpus that format.
fn formattable() -> &'static [(PathBuf, String, String)] {
    static F: OnceLock<Vec<(PathBuf, String, String)>> = OnceLock::new();
    F.get_or_init(|| corpus().iter().filter_map(|(p, t)| format(t).ok().map(|f| (p.clone(), t.clone(), f))).collect())
}

/// Rewrite every gap chosen by `pick` (given its text and a random number).
fn respace(text: &str, rolls: &[u8], pick: impl Fn(&str, &str, u8) -> Option<String>) -> String {
    let mut out = String::new();
    let mut at = 0;
    for (k, (s, e)) in gaps(text).into_iter().enumerate() {
        out.push_str(&text[at..s]);
        let gap = &text[s..e];
        // The rest of the line after the gap: a comment there trails the
        // token before the gap only while no line break is put in the gap.
        let rest = text[e..].split('\n').next().unwrap_or("");
        match pick(gap, rest, rolls[k % rolls.len()]) {
            Some(new) => out.push_str(&new),
            None => out.push_str(gap),
        }
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Line breaks and spaces (no blank line, no comment) are layout: any
    /// re-spacing of a file formats to the same text.
    #[test]
    fn layout_does_not_matter(file in any::<prop::sample::Index>(), rolls in prop::collection::vec(any::<u8>(), 1..64)) {
        let files = formattable();
        let (path, text, formatted) = &files[file.index(files.len())];
        let variant = respace(text, &rolls, |gap, rest, r| {
            // A gap whose line continues into a comment decides whether that
            // comment trails a token or stands on its own line: not layout.
            if gap.contains('#') || rest.contains('#') || gap.matches('\n').count() >= 2 {
                return None;
            }
            Some(["  ", "\n", "\t", "\n      "][r as usize % 4].to_string())
        });
        let out = format(&variant).map_err(|e| TestCaseError::fail(format!("{}: {e:?}\n{variant}", rel(path))))?;
        prop_assert_eq!(&out, formatted, "{}: variant\n{}", rel(path), variant);
    }

    /// Comments and blank lines anywhere between tokens: formatting keeps
    /// every comment, is idempotent and checks to the same program.
    #[test]
    fn comments_anywhere_survive(file in any::<prop::sample::Index>(), rolls in prop::collection::vec(any::<u8>(), 1..64)) {
        let files = formattable();
        let (path, text, _) = &files[file.index(files.len())];
        let variant = respace(text, &rolls, |gap, _, r| match r % 6 {
            0 => Some(format!("{gap} # c{r}\n")),
            1 => Some(format!("\n# own {r}\n\n{gap}")),
            2 => Some(format!("{gap}\n\n")),
            _ => None,
        });
        let out = format(&variant).map_err(|e| TestCaseError::fail(format!("{}: {e:?}\n{variant}", rel(path))))?;
        properties(path, &variant, &out).map_err(|p| TestCaseError::fail(format!("{}: {p}\n--- input\n{variant}", rel(path))))?;
    }
}
