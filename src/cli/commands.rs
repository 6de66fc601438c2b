//! `run`, `db`, `outbox` and `demo`.

use super::{
    load_sources, render, DbCommand, Engine, Format, OutboxCommand, RunArgs, UsageError, EXIT_COMPILE, EXIT_OK,
    EXIT_USAGE,
};
use crate::compile::{self, SchemaChoice};
use crate::decode::{DecodePlan, PlanSpec};
use crate::engine::{self, InterpMatcher, Matcher, RunOptions, RunStats};
use crate::ir::Program;
use crate::jit::JitMatcher;
use crate::logfmt::{LogFormat, Record};
use crate::mail::{self, Mailer, Mode};
use crate::schema::Schema;
use crate::span::{FileId, SourceMap};
use crate::store::{Backend, Kind, LoadMode, OutboxStore, Store};
use crate::webhook;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("herald: {msg}");
    EXIT_USAGE
}

/// Compile, printing diagnostics to stderr; `Err(exit code)` on errors.
fn compile_or_report(sources: &mut SourceMap, choice: SchemaChoice, ids: &[FileId]) -> Result<Arc<Program>, i32> {
    let compiled = compile::compile(sources, choice, ids);
    if !compiled.diagnostics.is_empty() {
        let style = render::Style::detect(std::io::stderr().is_terminal());
        eprint!("{}", render::human(&compiled.diagnostics, sources, style));
        eprint!("{}", render::summary(compiled.errors(), compiled.warnings()));
    }
    compiled.program.map(Arc::new).ok_or(EXIT_COMPILE)
}

/// The schema `run` would use with these arguments: the schema choice
/// extended (or replaced) by the schema items of the policy files. With
/// policy files, they must compile, as for `run`.
fn schema_for(schema: Option<&str>, files: &[PathBuf]) -> Result<Arc<Schema>, i32> {
    if files.is_empty() {
        return schema_only(schema);
    }
    let (mut sources, choice, ids) = load_sources(schema, files).map_err(|UsageError(m)| fail(m))?;
    Ok(compile_or_report(&mut sources, choice, &ids)?.schema.clone())
}

fn schema_only(schema: Option<&str>) -> Result<Arc<Schema>, i32> {
    let (mut sources, choice, _) = load_sources(schema, &[]).map_err(|UsageError(m)| fail(m))?;
    let choice = if choice == SchemaChoice::Auto { SchemaChoice::Builtin } else { choice };
    let (schema, diags) = compile::compile_schema(&mut sources, choice);
    if !diags.is_empty() {
        let style = render::Style::detect(std::io::stderr().is_terminal());
        eprint!("{}", render::human(&diags, &sources, style));
    }
    if crate::diag::error_count(&diags) > 0 {
        return Err(EXIT_COMPILE);
    }
    Ok(schema)
}

/// The store `--db` names: a SQLite file, or a `postgres://` URL.
fn open_store(path: &Path, schema: Arc<Schema>, options: crate::store::OpenOptions) -> Result<Box<dyn Backend>, i32> {
    crate::store::open(path, schema, options).map_err(fail)
}

/// A SQLite store for the commands that do not work on PostgreSQL yet.
fn open_sqlite_store(path: &Path, schema: Arc<Schema>, wait: std::time::Duration) -> Result<Store, i32> {
    Store::open_waiting(path, schema, wait).map_err(fail)
}

fn load_fixture_file(store: &mut dyn Backend, path: &Path, mode: LoadMode) -> Result<(), i32> {
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read `{}`: {e}", path.display())))?;
    load_fixture_text(store, &text, &path.display().to_string(), mode)
}

fn load_fixture_text(store: &mut dyn Backend, text: &str, name: &str, mode: LoadMode) -> Result<(), i32> {
    match store.load_fixtures_with(text, mode) {
        Ok(stats) => {
            let parts: Vec<String> = stats.rows.iter().map(|(e, n)| format!("{n} {e}")).collect();
            eprintln!("herald: loaded {} rows from {name} ({})", stats.total(), parts.join(", "));
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("herald: {name}: {e}");
            }
            eprintln!(
                "herald: nothing was loaded ({} problem{})",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Err(EXIT_USAGE)
        }
    }
}

pub(super) fn make_matcher(engine: Engine, program: &Arc<Program>, log: LogFormat) -> Result<Arc<dyn Matcher>, i32> {
    match engine {
        Engine::Interp => Ok(Arc::new(InterpMatcher::new(program.clone()))),
        Engine::Jit => {
            // The engine builds the same plan from the same program, so the
            // interned ids of string literals agree.
            let plan = DecodePlan::new(PlanSpec::for_program(program));
            match JitMatcher::compile(program.clone(), &plan) {
                Ok(m) => Ok(Arc::new(m)),
                Err(e) => {
                    let message = format!("warning: {e}; every rule runs in the interpreter");
                    log.message(&mut std::io::stderr().lock(), &Record::new("warning", &message));
                    Ok(Arc::new(InterpMatcher::new(program.clone())))
                }
            }
        }
    }
}

pub(super) fn mailer(smtp: &str, from: &str, log: LogFormat) -> Result<Mailer, i32> {
    let config = mail::SmtpConfig::parse(smtp).map_err(|e| fail_as(log, format!("--smtp: {e}")))?;
    if let Some(w) = config.warning() {
        log.message(&mut std::io::stderr().lock(), &Record::new("warning", &format!("warning: {w}")));
    }
    let from = mail::parse_mailbox(from).map_err(|e| fail_as(log, format!("--mail-from: {e}")))?;
    Mailer::new(config, from).map_err(|e| fail_as(log, e))
}

/// Delivery totals of a run's mail thread.
#[derive(Default, Debug)]
struct MailTotals {
    sent: usize,
    failed: usize,
    remaining: usize,
    last_error: Option<String>,
}

/// Delivery totals of a run's webhook thread.
#[derive(Default, Debug)]
struct WebhookTotals {
    sent: usize,
    failed: usize,
    given_up: usize,
    remaining: usize,
    last_error: Option<String>,
}

/// A run's delivery thread (email or webhooks): woken after every commit,
/// its final pass runs when the sender is dropped, and its totals come back
/// on `done`.
struct DeliveryThread<T> {
    wake: mpsc::Sender<()>,
    done: mpsc::Receiver<T>,
    /// How long `run` waits for the final pass once its events are
    /// committed: one delivery's deadline.
    grace: std::time::Duration,
}

/// Delivery in its own thread with its own connection (through
/// `store::OutboxStore`), so a slow server never holds the writer. `pass`
/// runs once per wake-up (wake-ups that arrive during a pass are merged)
/// and once more at the end.
fn spawn_delivery<T: Default + Send + 'static>(
    db: PathBuf,
    grace: std::time::Duration,
    open_failed: fn(&mut T, String),
    mut pass: impl FnMut(&OutboxStore, &mut T) + Send + 'static,
) -> DeliveryThread<T> {
    let (wake, rx) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel::<T>();
    std::thread::spawn(move || {
        let mut totals = T::default();
        let outbox = match OutboxStore::open(&db) {
            Ok(o) => o,
            Err(e) => {
                open_failed(&mut totals, e.to_string());
                let _ = done_tx.send(totals);
                return;
            }
        };
        while rx.recv().is_ok() {
            while rx.try_recv().is_ok() {}
            pass(&outbox, &mut totals);
        }
        pass(&outbox, &mut totals);
        let _ = done_tx.send(totals);
    });
    DeliveryThread { wake, done, grace }
}

/// Email delivery after each commit.
fn spawn_mail(db: PathBuf, mailer: Mailer) -> DeliveryThread<MailTotals> {
    let grace = mailer.config().deadline;
    spawn_delivery(
        db,
        grace,
        |t: &mut MailTotals, e| t.last_error = Some(e),
        move |outbox, totals: &mut MailTotals| match mailer.deliver(outbox, Mode::Due) {
            Ok(r) => {
                totals.sent += r.sent;
                totals.failed += r.failed;
                totals.remaining = r.remaining;
                if r.connection_error.is_some() {
                    totals.last_error = r.connection_error;
                }
            }
            Err(e) => totals.last_error = Some(e.to_string()),
        },
    )
}

/// Webhook delivery after each commit.
fn spawn_webhooks(db: PathBuf, sender: webhook::Sender) -> DeliveryThread<WebhookTotals> {
    let grace = sender.config().timeout + sender.config().connect_timeout;
    spawn_delivery(
        db,
        grace,
        |t: &mut WebhookTotals, e| t.last_error = Some(e),
        move |outbox, totals: &mut WebhookTotals| match sender.deliver(outbox, Mode::Due) {
            Ok(r) => {
                totals.sent += r.sent;
                totals.failed += r.failed;
                totals.given_up += r.given_up;
                totals.remaining = r.remaining;
                if r.last_error.is_some() {
                    totals.last_error = r.last_error;
                }
            }
            Err(e) => totals.last_error = Some(e.to_string()),
        },
    )
}

impl<T> DeliveryThread<T> {
    /// Ends the thread after a final pass and returns its totals, waiting
    /// at most `grace`: a stuck server must not keep `run` alive once its
    /// events are committed. The rows of an unfinished pass stay unsent
    /// (leased until their lease lapses) for a later run or flush.
    fn finish(self) -> Option<T> {
        drop(self.wake);
        self.done.recv_timeout(self.grace).ok()
    }
}

struct RunSetup<'a> {
    program: Arc<Program>,
    matcher: Arc<dyn Matcher>,
    store: &'a dyn Backend,
    db_path: PathBuf,
    source: String,
    input: Box<dyn std::io::Read + Send>,
    input_len: Option<u64>,
    batch: usize,
    threads: Option<usize>,
    max_line: usize,
    from_start: bool,
    backfill: bool,
    now: Option<i128>,
    quiet: bool,
    mailer: Option<Mailer>,
    /// Webhooks are delivered when the policies queue them or the outbox
    /// holds some from an earlier run.
    webhooks: bool,
    log_format: LogFormat,
    /// A database source: its own resume point instead of a checkpoint.
    stream: Option<StreamInput>,
}

/// How a run over a database source differs from one over a file: lines
/// are numbered from the source's cursor, the cursor is recorded in each
/// batch transaction (`in_commit`), and each chunk commits at once, so an
/// event's firing is printed as soon as it is applied.
struct StreamInput {
    first_line: u64,
    in_commit: engine::InCommit,
    /// A partitioned source: each line's partition (shared state).
    scope_of: Option<engine::ScopeOf>,
}

fn execute(setup: RunSetup<'_>, stdout: &mut dyn Write) -> i32 {
    let started = Instant::now();
    let progress = match setup.input_len {
        Some(len) if !setup.quiet && std::io::stderr().is_terminal() && len > 0 => {
            let bar = indicatif::ProgressBar::new(len);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(bar)
        }
        _ => None,
    };
    let mail = setup.mailer.map(|m| spawn_mail(setup.db_path.clone(), m));
    let hooks = setup
        .webhooks
        .then(|| spawn_webhooks(setup.db_path.clone(), webhook::Sender::new(webhook::WebhookConfig::default())));
    let mut opts = RunOptions {
        source: setup.source.clone(),
        batch: setup.batch,
        from_start: setup.from_start,
        max_line: setup.max_line,
        backfill: setup.backfill,
        now: setup.now,
        log_format: setup.log_format,
        ..RunOptions::default()
    };
    if let Some(t) = setup.threads {
        opts.workers = t.max(1);
    }
    if let Some(stream) = setup.stream {
        opts.first_line = stream.first_line;
        opts.in_commit = Some(stream.in_commit);
        opts.shared_state = stream.scope_of;
        opts.checkpoints = false;
        // No file checkpoint applies: skip looking one up by first line.
        opts.from_start = true;
        opts.idle_commit = std::time::Duration::ZERO;
    }
    let wakes: Vec<mpsc::Sender<()>> =
        mail.iter().map(|m| m.wake.clone()).chain(hooks.iter().map(|h| h.wake.clone())).collect();
    if !wakes.is_empty() {
        opts.on_commit = Some(Box::new(move || {
            for tx in &wakes {
                let _ = tx.send(());
            }
        }));
    }
    if let Some(bar) = &progress {
        let bar = bar.clone();
        opts.on_progress = Some(Box::new(move |n| bar.set_position(n)));
    }
    let mut stderr = std::io::stderr();
    let interpreted: Vec<String> =
        setup.matcher.interpreted().iter().map(|id| setup.program.rule(*id).name.clone()).collect();
    let engine_name = setup.matcher.name();
    let result = engine::run(setup.program.clone(), setup.matcher, setup.store, setup.input, opts, stdout, &mut stderr);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mail_running = mail.is_some();
    // Both threads run their final pass side by side.
    let (totals, hook_totals) = {
        let hooks_running = hooks.is_some();
        let mail_wait = mail.map(|m| std::thread::spawn(move || m.finish()));
        let hooks = hooks.and_then(DeliveryThread::finish);
        let mail = mail_wait.and_then(|h| h.join().ok().flatten());
        (mail, if hooks_running { Some(hooks) } else { None })
    };
    let stats = match result {
        Ok(s) => s,
        Err(e) => return fail_as(setup.log_format, e),
    };
    if !setup.quiet {
        let queued = setup.store.outbox_counts_of(Kind::Email).map(|c| c.unsent()).unwrap_or(0);
        let mail = match (&totals, mail_running) {
            (Some(t), _) => MailSummary::Done(t),
            (None, true) => MailSummary::Unfinished,
            (None, false) => MailSummary::NoSmtp,
        };
        let hooks = match &hook_totals {
            Some(Some(t)) => WebhookSummary::Done(t),
            Some(None) => {
                WebhookSummary::Unfinished(setup.store.outbox_counts_of(Kind::Webhook).map(|c| c.unsent()).unwrap_or(0))
            }
            None => WebhookSummary::None,
        };
        let elapsed = started.elapsed();
        match setup.log_format {
            LogFormat::Human => eprint!(
                "{}",
                summary(&stats, elapsed, engine_name, &interpreted, setup.program.rules.len(), mail, queued, hooks)
            ),
            LogFormat::Json => {
                let text =
                    summary(&stats, elapsed, engine_name, &interpreted, setup.program.rules.len(), mail, queued, hooks);
                json_summary(&stats, elapsed, engine_name, &interpreted, &text);
            }
        }
    }
    EXIT_OK
}

/// The run summary as one JSON log line: the human summary's first line as
/// the message, its other lines as `details`, and the counts as fields.
fn json_summary(s: &RunStats, elapsed: std::time::Duration, engine: &str, interpreted: &[String], text: &str) {
    let mut lines = text.lines();
    let message = lines.next().unwrap_or("").trim_start_matches("herald: ").to_string();
    let details: Vec<String> = lines.map(|l| l.trim().to_string()).collect();
    let e = &s.effects;
    let extra = serde_json::json!({
        "summary": {
            "events": s.events,
            "seconds": elapsed.as_secs_f64(),
            "engine": engine,
            "interpreted": interpreted,
            "firings": s.firings,
            "fired_events": s.fired_events,
            "notifications": e.notifications,
            "notifications_dropped": e.notifications_dropped,
            "emails": e.emails,
            "webhooks": e.webhooks,
            "store_writes": e.writes,
            "log_lines": e.logs,
            "dead_letters": s.dead_letters,
            "rule_errors": s.rule_errors,
            "duplicates": s.duplicates,
            "resumed_lines": s.resumed_lines,
        },
        "details": details,
    });
    let serde_json::Value::Object(extra) = extra else { return };
    LogFormat::Json.message_with(&mut std::io::stderr().lock(), &Record::new("info", &message), extra);
}

/// [`fail`] in the run's log format.
fn fail_as(format: LogFormat, msg: impl std::fmt::Display) -> i32 {
    format.message(&mut std::io::stderr().lock(), &Record::new("error", &msg.to_string()));
    EXIT_USAGE
}

/// What the summary says about webhooks.
enum WebhookSummary<'a> {
    /// No webhook thread ran (no webhook in the policies or the outbox).
    None,
    Done(&'a WebhookTotals),
    /// The final pass did not end within its grace time; this many wait.
    Unfinished(u64),
}

/// What the summary says about email.
enum MailSummary<'a> {
    NoSmtp,
    Done(&'a MailTotals),
    /// The mail thread's final pass did not end within its grace time.
    Unfinished,
}

#[allow(clippy::too_many_arguments)]
fn summary(
    s: &RunStats,
    elapsed: std::time::Duration,
    engine: &str,
    interpreted: &[String],
    rules: usize,
    mail: MailSummary<'_>,
    queued: u64,
    hooks: WebhookSummary<'_>,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { s.events as f64 / secs } else { 0.0 };
    let mut out = format!("herald: {} events in {:.3} s ({:.0} events/s), engine {engine}", s.events, secs, rate);
    if engine == "jit" && !interpreted.is_empty() {
        out.push_str(&format!(" ({} of {rules} rules interpreted: {})", interpreted.len(), interpreted.join(", ")));
    }
    out.push('\n');
    if s.resumed_lines > 0 {
        out.push_str(&format!("  resumed after line {} (already processed)\n", s.resumed_lines));
    }
    if s.resolved_dead_letters > 0 {
        out.push_str(&format!(
            "  {} earlier dead letter{} resolved (the line was processed this time)\n",
            s.resolved_dead_letters,
            plural(s.resolved_dead_letters)
        ));
    }
    let e = &s.effects;
    out.push_str(&format!(
        "  fired {} rule{} on {} event{}: {} notification{}, {} email{}, {} store write{}, {} log line{}\n",
        s.firings,
        plural(s.firings),
        s.fired_events,
        plural(s.fired_events),
        e.notifications,
        plural(e.notifications),
        e.emails,
        plural(e.emails),
        e.writes,
        plural(e.writes),
        e.logs,
        plural(e.logs)
    ));
    out.push_str(&format!(
        "  dead letters: {}, rule errors: {}, duplicate events skipped: {}\n",
        s.dead_letters, s.rule_errors, s.duplicates
    ));
    if e.notifications_dropped > 0 {
        out.push_str(&format!(
            "  {} notification{} dropped: no such recipient\n",
            e.notifications_dropped,
            plural(e.notifications_dropped)
        ));
    }
    if s.skipped_pairs > 0 {
        out.push_str(&format!(
            "  {} (rule, event) pair{} skipped: rules new to already-processed events (apply them with \
             --backfill)\n",
            s.skipped_pairs,
            plural(s.skipped_pairs)
        ));
    }
    if s.backfilled_pairs > 0 {
        out.push_str(&format!(
            "  backfill: {} (rule, event) pair{} applied to already-processed events\n",
            s.backfilled_pairs,
            plural(s.backfilled_pairs)
        ));
    }
    match mail {
        MailSummary::Done(m) => {
            out.push_str(&format!(
                "  email: {} sent, {} failed, {} waiting in the outbox",
                m.sent, m.failed, m.remaining
            ));
            if let Some(err) = &m.last_error {
                out.push_str(&format!(" (last error: {err})"));
            }
            out.push('\n');
        }
        MailSummary::Unfinished => out.push_str(&format!(
            "  email: the server did not finish in time; {queued} waiting in the outbox \
             (retried by the next run or `herald outbox flush`)\n"
        )),
        MailSummary::NoSmtp if queued > 0 => out.push_str(&format!(
            "  email: {queued} queued in the outbox (no --smtp; deliver with `herald outbox flush`)\n"
        )),
        MailSummary::NoSmtp => {}
    }
    match hooks {
        WebhookSummary::None => {}
        WebhookSummary::Done(h) => {
            out.push_str(&format!(
                "  webhooks: {} queued, {} sent, {} failed (retried later), {} given up, {} waiting in the outbox",
                e.webhooks, h.sent, h.failed, h.given_up, h.remaining
            ));
            if let Some(err) = &h.last_error {
                out.push_str(&format!(" (last error: {err})"));
            }
            out.push('\n');
        }
        WebhookSummary::Unfinished(n) => out.push_str(&format!(
            "  webhooks: {} queued; the last delivery did not finish in time; {n} waiting in the outbox \
             (retried by the next run or `herald outbox flush`)\n",
            e.webhooks
        )),
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Whether a run needs a webhook sender: some rule can queue a webhook, or
/// the outbox holds undelivered ones from an earlier run.
fn needs_webhooks(program: &Program, store: &dyn Backend) -> bool {
    fn any(stmts: &[crate::ir::Stmt]) -> bool {
        stmts.iter().any(|s| matches!(s, crate::ir::Stmt::Webhook { .. }) || s.blocks().into_iter().any(any))
    }
    program.rules.iter().any(|r| any(&r.actions))
        || store.outbox_counts_of(Kind::Webhook).map(|c| c.unsent() > 0).unwrap_or(false)
}

pub fn run(args: &RunArgs) -> i32 {
    let log = match args.log_format {
        Format::Human => LogFormat::Human,
        Format::Json => LogFormat::Json,
    };
    let (mut sources, choice, ids) = match load_sources(args.schema.as_deref(), &args.files) {
        Ok(x) => x,
        Err(UsageError(m)) => return fail_as(log, m),
    };
    let program = match compile_or_report(&mut sources, choice, &ids) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut store = match open_store(&args.db, program.schema.clone(), args.mapping.options(args.wait.duration())) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(f) = &args.fixtures {
        if let Err(code) = load_fixture_file(&mut *store, f, LoadMode::Merge) {
            return code;
        }
    }
    if let Err(e) = store.ensure_indexes(&program) {
        return fail_as(log, e);
    }
    let matcher = match make_matcher(args.engine, &program, log) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let mailer = match &args.smtp {
        Some(url) => match mailer(url, &args.mail_from, log) {
            Ok(m) => Some(m),
            Err(code) => return code,
        },
        None => None,
    };
    let webhooks = needs_webhooks(&program, &*store);
    // `--source PATH|-` is `--events`; a `postgres://` source is read by
    // `cli::source`, and the engine sees only a `Read`.
    let events = match &args.source {
        Some(s) if super::source::is_postgres(s) => {
            let input = match super::source::open(args, s, &*store) {
                Ok(i) => i,
                Err(e) => return fail_as(log, e),
            };
            let setup = RunSetup {
                source: input.name.clone(),
                input: Box::new(input.reader),
                input_len: None,
                from_start: false,
                stream: Some(StreamInput {
                    first_line: input.first_line,
                    in_commit: input.in_commit,
                    scope_of: input.scope_of,
                }),
                ..base_setup(args, program, matcher, &*store, mailer, webhooks, log)
            };
            let mut stdout = std::io::stdout().lock();
            let code = execute(setup, &mut stdout);
            // After the last commit: the partitions go back to the others.
            if let Some(leases) = input.leases {
                leases.finish();
            }
            return code;
        }
        Some(s) => PathBuf::from(s),
        None => args.events.clone(),
    };
    if args.follow {
        return fail_as(log, "`--follow` needs a `postgres://` source (`--source postgres://USER@HOST:PORT/DB`)");
    }
    let (input, input_len): (Box<dyn std::io::Read + Send>, Option<u64>) = if events.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        match std::fs::File::open(&events) {
            Ok(f) => {
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(f), len)
            }
            Err(e) => return fail_as(log, format!("cannot read `{}`: {e}", events.display())),
        }
    };
    let setup = RunSetup {
        // A name that is not UTF-8 is recorded lossily in dead letters.
        source: events.to_string_lossy().into_owned(),
        input,
        input_len,
        ..base_setup(args, program, matcher, &*store, mailer, webhooks, log)
    };
    let mut stdout = std::io::stdout().lock();
    execute(setup, &mut stdout)
}

/// The parts of a run's setup that do not depend on where events come from.
fn base_setup<'a>(
    args: &RunArgs,
    program: Arc<Program>,
    matcher: Arc<dyn Matcher>,
    store: &'a dyn Backend,
    mailer: Option<Mailer>,
    webhooks: bool,
    log: LogFormat,
) -> RunSetup<'a> {
    RunSetup {
        program,
        matcher,
        store,
        db_path: args.db.clone(),
        source: String::new(),
        input: Box::new(std::io::empty()),
        input_len: None,
        // Both within the ranges the flags accept (`cli::MAX_BATCH`, ...).
        batch: args.batch as usize,
        threads: args.threads.map(|t| t as usize),
        max_line: args.max_line_bytes as usize,
        from_start: args.from_start,
        backfill: args.backfill,
        now: args.now,
        quiet: args.quiet,
        mailer,
        webhooks,
        log_format: log,
        stream: None,
    }
}

pub fn db(command: DbCommand) -> i32 {
    match command {
        DbCommand::Init { schema, db, wait, mapping, files } => {
            let schema = match schema_for(schema.as_deref(), &files) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match open_store(&db, schema.clone(), mapping.options(wait.duration())) {
                Ok(_) => {
                    eprintln!(
                        "herald: {} is ready ({} entity tables and Herald's tables)",
                        db.display(),
                        schema.entities.len()
                    );
                    EXIT_OK
                }
                Err(code) => code,
            }
        }
        DbCommand::Load { schema, db, wait, mapping, replace, fixtures, files } => {
            let schema = match schema_for(schema.as_deref(), &files) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let mut store = match open_store(&db, schema, mapping.options(wait.duration())) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let mode = if replace { LoadMode::Replace } else { LoadMode::Merge };
            match load_fixture_file(&mut *store, &fixtures, mode) {
                Ok(()) => EXIT_OK,
                Err(code) => code,
            }
        }
    }
}

pub fn outbox(command: OutboxCommand) -> i32 {
    match command {
        OutboxCommand::List { db, format } => {
            // Read-only: listing works on a store nobody may write (a
            // read-only file or directory) and never migrates it.
            let outbox = match OutboxStore::open_read_only(&db) {
                Ok(o) => o,
                Err(e) => return fail(e),
            };
            let mut out = std::io::stdout().lock();
            let r = match format {
                Format::Human => mail::list(&outbox, &mut out),
                Format::Json => mail::list_json(&outbox, &mut out),
            };
            match r {
                Ok(()) => EXIT_OK,
                Err(e) => fail(e),
            }
        }
        OutboxCommand::Flush { db, smtp, mail_from } => flush(&db, smtp.as_deref(), &mail_from),
    }
}

/// `herald outbox flush`: every unsent webhook, and every unsent email when
/// `--smtp` is given, now (backoff ignored; rows given up stay so).
fn flush(db: &Path, smtp: Option<&str>, mail_from: &str) -> i32 {
    let mailer = match smtp.map(|url| mailer(url, mail_from, LogFormat::Human)).transpose() {
        Ok(m) => m,
        Err(code) => return code,
    };
    let outbox = match OutboxStore::open(db) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let elsewhere = |n: usize| {
        if n > 0 {
            format!(" ({n} being delivered by another sender)")
        } else {
            String::new()
        }
    };
    let mut ok = true;
    match &mailer {
        Some(mailer) => match mailer.deliver(&outbox, Mode::All) {
            Ok(r) => {
                eprintln!(
                    "herald: email: {} sent, {} failed, {} still unsent{}",
                    r.sent,
                    r.failed,
                    r.remaining,
                    elsewhere(r.leased_elsewhere)
                );
                if let Some(e) = &r.connection_error {
                    eprintln!("herald: gave up on the server: {e}");
                }
                // Rows another sender is delivering right now are not
                // this flush's failure.
                ok &= r.remaining <= r.leased_elsewhere;
            }
            Err(e) => return fail(e),
        },
        None => match outbox.counts_of(Kind::Email) {
            Ok(c) if c.unsent() > 0 => {
                eprintln!("herald: email: {} unsent, not delivered (give --smtp to send email)", c.unsent());
                ok = false;
            }
            Ok(_) => {}
            Err(e) => return fail(e),
        },
    }
    let sender = webhook::Sender::new(webhook::WebhookConfig::default());
    match sender.deliver(&outbox, Mode::All) {
        Ok(r) => {
            if r.sent + r.failed + r.given_up + r.remaining > 0 {
                eprintln!(
                    "herald: webhooks: {} sent, {} failed (retried later), {} given up, {} still unsent{}",
                    r.sent,
                    r.failed,
                    r.given_up,
                    r.remaining,
                    elsewhere(r.leased_elsewhere)
                );
                if let Some(e) = &r.last_error {
                    eprintln!("herald: last webhook error: {e}");
                }
            }
            ok &= r.remaining <= r.leased_elsewhere;
        }
        Err(e) => return fail(e),
    }
    if ok {
        EXIT_OK
    } else {
        EXIT_USAGE
    }
}

/// The bundled authentik example, embedded so `herald demo` needs nothing.
mod bundled {
    pub const POLICIES: [(&str, &str); 5] = [
        (
            "examples/authentik/application_without_bindings.herald",
            include_str!("../../examples/authentik/application_without_bindings.herald"),
        ),
        (
            "examples/authentik/archive_ssh_keys.herald",
            include_str!("../../examples/authentik/archive_ssh_keys.herald"),
        ),
        (
            "examples/authentik/group_addition_history.herald",
            include_str!("../../examples/authentik/group_addition_history.herald"),
        ),
        (
            "examples/authentik/unknown_device_login.herald",
            include_str!("../../examples/authentik/unknown_device_login.herald"),
        ),
        ("examples/authentik/welcome_email.herald", include_str!("../../examples/authentik/welcome_email.herald")),
    ];
    pub const FIXTURES: &str = include_str!("../../examples/authentik/fixtures.json");
    pub const EVENTS: &str = include_str!("../../examples/authentik/events.ndjson");
}

pub fn demo(db: &Path, engine: Engine, smtp: Option<&str>, mail_from: &str) -> i32 {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let mut sources = SourceMap::new();
    let ids: Vec<FileId> = bundled::POLICIES.iter().map(|(n, t)| sources.add(*n, *t)).collect();
    let program = match compile_or_report(&mut sources, SchemaChoice::Builtin, &ids) {
        Ok(p) => p,
        Err(code) => return code,
    };
    eprintln!(
        "herald demo: {} policies from examples/authentik/ checked against the built-in authentik schema",
        program.rules.len()
    );
    let mut store = match open_sqlite_store(db, program.schema.clone(), crate::store::DEFAULT_WAIT) {
        Ok(s) => s,
        Err(code) => return code,
    };
    eprintln!("herald demo: created the SQLite store {}", db.display());
    if let Err(code) =
        load_fixture_text(&mut store, bundled::FIXTURES, "examples/authentik/fixtures.json", LoadMode::Merge)
    {
        return code;
    }
    if let Err(e) = store.ensure_indexes(&program) {
        return fail(e);
    }
    let matcher = match make_matcher(engine, &program, LogFormat::Human) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let mailer = match smtp {
        Some(url) => match mailer(url, mail_from, LogFormat::Human) {
            Ok(m) => Some(m),
            Err(code) => return code,
        },
        None => None,
    };
    let webhooks = needs_webhooks(&program, &store);
    eprintln!("herald demo: running examples/authentik/events.ndjson; one line per rule firing follows\n");
    let setup = RunSetup {
        program,
        matcher,
        store: &store,
        db_path: db.to_path_buf(),
        source: "examples/authentik/events.ndjson".into(),
        input: Box::new(std::io::Cursor::new(bundled::EVENTS.as_bytes())),
        input_len: None,
        batch: 1000,
        threads: None,
        max_line: engine::DEFAULT_MAX_LINE,
        from_start: true,
        backfill: false,
        now: None,
        quiet: false,
        webhooks,
        mailer,
        log_format: LogFormat::Human,
        stream: None,
    };
    let mut stdout = std::io::stdout().lock();
    let code = execute(setup, &mut stdout);
    drop(stdout);
    if code != EXIT_OK {
        return code;
    }
    print!("{}", report(&store));
    EXIT_OK
}

/// What the demo changed, read back from the store.
fn report(store: &Store) -> String {
    let r = store.demo_report();
    let mut out = String::from("\nWhat happened (read back from the store):\n");
    out.push_str("  notifications (herald_notification):\n");
    for [severity, user, body, rule] in &r.notifications {
        out.push_str(&format!("    [{severity}] to {user}: {body}  ({rule})\n"));
    }
    out.push_str("  email (herald_outbox):\n");
    for [status, to, subject, rule] in &r.emails {
        out.push_str(&format!("    {status} to {to}: {subject:?}  ({rule})\n"));
    }
    out.push_str("  user attributes:\n");
    for [name, attributes] in &r.user_attributes {
        out.push_str(&format!("    {name}: {attributes}\n"));
    }
    out.push_str("  group attributes:\n");
    for [name, attributes] in &r.group_attributes {
        out.push_str(&format!("    {name}: {attributes}\n"));
    }
    if !r.rule_errors.is_empty() {
        out.push_str("  rule errors (herald_rule_error):\n");
        for [rule, code, message] in &r.rule_errors {
            out.push_str(&format!("    {code} {rule}: {message}\n"));
        }
    }
    out.push_str("Inspect it yourself: sqlite3 herald-demo.db 'SELECT * FROM herald_firing'\n");
    out
}
