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

/// A clause: its rule and number.
type ClauseKey = (String, u32);

#[derive(Default)]
pub(super) struct StateCache {
    clauses: HashMap<ClauseKey, ClauseState>,
    /// Watermarks the current rule advanced (see `Mark::before_rule`), by
    /// clause and scope.
    touched: Vec<(ClauseKey, Option<u32>)>,
    /// Several workers share the store's state (`run --partitions`, see
    /// [`StateCache::shared`]).
    shared: bool,
    /// The partition of the event being applied (shared runs).
    scope: Option<u32>,
    /// The state's lock is held in the open transaction (shared runs).
    locked: bool,
    /// No stateful clause ran yet in the open transaction (shared runs):
    /// what is cached may have been changed by another worker since.
    fresh: bool,
}

/// A watermark: one per clause, or one per clause and partition in a
/// shared run.
struct Mark {
    /// Its `herald_state_mark` row: the rule's name, or `RULE@pN` for
    /// partition N of a shared run.
    name: String,
    watermark: Option<i128>,
    /// The watermark as `herald_state_mark` holds it in this transaction.
    /// Watermarks are written once per transaction (`flush_marks`, before
    /// the commit), not at every event that advances them: with a
    /// time-ordered input that was every event.
    stored: Option<i128>,
    /// The watermark before the current rule first advanced it: what a
    /// failed rule's rollback returns it to.
    before_rule: Option<Option<i128>>,
}

struct ClauseState {
    marks: HashMap<Option<u32>, Mark>,
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
    /// The cache of a run that shares the store's state with other workers
    /// (docs/postgres-source.md, "Many workers"). It differs in three ways:
    /// - each transaction takes the state's lock (`Backend::lock_shared_state`)
    ///   at its first stateful clause and holds it to its commit, and then
    ///   forgets what it cached, which other workers may have changed; what
    ///   it caches afterwards stays true to the commit, as no other worker
    ///   can change state meanwhile;
    /// - an unknown key is always looked up (other workers add entries);
    /// - each partition has its own watermark (`RULE@pN`): a partition's
    ///   events arrive in time order, the stream as a whole does not, so
    ///   lateness is judged within the partition, entries are kept in the
    ///   cache whatever one partition's watermark says, and a sweep only
    ///   deletes what every partition's watermark has passed.
    pub(super) fn shared() -> StateCache {
        StateCache { shared: true, fresh: true, ..StateCache::default() }
    }

    /// The partition of the event about to be applied.
    pub(super) fn set_scope(&mut self, scope: Option<u32>) {
        self.scope = scope;
    }

    /// The transaction ended (its lock with it).
    pub(super) fn transaction_ended(&mut self) {
        self.locked = false;
        self.fresh = true;
    }

    /// Take the state's lock before the transaction's first use of state.
    fn ensure_locked(&mut self, store: &dyn Backend) -> Result<(), RuntimeError> {
        if self.shared && !self.locked {
            store.lock_shared_state()?;
            self.locked = true;
            if self.fresh {
                // Nothing was advanced yet in this transaction: all of it
                // is reloaded under the lock.
                self.clauses.clear();
                self.fresh = false;
            }
        }
        Ok(())
    }

    /// Forget the cached state of `rule` (after its savepoint rolled back).
    /// The rollback undid its entries and sweeps, but its watermarks were
    /// never written: each returns to its value before the rule, which is
    /// written now (outside the savepoint, so the reload reads it back and
    /// a store that has no mark yet is not taken for an empty clause).
    pub(super) fn invalidate(&mut self, store: &dyn Backend, rule: &str) -> Result<(), RuntimeError> {
        self.touched.clear();
        // A lock taken inside the rolled-back savepoint went with it; the
        // next stateful clause takes it again (a second take is harmless).
        self.locked = false;
        for ((r, clause), cs) in &mut self.clauses {
            for m in cs.marks.values_mut() {
                if let Some(before) = m.before_rule.take() {
                    m.watermark = before;
                }
                // Earlier events of the transaction may have advanced any
                // of the rule's clauses.
                if r == rule {
                    if let Some(w) = m.watermark.filter(|w| m.stored != Some(*w)) {
                        store.set_state_mark(&m.name, *clause, w)?;
                    }
                }
            }
        }
        self.clauses.retain(|(r, _), _| r != rule);
        Ok(())
    }

    /// The current rule ended (kept or rolled back after `invalidate`).
    pub(super) fn rule_done(&mut self) {
        for (k, scope) in std::mem::take(&mut self.touched) {
            if let Some(m) = self.clauses.get_mut(&k).and_then(|cs| cs.marks.get_mut(&scope)) {
                m.before_rule = None;
            }
        }
    }

    /// Write the watermarks advanced since the last call (before a commit,
    /// outside any rule's savepoint).
    pub(super) fn flush_marks(&mut self, store: &dyn Backend) -> Result<(), RuntimeError> {
        for ((_, clause), cs) in &mut self.clauses {
            for m in cs.marks.values_mut() {
                if let Some(w) = m.watermark.filter(|w| m.stored != Some(*w)) {
                    store.set_state_mark(&m.name, *clause, w)?;
                    m.stored = Some(w);
                }
            }
        }
        Ok(())
    }

    /// The current event's scope (`None` outside shared runs).
    fn current_scope(&self) -> Option<u32> {
        if self.shared {
            self.scope
        } else {
            None
        }
    }

    /// The clause's cached state, with the current scope's watermark loaded.
    fn clause(&mut self, store: &dyn Backend, rule: &str, clause: u32) -> Result<&mut ClauseState, RuntimeError> {
        self.ensure_locked(store)?;
        let scope = self.current_scope();
        let k = (rule.to_string(), clause);
        let loaded = self.clauses.get(&k).is_some_and(|cs| cs.marks.contains_key(&scope));
        if !loaded {
            let name = match scope {
                Some(p) => format!("{rule}@p{p}"),
                None => rule.to_string(),
            };
            let watermark = store.state_mark(&name, clause)?;
            let shared = self.shared;
            let cs = self.clauses.entry(k.clone()).or_insert_with(|| ClauseState {
                marks: HashMap::new(),
                // Shared: other workers add entries this cache never sees.
                complete: watermark.is_none() && !shared,
                keys: HashMap::new(),
            });
            cs.marks.insert(scope, Mark { name, watermark, stored: watermark, before_rule: None });
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
        self.clause(store, rule, clause)?;
        let scope = self.current_scope();
        let k = (rule.to_string(), clause);
        let shared = self.shared;
        let StateCache { clauses, touched, .. } = self;
        let cs = clauses.get_mut(&k).expect("loaded above");
        let m = cs.marks.get_mut(&scope).expect("loaded above");
        if m.watermark.is_some_and(|w| t <= w - d) {
            return Ok(None);
        }
        let old = m.watermark;
        let wm = old.map_or(t, |w| w.max(t));
        let horizon = wm - 2 * d;
        if old != Some(wm) {
            if m.before_rule.is_none() {
                m.before_rule = Some(old);
                touched.push((k.clone(), scope));
            }
            m.watermark = Some(wm);
            if old.is_some_and(|o| bucket(o, d) != bucket(wm, d)) {
                if shared {
                    // Entries of a key may be read by every partition: only
                    // what all their watermarks have passed goes, and the
                    // cache keeps what it has (it lives one transaction).
                    let floor = store.state_mark_floor(rule, clause)?.map_or(wm, |f| f.min(wm));
                    store.sweep_state(rule, clause, floor - 2 * d)?;
                } else {
                    store.sweep_state(rule, clause, horizon)?;
                    cs.keys.retain(|_, entries| {
                        entries.retain(|e| e.time > horizon);
                        !entries.is_empty()
                    });
                }
            }
        }
        if !cs.keys.contains_key(key) {
            // Shared: every entry the store has, as other partitions'
            // watermarks may be behind this one's.
            let after = if shared { i128::MIN } else { horizon };
            let loaded = if cs.complete { Vec::new() } else { store.state_entries(rule, clause, key, after)? };
            cs.keys.insert(key.to_string(), loaded);
        }
        let entries = cs.keys.get_mut(key).expect("inserted above");
        if !shared {
            entries.retain(|e| e.time > horizon);
        }
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
        let Some((entries, horizon)) = self.place(store, rule, clause, key, t, d)? else {
            return Ok(None);
        };
        let blocked = entries.iter().any(|e| e.kind == EntryKind::Fired && e.time > t - d && e.time <= t);
        if blocked {
            let entry = StateEntry { kind: EntryKind::Suppressed, time: t, value: None };
            add_entry(store, rule, clause, key, entries, entry)?;
            return Ok(None);
        }
        // `e.time > horizon`: what the cache holds of a shared clause is
        // not pruned (see `place`); elsewhere it changes nothing.
        Ok(Some(entries.iter().filter(|e| e.kind == EntryKind::Suppressed && e.time > horizon).count() as i64))
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
