//! Entity access on PostgreSQL: the seam between the PostgreSQL store
//! ([`PgStore`](super::PgStore), which owns the connection, transactions and
//! Herald's own tables) and the entity tables (Herald's in the `herald`
//! schema, or authentik's own tables under `--mapping authentik`).
//!
//! The contract of this file:
//! - One free function per entity operation of [`Backend`](crate::store::Backend);
//!   `PgStore` calls them with its connection ([`Conn`]: the client and its
//!   prepared-statement cache, keyed by SQL text) and the [`Mapping`].
//! - They run inside whatever transaction and savepoint `PgStore` has open
//!   (the engine's batch and the rule's savepoint); they never begin, commit
//!   or roll back themselves, except [`load_fixtures`], which runs alone.
//! - Failures are [`RuntimeError`]s (`StoreFailure` for the database,
//!   R-codes as on SQLite for bad values), never a panic. A failed statement
//!   aborts the PostgreSQL transaction until the caller rolls back to the
//!   rule's savepoint, which the engine does for a rule error.
//! - SQL identifiers come from the [`Mapping`] (built from the schema and
//!   validated), values are always bound parameters.
//!
//! Until entity access on PostgreSQL lands, every operation is a clear
//! error ("… is not supported on PostgreSQL yet"), [`create_tables`] creates
//! nothing and [`dump_entities`] writes one line per entity saying so, so
//! Herald's own tables (replay records, checkpoints, dead letters, the
//! outbox, state) work on PostgreSQL already.

use super::Conn;
use crate::diag::{Code, RuntimeError};
use crate::ir::{self, Expr, QueryKind};
use crate::schema::Schema;
use crate::store::{LoadError, LoadMode, LoadStats, StoreError};
use crate::types::EntityId;
use crate::value::{Row, Value};
use std::sync::Arc;

/// Where the schema's entities live on the server: the tables, columns and
/// join tables, resolved (and validated) once when the store is opened.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) schema: Arc<Schema>,
    /// The PostgreSQL schema holding Herald's entity tables (`herald`).
    #[allow(dead_code)] // for the entity operations
    pub(crate) namespace: String,
}

impl Mapping {
    /// Herald's own entity tables, in the `herald` schema (no `--mapping`).
    pub(crate) fn herald(schema: Arc<Schema>) -> Result<Mapping, StoreError> {
        Ok(Mapping { schema, namespace: super::NAMESPACE.to_string() })
    }

    /// Text that changes when the entity tables' layout changes (kept in
    /// `herald_meta` as the schema fingerprint).
    pub(crate) fn fingerprint_text(&self) -> String {
        let mut s = String::new();
        for id in self.schema.entity_ids() {
            s.push_str(&format!("{:?}\n", self.schema.entity(id)));
        }
        s
    }
}

fn not_yet(what: &str) -> RuntimeError {
    RuntimeError::new(Code::StoreFailure, format!("{what} is not supported on PostgreSQL yet"))
}

/// Create the entity tables that are missing (inside the opening
/// transaction). Creates nothing yet.
pub(crate) fn create_tables(_c: &mut Conn, _m: &Mapping) -> Result<(), StoreError> {
    Ok(())
}

/// Indexes for the fields `program`'s query filters test with `==`/`in`.
pub(crate) fn ensure_indexes(_c: &mut Conn, _m: &Mapping, _program: &ir::Program) -> Result<(), StoreError> {
    Ok(())
}

pub(crate) fn lookup(
    _c: &mut Conn,
    _m: &Mapping,
    _entity: EntityId,
    _key: &Value,
) -> Result<Option<Arc<Row>>, RuntimeError> {
    Err(not_yet("reading an entity row"))
}

pub(crate) fn lookup_many(
    _c: &mut Conn,
    _m: &Mapping,
    _entity: EntityId,
    _keys: &[Value],
) -> Result<Vec<Arc<Row>>, RuntimeError> {
    Err(not_yet("reading entity rows"))
}

pub(crate) fn related(
    _c: &mut Conn,
    _m: &Mapping,
    _entity: EntityId,
    _key: &Value,
    _field: usize,
) -> Result<Vec<Arc<Row>>, RuntimeError> {
    Err(not_yet("reading a many-to-many field"))
}

pub(crate) fn query(
    _c: &mut Conn,
    _m: &Mapping,
    _kind: QueryKind,
    _entity: EntityId,
    _filter: Option<&Expr>,
    _eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
) -> Result<Value, RuntimeError> {
    Err(not_yet("a query over an entity"))
}

pub(crate) fn set_field(
    _c: &mut Conn,
    _m: &Mapping,
    _entity: EntityId,
    _key: &Value,
    _field: usize,
    _path: &[String],
    _value: &Value,
) -> Result<Value, RuntimeError> {
    Err(not_yet("`set`"))
}

pub(crate) fn append(
    _c: &mut Conn,
    _m: &Mapping,
    _entity: EntityId,
    _key: &Value,
    _field: usize,
    _path: &[String],
    _value: &Value,
) -> Result<Value, RuntimeError> {
    Err(not_yet("`append`"))
}

pub(crate) fn remove(
    _c: &mut Conn,
    _m: &Mapping,
    _entity: EntityId,
    _key: &Value,
    _field: usize,
    _path: &[String],
) -> Result<Value, RuntimeError> {
    Err(not_yet("`remove`"))
}

pub(crate) fn upsert(
    _c: &mut Conn,
    _m: &Mapping,
    _entity: EntityId,
    _key: &Value,
    _fields: &[(usize, Value)],
) -> Result<Arc<Row>, RuntimeError> {
    Err(not_yet("`upsert`"))
}

pub(crate) fn delete(_c: &mut Conn, _m: &Mapping, _entity: EntityId, _key: &Value) -> Result<bool, RuntimeError> {
    Err(not_yet("`delete`"))
}

pub(crate) fn link(
    _c: &mut Conn,
    _m: &Mapping,
    _entity: EntityId,
    _key: &Value,
    _field: usize,
    _target: &Value,
    _add: bool,
) -> Result<(), RuntimeError> {
    Err(not_yet("`add`/`remove … from`"))
}

/// A `notify` delivery: a row in `herald.herald_notification` (or
/// authentik's notification table under the mapping) when the recipient
/// row exists, checked in the same statement; `Ok(None)` when it does not.
pub(crate) fn insert_notification(
    _c: &mut Conn,
    _m: &Mapping,
    _rule: &str,
    _event_key: &str,
    _user_pk: &Value,
    _severity: &str,
    _body: &str,
) -> Result<Option<i64>, RuntimeError> {
    Err(not_yet("`notify`"))
}

/// The entity part of the dump, in the same form as SQLite's
/// (`== Entity (n rows)` then one JSON object per row, by key).
pub(crate) fn dump_entities(_c: &mut Conn, m: &Mapping) -> Result<String, RuntimeError> {
    let mut out = String::new();
    for id in m.schema.entity_ids() {
        out.push_str(&format!("== {} (not supported on PostgreSQL yet)\n", m.schema.entity(id).name));
    }
    Ok(out)
}

/// `db load`: one transaction of its own.
pub(crate) fn load_fixtures(
    _c: &mut Conn,
    _m: &Mapping,
    _json: &str,
    _mode: LoadMode,
) -> Result<LoadStats, Vec<LoadError>> {
    Err(vec![LoadError::message("loading fixtures is not supported on PostgreSQL yet")])
}
