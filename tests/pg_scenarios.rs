//! The five reference scenarios (examples/authentik) end to end on
//! PostgreSQL with Herald's own entity tables: the built binary loads the
//! fixtures and runs the policies over the example events with
//! `--db postgres://…`, and stdout and the store (normalised dump) equal
//! the same run on SQLite. Each scenario runs alone and all five together.

mod pg_support;
mod runtime_support;

use herald::store::pgent::normalise_dump;
use runtime_support::*;
use std::sync::Arc;

fn pg_dump(url: &str) -> String {
    let p = open_store_schema();
    let store = herald::store::open(std::path::Path::new(url), p, herald::store::OpenOptions::default())
        .expect("open the PostgreSQL store");
    store.try_dump().expect("dump")
}

fn open_store_schema() -> Arc<herald::schema::Schema> {
    let tmp = Tmp::new();
    let s = open_store(&tmp.path("schema.db"), None);
    s.schema().clone()
}

/// The dump without what is the backend's own: the schema fingerprint
/// (computed from each backend's DDL); JSON objects with sorted keys.
fn comparable(dump: &str) -> String {
    normalise_dump(dump).lines().filter(|l| !l.contains("\"schema_fingerprint\"")).map(|l| format!("{l}\n")).collect()
}

fn scenario(tag: &str, policies: &[&str]) {
    let tmp = Tmp::new();
    let lite = tmp.p("herald.db");
    load(&lite, None, AUTHENTIK_FIXTURES);
    let lite_out = run(&lite, AUTHENTIK_EVENTS, &[], policies);
    let lite_dump = dump(&tmp.path("herald.db"), None, Some(&tmp));

    let db = pg_support::TestDb::new(tag);
    herald(&["db", "init", "--db", &db.url], None).ok();
    load(&db.url, None, AUTHENTIK_FIXTURES);
    let pg_out = run(&db.url, AUTHENTIK_EVENTS, &[], policies);
    assert_eq!(pg_out.code, lite_out.code, "exit codes\nstderr: {}", pg_out.stderr);
    assert_eq!(pg_out.stdout, lite_out.stdout, "stdout (firing lines)");
    let pg = comparable(&pg_dump(&db.url));
    let lite = comparable(&lite_dump);
    assert_eq!(pg, lite, "the stores differ (PostgreSQL left, SQLite right)");
    assert!(!pg_out.stdout.is_empty() || tag.contains("none"), "the scenario fired nothing");
}

#[test]
fn application_without_bindings() {
    scenario("sc_app", &[AUTHENTIK_POLICIES[0]]);
}

#[test]
fn archive_ssh_keys() {
    scenario("sc_ssh", &[AUTHENTIK_POLICIES[1]]);
}

#[test]
fn group_addition_history() {
    scenario("sc_group", &[AUTHENTIK_POLICIES[2]]);
}

#[test]
fn unknown_device_login() {
    scenario("sc_device", &[AUTHENTIK_POLICIES[3]]);
}

#[test]
fn welcome_email() {
    scenario("sc_welcome", &[AUTHENTIK_POLICIES[4]]);
}

#[test]
fn all_five_together() {
    scenario("sc_all", &AUTHENTIK_POLICIES);
}
