//! `herald test --coverage`: which rules, clauses and guards the tests
//! exercised.
//!
//! Nothing here evaluates anything. The writer runs each matched rule with
//! [`interp::run_rule_observed`] and a [`Coverage`] observer instead of
//! [`interp::run_rule`] (the same function with the unit observer), so the
//! verdicts counted are the ones `run` acts on; filtered queries are seen
//! through the tracing store wrapper ([`Recorder`]), which passes every call
//! through. Only `herald test` turns it on (`RunOptions::coverage`).

use crate::diag::RuntimeError;
use crate::effect::RuleEffects;
use crate::interp::trace::{ClauseKind, Observer, Recorder};
use crate::interp::{self, Env, Interp, Outcome};
use crate::ir::{ExprKind, MatchEvents, Program, Rule, RuleId, Step};
use crate::span::Span;
use crate::value::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// Counts gathered over a whole suite (every test's runs add to it).
#[derive(Debug, Default)]
pub struct Coverage {
    /// Per rule: events whose `match` accepted it (its clauses started).
    matched: RefCell<HashMap<RuleId, u64>>,
    /// Per rule: firings and rule errors (from what the writer observed).
    fired: RefCell<HashMap<RuleId, u64>>,
    errors: RefCell<HashMap<RuleId, u64>>,
    /// Per clause (by span): times it passed, times it stopped the rule.
    clauses: RefCell<HashMap<Span, (u64, u64)>>,
    /// Per filtered query (by its filter's span): times it was evaluated.
    queries: RefCell<HashMap<Span, u64>>,
    /// Test events per event type name (the discriminator's value).
    types: RefCell<HashMap<String, u64>>,
}

/// The observer of one rule's run: counts each clause's verdict.
struct Counting<'a>(&'a Coverage);

impl Observer for Counting<'_> {
    fn clause(&mut self, _kind: ClauseKind, span: Span, passed: bool, _value: Option<&Value>) {
        let mut c = self.0.clauses.borrow_mut();
        let e = c.entry(span).or_default();
        if passed {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
}

impl Coverage {
    pub fn new() -> Coverage {
        Coverage::default()
    }

    /// A rule fired (`herald test` counts these from the writer's
    /// observations, which it also checks expectations against).
    pub fn fired(&self, rule: RuleId) {
        *self.fired.borrow_mut().entry(rule).or_default() += 1;
    }

    /// A test event of this type was fed to the rules (so a rule that never
    /// matched can say whether it ever saw an event of its type).
    pub fn event(&self, type_name: &str) {
        *self.types.borrow_mut().entry(type_name.to_string()).or_default() += 1;
    }

    /// A rule failed on an event (in its `match` or later).
    pub fn error(&self, rule: RuleId) {
        *self.errors.borrow_mut().entry(rule).or_default() += 1;
    }

    /// Run a matched rule as `interp::run_rule` does, counting its clauses'
    /// verdicts and the filtered queries it evaluated. `recorder` must be
    /// the store `interp` reads through.
    pub(super) fn run_rule(
        &self,
        recorder: &Recorder<'_>,
        interp: &Interp<'_>,
        rule: &Rule,
        env: &mut Env,
        out: &mut RuleEffects,
    ) -> Result<Outcome, RuntimeError> {
        *self.matched.borrow_mut().entry(rule.id).or_default() += 1;
        let r = interp::run_rule_observed(interp, rule, env, out, &mut Counting(self));
        // Drained per rule: the recorder lives as long as the event.
        let mut q = self.queries.borrow_mut();
        for span in recorder.queried.borrow_mut().drain(..) {
            *q.entry(span).or_default() += 1;
        }
        recorder.reads.borrow_mut().clear();
        recorder.writes.borrow_mut().clear();
        r
    }

    /// The counts against every rule and clause of `program`.
    pub fn report(&self, program: &Program) -> CoverageReport {
        let count = |m: &RefCell<HashMap<RuleId, u64>>, id| m.borrow().get(&id).copied().unwrap_or(0);
        let clauses = self.clauses.borrow();
        let queries = self.queries.borrow();
        let rules = program
            .rules
            .iter()
            .map(|rule| {
                let mut list = Vec::new();
                for step in &rule.steps {
                    let (kind, span) = match step {
                        // A `let` cannot stop a rule; its queries are listed.
                        Step::Let { .. } => continue,
                        Step::GuardLet { span, .. } => (ClauseKind::GuardLet, *span),
                        Step::Guard { span, .. } => (ClauseKind::Guard, *span),
                        Step::Window(w) => (ClauseKind::Window, w.span),
                        Step::Throttle(t) => (ClauseKind::Throttle, t.span),
                        Step::After(a) => (ClauseKind::After, a.span),
                    };
                    let (passed, stopped) = clauses.get(&span).copied().unwrap_or_default();
                    list.push(ClauseCoverage { kind: CoveredKind::Clause(kind), span, passed, stopped });
                }
                for e in rule.body_exprs() {
                    e.walk(&mut |e| {
                        if let ExprKind::Query { filter: Some(f), .. } = &e.kind {
                            let n = queries.get(&f.span).copied().unwrap_or(0);
                            list.push(ClauseCoverage { kind: CoveredKind::Query, span: e.span, passed: n, stopped: 0 });
                        }
                    });
                }
                // Queries sit inside clauses: list everything in source order.
                list.sort_by_key(|c| (c.span.file.0, c.span.start));
                let types = self.types.borrow();
                let of_type = match &rule.matcher.events {
                    MatchEvents::Any => types.values().sum(),
                    MatchEvents::Types(ts) => {
                        ts.iter().map(|t| types.get(&program.schema.event(*t).name).copied().unwrap_or(0)).sum()
                    }
                };
                RuleCoverage {
                    rule: rule.id,
                    events_of_type: of_type,
                    matched: count(&self.matched, rule.id),
                    fired: count(&self.fired, rule.id),
                    errors: count(&self.errors, rule.id),
                    clauses: list,
                }
            })
            .collect();
        CoverageReport { rules }
    }
}

/// What a coverage entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoveredKind {
    /// A `guard`, `guard let`, `window`, `throttle` or `after` clause.
    Clause(ClauseKind),
    /// A query with a filter (`exists User(...)`), wherever it stands.
    Query,
}

impl CoveredKind {
    pub fn keyword(self) -> &'static str {
        match self {
            CoveredKind::Clause(k) => k.keyword(),
            CoveredKind::Query => "query",
        }
    }

    /// A guard: it should both pass and stop the rule somewhere in the suite.
    pub fn is_guard(self) -> bool {
        matches!(self, CoveredKind::Clause(ClauseKind::Guard | ClauseKind::GuardLet))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClauseCoverage {
    pub kind: CoveredKind,
    pub span: Span,
    /// Times it passed (a query: times it was evaluated).
    pub passed: u64,
    /// Times it stopped the rule (a query: always 0).
    pub stopped: u64,
}

impl ClauseCoverage {
    pub fn reached(&self) -> u64 {
        self.passed + self.stopped
    }
}

/// How far the tests got into a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStatus {
    Fired,
    /// Its `match` accepted some event, but it never fired.
    NeverFired,
    /// No event got past its `match`.
    NeverMatched,
}

impl RuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Fired => "fired",
            RuleStatus::NeverFired => "never_fired",
            RuleStatus::NeverMatched => "never_matched",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCoverage {
    pub rule: RuleId,
    /// Test events of a type its `match` names.
    pub events_of_type: u64,
    pub matched: u64,
    pub fired: u64,
    /// Rule errors (in its `match` or later).
    pub errors: u64,
    /// Its clauses and filtered queries, in source order.
    pub clauses: Vec<ClauseCoverage>,
}

impl RuleCoverage {
    pub fn status(&self) -> RuleStatus {
        if self.fired > 0 {
            RuleStatus::Fired
        } else if self.matched > 0 {
            RuleStatus::NeverFired
        } else {
            RuleStatus::NeverMatched
        }
    }
}

/// Coverage of a whole suite, rule by rule in declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageReport {
    pub rules: Vec<RuleCoverage>,
}

impl CoverageReport {
    fn clauses(&self) -> impl Iterator<Item = &ClauseCoverage> {
        self.rules.iter().flat_map(|r| &r.clauses)
    }

    pub fn rules_fired(&self) -> usize {
        self.rules.iter().filter(|r| r.status() == RuleStatus::Fired).count()
    }

    pub fn clause_count(&self) -> usize {
        self.clauses().count()
    }

    pub fn clauses_reached(&self) -> usize {
        self.clauses().filter(|c| c.reached() > 0).count()
    }

    pub fn guard_count(&self) -> usize {
        self.clauses().filter(|c| c.kind.is_guard()).count()
    }

    /// Guards that both passed and stopped the rule.
    pub fn guards_both(&self) -> usize {
        self.clauses().filter(|c| c.kind.is_guard() && c.passed > 0 && c.stopped > 0).count()
    }

    /// Nothing left: every rule fired, every clause was reached, every
    /// guard went both ways.
    pub fn complete(&self) -> bool {
        self.rules_fired() == self.rules.len()
            && self.clauses_reached() == self.clause_count()
            && self.guards_both() == self.guard_count()
    }
}
