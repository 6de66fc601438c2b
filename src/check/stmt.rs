//! Checking action statements.

use super::{CheckError, Checker, Hint, RuleCx};
use crate::builtins::{self, actions, ActionDef};
use crate::diag::suggest;
use crate::ir::{self, Expr, ExprKind, FieldRef, HttpMethod, LogLevel, Severity};
use crate::span::Span;
use crate::syntax::ast;
use crate::types::Ty;
use crate::value::Value;

impl Checker<'_> {
    pub(crate) fn stmt(&mut self, s: &ast::Stmt, cx: &mut RuleCx) -> Option<ir::Stmt> {
        let span = s.span;
        match &s.kind {
            ast::StmtKind::Call { name, args } => self.action_call(name, args, cx, span),
            ast::StmtKind::Set { target, value } => {
                let place = self.place(target, cx, "set");
                let value = self.expr(value, cx, Hint::None);
                let place = place?;
                let value = self.coerce(value, &place.ty);
                if !value.ty.unwrap_optional().fits(place.ty.unwrap_optional()) && value.ty != Ty::Null {
                    self.errors.push(CheckError::SetTypeMismatch {
                        span: value.span,
                        place: place_text(target),
                        expected: self.show(&place.ty),
                        found: self.show(&value.ty),
                    });
                }
                Some(ir::Stmt::Set { place, value, span })
            }
            ast::StmtKind::Append { value, target } => {
                let place = self.place(target, cx, "append");
                let value = self.expr(value, cx, Hint::None);
                let place = place?;
                let elem = match place.ty.unwrap_optional() {
                    Ty::Any | Ty::Error => Ty::Any,
                    Ty::List(elem) => (**elem).clone(),
                    other => {
                        self.errors.push(CheckError::AppendNotList {
                            span: target.span,
                            place: place_text(target),
                            found: self.show(other),
                        });
                        return None;
                    }
                };
                let value = self.coerce(value, &elem);
                if !value.ty.unwrap_optional().fits(elem.unwrap_optional()) {
                    self.errors.push(CheckError::TypeMismatch {
                        span: value.span,
                        expected: self.show(&elem),
                        found: self.show(&value.ty),
                        context: format!(" in `append` to `{}`", place_text(target)),
                    });
                }
                Some(ir::Stmt::Append { place, value, span })
            }
            ast::StmtKind::Remove { target } => {
                let place = self.place(target, cx, "remove")?;
                if place.path.is_empty() && !place.ty.admits_absent() && !place.ty.has_error() {
                    self.errors.push(CheckError::RemoveRequired { span: target.span, place: place_text(target) });
                }
                Some(ir::Stmt::Remove { place, span })
            }
            ast::StmtKind::Upsert { entity, key, fields } => self.upsert(entity, key, fields, cx, span),
            ast::StmtKind::Delete { entity, key } => {
                let entity_id = self.entity_name(entity);
                let key = self.row_key(entity_id, key, cx, "delete");
                Some(ir::Stmt::Delete { entity: entity_id?, key: key?, span })
            }
            ast::StmtKind::Add { value, target } | ast::StmtKind::RemoveFrom { value, target } => {
                let add = matches!(s.kind, ast::StmtKind::Add { .. });
                let stmt = if add { "add" } else { "remove … from" };
                let place = self.link_place(target, cx, stmt);
                let value = self.expr(value, cx, Hint::None);
                let place = place?;
                let target_entity = self.schema.entity(place.entity).many_to_many(place.field)?;
                let tdef = self.schema.entity(target_entity);
                let key_ty = tdef.key.ty.clone();
                let value = self.coerce(value, &key_ty);
                let value = self.coerce(value, &key_ty.clone().list());
                // One element (a row of the target entity or its key) or a
                // list of them; optional ones are fine (absent adds nothing).
                let one = |t: &Ty| match t.unwrap_optional() {
                    Ty::Error | Ty::Any | Ty::Null | Ty::Never => true,
                    Ty::Entity(e) => *e == target_entity,
                    t => t.fits(&key_ty),
                };
                let ok = match value.ty.unwrap_optional() {
                    Ty::List(inner) => one(inner),
                    t => one(t),
                };
                if !ok {
                    self.errors.push(CheckError::BadLinkElement {
                        span: value.span,
                        stmt,
                        place: place_text(target),
                        entity: tdef.name.clone(),
                        key_ty: self.show(&key_ty),
                        found: self.show(&value.ty),
                    });
                    return None;
                }
                Some(ir::Stmt::Link { place, value, add, span })
            }
            ast::StmtKind::For { var, iter, body } => {
                let iter = self.expr(iter, cx, Hint::List);
                let elem = match iter.ty.unwrap_optional() {
                    Ty::List(elem) => (**elem).clone(),
                    Ty::Any => Ty::Any,
                    Ty::Error => Ty::Error,
                    other => {
                        self.errors.push(CheckError::ForNotList { span: iter.span, found: self.show(other) });
                        Ty::Error
                    }
                };
                cx.scopes.push(Vec::new());
                let local = self.new_local(cx, var, elem, super::LocalKind::For);
                let body = body.iter().filter_map(|s| self.stmt(s, cx)).collect();
                cx.scopes.pop();
                Some(ir::Stmt::For { var: local, iter, body, span })
            }
            ast::StmtKind::If { cond, then, else_ } => {
                let cond = self.condition(cond, cx, "if");
                cx.scopes.push(Vec::new());
                let then = then.iter().filter_map(|s| self.stmt(s, cx)).collect();
                cx.scopes.pop();
                cx.scopes.push(Vec::new());
                let else_ = else_.iter().flatten().filter_map(|s| self.stmt(s, cx)).collect();
                cx.scopes.pop();
                Some(ir::Stmt::If { cond, then, else_, span })
            }
        }
    }

    fn action_call(&mut self, name: &ast::Ident, args: &[ast::Arg], cx: &mut RuleCx, span: Span) -> Option<ir::Stmt> {
        let Some(def) = actions::action(&name.name) else {
            let other = name.name.as_str();
            let is_function = builtins::function(other).is_some();
            let suggestion = suggest(other, actions::action_names());
            self.errors.push(CheckError::UnknownStatement {
                span: name.span,
                name: other.to_string(),
                suggestion,
                is_function,
            });
            for a in args {
                self.expr(&a.value, cx, Hint::None);
            }
            return None;
        };
        let slots = self.resolve_args(def.name, span, def.params, args);
        match def.name {
            "notify" => {
                let recipient = self.schema.recipient;
                if recipient.is_none() {
                    self.errors.push(CheckError::NoRecipientEntity { span: name.span });
                }
                let to = slots[0].map(|a| self.expr(&a.value, cx, Hint::List));
                let body = slots[1].map(|a| self.expr(&a.value, cx, Hint::None));
                let severity = self.choice(slots[2], cx, def, "severity", Severity::parse);
                let (to, body, severity) = (to?, body?, severity?);
                if let Some(r) = recipient {
                    let def = self.schema.entity(r);
                    let key_ty = def.key.ty.clone();
                    let to_ok = |t: &Ty| -> bool {
                        let t = t.unwrap_optional();
                        let one = |t: &Ty| matches!(t, Ty::Entity(e) if *e == r) || t.fits(&key_ty) && *t != Ty::Null;
                        match t {
                            Ty::Error | Ty::Any | Ty::Null => true,
                            Ty::List(inner) => one(inner.unwrap_optional()) || matches!(**inner, Ty::Never | Ty::Any),
                            t => one(t),
                        }
                    };
                    if !to_ok(&to.ty) {
                        self.errors.push(CheckError::BadRecipients {
                            span: to.span,
                            entity: def.name.clone(),
                            key_ty: self.show(&key_ty),
                            found: self.show(&to.ty),
                        });
                    }
                }
                self.require_text(&body, "notify", "body");
                Some(ir::Stmt::Notify { to, body, severity, span })
            }
            "send_email" => {
                let vals: Vec<Option<Expr>> =
                    slots.iter().map(|s| s.map(|a| self.expr(&a.value, cx, Hint::None))).collect();
                let mut it = vals.into_iter();
                let (to, subject, body, cc, bcc) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
                let (to, subject, body) = (to?, subject?, body?);
                match &to.ty {
                    Ty::String | Ty::Any | Ty::Error => {}
                    Ty::List(inner) if matches!(inner.unwrap_optional(), Ty::String | Ty::Any | Ty::Never) => {}
                    Ty::Optional(inner)
                        if matches!(**inner, Ty::String) || matches!(&**inner, Ty::List(i) if **i == Ty::String) =>
                    {
                        self.errors.push(CheckError::OptionalValue {
                            span: to.span,
                            found: self.show(&to.ty),
                            needed: self.show(inner),
                            help: "unwrap it first: `guard let user = User[pk]` then `to: user.email`, or `guard let addr = ...`".into(),
                        });
                    }
                    other => self.errors.push(CheckError::ArgumentType {
                        span: to.span,
                        func: "send_email".into(),
                        name: "to".into(),
                        expected: "string or [string]".into(),
                        found: self.show(other),
                    }),
                }
                self.require_text(&subject, "send_email", "subject");
                self.require_text(&body, "send_email", "body");
                for (e, n) in [(&cc, "cc"), (&bcc, "bcc")] {
                    if let Some(e) = e {
                        let ok = match e.ty.unwrap_optional() {
                            Ty::Any | Ty::Error | Ty::Null | Ty::String => true,
                            Ty::List(inner) => matches!(inner.unwrap_optional(), Ty::String | Ty::Any | Ty::Never),
                            _ => false,
                        };
                        if !ok {
                            self.errors.push(CheckError::ArgumentType {
                                span: e.span,
                                func: "send_email".into(),
                                name: n.into(),
                                expected: "[string]".into(),
                                found: self.show(&e.ty),
                            });
                        }
                    }
                }
                Some(ir::Stmt::SendEmail { to, subject, body, cc, bcc, span })
            }
            "log" => {
                let message = slots[0].map(|a| self.expr(&a.value, cx, Hint::None));
                let level = self.choice(slots[1], cx, def, "level", LogLevel::parse);
                let (message, level) = (message?, level?);
                self.require_text(&message, "log", "message");
                Some(ir::Stmt::Log { message, level, span })
            }
            "webhook" => {
                let url = slots[0].map(|a| self.expr(&a.value, cx, Hint::None));
                let body = slots[1].map(|a| self.expr(&a.value, cx, Hint::None));
                let headers = slots[2].map(|a| self.expr(&a.value, cx, Hint::None));
                let method = self.choice(slots[3], cx, def, "method", HttpMethod::parse);
                let (url, body, method) = (url?, body?, method?);
                self.require_text(&url, "webhook", "url");
                if let Some(h) = &headers {
                    self.require_headers(h);
                }
                Some(ir::Stmt::Webhook { url, body, headers, method, span })
            }
            // An action in the registry that this checker does not know is
            // a bug; it is reported rather than dropped silently.
            other => {
                self.errors.push(CheckError::UnknownStatement {
                    span: name.span,
                    name: other.to_string(),
                    suggestion: None,
                    is_function: false,
                });
                None
            }
        }
    }

    /// Text arguments (`body`, `subject`, `message`): strings, or values of
    /// `any` checked at run time; absent formats as the empty string.
    fn require_text(&mut self, e: &Expr, func: &str, name: &str) {
        if !matches!(e.ty.unwrap_optional(), Ty::String | Ty::Any | Ty::Error | Ty::Null) {
            self.errors.push(CheckError::ArgumentType {
                span: e.span,
                func: func.into(),
                name: name.into(),
                expected: "string".into(),
                found: self.show(&e.ty),
            });
        }
    }

    /// `headers:` of `webhook`: a record whose fields are strings, or `any`
    /// checked at run time; an optional or null means no headers. (When
    /// object literals arrive with their own type, that type takes the same
    /// rule as a record: every field a string.)
    fn require_headers(&mut self, e: &Expr) {
        let ok = match e.ty.unwrap_optional() {
            Ty::Any | Ty::Error | Ty::Null => true,
            // `get`, not `record`: a record the schema does not hold (an
            // inline record typed elsewhere) is accepted and its values are
            // checked at run time like `any`.
            Ty::Record(r) => self.schema.records.get(r.0 as usize).is_none_or(|rec| {
                rec.fields.iter().all(|f| matches!(f.ty.unwrap_optional(), Ty::String | Ty::Any | Ty::Null | Ty::Error))
            }),
            // An object literal: `headers: { Authorization: "Bearer {t}" }`.
            Ty::Object(fields) => {
                fields.iter().all(|(_, t)| matches!(t.unwrap_optional(), Ty::String | Ty::Any | Ty::Null | Ty::Error))
            }
            _ => false,
        };
        if !ok {
            self.errors.push(CheckError::WebhookHeaders { span: e.span, found: self.show(&e.ty) });
        }
    }

    /// An enumerated argument (`severity`, `level`): a string literal among
    /// the parameter's registered choices, parsed here once; the registered
    /// default when left out. `None` after reporting a bad argument.
    fn choice<T>(
        &mut self,
        a: Option<&ast::Arg>,
        cx: &mut RuleCx,
        action: &'static ActionDef,
        name: &'static str,
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let param = action.param(name)?;
        let Some(a) = a else {
            return param.default.and_then(parse);
        };
        let e = self.expr(&a.value, cx, Hint::None);
        let s = match &e.kind {
            ExprKind::Lit(Value::Str(s)) => s.to_string(),
            _ if e.ty.has_error() => return None,
            _ => {
                self.errors.push(CheckError::NotALiteral { span: e.span, func: action.name, what: name });
                return None;
            }
        };
        if let Some(v) = parse(&s) {
            return Some(v);
        }
        let suggestion = suggest(&s, param.choices.iter().copied());
        self.errors.push(match name {
            "severity" => CheckError::InvalidSeverity { span: e.span, found: s, suggestion },
            "method" => CheckError::InvalidMethod { span: e.span, found: s, suggestion },
            _ => CheckError::InvalidLevel { span: e.span, found: s, suggestion },
        });
        None
    }

    /// E0435: a write through a binding after the same actions deleted the
    /// binding's own row (`delete User[user.pk]` then `set user.name = ...`),
    /// which can only fail at run time (R0005, no row). Only definite cases:
    /// a `delete` inside a `for` or `if` counts for the rest of its block,
    /// not after it, and an `upsert` of the same key re-creates the row.
    pub(crate) fn writes_after_delete(
        &mut self,
        stmts: &[ir::Stmt],
        locals: &[ir::Local],
        deleted: &mut Vec<(ir::LocalId, Span)>,
    ) {
        // The binding whose key a `delete`/`upsert` names: `E[b.key]`.
        fn own_row(entity: crate::types::EntityId, key: &Expr) -> Option<ir::LocalId> {
            match &key.kind {
                ExprKind::Column { base, entity: e, field: FieldRef::Key } if *e == entity => match base.kind {
                    ExprKind::Local(l) => Some(l),
                    _ => None,
                },
                _ => None,
            }
        }
        for st in stmts {
            match st {
                ir::Stmt::Delete { entity, key, span } => {
                    if let Some(l) = own_row(*entity, key) {
                        if !deleted.iter().any(|(d, _)| *d == l) {
                            deleted.push((l, *span));
                        }
                    }
                }
                ir::Stmt::Upsert { entity, key, .. } => {
                    if let Some(l) = own_row(*entity, key) {
                        deleted.retain(|(d, _)| *d != l);
                    }
                }
                ir::Stmt::Set { place, .. }
                | ir::Stmt::Append { place, .. }
                | ir::Stmt::Remove { place, .. }
                | ir::Stmt::Link { place, .. } => {
                    if let Some(i) = deleted.iter().position(|(d, _)| *d == place.local) {
                        // Reported once per deletion.
                        let (l, at) = deleted.remove(i);
                        self.errors.push(CheckError::WriteAfterDelete {
                            span: place.span,
                            name: locals[l.0 as usize].name.clone(),
                            deleted: at,
                        });
                    }
                }
                ir::Stmt::For { body, .. } => self.writes_after_delete(body, locals, &mut deleted.clone()),
                ir::Stmt::If { then, else_, .. } => {
                    self.writes_after_delete(then, locals, &mut deleted.clone());
                    self.writes_after_delete(else_, locals, &mut deleted.clone());
                }
                ir::Stmt::Notify { .. }
                | ir::Stmt::SendEmail { .. }
                | ir::Stmt::Log { .. }
                | ir::Stmt::Webhook { .. } => {}
            }
        }
    }

    /// An entity named by `upsert`/`delete`: reported when unknown.
    fn entity_name(&mut self, name: &ast::Ident) -> Option<crate::types::EntityId> {
        let id = self.schema.entity_by_name(&name.name);
        if id.is_none() {
            let suggestion = suggest(&name.name, self.schema.entity_names());
            self.errors.push(CheckError::UnknownEntity { span: name.span, name: name.name.clone(), suggestion });
        }
        id
    }

    /// The key of `upsert E[key]`/`delete E[key]`: one value of the key's
    /// type (an optional one is checked at run time). A list is refused:
    /// these statements write one row.
    fn row_key(
        &mut self,
        entity: Option<crate::types::EntityId>,
        key: &ast::Expr,
        cx: &mut RuleCx,
        stmt: &'static str,
    ) -> Option<Expr> {
        let key = self.expr(key, cx, Hint::None);
        let entity = entity?;
        let def = self.schema.entity(entity);
        let key_ty = def.key.ty.clone();
        let key = self.coerce(key, &key_ty);
        let t = key.ty.unwrap_optional();
        if !(matches!(t, Ty::Error | Ty::Any) || t.fits(&key_ty) && *t != Ty::Null) {
            self.errors.push(CheckError::BadRowKey {
                span: key.span,
                stmt,
                entity: def.name.clone(),
                key_ty: self.show(&key_ty),
                found: self.show(&key.ty),
            });
            return None;
        }
        Some(key)
    }

    fn upsert(
        &mut self,
        entity: &ast::Ident,
        key: &ast::Expr,
        fields: &[ast::UpsertField],
        cx: &mut RuleCx,
        span: Span,
    ) -> Option<ir::Stmt> {
        let entity_id = self.entity_name(entity);
        let key = self.row_key(entity_id, key, cx, "upsert");
        let Some(eid) = entity_id else {
            for f in fields {
                self.expr(&f.value, cx, Hint::None);
            }
            return None;
        };
        let def = self.schema.entity(eid).clone();
        let mut out: Vec<ir::UpsertField> = Vec::new();
        let mut ok = true;
        let mut seen: Vec<(usize, Span)> = Vec::new();
        for f in fields {
            let value = self.expr(&f.value, cx, Hint::None);
            if def.key.name == f.name.name {
                self.errors.push(CheckError::UpsertKeyField {
                    span: f.name.span,
                    entity: def.name.clone(),
                    key: f.name.name.clone(),
                });
                ok = false;
                continue;
            }
            let Some((idx, field)) = def.field(&f.name.name) else {
                let names = def.fields.iter().map(|f| f.name.as_str());
                let suggestion = suggest(&f.name.name, names);
                self.errors.push(CheckError::UnknownField {
                    span: f.name.span,
                    field: f.name.name.clone(),
                    owner: format!("entity `{}`", def.name),
                    suggestion,
                });
                ok = false;
                continue;
            };
            if let Some(&(_, first)) = seen.iter().find(|(i, _)| *i == idx) {
                self.errors.push(CheckError::UpsertDuplicateField {
                    span: f.name.span,
                    field: f.name.name.clone(),
                    first,
                });
                ok = false;
                continue;
            }
            seen.push((idx, f.name.span));
            if def.many_to_many(idx).is_some() {
                self.errors.push(CheckError::SetManyToMany {
                    span: f.name.span,
                    stmt: "upsert",
                    field: f.name.name.clone(),
                    root: None,
                });
                ok = false;
                continue;
            }
            let fty = field.ty.clone();
            let value = self.coerce(value, &fty);
            if !value.ty.unwrap_optional().fits(fty.unwrap_optional()) && value.ty != Ty::Null {
                self.errors.push(CheckError::SetTypeMismatch {
                    span: value.span,
                    place: format!("{}.{}", def.name, f.name.name),
                    expected: self.show(&fty),
                    found: self.show(&value.ty),
                });
                ok = false;
                continue;
            }
            out.push(ir::UpsertField { field: idx, value, span: f.span });
        }
        // Creating a row needs every required column; an upsert that leaves
        // one out can only update. That may be intended (the row is known to
        // exist), so it is a warning here and a rule error (R0002) at run
        // time, when the row does not exist.
        if ok {
            let missing: Vec<String> = def
                .fields
                .iter()
                .enumerate()
                .filter(|(i, f)| {
                    def.many_to_many(*i).is_none()
                        && !f.ty.is_optional()
                        && !f.ty.admits_absent()
                        && !seen.iter().any(|(j, _)| j == i)
                })
                .map(|(_, f)| f.name.clone())
                .collect();
            if !missing.is_empty() {
                self.errors.push(CheckError::UpsertMissingRequired {
                    span: entity.span,
                    entity: def.name.clone(),
                    missing,
                });
            }
        }
        let key = key?;
        if !ok {
            return None;
        }
        Some(ir::Stmt::Upsert { entity: eid, key, fields: out, span })
    }

    /// Resolve the target of `add … to` / `remove … from`: a many-to-many
    /// field of an entity binding, with nothing after it.
    fn link_place(&mut self, p: &ast::Place, cx: &mut RuleCx, stmt: &'static str) -> Option<ir::Place> {
        let (local, entity) = self.place_root(p, cx)?;
        let def = self.schema.entity(entity);
        let first = p.path.first()?;
        let Some((idx, field)) = def.field(&first.name) else {
            let names = def.fields.iter().enumerate().filter(|(i, _)| def.many_to_many(*i).is_some());
            let suggestion = suggest(&first.name, names.map(|(_, f)| f.name.as_str()))
                .or_else(|| suggest(&first.name, def.fields.iter().map(|f| f.name.as_str())));
            self.errors.push(CheckError::UnknownField {
                span: first.span,
                field: first.name.clone(),
                owner: format!("entity `{}`", def.name),
                suggestion,
            });
            return None;
        };
        if def.many_to_many(idx).is_none() {
            let is_list = matches!(field.ty.unwrap_optional(), Ty::List(_) | Ty::Any);
            let found = self.show(&field.ty);
            self.errors.push(CheckError::LinkNotManyToMany {
                span: first.span,
                stmt,
                place: place_text(p),
                found,
                is_list,
            });
            return None;
        }
        if let Some(next) = p.path.get(1) {
            let ty = self.show(&field.ty);
            self.errors.push(CheckError::NoFields { span: next.span, field: next.name.clone(), ty });
            return None;
        }
        Some(ir::Place { local, entity, field: idx, path: Vec::new(), ty: field.ty.clone(), span: p.span })
    }

    /// The entity binding a place starts from, reported when it is none.
    fn place_root(&mut self, p: &ast::Place, cx: &mut RuleCx) -> Option<(ir::LocalId, crate::types::EntityId)> {
        if p.root.name == "event" {
            self.errors.push(CheckError::EventReadOnly { span: p.span });
            return None;
        }
        let Some(local) = cx.lookup(&p.root.name) else {
            if let Some(c) = self.consts.get(&p.root.name) {
                let found = self.show(&c.ty);
                self.errors.push(CheckError::NotAnEntityBinding {
                    span: p.root.span,
                    name: p.root.name.clone(),
                    found,
                });
                return None;
            }
            let suggestion = suggest(&p.root.name, cx.names().iter().map(|s| s.as_str()));
            self.errors.push(CheckError::UnknownName {
                span: p.root.span,
                name: p.root.name.clone(),
                suggestion,
                hint: None,
            });
            return None;
        };
        cx.used[local.0 as usize] = true;
        let ty = cx.locals[local.0 as usize].ty.clone();
        match &ty {
            Ty::Entity(e) => Some((local, *e)),
            Ty::Error => None,
            Ty::Optional(inner) if matches!(**inner, Ty::Entity(_)) => {
                self.errors.push(CheckError::OptionalValue {
                    span: p.root.span,
                    found: self.show(&ty),
                    needed: self.show(inner),
                    help: format!(
                        "bind it with `guard let {} = ...` so the rule stops when there is no row",
                        p.root.name
                    ),
                });
                None
            }
            other => {
                self.errors.push(CheckError::NotAnEntityBinding {
                    span: p.root.span,
                    name: p.root.name.clone(),
                    found: self.show(other),
                });
                None
            }
        }
    }

    /// Resolve the target of `set`/`append`/`remove`.
    fn place(&mut self, p: &ast::Place, cx: &mut RuleCx, stmt: &'static str) -> Option<ir::Place> {
        let (local, entity) = self.place_root(p, cx)?;
        let def = self.schema.entity(entity);
        let first = p.path.first()?;
        if def.key.name == first.name {
            self.errors.push(CheckError::SetKey {
                span: first.span,
                entity: def.name.clone(),
                key: first.name.clone(),
            });
            return None;
        }
        let Some((idx, field)) = def.field(&first.name) else {
            let names = std::iter::once(def.key.name.as_str()).chain(def.fields.iter().map(|f| f.name.as_str()));
            let suggestion = suggest(&first.name, names);
            self.errors.push(CheckError::UnknownField {
                span: first.span,
                field: first.name.clone(),
                owner: format!("entity `{}`", def.name),
                suggestion,
            });
            return None;
        };
        if def.many_to_many(idx).is_some() {
            self.errors.push(CheckError::SetManyToMany {
                span: first.span,
                stmt,
                field: first.name.clone(),
                root: Some(p.root.name.clone()),
            });
            return None;
        }
        let field_ty = field.ty.clone();
        let rest: Vec<String> = p.path[1..].iter().map(|i| i.name.clone()).collect();
        if !rest.is_empty() && field_ty.unwrap_optional() != &Ty::Any && !field_ty.has_error() {
            self.errors.push(CheckError::NoFields {
                span: p.path[1].span,
                field: rest[0].clone(),
                ty: self.show(&field_ty),
            });
            return None;
        }
        let ty = if rest.is_empty() { field_ty } else { Ty::Any };
        let _ = FieldRef::Key;
        Some(ir::Place { local, entity, field: idx, path: rest, ty, span: p.span })
    }
}

fn place_text(p: &ast::Place) -> String {
    let mut s = p.root.name.clone();
    for seg in &p.path {
        s.push('.');
        s.push_str(&seg.name);
    }
    s
}
