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
    let h = format!("{u:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
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

/// The current time, for `now()` and the store's `created` columns.
pub fn now_nanos() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn text_formats() {
        assert_eq!(Value::Float(3.0).to_text(None), "3.0");
        assert_eq!(Value::Absent.to_text(None), "");
        assert_eq!(Value::list(vec![Value::Int(1), Value::str("a")]).to_text(None), r#"[1,"a"]"#);
    }
}
