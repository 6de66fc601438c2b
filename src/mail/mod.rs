//! Outbox delivery over SMTP (lettre).
//!
//! A rule's email is a row in `herald_outbox`, written in the same SQLite
//! transaction as the rule's other effects. After that transaction commits,
//! [`Mailer::deliver`] sends the rows and records each result at once. This
//! module composes, validates and transports; every read and write of the
//! outbox goes through [`OutboxStore`] (`src/store/outbox.rs`).
//!
//! # Guarantees
//! - **Never lost.** A row leaves the unsent set only when it is marked
//!   `sent` after the server accepted it. A failure (the server's reply, a
//!   broken connection, a timeout, a row that cannot even be built) leaves it
//!   `failed`, with `last_error` and a `next_attempt_at`; nothing here deletes
//!   a row or panics on one.
//! - **One sender per row.** A pass claims rows under a lease
//!   ([`OutboxStore::claim`], a write transaction before any network IO), so
//!   `herald run --smtp` beside `herald outbox flush`, or two flushes, never
//!   send the same row. Right before each message the lease is renewed for
//!   the length of one delivery ([`SmtpConfig::deadline`] plus a margin),
//!   which also proves the row is still this pass's; results are recorded
//!   only by the holder. A row whose sender died is taken over when its
//!   lease lapses.
//! - **The unavoidable window.** A crash (or a lost connection) after the
//!   server has accepted the message but before the `sent` mark is stored
//!   means the row is sent again later. Every attempt of a row carries the
//!   same `Message-ID` (`<herald.{id}.{event}@{sender domain}>`, its
//!   idempotency key) and `Date`, so receivers that deduplicate on
//!   Message-ID drop the copy, and a human can recognise it.
//!
//! # Bounds
//! Each delivery has a total deadline ([`SmtpConfig::deadline`], 60 s by
//! default) besides the per-read `timeout`, and the server may send at most
//! 1 MiB in answer to anything Herald writes (see `guard`). After two
//! deliveries time out in one pass, the server counts as unreachable for
//! the rest of it.
//!
//! # Retries
//! A failed row waits `30 s × 2^(attempts−1)`, capped at one hour
//! ([`backoff`]), before [`Mode::Due`] picks it again; [`Mode::All`]
//! (`herald outbox flush`) ignores the wait. Rows are retried forever: the
//! status set (`pending`, `sent`, `failed`) has no "dead" state, and an
//! operator sees stuck rows in `herald outbox list`.
//!
//! # Outages
//! A pass opens one SMTP connection and sends its rows over it, reconnecting
//! only after a row broke the connection (lettre closes it on any error
//! reply). When connecting fails (refused, timeout, TLS, authentication), or
//! a second delivery of the pass times out, no further connection is tried
//! in this pass: every remaining due row is claimed and marked `failed` with
//! that error (attempts + 1, backed off; one transaction for the lot, so a
//! long queue costs one commit). So `herald outbox list` shows why each row
//! is stuck, and every row's backoff grows with the outage instead of
//! hammering a dead server. The [`Mailer`] also remembers the outage: for
//! the same backoff, `Due` passes (one after each commit of `herald run`)
//! do not connect at all and leave new rows `pending`
//! ([`DeliveryReport::held_back`]); `All` always tries.
//!
//! # For the interpreter and the CLI
//! - Before writing a row: [`validate_address`] on every recipient (an error
//!   is `R0003` `InvalidAddress`) and [`check_header`]`("Subject", ..)` (an
//!   error is `R0004` `HeaderInjection`). The address policy is in
//!   [`validate_address`]'s module: bare `local@domain` only.
//! - `--smtp URL` → [`SmtpConfig::parse`]; print [`SmtpConfig::warning`] when
//!   there is one. `--mail-from` → [`parse_mailbox`]. Then [`Mailer::new`].
//! - `herald run`: `deliver(outbox, Mode::Due)` after each commit;
//!   `herald outbox flush`: `deliver(outbox, Mode::All)`; `herald outbox
//!   list`: [`list`] / [`list_json`] on a read-only [`OutboxStore`].

mod compose;
mod config;
mod guard;
mod listing;
mod validate;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::store::{Due, Kind, OutboxRow, OutboxStore, StoreError};
use crate::value::{format_timestamp_store, now_nanos};

pub use crate::store::OutboxCounts;
pub use config::{SmtpConfig, TlsMode, DEFAULT_DEADLINE, DEFAULT_TIMEOUT};
pub use listing::{list, list_json};
pub use validate::{check_header, parse_address, parse_mailbox, validate_address};

/// Which rows a pass sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `herald run`, after each commit: `pending` rows, and `failed` rows
    /// whose `next_attempt_at` has come.
    Due,
    /// `herald outbox flush`: every row not yet sent, backoff or not.
    All,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Rows the server accepted in this pass (now `sent`).
    pub sent: usize,
    /// Rows this pass marked `failed` (server reply, connection error,
    /// timeout, or a row that cannot be built).
    pub failed: usize,
    /// Due rows this pass did not try because a recent pass found the server
    /// unreachable (`Mode::Due` only); they stay as they were.
    pub held_back: usize,
    /// Unsent rows another sender was delivering (a live lease) when the
    /// pass ended; this pass left them alone.
    pub leased_elsewhere: usize,
    /// Rows still unsent after the pass (`pending` + `failed`, due or not).
    pub remaining: usize,
    /// The connection error that ended this pass's attempts, if any.
    pub connection_error: Option<String>,
}

/// Errors that stop a pass. Per-row failures are not errors: they are
/// recorded in the row and counted in the report.
#[derive(Debug)]
pub enum MailError {
    /// The store failed while claiming rows or recording a failure.
    Store(StoreError),
    /// The server accepted row `id`, but recording it as sent failed; the pass
    /// stopped, and the row will be sent again by a later pass.
    RecordSent { id: i64, source: StoreError },
    /// The SMTP configuration cannot be used (e.g. TLS setup failed).
    Config(String),
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailError::Store(e) => write!(f, "{e}"),
            MailError::RecordSent { id, source } => write!(
                f,
                "the server accepted outbox message {id} but it could not be marked sent ({source}); \
                 it will be sent again"
            ),
            MailError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MailError {}

impl From<StoreError> for MailError {
    fn from(e: StoreError) -> Self {
        MailError::Store(e)
    }
}

/// The wait after the `attempts`-th failed attempt: 30 s, 60 s, 120 s, …,
/// at most one hour.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 64) - 1;
    let secs = if exp >= 7 { 3600 } else { (30u64 << exp).min(3600) };
    Duration::from_secs(secs)
}

/// The longest `last_error` kept, in characters.
const MAX_ERROR: usize = 300;

/// Rows claimed at a time: a sender holds few rows it is not working on yet.
const CLAIM_BATCH: usize = 16;

/// A lease outlives the delivery it covers by this much, so a delivery cut
/// at its deadline is recorded before anyone may take the row over.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Deliveries that may time out in one pass before the server counts as
/// unreachable for the rest of it.
const MAX_TIMEOUTS: usize = 2;

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

fn store_time(at: std::time::SystemTime) -> String {
    let nanos = at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
    format_timestamp_store(nanos)
}

fn now_plus(d: Duration) -> String {
    store_time(std::time::SystemTime::now() + d)
}

#[derive(Debug, Default)]
struct Breaker {
    /// Consecutive passes that could not connect.
    failures: i64,
    /// No `Due` pass connects before this.
    until: Option<Instant>,
}

/// An open SMTP session and the relay that bounds it.
struct Session {
    smtp: SmtpConnection,
    guard: guard::Guard,
}

/// How one attempt ended, when it did not end well.
enum Failure {
    /// The server (or the connection) failed this message; go on.
    Message(String),
    /// The delivery ran out of time; the connection is gone.
    TimedOut(String),
}

/// Delivers the outbox to one SMTP server.
pub struct Mailer {
    config: SmtpConfig,
    from: Mailbox,
    tls: Option<TlsParameters>,
    hello: ClientId,
    breaker: Mutex<Breaker>,
    /// This sender's lease token: process, start time and a counter, so no
    /// two mailers (in one process or many) share one.
    owner: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("config", &self.config)
            .field("from", &self.from.to_string())
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer sending as `from` (see [`parse_mailbox`]). Fails only when
    /// TLS cannot be set up (for instance an unreadable `ca` file).
    pub fn new(config: SmtpConfig, from: Mailbox) -> Result<Mailer, MailError> {
        let tls = match config.tls {
            TlsMode::None => None,
            TlsMode::Opportunistic | TlsMode::Required | TlsMode::Implicit => {
                let mut builder = TlsParameters::builder(config.host.clone());
                if let Some(path) = &config.ca_file {
                    let pem = std::fs::read(path).map_err(|e| {
                        MailError::Config(format!(
                            "cannot read the `ca` file {}: {}",
                            path.display(),
                            guard::io_message(&e)
                        ))
                    })?;
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(MailError::Config(format!(
                            "the `ca` file {} holds no PEM certificate",
                            path.display()
                        )));
                    }
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| MailError::Config(format!("the `ca` file {}: {e}", path.display())))?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(
                    builder
                        .build()
                        .map_err(|e| MailError::Config(format!("cannot set up TLS for `{}`: {e}", config.host)))?,
                )
            }
        };
        static MAILERS: AtomicU64 = AtomicU64::new(0);
        let owner =
            format!("herald:{}:{}:{}", std::process::id(), now_nanos(), MAILERS.fetch_add(1, Ordering::Relaxed));
        Ok(Mailer { config, from, tls, hello: ClientId::default(), breaker: Mutex::new(Breaker::default()), owner })
    }

    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    pub fn sender(&self) -> &Mailbox {
        &self.from
    }

    /// The token this mailer writes into the rows it leases.
    pub fn lease_owner(&self) -> &str {
        &self.owner
    }

    /// Opens a connection through a [`guard::Guard`]: TCP (+ TLS for
    /// `smtps`), greeting, EHLO, STARTTLS as configured, AUTH when
    /// credentials are given, all within one deadline.
    fn connect(&self) -> Result<Session, String> {
        let endpoint = self.config.endpoint();
        let fail = |what: &str| short(&format!("cannot connect to {endpoint}: {what}"));
        let deadline = Instant::now() + self.config.deadline;
        let guard = guard::Guard::connect(&self.config.host, self.config.port, self.config.timeout, deadline)
            .map_err(|e| fail(&e))?;
        let wrapper = match self.config.tls {
            TlsMode::Implicit => self.tls.as_ref(),
            _ => None,
        };
        let explain = |e: &lettre::transport::smtp::Error, g: &guard::Guard| self.explain(e, g.cut());
        let mut smtp = SmtpConnection::connect(guard.addr(), Some(self.config.timeout), &self.hello, wrapper, None)
            .map_err(|e| fail(&explain(&e, &guard)))?;
        let starttls = match (self.config.tls, &self.tls) {
            (TlsMode::Required, Some(p)) => Some(p),
            (TlsMode::Opportunistic, Some(p)) if smtp.can_starttls() => Some(p),
            _ => None,
        };
        if let Some(params) = starttls {
            // Fails (before any credentials or mail are sent) when the server
            // does not offer STARTTLS: no silent downgrade with `required`.
            if let Err(e) = smtp.starttls(params, &self.hello) {
                smtp.abort();
                return Err(fail(&explain(&e, &guard)));
            }
        }
        if let Some((user, password)) = &self.config.credentials {
            let creds = Credentials::new(user.clone(), password.clone());
            if let Err(e) = smtp.auth(DEFAULT_MECHANISMS, &creds) {
                smtp.abort();
                return Err(short(&format!("cannot log in to {endpoint}: {}", explain(&e, &guard))));
            }
        }
        Ok(Session { smtp, guard })
    }

    /// A lettre error as one clause: what the relay cut, a timeout as
    /// "timed out", otherwise lettre's words.
    fn explain(&self, e: &lettre::transport::smtp::Error, cut: Option<guard::Cut>) -> String {
        match cut {
            Some(guard::Cut::Deadline) => {
                return format!("timed out: the delivery took longer than {} s", self.config.deadline.as_secs())
            }
            Some(guard::Cut::TooLarge) => {
                return format!("the server sent more than {} bytes without being asked", guard::MAX_REPLY)
            }
            None => {}
        }
        if e.is_timeout() || io_timeout(e) {
            return format!("timed out: no answer within {} s", self.config.timeout.as_secs());
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return guard::io_message(io);
            }
            source = s.source();
        }
        e.to_string()
    }

    fn held_back(&self) -> bool {
        let b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        b.until.is_some_and(|t| Instant::now() < t)
    }

    fn connection_failed(&self) {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        b.failures += 1;
        b.until = Some(Instant::now() + backoff(b.failures));
    }

    fn connection_ok(&self) {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        *b = Breaker::default();
    }

    /// How long a lease must last to cover one delivery.
    fn lease(&self) -> Duration {
        self.config.deadline + LEASE_MARGIN
    }

    /// Sends the outbox rows `mode` selects that no other sender holds, in
    /// id order, and records each result as it happens (see the module
    /// docs).
    pub fn deliver(&self, outbox: &OutboxStore, mode: Mode) -> Result<DeliveryReport, MailError> {
        let mut report = DeliveryReport::default();
        let now = format_timestamp_store(now_nanos());
        if mode == Mode::Due && self.held_back() {
            report.held_back = outbox.count_due(Due::At(&now))?;
        } else {
            let mut session: Option<Session> = None;
            let result = self.pass(outbox, mode, &mut session, &mut report);
            if let Some(mut s) = session {
                if !s.smtp.has_broken() {
                    s.guard.set_deadline(Instant::now() + self.config.timeout.min(self.config.deadline));
                    let _ = s.smtp.quit();
                }
            }
            // Rows claimed but not attempted (the pass stopped early) go
            // back at once instead of waiting for their lease to lapse.
            let released = outbox.release(&self.owner);
            result?;
            released?;
        }
        let now = format_timestamp_store(now_nanos());
        report.leased_elsewhere = outbox.leased_elsewhere(&self.owner, &now)?;
        report.remaining = outbox.counts_of(Kind::Email)?.unsent() as usize;
        Ok(report)
    }

    fn claim(&self, outbox: &OutboxStore, mode: Mode, after: i64, limit: usize) -> Result<Vec<OutboxRow>, MailError> {
        let now = format_timestamp_store(now_nanos());
        let due = match mode {
            Mode::Due => Due::At(&now),
            Mode::All => Due::Any,
        };
        Ok(outbox.claim(&self.owner, due, &now, &now_plus(self.lease()), after, limit)?)
    }

    fn pass(
        &self,
        outbox: &OutboxStore,
        mode: Mode,
        session: &mut Option<Session>,
        report: &mut DeliveryReport,
    ) -> Result<(), MailError> {
        // Ids only grow within a pass, so a row this pass failed is not
        // claimed again by it (`All` ignores the backoff it was given).
        let mut after = 0;
        let mut timeouts = 0;
        loop {
            let rows = self.claim(outbox, mode, after, CLAIM_BATCH)?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.id;
            for (i, claimed) in rows.iter().enumerate() {
                // Renew for one delivery; `None` when another sender took
                // the row over (our lease lapsed while we were stuck).
                let Some(row) = outbox.renew(claimed.id, &self.owner, &now_plus(self.lease()))? else {
                    continue;
                };
                let composed = match compose::compose(&row, &self.from) {
                    Ok(c) => c,
                    Err(reason) => {
                        self.record_failure(outbox, report, &row, &build_error(&reason))?;
                        continue;
                    }
                };
                if session.as_ref().is_none_or(|s| s.smtp.has_broken()) {
                    *session = None;
                    match self.connect() {
                        Ok(s) => {
                            self.connection_ok();
                            *session = Some(s);
                            // Connecting may have taken most of a deadline:
                            // renew so the lease covers the whole send.
                            if outbox.renew(row.id, &self.owner, &now_plus(self.lease()))?.is_none() {
                                continue;
                            }
                        }
                        Err(err) => {
                            self.connection_failed();
                            self.record_failure(outbox, report, &row, &err)?;
                            return self.give_up(outbox, mode, &rows[i + 1..], after, err, report);
                        }
                    }
                }
                let Some(s) = session.as_mut() else {
                    continue;
                };
                match self.send(s, &composed) {
                    Ok(()) => {
                        let now = format_timestamp_store(now_nanos());
                        // `Ok(false)` (the lease was lost) cannot happen while
                        // a lease outlives the delivery's deadline; the
                        // message was sent either way.
                        match outbox.mark_sent(row.id, &self.owner, &now) {
                            Ok(_) => report.sent += 1,
                            Err(source) => return Err(MailError::RecordSent { id: row.id, source }),
                        }
                    }
                    Err(Failure::Message(err)) => self.record_failure(outbox, report, &row, &err)?,
                    Err(Failure::TimedOut(err)) => {
                        self.record_failure(outbox, report, &row, &err)?;
                        *session = None;
                        timeouts += 1;
                        if timeouts >= MAX_TIMEOUTS {
                            self.connection_failed();
                            return self.give_up(outbox, mode, &rows[i + 1..], after, err, report);
                        }
                    }
                }
            }
        }
    }

    /// Sends one message within the deadline.
    fn send(&self, s: &mut Session, composed: &compose::Composed) -> Result<(), Failure> {
        s.guard.set_deadline(Instant::now() + self.config.deadline);
        match s.smtp.send(&composed.envelope, &composed.message.formatted()) {
            Ok(_) => Ok(()),
            Err(e) => {
                let cut = s.guard.cut();
                let why = self.explain(&e, cut);
                if cut == Some(guard::Cut::Deadline) || e.is_timeout() || io_timeout(&e) {
                    s.smtp.abort();
                    Err(Failure::TimedOut(short(&format!("delivery failed: {why}"))))
                } else if e.is_transient() || e.is_permanent() {
                    Err(Failure::Message(short(&format!("rejected by the server: {why}"))))
                } else {
                    Err(Failure::Message(short(&format!("delivery failed: {why}"))))
                }
            }
        }
    }

    /// The server is unreachable for the rest of this pass: marks `rest`
    /// (claimed already) and every other due row `failed` with `err` (or a
    /// row's own build error), in one transaction, so a long queue costs
    /// one commit. If the transaction fails the rows stay as they were.
    fn give_up(
        &self,
        outbox: &OutboxStore,
        mode: Mode,
        rest: &[OutboxRow],
        after: i64,
        err: String,
        report: &mut DeliveryReport,
    ) -> Result<(), MailError> {
        let mut rows: Vec<OutboxRow> = rest.to_vec();
        rows.extend(self.claim(outbox, mode, after, usize::MAX)?);
        let failures: Vec<(i64, String, String)> = rows
            .iter()
            .map(|row| {
                let reason = match compose::compose(row, &self.from) {
                    Ok(_) => err.clone(),
                    Err(reason) => build_error(&reason),
                };
                (row.id, reason, retry_time(row))
            })
            .collect();
        report.failed += outbox.mark_failed_all(&self.owner, &failures)?;
        report.connection_error = Some(err);
        Ok(())
    }

    /// Marks a row `failed` after one more attempt, backed off by [`backoff`].
    fn record_failure(
        &self,
        outbox: &OutboxStore,
        report: &mut DeliveryReport,
        row: &OutboxRow,
        error: &str,
    ) -> Result<(), MailError> {
        if outbox.mark_failed(row.id, &self.owner, error, &retry_time(row))? {
            report.failed += 1;
        }
        Ok(())
    }
}

/// Whether a lettre error is a read or write that timed out (`EAGAIN` from
/// a socket timeout shows as "Resource temporarily unavailable").
fn io_timeout(e: &lettre::transport::smtp::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
        }
        source = s.source();
    }
    false
}

/// When a row that failed now may be tried again.
fn retry_time(row: &OutboxRow) -> String {
    now_plus(backoff(row.attempts.saturating_add(1)))
}

fn build_error(reason: &str) -> String {
    short(&format!("cannot build the message: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let secs: Vec<u64> = (0..=10).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [30, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(i64::MAX).as_secs(), 3600);
        assert_eq!(backoff(-5).as_secs(), 30);
    }

    #[test]
    fn short_errors() {
        assert_eq!(short("a\r\n  b\tc"), "a b c");
        let long = "x".repeat(1000);
        assert_eq!(short(&long).chars().count(), MAX_ERROR);
    }
}
