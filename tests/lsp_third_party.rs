//! `herald lsp` driven by a third-party LSP client: runs the pytest-lsp suite
//! in `tests/lsp_client/` against the binary this build made.
//!
//! The Python packages are pinned in `tests/requirements.txt`
//! (`python3 -m pip install -r tests/requirements.txt`). When they are missing
//! this test fails and says so; `HERALD_SKIP_PY=1` skips it, loudly, on a
//! machine without Python.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Far above the suite's few seconds; a hung server fails the test instead of
/// hanging the run.
const DEADLINE: Duration = Duration::from_secs(300);

#[test]
fn pytest_lsp_suite() {
    if std::env::var("HERALD_SKIP_PY").is_ok_and(|v| v == "1") {
        eprintln!("lsp_third_party: SKIPPED (HERALD_SKIP_PY=1): the pytest-lsp suite in tests/lsp_client/ did not run");
        return;
    }
    let probe =
        Command::new("python3").args(["-c", "import pytest_lsp, pytest; print(pytest_lsp.__version__)"]).output();
    match probe {
        Err(e) => panic!(
            "cannot run python3 ({e}): the third-party LSP client test needs Python 3 with the packages of \
             tests/requirements.txt (run scripts/deps.sh, or `python3 -m pip install -r tests/requirements.txt`); \
             HERALD_SKIP_PY=1 skips it"
        ),
        Ok(out) if !out.status.success() => panic!(
            "python3 cannot import pytest_lsp: run scripts/deps.sh (or `python3 -m pip install -r \
             tests/requirements.txt`); HERALD_SKIP_PY=1 skips this test\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }

    let mut child = Command::new("python3")
        // Neither a cache directory nor bytecode in the source tree.
        .args(["-B", "-m", "pytest", "tests/lsp_client", "-q", "-p", "no:cacheprovider"])
        .current_dir(ROOT)
        .env("HERALD_BIN", env!("CARGO_BIN_EXE_herald"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pytest");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pytest") {
            break Some(status);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let report = format!("--- pytest stdout ---\n{out}\n--- pytest stderr ---\n{err}");
    let Some(status) = status else { panic!("pytest did not finish within {DEADLINE:?}\n{report}") };
    assert!(status.success(), "the pytest-lsp suite failed ({status})\n{report}");
    // pytest's last line, e.g. `25 passed in 4.01s`: something ran, nothing
    // was skipped.
    let summary = out.lines().rev().find(|l| l.contains(" passed")).unwrap_or("");
    let passed: u32 = summary.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(passed > 0, "no test passed\n{report}");
    assert!(!summary.contains("skipped"), "some tests were skipped: {summary}\n{report}");
    eprintln!("lsp_third_party: {summary}");
}
