//! Embeds every `docs/errors/CODE.md` page for `herald explain`.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=docs/errors");
    // The run-time variable, not `env!`: a build script binary reused from
    // another checkout (a copied `target/`) would otherwise embed that
    // checkout's pages, or none.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_string());
    let dir = Path::new(&manifest).join("docs/errors");
    let mut pages: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let path = e.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            if path.extension().and_then(|s| s.to_str()) == Some("md")
                && stem.len() == 5
                && stem.starts_with(['E', 'W', 'R'])
            {
                println!("cargo:rerun-if-changed={}", path.display());
                pages.push((stem.to_string(), path.display().to_string()));
            }
        }
    }
    pages.sort();
    let mut out =
        String::from("/// `(code, page)` for every page in docs/errors.\npub static PAGES: &[(&str, &str)] = &[\n");
    for (code, path) in pages {
        writeln!(out, "    ({code:?}, include_str!({path:?})),").unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("error_pages.rs");
    std::fs::write(dest, out).unwrap();
}
