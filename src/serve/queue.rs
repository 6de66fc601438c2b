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

    pub fn reader(self: &Arc<Self>, fed: Arc<Mutex<Fed>>) -> IntakeReader {
        IntakeReader { queue: self.clone(), fed, partial: None, line: 0 }
    }
}

/// The engine's input during one run: blocks until events arrive and ends
/// (reads 0 bytes) at an event boundary once the run is asked to stop.
pub(super) struct IntakeReader {
    queue: Arc<Queue>,
    fed: Arc<Mutex<Fed>>,
    /// The event being copied out (its line end appended) and how far.
    partial: Option<(Vec<u8>, usize)>,
    /// Engine line number of the last event handed over.
    line: u64,
}

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
            let mut st = self.queue.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                // A stop request ends the input between events: a line
                // is never cut, and what was not handed over stays queued
                // for the next run.
                if st.stop || (n > 0 && st.items.is_empty()) {
                    return Ok(n);
                }
                if let Some(item) = st.items.pop_front() {
                    self.line += 1;
                    self.fed.lock().unwrap_or_else(|e| e.into_inner()).push_back((
                        self.line,
                        item.seq,
                        item.received_ns,
                    ));
                    let mut raw = item.raw;
                    raw.push(b'\n');
                    self.partial = Some((raw, 0));
                    break;
                }
                st = self.queue.cond.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}
