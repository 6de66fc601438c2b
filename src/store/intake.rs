//! `herald serve`'s durable intake: the `herald_intake` table (this file
//! owns it). An HTTP request's events are inserted in one transaction,
//! together with the dead letters of its malformed lines, before the
//! request is answered; the engine's writer deletes the rows it processed
//! in the transaction that applies their effects (`Store::intake_done`).
//! Also the read-only counts `/metrics` reports from the store.

use super::herald::{insert_dead_letter_on, is_processed, totals, DeadLetter};
use super::{describe_sqlite, sql_err, OutboxCounts, Store, StoreError};
use crate::diag::RuntimeError;
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a serve connection waits for the write lock, in microseconds
/// (set from `--wait` when the intake opens; one value per process).
static WAIT_MICROS: AtomicU64 = AtomicU64::new(5_000_000);

/// The poll interval of [`prompt_busy`].
const BUSY_POLL_MICROS: u64 = 250;

/// SQLite's default busy handler sleeps 1, 2, 5, 10 … up to 100 ms between
/// tries. In the service the intake's commits and the engine's batches take
/// the write lock turn about, hundreds of times a second, and each short wait
/// then became a sleep of tens of milliseconds (p50 latency of ~200 ms in
/// the benchmark). Polling every 250 µs keeps a wait as long as the lock is
/// actually held.
fn prompt_busy(tries: i32) -> bool {
    let waited = tries.max(0) as u64 * BUSY_POLL_MICROS;
    if waited >= WAIT_MICROS.load(Ordering::Relaxed) {
        return false;
    }
    std::thread::sleep(Duration::from_micros(BUSY_POLL_MICROS));
    true
}

/// An event waiting in the intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeRow {
    pub seq: i64,
    pub raw: String,
    /// When it was acknowledged (Unix nanoseconds).
    pub received_ns: i64,
}

/// What became of one event offered to the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued under this sequence number.
    Queued(i64),
    /// Already waiting in the intake, or already processed: not queued again.
    Duplicate,
}

/// Totals of Herald's tables, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Firings per rule name.
    pub firings: BTreeMap<String, u64>,
    pub dead_letters: u64,
    pub rule_errors: u64,
    /// Events in the intake not processed yet.
    pub intake: u64,
    /// Email rows by status.
    pub email: OutboxCounts,
    /// Webhook rows by status (given-up rows count as `failed`).
    pub webhook: OutboxCounts,
}

/// A connection of its own for the HTTP side (intake writes and metrics
/// reads), beside the engine writer's [`Store`].
pub struct IntakeStore {
    conn: Connection,
}

impl IntakeStore {
    /// Opens a store that [`Store::open`] has initialised.
    pub fn open(path: &Path, wait: Duration) -> Result<IntakeStore, StoreError> {
        let open_err = |m: String| StoreError::Open { path: path.display().to_string(), message: m };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(describe_sqlite(&e)))?;
        WAIT_MICROS.store(wait.as_micros().min(u64::MAX as u128) as u64, Ordering::Relaxed);
        conn.busy_handler(Some(prompt_busy)).map_err(|e| open_err(describe_sqlite(&e)))?;
        // An acknowledgment promises durability: the commit must reach the disk.
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| open_err(describe_sqlite(&e)))?;
        let has: bool = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'herald_intake')", [], |r| r.get(0))
            .map_err(|e| open_err(describe_sqlite(&e)))?;
        if !has {
            return Err(open_err("the store has no intake table (open it with `Store::open` first)".into()));
        }
        Ok(IntakeStore { conn })
    }

    /// Records one request in one transaction: each `(identity, line)` is
    /// queued unless an event with that identity is already queued (in this
    /// request too) or processed, and each dead letter is recorded. Nothing
    /// is recorded when it fails.
    pub fn accept(
        &mut self,
        events: &[(String, String)],
        dead: &[DeadLetter<'_>],
        received_ns: i64,
    ) -> Result<Vec<Offer>, RuntimeError> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql_err)?;
        let mut offers = Vec::with_capacity(events.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO herald_intake (event_key, raw, received_ns) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (event_key) DO NOTHING",
                )
                .map_err(sql_err)?;
            for (key, raw) in events {
                if is_processed(&tx, key)? {
                    offers.push(Offer::Duplicate);
                    continue;
                }
                let n = insert.execute(rusqlite::params![key, raw, received_ns]).map_err(sql_err)?;
                offers.push(if n == 1 { Offer::Queued(tx.last_insert_rowid()) } else { Offer::Duplicate });
            }
        }
        for d in dead {
            insert_dead_letter_on(&tx, d)?;
        }
        tx.commit().map_err(sql_err)?;
        Ok(offers)
    }

    /// Every event in the intake, in order (what a restarted service
    /// processes first).
    pub fn pending(&self) -> Result<Vec<IntakeRow>, RuntimeError> {
        let mut st =
            self.conn.prepare("SELECT seq, raw, received_ns FROM herald_intake ORDER BY seq").map_err(sql_err)?;
        let rows = st
            .query_map([], |r| Ok(IntakeRow { seq: r.get(0)?, raw: r.get(1)?, received_ns: r.get(2)? }))
            .map_err(sql_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
    }

    /// The totals `/metrics` reports, read in one read transaction so they
    /// agree with each other.
    pub fn counts(&mut self) -> Result<StoreCounts, RuntimeError> {
        let tx = self.conn.transaction().map_err(sql_err)?;
        let mut c = StoreCounts::default();
        (c.firings, c.dead_letters, c.rule_errors) = totals(&tx)?;
        c.intake = tx
            .query_row("SELECT COUNT(*) FROM herald_intake", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(sql_err)?;
        c.email = super::outbox::counts_all_of(&tx, super::outbox::Kind::Email).map_err(sql_err)?;
        c.webhook = super::outbox::counts_all_of(&tx, super::outbox::Kind::Webhook).map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        Ok(c)
    }
}

impl Store {
    /// Waits for the write lock as the intake's connections do (see
    /// [`prompt_busy`]): for the service's engine connection.
    pub fn prompt_busy(&mut self) -> Result<(), RuntimeError> {
        self.conn.busy_handler(Some(prompt_busy)).map_err(sql_err)
    }

    /// The engine processed every intake event up to `seq`: called inside
    /// the transaction that applied their effects, so the rows leave the
    /// intake exactly when their effects become durable.
    pub fn intake_done(&self, seq: i64) -> Result<u64, RuntimeError> {
        let mut st = self.conn.prepare_cached("DELETE FROM herald_intake WHERE seq <= ?1").map_err(sql_err)?;
        st.execute([seq]).map(|n| n as u64).map_err(sql_err)
    }
}
