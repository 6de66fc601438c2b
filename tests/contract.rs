//! Conformance of the built binary to the command-line, store and language
//! contract, one test per promise, as a script author relies on them: real
//! SQLite files in a temporary directory and `target/release/herald` (or the
//! test profile's binary) run as a subprocess.

use rusqlite::Connection;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// A schema with every scalar type, an optional of each kind, a keyword-named
/// field, `any` fields, a uuid-keyed entity and a many-to-many field.
const SCHEMA: &str = r#"
discriminator action
identity event_uuid
recipient User
event * { event_uuid: uuid, created: timestamp, user: { pk: int }? }
event ping { n: int?, n2: int?, s: string?, ok: bool?, obj: any, type: string?, ids: [int]?, f: float? }
event pong { }
entity User key pk: int {
  username: string, name: string?, email: string, is_active: bool, attributes: any,
  seen: timestamp?, ref: uuid?,
}
entity Group key pk: uuid { name: string, attributes: any, users: [User] }
"#;

const FIXTURES: &str = r#"{
 "User": [
  {"pk": 1, "username": "ann", "name": "Ann", "email": "ann@x", "is_active": true,
   "attributes": {"k": [1, 2]}, "seen": "2024-01-02T03:04:05Z", "ref": "AB0000000000000000000000000000CD"},
  {"pk": 2, "username": "bob", "name": null, "email": "bob@x", "is_active": false, "attributes": {}}
 ],
 "Group": [{"pk": "11111111-2222-3333-4444-555555555555", "name": "ops", "attributes": {}, "users": [2, 1]}]
}"#;

const OPS: &str = "11111111-2222-3333-4444-555555555555";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn code(self, code: i32) -> Out {
        assert_eq!(self.code, code, "exit code; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    /// The JSON lines of stdout (one per firing).
    fn firings(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).expect("stdout line is JSON")).collect()
    }
    /// The messages of `log` statements (JSON lines on stderr), in order.
    fn logs(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["message"].as_str().unwrap().to_string())
            .collect()
    }
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    fn p(&self, name: &str) -> String {
        self.0.path().join(name).display().to_string()
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
    /// A store initialised from SCHEMA and loaded with FIXTURES.
    fn store(&self) -> (String, String) {
        let schema = self.write("schema.herald", SCHEMA);
        let db = self.p("h.db");
        let fx = self.write("fixtures.json", FIXTURES);
        herald(&["db", "load", "--schema", &schema, "--db", &db, &fx], None, self).code(0);
        (schema, db)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

fn herald(args: &[&str], stdin: Option<&str>, cwd: &Dir) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .current_dir(cwd.path())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald");
    if let Some(input) = stdin {
        use std::io::Write;
        // Herald may exit (say, on an unusable database) before reading its
        // input: a broken pipe here is not the test's concern.
        if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// One `ping` event line with the given extra fields.
fn ping(n: u32, extra: Value) -> String {
    let mut e = json!({"action": "ping", "event_uuid": format!("00000000-0000-0000-0000-{n:012x}"),
        "created": "2024-05-06T07:08:09Z"});
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e.to_string()
}

/// Run `policy` over `events` on a fresh store with both engines; assert they
/// agree (stdout, logs, store) and return the jit run and its database.
fn run_both(policy: &str, events: &[String]) -> (Out, Dir, String) {
    let mut results = Vec::new();
    for engine in ["jit", "interp"] {
        let d = Dir::new();
        let (schema, db) = d.store();
        let pol = d.write("p.herald", policy);
        let ev = d.write("events.ndjson", &(events.join("\n") + "\n"));
        let out =
            herald(&["run", "--schema", &schema, "--db", &db, "--events", &ev, "--engine", engine, &pol], None, &d)
                .code(0);
        let dump = dump(&db);
        results.push((out, d, db, dump));
    }
    let (b_out, _, _, b_dump) = results.pop().unwrap();
    let (a_out, a_dir, a_db, a_dump) = results.pop().unwrap();
    assert_eq!(a_out.stdout, b_out.stdout, "jit and interp print the same firings");
    assert_eq!(a_out.logs(), b_out.logs(), "jit and interp log the same");
    assert_eq!(a_dump, b_dump, "jit and interp leave the same store");
    (a_out, a_dir, a_db)
}

fn rows(db: &str, sql: &str) -> Vec<Vec<Value>> {
    let conn = Connection::open(db).unwrap();
    let mut st = conn.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(i) => json!(i),
                rusqlite::types::ValueRef::Real(f) => json!(f),
                rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                rusqlite::types::ValueRef::Blob(_) => json!("<blob>"),
            })
            .collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Entity tables, without Herald's timestamps.
fn dump(db: &str) -> BTreeMap<String, Vec<Vec<Value>>> {
    let mut m = BTreeMap::new();
    for t in ["User", "Group", "Group_users"] {
        m.insert(t.to_string(), rows(db, &format!("SELECT * FROM \"{t}\" ORDER BY 1, 2")));
    }
    m.insert(
        "notify".into(),
        rows(db, "SELECT rule, event_uuid, user_pk, severity, body FROM herald_notification ORDER BY id"),
    );
    m.insert(
        "outbox".into(),
        rows(db, "SELECT rule, to_addrs, cc, bcc, subject, body, status FROM herald_outbox ORDER BY id"),
    );
    m.insert("errors".into(), rows(db, "SELECT rule, event_uuid, code FROM herald_rule_error ORDER BY id"));
    m
}

fn columns(db: &str, table: &str) -> Vec<String> {
    rows(db, &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

fn is_rfc3339(s: &str) -> bool {
    // YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s[s.len() - 6..].starts_with(['+', '-']))
}

// ---------------------------------------------------------------- exit codes

#[test]
fn check_exits_0_on_success_and_1_on_compile_errors() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let ok = d.write("ok.herald", "rule r { match ping action log(\"x\") }");
    let bad = d.write("bad.herald", "rule r { match nosuch action log(\"x\") }");
    herald(&["check", "--schema", &schema, &ok], None, &d).code(0);
    herald(&["check", "--schema", &schema, &bad], None, &d).code(1);
    // A schema that does not compile is exit 1 too.
    let bad_schema = d.write("bad_schema.herald", "entity X key");
    herald(&["check", "--schema", &bad_schema, &ok], None, &d).code(1);
    // So is `run` with failing policies: nothing is read or written.
    let db = d.p("r.db");
    herald(&["run", "--schema", &schema, "--db", &db, "--events", "-", &bad], Some(""), &d).code(1);
}

#[test]
fn usage_errors_exit_2() {
    let d = Dir::new();
    let ok = d.write("ok.herald", "rule r { match login action log(\"x\") }");
    for args in [
        vec!["check"],
        vec!["check", "--bogus", &ok],
        vec!["check", "--format", "xml", &ok],
        vec!["run", "--engine", "fast", &ok],
        vec!["run", "--batch", "0", &ok],
        vec!["run", "--smtp", "ftp://host", "--events", "-", &ok],
        vec!["bogus"],
        vec!["outbox", "bogus"],
        vec!["explain"],
        vec!["explain", "E9999"],
    ] {
        let out = herald(&args, Some(""), &d);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
}

#[test]
fn unreadable_files_exit_2() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let ok = d.write("ok.herald", "rule r { match ping action log(\"x\") }");
    let db = d.p("h.db");
    for args in [
        vec!["check", "--schema", &schema, "missing.herald"],
        vec!["check", "--schema", "missing-schema.herald", &ok],
        vec!["run", "--schema", &schema, "--db", &db, "--events", "missing.ndjson", &ok],
        vec!["db", "load", "--schema", &schema, "--db", &db, "missing.json"],
        vec!["outbox", "list", "--db", "missing.db"],
    ] {
        let out = herald(&args, None, &d);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("missing"), "{args:?} names the file: {}", out.stderr);
    }
    // Malformed fixtures: exit 2, and nothing is loaded.
    let bad = d.write("bad.json", "{bad");
    herald(&["db", "load", "--schema", &schema, "--db", &db, &bad], None, &d).code(2);
}

#[test]
fn unusable_database_exits_2() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let ok = d.write("ok.herald", "rule r { match ping action log(\"x\") }");
    let fx = d.write("fx.json", FIXTURES);
    let junk = d.write("junk.db", "this is not an SQLite database, just text that is long enough to matter\n");
    let missing_parent = d.p("no/such/dir/h.db");
    let a_directory = d.p("");
    let mut targets = vec![junk.clone(), missing_parent, a_directory];
    // A location nobody may create files in (root ignores directory modes, so
    // a chmod-ed directory would not test anything when the suite runs as root).
    if Path::new("/proc/self").exists() {
        targets.push("/proc/herald-contract.db".into());
    }
    for db in &targets {
        for args in [
            vec!["db", "init", "--schema", &schema, "--db", db],
            vec!["db", "load", "--schema", &schema, "--db", db, &fx],
            vec!["run", "--schema", &schema, "--db", db, "--events", "-", &ok],
        ] {
            let out = herald(&args, Some(""), &d);
            assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        }
    }
    herald(&["outbox", "list", "--db", &junk], None, &d).code(2);
    // The non-database file was not overwritten.
    assert!(std::fs::read_to_string(&junk).unwrap().starts_with("this is not"));
}

#[test]
fn run_exits_0_when_bad_lines_are_dead_lettered() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let pol = d.write("p.herald", "rule r { match ping { n: n } action log(\"{n}\") }");
    let input = format!("{}\nnot json\n{}\n\n", ping(1, json!({"n": 1})), ping(2, json!({"n": "text"})));
    let out = herald(&["run", "--schema", &schema, "--db", &db, &pol], Some(&input), &d).code(0);
    assert_eq!(out.firings().len(), 1);
    let dl = rows(&db, "SELECT source, line, raw FROM herald_dead_letter ORDER BY line");
    assert_eq!(dl.len(), 1, "{dl:?}");
    assert_eq!(dl[0][1], json!(2));
    assert_eq!(dl[0][2], json!("not json"));
    // A value contradicting the schema fails the rule that reads it (v1).
    let errors = rows(&db, "SELECT rule, code, line FROM herald_rule_error");
    assert_eq!(errors, vec![vec![json!("r"), json!("R0006"), json!(3)]], "{errors:?}");
}

#[test]
fn explain_prints_the_page_of_a_code() {
    let d = Dir::new();
    let out = herald(&["explain", "E0108"], None, &d).code(0);
    assert!(out.stdout.contains("E0108"), "{}", out.stdout);
    assert!(out.stdout.len() > 100);
}

// ------------------------------------------------------------ files, schema

#[test]
fn a_directory_argument_means_every_herald_file_in_it() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    d.write("pol/a.herald", "rule a { match ping action log(\"a\") }");
    d.write("pol/b.herald", "rule b { match pong }");
    d.write("pol/notes.txt", "this is not a policy {{{");
    let out = herald(&["check", "--schema", &schema, &d.p("pol")], None, &d).code(0);
    assert!(out.stderr.contains("2 rules"), "the .txt file is not read: {}", out.stderr);
    std::fs::create_dir(d.p("empty")).unwrap();
    herald(&["check", "--schema", &schema, &d.p("empty")], None, &d).code(2);
}

#[test]
fn schema_authentik_is_the_default() {
    let d = Dir::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/authentik");
    let ex = examples.display().to_string();
    let a = herald(&["check", "--format", "json", &ex], None, &d).code(0);
    let b = herald(&["check", "--schema", "authentik", "--format", "json", &ex], None, &d).code(0);
    assert_eq!(a.stdout, b.stdout);
    // A policy on a custom event type is an error against the default schema.
    let pol = d.write("p.herald", "rule r { match ping action log(\"x\") }");
    herald(&["check", &pol], None, &d).code(1);
    let schema = d.write("s.herald", SCHEMA);
    herald(&["check", "--schema", &schema, &pol], None, &d).code(0);
}

#[test]
fn check_format_json_has_the_documented_shape() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let pol = d.write("p.herald", "# é\nrule r { match nosuch action log(\"x\") }");
    let out = herald(&["check", "--schema", &schema, "--format", "json", &pol], None, &d).code(1);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(v["errors"], json!(1));
    assert_eq!(v["warnings"], json!(0));
    let diag = &v["diagnostics"][0];
    let keys: Vec<&str> = diag.as_object().unwrap().keys().map(String::as_str).collect();
    for k in ["code", "severity", "message", "file", "line", "column", "offset", "length", "labels", "help"] {
        assert!(keys.contains(&k), "{k} missing in {diag}");
    }
    assert_eq!(diag["severity"], "error");
    assert_eq!(diag["line"], json!(2));
    assert_eq!(diag["column"], json!(16));
    // Offsets are bytes: `é` is two.
    assert_eq!(diag["offset"], json!("# é\n".len() + 15));
    assert_eq!(diag["length"], json!(6));
    for l in diag["labels"].as_array().unwrap() {
        for k in ["message", "line", "column", "offset", "length"] {
            assert!(l.get(k).is_some(), "{k} missing in label {l}");
        }
    }
}

// ---------------------------------------------------------------- run output

#[test]
fn run_prints_event_uuid_rule_line_per_firing_and_a_summary() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let pol = d.write(
        "p.herald",
        "rule a { match ping { n: 1 } action send_email(to: \"x@y\", subject: \"s\", body: \"b\") }
         rule b { match ping action notify(to: 1, body: \"hi\") }",
    );
    let input = format!("{}\n{}\n{{\n", ping(1, json!({"n": 1})), ping(2, json!({"n": 2})));
    let out = herald(&["run", "--schema", &schema, "--db", &db, &pol], Some(&input), &d).code(0);
    let f = out.firings();
    let expect = [("a", 1, 1), ("b", 1, 1), ("b", 2, 2)];
    assert_eq!(f.len(), expect.len(), "{}", out.stdout);
    for (line, (rule, n, l)) in f.iter().zip(expect) {
        let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["event_uuid", "rule", "line"]);
        assert_eq!(line["rule"], rule);
        assert_eq!(line["event_uuid"], format!("00000000-0000-0000-0000-{n:012x}"));
        assert_eq!(line["line"], json!(l));
    }
    let s = &out.stderr;
    for needle in [
        "3 events in",
        "events/s",
        "fired 3 rules",
        "2 notifications",
        "1 email",
        "dead letters: 1",
        "rule errors: 0",
        "1 queued",
    ] {
        assert!(s.contains(needle), "summary lacks {needle:?}:\n{s}");
    }
    // Elapsed time in seconds.
    assert!(s.split_whitespace().any(|w| w == "s" || w.ends_with('s') && w[..w.len() - 1].parse::<f64>().is_ok()));
    assert_eq!(rows(&db, "SELECT count(*) FROM herald_firing")[0][0], json!(3), "one herald_firing row per firing");
}

#[test]
fn quiet_drops_the_summary_but_not_the_firings() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let pol = d.write("p.herald", "rule b { match ping }");
    let out =
        herald(&["run", "--quiet", "--schema", &schema, "--db", &db, &pol], Some(&ping(1, json!({}))), &d).code(0);
    assert_eq!(out.firings().len(), 1, "a rule without action still fires");
    assert_eq!(out.stderr, "");
}

#[test]
fn run_creates_a_missing_database_and_defaults_to_herald_db() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let pol = d.write("p.herald", "rule b { match ping }");
    herald(&["run", "--quiet", "--schema", &schema, &pol], Some(&ping(1, json!({}))), &d).code(0);
    let db = d.p("herald.db");
    assert!(Path::new(&db).exists());
    assert_eq!(columns(&db, "User")[0], "pk");
    assert_eq!(rows(&db, "SELECT rule FROM herald_firing"), vec![vec![json!("b")]]);
}

#[test]
fn replaying_an_input_applies_no_effect_twice() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let pol = d.write("p.herald", "rule b { match ping action notify(to: 1, body: \"x\") }");
    let ev = d.write("e.ndjson", &(ping(1, json!({})) + "\n" + &ping(2, json!({})) + "\n"));
    herald(&["run", "--schema", &schema, "--db", &db, "--events", &ev, &pol], None, &d).code(0);
    herald(&["run", "--schema", &schema, "--db", &db, "--events", &ev, &pol], None, &d).code(0);
    // A different input that repeats an event (its first line is the file's
    // first line, hence --from-start: see the report on checkpoints).
    let again = ping(1, json!({})) + "\n" + &ping(3, json!({})) + "\n" + &ping(2, json!({}));
    herald(&["run", "--from-start", "--schema", &schema, "--db", &db, &pol], Some(&again), &d).code(0);
    assert_eq!(rows(&db, "SELECT count(*) FROM herald_notification")[0][0], json!(3));
    assert_eq!(rows(&db, "SELECT count(*) FROM herald_firing")[0][0], json!(3));
    // An input starting with another event: no flag needed.
    let other = ping(3, json!({})) + "\n" + &ping(1, json!({}));
    herald(&["run", "--schema", &schema, "--db", &db, &pol], Some(&other), &d).code(0);
    assert_eq!(rows(&db, "SELECT count(*) FROM herald_notification")[0][0], json!(3));
    assert_eq!(rows(&db, "SELECT count(*) FROM herald_firing")[0][0], json!(3));
}

// --------------------------------------------------------------------- store

#[test]
fn store_tables_are_named_as_entities_with_their_declared_columns() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let db = d.p("h.db");
    herald(&["db", "init", "--schema", &schema, "--db", &db], None, &d).code(0);
    assert_eq!(columns(&db, "User"), ["pk", "username", "name", "email", "is_active", "attributes", "seen", "ref"]);
    assert_eq!(columns(&db, "Group"), ["pk", "name", "attributes"]);
    // The many-to-many field is a join table, not a column.
    let tables: Vec<String> = rows(&db, "SELECT name FROM sqlite_master WHERE type = 'table'")
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert!(tables.iter().any(|t| t.starts_with("Group") && t.contains("users")), "{tables:?}");
    // Key columns are the primary keys.
    let pk = rows(&db, "SELECT name FROM pragma_table_info('User') WHERE pk = 1");
    assert_eq!(pk, vec![vec![json!("pk")]]);
    // `db init` twice is harmless.
    herald(&["db", "init", "--schema", &schema, "--db", &db], None, &d).code(0);
}

#[test]
fn herald_tables_have_the_contract_columns() {
    let d = Dir::new();
    let db = d.p("h.db");
    herald(&["db", "init", "--db", &db], None, &d).code(0);
    let expect: [(&str, &[&str]); 5] = [
        ("herald_notification", &["id", "rule", "event_uuid", "user_pk", "severity", "body", "created", "seen"]),
        (
            "herald_outbox",
            &[
                "id",
                "rule",
                "event_uuid",
                "to_addrs",
                "cc",
                "bcc",
                "subject",
                "body",
                "status",
                "attempts",
                "last_error",
                "created",
                "sent_at",
            ],
        ),
        ("herald_firing", &["id", "rule", "event_uuid", "fired_at"]),
        ("herald_dead_letter", &["id", "source", "line", "raw", "error", "created"]),
        ("herald_rule_error", &["id", "rule", "event_uuid", "code", "message", "created"]),
    ];
    for (table, cols) in expect {
        let have = columns(&db, table);
        // Extra bookkeeping columns may follow; the contract's come first, in order.
        assert_eq!(&have[..cols.len()], cols, "{table}: {have:?}");
    }
    // The built-in schema's entities are there too.
    assert_eq!(columns(&db, "User")[0], "pk");
}

#[test]
fn stored_values_use_the_documented_encodings() {
    let d = Dir::new();
    let (_, db) = d.store();
    let u = rows(&db, "SELECT is_active, attributes, seen, ref, typeof(is_active) FROM \"User\" WHERE pk = 1");
    assert_eq!(u[0][0], json!(1), "bool as 0/1");
    assert_eq!(u[0][4], json!("integer"));
    let attrs: Value = serde_json::from_str(u[0][1].as_str().unwrap()).expect("any as JSON text");
    assert_eq!(attrs, json!({"k": [1, 2]}));
    let seen = u[0][2].as_str().unwrap();
    assert!(is_rfc3339(seen) && seen.starts_with("2024-01-02T03:04:05"), "{seen}");
    assert_eq!(u[0][3], json!("ab000000-0000-0000-0000-0000000000cd"), "uuid canonical, lower-case, dashed");
    assert_eq!(rows(&db, "SELECT is_active FROM \"User\" WHERE pk = 2")[0][0], json!(0));
    assert_eq!(rows(&db, "SELECT pk FROM \"Group\"")[0][0], json!(OPS));
}

#[test]
fn db_load_upserts_by_key_and_loads_many_to_many_as_key_arrays() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let members = |db: &str| rows(db, "SELECT * FROM \"Group_users\" ORDER BY 2");
    assert_eq!(members(&db), vec![vec![json!(OPS), json!(1)], vec![json!(OPS), json!(2)]]);
    // The same keys again (the group's in 32-hex form): rows are updated, not duplicated.
    let fx = d.write(
        "fx2.json",
        r#"{"User": [{"pk": 2, "username": "bob2", "email": "b@y", "is_active": true, "attributes": {"a": 1}},
                     {"pk": 3, "username": "cy", "email": "c@y", "is_active": true, "attributes": {}}],
            "Group": [{"pk": "11111111222233334444555555555555", "name": "ops2", "attributes": {}, "users": [3]}]}"#,
    );
    herald(&["db", "load", "--schema", &schema, "--db", &db, &fx], None, &d).code(0);
    assert_eq!(rows(&db, "SELECT count(*) FROM \"User\"")[0][0], json!(3));
    assert_eq!(rows(&db, "SELECT username, email FROM \"User\" WHERE pk = 2")[0], [json!("bob2"), json!("b@y")]);
    assert_eq!(rows(&db, "SELECT pk, name FROM \"Group\""), vec![vec![json!(OPS), json!("ops2")]]);
    assert_eq!(members(&db), vec![vec![json!(OPS), json!(3)]]);
    // An unknown entity or a missing required field: exit 2, nothing loaded.
    let bad = d.write("bad.json", r#"{"User": [{"pk": 9, "username": "z"}], "Nope": []}"#);
    herald(&["db", "load", "--schema", &schema, "--db", &db, &bad], None, &d).code(2);
    assert_eq!(rows(&db, "SELECT count(*) FROM \"User\"")[0][0], json!(3));
}

#[test]
fn herald_outbox_stores_address_lists_as_json_and_a_status() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let pol = d.write(
        "p.herald",
        "rule m { match ping action send_email(\"a@x\", \"subj\", \"body\", cc: [\"c@x\"]) }
         rule n { match ping action send_email(to: [\"a@x\", \"b@x\"], subject: \"s2\", body: \"b2\", bcc: [\"z@x\"]) }",
    );
    herald(&["run", "--quiet", "--schema", &schema, "--db", &db, &pol], Some(&ping(1, json!({}))), &d).code(0);
    let r = rows(
        &db,
        "SELECT rule, event_uuid, to_addrs, cc, bcc, subject, body, status, attempts FROM herald_outbox ORDER BY id",
    );
    assert_eq!(r.len(), 2);
    let addrs = |v: &Value| serde_json::from_str::<Value>(v.as_str().unwrap()).unwrap();
    assert_eq!(addrs(&r[0][2]), json!(["a@x"]));
    assert_eq!(addrs(&r[0][3]), json!(["c@x"]));
    assert_eq!(addrs(&r[0][4]), json!([]));
    assert_eq!(addrs(&r[1][2]), json!(["a@x", "b@x"]));
    assert_eq!(addrs(&r[1][4]), json!(["z@x"]));
    assert_eq!(r[0][7], json!("pending"));
    assert_eq!(r[0][8], json!(0));
    let list = herald(&["outbox", "list", "--db", &db], None, &d).code(0);
    assert!(list.stdout.contains("subj") && list.stdout.contains("s2"), "{}", list.stdout);
}

// ------------------------------------------------------------------ language

#[test]
fn keywords_name_fields_after_dot_in_declarations_and_patterns() {
    let (out, ..) = run_both(
        r#"rule kw { match ping { type: "t", obj.match: m } where event.type == "t" and event.obj.rule == 1
             action log("{m} {event.obj.type}") }"#,
        &[ping(1, json!({"type": "t", "obj": {"match": "M", "type": "T", "rule": 1}})), ping(2, json!({"type": "u"}))],
    );
    assert_eq!(out.logs(), ["M T"]);
}

#[test]
fn trailing_commas_are_allowed_everywhere() {
    let (out, ..) = run_both(
        r#"rule tc { match ping { n: 1, s: s, } where len([1, 2, 3,]) == 3
             guard let u = User[1]
             action { log("{s}", level: "info",) notify(to: [1, 2,], body: "x", severity: "alert",) } }"#,
        &[ping(1, json!({"n": 1, "s": "ok"}))],
    );
    assert_eq!(out.logs(), ["ok"]);
}

#[test]
fn string_escapes() {
    let (out, ..) =
        run_both(r#"rule e { match ping action log("q\" b\\ n\n t\t r\r \{x\} \u{1F600}") }"#, &[ping(1, json!({}))]);
    assert_eq!(out.logs(), ["q\" b\\ n\n t\t r\r {x} \u{1F600}"]);
}

#[test]
fn interpolation_formats_any_expression() {
    let (out, ..) = run_both(
        r#"const greet = "hi"
           rule i { match ping guard let u = User[1]
             action log("{1 + 2 * 3} {u.seen} {event.created} {u.attributes} {[1, 2]} {u.is_active} {greet} {upper(u.username)} {first Group(name == "ops").name} {event.f}") }"#,
        &[ping(1, json!({"f": 4.5}))],
    );
    assert_eq!(out.logs(), [r#"7 2024-01-02T03:04:05Z 2024-05-06T07:08:09Z {"k":[1,2]} [1,2] true hi ANN ops 4.5"#]);
}

#[test]
fn match_alternatives_any_nested_dotted_and_wildcard_patterns() {
    let (out, ..) = run_both(
        r#"rule alt { match ping | pong action log("alt {event.action}") }
           rule anyr { match any where event.action == "pong" action log("any") }
           rule nested { match ping { obj: { a: { b: 3 } } } action log("nested") }
           rule dotted { match ping { obj.a.b: 3 } action log("dotted") }
           rule under { match ping { s: _ } action log("under {event.s}") }"#,
        &[
            ping(1, json!({"obj": {"a": {"b": 3}}, "s": "yes"})),
            ping(2, json!({"obj": {"a": {"b": 4}}, "s": null})),
            json!({"action": "pong", "event_uuid": "00000000-0000-0000-0000-000000000003", "created": "2024-05-06T07:08:09Z"}).to_string(),
            json!({"action": "other", "event_uuid": "00000000-0000-0000-0000-000000000004", "created": "2024-05-06T07:08:09Z"}).to_string(),
        ],
    );
    assert_eq!(out.logs(), ["alt ping", "nested", "dotted", "under yes", "alt ping", "alt pong", "any"]);
}

#[test]
fn consts_are_usable_anywhere() {
    let (out, ..) = run_both(
        r#"const one = 1
           const name = "ops"
           rule c { match ping { n: one } where event.n == one guard let g = first Group(name == name)
             guard count User(pk == one) == one action log("{name} {g.name} {one + one}") }
           const late = "defined after use is fine"
           rule d { match ping { n: 2 } action log(late) }"#,
        &[ping(1, json!({"n": 1})), ping(2, json!({"n": 2}))],
    );
    assert_eq!(out.logs(), ["ops ops 2", "defined after use is fine"]);
}

#[test]
fn arguments_are_named_or_positional_and_notify_removes_duplicates() {
    let (_, _dir, db) = run_both(
        r#"rule a { match ping action { notify(1, "pos") notify(body: "named", to: [1, 1, 2], severity: "alert")
             notify(all User(pk == 1) + all User(), "entities", severity: "warning") } }"#,
        &[ping(1, json!({}))],
    );
    let r = rows(&db, "SELECT user_pk, severity, body FROM herald_notification ORDER BY id");
    assert_eq!(
        r,
        vec![
            vec![json!(1), json!("notice"), json!("pos")],
            vec![json!(1), json!("alert"), json!("named")],
            vec![json!(2), json!("alert"), json!("named")],
            vec![json!(1), json!("warning"), json!("entities")],
            vec![json!(2), json!("warning"), json!("entities")],
        ]
    );
}

#[test]
fn for_if_else_and_many_to_many_reads() {
    let (out, ..) = run_both(
        r#"rule l { match ping guard let g = Group["11111111-2222-3333-4444-555555555555"]
             action for u in g.users { if u.is_active { log("active {u.username}") } else { log("inactive {u.username}") } } }
           rule f { match ping action for u in first Group(name == "ops").users { log(u.username) } }
           rule none { match ping action for u in first Group(name == "nobody").users { log(u.username) } }"#,
        &[ping(1, json!({}))],
    );
    let logs = out.logs();
    assert_eq!(logs.len(), 4, "{logs:?}");
    let mut l = logs[..2].to_vec();
    l.sort();
    assert_eq!(l, ["active ann", "inactive bob"]);
}

#[test]
fn store_queries_by_key_list_filter_and_all() {
    let (out, ..) = run_both(
        r#"rule q { match ping guard count User() == 2 guard exists User(username == "ann") guard not exists User(username == "zed")
             action log("{len(all User())} {len(all User(is_active))} {len(User[[2, 1, 99]])} {User[[2, 1, 99]][0].username} {first User(pk > 1).username} {User[99] == null}") }"#,
        &[ping(1, json!({}))],
    );
    assert_eq!(out.logs(), ["2 1 2 bob bob true"]);
}

#[test]
fn uuid_lookups_accept_the_32_hex_form() {
    let (out, ..) = run_both(
        r#"rule u { match ping guard let g = Group["11111111222233334444555555555555"]
             guard let h = Group["11111111-2222-3333-4444-555555555555"]
             action log("{g.pk} {g.pk == h.pk} {g.name}") }"#,
        &[ping(1, json!({}))],
    );
    assert_eq!(out.logs(), [format!("{OPS} true ops")]);
}

#[test]
fn comparisons_against_absent_are_false_except_ne_and_null_tests() {
    // LANGUAGE.md v1: `!=` is exactly `not ==`, so `neq` fires wherever
    // `not-eq` does (absent and null included); `!= null` is a null test.
    let (out, ..) = run_both(
        r#"rule neq { match ping where event.s != "x" action log("neq") }
           rule eq { match ping where not (event.s == "x") action log("not-eq") }
           rule isnull { match ping where event.s == null action log("null") }
           rule notnull { match ping where event.s != null action log("present") }
           rule falsy { match ping where event.ok == false action log("false") }"#,
        &[ping(1, json!({})), ping(2, json!({"s": null})), ping(3, json!({"s": "y", "ok": false}))],
    );
    assert_eq!(out.logs(), ["neq", "not-eq", "null", "neq", "not-eq", "null", "neq", "not-eq", "present", "false"]);
}

#[test]
fn empty_and_arithmetic_and_predicates_on_absent() {
    let (out, ..) = run_both(
        r#"rule e { match ping where empty(event.n + 1) and empty(event.s) and not starts_with(event.s, "a")
             and empty(event.obj.x.y) action log("absent {event.n}") }
           rule v { match ping where empty("") and empty([]) and not empty(event.obj) and empty(event.obj.o) action log("values") }"#,
        &[ping(1, json!({})), ping(2, json!({"obj": {"o": {}}}))],
    );
    let logs = out.logs();
    assert!(logs.contains(&"values".to_string()), "{logs:?}");
    assert_eq!(logs.iter().filter(|l| l.starts_with("absent")).count(), 2, "{logs:?}");
}

#[test]
fn in_tests_membership_and_substrings() {
    let (out, ..) = run_both(
        r#"rule i { match ping where "b" in "abc" and 2 in [1, 2] and not ("z" in "abc") and event.n in event.ids
             action log("in") }"#,
        &[ping(1, json!({"n": 3, "ids": [1, 3]})), ping(2, json!({"n": 4, "ids": [1, 3]}))],
    );
    assert_eq!(out.logs(), ["in"]);
}

#[test]
fn set_append_remove_into_any_and_later_rules_see_earlier_writes() {
    let (out, _dir, db) = run_both(
        r#"rule w1 { match ping { n: 1 } guard let u = User[1] action {
             set u.attributes.a.b = 5
             append "x" to u.attributes.list
             append "y" to u.attributes.list
             remove u.attributes.k
             set u.name = "Ann2"
             set u.seen = event.created
           } }
           rule w2 { match ping { n: 1 } guard let u = User[1] action log("{u.name} {u.attributes} {u.seen}") }
           rule w3 { match ping { n: 2 } guard let g = Group["11111111-2222-3333-4444-555555555555"]
             action append 1 to g.attributes.h }"#,
        &[ping(1, json!({"n": 1, "created": "2024-05-06T09:08:09+02:00"})), ping(2, json!({"n": 2}))],
    );
    assert_eq!(out.logs(), [r#"Ann2 {"a":{"b":5},"list":["x","y"]} 2024-05-06T07:08:09Z"#]);
    let u = rows(&db, "SELECT name, attributes, seen FROM \"User\" WHERE pk = 1");
    assert_eq!(u[0][0], json!("Ann2"));
    let attrs: Value = serde_json::from_str(u[0][1].as_str().unwrap()).unwrap();
    assert_eq!(attrs, json!({"a": {"b": 5}, "list": ["x", "y"]}));
    assert!(is_rfc3339(u[0][2].as_str().unwrap()));
    let g = rows(&db, "SELECT attributes FROM \"Group\"");
    assert_eq!(serde_json::from_str::<Value>(g[0][0].as_str().unwrap()).unwrap(), json!({"h": [1]}));
}

#[test]
fn setting_absent_removes_nulls_or_fails_for_required_columns() {
    let (out, _dir, db) = run_both(
        r#"rule opt { match ping { n: 1 } guard let u = User[1] action { set u.name = event.s set u.attributes.k = event.s } }
           rule req { match ping { n: 2 } guard let u = User[1] action { set u.email = "changed@x" set u.username = event.s } }
           rule after { match ping { n: 2 } guard let u = User[1] action log("{u.username} {u.email}") }"#,
        &[ping(1, json!({"n": 1})), ping(2, json!({"n": 2}))],
    );
    let u = rows(&db, "SELECT name, attributes, username, email FROM \"User\" WHERE pk = 1");
    assert_eq!(u[0][0], Value::Null, "absent into an optional column is NULL");
    assert_eq!(
        serde_json::from_str::<Value>(u[0][1].as_str().unwrap()).unwrap(),
        json!({}),
        "absent removes an any key"
    );
    // The failing rule's effects are rolled back, recorded, and processing continues.
    assert_eq!(u[0][2], json!("ann"));
    assert_eq!(u[0][3], json!("ann@x"));
    assert_eq!(out.logs(), ["ann ann@x"]);
    let e = rows(&db, "SELECT rule, event_uuid, code FROM herald_rule_error");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0][0], json!("req"));
    assert_eq!(e[0][1], json!("00000000-0000-0000-0000-000000000002"));
    assert!(e[0][2].as_str().unwrap().starts_with('R'));
    assert!(out.stderr.contains("rule errors: 1"), "{}", out.stderr);
}

#[test]
fn set_on_event_and_store_queries_in_match_are_compile_errors() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    for pol in [
        "rule a { match ping action set event.s = \"x\" }",
        "rule b { match ping where exists User(pk == 1) }",
        "rule c { match ping where event.nosuch == 1 }",
        "rule d { match ping action notify(to: 1) }",
    ] {
        let p = d.write("p.herald", pol);
        let out = herald(&["check", "--schema", &schema, &p], None, &d);
        assert_eq!(out.code, 1, "{pol}: {}", out.stderr);
    }
}

#[test]
fn every_db_command_defaults_to_herald_db_in_the_working_directory() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let fx = d.write("fx.json", FIXTURES);
    herald(&["outbox", "list"], None, &d).code(2);
    herald(&["db", "init", "--schema", &schema], None, &d).code(0);
    herald(&["db", "load", "--schema", &schema, &fx], None, &d).code(0);
    let db = d.p("herald.db");
    assert_eq!(rows(&db, "SELECT count(*) FROM \"User\"")[0][0], json!(2));
    let pol = d.write("p.herald", "rule m { match ping action send_email(\"a@x\", \"subject-1\", \"b\") }");
    herald(&["run", "--quiet", "--schema", &schema, &pol], Some(&ping(1, json!({}))), &d).code(0);
    let list = herald(&["outbox", "list"], None, &d).code(0);
    assert!(list.stdout.contains("subject-1"), "{}", list.stdout);
}

#[test]
fn events_default_to_standard_input_and_dash_names_it() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let pol = d.write("p.herald", "rule b { match ping }");
    let out = herald(
        &["run", "--quiet", "--schema", &schema, "--db", &db, "--events", "-", &pol],
        Some(&ping(7, json!({}))),
        &d,
    )
    .code(0);
    assert_eq!(out.firings().len(), 1);
}

#[test]
fn uuids_compare_with_string_literals_in_any_case_and_form() {
    let (out, ..) = run_both(
        r#"rule a { match ping where event.event_uuid == "abcdef00-0000-0000-0000-000000000001" action log("dashed") }
           rule b { match ping where event.event_uuid == "ABCDEF00000000000000000000000001" action log("hex") }
           rule c { match ping action log("{event.event_uuid}") }"#,
        &[json!({"action": "ping", "event_uuid": "ABCDEF00-0000-0000-0000-000000000001", "created": "2024-05-06T07:08:09Z"})
            .to_string()],
    );
    assert_eq!(out.logs(), ["dashed", "hex", "abcdef00-0000-0000-0000-000000000001"]);
    assert_eq!(out.firings()[0]["event_uuid"], "abcdef00-0000-0000-0000-000000000001");
}

#[test]
fn timestamps_interpolate_as_rfc3339_with_seconds_and_compare_with_strings() {
    let (out, ..) = run_both(
        r#"rule t { match ping where event.created > "2024-05-06T05:00:00Z" and event.created < "2024-05-06T05:09:00Z"
             action log("{event.created}") }"#,
        &[json!({"action": "ping", "event_uuid": "00000000-0000-0000-0000-000000000001",
                 "created": "2024-05-06T07:08:09.123456+02:00"})
        .to_string()],
    );
    // Decision: shown in UTC, to the second.
    assert_eq!(out.logs(), ["2024-05-06T05:08:09Z"]);
}

#[test]
fn bad_conversions_are_rule_errors_and_later_rules_still_run() {
    let (out, _dir, db) = run_both(
        r#"rule conv { match ping guard let u = User[1] action { notify(1, "rolled back") set u.is_active = u.attributes.k } }
           rule parse { match ping action log("{int(event.s) + 1}") }
           rule next { match ping action log("next") }"#,
        &[ping(1, json!({"s": "x"})), ping(2, json!({"s": "41"}))],
    );
    assert_eq!(out.logs(), ["next", "42", "next"]);
    let errs = rows(&db, "SELECT rule, code FROM herald_rule_error ORDER BY id");
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert_eq!(
        rows(&db, "SELECT count(*) FROM herald_notification")[0][0],
        json!(0),
        "the failing rule's notify is rolled back"
    );
    assert_eq!(rows(&db, "SELECT is_active FROM \"User\" WHERE pk = 1")[0][0], json!(1));
}

#[test]
fn warnings_do_not_fail_check_and_filter_fields_shadow_outer_names() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let pol =
        d.write("p.herald", r#"rule s { match ping { s: name } guard exists User(name == name) action log(name) }"#);
    let out = herald(&["check", "--schema", &schema, "--format", "json", &pol], None, &d).code(0);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["errors"], json!(0));
    assert!(v["warnings"].as_u64().unwrap() >= 1);
    assert!(v["diagnostics"].as_array().unwrap().iter().any(|d| d["severity"] == "warning"));
    // At run time the bare `name` is the User's field: `name == name` holds for
    // every user whose name is set (Ann), whatever the event says.
    let (out, ..) = run_both(
        r#"rule s { match ping { s: name } guard exists User(name == name) action log(name) }"#,
        &[ping(1, json!({"s": "nobody"}))],
    );
    assert_eq!(out.logs(), ["nobody"]);
}

#[test]
fn literal_patterns_must_be_checked_at_compile_time() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    for (pol, code) in [
        (r#"rule a { match ping where matches(event.s, "(") }"#, 1),
        (r#"rule a { match ping where ip_in(event.s, "10.0.0.0/99") }"#, 1),
        (r#"rule a { match ping where matches(event.s, event.s) }"#, 1),
        (r#"rule a { match ping where now() == event.created }"#, 1),
        (r#"rule a { match ping where matches(event.s, "^a.c$") and ip_in(event.s, "10.0.0.0/8") }"#, 0),
    ] {
        let p = d.write("p.herald", pol);
        let out = herald(&["check", "--schema", &schema, &p], None, &d);
        assert_eq!(out.code, code, "{pol}: {}", out.stderr);
    }
}

#[test]
fn a_database_that_does_not_fit_the_schema_is_unusable() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    let pol = d.write("p.herald", "rule b { match ping }");
    let db = d.p("other.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE \"User\" (id INTEGER, foo TEXT)").unwrap();
    drop(conn);
    herald(&["db", "init", "--schema", &schema, "--db", &db], None, &d).code(2);
    herald(&["run", "--schema", &schema, "--db", &db, &pol], Some(&ping(1, json!({}))), &d).code(2);
}

#[test]
fn an_unreachable_smtp_server_leaves_email_in_the_outbox_and_run_succeeds() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let pol = d.write("p.herald", "rule m { match ping action send_email(\"a@x\", \"s\", \"b\") }");
    // Port 1 on loopback: refused at once.
    let out = herald(
        &["run", "--schema", &schema, "--db", &db, "--smtp", "smtp://127.0.0.1:1", &pol],
        Some(&ping(1, json!({}))),
        &d,
    )
    .code(0);
    assert!(out.stderr.contains("0 sent"), "{}", out.stderr);
    let r = rows(&db, "SELECT status, attempts, last_error IS NOT NULL, sent_at FROM herald_outbox");
    // Decision: `failed` means the last attempt failed; it is retried later.
    assert_eq!(r, vec![vec![json!("failed"), json!(1), json!(1), Value::Null]]);
    // Flushing to the same dead server: still undelivered, exit 2.
    herald(&["outbox", "flush", "--db", &db, "--smtp", "smtp://127.0.0.1:1"], None, &d).code(2);
}

#[test]
fn operators_precedence_and_builtins() {
    let (out, ..) = run_both(
        r#"rule o { match ping action log("{1 + 2 * 3 - -4} {7 % 3} {7 / 2} {[1] + [2, 3]} {"a" + "b"} {len("héllo")} {lower("AB")} {upper("ab")} {trim("  x ")} {starts_with("abc", "ab")} {ends_with("abc", "bc")} {contains("abc", "b")} {not true or true and false} {(2 < 3) == true}") }"#,
        &[ping(1, json!({}))],
    );
    assert_eq!(out.logs(), ["11 1 3 [1,2,3] ab 5 ab AB x true true true false true"]);
}

#[test]
fn let_keeps_optionals_and_guard_let_unwraps_them() {
    let (out, ..) = run_both(
        r#"rule l { match ping let s = event.s guard let t = event.s guard t != "skip" action log("{s} {t} {len(t)}") }"#,
        &[ping(1, json!({})), ping(2, json!({"s": "skip"})), ping(3, json!({"s": "abc"}))],
    );
    assert_eq!(out.logs(), ["abc abc 3"]);
}

#[test]
fn only_values_a_rule_reads_are_checked_and_undeclared_fields_are_ignored() {
    let (out, _dir, db) = run_both(
        r#"rule r { match ping { s: s } action log(s) }"#,
        &[
            ping(1, json!({"s": "a", "n": "not an int, but unread", "extra": {"x": 1}})),
            ping(2, json!({"s": 5})),
            json!({"action": "pong", "event_uuid": "00000000-0000-0000-0000-000000000003", "created": "2024-05-06T07:08:09Z", "s": 5})
                .to_string(),
        ],
    );
    assert_eq!(out.logs(), ["a"]);
    // The value the rule reads contradicts the schema: its rule error (v1).
    assert!(rows(&db, "SELECT line FROM herald_dead_letter").is_empty());
    assert_eq!(rows(&db, "SELECT line, code FROM herald_rule_error"), vec![vec![json!(2), json!("R0006")]]);
}

#[test]
fn rules_run_in_declaration_order_with_files_in_command_line_order() {
    let d = Dir::new();
    let (schema, db) = d.store();
    let a = d.write("a.herald", "rule a1 { match ping action log(\"a1\") }\nrule a2 { match ping action log(\"a2\") }");
    let b = d.write("b.herald", "rule b1 { match ping | pong action log(\"b1\") }");
    let out = herald(&["run", "--schema", &schema, "--db", &db, &b, &a], Some(&ping(1, json!({}))), &d).code(0);
    assert_eq!(out.logs(), ["b1", "a1", "a2"]);
    let rules: Vec<Value> = out.firings().iter().map(|f| f["rule"].clone()).collect();
    assert_eq!(rules, [json!("b1"), json!("a1"), json!("a2")]);
}

#[test]
fn alternatives_share_the_patterns_of_their_common_fields() {
    let (out, ..) = run_both(
        r#"rule c { match ping | pong { user.pk: pk } where pk > 1 action log("{event.action} {pk}") }"#,
        &[
            ping(1, json!({"user": {"pk": 2}})),
            ping(2, json!({"user": {"pk": 1}})),
            json!({"action": "pong", "event_uuid": "00000000-0000-0000-0000-000000000003", "created": "2024-05-06T07:08:09Z",
                   "user": {"pk": 3}})
            .to_string(),
        ],
    );
    assert_eq!(out.logs(), ["ping 2", "pong 3"]);
}

#[test]
fn db_load_replaces_a_row_as_given_and_resolves_keys_across_entities() {
    let d = Dir::new();
    let (schema, db) = d.store();
    // With `--replace` (v1; the v0 default), a loaded row is the row's whole
    // new state. An omitted optional field becomes NULL, an omitted
    // many-to-many field an empty set. The default merges (see store_load.rs).
    let fx = d.write(
        "fx.json",
        r#"{"Group": [{"pk": "11111111-2222-3333-4444-555555555555", "name": "ops", "attributes": {}},
                      {"pk": "31111111-2222-3333-4444-555555555555", "name": "new", "attributes": {}, "users": [5]}],
            "User": [{"pk": 1, "username": "ann", "email": "ann@x", "is_active": true, "attributes": {}},
                     {"pk": 5, "username": "eve", "email": "e@x", "is_active": true, "attributes": {}}]}"#,
    );
    herald(&["db", "load", "--replace", "--schema", &schema, "--db", &db, &fx], None, &d).code(0);
    assert_eq!(rows(&db, "SELECT name, seen, ref FROM \"User\" WHERE pk = 1"), vec![vec![Value::Null; 3]]);
    // A group listed before its members' entity still links them.
    assert_eq!(
        rows(&db, "SELECT * FROM \"Group_users\" ORDER BY 2"),
        vec![vec![json!("31111111-2222-3333-4444-555555555555"), json!(5)]]
    );
}

#[test]
fn db_load_rejects_values_of_the_wrong_type_and_unknown_member_keys() {
    let d = Dir::new();
    let (schema, db) = d.store();
    for bad in [
        r#"{"User": [{"pk": 7, "username": "x", "email": "e", "is_active": "yes", "attributes": {}}]}"#,
        r#"{"User": [{"pk": 7, "username": "x", "email": "e", "is_active": true, "attributes": {}, "seen": "yesterday"}]}"#,
        r#"{"User": [{"pk": 7, "username": "x", "email": "e", "is_active": true, "attributes": {}, "ref": "nope"}]}"#,
        r#"{"Group": [{"pk": "41111111-2222-3333-4444-555555555555", "name": "g", "attributes": {}, "users": [99]}]}"#,
        r#"[{"pk": 1}]"#,
    ] {
        let fx = d.write("bad.json", bad);
        let out = herald(&["db", "load", "--schema", &schema, "--db", &db, &fx], None, &d);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
    }
    assert_eq!(rows(&db, "SELECT count(*) FROM \"User\"")[0][0], json!(2), "nothing was loaded");
    assert_eq!(rows(&db, "SELECT count(*) FROM \"Group\"")[0][0], json!(1));
}

#[test]
fn loop_bindings_are_entity_bindings_and_remove_clears_optional_columns() {
    let (out, _dir, db) = run_both(
        r#"rule a { match ping { n: 1 } action for u in all User() { set u.attributes.seen_by = event.event_uuid remove u.name } }
           rule b { match ping { n: 1 } guard let g = first Group(name == "ops") action { append "a" to g.attributes.log remove g.attributes.log append "b" to g.attributes.log } }
           rule c { match ping { n: 1 } action for u in all User() { log("{u.name == null} {u.attributes.seen_by}") } }"#,
        &[ping(1, json!({"n": 1}))],
    );
    let id = "00000000-0000-0000-0000-000000000001";
    assert_eq!(out.logs(), [format!("true {id}"), format!("true {id}")]);
    assert_eq!(rows(&db, "SELECT count(*) FROM \"User\" WHERE name IS NULL")[0][0], json!(2));
    let g = rows(&db, "SELECT attributes FROM \"Group\"");
    assert_eq!(serde_json::from_str::<Value>(g[0][0].as_str().unwrap()).unwrap(), json!({"log": ["b"]}));
}

#[test]
fn json_columns_count_characters_and_offsets_count_bytes() {
    let d = Dir::new();
    let schema = d.write("s.herald", SCHEMA);
    // `é` and `😀` before the error on its line: 2 and 4 bytes, one column each.
    let text = "rule r { match ping where \"é😀\" == nosuch }";
    let pol = d.write("p.herald", text);
    let out = herald(&["check", "--schema", &schema, "--format", "json", &pol], None, &d).code(1);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let diag = &v["diagnostics"][0];
    let byte = text.find("nosuch").unwrap();
    assert_eq!(diag["offset"], json!(byte));
    assert_eq!(diag["length"], json!(6));
    assert_eq!(diag["column"], json!(text[..byte].chars().count() + 1));
    assert_eq!(diag["file"], json!(pol));
}

#[test]
fn match_any_sees_undeclared_event_types_and_a_missing_discriminator_is_a_dead_letter() {
    let (out, _dir, db) = run_both(
        r#"rule a { match any action log("{event.action}") }"#,
        &[
            json!({"action": "other", "event_uuid": "00000000-0000-0000-0000-000000000001", "created": "2024-05-06T07:08:09Z"})
                .to_string(),
            ping(2, json!({})),
            json!({"event_uuid": "00000000-0000-0000-0000-000000000003", "created": "2024-05-06T07:08:09Z"}).to_string(),
        ],
    );
    assert_eq!(out.logs(), ["other", "ping"]);
    assert_eq!(rows(&db, "SELECT line FROM herald_dead_letter"), vec![vec![json!(3)]]);
}

#[test]
fn keyword_named_entity_fields_can_be_filtered_on() {
    // The built-in `User` has a `type` field; a filter must be able to name it.
    let d = Dir::new();
    let pol = d.write(
        "p.herald",
        r#"rule t { match login guard exists User(type == "internal") guard count User(type != null) > 0 action log("x") }"#,
    );
    herald(&["check", &pol], None, &d).code(0);
    // Outside a filter, a bare `type` is still not a name.
    let bad = d.write("bad.herald", r#"rule t { match login action log("{type}") }"#);
    let out = herald(&["check", &bad], None, &d).code(1);
    assert!(out.stderr.contains("keyword"), "{}", out.stderr);
    // A user schema with keyword-named fields, key included.
    let schema = d.write(
        "k.herald",
        r#"discriminator action
           identity event_uuid
           event * { event_uuid: uuid, created: timestamp }
           event ping { match: string?, rule: { in: int }? }
           entity Thing key key: int { type: string, for: any }"#,
    );
    let db = d.p("k.db");
    let fx = d.write("kf.json", r#"{"Thing": [{"key": 1, "type": "a", "for": {}}]}"#);
    herald(&["db", "load", "--schema", &schema, "--db", &db, &fx], None, &d).code(0);
    let pol = d.write(
        "kp.herald",
        r#"rule k { match ping { match: m, rule.in: 3 } guard let t = first Thing(type == "a" and key == 1)
             action { set t.type = m set t.for.else = event.rule.in log("{t.type} {t.for} {t.key}") } }"#,
    );
    let ev = r#"{"action":"ping","event_uuid":"00000000-0000-0000-0000-000000000001","created":"2024-05-06T07:08:09Z","match":"mm","rule":{"in":3}}"#;
    let out = herald(&["run", "--schema", &schema, "--db", &db, &pol], Some(ev), &d).code(0);
    assert_eq!(out.logs(), [r#"mm {"else":3} 1"#]);
}
