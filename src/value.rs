//! Run-time values, shared by the interpreter, the store and the decoder.
//!
//! `Absent` and `Null` are distinct values: a field that is not in the event
//! is absent, a field whose JSON value is `null` is null. Most operations
//! treat them alike (comparisons are false, arithmetic yields absent); they
//! differ where the language says so (`set x = absent` removes a key).

use crate::types::EntityId;
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Absent,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    Uuid(u128),
    /// Nanoseconds since the Unix epoch, UTC.
    Timestamp(i128),
    /// A signed length of time in nanoseconds (about ±292 years; see
    /// [`format_duration`] for its text form).
    Duration(i64),
    List(Arc<Vec<Value>>),
    /// A JSON object (from `any` or a record), in source order.
    Object(Arc<Vec<(Arc<str>, Value)>>),
    Entity(Arc<Row>),
}

/// A row of an entity table, as read by a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub entity: EntityId,
    pub key: Value,
    /// One value per non-key field, in declaration order. Many-to-many fields
    /// hold `Absent` here; they are read from the join table on access.
    pub fields: Vec<Value>,
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Arc::new(v))
    }

    /// Absent or null.
    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Absent | Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the value's kind, for run-time error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Absent => "nothing (absent)",
            Value::Null => "null",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Uuid(_) => "a uuid",
            Value::Timestamp(_) => "a timestamp",
            Value::Duration(_) => "a duration",
            Value::List(_) => "a list",
            Value::Object(_) => "an object",
            Value::Entity(_) => "an entity",
        }
    }

    /// Field of an object, absent when missing or when `self` is not an object.
    pub fn get(&self, name: &str) -> Value {
        match self {
            Value::Object(fields) => {
                fields.iter().find(|(k, _)| &**k == name).map(|(_, v)| v.clone()).unwrap_or(Value::Absent)
            }
            _ => Value::Absent,
        }
    }

    /// Convert from JSON. Numbers that are integers and fit `i64` become
    /// `Int`, every other number `Float`.
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(Arc::new(o.iter().map(|(k, v)| (Arc::from(k.as_str()), Value::from_json(v))).collect()))
            }
        }
    }

    /// Convert to JSON. Absent becomes `null` (callers that must drop absent
    /// values, such as `set`, handle them first); uuids and timestamps become
    /// their canonical strings; an entity becomes an object of its fields.
    pub fn to_json(&self, schema: Option<&crate::schema::Schema>) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Absent | Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::Str(s) => J::String(s.to_string()),
            Value::Uuid(u) => J::String(format_uuid(*u)),
            Value::Timestamp(t) => J::String(format_timestamp(*t)),
            // JSON has no duration: its text form, which reads back as a literal.
            Value::Duration(d) => J::String(format_duration(*d)),
            Value::List(items) => J::Array(items.iter().map(|v| v.to_json(schema)).collect()),
            Value::Object(fields) => {
                let mut m = serde_json::Map::new();
                for (k, v) in fields.iter() {
                    if !matches!(v, Value::Absent) {
                        m.insert(k.to_string(), v.to_json(schema));
                    }
                }
                J::Object(m)
            }
            Value::Entity(row) => {
                let mut m = serde_json::Map::new();
                match schema {
                    Some(s) => {
                        let def = s.entity(row.entity);
                        m.insert(def.key.name.clone(), row.key.to_json(schema));
                        for (f, v) in def.fields.iter().zip(row.fields.iter()) {
                            if !matches!(v, Value::Absent) {
                                m.insert(f.name.clone(), v.to_json(schema));
                            }
                        }
                    }
                    None => {
                        m.insert("key".into(), row.key.to_json(schema));
                    }
                }
                J::Object(m)
            }
        }
    }

    /// Text for string interpolation: strings as they are, timestamps as
    /// RFC 3339 with seconds, uuids dashed, lists and objects as JSON, absent
    /// and null as the empty string.
    pub fn to_text(&self, schema: Option<&crate::schema::Schema>) -> String {
        let mut out = String::new();
        self.write_text(&mut out, schema);
        out
    }

    pub fn write_text(&self, out: &mut String, schema: Option<&crate::schema::Schema>) {
        match self {
            Value::Absent | Value::Null => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_float(*f)),
            Value::Str(s) => out.push_str(s),
            Value::Uuid(u) => out.push_str(&format_uuid(*u)),
            Value::Timestamp(t) => out.push_str(&format_timestamp(*t)),
            Value::Duration(d) => out.push_str(&format_duration(*d)),
            Value::List(_) | Value::Object(_) | Value::Entity(_) => out.push_str(&self.to_json(schema).to_string()),
        }
    }
}

/// Floats print like JSON numbers: `4.5`, `3.0`, never `3`.
pub fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Parse a UUID in dashed (`8-4-4-4-12`) or plain 32-hex form, any case.
pub fn parse_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    let hex: [u8; 32] = match b.len() {
        32 => b.try_into().ok()?,
        36 => {
            if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
                return None;
            }
            let mut h = [0u8; 32];
            let mut j = 0;
            for (i, &c) in b.iter().enumerate() {
                if !matches!(i, 8 | 13 | 18 | 23) {
                    h[j] = c;
                    j += 1;
                }
            }
            h
        }
        _ => return None,
    };
    let mut v: u128 = 0;
    for c in hex {
        let d = (c as char).to_digit(16)?;
        v = (v << 4) | d as u128;
    }
    Some(v)
}

/// Canonical form: lower-case, dashed.
pub fn format_uuid(u: u128) -> String {
    // By hand: the writer formats the identity of every matched event, and
    // two `format!`s cost about 3,000 instructions (BENCHMARKS.md, "Writer
    // (issue 12)").
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 36];
    let mut nibble = 0;
    for (i, b) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            *b = b'-';
            continue;
        }
        *b = HEX[((u >> (124 - 4 * nibble)) & 0xf) as usize];
        nibble += 1;
    }
    out.iter().map(|&b| b as char).collect()
}

/// The first instant a timestamp may denote: `0001-01-01T00:00:00Z`.
pub const MIN_TIMESTAMP: i128 = -62_135_596_800 * 1_000_000_000;
/// The last instant a timestamp may denote: `9999-12-31T23:59:59.999999999Z`.
pub const MAX_TIMESTAMP: i128 = 253_402_300_800 * 1_000_000_000 - 1;

/// Is `nanos` within years 1 to 9999 in UTC, where every timestamp has one
/// four-digit text form (and text order is time order)?
pub fn timestamp_in_range(nanos: i128) -> bool {
    (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&nanos)
}

/// Parse an RFC 3339 timestamp into nanoseconds since the epoch (UTC).
/// `None` also for a valid text whose instant falls outside years 1 to 9999
/// in UTC (`9999-12-31T23:59:59-23:59` is in year 10000): such a text is
/// not a timestamp anywhere in Herald, so no other layer meets one.
pub fn parse_timestamp(s: &str) -> Option<i128> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos()).filter(|&n| timestamp_in_range(n))
}

/// The UTC calendar fields of `nanos`, clamped into the timestamp range
/// (only `now()` could leave it, some 8,000 years from now).
fn utc_fields(nanos: i128) -> time::OffsetDateTime {
    let n = nanos.clamp(MIN_TIMESTAMP, MAX_TIMESTAMP);
    time::OffsetDateTime::from_unix_timestamp_nanos(n).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 in UTC with whole seconds: `2026-04-14T08:02:07Z`.
pub fn format_timestamp(nanos: i128) -> String {
    let t = utc_fields(nanos);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// RFC 3339 in UTC with fixed microseconds, as the store writes times:
/// `2026-04-14T08:02:07.556423Z`. Fixed width, so text order is time order.
pub fn format_timestamp_store(nanos: i128) -> String {
    let t = utc_fields(nanos);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Duration units, largest first, with their length in nanoseconds. A
/// literal writes its units in this order (`1d2h30m`), each at most once;
/// [`format_duration`] writes exactly this form, so every printed duration
/// reads back as a literal. There is no `w`, month or year: a week is `7d`,
/// and months and years have no fixed length.
pub const DURATION_UNITS: &[(&str, i64)] = &[
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Why a duration literal's text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// A unit that does not exist (`5x`, `3sec`), with its byte offset in the text.
    UnknownUnit { unit: String, at: usize },
    /// A unit that is not smaller than the one before it (`30m1h`, `1s1s`).
    UnitOrder { unit: String, at: usize },
    /// Digits at the end with no unit (`1h30`); `at` is where they start.
    MissingUnit { at: usize },
    /// Larger than about 292 years.
    Overflow,
}

/// Parse a duration literal such as `30s`, `1h30m` or `-2d` (a leading `-`
/// is accepted here so printed negative durations read back; in the
/// language it is the unary minus).
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let (neg, body, base) = match text.strip_prefix('-') {
        Some(rest) => (true, rest, 1),
        None => (false, text, 0),
    };
    let b = body.as_bytes();
    let mut i = 0;
    // Accumulated in i128 so that only the final value is range-checked:
    // `-106751d23h47m16s854ms775us808ns` is i64::MIN but its magnitude is not an i64.
    let mut total: i128 = 0;
    let mut last_unit: Option<usize> = None;
    while i < b.len() {
        let ds = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if ds == i {
            // Only reachable through a text that does not start with a digit.
            return Err(DurationError::MissingUnit { at: base + i });
        }
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &body[us..i];
        if unit.is_empty() {
            return Err(DurationError::MissingUnit { at: base + ds });
        }
        let Some(ui) = DURATION_UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(DurationError::UnknownUnit { unit: unit.to_string(), at: base + us });
        };
        if last_unit.is_some_and(|l| ui <= l) {
            return Err(DurationError::UnitOrder { unit: unit.to_string(), at: base + us });
        }
        last_unit = Some(ui);
        let n: i128 = body[ds..us].parse().map_err(|_| DurationError::Overflow)?;
        total = n
            .checked_mul(DURATION_UNITS[ui].1 as i128)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= i64::MAX as i128 + 1)
            .ok_or(DurationError::Overflow)?;
    }
    if last_unit.is_none() {
        return Err(DurationError::MissingUnit { at: base });
    }
    let v = if neg { -total } else { total };
    i64::try_from(v).map_err(|_| DurationError::Overflow)
}

/// A duration as text: its non-zero units, largest first (`1h30m`,
/// `2d3h`, `1m0.5s` is written `1m500ms`), `0s` for zero, and a leading `-`
/// for a negative duration (`-1h30m`).
pub fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if d < 0 {
        out.push('-');
    }
    // `unsigned_abs` so that i64::MIN is not an overflow.
    let mut rest = d.unsigned_abs();
    for (unit, len) in DURATION_UNITS {
        let len = *len as u64;
        let n = rest / len;
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
            rest -= n * len;
        }
    }
    out
}

/// `t + d`, `None` when the result leaves years 1 to 9999.
pub fn timestamp_add(t: i128, d: i64) -> Option<i128> {
    t.checked_add(d as i128).filter(|n| timestamp_in_range(*n))
}

/// `a - b` as a duration, `None` when it does not fit (about ±292 years).
pub fn timestamp_diff(a: i128, b: i128) -> Option<i64> {
    a.checked_sub(b).and_then(|d| i64::try_from(d).ok())
}

/// The current time, for `now()` and the store's `created` columns.
pub fn now_nanos() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_format_dashed_lower_case() {
        for u in [0u128, u128::MAX, 0xf3f96358_b6aa_4140_a66f_48758f289d20, 1 << 127, 0x0123_4567_89ab_cdef] {
            let h = format!("{u:032x}");
            let expected = format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
            assert_eq!(format_uuid(u), expected);
        }
    }

    #[test]
    fn uuid_forms_agree() {
        let a = parse_uuid("305332a450ac475eb97ce2cd167238a6").unwrap();
        let b = parse_uuid("305332A4-50AC-475E-B97C-E2CD167238A6").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_uuid(a), "305332a4-50ac-475e-b97c-e2cd167238a6");
        assert!(parse_uuid("305332a4-50ac-475e-b97c-e2cd167238a").is_none());
        assert!(parse_uuid("305332a4_50ac-475e-b97c-e2cd167238a6").is_none());
        assert!(parse_uuid("g05332a450ac475eb97ce2cd167238a6").is_none());
    }

    #[test]
    fn timestamps_format_with_seconds() {
        let t = parse_timestamp("2026-04-14T08:02:07.556423Z").unwrap();
        assert_eq!(format_timestamp(t), "2026-04-14T08:02:07Z");
        let u = parse_timestamp("2026-04-14T10:02:07+02:00").unwrap();
        assert_eq!(format_timestamp(u), "2026-04-14T08:02:07Z");
        assert!(parse_timestamp("yesterday").is_none());
        assert_eq!(format_timestamp_store(t), "2026-04-14T08:02:07.556423Z");
    }

    #[test]
    fn timestamps_outside_years_1_to_9999_in_utc_are_not_timestamps() {
        // Valid RFC 3339 texts whose instant is in year 10000 or year 0 in UTC.
        assert_eq!(parse_timestamp("9999-12-31T23:59:59-23:59"), None);
        assert_eq!(parse_timestamp("0000-01-01T00:00:00+23:59"), None);
        assert_eq!(parse_timestamp("0000-12-31T23:59:59Z"), None);
        // The edges themselves are timestamps, with one four-digit form.
        let lo = parse_timestamp("0001-01-01T00:00:00Z").unwrap();
        let hi = parse_timestamp("9999-12-31T23:59:59.999999999Z").unwrap();
        assert_eq!((lo, hi), (MIN_TIMESTAMP, MAX_TIMESTAMP));
        assert_eq!(format_timestamp_store(lo), "0001-01-01T00:00:00.000000Z");
        assert_eq!(format_timestamp_store(hi), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format_timestamp(hi), "9999-12-31T23:59:59Z");
        let late = parse_timestamp("9999-12-31T23:59:59+23:59").unwrap();
        assert_eq!(format_timestamp_store(late), "9999-12-31T00:00:59.000000Z");
        let early = parse_timestamp("0001-01-01T00:00:00-23:59").unwrap();
        assert_eq!(format_timestamp_store(early), "0001-01-01T23:59:00.000000Z");
        // Formatting never yields an empty or signed year.
        for n in [i128::MIN, MIN_TIMESTAMP - 1, MAX_TIMESTAMP + 1, i128::MAX] {
            let t = format_timestamp_store(n);
            assert_eq!(t.len(), 27, "{t}");
            assert!(t.as_bytes()[0].is_ascii_digit(), "{t}");
        }
    }

    #[test]
    fn durations_print_in_the_form_they_are_read() {
        let cases = [
            (0, "0s"),
            (90 * 60 * 1_000_000_000, "1h30m"),
            (-(90 * 60 * 1_000_000_000), "-1h30m"),
            (7 * 86_400 * 1_000_000_000, "7d"),
            (1_500_000_000, "1s500ms"),
            (1, "1ns"),
            (86_400_000_000_001, "1d1ns"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d), "{text}");
        }
        for d in [i64::MIN, i64::MAX, i64::MIN + 1, -1] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d}");
        }
        assert_eq!(parse_duration("90m"), Ok(90 * 60 * 1_000_000_000));
        assert_eq!(parse_duration("5x"), Err(DurationError::UnknownUnit { unit: "x".into(), at: 1 }));
        assert_eq!(parse_duration("30m1h"), Err(DurationError::UnitOrder { unit: "h".into(), at: 4 }));
        assert_eq!(parse_duration("1s1s"), Err(DurationError::UnitOrder { unit: "s".into(), at: 3 }));
        assert_eq!(parse_duration("1h30"), Err(DurationError::MissingUnit { at: 2 }));
        assert_eq!(parse_duration("106752d"), Err(DurationError::Overflow));
        assert_eq!(parse_duration("99999999999999999999999999999999999999999s"), Err(DurationError::Overflow));
        assert_eq!(Value::Duration(-1).to_text(None), "-1ns");
    }

    #[test]
    fn timestamp_arithmetic_stays_in_range() {
        assert_eq!(timestamp_add(MAX_TIMESTAMP, 1), None);
        assert_eq!(timestamp_add(MIN_TIMESTAMP, -1), None);
        assert_eq!(timestamp_add(0, 5), Some(5));
        assert_eq!(timestamp_diff(MAX_TIMESTAMP, MIN_TIMESTAMP), None);
        assert_eq!(timestamp_diff(10, 4), Some(6));
    }

    #[test]
    fn text_formats() {
        assert_eq!(Value::Float(3.0).to_text(None), "3.0");
        assert_eq!(Value::Absent.to_text(None), "");
        assert_eq!(Value::list(vec![Value::Int(1), Value::str("a")]).to_text(None), r#"[1,"a"]"#);
    }
}
