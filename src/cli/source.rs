//! `herald run --source postgres://…`: the engine's input from authentik's
//! event table (`store::pg_source`), and the hook that records, in each batch
//! transaction, which events that transaction covers (`store::cursor`).

use super::RunArgs;
use crate::engine::InCommit;
use crate::store::pg_source::{SourceReader, SourceSpec};
use crate::store::Backend;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
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
    let cursor = store.source_cursor(&key).map_err(|e| e.message)?;
    let first_line = cursor.last_line + 1;
    let mut newest = cursor.last.as_ref().map(|l| l.0);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // The first signal asks for a clean stop; a second one, while the
        // run is still finishing, ends the process at once (exit 1), as an
        // impatient Ctrl-C expects. Nothing is lost either way: the cursor
        // only moves with the commits.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let reader = SourceReader::open(spec, cursor, stop)?;
    let fed = reader.fed();
    let lookback_us = (args.source_lookback as i64).saturating_mul(1_000_000);
    let in_commit: InCommit = Box::new(move |store: &dyn Backend, last_line: u64| {
        let batch: Vec<_> = {
            let mut q = fed.lock().unwrap_or_else(|e| e.into_inner());
            let n = q.iter().take_while(|e| e.line <= last_line).count();
            q.drain(..n).collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        for e in &batch {
            newest = Some(newest.map_or(e.created_us, |n| n.max(e.created_us)));
        }
        let forget_before = newest.unwrap_or(i64::MIN).saturating_sub(lookback_us);
        store.source_advance(&key, &batch, forget_before)
    });
    Ok(SourceInput { reader, name, first_line, in_commit })
}
