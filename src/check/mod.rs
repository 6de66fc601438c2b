//! The type checker: AST + schema -> typed IR ([`crate::ir::Program`]).
//!
//! It never stops at the first error: every clause and expression is
//! checked, a failed expression gets [`Ty::Error`] (which fits everything),
//! so each mistake is reported once and never again through its
//! consequences. Pure: no IO, no SQLite.

mod errors;
mod expr;
mod stmt;
mod test;

pub use errors::CheckError;
pub(crate) use expr::comparable;

/// The built-in function `name` names, exactly or by a name other
/// languages use for it (`length` for `len`), for help texts outside the
/// checker (a method call found by the parser).
pub(crate) fn builtin_function(name: &str) -> Option<&'static str> {
    crate::builtins::function(name).map(|d| d.name).or_else(|| crate::builtins::function_alias(name))
}

use crate::diag::{suggest, Diagnostic};
use crate::ir::{self, CmpOp, Expr, ExprKind, LocalId, MatchEvents, PathId, Program, RuleId};
use crate::schema::Schema;
use crate::span::Span;
use crate::syntax::ast;
use crate::types::{EntityId, RecordId, Ty, TyDisplay};
use crate::value::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The checker's output: a program (complete when `diagnostics` has no
/// errors) and every diagnostic found.
pub struct Checked {
    pub program: Program,
    /// The `test` items, checked (only `herald test` runs them).
    pub tests: Vec<ir::Test>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Check every rule and const of `files` against `schema`.
pub fn check(schema: Arc<Schema>, files: &[&ast::File]) -> Checked {
    let mut c = Checker {
        schema: &schema,
        errors: Vec::new(),
        consts: HashMap::new(),
        paths: HashMap::new(),
        path_list: Vec::new(),
    };
    let items: Vec<&ast::Item> = files.iter().flat_map(|f| f.items.iter()).collect();

    for item in &items {
        if let ast::Item::Const(k) = item {
            c.const_decl(k);
        }
    }
    let mut rules = Vec::new();
    let mut names: HashMap<&str, Span> = HashMap::new();
    for item in &items {
        if let ast::Item::Rule(r) = item {
            if let Some(first) = names.get(r.name.name.as_str()) {
                c.errors.push(CheckError::DuplicateRule {
                    span: r.name.span,
                    name: r.name.name.clone(),
                    first: *first,
                });
            } else {
                names.insert(&r.name.name, r.name.span);
            }
            let id = RuleId(rules.len() as u32);
            rules.push(c.rule(r, id));
        }
    }
    let rule_names: Vec<&str> = rules.iter().map(|r: &ir::Rule| r.name.as_str()).collect();
    let mut tests = Vec::new();
    for item in &items {
        if let ast::Item::Test(t) = item {
            tests.push(c.test(t, &rule_names));
        }
    }
    let diagnostics = c.errors.iter().map(CheckError::to_diagnostic).collect();
    let program = Program { schema: schema.clone(), rules, paths: c.path_list, sources: Arc::default() };
    Checked { program, tests, diagnostics }
}

struct ConstInfo {
    value: Value,
    ty: Ty,
    span: Span,
}

pub(crate) struct Checker<'s> {
    schema: &'s Schema,
    errors: Vec<CheckError>,
    consts: HashMap<String, ConstInfo>,
    paths: HashMap<Vec<String>, PathId>,
    path_list: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Match,
    Body,
}

/// What a binding is, for the unused-binding warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalKind {
    Pattern,
    Let,
    For,
    /// `window.count`, `throttle.suppressed`: never reported unused.
    State,
}

/// Per-rule checking context.
pub(crate) struct RuleCx {
    phase: Phase,
    /// The records `event` paths are typed against: one per event type of
    /// the `match` (the common record for `match any`).
    events: Vec<(String, RecordId)>,
    /// True when the match named no known event type: `event` paths are
    /// then unknowable, and reported nowhere (the match was reported).
    events_unknown: bool,
    locals: Vec<ir::Local>,
    kinds: Vec<LocalKind>,
    used: Vec<bool>,
    scopes: Vec<Vec<(String, LocalId)>>,
    /// Set while checking a query filter over this entity.
    filter: Option<EntityId>,
    /// Set while checking an `after` clause's patterns and `where` (its
    /// pure part, in the `Match` phase): diagnostics name that clause.
    in_after: bool,
}

impl RuleCx {
    fn lookup(&self, name: &str) -> Option<LocalId> {
        self.scopes.iter().rev().flat_map(|s| s.iter().rev()).find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    fn names(&self) -> Vec<String> {
        self.scopes.iter().flat_map(|s| s.iter().map(|(n, _)| n.clone())).collect()
    }
}

/// A type expectation passed down to expressions whose type depends on use:
/// `User[k]` with a `k` of type `any` is one row, or a list of rows where a
/// list is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    None,
    List,
}

impl<'s> Checker<'s> {
    fn show(&self, ty: &Ty) -> String {
        TyDisplay { ty, schema: self.schema }.to_string()
    }

    fn intern_path(&mut self, path: Vec<String>) -> PathId {
        if let Some(id) = self.paths.get(&path) {
            return *id;
        }
        let id = PathId(self.path_list.len() as u32);
        self.path_list.push(path.clone());
        self.paths.insert(path, id);
        id
    }

    fn const_decl(&mut self, k: &ast::ConstDecl) {
        if let Some(first) = self.consts.get(&k.name.name) {
            self.errors.push(CheckError::DuplicateConst {
                span: k.name.span,
                name: k.name.name.clone(),
                first: first.span,
            });
            return;
        }
        let (value, ty) = match const_literal(&k.value) {
            Ok(v) => v,
            Err(problem) => {
                match problem {
                    ConstProblem::NotLiteral => {
                        self.errors.push(CheckError::ConstNotLiteral { span: k.value.span, name: k.name.name.clone() })
                    }
                    // Already reported by the parser: one error is enough.
                    ConstProblem::Broken => {}
                    ConstProblem::Mixed { span, first, first_span, found } => {
                        let (first, found) = (self.show(&first), self.show(&found));
                        self.errors.push(CheckError::MixedList { span, first, found, first_span });
                    }
                    ConstProblem::DuplicateKey { span, key, first } => {
                        self.errors.push(CheckError::DuplicateObjectKey { span, key, first })
                    }
                    ConstProblem::KeyInterpolated { span } => {
                        self.errors.push(CheckError::ObjectKeyInterpolated { span })
                    }
                }
                (Value::Null, Ty::Error)
            }
        };
        self.consts.insert(k.name.name.clone(), ConstInfo { value, ty, span: k.name.span });
    }

    fn new_local(&mut self, cx: &mut RuleCx, name: &ast::Ident, ty: Ty, kind: LocalKind) -> LocalId {
        if let Some(prev) = cx.lookup(&name.name) {
            let first = cx.locals[prev.0 as usize].span;
            self.errors.push(CheckError::DuplicateBinding { span: name.span, name: name.name.clone(), first });
        }
        let id = LocalId(cx.locals.len() as u32);
        cx.locals.push(ir::Local { name: name.name.clone(), ty, span: name.span });
        cx.kinds.push(kind);
        cx.used.push(false);
        cx.scopes.last_mut().expect("a scope is open").push((name.name.clone(), id));
        id
    }

    /// The path of the schema's `time` field, or E0601 at a stateful
    /// clause's keyword.
    fn event_time(&mut self, keyword: Span, clause: &'static str) -> Option<PathId> {
        match self.schema.time.clone() {
            Some(field) => Some(self.intern_path(vec![field])),
            None => {
                self.errors.push(CheckError::NoEventTime { span: keyword, clause });
                None
            }
        }
    }

    fn state_keys(&mut self, keys: &[ast::Expr], cx: &mut RuleCx) -> Vec<Expr> {
        keys.iter()
            .map(|k| {
                let e = self.expr(k, cx, Hint::None);
                self.require_scalar(&e, "a `by` key");
                e
            })
            .collect()
    }

    /// Keys and `distinct` values are single values (E0603): a record or a
    /// list has no one identity to group or count by.
    fn require_scalar(&mut self, e: &Expr, what: &'static str) {
        if matches!(e.ty.unwrap_optional(), Ty::Record(_) | Ty::List(_) | Ty::Null) {
            self.errors.push(CheckError::DistinctNotComparable { span: e.span, found: self.show(&e.ty), what });
        }
    }

    /// A stateful clause's duration in nanoseconds; E0604 for zero.
    fn clause_duration(&mut self, d: &ast::DurationLit, clause: &'static str) -> Option<i128> {
        match d.nanos {
            Some(0) => {
                self.errors.push(CheckError::ZeroDuration { span: d.span, clause });
                None
            }
            other => other,
        }
    }

    /// A name bound by a stateful clause (`window.count`). A later clause
    /// of the same kind binds it again: the newest one is in scope.
    fn state_local(&mut self, cx: &mut RuleCx, name: &str, ty: Ty, span: Span) -> LocalId {
        let id = LocalId(cx.locals.len() as u32);
        cx.locals.push(ir::Local { name: name.to_string(), ty, span });
        cx.kinds.push(LocalKind::State);
        cx.used.push(false);
        cx.scopes.last_mut().expect("a scope is open").push((name.to_string(), id));
        id
    }

    fn rule(&mut self, r: &ast::RuleDecl, id: RuleId) -> ir::Rule {
        let errors_before = self.errors.len();
        let mut cx = RuleCx {
            phase: Phase::Match,
            events: Vec::new(),
            events_unknown: false,
            locals: Vec::new(),
            kinds: Vec::new(),
            used: Vec::new(),
            scopes: vec![Vec::new()],
            filter: None,
            in_after: false,
        };

        // Clause order: match, then let/guard, then action.
        let mut first_match: Option<&ast::MatchClause> = None;
        let mut last_kind: Option<(&'static str, Span)> = None;
        let mut first_action: Option<Span> = None;
        for clause in &r.clauses {
            let kind = clause_kind(clause);
            match clause {
                ast::Clause::Match(m) => {
                    if let Some(first) = first_match {
                        self.errors.push(CheckError::DuplicateMatch { span: m.keyword, first: first.keyword });
                        continue;
                    }
                    first_match = Some(m);
                    if let Some((after, after_span)) = last_kind {
                        self.errors.push(CheckError::ClauseOrder {
                            span: m.keyword,
                            clause: "match",
                            after,
                            after_span,
                        });
                    }
                }
                ast::Clause::Action { span, .. } => {
                    first_action.get_or_insert(*span);
                }
                _ => {
                    if let Some(action) = first_action {
                        self.errors.push(CheckError::ClauseOrder {
                            span: keyword_span(clause),
                            clause: kind,
                            after: "action",
                            after_span: keyword_at(action, 6),
                        });
                    }
                }
            }
            if !matches!(clause, ast::Clause::Match(_)) && last_kind.is_none() {
                last_kind = Some((kind, keyword_span(clause)));
            }
        }

        let matcher = match first_match {
            Some(m) => self.match_clause(m, &mut cx),
            None => {
                self.errors.push(CheckError::MissingMatch { span: r.name.span, rule: r.name.name.clone() });
                cx.events_unknown = true;
                ir::Match {
                    events: MatchEvents::Types(vec![]),
                    cond: Expr::lit(Value::Bool(true), Ty::Bool, r.name.span),
                    bindings: vec![],
                    span: r.name.span,
                }
            }
        };

        cx.phase = Phase::Body;
        let mut steps = Vec::new();
        let mut next_slot = 0u32;
        let mut actions = Vec::new();
        for clause in &r.clauses {
            match clause {
                ast::Clause::Match(_) => {}
                ast::Clause::Let { name, value, span } => {
                    let value = self.expr(value, &mut cx, Hint::None);
                    let local = self.new_local(&mut cx, name, value.ty.clone(), LocalKind::Let);
                    steps.push(ir::Step::Let { local, value, span: *span });
                }
                ast::Clause::GuardLet { name, value, span } => {
                    let value = self.expr(value, &mut cx, Hint::None);
                    let ty = match &value.ty {
                        Ty::Optional(inner) => (**inner).clone(),
                        Ty::Any | Ty::Error | Ty::Null => value.ty.clone(),
                        other => {
                            self.errors
                                .push(CheckError::GuardLetNotOptional { span: value.span, found: self.show(other) });
                            other.clone()
                        }
                    };
                    let local = self.new_local(&mut cx, name, ty, LocalKind::Let);
                    steps.push(ir::Step::GuardLet { local, value, span: *span });
                }
                ast::Clause::Guard { cond, span } => {
                    let cond = self.condition(cond, &mut cx, "guard");
                    steps.push(ir::Step::Guard { cond, span: *span });
                }
                ast::Clause::Window { duration, keys, test, keyword, span } => {
                    let slot = ir::StateSlot { clause: next_slot };
                    next_slot += 1;
                    let time = self.event_time(*keyword, "window");
                    let duration = self.clause_duration(duration, "window");
                    let keys = self.state_keys(keys, &mut cx);
                    let distinct = test.distinct.as_ref().map(|d| {
                        let e = self.expr(d, &mut cx, Hint::None);
                        self.require_scalar(&e, "a `distinct` value");
                        e
                    });
                    let op = match test.op {
                        ast::BinOp::Eq => CmpOp::Eq,
                        ast::BinOp::Ne => CmpOp::Ne,
                        ast::BinOp::Lt => CmpOp::Lt,
                        ast::BinOp::Le => CmpOp::Le,
                        ast::BinOp::Gt => CmpOp::Gt,
                        _ => CmpOp::Ge,
                    };
                    // The grammar admits only an unsigned integer literal here.
                    let limit = match test.limit.kind {
                        ast::ExprKind::Int(i) => i,
                        _ => 0,
                    };
                    let names = ["count", "distinct", "first", "last"];
                    let tys = [Ty::Int, Ty::Int, Ty::Timestamp, Ty::Timestamp];
                    let locals = std::array::from_fn(|i| {
                        self.state_local(&mut cx, &format!("window.{}", names[i]), tys[i].clone(), *keyword)
                    });
                    if let (Some(time), Some(duration)) = (time, duration) {
                        steps.push(ir::Step::Window(ir::WindowStep {
                            slot,
                            time,
                            duration,
                            keys,
                            distinct,
                            op,
                            limit,
                            locals,
                            span: *span,
                        }));
                    }
                }
                ast::Clause::Throttle { duration, keys, keyword, span } => {
                    let slot = ir::StateSlot { clause: next_slot };
                    next_slot += 1;
                    let time = self.event_time(*keyword, "throttle");
                    let duration = self.clause_duration(duration, "throttle");
                    let keys = self.state_keys(keys, &mut cx);
                    let suppressed = self.state_local(&mut cx, "throttle.suppressed", Ty::Int, *keyword);
                    if let (Some(time), Some(duration)) = (time, duration) {
                        steps.push(ir::Step::Throttle(ir::ThrottleStep {
                            slot,
                            time,
                            duration,
                            keys,
                            suppressed,
                            span: *span,
                        }));
                    }
                }
                ast::Clause::After(a) => {
                    let slot = ir::StateSlot { clause: next_slot };
                    next_slot += 1;
                    if let Some(step) = self.after_clause(a, slot, &mut cx) {
                        steps.push(ir::Step::After(step));
                    }
                }
                ast::Clause::Action { body, .. } => {
                    for s in body {
                        if let Some(s) = self.stmt(s, &mut cx) {
                            actions.push(s);
                        }
                    }
                }
            }
        }

        self.writes_after_delete(&actions, &cx.locals, &mut Vec::new());

        // In a rule with errors, a binding is often unused only because the
        // expression meant to use it is broken (`User[pkk]`): say nothing.
        let rule_has_errors = self.errors[errors_before..].iter().any(CheckError::is_error);
        for (i, local) in cx.locals.iter().enumerate() {
            if !rule_has_errors
                && !cx.used[i]
                && !matches!(cx.kinds[i], LocalKind::For | LocalKind::State)
                && !local.name.starts_with('_')
            {
                self.errors.push(CheckError::UnusedBinding { span: local.span, name: local.name.clone() });
            }
        }

        ir::Rule {
            id,
            name: r.name.name.clone(),
            name_span: r.name.span,
            span: r.span,
            matcher,
            steps,
            actions,
            locals: cx.locals,
        }
    }

    /// `after TYPE [as NAME] [{ PATTERNS }] [where E] within D`. The clause's
    /// patterns and `where` are checked like a `match` of `TYPE` in a scope
    /// of their own (they see the earlier event, never the current one);
    /// then each binding name the rule already has becomes part of the
    /// join key, and every other binding (and `as NAME`) enters the rule's
    /// scope, bound from the qualifying earlier event.
    fn after_clause(&mut self, a: &ast::AfterClause, slot: ir::StateSlot, cx: &mut RuleCx) -> Option<ir::AfterStep> {
        let time = self.event_time(a.keyword, "after");
        let duration = self.clause_duration(&a.duration, "within");
        let m = ast::MatchClause {
            target: ast::MatchTarget::Types(vec![a.event.clone()]),
            patterns: a.patterns.clone(),
            where_: a.where_.clone(),
            keyword: a.keyword,
            span: a.span,
        };
        let outer_scopes = std::mem::replace(&mut cx.scopes, vec![Vec::new()]);
        let outer_events = std::mem::take(&mut cx.events);
        let outer_unknown = std::mem::replace(&mut cx.events_unknown, false);
        // Pure, like `match`: the recorder evaluates it as events go by.
        cx.phase = Phase::Match;
        cx.in_after = true;
        let matcher = self.match_clause(&m, cx);
        cx.in_after = false;
        let record = cx.events.first().map(|(_, r)| *r);
        cx.phase = Phase::Body;
        cx.scopes = outer_scopes;
        cx.events = outer_events;
        cx.events_unknown = outer_unknown;

        let mut join = Vec::new();
        let mut binds = Vec::new();
        for &(local, path) in &matcher.bindings {
            let name = cx.locals[local.0 as usize].name.clone();
            match cx.lookup(&name) {
                Some(outer) => {
                    cx.used[outer.0 as usize] = true;
                    cx.used[local.0 as usize] = true;
                    join.push((path, outer));
                }
                None => {
                    cx.scopes.last_mut().expect("a scope is open").push((name, local));
                    binds.push((local, path));
                }
            }
        }
        let prev = a.as_.as_ref().map(|n| {
            let clash = cx.lookup(&n.name);
            if let Some(first) = clash {
                let first = cx.locals[first.0 as usize].span;
                self.errors.push(CheckError::AfterNameClash { span: n.span, name: n.name.clone(), first });
            }
            let ty = record.map_or(Ty::Error, Ty::Record);
            let id = LocalId(cx.locals.len() as u32);
            cx.locals.push(ir::Local { name: n.name.clone(), ty, span: n.span });
            cx.kinds.push(LocalKind::Let);
            // Not reported as unused: naming the earlier event is
            // documentation even when nothing reads it.
            cx.used.push(true);
            // On a clash the earlier binding stays in scope, so its uses
            // are not reported a second time as being of the event's type.
            if clash.is_none() {
                cx.scopes.last_mut().expect("a scope is open").push((n.name.clone(), id));
            }
            id
        });
        let whole = self.intern_path(vec![]);
        let event = match &matcher.events {
            MatchEvents::Types(ids) => ids.first().copied(),
            MatchEvents::Any => None,
        };
        Some(ir::AfterStep {
            slot,
            time: time?,
            duration: duration?,
            event: event?,
            matcher,
            join,
            binds,
            prev,
            whole,
            span: a.span,
        })
    }

    fn match_clause(&mut self, m: &ast::MatchClause, cx: &mut RuleCx) -> ir::Match {
        let events = match &m.target {
            ast::MatchTarget::Any(_) => {
                match self.schema.common {
                    Some(r) => cx.events.push(("any event".into(), r)),
                    None => cx.events_unknown = true,
                }
                MatchEvents::Any
            }
            ast::MatchTarget::Types(names) => {
                let mut ids = Vec::new();
                let mut seen: Vec<(&str, Span)> = Vec::new();
                for n in names {
                    if let Some((_, first)) = seen.iter().find(|(s, _)| *s == n.name) {
                        self.errors.push(CheckError::DuplicateMatchType {
                            span: n.span,
                            name: n.name.clone(),
                            first: *first,
                        });
                        continue;
                    }
                    seen.push((&n.name, n.span));
                    match self.schema.event_by_name(&n.name) {
                        Some(id) => {
                            ids.push(id);
                            cx.events.push((n.name.clone(), self.schema.event(id).record));
                        }
                        None => {
                            let suggestion = suggest(&n.name, self.schema.event_names());
                            self.errors.push(CheckError::UnknownEventType {
                                span: n.span,
                                name: n.name.clone(),
                                suggestion,
                            });
                        }
                    }
                }
                if cx.events.is_empty() {
                    cx.events_unknown = true;
                }
                MatchEvents::Types(ids)
            }
        };

        let mut conds = Vec::new();
        let mut bindings = Vec::new();
        if let Some(patterns) = &m.patterns {
            if let ast::MatchTarget::Any(_) = m.target {
                let span = patterns.first().map(|p| p.span.to(patterns.last().unwrap().span)).unwrap_or(m.keyword);
                self.errors.push(CheckError::PatternOnAny { span });
            } else {
                self.patterns(patterns, &[], cx, &mut conds, &mut bindings);
            }
        }
        if let Some(w) = &m.where_ {
            conds.push(self.condition(w, cx, "where"));
        }
        let cond = conds
            .into_iter()
            .reduce(|a, b| {
                let span = a.span.to(b.span);
                Expr { kind: ExprKind::And(Box::new(a), Box::new(b)), ty: Ty::Bool, span }
            })
            .unwrap_or_else(|| Expr::lit(Value::Bool(true), Ty::Bool, m.keyword));
        ir::Match { events, cond, bindings, span: m.span }
    }

    fn patterns(
        &mut self,
        patterns: &[ast::FieldPattern],
        prefix: &[&ast::Ident],
        cx: &mut RuleCx,
        conds: &mut Vec<Expr>,
        bindings: &mut Vec<(LocalId, PathId)>,
    ) {
        for p in patterns {
            let mut path: Vec<&ast::Ident> = prefix.to_vec();
            path.extend(p.path.iter());
            let Some((pid, ty)) = self.event_path(&path, cx) else {
                // The unknown field is reported once; its bindings still
                // exist, with the error type, so their uses add nothing.
                self.error_bindings(std::slice::from_ref(p), cx);
                continue;
            };
            let path_span = p.path.first().unwrap().span.to(p.path.last().unwrap().span);
            let field = Expr { kind: ExprKind::Event(pid), ty: ty.clone(), span: path_span };
            let present = |field: Expr, span: Span| Expr {
                kind: ExprKind::IsNull { operand: Box::new(field), negated: true },
                ty: Ty::Bool,
                span,
            };
            match &p.pattern {
                ast::Pattern::Wildcard(_) => conds.push(present(field, p.span)),
                ast::Pattern::Bind(name) if !self.consts.contains_key(&name.name) => {
                    let local = self.new_local(cx, name, ty.unwrap_optional().clone(), LocalKind::Pattern);
                    bindings.push((local, pid));
                    conds.push(present(field, p.span));
                }
                ast::Pattern::Bind(_) | ast::Pattern::Literal(_) => {
                    let lit_ast = match &p.pattern {
                        ast::Pattern::Literal(e) => e.clone(),
                        ast::Pattern::Bind(name) => {
                            ast::Expr { kind: ast::ExprKind::Name(name.clone()), span: name.span }
                        }
                        _ => unreachable!("outer match covers the other patterns"),
                    };
                    let lit = self.expr(&lit_ast, cx, Hint::None);
                    // A literal of the wrong type is reported as a pattern,
                    // on the literal, before `equality` would report it as
                    // an `==` the user never wrote. (`null` is left to
                    // `equality`: it becomes a presence test.)
                    let is_null = matches!(lit.kind, ExprKind::Lit(Value::Null)) && !lit.ty.has_error();
                    let (field, lit) = if is_null { (field, lit) } else { self.coerce_pair(field, lit) };
                    let (a, b) = (field.ty.unwrap_optional(), lit.ty.unwrap_optional());
                    if !is_null && !a.has_error() && !b.has_error() && !expr::comparable(a, b) {
                        self.errors.push(CheckError::PatternType {
                            span: lit.span,
                            field_span: path_span,
                            field: path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join("."),
                            field_ty: self.show(&field.ty),
                            pattern_ty: self.show(&lit.ty),
                        });
                        continue;
                    }
                    let cond = self.equality(field, lit, p.span, false);
                    conds.push(cond);
                }
                ast::Pattern::Nested(inner, _) => {
                    match ty.unwrap_optional() {
                        Ty::Record(_) | Ty::Any | Ty::Error => {}
                        other => {
                            let last = path.last().unwrap();
                            self.errors.push(CheckError::NoFields {
                                span: inner.first().map(|i| i.span).unwrap_or(p.span),
                                field: inner
                                    .first()
                                    .and_then(|i| i.path.first())
                                    .map(|i| i.name.clone())
                                    .unwrap_or_default(),
                                ty: format!("{}` (`{}", self.show(other), last.name),
                            });
                            self.error_bindings(inner, cx);
                            continue;
                        }
                    }
                    self.patterns(inner, &path, cx, conds, bindings);
                }
            }
        }
    }

    /// Declare the names bound by patterns whose field was already
    /// reported, with the error type (which is never reported again).
    fn error_bindings(&mut self, patterns: &[ast::FieldPattern], cx: &mut RuleCx) {
        for p in patterns {
            match &p.pattern {
                ast::Pattern::Bind(name) if !self.consts.contains_key(&name.name) => {
                    self.new_local(cx, name, Ty::Error, LocalKind::Pattern);
                }
                ast::Pattern::Nested(inner, _) => self.error_bindings(inner, cx),
                ast::Pattern::Bind(_) | ast::Pattern::Wildcard(_) | ast::Pattern::Literal(_) => {}
            }
        }
    }

    /// Type a static event path against every event type of the rule.
    /// `None` after reporting when a segment is unknown.
    fn event_path(&mut self, path: &[&ast::Ident], cx: &RuleCx) -> Option<(PathId, Ty)> {
        let segs: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
        let mut result: Option<(Ty, &str)> = None;
        if cx.events_unknown {
            let pid = self.intern_path(segs.iter().map(|s| s.to_string()).collect());
            return Some((pid, Ty::Error));
        }
        for (ev_name, rec) in &cx.events {
            match self.schema.path_type(*rec, &segs) {
                Ok(ty) => match &result {
                    None => result = Some((ty, ev_name)),
                    Some((prev, prev_ev)) if !ty.has_error() && !prev.has_error() && *prev != ty => {
                        let span = path.first().unwrap().span.to(path.last().unwrap().span);
                        self.errors.push(CheckError::FieldTypeConflict {
                            span,
                            field: segs.join("."),
                            a: (prev_ev.to_string(), self.show(prev)),
                            b: (ev_name.clone(), self.show(&ty)),
                        });
                        return None;
                    }
                    Some(_) => {}
                },
                Err(i) => {
                    let parent = if i == 0 {
                        Ty::Record(*rec)
                    } else {
                        self.schema.path_type(*rec, &segs[..i]).unwrap_or(Ty::Error)
                    };
                    let candidates: Vec<String> = match parent.unwrap_optional() {
                        Ty::Record(r) => self.schema.record(*r).fields.iter().map(|f| f.name.clone()).collect(),
                        _ => vec![],
                    };
                    let owner = if i == 0 {
                        if ev_name == "any event" {
                            "`event *` (every event)".to_string()
                        } else {
                            format!("event `{ev_name}`")
                        }
                    } else {
                        let on = if ev_name == "any event" {
                            "every event".to_string()
                        } else {
                            format!("event `{ev_name}`")
                        };
                        match parent.unwrap_optional() {
                            Ty::Record(_) => format!("`{}` in {on}", segs[..i].join(".")),
                            other => {
                                self.errors.push(CheckError::NoFields {
                                    span: path[i].span,
                                    field: segs[i].to_string(),
                                    ty: self.show(other),
                                });
                                return None;
                            }
                        }
                    };
                    let suggestion = suggest(segs[i], candidates.iter().map(|s| s.as_str()));
                    self.errors.push(CheckError::UnknownField {
                        span: path[i].span,
                        field: segs[i].to_string(),
                        owner,
                        suggestion,
                    });
                    return None;
                }
            }
        }
        let ty = result.map(|(t, _)| t).unwrap_or(Ty::Error);
        let pid = self.intern_path(segs.iter().map(|s| s.to_string()).collect());
        Some((pid, ty))
    }

    /// A `where`, `guard` or `if` condition: a `bool`, not optional.
    fn condition(&mut self, e: &ast::Expr, cx: &mut RuleCx, clause: &'static str) -> Expr {
        let cond = self.expr(e, cx, Hint::None);
        self.require_bool(&cond, |found| CheckError::ConditionNotBool { span: cond.span, clause, found });
        cond
    }

    /// Report unless `e` is a plain `bool` (an optional bool gets E0202).
    fn require_bool(&mut self, e: &Expr, other: impl FnOnce(String) -> CheckError) {
        match &e.ty {
            Ty::Bool | Ty::Error | Ty::Never => {}
            Ty::Optional(inner) if **inner == Ty::Bool => self.errors.push(CheckError::OptionalValue {
                span: e.span,
                found: "bool?".into(),
                needed: "bool".into(),
                help: "compare it explicitly (`x == true` is false when absent), give it a default (`x ?? false`), or unwrap it with `guard let`".into(),
            }),
            Ty::Any => self.errors.push(CheckError::OptionalValue {
                span: e.span,
                found: "any".into(),
                needed: "bool".into(),
                help: "compare it explicitly: `x == true` is false when it is absent or not a bool".into(),
            }),
            t => {
                let found = self.show(t);
                self.errors.push(other(found));
            }
        }
    }
}

fn clause_kind(c: &ast::Clause) -> &'static str {
    match c {
        ast::Clause::Match(_) => "match",
        ast::Clause::Let { .. } => "let",
        ast::Clause::GuardLet { .. } => "guard let",
        ast::Clause::Guard { .. } => "guard",
        ast::Clause::Window { .. } => "window",
        ast::Clause::Throttle { .. } => "throttle",
        ast::Clause::After(_) => "after",
        ast::Clause::Action { .. } => "action",
    }
}

/// The span of a clause's leading keyword(s).
fn keyword_span(c: &ast::Clause) -> Span {
    let span = c.span();
    let len = match c {
        ast::Clause::Match(m) => return m.keyword,
        ast::Clause::Let { .. } => 3,
        ast::Clause::GuardLet { name, .. } => {
            // `guard let`: up to the name.
            return Span {
                file: span.file,
                start: span.start,
                end: name.span.start.saturating_sub(1).max(span.start + 5),
            };
        }
        ast::Clause::Guard { .. } => 5,
        ast::Clause::Window { keyword, .. } | ast::Clause::Throttle { keyword, .. } => return *keyword,
        ast::Clause::After(a) => return a.keyword,
        ast::Clause::Action { .. } => 6,
    };
    keyword_at(span, len)
}

fn keyword_at(span: Span, len: u32) -> Span {
    Span { file: span.file, start: span.start, end: (span.start + len).min(span.end) }
}

/// The value of a literal const: `null`, booleans, numbers and durations
/// (negative too), strings without interpolation and lists of these.
/// Why a const's value is not accepted.
enum ConstProblem {
    /// Not a literal at all (E0308).
    NotLiteral,
    /// The parser already reported a broken literal inside it.
    Broken,
    /// A list of literals of different types (E0210).
    Mixed { span: Span, first: Ty, first_span: Span, found: Ty },
    /// An object literal with a key given twice (E0124).
    DuplicateKey { span: Span, key: String, first: Span },
    /// An object key that interpolates (E0123).
    KeyInterpolated { span: Span },
}

fn const_literal(e: &ast::Expr) -> Result<(Value, Ty), ConstProblem> {
    use ConstProblem::*;
    Ok(match &e.kind {
        ast::ExprKind::Null => (Value::Null, Ty::Null),
        ast::ExprKind::Bool(b) => (Value::Bool(*b), Ty::Bool),
        ast::ExprKind::Int(i) => (Value::Int(*i), Ty::Int),
        ast::ExprKind::Float(f) => (Value::Float(*f), Ty::Float),
        ast::ExprKind::Duration(d) => (Value::Duration(*d), Ty::Duration),
        ast::ExprKind::Error => return Err(Broken),
        ast::ExprKind::Str(_) => (Value::str(&e.as_plain_str().ok_or(NotLiteral)?), Ty::String),
        ast::ExprKind::Unary { op: ast::UnOp::Neg, operand, .. } => match &operand.kind {
            ast::ExprKind::Int(i) => (Value::Int(i.checked_neg().ok_or(NotLiteral)?), Ty::Int),
            ast::ExprKind::Float(f) => (Value::Float(-f), Ty::Float),
            ast::ExprKind::Duration(d) => (Value::Duration(d.checked_neg().ok_or(NotLiteral)?), Ty::Duration),
            ast::ExprKind::Error => return Err(Broken),
            _ => return Err(NotLiteral),
        },
        ast::ExprKind::List(items) => {
            let mut values = Vec::new();
            let mut ty = Ty::Never;
            let mut first_span = e.span;
            for item in items {
                let (v, t) = const_literal(item)?;
                ty = match (&ty, &t) {
                    (Ty::Never, _) => {
                        first_span = item.span;
                        t
                    }
                    (a, b) if a == b => ty,
                    (Ty::Int, Ty::Float) | (Ty::Float, Ty::Int) => Ty::Float,
                    (Ty::Null, b) => b.clone().optional(),
                    (a, Ty::Null) => a.clone().optional(),
                    (a, b) if a.unwrap_optional() == b => ty,
                    // As in `Checker::list`: objects of different shapes make a list of `any`.
                    (Ty::Object(_), Ty::Object(_)) | (Ty::Any, Ty::Object(_)) => {
                        if ty == t {
                            ty
                        } else {
                            Ty::Any
                        }
                    }
                    _ => return Err(Mixed { span: item.span, first: ty, first_span, found: t }),
                };
                values.push(v);
            }
            (Value::list(values), ty.list())
        }
        ast::ExprKind::Object(entries) => {
            let mut fields: Vec<(std::sync::Arc<str>, Value)> = Vec::with_capacity(entries.len());
            let mut types: Vec<(String, Ty)> = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                if entry.interpolated {
                    return Err(KeyInterpolated { span: entry.key_span });
                }
                if let Some(first) = entries[..i].iter().find(|f| f.key == entry.key) {
                    return Err(DuplicateKey { span: entry.key_span, key: entry.key.clone(), first: first.key_span });
                }
                let (v, t) = const_literal(&entry.value)?;
                fields.push((std::sync::Arc::from(entry.key.as_str()), v));
                types.push((entry.key.clone(), t));
            }
            (Value::Object(std::sync::Arc::new(fields)), Ty::Object(types))
        }
        _ => return Err(NotLiteral),
    })
}
