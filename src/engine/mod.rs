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

mod db;
#[cfg(test)]
mod db_tests;
mod effects;
#[cfg(test)]
mod reader_tests;

// The matcher lives beside `interp` and `jit` (which must not depend on
// the engine); the engine re-exports it for its callers.
pub use crate::matcher::{InterpMatcher, MatchScratch, Matcher, RuleIndex};

use db::RuleStore;

use crate::decode::{fnv1a_128, DecodePlan, Decoder, PlanSpec};
use crate::diag::RuntimeError;
use crate::effect::{EffectCounts, RuleEffects};
use crate::interp::{self, Env, Interp, Outcome};
use crate::ir::{Program, RuleId};
use crate::store::Store;
use crate::value::now_nanos;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most input `skip_lines` keeps to read again when a checkpoint turns
/// out not to belong to this input.
const KEEP_LIMIT: usize = 64 << 20;

/// Bytes per chunk handed to a worker.
const CHUNK: usize = 1 << 20;

/// The longest a transaction stays open: its effects (and their output
/// lines) become visible at most this long after the event was read.
const IDLE_COMMIT: Duration = Duration::from_millis(500);

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
    /// Apply rules that were never applied to an already-processed event
    /// (a rule name new to it). Implies reading from the first line.
    pub backfill: bool,
    /// Called after every commit (e.g. to wake email delivery).
    pub on_commit: Option<Box<dyn FnMut() + Send>>,
    /// Called with the number of input bytes consumed so far.
    pub on_progress: Option<Box<dyn FnMut(u64) + Send>>,
}

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
            backfill: false,
            on_commit: None,
            on_progress: None,
        }
    }
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
            RunError::Store(e) => write!(f, "the store failed: {}", e.message),
            RunError::Checkpoint(m) => f.write_str(m),
        }
    }
}

impl From<RuntimeError> for RunError {
    fn from(e: RuntimeError) -> RunError {
        RunError::Store(e)
    }
}

/// A piece of the input ending at a line boundary.
struct Chunk {
    seq: u64,
    data: Vec<u8>,
    /// Line number of the first line in `data` (1-based).
    first_line: u64,
    /// Byte offset of `data` in the input.
    offset: u64,
}

enum ItemKind {
    Dead(String),
    Matched(Vec<(RuleId, Option<RuntimeError>)>),
}

struct Item {
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

/// Decode and match one chunk (a worker's job).
fn process(chunk: Chunk, decoder: &mut Decoder, matcher: &dyn Matcher, scratch: &mut MatchScratch) -> ChunkResult {
    let mut items = Vec::new();
    let mut events = 0;
    let mut count = 0;
    for (line_no, start, end) in lines(&chunk.data, chunk.first_line) {
        count += 1;
        let line = &chunk.data[start..end];
        if is_blank(line) {
            continue;
        }
        events += 1;
        match decoder.decode_match(line) {
            Err(e) => items.push(Item { line: line_no, start, end, kind: ItemKind::Dead(e.to_string()) }),
            Ok(ev) => {
                matcher.matches(&ev, scratch);
                if !scratch.matched.is_empty() {
                    items.push(Item {
                        line: line_no,
                        start,
                        end,
                        kind: ItemKind::Matched(std::mem::take(&mut scratch.matched)),
                    });
                }
            }
        }
    }
    ChunkResult { chunk, items, events, lines: count }
}

/// Reads the input in chunks that end at line boundaries.
struct ChunkReader<R: Read> {
    input: R,
    buf: Vec<u8>,
    /// Buffers of chunks the writer is done with, to read the next chunks
    /// into: reusing them saves allocating, and faulting in, a fresh
    /// megabyte per chunk.
    spare: Option<Receiver<Vec<u8>>>,
    seq: u64,
    line: u64,
    offset: u64,
    eof: bool,
    /// The last read returned less than asked: the input has nothing more
    /// ready for now.
    short: bool,
}

impl<R: Read> ChunkReader<R> {
    fn new(input: R) -> Self {
        ChunkReader { input, buf: Vec::new(), spare: None, seq: 0, line: 1, offset: 0, eof: false, short: false }
    }

    /// Read until the buffer holds at least one full line (or EOF) and
    /// either `want` bytes or everything the input has ready: a short read
    /// (a pipe whose producer is slow, `tail -f | herald run`) hands over
    /// the complete lines at once instead of waiting for a full chunk. A
    /// regular file only reads short at its end.
    fn fill(&mut self, want: usize) -> std::io::Result<()> {
        while !self.eof && (memchr::memchr(b'\n', &self.buf).is_none() || (self.buf.len() < want && !self.short)) {
            let old = self.buf.len();
            let ask = CHUNK.max(want.saturating_sub(old));
            self.buf.resize(old + ask, 0);
            let n = loop {
                match self.input.read(&mut self.buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(old);
                        return Err(e);
                    }
                }
            };
            self.buf.truncate(old + n);
            self.short = n < ask;
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// The first line of the input (for its fingerprint), without consuming
    /// it. Called once, before anything else reads: it also drops a UTF-8
    /// byte order mark at the very start (editors on Windows write one; JSON
    /// parsers may ignore it), which would otherwise make line 1 a dead letter.
    fn first_line(&mut self) -> std::io::Result<&[u8]> {
        self.fill(3)?;
        if self.offset == 0 && self.buf.starts_with(b"\xef\xbb\xbf") {
            self.buf.drain(..3);
            // Offsets stay byte offsets in the input.
            self.offset = 3;
        }
        let end = memchr::memchr(b'\n', &self.buf).unwrap_or(self.buf.len());
        let mut line = &self.buf[..end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        Ok(line)
    }

    /// Consume `n` lines; returns the last one consumed (for verification).
    /// The consumed bytes are appended to `keep` while it stays under
    /// [`KEEP_LIMIT`] (it becomes `None` beyond), so that the caller can
    /// [`unread`](Self::unread) them when the lines turn out to be another
    /// input's.
    fn skip_lines(&mut self, n: u64, keep: &mut Option<Vec<u8>>) -> std::io::Result<Option<Vec<u8>>> {
        let mut last = None;
        let mut done = 0;
        while done < n {
            self.fill(1)?;
            if self.buf.is_empty() {
                return Ok(None);
            }
            // Consume every whole line in the buffer, then drop them at
            // once: draining line by line moved the rest of the buffer for
            // every skipped line.
            let mut pos = 0;
            let mut last_line = None;
            while done < n && pos < self.buf.len() {
                let end = match memchr::memchr(b'\n', &self.buf[pos..]) {
                    Some(i) => pos + i + 1,
                    None if self.eof => self.buf.len(),
                    None => break,
                };
                last_line = Some((pos, end));
                pos = end;
                done += 1;
                self.line += 1;
            }
            if let Some((start, end)) = last_line {
                let mut line = &self.buf[start..end];
                while let Some(b'\n' | b'\r') = line.last() {
                    line = &line[..line.len() - 1];
                }
                last = Some(line.to_vec());
            }
            if let Some(k) = keep {
                if k.len() + pos <= KEEP_LIMIT {
                    k.extend_from_slice(&self.buf[..pos]);
                } else {
                    *keep = None;
                }
            }
            self.buf.drain(..pos);
            self.offset += pos as u64;
        }
        Ok(last)
    }

    /// Put back the bytes `skip_lines` kept: the input reads again from its
    /// first line (after a byte order mark).
    fn unread(&mut self, mut kept: Vec<u8>) {
        let skipped = kept.len() as u64;
        kept.extend_from_slice(&self.buf);
        self.buf = kept;
        self.line = 1;
        self.offset -= skipped;
    }

    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        self.fill(CHUNK)?;
        if self.buf.is_empty() {
            return Ok(None);
        }
        let cut = if self.eof {
            self.buf.len()
        } else {
            memchr::memrchr(b'\n', &self.buf).map(|i| i + 1).unwrap_or(self.buf.len())
        };
        // The partial line after the cut starts the next buffer, a spent one
        // when the writer has returned any.
        let mut next = self.spare.as_ref().and_then(|r| r.try_recv().ok()).unwrap_or_default();
        next.clear();
        next.reserve(CHUNK + (self.buf.len() - cut));
        next.extend_from_slice(&self.buf[cut..]);
        self.buf.truncate(cut);
        let data = std::mem::replace(&mut self.buf, next);
        let lines = memchr::memchr_iter(b'\n', &data).count() as u64 + u64::from(data.last() != Some(&b'\n'));
        let chunk = Chunk { seq: self.seq, data, first_line: self.line, offset: self.offset };
        self.seq += 1;
        self.line += lines;
        self.offset += chunk.data.len() as u64;
        Ok(Some(chunk))
    }
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
    store: &'a Store,
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
    /// (line, offset after the line, hash of the line) of the last line
    /// whose processing is reflected in the store. The hash is formatted
    /// only when a commit writes it.
    position: (u64, u64, u128),
    /// The id of the program's rule set, once an event needed it.
    rule_set: Option<i64>,
    /// Other rule sets met in replay records, by id.
    known: HashMap<i64, KnownSet>,
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

    fn commit(&mut self) -> Result<(), RunError> {
        self.ensure_txn()?;
        let (line, offset, hash) = self.position;
        self.store.set_checkpoint(&self.source_key, &self.opts.source, line, offset, &hex(hash))?;
        self.store.commit()?;
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

    fn dead_letter(&mut self, line_no: u64, raw: &[u8], error: &str) -> Result<(), RunError> {
        self.ensure_txn()?;
        self.store.insert_dead_letter(&self.opts.source, line_no, &String::from_utf8_lossy(raw), error)?;
        self.stats.dead_letters += 1;
        let _ = writeln!(self.pending.stderr, "herald: line {line_no}: dead letter: {error}");
        self.txn_events += 1;
        Ok(())
    }

    fn apply(&mut self, line_no: u64, line: &[u8], matched: &[(RuleId, Option<RuntimeError>)]) -> Result<(), RunError> {
        let mut decoder = self.decoder.take().expect("the writer's decoder is in place");
        let r = self.apply_with(&mut decoder, line_no, line, matched);
        self.decoder = Some(decoder);
        r
    }

    fn apply_with(
        &mut self,
        decoder: &mut Decoder,
        line_no: u64,
        line: &[u8],
        matched: &[(RuleId, Option<RuntimeError>)],
    ) -> Result<(), RunError> {
        let ev = match decoder.decode_full(line) {
            Ok(ev) => ev,
            Err(e) => return self.dead_letter(line_no, line, &e.to_string()),
        };
        let key = match ev.identity() {
            Ok(k) => k,
            Err(e) => {
                let msg = e.to_string();
                return self.dead_letter(line_no, line, &msg);
            }
        };
        self.ensure_txn()?;
        let current = self.current_rule_set()?;
        // Exactly once per (event, rule): an event processed under this very
        // rule set (the common case: the same policy again) is skipped whole
        // at the cost of one lookup. Under another set, the rules new to the
        // event are skipped and counted, or applied with `--backfill`.
        let mut backfill_of = None;
        match self.store.processed_rule_set(&key)? {
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
        let db = RuleStore::new(self.store);
        let interp = Interp { program: self.program, event: &ev, db: &db, now: now_nanos() };
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
            // The interpreter produces the effects; they are checked and
            // applied here, in the same savepoint as the rule's entity writes.
            let mut dropped = 0;
            let outcome = interp::run_rule(&interp, rule, &mut self.env, &mut out).and_then(|o| {
                if o == Outcome::Fired {
                    let mut target = effects::Target {
                        db: &db,
                        rule: &rule.name,
                        event_key: &key,
                        line: line_no,
                        logs: &mut logs,
                        dropped: 0,
                    };
                    let applied = effects::check_and_apply(&out.effects, &mut target);
                    dropped = target.dropped;
                    applied?;
                }
                Ok(o)
            });
            match outcome {
                Ok(Outcome::Fired) => {
                    db.finish(true)?;
                    self.store.insert_firing(&rule.name, &key, line_no)?;
                    let j = serde_json::json!({"event_uuid": key, "rule": rule.name, "line": line_no});
                    let _ = writeln!(self.pending.stdout, "{j}");
                    self.pending.stderr.extend_from_slice(&logs);
                    self.stats.firings += 1;
                    let mut counts = out.counts();
                    counts.notifications -= dropped;
                    counts.notifications_dropped = dropped;
                    self.stats.effects.add(counts);
                    touched = true;
                    fired = true;
                }
                Ok(Outcome::Stopped) => db.finish(true)?,
                Err(err) => {
                    db.finish(false)?;
                    self.rule_error(&rule.name, &key, line_no, &err)?;
                    touched = true;
                }
            }
        }
        if let Some(set) = backfill_of {
            // Every rule of the program has now been applied (or does not
            // match: `match` is pure, so it never will); the record says so
            // even when the new rules stopped in a guard.
            let union = self.union_set(set)?;
            self.store.mark_processed(&key, line_no, union)?;
            self.txn_events += 1;
        } else if touched {
            self.store.mark_processed(&key, line_no, current)?;
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
        let _ =
            writeln!(self.pending.stderr, "herald: line {line_no}: rule `{rule}` failed: {}: {}", e.code, e.message);
        Ok(())
    }

    /// Apply one chunk's results; gives back the chunk's buffer for reuse.
    fn chunk(&mut self, r: ChunkResult) -> Result<Vec<u8>, RunError> {
        let data = &r.chunk.data;
        for item in &r.items {
            let line = &data[item.start..item.end];
            match &item.kind {
                ItemKind::Dead(reason) => self.dead_letter(item.line, line, reason)?,
                ItemKind::Matched(m) => self.apply(item.line, line, m)?,
            }
            if self.txn_events >= self.opts.batch {
                // The checkpoint is this line only when a commit records it
                // here; otherwise the chunk's end (below) supersedes it, so
                // the position is worked out only when needed.
                let after = memchr::memchr(b'\n', &data[item.end..]).map_or(data.len(), |i| item.end + i + 1);
                self.position = (item.line, r.chunk.offset + after as u64, fnv1a_128(line));
                self.commit()?;
            }
        }
        self.stats.events += r.events;
        self.stats.bytes += data.len() as u64;
        // The chunk's end is processed too: everything after the last item
        // matched nothing.
        if r.lines > 0 {
            let line_no = r.chunk.first_line + r.lines - 1;
            self.position = (line_no, r.chunk.offset + data.len() as u64, fnv1a_128(last_line(data)));
        }
        if self.in_txn && self.txn_started.elapsed() > IDLE_COMMIT {
            self.commit()?;
        }
        if let Some(f) = self.opts.on_progress.as_mut() {
            f(r.chunk.offset + data.len() as u64);
        }
        Ok(r.chunk.data)
    }
}

/// Run `program` over `input`, applying effects to `store`. Firing lines go
/// to `stdout`, dead-letter/rule-error/log lines to `stderr`.
pub fn run<R: Read + Send, W: Write + ?Sized, E: Write + ?Sized>(
    program: Arc<Program>,
    matcher: Arc<dyn Matcher>,
    store: &Store,
    input: R,
    mut opts: RunOptions,
    stdout: &mut W,
    stderr: &mut E,
) -> Result<RunStats, RunError> {
    let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&program)));
    let mut reader = ChunkReader::new(input);
    let source_key = hash_hex(reader.first_line().map_err(RunError::Io)?);

    let mut stats = RunStats::default();
    let mut position = (0, 0, 0);
    // A backfill must see the events before the checkpoint too.
    if !opts.from_start && !opts.backfill {
        if let Some(cp) = store.checkpoint(&source_key)? {
            let mut kept = Some(Vec::new());
            let last = reader.skip_lines(cp.line, &mut kept).map_err(RunError::Io)?;
            match last {
                Some(l) if hash_hex(&l) == cp.last_hash => {
                    stats.resumed_lines = cp.line;
                    position = (cp.line, cp.offset, fnv1a_128(&l));
                }
                // The input starts like an earlier one but does not continue
                // it (rewritten, shortened, another stream): read it from its
                // first line. The replay records skip what was already
                // applied, so this applies nothing twice.
                _ => match kept {
                    Some(kept) => {
                        let _ = writeln!(
                            stderr,
                            "herald: the input does not continue the run recorded in the store (checkpoint at \
                             line {}); reading it from its first line (events already processed are skipped)",
                            cp.line
                        );
                        reader.unread(kept);
                    }
                    None => {
                        return Err(RunError::Checkpoint(format!(
                            "the input does not continue the run recorded in the store (checkpoint at line {}); \
                             pass --from-start to read it from its first line (events already processed are \
                             skipped)",
                            cp.line
                        )))
                    }
                },
            }
        }
    }

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
            scope.spawn(move || {
                let mut decoder = Decoder::new(plan);
                let mut scratch = MatchScratch::default();
                loop {
                    let job = job_rx.lock().unwrap().recv();
                    let Ok(chunk) = job else { break };
                    let r = process(chunk, &mut decoder, &*matcher, &mut scratch);
                    if res_tx.send(r).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);

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
            rule_set: None,
            known: HashMap::new(),
        };
        let mut next = 0u64;
        let mut parked: BTreeMap<u64, ChunkResult> = BTreeMap::new();
        let result = (|| -> Result<(), RunError> {
            loop {
                // While a transaction is open, wait at most until it is
                // due, so a quiet input (a pipe with nothing more to say
                // for now) still sees its effects committed and printed.
                let r = if w.in_txn {
                    let left = IDLE_COMMIT.saturating_sub(w.txn_started.elapsed());
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
