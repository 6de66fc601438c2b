//! Query filters evaluated over rows: what a filter means.
//!
//! A filter is an expression over the fields of the queried entity's rows
//! and outer values. The store runs it as SQL (`store::filter`); this is
//! the reference the SQL must agree with (`tests/filter_props.rs`), and it
//! evaluates *every* filter, including those outside the SQL subset.
//!
//! As in the store, the outer values (the largest sub-expressions that do
//! not read the row) are evaluated once, in source order, before any row
//! is looked at, so an error in one surfaces even when no row exists.

use super::{Env, Interp};
use crate::diag::RuntimeError;
use crate::filter::reads_row;
use crate::ir::{Expr, ExprKind, FieldRef, QueryKind};
use crate::types::{EntityId, Ty};
use crate::value::{Row, Value};
use std::sync::Arc;

impl Interp<'_> {
    /// `kind E(filter)` over `rows` (E's rows, in key order), with the
    /// interpreter's semantics. `filter: None` takes every row.
    pub fn query_rows(
        &self,
        kind: QueryKind,
        filter: Option<&Expr>,
        env: &Env,
        rows: &[Arc<Row>],
    ) -> Result<Value, RuntimeError> {
        let filter = match filter {
            Some(f) => Some(self.outer_values(f, env)?),
            None => None,
        };
        let mut hits = Vec::new();
        for row in rows {
            let keep = match &filter {
                Some(f) => self.filter_row(f, env, row)?,
                None => true,
            };
            if keep {
                hits.push(row.clone());
                if matches!(kind, QueryKind::Exists | QueryKind::First) {
                    break;
                }
            }
        }
        Ok(match kind {
            QueryKind::Exists => Value::Bool(!hits.is_empty()),
            QueryKind::Count => Value::Int(hits.len() as i64),
            QueryKind::First => hits.into_iter().next().map(Value::Entity).unwrap_or(Value::Absent),
            QueryKind::All => Value::list(hits.into_iter().map(Value::Entity).collect()),
        })
    }

    /// The filter with every outer value replaced by its value.
    fn outer_values(&self, e: &Expr, env: &Env) -> Result<Expr, RuntimeError> {
        if !reads_row(e) {
            let v = match &e.kind {
                ExprKind::Lit(v) => v.clone(),
                _ => self.eval(e, env)?,
            };
            return Ok(Expr::lit(v, e.ty.clone(), e.span));
        }
        self.map_children(e, &mut |c| self.outer_values(c, env))
    }

    /// Does `row` pass `filter` (whose outer values are already literals)?
    fn filter_row(&self, filter: &Expr, env: &Env, row: &Row) -> Result<bool, RuntimeError> {
        let bound = self.bind_row(filter, row)?;
        match self.eval(&bound, env)? {
            Value::Bool(b) => Ok(b),
            other => Err(super::ops::type_error("a bool", &other).at(filter.span)),
        }
    }

    /// The filter with the row's fields in place of `Row` nodes.
    fn bind_row(&self, e: &Expr, row: &Row) -> Result<Expr, RuntimeError> {
        match &e.kind {
            ExprKind::Row { entity, field, path } => {
                let v = self.row_field(*entity, row, *field, &e.ty)?;
                let v = path.iter().fold(v, |v, seg| v.get(seg));
                Ok(Expr::lit(v, e.ty.clone(), e.span))
            }
            // A nested query's rows are its own (and it was evaluated as
            // an outer value already).
            ExprKind::Query { .. } => Ok(e.clone()),
            _ => self.map_children(e, &mut |c| self.bind_row(c, row)),
        }
    }

    fn row_field(&self, entity: EntityId, row: &Row, field: FieldRef, ty: &Ty) -> Result<Value, RuntimeError> {
        Ok(match field {
            FieldRef::Key => row.key.clone(),
            FieldRef::Field(i) => match ty.unwrap_optional() {
                // Many-to-many fields live in a join table.
                Ty::List(inner) if matches!(inner.unwrap_optional(), Ty::Entity(_)) => {
                    let rows = self.db.related(entity, &row.key, i)?;
                    Value::list(rows.into_iter().map(Value::Entity).collect())
                }
                _ => row.fields.get(i).cloned().unwrap_or(Value::Absent),
            },
        })
    }

    /// A copy of `e` with each direct child replaced by `f(child)`.
    fn map_children(
        &self,
        e: &Expr,
        f: &mut dyn FnMut(&Expr) -> Result<Expr, RuntimeError>,
    ) -> Result<Expr, RuntimeError> {
        use crate::ir::InterpPart;
        let mut b = |x: &Expr| f(x).map(Box::new);
        let kind = match &e.kind {
            ExprKind::Lit(_) | ExprKind::Event(_) | ExprKind::Local(_) | ExprKind::Row { .. } => e.kind.clone(),
            ExprKind::Query { .. } => e.kind.clone(),
            ExprKind::Field { base, name } => ExprKind::Field { base: b(base)?, name: name.clone() },
            ExprKind::Column { base, entity, field } => {
                ExprKind::Column { base: b(base)?, entity: *entity, field: *field }
            }
            ExprKind::Related { base, entity, field, target } => {
                ExprKind::Related { base: b(base)?, entity: *entity, field: *field, target: *target }
            }
            ExprKind::Index { base, index } => ExprKind::Index { base: b(base)?, index: b(index)? },
            ExprKind::List(items) => ExprKind::List(items.iter().map(&mut *f).collect::<Result<_, _>>()?),
            ExprKind::Object(entries) => {
                ExprKind::Object(entries.iter().map(|(k, x)| f(x).map(|x| (k.clone(), x))).collect::<Result<_, _>>()?)
            }
            ExprKind::Coalesce(x, y) => ExprKind::Coalesce(b(x)?, b(y)?),
            ExprKind::Project { base, step, flatten } => {
                ExprKind::Project { base: b(base)?, step: step.clone(), flatten: *flatten }
            }
            ExprKind::Interp(parts) => ExprKind::Interp(
                parts
                    .iter()
                    .map(|p| match p {
                        InterpPart::Text(t) => Ok(InterpPart::Text(t.clone())),
                        InterpPart::Expr(x) => f(x).map(InterpPart::Expr),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            ExprKind::Not(x) => ExprKind::Not(b(x)?),
            ExprKind::Neg(x) => ExprKind::Neg(b(x)?),
            ExprKind::And(x, y) => ExprKind::And(b(x)?, b(y)?),
            ExprKind::Or(x, y) => ExprKind::Or(b(x)?, b(y)?),
            ExprKind::Cmp { op, lhs, rhs } => ExprKind::Cmp { op: *op, lhs: b(lhs)?, rhs: b(rhs)? },
            ExprKind::IsNull { operand, negated } => ExprKind::IsNull { operand: b(operand)?, negated: *negated },
            ExprKind::Arith { op, lhs, rhs } => ExprKind::Arith { op: *op, lhs: b(lhs)?, rhs: b(rhs)? },
            ExprKind::In { elem, container } => ExprKind::In { elem: b(elem)?, container: b(container)? },
            ExprKind::Call { func, args } => {
                ExprKind::Call { func: func.clone(), args: args.iter().map(&mut *f).collect::<Result<_, _>>()? }
            }
            ExprKind::Lookup { entity, key } => ExprKind::Lookup { entity: *entity, key: b(key)? },
            ExprKind::LookupMany { entity, keys } => ExprKind::LookupMany { entity: *entity, keys: b(keys)? },
        };
        Ok(Expr { kind, ty: e.ty.clone(), span: e.span })
    }
}
