//! Many workers on one event source (`herald run --source postgres://…
//! --partitions N --db postgres://…`, docs/postgres-source.md "Many
//! workers"): the partitions' leases.
//!
//! The source's events are split into N partitions by a key that keeps each
//! account's events together (`pg_source::partition_sql`); each partition
//! has its own durable cursor (`store::cursor`, under [`part_key`]). A
//! worker holds a partition by a lease, a row of `herald.herald_partition`
//! with an owner, an expiry on the server's clock and an epoch raised at
//! every claim. This module's thread (one per worker, with a connection of
//! its own to the store's database) renews the worker's leases, claims free
//! or expired ones with `FOR UPDATE SKIP LOCKED` up to the worker's fair
//! share (the partitions divided among the live workers of
//! `herald.herald_worker`), and gives back what exceeds the share once
//! everything it handed to the engine from those partitions is committed.
//!
//! Exactly once rests on one check: every batch transaction, before it
//! commits, locks the rows of the partitions whose events it records and
//! verifies that this worker still holds each with the epoch it claimed it
//! with (`Backend::fence_partitions`). A claim updates those rows, so it
//! waits for such a transaction to end and then reads the cursor that
//! transaction recorded; a transaction of a worker that lost the partition
//! meanwhile fails its check and commits nothing. No clocks are compared
//! but the server's own, and there is no consensus of our own: PostgreSQL's
//! row locks decide.

use super::cursor::SourceCursor;
use super::pg::{connect, describe_pg, CURSOR_SQL};
use postgres::Client;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The cursor key of partition `part` of `parts` of a source.
pub fn part_key(source_key: &str, part: u32, parts: u32) -> String {
    format!("{source_key}#p{part}/{parts}")
}

/// How a worker takes part.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The store's database (Herald's tables), where the leases live.
    pub store_url: String,
    /// The source's key (`SourceSpec::key`).
    pub source_key: String,
    /// The partition count.
    pub parts: u32,
    /// This worker's name, unique per process (`--worker-id` and more).
    pub worker: String,
    /// How long a lease lasts without renewal: a worker that dies loses its
    /// partitions to the others after about this long.
    pub lease: Duration,
}

/// A partition this worker holds.
#[derive(Debug)]
pub struct Held {
    /// The epoch it was claimed with (the fence compares it).
    pub epoch: i64,
    /// Its cursor as recorded when claimed, until the fetcher takes it.
    pub cursor: Option<SourceCursor>,
    /// Events of it handed to the engine, and of those, committed.
    pub sent: u64,
    pub committed: u64,
    /// Being given back: the fetcher reads no more of it.
    pub releasing: bool,
    /// The fetcher has stopped reading it (after `releasing`).
    pub stopped: bool,
}

/// What the lease thread, the fetcher and the commit hook share.
#[derive(Debug, Default)]
pub struct Board {
    pub held: BTreeMap<u32, Held>,
    /// A partition was lost while some of its events were still being
    /// applied: the run must end (its fence would fail anyway).
    pub lost: Option<String>,
    /// Live workers at the last round (this one included).
    pub live: u32,
}

pub type SharedBoard = Arc<Mutex<Board>>;

/// The board, even if a thread panicked while holding it.
pub fn lock(board: &SharedBoard) -> MutexGuard<'_, Board> {
    board.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lease thread of a running worker; [`Leases::finish`] (or dropping
/// it) gives its partitions back.
pub struct Leases {
    spec: WorkerSpec,
    board: SharedBoard,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<Client>>>,
}

type PgResult<T> = Result<T, String>;

fn pg(e: postgres::Error) -> String {
    describe_pg(&e)
}

/// Register the partitions of a source the first time it is run with
/// `--partitions` (carrying an unpartitioned cursor over to each), or check
/// that `parts` is the count it was partitioned with.
fn init(client: &mut Client, spec: &WorkerSpec) -> PgResult<()> {
    let mut tx = client.transaction().map_err(pg)?;
    // Two workers starting at once: one registers, the other then checks.
    tx.execute("SELECT pg_advisory_xact_lock(7250845912374012401)", &[]).map_err(pg)?;
    let row = tx
        .query_one(
            "SELECT count(*), min(parts), max(parts) FROM herald.herald_partition WHERE source_key = $1",
            &[&spec.source_key],
        )
        .map_err(pg)?;
    let (count, min, max): (i64, Option<i64>, Option<i64>) = (row.get(0), row.get(1), row.get(2));
    let parts = i64::from(spec.parts);
    if count == 0 {
        for part in 0..parts {
            tx.execute(
                "INSERT INTO herald.herald_partition (source_key, part, parts) VALUES ($1, $2, $3)",
                &[&spec.source_key, &part, &parts],
            )
            .map_err(pg)?;
            // Each partition starts where the unpartitioned cursor stopped
            // (its remembered window included): no event is taken twice.
            tx.execute(
                "INSERT INTO herald.herald_source_event (source_key, event_uuid, created_us, line) \
                 SELECT $2, event_uuid, created_us, line FROM herald.herald_source_event WHERE source_key = $1 \
                 ON CONFLICT (source_key, event_uuid) DO NOTHING",
                &[&spec.source_key, &part_key(&spec.source_key, part as u32, spec.parts)],
            )
            .map_err(pg)?;
        }
        tx.execute("DELETE FROM herald.herald_source_event WHERE source_key = $1", &[&spec.source_key]).map_err(pg)?;
    } else if min != Some(parts) || max != Some(parts) || count != parts {
        return Err(format!(
            "the source is partitioned into {} (herald.herald_partition); `--partitions {}` differs, and a \
             source is not re-partitioned: run every worker with `--partitions {}`",
            max.unwrap_or(0),
            spec.parts,
            max.unwrap_or(0)
        ));
    }
    tx.commit().map_err(pg)
}

/// The cursor of one partition, as `PgStore::source_cursor` reads it (on
/// this thread's own connection).
fn read_cursor(client: &mut Client, key: &str) -> PgResult<SourceCursor> {
    let rows = client.query(CURSOR_SQL, &[&key]).map_err(pg)?;
    Ok(SourceCursor::from_rows(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2)))))
}

fn lease_ms(spec: &WorkerSpec) -> f64 {
    spec.lease.as_secs_f64() * 1000.0
}

/// One round: say this worker is alive, renew its leases, claim up to its
/// share or mark what exceeds it for giving back, and give back what is
/// drained. Claims and gives back at most what the share says, so workers
/// settle within a few rounds.
fn round(client: &mut Client, spec: &WorkerSpec, board: &SharedBoard) -> PgResult<()> {
    let ms = lease_ms(spec);
    let held: Vec<i64> = lock(board).held.keys().map(|p| i64::from(*p)).collect();
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute(
        "INSERT INTO herald.herald_worker (source_key, worker, seen_until) \
         VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond') \
         ON CONFLICT (source_key, worker) DO UPDATE SET seen_until = excluded.seen_until",
        &[&spec.source_key, &spec.worker, &ms],
    )
    .map_err(pg)?;
    tx.execute(
        "DELETE FROM herald.herald_worker WHERE source_key = $1 AND seen_until < clock_timestamp() - interval '1 hour'",
        &[&spec.source_key],
    )
    .map_err(pg)?;
    let live: i64 = tx
        .query_one(
            "SELECT count(*) FROM herald.herald_worker WHERE source_key = $1 AND seen_until > clock_timestamp()",
            &[&spec.source_key],
        )
        .map_err(pg)?
        .get(0);
    let renewed = tx
        .query(
            "UPDATE herald.herald_partition SET lease_until = clock_timestamp() + $3 * interval '1 millisecond' \
             WHERE source_key = $1 AND owner = $2 AND part = ANY($4) RETURNING part, epoch",
            &[&spec.source_key, &spec.worker, &ms, &held],
        )
        .map_err(pg)?;
    tx.commit().map_err(pg)?;
    let renewed: BTreeMap<u32, i64> = renewed.iter().map(|r| (r.get::<_, i64>(0) as u32, r.get::<_, i64>(1))).collect();

    let live = live.max(1) as u32;
    let share = spec.parts.div_ceil(live) as usize;
    let (want, give) = {
        let mut b = lock(board);
        b.live = live;
        // A partition no longer ours (it expired while this worker was
        // stalled, and another claimed it): harmless if nothing of it is
        // in flight, fatal otherwise.
        let gone: Vec<u32> = b.held.iter().filter(|(p, h)| renewed.get(p) != Some(&h.epoch)).map(|(p, _)| *p).collect();
        for p in gone {
            let h = b.held.remove(&p).expect("listed above");
            if h.sent != h.committed && b.lost.is_none() {
                b.lost = Some(format!(
                    "this worker ({}) lost partition {p} of the source while {} of its events were being applied \
                     (its lease expired: was the worker stalled for longer than --lease-seconds?)",
                    spec.worker,
                    h.sent - h.committed
                ));
            }
        }
        let active = b.held.values().filter(|h| !h.releasing).count();
        let mut give = Vec::new();
        if active > share {
            // Give back the highest-numbered ones beyond the share.
            let extra: Vec<u32> =
                b.held.iter().rev().filter(|(_, h)| !h.releasing).take(active - share).map(|(p, _)| *p).collect();
            for p in extra {
                if let Some(h) = b.held.get_mut(&p) {
                    h.releasing = true;
                }
            }
        }
        for (p, h) in &b.held {
            if h.releasing && h.stopped && h.sent == h.committed {
                give.push((*p, h.epoch));
            }
        }
        (share.saturating_sub(active), give)
    };
    for (part, epoch) in give {
        // The row lock of a committing batch makes this wait for it; the
        // epoch makes sure only this worker's own lease is given up.
        client
            .execute(
                "UPDATE herald.herald_partition SET owner = NULL, lease_until = NULL \
                 WHERE source_key = $1 AND part = $2 AND owner = $3 AND epoch = $4",
                &[&spec.source_key, &i64::from(part), &spec.worker, &epoch],
            )
            .map_err(pg)?;
        lock(board).held.remove(&part);
    }
    if want > 0 {
        let mut tx = client.transaction().map_err(pg)?;
        let claimed = tx
            .query(
                "WITH free AS ( \
                   SELECT part FROM herald.herald_partition \
                   WHERE source_key = $1 AND (owner IS NULL OR lease_until < clock_timestamp()) \
                   ORDER BY part LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 UPDATE herald.herald_partition p SET owner = $2, epoch = p.epoch + 1, \
                   lease_until = clock_timestamp() + $4 * interval '1 millisecond' \
                 FROM free WHERE p.source_key = $1 AND p.part = free.part RETURNING p.part, p.epoch",
                &[&spec.source_key, &spec.worker, &(want as i64), &ms],
            )
            .map_err(pg)?;
        tx.commit().map_err(pg)?;
        for r in &claimed {
            let (part, epoch) = (r.get::<_, i64>(0) as u32, r.get::<_, i64>(1));
            // Read after the claim committed: the former holder's last
            // transaction (if any) has ended, its cursor is final.
            let cursor = read_cursor(client, &part_key(&spec.source_key, part, spec.parts))?;
            lock(board).held.insert(
                part,
                Held { epoch, cursor: Some(cursor), sent: 0, committed: 0, releasing: false, stopped: false },
            );
        }
    }
    Ok(())
}

impl Leases {
    /// Connect, register or check the partitions, take a first share and
    /// start renewing. `stop` ends the thread's claiming (it is also the
    /// run's stop signal).
    pub fn start(spec: WorkerSpec, board: SharedBoard) -> Result<Leases, String> {
        if spec.parts == 0 || spec.parts > 4096 {
            return Err(format!("`--partitions {}`: from 1 to 4096", spec.parts));
        }
        let mut client = connect(&spec.store_url, Duration::from_secs(15)).map_err(|e| e.to_string())?;
        init(&mut client, &spec)?;
        round(&mut client, &spec, &board)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (t_spec, t_board, t_stop) = (spec.clone(), board.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("herald-leases".into())
            .spawn(move || run(client, t_spec, t_board, t_stop))
            .map_err(|e| format!("cannot start the lease thread: {e}"))?;
        Ok(Leases { spec, board, stop, thread: Some(thread) })
    }

    /// The board the fetcher and the commit hook share.
    pub fn board(&self) -> SharedBoard {
        self.board.clone()
    }

    /// Stop renewing and give every partition back (after the run
    /// committed what it applied). Errors are ignored: unrenewed leases
    /// expire on their own.
    pub fn finish(mut self) {
        self.give_back();
    }

    fn give_back(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else { return };
        let Ok(Some(mut client)) = thread.join() else { return };
        let held: Vec<(i64, i64)> = lock(&self.board).held.iter().map(|(p, h)| (i64::from(*p), h.epoch)).collect();
        for (part, epoch) in held {
            let _ = client.execute(
                "UPDATE herald.herald_partition SET owner = NULL, lease_until = NULL \
                 WHERE source_key = $1 AND part = $2 AND owner = $3 AND epoch = $4",
                &[&self.spec.source_key, &part, &self.spec.worker, &epoch],
            );
        }
        let _ = client.execute(
            "DELETE FROM herald.herald_worker WHERE source_key = $1 AND worker = $2",
            &[&self.spec.source_key, &self.spec.worker],
        );
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// The lease thread: a round every fifth of a lease (at most a second);
/// returns its connection for the give-back.
fn run(mut client: Client, spec: WorkerSpec, board: SharedBoard, stop: Arc<AtomicBool>) -> Option<Client> {
    let tick = (spec.lease / 5).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut renewed_at = Instant::now();
    let mut conn_ok = true;
    loop {
        let slept = Instant::now();
        while slept.elapsed() < tick {
            if stop.load(Ordering::Relaxed) {
                return conn_ok.then_some(client);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !conn_ok {
            if let Ok(c) = connect(&spec.store_url, Duration::from_secs(5)) {
                client = c;
                conn_ok = true;
            }
        }
        let result = if conn_ok { round(&mut client, &spec, &board) } else { Err("not connected".into()) };
        match result {
            Ok(()) => renewed_at = Instant::now(),
            Err(e) => {
                conn_ok = !client.is_closed();
                // Leases not renewed for a whole lease may be another
                // worker's by now: stop rather than apply more.
                if renewed_at.elapsed() >= spec.lease {
                    let mut b = lock(&board);
                    if b.lost.is_none() {
                        b.lost = Some(format!(
                            "this worker ({}) could not renew its partition leases for {} s: {e}",
                            spec.worker,
                            spec.lease.as_secs()
                        ));
                    }
                }
            }
        }
    }
}

/// A worker name unique to this process: `--worker-id` (or the host name)
/// with the process id and the start time, so a restarted worker never
/// renews a lease its predecessor held.
pub fn worker_name(given: Option<&str>) -> String {
    let base = match given {
        Some(g) => g.to_string(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "herald".into()),
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{base}:{}:{:x}", std::process::id(), nanos & 0xffff_ffff)
}
