//! Deciding which rules an event matches: the rule index and the two
//! engines behind one trait.

use crate::decode::{DecodeError, Decoded};
use crate::diag::{Code, RuntimeError};
use crate::interp::{self, Env, EventView};
use crate::ir::{MatchEvents, PathId, Program, RuleId};
use crate::types::EventTypeId;
use crate::value::Value;
use std::sync::Arc;

impl EventView for Decoded<'_> {
    fn path(&self, p: PathId) -> Result<Value, RuntimeError> {
        match self.contradiction(p) {
            None => Ok(self.value(p)),
            Some(DecodeError::Type { path, expected, found }) => Err(RuntimeError::new(
                Code::SchemaContradiction,
                format!("`{path}` contradicts the schema: expected {expected}, found {found}"),
            )),
            Some(e) => Err(RuntimeError::new(Code::SchemaContradiction, e.to_string())),
        }
    }
}

/// Rules by event type: an event meets only the rules that name its type,
/// plus `match any` rules, in declaration order.
#[derive(Debug, Clone)]
pub struct RuleIndex {
    /// Indexed by `EventTypeId`; the last entry is for undeclared types.
    by_type: Vec<Vec<RuleId>>,
}

impl RuleIndex {
    pub fn new(program: &Program) -> RuleIndex {
        let n = program.schema.events.len();
        let mut by_type = vec![Vec::new(); n + 1];
        for r in &program.rules {
            match &r.matcher.events {
                MatchEvents::Any => by_type.iter_mut().for_each(|v| v.push(r.id)),
                MatchEvents::Types(ts) => {
                    for t in ts {
                        by_type[t.0 as usize].push(r.id);
                    }
                }
            }
        }
        RuleIndex { by_type }
    }

    pub fn rules(&self, ty: Option<EventTypeId>) -> &[RuleId] {
        match ty {
            Some(t) => &self.by_type[t.0 as usize],
            None => self.by_type.last().map(|v| v.as_slice()).unwrap_or(&[]),
        }
    }
}

/// The conditions of the program's `after` clauses as a program of their
/// own: one rule per clause, matching the clause's earlier event type, with
/// the clause's condition and bindings (over the enclosing rule's locals).
/// `None` when the program has no `after` clause.
///
/// The workers run these "rules" on every event of a recorded type, so an
/// event that no clause would record (a `login` from a known device, when
/// a clause watches only unknown ones) never reaches the writer. Matching
/// them is exactly the first step of `interp::after_entry` (bind, then the
/// condition), so the writer's own evaluation still decides; this only
/// spares it the events for which the answer is known to be "no".
pub fn after_conditions(program: &Program) -> Option<Program> {
    let rules: Vec<crate::ir::Rule> = program
        .afters()
        .enumerate()
        .map(|(i, (rule, a))| crate::ir::Rule {
            id: RuleId(i as u32),
            name: format!("{}/after", rule.name),
            matcher: crate::ir::Match { events: MatchEvents::Types(vec![a.event]), ..a.matcher.clone() },
            steps: Vec::new(),
            actions: Vec::new(),
            ..rule.clone()
        })
        .collect();
    if rules.is_empty() {
        return None;
    }
    Some(Program { rules, ..program.clone() })
}

/// Per-thread scratch space for matching, reused across events.
#[derive(Debug, Default)]
pub struct MatchScratch {
    pub env: Env,
    /// Rules whose `match` accepted the event (or raised a run-time error),
    /// in declaration order.
    pub matched: Vec<(RuleId, Option<RuntimeError>)>,
    /// The JIT's per-rule results for one event (reused: no allocation per event).
    pub jit_out: Vec<u8>,
}

/// One trait, two engines: the interpreter (the oracle) and the JIT.
pub trait Matcher: Send + Sync {
    /// Fill `scratch.matched` with the rules of the event's type whose
    /// `match` accepts it, in declaration order.
    fn matches(&self, ev: &Decoded<'_>, scratch: &mut MatchScratch);

    /// Rules this engine evaluates with the interpreter.
    fn interpreted(&self) -> Vec<RuleId>;

    fn name(&self) -> &'static str;
}

/// The reference interpreter as a matcher.
pub struct InterpMatcher {
    program: Arc<Program>,
    index: RuleIndex,
}

impl InterpMatcher {
    pub fn new(program: Arc<Program>) -> InterpMatcher {
        let index = RuleIndex::new(&program);
        InterpMatcher { program, index }
    }
}

impl Matcher for InterpMatcher {
    fn matches(&self, ev: &Decoded<'_>, scratch: &mut MatchScratch) {
        scratch.matched.clear();
        for &id in self.index.rules(ev.event_type) {
            let rule = self.program.rule(id);
            match interp::eval_match(&self.program, rule, ev, &mut scratch.env) {
                Ok(true) => scratch.matched.push((id, None)),
                Ok(false) => {}
                Err(e) => scratch.matched.push((id, Some(e))),
            }
        }
    }

    fn interpreted(&self) -> Vec<RuleId> {
        self.program.rules.iter().map(|r| r.id).collect()
    }

    fn name(&self) -> &'static str {
        "interp"
    }
}
