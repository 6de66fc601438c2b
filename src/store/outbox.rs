//! The outbox table (`herald_outbox`) as delivery sees it: claiming due rows
//! under a lease, recording results, counting and listing.
//!
//! Every SQL statement about delivery state lives here, so that a sender
//! (email today, webhooks and other stores later) only calls operations:
//! [`OutboxStore::claim`], [`OutboxStore::renew`], [`OutboxStore::mark_sent`],
//! [`OutboxStore::mark_failed`], [`OutboxStore::release`]. Nothing here knows
//! what a row delivers.
//!
//! # Leases
//! Several senders may work on one outbox at once (`herald run --smtp`
//! beside `herald outbox flush`, two flushes). A sender first *claims* rows:
//! in one `BEGIN IMMEDIATE` transaction, before any network IO, it writes its
//! owner token and a `lease_until` time into rows that are unsent, due, and
//! not leased by anyone else (no lease, or an expired one). Only the holder
//! may record a result, and every result clears the lease. Right before each
//! attempt the holder [renews](OutboxStore::renew) the lease for the length
//! of one attempt, which also proves it still holds the row: a sender that
//! was stuck past its lease, whose rows another sender took over, finds out
//! there and skips them. A sender that died leaves its rows leased until the
//! lease expires; then any sender takes them over.
//!
//! Rows may have been written (or edited) by hand, so every column is read
//! leniently: a blob or number where text was expected becomes text.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::pg::outbox::PgOutbox;
use super::StoreError;

/// One outbox row, as a sender needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub rule: String,
    pub event_uuid: String,
    pub to_addrs: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    pub created: String,
    /// `email` or `webhook` (text: rows may have been written by hand).
    pub kind: String,
    /// Webhooks: the URL, the method and the headers (a JSON object).
    pub url: String,
    pub method: String,
    pub headers: String,
}

/// Every column of a row, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxListRow {
    pub id: i64,
    pub rule: String,
    pub event_uuid: String,
    pub to_addrs: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created: String,
    pub sent_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<String>,
    pub kind: String,
    pub url: Option<String>,
    pub method: Option<String>,
    pub response_status: Option<i64>,
    pub response_excerpt: Option<String>,
    pub given_up_at: Option<String>,
}

/// How many rows are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub failed: u64,
    pub sent: u64,
}

impl OutboxCounts {
    /// Rows not sent yet (`pending` + `failed`).
    pub fn unsent(&self) -> u64 {
        self.pending + self.failed
    }
}

/// Which unsent rows a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due<'a> {
    /// `pending` rows, and `failed` rows whose `next_attempt_at` is not
    /// after this time (store format).
    At(&'a str),
    /// Every unsent row, whatever its `next_attempt_at`.
    Any,
}

/// The columns added to stores made before leases and webhooks existed.
/// Adding columns that are nullable or have a default is the only kind of
/// change Herald's tables allow; existing rows are emails.
const ADDED_COLUMNS: [(&str, &str); 9] = [
    ("lease_owner", "TEXT"),
    ("lease_until", "TEXT"),
    ("kind", "TEXT NOT NULL DEFAULT 'email' CHECK (kind IN ('email', 'webhook'))"),
    ("url", "TEXT"),
    ("method", "TEXT"),
    ("headers", "TEXT"),
    ("response_status", "INTEGER"),
    ("response_excerpt", "TEXT"),
    ("given_up_at", "TEXT"),
];

/// What an outbox row delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Email,
    Webhook,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Webhook => "webhook",
        }
    }
}

/// Adds the columns this module needs to an existing `herald_outbox`.
/// Called inside the store's schema transaction and by
/// [`OutboxStore::open`].
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let mut have = Vec::new();
    {
        let mut st = conn.prepare("SELECT name FROM pragma_table_info('herald_outbox')")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            have.push(r.get::<_, String>(0)?);
        }
    }
    if have.is_empty() {
        return Ok(());
    }
    for (name, ty) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE herald_outbox ADD COLUMN {name} {ty}"))?;
        }
    }
    Ok(())
}

fn text(v: SqlValue) -> String {
    match v {
        SqlValue::Null => String::new(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(f) => f.to_string(),
        SqlValue::Text(s) => s,
        SqlValue::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

fn opt_text(v: SqlValue) -> Option<String> {
    match v {
        SqlValue::Null => None,
        v => Some(text(v)),
    }
}

fn int(v: SqlValue) -> i64 {
    match v {
        SqlValue::Integer(i) => i,
        SqlValue::Real(f) => f as i64,
        SqlValue::Text(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

const ROW_COLS: &str =
    "id, rule, event_uuid, to_addrs, cc, bcc, subject, body, attempts, created, kind, url, method, headers";

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        rule: text(r.get(1)?),
        event_uuid: text(r.get(2)?),
        to_addrs: text(r.get(3)?),
        cc: text(r.get(4)?),
        bcc: text(r.get(5)?),
        subject: text(r.get(6)?),
        body: text(r.get(7)?),
        attempts: int(r.get(8)?),
        created: text(r.get(9)?),
        kind: text(r.get(10)?),
        url: text(r.get(11)?),
        method: text(r.get(12)?),
        headers: text(r.get(13)?),
    })
}

/// One sentence for an SQLite failure; a lock held by another process says
/// so instead of SQLite's terse "database is locked".
fn sql(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => StoreError::Sql(
            "the database is locked by another process (a running `herald run` or `db load`); \
             try again when it is done"
                .to_string(),
        ),
        _ => StoreError::Sql(e.to_string()),
    }
}

/// The words of an error, for a sentence that already says what failed.
fn plain(e: StoreError) -> String {
    match e {
        StoreError::Sql(m) | StoreError::Schema(m) => m,
        e => e.to_string(),
    }
}

/// A connection to a store's outbox, independent of the schema: `herald
/// outbox list|flush` need no policies, and `herald run` delivers on its own
/// connection so that a slow server never holds the writer's transaction.
pub struct OutboxStore {
    backend: Backend,
}

/// The store behind an [`OutboxStore`].
enum Backend {
    Sqlite(SqliteOutbox),
    // Boxed: a PostgreSQL client is several times a SQLite connection.
    Pg(Box<PgOutbox>),
}

impl std::fmt::Debug for OutboxStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Sqlite(s) => f.debug_struct("OutboxStore").field("path", &s.conn.path()).finish(),
            Backend::Pg(p) => f.debug_struct("OutboxStore").field("postgres", p).finish(),
        }
    }
}

/// The outbox of a SQLite store.
struct SqliteOutbox {
    conn: Connection,
}

/// How long a sender waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl SqliteOutbox {
    /// Opens an existing store for delivery, adding the lease columns when
    /// the store predates them.
    fn open(path: &Path) -> Result<SqliteOutbox, StoreError> {
        let open_err = |m: String| StoreError::Open { path: path.display().to_string(), message: m };
        if !path.exists() {
            return Err(open_err("there is no such file".into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_err(e.to_string()))?;
        let store = SqliteOutbox { conn };
        store.check_table().map_err(|e| open_err(plain(e)))?;
        migrate(&store.conn).map_err(|e| open_err(plain(sql(e))))?;
        Ok(store)
    }

    /// Opens an existing store only to read it: no migration, no write, no
    /// lock beyond a reader's. Works on a read-only file or directory.
    fn open_read_only(path: &Path) -> Result<SqliteOutbox, StoreError> {
        let open_err = |m: String| StoreError::Open { path: path.display().to_string(), message: m };
        if !path.exists() {
            return Err(open_err("there is no such file".into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_err(e.to_string()))?;
        let probe = conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0));
        let conn = match probe {
            // A WAL database needs its `-shm` file even to be read; in a
            // read-only directory where it does not exist (the last writer
            // closed cleanly and removed it) SQLite cannot create it. No
            // process can be writing such a store, so it is read as
            // immutable (no locks, no `-shm`).
            // (SQLite reports that as CANTOPEN, or as READONLY_CANTINIT.)
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
                ) =>
            {
                let Some(p) = path.to_str() else {
                    return Err(open_err(e.to_string()));
                };
                let uri = format!("file:{}?immutable=1", uri_path(p));
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
                    .map_err(|e| open_err(e.to_string()))?
            }
            _ => conn,
        };
        let store = SqliteOutbox { conn };
        store.check_table().map_err(|e| open_err(plain(e)))?;
        Ok(store)
    }

    fn check_table(&self) -> Result<(), StoreError> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'herald_outbox')",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if exists {
            Ok(())
        } else {
            Err(StoreError::Schema("it is not a Herald store (it has no `herald_outbox` table)".into()))
        }
    }

    /// Whether the store has the lease columns (a read-only store made by an
    /// older Herald has not).
    fn has_leases(&self) -> Result<bool, StoreError> {
        self.has_column("lease_until")
    }

    /// [`claim`](Self::claim) for rows of `kind` (each sender delivers one
    /// kind); a row whose delivery was given up is never claimed.
    #[allow(clippy::too_many_arguments)]
    pub fn claim_of(
        &self,
        kind: Kind,
        owner: &str,
        due: Due<'_>,
        now: &str,
        until: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let (due_only, due_at) = match due {
            Due::At(t) => (true, t),
            Due::Any => (false, ""),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.immediate(|conn| {
            let mut st = conn.prepare_cached(&format!(
                "UPDATE herald_outbox SET lease_owner = ?1, lease_until = ?2 \
                 WHERE id IN (SELECT id FROM herald_outbox \
                     WHERE status IN ('pending', 'failed') AND id > ?3 AND kind = ?8 AND given_up_at IS NULL \
                       AND (lease_until IS NULL OR lease_until < ?4) \
                       AND (NOT ?5 OR status = 'pending' OR next_attempt_at IS NULL OR next_attempt_at <= ?6) \
                     ORDER BY id LIMIT ?7) \
                 RETURNING {ROW_COLS}"
            ))?;
            let rows =
                st.query_map(params![owner, until, after, now, due_only, due_at, limit, kind.as_str()], outbox_row)?;
            let mut rows = rows.collect::<Result<Vec<_>, _>>()?;
            rows.sort_by_key(|r| r.id);
            Ok(rows)
        })
    }

    /// Extends `owner`'s lease on row `id` to `until` and reads the row
    /// again, right before an attempt. `None` when the row is no longer
    /// `owner`'s (another sender took over an expired lease) or was sent.
    pub fn renew(&self, id: i64, owner: &str, until: &str) -> Result<Option<OutboxRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "UPDATE herald_outbox SET lease_until = ?3 \
                 WHERE id = ?1 AND lease_owner = ?2 AND status <> 'sent' RETURNING {ROW_COLS}"
            ))
            .map_err(sql)?;
        st.query_row(params![id, owner, until], outbox_row).optional().map_err(sql)
    }

    /// Records the server's acceptance of `owner`'s row and ends the lease.
    /// Autocommit: once this returns, a crash cannot make the row eligible
    /// again. `false` when `owner` no longer holds the row.
    pub fn mark_sent(&self, id: i64, owner: &str, now: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE herald_outbox \
                 SET status = 'sent', sent_at = ?1, attempts = attempts + 1, last_error = NULL, \
                     next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL \
                 WHERE id = ?2 AND lease_owner = ?3 AND status <> 'sent'",
            )
            .and_then(|mut st| st.execute(params![now, id, owner]))
            .map_err(sql)?;
        Ok(n > 0)
    }

    /// Records a failed attempt of `owner`'s row, when to try again, and
    /// ends the lease. `false` when `owner` no longer holds the row.
    pub fn mark_failed(&self, id: i64, owner: &str, error: &str, next_attempt_at: &str) -> Result<bool, StoreError> {
        mark_failed(&self.conn, id, owner, error, next_attempt_at).map_err(sql)
    }

    /// [`mark_failed`](Self::mark_failed) for many `(id, error, next
    /// attempt)` in one transaction (an outage fails a whole queue at the
    /// cost of one commit). Returns how many rows were recorded; on an
    /// error none is.
    pub fn mark_failed_all(&self, owner: &str, failures: &[(i64, String, String)]) -> Result<usize, StoreError> {
        if failures.is_empty() {
            return Ok(0);
        }
        self.immediate(|conn| {
            let mut n = 0;
            for (id, error, next) in failures {
                n += usize::from(mark_failed(conn, *id, owner, error, next)?);
            }
            Ok(n)
        })
    }

    /// Gives back every lease `owner` holds on unsent rows, unchanged
    /// otherwise (rows claimed but not attempted when a pass stops).
    pub fn release(&self, owner: &str) -> Result<usize, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE herald_outbox SET lease_owner = NULL, lease_until = NULL \
                 WHERE lease_owner = ?1 AND status <> 'sent'",
            )
            .and_then(|mut st| st.execute([owner]))
            .map_err(sql)
    }

    /// [`count_due`](Self::count_due) for rows of `kind` (rows given up
    /// left out).
    pub fn count_due_of(&self, kind: Kind, due: Due<'_>) -> Result<usize, StoreError> {
        let (due_only, due_at) = match due {
            Due::At(t) => (true, t),
            Due::Any => (false, ""),
        };
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM herald_outbox WHERE status IN ('pending', 'failed') \
                 AND kind = ?3 AND given_up_at IS NULL \
                 AND (NOT ?1 OR status = 'pending' OR next_attempt_at IS NULL OR next_attempt_at <= ?2)",
            )
            .and_then(|mut st| st.query_row(params![due_only, due_at, kind.as_str()], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as usize)
            .map_err(sql)
    }

    /// Unsent rows of `kind` another sender holds a live lease on at `now`.
    pub fn leased_elsewhere_of(&self, kind: Kind, owner: &str, now: &str) -> Result<usize, StoreError> {
        if !self.has_leases()? {
            return Ok(0);
        }
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM herald_outbox WHERE status <> 'sent' AND lease_until >= ?2 \
                 AND lease_owner IS NOT ?1 AND kind = ?3",
            )
            .and_then(|mut st| st.query_row(params![owner, now, kind.as_str()], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as usize)
            .map_err(sql)
    }

    /// Row counts by status.
    pub fn counts(&self) -> Result<OutboxCounts, StoreError> {
        counts(&self.conn).map_err(sql)
    }

    /// Row counts by status of one kind; rows given up are left out (they
    /// are counted by [`given_up`](Self::given_up)).
    pub fn counts_of(&self, kind: Kind) -> Result<OutboxCounts, StoreError> {
        counts_of(&self.conn, kind).map_err(sql)
    }

    /// Rows of `kind` whose delivery was given up.
    pub fn given_up(&self, kind: Kind) -> Result<usize, StoreError> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM herald_outbox WHERE kind = ?1 AND given_up_at IS NOT NULL")
            .and_then(|mut st| st.query_row([kind.as_str()], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as usize)
            .map_err(sql)
    }

    /// Records the server's acceptance of `owner`'s webhook row with the
    /// answer's status, and ends the lease. `false` when `owner` no longer
    /// holds the row.
    pub fn mark_delivered(&self, id: i64, owner: &str, now: &str, status: u16) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE herald_outbox \
                 SET status = 'sent', sent_at = ?1, attempts = attempts + 1, last_error = NULL, \
                     next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, \
                     response_status = ?4, response_excerpt = NULL \
                 WHERE id = ?2 AND lease_owner = ?3 AND status <> 'sent'",
            )
            .and_then(|mut st| st.execute(params![now, id, owner, status]))
            .map_err(sql)?;
        Ok(n > 0)
    }

    /// Records a failed attempt of `owner`'s webhook row with what the
    /// server answered (if it answered), and ends the lease. With `retry`
    /// the row is tried again at that time; without, delivery is given up
    /// (`given_up_at` is set and no sender claims the row again). `false`
    /// when `owner` no longer holds the row.
    pub fn mark_attempt_failed(
        &self,
        id: i64,
        owner: &str,
        failure: &AttemptFailure<'_>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE herald_outbox \
                 SET status = 'failed', attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2, \
                     response_status = ?3, response_excerpt = ?4, \
                     given_up_at = CASE WHEN ?2 IS NULL THEN ?5 END, \
                     lease_owner = NULL, lease_until = NULL \
                 WHERE id = ?6 AND lease_owner = ?7 AND status <> 'sent'",
            )
            .and_then(|mut st| {
                st.execute(params![failure.error, failure.retry_at, failure.status, failure.excerpt, now, id, owner])
            })
            .map_err(sql)?;
        Ok(n > 0)
    }

    /// Every row in id order, for listing.
    fn for_each(&self, f: &mut dyn FnMut(OutboxListRow) -> std::io::Result<()>) -> Result<(), ListError> {
        let leases = self.has_leases()?;
        let lease_cols = if leases { "lease_owner, lease_until" } else { "NULL, NULL" };
        // A read-only store made before webhooks has only emails.
        let webhooks = self.has_column("kind")?;
        let webhook_cols = if webhooks {
            "kind, url, method, response_status, response_excerpt, given_up_at"
        } else {
            "'email', NULL, NULL, NULL, NULL, NULL"
        };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, rule, event_uuid, to_addrs, cc, bcc, subject, status, attempts, last_error, \
                        created, sent_at, next_attempt_at, {lease_cols}, {webhook_cols} \
                 FROM herald_outbox ORDER BY id"
            ))
            .map_err(sql)?;
        let mut rows = stmt.query([]).map_err(sql)?;
        while let Some(r) = rows.next().map_err(sql)? {
            let row = (|| -> rusqlite::Result<OutboxListRow> {
                Ok(OutboxListRow {
                    id: r.get(0)?,
                    rule: text(r.get(1)?),
                    event_uuid: text(r.get(2)?),
                    to_addrs: text(r.get(3)?),
                    cc: text(r.get(4)?),
                    bcc: text(r.get(5)?),
                    subject: text(r.get(6)?),
                    status: text(r.get(7)?),
                    attempts: int(r.get(8)?),
                    last_error: opt_text(r.get(9)?),
                    created: text(r.get(10)?),
                    sent_at: opt_text(r.get(11)?),
                    next_attempt_at: opt_text(r.get(12)?),
                    lease_owner: opt_text(r.get(13)?),
                    lease_until: opt_text(r.get(14)?),
                    kind: text(r.get(15)?),
                    url: opt_text(r.get(16)?),
                    method: opt_text(r.get(17)?),
                    response_status: match r.get::<_, SqlValue>(18)? {
                        SqlValue::Null => None,
                        v => Some(int(v)),
                    },
                    response_excerpt: opt_text(r.get(19)?),
                    given_up_at: opt_text(r.get(20)?),
                })
            })()
            .map_err(sql)?;
            f(row)?;
        }
        Ok(())
    }

    fn has_column(&self, name: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM pragma_table_info('herald_outbox') WHERE name = ?1", [name], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n > 0)
            .map_err(sql)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken
    /// first (waiting up to the busy timeout), so the rows `f` reads cannot
    /// change before it writes them.
    fn immediate<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
        match f(&self.conn) {
            Ok(v) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(sql(e))
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(sql(e))
            }
        }
    }
}

impl OutboxStore {
    /// Opens an existing store for delivery: a SQLite file (adding the
    /// lease columns when the store predates them) or, for a `postgres://`
    /// URL, a PostgreSQL store made by `db init`/`run`.
    pub fn open(path: &Path) -> Result<OutboxStore, StoreError> {
        let backend = match postgres_url(path) {
            Some(url) => Backend::Pg(Box::new(PgOutbox::open(url, super::DEFAULT_WAIT)?)),
            None => Backend::Sqlite(SqliteOutbox::open(path)?),
        };
        Ok(OutboxStore { backend })
    }

    /// Opens an existing store only to read it: no migration, no write, no
    /// lock beyond a reader's. Works on a read-only file or directory. (On
    /// PostgreSQL the listing is one read-only statement.)
    pub fn open_read_only(path: &Path) -> Result<OutboxStore, StoreError> {
        let backend = match postgres_url(path) {
            Some(url) => Backend::Pg(Box::new(PgOutbox::open(url, super::DEFAULT_WAIT)?)),
            None => Backend::Sqlite(SqliteOutbox::open_read_only(path)?),
        };
        Ok(OutboxStore { backend })
    }

    /// Claims up to `limit` unsent emails with `id > after` that are `due`
    /// and not leased by another sender (or whose lease expired before
    /// `now`): they are leased to `owner` until `until`. Returns them in id
    /// order. Two senders never claim the same row.
    pub fn claim(
        &self,
        owner: &str,
        due: Due<'_>,
        now: &str,
        until: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.claim_of(Kind::Email, owner, due, now, until, after, limit)
    }

    /// [`claim`](Self::claim) for rows of `kind` (each sender delivers one
    /// kind); a row whose delivery was given up is never claimed.
    #[allow(clippy::too_many_arguments)]
    pub fn claim_of(
        &self,
        kind: Kind,
        owner: &str,
        due: Due<'_>,
        now: &str,
        until: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.claim_of(kind, owner, due, now, until, after, limit),
            Backend::Pg(p) => p.claim_of(kind, owner, due, now, until, after, limit),
        }
    }

    /// Extends `owner`'s lease on row `id` to `until` and reads the row
    /// again, right before an attempt. `None` when the row is no longer
    /// `owner`'s (another sender took over an expired lease) or was sent.
    pub fn renew(&self, id: i64, owner: &str, until: &str) -> Result<Option<OutboxRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.renew(id, owner, until),
            Backend::Pg(p) => p.renew(id, owner, until),
        }
    }

    /// Records the server's acceptance of `owner`'s row and ends the lease
    /// (committed when this returns). `false` when `owner` no longer holds
    /// the row.
    pub fn mark_sent(&self, id: i64, owner: &str, now: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.mark_sent(id, owner, now),
            Backend::Pg(p) => p.mark_sent(id, owner, now),
        }
    }

    /// Records a failed attempt of `owner`'s row, when to try again, and
    /// ends the lease. `false` when `owner` no longer holds the row.
    pub fn mark_failed(&self, id: i64, owner: &str, error: &str, next_attempt_at: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.mark_failed(id, owner, error, next_attempt_at),
            Backend::Pg(p) => p.mark_failed(id, owner, error, next_attempt_at),
        }
    }

    /// [`mark_failed`](Self::mark_failed) for many `(id, error, next
    /// attempt)` in one transaction. Returns how many rows were recorded;
    /// on an error none is.
    pub fn mark_failed_all(&self, owner: &str, failures: &[(i64, String, String)]) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.mark_failed_all(owner, failures),
            Backend::Pg(p) => p.mark_failed_all(owner, failures),
        }
    }

    /// Gives back every lease `owner` holds on unsent rows.
    pub fn release(&self, owner: &str) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.release(owner),
            Backend::Pg(p) => p.release(owner),
        }
    }

    /// How many emails a claim with `due` would consider, leased or not.
    pub fn count_due(&self, due: Due<'_>) -> Result<usize, StoreError> {
        self.count_due_of(Kind::Email, due)
    }

    /// [`count_due`](Self::count_due) for rows of `kind` (rows given up
    /// left out).
    pub fn count_due_of(&self, kind: Kind, due: Due<'_>) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.count_due_of(kind, due),
            Backend::Pg(p) => p.count_due_of(kind, due),
        }
    }

    /// Unsent emails another sender holds a live lease on at `now`.
    pub fn leased_elsewhere(&self, owner: &str, now: &str) -> Result<usize, StoreError> {
        self.leased_elsewhere_of(Kind::Email, owner, now)
    }

    /// Unsent rows of `kind` another sender holds a live lease on at `now`.
    pub fn leased_elsewhere_of(&self, kind: Kind, owner: &str, now: &str) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.leased_elsewhere_of(kind, owner, now),
            Backend::Pg(p) => p.leased_elsewhere_of(kind, owner, now),
        }
    }

    /// Row counts by status.
    pub fn counts(&self) -> Result<OutboxCounts, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.counts(),
            Backend::Pg(p) => p.counts(None, false),
        }
    }

    /// Row counts by status of one kind; rows given up are left out (they
    /// are counted by [`given_up`](Self::given_up)).
    pub fn counts_of(&self, kind: Kind) -> Result<OutboxCounts, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.counts_of(kind),
            Backend::Pg(p) => p.counts(Some(kind), false),
        }
    }

    /// Rows of `kind` whose delivery was given up.
    pub fn given_up(&self, kind: Kind) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.given_up(kind),
            Backend::Pg(p) => p.given_up(kind),
        }
    }

    /// Records the server's acceptance of `owner`'s webhook row with the
    /// answer's status, and ends the lease.
    pub fn mark_delivered(&self, id: i64, owner: &str, now: &str, status: u16) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.mark_delivered(id, owner, now, status),
            Backend::Pg(p) => p.mark_delivered(id, owner, now, status),
        }
    }

    /// Records a failed attempt of `owner`'s webhook row; without a retry
    /// time the row is given up.
    pub fn mark_attempt_failed(
        &self,
        id: i64,
        owner: &str,
        failure: &AttemptFailure<'_>,
        now: &str,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.mark_attempt_failed(id, owner, failure, now),
            Backend::Pg(p) => p.mark_attempt_failed(id, owner, failure, now),
        }
    }

    /// Every row in id order, for listing.
    pub fn for_each(&self, mut f: impl FnMut(OutboxListRow) -> std::io::Result<()>) -> Result<(), ListError> {
        match &self.backend {
            Backend::Sqlite(s) => s.for_each(&mut f),
            Backend::Pg(p) => p.for_each(&mut f),
        }
    }
}

/// The URL when `path` names a PostgreSQL server.
fn postgres_url(path: &Path) -> Option<&str> {
    if super::backend::is_postgres(path) {
        path.to_str()
    } else {
        None
    }
}

/// One failed webhook attempt, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptFailure<'a> {
    pub error: &'a str,
    /// When to try again (store format); `None` gives the row up.
    pub retry_at: Option<&'a str>,
    /// The answer's status, when the server answered.
    pub status: Option<u16>,
    /// The start of the answer's body, when there was one.
    pub excerpt: Option<&'a str>,
}

/// A listing failed: reading the store or writing the output.
#[derive(Debug)]
pub enum ListError {
    Store(StoreError),
    Io(std::io::Error),
}

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListError::Store(e) => write!(f, "{e}"),
            ListError::Io(e) => write!(f, "cannot write the listing: {e}"),
        }
    }
}

impl std::error::Error for ListError {}

impl From<StoreError> for ListError {
    fn from(e: StoreError) -> Self {
        ListError::Store(e)
    }
}

impl From<std::io::Error> for ListError {
    fn from(e: std::io::Error) -> Self {
        ListError::Io(e)
    }
}

fn mark_failed(conn: &Connection, id: i64, owner: &str, error: &str, next: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE herald_outbox \
             SET status = 'failed', attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2, \
                 lease_owner = NULL, lease_until = NULL \
             WHERE id = ?3 AND lease_owner = ?4 AND status <> 'sent'",
        )?
        .execute(params![error, next, id, owner])?;
    Ok(n > 0)
}

/// Row counts by status of one kind (rows given up left out).
pub(crate) fn counts_of(conn: &Connection, kind: Kind) -> rusqlite::Result<OutboxCounts> {
    tally(
        conn,
        "SELECT status, COUNT(*) FROM herald_outbox WHERE kind = ?1 AND given_up_at IS NULL GROUP BY status",
        &[kind.as_str()],
    )
}

/// Row counts of one kind by status, given-up rows included (as
/// `failed`): what `herald serve`'s `/metrics` reports.
pub(crate) fn counts_all_of(conn: &Connection, kind: Kind) -> rusqlite::Result<OutboxCounts> {
    tally(conn, "SELECT status, COUNT(*) FROM herald_outbox WHERE kind = ?1 GROUP BY status", &[kind.as_str()])
}

/// Row counts by status, on any connection to a store.
pub(crate) fn counts(conn: &Connection) -> rusqlite::Result<OutboxCounts> {
    tally(conn, "SELECT status, COUNT(*) FROM herald_outbox GROUP BY status", &[])
}

/// Sums the `(status, count)` rows of `sql` into [`OutboxCounts`].
fn tally(conn: &Connection, sql: &str, args: &[&str]) -> rusqlite::Result<OutboxCounts> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut c = OutboxCounts::default();
    while let Some(r) = rows.next()? {
        let n = r.get::<_, i64>(1)?.max(0) as u64;
        match text(r.get(0)?).as_str() {
            "pending" => c.pending += n,
            "failed" => c.failed += n,
            "sent" => c.sent += n,
            _ => {}
        }
    }
    Ok(c)
}

/// A path in an SQLite URI: `%`, `?` and `#` escaped.
fn uri_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}
