//! The PostgreSQL store (`--db postgres://…`): Herald's own tables in the
//! schema `herald` (created when missing), transactions and savepoints,
//! the outbox's leases ([`outbox`]), window/throttle state, the fingerprint
//! check and the normalised dump; entity access goes through [`entity`],
//! the seam where the entity tables (Herald's or authentik's) plug in.
//!
//! One connection (the synchronous `postgres` crate), statements prepared
//! once per SQL text ([`Conn::prepared`]), every value a bound parameter,
//! every identifier a constant of this module or from the validated
//! [`entity::Mapping`]. The connection is opened with a connect timeout
//! (enforced around the whole start-up, so a server that accepts and then
//! says nothing is an error too) and a `statement_timeout`.
//!
//! PostgreSQL aborts a transaction at the first failed statement until a
//! `ROLLBACK TO SAVEPOINT`; the engine rolls a failed rule back to its
//! savepoint, which is exactly what makes the rest of the batch usable
//! again (tests/pg_core.rs checks a rule error mid-batch).

pub(crate) mod entity;
pub(crate) mod outbox;
mod tables;

use super::backend::{Backend, OpenOptions};
use super::{
    Checkpoint, DeadLetter, EntryKind, FiringRow, Kind, LoadError, LoadMode, LoadStats, NotificationRow, OutboxCounts,
    OutboxEntry, ProcessedRow, RecipientKey, SourceCursor, SourceEvent, Stamp, StateEntry, StoreError,
};
use crate::decode::fnv1a_128;
use crate::diag::{Code, RuntimeError};
use crate::ir::{self, Expr, QueryKind};
use crate::schema::Schema;
use crate::types::EntityId;
use crate::value::{format_timestamp_store, now_nanos, Row, Value};
use entity::Mapping;
use postgres::types::ToSql;
use postgres::{Client, Statement};
use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A source's recorded events, in cursor order (`SourceCursor::from_rows`).
pub(crate) const CURSOR_SQL: &str = "SELECT created_us, event_uuid, line FROM herald.herald_source_event \
     WHERE source_key = $1 ORDER BY created_us, event_uuid COLLATE \"C\"";

/// The PostgreSQL schema holding Herald's tables.
pub(crate) const NAMESPACE: &str = "herald";

/// The store's format version, kept in `herald_meta` (as on SQLite).
const STORE_FORMAT: &str = "1";

/// A statement that runs longer than this is cancelled by the server.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL failure in words.
pub(crate) fn describe_pg(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("PostgreSQL: {}", db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            if db.code() == &postgres::error::SqlState::QUERY_CANCELED {
                s.push_str(" (the statement ran into the statement timeout)");
            }
            s
        }
        None => {
            let mut s = format!("PostgreSQL: {e}");
            if let Some(src) = std::error::Error::source(e) {
                let src = src.to_string();
                if !s.contains(&src) {
                    s.push_str(&format!(": {src}"));
                }
            }
            s
        }
    }
}

/// A failed statement as the engine reports it (a store failure).
pub(crate) fn pg_err(e: postgres::Error) -> RuntimeError {
    RuntimeError::new(Code::StoreFailure, format!("the store failed: {}", describe_pg(&e)))
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Connect to `url` with `timeout` for the whole start-up (TCP connect,
/// TLS-less handshake, authentication) and a server-side statement timeout.
pub(crate) fn connect(url: &str, timeout: Duration) -> Result<Client, StoreError> {
    let open_err = |message: String| StoreError::Open { path: redact(url), message };
    let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| open_err(describe_pg(&e)))?;
    let timeout = timeout.max(Duration::from_secs(1));
    config.connect_timeout(timeout);
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name("herald");
    }
    // Ours first: a `-c` the URL's own `options` repeats wins.
    let ms = STATEMENT_TIMEOUT.as_millis();
    let options = match config.get_options() {
        Some(theirs) => format!("-c statement_timeout={ms} -c lock_timeout={ms} {theirs}"),
        None => format!("-c statement_timeout={ms} -c lock_timeout={ms}"),
    };
    config.options(&options);
    // `connect_timeout` bounds the TCP connect only: a server (or anything
    // else) that accepts and then never answers the start-up would hang
    // `connect`. Connecting on a thread of its own bounds the whole of it;
    // on a timeout the thread is left to fail on its own.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("herald-pg-connect".into())
        .spawn(move || {
            let _ = tx.send(config.connect(postgres::NoTls));
        })
        .map_err(|e| open_err(format!("cannot start connecting: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(open_err(describe_pg(&e))),
        Err(_) => Err(open_err(format!(
            "the server did not complete the connection within {} s (is it a PostgreSQL server, and up?)",
            timeout.as_secs()
        ))),
    }
}

/// The connection and its prepared statements (one per SQL text).
pub(crate) struct Conn {
    client: Client,
    cache: HashMap<String, Statement>,
}

impl Conn {
    pub(crate) fn new(client: Client) -> Conn {
        Conn { client, cache: HashMap::new() }
    }

    /// The client, for statements that are not worth caching (DDL).
    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// `sql` prepared once per connection.
    pub(crate) fn prepared(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(st) = self.cache.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql)?;
        self.cache.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Execute a cached statement; the number of rows it touched.
    pub(crate) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, RuntimeError> {
        let st = self.prepared(sql).map_err(pg_err)?;
        self.client.execute(&st, params).map_err(pg_err)
    }

    /// Rows of a cached statement.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, RuntimeError> {
        let st = self.prepared(sql).map_err(pg_err)?;
        self.client.query(&st, params).map_err(pg_err)
    }

    /// At most one row of a cached statement.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<postgres::Row>, RuntimeError> {
        let st = self.prepared(sql).map_err(pg_err)?;
        self.client.query_opt(&st, params).map_err(pg_err)
    }

    /// A statement without parameters or result (transaction control).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), RuntimeError> {
        self.client.batch_execute(sql).map_err(pg_err)
    }
}

/// Text for a PostgreSQL `text` column, which cannot hold U+0000 (SQLite's
/// can): a NUL from event data (a dead letter's line, an email body) becomes
/// U+FFFD instead of failing the statement, and with it the run.
pub(crate) fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn now() -> String {
    format_timestamp_store(now_nanos())
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// A `u64` count or line number as PostgreSQL's bigint.
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The store on a PostgreSQL server.
pub struct PgStore {
    conn: RefCell<Conn>,
    schema: Arc<Schema>,
    mapping: Mapping,
    fingerprint: String,
    in_txn: Cell<bool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connect to `url`, create the schema `herald` and Herald's tables when
    /// missing, the entity tables through [`entity::create_tables`], and
    /// record the schema fingerprint; all in one transaction.
    pub fn open(url: &str, schema: Arc<Schema>, options: OpenOptions) -> Result<PgStore, StoreError> {
        let mut client = connect(url, options.wait)?;
        let mapping = match &options.mapping {
            None => Mapping::herald(schema.clone())?,
            Some(super::backend::EntityMapping::Authentik { tenant }) => {
                Mapping::authentik(&mut client, schema.clone(), tenant).map_err(|e| match e {
                    StoreError::Sql(message) => StoreError::Open { path: redact(url), message },
                    e => e,
                })?
            }
        };
        let fingerprint = format!("{:016x}", super::fnv1a(&mapping.fingerprint_text()));
        let store =
            PgStore { conn: RefCell::new(Conn::new(client)), schema, mapping, fingerprint, in_txn: Cell::new(false) };
        let open_err = |e: StoreError| match e {
            StoreError::Sql(message) => StoreError::Open { path: redact(url), message },
            e => e,
        };
        store.create_tables().map_err(open_err)?;
        Ok(store)
    }

    /// The connection (for the entity seam and the tests of this module).
    pub(crate) fn client(&self) -> RefMut<'_, Conn> {
        self.conn.borrow_mut()
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let sql_err = |e: RuntimeError| StoreError::Sql(e.message);
        let mut c = self.client();
        c.batch("BEGIN").map_err(sql_err)?;
        let r = (|| -> Result<(), StoreError> {
            // Two processes creating the schema at once would race on the
            // catalog (`CREATE … IF NOT EXISTS` is not safe against a
            // concurrent creation): one at a time.
            c.batch("SELECT pg_advisory_xact_lock(7250845912374012399)").map_err(sql_err)?;
            tables::create(&mut c)?;
            entity::create_tables(&mut c, &self.mapping)?;
            let fp = self.fingerprint.as_str();
            c.execute(
                "INSERT INTO herald.herald_meta (key, value) VALUES ('schema_fingerprint', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE herald_meta.value <> excluded.value",
                &[&fp],
            )
            .map_err(sql_err)?;
            c.execute(
                "INSERT INTO herald.herald_meta (key, value) VALUES ('store_format', $1) ON CONFLICT (key) DO NOTHING",
                &[&STORE_FORMAT],
            )
            .map_err(sql_err)?;
            Ok(())
        })();
        match r {
            Ok(()) => c.batch("COMMIT").map_err(sql_err),
            Err(e) => {
                let _ = c.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, RuntimeError> {
        self.client().execute(sql, params)
    }

    /// `INSERT … RETURNING id` of a cached statement.
    fn insert_id(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<i64, RuntimeError> {
        let row = self.client().query_opt(sql, params)?;
        row.map(|r| r.get::<_, i64>(0))
            .ok_or_else(|| RuntimeError::new(Code::StoreFailure, "the store returned no id for a new row"))
    }

    /// Savepoint names are fixed words of the engine; quoted all the same.
    fn savepoint_sql(verb: &str, name: &str) -> String {
        format!("{verb} {}", super::quote(name))
    }
}

impl Backend for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }
    fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn failed_read_aborts_transaction(&self) -> bool {
        true
    }

    fn begin(&self) -> Result<(), RuntimeError> {
        self.client().batch("BEGIN")?;
        self.in_txn.set(true);
        Ok(())
    }
    fn commit(&self) -> Result<(), RuntimeError> {
        let r = self.client().batch("COMMIT");
        self.in_txn.set(false);
        r
    }
    fn rollback(&self) -> Result<(), RuntimeError> {
        let r = self.client().batch("ROLLBACK");
        self.in_txn.set(false);
        r
    }
    fn in_transaction(&self) -> bool {
        self.in_txn.get()
    }
    fn savepoint(&self, name: &str) -> Result<(), RuntimeError> {
        self.client().batch(&Self::savepoint_sql("SAVEPOINT", name))
    }
    fn release(&self, name: &str) -> Result<(), RuntimeError> {
        self.client().batch(&Self::savepoint_sql("RELEASE SAVEPOINT", name))
    }
    fn rollback_to(&self, name: &str) -> Result<(), RuntimeError> {
        // As on SQLite: afterwards the savepoint no longer exists.
        let mut c = self.client();
        c.batch(&Self::savepoint_sql("ROLLBACK TO SAVEPOINT", name))?;
        c.batch(&Self::savepoint_sql("RELEASE SAVEPOINT", name))
    }

    fn ensure_indexes(&self, program: &ir::Program) -> Result<(), StoreError> {
        entity::ensure_indexes(&mut self.client(), &self.mapping, program)
    }
    fn load_fixtures_with(&mut self, json: &str, mode: LoadMode) -> Result<LoadStats, Vec<LoadError>> {
        entity::load_fixtures(&mut self.conn.borrow_mut(), &self.mapping, json, mode)
    }

    fn insert_notification(
        &self,
        rule: &str,
        event_key: &str,
        user_pk: &Value,
        severity: &str,
        body: &str,
    ) -> Result<Option<i64>, RuntimeError> {
        entity::insert_notification(&mut self.client(), &self.mapping, rule, event_key, user_pk, severity, body)
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
        self.insert_id(
            "INSERT INTO herald.herald_outbox (rule, event_uuid, to_addrs, cc, bcc, subject, body, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &rule,
                &text(event_key),
                &json_list(to),
                &json_list(cc),
                &json_list(bcc),
                &text(subject),
                &text(body),
                &now(),
            ],
        )
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
        self.insert_id(
            "INSERT INTO herald.herald_outbox (kind, rule, event_uuid, to_addrs, subject, url, method, headers, body, created) \
             VALUES ('webhook', $1, $2, '[]', '', $3, $4, $5, $6, $7) RETURNING id",
            &[&rule, &text(event_key), &text(url), &text(method), &text(headers), &text(body), &now()],
        )
    }
    fn insert_firing(&self, rule: &str, event_key: &str, line: u64) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald.herald_firing (rule, event_uuid, fired_at, line) VALUES ($1, $2, $3, $4)",
            &[&rule, &text(event_key), &now(), &big(line)],
        )?;
        Ok(())
    }
    fn notification_key(&self, user_pk: &Value) -> Result<RecipientKey, RuntimeError> {
        // Checked now, so a bad key is the rule's error as on SQLite, not a
        // failure of the batch's insert (which would end the run).
        entity::check_notification_key(&self.mapping, user_pk)?;
        Ok(RecipientKey::of_value(user_pk))
    }
    fn insert_notifications(&self, rows: &[NotificationRow]) -> Result<u64, RuntimeError> {
        entity::insert_notifications(&mut self.client(), &self.mapping, rows)
    }
    fn insert_firings(&self, rows: &[FiringRow]) -> Result<(), RuntimeError> {
        if rows.is_empty() {
            return Ok(());
        }
        // One statement for the batch (a round trip per row was most of a
        // firing's cost); `ORDER BY n` keeps the ids in buffer order.
        let mut stamp = Stamp::default();
        let events: Vec<std::borrow::Cow<'_, str>> = rows.iter().map(|r| text(&r.event_key)).collect();
        let rules: Vec<&str> = rows.iter().map(|r| &*r.rule).collect();
        let events: Vec<&str> = events.iter().map(|e| &**e).collect();
        let times: Vec<String> = rows.iter().map(|r| stamp.at(r.fired_at).to_string()).collect();
        let lines: Vec<i64> = rows.iter().map(|r| big(r.line)).collect();
        self.exec(
            "INSERT INTO herald.herald_firing (rule, event_uuid, fired_at, line) \
             SELECT r.rule, r.ev, r.at, r.line FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
             WITH ORDINALITY AS r(rule, ev, at, line, n) ORDER BY r.n",
            &[&rules, &events, &times, &lines],
        )?;
        Ok(())
    }
    fn mark_processed_many(&self, rows: &[ProcessedRow]) -> Result<(), RuntimeError> {
        if rows.is_empty() {
            return Ok(());
        }
        // The batch's keys are distinct, but two may become one here (NUL
        // is stored as U+FFFD), and one INSERT … ON CONFLICT may not touch a
        // row twice: merge them as two `mark_processed` calls would (the
        // first row's line and time, the last rule set).
        let mut stamp = Stamp::default();
        let mut at: HashMap<std::borrow::Cow<'_, str>, usize> = HashMap::with_capacity(rows.len());
        let (mut keys, mut lines, mut times, mut sets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in rows {
            let key = text(&r.event_key);
            match at.get(&key) {
                Some(&i) => sets[i] = r.rule_set,
                None => {
                    at.insert(key.clone(), keys.len());
                    keys.push(key);
                    lines.push(big(r.line));
                    times.push(stamp.at(r.processed_at).to_string());
                    sets.push(r.rule_set);
                }
            }
        }
        let keys: Vec<&str> = keys.iter().map(|k| &**k).collect();
        self.exec(
            "INSERT INTO herald.herald_processed (event_key, line, processed_at, rule_set) \
             SELECT r.k, r.line, r.at, r.rs FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) \
             WITH ORDINALITY AS r(k, line, at, rs, n) ORDER BY r.n \
             ON CONFLICT (event_key) DO UPDATE SET rule_set = excluded.rule_set",
            &[&keys, &lines, &times, &sets],
        )?;
        Ok(())
    }
    fn insert_dead_letter(&self, d: &DeadLetter<'_>) -> Result<(), RuntimeError> {
        // As on SQLite: the same line of the same input again is not
        // recorded twice.
        self.exec(
            "INSERT INTO herald.herald_dead_letter (source, line, raw, error, created, raw_length, raw_hash) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS \
             (SELECT 1 FROM herald.herald_dead_letter WHERE source = $1 AND line = $2 \
              AND (raw_hash = $7 OR (raw_hash IS NULL AND raw = $3)))",
            &[&text(d.source), &big(d.line), &text(d.raw), &text(d.error), &now(), &big(d.length), &d.hash],
        )?;
        Ok(())
    }
    fn unresolved_dead_letters(&self, source: &str) -> Result<Vec<u64>, RuntimeError> {
        let rows = self.client().query(
            "SELECT DISTINCT line FROM herald.herald_dead_letter WHERE source = $1 AND resolved IS NULL ORDER BY line",
            &[&text(source)],
        )?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0).max(0) as u64).collect())
    }
    fn resolve_dead_letters(&self, source: &str, line: u64) -> Result<u64, RuntimeError> {
        self.exec(
            "UPDATE herald.herald_dead_letter SET resolved = $3 WHERE source = $1 AND line = $2 AND resolved IS NULL",
            &[&text(source), &big(line), &now()],
        )
    }
    fn insert_rule_error(
        &self,
        rule: &str,
        event_key: &str,
        code: &str,
        message: &str,
        line: u64,
    ) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald.herald_rule_error (rule, event_uuid, code, message, created, line) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&rule, &text(event_key), &code, &text(message), &now(), &big(line)],
        )?;
        Ok(())
    }
    fn processed_rule_set(&self, event_key: &str) -> Result<Option<Option<i64>>, RuntimeError> {
        let row = self
            .client()
            .query_opt("SELECT rule_set FROM herald.herald_processed WHERE event_key = $1", &[&text(event_key)])?;
        Ok(row.map(|r| r.get::<_, Option<i64>>(0)))
    }
    fn prefers_bulk_lookups(&self) -> bool {
        true
    }
    fn processed_rule_sets(&self, event_keys: &[&str]) -> Result<Vec<Option<Option<i64>>>, RuntimeError> {
        let mut found = vec![None; event_keys.len()];
        if event_keys.is_empty() {
            return Ok(found);
        }
        let keys: Vec<std::borrow::Cow<'_, str>> = event_keys.iter().map(|k| text(k)).collect();
        let keys: Vec<&str> = keys.iter().map(|k| &**k).collect();
        let rows = self.client().query(
            "SELECT k.n, p.rule_set FROM unnest($1::text[]) WITH ORDINALITY AS k(key, n) \
             JOIN herald.herald_processed AS p ON p.event_key = k.key",
            &[&keys],
        )?;
        for r in &rows {
            let n: i64 = r.get(0);
            if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| found.get_mut(i)) {
                *slot = Some(r.get::<_, Option<i64>>(1));
            }
        }
        Ok(found)
    }
    fn mark_processed(&self, event_key: &str, line: u64, rule_set: i64) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald.herald_processed (event_key, line, processed_at, rule_set) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (event_key) DO UPDATE SET rule_set = excluded.rule_set",
            &[&text(event_key), &big(line), &now(), &rule_set],
        )?;
        Ok(())
    }
    fn rule_set_id(&self, names: &[&str]) -> Result<i64, RuntimeError> {
        let mut sorted: Vec<&str> = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let rules = serde_json::to_string(&sorted).unwrap_or_else(|_| "[]".into());
        let hash = format!("{:032x}", fnv1a_128(rules.as_bytes()));
        let select = "SELECT id, rules FROM herald.herald_rule_set WHERE hash = $1";
        // Several workers may meet a new rule set at once: one at a time
        // looks it up and gives it the next id (the lock lasts to the
        // commit of the transaction that inserted it).
        self.client().query_opt("SELECT pg_advisory_xact_lock(7250845912374012400)", &[])?;
        let found = self.client().query_opt(select, &[&hash])?;
        let (id, stored): (i64, String) = match found {
            Some(r) => (r.get(0), r.get(1)),
            None => {
                // max + 1, as SQLite's rowid: the id is shown in
                // `herald_processed`, and a sequence would skip the values
                // of rolled-back transactions.
                let id = self.insert_id(
                    "INSERT INTO herald.herald_rule_set (id, hash, rules) \
                     SELECT COALESCE(MAX(id), 0) + 1, $1, $2 FROM herald.herald_rule_set RETURNING id",
                    &[&hash, &rules],
                )?;
                (id, rules.clone())
            }
        };
        if stored != rules {
            return Err(RuntimeError::new(Code::StoreFailure, format!("two rule sets share the hash {hash}")));
        }
        Ok(id)
    }
    fn rule_set(&self, id: i64) -> Result<Vec<String>, RuntimeError> {
        let row = self.client().query_opt("SELECT rules FROM herald.herald_rule_set WHERE id = $1", &[&id])?;
        let text: String = row
            .map(|r| r.get(0))
            .ok_or_else(|| RuntimeError::new(Code::StoreFailure, format!("the store has no rule set {id}")))?;
        serde_json::from_str(&text)
            .map_err(|e| RuntimeError::new(Code::StoreFailure, format!("rule set {id} is not a list of names: {e}")))
    }
    fn checkpoint(&self, source_key: &str) -> Result<Option<Checkpoint>, RuntimeError> {
        let row = self.client().query_opt(
            "SELECT line, \"offset\", last_hash, prefix_hash FROM herald.herald_checkpoint WHERE source_key = $1",
            &[&source_key],
        )?;
        Ok(row.map(|r| Checkpoint {
            line: r.get::<_, i64>(0).max(0) as u64,
            offset: r.get::<_, i64>(1).max(0) as u64,
            last_hash: r.get(2),
            prefix_hash: r.get(3),
        }))
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
        self.exec(
            "INSERT INTO herald.herald_checkpoint (source_key, source, line, \"offset\", last_hash, updated, prefix_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source_key) DO UPDATE SET source = excluded.source, \
             line = excluded.line, \"offset\" = excluded.\"offset\", last_hash = excluded.last_hash, \
             updated = excluded.updated, prefix_hash = excluded.prefix_hash",
            &[&source_key, &text(source), &big(line), &big(offset), &last_hash, &now(), &prefix_hash],
        )?;
        Ok(())
    }

    fn outbox(&self, status: Option<&str>) -> Result<Vec<OutboxEntry>, RuntimeError> {
        outbox::entries(&mut self.client(), status)
    }
    fn outbox_counts(&self) -> Result<OutboxCounts, RuntimeError> {
        outbox::counts(&mut self.client(), None, false)
    }
    fn outbox_counts_of(&self, kind: Kind) -> Result<OutboxCounts, RuntimeError> {
        outbox::counts(&mut self.client(), Some(kind), false)
    }

    fn state_mark(&self, rule: &str, clause: u32) -> Result<Option<i128>, RuntimeError> {
        let row = self.client().query_opt(
            "SELECT watermark FROM herald.herald_state_mark WHERE rule = $1 AND clause = $2",
            &[&rule, &i64::from(clause)],
        )?;
        Ok(row.map(|r| super::state::parse_time(&r.get::<_, String>(0))))
    }
    fn set_state_mark(&self, rule: &str, clause: u32, watermark: i128) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald.herald_state_mark (rule, clause, watermark) VALUES ($1, $2, $3) \
             ON CONFLICT (rule, clause) DO UPDATE SET watermark = excluded.watermark",
            &[&rule, &i64::from(clause), &super::state::time_text(watermark)],
        )?;
        Ok(())
    }
    fn state_entries(&self, rule: &str, clause: u32, key: &str, after: i128) -> Result<Vec<StateEntry>, RuntimeError> {
        // `time` is fixed-width digits: "C" collation keeps it in time order
        // whatever the database's collation.
        let rows = if after == i128::MIN {
            // Every entry of the key (a shared clause, engine::state): no
            // bound on `time`, which could lead the planner to the time
            // index and a scan of the whole clause.
            self.client().query(
                "SELECT kind, time, value FROM herald.herald_state_entry \
                 WHERE rule = $1 AND clause = $2 AND key = $3 ORDER BY time COLLATE \"C\", seq",
                &[&rule, &i64::from(clause), &text(key)],
            )?
        } else {
            self.client().query(
                "SELECT kind, time, value FROM herald.herald_state_entry \
                 WHERE rule = $1 AND clause = $2 AND key = $3 AND time COLLATE \"C\" > $4 ORDER BY time COLLATE \"C\", seq",
                &[&rule, &i64::from(clause), &text(key), &super::state::time_text(after)],
            )?
        };
        Ok(rows
            .iter()
            .map(|r| StateEntry {
                kind: EntryKind::parse(r.get::<_, &str>(0)),
                time: super::state::parse_time(r.get::<_, &str>(1)),
                value: r.get(2),
            })
            .collect())
    }
    fn insert_state_entry(&self, rule: &str, clause: u32, key: &str, entry: &StateEntry) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald.herald_state_entry (rule, clause, key, kind, time, value) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&rule, &i64::from(clause), &text(key), &entry.kind.as_str(), &super::state::time_text(entry.time), &entry.value.as_deref().map(text)],
        )?;
        Ok(())
    }
    fn delete_state_kind(&self, rule: &str, clause: u32, key: &str, kind: EntryKind) -> Result<(), RuntimeError> {
        self.exec(
            "DELETE FROM herald.herald_state_entry WHERE rule = $1 AND clause = $2 AND key = $3 AND kind = $4",
            &[&rule, &i64::from(clause), &text(key), &kind.as_str()],
        )?;
        Ok(())
    }
    fn sweep_state(&self, rule: &str, clause: u32, upto: i128) -> Result<(), RuntimeError> {
        self.exec(
            "DELETE FROM herald.herald_state_entry WHERE rule = $1 AND clause = $2 AND time COLLATE \"C\" <= $3",
            &[&rule, &i64::from(clause), &super::state::time_text(upto)],
        )?;
        Ok(())
    }

    fn lock_shared_state(&self) -> Result<(), RuntimeError> {
        // One row: transactions that touch state take it lazily, at their
        // first stateful clause, and hold it to their commit. One lock for
        // all clauses is what makes a lazily taken lock free of deadlocks
        // between workers (two locks taken in different orders could wait
        // on each other); transactions that touch no state never wait.
        self.client().query_opt("SELECT name FROM herald.herald_state_lock WHERE name = 'state' FOR UPDATE", &[])?;
        Ok(())
    }
    fn state_mark_floor(&self, mark_prefix: &str, clause: u32) -> Result<Option<i128>, RuntimeError> {
        // `left(…) =` rather than LIKE: rule names may hold `_`, a LIKE
        // wildcard.
        let row = self.client().query_opt(
            "SELECT min(watermark COLLATE \"C\") FROM herald.herald_state_mark \
             WHERE clause = $2 AND (rule = $1 OR left(rule, length($1) + 2) = $1 || '@p')",
            &[&mark_prefix, &i64::from(clause)],
        )?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)).map(|w| super::state::parse_time(&w)))
    }
    fn source_partitions(&self, source_key: &str) -> Result<Option<u32>, RuntimeError> {
        let row = self
            .client()
            .query_opt("SELECT max(parts) FROM herald.herald_partition WHERE source_key = $1", &[&source_key])?;
        Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)).map(|n| n.clamp(0, i64::from(u32::MAX)) as u32))
    }
    fn fence_partitions(&self, source_key: &str, worker: &str, parts: &[(u32, i64)]) -> Result<(), RuntimeError> {
        let ids: Vec<i64> = parts.iter().map(|(p, _)| i64::from(*p)).collect();
        // FOR UPDATE: a worker claiming one of these rows waits for this
        // transaction's end, and then reads the cursor it recorded.
        let rows = self.client().query(
            "SELECT part, owner, epoch FROM herald.herald_partition WHERE source_key = $1 AND part = ANY($2) \
             ORDER BY part FOR UPDATE",
            &[&source_key, &ids],
        )?;
        for (part, epoch) in parts {
            let row = rows.iter().find(|r| r.get::<_, i64>(0) == i64::from(*part));
            let (owner, now): (Option<String>, i64) = match row {
                Some(r) => (r.get(1), r.get(2)),
                None => (None, -1),
            };
            if owner.as_deref() != Some(worker) || now != *epoch {
                return Err(RuntimeError::new(
                    Code::StoreFailure,
                    format!(
                        "this worker ({worker}) lost partition {part} of the source (its lease is now held by {}); \
                         the batch is not committed, and the partition's events are left to its new holder",
                        owner.as_deref().unwrap_or("nobody")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn source_cursor(&self, source_key: &str) -> Result<SourceCursor, RuntimeError> {
        let rows = self.client().query(CURSOR_SQL, &[&source_key])?;
        Ok(SourceCursor::from_rows(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2)))))
    }
    fn source_advance(&self, source_key: &str, events: &[SourceEvent], forget_before: i64) -> Result<(), RuntimeError> {
        for e in events {
            self.exec(
                "INSERT INTO herald.herald_source_event (source_key, event_uuid, created_us, line) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (source_key, event_uuid) DO NOTHING",
                &[&source_key, &e.event_uuid, &e.created_us, &(e.line as i64)],
            )?;
        }
        // The newest row is never older than `forget_before`, so the cursor
        // survives the prune (see `store::cursor`).
        self.exec(
            "DELETE FROM herald.herald_source_event WHERE source_key = $1 AND created_us < $2",
            &[&source_key, &forget_before],
        )?;
        Ok(())
    }

    fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        entity::lookup(&mut self.client(), &self.mapping, entity, key)
    }
    fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        entity::lookup_many(&mut self.client(), &self.mapping, entity, keys)
    }
    fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError> {
        entity::related(&mut self.client(), &self.mapping, entity, key, field)
    }
    fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&Expr>,
        eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        // Outer values first, without the connection: `eval` may read the
        // store itself (a nested query).
        let (sql, params) = entity::query_sql(&self.mapping, kind, entity, filter, eval)?;
        entity::run_query(&mut self.client(), &self.mapping, kind, entity, &sql, &params)
    }
    fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        entity::set_field(&mut self.client(), &self.mapping, entity, key, field, path, value)
    }
    fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        entity::append(&mut self.client(), &self.mapping, entity, key, field, path, value)
    }
    fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError> {
        entity::remove(&mut self.client(), &self.mapping, entity, key, field, path)
    }
    fn upsert(&self, entity: EntityId, key: &Value, fields: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError> {
        entity::upsert(&mut self.client(), &self.mapping, entity, key, fields)
    }
    fn delete(&self, entity: EntityId, key: &Value) -> Result<bool, RuntimeError> {
        entity::delete(&mut self.client(), &self.mapping, entity, key)
    }
    fn link(&self, entity: EntityId, key: &Value, field: usize, target: &Value, add: bool) -> Result<(), RuntimeError> {
        entity::link(&mut self.client(), &self.mapping, entity, key, field, target, add)
    }

    fn try_dump(&self) -> Result<String, RuntimeError> {
        let mut c = self.client();
        let mut out = entity::dump_entities(&mut c, &self.mapping)?;
        tables::dump(&mut c, &mut out)?;
        Ok(out)
    }

    fn intake_done(&self, _seq: i64) -> Result<u64, RuntimeError> {
        Err(RuntimeError::new(Code::StoreFailure, "`herald serve` needs a SQLite store for now"))
    }
}
