//! The checked, typed intermediate representation.
//!
//! The checker turns the AST into a [`Program`]: every name resolved
//! (locals, consts inlined, entities, fields, functions), every expression
//! typed, every node with its span. The interpreter evaluates it; the JIT
//! compiles each rule's `match` condition from it; the decoder derives the
//! event paths to decode from it; the store compiles query filters from it.
//!
//! Invariants (established by `check`, relied on downstream):
//! - a `Program` exists only for input without errors;
//! - `Match::cond` reads only `Event` paths, literals and pattern-bound locals
//!   (it is pure: no queries, no `now()`);
//! - `ExprKind::Row` appears only inside a `Query` filter;
//! - `Place::local` is an entity-typed, non-optional local.

use crate::schema::Schema;
use crate::span::Span;
use crate::types::{EntityId, EventTypeId, Ty};
use crate::value::Value;
use std::sync::Arc;

pub use crate::syntax::ast::QueryKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// A local of one rule: a pattern binding, `let`, `guard let` or `for` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalId(pub u32);

/// A static path into the event, interned program-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(pub u32);

#[derive(Debug, Clone)]
pub struct Program {
    pub schema: Arc<Schema>,
    pub rules: Vec<Rule>,
    /// Every static event path any rule reads; `PathId` indexes it. A path
    /// is a list of field names from the event root (empty: the whole event).
    pub paths: Vec<Vec<String>>,
    /// The policy sources, to name the place of a run-time error.
    pub sources: Arc<crate::span::SourceMap>,
}

impl Program {
    pub fn path(&self, id: PathId) -> &[String] {
        &self.paths[id.0 as usize]
    }

    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id.0 as usize]
    }

    /// `file:line:column` of a span, when the sources are known.
    pub fn locate(&self, span: Span) -> Option<String> {
        if (span.file.0 as usize) >= self.sources.files().count() {
            return None;
        }
        let f = self.sources.get(span.file);
        let (line, col) = f.line_col(span.start as usize);
        Some(format!("{}:{line}:{col}", f.name))
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: RuleId,
    pub name: String,
    /// The rule's name in the source.
    pub name_span: Span,
    pub span: Span,
    pub matcher: Match,
    pub steps: Vec<Step>,
    pub actions: Vec<Stmt>,
    pub locals: Vec<Local>,
}

impl Rule {
    pub fn local(&self, id: LocalId) -> &Local {
        &self.locals[id.0 as usize]
    }
}

#[derive(Debug, Clone)]
pub struct Local {
    pub name: String,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchEvents {
    /// `match any`: every event, declared type or not.
    Any,
    /// `match a | b`: deduplicated, in source order.
    Types(Vec<EventTypeId>),
}

#[derive(Debug, Clone)]
pub struct Match {
    pub events: MatchEvents,
    /// The field patterns and the `where` condition, and-ed in source order:
    /// a literal pattern is `path == literal`, a binding or `_` is
    /// `path != null`. `Lit(Bool(true))` when the rule has neither.
    pub cond: Expr,
    /// Pattern bindings: each local takes the value at its path when the
    /// rule matches (the condition guarantees it is present and non-null).
    pub bindings: Vec<(LocalId, PathId)>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Step {
    Let {
        local: LocalId,
        value: Expr,
        span: Span,
    },
    /// The rule stops unless `value` is present (and non-null); the local
    /// holds the unwrapped value.
    GuardLet {
        local: LocalId,
        value: Expr,
        span: Span,
    },
    /// The rule stops unless `cond` is true.
    Guard {
        cond: Expr,
        span: Span,
    },
    /// `window D [by K, ...] count|distinct ... CMP N`: records the event
    /// under its key and stops the rule unless the events of the key in
    /// `(t - D, t]` satisfy the comparison.
    Window(WindowStep),
    /// `throttle D [by K, ...]`: stops the rule if it fired for the key at
    /// an event time in `(t - D, t]`.
    Throttle(ThrottleStep),
    /// `after TYPE [as NAME] [{ ... }] [where E] within D`: stops the rule
    /// unless an earlier recorded event of `TYPE` agrees on the join key.
    After(AfterStep),
}

/// Where a stateful clause keeps its state: the rule's name (not its id,
/// so state survives adding rules to a policy) and the clause's position
/// among the rule's stateful clauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateSlot {
    pub clause: u32,
}

#[derive(Debug, Clone)]
pub struct WindowStep {
    pub slot: StateSlot,
    /// The event's time field.
    pub time: PathId,
    /// Nanoseconds, positive.
    pub duration: i128,
    pub keys: Vec<Expr>,
    /// `distinct E`: the value counted; `None` for `count`.
    pub distinct: Option<Expr>,
    pub op: CmpOp,
    pub limit: i64,
    /// `window.count`, `window.distinct`, `window.first`, `window.last`.
    pub locals: [LocalId; 4],
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ThrottleStep {
    pub slot: StateSlot,
    pub time: PathId,
    pub duration: i128,
    pub keys: Vec<Expr>,
    /// `throttle.suppressed`.
    pub suppressed: LocalId,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct AfterStep {
    pub slot: StateSlot,
    /// The event time field (the same path in every event type).
    pub time: PathId,
    pub duration: i128,
    /// The earlier event's type.
    pub event: EventTypeId,
    /// The earlier event's match: its condition (patterns and `where`,
    /// over that event's paths) and pattern bindings, whose locals are the
    /// rule's. Evaluated when an event of `event` is recorded, never on
    /// the current event.
    pub matcher: Match,
    /// The join key: for each binding name the clause shares with the
    /// rule so far, the earlier event's path and the current rule's local.
    pub join: Vec<(PathId, LocalId)>,
    /// Bindings new to the rule: bound from the qualifying earlier event.
    pub binds: Vec<(LocalId, PathId)>,
    /// `as NAME`, typed as the earlier event's record.
    pub prev: Option<LocalId>,
    /// The whole event (the empty path), stored with each recorded event.
    pub whole: PathId,
    pub span: Span,
}

/// The `severity` of a `notify`: an enumeration, parsed once by the checker
/// (E-code for a bad literal), so nothing downstream handles a bad string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Notice,
    Warning,
    Alert,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Notice, Severity::Warning, Severity::Alert];
    /// The literals, in the order of `ALL`.
    pub const NAMES: [&'static str; 3] = ["notice", "warning", "alert"];

    pub const fn as_str(self) -> &'static str {
        Severity::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::NAMES.iter().position(|n| *n == s).map(|i| Severity::ALL[i])
    }
}

/// The `level` of a `log`: an enumeration like [`Severity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 4] = [LogLevel::Debug, LogLevel::Info, LogLevel::Warning, LogLevel::Error];
    /// The literals, in the order of `ALL`.
    pub const NAMES: [&'static str; 4] = ["debug", "info", "warning", "error"];

    pub const fn as_str(self) -> &'static str {
        LogLevel::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Option<LogLevel> {
        LogLevel::NAMES.iter().position(|n| *n == s).map(|i| LogLevel::ALL[i])
    }
}

/// The HTTP `method` of a `webhook`: an enumeration like [`LogLevel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    Post,
    Put,
}

impl HttpMethod {
    pub const ALL: [HttpMethod; 2] = [HttpMethod::Post, HttpMethod::Put];
    /// The literals, in the order of `ALL`.
    pub const NAMES: [&'static str; 2] = ["POST", "PUT"];

    pub const fn as_str(self) -> &'static str {
        HttpMethod::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Option<HttpMethod> {
        HttpMethod::NAMES.iter().position(|n| *n == s).map(|i| HttpMethod::ALL[i])
    }
}

// Statements are built once per policy and walked by reference; their
// size does not matter, and boxing the large variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Stmt {
    Notify {
        to: Expr,
        body: Expr,
        severity: Severity,
        span: Span,
    },
    SendEmail {
        /// `string` or `[string]` (possibly optional).
        to: Expr,
        subject: Expr,
        body: Expr,
        cc: Option<Expr>,
        bcc: Option<Expr>,
        span: Span,
    },
    Log {
        message: Expr,
        level: LogLevel,
        span: Span,
    },
    Webhook {
        /// `string`.
        url: Expr,
        /// Any value: a string is sent as it is, anything else as JSON.
        body: Expr,
        /// A record (or `any` object) of strings; absent means none.
        headers: Option<Expr>,
        method: HttpMethod,
        span: Span,
    },
    Set {
        place: Place,
        value: Expr,
        span: Span,
    },
    Append {
        place: Place,
        value: Expr,
        span: Span,
    },
    Remove {
        place: Place,
        span: Span,
    },
    For {
        var: LocalId,
        iter: Expr,
        body: Vec<Stmt>,
        span: Span,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        else_: Vec<Stmt>,
        span: Span,
    },
    /// `upsert Entity[key] { field: value, ... }`: fields in source order,
    /// each at most once, never the key or a many-to-many field.
    Upsert {
        entity: EntityId,
        key: Expr,
        fields: Vec<UpsertField>,
        span: Span,
    },
    /// `delete Entity[key]`
    Delete {
        entity: EntityId,
        key: Expr,
        span: Span,
    },
    /// `add value to x.field` (`add: true`) or `remove value from x.field`:
    /// `place` is a many-to-many field (empty path); `value` a key or row
    /// of its target entity, or a list of them.
    Link {
        place: Place,
        value: Expr,
        add: bool,
        span: Span,
    },
}

/// One `field: value` of an `upsert`.
#[derive(Debug, Clone)]
pub struct UpsertField {
    /// Index into `EntityDef::fields`.
    pub field: usize,
    pub value: Expr,
    pub span: Span,
}

/// Which field of an entity: the key or a non-key field by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldRef {
    Key,
    Field(usize),
}

/// The target of `set`/`append`/`remove`: a column of the entity bound to
/// `local`, and a path inside it when the column is `any`.
#[derive(Debug, Clone)]
pub struct Place {
    pub local: LocalId,
    pub entity: EntityId,
    /// Index into `EntityDef::fields` (never the key: see E0417).
    pub field: usize,
    /// Keys inside an `any` column; empty for the whole column.
    pub path: Vec<String>,
    /// The type of the place (`any` inside an `any` column).
    pub ty: Ty,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// Numbers, string concatenation or list concatenation (by type).
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// A call of a built-in function. Everything else about each function
/// (parameters, typing, evaluation, JIT/SQL eligibility, docs) is its entry
/// in [`crate::builtins`]. `matches` and `ip_in` carry their literal
/// argument, compiled at check time.
#[derive(Debug, Clone)]
pub enum Builtin {
    Len,
    Empty,
    Lower,
    Upper,
    Trim,
    StartsWith,
    EndsWith,
    Contains,
    /// `matches(s, "re")`: only `s` is in `args`.
    Matches(Arc<regex::Regex>),
    /// `ip_in(ip, "cidr")`: only `ip` is in `args`.
    IpIn(Cidr),
    Now,
    /// `string(x)`: text of any value (as interpolation formats it).
    ToString,
    /// `int(x)`: an int from an int, a whole float or a decimal string.
    ToInt,
}

impl Builtin {
    /// The function's name, from its registry entry.
    pub fn name(&self) -> &'static str {
        crate::builtins::def(self).name
    }
}

/// An IP network: `10.0.0.0/8`, `2001:db8::/32`. IPv4 addresses are held
/// as IPv4-mapped IPv6 so one comparison serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub network: u128,
    /// Prefix length in the IPv6 space (an IPv4 `/8` is `/104`).
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: std::net::IpAddr = addr.parse().ok()?;
        let (bits, max, offset) = match ip {
            std::net::IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 32u8, 96u8),
            std::net::IpAddr::V6(v6) => (u128::from(v6), 128u8, 0u8),
        };
        let len: u8 = match len {
            Some(l) => {
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                    return None;
                }
                l.parse().ok()?
            }
            None => max,
        };
        if len > max {
            return None;
        }
        let prefix = len + offset;
        let network = bits & Cidr::mask(prefix);
        Some(Cidr { network, prefix })
    }

    fn mask(prefix: u8) -> u128 {
        if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix as u32)
        }
    }

    /// Parse an address and test membership; false for anything not an IP.
    pub fn contains_str(&self, ip: &str) -> bool {
        let bits = match ip.trim().parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => u128::from(v4.to_ipv6_mapped()),
            Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => u128::from(v4.to_ipv6_mapped()),
                None => u128::from(v6),
            },
            Err(_) => return false,
        };
        bits & Cidr::mask(self.prefix) == self.network
    }
}

#[derive(Debug, Clone)]
pub enum InterpPart {
    Text(String),
    Expr(Expr),
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    /// A literal or an inlined const. String literals compared with `uuid`
    /// or `timestamp` values are already converted (and validated).
    Lit(Value),
    /// A static path into the event.
    Event(PathId),
    Local(LocalId),
    /// `base.name` where `base` is a record or `any` (dynamic when `any`).
    Field {
        base: Box<Expr>,
        name: String,
    },
    /// `base.field` where `base` is an entity row.
    Column {
        base: Box<Expr>,
        entity: EntityId,
        field: FieldRef,
    },
    /// A many-to-many field read: the related rows, in key order.
    Related {
        base: Box<Expr>,
        entity: EntityId,
        field: usize,
        target: EntityId,
    },
    /// `base[index]`: a list by int (absent when out of range), or `any`.
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    List(Vec<Expr>),
    /// `{ key: value, ... }`: an object, keys in source order (distinct).
    Object(Vec<(String, Expr)>),
    /// `a ?? b`: `a` unless it is absent or null, else `b` (evaluated only then).
    Coalesce(Box<Expr>, Box<Expr>),
    /// `list.field`: the field of every element, in list order. Absent and
    /// null elements and field values are skipped; a field whose values are
    /// lists contributes their items (one level), so `groups.users` is the
    /// list of users, not a list of lists. Absent when `base` is.
    Project {
        base: Box<Expr>,
        step: Projection,
        /// The field is a list (statically): its items are spliced in.
        flatten: bool,
    },
    Interp(Vec<InterpPart>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// Comparisons are false when either side is absent or null.
    Cmp {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `x == null` (negated: false) or `x != null` (negated: true).
    IsNull {
        operand: Box<Expr>,
        negated: bool,
    },
    Arith {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `elem in container`: list membership or substring.
    In {
        elem: Box<Expr>,
        container: Box<Expr>,
    },
    /// A built-in call; arguments in declared order.
    Call {
        func: Builtin,
        args: Vec<Expr>,
    },
    /// `E[key]`: the row or absent.
    Lookup {
        entity: EntityId,
        key: Box<Expr>,
    },
    /// `E[keys]`: the rows found, in the order of `keys`, missing skipped.
    LookupMany {
        entity: EntityId,
        keys: Box<Expr>,
    },
    /// `exists/count/first/all E(filter)`.
    Query {
        kind: QueryKind,
        entity: EntityId,
        filter: Option<Box<Expr>>,
    },
    /// Inside a query filter: a field of the row being filtered, with a
    /// path inside it when the field is `any`.
    Row {
        entity: EntityId,
        field: FieldRef,
        path: Vec<String>,
    },
}

/// How a projection reads the field of one list element.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// A field of a record, an object or an `any` value (as `Field`).
    Field(String),
    /// A column of an entity row (as `Column`).
    Column(FieldRef),
    /// A many-to-many field of an entity row (as `Related`).
    Related { entity: EntityId, field: usize },
}

impl Expr {
    pub fn lit(v: Value, ty: Ty, span: Span) -> Expr {
        Expr { kind: ExprKind::Lit(v), ty, span }
    }

    /// Children, in evaluation order.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Lit(_) | ExprKind::Event(_) | ExprKind::Local(_) | ExprKind::Row { .. } => {
                vec![]
            }
            ExprKind::Field { base, .. }
            | ExprKind::Column { base, .. }
            | ExprKind::Related { base, .. }
            | ExprKind::Project { base, .. } => vec![base],
            ExprKind::Object(entries) => entries.iter().map(|(_, e)| e).collect(),
            ExprKind::Coalesce(a, b) => vec![a, b],
            ExprKind::Index { base, index } => vec![base, index],
            ExprKind::List(items) => items.iter().collect(),
            ExprKind::Interp(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    InterpPart::Expr(e) => Some(e),
                    InterpPart::Text(_) => None,
                })
                .collect(),
            ExprKind::Not(e) | ExprKind::Neg(e) => vec![e],
            ExprKind::IsNull { operand, .. } => vec![operand],
            ExprKind::And(a, b)
            | ExprKind::Or(a, b)
            | ExprKind::Cmp { lhs: a, rhs: b, .. }
            | ExprKind::Arith { lhs: a, rhs: b, .. }
            | ExprKind::In { elem: a, container: b } => vec![a, b],
            ExprKind::Call { args, .. } => args.iter().collect(),
            ExprKind::Lookup { key, .. } => vec![key],
            ExprKind::LookupMany { keys, .. } => vec![keys],
            ExprKind::Query { filter, .. } => filter.iter().map(|f| &**f).collect(),
        }
    }

    /// Visit this expression and all its descendants, parents first.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        for c in self.children() {
            c.walk(f);
        }
    }
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Notify { span, .. }
            | Stmt::SendEmail { span, .. }
            | Stmt::Log { span, .. }
            | Stmt::Webhook { span, .. }
            | Stmt::Set { span, .. }
            | Stmt::Append { span, .. }
            | Stmt::Remove { span, .. }
            | Stmt::For { span, .. }
            | Stmt::If { span, .. }
            | Stmt::Upsert { span, .. }
            | Stmt::Delete { span, .. }
            | Stmt::Link { span, .. } => *span,
        }
    }

    /// Expressions directly in this statement (not in nested statements).
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            Stmt::Notify { to, body, .. } => vec![to, body],
            Stmt::SendEmail { to, subject, body, cc, bcc, .. } => {
                let mut v = vec![to, subject, body];
                v.extend(cc.iter());
                v.extend(bcc.iter());
                v
            }
            Stmt::Log { message, .. } => vec![message],
            Stmt::Webhook { url, body, headers, .. } => {
                let mut v = vec![url, body];
                v.extend(headers.iter());
                v
            }
            Stmt::Set { value, .. } | Stmt::Append { value, .. } => vec![value],
            Stmt::Remove { .. } => vec![],
            Stmt::For { iter, .. } => vec![iter],
            Stmt::If { cond, .. } => vec![cond],
            Stmt::Upsert { key, fields, .. } => std::iter::once(key).chain(fields.iter().map(|f| &f.value)).collect(),
            Stmt::Delete { key, .. } => vec![key],
            Stmt::Link { value, .. } => vec![value],
        }
    }

    /// Nested statement blocks.
    pub fn blocks(&self) -> Vec<&[Stmt]> {
        match self {
            Stmt::For { body, .. } => vec![body],
            Stmt::If { then, else_, .. } => vec![then, else_],
            _ => vec![],
        }
    }
}

impl Step {
    /// The step's expressions, in evaluation order.
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            Step::Let { value, .. } | Step::GuardLet { value, .. } => vec![value],
            Step::Guard { cond, .. } => vec![cond],
            Step::Window(w) => w.keys.iter().chain(w.distinct.as_ref()).collect(),
            Step::Throttle(t) => t.keys.iter().collect(),
            Step::After(_) => vec![],
        }
    }
}

impl AfterStep {
    /// Paths of the earlier event the recorder reads.
    pub fn record_paths(&self) -> Vec<PathId> {
        let mut out = vec![self.time, self.whole];
        self.matcher.cond.walk(&mut |e| {
            if let ExprKind::Event(p) = e.kind {
                out.push(p);
            }
        });
        out.extend(self.matcher.bindings.iter().map(|(_, p)| *p));
        out.extend(self.join.iter().map(|(p, _)| *p));
        out.sort();
        out.dedup();
        out
    }
}

impl Program {
    /// Every `after` clause of the program, with its rule.
    pub fn afters(&self) -> impl Iterator<Item = (&Rule, &AfterStep)> + '_ {
        self.rules.iter().flat_map(|r| {
            r.steps.iter().filter_map(move |s| match s {
                Step::After(a) => Some((r, a)),
                _ => None,
            })
        })
    }
}

impl Rule {
    /// Every expression of the rule outside its `match`, in order.
    pub fn body_exprs(&self) -> Vec<&Expr> {
        fn stmts<'a>(out: &mut Vec<&'a Expr>, ss: &'a [Stmt]) {
            for s in ss {
                out.extend(s.exprs());
                for b in s.blocks() {
                    stmts(out, b);
                }
            }
        }
        let mut out: Vec<&Expr> = self.steps.iter().flat_map(Step::exprs).collect();
        stmts(&mut out, &self.actions);
        out
    }

    /// Event paths read by the `match` clause (pattern bindings included).
    pub fn match_paths(&self) -> Vec<PathId> {
        let mut out = Vec::new();
        self.matcher.cond.walk(&mut |e| {
            if let ExprKind::Event(p) = e.kind {
                out.push(p);
            }
        });
        out.extend(self.matcher.bindings.iter().map(|(_, p)| *p));
        out.sort();
        out.dedup();
        out
    }

    /// Event paths read by `let`, `guard` and `action` clauses.
    pub fn body_paths(&self) -> Vec<PathId> {
        let mut out = Vec::new();
        for e in self.body_exprs() {
            e.walk(&mut |e| {
                if let ExprKind::Event(p) = e.kind {
                    out.push(p);
                }
            });
        }
        // The event time read by windows and throttles.
        for s in &self.steps {
            match s {
                Step::Window(w) => out.push(w.time),
                Step::Throttle(t) => out.push(t.time),
                Step::After(a) => out.push(a.time),
                _ => {}
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerations_round_trip() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        for l in LogLevel::ALL {
            assert_eq!(LogLevel::parse(l.as_str()), Some(l));
        }
        assert_eq!(Severity::parse("critical"), None);
        assert_eq!(LogLevel::parse("Info"), None);
    }

    #[test]
    fn cidr_membership() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains_str("10.1.2.3"));
        assert!(!c.contains_str("11.1.2.3"));
        assert!(!c.contains_str("not an ip"));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains_str("2001:db8::1"));
        assert!(!v6.contains_str("10.1.2.3"));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0/8").is_none());
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains_str("192.0.2.1"));
        assert!(!all.contains_str("2001:db8::1"));
    }
}

/// A checked `test` item (`herald test`). `run` never looks at these.
#[derive(Debug, Clone)]
pub struct Test {
    pub name: String,
    /// The whole item (its file and line name the test in reports).
    pub span: Span,
    /// `given` rows, in order: the entity's name and the row as a literal.
    pub given: Vec<(String, serde_json::Value)>,
    /// `now "..."`, in nanoseconds since the epoch.
    pub now: Option<i128>,
    /// `event { ... }` bodies, in order, as literals (encoded as one JSON
    /// line each at test time and decoded exactly as `run` decodes input),
    /// each with the span of its `event` step (a rule error's failure
    /// points there).
    pub events: Vec<(serde_json::Value, Span)>,
    pub expects: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub struct Expectation {
    pub kind: ExpectKind,
    /// The whole `expect ...` step: failures point here.
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ExpectKind {
    /// `RULE fires [N]` (`None`: at least once).
    Fires {
        rule: String,
        count: Option<u64>,
    },
    DoesNotFire {
        rule: String,
    },
    /// `[no] notify|send_email|webhook(name: literal, ...)`: the arguments
    /// given must equal the effect's; the others are free.
    Effect {
        negated: bool,
        action: String,
        args: Vec<(String, serde_json::Value)>,
    },
    RuleError {
        rule: String,
        code: Option<String>,
    },
    DeadLetter,
    /// A `bool` expression over the final store (no event in scope).
    Expr(Expr),
}
