//! `herald serve`: the engine behind an HTTP front, as one process.
//!
//! ```text
//! HTTP handler threads ─validate─▶ herald_intake (one transaction per request) ─ack─▶ client
//!        │ push (in intake order)
//!        ▼
//!   queue ─IntakeReader─▶ engine::run (reader, workers, writer: the same engine as `herald run`)
//!                              │ in the batch transaction: DELETE the processed intake rows
//!                              ▼ after commit: metrics, wake delivery
//!   delivery thread ─▶ outbox (email; webhooks plug in as another `Deliverer`)
//! ```
//!
//! Invariants:
//! - a request is answered only after its events (and the dead letters of
//!   its malformed lines) are committed to the intake: an acknowledged event
//!   survives SIGKILL;
//! - intake rows leave the intake in the transaction that applies their
//!   effects, so each is processed exactly once;
//! - a reload or a shutdown ends an engine run between events; a policy
//!   swaps in only between runs.

pub mod deliver;
mod http;
pub mod metrics;
mod queue;

pub use deliver::{Deliverer, EmailDeliverer, WebhookDeliverer};
pub use http::INTAKE_SOURCE;

use crate::decode::{DecodePlan, PlanSpec};
use crate::engine::{self, Matcher, RunOptions};
use crate::ir::Program;
use crate::store::intake::{IntakeRow, IntakeStore};
use crate::store::Store;
use metrics::Metrics;
use queue::{Fed, Item, Queue};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A compiled policy: what reloading produces.
pub struct Loaded {
    pub program: Arc<Program>,
    pub matcher: Arc<dyn Matcher>,
}

/// Re-reads and compiles the policy files; `Err` holds the diagnostics,
/// rendered. (Reading and rendering stay in `cli`.)
pub type Loader = Box<dyn Fn() -> Result<Loaded, String> + Send + Sync>;

/// A checked policy with its store connection, swapped in between runs.
pub(crate) struct Swap {
    program: Arc<Program>,
    matcher: Arc<dyn Matcher>,
    store: Store,
}

/// How the service runs.
pub struct Config {
    pub listen: String,
    /// Log lines on stderr: the service's own and the engine's.
    pub log_format: crate::logfmt::LogFormat,
    pub db: PathBuf,
    /// The bearer token of `POST /events` and `POST /reload`; `None` leaves
    /// them open (only allowed on a loopback address, see `cli`).
    pub token: Option<String>,
    pub batch: usize,
    pub workers: usize,
    pub max_body: usize,
    /// Acknowledged events not yet processed, at most.
    pub max_queue: u64,
    pub http_threads: usize,
    pub wait: Duration,
    pub deliverers: Vec<Box<dyn Deliverer>>,
}

/// What the handler threads, the processor and the reloader share.
pub(crate) struct Shared {
    token: Option<String>,
    max_body: usize,
    max_queue: u64,
    db: PathBuf,
    wait: Duration,
    metrics: Metrics,
    queue: Arc<Queue>,
    /// The intake's connection; its lock also orders the queue.
    intake: Mutex<IntakeStore>,
    /// A second connection for `/metrics`, so a scrape never waits for an
    /// intake transaction.
    stats: Mutex<IntakeStore>,
    /// The decode plan of the newest policy (intake validation).
    plan: RwLock<Arc<DecodePlan>>,
    /// Acknowledged events not processed yet.
    outstanding: AtomicI64,
    loader: Loader,
    reloading: Mutex<()>,
    shutting_down: AtomicBool,
}

/// Exit codes (CONTRACT.md): stopped by a signal; the policies do not
/// compile; a usage or store failure.
const EXIT_OK: i32 = 0;
const EXIT_COMPILE: i32 = 1;
const EXIT_FAILURE: i32 = 2;

/// The `source` of the engine's dead letters and checkpoint-free runs.
pub const ENGINE_SOURCE: &str = "serve";

/// How often the delivery thread looks for retries that came due when no
/// commit woke it.
const RETRY_POLL: Duration = Duration::from_secs(5);

/// How often an idle handler thread looks whether the service is stopping.
const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// The service's log format, set once at start (`--log-format`).
static LOG_FORMAT: std::sync::OnceLock<crate::logfmt::LogFormat> = std::sync::OnceLock::new();

fn log(msg: impl std::fmt::Display) {
    use crate::logfmt::{LogFormat, Record};
    match LOG_FORMAT.get().copied().unwrap_or_default() {
        LogFormat::Human => eprintln!("herald serve: {msg}"),
        LogFormat::Json => {
            let msg = msg.to_string();
            // The service's own messages say what they are in words; the
            // level is read off them for collectors that filter by it.
            let level = if msg.starts_with("warning") {
                "warning"
            } else if ["failed", "refused", "cannot", "error"].iter().any(|w| msg.contains(w)) {
                "error"
            } else {
                "info"
            };
            LogFormat::Json.message(&mut std::io::stderr().lock(), &Record::new(level, &msg));
        }
    }
}

/// Re-read, check and hand over the policy (SIGHUP, `POST /reload`). A
/// policy that does not compile, or whose schema the store cannot take, is
/// refused and the running one stays.
pub(crate) fn reload(sh: &Shared) -> Result<String, String> {
    let _one_at_a_time = sh.reloading.lock().unwrap_or_else(|e| e.into_inner());
    let attempt = (|| {
        let loaded = (sh.loader)()?;
        let mut store =
            Store::open_waiting(&sh.db, loaded.program.schema.clone(), sh.wait).map_err(|e| e.to_string())?;
        store.ensure_indexes(&loaded.program).map_err(|e| e.to_string())?;
        store.prompt_busy().map_err(|e| e.message)?;
        Ok::<_, String>(Swap { program: loaded.program, matcher: loaded.matcher, store })
    })();
    match attempt {
        Ok(swap) => {
            let rules = swap.program.rules.len();
            *sh.plan.write().unwrap_or_else(|e| e.into_inner()) =
                Arc::new(DecodePlan::new(PlanSpec::for_program(&swap.program)));
            sh.queue.reload(swap);
            sh.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
            let msg = format!("policy reloaded ({rules} rule{}); it applies from the next batch", plural(rules));
            log(&msg);
            Ok(msg)
        }
        Err(diagnostics) => {
            sh.metrics.reloads_failed.fetch_add(1, Ordering::Relaxed);
            log(format!("reload refused, the running policy stays:\n{diagnostics}"));
            Err(diagnostics)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The engine over the intake, run after run (a reload ends a run), until
/// shutdown. An error is a store failure: the service stops.
fn process(sh: Arc<Shared>, initial: Swap, batch: usize, workers: usize, wake: mpsc::Sender<()>) -> Result<(), String> {
    let mut cur = initial;
    loop {
        // Wait for an event before starting a run: the run's line numbers
        // start at its seq.
        let Some(first) = sh.queue.first_seq() else {
            match sh.queue.between_runs() {
                Err(()) => break,
                Ok(Some(swap)) => cur = swap,
                Ok(None) => {}
            }
            continue;
        };
        let fed: Arc<Mutex<Fed>> = Arc::default();
        // Acknowledgment times of the events a commit covered, from the
        // hook inside the transaction to the callback after it.
        let committed: Arc<Mutex<Vec<i64>>> = Arc::default();
        let in_commit = {
            let (fed, committed) = (fed.clone(), committed.clone());
            move |store: &dyn crate::store::Backend, line: u64| {
                let mut fed = fed.lock().unwrap_or_else(|e| e.into_inner());
                let mut last = None;
                let mut done = committed.lock().unwrap_or_else(|e| e.into_inner());
                while let Some(&(l, seq, received)) = fed.front() {
                    if l > line {
                        break;
                    }
                    fed.pop_front();
                    last = Some(seq);
                    done.push(received);
                }
                match last {
                    Some(seq) => store.intake_done(seq).map(|_| ()),
                    None => Ok(()),
                }
            }
        };
        let on_commit = {
            let (sh, committed, wake) = (sh.clone(), committed.clone(), wake.clone());
            move || {
                let now = crate::value::now_nanos() as i64;
                let done = std::mem::take(&mut *committed.lock().unwrap_or_else(|e| e.into_inner()));
                for received in &done {
                    sh.metrics.observe_latency(now - received);
                }
                sh.metrics.processed.fetch_add(done.len() as u64, Ordering::Relaxed);
                sh.outstanding.fetch_sub(done.len() as i64, Ordering::Relaxed);
                let _ = wake.send(());
            }
        };
        let opts = RunOptions {
            // Line numbers are intake seqs, unique for the store's life, so
            // the engine's own dead letters (rare: intake validated the
            // events) are resolved only by their own event.
            source: ENGINE_SOURCE.into(),
            first_line: first as u64,
            batch,
            workers,
            from_start: true,
            checkpoints: false,
            idle_commit: Duration::ZERO,
            in_commit: Some(Box::new(in_commit)),
            on_commit: Some(Box::new(on_commit)),
            log_format: LOG_FORMAT.get().copied().unwrap_or_default(),
            ..RunOptions::default()
        };
        let reader = sh.queue.reader(fed, first);
        let mut stdout = std::io::stdout();
        let mut stderr = std::io::stderr();
        engine::run(cur.program.clone(), cur.matcher.clone(), &cur.store, reader, opts, &mut stdout, &mut stderr)
            .map_err(|e| e.to_string())?;
        match sh.queue.between_runs() {
            Err(()) => break,
            Ok(Some(swap)) => cur = swap,
            Ok(None) => {}
        }
    }
    Ok(())
}

/// Delivery passes after commits and every [`RETRY_POLL`], a last one at
/// shutdown; `done` says when that one ended.
fn deliver(mut deliverers: Vec<Box<dyn Deliverer>>, wake: mpsc::Receiver<()>, done: mpsc::Sender<()>) {
    let pass = |ds: &mut Vec<Box<dyn Deliverer>>| {
        for d in ds.iter_mut() {
            if let Some(line) = d.pass() {
                log(format!("{}: {line}", d.kind()));
            }
        }
    };
    // Woken by a commit, or by the poll interval; ends when the senders
    // are gone (shutdown).
    while let Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) = wake.recv_timeout(RETRY_POLL) {
        while wake.try_recv().is_ok() {}
        pass(&mut deliverers);
    }
    pass(&mut deliverers);
    let _ = done.send(());
}

/// Runs the service until SIGTERM or SIGINT. Returns the exit code.
pub fn serve(config: Config, loader: Loader) -> i32 {
    let _ = LOG_FORMAT.set(config.log_format);
    let loaded = match loader() {
        Ok(l) => l,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return EXIT_COMPILE;
        }
    };
    let fail = |m: String| {
        log(m);
        EXIT_FAILURE
    };
    let mut store = match Store::open_waiting(&config.db, loaded.program.schema.clone(), config.wait) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = store.ensure_indexes(&loaded.program) {
        return fail(e.to_string());
    }
    if let Err(e) = store.prompt_busy() {
        return fail(e.message);
    }
    let (intake, stats) = match (IntakeStore::open(&config.db, config.wait), IntakeStore::open(&config.db, config.wait))
    {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return fail(e.to_string()),
    };
    // What an earlier instance acknowledged and did not process comes first.
    let backlog: Vec<IntakeRow> = match intake.pending() {
        Ok(b) => b,
        Err(e) => return fail(e.message),
    };
    let server = match tiny_http::Server::http(&config.listen) {
        Ok(s) => Arc::new(s),
        Err(e) => return fail(format!("cannot listen on {}: {e}", config.listen)),
    };
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot handle signals: {e}")),
    };
    let queue = Arc::new(Queue::default());
    let outstanding = backlog.len() as i64;
    if !backlog.is_empty() {
        log(format!(
            "{} acknowledged event{} from before the restart to process first",
            backlog.len(),
            plural(backlog.len())
        ));
    }
    queue.push(backlog.into_iter().map(|r| Item { seq: r.seq, raw: r.raw.into_bytes(), received_ns: r.received_ns }));
    let shared = Arc::new(Shared {
        token: config.token,
        max_body: config.max_body,
        max_queue: config.max_queue,
        db: config.db.clone(),
        wait: config.wait,
        metrics: Metrics::default(),
        queue: queue.clone(),
        intake: Mutex::new(intake),
        stats: Mutex::new(stats),
        plan: RwLock::new(Arc::new(DecodePlan::new(PlanSpec::for_program(&loaded.program)))),
        outstanding: AtomicI64::new(outstanding),
        loader,
        reloading: Mutex::new(()),
        shutting_down: AtomicBool::new(false),
    });

    let (wake_tx, wake_rx) = mpsc::channel();
    let (delivered_tx, delivered_rx) = mpsc::channel();
    let grace = config.deliverers.iter().map(|d| d.deadline()).max().unwrap_or_default();
    let delivery = {
        let deliverers = config.deliverers;
        std::thread::spawn(move || deliver(deliverers, wake_rx, delivered_tx))
    };
    let processor = {
        let sh = shared.clone();
        let first = Swap { program: loaded.program, matcher: loaded.matcher, store };
        let (batch, workers, wake) = (config.batch, config.workers, wake_tx.clone());
        std::thread::spawn(move || {
            let r = process(sh.clone(), first, batch, workers, wake);
            if r.is_err() {
                // Stop taking events nobody will process.
                sh.shutting_down.store(true, Ordering::Relaxed);
            }
            r
        })
    };
    let handlers: Vec<_> = (0..config.http_threads.max(1))
        .map(|_| {
            let (sh, server) = (shared.clone(), server.clone());
            std::thread::spawn(move || {
                let mut h = http::Handler::new(sh.clone());
                while !sh.shutting_down.load(Ordering::Relaxed) {
                    match server.recv_timeout(ACCEPT_POLL) {
                        Ok(Some(req)) => h.handle(req),
                        Ok(None) => {}
                        Err(e) => {
                            log(format!("accepting a request failed: {e}"));
                            std::thread::sleep(ACCEPT_POLL);
                        }
                    }
                }
            })
        })
        .collect();
    let signal_handle = signals.handle();
    let signal_thread = {
        let sh = shared.clone();
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if sig == signal_hook::consts::SIGHUP {
                    log("SIGHUP: reloading the policy");
                    let _ = reload(&sh);
                } else {
                    log("stopping: no new requests; finishing the batch in flight");
                    sh.shutting_down.store(true, Ordering::Relaxed);
                    break;
                }
            }
        })
    };
    match server.server_addr().to_ip() {
        Some(addr) => log(format!("listening on http://{addr}")),
        None => log(format!("listening on {}", config.listen)),
    }

    // Stop accepting first, so nothing is acknowledged after the engine stops.
    for h in handlers {
        let _ = h.join();
    }
    drop(server);
    queue.shutdown();
    let processed = processor.join().unwrap_or_else(|_| Err("the processing thread panicked".into()));
    signal_handle.close();
    let _ = signal_thread.join();
    drop(wake_tx);
    // One delivery deadline at most: a stuck server must not hold the exit;
    // unsent rows stay in the outbox for the next start.
    let finished = delivered_rx.recv_timeout(grace + Duration::from_secs(1)).is_ok();
    if finished {
        let _ = delivery.join();
    } else {
        log("the last delivery pass did not finish in time; undelivered rows stay in the outbox");
    }
    let left = shared.outstanding.load(Ordering::Relaxed).max(0);
    match processed {
        Ok(()) => {
            if left > 0 {
                log(format!(
                    "stopped; {left} acknowledged event{} stay in the intake for the next start",
                    plural(left as usize)
                ));
            } else {
                log("stopped");
            }
            EXIT_OK
        }
        Err(e) => fail(format!("stopped after a store failure: {e}")),
    }
}
