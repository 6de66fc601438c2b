//! Bad input lines become dead letters with their line number and a precise
//! reason; processing continues and nothing is lost.

mod runtime_support;

use runtime_support::*;
use serde_json::Value;

const POLICIES: [&str; 2] =
    ["examples/authentik/unknown_device_login.herald", "examples/authentik/welcome_email.herald"];

fn login(n: u32, known: &str) -> String {
    format!(
        r#"{{"event_uuid":"00000000-0000-4000-8000-{n:012}","action":"login","created":"2026-04-14T08:00:00Z","user":{{"pk":12}},"context":{{"auth_method":"password","auth_method_args":{{"known_device":{known}}}}}}}"#
    )
}

/// The input: (line bytes, expected dead-letter reason or None).
fn input() -> Vec<(Vec<u8>, Option<&'static str>)> {
    vec![
        (login(1, "false").into_bytes(), None),
        (br#"{"action": "login", "event_uuid": "#.to_vec(), Some("not valid JSON")),
        (b"{\"action\":\"login\",\"x\":\"caf\xc3\x28\"}".to_vec(), Some("invalid UTF-8 at byte 26")),
        (b"[1, 2, 3]".to_vec(), Some("the event is not a JSON object (found array)")),
        (b"\"just a string\"".to_vec(), Some("the event is not a JSON object (found string)")),
        (b"".to_vec(), None),
        (b"   \t ".to_vec(), None),
        // A value contradicting the schema where a rule reads it: a rule
        // error (R0006) of that rule, not a dead letter (LANGUAGE.md v1).
        (login(2, "\"no\"").into_bytes(), None),
        // Wrong type where no rule reads it: not a dead letter, and it fires.
        (login(3, "false").replace("\"password\"", "42").into_bytes(), None),
        // A type the schema does not declare: not matched, not a dead letter.
        (br#"{"event_uuid":"00000000-0000-4000-8000-000000000004","action":"totally_unknown","created":"2026-04-14T08:00:00Z"}"#.to_vec(), None),
        // A declared type no rule names: simply not matched.
        (br#"{"event_uuid":"00000000-0000-4000-8000-000000000005","action":"logout","created":"2026-04-14T08:00:00Z"}"#.to_vec(), None),
        // The identity of a matched event has the wrong type.
        (login(6, "false").replace("\"00000000-0000-4000-8000-000000000006\"", "6").into_bytes(), Some("`$.event_uuid`: expected uuid, found number 6")),
        // A rule reads a model pk through `any`: fine; its match reads
        // `context.model.app` as a string: here a number, a rule error.
        (br#"{"event_uuid":"00000000-0000-4000-8000-000000000007","action":"model_created","created":"2026-04-14T08:00:00Z","context":{"model":{"app":7,"model_name":"user","pk":31}}}"#.to_vec(), None),
        (b"{\"action\":\"login\"} trailing".to_vec(), Some("not valid JSON")),
        (login(8, "false").into_bytes(), None),
    ]
}

fn expected_dead(lines: &[(Vec<u8>, Option<&'static str>)]) -> Vec<(u64, &'static str)> {
    lines.iter().enumerate().filter_map(|(i, (_, r))| r.map(|r| (i as u64 + 1, r))).collect()
}

fn check_dead_letters(dump: &str, lines: &[(Vec<u8>, Option<&'static str>)], source: &str) {
    let dead = table(dump, "herald_dead_letter");
    let expect = expected_dead(lines);
    assert_eq!(dead.len(), expect.len(), "{dead:#?}");
    for (row, (line, reason)) in dead.iter().zip(&expect) {
        assert_eq!(row["line"], *line, "{row}");
        let error = row["error"].as_str().unwrap();
        assert!(error.contains(reason), "line {line}: `{error}` should say `{reason}`");
        assert_eq!(row["source"], source);
        let raw = String::from_utf8_lossy(&lines[*line as usize - 1].0).into_owned();
        assert_eq!(row["raw"], raw, "the raw line is kept");
    }
}

fn fired_lines(out: &Out) -> Vec<i64> {
    out.stdout_lines().iter().map(|l| l["line"].as_i64().unwrap()).collect()
}

fn joined(lines: &[(Vec<u8>, Option<&'static str>)], terminator: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    for (l, _) in lines {
        data.extend_from_slice(l);
        data.extend_from_slice(terminator);
    }
    data
}

#[test]
fn every_bad_line_is_a_dead_letter_and_the_rest_is_processed() {
    for engine in ["interp", "jit"] {
        let tmp = Tmp::new();
        let db = tmp.p("h.db");
        load(&db, None, AUTHENTIK_FIXTURES);
        let lines = input();
        let events = tmp.write("events.ndjson", joined(&lines, b"\n"));
        let out =
            herald(&["run", "--engine", engine, "--db", &db, "--events", &events, POLICIES[0], POLICIES[1]], None).ok();
        assert_eq!(fired_lines(&out), vec![1, 9, 15]);
        let dump = dump(&tmp.path("h.db"), None, Some(&tmp));
        check_dead_letters(&dump, &lines, "<tmp>/events.ndjson");
        // stderr names each dead letter with its line, and the summary counts
        // every non-blank line.
        for (line, _) in expected_dead(&lines) {
            assert!(out.stderr.contains(&format!("line {line}: dead letter")), "{}", out.stderr);
        }
        assert!(out.stderr.contains("herald: 13 events"), "{}", out.stderr);
        assert!(out.stderr.contains("dead letters: 6,"), "{}", out.stderr);
        // The two lines whose values contradict the schema are rule errors
        // of the rules that read them.
        let errors: Vec<(i64, String, String)> = table(&dump, "herald_rule_error")
            .iter()
            .map(|r| {
                let m = r["message"].as_str().unwrap();
                (
                    r["line"].as_i64().unwrap(),
                    r["rule"].as_str().unwrap().into(),
                    m.split(" (at ").next().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            errors,
            [
                (
                    8,
                    "unknown_device_login".to_string(),
                    "`$.context.auth_method_args.known_device` contradicts the schema: expected bool, found string \"no\""
                        .to_string()
                ),
                (
                    13,
                    "welcome_email".to_string(),
                    "`$.context.model.app` contradicts the schema: expected string, found number 7".to_string()
                ),
            ],
            "{engine}"
        );
    }
}

#[test]
fn crlf_line_ends_and_an_unterminated_last_line() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let lines = input();
    let mut data = joined(&lines, b"\r\n");
    // The last line, valid, has no terminator.
    data.truncate(data.len() - 2);
    let events = tmp.write("events.ndjson", &data);
    let out = run(&db, &events, &[], &POLICIES).ok();
    assert_eq!(fired_lines(&out), vec![1, 9, 15]);
    check_dead_letters(&dump(&tmp.path("h.db"), None, Some(&tmp)), &lines, "<tmp>/events.ndjson");
}

#[test]
fn an_unterminated_bad_last_line_is_a_dead_letter() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let mut data = login(1, "false").into_bytes();
    data.extend_from_slice(b"\n{\"action\":\"login\",\"event_uuid\":\"0000");
    let events = tmp.write("events.ndjson", &data);
    let out = run(&db, &events, &[], &POLICIES).ok();
    assert_eq!(fired_lines(&out), vec![1]);
    let dead = table(&dump(&tmp.path("h.db"), None, None), "herald_dead_letter");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["line"], 2);
    assert!(dead[0]["error"].as_str().unwrap().contains("not valid JSON"), "{}", dead[0]);
}

#[test]
fn standard_input_is_read_the_same_way() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let lines = input();
    let out = herald(&["run", "--quiet", "--db", &db, POLICIES[0], POLICIES[1]], Some(&joined(&lines, b"\n"))).ok();
    assert_eq!(fired_lines(&out), vec![1, 9, 15]);
    check_dead_letters(&dump(&tmp.path("h.db"), None, None), &lines, "-");
    // `--events -` is the same as no `--events`.
    let db2 = tmp.p("h2.db");
    load(&db2, None, AUTHENTIK_FIXTURES);
    let out2 = herald(
        &["run", "--quiet", "--db", &db2, "--events", "-", POLICIES[0], POLICIES[1]],
        Some(&joined(&lines, b"\n")),
    )
    .ok();
    assert_eq!(out.stdout, out2.stdout);
    assert_eq!(effects_dump(&tmp.path("h.db"), None), effects_dump(&tmp.path("h2.db"), None));
}

#[test]
fn a_huge_deep_line_is_a_dead_letter_not_a_crash() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    let deep = format!(
        r#"{{"action":"login","event_uuid":"00000000-0000-4000-8000-000000000001","context":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let big = format!(
        r#"{{"action":"login","event_uuid":"00000000-0000-4000-8000-000000000002","created":"2026-04-14T08:00:00Z","user":{{"pk":12}},"context":{{"auth_method_args":{{"known_device":false}},"x":"{}"}}}}"#,
        "y".repeat(3_000_000)
    );
    let events = tmp.write("events.ndjson", format!("{deep}\n{big}\n"));
    let out = run(&db, &events, &[], &POLICIES).ok();
    assert_eq!(fired_lines(&out), vec![2]);
    let dead: Vec<Value> = table(&dump(&tmp.path("h.db"), None, None), "herald_dead_letter");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["line"], 1);
    assert!(dead[0]["error"].as_str().unwrap().contains("nested deeper than"), "{}", dead[0]["error"]);
}

/// Two different inputs on standard input each have a bad line 2: both are
/// kept (the source name `-` does not tell them apart); replaying one of them
/// records nothing new.
#[test]
fn dead_letters_of_different_stdin_inputs_are_all_kept() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    let first = format!("{}\n{{bad one\n", login(1, "false"));
    let second = format!("{}\n[\"bad two\"]\n", login(2, "false"));
    for input in [&first, &second, &first] {
        herald(&["run", "--quiet", "--db", &db, POLICIES[0]], Some(input.as_bytes())).ok();
    }
    let dead = table(&dump(&tmp.path("h.db"), None, None), "herald_dead_letter");
    let raws: Vec<&str> = dead.iter().map(|d| d["raw"].as_str().unwrap()).collect();
    assert_eq!(raws, vec!["{bad one", "[\"bad two\"]"], "{dead:#?}");
    assert!(dead.iter().all(|d| d["line"] == 2 && d["source"] == "-"));
}

/// A UTF-8 byte order mark at the start of the input is not part of line 1.
#[test]
fn a_byte_order_mark_at_the_start_is_ignored() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    let mut data = b"\xef\xbb\xbf".to_vec();
    data.extend_from_slice(format!("{}\n{}\n", login(1, "false"), login(2, "false")).as_bytes());
    let events = tmp.write("events.ndjson", &data);
    let out = run(&db, &events, &[], &POLICIES).ok();
    assert_eq!(fired_lines(&out), vec![1, 2]);
    assert!(table(&dump(&tmp.path("h.db"), None, None), "herald_dead_letter").is_empty());
    // On standard input too, and a rerun resumes after the checkpoint.
    let db2 = tmp.p("h2.db");
    let out = herald(&["run", "--quiet", "--db", &db2, POLICIES[0]], Some(&data)).ok();
    assert_eq!(fired_lines(&out), vec![1, 2]);
    let again = herald(&["run", "--quiet", "--db", &db2, POLICIES[0]], Some(&data)).ok();
    assert_eq!(again.stdout, "");
    // A mark anywhere else is still bad JSON.
    let mut late = format!("{}\n", login(3, "false")).into_bytes();
    late.extend_from_slice(b"\xef\xbb\xbf{}\n");
    let events = tmp.write("late.ndjson", &late);
    run(&tmp.p("h3.db"), &events, &[], &POLICIES).ok();
    let dead = table(&dump(&tmp.path("h3.db"), None, None), "herald_dead_letter");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["line"], 2);
}
