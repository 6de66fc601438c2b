//! The writer's batch buffers (issue 12): the rows every firing writes —
//! its `herald_firing` row, its notifications, its event's replay record —
//! are kept in memory and inserted with multi-row INSERTs (`store::herald`;
//! on PostgreSQL one `unnest` INSERT per table, `store::pg`) inside the batch
//! transaction, before its checkpoint and commit. A firing
//! thus costs no statement of its own, and a rule whose only effects are
//! notifications opens no savepoint at all (it writes nothing to the store
//! while it runs).
//!
//! Why this records exactly the rows the per-firing statements did:
//!
//! - **Same transaction.** Everything is inserted before the commit that
//!   covers the batch's checkpoint, so a crash keeps or loses the rows with
//!   the rest of the batch (invariant 6); stdout and log lines still follow
//!   the commit.
//! - **Same order.** Each table is written only through its buffer, in
//!   buffer order, so ids follow input order as before.
//! - **Rule errors.** A rule's notifications wait in the rule's own buffer
//!   (`RuleStore`) and join the batch only when the rule ends without error;
//!   a failed rule's are dropped, as its savepoint's rows were.
//! - **Recipients.** A notification is stored only if its recipient row
//!   exists, tested by the INSERT itself. Rules change entity rows only
//!   through `RuleStore`, which inserts the buffered notifications before a
//!   rule's first write (before its savepoint opens), so each notification
//!   sees the recipient rows as they were when its rule fired.
//! - **Replay protection.** An event recorded earlier in the batch is found
//!   in the buffer (`processed`) before the store is asked.
//!
//! The buffers are also inserted, between events, once any holds
//! `MAX_BUFFERED` rows, so memory stays bounded whatever `--batch` is.

use crate::diag::RuntimeError;
use crate::store::{Backend, FiringRow, NotificationRow, ProcessedRow};
use std::collections::HashMap;
use std::sync::Arc;

/// Rows a buffer holds before it is written between events.
const MAX_BUFFERED: usize = 4096;

#[derive(Default)]
pub(super) struct Batch {
    notifications: Vec<NotificationRow>,
    firings: Vec<FiringRow>,
    processed: Vec<ProcessedRow>,
    /// Position in `processed` by event key.
    pending: HashMap<Arc<str>, usize>,
    /// Notifications not stored because no recipient row had the key,
    /// since the engine last asked (`take_dropped`).
    dropped: u64,
}

impl Batch {
    /// The rule set of the event's replay record in this batch, if any.
    pub(super) fn processed(&self, event_key: &str) -> Option<i64> {
        self.pending.get(event_key).map(|&i| self.processed[i].rule_set)
    }

    /// Buffer a replay record ([`Store::mark_processed`]'s meaning: a
    /// second record of the same event replaces the rule set).
    pub(super) fn mark_processed(&mut self, event_key: &Arc<str>, line: u64, at: i128, rule_set: i64) {
        if let Some(&i) = self.pending.get(&**event_key) {
            self.processed[i].rule_set = rule_set;
            return;
        }
        self.pending.insert(event_key.clone(), self.processed.len());
        self.processed.push(ProcessedRow { event_key: event_key.clone(), line, processed_at: at, rule_set });
    }

    pub(super) fn fired(&mut self, row: FiringRow) {
        self.firings.push(row);
    }

    /// A rule ended without error: its notifications join the batch.
    pub(super) fn notified(&mut self, rows: &mut Vec<NotificationRow>) {
        self.notifications.append(rows);
    }

    /// Some buffer is over its bound (checked between events).
    pub(super) fn full(&self) -> bool {
        self.notifications.len() >= MAX_BUFFERED
            || self.firings.len() >= MAX_BUFFERED
            || self.processed.len() >= MAX_BUFFERED
    }

    /// Insert the buffered notifications (before any entity write).
    pub(super) fn flush_notifications(&mut self, store: &dyn Backend) -> Result<(), RuntimeError> {
        if !self.notifications.is_empty() {
            self.dropped += store.insert_notifications(&self.notifications)?;
            self.notifications.clear();
        }
        Ok(())
    }

    /// Insert every buffered row (outside any rule's savepoint).
    pub(super) fn flush(&mut self, store: &dyn Backend) -> Result<(), RuntimeError> {
        self.flush_notifications(store)?;
        if !self.firings.is_empty() {
            store.insert_firings(&self.firings)?;
            self.firings.clear();
        }
        if !self.processed.is_empty() {
            store.mark_processed_many(&self.processed)?;
            self.processed.clear();
            self.pending.clear();
        }
        Ok(())
    }

    /// Notifications dropped (no recipient row) since the last call.
    pub(super) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}
