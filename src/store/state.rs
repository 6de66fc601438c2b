//! The state of windows and throttles: `herald_state_mark`,
//! `herald_state_entry`. This file owns both tables; the engine's state
//! cache (`engine::state`) is their only caller, always inside the batch
//! transaction and the rule's savepoint.
//!
//! Times are event times in nanoseconds, stored as fixed-width decimal text
//! offset to be positive (`time_text`): event times span years 1 to 9999,
//! more than an SQLite integer holds in nanoseconds, and text order is then
//! time order, which the range deletes rely on.

use super::{sql_err, Store};
use crate::diag::RuntimeError;
use rusqlite::OptionalExtension;

pub(super) const STATE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS herald_state_mark (
    rule      TEXT    NOT NULL,
    clause    INTEGER NOT NULL,
    watermark TEXT    NOT NULL,   -- the latest event time the clause has seen
    PRIMARY KEY (rule, clause)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS herald_state_entry (
    rule   TEXT    NOT NULL,
    clause INTEGER NOT NULL,
    key    TEXT    NOT NULL,      -- canonical text of the `by` values
    kind   TEXT    NOT NULL CHECK (kind IN ('event', 'fired', 'suppressed')),
    time   TEXT    NOT NULL,      -- event time (see store::state)
    value  TEXT                   -- a window's `distinct` value, canonical text
);
CREATE INDEX IF NOT EXISTS herald_state_entry_key ON herald_state_entry (rule, clause, key);
CREATE INDEX IF NOT EXISTS herald_state_entry_time ON herald_state_entry (rule, clause, time);
";

/// Offset that makes every event time (years 1 to 9999) positive.
const OFFSET: i128 = 1_000_000_000_000_000_000_000;

pub(super) fn time_text(t: i128) -> String {
    format!("{:023}", t + OFFSET)
}

pub(super) fn parse_time(s: &str) -> i128 {
    s.parse::<i128>().map(|t| t - OFFSET).unwrap_or(i128::MIN)
}

/// What a stored entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An event a window recorded.
    Event,
    /// A firing of the rule, for a throttle.
    Fired,
    /// An event a throttle stopped.
    Suppressed,
}

impl EntryKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            EntryKind::Event => "event",
            EntryKind::Fired => "fired",
            EntryKind::Suppressed => "suppressed",
        }
    }
    pub(super) fn parse(s: &str) -> EntryKind {
        match s {
            "fired" => EntryKind::Fired,
            "suppressed" => EntryKind::Suppressed,
            _ => EntryKind::Event,
        }
    }
}

/// One stored entry of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    pub kind: EntryKind,
    pub time: i128,
    pub value: Option<String>,
}

impl Store {
    /// The clause's watermark; `None` when it has no state at all.
    pub fn state_mark(&self, rule: &str, clause: u32) -> Result<Option<i128>, RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT watermark FROM herald_state_mark WHERE rule = ?1 AND clause = ?2")
            .map_err(sql_err)?;
        let w: Option<String> =
            st.query_row(rusqlite::params![rule, clause], |r| r.get(0)).optional().map_err(sql_err)?;
        Ok(w.map(|w| parse_time(&w)))
    }

    pub fn set_state_mark(&self, rule: &str, clause: u32, watermark: i128) -> Result<(), RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO herald_state_mark (rule, clause, watermark) VALUES (?1, ?2, ?3)
                 ON CONFLICT (rule, clause) DO UPDATE SET watermark = excluded.watermark",
            )
            .map_err(sql_err)?;
        st.execute(rusqlite::params![rule, clause, time_text(watermark)]).map_err(sql_err)?;
        Ok(())
    }

    /// The entries of one key with time after `after`, oldest first.
    pub fn state_entries(
        &self,
        rule: &str,
        clause: u32,
        key: &str,
        after: i128,
    ) -> Result<Vec<StateEntry>, RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT kind, time, value FROM herald_state_entry
                 WHERE rule = ?1 AND clause = ?2 AND key = ?3 AND time > ?4 ORDER BY time, rowid",
            )
            .map_err(sql_err)?;
        let rows = st
            .query_map(rusqlite::params![rule, clause, key, time_text(after)], |r| {
                Ok(StateEntry {
                    kind: EntryKind::parse(&r.get::<_, String>(0)?),
                    time: parse_time(&r.get::<_, String>(1)?),
                    value: r.get(2)?,
                })
            })
            .map_err(sql_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
    }

    pub fn insert_state_entry(
        &self,
        rule: &str,
        clause: u32,
        key: &str,
        entry: &StateEntry,
    ) -> Result<(), RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO herald_state_entry (rule, clause, key, kind, time, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql_err)?;
        st.execute(rusqlite::params![rule, clause, key, entry.kind.as_str(), time_text(entry.time), entry.value])
            .map_err(sql_err)?;
        Ok(())
    }

    /// Forget every entry of one kind of a key (a throttle's suppressed
    /// events, once the rule fires again).
    pub fn delete_state_kind(&self, rule: &str, clause: u32, key: &str, kind: EntryKind) -> Result<(), RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM herald_state_entry WHERE rule = ?1 AND clause = ?2 AND key = ?3 AND kind = ?4")
            .map_err(sql_err)?;
        st.execute(rusqlite::params![rule, clause, key, kind.as_str()]).map_err(sql_err)?;
        Ok(())
    }

    /// Prune: delete the clause's entries with time at or before `upto`.
    pub fn sweep_state(&self, rule: &str, clause: u32, upto: i128) -> Result<(), RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM herald_state_entry WHERE rule = ?1 AND clause = ?2 AND time <= ?3")
            .map_err(sql_err)?;
        st.execute(rusqlite::params![rule, clause, time_text(upto)]).map_err(sql_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_text_orders_like_time() {
        let times = [-62_135_596_800_000_000_000i128, -1, 0, 1, 1_700_000_000_000_000_000, 253_402_300_799_999_999_999];
        for w in times.windows(2) {
            assert!(time_text(w[0]) < time_text(w[1]), "{} {}", w[0], w[1]);
            assert_eq!(parse_time(&time_text(w[0])), w[0]);
        }
    }
}
