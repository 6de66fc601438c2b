//! The language server (`herald lsp`).

pub fn main() -> i32 {
    eprintln!("herald: lsp not built yet");
    2
}
