//! `db load` fixtures: happy path, merge and replace, every error kind,
//! all-or-nothing.

mod store_support;
use herald::store::{LoadError, LoadMode, Store};
use herald::value::{parse_uuid, Value};
use std::sync::Arc;
use store_support::*;

mod runtime_support;
use runtime_support::{herald as cli, Tmp, AUTHENTIK_EVENTS, AUTHENTIK_FIXTURES};

fn file_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("h.db"), Arc::new(authentik_schema())).unwrap();
    (dir, s)
}

fn errors(store: &mut Store, json: &str) -> Vec<String> {
    store.load_fixtures(json).unwrap_err().iter().map(LoadError::to_string).collect()
}

#[test]
fn loads_authentik_fixtures() {
    let (_d, mut s) = file_store();
    let stats = s.load_fixtures(&authentik_fixtures()).unwrap();
    assert_eq!(
        stats.rows,
        vec![("User".to_string(), 4), ("Group".into(), 2), ("Application".into(), 2), ("PolicyBinding".into(), 1)]
    );
    assert_eq!(stats.links, 3);
    assert_eq!(stats.total(), 9);
    assert_eq!(
        stats.to_string(),
        "loaded 4 User rows, 2 Group rows, 2 Application rows, 1 PolicyBinding row and 3 links"
    );

    let alice = s.lookup(USER, &Value::Int(12)).unwrap().unwrap();
    assert_eq!(alice.key, Value::Int(12));
    assert_eq!(alice.fields[0], Value::str("alice"));
    assert_eq!(alice.fields[3], Value::Bool(true));
    assert_eq!(alice.fields[4].get("level"), Value::Int(3));
    assert_eq!(alice.fields[5], Value::str("internal"));
    assert_eq!(alice.fields[6], Value::Null);
    let bob = s.lookup(USER, &Value::Int(31)).unwrap().unwrap();
    assert_eq!(bob.fields[3], Value::Bool(false));
    assert_eq!(bob.fields[4], Value::Null);

    // uuid keys are stored canonical: the hex key reads back dashed.
    let pk: String = s.connection().query_row("SELECT pk FROM \"Group\" WHERE name = 'ops'", [], |r| r.get(0)).unwrap();
    assert_eq!(pk, "0b7e2f6a-9c3d-4e5f-8a1b-2c3d4e5f6a7b");
    let target: String = s.connection().query_row("SELECT target FROM \"PolicyBinding\"", [], |r| r.get(0)).unwrap();
    assert_eq!(target, GRAFANA);
    let ops = s.lookup(GROUP, &Value::str(OPS_HEX)).unwrap().unwrap();
    assert_eq!(ops.key, Value::Uuid(parse_uuid(OPS_HEX).unwrap()));
    assert_eq!(ops.fields[3], Value::Absent, "many-to-many fields are placeholders");
    let members: Vec<Value> = s.related(GROUP, &Value::str(ADMINS), 3).unwrap().iter().map(|r| r.key.clone()).collect();
    assert_eq!(members, vec![Value::Int(1), Value::Int(12)]);
}

#[test]
fn rows_upsert_by_key_and_replace_fields_and_links() {
    let (_d, mut s) = file_store();
    s.load_fixtures(&authentik_fixtures()).unwrap();
    // `--replace`: the file's row is the whole row.
    // alice loses her type and attributes, the admins group gets user 31 only.
    let again = format!(
        r#"{{"User": [{{"pk": 12, "username": "alice2", "name": "Alice", "email": "a@x", "is_active": false}}],
            "Group": [{{"pk": "{}", "name": "authentik Admins", "users": [31]}}]}}"#,
        ADMINS.replace('-', "").to_uppercase()
    );
    let stats = s.load_fixtures_with(&again, LoadMode::Replace).unwrap();
    assert_eq!(stats.total(), 2);
    let alice = s.lookup(USER, &Value::Int(12)).unwrap().unwrap();
    assert_eq!(alice.fields[0], Value::str("alice2"));
    assert_eq!(alice.fields[4], Value::Null);
    assert_eq!(alice.fields[5], Value::Null);
    let count: i64 = s.connection().query_row("SELECT count(*) FROM \"Group\"", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 2, "the upper-case hex key found the dashed row");
    let members: Vec<Value> = s.related(GROUP, &Value::str(ADMINS), 3).unwrap().iter().map(|r| r.key.clone()).collect();
    assert_eq!(members, vec![Value::Int(31)]);
}

#[test]
fn malformed_json_reports_line_and_column() {
    let (_d, mut s) = file_store();
    let errs = s.load_fixtures("{\n  \"User\": [\n    {\"pk\": 1,,}\n  ]\n}").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].line, errs[0].column), (Some(3), Some(14)));
    assert!(errs[0].to_string().contains("line 3 column 14"), "{}", errs[0]);
    let errs = errors(&mut s, "[1, 2]");
    assert!(errs[0].contains("expected an object of entity arrays"), "{errs:?}");
}

#[test]
fn reports_every_problem_with_its_place() {
    let (_d, mut s) = file_store();
    let json = r#"{
      "user": [],
      "Gruop": [],
      "Widget": [],
      "Application": {"pk": 1},
      "User": [
        {"pk": 1, "username": "a", "name": "A", "email": "a@x", "is_active": true, "emial": "x"},
        {"username": "b", "name": "B", "email": "b@x", "is_active": true},
        {"pk": "abc", "username": "c", "name": "C", "email": "c@x", "is_active": true},
        {"pk": 4, "name": "D", "email": "d@x", "is_active": "yes"},
        {"pk": 5, "username": null, "name": "E", "email": "e@x", "is_active": true},
        {"pk": 1, "username": "a2", "name": "A", "email": "a@x", "is_active": true},
        "not a row"
      ],
      "Group": [
        {"pk": "6d1c4a3e-58f2-4b7a-9a43-2b9f0f5a1c01", "name": "g0", "users": [1]},
        {"pk": "6d1c4a3e-58f2-4b7a-9a43-2b9f0f5a1c02", "name": "g1", "users": 7},
        {"pk": "6d1c4a3e-58f2-4b7a-9a43-2b9f0f5a1c03", "name": "g2", "users": [1, "x", 99]},
        {"pk": "not-a-uuid", "name": "g3"}
      ],
      "PolicyBinding": [
        {"pk": "11111111-2222-4333-8444-555555555555", "target": "zz", "order": 1.5}
      ]
    }"#;
    let errs = errors(&mut s, json);
    let expect = [
        "user: unknown entity; did you mean `User`?",
        "Gruop: unknown entity; did you mean `Group`?",
        "Widget: unknown entity; the entities are `User`, `Group`, `Application`, `PolicyBinding`",
        "Application: expected an array of rows, found an object",
        "User[0].emial: unknown field of `User`; did you mean `email`? (row key 1)",
        "User[1].pk: missing key",
        "User[2].pk: expected int (the key), found string \"abc\"",
        "User[3].username: missing required field (row key 4)",
        "User[3].is_active: expected bool, found string \"yes\" (row key 4)",
        "User[4].username: a required field cannot be null (row key 5)",
        "User[5]: duplicate key pk 1 (also row 0)",
        "User[6]: expected an object, found string \"not a row\"",
        "Group[1].users: expected an array of `User` keys, found number 7",
        "Group[2].users[1]: expected int (User key), found string \"x\"",
        "Group[3].pk: invalid uuid \"not-a-uuid\" (uuid (the key): 32 hex digits, dashed or not)",
        "PolicyBinding[0].target: invalid uuid \"zz\" (uuid: 32 hex digits, dashed or not)",
        "PolicyBinding[0].order: expected int, found number 1.5",
    ];
    for e in expect {
        assert!(errs.iter().any(|x| x.starts_with(e)), "missing {e:?} in\n{}", errs.join("\n"));
    }
    // The dangling link of Group[2] is not reported: that row already failed.
    assert_eq!(errs.len(), expect.len(), "{}", errs.join("\n"));
    // All or nothing: user 1 and group g0 were valid but nothing was written.
    let n: i64 = s.connection().query_row("SELECT count(*) FROM \"User\"", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
    assert!(!s.in_transaction());
}

#[test]
fn dangling_links_and_bad_timestamps_are_errors() {
    let schema = schema_of(vec![
        entity("User", ("pk", herald::types::Ty::Int), &[("seen", herald::types::Ty::Timestamp.optional())]),
        entity(
            "Group",
            ("pk", herald::types::Ty::String),
            &[
                ("users", herald::types::Ty::Entity(herald::types::EntityId(0)).list()),
                ("tags", herald::types::Ty::String.list()),
            ],
        ),
    ]);
    let mut s = Store::open_in_memory(Arc::new(schema)).unwrap();
    let errs = errors(
        &mut s,
        r#"{"User": [{"pk": 1, "seen": "yesterday"}, {"pk": 2, "seen": "2026-04-14T10:02:07+02:00"}],
            "Group": [{"pk": "g", "users": [2, 3], "tags": ["a", 1]}, {"pk": "h", "users": [2, 4], "tags": []}]}"#,
    );
    assert_eq!(
        errs,
        vec![
            "User[0].seen: invalid timestamp \"yesterday\" (timestamp: RFC 3339, e.g. 2026-04-14T08:02:07Z) (row key 1)",
            "Group[0].tags[1]: expected string, found number 1 (row key \"g\")",
            "Group[1].users[1]: no `User` with pk 4 (row key \"h\")",
        ]
    );
    // Targets loaded later in the same file count, and timestamps are stored in UTC.
    s.load_fixtures(r#"{"Group": [{"pk": "h", "users": [2], "tags": ["a"]}], "User": [{"pk": 2, "seen": "2026-04-14T10:02:07+02:00"}]}"#)
        .unwrap();
    let seen: String = s.connection().query_row("SELECT seen FROM \"User\"", [], |r| r.get(0)).unwrap();
    assert_eq!(seen, "2026-04-14T08:02:07.000000Z");
    let tags: String = s.connection().query_row("SELECT tags FROM \"Group\"", [], |r| r.get(0)).unwrap();
    assert_eq!(tags, "[\"a\"]");
}

#[test]
fn a_failed_load_leaves_earlier_data_alone() {
    let (_d, mut s) = file_store();
    s.load_fixtures(&authentik_fixtures()).unwrap();
    let before = s.dump();
    let errs = errors(
        &mut s,
        r#"{"User": [{"pk": 12, "username": "changed", "name": "A", "email": "a@x", "is_active": true}, {"pk": 13}]}"#,
    );
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert_eq!(s.dump(), before);
}

fn attributes(s: &Store, pk: i64) -> serde_json::Value {
    let text: Option<String> =
        s.connection().query_row("SELECT attributes FROM \"User\" WHERE pk = ?1", [pk], |r| r.get(0)).unwrap();
    text.map(|t| serde_json::from_str(&t).unwrap()).unwrap_or(serde_json::Value::Null)
}

fn user_text(s: &Store, pk: i64, col: &str) -> Option<String> {
    s.connection().query_row(&format!("SELECT \"{col}\" FROM \"User\" WHERE pk = ?1"), [pk], |r| r.get(0)).unwrap()
}

/// The default load merges into existing rows: what rules wrote into an
/// `any` field survives a re-sync, fields the file omits keep their value,
/// given fields (even `null`) are replaced, and links change only when the
/// file gives them.
#[test]
fn a_reload_merges_into_existing_rows() {
    let (_d, mut s) = file_store();
    s.load_fixtures(&authentik_fixtures()).unwrap();
    // What a rule would have written: new keys, and a nested object.
    s.connection()
        .execute(
            "UPDATE \"User\" SET attributes = json_set(attributes, '$.lastCountry', 'DE', \
             '$.settings', json('{\"locale\": \"de\", \"theme\": \"dark\"}')) WHERE pk = 12",
            [],
        )
        .unwrap();
    let resync = format!(
        r#"{{"User": [
              {{"pk": 12, "username": "alice2", "attributes": {{"level": 4, "settings": {{"locale": "en"}}, "admin": null}}}},
              {{"pk": 40, "attributes": ["not", "an", "object"], "type": null}},
              {{"pk": 50, "username": "erin", "name": "Erin", "email": "e@x", "is_active": true}}
            ],
            "Group": [{{"pk": "{ADMINS}", "name": "Admins"}}, {{"pk": "{OPS_HEX}", "users": [12]}}]}}"#
    );
    let stats = s.load_fixtures(&resync).unwrap();
    assert_eq!(stats.total(), 5);
    assert_eq!(
        attributes(&s, 12),
        serde_json::json!({
            "sshPublicKey": ["ssh-ed25519 AAAA alice"],
            "level": 4,
            "admin": null,
            "lastCountry": "DE",
            "settings": {"locale": "en", "theme": "dark"},
        }),
        "the file's keys win, deep inside too; the rule's keys stay"
    );
    assert_eq!(user_text(&s, 12, "username").as_deref(), Some("alice2"));
    assert_eq!(user_text(&s, 12, "email").as_deref(), Some("alice@example.com"), "omitted: kept");
    assert_eq!(user_text(&s, 12, "type").as_deref(), Some("internal"), "omitted optional: kept");
    // A non-object replaces the stored value; an explicit null empties an optional field.
    assert_eq!(attributes(&s, 40), serde_json::json!(["not", "an", "object"]));
    assert_eq!(user_text(&s, 40, "type"), None);
    assert_eq!(user_text(&s, 40, "username").as_deref(), Some("carol"));
    // A new row is the file's row.
    assert_eq!(user_text(&s, 50, "username").as_deref(), Some("erin"));
    assert_eq!(attributes(&s, 50), serde_json::Value::Null);
    // Omitted links stay; given links replace.
    let keys = |g: &str| -> Vec<Value> {
        s.related(GROUP, &Value::str(g), 3).unwrap().iter().map(|r| r.key.clone()).collect()
    };
    assert_eq!(keys(ADMINS), vec![Value::Int(1), Value::Int(12)]);
    assert_eq!(keys(OPS_HEX), vec![Value::Int(12)]);
    let name: String =
        s.connection().query_row("SELECT name FROM \"Group\" WHERE name = 'Admins'", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "Admins");
    // A new row still needs its required fields; an explicit null on a
    // required field of an existing row is still an error.
    let errs = errors(&mut s, r#"{"User": [{"pk": 60, "username": "x"}, {"pk": 12, "email": null}]}"#);
    assert_eq!(
        errs,
        vec![
            "User[0].name: missing required field (row key 60)",
            "User[0].email: missing required field (row key 60)",
            "User[0].is_active: missing required field (row key 60)",
            "User[1].email: a required field cannot be null (row key 12)",
        ]
    );
    // The same file twice changes nothing the second time.
    let before = s.dump();
    s.load_fixtures(&resync).unwrap();
    assert_eq!(s.dump(), before);
}

/// `--replace` restores whole-row replacement: the rule's keys are gone.
#[test]
fn replace_mode_replaces_whole_rows() {
    let (_d, mut s) = file_store();
    s.load_fixtures(&authentik_fixtures()).unwrap();
    s.connection()
        .execute("UPDATE \"User\" SET attributes = json_set(attributes, '$.lastCountry', 'DE') WHERE pk = 12", [])
        .unwrap();
    s.load_fixtures_with(
        r#"{"User": [{"pk": 12, "username": "alice", "name": "Alice", "email": "a@x", "is_active": true, "attributes": {"level": 4}}]}"#,
        LoadMode::Replace,
    )
    .unwrap();
    assert_eq!(attributes(&s, 12), serde_json::json!({"level": 4}));
    assert_eq!(user_text(&s, 12, "type"), None);
}

fn group_attributes(db: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn.prepare("SELECT name, attributes FROM \"Group\" ORDER BY name").unwrap();
    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))
        .unwrap()
        .map(|r| {
            let (n, a) = r.unwrap();
            (n, a.map(|a| serde_json::from_str(&a).unwrap()).unwrap_or_default())
        })
        .collect()
}

/// The nightly re-sync: `db load` of the same fixtures after a run keeps
/// the history a rule appended to a group's attributes; `--replace` wipes it.
#[test]
fn a_resync_keeps_what_rules_wrote_unless_replace() {
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    cli(&["db", "load", "--db", &db, AUTHENTIK_FIXTURES], None).ok();
    cli(
        &[
            "run",
            "--quiet",
            "--db",
            &db,
            "--events",
            AUTHENTIK_EVENTS,
            "examples/authentik/group_addition_history.herald",
        ],
        None,
    )
    .ok();
    let after_run = group_attributes(&tmp.path("h.db"));
    let with_history = |attrs: &[(String, serde_json::Value)]| {
        attrs
            .iter()
            .filter(|(_, a)| a.get("UserAddedHistory").is_some_and(|h| h.as_array().is_some_and(|h| !h.is_empty())))
            .count()
    };
    assert!(with_history(&after_run) > 0, "the rule wrote a history: {after_run:?}");

    cli(&["db", "load", "--db", &db, AUTHENTIK_FIXTURES], None).ok();
    assert_eq!(group_attributes(&tmp.path("h.db")), after_run, "a merge keeps what the rule wrote");

    let out = cli(&["db", "load", "--replace", "--db", &db, AUTHENTIK_FIXTURES], None).ok();
    assert!(out.stderr.contains("loaded"), "{}", out.stderr);
    assert_eq!(with_history(&group_attributes(&tmp.path("h.db"))), 0, "--replace restores the file's rows");
}

const DEVICE_POLICY: &str = "event login { context: { device: string? }? }

entity Device key id: string {
  owner: int,
  trusted: bool?,
}

rule untrusted_device_login {
  match login { context.device: dev }
  guard let d = Device[dev]
  guard not (d.trusted == true)
  action notify(to: d.owner, severity: \"alert\", body: \"Sign-in from untrusted device {d.id}\")
}
";

/// `db load` and `db init` take the policy files (and `--schema`) as `run`
/// does, so the entities a policy declares can be loaded.
#[test]
fn db_load_and_init_know_the_entities_of_policy_files() {
    let tmp = Tmp::new();
    let policy = tmp.write("device.herald", DEVICE_POLICY);
    let fixtures = tmp.write(
        "devices.json",
        r#"{"Device": [{"id": "d1", "owner": 12, "trusted": true}, {"id": "d2", "owner": 12}],
            "User": [{"pk": 12, "username": "alice", "name": "Alice", "email": "a@x", "is_active": true}]}"#,
    );
    let db = tmp.p("h.db");
    // Without the policy file the entity is unknown, and nothing is loaded.
    let out = cli(&["db", "load", "--db", &db, &fixtures], None).expect_code(2);
    assert!(out.stderr.contains("Device: unknown entity"), "{}", out.stderr);
    // With it (the existing form, plus policy files), it loads.
    let out = cli(&["db", "load", "--db", &db, &fixtures, &policy], None).ok();
    assert!(out.stderr.contains("2 Device"), "{}", out.stderr);
    let events = tmp.write(
        "events.ndjson",
        concat!(
            r#"{"event_uuid": "00000000-0000-4000-8000-000000000001", "action": "login", "created": "2026-04-14T08:00:00Z", "context": {"device": "d1"}}"#,
            "\n",
            r#"{"event_uuid": "00000000-0000-4000-8000-000000000002", "action": "login", "created": "2026-04-14T08:00:00Z", "context": {"device": "d2"}}"#,
            "\n"
        ),
    );
    let ran = cli(&["run", "--quiet", "--db", &db, "--events", &events, &policy], None).ok();
    assert_eq!(ran.stdout_lines().len(), 1, "{}", ran.stdout);
    assert_eq!(ran.stdout_lines()[0]["event_uuid"], "00000000-0000-4000-8000-000000000002");

    // `db init` creates the policy's tables; `--schema` is taken as for `run`.
    let db2 = tmp.p("init.db");
    cli(&["db", "init", "--db", &db2, "--schema", "authentik", &policy], None).ok();
    let conn = rusqlite::Connection::open(tmp.path("init.db")).unwrap();
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('Device') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(cols, vec!["id", "owner", "trusted"]);

    // A policy file that does not compile loads nothing (exit 1, as `check`).
    let bad = tmp.write("bad.herald", "entity Device key id: string { owner: nosuchtype }\n");
    let db3 = tmp.p("bad.db");
    let out = cli(&["db", "load", "--db", &db3, &fixtures, &bad], None).expect_code(1);
    assert!(out.stderr.contains("nosuchtype"), "{}", out.stderr);
}
