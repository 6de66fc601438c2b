//! The tables of built-in functions and actions in `docs/language.md` are
//! generated from the registry (`herald::builtins`). This test fails when
//! they are out of date; run it with `HERALD_BLESS=1` to rewrite them.

use std::path::PathBuf;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/language.md")
}

/// Replace the text between `<!-- begin NAME -->` and `<!-- end NAME -->`.
fn splice(doc: &str, name: &str, table: &str) -> Result<String, String> {
    let begin = format!("<!-- begin {name}: generated from src/builtins, do not edit -->\n");
    let end = format!("<!-- end {name} -->");
    let b = doc.find(&begin).ok_or(format!("docs/language.md has no `{}` marker", begin.trim()))? + begin.len();
    let e = doc[b..].find(&end).ok_or(format!("docs/language.md has no `{end}` marker"))? + b;
    Ok(format!("{}{table}{}", &doc[..b], &doc[e..]))
}

#[test]
fn docs_tables_match_the_registry() {
    let doc = std::fs::read_to_string(doc_path()).expect("read docs/language.md");
    let want = splice(&doc, "functions", &herald::builtins::functions_table())
        .and_then(|d| splice(&d, "actions", &herald::builtins::actions_table()))
        .unwrap_or_else(|e| panic!("{e}"));
    if want == doc {
        return;
    }
    if std::env::var_os("HERALD_BLESS").is_some() {
        std::fs::write(doc_path(), &want).expect("write docs/language.md");
        return;
    }
    panic!(
        "the built-in tables in docs/language.md are out of date; run \
         `HERALD_BLESS=1 cargo test --release --test builtins_doc` to regenerate them"
    );
}
