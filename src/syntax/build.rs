//! From pest pairs to the AST. Pairs hold offsets relative to the chunk
//! being parsed; every span here is made absolute by adding `off`.
//! Literal problems the grammar lets through (bad escapes, integers out of
//! range, empty interpolations) are collected in `errors`.

use super::ast::*;
use super::error::{DurationProblem, EscapeProblem, SyntaxError};
use super::parser::Rule;
use super::scan::{Scan, Token};
use crate::span::{FileId, Span};
use pest::iterators::{Pair, Pairs};

type P<'i> = Pair<'i, Rule>;

pub(crate) struct Builder<'s> {
    file: FileId,
    off: usize,
    /// For trimming spans: pest pairs of rules that end in an optional part
    /// include the whitespace and comments skipped before trying it. Only the
    /// tokens of the text being parsed: every span is trimmed, and a binary
    /// search over the whole file's tokens for each one cost more (in cache
    /// misses) than building the node.
    tokens: &'s [Token],
    pub errors: Vec<SyntaxError>,
}

/// Pairs that only mark punctuation the AST does not need.
fn is_punct(r: Rule) -> bool {
    matches!(
        r,
        Rule::lbrace
            | Rule::rbrace
            | Rule::lparen
            | Rule::call_open
            | Rule::rparen
            | Rule::lbrack
            | Rule::rbrack
            | Rule::comma
            | Rule::colon
            | Rule::arg_colon
            | Rule::dot
            | Rule::pipe
            | Rule::assign
            | Rule::interp_close
            | Rule::EOI
    )
}

/// The children of `p` without punctuation.
fn kids(p: P<'_>) -> impl Iterator<Item = P<'_>> {
    p.into_inner().filter(|c| !is_punct(c.as_rule()))
}

fn next<'i>(it: &mut impl Iterator<Item = P<'i>>) -> P<'i> {
    it.next().expect("the grammar guarantees this child")
}

impl<'s> Builder<'s> {
    /// A builder for the pairs of `text[off..end]`.
    pub(crate) fn new(file: FileId, off: usize, end: usize, scan: &'s Scan) -> Builder<'s> {
        Builder { file, off, tokens: scan.tokens_in(off, end), errors: Vec::new() }
    }

    /// The span of a pair, without trailing whitespace and comments.
    fn span(&self, p: &P<'_>) -> Span {
        let s = p.as_span();
        let start = self.off + s.start();
        let mut end = self.off + s.end();
        // The last token that ends at or before `end`. One before the parsed
        // text could only qualify by ending exactly at `start == end`, where
        // it would change nothing.
        let i = self.tokens.partition_point(|t| t.end <= end);
        if let Some(t) = i.checked_sub(1).map(|i| self.tokens[i]) {
            if t.end >= start {
                end = t.end;
            }
        }
        Span::new(self.file, start, end)
    }

    fn ident(&self, p: P<'_>) -> Ident {
        Ident { name: p.as_str().to_string(), span: self.span(&p) }
    }

    pub(crate) fn items(&mut self, pairs: Pairs<'_, Rule>) -> Vec<Item> {
        pairs.filter(|p| p.as_rule() == Rule::item).map(|p| self.item(p)).collect()
    }

    fn item(&mut self, p: P<'_>) -> Item {
        let p = p.into_inner().next().expect("item has one child");
        let span = self.span(&p);
        match p.as_rule() {
            Rule::rule_decl => {
                let mut open_brace = span;
                let mut name = None;
                let mut clauses = Vec::new();
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::ident => name = Some(self.ident(c)),
                        Rule::lbrace => open_brace = self.span(&c),
                        Rule::clause => clauses.push(self.clause(c)),
                        _ => {}
                    }
                }
                let name = name.expect("rule name");
                Item::Rule(RuleDecl { name, clauses, open_brace, span })
            }
            Rule::const_decl => {
                let mut it = kids(p).skip(1);
                let name = self.ident(next(&mut it));
                let value = self.expr(next(&mut it));
                Item::Const(ConstDecl { name, value, span })
            }
            Rule::type_decl => {
                let mut it = kids(p).skip(1);
                let name = self.ident(next(&mut it));
                let fields = self.field_block(next(&mut it));
                Item::Type(TypeDecl { name, fields, span })
            }
            Rule::event_decl => {
                let mut it = kids(p).skip(1);
                let n = next(&mut it);
                let name = match n.as_rule() {
                    Rule::star => EventName::Common(self.span(&n)),
                    _ => EventName::Named(self.ident(n)),
                };
                let fields = it.next().map(|b| self.field_block(b)).unwrap_or_default();
                Item::Event(EventDecl { name, fields, span })
            }
            Rule::entity_decl => {
                let mut it = kids(p).skip(1);
                let name = self.ident(next(&mut it));
                let _key_kw = next(&mut it);
                let key = self.field_decl(next(&mut it));
                let fields = it.next().map(|b| self.field_block(b)).unwrap_or_default();
                Item::Entity(EntityDecl { name, key, fields, span })
            }
            Rule::discriminator_decl => {
                let field = self.ident(kids(p).nth(1).expect("discriminator field"));
                Item::Discriminator { field, span }
            }
            Rule::identity_decl => {
                let path = kids(p).skip(1).map(|c| self.ident(c)).collect();
                Item::Identity { path, span }
            }
            Rule::recipient_decl => {
                let entity = self.ident(kids(p).nth(1).expect("recipient entity"));
                Item::Recipient { entity, span }
            }
            Rule::time_decl => {
                let field = self.ident(kids(p).nth(1).expect("time field"));
                Item::Time { field, span }
            }
            Rule::test_decl => Item::Test(self.test_decl(p, span)),
            r => unreachable!("not an item: {r:?}"),
        }
    }

    // ------------------------------------------------------------ tests

    /// A string's literal text (interpolations dropped: test names, `now`
    /// and codes are plain text; the checker sees no expression in them).
    fn plain_string(&mut self, p: P<'_>) -> String {
        let mut text = String::new();
        for part in self.string(p) {
            if let StrPart::Text(t, _) = part {
                text.push_str(&t);
            }
        }
        text
    }

    fn test_decl(&mut self, p: P<'_>, span: Span) -> TestDecl {
        let mut it = kids(p).skip(1);
        let name_pair = next(&mut it);
        let name_span = self.span(&name_pair);
        let name = self.plain_string(name_pair);
        let mut steps = Vec::new();
        for c in it {
            if c.as_rule() != Rule::test_step {
                continue;
            }
            let step = c.into_inner().next().expect("a test step");
            let span = self.span(&step);
            let rule = step.as_rule();
            let mut parts = kids(step).skip(1);
            steps.push(match rule {
                Rule::given_step => {
                    let entity = self.ident(next(&mut parts));
                    let row = self.expr(next(&mut parts));
                    TestStep::Given { entity, row, span }
                }
                Rule::now_step => {
                    let t = next(&mut parts);
                    let text_span = self.span(&t);
                    let text = self.plain_string(t);
                    TestStep::Now { text, text_span, span }
                }
                Rule::event_step => TestStep::Event { body: self.expr(next(&mut parts)), span },
                Rule::expect_step => {
                    let e = next(&mut parts);
                    let expect = match e.as_rule() {
                        Rule::expect_rule_error => {
                            let mut k = kids(e).filter(|x| matches!(x.as_rule(), Rule::ident | Rule::string));
                            let rule = self.ident(next(&mut k));
                            let code = k.next().map(|c| {
                                let sp = self.span(&c);
                                (self.plain_string(c), sp)
                            });
                            Expect::RuleError { rule, code }
                        }
                        Rule::expect_dead_letter => Expect::DeadLetter,
                        Rule::expect_fires => {
                            let mut k = kids(e);
                            let rule = self.ident(next(&mut k));
                            let count = k.find(|x| x.as_rule() == Rule::int_lit).map(|n| {
                                // Too large a count is reported by the checker as never reachable.
                                (n.as_str().parse::<i64>().unwrap_or(i64::MAX), self.span(&n))
                            });
                            Expect::Fires { rule, count }
                        }
                        Rule::expect_not_fire => Expect::DoesNotFire { rule: self.ident(next(&mut kids(e))) },
                        Rule::expect_effect => {
                            let mut negated = false;
                            let mut action = None;
                            let mut args = Vec::new();
                            for k in kids(e) {
                                match k.as_rule() {
                                    Rule::kw_no => negated = true,
                                    Rule::effect_name => action = Some(self.ident(k)),
                                    Rule::arg => args.push(self.arg(k)),
                                    _ => {}
                                }
                            }
                            Expect::Effect { negated, action: action.expect("effect name"), args }
                        }
                        _ => Expect::Expr(self.expr(e)),
                    };
                    TestStep::Expect { expect, span }
                }
                r => unreachable!("not a test step: {r:?}"),
            });
        }
        TestDecl { name, name_span, steps, span }
    }

    // ------------------------------------------------------------ schema

    fn field_block(&mut self, p: P<'_>) -> Vec<FieldDecl> {
        kids(p).map(|c| self.field_decl(c)).collect()
    }

    fn field_decl(&mut self, p: P<'_>) -> FieldDecl {
        let span = self.span(&p);
        let mut it = kids(p);
        let name = self.ident(next(&mut it));
        let ty = self.type_expr(next(&mut it));
        FieldDecl { name, ty, span }
    }

    fn type_expr(&mut self, p: P<'_>) -> TypeExpr {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let atom = next(&mut it);
        let base = match atom.as_rule() {
            Rule::list_type => {
                let s = self.span(&atom);
                let inner = kids(atom).next().expect("list element type");
                TypeExpr::List(Box::new(self.type_expr(inner)), s)
            }
            Rule::field_block => {
                let s = self.span(&atom);
                TypeExpr::Record(self.field_block(atom), s)
            }
            _ => {
                let inner = atom.into_inner().next().expect("type name");
                TypeExpr::Named(self.ident(inner))
            }
        };
        if it.next().is_some() {
            TypeExpr::Optional(Box::new(base), span)
        } else {
            base
        }
    }

    // ------------------------------------------------------------ clauses

    fn clause(&mut self, p: P<'_>) -> Clause {
        let p = p.into_inner().next().expect("clause has one child");
        let span = self.span(&p);
        match p.as_rule() {
            Rule::match_clause => {
                let mut it = kids(p);
                let keyword = self.span(&next(&mut it));
                let target = next(&mut it);
                let target = match target.as_rule() {
                    Rule::kw_any => MatchTarget::Any(self.span(&target)),
                    _ => MatchTarget::Types(kids(target).map(|t| self.ident(t)).collect()),
                };
                let mut patterns = None;
                let mut where_ = None;
                for c in it {
                    match c.as_rule() {
                        Rule::pattern_block => patterns = Some(self.pattern_block(c)),
                        Rule::where_part => {
                            let e = c.into_inner().nth(1).expect("where expression");
                            where_ = Some(self.expr(e));
                        }
                        _ => {}
                    }
                }
                Clause::Match(MatchClause { target, patterns, where_, keyword, span })
            }
            Rule::let_clause => {
                let mut it = kids(p).skip(1);
                let name = self.ident(next(&mut it));
                let value = self.expr(next(&mut it));
                Clause::Let { name, value, span }
            }
            Rule::guard_let_clause => {
                let mut it = kids(p).skip(2);
                let name = self.ident(next(&mut it));
                let value = self.expr(next(&mut it));
                Clause::GuardLet { name, value, span }
            }
            Rule::guard_clause => {
                let cond = self.expr(kids(p).nth(1).expect("guard condition"));
                Clause::Guard { cond, span }
            }
            Rule::window_clause | Rule::throttle_clause => {
                let window = p.as_rule() == Rule::window_clause;
                let mut it = kids(p);
                let keyword = self.span(&next(&mut it));
                let d = self.duration(next(&mut it));
                let nanos = match d.kind {
                    ExprKind::Duration(n) => Some(i128::from(n)),
                    _ => None,
                };
                let duration = DurationLit { nanos, span: d.span };
                let mut keys = Vec::new();
                let mut test = None;
                for c in it {
                    match c.as_rule() {
                        Rule::by_part => keys = kids(c).skip(1).map(|k| self.expr(k)).collect(),
                        Rule::window_count | Rule::window_distinct => {
                            let mut parts = kids(c).skip(1);
                            let first = next(&mut parts);
                            let (distinct, op) = if first.as_rule() == Rule::window_cmp {
                                (None, first)
                            } else {
                                let e = self.expr(first);
                                (Some(e), next(&mut parts))
                            };
                            let op_span = self.span(&op);
                            let op = cmp_of(op.as_str());
                            let limit = self.number(next(&mut parts), None);
                            test = Some(WindowTest { distinct, op, op_span, limit });
                        }
                        _ => {}
                    }
                }
                match test {
                    Some(test) if window => Clause::Window { duration, keys, test, keyword, span },
                    _ => Clause::Throttle { duration, keys, keyword, span },
                }
            }
            Rule::after_clause => {
                let mut it = kids(p);
                let keyword = self.span(&next(&mut it));
                let event = self.ident(next(&mut it));
                let (mut as_, mut patterns, mut where_, mut duration) = (None, None, None, None);
                for c in it {
                    match c.as_rule() {
                        Rule::after_as => as_ = Some(self.ident(kids(c).nth(1).expect("`as` name"))),
                        Rule::pattern_block => patterns = Some(self.pattern_block(c)),
                        Rule::where_part => {
                            let e = c.into_inner().nth(1).expect("where expression");
                            where_ = Some(self.expr(e));
                        }
                        Rule::duration_lit => {
                            let d = self.duration(c);
                            let nanos = match d.kind {
                                ExprKind::Duration(n) => Some(i128::from(n)),
                                _ => None,
                            };
                            duration = Some(DurationLit { nanos, span: d.span });
                        }
                        _ => {}
                    }
                }
                let duration = duration.expect("the grammar requires `within DURATION`");
                Clause::After(AfterClause { event, as_, patterns, where_, duration, keyword, span })
            }
            Rule::action_clause => {
                let body = kids(p).nth(1).expect("action body");
                match body.as_rule() {
                    Rule::block => Clause::Action { body: self.block(body), block: true, span },
                    _ => Clause::Action { body: vec![self.stmt(body)], block: false, span },
                }
            }
            r => unreachable!("not a clause: {r:?}"),
        }
    }

    // ------------------------------------------------------------ patterns

    fn pattern_block(&mut self, p: P<'_>) -> Vec<FieldPattern> {
        kids(p).map(|c| self.field_pattern(c)).collect()
    }

    fn field_pattern(&mut self, p: P<'_>) -> FieldPattern {
        let span = self.span(&p);
        let mut it = kids(p);
        let path = kids(next(&mut it)).map(|c| self.ident(c)).collect();
        let pattern = self.pattern(next(&mut it));
        FieldPattern { path, pattern, span }
    }

    fn pattern(&mut self, p: P<'_>) -> Pattern {
        let p = p.into_inner().next().expect("pattern has one child");
        match p.as_rule() {
            Rule::pattern_block => {
                let s = self.span(&p);
                Pattern::Nested(self.pattern_block(p), s)
            }
            Rule::wildcard => Pattern::Wildcard(self.span(&p)),
            Rule::bind => Pattern::Bind(self.ident(p.into_inner().next().expect("bind name"))),
            _ => {
                let span = self.span(&p);
                let mut it = p.into_inner();
                let first = next(&mut it);
                if first.as_rule() == Rule::neg_op {
                    let num = next(&mut it);
                    Pattern::Literal(self.number(num, Some(span)))
                } else {
                    Pattern::Literal(self.primary(first))
                }
            }
        }
    }

    // ------------------------------------------------------------ statements

    fn block(&mut self, p: P<'_>) -> Vec<Stmt> {
        kids(p).map(|c| self.stmt(c)).collect()
    }

    fn stmt(&mut self, p: P<'_>) -> Stmt {
        let p = if p.as_rule() == Rule::stmt { p.into_inner().next().expect("statement") } else { p };
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::set_stmt => {
                let mut it = kids(p).skip(1);
                let target = self.place(next(&mut it));
                let value = self.expr(next(&mut it));
                StmtKind::Set { target, value }
            }
            Rule::append_stmt => {
                let mut it = kids(p).skip(1);
                let value = self.expr(next(&mut it));
                let _to = next(&mut it);
                let target = self.place(next(&mut it));
                StmtKind::Append { value, target }
            }
            Rule::remove_stmt => {
                let target = self.place(kids(p).nth(1).expect("remove target"));
                StmtKind::Remove { target }
            }
            Rule::upsert_stmt => {
                let mut it = kids(p).skip(1);
                let entity = self.ident(next(&mut it));
                let key = self.expr(next(&mut it));
                let fields = kids(next(&mut it))
                    .map(|f| {
                        let span = self.span(&f);
                        let mut fit = kids(f);
                        let name = self.ident(next(&mut fit));
                        let value = self.expr(next(&mut fit));
                        UpsertField { name, value, span }
                    })
                    .collect();
                StmtKind::Upsert { entity, key, fields }
            }
            Rule::delete_stmt => {
                let mut it = kids(p).skip(1);
                let entity = self.ident(next(&mut it));
                let key = self.expr(next(&mut it));
                StmtKind::Delete { entity, key }
            }
            Rule::add_stmt | Rule::remove_from_stmt => {
                let add = p.as_rule() == Rule::add_stmt;
                let mut it = kids(p).skip(1);
                let value = self.expr(next(&mut it));
                let _to_or_from = next(&mut it);
                let target = self.place(next(&mut it));
                if add {
                    StmtKind::Add { value, target }
                } else {
                    StmtKind::RemoveFrom { value, target }
                }
            }
            Rule::for_stmt => {
                let mut it = kids(p).skip(1);
                let var = self.ident(next(&mut it));
                let _in = next(&mut it);
                let iter = self.expr(next(&mut it));
                let body = self.block(next(&mut it));
                StmtKind::For { var, iter, body }
            }
            Rule::if_stmt => {
                let mut it = kids(p).skip(1);
                let cond = self.expr(next(&mut it));
                let then = self.block(next(&mut it));
                let else_ = match it.nth(1) {
                    None => None,
                    Some(e) if e.as_rule() == Rule::if_stmt => Some(vec![self.stmt(e)]),
                    Some(e) => Some(self.block(e)),
                };
                StmtKind::If { cond, then, else_ }
            }
            Rule::call => {
                let (name, args) = self.call(p);
                StmtKind::Call { name, args }
            }
            r => unreachable!("not a statement: {r:?}"),
        };
        Stmt { kind, span }
    }

    fn place(&mut self, p: P<'_>) -> Place {
        let span = self.span(&p);
        let mut it = kids(p);
        let root = self.ident(next(&mut it));
        let path = it.map(|c| self.ident(c)).collect();
        Place { root, path, span }
    }

    fn call(&mut self, p: P<'_>) -> (Ident, Vec<Arg>) {
        let mut it = kids(p);
        let name = self.ident(next(&mut it));
        let args = it.map(|a| self.arg(a)).collect();
        (name, args)
    }

    fn arg(&mut self, p: P<'_>) -> Arg {
        let span = self.span(&p);
        let mut name = None;
        let mut value = None;
        for c in kids(p) {
            match c.as_rule() {
                Rule::field_name => name = Some(self.ident(c)),
                _ => value = Some(self.expr(c)),
            }
        }
        Arg { name, value: value.expect("argument value"), span }
    }

    // ------------------------------------------------------------ expressions

    pub(crate) fn expr(&mut self, p: P<'_>) -> Expr {
        match p.as_rule() {
            Rule::expr | Rule::and_expr | Rule::cmp_expr | Rule::sum_expr | Rule::prod_expr => self.binary_chain(p),
            Rule::coalesce_expr => self.coalesce_chain(p),
            Rule::not_expr | Rule::unary_expr => self.prefix_chain(p),
            Rule::postfix_expr => self.postfix(p),
            _ => self.primary(p),
        }
    }

    /// `a op b op c`, folded to the left.
    fn binary_chain(&mut self, p: P<'_>) -> Expr {
        let mut it = p.into_inner();
        let mut lhs = self.expr(next(&mut it));
        while let Some(op) = it.next() {
            let op_span = self.span(&op);
            let op = match op.as_str() {
                "or" => BinOp::Or,
                "and" => BinOp::And,
                "==" => BinOp::Eq,
                "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                ">=" => BinOp::Ge,
                "in" => BinOp::In,
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                "/" => BinOp::Div,
                _ => BinOp::Mod,
            };
            let rhs = self.expr(next(&mut it));
            let span = lhs.span.to(rhs.span);
            lhs = Expr { kind: ExprKind::Binary { op, op_span, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span };
        }
        lhs
    }

    /// `a ?? b ?? c`, folded to the right: `a ?? (b ?? c)`. Either way gives
    /// the same value; folding right lets `a` stay the plain operand the
    /// checker's never-absent warning and the JIT's lowering look at.
    fn coalesce_chain(&mut self, p: P<'_>) -> Expr {
        let mut operands = Vec::new();
        let mut ops = Vec::new();
        for c in p.into_inner() {
            if c.as_rule() == Rule::coalesce_op {
                ops.push(self.span(&c));
            } else {
                operands.push(self.expr(c));
            }
        }
        let mut rhs = operands.pop().expect("coalesce operand");
        while let Some(lhs) = operands.pop() {
            let op_span = ops.pop().expect("one operator between two operands");
            let span = lhs.span.to(rhs.span);
            rhs = Expr {
                kind: ExprKind::Binary { op: BinOp::Coalesce, op_span, lhs: Box::new(lhs), rhs: Box::new(rhs) },
                span,
            };
        }
        rhs
    }

    /// `not not x`, `- - x`: prefix operators, innermost last. A `-`
    /// directly before a number literal is folded into it, so `-1` is
    /// `Int(-1)` and `-9223372036854775808` is in range.
    fn prefix_chain(&mut self, p: P<'_>) -> Expr {
        let mut ops: Vec<(UnOp, Span)> = Vec::new();
        let mut operand = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::not_op => ops.push((UnOp::Not, self.span(&c))),
                Rule::neg_op => ops.push((UnOp::Neg, self.span(&c))),
                _ => operand = Some(c),
            }
        }
        let operand = operand.expect("prefix operand");
        let mut e = match ops.last() {
            Some(&(UnOp::Neg, neg)) if is_bare_number(&operand) => {
                ops.pop();
                let num = operand.into_inner().next().expect("number");
                let span = neg.to(self.span(&num));
                self.number(num, Some(span))
            }
            _ => self.expr(operand),
        };
        while let Some((op, op_span)) = ops.pop() {
            let span = op_span.to(e.span);
            e = Expr { kind: ExprKind::Unary { op, op_span, operand: Box::new(e) }, span };
        }
        e
    }

    fn postfix(&mut self, p: P<'_>) -> Expr {
        let mut it = p.into_inner();
        let mut e = self.primary(next(&mut it));
        for post in it {
            let s = self.span(&post);
            let span = e.span.to(s);
            let rule = post.as_rule();
            let child = kids(post).next().expect("postfix operand");
            e = match rule {
                Rule::field_access => {
                    Expr { kind: ExprKind::Field { base: Box::new(e), field: self.ident(child) }, span }
                }
                _ => {
                    let index = self.expr(child);
                    Expr { kind: ExprKind::Index { base: Box::new(e), index: Box::new(index) }, span }
                }
            };
        }
        e
    }

    fn primary(&mut self, p: P<'_>) -> Expr {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::paren => {
                let inner = kids(p).next().expect("parenthesized expression");
                let mut e = self.expr(inner);
                // The parentheses belong to the expression's span.
                e.span = span;
                return e;
            }
            Rule::list => ExprKind::List(kids(p).map(|c| self.expr(c)).collect()),
            Rule::object => {
                let entries: Vec<P<'_>> = kids(p).collect();
                ExprKind::Object(entries.into_iter().map(|e| self.object_entry(e)).collect())
            }
            Rule::string => ExprKind::Str(self.string(p)),
            Rule::float_lit | Rule::int_lit => return self.number(p, None),
            Rule::duration_lit => return self.duration(p),
            Rule::kw_true => ExprKind::Bool(true),
            Rule::kw_false => ExprKind::Bool(false),
            Rule::kw_null => ExprKind::Null,
            Rule::query => {
                let mut it = kids(p);
                let kw = next(&mut it);
                let kind = match kw.as_rule() {
                    Rule::kw_exists => QueryKind::Exists,
                    Rule::kw_count => QueryKind::Count,
                    Rule::kw_first => QueryKind::First,
                    _ => QueryKind::All,
                };
                let entity = self.ident(next(&mut it));
                let filter = it.next().map(|f| Box::new(self.expr(f)));
                ExprKind::Query { kind, entity, filter }
            }
            Rule::call => {
                let (func, args) = self.call(p);
                ExprKind::Call { func, args }
            }
            Rule::kw_event => ExprKind::Name(Ident { name: "event".to_string(), span }),
            Rule::name => ExprKind::Name(self.ident(p.into_inner().next().expect("name"))),
            Rule::keyword_field => ExprKind::Name(self.ident(p)),
            r => unreachable!("not a primary expression: {r:?}"),
        };
        Expr { kind, span }
    }

    fn object_entry(&mut self, p: P<'_>) -> ObjectEntry {
        let span = self.span(&p);
        let mut it = kids(p);
        let key = next(&mut it);
        let key_span = self.span(&key);
        let (key, interpolated) = if key.as_rule() == Rule::string {
            let mut text = String::new();
            let mut interpolated = false;
            for part in self.string(key) {
                match part {
                    StrPart::Text(t, _) => text.push_str(&t),
                    StrPart::Expr(_) => interpolated = true,
                }
            }
            (text, interpolated)
        } else {
            (key.as_str().to_string(), false)
        };
        let value = self.expr(next(&mut it));
        ObjectEntry { key, key_span, interpolated, value, span }
    }

    /// A duration literal. Its token is wider than a valid literal (see
    /// `duration_lit` in the grammar) so that mistakes get their own error.
    fn duration(&mut self, p: P<'_>) -> Expr {
        use crate::value::{parse_duration, DurationError};
        let text = p.as_str();
        let span = self.span(&p);
        let at =
            |off: usize, len: usize| Span::new(span.file, span.start as usize + off, span.start as usize + off + len);
        let kind = if let Some(dot) = text.find('.') {
            let unit_at = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
            self.errors.push(SyntaxError::BadDuration {
                span,
                text: text.to_string(),
                problem: DurationProblem::Fraction { at: at(dot, unit_at - dot) },
            });
            ExprKind::Error
        } else {
            match parse_duration(text) {
                Ok(d) => ExprKind::Duration(d),
                Err(e) => {
                    let problem = match e {
                        DurationError::UnknownUnit { unit, at: off } => {
                            DurationProblem::UnknownUnit { at: at(off, unit.len()), unit }
                        }
                        DurationError::UnitOrder { unit, at: off } => {
                            DurationProblem::UnitOrder { at: at(off, unit.len()), unit }
                        }
                        DurationError::MissingUnit { at: off } => {
                            DurationProblem::MissingUnit { at: at(off, text.len() - off) }
                        }
                        DurationError::Overflow => DurationProblem::Overflow,
                    };
                    self.errors.push(SyntaxError::BadDuration { span, text: text.to_string(), problem });
                    ExprKind::Error
                }
            }
        };
        Expr { kind, span }
    }

    /// A number literal; `neg` is the span including a leading `-`.
    fn number(&mut self, p: P<'_>, neg: Option<Span>) -> Expr {
        let digits = p.as_str();
        let span = neg.unwrap_or_else(|| self.span(&p));
        let kind = if p.as_rule() == Rule::float_lit {
            match digits.parse::<f64>() {
                Ok(v) if v.is_finite() => ExprKind::Float(if neg.is_some() { -v } else { v }),
                _ => {
                    self.errors.push(SyntaxError::NumberOutOfRange { span, text: text_of(neg, digits), float: true });
                    ExprKind::Error
                }
            }
        } else {
            let v = digits.parse::<i128>().ok().map(|v| if neg.is_some() { -v } else { v });
            match v.and_then(|v| i64::try_from(v).ok()) {
                Some(v) => ExprKind::Int(v),
                None => {
                    self.errors.push(SyntaxError::NumberOutOfRange { span, text: text_of(neg, digits), float: false });
                    ExprKind::Error
                }
            }
        };
        Expr { kind, span }
    }

    fn string(&mut self, p: P<'_>) -> Vec<StrPart> {
        let mut parts = Vec::new();
        // The text run being built: decoded text and its source span.
        let mut run: Option<(String, Span)> = None;
        for c in p.into_inner() {
            let s = self.span(&c);
            match c.as_rule() {
                Rule::str_text | Rule::str_escape => {
                    let (text, span) = run.get_or_insert_with(|| (String::new(), s));
                    *span = span.to(s);
                    if c.as_rule() == Rule::str_text {
                        text.push_str(c.as_str());
                    } else {
                        let raw = c.as_str();
                        match decode_escape(raw) {
                            Ok(ch) => text.push(ch),
                            Err(problem) => {
                                text.push_str(raw);
                                self.errors.push(SyntaxError::InvalidEscape {
                                    span: s,
                                    escape: raw.to_string(),
                                    problem,
                                });
                            }
                        }
                    }
                }
                _ => {
                    if let Some((t, sp)) = run.take() {
                        parts.push(StrPart::Text(t, sp));
                    }
                    match kids(c).next() {
                        Some(e) => parts.push(StrPart::Expr(self.expr(e))),
                        None => self.errors.push(SyntaxError::EmptyInterpolation { span: s }),
                    }
                }
            }
        }
        if let Some((t, sp)) = run.take() {
            parts.push(StrPart::Text(t, sp));
        }
        parts
    }
}

fn text_of(neg: Option<Span>, digits: &str) -> String {
    if neg.is_some() {
        format!("-{digits}")
    } else {
        digits.to_string()
    }
}

/// Is this `postfix_expr` just a number literal?
fn is_bare_number(p: &P<'_>) -> bool {
    if p.as_rule() != Rule::postfix_expr {
        return false;
    }
    let mut it = p.clone().into_inner();
    matches!((it.next().map(|c| c.as_rule()), it.next()), (Some(Rule::int_lit | Rule::float_lit), None))
}

/// Decode one escape sequence (`raw` starts with a backslash).
fn decode_escape(raw: &str) -> Result<char, EscapeProblem> {
    let body = &raw[1..];
    match body {
        "\"" => Ok('"'),
        "\\" => Ok('\\'),
        "n" => Ok('\n'),
        "t" => Ok('\t'),
        "r" => Ok('\r'),
        "{" => Ok('{'),
        "}" => Ok('}'),
        _ => {
            let Some(hex) = body.strip_prefix("u{") else {
                return Err(if body == "u" { EscapeProblem::BadUnicode } else { EscapeProblem::Unknown });
            };
            let Some(hex) = hex.strip_suffix('}') else {
                return Err(EscapeProblem::BadUnicode);
            };
            if hex.is_empty() || hex.len() > 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(EscapeProblem::BadUnicode);
            }
            let v = u32::from_str_radix(hex, 16).map_err(|_| EscapeProblem::BadUnicode)?;
            char::from_u32(v).ok_or(EscapeProblem::NotAChar)
        }
    }
}

/// The comparison operator of a `window` clause.
fn cmp_of(op: &str) -> BinOp {
    match op {
        "==" => BinOp::Eq,
        "!=" => BinOp::Ne,
        "<" => BinOp::Lt,
        "<=" => BinOp::Le,
        ">" => BinOp::Gt,
        ">=" => BinOp::Ge,
        _ => BinOp::In,
    }
}
