//! Tidy tests: the "may not" column of ARCHITECTURE.md, enforced on the
//! source text (rust-analyzer keeps its architecture honest the same way).
//! Each test names the rule it checks; a failure lists every offending line.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, as (path relative to the root, text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root()).expect("under root").to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(&p).expect("read source"))
        })
        .collect()
}

/// The code of a line: empty for comment lines, the part before a trailing
/// `//` comment otherwise (good enough for the tokens these tests look for,
/// none of which occur inside string literals in this code base).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find("// ") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Lines of files outside `allowed` (path prefixes) whose code contains `token`.
fn offenders(token: &str, allowed: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in sources() {
        if allowed.iter().any(|a| path.starts_with(a)) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            if code(line).contains(token) {
                out.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn unsafe_only_in_jit() {
    // `unsafe` as a keyword: `#![deny(unsafe_code)]` names the lint, not a block.
    let bad: Vec<String> = ["unsafe {", "unsafe fn", "unsafe impl", "unsafe extern", "allow(unsafe_code)"]
        .iter()
        .flat_map(|t| offenders(t, &["src/jit/"]))
        .collect();
    assert!(bad.is_empty(), "`unsafe` outside `jit` (ARCHITECTURE.md, invariant 2):\n{}", bad.join("\n"));
}

#[test]
fn every_unsafe_block_says_why() {
    let mut bad = Vec::new();
    for (path, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let c = code(line);
            if !(c.contains("unsafe {") || c.contains("unsafe impl")) {
                continue;
            }
            // The comment may sit up to a few lines above (a multi-line
            // SAFETY paragraph, or an attribute in between).
            let from = i.saturating_sub(6);
            if !lines[from..=i].iter().any(|l| l.contains("SAFETY:")) {
                bad.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "`unsafe` without a `// SAFETY:` comment:\n{}", bad.join("\n"));
}

#[test]
fn pest_stays_in_syntax() {
    let bad = offenders("pest", &["src/syntax/"]);
    assert!(bad.is_empty(), "pest types leak outside `syntax`:\n{}", bad.join("\n"));
}

#[test]
fn sqlite_only_in_store() {
    // The outbox's delivery bookkeeping included (`store::outbox`).
    let bad = offenders("rusqlite", &["src/store/"]);
    assert!(bad.is_empty(), "`rusqlite` outside `store` (only the store issues SQL):\n{}", bad.join("\n"));
}

#[test]
fn postgres_only_in_store() {
    // The PostgreSQL driver: the event source (`store::pg_source`) and any
    // PostgreSQL backend. `postgres::` is a path into the crate; a
    // `postgres://` URL in a message is not.
    let bad: Vec<String> =
        ["postgres::", "use postgres", "tokio_postgres"].iter().flat_map(|t| offenders(t, &["src/store/"])).collect();
    assert!(bad.is_empty(), "`postgres` outside `store` (only the store issues SQL):\n{}", bad.join("\n"));
}

#[test]
fn compiler_core_is_pure() {
    // The compiler core does no IO and never sees the store, the engine or mail.
    let core = [
        "src/syntax/",
        "src/schema/",
        "src/check/",
        "src/compile.rs",
        "src/ir.rs",
        "src/filter.rs",
        "src/types.rs",
        "src/diag/",
        "src/analysis.rs",
    ];
    let forbidden = [
        "std::fs",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "std::process",
        "rusqlite",
        "postgres::",
        "crate::store",
        "crate::engine",
        "crate::mail",
    ];
    let mut bad = Vec::new();
    for (path, text) in sources() {
        if !core.iter().any(|c| path.starts_with(c)) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| code(line).contains(f)) {
                bad.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "IO or a run-time module in the compiler core:\n{}", bad.join("\n"));
}

#[test]
fn only_lsp_speaks_the_protocol() {
    let bad = offenders("lsp_server", &["src/lsp/"]);
    assert!(bad.is_empty(), "`lsp_server` outside `lsp`:\n{}", bad.join("\n"));
    let bad = offenders("lsp_types", &["src/lsp/"]);
    assert!(bad.is_empty(), "`lsp_types` outside `lsp`:\n{}", bad.join("\n"));
}

#[test]
fn only_cli_renders_diagnostics() {
    let bad = offenders("miette", &["src/cli/"]);
    assert!(bad.is_empty(), "diagnostics rendered outside `cli`:\n{}", bad.join("\n"));
}

#[test]
fn architecture_lists_every_module() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("read lib.rs");
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let modules: Vec<&str> =
        lib.lines().filter_map(|l| l.trim().strip_prefix("pub mod ").and_then(|r| r.strip_suffix(';'))).collect();
    assert!(modules.len() >= 10, "no modules found in lib.rs");
    // The module table is the one under "## Modules".
    let section = arch.split("\n## Modules").nth(1).expect("ARCHITECTURE.md has a Modules section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let table: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `").and_then(|r| r.split('`').next()))
        .filter(|name| !name.contains(['/', ':', ' ']))
        .collect();
    let missing: Vec<_> = modules.iter().filter(|m| !table.contains(m)).collect();
    assert!(missing.is_empty(), "modules missing from ARCHITECTURE.md's module table: {missing:?}");
    let stale: Vec<_> = table.iter().filter(|t| !modules.contains(t)).collect();
    assert!(stale.is_empty(), "ARCHITECTURE.md lists modules that do not exist: {stale:?}");
}

/// Lines of a module (`src/<module>.rs` and `src/<module>/`) whose code
/// contains any of `tokens`.
fn module_offenders(module: &str, tokens: &[&str]) -> Vec<String> {
    let (dir, file) = (format!("src/{module}/"), format!("src/{module}.rs"));
    let mut out = Vec::new();
    for (path, text) in sources() {
        if !(path.starts_with(&dir) || path == file) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            if tokens.iter().any(|t| code(line).contains(t)) {
                out.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn interp_does_not_use_mail() {
    // Address and header validation are effect checks (`engine::effects`):
    // the interpreter only produces effect values.
    let bad = module_offenders("interp", &["crate::mail", "mail::"]);
    assert!(bad.is_empty(), "`interp` references `crate::mail`:\n{}", bad.join("\n"));
}

#[test]
fn jit_does_not_use_engine() {
    // syntax → check → ir → {interp, jit} → engine: the matcher trait the JIT
    // implements lives in `crate::matcher`.
    let bad = module_offenders("jit", &["crate::engine", "engine::"]);
    assert!(bad.is_empty(), "`jit` references `crate::engine`:\n{}", bad.join("\n"));
}

#[test]
fn severity_and_level_parsing_cannot_panic() {
    // Severity and log-level literals come from user input: parsed once in
    // the checker, a bad one is a coded diagnostic, never a panic.
    let mut bad = Vec::new();
    for (path, text) in sources() {
        let lines: Vec<&str> = text.lines().map(code).collect();
        for (i, line) in lines.iter().enumerate() {
            if !(line.contains("Severity::parse") || line.contains("LogLevel::parse")) {
                continue;
            }
            // The call and the rest of its statement (rustfmt may wrap it).
            let stmt = lines[i..(i + 3).min(lines.len())].join("\n");
            let stmt = stmt.split(';').next().unwrap_or("");
            if stmt.contains(".expect(") || stmt.contains(".unwrap(") {
                bad.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    // Nor do the parsers themselves.
    let ir = std::fs::read_to_string(root().join("src/ir.rs")).expect("read ir.rs");
    for ty in ["Severity", "LogLevel"] {
        let start = ir.find(&format!("impl {ty} {{")).unwrap_or_else(|| panic!("no `impl {ty}` in src/ir.rs"));
        let body = &ir[start..];
        let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
        if [".expect(", ".unwrap(", "panic!", "unreachable!"].iter().any(|t| body.contains(t)) {
            bad.push(format!("src/ir.rs: `impl {ty}` may panic"));
        }
    }
    assert!(bad.is_empty(), "severity/level parsing may panic:\n{}", bad.join("\n"));
}
