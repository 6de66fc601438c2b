//! PostgreSQL's batched writes (issue 10): `PgStore`'s overrides of
//! `insert_notifications`, `insert_firings` and `mark_processed_many` send
//! one statement per batch, and must record exactly what the one-row path
//! records, and what SQLite records for the same calls.
//!
//! - Direct calls on the store interface, with batches of more than 64 rows
//!   that are no multiple of SQLite's chunk sizes, notifications with and
//!   without a recipient row, repeated replay records (ON CONFLICT): the
//!   dropped counts and the normalised dumps of three stores agree —
//!   PostgreSQL batched, PostgreSQL one row at a time, SQLite batched.
//! - The same on the authentik mapping, where `notify` writes
//!   `authentik_events_notification`.
//! - `herald run` end to end over such a batch (and a `--backfill` re-run
//!   that rewrites replay records) on both backends: stdout and dumps equal.
//!
//! `measure_batch_shapes` (ignored) times the statement shapes the choice
//! was made between.

mod pg_support;
mod runtime_support;

use herald::compile::{self, SchemaChoice};
use herald::ir::Program;
use herald::span::SourceMap;
use herald::store::pgent::normalise_dump;
use herald::store::{self, Backend, EntityMapping, FiringRow, NotificationRow, OpenOptions, ProcessedRow};
use herald::value::Value;
use runtime_support::*;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

const POLICY: &str = r#"
rule note {
  match login_failed { user.pk: pk, context.username: name }
  guard name != "boom"
  action notify(to: pk, severity: "warning", body: "failed sign-in for {name}")
}
rule count_failures {
  match login_failed { context.username: name }
  action log(message: "failure {name}")
}
# R0001 ("de" is no int key) when the rule fires, on both backends: the
# rule's error, not the batch's.
rule bad_key {
  match login_failed { context.username: name }
  guard name == "boom"
  action {
    notify(to: 4, body: "applied only if the rule succeeds")
    notify(to: User[12].attributes.settings.locale, body: "never")
  }
}
"#;

/// A rule added for the `--backfill` re-run: its events' replay records
/// get the union rule set (an ON CONFLICT update of each).
const EXTRA: &str = r#"
rule second_note {
  match login_failed { user.pk: pk }
  guard pk == 12
  action notify(to: pk, severity: "alert", body: "again")
}
"#;

fn compile(policy: &str) -> Arc<Program> {
    let mut sources = SourceMap::new();
    let id = sources.add("pg_batch.herald", policy.to_string());
    let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &[id]);
    Arc::new(compiled.program.unwrap_or_else(|| panic!("the policy compiles: {:?}", compiled.diagnostics)))
}

/// The dump without the backend's own schema fingerprint; JSON objects
/// with sorted keys.
fn comparable(dump: &str) -> String {
    normalise_dump(dump).lines().filter(|l| !l.contains("\"schema_fingerprint\"")).map(|l| format!("{l}\n")).collect()
}

fn same(what: &str, a: &str, b: &str) {
    if a != b {
        let diff = a.lines().zip(b.lines()).enumerate().find(|(_, (x, y))| x != y);
        panic!(
            "{what}: the stores differ ({} vs {} lines); first difference: {diff:?}\n--- left\n{a}\n--- right\n{b}",
            a.lines().count(),
            b.lines().count()
        );
    }
}

fn fixtures() -> String {
    std::fs::read_to_string(root().join(AUTHENTIK_FIXTURES)).expect("the example fixtures")
}

/// Recipients of the generated notifications: users of the fixtures, keys
/// with no row (999, 1000) and a key in another form (15.0: an int key
/// given as a whole float).
fn recipient(i: usize) -> Value {
    match i % 7 {
        0 => Value::Int(4),
        1 => Value::Int(999),
        2 => Value::Int(12),
        3 => Value::Float(15.0),
        4 => Value::Int(1000),
        5 => Value::Int(31),
        _ => Value::Int(2),
    }
}

fn has_row(v: &Value) -> bool {
    !matches!(v, Value::Int(999) | Value::Int(1000))
}

/// 203 notifications, 150 firings, 141 replay records, then 77 replay
/// records of which 40 repeat earlier keys with another rule set: sizes
/// over 64 and no multiple of 64 or 8.
fn write_batches(s: &dyn Backend) -> u64 {
    let key = |i: usize| -> Arc<str> { Arc::from(format!("00000000-0000-4000-8000-{i:012}")) };
    let t = 1_776_154_927_556_423_000i128;
    let notes: Vec<NotificationRow> = (0..203)
        .map(|i| NotificationRow {
            rule: Arc::from(if i % 2 == 0 { "note" } else { "other" }),
            event_key: key(i),
            user_pk: s.notification_key(&recipient(i)).expect("a key of the right kind"),
            severity: ["notice", "warning", "alert"][i % 3],
            body: format!("body {i}"),
            created: t + i as i128 * 1_000,
        })
        .collect();
    let firings: Vec<FiringRow> = (0..150)
        .map(|i| FiringRow {
            rule: Arc::from(format!("r{}", i % 5)),
            event_key: key(i),
            line: i as u64 + 1,
            fired_at: t,
        })
        .collect();
    let first: Vec<ProcessedRow> = (0..141)
        .map(|i| ProcessedRow { event_key: key(i), line: i as u64 + 1, processed_at: t, rule_set: 1 })
        .collect();
    let second: Vec<ProcessedRow> = (101..178)
        .map(|i| ProcessedRow { event_key: key(i), line: i as u64 + 1000, processed_at: t, rule_set: 2 })
        .collect();
    s.begin().unwrap();
    let dropped = s.insert_notifications(&notes).unwrap();
    s.insert_firings(&firings).unwrap();
    s.mark_processed_many(&first).unwrap();
    s.mark_processed_many(&second).unwrap();
    s.commit().unwrap();
    dropped
}

/// The same rows through the one-row methods (the trait's default path).
fn write_one_by_one(s: &dyn Backend) -> u64 {
    let key = |i: usize| format!("00000000-0000-4000-8000-{i:012}");
    let mut dropped = 0;
    s.begin().unwrap();
    for i in 0..203 {
        let rule = if i % 2 == 0 { "note" } else { "other" };
        let sev = ["notice", "warning", "alert"][i % 3];
        if s.insert_notification(rule, &key(i), &recipient(i), sev, &format!("body {i}")).unwrap().is_none() {
            dropped += 1;
        }
    }
    for i in 0..150 {
        s.insert_firing(&format!("r{}", i % 5), &key(i), i as u64 + 1).unwrap();
    }
    for i in 0..141 {
        s.mark_processed(&key(i), i as u64 + 1, 1).unwrap();
    }
    for i in 101..178 {
        s.mark_processed(&key(i), i as u64 + 1000, 2).unwrap();
    }
    s.commit().unwrap();
    dropped
}

#[test]
fn batches_record_what_rows_one_by_one_and_sqlite_record() {
    let program = compile(POLICY);
    let schema = program.schema.clone();
    let expected_dropped = (0..203).filter(|&i| !has_row(&recipient(i))).count() as u64;
    assert!(expected_dropped > 0 && expected_dropped < 203);

    let tmp = Tmp::new();
    let mut lite = store::open(&tmp.path("lite.db"), schema.clone(), OpenOptions::default()).unwrap();
    lite.load_fixtures(&fixtures()).unwrap();
    assert_eq!(write_batches(&*lite), expected_dropped, "SQLite's dropped count");

    let batched_db = pg_support::TestDb::new("batch_many");
    let mut batched = store::open(Path::new(&batched_db.url), schema.clone(), OpenOptions::default()).unwrap();
    batched.load_fixtures(&fixtures()).unwrap();
    assert_eq!(write_batches(&*batched), expected_dropped, "PostgreSQL's dropped count (batched)");

    let single_db = pg_support::TestDb::new("batch_one");
    let mut single = store::open(Path::new(&single_db.url), schema, OpenOptions::default()).unwrap();
    single.load_fixtures(&fixtures()).unwrap();
    assert_eq!(write_one_by_one(&*single), expected_dropped, "PostgreSQL's dropped count (one by one)");

    let b = comparable(&batched.try_dump().unwrap());
    assert_eq!(table(&b, "herald_notification").len(), 203 - expected_dropped as usize);
    assert_eq!(table(&b, "herald_firing").len(), 150);
    assert_eq!(table(&b, "herald_processed").len(), 178);
    // Replay records written twice kept their first line and took the
    // second rule set.
    let processed = table(&b, "herald_processed");
    let rec = processed.iter().find(|r| r["event_key"] == "00000000-0000-4000-8000-000000000120").unwrap();
    assert_eq!((rec["line"].as_i64(), rec["rule_set"].as_i64()), (Some(121), Some(2)), "{rec}");
    same("batched vs one by one", &b, &comparable(&single.try_dump().unwrap()));
    same("PostgreSQL vs SQLite", &b, &comparable(&lite.try_dump().unwrap()));

    // The writer's chunked replay lookup answers what one lookup per key
    // answers: keys recorded twice, never, repeated, and a key with NUL.
    let keys: Vec<String> = [0usize, 120, 177, 178, 5000, 0, 140]
        .iter()
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .chain(["k\0".to_string(), String::new()])
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let one_by_one: Vec<_> = refs.iter().map(|k| batched.processed_rule_set(k).unwrap()).collect();
    assert_eq!(one_by_one[..5], [Some(Some(1)), Some(Some(2)), Some(Some(2)), None, None]);
    assert!(batched.prefers_bulk_lookups() && !lite.prefers_bulk_lookups());
    assert_eq!(batched.processed_rule_sets(&refs).unwrap(), one_by_one);
    assert_eq!(lite.processed_rule_sets(&refs).unwrap(), one_by_one);
}

#[test]
fn recipient_keys_are_checked_when_the_rule_fires() {
    let program = compile(POLICY);
    let db = pg_support::TestDb::new("batch_keys");
    let pg = store::open(Path::new(&db.url), program.schema.clone(), OpenOptions::default()).unwrap();
    let tmp = Tmp::new();
    let lite = store::open(&tmp.path("lite.db"), program.schema.clone(), OpenOptions::default()).unwrap();
    let mut errors = Vec::new();
    for s in [&pg, &lite] {
        let wrong = s.notification_key(&Value::Str("de".into())).unwrap_err();
        assert_eq!(wrong.code.as_str(), "R0001", "{}: {wrong:?}", s.kind());
        let none = s.notification_key(&Value::Null).unwrap_err();
        assert_eq!(none.code.as_str(), "R0002", "{}: {none:?}", s.kind());
        assert!(s.notification_key(&Value::Int(999)).is_ok(), "a key nobody has is dropped later, not refused");
        errors.push((wrong.message, none.message));
    }
    assert_eq!(errors[0], errors[1], "the same messages on both backends");
    // An empty batch is no statement and drops nothing.
    pg.begin().unwrap();
    assert_eq!(pg.insert_notifications(&[]).unwrap(), 0);
    pg.insert_firings(&[]).unwrap();
    pg.mark_processed_many(&[]).unwrap();
    pg.commit().unwrap();
}

#[test]
fn replay_keys_that_meet_as_stored_text_merge_like_two_calls() {
    // PostgreSQL text has no NUL: a key with one is stored with U+FFFD, so
    // two distinct keys of a batch can be one stored key. One statement may
    // not update a row it inserted; the batch merges them as two
    // `mark_processed` calls would have.
    let program = compile(POLICY);
    let db = pg_support::TestDb::new("batch_nul");
    let pg = store::open(Path::new(&db.url), program.schema.clone(), OpenOptions::default()).unwrap();
    let rows = [
        ProcessedRow { event_key: Arc::from("k\0"), line: 1, processed_at: 0, rule_set: 1 },
        ProcessedRow { event_key: Arc::from("other"), line: 2, processed_at: 0, rule_set: 1 },
        ProcessedRow { event_key: Arc::from("k\u{FFFD}"), line: 3, processed_at: 0, rule_set: 2 },
    ];
    pg.begin().unwrap();
    pg.mark_processed_many(&rows).unwrap();
    pg.commit().unwrap();
    assert_eq!(pg.processed_rule_set("k\u{FFFD}").unwrap(), Some(Some(2)));
    let dump = comparable(&pg.try_dump().unwrap());
    let processed = table(&dump, "herald_processed");
    assert_eq!(processed.len(), 2, "{processed:?}");
    assert_eq!(processed[0]["line"], 1, "the first call's line stays: {processed:?}");
}

/// authentik's tables (the reference DDL) with the users of the example
/// fixtures, inserted with authentik's NOT NULL columns.
fn authentik_db(tag: &str) -> pg_support::TestDb {
    let db = pg_support::TestDb::new(tag);
    db.run_sql_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/authentik-postgres.sql"), None);
    let fixtures: serde_json::Value = serde_json::from_str(&fixtures()).unwrap();
    let mut c = db.client();
    for u in fixtures["User"].as_array().unwrap() {
        c.execute(
            "INSERT INTO authentik_core_user (id, password, username, first_name, last_name, email, is_active, \
             date_joined, uuid, name, password_change_date, attributes, path, type, last_updated) \
             VALUES ($1::int, '!x', $2, '', '', $3, true, now(), gen_random_uuid(), $4, now(), '{}', 'users', \
             'internal', now())",
            &[
                &(u["pk"].as_i64().unwrap() as i32),
                &u["username"].as_str().unwrap(),
                &u["email"].as_str().unwrap(),
                &u["name"].as_str().unwrap(),
            ],
        )
        .unwrap();
    }
    db
}

/// The notification rows in authentik's table, in a stable order.
fn authentik_notes(db: &pg_support::TestDb) -> Vec<(i64, String, String, Option<String>, bool)> {
    db.client()
        .query(
            "SELECT user_id::bigint, severity, body, event_id::text, seen FROM authentik_events_notification \
             ORDER BY body, user_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

#[test]
fn authentik_mapping_batches_record_what_rows_one_by_one_record() {
    let program = compile(POLICY);
    let options =
        || OpenOptions { mapping: Some(EntityMapping::Authentik { tenant: "public".into() }), ..Default::default() };
    let expected_dropped = (0..203).filter(|&i| !has_row(&recipient(i))).count() as u64;

    let batched_db = authentik_db("batch_ak_many");
    let batched = store::open(Path::new(&batched_db.url), program.schema.clone(), options()).unwrap();
    assert_eq!(write_batches(&*batched), expected_dropped, "dropped (batched)");

    let single_db = authentik_db("batch_ak_one");
    let single = store::open(Path::new(&single_db.url), program.schema.clone(), options()).unwrap();
    assert_eq!(write_one_by_one(&*single), expected_dropped, "dropped (one by one)");

    let notes = authentik_notes(&batched_db);
    assert_eq!(notes.len(), 203 - expected_dropped as usize);
    assert!(notes.iter().all(|n| n.3.is_none() && !n.4), "no event of authentik's: no event_id; unseen");
    assert_eq!(notes, authentik_notes(&single_db));
    // Herald's own tables too (firings, replay records).
    same("batched vs one by one", &comparable(&batched.try_dump().unwrap()), &comparable(&single.try_dump().unwrap()));
}

fn failed(n: usize, pk: i64, name: &str) -> String {
    json!({
        "event_uuid": format!("00000000-0000-4000-8000-{n:012}"),
        "action": "login_failed",
        "created": "2026-04-14T08:00:00Z",
        "user": {"pk": pk},
        "context": {"username": name},
    })
    .to_string()
}

/// 211 events: recipients with and without a row, a rule error now and
/// then, an event repeated later in the same batch (skipped by replay
/// protection).
fn mixed_events() -> String {
    let mut lines = Vec::new();
    for n in 0..205 {
        let pk = [4, 12, 999, 15, 31, 1000, 2][n % 7];
        let name = if n % 37 == 5 { "boom".to_string() } else { format!("user{}", n % 11) };
        lines.push(failed(n, pk, &name));
    }
    for n in [3, 50, 51, 120, 200, 204] {
        lines.push(failed(n, 4, "again"));
    }
    lines.join("\n") + "\n"
}

#[test]
fn a_mixed_batch_runs_the_same_on_both_backends() {
    let tmp = Tmp::new();
    let events = tmp.write("events.ndjson", mixed_events());
    let policy = tmp.write("p.herald", POLICY);
    let both = tmp.write("extra.herald", EXTRA);
    let lite = tmp.p("lite.db");
    load(&lite, None, AUTHENTIK_FIXTURES);
    let db = pg_support::TestDb::new("batch_run");
    load(&db.url, None, AUTHENTIK_FIXTURES);

    // `--batch 1`: every event commits on its own, so an event repeated
    // later in a chunk finds its record in the store, not in the batch's
    // buffer, and must not take the chunk's earlier lookup for it.
    let single = pg_support::TestDb::new("batch_run_one");
    load(&single.url, None, AUTHENTIK_FIXTURES);
    let one = run(&single.url, &events, &["--batch", "1"], &[&policy]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    let one_again = run(&single.url, &events, &["--batch", "1", "--backfill"], &[&policy, &both]);
    assert_eq!(one_again.code, 0, "{}", one_again.stderr);

    let mut runs = Vec::new();
    for target in [&lite, &db.url] {
        let first = run(target, &events, &[], &[&policy]);
        assert_eq!(first.code, 0, "{target}: {}", first.stderr);
        let again = run(target, &events, &["--backfill"], &[&policy, &both]);
        assert_eq!(again.code, 0, "{target}: {}", again.stderr);
        runs.push((first, again));
    }
    let (lite_runs, pg_runs) = (&runs[0], &runs[1]);
    assert_eq!(pg_runs.0.stdout, lite_runs.0.stdout, "firing lines of the first run");
    assert_eq!(pg_runs.1.stdout, lite_runs.1.stdout, "firing lines of the backfill");
    assert!(pg_runs.0.stdout.lines().count() > 300, "the batch fired: {}", pg_runs.0.stdout.lines().count());

    let pg_store = store::open(Path::new(&db.url), compile(POLICY).schema.clone(), OpenOptions::default()).unwrap();
    let pg = comparable(&tmp.normalise(&pg_store.try_dump().unwrap()));
    let sqlite = comparable(&dump(&tmp.path("lite.db"), None, Some(&tmp)));
    same("herald run: PostgreSQL vs SQLite", &pg, &sqlite);
    assert_eq!(one.stdout, lite_runs.0.stdout, "firing lines of the first run, --batch 1");
    assert_eq!(one_again.stdout, lite_runs.1.stdout, "firing lines of the backfill, --batch 1");
    let one_store =
        store::open(Path::new(&single.url), compile(POLICY).schema.clone(), OpenOptions::default()).unwrap();
    same("--batch 1 vs default batch", &comparable(&tmp.normalise(&one_store.try_dump().unwrap())), &pg);
    // What the comparison covers: dropped and stored notifications, rule
    // errors, replay records rewritten by the backfill.
    let notes = table(&pg, "herald_notification");
    assert!(notes.len() > 100 && notes.len() < 205, "{} notifications", notes.len());
    assert!(notes.iter().any(|n| n["body"] == "again"), "the backfill notified");
    assert!(table(&pg, "herald_rule_error").iter().all(|e| e["code"] == "R0001"));
    assert!(!table(&pg, "herald_rule_error").is_empty());
    let sets: std::collections::BTreeSet<String> =
        table(&pg, "herald_processed").iter().map(|r| r["rule_set"].to_string()).collect();
    assert_eq!(sets.len(), 1, "every record names the union after the backfill: {sets:?}");
    assert_eq!(table(&pg, "herald_processed").len(), 205);
}

/// The statement shapes for a batch of firing rows, timed on the test
/// server: one row per statement, multi-row `VALUES` in chunks of 64/8/1
/// (SQLite's), and `unnest` of arrays (one statement). Run with
/// `cargo test --release --test pg_batch -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_batch_shapes() {
    let program = compile(POLICY);
    let db = pg_support::TestDb::new("batch_measure");
    drop(store::open(Path::new(&db.url), program.schema.clone(), OpenOptions::default()).unwrap());
    let mut c = db.client();
    let rows = 4096usize;
    let rounds = 20;
    let rule: Vec<String> = (0..rows).map(|i| format!("rule{}", i % 5)).collect();
    let ev: Vec<String> = (0..rows).map(|i| format!("00000000-0000-4000-8000-{i:012}")).collect();
    let at = vec!["2026-04-14T08:02:07.556423Z".to_string(); rows];
    let line: Vec<i64> = (0..rows as i64).collect();
    let time = |c: &mut postgres::Client, name: &str, f: &dyn Fn(&mut postgres::Client)| {
        c.batch_execute("TRUNCATE herald.herald_firing").unwrap();
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            c.batch_execute("BEGIN").unwrap();
            f(c);
            c.batch_execute("COMMIT").unwrap();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{name}: {:.0} rows/s ({:.1} ms per {rows}-row batch)",
            (rows * rounds) as f64 / s,
            s * 1e3 / rounds as f64
        );
    };
    time(&mut c, "one row per statement", &|c| {
        let st = c
            .prepare("INSERT INTO herald.herald_firing (rule, event_uuid, fired_at, line) VALUES ($1, $2, $3, $4)")
            .unwrap();
        for i in 0..rows {
            c.execute(&st, &[&rule[i], &ev[i], &at[i], &line[i]]).unwrap();
        }
    });
    time(&mut c, "multi-row VALUES, chunks of 64/8/1", &|c| {
        let mut stmts = std::collections::HashMap::new();
        let mut i = 0;
        while i < rows {
            let n = [64, 8, 1].into_iter().find(|&n| n <= rows - i).unwrap();
            let st = stmts
                .entry(n)
                .or_insert_with(|| {
                    let values: Vec<String> = (0..n)
                        .map(|r| format!("(${}, ${}, ${}, ${})", 4 * r + 1, 4 * r + 2, 4 * r + 3, 4 * r + 4))
                        .collect();
                    c.prepare(&format!(
                        "INSERT INTO herald.herald_firing (rule, event_uuid, fired_at, line) VALUES {}",
                        values.join(", ")
                    ))
                    .unwrap()
                })
                .clone();
            type P<'a> = &'a (dyn postgres::types::ToSql + Sync);
            let mut p: Vec<P<'_>> = Vec::with_capacity(4 * n);
            for r in i..i + n {
                p.extend([&rule[r] as P<'_>, &ev[r] as P<'_>, &at[r] as P<'_>, &line[r] as P<'_>]);
            }
            c.execute(&st, &p).unwrap();
            i += n;
        }
    });
    time(&mut c, "unnest of arrays, one statement", &|c| {
        c.execute(
            "INSERT INTO herald.herald_firing (rule, event_uuid, fired_at, line) \
             SELECT r.rule, r.ev, r.at, r.line FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
             WITH ORDINALITY AS r(rule, ev, at, line, n) ORDER BY r.n",
            &[&rule, &ev, &at, &line],
        )
        .unwrap();
    });
}
