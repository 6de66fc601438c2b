//! Webhook delivery against a real HTTP server on 127.0.0.1, started by
//! each test (a small `std::net` server below), with real SQLite stores.
//! Nothing is mocked: `herald run`, `herald outbox flush` and `outbox list`
//! run as processes; the retry tests drive `webhook::Sender` directly to
//! use short timeouts.

mod runtime_support;

use herald::compile::{self, SchemaChoice};
use herald::engine::{self, InterpMatcher, RunOptions};
use herald::mail::Mode;
use herald::span::SourceMap;
use herald::store::{Kind, OutboxStore, Store};
use herald::webhook::{Sender, WebhookConfig};
use runtime_support::*;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ------------------------------------------------------------ HTTP server

/// One request as the server read it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// How the server answers a request.
#[derive(Debug, Clone)]
enum Reply {
    Status {
        code: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Read the request and never answer (the connection stays open).
    Hang,
}

fn status(code: u16) -> Reply {
    Reply::Status { code, headers: Vec::new(), body: String::new() }
}

struct HttpServer {
    base: String,
    requests: Arc<Mutex<Vec<Request>>>,
    /// Connections accepted (a hung request is counted here).
    connections: Arc<Mutex<usize>>,
}

impl HttpServer {
    /// Answers with `script` in order, then with `200 OK` forever.
    fn start(script: Vec<Reply>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (reqs, conns) = (requests.clone(), connections.clone());
        std::thread::spawn(move || {
            let mut hung: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                *conns.lock().unwrap() += 1;
                let Some(req) = read_request(&stream) else { continue };
                reqs.lock().unwrap().push(req);
                let reply = script.lock().unwrap().pop_front().unwrap_or_else(|| status(200));
                match reply {
                    Reply::Hang => hung.push(stream),
                    Reply::Status { code, headers, body } => {
                        let mut s = stream;
                        let mut head = format!(
                            "HTTP/1.1 {code} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                            reason(code),
                            body.len()
                        );
                        for (k, v) in headers {
                            head.push_str(&format!("{k}: {v}\r\n"));
                        }
                        head.push_str("\r\n");
                        let _ = s.write_all(head.as_bytes());
                        let _ = s.write_all(body.as_bytes());
                        let _ = s.flush();
                    }
                }
            }
        });
        HttpServer { base, requests, connections }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

// ---------------------------------------------------------------- policies

/// A policy that is its own schema: `deploy` events announce a service.
fn policy(url: &str, extra: &str) -> String {
    format!(
        r#"discriminator kind
identity id
event * {{ id: string }}
event deploy {{ service: string, version: string, headers: any? }}

rule announce {{
  match deploy {{ service: s, version: v }}
  action webhook(url: "{url}", body: "\{{\"text\": \"{{s}} {{v}} is live\"\}}", headers: event.headers{extra})
}}
"#
    )
}

const EVENTS: &str = concat!(
    r#"{"kind":"deploy","id":"d-1","service":"api","version":"1.2.3","headers":{"X-Trace":"t-1","Authorization":"Bearer s3cret"}}"#,
    "\n"
);

fn list_json(tmp: &Tmp) -> Vec<Value> {
    let out = herald(&["outbox", "list", "--db", &tmp.p("h.db"), "--format", "json"], None).ok();
    out.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// Queues the policy's webhooks with the engine alone (no delivery).
fn queue(tmp: &Tmp, policy_text: &str, events: &str) {
    let mut sources = SourceMap::new();
    let id = sources.add("hook.herald", policy_text.to_string());
    let compiled = compile::compile(&mut sources, SchemaChoice::Auto, &[id]);
    let program = Arc::new(compiled.program.expect("the policy compiles"));
    let store = Store::open(&tmp.path("h.db"), program.schema.clone()).expect("store");
    let matcher = Arc::new(InterpMatcher::new(program.clone()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let opts = RunOptions { workers: 1, ..RunOptions::default() };
    let stats = engine::run(program, matcher, &store, events.as_bytes(), opts, &mut out, &mut err).expect("runs");
    assert_eq!(stats.effects.webhooks, 1, "{}", String::from_utf8_lossy(&err));
}

fn fast(max_attempts: i64) -> Sender {
    Sender::new(WebhookConfig {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_millis(800),
        max_attempts,
    })
}

// ------------------------------------------------------------------- tests

#[test]
fn run_delivers_the_rendered_body_and_headers_once_even_when_replayed() {
    let server = HttpServer::start(vec![]);
    let tmp = Tmp::new();
    let pol = tmp.write("hook.herald", policy(&format!("{}/hooks/deploy?x=1", server.base), ""));
    let events = tmp.write("events.ndjson", EVENTS);
    let db = tmp.p("h.db");
    let out = herald(&["run", "--db", &db, "--events", &events, &pol], None).ok();
    assert!(out.stderr.contains("webhooks: 1 queued, 1 sent, 0 failed"), "{}", out.stderr);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hooks/deploy?x=1"));
    assert_eq!(r.body, r#"{"text": "api 1.2.3 is live"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"), "a string holding JSON is sent as JSON");
    assert_eq!(r.header("x-trace"), Some("t-1"));
    assert_eq!(r.header("authorization"), Some("Bearer s3cret"));
    assert!(r.header("idempotency-key").is_some_and(|k| k.starts_with("herald-1-")), "{r:?}");
    assert!(r.header("user-agent").is_some_and(|a| a.starts_with("herald/")), "{r:?}");

    let rows = list_json(&tmp);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["kind"].as_str(), rows[0]["status"].as_str()), (Some("webhook"), Some("sent")));
    assert_eq!(rows[0]["response_status"], 200);
    assert!(rows[0].get("headers").is_none(), "headers may hold credentials: not listed");

    // The same input again, and from its start: nothing is sent twice.
    herald(&["run", "--db", &db, "--events", &events, &pol], None).ok();
    herald(&["run", "--db", &db, "--events", &events, "--from-start", &pol], None).ok();
    let flush = herald(&["outbox", "flush", "--db", &db], None).ok();
    assert!(!flush.stderr.contains("sent"), "nothing left to send: {}", flush.stderr);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(list_json(&tmp).len(), 1);
}

#[test]
fn put_with_a_plain_text_body() {
    let server = HttpServer::start(vec![]);
    let tmp = Tmp::new();
    let text = format!(
        r#"discriminator kind
identity id
event * {{ id: string }}
event deploy {{ service: string, version: string }}
rule announce {{
  match deploy {{ service: s }}
  action webhook(url: "{}/topic", body: "{{s}} deployed", method: "PUT")
}}
"#,
        server.base
    );
    let pol = tmp.write("hook.herald", text);
    let events = tmp.write("events.ndjson", EVENTS);
    herald(&["run", "--db", &tmp.p("h.db"), "--events", &events, &pol], None).ok();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!((reqs[0].method.as_str(), reqs[0].body.as_str()), ("PUT", "api deployed"));
    assert_eq!(reqs[0].header("content-type"), Some("text/plain; charset=utf-8"));
}

#[test]
fn a_body_that_is_not_a_string_is_sent_as_json() {
    let server = HttpServer::start(vec![]);
    let tmp = Tmp::new();
    let text = format!(
        r#"discriminator kind
identity id
event * {{ id: string }}
event deploy {{ service: string, version: string, headers: any? }}
rule announce {{
  match deploy
  action webhook(url: "{}/json", body: event.headers)
}}
rule numbers {{
  match deploy
  action webhook(url: "{}/n", body: [1, 2], headers: event.headers)
}}
"#,
        server.base, server.base
    );
    let pol = tmp.write("hook.herald", text);
    let events = tmp.write("events.ndjson", EVENTS);
    herald(&["run", "--db", &tmp.p("h.db"), "--events", &events, &pol], None).ok();
    let mut reqs = server.requests();
    reqs.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/json");
    assert_eq!(reqs[0].body, r#"{"X-Trace":"t-1","Authorization":"Bearer s3cret"}"#);
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!((reqs[1].body.as_str(), reqs[1].header("x-trace")), ("[1,2]", Some("t-1")));
    assert_eq!(reqs[1].header("content-type"), Some("application/json"));
    let k0 = reqs[0].header("idempotency-key").unwrap();
    assert_ne!(Some(k0), reqs[1].header("idempotency-key"), "one key per row");
}

#[test]
fn a_500_is_retried_and_the_retry_carries_the_same_idempotency_key() {
    let server =
        HttpServer::start(vec![Reply::Status { code: 500, headers: vec![], body: "database\nunavailable".into() }]);
    let tmp = Tmp::new();
    let pol = tmp.write("hook.herald", policy(&format!("{}/h", server.base), ""));
    let events = tmp.write("events.ndjson", EVENTS);
    let db = tmp.p("h.db");
    let out = herald(&["run", "--db", &db, "--events", &events, &pol], None).ok();
    assert!(out.stderr.contains("0 sent, 1 failed (retried later)"), "{}", out.stderr);
    let row = &list_json(&tmp)[0];
    assert_eq!((row["status"].as_str(), row["response_status"].as_i64()), (Some("failed"), Some(500)));
    assert_eq!(row["response_excerpt"], "database unavailable");
    assert!(row["last_error"].as_str().unwrap().contains("500"), "{row}");
    assert!(row["next_attempt_at"].is_string() && row["given_up_at"].is_null(), "{row}");

    // The flush ignores the backoff; the server now answers 200.
    let flush = herald(&["outbox", "flush", "--db", &db], None).ok();
    assert!(flush.stderr.contains("webhooks: 1 sent"), "{}", flush.stderr);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let key = reqs[0].header("idempotency-key").expect("a key");
    assert_eq!(reqs[1].header("idempotency-key"), Some(key), "stable across retries");
    assert_eq!(reqs[0].body, reqs[1].body);
    let row = &list_json(&tmp)[0];
    assert_eq!((row["status"].as_str(), row["attempts"].as_i64()), (Some("sent"), Some(2)));
    assert!(row["response_excerpt"].is_null(), "{row}");
}

#[test]
fn a_404_fails_at_once_and_is_never_retried() {
    let server = HttpServer::start(vec![Reply::Status { code: 404, headers: vec![], body: "no such hook".into() }]);
    let tmp = Tmp::new();
    let pol = tmp.write("hook.herald", policy(&format!("{}/gone", server.base), ""));
    let events = tmp.write("events.ndjson", EVENTS);
    let db = tmp.p("h.db");
    let out = herald(&["run", "--db", &db, "--events", &events, &pol], None).ok();
    assert!(out.stderr.contains("0 failed (retried later), 1 given up, 0 waiting"), "{}", out.stderr);
    let row = &list_json(&tmp)[0];
    assert_eq!((row["status"].as_str(), row["response_status"].as_i64()), (Some("failed"), Some(404)));
    assert_eq!(row["response_excerpt"], "no such hook");
    assert!(row["given_up_at"].is_string() && row["next_attempt_at"].is_null(), "{row}");
    assert!(row["last_error"].as_str().unwrap().ends_with("not retried"), "{row}");
    // Neither a flush nor a later run sends it again.
    herald(&["outbox", "flush", "--db", &db], None).ok();
    herald(&["run", "--db", &db, "--events", &events, &pol], None).ok();
    assert_eq!(server.requests().len(), 1);
    let human = herald(&["outbox", "list", "--db", &db], None).ok();
    assert!(human.stdout.contains("gave up") && human.stdout.contains("webhook (HTTP 404)"), "{}", human.stdout);
}

#[test]
fn a_429_waits_for_retry_after() {
    let server = HttpServer::start(vec![Reply::Status {
        code: 429,
        headers: vec![("Retry-After", "2".into())],
        body: String::new(),
    }]);
    let tmp = Tmp::new();
    let pol = tmp.write("hook.herald", policy(&format!("{}/h", server.base), ""));
    let events = tmp.write("events.ndjson", EVENTS);
    let db = tmp.p("h.db");
    let started = Instant::now();
    herald(&["run", "--db", &db, "--events", &events, &pol], None).ok();
    assert_eq!(server.requests().len(), 1);
    let outbox = OutboxStore::open(&tmp.path("h.db")).expect("outbox");
    let sender = fast(5);
    // Not due before the server's two seconds have passed.
    let r = sender.deliver(&outbox, Mode::Due).expect("a pass");
    assert_eq!((r.sent, r.failed, r.remaining), (0, 0, 1), "{r:?}");
    assert_eq!(server.requests().len(), 1);
    // Due after them (the backoff alone would wait 30 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = sender.deliver(&outbox, Mode::Due).expect("a pass");
        if r.sent == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never retried: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() >= Duration::from_secs(2), "retried before Retry-After");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(outbox.counts_of(Kind::Webhook).unwrap().sent, 1);
}

#[test]
fn a_server_that_never_answers_times_out_is_retried_then_given_up() {
    let server = HttpServer::start(vec![Reply::Hang, Reply::Hang]);
    let tmp = Tmp::new();
    queue(&tmp, &policy(&format!("{}/slow", server.base), ""), EVENTS);
    let outbox = OutboxStore::open(&tmp.path("h.db")).expect("outbox");
    let sender = fast(2);
    let r = sender.deliver(&outbox, Mode::All).expect("first pass");
    assert_eq!((r.sent, r.failed, r.given_up, r.remaining), (0, 1, 0, 1), "{r:?}");
    assert!(r.last_error.as_deref().unwrap_or("").contains("timed out"), "{r:?}");
    let r = sender.deliver(&outbox, Mode::All).expect("second pass");
    assert_eq!((r.sent, r.failed, r.given_up, r.remaining), (0, 0, 1, 0), "{r:?}");
    assert!(r.last_error.as_deref().unwrap_or("").contains("gave up after 2 attempts"), "{r:?}");
    let r = sender.deliver(&outbox, Mode::All).expect("third pass");
    assert_eq!((r.sent, r.failed, r.given_up), (0, 0, 0), "{r:?}");
    assert_eq!(server.connections(), 2);
    assert_eq!(outbox.given_up(Kind::Webhook).unwrap(), 1);
}

#[test]
fn connection_refused_is_retried() {
    // A port nobody listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tmp = Tmp::new();
    queue(&tmp, &policy(&format!("http://127.0.0.1:{port}/h"), ""), EVENTS);
    let outbox = OutboxStore::open(&tmp.path("h.db")).expect("outbox");
    let r = fast(3).deliver(&outbox, Mode::All).expect("a pass");
    assert_eq!((r.failed, r.given_up, r.remaining), (1, 0, 1), "{r:?}");
    assert!(r.last_error.as_deref().unwrap_or("").contains("cannot connect"), "{r:?}");
}

#[test]
fn two_senders_never_deliver_one_row_twice() {
    let server = HttpServer::start(vec![]);
    let tmp = Tmp::new();
    let mut events = String::new();
    for i in 0..20 {
        events.push_str(&format!(r#"{{"kind":"deploy","id":"d-{i}","service":"s{i}","version":"1"}}"#));
        events.push('\n');
    }
    let mut sources = SourceMap::new();
    let id = sources.add("hook.herald", policy(&format!("{}/h", server.base), ""));
    let program = Arc::new(compile::compile(&mut sources, SchemaChoice::Auto, &[id]).program.expect("compiles"));
    let store = Store::open(&tmp.path("h.db"), program.schema.clone()).expect("store");
    let matcher = Arc::new(InterpMatcher::new(program.clone()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    engine::run(program, matcher, &store, events.as_bytes(), RunOptions::default(), &mut out, &mut err).unwrap();
    let path = tmp.path("h.db");
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let outbox = OutboxStore::open(&path).expect("outbox");
                fast(3).deliver(&outbox, Mode::All).expect("a pass").sent
            })
        })
        .collect();
    let sent: usize = senders.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sent, 20);
    let mut keys: Vec<String> =
        server.requests().iter().map(|r| r.header("idempotency-key").unwrap().to_string()).collect();
    assert_eq!(keys.len(), 20);
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 20, "every row delivered once");
}

#[test]
fn a_non_http_url_or_a_header_with_a_line_break_is_a_rule_error() {
    let tmp = Tmp::new();
    let pol = tmp.write("hook.herald", policy("ftp://files.example.com/drop", ""));
    let events = tmp.write("events.ndjson", EVENTS);
    let db = tmp.p("h.db");
    let out = herald(&["run", "--db", &db, "--events", &events, &pol], None).ok();
    assert!(out.stderr.contains("rule `announce` failed: R0008"), "{}", out.stderr);
    assert!(out.stderr.contains("only `http` and `https`"), "{}", out.stderr);
    assert!(list_json(&tmp).is_empty(), "nothing queued");

    let server = HttpServer::start(vec![]);
    let tmp = Tmp::new();
    let pol = tmp.write("hook.herald", policy(&format!("{}/h", server.base), ""));
    let bad = r#"{"kind":"deploy","id":"d-2","service":"api","version":"2","headers":{"X-A":"a\r\nX-Injected: yes"}}"#;
    let events = tmp.write("events.ndjson", format!("{bad}\n"));
    let out = herald(&["run", "--db", &tmp.p("h.db"), "--events", &events, &pol], None).ok();
    assert!(out.stderr.contains("rule `announce` failed: R0004"), "{}", out.stderr);
    assert!(list_json(&tmp).is_empty());
    assert!(server.requests().is_empty());
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let tmp = Tmp::new();
    let text = r#"discriminator kind
identity id
event * { id: string }
event deploy { service: string, version: string }
rule say {
  match deploy { service: s }
  action log("deployed {s}", level: "warning")
}
rule fails {
  match deploy { service: s }
  action webhook(url: "gopher://x", body: s)
}
"#;
    let pol = tmp.write("p.herald", text);
    let events = tmp.write("e.ndjson", format!("{EVENTS}not json\n"));
    let out = herald(&["run", "--db", &tmp.p("h.db"), "--events", &events, "--log-format", "json", &pol], None).ok();
    let lines: Vec<Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    for l in &lines {
        assert!(l["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
        assert!(l["level"].is_string() && l["message"].is_string(), "{l}");
    }
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {lines:?}"))
    };
    let log = find("deployed api");
    assert_eq!(
        (log["level"].as_str(), log["rule"].as_str(), log["event"].as_str()),
        (Some("warning"), Some("say"), Some("d-1"))
    );
    assert_eq!(log["line"], 1);
    let err = find("R0008");
    assert_eq!(
        (err["level"].as_str(), err["rule"].as_str(), err["line"].as_i64()),
        (Some("error"), Some("fails"), Some(1))
    );
    let dead = find("dead letter");
    assert_eq!(dead["line"], 2);
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"]["events"], 2, "{summary}");
    assert_eq!(summary["summary"]["rule_errors"], 1, "{summary}");
}

#[test]
fn an_outbox_made_before_webhooks_is_migrated() {
    let tmp = Tmp::new();
    let path = tmp.path("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE herald_outbox (id INTEGER PRIMARY KEY, rule TEXT NOT NULL, event_uuid TEXT NOT NULL, \
             to_addrs TEXT NOT NULL, cc TEXT NOT NULL DEFAULT '[]', bcc TEXT NOT NULL DEFAULT '[]', \
             subject TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', \
             attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created TEXT NOT NULL, sent_at TEXT, \
             next_attempt_at TEXT);
             INSERT INTO herald_outbox (rule, event_uuid, to_addrs, subject, body, created) \
             VALUES ('r', 'e', '[\"a@example.com\"]', 'Hi', 'b', '2026-01-01T00:00:00.000000Z');",
        )
        .unwrap();
    }
    let outbox = OutboxStore::open(&path).expect("migrates");
    assert_eq!(outbox.counts_of(Kind::Email).unwrap().pending, 1);
    assert_eq!(outbox.counts_of(Kind::Webhook).unwrap().unsent(), 0);
    // A webhook pass leaves the email alone.
    let r = fast(3).deliver(&outbox, Mode::All).expect("a pass");
    assert_eq!((r.sent, r.failed, r.remaining), (0, 0, 0));
    assert_eq!(outbox.counts_of(Kind::Email).unwrap().pending, 1);
}

#[test]
fn headers_are_checked_as_a_record_of_strings() {
    let check = |headers: &str| -> Vec<String> {
        let text = format!(
            "rule r {{\n  match login\n  action webhook(url: \"https://h.example.com/\", body: \"b\", headers: {headers})\n}}\n"
        );
        let mut sources = SourceMap::new();
        let id = sources.add("p.herald", text);
        let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &[id]);
        compiled.diagnostics.iter().map(|d| d.code.as_str().to_string()).collect()
    };
    // `HttpRequest` holds only strings (and `any`); `Geo` holds floats.
    assert_eq!(check("event.context.http_request"), Vec::<String>::new());
    assert_eq!(check("event.context.asn"), Vec::<String>::new(), "`any` is checked at run time");
    assert_eq!(check("event.context.geo"), vec!["E0410".to_string()]);
    assert_eq!(check("[\"X-A\"]"), vec!["E0410".to_string()]);
}
