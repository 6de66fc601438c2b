//! Herald's own tables: notifications, the email outbox, firings, dead
//! letters, rule errors, replay protection and checkpoints; and `dump`.

use super::{quote, sql_err, Store};
use crate::decode::fnv1a_128;
use crate::diag::Code;
use crate::diag::RuntimeError;
use crate::value::{format_timestamp_store, now_nanos, Value};
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::OptionalExtension;
use std::fmt::Write as _;

/// Where reading an input stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Lines fully processed.
    pub line: u64,
    /// Bytes fully processed.
    pub offset: u64,
    /// Hash of the last processed line (informative).
    pub last_hash: String,
    /// Hash of the input's first `offset` bytes (16 hex digits); `None` in
    /// checkpoints written before it was kept.
    pub prefix_hash: Option<String>,
}

/// A malformed input line, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    /// The input's name (`-` for standard input).
    pub source: &'a str,
    pub line: u64,
    /// The line, or its start when it is long (lossily decoded).
    pub raw: &'a str,
    /// The whole line's length in bytes.
    pub length: u64,
    /// The whole line's hash (16 hex digits).
    pub hash: &'a str,
    pub error: &'a str,
}

/// Columns added to Herald's tables after their first release, added to
/// older stores when opened: (table, column, declaration).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("herald_dead_letter", "raw_length", "INTEGER"),
    ("herald_dead_letter", "raw_hash", "TEXT"),
    ("herald_dead_letter", "resolved", "TEXT"),
    ("herald_checkpoint", "prefix_hash", "TEXT"),
];

/// A row of `herald_outbox`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub id: i64,
    pub rule: String,
    pub event_key: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created: String,
    pub sent_at: Option<String>,
    pub next_attempt_at: Option<String>,
}

fn now() -> String {
    format_timestamp_store(now_nanos())
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// Columns holding times, shown as `<time>` by `dump`.
pub(super) const TIME_COLUMNS: &[&str] =
    &["created", "fired_at", "sent_at", "updated", "processed_at", "next_attempt_at", "resolved", "given_up_at"];

/// Outbox columns only webhooks use, left out of an email row's dump so
/// that it reads as it did before webhooks existed.
pub(super) const WEBHOOK_COLUMNS: &[&str] =
    &["kind", "url", "method", "headers", "response_status", "response_excerpt", "given_up_at"];

/// Columns left out of the dump: an outbox lease names a sender process
/// and lapses by itself; it is not part of what a store holds.
pub(super) const TRANSIENT_COLUMNS: &[&str] = &["lease_owner", "lease_until"];

/// Herald's tables in dump order, with their ORDER BY.
const HERALD_DUMP: &[(&str, &str)] = &[
    ("herald_notification", "id"),
    ("herald_outbox", "id"),
    ("herald_firing", "id"),
    ("herald_dead_letter", "id"),
    ("herald_rule_error", "id"),
    ("herald_processed", "event_key"),
    ("herald_rule_set", "id"),
    ("herald_checkpoint", "source_key"),
    ("herald_meta", "key"),
    ("herald_state_mark", "rule, clause"),
    ("herald_state_entry", "rule, clause, key, time, kind, value"),
];

const OUTBOX_COLS: &str = "id, rule, event_uuid, to_addrs, cc, bcc, subject, body, status, attempts, last_error, \
                           created, sent_at, next_attempt_at";

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: r.get(0)?,
        rule: r.get(1)?,
        event_key: r.get(2)?,
        to: parse_list(&r.get::<_, String>(3)?),
        cc: parse_list(&r.get::<_, String>(4)?),
        bcc: parse_list(&r.get::<_, String>(5)?),
        subject: r.get(6)?,
        body: r.get(7)?,
        status: r.get(8)?,
        attempts: r.get(9)?,
        last_error: r.get(10)?,
        created: r.get(11)?,
        sent_at: r.get(12)?,
        next_attempt_at: r.get(13)?,
    })
}

fn owned(v: ValueRef<'_>) -> Sql {
    match v {
        ValueRef::Null => Sql::Null,
        ValueRef::Integer(i) => Sql::Integer(i),
        ValueRef::Real(f) => Sql::Real(f),
        ValueRef::Text(t) => Sql::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Sql::Blob(b.to_vec()),
    }
}

/// A value as a JSON scalar for the dump.
fn dump_value(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map(serde_json::Value::Number).unwrap_or_default(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned().into(),
    }
}

/// Add the columns of [`ADDED_COLUMNS`] a store made by an older Herald
/// lacks (inside the transaction that creates the tables).
pub(super) fn add_missing_columns(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    for (table, column, decl) in ADDED_COLUMNS {
        let have: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            [table, column],
            |r| r.get(0),
        )?;
        if !have {
            conn.execute_batch(&format!("ALTER TABLE {} ADD COLUMN {} {decl}", quote(table), quote(column)))?;
        }
    }
    Ok(())
}

impl Store {
    fn exec(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<usize, RuntimeError> {
        let mut st = self.conn.prepare_cached(sql).map_err(sql_err)?;
        st.execute(params).map_err(sql_err)
    }

    /// A `notify` delivery; returns the new row's id, or `None` when no
    /// recipient row has that key: like authentik, a notification for
    /// nobody is dropped (the caller counts it), not stored. `user_pk` is
    /// stored in its own type (an int key as an integer, a uuid as dashed
    /// text).
    pub fn insert_notification(
        &self,
        rule: &str,
        event_key: &str,
        user_pk: &Value,
        severity: &str,
        body: &str,
    ) -> Result<Option<i64>, RuntimeError> {
        // The key is converted to the recipient entity's key type like a
        // lookup key (`"12"` or `12.0` for an int key is 12, a 32-hex uuid is
        // dashed), so notifications join to the recipient's table; a key of
        // the wrong kind (`"abc"`, `1.5`, a list) is R0001, not a row that
        // names nobody.
        let recipient = self
            .schema
            .recipient
            .ok_or_else(|| RuntimeError::new(Code::StoreFailure, "the schema has no recipient entity for `notify`"))?;
        let info = self.ent(recipient)?;
        let key = match user_pk {
            Value::Entity(row) => row.key.clone(),
            v => v.clone(),
        };
        let Some(pk) = self.key_sql(info, &key)? else {
            return Err(RuntimeError::new(Code::RequiredAbsent, "`notify` was given no recipient key"));
        };
        // One statement: the existence check cannot drift from the insert.
        let sql = format!(
            "INSERT INTO herald_notification (rule, event_uuid, user_pk, severity, body, created) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM {} WHERE {} = ?3)",
            info.table, info.key_col
        );
        let n = self.exec(&sql, &[&rule, &event_key, &pk, &severity, &body, &now()])?;
        Ok((n == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// Queue an email; returns the outbox row id.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_outbox(
        &self,
        rule: &str,
        event_key: &str,
        to: &[String],
        cc: &[String],
        bcc: &[String],
        subject: &str,
        body: &str,
    ) -> Result<i64, RuntimeError> {
        self.exec(
            "INSERT INTO herald_outbox (rule, event_uuid, to_addrs, cc, bcc, subject, body, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[&rule, &event_key, &json_list(to), &json_list(cc), &json_list(bcc), &subject, &body, &now()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Queue a webhook (`headers`: a JSON object of names to values);
    /// returns the outbox row id. `to_addrs` and `subject` are an email's
    /// and stay empty.
    pub fn insert_webhook(
        &self,
        rule: &str,
        event_key: &str,
        url: &str,
        method: &str,
        headers: &str,
        body: &str,
    ) -> Result<i64, RuntimeError> {
        self.exec(
            "INSERT INTO herald_outbox (kind, rule, event_uuid, to_addrs, subject, url, method, headers, body, created) \
             VALUES ('webhook', ?1, ?2, '[]', '', ?3, ?4, ?5, ?6, ?7)",
            &[&rule, &event_key, &url, &method, &headers, &body, &now()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record a rule firing (`line`: the input line number).
    pub fn insert_firing(&self, rule: &str, event_key: &str, line: u64) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald_firing (rule, event_uuid, fired_at, line) VALUES (?1, ?2, ?3, ?4)",
            &[&rule, &event_key, &now(), &(line as i64)],
        )?;
        Ok(())
    }

    /// Record a malformed input line. The same line again (same source,
    /// line number and bytes: a replay of the input) is not recorded twice;
    /// another input's line with that number is.
    pub fn insert_dead_letter(&self, d: &DeadLetter<'_>) -> Result<(), RuntimeError> {
        insert_dead_letter_on(&self.conn, d)
    }

    /// Lines of `source` with a dead letter not yet resolved.
    pub fn unresolved_dead_letters(&self, source: &str) -> Result<Vec<u64>, RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT line FROM herald_dead_letter WHERE source = ?1 AND resolved IS NULL ORDER BY line",
            )
            .map_err(sql_err)?;
        let rows = st.query_map([source], |r| r.get::<_, i64>(0)).map_err(sql_err)?;
        rows.map(|r| r.map(|l| l as u64)).collect::<Result<Vec<_>, _>>().map_err(sql_err)
    }

    /// Line `line` of `source` was processed without a dead letter: its
    /// earlier dead letters are resolved. Returns how many.
    pub fn resolve_dead_letters(&self, source: &str, line: u64) -> Result<u64, RuntimeError> {
        let n = self.exec(
            "UPDATE herald_dead_letter SET resolved = ?3 WHERE source = ?1 AND line = ?2 AND resolved IS NULL",
            &[&source, &(line as i64), &now()],
        )?;
        Ok(n as u64)
    }

    /// Record a run-time error of a rule (`code`: an R code).
    pub fn insert_rule_error(
        &self,
        rule: &str,
        event_key: &str,
        code: &str,
        message: &str,
        line: u64,
    ) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald_rule_error (rule, event_uuid, code, message, created, line) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[&rule, &event_key, &code, &message, &now(), &(line as i64)],
        )?;
        Ok(())
    }

    /// Bring Herald's tables of an older store up to date (after the
    /// `CREATE TABLE IF NOT EXISTS`, which leaves existing tables alone).
    pub(super) fn upgrade_herald_tables(&self) -> Result<(), super::StoreError> {
        let has_rule_set: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('herald_processed') WHERE name = 'rule_set')",
            [],
            |r| r.get(0),
        )?;
        if !has_rule_set {
            self.conn.execute_batch("ALTER TABLE herald_processed ADD COLUMN rule_set INTEGER")?;
        }
        Ok(())
    }

    /// The replay record of an event: `None` when it was never processed,
    /// `Some(set)` with the [rule set](Self::rule_set_id) applied to it
    /// (`Some(None)` for a record written before rule sets existed: every
    /// rule counts as applied).
    pub fn processed_rule_set(&self, event_key: &str) -> Result<Option<Option<i64>>, RuntimeError> {
        let mut st =
            self.conn.prepare_cached("SELECT rule_set FROM herald_processed WHERE event_key = ?1").map_err(sql_err)?;
        st.query_row([event_key], |r| r.get::<_, Option<i64>>(0)).optional().map_err(sql_err)
    }

    /// Record the event as processed with the rules of `rule_set` applied
    /// to it. A second call replaces the rule set (a backfill applied more
    /// rules) and keeps the line and time of the first processing.
    pub fn mark_processed(&self, event_key: &str, line: u64, rule_set: i64) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald_processed (event_key, line, processed_at, rule_set) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (event_key) DO UPDATE SET rule_set = excluded.rule_set",
            &[&event_key, &(line as i64), &now(), &rule_set],
        )?;
        Ok(())
    }

    /// The id of the set of these rule names (order and repeats do not
    /// matter), created when new.
    pub fn rule_set_id<S: AsRef<str>>(&self, names: &[S]) -> Result<i64, RuntimeError> {
        let mut sorted: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let rules = serde_json::to_string(&sorted).unwrap_or_else(|_| "[]".into());
        let hash = format!("{:032x}", fnv1a_128(rules.as_bytes()));
        self.exec(
            "INSERT INTO herald_rule_set (hash, rules) VALUES (?1, ?2) ON CONFLICT (hash) DO NOTHING",
            &[&hash, &rules],
        )?;
        let mut st =
            self.conn.prepare_cached("SELECT id, rules FROM herald_rule_set WHERE hash = ?1").map_err(sql_err)?;
        let (id, stored): (i64, String) = st.query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql_err)?;
        // A 128-bit hash collision would merge two sets: refuse rather than
        // skip rules that were never applied.
        if stored != rules {
            return Err(RuntimeError::new(Code::StoreFailure, format!("two rule sets share the hash {hash}")));
        }
        Ok(id)
    }

    /// The rule names of a rule set, sorted.
    pub fn rule_set(&self, id: i64) -> Result<Vec<String>, RuntimeError> {
        let mut st = self.conn.prepare_cached("SELECT rules FROM herald_rule_set WHERE id = ?1").map_err(sql_err)?;
        let text: String = st.query_row([id], |r| r.get(0)).map_err(sql_err)?;
        serde_json::from_str(&text)
            .map_err(|e| RuntimeError::new(Code::StoreFailure, format!("rule set {id} is not a list of names: {e}")))
    }

    /// The resume point of an input, by its fingerprint.
    pub fn checkpoint(&self, source_key: &str) -> Result<Option<Checkpoint>, RuntimeError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT line, \"offset\", last_hash, prefix_hash FROM herald_checkpoint WHERE source_key = ?1",
            )
            .map_err(sql_err)?;
        st.query_row([source_key], |r| {
            Ok(Checkpoint {
                line: r.get::<_, i64>(0)? as u64,
                offset: r.get::<_, i64>(1)? as u64,
                last_hash: r.get(2)?,
                prefix_hash: r.get(3)?,
            })
        })
        .optional()
        .map_err(sql_err)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn set_checkpoint(
        &self,
        source_key: &str,
        source: &str,
        line: u64,
        offset: u64,
        last_hash: &str,
        prefix_hash: &str,
    ) -> Result<(), RuntimeError> {
        self.exec(
            "INSERT INTO herald_checkpoint (source_key, source, line, \"offset\", last_hash, updated, prefix_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (source_key) DO UPDATE SET source = excluded.source, \
             line = excluded.line, \"offset\" = excluded.\"offset\", last_hash = excluded.last_hash, \
             updated = excluded.updated, prefix_hash = excluded.prefix_hash",
            &[&source_key, &source, &(line as i64), &(offset as i64), &last_hash, &now(), &prefix_hash],
        )?;
        Ok(())
    }

    // ---- outbox delivery ----------------------------------------------

    /// Outbox rows, oldest first; only those with `status` when given.
    pub fn outbox(&self, status: Option<&str>) -> Result<Vec<OutboxEntry>, RuntimeError> {
        let sql = format!("SELECT {OUTBOX_COLS} FROM herald_outbox WHERE ?1 IS NULL OR status = ?1 ORDER BY id");
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        let rows = st.query_map([status], outbox_row).map_err(sql_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
    }

    /// Outbox row counts by status (for the run summary).
    pub fn outbox_counts(&self) -> Result<super::OutboxCounts, RuntimeError> {
        super::outbox::counts(&self.conn).map_err(sql_err)
    }

    /// Outbox row counts of one kind (rows given up left out).
    pub fn outbox_counts_of(&self, kind: super::Kind) -> Result<super::OutboxCounts, RuntimeError> {
        super::outbox::counts_of(&self.conn, kind).map_err(sql_err)
    }

    // Delivery state (leases, sent, failed with a retry time) is written
    // only by `store::outbox`, so there is one convention for it.

    // ---- dump -----------------------------------------------------------

    /// A deterministic text dump of every entity table (rows by key, with
    /// many-to-many fields as sorted key lists) and Herald's tables (rows
    /// by id, without the id; times shown as `<time>`). Used to compare
    /// stores in end-to-end and crash tests. On a database failure the
    /// text says so (see [`Store::try_dump`]).
    pub fn dump(&self) -> String {
        self.try_dump().unwrap_or_else(|e| format!("<dump failed: {e}>\n"))
    }

    pub fn try_dump(&self) -> Result<String, RuntimeError> {
        let mut out = String::new();
        for info in &self.ents {
            let sql = format!("SELECT {} FROM {} AS t ORDER BY t.{}", info.select, info.table, info.key_col);
            let mut st = self.conn.prepare(&sql).map_err(sql_err)?;
            let mut rows = st.query([]).map_err(sql_err)?;
            let mut lines = Vec::new();
            while let Some(r) = rows.next().map_err(sql_err)? {
                let mut obj = serde_json::Map::new();
                let key = r.get_ref(0).map_err(sql_err)?;
                obj.insert(info.key_name.clone(), dump_value(key));
                for (n, &i) in info.columns.iter().enumerate() {
                    obj.insert(info.fields[i].name.clone(), dump_value(r.get_ref(n + 1).map_err(sql_err)?));
                }
                let key = owned(key);
                for f in &info.fields {
                    if let Some(j) = &f.join {
                        let sql =
                            format!("SELECT \"target\" FROM {} WHERE \"source\" = ?1 ORDER BY \"target\"", j.table);
                        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
                        let targets = st
                            .query_map([&key], |r| Ok(dump_value(r.get_ref(0)?)))
                            .map_err(sql_err)?
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(sql_err)?;
                        obj.insert(f.name.clone(), serde_json::Value::Array(targets));
                    }
                }
                lines.push(serde_json::Value::Object(obj).to_string());
            }
            let _ = writeln!(out, "== {} ({} rows)", info.name, lines.len());
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        for (table, order) in HERALD_DUMP {
            let sql = format!("SELECT * FROM {} ORDER BY {}", quote(table), quote(order));
            let mut st = self.conn.prepare(&sql).map_err(sql_err)?;
            let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
            let mut rows = st.query([]).map_err(sql_err)?;
            let mut lines = Vec::new();
            let kind_col = names.iter().position(|n| n == "kind").filter(|_| *table == "herald_outbox");
            while let Some(r) = rows.next().map_err(sql_err)? {
                let mut obj = serde_json::Map::new();
                let email = match kind_col {
                    Some(i) => matches!(r.get_ref(i).map_err(sql_err)?, ValueRef::Text(b"email")),
                    None => false,
                };
                for (i, name) in names.iter().enumerate() {
                    if name == "id"
                        || TRANSIENT_COLUMNS.contains(&name.as_str())
                        || (email && WEBHOOK_COLUMNS.contains(&name.as_str()))
                    {
                        continue;
                    }
                    let v = r.get_ref(i).map_err(sql_err)?;
                    let v = if TIME_COLUMNS.contains(&name.as_str()) && !matches!(v, ValueRef::Null) {
                        serde_json::Value::String("<time>".into())
                    } else {
                        dump_value(v)
                    };
                    obj.insert(name.clone(), v);
                }
                lines.push(serde_json::Value::Object(obj).to_string());
            }
            let _ = writeln!(out, "== {table} ({} rows)", lines.len());
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// [`Store::insert_dead_letter`] on any connection (`herald serve`'s intake
/// records the malformed lines of a request on its own).
pub(super) fn insert_dead_letter_on(conn: &rusqlite::Connection, d: &DeadLetter<'_>) -> Result<(), RuntimeError> {
    // Rows written before lines were hashed are recognised by their text.
    let mut st = conn
        .prepare_cached(
            "INSERT INTO herald_dead_letter (source, line, raw, error, created, raw_length, raw_hash) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE NOT EXISTS \
             (SELECT 1 FROM herald_dead_letter WHERE source = ?1 AND line = ?2 \
              AND (raw_hash = ?7 OR (raw_hash IS NULL AND raw = ?3)))",
        )
        .map_err(sql_err)?;
    st.execute(rusqlite::params![d.source, d.line as i64, d.raw, d.error, now(), d.length as i64, d.hash])
        .map_err(sql_err)?;
    Ok(())
}

/// Whether an event with this identity has a replay record.
pub(super) fn is_processed(conn: &rusqlite::Connection, event_key: &str) -> Result<bool, RuntimeError> {
    let mut st = conn.prepare_cached("SELECT 1 FROM herald_processed WHERE event_key = ?1").map_err(sql_err)?;
    Ok(st.query_row([event_key], |_| Ok(())).optional().map_err(sql_err)?.is_some())
}

/// Firings per rule, dead letters and rule errors (for `/metrics`).
pub(super) fn totals(
    conn: &rusqlite::Connection,
) -> Result<(std::collections::BTreeMap<String, u64>, u64, u64), RuntimeError> {
    let mut firings = std::collections::BTreeMap::new();
    let mut st = conn.prepare_cached("SELECT rule, COUNT(*) FROM herald_firing GROUP BY rule").map_err(sql_err)?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(sql_err)?;
    for row in rows {
        let (rule, n) = row.map_err(sql_err)?;
        firings.insert(rule, n.max(0) as u64);
    }
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64).map_err(sql_err);
    let dead = count("SELECT COUNT(*) FROM herald_dead_letter")?;
    let errors = count("SELECT COUNT(*) FROM herald_rule_error")?;
    Ok((firings, dead, errors))
}

// ---- batched rows (the writer's batch, issue 12) ----------------------
//
// The writer buffers the firing, notification and replay rows of a batch and
// inserts them here, with multi-row INSERTs, inside the batch transaction and
// before its commit (`engine::batch`). Each table's SQL stays in this file.

/// A recipient key converted to the recipient entity's key type (see
/// [`Store::notification_key`]), ready to be bound.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientKey(KeyRepr);

/// SQLite binds the converted key; other backends keep the run-time value
/// and convert it in their own `insert_notification`.
#[derive(Debug, Clone, PartialEq)]
enum KeyRepr {
    Sqlite(Sql),
    Value(Value),
}

impl RecipientKey {
    /// A key kept as a run-time value (the default of
    /// [`super::Backend::notification_key`]): an entity row stands for its key.
    pub fn of_value(user_pk: &Value) -> RecipientKey {
        RecipientKey(KeyRepr::Value(match user_pk {
            Value::Entity(row) => row.key.clone(),
            v => v.clone(),
        }))
    }

    /// The key as a run-time value, for backends that bind values themselves.
    pub fn value(&self) -> Value {
        match &self.0 {
            KeyRepr::Value(v) => v.clone(),
            KeyRepr::Sqlite(Sql::Integer(i)) => Value::Int(*i),
            KeyRepr::Sqlite(Sql::Real(f)) => Value::Float(*f),
            KeyRepr::Sqlite(Sql::Text(t)) => Value::Str(t.as_str().into()),
            KeyRepr::Sqlite(Sql::Null) | KeyRepr::Sqlite(Sql::Blob(_)) => Value::Null,
        }
    }
}

/// A `notify` row waiting for its batch's insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRow {
    pub rule: std::sync::Arc<str>,
    pub event_key: std::sync::Arc<str>,
    pub user_pk: RecipientKey,
    pub severity: &'static str,
    pub body: String,
    /// Wall-clock time of the event's processing (Unix nanoseconds).
    pub created: i128,
}

/// A `herald_firing` row waiting for its batch's insert.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringRow {
    pub rule: std::sync::Arc<str>,
    pub event_key: std::sync::Arc<str>,
    pub line: u64,
    pub fired_at: i128,
}

/// A replay record waiting for its batch's insert (see
/// [`Store::mark_processed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedRow {
    pub event_key: std::sync::Arc<str>,
    pub line: u64,
    pub processed_at: i128,
    pub rule_set: i64,
}

/// Rows per multi-row INSERT, largest first: a batch of 10,000 rows is 157
/// statements, and what is left (fewer than 64) costs at most 7 + 7 more.
/// Fixed sizes keep the number of distinct statements (and so of cached
/// prepared statements) at three per table.
const CHUNKS: [usize; 3] = [64, 8, 1];

/// Store times (`2026-04-14T08:02:07.556423Z`) for many rows: the text up to
/// the second is formatted once per second, so a row costs its six digits
/// of microseconds, where `format_timestamp_store` cost a `format!` per row.
/// PostgreSQL's batched inserts (`store::pg`, `store::pgent`) use it too.
#[derive(Default)]
pub(crate) struct Stamp {
    second: Option<i128>,
    text: String,
}

impl Stamp {
    pub(crate) fn at(&mut self, nanos: i128) -> &str {
        let second = nanos.div_euclid(1_000_000_000);
        if self.second != Some(second) {
            self.text = format_timestamp_store(second * 1_000_000_000);
            self.second = Some(second);
        }
        let micros = nanos.rem_euclid(1_000_000_000) / 1_000;
        // `…:07.000000Z`: the last 7 bytes are the microseconds and `Z`.
        let len = self.text.len();
        if len >= 7 {
            let mut digits = [b'0'; 6];
            let mut m = micros as u32;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (m % 10) as u8;
                m /= 10;
            }
            self.text.replace_range(len - 7..len - 1, std::str::from_utf8(&digits).unwrap_or("000000"));
        }
        &self.text
    }
}

/// `INSERT … VALUES (…), (…)` text for `rows` rows of `width` parameters.
fn values_list(rows: usize, width: usize) -> String {
    let mut s = String::with_capacity(rows * (width * 2 + 3));
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            s.push_str(if c == 0 { "?" } else { ", ?" });
        }
        s.push(')');
    }
    s
}

impl Store {
    /// Convert a `notify` recipient to the recipient entity's key type, as
    /// [`Store::insert_notification`] does: `"12"` or `12.0` for an int key
    /// is 12, a 32-hex uuid is dashed; a key of the wrong kind is R0001 and
    /// no key at all R0010, both the rule's errors at the time of the
    /// `notify`.
    pub fn notification_key(&self, user_pk: &Value) -> Result<RecipientKey, RuntimeError> {
        let recipient = self
            .schema
            .recipient
            .ok_or_else(|| RuntimeError::new(Code::StoreFailure, "the schema has no recipient entity for `notify`"))?;
        let info = self.ent(recipient)?;
        let key = match user_pk {
            Value::Entity(row) => row.key.clone(),
            v => v.clone(),
        };
        match self.key_sql(info, &key)? {
            Some(pk) => Ok(RecipientKey(KeyRepr::Sqlite(pk))),
            None => Err(RuntimeError::new(Code::RequiredAbsent, "`notify` was given no recipient key")),
        }
    }

    /// Insert buffered notifications in order, each only if its recipient
    /// row exists at this moment (in the same statement, as
    /// [`Store::insert_notification`]); returns how many were dropped
    /// because no recipient row has the key.
    pub fn insert_notifications(&self, rows: &[NotificationRow]) -> Result<u64, RuntimeError> {
        let Some(recipient) = self.schema.recipient else {
            return Ok(0);
        };
        let info = self.ent(recipient)?;
        let mut stamp = Stamp::default();
        let mut inserted = 0u64;
        let mut rest = rows;
        while !rest.is_empty() {
            let n = CHUNKS.into_iter().find(|&c| c <= rest.len()).unwrap_or(1);
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            // VALUES is read in order, so the new ids follow the buffer's
            // order; the existence test is per row (`column3`: the key).
            let sql = format!(
                "INSERT INTO herald_notification (rule, event_uuid, user_pk, severity, body, created) \
                 SELECT column1, column2, column3, column4, column5, column6 FROM (VALUES {}) \
                 WHERE EXISTS (SELECT 1 FROM {} WHERE {} = column3)",
                values_list(n, 6),
                info.table,
                info.key_col
            );
            let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
            for (i, r) in chunk.iter().enumerate() {
                let p = i * 6;
                st.raw_bind_parameter(p + 1, &*r.rule).map_err(sql_err)?;
                st.raw_bind_parameter(p + 2, &*r.event_key).map_err(sql_err)?;
                match &r.user_pk.0 {
                    KeyRepr::Sqlite(k) => st.raw_bind_parameter(p + 3, k).map_err(sql_err)?,
                    // A key kept as a value (made by `RecipientKey::of_value`).
                    KeyRepr::Value(v) => {
                        st.raw_bind_parameter(p + 3, self.key_sql(info, v)?.unwrap_or(Sql::Null)).map_err(sql_err)?
                    }
                }
                st.raw_bind_parameter(p + 4, r.severity).map_err(sql_err)?;
                st.raw_bind_parameter(p + 5, r.body.as_str()).map_err(sql_err)?;
                st.raw_bind_parameter(p + 6, stamp.at(r.created)).map_err(sql_err)?;
            }
            inserted += st.raw_execute().map_err(sql_err)? as u64;
        }
        Ok(rows.len() as u64 - inserted)
    }

    /// Insert buffered firing rows in order (see [`Store::insert_firing`]).
    pub fn insert_firings(&self, rows: &[FiringRow]) -> Result<(), RuntimeError> {
        let mut stamp = Stamp::default();
        let mut rest = rows;
        while !rest.is_empty() {
            let n = CHUNKS.into_iter().find(|&c| c <= rest.len()).unwrap_or(1);
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let sql =
                format!("INSERT INTO herald_firing (rule, event_uuid, fired_at, line) VALUES {}", values_list(n, 4));
            let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
            for (i, r) in chunk.iter().enumerate() {
                let p = i * 4;
                st.raw_bind_parameter(p + 1, &*r.rule).map_err(sql_err)?;
                st.raw_bind_parameter(p + 2, &*r.event_key).map_err(sql_err)?;
                st.raw_bind_parameter(p + 3, stamp.at(r.fired_at)).map_err(sql_err)?;
                st.raw_bind_parameter(p + 4, r.line as i64).map_err(sql_err)?;
            }
            st.raw_execute().map_err(sql_err)?;
        }
        Ok(())
    }

    /// Insert buffered replay records, with [`Store::mark_processed`]'s
    /// meaning: a record that exists gets the new rule set and keeps its
    /// line and time. The rows' keys must be distinct (one INSERT may not
    /// update a row it inserted).
    pub fn mark_processed_many(&self, rows: &[ProcessedRow]) -> Result<(), RuntimeError> {
        let mut stamp = Stamp::default();
        let mut rest = rows;
        while !rest.is_empty() {
            let n = CHUNKS.into_iter().find(|&c| c <= rest.len()).unwrap_or(1);
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let sql = format!(
                "INSERT INTO herald_processed (event_key, line, processed_at, rule_set) VALUES {} \
                 ON CONFLICT (event_key) DO UPDATE SET rule_set = excluded.rule_set",
                values_list(n, 4)
            );
            let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
            for (i, r) in chunk.iter().enumerate() {
                let p = i * 4;
                st.raw_bind_parameter(p + 1, &*r.event_key).map_err(sql_err)?;
                st.raw_bind_parameter(p + 2, r.line as i64).map_err(sql_err)?;
                st.raw_bind_parameter(p + 3, stamp.at(r.processed_at)).map_err(sql_err)?;
                st.raw_bind_parameter(p + 4, r.rule_set).map_err(sql_err)?;
            }
            st.raw_execute().map_err(sql_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod batch_tests {
    use super::Stamp;
    use crate::value::format_timestamp_store;

    #[test]
    fn stamps_are_the_store_time_format() {
        let mut s = Stamp::default();
        for nanos in [
            0i128,
            1_776_154_927_556_423_999,
            1_776_154_927_000_000_000,
            1_776_154_927_999_999_999,
            1_776_154_928_000_001_000,
            -1_000,
            -62_135_596_800_000_000_000,
        ] {
            assert_eq!(s.at(nanos), format_timestamp_store(nanos), "{nanos}");
        }
    }
}
