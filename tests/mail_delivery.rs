//! Outbox delivery against a real SMTP server (mailin-embedded, in process,
//! on 127.0.0.1) and real SQLite files. Nothing is mocked.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use herald::mail::{
    check_header, list, list_json, parse_mailbox, validate_address, DeliveryReport, MailError, Mailer, Mode,
    OutboxCounts, SmtpConfig,
};
use herald::store::OutboxStore;
use herald::value::{format_timestamp_store, now_nanos};
use mailin_embedded::{Handler, Response, Server, SslConfig};
use rusqlite::{params, Connection};

const TABLES: &str = include_str!("../src/store/herald_tables.sql");

// ---------------------------------------------------------------- SMTP server

#[derive(Debug, Clone)]
struct Received {
    /// MAIL FROM
    from: String,
    /// RCPT TO, in order
    rcpt: Vec<String>,
    /// The DATA, dot-unstuffed, CRLF line ends.
    data: String,
}

impl Received {
    fn headers(&self) -> Vec<(String, String)> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut out: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.1.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                out.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        out
    }

    /// The one header of that name (panics when absent or repeated).
    fn header(&self, name: &str) -> String {
        let all: Vec<String> =
            self.headers().into_iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v).collect();
        assert_eq!(all.len(), 1, "header {name} in {}", self.data);
        all[0].clone()
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers().iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The body as the client wrote it: lettre ends every message with a
    /// CRLF of its own before the `.` line, which is not part of the body.
    fn body(&self) -> &str {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        body.strip_suffix("\r\n").unwrap_or(body)
    }
}

/// What the test server refuses.
#[derive(Debug, Clone, Default)]
struct Policy {
    /// RCPT TO these addresses gets `550 5.1.1 ...`.
    reject_rcpt: Vec<String>,
    /// Every message gets `554 5.7.1 ...` after its data.
    reject_data: bool,
    /// How long accepting a message takes (a relay doing its checks).
    accept_delay: Duration,
}

#[derive(Clone)]
struct Collector {
    received: Arc<Mutex<Vec<Received>>>,
    sessions: Arc<AtomicUsize>,
    policy: Arc<Policy>,
    // per connection
    from: String,
    rcpt: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Collector {
    fn helo(&mut self, _ip: std::net::IpAddr, _domain: &str) -> Response {
        self.sessions.fetch_add(1, Ordering::SeqCst);
        mailin_embedded::response::OK
    }

    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_string();
        self.rcpt.clear();
        mailin_embedded::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if self.policy.reject_rcpt.iter().any(|r| r == to) {
            return Response::custom(550, format!("5.1.1 <{to}>: no such user here"));
        }
        self.rcpt.push(to.to_string());
        mailin_embedded::response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _8bit: bool, _to: &[String]) -> Response {
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        std::thread::sleep(self.policy.accept_delay);
        if self.policy.reject_data {
            return Response::custom(554, "5.7.1 message refused by policy".to_string());
        }
        self.received.lock().unwrap().push(Received {
            from: self.from.clone(),
            rcpt: std::mem::take(&mut self.rcpt),
            data: String::from_utf8(std::mem::take(&mut self.data)).expect("7-bit mail"),
        });
        mailin_embedded::response::OK
    }
}

struct TestServer {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    sessions: Arc<AtomicUsize>,
}

impl TestServer {
    fn start(policy: Policy) -> TestServer {
        Self::start_with(TcpListener::bind("127.0.0.1:0").unwrap(), policy, SslConfig::None)
    }

    fn start_on(port: u16, policy: Policy) -> TestServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("port free again");
        Self::start_with(listener, policy, SslConfig::None)
    }

    /// The listener is bound before the server thread starts, so clients can
    /// connect at once (the kernel queues them until `accept`).
    fn start_with(listener: TcpListener, policy: Policy, ssl: SslConfig) -> TestServer {
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sessions = Arc::new(AtomicUsize::new(0));
        let handler = Collector {
            received: received.clone(),
            sessions: sessions.clone(),
            policy: Arc::new(policy),
            from: String::new(),
            rcpt: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(handler);
        server.with_name("mx.test").with_ssl(ssl).unwrap().with_tcp_listener(listener);
        // Runs until the test process exits.
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        TestServer { port, received, sessions }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }
}

/// A port nobody listens on (bound once by us, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------- store

struct Db {
    _dir: tempfile::TempDir,
    /// For setting rows up and reading them back.
    conn: Connection,
    /// What delivery uses.
    outbox: OutboxStore,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("herald.db")).unwrap();
    conn.execute_batch(TABLES).unwrap();
    let outbox = OutboxStore::open(&dir.path().join("herald.db")).unwrap();
    Db { _dir: dir, conn, outbox }
}

struct Mail<'a> {
    to: &'a [&'a str],
    cc: &'a [&'a str],
    bcc: &'a [&'a str],
    subject: &'a str,
    body: &'a str,
}

const EVENT: &str = "305332a4-50ac-475e-b97c-e2cd167238a6";

fn insert(conn: &Connection, m: &Mail) -> i64 {
    let json = |l: &[&str]| serde_json::to_string(l).unwrap();
    insert_raw(conn, &json(m.to), &json(m.cc), &json(m.bcc), m.subject, m.body)
}

fn insert_raw(conn: &Connection, to: &str, cc: &str, bcc: &str, subject: &str, body: &str) -> i64 {
    conn.execute(
        "INSERT INTO herald_outbox (rule, event_uuid, to_addrs, cc, bcc, subject, body, created) \
         VALUES ('welcome', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![EVENT, to, cc, bcc, subject, body, format_timestamp_store(now_nanos())],
    )
    .unwrap();
    conn.last_insert_rowid()
}

fn one(conn: &Connection, to: &str, subject: &str) -> i64 {
    insert(conn, &Mail { to: &[to], cc: &[], bcc: &[], subject, body: "hello\n" })
}

#[derive(Debug)]
struct RowState {
    status: String,
    attempts: i64,
    last_error: Option<String>,
    sent_at: Option<String>,
    next_attempt_at: Option<String>,
}

fn state(conn: &Connection, id: i64) -> RowState {
    conn.query_row(
        "SELECT status, attempts, last_error, sent_at, next_attempt_at FROM herald_outbox \
         WHERE id = ?1",
        [id],
        |r| {
            Ok(RowState {
                status: r.get(0)?,
                attempts: r.get(1)?,
                last_error: r.get(2)?,
                sent_at: r.get(3)?,
                next_attempt_at: r.get(4)?,
            })
        },
    )
    .unwrap()
}

fn mailer_for(url: &str) -> Mailer {
    let config = SmtpConfig::parse(url).unwrap();
    Mailer::new(config, parse_mailbox("Herald Alerts <herald@alerts.example.com>").unwrap()).unwrap()
}

fn mailer(port: u16) -> Mailer {
    mailer_for(&format!("smtp://127.0.0.1:{port}"))
}

fn now_plus(secs: i64) -> String {
    format_timestamp_store(now_nanos() + i128::from(secs) * 1_000_000_000)
}

// ---------------------------------------------------------------- decoding

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(val(c)) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

fn quoted_printable_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b[i + 1..].starts_with(b"\r\n") {
                i += 3; // soft line break
            } else {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`).
fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        if !between.trim().is_empty() || out.is_empty() {
            out.push_str(between);
        }
        let word = &rest[start + 2..];
        let mut parts = word.splitn(3, '?');
        let _charset = parts.next().unwrap();
        let enc = parts.next().unwrap().to_ascii_lowercase();
        let tail = parts.next().unwrap();
        let end = tail.find("?=").unwrap();
        let text = &tail[..end];
        let bytes = if enc == "b" { base64_decode(text) } else { quoted_printable_decode(&text.replace('_', " ")) };
        out.push_str(&String::from_utf8(bytes).unwrap());
        rest = &tail[end + 2..];
    }
    out.push_str(rest);
    out
}

fn decoded_body(m: &Received) -> String {
    let cte = if m.has_header("Content-Transfer-Encoding") {
        m.header("Content-Transfer-Encoding").to_ascii_lowercase()
    } else {
        "7bit".to_string()
    };
    let bytes = match cte.as_str() {
        "base64" => base64_decode(m.body()),
        "quoted-printable" => quoted_printable_decode(m.body()),
        _ => m.body().as_bytes().to_vec(),
    };
    String::from_utf8(bytes).unwrap()
}

// ---------------------------------------------------------------- tests

#[test]
fn delivers_each_row_once_with_headers_and_hidden_bcc() {
    let server = TestServer::start(Policy::default());
    let db = db();
    let a = insert(
        &db.conn,
        &Mail {
            to: &["alice@example.com", "bob@example.com"],
            cc: &["carol@example.com"],
            bcc: &["audit@example.com"],
            subject: "Welcome, Alice",
            body: "Hello Alice,\n\nyour account is ready.\n.hidden dot line\n",
        },
    );
    let b = insert(&db.conn, &Mail { to: &["dave@example.org"], cc: &[], bcc: &[], subject: "Second", body: "two" });
    let m = mailer(server.port);

    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!(r, DeliveryReport { sent: 2, ..DeliveryReport::default() });

    let got = server.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    let first = &got[0];
    assert_eq!(first.from, "herald@alerts.example.com");
    assert_eq!(first.rcpt, ["alice@example.com", "bob@example.com", "carol@example.com", "audit@example.com"]);
    assert_eq!(first.header("From"), "\"Herald Alerts\" <herald@alerts.example.com>");
    assert_eq!(first.header("To"), "alice@example.com, bob@example.com");
    assert_eq!(first.header("Cc"), "carol@example.com");
    assert_eq!(first.header("Subject"), "Welcome, Alice");
    assert_eq!(first.header("Message-ID"), format!("<herald.{a}.305332a4@alerts.example.com>"));
    assert_eq!(first.header("Content-Type"), "text/plain; charset=utf-8");
    assert_eq!(first.header("Auto-Submitted"), "auto-generated");
    assert!(first.has_header("Date"));
    // Bcc: in the envelope, never in the message.
    assert!(!first.has_header("Bcc"), "{}", first.data);
    assert!(!first.data.contains("audit@example.com"), "{}", first.data);
    assert_eq!(decoded_body(first), "Hello Alice,\r\n\r\nyour account is ready.\r\n.hidden dot line\r\n");

    let second = &got[1];
    assert_eq!(second.rcpt, ["dave@example.org"]);
    assert_eq!(second.header("To"), "dave@example.org");
    assert!(!second.has_header("Cc"));
    assert_eq!(second.header("Subject"), "Second");
    assert_eq!(second.header("Message-ID"), format!("<herald.{b}.305332a4@alerts.example.com>"));
    assert_eq!(decoded_body(second).trim_end(), "two");

    for id in [a, b] {
        let s = state(&db.conn, id);
        assert_eq!(s.status, "sent");
        assert_eq!(s.attempts, 1);
        assert_eq!(s.last_error, None);
        assert_eq!(s.next_attempt_at, None);
        let sent_at = s.sent_at.expect("sent_at");
        assert_eq!(sent_at.len(), "2026-04-14T08:02:07.556423Z".len(), "{sent_at}");
    }
    // One connection for the whole pass.
    assert_eq!(server.sessions(), 1);

    // Nothing is sent twice, in either mode.
    for mode in [Mode::Due, Mode::All] {
        let r = m.deliver(&db.outbox, mode).unwrap();
        assert_eq!(r, DeliveryReport::default());
    }
    assert_eq!(server.received().len(), 2);
    assert_eq!(server.sessions(), 1, "no connection when nothing is due");
    assert_eq!(db.outbox.counts().unwrap(), OutboxCounts { pending: 0, failed: 0, sent: 2 });
}

#[test]
fn utf8_subject_and_body_survive() {
    let server = TestServer::start(Policy::default());
    let db = db();
    let subject = "Grüße aus Köln — ✓ erledigt";
    let body = "Hallo Jürgen,\nschön, dass du da bist. Ünïcödé ✓\n";
    insert(&db.conn, &Mail { to: &["jurgen@example.de"], cc: &[], bcc: &[], subject, body });
    let r = mailer(server.port).deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!(r.sent, 1);
    let got = server.received();
    let raw_subject = got[0].header("Subject");
    assert!(raw_subject.is_ascii() && raw_subject.starts_with("=?"), "{raw_subject}");
    assert_eq!(decode_words(&raw_subject), subject);
    assert_eq!(decoded_body(&got[0]), body.replace('\n', "\r\n"));
}

#[test]
fn outage_keeps_rows_then_flush_delivers_each_once() {
    let port = free_port();
    let db = db();
    let a = one(&db.conn, "alice@example.com", "first");
    let b = one(&db.conn, "bob@example.com", "second");
    let m = mailer(port);

    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed, r.held_back, r.remaining), (0, 2, 0, 2), "{r:?}");
    let err = r.connection_error.expect("connection error");
    assert!(err.contains(&format!("cannot connect to 127.0.0.1:{port}")), "{err}");
    let before = now_plus(20);
    for id in [a, b] {
        let s = state(&db.conn, id);
        assert_eq!(s.status, "failed");
        assert_eq!(s.attempts, 1);
        assert_eq!(s.last_error.as_deref(), Some(err.as_str()));
        assert_eq!(s.sent_at, None);
        // Backed off by 30 s.
        let next = s.next_attempt_at.expect("next_attempt_at");
        assert!(next > before && next < now_plus(40), "{next}");
    }

    // While the outage is fresh, `Due` does not even connect: a new row
    // stays pending, untouched.
    let c = one(&db.conn, "carol@example.com", "third");
    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed, r.held_back, r.remaining), (0, 0, 1, 3), "{r:?}");
    let s = state(&db.conn, c);
    assert_eq!((s.status.as_str(), s.attempts), ("pending", 0));

    // The server comes back on the same port; `outbox flush` sends all.
    let server = TestServer::start_on(port, Policy::default());
    let r = m.deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!(r, DeliveryReport { sent: 3, ..DeliveryReport::default() });
    let got = server.received();
    let mut subjects: Vec<String> = got.iter().map(|g| g.header("Subject")).collect();
    subjects.sort();
    assert_eq!(subjects, ["first", "second", "third"]);
    assert_eq!(state(&db.conn, a).attempts, 2);
    assert_eq!(state(&db.conn, a).last_error, None);
    assert_eq!(state(&db.conn, c).attempts, 1);

    let r = m.deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!(r, DeliveryReport::default());
    assert_eq!(server.received().len(), 3);
}

#[test]
fn outage_with_a_long_queue_marks_every_row_once() {
    let port = free_port();
    let db = db();
    let mut ids: Vec<i64> = (0..50).map(|i| one(&db.conn, &format!("user{i}@example.com"), &format!("n{i}"))).collect();
    let bad = insert_raw(&db.conn, "oops", "[]", "[]", "s", "b");
    ids.push(one(&db.conn, "last@example.com", "last"));
    let r = mailer(port).deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed, r.remaining), (0, 52, 52), "{r:?}");
    let err = r.connection_error.unwrap();
    for id in ids {
        let s = state(&db.conn, id);
        assert_eq!((s.status.as_str(), s.attempts), ("failed", 1), "row {id}");
        assert_eq!(s.last_error.as_deref(), Some(err.as_str()));
    }
    // A row that cannot be built keeps its own reason.
    let e = state(&db.conn, bad).last_error.unwrap();
    assert!(e.contains("`to_addrs` is not a JSON array"), "{e}");
}

#[test]
fn backoff_is_honoured_by_due_and_ignored_by_all() {
    let server = TestServer::start(Policy::default());
    let db = db();
    let later = one(&db.conn, "later@example.com", "later");
    let ready = one(&db.conn, "ready@example.com", "ready");
    let unset = one(&db.conn, "unset@example.com", "unset");
    let set = |id: i64, next: Option<String>| {
        db.conn
            .execute(
                "UPDATE herald_outbox SET status = 'failed', attempts = 3, last_error = 'earlier', \
                 next_attempt_at = ?1 WHERE id = ?2",
                params![next, id],
            )
            .unwrap();
    };
    set(later, Some(now_plus(600)));
    set(ready, Some(now_plus(-1)));
    set(unset, None);
    let m = mailer(server.port);

    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed, r.remaining), (2, 0, 1), "{r:?}");
    let s = state(&db.conn, later);
    assert_eq!((s.status.as_str(), s.attempts), ("failed", 3));
    assert_eq!(state(&db.conn, ready).status, "sent");
    assert_eq!(state(&db.conn, ready).attempts, 4);
    assert_eq!(state(&db.conn, unset).status, "sent");

    let r = m.deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!((r.sent, r.failed, r.remaining), (1, 0, 0), "{r:?}");
    let s = state(&db.conn, later);
    assert_eq!((s.status.as_str(), s.attempts, s.last_error), ("sent", 4, None));
    let rcpt: Vec<String> = server.received().iter().map(|g| g.rcpt.join(",")).collect();
    assert_eq!(rcpt, ["ready@example.com", "unset@example.com", "later@example.com"]);
}

#[test]
fn rcpt_rejection_records_the_servers_reply_and_the_pass_goes_on() {
    let server = TestServer::start(Policy { reject_rcpt: vec!["ghost@example.com".into()], ..Policy::default() });
    let db = db();
    let ghost = one(&db.conn, "ghost@example.com", "to nobody");
    let alice = one(&db.conn, "alice@example.com", "to alice");
    let r = mailer(server.port).deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed, r.remaining, r.connection_error.clone()), (1, 1, 1, None), "{r:?}");

    let s = state(&db.conn, ghost);
    assert_eq!((s.status.as_str(), s.attempts), ("failed", 1));
    let e = s.last_error.unwrap();
    assert!(e.starts_with("rejected by the server"), "{e}");
    assert!(e.contains("550") && e.contains("<ghost@example.com>: no such user here"), "{e}");
    assert!(s.next_attempt_at.unwrap() > now_plus(20));

    assert_eq!(state(&db.conn, alice).status, "sent");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt, ["alice@example.com"]);
    // lettre drops the connection after an error reply; the pass reconnects.
    assert_eq!(server.sessions(), 2);
}

#[test]
fn data_rejection_records_the_servers_reply() {
    let server = TestServer::start(Policy { reject_data: true, ..Policy::default() });
    let db = db();
    let id = one(&db.conn, "alice@example.com", "refused");
    // After an error reply to the data, mailin stays in its data state and
    // never answers lettre's QUIT; a short timeout keeps the test fast.
    let m = mailer_for(&format!("smtp://127.0.0.1:{}?timeout=2", server.port));
    let r = m.deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!((r.sent, r.failed), (0, 1));
    let s = state(&db.conn, id);
    assert_eq!(s.status, "failed");
    let e = s.last_error.unwrap();
    assert!(e.contains("554") && e.contains("message refused by policy"), "{e}");
    assert!(server.received().is_empty());
}

#[test]
fn unbuildable_rows_fail_with_a_reason_and_do_not_stop_the_pass() {
    let server = TestServer::start(Policy::default());
    let db = db();
    let bad_json = insert_raw(&db.conn, "alice@example.com", "[]", "[]", "s", "b");
    let display = insert_raw(&db.conn, r#"["Eve <eve@evil.example>"]"#, "[]", "[]", "s", "b");
    let injected = insert(
        &db.conn,
        &Mail { to: &["alice@example.com"], cc: &[], bcc: &[], subject: "hi\r\nBcc: eve@evil.example", body: "b" },
    );
    let nobody = insert_raw(&db.conn, "[]", "[]", "[]", "s", "b");
    let bad_cc = insert_raw(&db.conn, r#"["alice@example.com"]"#, r#"["bob@example.com\n"]"#, "[]", "s", "b");
    let blob = one(&db.conn, "alice@example.com", "blob");
    db.conn.execute("UPDATE herald_outbox SET to_addrs = X'FF00FE' WHERE id = ?1", [blob]).unwrap();
    let good = one(&db.conn, "alice@example.com", "good");

    let m = mailer(server.port);
    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed, r.remaining), (1, 6, 6), "{r:?}");

    let expect = [
        (bad_json, "`to_addrs` is not a JSON array"),
        (display, "no display name"),
        (injected, "line break in email header `Subject`"),
        (nobody, "no recipients"),
        (bad_cc, "`cc`: invalid email address `bob@example.com\\n`: contains a line break"),
        (blob, "`to_addrs` is not a JSON array"),
    ];
    for (id, want) in expect {
        let s = state(&db.conn, id);
        assert_eq!((s.status.as_str(), s.attempts), ("failed", 1), "row {id}");
        let e = s.last_error.unwrap();
        assert!(e.starts_with("cannot build the message: "), "{e}");
        assert!(e.contains(want), "row {id}: {e:?} does not contain {want:?}");
    }
    assert_eq!(state(&db.conn, good).status, "sent");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("Subject"), "good");
    assert!(got.iter().all(|g| !g.data.contains("evil")));

    // Kept, and tried again by a flush.
    let r = m.deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!((r.sent, r.failed), (0, 6));
    assert_eq!(state(&db.conn, blob).attempts, 2);
}

#[test]
fn tls_required_never_falls_back_to_clear_text() {
    // The plain server does not offer STARTTLS.
    let server = TestServer::start(Policy::default());
    let db = db();
    let id = one(&db.conn, "alice@example.com", "secret");
    let m = mailer_for(&format!("smtp://127.0.0.1:{}?tls=required", server.port));
    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed), (0, 1));
    let e = state(&db.conn, id).last_error.unwrap();
    assert!(e.contains("STARTTLS"), "{e}");
    assert!(server.received().is_empty());

    // `opportunistic` sends in clear text when STARTTLS is not offered.
    let m = mailer_for(&format!("smtp://127.0.0.1:{}?tls=opportunistic", server.port));
    let r = m.deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!((r.sent, r.failed), (1, 0));
    assert_eq!(server.received().len(), 1);
}

#[test]
fn credentials_are_not_used_without_auth_and_nothing_is_sent() {
    let server = TestServer::start(Policy::default());
    let db = db();
    let id = one(&db.conn, "alice@example.com", "s");
    let m = mailer_for(&format!("smtp://herald:s3cret@127.0.0.1:{}", server.port));
    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed), (0, 1));
    let e = state(&db.conn, id).last_error.unwrap();
    assert!(e.starts_with("cannot log in to 127.0.0.1:"), "{e}");
    assert!(!e.contains("s3cret"));
    assert!(server.received().is_empty());
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Bound (connections complete) but never accepted: no greeting comes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let db = db();
    let id = one(&db.conn, "alice@example.com", "s");
    let m = mailer_for(&format!("smtp://127.0.0.1:{port}?timeout=1"));
    let started = Instant::now();
    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!((r.sent, r.failed), (0, 1));
    let e = state(&db.conn, id).last_error.unwrap();
    assert_eq!(e, format!("cannot connect to 127.0.0.1:{port}: timed out: no answer within 1 s"));
    drop(listener);
}

#[test]
fn list_counts_and_json() {
    let server = TestServer::start(Policy { reject_rcpt: vec!["ghost@example.com".into()], ..Policy::default() });
    let db = db();
    let mut out = Vec::new();
    list(&db.outbox, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "the outbox is empty\n");

    let sent = insert(
        &db.conn,
        &Mail {
            to: &["alice@example.com", "bob@example.com", "carol@example.com"],
            cc: &[],
            bcc: &["audit@example.com"],
            subject: "A rather long subject line that goes on and on and on",
            body: "b",
        },
    );
    let failed = one(&db.conn, "ghost@example.com", "bounced");
    mailer(server.port).deliver(&db.outbox, Mode::Due).unwrap();
    let pending = one(&db.conn, "dave@example.com", "queued\r\nline");

    assert_eq!(db.outbox.counts().unwrap(), OutboxCounts { pending: 1, failed: 1, sent: 1 });
    assert_eq!(db.outbox.counts().unwrap().unsent(), 2);

    let mut out = Vec::new();
    list(&db.outbox, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "STATUS", "TRIES", "TO", "SUBJECT", "LAST", "ERROR"], "{text}");
    // Columns line up: each starts where its header does.
    let col = |name: &str| lines[0].find(name).unwrap();
    for l in &lines[1..] {
        assert_eq!(l.chars().nth(col("STATUS") - 1), Some(' '), "{text}");
        assert_ne!(l.chars().nth(col("STATUS")), Some(' '), "{text}");
        assert_ne!(l.chars().nth(col("TO")), Some(' '), "{text}");
    }
    assert!(lines[1].starts_with(&format!(" {sent}  sent ")), "{text}");
    assert!(lines[1].contains("alice@example.com, +2"), "{text}");
    assert!(lines[1].contains("A rather long subject line that goes on…"), "{text}");
    assert!(!text.contains("audit@"), "{text}");
    assert!(lines[2].contains("failed") && lines[2].contains("rejected by the server"), "{text}");
    assert!(lines[3].contains("pending") && lines[3].contains("queued\\r\\nline"), "{text}");

    let mut out = Vec::new();
    list_json(&db.outbox, &mut out).unwrap();
    let rows: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], sent);
    assert_eq!(rows[0]["status"], "sent");
    assert_eq!(rows[0]["bcc"], serde_json::json!(["audit@example.com"]));
    assert_eq!(rows[0]["attempts"], 1);
    assert!(rows[0]["sent_at"].is_string());
    assert_eq!(rows[1]["id"], failed);
    assert!(rows[1]["last_error"].as_str().unwrap().contains("no such user"));
    assert!(rows[1]["next_attempt_at"].is_string());
    assert_eq!(rows[2]["id"], pending);
    assert_eq!(rows[2]["subject"], "queued\r\nline");
    assert_eq!(rows[2]["to"], serde_json::json!(["dave@example.com"]));
    assert!(rows[2]["last_error"].is_null());
}

#[test]
fn validation_helpers_reject_injection_and_bad_addresses() {
    assert!(validate_address("alice@example.com").is_ok());
    for bad in [
        "",
        "alice",
        "alice@example.com\r\nBcc: eve@evil.example",
        "Alice <alice@example.com>",
        "<alice@example.com>",
        "\"quoted\"@example.com",
        "a@[127.0.0.1]",
    ] {
        assert!(validate_address(bad).is_err(), "{bad:?}");
    }
    assert!(check_header("Subject", "fine — ✓").is_ok());
    for bad in ["a\r\nBcc: x@y.z", "a\nb", "a\rb", "a\0b"] {
        assert!(check_header("Subject", bad).is_err(), "{bad:?}");
    }
    assert!(parse_mailbox("Herald <herald@example.com>").is_ok());
    assert!(parse_mailbox("herald@example.com\r\nBcc: x@y.z").is_err());
}

// ---------------------------------------------------------------- STARTTLS

// A test CA and a server certificate it signed for `localhost` and
// 127.0.0.1 (EC P-256, valid from 2000 to 2126). Test material only.
const TEST_CA: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBZTCCAQygAwIBAgICEAAwCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwOSGVyYWxk\n\
IFRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjEyNjAxMDEwMDAwMDBaMBkxFzAV\n\
BgNVBAMMDkhlcmFsZCBUZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n\
FwGKpnvlmsHb9kQefisSldCtxCUoa0+46xqib8oH4YMR7QHaMl4uVTKwjSWtykh5\n\
8SOxEhiL1AZsm+YOK9j6HqNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8E\n\
BAMCAQYwHQYDVR0OBBYEFCEkhGlRM1Du4tanydzWNZaWY//DMAoGCCqGSM49BAMC\n\
A0cAMEQCIHMe4vtuWUy18Bo0TUsM9CswzAqmVuzimLcHamqmkmALAiBiCNexv/Lb\n\
D8XmrjHpT80Z4RMitZTzj+X0nflaCZUmHg==\n\
-----END CERTIFICATE-----\n\
";
const TEST_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBsjCCAVigAwIBAgICEAEwCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwOSGVyYWxk\n\
IFRlc3QgQ0EwIBcNMDAwMTAxMDAwMDAwWhgPMjEyNjAxMDEwMDAwMDBaMBQxEjAQ\n\
BgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCFAR7i7\n\
1CwOL3Ml7Uz8CbG9w+m3AzFtlhwX0ci4F2shCeZg2LXsCpCHs4t8EzWQr2U8ElMQ\n\
JTa2hj8Cry6tX1+jgZIwgY8wDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4Aw\n\
EwYDVR0lBAwwCgYIKwYBBQUHAwEwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAAB\n\
MB8GA1UdIwQYMBaAFCEkhGlRM1Du4tanydzWNZaWY//DMB0GA1UdDgQWBBR6HKJj\n\
oYPs8Ci64kIhw51kyN5ODTAKBggqhkjOPQQDAgNIADBFAiBH8I5FLaoQ0TzRDFeL\n\
IVGsw4FcggG4L+BtSMC+jc7evgIhANMdbmg0SZDRqp35sX+OvngdS+AqB8jbQ77K\n\
ZeOSglCe\n\
-----END CERTIFICATE-----\n\
";
const TEST_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgcwt/BhScLOqRdNO4\n\
jPNeGbX6wkFGQzmw/g/JWbtTf0ShRANCAAQhQEe4u9QsDi9zJe1M/AmxvcPptwMx\n\
bZYcF9HIuBdrIQnmYNi17AqQh7OLfBM1kK9lPBJTECU2toY/Aq8urV9f\n\
-----END PRIVATE KEY-----\n\
";

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // mailin-embedded's rustls server needs a process-wide provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn start_tls_server(dir: &Path) -> TestServer {
    install_crypto_provider();
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, TEST_CERT).unwrap();
    std::fs::write(&key, TEST_KEY).unwrap();
    TestServer::start_with(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        Policy::default(),
        SslConfig::SelfSigned {
            cert_path: cert.to_string_lossy().into_owned(),
            key_path: key.to_string_lossy().into_owned(),
        },
    )
}

#[test]
fn starttls_verifies_the_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_tls_server(tmp.path());
    let db = db();

    // Unknown issuer: refused before any mail is sent.
    let id = one(&db.conn, "alice@example.com", "over tls");
    let m = mailer_for(&format!("smtp://127.0.0.1:{}?tls=required", server.port));
    let r = m.deliver(&db.outbox, Mode::Due).unwrap();
    assert_eq!((r.sent, r.failed), (0, 1));
    let e = state(&db.conn, id).last_error.unwrap();
    assert!(e.contains("cannot connect") && e.to_lowercase().contains("certificate"), "{e}");
    assert!(server.received().is_empty());

    // Trusting the test CA: delivered over TLS.
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, TEST_CA).unwrap();
    let m = mailer_for(&format!("smtp://127.0.0.1:{}?tls=required&ca={}", server.port, ca.display()));
    let r = m.deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!((r.sent, r.failed, r.connection_error.clone()), (1, 0, None), "{r:?}");
    assert_eq!(server.received().len(), 1);
    assert_eq!(server.received()[0].header("Subject"), "over tls");
}

#[test]
fn unreadable_ca_file_is_a_config_error() {
    let config = SmtpConfig::parse("smtp://relay.example:587?ca=/nonexistent/ca.pem").unwrap();
    let e = Mailer::new(config, parse_mailbox("h@example.com").unwrap()).unwrap_err();
    assert!(matches!(e, MailError::Config(_)), "{e}");
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}

// ---------------------------------------------------------------- leases

fn set_lease(conn: &Connection, id: i64, owner: &str, until: &str) {
    conn.execute(
        "UPDATE herald_outbox SET lease_owner = ?1, lease_until = ?2 WHERE id = ?3",
        params![owner, until, id],
    )
    .unwrap();
}

fn lease(conn: &Connection, id: i64) -> (Option<String>, Option<String>) {
    conn.query_row("SELECT lease_owner, lease_until FROM herald_outbox WHERE id = ?1", [id], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

#[test]
fn an_expired_lease_is_taken_over_and_a_live_one_is_left_alone() {
    let server = TestServer::start(Policy::default());
    let db = db();
    let dead = one(&db.conn, "dead@example.com", "orphaned");
    let busy = one(&db.conn, "busy@example.com", "in flight");
    let free = one(&db.conn, "free@example.com", "free");
    // A sender that died mid-delivery a while ago, and one still at work.
    set_lease(&db.conn, dead, "herald:1:1:0", &now_plus(-5));
    set_lease(&db.conn, busy, "herald:2:2:0", &now_plus(300));

    let r = mailer(server.port).deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!((r.sent, r.failed, r.leased_elsewhere, r.remaining), (2, 0, 1, 1), "{r:?}");
    let mut subjects: Vec<String> = server.received().iter().map(|m| m.header("Subject")).collect();
    subjects.sort();
    assert_eq!(subjects, ["free", "orphaned"]);
    for id in [dead, free] {
        assert_eq!(state(&db.conn, id).status, "sent");
        assert_eq!(lease(&db.conn, id), (None, None), "a result ends the lease");
    }
    let s = state(&db.conn, busy);
    assert_eq!((s.status.as_str(), s.attempts), ("pending", 0));
    assert_eq!(lease(&db.conn, busy).0.as_deref(), Some("herald:2:2:0"));

    // `Due` passes respect the live lease too, and take it once it lapses.
    let m = mailer(server.port);
    assert_eq!(m.deliver(&db.outbox, Mode::Due).unwrap().sent, 0);
    set_lease(&db.conn, busy, "herald:2:2:0", &now_plus(-1));
    assert_eq!(m.deliver(&db.outbox, Mode::Due).unwrap().sent, 1);
    assert_eq!(server.received().len(), 3);
}

#[test]
fn only_the_lease_holder_records_a_result() {
    let db = db();
    let id = one(&db.conn, "alice@example.com", "s");
    let now = now_plus(0);
    let claimed = db.outbox.claim("a", herald::store::Due::Any, &now, &now_plus(-1), 0, 10).unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    // `a`'s lease has lapsed (it was stuck); `b` takes the row over.
    let taken = db.outbox.claim("b", herald::store::Due::Any, &now, &now_plus(60), 0, 10).unwrap();
    assert_eq!(taken.len(), 1);
    // While `b` holds it, nobody else can claim it.
    assert!(db.outbox.claim("c", herald::store::Due::Any, &now, &now_plus(60), 0, 10).unwrap().is_empty());
    // `a` finds out before sending, and cannot record anything.
    assert_eq!(db.outbox.renew(id, "a", &now_plus(60)).unwrap(), None);
    assert!(!db.outbox.mark_sent(id, "a", &now).unwrap());
    assert!(!db.outbox.mark_failed(id, "a", "x", &now).unwrap());
    assert_eq!(state(&db.conn, id).status, "pending");
    assert!(db.outbox.renew(id, "b", &now_plus(60)).unwrap().is_some());
    assert!(db.outbox.mark_sent(id, "b", &now).unwrap());
    assert_eq!(state(&db.conn, id).status, "sent");
    assert_eq!(lease(&db.conn, id), (None, None));
    // A sent row is never claimed again.
    assert!(db.outbox.claim("c", herald::store::Due::Any, &now, &now_plus(60), 0, 10).unwrap().is_empty());
}

#[test]
fn two_mailers_at_once_send_each_row_once() {
    const N: usize = 40;
    let server = TestServer::start(Policy { accept_delay: Duration::from_millis(10), ..Policy::default() });
    let db = db();
    let ids: Vec<i64> = (0..N).map(|i| one(&db.conn, &format!("user{i}@example.com"), &format!("n{i}"))).collect();
    let path = db._dir.path().join("herald.db");
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            let port = server.port;
            std::thread::spawn(move || {
                let outbox = OutboxStore::open(&path).unwrap();
                mailer(port).deliver(&outbox, Mode::All).unwrap()
            })
        })
        .collect();
    let reports: Vec<DeliveryReport> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(reports.iter().map(|r| r.sent).sum::<usize>(), N, "{reports:?}");
    let got = server.received();
    let mut message_ids: Vec<String> = got.iter().map(|m| m.header("Message-ID")).collect();
    message_ids.sort();
    message_ids.dedup();
    assert_eq!((got.len(), message_ids.len()), (N, N));
    for id in ids {
        let s = state(&db.conn, id);
        assert_eq!((s.status.as_str(), s.attempts), ("sent", 1), "row {id}");
    }
}

#[test]
fn a_store_made_before_leases_gains_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = Connection::open(&path).unwrap();
    let before: String = TABLES
        .replace("next_attempt_at TEXT,", "next_attempt_at TEXT")
        .lines()
        // The webhook columns came later still (`kind` and the `webhook:` ones).
        .filter(|l| {
            !l.contains("lease_owner")
                && !l.contains("lease_until")
                && !l.contains("kind IN")
                && !l.contains("webhook:")
        })
        .collect::<Vec<_>>()
        .join("\n");
    old.execute_batch(&before).unwrap();
    let id = one(&old, "alice@example.com", "s");
    let server = TestServer::start(Policy::default());
    let outbox = OutboxStore::open(&path).unwrap();
    let r = mailer(server.port).deliver(&outbox, Mode::Due).unwrap();
    assert_eq!(r.sent, 1);
    assert_eq!(state(&old, id).status, "sent");
    assert_eq!(lease(&old, id), (None, None));
}

// ---------------------------------------------------------------- line ends

#[test]
fn bare_cr_and_lf_in_a_body_reach_the_server_as_crlf() {
    let server = TestServer::start(Policy::default());
    let db = db();
    // `\r.\r\n` would end the DATA early at a server that takes a lone CR
    // as a line end; what follows would be read as commands.
    let body = "one\r.\r\nMAIL FROM:<evil@example.com>\rtwo\n.\nthree\r\n.\r\nend";
    insert(&db.conn, &Mail { to: &["alice@example.com"], cc: &[], bcc: &[], subject: "s", body });
    let r = mailer(server.port).deliver(&db.outbox, Mode::All).unwrap();
    assert_eq!(r.sent, 1, "{r:?}");
    let got = server.received();
    assert_eq!(got.len(), 1);
    let raw = got[0].data.as_bytes();
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(raw.get(i + 1), Some(&b'\n'), "bare CR at {i}: {:?}", got[0].data);
        }
        if b == b'\n' {
            assert!(i > 0 && raw[i - 1] == b'\r', "bare LF at {i}: {:?}", got[0].data);
        }
    }
    assert_eq!(got[0].body(), "one\r\n.\r\nMAIL FROM:<evil@example.com>\r\ntwo\r\n.\r\nthree\r\n.\r\nend");
    assert_eq!(got[0].rcpt, ["alice@example.com"]);
}
