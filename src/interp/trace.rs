//! Tracing: the interpreter's own evaluation of a rule, clause by clause,
//! with the values each clause saw (`herald trace`), and a recording store
//! wrapper that turns reads and entity writes into data (`herald trace`,
//! `herald diff`).
//!
//! Nothing here is a second copy of the semantics. `run_rule` is
//! [`run_rule_observed`] with an observer that decides a guard by plain
//! evaluation; the tracer's observer decides it conjunct by conjunct, which
//! is what `&&` means (left to right, stopping at the first false), so the
//! traced verdict is the real one (`tests/trace.rs` checks it against `run`
//! over a corpus). A later clause kind (a window or a throttle) is one more
//! [`ClauseKind`] and, where it can stop a rule, one more [`Detail`].

use super::{bind_patterns, ops, Db, Env, EventView, Interp, NoDb};
use crate::diag::RuntimeError;
use crate::ir::{Expr, ExprKind, MatchEvents, PathId, Program, QueryKind, Rule};
use crate::schema::Schema;
use crate::span::Span;
use crate::types::EntityId;
use crate::value::{Row, Value};
use std::cell::RefCell;
use std::sync::Arc;

/// The kinds of clause a rule is made of, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClauseKind {
    Match,
    Let,
    GuardLet,
    Guard,
    /// The value seen is the window's count (or distinct count).
    Window,
    /// The value seen is `throttle.suppressed` when it passed.
    Throttle,
    /// `after … within`: whether an earlier event qualified.
    After,
}

impl ClauseKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ClauseKind::Match => "match",
            ClauseKind::Let => "let",
            ClauseKind::GuardLet => "guard let",
            ClauseKind::Guard => "guard",
            ClauseKind::Window => "window",
            ClauseKind::Throttle => "throttle",
            ClauseKind::After => "after",
        }
    }
}

/// An expression and the value it had.
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    pub span: Span,
    /// The event path, when the operand is one (a pattern's field).
    pub path: Option<PathId>,
    pub value: Value,
}

impl Operand {
    fn of(e: &Expr, value: Value) -> Operand {
        let path = match e.kind {
            ExprKind::Event(p) => Some(p),
            _ => None,
        };
        Operand { span: e.span, path, value }
    }
}

/// Why a clause stopped the rule: the part that was false and what it saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// The event's type is not one the rule's `match` names.
    EventType { expected: Vec<String>, found: String },
    /// A comparison (a literal pattern is `path == literal`) was false.
    Compare { span: Span, op: &'static str, left: Operand, right: Operand },
    /// A presence test (a binding pattern is `path != null`) was false.
    Presence { span: Span, negated: bool, operand: Operand },
    /// `elem in container` was false.
    Membership { span: Span, elem: Operand, container: Operand },
    /// Any other condition that was false.
    False { span: Span },
    /// A `guard let` found nothing (absent or null).
    Nothing { value: Operand },
}

/// One store read made while a clause ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub entity: String,
    /// `lookup`, `lookup_many`, `related`, or a query kind (`exists`,
    /// `count`, `first`, `all`).
    pub kind: &'static str,
    /// Rows found (for `count`: the count; for `exists`: 0 or 1).
    pub rows: u64,
    /// The keys of the rows found, at most [`MAX_KEYS`] of them.
    pub keys: Vec<Value>,
}

/// Keys listed per read; the count is always exact.
pub const MAX_KEYS: usize = 10;

/// One entity write an action made.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// `set`, `append` or `remove`.
    pub op: &'static str,
    pub entity: String,
    pub key: Value,
    pub field: String,
    pub path: Vec<String>,
    /// The value written (`set`, `append`); absent for `remove`.
    pub value: Value,
}

/// The verdict of one clause.
#[derive(Debug, Clone, PartialEq)]
pub struct ClauseTrace {
    pub kind: ClauseKind,
    pub span: Span,
    pub passed: bool,
    /// For a clause that stopped the rule: why.
    pub detail: Option<Detail>,
    /// Store reads made while the clause ran.
    pub reads: Vec<Read>,
    /// What a stateful clause counted: a window's count (or distinct
    /// count), a throttle's `suppressed` when it passed. `None` for other
    /// clauses, and for a window that refused a late event.
    pub seen: Option<Value>,
}

/// Hooks into [`run_rule_observed`]. The unit observer is `run_rule`.
pub trait Observer {
    /// Decide a `guard`'s condition. The default is plain evaluation.
    fn guard(&mut self, interp: &Interp<'_>, cond: &Expr, env: &Env) -> Result<bool, RuntimeError> {
        interp.bool(cond, env)
    }
    /// A `let`, `guard let` or `guard` clause finished (`passed`: it did not
    /// stop the rule).
    fn clause(&mut self, _kind: ClauseKind, _span: Span, _passed: bool, _value: Option<&Value>) {}
}

impl Observer for () {}

/// Does the event's type meet the rule's `match`? (The `RuleIndex` gives a
/// rule only events of its types; a trace may ask about any rule.)
pub fn meets_type(rule: &Rule, event_type: Option<crate::types::EventTypeId>) -> bool {
    match &rule.matcher.events {
        MatchEvents::Any => true,
        MatchEvents::Types(ts) => event_type.is_some_and(|t| ts.contains(&t)),
    }
}

/// Trace a rule's `match` clause on an event: the same verdict as
/// [`super::eval_match`] (bindings written into `env`), and, when it is
/// false, which conjunct was false and what it saw.
pub fn trace_match(
    program: &Program,
    rule: &Rule,
    event: &dyn EventView,
    event_type: Option<crate::types::EventTypeId>,
    type_name: &str,
    env: &mut Env,
) -> (Result<bool, RuntimeError>, ClauseTrace) {
    let mut trace = ClauseTrace {
        kind: ClauseKind::Match,
        span: rule.matcher.span,
        passed: false,
        detail: None,
        reads: Vec::new(),
        seen: None,
    };
    if !meets_type(rule, event_type) {
        let expected = match &rule.matcher.events {
            MatchEvents::Any => Vec::new(),
            MatchEvents::Types(ts) => ts.iter().map(|t| program.schema.event(*t).name.clone()).collect(),
        };
        trace.detail = Some(Detail::EventType { expected, found: type_name.to_string() });
        return (Ok(false), trace);
    }
    bind_patterns(rule, event, env);
    let interp = Interp { program, event, db: &NoDb, now: 0 };
    let r = conjuncts(&interp, &rule.matcher.cond, env).map_err(|e| e.at(rule.matcher.cond.span));
    match r {
        Ok(None) => {
            trace.passed = true;
            (Ok(true), trace)
        }
        Ok(Some(detail)) => {
            trace.detail = Some(detail);
            (Ok(false), trace)
        }
        Err(e) => (Err(e), trace),
    }
}

/// Evaluate a condition as `&&` does, conjunct by conjunct: `None` when it
/// is true, else why the first false conjunct was false. Comparisons,
/// presence and membership tests evaluate their operands exactly as
/// `Interp::eval` does (operands left to right, then `ops`), keeping them.
fn conjuncts(interp: &Interp<'_>, e: &Expr, env: &Env) -> Result<Option<Detail>, RuntimeError> {
    let r = match &e.kind {
        ExprKind::And(a, b) => match conjuncts(interp, a, env)? {
            None => conjuncts(interp, b, env)?,
            some => some,
        },
        ExprKind::Cmp { op, lhs, rhs } => {
            let l = interp.eval(lhs, env)?;
            let r = interp.eval(rhs, env)?;
            if ops::compare(*op, &l, &r) {
                None
            } else {
                Some(Detail::Compare {
                    span: e.span,
                    op: op.symbol(),
                    left: Operand::of(lhs, l),
                    right: Operand::of(rhs, r),
                })
            }
        }
        ExprKind::IsNull { operand, negated } => {
            let v = interp.eval(operand, env)?;
            if v.is_nullish() != *negated {
                None
            } else {
                Some(Detail::Presence { span: e.span, negated: *negated, operand: Operand::of(operand, v) })
            }
        }
        ExprKind::In { elem, container } => {
            let x = interp.eval(elem, env)?;
            let c = interp.eval(container, env)?;
            if ops::contains(&c, &x) {
                None
            } else {
                Some(Detail::Membership {
                    span: e.span,
                    elem: Operand::of(elem, x),
                    container: Operand::of(container, c),
                })
            }
        }
        _ => {
            if interp.bool(e, env)? {
                None
            } else {
                Some(Detail::False { span: e.span })
            }
        }
    };
    Ok(r)
}

/// The tracer's observer: decides guards conjunct by conjunct and records
/// each clause with the reads the recording store saw meanwhile.
pub struct Tracer<'r> {
    pub recorder: &'r Recorder<'r>,
    pub clauses: Vec<ClauseTrace>,
    /// Why the last guard was false, for the clause record.
    pending: Option<Detail>,
    reads_from: usize,
}

impl<'r> Tracer<'r> {
    pub fn new(recorder: &'r Recorder<'r>) -> Tracer<'r> {
        let reads_from = recorder.reads.borrow().len();
        Tracer { recorder, clauses: Vec::new(), pending: None, reads_from }
    }
}

impl Observer for Tracer<'_> {
    fn guard(&mut self, interp: &Interp<'_>, cond: &Expr, env: &Env) -> Result<bool, RuntimeError> {
        let d = conjuncts(interp, cond, env).map_err(|e| e.at(cond.span))?;
        let passed = d.is_none();
        self.pending = d;
        Ok(passed)
    }

    fn clause(&mut self, kind: ClauseKind, span: Span, passed: bool, value: Option<&Value>) {
        let reads = self.recorder.reads.borrow();
        let new: Vec<Read> = reads[self.reads_from.min(reads.len())..].to_vec();
        self.reads_from = reads.len();
        let mut detail = self.pending.take();
        if kind == ClauseKind::GuardLet && !passed {
            detail = Some(Detail::Nothing {
                value: Operand { span, path: None, value: value.cloned().unwrap_or(Value::Absent) },
            });
        }
        let seen = match kind {
            ClauseKind::Window | ClauseKind::Throttle => value.cloned(),
            _ => None,
        };
        self.clauses.push(ClauseTrace {
            kind,
            span,
            passed,
            detail: if passed { None } else { detail },
            reads: new,
            seen,
        });
    }
}

/// A store wrapper that passes every call through and records reads
/// (entity, kind, rows found) and entity writes as data.
pub struct Recorder<'a> {
    pub inner: &'a dyn Db,
    pub schema: &'a Schema,
    pub reads: RefCell<Vec<Read>>,
    pub writes: RefCell<Vec<Write>>,
    /// The filters of the queries run (by span), recorded before the query
    /// runs, so one that fails counts as reached (`herald test --coverage`).
    pub queried: RefCell<Vec<Span>>,
    /// Record reads too (a trace); a diff needs only the writes.
    pub record_reads: bool,
}

impl<'a> Recorder<'a> {
    pub fn new(inner: &'a dyn Db, schema: &'a Schema, record_reads: bool) -> Recorder<'a> {
        Recorder {
            inner,
            schema,
            reads: RefCell::new(Vec::new()),
            writes: RefCell::new(Vec::new()),
            queried: RefCell::new(Vec::new()),
            record_reads,
        }
    }

    fn read(&self, entity: EntityId, kind: &'static str, rows: u64, keys: Vec<Value>) {
        if self.record_reads {
            let entity = self.schema.entity(entity).name.clone();
            self.reads.borrow_mut().push(Read { entity, kind, rows, keys });
        }
    }

    fn rows(&self, entity: EntityId, kind: &'static str, rows: &[Arc<Row>]) {
        if self.record_reads {
            let keys = rows.iter().take(MAX_KEYS).map(|r| r.key.clone()).collect();
            self.read(entity, kind, rows.len() as u64, keys);
        }
    }

    fn write(&self, op: &'static str, entity: EntityId, key: &Value, field: usize, path: &[String], value: &Value) {
        let def = self.schema.entity(entity);
        let field = def.fields.get(field).map(|f| f.name.clone()).unwrap_or_default();
        self.writes.borrow_mut().push(Write {
            op,
            entity: def.name.clone(),
            key: key.clone(),
            field,
            path: path.to_vec(),
            value: value.clone(),
        });
    }
}

impl Db for Recorder<'_> {
    fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        let r = self.inner.lookup(entity, key)?;
        self.rows(entity, "lookup", r.as_slice());
        Ok(r)
    }
    fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        let r = self.inner.lookup_many(entity, keys)?;
        self.rows(entity, "lookup_many", &r);
        Ok(r)
    }
    fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError> {
        let r = self.inner.related(entity, key, field)?;
        self.rows(entity, "related", &r);
        Ok(r)
    }
    fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&Expr>,
        eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        if let (true, Some(f)) = (self.record_reads, filter) {
            self.queried.borrow_mut().push(f.span);
        }
        let v = self.inner.query(kind, entity, filter, eval)?;
        if self.record_reads {
            let (rows, keys) = match &v {
                Value::Int(n) => (u64::try_from(*n).unwrap_or(0), Vec::new()),
                Value::Bool(b) => (u64::from(*b), Vec::new()),
                Value::Entity(row) => (1, vec![row.key.clone()]),
                Value::List(items) => (
                    items.len() as u64,
                    items
                        .iter()
                        .take(MAX_KEYS)
                        .filter_map(|i| match i {
                            Value::Entity(r) => Some(r.key.clone()),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => (0, Vec::new()),
            };
            self.read(entity, kind.keyword(), rows, keys);
        }
        Ok(v)
    }
    fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        let r = self.inner.set_field(entity, key, field, path, value)?;
        self.write("set", entity, key, field, path, value);
        Ok(r)
    }
    fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        let r = self.inner.append(entity, key, field, path, value)?;
        self.write("append", entity, key, field, path, value);
        Ok(r)
    }
    fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError> {
        let r = self.inner.remove(entity, key, field, path)?;
        self.write("remove", entity, key, field, path, &Value::Absent);
        Ok(r)
    }
    fn upsert(&self, entity: EntityId, key: &Value, fields: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError> {
        let r = self.inner.upsert(entity, key, fields)?;
        for (field, value) in fields {
            self.write("upsert", entity, key, *field, &[], value);
        }
        Ok(r)
    }
    fn delete(&self, entity: EntityId, key: &Value) -> Result<bool, RuntimeError> {
        let r = self.inner.delete(entity, key)?;
        if r {
            // `usize::MAX`: no field (the whole row).
            self.write("delete", entity, key, usize::MAX, &[], &Value::Absent);
        }
        Ok(r)
    }
    fn link(&self, entity: EntityId, key: &Value, field: usize, target: &Value, add: bool) -> Result<(), RuntimeError> {
        self.inner.link(entity, key, field, target, add)?;
        self.write(if add { "add" } else { "remove from" }, entity, key, field, &[], target);
        Ok(())
    }
    fn flush(&self) -> Result<(), RuntimeError> {
        self.inner.flush()
    }
    // Windows and throttles: the inner store's state (a trace or a diff
    // runs on a scratch copy, so recording there writes nothing real).
    fn window(
        &self,
        rule: &str,
        slot: crate::ir::StateSlot,
        key: &str,
        t: i128,
        d: i128,
        distinct: Option<&str>,
    ) -> Result<Option<super::WindowAnswer>, RuntimeError> {
        self.inner.window(rule, slot, key, t, d, distinct)
    }
    fn throttle(
        &self,
        rule: &str,
        slot: crate::ir::StateSlot,
        key: &str,
        t: i128,
        d: i128,
    ) -> Result<Option<i64>, RuntimeError> {
        self.inner.throttle(rule, slot, key, t, d)
    }
    fn throttle_fired(&self, rule: &str, slot: crate::ir::StateSlot, key: &str, t: i128) -> Result<(), RuntimeError> {
        self.inner.throttle_fired(rule, slot, key, t)
    }
    fn after_record(
        &self,
        rule: &str,
        slot: crate::ir::StateSlot,
        key: &str,
        t: i128,
        d: i128,
        json: &str,
    ) -> Result<bool, RuntimeError> {
        self.inner.after_record(rule, slot, key, t, d, json)
    }
    fn after(
        &self,
        rule: &str,
        slot: crate::ir::StateSlot,
        key: &str,
        t: i128,
        d: i128,
    ) -> Result<Option<String>, RuntimeError> {
        self.inner.after(rule, slot, key, t, d)
    }
}
