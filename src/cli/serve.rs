//! `herald serve`: flags, the policy loader the service reloads with, and
//! the token file.

use super::commands::{mailer, make_matcher};
use super::{load_sources, ranged, render, Engine, UsageError, WaitArg, EXIT_USAGE, MAX_BATCH, MAX_THREADS};
use crate::compile;
use crate::logfmt::LogFormat;
use crate::serve::{Config, Deliverer, EmailDeliverer, Loaded, Loader, WebhookDeliverer};
use crate::store::OutboxStore;
use std::net::ToSocketAddrs;
use std::path::PathBuf;

/// The most a request body may hold (1 GiB).
pub const MAX_BODY_BYTES: u64 = 1 << 30;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Log lines on standard error (the service's messages, dead letters,
    /// rule errors, `log` actions): `human`, or `json` (one object per line
    /// with `time`, `level`, `message`, and `rule`, `event`, `line` when the
    /// line is about an event).
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: super::Format,
    /// The address to listen on (`HOST:PORT`; port 0 picks a free one, and
    /// the log says which).
    #[arg(long, default_value = "127.0.0.1:8425")]
    pub listen: String,
    /// The SQLite store (created and initialised when missing).
    #[arg(long, default_value = "herald.db")]
    pub db: String,
    /// A file holding the bearer token that `POST /events` and
    /// `POST /reload` require. Required unless listening on loopback.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// A schema file, or `authentik` (the built-in default).
    #[arg(long)]
    pub schema: Option<String>,
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
    /// Decode+match threads, 1 to 256 (default: one per core, at most 8).
    #[arg(long, allow_negative_numbers = true, value_parser = ranged(1, MAX_THREADS))]
    pub threads: Option<u64>,
    /// Threads answering HTTP requests (1 to 256).
    #[arg(long, default_value_t = 8, allow_negative_numbers = true, value_parser = ranged(1, MAX_THREADS))]
    pub http_threads: u64,
    /// The largest request body accepted, in bytes (1 KiB to 1 GiB; larger
    /// is answered 413).
    #[arg(long, value_name = "N", default_value_t = 16 << 20, allow_negative_numbers = true,
          value_parser = ranged(1024, MAX_BODY_BYTES))]
    pub max_body_bytes: u64,
    /// Acknowledged events waiting to be processed, at most (1 to 10000000);
    /// beyond, requests are answered 429 with `Retry-After`.
    #[arg(long, value_name = "N", default_value_t = 100_000, allow_negative_numbers = true,
          value_parser = ranged(1, 10_000_000))]
    pub max_queue: u64,
    #[command(flatten)]
    pub wait: WaitArg,
    /// Policy files, or directories of `.herald` files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("herald: {msg}");
    EXIT_USAGE
}

/// `--db` takes a path; `sqlite:PATH` and `sqlite://PATH` are accepted too.
fn db_path(db: &str) -> Result<PathBuf, String> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        return Err("`herald serve` stores to SQLite only for now: give --db a file path".into());
    }
    let path = db.strip_prefix("sqlite://").or_else(|| db.strip_prefix("sqlite:")).unwrap_or(db);
    Ok(PathBuf::from(path))
}

fn read_token(path: &PathBuf) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read --token-file `{}`: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("--token-file `{}` is empty", path.display()));
    }
    if token.contains(char::is_whitespace) || !token.is_ascii() {
        return Err(format!("the token in `{}` must be one word of ASCII", path.display()));
    }
    Ok(token.to_string())
}

fn is_loopback(listen: &str) -> bool {
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

pub fn serve(args: &ServeArgs) -> i32 {
    if crate::store::is_postgres(std::path::Path::new(&args.db)) {
        // The intake is a table in the SQLite store, in the engine's
        // transactions (ARCHITECTURE.md); it has no PostgreSQL form yet.
        return fail("`herald serve` needs a SQLite store for now (`--db PATH`), not a PostgreSQL URL");
    }
    let db = match db_path(&args.db) {
        Ok(p) => p,
        Err(m) => return fail(m),
    };
    let token = match &args.token_file {
        Some(f) => match read_token(f) {
            Ok(t) => Some(t),
            Err(m) => return fail(m),
        },
        None if is_loopback(&args.listen) => {
            eprintln!("herald: warning: no --token-file: POST /events and /reload are open to local processes");
            None
        }
        None => return fail(format!("--token-file is required to listen on {} (not a loopback address)", args.listen)),
    };
    let mut deliverers: Vec<Box<dyn Deliverer>> = Vec::new();
    if let Some(url) = &args.smtp {
        let m = match mailer(url, &args.mail_from, LogFormat::Human) {
            Ok(m) => m,
            Err(code) => return code,
        };
        // The store must exist for the outbox connection: created below by
        // the service, so open it after a first compile.
        deliverers.push(Box::new(LazyEmail { mailer: Some(m), db: db.clone(), inner: None }));
    }
    // Webhooks need no configuration: delivered like `run` delivers them.
    deliverers.push(Box::new(WebhookDeliverer::new(
        crate::webhook::Sender::new(crate::webhook::WebhookConfig::default()),
        db.clone(),
    )));
    let (schema, files, engine) = (args.schema.clone(), args.files.clone(), args.engine);
    let loader: Loader = Box::new(move || {
        let (mut sources, choice, ids) = load_sources(schema.as_deref(), &files).map_err(|UsageError(m)| m)?;
        let compiled = compile::compile(&mut sources, choice, &ids);
        let text = if compiled.diagnostics.is_empty() {
            String::new()
        } else {
            render::human(&compiled.diagnostics, &sources, render::Style::detect(false))
                + &render::summary(compiled.errors(), compiled.warnings())
        };
        match compiled.program {
            Some(p) => {
                if !text.is_empty() {
                    eprint!("{text}");
                }
                let program = std::sync::Arc::new(p);
                let matcher = make_matcher(engine, &program, LogFormat::Human)
                    .map_err(|_| "the matcher cannot be built".to_string())?;
                Ok(Loaded { program, matcher })
            }
            None => Err(text),
        }
    });
    let config = Config {
        log_format: match args.log_format {
            super::Format::Human => LogFormat::Human,
            super::Format::Json => LogFormat::Json,
        },
        listen: args.listen.clone(),
        db,
        token,
        batch: args.batch as usize,
        workers: args.threads.map_or_else(crate::engine::default_workers, |t| t as usize),
        max_body: args.max_body_bytes as usize,
        max_queue: args.max_queue,
        http_threads: args.http_threads as usize,
        wait: args.wait.duration(),
        deliverers,
    };
    crate::serve::serve(config, loader)
}

/// Email delivery whose outbox connection opens at the first pass, once the
/// service has created the store.
struct LazyEmail {
    mailer: Option<crate::mail::Mailer>,
    db: PathBuf,
    inner: Option<EmailDeliverer>,
}

impl Deliverer for LazyEmail {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn pass(&mut self) -> Option<String> {
        if self.inner.is_none() {
            let outbox = match OutboxStore::open(&self.db) {
                Ok(o) => o,
                Err(e) => return Some(format!("cannot open the outbox: {e}")),
            };
            let mailer = self.mailer.take()?;
            self.inner = Some(EmailDeliverer::new(mailer, outbox));
        }
        self.inner.as_mut().and_then(Deliverer::pass)
    }

    fn deadline(&self) -> std::time::Duration {
        match (&self.inner, &self.mailer) {
            (Some(d), _) => d.deadline(),
            (None, Some(m)) => m.config().deadline,
            (None, None) => std::time::Duration::ZERO,
        }
    }
}
