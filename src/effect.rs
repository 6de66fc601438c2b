//! Effects as data: what a rule's actions ask for.
//!
//! The interpreter evaluates an action's arguments and produces an
//! [`Effect`]; it does not write notifications, queue emails or print log
//! lines itself. A backend checks and applies the effects of a rule that
//! fired (today `engine::effects`, into SQLite and the event's buffered
//! output), in order, inside the rule's savepoint. Entity writes (`set`,
//! `append`, `remove`) are not effects: a later read in the same rule or
//! event must see them, so the interpreter applies them through `Db` as it
//! goes (see ARCHITECTURE.md).

use crate::ir::{HttpMethod, LogLevel, Severity};
use crate::span::Span;
use crate::value::Value;

/// Email addresses as evaluated, not yet validated, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Addresses {
    pub list: Vec<String>,
    pub span: Span,
}

/// One action's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A notification for each recipient key (distinct, in order).
    Notify { recipients: Vec<Value>, severity: Severity, body: String, span: Span },
    /// One email to queue. Addresses and the subject are checked by the
    /// backend before anything is queued (R0003, R0004).
    SendEmail {
        to: Addresses,
        cc: Option<Addresses>,
        bcc: Option<Addresses>,
        subject: String,
        subject_span: Span,
        body: String,
        span: Span,
    },
    /// One log line, written to stderr after the event commits.
    Log { level: LogLevel, message: String, span: Span },
    /// One HTTP request to queue. The URL and the headers are checked by
    /// the backend before anything is queued (R0008, R0004).
    Webhook {
        url: String,
        url_span: Span,
        method: HttpMethod,
        /// Header names and values in the order given (absent ones left out).
        headers: Vec<(String, String)>,
        headers_span: Span,
        /// The rendered body: a string as it was, anything else as JSON.
        body: String,
        /// Whether the body was a string (it may still hold JSON text).
        body_is_text: bool,
        span: Span,
    },
}

/// Everything one run of a rule's actions produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RuleEffects {
    /// The effects, in statement order.
    pub effects: Vec<Effect>,
    /// Entity writes already applied through `Db`.
    pub writes: u64,
    /// The throttles the rule passed: (clause, key, event time). Each is
    /// recorded as a firing only if the rule fires and its effects apply.
    pub throttled: Vec<(crate::ir::StateSlot, String, i128)>,
}

impl RuleEffects {
    pub fn clear(&mut self) {
        self.effects.clear();
        self.writes = 0;
        self.throttled.clear();
    }

    /// The counts of the run summary.
    pub fn counts(&self) -> EffectCounts {
        let mut c = EffectCounts { writes: self.writes, ..EffectCounts::default() };
        for e in &self.effects {
            match e {
                Effect::Notify { recipients, .. } => c.notifications += recipients.len() as u64,
                Effect::SendEmail { .. } => c.emails += 1,
                Effect::Log { .. } => c.logs += 1,
                Effect::Webhook { .. } => c.webhooks += 1,
            }
        }
        c
    }
}

/// Counts of effects a rule run produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EffectCounts {
    pub notifications: u64,
    /// `notify` to a recipient key with no row: nobody is notified.
    pub notifications_dropped: u64,
    pub emails: u64,
    pub webhooks: u64,
    pub writes: u64,
    pub logs: u64,
}

impl EffectCounts {
    pub fn add(&mut self, o: EffectCounts) {
        self.notifications += o.notifications;
        self.notifications_dropped += o.notifications_dropped;
        self.emails += o.emails;
        self.webhooks += o.webhooks;
        self.writes += o.writes;
        self.logs += o.logs;
    }
}
