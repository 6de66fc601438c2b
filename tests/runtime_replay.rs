//! Replay protection and resumption: re-running an input applies nothing
//! twice, a repeated event id applies once, `--from-start` re-reads the
//! input but skips what was processed, the batch size does not change the
//! result, and each rule applies once per event: a rule added later is
//! skipped (and counted) on processed events unless `--backfill`.

mod runtime_support;

use runtime_support::*;

/// Policies without `group_addition_history`'s growing list, plus it, on
/// a store loaded with the example fixtures.
fn fresh(tmp: &Tmp, name: &str) -> String {
    let db = tmp.p(name);
    load(&db, None, AUTHENTIK_FIXTURES);
    db
}

fn firing_count(out: &Out) -> usize {
    out.stdout.lines().count()
}

#[test]
fn re_running_the_same_input_applies_nothing_twice() {
    let tmp = Tmp::new();
    let db = fresh(&tmp, "h.db");
    let events = tmp.write("events.ndjson", generated_events(3));
    let first = run(&db, &events, &[], &AUTHENTIK_POLICIES).ok();
    assert!(firing_count(&first) > 0);
    let after_first = dump(&tmp.path("h.db"), None, Some(&tmp));

    // Same input again: resumes after the checkpoint, nothing to do.
    let second = run(&db, &events, &[], &AUTHENTIK_POLICIES).ok();
    assert_eq!(second.stdout, "");
    assert_eq!(dump(&tmp.path("h.db"), None, Some(&tmp)), after_first);

    // From the start: every event is read again but each was processed.
    let third = run(&db, &events, &["--from-start"], &AUTHENTIK_POLICIES).ok();
    assert_eq!(third.stdout, "");
    assert_eq!(dump(&tmp.path("h.db"), None, Some(&tmp)), after_first);

    // The same events under another file name: same event ids, nothing new.
    let copy = tmp.write("copy.ndjson", generated_events(3));
    let fourth = run(&db, &copy, &[], &AUTHENTIK_POLICIES).ok();
    assert_eq!(fourth.stdout, "");
    assert_eq!(effects_dump(&tmp.path("h.db"), None), {
        let t = Tmp::new();
        let d = fresh(&t, "x.db");
        run(&d, &events, &[], &AUTHENTIK_POLICIES).ok();
        effects_dump(&t.path("x.db"), None)
    });
}

#[test]
fn re_running_an_input_with_dead_letters_records_them_once() {
    let tmp = Tmp::new();
    let db = fresh(&tmp, "h.db");
    let mut text = generated_events(1);
    text.push_str("{not json\n[1]\n");
    let events = tmp.write("events.ndjson", &text);
    run(&db, &events, &[], &AUTHENTIK_POLICIES).ok();
    let once = dump(&tmp.path("h.db"), None, Some(&tmp));
    assert_eq!(table(&once, "herald_dead_letter").len(), 2);
    run(&db, &events, &["--from-start"], &AUTHENTIK_POLICIES).ok();
    assert_eq!(dump(&tmp.path("h.db"), None, Some(&tmp)), once);
}

#[test]
fn a_repeated_event_id_is_applied_once() {
    let tmp = Tmp::new();
    let db = fresh(&tmp, "h.db");
    // The example events, then all of them again (same ids) in one input.
    let once = generated_events(1);
    let events = tmp.write("events.ndjson", format!("{once}{once}"));
    let mut args = vec!["run", "--db", &db, "--events", &events];
    args.extend(AUTHENTIK_POLICIES);
    let out = herald(&args, None).ok();

    let t2 = Tmp::new();
    let db2 = fresh(&t2, "h.db");
    let single = t2.write("events.ndjson", &once);
    let reference = run(&db2, &single, &[], &AUTHENTIK_POLICIES).ok();
    assert_eq!(out.stdout, reference.stdout, "the repeats fire nothing");
    assert_eq!(effects_dump(&tmp.path("h.db"), None), effects_dump(&t2.path("h.db"), None));
    // Every event of the first copy that fired or failed is skipped in the second.
    let processed = table(&dump(&t2.path("h.db"), None, None), "herald_processed").len();
    assert!(processed >= reference.stdout.lines().count().min(1));
    assert!(out.stderr.contains(&format!("duplicate events skipped: {processed}\n")), "{}", out.stderr);
}

#[test]
fn a_run_resumes_after_its_checkpoint_when_the_input_grows() {
    let tmp = Tmp::new();
    let db = fresh(&tmp, "h.db");
    let all = generated_events(2);
    let lines: Vec<&str> = all.lines().collect();
    let half = lines.len() / 2;
    let events = tmp.write("events.ndjson", lines[..half].join("\n") + "\n");
    let a = run(&db, &events, &[], &AUTHENTIK_POLICIES).ok();
    tmp.write("events.ndjson", all.clone());
    let b = run(&db, &events, &[], &AUTHENTIK_POLICIES).ok();
    // Lines are numbered in the whole input, not from the resume point.
    let first_b = b.stdout_lines().first().map(|l| l["line"].as_i64().unwrap()).unwrap_or(0);
    assert!(first_b > half as i64, "{first_b} after {half}");

    let t2 = Tmp::new();
    let db2 = fresh(&t2, "h.db");
    let whole = t2.write("events.ndjson", &all);
    let reference = run(&db2, &whole, &[], &AUTHENTIK_POLICIES).ok();
    assert_eq!(format!("{}{}", a.stdout, b.stdout), reference.stdout);
    assert_eq!(effects_dump(&tmp.path("h.db"), None), effects_dump(&t2.path("h.db"), None));
}

#[test]
fn an_input_that_does_not_continue_the_checkpoint_is_read_again_from_its_first_line() {
    let tmp = Tmp::new();
    let db = fresh(&tmp, "h.db");
    let all = generated_events(2);
    let events = tmp.write("events.ndjson", &all);
    run(&db, &events, &[], &AUTHENTIK_POLICIES).ok();
    // Same first line, but the checkpointed line changed, and an extra new
    // event that fires: the input is read from its first line, and only the
    // new event applies anything.
    let mut lines: Vec<String> = all.lines().map(String::from).collect();
    let n = lines.len();
    lines[n - 1] = lines[n - 1].replace("\"action\"", "\"zzz\":1,\"action\"");
    let extra = generated_events(3).lines().nth(2 * 46).unwrap().to_string();
    lines.push(extra);
    let text = lines.join("\n") + "\n";
    tmp.write("events.ndjson", &text);
    // `herald run` with the five policies, from `--events` or standard input.
    let run_all = |db: &str, events: Option<&str>, stdin: Option<&[u8]>| {
        let mut args = vec!["run", "--db", db];
        if let Some(e) = events {
            args.extend(["--events", e]);
        }
        args.extend(AUTHENTIK_POLICIES);
        herald(&args, stdin)
    };
    let again = run_all(&db, Some(&events), None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("reading it from its first line"), "{}", again.stderr);
    for l in again.stdout_lines() {
        assert_eq!(l["line"].as_i64().unwrap(), n as i64 + 1, "{l}");
    }
    assert_eq!(again.stdout_lines().len(), 1, "{}", again.stdout);
    // The same on standard input.
    let t2 = Tmp::new();
    let db2 = fresh(&t2, "h.db");
    let piped = run_all(&db2, None, Some(all.as_bytes()));
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    let piped_again = run_all(&db2, None, Some(text.as_bytes()));
    assert_eq!(piped_again.code, 0, "{}", piped_again.stderr);
    assert_eq!(piped_again.stdout_lines().len(), 1, "{}", piped_again.stdout);
}

#[test]
fn batch_sizes_do_not_change_the_store() {
    let events = generated_events(20);
    let mut dumps = Vec::new();
    let mut outs = Vec::new();
    for batch in ["1", "7", "100000"] {
        let tmp = Tmp::new();
        let db = fresh(&tmp, "h.db");
        let path = tmp.write("events.ndjson", &events);
        let out = run(&db, &path, &["--batch", batch], &AUTHENTIK_POLICIES).ok();
        outs.push(out.stdout);
        dumps.push(dump(&tmp.path("h.db"), None, Some(&tmp)));
    }
    assert_eq!(dumps[0], dumps[1]);
    assert_eq!(dumps[0], dumps[2]);
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);
    assert!(table(&dumps[0], "herald_firing").len() > 40);
}

/// A rule that fires on every login: with it, login events are processed
/// (recorded) before `unknown_device_login` is added.
const EVERY_LOGIN: &str =
    "rule every_login {\n  match login\n  action notify(to: event.user.pk, severity: \"notice\", body: \"login\")\n}\n";
const UNKNOWN_DEVICE: &str = "examples/authentik/unknown_device_login.herald";

/// A dump's lines sorted: the same rows whatever order they were written in.
fn sorted(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(String::from).collect();
    v.sort();
    v
}

/// `herald run` (with its summary) of `policies` with extra arguments.
fn run_loud(db: &str, events: &str, extra: &[&str], policies: &[&str]) -> Out {
    let mut args = vec!["run", "--db", db, "--events", events];
    args.extend_from_slice(extra);
    args.extend_from_slice(policies);
    herald(&args, None).ok()
}

/// Exactly once per (event, rule): a rule added later is not applied to
/// events already processed (the summary counts the pairs), `--backfill`
/// applies it to them once, and no rule is ever applied twice — not after
/// it was removed and added again either.
#[test]
fn a_rule_added_later_is_skipped_and_counted_or_backfilled_once() {
    let tmp = Tmp::new();
    let db = fresh(&tmp, "h.db");
    let every = tmp.write("every_login.herald", EVERY_LOGIN);
    let events = tmp.write("events.ndjson", generated_events(2));

    // The reference: both rules from the start, on a fresh store.
    let t2 = Tmp::new();
    let ref_db = fresh(&t2, "h.db");
    let reference = run(&ref_db, &events, &[], &[&every, UNKNOWN_DEVICE]).ok();
    let udl_firings: Vec<String> =
        reference.stdout.lines().filter(|l| l.contains("\"unknown_device_login\"")).map(String::from).collect();
    assert!(udl_firings.len() >= 4, "{}", reference.stdout);

    // First only `every_login`: every login event is processed.
    let first = run(&db, &events, &[], &[&every]).ok();
    assert!(first.stdout_lines().len() > udl_firings.len());

    // The rule added: the input is done (checkpoint), and read again from
    // its first line it applies nothing: the pairs are counted instead.
    let resumed = run_loud(&db, &events, &[], &[&every, UNKNOWN_DEVICE]);
    assert_eq!(resumed.stdout, "");
    let again = run_loud(&db, &events, &["--from-start"], &[&every, UNKNOWN_DEVICE]);
    assert_eq!(again.stdout, "");
    let n = udl_firings.len();
    assert!(
        again.stderr.contains(&format!("  {n} (rule, event) pairs skipped: rules new to already-processed events")),
        "{}",
        again.stderr
    );

    // `--backfill` reads the input from its first line (not from the
    // checkpoint) and applies the new rule, and only it, to those events.
    let backfill = run_loud(&db, &events, &["--backfill"], &[&every, UNKNOWN_DEVICE]);
    assert!(!backfill.stderr.contains("resumed after line"), "{}", backfill.stderr);
    assert_eq!(backfill.stdout.lines().map(String::from).collect::<Vec<_>>(), udl_firings);
    assert!(backfill.stderr.contains(&format!("backfill: {n} (rule, event) pairs applied")), "{}", backfill.stderr);
    // The store now holds what a run of both rules from the start holds.
    assert_eq!(sorted(&effects_dump(&tmp.path("h.db"), None)), sorted(&effects_dump(&t2.path("h.db"), None)));
    let done = dump(&tmp.path("h.db"), None, Some(&tmp));

    // Nothing is applied twice: another backfill, a plain re-read, the rule
    // removed, then added again alone.
    for (extra, policies) in [
        (&["--backfill"][..], &[&every[..], UNKNOWN_DEVICE][..]),
        (&["--from-start"][..], &[&every[..], UNKNOWN_DEVICE][..]),
        (&["--backfill"][..], &[&every[..]][..]),
        (&["--backfill"][..], &[UNKNOWN_DEVICE][..]),
    ] {
        let out = run_loud(&db, &events, extra, policies);
        assert_eq!(out.stdout, "", "{extra:?} {policies:?}");
        assert!(!out.stderr.contains("pairs skipped"), "{}", out.stderr);
        assert!(!out.stderr.contains("backfill:"), "{}", out.stderr);
    }
    let after = dump(&tmp.path("h.db"), None, Some(&tmp));
    assert_eq!(table(&after, "herald_notification"), table(&done, "herald_notification"));
    assert_eq!(table(&after, "herald_firing"), table(&done, "herald_firing"));
}

/// Records written before rule sets existed (no `rule_set`) count as
/// "every rule applied": an upgraded store applies nothing twice.
#[test]
fn records_from_before_rule_sets_count_as_every_rule_applied() {
    let tmp = Tmp::new();
    let db = fresh(&tmp, "h.db");
    let events = tmp.write("events.ndjson", generated_events(1));
    let first = run(&db, &events, &[], &AUTHENTIK_POLICIES).ok();
    assert!(!first.stdout.is_empty());
    // An old store: the column empty, as `ALTER TABLE ADD COLUMN` leaves it.
    let conn = rusqlite::Connection::open(tmp.path("h.db")).unwrap();
    conn.execute("UPDATE herald_processed SET rule_set = NULL", []).unwrap();
    drop(conn);
    let every = tmp.write("every_login.herald", EVERY_LOGIN);
    let mut all: Vec<&str> = AUTHENTIK_POLICIES.to_vec();
    all.push(&every);
    let again = run_loud(&db, &events, &["--backfill"], &all);
    // Only events never processed see the new rule.
    let processed: Vec<String> = table(&dump(&tmp.path("h.db"), None, None), "herald_processed")
        .iter()
        .filter(|r| r["rule_set"].is_null())
        .map(|r| r["event_key"].as_str().unwrap().to_string())
        .collect();
    assert!(!processed.is_empty());
    for l in again.stdout_lines() {
        assert!(!processed.contains(&l["event_uuid"].as_str().unwrap().to_string()), "{l}");
    }
}

/// `--threads N` gives the same store and the same firing lines for every
/// N, on an input of several chunks (the reader hands 1 MiB chunks to the
/// workers), with dead letters and blank lines among the events.
#[test]
fn thread_counts_do_not_change_the_result() {
    let mut text = String::new();
    for (i, l) in generated_events(200).lines().enumerate() {
        text.push_str(l);
        text.push('\n');
        if i % 1009 == 0 {
            text.push_str("{\"action\": \"login\", broken\n\n");
        }
    }
    assert!(text.len() > 4 << 20, "several chunks: {} bytes", text.len());
    let mut results = Vec::new();
    for threads in ["1", "2", "3", "7"] {
        let tmp = Tmp::new();
        let db = fresh(&tmp, "h.db");
        let path = tmp.write("events.ndjson", &text);
        let out = run(&db, &path, &["--threads", threads], &AUTHENTIK_POLICIES).ok();
        results.push((threads, out.stdout, dump(&tmp.path("h.db"), None, Some(&tmp))));
    }
    let (_, stdout, store) = &results[0];
    assert!(stdout.lines().count() > 1_000, "the runs do real work");
    assert!(table(store, "herald_dead_letter").len() >= 9);
    for (threads, out, dumped) in &results[1..] {
        assert!(out == stdout, "--threads {threads}: other firing lines than --threads 1");
        assert!(dumped == store, "--threads {threads}: another store than --threads 1");
    }
}

/// A store made before rule sets gains the `rule_set` column on open, its
/// records kept (and read as "every rule applied", above).
#[test]
fn an_older_store_gains_the_rule_set_column() {
    let tmp = Tmp::new();
    let conn = rusqlite::Connection::open(tmp.path("old.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE herald_processed (event_key TEXT PRIMARY KEY, line INTEGER, processed_at TEXT NOT NULL) \
         WITHOUT ROWID; INSERT INTO herald_processed VALUES ('e1', 3, '2026-04-14T08:02:07.000000Z');",
    )
    .unwrap();
    drop(conn);
    let store = open_store(&tmp.path("old.db"), None);
    assert_eq!(store.processed_rule_set("e1").unwrap(), Some(None));
    assert_eq!(store.processed_rule_set("e2").unwrap(), None);
    // Rule sets are sets: order and repeats do not matter.
    let a = store.rule_set_id(&["b", "a"]).unwrap();
    assert_eq!(store.rule_set_id(&["a", "b", "a"]).unwrap(), a);
    assert_ne!(store.rule_set_id(&["a"]).unwrap(), a);
    assert_eq!(store.rule_set(a).unwrap(), vec!["a".to_string(), "b".to_string()]);
}
