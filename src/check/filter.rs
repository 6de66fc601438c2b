//! Which query filters the store can run as SQL.
//!
//! This is the one definition of the filter subset: the checker rejects
//! anything else (E0309) and the store compiles exactly this.

use crate::builtins::{self, Sql};
use crate::ir::{Builtin, Expr, ExprKind};
use crate::span::Span;

/// Does the expression read the filtered row? A nested query's filter
/// reads *its own* row; the nested query is a value computed outside.
pub fn reads_row(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Row { .. } => true,
        ExprKind::Query { .. } => false,
        _ => e.children().into_iter().any(reads_row),
    }
}

/// `Ok` when `filter` is in the subset the store compiles to SQL:
///
/// ```text
/// F := F and F | F or F | not F | T            (a bool column or outer value)
///    | T op T | T == null | T != null | T in T
///    | starts_with(T, T) | ends_with(T, T) | contains(T, T) | empty(T)
/// T := a field of the row (with a path inside an `any` field)
///    | len(field) | an expression that does not read the row (a parameter)
/// ```
pub fn filter_supported(filter: &Expr) -> Result<(), (Span, &'static str)> {
    cond(filter)
}

fn cond(e: &Expr) -> Result<(), (Span, &'static str)> {
    if !reads_row(e) {
        return Ok(());
    }
    match &e.kind {
        ExprKind::And(a, b) | ExprKind::Or(a, b) => {
            cond(a)?;
            cond(b)
        }
        ExprKind::Not(a) => cond(a),
        ExprKind::Row { .. } => Ok(()),
        ExprKind::Cmp { lhs, rhs, .. } => {
            term(lhs)?;
            term(rhs)
        }
        ExprKind::IsNull { operand, .. } => term(operand),
        ExprKind::In { elem, container } => {
            term(elem)?;
            term(container)
        }
        // Which calls may read the row is the registry's `sql` data.
        ExprKind::Call { func, args } => match builtins::def(func).sql {
            Sql::Condition => args.iter().try_for_each(term),
            _ => Err((e.span, unsupported_call(func))),
        },
        _ => Err((e.span, "only comparisons, `in`, `and`, `or`, `not` and a few predicates can read the row")),
    }
}

fn term(e: &Expr) -> Result<(), (Span, &'static str)> {
    if !reads_row(e) {
        return Ok(());
    }
    match &e.kind {
        ExprKind::Row { .. } => Ok(()),
        ExprKind::Call { func, args }
            if builtins::def(func).sql == Sql::FieldTerm
                && args.first().is_some_and(|a| matches!(a.kind, ExprKind::Row { .. })) =>
        {
            Ok(())
        }
        ExprKind::Call { func, .. } => Err((e.span, unsupported_call(func))),
        _ => Err((e.span, "a computed value of the row's fields cannot be compared")),
    }
}

fn unsupported_call(func: &Builtin) -> &'static str {
    match builtins::def(func).sql {
        Sql::Unsupported(reason) => reason,
        Sql::Condition | Sql::FieldTerm => "this function cannot read the row's fields",
    }
}
