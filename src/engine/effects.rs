//! Checking and applying effects: the SQLite backend of `crate::effect`.
//!
//! The interpreter hands over what a fired rule's actions asked for; here
//! each effect is first checked (email addresses, header injection in the
//! subject: the same rule errors R0003/R0004 as when the interpreter did
//! it), then applied in statement order inside the rule's savepoint. A
//! failed check is the rule's error and the caller rolls the rule back, so
//! nothing of it is applied.

use super::db::RuleStore;
use crate::diag::{Code, RuntimeError};
use crate::effect::{Addresses, Effect};
use crate::mail;

/// Check one effect before anything of its rule is applied.
pub(super) fn check(effect: &Effect) -> Result<(), RuntimeError> {
    match effect {
        Effect::SendEmail { to, cc, bcc, subject, subject_span, .. } => {
            if to.list.is_empty() {
                return Err(
                    RuntimeError::new(Code::InvalidAddress, "`send_email` has no recipient address").at(to.span)
                );
            }
            for a in std::iter::once(to).chain(cc).chain(bcc) {
                addresses(a)?;
            }
            mail::check_header("subject", subject)
                .map_err(|m| RuntimeError::new(Code::HeaderInjection, m).at(*subject_span))
        }
        Effect::Notify { .. } | Effect::Log { .. } => Ok(()),
    }
}

fn addresses(a: &Addresses) -> Result<(), RuntimeError> {
    for s in &a.list {
        mail::validate_address(s).map_err(|m| RuntimeError::new(Code::InvalidAddress, m).at(a.span))?;
    }
    Ok(())
}

/// Where a rule's effects go: its savepointed store and the event's
/// buffered log output (written after the commit).
pub(super) struct Target<'a> {
    pub db: &'a RuleStore<'a>,
    pub rule: &'a str,
    pub event_key: &'a str,
    pub line: u64,
    pub logs: &'a mut Vec<u8>,
}

/// Check every effect, then apply them in order. Stops at the first
/// failure; the caller rolls the rule back.
pub(super) fn check_and_apply(effects: &[Effect], t: &mut Target<'_>) -> Result<(), RuntimeError> {
    effects.iter().try_for_each(check)?;
    for e in effects {
        apply(e, t).map_err(|err| err.at(effect_span(e)))?;
    }
    Ok(())
}

fn effect_span(e: &Effect) -> crate::span::Span {
    match e {
        Effect::Notify { span, .. } | Effect::SendEmail { span, .. } | Effect::Log { span, .. } => *span,
    }
}

fn apply(e: &Effect, t: &mut Target<'_>) -> Result<(), RuntimeError> {
    match e {
        Effect::Notify { recipients, severity, body, .. } => {
            for k in recipients {
                t.db.notify(t.rule, t.event_key, k, severity.as_str(), body)?;
            }
        }
        Effect::SendEmail { to, cc, bcc, subject, body, .. } => {
            let none = Vec::new();
            let cc = cc.as_ref().map_or(&none, |a| &a.list);
            let bcc = bcc.as_ref().map_or(&none, |a| &a.list);
            t.db.send_email(t.rule, t.event_key, &to.list, cc, bcc, subject, body)?;
        }
        Effect::Log { level, message, .. } => {
            use std::io::Write;
            let j = serde_json::json!({"level": level.as_str(), "rule": t.rule, "event_uuid": t.event_key, "line": t.line, "message": message});
            let _ = writeln!(t.logs, "{j}");
        }
    }
    Ok(())
}
