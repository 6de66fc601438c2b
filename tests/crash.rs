//! Crash safety: a large run killed with SIGKILL at several moments and
//! restarted on the same input until it finishes leaves exactly the store
//! an uninterrupted run leaves.

mod runtime_support;

use runtime_support::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Every reference policy but `group_addition_history`, whose history list
/// grows with every copy of the input (quadratic work, not what this tests).
const POLICIES: [&str; 4] =
    [AUTHENTIK_POLICIES[0], AUTHENTIK_POLICIES[1], AUTHENTIK_POLICIES[3], AUTHENTIK_POLICIES[4]];

/// ~110k events, with a malformed line every 997 lines.
fn input() -> String {
    let mut out = String::new();
    for (i, l) in generated_events(2400).lines().enumerate() {
        out.push_str(l);
        out.push('\n');
        if i % 997 == 0 {
            out.push_str("{\"action\": broken\n");
        }
    }
    out
}

fn args<'a>(db: &'a str, events: &'a str) -> Vec<&'a str> {
    let mut a = vec!["run", "--quiet", "--db", db, "--events", events, "--batch", "500"];
    a.extend(POLICIES);
    a
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let tmp = Tmp::new();
    let events = tmp.write("events.ndjson", input());

    // The reference: one uninterrupted run.
    let reference = tmp.p("reference.db");
    load(&reference, None, AUTHENTIK_FIXTURES);
    let started = Instant::now();
    let out = herald(&args(&reference, &events), None).ok();
    let full = started.elapsed();
    let firings = out.stdout.lines().count();
    assert!(firings > 5_000, "the run does real work: {firings} firings");
    eprintln!("uninterrupted run: {full:?}, {firings} firings");
    let expected = dump(&tmp.path("reference.db"), None, Some(&tmp)).replace("reference.db", "DB");

    // The same run, killed at several moments, then restarted until done.
    let db = tmp.p("crashed.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let delays = [Duration::from_millis(5), full / 5, full / 3, full / 4, full / 2];
    let mut interrupted = 0;
    let mut runs = 0;
    for delay in delays.iter().copied().chain(std::iter::repeat(Duration::ZERO)) {
        runs += 1;
        assert!(runs < 40, "the run never finished");
        let mut child = command(&args(&db, &events))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        if delay.is_zero() {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
        std::thread::sleep(delay);
        if child.try_wait().expect("try_wait").is_none() {
            interrupted += 1;
        }
        // SIGKILL on unix: no destructor, no handler runs.
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(interrupted >= 3, "only {interrupted} runs were killed mid-way (a full run takes {full:?})");
    let got = dump(&tmp.path("crashed.db"), None, Some(&tmp)).replace("crashed.db", "DB");
    if got != expected {
        // Show the first difference rather than two huge strings.
        let diff = got.lines().zip(expected.lines()).enumerate().find(|(_, (a, b))| a != b);
        panic!(
            "the stores differ ({} vs {} lines); first difference: {diff:?}",
            got.lines().count(),
            expected.lines().count()
        );
    }
}
