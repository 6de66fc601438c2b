//! The validating one-pass scanner: checks that a line is exactly one valid
//! JSON value (RFC 8259, strict, as `serde_json` accepts it) and records the
//! raw span of every value whose key path is a node of the plan's trie.
//!
//! Iterative (an explicit stack bounded by [`MAX_DEPTH`]), so hostile input
//! cannot overflow the call stack.

use super::plan::DecodePlan;

pub(crate) const NONE: u32 = u32::MAX;

/// Containers nested deeper than this are an error (`serde_json`'s limit).
pub(crate) const MAX_DEPTH: usize = 127;

/// Where one trie node's value is, for the current event.
///
/// A record is valid for the current event only when `parent` equals the
/// `inst` of its parent's record (the root's parent is the scan's root
/// instance). Instances are never reused, so nothing is reset per event,
/// and a duplicate key (a new instance) hides what was recorded under the
/// earlier occurrence: the last one wins.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rec {
    pub parent: u64,
    pub inst: u64,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    obj: bool,
    /// The trie node whose children this object's keys are matched against.
    node: u32,
    /// The trie node whose record ends when this container closes.
    rec: u32,
    inst: u64,
}

#[derive(Debug)]
pub(crate) struct ScanState {
    pub recs: Vec<Rec>,
    pub frames: Vec<Frame>,
    pub keybuf: Vec<u8>,
    pub inst: u64,
    /// The line has a number too large for an f64 (`1e400`). Valid JSON:
    /// only a rule that reads it fails (finalize checks the containers it
    /// decodes when this is set).
    pub wide_number: bool,
}

impl ScanState {
    pub(crate) fn new(nodes: usize) -> ScanState {
        ScanState {
            recs: vec![Rec::default(); nodes],
            frames: Vec::with_capacity(MAX_DEPTH + 1),
            keybuf: Vec::with_capacity(64),
            inst: 0,
            wide_number: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanErr {
    Syntax {
        at: usize,
        reason: &'static str,
    },
    Utf8 {
        at: usize,
    },
    Depth {
        at: usize,
    },
    /// The discriminator appeared twice while the scan had specialised on
    /// the first one: scan again without specialising.
    Rescan,
}

pub(crate) struct ScanOut {
    /// The instance of the root object (0 when the root is not an object).
    pub root_inst: u64,
    /// The first byte of the top-level value.
    pub root_byte: u8,
}

#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

#[inline(always)]
fn syntax(at: usize, reason: &'static str) -> ScanErr {
    ScanErr::Syntax { at, reason }
}

/// High bit set in every byte lane that is `"`, `\`, a control character or
/// not ASCII. Lanes above the first hit may be false positives (borrows),
/// the lowest set lane never is.
#[inline(always)]
fn special_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let q = w ^ (ONES * b'"' as u64);
    let s = w ^ (ONES * b'\\' as u64);
    let zq = q.wrapping_sub(ONES) & !q;
    let zs = s.wrapping_sub(ONES) & !s;
    let lt = w.wrapping_sub(ONES * 0x20) & !w;
    (zq | zs | lt | w) & HIGH
}

/// Scan a string body starting just after its opening quote. Returns the
/// index just past the closing quote and whether the string has escapes.
#[inline]
pub(crate) fn string_end(b: &[u8], mut i: usize) -> Result<(usize, bool), ScanErr> {
    let n = b.len();
    let mut esc = false;
    loop {
        while i + 8 <= n {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            let m = special_mask(u64::from_le_bytes(w));
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        let Some(&c) = b.get(i) else {
            return Err(syntax(i, "unterminated string"));
        };
        match c {
            b'"' => return Ok((i + 1, esc)),
            b'\\' => {
                esc = true;
                i = escape_end(b, i)?;
            }
            0..=0x1f => return Err(syntax(i, "control character in string")),
            0x80..=0xff => i += utf8_len(b, i).ok_or(ScanErr::Utf8 { at: i })?,
            _ => i += 1,
        }
    }
}

/// The line is ASCII without control characters: then a string ends at its
/// first unescaped `"` and nothing else inside it needs checking. One pass
/// with no early exit, which the compiler vectorises; a line with a tab or
/// a non-ASCII byte anywhere takes the general path.
#[inline]
pub(crate) fn is_clean(b: &[u8]) -> bool {
    b.iter().fold(0u8, |acc, &c| acc | c | c.wrapping_sub(0x20)) & 0x80 == 0
}

/// [`string_end`] for a line that [`is_clean`]: only `"` and `\` stop the
/// word-at-a-time search.
#[inline(always)]
pub(crate) fn clean_string_end(b: &[u8], mut i: usize) -> Result<(usize, bool), ScanErr> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = b.len();
    let mut esc = false;
    loop {
        while i + 8 <= n {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            let w = u64::from_le_bytes(w);
            let q = w ^ (ONES * b'"' as u64);
            let s = w ^ (ONES * b'\\' as u64);
            // A lane flags where it is zero; a borrow out of a zero lane
            // may flag lanes above it, never below: the lowest is a hit.
            let m = (q.wrapping_sub(ONES) & !q | s.wrapping_sub(ONES) & !s) & HIGH;
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match b.get(i) {
            None => return Err(syntax(i, "unterminated string")),
            Some(b'"') => return Ok((i + 1, esc)),
            Some(b'\\') => {
                esc = true;
                i = escape_end(b, i)?;
            }
            Some(_) => i += 1,
        }
    }
}

/// The length of the UTF-8 character at `i` (a non-ASCII lead byte), or
/// `None` when the bytes there are not valid UTF-8.
pub(crate) fn utf8_len(b: &[u8], i: usize) -> Option<usize> {
    let len = match b[i] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let s = b.get(i..i + len)?;
    std::str::from_utf8(s).ok().map(|_| len)
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 4)?;
    let mut v = 0u32;
    for &c in s {
        v = v << 4 | (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Validate the escape at `i` (a backslash); return the index after it.
fn escape_end(b: &[u8], i: usize) -> Result<usize, ScanErr> {
    match b.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => {
            let u = hex4(b, i + 2).ok_or(syntax(i, "invalid `\\u` escape"))?;
            if (0xDC00..=0xDFFF).contains(&u) {
                return Err(syntax(i, "lone surrogate in `\\u` escape"));
            }
            if (0xD800..=0xDBFF).contains(&u) {
                let j = i + 6;
                if b.get(j) != Some(&b'\\') || b.get(j + 1) != Some(&b'u') {
                    return Err(syntax(i, "lone surrogate in `\\u` escape"));
                }
                match hex4(b, j + 2) {
                    Some(0xDC00..=0xDFFF) => return Ok(j + 6),
                    _ => return Err(syntax(i, "lone surrogate in `\\u` escape")),
                }
            }
            Ok(i + 6)
        }
        None => Err(syntax(i, "unterminated string")),
        Some(_) => Err(syntax(i, "invalid escape")),
    }
}

#[inline(always)]
fn digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Scan a number at `i`; return the index after it. Any number of valid
/// JSON syntax is accepted whatever its magnitude (a field no rule reads
/// must not matter); `wide` is set when it does not fit an f64.
#[inline]
pub(crate) fn number_end(b: &[u8], start: usize, wide: &mut bool) -> Result<usize, ScanErr> {
    let mut i = start;
    if b[i] == b'-' {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => {
            i += 1;
            if i < b.len() && b[i].is_ascii_digit() {
                return Err(syntax(i, "invalid number (leading zero)"));
            }
        }
        Some(b'1'..=b'9') => i = digits(b, i + 1),
        _ => return Err(syntax(i, "invalid number")),
    }
    let mut check = false;
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !matches!(b.get(i), Some(b'0'..=b'9')) {
            return Err(syntax(i, "invalid number"));
        }
        i = digits(b, i);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !matches!(b.get(i), Some(b'0'..=b'9')) {
            return Err(syntax(i, "invalid number"));
        }
        i = digits(b, i);
        check = true;
    }
    // Only an exponent or a very long number can overflow an f64.
    if (check || i - start > 300) && serde_json::from_slice::<f64>(&b[start..i]).is_err() {
        *wide = true;
    }
    Ok(i)
}

/// Decode the body of a valid JSON string (without quotes) into `out`.
pub(crate) fn unescape(s: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < s.len() {
        let run = memchr::memchr(b'\\', &s[i..]).map_or(s.len(), |p| i + p);
        out.extend_from_slice(&s[i..run]);
        i = run;
        if i >= s.len() {
            break;
        }
        let c = s.get(i + 1).copied().unwrap_or(b'\\');
        i += 2;
        let byte = match c {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = hex4(s, i).unwrap_or(0xFFFD);
                i += 4;
                if (0xD800..=0xDBFF).contains(&cp) {
                    let lo = hex4(s, i + 2).unwrap_or(0xDC00);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                    i += 6;
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            other => other,
        };
        out.push(byte);
    }
}

/// Find the child of `node` named `key`.
#[inline(always)]
fn child(plan: &DecodePlan, node: u32, key: &[u8]) -> u32 {
    for &c in &plan.nodes[node as usize].children {
        let name = &plan.nodes[c as usize].name;
        // The first byte rules out most siblings without a call to memcmp.
        if name.len() == key.len() && name.first() == key.first() && **name == *key {
            return c;
        }
    }
    NONE
}

/// Check that a line is exactly one valid JSON object (the same grammar as
/// [`scan`], depth limit included) and find where the value of its last
/// top-level key `key` starts: the only thing an event needs when no
/// `match` clause of its type reads a path.
///
/// `None` for anything else (invalid JSON, not an object, no such key): the
/// caller then runs [`scan`], which gives the precise error. Nothing is
/// recorded, no key is looked up below the top level, and the container
/// stack is a bit set, so this is the scanner's inner loop alone.
pub(crate) fn validate(b: &[u8], key: &[u8], keybuf: &mut Vec<u8>) -> Option<usize> {
    let n = b.len();
    let clean = is_clean(b);
    let string_end = |b: &[u8], i: usize| if clean { clean_string_end(b, i) } else { string_end(b, i) };
    // Bit 0: the innermost open container is an object; one bit per level.
    let mut stack: u128 = 0;
    let mut depth = 0usize;
    let mut found = None;
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut need_key = false;
    // The value about to be read is that of a top-level `key`.
    let mut is_key = false;
    'value: loop {
        if need_key {
            i = ws(b, i);
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let ks = i + 1;
            let (ke, esc) = string_end(b, ks).ok()?;
            i = ws(b, ke);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(b, i + 1);
            if depth == 1 {
                let raw = &b[ks..ke - 1];
                is_key = if esc {
                    keybuf.clear();
                    unescape(raw, keybuf);
                    **keybuf == *key
                } else {
                    raw == key
                };
            }
        }
        let c = *b.get(i)?;
        if is_key {
            is_key = false;
            found = Some(i);
        }
        match c {
            b'{' | b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let obj = c == b'{';
                depth += 1;
                stack = stack << 1 | obj as u128;
                i = ws(b, i + 1);
                let close = if obj { b'}' } else { b']' };
                if b.get(i) != Some(&close) {
                    need_key = obj;
                    continue 'value;
                }
            }
            b'"' => i = string_end(b, i + 1).ok()?.0,
            b'-' | b'0'..=b'9' => {
                let mut wide = false;
                i = number_end(b, i, &mut wide).ok()?;
            }
            b't' if b[i..].starts_with(b"true") => i += 4,
            b'f' if b[i..].starts_with(b"false") => i += 5,
            b'n' if b[i..].starts_with(b"null") => i += 4,
            _ => return None,
        }
        // After a value: commas and closers.
        loop {
            i = ws(b, i);
            if depth == 0 {
                break 'value;
            }
            let obj = stack & 1 != 0;
            match b.get(i) {
                Some(b',') => {
                    i = ws(b, i + 1);
                    need_key = obj;
                    continue 'value;
                }
                Some(b'}') if obj => {}
                Some(b']') if !obj => {}
                _ => return None,
            }
            i += 1;
            depth -= 1;
            stack >>= 1;
        }
    }
    if i != n {
        return None;
    }
    found
}

/// Scan one line. `mode` picks which paths to track; with `specialize`, once
/// the discriminator is read only the paths of that event type are tracked.
pub(crate) fn scan(
    plan: &DecodePlan,
    st: &mut ScanState,
    b: &[u8],
    mode: usize,
    specialize: bool,
) -> Result<ScanOut, ScanErr> {
    let n = b.len();
    let clean = is_clean(b);
    let string_end = |b: &[u8], i: usize| if clean { clean_string_end(b, i) } else { string_end(b, i) };
    st.frames.clear();
    st.wide_number = false;
    let disc = plan.disc_node.unwrap_or(NONE);
    let mut disc_seen = false;
    // The type bit the masks are tested with: "some type" until known.
    let mut bit = plan.n_types;
    let mut i = ws(b, 0);
    let root_byte = b.get(i).copied().unwrap_or(0);
    let mut pending: u32 = if root_byte == b'{' { 0 } else { NONE };
    let mut root_inst = 0;
    // Set when the next thing to read is an object key (after `{` or `,`).
    let mut need_key = false;
    'value: loop {
        if need_key {
            need_key = false;
            // A key, then `:`; `i` is just after `{` or `,`.
            i = ws(b, i);
            if b.get(i) != Some(&b'"') {
                return Err(syntax(i, "expected a string key"));
            }
            let ks = i + 1;
            let (ke, esc) = string_end(b, ks)?;
            i = ws(b, ke);
            if b.get(i) != Some(&b':') {
                return Err(syntax(i, "expected `:`"));
            }
            i = ws(b, i + 1);
            // The frame is the innermost; it is an object.
            let node = match st.frames.last() {
                Some(f) => f.node,
                None => NONE,
            };
            if node != NONE {
                let raw = &b[ks..ke - 1];
                let c = if esc {
                    st.keybuf.clear();
                    unescape(raw, &mut st.keybuf);
                    child(plan, node, &st.keybuf)
                } else {
                    child(plan, node, raw)
                };
                if c != NONE && plan.tracked(mode, c, bit) {
                    pending = c;
                }
            }
        }
        // A value at `i`.
        let Some(&c) = b.get(i) else {
            return Err(syntax(i, "expected a value"));
        };
        let start = i;
        match c {
            b'{' | b'[' => {
                if st.frames.len() >= MAX_DEPTH {
                    return Err(ScanErr::Depth { at: i });
                }
                let obj = c == b'{';
                let mut node = NONE;
                let mut inst = 0;
                if pending != NONE {
                    st.inst += 1;
                    inst = st.inst;
                    let parent = st.frames.last().map_or(0, |f| f.inst);
                    st.recs[pending as usize] = Rec { parent, inst, start: i, end: 0 };
                    if obj && plan.descend(mode, pending, bit) {
                        node = pending;
                    }
                    if pending == 0 && st.frames.is_empty() {
                        root_inst = inst;
                    }
                }
                st.frames.push(Frame { obj, node, rec: pending, inst });
                pending = NONE;
                i = ws(b, i + 1);
                let close = if obj { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    // Empty container: handled with the closers below.
                } else if obj {
                    need_key = true;
                    continue 'value;
                } else {
                    continue 'value;
                }
            }
            b'"' => {
                let (end, esc) = string_end(b, i + 1)?;
                i = end;
                if pending != NONE {
                    let parent = st.frames.last().map_or(0, |f| f.inst);
                    st.inst += 1;
                    st.recs[pending as usize] = Rec { parent, inst: st.inst, start, end };
                    if pending == disc && st.frames.len() == 1 && specialize {
                        if disc_seen {
                            return Err(ScanErr::Rescan);
                        }
                        disc_seen = true;
                        let raw = &b[start + 1..end - 1];
                        let t = if esc {
                            st.keybuf.clear();
                            unescape(raw, &mut st.keybuf);
                            plan.types.get(&st.keybuf)
                        } else {
                            plan.types.get(raw)
                        };
                        bit = t.map_or(plan.n_types - 1, |t| t as usize);
                    }
                    pending = NONE;
                }
            }
            b'-' | b'0'..=b'9' => {
                i = number_end(b, i, &mut st.wide_number)?;
            }
            b't' if b[i..].starts_with(b"true") => i += 4,
            b'f' if b[i..].starts_with(b"false") => i += 5,
            b'n' if b[i..].starts_with(b"null") => i += 4,
            _ => return Err(syntax(i, "expected a value")),
        }
        if pending != NONE {
            // A scalar other than a string.
            let parent = st.frames.last().map_or(0, |f| f.inst);
            st.inst += 1;
            st.recs[pending as usize] = Rec { parent, inst: st.inst, start, end: i };
            if pending == disc && st.frames.len() == 1 && specialize {
                if disc_seen {
                    return Err(ScanErr::Rescan);
                }
                disc_seen = true;
            }
            pending = NONE;
        }
        // After a value: commas and closers.
        loop {
            i = ws(b, i);
            let Some(f) = st.frames.last() else {
                break 'value;
            };
            let obj = f.obj;
            match b.get(i) {
                Some(b',') => {
                    i = ws(b, i + 1);
                    if obj {
                        need_key = true;
                    }
                    continue 'value;
                }
                Some(b'}') if obj => {}
                Some(b']') if !obj => {}
                _ => return Err(syntax(i, if obj { "expected `,` or `}`" } else { "expected `,` or `]`" })),
            }
            i += 1;
            if let Some(f) = st.frames.pop() {
                if f.rec != NONE {
                    st.recs[f.rec as usize].end = i;
                }
            }
        }
    }
    if i != n {
        return Err(syntax(i, "trailing characters after the JSON value"));
    }
    Ok(ScanOut { root_inst, root_byte })
}
