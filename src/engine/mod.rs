//! `herald run`: read NDJSON events, match, run guards and actions, apply
//! effects to the store, deliver email.
//!
//! ```text
//! reader thread ─chunks─▶ worker threads (decode + match, in parallel)
//!        ─results (in any order)─▶ writer (this thread: reorder, guards,
//!        actions, SQLite transactions, checkpoint) ─commit─▶ mail thread
//! ```
//!
//! Invariants:
//! - effects are applied in input order by one writer;
//! - all effects of an event, its firing rows and its replay record commit
//!   in one transaction, with the input checkpoint;
//! - stdout firing lines and `log` output are written after the commit that
//!   made them true, never before;
//! - a non-matching event allocates nothing and touches no store.

mod batch;
pub mod coverage;
mod db;
#[cfg(test)]
mod db_tests;
mod effects;
pub mod hash;
mod reader;
#[cfg(test)]
mod reader_tests;
pub mod replay;
mod state;
pub mod suite;

// The matcher lives beside `interp` and `jit` (which must not depend on
// the engine); the engine re-exports it for its callers.
pub use crate::matcher::{InterpMatcher, MatchScratch, Matcher, RuleIndex};

pub use reader::DEFAULT_MAX_LINE;

use db::RuleStore;
use hash::{hex64, Xxh64};
use reader::{Chunk, ChunkReader, RAW_PREFIX};

use crate::decode::{fnv1a_128, DecodePlan, Decoder, FullEvent, PlanSpec};
use crate::diag::RuntimeError;
use crate::effect::{EffectCounts, RuleEffects};
use crate::interp::{self, Env, Interp, Outcome};
use crate::ir::{Program, RuleId};
use crate::logfmt::Record;
use crate::store::Backend;
use crate::value::now_nanos;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a transaction stays open: its effects (and their output
/// lines) become visible at most this long after the event was read.
const IDLE_COMMIT: Duration = Duration::from_millis(500);

/// See [`RunOptions::in_commit`].
pub type InCommit = Box<dyn FnMut(&dyn Backend, u64) -> Result<(), RuntimeError> + Send>;

/// Options of one run.
pub struct RunOptions {
    /// The input's name for dead letters and the summary (`-` for stdin).
    pub source: String,
    /// Events per transaction (at most).
    pub batch: usize,
    /// Decode+match threads.
    pub workers: usize,
    /// Ignore a stored checkpoint and read the input from its first line.
    pub from_start: bool,
    /// Lines longer than this (bytes, without the terminator) are dead
    /// letters, streamed past without being held whole.
    pub max_line: usize,
    /// Apply rules that were never applied to an already-processed event
    /// (a rule name new to it). Implies reading from the first line.
    pub backfill: bool,
    /// The value of `now()` for the whole run (`run --now`); `None` reads
    /// the clock once per event. A value, not a global, so that a caller
    /// (`herald test`, later) can pin it per test.
    pub now: Option<i128>,
    /// Called with what each input line led to, as the writer decides it
    /// (before its commit): `herald test` captures effects this way, on
    /// the same path as `run`, instead of reading them back from SQLite.
    pub on_observe: Option<Box<dyn FnMut(Observed) + Send>>,
    /// Called after every commit (e.g. to wake email delivery).
    pub on_commit: Option<Box<dyn FnMut() + Send>>,
    /// Called inside every batch transaction just before it commits, with
    /// the last input line it covers: `herald serve` deletes the processed
    /// events from its intake here, so they leave it atomically with their
    /// effects. An error rolls the transaction back and ends the run.
    pub in_commit: Option<InCommit>,
    /// The number of the input's first line (1 for a file; `herald serve`
    /// numbers its input by intake sequence). Ignored when a checkpoint
    /// resumes the input.
    pub first_line: u64,
    /// Record a resume point per input (`herald_checkpoint`); `herald
    /// serve` keeps its own (the intake) and turns this off.
    pub checkpoints: bool,
    /// The longest a transaction stays open (`herald run`: 500 ms; `herald
    /// serve` commits as soon as what it was handed is applied).
    pub idle_commit: Duration,
    /// Called with the number of input bytes consumed so far.
    pub on_progress: Option<Box<dyn FnMut(u64) + Send>>,
    /// How dead-letter, rule-error and `log` lines are written.
    pub log_format: crate::logfmt::LogFormat,
    /// Count each matched rule's clause verdicts and queries here (`herald
    /// test --coverage`); `None` in every other run.
    pub coverage: Option<Arc<Mutex<coverage::Coverage>>>,
    /// Several workers share the store's window, throttle and `after` state
    /// (`run --partitions`): the function gives the partition of the event
    /// on a line, whose own watermarks judge it (`state::StateCache::shared`).
    pub shared_state: Option<ScopeOf>,
}

/// See [`RunOptions::shared_state`].
pub type ScopeOf = Box<dyn Fn(u64) -> Option<u32> + Send>;

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            source: "-".into(),
            // Few commits are cheaper: rows written by many events (a
            // group's growing attribute history) reach the WAL once per
            // commit, not once per event. IDLE_COMMIT still bounds how long
            // effects wait to be committed; this bounds the output held
            // back meanwhile.
            batch: 10_000,
            workers: default_workers(),
            from_start: false,
            max_line: DEFAULT_MAX_LINE,
            backfill: false,
            now: None,
            on_observe: None,
            on_commit: None,
            in_commit: None,
            checkpoints: true,
            first_line: 1,
            idle_commit: IDLE_COMMIT,
            shared_state: None,
            on_progress: None,
            log_format: crate::logfmt::LogFormat::Human,
            coverage: None,
        }
    }
}

/// One outcome of one input line (see [`RunOptions::on_observe`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// A rule fired; its effects as the interpreter produced them.
    Fired {
        line: u64,
        rule: String,
        effects: Vec<crate::effect::Effect>,
    },
    RuleError {
        line: u64,
        rule: String,
        code: String,
        message: String,
    },
    DeadLetter {
        line: u64,
        error: String,
    },
}

pub fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8)
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunStats {
    /// Non-blank input lines read in this run.
    pub events: u64,
    /// Lines skipped because a checkpoint showed them processed.
    pub resumed_lines: u64,
    /// Events that fired at least one rule.
    pub fired_events: u64,
    pub firings: u64,
    pub effects: EffectCounts,
    pub dead_letters: u64,
    pub rule_errors: u64,
    /// Matching events skipped because their id was already processed.
    pub duplicates: u64,
    /// Dead letters of earlier runs whose line was processed this time.
    pub resolved_dead_letters: u64,
    /// (rule, event) pairs not applied: the rule matched an already-processed
    /// event it was never applied to, and the run was not a backfill.
    pub skipped_pairs: u64,
    /// (rule, event) pairs a backfill applied to already-processed events.
    pub backfilled_pairs: u64,
    pub bytes: u64,
}

/// A failure that stops the run (exit code 2).
#[derive(Debug)]
pub enum RunError {
    Io(std::io::Error),
    Store(RuntimeError),
    /// The input does not continue the run its checkpoint recorded.
    Checkpoint(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Io(e) => write!(f, "cannot read the events: {e}"),
            // The message already says what failed (see `store::sql_err`).
            RunError::Store(e) => f.write_str(&e.message),
            RunError::Checkpoint(m) => f.write_str(m),
        }
    }
}

impl From<RuntimeError> for RunError {
    fn from(e: RuntimeError) -> RunError {
        RunError::Store(e)
    }
}

enum ItemKind {
    /// The reason, and the line's length and hash when it was too long to
    /// be in the chunk whole.
    Dead(String, Option<reader::Oversized>),
    /// The rules that matched (with their match errors), and the event
    /// decoded in full by the worker, or why it could not be (the line is
    /// then the dead letter the writer records, as if it had decoded it).
    Matched(Vec<(RuleId, Option<RuntimeError>)>, Result<Box<FullEvent>, String>),
}

struct Item {
    /// The line's number: from 0 within its chunk as a worker gives it,
    /// in the input once the writer has numbered it (`Writer::chunk`).
    line: u64,
    start: usize,
    end: usize,
    kind: ItemKind,
}

struct ChunkResult {
    chunk: Chunk,
    items: Vec<Item>,
    events: u64,
    /// Number of lines (blank included) in the chunk.
    lines: u64,
}

/// Split `data` into lines: `(line_number, start, end)` without the line
/// terminator (`\n` or `\r\n`).
fn lines(data: &[u8], first_line: u64) -> impl Iterator<Item = (u64, usize, usize)> + '_ {
    let mut start = 0;
    let mut n = first_line;
    std::iter::from_fn(move || {
        if start >= data.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &data[start..]).map(|i| start + i).unwrap_or(data.len());
        let mut e = end;
        if e > start && data[e - 1] == b'\r' {
            e -= 1;
        }
        let item = (n, start, e);
        start = end + 1;
        n += 1;
        Some(item)
    })
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

fn too_long(length: u64, max_line: usize) -> String {
    format!("the line is {length} bytes long, over the limit of {max_line} bytes (`--max-line-bytes`)")
}

/// Decode and match one chunk (a worker's job).
fn process(
    chunk: Chunk,
    decoder: &mut Decoder,
    matcher: &dyn Matcher,
    scratch: &mut MatchScratch,
    max_line: usize,
    after: Option<(&dyn Matcher, &mut MatchScratch)>,
) -> ChunkResult {
    let mut after = after;
    if let Some(o) = chunk.oversized {
        let item = Item {
            line: 0,
            start: 0,
            end: chunk.data.len(),
            kind: ItemKind::Dead(too_long(o.length, max_line), Some(o)),
        };
        return ChunkResult { chunk, items: vec![item], events: 1, lines: 1 };
    }
    let mut items = Vec::new();
    let mut events = 0;
    let mut count = 0;
    // Numbered from 0 here: the writer adds the chunk's first line number.
    for (line_no, start, end) in lines(&chunk.data, 0) {
        count += 1;
        let line = &chunk.data[start..end];
        if is_blank(line) {
            continue;
        }
        events += 1;
        if line.len() > max_line {
            // Read whole in one go, but still over the limit: the same
            // dead letter as a line streamed past.
            let kind = ItemKind::Dead(too_long(line.len() as u64, max_line), None);
            items.push(Item { line: line_no, start, end, kind });
            continue;
        }
        let keep = match decoder.decode_match(line) {
            Err(e) => {
                items.push(Item { line: line_no, start, end, kind: ItemKind::Dead(e.to_string(), None) });
                false
            }
            Ok(ev) => {
                matcher.matches(&ev, scratch);
                // An event an `after` clause records goes to the writer even
                // when no rule matches it. The clauses' conditions are
                // matched here (an error counts as "maybe": the writer
                // evaluates them again and reports it), so the events no
                // clause would record stay off the writer's path.
                let record = match after.as_mut() {
                    Some((m, s)) => {
                        m.matches(&ev, s);
                        !s.matched.is_empty()
                    }
                    None => false,
                };
                !scratch.matched.is_empty() || record
            }
        };
        if keep {
            // The writer needs the event decoded in full, and its identity:
            // done here, in parallel, rather than on the single writer
            // thread (BENCHMARKS.md, "Issue 12: where each target stands").
            let full = decoder.decode_full_owned(line).map(Box::new).map_err(|e| e.to_string());
            let kind = ItemKind::Matched(std::mem::take(&mut scratch.matched), full);
            items.push(Item { line: line_no, start, end, kind });
        }
    }
    ChunkResult { chunk, items, events, lines: count }
}

fn hash_hex(bytes: &[u8]) -> String {
    hex(fnv1a_128(bytes))
}

fn hex(hash: u128) -> String {
    format!("{hash:032x}")
}

/// The last line of a non-empty chunk, as `lines` would give it.
fn last_line(data: &[u8]) -> &[u8] {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let start = memchr::memrchr(b'\n', body).map_or(0, |i| i + 1);
    let line = &body[start..];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A firing's stdout line, `{"event_uuid":…,"rule":…,"line":…}` (the keys
/// in this order, as `serde_json::json!` with `preserve_order` wrote them),
/// without building a JSON value per firing.
fn firing_line(out: &mut Vec<u8>, event_key: &str, rule: &str, line: u64) {
    out.extend_from_slice(b"{\"event_uuid\":");
    let _ = serde_json::to_writer(&mut *out, event_key);
    out.extend_from_slice(b",\"rule\":");
    let _ = serde_json::to_writer(&mut *out, rule);
    let _ = writeln!(out, ",\"line\":{line}}}");
}

/// The event types some `after` clause records, by type index (shared with
/// `replay`, whose trace and diff must forward the same events).
pub(crate) fn recorded_types(program: &Program) -> Vec<bool> {
    let mut recorded = vec![false; program.schema.events.len()];
    for (_, a) in program.afters() {
        if let Some(r) = recorded.get_mut(a.event.0 as usize) {
            *r = true;
        }
    }
    recorded
}

/// Output produced by an event, released after its transaction commits.
#[derive(Default)]
struct Pending {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// What a stored rule set means for the running program.
struct KnownSet {
    /// By rule index: the rule's name is in the set (was applied).
    applied: Vec<bool>,
    /// Some rule of the program is not in the set.
    any_new: bool,
    /// The set together with every rule of the program (the record after
    /// a backfill), once needed.
    union: Option<i64>,
}

/// The single writer: applies matched events to the store in input order.
struct Writer<'a, W: Write + ?Sized, E: Write + ?Sized> {
    program: &'a Program,
    store: &'a dyn Backend,
    /// Taken out while an event borrows it (see `apply`).
    decoder: Option<Decoder>,
    env: Env,
    opts: &'a mut RunOptions,
    stdout: &'a mut W,
    stderr: &'a mut E,
    stats: RunStats,
    source_key: String,
    in_txn: bool,
    txn_events: usize,
    txn_started: Instant,
    pending: Pending,
    /// The last line whose processing is reflected in the store.
    position: Position,
    /// The number of the next chunk's first line.
    next_line: u64,
    /// Lines of this source with an unresolved dead letter from an earlier
    /// run: one that is processed now without a dead letter resolves it.
    unresolved: BTreeSet<u64>,
    /// Lines of the current chunk dead-lettered in this run.
    chunk_dead: Vec<u64>,
    /// The id of the program's rule set, once an event needed it.
    rule_set: Option<i64>,
    /// Other rule sets met in replay records, by id.
    known: HashMap<i64, KnownSet>,
    /// Window and throttle state (see `engine::state`).
    state: std::cell::RefCell<state::StateCache>,
    /// The batch's buffered firing, notification and replay rows (see
    /// `engine::batch`); taken out, like `state`, while an event runs.
    batch: std::cell::RefCell<batch::Batch>,
    /// Rule names by rule index, shared by the rows that name them.
    rule_names: Vec<Arc<str>>,
    /// Replay records of the current chunk's events, looked up in one call
    /// on a store where each lookup is a round trip (see `prefetch`).
    prefetched: HashMap<String, Option<Option<i64>>>,
}

/// A resume point: hashes are formatted only when a commit writes them.
#[derive(Debug, Clone, Copy, Default)]
struct Position {
    line: u64,
    /// Bytes of input up to the end of the line (its terminator included).
    offset: u64,
    /// XXH64 of those bytes.
    prefix_hash: u64,
    /// XXH64 of the line itself (informative only).
    line_hash: u64,
}

impl<W: Write + ?Sized, E: Write + ?Sized> Writer<'_, W, E> {
    fn ensure_txn(&mut self) -> Result<(), RunError> {
        if !self.in_txn {
            self.store.begin()?;
            self.in_txn = true;
            self.txn_started = Instant::now();
        }
        Ok(())
    }

    /// Insert the batch's buffered rows (outside any rule's savepoint).
    fn flush_batch(&mut self) -> Result<(), RunError> {
        let batch = self.batch.get_mut();
        batch.flush(self.store)?;
        // Counted as notifications when their rule fired; now known to
        // have had no recipient.
        let dropped = batch.take_dropped();
        self.stats.effects.notifications -= dropped;
        self.stats.effects.notifications_dropped += dropped;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), RunError> {
        self.ensure_txn()?;
        self.flush_batch()?;
        self.state.get_mut().flush_marks(self.store)?;
        let p = self.position;
        if self.opts.checkpoints {
            self.store.set_checkpoint(
                &self.source_key,
                &self.opts.source,
                p.line,
                p.offset,
                &hex64(p.line_hash),
                &hex64(p.prefix_hash),
            )?;
        }
        if let Some(f) = self.opts.in_commit.as_mut() {
            f(self.store, p.line)?;
        }
        self.store.commit()?;
        self.state.get_mut().transaction_ended();
        self.in_txn = false;
        self.txn_events = 0;
        let _ = self.stdout.write_all(&self.pending.stdout);
        let _ = self.stdout.flush();
        let _ = self.stderr.write_all(&self.pending.stderr);
        self.pending = Pending::default();
        if let Some(f) = self.opts.on_commit.as_mut() {
            f();
        }
        Ok(())
    }

    /// `whole`: the length and hash of a line of which `raw` is only the
    /// start.
    fn dead_letter(
        &mut self,
        line_no: u64,
        raw: &[u8],
        error: &str,
        whole: Option<reader::Oversized>,
    ) -> Result<(), RunError> {
        self.ensure_txn()?;
        let (length, hash) = match whole {
            Some(o) => (o.length, o.hash),
            None => (raw.len() as u64, Xxh64::of(raw)),
        };
        // Only a bounded start of the line is stored: a line of hundreds of
        // megabytes would exceed SQLite's limit on a value and stop every
        // later run at the same place.
        let mut kept = &raw[..raw.len().min(RAW_PREFIX)];
        if let Err(e) = std::str::from_utf8(kept) {
            // Do not cut a character in two when the line is valid UTF-8.
            if e.error_len().is_none() && kept.len() < raw.len() {
                kept = &kept[..e.valid_up_to()];
            }
        }
        let dl = crate::store::DeadLetter {
            source: &self.opts.source,
            line: line_no,
            raw: &String::from_utf8_lossy(kept),
            length,
            hash: &hex64(hash),
            error,
        };
        self.store.insert_dead_letter(&dl)?;
        self.chunk_dead.push(line_no);
        self.stats.dead_letters += 1;
        let message = format!("dead letter: {error}");
        let record = Record { line: Some(line_no), ..Record::new("error", &message) };
        self.opts.log_format.message(&mut self.pending.stderr, &record);
        if let Some(f) = self.opts.on_observe.as_mut() {
            f(Observed::DeadLetter { line: line_no, error: error.to_string() });
        }
        self.txn_events += 1;
        Ok(())
    }

    fn apply(
        &mut self,
        line_no: u64,
        line: &[u8],
        matched: &[(RuleId, Option<RuntimeError>)],
        full: &Result<Box<FullEvent>, String>,
    ) -> Result<(), RunError> {
        let full = match full {
            Ok(f) => f,
            // The line fails full decoding (or has no valid identity): the
            // same dead letter, with the same reason, as before the rules.
            Err(reason) => return self.dead_letter(line_no, line, reason, None),
        };
        if let Some(scope_of) = &self.opts.shared_state {
            self.state.get_mut().set_scope(scope_of(line_no));
        }
        let mut decoder = self.decoder.take().expect("the writer's decoder is in place");
        // Taken out, like the decoder, while the event borrows it.
        let state = std::mem::take(&mut self.state);
        let batch = std::mem::take(&mut self.batch);
        let r = self.apply_with(&mut decoder, &state, &batch, line_no, line, matched, full);
        self.state = state;
        self.batch = batch;
        self.decoder = Some(decoder);
        if r.is_ok() && self.batch.get_mut().full() {
            self.flush_batch()?;
        }
        r
    }

    // The event, the batch and the state come in separately because each is
    // borrowed from a different owner for the event's duration.
    #[allow(clippy::too_many_arguments)]
    fn apply_with(
        &mut self,
        decoder: &mut Decoder,
        state: &std::cell::RefCell<state::StateCache>,
        batch: &std::cell::RefCell<batch::Batch>,
        line_no: u64,
        line: &[u8],
        matched: &[(RuleId, Option<RuntimeError>)],
        full: &FullEvent,
    ) -> Result<(), RunError> {
        // Decoded by the worker; installed, not scanned again.
        let ev = decoder.install(full, line);
        let key = full.identity().to_string();
        self.ensure_txn()?;
        let current = self.current_rule_set()?;
        // Exactly once per (event, rule): an event processed under this very
        // rule set (the common case: the same policy again) is skipped whole
        // at the cost of one lookup. Under another set, the rules new to the
        // event are skipped and counted, or applied with `--backfill`.
        let mut backfill_of = None;
        // The batch's own records are not in the store yet.
        let recorded = match batch.borrow().processed(&key) {
            Some(set) => Some(Some(set)),
            None => match self.prefetched.remove(key.as_str()) {
                Some(found) => found,
                None => self.store.processed_rule_set(&key)?,
            },
        };
        match recorded {
            None => {}
            Some(Some(set)) if set != current => {
                let known = self.known_set(set)?;
                let fresh = matched.iter().filter(|(id, _)| !known.applied[id.0 as usize]).count() as u64;
                if !known.any_new || fresh == 0 {
                    self.stats.duplicates += 1;
                    return Ok(());
                }
                if !self.opts.backfill {
                    self.stats.duplicates += 1;
                    self.stats.skipped_pairs += fresh;
                    return Ok(());
                }
                backfill_of = Some(set);
            }
            // The same rule set, or a record older than rule sets.
            Some(_) => {
                self.stats.duplicates += 1;
                return Ok(());
            }
        }
        // No savepoint around the whole event: nothing ever rolls back to
        // one (a rule's failure rolls back to its own savepoint, a store
        // failure ends the run and rolls back the transaction), and the
        // SAVEPOINT/RELEASE pair was two statements per matched event.
        let db = RuleStore::new(self.store, state, batch);
        // One clock reading per event for its rows' times.
        let at = now_nanos();
        let key: Arc<str> = Arc::from(key);
        // Under `--coverage`, rules read through the tracing wrapper, which
        // tells which filtered queries ran.
        let cov = self.opts.coverage.clone();
        let cov = cov.as_deref().map(|c| c.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let recorder = interp::trace::Recorder::new(&db, &self.program.schema, true);
        let interp = Interp {
            program: self.program,
            event: &ev,
            db: if cov.is_some() { &recorder } else { &db },
            now: self.opts.now.unwrap_or_else(now_nanos),
        };
        let mut touched = false;
        let mut fired = false;
        for (id, match_error) in matched {
            if let Some(set) = backfill_of {
                if self.known[&set].applied[id.0 as usize] {
                    continue;
                }
                self.stats.backfilled_pairs += 1;
            }
            let rule = self.program.rule(*id);
            if let Some(e) = match_error {
                self.rule_error(&rule.name, &key, line_no, e)?;
                touched = true;
                continue;
            }
            interp::bind_patterns(rule, &ev, &mut self.env);
            // The rule's savepoint opens at its first write (see RuleStore).
            let mut out = RuleEffects::default();
            let mut logs = Vec::new();
            let rule_name = &self.rule_names[id.0 as usize];
            // The interpreter produces the effects; they are checked and
            // applied here, in the same savepoint as the rule's entity writes
            // (notifications in the rule's buffer, see `engine::batch`).
            let outcome = match &cov {
                Some(c) => c.run_rule(&recorder, &interp, rule, &mut self.env, &mut out),
                None => interp::run_rule(&interp, rule, &mut self.env, &mut out),
            };
            let outcome = outcome.and_then(|o| {
                if o == Outcome::Fired {
                    let mut target = effects::Target {
                        db: &db,
                        rule: rule_name,
                        event_key: &key,
                        line: line_no,
                        logs: &mut logs,
                        log_format: self.opts.log_format,
                        at,
                    };
                    effects::check_and_apply(&out.effects, &mut target)?;
                    // Only now is it a firing a throttle counts.
                    db.throttles_fired(&rule.name, &out.throttled)?;
                }
                Ok(o)
            });
            match outcome {
                Ok(Outcome::Fired) => {
                    db.finish(true)?;
                    batch.borrow_mut().fired(crate::store::FiringRow {
                        rule: rule_name.clone(),
                        event_key: key.clone(),
                        line: line_no,
                        fired_at: at,
                    });
                    if let Some(f) = self.opts.on_observe.as_mut() {
                        let effects = out.effects.clone();
                        f(Observed::Fired { line: line_no, rule: rule.name.clone(), effects });
                    }
                    firing_line(&mut self.pending.stdout, &key, &rule.name, line_no);
                    self.pending.stderr.extend_from_slice(&logs);
                    self.stats.firings += 1;
                    self.stats.effects.add(out.counts());
                    touched = true;
                    fired = true;
                }
                Ok(Outcome::Stopped) => db.finish(true)?,
                Err(err) => {
                    db.finish(false)?;
                    // Its window and throttle writes were rolled back with
                    // the savepoint: reload them from the store when needed.
                    state.borrow_mut().invalidate(self.store, &rule.name)?;
                    self.rule_error(&rule.name, &key, line_no, &err)?;
                    touched = true;
                }
            }
        }
        // `after` clauses record the event after the rules ran on it, so an
        // event never completes a sequence with itself. Not under
        // `--backfill`: the event was recorded when first processed.
        if backfill_of.is_none() {
            for (rule, err) in db.record_afters(self.program, &ev, &mut self.env)? {
                self.rule_error(&rule.name, &key, line_no, &err)?;
                touched = true;
            }
        }
        touched |= db.stateful.get();
        if let Some(set) = backfill_of {
            // Every rule of the program has now been applied (or does not
            // match: `match` is pure, so it never will); the record says so
            // even when the new rules stopped in a guard.
            let union = self.union_set(set)?;
            batch.borrow_mut().mark_processed(&key, line_no, at, union);
            self.txn_events += 1;
        } else if touched {
            batch.borrow_mut().mark_processed(&key, line_no, at, current);
            self.txn_events += 1;
        }
        if fired {
            self.stats.fired_events += 1;
        }
        Ok(())
    }

    /// The program's rule set, created in the store at the first event that
    /// needs it (inside a transaction, so a rolled-back run leaves none).
    fn current_rule_set(&mut self) -> Result<i64, RunError> {
        if let Some(id) = self.rule_set {
            return Ok(id);
        }
        let names: Vec<&str> = self.program.rules.iter().map(|r| r.name.as_str()).collect();
        let id = self.store.rule_set_id(&names)?;
        self.rule_set = Some(id);
        Ok(id)
    }

    fn known_set(&mut self, set: i64) -> Result<&KnownSet, RunError> {
        if !self.known.contains_key(&set) {
            let names = self.store.rule_set(set)?;
            let applied: Vec<bool> = self.program.rules.iter().map(|r| names.binary_search(&r.name).is_ok()).collect();
            let any_new = applied.iter().any(|a| !a);
            self.known.insert(set, KnownSet { applied, any_new, union: None });
        }
        Ok(&self.known[&set])
    }

    fn union_set(&mut self, set: i64) -> Result<i64, RunError> {
        if let Some(id) = self.known.get(&set).and_then(|k| k.union) {
            return Ok(id);
        }
        let mut names = self.store.rule_set(set)?;
        names.extend(self.program.rules.iter().map(|r| r.name.clone()));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let id = self.store.rule_set_id(&names)?;
        if let Some(k) = self.known.get_mut(&set) {
            k.union = Some(id);
        }
        Ok(id)
    }

    fn rule_error(&mut self, rule: &str, key: &str, line_no: u64, e: &RuntimeError) -> Result<(), RunError> {
        let at = e.span.and_then(|s| self.program.locate(s));
        let message = match at {
            Some(at) => format!("{} (at {at})", e.message),
            None => e.message.clone(),
        };
        let e = &RuntimeError { message, ..e.clone() };
        self.store.insert_rule_error(rule, key, e.code.as_str(), &e.message, line_no)?;
        self.stats.rule_errors += 1;
        if let Some(f) = self.opts.on_observe.as_mut() {
            let (rule, code, message) = (rule.to_string(), e.code.as_str().to_string(), e.message.clone());
            f(Observed::RuleError { line: line_no, rule, code, message });
        }
        let message = format!("rule `{rule}` failed: {}: {}", e.code, e.message);
        let record =
            Record { rule: Some(rule), event: Some(key), line: Some(line_no), ..Record::new("error", &message) };
        self.opts.log_format.message(&mut self.pending.stderr, &record);
        Ok(())
    }

    /// Mark resolved the earlier dead letters of `candidates` (lines of the
    /// current chunk, ascending) up to line `upto` that were not
    /// dead-lettered again now; `done` counts the candidates handled.
    fn resolve_upto(&mut self, candidates: &[u64], done: &mut usize, upto: u64) -> Result<(), RunError> {
        while let Some(&line) = candidates.get(*done) {
            if line > upto {
                break;
            }
            *done += 1;
            if self.chunk_dead.contains(&line) {
                continue;
            }
            self.ensure_txn()?;
            self.stats.resolved_dead_letters += self.store.resolve_dead_letters(&self.opts.source, line)?;
            self.unresolved.remove(&line);
        }
        Ok(())
    }

    /// Look up the replay records of a chunk's matched events in one call
    /// (PostgreSQL: one round trip per chunk instead of one per event, at
    /// the cost of decoding those events twice). Why the answers stay true
    /// until used: only this writer records events, an entry is used once,
    /// by the event's first occurrence in the chunk (`remove`), and a later
    /// occurrence asks the batch's buffer or the store, which hold whatever
    /// the first one recorded.
    fn prefetch(&mut self, r: &ChunkResult) -> Result<(), RunError> {
        self.prefetched.clear();
        // The workers decoded each matched line in full and took its
        // identity (a line without one is a dead letter when applied).
        let keys: Vec<String> = r
            .items
            .iter()
            .filter_map(|item| match &item.kind {
                ItemKind::Matched(_, Ok(full)) => Some(full.identity().to_string()),
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let found = self.store.processed_rule_sets(&refs)?;
        self.prefetched.extend(keys.into_iter().zip(found));
        Ok(())
    }

    /// Apply one chunk's results; gives back the chunk's buffer for reuse.
    fn chunk(&mut self, mut r: ChunkResult) -> Result<Vec<u8>, RunError> {
        if self.store.prefers_bulk_lookups() {
            self.prefetch(&r)?;
        }
        // Chunks come in input order here: number their lines.
        let first_line = self.next_line;
        self.next_line += r.lines;
        for item in &mut r.items {
            item.line += first_line;
        }
        let c = &r.chunk;
        let data = &c.data;
        let last_line_no = first_line + r.lines.max(1) - 1;
        // Usually none: only lines that were dead letters before.
        let candidates: Vec<u64> = self.unresolved.range(first_line..=last_line_no).copied().collect();
        let mut resolved = 0;
        self.chunk_dead.clear();
        for item in &r.items {
            let line = &data[item.start..item.end];
            match &item.kind {
                ItemKind::Dead(reason, whole) => self.dead_letter(item.line, line, reason, *whole)?,
                ItemKind::Matched(m, full) => self.apply(item.line, line, m, full)?,
            }
            if self.txn_events >= self.opts.batch {
                // The checkpoint is this line only when a commit records it
                // here; otherwise the chunk's end (below) supersedes it, so
                // the position is worked out only when needed.
                self.position = if c.oversized.is_some() {
                    Position {
                        line: item.line,
                        offset: c.end,
                        prefix_hash: c.hash_after,
                        line_hash: c.oversized.map_or(0, |o| o.hash),
                    }
                } else {
                    let after = memchr::memchr(b'\n', &data[item.end..]).map_or(data.len(), |i| item.end + i + 1);
                    let mut h = c.hash_before.clone();
                    h.update(&data[..after]);
                    Position {
                        line: item.line,
                        offset: c.offset + after as u64,
                        prefix_hash: h.digest(),
                        line_hash: Xxh64::of(line),
                    }
                };
                self.resolve_upto(&candidates, &mut resolved, item.line)?;
                self.commit()?;
            }
        }
        self.resolve_upto(&candidates, &mut resolved, last_line_no)?;
        self.stats.events += r.events;
        self.stats.bytes += c.end - c.offset;
        // The chunk's end is processed too: everything after the last item
        // matched nothing.
        if r.lines > 0 {
            let line_hash = match c.oversized {
                Some(o) => o.hash,
                None => Xxh64::of(last_line(data)),
            };
            self.position = Position { line: last_line_no, offset: c.end, prefix_hash: c.hash_after, line_hash };
        }
        // With an `in_commit` hook (`herald serve`), a chunk that touched
        // nothing still commits: the hook records that its lines are done
        // (intake rows of events that matched nothing leave the intake).
        let due = self.in_txn && self.txn_started.elapsed() >= self.opts.idle_commit;
        if due || (!self.in_txn && self.opts.in_commit.is_some() && r.lines > 0) {
            self.commit()?;
        }
        if let Some(f) = self.opts.on_progress.as_mut() {
            f(c.end);
        }
        Ok(r.chunk.data)
    }
}

/// Run `program` over `input`, applying effects to `store`. Firing lines go
/// to `stdout`, dead-letter/rule-error/log lines to `stderr`.
pub fn run<R: Read + Send, W: Write + ?Sized, E: Write + ?Sized>(
    program: Arc<Program>,
    matcher: Arc<dyn Matcher>,
    store: &dyn Backend,
    input: R,
    mut opts: RunOptions,
    stdout: &mut W,
    stderr: &mut E,
) -> Result<RunStats, RunError> {
    let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&program)));
    // The conditions of the `after` clauses, matched by the workers with
    // the run's engine (see `matcher::after_conditions`).
    let after: Option<Arc<dyn Matcher>> = crate::matcher::after_conditions(&program).map(|p| {
        let p = Arc::new(p);
        if matcher.name() == "jit" {
            if let Ok(j) = crate::jit::JitMatcher::compile(p.clone(), &plan) {
                return Arc::new(j) as Arc<dyn Matcher>;
            }
        }
        Arc::new(InterpMatcher::new(p)) as Arc<dyn Matcher>
    });
    let max_line = opts.max_line.max(1);
    let mut reader = ChunkReader::with_max_line(input, max_line);
    let source_key = hash_hex(reader.first_line().map_err(RunError::Io)?);

    let mut stats = RunStats::default();
    // Nothing processed yet (but a byte order mark, perhaps).
    let mut position = Position { offset: reader.offset, prefix_hash: reader.prefix_hash(), ..Position::default() };
    if opts.first_line > 1 {
        reader.line = opts.first_line;
        position.line = opts.first_line - 1;
    }
    // A backfill must see the events before the checkpoint too.
    let checkpoint = if opts.from_start || opts.backfill { None } else { store.checkpoint(&source_key)? };
    if let Some(cp) = checkpoint {
        // The checkpoint holds only if the input starts with the very bytes
        // it covered: comparing lines would miss a line fixed in place or
        // another stream with the same first and N-th line.
        let mut kept = Some(Vec::new());
        let same = match cp.prefix_hash.as_deref().map(|h| u64::from_str_radix(h, 16)) {
            Some(Ok(expected)) => reader.skip_to(cp.offset, expected, &mut kept).map_err(RunError::Io)?,
            // Written by a Herald that did not hash the prefix: unverifiable.
            _ => false,
        };
        if same {
            stats.resumed_lines = cp.line;
            reader.line = cp.line + 1;
            position = Position {
                line: cp.line,
                offset: cp.offset,
                prefix_hash: u64::from_str_radix(cp.prefix_hash.as_deref().unwrap_or_default(), 16).unwrap_or(0),
                line_hash: u64::from_str_radix(&cp.last_hash, 16).unwrap_or(0),
            };
        } else {
            // The input starts like an earlier one but does not continue it
            // (changed, shortened, another stream): read it from its first
            // line. The replay records skip what was already applied, so
            // this applies nothing twice.
            match kept {
                Some(kept) => {
                    let message = format!(
                        "the input does not continue the run recorded in the store (checkpoint at line {}); \
                         reading it from its first line (events already processed are skipped)",
                        cp.line
                    );
                    opts.log_format.message(stderr, &Record::new("warning", &message));
                    reader.unread(kept);
                }
                None => {
                    return Err(RunError::Checkpoint(format!(
                        "the input does not continue the run recorded in the store (checkpoint at line {}); \
                         pass --from-start to read it from its first line (events already processed are skipped)",
                        cp.line
                    )))
                }
            }
        }
    }
    let unresolved: BTreeSet<u64> = store.unresolved_dead_letters(&opts.source)?.into_iter().collect();

    let workers = opts.workers.max(1);
    let (job_tx, job_rx): (SyncSender<Chunk>, Receiver<Chunk>) = mpsc::sync_channel(workers * 2);
    let (res_tx, res_rx) = mpsc::sync_channel::<ChunkResult>(workers * 2);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let read_error: Arc<Mutex<Option<std::io::Error>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    // Spent chunk buffers, writer to reader. Bounded by the chunks that can
    // be in flight; the writer drops a buffer when it is full.
    let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<u8>>(workers * 4 + 2);
    reader.spare = Some(spare_rx);

    let next_line = reader.line;
    let writer_program = program.clone();
    std::thread::scope(|scope| -> Result<RunStats, RunError> {
        {
            let read_error = read_error.clone();
            let stop = stop.clone();
            scope.spawn(move || {
                let mut reader = reader;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match reader.next_chunk() {
                        Ok(Some(c)) => {
                            if job_tx.send(c).is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            *read_error.lock().unwrap() = Some(e);
                            break;
                        }
                    }
                }
            });
        }
        for _ in 0..workers {
            let job_rx = job_rx.clone();
            let res_tx = res_tx.clone();
            let plan = plan.clone();
            let matcher = matcher.clone();
            let after = after.clone();
            scope.spawn(move || {
                let mut decoder = Decoder::new(plan);
                let mut scratch = MatchScratch::default();
                let mut after_scratch = MatchScratch::default();
                loop {
                    let job = job_rx.lock().unwrap().recv();
                    let Ok(chunk) = job else { break };
                    let after = after.as_deref().map(|m| (m, &mut after_scratch));
                    let r = process(chunk, &mut decoder, &*matcher, &mut scratch, max_line, after);
                    if res_tx.send(r).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);

        let state = if opts.shared_state.is_some() { state::StateCache::shared() } else { Default::default() };
        let mut w = Writer {
            program: &writer_program,
            store,
            decoder: Some(Decoder::new(plan.clone())),
            env: Vec::new(),
            opts: &mut opts,
            stdout,
            stderr,
            stats,
            source_key,
            in_txn: false,
            txn_events: 0,
            txn_started: Instant::now(),
            pending: Pending::default(),
            position,
            next_line,
            unresolved,
            chunk_dead: Vec::new(),
            rule_set: None,
            known: HashMap::new(),
            prefetched: HashMap::new(),
            state: std::cell::RefCell::new(state),
            batch: Default::default(),
            rule_names: writer_program.rules.iter().map(|r| Arc::from(r.name.as_str())).collect(),
        };
        let mut next = 0u64;
        let mut parked: BTreeMap<u64, ChunkResult> = BTreeMap::new();
        let result = (|| -> Result<(), RunError> {
            loop {
                // While a transaction is open, wait at most until it is
                // due, so a quiet input (a pipe with nothing more to say
                // for now) still sees its effects committed and printed.
                let r = if w.in_txn {
                    let left = w.opts.idle_commit.saturating_sub(w.txn_started.elapsed());
                    match res_rx.recv_timeout(left) {
                        Ok(r) => r,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            w.commit()?;
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                } else {
                    match res_rx.recv() {
                        Ok(r) => r,
                        Err(_) => break,
                    }
                };
                parked.insert(r.chunk.seq, r);
                while let Some(r) = parked.remove(&next) {
                    let spent = w.chunk(r)?;
                    let _ = spare_tx.try_send(spent);
                    next += 1;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            stop.store(true, Ordering::Relaxed);
            if w.in_txn {
                let _ = w.store.rollback();
            }
            // Drain so the other threads can finish.
            drop(res_rx);
            return Err(e);
        }
        if let Some(e) = read_error.lock().unwrap().take() {
            // Commit what was read before the failure, then report it.
            w.commit()?;
            return Err(RunError::Io(e));
        }
        w.commit()?;
        Ok(w.stats)
    })
}
