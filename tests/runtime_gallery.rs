//! Run-time error fixtures (`tests/fixtures/runtime/R*.herald`): each is run
//! by the real `herald` binary on a fresh SQLite database loaded with
//! `store.json`, with both engines, and must record exactly one rule error
//! with the code and rule its header names.
//!
//! Header lines: `# rule-error: CODE in RULE`, `# events: FILE.ndjson`, and
//! optionally `# setup: FILE.sql` (run on the database before `herald run`).

mod common;

use common::{fixtures, rel, root};
use std::path::Path;
use std::process::Command;

fn herald(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_herald")).args(args).current_dir(root()).output().expect("run herald")
}

fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().take_while(|l| l.starts_with('#')).find_map(|l| l.strip_prefix(key)).map(str::trim)
}

fn run_one(path: &Path, engine: &str) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let dir = path.parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("t.db");
    let db_s = db.to_str().unwrap();
    let out = herald(&["db", "load", "--db", db_s, dir.join("store.json").to_str().unwrap()]);
    assert!(out.status.success(), "db load: {}", String::from_utf8_lossy(&out.stderr));
    if let Some(sql) = header(&text, "# setup:") {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&std::fs::read_to_string(dir.join(sql)).unwrap()).unwrap();
    }
    let events = dir.join(header(&text, "# events:").expect("an `# events:` header"));
    let out = herald(&[
        "run",
        "--db",
        db_s,
        "--engine",
        engine,
        "--events",
        events.to_str().unwrap(),
        "--quiet",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}: {}", rel(path), String::from_utf8_lossy(&out.stderr));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut st = conn.prepare("SELECT rule, code, message FROM herald_rule_error ORDER BY id").unwrap();
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn runtime_fixtures_record_their_rule_error() {
    let files = fixtures("runtime");
    assert!(files.len() >= 5);
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let spec = header(&text, "# rule-error:").unwrap_or_else(|| panic!("{}: no `# rule-error:`", rel(path)));
        let (code, rule) = spec.split_once(" in ").expect("`CODE in RULE`");
        for engine in ["interp", "jit"] {
            let errors = run_one(path, engine);
            assert_eq!(errors.len(), 1, "{} ({engine}): {errors:?}", rel(path));
            let (r, c, message) = &errors[0];
            assert_eq!((r.as_str(), c.as_str()), (rule, code), "{} ({engine}): {message}", rel(path));
            // The message locates the policy.
            assert!(message.contains(&rel(path)), "{} ({engine}): {message}", rel(path));
        }
    }
}
