//! `--mapping authentik` end to end on a real PostgreSQL server holding
//! authentik's tables (the reference DDL, 2026 layout and the 2025.8
//! layout with `authentik_core_user_ak_groups`): rows inserted as authentik
//! would (every NOT NULL column), the five reference scenarios run by the
//! built binary, and their effects read back from authentik's own tables:
//! attributes, memberships and notification rows equal what the same run
//! wrote to a SQLite store.

mod pg_support;
mod runtime_support;

use runtime_support::*;
use serde_json::{json, Value as J};
use std::collections::BTreeMap;

fn reference_ddl() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/authentik-postgres.sql")
}

fn membership_table(layout: Option<&str>) -> &'static str {
    if layout.is_some() {
        "authentik_core_user_ak_groups"
    } else {
        "authentik_core_user_groups"
    }
}

/// authentik's tables with the example fixtures, inserted as authentik
/// writes them.
fn authentik_db(tag: &str, layout: Option<&str>) -> pg_support::TestDb {
    let db = pg_support::TestDb::new(tag);
    db.run_sql_file(&reference_ddl(), layout);
    let fixtures: J = serde_json::from_str(&std::fs::read_to_string(root().join(AUTHENTIK_FIXTURES)).unwrap()).unwrap();
    let mut c = db.client();
    let last_updated = layout != Some("2025.2");
    for u in fixtures["User"].as_array().unwrap() {
        let sql = format!(
            "INSERT INTO authentik_core_user (id, password, username, first_name, last_name, email, is_active, \
             date_joined, uuid, name, password_change_date, attributes, path, type{}) \
             VALUES ($1::int, '!x', $2, '', '', $3, $4, now(), gen_random_uuid(), $5, now(), $6::text::jsonb, \
             coalesce($7, 'users'), coalesce($8, 'internal'){})",
            if last_updated { ", last_updated" } else { "" },
            if last_updated { ", now() - interval '1 day'" } else { "" }
        );
        let attrs = u.get("attributes").cloned().unwrap_or(json!({})).to_string();
        c.execute(
            sql.as_str(),
            &[
                &(u["pk"].as_i64().unwrap() as i32),
                &u["username"].as_str().unwrap(),
                &u["email"].as_str().unwrap(),
                &u["is_active"].as_bool().unwrap(),
                &u["name"].as_str().unwrap(),
                &attrs,
                &u.get("path").and_then(J::as_str),
                &u.get("type").and_then(J::as_str),
            ],
        )
        .unwrap();
    }
    let members = membership_table(layout);
    for g in fixtures["Group"].as_array().unwrap() {
        let pk = g["pk"].as_str().unwrap();
        c.execute(
            "INSERT INTO authentik_core_group (group_uuid, name, attributes, is_superuser) \
             VALUES ($1::text::uuid, $2, $3::text::jsonb, $4)",
            &[
                &pk,
                &g["name"].as_str().unwrap(),
                &g.get("attributes").cloned().unwrap_or(json!({})).to_string(),
                &g.get("is_superuser").and_then(J::as_bool).unwrap_or(false),
            ],
        )
        .unwrap();
        for u in g.get("users").and_then(J::as_array).into_iter().flatten() {
            c.execute(
                &format!("INSERT INTO {members} (user_id, group_id) VALUES ($1::int, $2::text::uuid)"),
                &[&(u.as_i64().unwrap() as i32), &pk],
            )
            .unwrap();
        }
    }
    for a in fixtures["Application"].as_array().unwrap() {
        let pk = a["pk"].as_str().unwrap();
        c.execute(
            "INSERT INTO authentik_policies_policybindingmodel (pbm_uuid, policy_engine_mode) VALUES ($1::text::uuid, 'any')",
            &[&pk],
        )
        .unwrap();
        c.execute(
            "INSERT INTO authentik_core_application (policybindingmodel_ptr_id, name, slug, meta_launch_url, \
             meta_description, meta_publisher, meta_icon, \"group\", open_in_new_tab) \
             VALUES ($1::text::uuid, $2, $3, coalesce($4, ''), '', '', '', coalesce($5, ''), false)",
            &[
                &pk,
                &a["name"].as_str().unwrap(),
                &a["slug"].as_str().unwrap(),
                &a.get("meta_launch_url").and_then(J::as_str),
                &a.get("group").and_then(J::as_str),
            ],
        )
        .unwrap();
    }
    for b in fixtures["PolicyBinding"].as_array().unwrap() {
        c.execute(
            "INSERT INTO authentik_policies_policybinding (policy_binding_uuid, enabled, \"order\", policy_id, target_id, \
             negate, timeout, group_id, user_id, failure_result) \
             VALUES ($1::text::uuid, $2, $3::int, $4::text::uuid, $5::text::uuid, $6, 30, $7::text::uuid, $8::int, false)",
            &[
                &b["pk"].as_str().unwrap(),
                &b.get("enabled").and_then(J::as_bool).unwrap_or(true),
                &(b.get("order").and_then(J::as_i64).unwrap_or(0) as i32),
                &b.get("policy").and_then(J::as_str),
                &b["target"].as_str().unwrap(),
                &b.get("negate").and_then(J::as_bool).unwrap_or(false),
                &b.get("group").and_then(J::as_str),
                &b.get("user").and_then(J::as_i64).map(|u| u as i32),
            ],
        )
        .unwrap();
    }
    db
}

/// User attributes by pk; group attributes and sorted members by pk;
/// notifications as sorted (user, severity, body).
type Effects = (BTreeMap<i64, J>, BTreeMap<String, (J, Vec<i64>)>, Vec<(i64, String, String)>);

fn sorted(v: &J) -> J {
    match v {
        J::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            J::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        J::Array(a) => J::Array(a.iter().map(sorted).collect()),
        o => o.clone(),
    }
}

/// What the run wrote, as seen in authentik's tables: user attributes by
/// pk, group attributes and sorted members by pk, notifications as
/// (user, severity, body) sorted.
fn effects_in_authentik(db: &pg_support::TestDb, layout: Option<&str>) -> Effects {
    let mut c = db.client();
    let users = c
        .query("SELECT id::bigint, attributes::text FROM authentik_core_user", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0), sorted(&serde_json::from_str(&r.get::<_, String>(1)).unwrap())))
        .collect();
    let members = membership_table(layout);
    let groups = c
        .query(
            &format!(
                "SELECT g.group_uuid::text, g.attributes::text, \
                 coalesce((SELECT array_agg(m.user_id::bigint ORDER BY m.user_id) FROM {members} m WHERE m.group_id = g.group_uuid), '{{}}') \
                 FROM authentik_core_group g"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                (sorted(&serde_json::from_str(&r.get::<_, String>(1)).unwrap()), r.get::<_, Vec<i64>>(2)),
            )
        })
        .collect();
    let mut notes: Vec<(i64, String, String)> = c
        .query("SELECT user_id::bigint, severity, body FROM authentik_events_notification WHERE NOT seen", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    notes.sort();
    (users, groups, notes)
}

/// The same effects from a SQLite store's dump.
fn effects_in_sqlite(dump: &str) -> Effects {
    let parse = |l: &J, k: &str| sorted(&serde_json::from_str(l[k].as_str().unwrap_or("{}")).unwrap_or(json!({})));
    let users = table(dump, "User").iter().map(|u| (u["pk"].as_i64().unwrap(), parse(u, "attributes"))).collect();
    let groups = table(dump, "Group")
        .iter()
        .map(|g| {
            let mut m: Vec<i64> = g["users"].as_array().unwrap().iter().map(|u| u.as_i64().unwrap()).collect();
            m.sort();
            (g["pk"].as_str().unwrap().to_string(), (parse(g, "attributes"), m))
        })
        .collect();
    let mut notes: Vec<(i64, String, String)> = table(dump, "herald_notification")
        .iter()
        .map(|n| {
            (n["user_pk"].as_i64().unwrap(), n["severity"].as_str().unwrap().into(), n["body"].as_str().unwrap().into())
        })
        .collect();
    notes.sort();
    (users, groups, notes)
}

fn scenario_on(layout: Option<&str>, tag: &str) {
    // The oracle: the same run on SQLite.
    let tmp = Tmp::new();
    let lite = tmp.p("herald.db");
    load(&lite, None, AUTHENTIK_FIXTURES);
    let lite_out = run(&lite, AUTHENTIK_EVENTS, &[], &AUTHENTIK_POLICIES);
    let want = effects_in_sqlite(&dump(&tmp.path("herald.db"), None, None));

    let db = authentik_db(tag, layout);
    // One event is in authentik's own table: its notifications point to it.
    let first_login = "c8a4c013-e149-424f-8ff5-b305fea58485";
    db.client()
        .execute(
            "INSERT INTO authentik_events_event (event_uuid, action, app, context, created, \"user\", expires, expiring, brand) \
             VALUES ($1::text::uuid, 'login', 'authentik.events', '{}', now(), '{}', now() + interval '365 days', true, '{}')",
            &[&first_login],
        )
        .unwrap();
    let before = effects_in_authentik(&db, layout);
    herald(&["db", "init", "--db", &db.url, "--mapping", "authentik"], None).ok();
    let out = run(&db.url, AUTHENTIK_EVENTS, &["--mapping", "authentik"], &AUTHENTIK_POLICIES);
    assert_eq!(out.code, lite_out.code, "stderr: {}", out.stderr);
    assert_eq!(out.stdout, lite_out.stdout, "firing lines");
    let got = effects_in_authentik(&db, layout);
    assert_ne!(got.0, before.0, "the run changed no user attributes");
    assert_eq!(got.0, want.0, "user attributes in authentik_core_user");
    assert_eq!(got.1, want.1, "group attributes and memberships");
    assert_eq!(got.2, want.2, "notifications (user, severity, body)");
    assert!(!got.2.is_empty());
    let mut c = db.client();
    // Notifications: unseen, with the event when authentik has it.
    let linked: i64 = c
        .query_one(
            "SELECT count(*) FROM authentik_events_notification WHERE event_id = $1::text::uuid",
            &[&first_login],
        )
        .unwrap()
        .get(0);
    assert_eq!(linked, 1, "the notification of an event in authentik's table points to it");
    // Herald set last_updated on the users it changed (2025.8+).
    let carol_updated: bool = c
        .query_one("SELECT last_updated > now() - interval '1 hour' FROM authentik_core_user WHERE id = 23", &[])
        .unwrap()
        .get(0);
    assert!(carol_updated, "last_updated of a user Herald wrote");
    let bob_untouched: bool = c
        .query_one("SELECT last_updated < now() - interval '1 hour' FROM authentik_core_user WHERE id = 15", &[])
        .unwrap()
        .get(0);
    assert!(bob_untouched, "last_updated of a user Herald did not write");
    // Herald's own records are in its schema, not authentik's.
    let firings: i64 = c.query_one("SELECT count(*) FROM herald.herald_firing", &[]).unwrap().get(0);
    assert!(firings > 0);
    let herald_entities: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'herald' AND table_name = 'User'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(herald_entities, 0, "no entity tables of Herald's own under the mapping");
}

#[test]
fn scenarios_on_authentik_2026() {
    scenario_on(None, "ak2026");
}

#[test]
fn scenarios_on_authentik_2025_8() {
    scenario_on(Some("2025.8"), "ak2025_8");
}

#[test]
fn db_init_names_what_is_missing() {
    let db = pg_support::TestDb::new("ak_missing");
    let out = herald(&["db", "init", "--db", &db.url, "--mapping", "authentik"], None);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("authentik_core_user"), "{}", out.stderr);
    // A database with authentik's tables but Django's own link table under
    // the new name (integer group_id) and no ak_groups table: refused.
    let db = pg_support::TestDb::new("ak_wrong_members");
    db.run_sql_file(&reference_ddl(), Some("2025.8"));
    db.client().batch_execute("DROP TABLE authentik_core_user_ak_groups").unwrap();
    let out = herald(&["db", "init", "--db", &db.url, "--mapping", "authentik"], None);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("membership"), "{}", out.stderr);
    // The mapping needs PostgreSQL.
    let tmp = Tmp::new();
    let out = herald(&["db", "init", "--db", &tmp.p("h.db"), "--mapping", "authentik"], None);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("PostgreSQL"), "{}", out.stderr);
}

/// Writes through the mapping: `upsert` of a user and an application gives
/// authentik's app defaults to the columns Herald does not model, and a
/// link to a user that does not exist is the rule's error (authentik's
/// foreign key), not a failed commit.
#[test]
fn upsert_fills_authentik_defaults() {
    let db = authentik_db("ak_upsert", None);
    let tmp = Tmp::new();
    let policy = tmp.write(
        "p.herald",
        r#"rule make {
  match model_created
  guard let g = Group["219b810c-f126-4f95-9602-18b89b2194b2"]
  action {
    upsert User[77] { username: "seven", name: "Seven", email: "seven@example.com", is_active: true, attributes: {team: "blue"} }
    upsert Application["7a1b2c3d4e5f40718293a4b5c6d7e8f9"] { name: "New app", slug: "new-app" }
    add 999 to g.users
  }
}
"#,
    );
    let events = tmp.write(
        "e.ndjson",
        json!({"event_uuid": "00000000-0000-4000-8000-000000000001", "action": "model_created", "created": "2026-04-14T08:00:00Z",
               "app": "authentik.core", "context": {"model": {"app": "authentik_core", "model_name": "user", "pk": 77, "name": "x"}}})
        .to_string()
            + "\n",
    );
    let out = run(&db.url, &events, &["--mapping", "authentik"], &[&policy]);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let mut c = db.client();
    let errors: i64 = c.query_one("SELECT count(*) FROM herald.herald_rule_error", &[]).unwrap().get(0);
    assert_eq!(errors, 1, "the link to user 999 fails the rule; stderr: {}", out.stderr);
    // The rule's writes rolled back with it.
    let n: i64 = c.query_one("SELECT count(*) FROM authentik_core_user WHERE id = 77", &[]).unwrap().get(0);
    assert_eq!(n, 0);
    // Without the bad link the rule writes authentik rows with its defaults.
    let policy = tmp.write(
        "q.herald",
        std::fs::read_to_string(&policy)
            .unwrap()
            .replace("    add 999 to g.users\n", "")
            .replace("rule make", "rule make2"),
    );
    // A new event: the first one is processed (replay protection).
    let events =
        tmp.write("e2.ndjson", std::fs::read_to_string(&events).unwrap().replace("000000000001", "000000000002"));
    run(&db.url, &events, &["--mapping", "authentik"], &[&policy]).ok();
    let r = c
        .query_one(
            "SELECT username, first_name, last_name, path, type, attributes::text, password LIKE '!%', uuid IS NOT NULL \
             FROM authentik_core_user WHERE id = 77",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "seven");
    assert_eq!(r.get::<_, String>(1), "");
    assert_eq!(r.get::<_, String>(3), "users");
    assert_eq!(r.get::<_, String>(4), "internal");
    assert_eq!(serde_json::from_str::<J>(&r.get::<_, String>(5)).unwrap(), json!({"team": "blue"}));
    assert!(r.get::<_, bool>(6), "an unusable password");
    let r = c
        .query_one(
            "SELECT a.slug, a.meta_launch_url, a.\"group\", p.policy_engine_mode FROM authentik_core_application a \
             JOIN authentik_policies_policybindingmodel p ON p.pbm_uuid = a.policybindingmodel_ptr_id \
             WHERE a.policybindingmodel_ptr_id = '7a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9'",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "new-app");
    assert_eq!(r.get::<_, String>(1), "");
    assert_eq!(r.get::<_, String>(3), "any");
}
