//! Editor queries over a checked program and its source text: the type at an
//! offset, the definition of a name, completions, documentation of built-ins,
//! the "did you mean" fix of a diagnostic. Pure (no IO): the language server
//! (`lsp`) calls these with byte offsets and converts positions itself.
//!
//! Completion works on the text, not on the AST: while the user types
//! `event.`, the rule does not parse, so the enclosing rule's event types and
//! the path before the cursor are read off the text around it.

use crate::builtins::{self, actions};
use crate::diag::Diagnostic;
use crate::ir::{self, Program};
use crate::schema::Schema;
use crate::span::{FileId, Span};
use crate::syntax::ast;
use crate::types::{Ty, TyDisplay};

/// Every top-level expression of a rule.
fn rule_exprs(rule: &ir::Rule) -> Vec<&ir::Expr> {
    let mut out = vec![&rule.matcher.cond];
    for s in &rule.steps {
        match s {
            ir::Step::Let { value, .. } | ir::Step::GuardLet { value, .. } => out.push(value),
            ir::Step::Guard { cond, .. } => out.push(cond),
            ir::Step::Window(w) => {
                out.extend(w.keys.iter());
                out.extend(w.distinct.iter());
            }
            ir::Step::Throttle(t) => out.extend(t.keys.iter()),
            ir::Step::After(a) => out.push(&a.matcher.cond),
        }
    }
    fn stmts<'a>(ss: &'a [ir::Stmt], out: &mut Vec<&'a ir::Expr>) {
        for s in ss {
            match s {
                ir::Stmt::Notify { to, body, .. } => out.extend([to, body]),
                ir::Stmt::SendEmail { to, subject, body, cc, bcc, .. } => {
                    out.extend([to, subject, body]);
                    out.extend(cc.iter().chain(bcc.iter()));
                }
                ir::Stmt::Log { message, .. } => out.push(message),
                ir::Stmt::Set { value, .. } | ir::Stmt::Append { value, .. } => out.push(value),
                ir::Stmt::Remove { .. } => {}
                ir::Stmt::Webhook { url, body, headers, .. } => {
                    out.extend([url, body]);
                    out.extend(headers.iter());
                }
                ir::Stmt::Upsert { key, fields, .. } => {
                    out.push(key);
                    out.extend(fields.iter().map(|f| &f.value));
                }
                ir::Stmt::Delete { key, .. } => out.push(key),
                ir::Stmt::Link { value, .. } => out.push(value),
                ir::Stmt::For { iter, body, .. } => {
                    out.push(iter);
                    stmts(body, out);
                }
                ir::Stmt::If { cond, then, else_, .. } => {
                    out.push(cond);
                    stmts(then, out);
                    stmts(else_, out);
                }
            }
        }
    }
    stmts(&rule.actions, &mut out);
    out
}

fn show(ty: &Ty, schema: &Schema) -> String {
    TyDisplay { ty, schema }.to_string()
}

/// The innermost expression of `file` whose span holds `offset`, with the
/// rule it belongs to.
fn expr_at(program: &Program, file: FileId, offset: usize) -> Option<(&ir::Rule, &ir::Expr)> {
    let mut best: Option<(&ir::Rule, &ir::Expr)> = None;
    for rule in &program.rules {
        if rule.span.file != file || !(rule.span.start as usize..=rule.span.end as usize).contains(&offset) {
            continue;
        }
        for top in rule_exprs(rule) {
            top.walk(&mut |e| {
                let s = e.span;
                let inside = s.file == file && (s.start as usize) <= offset && offset < s.end as usize;
                // Innermost wins; on equal spans the later (a child) does.
                if inside && best.is_none_or(|(_, b)| s.len() <= b.span.len()) {
                    best = Some((rule, e));
                }
            });
        }
    }
    best
}

/// The type of the expression (or the local's declaration) at `offset`.
pub fn type_at(program: &Program, file: FileId, offset: usize) -> Option<(Span, String)> {
    for rule in &program.rules {
        for l in &rule.locals {
            if l.span.file == file && (l.span.start as usize) <= offset && offset < l.span.end as usize {
                return Some((l.span, format!("{}: {}", l.name, show(&l.ty, &program.schema))));
            }
        }
    }
    let (rule, e) = expr_at(program, file, offset)?;
    let what = match &e.kind {
        ir::ExprKind::Local(id) => format!("{}: {}", rule.local(*id).name, show(&e.ty, &program.schema)),
        ir::ExprKind::Event(p) => {
            format!("event.{}: {}", program.path(*p).join("."), show(&e.ty, &program.schema))
        }
        _ => show(&e.ty, &program.schema),
    };
    Some((e.span, what))
}

/// Where the name at `offset` is defined: a `let`, a pattern binding, a
/// `for` variable, a const, an entity or a type.
pub fn definition(
    program: Option<&Program>,
    file_ast: &ast::File,
    text: &str,
    file: FileId,
    offset: usize,
) -> Option<Span> {
    if let Some(p) = program {
        if let Some((rule, e)) = expr_at(p, file, offset) {
            if let ir::ExprKind::Local(id) = &e.kind {
                return Some(rule.local(*id).span);
            }
        }
    }
    let (_, _, word) = word_at(text, offset)?;
    for item in &file_ast.items {
        match item {
            ast::Item::Const(c) if c.name.name == word => return Some(c.name.span),
            ast::Item::Entity(en) if en.name.name == word => return Some(en.name.span),
            ast::Item::Type(t) if t.name.name == word => return Some(t.name.span),
            ast::Item::Rule(r) if r.name.name == word => return Some(r.name.span),
            _ => {}
        }
    }
    let schema = &program?.schema;
    if let Some(id) = schema.entity_by_name(word) {
        return Some(schema.entity(id).span);
    }
    schema.type_by_name(word).map(|id| schema.record(id).span)
}

/// The identifier around `offset`: (start, end, text).
pub fn word_at(text: &str, offset: usize) -> Option<(usize, usize, &str)> {
    let is_id = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = text.as_bytes();
    let offset = offset.min(b.len());
    let mut s = offset;
    while s > 0 && is_id(b[s - 1]) {
        s -= 1;
    }
    let mut e = offset;
    while e < b.len() && is_id(b[e]) {
        e += 1;
    }
    (s < e).then(|| (s, e, &text[s..e]))
}

/// The documentation of a built-in function or action called `name`.
pub fn builtin_doc(name: &str) -> Option<String> {
    if let Some(f) = builtins::function(name) {
        return Some(format!("```herald\n{} -> {}\n```\n{}", builtins::signature(f.name, f.params), f.returns, f.doc));
    }
    actions::action(name).map(|a| format!("```herald\n{}\n```\n{}", builtins::signature(a.name, a.params), a.doc))
}

/// The documentation of a test's expectation word (`expect rule_error(...)`,
/// `expect dead_letter`): these are not built-ins, but read like calls.
fn expect_doc(word: &str) -> Option<&'static str> {
    match word {
        "rule_error" => Some(concat!(
            "```herald\nexpect rule_error(RULE[, \"CODE\"])\n```\n",
            "The rule failed at run time on some event of the test (with that `R` code). ",
            "It also allows those errors: any other rule error during the test's events fails the test."
        )),
        "dead_letter" => Some("```herald\nexpect dead_letter\n```\nSome event of the test became a dead letter."),
        _ => None,
    }
}

/// Hover text at `offset`: a built-in's documentation, an entity's fields,
/// or the type of the expression there.
pub fn hover(program: Option<&Program>, text: &str, file: FileId, offset: usize) -> Option<(Span, String)> {
    let word = word_at(text, offset);
    if let Some((s, _, w)) = word {
        if text[..s].trim_end().ends_with("expect") {
            if let Some(doc) = expect_doc(w) {
                return Some((Span::new(file, s, s + w.len()), doc.to_string()));
            }
        }
    }
    if let Some((s, e, w)) = word {
        let called = text[e..].trim_start().starts_with('(');
        if called {
            if let Some(doc) = builtin_doc(w) {
                return Some((Span::new(file, s, e), doc));
            }
        }
    }
    let program = program?;
    if let Some((span, ty)) = type_at(program, file, offset) {
        return Some((span, format!("```herald\n{ty}\n```")));
    }
    let (s, e, w) = word?;
    let schema = &program.schema;
    let id = schema.entity_by_name(w)?;
    let en = schema.entity(id);
    let mut doc = format!("```herald\nentity {} key {}: {}\n```\n", en.name, en.key.name, show(&en.key.ty, schema));
    for f in &en.fields {
        doc.push_str(&format!("- `{}: {}`\n", f.name, show(&f.ty, schema)));
    }
    Some((Span::new(file, s, e), doc))
}

/// What a completion offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    Field,
    Function,
    Action,
    Rule,
    Const,
    Entity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    /// A type or a signature.
    pub detail: String,
}

fn fields_of(schema: &Schema, ty: &Ty, out: &mut Vec<Completion>) {
    match ty {
        Ty::Optional(t) => fields_of(schema, t, out),
        Ty::Record(r) => {
            for f in &schema.record(*r).fields {
                if !out.iter().any(|c| c.label == f.name) {
                    out.push(Completion {
                        label: f.name.clone(),
                        kind: CompletionKind::Field,
                        detail: show(&f.ty, schema),
                    });
                }
            }
        }
        _ => {}
    }
}

/// The event types the rule around `offset` matches, read off the text
/// (`match a | b`); empty for `match any` or when there is none yet.
fn matched_types(text: &str, offset: usize) -> Vec<String> {
    let before = &text[..offset];
    let rule_start =
        before.rfind("\nrule ").map(|i| i + 1).unwrap_or(if before.starts_with("rule ") { 0 } else { offset });
    let body = &before[rule_start..];
    let Some(m) = body.find("match ") else { return vec![] };
    let rest = &body[m + "match ".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '|' || c.is_whitespace()))
        .unwrap_or(rest.len());
    rest[..end]
        .split('|')
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .filter(|s| !s.is_empty() && s != "any" && s != "where")
        .collect()
}

/// The record types of the events the rule around `offset` matches (the
/// fields every event has, for `match any`).
fn event_roots(schema: &Schema, text: &str, offset: usize) -> Vec<Ty> {
    let types = matched_types(text, offset);
    let mut roots = Vec::new();
    for t in &types {
        if let Some(id) = schema.event_by_name(t) {
            if let Some(r) = schema.event_record(Some(id)) {
                roots.push(Ty::Record(r));
            }
        }
    }
    if roots.is_empty() {
        if let Some(r) = schema.event_record(None) {
            roots.push(Ty::Record(r));
        }
    }
    roots
}

fn field_type(schema: &Schema, ty: &Ty, name: &str) -> Option<Ty> {
    match ty {
        Ty::Optional(t) => field_type(schema, t, name),
        Ty::Record(r) => schema.record(*r).field(name).map(|(_, f)| f.ty.clone()),
        _ => None,
    }
}

/// Completions at `offset`: event fields after `event.` (and nested paths)
/// and at the start of a top-level pattern field, entity fields inside a
/// query filter, otherwise functions, actions, consts, entities and rules.
pub fn complete(schema: &Schema, file_ast: Option<&ast::File>, text: &str, offset: usize) -> Vec<Completion> {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    // The dotted path being typed, e.g. `event.context.` + partial word.
    let start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let path: Vec<&str> = before[start..].split('.').collect();
    let mut out = Vec::new();
    if path.len() >= 2 && path[0] == "event" {
        for root in event_roots(schema, text, offset) {
            let mut ty = Some(root);
            for seg in &path[1..path.len() - 1] {
                ty = ty.and_then(|t| field_type(schema, &t, seg));
            }
            if let Some(t) = ty {
                fields_of(schema, &t, &mut out);
            }
        }
        return out;
    }
    if path.len() == 1 {
        let prefix_end = start;
        let prev = before[..prefix_end].trim_end();
        // `expect rule_error(` in a test takes a rule's name.
        if prev.ends_with("rule_error(") {
            if let Some(f) = file_ast {
                for item in &f.items {
                    if let ast::Item::Rule(r) = item {
                        out.push(Completion {
                            label: r.name.name.clone(),
                            kind: CompletionKind::Rule,
                            detail: "rule".into(),
                        });
                    }
                }
            }
            return out;
        }
        // In a query filter: the innermost open `(` follows `exists|count|first|all Entity`.
        if let Some(entity) = open_query(before) {
            if let Some(id) = schema.entity_by_name(&entity) {
                let en = schema.entity(id);
                for f in std::iter::once(&en.key).chain(en.fields.iter()) {
                    out.push(Completion {
                        label: f.name.clone(),
                        kind: CompletionKind::Field,
                        detail: show(&f.ty, schema),
                    });
                }
                return out;
            }
        }
        // At the start of a top-level field pattern: `match t {` or `, `.
        if (prev.ends_with('{') || prev.ends_with(',')) && in_top_pattern(before) {
            for root in event_roots(schema, text, offset) {
                fields_of(schema, &root, &mut out);
            }
            return out;
        }
    }
    for f in builtins::BUILTINS.iter() {
        out.push(Completion {
            label: f.name.to_string(),
            kind: CompletionKind::Function,
            detail: builtins::signature(f.name, f.params),
        });
    }
    for a in actions::ACTIONS.iter() {
        out.push(Completion {
            label: a.name.to_string(),
            kind: CompletionKind::Action,
            detail: builtins::signature(a.name, a.params),
        });
    }
    for id in schema.entity_ids() {
        let en = schema.entity(id);
        out.push(Completion { label: en.name.clone(), kind: CompletionKind::Entity, detail: "entity".into() });
    }
    if let Some(f) = file_ast {
        for item in &f.items {
            match item {
                ast::Item::Const(c) => out.push(Completion {
                    label: c.name.name.clone(),
                    kind: CompletionKind::Const,
                    detail: "const".into(),
                }),
                ast::Item::Rule(r) => out.push(Completion {
                    label: r.name.name.clone(),
                    kind: CompletionKind::Rule,
                    detail: "rule".into(),
                }),
                _ => {}
            }
        }
    }
    out
}

/// The entity of the query whose filter is open at the end of `before`.
fn open_query(before: &str) -> Option<String> {
    let mut depth = 0i32;
    for (i, c) in before.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth > 0 => depth -= 1,
            '(' => {
                let head = before[..i].trim_end();
                let (_, _, entity) = word_at(head, head.len())?;
                let kw = head[..head.len() - entity.len()].trim_end();
                let (_, _, kw) = word_at(kw, kw.len())?;
                return matches!(kw, "exists" | "count" | "first" | "all").then(|| entity.to_string());
            }
            '\n' if depth == 0 && before[..i].ends_with('\n') => return None,
            _ => {}
        }
    }
    None
}

/// Whether the end of `before` is directly inside the pattern block of a
/// `match` clause (one unclosed `{` after the last `match`).
fn in_top_pattern(before: &str) -> bool {
    let Some(m) = before.rfind("match ") else { return false };
    let tail = &before[m..];
    let opens = tail.matches('{').count();
    let closes = tail.matches('}').count();
    opens == closes + 1
}

/// The replacement a diagnostic suggests ("did you mean `x`?"), applied to
/// its primary span.
pub fn suggested_fix(d: &Diagnostic) -> Option<(Span, String)> {
    let help = d.help.as_deref()?;
    let at = help.find("did you mean `")? + "did you mean `".len();
    let len = help[at..].find('`')?;
    let word = &help[at..at + len];
    (!word.is_empty() && !d.span.is_empty()).then(|| (d.span, word.to_string()))
}
