//! `herald fmt [--check] FILE|DIR...`.

use super::{render, EXIT_COMPILE, EXIT_OK, EXIT_USAGE};
use crate::span::SourceMap;
use crate::syntax::fmt::{format, FormatError};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Format the files in place (or, with `check`, list those that would
/// change). Exit 0 when nothing is wrong; 1 when a file would change under
/// `--check` or does not parse (its diagnostics are printed, the file is left
/// alone); 2 for a file that cannot be read or written.
pub fn fmt(check: bool, inputs: &[PathBuf]) -> i32 {
    let mut files = Vec::new();
    for f in inputs {
        if let Err(m) = expand(f, &mut files) {
            eprintln!("herald: {m}");
            return EXIT_USAGE;
        }
    }
    let mut code = EXIT_OK;
    let stdout = std::io::stdout();
    for path in files {
        let text = match std::fs::read(&path).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                eprintln!("herald: `{}` is not UTF-8 text", path.display());
                code = EXIT_USAGE;
                continue;
            }
            Err(e) => {
                eprintln!("herald: cannot read `{}`: {e}", path.display());
                code = EXIT_USAGE;
                continue;
            }
        };
        match format(&text) {
            Ok(out) if out == text => {}
            Ok(out) => {
                if check {
                    let _ = writeln!(stdout.lock(), "{}", path.display());
                    code = code.max(EXIT_COMPILE);
                } else if let Err(e) = std::fs::write(&path, out) {
                    eprintln!("herald: cannot write `{}`: {e}", path.display());
                    code = EXIT_USAGE;
                }
            }
            Err(FormatError::Syntax(diags)) => {
                let mut sources = SourceMap::new();
                sources.add(path.display().to_string(), text);
                let style = render::Style::detect(std::io::stderr().is_terminal());
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(render::human(&diags, &sources, style).as_bytes());
                let _ = writeln!(err, "herald: `{}` does not parse; left unchanged", path.display());
                code = code.max(EXIT_COMPILE);
            }
            Err(FormatError::Internal(m)) => {
                eprintln!("herald: internal error formatting `{}` ({m}); left unchanged", path.display());
                code = code.max(EXIT_COMPILE);
            }
        }
    }
    code
}

/// A file as given, or a directory's `.herald` files, recursively, in name order.
fn expand(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if !p.is_dir() {
        if !p.exists() {
            return Err(format!("cannot read `{}`: no such file", p.display()));
        }
        out.push(p.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(|e| format!("cannot read directory `{}`: {e}", p.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            expand(&e, out)?;
        } else if e.extension().and_then(|x| x.to_str()) == Some("herald") {
            out.push(e);
        }
    }
    Ok(())
}
