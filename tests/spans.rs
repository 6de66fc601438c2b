//! Span invariants on every fixture: each AST node's span lies inside the
//! source and inside its parent's span, and every diagnostic (primary span
//! and labels) lies inside the file it names, on character boundaries.

mod common;

use common::{compile_fixture, fixtures, good_fixtures, rel};
use herald::span::{FileId, Span};
use herald::syntax::{self, ast};

struct Walker<'a> {
    name: String,
    text: &'a str,
    problems: Vec<String>,
}

impl Walker<'_> {
    /// `child` must be a valid range of the source inside `parent`.
    fn span(&mut self, what: &str, child: Span, parent: Span) {
        let (s, e) = (child.start as usize, child.end as usize);
        if s > e || e > self.text.len() {
            self.problems.push(format!("{}: {what} span {s}..{e} outside the source", self.name));
            return;
        }
        if !self.text.is_char_boundary(s) || !self.text.is_char_boundary(e) {
            self.problems.push(format!("{}: {what} span {s}..{e} splits a character", self.name));
        }
        if child.start < parent.start || child.end > parent.end {
            self.problems.push(format!(
                "{}: {what} span {s}..{e} `{}` is not inside its parent {}..{}",
                self.name,
                &self.text.get(s..e).unwrap_or("?"),
                parent.start,
                parent.end
            ));
        }
    }

    fn ident(&mut self, i: &ast::Ident, parent: Span) {
        self.span("name", i.span, parent);
        if self.text.get(i.span.range()) != Some(i.name.as_str()) {
            self.problems.push(format!(
                "{}: name `{}` has span text {:?}",
                self.name,
                i.name,
                self.text.get(i.span.range())
            ));
        }
    }

    fn item(&mut self, item: &ast::Item, file: Span) {
        let sp = item.span();
        self.span("item", sp, file);
        match item {
            ast::Item::Discriminator { field, .. } => self.ident(field, sp),
            ast::Item::Identity { path, .. } => path.iter().for_each(|i| self.ident(i, sp)),
            ast::Item::Recipient { entity, .. } => self.ident(entity, sp),
            ast::Item::Time { field, .. } => self.ident(field, sp),
            ast::Item::Type(t) => {
                self.ident(&t.name, sp);
                t.fields.iter().for_each(|f| self.field(f, sp));
            }
            ast::Item::Event(e) => {
                match &e.name {
                    ast::EventName::Common(s) => self.span("`*`", *s, sp),
                    ast::EventName::Named(i) => self.ident(i, sp),
                }
                e.fields.iter().for_each(|f| self.field(f, sp));
            }
            ast::Item::Entity(e) => {
                self.ident(&e.name, sp);
                self.field(&e.key, sp);
                e.fields.iter().for_each(|f| self.field(f, sp));
            }
            ast::Item::Const(c) => {
                self.ident(&c.name, sp);
                self.expr(&c.value, sp);
            }
            ast::Item::Rule(r) => {
                self.ident(&r.name, sp);
                self.span("`{`", r.open_brace, sp);
                for c in &r.clauses {
                    self.clause(c, sp);
                }
            }
            ast::Item::Test(t) => {
                self.span("test name", t.name_span, sp);
                for step in &t.steps {
                    match step {
                        ast::TestStep::Given { entity, row, span } => {
                            self.span("given", *span, sp);
                            self.ident(entity, *span);
                            self.expr(row, *span);
                        }
                        ast::TestStep::Now { text_span, span, .. } => {
                            self.span("now", *span, sp);
                            self.span("now text", *text_span, *span);
                        }
                        ast::TestStep::Event { body, span } => {
                            self.span("event", *span, sp);
                            self.expr(body, *span);
                        }
                        ast::TestStep::Expect { expect, span } => {
                            self.span("expect", *span, sp);
                            match expect {
                                ast::Expect::Fires { rule, .. }
                                | ast::Expect::DoesNotFire { rule }
                                | ast::Expect::RuleError { rule, .. } => self.ident(rule, *span),
                                ast::Expect::Effect { action, args, .. } => {
                                    self.ident(action, *span);
                                    args.iter().for_each(|a| self.expr(&a.value, *span));
                                }
                                ast::Expect::DeadLetter => {}
                                ast::Expect::Expr(e) => self.expr(e, *span),
                            }
                        }
                    }
                }
            }
        }
    }

    fn field(&mut self, f: &ast::FieldDecl, parent: Span) {
        self.span("field", f.span, parent);
        self.ident(&f.name, f.span);
        self.ty(&f.ty, f.span);
    }

    fn ty(&mut self, t: &ast::TypeExpr, parent: Span) {
        let sp = t.span();
        self.span("type", sp, parent);
        match t {
            ast::TypeExpr::Named(i) => self.ident(i, sp),
            ast::TypeExpr::Optional(inner, _) | ast::TypeExpr::List(inner, _) => self.ty(inner, sp),
            ast::TypeExpr::Record(fields, _) => fields.iter().for_each(|f| self.field(f, sp)),
        }
    }

    fn clause(&mut self, c: &ast::Clause, parent: Span) {
        let sp = c.span();
        self.span("clause", sp, parent);
        match c {
            ast::Clause::Match(m) => {
                self.span("`match`", m.keyword, sp);
                match &m.target {
                    ast::MatchTarget::Any(s) => self.span("`any`", *s, sp),
                    ast::MatchTarget::Types(ts) => ts.iter().for_each(|t| self.ident(t, sp)),
                }
                for p in m.patterns.iter().flatten() {
                    self.pattern(p, sp);
                }
                if let Some(w) = &m.where_ {
                    self.expr(w, sp);
                }
            }
            ast::Clause::Let { name, value, .. } | ast::Clause::GuardLet { name, value, .. } => {
                self.ident(name, sp);
                self.expr(value, sp);
            }
            ast::Clause::Guard { cond, .. } => self.expr(cond, sp),
            ast::Clause::Window { duration, keys, test, keyword, .. } => {
                self.span("`window`", *keyword, sp);
                self.span("duration", duration.span, sp);
                keys.iter().for_each(|k| self.expr(k, sp));
                if let Some(d) = &test.distinct {
                    self.expr(d, sp);
                }
                self.span("comparison", test.op_span, sp);
                self.expr(&test.limit, sp);
            }
            ast::Clause::Throttle { duration, keys, keyword, .. } => {
                self.span("`throttle`", *keyword, sp);
                self.span("duration", duration.span, sp);
                keys.iter().for_each(|k| self.expr(k, sp));
            }
            ast::Clause::After(a) => {
                self.span("`after`", a.keyword, sp);
                self.ident(&a.event, sp);
                if let Some(n) = &a.as_ {
                    self.ident(n, sp);
                }
                for p in a.patterns.iter().flatten() {
                    self.pattern(p, sp);
                }
                if let Some(w) = &a.where_ {
                    self.expr(w, sp);
                }
                self.span("duration", a.duration.span, sp);
            }
            ast::Clause::Action { body, .. } => body.iter().for_each(|s| self.stmt(s, sp)),
        }
    }

    fn pattern(&mut self, p: &ast::FieldPattern, parent: Span) {
        self.span("field pattern", p.span, parent);
        p.path.iter().for_each(|i| self.ident(i, p.span));
        let ps = p.pattern.span();
        self.span("pattern", ps, p.span);
        match &p.pattern {
            ast::Pattern::Literal(e) => self.expr(e, ps),
            ast::Pattern::Bind(i) => self.ident(i, ps),
            ast::Pattern::Wildcard(_) => {}
            ast::Pattern::Nested(ps2, _) => ps2.iter().for_each(|q| self.pattern(q, ps)),
        }
    }

    fn place(&mut self, p: &ast::Place, parent: Span) {
        self.span("place", p.span, parent);
        self.ident(&p.root, p.span);
        p.path.iter().for_each(|i| self.ident(i, p.span));
    }

    fn args(&mut self, args: &[ast::Arg], parent: Span) {
        for a in args {
            self.span("argument", a.span, parent);
            if let Some(n) = &a.name {
                self.ident(n, a.span);
            }
            self.expr(&a.value, a.span);
        }
    }

    fn stmt(&mut self, s: &ast::Stmt, parent: Span) {
        let sp = s.span;
        self.span("statement", sp, parent);
        match &s.kind {
            ast::StmtKind::Call { name, args } => {
                self.ident(name, sp);
                self.args(args, sp);
            }
            ast::StmtKind::Set { target, value } | ast::StmtKind::Append { value, target } => {
                self.place(target, sp);
                self.expr(value, sp);
            }
            ast::StmtKind::Remove { target } => self.place(target, sp),
            ast::StmtKind::Add { value, target } | ast::StmtKind::RemoveFrom { value, target } => {
                self.expr(value, sp);
                self.place(target, sp);
            }
            ast::StmtKind::Upsert { entity, key, fields } => {
                self.ident(entity, sp);
                self.expr(key, sp);
                for f in fields {
                    self.span("upsert field", f.span, sp);
                    self.ident(&f.name, f.span);
                    self.expr(&f.value, f.span);
                }
            }
            ast::StmtKind::Delete { entity, key } => {
                self.ident(entity, sp);
                self.expr(key, sp);
            }
            ast::StmtKind::For { var, iter, body } => {
                self.ident(var, sp);
                self.expr(iter, sp);
                body.iter().for_each(|b| self.stmt(b, sp));
            }
            ast::StmtKind::If { cond, then, else_ } => {
                self.expr(cond, sp);
                then.iter().chain(else_.iter().flatten()).for_each(|b| self.stmt(b, sp));
            }
        }
    }

    fn expr(&mut self, e: &ast::Expr, parent: Span) {
        let sp = e.span;
        self.span("expression", sp, parent);
        match &e.kind {
            ast::ExprKind::Null
            | ast::ExprKind::Bool(_)
            | ast::ExprKind::Int(_)
            | ast::ExprKind::Float(_)
            | ast::ExprKind::Duration(_)
            | ast::ExprKind::Error => {}
            ast::ExprKind::Str(parts) => {
                for p in parts {
                    match p {
                        ast::StrPart::Text(_, s) => self.span("string text", *s, sp),
                        ast::StrPart::Expr(x) => self.expr(x, sp),
                    }
                }
            }
            ast::ExprKind::List(items) => items.iter().for_each(|i| self.expr(i, sp)),
            ast::ExprKind::Object(entries) => {
                for entry in entries {
                    self.span("object entry", entry.span, sp);
                    self.span("object key", entry.key_span, entry.span);
                    self.expr(&entry.value, entry.span);
                    if entry.key_span.end > entry.value.span.start {
                        self.problems.push(format!("{}: key after its value at {}", self.name, entry.span.start));
                    }
                }
            }
            ast::ExprKind::Name(i) => self.ident(i, sp),
            ast::ExprKind::Field { base, field } => {
                self.expr(base, sp);
                self.ident(field, sp);
            }
            ast::ExprKind::Index { base, index } => {
                self.expr(base, sp);
                self.expr(index, sp);
            }
            ast::ExprKind::Call { func, args } => {
                self.ident(func, sp);
                self.args(args, sp);
            }
            ast::ExprKind::Unary { op_span, operand, .. } => {
                self.span("operator", *op_span, sp);
                self.expr(operand, sp);
            }
            ast::ExprKind::Binary { op_span, lhs, rhs, .. } => {
                self.span("operator", *op_span, sp);
                self.expr(lhs, sp);
                self.expr(rhs, sp);
                if lhs.span.end > op_span.start || op_span.end > rhs.span.start {
                    self.problems.push(format!("{}: operands and operator out of order at {}", self.name, sp.start));
                }
            }
            ast::ExprKind::Query { entity, filter, .. } => {
                self.ident(entity, sp);
                if let Some(f) = filter {
                    self.expr(f, sp);
                }
            }
        }
    }
}

fn all_fixtures() -> Vec<std::path::PathBuf> {
    let mut v = fixtures("errors");
    v.extend(good_fixtures());
    v.extend(fixtures("runtime"));
    v.extend(fixtures("schemas"));
    v.extend(fixtures("suites"));
    v
}

#[test]
fn ast_spans_nest() {
    let mut problems = Vec::new();
    let mut nodes_files = 0;
    for path in all_fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = syntax::parse(FileId(0), &text);
        let mut w = Walker { name: rel(&path), text: &text, problems: Vec::new() };
        let file = Span::new(FileId(0), 0, text.len());
        for item in &parsed.ast.items {
            w.item(item, file);
        }
        // Items do not overlap and come in source order.
        for pair in parsed.ast.items.windows(2) {
            if pair[0].span().end > pair[1].span().start {
                w.problems.push(format!("{}: items overlap", w.name));
            }
        }
        nodes_files += usize::from(!parsed.ast.items.is_empty());
        problems.extend(w.problems);
    }
    assert!(nodes_files > 150, "only {nodes_files} fixtures had items");
    assert!(problems.is_empty(), "{} span problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn diagnostic_spans_inside_their_files() {
    let mut problems = Vec::new();
    for path in all_fixtures() {
        let (compiled, sources, _) = compile_fixture(&path);
        for d in &compiled.diagnostics {
            let spans = std::iter::once(d.span).chain(d.labels.iter().map(|l| l.span));
            for s in spans {
                let text = sources.text(s.file);
                let ok = s.start <= s.end
                    && (s.end as usize) <= text.len()
                    && text.is_char_boundary(s.start as usize)
                    && text.is_char_boundary(s.end as usize);
                if !ok {
                    problems.push(format!("{}: {} span {}..{} outside its file", rel(&path), d.code, s.start, s.end));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
