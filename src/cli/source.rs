//! `herald run --source postgres://…`: the engine's input from authentik's
//! event table (`store::pg_source`), and the hook that records, in each batch
//! transaction, which events that transaction covers (`store::cursor`).

use super::RunArgs;
use crate::engine::InCommit;
use crate::engine::ScopeOf;
use crate::store::pg_source::{SourceReader, SourceSpec};
use crate::store::workers::{self, Leases, WorkerSpec};
use crate::store::{Backend, SourceCursor, SourceEvent};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether `--source` names a PostgreSQL database (rather than a file).
pub(super) fn is_postgres(source: &str) -> bool {
    source.starts_with("postgres://") || source.starts_with("postgresql://")
}

/// What `run` needs to read a database source.
pub(super) struct SourceInput {
    pub reader: SourceReader,
    /// The source's name for dead letters (the URL without its password).
    pub name: String,
    /// The line number of the first event this run reads.
    pub first_line: u64,
    pub in_commit: InCommit,
    /// A partitioned source: the partition of each line, for the engine's
    /// shared state.
    pub scope_of: Option<ScopeOf>,
    /// A partitioned source: the lease thread; dropping it (after the run)
    /// gives the partitions back.
    pub leases: Option<Leases>,
}

/// The events handed over up to `last_line`, out of the queue: those the
/// committing transaction covers.
fn take_committed(fed: &Mutex<VecDeque<SourceEvent>>, last_line: u64) -> Vec<SourceEvent> {
    let mut q = fed.lock().unwrap_or_else(|e| e.into_inner());
    let n = q.iter().take_while(|e| e.line <= last_line).count();
    q.drain(..n).collect()
}

/// The partition of the event on `line`, among those handed over and not
/// yet committed (in line order).
fn part_of(fed: &Mutex<VecDeque<SourceEvent>>, line: u64) -> Option<u32> {
    let q = fed.lock().unwrap_or_else(|e| e.into_inner());
    let i = q.partition_point(|e| e.line < line);
    q.get(i).filter(|e| e.line == line).and_then(|e| e.part)
}

/// Connects to the source, loads its cursor from the store and builds the
/// commit hook. SIGTERM and SIGINT end the input at an event boundary.
pub(super) fn open(args: &RunArgs, url: &str, store: &dyn Backend) -> Result<SourceInput, String> {
    if args.backfill || args.from_start {
        return Err("`--backfill` and `--from-start` do not apply to a `postgres://` source (yet): \
                    its cursor is the resume point"
            .into());
    }
    let mut spec = SourceSpec::new(url, &args.mapping.authentik_schema, args.follow)?;
    spec.lookback = Duration::from_secs(args.source_lookback);
    let key = spec.key();
    let name = spec.name();
    let recorded = store.source_partitions(&key).map_err(|e| e.message)?;
    if let Some(parts) = args.partitions {
        return open_partitioned(args, spec, parts as u32, store);
    }
    if let Some(n) = recorded {
        return Err(format!(
            "the source is partitioned into {n} for several workers (herald.herald_partition): run with \
             `--partitions {n} --follow`; a run without it would read from a cursor the workers no longer advance"
        ));
    }
    let cursor = store.source_cursor(&key).map_err(|e| e.message)?;
    let first_line = cursor.last_line + 1;
    let mut newest = cursor.last.as_ref().map(|l| l.0);
    let stop = stop_on_signals()?;
    let reader = SourceReader::open(spec, cursor, stop)?;
    let fed = reader.fed();
    let lookback_us = (args.source_lookback as i64).saturating_mul(1_000_000);
    let in_commit: InCommit = Box::new(move |store: &dyn Backend, last_line: u64| {
        let batch = take_committed(&fed, last_line);
        if batch.is_empty() {
            return Ok(());
        }
        for e in &batch {
            newest = Some(newest.map_or(e.created_us, |n| n.max(e.created_us)));
        }
        let forget_before = newest.unwrap_or(i64::MIN).saturating_sub(lookback_us);
        store.source_advance(&key, &batch, forget_before)
    });
    Ok(SourceInput { reader, name, first_line, in_commit, scope_of: None, leases: None })
}

/// SIGTERM and SIGINT set `stop`: the first asks for a clean stop, a second
/// one ends the process at once (exit 1), as an impatient Ctrl-C expects.
/// Nothing is lost either way: the cursor only moves with the commits.
fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    Ok(stop)
}

/// A worker of a partitioned source (store::workers): leases first, then
/// the fetcher over the partitions held, and a commit hook that records
/// each partition's events under its own cursor after checking, in the
/// same transaction, that this worker still holds it.
fn open_partitioned(
    args: &RunArgs,
    mut spec: SourceSpec,
    parts: u32,
    store: &dyn Backend,
) -> Result<SourceInput, String> {
    if store.kind() != "postgres" {
        return Err("`--partitions` shares the source between workers through the store: it needs a PostgreSQL \
                    store (`--db postgres://…`), which every worker opens"
            .into());
    }
    if !args.follow {
        return Err("`--partitions` needs `--follow`: the workers share a stream that does not end".into());
    }
    let key = spec.key();
    let name = spec.name();
    let worker = workers::worker_name(args.worker_id.as_deref());
    let store_url = args.db.to_string_lossy().into_owned();
    let leases = Leases::start(
        WorkerSpec {
            store_url,
            source_key: key.clone(),
            parts,
            worker: worker.clone(),
            lease: Duration::from_secs(args.lease_seconds),
        },
        Arc::new(Mutex::new(workers::Board::default())),
    )?;
    let board = leases.board();
    spec.partitions = Some((parts, board.clone()));
    // Line numbers go on from the highest any partition recorded: they
    // name lines within this run's output; the event's uuid names it for good.
    let mut first = SourceCursor::default();
    for p in 0..parts {
        let c = store.source_cursor(&workers::part_key(&key, p, parts)).map_err(|e| e.message)?;
        first.last_line = first.last_line.max(c.last_line);
    }
    let first_line = first.last_line + 1;
    let stop = stop_on_signals()?;
    let reader = SourceReader::open(spec, first, stop)?;
    let fed = reader.fed();
    let scope_fed = fed.clone();
    let scope_of: ScopeOf = Box::new(move |line| part_of(&scope_fed, line));
    let lookback_us = (args.source_lookback as i64).saturating_mul(1_000_000);
    let mut newest: HashMap<u32, i64> = HashMap::new();
    let in_commit: InCommit = Box::new(move |store: &dyn Backend, last_line: u64| {
        let batch = take_committed(&fed, last_line);
        if batch.is_empty() {
            return Ok(());
        }
        let mut by_part: HashMap<u32, Vec<SourceEvent>> = HashMap::new();
        for e in batch {
            // Every event of a partitioned fetcher has its partition.
            by_part.entry(e.part.unwrap_or(u32::MAX)).or_default().push(e);
        }
        let epochs: Vec<(u32, i64)> = {
            let b = workers::lock(&board);
            by_part.keys().map(|p| (*p, b.held.get(p).map_or(-1, |h| h.epoch))).collect()
        };
        let mut sorted = epochs.clone();
        sorted.sort_unstable();
        store.fence_partitions(&key, &worker, &sorted)?;
        for (part, events) in &by_part {
            let n = newest.entry(*part).or_insert(i64::MIN);
            for e in events {
                *n = (*n).max(e.created_us);
            }
            let forget_before = n.saturating_sub(lookback_us);
            store.source_advance(&workers::part_key(&key, *part, parts), events, forget_before)?;
        }
        let mut b = workers::lock(&board);
        for (part, events) in &by_part {
            if let Some(h) = b.held.get_mut(part) {
                h.committed += events.len() as u64;
            }
        }
        Ok(())
    });
    Ok(SourceInput { reader, name, first_line, in_commit, scope_of: Some(scope_of), leases: Some(leases) })
}
