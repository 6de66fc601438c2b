//! The SQLite store as the interpreter's [`Db`].

use super::batch::Batch;
use super::state::StateCache;
use crate::decode::Decoded;
use crate::diag::RuntimeError;
use crate::interp::{self, Db, Env, WindowAnswer};
use crate::ir::{Expr, QueryKind, StateSlot};
use crate::ir::{Program, Rule};
use crate::store::{Backend, NotificationRow, PendingAppend, Store};
use crate::types::EntityId;
use crate::value::{Row, Value};
use std::cell::{Cell, RefCell};
use std::sync::Arc;

impl Db for Store {
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
}

/// The store as one rule sees it: the rule's savepoint is opened just before
/// its first write, not before the rule runs. Most matched rules stop in a
/// guard having only read, and for them this saves a SAVEPOINT and a RELEASE
/// statement each; a rule that wrote is rolled back to (or released from)
/// its savepoint exactly as before.
pub(super) struct RuleStore<'a> {
    store: &'a dyn Backend,
    /// The savepoint of the current rule is open.
    open: Cell<bool>,
    /// Opening the savepoint failed: a store failure, which ends the run
    /// rather than counting as the rule's error.
    failed: RefCell<Option<RuntimeError>>,
    /// A run of appends to one place, kept in memory (linear, where a
    /// write per append rewrote the whole list each time). Flushed before
    /// any other store access and when the rule's actions end
    /// (`Db::flush`); dropped, never written, when the rule fails.
    appends: RefCell<Option<PendingAppend>>,
    /// Windows and throttles, written through to the store.
    state: &'a RefCell<StateCache>,
    /// The batch's buffered rows (`engine::batch`).
    batch: &'a RefCell<Batch>,
    /// The current rule's notifications: they join the batch when the
    /// rule ends without error, and are dropped when it fails.
    notes: RefCell<Vec<NotificationRow>>,
    /// A stateful clause ran: the event must get a replay record even if
    /// nothing fires, so a re-read does not count it twice.
    pub(super) stateful: Cell<bool>,
}

const SAVEPOINT: &str = "herald_rule";

impl<'a> RuleStore<'a> {
    pub(super) fn new(
        store: &'a dyn Backend,
        state: &'a RefCell<StateCache>,
        batch: &'a RefCell<Batch>,
    ) -> RuleStore<'a> {
        RuleStore {
            store,
            open: Cell::new(false),
            failed: RefCell::new(None),
            appends: RefCell::new(None),
            state,
            batch,
            notes: RefCell::new(Vec::new()),
            stateful: Cell::new(false),
        }
    }

    /// Before a stateful clause's writes: the savepoint is open, buffered
    /// appends are written.
    fn before_state(&self) -> Result<(), RuntimeError> {
        self.before_write()?;
        self.flush_appends()?;
        self.stateful.set(true);
        Ok(())
    }

    /// Record the firing of `rule` for each throttle it passed, in its
    /// savepoint (after its effects were applied).
    pub(super) fn throttles_fired(
        &self,
        rule: &str,
        marks: &[(crate::ir::StateSlot, String, i128)],
    ) -> Result<(), RuntimeError> {
        for (slot, key, t) in marks {
            self.before_state()?;
            self.state.borrow_mut().fired(self.store, rule, slot.clause, key, *t)?;
        }
        Ok(())
    }

    fn before_write(&self) -> Result<(), RuntimeError> {
        if !self.open.get() {
            // Earlier rules' notifications test their recipient's row when
            // inserted: that must happen before this rule changes any row,
            // and outside its savepoint, which a failure would roll back.
            let flushed = self.batch.borrow_mut().flush_notifications(self.store);
            if let Err(e) = flushed.and_then(|()| self.store.savepoint(SAVEPOINT)) {
                *self.failed.borrow_mut() = Some(e.clone());
                return Err(e);
            }
            self.open.set(true);
        }
        Ok(())
    }

    /// Before a read: buffered appends are written; on a store where a
    /// failed statement aborts the transaction (PostgreSQL), the savepoint
    /// is opened first, so that a failed read rolls back to it like a
    /// failed write and stays the rule's error.
    fn before_read(&self) -> Result<(), RuntimeError> {
        if self.store.failed_read_aborts_transaction() {
            self.before_write()?;
        }
        self.flush_appends()
    }

    /// Write the buffered appends, if any.
    fn flush_appends(&self) -> Result<(), RuntimeError> {
        self.store.flush_append(&mut self.appends.borrow_mut())
    }

    /// End the rule: keep (`keep`) or discard its writes. Fails with the
    /// store's error if a savepoint could not be opened or closed.
    pub(super) fn finish(&self, keep: bool) -> Result<(), RuntimeError> {
        // Normally already flushed by `Db::flush` at the end of the actions.
        let mut pending = self.appends.borrow_mut().take();
        if keep {
            self.store.flush_append(&mut pending)?;
            self.batch.borrow_mut().notified(&mut self.notes.borrow_mut());
            self.state.borrow_mut().rule_done();
        } else {
            self.notes.borrow_mut().clear();
        }
        if let Some(e) = self.failed.borrow_mut().take() {
            self.open.set(false);
            return Err(e);
        }
        if !self.open.replace(false) {
            return Ok(());
        }
        if keep {
            self.store.release(SAVEPOINT)
        } else {
            self.store.rollback_to(SAVEPOINT)
        }
    }
}

impl RuleStore<'_> {
    /// Record `ev` for every `after` clause that watches its type, as an
    /// entry of the clause's state (each in a savepoint of its own). Called
    /// after the event's rules ran, so an event never completes a sequence
    /// with itself. This is the one definition of what `after` remembers:
    /// `run`'s writer and the dry replays of `trace` and `diff` all call it,
    /// so they agree on which sequences complete.
    ///
    /// A clause whose `where` or join key fails on the event is a rule error
    /// of the clause's rule, returned (in declaration order) for the caller
    /// to record; a store failure is `Err`.
    pub(super) fn record_afters<'p>(
        &self,
        program: &'p Program,
        ev: &Decoded<'_>,
        env: &mut Env,
    ) -> Result<Vec<(&'p Rule, RuntimeError)>, RuntimeError> {
        let mut errors = Vec::new();
        for (rule, a) in program.afters() {
            if ev.event_type != Some(a.event) {
                continue;
            }
            let entry = interp::after_entry(program, rule, a, ev, env).and_then(|e| Ok(e.zip(ev.event_time()?)));
            match entry {
                Ok(Some(((k, json), t))) => {
                    self.after_record(&rule.name, a.slot, &k, t, a.duration, &json)?;
                    self.finish(true)?;
                }
                Ok(None) => {}
                Err(err) => errors.push((rule, err)),
            }
        }
        Ok(errors)
    }
}

impl Db for RuleStore<'_> {
    fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        self.before_read()?;
        self.store.lookup(entity, key)
    }
    fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        self.before_read()?;
        self.store.lookup_many(entity, keys)
    }
    fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError> {
        self.before_read()?;
        self.store.related(entity, key, field)
    }
    fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&Expr>,
        eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        self.before_read()?;
        self.store.query(kind, entity, filter, eval)
    }
    fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        self.before_write()?;
        self.flush_appends()?;
        self.store.set_field(entity, key, field, path, value)
    }
    fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        self.before_write()?;
        self.store.append_buffered(&mut self.appends.borrow_mut(), entity, key, field, path, value)
    }
    fn flush(&self) -> Result<(), RuntimeError> {
        self.flush_appends()
    }
    fn window(
        &self,
        rule: &str,
        slot: StateSlot,
        key: &str,
        t: i128,
        d: i128,
        value: Option<&str>,
    ) -> Result<Option<WindowAnswer>, RuntimeError> {
        self.before_state()?;
        self.state.borrow_mut().window(self.store, rule, slot.clause, key, t, d, value)
    }
    fn throttle(&self, rule: &str, slot: StateSlot, key: &str, t: i128, d: i128) -> Result<Option<i64>, RuntimeError> {
        self.before_state()?;
        self.state.borrow_mut().throttle(self.store, rule, slot.clause, key, t, d)
    }
    fn after_record(
        &self,
        rule: &str,
        slot: StateSlot,
        key: &str,
        t: i128,
        d: i128,
        json: &str,
    ) -> Result<bool, RuntimeError> {
        self.before_state()?;
        self.state.borrow_mut().after_record(self.store, rule, slot.clause, key, t, d, json)
    }
    fn after(&self, rule: &str, slot: StateSlot, key: &str, t: i128, d: i128) -> Result<Option<String>, RuntimeError> {
        self.before_state()?;
        self.state.borrow_mut().after(self.store, rule, slot.clause, key, t, d)
    }
    fn throttle_fired(&self, rule: &str, slot: StateSlot, key: &str, t: i128) -> Result<(), RuntimeError> {
        self.before_state()?;
        self.state.borrow_mut().fired(self.store, rule, slot.clause, key, t)
    }
    fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError> {
        self.before_write()?;
        self.flush_appends()?;
        self.store.remove(entity, key, field, path)
    }
    fn upsert(&self, entity: EntityId, key: &Value, fields: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError> {
        self.before_write()?;
        self.flush_appends()?;
        self.store.upsert(entity, key, fields)
    }
    fn delete(&self, entity: EntityId, key: &Value) -> Result<bool, RuntimeError> {
        self.before_write()?;
        self.flush_appends()?;
        self.store.delete(entity, key)
    }
    fn link(&self, entity: EntityId, key: &Value, field: usize, target: &Value, add: bool) -> Result<(), RuntimeError> {
        self.before_write()?;
        self.flush_appends()?;
        self.store.link(entity, key, field, target, add)
    }
}

impl RuleStore<'_> {
    /// Apply a `notify` effect's row for one recipient: buffered with the
    /// rule's (see `engine::batch`), so no savepoint is needed for it. A key
    /// of the wrong kind is the rule's error here, as before.
    pub(super) fn notify(
        &self,
        rule: &Arc<str>,
        event_key: &Arc<str>,
        user_pk: &Value,
        severity: &'static str,
        body: &str,
        created: i128,
    ) -> Result<(), RuntimeError> {
        self.flush_appends()?;
        let user_pk = self.store.notification_key(user_pk)?;
        self.notes.borrow_mut().push(NotificationRow {
            rule: rule.clone(),
            event_key: event_key.clone(),
            user_pk,
            severity,
            body: body.to_string(),
            created,
        });
        Ok(())
    }

    /// Queue a checked `send_email` effect, in the rule's savepoint.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_email(
        &self,
        rule: &str,
        event_key: &str,
        to: &[String],
        cc: &[String],
        bcc: &[String],
        subject: &str,
        body: &str,
    ) -> Result<(), RuntimeError> {
        self.before_write()?;
        self.flush_appends()?;
        self.store.insert_outbox(rule, event_key, to, cc, bcc, subject, body).map(|_| ())
    }

    /// Queue a checked `webhook` effect, in the rule's savepoint.
    pub(super) fn webhook(
        &self,
        rule: &str,
        event_key: &str,
        url: &str,
        method: &str,
        headers: &str,
        body: &str,
    ) -> Result<(), RuntimeError> {
        self.before_write()?;
        self.flush_appends()?;
        self.store.insert_webhook(rule, event_key, url, method, headers, body).map(|_| ())
    }
}
