//! The input side of `herald run` under hostile use: a checkpoint resumes
//! only an input that starts with the very bytes it covered, dead letters
//! are resolved when their line is processed later, a line too long to hold
//! is a bounded dead letter, numeric flags have ranges, a store locked by
//! another process is reported once and clearly (and `--wait` waits for
//! it), and paths need not be UTF-8.

mod runtime_support;

use runtime_support::*;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A rule that fires on every login: each event of the input either fires
/// (one stdout line) or is a dead letter.
const POLICY: &str = "rule seen { match login action log(\"seen\") }\n";

fn login(n: u32) -> String {
    format!(
        r#"{{"event_uuid":"00000000-0000-4000-8000-{n:012}","action":"login","created":"2026-04-14T08:00:00Z","user":{{"pk":12}}}}"#
    )
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

struct Setup {
    tmp: Tmp,
    db: String,
    policy: String,
}

fn setup() -> Setup {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    let policy = tmp.write("seen.herald", POLICY);
    Setup { tmp, db, policy }
}

impl Setup {
    /// `herald run` over `--events FILE` or standard input, with `extra`.
    fn run(&self, events: Option<&str>, stdin: Option<&[u8]>, extra: &[&str]) -> Out {
        let mut args = vec!["run", "--db", &self.db];
        if let Some(e) = events {
            args.extend(["--events", e]);
        }
        args.extend_from_slice(extra);
        args.push(&self.policy);
        herald(&args, stdin)
    }

    fn dead_letters(&self) -> Vec<serde_json::Value> {
        table(&dump(&self.tmp.path("h.db"), None, None), "herald_dead_letter")
    }
}

fn fired_lines(out: &Out) -> Vec<i64> {
    out.stdout_lines().iter().map(|l| l["line"].as_i64().expect("a line number")).collect()
}

#[test]
fn a_dead_letter_fixed_in_place_is_processed_on_the_next_run_and_resolved() {
    let s = setup();
    let mut lines: Vec<String> = (1..=4).map(login).collect();
    // Line 3 is broken (say a truncated write); the operator fixes it in
    // place and runs again. The checkpoint's first and last lines are the
    // same as before, so comparing those lines missed the change.
    lines[2] = login(3)[..40].to_string();
    let events = s.tmp.write("events.ndjson", text(&lines));
    let first = s.run(Some(&events), None, &[]).ok();
    assert_eq!(fired_lines(&first), vec![1, 2, 4]);
    let dead = s.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0]["line"].as_i64(), dead[0]["resolved"].is_null()), (Some(3), true));

    lines[2] = login(3);
    s.tmp.write("events.ndjson", text(&lines));
    let second = s.run(Some(&events), None, &[]).ok();
    assert!(second.stderr.contains("reading it from its first line"), "{}", second.stderr);
    assert_eq!(fired_lines(&second), vec![3], "only the fixed line is new: {}", second.stderr);
    assert!(second.stderr.contains("1 earlier dead letter resolved"), "{}", second.stderr);
    let dead = s.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["resolved"], "<time>", "the dead letter is marked resolved: {dead:?}");

    // And now the input is continued as usual: resumed, nothing new.
    let third = s.run(Some(&events), None, &[]).ok();
    assert_eq!(third.stdout, "");
    assert!(third.stderr.contains("resumed after line 4"), "{}", third.stderr);
}

#[test]
fn another_stream_on_stdin_with_the_same_first_and_last_lines_is_read_whole() {
    let s = setup();
    let a = text(&[login(1), login(2), login(3)]);
    // Same first line, same third line, another second event.
    let b = text(&[login(1), login(9), login(3)]);
    assert_eq!(fired_lines(&s.run(None, Some(a.as_bytes()), &[]).ok()), vec![1, 2, 3]);
    let again = s.run(None, Some(b.as_bytes()), &[]).ok();
    assert_eq!(fired_lines(&again), vec![2], "the new event fires: {}", again.stderr);
    assert!(again.stderr.contains("reading it from its first line"), "{}", again.stderr);
    // The same stream again, longer: resumed after what was read.
    let longer = format!("{b}{}\n", login(10));
    let resumed = s.run(None, Some(longer.as_bytes()), &[]).ok();
    assert_eq!(fired_lines(&resumed), vec![4]);
    assert!(resumed.stderr.contains("resumed after line 3"), "{}", resumed.stderr);
}

#[test]
fn a_checkpoint_on_a_last_line_without_a_line_end_is_continued_only_by_that_line() {
    let s = setup();
    let events = s.tmp.write("events.ndjson", format!("{}\n{}", login(1), login(2)));
    assert_eq!(fired_lines(&s.run(Some(&events), None, &[]).ok()), vec![1, 2]);
    // The last line was complete after all: a line end and a new event.
    s.tmp.write("events.ndjson", format!("{}\n{}\n{}\n", login(1), login(2), login(3)));
    let next = s.run(Some(&events), None, &[]).ok();
    assert_eq!(fired_lines(&next), vec![3], "{}", next.stderr);
    assert!(next.stderr.contains("resumed after line 2"), "{}", next.stderr);
}

#[test]
fn a_line_over_the_limit_is_a_bounded_dead_letter_and_later_runs_go_on() {
    let s = setup();
    let limit = 1000usize;
    // Invalid UTF-8: read in the same chunk as its neighbours, and one
    // longer than a read, streamed past.
    let short_bad = vec![0xffu8; 200_000];
    let long_bad = vec![0xfeu8; 3 << 20];
    let mut input = format!("{}\n", login(1)).into_bytes();
    for bad in [&short_bad, &long_bad] {
        input.extend_from_slice(bad);
        input.push(b'\n');
    }
    input.extend_from_slice(format!("{}\n", login(4)).as_bytes());
    let events = s.tmp.write("events.ndjson", &input);
    let limit_arg = limit.to_string();
    let out = s.run(Some(&events), None, &["--max-line-bytes", &limit_arg]).ok();
    assert_eq!(fired_lines(&out), vec![1, 4]);
    let dead = s.dead_letters();
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (row, (line, len)) in dead.iter().zip([(2, short_bad.len()), (3, long_bad.len())]) {
        assert_eq!(row["line"], line);
        assert_eq!(row["raw_length"], len, "the whole length is recorded");
        assert_eq!(row["raw_hash"].as_str().map(str::len), Some(16));
        let error = row["error"].as_str().unwrap();
        assert!(error.contains(&format!("{len} bytes long, over the limit of 1000 bytes")), "{error}");
        // A bounded start of the line (U+FFFD per invalid byte).
        let raw = row["raw"].as_str().unwrap();
        assert!(!raw.is_empty() && raw.len() <= 3 * 64 * 1024, "raw of {} bytes", raw.len());
    }
    assert!(out.stderr.contains("line 3: dead letter: the line is 3145728 bytes long"), "{}", out.stderr);
    // Running again reads again from the start (`--from-start`): the same
    // dead letters are not recorded twice, and nothing fails.
    let again = s.run(Some(&events), None, &["--max-line-bytes", &limit_arg, "--from-start"]).ok();
    assert_eq!(again.stdout, "");
    assert_eq!(s.dead_letters().len(), 2);
    // Without the small limit (default 64 MiB) the lines are merely
    // invalid JSON; a long line is still stored bounded.
    let t = setup();
    let events = t.tmp.write("events.ndjson", &input);
    t.run(Some(&events), None, &[]).ok();
    let dead = t.dead_letters();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[1]["raw_length"], long_bad.len());
    assert!(dead[1]["raw"].as_str().unwrap().len() <= 3 * 64 * 1024);
}

#[test]
fn numeric_flags_out_of_range_are_usage_errors() {
    let s = setup();
    for (flag, value) in [
        ("--threads", "18446744073709551615"),
        ("--threads", "100000000"),
        ("--threads", "0"),
        ("--threads", "-1"),
        ("--batch", "0"),
        ("--batch", "18446744073709551615"),
        ("--max-line-bytes", "0"),
        ("--max-line-bytes", "99999999999999"),
        ("--wait", "100000000"),
        ("--wait", "-5"),
    ] {
        let started = Instant::now();
        let out = s.run(None, Some(login(1).as_bytes()), &[flag, value]);
        assert_eq!(out.code, 2, "{flag} {value}: {}", out.stderr);
        assert!(out.stderr.contains(flag), "{flag} {value}: the message names the flag: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(started.elapsed() < Duration::from_secs(30), "{flag} {value} is refused, not attempted");
    }
    for (sub, value) in [("init", "100000000"), ("load", "-1")] {
        let mut args = vec!["db", sub, "--db", &s.db, "--wait", value];
        if sub == "load" {
            args.push(AUTHENTIK_FIXTURES);
        }
        let out = herald(&args, None);
        assert_eq!(out.code, 2, "db {sub} --wait {value}: {}", out.stderr);
    }
    // The bounds themselves are accepted.
    let ok = s.run(None, Some(format!("{}\n", login(1)).as_bytes()), &["--threads", "256", "--batch", "1000000"]);
    assert_eq!(fired_lines(&ok.ok()), vec![1]);
}

/// A second connection holding the write lock of the store.
fn lock(db: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
    conn
}

#[test]
fn a_store_locked_by_another_process_is_reported_once_and_clearly() {
    let s = setup();
    herald(&["db", "init", "--db", &s.db], None).ok();
    let expect_locked = |out: &Out| {
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains("another process holds the lock on the store"), "{}", out.stderr);
        assert!(out.stderr.contains("--wait SECONDS"), "{}", out.stderr);
        assert_eq!(out.stderr.matches("store failed").count(), 0, "{}", out.stderr);
        assert_eq!(out.stderr.matches("another process").count(), 1, "{}", out.stderr);
    };

    // Locked before the run opens the store.
    let held = lock(&s.db);
    expect_locked(&s.run(None, Some(login(1).as_bytes()), &["--wait", "1"]));
    expect_locked(&herald(&["db", "load", "--db", &s.db, "--wait", "0", AUTHENTIK_FIXTURES], None));
    drop(held);

    // Locked while the run is going: the first event is committed (its
    // firing line is out), then another process takes the lock.
    let mut child = command(&["run", "--db", &s.db, "--wait", "1", &s.policy])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", login(1)).expect("write");
    stdin.flush().expect("flush");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the first firing");
    assert!(first.contains("\"line\":1"), "{first}");
    let held = lock(&s.db);
    writeln!(stdin, "{}", login(2)).expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    drop(held);
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    expect_locked(&out);
}

#[test]
fn wait_outlasts_a_lock_released_in_time() {
    let s = setup();
    herald(&["db", "init", "--db", &s.db], None).ok();
    let held = lock(&s.db);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        held.execute_batch("COMMIT").expect("release");
    });
    let out = s.run(None, Some(format!("{}\n", login(1)).as_bytes()), &["--wait", "60"]);
    release.join().expect("release thread");
    assert_eq!(fired_lines(&out.ok()), vec![1]);
}

#[cfg(unix)]
#[test]
fn run_and_db_take_paths_that_are_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = setup();
    let dir = s.tmp.path("");
    let events = dir.join(OsStr::from_bytes(b"events-\xff.ndjson"));
    std::fs::write(&events, text(&[login(1), "{bad".into()])).expect("write");
    let db = dir.join(OsStr::from_bytes(b"store-\xfe.db"));
    let status = |args: &[&OsStr]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .current_dir(root())
            .stdin(Stdio::null())
            .output()
            .expect("run herald");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = status(&[OsStr::new("db"), OsStr::new("init"), OsStr::new("--db"), db.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let policy = OsStr::new(&s.policy);
    let (code, out, err) = status(&[
        OsStr::new("run"),
        OsStr::new("--db"),
        db.as_os_str(),
        OsStr::new("--events"),
        events.as_os_str(),
        policy,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    // The dead letter names the input (lossily).
    let store = open_store(&db, None);
    let dead = table(&store.try_dump().expect("dump"), "herald_dead_letter");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["source"].as_str().map(|s| s.ends_with("events-\u{fffd}.ndjson")), Some(true), "{dead:?}");
}
