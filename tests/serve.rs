//! `herald serve` as a real process on loopback with a SQLite file:
//! concurrent clients while the service is SIGKILLed and restarted (every
//! acknowledged event fires exactly once), authentication, body limits,
//! malformed events, reloads, `/metrics` against the store, SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret-token";

const POLICY: &str = "rule every_login {\n  match login { }\n}\n";

/// A running service and the lines of its standard error.
struct Service {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

fn start(dir: &Path, extra: &[&str]) -> Service {
    let db = dir.join("herald.db");
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--token-file")
        .arg(&token)
        .args(extra)
        .arg(dir.join("policy.herald"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("herald serve starts");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    // The address ends the human line; in a JSON line a quote follows.
                    let addr: String =
                        rest.chars().take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ':')).collect();
                    let _ = tx.send(addr.rsplit(':').next().unwrap().parse::<u16>().unwrap());
                }
                log.lock().unwrap().push(line);
            }
        });
    }
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no listening line: {:?}", log.lock().unwrap()));
    Service { child, port, log }
}

impl Service {
    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args(["-s", sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -s {sig}");
    }

    /// SIGTERM; the exit status.
    fn stop(mut self) -> i32 {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// One HTTP/1.1 request on its own connection.
fn request(port: u16, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) =
        text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other(format!("no reply: {text:?}")))?;
    let status =
        head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| std::io::Error::other("no status"))?;
    Ok(Reply { status, headers: head.to_string(), body: body.to_string() })
}

fn post_events(port: u16, body: &str) -> Reply {
    request(port, "POST", "/events", Some(TOKEN), body.as_bytes()).expect("the service answers")
}

fn login(uuid: &str) -> String {
    format!(
        "{{\"event_uuid\":\"{uuid}\",\"action\":\"login\",\"created\":\"2026-04-14T08:02:07Z\",\
         \"user\":{{\"pk\":4,\"username\":\"akadmin\",\"email\":\"a@example.com\"}},\"context\":{{}}}}"
    )
}

fn uuid(client: u32, n: u32) -> String {
    format!("{client:08x}-0000-4000-8000-{n:012x}")
}

/// The Prometheus text: every sample as (name with labels, value). Panics
/// on a line that is neither a comment nor a sample.
fn parse_metrics(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(typed.contains(name) || typed.contains(base), "sample before its TYPE: {line}");
        out.push((series.to_string(), value.parse::<f64>().unwrap_or_else(|_| panic!("bad value: {line}"))));
    }
    out
}

fn metric(samples: &[(String, f64)], series: &str) -> f64 {
    samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {series}"))
}

fn metrics(port: u16) -> Vec<(String, f64)> {
    let r = request(port, "GET", "/metrics", None, b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.headers.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{}", r.headers);
    parse_metrics(&r.body)
}

/// Waits until every acknowledged event is processed.
fn drained(port: u16) -> Vec<(String, f64)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = metrics(port);
        if metric(&m, "herald_intake_pending") == 0.0 {
            return m;
        }
        assert!(Instant::now() < deadline, "the intake does not drain");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("herald.db")).unwrap()
}

fn count(dir: &Path, sql: &str) -> i64 {
    db(dir).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn setup(policy: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::write(p.join("policy.herald"), policy).unwrap();
    (dir, p)
}

#[test]
fn acknowledged_events_fire_exactly_once_across_a_sigkill() {
    let (_tmp, dir) = setup(POLICY);
    let svc = start(&dir, &[]);
    let port = Arc::new(AtomicU16::new(svc.port));
    let acked_so_far = Arc::new(AtomicU32::new(0));
    const CLIENTS: u32 = 8;
    const BATCHES: u32 = 50;
    // 8 × 50 × 250 = 100,000 events, as the issue asks.
    const PER_BATCH: u32 = 250;
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (port, acked_so_far) = (port.clone(), acked_so_far.clone());
            std::thread::spawn(move || {
                let mut acked = 0u32;
                let mut retries = 0u32;
                for b in 0..BATCHES {
                    let body: String = (0..PER_BATCH).map(|i| login(&uuid(c, b * PER_BATCH + i)) + "\n").collect();
                    // Retry the same batch until it is acknowledged: a retry of
                    // events already taken in is answered as duplicates.
                    loop {
                        match request(port.load(Ordering::SeqCst), "POST", "/events", Some(TOKEN), body.as_bytes()) {
                            Ok(r) if r.status == 200 => {
                                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                                let n = v["accepted"].as_u64().unwrap() + v["duplicates"].as_u64().unwrap();
                                assert_eq!(n, PER_BATCH as u64, "{}", r.body);
                                acked += PER_BATCH;
                                acked_so_far.fetch_add(PER_BATCH, Ordering::SeqCst);
                                break;
                            }
                            Ok(r) if r.status == 429 => std::thread::sleep(Duration::from_millis(20)),
                            Ok(r) => panic!("unexpected answer {}: {}", r.status, r.body),
                            Err(_) => {
                                retries += 1;
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                }
                (acked, retries)
            })
        })
        .collect();
    // Kill the service while the clients are busy, then start it again on
    // the same store: the intake is processed first.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_so_far.load(Ordering::SeqCst) < CLIENTS * BATCHES * PER_BATCH / 3 {
        assert!(Instant::now() < deadline, "no progress: {}", svc.log());
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(svc); // SIGKILL
               // Down for a moment: the clients see refused connections and retry.
    std::thread::sleep(Duration::from_millis(200));
    let fired_at_kill = count(&dir, "SELECT COUNT(*) FROM herald_firing");
    let svc = start(&dir, &[]);
    port.store(svc.port, Ordering::SeqCst);
    let mut acked = 0;
    let mut retries = 0;
    for c in clients {
        let (a, r) = c.join().unwrap();
        acked += a;
        retries += r;
    }
    let m = drained(svc.port);
    let elapsed = started.elapsed();
    let total = (CLIENTS * BATCHES * PER_BATCH) as i64;
    assert_eq!(acked as i64, total);
    assert!(fired_at_kill < total, "the kill came after everything was processed");
    assert!(retries > 0, "no client saw the service down");
    // Exactly once: every event fired, none twice.
    assert_eq!(count(&dir, "SELECT COUNT(*) FROM herald_firing"), total);
    assert_eq!(count(&dir, "SELECT COUNT(DISTINCT event_uuid) FROM herald_firing"), total);
    // A firing's line is its event's intake seq: distinct across restarts.
    assert_eq!(count(&dir, "SELECT COUNT(DISTINCT line) FROM herald_firing WHERE line > 0"), total);
    assert_eq!(count(&dir, "SELECT COUNT(*) FROM herald_intake"), 0);
    assert_eq!(metric(&m, "herald_rule_firings_total{rule=\"every_login\"}"), total as f64);
    eprintln!(
        "{total} events from {CLIENTS} clients in {elapsed:?}, {retries} retries, {fired_at_kill} fired at the kill"
    );
    assert_eq!(svc.stop(), 0);
}

#[test]
fn requests_are_authenticated_bounded_and_validated() {
    let (_tmp, dir) = setup(POLICY);
    let svc = start(&dir, &["--max-body-bytes", "4096"]);
    let port = svc.port;
    let one = login(&uuid(1, 1));
    assert_eq!(request(port, "POST", "/events", None, one.as_bytes()).unwrap().status, 401);
    let r = request(port, "POST", "/events", Some("wrong"), one.as_bytes()).unwrap();
    assert_eq!(r.status, 401);
    assert!(r.headers.contains("WWW-Authenticate: Bearer"), "{}", r.headers);
    assert_eq!(request(port, "POST", "/reload", Some("s3cret-tokeN"), b"").unwrap().status, 401);
    // Over the body limit.
    let big: String = (0..40).map(|i| login(&uuid(2, i)) + "\n").collect();
    assert!(big.len() > 4096);
    assert_eq!(post_events(port, &big).status, 413);
    // Good, malformed and duplicate events in one NDJSON body.
    let body = format!("{one}\n{{\"action\": broken\n\n{{\"action\":\"login\"}}\n{one}\n[1]\n{}\n", login(&uuid(1, 2)));
    let r = post_events(port, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["accepted"], 2, "{v}");
    assert_eq!(v["duplicates"], 1, "{v}");
    assert_eq!(v["rejected"], 3, "{v}");
    let lines: Vec<u64> = v["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 4, 6], "{v}");
    for e in v["errors"].as_array().unwrap() {
        assert!(!e["error"].as_str().unwrap().is_empty());
    }
    // An event no rule matches is processed too (it leaves the intake).
    let logout = login(&uuid(1, 9)).replace("\"login\"", "\"logout\"");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&post_events(port, &logout).body).unwrap()["accepted"], 1);
    drained(port);
    // A JSON array and a single pretty-printed object.
    let arr = format!("[{}, {}]", login(&uuid(1, 3)), login(&uuid(1, 4)));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&post_events(port, &arr).body).unwrap()["accepted"], 2);
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&login(&uuid(1, 5))).unwrap()).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&post_events(port, &pretty).body).unwrap()["accepted"], 1);
    // A retry of processed events is answered as duplicates and fires nothing.
    let m = drained(port);
    let r = post_events(port, &arr);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["duplicates"], 2, "{}", r.body);
    assert_eq!(count(&dir, "SELECT COUNT(*) FROM herald_firing"), 5);
    // The malformed lines are dead letters, with their position.
    let dead: Vec<(String, i64)> = {
        let c = db(&dir);
        let mut st = c.prepare("SELECT source, line FROM herald_dead_letter ORDER BY line").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(dead, [("http".to_string(), 2), ("http".to_string(), 4), ("http".to_string(), 6)]);
    assert_eq!(metric(&m, "herald_dead_letters_total"), 3.0);
    assert_eq!(metric(&m, "herald_events_rejected_total"), 3.0);
    assert_eq!(metric(&m, "herald_requests_refused_total{reason=\"unauthorized\"}"), 3.0);
    assert_eq!(metric(&m, "herald_requests_refused_total{reason=\"too_large\"}"), 1.0);
    // Routing.
    assert_eq!(request(port, "GET", "/healthz", None, b"").unwrap().status, 200);
    assert_eq!(request(port, "GET", "/nothing", None, b"").unwrap().status, 404);
    assert_eq!(request(port, "GET", "/events", None, b"").unwrap().status, 405);
    assert_eq!(svc.stop(), 0);
}

#[test]
fn reloads_swap_good_policies_and_refuse_broken_ones() {
    let (_tmp, dir) = setup(POLICY);
    let svc = start(&dir, &[]);
    let port = svc.port;
    let fired = |rule: &str| count(&dir, &format!("SELECT COUNT(*) FROM herald_firing WHERE rule = '{rule}'"));
    post_events(port, &login(&uuid(3, 1)));
    drained(port);
    assert_eq!(fired("every_login"), 1);
    // A broken policy: refused (SIGHUP and POST /reload), the old one runs on.
    std::fs::write(dir.join("policy.herald"), "rule broken {\n  match login { no_such_field: 1 }\n}\n").unwrap();
    svc.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !svc.log().contains("reload refused") {
        assert!(Instant::now() < deadline, "{}", svc.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(svc.log().contains("no_such_field"), "the diagnostics are logged: {}", svc.log());
    let r = request(port, "POST", "/reload", Some(TOKEN), b"").unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("no_such_field"), "{}", r.body);
    post_events(port, &login(&uuid(3, 2)));
    drained(port);
    assert_eq!(fired("every_login"), 2);
    // A good one swaps in.
    std::fs::write(dir.join("policy.herald"), "rule second {\n  match login { }\n}\n").unwrap();
    svc.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&metrics(port), "herald_reloads_total{result=\"ok\"}") < 1.0 {
        assert!(Instant::now() < deadline, "{}", svc.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    post_events(port, &login(&uuid(3, 3)));
    let m = drained(port);
    assert_eq!(fired("every_login"), 2);
    assert_eq!(fired("second"), 1);
    assert_eq!(metric(&m, "herald_reloads_total{result=\"refused\"}"), 2.0);
    // And through the endpoint.
    let r = request(port, "POST", "/reload", Some(TOKEN), b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(svc.stop(), 0);
}

#[test]
fn metrics_match_the_store_and_sigterm_drains() {
    let policy = "rule every_login {\n  match login { }\n}\n\
                  rule failing {\n  match login { }\n  guard int(\"x\") > 1\n}\n";
    let (_tmp, dir) = setup(policy);
    let svc = start(&dir, &[]);
    let port = svc.port;
    let body: String = (0..500).map(|i| login(&uuid(4, i)) + "\n").collect();
    assert_eq!(post_events(port, &body).status, 200);
    post_events(port, "not json\n");
    let m = drained(port);
    let c = db(&dir);
    let per_rule: Vec<(String, i64)> = {
        let mut st = c.prepare("SELECT rule, COUNT(*) FROM herald_firing GROUP BY rule ORDER BY rule").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    assert!(!per_rule.is_empty());
    for (rule, n) in &per_rule {
        assert_eq!(metric(&m, &format!("herald_rule_firings_total{{rule=\"{rule}\"}}")), *n as f64);
    }
    let errors: i64 = c.query_row("SELECT COUNT(*) FROM herald_rule_error", [], |r| r.get(0)).unwrap();
    assert_eq!(metric(&m, "herald_rule_errors_total"), errors as f64);
    let dead: i64 = c.query_row("SELECT COUNT(*) FROM herald_dead_letter", [], |r| r.get(0)).unwrap();
    assert_eq!(metric(&m, "herald_dead_letters_total"), dead as f64);
    assert_eq!(dead, 1);
    assert_eq!(metric(&m, "herald_events_received_total"), 500.0);
    assert_eq!(metric(&m, "herald_events_processed_total"), 500.0);
    assert_eq!(metric(&m, "herald_event_latency_seconds_count"), 500.0);
    assert_eq!(metric(&m, "herald_event_latency_seconds_bucket{le=\"+Inf\"}"), 500.0);
    // Buckets are cumulative.
    let buckets: Vec<f64> =
        m.iter().filter(|(s, _)| s.starts_with("herald_event_latency_seconds_bucket")).map(|(_, v)| *v).collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    // SIGTERM with events in flight: exit 0, and nothing acknowledged is
    // lost — what was not processed stays in the intake for the next start.
    let body: String = (500..3500).map(|i| login(&uuid(4, i)) + "\n").collect();
    assert_eq!(post_events(port, &body).status, 200);
    assert_eq!(svc.stop(), 0);
    let fired = count(&dir, "SELECT COUNT(*) FROM herald_firing WHERE rule = 'every_login'");
    let waiting = count(&dir, "SELECT COUNT(*) FROM herald_intake");
    assert_eq!(fired + waiting, 3500, "fired {fired}, waiting {waiting}");
    let svc = start(&dir, &[]);
    drained(svc.port);
    assert_eq!(count(&dir, "SELECT COUNT(*) FROM herald_firing WHERE rule = 'every_login'"), 3500);
    assert_eq!(svc.stop(), 0);
}

/// `--log-format json`: every line the service writes on stderr, its own
/// and the engine's (a `log` action here), is one JSON object with `time`,
/// `level` and `message`.
#[test]
fn json_log_lines() {
    let (_tmp, dir) =
        setup("rule every_login {\n  match login { user.username: name }\n  action log(\"login by {name}\")\n}\n");
    let svc = start(&dir, &["--log-format", "json"]);
    let r = post_events(svc.port, &(login(&uuid(9, 1)) + "\n"));
    assert_eq!(r.status, 200, "{}", r.body);
    drained(svc.port);
    let log = svc.log();
    assert_eq!(svc.stop(), 0);
    let mut saw_listening = false;
    let mut saw_action = false;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for k in ["time", "level", "message"] {
            assert!(v[k].is_string(), "no {k}: {line}");
        }
        let m = v["message"].as_str().unwrap();
        saw_listening |= m.contains("listening on http://");
        saw_action |= m == "login by akadmin" && v["rule"] == "every_login";
    }
    assert!(saw_listening && saw_action, "{log}");
}

/// The service delivers webhooks continuously: a rule's `webhook` reaches a
/// real HTTP server on loopback with its JSON body and idempotency key, and
/// `/metrics` counts the row as sent.
#[test]
fn webhooks_are_delivered_by_the_service() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send(format!("{head}\n{}", String::from_utf8_lossy(&body)));
        }
    });
    let policy = format!(
        "rule hook {{\n  match login {{ user.username: name }}\n  action webhook(url: \"http://127.0.0.1:{hook_port}/x\", body: {{ text: \"login by {{name}}\" }})\n}}\n"
    );
    let (_tmp, dir) = setup(&policy);
    let svc = start(&dir, &[]);
    assert_eq!(post_events(svc.port, &(login(&uuid(7, 1)) + "\n")).status, 200);
    let got = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no delivery: {}", svc.log()));
    assert!(got.contains("{\"text\":\"login by akadmin\"}"), "{got}");
    assert!(got.to_ascii_lowercase().contains("idempotency-key: herald-"), "{got}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&metrics(svc.port), "herald_outbox_messages{kind=\"webhook\",status=\"sent\"}") != 1.0 {
        assert!(Instant::now() < deadline, "not counted as sent: {}", svc.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(count(&dir, "SELECT COUNT(*) FROM herald_outbox WHERE kind = 'webhook' AND status = 'sent'"), 1);
    assert_eq!(svc.stop(), 0);
}
