//! The store interface: every operation the engine, the effect applier, the
//! state cache, `herald test`, `herald serve` and the `cli` ask of a store.
//!
//! Two backends implement it: [`Store`] (SQLite, a file) and
//! [`PgStore`](super::pg::PgStore) (PostgreSQL, a `postgres://` URL). The
//! rest of the program holds a `&dyn Backend` (or a `Box<dyn Backend>` from
//! [`open`]) and never names a backend; [`open`] picks one from the `--db`
//! argument.
//!
//! The trait is object safe: no generic methods, no `Self` by value.
//! Transactions are explicit (`begin`/`commit`/`rollback`, named savepoints)
//! because the engine groups events into batches and rules into savepoints
//! by itself. A backend reports every database failure as a
//! [`RuntimeError`] (code R0004, `StoreFailure`), never a panic.

use super::{
    Checkpoint, DeadLetter, EntryKind, FiringRow, Kind, LoadError, LoadMode, LoadStats, NotificationRow, OutboxCounts,
    OutboxEntry, PendingAppend, ProcessedRow, RecipientKey, SourceCursor, SourceEvent, StateEntry, Store, StoreError,
};
use crate::diag::RuntimeError;
use crate::ir::{self, Expr, QueryKind};
use crate::schema::Schema;
use crate::types::EntityId;
use crate::value::{Row, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A store: Herald's tables and the schema's entities, behind one interface.
pub trait Backend {
    /// `sqlite` or `postgres`: for messages ("… needs SQLite for now").
    fn kind(&self) -> &'static str;
    /// The schema the store was opened for.
    fn schema(&self) -> &Arc<Schema>;
    /// The schema fingerprint kept in `herald_meta`.
    fn fingerprint(&self) -> &str;

    // ---- transactions ---------------------------------------------------

    /// Whether a failed statement, a read included, leaves the open
    /// transaction unusable until a rollback to a savepoint (PostgreSQL),
    /// rather than failing alone (SQLite). The engine then opens a rule's
    /// savepoint before the rule's first store access, not its first write,
    /// so a rule whose read fails is still only that rule's error.
    fn failed_read_aborts_transaction(&self) -> bool {
        false
    }

    fn begin(&self) -> Result<(), RuntimeError>;
    fn commit(&self) -> Result<(), RuntimeError>;
    fn rollback(&self) -> Result<(), RuntimeError>;
    fn in_transaction(&self) -> bool;
    fn savepoint(&self, name: &str) -> Result<(), RuntimeError>;
    fn release(&self, name: &str) -> Result<(), RuntimeError>;
    fn rollback_to(&self, name: &str) -> Result<(), RuntimeError>;

    // ---- schema-dependent setup -----------------------------------------

    /// Indexes for the fields `program`'s query filters test with `==`/`in`.
    fn ensure_indexes(&self, program: &ir::Program) -> Result<(), StoreError>;
    /// `db load` (and a test's `given` rows).
    fn load_fixtures_with(&mut self, json: &str, mode: LoadMode) -> Result<LoadStats, Vec<LoadError>>;
    fn load_fixtures(&mut self, json: &str) -> Result<LoadStats, Vec<LoadError>> {
        self.load_fixtures_with(json, LoadMode::Merge)
    }

    // ---- Herald's records -----------------------------------------------

    /// A `notify` row; `None` when no recipient row has the key (dropped).
    fn insert_notification(
        &self,
        rule: &str,
        event_key: &str,
        user_pk: &Value,
        severity: &str,
        body: &str,
    ) -> Result<Option<i64>, RuntimeError>;
    /// Queue an email; returns the outbox row id.
    #[allow(clippy::too_many_arguments)]
    fn insert_outbox(
        &self,
        rule: &str,
        event_key: &str,
        to: &[String],
        cc: &[String],
        bcc: &[String],
        subject: &str,
        body: &str,
    ) -> Result<i64, RuntimeError>;
    /// Queue a webhook; returns the outbox row id.
    fn insert_webhook(
        &self,
        rule: &str,
        event_key: &str,
        url: &str,
        method: &str,
        headers: &str,
        body: &str,
    ) -> Result<i64, RuntimeError>;
    fn insert_firing(&self, rule: &str, event_key: &str, line: u64) -> Result<(), RuntimeError>;
    /// The recipient key of a `notify`, converted once when the rule fires
    /// (a wrong type is the rule's error, not the batch's).
    fn notification_key(&self, user_pk: &Value) -> Result<RecipientKey, RuntimeError> {
        Ok(RecipientKey::of_value(user_pk))
    }
    /// A batch's buffered notifications, in order, each dropped when no
    /// recipient row has its key at that moment; returns how many were
    /// dropped. The default inserts them one by one.
    fn insert_notifications(&self, rows: &[NotificationRow]) -> Result<u64, RuntimeError> {
        let mut dropped = 0;
        for r in rows {
            if self.insert_notification(&r.rule, &r.event_key, &r.user_pk.value(), r.severity, &r.body)?.is_none() {
                dropped += 1;
            }
        }
        Ok(dropped)
    }
    /// A batch's buffered firing rows (the default: one by one).
    fn insert_firings(&self, rows: &[FiringRow]) -> Result<(), RuntimeError> {
        rows.iter().try_for_each(|r| self.insert_firing(&r.rule, &r.event_key, r.line))
    }
    /// A batch's buffered replay records, with `mark_processed`'s meaning
    /// (the default: one by one).
    fn mark_processed_many(&self, rows: &[ProcessedRow]) -> Result<(), RuntimeError> {
        rows.iter().try_for_each(|r| self.mark_processed(&r.event_key, r.line, r.rule_set))
    }
    fn insert_dead_letter(&self, d: &DeadLetter<'_>) -> Result<(), RuntimeError>;
    fn unresolved_dead_letters(&self, source: &str) -> Result<Vec<u64>, RuntimeError>;
    fn resolve_dead_letters(&self, source: &str, line: u64) -> Result<u64, RuntimeError>;
    fn insert_rule_error(
        &self,
        rule: &str,
        event_key: &str,
        code: &str,
        message: &str,
        line: u64,
    ) -> Result<(), RuntimeError>;
    /// The replay record: `None` never processed, `Some(set)` processed.
    fn processed_rule_set(&self, event_key: &str) -> Result<Option<Option<i64>>, RuntimeError>;
    /// Whether every call is a round trip to a server (PostgreSQL), so that
    /// the writer should ask [`Backend::processed_rule_sets`] for a chunk's
    /// events at once rather than one event at a time (SQLite: a function
    /// call each, and looking up events in advance would cost a decode).
    fn prefers_bulk_lookups(&self) -> bool {
        false
    }
    /// [`Backend::processed_rule_set`] of many keys, in their order (the
    /// default: one by one).
    fn processed_rule_sets(&self, event_keys: &[&str]) -> Result<Vec<Option<Option<i64>>>, RuntimeError> {
        event_keys.iter().map(|k| self.processed_rule_set(k)).collect()
    }
    fn mark_processed(&self, event_key: &str, line: u64, rule_set: i64) -> Result<(), RuntimeError>;
    /// The id of the set of these rule names (order and repeats ignored).
    fn rule_set_id(&self, names: &[&str]) -> Result<i64, RuntimeError>;
    /// The rule names of a rule set, sorted.
    fn rule_set(&self, id: i64) -> Result<Vec<String>, RuntimeError>;
    fn checkpoint(&self, source_key: &str) -> Result<Option<Checkpoint>, RuntimeError>;
    #[allow(clippy::too_many_arguments)]
    fn set_checkpoint(
        &self,
        source_key: &str,
        source: &str,
        line: u64,
        offset: u64,
        last_hash: &str,
        prefix_hash: &str,
    ) -> Result<(), RuntimeError>;

    // ---- outbox (reads; delivery state goes through `OutboxStore`) -----

    fn outbox(&self, status: Option<&str>) -> Result<Vec<OutboxEntry>, RuntimeError>;
    fn outbox_counts(&self) -> Result<OutboxCounts, RuntimeError>;
    fn outbox_counts_of(&self, kind: Kind) -> Result<OutboxCounts, RuntimeError>;

    // ---- window, throttle and `after` state -------------------------------

    fn state_mark(&self, rule: &str, clause: u32) -> Result<Option<i128>, RuntimeError>;
    fn set_state_mark(&self, rule: &str, clause: u32, watermark: i128) -> Result<(), RuntimeError>;
    fn state_entries(&self, rule: &str, clause: u32, key: &str, after: i128) -> Result<Vec<StateEntry>, RuntimeError>;
    fn insert_state_entry(&self, rule: &str, clause: u32, key: &str, entry: &StateEntry) -> Result<(), RuntimeError>;
    fn delete_state_kind(&self, rule: &str, clause: u32, key: &str, kind: EntryKind) -> Result<(), RuntimeError>;
    fn sweep_state(&self, rule: &str, clause: u32, upto: i128) -> Result<(), RuntimeError>;
    /// Several workers share the state (`run --partitions`): take the
    /// state's lock for the rest of the transaction, so one transaction at a
    /// time reads and changes it (store::workers). A store that cannot be
    /// shared refuses.
    fn lock_shared_state(&self) -> Result<(), RuntimeError> {
        Err(RuntimeError::new(
            crate::diag::Code::StoreFailure,
            format!("a {} store cannot share window and throttle state between workers", self.kind()),
        ))
    }
    /// The lowest watermark of a clause over every `mark_names` row of it
    /// (the partitions' watermarks of a shared clause): what a sweep of
    /// entries several partitions read may go by.
    fn state_mark_floor(&self, mark_prefix: &str, clause: u32) -> Result<Option<i128>, RuntimeError> {
        self.state_mark(mark_prefix, clause)
    }

    // ---- a database event source's cursor (`store::cursor`) ---------------

    /// The recorded cursor of a `--source postgres://…` source.
    fn source_cursor(&self, source_key: &str) -> Result<SourceCursor, RuntimeError>;
    /// Record `events` as taken and forget those older than `forget_before`
    /// (Unix microseconds), inside the batch transaction.
    fn source_advance(&self, source_key: &str, events: &[SourceEvent], forget_before: i64) -> Result<(), RuntimeError>;
    /// The partition count of a source several workers share, if it is
    /// partitioned (`run --partitions`, store::workers).
    fn source_partitions(&self, _source_key: &str) -> Result<Option<u32>, RuntimeError> {
        Ok(None)
    }
    /// Inside the batch transaction, before its commit: fail unless
    /// `worker` still holds each partition's lease with the epoch it
    /// claimed it with, and keep the rows locked until the commit, so no
    /// other worker can take one over while this transaction records its
    /// events (store::workers).
    fn fence_partitions(&self, _source_key: &str, _worker: &str, _parts: &[(u32, i64)]) -> Result<(), RuntimeError> {
        Err(RuntimeError::new(
            crate::diag::Code::StoreFailure,
            format!("a {} store cannot hold partition leases", self.kind()),
        ))
    }

    // ---- entities --------------------------------------------------------

    fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError>;
    fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError>;
    fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError>;
    fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&Expr>,
        eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError>;
    fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError>;
    fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError>;
    /// An append kept in `buf` until [`Backend::flush_append`]. A backend
    /// without buffering writes at once (the default) and leaves `buf` empty.
    #[allow(clippy::too_many_arguments)]
    fn append_buffered(
        &self,
        buf: &mut Option<PendingAppend>,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        self.flush_append(buf)?;
        self.append(entity, key, field, path, value)
    }
    /// Write what `buf` holds (nothing to do when it is empty).
    fn flush_append(&self, buf: &mut Option<PendingAppend>) -> Result<(), RuntimeError> {
        match buf.take() {
            None => Ok(()),
            // Only SQLite's `append_buffered` fills a buffer, and it
            // overrides this method.
            Some(_) => Err(RuntimeError::new(
                crate::diag::Code::StoreFailure,
                "an append buffer of another store was handed to this one",
            )),
        }
    }
    fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError>;
    fn upsert(&self, entity: EntityId, key: &Value, fields: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError>;
    fn delete(&self, entity: EntityId, key: &Value) -> Result<bool, RuntimeError>;
    fn link(&self, entity: EntityId, key: &Value, field: usize, target: &Value, add: bool) -> Result<(), RuntimeError>;

    // ---- dumps -------------------------------------------------------------

    /// The normalised text dump (entities by key, Herald's tables by id
    /// without ids, times as `<time>`): equal on both backends for the
    /// same history.
    fn try_dump(&self) -> Result<String, RuntimeError>;
    fn dump(&self) -> String {
        self.try_dump().unwrap_or_else(|e| format!("<dump failed: {e}>\n"))
    }

    // ---- `herald serve` ------------------------------------------------------

    /// Delete the intake rows up to `seq` (inside the batch transaction).
    fn intake_done(&self, seq: i64) -> Result<u64, RuntimeError>;
}

/// Whether `--db` names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres(db: &Path) -> bool {
    db.to_str().is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// How to open a store (beyond its location and schema).
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// SQLite: how long to wait for another process's lock. PostgreSQL:
    /// the connect timeout and the statement timeout.
    pub wait: Duration,
    /// PostgreSQL: where the entities live (`None`: Herald's own tables in
    /// the schema `herald`). A SQLite store refuses a mapping.
    pub mapping: Option<EntityMapping>,
}

/// A foreign home for the schema's entities (`--mapping`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityMapping {
    /// authentik's own tables in the tenant schema `tenant`.
    Authentik { tenant: String },
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions { wait: super::DEFAULT_WAIT, mapping: None }
    }
}

/// Open the store `db` names: a `postgres://` or `postgresql://` URL opens
/// PostgreSQL, anything else is a SQLite file path.
pub fn open(db: &Path, schema: Arc<Schema>, options: OpenOptions) -> Result<Box<dyn Backend>, StoreError> {
    if is_postgres(db) {
        let url = db.to_str().unwrap_or_default();
        Ok(Box::new(super::pg::PgStore::open(url, schema, options)?))
    } else if options.mapping.is_some() {
        Err(StoreError::Schema(
            "`--mapping authentik` needs a PostgreSQL database (`--db postgres://…`): authentik keeps its data there"
                .into(),
        ))
    } else {
        Ok(Box::new(Store::open_waiting(db, schema, options.wait)?))
    }
}

impl Backend for Store {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
    fn schema(&self) -> &Arc<Schema> {
        Store::schema(self)
    }
    fn fingerprint(&self) -> &str {
        Store::fingerprint(self)
    }
    fn begin(&self) -> Result<(), RuntimeError> {
        Store::begin(self)
    }
    fn commit(&self) -> Result<(), RuntimeError> {
        Store::commit(self)
    }
    fn rollback(&self) -> Result<(), RuntimeError> {
        Store::rollback(self)
    }
    fn in_transaction(&self) -> bool {
        Store::in_transaction(self)
    }
    fn savepoint(&self, name: &str) -> Result<(), RuntimeError> {
        Store::savepoint(self, name)
    }
    fn release(&self, name: &str) -> Result<(), RuntimeError> {
        Store::release(self, name)
    }
    fn rollback_to(&self, name: &str) -> Result<(), RuntimeError> {
        Store::rollback_to(self, name)
    }
    fn ensure_indexes(&self, program: &ir::Program) -> Result<(), StoreError> {
        Store::ensure_indexes(self, program)
    }
    fn load_fixtures_with(&mut self, json: &str, mode: LoadMode) -> Result<LoadStats, Vec<LoadError>> {
        Store::load_fixtures_with(self, json, mode)
    }
    fn insert_notification(
        &self,
        rule: &str,
        event_key: &str,
        user_pk: &Value,
        severity: &str,
        body: &str,
    ) -> Result<Option<i64>, RuntimeError> {
        Store::insert_notification(self, rule, event_key, user_pk, severity, body)
    }
    fn insert_outbox(
        &self,
        rule: &str,
        event_key: &str,
        to: &[String],
        cc: &[String],
        bcc: &[String],
        subject: &str,
        body: &str,
    ) -> Result<i64, RuntimeError> {
        Store::insert_outbox(self, rule, event_key, to, cc, bcc, subject, body)
    }
    fn insert_webhook(
        &self,
        rule: &str,
        event_key: &str,
        url: &str,
        method: &str,
        headers: &str,
        body: &str,
    ) -> Result<i64, RuntimeError> {
        Store::insert_webhook(self, rule, event_key, url, method, headers, body)
    }
    fn notification_key(&self, user_pk: &Value) -> Result<RecipientKey, RuntimeError> {
        Store::notification_key(self, user_pk)
    }
    fn insert_notifications(&self, rows: &[NotificationRow]) -> Result<u64, RuntimeError> {
        Store::insert_notifications(self, rows)
    }
    fn insert_firings(&self, rows: &[FiringRow]) -> Result<(), RuntimeError> {
        Store::insert_firings(self, rows)
    }
    fn mark_processed_many(&self, rows: &[ProcessedRow]) -> Result<(), RuntimeError> {
        Store::mark_processed_many(self, rows)
    }
    fn source_cursor(&self, source_key: &str) -> Result<SourceCursor, RuntimeError> {
        Store::source_cursor(self, source_key)
    }
    fn source_advance(&self, source_key: &str, events: &[SourceEvent], forget_before: i64) -> Result<(), RuntimeError> {
        Store::source_advance(self, source_key, events, forget_before)
    }
    fn insert_firing(&self, rule: &str, event_key: &str, line: u64) -> Result<(), RuntimeError> {
        Store::insert_firing(self, rule, event_key, line)
    }
    fn insert_dead_letter(&self, d: &DeadLetter<'_>) -> Result<(), RuntimeError> {
        Store::insert_dead_letter(self, d)
    }
    fn unresolved_dead_letters(&self, source: &str) -> Result<Vec<u64>, RuntimeError> {
        Store::unresolved_dead_letters(self, source)
    }
    fn resolve_dead_letters(&self, source: &str, line: u64) -> Result<u64, RuntimeError> {
        Store::resolve_dead_letters(self, source, line)
    }
    fn insert_rule_error(
        &self,
        rule: &str,
        event_key: &str,
        code: &str,
        message: &str,
        line: u64,
    ) -> Result<(), RuntimeError> {
        Store::insert_rule_error(self, rule, event_key, code, message, line)
    }
    fn processed_rule_set(&self, event_key: &str) -> Result<Option<Option<i64>>, RuntimeError> {
        Store::processed_rule_set(self, event_key)
    }
    fn mark_processed(&self, event_key: &str, line: u64, rule_set: i64) -> Result<(), RuntimeError> {
        Store::mark_processed(self, event_key, line, rule_set)
    }
    fn rule_set_id(&self, names: &[&str]) -> Result<i64, RuntimeError> {
        Store::rule_set_id(self, names)
    }
    fn rule_set(&self, id: i64) -> Result<Vec<String>, RuntimeError> {
        Store::rule_set(self, id)
    }
    fn checkpoint(&self, source_key: &str) -> Result<Option<Checkpoint>, RuntimeError> {
        Store::checkpoint(self, source_key)
    }
    fn set_checkpoint(
        &self,
        source_key: &str,
        source: &str,
        line: u64,
        offset: u64,
        last_hash: &str,
        prefix_hash: &str,
    ) -> Result<(), RuntimeError> {
        Store::set_checkpoint(self, source_key, source, line, offset, last_hash, prefix_hash)
    }
    fn outbox(&self, status: Option<&str>) -> Result<Vec<OutboxEntry>, RuntimeError> {
        Store::outbox(self, status)
    }
    fn outbox_counts(&self) -> Result<OutboxCounts, RuntimeError> {
        Store::outbox_counts(self)
    }
    fn outbox_counts_of(&self, kind: Kind) -> Result<OutboxCounts, RuntimeError> {
        Store::outbox_counts_of(self, kind)
    }
    fn state_mark(&self, rule: &str, clause: u32) -> Result<Option<i128>, RuntimeError> {
        Store::state_mark(self, rule, clause)
    }
    fn set_state_mark(&self, rule: &str, clause: u32, watermark: i128) -> Result<(), RuntimeError> {
        Store::set_state_mark(self, rule, clause, watermark)
    }
    fn state_entries(&self, rule: &str, clause: u32, key: &str, after: i128) -> Result<Vec<StateEntry>, RuntimeError> {
        Store::state_entries(self, rule, clause, key, after)
    }
    fn insert_state_entry(&self, rule: &str, clause: u32, key: &str, entry: &StateEntry) -> Result<(), RuntimeError> {
        Store::insert_state_entry(self, rule, clause, key, entry)
    }
    fn delete_state_kind(&self, rule: &str, clause: u32, key: &str, kind: EntryKind) -> Result<(), RuntimeError> {
        Store::delete_state_kind(self, rule, clause, key, kind)
    }
    fn sweep_state(&self, rule: &str, clause: u32, upto: i128) -> Result<(), RuntimeError> {
        Store::sweep_state(self, rule, clause, upto)
    }
    fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        Store::lookup(self, entity, key)
    }
    fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        Store::lookup_many(self, entity, keys)
    }
    fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError> {
        Store::related(self, entity, key, field)
    }
    fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&Expr>,
        eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        Store::query(self, kind, entity, filter, eval)
    }
    fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        Store::set_field(self, entity, key, field, path, value)
    }
    fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        Store::append(self, entity, key, field, path, value)
    }
    fn append_buffered(
        &self,
        buf: &mut Option<PendingAppend>,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        Store::append_buffered(self, buf, entity, key, field, path, value)
    }
    fn flush_append(&self, buf: &mut Option<PendingAppend>) -> Result<(), RuntimeError> {
        Store::flush_append(self, buf)
    }
    fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError> {
        Store::remove(self, entity, key, field, path)
    }
    fn upsert(&self, entity: EntityId, key: &Value, fields: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError> {
        Store::upsert(self, entity, key, fields)
    }
    fn delete(&self, entity: EntityId, key: &Value) -> Result<bool, RuntimeError> {
        Store::delete(self, entity, key)
    }
    fn link(&self, entity: EntityId, key: &Value, field: usize, target: &Value, add: bool) -> Result<(), RuntimeError> {
        Store::link(self, entity, key, field, target, add)
    }
    fn try_dump(&self) -> Result<String, RuntimeError> {
        Store::try_dump(self)
    }
    fn dump(&self) -> String {
        Store::dump(self)
    }
    fn intake_done(&self, seq: i64) -> Result<u64, RuntimeError> {
        Store::intake_done(self, seq)
    }
}
