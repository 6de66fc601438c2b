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
//! The operations themselves live in [`crate::store::pgent`] (the mapping,
//! the query-filter compiler, reads, writes, fixtures, dumps, the authentik
//! mapping); this file adapts them to `PgStore`'s connection.

use super::Conn;
use crate::diag::{Code, RuntimeError};
use crate::ir::{self, Expr, QueryKind};
use crate::schema::Schema;
use crate::store::pgent::{self, PgEntities};
use crate::store::{LoadError, LoadMode, LoadStats, NotificationRow, StoreError};
use crate::types::EntityId;
use crate::value::{Row, Value};
use std::sync::Arc;

/// Where the schema's entities live on the server: the tables, columns and
/// join tables, resolved (and validated) once when the store is opened.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) schema: Arc<Schema>,
    /// The PostgreSQL schema holding Herald's entity tables (`herald`), or
    /// authentik's tenant schema under `--mapping authentik`.
    pub(crate) namespace: String,
    pub(crate) ents: PgEntities,
}

impl Mapping {
    /// Herald's own entity tables, in the `herald` schema (no `--mapping`).
    pub(crate) fn herald(schema: Arc<Schema>) -> Result<Mapping, StoreError> {
        let map = pgent::Mapping::herald(&schema)?;
        Ok(Mapping { namespace: super::NAMESPACE.to_string(), ents: PgEntities::new(schema.clone(), map), schema })
    }

    /// `--mapping authentik`: the built-in schema's entities on authentik's
    /// tables in `tenant`, checked against the catalog now.
    pub(crate) fn authentik(
        c: &mut postgres::Client,
        schema: Arc<Schema>,
        tenant: &str,
    ) -> Result<Mapping, StoreError> {
        let map = pgent::Mapping::authentik(c, &schema, tenant)?;
        Ok(Mapping { namespace: tenant.to_string(), ents: PgEntities::new(schema.clone(), map), schema })
    }

    /// Text that changes when the entity tables' layout changes (kept in
    /// `herald_meta` as the schema fingerprint).
    pub(crate) fn fingerprint_text(&self) -> String {
        let mut s = String::new();
        if self.ents.mapping().ddl.is_none() {
            s.push_str(&format!("mapping {}\n", self.namespace));
        }
        for id in self.schema.entity_ids() {
            s.push_str(&format!("{:?}\n", self.schema.entity(id)));
        }
        s
    }
}

/// Create the entity tables that are missing (inside the opening
/// transaction); a foreign mapping creates nothing.
pub(crate) fn create_tables(c: &mut Conn, m: &Mapping) -> Result<(), StoreError> {
    m.ents.create_tables(c.client())
}

/// Indexes for the fields `program`'s query filters test with `==`/`in`:
/// none yet on PostgreSQL (keys and link tables are indexed).
pub(crate) fn ensure_indexes(_c: &mut Conn, _m: &Mapping, _program: &ir::Program) -> Result<(), StoreError> {
    Ok(())
}

pub(crate) fn lookup(
    c: &mut Conn,
    m: &Mapping,
    entity: EntityId,
    key: &Value,
) -> Result<Option<Arc<Row>>, RuntimeError> {
    m.ents.lookup(c.client(), entity, key)
}

pub(crate) fn lookup_many(
    c: &mut Conn,
    m: &Mapping,
    entity: EntityId,
    keys: &[Value],
) -> Result<Vec<Arc<Row>>, RuntimeError> {
    m.ents.lookup_many(c.client(), entity, keys)
}

pub(crate) fn related(
    c: &mut Conn,
    m: &Mapping,
    entity: EntityId,
    key: &Value,
    field: usize,
) -> Result<Vec<Arc<Row>>, RuntimeError> {
    m.ents.related(c.client(), entity, key, field)
}

/// The SQL and parameters of a query; the filter's outer values are
/// evaluated here, before the caller borrows the connection, since `eval`
/// may read the store (a nested query).
pub(crate) fn query_sql(
    m: &Mapping,
    kind: QueryKind,
    entity: EntityId,
    filter: Option<&Expr>,
    eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
) -> Result<(String, Vec<Option<String>>), RuntimeError> {
    m.ents.query_sql(kind, entity, filter, eval)
}

/// Run what [`query_sql`] made.
pub(crate) fn run_query(
    c: &mut Conn,
    m: &Mapping,
    kind: QueryKind,
    entity: EntityId,
    sql: &str,
    params: &[Option<String>],
) -> Result<Value, RuntimeError> {
    m.ents.run_query(c.client(), kind, entity, sql, params)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn set_field(
    c: &mut Conn,
    m: &Mapping,
    entity: EntityId,
    key: &Value,
    field: usize,
    path: &[String],
    value: &Value,
) -> Result<Value, RuntimeError> {
    m.ents.set_field(c.client(), entity, key, field, path, value)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn append(
    c: &mut Conn,
    m: &Mapping,
    entity: EntityId,
    key: &Value,
    field: usize,
    path: &[String],
    value: &Value,
) -> Result<Value, RuntimeError> {
    m.ents.append(c.client(), entity, key, field, path, value)
}

pub(crate) fn remove(
    c: &mut Conn,
    m: &Mapping,
    entity: EntityId,
    key: &Value,
    field: usize,
    path: &[String],
) -> Result<Value, RuntimeError> {
    m.ents.remove(c.client(), entity, key, field, path)
}

pub(crate) fn upsert(
    c: &mut Conn,
    m: &Mapping,
    entity: EntityId,
    key: &Value,
    fields: &[(usize, Value)],
) -> Result<Arc<Row>, RuntimeError> {
    m.ents.upsert(c.client(), entity, key, fields)
}

pub(crate) fn delete(c: &mut Conn, m: &Mapping, entity: EntityId, key: &Value) -> Result<bool, RuntimeError> {
    m.ents.delete(c.client(), entity, key)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn link(
    c: &mut Conn,
    m: &Mapping,
    entity: EntityId,
    key: &Value,
    field: usize,
    target: &Value,
    add: bool,
) -> Result<(), RuntimeError> {
    m.ents.link(c.client(), entity, key, field, target, add)
}

/// A `notify` delivery: a row in `herald.herald_notification` (or
/// authentik's notification table under the mapping) when the recipient
/// row exists, checked in the same statement; `Ok(None)` when it does not.
pub(crate) fn insert_notification(
    c: &mut Conn,
    m: &Mapping,
    rule: &str,
    event_key: &str,
    user_pk: &Value,
    severity: &str,
    body: &str,
) -> Result<Option<i64>, RuntimeError> {
    if m.ents.mapping().notification.is_some() {
        // The event's identity is its uuid for authentik's events.
        let ev = crate::value::parse_uuid(event_key);
        return Ok(match m.ents.notify_authentik(c.client(), user_pk, severity, body, ev)? {
            Some(true) => Some(0),
            _ => None,
        });
    }
    let recipient = m
        .schema
        .recipient
        .ok_or_else(|| RuntimeError::new(Code::StoreFailure, "the schema has no recipient entity for `notify`"))?;
    let key = match user_pk {
        Value::Entity(row) => row.key.clone(),
        v => v.clone(),
    };
    m.ents.insert_herald_notification(c.client(), recipient, rule, event_key, &key, severity, body, &super::now())
}

/// `notify`'s recipient key, checked when the rule fires (see
/// [`PgEntities::check_notification_key`]).
pub(crate) fn check_notification_key(m: &Mapping, user_pk: &Value) -> Result<(), RuntimeError> {
    m.ents.check_notification_key(user_pk)
}

/// A batch's `notify` rows in one statement, each only when its recipient
/// row exists; returns how many were dropped (see
/// [`PgEntities::insert_notifications`]).
pub(crate) fn insert_notifications(c: &mut Conn, m: &Mapping, rows: &[NotificationRow]) -> Result<u64, RuntimeError> {
    let stored = m.ents.insert_notifications(c.client(), rows)?;
    Ok((rows.len() as u64).saturating_sub(stored))
}

/// The entity part of the dump, in the same form as SQLite's
/// (`== Entity (n rows)` then one JSON object per row, by key).
pub(crate) fn dump_entities(c: &mut Conn, m: &Mapping) -> Result<String, RuntimeError> {
    m.ents.dump_entities(c.client())
}

/// `db load`: one transaction of its own.
pub(crate) fn load_fixtures(
    c: &mut Conn,
    m: &Mapping,
    json: &str,
    mode: LoadMode,
) -> Result<LoadStats, Vec<LoadError>> {
    let client = c.client();
    if let Err(e) = client.batch_execute("BEGIN") {
        return Err(vec![LoadError::message(format!("cannot start a transaction: {}", super::describe_pg(&e)))]);
    }
    match m.ents.load_fixtures(client, json, mode) {
        Ok(stats) => match client.batch_execute("COMMIT") {
            Ok(()) => Ok(stats),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                Err(vec![LoadError::message(format!("cannot commit: {}", super::describe_pg(&e)))])
            }
        },
        Err(errors) => {
            let _ = client.batch_execute("ROLLBACK");
            Err(errors)
        }
    }
}
