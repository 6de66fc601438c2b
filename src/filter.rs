//! What a query filter may say: the one definition of the filter subset.
//!
//! A query filter (`exists/count/first/all E(FILTER)`) is an expression over
//! the fields of E's rows and *outer* values (anything that does not read
//! the row: literals, locals, event paths, nested queries). Its meaning is
//! the interpreter's (`interp::filter` evaluates any filter over rows); the
//! store runs it as SQL. [`classify`] decides, from the IR alone, which
//! filters have an SQL form. The checker reports everything else (E0309)
//! and the store's compiler (`store::filter`) translates exactly what
//! `classify` accepts, so a checked filter never fails at run time for
//! being unsupported.
//!
//! Pure: no IO, no SQLite. The subset, over row operands `T` and outer
//! values `P`:
//!
//! ```text
//! F := F and F | F or F | not F | P | T            (T a bool or `any` field)
//!    | X op X            (op: == != < <= > >=, at most one side a `P`; no list or many-to-many side)
//!    | X == null | X != null
//!    | X in C | contains(C, X)
//!    | starts_with(S, S) | ends_with(S, S) | empty(T)
//! X := T | P     S := a string or `any` field, or P
//! T := a scalar, list, `any` (with a path inside) or many-to-many field of the row
//!    | len(T)            (T a string, list, `any` or many-to-many field)
//!    | lower(T) | upper(T) | trim(T)    (T a string field)
//! C := P | a string, list, `any` or many-to-many field | [X, ...] (a list literal,
//!      meaning `x == a or x == b ...`)
//! ```
//!
//! `in` between two fields is supported when the container is a string
//! field (and the element a scalar field), a list field or an `any` field.

use crate::builtins::{self, Sql};
use crate::ir::{Builtin, Expr, ExprKind, FieldRef};
use crate::span::Span;
use crate::types::{EntityId, Ty};

/// The scalar kinds a column (or a typed list element) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scalar {
    Int,
    Float,
    Bool,
    Str,
    Uuid,
    Timestamp,
}

impl Scalar {
    pub fn of(ty: &Ty) -> Option<Scalar> {
        Some(match ty.unwrap_optional() {
            Ty::Int => Scalar::Int,
            Ty::Float => Scalar::Float,
            Ty::Bool => Scalar::Bool,
            Ty::String => Scalar::Str,
            Ty::Uuid => Scalar::Uuid,
            Ty::Timestamp => Scalar::Timestamp,
            _ => return None,
        })
    }

    /// The declared SQL type of a column of this kind.
    pub fn sql_type(self) -> &'static str {
        match self {
            Scalar::Int | Scalar::Bool => "INTEGER",
            Scalar::Float => "REAL",
            Scalar::Str | Scalar::Uuid | Scalar::Timestamp => "TEXT",
        }
    }

    /// The comparison class: values of different classes never compare.
    /// Matches the classes of JSON values (see `store::filter`).
    pub fn class(self) -> &'static str {
        match self {
            Scalar::Int | Scalar::Float => "n",
            Scalar::Bool => "b",
            Scalar::Str | Scalar::Uuid | Scalar::Timestamp => "s",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scalar::Int => "int",
            Scalar::Float => "float",
            Scalar::Bool => "bool",
            Scalar::Str => "string",
            Scalar::Uuid => "uuid",
            Scalar::Timestamp => "timestamp",
        }
    }
}

/// How an entity field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// One scalar column.
    Scalar(Scalar),
    /// JSON text (`any`, and any other non-list type).
    Any,
    /// A JSON array of scalars (`Some`) or of any JSON values (`None`).
    List(Option<Scalar>),
    /// A many-to-many field: a join table, no column.
    ManyToMany(EntityId),
}

impl ColKind {
    pub fn of(ty: &Ty) -> ColKind {
        if let Some(s) = Scalar::of(ty) {
            return ColKind::Scalar(s);
        }
        match ty.unwrap_optional() {
            Ty::List(inner) => match inner.unwrap_optional() {
                Ty::Entity(e) => ColKind::ManyToMany(*e),
                t => ColKind::List(Scalar::of(t).filter(|_| !inner.is_optional())),
            },
            _ => ColKind::Any,
        }
    }
}

/// Why a filter (or a part of it) has no SQL form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported {
    /// The offending sub-expression.
    pub span: Span,
    /// Lower-case, no final period; shown after "this filter cannot run in
    /// the store: ".
    pub reason: &'static str,
}

type R<T> = Result<T, Unsupported>;

fn no<T>(e: &Expr, reason: &'static str) -> R<T> {
    Err(Unsupported { span: e.span, reason })
}

/// Does `e` read the filtered row? Rows inside nested queries belong to
/// those queries, so the walk stops there.
pub fn reads_row(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Row { .. } => true,
        ExprKind::Query { .. } => false,
        _ => e.children().into_iter().any(reads_row),
    }
}

/// What an operand of a filter is, as far as SQL is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// A scalar column, the key or `len(...)` of a row field.
    Scalar(Scalar),
    /// An `any` field, possibly with a path inside it.
    Any,
    /// A list field (typed elements or `any` elements).
    List(Option<Scalar>),
    /// A many-to-many field.
    ManyToMany,
    /// A value that does not read the row: computed before the query and
    /// bound as a parameter.
    Outer,
}

/// A JSON path literal for SQL: `'$."a"."b"'`; `None` when a key has a
/// quote or a control character (SQLite's JSON paths cannot escape them).
pub fn json_path_sql(path: &[String]) -> Option<String> {
    let mut s = String::from("'$");
    for seg in path {
        if seg.contains('"') || seg.chars().any(char::is_control) {
            return None;
        }
        s.push_str(".\"");
        s.push_str(&seg.replace('\'', "''"));
        s.push('"');
    }
    s.push('\'');
    Some(s)
}

pub const NOT_A_PATH: &str = "a field name with quotes or control characters cannot be queried";

/// `Ok` when the store can run `filter` as SQL; otherwise the first
/// offending sub-expression and why.
pub fn classify(filter: &Expr) -> R<()> {
    cond(filter)
}

/// A boolean condition.
fn cond(e: &Expr) -> R<()> {
    if !reads_row(e) {
        return Ok(());
    }
    match &e.kind {
        ExprKind::And(a, b) | ExprKind::Or(a, b) => {
            cond(a)?;
            cond(b)
        }
        ExprKind::Not(a) => cond(a),
        ExprKind::Row { .. } => match operand(e)? {
            Operand::Scalar(Scalar::Bool) | Operand::Any => Ok(()),
            _ => no(e, "a filter condition must be a bool"),
        },
        ExprKind::Cmp { lhs, rhs, .. } => comparison(e, lhs, rhs),
        ExprKind::IsNull { operand: o, .. } => operand(o).map(|_| ()),
        ExprKind::In { elem, container } => member(elem, container),
        // Whether a call may read the row is the registry's `sql` data; the
        // shapes of its arguments that have an SQL form are decided here.
        ExprKind::Call { func, .. } if builtins::def(func).sql != Sql::Condition => no(e, unsupported_call(func)),
        ExprKind::Call { func, args } => match (func, args.as_slice()) {
            (Builtin::StartsWith | Builtin::EndsWith, [a, b]) => {
                text(a)?;
                text(b)
            }
            (Builtin::Contains, [a, b]) => member(b, a),
            (Builtin::Empty, [a]) => operand(a).map(|_| ()),
            _ => no(e, unsupported_call(func)),
        },
        _ => no(e, "only comparisons, `in`, `and`, `or`, `not` and a few predicates can read the row"),
    }
}

/// `lhs op rhs`: scalars and `any` values compare; lists do not.
pub fn comparison(e: &Expr, lhs: &Expr, rhs: &Expr) -> R<()> {
    for o in [operand(lhs)?, operand(rhs)?] {
        if matches!(o, Operand::List(_) | Operand::ManyToMany) {
            return no(e, "a list field cannot be compared; test it with `in`, `len` or `empty`");
        }
    }
    Ok(())
}

/// An argument of `starts_with`/`ends_with`.
fn text(e: &Expr) -> R<()> {
    match operand(e)? {
        Operand::Scalar(Scalar::Str) | Operand::Any | Operand::Outer => Ok(()),
        _ => no(e, "`starts_with` and `ends_with` need string fields"),
    }
}

/// `elem in container` (also `contains(container, elem)`).
pub fn member(elem: &Expr, container: &Expr) -> R<()> {
    if let ExprKind::List(items) = &container.kind {
        if reads_row(container) {
            // `x in [a, b]` is `x == a or x == b`.
            return items.iter().try_for_each(|i| comparison(i, elem, i));
        }
    }
    let e = operand(elem)?;
    let c = operand(container)?;
    let ok = match (e, c) {
        (Operand::Scalar(_) | Operand::Any, Operand::Outer) => true,
        (Operand::Outer, Operand::Scalar(s)) => s == Scalar::Str,
        (Operand::Outer, _) => true,
        (Operand::Scalar(_), Operand::Scalar(s)) => s == Scalar::Str,
        (Operand::Scalar(_), Operand::List(_) | Operand::Any) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        no(
            elem,
            "this `in` test between fields of the row has no SQL form; compare with values computed outside the query",
        )
    }
}

/// What a value inside a filter is; `Err` when it reads the row in a way
/// SQL cannot express.
pub fn operand(e: &Expr) -> R<Operand> {
    if !reads_row(e) {
        return Ok(Operand::Outer);
    }
    match &e.kind {
        ExprKind::Row { field, path, .. } => match (ColKind::of(&e.ty), field) {
            (ColKind::Scalar(s), _) if path.is_empty() => Ok(Operand::Scalar(s)),
            (_, FieldRef::Key) => no(e, "an entity key must be a scalar"),
            (ColKind::Any, _) => match json_path_sql(path) {
                Some(_) => Ok(Operand::Any),
                None => no(e, NOT_A_PATH),
            },
            (_, _) if !path.is_empty() => no(e, "only an `any` field has a path inside it"),
            (ColKind::List(el), _) => Ok(Operand::List(el)),
            (ColKind::ManyToMany(_), _) => Ok(Operand::ManyToMany),
            (ColKind::Scalar(_), _) => unreachable!("scalar with an empty path is the first arm"),
        },
        // Only on a string column, which never holds another kind: on an
        // `any` value the interpreter's run-time error (R0001) has no SQL form.
        ExprKind::Call { func, .. } if builtins::def(func).sql != Sql::FieldTerm => no(e, unsupported_call(func)),
        ExprKind::Call { func: Builtin::Lower | Builtin::Upper | Builtin::Trim, args } if args.len() == 1 => {
            match operand(&args[0])? {
                Operand::Scalar(Scalar::Str) => Ok(Operand::Scalar(Scalar::Str)),
                _ => no(e, "`lower`, `upper` and `trim` in a filter need a string field"),
            }
        }
        ExprKind::Call { func: Builtin::Len, args } if args.len() == 1 => match operand(&args[0])? {
            Operand::Scalar(Scalar::Str) | Operand::List(_) | Operand::Any | Operand::ManyToMany => {
                Ok(Operand::Scalar(Scalar::Int))
            }
            _ => no(e, "`len` needs a string, a list or an `any` field"),
        },
        ExprKind::Coalesce(..) => no(
            e,
            "`??` over the row's fields has no SQL form; spell the default out, e.g. `(f == \"x\" or f == null)` for `f ?? \"x\" == \"x\"`",
        ),
        _ => no(e, "a computed value of the row's fields cannot be compared"),
    }
}

fn unsupported_call(func: &Builtin) -> &'static str {
    match builtins::def(func).sql {
        Sql::Unsupported(reason) => reason,
        Sql::Condition => "this predicate is a condition of its own; it cannot be compared",
        Sql::FieldTerm => "this function is a value to compare, not a condition",
    }
}
