//! Crash safety: a large run killed with SIGKILL at several moments and
//! restarted on the same input until it finishes leaves exactly the store
//! an uninterrupted run leaves; so does a killed `--backfill` run.

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

/// Row and link statements on the same run: logins link their user to a
/// group and upsert a shadow row, logouts unlink, failed logins delete the
/// shadow row. The final store depends on every event applied exactly once,
/// in order.
const STATEMENTS: &str = r#"
rule crash_join {
  match login { user.pk: pk }
  guard let g = Group["781c78b2ad94415d920905756dfcc62e"]
  action {
    add int(pk) to g.users
    upsert User[int(pk) + 100000] {
      username: "shadow-{pk}", name: "last {event.event_uuid}", email: "s@example.com", is_active: true,
    }
  }
}
rule crash_leave {
  match logout { user.pk: pk }
  guard let g = Group["781c78b2ad94415d920905756dfcc62e"]
  action remove int(pk) from g.users
}
rule crash_forget {
  match login_failed { user.pk: pk }
  action delete User[int(pk) + 100000]
}
"#;

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let tmp = Tmp::new();
    let events = tmp.write("events.ndjson", input());
    let statements = tmp.write("statements.herald", STATEMENTS);
    let run_args = |db: &str| -> Vec<String> {
        args(db, &events).into_iter().map(str::to_string).chain([statements.clone()]).collect()
    };

    // The reference: one uninterrupted run.
    let reference = tmp.p("reference.db");
    load(&reference, None, AUTHENTIK_FIXTURES);
    let started = Instant::now();
    let a = run_args(&reference);
    let out = herald(&a.iter().map(String::as_str).collect::<Vec<_>>(), None).ok();
    let full = started.elapsed();
    let firings = out.stdout.lines().count();
    assert!(firings > 5_000, "the run does real work: {firings} firings");
    eprintln!("uninterrupted run: {full:?}, {firings} firings");
    let expected = dump(&tmp.path("reference.db"), None, Some(&tmp)).replace("reference.db", "DB");
    assert!(expected.contains("\"shadow-31\""), "the statements ran: an upserted row");

    // The same run, killed at several moments, then restarted until done.
    let db = tmp.p("crashed.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let delays = [Duration::from_millis(5), full / 5, full / 3, full / 4, full / 2];
    let mut interrupted = 0;
    let mut runs = 0;
    for delay in delays.iter().copied().chain(std::iter::repeat(Duration::ZERO)) {
        runs += 1;
        assert!(runs < 40, "the run never finished");
        let a = run_args(&db);
        let mut child = command(&a.iter().map(String::as_str).collect::<Vec<_>>())
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

/// A rule on every login, so that login events are processed before
/// `unknown_device_login` is added and backfilled.
const EVERY_LOGIN: &str =
    "rule every_login {\n  match login\n  action notify(to: event.user.pk, severity: \"notice\", body: \"login\")\n}\n";

/// Copy a closed store (and its WAL, if one is left).
fn copy_store(tmp: &Tmp, from: &str, to: &str) {
    std::fs::copy(tmp.path(from), tmp.path(to)).expect("copy the store");
    for ext in ["-wal", "-shm"] {
        let src = tmp.path(&format!("{from}{ext}"));
        if src.exists() {
            std::fs::copy(src, tmp.path(&format!("{to}{ext}"))).expect("copy the WAL");
        }
    }
}

#[test]
fn killed_backfill_runs_resume_to_the_uninterrupted_result() {
    let tmp = Tmp::new();
    // A third of the big input: the backfill re-reads it from the start on
    // every restart.
    let mut text = String::new();
    for (i, l) in generated_events(800).lines().enumerate() {
        text.push_str(l);
        text.push('\n');
        if i % 997 == 0 {
            text.push_str("{\"action\": broken\n");
        }
    }
    let events = tmp.write("events.ndjson", text);
    let every = tmp.write("every_login.herald", EVERY_LOGIN);
    let before: Vec<&str> = vec![&every, POLICIES[0], POLICIES[1], POLICIES[3]];
    let after: Vec<&str> = vec![&every, POLICIES[0], POLICIES[1], POLICIES[2], POLICIES[3]];
    let run_args = |db: &'_ str, policies: &[&'_ str], backfill: bool| -> Vec<String> {
        let mut a: Vec<String> = ["run", "--quiet", "--db", db, "--events", &events, "--batch", "500"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if backfill {
            a.push("--backfill".into());
        }
        a.extend(policies.iter().map(|s| s.to_string()));
        a
    };

    // Both stores start from the same processed input without the new rule.
    let base = tmp.p("base.db");
    load(&base, None, AUTHENTIK_FIXTURES);
    let a = run_args(&base, &before, false);
    herald(&a.iter().map(String::as_str).collect::<Vec<_>>(), None).ok();
    copy_store(&tmp, "base.db", "reference.db");
    copy_store(&tmp, "base.db", "crashed.db");

    // The reference: one uninterrupted backfill.
    let reference = tmp.p("reference.db");
    let a = run_args(&reference, &after, true);
    let started = Instant::now();
    let out = herald(&a.iter().map(String::as_str).collect::<Vec<_>>(), None).ok();
    let full = started.elapsed();
    // Every firing is the new rule's, on an event processed before.
    let firings = out.stdout.lines().count();
    assert!(firings > 1_000, "the backfill does real work: {firings} firings");
    assert_eq!(out.stdout.lines().filter(|l| l.contains("\"unknown_device_login\"")).count(), firings);
    let expected = dump(&tmp.path("reference.db"), None, Some(&tmp)).replace("reference.db", "DB");

    // The same backfill killed at several moments, then restarted (with
    // `--backfill` again) until done.
    let db = tmp.p("crashed.db");
    let a = run_args(&db, &after, true);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let delays = [Duration::from_millis(5), full / 5, full / 3, full / 4, full / 2];
    let mut interrupted = 0;
    let mut runs = 0;
    for delay in delays.iter().copied().chain(std::iter::repeat(Duration::ZERO)) {
        runs += 1;
        assert!(runs < 40, "the backfill never finished");
        let mut child =
            command(&a).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
        if delay.is_zero() {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
        std::thread::sleep(delay);
        if child.try_wait().expect("try_wait").is_none() {
            interrupted += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(interrupted >= 3, "only {interrupted} runs were killed mid-way (a full backfill takes {full:?})");
    let got = dump(&tmp.path("crashed.db"), None, Some(&tmp)).replace("crashed.db", "DB");
    if got != expected {
        let diff = got.lines().zip(expected.lines()).enumerate().find(|(_, (a, b))| a != b);
        panic!(
            "the stores differ ({} vs {} lines); first difference: {diff:?}",
            got.lines().count(),
            expected.lines().count()
        );
    }
    // The records name the rule set with the new rule.
    assert_eq!(table(&got, "herald_rule_set").len(), 2, "before and after the new rule");
}

/// Windows, throttles and sequences keep their state in the store, in the batch
/// transaction: a run killed and restarted leaves the same state (and the
/// same firings) as an uninterrupted one.
const STATEFUL: &str = r#"
rule brute_force {
  match login_failed { context.username: name }
  window 10m by name count >= 3
  throttle 30m by name
  action log(message: "{window.count} for {name}, {throttle.suppressed} held back")
}
rule spray {
  match login_failed { client_ip: ip, context.username: name }
  window 5m by ip distinct name >= 12
  action log(message: "{window.distinct} users from {ip}")
}
rule failed_after_login {
  match login_failed { context.username: name }
  after login as prev { user.username: name } within 2m
  action log(message: "{name} failed after a sign-in at {prev.created}")
}
"#;

/// ~60k failed sign-ins over many keys, a few seconds apart, some out of
/// order, so windows open, fire, throttle and expire throughout the run.
fn stateful_input() -> String {
    let mut out = String::new();
    for i in 0u64..60_000 {
        // Mostly forward in time, every 13th event a minute behind.
        let secs = 1_777_885_200 + i * 7 - if i % 13 == 0 { 60 } else { 0 };
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // 2026-05-04 is day 20577 since the epoch; the run spans ~5 days.
        let day = 4 + (days - 20_577);
        let created = format!("2026-05-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
        // Every 5th event a sign-in, which `failed_after_login` records.
        if i % 5 == 0 {
            out.push_str(&format!(
                "{{\"action\":\"login\",\"event_uuid\":\"00000000-0000-4000-8000-{i:012x}\",\"created\":\"{created}\",\
                 \"client_ip\":\"10.0.{}.1\",\"user\":{{\"username\":\"user{}\"}}}}\n",
                i % 3,
                (i * 31) % 13
            ));
            continue;
        }
        out.push_str(&format!(
            "{{\"action\":\"login_failed\",\"event_uuid\":\"00000000-0000-4000-8000-{i:012x}\",\"created\":\"{created}\",\
             \"client_ip\":\"10.0.{}.1\",\"context\":{{\"username\":\"user{}\"}}}}\n",
            i % 3,
            (i * 31) % 13
        ));
    }
    out
}

#[test]
fn killed_stateful_runs_resume_to_the_uninterrupted_result() {
    let tmp = Tmp::new();
    let events = tmp.write("events.ndjson", stateful_input());
    let policy = tmp.write("stateful.herald", STATEFUL);
    let args = |db: &'_ str| -> Vec<String> {
        ["run", "--quiet", "--db", db, "--events", &events, "--batch", "300", &policy]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let reference = tmp.p("reference.db");
    let started = Instant::now();
    let a = args(&reference);
    let out = herald(&a.iter().map(String::as_str).collect::<Vec<_>>(), None).ok();
    let full = started.elapsed();
    assert!(out.stderr.lines().count() > 500, "the rules fire: {}", out.stderr.lines().count());
    assert!(out.stderr.contains("failed after a sign-in"), "the sequence fires");
    let expected = dump(&tmp.path("reference.db"), None, Some(&tmp)).replace("reference.db", "DB");
    assert!(expected.contains("herald_state_entry"), "the dump shows the state tables");

    let db = tmp.p("crashed.db");
    let a = args(&db);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let delays = [Duration::from_millis(5), full / 5, full / 3, full / 4, full / 2];
    let mut interrupted = 0;
    let mut runs = 0;
    for delay in delays.iter().copied().chain(std::iter::repeat(Duration::ZERO)) {
        runs += 1;
        assert!(runs < 40, "the run never finished");
        let mut child =
            command(&a).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
        if delay.is_zero() {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
        std::thread::sleep(delay);
        if child.try_wait().expect("try_wait").is_none() {
            interrupted += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(interrupted >= 3, "only {interrupted} runs were killed mid-way (a full run takes {full:?})");
    let got = dump(&tmp.path("crashed.db"), None, Some(&tmp)).replace("crashed.db", "DB");
    if got != expected {
        let diff = got.lines().zip(expected.lines()).enumerate().find(|(_, (a, b))| a != b);
        panic!(
            "the stores differ ({} vs {} lines); first difference: {diff:?}",
            got.lines().count(),
            expected.lines().count()
        );
    }
}
