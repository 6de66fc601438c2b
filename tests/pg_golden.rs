//! The reference scenarios of tests/e2e_golden.rs on both stores: the same
//! command lines on a SQLite file and on a PostgreSQL database (fixtures
//! loaded with `db load`, events run with `run`, through the binary) must
//! give the same exit code, stdout, stderr and normalised dump.
//!
//! JSON text in the dumps is compared with object keys sorted
//! (`store::pgent::normalise_dump`): `jsonb` keeps keys in its own order.

mod pg_support;
mod runtime_support;

use herald::compile::{self, SchemaChoice};
use herald::span::SourceMap;
use herald::store::{self, OpenOptions};
use pg_support::TestDb;
use runtime_support::*;
use std::path::Path;

/// Exit code, stdout, stderr and the dump of one scenario on `db` (a path or
/// a URL); `dump` reads the store afterwards.
fn scenario(db: &str, policies: &[&str], dump: impl Fn() -> String) -> String {
    herald(&["db", "load", "--db", db, AUTHENTIK_FIXTURES], None).ok();
    let out = run(db, AUTHENTIK_EVENTS, &["--engine", "interp"], policies);
    format!("exit code: {}\n--- stdout\n{}--- stderr\n{}--- store\n{}", out.code, out.stdout, out.stderr, dump())
}

fn pg_dump(url: &str) -> String {
    let mut sources = SourceMap::new();
    let (schema, _) = compile::compile_schema(&mut sources, SchemaChoice::Builtin);
    let s = store::open(Path::new(url), schema, OpenOptions::default()).expect("the PostgreSQL store opens");
    s.try_dump().expect("dump")
}

/// The schema fingerprint describes each backend's own table layout.
fn without_fingerprint(text: &str) -> String {
    text.lines().filter(|l| !l.contains("\"schema_fingerprint\"")).map(|l| format!("{l}\n")).collect()
}

fn both(tag: &str, policies: &[&str]) {
    let tmp = Tmp::new();
    let path = tmp.p("herald.db");
    let lite = scenario(&path, policies, || dump(&tmp.path("herald.db"), None, None));
    let db = TestDb::new(tag);
    let pg = scenario(&db.url, policies, || pg_dump(&db.url));
    let lite = without_fingerprint(&store::pgent::normalise_dump(&lite.replace(&path, "DB")));
    let pg = without_fingerprint(&store::pgent::normalise_dump(&pg.replace(&db.url, "DB")));
    if lite != pg {
        let diff = lite.lines().zip(pg.lines()).enumerate().find(|(_, (a, b))| a != b);
        panic!("SQLite and PostgreSQL differ; first difference (line, (SQLite, PostgreSQL)): {diff:?}");
    }
}

#[test]
fn application_without_bindings() {
    both("golden_app", &[AUTHENTIK_POLICIES[0]]);
}

#[test]
fn archive_ssh_keys() {
    both("golden_ssh", &[AUTHENTIK_POLICIES[1]]);
}

#[test]
fn group_addition_history() {
    both("golden_history", &[AUTHENTIK_POLICIES[2]]);
}

#[test]
fn unknown_device_login() {
    both("golden_device", &[AUTHENTIK_POLICIES[3]]);
}

#[test]
fn welcome_email() {
    both("golden_welcome", &[AUTHENTIK_POLICIES[4]]);
}

#[test]
fn all_five_together() {
    both("golden_all", &AUTHENTIK_POLICIES);
}

#[test]
fn stateful_examples() {
    both(
        "golden_stateful",
        &[
            "examples/authentik/brute_force.herald",
            "examples/authentik/password_spray.herald",
            "examples/authentik/takeover_suspect.herald",
            "examples/authentik/unknown_device_admin.herald",
        ],
    );
}

/// `db load` on PostgreSQL loads the fixtures, and a bad fixtures file is
/// refused with the same messages and exit code as on SQLite.
#[test]
fn db_load_on_postgres() {
    let db = TestDb::new("golden_load");
    let out = herald(&["db", "load", "--db", &db.url, AUTHENTIK_FIXTURES], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tmp = Tmp::new();
    let bad = tmp.write("bad.json", r#"{"User": [{"pk": "x", "username": "a"}], "Nope": []}"#);
    let pg = herald(&["db", "load", "--db", &db.url, &bad], None);
    let lite = herald(&["db", "load", "--db", &tmp.p("h.db"), &bad], None);
    assert_ne!(pg.code, 0);
    assert_eq!(pg.code, lite.code, "{}", pg.stderr);
    assert_eq!(pg.stderr.replace(&db.url, "DB"), lite.stderr.replace(&tmp.p("h.db"), "DB"));
}
