//! `herald run --smtp` against a real SMTP server in this process
//! (mailin-embedded on 127.0.0.1) and `herald outbox flush` after an outage.

mod runtime_support;

use mailin_embedded::{Handler, Response, Server, SslConfig};
use runtime_support::*;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

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
        let port = listener.local_addr().unwrap().port();
        let handler = Collector::default();
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
