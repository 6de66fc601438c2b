//! `herald trace` and `herald diff`: snapshots of a trace for each way a
//! rule can stop (and one that fires), trace's verdicts against `run`'s
//! firings, a policy change whose flipped events are computed here
//! independently, and neither command changing the store.

mod runtime_support;

use runtime_support::*;
use serde_json::Value;
use std::collections::BTreeSet;

const POLICY: &str = "tests/trace_data/policy.herald";
const EVENTS: &str = "tests/trace_data/events.ndjson";
const NOW: &str = "2026-04-14T09:00:00Z";
const TAKEOVER: &str = "examples/authentik/takeover_suspect.herald";
const TAKEOVER_EVENTS: &str = "tests/runtime_data/takeover.ndjson";
const BRUTE_FORCE: &str = "examples/authentik/brute_force.herald";

fn store(tmp: &Tmp) -> String {
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    db
}

/// The store's data files (the database and its write-ahead log), each with
/// a hash of its bytes. (`-shm` is SQLite's shared-memory index, which every
/// reader of a WAL database updates: it holds no data. An empty WAL is the
/// same store as none, and SQLite removes an empty one when the last
/// connection closes, even a read-only one.)
fn store_bytes(db: &str) -> Vec<(String, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-journal"] {
        let p = format!("{db}{suffix}");
        if let Ok(b) =
            std::fs::read(&p).and_then(|b| if b.is_empty() { Err(std::io::ErrorKind::NotFound.into()) } else { Ok(b) })
        {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            b.hash(&mut h);
            out.push((p, b.len(), h.finish()));
        }
    }
    out
}

fn trace(db: &str, line: &str, rule: &str, format: &str) -> String {
    let args = [
        "trace", "--db", db, "--events", EVENTS, "--line", line, "--rule", rule, "--now", NOW, "--format", format,
        POLICY,
    ];
    herald(&args, None).ok().stdout
}

#[test]
fn trace_snapshots_for_each_way_a_rule_stops_and_for_a_firing() {
    let tmp = Tmp::new();
    let db = store(&tmp);
    for (name, line, rule) in [
        ("pattern_miss", "2", "password_login"),
        ("guard_miss", "1", "senior_login"),
        ("query_miss", "1", "night_shift_login"),
        ("guard_let_miss", "3", "senior_login"),
        ("fired", "1", "record_login"),
    ] {
        insta::assert_snapshot!(format!("trace_{name}_human"), trace(&db, line, rule, "human"));
        let json: Value = serde_json::from_str(&trace(&db, line, rule, "json")).expect("trace JSON");
        insta::assert_json_snapshot!(format!("trace_{name}_json"), json);
    }
}

/// `n` failed sign-ins for one account, a minute apart.
fn failures(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "{{\"event_uuid\":\"00000000-0000-4000-8000-{i:012x}\",\"action\":\"login_failed\",\
                 \"created\":\"2026-04-14T08:{i:02}:00Z\",\"client_ip\":\"10.0.0.9\",\"context\":{{\"username\":\"alice\"}}}}\n"
            )
        })
        .collect()
}

#[test]
fn trace_snapshots_for_a_window_below_its_threshold_and_a_held_throttle() {
    let tmp = Tmp::new();
    let db = store(&tmp);
    let events = tmp.write("failures.ndjson", failures(6));
    let trace = |line: &str, format: &str| {
        let args = [
            "trace",
            "--db",
            &db,
            "--events",
            &events,
            "--line",
            line,
            "--rule",
            "brute_force",
            "--now",
            NOW,
            "--format",
            format,
            BRUTE_FORCE,
        ];
        herald(&args, None).ok().stdout
    };
    // Line 3: three failures in the window, five needed.
    let human = trace("3", "human");
    assert!(human.contains("count = 3: `count >= 5` is false"), "{human}");
    insta::assert_snapshot!("trace_window_below_threshold_human", human);
    let json: Value = serde_json::from_str(&trace("3", "json")).unwrap();
    let w = &json["events"][0]["rules"][0]["stopped_by"]["window"];
    assert_eq!((w["value"].as_i64(), w["limit"].as_i64(), w["op"].as_str()), (Some(3), Some(5), Some(">=")));
    insta::assert_json_snapshot!("trace_window_below_threshold_json", json);
    // Line 5 fires (the window holds five); line 6 passes the window and
    // is held back by the throttle.
    let json: Value = serde_json::from_str(&trace("5", "json")).unwrap();
    assert_eq!(json["events"][0]["rules"][0]["verdict"], "fired");
    assert_eq!(json["events"][0]["rules"][0]["clauses"][1]["window"]["value"], 5);
    assert_eq!(json["events"][0]["rules"][0]["clauses"][2]["throttle"]["suppressed"], 0);
    let human = trace("6", "human");
    assert!(human.contains("count = 6: `count >= 5` holds"), "{human}");
    assert!(human.contains("already fired for this key"), "{human}");
    insta::assert_snapshot!("trace_throttle_held_human", human);
}

#[test]
fn trace_json_names_the_failing_operands() {
    let tmp = Tmp::new();
    let db = store(&tmp);
    let j: Value = serde_json::from_str(&trace(&db, "2", "password_login", "json")).unwrap();
    let rule = &j["events"][0]["rules"][0];
    assert_eq!(rule["fired"], false);
    let d = &rule["stopped_by"]["detail"];
    assert_eq!(d["kind"], "compare");
    assert_eq!(d["left"]["expr"], "event.context.auth_method");
    assert_eq!(d["left"]["value"], "source");
    assert_eq!(d["right"]["value"], "password");
    // An absent field is said to be absent, not null.
    let j: Value = serde_json::from_str(&trace(&db, "3", "password_login", "json")).unwrap();
    assert_eq!(
        j["events"][0]["rules"][0]["stopped_by"]["detail"]["left"]["value"],
        serde_json::json!({"absent": true})
    );
    // Asked for by name only, a rule is traced on the events of its type.
    let out =
        herald(&["trace", "--db", &db, "--events", EVENTS, "--rule", "record_login", "--format", "json", POLICY], None)
            .ok();
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    let lines: Vec<u64> = j["events"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [1, 2, 3]);
    // Asked for on an event of another type, it says which types it takes.
    let j: Value = serde_json::from_str(&trace(&db, "4", "record_login", "json")).unwrap();
    let d = &j["events"][0]["rules"][0]["stopped_by"]["detail"];
    assert_eq!(d["kind"], "event_type");
    assert_eq!((d["found"].as_str(), d["expected"][0].as_str()), (Some("logout"), Some("login")));
}

#[test]
fn trace_and_diff_never_write_the_store() {
    let tmp = Tmp::new();
    let db = store(&tmp);
    let before = store_bytes(&db);
    assert!(!before.is_empty());
    // Every event and rule, including ones that set fields and notify.
    let out = herald(&["trace", "--db", &db, "--events", EVENTS, POLICY], None).ok();
    assert!(out.stdout.contains("fired"), "{}", out.stdout);
    assert_eq!(store_bytes(&db), before, "trace changed the store");
    let new = tmp.write("new.herald", std::fs::read_to_string(root().join(POLICY)).unwrap().replace("> 20", "> 10"));
    herald(&["diff", "--db", &db, "--events", EVENTS, POLICY, &new], None).expect_code(1);
    assert_eq!(store_bytes(&db), before, "diff changed the store");
    // Nothing left behind in the temporary directory by either command.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("herald-scratch-{}-", std::process::id())))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn trace_refuses_a_missing_store_and_an_unknown_rule() {
    let tmp = Tmp::new();
    let missing = tmp.p("missing.db");
    let out = herald(&["trace", "--db", &missing, "--events", EVENTS, POLICY], None).expect_code(2);
    assert!(out.stderr.contains("no such file"), "{}", out.stderr);
    assert!(!tmp.path("missing.db").exists(), "trace created the store");
    let out = herald(&["trace", "--events", EVENTS, "--rule", "senior_logn", POLICY], None).expect_code(2);
    assert!(out.stderr.contains("no rule `senior_logn`") && out.stderr.contains("senior_login"), "{}", out.stderr);
}

/// (line, rule) pairs.
type Pairs = BTreeSet<(u64, String)>;

/// (line, rule) pairs: fired and failed, per `trace --format json`.
fn traced(db: &str, events: &str, policies: &[&str]) -> (Pairs, Pairs) {
    let mut args = vec!["trace", "--db", db, "--events", events, "--limit", "1000000", "--format", "json"];
    args.extend_from_slice(policies);
    let j: Value = serde_json::from_str(&herald(&args, None).ok().stdout).unwrap();
    assert_eq!(j["omitted"], 0);
    let (mut fired, mut failed) = (BTreeSet::new(), BTreeSet::new());
    for e in j["events"].as_array().unwrap() {
        if e["skipped"] == true || !e["dead_letter"].is_null() {
            continue;
        }
        for r in e["rules"].as_array().unwrap() {
            let k = (e["line"].as_u64().unwrap(), r["rule"].as_str().unwrap().to_string());
            match r["verdict"].as_str().unwrap() {
                "fired" => fired.insert(k),
                "error" => failed.insert(k),
                _ => false,
            };
        }
    }
    (fired, failed)
}

/// The same pairs, per `run` (firing lines on stdout, rule errors on stderr).
fn ran(db: &str, events: &str, policies: &[&str]) -> (Pairs, Pairs) {
    let mut args = vec!["run", "--db", db, "--events", events];
    args.extend_from_slice(policies);
    let out = herald(&args, None).ok();
    let fired = out
        .stdout_lines()
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["rule"].as_str().unwrap().to_string()))
        .collect();
    let failed = out
        .stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("herald: line ")?;
            let (n, rest) = rest.split_once(": rule `")?;
            let (rule, _) = rest.split_once("` failed")?;
            Some((n.parse().ok()?, rule.to_string()))
        })
        .collect();
    (fired, failed)
}

#[test]
fn trace_verdicts_equal_run_firings_over_a_corpus() {
    let tmp = Tmp::new();
    let many = tmp.write("many.ndjson", generated_events(3));
    let corpus: Vec<(&str, Vec<&str>)> = vec![
        (AUTHENTIK_EVENTS, AUTHENTIK_POLICIES.to_vec()),
        (&many, AUTHENTIK_POLICIES.to_vec()),
        (EVENTS, vec![POLICY]),
        // `after`: trace must record the events the clause watches as `run`
        // does, or the sequence never completes.
        (TAKEOVER_EVENTS, vec![TAKEOVER]),
    ];
    for (i, (events, policies)) in corpus.iter().enumerate() {
        let a = store(&tmp);
        let (t_fired, t_failed) = traced(&a, events, policies);
        let b = tmp.p(&format!("run{i}.db"));
        load(&b, None, AUTHENTIK_FIXTURES);
        let (r_fired, r_failed) = ran(&b, events, policies);
        assert!(!r_fired.is_empty());
        assert_eq!(t_fired, r_fired, "fired pairs differ on {events}");
        assert_eq!(t_failed, r_failed, "rule errors differ on {events}");
        std::fs::remove_file(&a).ok();
    }
}

const USERS: [i64; 9] = [2, 4, 12, 15, 23, 31, 44, 47, 99];

/// Logins (every third with a password) and logouts over the fixture
/// users and one unknown user.
fn login_events(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let pk = USERS[i % USERS.len()];
        let action = if i % 4 == 3 { "logout" } else { "login" };
        let method = if i % 3 == 0 { "password" } else { "source" };
        out.push_str(&format!(
            "{{\"event_uuid\":\"00000000-0000-4000-8000-{i:012x}\",\"action\":\"{action}\",\
             \"created\":\"2026-04-14T08:00:00Z\",\"client_ip\":\"10.0.0.{}\",\"user\":{{\"pk\":{pk}}},\
             \"context\":{{\"auth_method\":\"{method}\"}}}}\n",
            i % 250
        ));
    }
    out
}

#[test]
fn diff_reports_exactly_the_flipped_and_changed_events() {
    let tmp = Tmp::new();
    let db = store(&tmp);
    let n = 200;
    let events = tmp.write("events.ndjson", login_events(n));
    let old = std::fs::read_to_string(root().join(POLICY)).unwrap();
    // Loosen a guard, reword a log message, add a rule.
    let new = old.replace("u.pk > 20", "u.pk > 13").replace("password login by", "password sign-in by")
        + "\nrule logout_seen {\n  match logout { user.pk: _ }\n  action log(message: \"bye\", level: \"debug\")\n}\n";
    let new = tmp.write("new.herald", new);
    let out =
        herald(&["diff", "--db", &db, "--events", &events, "--format", "json", POLICY, &new], None).expect_code(1);
    let j: Value = serde_json::from_str(&out.stdout).unwrap();

    // Independently: which lines flip, from the fixtures (user 15 is the
    // only active user with 13 < pk <= 20; user 23 is inactive).
    let (mut senior, mut password, mut logout) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for i in 0..n {
        let line = i as u64 + 1;
        let login = i % 4 != 3;
        if login && USERS[i % USERS.len()] == 15 {
            senior.insert(line);
        }
        if login && i % 3 == 0 {
            password.insert(line);
        }
        if !login {
            logout.insert(line);
        }
    }
    let mut got: [BTreeSet<u64>; 3] = Default::default();
    for e in j["differences"].as_array().unwrap() {
        let line = e["line"].as_u64().unwrap();
        // The event named is the one on that line.
        assert_eq!(e["event"], format!("00000000-0000-4000-8000-{:012x}", line - 1));
        for r in e["rules"].as_array().unwrap() {
            let slot = match r["rule"].as_str().unwrap() {
                "senior_login" => {
                    assert_eq!((r["old"]["fired"].as_bool(), r["new"]["fired"].as_bool()), (Some(false), Some(true)));
                    0
                }
                "password_login" => {
                    let first = &r["first_difference"];
                    assert_eq!(first["index"], 0);
                    assert!(first["new"]["log"]["message"].as_str().unwrap().starts_with("password sign-in by"));
                    1
                }
                "logout_seen" => 2,
                other => panic!("unexpected rule {other} on line {line}"),
            };
            got[slot].insert(line);
        }
    }
    assert_eq!(got[0], senior);
    assert_eq!(got[1], password);
    assert_eq!(got[2], logout);
    let all: BTreeSet<u64> = senior.iter().chain(&password).chain(&logout).copied().collect();
    assert_eq!(j["differing"].as_u64().unwrap() as usize, all.len());
    assert_eq!(j["events"], n as u64);
    let rules = &j["rules"];
    assert_eq!(rules["senior_login"]["new_only"], senior.len() as u64);
    assert_eq!(rules["senior_login"]["old_only"], 0);
    assert_eq!(
        rules["senior_login"]["fired_new"].as_u64().unwrap() - rules["senior_login"]["fired_old"].as_u64().unwrap(),
        senior.len() as u64
    );
    assert_eq!(rules["password_login"]["changed"], password.len() as u64);
    assert_eq!(rules["logout_seen"]["in_old"], false);
    assert_eq!(rules["logout_seen"]["new_only"], logout.len() as u64);
    assert_eq!(rules["record_login"]["changed"], 0);

    // The human form: one line per change, then the totals.
    let out = herald(&["diff", "--db", &db, "--events", &events, POLICY, &new], None).expect_code(1);
    let first = senior.iter().next().unwrap();
    assert!(out.stdout.contains(&format!("line {first} (event ")), "{}", out.stdout);
    assert!(out.stdout.contains("rule senior_login: silent -> fired"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("{} events differ out of {n}", all.len())), "{}", out.stdout);
}

#[test]
fn diff_of_a_policy_with_itself_exits_zero_and_bad_input_exits_two() {
    let tmp = Tmp::new();
    let db = store(&tmp);
    let events = tmp.write("events.ndjson", login_events(50));
    let out = herald(&["diff", "--db", &db, "--events", &events, POLICY, POLICY], None).ok();
    assert!(out.stdout.contains("0 events differ out of 50"), "{}", out.stdout);
    // The same rules in other files, reordered: still no difference.
    let dir = tmp.path("old");
    std::fs::create_dir(&dir).unwrap();
    for p in AUTHENTIK_POLICIES {
        std::fs::copy(root().join(p), dir.join(std::path::Path::new(p).file_name().unwrap())).unwrap();
    }
    let joined: String =
        AUTHENTIK_POLICIES.iter().rev().map(|p| std::fs::read_to_string(root().join(p)).unwrap()).collect();
    let new = tmp.write("joined.herald", joined);
    herald(&["diff", "--db", &db, "--events", AUTHENTIK_EVENTS, &dir.display().to_string(), &new], None).ok();
    // A policy that does not compile is a usage error, not a difference.
    let bad = tmp.write("bad.herald", "rule r { match login { user.pk: 1 } action log(message: x) }\n");
    let out = herald(&["diff", "--events", &events, POLICY, &bad], None).expect_code(2);
    assert!(out.stderr.contains("does not compile"), "{}", out.stderr);
    herald(&["diff", "--events", &tmp.p("nope.ndjson"), POLICY, POLICY], None).expect_code(2);
}

/// `after` in `diff`: the events the clause watches are recorded on each
/// side as `run` records them, so the sequence rule's firings are `run`'s.
#[test]
fn diff_sees_after_rules_fire_where_run_does() {
    let tmp = Tmp::new();
    let db = store(&tmp);
    let run_db = tmp.p("run.db");
    load(&run_db, None, AUTHENTIK_FIXTURES);
    let (r_fired, _) = ran(&run_db, TAKEOVER_EVENTS, &[TAKEOVER]);
    let lines: BTreeSet<u64> = r_fired.iter().map(|(l, _)| *l).collect();
    assert!(!lines.is_empty());
    // Old: the same rule with a window too short for any pair in the input.
    let old = std::fs::read_to_string(root().join(TAKEOVER)).unwrap().replace("within 15m", "within 1s");
    let old = tmp.write("old.herald", old);
    let out = herald(&["diff", "--db", &db, "--events", TAKEOVER_EVENTS, "--format", "json", &old, TAKEOVER], None)
        .expect_code(1);
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    let t = &j["rules"]["takeover_suspect"];
    assert_eq!((t["fired_old"].as_u64(), t["fired_new"].as_u64()), (Some(0), Some(lines.len() as u64)));
    let differing: BTreeSet<u64> =
        j["differences"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(differing, lines);
    // Against itself: the same firings on both sides, no difference.
    let out =
        herald(&["diff", "--db", &db, "--events", TAKEOVER_EVENTS, "--format", "json", TAKEOVER, TAKEOVER], None).ok();
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["rules"]["takeover_suspect"]["fired_old"], lines.len() as u64);
    assert_eq!(j["differing"], 0);
}
