//! Conversions between run-time values, JSON and SQL values.

use super::filter::{Bind, ColKind, Scalar};
use crate::value::{
    format_timestamp, format_timestamp_store, format_uuid, parse_timestamp, parse_uuid, timestamp_in_range, Value,
};
use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::Value as J;

/// A short description of a value for messages: `string "abc"`, `int 5`.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Absent => "nothing (absent)".into(),
        Value::Null => "null".into(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Int(i) => format!("int {i}"),
        Value::Float(f) => format!("float {}", crate::value::format_float(*f)),
        Value::Str(s) => format!("string {}", quote_short(s)),
        Value::Uuid(u) => format!("uuid {}", format_uuid(*u)),
        Value::Timestamp(t) => format!("timestamp {}", format_timestamp(*t)),
        Value::Duration(d) => format!("duration {}", crate::value::format_duration(*d)),
        Value::List(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
        Value::Entity(_) => "an entity row".into(),
    }
}

/// A short description of a JSON value for messages.
pub(crate) fn describe_json(j: &J) -> String {
    match j {
        J::Null => "null".into(),
        J::Bool(b) => format!("bool {b}"),
        J::Number(n) => format!("number {n}"),
        J::String(s) => format!("string {}", quote_short(s)),
        J::Array(_) => "an array".into(),
        J::Object(_) => "an object".into(),
    }
}

/// `"text"` JSON-quoted, cut to about 60 characters.
pub(crate) fn quote_short(s: &str) -> String {
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{}...", J::String(cut))
    } else {
        J::String(s.to_string()).to_string()
    }
}

fn whole(f: f64) -> Option<i64> {
    if f.is_finite() && f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

/// A present value in the SQL form of a scalar column, for writes and
/// keys. `None` when the value does not fit (absent and null included).
/// Int fits float, a whole float fits int, a string parses as a uuid or a
/// timestamp, an entity row stands for its key.
pub(crate) fn scalar_to_sql(v: &Value, s: Scalar) -> Option<Sql> {
    match (s, v) {
        (_, Value::Entity(row)) => scalar_to_sql(&row.key, s),
        (Scalar::Int, Value::Int(i)) => Some(Sql::Integer(*i)),
        (Scalar::Int, Value::Float(f)) => whole(*f).map(Sql::Integer),
        (Scalar::Float, Value::Int(i)) => Some(Sql::Real(*i as f64)),
        (Scalar::Float, Value::Float(f)) if f.is_finite() => Some(Sql::Real(*f)),
        (Scalar::Bool, Value::Bool(b)) => Some(Sql::Integer(i64::from(*b))),
        (Scalar::Str, Value::Str(s)) => Some(Sql::Text(s.to_string())),
        (Scalar::Uuid, Value::Uuid(u)) => Some(Sql::Text(format_uuid(*u))),
        (Scalar::Uuid, Value::Str(s)) => parse_uuid(s).map(|u| Sql::Text(format_uuid(u))),
        // Only `now()` in year 10000 could be out of range; never store a
        // text whose order would not be time order.
        (Scalar::Timestamp, Value::Timestamp(t)) if timestamp_in_range(*t) => {
            Some(Sql::Text(format_timestamp_store(*t)))
        }
        (Scalar::Timestamp, Value::Str(s)) => parse_timestamp(s).map(|t| Sql::Text(format_timestamp_store(t))),
        _ => None,
    }
}

/// A filter parameter compared with a column of kind `s`: like
/// [`scalar_to_sql`], but any number compares with a numeric column.
pub(crate) fn coerce_param(v: &Value, s: Scalar) -> Sql {
    match (s, v) {
        (Scalar::Int | Scalar::Float, Value::Int(i)) => Sql::Integer(*i),
        (Scalar::Int | Scalar::Float, Value::Float(f)) if !f.is_nan() => Sql::Real(*f),
        // A uuid or timestamp compared with a string column: its text.
        (Scalar::Str, Value::Uuid(u)) => Sql::Text(format_uuid(*u)),
        (Scalar::Str, Value::Timestamp(t)) => Sql::Text(format_timestamp(*t)),
        _ => scalar_to_sql(v, s).unwrap_or(Sql::Null),
    }
}

/// A present value as the JSON element of a typed list column.
pub(crate) fn scalar_to_json(v: &Value, s: Scalar) -> Option<J> {
    Some(match scalar_to_sql(v, s)? {
        Sql::Integer(i) if s == Scalar::Bool => J::Bool(i != 0),
        Sql::Integer(i) => J::from(i),
        Sql::Real(f) => serde_json::Number::from_f64(f).map(J::Number)?,
        Sql::Text(t) => J::String(t),
        _ => return None,
    })
}

/// A JSON value as a typed list element (from storage or a fixture).
pub(crate) fn json_to_scalar(j: &J, s: Scalar) -> Option<Value> {
    match (s, j) {
        (Scalar::Int, J::Number(n)) => n.as_i64().or_else(|| n.as_f64().and_then(whole)).map(Value::Int),
        (Scalar::Float, J::Number(n)) => n.as_f64().map(Value::Float),
        (Scalar::Bool, J::Bool(b)) => Some(Value::Bool(*b)),
        (Scalar::Str, J::String(t)) => Some(Value::str(t)),
        (Scalar::Uuid, J::String(t)) => parse_uuid(t).map(Value::Uuid),
        (Scalar::Timestamp, J::String(t)) => parse_timestamp(t).map(Value::Timestamp),
        _ => None,
    }
}

/// An SQL value read from a scalar column.
pub(crate) fn sql_to_scalar(r: ValueRef<'_>, s: Scalar) -> Value {
    match r {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => match s {
            Scalar::Bool => Value::Bool(i != 0),
            Scalar::Float => Value::Float(i as f64),
            _ => Value::Int(i),
        },
        ValueRef::Real(f) => match s {
            Scalar::Int => whole(f).map(Value::Int).unwrap_or(Value::Float(f)),
            _ => Value::Float(f),
        },
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let t = String::from_utf8_lossy(t);
            match s {
                Scalar::Uuid => parse_uuid(&t).map(Value::Uuid).unwrap_or_else(|| Value::str(&t)),
                Scalar::Timestamp => parse_timestamp(&t).map(Value::Timestamp).unwrap_or_else(|| Value::str(&t)),
                _ => Value::str(&t),
            }
        }
    }
}

/// An SQL value read from a column of kind `kind` (never many-to-many).
pub(crate) fn sql_to_value(r: ValueRef<'_>, kind: ColKind) -> Value {
    match kind {
        ColKind::Scalar(s) => sql_to_scalar(r, s),
        ColKind::ManyToMany(_) => Value::Absent,
        ColKind::Any | ColKind::List(_) => match r {
            ValueRef::Null => Value::Null,
            // An `any` column straight to a value: no `serde_json::Value`
            // in between, which was half the cost of reading a row with a
            // large JSON column (the same result as `Value::from_json`).
            ValueRef::Text(t) | ValueRef::Blob(t) if kind == ColKind::Any => {
                match serde_json::from_slice::<DirectValue>(t) {
                    Ok(DirectValue(v)) => v,
                    Err(_) => Value::str(&String::from_utf8_lossy(t)),
                }
            }
            ValueRef::Text(t) | ValueRef::Blob(t) => match serde_json::from_slice::<J>(t) {
                Ok(j) => json_to_value(&j, kind),
                Err(_) => Value::str(&String::from_utf8_lossy(t)),
            },
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Float(f),
        },
    }
}

/// A run-time value deserialized directly from JSON text, equal to
/// `Value::from_json` of the `serde_json::Value` the text parses to: an
/// integer that fits i64 is an int, any other number a float; a repeated
/// object key keeps its first position and its last value (as the
/// order-preserving map does).
pub(crate) struct DirectValue(pub(crate) Value);

impl<'de> serde::Deserialize<'de> for DirectValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DirectValue, D::Error> {
        d.deserialize_any(DirectVisitor).map(DirectValue)
    }
}

struct DirectVisitor;

impl<'de> serde::de::Visitor<'de> for DirectVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(x))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::str(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(DirectValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::list(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields: Vec<(std::sync::Arc<str>, Value)> = Vec::new();
        // Positions by key, built only once an object is large enough for
        // a linear search for repeated keys to cost more than the map.
        let mut index: Option<std::collections::HashMap<std::sync::Arc<str>, usize>> = None;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let DirectValue(v) = map.next_value()?;
            if index.is_none() && fields.len() >= 16 {
                index = Some(fields.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
            }
            let at = match &index {
                Some(ix) => ix.get(k.as_ref()).copied(),
                None => fields.iter().position(|(f, _)| **f == *k),
            };
            match at {
                Some(i) => fields[i].1 = v,
                None => {
                    let key: std::sync::Arc<str> = std::sync::Arc::from(k.as_ref());
                    if let Some(ix) = index.as_mut() {
                        ix.insert(key.clone(), fields.len());
                    }
                    fields.push((key, v));
                }
            }
        }
        Ok(Value::Object(std::sync::Arc::new(fields)))
    }
}

/// JSON text of a column of kind `kind` (any or list) as a value.
pub(crate) fn json_to_value(j: &J, kind: ColKind) -> Value {
    match (kind, j) {
        (ColKind::List(Some(s)), J::Array(items)) => {
            Value::list(items.iter().map(|e| json_to_scalar(e, s).unwrap_or_else(|| Value::from_json(e))).collect())
        }
        (_, J::Null) => Value::Null,
        _ => Value::from_json(j),
    }
}

/// The comparison class of a run-time value (see `filter::Bind::DynClass`).
fn dyn_class(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Absent | Value::Null => return None,
        Value::Int(_) | Value::Float(_) => "n",
        Value::Bool(_) => "b",
        Value::Str(_) | Value::Uuid(_) | Value::Timestamp(_) => "s",
        // No stored value is a duration (JSON has none): a class of its own
        // equals nothing in a column, as the interpreter has it.
        Value::Duration(_) => "d",
        Value::List(_) | Value::Object(_) | Value::Entity(_) => "j",
    })
}

fn dyn_val(v: &Value, schema: &crate::schema::Schema) -> Sql {
    match v {
        Value::Absent | Value::Null => Sql::Null,
        Value::Int(i) => Sql::Integer(*i),
        Value::Float(f) if f.is_nan() => Sql::Null,
        Value::Float(f) => Sql::Real(*f),
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Str(s) => Sql::Text(s.to_string()),
        Value::Uuid(u) => Sql::Text(format_uuid(*u)),
        Value::Timestamp(t) => Sql::Text(format_timestamp(*t)),
        Value::Duration(d) => Sql::Text(crate::value::format_duration(*d)),
        Value::List(_) | Value::Object(_) | Value::Entity(_) => Sql::Text(v.to_json(Some(schema)).to_string()),
    }
}

/// The SQL value of one filter parameter.
pub(crate) fn bind_value(b: Bind, outer: &[Value], schema: &crate::schema::Schema) -> Sql {
    match b {
        Bind::Bool(i) => Sql::Integer(i64::from(matches!(outer[i], Value::Bool(true)))),
        Bind::Coerce(i, s) => coerce_param(&outer[i], s),
        Bind::Present(i) => Sql::Integer(i64::from(!outer[i].is_nullish())),
        Bind::DynVal(i) => dyn_val(&outer[i], schema),
        Bind::DynClass(i) => dyn_class(&outer[i]).map(|c| Sql::Text(c.into())).unwrap_or(Sql::Null),
        Bind::Text(i) => match &outer[i] {
            Value::Str(s) => Sql::Text(s.to_string()),
            _ => Sql::Null,
        },
        Bind::List(i, kind) => match &outer[i] {
            Value::List(items) => {
                let arr: Vec<J> = match kind {
                    Some(s) => items
                        .iter()
                        .filter_map(|v| match coerce_param(v, s) {
                            Sql::Integer(n) => Some(J::from(n)),
                            Sql::Real(f) => serde_json::Number::from_f64(f).map(J::Number),
                            Sql::Text(t) => Some(J::String(t)),
                            _ => None,
                        })
                        .collect(),
                    None => {
                        items.iter().filter(|v| !matches!(v, Value::Absent)).map(|v| v.to_json(Some(schema))).collect()
                    }
                };
                Sql::Text(J::Array(arr).to_string())
            }
            _ => Sql::Null,
        },
    }
}

#[cfg(test)]
mod direct_tests {
    use super::*;

    /// The direct parse gives exactly what parsing to `serde_json::Value`
    /// and converting gives, including repeated keys, big integers,
    /// escapes and nesting.
    #[test]
    fn direct_value_matches_from_json() {
        let many_keys: String =
            format!("{{{}}}", (0..40).map(|i| format!("\"k{}\": {i}", i % 25)).collect::<Vec<_>>().join(", "));
        let texts = [
            "null",
            "true",
            "-12",
            "18446744073709551615",
            "9223372036854775807",
            "1.5e3",
            r#""a\"b\u00e9\n""#,
            "[]",
            "{}",
            r#"{"a": 1, "b": [1, "x", null, {"c": false}], "a": 2}"#,
            r#"{"UserAddedHistory": ["2024 - Added user: x", "2024 - Added user: y"], "n": {"m": {}}}"#,
            &many_keys,
        ];
        for t in texts {
            let j: J = serde_json::from_str(t).unwrap();
            let DirectValue(v) = serde_json::from_str(t).unwrap();
            assert_eq!(v, Value::from_json(&j), "{t}");
        }
        assert!(serde_json::from_str::<DirectValue>("{\"a\": ").is_err());
    }
}
