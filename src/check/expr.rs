//! Checking expressions: names, paths, operators, calls, queries.

use super::{CheckError, Checker, Hint, Phase, RuleCx};
use crate::builtins::{self, actions, ArgInfo, Expected, Param, TypeFault};
use crate::diag::suggest;
use crate::ir::{ArithOp, CmpOp, Expr, ExprKind, FieldRef, InterpPart, Projection};
use crate::span::Span;
use crate::syntax::ast::{self, BinOp, QueryKind, UnOp};
use crate::types::Ty;
use crate::value::{parse_timestamp, parse_uuid, Value};

/// `a.b.c` rooted at `event`: the static path segments. (Whether `event`
/// is shadowed inside a filter is the caller's business.)
fn static_event_path(e: &ast::Expr) -> Option<Vec<&ast::Ident>> {
    match &e.kind {
        ast::ExprKind::Name(id) if id.name == "event" => Some(vec![]),
        ast::ExprKind::Field { base, field } => {
            let mut p = static_event_path(base)?;
            p.push(field);
            Some(p)
        }
        _ => None,
    }
}

fn error(span: Span) -> Expr {
    Expr { kind: ExprKind::Lit(Value::Null), ty: Ty::Error, span }
}

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

/// `t` made optional when `opt`.
fn opt_if(t: Ty, opt: bool) -> Ty {
    if opt {
        t.optional()
    } else {
        t
    }
}

impl Checker<'_> {
    pub(crate) fn expr(&mut self, e: &ast::Expr, cx: &mut RuleCx, hint: Hint) -> Expr {
        let span = e.span;
        match &e.kind {
            ast::ExprKind::Error => error(span),
            ast::ExprKind::Null => Expr::lit(Value::Null, Ty::Null, span),
            ast::ExprKind::Bool(b) => Expr::lit(Value::Bool(*b), Ty::Bool, span),
            ast::ExprKind::Int(i) => Expr::lit(Value::Int(*i), Ty::Int, span),
            ast::ExprKind::Float(f) => Expr::lit(Value::Float(*f), Ty::Float, span),
            ast::ExprKind::Duration(d) => Expr::lit(Value::Duration(*d), Ty::Duration, span),
            ast::ExprKind::Str(parts) => self.string(parts, cx, span),
            ast::ExprKind::List(items) => self.list(items, cx, span),
            ast::ExprKind::Object(entries) => self.object(entries, cx, span),
            ast::ExprKind::Name(id) => self.name(id, cx),
            ast::ExprKind::Field { base, field } => self.field(e, base, field, cx),
            ast::ExprKind::Index { base, index } => self.index(base, index, cx, hint, span),
            ast::ExprKind::Call { func, args } => self.call(func, args, cx, span),
            ast::ExprKind::Unary { op, operand, .. } => self.unary(*op, operand, cx, span),
            ast::ExprKind::Binary { op, op_span, lhs, rhs } => self.binary(*op, *op_span, lhs, rhs, cx, span),
            ast::ExprKind::Query { kind, entity, filter } => self.query(*kind, entity, filter.as_deref(), cx, span),
        }
    }

    fn string(&mut self, parts: &[ast::StrPart], cx: &mut RuleCx, span: Span) -> Expr {
        let mut out = Vec::new();
        let mut plain = true;
        for p in parts {
            match p {
                ast::StrPart::Text(t, _) => out.push(InterpPart::Text(t.clone())),
                ast::StrPart::Expr(e) => {
                    plain = false;
                    let e = self.expr(e, cx, Hint::None);
                    out.push(InterpPart::Expr(e));
                }
            }
        }
        if plain {
            let mut s = String::new();
            for p in out {
                if let InterpPart::Text(t) = p {
                    s.push_str(&t);
                }
            }
            Expr::lit(Value::str(&s), Ty::String, span)
        } else {
            Expr { kind: ExprKind::Interp(out), ty: Ty::String, span }
        }
    }

    fn list(&mut self, items: &[ast::Expr], cx: &mut RuleCx, span: Span) -> Expr {
        let items: Vec<Expr> = items.iter().map(|i| self.expr(i, cx, Hint::None)).collect();
        let mut elem = Ty::Never;
        let mut first: Option<(Ty, Span)> = None;
        let mut nullable = false;
        let mut reported = false;
        for item in &items {
            let t = item.ty.clone();
            if t == Ty::Null {
                nullable = true;
                continue;
            }
            if t.is_optional() {
                nullable = true;
            }
            let t = t.unwrap_optional().clone();
            elem = match (&elem, &t) {
                (Ty::Never, _) => {
                    first = Some((t.clone(), item.span));
                    t
                }
                (_, Ty::Error) | (Ty::Error, _) => Ty::Error,
                (a, b) if a == b => elem,
                (Ty::Int, Ty::Float) | (Ty::Float, Ty::Int) => Ty::Float,
                (Ty::Any, _) | (_, Ty::Any) => Ty::Any,
                // JSON arrays of objects of different shapes are common (a
                // webhook body's list of changes): they are a list of `any`.
                (a @ Ty::Object(_), b @ Ty::Object(_)) => unify(a, b).unwrap_or(Ty::Any),
                (a, b) => {
                    if !reported {
                        reported = true;
                        let (fty, fspan) = first.clone().unwrap_or((a.clone(), span));
                        self.errors.push(CheckError::MixedList {
                            span: item.span,
                            first: self.show(&fty),
                            found: self.show(b),
                            first_span: fspan,
                        });
                    }
                    Ty::Error
                }
            };
        }
        let elem = if nullable { elem.optional() } else { elem };
        let ty = elem.list();
        if items.iter().all(|i| matches!(i.kind, ExprKind::Lit(_))) {
            let values = items
                .into_iter()
                .map(|i| match i.kind {
                    ExprKind::Lit(v) => v,
                    _ => unreachable!("all items are literals"),
                })
                .collect();
            Expr::lit(Value::list(values), ty, span)
        } else {
            Expr { kind: ExprKind::List(items), ty, span }
        }
    }

    /// `{ k: v, ... }`: an inline record type; folded to a literal when
    /// every value is one (so a const may be an object).
    fn object(&mut self, entries: &[ast::ObjectEntry], cx: &mut RuleCx, span: Span) -> Expr {
        let mut out: Vec<(String, Expr)> = Vec::with_capacity(entries.len());
        let mut seen: Vec<(&str, Span)> = Vec::with_capacity(entries.len());
        let mut failed = false;
        for entry in entries {
            let value = self.expr(&entry.value, cx, Hint::None);
            if entry.interpolated {
                self.errors.push(CheckError::ObjectKeyInterpolated { span: entry.key_span });
                failed = true;
                continue;
            }
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == entry.key) {
                self.errors.push(CheckError::DuplicateObjectKey {
                    span: entry.key_span,
                    key: entry.key.clone(),
                    first: *first,
                });
                failed = true;
                continue;
            }
            seen.push((&entry.key, entry.key_span));
            out.push((entry.key.clone(), value));
        }
        if failed {
            return error(span);
        }
        let ty = Ty::Object(out.iter().map(|(k, v)| (k.clone(), v.ty.clone())).collect());
        if out.iter().all(|(_, v)| matches!(v.kind, ExprKind::Lit(_))) {
            let fields = out
                .into_iter()
                .filter_map(|(k, v)| match v.kind {
                    // An absent value leaves its key out, as at run time.
                    ExprKind::Lit(Value::Absent) => None,
                    ExprKind::Lit(v) => Some((std::sync::Arc::from(k.as_str()), v)),
                    _ => unreachable!("all values are literals"),
                })
                .collect();
            Expr::lit(Value::Object(std::sync::Arc::new(fields)), ty, span)
        } else {
            Expr { kind: ExprKind::Object(out), ty, span }
        }
    }

    /// `a ?? b`: `a` unless absent or null, else `b`.
    fn coalesce(&mut self, lhs: &ast::Expr, rhs: &ast::Expr, op_span: Span, cx: &mut RuleCx, span: Span) -> Expr {
        let l = self.expr(lhs, cx, Hint::None);
        let r = self.expr(rhs, cx, Hint::None);
        if !l.ty.admits_absent() && !l.ty.has_error() {
            self.errors.push(CheckError::CoalesceNeverAbsent { span: l.span, ty: self.show(&l.ty), op: op_span });
        }
        let value = l.ty.unwrap_optional().clone();
        // A string literal default of a `uuid`/`timestamp` value is converted
        // (and validated) as it would be in a comparison.
        let r = if matches!(value, Ty::Uuid | Ty::Timestamp) { self.coerce(r, &value) } else { r };
        let ty = match coalesce_type(&l.ty, &r.ty) {
            Some(t) => t,
            None => {
                self.errors.push(CheckError::CoalesceMismatch {
                    span: r.span,
                    lhs: self.show(&l.ty),
                    rhs: self.show(&r.ty),
                    rhs_span: l.span,
                });
                Ty::Error
            }
        };
        Expr { kind: ExprKind::Coalesce(boxed(l), boxed(r)), ty, span }
    }

    fn name(&mut self, id: &ast::Ident, cx: &mut RuleCx) -> Expr {
        let span = id.span;
        if let Some(entity) = cx.filter {
            let def = self.schema.entity(entity);
            let field = if def.key.name == id.name {
                Some((FieldRef::Key, def.key.ty.clone()))
            } else {
                def.field(&id.name).map(|(i, f)| (FieldRef::Field(i), f.ty.clone()))
            };
            if let Some((field, ty)) = field {
                if let FieldRef::Field(i) = field {
                    if def.many_to_many(i).is_some() {
                        self.errors.push(CheckError::UnsupportedFilter {
                            span,
                            reason: "many-to-many fields cannot be filtered on",
                        });
                        return error(span);
                    }
                }
                let outer = cx
                    .lookup(&id.name)
                    .map(|l| cx.locals[l.0 as usize].span)
                    .or_else(|| self.consts.get(&id.name).map(|c| c.span));
                // One warning per hidden binding: `name == name` hides it once.
                let already = |e: &CheckError| matches!(e, CheckError::FilterShadows { outer: o, name, .. } if Some(*o) == outer && *name == id.name);
                if let Some(outer) = outer.filter(|_| !self.errors.iter().any(already)) {
                    self.errors.push(CheckError::FilterShadows {
                        span,
                        name: id.name.clone(),
                        entity: def.name.clone(),
                        outer,
                    });
                }
                return Expr { kind: ExprKind::Row { entity, field, path: vec![] }, ty, span };
            }
        }
        if id.name == "event" {
            if cx.events_unknown {
                return error(span);
            }
            let pid = self.intern_path(vec![]);
            let ty = match cx.events.as_slice() {
                [(_, r)] => Ty::Record(*r),
                _ => Ty::Any,
            };
            return Expr { kind: ExprKind::Event(pid), ty, span };
        }
        if let Some(local) = cx.lookup(&id.name) {
            cx.used[local.0 as usize] = true;
            let ty = cx.locals[local.0 as usize].ty.clone();
            return Expr { kind: ExprKind::Local(local), ty, span };
        }
        if let Some(c) = self.consts.get(&id.name) {
            return Expr::lit(c.value.clone(), c.ty.clone(), span);
        }
        if self.schema.entity_by_name(&id.name).is_some() {
            self.errors.push(CheckError::EntityAsValue { span, name: id.name.clone() });
            return error(span);
        }
        let hint = if matches!(id.name.as_str(), "type" | "key") {
            // The grammar lets these keywords through as bare names only for
            // query filters (see `keyword_field`).
            Some(format!(
                "`{}` is a keyword: it names a field after `.` or inside a query filter such as `exists User({} == ...)`",
                id.name, id.name
            ))
        } else if builtins::function(&id.name).is_some() {
            Some(format!("`{}` is a function: call it with `{}(...)`", id.name, id.name))
        } else if cx.phase == Phase::Match && cx.filter.is_none() && cx.in_after {
            Some("an `after` clause sees only the earlier event, consts and its own pattern bindings: compare with the current event in a `guard` below it".to_string())
        } else if cx.phase == Phase::Match && cx.filter.is_none() {
            Some("a `match` clause sees only `event`, consts and its own pattern bindings".to_string())
        } else {
            None
        };
        let mut names = cx.names();
        names.extend(self.consts.keys().cloned());
        names.push("event".into());
        if let Some(entity) = cx.filter {
            let def = self.schema.entity(entity);
            names.push(def.key.name.clone());
            names.extend(def.fields.iter().map(|f| f.name.clone()));
        }
        let suggestion = suggest(&id.name, names.iter().map(|s| s.as_str()));
        self.errors.push(CheckError::UnknownName { span, name: id.name.clone(), suggestion, hint });
        error(span)
    }

    fn field(&mut self, whole: &ast::Expr, base: &ast::Expr, field: &ast::Ident, cx: &mut RuleCx) -> Expr {
        let span = whole.span;
        if let Some(path) = static_event_path(whole) {
            let filter_field = cx.filter.is_some_and(|e| {
                let d = self.schema.entity(e);
                d.key.name == "event" || d.field("event").is_some()
            });
            // A path through a list (`event.items.name`) is a projection of
            // the list's elements, not a static path.
            if !filter_field && !self.event_prefix_is_list(&path, cx) {
                return match self.event_path(&path, cx) {
                    Some((pid, ty)) => Expr { kind: ExprKind::Event(pid), ty, span },
                    None => error(span),
                };
            }
        }
        // `window.count`, `throttle.suppressed`: names bound by a stateful
        // clause, unless a binding called `window`/`throttle` hides them.
        if let ast::ExprKind::Name(b) = &base.kind {
            let clause = b.name.as_str();
            if matches!(clause, "window" | "throttle") && cx.filter.is_none() && cx.lookup(clause).is_none() {
                let name = format!("{clause}.{}", field.name);
                if let Some(local) = cx.lookup(&name) {
                    cx.used[local.0 as usize] = true;
                    let ty = cx.locals[local.0 as usize].ty.clone();
                    return Expr { kind: ExprKind::Local(local), ty, span };
                }
                let known = match clause {
                    "window" => matches!(field.name.as_str(), "count" | "distinct" | "first" | "last"),
                    _ => field.name == "suppressed",
                };
                self.errors.push(CheckError::StateNameUnbound {
                    span,
                    name,
                    clause: if clause == "window" { "window" } else { "throttle" },
                    known,
                });
                return error(span);
            }
        }
        let base = self.expr(base, cx, Hint::None);
        // A path inside an `any` field of the filtered row stays a column path.
        if let ExprKind::Row { entity, field: f, path } = &base.kind {
            if base.ty.unwrap_optional() == &Ty::Any {
                let mut path = path.clone();
                path.push(field.name.clone());
                return Expr { kind: ExprKind::Row { entity: *entity, field: *f, path }, ty: Ty::Any, span };
            }
        }
        let opt = base.ty.is_optional();
        match base.ty.unwrap_optional().clone() {
            Ty::Error => error(span),
            Ty::List(elem) => self.project(base, &elem, field, opt, span),
            Ty::Object(fields) => match fields.iter().find(|(k, _)| *k == field.name) {
                Some((_, t)) => {
                    let ty = opt_if(t.clone(), opt);
                    Expr { kind: ExprKind::Field { base: boxed(base), name: field.name.clone() }, ty, span }
                }
                None => {
                    let suggestion = suggest(&field.name, fields.iter().map(|(k, _)| k.as_str()));
                    self.errors.push(CheckError::UnknownField {
                        span: field.span,
                        field: field.name.clone(),
                        owner: "this object".into(),
                        suggestion,
                    });
                    error(span)
                }
            },
            Ty::Any => {
                Expr { kind: ExprKind::Field { base: boxed(base), name: field.name.clone() }, ty: Ty::Any, span }
            }
            Ty::Record(r) => match self.schema.record(r).field(&field.name) {
                Some((_, f)) => {
                    let ty = opt_if(f.ty.clone(), opt);
                    Expr { kind: ExprKind::Field { base: boxed(base), name: field.name.clone() }, ty, span }
                }
                None => {
                    let rec = self.schema.record(r);
                    let owner = match &rec.name {
                        Some(n) => format!("`{n}`"),
                        None => "this record".to_string(),
                    };
                    let suggestion = suggest(&field.name, rec.fields.iter().map(|f| f.name.as_str()));
                    self.errors.push(CheckError::UnknownField {
                        span: field.span,
                        field: field.name.clone(),
                        owner,
                        suggestion,
                    });
                    error(span)
                }
            },
            Ty::Entity(ent) => {
                let def = self.schema.entity(ent);
                if def.key.name == field.name {
                    let ty = opt_if(def.key.ty.clone(), opt);
                    return Expr {
                        kind: ExprKind::Column { base: boxed(base), entity: ent, field: FieldRef::Key },
                        ty,
                        span,
                    };
                }
                match def.field(&field.name) {
                    Some((i, f)) => match def.many_to_many(i) {
                        Some(target) => Expr {
                            kind: ExprKind::Related { base: boxed(base), entity: ent, field: i, target },
                            ty: opt_if(Ty::Entity(target).list(), opt),
                            span,
                        },
                        None => {
                            let ty = opt_if(f.ty.clone(), opt);
                            Expr {
                                kind: ExprKind::Column { base: boxed(base), entity: ent, field: FieldRef::Field(i) },
                                ty,
                                span,
                            }
                        }
                    },
                    None => {
                        let names =
                            std::iter::once(def.key.name.as_str()).chain(def.fields.iter().map(|f| f.name.as_str()));
                        let suggestion = suggest(&field.name, names);
                        self.errors.push(CheckError::UnknownField {
                            span: field.span,
                            field: field.name.clone(),
                            owner: format!("entity `{}`", def.name),
                            suggestion,
                        });
                        error(span)
                    }
                }
            }
            other => {
                self.errors.push(CheckError::NoFields {
                    span: field.span,
                    field: field.name.clone(),
                    ty: self.show(&other),
                });
                error(span)
            }
        }
    }

    /// Does a proper prefix of this static event path have a list type in
    /// one of the rule's event types?
    fn event_prefix_is_list(&self, path: &[&ast::Ident], cx: &RuleCx) -> bool {
        if cx.events_unknown {
            return false;
        }
        let segs: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
        (1..segs.len()).any(|i| {
            cx.events.iter().any(|(_, rec)| {
                matches!(self.schema.path_type(*rec, &segs[..i]), Ok(t) if matches!(t.unwrap_optional(), Ty::List(_)))
            })
        })
    }

    /// `list.field`: the field of each element (see `ExprKind::Project`).
    /// `[T?]` fields give `[T]`; list-valued fields are flattened one level.
    fn project(&mut self, base: Expr, elem: &Ty, field: &ast::Ident, opt: bool, span: Span) -> Expr {
        let unknown = |this: &mut Self, owner: String, names: Vec<String>| {
            let suggestion = suggest(&field.name, names.iter().map(|s| s.as_str()));
            this.errors.push(CheckError::UnknownField {
                span: field.span,
                field: field.name.clone(),
                owner: format!("{owner} (the element type of this list)"),
                suggestion,
            });
            error(span)
        };
        let (step, fty) = match elem.unwrap_optional() {
            Ty::Error => return error(span),
            Ty::Any => (Projection::Field(field.name.clone()), Ty::Any),
            Ty::Record(r) => {
                let rec = self.schema.record(*r);
                match rec.field(&field.name) {
                    Some((_, f)) => (Projection::Field(field.name.clone()), f.ty.clone()),
                    None => {
                        let owner = match &rec.name {
                            Some(n) => format!("`{n}`"),
                            None => "the record".to_string(),
                        };
                        let names = rec.fields.iter().map(|f| f.name.clone()).collect();
                        return unknown(self, owner, names);
                    }
                }
            }
            Ty::Object(fields) => match fields.iter().find(|(k, _)| *k == field.name) {
                Some((_, t)) => (Projection::Field(field.name.clone()), t.clone()),
                None => {
                    let names = fields.iter().map(|(k, _)| k.clone()).collect();
                    return unknown(self, "the object".into(), names);
                }
            },
            Ty::Entity(ent) => {
                let def = self.schema.entity(*ent);
                if def.key.name == field.name {
                    (Projection::Column(FieldRef::Key), def.key.ty.clone())
                } else {
                    match def.field(&field.name) {
                        Some((i, f)) => match def.many_to_many(i) {
                            Some(target) => (Projection::Related { entity: *ent, field: i }, Ty::Entity(target).list()),
                            None => (Projection::Column(FieldRef::Field(i)), f.ty.clone()),
                        },
                        None => {
                            let names = std::iter::once(def.key.name.clone())
                                .chain(def.fields.iter().map(|f| f.name.clone()))
                                .collect();
                            return unknown(self, format!("entity `{}`", def.name), names);
                        }
                    }
                }
            }
            _ => {
                self.errors.push(CheckError::NoFields {
                    span: field.span,
                    field: field.name.clone(),
                    ty: self.show(&base.ty),
                });
                return error(span);
            }
        };
        // Absent values are skipped, so the items are never optional.
        let (item, flatten) = match fty.unwrap_optional() {
            Ty::List(inner) => (inner.unwrap_optional().clone(), true),
            t => (t.clone(), false),
        };
        let ty = opt_if(item.list(), opt);
        Expr { kind: ExprKind::Project { base: boxed(base), step, flatten }, ty, span }
    }

    fn index(&mut self, base: &ast::Expr, index: &ast::Expr, cx: &mut RuleCx, hint: Hint, span: Span) -> Expr {
        // `Entity[key]`: a name that is an entity and not shadowed.
        if let ast::ExprKind::Name(id) = &base.kind {
            let shadowed = id.name == "event"
                || cx.lookup(&id.name).is_some()
                || self.consts.contains_key(&id.name)
                || cx.filter.is_some_and(|e| {
                    let d = self.schema.entity(e);
                    d.key.name == id.name || d.field(&id.name).is_some()
                });
            if !shadowed {
                if let Some(entity) = self.schema.entity_by_name(&id.name) {
                    if cx.phase == Phase::Match {
                        self.errors.push(CheckError::QueryInMatch { span, after: cx.in_after });
                    }
                    let key_ty = self.schema.entity(entity).key.ty.clone();
                    let key = self.expr(index, cx, Hint::None);
                    let key = self.coerce(key, &key_ty);
                    let key = self.coerce(key, &key_ty.clone().list());
                    let opt = key.ty.is_optional();
                    let one = Ty::Entity(entity);
                    let (many, ty) = match key.ty.unwrap_optional() {
                        Ty::Error => (false, Ty::Error),
                        Ty::Any => {
                            if hint == Hint::List {
                                (true, one.list())
                            } else {
                                (false, one.optional())
                            }
                        }
                        t if t.fits(&key_ty) && *t != Ty::Null => (false, one.optional()),
                        Ty::List(elem) if elem.unwrap_optional().fits(&key_ty) => (true, opt_if(one.list(), opt)),
                        other => {
                            self.errors.push(CheckError::BadLookupKey {
                                span: key.span,
                                entity: id.name.clone(),
                                key_ty: self.show(&key_ty),
                                found: self.show(other),
                            });
                            return error(span);
                        }
                    };
                    let kind = if many {
                        ExprKind::LookupMany { entity, keys: boxed(key) }
                    } else {
                        ExprKind::Lookup { entity, key: boxed(key) }
                    };
                    return Expr { kind, ty, span };
                }
            }
        }
        // `Usr[pk]`: an unknown name indexed like a lookup is most likely a
        // misspelt entity.
        if let ast::ExprKind::Name(id) = &base.kind {
            let known = id.name == "event" || cx.lookup(&id.name).is_some() || self.consts.contains_key(&id.name);
            if !known && cx.filter.is_none() {
                if let Some(s) = suggest(&id.name, self.schema.entity_names()) {
                    self.errors.push(CheckError::UnknownEntity {
                        span: id.span,
                        name: id.name.clone(),
                        suggestion: Some(s),
                    });
                    self.expr(index, cx, Hint::None);
                    return error(span);
                }
            }
        }
        let base = self.expr(base, cx, Hint::None);
        let idx = self.expr(index, cx, Hint::None);
        let idx_t = idx.ty.unwrap_optional().clone();
        let opt = base.ty.is_optional();
        let ty = match (base.ty.unwrap_optional(), &idx_t) {
            (Ty::Error, _) | (_, Ty::Error) => return error(span),
            (Ty::List(elem), Ty::Int | Ty::Any) => elem.as_ref().clone().optional(),
            (Ty::Any, Ty::Int | Ty::String | Ty::Any) => Ty::Any,
            (b, i) => {
                self.errors.push(CheckError::BadIndex { span, ty: self.show(b), index: self.show(i) });
                return error(span);
            }
        };
        let _ = opt;
        Expr { kind: ExprKind::Index { base: boxed(base), index: boxed(idx) }, ty, span }
    }

    fn unary(&mut self, op: UnOp, operand: &ast::Expr, cx: &mut RuleCx, span: Span) -> Expr {
        let e = self.expr(operand, cx, Hint::None);
        match op {
            UnOp::Not => {
                self.require_bool(&e, |found| CheckError::NotBoolean { span: e.span, op: "not", found });
                Expr { kind: ExprKind::Not(boxed(e)), ty: Ty::Bool, span }
            }
            UnOp::Neg => {
                let ty = match e.ty.unwrap_optional() {
                    Ty::Int | Ty::Float | Ty::Duration | Ty::Any | Ty::Error => e.ty.clone(),
                    other => {
                        let s = self.show(other);
                        self.errors.push(CheckError::BadArithmetic { span, op: "-", lhs: s.clone(), rhs: s });
                        return error(span);
                    }
                };
                // Fold `-literal` so patterns and consts see a literal.
                match e.kind {
                    ExprKind::Lit(Value::Int(i)) if i.checked_neg().is_some() => {
                        Expr::lit(Value::Int(-i), Ty::Int, span)
                    }
                    ExprKind::Lit(Value::Float(f)) => Expr::lit(Value::Float(-f), Ty::Float, span),
                    ExprKind::Lit(Value::Duration(d)) if d.checked_neg().is_some() => {
                        Expr::lit(Value::Duration(-d), Ty::Duration, span)
                    }
                    _ => Expr { kind: ExprKind::Neg(boxed(e)), ty, span },
                }
            }
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        op_span: Span,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        cx: &mut RuleCx,
        span: Span,
    ) -> Expr {
        match op {
            BinOp::Coalesce => self.coalesce(lhs, rhs, op_span, cx, span),
            BinOp::And | BinOp::Or => {
                let l = self.expr(lhs, cx, Hint::None);
                let r = self.expr(rhs, cx, Hint::None);
                let name = if op == BinOp::And { "and" } else { "or" };
                self.require_bool(&l, |found| CheckError::NotBoolean { span: l.span, op: name, found });
                self.require_bool(&r, |found| CheckError::NotBoolean { span: r.span, op: name, found });
                let kind =
                    if op == BinOp::And { ExprKind::And(boxed(l), boxed(r)) } else { ExprKind::Or(boxed(l), boxed(r)) };
                Expr { kind, ty: Ty::Bool, span }
            }
            BinOp::Eq | BinOp::Ne => {
                let l = self.expr(lhs, cx, Hint::None);
                let r = self.expr(rhs, cx, Hint::None);
                let mut e = self.equality(l, r, span, op == BinOp::Ne);
                if let ExprKind::Cmp { .. } = e.kind {
                    e.span = span;
                }
                let _ = op_span;
                e
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let l = self.expr(lhs, cx, Hint::None);
                let r = self.expr(rhs, cx, Hint::None);
                let (l, r) = self.coerce_pair(l, r);
                let cmp = match op {
                    BinOp::Lt => CmpOp::Lt,
                    BinOp::Le => CmpOp::Le,
                    BinOp::Gt => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let (a, b) = (l.ty.unwrap_optional().clone(), r.ty.unwrap_optional().clone());
                let orderable = |t: &Ty| {
                    matches!(
                        t,
                        Ty::Int
                            | Ty::Float
                            | Ty::String
                            | Ty::Timestamp
                            | Ty::Duration
                            | Ty::Any
                            | Ty::Error
                            | Ty::Never
                    )
                };
                if !a.has_error() && !b.has_error() {
                    if !orderable(&a) || !orderable(&b) {
                        let bad = if orderable(&a) { &b } else { &a };
                        if bad == &Ty::Null {
                            self.errors.push(CheckError::Incomparable {
                                span,
                                op: cmp.symbol(),
                                lhs: self.show(&l.ty),
                                rhs: self.show(&r.ty),
                            });
                        } else {
                            self.errors.push(CheckError::NotOrderable {
                                span: op_span,
                                op: cmp.symbol(),
                                ty: self.show(bad),
                            });
                        }
                    } else if let Some(number) = duration_vs_number(&l, &r) {
                        self.errors.push(CheckError::DurationNumber { span, op: cmp.symbol(), number });
                    } else if !comparable(&a, &b) {
                        self.errors.push(CheckError::Incomparable {
                            span,
                            op: cmp.symbol(),
                            lhs: self.show(&l.ty),
                            rhs: self.show(&r.ty),
                        });
                    }
                }
                Expr { kind: ExprKind::Cmp { op: cmp, lhs: boxed(l), rhs: boxed(r) }, ty: Ty::Bool, span }
            }
            BinOp::In => {
                let l = self.expr(lhs, cx, Hint::None);
                let r = self.expr(rhs, cx, Hint::List);
                let r = match l.ty.unwrap_optional() {
                    t @ (Ty::Uuid | Ty::Timestamp) => {
                        let t = t.clone();
                        self.coerce(r, &t.list())
                    }
                    _ => r,
                };
                let ok = match r.ty.unwrap_optional() {
                    Ty::Error | Ty::Any => true,
                    Ty::String => matches!(l.ty.unwrap_optional(), Ty::String | Ty::Any | Ty::Error),
                    Ty::List(elem) => comparable(l.ty.unwrap_optional(), elem.unwrap_optional()),
                    _ => false,
                };
                if !ok && !l.ty.has_error() {
                    self.errors.push(CheckError::BadIn { span, elem: self.show(&l.ty), container: self.show(&r.ty) });
                }
                Expr { kind: ExprKind::In { elem: boxed(l), container: boxed(r) }, ty: Ty::Bool, span }
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                let l = self.expr(lhs, cx, Hint::None);
                let r = self.expr(rhs, cx, Hint::None);
                let aop = match op {
                    BinOp::Add => ArithOp::Add,
                    BinOp::Sub => ArithOp::Sub,
                    BinOp::Mul => ArithOp::Mul,
                    BinOp::Div => ArithOp::Div,
                    _ => ArithOp::Mod,
                };
                // `t - "2026-04-14T08:00:00Z"`: the text is a timestamp.
                let (l, r) = if aop == ArithOp::Sub { self.coerce_pair(l, r) } else { (l, r) };
                // `"2026-04-14T08:00:00Z" - 7d`: beside a duration, a string
                // literal can only be a timestamp.
                let is_text = |e: &Expr| matches!(e.kind, ExprKind::Lit(Value::Str(_)));
                let (l, r) = match (aop, l.ty.unwrap_optional(), r.ty.unwrap_optional()) {
                    (ArithOp::Add | ArithOp::Sub, Ty::String, Ty::Duration) if is_text(&l) => {
                        (self.coerce(l, &Ty::Timestamp), r)
                    }
                    (ArithOp::Add, Ty::Duration, Ty::String) if is_text(&r) => (l, self.coerce(r, &Ty::Timestamp)),
                    _ => (l, r),
                };
                let opt = l.ty.admits_absent() && l.ty != Ty::Any || r.ty.admits_absent() && r.ty != Ty::Any;
                let (a, b) = (l.ty.unwrap_optional().clone(), r.ty.unwrap_optional().clone());
                let timed = |t: &Ty| matches!(t, Ty::Timestamp | Ty::Duration);
                let ty = match (&a, &b) {
                    (Ty::Error, _) | (_, Ty::Error) => Ty::Error,
                    (Ty::Timestamp, Ty::Duration) if matches!(aop, ArithOp::Add | ArithOp::Sub) => Ty::Timestamp,
                    (Ty::Duration, Ty::Timestamp) if aop == ArithOp::Add => Ty::Timestamp,
                    (Ty::Timestamp, Ty::Timestamp) if aop == ArithOp::Sub => Ty::Duration,
                    (Ty::Duration, Ty::Duration) if matches!(aop, ArithOp::Add | ArithOp::Sub) => Ty::Duration,
                    (Ty::Duration, Ty::Int) | (Ty::Int, Ty::Duration) if aop == ArithOp::Mul => Ty::Duration,
                    _ if timed(&a) || timed(&b) => {
                        let help = time_arith_help(aop, &a, &b, &l, &r);
                        self.errors.push(CheckError::BadTimeArithmetic {
                            span: op_span,
                            op: op.symbol(),
                            lhs: self.show(&l.ty),
                            rhs: self.show(&r.ty),
                            help,
                        });
                        return error(span);
                    }
                    (Ty::String, Ty::String) if aop == ArithOp::Add => Ty::String,
                    (Ty::List(x), Ty::List(y)) if aop == ArithOp::Add && (x.fits(y) || y.fits(x)) => {
                        if **x == Ty::Never {
                            b.clone()
                        } else {
                            a.clone()
                        }
                    }
                    (Ty::Int, Ty::Int) => Ty::Int,
                    (Ty::Int | Ty::Float, Ty::Int | Ty::Float) => Ty::Float,
                    (Ty::Any, Ty::Int | Ty::Float | Ty::Any) | (Ty::Int | Ty::Float, Ty::Any) => Ty::Any,
                    (Ty::Any, Ty::String) | (Ty::String, Ty::Any) if aop == ArithOp::Add => Ty::Any,
                    _ => {
                        self.errors.push(CheckError::BadArithmetic {
                            span: op_span,
                            op: op.symbol(),
                            lhs: self.show(&l.ty),
                            rhs: self.show(&r.ty),
                        });
                        return error(span);
                    }
                };
                let ty = opt_if(ty, opt);
                Expr { kind: ExprKind::Arith { op: aop, lhs: boxed(l), rhs: boxed(r) }, ty, span }
            }
        }
    }

    /// `l == r` (or `!=` when `negated`): `IsNull` against a `null`
    /// literal, `Cmp` otherwise, with string literals converted to the
    /// other side's `uuid`/`timestamp`.
    pub(crate) fn equality(&mut self, l: Expr, r: Expr, span: Span, negated: bool) -> Expr {
        // A failed operand is itself a `Lit(Null)` of the error type: test the
        // type too, or `unknown == true` would look like a null comparison.
        let l_null = matches!(l.kind, ExprKind::Lit(Value::Null)) && !l.ty.has_error();
        let r_null = matches!(r.kind, ExprKind::Lit(Value::Null)) && !r.ty.has_error();
        if l_null || r_null {
            let operand = if r_null { l } else { r };
            if !operand.ty.admits_absent() && !operand.ty.has_error() {
                self.errors.push(CheckError::NullCompareNeverAbsent {
                    span,
                    ty: self.show(&operand.ty),
                    always: negated,
                });
            }
            return Expr { kind: ExprKind::IsNull { operand: boxed(operand), negated }, ty: Ty::Bool, span };
        }
        let (l, r) = self.coerce_pair(l, r);
        let (a, b) = (l.ty.unwrap_optional(), r.ty.unwrap_optional());
        if let Some(number) = duration_vs_number(&l, &r) {
            let op = if negated { "!=" } else { "==" };
            self.errors.push(CheckError::DurationNumber { span, op, number });
        } else if !comparable(a, b) && !a.has_error() && !b.has_error() {
            let op = if negated { "!=" } else { "==" };
            self.errors.push(CheckError::Incomparable { span, op, lhs: self.show(&l.ty), rhs: self.show(&r.ty) });
        }
        let op = if negated { CmpOp::Ne } else { CmpOp::Eq };
        Expr { kind: ExprKind::Cmp { op, lhs: boxed(l), rhs: boxed(r) }, ty: Ty::Bool, span }
    }

    /// Convert a string literal on one side to the other side's `uuid` or
    /// `timestamp`.
    pub(crate) fn coerce_pair(&mut self, l: Expr, r: Expr) -> (Expr, Expr) {
        let lt = l.ty.unwrap_optional().clone();
        let rt = r.ty.unwrap_optional().clone();
        if matches!(lt, Ty::Uuid | Ty::Timestamp) {
            (l, self.coerce(r, &lt))
        } else if matches!(rt, Ty::Uuid | Ty::Timestamp) {
            (self.coerce(l, &rt), r)
        } else {
            (l, r)
        }
    }

    /// Convert string literals (or lists of them) to `uuid`/`timestamp`
    /// literals where `target` asks for one, validating them (E0504, E0505).
    pub(crate) fn coerce(&mut self, e: Expr, target: &Ty) -> Expr {
        let target = target.unwrap_optional();
        match (&e.kind, target) {
            (ExprKind::Lit(Value::Str(s)), Ty::Uuid | Ty::Timestamp) => match self.convert_str(s, target, e.span) {
                Some(v) => Expr::lit(v, target.clone(), e.span),
                None => error(e.span),
            },
            (ExprKind::Lit(Value::List(items)), Ty::List(elem))
                if matches!(elem.unwrap_optional(), Ty::Uuid | Ty::Timestamp)
                    && matches!(e.ty.unwrap_optional(), Ty::List(t) if t.unwrap_optional() == &Ty::String) =>
            {
                let elem_t = elem.unwrap_optional().clone();
                let mut out = Vec::new();
                let mut ok = true;
                for v in items.iter() {
                    match v {
                        Value::Str(s) => match self.convert_str(s, &elem_t, e.span) {
                            Some(v) => out.push(v),
                            None => ok = false,
                        },
                        other => out.push(other.clone()),
                    }
                }
                if !ok {
                    return error(e.span);
                }
                Expr::lit(Value::list(out), elem_t.list(), e.span)
            }
            _ => e,
        }
    }

    fn convert_str(&mut self, s: &str, target: &Ty, span: Span) -> Option<Value> {
        match target {
            Ty::Uuid => match parse_uuid(s) {
                Some(u) => Some(Value::Uuid(u)),
                None => {
                    self.errors.push(CheckError::InvalidUuid { span, found: s.to_string() });
                    None
                }
            },
            _ => match parse_timestamp(s) {
                Some(t) => Some(Value::Timestamp(t)),
                None => {
                    self.errors.push(CheckError::InvalidTimestamp { span, found: s.to_string() });
                    None
                }
            },
        }
    }
}

/// The type of `l ?? r`, `None` when the sides are incompatible. The
/// result may be absent only when the default may be: `T? ?? T` is `T`,
/// `T? ?? T?` is `T?`; `int` and `float` mix to `float`; `any` on either
/// side makes the result `any`; a `null` value side gives the default's type.
pub(crate) fn coalesce_type(l: &Ty, r: &Ty) -> Option<Ty> {
    let (a, b) = (l.unwrap_optional(), r.unwrap_optional());
    let r_opt = r.admits_absent();
    Some(match (a, b) {
        (Ty::Error, _) | (_, Ty::Error) => Ty::Error,
        (Ty::Null, _) => r.clone(),
        (_, Ty::Null) => a.clone().optional(),
        (Ty::Any, _) | (_, Ty::Any) => Ty::Any,
        _ => {
            let t = unify(a, b)?;
            opt_if(t, r_opt)
        }
    })
}

/// The common type of two (unwrapped) types, widening `int` to `float` and
/// `[]` to any list; objects unify key by key.
fn unify(a: &Ty, b: &Ty) -> Option<Ty> {
    match (a, b) {
        _ if a == b => Some(a.clone()),
        (Ty::Never, t) | (t, Ty::Never) => Some(t.clone()),
        (Ty::Int, Ty::Float) | (Ty::Float, Ty::Int) => Some(Ty::Float),
        (Ty::List(x), Ty::List(y)) => {
            let opt = x.is_optional() || y.is_optional();
            Some(opt_if(unify(x.unwrap_optional(), y.unwrap_optional())?, opt).list())
        }
        (Ty::Object(x), Ty::Object(y)) if x.len() == y.len() => {
            let mut out = Vec::with_capacity(x.len());
            for (k, t) in x {
                let (_, u) = y.iter().find(|(k2, _)| k2 == k)?;
                let opt = t.is_optional() || u.is_optional();
                out.push((k.clone(), opt_if(unify(t.unwrap_optional(), u.unwrap_optional())?, opt)));
            }
            Some(Ty::Object(out))
        }
        _ => None,
    }
}

/// `5m > 300` (or the other way round): the number's text, for a help
/// that gives it a unit. `None` unless one side is a duration and the
/// other a number.
fn duration_vs_number(l: &Expr, r: &Expr) -> Option<String> {
    let (a, b) = (l.ty.unwrap_optional(), r.ty.unwrap_optional());
    let number = match (a, b) {
        (Ty::Duration, Ty::Int | Ty::Float) => r,
        (Ty::Int | Ty::Float, Ty::Duration) => l,
        _ => return None,
    };
    Some(match &number.kind {
        ExprKind::Lit(Value::Int(i)) => i.to_string(),
        _ => String::new(),
    })
}

/// The help of a misused time operator, naming what would work.
fn time_arith_help(op: ArithOp, a: &Ty, b: &Ty, l: &Expr, r: &Expr) -> String {
    let int_lit = |e: &Expr| match &e.kind {
        ExprKind::Lit(Value::Int(i)) => Some(*i),
        _ => None,
    };
    match (op, a, b) {
        (ArithOp::Add, Ty::Timestamp, Ty::Timestamp) => {
            "two timestamps cannot be added: subtract them for the duration between them (`a - b`), or add a duration to one (`t + 1h`)".into()
        }
        (ArithOp::Mul, Ty::Duration, Ty::Duration) => {
            "a duration is multiplied by an `int` (`5m * 3`), not by another duration".into()
        }
        (ArithOp::Mul, Ty::Duration, Ty::Float) | (ArithOp::Mul, Ty::Float, Ty::Duration) => {
            "a duration is multiplied by an `int`; for a fraction use smaller units (`90s` for 1.5 minutes)".into()
        }
        (ArithOp::Div | ArithOp::Mod, Ty::Duration, _) | (ArithOp::Div | ArithOp::Mod, _, Ty::Duration) => {
            "durations cannot be divided; compare them instead (`d > 30m`) or multiply by an `int`".into()
        }
        (ArithOp::Add | ArithOp::Sub, Ty::Timestamp | Ty::Duration, Ty::Int | Ty::Float) => match int_lit(r) {
            Some(n) => format!("a number has no unit: did you mean `{n}s` (or `{n}m`, `{n}h`, `{n}d`)?"),
            None => "add or subtract a duration (`t + 5m`); a number has no unit".into(),
        },
        (ArithOp::Add | ArithOp::Sub, Ty::Int | Ty::Float, Ty::Timestamp | Ty::Duration) => match int_lit(l) {
            Some(n) => format!("a number has no unit: did you mean `{n}s` (or `{n}m`, `{n}h`, `{n}d`)?"),
            None => "add or subtract a duration (`t + 5m`); a number has no unit".into(),
        },
        (ArithOp::Sub, Ty::Duration, Ty::Timestamp) => {
            "a duration minus a timestamp has no meaning: did you mean `t - d` (a timestamp) or `t2 - t1` (a duration)?"
                .into()
        }
        (_, Ty::Timestamp, _) | (_, _, Ty::Timestamp) => {
            "a timestamp takes `+`/`-` with a duration (`t + 1h`), and `-` with another timestamp (`t2 - t1`, a duration)"
                .into()
        }
        _ => "durations take `+`/`-` with durations and timestamps, and `*` with an `int`".into(),
    }
}

/// Can values of these (unwrapped) types be compared with `==`?
pub(crate) fn comparable(a: &Ty, b: &Ty) -> bool {
    use Ty::*;
    match (a, b) {
        (Error | Never | Any | Null, _) | (_, Error | Never | Any | Null) => true,
        (Int | Float, Int | Float) => true,
        (Uuid, String) | (String, Uuid) | (Timestamp, String) | (String, Timestamp) => true,
        (List(x), List(y)) => comparable(x.unwrap_optional(), y.unwrap_optional()),
        // Objects compare by value, key by key in any order.
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, t)| {
                    y.iter().any(|(k2, u)| k == k2 && comparable(t.unwrap_optional(), u.unwrap_optional()))
                })
        }
        (x, y) => x == y,
    }
}

impl Checker<'_> {
    /// Match call arguments to parameters, named or positional in declared
    /// order; reports unknown, duplicate, missing and extra arguments.
    pub(crate) fn resolve_args<'a>(
        &mut self,
        func: &str,
        call_span: Span,
        params: &[Param],
        args: &'a [ast::Arg],
    ) -> Vec<Option<&'a ast::Arg>> {
        let mut slots: Vec<Option<&'a ast::Arg>> = vec![None; params.len()];
        let mut named_at: Option<Span> = None;
        let mut position = 0;
        let mut reported_extra = false;
        // After an unknown name or a misplaced positional argument, a
        // "missing argument" error is usually the same mistake seen again
        // (`subjet:` for `subject:`), so it is not reported.
        let mut confused = false;
        for arg in args {
            match &arg.name {
                Some(n) => {
                    named_at.get_or_insert(n.span);
                    match params.iter().position(|p| p.name == n.name) {
                        Some(i) => match slots[i] {
                            Some(first) => self.errors.push(CheckError::DuplicateArgument {
                                span: n.span,
                                name: n.name.clone(),
                                first: first.name.as_ref().map(|f| f.span).unwrap_or(first.span),
                            }),
                            None => slots[i] = Some(arg),
                        },
                        None => {
                            let suggestion = suggest(&n.name, params.iter().map(|p| p.name));
                            confused = true;
                            self.errors.push(CheckError::UnknownArgument {
                                span: n.span,
                                func: func.to_string(),
                                name: n.name.clone(),
                                suggestion,
                                params: params.iter().map(|p| p.name.to_string()).collect(),
                            });
                        }
                    }
                }
                None => {
                    if let Some(named) = named_at {
                        confused = true;
                        self.errors.push(CheckError::PositionalAfterNamed { span: arg.span, named });
                        continue;
                    }
                    if position >= params.len() {
                        if !reported_extra {
                            reported_extra = true;
                            self.errors.push(CheckError::TooManyArguments {
                                span: arg.span,
                                func: func.to_string(),
                                max: params.len(),
                            });
                        }
                        continue;
                    }
                    slots[position] = Some(arg);
                    position += 1;
                }
            }
        }
        for (i, p) in params.iter().enumerate() {
            if p.required && slots[i].is_none() && !confused {
                self.errors.push(CheckError::MissingArgument {
                    span: call_span,
                    func: func.to_string(),
                    name: p.name.to_string(),
                });
            }
        }
        slots
    }

    fn call(&mut self, func: &ast::Ident, args: &[ast::Arg], cx: &mut RuleCx, span: Span) -> Expr {
        let name = func.name.as_str();
        if actions::action(name).is_some() {
            self.errors.push(CheckError::ActionInExpression {
                span,
                name: name.to_string(),
                in_match: cx.phase == Phase::Match,
            });
            return error(span);
        }
        let Some(def) = builtins::function(name) else {
            let suggestion = builtins::function_alias(name)
                .map(str::to_string)
                .or_else(|| suggest(name, builtins::function_names()));
            self.errors.push(CheckError::UnknownFunction { span: func.span, name: name.to_string(), suggestion });
            for a in args {
                self.expr(&a.value, cx, Hint::None);
            }
            return error(span);
        };
        let params = def.params;
        let slots = self.resolve_args(name, span, params, args);
        let mut vals = Vec::with_capacity(slots.len());
        for slot in &slots {
            match slot {
                Some(a) => vals.push(self.expr(&a.value, cx, Hint::None)),
                // `resolve_args` reported the missing argument.
                None => return error(span),
            }
        }
        if !def.in_match && cx.phase == Phase::Match {
            self.errors.push(CheckError::NowInMatch { span, after: cx.in_after });
        }
        let infos: Vec<ArgInfo<'_>> = vals
            .iter()
            .map(|v| ArgInfo {
                ty: &v.ty,
                lit: match &v.kind {
                    ExprKind::Lit(l) => Some(l),
                    _ => None,
                },
            })
            .collect();
        let (builtin, ty) = match (def.typing)(&infos) {
            Ok(typed) => typed,
            Err(faults) => {
                for fault in faults {
                    self.type_fault(def.name, params, &vals, fault);
                }
                return error(span);
            }
        };
        // Literal-only parameters (a `matches` pattern, an `ip_in` range)
        // are compiled into the call; only the arguments before them stay.
        let keep = params.iter().take_while(|p| !p.literal).count();
        vals.truncate(keep);
        Expr { kind: ExprKind::Call { func: builtin, args: vals }, ty, span }
    }

    /// Report one fault of a built-in's typing rule. A fault on an argument
    /// that already failed is a consequence, not reported again.
    fn type_fault(&mut self, func: &'static str, params: &[Param], vals: &[Expr], fault: TypeFault) {
        let (index, arg_span) = match &fault {
            TypeFault::Arg { index, .. }
            | TypeFault::NotALiteral { index }
            | TypeFault::InvalidRegex { index, .. }
            | TypeFault::InvalidCidr { index, .. } => (*index, vals.get(*index).map(|v| v.span)),
        };
        let (Some(v), Some(span), Some(param)) = (vals.get(index), arg_span, params.get(index)) else {
            return;
        };
        if v.ty.has_error() {
            return;
        }
        self.errors.push(match fault {
            TypeFault::Arg { expected, .. } => CheckError::ArgumentType {
                span,
                func: func.to_string(),
                name: param.name.to_string(),
                expected: match expected {
                    Expected::Text(t) => t.to_string(),
                    Expected::Ty(t) => self.show(&t),
                },
                found: self.show(&v.ty),
            },
            TypeFault::NotALiteral { .. } => CheckError::NotALiteral { span, func, what: param.name },
            TypeFault::InvalidRegex { error, .. } => CheckError::InvalidRegex { span, error },
            TypeFault::InvalidCidr { found, .. } => CheckError::InvalidCidr { span, found },
        });
    }

    fn query(
        &mut self,
        kind: QueryKind,
        entity: &ast::Ident,
        filter: Option<&ast::Expr>,
        cx: &mut RuleCx,
        span: Span,
    ) -> Expr {
        let Some(id) = self.schema.entity_by_name(&entity.name) else {
            let suggestion = suggest(&entity.name, self.schema.entity_names());
            self.errors.push(CheckError::UnknownEntity { span: entity.span, name: entity.name.clone(), suggestion });
            return error(span);
        };
        if cx.phase == Phase::Match {
            self.errors.push(CheckError::QueryInMatch { span, after: cx.in_after });
        }
        let filter = filter.map(|f| {
            let saved = cx.filter.replace(id);
            let f = self.expr(f, cx, Hint::None);
            cx.filter = saved;
            self.require_bool(&f, |found| CheckError::ConditionNotBool { span: f.span, clause: "filter", found });
            if !f.ty.has_error() {
                // The one definition of what a filter may say; the store
                // compiles everything it accepts.
                if let Err(crate::filter::Unsupported { span, reason }) = crate::filter::classify(&f) {
                    self.errors.push(CheckError::UnsupportedFilter { span, reason });
                }
            }
            Box::new(f)
        });
        let ty = match kind {
            QueryKind::Exists => Ty::Bool,
            QueryKind::Count => Ty::Int,
            QueryKind::First => Ty::Entity(id).optional(),
            QueryKind::All => Ty::Entity(id).list(),
        };
        Expr { kind: ExprKind::Query { kind, entity: id, filter }, ty, span }
    }
}
