//! Replay protection and resumption: re-running an input applies nothing
//! twice, a repeated event id applies once, `--from-start` re-reads the
//! input but skips what was processed, and the batch size does not change
//! the result.

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
