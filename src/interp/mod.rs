//! The reference interpreter: it defines the language's run-time semantics.
//!
//! It evaluates `match` conditions (the oracle the JIT must agree with) and
//! runs `let`/`guard`/`action` clauses against the store through the [`Db`]
//! trait, which the SQLite store implements. Value semantics live in [`ops`];
//! each built-in function's evaluation is its entry in [`crate::builtins`].
//! Actions produce [`Effect`] values that the caller checks and applies;
//! only entity writes go to the store from here (later reads must see them).

pub mod filter;
pub mod ops;
pub mod trace;

use crate::builtins::{self, EvalCx};
use crate::diag::{Code, RuntimeError};
use crate::effect::{Addresses, Effect, RuleEffects};
use crate::ir::{
    AfterStep, Builtin, Expr, ExprKind, FieldRef, InterpPart, LocalId, PathId, Program, Projection, QueryKind, Rule,
    StateSlot, Step, Stmt,
};
use crate::types::EntityId;
use crate::value::{Row, Value};
use std::sync::Arc;

/// Read access to one decoded event.
pub trait EventView {
    /// The value at a static event path: absent when missing; an error
    /// (`R0006`) when the event's value there contradicts the schema, so
    /// that only the rules that read it fail.
    fn path(&self, p: PathId) -> Result<Value, RuntimeError>;
}

/// The store as the interpreter sees it. Implemented by `store::Store`
/// over SQLite; every method runs inside the caller's transaction.
pub trait Db {
    fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError>;
    fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError>;
    fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError>;
    fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&Expr>,
        eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError>;
    /// Returns the column's new value.
    fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError>;
    fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError>;
    fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError>;
    /// `upsert`: create the row with `key` or update the given fields of
    /// the existing one (each value replaces its column). Returns the row
    /// as stored afterwards.
    fn upsert(&self, entity: EntityId, key: &Value, fields: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError>;
    /// `delete`: remove the row and every many-to-many link to or from it.
    /// `false` when there was no such row (nothing changes).
    fn delete(&self, entity: EntityId, key: &Value) -> Result<bool, RuntimeError>;
    /// `add`/`remove … from`: link (`add`) or unlink the row with `key` and
    /// the target row `target` (a key or a row) through many-to-many
    /// `field`. Adding a link that exists and removing one that does not
    /// change nothing.
    fn link(&self, entity: EntityId, key: &Value, field: usize, target: &Value, add: bool) -> Result<(), RuntimeError>;
    /// Make every write so far visible in the store; a store may hold
    /// writes back (a run of `append`s) until then. Called when a rule's
    /// actions end, so a failure here is that rule's error.
    fn flush(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
    /// A `window` clause: record the event (at time `t`, with its
    /// `distinct` value's canonical text) under `key` and answer for the
    /// interval `(t - d, t]`; `None` when the event is too late to be
    /// placed (see `docs/language.md`).
    fn window(
        &self,
        _: &str,
        _: StateSlot,
        _: &str,
        _: i128,
        _: i128,
        _: Option<&str>,
    ) -> Result<Option<WindowAnswer>, RuntimeError> {
        Err(no_state())
    }
    /// A `throttle` clause: `Some(suppressed)` when it passes, `None` when
    /// it stops the event (which is then counted as suppressed).
    fn throttle(&self, _: &str, _: StateSlot, _: &str, _: i128, _: i128) -> Result<Option<i64>, RuntimeError> {
        Err(no_state())
    }
    /// An `after` clause: record an earlier event at `t` under its join
    /// `key`, with its whole value as JSON (`None`: too late to place).
    #[allow(clippy::too_many_arguments)]
    fn after_record(&self, _: &str, _: StateSlot, _: &str, _: i128, _: i128, _: &str) -> Result<bool, RuntimeError> {
        Err(no_state())
    }
    /// An `after` clause at the current event's time `t`: the recorded
    /// event of `key` with the latest time in `[t - d, t]` (its JSON), or
    /// `None` when there is none (or the current event is too late).
    fn after(&self, _: &str, _: StateSlot, _: &str, _: i128, _: i128) -> Result<Option<String>, RuntimeError> {
        Err(no_state())
    }
    /// The rule fired at `t` for `key`: record it for the throttle.
    fn throttle_fired(&self, _: &str, _: StateSlot, _: &str, _: i128) -> Result<(), RuntimeError> {
        Err(no_state())
    }
}

/// What a `window` clause saw: the events of its key with time in
/// `(t - d, t]`, the current one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowAnswer {
    pub count: i64,
    /// Distinct non-null values of the `distinct` expression (0 for `count`).
    pub distinct: i64,
    pub first: i128,
    pub last: i128,
}

fn no_state() -> RuntimeError {
    RuntimeError::new(Code::StoreFailure, "internal error: this store keeps no window or throttle state")
}

/// The canonical text of a state key or a `distinct` value: equal texts
/// for values that are the same key. Timestamps keep every nanosecond, an
/// entity stands for its key.
pub fn state_text(v: &Value, out: &mut String) {
    use std::fmt::Write;
    match v {
        Value::Absent | Value::Null => out.push_str("null"),
        Value::Timestamp(t) => {
            let _ = write!(out, "t{t}");
        }
        Value::Entity(row) => state_text(&row.key, out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                state_text(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_json(None).to_string()),
    }
}

/// The event time of a stateful clause. The schema's `time` field is a
/// required `timestamp`, so an event without one contradicts the schema:
/// the read itself reports it (`R0006`), and the fallback below words the
/// same error should any other value reach here.
fn event_time(interp: &Interp<'_>, path: PathId, span: crate::span::Span) -> Result<i128, RuntimeError> {
    match interp.event.path(path).map_err(|e| e.at(span))? {
        Value::Timestamp(t) => Ok(t),
        _ => {
            let field = interp.program.paths.get(path.0 as usize).map(|p| p.join(".")).unwrap_or_default();
            Err(RuntimeError::new(
                Code::SchemaContradiction,
                format!("the event has no time (`{field}`), which windows and throttles need"),
            )
            .at(span))
        }
    }
}

/// The join key of an `after` clause: the canonical texts of the shared
/// bindings' values, in the clause's pattern order.
fn join_key<'v>(values: impl Iterator<Item = &'v Value>) -> String {
    let mut key = String::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            key.push('\u{1f}');
        }
        state_text(v, &mut key);
    }
    key
}

/// The recorded earlier event, typed as its event type's record.
fn prev_value(program: &Program, a: &AfterStep, json: &str) -> Value {
    let record = program.schema.event(a.event).record;
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(j) => crate::decode::typed_from_json(&program.schema, &j, &crate::types::Ty::Record(record)),
        Err(_) => Value::Absent,
    }
}

/// What an `after` clause records for an event of its earlier type: the
/// join key and the whole event as JSON, when the clause's patterns and
/// `where` accept the event (`None` otherwise). Pure, like `match`; `env`
/// is scratch space.
pub fn after_entry(
    program: &Program,
    rule: &Rule,
    a: &AfterStep,
    event: &dyn EventView,
    env: &mut Env,
) -> Result<Option<(String, String)>, RuntimeError> {
    env.clear();
    env.resize(rule.locals.len(), Value::Absent);
    for (local, path) in &a.matcher.bindings {
        env[local.0 as usize] = event.path(*path).unwrap_or(Value::Absent);
    }
    let interp = Interp { program, event, db: &NoDb, now: 0 };
    match interp.eval(&a.matcher.cond, env)? {
        Value::Bool(true) => {}
        Value::Bool(false) => return Ok(None),
        other => return Err(ops::type_error("a bool", &other).at(a.matcher.cond.span)),
    }
    let mut values = Vec::with_capacity(a.join.len());
    for (path, _) in &a.join {
        values.push(event.path(*path)?);
    }
    let key = join_key(values.iter());
    let whole = event.path(a.whole)?.to_json(Some(&program.schema)).to_string();
    Ok(Some((key, whole)))
}

fn state_key(interp: &Interp<'_>, keys: &[Expr], env: &Env) -> Result<String, RuntimeError> {
    let mut key = String::new();
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            key.push('\u{1f}');
        }
        state_text(&interp.eval(k, env)?, &mut key);
    }
    Ok(key)
}

/// The store of a `match` clause: there is none. The checker guarantees a
/// `match` never queries, so reaching this is a bug reported as an error.
pub struct NoDb;

fn no_db() -> RuntimeError {
    RuntimeError::new(Code::StoreFailure, "internal error: the store was read while evaluating a `match` clause")
}

impl Db for NoDb {
    fn lookup(&self, _: EntityId, _: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        Err(no_db())
    }
    fn lookup_many(&self, _: EntityId, _: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        Err(no_db())
    }
    fn related(&self, _: EntityId, _: &Value, _: usize) -> Result<Vec<Arc<Row>>, RuntimeError> {
        Err(no_db())
    }
    fn query(
        &self,
        _: QueryKind,
        _: EntityId,
        _: Option<&Expr>,
        _: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        Err(no_db())
    }
    fn set_field(&self, _: EntityId, _: &Value, _: usize, _: &[String], _: &Value) -> Result<Value, RuntimeError> {
        Err(no_db())
    }
    fn append(&self, _: EntityId, _: &Value, _: usize, _: &[String], _: &Value) -> Result<Value, RuntimeError> {
        Err(no_db())
    }
    fn remove(&self, _: EntityId, _: &Value, _: usize, _: &[String]) -> Result<Value, RuntimeError> {
        Err(no_db())
    }
    fn upsert(&self, _: EntityId, _: &Value, _: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError> {
        Err(no_db())
    }
    fn delete(&self, _: EntityId, _: &Value) -> Result<bool, RuntimeError> {
        Err(no_db())
    }
    fn link(&self, _: EntityId, _: &Value, _: usize, _: &Value, _: bool) -> Result<(), RuntimeError> {
        Err(no_db())
    }
}

/// One rule's locals.
pub type Env = Vec<Value>;

/// Evaluates expressions of one program against one event.
pub struct Interp<'a> {
    pub program: &'a Program,
    pub event: &'a dyn EventView,
    pub db: &'a dyn Db,
    /// The value of `now()`: one instant per event, so every rule sees the same.
    pub now: i128,
}

/// Does `rule`'s `match` clause accept the event? Pattern bindings are
/// written into `env` (which must have `rule.locals.len()` entries).
pub fn eval_match(program: &Program, rule: &Rule, event: &dyn EventView, env: &mut Env) -> Result<bool, RuntimeError> {
    bind_patterns(rule, event, env);
    let interp = Interp { program, event, db: &NoDb, now: 0 };
    match interp.eval(&rule.matcher.cond, env)? {
        Value::Bool(b) => Ok(b),
        other => Err(ops::type_error("a bool", &other).at(rule.matcher.cond.span)),
    }
}

/// Give pattern-bound locals the values at their paths.
pub fn bind_patterns(rule: &Rule, event: &dyn EventView, env: &mut Env) {
    env.clear();
    env.resize(rule.locals.len(), Value::Absent);
    for (local, path) in &rule.matcher.bindings {
        // A contradicted value binds absent: the match condition tests
        // every bound path for presence, and that read reports the error.
        env[local.0 as usize] = event.path(*path).unwrap_or(Value::Absent);
    }
}

/// How a rule's clauses ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every guard passed and every action ran: the rule fired.
    Fired,
    /// A `guard` or `guard let` stopped the rule.
    Stopped,
}

/// Run the `let`/`guard`/`action` clauses of a rule whose `match` accepted
/// the event (pattern bindings already in `env`). The actions' effects are
/// appended to `out` for the caller to check and apply; entity writes are
/// applied to `interp.db` as they run (and counted in `out`).
pub fn run_rule(
    interp: &Interp<'_>,
    rule: &Rule,
    env: &mut Env,
    out: &mut RuleEffects,
) -> Result<Outcome, RuntimeError> {
    run_rule_observed(interp, rule, env, out, &mut ())
}

/// [`run_rule`], telling `obs` each clause's verdict and letting it decide
/// guards (`herald trace` splits them into conjuncts; see [`trace`]).
pub fn run_rule_observed(
    interp: &Interp<'_>,
    rule: &Rule,
    env: &mut Env,
    out: &mut RuleEffects,
    obs: &mut dyn trace::Observer,
) -> Result<Outcome, RuntimeError> {
    use trace::ClauseKind;
    for step in &rule.steps {
        match step {
            Step::Let { local, value, span } => {
                let v = interp.eval(value, env)?;
                obs.clause(ClauseKind::Let, *span, true, Some(&v));
                env[local.0 as usize] = v;
            }
            Step::GuardLet { local, value, span } => {
                let v = interp.eval(value, env)?;
                if v.is_nullish() {
                    obs.clause(ClauseKind::GuardLet, *span, false, Some(&v));
                    return Ok(Outcome::Stopped);
                }
                obs.clause(ClauseKind::GuardLet, *span, true, Some(&v));
                env[local.0 as usize] = v;
            }
            Step::Guard { cond, span } => {
                let passed = obs.guard(interp, cond, env)?;
                obs.clause(ClauseKind::Guard, *span, passed, None);
                if !passed {
                    return Ok(Outcome::Stopped);
                }
            }
            Step::Window(w) => {
                let t = event_time(interp, w.time, w.span)?;
                let key = state_key(interp, &w.keys, env)?;
                let value = match &w.distinct {
                    Some(d) => match interp.eval(d, env)? {
                        // An event without the value counts as an event,
                        // not as one more distinct value.
                        Value::Absent | Value::Null => None,
                        v => {
                            let mut s = String::new();
                            state_text(&v, &mut s);
                            Some(s)
                        }
                    },
                    None => None,
                };
                let Some(a) = interp.db.window(&rule.name, w.slot, &key, t, w.duration, value.as_deref())? else {
                    // Too late for the window (at or before its watermark - D).
                    obs.clause(ClauseKind::Window, w.span, false, None);
                    return Ok(Outcome::Stopped);
                };
                let n = if w.distinct.is_some() { a.distinct } else { a.count };
                let passed = ops::compare(w.op, &Value::Int(n), &Value::Int(w.limit));
                obs.clause(ClauseKind::Window, w.span, passed, Some(&Value::Int(n)));
                if !passed {
                    return Ok(Outcome::Stopped);
                }
                let [count, distinct, first, last] = w.locals;
                env[count.0 as usize] = Value::Int(a.count);
                env[distinct.0 as usize] = Value::Int(a.distinct);
                env[first.0 as usize] = Value::Timestamp(a.first);
                env[last.0 as usize] = Value::Timestamp(a.last);
            }
            Step::After(a) => {
                let t = event_time(interp, a.time, a.span)?;
                let key = join_key(a.join.iter().map(|(_, l)| &env[l.0 as usize]));
                let Some(json) = interp.db.after(&rule.name, a.slot, &key, t, a.duration)? else {
                    obs.clause(ClauseKind::After, a.span, false, None);
                    return Ok(Outcome::Stopped);
                };
                obs.clause(ClauseKind::After, a.span, true, None);
                let prev = prev_value(interp.program, a, &json);
                for (local, path) in &a.binds {
                    let mut v = prev.clone();
                    for seg in interp.program.path(*path) {
                        v = v.get(seg);
                    }
                    env[local.0 as usize] = v;
                }
                if let Some(p) = a.prev {
                    env[p.0 as usize] = prev;
                }
            }
            Step::Throttle(th) => {
                let t = event_time(interp, th.time, th.span)?;
                let key = state_key(interp, &th.keys, env)?;
                let Some(suppressed) = interp.db.throttle(&rule.name, th.slot, &key, t, th.duration)? else {
                    obs.clause(ClauseKind::Throttle, th.span, false, None);
                    return Ok(Outcome::Stopped);
                };
                obs.clause(ClauseKind::Throttle, th.span, true, Some(&Value::Int(suppressed)));
                env[th.suppressed.0 as usize] = Value::Int(suppressed);
                out.throttled.push((th.slot, key, t));
            }
        }
    }
    let mut exec = Exec { interp, out };
    exec.block(&rule.actions, env)?;
    interp.db.flush()?;
    Ok(Outcome::Fired)
}

impl Interp<'_> {
    pub fn eval(&self, e: &Expr, env: &Env) -> Result<Value, RuntimeError> {
        self.eval_inner(e, env).map_err(|err| err.at(e.span))
    }

    fn eval_inner(&self, e: &Expr, env: &Env) -> Result<Value, RuntimeError> {
        Ok(match &e.kind {
            ExprKind::Lit(v) => v.clone(),
            ExprKind::Event(p) => self.event.path(*p)?,
            ExprKind::Local(l) => env[l.0 as usize].clone(),
            // `get` is absent on anything but an object: a path through a
            // missing, null or non-object value yields absent.
            ExprKind::Field { base, name } => self.eval(base, env)?.get(name),
            ExprKind::Column { base, field, .. } => match self.eval(base, env)? {
                Value::Entity(row) => match field {
                    FieldRef::Key => row.key.clone(),
                    FieldRef::Field(i) => row.fields[*i].clone(),
                },
                _ => Value::Absent,
            },
            ExprKind::Related { base, entity, field, .. } => match self.eval(base, env)? {
                Value::Entity(row) => {
                    let rows = self.db.related(*entity, &row.key, *field)?;
                    Value::list(rows.into_iter().map(Value::Entity).collect())
                }
                _ => Value::Absent,
            },
            ExprKind::Index { base, index } => {
                let b = self.eval(base, env)?;
                let i = self.eval(index, env)?;
                match (&b, &i) {
                    (Value::List(items), Value::Int(i)) => {
                        usize::try_from(*i).ok().and_then(|i| items.get(i)).cloned().unwrap_or(Value::Absent)
                    }
                    (Value::Object(_), Value::Str(k)) => b.get(k),
                    _ => Value::Absent,
                }
            }
            ExprKind::List(items) => {
                Value::list(items.iter().map(|i| self.eval(i, env)).collect::<Result<Vec<_>, _>>()?)
            }
            ExprKind::Object(entries) => {
                let mut fields = Vec::with_capacity(entries.len());
                for (k, x) in entries {
                    // An absent value leaves its key out, as `set` does with
                    // an absent value: the JSON has no "absent".
                    match self.eval(x, env)? {
                        Value::Absent => {}
                        v => fields.push((Arc::from(k.as_str()), v)),
                    }
                }
                Value::Object(Arc::new(fields))
            }
            ExprKind::Coalesce(a, b) => match self.eval(a, env)? {
                Value::Absent | Value::Null => self.eval(b, env)?,
                v => v,
            },
            ExprKind::Project { base, step, flatten } => match self.eval(base, env)? {
                Value::List(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items.iter() {
                        match self.project(item, step)? {
                            Value::Absent | Value::Null => {}
                            // Flattened one level when the field is typed as a
                            // list: `groups.users` is a list of users (absent
                            // items skipped too); an `any` value that happens
                            // to be a list stays one item.
                            Value::List(inner) if *flatten => {
                                out.extend(inner.iter().filter(|v| !v.is_nullish()).cloned())
                            }
                            v => out.push(v),
                        }
                    }
                    Value::list(out)
                }
                _ => Value::Absent,
            },
            ExprKind::Interp(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        InterpPart::Text(t) => s.push_str(t),
                        InterpPart::Expr(x) => self.eval(x, env)?.write_text(&mut s, Some(&self.program.schema)),
                    }
                }
                Value::str(&s)
            }
            ExprKind::Not(x) => Value::Bool(!self.bool(x, env)?),
            ExprKind::Neg(x) => ops::negate(&self.eval(x, env)?)?,
            ExprKind::And(a, b) => Value::Bool(self.bool(a, env)? && self.bool(b, env)?),
            ExprKind::Or(a, b) => Value::Bool(self.bool(a, env)? || self.bool(b, env)?),
            ExprKind::Cmp { op, lhs, rhs } => {
                let l = self.eval(lhs, env)?;
                let r = self.eval(rhs, env)?;
                Value::Bool(ops::compare(*op, &l, &r))
            }
            ExprKind::IsNull { operand, negated } => {
                let v = self.eval(operand, env)?;
                Value::Bool(v.is_nullish() != *negated)
            }
            ExprKind::Arith { op, lhs, rhs } => {
                let l = self.eval(lhs, env)?;
                let r = self.eval(rhs, env)?;
                ops::arith(*op, &l, &r)?
            }
            ExprKind::In { elem, container } => {
                let x = self.eval(elem, env)?;
                let c = self.eval(container, env)?;
                Value::Bool(ops::contains(&c, &x))
            }
            ExprKind::Call { func, args } => self.call(func, args, env)?,
            ExprKind::Lookup { entity, key } => {
                let k = self.eval(key, env)?;
                match self.db.lookup(*entity, &k)? {
                    Some(row) => Value::Entity(row),
                    None => Value::Absent,
                }
            }
            ExprKind::LookupMany { entity, keys } => match self.eval(keys, env)? {
                Value::Absent | Value::Null => Value::Absent,
                Value::List(ks) => {
                    let rows = self.db.lookup_many(*entity, &ks)?;
                    Value::list(rows.into_iter().map(Value::Entity).collect())
                }
                other => return Err(ops::type_error("a list of keys", &other)),
            },
            ExprKind::Query { kind, entity, filter } => {
                let mut eval = |x: &Expr| self.eval(x, env);
                self.db.query(*kind, *entity, filter.as_deref(), &mut eval)?
            }
            ExprKind::Row { .. } => {
                return Err(RuntimeError::new(
                    Code::StoreFailure,
                    "internal error: a query filter field was evaluated outside its query",
                ))
            }
        })
    }

    /// One element's field for a projection; absent for an element of the
    /// wrong shape (absent, null), as the single-value reads are.
    fn project(&self, item: &Value, step: &Projection) -> Result<Value, RuntimeError> {
        Ok(match (step, item) {
            (Projection::Field(name), v) => v.get(name),
            (Projection::Column(FieldRef::Key), Value::Entity(row)) => row.key.clone(),
            (Projection::Column(FieldRef::Field(i)), Value::Entity(row)) => row.fields[*i].clone(),
            (Projection::Related { entity, field }, Value::Entity(row)) => {
                let rows = self.db.related(*entity, &row.key, *field)?;
                Value::list(rows.into_iter().map(Value::Entity).collect())
            }
            _ => Value::Absent,
        })
    }

    pub(crate) fn bool(&self, e: &Expr, env: &Env) -> Result<bool, RuntimeError> {
        match self.eval(e, env)? {
            Value::Bool(b) => Ok(b),
            other => Err(ops::type_error("a bool", &other).at(e.span)),
        }
    }

    fn call(&self, func: &Builtin, args: &[Expr], env: &Env) -> Result<Value, RuntimeError> {
        let vals = args.iter().map(|a| self.eval(a, env)).collect::<Result<Vec<_>, _>>()?;
        let cx = EvalCx { schema: &self.program.schema, now: self.now };
        (builtins::def(func).eval)(func, &vals, &cx)
    }
}

struct Exec<'a, 'b> {
    interp: &'a Interp<'b>,
    out: &'a mut RuleEffects,
}

impl Exec<'_, '_> {
    fn block(&mut self, stmts: &[Stmt], env: &mut Env) -> Result<(), RuntimeError> {
        for s in stmts {
            self.stmt(s, env).map_err(|e| e.at(s.span()))?;
        }
        Ok(())
    }

    fn text(&self, e: &Expr, env: &Env) -> Result<String, RuntimeError> {
        Ok(self.interp.eval(e, env)?.to_text(Some(&self.interp.program.schema)))
    }

    fn stmt(&mut self, s: &Stmt, env: &mut Env) -> Result<(), RuntimeError> {
        let db = self.interp.db;
        let schema = &self.interp.program.schema;
        match s {
            Stmt::Notify { to, body, severity, span } => {
                let to_v = self.interp.eval(to, env)?;
                let body = self.text(body, env)?;
                let recipient = schema
                    .recipient
                    .ok_or_else(|| RuntimeError::new(Code::StoreFailure, "the schema has no recipient entity"))?;
                let mut keys: Vec<Value> = Vec::new();
                let mut add = |v: &Value| -> Result<(), RuntimeError> {
                    let key = match v {
                        Value::Absent | Value::Null => return Ok(()),
                        Value::Entity(row) if row.entity == recipient => row.key.clone(),
                        Value::Int(_) | Value::Str(_) | Value::Uuid(_) | Value::Float(_) => v.clone(),
                        other => return Err(ops::type_error("a recipient or its key", other).at(to.span)),
                    };
                    if !keys.iter().any(|k| ops::deep_eq(k, &key)) {
                        keys.push(key);
                    }
                    Ok(())
                };
                match &to_v {
                    Value::List(items) => items.iter().try_for_each(&mut add)?,
                    v => add(v)?,
                }
                self.out.effects.push(Effect::Notify { recipients: keys, severity: *severity, body, span: *span });
            }
            Stmt::SendEmail { to, subject, body, cc, bcc, span } => {
                // Addresses and the subject are validated when the effect is
                // checked, outside the interpreter.
                let to = self.addresses(to, env)?;
                let cc = cc.as_ref().map(|e| self.addresses(e, env)).transpose()?;
                let bcc = bcc.as_ref().map(|e| self.addresses(e, env)).transpose()?;
                let subject_text = self.text(subject, env)?;
                let body = self.text(body, env)?;
                self.out.effects.push(Effect::SendEmail {
                    to,
                    cc,
                    bcc,
                    subject: subject_text,
                    subject_span: subject.span,
                    body,
                    span: *span,
                });
            }
            Stmt::Log { message, level, span } => {
                let message = self.text(message, env)?;
                self.out.effects.push(Effect::Log { level: *level, message, span: *span });
            }
            Stmt::Webhook { url, body, headers, method, span } => {
                // The URL and the headers are validated when the effect is
                // checked, outside the interpreter.
                let url_text = self.text(url, env)?;
                let (body_text, body_is_text) = match self.interp.eval(body, env)? {
                    Value::Str(s) => (s.to_string(), true),
                    v => (v.to_json(Some(schema)).to_string(), false),
                };
                let mut pairs = Vec::new();
                if let Some(h) = headers {
                    match self.interp.eval(h, env)? {
                        Value::Absent | Value::Null => {}
                        Value::Object(fields) => {
                            for (k, v) in fields.iter() {
                                match v {
                                    Value::Absent | Value::Null => {}
                                    Value::Str(s) => pairs.push((k.to_string(), s.to_string())),
                                    other => return Err(ops::type_error("a string (a header value)", other).at(h.span)),
                                }
                            }
                        }
                        other => return Err(ops::type_error("an object of header strings", &other).at(h.span)),
                    }
                }
                self.out.effects.push(Effect::Webhook {
                    url: url_text,
                    url_span: url.span,
                    method: *method,
                    headers: pairs,
                    headers_span: headers.as_ref().map_or(*span, |h| h.span),
                    body: body_text,
                    body_is_text,
                    span: *span,
                });
            }
            Stmt::Set { place, value, .. } => {
                let v = self.interp.eval(value, env)?;
                let key = self.row_key(place.local, env)?;
                let new = db.set_field(place.entity, &key, place.field, &place.path, &v)?;
                self.refresh(place.local, place.field, new, env);
                self.out.writes += 1;
            }
            Stmt::Append { place, value, .. } => {
                let v = self.interp.eval(value, env)?;
                let key = self.row_key(place.local, env)?;
                // Drop the snapshot's copy of the column first: the store
                // extends its own copy in place, which a second reference
                // would turn into a copy of the whole list per append.
                self.refresh(place.local, place.field, Value::Absent, env);
                let new = db.append(place.entity, &key, place.field, &place.path, &v)?;
                self.refresh(place.local, place.field, new, env);
                self.out.writes += 1;
            }
            Stmt::Remove { place, .. } => {
                let key = self.row_key(place.local, env)?;
                let new = db.remove(place.entity, &key, place.field, &place.path)?;
                self.refresh(place.local, place.field, new, env);
                self.out.writes += 1;
            }
            Stmt::Upsert { entity, key, fields, .. } => {
                let k = self.interp.eval(key, env)?;
                let vals = fields
                    .iter()
                    .map(|f| Ok((f.field, self.interp.eval(&f.value, env).map_err(|e| e.at(f.span))?)))
                    .collect::<Result<Vec<_>, RuntimeError>>()?;
                let row = db.upsert(*entity, &k, &vals)?;
                // Bindings holding this row see the upsert, as they see a
                // `set` through them.
                for v in env.iter_mut() {
                    if let Value::Entity(r) = v {
                        if r.entity == *entity && ops::deep_eq(&r.key, &row.key) {
                            *v = Value::Entity(row.clone());
                        }
                    }
                }
                self.out.writes += 1;
            }
            Stmt::Delete { entity, key, .. } => {
                let k = self.interp.eval(key, env)?;
                // A binding holding the deleted row keeps its values (a
                // snapshot, so `log("deleted {u.name}")` still works after
                // `delete User[u.pk]`); a write through it is an error (no row).
                if db.delete(*entity, &k)? {
                    self.out.writes += 1;
                }
            }
            Stmt::Link { place, value, add, .. } => {
                let v = self.interp.eval(value, env)?;
                let key = self.row_key(place.local, env)?;
                let items = match &v {
                    Value::List(items) => items.clone(),
                    one => Arc::new(vec![one.clone()]),
                };
                for item in items.iter() {
                    // An absent element (a key that is not there) links nothing.
                    if item.is_nullish() {
                        continue;
                    }
                    db.link(place.entity, &key, place.field, item, *add).map_err(|e| e.at(value.span))?;
                    self.out.writes += 1;
                }
            }
            Stmt::For { var, iter, body, .. } => match self.interp.eval(iter, env)? {
                Value::Absent | Value::Null => {}
                Value::List(items) => {
                    for item in items.iter() {
                        env[var.0 as usize] = item.clone();
                        self.block(body, env)?;
                    }
                }
                other => return Err(ops::type_error("a list", &other).at(iter.span)),
            },
            Stmt::If { cond, then, else_, .. } => {
                if self.interp.bool(cond, env)? {
                    self.block(then, env)?;
                } else {
                    self.block(else_, env)?;
                }
            }
        }
        Ok(())
    }

    /// Email addresses from a string or a list of strings (absent and null
    /// items skipped), as written: validation is the effect check's.
    fn addresses(&self, e: &Expr, env: &Env) -> Result<Addresses, RuntimeError> {
        let v = self.interp.eval(e, env)?;
        let mut out = Vec::new();
        let mut one = |v: &Value| -> Result<(), RuntimeError> {
            match v {
                Value::Absent | Value::Null => Ok(()),
                Value::Str(s) => {
                    out.push(s.to_string());
                    Ok(())
                }
                other => Err(ops::type_error("an email address", other).at(e.span)),
            }
        };
        match &v {
            Value::List(items) => items.iter().try_for_each(&mut one)?,
            v => one(v)?,
        }
        Ok(Addresses { list: out, span: e.span })
    }

    fn row_key(&self, local: LocalId, env: &Env) -> Result<Value, RuntimeError> {
        match &env[local.0 as usize] {
            Value::Entity(row) => Ok(row.key.clone()),
            other => Err(ops::type_error("an entity row", other)),
        }
    }

    /// Keep the binding's row snapshot in step with the store.
    fn refresh(&self, local: LocalId, field: usize, new: Value, env: &mut Env) {
        if let Value::Entity(row) = &mut env[local.0 as usize] {
            Arc::make_mut(row).fields[field] = new;
        }
    }
}
