//! The README's "The authoring loop" is true: every `$ command` of its
//! console block is run, in a directory holding a copy of
//! `examples/authentik/`, with the built `herald` first on `PATH`, and its
//! output (standard output, then standard error) must be the lines shown
//! under it, where a `...` line stands for any number of lines.
//!
//! The block's "write" step is a person editing; here it is the edit the
//! README describes (deleting one guard), made right after the `cp`.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const EDITED_LINE: &str = "  guard not empty(user.email)  # service accounts have no address\n";

/// The `$ command` lines of the section's console block, each with the
/// output lines shown under it.
fn steps(readme: &str) -> Vec<(String, Vec<String>)> {
    let section = &readme[readme.find("### The authoring loop").expect("the README has the section")..];
    let block = &section[section.find("```console\n").expect("a console block") + "```console\n".len()..];
    let block = &block[..block.find("\n```").expect("the block ends")];
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => steps.push((cmd.to_string(), Vec::new())),
            None => steps.last_mut().expect("a command before output").1.push(line.to_string()),
        }
    }
    steps
}

/// `want` matches `got` line for line, `...` matching any run of lines.
fn matches(want: &[String], got: &[&str]) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some((w, rest)) if w == "..." => (0..=got.len()).any(|i| matches(rest, &got[i..])),
        Some((w, rest)) => got.first().is_some_and(|g| g.trim_end() == w.trim_end()) && matches(rest, &got[1..]),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_authoring_loop_in_the_readme_is_true() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let steps = steps(&readme);
    let commands: Vec<&str> = steps.iter().map(|(c, _)| c.split_whitespace().nth(1).unwrap_or("")).collect();
    assert_eq!(commands, ["-r", "check", "test", "db", "trace", "diff"], "the loop's commands changed: {steps:?}");

    let dir = tempfile::tempdir().unwrap();
    copy_dir(&Path::new(ROOT).join("examples/authentik"), &dir.path().join("examples/authentik"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_herald")).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();

    for (cmd, want) in &steps {
        let out = Command::new("sh").args(["-c", cmd]).current_dir(dir.path()).env("PATH", &path).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let got: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
        assert!(matches(want, &got), "`{cmd}` printed\n{}\n\nthe README shows\n{}", got.join("\n"), want.join("\n"));
        // `diff` exits 1 when the versions differ, and `test` when a test
        // fails (the deleted guard's rule error), as the README says.
        let code = if cmd.starts_with("herald diff") || cmd.starts_with("herald test") { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(code), "`{cmd}`: {stderr}");

        if cmd.starts_with("cp ") {
            let file = dir.path().join("policies/welcome_email.herald");
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.contains(EDITED_LINE), "the line the README deletes is not in welcome_email.herald");
            std::fs::write(&file, text.replace(EDITED_LINE, "")).unwrap();
        }
    }
}

#[test]
fn ellipsis_matching() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(matches(&s(&["a", "...", "d"]), &["a", "b", "c", "d"]));
    assert!(matches(&s(&["a", "...", "b"]), &["a", "b"]));
    assert!(!matches(&s(&["a", "d"]), &["a", "b", "d"]));
    assert!(!matches(&s(&["a"]), &["a", "b"]));
    assert!(!matches(&s(&["a", "...", "z"]), &["a", "b"]));
}
