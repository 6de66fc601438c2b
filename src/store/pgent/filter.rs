//! Query filters compiled to PostgreSQL SQL: the same subset
//! (`crate::filter::classify`) and the same meaning as `store::filter`'s
//! SQLite form, with jsonb operators in place of `json_extract`.
//!
//! Differences from the SQLite text, and why:
//! - Conditions are `boolean`, not 0/1 integers.
//! - Every parameter is bound as text and cast in SQL (`($1::text)::uuid`),
//!   so the SQL text still depends only on the filter's shape.
//! - Text is compared with `COLLATE "C"` (byte order, as SQLite's BINARY),
//!   whatever the database's default collation.
//! - JSON values are classed by `jsonb_typeof` (JSON `null` has no class,
//!   so it equals nothing, as SQLite's NULL from `json_extract`); numbers
//!   compare as `numeric`, strings as text, and lists and objects with
//!   jsonb equality (the interpreter's deep equality).
//! - `lower`/`upper` use the ICU root collation (Unicode case mapping, as
//!   Rust's), `trim` strips the Unicode White_Space set Rust's `trim` does.

use crate::filter::{json_path_sql, reads_row, ColKind, Scalar};
use crate::ir::{Builtin, CmpOp, Expr, ExprKind};
use crate::span::Span;
use crate::store::filter::{ColRef, Columns};
use crate::types::Ty;
use crate::value::Value;

use super::map::scalar_type;

/// How one parameter (`$N`, bound as text) is made from an outer value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgBind {
    /// `true`/`false`.
    Bool(usize),
    /// The value coerced to a column kind (`convert::coerce_param`) as the
    /// text of the kind's type; numbers as `numeric` text. NULL when absent,
    /// null or not convertible.
    Coerce(usize, Scalar),
    /// `true` when present and not null.
    Present(usize),
    /// The value as jsonb text (NULL when absent or null, or with no JSON
    /// form: a duration, a non-finite float).
    DynVal(usize),
    /// The comparison class `n`, `b`, `s`, `j` (`d` for a duration).
    DynClass(usize),
    /// A number as `numeric` text, else NULL.
    DynNum(usize),
    /// A string, uuid or timestamp as text (SQLite's `json_extract` text
    /// of it), else NULL.
    DynText(usize),
    /// A jsonb array of the list's elements coerced to the kind (or as
    /// JSON when `None`); NULL when not a list.
    List(usize, Option<Scalar>),
    /// The value as text when it is a string, else NULL.
    Text(usize),
    /// A jsonb array of one element: the value coerced to the kind as a
    /// JSON scalar (for membership in a typed list column).
    One(usize, Scalar),
}

#[derive(Debug, Clone)]
pub struct Compiled<'e> {
    pub sql: String,
    pub binds: Vec<PgBind>,
    pub outer: Vec<&'e Expr>,
}

type R<T> = Result<T, (Span, &'static str)>;

/// The Unicode White_Space characters Rust's `str::trim` strips.
const WHITE: &str = "\u{9}\u{a}\u{b}\u{c}\u{d}\u{20}\u{85}\u{a0}\u{1680}\u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";

pub fn compile_filter<'e>(expr: &'e Expr, cols: &dyn Columns) -> Result<Compiled<'e>, (Span, &'static str)> {
    crate::filter::classify(expr).map_err(|u| (u.span, u.reason))?;
    let mut cx = Cx { cols, binds: Vec::new(), outer: Vec::new(), alias: 0 };
    let sql = cx.cond(expr, true)?;
    Ok(Compiled { sql, binds: cx.binds, outer: cx.outer })
}

enum Opnd {
    /// A typed scalar SQL value.
    Typed(String, Scalar),
    /// A JSON value: its jsonb expression and its `#>>` text expression.
    Dyn(String, String),
    /// A jsonb array column.
    List(String, Option<Scalar>),
    /// A many-to-many link table, source column, target column, row key
    /// SQL, target key kind.
    Join(String, String, String, String, Scalar),
    Param(usize),
}

/// `ARRAY['a','b']::text[]` for a path (quotes doubled).
fn path_array(path: &[String]) -> String {
    let items: Vec<String> = path.iter().map(|p| format!("'{}'", p.replace('\'', "''"))).collect();
    format!("ARRAY[{}]::text[]", items.join(", "))
}

fn class_of(jsonb: &str) -> String {
    format!(
        "(CASE jsonb_typeof({jsonb}) WHEN 'number' THEN 'n' WHEN 'boolean' THEN 'b' WHEN 'string' THEN 's' \
         WHEN 'array' THEN 'j' WHEN 'object' THEN 'j' END)"
    )
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

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

fn tv(raw: String, pos: bool) -> String {
    if pos {
        format!("({raw})")
    } else {
        format!("coalesce({raw}, false)")
    }
}

/// A typed value as the text SQLite would hold for it (uuid dashed lower
/// case, timestamp RFC 3339 with microseconds), collated bytewise.
fn as_text(x: &str, k: Scalar) -> String {
    match k {
        Scalar::Uuid => format!("(({x})::text COLLATE \"C\")"),
        Scalar::Timestamp => format!("({} COLLATE \"C\")", super::map::ts_text(x)),
        _ => format!("(({x}) COLLATE \"C\")"),
    }
}

/// A typed value as a jsonb scalar, as it appears in a JSON list.
fn to_jsonb(x: &str, k: Scalar) -> String {
    match k {
        Scalar::Uuid | Scalar::Timestamp => format!("to_jsonb({}::text)", as_text(x, k)),
        _ => format!("to_jsonb({x})"),
    }
}

/// The SQL type a `Coerce` parameter of kind `k` is cast to.
fn coerce_type(k: Scalar) -> &'static str {
    match k {
        Scalar::Int | Scalar::Float => "numeric",
        k => scalar_type(k),
    }
}

struct Cx<'e, 'c> {
    cols: &'c dyn Columns,
    binds: Vec<PgBind>,
    outer: Vec<&'e Expr>,
    alias: u32,
}

impl<'e> Cx<'e, '_> {
    fn outer(&mut self, e: &'e Expr) -> usize {
        if let Some(i) = self.outer.iter().position(|o| std::ptr::eq(*o, e)) {
            return i;
        }
        self.outer.push(e);
        self.outer.len() - 1
    }

    /// A parameter cast to `ty`.
    fn bind(&mut self, b: PgBind, ty: &str) -> String {
        self.binds.push(b);
        format!("(${}::text)::{ty}", self.binds.len())
    }

    fn fresh(&mut self) -> String {
        self.alias += 1;
        format!("j{}", self.alias)
    }

    fn cond(&mut self, e: &'e Expr, pos: bool) -> R<String> {
        if !reads_row(e) {
            if let ExprKind::Lit(v) = &e.kind {
                return Ok(if matches!(v, Value::Bool(true)) { "true" } else { "false" }.into());
            }
            let p = self.outer(e);
            return Ok(self.bind(PgBind::Bool(p), "boolean"));
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
                    let (a, b) = (self.text(a, e.span)?, self.text(b, e.span)?);
                    Ok(format!("coalesce(starts_with({a}, {b}), false)"))
                }
                (Builtin::EndsWith, [a, b]) => {
                    let (a, b) = (self.operand(a)?, self.operand(b)?);
                    let (a, b) = (self.text(a, e.span)?, self.text(b, e.span)?);
                    Ok(format!("coalesce(right({a}, length({b})) = {b}, false)"))
                }
                (Builtin::Contains, [a, b]) => self.member(b, a, pos),
                (Builtin::Empty, [a]) => {
                    let o = self.operand(a)?;
                    self.empty(o, a.span)
                }
                _ => Err((e.span, "this function cannot run in a store query")),
            },
            ExprKind::Row { .. } => match self.operand(e)? {
                Opnd::Typed(c, Scalar::Bool) => Ok(tv(c, pos)),
                Opnd::Dyn(j, _) => Ok(format!("coalesce({j} = 'true'::jsonb, false)")),
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
                        ColKind::Any => {
                            // The SQLite form's path check, so both accept the same paths.
                            json_path_sql(path).ok_or((e.span, crate::filter::NOT_A_PATH))?;
                            let c = format!("({sql})::jsonb");
                            if path.is_empty() {
                                Ok(Opnd::Dyn(c.clone(), format!("({c} #>> '{{}}')")))
                            } else {
                                let p = path_array(path);
                                Ok(Opnd::Dyn(format!("({c} #> {p})"), format!("({c} #>> {p})")))
                            }
                        }
                        _ if !path.is_empty() => Err((e.span, "only an `any` field has a path inside it")),
                        ColKind::Scalar(s) => Ok(Opnd::Typed(sql, s)),
                        ColKind::List(el) => Ok(Opnd::List(format!("({sql})::jsonb"), el)),
                        ColKind::ManyToMany(_) => Err((e.span, "unexpected many-to-many column")),
                    },
                    ColRef::Join { join, key, target } => {
                        if !path.is_empty() {
                            return Err((e.span, "only an `any` field has a path inside it"));
                        }
                        // `join` is `table|source|target` (see `PgColumns`).
                        let mut parts = join.splitn(3, '|');
                        let (t, s, g) = (
                            parts.next().unwrap_or_default().to_string(),
                            parts.next().unwrap_or_default().to_string(),
                            parts.next().unwrap_or_default().to_string(),
                        );
                        Ok(Opnd::Join(t, s, g, key, target))
                    }
                }
            }
            ExprKind::Call { func: func @ (Builtin::Lower | Builtin::Upper | Builtin::Trim), args }
                if args.len() == 1 =>
            {
                match self.operand(&args[0])? {
                    Opnd::Typed(c, Scalar::Str) => Ok(Opnd::Typed(
                        match func {
                            Builtin::Lower => format!("(lower(({c}) COLLATE \"und-x-icu\") COLLATE \"C\")"),
                            Builtin::Upper => format!("(upper(({c}) COLLATE \"und-x-icu\") COLLATE \"C\")"),
                            _ => format!("btrim({c}, '{WHITE}')"),
                        },
                        Scalar::Str,
                    )),
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

    fn present(&mut self, o: &Opnd) -> String {
        match o {
            Opnd::Typed(c, _) | Opnd::List(c, _) => format!("({c} IS NOT NULL)"),
            Opnd::Dyn(j, _) => format!("coalesce(jsonb_typeof({j}) <> 'null', false)"),
            Opnd::Join(..) => "true".into(),
            Opnd::Param(p) => self.bind(PgBind::Present(*p), "boolean"),
        }
    }

    fn len(&mut self, o: Opnd, span: Span) -> R<String> {
        match o {
            Opnd::Typed(c, Scalar::Str) => Ok(format!("length({c})::bigint")),
            Opnd::List(c, _) => Ok(format!("jsonb_array_length({c})::bigint")),
            Opnd::Dyn(j, t) => Ok(format!(
                "(CASE jsonb_typeof({j}) WHEN 'string' THEN length({t})::bigint \
                 WHEN 'array' THEN jsonb_array_length({j})::bigint \
                 WHEN 'object' THEN (SELECT count(*) FROM jsonb_object_keys({j})) END)"
            )),
            Opnd::Join(table, src, _, key, _) => {
                let a = self.fresh();
                Ok(format!("(SELECT count(*) FROM {table} AS {a} WHERE {a}.{src} = {key})"))
            }
            _ => Err((span, "`len` in a query needs a string, a list or an `any` field")),
        }
    }

    fn empty(&mut self, o: Opnd, span: Span) -> R<String> {
        match o {
            Opnd::Typed(c, Scalar::Str) => Ok(format!("({c} IS NULL OR {c} = '')")),
            Opnd::Typed(c, _) => Ok(format!("({c} IS NULL)")),
            Opnd::List(c, _) => Ok(format!("({c} IS NULL OR jsonb_array_length({c}) = 0)")),
            Opnd::Dyn(j, t) => Ok(format!(
                "(CASE coalesce(jsonb_typeof({j}), 'null') WHEN 'null' THEN true WHEN 'string' THEN {t} = '' \
                 WHEN 'array' THEN jsonb_array_length({j}) = 0 WHEN 'object' THEN {j} = '{{}}'::jsonb ELSE false END)"
            )),
            Opnd::Join(table, src, _, key, _) => {
                let a = self.fresh();
                Ok(format!("(NOT EXISTS (SELECT 1 FROM {table} AS {a} WHERE {a}.{src} = {key}))"))
            }
            Opnd::Param(_) => Err((span, "this expression cannot run in a store query")),
        }
    }

    fn text(&mut self, o: Opnd, span: Span) -> R<String> {
        match o {
            Opnd::Typed(c, Scalar::Str) => Ok(c),
            Opnd::Dyn(j, t) => Ok(format!("(CASE WHEN jsonb_typeof({j}) = 'string' THEN {t} END)")),
            Opnd::Param(p) => Ok(self.bind(PgBind::Text(p), "text")),
            _ => Err((span, "this function needs strings in a store query")),
        }
    }

    fn cmp(&mut self, op: CmpOp, lhs: &'e Expr, rhs: &'e Expr, pos: bool) -> R<String> {
        if op == CmpOp::Ne {
            let eq = self.cmp(CmpOp::Eq, lhs, rhs, false)?;
            return Ok(format!("(NOT {eq})"));
        }
        let span = lhs.span.to(rhs.span);
        let a = self.operand(lhs)?;
        let b = self.operand(rhs)?;
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
        let ordering = op != CmpOp::Eq;
        Ok(match (a, b) {
            (Opnd::Typed(x, k), Opnd::Param(p)) => {
                let v = self.bind(PgBind::Coerce(p, k), coerce_type(k));
                match k {
                    Scalar::Str => tv(format!("({x}) COLLATE \"C\" {o} {v}"), pos),
                    Scalar::Bool if ordering => "false".into(),
                    _ => tv(format!("{x} {o} {v}"), pos),
                }
            }
            (Opnd::Typed(x, k1), Opnd::Typed(y, k2)) => {
                if k1.class() != k2.class() || (ordering && k1 == Scalar::Bool) {
                    "false".into()
                } else if k1 == k2 && k1 != Scalar::Str {
                    tv(format!("{x} {o} {y}"), pos)
                } else if k1.class() == "s" {
                    tv(format!("{} {o} {}", as_text(&x, k1), as_text(&y, k2)), pos)
                } else {
                    tv(format!("{x} {o} {y}"), pos)
                }
            }
            (Opnd::Typed(x, k), Opnd::Dyn(j, t)) => {
                let cls = class_of(&j);
                match k.class() {
                    "n" => tv(format!("CASE WHEN {cls} = 'n' THEN {x} {o} ({t})::numeric ELSE false END"), pos),
                    "s" => tv(format!("{cls} = 's' AND {} {o} ({t} COLLATE \"C\")", as_text(&x, k)), pos),
                    _ if ordering => "false".into(),
                    _ => tv(format!("CASE WHEN {cls} = 'b' THEN {x} = ({t})::boolean ELSE false END"), pos),
                }
            }
            (Opnd::Dyn(j, t), Opnd::Param(q)) => {
                let dc = class_of(&j);
                let cls = self.bind(PgBind::DynClass(q), "text");
                if ordering {
                    let num = self.bind(PgBind::DynNum(q), "numeric");
                    let txt = self.bind(PgBind::DynText(q), "text");
                    tv(
                        format!(
                            "CASE WHEN {dc} = {cls} THEN (CASE {cls} WHEN 'n' THEN ({t})::numeric {o} {num} \
                             WHEN 's' THEN ({t} COLLATE \"C\") {o} {txt} END) ELSE false END"
                        ),
                        pos,
                    )
                } else {
                    let v = self.bind(PgBind::DynVal(q), "jsonb");
                    tv(format!("{dc} = {cls} AND {j} = {v}"), pos)
                }
            }
            (Opnd::Dyn(j1, t1), Opnd::Dyn(j2, t2)) => {
                let (c1, c2) = (class_of(&j1), class_of(&j2));
                if ordering {
                    tv(
                        format!(
                            "CASE WHEN {c1} = {c2} THEN (CASE {c1} WHEN 'n' THEN ({t1})::numeric {o} ({t2})::numeric \
                             WHEN 's' THEN ({t1} COLLATE \"C\") {o} ({t2} COLLATE \"C\") END) ELSE false END"
                        ),
                        pos,
                    )
                } else {
                    tv(format!("{c1} = {c2} AND {j1} = {j2}"), pos)
                }
            }
            _ => return Err((span, "internal: a comparison the checker rejects")),
        })
    }

    /// `EXISTS` over the elements of a jsonb array equal to a jsonb value
    /// (JSON null elements equal nothing).
    fn any_elem(&mut self, arr: &str, v: &str) -> String {
        let a = self.fresh();
        format!(
            "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof({arr}) WHEN 'array' THEN {arr} END) AS {a}(v) \
             WHERE jsonb_typeof({a}.v) <> 'null' AND {a}.v = {v})"
        )
    }

    fn member(&mut self, elem: &'e Expr, container: &'e Expr, pos: bool) -> R<String> {
        let span = elem.span.to(container.span);
        if let ExprKind::List(items) = &container.kind {
            if reads_row(container) {
                if items.is_empty() {
                    return Ok("false".into());
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
                let (list, text) = match container.ty.unwrap_optional() {
                    Ty::List(_) => (true, false),
                    Ty::String => (false, true),
                    _ => (true, true),
                };
                match e {
                    Opnd::Typed(x, k) => {
                        if list {
                            let l = self.bind(PgBind::List(p, Some(k)), "jsonb");
                            parts.push(self.any_elem(&l, &to_jsonb(&x, k)));
                        }
                        if text && k == Scalar::Str {
                            let t = self.bind(PgBind::Text(p), "text");
                            parts.push(format!("strpos({t}, {x}) > 0"));
                        }
                    }
                    Opnd::Dyn(j, t) => {
                        if list {
                            let l = self.bind(PgBind::List(p, None), "jsonb");
                            parts.push(self.any_elem(&l, &j));
                        }
                        if text {
                            let s = self.bind(PgBind::Text(p), "text");
                            parts.push(format!("(jsonb_typeof({j}) = 'string' AND strpos({s}, {t}) > 0)"));
                        }
                    }
                    _ => return Err((span, "internal: an `in` test the checker rejects")),
                }
            }
            (Opnd::Param(p), c) => match c {
                Opnd::Typed(x, Scalar::Str) => {
                    let t = self.bind(PgBind::Text(p), "text");
                    parts.push(format!("strpos({x}, {t}) > 0"));
                }
                Opnd::List(x, Some(k)) => {
                    let one = self.bind(PgBind::One(p, k), "jsonb");
                    parts.push(format!("jsonb_typeof({x}) = 'array' AND {x} @> {one}"));
                }
                Opnd::List(x, None) => {
                    let v = self.bind(PgBind::DynVal(p), "jsonb");
                    parts.push(self.any_elem(&x, &v));
                }
                Opnd::Dyn(j, t) => {
                    let v = self.bind(PgBind::DynVal(p), "jsonb");
                    let s = self.bind(PgBind::Text(p), "text");
                    let arr = self.any_elem(&j, &v);
                    parts.push(format!(
                        "(CASE jsonb_typeof({j}) WHEN 'array' THEN {arr} \
                         WHEN 'string' THEN coalesce(strpos({t}, {s}) > 0, false) ELSE false END)"
                    ));
                }
                Opnd::Join(table, src, tgt, key, target) => {
                    let k = self.bind(PgBind::Coerce(p, target), coerce_type(target));
                    let a = self.fresh();
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM {table} AS {a} WHERE {a}.{src} = {key} AND {a}.{tgt} = {k})"
                    ));
                }
                _ => return Err((span, "internal: an `in` container the checker rejects")),
            },
            (Opnd::Typed(x, k), c) => match c {
                Opnd::Typed(y, Scalar::Str) => {
                    if k == Scalar::Str {
                        parts.push(format!("strpos({y}, {x}) > 0"));
                    }
                }
                Opnd::List(y, Some(k2)) => {
                    if k.class() == k2.class() {
                        parts.push(self.any_elem(&y, &to_jsonb(&x, k)));
                    }
                }
                Opnd::List(y, None) => {
                    parts.push(self.any_elem(&y, &to_jsonb(&x, k)));
                }
                Opnd::Dyn(j, t) => {
                    let arr = self.any_elem(&j, &to_jsonb(&x, k));
                    let text = if k == Scalar::Str {
                        format!("WHEN 'string' THEN coalesce(strpos({t}, {x}) > 0, false) ")
                    } else {
                        String::new()
                    };
                    parts.push(format!("(CASE jsonb_typeof({j}) WHEN 'array' THEN {arr} {text}ELSE false END)"));
                }
                _ => return Err((span, "internal: an `in` test the checker rejects")),
            },
            _ => return Err((span, "internal: an `in` test the checker rejects")),
        }
        if parts.is_empty() {
            return Ok("false".into());
        }
        Ok(tv(parts.join(" OR "), pos))
    }
}
