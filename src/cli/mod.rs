//! The command line (in progress).

/// Entry point of the `herald` binary; returns the process exit code.
pub fn main() -> i32 {
    eprintln!("herald: not yet implemented");
    2
}
