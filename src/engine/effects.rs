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
use crate::webhook;
use std::sync::Arc;

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
        Effect::Webhook { url, url_span, headers, headers_span, .. } => {
            webhook::check_url(url).map_err(|m| RuntimeError::new(Code::InvalidWebhook, m).at(*url_span))?;
            for (name, value) in headers {
                webhook::check_header(name, value).map_err(|e| {
                    let code = match e {
                        webhook::HeaderError::LineBreak(_) => Code::HeaderInjection,
                        webhook::HeaderError::Invalid(_) => Code::InvalidWebhook,
                    };
                    RuntimeError::new(code, e.to_string()).at(*headers_span)
                })?;
            }
            Ok(())
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
    pub rule: &'a Arc<str>,
    pub event_key: &'a Arc<str>,
    pub line: u64,
    pub logs: &'a mut Vec<u8>,
    pub log_format: crate::logfmt::LogFormat,
    /// The event's processing time (wall clock), for the rows' `created`.
    pub at: i128,
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
        Effect::Notify { span, .. }
        | Effect::SendEmail { span, .. }
        | Effect::Log { span, .. }
        | Effect::Webhook { span, .. } => *span,
    }
}

fn apply(e: &Effect, t: &mut Target<'_>) -> Result<(), RuntimeError> {
    match e {
        Effect::Notify { recipients, severity, body, .. } => {
            for k in recipients {
                t.db.notify(t.rule, t.event_key, k, severity.as_str(), body, t.at)?;
            }
        }
        Effect::SendEmail { to, cc, bcc, subject, body, .. } => {
            let none = Vec::new();
            let cc = cc.as_ref().map_or(&none, |a| &a.list);
            let bcc = bcc.as_ref().map_or(&none, |a| &a.list);
            t.db.send_email(t.rule, t.event_key, &to.list, cc, bcc, subject, body)?;
        }
        Effect::Log { level, message, .. } => {
            let record = crate::logfmt::Record {
                level: level.as_str(),
                message,
                rule: Some(&**t.rule),
                event: Some(&**t.event_key),
                line: Some(t.line),
            };
            t.log_format.write_action(t.logs, &record);
        }
        Effect::Webhook { url, method, headers, body, body_is_text, .. } => {
            let headers = webhook::stored_headers(headers, body, *body_is_text);
            t.db.webhook(t.rule, t.event_key, url, method.as_str(), &headers, body)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{self, SchemaChoice};
    use crate::effect::RuleEffects;
    use crate::engine::{self, InterpMatcher, RunOptions};
    use crate::interp::{self, EventView, Interp, NoDb, Outcome};
    use crate::ir::{LogLevel, PathId, Program, Severity};
    use crate::span::SourceMap;
    use crate::store::Store;
    use crate::value::Value;
    use std::sync::Arc;

    const POLICY: &str = r#"
rule notifies {
  match login { user.pk: pk }
  action notify(to: pk, body: "signed in")
}
rule notifies_then_mails_badly {
  match login { user.pk: pk }
  action {
    notify(to: [pk, pk], body: "twice the same recipient", severity: "alert")
    send_email(to: "not an address", subject: "Hi", body: "b")
    log("never printed", level: "warning")
  }
}
rule injects_a_header {
  match login
  action send_email(to: "a@example.com", subject: "Hi\nBcc: x@example.com", body: "b")
}
"#;

    const FIXTURES: &str = r#"{"User": [{"pk": 12, "username": "alice", "name": "Alice", "email": "alice@example.com",
  "is_active": true, "attributes": {}}]}"#;

    const EVENT: &str = r#"{"event_uuid":"f3f96358-b6aa-4140-a66f-48758f289d20","user":{"username":"alice","pk":12},"action":"login","context":{},"created":"2026-04-14T10:10:39.565808Z"}
"#;

    fn program() -> Arc<Program> {
        let mut sources = SourceMap::new();
        let id = sources.add("policy.herald", POLICY);
        let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &[id]);
        Arc::new(compiled.program.expect("the policy compiles"))
    }

    /// Every path reads 12: enough for `user.pk`.
    struct Pk12;
    impl EventView for Pk12 {
        fn path(&self, _: PathId) -> Result<Value, RuntimeError> {
            Ok(Value::Int(12))
        }
    }

    #[test]
    fn the_interpreter_produces_effects_without_a_store_or_validation() {
        let program = program();
        let rule = program.rules.iter().find(|r| r.name == "notifies_then_mails_badly").expect("rule");
        // `NoDb` fails every store call: had the interpreter written the
        // notification or queued the email itself, the rule would fail.
        let it = Interp { program: &program, event: &Pk12, db: &NoDb, now: 1 };
        let mut env = Vec::new();
        interp::bind_patterns(rule, &Pk12, &mut env);
        let mut out = RuleEffects::default();
        let outcome = interp::run_rule(&it, rule, &mut env, &mut out).expect("runs");
        assert_eq!(outcome, Outcome::Fired);
        match &out.effects[..] {
            [Effect::Notify { recipients, severity: Severity::Alert, body, .. }, Effect::SendEmail { to, subject, .. }, Effect::Log { level: LogLevel::Warning, message, .. }] =>
            {
                assert_eq!(recipients, &vec![Value::Int(12)], "recipients are distinct");
                assert_eq!(body, "twice the same recipient");
                assert_eq!(to.list, vec!["not an address".to_string()], "not validated by the interpreter");
                assert_eq!(subject, "Hi");
                assert_eq!(message, "never printed");
            }
            other => panic!("unexpected effects: {other:?}"),
        }
        assert_eq!(out.counts().notifications, 1);
        let err = out.effects.iter().try_for_each(check).expect_err("the address is invalid");
        assert_eq!(err.code, Code::InvalidAddress);
        let at = err.span.and_then(|s| program.locate(s)).expect("located");
        assert!(at.ends_with(":10:20"), "the error sits on the `to` argument: {at}");
    }

    #[test]
    fn a_failed_check_applies_nothing_of_its_rule() {
        let program = program();
        let mut store = Store::open_in_memory(program.schema.clone()).expect("store");
        store.load_fixtures(FIXTURES).expect("fixtures load");
        let matcher = Arc::new(InterpMatcher::new(program.clone()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let opts = RunOptions { workers: 1, ..RunOptions::default() };
        let stats = engine::run(program, matcher, &store, EVENT.as_bytes(), opts, &mut out, &mut err).expect("runs");
        let err = String::from_utf8_lossy(&err);
        assert_eq!((stats.firings, stats.rule_errors), (1, 2), "{err}");
        assert_eq!(stats.effects.notifications, 1, "only the rule that fired counts");
        assert!(err.contains("rule `notifies_then_mails_badly` failed: R0003"), "{err}");
        assert!(err.contains("rule `injects_a_header` failed: R0004"), "{err}");
        assert!(!err.contains("never printed"), "a failed rule's log line is dropped: {err}");
        let rows: Vec<(String, String)> = {
            let conn = store.connection();
            let mut st = conn.prepare("SELECT rule, severity FROM herald_notification ORDER BY rule").expect("prepare");
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query");
            rows.collect::<Result<_, _>>().expect("rows")
        };
        assert_eq!(rows, vec![("notifies".to_string(), "notice".to_string())]);
        let queued: i64 =
            store.connection().query_row("SELECT count(*) FROM herald_outbox", [], |r| r.get(0)).expect("count");
        assert_eq!(queued, 0);
    }
}
