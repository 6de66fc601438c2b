//! Shared helpers of the runtime tests: temporary directories, running the
//! built `herald` binary, and a normalised dump of a store.
//!
//! Every test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use herald::compile::{self, SchemaChoice};
use herald::span::SourceMap;
use herald::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root: commands run there so that policy paths (and the
/// rule-error locations that quote them) are the same on every machine.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_herald")
}

/// A temporary directory that is removed when dropped.
pub struct Tmp {
    dir: tempfile::TempDir,
}

impl Tmp {
    pub fn new() -> Tmp {
        Tmp { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `path(name)` as a string, for command lines.
    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        std::fs::write(self.path(name), bytes).expect("write a test file");
        self.p(name)
    }

    /// Replace the directory's path by `<tmp>` in `text`.
    pub fn normalise(&self, text: &str) -> String {
        let dir = self.dir.path().display().to_string();
        text.replace(&dir, "<tmp>")
    }
}

/// What one run of the binary did.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Panic with the whole output unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Out {
        assert_eq!(self.code, code, "exit code; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn ok(self) -> Out {
        self.expect_code(0)
    }

    pub fn stdout_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line {l:?} is not JSON: {e}")))
            .collect()
    }
}

pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args).current_dir(root()).env("NO_COLOR", "1");
    c
}

/// Run `herald ARGS` from the repository root, feeding `stdin` (empty when
/// `None`).
pub fn herald(args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut c = command(args);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn herald");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.unwrap_or_default().to_vec();
    let feeder = std::thread::spawn(move || {
        // The child may exit before reading everything (a usage error).
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for herald");
    feeder.join().expect("stdin feeder");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Open the store at `db` with a schema (`None`: the built-in authentik
/// schema; else a schema file path relative to the repository root).
pub fn open_store(db: &Path, schema: Option<&str>) -> Store {
    let mut sources = SourceMap::new();
    let choice = match schema {
        None => SchemaChoice::Builtin,
        Some(p) => {
            let text = std::fs::read_to_string(root().join(p)).expect("read the schema");
            SchemaChoice::File(sources.add(p, text))
        }
    };
    let (schema, diags) = compile::compile_schema(&mut sources, choice);
    assert!(herald::diag::error_count(&diags) == 0, "schema errors: {diags:?}");
    Store::open(db, schema).expect("open the store")
}

/// The store's deterministic dump (ids dropped, times as `<time>`), with
/// the temporary directory's path as `<tmp>` when `tmp` is given.
pub fn dump(db: &Path, schema: Option<&str>, tmp: Option<&Tmp>) -> String {
    let text = open_store(db, schema).try_dump().expect("dump the store");
    match tmp {
        Some(t) => t.normalise(&text),
        None => text,
    }
}

/// The dump without Herald's bookkeeping (checkpoints, the processed set
/// and its rule sets, metadata): what users observe.
pub fn effects_dump(db: &Path, schema: Option<&str>) -> String {
    let text = dump(db, schema, None);
    let mut out = String::new();
    let mut keep = true;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("== ") {
            keep = !["herald_checkpoint", "herald_processed", "herald_rule_set", "herald_meta"]
                .iter()
                .any(|t| rest.starts_with(t));
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Rows of one table in a dump (the JSON lines after its `== table` header).
pub fn table(dump: &str, name: &str) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in dump.lines() {
        if let Some(rest) = line.strip_prefix("== ") {
            inside = rest.split(' ').next() == Some(name);
            continue;
        }
        if inside {
            rows.push(serde_json::from_str(line).expect("dump rows are JSON"));
        }
    }
    rows
}

/// The five authentik reference policies, in the order `run` would take
/// them from the directory.
pub const AUTHENTIK_POLICIES: [&str; 5] = [
    "examples/authentik/application_without_bindings.herald",
    "examples/authentik/archive_ssh_keys.herald",
    "examples/authentik/group_addition_history.herald",
    "examples/authentik/unknown_device_login.herald",
    "examples/authentik/welcome_email.herald",
];

pub const AUTHENTIK_EVENTS: &str = "examples/authentik/events.ndjson";
pub const AUTHENTIK_FIXTURES: &str = "examples/authentik/fixtures.json";

/// `herald db load` of `fixtures` into a new store at `db`.
pub fn load(db: &str, schema: Option<&str>, fixtures: &str) {
    let mut args = vec!["db", "load", "--db", db];
    if let Some(s) = schema {
        args.extend(["--schema", s]);
    }
    args.push(fixtures);
    herald(&args, None).ok();
}

/// `herald run --quiet` with the given extra arguments and policies.
pub fn run(db: &str, events: &str, extra: &[&str], policies: &[&str]) -> Out {
    let mut args = vec!["run", "--quiet", "--db", db, "--events", events];
    args.extend_from_slice(extra);
    args.extend_from_slice(policies);
    herald(&args, None)
}

/// `copies` copies of the authentik example events, each with its own
/// `event_uuid` (copy `c`, line `i`), as NDJSON.
pub fn generated_events(copies: usize) -> String {
    let text = std::fs::read_to_string(root().join(AUTHENTIK_EVENTS)).expect("example events");
    let lines: Vec<serde_json::Value> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let mut out = String::new();
    for c in 0..copies {
        for (i, ev) in lines.iter().enumerate() {
            let mut ev = ev.clone();
            if let Some(obj) = ev.as_object_mut() {
                obj.insert("event_uuid".into(), format!("{c:08x}-{i:04x}-4000-8000-000000000000").into());
            }
            out.push_str(&ev.to_string());
            out.push('\n');
        }
    }
    out
}
