//! Dry replays: `herald trace` and `herald diff`.
//!
//! Both evaluate events the way the writer does — the same decoder, the
//! same matcher for the fast "matches nothing" path, the same interpreter
//! for guards and actions, the same effect check, each rule in its own
//! savepoint — but against a scratch copy of the store
//! (`store::ScratchStore`), and nothing is delivered: effects stay data, no
//! firing, notification, outbox or replay row is written. Entity writes go
//! to the copy (later rules and events must see them, as in `run`).

use super::db::RuleStore;
use super::effects;
use super::RunError;
use crate::decode::{DecodePlan, Decoder, PlanSpec};
use crate::diag::RuntimeError;
use crate::effect::{Effect, RuleEffects};
use crate::interp::trace::{self, ClauseTrace, Recorder, Tracer, Write};
use crate::interp::{self, Env, Interp, Outcome};
use crate::ir::{Program, RuleId};
use crate::matcher::{MatchScratch, Matcher, RuleIndex};
use crate::schema::Schema;
use crate::store::Backend;
use crate::value::{now_nanos, Value};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::sync::Arc;

/// How a rule ended on one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Fired,
    /// Its `match` was false or a clause stopped it.
    Silent,
    Error(RuntimeError),
}

/// One rule traced on one event.
#[derive(Debug, Clone)]
pub struct RuleTrace {
    pub rule: RuleId,
    pub verdict: Verdict,
    /// The clauses that ran, in order; the last one stopped the rule when it
    /// did not fire.
    pub clauses: Vec<ClauseTrace>,
    /// Every local with a value when the rule ended (pattern bindings,
    /// `let`s, `guard let`s), for a rule that fired.
    pub bindings: Vec<(String, Value)>,
    pub effects: Vec<Effect>,
    pub writes: Vec<Write>,
}

/// One event traced.
#[derive(Debug, Clone)]
pub struct EventTrace {
    pub line: u64,
    pub type_name: String,
    /// The event's identity, when it has a valid one.
    pub key: Option<String>,
    /// Why `run` would make the line a dead letter, if it would.
    pub dead_letter: Option<String>,
    /// An event with this id came earlier in the input and fired or failed
    /// a rule: `run` skips this one (replay protection).
    pub skipped: bool,
    /// The selected rules, in declaration order.
    pub rules: Vec<RuleTrace>,
}

/// What to trace.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// Line numbers (1-based); empty: every line.
    pub lines: Vec<u64>,
    /// Rule names; empty: every rule that names the event's type.
    pub rules: Vec<String>,
    /// Events reported at most (the rest are counted, not evaluated).
    pub limit: usize,
    /// The value of `now()`; `None`: the clock, once per event.
    pub now: Option<i128>,
}

#[derive(Debug, Clone, Default)]
pub struct TraceReport {
    pub events: Vec<EventTrace>,
    /// Selected events beyond the limit, not traced.
    pub omitted: u64,
}

/// Trace `program` on the events of `input` against `store` (a scratch
/// copy). Every event up to the last selected one is evaluated in order,
/// as `run` would, so a selected event sees the writes of the events
/// before it; only the selected ones are reported. The store's replay
/// records are not consulted (the events are evaluated as new), but an
/// event id repeated in the input is skipped as `run` skips it.
pub fn trace(
    program: &Program,
    store: &dyn Backend,
    mut input: impl BufRead,
    opts: &TraceOptions,
) -> Result<TraceReport, RunError> {
    let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(program)));
    let mut decoder = Decoder::new(plan);
    let index = RuleIndex::new(program);
    let recorded_types = super::recorded_types(program);
    let selected: Vec<RuleId> = program.rules.iter().filter(|r| opts.rules.contains(&r.name)).map(|r| r.id).collect();
    let last_line = opts.lines.iter().copied().max();
    let mut report = TraceReport::default();
    let mut env = Env::new();
    let mut seen: HashSet<String> = HashSet::new();
    // Window and throttle state, on the scratch store as `run` keeps it.
    let state = std::cell::RefCell::new(super::state::StateCache::default());
    let mut line = Vec::new();
    let mut line_no = 0u64;
    // One transaction, never committed: the copy is thrown away anyway.
    store.begin()?;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(RunError::Io)? == 0 {
            break;
        }
        line_no += 1;
        if last_line.is_some_and(|l| line_no > l) {
            break;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if super::is_blank(&line) {
            continue;
        }
        let wanted = opts.lines.is_empty() || opts.lines.contains(&line_no);
        let full = report.events.len() >= opts.limit;
        let ev = match decoder.decode_full(&line) {
            Ok(ev) => ev,
            Err(e) => {
                if wanted && !opts.lines.is_empty() {
                    // Asked for by line: say what happened to it.
                    let et = EventTrace {
                        line: line_no,
                        type_name: String::new(),
                        key: None,
                        dead_letter: Some(e.to_string()),
                        skipped: false,
                        rules: Vec::new(),
                    };
                    push(&mut report, opts, et);
                }
                continue;
            }
        };
        let of_type = index.rules(ev.event_type);
        // The rules reported: those asked for by name, else every rule that
        // takes the event's type.
        // A rule asked for by name is reported on events of its types, and on
        // any event asked for by line (its `match` then names its types).
        let named: Vec<RuleId>;
        let chosen: &[RuleId] = if selected.is_empty() {
            of_type
        } else if opts.lines.is_empty() {
            named = selected.iter().copied().filter(|r| of_type.contains(r)).collect();
            &named
        } else {
            &selected
        };
        let report_it = wanted && !chosen.is_empty();
        if report_it && full {
            report.omitted += 1;
        }
        if full {
            // Nothing more will be reported: only count.
            continue;
        }
        // An event of a type some `after` clause watches is recorded even
        // when no rule takes it, as `run` records it.
        let recorded = records(&recorded_types, ev.event_type);
        if of_type.is_empty() && !report_it && !recorded {
            continue;
        }
        let now = opts.now.unwrap_or_else(now_nanos);
        let key = ev.identity().ok();
        let mut et = EventTrace {
            line: line_no,
            type_name: ev.type_name().to_string(),
            key: key.clone(),
            dead_letter: None,
            skipped: key.as_ref().is_some_and(|k| seen.contains(k)),
            rules: Vec::new(),
        };
        if et.skipped {
            if report_it {
                push(&mut report, opts, et);
            }
            continue;
        }
        // Effects stay data here: nothing is ever buffered in this batch.
        let batch = Default::default();
        let db = RuleStore::new(store, &state, &batch);
        let mut any_matched = false;
        let mut touched = false;
        // Every rule of the type runs, in declaration order (earlier rules'
        // writes are visible to later ones, as in `run`); a rule asked for
        // by name that does not take this type is traced too (its `match`
        // says so).
        let mut order: Vec<RuleId> = of_type.to_vec();
        if report_it {
            for id in chosen {
                if !order.contains(id) {
                    order.push(*id);
                }
            }
            order.sort_by_key(|r| r.0);
        }
        for id in order {
            let rule = program.rule(id);
            let (m, mclause) = trace::trace_match(program, rule, &ev, ev.event_type, ev.type_name(), &mut env);
            let mut rt = RuleTrace {
                rule: id,
                verdict: Verdict::Silent,
                clauses: vec![mclause],
                bindings: Vec::new(),
                effects: Vec::new(),
                writes: Vec::new(),
            };
            match m {
                Ok(false) => {}
                Err(e) => {
                    any_matched = true;
                    touched = true;
                    rt.verdict = Verdict::Error(e);
                }
                // `run` dead-letters a matched event without an identity.
                Ok(true) if key.is_none() => any_matched = true,
                Ok(true) => {
                    any_matched = true;
                    let recorder = Recorder::new(&db, &program.schema, true);
                    let interp = Interp { program, event: &ev, db: &recorder, now };
                    let mut tracer = Tracer::new(&recorder);
                    let mut out = RuleEffects::default();
                    let r = interp::run_rule_observed(&interp, rule, &mut env, &mut out, &mut tracer)
                        .and_then(|o| out.effects.iter().try_for_each(effects::check).map(|()| o))
                        .and_then(|o| {
                            if o == Outcome::Fired {
                                db.throttles_fired(&rule.name, &out.throttled)?;
                            }
                            Ok(o)
                        });
                    rt.clauses.extend(tracer.clauses);
                    match r {
                        Ok(Outcome::Fired) => {
                            db.finish(true)?;
                            touched = true;
                            rt.verdict = Verdict::Fired;
                            rt.bindings = rule
                                .locals
                                .iter()
                                .zip(env.iter())
                                .filter(|(_, v)| !matches!(v, Value::Absent))
                                .map(|(l, v)| (l.name.clone(), v.clone()))
                                .collect();
                            rt.effects = out.effects;
                            rt.writes = recorder.writes.take();
                        }
                        Ok(Outcome::Stopped) => db.finish(true)?,
                        Err(e) => {
                            db.finish(false)?;
                            state.borrow_mut().invalidate(store, &rule.name)?;
                            touched = true;
                            rt.verdict = Verdict::Error(e);
                        }
                    }
                }
            }
            if report_it && chosen.contains(&id) {
                et.rules.push(rt);
            }
        }
        // Then the `after` clauses record it, exactly as `run`'s writer
        // does (same function; not for an event `run` would dead-letter).
        if key.is_some() && recorded {
            for (rule, e) in db.record_afters(program, &ev, &mut env)? {
                touched = true;
                // Reported on the event like any other rule error of the rule
                // (its clauses did not run on this event: it only watched it).
                if wanted && (selected.is_empty() || selected.contains(&rule.id)) {
                    et.rules.push(RuleTrace {
                        rule: rule.id,
                        verdict: Verdict::Error(e),
                        clauses: Vec::new(),
                        bindings: Vec::new(),
                        effects: Vec::new(),
                        writes: Vec::new(),
                    });
                }
            }
        }
        // An event that reached a stateful clause is recorded by `run`.
        touched |= db.stateful.get();
        // `run` dead-letters an event its writer gets (matched, or recorded) without an identity.
        if any_matched || recorded {
            if let Err(e) = ev.identity() {
                et.dead_letter = Some(e.to_string());
            }
        }
        if touched {
            if let Some(k) = key {
                seen.insert(k);
            }
        }
        if report_it || (wanted && !et.rules.is_empty()) {
            push(&mut report, opts, et);
        }
    }
    store.rollback()?;
    Ok(report)
}

/// Does some `after` clause watch events of this type? (`recorded`: from
/// `super::recorded_types`, computed once per replay.)
fn records(recorded: &[bool], event_type: Option<crate::types::EventTypeId>) -> bool {
    event_type.is_some_and(|t| recorded.get(t.0 as usize).copied().unwrap_or(false))
}

fn push(report: &mut TraceReport, opts: &TraceOptions, et: EventTrace) {
    if report.events.len() >= opts.limit {
        report.omitted += 1;
    } else {
        report.events.push(et);
    }
}

/// An effect as comparable, printable data.
pub fn effect_json(e: &Effect, schema: &Schema) -> serde_json::Value {
    let addrs = |a: &crate::effect::Addresses| json!(a.list);
    match e {
        Effect::Notify { recipients, severity, body, .. } => json!({"notify": {
            "to": recipients.iter().map(|v| v.to_json(Some(schema))).collect::<Vec<_>>(),
            "severity": severity.as_str(), "body": body}}),
        Effect::SendEmail { to, cc, bcc, subject, body, .. } => {
            let mut m = serde_json::Map::new();
            m.insert("to".into(), addrs(to));
            if let Some(cc) = cc {
                m.insert("cc".into(), addrs(cc));
            }
            if let Some(bcc) = bcc {
                m.insert("bcc".into(), addrs(bcc));
            }
            m.insert("subject".into(), json!(subject));
            m.insert("body".into(), json!(body));
            json!({ "send_email": m })
        }
        Effect::Log { level, message, .. } => json!({"log": {"level": level.as_str(), "message": message}}),
        Effect::Webhook { url, method, headers, body, .. } => json!({"webhook": {
            "url": url, "method": method.as_str(),
            "headers": headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": body}}),
    }
}

/// An entity write as comparable, printable data.
pub fn write_json(w: &Write, schema: &Schema) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("entity".into(), json!(w.entity));
    m.insert("key".into(), w.key.to_json(Some(schema)));
    m.insert("field".into(), json!(w.field));
    if !w.path.is_empty() {
        m.insert("path".into(), json!(w.path));
    }
    if w.op != "remove" {
        m.insert("value".into(), w.value.to_json(Some(schema)));
    }
    json!({ w.op: m })
}

/// One policy version of a diff: its program, matcher and scratch store.
pub struct DiffSide<'a> {
    pub program: Arc<Program>,
    pub matcher: Arc<dyn Matcher>,
    pub store: &'a dyn Backend,
}

/// How a rule ended on an event, as compared by `diff`.
#[derive(Debug, Clone, PartialEq)]
pub enum DiffOutcome {
    /// Not matched, or stopped by a clause.
    Silent,
    /// Fired, with its entity writes then its effects, as data.
    Fired(Vec<serde_json::Value>),
    /// A rule error (code and message), or a dead letter.
    Error(String, String),
}

impl DiffOutcome {
    pub fn fired(&self) -> bool {
        matches!(self, DiffOutcome::Fired(_))
    }
}

/// A rule whose outcome differs on an event.
#[derive(Debug, Clone)]
pub struct RuleChange {
    pub rule: String,
    pub old: DiffOutcome,
    pub new: DiffOutcome,
}

impl RuleChange {
    /// The first effect that differs: its index and both sides (`None` when
    /// a side has fewer effects), when both sides fired.
    pub fn first_difference(&self) -> Option<(usize, Option<&serde_json::Value>, Option<&serde_json::Value>)> {
        let (DiffOutcome::Fired(a), DiffOutcome::Fired(b)) = (&self.old, &self.new) else { return None };
        let n = a.len().max(b.len());
        (0..n).find(|&i| a.get(i) != b.get(i)).map(|i| (i, a.get(i), b.get(i)))
    }
}

#[derive(Debug, Clone)]
pub struct EventDiff {
    pub line: u64,
    pub key: Option<String>,
    pub changes: Vec<RuleChange>,
}

/// Per-rule totals of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleTotals {
    pub fired_old: u64,
    pub fired_new: u64,
    /// Fired under the old version only.
    pub old_only: u64,
    /// Fired under the new version only.
    pub new_only: u64,
    /// Fired under both, with different effects (or an error changed).
    pub changed: u64,
    /// The rule exists in the old / new version.
    pub in_old: bool,
    pub in_new: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DiffReport {
    pub events: u64,
    pub dead_letters: u64,
    /// Events whose outcome differs (all of them, in input order).
    pub differing: Vec<EventDiff>,
    /// By rule name.
    pub totals: BTreeMap<String, RuleTotals>,
}

/// Per side, per event: the outcomes of its rules that did not stay silent.
struct SideRun<'a> {
    side: &'a DiffSide<'a>,
    match_decoder: Decoder,
    full_decoder: Decoder,
    scratch: MatchScratch,
    env: Env,
    /// Events (by identity) some rule touched, as `run`'s replay records
    /// would: a repeated event is skipped, as `run` skips it.
    seen: HashSet<String>,
    /// Window and throttle state on this side's scratch store.
    state: std::cell::RefCell<super::state::StateCache>,
    out: Vec<(RuleId, DiffOutcome)>,
    key: Option<String>,
    /// The event types this side's `after` clauses record.
    recorded: Vec<bool>,
}

impl<'a> SideRun<'a> {
    fn new(side: &'a DiffSide<'a>) -> SideRun<'a> {
        let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&side.program)));
        SideRun {
            side,
            match_decoder: Decoder::new(plan.clone()),
            full_decoder: Decoder::new(plan),
            scratch: MatchScratch::default(),
            env: Env::new(),
            seen: HashSet::new(),
            state: Default::default(),
            out: Vec::new(),
            key: None,
            recorded: super::recorded_types(&side.program),
        }
    }

    /// Decode and match: `Err` for a line `run` would dead-letter whatever
    /// the policy; `Ok(false)` when no rule matched (the common case: no
    /// allocation, no store).
    fn matches(&mut self, line: &[u8]) -> Result<bool, String> {
        self.scratch.matched.clear();
        let ev = self.match_decoder.decode_match(line).map_err(|e| e.to_string())?;
        self.side.matcher.matches(&ev, &mut self.scratch);
        // An event an `after` clause watches goes on to `apply` even when no
        // rule matched it, as `run`'s workers forward it to the writer.
        Ok(!self.scratch.matched.is_empty() || records(&self.recorded, ev.event_type))
    }

    /// Run the matched rules' clauses and actions on the scratch store.
    fn apply(&mut self, line: &[u8], now: i128) -> Result<(), RunError> {
        self.out.clear();
        self.key = None;
        let program = &*self.side.program;
        let matched = std::mem::take(&mut self.scratch.matched);
        let ev = match self.full_decoder.decode_full(line) {
            Ok(ev) => ev,
            Err(e) => {
                let m = e.to_string();
                self.out
                    .extend(matched.iter().map(|(id, _)| (*id, DiffOutcome::Error("dead letter".into(), m.clone()))));
                return Ok(());
            }
        };
        let key = match ev.identity() {
            Ok(k) => k,
            Err(e) => {
                let m = e.to_string();
                self.out
                    .extend(matched.iter().map(|(id, _)| (*id, DiffOutcome::Error("dead letter".into(), m.clone()))));
                return Ok(());
            }
        };
        if self.seen.contains(&key) {
            self.key = Some(key);
            return Ok(());
        }
        let store = self.side.store;
        // Effects stay data here: nothing is ever buffered in this batch.
        let batch = Default::default();
        let db = RuleStore::new(store, &self.state, &batch);
        let recorder = Recorder::new(&db, &program.schema, false);
        let interp = Interp { program, event: &ev, db: &recorder, now };
        let mut touched = false;
        for (id, match_error) in &matched {
            let rule = program.rule(*id);
            if let Some(e) = match_error {
                touched = true;
                self.out.push((*id, DiffOutcome::Error(e.code.as_str().into(), e.message.clone())));
                continue;
            }
            interp::bind_patterns(rule, &ev, &mut self.env);
            let mut out = RuleEffects::default();
            recorder.writes.borrow_mut().clear();
            let r = interp::run_rule(&interp, rule, &mut self.env, &mut out)
                .and_then(|o| out.effects.iter().try_for_each(effects::check).map(|()| o))
                .and_then(|o| {
                    if o == Outcome::Fired {
                        db.throttles_fired(&rule.name, &out.throttled)?;
                    }
                    Ok(o)
                });
            match r {
                Ok(Outcome::Fired) => {
                    db.finish(true)?;
                    touched = true;
                    let schema = &program.schema;
                    let mut data: Vec<serde_json::Value> =
                        recorder.writes.borrow().iter().map(|w| write_json(w, schema)).collect();
                    data.extend(out.effects.iter().map(|e| effect_json(e, schema)));
                    self.out.push((*id, DiffOutcome::Fired(data)));
                }
                Ok(Outcome::Stopped) => db.finish(true)?,
                Err(e) => {
                    db.finish(false)?;
                    self.state.borrow_mut().invalidate(store, &rule.name)?;
                    touched = true;
                    self.out.push((*id, DiffOutcome::Error(e.code.as_str().into(), e.message.clone())));
                }
            }
        }
        for (rule, e) in db.record_afters(program, &ev, &mut self.env)? {
            touched = true;
            self.out.push((rule.id, DiffOutcome::Error(e.code.as_str().into(), e.message.clone())));
        }
        touched |= db.stateful.get();
        if touched {
            self.seen.insert(key.clone());
        }
        self.key = Some(key);
        self.scratch.matched = matched;
        Ok(())
    }

    fn outcome(&self, name: &str) -> DiffOutcome {
        let program = &*self.side.program;
        self.out
            .iter()
            .find(|(id, _)| program.rule(*id).name == name)
            .map(|(_, o)| o.clone())
            .unwrap_or(DiffOutcome::Silent)
    }
}

/// Events per transaction on the scratch stores.
const DIFF_BATCH: u64 = 10_000;

/// Replay `input` under both versions, each on its own scratch store, and
/// compare every event's outcome rule by rule (rules matched by name).
pub fn diff(old: &DiffSide<'_>, new: &DiffSide<'_>, mut input: impl BufRead) -> Result<DiffReport, RunError> {
    let mut report = DiffReport::default();
    for (p, is_old) in [(&old.program, true), (&new.program, false)] {
        for r in &p.rules {
            let t = report.totals.entry(r.name.clone()).or_default();
            if is_old {
                t.in_old = true;
            } else {
                t.in_new = true;
            }
        }
    }
    let mut a = SideRun::new(old);
    let mut b = SideRun::new(new);
    let mut line = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    let mut in_batch = 0u64;
    old.store.begin()?;
    new.store.begin()?;
    let mut names: Vec<String> = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(RunError::Io)? == 0 {
            break;
        }
        line_no += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if super::is_blank(&line) {
            continue;
        }
        report.events += 1;
        let (ma, mb) = match (a.matches(&line), b.matches(&line)) {
            (Ok(x), Ok(y)) => (x, y),
            _ => {
                report.dead_letters += 1;
                continue;
            }
        };
        if !ma && !mb {
            continue;
        }
        // One instant for both versions: `now()` must not be a difference.
        let now = now_nanos();
        // A side that matched nothing keeps no outcome or key of an earlier event.
        for side in [&mut a, &mut b] {
            side.out.clear();
            side.key = None;
        }
        if ma {
            a.apply(&line, now)?;
        }
        if mb {
            b.apply(&line, now)?;
        }
        in_batch += 1;
        names.clear();
        for side in [&a, &b] {
            for (id, _) in &side.out {
                let n = &side.side.program.rule(*id).name;
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
        let mut changes = Vec::new();
        for n in &names {
            let o = a.outcome(n);
            let nw = b.outcome(n);
            let t = report.totals.get_mut(n).expect("every rule has totals");
            t.fired_old += u64::from(o.fired());
            t.fired_new += u64::from(nw.fired());
            if o != nw {
                match (o.fired(), nw.fired()) {
                    (true, false) => t.old_only += 1,
                    (false, true) => t.new_only += 1,
                    _ => t.changed += 1,
                }
                changes.push(RuleChange { rule: n.clone(), old: o, new: nw });
            }
        }
        if !changes.is_empty() {
            report.differing.push(EventDiff { line: line_no, key: a.key.clone().or_else(|| b.key.clone()), changes });
        }
        if in_batch >= DIFF_BATCH {
            old.store.commit()?;
            new.store.commit()?;
            old.store.begin()?;
            new.store.begin()?;
            in_batch = 0;
        }
    }
    old.store.commit()?;
    new.store.commit()?;
    Ok(report)
}
