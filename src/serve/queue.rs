//! The in-memory side of the intake: events acknowledged (already committed
//! to `herald_intake`) waiting for the engine, and the `Read` the engine's
//! reader thread pulls them from, one JSON line per event.

use super::Swap;
use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex};

/// An acknowledged event.
pub(super) struct Item {
    pub seq: i64,
    /// One line of JSON, without a line end.
    pub raw: Vec<u8>,
    pub received_ns: i64,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    /// End the engine run at the next event boundary (a reload or shutdown).
    stop: bool,
    shutdown: bool,
    /// A checked policy waiting to be swapped in between runs.
    reload: Option<Swap>,
}

/// Events in intake order. Only the HTTP side pushes, while it holds the
/// intake connection's lock, so the order here is the `seq` order.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<State>,
    cond: Condvar,
}

/// An event handed to the engine: (engine line number, intake seq,
/// acknowledgment time).
pub(super) type Fed = VecDeque<(u64, i64, i64)>;

impl Queue {
    pub fn push(&self, items: impl IntoIterator<Item = Item>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.items.extend(items);
        self.cond.notify_all();
    }

    /// Ends the current engine run and hands the policy over.
    pub fn reload(&self, swap: Swap) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.reload = Some(swap);
        st.stop = true;
        self.cond.notify_all();
    }

    pub fn shutdown(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.shutdown = true;
        st.stop = true;
        self.cond.notify_all();
    }

    /// Between engine runs: whether to stop for good, else the policy to
    /// swap in (if any); the next run reads on.
    pub fn between_runs(&self) -> Result<Option<Swap>, ()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.shutdown {
            return Err(());
        }
        st.stop = false;
        Ok(st.reload.take())
    }

    /// Waits for the first event of the next run: its intake seq, or `None`
    /// when the run is to stop first.
    pub fn first_seq(&self) -> Option<i64> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.stop {
                return None;
            }
            if let Some(item) = st.items.front() {
                return Some(item.seq);
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The input of a run whose first line is numbered `first` (the seq of
    /// its first event).
    pub fn reader(self: &Arc<Self>, fed: Arc<Mutex<Fed>>, first: i64) -> IntakeReader {
        IntakeReader { queue: self.clone(), fed, partial: None, line: first - 1, ended: false }
    }
}

/// The engine's input during one run: blocks until events arrive and ends
/// (reads 0 bytes) at an event boundary once the run is asked to stop.
pub(super) struct IntakeReader {
    queue: Arc<Queue>,
    fed: Arc<Mutex<Fed>>,
    /// The event being copied out (its line end appended) and how far.
    partial: Option<(Vec<u8>, usize)>,
    /// Engine line number of the last event handed over: the engine's
    /// line numbers are intake seqs, so firings, rule errors and dead
    /// letters name the event by its seq.
    line: i64,
    /// The input ended before a gap too wide to fill (see `read`).
    ended: bool,
}

/// The widest gap between consecutive seqs that blank lines fill; a wider
/// one (rows deleted by hand) ends the run, and the next starts at the seq.
const MAX_GAP: i64 = 4096;

impl Read for IntakeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        loop {
            if let Some((raw, pos)) = &mut self.partial {
                let k = (raw.len() - *pos).min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&raw[*pos..*pos + k]);
                *pos += k;
                n += k;
                if *pos == raw.len() {
                    self.partial = None;
                }
            }
            if n == buf.len() {
                return Ok(n);
            }
            if self.ended {
                return Ok(n);
            }
            let mut st = self.queue.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                // A stop request ends the input between events: a line
                // is never cut, and what was not handed over stays queued
                // for the next run.
                if st.stop || (n > 0 && st.items.is_empty()) {
                    return Ok(n);
                }
                if let Some(item) = st.items.pop_front() {
                    // Seqs have no gaps but where rows were deleted by hand
                    // (and a restart's first seq, which `first` covers):
                    // blank lines, which the engine counts and skips, keep
                    // line number = seq.
                    let gap = item.seq - self.line - 1;
                    if !(0..=MAX_GAP).contains(&gap) {
                        st.items.push_front(item);
                        self.ended = true;
                        return Ok(n);
                    }
                    self.line = item.seq;
                    self.fed.lock().unwrap_or_else(|e| e.into_inner()).push_back((
                        item.seq as u64,
                        item.seq,
                        item.received_ns,
                    ));
                    let mut raw = vec![b'\n'; gap as usize];
                    raw.extend_from_slice(&item.raw);
                    raw.push(b'\n');
                    self.partial = Some((raw, 0));
                    break;
                }
                st = self.queue.cond.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: i64, raw: &str) -> Item {
        Item { seq, raw: raw.as_bytes().to_vec(), received_ns: seq }
    }

    #[test]
    fn lines_are_seqs_and_a_stop_ends_between_events() {
        let q = Arc::new(Queue::default());
        q.push([item(5, "{\"a\":1}"), item(6, "{\"b\":22}"), item(9, "{\"c\":3}")]);
        assert_eq!(q.first_seq(), Some(5));
        let fed: Arc<Mutex<Fed>> = Arc::default();
        let mut r = q.reader(fed.clone(), 5);
        // A small buffer: events are copied out across reads, whole.
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        while out.len() < 25 {
            let n = r.read(&mut buf).unwrap();
            assert!(n > 0);
            out.extend_from_slice(&buf[..n]);
        }
        // Seq 7 and 8 are missing: two blank lines keep line 9 = seq 9.
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":1}\n{\"b\":22}\n\n\n{\"c\":3}\n");
        let lines: Vec<u64> = fed.lock().unwrap().iter().map(|f| f.0).collect();
        assert_eq!(lines, [5, 6, 9]);
        q.push([item(10, "{}")]);
        q.shutdown();
        // Stopped: the end of the input, and seq 10 waits for a next run.
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert_eq!(q.state.lock().unwrap().items.len(), 1);
        assert!(q.between_runs().is_err());
    }

    #[test]
    fn a_wide_gap_ends_the_run_before_it() {
        let q = Arc::new(Queue::default());
        q.push([item(1, "{}"), item(1 + MAX_GAP + 2, "{}")]);
        let mut r = q.reader(Arc::default(), 1);
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert_eq!(q.first_seq(), Some(MAX_GAP + 3));
    }
}
