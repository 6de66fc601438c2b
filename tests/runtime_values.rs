//! Event values at the edges, end to end with the real binary and both
//! engines: a value that contradicts the schema fails the rules that read it
//! (R0006), not the event; numbers too large for their field; timestamps
//! outside years 1 to 9999 in UTC; and `append` staying linear.

mod runtime_support;

use runtime_support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ENGINES: [&str; 2] = ["interp", "jit"];

fn errors(dump: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = table(dump, "herald_rule_error")
        .into_iter()
        .map(|r| {
            (
                r["event_uuid"].as_str().unwrap_or_default().to_string(),
                r["rule"].as_str().unwrap().to_string(),
                format!("{} {}", r["code"].as_str().unwrap(), r["message"].as_str().unwrap()),
            )
        })
        .collect();
    v.sort();
    v
}

fn fired(out: &Out) -> Vec<(String, String)> {
    let mut v: Vec<_> = out
        .stdout_lines()
        .iter()
        .map(|l| (l["event_uuid"].as_str().unwrap().to_string(), l["rule"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

/// Rules that read `context.geo.country` in each clause, beside the shipped
/// `unknown_device_login`, which does not read it.
const COUNTRY_RULES: &str = r#"
rule country_in_match {
  match login { context.geo.country: "DE" }
  action log("from Germany")
}
rule country_in_guard {
  match login
  guard event.context.geo.country != "DE"
  action log("not from Germany")
}
rule country_in_let {
  match login
  let c = event.context.geo.country
  action log("from {c}")
}
rule country_in_action {
  match login
  action log("from {event.context.geo.country}")
}
rule country_short_circuit {
  match login { context.auth_method_args.known_device: true } where event.context.geo.country == "DE"
  action log("known device in Germany")
}
"#;

#[test]
fn a_contradicting_value_fails_only_the_rules_that_read_it() {
    let uuid = "00000000-0000-4000-8000-000000000001";
    let login = json!({
        "event_uuid": uuid, "action": "login", "created": "2026-04-14T08:00:00Z",
        "user": {"pk": 12, "username": "alice"},
        "context": {"auth_method_args": {"known_device": false}, "geo": {"country": 276}},
    });
    for engine in ENGINES {
        let tmp = Tmp::new();
        let db = tmp.p("h.db");
        load(&db, None, AUTHENTIK_FIXTURES);
        let policy = tmp.write("country.herald", COUNTRY_RULES);
        let events = tmp.write("events.ndjson", format!("{login}\n"));
        let out =
            run(&db, &events, &["--engine", engine], &["examples/authentik/unknown_device_login.herald", &policy]).ok();
        let dump = dump(&tmp.path("h.db"), None, Some(&tmp));
        assert!(table(&dump, "herald_dead_letter").is_empty(), "{engine}: not a dead letter: {dump}");
        // The rule that does not read the value still runs and fires.
        assert_eq!(fired(&out), vec![(uuid.to_string(), "unknown_device_login".to_string())], "{engine}");
        assert_eq!(table(&dump, "herald_notification").len(), 1, "{engine}");
        // Each rule that reads it records R0006 naming the path; the one
        // whose match is false before it reads the value does not.
        let errs = errors(&dump);
        let rules: Vec<&str> = errs.iter().map(|(_, r, _)| r.as_str()).collect();
        assert_eq!(rules, ["country_in_action", "country_in_guard", "country_in_let", "country_in_match"], "{engine}");
        for (event, rule, message) in &errs {
            assert_eq!(event, uuid);
            assert!(
                message.starts_with(
                    "R0006 `$.context.geo.country` contradicts the schema: expected string, found number 276 (at "
                ),
                "{engine} {rule}: {message}"
            );
        }
        assert!(out.stderr.contains("rule `country_in_match` failed: R0006"), "{engine}: {}", out.stderr);
    }
}

const SCHEMA: &str = r#"
discriminator kind
identity id
event * { id: string }
event ping { n: int?, f: float?, t: timestamp?, note: any?, a: any? }
entity Thing key pk: int { seen: timestamp?, history: any }
"#;

const PING_RULES: &str = r#"
rule reads_n {
  match ping { n: n }
  action log("n {n}")
}
rule reads_f {
  match ping
  guard event.f != null
  action log("f {event.f}")
}
rule reads_a {
  match ping { a: a }
  action log("a {a}")
}
rule reads_t {
  match ping { t: t }
  guard let th = Thing[1]
  action set th.seen = t
}
rule reads_note {
  match ping { note: note }
  guard let th = Thing[1]
  action set th.seen = note
}
rule always {
  match ping
  action log("always")
}
"#;

struct Pinged {
    out: Out,
    dump: String,
}

fn ping(engine: &str, lines: &[String]) -> Pinged {
    let tmp = Tmp::new();
    let schema = tmp.write("schema.herald", SCHEMA);
    let db = tmp.p("h.db");
    load(&db, Some(&schema), &tmp.write("things.json", r#"{"Thing": [{"pk": 1, "history": {}}]}"#));
    let policy = tmp.write("ping.herald", PING_RULES);
    let events = tmp.write("events.ndjson", lines.join("\n") + "\n");
    let out = run(&db, &events, &["--engine", engine, "--schema", &schema], &[&policy]).ok();
    let dump = dump(&tmp.path("h.db"), Some(&schema), Some(&tmp));
    Pinged { out, dump }
}

fn ping_line(id: &str, fields: &str) -> String {
    let sep = if fields.is_empty() { "" } else { "," };
    format!(r#"{{"kind":"ping","id":"{id}"{sep}{fields}}}"#)
}

fn always_fires(out: &Out, ids: &[&str]) {
    let fired = fired(out);
    for id in ids {
        assert!(fired.contains(&(id.to_string(), "always".to_string())), "{id}: {fired:?}");
    }
}

#[test]
fn numbers_too_large_fail_the_rules_that_read_them_and_nothing_else() {
    let lines = [
        // Unread: any JSON number is fine.
        ping_line("unread", r#""unused":1e400,"deep":{"x":[-1e999]},"big":18446744073709551617,"n":1"#),
        ping_line("int", r#""n":18446744073709551617"#),
        ping_line("float", r#""f":1e400"#),
        ping_line("any", r#""a":{"x":[1e400]}"#),
    ];
    for engine in ENGINES {
        let r = ping(engine, &lines);
        assert!(table(&r.dump, "herald_dead_letter").is_empty(), "{engine}: {}", r.dump);
        always_fires(&r.out, &["unread", "int", "float", "any"]);
        assert!(fired(&r.out).contains(&("unread".to_string(), "reads_n".to_string())), "{engine}");
        let errs: Vec<(String, String, String)> = errors(&r.dump);
        let want = [
            (
                "any",
                "reads_a",
                "R0006 `$.a` contradicts the schema: expected any, found object with a number out of range",
            ),
            (
                "float",
                "reads_f",
                "R0006 `$.f` contradicts the schema: expected float, found number 1e400 (out of range)",
            ),
            (
                "int",
                "reads_n",
                "R0006 `$.n` contradicts the schema: expected int, found number 18446744073709551617 (out of range)",
            ),
        ];
        assert_eq!(errs.len(), want.len(), "{engine}: {errs:?}");
        for ((event, rule, message), (we, wr, wm)) in errs.iter().zip(want) {
            assert_eq!((event.as_str(), rule.as_str()), (we, wr), "{engine}");
            assert!(message.starts_with(wm), "{engine}: {message}");
        }
    }
}

#[test]
fn timestamps_outside_years_1_to_9999_never_reach_the_store() {
    let lines = [
        ping_line("valid", r#""t":"2026-01-02T03:04:05.123456789+01:00""#),
        // Valid RFC 3339, but year 10000 and year 0 in UTC.
        ping_line("late", r#""t":"9999-12-31T23:59:59-23:59""#),
        ping_line("early", r#""t":"0000-01-01T00:00:00+23:59""#),
        // The same texts as strings (read through `any`) `set` into a
        // timestamp column.
        ping_line("late_note", r#""note":"9999-12-31T23:59:59-23:59""#),
        ping_line("early_note", r#""note":"0000-01-01T00:00:00+23:59""#),
    ];
    for engine in ENGINES {
        let r = ping(engine, &lines);
        assert!(table(&r.dump, "herald_dead_letter").is_empty(), "{engine}: {}", r.dump);
        always_fires(&r.out, &["valid", "late", "early", "late_note", "early_note"]);
        // The valid time was stored; nothing after it overwrote it.
        let things = table(&r.dump, "Thing");
        assert_eq!(things[0]["seen"], json!("2026-01-02T02:04:05.123456Z"), "{engine}: {things:?}");
        let errs = errors(&r.dump);
        let got: Vec<(&str, &str, &str)> =
            errs.iter().map(|(e, r, m)| (e.as_str(), r.as_str(), m.split(" (at ").next().unwrap())).collect();
        assert_eq!(
            got,
            [
                (
                    "early",
                    "reads_t",
                    r#"R0006 `$.t` contradicts the schema: expected timestamp, found string "0000-01-01T00:00:00+23:59""#
                ),
                (
                    "early_note",
                    "reads_note",
                    r#"R0001 `Thing.seen` is timestamp; cannot set it to string "0000-01-01T00:00:00+23:59""#
                ),
                (
                    "late",
                    "reads_t",
                    r#"R0006 `$.t` contradicts the schema: expected timestamp, found string "9999-12-31T23:59:59-23:59""#
                ),
                (
                    "late_note",
                    "reads_note",
                    r#"R0001 `Thing.seen` is timestamp; cannot set it to string "9999-12-31T23:59:59-23:59""#
                ),
            ],
            "{engine}"
        );
    }
}

/// Time `herald run` of one `model_updated` event that adds `n` users to a
/// group, with the shipped `group_addition_history` rule (one `append` per
/// user); checks the history has all `n` entries in order.
fn group_history_run(n: usize) -> Duration {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    let group = "6a7a6ed4-26a4-4ec6-b0b8-2f1b3c1d0a11";
    let users: Vec<Value> = (1..=n)
        .map(|pk| {
            json!({"pk": pk, "username": format!("u{pk}"), "name": "U", "email": format!("u{pk}@example.com"),
                   "is_active": true, "attributes": {}})
        })
        .collect();
    let fixtures =
        json!({"User": users, "Group": [{"pk": group, "name": "g", "attributes": {"keep": 1}, "users": []}]});
    load(&db, None, &tmp.write("fixtures.json", fixtures.to_string()));
    let added: Vec<usize> = (1..=n).collect();
    let event = json!({
        "event_uuid": "00000000-0000-4000-8000-0000000000aa", "action": "model_updated",
        "created": "2026-04-14T08:00:00Z",
        "context": {"model": {"app": "authentik_core", "model_name": "group", "pk": group.replace('-', "")},
                    "diff": {"users": {"add": added}}},
    });
    let events = tmp.write("events.ndjson", format!("{event}\n"));
    let start = Instant::now();
    run(&db, &events, &[], &["examples/authentik/group_addition_history.herald"]).ok();
    let took = start.elapsed();
    let dump = dump(&tmp.path("h.db"), None, Some(&tmp));
    let g = &table(&dump, "Group")[0];
    let attributes: Value = match &g["attributes"] {
        Value::String(text) => serde_json::from_str(text).expect("JSON attributes"),
        other => other.clone(),
    };
    let history = attributes["UserAddedHistory"].as_array().unwrap_or_else(|| panic!("a history list: {g}"));
    assert_eq!(history.len(), n);
    assert_eq!(history[0], json!("2026-04-14T08:00:00Z - Added user: u1"));
    assert_eq!(history[n - 1], json!(format!("2026-04-14T08:00:00Z - Added user: u{n}")));
    assert_eq!(attributes["keep"], json!(1));
    took
}

#[test]
fn appends_in_one_event_grow_linearly() {
    // Warm up (page cache, binary), then the better of two runs per size.
    group_history_run(200);
    let best = |n| (0..2).map(|_| group_history_run(n)).min().unwrap();
    let small = best(2_000);
    let large = best(8_000);
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-3);
    // 4× the appends: linear is about 4×, quadratic 16×.
    assert!(ratio < 8.0, "2,000 appends: {small:?}, 8,000: {large:?} (ratio {ratio:.1})");
}
