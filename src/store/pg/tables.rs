//! Herald's own tables on PostgreSQL: their DDL (`tables.sql`) and their
//! part of the dump, in the form SQLite's dump has (`store::herald`).

use super::{pg_err, Conn};
use crate::diag::RuntimeError;
use crate::store::herald::{TIME_COLUMNS, TRANSIENT_COLUMNS, WEBHOOK_COLUMNS};
use crate::store::StoreError;
use postgres::types::Type;
use std::fmt::Write as _;

const TABLES: &str = include_str!("tables.sql");

/// Create the schema `herald` and Herald's tables when missing (inside the
/// opening transaction). Needs `CREATE` on the database, or an existing
/// `herald` schema the user may create tables in (docs/postgres.md).
pub(super) fn create(c: &mut Conn) -> Result<(), StoreError> {
    c.client().batch_execute(TABLES).map_err(|e| StoreError::Sql(super::describe_pg(&e)))
}

/// Herald's tables in dump order, with their ORDER BY. Text keys sort in the
/// "C" collation (byte order, as SQLite's), whatever the database's.
/// `herald_state_entry` is in insertion order as SQLite's dump has it.
const DUMP: &[(&str, &str)] = &[
    ("herald_notification", "id"),
    ("herald_outbox", "id"),
    ("herald_firing", "id"),
    ("herald_dead_letter", "id"),
    ("herald_rule_error", "id"),
    ("herald_processed", "event_key COLLATE \"C\""),
    ("herald_rule_set", "id"),
    ("herald_checkpoint", "source_key COLLATE \"C\""),
    ("herald_meta", "key COLLATE \"C\""),
    ("herald_state_mark", "rule COLLATE \"C\", clause"),
    ("herald_state_entry", "seq"),
];

/// Columns of PostgreSQL's tables that SQLite's have not (its rowid).
const PG_ONLY: &[&str] = &["seq"];

/// Append the dump of Herald's tables to `out`.
pub(super) fn dump(c: &mut Conn, out: &mut String) -> Result<(), RuntimeError> {
    for (table, order) in DUMP {
        let sql = format!("SELECT * FROM herald.{table} ORDER BY {order}");
        let rows = c.client().query(&sql, &[]).map_err(pg_err)?;
        let mut lines = Vec::with_capacity(rows.len());
        for r in &rows {
            let cols = r.columns();
            let email = *table == "herald_outbox"
                && cols
                    .iter()
                    .position(|c| c.name() == "kind")
                    .is_some_and(|i| r.get::<_, Option<&str>>(i) == Some("email"));
            let mut obj = serde_json::Map::new();
            for (i, col) in cols.iter().enumerate() {
                let name = col.name();
                if name == "id"
                    || PG_ONLY.contains(&name)
                    || TRANSIENT_COLUMNS.contains(&name)
                    || (email && WEBHOOK_COLUMNS.contains(&name))
                {
                    continue;
                }
                let v = value(r, i, col.type_());
                let v = if TIME_COLUMNS.contains(&name) && !v.is_null() { "<time>".into() } else { v };
                obj.insert(name.to_string(), v);
            }
            lines.push(serde_json::Value::Object(obj).to_string());
        }
        let _ = writeln!(out, "== {table} ({} rows)", lines.len());
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    Ok(())
}

/// A column's value as the JSON scalar SQLite's dump shows for it.
fn value(r: &postgres::Row, i: usize, ty: &Type) -> serde_json::Value {
    use serde_json::Value as J;
    let v = match *ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i).map(|v| v.map(J::from)),
        Type::INT4 => r.try_get::<_, Option<i32>>(i).map(|v| v.map(J::from)),
        Type::INT2 => r.try_get::<_, Option<i16>>(i).map(|v| v.map(J::from)),
        Type::BOOL => r.try_get::<_, Option<bool>>(i).map(|v| v.map(|b| J::from(i64::from(b)))),
        Type::FLOAT8 => {
            r.try_get::<_, Option<f64>>(i).map(|v| v.and_then(|f| serde_json::Number::from_f64(f).map(J::Number)))
        }
        Type::JSONB | Type::JSON => r.try_get::<_, Option<J>>(i),
        _ => r.try_get::<_, Option<String>>(i).map(|v| v.map(J::String)),
    };
    v.ok().flatten().unwrap_or(J::Null)
}
