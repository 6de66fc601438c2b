//! The diagnostics gallery: every fixture under `tests/fixtures/errors`
//! compiled as `herald check` would, with an insta snapshot of the source,
//! the plain miette rendering and the JSON form side by side.
//!
//! The header of each fixture (`# expect: CODE at LINE:COL`) is checked on
//! its own, before the snapshot, so a wrong snapshot cannot be blessed
//! silently: the expected code must be reported at that exact position, no
//! other *error* may be reported (no second-hand errors), and every
//! diagnostic must carry a help line.

mod common;

use common::{compile_fixture, fixtures, good_fixtures, rel};
use herald::cli::render::{self, Style};
use herald::diag::Severity;

/// Codes allowed to have no `help`. Empty: every diagnostic Herald emits
/// today says how to fix it. Add a code here only with a comment saying why
/// no single actionable sentence exists for it.
const NO_HELP_ALLOWED: &[&str] = &[];

fn snapshot_text(path: &std::path::Path) -> (String, Vec<String>) {
    let (compiled, sources, h) = compile_fixture(path);
    let mut problems = Vec::new();
    let name = rel(path);
    let json = render::json(&compiled.diagnostics, &sources);
    let diags = json["diagnostics"].as_array().cloned().unwrap_or_default();
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();

    match (&h.code, &h.code_text) {
        (Some(code), _) => {
            if !stem.starts_with(code.as_str()) {
                problems.push(format!("{name}: file name does not start with its code {code}"));
            }
            let hit = diags.iter().any(|d| {
                d["code"] == code.as_str()
                    && d["file"] == name.as_str()
                    && d["line"] == h.line
                    && d["column"] == h.column
            });
            if !hit {
                let got: Vec<String> =
                    diags.iter().map(|d| format!("{} at {}:{}", d["code"], d["line"], d["column"])).collect();
                problems.push(format!("{name}: expected {code} at {}:{}, got {got:?}", h.line, h.column));
            }
            for d in &compiled.diagnostics {
                if d.is_error() && d.code != *code {
                    problems.push(format!("{name}: second-hand error {} ({}) besides {code}", d.code, d.message));
                }
            }
            if code.severity() == Severity::Warning && compiled.errors() > 0 {
                problems.push(format!("{name}: a warning fixture must compile without errors"));
            }
        }
        (None, Some(t)) => problems.push(format!("{name}: `{t}` is not a registered code")),
        (None, None) => problems.push(format!("{name}: no `# expect:` header")),
    }
    for d in &compiled.diagnostics {
        let empty = d.help.as_deref().is_none_or(|h| h.trim().is_empty());
        if empty && !NO_HELP_ALLOWED.contains(&d.code.as_str()) {
            problems.push(format!("{name}: {} `{}` has no help", d.code, d.message));
        }
        if d.message.trim().is_empty() {
            problems.push(format!("{name}: {} has an empty message", d.code));
        }
    }

    let source = std::fs::read_to_string(path).unwrap();
    let human = render::human(&compiled.diagnostics, &sources, Style::Plain);
    let text = format!(
        "{name}\n\n--- source ---\n{source}\n--- rendered ---\n{human}\n--- json ---\n{}\n",
        serde_json::to_string_pretty(&json).unwrap()
    );
    (text, problems)
}

#[test]
fn error_gallery() {
    let files = fixtures("errors");
    assert!(files.len() >= 100, "only {} error fixtures", files.len());
    let mut problems = Vec::new();
    let mut snaps = Vec::new();
    for path in &files {
        let (text, p) = snapshot_text(path);
        problems.extend(p);
        snaps.push((path.file_stem().unwrap().to_string_lossy().into_owned(), text));
    }
    // No snapshot outlives its fixture.
    let dir = common::root().join("tests/snapshots/gallery");
    for e in std::fs::read_dir(&dir).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".snap") {
            if !snaps.iter().any(|(n, _)| n == stem) {
                problems.push(format!("tests/snapshots/gallery/{name} has no fixture: delete it"));
            }
        }
    }
    // Header expectations first: they hold whatever the snapshots say.
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/gallery");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, text) in snaps {
            insta::assert_snapshot!(name, text);
        }
    });
}

#[test]
fn good_policies_check_clean() {
    let files = good_fixtures();
    assert!(files.len() >= 23, "only {} good policies", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let (compiled, sources, h) = compile_fixture(path);
        if h.code.is_some() {
            problems.push(format!("{}: a good policy has an `# expect:` header", rel(path)));
        }
        if !compiled.diagnostics.is_empty() {
            problems.push(format!("{}:\n{}", rel(path), render::human(&compiled.diagnostics, &sources, Style::Plain)));
        }
        if compiled.program.is_none() {
            problems.push(format!("{}: no program", rel(path)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// At least two good policies use a custom (non-authentik) schema.
#[test]
fn good_policies_cover_custom_schemas() {
    let custom =
        common::fixtures("good").iter().filter(|p| matches!(compile_fixture(p).2.schema, Some(Some(_)))).count();
    assert!(custom >= 2, "{custom} good policies use a custom schema");
}

/// Human and JSON output name the same line and column (in characters) for
/// every diagnostic of every fixture. `E0204_after_multibyte` has `é`, `€`
/// and a tab before its span: miette alone counts bytes there.
#[test]
fn human_and_json_agree_on_positions() {
    let files = fixtures("errors");
    let mut problems = Vec::new();
    let mut multibyte_seen = false;
    for path in &files {
        let (compiled, sources, _) = compile_fixture(path);
        let json = render::json(&compiled.diagnostics, &sources);
        for (d, j) in compiled.diagnostics.iter().zip(json["diagnostics"].as_array().unwrap()) {
            let human = render::human(std::slice::from_ref(d), &sources, Style::Plain);
            let want = format!("{}:{}:{}]", j["file"].as_str().unwrap(), j["line"], j["column"]);
            if !human.contains(&want) {
                problems.push(format!("{}: JSON says {want} but human output is:\n{human}", rel(path)));
            }
            let text = std::fs::read_to_string(path).unwrap();
            let line = text.lines().nth(j["line"].as_u64().unwrap() as usize - 1).unwrap_or("");
            multibyte_seen |= line.len() != line.chars().count() && line.contains('\t');
        }
    }
    assert!(multibyte_seen, "no fixture has multi-byte characters and a tab on a diagnostic's line");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
