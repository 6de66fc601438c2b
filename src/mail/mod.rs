//! Outbox delivery over SMTP (lettre).
//!
//! A rule's email is a row in `herald_outbox`, written in the same SQLite
//! transaction as the rule's other effects. After that transaction commits,
//! [`Mailer::deliver`] sends the rows and records each result at once.
//!
//! # Guarantees
//! - **Never lost.** A row leaves the unsent set only by an `UPDATE` to `sent`
//!   after the server accepted it. A failure (the server's reply, a broken
//!   connection, a row that cannot even be built) leaves it `failed`, with
//!   `last_error` and a `next_attempt_at`; nothing here deletes a row or panics
//!   on one.
//! - **Never sent twice after a confirmed send.** A pass considers only rows
//!   with `status <> 'sent'` (checked again right before each send), and the
//!   moment the server accepts a message the row is marked `sent` in its own
//!   autocommit statement. If that statement fails, the pass stops at once
//!   ([`MailError::RecordSent`]).
//! - **The unavoidable window.** A crash (or a lost connection) after the
//!   server has accepted the message but before the `sent` mark is stored
//!   means the row is sent again later. Every attempt of a row carries the
//!   same `Message-ID` (`<herald.{id}.{event}@{sender domain}>`) and `Date`, so
//!   receivers that deduplicate on Message-ID (most stores, many filters) drop
//!   the copy, and a human can recognise it.
//! - One deliverer per database: two processes delivering the same outbox at
//!   once could both send a row that neither has marked yet.
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
//! reply). When connecting fails (refused, timeout, TLS, authentication), no
//! further connection is tried in this pass: every remaining row of the pass
//! is marked `failed` with that connection error (attempts + 1, backed off;
//! one transaction for the lot, so a long queue costs one commit).
//! So `herald outbox list` shows why each row is stuck, and every row's backoff
//! grows with the outage instead of hammering a dead server. The [`Mailer`]
//! also remembers the outage: for the same backoff, `Due` passes (one after each
//! commit of `herald run`) do not connect at all and leave new rows `pending`
//! ([`DeliveryReport::held_back`]); `All` always tries.
//!
//! # For the interpreter and the CLI
//! - Before writing a row: [`validate_address`] on every recipient (an error
//!   is `R0003` `InvalidAddress`) and [`check_header`]`("Subject", ..)` (an
//!   error is `R0004` `HeaderInjection`). The address policy is in
//!   [`validate_address`]'s module: bare `local@domain` only.
//! - `--smtp URL` → [`SmtpConfig::parse`]; print [`SmtpConfig::warning`] when
//!   there is one. `--mail-from` → [`parse_mailbox`]. Then [`Mailer::new`].
//! - `herald run`: `deliver(conn, Mode::Due)` after each commit;
//!   `herald outbox flush`: `deliver(conn, Mode::All)`; `herald outbox list`:
//!   [`list`] / [`list_json`]; summaries: [`counts`].

mod compose;
mod config;
mod outbox;
mod validate;

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use rusqlite::Connection;

use crate::value::{format_timestamp_store, now_nanos};

pub use config::{SmtpConfig, TlsMode, DEFAULT_TIMEOUT};
pub use outbox::{counts, list, list_json, OutboxCounts};
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
    /// Rows this pass marked `failed` (server reply, connection error, or a
    /// row that cannot be built).
    pub failed: usize,
    /// Due rows this pass did not try because a recent pass found the server
    /// unreachable (`Mode::Due` only); they stay as they were.
    pub held_back: usize,
    /// Rows still unsent after the pass (`pending` + `failed`, due or not).
    pub remaining: usize,
    /// The connection error that ended this pass's attempts, if any.
    pub connection_error: Option<String>,
}

/// Errors that stop a pass. Per-row failures are not errors: they are
/// recorded in the row and counted in the report.
#[derive(Debug)]
pub enum MailError {
    /// The store failed while reading rows or recording a failure.
    Store(rusqlite::Error),
    /// The server accepted row `id`, but recording it as sent failed; the pass
    /// stopped, and the row will be sent again by a later pass.
    RecordSent { id: i64, source: rusqlite::Error },
    /// `deliver` was called inside an open transaction: its marks would not
    /// be durable until the caller commits.
    InTransaction,
    /// The SMTP configuration cannot be used (e.g. TLS setup failed).
    Config(String),
    /// Writing a listing failed.
    Io(std::io::Error),
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailError::Store(e) => write!(f, "outbox store error: {e}"),
            MailError::RecordSent { id, source } => write!(
                f,
                "outbox message {id} was accepted by the server but could not be marked sent \
                 ({source}); it will be sent again"
            ),
            MailError::InTransaction => {
                write!(f, "outbox delivery must run outside a transaction")
            }
            MailError::Config(e) => write!(f, "SMTP configuration: {e}"),
            MailError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MailError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MailError::Store(e) | MailError::RecordSent { source: e, .. } => Some(e),
            MailError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for MailError {
    fn from(e: rusqlite::Error) -> Self {
        MailError::Store(e)
    }
}

impl From<std::io::Error> for MailError {
    fn from(e: std::io::Error) -> Self {
        MailError::Io(e)
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

#[derive(Debug, Default)]
struct Breaker {
    /// Consecutive passes that could not connect.
    failures: i64,
    /// No `Due` pass connects before this.
    until: Option<Instant>,
}

/// Delivers the outbox to one SMTP server.
pub struct Mailer {
    config: SmtpConfig,
    from: Mailbox,
    tls: Option<TlsParameters>,
    hello: ClientId,
    breaker: Mutex<Breaker>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("config", &self.config)
            .field("from", &self.from.to_string())
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
                    let pem = std::fs::read(path)
                        .map_err(|e| MailError::Config(format!("cannot read `ca` file {}: {e}", path.display())))?;
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(MailError::Config(format!(
                            "`ca` file {} holds no PEM certificate",
                            path.display()
                        )));
                    }
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| MailError::Config(format!("`ca` file {}: {e}", path.display())))?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build().map_err(|e| MailError::Config(format!("TLS for `{}`: {e}", config.host)))?)
            }
        };
        Ok(Mailer { config, from, tls, hello: ClientId::default(), breaker: Mutex::new(Breaker::default()) })
    }

    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    pub fn sender(&self) -> &Mailbox {
        &self.from
    }

    /// Opens a connection: TCP (+ TLS for `smtps`), greeting, EHLO, STARTTLS
    /// as configured, AUTH when credentials are given.
    fn connect(&self) -> Result<SmtpConnection, String> {
        let wrapper = match self.config.tls {
            TlsMode::Implicit => self.tls.as_ref(),
            _ => None,
        };
        let fail = |e: &dyn fmt::Display| short(&format!("cannot connect to {}: {e}", self.config.endpoint()));
        let mut conn = SmtpConnection::connect(
            (self.config.host.as_str(), self.config.port),
            Some(self.config.timeout),
            &self.hello,
            wrapper,
            None,
        )
        .map_err(|e| fail(&e))?;
        let starttls = match (self.config.tls, &self.tls) {
            (TlsMode::Required, Some(p)) => Some(p),
            (TlsMode::Opportunistic, Some(p)) if conn.can_starttls() => Some(p),
            _ => None,
        };
        if let Some(params) = starttls {
            // Fails (before any credentials or mail are sent) when the server
            // does not offer STARTTLS: no silent downgrade with `required`.
            if let Err(e) = conn.starttls(params, &self.hello) {
                conn.abort();
                return Err(fail(&e));
            }
        }
        if let Some((user, password)) = &self.config.credentials {
            let creds = Credentials::new(user.clone(), password.clone());
            if let Err(e) = conn.auth(DEFAULT_MECHANISMS, &creds) {
                conn.abort();
                return Err(short(&format!("cannot log in to {}: {e}", self.config.endpoint())));
            }
        }
        Ok(conn)
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

    /// Sends the outbox rows `mode` selects, in id order, and records each
    /// result as it happens (see the module docs). Must be called outside a
    /// transaction on `conn`.
    pub fn deliver(&self, conn: &Connection, mode: Mode) -> Result<DeliveryReport, MailError> {
        if !conn.is_autocommit() {
            return Err(MailError::InTransaction);
        }
        let mut report = DeliveryReport::default();
        let ids = outbox::select_ids(conn, mode == Mode::Due, &format_timestamp_store(now_nanos()))?;

        if mode == Mode::Due && !ids.is_empty() && self.held_back() {
            report.held_back = ids.len();
        } else {
            let mut session: Option<SmtpConnection> = None;
            let result = self.pass(conn, &ids, &mut session, &mut report);
            if let Some(mut s) = session {
                if !s.has_broken() {
                    let _ = s.quit();
                }
            }
            result?;
        }
        report.remaining = outbox::counts(conn)?.unsent() as usize;
        Ok(report)
    }

    fn pass(
        &self,
        conn: &Connection,
        ids: &[i64],
        session: &mut Option<SmtpConnection>,
        report: &mut DeliveryReport,
    ) -> Result<(), MailError> {
        for (i, &id) in ids.iter().enumerate() {
            // Read again now: the row may have been sent since the selection.
            let Some(row) = outbox::fetch_unsent(conn, id)? else {
                continue;
            };
            let composed = match compose::compose(&row, &self.from) {
                Ok(c) => c,
                Err(reason) => {
                    record_failure(conn, report, &row, &build_error(&reason))?;
                    continue;
                }
            };
            if session.as_ref().is_none_or(SmtpConnection::has_broken) {
                *session = None;
                match self.connect() {
                    Ok(c) => {
                        self.connection_ok();
                        *session = Some(c);
                    }
                    Err(err) => {
                        self.connection_failed();
                        record_failure(conn, report, &row, &err)?;
                        self.fail_rest(conn, &ids[i + 1..], &err, report)?;
                        report.connection_error = Some(err);
                        return Ok(());
                    }
                }
            }
            let Some(smtp) = session.as_mut() else {
                continue;
            };
            match smtp.send(&composed.envelope, &composed.message.formatted()) {
                Ok(_) => {
                    let now = format_timestamp_store(now_nanos());
                    match outbox::mark_sent(conn, row.id, &now) {
                        Ok(n) => report.sent += n.max(1),
                        Err(source) => return Err(MailError::RecordSent { id: row.id, source }),
                    }
                }
                Err(e) => {
                    let what =
                        if e.is_transient() || e.is_permanent() { "rejected by the server" } else { "delivery failed" };
                    record_failure(conn, report, &row, &short(&format!("{what}: {e}")))?;
                }
            }
        }
        Ok(())
    }

    /// After a failed connect: marks the rest of the pass `failed` with the
    /// connection error (or the row's own build error), in one transaction,
    /// so a long queue costs one commit. If the transaction fails the rows
    /// stay as they were.
    fn fail_rest(
        &self,
        conn: &Connection,
        ids: &[i64],
        err: &str,
        report: &mut DeliveryReport,
    ) -> Result<(), MailError> {
        if ids.is_empty() {
            return Ok(());
        }
        let tx = conn.unchecked_transaction()?;
        let mut failed = 0;
        for &id in ids {
            let Some(row) = outbox::fetch_unsent(&tx, id)? else {
                continue;
            };
            let reason = match compose::compose(&row, &self.from) {
                Ok(_) => err.to_string(),
                Err(reason) => build_error(&reason),
            };
            let mut counted = DeliveryReport::default();
            record_failure(&tx, &mut counted, &row, &reason)?;
            failed += counted.failed;
        }
        tx.commit()?;
        report.failed += failed;
        Ok(())
    }
}

fn build_error(reason: &str) -> String {
    short(&format!("cannot build the message: {reason}"))
}

/// Marks a row `failed` after one more attempt, backed off by [`backoff`].
fn record_failure(
    conn: &Connection,
    report: &mut DeliveryReport,
    row: &outbox::OutboxRow,
    error: &str,
) -> Result<(), MailError> {
    let next = now_nanos() + backoff(row.attempts.saturating_add(1)).as_nanos() as i128;
    report.failed += outbox::mark_failed(conn, row.id, error, &format_timestamp_store(next))?;
    Ok(())
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
