//! Compiling query filters to parameterised SQL.
//!
//! This module is pure (no rusqlite): the checker calls [`filter_supported`]
//! to reject filters the store cannot run (E0309), and the store compiles
//! the same filters with the same code, so the two never disagree. The only
//! difference between the two is where column kinds come from: the checker
//! variant reads them from the IR types, the store from the schema.
//!
//! # Shape of the SQL
//! A sub-expression that contains no `Row` (not counting rows of nested
//! queries) is an *outer* value: the store evaluates it once, before the
//! query runs, and binds it as a parameter (`?N`). The SQL text therefore
//! depends only on the IR shape, never on values, so `prepare_cached` can
//! reuse the statement.
//!
//! # Semantics
//! Filters follow the language: comparisons are two-valued and false when
//! either side is absent or null (`x == null` is `IS NULL`). Where a
//! comparison sits under no `not`, SQL's NULL already acts as false in a
//! WHERE clause (AND/OR are monotone), so it is emitted bare, which lets
//! SQLite use an index; under `not` each comparison is wrapped in
//! `coalesce(..., 0)` so NOT sees a two-valued operand.
//!
//! Values of different kinds (a number and a string, say) are never equal
//! and never ordered; `!=` between two present values of different kinds is
//! true. Numbers compare numerically (int with float). A string compared
//! with a `uuid` or `timestamp` column is parsed (either uuid form); text
//! that does not parse is unequal to everything.

use crate::filter::reads_row;
use crate::ir::{Builtin, CmpOp, Expr, ExprKind, FieldRef};
use crate::span::Span;
use crate::types::{EntityId, Ty};
use crate::value::Value;

pub use crate::filter::{json_path_sql, ColKind, Scalar};

/// How one SQL parameter is derived from an outer value (by index into
/// [`Compiled::outer`]). The store turns each into an SQL value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// 1 when the value is `true`, else 0.
    Bool(usize),
    /// The value in the SQL form of a column of this kind, or NULL when it
    /// is absent, null or does not convert (then it equals nothing).
    Coerce(usize, Scalar),
    /// 1 when the value is present and not null, else 0.
    Present(usize),
    /// The value as SQLite's `json_extract` would give it (numbers, 0/1 for
    /// bools, text, JSON text for lists/objects), NULL when absent or null.
    DynVal(usize),
    /// The value's comparison class (`n`, `b`, `s`, `j`), NULL when absent
    /// or null.
    DynClass(usize),
    /// A JSON array: the list's elements coerced to the kind (those that do
    /// not convert dropped), or as JSON when `None`. NULL when not a list.
    List(usize, Option<Scalar>),
    /// The value when it is a string, else NULL.
    Text(usize),
}

/// A compiled filter: SQL boolean expression text (over the row alias `t`)
/// whose `?N` is `binds[N-1]`, and the outer expressions to evaluate, in
/// order, before binding.
#[derive(Debug, Clone)]
pub struct Compiled<'e> {
    pub sql: String,
    pub binds: Vec<Bind>,
    pub outer: Vec<&'e Expr>,
}

/// Where a `Row` of the filtered entity lives.
#[derive(Debug, Clone)]
pub enum ColRef {
    /// A column (SQL text such as `t."name"`) and its kind (never
    /// `ManyToMany`).
    Col { sql: String, kind: ColKind },
    /// A many-to-many field: the quoted join table, the SQL of the
    /// filtered row's key and the kind of the target entity's key.
    Join { join: String, key: String, target: Scalar },
}

/// Resolves rows of the filtered entity to columns.
pub trait Columns {
    fn column(&self, entity: EntityId, field: FieldRef, ty: &Ty) -> Result<ColRef, &'static str>;
}

/// Compile a filter that [`crate::filter::classify`] accepts to SQL.
/// `Err` only for a filter the checker would have rejected (or a schema
/// that disagrees with the IR): the caller reports it as an internal error.
pub fn compile_filter<'e>(expr: &'e Expr, cols: &dyn Columns) -> Result<Compiled<'e>, (Span, &'static str)> {
    crate::filter::classify(expr).map_err(|u| (u.span, u.reason))?;
    let mut cx = Cx { cols, binds: Vec::new(), outer: Vec::new(), alias: 0 };
    let sql = cx.cond(expr, true)?;
    Ok(Compiled { sql, binds: cx.binds, outer: cx.outer })
}

type R<T> = Result<T, (Span, &'static str)>;

/// A compiled operand.
enum Opnd {
    /// A typed scalar SQL value (column, key, `len(...)`).
    Typed(String, Scalar),
    /// A JSON value: column (SQL) and JSON path literal (SQL).
    Dyn(String, String),
    /// A JSON array column of typed (or any) elements.
    List(String, Option<Scalar>),
    /// A many-to-many field: join table, row key SQL, target key kind.
    Join(String, String, Scalar),
    /// An outer value, by index into `outer`.
    Param(usize),
}

/// The comparison class of a JSON value from its `json_type`.
fn json_class(ty: &str) -> String {
    format!(
        "(CASE {ty} WHEN 'integer' THEN 'n' WHEN 'real' THEN 'n' WHEN 'true' THEN 'b' \
         WHEN 'false' THEN 'b' WHEN 'text' THEN 's' WHEN 'array' THEN 'j' WHEN 'object' THEN 'j' END)"
    )
}

fn dval(c: &str, p: &str) -> String {
    format!("json_extract({c}, {p})")
}

fn dtype(c: &str, p: &str) -> String {
    format!("json_type({c}, {p})")
}

fn dclass(c: &str, p: &str) -> String {
    json_class(&dtype(c, p))
}

/// Present and not JSON null.
fn dpresent(c: &str, p: &str) -> String {
    format!("coalesce({} <> 'null', 0)", dtype(c, p))
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

fn sql_op(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

fn json_path(span: Span, path: &[String]) -> R<String> {
    json_path_sql(path).ok_or((span, crate::filter::NOT_A_PATH))
}

/// The comparison classes with an order.
const ORDERED: [&str; 2] = ["n", "s"];

/// The SQL function counting the characters of a text value. SQLite's
/// `length` stops at the first NUL; the store registers this one
/// (`store::functions`), which counts every character as Rust does.
pub const LEN: &str = "herald_len";

/// A text value as a BLOB, so `substr`, `length` and `instr` work on its
/// bytes: on text they stop at the first NUL. UTF-8 byte prefixes,
/// suffixes and substrings are exactly the string ones.
fn blob(t: String) -> String {
    format!("CAST({t} AS BLOB)")
}

/// The store's SQL function for `lower`, `upper` or `trim` (Rust's own
/// Unicode case mapping and whitespace, unlike SQLite's ASCII-only ones).
fn str_fn(func: &Builtin) -> &'static str {
    match func {
        Builtin::Lower => "herald_lower",
        Builtin::Upper => "herald_upper",
        _ => "herald_trim",
    }
}

/// Wrap a possibly-NULL SQL boolean so it is two-valued (unless in a
/// positive position, where NULL already acts as false).
fn tv(raw: String, pos: bool) -> String {
    if pos {
        format!("({raw})")
    } else {
        format!("coalesce({raw}, 0)")
    }
}

struct Cx<'e, 'c> {
    cols: &'c dyn Columns,
    binds: Vec<Bind>,
    outer: Vec<&'e Expr>,
    alias: u32,
}

impl<'e> Cx<'e, '_> {
    fn outer(&mut self, e: &'e Expr) -> usize {
        // `x in [a, b]` compiles `x` once per item: evaluate it once.
        if let Some(i) = self.outer.iter().position(|o| std::ptr::eq(*o, e)) {
            return i;
        }
        self.outer.push(e);
        self.outer.len() - 1
    }

    /// Add a parameter; returns its `?N` text.
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("?{}", self.binds.len())
    }

    fn fresh(&mut self) -> String {
        self.alias += 1;
        format!("j{}", self.alias)
    }

    /// A boolean condition. `pos`: no `not` above, so NULL may stand for false.
    fn cond(&mut self, e: &'e Expr, pos: bool) -> R<String> {
        if !reads_row(e) {
            if let ExprKind::Lit(v) = &e.kind {
                return Ok(if matches!(v, Value::Bool(true)) { "1" } else { "0" }.into());
            }
            let p = self.outer(e);
            return Ok(self.bind(Bind::Bool(p)));
        }
        match &e.kind {
            ExprKind::And(a, b) => Ok(format!("({} AND {})", self.cond(a, pos)?, self.cond(b, pos)?)),
            ExprKind::Or(a, b) => Ok(format!("({} OR {})", self.cond(a, pos)?, self.cond(b, pos)?)),
            ExprKind::Not(a) => Ok(format!("(NOT {})", self.cond(a, false)?)),
            ExprKind::Cmp { op, lhs, rhs } => self.cmp(*op, lhs, rhs, pos),
            ExprKind::IsNull { operand, negated } => {
                let o = self.operand(operand)?;
                let present = self.present(&o);
                Ok(if *negated { present } else { format!("(NOT {present})") })
            }
            ExprKind::In { elem, container } => self.member(elem, container, pos),
            ExprKind::Call { func, args } => match (func, args.as_slice()) {
                (Builtin::StartsWith, [a, b]) => {
                    let (a, b) = (self.operand(a)?, self.operand(b)?);
                    let (a, b) = (blob(self.text(a, e.span)?), blob(self.text(b, e.span)?));
                    // `substr` of an empty BLOB is NULL, so the empty prefix
                    // is a case of its own.
                    Ok(format!("coalesce(length({b}) = 0 AND {a} IS NOT NULL OR substr({a}, 1, length({b})) = {b}, 0)"))
                }
                (Builtin::EndsWith, [a, b]) => {
                    let (a, b) = (self.operand(a)?, self.operand(b)?);
                    let (a, b) = (blob(self.text(a, e.span)?), blob(self.text(b, e.span)?));
                    Ok(format!(
                        "coalesce(length({b}) = 0 AND {a} IS NOT NULL \
                         OR length({b}) <= length({a}) AND substr({a}, length({a}) - length({b}) + 1) = {b}, 0)"
                    ))
                }
                (Builtin::Contains, [a, b]) => self.member(b, a, pos),
                (Builtin::Empty, [a]) => {
                    let o = self.operand(a)?;
                    self.empty(o, a.span)
                }
                _ => Err((e.span, "this function cannot run in a store query")),
            },
            ExprKind::Row { .. } => match self.operand(e)? {
                Opnd::Typed(c, Scalar::Bool) => Ok(tv(format!("{c} = 1"), pos)),
                Opnd::Dyn(c, p) => Ok(format!("coalesce({} = 'true', 0)", dtype(&c, &p))),
                _ => Err((e.span, "a filter condition must be a bool")),
            },
            _ => Err((e.span, "this expression cannot run in a store query")),
        }
    }

    fn operand(&mut self, e: &'e Expr) -> R<Opnd> {
        if !reads_row(e) {
            return Ok(Opnd::Param(self.outer(e)));
        }
        match &e.kind {
            ExprKind::Row { entity, field, path } => {
                match self.cols.column(*entity, *field, &e.ty).map_err(|m| (e.span, m))? {
                    ColRef::Col { sql, kind } => match kind {
                        ColKind::Any => Ok(Opnd::Dyn(sql, json_path(e.span, path)?)),
                        _ if !path.is_empty() => Err((e.span, "only an `any` field has a path inside it")),
                        ColKind::Scalar(s) => Ok(Opnd::Typed(sql, s)),
                        ColKind::List(el) => Ok(Opnd::List(sql, el)),
                        ColKind::ManyToMany(_) => Err((e.span, "unexpected many-to-many column")),
                    },
                    ColRef::Join { join, key, target } => {
                        if !path.is_empty() {
                            return Err((e.span, "only an `any` field has a path inside it"));
                        }
                        Ok(Opnd::Join(join, key, target))
                    }
                }
            }
            ExprKind::Call { func: func @ (Builtin::Lower | Builtin::Upper | Builtin::Trim), args }
                if args.len() == 1 =>
            {
                match self.operand(&args[0])? {
                    Opnd::Typed(c, Scalar::Str) => Ok(Opnd::Typed(format!("{}({c})", str_fn(func)), Scalar::Str)),
                    _ => Err((e.span, "internal: a case function on a non-string field")),
                }
            }
            ExprKind::Call { func: Builtin::Len, args } if args.len() == 1 => {
                let o = self.operand(&args[0])?;
                let sql = self.len(o, e.span)?;
                Ok(Opnd::Typed(sql, Scalar::Int))
            }
            _ => Err((e.span, "this expression cannot run in a store query")),
        }
    }

    /// SQL that is 1 when the operand is present and not null, else 0.
    fn present(&mut self, o: &Opnd) -> String {
        match o {
            Opnd::Typed(c, _) | Opnd::List(c, _) => format!("({c} IS NOT NULL)"),
            Opnd::Dyn(c, p) => dpresent(c, p),
            Opnd::Join(..) => "1".into(),
            Opnd::Param(p) => self.bind(Bind::Present(*p)),
        }
    }

    fn len(&mut self, o: Opnd, span: Span) -> R<String> {
        match o {
            Opnd::Typed(c, Scalar::Str) => Ok(format!("{LEN}({c})")),
            Opnd::List(c, _) => Ok(format!("json_array_length({c})")),
            Opnd::Dyn(c, p) => Ok(format!(
                "(CASE {} WHEN 'text' THEN {LEN}({}) WHEN 'array' THEN json_array_length({c}, {p}) \
                 WHEN 'object' THEN (SELECT count(*) FROM json_each({c}, {p})) END)",
                dtype(&c, &p),
                dval(&c, &p)
            )),
            Opnd::Join(join, key, _) => {
                let j = self.fresh();
                Ok(format!("(SELECT count(*) FROM {join} AS {j} WHERE {j}.\"source\" = {key})"))
            }
            _ => Err((span, "`len` in a query needs a string, a list or an `any` field")),
        }
    }

    fn empty(&mut self, o: Opnd, span: Span) -> R<String> {
        match o {
            Opnd::Typed(c, Scalar::Str) => Ok(format!("({c} IS NULL OR {c} = '')")),
            Opnd::Typed(c, _) => Ok(format!("({c} IS NULL)")),
            Opnd::List(c, _) => Ok(format!("({c} IS NULL OR json_array_length({c}) = 0)")),
            Opnd::Dyn(c, p) => Ok(format!(
                "(CASE coalesce({}, 'null') WHEN 'null' THEN 1 WHEN 'text' THEN {} = '' \
                 WHEN 'array' THEN json_array_length({c}, {p}) = 0 \
                 WHEN 'object' THEN NOT EXISTS (SELECT 1 FROM json_each({c}, {p})) ELSE 0 END)",
                dtype(&c, &p),
                dval(&c, &p)
            )),
            Opnd::Join(join, key, _) => {
                let j = self.fresh();
                Ok(format!("(NOT EXISTS (SELECT 1 FROM {join} AS {j} WHERE {j}.\"source\" = {key}))"))
            }
            Opnd::Param(_) => Err((span, "this expression cannot run in a store query")),
        }
    }

    /// A string operand: its text, or NULL when it is not a string.
    fn text(&mut self, o: Opnd, span: Span) -> R<String> {
        match o {
            Opnd::Typed(c, Scalar::Str) => Ok(c),
            Opnd::Dyn(c, p) => Ok(format!("(CASE WHEN {} = 'text' THEN {} END)", dtype(&c, &p), dval(&c, &p))),
            Opnd::Param(p) => Ok(self.bind(Bind::Text(p))),
            _ => Err((span, "this function needs strings in a store query")),
        }
    }

    fn cmp(&mut self, op: CmpOp, lhs: &'e Expr, rhs: &'e Expr, pos: bool) -> R<String> {
        if op == CmpOp::Ne {
            // `a != b` is exactly `not (a == b)`: true when either side is
            // absent or null. The two-valued `==` keeps NOT two-valued.
            let eq = self.cmp(CmpOp::Eq, lhs, rhs, false)?;
            return Ok(format!("(NOT {eq})"));
        }
        let span = lhs.span.to(rhs.span);
        let a = self.operand(lhs)?;
        let b = self.operand(rhs)?;
        // Put the row side first: Typed, then Dyn, then Param.
        let rank = |o: &Opnd| match o {
            Opnd::Typed(..) => 0,
            Opnd::Dyn(..) => 1,
            Opnd::Param(_) => 2,
            Opnd::List(..) | Opnd::Join(..) => 3,
        };
        if rank(&a) == 3 || rank(&b) == 3 {
            return Err((span, "lists cannot be compared in a store query; use `in` or `len`"));
        }
        let (a, b, op) = if rank(&a) > rank(&b) { (b, a, flip(op)) } else { (a, b, op) };
        let o = sql_op(op);
        // Only numbers and strings have an order (`ops::order`): bools,
        // lists and objects never compare with `<`.
        let ordering = op != CmpOp::Eq;
        Ok(match (a, b) {
            (Opnd::Typed(x, k), Opnd::Param(p)) => {
                let v = self.bind(Bind::Coerce(p, k));
                tv(format!("{x} {o} {v}"), pos)
            }
            (Opnd::Typed(x, k1), Opnd::Typed(y, k2)) => {
                if k1.class() == k2.class() {
                    tv(format!("{x} {o} {y}"), pos)
                } else {
                    "0".into()
                }
            }
            (Opnd::Typed(x, k), Opnd::Dyn(c, p)) => {
                if ordering && !ORDERED.contains(&k.class()) {
                    "0".into()
                } else {
                    tv(format!("{} = '{}' AND {x} {o} {}", dclass(&c, &p), k.class(), dval(&c, &p)), pos)
                }
            }
            (Opnd::Dyn(c, p), Opnd::Param(q)) => {
                let cls = self.bind(Bind::DynClass(q));
                let v = self.bind(Bind::DynVal(q));
                let only = if ordering { format!(" AND {cls} IN ('n', 's')") } else { String::new() };
                tv(format!("{} = {cls}{only} AND {} {o} {v}", dclass(&c, &p), dval(&c, &p)), pos)
            }
            (Opnd::Dyn(c1, p1), Opnd::Dyn(c2, p2)) => {
                let only = if ordering { format!(" AND {} IN ('n', 's')", dclass(&c1, &p1)) } else { String::new() };
                tv(
                    format!(
                        "{} = {}{only} AND {} {o} {}",
                        dclass(&c1, &p1),
                        dclass(&c2, &p2),
                        dval(&c1, &p1),
                        dval(&c2, &p2)
                    ),
                    pos,
                )
            }
            _ => return Err((span, "internal: a comparison the checker rejects")),
        })
    }

    /// `elem in container` (and `contains(container, elem)`).
    fn member(&mut self, elem: &'e Expr, container: &'e Expr, pos: bool) -> R<String> {
        let span = elem.span.to(container.span);
        if let ExprKind::List(items) = &container.kind {
            if reads_row(container) {
                // `x in [a, b]` is `x == a or x == b` (`ops::contains`).
                if items.is_empty() {
                    return Ok("0".into());
                }
                let alts = items.iter().map(|i| self.cmp(CmpOp::Eq, elem, i, pos)).collect::<R<Vec<_>>>()?;
                return Ok(format!("({})", alts.join(" OR ")));
            }
        }
        let e = self.operand(elem)?;
        let c = self.operand(container)?;
        let mut parts: Vec<String> = Vec::new();
        match (e, c) {
            (e, Opnd::Param(p)) => {
                // The container is an outer value: its static type says
                // whether it is a list, a string, or either (`any`).
                let (list, text) = match container.ty.unwrap_optional() {
                    Ty::List(_) => (true, false),
                    Ty::String => (false, true),
                    _ => (true, true),
                };
                match e {
                    Opnd::Typed(x, k) => {
                        if list {
                            let l = self.bind(Bind::List(p, Some(k)));
                            parts.push(format!("{x} IN (SELECT value FROM json_each({l}))"));
                        }
                        if text && k == Scalar::Str {
                            let t = self.bind(Bind::Text(p));
                            parts.push(format!("instr(CAST({t} AS BLOB), CAST({x} AS BLOB)) > 0"));
                        }
                    }
                    Opnd::Dyn(dc, dp) => {
                        if list {
                            let l = self.bind(Bind::List(p, None));
                            let j = self.fresh();
                            parts.push(format!(
                                "EXISTS (SELECT 1 FROM json_each({l}) AS {j} WHERE {} = {} AND {j}.value = {})",
                                json_class(&format!("{j}.type")),
                                dclass(&dc, &dp),
                                dval(&dc, &dp)
                            ));
                        }
                        if text {
                            let t = self.bind(Bind::Text(p));
                            parts.push(format!(
                                "({} = 's' AND instr(CAST({t} AS BLOB), CAST({} AS BLOB)) > 0)",
                                dclass(&dc, &dp),
                                dval(&dc, &dp)
                            ));
                        }
                    }
                    _ => return Err((span, "internal: an `in` test the checker rejects")),
                }
            }
            (Opnd::Param(p), c) => match c {
                Opnd::Typed(x, Scalar::Str) => {
                    let t = self.bind(Bind::Text(p));
                    parts.push(format!("instr(CAST({x} AS BLOB), CAST({t} AS BLOB)) > 0"));
                }
                Opnd::List(x, Some(k)) => {
                    let v = self.bind(Bind::Coerce(p, k));
                    parts.push(format!("{v} IN (SELECT value FROM json_each({x}))"));
                }
                Opnd::List(x, None) => {
                    let cls = self.bind(Bind::DynClass(p));
                    let v = self.bind(Bind::DynVal(p));
                    let j = self.fresh();
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM json_each({x}) AS {j} WHERE {} = {cls} AND {j}.value = {v})",
                        json_class(&format!("{j}.type"))
                    ));
                }
                Opnd::Dyn(dc, dp) => {
                    let cls = self.bind(Bind::DynClass(p));
                    let v = self.bind(Bind::DynVal(p));
                    let t = self.bind(Bind::Text(p));
                    let j = self.fresh();
                    parts.push(format!(
                        "(CASE {} WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({dc}, {dp}) AS {j} \
                         WHERE {} = {cls} AND {j}.value = {v}) \
                         WHEN 'text' THEN coalesce(instr(CAST({} AS BLOB), CAST({t} AS BLOB)) > 0, 0) ELSE 0 END)",
                        dtype(&dc, &dp),
                        json_class(&format!("{j}.type")),
                        dval(&dc, &dp)
                    ));
                }
                Opnd::Join(join, key, target) => {
                    // The target key; an entity row stands for its key.
                    let k = self.bind(Bind::Coerce(p, target));
                    let j = self.fresh();
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM {join} AS {j} WHERE {j}.\"source\" = {key} AND {j}.\"target\" = {k})"
                    ));
                }
                _ => return Err((span, "internal: an `in` container the checker rejects")),
            },
            (Opnd::Typed(x, k), c) => match c {
                Opnd::Typed(y, Scalar::Str) => {
                    // `ops::contains` on a string and a non-string is false.
                    if k == Scalar::Str {
                        parts.push(format!("instr(CAST({y} AS BLOB), CAST({x} AS BLOB)) > 0"));
                    }
                }
                Opnd::List(y, Some(k2)) => {
                    if k.class() == k2.class() {
                        parts.push(format!("{x} IN (SELECT value FROM json_each({y}))"));
                    }
                }
                Opnd::List(y, None) => {
                    let j = self.fresh();
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM json_each({y}) AS {j} WHERE {} = '{}' AND {j}.value = {x})",
                        json_class(&format!("{j}.type")),
                        k.class()
                    ));
                }
                Opnd::Dyn(dc, dp) => {
                    let j = self.fresh();
                    let text = if k == Scalar::Str {
                        format!(
                            "WHEN 'text' THEN coalesce(instr(CAST({} AS BLOB), CAST({x} AS BLOB)) > 0, 0) ",
                            dval(&dc, &dp)
                        )
                    } else {
                        String::new()
                    };
                    parts.push(format!(
                        "(CASE {} WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({dc}, {dp}) AS {j} \
                         WHERE {} = '{}' AND {j}.value = {x}) {text}ELSE 0 END)",
                        dtype(&dc, &dp),
                        json_class(&format!("{j}.type")),
                        k.class()
                    ));
                }
                _ => return Err((span, "internal: an `in` test the checker rejects")),
            },
            _ => return Err((span, "internal: an `in` test the checker rejects")),
        }
        if parts.is_empty() {
            return Ok("0".into());
        }
        Ok(tv(parts.join(" OR "), pos))
    }
}
