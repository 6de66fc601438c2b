//! The abstract syntax tree: what the parser produces, before any name is
//! resolved or type checked. Every node carries the [`Span`] of its source.
//! No pest type appears here.

use crate::span::Span;

/// An identifier with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// One parsed file: the items that parsed, in source order. Items that did
/// not parse are reported as diagnostics and left out.
#[derive(Debug, Clone, Default)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub enum Item {
    /// `discriminator action`
    Discriminator {
        field: Ident,
        span: Span,
    },
    /// `identity event_uuid` (a dotted path is allowed: `identity meta.id`)
    Identity {
        path: Vec<Ident>,
        span: Span,
    },
    /// `recipient User`
    Recipient {
        entity: Ident,
        span: Span,
    },
    /// `time created`: the event field that is the event's time.
    Time {
        field: Ident,
        span: Span,
    },
    /// `type Name { fields }`
    Type(TypeDecl),
    /// `event name { fields }` or `event * { fields }`
    Event(EventDecl),
    /// `entity Name key k: T { fields }`
    Entity(EntityDecl),
    /// `const name = literal`
    Const(ConstDecl),
    Rule(RuleDecl),
    /// `test "name" { steps }` (`herald test`); ignored by `run`.
    Test(TestDecl),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Discriminator { span, .. }
            | Item::Identity { span, .. }
            | Item::Recipient { span, .. }
            | Item::Time { span, .. } => *span,
            Item::Type(t) => t.span,
            Item::Event(e) => e.span,
            Item::Entity(e) => e.span,
            Item::Const(c) => c.span,
            Item::Rule(r) => r.span,
            Item::Test(t) => t.span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TypeDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum EventName {
    /// `event *`: fields merged into every event type.
    Common(Span),
    Named(Ident),
}

#[derive(Debug, Clone)]
pub struct EventDecl {
    pub name: EventName,
    /// Empty when the declaration has no body (`event logout`).
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct EntityDecl {
    pub name: Ident,
    pub key: FieldDecl,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TypeExpr {
    /// `int`, `string`, `ModelRef`, `User`, ...
    Named(Ident),
    /// `T?`
    Optional(Box<TypeExpr>, Span),
    /// `[T]`
    List(Box<TypeExpr>, Span),
    /// `{ f: T, ... }`
    Record(Vec<FieldDecl>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(i) => i.span,
            TypeExpr::Optional(_, s) | TypeExpr::List(_, s) | TypeExpr::Record(_, s) => *s,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConstDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct RuleDecl {
    pub name: Ident,
    /// Clauses in source order. The grammar accepts any order; the checker
    /// enforces `match`, then `let`/`guard`, then `action`.
    pub clauses: Vec<Clause>,
    /// The `{` that opens the body.
    pub open_brace: Span,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Clause {
    Match(MatchClause),
    Let {
        name: Ident,
        value: Expr,
        span: Span,
    },
    GuardLet {
        name: Ident,
        value: Expr,
        span: Span,
    },
    Guard {
        cond: Expr,
        span: Span,
    },
    /// `window D [by K, ...] count CMP N` or `... distinct E CMP N`.
    Window {
        duration: DurationLit,
        keys: Vec<Expr>,
        test: WindowTest,
        /// The `window` keyword.
        keyword: Span,
        span: Span,
    },
    /// `throttle D [by K, ...]`
    Throttle {
        duration: DurationLit,
        keys: Vec<Expr>,
        keyword: Span,
        span: Span,
    },
    /// `after TYPE [as NAME] [{ PATTERNS }] [where E] within D`.
    After(AfterClause),
    /// `action STATEMENT` (block = false) or `action { STATEMENT* }`.
    Action {
        body: Vec<Stmt>,
        block: bool,
        span: Span,
    },
}

impl Clause {
    pub fn span(&self) -> Span {
        match self {
            Clause::Match(m) => m.span,
            Clause::Let { span, .. }
            | Clause::GuardLet { span, .. }
            | Clause::Guard { span, .. }
            | Clause::Window { span, .. }
            | Clause::Throttle { span, .. }
            | Clause::Action { span, .. } => *span,
            Clause::After(a) => a.span,
        }
    }
}

/// A sequence clause: an earlier event of `event` (matching `patterns` and
/// `where_`) with time in `[t - duration, t]`.
#[derive(Debug, Clone)]
pub struct AfterClause {
    pub event: Ident,
    /// `as NAME`: the qualifying earlier event.
    pub as_: Option<Ident>,
    pub patterns: Option<Vec<FieldPattern>>,
    pub where_: Option<Expr>,
    pub duration: DurationLit,
    /// The `after` keyword.
    pub keyword: Span,
    pub span: Span,
}

/// The duration literal of a stateful clause (`10m`, `1h30m`). `nanos` is
/// `None` when the literal is malformed (already reported as a syntax error).
#[derive(Debug, Clone, Copy)]
pub struct DurationLit {
    pub nanos: Option<i128>,
    pub span: Span,
}

/// What a `window` clause compares: the number of events, or the number of
/// distinct values of an expression, with `op` (a comparison) and `limit`.
#[derive(Debug, Clone)]
pub struct WindowTest {
    pub distinct: Option<Expr>,
    pub op: BinOp,
    pub op_span: Span,
    pub limit: Expr,
}

#[derive(Debug, Clone)]
pub enum MatchTarget {
    /// `match any`
    Any(Span),
    /// `match a | b | c`
    Types(Vec<Ident>),
}

#[derive(Debug, Clone)]
pub struct MatchClause {
    pub target: MatchTarget,
    /// `{ ... }` after the event types; `None` when absent.
    pub patterns: Option<Vec<FieldPattern>>,
    pub where_: Option<Expr>,
    /// The `match` keyword.
    pub keyword: Span,
    pub span: Span,
}

/// `a.b.c: PATTERN`
#[derive(Debug, Clone)]
pub struct FieldPattern {
    pub path: Vec<Ident>,
    pub pattern: Pattern,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Pattern {
    /// Equality with a literal (`"x"`, `42`, `-1`, `true`, `null`) or a const.
    Literal(Expr),
    /// A new name: binds the value; the field must be present and non-null.
    Bind(Ident),
    /// `_`: the field must be present and non-null.
    Wildcard(Span),
    /// `{ ... }`: patterns relative to this field.
    Nested(Vec<FieldPattern>, Span),
}

impl Pattern {
    pub fn span(&self) -> Span {
        match self {
            Pattern::Literal(e) => e.span,
            Pattern::Bind(i) => i.span,
            Pattern::Wildcard(s) | Pattern::Nested(_, s) => *s,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum StmtKind {
    /// `notify(...)`, `send_email(...)`, `log(...)` or an unknown name.
    Call { name: Ident, args: Vec<Arg> },
    /// `set x.path = value`
    Set { target: Place, value: Expr },
    /// `append value to x.path`
    Append { value: Expr, target: Place },
    /// `remove x.path`
    Remove { target: Place },
    /// `for name in list { ... }`
    For { var: Ident, iter: Expr, body: Vec<Stmt> },
    /// `if cond { ... } else { ... }`; `else if` nests another `If` in `else_`.
    If { cond: Expr, then: Vec<Stmt>, else_: Option<Vec<Stmt>> },
    /// `upsert Entity[key] { field: value, ... }`
    Upsert { entity: Ident, key: Expr, fields: Vec<UpsertField> },
    /// `delete Entity[key]`
    Delete { entity: Ident, key: Expr },
    /// `add value to x.m2m_field`
    Add { value: Expr, target: Place },
    /// `remove value from x.m2m_field` (not `remove x.path`, which is `Remove`)
    RemoveFrom { value: Expr, target: Place },
}

/// One `field: value` of an `upsert`.
#[derive(Debug, Clone)]
pub struct UpsertField {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// The target of `set`, `append` and `remove`: a binding and a field path.
#[derive(Debug, Clone)]
pub struct Place {
    pub root: Ident,
    pub path: Vec<Ident>,
    pub span: Span,
}

/// A call argument, named (`to: x`) or positional.
#[derive(Debug, Clone)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    /// `a ?? b`
    Coalesce,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Coalesce => "??",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryKind {
    Exists,
    Count,
    First,
    All,
}

impl QueryKind {
    pub fn keyword(self) -> &'static str {
        match self {
            QueryKind::Exists => "exists",
            QueryKind::Count => "count",
            QueryKind::First => "first",
            QueryKind::All => "all",
        }
    }
}

/// One `key: value` of an object literal.
#[derive(Debug, Clone)]
pub struct ObjectEntry {
    /// The key's text (a quoted key with its escapes decoded).
    pub key: String,
    /// The key as written (with its quotes when quoted).
    pub key_span: Span,
    /// A quoted key that interpolates (`"{x}": 1`): the checker rejects it.
    pub interpolated: bool,
    pub value: Expr,
    pub span: Span,
}

/// One piece of an interpolated string.
#[derive(Debug, Clone)]
pub enum StrPart {
    /// Literal text with escapes already decoded.
    Text(String, Span),
    /// `{expr}`
    Expr(Expr),
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A duration literal (`30s`, `1h30m`) in nanoseconds.
    Duration(i64),
    /// A string literal; a single `Text` part (or none) when it has no
    /// interpolation.
    Str(Vec<StrPart>),
    List(Vec<Expr>),
    /// `{ name: x, "any key": y }`, entries in source order.
    Object(Vec<ObjectEntry>),
    /// A bare name: `event`, a binding, a const, an entity (as the base of
    /// `User[pk]`), or a field name inside a query filter.
    Name(Ident),
    /// `base.field`
    Field {
        base: Box<Expr>,
        field: Ident,
    },
    /// `base[index]`: list index, or an entity lookup when `base` names an entity.
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    /// `name(args)`: a built-in function (or an action used as an expression,
    /// which the checker rejects).
    Call {
        func: Ident,
        args: Vec<Arg>,
    },
    Unary {
        op: UnOp,
        op_span: Span,
        operand: Box<Expr>,
    },
    Binary {
        op: BinOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `exists E(filter)`, `count E()`, `first E(...)`, `all E(...)`.
    Query {
        kind: QueryKind,
        entity: Ident,
        filter: Option<Box<Expr>>,
    },
    /// Produced by the parser's recovery; the checker gives it the error type.
    Error,
}

impl Expr {
    /// A string literal without interpolation, if this is one.
    pub fn as_plain_str(&self) -> Option<String> {
        match &self.kind {
            ExprKind::Str(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        StrPart::Text(t, _) => s.push_str(t),
                        StrPart::Expr(_) => return None,
                    }
                }
                Some(s)
            }
            _ => None,
        }
    }
}

/// `test "name" { ... }`.
#[derive(Debug, Clone)]
pub struct TestDecl {
    pub name: String,
    pub name_span: Span,
    pub steps: Vec<TestStep>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TestStep {
    /// `given Entity { row }`
    Given {
        entity: Ident,
        row: Expr,
        span: Span,
    },
    /// `now "2026-05-04T10:00:00Z"`
    Now {
        text: String,
        text_span: Span,
        span: Span,
    },
    /// `event { json }`
    Event {
        body: Expr,
        span: Span,
    },
    Expect {
        expect: Expect,
        span: Span,
    },
}

#[derive(Debug, Clone)]
pub enum Expect {
    /// `RULE fires [N]`
    Fires { rule: Ident, count: Option<(i64, Span)> },
    /// `RULE does not fire`
    DoesNotFire { rule: Ident },
    /// `[no] notify|send_email|webhook[(args)]`
    Effect { negated: bool, action: Ident, args: Vec<Arg> },
    /// `rule_error(RULE[, "CODE"])`
    RuleError { rule: Ident, code: Option<(String, Span)> },
    /// `dead_letter`
    DeadLetter,
    /// Any boolean expression over the final store.
    Expr(Expr),
}
