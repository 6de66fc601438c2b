//! The `herald` command line. The only module that prints diagnostics.

mod authoring;
mod commands;
mod fmt;
pub mod render;
mod serve;
mod source;
mod test;

use crate::compile::{self, SchemaChoice};
use crate::diag::Code;
use crate::engine::DEFAULT_MAX_LINE;
use crate::span::{FileId, SourceMap};
use crate::store::DEFAULT_WAIT;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

mod pages {
    include!(concat!(env!("OUT_DIR"), "/error_pages.rs"));
}

/// The documentation page of a code, as shipped in docs/errors.
pub fn explain_page(code: Code) -> Option<&'static str> {
    pages::PAGES.iter().find(|(c, _)| *c == code.as_str()).map(|(_, p)| *p)
}

/// Exit codes (CONTRACT.md).
pub const EXIT_OK: i32 = 0;
pub const EXIT_COMPILE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(name = "herald", version, about = "Typed, compiled policies for event-driven automation")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    Jit,
    Interp,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Type-check policy files against the schema.
    Check {
        /// A schema file, or `authentik` (the built-in default).
        #[arg(long)]
        schema: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Also list which rules the JIT compiles and which run interpreted.
        #[arg(long)]
        verbose: bool,
        /// Policy files, or directories of `.herald` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Evaluate policies over NDJSON events and apply their effects.
    Run(RunArgs),
    /// Manage the SQLite store.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Inspect or deliver queued email and webhooks.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Run the bundled authentik example end to end and show what happened.
    Demo {
        /// The SQLite file to create (replaced if it exists).
        #[arg(long, default_value = "herald-demo.db")]
        db: PathBuf,
        #[arg(long, value_enum, default_value = "jit")]
        engine: Engine,
        /// Deliver the demo's email to this SMTP server.
        #[arg(long)]
        smtp: Option<String>,
        #[arg(long, default_value = "herald@localhost")]
        mail_from: String,
    },
    /// Print the documentation page of a diagnostic code.
    Explain { code: String },
    /// Run as a service: events over HTTP, processed as `run` does.
    Serve(serve::ServeArgs),
    /// Rewrite policy and schema files in the canonical layout.
    Fmt {
        /// Change nothing; list the files that would change and exit 1 if any.
        #[arg(long)]
        check: bool,
        /// Files, or directories (searched recursively for `.herald` files).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the language server over standard input and output.
    Lsp,
    /// Show, clause by clause, why rules fired or not on chosen events,
    /// against a copy of the store (nothing is written or sent).
    Trace {
        /// A schema file, or `authentik` (the built-in default).
        #[arg(long)]
        schema: Option<String>,
        /// The store to read (copied; never written). Without it, an empty store.
        #[arg(long)]
        db: Option<PathBuf>,
        /// NDJSON events: a file, or `-` for standard input.
        #[arg(long)]
        events: PathBuf,
        /// Trace only this rule (repeatable). Default: every rule that
        /// takes the event's type.
        #[arg(long = "rule", value_name = "NAME")]
        rules: Vec<String>,
        /// Trace only the event on this line (1-based; repeatable).
        #[arg(long = "line", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        lines: Vec<u64>,
        /// Trace at most this many events (the rest are counted).
        #[arg(long, default_value_t = 20, value_parser = ranged(1, 1_000_000))]
        limit: u64,
        /// Pin `now()` (RFC 3339); default: the clock.
        #[arg(long)]
        now: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Policy files, or directories of `.herald` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Replay events under two versions of a policy and show every event
    /// whose outcome differs (exit 1 if any), then per-rule totals.
    Diff {
        /// A schema file, or `authentik` (the built-in default).
        #[arg(long)]
        schema: Option<String>,
        /// The starting store (each version runs on its own copy; never
        /// written). Without it, an empty store.
        #[arg(long)]
        db: Option<PathBuf>,
        /// NDJSON events: a file, or `-` for standard input.
        #[arg(long)]
        events: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// The old version: a policy file or a directory of `.herald` files.
        old: PathBuf,
        /// The new version.
        new: PathBuf,
    },
    /// Run the `test` items of policy files against their rules.
    Test {
        /// A schema file, or `authentik` (the built-in default).
        #[arg(long)]
        schema: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Also write the results as JUnit XML to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Also report the rules, clauses and queries no test reached and the
        /// guards that never both passed and stopped a rule (exit code unchanged).
        #[arg(long)]
        coverage: bool,
        /// Policy and test files, or directories of `.herald` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A schema file, or `authentik` (the built-in default).
    #[arg(long)]
    pub schema: Option<String>,
    /// The SQLite store (created and initialised when missing).
    #[arg(long, default_value = "herald.db")]
    pub db: PathBuf,
    /// NDJSON events: a file, or `-` for standard input.
    #[arg(long, default_value = "-")]
    pub events: PathBuf,
    /// Where events come from: `postgres://USER@HOST:PORT/DB` reads
    /// authentik's `authentik_events_event` table from Herald's durable
    /// cursor (docs/postgres-source.md); a file or `-` is `--events`.
    #[arg(long, value_name = "URL|PATH|-", conflicts_with = "events")]
    pub source: Option<String>,
    /// With a `postgres://` source: keep following new events until
    /// SIGTERM or SIGINT (then finish the batch, commit, exit 0).
    #[arg(long)]
    pub follow: bool,
    /// With a `postgres://` source: how far (seconds) behind the newest
    /// event a row that commits late is still picked up (0 to 86400).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, allow_negative_numbers = true,
          value_parser = ranged(0, 86_400))]
    pub source_lookback: u64,
    /// With a `postgres://` source and a `postgres://` store, following:
    /// share the source with other workers. Its events are split into N
    /// partitions (1 to 4096) by account; each worker holds some by a lease
    /// and every worker of one source gives the same N (docs/postgres-source.md).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = ranged(1, 4096))]
    pub partitions: Option<u64>,
    /// With `--partitions`: how long (seconds, 1 to 3600) a worker's leases
    /// last unrenewed, so how soon the partitions of a worker that died are
    /// taken over.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, allow_negative_numbers = true,
          value_parser = ranged(1, 3600))]
    pub lease_seconds: u64,
    /// With `--partitions`: this worker's name in `herald.herald_partition`
    /// (default: the host name; the process id and start time are added).
    #[arg(long, value_name = "NAME")]
    pub worker_id: Option<String>,
    #[arg(long, value_enum, default_value = "jit")]
    pub engine: Engine,
    /// Deliver email through this server: `smtp://host:port`, `smtps://host`.
    #[arg(long)]
    pub smtp: Option<String>,
    /// The sender of emails.
    #[arg(long, default_value = "herald@localhost")]
    pub mail_from: String,
    /// Events per transaction, at most (1 to 1000000).
    #[arg(long, default_value_t = 10_000, allow_negative_numbers = true, value_parser = ranged(1, MAX_BATCH))]
    pub batch: u64,
    /// Load these fixtures into the store before running.
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Ignore the stored checkpoint and read the input from its first line
    /// (events already processed are still skipped).
    #[arg(long)]
    pub from_start: bool,
    /// Decode+match threads, 1 to 256 (default: one per core, at most 8).
    #[arg(long, allow_negative_numbers = true, value_parser = ranged(1, MAX_THREADS))]
    pub threads: Option<u64>,
    /// Lines longer than this many bytes are dead letters, skipped without
    /// being held in memory whole (1 to 1 GiB; default 64 MiB).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LINE as u64,
          allow_negative_numbers = true, value_parser = ranged(1, MAX_LINE_BYTES))]
    pub max_line_bytes: u64,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub mapping: MappingArg,
    /// Apply rules new to already-processed events (a rule name never
    /// applied to them); reads the input from its first line.
    #[arg(long)]
    pub backfill: bool,
    /// Pin `now()` to this instant for the whole run (RFC 3339, e.g.
    /// `2026-04-14T08:00:00Z`), so that a replay gives the same answers.
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_now)]
    pub now: Option<i128>,
    /// No summary on standard error.
    #[arg(long)]
    pub quiet: bool,
    /// Log lines on standard error (dead letters, rule errors, `log`
    /// actions, the summary): `human`, or `json` (one object per line with
    /// `time`, `level`, `message`, `rule`, `event`, `line`).
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: Format,
    /// Policy files, or directories of `.herald` files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Bounds of the numeric flags: beyond them a value is a usage error, not
/// a panic or a huge allocation.
pub const MAX_THREADS: u64 = 256;
pub const MAX_BATCH: u64 = 1_000_000;
pub const MAX_LINE_BYTES: u64 = 1 << 30;
pub const MAX_WAIT_SECONDS: u64 = 86_400;

/// A `u64` flag within `lo..=hi`. Parsed as a signed number so that `-1`
/// is reported as out of range rather than as an unknown option.
fn ranged(lo: u64, hi: u64) -> clap::builder::RangedI64ValueParser<u64> {
    clap::builder::RangedI64ValueParser::new().range(lo as i64..=hi as i64)
}

/// `--wait`, shared by the commands that write to the store.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct WaitArg {
    /// How long to wait for another process's lock on the store before
    /// giving up, in seconds (0 to 86400).
    #[arg(long = "wait", value_name = "SECONDS", default_value_t = DEFAULT_WAIT.as_secs(),
          allow_negative_numbers = true, value_parser = ranged(0, MAX_WAIT_SECONDS))]
    pub seconds: u64,
}

impl WaitArg {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
    }
}

/// `--mapping` and `--authentik-schema`: where a PostgreSQL store's
/// entities live (docs/deploy-authentik.md).
#[derive(clap::Args, Debug, Clone)]
pub struct MappingArg {
    /// `authentik`: the built-in schema's entities are authentik's own
    /// tables (PostgreSQL only); without it Herald keeps its own entity
    /// tables in the schema `herald`.
    #[arg(long = "mapping", value_name = "NAME", value_parser = ["authentik"])]
    pub mapping: Option<String>,
    /// The schema holding authentik's tables (authentik's tenant schema):
    /// where `--mapping authentik` finds its entities and a `postgres://`
    /// `--source` its events.
    #[arg(long = "authentik-schema", value_name = "SCHEMA", default_value = "public")]
    pub authentik_schema: String,
}

impl MappingArg {
    pub fn options(&self, wait: std::time::Duration) -> crate::store::OpenOptions {
        crate::store::OpenOptions {
            wait,
            mapping: self
                .mapping
                .as_ref()
                .map(|_| crate::store::EntityMapping::Authentik { tenant: self.authentik_schema.clone() }),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create the store's tables from the schema (and the entities the
    /// policy files declare).
    Init {
        #[arg(long)]
        schema: Option<String>,
        /// The SQLite store (created when missing).
        #[arg(long, default_value = "herald.db")]
        db: PathBuf,
        #[command(flatten)]
        wait: WaitArg,
        #[command(flatten)]
        mapping: MappingArg,
        /// Policy files, or directories of `.herald` files, whose schema
        /// items extend the schema (as for `run`).
        files: Vec<PathBuf>,
    },
    /// Load fixtures (`{"User": [{...}], ...}`), upserting rows by key and
    /// merging into existing rows.
    Load {
        #[arg(long)]
        schema: Option<String>,
        /// The SQLite store (created and initialised when missing).
        #[arg(long, default_value = "herald.db")]
        db: PathBuf,
        #[command(flatten)]
        wait: WaitArg,
        #[command(flatten)]
        mapping: MappingArg,
        /// Replace whole rows: fields the file omits become empty.
        #[arg(long)]
        replace: bool,
        fixtures: PathBuf,
        /// Policy files, or directories of `.herald` files, whose schema
        /// items extend the schema (as for `run`).
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// List queued, failed and sent email and webhooks.
    List {
        #[arg(long, default_value = "herald.db")]
        db: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Try to deliver every unsent webhook now, and every unsent email
    /// when `--smtp` is given.
    Flush {
        #[arg(long, default_value = "herald.db")]
        db: PathBuf,
        /// The SMTP server for email (email stays queued without it).
        #[arg(long)]
        smtp: Option<String>,
        #[arg(long, default_value = "herald@localhost")]
        mail_from: String,
    },
}

/// Entry point of the `herald` binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    match cli.command {
        Command::Check { schema, format, verbose, files } => check(schema.as_deref(), format, verbose, &files),
        Command::Run(args) => commands::run(&args),
        Command::Db { command } => commands::db(command),
        Command::Outbox { command } => commands::outbox(command),
        Command::Demo { db, engine, smtp, mail_from } => commands::demo(&db, engine, smtp.as_deref(), &mail_from),
        Command::Explain { code } => explain(&code),
        Command::Serve(args) => serve::serve(&args),
        Command::Fmt { check, files } => fmt::fmt(check, &files),
        Command::Lsp => crate::lsp::main(),
        Command::Trace { schema, db, events, rules, lines, limit, now, format, files } => {
            authoring::trace(&authoring::TraceArgs {
                schema: schema.as_deref(),
                db: db.as_deref(),
                events: &events,
                rules: &rules,
                lines: &lines,
                limit: limit as usize,
                now: now.as_deref(),
                format,
                files: &files,
            })
        }
        Command::Diff { schema, db, events, format, old, new } => authoring::diff(&authoring::DiffArgs {
            schema: schema.as_deref(),
            db: db.as_deref(),
            events: &events,
            format,
            old: &old,
            new: &new,
        }),
        Command::Test { schema, format, junit, coverage, files } => {
            test::test(schema.as_deref(), format, junit.as_deref(), coverage, &files)
        }
    }
}

fn explain(code: &str) -> i32 {
    let Some(c) = Code::parse(code) else {
        let known: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let hint = crate::diag::suggest(&code.to_ascii_uppercase(), known.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        eprintln!("herald: `{code}` is not a diagnostic code{hint}");
        return EXIT_USAGE;
    };
    match explain_page(c) {
        Some(page) => {
            print!("{page}");
            EXIT_OK
        }
        None => {
            eprintln!("herald: no documentation page for {c}");
            EXIT_USAGE
        }
    }
}

/// A usage or IO problem: printed, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// Read the policy files (directories expand to their `.herald` files, in
/// name order) and the schema choice into a source map.
pub fn load_sources(
    schema: Option<&str>,
    files: &[PathBuf],
) -> Result<(SourceMap, SchemaChoice, Vec<FileId>), UsageError> {
    let mut sources = SourceMap::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let choice = match schema {
        None => SchemaChoice::Auto,
        Some("authentik") => SchemaChoice::Builtin,
        Some(path) => {
            let p = Path::new(path);
            let text = read(p)?;
            seen.push(canonical(p));
            SchemaChoice::File(sources.add(path, text))
        }
    };
    let mut ids = Vec::new();
    for f in files {
        let paths = if f.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(f)
                .map_err(|e| UsageError(format!("cannot read directory `{}`: {e}", f.display())))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("herald") && p.is_file())
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(UsageError(format!("directory `{}` holds no `.herald` files", f.display())));
            }
            v
        } else {
            vec![f.clone()]
        };
        for p in paths {
            let c = canonical(&p);
            if seen.contains(&c) {
                continue;
            }
            seen.push(c);
            let text = read(&p)?;
            ids.push(sources.add(p.display().to_string(), text));
        }
    }
    Ok((sources, choice, ids))
}

fn read(p: &Path) -> Result<String, UsageError> {
    let bytes = std::fs::read(p).map_err(|e| UsageError(format!("cannot read `{}`: {e}", p.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        UsageError(format!(
            "`{}` is not UTF-8 text (invalid byte at offset {})",
            p.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn check(schema: Option<&str>, format: Format, verbose: bool, files: &[PathBuf]) -> i32 {
    let (mut sources, choice, ids) = match load_sources(schema, files) {
        Ok(x) => x,
        Err(UsageError(m)) => {
            eprintln!("herald: {m}");
            return EXIT_USAGE;
        }
    };
    let compiled = compile::compile(&mut sources, choice, &ids);
    let (errors, warnings) = (compiled.errors(), compiled.warnings());
    match format {
        Format::Json => {
            let out = render::json(&compiled.diagnostics, &sources);
            println!("{out}");
        }
        Format::Human => {
            let style = render::Style::detect(std::io::stderr().is_terminal());
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(render::human(&compiled.diagnostics, &sources, style).as_bytes());
            let _ = err.write_all(render::summary(errors, warnings).as_bytes());
            if errors == 0 {
                if let Some(p) = &compiled.program {
                    let _ = writeln!(
                        err,
                        "ok: {} rule{} checked",
                        p.rules.len(),
                        if p.rules.len() == 1 { "" } else { "s" }
                    );
                    if verbose {
                        for (id, why) in crate::jit::status(p) {
                            let name = &p.rule(id).name;
                            let _ = match why {
                                None => writeln!(err, "  rule {name}: match JIT-compiled"),
                                Some(why) => writeln!(err, "  rule {name}: match interpreted ({why})"),
                            };
                        }
                    }
                }
            }
        }
    }
    if errors > 0 {
        EXIT_COMPILE
    } else {
        EXIT_OK
    }
}

/// `--now`: an RFC 3339 timestamp in years 1 to 9999 (a usage error otherwise).
fn parse_now(s: &str) -> Result<i128, String> {
    crate::value::parse_timestamp(s.trim())
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 timestamp in years 1 to 9999 (e.g. `2026-04-14T08:00:00Z`)"))
}
