//! Entity access on PostgreSQL: the reads, query filters, writes, fixture
//! loading and dumps of `store` (SQLite) over a [`Mapping`], with the same
//! meaning and the same errors.
//!
//! Every operation takes the connection (`&mut postgres::Client`) from its
//! caller, which owns the transaction: the engine runs them inside its
//! batch transaction and rule savepoints. An operation made of several
//! statements (replacing a many-to-many field, a write that reads first)
//! puts them in a savepoint of its own, so a failure leaves the caller's
//! transaction usable. A read-modify-write of a JSON column reads the row
//! `FOR UPDATE`, so a concurrent writer (authentik itself, on a mapping)
//! waits for our commit instead of losing our change or theirs.
//!
//! Values travel as text: every parameter is bound as `text` and cast in
//! SQL, and every column is read in a canonical form (`map::read_expr`),
//! then converted by the SQLite store's own conversions, so a value reads
//! back the same on both backends. Two differences remain, both in
//! PostgreSQL's types: `jsonb` keeps an object's keys in its own order
//! (shorter keys first), not the order written; and text cannot hold the
//! NUL character, so writing one is R0005 (a key or filter value with one
//! finds nothing, as no stored text has one).

pub mod authentik;
pub mod filter;
pub mod load;
pub mod map;

use crate::diag::{Code, RuntimeError};
use crate::ir::{self, ExprKind, FieldRef, QueryKind};
use crate::schema::Schema;
use crate::store::convert::{
    coerce_param, describe, json_to_value, scalar_to_json, scalar_to_sql, sql_to_scalar, sql_to_value,
};
use crate::store::filter::{ColKind, ColRef, Columns, Scalar};
use crate::store::write::{json_kind, walk_create};
use crate::store::{NotificationRow, Stamp};
use crate::types::{EntityId, Ty};
use crate::value::{format_timestamp, format_uuid, Row, Value};
use filter::PgBind;
pub use map::{Mapping, PgEntity, PgField, PgJoin, HERALD_SCHEMA};
use postgres::types::ToSql;
use postgres::{Client, Statement};
use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::Value as J;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// A PostgreSQL failure as a rule's store error (R0005), with the
/// server's own message when it gave one.
pub(crate) fn pg_err(e: postgres::Error) -> RuntimeError {
    let msg = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    RuntimeError::new(Code::StoreFailure, format!("the store failed: {msg}"))
}

fn dyn_err(msg: String) -> RuntimeError {
    RuntimeError::new(Code::DynamicType, msg)
}

fn no_recipient() -> RuntimeError {
    RuntimeError::new(Code::StoreFailure, "the schema has no recipient entity for `notify`")
}

fn no_recipient_key() -> RuntimeError {
    RuntimeError::new(Code::RequiredAbsent, "`notify` was given no recipient key")
}

fn nul_err(at: &str) -> RuntimeError {
    RuntimeError::new(
        Code::StoreFailure,
        format!("`{at}`: PostgreSQL cannot store text with the NUL character (\\u0000)"),
    )
}

/// A float as text PostgreSQL parses back to the same value.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{f:?}")
    }
}

/// An SQLite-form value as the text of a PostgreSQL parameter of kind `s`.
fn sql_text(v: &Sql, s: Scalar) -> Option<String> {
    match v {
        Sql::Null | Sql::Blob(_) => None,
        Sql::Integer(i) if s == Scalar::Bool => Some(if *i != 0 { "true" } else { "false" }.into()),
        Sql::Integer(i) => Some(i.to_string()),
        Sql::Real(f) => Some(float_text(*f)),
        Sql::Text(t) => Some(t.clone()),
    }
}

/// JSON text PostgreSQL's `jsonb` accepts (no `\u0000`).
fn jsonb_ok(t: &str) -> bool {
    !t.contains("\\u0000")
}

/// The text of a JSON value for a `jsonb` parameter, `None` for JSON null
/// (stored as SQL NULL, as on SQLite).
fn json_param(j: &J, at: &str) -> Result<Option<String>, RuntimeError> {
    if j.is_null() {
        return Ok(None);
    }
    let t = j.to_string();
    if !jsonb_ok(&t) {
        return Err(nul_err(at));
    }
    Ok(Some(t))
}

/// The place a write names in messages: `User.attributes.a.b`.
fn place(e: &PgEntity, f: &PgField, path: &[String]) -> String {
    let mut s = format!("{}.{}", e.name, f.name);
    for p in path {
        s.push('.');
        s.push_str(p);
    }
    s
}

/// "an int", "a uuid".
fn a_kind(s: Scalar) -> &'static str {
    match s {
        Scalar::Int => "an int",
        Scalar::Float => "a float",
        Scalar::Bool => "a bool",
        Scalar::Str => "a string",
        Scalar::Uuid => "a uuid",
        Scalar::Timestamp => "a timestamp",
    }
}

/// `ORDER BY` text for a key column: text keys in byte order, as SQLite.
pub(crate) fn order_key(col: &str, k: Scalar) -> String {
    match k {
        Scalar::Str => format!("{col} COLLATE \"C\""),
        _ => col.to_string(),
    }
}

/// Column reads: one canonical Rust type per kind.
fn get_ref_owned(r: &postgres::Row, i: usize, kind: ColKind) -> Result<Sql, RuntimeError> {
    let bad = |e: postgres::Error| {
        RuntimeError::new(Code::StoreFailure, format!("the store returned a value Herald cannot read: {e}"))
    };
    Ok(match kind {
        ColKind::Scalar(Scalar::Int) => r.try_get::<_, Option<i64>>(i).map_err(bad)?.map_or(Sql::Null, Sql::Integer),
        ColKind::Scalar(Scalar::Float) => r.try_get::<_, Option<f64>>(i).map_err(bad)?.map_or(Sql::Null, Sql::Real),
        ColKind::Scalar(Scalar::Bool) => {
            r.try_get::<_, Option<bool>>(i).map_err(bad)?.map_or(Sql::Null, |b| Sql::Integer(i64::from(b)))
        }
        _ => r.try_get::<_, Option<String>>(i).map_err(bad)?.map_or(Sql::Null, Sql::Text),
    })
}

/// Rows of the filtered entity as PostgreSQL columns.
struct PgColumns<'a> {
    e: &'a PgEntity,
}

impl Columns for PgColumns<'_> {
    fn column(&self, entity: EntityId, field: FieldRef, _ty: &Ty) -> Result<ColRef, &'static str> {
        if entity != self.e.id {
            return Err("a field of another entity in a query filter");
        }
        match field {
            FieldRef::Key => {
                Ok(ColRef::Col { sql: format!("t.{}", self.e.key_col), kind: ColKind::Scalar(self.e.key) })
            }
            FieldRef::Field(i) => {
                let f = self.e.fields.get(i).ok_or("no such field")?;
                match &f.join {
                    // The link table and its two columns travel in `join`
                    // (`pgent::filter` splits them): identifiers from the mapping.
                    Some(j) => Ok(ColRef::Join {
                        join: format!("{}|{}|{}", j.table, j.source, j.target_col),
                        key: format!("t.{}", self.e.key_col),
                        target: j.target_key,
                    }),
                    None => Ok(ColRef::Col { sql: format!("t.{}", f.col), kind: f.kind }),
                }
            }
        }
    }
}

/// Entity access over one mapping, on one connection (prepared statements
/// are cached per SQL text, and a statement belongs to its connection).
pub struct PgEntities {
    schema: Arc<Schema>,
    map: Mapping,
    stmts: RefCell<HashMap<String, Statement>>,
}

impl std::fmt::Debug for PgEntities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEntities").field("entities", &self.map.ents.len()).finish_non_exhaustive()
    }
}

type Params = [Option<String>];

impl PgEntities {
    pub fn new(schema: Arc<Schema>, map: Mapping) -> PgEntities {
        PgEntities { schema, map, stmts: RefCell::new(HashMap::new()) }
    }

    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Forget the prepared statements (after reconnecting).
    pub fn forget_statements(&self) {
        self.stmts.borrow_mut().clear();
    }

    fn ent(&self, id: EntityId) -> Result<&PgEntity, RuntimeError> {
        self.map.ent(id).ok_or_else(|| RuntimeError::new(Code::StoreFailure, format!("no entity number {}", id.0)))
    }

    fn field(e: &PgEntity, i: usize) -> Result<&PgField, RuntimeError> {
        e.fields
            .get(i)
            .ok_or_else(|| RuntimeError::new(Code::StoreFailure, format!("`{}` has no field number {i}", e.name)))
    }

    fn prepare(&self, c: &mut Client, sql: &str) -> Result<Statement, RuntimeError> {
        if let Some(st) = self.stmts.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = c.prepare(sql).map_err(pg_err)?;
        let mut cache = self.stmts.borrow_mut();
        if cache.len() >= 512 {
            cache.clear();
        }
        cache.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    fn rows(&self, c: &mut Client, sql: &str, params: &Params) -> Result<Vec<postgres::Row>, RuntimeError> {
        let st = self.prepare(c, sql)?;
        let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        c.query(&st, &p).map_err(pg_err)
    }

    fn exec(&self, c: &mut Client, sql: &str, params: &Params) -> Result<u64, RuntimeError> {
        let st = self.prepare(c, sql)?;
        let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        c.execute(&st, &p).map_err(pg_err)
    }

    /// Run `f` in a savepoint of its own (the caller holds a transaction).
    fn atomically<T>(
        &self,
        c: &mut Client,
        f: impl FnOnce(&mut Client) -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        // A foreign mapping's foreign keys are DEFERRABLE INITIALLY DEFERRED
        // (Django's): checked at commit, a violation would fail the whole
        // batch. Checked at each statement, it is this write's error.
        let begin = if self.map.ddl.is_none() {
            "SAVEPOINT herald_write; SET CONSTRAINTS ALL IMMEDIATE"
        } else {
            "SAVEPOINT herald_write"
        };
        c.batch_execute(begin).map_err(pg_err)?;
        match f(c) {
            Ok(v) => {
                c.batch_execute("RELEASE herald_write").map_err(pg_err)?;
                Ok(v)
            }
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK TO herald_write; RELEASE herald_write");
                Err(e)
            }
        }
    }

    /// A row whose columns start at `at` in `e.select` order.
    pub(crate) fn read_row(&self, e: &PgEntity, r: &postgres::Row, at: usize) -> Result<Arc<Row>, RuntimeError> {
        let k = get_ref_owned(r, at, ColKind::Scalar(e.key))?;
        let key = sql_to_scalar(ValueRef::from(&k), e.key);
        let mut fields = vec![Value::Absent; e.fields.len()];
        for (n, &i) in e.columns.iter().enumerate() {
            let v = get_ref_owned(r, at + 1 + n, e.fields[i].kind)?;
            fields[i] = sql_to_value(ValueRef::from(&v), e.fields[i].kind);
        }
        Ok(Arc::new(Row { entity: e.id, key, fields }))
    }

    /// The parameter text of a key, `None` when absent or null or when it
    /// cannot be stored (text with NUL: no row has it). A key of the wrong
    /// kind is R0001.
    fn key_text(&self, e: &PgEntity, key: &Value) -> Result<Option<String>, RuntimeError> {
        if key.is_nullish() {
            return Ok(None);
        }
        if let Value::Entity(row) = key {
            if row.entity != e.id {
                let other = self.map.ent(row.entity).map(|o| o.name.as_str()).unwrap_or("?");
                return Err(dyn_err(format!("expected {} key for `{}`, found a `{other}` row", a_kind(e.key), e.name)));
            }
        }
        match scalar_to_sql(key, e.key) {
            Some(v) => Ok(sql_text(&v, e.key).filter(|t| !t.contains('\0'))),
            None => Err(dyn_err(format!("expected {} key for `{}`, found {}", a_kind(e.key), e.name, describe(key)))),
        }
    }

    // ---- reads -------------------------------------------------------

    pub fn lookup(&self, c: &mut Client, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        let e = self.ent(entity)?;
        let Some(k) = self.key_text(e, key)? else { return Ok(None) };
        let sql = format!("SELECT {} FROM {} AS t WHERE {}", e.select, e.table, e.key_eq(1));
        let rows = self.rows(c, &sql, &[Some(k)])?;
        match rows.first() {
            Some(r) => Ok(Some(self.read_row(e, r, 0)?)),
            None => Ok(None),
        }
    }

    pub fn lookup_many(&self, c: &mut Client, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        let e = self.ent(entity)?;
        let mut arr = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(t) = self.key_text(e, k)? {
                arr.push(J::String(t));
            }
        }
        if arr.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM jsonb_array_elements_text(($1::text)::jsonb) WITH ORDINALITY AS k(v, n) \
             JOIN {} AS t ON t.{} = (k.v)::{} ORDER BY k.n",
            e.select,
            e.table,
            e.key_col,
            map::scalar_type(e.key)
        );
        let rows = self.rows(c, &sql, &[Some(J::Array(arr).to_string())])?;
        rows.iter().map(|r| self.read_row(e, r, 0)).collect()
    }

    pub fn related(
        &self,
        c: &mut Client,
        entity: EntityId,
        key: &Value,
        field: usize,
    ) -> Result<Vec<Arc<Row>>, RuntimeError> {
        let e = self.ent(entity)?;
        let f = Self::field(e, field)?;
        let Some(j) = &f.join else {
            return Err(RuntimeError::new(
                Code::StoreFailure,
                format!("`{}.{}` is not a many-to-many field", e.name, f.name),
            ));
        };
        let Some(k) = self.key_text(e, key)? else { return Ok(Vec::new()) };
        let t = self.ent(j.target)?;
        let sql = format!(
            "SELECT {} FROM {} AS r JOIN {} AS t ON t.{} = r.{} WHERE r.{} = {} ORDER BY {}",
            t.select,
            j.table,
            t.table,
            t.key_col,
            j.target_col,
            j.source,
            map::param_cast(1, e.key),
            order_key(&format!("t.{}", t.key_col), t.key)
        );
        let rows = self.rows(c, &sql, &[Some(k)])?;
        rows.iter().map(|r| self.read_row(t, r, 0)).collect()
    }

    /// The SQL and parameters of a query (see `Store::query`).
    pub fn query_sql(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&ir::Expr>,
        eval: &mut dyn FnMut(&ir::Expr) -> Result<Value, RuntimeError>,
    ) -> Result<(String, Vec<Option<String>>), RuntimeError> {
        let e = self.ent(entity)?;
        let (cond, params) = match filter {
            None => (None, Vec::new()),
            Some(fx) => {
                let cols = PgColumns { e };
                let cf = filter::compile_filter(fx, &cols).map_err(|(span, msg)| {
                    RuntimeError::new(
                        Code::StoreFailure,
                        format!("internal error: a checked query filter has no SQL form: {msg}"),
                    )
                    .at(span)
                })?;
                let mut outer = Vec::with_capacity(cf.outer.len());
                for x in &cf.outer {
                    outer.push(match &x.kind {
                        ExprKind::Lit(v) => v.clone(),
                        _ => eval(x)?,
                    });
                }
                let params = cf.binds.iter().map(|b| bind_text(*b, &outer, &self.schema)).collect();
                (Some(cf.sql), params)
            }
        };
        let w = match &cond {
            Some(c) => format!(" WHERE {c}"),
            None => String::new(),
        };
        let table = &e.table;
        let order = order_key(&format!("t.{}", e.key_col), e.key);
        let sql = match kind {
            QueryKind::Exists => format!("SELECT EXISTS (SELECT 1 FROM {table} AS t{w})"),
            QueryKind::Count => format!("SELECT count(*) FROM {table} AS t{w}"),
            QueryKind::First => format!("SELECT {} FROM {table} AS t{w} ORDER BY {order} LIMIT 1", e.select),
            QueryKind::All => format!("SELECT {} FROM {table} AS t{w} ORDER BY {order}", e.select),
        };
        Ok((sql, params))
    }

    /// `exists/count/first/all E(filter)`: [`PgEntities::query_sql`], then
    /// [`PgEntities::run_query`]. The filter's outer values are computed
    /// before the connection is used, so `eval` may read the store itself
    /// (a nested query) when the caller holds the connection apart.
    pub fn query(
        &self,
        c: &mut Client,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&ir::Expr>,
        eval: &mut dyn FnMut(&ir::Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        let (sql, params) = self.query_sql(kind, entity, filter, eval)?;
        self.run_query(c, kind, entity, &sql, &params)
    }

    /// Run the SQL of [`PgEntities::query_sql`].
    pub fn run_query(
        &self,
        c: &mut Client,
        kind: QueryKind,
        entity: EntityId,
        sql: &str,
        params: &[Option<String>],
    ) -> Result<Value, RuntimeError> {
        let e = self.ent(entity)?;
        let rows = self.rows(c, sql, params)?;
        match kind {
            QueryKind::Exists => {
                let b: bool = rows.first().and_then(|r| r.try_get(0).ok()).unwrap_or(false);
                Ok(Value::Bool(b))
            }
            QueryKind::Count => {
                let n: i64 = rows.first().and_then(|r| r.try_get(0).ok()).unwrap_or(0);
                Ok(Value::Int(n))
            }
            QueryKind::First => match rows.first() {
                Some(r) => Ok(Value::Entity(self.read_row(e, r, 0)?)),
                None => Ok(Value::Absent),
            },
            QueryKind::All => {
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(Value::Entity(self.read_row(e, r, 0)?));
                }
                Ok(Value::list(out))
            }
        }
    }

    // ---- writes ------------------------------------------------------

    fn write_key(&self, e: &PgEntity, key: &Value) -> Result<String, RuntimeError> {
        if key.is_nullish() {
            return Err(RuntimeError::new(Code::RequiredAbsent, format!("no key to write a `{}` row", e.name)));
        }
        match self.key_text(e, key)? {
            Some(k) => Ok(k),
            None => Err(nul_err(&format!("{}.{}", e.name, e.key_name))),
        }
    }

    fn no_row(e: &PgEntity, key: &Value) -> RuntimeError {
        RuntimeError::new(Code::StoreFailure, format!("no `{}` row with {} {}", e.name, e.key_name, key.to_text(None)))
    }

    fn touch(e: &PgEntity) -> String {
        e.touch.iter().map(|(c, v)| format!(", {c} = {v}")).collect()
    }

    /// The JSON of an `any`/list column, the row locked for our update.
    fn read_json(&self, c: &mut Client, e: &PgEntity, f: &PgField, k: &str, key: &Value) -> Result<J, RuntimeError> {
        let sql = format!("SELECT (t.{})::text FROM {} AS t WHERE {} FOR UPDATE", f.col, e.table, e.key_eq(1));
        let rows = self.rows(c, &sql, &[Some(k.to_string())])?;
        let Some(r) = rows.first() else { return Err(Self::no_row(e, key)) };
        let t: Option<String> = r.try_get(0).map_err(pg_err)?;
        Ok(t.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(J::Null))
    }

    /// Write one column; returns its value as a read now gives it.
    fn write_col(
        &self,
        c: &mut Client,
        e: &PgEntity,
        f: &PgField,
        k: &str,
        key: &Value,
        v: Option<String>,
    ) -> Result<Value, RuntimeError> {
        let sql = format!(
            "UPDATE {} AS t SET {} = ($1::text)::{}{} WHERE {} RETURNING {}",
            e.table,
            f.col,
            map::pg_type(f.kind),
            Self::touch(e),
            e.key_eq(2),
            map::read_expr(&format!("t.{}", f.col), f.kind)
        );
        let rows = self.rows(c, &sql, &[v, Some(k.to_string())])?;
        let Some(r) = rows.first() else { return Err(Self::no_row(e, key)) };
        let got = get_ref_owned(r, 0, f.kind)?;
        Ok(sql_to_value(ValueRef::from(&got), f.kind))
    }

    fn target_key(&self, j: &PgJoin, v: &Value, what: &str) -> Result<String, RuntimeError> {
        let t = self.ent(j.target)?;
        if v.is_nullish() {
            return Err(RuntimeError::new(Code::RequiredAbsent, format!("{what}: no `{}` key", t.name)));
        }
        match self.key_text(t, v)? {
            Some(k) => Ok(k),
            None => Err(nul_err(what)),
        }
    }

    fn source_key_type(&self, j: &PgJoin, e: &PgEntity) -> (Scalar, Scalar) {
        (e.key, j.target_key)
    }

    /// Add one link of field `fi` (fixtures); returns how many rows it added.
    pub(crate) fn link_raw(
        &self,
        c: &mut Client,
        e: &PgEntity,
        fi: usize,
        src: &str,
        target: &str,
    ) -> Result<u64, RuntimeError> {
        let f = Self::field(e, fi)?;
        let Some(j) = &f.join else { return Ok(0) };
        self.insert_join(c, e, j, src, target)
    }

    fn insert_join(
        &self,
        c: &mut Client,
        e: &PgEntity,
        j: &PgJoin,
        src: &str,
        target: &str,
    ) -> Result<u64, RuntimeError> {
        let (sk, tk) = self.source_key_type(j, e);
        let mut cols = vec![j.source.clone(), j.target_col.clone()];
        let mut vals = vec![map::param_cast(1, sk), map::param_cast(2, tk)];
        for (col, v) in &j.insert_extra {
            cols.push(col.clone());
            vals.push(v.clone());
        }
        // `WHERE NOT EXISTS` rather than `ON CONFLICT`: a foreign link
        // table may have its uniqueness on other columns (or none).
        let sql = format!(
            "INSERT INTO {} ({}) SELECT {} WHERE NOT EXISTS (SELECT 1 FROM {} AS l WHERE l.{} = {} AND l.{} = {})",
            j.table,
            cols.join(", "),
            vals.join(", "),
            j.table,
            j.source,
            map::param_cast(1, sk),
            j.target_col,
            map::param_cast(2, tk)
        );
        self.exec(c, &sql, &[Some(src.to_string()), Some(target.to_string())])
    }

    fn clear_join(&self, c: &mut Client, e: &PgEntity, j: &PgJoin, src: &str) -> Result<(), RuntimeError> {
        let sql = format!("DELETE FROM {} WHERE {} = {}", j.table, j.source, map::param_cast(1, e.key));
        self.exec(c, &sql, &[Some(src.to_string())])?;
        Ok(())
    }

    fn check_exists(&self, c: &mut Client, e: &PgEntity, k: &str, key: &Value) -> Result<(), RuntimeError> {
        let sql = format!("SELECT 1 FROM {} AS t WHERE {}", e.table, e.key_eq(1));
        if self.rows(c, &sql, &[Some(k.to_string())])?.is_empty() {
            Err(Self::no_row(e, key))
        } else {
            Ok(())
        }
    }

    /// A whole-column value as parameter text (see `Store::column_value`).
    fn column_value(&self, f: &PgField, value: &Value, at: &str) -> Result<Option<String>, RuntimeError> {
        if value.is_nullish() {
            if f.required {
                return Err(RuntimeError::new(
                    Code::RequiredAbsent,
                    format!("`{at}` is required; it cannot be set to {}", describe(value)),
                ));
            }
            return Ok(None);
        }
        match f.kind {
            ColKind::Scalar(s) => match scalar_to_sql(value, s) {
                Some(sql) => {
                    let t = sql_text(&sql, s);
                    if t.as_deref().is_some_and(|t| t.contains('\0')) {
                        return Err(nul_err(at));
                    }
                    Ok(t)
                }
                None => Err(dyn_err(format!("`{at}` is {}; cannot set it to {}", s.name(), describe(value)))),
            },
            ColKind::Any => json_param(&value.to_json(Some(&self.schema)), at),
            ColKind::List(el) => {
                let Value::List(items) = value else {
                    return Err(dyn_err(format!("`{at}` is a list; cannot set it to {}", describe(value))));
                };
                let mut arr = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    arr.push(self.list_elem(el, v, || format!("{at}[{i}]"))?);
                }
                json_param(&J::Array(arr), at)
            }
            ColKind::ManyToMany(_) => Err(dyn_err(format!("`{at}` is a many-to-many field"))),
        }
    }

    fn list_elem(&self, el: Option<Scalar>, v: &Value, at: impl FnOnce() -> String) -> Result<J, RuntimeError> {
        match el {
            Some(s) => scalar_to_json(v, s)
                .ok_or_else(|| dyn_err(format!("`{}`: expected {}, found {}", at(), s.name(), describe(v)))),
            None => Ok(v.to_json(Some(&self.schema))),
        }
    }

    /// `set row.field[.path] = value` (see `Store::set_field`).
    pub fn set_field(
        &self,
        c: &mut Client,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        let e = self.ent(entity)?;
        let f = Self::field(e, field)?;
        let k = self.write_key(e, key)?;
        let at = place(e, f, path);
        if let Some(j) = &f.join {
            if !path.is_empty() {
                return Err(dyn_err(format!("`{at}`: a many-to-many field has no fields inside")));
            }
            let targets = match value {
                Value::Absent | Value::Null => Vec::new(),
                Value::List(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.target_key(j, v, &format!("`{at}[{i}]`")))
                    .collect::<Result<Vec<_>, _>>()?,
                v => return Err(dyn_err(format!("`{at}` takes a list of keys, not {}", describe(v)))),
            };
            return self.atomically(c, |c| {
                self.check_exists(c, e, &k, key)?;
                self.clear_join(c, e, j, &k)?;
                for t in &targets {
                    self.insert_join(c, e, j, &k, t)?;
                }
                Ok(Value::Absent)
            });
        }
        if !path.is_empty() {
            if f.kind != ColKind::Any {
                return Err(dyn_err(format!("`{}.{}` is not an `any` field; it has no fields inside", e.name, f.name)));
            }
            let new = match value {
                Value::Absent => None,
                v => Some(v.to_json(Some(&self.schema))),
            };
            return self.atomically(c, |c| {
                let mut root = self.read_json(c, e, f, &k, key)?;
                if new.is_none() && root.is_null() {
                    return Ok(Value::Null);
                }
                match walk_create(&mut root, path) {
                    Ok(m) => {
                        let last = &path[path.len() - 1];
                        match new {
                            Some(v) => {
                                m.insert(last.clone(), v);
                            }
                            None => {
                                m.shift_remove(last);
                            }
                        }
                    }
                    Err((i, kind)) => {
                        return Err(dyn_err(format!(
                            "`{}` is {kind}, not an object; cannot set `{}` inside it",
                            place(e, f, &path[..i]),
                            path[i]
                        )))
                    }
                }
                let v = json_param(&root, &at)?;
                self.write_col(c, e, f, &k, key, v)
            });
        }
        let v = self.column_value(f, value, &at)?;
        self.write_col_alone(c, e, f, &k, key, v)
    }

    /// [`PgEntities::write_col`] as a write of its own (in a savepoint on
    /// a foreign mapping, whose constraints are then checked at once).
    fn write_col_alone(
        &self,
        c: &mut Client,
        e: &PgEntity,
        f: &PgField,
        k: &str,
        key: &Value,
        v: Option<String>,
    ) -> Result<Value, RuntimeError> {
        if self.map.ddl.is_none() {
            self.atomically(c, |c| self.write_col(c, e, f, k, key, v))
        } else {
            self.write_col(c, e, f, k, key, v)
        }
    }

    /// `append value to row.field[.path]` (see `Store::append`).
    pub fn append(
        &self,
        c: &mut Client,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        let e = self.ent(entity)?;
        let f = Self::field(e, field)?;
        let k = self.write_key(e, key)?;
        let at = place(e, f, path);
        if let Some(j) = &f.join {
            if !path.is_empty() {
                return Err(dyn_err(format!("`{at}`: a many-to-many field has no fields inside")));
            }
            if value.is_nullish() {
                return Ok(Value::Absent);
            }
            let t = self.target_key(j, value, &format!("`{at}`"))?;
            return self.atomically(c, |c| {
                self.check_exists(c, e, &k, key)?;
                self.insert_join(c, e, j, &k, &t)?;
                Ok(Value::Absent)
            });
        }
        let el = match f.kind {
            ColKind::List(el) if path.is_empty() => el,
            ColKind::Any => None,
            ColKind::List(_) => {
                return Err(dyn_err(format!("`{}.{}` is not an `any` field; it has no fields inside", e.name, f.name)))
            }
            _ => return Err(dyn_err(format!("`{at}` is not a list; cannot append to it"))),
        };
        self.atomically(c, |c| {
            let mut root = self.read_json(c, e, f, &k, key)?;
            if matches!(value, Value::Absent) {
                return Ok(json_to_value(&root, f.kind));
            }
            let elem = self.list_elem(el, value, || format!("{at}[]"))?;
            let slot: &mut J = if path.is_empty() {
                &mut root
            } else {
                match walk_create(&mut root, path) {
                    Ok(m) => m.entry(path[path.len() - 1].clone()).or_insert(J::Null),
                    Err((i, kind)) => {
                        return Err(dyn_err(format!(
                            "`{}` is {kind}, not an object; cannot append inside it",
                            place(e, f, &path[..i])
                        )))
                    }
                }
            };
            match slot {
                J::Null => *slot = J::Array(vec![elem]),
                J::Array(items) => items.push(elem),
                other => {
                    return Err(dyn_err(format!("`{at}` is {}, not a list; cannot append to it", json_kind(other))))
                }
            }
            let v = json_param(&root, &at)?;
            self.write_col(c, e, f, &k, key, v)
        })
    }

    /// `remove row.field[.path]` (see `Store::remove`).
    pub fn remove(
        &self,
        c: &mut Client,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
    ) -> Result<Value, RuntimeError> {
        let e = self.ent(entity)?;
        let f = Self::field(e, field)?;
        let k = self.write_key(e, key)?;
        let at = place(e, f, path);
        if let Some(j) = &f.join {
            if !path.is_empty() {
                return Err(dyn_err(format!("`{at}`: a many-to-many field has no fields inside")));
            }
            return self.atomically(c, |c| {
                self.check_exists(c, e, &k, key)?;
                self.clear_join(c, e, j, &k)?;
                Ok(Value::Absent)
            });
        }
        if path.is_empty() {
            if f.required {
                return Err(RuntimeError::new(
                    Code::RequiredAbsent,
                    format!("`{at}` is required; it cannot be removed"),
                ));
            }
            return self.write_col_alone(c, e, f, &k, key, None);
        }
        if f.kind != ColKind::Any {
            return Err(dyn_err(format!("`{}.{}` is not an `any` field; it has no fields inside", e.name, f.name)));
        }
        self.atomically(c, |c| {
            let mut root = self.read_json(c, e, f, &k, key)?;
            let mut cur = &mut root;
            for seg in &path[..path.len() - 1] {
                match cur.get_mut(seg.as_str()) {
                    Some(next) if next.is_object() => cur = next,
                    _ => return Ok(json_to_value(&root, f.kind)),
                }
            }
            let removed = match cur {
                J::Object(m) => m.shift_remove(&path[path.len() - 1]).is_some(),
                _ => false,
            };
            if removed {
                let v = json_param(&root, &at)?;
                self.write_col(c, e, f, &k, key, v)
            } else {
                Ok(json_to_value(&root, f.kind))
            }
        })
    }

    /// `upsert E[key] { ... }` (see `Store::upsert`). On a foreign mapping
    /// an insert also gives the table's required columns Herald does not
    /// model (`PgEntity::insert_extra`).
    pub fn upsert(
        &self,
        c: &mut Client,
        entity: EntityId,
        key: &Value,
        fields: &[(usize, Value)],
    ) -> Result<Arc<Row>, RuntimeError> {
        let e = self.ent(entity)?;
        let k = self.write_key(e, key)?;
        let mut cols: Vec<&PgField> = Vec::with_capacity(fields.len());
        let mut vals: Vec<Option<String>> = Vec::with_capacity(fields.len() + 1);
        for (i, v) in fields {
            let f = Self::field(e, *i)?;
            if f.join.is_some() {
                return Err(dyn_err(format!("`upsert` cannot set the many-to-many field `{}.{}`", e.name, f.name)));
            }
            vals.push(self.column_value(f, v, &format!("{}.{}", e.name, f.name))?);
            cols.push(f);
        }
        self.atomically(c, |c| {
            let exists_sql = format!("SELECT 1 FROM {} AS t WHERE {} FOR UPDATE", e.table, e.key_eq(1));
            let exists = !self.rows(c, &exists_sql, &[Some(k.clone())])?.is_empty();
            if exists {
                if !cols.is_empty() {
                    let set: Vec<String> = cols
                        .iter()
                        .enumerate()
                        .map(|(n, f)| format!("{} = (${}::text)::{}", f.col, n + 1, map::pg_type(f.kind)))
                        .collect();
                    let sql = format!(
                        "UPDATE {} AS t SET {}{} WHERE {}",
                        e.table,
                        set.join(", "),
                        Self::touch(e),
                        e.key_eq(cols.len() + 1)
                    );
                    let mut params = vals.clone();
                    params.push(Some(k.clone()));
                    self.exec(c, &sql, &params)?;
                }
            } else {
                let given: Vec<usize> = fields.iter().map(|(i, _)| *i).collect();
                let missing: Vec<&str> = e
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| f.required && !given.contains(i))
                    .map(|(_, f)| f.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    let list = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
                    return Err(RuntimeError::new(
                        Code::RequiredAbsent,
                        format!(
                            "`upsert` cannot create the `{}` row with {} {}: required field{} {list} not given",
                            e.name,
                            e.key_name,
                            key.to_text(None),
                            if missing.len() == 1 { "" } else { "s" }
                        ),
                    ));
                }
                let mut names = vec![e.key_col.clone()];
                let mut marks = vec![map::param_cast(1, e.key)];
                for (n, f) in cols.iter().enumerate() {
                    names.push(f.col.clone());
                    marks.push(format!("(${}::text)::{}", n + 2, map::pg_type(f.kind)));
                }
                for (col, v) in &e.insert_extra {
                    if !names.contains(col) {
                        names.push(col.clone());
                        marks.push(v.clone());
                    }
                }
                for (pe, parent) in &self.map.parents {
                    if *pe == entity {
                        self.exec(c, parent, &[Some(k.clone())])?;
                    }
                }
                let sql = format!("INSERT INTO {} ({}) VALUES ({})", e.table, names.join(", "), marks.join(", "));
                let mut params = vec![Some(k.clone())];
                params.extend(vals.iter().cloned());
                self.exec(c, &sql, &params)?;
            }
            self.lookup(c, entity, key)?.ok_or_else(|| Self::no_row(e, key))
        })
    }

    /// `delete E[key]` (see `Store::delete`): the row and every link from
    /// and to it.
    pub fn delete(&self, c: &mut Client, entity: EntityId, key: &Value) -> Result<bool, RuntimeError> {
        let e = self.ent(entity)?;
        let Some(k) = self.key_text(e, key)? else { return Ok(false) };
        self.atomically(c, |c| {
            for other in &self.map.ents {
                for f in &other.fields {
                    let Some(j) = &f.join else { continue };
                    if other.id == entity {
                        self.clear_join(c, e, j, &k)?;
                    }
                    if j.target == entity {
                        let sql =
                            format!("DELETE FROM {} WHERE {} = {}", j.table, j.target_col, map::param_cast(1, e.key));
                        self.exec(c, &sql, &[Some(k.clone())])?;
                    }
                }
            }
            let sql = format!("DELETE FROM {} AS t WHERE {}", e.table, e.key_eq(1));
            Ok(self.exec(c, &sql, &[Some(k.clone())])? > 0)
        })
    }

    /// `add`/`remove … from` one link (see `Store::link`).
    pub fn link(
        &self,
        c: &mut Client,
        entity: EntityId,
        key: &Value,
        field: usize,
        target: &Value,
        add: bool,
    ) -> Result<(), RuntimeError> {
        let e = self.ent(entity)?;
        let f = Self::field(e, field)?;
        let Some(j) = &f.join else {
            return Err(dyn_err(format!("`{}.{}` is not a many-to-many field", e.name, f.name)));
        };
        let k = self.write_key(e, key)?;
        let t = self.target_key(j, target, &format!("`{}.{}`", e.name, f.name))?;
        self.atomically(c, |c| {
            self.check_exists(c, e, &k, key)?;
            if add {
                self.insert_join(c, e, j, &k, &t).map(|_| ())
            } else {
                let sql = format!(
                    "DELETE FROM {} WHERE {} = {} AND {} = {}",
                    j.table,
                    j.source,
                    map::param_cast(1, e.key),
                    j.target_col,
                    map::param_cast(2, j.target_key)
                );
                self.exec(c, &sql, &[Some(k.clone()), Some(t.clone())])?;
                Ok(())
            }
        })
    }

    /// `notify` into Herald's own `herald.herald_notification`, only when
    /// the recipient row exists (checked in the same statement, as on
    /// SQLite); the new row's id, or `None` when nobody has that key.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_herald_notification(
        &self,
        c: &mut Client,
        recipient: EntityId,
        rule: &str,
        event_key: &str,
        key: &Value,
        severity: &str,
        body: &str,
        created: &str,
    ) -> Result<Option<i64>, RuntimeError> {
        let e = self.ent(recipient)?;
        let Some(k) = self.key_text(e, key)? else {
            if key.is_nullish() {
                return Err(RuntimeError::new(Code::RequiredAbsent, "`notify` was given no recipient key"));
            }
            return Ok(None);
        };
        if body.contains('\0') {
            return Err(nul_err("notify"));
        }
        let pk = match e.key {
            Scalar::Int | Scalar::Float => k.clone(),
            _ => J::String(k.clone()).to_string(),
        };
        let sql = format!(
            "INSERT INTO herald.herald_notification (rule, event_uuid, user_pk, severity, body, created) \
             SELECT $1::text, $2::text, ($3::text)::jsonb, $4::text, $5::text, $6::text \
             WHERE EXISTS (SELECT 1 FROM {} AS t WHERE {}) RETURNING id",
            e.table,
            e.key_eq(7)
        );
        let params = [
            Some(rule.to_string()),
            Some(event_key.to_string()),
            Some(pk),
            Some(severity.to_string()),
            Some(body.to_string()),
            Some(created.to_string()),
            Some(k),
        ];
        let rows = self.rows(c, &sql, &params)?;
        Ok(rows.first().and_then(|r| r.try_get::<_, i64>(0).ok()))
    }

    /// `notify`'s recipient key, checked when the rule fires rather than
    /// when the batch's rows are inserted (as SQLite's
    /// `Store::notification_key`): no key is R0002 and a key of the wrong
    /// kind R0001, both the rule's errors. A key that cannot be stored
    /// (text with NUL) passes: no row has it, so the row is dropped.
    pub fn check_notification_key(&self, key: &Value) -> Result<(), RuntimeError> {
        let key = match key {
            Value::Entity(row) => &row.key,
            v => v,
        };
        let e = match &self.map.notification {
            Some(n) => self.authentik_user(n)?,
            None => self.ent(self.schema.recipient.ok_or_else(no_recipient)?)?,
        };
        match self.key_text(e, key)? {
            None if key.is_nullish() => Err(no_recipient_key()),
            // The authentik mapping's single-row path calls a key it cannot
            // store missing too.
            None if self.map.notification.is_some() => Err(no_recipient_key()),
            _ => Ok(()),
        }
    }

    /// A batch's `notify` rows in one statement, each only when its
    /// recipient row exists (tested by the statement, so against the rows
    /// as they are now), in order; returns how many were stored. The rows
    /// and errors are [`PgEntities::insert_herald_notification`]'s (or, on
    /// the authentik mapping, [`PgEntities::notify_authentik`]'s) one row
    /// at a time: every row is checked before anything is sent, and the
    /// first error is the batch's.
    pub fn insert_notifications(&self, c: &mut Client, rows: &[NotificationRow]) -> Result<u64, RuntimeError> {
        if rows.is_empty() {
            return Ok(0);
        }
        if let Some(n) = &self.map.notification {
            return self.notify_authentik_many(c, n, rows);
        }
        let e = self.ent(self.schema.recipient.ok_or_else(no_recipient)?)?;
        let mut stamp = Stamp::default();
        let mut cols: [Vec<String>; 7] = Default::default();
        for r in rows {
            let key = r.user_pk.value();
            let Some(k) = self.key_text(e, &key)? else {
                if key.is_nullish() {
                    return Err(no_recipient_key());
                }
                // Dropped: no stored key has a NUL.
                continue;
            };
            if r.body.contains('\0') {
                return Err(nul_err("notify"));
            }
            let pk = match e.key {
                Scalar::Int | Scalar::Float => k.clone(),
                _ => J::String(k.clone()).to_string(),
            };
            for (col, v) in cols.iter_mut().zip([
                r.rule.to_string(),
                r.event_key.to_string(),
                pk,
                r.severity.to_string(),
                r.body.clone(),
                stamp.at(r.created).to_string(),
                k,
            ]) {
                col.push(v);
            }
        }
        if cols[0].is_empty() {
            return Ok(0);
        }
        // One statement for the whole batch: the arrays are read in order
        // (`ORDER BY n`), so the identity ids follow the buffer's order, and
        // the existence test is per row, as in the single-row statement.
        let sql = format!(
            "INSERT INTO herald.herald_notification (rule, event_uuid, user_pk, severity, body, created) \
             SELECT r.rule, r.ev, (r.pk)::jsonb, r.sev, r.body, r.created \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
             WITH ORDINALITY AS r(rule, ev, pk, sev, body, created, k, n) \
             WHERE EXISTS (SELECT 1 FROM {} AS t WHERE t.{} = (r.k)::{}) ORDER BY r.n",
            e.table,
            e.key_col,
            map::scalar_type(e.key)
        );
        self.exec_arrays(c, &sql, &cols)
    }

    /// Execute `sql` with one `text[]` parameter per column.
    fn exec_arrays(&self, c: &mut Client, sql: &str, cols: &[Vec<String>]) -> Result<u64, RuntimeError> {
        let st = self.prepare(c, sql)?;
        let p: Vec<&(dyn ToSql + Sync)> = cols.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        c.execute(&st, &p).map_err(pg_err)
    }

    // ---- DDL and dumps -------------------------------------------------

    /// Create the mapping's tables (Herald's own mapping; a foreign one
    /// creates nothing) in the caller's transaction, adding optional
    /// columns the schema gained since; a required column the table lacks
    /// is an error.
    pub fn create_tables(&self, c: &mut Client) -> Result<(), crate::store::StoreError> {
        let se = |e: postgres::Error| crate::store::StoreError::Sql(pg_err(e).message);
        let Some(ddl) = &self.map.ddl else { return Ok(()) };
        c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", crate::store::quote(HERALD_SCHEMA))).map_err(se)?;
        for stmt in ddl {
            c.batch_execute(stmt).map_err(se)?;
        }
        for e in &self.map.ents {
            let (_, table) = e.table.split_once('.').unwrap_or(("", &e.table));
            let table = table.trim_matches('"').replace("\"\"", "\"");
            let have: Vec<(String, String, bool)> = c
                .query(
                    "SELECT column_name::text, data_type::text, is_nullable = 'NO' FROM information_schema.columns \
                     WHERE table_schema = $1 AND table_name = $2",
                    &[&HERALD_SCHEMA, &table],
                )
                .map_err(se)?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            for &i in &e.columns {
                let f = &e.fields[i];
                match have.iter().find(|h| h.0 == f.name) {
                    None if f.required => return Err(crate::store::StoreError::Incompatible {
                        table: table.clone(),
                        column: f.name.clone(),
                        reason:
                            "the schema declares a new required field; make it optional (`T?`) or start a new database"
                                .into(),
                    }),
                    None => {
                        c.batch_execute(&format!(
                            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
                            e.table,
                            f.col,
                            map::pg_type(f.kind)
                        ))
                        .map_err(se)?;
                    }
                    Some((_, ty, notnull)) => {
                        let want = map::pg_type(f.kind);
                        let same = match want {
                            "bigint" | "boolean" | "text" | "uuid" | "jsonb" | "double precision" => ty == want,
                            "timestamptz" => ty == "timestamp with time zone",
                            _ => true,
                        };
                        if !same {
                            return Err(crate::store::StoreError::Incompatible {
                                table: table.clone(),
                                column: f.name.clone(),
                                reason: format!("the database holds {ty} but the schema needs {want}"),
                            });
                        }
                        if f.required && !notnull {
                            return Err(crate::store::StoreError::Incompatible {
                                table: table.clone(),
                                column: f.name.clone(),
                                reason: "the field became required but the database allows it to be empty".into(),
                            });
                        }
                        if !f.required && *notnull {
                            c.batch_execute(&format!("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL", e.table, f.col))
                                .map_err(se)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The entity part of a dump, in the SQLite store's form (rows by key,
    /// one JSON object a line, many-to-many fields as sorted key lists,
    /// `any` and list columns as their JSON text, booleans as 0/1), so the
    /// two backends' dumps compare. Object keys inside JSON text are in
    /// `jsonb`'s order; compare through [`normalise_dump`].
    pub fn dump_entities(&self, c: &mut Client) -> Result<String, RuntimeError> {
        use std::fmt::Write;
        let mut out = String::new();
        for e in &self.map.ents {
            let sql = format!(
                "SELECT {} FROM {} AS t ORDER BY {}",
                e.select,
                e.table,
                order_key(&format!("t.{}", e.key_col), e.key)
            );
            let rows = c.query(sql.as_str(), &[]).map_err(pg_err)?;
            let mut lines = Vec::new();
            for r in &rows {
                let mut obj = serde_json::Map::new();
                let key = get_ref_owned(r, 0, ColKind::Scalar(e.key))?;
                obj.insert(e.key_name.clone(), dump_value(&key, ColKind::Scalar(e.key)));
                for (n, &i) in e.columns.iter().enumerate() {
                    let f = &e.fields[i];
                    obj.insert(f.name.clone(), dump_value(&get_ref_owned(r, n + 1, f.kind)?, f.kind));
                }
                let ktext = sql_text(&key, e.key);
                for f in &e.fields {
                    let Some(j) = &f.join else { continue };
                    let sql = format!(
                        "SELECT {} FROM {} AS l WHERE l.{} = {} ORDER BY 1",
                        match j.target_key {
                            Scalar::Str => format!("(l.{})::text COLLATE \"C\"", j.target_col),
                            k => map::read_expr(&format!("l.{}", j.target_col), ColKind::Scalar(k)),
                        },
                        j.table,
                        j.source,
                        map::param_cast(1, e.key)
                    );
                    let targets = self.rows(c, &sql, std::slice::from_ref(&ktext))?;
                    let mut arr = Vec::new();
                    for t in &targets {
                        arr.push(dump_value(
                            &get_ref_owned(t, 0, ColKind::Scalar(j.target_key))?,
                            ColKind::Scalar(j.target_key),
                        ));
                    }
                    obj.insert(f.name.clone(), J::Array(arr));
                }
                lines.push(J::Object(obj).to_string());
            }
            let _ = writeln!(out, "== {} ({} rows)", e.name, lines.len());
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// A dumped column as the SQLite dump has it: JSON columns as compact JSON
/// text, every other value as its SQL value.
fn dump_value(v: &Sql, kind: ColKind) -> J {
    match v {
        Sql::Null | Sql::Blob(_) => J::Null,
        Sql::Integer(i) => J::from(*i),
        Sql::Real(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or_default(),
        Sql::Text(t) => match kind {
            ColKind::Any | ColKind::List(_) => match serde_json::from_str::<J>(t) {
                Ok(j) => J::String(j.to_string()),
                Err(_) => J::String(t.clone()),
            },
            _ => J::String(t.clone()),
        },
    }
}

/// A dump with every JSON text value's objects re-serialised with sorted
/// keys, so a SQLite dump (insertion order) and a PostgreSQL dump (jsonb
/// order) of the same data are equal text.
pub fn normalise_dump(dump: &str) -> String {
    fn sort(j: &J) -> J {
        match j {
            J::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                J::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            J::Array(a) => J::Array(a.iter().map(sort).collect()),
            o => o.clone(),
        }
    }
    let mut out = String::new();
    for line in dump.lines() {
        match serde_json::from_str::<J>(line) {
            Ok(J::Object(m)) => {
                let obj: serde_json::Map<String, J> = m
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match &v {
                            J::String(s) if s.starts_with('{') || s.starts_with('[') => {
                                match serde_json::from_str::<J>(s) {
                                    Ok(j) => J::String(sort(&j).to_string()),
                                    Err(_) => v,
                                }
                            }
                            _ => v,
                        };
                        (k, v)
                    })
                    .collect();
                out.push_str(&J::Object(obj).to_string());
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The value as `numeric` text, `None` for a non-number (or NaN).
fn num_text(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) if !f.is_nan() => Some(float_text(*f)),
        _ => None,
    }
}

/// A text parameter PostgreSQL can carry (NUL: NULL, which equals nothing).
fn text_ok(s: String) -> Option<String> {
    if s.contains('\0') {
        None
    } else {
        Some(s)
    }
}

/// The text of one filter parameter.
pub(crate) fn bind_text(b: PgBind, outer: &[Value], schema: &Schema) -> Option<String> {
    let json_of = |v: &Value| -> Option<J> {
        match v {
            Value::Absent | Value::Null | Value::Duration(_) => None,
            Value::Float(f) if !f.is_finite() => None,
            Value::Uuid(u) => Some(J::String(format_uuid(*u))),
            Value::Timestamp(t) => Some(J::String(format_timestamp(*t))),
            v => Some(v.to_json(Some(schema))),
        }
    };
    let jtext = |j: J| -> Option<String> { Some(j.to_string()).filter(|t| jsonb_ok(t)) };
    match b {
        PgBind::Bool(i) => Some(if matches!(outer[i], Value::Bool(true)) { "true" } else { "false" }.into()),
        PgBind::Present(i) => Some(if outer[i].is_nullish() { "false" } else { "true" }.into()),
        PgBind::Coerce(i, s) => match s {
            Scalar::Int | Scalar::Float => match &outer[i] {
                Value::Entity(r) => num_text(&r.key),
                v => num_text(v),
            },
            _ => sql_text(&coerce_param(&outer[i], s), s).and_then(text_ok),
        },
        PgBind::DynVal(i) => json_of(&outer[i]).and_then(jtext),
        PgBind::DynClass(i) => Some(
            match &outer[i] {
                Value::Absent | Value::Null => return None,
                Value::Int(_) | Value::Float(_) => "n",
                Value::Bool(_) => "b",
                Value::Str(_) | Value::Uuid(_) | Value::Timestamp(_) => "s",
                Value::Duration(_) => "d",
                Value::List(_) | Value::Object(_) | Value::Entity(_) => "j",
            }
            .into(),
        ),
        PgBind::DynNum(i) => num_text(&outer[i]),
        PgBind::DynText(i) => match &outer[i] {
            Value::Str(s) => text_ok(s.to_string()),
            Value::Uuid(u) => Some(format_uuid(*u)),
            Value::Timestamp(t) => Some(format_timestamp(*t)),
            _ => None,
        },
        PgBind::Text(i) => match &outer[i] {
            Value::Str(s) => text_ok(s.to_string()),
            _ => None,
        },
        PgBind::List(i, kind) => match &outer[i] {
            Value::List(items) => {
                let arr: Vec<J> = match kind {
                    Some(s) => items.iter().filter_map(|v| coerced_json(v, s)).collect(),
                    None => items.iter().filter(|v| !matches!(v, Value::Absent)).filter_map(&json_of).collect(),
                };
                jtext(J::Array(arr))
            }
            _ => None,
        },
        PgBind::One(i, s) => coerced_json(&outer[i], s).and_then(|j| jtext(J::Array(vec![j]))),
    }
}

/// A value coerced to a column kind as the JSON scalar a typed list holds.
fn coerced_json(v: &Value, s: Scalar) -> Option<J> {
    match coerce_param(v, s) {
        Sql::Integer(n) if s == Scalar::Bool => Some(J::Bool(n != 0)),
        Sql::Integer(n) => Some(J::from(n)),
        Sql::Real(f) => serde_json::Number::from_f64(f).map(J::Number),
        Sql::Text(t) => Some(J::String(t)),
        _ => None,
    }
}
