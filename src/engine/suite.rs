//! `herald test`: runs the checked `test` items of a program.
//!
//! Each test gets a fresh in-memory store (the schema's DDL, Herald's
//! tables), its `given` rows loaded as fixtures, then its events run through
//! [`super::run`] — the same reader, decoder, matcher, interpreter, effect
//! checks and store writes as `herald run` — with `now()` pinned. Effects are
//! captured through [`RunOptions::on_observe`]; nothing is delivered (there is
//! no mail sender; emails stay queued in the throwaway store). Then every
//! expectation is evaluated against what was observed and the final store,
//! and every rule error that no `expect rule_error(...)` of the test allows
//! is a failure of its own: a rule that fails has not merely "not fired".
//!
//! The program and its matcher are built once and shared by every test.

use super::coverage::{Coverage, CoverageReport};
use super::{Observed, RunOptions};
use crate::effect::Effect;
use crate::interp::{EventView, Interp};
use crate::ir::{ExpectKind, Expectation, PathId, Program, Test};
use crate::matcher::Matcher;
use crate::span::Span;
use crate::store::Store;
use crate::value::{now_nanos, Value};
use serde_json::Value as J;
use std::sync::{Arc, Mutex};

/// What failed in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The test could not run: the store, its `given` rows, the run itself.
    Setup,
    /// An `expect` step did not hold.
    Expectation,
    /// A rule failed on one of the test's events and no `expect
    /// rule_error(...)` of the test allows it.
    RuleError,
}

impl FailureKind {
    /// The name in `--format json` (`kind`) and JUnit (`type`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Setup => "setup",
            FailureKind::Expectation => "expectation",
            FailureKind::RuleError => "rule_error",
        }
    }
}

/// One expectation that did not hold, or an unexpected rule error.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// The `expect` step; the `event` step, for an unexpected rule error;
    /// the test, for a failure before expectations.
    pub span: Span,
    /// The step as reports show it, when that is not the source text at
    /// `span` (an event is shown as `event N (ID)`, not as its first line
    /// of JSON).
    pub step: Option<String>,
    pub expected: String,
    pub actual: String,
}

/// A rule error one of a test's events caused, expected or not.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRuleError {
    pub rule: String,
    /// The event's position among the test's events, from 1.
    pub event: usize,
    /// The event's identity (the schema's `identity` field, `event_uuid`
    /// for authentik), when it has one.
    pub id: Option<String>,
    /// The `event` step.
    pub span: Span,
    pub code: String,
    pub message: String,
    /// Whether an `expect rule_error(...)` of the test allows it.
    pub expected: bool,
}

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub name: String,
    pub span: Span,
    pub failures: Vec<Failure>,
    /// Every rule error the test's events caused, in event order.
    pub rule_errors: Vec<TestRuleError>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// `expect EXPR` sees no event: the checker rejects nothing here (the test
/// has several events, or none), and every path reads as absent.
struct NoEvent;

impl EventView for NoEvent {
    fn path(&self, _: PathId) -> Result<Value, crate::diag::RuntimeError> {
        Ok(Value::Absent)
    }
}

/// Run every test of `tests` against `program`, in order.
pub fn run_tests(program: &Arc<Program>, matcher: &Arc<dyn Matcher>, tests: &[Test]) -> Vec<TestResult> {
    tests.iter().map(|t| run_test(program, matcher, t, None)).collect()
}

/// [`run_tests`], also counting which rules, clauses and queries the tests
/// reached (`herald test --coverage`). The results are the same as
/// without coverage: the counting only observes.
pub fn run_tests_with_coverage(
    program: &Arc<Program>,
    matcher: &Arc<dyn Matcher>,
    tests: &[Test],
) -> (Vec<TestResult>, CoverageReport) {
    let cov = Arc::new(Mutex::new(Coverage::new()));
    let results = tests.iter().map(|t| run_test(program, matcher, t, Some(&cov))).collect();
    let report = cov.lock().unwrap_or_else(std::sync::PoisonError::into_inner).report(program);
    (results, report)
}

fn setup_failure(t: &Test, expected: &str, actual: String) -> TestResult {
    TestResult {
        name: t.name.clone(),
        span: t.span,
        failures: vec![Failure {
            kind: FailureKind::Setup,
            span: t.span,
            step: None,
            expected: expected.into(),
            actual,
        }],
        rule_errors: Vec::new(),
    }
}

/// `given` rows as one fixtures document, entities in order of first use.
fn fixtures(t: &Test) -> J {
    let mut doc = serde_json::Map::new();
    for (entity, row) in &t.given {
        match doc.entry(entity.clone()).or_insert_with(|| J::Array(Vec::new())) {
            J::Array(rows) => rows.push(row.clone()),
            _ => unreachable!("only arrays are inserted"),
        }
    }
    J::Object(doc)
}

pub fn run_test(
    program: &Arc<Program>,
    matcher: &Arc<dyn Matcher>,
    t: &Test,
    coverage: Option<&Arc<Mutex<Coverage>>>,
) -> TestResult {
    let mut store = match Store::open_in_memory(program.schema.clone()) {
        Ok(s) => s,
        Err(e) => return setup_failure(t, "a fresh in-memory store", e.to_string()),
    };
    if !t.given.is_empty() {
        if let Err(errors) = store.load_fixtures(&fixtures(t).to_string()) {
            let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            return setup_failure(t, "the `given` rows to load", msgs.join("; "));
        }
    }
    let input: String = t.events.iter().map(|(e, _)| format!("{e}\n")).collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let now = t.now.unwrap_or_else(now_nanos);
    let opts = RunOptions {
        source: "test".into(),
        // One worker: a test holds a handful of events, and threads buy
        // nothing but start-up cost; results do not depend on the count.
        workers: 1,
        now: Some(now),
        on_observe: Some(Box::new(move |o| sink.lock().expect("observer lock").push(o))),
        coverage: coverage.cloned(),
        ..RunOptions::default()
    };
    let run = super::run(
        program.clone(),
        matcher.clone(),
        &store,
        input.as_bytes(),
        opts,
        &mut std::io::sink(),
        &mut std::io::sink(),
    );
    if let Err(e) = run {
        return setup_failure(t, "the events to run", e.to_string());
    }
    let seen = std::mem::take(&mut *seen.lock().expect("observer lock"));
    if let Some(cov) = coverage {
        let cov = cov.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(d) = &program.schema.discriminator {
            for (e, _) in &t.events {
                if let Some(name) = e.get(d).and_then(J::as_str) {
                    cov.event(name);
                }
            }
        }
        let id = |name: &str| program.rules.iter().find(|r| r.name == name).map(|r| r.id);
        for o in &seen {
            match o {
                Observed::Fired { rule, .. } => id(rule).into_iter().for_each(|r| cov.fired(r)),
                Observed::RuleError { rule, .. } => id(rule).into_iter().for_each(|r| cov.error(r)),
                Observed::DeadLetter { .. } => {}
            }
        }
    }
    let rule_errors = rule_errors(program, t, &seen);
    // Unexpected rule errors come first: they happened during the events,
    // before any `expect` was evaluated, and are usually why one fails.
    let mut failures: Vec<Failure> = rule_errors.iter().filter(|e| !e.expected).map(|e| unexpected(t, e)).collect();
    failures.extend(t.expects.iter().filter_map(|x| {
        check(program, &store, now, &seen, x).err().map(|(expected, actual)| Failure {
            kind: FailureKind::Expectation,
            span: x.span,
            step: None,
            expected,
            actual,
        })
    }));
    TestResult { name: t.name.clone(), span: t.span, failures, rule_errors }
}

/// Whether `expect rule_error(rule[, code])` allows an error `code` of `rule`.
fn allows(rule: &str, code: Option<&str>, err_rule: &str, err_code: &str) -> bool {
    rule == err_rule && code.is_none_or(|want| want.eq_ignore_ascii_case(err_code))
}

/// The rule errors of a test's run, each tied to its event and marked
/// expected when some `expect rule_error(...)` of the test allows it.
fn rule_errors(program: &Program, t: &Test, seen: &[Observed]) -> Vec<TestRuleError> {
    let expected = |rule: &str, code: &str| {
        t.expects.iter().any(|x| match &x.kind {
            ExpectKind::RuleError { rule: r, code: c } => allows(r, c.as_deref(), rule, code),
            _ => false,
        })
    };
    seen.iter()
        .filter_map(|o| match o {
            Observed::RuleError { line, rule, code, message } => {
                // Each event is one line of the test's input, so the line
                // number is the event's position.
                let index = usize::try_from(*line).unwrap_or(usize::MAX);
                let step = index.checked_sub(1).and_then(|i| t.events.get(i));
                Some(TestRuleError {
                    rule: rule.clone(),
                    event: index,
                    id: step.and_then(|(body, _)| event_id(program, body)),
                    span: step.map_or(t.span, |(_, span)| *span),
                    code: code.clone(),
                    message: message.clone(),
                    expected: expected(rule, code),
                })
            }
            _ => None,
        })
        .collect()
}

/// The event's identity as text, read off its body by the schema's
/// `identity` path (absent, or not a scalar: none).
fn event_id(program: &Program, body: &J) -> Option<String> {
    let path = program.schema.identity.as_ref()?;
    let v = path.iter().try_fold(body, |v, seg| v.get(seg))?;
    match v {
        J::String(s) => Some(s.clone()),
        J::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// How an event is named in reports: its position, and its id if it has one.
fn event_label(event: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("event {event} ({id})"),
        None => format!("event {event}"),
    }
}

/// The failure for a rule error no `expect rule_error` allows. The
/// expected side says what would allow it: the codes the test does expect
/// of that rule, or the `expect` to write if the error is intended.
fn unexpected(t: &Test, e: &TestRuleError) -> Failure {
    let mut codes: Vec<String> = t
        .expects
        .iter()
        .filter_map(|x| match &x.kind {
            ExpectKind::RuleError { rule, code: Some(c) } if *rule == e.rule => Some(c.to_ascii_uppercase()),
            _ => None,
        })
        .collect();
    codes.sort();
    codes.dedup();
    let expected = if codes.is_empty() {
        format!(
            "no rule error in `{}` (if it is meant to fail: `expect rule_error({}, \"{}\")`)",
            e.rule, e.rule, e.code
        )
    } else {
        format!("only rule error{} {} in `{}`", if codes.len() == 1 { "" } else { "s" }, codes.join(", "), e.rule)
    };
    Failure {
        kind: FailureKind::RuleError,
        span: e.span,
        step: Some(event_label(e.event, e.id.as_deref())),
        expected,
        actual: format!("`{}` failed with {}: {}", e.rule, e.code, e.message),
    }
}

fn times(n: usize) -> String {
    if n == 1 {
        "1 time".into()
    } else {
        format!("{n} times")
    }
}

fn lines(v: &[u64]) -> String {
    let s: Vec<String> = v.iter().map(|l| l.to_string()).collect();
    format!("event{} {}", if v.len() == 1 { "" } else { "s" }, s.join(", "))
}

/// `Err((expected, what happened))` when the expectation does not hold.
fn check(
    program: &Program,
    store: &Store,
    now: i128,
    seen: &[Observed],
    x: &Expectation,
) -> Result<(), (String, String)> {
    let firings = |rule: &str| -> Vec<u64> {
        seen.iter()
            .filter_map(|o| match o {
                Observed::Fired { line, rule: r, .. } if r == rule => Some(*line),
                _ => None,
            })
            .collect()
    };
    match &x.kind {
        ExpectKind::Fires { rule, count } => {
            let fired = firings(rule);
            let ok = match count {
                Some(n) => fired.len() as u64 == *n,
                None => !fired.is_empty(),
            };
            if ok {
                return Ok(());
            }
            let expected = match count {
                Some(n) => format!("`{rule}` fires {}", times(*n as usize)),
                None => format!("`{rule}` fires"),
            };
            let actual = if fired.is_empty() {
                format!("`{rule}` never fired{}", why_not(seen, rule))
            } else {
                // Fewer firings than expected may be events it failed on.
                format!("`{rule}` fired {} ({}){}", times(fired.len()), lines(&fired), why_not(seen, rule))
            };
            Err((expected, actual))
        }
        ExpectKind::DoesNotFire { rule } => {
            let fired = firings(rule);
            if fired.is_empty() {
                return Ok(());
            }
            Err((
                format!("`{rule}` does not fire"),
                format!("`{rule}` fired {} ({})", times(fired.len()), lines(&fired)),
            ))
        }
        ExpectKind::RuleError { rule, code } => {
            let errors: Vec<(&str, &str, &str, u64)> = seen
                .iter()
                .filter_map(|o| match o {
                    Observed::RuleError { rule, code, message, line } => {
                        Some((rule.as_str(), code.as_str(), message.as_str(), *line))
                    }
                    _ => None,
                })
                .collect();
            if errors.iter().any(|(r, c, _, _)| allows(rule, code.as_deref(), r, c)) {
                return Ok(());
            }
            let expected = match code {
                Some(c) => format!("a rule error {c} in `{rule}`"),
                None => format!("a rule error in `{rule}`"),
            };
            let actual = if errors.is_empty() {
                "no rule failed".to_string()
            } else {
                let e: Vec<String> =
                    errors.iter().map(|(r, c, m, l)| format!("`{r}` failed with {c} (event {l}): {m}")).collect();
                e.join("; ")
            };
            Err((expected, actual))
        }
        ExpectKind::DeadLetter => {
            if seen.iter().any(|o| matches!(o, Observed::DeadLetter { .. })) {
                return Ok(());
            }
            Err(("an event to become a dead letter".into(), "every event was decoded".into()))
        }
        ExpectKind::Effect { negated, action, args } => {
            let of_kind: Vec<(&str, J)> = seen
                .iter()
                .flat_map(|o| match o {
                    Observed::Fired { rule, effects, .. } => effects
                        .iter()
                        .filter_map(|e| effect_json(program, e, action).map(|j| (rule.as_str(), j)))
                        .collect(),
                    _ => Vec::new(),
                })
                .collect();
            let matching: Vec<&(&str, J)> =
                of_kind.iter().filter(|(_, j)| args.iter().all(|(k, v)| arg_matches(&j[k], v))).collect();
            let shown = |list: &[&(&str, J)]| -> String {
                let v: Vec<String> = list.iter().map(|(r, j)| format!("{action}{} from `{r}`", show_args(j))).collect();
                v.join("; ")
            };
            let wanted = format!("{action}{}", show_wanted(args));
            match (negated, matching.is_empty()) {
                (false, false) | (true, true) => Ok(()),
                (false, true) => {
                    let all: Vec<&(&str, J)> = of_kind.iter().collect();
                    let actual = if all.is_empty() { format!("no {action}") } else { shown(&all) };
                    Err((wanted, actual))
                }
                (true, false) => Err((format!("no {wanted}"), shown(&matching))),
            }
        }
        ExpectKind::Expr(e) => {
            let interp = Interp { program, event: &NoEvent, db: store, now };
            match interp.eval(e, &Vec::new()) {
                Ok(Value::Bool(true)) => Ok(()),
                Ok(v) => Err(("the expression to be true".into(), why_false(&interp, e, &v))),
                Err(err) => {
                    Err(("the expression to be true".into(), format!("it failed with {}: {}", err.code, err.message)))
                }
            }
        }
    }
}

/// What an expectation that did not hold saw: for a comparison, both
/// operands (the usual case, `User[1].attributes.locked == true`).
fn why_false(interp: &Interp<'_>, e: &crate::ir::Expr, v: &Value) -> String {
    let schema = Some(&*interp.program.schema);
    if let crate::ir::ExprKind::Cmp { lhs, rhs, op } = &e.kind {
        if let (Ok(l), Ok(r)) = (interp.eval(lhs, &Vec::new()), interp.eval(rhs, &Vec::new())) {
            let show = |v: &Value| {
                if matches!(v, Value::Absent) {
                    "absent".to_string()
                } else {
                    v.to_json(schema).to_string()
                }
            };
            return format!("it is false: the left of `{2}` is {0}, the right {1}", show(&l), show(&r), op.symbol());
        }
    }
    format!("it is {}", v.to_json(schema))
}

/// A rule that did not fire on some events may have failed there, or the
/// events may have become dead letters; say so.
fn why_not(seen: &[Observed], rule: &str) -> String {
    let errors: Vec<String> = seen
        .iter()
        .filter_map(|o| match o {
            Observed::RuleError { rule: r, code, message, line } if r == rule => {
                Some(format!("event {line}: {code}: {message}"))
            }
            _ => None,
        })
        .collect();
    let dead = seen.iter().filter(|o| matches!(o, Observed::DeadLetter { .. })).count();
    let mut s = String::new();
    if !errors.is_empty() {
        s.push_str(&format!(" (it failed: {})", errors.join("; ")));
    }
    if dead > 0 {
        s.push_str(&format!(" ({dead} event{} became dead letters)", if dead == 1 { "" } else { "s" }));
    }
    s
}

/// The effect's arguments as JSON, when it is an `action` effect.
fn effect_json(program: &Program, e: &Effect, action: &str) -> Option<J> {
    let schema = Some(&*program.schema);
    let addrs = |a: &crate::effect::Addresses| J::Array(a.list.iter().map(|s| J::String(s.clone())).collect());
    match (e, action) {
        (Effect::Notify { recipients, severity, body, .. }, "notify") => Some(serde_json::json!({
            "to": J::Array(recipients.iter().map(|r| r.to_json(schema)).collect()),
            "severity": severity.as_str(),
            "body": body,
        })),
        (Effect::SendEmail { to, cc, bcc, subject, body, .. }, "send_email") => Some(serde_json::json!({
            "to": addrs(to),
            "cc": cc.as_ref().map(addrs).unwrap_or(J::Array(vec![])),
            "bcc": bcc.as_ref().map(addrs).unwrap_or(J::Array(vec![])),
            "subject": subject,
            "body": body,
        })),
        _ => None,
    }
}

/// An expected argument matches the effect's value when equal; a single
/// value also matches a list that holds it (`notify(to: 1)` of a
/// notification to `[1, 2]`), since recipients and addresses are lists.
fn arg_matches(actual: &J, wanted: &J) -> bool {
    if json_eq(actual, wanted) {
        return true;
    }
    match (actual, wanted) {
        (J::Array(items), w) if !w.is_array() => items.iter().any(|i| json_eq(i, w)),
        _ => false,
    }
}

/// Equality with `1 == 1.0`, as the language compares numbers.
fn json_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        _ => a == b,
    }
}

fn show_args(j: &J) -> String {
    match j {
        J::Object(m) => {
            let v: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("({})", v.join(", "))
        }
        _ => String::new(),
    }
}

fn show_wanted(args: &[(String, J)]) -> String {
    if args.is_empty() {
        return String::new();
    }
    let v: Vec<String> = args.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("({})", v.join(", "))
}
