//! The immutable decode plan: which paths each event type needs, the
//! declared type of every segment, the union trie of all paths, the intern
//! table and the event-type table.

use crate::ir::{ExprKind, MatchEvents, PathId, Program};
use crate::schema::Schema;
use crate::types::{EventTypeId, RecordId, Ty};
use crate::value::Value;
use std::sync::Arc;

/// What the decoder needs to know to build a [`DecodePlan`]; independent of
/// [`Program`] so tests and tools can write one by hand.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub schema: Arc<Schema>,
    /// Every path, indexed by [`PathId`]: field names from the event root.
    pub paths: Vec<Vec<String>>,
    /// Per event type id, plus one extra entry at index `events.len()` for
    /// events of an undeclared type: the paths the `match` clauses read.
    pub match_paths: Vec<Vec<PathId>>,
    /// Same shape: match paths, paths read by guards and actions, and the
    /// identity path (the plan adds the identity path itself when missing).
    pub full_paths: Vec<Vec<PathId>>,
    /// Strings to intern (string equality in the hot path is an id compare).
    pub literals: Vec<String>,
}

impl PlanSpec {
    /// Derive the spec from a checked program: a rule applies to type `T`
    /// when it matches `any` or names `T`; `any` rules also apply to events
    /// of undeclared types. Literals are the string literals of every match
    /// condition (list literals included).
    pub fn for_program(program: &Program) -> PlanSpec {
        let schema = program.schema.clone();
        let n = schema.events.len();
        let mut match_paths = vec![Vec::new(); n + 1];
        let mut full_paths = vec![Vec::new(); n + 1];
        let mut literals = Vec::new();
        for rule in &program.rules {
            let types: Vec<usize> = match &rule.matcher.events {
                MatchEvents::Any => (0..=n).collect(),
                MatchEvents::Types(ts) => ts.iter().map(|t| t.0 as usize).filter(|&t| t < n).collect(),
            };
            let m = rule.match_paths();
            let b = rule.body_paths();
            for t in types {
                match_paths[t].extend_from_slice(&m);
                full_paths[t].extend_from_slice(&m);
                full_paths[t].extend_from_slice(&b);
            }
            rule.matcher.cond.walk(&mut |e| {
                if let ExprKind::Lit(v) = &e.kind {
                    collect_strs(v, &mut literals);
                }
            });
        }
        // An `after` clause's recorder reads the earlier event in full; the
        // workers test its condition (`matcher::after_conditions`), so the
        // paths and literals of that condition are match paths of the
        // earlier type.
        for (_, a) in program.afters() {
            if let Some(l) = full_paths.get_mut(a.event.0 as usize) {
                l.extend(a.record_paths());
            }
            if let Some(l) = match_paths.get_mut(a.event.0 as usize) {
                a.matcher.cond.walk(&mut |e| {
                    if let ExprKind::Event(p) = e.kind {
                        l.push(p);
                    }
                });
                l.extend(a.matcher.bindings.iter().map(|(_, p)| *p));
            }
            a.matcher.cond.walk(&mut |e| {
                if let ExprKind::Lit(v) = &e.kind {
                    collect_strs(v, &mut literals);
                }
            });
        }
        for l in match_paths.iter_mut().chain(full_paths.iter_mut()) {
            l.sort();
            l.dedup();
        }
        let mut seen = std::collections::HashSet::new();
        literals.retain(|s: &String| seen.insert(s.clone()));
        PlanSpec { schema, paths: program.paths.clone(), match_paths, full_paths, literals }
    }
}

fn collect_strs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Str(s) => out.push(s.to_string()),
        Value::List(items) => items.iter().for_each(|i| collect_strs(i, out)),
        Value::Object(fields) => fields.iter().for_each(|(_, i)| collect_strs(i, out)),
        _ => {}
    }
}

/// The declared type of one path segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SegTy {
    /// The field's declared type (optional included).
    Typed(Ty),
    /// Below an `any`: navigation is dynamic.
    Dynamic,
}

impl SegTy {
    /// Absence and null are allowed here.
    pub(crate) fn admits_absent(&self) -> bool {
        match self {
            SegTy::Dynamic => true,
            SegTy::Typed(t) => t.admits_absent(),
        }
    }
}

/// One path as one event type sees it.
#[derive(Debug, Clone)]
pub(crate) struct PathPlan {
    pub path: PathId,
    /// The trie node of every segment.
    pub nodes: Box<[u32]>,
    /// The declared type of every segment.
    pub segs: Box<[SegTy]>,
    /// The type of the whole path (the last segment's, or the event record
    /// for the empty path; `Dynamic` below an `any`).
    pub last: SegTy,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TypePlan {
    /// Paths `decode_match` decodes (those that exist in this type).
    pub match_: Vec<PathPlan>,
    /// Paths `decode_full` decodes.
    pub full: Vec<PathPlan>,
    /// Every path the plan knows, resolved for this type (`None`: the path
    /// names a field this type does not have, so it is always absent).
    pub by_path: Vec<Option<PathPlan>>,
    /// The identity path for this type, if the schema has one and this type has it.
    pub ident: Option<PathPlan>,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: Box<[u8]>,
    pub children: Vec<u32>,
}

pub(crate) const MODE_MATCH: usize = 0;
pub(crate) const MODE_FULL: usize = 1;

/// The decode plan: immutable, shared across threads.
#[derive(Debug)]
pub struct DecodePlan {
    pub(crate) schema: Arc<Schema>,
    pub(crate) paths: Vec<Vec<String>>,
    pub(crate) identity_path: Option<PathId>,
    /// The slot of the schema's `time` field, decoded with every full decode.
    pub(crate) time_path: Option<PathId>,
    /// Declared types plus one for undeclared.
    pub(crate) n_types: usize,
    pub(crate) types: StrTable,
    pub(crate) syms: StrTable,
    pub(crate) nodes: Vec<Node>,
    /// Words per bit set: one bit per type index plus bit `n_types` = "some type".
    pub(crate) words: usize,
    /// `(mode * nodes + node) * words`: the types whose paths of that mode
    /// pass through the node.
    pub(crate) self_mask: Vec<u64>,
    /// Same layout: the union of the children's masks.
    pub(crate) child_mask: Vec<u64>,
    /// The trie node of the discriminator (a child of the root).
    pub(crate) disc_node: Option<u32>,
    pub(crate) per_type: Vec<TypePlan>,
    /// The discriminator's key as compact JSON writes it (`"action":`), to
    /// find its value before scanning (see `Decoder::skim`).
    pub(crate) disc_finder: Option<memchr::memmem::Finder<'static>>,
    /// The discriminator's name.
    pub(crate) disc_key: Box<[u8]>,
}

impl DecodePlan {
    pub fn new(spec: PlanSpec) -> DecodePlan {
        let PlanSpec { schema, mut paths, match_paths, full_paths, literals } = spec;
        let n_events = schema.events.len();
        let n_types = n_events + 1;

        // The identity path: found among the paths, or appended.
        let identity_path = schema.identity.as_ref().map(|id| match paths.iter().position(|p| p == id) {
            Some(i) => PathId(i as u32),
            None => {
                paths.push(id.clone());
                PathId(paths.len() as u32 - 1)
            }
        });

        // The event-time path, the same way (a later stateful-rules stage
        // reads it on every matched event).
        let time_path = schema.time.as_ref().map(|t| {
            let t = vec![t.clone()];
            match paths.iter().position(|p| *p == t) {
                Some(i) => PathId(i as u32),
                None => {
                    paths.push(t);
                    PathId(paths.len() as u32 - 1)
                }
            }
        });

        let mut types = StrTable::default();
        for (i, e) in schema.events.iter().enumerate() {
            types.insert(e.name.as_bytes(), i as u32);
        }
        let mut syms = StrTable::default();
        for l in &literals {
            if syms.get(l.as_bytes()).is_none() {
                let id = syms.len() as u32 + 1;
                syms.insert(l.as_bytes(), id);
            }
        }

        // The trie of every path.
        let mut nodes = vec![Node { name: Box::new([]), children: Vec::new() }];
        let mut path_nodes: Vec<Box<[u32]>> = Vec::with_capacity(paths.len());
        for p in &paths {
            path_nodes.push(insert_path(&mut nodes, p.iter().map(|s| s.as_bytes())));
        }
        let disc_node =
            schema.discriminator.as_ref().map(|d| insert_path(&mut nodes, std::iter::once(d.as_bytes()))[0]);

        // Per type: resolve every path.
        let mut per_type = Vec::with_capacity(n_types);
        for t in 0..n_types {
            let record = if t < n_events { schema.event_record(Some(EventTypeId(t as u32))) } else { schema.common };
            let by_path: Vec<Option<PathPlan>> = (0..paths.len())
                .map(|i| resolve_path(&schema, record, &paths[i], &path_nodes[i], PathId(i as u32)))
                .collect();
            let pick = |list: Option<&Vec<PathId>>, extra: &[Option<PathId>]| {
                let mut ids: Vec<PathId> = list.cloned().unwrap_or_default();
                ids.extend(extra.iter().flatten());
                ids.retain(|p| (p.0 as usize) < paths.len());
                ids.sort();
                ids.dedup();
                ids.iter().filter_map(|p| by_path[p.0 as usize].clone()).collect::<Vec<_>>()
            };
            let match_ = pick(match_paths.get(t), &[]);
            let full = pick(full_paths.get(t), &[identity_path, time_path]);
            let ident = identity_path.and_then(|p| by_path[p.0 as usize].clone());
            per_type.push(TypePlan { match_, full, by_path, ident });
        }

        // Masks: which (mode, type) tracks which node.
        let words = (n_types + 1).div_ceil(64);
        let nn = nodes.len();
        let mut self_mask = vec![0u64; 2 * nn * words];
        let set = |mask: &mut Vec<u64>, mode: usize, node: u32, bit: usize| {
            let base = (mode * nn + node as usize) * words;
            mask[base + bit / 64] |= 1 << (bit % 64);
            mask[base + n_types / 64] |= 1 << (n_types % 64);
        };
        for (t, tp) in per_type.iter().enumerate() {
            for (mode, list) in [(MODE_MATCH, &tp.match_), (MODE_FULL, &tp.full)] {
                for pp in list.iter().chain(tp.ident.iter()) {
                    set(&mut self_mask, mode, 0, t);
                    for &n in pp.nodes.iter() {
                        set(&mut self_mask, mode, n, t);
                    }
                }
                if let Some(d) = disc_node {
                    set(&mut self_mask, mode, 0, t);
                    set(&mut self_mask, mode, d, t);
                }
            }
        }
        let mut child_mask = vec![0u64; 2 * nn * words];
        for mode in [MODE_MATCH, MODE_FULL] {
            for (n, node) in nodes.iter().enumerate() {
                let base = (mode * nn + n) * words;
                for &c in &node.children {
                    let cb = (mode * nn + c as usize) * words;
                    for w in 0..words {
                        child_mask[base + w] |= self_mask[cb + w];
                    }
                }
            }
        }

        let disc_finder = schema.discriminator.as_ref().map(|d| {
            let key = serde_json::to_string(d).unwrap_or_default() + ":";
            memchr::memmem::Finder::new(key.as_bytes()).into_owned()
        });
        let disc_key = schema.discriminator.as_deref().unwrap_or_default().as_bytes().into();
        DecodePlan {
            schema,
            paths,
            identity_path,
            time_path,
            n_types,
            types,
            syms,
            nodes,
            words,
            self_mask,
            child_mask,
            disc_node,
            per_type,
            disc_finder,
            disc_key,
        }
    }

    /// The interned id of a string (ids start at 1), `None` when not interned.
    pub fn sym(&self, s: &str) -> Option<u32> {
        self.syms.get(s.as_bytes())
    }

    /// The event type a discriminator value names.
    pub fn event_type(&self, name: &str) -> Option<EventTypeId> {
        self.types.get(name.as_bytes()).map(EventTypeId)
    }

    /// Number of slots a decoder fills: one per path (the program's paths,
    /// plus the identity and time paths when the program does not read them).
    pub fn slot_count(&self) -> usize {
        self.paths.len()
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    pub fn path(&self, id: PathId) -> &[String] {
        &self.paths[id.0 as usize]
    }

    /// The slot holding the event's identity, when the schema declares one.
    pub fn identity_path(&self) -> Option<PathId> {
        self.identity_path
    }

    /// The slot holding the event's time (the schema's `time` field), filled
    /// by every full decode.
    pub fn time_path(&self) -> Option<PathId> {
        self.time_path
    }

    /// Paths `decode_match` fills for events of type `ty` (`None`: undeclared).
    pub fn match_paths(&self, ty: Option<EventTypeId>) -> impl Iterator<Item = PathId> + '_ {
        self.per_type[self.type_index(ty)].match_.iter().map(|p| p.path)
    }

    /// Paths `decode_full` fills for events of type `ty` (`None`: undeclared).
    pub fn full_paths(&self, ty: Option<EventTypeId>) -> impl Iterator<Item = PathId> + '_ {
        self.per_type[self.type_index(ty)].full.iter().map(|p| p.path)
    }

    pub(crate) fn type_index(&self, ty: Option<EventTypeId>) -> usize {
        match ty {
            Some(t) if (t.0 as usize) < self.n_types - 1 => t.0 as usize,
            _ => self.n_types - 1,
        }
    }

    #[inline]
    pub(crate) fn tracked(&self, mode: usize, node: u32, bit: usize) -> bool {
        let i = (mode * self.nodes.len() + node as usize) * self.words + bit / 64;
        self.self_mask[i] >> (bit % 64) & 1 != 0
    }

    #[inline]
    pub(crate) fn descend(&self, mode: usize, node: u32, bit: usize) -> bool {
        let i = (mode * self.nodes.len() + node as usize) * self.words + bit / 64;
        self.child_mask[i] >> (bit % 64) & 1 != 0
    }
}

fn insert_path<'a>(nodes: &mut Vec<Node>, segs: impl Iterator<Item = &'a [u8]>) -> Box<[u32]> {
    let mut cur = 0u32;
    let mut out = Vec::new();
    for s in segs {
        let found = nodes[cur as usize].children.iter().copied().find(|&c| &*nodes[c as usize].name == s);
        cur = match found {
            Some(c) => c,
            None => {
                nodes.push(Node { name: s.into(), children: Vec::new() });
                let id = nodes.len() as u32 - 1;
                nodes[cur as usize].children.push(id);
                id
            }
        };
        out.push(cur);
    }
    out.into_boxed_slice()
}

/// Resolve a path against a record: the declared type of every segment.
/// `None` when the path names a field the record does not declare (or goes
/// through a scalar): such a path is always absent for this type.
fn resolve_path(
    schema: &Schema,
    record: Option<RecordId>,
    path: &[String],
    nodes: &[u32],
    id: PathId,
) -> Option<PathPlan> {
    let record = record?;
    let mut cur = SegTy::Typed(Ty::Record(record));
    let mut segs = Vec::with_capacity(path.len());
    for seg in path {
        let next = match &cur {
            SegTy::Dynamic => SegTy::Dynamic,
            SegTy::Typed(t) => match t.unwrap_optional() {
                Ty::Record(r) => SegTy::Typed(schema.record(*r).field(seg)?.1.ty.clone()),
                t if is_dynamic(t) => SegTy::Dynamic,
                _ => return None,
            },
        };
        segs.push(next.clone());
        cur = next;
    }
    Some(PathPlan { path: id, nodes: nodes.into(), segs: segs.into_boxed_slice(), last: cur })
}

/// Types the decoder treats like `any` (no event field should have the
/// others, but the decoder must not fail on them).
pub(crate) fn is_dynamic(t: &Ty) -> bool {
    matches!(t, Ty::Any | Ty::Error | Ty::Never | Ty::Entity(_))
}

/// A small open-addressing hash table from byte strings to ids. Looked up
/// for the discriminator of every event and for every decoded string a
/// `match` clause compares (interning), so the hash reads eight bytes at a
/// step and each index entry keeps 32 bits of its key's hash: a probe
/// compares keys only when those agree.
#[derive(Debug, Clone, Default)]
pub(crate) struct StrTable {
    /// `(key index + 1, high half of the hash)`; `(0, _)` is empty.
    index: Vec<(u32, u32)>,
    keys: Vec<Box<[u8]>>,
    vals: Vec<u32>,
    /// Bit `min(len, 63)` set for every key length present: a cheap filter.
    lens: u64,
}

/// A multiplicative hash over 8-byte words (not stable across versions:
/// only this table uses it, and it is rebuilt with every plan).
#[inline]
fn str_hash(s: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (s.len() as u64).wrapping_mul(K);
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(31);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(31);
    }
    h ^ h >> 29
}

impl StrTable {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    fn insert(&mut self, k: &[u8], v: u32) {
        self.keys.push(k.into());
        self.vals.push(v);
        self.lens |= 1 << k.len().min(63);
        let cap = (self.keys.len() * 2).next_power_of_two().max(8);
        if cap != self.index.len() {
            self.index = vec![(0, 0); cap];
            for i in 0..self.keys.len() {
                self.place(i);
            }
        } else {
            self.place(self.keys.len() - 1);
        }
    }

    fn place(&mut self, i: usize) {
        let mask = self.index.len() - 1;
        let h = str_hash(&self.keys[i]);
        let mut at = h as usize & mask;
        while self.index[at].0 != 0 {
            at = (at + 1) & mask;
        }
        self.index[at] = (i as u32 + 1, (h >> 32) as u32);
    }

    #[inline]
    pub(crate) fn get(&self, k: &[u8]) -> Option<u32> {
        if self.lens >> k.len().min(63) & 1 == 0 {
            return None;
        }
        let mask = self.index.len() - 1;
        let h = str_hash(k);
        let tag = (h >> 32) as u32;
        let mut at = h as usize & mask;
        loop {
            let (e, t) = self.index[at];
            if e == 0 {
                return None;
            }
            if t == tag && *self.keys[e as usize - 1] == *k {
                return Some(self.vals[e as usize - 1]);
            }
            at = (at + 1) & mask;
        }
    }
}
