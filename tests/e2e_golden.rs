//! Golden end-to-end tests: the built binary runs each reference scenario
//! (and a custom non-authentik schema) over the example events; stdout, the
//! exit code and the normalised store are snapshotted. Each scenario runs
//! under both engines against the same snapshot.

mod runtime_support;

use runtime_support::*;

const ENGINES: [&str; 2] = ["interp", "jit"];

/// Run `policies` over `events` into a fresh store loaded with `fixtures`,
/// under `engine`; returns the text that is snapshotted.
fn scenario(engine: &str, schema: Option<&str>, fixtures: &str, events: &str, policies: &[&str]) -> String {
    let tmp = Tmp::new();
    let db = tmp.p("herald.db");
    load(&db, schema, fixtures);
    let mut extra = vec!["--engine", engine];
    if let Some(s) = schema {
        extra.extend(["--schema", s]);
    }
    let out = run(&db, events, &extra, policies);
    // A quiet run writes nothing but dead letters and rule errors to stderr.
    format!(
        "exit code: {}\n--- stdout\n{}--- stderr\n{}--- store\n{}",
        out.code,
        out.stdout,
        tmp.normalise(&out.stderr),
        dump(&tmp.path("herald.db"), schema, Some(&tmp))
    )
}

fn golden(name: &str, schema: Option<&str>, fixtures: &str, events: &str, policies: &[&str]) {
    let mut seen = Vec::new();
    for engine in ENGINES {
        let text = scenario(engine, schema, fixtures, events, policies);
        // Both engines are held to one snapshot.
        insta::assert_snapshot!(name, text);
        seen.push(text);
    }
    assert_eq!(seen[0], seen[1], "the engines disagree");
}

fn authentik(name: &str, policies: &[&str]) {
    golden(name, None, AUTHENTIK_FIXTURES, AUTHENTIK_EVENTS, policies);
}

#[test]
fn application_without_bindings() {
    authentik("application_without_bindings", &[AUTHENTIK_POLICIES[0]]);
}

#[test]
fn archive_ssh_keys() {
    authentik("archive_ssh_keys", &[AUTHENTIK_POLICIES[1]]);
}

#[test]
fn group_addition_history() {
    authentik("group_addition_history", &[AUTHENTIK_POLICIES[2]]);
}

#[test]
fn unknown_device_login() {
    authentik("unknown_device_login", &[AUTHENTIK_POLICIES[3]]);
}

#[test]
fn welcome_email() {
    authentik("welcome_email", &[AUTHENTIK_POLICIES[4]]);
}

#[test]
fn all_five_together() {
    authentik("all_five", &AUTHENTIK_POLICIES);
}

/// The windowed, throttled and sequence examples (`window`, `throttle`, `after`).
const STATEFUL_EXAMPLES: [&str; 4] = [
    "examples/authentik/brute_force.herald",
    "examples/authentik/password_spray.herald",
    "examples/authentik/takeover_suspect.herald",
    "examples/authentik/unknown_device_admin.herald",
];

#[test]
fn stateful_examples() {
    authentik("stateful_examples", &STATEFUL_EXAMPLES);
}

/// `after login ... within 15m`: bob changes his password 12m after a
/// sign-in from a new device (fires) and again 30m after it (does not);
/// alice's first change follows a known device (does not fire); her sign-in
/// from a new device arrives after her change at 10:40 but happened at
/// 10:31, so it completes the sequence for her change at 10:42 only.
#[test]
fn takeover_suspect_sequence() {
    golden(
        "takeover_suspect",
        None,
        AUTHENTIK_FIXTURES,
        "tests/runtime_data/takeover.ndjson",
        &["examples/authentik/takeover_suspect.herald"],
    );
}

/// The directory form takes the same files in name order: same result.
#[test]
fn all_examples_as_a_directory() {
    let mut all: Vec<&str> = AUTHENTIK_POLICIES.iter().chain(STATEFUL_EXAMPLES.iter()).copied().collect();
    all.sort();
    for engine in ENGINES {
        let a = scenario(engine, None, AUTHENTIK_FIXTURES, AUTHENTIK_EVENTS, &all);
        let b = scenario(engine, None, AUTHENTIK_FIXTURES, AUTHENTIK_EVENTS, &["examples/authentik"]);
        assert_eq!(a, b);
    }
}

#[test]
fn github_custom_schema() {
    golden(
        "github",
        Some("examples/github/schema.herald"),
        "examples/github/fixtures.json",
        "examples/github/events.ndjson",
        &["examples/github/policy.herald"],
    );
}
