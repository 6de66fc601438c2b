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

    /// Resolve the target of `set`/`append`/`remove`.
    fn place(&mut self, p: &ast::Place, cx: &mut RuleCx, stmt: &'static str) -> Option<ir::Place> {
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
        let entity = match &ty {
            Ty::Entity(e) => *e,
            Ty::Error => return None,
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
                return None;
            }
            other => {
                self.errors.push(CheckError::NotAnEntityBinding {
                    span: p.root.span,
                    name: p.root.name.clone(),
                    found: self.show(other),
                });
                return None;
            }
        };
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
            self.errors.push(CheckError::SetManyToMany { span: first.span, stmt, field: first.name.clone() });
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
