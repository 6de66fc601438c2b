//! The durable cursor of a database event source (`herald run --source
//! postgres://…`): the `herald_source_event` table (this file owns it).
//!
//! One row per event handed to the engine whose `created` lies within the
//! source's lookback window behind the newest one. The rows are the cursor
//! (the newest `(created, event_uuid)` and the last line number) and the
//! set of events already taken from the window, which is what lets a
//! re-read of the window pick up rows that committed late without taking
//! anything twice (docs/postgres-source.md). They are written by the
//! engine's writer inside the batch transaction that applies the events'
//! effects (`RunOptions::in_commit`), so a crash never skips or repeats one.

use super::{sql_err, Store};
use crate::diag::RuntimeError;

pub(super) const CURSOR_TABLES: &str = "
CREATE TABLE IF NOT EXISTS herald_source_event (
    source_key  TEXT    NOT NULL,   -- names the database, schema and table read
    event_uuid  TEXT    NOT NULL,   -- canonical lower-case dashed text
    created_us  INTEGER NOT NULL,   -- the row's `created`, Unix microseconds
    line        INTEGER NOT NULL,   -- the line number the event was given
    PRIMARY KEY (source_key, event_uuid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS herald_source_event_created ON herald_source_event (source_key, created_us);
";

/// One event taken from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEvent {
    pub event_uuid: String,
    pub created_us: i64,
    pub line: u64,
    /// Its partition, when several workers share the source (store::workers).
    pub part: Option<u32>,
}

/// What a source's table says when a run starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceCursor {
    /// The newest event taken, by `(created, event_uuid)`.
    pub last: Option<(i64, String)>,
    /// The highest line number given (0: none).
    pub last_line: u64,
    /// Every event remembered in the window (the newest included).
    pub seen: Vec<(i64, String)>,
}

impl SourceCursor {
    /// The cursor a source's recorded events make: `(created_us,
    /// event_uuid, line)` rows in `(created_us, event_uuid)` order (both
    /// backends and the lease thread read them so).
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = (i64, String, i64)>) -> SourceCursor {
        let mut cursor = SourceCursor::default();
        for (created, uuid, line) in rows {
            cursor.last_line = cursor.last_line.max(line.max(0) as u64);
            cursor.last = Some((created, uuid.clone()));
            cursor.seen.push((created, uuid));
        }
        cursor
    }
}

impl Store {
    /// The recorded cursor of a source.
    pub fn source_cursor(&self, source_key: &str) -> Result<SourceCursor, RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT created_us, event_uuid, line FROM herald_source_event WHERE source_key = ?1 \
                 ORDER BY created_us, event_uuid",
            )
            .map_err(sql_err)?;
        let rows = st
            .query_map([source_key], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
            .map_err(sql_err)?;
        let rows = rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)?;
        Ok(SourceCursor::from_rows(rows))
    }

    /// Records `events` as taken and forgets those older than
    /// `forget_before` (Unix microseconds); called inside the batch
    /// transaction that applies their effects.
    pub fn source_advance(
        &self,
        source_key: &str,
        events: &[SourceEvent],
        forget_before: i64,
    ) -> Result<(), RuntimeError> {
        let mut ins = self
            .conn
            .prepare_cached(
                "INSERT INTO herald_source_event (source_key, event_uuid, created_us, line) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (source_key, event_uuid) DO NOTHING",
            )
            .map_err(sql_err)?;
        for e in events {
            ins.execute(rusqlite::params![source_key, e.event_uuid, e.created_us, e.line as i64]).map_err(sql_err)?;
        }
        // The newest row is never older than `forget_before` (the caller
        // derives it from the newest `created` minus the window), so the
        // cursor itself survives the prune.
        let mut del = self
            .conn
            .prepare_cached("DELETE FROM herald_source_event WHERE source_key = ?1 AND created_us < ?2")
            .map_err(sql_err)?;
        del.execute(rusqlite::params![source_key, forget_before]).map_err(sql_err)?;
        Ok(())
    }
}
