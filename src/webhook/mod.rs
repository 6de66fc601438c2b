//! Webhook delivery over HTTP(S) (ureq, rustls).
//!
//! A rule's `webhook` is a row of kind `webhook` in `herald_outbox`,
//! written in the same SQLite transaction as the rule's other effects (its
//! URL, method, headers as a JSON object, and rendered body). After that
//! transaction commits, [`Sender::deliver`] sends due rows and records each
//! result at once. As for email, every read and write of the outbox goes
//! through [`OutboxStore`]; this module validates, composes and transports.
//!
//! # Guarantees
//! - **One sender per row.** A pass claims rows under a lease (the same
//!   mechanism as email, [`OutboxStore::claim`]) and renews it right before
//!   each request for one request's deadline plus a margin, so `herald run`,
//!   `herald outbox flush` and a long-running service never send one row at
//!   the same time, and only the holder records a result.
//! - **Idempotency key.** Every attempt of a row carries the same
//!   `Idempotency-Key` header ([`idempotency_key`], derived from the row's
//!   id, rule, event and creation time), so a receiver can drop the copy
//!   sent after a crash between its `2xx` and the `sent` mark — the one
//!   window leases cannot close. A key given in the rule's `headers` wins.
//!
//! # Results
//! - `2xx`: `sent` (the status is kept in `response_status`).
//! - `4xx` other than `408` and `429`: `failed` at once and given up
//!   (`given_up_at`): the request itself is wrong, sending it again cannot
//!   help.
//! - `408`, `429`, `5xx`, any other status (`3xx`: redirects are not
//!   followed), timeouts and connection errors: `failed`, retried after the
//!   mail backoff ([`crate::mail::backoff`]: 30 s doubling to one hour) or
//!   after the server's `Retry-After` (seconds or an HTTP date, at most a
//!   day), until [`WebhookConfig::max_attempts`]; then given up.
//!
//! The answer's status and the start of its body (at most
//! [`MAX_EXCERPT`] bytes, one line) are recorded on a failure, with a
//! one-line `last_error`.
//!
//! # Bounds
//! Each request has a connect timeout and a total deadline (connecting,
//! sending, and reading the answer: [`WebhookConfig`]); at most
//! [`MAX_EXCERPT`] bytes of an answer are read.
//!
//! # For a long-running service
//! A [`Sender`] is `Send + Sync` and keeps no state between passes but its
//! lease token; call [`Sender::deliver`] with [`Mode::Due`] after each
//! commit and on a timer (a row's `next_attempt_at` says when it is due).

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::mail::{backoff, Mode};
use crate::store::{AttemptFailure, Due, Kind, OutboxRow, OutboxStore, StoreError};
use crate::value::{format_timestamp_store, now_nanos};

/// The most bytes of an answer's body read and kept on a failure.
pub const MAX_EXCERPT: usize = 1024;

/// The longest `last_error` kept, in characters.
const MAX_ERROR: usize = 300;

/// Rows claimed at a time.
const CLAIM_BATCH: usize = 16;

/// A lease outlives the request it covers by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The longest `Retry-After` honoured; a later one waits this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How requests are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Connecting (DNS, TCP, TLS) must succeed within this.
    pub connect_timeout: Duration,
    /// The whole request, answer included, must end within this.
    pub timeout: Duration,
    /// Attempts of one row before it is given up (at least 1).
    pub max_attempts: i64,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig { connect_timeout: Duration::from_secs(10), timeout: Duration::from_secs(30), max_attempts: 8 }
    }
}

// ---- validation (called by the effect check) ------------------------------

/// Checks a webhook URL before it is queued: an absolute `http` or `https`
/// URL with a host, without whitespace or control characters (the URL
/// parser would silently drop a tab or a line break).
pub fn check_url(url: &str) -> Result<(), String> {
    if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("the webhook URL {} contains {}", quoted(url), describe_char(c)));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("{} is not a valid URL: {e}", quoted(url)))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!("the webhook URL {} uses `{other}:`; only `http` and `https` are allowed", quoted(url)))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("the webhook URL {} has no host", quoted(url)));
    }
    Ok(())
}

/// Why a header cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// A CR or LF in the name or value: it would add headers (R0004).
    LineBreak(String),
    /// Not a valid header name, another control character, or a header
    /// Herald must control itself (R0008).
    Invalid(String),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::LineBreak(m) | HeaderError::Invalid(m) => f.write_str(m),
        }
    }
}

/// Headers that frame the request; a rule may not set them.
const RESERVED: [&str; 5] = ["content-length", "host", "transfer-encoding", "connection", "te"];

/// Checks one header before it is queued.
pub fn check_header(name: &str, value: &str) -> Result<(), HeaderError> {
    if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
        return Err(HeaderError::LineBreak(format!(
            "the webhook header {} contains a line break, which would add headers of its own",
            quoted(name)
        )));
    }
    // RFC 9110 token characters.
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Err(HeaderError::Invalid(format!("{} is not a valid HTTP header name", quoted(name))));
    }
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(HeaderError::Invalid(format!(
            "the webhook header {} is set by Herald and may not be given",
            quoted(name)
        )));
    }
    if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(HeaderError::Invalid(format!(
            "the value of webhook header {} contains {}",
            quoted(name),
            describe_char(c)
        )));
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    match c {
        '\n' => "a line break".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        ' ' => "a space".into(),
        c => format!("the control character U+{:04X}", c as u32),
    }
}

/// A value in backquotes, cut to 80 characters.
fn quoted(s: &str) -> String {
    let mut t: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        t.push('…');
    }
    format!("`{t}`")
}

/// The headers as stored in the outbox: a JSON object of the rule's
/// headers (a later one replaces an earlier one of the same name, in any
/// case) plus a `Content-Type` when the rule gave none: `application/json`
/// for a body that was not a string, and for a string that holds a JSON
/// object or array; `text/plain; charset=utf-8` for any other string.
pub fn stored_headers(headers: &[(String, String)], body: &str, body_is_text: bool) -> String {
    let mut list: Vec<(String, String)> = Vec::with_capacity(headers.len() + 1);
    for (k, v) in headers {
        list.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        list.push((k.clone(), v.clone()));
    }
    if !list.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
        let json = !body_is_text || {
            let t = body.trim_start();
            (t.starts_with('{') || t.starts_with('[')) && serde_json::from_str::<serde_json::Value>(body).is_ok()
        };
        let ct = if json { "application/json" } else { "text/plain; charset=utf-8" };
        list.push(("Content-Type".into(), ct.into()));
    }
    let mut m = serde_json::Map::new();
    for (k, v) in list {
        m.insert(k, serde_json::Value::String(v));
    }
    serde_json::Value::Object(m).to_string()
}

/// The row's `Idempotency-Key`: the same for every attempt of a row, and
/// different for rows of different stores (it hashes the rule, the event
/// and the creation time besides the id).
pub fn idempotency_key(row: &OutboxRow) -> String {
    let mut data = Vec::with_capacity(row.rule.len() + row.event_uuid.len() + row.created.len() + 2);
    data.extend_from_slice(row.rule.as_bytes());
    data.push(0);
    data.extend_from_slice(row.event_uuid.as_bytes());
    data.push(0);
    data.extend_from_slice(row.created.as_bytes());
    format!("herald-{}-{:032x}", row.id, crate::decode::fnv1a_128(&data))
}

// ---- delivery ---------------------------------------------------------------

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Rows the server accepted (now `sent`).
    pub sent: usize,
    /// Rows that failed in this pass and will be retried.
    pub failed: usize,
    /// Rows given up in this pass (a 4xx, or the attempt limit).
    pub given_up: usize,
    /// Unsent rows another sender was delivering when the pass ended.
    pub leased_elsewhere: usize,
    /// Webhook rows still to be delivered (pending, or failed and to be
    /// retried), due or not.
    pub remaining: usize,
    /// The last failure of the pass, for a summary.
    pub last_error: Option<String>,
}

/// Errors that stop a pass (per-row failures are recorded in the row).
#[derive(Debug)]
pub enum WebhookError {
    Store(StoreError),
    /// The server accepted row `id` but recording it failed; a later pass
    /// sends it again (with the same idempotency key).
    RecordSent {
        id: i64,
        source: StoreError,
    },
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookError::Store(e) => write!(f, "{e}"),
            WebhookError::RecordSent { id, source } => write!(
                f,
                "the server accepted webhook {id} but it could not be marked sent ({source}); it will be sent again"
            ),
        }
    }
}

impl std::error::Error for WebhookError {}

impl From<StoreError> for WebhookError {
    fn from(e: StoreError) -> Self {
        WebhookError::Store(e)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Sent(u16),
    Failed { error: String, status: Option<u16>, excerpt: Option<String>, retry: Retry },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// The request is wrong: never again.
    Never,
    /// After the backoff.
    Backoff,
    /// After the server's `Retry-After`.
    After(Duration),
}

/// Delivers the webhook rows of an outbox.
pub struct Sender {
    config: WebhookConfig,
    agent: ureq::Agent,
    owner: String,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("config", &self.config).field("owner", &self.owner).finish_non_exhaustive()
    }
}

impl Sender {
    pub fn new(config: WebhookConfig) -> Sender {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout(config.timeout)
            // A redirect would change what is sent where (and a 303 turns a
            // POST into a GET): a 3xx is a failed attempt, retried.
            .redirects(0)
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build();
        static SENDERS: AtomicU64 = AtomicU64::new(0);
        let owner = format!(
            "herald-webhook:{}:{}:{}",
            std::process::id(),
            now_nanos(),
            SENDERS.fetch_add(1, Ordering::Relaxed)
        );
        Sender { config: WebhookConfig { max_attempts: config.max_attempts.max(1), ..config }, agent, owner }
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// The token this sender writes into the rows it leases.
    pub fn lease_owner(&self) -> &str {
        &self.owner
    }

    fn lease(&self) -> Duration {
        self.config.timeout + self.config.connect_timeout + LEASE_MARGIN
    }

    /// Sends the webhook rows `mode` selects that no other sender holds,
    /// in id order, recording each result as it happens. `Mode::All`
    /// ignores backoff and `Retry-After` but never sends a row given up.
    pub fn deliver(&self, outbox: &OutboxStore, mode: Mode) -> Result<DeliveryReport, WebhookError> {
        let mut report = DeliveryReport::default();
        let result = self.pass(outbox, mode, &mut report);
        let released = outbox.release(&self.owner);
        result?;
        released?;
        let now = store_now();
        report.leased_elsewhere = outbox.leased_elsewhere_of(Kind::Webhook, &self.owner, &now)?;
        report.remaining = outbox.counts_of(Kind::Webhook)?.unsent() as usize;
        Ok(report)
    }

    fn pass(&self, outbox: &OutboxStore, mode: Mode, report: &mut DeliveryReport) -> Result<(), WebhookError> {
        // Ids only grow within a pass, so a row that failed in this pass is
        // not claimed again by it.
        let mut after = 0;
        loop {
            let now = store_now();
            let due = match mode {
                Mode::Due => Due::At(&now),
                Mode::All => Due::Any,
            };
            let rows =
                outbox.claim_of(Kind::Webhook, &self.owner, due, &now, &now_plus(self.lease()), after, CLAIM_BATCH)?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.id;
            for claimed in &rows {
                let Some(row) = outbox.renew(claimed.id, &self.owner, &now_plus(self.lease()))? else {
                    continue;
                };
                match self.attempt(&row) {
                    Attempt::Sent(status) => match outbox.mark_delivered(row.id, &self.owner, &store_now(), status) {
                        Ok(_) => report.sent += 1,
                        Err(source) => return Err(WebhookError::RecordSent { id: row.id, source }),
                    },
                    Attempt::Failed { error, status, excerpt, retry } => {
                        let attempts = row.attempts.saturating_add(1);
                        let wait = match retry {
                            Retry::Never => None,
                            _ if attempts >= self.config.max_attempts => None,
                            Retry::Backoff => Some(backoff(attempts)),
                            Retry::After(d) => Some(d.min(MAX_RETRY_AFTER)),
                        };
                        let error = match (wait, retry) {
                            (None, Retry::Never) => format!("{error}; not retried"),
                            (None, _) => format!("{error}; gave up after {attempts} attempts"),
                            _ => error,
                        };
                        let error = short(&error);
                        let retry_at = wait.map(now_plus);
                        let failure = AttemptFailure {
                            error: &error,
                            retry_at: retry_at.as_deref(),
                            status,
                            excerpt: excerpt.as_deref(),
                        };
                        if outbox.mark_attempt_failed(row.id, &self.owner, &failure, &store_now())? {
                            if retry_at.is_some() {
                                report.failed += 1;
                            } else {
                                report.given_up += 1;
                            }
                        }
                        report.last_error = Some(error);
                    }
                }
            }
        }
    }

    /// One request for `row`.
    fn attempt(&self, row: &OutboxRow) -> Attempt {
        let failed = |error: String| Attempt::Failed { error, status: None, excerpt: None, retry: Retry::Never };
        // A row is checked before it is queued; one edited by hand may not
        // be, and is given up rather than sent half-checked.
        if let Err(e) = check_url(&row.url) {
            return failed(format!("cannot build the request: {e}"));
        }
        let method = match row.method.as_str() {
            m @ ("POST" | "PUT") => m,
            other => return failed(format!("cannot build the request: `{other}` is not a webhook method")),
        };
        let headers: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(&row.headers) {
            Ok(h) => h,
            Err(_) if row.headers.is_empty() => serde_json::Map::new(),
            Err(e) => {
                return failed(format!("cannot build the request: the stored headers are not a JSON object: {e}"))
            }
        };
        let mut req = self.agent.request(method, &row.url);
        let mut has_key = false;
        for (name, value) in &headers {
            let Some(value) = value.as_str() else {
                return failed(format!("cannot build the request: header `{name}` is not a string"));
            };
            if let Err(e) = check_header(name, value) {
                return failed(format!("cannot build the request: {e}"));
            }
            has_key |= name.eq_ignore_ascii_case("idempotency-key");
            req = req.set(name, value);
        }
        if !has_key {
            req = req.set("Idempotency-Key", &idempotency_key(row));
        }
        match req.send_bytes(row.body.as_bytes()) {
            Ok(resp) if (200..300).contains(&resp.status()) => Attempt::Sent(resp.status()),
            Ok(resp) => answer_failure(resp),
            Err(ureq::Error::Status(_, resp)) => answer_failure(resp),
            Err(ureq::Error::Transport(t)) => Attempt::Failed {
                error: transport_error(&t, &self.config),
                status: None,
                excerpt: None,
                retry: Retry::Backoff,
            },
        }
    }
}

/// A non-2xx answer: its status, the start of its body, and whether and
/// when to try again.
fn answer_failure(resp: ureq::Response) -> Attempt {
    let status = resp.status();
    let reason = resp.status_text().to_string();
    let retry_after = resp.header("retry-after").and_then(parse_retry_after);
    let mut buf = Vec::new();
    // Bounded, and within the request's deadline; a failure to read the
    // excerpt loses only the excerpt.
    let _ = resp.into_reader().take(MAX_EXCERPT as u64).read_to_end(&mut buf);
    let excerpt = excerpt(&buf);
    let retry = match status {
        408 | 429 | 500..=599 => retry_after.map_or(Retry::Backoff, Retry::After),
        400..=499 => Retry::Never,
        _ => retry_after.map_or(Retry::Backoff, Retry::After),
    };
    let mut error = format!("the server answered {status}");
    if !reason.is_empty() {
        error.push(' ');
        error.push_str(&reason);
    }
    if let Some(e) = &excerpt {
        error.push_str(": ");
        error.push_str(e);
    }
    Attempt::Failed { error, status: Some(status), excerpt, retry }
}

/// The start of a body as one line of text; `None` when empty.
fn excerpt(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_EXCERPT)]);
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    (!flat.is_empty()).then_some(flat)
}

/// `Retry-After`: delay seconds, or an HTTP date (a past date means now).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn transport_error(t: &ureq::Transport, config: &WebhookConfig) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
                return format!(
                    "timed out: no complete answer within {} s (connect timeout {} s)",
                    config.timeout.as_secs(),
                    config.connect_timeout.as_secs()
                );
            }
        }
        source = s.source();
    }
    match t.kind() {
        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns => format!("cannot connect: {t}"),
        _ => format!("delivery failed: {t}"),
    }
}

/// One line, at most [`MAX_ERROR`] characters.
fn short(s: &str) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX_ERROR {
        flat
    } else {
        let mut cut: String = flat.chars().take(MAX_ERROR - 1).collect();
        cut.push('…');
        cut
    }
}

fn store_now() -> String {
    format_timestamp_store(now_nanos())
}

fn now_plus(d: Duration) -> String {
    let at = SystemTime::now() + d;
    let nanos = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
    format_timestamp_store(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://hooks.example.com/a?b=c").is_ok());
        assert!(check_url("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "ftp://x/",
            "file:///etc/passwd",
            "mailto:a@b",
            "not a url",
            "http://x/\n",
            "/relative",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers() {
        assert!(check_header("Authorization", "Bearer x\ty").is_ok());
        assert!(matches!(check_header("X-A", "a\r\nB: c"), Err(HeaderError::LineBreak(_))));
        assert!(matches!(check_header("X\nA", "a"), Err(HeaderError::LineBreak(_))));
        assert!(matches!(check_header("X A", "a"), Err(HeaderError::Invalid(_))));
        assert!(matches!(check_header("", "a"), Err(HeaderError::Invalid(_))));
        assert!(matches!(check_header("Content-Length", "1"), Err(HeaderError::Invalid(_))));
        assert!(matches!(check_header("X-A", "a\u{0}"), Err(HeaderError::Invalid(_))));
    }

    #[test]
    fn content_type_follows_the_body() {
        let h = |body: &str, text: bool| stored_headers(&[], body, text);
        assert_eq!(h("{\"a\":1}", false), r#"{"Content-Type":"application/json"}"#);
        assert_eq!(h("\"s\"", false), r#"{"Content-Type":"application/json"}"#);
        assert_eq!(h(" {\"text\":\"hi\"}", true), r#"{"Content-Type":"application/json"}"#);
        assert_eq!(h("{not json", true), r#"{"Content-Type":"text/plain; charset=utf-8"}"#);
        assert_eq!(h("hello", true), r#"{"Content-Type":"text/plain; charset=utf-8"}"#);
        let given = [
            ("content-type".to_string(), "text/markdown".to_string()),
            ("X-A".into(), "1".into()),
            ("x-a".into(), "2".into()),
        ];
        assert_eq!(stored_headers(&given, "{}", false), r#"{"content-type":"text/markdown","x-a":"2"}"#);
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        let d = parse_retry_after(&later).unwrap();
        assert!(d > Duration::from_secs(3590) && d <= Duration::from_secs(3600), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn the_key_is_stable_and_distinct() {
        let row = OutboxRow {
            id: 7,
            rule: "r".into(),
            event_uuid: "e".into(),
            to_addrs: "[]".into(),
            cc: "[]".into(),
            bcc: "[]".into(),
            subject: String::new(),
            body: "b".into(),
            attempts: 0,
            created: "2026-01-01T00:00:00.000000Z".into(),
            kind: "webhook".into(),
            url: "http://x/".into(),
            method: "POST".into(),
            headers: "{}".into(),
        };
        let k = idempotency_key(&row);
        assert!(k.starts_with("herald-7-") && k.len() == "herald-7-".len() + 32, "{k}");
        assert_eq!(k, idempotency_key(&OutboxRow { attempts: 3, ..row.clone() }));
        assert_ne!(k, idempotency_key(&OutboxRow { created: "2026-01-01T00:00:01.000000Z".into(), ..row }));
    }
}
