//! Schema-driven event decoding: one NDJSON line into a fixed array of
//! [`Slot`]s, one per event path the rules read, skipping every other
//! subtree without building values.
//!
//! - [`PlanSpec`] / [`DecodePlan`]: which paths each event type needs, with
//!   the declared type of every segment (immutable, shared via `Arc`).
//! - [`Decoder`]: one per thread, reusable buffers; [`Decoder::decode_match`]
//!   decodes the paths the `match` clauses of the event's type read,
//!   [`Decoder::decode_full`] also those of guards and actions.
//! - [`Decoded`]: the slots of one event, valid until the next decode.
//!
//! One pass over the line validates it as strict JSON and records the raw
//! span of every value whose key path is in the union trie of all paths
//! (across all event types); once the discriminator is read, only the paths
//! of that type are tracked. Then the spans of the type's paths are checked
//! against their declared types and turned into slots.

/// One decoded value, laid out for the JIT (`#[repr(C)]`, 24 bytes).
///
/// | tag        | sym                 | a                    | b             |
/// |------------|---------------------|----------------------|---------------|
/// | ABSENT     | 0                   | 0                    | 0             |
/// | NULL       | 0                   | 0                    | 0             |
/// | BOOL       | 0                   | 0 or 1               | 0             |
/// | INT        | 0                   | i64 bits             | 0             |
/// | FLOAT      | 0                   | f64 bits             | 0             |
/// | STR        | interned id or 0    | offset of UTF-8      | byte length   |
/// | UUID       | 0                   | high 64 bits         | low 64 bits   |
/// | TIMESTAMP  | 0                   | low 64 bits of i128 nanos | high 64 bits |
/// | ARRAY      | 0                   | offset of raw JSON   | byte length   |
/// | OBJECT     | 0                   | offset of raw JSON   | byte length   |
/// | CONTRA     | 0                   | index of the contradiction | 0       |
///
/// Offsets are into the input line, or, when bit 63 ([`SCRATCH`]) is set,
/// into the decoder's scratch buffer (strings that had escapes). They stay
/// valid until the next call to the decoder that produced them. Offsets, not
/// pointers, keep this module free of `unsafe`; the JIT gets the two base
/// pointers as arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Slot {
    pub tag: u32,
    pub sym: u32,
    pub a: u64,
    pub b: u64,
}

pub mod tag {
    pub const ABSENT: u32 = 0;
    pub const NULL: u32 = 1;
    pub const BOOL: u32 = 2;
    pub const INT: u32 = 3;
    pub const FLOAT: u32 = 4;
    pub const STR: u32 = 5;
    pub const UUID: u32 = 6;
    pub const TIMESTAMP: u32 = 7;
    pub const ARRAY: u32 = 8;
    pub const OBJECT: u32 = 9;
    /// The value contradicts the schema (a string where an `int` is
    /// declared, a number out of range, ...). Not a value: every rule that
    /// reads the slot fails with a rule error (LANGUAGE.md, run-time
    /// semantics), the JIT answers "ask the interpreter" for it, and the
    /// other rules on the event still run. `a` indexes
    /// [`Decoded::contradiction`]'s list.
    pub const CONTRA: u32 = 10;
}

/// Bit 63 of `Slot::a`: the bytes are in the decoder's scratch buffer.
pub const SCRATCH: u64 = 1 << 63;

impl Slot {
    pub const ABSENT: Slot = Slot { tag: tag::ABSENT, sym: 0, a: 0, b: 0 };
}

mod finalize;

/// A JSON value (as `Value::to_json` wrote it) read back as a value of the
/// declared type `ty`: timestamps and uuids in typed positions convert.
pub fn typed_from_json(schema: &crate::schema::Schema, j: &serde_json::Value, ty: &crate::types::Ty) -> Value {
    finalize::convert(schema, j, &plan::SegTy::Typed(ty.clone()))
}
mod plan;
mod scan;
#[cfg(test)]
mod tests;

pub use plan::{DecodePlan, PlanSpec};

use crate::ir::PathId;
use crate::types::EventTypeId;
use crate::value::{format_uuid, Value};
use finalize::Ctx;
use plan::{MODE_FULL, MODE_MATCH};
use scan::{ScanErr, ScanState};
use std::fmt;
use std::sync::Arc;

/// Why a line could not be decoded. Every variant makes the line a dead
/// letter; `Display` gives the reason recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The line is not valid UTF-8 (byte offset of the first bad byte).
    InvalidUtf8 { at: usize },
    /// The line is not exactly one valid JSON value.
    Syntax { at: usize, reason: &'static str },
    /// Containers nested deeper than 127 levels.
    TooDeep { at: usize },
    /// Valid JSON, but not an object (`found`: "array", "string", ...).
    NotObject { found: &'static str },
    /// A value contradicts the schema where a rule reads it: `path` like
    /// `$.context.model.pk`, `expected` a type, `found` a short description
    /// of the value (`string "abc"`, `number 1.5`, `null`, `nothing`).
    Type { path: String, expected: String, found: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InvalidUtf8 { at } => write!(f, "invalid UTF-8 at byte {at}"),
            DecodeError::Syntax { at, reason } => {
                write!(f, "not valid JSON: {reason} at byte {at}")
            }
            DecodeError::TooDeep { at } => {
                write!(f, "not valid JSON: nested deeper than {} levels at byte {at}", scan::MAX_DEPTH)
            }
            DecodeError::NotObject { found } => {
                write!(f, "the event is not a JSON object (found {found})")
            }
            DecodeError::Type { path, expected, found } => write!(f, "`{path}`: expected {expected}, found {found}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn scan_error(e: ScanErr, line: &[u8]) -> DecodeError {
    match e {
        ScanErr::Syntax { at, reason } => {
            // A non-ASCII byte outside a string: report bad UTF-8 as such.
            if line.get(at).is_some_and(|&c| c >= 0x80) && scan::utf8_len(line, at).is_none() {
                DecodeError::InvalidUtf8 { at }
            } else {
                DecodeError::Syntax { at, reason }
            }
        }
        ScanErr::Utf8 { at } => DecodeError::InvalidUtf8 { at },
        ScanErr::Depth { at } => DecodeError::TooDeep { at },
        ScanErr::Rescan => DecodeError::Syntax { at: 0, reason: "internal: rescan" },
    }
}

/// FNV-1a, 128 bits: a stable hash (same on every run, platform and Rust
/// version) for events whose schema declares no identity.
pub fn fnv1a_128(data: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    for &b in data {
        h ^= b as u128;
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// Decodes lines with one plan, reusing its buffers: no heap allocation per
/// event in the steady state of `decode_match`. One per thread.
#[derive(Debug)]
pub struct Decoder {
    plan: Arc<DecodePlan>,
    slots: Vec<Slot>,
    scratch: Vec<u8>,
    st: ScanState,
    /// The (type index, mode) whose slots are filled: reset before the next decode.
    filled: Option<(usize, usize)>,
    root_inst: u64,
    type_index: usize,
    event_type: Option<EventTypeId>,
    /// The discriminator's text, encoded like a STR slot's `a`/`b`.
    type_name: (u64, u64),
    /// What each CONTRA slot of the current event contradicts (each a
    /// [`DecodeError::Type`]); empty for a well-formed event, so decoding
    /// one allocates nothing here.
    contras: Vec<DecodeError>,
    /// The current event was skimmed (see [`skim`]): nothing was recorded.
    skimmed: bool,
    /// The identity of an event put in place by [`Decoder::install`] (its
    /// scan records are another decoder's, so it cannot be resolved here).
    installed_identity: Option<String>,
}

/// An event decoded in full by one decoder, with its identity, taken out so
/// that another decoder (on another thread) can [`install`](Decoder::install)
/// it without scanning the line again: the engine's workers decode the
/// events that matched, and the single writer only installs them.
#[derive(Debug, Clone)]
pub struct FullEvent {
    type_index: usize,
    event_type: Option<EventTypeId>,
    type_name: (u64, u64),
    /// The slots of the type's `decode_full` paths, in the plan's order.
    slots: Vec<Slot>,
    /// The decoder's scratch bytes (strings that had escapes); the slots'
    /// [`SCRATCH`] offsets point into it.
    scratch: Vec<u8>,
    contras: Vec<DecodeError>,
    identity: String,
}

impl FullEvent {
    /// The event's identity, as [`Decoded::identity`] gave it.
    pub fn identity(&self) -> &str {
        &self.identity
    }
}

impl Decoder {
    pub fn new(plan: Arc<DecodePlan>) -> Decoder {
        let slots = vec![Slot::ABSENT; plan.slot_count()];
        let st = ScanState::new(plan.nodes.len());
        Decoder {
            plan,
            slots,
            scratch: Vec::with_capacity(256),
            st,
            filled: None,
            root_inst: 0,
            type_index: 0,
            event_type: None,
            type_name: (0, 0),
            contras: Vec::new(),
            skimmed: false,
            installed_identity: None,
        }
    }

    /// [`decode_full`](Self::decode_full) and [`Decoded::identity`], in that
    /// order (so the first error is the one the line fails with), with the
    /// result taken out of this decoder: what the engine's writer needs of
    /// a matched line. Allocates (the slots and the identity): for matched
    /// events only.
    pub fn decode_full_owned(&mut self, line: &[u8]) -> Result<FullEvent, DecodeError> {
        let identity = self.decode_full(line)?.identity()?;
        let tp = &self.plan.per_type[self.type_index];
        Ok(FullEvent {
            type_index: self.type_index,
            event_type: self.event_type,
            type_name: self.type_name,
            slots: tp.full.iter().map(|pp| self.slots[pp.path.0 as usize]).collect(),
            scratch: self.scratch.clone(),
            contras: self.contras.clone(),
            identity,
        })
    }

    /// Put in place an event another decoder of the same plan decoded from
    /// `line` ([`decode_full_owned`](Self::decode_full_owned)): the result
    /// is what `decode_full(line)` would have given here, without reading
    /// the line again.
    pub fn install<'a>(&'a mut self, ev: &FullEvent, line: &'a [u8]) -> Decoded<'a> {
        self.reset();
        let tp = &self.plan.per_type[ev.type_index];
        for (pp, slot) in tp.full.iter().zip(&ev.slots) {
            self.slots[pp.path.0 as usize] = *slot;
        }
        self.scratch.extend_from_slice(&ev.scratch);
        self.contras.extend_from_slice(&ev.contras);
        self.event_type = ev.event_type;
        self.type_name = ev.type_name;
        self.type_index = ev.type_index;
        self.filled = Some((ev.type_index, MODE_FULL));
        self.installed_identity = Some(ev.identity.clone());
        Decoded { event_type: self.event_type, dec: self, line }
    }

    /// Clear what the last decode filled in.
    fn reset(&mut self) {
        if let Some((t, m)) = self.filled.take() {
            let tp = &self.plan.per_type[t];
            for pp in if m == MODE_MATCH { &tp.match_ } else { &tp.full } {
                self.slots[pp.path.0 as usize] = Slot::ABSENT;
            }
        }
        self.scratch.clear();
        self.contras.clear();
        self.event_type = None;
        self.type_name = (0, 0);
        self.root_inst = 0;
        self.skimmed = false;
        self.installed_identity = None;
    }

    pub fn plan(&self) -> &Arc<DecodePlan> {
        &self.plan
    }

    /// Decode the paths the `match` clauses of the event's type read; every
    /// other slot is absent.
    pub fn decode_match<'a>(&'a mut self, line: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        self.decode(line, MODE_MATCH)?;
        Ok(Decoded { event_type: self.event_type, dec: self, line })
    }

    /// Decode the paths of the event type's match clauses, guards and
    /// actions, and the identity path (for events that matched a rule).
    pub fn decode_full<'a>(&'a mut self, line: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        self.decode(line, MODE_FULL)?;
        Ok(Decoded { event_type: self.event_type, dec: self, line })
    }

    fn decode(&mut self, line: &[u8], mode: usize) -> Result<(), DecodeError> {
        self.reset();
        let plan = &*self.plan;
        if mode == MODE_MATCH {
            if let Some((t, vs, ve)) = skim(plan, &mut self.st.keybuf, line) {
                self.type_name = ((vs + 1) as u64, (ve - vs - 2) as u64);
                self.event_type = (t < plan.n_types - 1).then_some(EventTypeId(t as u32));
                self.type_index = t;
                self.filled = Some((t, MODE_MATCH));
                self.skimmed = true;
                return Ok(());
            }
        }
        let out = match scan::scan(plan, &mut self.st, line, mode, true) {
            Err(ScanErr::Rescan) => scan::scan(plan, &mut self.st, line, mode, false),
            r => r,
        }
        .map_err(|e| scan_error(e, line))?;
        if out.root_byte != b'{' {
            return Err(DecodeError::NotObject { found: kind_name(out.root_byte) });
        }
        self.root_inst = out.root_inst;
        let ctx = Ctx { plan, recs: &self.st.recs, line, root_inst: out.root_inst, wide: self.st.wide_number };

        // The event type, from the discriminator.
        let mut t = plan.n_types - 1;
        if let (Some(d), Some(name)) = (plan.disc_node, &plan.schema.discriminator) {
            let r = self.st.recs[d as usize];
            let present = r.parent == out.root_inst;
            if !present || line[r.start] != b'"' {
                let found = if present { finalize::describe(line, r.start) } else { "nothing".into() };
                return Err(DecodeError::Type {
                    path: finalize::path_text(std::iter::once(name.as_str())),
                    expected: "string".into(),
                    found,
                });
            }
            let s = ctx.str_slot(r.start, r.end, &mut self.scratch);
            self.type_name = (s.a, s.b);
            let text = slot_bytes(line, &self.scratch, s.a, s.b);
            if let Some(id) = plan.types.get(text) {
                t = id as usize;
                self.event_type = Some(EventTypeId(id));
            }
        }
        self.type_index = t;
        self.filled = Some((t, mode));
        let tp = &plan.per_type[t];
        for pp in if mode == MODE_MATCH { &tp.match_ } else { &tp.full } {
            // A value that contradicts the schema fails the rules that read
            // it, not the line: it is kept as a marker in its slot.
            self.slots[pp.path.0 as usize] = match ctx.resolve(pp, &mut self.scratch) {
                Ok(s) => s,
                Err(e) => {
                    self.contras.push(e);
                    Slot { tag: tag::CONTRA, sym: 0, a: (self.contras.len() - 1) as u64, b: 0 }
                }
            };
        }
        Ok(())
    }
}

/// The fast path of `decode_match` for an event whose type has no path to
/// decode (no rule names it, or its rules read nothing): find the
/// discriminator's value with a substring search, and when that names such
/// a type, only validate the line ([`scan::validate`], which also confirms
/// that the value found is the last top-level one). Returns the type index
/// and the span of the value (quotes included); `None` leaves everything to
/// the full scan, which decides by the same rules: a key spelled with
/// escapes or with spaces around its colon, a nested `"action":` before the
/// real one, a repeated key, and every error go that way.
///
/// Validation is not skipped: a malformed line of any type is still a dead
/// letter (LANGUAGE.md), so what this saves is the full scan's key lookups
/// and records, not the reading of the line.
fn skim(plan: &DecodePlan, keybuf: &mut Vec<u8>, line: &[u8]) -> Option<(usize, usize, usize)> {
    let finder = plan.disc_finder.as_ref()?;
    let vs = finder.find(line)? + finder.needle().len();
    if line.get(vs) != Some(&b'"') {
        return None;
    }
    let Ok((ve, false)) = scan::string_end(line, vs + 1) else {
        return None;
    };
    let t = plan.types.get(&line[vs + 1..ve - 1]).map_or(plan.n_types - 1, |t| t as usize);
    if !plan.per_type[t].match_.is_empty() {
        return None;
    }
    (scan::validate(line, &plan.disc_key, keybuf)? == vs).then_some((t, vs, ve))
}

fn kind_name(c: u8) -> &'static str {
    match c {
        b'[' => "array",
        b'"' => "string",
        b't' | b'f' => "bool",
        b'n' => "null",
        _ => "number",
    }
}

/// The bytes a STR/ARRAY/OBJECT slot's `a` and `b` designate; empty when
/// out of range (never for slots this module produced).
pub(crate) fn slot_bytes<'a>(line: &'a [u8], scratch: &'a [u8], a: u64, b: u64) -> &'a [u8] {
    let (base, off) = if a & SCRATCH != 0 { (scratch, a & !SCRATCH) } else { (line, a) };
    let (Ok(off), Ok(len)) = (usize::try_from(off), usize::try_from(b)) else {
        return &[];
    };
    off.checked_add(len).and_then(|end| base.get(off..end)).unwrap_or(&[])
}

/// The slots of one decoded event; valid until the decoder's next call.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// The declared event type; `None` for a type the schema does not declare.
    pub event_type: Option<EventTypeId>,
    dec: &'a Decoder,
    line: &'a [u8],
}

impl<'a> Decoded<'a> {
    /// The discriminator's value (the type's name, declared or not); empty
    /// when the schema has no discriminator.
    pub fn type_name(&self) -> &'a str {
        let (a, b) = self.dec.type_name;
        std::str::from_utf8(slot_bytes(self.line, &self.dec.scratch, a, b)).unwrap_or_default()
    }

    /// All slots, indexed by `PathId.0`.
    pub fn slots(&self) -> &'a [Slot] {
        &self.dec.slots
    }

    pub fn slot(&self, p: PathId) -> Slot {
        self.dec.slots.get(p.0 as usize).copied().unwrap_or(Slot::ABSENT)
    }

    /// The input line (base of offsets without [`SCRATCH`]).
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// The scratch buffer (base of offsets with [`SCRATCH`]).
    pub fn scratch(&self) -> &'a [u8] {
        &self.dec.scratch
    }

    /// The raw bytes of a STR, ARRAY or OBJECT slot (empty for other tags).
    pub fn bytes_of(&self, slot: &Slot) -> &'a [u8] {
        match slot.tag {
            tag::STR | tag::ARRAY | tag::OBJECT => slot_bytes(self.line, &self.dec.scratch, slot.a, slot.b),
            _ => &[],
        }
    }

    /// The text of a STR slot (empty for other tags).
    pub fn str_of(&self, slot: &Slot) -> &'a str {
        if slot.tag != tag::STR {
            return "";
        }
        std::str::from_utf8(self.bytes_of(slot)).unwrap_or_default()
    }

    /// Why the value at `p` contradicts the schema, when it does (its slot
    /// is CONTRA; [`Decoded::value`] gives absent for it).
    pub fn contradiction(&self, p: PathId) -> Option<&'a DecodeError> {
        let s = self.slot(p);
        if s.tag != tag::CONTRA {
            return None;
        }
        self.dec.contras.get(s.a as usize)
    }

    /// The value of a path as a run-time [`Value`]. Arrays and objects are
    /// parsed from their raw JSON; elements in typed positions (`[uuid]`,
    /// record fields) convert by their declared type.
    pub fn value(&self, p: PathId) -> Value {
        let s = self.slot(p);
        match s.tag {
            tag::NULL => Value::Null,
            tag::BOOL => Value::Bool(s.a != 0),
            tag::INT => Value::Int(s.a as i64),
            tag::FLOAT => Value::Float(f64::from_bits(s.a)),
            tag::STR => Value::str(self.str_of(&s)),
            tag::UUID => Value::Uuid((s.a as u128) << 64 | s.b as u128),
            tag::TIMESTAMP => Value::Timestamp(((s.b as u128) << 64 | s.a as u128) as i128),
            tag::ARRAY | tag::OBJECT => {
                let Ok(j) = serde_json::from_slice::<serde_json::Value>(self.bytes_of(&s)) else {
                    return Value::Absent;
                };
                let plan = &*self.dec.plan;
                match plan.per_type[self.dec.type_index].by_path.get(p.0 as usize) {
                    Some(Some(pp)) => finalize::convert(&plan.schema, &j, &pp.last),
                    _ => Value::from_json(&j),
                }
            }
            _ => Value::Absent,
        }
    }

    /// The event's time (the schema's `time` field) after `decode_full`:
    /// `Ok(None)` when the schema declares no time field, or the event is of
    /// a type without one (an undeclared type when the field is not in
    /// `event *`); an error when the value is missing or not a timestamp.
    pub fn event_time(&self) -> Result<Option<i128>, crate::diag::RuntimeError> {
        use crate::diag::{Code, RuntimeError};
        let plan = &*self.dec.plan;
        let Some(tp) = plan.time_path else {
            return Ok(None);
        };
        if plan.per_type[self.dec.type_index].by_path[tp.0 as usize].is_none() {
            return Ok(None);
        }
        if let Some(e) = self.contradiction(tp) {
            return Err(RuntimeError::new(Code::SchemaContradiction, e.to_string()));
        }
        match self.value(tp) {
            Value::Timestamp(t) => Ok(Some(t)),
            other => Err(RuntimeError::new(
                Code::SchemaContradiction,
                format!("the event's time `$.{}` is {}, not a timestamp", plan.path(tp).join("."), other.kind()),
            )),
        }
    }

    /// The event's identity as text: a uuid in canonical dashed form, a
    /// string as is, an int in decimal. Without a declared identity, the
    /// FNV-1a-128 hash of the line (surrounding whitespace trimmed) as 32
    /// hex digits. A declared identity that is missing, null or of another
    /// type is an error.
    pub fn identity(&self) -> Result<String, DecodeError> {
        let dec = self.dec;
        if let Some(id) = &dec.installed_identity {
            return Ok(id.clone());
        }
        if dec.skimmed && dec.plan.identity_path.is_some() {
            // Nothing was recorded: decode the line again, in full. The
            // engine asks for identities only after `decode_full`, so this
            // allocation is off the path of events that match nothing.
            let mut again = Decoder::new(dec.plan.clone());
            return again.decode_full(self.line)?.identity();
        }
        let plan = &*dec.plan;
        let Some(ip) = plan.identity_path else {
            let line = self.line.trim_ascii();
            return Ok(format!("{:032x}", fnv1a_128(line)));
        };
        let path = finalize::path_text(plan.path(ip).iter().map(String::as_str));
        let missing = |found: &str| DecodeError::Type {
            path: path.clone(),
            expected: "an identity (uuid, string or int)".into(),
            found: found.into(),
        };
        let Some(pp) = &plan.per_type[dec.type_index].ident else {
            return Err(missing("nothing"));
        };
        let ctx = Ctx { plan, recs: &dec.st.recs, line: self.line, root_inst: dec.root_inst, wide: dec.st.wide_number };
        let mut tmp = Vec::new();
        let s = ctx.resolve(pp, &mut tmp)?;
        match s.tag {
            tag::UUID => Ok(format_uuid((s.a as u128) << 64 | s.b as u128)),
            tag::STR => Ok(String::from_utf8_lossy(slot_bytes(self.line, &tmp, s.a, s.b)).into_owned()),
            tag::INT => Ok((s.a as i64).to_string()),
            tag::ABSENT => Err(missing("nothing")),
            tag::NULL => Err(missing("null")),
            tag::BOOL => Err(missing("a bool")),
            tag::FLOAT => Err(missing("a float")),
            tag::TIMESTAMP => Err(missing("a timestamp")),
            tag::ARRAY => Err(missing("an array")),
            _ => Err(missing("an object")),
        }
    }
}
