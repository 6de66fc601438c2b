//! The SQLite store: entity tables built from the schema, Herald's own
//! bookkeeping tables, typed reads for guards, typed writes for actions.
//!
//! - Each entity is a table named as the entity, one column per scalar
//!   field (named as declared), the key column as declared and PRIMARY
//!   KEY. `int`/`bool` are INTEGER (bools 0/1), `float` REAL, `string`,
//!   `uuid` (canonical lower-case dashed) and `timestamp` (RFC 3339 UTC,
//!   fixed microseconds) TEXT; `any` and lists of scalars are JSON TEXT.
//!   Required fields are NOT NULL; `any` columns are always nullable.
//! - A many-to-many field `F: [T]` of entity `E` is the join table
//!   `"E_F"("source", "target")` with an index on `target`.
//! - SQL NULL reads as `Value::Null`; many-to-many fields read as
//!   `Value::Absent` in [`Row::fields`] (use [`Store::related`]).
//! - Every statement is parameterised; identifiers come only from the
//!   schema and are always quoted.
//!
//! Query filters are compiled by [`filter`] from what the shared, pure
//! `crate::filter::classify` admits (the checker reports the rest).

pub mod backend;
mod convert;
mod cursor;
pub mod filter;
mod functions;
mod herald;
pub mod intake;
mod load;
pub mod outbox;
pub mod pg;
pub mod pg_source;
pub mod pgent;
mod report;
mod scratch;
mod state;
pub mod workers;
mod write;

pub use backend::{is_postgres, open, Backend, EntityMapping, OpenOptions};
pub use cursor::{SourceCursor, SourceEvent};
pub(crate) use herald::Stamp;
pub use herald::{Checkpoint, DeadLetter, FiringRow, NotificationRow, OutboxEntry, ProcessedRow, RecipientKey};
pub use load::{LoadError, LoadMode, LoadStats};
pub use outbox::{AttemptFailure, Due, Kind, OutboxCounts, OutboxListRow, OutboxRow, OutboxStore};
pub use pg::PgStore;
pub use report::DemoReport;
pub use scratch::ScratchStore;
pub use state::{EntryKind, StateEntry};
pub use write::PendingAppend;

use crate::diag::{Code, RuntimeError};
use crate::ir::{self, ExprKind, FieldRef, QueryKind};
use crate::schema::Schema;
use crate::types::{EntityId, Ty};
use crate::value::{Row, Value};
use convert::{describe, scalar_to_sql, sql_to_scalar, sql_to_value};
use filter::{ColKind, ColRef, Columns, Scalar};
use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Herald's own tables (fixed DDL).
const HERALD_TABLES: &str = include_str!("herald_tables.sql");

/// DDL Herald adds to its own tables.
/// Dead letters are not unique by (source, line): two different inputs read
/// from standard input (source `-`) have their own line 3. Replays are
/// recognised by the raw line as well (see `insert_dead_letter`); stores made
/// before that had a unique index, which is replaced.
const HERALD_EXTRA: &str = "
DROP INDEX IF EXISTS \"herald_dead_letter.source_line\";
CREATE INDEX IF NOT EXISTS \"herald_dead_letter.source_line_any\" ON herald_dead_letter (source, line);
";

/// The store's format version, kept in `herald_meta`.
const STORE_FORMAT: &str = "1";

/// A store that cannot be opened or does not fit the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// The file cannot be opened or is not a usable SQLite database.
    Open { path: String, message: String },
    /// An SQLite failure while initialising or loading.
    Sql(String),
    /// The schema cannot be stored (a name clash, a reserved name).
    Schema(String),
    /// The database was created for a schema this one cannot extend.
    Incompatible { table: String, column: String, reason: String },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open { path, message } => write!(f, "cannot open the database `{path}`: {message}"),
            StoreError::Sql(m) => write!(f, "database error: {m}"),
            StoreError::Schema(m) => write!(f, "the schema cannot be stored: {m}"),
            StoreError::Incompatible { table, column, reason } => {
                write!(f, "the database does not fit the schema: table `{table}`, column `{column}`: {reason}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sql(describe_sqlite(&e))
    }
}

/// How long a store waits for another process's lock by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// An SQLite failure in words. A lock held by another process (a second
/// `herald run`, a `sqlite3` shell in a transaction) past the busy timeout
/// is the common one, and SQLite's "database is locked" names neither
/// the cause nor the remedy.
pub(crate) fn describe_sqlite(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            "another process holds the lock on the store and did not release it in time; \
             retry when it is done, or wait longer with `--wait SECONDS`"
                .into()
        }
        _ => e.to_string(),
    }
}

pub(crate) fn sql_err(e: rusqlite::Error) -> RuntimeError {
    let message = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => describe_sqlite(&e),
        _ => format!("the store failed: {e}"),
    };
    RuntimeError::new(Code::StoreFailure, message)
}

/// `"name"`, with `"` doubled.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A many-to-many field's join table.
#[derive(Debug, Clone)]
pub(crate) struct JoinInfo {
    pub name: String,
    /// Quoted table name.
    pub table: String,
    pub target: EntityId,
    pub target_key: Scalar,
}

#[derive(Debug, Clone)]
pub(crate) struct FieldInfo {
    pub name: String,
    /// Quoted column name.
    pub col: String,
    pub kind: ColKind,
    pub required: bool,
    pub join: Option<JoinInfo>,
}

/// Everything the store derives from one entity definition.
#[derive(Debug, Clone)]
pub(crate) struct EntityInfo {
    pub id: EntityId,
    pub name: String,
    /// Quoted table name.
    pub table: String,
    pub key_name: String,
    /// Quoted key column.
    pub key_col: String,
    pub key: Scalar,
    pub fields: Vec<FieldInfo>,
    /// Field indices stored as columns, in SELECT order (after the key).
    pub columns: Vec<usize>,
    /// `t."key", t."a", ...`
    pub select: String,
    /// The row by key: `?1`.
    pub by_key: String,
    /// CREATE TABLE (without IF NOT EXISTS) for this entity.
    pub ddl: String,
}

impl EntityInfo {
    fn new(schema: &Schema, id: EntityId) -> Result<EntityInfo, StoreError> {
        let def = schema.entity(id);
        let table = quote(&def.name);
        let key = Scalar::of(&def.key.ty).ok_or_else(|| {
            StoreError::Schema(format!("the key `{}` of `{}` is not a scalar", def.key.name, def.name))
        })?;
        let key_col = quote(&def.key.name);
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        let mut select = format!("t.{key_col}");
        let mut ddl = format!("CREATE TABLE {table} ({key_col} {} NOT NULL PRIMARY KEY", key.sql_type());
        for (i, f) in def.fields.iter().enumerate() {
            let kind = ColKind::of(&f.ty);
            let join = match kind {
                ColKind::ManyToMany(target) => {
                    let name = format!("{}_{}", def.name, f.name);
                    let tdef = schema.entity(target);
                    let target_key = Scalar::of(&tdef.key.ty).ok_or_else(|| {
                        StoreError::Schema(format!("the key `{}` of `{}` is not a scalar", tdef.key.name, tdef.name))
                    })?;
                    Some(JoinInfo { table: quote(&name), name, target, target_key })
                }
                _ => None,
            };
            let required = match kind {
                ColKind::Scalar(_) | ColKind::List(_) => !f.ty.is_optional() && !f.ty.admits_absent(),
                _ => false,
            };
            let col = quote(&f.name);
            if join.is_none() {
                columns.push(i);
                select.push_str(&format!(", t.{col}"));
                ddl.push_str(&format!(", {col} {}{}", col_type(kind), if required { " NOT NULL" } else { "" }));
            }
            fields.push(FieldInfo { name: f.name.clone(), col, kind, required, join });
        }
        ddl.push(')');
        let by_key = format!("SELECT {select} FROM {table} AS t WHERE t.{key_col} = ?1");
        Ok(EntityInfo {
            id,
            name: def.name.clone(),
            table,
            key_name: def.key.name.clone(),
            key_col,
            key,
            fields,
            columns,
            select,
            by_key,
            ddl,
        })
    }

    pub(crate) fn join_ddl(&self, j: &JoinInfo) -> String {
        format!(
            "CREATE TABLE {} (\"source\" {} NOT NULL, \"target\" {} NOT NULL, PRIMARY KEY (\"source\", \"target\")) WITHOUT ROWID",
            j.table,
            self.key.sql_type(),
            j.target_key.sql_type()
        )
    }

    /// Read a row whose columns start at `at` in SELECT order.
    pub(crate) fn read_row(&self, r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Arc<Row>> {
        let key = sql_to_scalar(r.get_ref(at)?, self.key);
        let mut fields = vec![Value::Absent; self.fields.len()];
        for (n, &i) in self.columns.iter().enumerate() {
            fields[i] = sql_to_value(r.get_ref(at + 1 + n)?, self.fields[i].kind);
        }
        Ok(Arc::new(Row { entity: self.id, key, fields }))
    }

    fn field(&self, field: usize) -> Result<&FieldInfo, RuntimeError> {
        self.fields.get(field).ok_or_else(|| {
            RuntimeError::new(Code::StoreFailure, format!("`{}` has no field number {field}", self.name))
        })
    }
}

/// The declared SQL type of a column.
fn col_type(kind: ColKind) -> &'static str {
    match kind {
        ColKind::Scalar(s) => s.sql_type(),
        _ => "TEXT",
    }
}

/// "an int", "a uuid": the key kind with its article.
fn a_kind(s: Scalar) -> &'static str {
    match s {
        Scalar::Int => "an int",
        Scalar::Float => "a float",
        Scalar::Bool => "a bool",
        Scalar::Str => "a string",
        Scalar::Uuid => "a uuid",
        Scalar::Timestamp => "a timestamp",
    }
}

/// 64-bit FNV-1a, for the schema fingerprint.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The SQLite store of one schema.
pub struct Store {
    conn: Connection,
    schema: Arc<Schema>,
    ents: Vec<EntityInfo>,
    fingerprint: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

/// Rows of the filtered entity, resolved from the schema.
struct SchemaColumns<'a> {
    info: &'a EntityInfo,
}

impl Columns for SchemaColumns<'_> {
    fn column(&self, entity: EntityId, field: FieldRef, _ty: &Ty) -> Result<ColRef, &'static str> {
        if entity != self.info.id {
            return Err("a field of another entity in a query filter");
        }
        match field {
            FieldRef::Key => {
                Ok(ColRef::Col { sql: format!("t.{}", self.info.key_col), kind: ColKind::Scalar(self.info.key) })
            }
            FieldRef::Field(i) => {
                let f = self.info.fields.get(i).ok_or("no such field")?;
                match &f.join {
                    Some(j) => Ok(ColRef::Join {
                        join: j.table.clone(),
                        key: format!("t.{}", self.info.key_col),
                        target: j.target_key,
                    }),
                    None => Ok(ColRef::Col { sql: format!("t.{}", f.col), kind: f.kind }),
                }
            }
        }
    }
}

impl Store {
    /// Open (creating when missing) the database at `path` for `schema`:
    /// creates Herald's tables and every entity table, adds tables and
    /// optional columns the schema gained since, and fails on a change it
    /// cannot make (a new required column, a column of another type).
    pub fn open(path: &Path, schema: Arc<Schema>) -> Result<Store, StoreError> {
        Store::open_waiting(path, schema, DEFAULT_WAIT)
    }

    /// [`Store::open`], waiting up to `wait` for another process's lock
    /// (then and on every later statement) before failing.
    pub fn open_waiting(path: &Path, schema: Arc<Schema>, wait: Duration) -> Result<Store, StoreError> {
        let open_err =
            |e: rusqlite::Error| StoreError::Open { path: path.display().to_string(), message: describe_sqlite(&e) };
        let conn = Connection::open(path).map_err(open_err)?;
        Store::init(conn, schema, wait).map_err(|e| match e {
            StoreError::Sql(m) => StoreError::Open { path: path.display().to_string(), message: m },
            e => e,
        })
    }

    /// A private in-memory store (tests, `herald test`).
    pub fn open_in_memory(schema: Arc<Schema>) -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?, schema, DEFAULT_WAIT)
    }

    fn init(conn: Connection, schema: Arc<Schema>, wait: Duration) -> Result<Store, StoreError> {
        conn.busy_timeout(wait)?;
        let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        // SQLite's default page cache is 2 MB; the writer's lookups and
        // appends then re-read pages from the OS with a system call each
        // once the store outgrows it. 32 MB is touched only as the store
        // grows, so a small store costs no more memory than before.
        conn.pragma_update(None, "cache_size", -32 * 1024)?;
        // Every CHECK in Herald's tables is an enumeration (`severity`,
        // `status`, `kind`) whose values Herald writes from its own
        // constants, and SQLite evaluates a CHECK `x IN ('a', 'b', 'c')` by
        // building a temporary b-tree for every inserted row: about 25,000
        // instructions, a third of a notification-only firing (BENCHMARKS.md,
        // "Writer (issue 12)"). The constraints stay in the DDL for other
        // writers; Herald's own connections skip them. Set before any
        // statement is prepared: changing it later expires every one.
        // `tests/writer_batch.rs` runs `PRAGMA integrity_check`, which does
        // verify CHECK constraints, on stores Herald wrote.
        conn.pragma_update(None, "ignore_check_constraints", true)?;
        // SQLite copies the WAL into the database once it holds 1,000 pages
        // (4 MB), which a batch of random-keyed replay records exceeds at
        // every commit: each commit then wrote its pages twice. At 10,000
        // pages a checkpoint copies the latest version of a page once for
        // several commits (a third fewer bytes written in
        // `benches/writer/wal_sim.py`); durability is unchanged, a commit
        // still syncs the WAL.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        conn.set_prepared_statement_cache_capacity(256);
        // The bundled SQLite has STAT4: without the query planner stability
        // guarantee, a statement whose plan may depend on a bound value is
        // re-prepared on its next step after every rebind, which undoes the
        // statement cache for the writer's per-event lookups. One plan per
        // statement is what a hot loop of identical queries wants.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        functions::register(&conn)?;
        let ents = schema.entity_ids().map(|id| EntityInfo::new(&schema, id)).collect::<Result<Vec<_>, _>>()?;
        check_names(&ents)?;
        let mut fp_text = String::new();
        for e in &ents {
            fp_text.push_str(&e.ddl);
            fp_text.push('\n');
            for f in &e.fields {
                if let Some(j) = &f.join {
                    fp_text.push_str(&e.join_ddl(j));
                    fp_text.push('\n');
                }
            }
        }
        let fingerprint = format!("{:016x}", fnv1a(&fp_text));
        let store = Store { conn, schema, ents, fingerprint };
        store.conn.execute_batch("BEGIN IMMEDIATE")?;
        match store.create_tables() {
            Ok(()) => store.conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = store.conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        Ok(store)
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        self.conn.execute_batch(HERALD_TABLES)?;
        herald::add_missing_columns(&self.conn)?;
        self.conn.execute_batch(HERALD_EXTRA)?;
        self.conn.execute_batch(state::STATE_TABLES)?;
        self.conn.execute_batch(cursor::CURSOR_TABLES)?;
        outbox::migrate(&self.conn)?;
        self.upgrade_herald_tables()?;
        for e in &self.ents {
            self.ensure_table(&e.name, &e.ddl, &e.expected_columns())?;
            for f in &e.fields {
                if let Some(j) = &f.join {
                    let cols = vec![
                        ExpectedCol { name: "source".into(), ty: e.key.sql_type(), required: true, pk: true },
                        ExpectedCol { name: "target".into(), ty: j.target_key.sql_type(), required: true, pk: true },
                    ];
                    self.ensure_table(&j.name, &e.join_ddl(j), &cols)?;
                    self.conn.execute_batch(&format!(
                        "CREATE INDEX IF NOT EXISTS {} ON {} (\"target\")",
                        quote(&format!("{}.target", j.name)),
                        j.table
                    ))?;
                }
            }
        }
        let old: Option<String> = self
            .conn
            .query_row("SELECT value FROM herald_meta WHERE key = 'schema_fingerprint'", [], |r| r.get(0))
            .ok();
        if old.as_deref() != Some(&self.fingerprint) {
            self.conn.execute(
                "INSERT INTO herald_meta (key, value) VALUES ('schema_fingerprint', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [&self.fingerprint],
            )?;
        }
        self.conn.execute(
            "INSERT INTO herald_meta (key, value) VALUES ('store_format', ?1) ON CONFLICT(key) DO NOTHING",
            [STORE_FORMAT],
        )?;
        Ok(())
    }

    /// Create `table` if missing; otherwise check its columns against
    /// `expected`, adding missing optional ones.
    fn ensure_table(&self, table: &str, ddl: &str, expected: &[ExpectedCol]) -> Result<(), StoreError> {
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )?;
        if !exists {
            self.conn.execute_batch(ddl)?;
            return Ok(());
        }
        let mut have: Vec<(String, String, bool, bool, bool)> = Vec::new();
        {
            let mut st = self
                .conn
                .prepare("SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk FROM pragma_table_info(?1)")?;
            let mut rows = st.query([table])?;
            while let Some(r) = rows.next()? {
                have.push((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)? > 0));
            }
        }
        let incompatible = |column: &str, reason: String| StoreError::Incompatible {
            table: table.to_string(),
            column: column.to_string(),
            reason,
        };
        let mut relax = false;
        for want in expected {
            match have.iter().find(|h| h.0 == want.name) {
                None if want.pk => {
                    return Err(incompatible(&want.name, "the key column is missing".into()));
                }
                None if want.required => {
                    return Err(incompatible(
                        &want.name,
                        "the schema declares a new required field; make it optional (`T?`) or start a new database"
                            .into(),
                    ));
                }
                None => {
                    self.conn.execute_batch(&format!(
                        "ALTER TABLE {} ADD COLUMN {} {}",
                        quote(table),
                        quote(&want.name),
                        want.ty
                    ))?;
                }
                Some((_, ty, notnull, _, pk)) => {
                    if !ty.eq_ignore_ascii_case(want.ty) {
                        return Err(incompatible(
                            &want.name,
                            format!("the database holds {ty} but the schema needs {}", want.ty),
                        ));
                    }
                    if *pk != want.pk {
                        return Err(incompatible(
                            &want.name,
                            if want.pk { "it is not the table's key".into() } else { "it is the table's key".into() },
                        ));
                    }
                    if want.required && !notnull {
                        return Err(incompatible(
                            &want.name,
                            "the field became required but the database allows it to be empty".into(),
                        ));
                    }
                    if !want.required && *notnull && !want.pk {
                        relax = true;
                    }
                }
            }
        }
        for (name, _, notnull, has_default, _) in &have {
            if *notnull && !has_default && !expected.iter().any(|w| &w.name == name) {
                return Err(incompatible(
                    name,
                    "the column is required in the database but no longer in the schema".into(),
                ));
            }
        }
        if relax {
            self.rebuild(table, ddl, expected, &have)?;
        }
        Ok(())
    }

    /// Recreate `table` from `ddl` (a field became optional), keeping its
    /// rows and any columns the schema no longer names.
    fn rebuild(
        &self,
        table: &str,
        ddl: &str,
        expected: &[ExpectedCol],
        have: &[(String, String, bool, bool, bool)],
    ) -> Result<(), StoreError> {
        let tmp = format!("herald_rebuild_{table}");
        let q = quote(table);
        let qt = quote(&tmp);
        let mut new_ddl = ddl.replacen(&format!("CREATE TABLE {q} ("), &format!("CREATE TABLE {qt} ("), 1);
        new_ddl.pop();
        let mut cols: Vec<String> = expected.iter().map(|c| quote(&c.name)).collect();
        for (name, ty, ..) in have {
            if !expected.iter().any(|w| &w.name == name) {
                new_ddl.push_str(&format!(", {} {}", quote(name), ty));
                cols.push(quote(name));
            }
        }
        new_ddl.push(')');
        let cols = cols.join(", ");
        self.conn.execute_batch(&format!(
            "{new_ddl}; INSERT INTO {qt} ({cols}) SELECT {cols} FROM {q}; DROP TABLE {q}; ALTER TABLE {qt} RENAME TO {q};"
        ))?;
        Ok(())
    }

    /// The schema fingerprint kept in `herald_meta`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The underlying connection, for tools and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn ent(&self, entity: EntityId) -> Result<&EntityInfo, RuntimeError> {
        self.ents
            .get(entity.0 as usize)
            .ok_or_else(|| RuntimeError::new(Code::StoreFailure, format!("no entity number {}", entity.0)))
    }

    /// Create an index for every entity field a query filter of `program`
    /// tests with `==` or `in`, so those queries do not scan.
    pub fn ensure_indexes(&self, program: &ir::Program) -> Result<(), StoreError> {
        let mut wanted: Vec<(EntityId, usize, Vec<String>)> = Vec::new();
        let mut note = |e: &ir::Expr| {
            if let ExprKind::Row { entity, field: FieldRef::Field(i), path } = &e.kind {
                let w = (*entity, *i, path.clone());
                if !wanted.contains(&w) {
                    wanted.push(w);
                }
            }
        };
        for rule in &program.rules {
            for root in rule.body_exprs() {
                root.walk(&mut |e| match &e.kind {
                    ExprKind::Cmp { op: ir::CmpOp::Eq, lhs, rhs } => {
                        note(lhs);
                        note(rhs);
                    }
                    ExprKind::In { elem, .. } => note(elem),
                    ExprKind::Call { func: ir::Builtin::Contains, args } if args.len() == 2 => note(&args[1]),
                    _ => {}
                });
            }
        }
        for (entity, field, path) in wanted {
            let Some(info) = self.ents.get(entity.0 as usize) else { continue };
            let Some(f) = info.fields.get(field) else { continue };
            let (name, expr) = match f.kind {
                ColKind::Scalar(_) if path.is_empty() => (format!("herald_ix.{}.{}", info.name, f.name), f.col.clone()),
                ColKind::Any => {
                    let Some(p) = filter::json_path_sql(&path) else { continue };
                    (
                        format!("herald_ix.{}.{}.{}", info.name, f.name, path.join(".")),
                        format!("json_extract({}, {p})", f.col),
                    )
                }
                _ => continue,
            };
            self.conn.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({expr})",
                quote(&name),
                info.table
            ))?;
        }
        Ok(())
    }

    /// The SQL form of a key for `info`, `None` when absent or null.
    fn key_sql(&self, info: &EntityInfo, key: &Value) -> Result<Option<Sql>, RuntimeError> {
        if key.is_nullish() {
            return Ok(None);
        }
        if let Value::Entity(row) = key {
            if row.entity != info.id {
                return Err(RuntimeError::new(
                    Code::DynamicType,
                    format!(
                        "expected {} key for `{}`, found a `{}` row",
                        a_kind(info.key),
                        info.name,
                        self.ents[row.entity.0 as usize].name
                    ),
                ));
            }
        }
        match scalar_to_sql(key, info.key) {
            Some(v) => Ok(Some(v)),
            None => Err(RuntimeError::new(
                Code::DynamicType,
                format!("expected {} key for `{}`, found {}", a_kind(info.key), info.name, describe(key)),
            )),
        }
    }

    /// `E[key]`: the row, or `None`. A uuid key may be a `Uuid` or a string
    /// in dashed or 32-hex form; an int key an int or a whole float. An
    /// absent or null key finds nothing; a key of the wrong kind is R0001.
    pub fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        let info = self.ent(entity)?;
        let Some(k) = self.key_sql(info, key)? else { return Ok(None) };
        let mut st = self.conn.prepare_cached(&info.by_key).map_err(sql_err)?;
        let mut rows = st.query([k]).map_err(sql_err)?;
        match rows.next().map_err(sql_err)? {
            Some(r) => Ok(Some(info.read_row(r, 0).map_err(sql_err)?)),
            None => Ok(None),
        }
    }

    /// `E[keys]`: the rows found, in the order of `keys`. Missing keys and
    /// absent/null keys are skipped; a key given twice yields its row twice.
    /// A key of the wrong kind is R0001. One SQL query.
    pub fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        let info = self.ent(entity)?;
        let mut arr = Vec::with_capacity(keys.len());
        for k in keys {
            match self.key_sql(info, k)? {
                Some(Sql::Integer(i)) => arr.push(serde_json::Value::from(i)),
                Some(Sql::Real(f)) => {
                    arr.push(serde_json::Number::from_f64(f).map(serde_json::Value::Number).unwrap_or_default())
                }
                Some(Sql::Text(t)) => arr.push(serde_json::Value::String(t)),
                _ => {}
            }
        }
        if arr.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM json_each(?1) AS k JOIN {} AS t ON t.{} = k.value ORDER BY k.key",
            info.select, info.table, info.key_col
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        let mut rows = st.query([serde_json::Value::Array(arr).to_string()]).map_err(sql_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql_err)? {
            out.push(info.read_row(r, 0).map_err(sql_err)?);
        }
        Ok(out)
    }

    /// A many-to-many field of the row with `key`: the related rows in key
    /// order (join rows whose target does not exist are skipped).
    pub fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError> {
        let info = self.ent(entity)?;
        let f = info.field(field)?;
        let Some(j) = &f.join else {
            return Err(RuntimeError::new(
                Code::StoreFailure,
                format!("`{}.{}` is not a many-to-many field", info.name, f.name),
            ));
        };
        let Some(k) = self.key_sql(info, key)? else { return Ok(Vec::new()) };
        let t = self.ent(j.target)?;
        let sql = format!(
            "SELECT {} FROM {} AS r JOIN {} AS t ON t.{} = r.\"target\" WHERE r.\"source\" = ?1 ORDER BY t.{}",
            t.select, j.table, t.table, t.key_col, t.key_col
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        let mut rows = st.query([k]).map_err(sql_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql_err)? {
            out.push(t.read_row(r, 0).map_err(sql_err)?);
        }
        Ok(out)
    }

    /// `exists/count/first/all E(filter)`: `Bool`, `Int`, the row with the
    /// lowest key (or `Absent`), or the list of rows in key order.
    ///
    /// `eval` computes the filter's outer values (sub-expressions that do
    /// not read the row), each once, in source order, before the query.
    pub fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&ir::Expr>,
        eval: &mut dyn FnMut(&ir::Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        let (sql, params) = self.query_sql(kind, entity, filter, eval)?;
        let info = self.ent(entity)?;
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        let mut rows = st.query(rusqlite::params_from_iter(params)).map_err(sql_err)?;
        match kind {
            QueryKind::Exists | QueryKind::Count => {
                let r = rows.next().map_err(sql_err)?.ok_or_else(|| sql_err(rusqlite::Error::QueryReturnedNoRows))?;
                let n: i64 = r.get(0).map_err(sql_err)?;
                Ok(if kind == QueryKind::Exists { Value::Bool(n != 0) } else { Value::Int(n) })
            }
            QueryKind::First => match rows.next().map_err(sql_err)? {
                Some(r) => Ok(Value::Entity(info.read_row(r, 0).map_err(sql_err)?)),
                None => Ok(Value::Absent),
            },
            QueryKind::All => {
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(sql_err)? {
                    out.push(Value::Entity(info.read_row(r, 0).map_err(sql_err)?));
                }
                Ok(Value::list(out))
            }
        }
    }

    /// SQLite's plan for a query (`EXPLAIN QUERY PLAN`, one step a line),
    /// to check that queries use indexes.
    #[doc(hidden)]
    pub fn query_plan(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&ir::Expr>,
        eval: &mut dyn FnMut(&ir::Expr) -> Result<Value, RuntimeError>,
    ) -> Result<String, RuntimeError> {
        let (sql, params) = self.query_sql(kind, entity, filter, eval)?;
        let mut st = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).map_err(sql_err)?;
        let mut rows = st.query(rusqlite::params_from_iter(params)).map_err(sql_err)?;
        let mut out = String::new();
        while let Some(r) = rows.next().map_err(sql_err)? {
            out.push_str(&r.get::<_, String>(3).map_err(sql_err)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// The SQL text and parameters of a query.
    fn query_sql(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&ir::Expr>,
        eval: &mut dyn FnMut(&ir::Expr) -> Result<Value, RuntimeError>,
    ) -> Result<(String, Vec<Sql>), RuntimeError> {
        let info = self.ent(entity)?;
        let (cond, params) = match filter {
            None => (None, Vec::new()),
            Some(f) => {
                let cols = SchemaColumns { info };
                // The checker admits only filters `crate::filter::classify`
                // accepts, and the compiler translates all of those: an
                // error here is a bug, not a user's mistake.
                let c = filter::compile_filter(f, &cols).map_err(|(span, msg)| {
                    RuntimeError::new(
                        Code::StoreFailure,
                        format!("internal error: a checked query filter has no SQL form: {msg}"),
                    )
                    .at(span)
                })?;
                let mut outer = Vec::with_capacity(c.outer.len());
                for e in &c.outer {
                    outer.push(match &e.kind {
                        ExprKind::Lit(v) => v.clone(),
                        _ => eval(e)?,
                    });
                }
                let params: Vec<Sql> = c.binds.iter().map(|b| convert::bind_value(*b, &outer, &self.schema)).collect();
                (Some(c.sql), params)
            }
        };
        let w = match &cond {
            Some(c) => format!(" WHERE {c}"),
            None => String::new(),
        };
        let (table, key) = (&info.table, &info.key_col);
        let sql = match kind {
            QueryKind::Exists => format!("SELECT EXISTS (SELECT 1 FROM {table} AS t{w})"),
            QueryKind::Count => format!("SELECT count(*) FROM {table} AS t{w}"),
            QueryKind::First => format!("SELECT {} FROM {table} AS t{w} ORDER BY t.{key} LIMIT 1", info.select),
            QueryKind::All => format!("SELECT {} FROM {table} AS t{w} ORDER BY t.{key}", info.select),
        };
        Ok((sql, params))
    }

    // ---- transactions -------------------------------------------------

    /// Start a transaction (taking the write lock now).
    pub fn begin(&self) -> Result<(), RuntimeError> {
        self.exec_cached("BEGIN IMMEDIATE")
    }

    pub fn commit(&self) -> Result<(), RuntimeError> {
        self.exec_cached("COMMIT")
    }

    pub fn rollback(&self) -> Result<(), RuntimeError> {
        self.exec_cached("ROLLBACK")
    }

    /// Is a transaction open?
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Open a (nested) savepoint. Use a few fixed names (`event`, `rule`):
    /// each distinct name is a distinct cached statement.
    pub fn savepoint(&self, name: &str) -> Result<(), RuntimeError> {
        self.exec_cached(&format!("SAVEPOINT {}", quote(name)))
    }

    /// Keep the savepoint's writes and close it.
    pub fn release(&self, name: &str) -> Result<(), RuntimeError> {
        self.exec_cached(&format!("RELEASE {}", quote(name)))
    }

    /// Discard the savepoint's writes and close it (ROLLBACK TO, then
    /// RELEASE): afterwards the savepoint no longer exists.
    pub fn rollback_to(&self, name: &str) -> Result<(), RuntimeError> {
        self.exec_cached(&format!("ROLLBACK TO {}", quote(name)))?;
        self.exec_cached(&format!("RELEASE {}", quote(name)))
    }

    pub(crate) fn exec_cached(&self, sql: &str) -> Result<(), RuntimeError> {
        let mut st = self.conn.prepare_cached(sql).map_err(sql_err)?;
        st.execute([]).map_err(sql_err)?;
        Ok(())
    }
}

/// One column an existing table must have.
struct ExpectedCol {
    name: String,
    ty: &'static str,
    required: bool,
    pk: bool,
}

impl EntityInfo {
    fn expected_columns(&self) -> Vec<ExpectedCol> {
        let mut v =
            vec![ExpectedCol { name: self.key_name.clone(), ty: self.key.sql_type(), required: true, pk: true }];
        for &i in &self.columns {
            let f = &self.fields[i];
            v.push(ExpectedCol { name: f.name.clone(), ty: col_type(f.kind), required: f.required, pk: false });
        }
        v
    }
}

/// Table names must not clash (SQLite compares them case-insensitively)
/// nor use Herald's or SQLite's prefixes.
fn check_names(ents: &[EntityInfo]) -> Result<(), StoreError> {
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, what: String| -> Result<(), StoreError> {
        let lower = name.to_lowercase();
        if lower.starts_with("herald_") || lower.starts_with("sqlite_") {
            return Err(StoreError::Schema(format!("{what} would be the table `{name}`, a name reserved for Herald")));
        }
        if name.contains('\0') {
            return Err(StoreError::Schema(format!("{what} has a NUL character in its name")));
        }
        if let Some((_, other)) = seen.iter().find(|(n, _)| *n == lower) {
            return Err(StoreError::Schema(format!("{what} and {other} would both be the table `{name}`")));
        }
        seen.push((lower, what));
        Ok(())
    };
    for e in ents {
        add(&e.name, format!("entity `{}`", e.name))?;
        for f in &e.fields {
            if let Some(j) = &f.join {
                add(&j.name, format!("the many-to-many field `{}.{}`", e.name, f.name))?;
            }
        }
    }
    Ok(())
}
