//! The outbox on PostgreSQL: the writer's reads (`entries`, `counts`) and a
//! sender's connection ([`PgOutbox`]: claim under a lease, renew, mark),
//! with the same statements and meaning as `store::outbox` on SQLite.
//!
//! A claim is one statement, `UPDATE … WHERE id IN (SELECT … FOR UPDATE
//! SKIP LOCKED) RETURNING …`: two senders claiming at once lock disjoint
//! rows, so each row goes to one of them, and neither waits for the other.

use super::{connect, Conn};
use crate::diag::RuntimeError;
use crate::store::outbox::{AttemptFailure, Due, Kind, ListError, OutboxCounts, OutboxListRow, OutboxRow};
use crate::store::{OutboxEntry, StoreError};
use postgres::types::ToSql;
use std::cell::RefCell;
use std::time::Duration;

const ROW_COLS: &str =
    "id, rule, event_uuid, to_addrs, cc, bcc, subject, body, attempts, created, kind, url, method, headers";

fn text(r: &postgres::Row, i: usize) -> String {
    r.get::<_, Option<String>>(i).unwrap_or_default()
}

fn outbox_row(r: &postgres::Row) -> OutboxRow {
    OutboxRow {
        id: r.get(0),
        rule: text(r, 1),
        event_uuid: text(r, 2),
        to_addrs: text(r, 3),
        cc: text(r, 4),
        bcc: text(r, 5),
        subject: text(r, 6),
        body: text(r, 7),
        attempts: r.get(8),
        created: text(r, 9),
        kind: text(r, 10),
        url: text(r, 11),
        method: text(r, 12),
        headers: text(r, 13),
    }
}

fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// Outbox rows, oldest first; only those with `status` when given.
pub(super) fn entries(c: &mut Conn, status: Option<&str>) -> Result<Vec<OutboxEntry>, RuntimeError> {
    let rows = c.query(
        "SELECT id, rule, event_uuid, to_addrs, cc, bcc, subject, body, status, attempts, last_error, \
                created, sent_at, next_attempt_at \
         FROM herald.herald_outbox WHERE $1::text IS NULL OR status = $1 ORDER BY id",
        &[&status],
    )?;
    Ok(rows
        .iter()
        .map(|r| OutboxEntry {
            id: r.get(0),
            rule: r.get(1),
            event_key: r.get(2),
            to: parse_list(r.get(3)),
            cc: parse_list(r.get(4)),
            bcc: parse_list(r.get(5)),
            subject: r.get(6),
            body: r.get(7),
            status: r.get(8),
            attempts: r.get(9),
            last_error: r.get(10),
            created: r.get(11),
            sent_at: r.get(12),
            next_attempt_at: r.get(13),
        })
        .collect())
}

/// Row counts by status: of every row (`kind` `None`), or of one kind with
/// rows given up left out, or (`all`) of one kind with them in.
pub(super) fn counts(c: &mut Conn, kind: Option<Kind>, all: bool) -> Result<OutboxCounts, RuntimeError> {
    let rows = match kind {
        None => c.query("SELECT status, COUNT(*) FROM herald.herald_outbox GROUP BY status", &[])?,
        Some(k) if all => c.query(
            "SELECT status, COUNT(*) FROM herald.herald_outbox WHERE kind = $1 GROUP BY status",
            &[&k.as_str()],
        )?,
        Some(k) => c.query(
            "SELECT status, COUNT(*) FROM herald.herald_outbox WHERE kind = $1 AND given_up_at IS NULL GROUP BY status",
            &[&k.as_str()],
        )?,
    };
    let mut out = OutboxCounts::default();
    for r in rows {
        let n = r.get::<_, i64>(1).max(0) as u64;
        match r.get::<_, &str>(0) {
            "pending" => out.pending += n,
            "failed" => out.failed += n,
            "sent" => out.sent += n,
            _ => {}
        }
    }
    Ok(out)
}

fn store_err(e: RuntimeError) -> StoreError {
    StoreError::Sql(e.message)
}

fn due_parts(due: Due<'_>) -> (bool, &str) {
    match due {
        Due::At(t) => (true, t),
        Due::Any => (false, ""),
    }
}

/// A sender's connection to the outbox on a PostgreSQL server.
pub struct PgOutbox {
    conn: RefCell<Conn>,
}

impl std::fmt::Debug for PgOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOutbox").finish_non_exhaustive()
    }
}

impl PgOutbox {
    /// Connect to a store made by `db init`/`run` (its `herald_outbox` must
    /// exist: a sender creates nothing).
    pub(crate) fn open(url: &str, wait: Duration) -> Result<PgOutbox, StoreError> {
        let client = connect(url, wait)?;
        let out = PgOutbox { conn: RefCell::new(Conn::new(client)) };
        let exists = out
            .conn
            .borrow_mut()
            .query_opt("SELECT to_regclass('herald.herald_outbox') IS NOT NULL", &[])
            .map_err(store_err)?
            .is_some_and(|r| r.get::<_, bool>(0));
        if !exists {
            return Err(StoreError::Open {
                path: super::redact(url),
                message: "it is not a Herald store (it has no `herald.herald_outbox` table; run `herald db init`)"
                    .into(),
            });
        }
        Ok(out)
    }

    fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.conn.borrow_mut().execute(sql, params).map_err(store_err)
    }

    fn count(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<usize, StoreError> {
        let row = self.conn.borrow_mut().query_opt(sql, params).map_err(store_err)?;
        Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as usize)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn claim_of(
        &self,
        kind: Kind,
        owner: &str,
        due: Due<'_>,
        now: &str,
        until: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let (due_only, due_at) = due_parts(due);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One statement is one transaction (autocommit): the rows are
        // leased when it returns.
        let sql = format!(
            "UPDATE herald.herald_outbox SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM herald.herald_outbox \
                 WHERE status IN ('pending', 'failed') AND id > $3 AND kind = $8 AND given_up_at IS NULL \
                   AND (lease_until IS NULL OR lease_until < $4) \
                   AND (NOT $5 OR status = 'pending' OR next_attempt_at IS NULL OR next_attempt_at <= $6) \
                 ORDER BY id LIMIT $7 FOR UPDATE SKIP LOCKED) \
             RETURNING {ROW_COLS}"
        );
        let rows = self
            .conn
            .borrow_mut()
            .query(&sql, &[&owner, &until, &after, &now, &due_only, &due_at, &limit, &kind.as_str()])
            .map_err(store_err)?;
        let mut rows: Vec<OutboxRow> = rows.iter().map(outbox_row).collect();
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    pub(crate) fn renew(&self, id: i64, owner: &str, until: &str) -> Result<Option<OutboxRow>, StoreError> {
        let sql = format!(
            "UPDATE herald.herald_outbox SET lease_until = $3 \
             WHERE id = $1 AND lease_owner = $2 AND status <> 'sent' RETURNING {ROW_COLS}"
        );
        let row = self.conn.borrow_mut().query_opt(&sql, &[&id, &owner, &until]).map_err(store_err)?;
        Ok(row.as_ref().map(outbox_row))
    }

    pub(crate) fn mark_sent(&self, id: i64, owner: &str, now: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "UPDATE herald.herald_outbox \
             SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL, \
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL \
             WHERE id = $2 AND lease_owner = $3 AND status <> 'sent'",
            &[&now, &id, &owner],
        )?;
        Ok(n > 0)
    }

    pub(crate) fn mark_failed(&self, id: i64, owner: &str, error: &str, next: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "UPDATE herald.herald_outbox \
             SET status = 'failed', attempts = attempts + 1, last_error = $1, next_attempt_at = $2, \
                 lease_owner = NULL, lease_until = NULL \
             WHERE id = $3 AND lease_owner = $4 AND status <> 'sent'",
            &[&error, &next, &id, &owner],
        )?;
        Ok(n > 0)
    }

    pub(crate) fn mark_failed_all(&self, owner: &str, failures: &[(i64, String, String)]) -> Result<usize, StoreError> {
        if failures.is_empty() {
            return Ok(0);
        }
        self.conn.borrow_mut().batch("BEGIN").map_err(store_err)?;
        let r = (|| {
            let mut n = 0;
            for (id, error, next) in failures {
                n += usize::from(self.mark_failed(*id, owner, error, next)?);
            }
            Ok(n)
        })();
        let mut c = self.conn.borrow_mut();
        match r {
            Ok(n) => c.batch("COMMIT").map(|()| n).map_err(store_err),
            Err(e) => {
                let _ = c.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    pub(crate) fn release(&self, owner: &str) -> Result<usize, StoreError> {
        self.exec(
            "UPDATE herald.herald_outbox SET lease_owner = NULL, lease_until = NULL \
             WHERE lease_owner = $1 AND status <> 'sent'",
            &[&owner],
        )
        .map(|n| n as usize)
    }

    pub(crate) fn count_due_of(&self, kind: Kind, due: Due<'_>) -> Result<usize, StoreError> {
        let (due_only, due_at) = due_parts(due);
        self.count(
            "SELECT COUNT(*) FROM herald.herald_outbox WHERE status IN ('pending', 'failed') \
             AND kind = $3 AND given_up_at IS NULL \
             AND (NOT $1 OR status = 'pending' OR next_attempt_at IS NULL OR next_attempt_at <= $2)",
            &[&due_only, &due_at, &kind.as_str()],
        )
    }

    pub(crate) fn leased_elsewhere_of(&self, kind: Kind, owner: &str, now: &str) -> Result<usize, StoreError> {
        self.count(
            "SELECT COUNT(*) FROM herald.herald_outbox WHERE status <> 'sent' AND lease_until >= $2 \
             AND lease_owner IS DISTINCT FROM $1 AND kind = $3",
            &[&owner, &now, &kind.as_str()],
        )
    }

    pub(crate) fn counts(&self, kind: Option<Kind>, all: bool) -> Result<OutboxCounts, StoreError> {
        counts(&mut self.conn.borrow_mut(), kind, all).map_err(store_err)
    }

    pub(crate) fn given_up(&self, kind: Kind) -> Result<usize, StoreError> {
        self.count(
            "SELECT COUNT(*) FROM herald.herald_outbox WHERE kind = $1 AND given_up_at IS NOT NULL",
            &[&kind.as_str()],
        )
    }

    pub(crate) fn mark_delivered(&self, id: i64, owner: &str, now: &str, status: u16) -> Result<bool, StoreError> {
        let n = self.exec(
            "UPDATE herald.herald_outbox \
             SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL, \
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, \
                 response_status = $4, response_excerpt = NULL \
             WHERE id = $2 AND lease_owner = $3 AND status <> 'sent'",
            &[&now, &id, &owner, &i64::from(status)],
        )?;
        Ok(n > 0)
    }

    pub(crate) fn mark_attempt_failed(
        &self,
        id: i64,
        owner: &str,
        failure: &AttemptFailure<'_>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let status = failure.status.map(i64::from);
        let n = self.exec(
            "UPDATE herald.herald_outbox \
             SET status = 'failed', attempts = attempts + 1, last_error = $1, next_attempt_at = $2, \
                 response_status = $3, response_excerpt = $4, \
                 given_up_at = CASE WHEN $2::text IS NULL THEN $5 END, \
                 lease_owner = NULL, lease_until = NULL \
             WHERE id = $6 AND lease_owner = $7 AND status <> 'sent'",
            &[&failure.error, &failure.retry_at, &status, &failure.excerpt, &now, &id, &owner],
        )?;
        Ok(n > 0)
    }

    pub(crate) fn for_each(&self, f: &mut dyn FnMut(OutboxListRow) -> std::io::Result<()>) -> Result<(), ListError> {
        let rows = self
            .conn
            .borrow_mut()
            .query(
                "SELECT id, rule, event_uuid, to_addrs, cc, bcc, subject, status, attempts, last_error, \
                        created, sent_at, next_attempt_at, lease_owner, lease_until, \
                        kind, url, method, response_status, response_excerpt, given_up_at \
                 FROM herald.herald_outbox ORDER BY id",
                &[],
            )
            .map_err(|e| ListError::Store(store_err(e)))?;
        for r in &rows {
            f(OutboxListRow {
                id: r.get(0),
                rule: text(r, 1),
                event_uuid: text(r, 2),
                to_addrs: text(r, 3),
                cc: text(r, 4),
                bcc: text(r, 5),
                subject: text(r, 6),
                status: text(r, 7),
                attempts: r.get(8),
                last_error: r.get(9),
                created: text(r, 10),
                sent_at: r.get(11),
                next_attempt_at: r.get(12),
                lease_owner: r.get(13),
                lease_until: r.get(14),
                kind: text(r, 15),
                url: r.get(16),
                method: r.get(17),
                response_status: r.get(18),
                response_excerpt: r.get(19),
                given_up_at: r.get(20),
            })?;
        }
        Ok(())
    }
}
