//! Events straight from authentik's database: `herald run --source
//! postgres://…` (docs/postgres-source.md).
//!
//! A fetcher thread owns the PostgreSQL connection and reads
//! `authentik_events_event` in `(created, event_uuid)` order after the
//! cursor; [`SourceReader`] hands each row to the engine as one NDJSON line
//! (the same JSON an export of the event has), so the engine sees a `Read`
//! and never learns where its input comes from. Which events were taken is
//! recorded through `Store::source_advance` (store::cursor) by the caller's
//! `in_commit` hook, in the transaction that applies their effects.
//!
//! Late-committing rows: authentik sets `created` from the application
//! server's clock inside its own transaction, so a row with an earlier
//! `created` can become visible after rows with later ones were read. The
//! fetcher therefore re-reads a lookback window behind the cursor
//! (`sweep`) and takes the rows it has not taken yet: never skipped, never
//! taken twice (the window's events are remembered durably).
//!
//! Every SQL identifier is the validated schema name or a constant; every
//! value is a bound parameter. The connection is read-only, with connect and
//! statement timeouts; the reader gives up on a server silent for longer.

use postgres::{Client, Config, NoTls, Statement};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cursor::{SourceCursor, SourceEvent};
use super::workers::{self, SharedBoard};

/// authentik's event table (its name is fixed by authentik's migrations).
pub const EVENT_TABLE: &str = "authentik_events_event";

/// The longest connection attempt (each socket-level attempt; the whole
/// start-up is bounded by [`START_LIMIT`]).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a single query may run on the server.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest connecting and checking the table may take, all told (a
/// server that accepts the connection and never answers).
const START_LIMIT: Duration = Duration::from_secs(15);
/// The reader gives up on a fetcher that has not reported for this long
/// (a query stuck on a server that stopped answering).
const SILENCE_LIMIT: Duration = Duration::from_secs(20);

/// How a source is read.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// `postgres://USER@HOST:PORT/DB` (a password in it is never printed).
    pub url: String,
    /// The schema holding authentik's tables (validated by [`SourceSpec::new`]).
    pub schema: String,
    /// Keep following new events until stopped.
    pub follow: bool,
    /// The pause between two reads that found nothing new.
    pub poll: Duration,
    /// How often the lookback window is re-read for late rows.
    pub sweep: Duration,
    /// How far behind the newest event taken a late row is still found.
    pub lookback: Duration,
    /// Rows per query, at most.
    pub fetch: i64,
    /// Several workers share the source: the partition count, and the
    /// board of the partitions this worker holds (store::workers).
    pub partitions: Option<(u32, SharedBoard)>,
}

impl SourceSpec {
    /// A spec with the default timings; an error for a schema name that is
    /// not a plain identifier or a URL the driver does not accept.
    pub fn new(url: &str, schema: &str, follow: bool) -> Result<SourceSpec, String> {
        let plain = !schema.is_empty()
            && schema.len() <= 63
            && schema.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if !plain {
            return Err(format!(
                "`--authentik-schema {schema}` is not a plain schema name (letters, digits, `_` or `$`, \
                 at most 63 characters, not starting with a digit)"
            ));
        }
        url.parse::<Config>().map_err(|e| format!("`--source {}` is not a PostgreSQL URL: {e}", redact(url)))?;
        Ok(SourceSpec {
            url: url.to_string(),
            schema: schema.to_string(),
            follow,
            poll: Duration::from_millis(100),
            sweep: Duration::from_secs(1),
            lookback: Duration::from_secs(300),
            fetch: 1000,
            partitions: None,
        })
    }

    /// `lookback` in microseconds.
    fn lookback_us(&self) -> i64 {
        self.lookback.as_micros().min(i64::MAX as u128) as i64
    }

    /// The table, quoted: `"public".authentik_events_event`.
    fn table(&self) -> String {
        format!("\"{}\".{EVENT_TABLE}", self.schema)
    }

    /// The source's name in dead letters and messages: the URL without
    /// its password.
    pub fn name(&self) -> String {
        redact(&self.url)
    }

    /// What the cursor is kept under: the server, the database, the schema
    /// and the table (not the user or the options, which may change
    /// between runs without changing what is read).
    pub fn key(&self) -> String {
        let Ok(c) = self.url.parse::<Config>() else { return format!("postgres:{}", self.name()) };
        let host = match c.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        let db = c.get_dbname().or(c.get_user()).unwrap_or("postgres");
        format!("postgres://{host}:{port}/{db}#{}.{EVENT_TABLE}", self.schema)
    }
}

/// `url` without a password (`postgres://user:secret@h/db` → `postgres://user:***@h/db`).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, tail) = match rest.find('@') {
        Some(i) if !rest[..i].contains('/') => (&rest[..i], &rest[i..]),
        _ => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{tail}"),
        None => url.to_string(),
    }
}

/// The partition of an event (`e`, a row of the event table), as SQL: a
/// hash of its account modulo `parts`. The account is the user's username,
/// or for an anonymous user (authentik's `AnonymousUser`, or no username)
/// the username the event's context names (a failed sign-in's), else the
/// client's address. So an account's events, signed in or not, share a
/// partition and stay in order. MD5 rather than PostgreSQL's internal
/// hash functions: its value is fixed forever, whatever the server's
/// version, and so is every event's partition.
pub fn partition_sql(parts: u32) -> String {
    format!(
        "((('x' || substr(md5(CASE \
           WHEN e.\"user\"->>'username' IS NULL OR e.\"user\"->>'username' = 'AnonymousUser' \
             OR e.\"user\"->'is_anonymous' = 'true'::jsonb \
           THEN coalesce(e.context->>'username', host(e.client_ip), '') \
           ELSE e.\"user\"->>'username' END), 1, 8))::bit(32)::int & 2147483647) % {parts})"
    )
}

/// One event read from the table.
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub line: u64,
    /// Its partition (a partitioned source).
    pub part: Option<u32>,
    pub event_uuid: String,
    pub created_us: i64,
    /// The event as one line of JSON (no newline).
    pub json: String,
}

/// A message from the fetcher thread.
enum Msg {
    /// The connection is up and the table readable.
    Ready,
    Rows(Vec<SourceRow>),
    /// A read found nothing new (following): the fetcher is alive.
    Idle,
    /// Every event present was read (not following).
    End,
    Failed(String),
}

/// What the driver's error says, without the `db error:` prefix.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_string(),
        },
        None => e.to_string(),
    }
}

/// The columns a row's JSON is built from (see [`row_json`]).
const ROW_COLUMNS: &str =
    "e.event_uuid::text, e.created, e.\"user\", e.action, e.app, e.context, e.client_ip, e.expires, e.brand";

/// A row as fetched: its uuid, its `created` in Unix microseconds, its JSON.
type FetchedRow = (String, i64, String);

/// A `json` or `jsonb` value as the server's JSON text, unparsed: jsonb's
/// binary form is a version byte and the text.
struct RawJson(String);

impl<'a> postgres::types::FromSql<'a> for RawJson {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<RawJson, Box<dyn std::error::Error + Sync + Send>> {
        let text = if *ty == postgres::types::Type::JSONB {
            match raw.split_first() {
                Some((1, rest)) => rest,
                _ => return Err("unsupported jsonb encoding version".into()),
            }
        } else {
            raw
        };
        Ok(RawJson(std::str::from_utf8(text)?.to_string()))
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        *ty == postgres::types::Type::JSON || *ty == postgres::types::Type::JSONB
    }
}

/// RFC 3339 in UTC with microseconds, as authentik's export writes times
/// (`2026-04-14T08:02:07.556423Z`).
fn rfc3339_micros(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// The JSON of a row ([`ROW_COLUMNS`]), as an NDJSON export of authentik's
/// events has it: the dashed uuid, the jsonb columns as JSON, the address
/// without a prefix length, RFC 3339 times. Built here rather than with
/// `json_build_object` in the query: the server then only sends columns
/// (measured: the query cost a third as much), and the text of the jsonb
/// columns is copied, not parsed.
fn row_json(r: &postgres::Row) -> Result<(String, i64, String), String> {
    let err = |what: &str, e: postgres::Error| format!("unreadable `{what}`: {}", pg_message(&e));
    let uuid: String = r.try_get(0).map_err(|e| err("event_uuid", e))?;
    let at = |e: String| format!("event {uuid}: {e}");
    let created: time::OffsetDateTime = r.try_get(1).map_err(|e| at(err("created", e)))?;
    let user: RawJson = r.try_get(2).map_err(|e| at(err("user", e)))?;
    let action: String = r.try_get(3).map_err(|e| at(err("action", e)))?;
    let app: String = r.try_get(4).map_err(|e| at(err("app", e)))?;
    let context: RawJson = r.try_get(5).map_err(|e| at(err("context", e)))?;
    let client_ip: Option<std::net::IpAddr> = r.try_get(6).map_err(|e| at(err("client_ip", e)))?;
    let expires: time::OffsetDateTime = r.try_get(7).map_err(|e| at(err("expires", e)))?;
    let brand: RawJson = r.try_get(8).map_err(|e| at(err("brand", e)))?;
    let string = |s: &str| serde_json::Value::from(s).to_string();
    let ip = client_ip.map_or("null".to_string(), |ip| string(&ip.to_string()));
    let json = format!(
        "{{\"event_uuid\":{},\"user\":{},\"action\":{},\"app\":{},\"context\":{},\"client_ip\":{ip},\
         \"created\":\"{}\",\"expires\":\"{}\",\"brand\":{}}}",
        string(&uuid),
        user.0,
        string(&action),
        string(&app),
        context.0,
        rfc3339_micros(created),
        rfc3339_micros(expires),
        brand.0
    );
    Ok((uuid, micros(created), json))
}

struct Conn {
    client: Client,
    /// Rows after the cursor, in order.
    after: Statement,
    /// Rows from the start, in order (no cursor yet).
    first: Statement,
    /// Keys of the rows in the lookback window, at or before the cursor.
    window: Statement,
    /// Rows by uuid.
    by_uuid: Statement,
    /// `after`, `first` and `window` within one partition ($4, $2, $4).
    part_after: Option<Statement>,
    part_first: Option<Statement>,
    part_window: Option<Statement>,
}

fn micros(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn at_micros(us: i64) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .map_err(|e| format!("a cursor time out of range ({us} µs): {e}"))
}

impl Conn {
    fn open(spec: &SourceSpec) -> Result<Conn, String> {
        let mut config: Config = spec.url.parse().map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("herald-source");
        // Read-only: the source never writes to authentik's database, and
        // every query is bounded on the server side too.
        config.options(&format!(
            "-c default_transaction_read_only=on -c statement_timeout={}",
            STATEMENT_TIMEOUT.as_millis()
        ));
        let mut client = config.connect(NoTls).map_err(|e| format!("cannot connect: {}", pg_message(&e)))?;
        let table = spec.table();
        let found: Option<String> =
            client.query_one("SELECT to_regclass($1)::text", &[&table]).map_err(|e| pg_message(&e))?.get(0);
        if found.is_none() {
            return Err(format!(
                "the database has no table {}.{EVENT_TABLE} (is it authentik's database? \
                 `--authentik-schema` names the schema holding authentik's tables)",
                spec.schema
            ));
        }
        let readable: bool =
            client.query_one("SELECT has_table_privilege($1, 'SELECT')", &[&table]).map_err(|e| pg_message(&e))?.get(0);
        if !readable {
            return Err(format!("the user may not read {}.{EVENT_TABLE} (grant SELECT on it)", spec.schema));
        }
        let prepare = |client: &mut Client, sql: &str| {
            client.prepare(sql).map_err(|e| {
                format!("{}.{EVENT_TABLE} does not have the columns authentik's has: {}", spec.schema, pg_message(&e))
            })
        };
        // `created >= $1` lets the index on `created` bound the scan; the
        // row comparison then orders ties by uuid.
        let after = prepare(
            &mut client,
            &format!(
                "SELECT {ROW_COLUMNS} FROM {table} e \
                 WHERE e.created >= $1 AND (e.created, e.event_uuid) > ($1, ($2::text)::uuid) \
                 ORDER BY e.created, e.event_uuid LIMIT $3"
            ),
        )?;
        let first = prepare(
            &mut client,
            &format!(
                "SELECT {ROW_COLUMNS} FROM {table} e \
                 ORDER BY e.created, e.event_uuid LIMIT $1"
            ),
        )?;
        let window = prepare(
            &mut client,
            &format!(
                "SELECT e.event_uuid::text, e.created FROM {table} e \
                 WHERE e.created >= $1 AND e.created <= $2 AND (e.created, e.event_uuid) <= ($2, ($3::text)::uuid) \
                 ORDER BY e.created, e.event_uuid"
            ),
        )?;
        let by_uuid = prepare(
            &mut client,
            &format!(
                "SELECT {ROW_COLUMNS} FROM {table} e \
                 WHERE e.event_uuid = ANY(($1::text[])::uuid[]) ORDER BY e.created, e.event_uuid"
            ),
        )?;
        let (part_after, part_first, part_window) = match &spec.partitions {
            None => (None, None, None),
            Some((parts, _)) => {
                let expr = partition_sql(*parts);
                // One scan for all the partitions a worker holds (their
                // rows at or before a partition's own cursor are dropped):
                // a scan per partition read the whole table once for each.
                let a = prepare(
                    &mut client,
                    &format!(
                        "SELECT {ROW_COLUMNS}, {expr} FROM {table} e \
                         WHERE e.created >= $1 AND (e.created, e.event_uuid) > ($1, ($2::text)::uuid) \
                         AND {expr} = ANY($4::int[]) ORDER BY e.created, e.event_uuid LIMIT $3"
                    ),
                )?;
                let f = prepare(
                    &mut client,
                    &format!(
                        "SELECT {ROW_COLUMNS}, {expr} FROM {table} e WHERE {expr} = ANY($2::int[]) \
                         ORDER BY e.created, e.event_uuid LIMIT $1"
                    ),
                )?;
                let w = prepare(
                    &mut client,
                    &format!(
                        "SELECT e.event_uuid::text, e.created FROM {table} e \
                         WHERE e.created >= $1 AND e.created <= $2 AND (e.created, e.event_uuid) <= ($2, ($3::text)::uuid) \
                         AND {expr} = $4 ORDER BY e.created, e.event_uuid"
                    ),
                )?;
                (Some(a), Some(f), Some(w))
            }
        };
        Ok(Conn { client, after, first, window, by_uuid, part_after, part_first, part_window })
    }

    /// Up to `limit` rows of the partitions `parts` after `cursor`, each
    /// with its partition.
    fn part_rows(
        &mut self,
        parts: &[i32],
        cursor: Option<&(i64, String)>,
        limit: i64,
    ) -> Result<Vec<(i32, FetchedRow)>, String> {
        let (Some(after), Some(first)) = (&self.part_after, &self.part_first) else {
            return Err("the source is not partitioned".into());
        };
        let parts = parts.to_vec();
        let rows = match cursor {
            None => self.client.query(first, &[&limit, &parts]),
            Some((us, uuid)) => {
                let t = at_micros(*us)?;
                self.client.query(after, &[&t, uuid, &limit, &parts])
            }
        }
        .map_err(|e| pg_message(&e))?;
        rows.iter()
            .map(|r| {
                let part: i32 = r.try_get(9).map_err(|e| format!("unreadable partition: {}", pg_message(&e)))?;
                Ok((part, row_json(r)?))
            })
            .collect()
    }

    /// The keys of partition `part`'s rows from `from_us` up to `cursor`.
    fn part_window(&mut self, part: i32, from_us: i64, cursor: &(i64, String)) -> Result<Vec<(i64, String)>, String> {
        let Some(window) = &self.part_window else { return Err("the source is not partitioned".into()) };
        let (from, to) = (at_micros(from_us)?, at_micros(cursor.0)?);
        let rows = self.client.query(window, &[&from, &to, &cursor.1, &part]).map_err(|e| pg_message(&e))?;
        rows.into_iter()
            .map(|r| {
                let uuid: String = r.try_get(0).map_err(|e| pg_message(&e))?;
                let created: time::OffsetDateTime = r.try_get(1).map_err(|e| pg_message(&e))?;
                Ok((micros(created), uuid))
            })
            .collect()
    }

    fn rows(rows: Vec<postgres::Row>) -> Result<Vec<(String, i64, String)>, String> {
        rows.iter().map(row_json).collect()
    }

    /// Up to `limit` rows after `cursor` (or from the start).
    fn after(&mut self, cursor: Option<&(i64, String)>, limit: i64) -> Result<Vec<(String, i64, String)>, String> {
        let rows = match cursor {
            None => self.client.query(&self.first, &[&limit]),
            Some((us, uuid)) => {
                let t = at_micros(*us)?;
                self.client.query(&self.after, &[&t, uuid, &limit])
            }
        }
        .map_err(|e| pg_message(&e))?;
        Conn::rows(rows)
    }

    /// The keys of the rows from `from_us` up to `cursor`, inclusive.
    fn window(&mut self, from_us: i64, cursor: &(i64, String)) -> Result<Vec<(i64, String)>, String> {
        let (from, to) = (at_micros(from_us)?, at_micros(cursor.0)?);
        let rows = self.client.query(&self.window, &[&from, &to, &cursor.1]).map_err(|e| pg_message(&e))?;
        rows.into_iter()
            .map(|r| {
                let uuid: String = r.try_get(0).map_err(|e| pg_message(&e))?;
                let created: time::OffsetDateTime = r.try_get(1).map_err(|e| pg_message(&e))?;
                Ok((micros(created), uuid))
            })
            .collect()
    }

    fn by_uuid(&mut self, uuids: &[String]) -> Result<Vec<(String, i64, String)>, String> {
        let rows = self.client.query(&self.by_uuid, &[&uuids]).map_err(|e| pg_message(&e))?;
        Conn::rows(rows)
    }
}

/// The fetcher's view of what was taken: the newest event, the events of
/// the lookback window, the next line number.
struct Taken {
    last: Option<(i64, String)>,
    seen: BTreeSet<(i64, String)>,
    next_line: u64,
    lookback_us: i64,
}

impl Taken {
    fn take(&mut self, rows: Vec<(String, i64, String)>) -> Vec<SourceRow> {
        let mut out = Vec::with_capacity(rows.len());
        for (uuid, created_us, json) in rows {
            let key = (created_us, uuid.clone());
            if !self.seen.insert(key.clone()) {
                continue;
            }
            if self.last.as_ref().is_none_or(|l| key > *l) {
                self.last = Some(key);
            }
            out.push(SourceRow { line: self.next_line, part: None, event_uuid: uuid, created_us, json });
            self.next_line += 1;
        }
        // Forget what fell out of the window (never the newest).
        if let Some((newest, _)) = &self.last {
            let horizon = newest.saturating_sub(self.lookback_us);
            while self.seen.first().is_some_and(|(c, _)| *c < horizon) {
                self.seen.pop_first();
            }
        }
        out
    }
}

/// Connects and reports `Ready`; `None` (the failure reported) when either fails.
fn open_ready(spec: &SourceSpec, tx: &SyncSender<Msg>) -> Option<Conn> {
    match Conn::open(spec) {
        Ok(c) => tx.send(Msg::Ready).is_ok().then_some(c),
        Err(e) => {
            let _ = tx.send(Msg::Failed(e));
            None
        }
    }
}

/// The rows of the lookback window behind `taken`'s newest event (of
/// partition `part`, or of the whole table) that `taken` does not hold:
/// rows that committed late.
fn late_rows(conn: &mut Conn, taken: &Taken, part: Option<i32>) -> Result<Vec<FetchedRow>, String> {
    let Some(last) = taken.last.clone() else { return Ok(Vec::new()) };
    let from = last.0.saturating_sub(taken.lookback_us);
    let keys = match part {
        None => conn.window(from, &last)?,
        Some(p) => conn.part_window(p, from, &last)?,
    };
    let missing: Vec<String> = keys.into_iter().filter(|k| !taken.seen.contains(k)).map(|(_, u)| u).collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    conn.by_uuid(&missing)
}

/// One partition being read by [`fetch_partitioned`].
struct Feed {
    taken: Taken,
    last_sweep: Option<Instant>,
}

/// The fetcher of a partitioned source: reads each partition this worker
/// holds after its own cursor, as [`fetch`] reads the whole table, and
/// follows the board as partitions come and go. Lines are numbered across
/// partitions in the order rows are handed over.
fn fetch_partitioned(spec: SourceSpec, first_line: u64, tx: SyncSender<Msg>, stop: Arc<AtomicBool>) {
    let Some((_, board)) = spec.partitions.clone() else {
        let _ = tx.send(Msg::Failed("the source is not partitioned".into()));
        return;
    };
    let Some(mut conn) = open_ready(&spec, &tx) else { return };
    let lookback_us = spec.lookback_us();
    let mut feeds: BTreeMap<u32, Feed> = BTreeMap::new();
    let mut next_line = first_line;
    let result = (|| -> Result<(), String> {
        loop {
            if stop.load(Ordering::Relaxed) {
                let _ = tx.send(Msg::End);
                return Ok(());
            }
            // Follow the board: start reading partitions newly held, stop
            // reading those given back or lost.
            {
                let mut b = workers::lock(&board);
                if let Some(lost) = b.lost.clone() {
                    return Err(lost);
                }
                feeds.retain(|p, _| b.held.get(p).is_some_and(|h| !h.releasing));
                for (p, h) in b.held.iter_mut() {
                    if h.releasing {
                        h.stopped = true;
                        continue;
                    }
                    if let Some(cursor) = h.cursor.take() {
                        let taken = Taken {
                            last: cursor.last,
                            seen: cursor.seen.into_iter().collect(),
                            next_line: 0,
                            lookback_us,
                        };
                        feeds.insert(*p, Feed { taken, last_sweep: None });
                    }
                }
            }
            let mut sent_any = false;
            let parts: Vec<u32> = feeds.keys().copied().collect();
            let mut found: BTreeMap<u32, Vec<(String, i64, String)>> = BTreeMap::new();
            for part in &parts {
                let feed = feeds.get_mut(part).expect("listed above");
                let rows = found.entry(*part).or_default();
                let sweep_due = feed.last_sweep.is_none_or(|t| t.elapsed() >= spec.sweep);
                if sweep_due {
                    feed.last_sweep = Some(Instant::now());
                    rows.extend(late_rows(&mut conn, &feed.taken, Some(*part as i32))?);
                }
            }
            // One read after the earliest cursor; each row goes to its
            // partition unless that partition's cursor is past it (late
            // rows behind a cursor are the sweep's).
            if !parts.is_empty() {
                let earliest = if feeds.values().any(|f| f.taken.last.is_none()) {
                    None
                } else {
                    feeds.values().filter_map(|f| f.taken.last.clone()).min()
                };
                let ids: Vec<i32> = parts.iter().map(|p| *p as i32).collect();
                for (part, row) in conn.part_rows(&ids, earliest.as_ref(), spec.fetch * 4)? {
                    let part = part as u32;
                    let Some(feed) = feeds.get(&part) else { continue };
                    if feed.taken.last.as_ref().is_some_and(|l| (row.1, &row.0) <= (l.0, &l.1)) {
                        continue;
                    }
                    found.entry(part).or_default().push(row);
                }
            }
            for (part, rows) in found {
                let Some(feed) = feeds.get_mut(&part) else { continue };
                feed.taken.next_line = next_line;
                let mut rows = feed.taken.take(rows);
                if rows.is_empty() {
                    continue;
                }
                {
                    let mut b = workers::lock(&board);
                    match b.held.get_mut(&part) {
                        Some(h) if !h.releasing => h.sent += rows.len() as u64,
                        // Given back meanwhile: the rows are left to the
                        // next holder (nothing of them was handed over).
                        _ => {
                            feeds.remove(&part);
                            continue;
                        }
                    }
                }
                next_line = feed.taken.next_line;
                for r in &mut rows {
                    r.part = Some(part);
                }
                sent_any = true;
                if tx.send(Msg::Rows(rows)).is_err() {
                    return Ok(());
                }
            }
            if !sent_any {
                if tx.send(Msg::Idle).is_err() {
                    return Ok(());
                }
                std::thread::sleep(spec.poll);
            }
        }
    })();
    if let Err(e) = result {
        let _ = tx.send(Msg::Failed(e));
    }
}

/// The fetcher thread's loop; returns when the reader is gone, every event
/// was read (not following), or the server failed.
fn fetch(spec: SourceSpec, cursor: SourceCursor, tx: SyncSender<Msg>, stop: Arc<AtomicBool>) {
    let Some(mut conn) = open_ready(&spec, &tx) else { return };
    let lookback_us = spec.lookback_us();
    let mut taken = Taken {
        last: cursor.last,
        seen: cursor.seen.into_iter().collect(),
        next_line: cursor.last_line + 1,
        lookback_us,
    };
    // A restart first looks behind its cursor: rows that committed late
    // while no run was reading.
    let mut last_sweep: Option<Instant> = None;
    let result = (|| -> Result<(), String> {
        loop {
            if stop.load(Ordering::Relaxed) {
                let _ = tx.send(Msg::End);
                return Ok(());
            }
            let sweep_due = last_sweep.is_none_or(|t| t.elapsed() >= spec.sweep);
            if sweep_due {
                last_sweep = Some(Instant::now());
                let late = late_rows(&mut conn, &taken, None)?;
                if !late.is_empty() {
                    let rows = taken.take(late);
                    if !rows.is_empty() && tx.send(Msg::Rows(rows)).is_err() {
                        return Ok(());
                    }
                }
            }
            let rows = conn.after(taken.last.as_ref(), spec.fetch)?;
            let full = rows.len() as i64 >= spec.fetch;
            let rows = taken.take(rows);
            if !rows.is_empty() {
                if tx.send(Msg::Rows(rows)).is_err() {
                    return Ok(());
                }
                if full {
                    continue;
                }
            }
            if !spec.follow {
                // Done once a read after a fresh look behind the cursor
                // finds nothing: the end of what is present now.
                if sweep_due && !full {
                    let _ = tx.send(Msg::End);
                    return Ok(());
                }
                last_sweep = None;
                continue;
            }
            if tx.send(Msg::Idle).is_err() {
                return Ok(());
            }
            std::thread::sleep(spec.poll);
        }
    })();
    if let Err(e) = result {
        let _ = tx.send(Msg::Failed(e));
    }
}

/// The engine's input: the source's events as NDJSON lines, one per row,
/// numbered from the cursor's next line.
pub struct SourceReader {
    rx: Receiver<Msg>,
    name: String,
    pending: VecDeque<SourceRow>,
    partial: Option<(Vec<u8>, usize)>,
    /// Events handed over and not yet committed (see [`SourceReader::fed`]).
    fed: Arc<Mutex<VecDeque<SourceEvent>>>,
    stop: Arc<AtomicBool>,
    ended: bool,
    heard: Instant,
}

impl SourceReader {
    /// Connects (in the fetcher thread, bounded by a start-up limit) and
    /// checks the table; `cursor` is what the store recorded. `stop` ends
    /// the input at the next event boundary (a signal, in `herald run`).
    pub fn open(spec: SourceSpec, cursor: SourceCursor, stop: Arc<AtomicBool>) -> Result<SourceReader, String> {
        let name = spec.name();
        // Room for a few batches: the fetcher reads ahead while the engine works.
        let (tx, rx) = mpsc::sync_channel(4);
        let fetch_stop = stop.clone();
        let partitioned = spec.partitions.is_some();
        std::thread::Builder::new()
            .name("herald-source".into())
            .spawn(move || {
                if partitioned {
                    fetch_partitioned(spec, cursor.last_line + 1, tx, fetch_stop)
                } else {
                    fetch(spec, cursor, tx, fetch_stop)
                }
            })
            .map_err(|e| format!("cannot start the source thread: {e}"))?;
        match rx.recv_timeout(START_LIMIT) {
            Ok(Msg::Ready) => {}
            Ok(Msg::Failed(e)) => return Err(format!("the event source {name}: {e}")),
            Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("the event source {name}: the connection ended while starting"))
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the event source {name} did not answer within {} s (is it a PostgreSQL server?)",
                    START_LIMIT.as_secs()
                ))
            }
        }
        Ok(SourceReader {
            rx,
            name,
            pending: VecDeque::new(),
            partial: None,
            fed: Arc::new(Mutex::new(VecDeque::new())),
            stop,
            ended: false,
            heard: Instant::now(),
        })
    }

    /// The events handed to the engine, in line order, not yet recorded:
    /// the `in_commit` hook takes those up to the committed line.
    pub fn fed(&self) -> Arc<Mutex<VecDeque<SourceEvent>>> {
        self.fed.clone()
    }

    fn failed(&self, e: &str) -> std::io::Error {
        std::io::Error::other(format!("the event source {} failed: {e}", self.name))
    }
}

impl Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        loop {
            if let Some((line, pos)) = &mut self.partial {
                let k = (line.len() - *pos).min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&line[*pos..*pos + k]);
                *pos += k;
                n += k;
                if *pos == line.len() {
                    self.partial = None;
                }
            }
            if n == buf.len() {
                return Ok(n);
            }
            // A stop request ends the input between events; what was read
            // ahead and not handed over is read again by the next run.
            if self.ended || self.stop.load(Ordering::Relaxed) {
                self.ended = true;
                return Ok(n);
            }
            if let Some(row) = self.pending.pop_front() {
                let mut line = row.json.into_bytes();
                line.push(b'\n');
                self.partial = Some((line, 0));
                self.fed.lock().unwrap_or_else(|e| e.into_inner()).push_back(SourceEvent {
                    event_uuid: row.event_uuid,
                    created_us: row.created_us,
                    line: row.line,
                    part: row.part,
                });
                continue;
            }
            // Hand over what is ready rather than wait for more.
            if n > 0 {
                return Ok(n);
            }
            loop {
                match self.rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(Msg::Rows(rows)) => {
                        self.heard = Instant::now();
                        self.pending.extend(rows);
                        break;
                    }
                    Ok(Msg::Idle) | Ok(Msg::Ready) => self.heard = Instant::now(),
                    Ok(Msg::End) => {
                        self.ended = true;
                        return Ok(0);
                    }
                    Ok(Msg::Failed(e)) => return Err(self.failed(&e)),
                    Err(RecvTimeoutError::Timeout) => {
                        if self.heard.elapsed() > SILENCE_LIMIT {
                            let e = format!("no answer for {} s", SILENCE_LIMIT.as_secs());
                            return Err(self.failed(&e));
                        }
                    }
                    // The fetcher also stops on the signal, and may be gone
                    // before this loop sees the flag: a clean end then.
                    Err(RecvTimeoutError::Disconnected) if self.stop.load(Ordering::Relaxed) => {
                        self.ended = true;
                        return Ok(0);
                    }
                    Err(RecvTimeoutError::Disconnected) => return Err(self.failed("its thread ended")),
                }
                if self.stop.load(Ordering::Relaxed) {
                    self.ended = true;
                    return Ok(0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db?x=a@b"), "postgres://h/db?x=a@b");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(SourceSpec::new("postgres://u@h/db", "public", false).is_ok());
        assert!(SourceSpec::new("postgres://u@h/db", "ak_2026", false).is_ok());
        for bad in ["", "pub\"lic", "a b", "1abc", "x;drop", &"a".repeat(64)] {
            assert!(SourceSpec::new("postgres://u@h/db", bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_names_server_database_and_schema_not_the_user() {
        let a = SourceSpec::new("postgres://alice@db.example:5433/authentik", "public", false).unwrap();
        let b =
            SourceSpec::new("postgres://bob:pw@db.example:5433/authentik?connect_timeout=3", "public", true).unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), "postgres://db.example:5433/authentik#public.authentik_events_event");
    }

    #[test]
    fn taking_skips_events_already_taken_and_numbers_the_rest() {
        let mut t = Taken { last: None, seen: BTreeSet::new(), next_line: 5, lookback_us: 10 };
        let r = |u: &str, c: i64| (u.to_string(), c, "{}".to_string());
        let got = t.take(vec![r("a", 100), r("b", 101)]);
        assert_eq!(got.iter().map(|r| r.line).collect::<Vec<_>>(), [5, 6]);
        // A late row behind the cursor is taken; a repeat is not.
        let got = t.take(vec![r("c", 95), r("a", 100)]);
        assert_eq!(got.iter().map(|r| (r.line, r.event_uuid.as_str())).collect::<Vec<_>>(), [(7, "c")]);
        assert_eq!(t.last, Some((101, "b".into())));
        // The window moves with the newest event.
        t.take(vec![r("d", 200)]);
        assert_eq!(t.seen.iter().map(|(c, _)| *c).collect::<Vec<_>>(), [200]);
    }
}
