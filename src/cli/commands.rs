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
use crate::mail::{self, Mailer, Mode};
use crate::schema::Schema;
use crate::span::{FileId, SourceMap};
use crate::store::{LoadMode, OutboxStore, Store};
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

fn open_store(path: &Path, schema: Arc<Schema>, wait: std::time::Duration) -> Result<Store, i32> {
    Store::open_waiting(path, schema, wait).map_err(fail)
}

fn load_fixture_file(store: &mut Store, path: &Path, mode: LoadMode) -> Result<(), i32> {
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read `{}`: {e}", path.display())))?;
    load_fixture_text(store, &text, &path.display().to_string(), mode)
}

fn load_fixture_text(store: &mut Store, text: &str, name: &str, mode: LoadMode) -> Result<(), i32> {
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

fn make_matcher(engine: Engine, program: &Arc<Program>) -> Result<Arc<dyn Matcher>, i32> {
    match engine {
        Engine::Interp => Ok(Arc::new(InterpMatcher::new(program.clone()))),
        Engine::Jit => {
            // The engine builds the same plan from the same program, so the
            // interned ids of string literals agree.
            let plan = DecodePlan::new(PlanSpec::for_program(program));
            match JitMatcher::compile(program.clone(), &plan) {
                Ok(m) => Ok(Arc::new(m)),
                Err(e) => {
                    eprintln!("herald: warning: {e}; every rule runs in the interpreter");
                    Ok(Arc::new(InterpMatcher::new(program.clone())))
                }
            }
        }
    }
}

fn mailer(smtp: &str, from: &str) -> Result<Mailer, i32> {
    let config = mail::SmtpConfig::parse(smtp).map_err(|e| fail(format!("--smtp: {e}")))?;
    if let Some(w) = config.warning() {
        eprintln!("herald: warning: {w}");
    }
    let from = mail::parse_mailbox(from).map_err(|e| fail(format!("--mail-from: {e}")))?;
    Mailer::new(config, from).map_err(fail)
}

/// Delivery totals of a run's mail thread.
#[derive(Default, Debug)]
struct MailTotals {
    sent: usize,
    failed: usize,
    remaining: usize,
    last_error: Option<String>,
}

/// A run's mail thread: woken after every commit, its final pass runs when
/// the sender is dropped, and its totals come back on `done`.
struct MailThread {
    wake: mpsc::Sender<()>,
    done: mpsc::Receiver<MailTotals>,
    /// How long `run` waits for the final pass once its events are
    /// committed: one delivery's deadline.
    grace: std::time::Duration,
}

/// Email delivery in its own thread with its own connection (through
/// `store::OutboxStore`), so a slow server never holds the writer.
fn spawn_mail(db: PathBuf, mailer: Mailer) -> MailThread {
    let (wake, rx) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel::<MailTotals>();
    let grace = mailer.config().deadline;
    std::thread::spawn(move || {
        let mut totals = MailTotals::default();
        let outbox = match OutboxStore::open(&db) {
            Ok(o) => o,
            Err(e) => {
                totals.last_error = Some(e.to_string());
                let _ = done_tx.send(totals);
                return;
            }
        };
        let pass = |totals: &mut MailTotals| match mailer.deliver(&outbox, Mode::Due) {
            Ok(r) => {
                totals.sent += r.sent;
                totals.failed += r.failed;
                totals.remaining = r.remaining;
                if r.connection_error.is_some() {
                    totals.last_error = r.connection_error;
                }
            }
            Err(e) => totals.last_error = Some(e.to_string()),
        };
        while rx.recv().is_ok() {
            while rx.try_recv().is_ok() {}
            pass(&mut totals);
        }
        pass(&mut totals);
        let _ = done_tx.send(totals);
    });
    MailThread { wake, done, grace }
}

impl MailThread {
    /// Ends the thread after a final pass and returns its totals, waiting
    /// at most `grace`: a stuck server must not keep `run` alive once its
    /// events are committed. The rows of an unfinished pass stay unsent
    /// (leased until their lease lapses) for a later run or flush.
    fn finish(self) -> Option<MailTotals> {
        drop(self.wake);
        self.done.recv_timeout(self.grace).ok()
    }
}

struct RunSetup<'a> {
    program: Arc<Program>,
    matcher: Arc<dyn Matcher>,
    store: &'a Store,
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
    let mut opts = RunOptions {
        source: setup.source.clone(),
        batch: setup.batch,
        from_start: setup.from_start,
        max_line: setup.max_line,
        backfill: setup.backfill,
        now: setup.now,
        ..RunOptions::default()
    };
    if let Some(t) = setup.threads {
        opts.workers = t.max(1);
    }
    if let Some(m) = &mail {
        let tx = m.wake.clone();
        opts.on_commit = Some(Box::new(move || {
            let _ = tx.send(());
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
    let totals = mail.and_then(MailThread::finish);
    let stats = match result {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if !setup.quiet {
        let queued = setup.store.outbox_counts().map(|c| c.unsent()).unwrap_or(0);
        let mail = match (&totals, mail_running) {
            (Some(t), _) => MailSummary::Done(t),
            (None, true) => MailSummary::Unfinished,
            (None, false) => MailSummary::NoSmtp,
        };
        eprint!(
            "{}",
            summary(&stats, started.elapsed(), engine_name, &interpreted, setup.program.rules.len(), mail, queued)
        );
    }
    EXIT_OK
}

/// What the summary says about email.
enum MailSummary<'a> {
    NoSmtp,
    Done(&'a MailTotals),
    /// The mail thread's final pass did not end within its grace time.
    Unfinished,
}

fn summary(
    s: &RunStats,
    elapsed: std::time::Duration,
    engine: &str,
    interpreted: &[String],
    rules: usize,
    mail: MailSummary<'_>,
    queued: u64,
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
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub fn run(args: &RunArgs) -> i32 {
    let (mut sources, choice, ids) = match load_sources(args.schema.as_deref(), &args.files) {
        Ok(x) => x,
        Err(UsageError(m)) => return fail(m),
    };
    let program = match compile_or_report(&mut sources, choice, &ids) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut store = match open_store(&args.db, program.schema.clone(), args.wait.duration()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(f) = &args.fixtures {
        if let Err(code) = load_fixture_file(&mut store, f, LoadMode::Merge) {
            return code;
        }
    }
    if let Err(e) = store.ensure_indexes(&program) {
        return fail(e);
    }
    let matcher = match make_matcher(args.engine, &program) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let mailer = match &args.smtp {
        Some(url) => match mailer(url, &args.mail_from) {
            Ok(m) => Some(m),
            Err(code) => return code,
        },
        None => None,
    };
    let (input, input_len): (Box<dyn std::io::Read + Send>, Option<u64>) = if args.events.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        match std::fs::File::open(&args.events) {
            Ok(f) => {
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(f), len)
            }
            Err(e) => return fail(format!("cannot read `{}`: {e}", args.events.display())),
        }
    };
    let setup = RunSetup {
        program,
        matcher,
        store: &store,
        db_path: args.db.clone(),
        // A name that is not UTF-8 is recorded lossily in dead letters.
        source: args.events.to_string_lossy().into_owned(),
        input,
        input_len,
        // Both within the ranges the flags accept (`cli::MAX_BATCH`, ...).
        batch: args.batch as usize,
        threads: args.threads.map(|t| t as usize),
        max_line: args.max_line_bytes as usize,
        from_start: args.from_start,
        backfill: args.backfill,
        now: args.now,
        quiet: args.quiet,
        mailer,
    };
    let mut stdout = std::io::stdout().lock();
    execute(setup, &mut stdout)
}

pub fn db(command: DbCommand) -> i32 {
    match command {
        DbCommand::Init { schema, db, wait, files } => {
            let schema = match schema_for(schema.as_deref(), &files) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match open_store(&db, schema.clone(), wait.duration()) {
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
        DbCommand::Load { schema, db, wait, replace, fixtures, files } => {
            let schema = match schema_for(schema.as_deref(), &files) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let mut store = match open_store(&db, schema, wait.duration()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let mode = if replace { LoadMode::Replace } else { LoadMode::Merge };
            match load_fixture_file(&mut store, &fixtures, mode) {
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
        OutboxCommand::Flush { db, smtp, mail_from } => {
            let mailer = match mailer(&smtp, &mail_from) {
                Ok(m) => m,
                Err(code) => return code,
            };
            let outbox = match OutboxStore::open(&db) {
                Ok(o) => o,
                Err(e) => return fail(e),
            };
            match mailer.deliver(&outbox, Mode::All) {
                Ok(r) => {
                    let elsewhere = if r.leased_elsewhere > 0 {
                        format!(" ({} being delivered by another sender)", r.leased_elsewhere)
                    } else {
                        String::new()
                    };
                    eprintln!("herald: {} sent, {} failed, {} still unsent{elsewhere}", r.sent, r.failed, r.remaining);
                    if let Some(e) = &r.connection_error {
                        eprintln!("herald: gave up on the server: {e}");
                    }
                    // Rows another sender is delivering right now are not
                    // this flush's failure.
                    if r.remaining <= r.leased_elsewhere {
                        EXIT_OK
                    } else {
                        EXIT_USAGE
                    }
                }
                Err(e) => fail(e),
            }
        }
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
    let mut store = match open_store(db, program.schema.clone(), crate::store::DEFAULT_WAIT) {
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
    let matcher = match make_matcher(engine, &program) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let mailer = match smtp {
        Some(url) => match mailer(url, mail_from) {
            Ok(m) => Some(m),
            Err(code) => return code,
        },
        None => None,
    };
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
        mailer,
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
