//! `herald check` as a user or a CI job runs it: the built binary, its exit
//! codes, human output on a pipe, and the JSON shape of CONTRACT.md.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn herald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .output()
        .expect("run herald")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(|s| s.as_str()).collect();
    k.sort();
    k
}

#[test]
fn webhook_examples_check_clean() {
    // Slack- and ntfy-shaped policies: plain `webhook` actions, nothing
    // special-cased for either service.
    let out = herald(&["check", "--format", "json", "examples/webhooks/"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v = json_of(&out);
    assert_eq!((v["errors"].as_u64(), v["warnings"].as_u64()), (Some(0), Some(0)), "{v}");
}

#[test]
fn authentik_examples_check_clean() {
    let out = herald(&["check", "examples/authentik/"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("ok: 9 rules checked"), "{err}");
    let out = herald(&["check", "--format", "json", "examples/authentik/"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json_of(&out);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["warnings"], 0);
    assert_eq!(v["diagnostics"], Value::Array(vec![]));
}

#[test]
fn two_broken_rules_report_both_syntax_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "two.herald",
        "rule a {\n  match login where event.app ==\n}\n\nrule b {\n  match logout\n  action log(\"bye)\n}\n\nrule c {\n  match login\n}\n",
    );
    let out = herald(&["check", "--format", "json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    let d = v["diagnostics"].as_array().unwrap();
    let found: Vec<(String, u64)> =
        d.iter().map(|d| (d["code"].as_str().unwrap().to_string(), d["line"].as_u64().unwrap())).collect();
    assert_eq!(found, vec![("E0009".to_string(), 2), ("E0002".to_string(), 7)], "{v:#}");
    assert_eq!(v["errors"], 2);
    // The human form says the same and counts both.
    let out = herald(&["check", f.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E0009") && err.contains("E0002"), "{err}");
    assert!(err.contains("expected an expression after `==`"), "{err}");
    assert!(err.contains("this string is never closed"), "{err}");
    assert!(err.contains("check failed: 2 errors"), "{err}");
}

#[test]
fn json_matches_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    // Multi-byte characters before the error: columns count characters,
    // offsets count bytes.
    let text = "# héllo wörld\nrule r {\n  match login where \"é→\" == event.apq\n}\n";
    let f = write(dir.path(), "j.herald", text);
    let out = herald(&["check", "--format", "json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json_of(&out);
    assert_eq!(keys(&v), ["diagnostics", "errors", "warnings"]);
    let d = &v["diagnostics"][0];
    assert_eq!(
        keys(d),
        ["code", "column", "file", "help", "labels", "length", "line", "message", "offset", "severity"]
    );
    assert_eq!(d["code"], "E0109");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], f.to_str().unwrap());
    let offset = text.find("apq").unwrap();
    assert_eq!(d["offset"], offset);
    assert_eq!(d["length"], 3);
    assert_eq!(d["line"], 3);
    let line_start = text[..offset].rfind('\n').unwrap() + 1;
    assert_eq!(d["column"], text[line_start..offset].chars().count() + 1);
    assert!(d["column"].as_u64().unwrap() < (offset - line_start + 1) as u64, "column counts characters");
    assert!(d["message"].as_str().unwrap().contains("apq"));
    assert_eq!(d["help"], "did you mean `app`?");
    for l in d["labels"].as_array().unwrap() {
        assert_eq!(keys(l), ["column", "length", "line", "message", "offset"]);
        assert!(l["line"].as_u64().unwrap() >= 1 && l["column"].as_u64().unwrap() >= 1);
    }
    assert_eq!(v["errors"], 1);
    assert_eq!(v["warnings"], 0);

    // `help` is null when absent is allowed by the contract; a warning has
    // severity "warning" and is counted apart.
    let w = write(dir.path(), "w.herald", "rule r {\n  match login | login\n}\n");
    let out = herald(&["check", "--format", "json", w.to_str().unwrap()]);
    let v = json_of(&out);
    assert_eq!(v["diagnostics"][0]["severity"], "warning");
    assert_eq!((v["errors"].as_u64(), v["warnings"].as_u64()), (Some(0), Some(1)));
    assert!(v["diagnostics"][0]["help"].is_string() || v["diagnostics"][0]["help"].is_null());
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.herald", "rule r { match login }\n");
    let bad = write(dir.path(), "bad.herald", "rule r { match lgoin }\n");
    let warn = write(dir.path(), "warn.herald", "rule r {\n  match login\n  let unused = 1\n}\n");
    let latin1 = dir.path().join("latin1.herald");
    std::fs::write(&latin1, b"rule r { match login where event.app == \"\xe9\" }\n").unwrap();
    let code = |args: &[&str]| herald(args).status.code();

    assert_eq!(code(&["check", good.to_str().unwrap()]), Some(0));
    assert_eq!(code(&["check", bad.to_str().unwrap()]), Some(1));
    assert_eq!(code(&["check", "--format", "json", bad.to_str().unwrap()]), Some(1));
    // Warnings do not change the exit code.
    assert_eq!(code(&["check", warn.to_str().unwrap()]), Some(0));
    assert_eq!(code(&["check", "--format", "json", warn.to_str().unwrap()]), Some(0));
    // Usage errors, unreadable files.
    assert_eq!(code(&["check"]), Some(2));
    assert_eq!(code(&["check", "--format", "xml", good.to_str().unwrap()]), Some(2));
    assert_eq!(code(&["check", dir.path().join("missing.herald").to_str().unwrap()]), Some(2));
    assert_eq!(code(&["check", latin1.to_str().unwrap()]), Some(2));
    assert_eq!(code(&["check", "--schema", "nope.herald", good.to_str().unwrap()]), Some(2));
    // A broken schema file is a compile error.
    let schema = write(dir.path(), "s.herald", "discriminator kind\nevent push { repo: strng }\n");
    assert_eq!(code(&["check", "--schema", schema.to_str().unwrap(), good.to_str().unwrap()]), Some(1));
    // Explicit built-in schema.
    assert_eq!(code(&["check", "--schema", "authentik", good.to_str().unwrap()]), Some(0));
}

#[test]
fn plain_output_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.herald", "rule r { match lgoin }\n");
    for no_color in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.args(["check", bad.to_str().unwrap()]);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains('\u{1b}'), "escape codes on a pipe: {err:?}");
        assert!(err.contains("E0108") && err.contains("unknown event type `lgoin`"), "{err}");
        assert!(err.contains("did you mean `login`?"), "{err}");
        assert!(out.stdout.is_empty(), "human diagnostics go to stderr");
    }
}

#[test]
fn explain_prints_pages() {
    let out = herald(&["explain", "E0109"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with("# E0109: unknown field"), "{page}");
    assert_eq!(herald(&["explain", "e0109"]).status.code(), Some(0));
    let out = herald(&["explain", "E9999"]);
    assert_eq!(out.status.code(), Some(2));
}
