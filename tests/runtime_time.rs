//! Time end to end, with the real binary and both engines: duration
//! arithmetic on `event.created` in a `match` (JIT-compiled) and a guard,
//! `now()` pinned by `run --now`, durations printed in a notification body,
//! an out-of-range result as a rule error, and `--now` refusing a bad value.

mod runtime_support;

use runtime_support::*;
use serde_json::json;

const ENGINES: [&str; 2] = ["interp", "jit"];

fn login(n: u32, created: &str) -> String {
    json!({
        "event_uuid": format!("00000000-0000-4000-8000-{n:012}"),
        "action": "login",
        "created": created,
        "expires": "2026-05-14T08:00:30.5Z",
        "user": {"pk": 12},
    })
    .to_string()
}

const POLICY: &str = r#"
rule late_login {
  match login where event.created + 30m > "2026-04-14T08:00:00Z" and event.created - "2026-04-14T00:00:00Z" < 1d
  guard now() - event.created >= 1h and now() - event.created < 7d * 2
  action notify(to: 12, severity: "notice",
    body: "signed in {now() - event.created} ago, valid for {event.expires - event.created}, {-(now() - event.created)}, {now() - now()}")
}
"#;

#[test]
fn duration_arithmetic_now_and_printing_agree_in_both_engines() {
    let mut bodies_by_engine = Vec::new();
    for engine in ENGINES {
        let tmp = Tmp::new();
        let db = tmp.p("h.db");
        load(&db, None, AUTHENTIK_FIXTURES);
        let policy = tmp.write("late.herald", POLICY);
        let lines = [
            login(1, "2026-04-14T07:00:00Z"),      // + 30m is not after 08:00: no match
            login(2, "2026-04-14T07:45:00Z"),      // matches; 1h45m before `--now`
            login(3, "2026-04-14T09:00:00.25Z"),   // matches; 30m before `--now`: the guard stops it
            login(4, "2026-04-15T00:00:00Z"),      // exactly a day after midnight: no match
            login(5, "2026-04-14T08:10:00+02:00"), // 06:10 UTC: no match
        ];
        let events = tmp.write("events.ndjson", lines.join("\n") + "\n");
        let out = run(&db, &events, &["--engine", engine, "--now", "2026-04-14T09:30:00.25Z"], &[&policy]).ok();
        let fired: Vec<String> =
            out.stdout_lines().iter().map(|l| l["event_uuid"].as_str().unwrap().to_string()).collect();
        assert_eq!(fired, vec!["00000000-0000-4000-8000-000000000002"], "{engine}: {}", out.stdout);
        let dump = dump(&tmp.path("h.db"), None, None);
        assert!(table(&dump, "herald_rule_error").is_empty(), "{engine}");
        let bodies: Vec<String> =
            table(&dump, "herald_notification").iter().map(|n| n["body"].as_str().unwrap().to_string()).collect();
        assert_eq!(
            bodies,
            vec!["signed in 1h45m250ms ago, valid for 30d15m30s500ms, -1h45m250ms, 0s".to_string()],
            "{engine}"
        );
        bodies_by_engine.push(bodies);
    }
    assert_eq!(bodies_by_engine[0], bodies_by_engine[1]);
}

#[test]
fn the_time_rule_is_compiled_by_the_jit() {
    let tmp = Tmp::new();
    let policy = tmp.write("late.herald", POLICY);
    let out = herald(&["check", "--verbose", &policy], None).ok();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("rule late_login: match JIT-compiled"), "{text}");
}

#[test]
fn now_without_a_pin_reads_the_clock_and_a_pin_is_the_same_for_every_event() {
    for engine in ENGINES {
        let tmp = Tmp::new();
        let db = tmp.p("h.db");
        let policy = tmp.write(
            "now.herald",
            "rule stamp {\n  match login\n  action log(message: \"{now()} {now() - event.created}\")\n}\n",
        );
        let lines = [login(1, "2026-04-14T07:00:00Z"), login(2, "2026-04-14T08:00:00Z")];
        let events = tmp.write("events.ndjson", lines.join("\n") + "\n");
        let out = run(&db, &events, &["--engine", engine, "--now", "2030-01-01T01:00:00+01:00"], &[&policy]).ok();
        let logs: Vec<&str> = out.stderr.lines().filter(|l| l.contains("\"stamp\"")).collect();
        assert_eq!(logs.len(), 2, "{engine}: {}", out.stderr);
        assert!(logs[0].contains("\"2030-01-01T00:00:00Z 1357d17h\""), "{engine}: {}", logs[0]);
        assert!(logs[1].contains("\"2030-01-01T00:00:00Z 1357d16h\""), "{engine}: {}", logs[1]);
        // The epoch is a time like any other.
        let db3 = tmp.p("h3.db");
        let out = run(&db3, &events, &["--engine", engine, "--now", "1970-01-01T00:00:00Z"], &[&policy]).ok();
        assert!(out.stderr.contains("\"1970-01-01T00:00:00Z -20557d7h\""), "{engine}: {}", out.stderr);
        // Without `--now`: the clock, some time after 2026.
        let db2 = tmp.p("h2.db");
        let out = run(&db2, &events, &["--engine", engine], &[&policy]).ok();
        assert!(!out.stderr.contains("2030-01-01T00:00:00Z"), "{engine}: {}", out.stderr);
    }
}

#[test]
fn a_bad_now_is_a_usage_error() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    let policy = tmp.write("late.herald", POLICY);
    let events = tmp.write("events.ndjson", "");
    for bad in ["yesterday", "2026-04-14", "10000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", ""] {
        let out = run(&db, &events, &["--now", bad], &[&policy]).expect_code(2);
        assert!(out.stderr.contains("--now"), "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("RFC 3339"), "{bad}: {}", out.stderr);
    }
}

#[test]
fn an_out_of_range_time_is_a_rule_error_in_both_engines() {
    for engine in ENGINES {
        let tmp = Tmp::new();
        let db = tmp.p("h.db");
        let policy = tmp.write(
            "far.herald",
            r#"
rule far_match {
  match login where event.created - "0001-01-01T00:00:00Z" > 1d
  action log(message: "never")
}
rule far_guard {
  match login
  guard event.created + 106751d * 40 > now()
  action log(message: "never")
}
rule near {
  match login where event.created - "2026-01-01T00:00:00Z" > 1d
  action log(message: "fired")
}
"#,
        );
        let events = tmp.write("events.ndjson", login(1, "2026-04-14T07:00:00Z") + "\n");
        let out = run(&db, &events, &["--engine", engine, "--now", "2026-04-14T09:30:00Z"], &[&policy]).ok();
        assert_eq!(out.stdout_lines().len(), 1, "{engine}: {}", out.stdout);
        let dump = dump(&tmp.path("h.db"), None, None);
        let mut errors: Vec<(String, String)> = table(&dump, "herald_rule_error")
            .iter()
            .map(|r| (r["rule"].as_str().unwrap().to_string(), r["code"].as_str().unwrap().to_string()))
            .collect();
        errors.sort();
        assert_eq!(
            errors,
            vec![("far_guard".to_string(), "R0007".to_string()), ("far_match".to_string(), "R0007".to_string())],
            "{engine}"
        );
    }
}
