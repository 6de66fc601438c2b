//! `herald run --smtp` against a real SMTP server in this process
//! (mailin-embedded on 127.0.0.1) and `herald outbox flush` after an outage.

mod runtime_support;

use mailin_embedded::{Handler, Response, Server, SslConfig};
use runtime_support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Received {
    rcpt: Vec<String>,
    data: String,
}

#[derive(Clone, Default)]
struct Collector {
    received: Arc<Mutex<Vec<Received>>>,
    rcpt: Vec<String>,
    data: Vec<u8>,
    /// How long the server takes to accept a message, like a real relay
    /// doing its checks; widens the window in which two senders race.
    accept_delay: Duration,
}

impl Handler for Collector {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        self.rcpt.clear();
        mailin_embedded::response::OK
    }
    fn rcpt(&mut self, to: &str) -> Response {
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
        std::thread::sleep(self.accept_delay);
        self.received.lock().unwrap().push(Received {
            rcpt: std::mem::take(&mut self.rcpt),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        });
        mailin_embedded::response::OK
    }
}

struct Smtp {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Smtp {
    fn start_on(listener: TcpListener) -> Smtp {
        Smtp::start_with(listener, Duration::ZERO)
    }

    fn start_with(listener: TcpListener, accept_delay: Duration) -> Smtp {
        let port = listener.local_addr().unwrap().port();
        let handler = Collector { accept_delay, ..Collector::default() };
        let received = handler.received.clone();
        let mut server = Server::new(handler);
        server.with_name("mx.test").with_ssl(SslConfig::None).unwrap().with_tcp_listener(listener);
        // Serves until the test process exits.
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Smtp { port, received }
    }

    fn start() -> Smtp {
        Smtp::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

const POLICIES: [&str; 2] = ["examples/authentik/welcome_email.herald", "tests/runtime_data/mail.herald"];

fn login(n: u32, email: &str, message: &str) -> String {
    json!({
        "event_uuid": format!("00000000-0000-4000-8000-{n:012}"),
        "action": "login",
        "created": "2026-04-14T08:00:00Z",
        "user": {"pk": 15, "email": email},
        "context": {"message": message},
    })
    .to_string()
}

/// Dave's creation (a welcome email), a good login email, and three bad ones.
fn events() -> String {
    let created = std::fs::read_to_string(root().join(AUTHENTIK_EVENTS)).unwrap().lines().next().unwrap().to_string();
    [
        created,
        login(1, "eve@example.com", "from Berlin"),
        login(2, "not an address", "x"),
        login(3, "eve@example.com", "hi\r\nBcc: victim@example.com"),
        login(4, "eve@example.com\r\nBcc: victim@example.com", "x"),
    ]
    .join("\n")
        + "\n"
}

fn outbox(tmp: &Tmp) -> Vec<Value> {
    table(&dump(&tmp.path("h.db"), None, None), "herald_outbox")
}

fn check_rule_errors(tmp: &Tmp) {
    let errors = table(&dump(&tmp.path("h.db"), None, None), "herald_rule_error");
    let codes: Vec<(&str, &str)> =
        errors.iter().map(|e| (e["event_uuid"].as_str().unwrap(), e["code"].as_str().unwrap())).collect();
    assert_eq!(
        codes,
        vec![
            ("00000000-0000-4000-8000-000000000002", "R0003"),
            ("00000000-0000-4000-8000-000000000003", "R0004"),
            ("00000000-0000-4000-8000-000000000004", "R0003"),
        ],
        "{errors:#?}"
    );
}

#[test]
fn emails_are_delivered_and_marked_sent() {
    let server = Smtp::start();
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let events = tmp.write("events.ndjson", events());
    let out =
        herald(&["run", "--db", &db, "--events", &events, "--smtp", &server.url(), POLICIES[0], POLICIES[1]], None)
            .ok();
    assert!(out.stderr.contains("email: 2 sent, 0 failed, 0 waiting"), "{}", out.stderr);
    let got = server.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].rcpt, vec!["dave.kowalski@example.com"]);
    assert!(got[0].data.contains("Subject: Welcome to authentik"), "{}", got[0].data);
    assert_eq!(got[1].rcpt, vec!["eve@example.com"]);
    assert!(got[1].data.contains("Subject: Sign-in: from Berlin"), "{}", got[1].data);
    for m in &got {
        assert!(!m.data.to_lowercase().contains("victim"), "{}", m.data);
    }
    let rows = outbox(&tmp);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["status"], "sent");
        assert_eq!(r["attempts"], 1);
        assert_eq!(r["sent_at"], "<time>");
    }
    check_rule_errors(&tmp);
}

#[test]
fn an_outage_leaves_email_pending_and_flush_delivers_each_once() {
    // A port nobody listens on yet.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("smtp://127.0.0.1:{port}");
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let events = tmp.write("events.ndjson", events());
    let out = herald(&["run", "--db", &db, "--events", &events, "--smtp", &url, POLICIES[0], POLICIES[1]], None).ok();
    assert!(out.stderr.contains("0 sent"), "{}", out.stderr);
    let rows = outbox(&tmp);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        // src/mail records a failed attempt as `failed` with a retry time
        // (rows are retried until delivered; there is no dead state).
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["next_attempt_at"], "<time>", "{r}");
        assert!(r["attempts"].as_i64().unwrap() >= 1, "{r}");
        assert!(!r["last_error"].as_str().unwrap_or("").is_empty(), "{r}");
    }
    check_rule_errors(&tmp);
    let listed = herald(&["outbox", "list", "--db", &db], None).ok();
    assert!(listed.stdout.contains("dave.kowalski@example.com"), "{}", listed.stdout);

    // The server comes up on that port; a flush delivers each email once.
    let server = Smtp::start_on(TcpListener::bind(("127.0.0.1", port)).expect("port free again"));
    let flush = herald(&["outbox", "flush", "--db", &db, "--smtp", &url], None).ok();
    assert!(flush.stderr.contains("2 sent, 0 failed, 0 still unsent"), "{}", flush.stderr);
    assert_eq!(server.received().len(), 2);
    let rows = outbox(&tmp);
    for r in &rows {
        assert_eq!(r["status"], "sent", "{r}");
    }
    // Flushing again, or re-running the input, sends nothing more.
    herald(&["outbox", "flush", "--db", &db, "--smtp", &url], None).ok();
    herald(&["run", "--db", &db, "--events", &events, "--from-start", "--smtp", &url, POLICIES[0], POLICIES[1]], None)
        .ok();
    assert_eq!(server.received().len(), 2);
    assert_eq!(outbox(&tmp).len(), 2);
}

/// `n` login events, each queueing one email to its own address.
fn many_logins(n: u32) -> String {
    (1..=n).map(|i| login(i, &format!("user{i}@example.com"), "from Berlin") + "\n").collect()
}

/// Every message received exactly once: as many as the outbox has rows,
/// all with different Message-IDs, every row `sent` after one attempt.
fn assert_each_once(server: &Smtp, tmp: &Tmp, rows: usize) {
    let got = server.received();
    let ids: BTreeSet<String> = got
        .iter()
        .map(|m| {
            m.data
                .split("\r\n")
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .unwrap_or_else(|| panic!("no Message-ID in {}", m.data))
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), got.len(), "the same Message-ID was received twice");
    assert_eq!(got.len(), rows, "{} messages received for {rows} emails", got.len());
    let outbox = outbox(tmp);
    assert_eq!(outbox.len(), rows);
    for r in &outbox {
        assert_eq!(r["status"], "sent", "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
    }
}

fn spawn_flush(db: &str, url: &str) -> std::process::Child {
    command(&["outbox", "flush", "--db", db, "--smtp", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herald outbox flush")
}

#[test]
fn two_concurrent_flushes_deliver_each_email_once() {
    const N: u32 = 30;
    let server = Smtp::start_with(TcpListener::bind("127.0.0.1:0").unwrap(), Duration::from_millis(20));
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let events = tmp.write("events.ndjson", many_logins(N));
    herald(&["run", "--quiet", "--db", &db, "--events", &events, POLICIES[1]], None).ok();
    assert_eq!(outbox(&tmp).len(), N as usize);

    let a = spawn_flush(&db, &server.url());
    let b = spawn_flush(&db, &server.url());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_each_once(&server, &tmp, N as usize);
}

#[test]
fn run_with_smtp_beside_a_flush_delivers_each_email_once() {
    const N: u32 = 30;
    let server = Smtp::start_with(TcpListener::bind("127.0.0.1:0").unwrap(), Duration::from_millis(20));
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let events = tmp.write("events.ndjson", many_logins(N));
    // One event per transaction: the run's mail thread wakes after each
    // commit, while flushes keep going over the same outbox.
    let url = server.url();
    let mut run =
        command(&["run", "--quiet", "--batch", "1", "--db", &db, "--events", &events, "--smtp", &url, POLICIES[1]])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    loop {
        let flush = spawn_flush(&db, &url).wait_with_output().unwrap();
        // A flush may find rows another sender holds: not an error here.
        let _ = flush;
        if run.try_wait().unwrap().is_some() {
            break;
        }
    }
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    herald(&["outbox", "flush", "--db", &db, "--smtp", &url], None).ok();
    assert_each_once(&server, &tmp, N as usize);
}

// ------------------------------------------------- hostile servers

/// A server on loopback that behaves for `polite` lines of the dialogue
/// (greeting, then one `250`-style answer per command, `354` after DATA)
/// and then does `then` on the same connection; each connection in its own
/// thread. Returns the port and the number of bytes it managed to send.
fn hostile_server(polite_commands: usize, then: fn(&mut std::net::TcpStream) -> usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicUsize::new(0));
    let total = sent.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let total = total.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                if polite_commands > 0 && conn.write_all(b"220 mx.test ready\r\n").is_err() {
                    return;
                }
                let mut answered = 0;
                let mut in_data = false;
                let mut line = String::new();
                while answered < polite_commands {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let reply: &[u8] = if in_data {
                        if line != ".\r\n" {
                            continue; // a line of the message
                        }
                        in_data = false;
                        b"250 queued\r\n"
                    } else if line.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else {
                        b"250 mx.test\r\n"
                    };
                    if conn.write_all(reply).is_err() {
                        return;
                    }
                    answered += 1;
                }
                total.fetch_add(then(&mut conn), Ordering::SeqCst);
            });
        }
    });
    (port, sent)
}

/// One byte every half second, never a line end: each read is well within
/// the read timeout, so only a total deadline ends it.
fn drip(conn: &mut std::net::TcpStream) -> usize {
    let mut n = 0;
    if conn.write_all(b"2").is_err() {
        return n;
    }
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if conn.write_all(b"5").is_err() {
            return n;
        }
        n += 1;
    }
}

/// A greeting that never ends: as many bytes as the client will take.
fn endless(conn: &mut std::net::TcpStream) -> usize {
    let chunk = vec![b'A'; 64 * 1024];
    let mut n = 0;
    let _ = conn.set_write_timeout(Some(Duration::from_secs(60)));
    while conn.write_all(&chunk).is_ok() {
        n += chunk.len();
    }
    n
}

/// Waits for `child` at most `ceiling`, sampling its peak memory (VmHWM,
/// in kB); kills it and fails when it takes longer.
fn wait_bounded(mut child: std::process::Child, ceiling: Duration) -> (std::process::Output, Duration, u64) {
    let started = Instant::now();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > ceiling {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {ceiling:?} (peak {peak_kb} kB); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    (child.wait_with_output().unwrap(), elapsed, peak_kb)
}

/// A store with `n` emails queued (no --smtp).
fn queued(tmp: &Tmp, n: u32) -> String {
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let events = tmp.write("events.ndjson", many_logins(n));
    herald(&["run", "--quiet", "--db", &db, "--events", &events, POLICIES[1]], None).ok();
    db
}

#[test]
fn a_dripping_server_cannot_hold_a_flush() {
    // The greeting, EHLO, MAIL, RCPT and DATA are answered; the reply to the
    // message drips. Every delivery ends at its deadline; after two, the
    // flush gives up on the server and marks the rest failed.
    let (port, _) = hostile_server(4, drip);
    let tmp = Tmp::new();
    let db = queued(&tmp, 4);
    let url = format!("smtp://127.0.0.1:{port}?timeout=2&deadline=2");
    let child = command(&["outbox", "flush", "--db", &db, "--smtp", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Two deliveries of 2 s: the ceiling is generous, the server infinite.
    let (out, elapsed, _) = wait_bounded(child, Duration::from_secs(40));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("0 sent, 4 failed, 4 still unsent"), "{elapsed:?} {stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(!stderr.contains("os error"), "{stderr}");
    for r in outbox(&tmp) {
        assert_eq!(r["status"], "failed", "{r}");
        let e = r["last_error"].as_str().unwrap();
        assert!(e.contains("timed out"), "{e}");
    }
}

#[test]
fn run_ends_after_its_commits_while_the_server_drips() {
    // The greeting drips: connecting never completes.
    let (port, _) = hostile_server(0, drip);
    let tmp = Tmp::new();
    let db = tmp.p("h.db");
    load(&db, None, AUTHENTIK_FIXTURES);
    let events = tmp.write("events.ndjson", many_logins(3));
    let url = format!("smtp://127.0.0.1:{port}?timeout=3&deadline=3");
    let child = command(&["run", "--db", &db, "--events", &events, "--smtp", &url, POLICIES[1]])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, _, _) = wait_bounded(child, Duration::from_secs(40));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("fired 3 rules on 3 events"), "{stderr}");
    // Every event's effects are committed; no email was lost.
    let rows = outbox(&tmp);
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_ne!(r["status"], "sent", "{r}");
    }
    assert_eq!(table(&dump(&tmp.path("h.db"), None, None), "herald_firing").len(), 3);
}

#[test]
fn an_endless_greeting_is_cut_at_a_bounded_size() {
    let (port, sent) = hostile_server(0, endless);
    let tmp = Tmp::new();
    let db = queued(&tmp, 2);
    // A long deadline: the size bound, not the clock, must end this.
    let url = format!("smtp://127.0.0.1:{port}?timeout=30&deadline=120");
    let child = command(&["outbox", "flush", "--db", &db, "--smtp", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, elapsed, peak_kb) = wait_bounded(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("more than 1048576 bytes"), "{elapsed:?} {stderr}");
    // The server could push what the client read plus the sockets' buffers.
    std::thread::sleep(Duration::from_millis(200));
    let pushed = sent.load(Ordering::SeqCst);
    assert!(pushed < 64 << 20, "the server pushed {pushed} bytes");
    assert!(peak_kb < 200 * 1024, "peak memory {peak_kb} kB");
    for r in outbox(&tmp) {
        assert_eq!(r["status"], "failed", "{r}");
    }
}

// ------------------------------------------------- read-only stores

#[test]
fn outbox_list_reads_a_read_only_store_without_changing_it() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let tmp = Tmp::new();
    let db = queued(&tmp, 2);
    // A store made before outbox leases: listing must not add them.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for column in ["lease_owner", "lease_until"] {
            let has: bool = conn
                .query_row(
                    "SELECT COUNT(*) > 0 FROM pragma_table_info('herald_outbox') WHERE name = ?1",
                    [column],
                    |r| r.get(0),
                )
                .unwrap();
            if has {
                conn.execute_batch(&format!("ALTER TABLE herald_outbox DROP COLUMN {column}")).unwrap();
            }
        }
    }
    let before = std::fs::read(&db).unwrap();
    let dir = tmp.path("");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    // File modes do not bind root: run the command as `nobody` then.
    let root_user =
        std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    let list = |args: &[&str]| {
        let mut c = command(args);
        if root_user {
            c.uid(65534).gid(65534);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = list(&["outbox", "list", "--db", &db]);
    let (ok_json, json, stderr_json) = list(&["outbox", "list", "--db", &db, "--format", "json"]);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("user1@example.com") && stdout.contains("user2@example.com"), "{stdout}");
    assert!(ok_json, "{stderr_json}");
    assert_eq!(json.lines().count(), 2, "{json}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "listing changed the store");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let leases: i64 = conn
        .query_row("SELECT COUNT(*) FROM pragma_table_info('herald_outbox') WHERE name LIKE 'lease%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leases, 0, "listing migrated the store");
}
