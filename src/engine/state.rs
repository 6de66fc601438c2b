//! The writer's cache of window, throttle and `after` state.
//!
//! The store (`store::state`) is the record; this cache keeps, per stateful
//! clause, its watermark and the live entries of the keys it has met, so an
//! event costs no query once its key is known. Every change is written
//! through to the store in the same call, inside the rule's savepoint.
//! A rule that fails rolls its savepoint back; the engine then drops the
//! rule's whole cache (`invalidate`), which is reloaded key by key from the
//! store: the cache never holds what the store does not.
//!
//! Semantics (docs/language.md, "Windows, throttles and sequences"): per clause, the
//! *watermark* is the latest event time that reached the clause. An event
//! whose time `t` is at or before `watermark - D` is too late to place and
//! stops the rule. Otherwise every entry that can matter has a time after
//! `watermark - 2D` (the window `(t - D, t]` starts after it), so entries
//! at or before that are pruned: in memory as keys are touched, and in the
//! store by a sweep each time the watermark enters a new multiple of `D`.

use crate::diag::RuntimeError;
use crate::interp::WindowAnswer;
use crate::store::{Backend, EntryKind, StateEntry};
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub(super) struct StateCache {
    clauses: HashMap<(String, u32), ClauseState>,
    /// Clauses whose watermark the current rule advanced (see
    /// `ClauseState::before_rule`).
    touched: Vec<(String, u32)>,
}

struct ClauseState {
    watermark: Option<i128>,
    /// The watermark as `herald_state_mark` holds it in this transaction.
    /// Watermarks are written once per transaction (`flush_marks`, before
    /// the commit), not at every event that advances them: with a
    /// time-ordered input that was every event.
    stored: Option<i128>,
    /// The watermark before the current rule first advanced it: what a
    /// failed rule's rollback returns it to.
    before_rule: Option<Option<i128>>,
    /// The store holds nothing this cache does not (the clause had no
    /// state when first read): an unknown key has no entries, no query.
    complete: bool,
    /// Live entries by key, oldest first.
    keys: HashMap<String, Vec<StateEntry>>,
}

/// Write `entry` through to the store and into the key's cached entries,
/// after every entry with the same time (input order among equals).
fn add_entry(
    store: &dyn Backend,
    rule: &str,
    clause: u32,
    key: &str,
    entries: &mut Vec<StateEntry>,
    entry: StateEntry,
) -> Result<(), RuntimeError> {
    store.insert_state_entry(rule, clause, key, &entry)?;
    let at = entries.partition_point(|e| e.time <= entry.time);
    entries.insert(at, entry);
    Ok(())
}

/// The floor of `a / b` (`b > 0`): the sweep happens when it changes.
fn bucket(a: i128, b: i128) -> i128 {
    a.div_euclid(b)
}

impl StateCache {
    /// Forget the cached state of `rule` (after its savepoint rolled back).
    /// The rollback undid its entries and sweeps, but its watermarks were
    /// never written: each returns to its value before the rule, which is
    /// written now (outside the savepoint, so the reload reads it back and
    /// a store that has no mark yet is not taken for an empty clause).
    pub(super) fn invalidate(&mut self, store: &dyn Backend, rule: &str) -> Result<(), RuntimeError> {
        self.touched.clear();
        for ((r, clause), cs) in &mut self.clauses {
            if let Some(before) = cs.before_rule.take() {
                cs.watermark = before;
            }
            // Earlier events of the transaction may have advanced any of
            // the rule's clauses.
            if r == rule {
                if let Some(w) = cs.watermark.filter(|w| cs.stored != Some(*w)) {
                    store.set_state_mark(rule, *clause, w)?;
                }
            }
        }
        self.clauses.retain(|(r, _), _| r != rule);
        Ok(())
    }

    /// The current rule ended (kept or rolled back after `invalidate`).
    pub(super) fn rule_done(&mut self) {
        for k in std::mem::take(&mut self.touched) {
            if let Some(cs) = self.clauses.get_mut(&k) {
                cs.before_rule = None;
            }
        }
    }

    /// Write the watermarks advanced since the last call (before a commit,
    /// outside any rule's savepoint).
    pub(super) fn flush_marks(&mut self, store: &dyn Backend) -> Result<(), RuntimeError> {
        for ((rule, clause), cs) in &mut self.clauses {
            if let Some(w) = cs.watermark.filter(|w| cs.stored != Some(*w)) {
                store.set_state_mark(rule, *clause, w)?;
                cs.stored = Some(w);
            }
        }
        Ok(())
    }

    fn clause(&mut self, store: &dyn Backend, rule: &str, clause: u32) -> Result<&mut ClauseState, RuntimeError> {
        let k = (rule.to_string(), clause);
        if !self.clauses.contains_key(&k) {
            let watermark = store.state_mark(rule, clause)?;
            self.clauses.insert(
                k.clone(),
                ClauseState {
                    watermark,
                    stored: watermark,
                    before_rule: None,
                    complete: watermark.is_none(),
                    keys: HashMap::new(),
                },
            );
        }
        Ok(self.clauses.get_mut(&k).expect("inserted above"))
    }

    /// Place an event at `t` (`None`: too late) and advance the watermark;
    /// returns the key's live entries.
    fn place<'c>(
        &'c mut self,
        store: &dyn Backend,
        rule: &str,
        clause: u32,
        key: &str,
        t: i128,
        d: i128,
    ) -> Result<Option<(&'c mut Vec<StateEntry>, i128)>, RuntimeError> {
        let k = (rule.to_string(), clause);
        self.clause(store, rule, clause)?;
        let StateCache { clauses, touched } = self;
        let cs = clauses.get_mut(&k).expect("loaded above");
        if cs.watermark.is_some_and(|w| t <= w - d) {
            return Ok(None);
        }
        let old = cs.watermark;
        let wm = old.map_or(t, |w| w.max(t));
        let horizon = wm - 2 * d;
        if old != Some(wm) {
            if cs.before_rule.is_none() {
                cs.before_rule = Some(old);
                touched.push(k.clone());
            }
            cs.watermark = Some(wm);
            if old.is_some_and(|o| bucket(o, d) != bucket(wm, d)) {
                store.sweep_state(rule, clause, horizon)?;
                cs.keys.retain(|_, entries| {
                    entries.retain(|e| e.time > horizon);
                    !entries.is_empty()
                });
            }
        }
        if !cs.keys.contains_key(key) {
            let loaded = if cs.complete { Vec::new() } else { store.state_entries(rule, clause, key, horizon)? };
            cs.keys.insert(key.to_string(), loaded);
        }
        let entries = cs.keys.get_mut(key).expect("inserted above");
        entries.retain(|e| e.time > horizon);
        Ok(Some((entries, horizon)))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn window(
        &mut self,
        store: &dyn Backend,
        rule: &str,
        clause: u32,
        key: &str,
        t: i128,
        d: i128,
        value: Option<&str>,
    ) -> Result<Option<WindowAnswer>, RuntimeError> {
        let Some((entries, _)) = self.place(store, rule, clause, key, t, d)? else {
            return Ok(None);
        };
        let entry = StateEntry { kind: EntryKind::Event, time: t, value: value.map(str::to_string) };
        add_entry(store, rule, clause, key, entries, entry)?;
        let mut answer = WindowAnswer { count: 0, distinct: 0, first: t, last: t };
        let mut seen: HashSet<&str> = HashSet::new();
        for e in entries.iter().filter(|e| e.kind == EntryKind::Event && e.time > t - d && e.time <= t) {
            answer.count += 1;
            answer.first = answer.first.min(e.time);
            answer.last = answer.last.max(e.time);
            if let Some(v) = &e.value {
                seen.insert(v);
            }
        }
        answer.distinct = seen.len() as i64;
        Ok(Some(answer))
    }

    /// `Some(suppressed)` when the throttle passes.
    pub(super) fn throttle(
        &mut self,
        store: &dyn Backend,
        rule: &str,
        clause: u32,
        key: &str,
        t: i128,
        d: i128,
    ) -> Result<Option<i64>, RuntimeError> {
        let Some((entries, _)) = self.place(store, rule, clause, key, t, d)? else {
            return Ok(None);
        };
        let blocked = entries.iter().any(|e| e.kind == EntryKind::Fired && e.time > t - d && e.time <= t);
        if blocked {
            let entry = StateEntry { kind: EntryKind::Suppressed, time: t, value: None };
            add_entry(store, rule, clause, key, entries, entry)?;
            return Ok(None);
        }
        Ok(Some(entries.iter().filter(|e| e.kind == EntryKind::Suppressed).count() as i64))
    }

    /// The rule fired for `key` at `t`: a firing entry, and the suppressed
    /// count starts again.
    pub(super) fn fired(
        &mut self,
        store: &dyn Backend,
        rule: &str,
        clause: u32,
        key: &str,
        t: i128,
    ) -> Result<(), RuntimeError> {
        let cs = self.clause(store, rule, clause)?;
        let entries = cs.keys.entry(key.to_string()).or_default();
        store.delete_state_kind(rule, clause, key, EntryKind::Suppressed)?;
        entries.retain(|e| e.kind != EntryKind::Suppressed);
        let entry = StateEntry { kind: EntryKind::Fired, time: t, value: None };
        add_entry(store, rule, clause, key, entries, entry)?;
        Ok(())
    }

    /// An `after` clause records an earlier event; `false` when too late.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn after_record(
        &mut self,
        store: &dyn Backend,
        rule: &str,
        clause: u32,
        key: &str,
        t: i128,
        d: i128,
        json: &str,
    ) -> Result<bool, RuntimeError> {
        let Some((entries, _)) = self.place(store, rule, clause, key, t, d)? else {
            return Ok(false);
        };
        let entry = StateEntry { kind: EntryKind::Event, time: t, value: Some(json.to_string()) };
        add_entry(store, rule, clause, key, entries, entry)?;
        Ok(true)
    }

    /// An `after` clause at the current event's time `t`: the entry of
    /// `key` with the latest time in `[t - d, t]` (the later recorded among
    /// equal times). The lookup places the current event like any other:
    /// it advances the watermark, and a too-late event finds nothing.
    pub(super) fn after(
        &mut self,
        store: &dyn Backend,
        rule: &str,
        clause: u32,
        key: &str,
        t: i128,
        d: i128,
    ) -> Result<Option<String>, RuntimeError> {
        let Some((entries, _)) = self.place(store, rule, clause, key, t, d)? else {
            return Ok(None);
        };
        // Oldest first, so the last one in range is the latest.
        Ok(entries.iter().rev().find(|e| e.time >= t - d && e.time <= t).map(|e| e.value.clone().unwrap_or_default()))
    }
}
