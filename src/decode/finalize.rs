//! Turning recorded spans into slots, by declared type, once the event type
//! is known; deep checks of list and record values; conversion of raw JSON
//! into [`Value`]s; error texts.

use super::plan::{is_dynamic, DecodePlan, PathPlan, SegTy};
use super::scan::{unescape, Rec};
use super::{tag, DecodeError, Slot, SCRATCH};
use crate::schema::Schema;
use crate::types::{Ty, TyDisplay};
use crate::value::{parse_timestamp, parse_uuid, Value};
use std::sync::Arc;

/// What finalising reads: the plan, the records of one scan and the line.
pub(crate) struct Ctx<'a> {
    pub plan: &'a DecodePlan,
    pub recs: &'a [Rec],
    pub line: &'a [u8],
    pub root_inst: u64,
    /// The scan saw a number too large for an f64 somewhere in the line.
    pub wide: bool,
}

/// `$.a.b` for path segments (non-identifier keys as `["..."]`).
pub(crate) fn path_text<'s>(segs: impl Iterator<Item = &'s str>) -> String {
    let mut s = String::from("$");
    for seg in segs {
        push_seg(&mut s, seg);
    }
    s
}

fn push_seg(s: &mut String, seg: &str) {
    let ident = !seg.is_empty()
        && seg.bytes().enumerate().all(|(i, c)| c == b'_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if ident {
        s.push('.');
        s.push_str(seg);
    } else {
        s.push('[');
        s.push_str(&serde_json::Value::from(seg).to_string());
        s.push(']');
    }
}

fn ty_text(schema: &Schema, ty: &Ty) -> String {
    TyDisplay { ty: ty.unwrap_optional(), schema }.to_string()
}

/// A short description of the JSON value at `b[start..]` (valid JSON).
pub(crate) fn describe(b: &[u8], start: usize) -> String {
    const MAX: usize = 40;
    match b.get(start) {
        None => "nothing".into(),
        Some(b'"') => {
            let end = skip_valid(b, start);
            let mut out = Vec::new();
            unescape(&b[start + 1..end.saturating_sub(1).max(start + 1)], &mut out);
            let text = String::from_utf8_lossy(&out);
            let short: String = text.chars().take(MAX).collect();
            let more = if text.chars().count() > MAX { "…" } else { "" };
            format!("string {}{more}", serde_json::Value::from(short))
        }
        Some(b'-' | b'0'..=b'9') => {
            let end = skip_valid(b, start);
            let tok = String::from_utf8_lossy(&b[start..end]);
            if tok.len() > MAX {
                format!("number {}…", &tok[..MAX])
            } else {
                format!("number {tok}")
            }
        }
        Some(b't') => "bool true".into(),
        Some(b'f') => "bool false".into(),
        Some(b'n') => "null".into(),
        Some(b'[') => "array".into(),
        Some(b'{') => "object".into(),
        Some(_) => "invalid JSON".into(),
    }
}

/// Skip one valid JSON value starting at `i` (no whitespace before it);
/// return the index after it. The input has been validated by the scanner.
pub(crate) fn skip_valid(b: &[u8], mut i: usize) -> usize {
    let n = b.len();
    let mut depth = 0usize;
    loop {
        if i >= n {
            return n;
        }
        match b[i] {
            b'"' => {
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &b[i.min(n)..]) {
                        None => return n,
                        Some(p) => {
                            i += p;
                            if b[i] == b'\\' {
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
                continue;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b',' | b':' | b' ' | b'\n' | b'\r' | b'\t' => {
                i += 1;
                continue;
            }
            _ => {
                // Number or literal.
                while i < n && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t' | b':') {
                    i += 1;
                }
            }
        }
        if depth == 0 {
            return i;
        }
    }
}

#[inline]
fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// The members of a valid JSON object starting at `start` (`{`):
/// `(raw key, key has escapes, value start, value end)`.
fn members(b: &[u8], start: usize) -> impl Iterator<Item = (&[u8], bool, usize, usize)> {
    let mut i = start + 1;
    std::iter::from_fn(move || {
        i = ws(b, i);
        if b.get(i) == Some(&b',') {
            i = ws(b, i + 1);
        }
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let ke = skip_valid(b, i);
        let key = &b[i + 1..ke - 1];
        let esc = memchr::memchr(b'\\', key).is_some();
        i = ws(b, ke);
        i = ws(b, i + 1); // `:`
        let vs = i;
        i = skip_valid(b, i);
        Some((key, esc, vs, i))
    })
}

/// The elements of a valid JSON array starting at `start` (`[`).
fn elements(b: &[u8], start: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = start + 1;
    std::iter::from_fn(move || {
        i = ws(b, i);
        if b.get(i) == Some(&b',') {
            i = ws(b, i + 1);
        }
        if matches!(b.get(i), None | Some(b']')) {
            return None;
        }
        let vs = i;
        i = skip_valid(b, i);
        Some((vs, i))
    })
}

fn key_eq(key: &[u8], esc: bool, name: &str) -> bool {
    if esc {
        let mut out = Vec::new();
        unescape(key, &mut out);
        out == name.as_bytes()
    } else {
        key == name.as_bytes()
    }
}

/// A path step inside a deep check, for error paths.
enum Step {
    Key(String),
    Index(usize),
}

/// A deep-check failure: steps are pushed innermost first.
struct DeepErr {
    steps: Vec<Step>,
    expected: String,
    found: String,
}

/// The text of the string whose (valid) JSON starts at `start`.
fn string_text(b: &[u8], start: usize, end: usize) -> std::borrow::Cow<'_, str> {
    let raw = &b[start + 1..end - 1];
    if memchr::memchr(b'\\', raw).is_some() {
        let mut out = Vec::new();
        unescape(raw, &mut out);
        std::borrow::Cow::Owned(String::from_utf8(out).unwrap_or_default())
    } else {
        std::borrow::Cow::Borrowed(std::str::from_utf8(raw).unwrap_or_default())
    }
}

fn is_int_token(tok: &[u8]) -> bool {
    !tok.iter().any(|&c| matches!(c, b'.' | b'e' | b'E'))
}

fn parse_i64(tok: &[u8]) -> Option<i64> {
    if !is_int_token(tok) {
        return None;
    }
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// Does the number token fit an f64? Only an exponent or a very long
/// number can overflow one (`1e400`).
fn fits_f64(tok: &[u8]) -> bool {
    let risky = tok.len() > 300 || tok.iter().any(|&c| matches!(c, b'e' | b'E'));
    !risky || parse_f64(tok).is_finite()
}

/// `number 1e400 (out of range)`: what a number that fits no declared
/// numeric type is described as.
fn out_of_range(b: &[u8], start: usize) -> String {
    format!("{} (out of range)", describe(b, start))
}

/// The f64 a number token denotes, parsed exactly as serde_json parses it
/// (so scalar slots agree with numbers inside decoded arrays and objects);
/// NaN when it does not fit.
fn parse_f64(tok: &[u8]) -> f64 {
    if let Some(i) = parse_i64(tok) {
        if !(i == 0 && tok.first() == Some(&b'-')) {
            return i as f64;
        }
    }
    serde_json::from_slice::<f64>(tok).unwrap_or(f64::NAN)
}

/// Check the valid JSON value at `b[start..end]` against `ty`, deeply.
fn check(schema: &Schema, b: &[u8], start: usize, end: usize, ty: &Ty) -> Result<(), DeepErr> {
    let c = b[start];
    let fail = |ty: &Ty| DeepErr { steps: Vec::new(), expected: ty_text(schema, ty), found: describe(b, start) };
    if c == b'n' {
        return if ty.admits_absent() || *ty == Ty::Null { Ok(()) } else { Err(fail(ty)) };
    }
    let ok = match ty.unwrap_optional() {
        t if is_dynamic(t) => true,
        Ty::Null => false,
        Ty::Bool => matches!(c, b't' | b'f'),
        Ty::Int => matches!(c, b'-' | b'0'..=b'9') && parse_i64(&b[start..end]).is_some(),
        Ty::Float => matches!(c, b'-' | b'0'..=b'9') && fits_f64(&b[start..end]),
        Ty::String => c == b'"',
        Ty::Uuid => c == b'"' && parse_uuid(&string_text(b, start, end)).is_some(),
        Ty::Timestamp => c == b'"' && parse_timestamp(&string_text(b, start, end)).is_some(),
        Ty::List(el) => {
            if c != b'[' {
                false
            } else {
                for (k, (vs, ve)) in elements(b, start).enumerate() {
                    if let Err(mut e) = check(schema, b, vs, ve, el) {
                        e.steps.push(Step::Index(k));
                        return Err(e);
                    }
                }
                true
            }
        }
        Ty::Record(r) => {
            if c != b'{' {
                false
            } else {
                for f in &schema.record(*r).fields {
                    let last = members(b, start).filter(|(k, esc, _, _)| key_eq(k, *esc, &f.name)).last();
                    let res = match last {
                        Some((_, _, vs, ve)) => check(schema, b, vs, ve, &f.ty),
                        None if f.ty.admits_absent() => Ok(()),
                        None => Err(DeepErr {
                            steps: Vec::new(),
                            expected: ty_text(schema, &f.ty),
                            found: "nothing".into(),
                        }),
                    };
                    if let Err(mut e) = res {
                        e.steps.push(Step::Key(f.name.clone()));
                        return Err(e);
                    }
                }
                true
            }
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(fail(ty))
    }
}

impl Ctx<'_> {
    fn path_err(&self, pp: &PathPlan, upto: usize, expected: String, found: String) -> DecodeError {
        let segs = &self.plan.paths[pp.path.0 as usize][..upto];
        DecodeError::Type { path: path_text(segs.iter().map(String::as_str)), expected, found }
    }

    fn seg_expected(&self, seg: &SegTy) -> String {
        match seg {
            SegTy::Dynamic => "any".into(),
            SegTy::Typed(t) => ty_text(&self.plan.schema, t),
        }
    }

    /// The slot of one path, from the records of the scan.
    pub(crate) fn resolve(&self, pp: &PathPlan, scratch: &mut Vec<u8>) -> Result<Slot, DecodeError> {
        let b = self.line;
        if pp.nodes.is_empty() {
            // The whole event.
            let r = self.recs[0];
            return self.final_slot(pp, 0, &pp.last, r.start, r.end, scratch);
        }
        let mut parent = self.root_inst;
        let last = pp.nodes.len() - 1;
        for k in 0..=last {
            let seg = &pp.segs[k];
            let r = self.recs[pp.nodes[k] as usize];
            if r.parent != parent {
                if seg.admits_absent() {
                    return Ok(Slot::ABSENT);
                }
                return Err(self.path_err(pp, k + 1, self.seg_expected(seg), "nothing".into()));
            }
            let c = b[r.start];
            if c == b'n' {
                if seg.admits_absent() {
                    return Ok(if k == last { Slot { tag: tag::NULL, sym: 0, a: 0, b: 0 } } else { Slot::ABSENT });
                }
                return Err(self.path_err(pp, k + 1, self.seg_expected(seg), "null".into()));
            }
            if k == last {
                return self.final_slot(pp, k + 1, seg, r.start, r.end, scratch);
            }
            let record = match seg {
                SegTy::Dynamic => false,
                SegTy::Typed(t) => matches!(t.unwrap_optional(), Ty::Record(_)),
            };
            if c != b'{' {
                if record {
                    return Err(self.path_err(pp, k + 1, self.seg_expected(seg), describe(b, r.start)));
                }
                return Ok(Slot::ABSENT);
            }
            parent = r.inst;
        }
        Ok(Slot::ABSENT)
    }

    fn final_slot(
        &self,
        pp: &PathPlan,
        upto: usize,
        seg: &SegTy,
        start: usize,
        end: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<Slot, DecodeError> {
        let b = self.line;
        let c = b[start];
        let ty = match seg {
            SegTy::Dynamic => return self.any_slot(pp, upto, start, end, scratch),
            SegTy::Typed(t) => t.unwrap_optional(),
        };
        let mismatch = || self.path_err(pp, upto, ty_text(&self.plan.schema, ty), describe(b, start));
        let too_big = || self.path_err(pp, upto, ty_text(&self.plan.schema, ty), out_of_range(b, start));
        let slot = |tag, a, bb| Slot { tag, sym: 0, a, b: bb };
        match ty {
            t if is_dynamic(t) => self.any_slot(pp, upto, start, end, scratch),
            Ty::String if c == b'"' => Ok(self.str_slot(start, end, scratch)),
            Ty::Int if c == b'-' || c.is_ascii_digit() => match parse_i64(&b[start..end]) {
                Some(v) => Ok(slot(tag::INT, v as u64, 0)),
                // `18446744073709551617` is an error at the field, not a
                // silent float.
                None if is_int_token(&b[start..end]) => Err(too_big()),
                None => Err(mismatch()),
            },
            Ty::Float if c == b'-' || c.is_ascii_digit() => {
                let f = parse_f64(&b[start..end]);
                if f.is_nan() {
                    return Err(too_big());
                }
                Ok(slot(tag::FLOAT, f.to_bits(), 0))
            }
            Ty::Bool if c == b't' || c == b'f' => Ok(slot(tag::BOOL, (c == b't') as u64, 0)),
            Ty::Uuid if c == b'"' => {
                let mark = scratch.len();
                let u = self.with_text(start, end, scratch, parse_uuid);
                scratch.truncate(mark);
                match u {
                    Some(u) => Ok(slot(tag::UUID, (u >> 64) as u64, u as u64)),
                    None => Err(mismatch()),
                }
            }
            Ty::Timestamp if c == b'"' => {
                let mark = scratch.len();
                let t = self.with_text(start, end, scratch, parse_timestamp);
                scratch.truncate(mark);
                match t {
                    Some(t) => Ok(slot(tag::TIMESTAMP, t as u64, ((t as u128) >> 64) as u64)),
                    None => Err(mismatch()),
                }
            }
            Ty::List(_) | Ty::Record(_) if c == if matches!(ty, Ty::List(_)) { b'[' } else { b'{' } => {
                if let Err(e) = check(&self.plan.schema, b, start, end, ty) {
                    let mut path = path_text(self.plan.paths[pp.path.0 as usize][..upto].iter().map(String::as_str));
                    for s in e.steps.iter().rev() {
                        match s {
                            Step::Key(k) => push_seg(&mut path, k),
                            Step::Index(i) => path.push_str(&format!("[{i}]")),
                        }
                    }
                    return Err(DecodeError::Type { path, expected: e.expected, found: e.found });
                }
                self.container_slot(pp, upto, &ty_text(&self.plan.schema, ty), start, end)
            }
            _ => Err(mismatch()),
        }
    }

    /// Call `f` with the text of the string at `b[start..end]`, unescaping
    /// into `scratch` when needed (the caller truncates it afterwards).
    fn with_text<R>(&self, start: usize, end: usize, scratch: &mut Vec<u8>, f: impl FnOnce(&str) -> R) -> R {
        let raw = &self.line[start + 1..end - 1];
        if memchr::memchr(b'\\', raw).is_some() {
            let mark = scratch.len();
            unescape(raw, scratch);
            f(std::str::from_utf8(&scratch[mark..]).unwrap_or_default())
        } else {
            f(std::str::from_utf8(raw).unwrap_or_default())
        }
    }

    /// A STR slot; strings with escapes are decoded into `scratch`.
    pub(crate) fn str_slot(&self, start: usize, end: usize, scratch: &mut Vec<u8>) -> Slot {
        let raw = &self.line[start + 1..end - 1];
        if memchr::memchr(b'\\', raw).is_none() {
            let sym = self.plan.syms.get(raw).unwrap_or(0);
            Slot { tag: tag::STR, sym, a: (start + 1) as u64, b: raw.len() as u64 }
        } else {
            let mark = scratch.len();
            unescape(raw, scratch);
            let text = &scratch[mark..];
            let sym = self.plan.syms.get(text).unwrap_or(0);
            Slot { tag: tag::STR, sym, a: SCRATCH | mark as u64, b: text.len() as u64 }
        }
    }

    /// An ARRAY or OBJECT slot. Its value is parsed from the raw JSON when
    /// read; a number in it too large for an f64 (only possible when the
    /// scan saw one) makes it a contradiction instead of a silent absent.
    fn container_slot(
        &self,
        pp: &PathPlan,
        upto: usize,
        expected: &str,
        start: usize,
        end: usize,
    ) -> Result<Slot, DecodeError> {
        let b = self.line;
        if self.wide && serde_json::from_slice::<serde_json::Value>(&b[start..end]).is_err() {
            let found = format!("{} with a number out of range", describe(b, start));
            return Err(self.path_err(pp, upto, expected.to_string(), found));
        }
        let t = if b[start] == b'[' { tag::ARRAY } else { tag::OBJECT };
        Ok(Slot { tag: t, sym: 0, a: start as u64, b: (end - start) as u64 })
    }

    /// The slot of a value read through `any`: by its JSON kind. A number
    /// too large for an f64 is the one thing `any` cannot hold.
    fn any_slot(
        &self,
        pp: &PathPlan,
        upto: usize,
        start: usize,
        end: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<Slot, DecodeError> {
        let b = self.line;
        let slot = |tag, a, bb| Slot { tag, sym: 0, a, b: bb };
        Ok(match b[start] {
            b'"' => self.str_slot(start, end, scratch),
            b't' => slot(tag::BOOL, 1, 0),
            b'f' => slot(tag::BOOL, 0, 0),
            b'n' => slot(tag::NULL, 0, 0),
            b'[' | b'{' => return self.container_slot(pp, upto, "any", start, end),
            _ => {
                let tok = &b[start..end];
                match parse_i64(tok) {
                    // serde_json reads `-0` as the float -0.0.
                    Some(v) if !(v == 0 && tok[0] == b'-') => slot(tag::INT, v as u64, 0),
                    _ => {
                        let f = parse_f64(tok);
                        if f.is_nan() {
                            return Err(self.path_err(pp, upto, "a number".into(), out_of_range(b, start)));
                        }
                        slot(tag::FLOAT, f.to_bits(), 0)
                    }
                }
            }
        })
    }
}

/// Convert parsed JSON to a [`Value`] by declared type: uuids and
/// timestamps in typed positions become `Uuid` and `Timestamp`, ints in
/// float positions become floats; `any` positions convert by JSON kind.
pub(crate) fn convert(schema: &Schema, j: &serde_json::Value, ty: &SegTy) -> Value {
    match ty {
        SegTy::Dynamic => Value::from_json(j),
        SegTy::Typed(t) => convert_ty(schema, j, t),
    }
}

fn convert_ty(schema: &Schema, j: &serde_json::Value, ty: &Ty) -> Value {
    use serde_json::Value as J;
    if j.is_null() {
        return Value::Null;
    }
    match (ty.unwrap_optional(), j) {
        (Ty::Uuid, J::String(s)) => parse_uuid(s).map_or_else(|| Value::from_json(j), Value::Uuid),
        (Ty::Timestamp, J::String(s)) => parse_timestamp(s).map_or_else(|| Value::from_json(j), Value::Timestamp),
        (Ty::Float, J::Number(n)) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        (Ty::Int, J::Number(n)) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::from_json(j),
        },
        (Ty::List(el), J::Array(items)) => {
            Value::List(Arc::new(items.iter().map(|i| convert_ty(schema, i, el)).collect()))
        }
        (Ty::Record(r), J::Object(map)) => {
            let rec = schema.record(*r);
            Value::Object(Arc::new(
                map.iter()
                    .map(|(k, v)| {
                        let v = match rec.field(k) {
                            Some((_, f)) => convert_ty(schema, v, &f.ty),
                            None => Value::from_json(v),
                        };
                        (Arc::from(k.as_str()), v)
                    })
                    .collect(),
            ))
        }
        _ => Value::from_json(j),
    }
}
