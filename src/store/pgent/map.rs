//! Where each entity lives on PostgreSQL: a [`Mapping`] names, per entity,
//! the qualified table, the key column and kind, each field's column (and
//! its kind) or its link table with the two columns it joins on.
//!
//! [`Mapping::herald`] derives it from the schema for the tables Herald
//! creates itself in the schema `herald` (the SQLite shapes: one column per
//! scalar or JSON field, `jsonb` for `any` and lists, a join table
//! `"E_F"("source", "target")` per many-to-many field). Every identifier
//! comes from the schema (or from a fixed mapping table in the code), never
//! from event data, and is always quoted.
//!
//! Reads select every column cast to one canonical PostgreSQL type per kind
//! (so an `integer` column of a foreign table reads as `bigint`, a
//! `varchar` as `text`, a `timestamptz` as its fixed RFC 3339 text): the
//! row conversion then has one case per kind, shared with SQLite's.

use crate::filter::{ColKind, Scalar};
use crate::schema::Schema;
use crate::store::{quote, StoreError};
use crate::types::EntityId;

/// The schema holding Herald's own tables (and, without a mapping, the
/// entity tables).
pub const HERALD_SCHEMA: &str = "herald";

/// A many-to-many field's link table.
#[derive(Debug, Clone)]
pub struct PgJoin {
    /// Qualified, quoted table.
    pub table: String,
    /// Quoted column holding the owning row's key.
    pub source: String,
    /// Quoted column holding the target row's key.
    pub target_col: String,
    pub target: EntityId,
    pub target_key: Scalar,
    /// Extra `(quoted column, SQL value)` pairs an insert must give (a
    /// foreign table's NOT NULL columns without a default).
    pub insert_extra: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct PgField {
    pub name: String,
    /// Quoted column (unused for a many-to-many field).
    pub col: String,
    pub kind: ColKind,
    pub required: bool,
    pub join: Option<PgJoin>,
}

/// One entity on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgEntity {
    pub id: EntityId,
    pub name: String,
    /// Qualified, quoted table.
    pub table: String,
    pub key_name: String,
    /// Quoted key column.
    pub key_col: String,
    pub key: Scalar,
    pub fields: Vec<PgField>,
    /// Field indices stored as columns, in SELECT order (after the key).
    pub columns: Vec<usize>,
    /// `<key read>, <col read>, ...` over the alias `t`.
    pub select: String,
    /// Columns an insert must give beyond the key and the given fields
    /// (a foreign table's NOT NULL columns without a database default),
    /// as `(quoted column, SQL value)`.
    pub insert_extra: Vec<(String, String)>,
    /// Columns an update sets besides the written ones (`last_updated`).
    pub touch: Vec<(String, String)>,
}

/// How Herald's entities map onto PostgreSQL tables.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub ents: Vec<PgEntity>,
    /// Tables Herald creates (`None` for a foreign mapping, whose tables
    /// must exist): CREATE statements in order.
    pub ddl: Option<Vec<String>>,
    /// Per entity, a statement run before inserting a row (`$1` = the
    /// key): a parent row of a multi-table model (authentik's
    /// application and its policy binding model).
    pub parents: Vec<(EntityId, String)>,
    /// Where `notify` writes when not in Herald's own table.
    pub notification: Option<super::authentik::NotificationTarget>,
}

/// The PostgreSQL type a column of this kind has in Herald's own tables.
pub fn pg_type(kind: ColKind) -> &'static str {
    match kind {
        ColKind::Scalar(s) => scalar_type(s),
        _ => "jsonb",
    }
}

/// The PostgreSQL type of a scalar kind (also the type parameters are cast to).
pub fn scalar_type(s: Scalar) -> &'static str {
    match s {
        Scalar::Int => "bigint",
        Scalar::Float => "double precision",
        Scalar::Bool => "boolean",
        Scalar::Str => "text",
        Scalar::Uuid => "uuid",
        Scalar::Timestamp => "timestamptz",
    }
}

/// The RFC 3339 text Herald stores timestamps as on SQLite (UTC, fixed
/// microseconds), from a `timestamptz` expression.
pub fn ts_text(sql: &str) -> String {
    format!("to_char(({sql}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

/// The SELECT expression reading a column of `kind` in its canonical form.
pub fn read_expr(col: &str, kind: ColKind) -> String {
    match kind {
        ColKind::Scalar(Scalar::Int) => format!("({col})::bigint"),
        ColKind::Scalar(Scalar::Float) => format!("({col})::double precision"),
        ColKind::Scalar(Scalar::Bool) => format!("({col})::boolean"),
        ColKind::Scalar(Scalar::Str) => format!("({col})::text"),
        ColKind::Scalar(Scalar::Uuid) => format!("({col})::text"),
        ColKind::Scalar(Scalar::Timestamp) => ts_text(&format!("({col})::timestamptz")),
        _ => format!("({col})::text"),
    }
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote(schema), quote(table))
}

impl PgEntity {
    /// Fill `select` and `columns` from the fields.
    pub(crate) fn finish(&mut self) {
        self.columns.clear();
        let mut select = read_expr(&format!("t.{}", self.key_col), ColKind::Scalar(self.key));
        for (i, f) in self.fields.iter().enumerate() {
            if f.join.is_none() {
                self.columns.push(i);
                select.push_str(", ");
                select.push_str(&read_expr(&format!("t.{}", f.col), f.kind));
            }
        }
        self.select = select;
    }

    /// The key column compared with a bound key (text cast to the key's type).
    pub fn key_eq(&self, param: usize) -> String {
        format!("t.{} = {}", self.key_col, param_cast(param, self.key))
    }
}

/// `($N::text)::TYPE`: every parameter is bound as text and cast in SQL,
/// so one Rust type serves every column type (a foreign `integer` column
/// takes a `bigint` by assignment).
pub fn param_cast(n: usize, s: Scalar) -> String {
    format!("(${n}::text)::{}", scalar_type(s))
}

impl Mapping {
    /// Herald's own entity tables in schema `herald`, as on SQLite.
    pub fn herald(schema: &Schema) -> Result<Mapping, StoreError> {
        let mut ents = Vec::new();
        let mut ddl = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut claim = |name: &str, what: String| -> Result<(), StoreError> {
            if name.to_lowercase().starts_with("herald_") {
                return Err(StoreError::Schema(format!(
                    "{what} would be the table `{name}`, a name reserved for Herald"
                )));
            }
            if name.contains('\0') {
                return Err(StoreError::Schema(format!("{what} has a NUL character in its name")));
            }
            // PostgreSQL identifiers are at most 63 bytes; a longer name
            // would be cut silently and two names could meet.
            if name.len() > 63 {
                return Err(StoreError::Schema(format!(
                    "{what} would be the table `{name}`, longer than PostgreSQL's 63 bytes"
                )));
            }
            if names.iter().any(|n| n == name) {
                return Err(StoreError::Schema(format!("{what} would be the table `{name}` twice")));
            }
            names.push(name.to_string());
            Ok(())
        };
        for id in schema.entity_ids() {
            let def = schema.entity(id);
            claim(&def.name, format!("entity `{}`", def.name))?;
            let key = Scalar::of(&def.key.ty).ok_or_else(|| {
                StoreError::Schema(format!("the key `{}` of `{}` is not a scalar", def.key.name, def.name))
            })?;
            let table = qualified(HERALD_SCHEMA, &def.name);
            let key_col = quote(&def.key.name);
            let mut create =
                format!("CREATE TABLE IF NOT EXISTS {table} ({key_col} {} NOT NULL PRIMARY KEY", scalar_type(key));
            let mut fields = Vec::new();
            let mut joins = Vec::new();
            for f in &def.fields {
                let kind = ColKind::of(&f.ty);
                let required = match kind {
                    ColKind::Scalar(_) | ColKind::List(_) => !f.ty.is_optional() && !f.ty.admits_absent(),
                    _ => false,
                };
                let join = match kind {
                    ColKind::ManyToMany(target) => {
                        let jname = format!("{}_{}", def.name, f.name);
                        claim(&jname, format!("the many-to-many field `{}.{}`", def.name, f.name))?;
                        let tdef = schema.entity(target);
                        let target_key = Scalar::of(&tdef.key.ty).ok_or_else(|| {
                            StoreError::Schema(format!(
                                "the key `{}` of `{}` is not a scalar",
                                tdef.key.name, tdef.name
                            ))
                        })?;
                        let jt = qualified(HERALD_SCHEMA, &jname);
                        joins.push(format!(
                            "CREATE TABLE IF NOT EXISTS {jt} (\"source\" {} NOT NULL, \"target\" {} NOT NULL, \
                             PRIMARY KEY (\"source\", \"target\"))",
                            scalar_type(key),
                            scalar_type(target_key)
                        ));
                        joins.push(format!(
                            "CREATE INDEX IF NOT EXISTS {} ON {jt} (\"target\")",
                            quote(&format!("{jname}.target"))
                        ));
                        Some(PgJoin {
                            table: jt,
                            source: "\"source\"".into(),
                            target_col: "\"target\"".into(),
                            target,
                            target_key,
                            insert_extra: Vec::new(),
                        })
                    }
                    _ => None,
                };
                let col = quote(&f.name);
                if join.is_none() {
                    create.push_str(&format!(", {col} {}{}", pg_type(kind), if required { " NOT NULL" } else { "" }));
                }
                fields.push(PgField { name: f.name.clone(), col, kind, required, join });
            }
            create.push(')');
            ddl.push(create);
            ddl.extend(joins);
            let mut e = PgEntity {
                id,
                name: def.name.clone(),
                table,
                key_name: def.key.name.clone(),
                key_col,
                key,
                fields,
                columns: Vec::new(),
                select: String::new(),
                insert_extra: Vec::new(),
                touch: Vec::new(),
            };
            e.finish();
            ents.push(e);
        }
        Ok(Mapping { ents, ddl: Some(ddl), parents: Vec::new(), notification: None })
    }

    /// The authentik mapping (see `pgent::authentik`), resolved against
    /// the database `c` is connected to.
    pub fn authentik(c: &mut postgres::Client, schema: &Schema, tenant: &str) -> Result<Mapping, StoreError> {
        super::authentik::mapping(c, schema, tenant)
    }

    pub fn ent(&self, id: EntityId) -> Option<&PgEntity> {
        self.ents.get(id.0 as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_cast_to_one_type_per_kind() {
        assert_eq!(read_expr("t.\"n\"", ColKind::Scalar(Scalar::Int)), "(t.\"n\")::bigint");
        assert_eq!(read_expr("t.\"a\"", ColKind::Any), "(t.\"a\")::text");
        assert!(read_expr("t.\"w\"", ColKind::Scalar(Scalar::Timestamp)).starts_with("to_char("));
        assert_eq!(param_cast(3, Scalar::Uuid), "($3::text)::uuid");
        assert_eq!(qualified("herald", "a\"b"), "\"herald\".\"a\"\"b\"");
    }
}
