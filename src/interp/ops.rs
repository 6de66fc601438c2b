//! The value semantics of the language: equality, ordering, membership,
//! arithmetic and the built-in functions. The JIT implements the same
//! rules for the subset it compiles; `tests/differential.rs` holds the two
//! to agreement.
//!
//! - Comparisons are false when either side is absent or null, except
//!   `!=`, which is exactly `not ==` (so `absent != "x"` is true).
//! - `int` and `float` compare as `f64`.
//! - A string compares with a `uuid` or a `timestamp` by parsing it
//!   (hex or dashed UUIDs; RFC 3339); an unparsable string is unequal.
//! - Integer overflow, division by zero and non-finite float results yield
//!   absent, so every comparison on them is false (the logic stays total).
//! - Time arithmetic (`timestamp ± duration`, `timestamp - timestamp`,
//!   `duration ± duration`, `duration * int`) whose result leaves the
//!   timestamp range (years 1 to 9999) or the duration range (about ±292
//!   years) is a run-time error `R0007`: unlike a number, a time is never
//!   quietly dropped.
//! - A dynamic (`any`) value of the wrong kind where a specific kind is
//!   needed is a run-time error `R0001`.

use crate::diag::{Code, RuntimeError};
use crate::ir::{ArithOp, CmpOp};
use crate::value::{parse_timestamp, parse_uuid, Value};
use std::cmp::Ordering;

pub fn type_error(what: &str, found: &Value) -> RuntimeError {
    RuntimeError::new(Code::DynamicType, format!("expected {what}, found {}", describe(found)))
}

/// A value's kind with a short excerpt, for run-time error messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) => {
            let mut t: String = s.chars().take(40).collect();
            if t.len() < s.len() {
                t.push('…');
            }
            format!("string {t:?}")
        }
        Value::Int(i) => format!("int {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Bool(b) => format!("bool {b}"),
        other => other.kind().to_string(),
    }
}

/// `a == b` at the top level: false when either side is absent or null.
pub fn equals(a: &Value, b: &Value) -> bool {
    if a.is_nullish() || b.is_nullish() {
        return false;
    }
    deep_eq(a, b)
}

/// Structural equality; inside lists and objects `null == null`.
pub fn deep_eq(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        (Absent, Absent) | (Null, Null) => true,
        (Bool(x), Bool(y)) => x == y,
        (Int(x), Int(y)) => x == y,
        (Int(x), Float(y)) | (Float(y), Int(x)) => (*x as f64) == *y,
        (Float(x), Float(y)) => x == y,
        (Str(x), Str(y)) => x == y,
        (Uuid(x), Uuid(y)) => x == y,
        (Uuid(u), Str(s)) | (Str(s), Uuid(u)) => parse_uuid(s) == Some(*u),
        (Timestamp(x), Timestamp(y)) => x == y,
        (Duration(x), Duration(y)) => x == y,
        (Timestamp(t), Str(s)) | (Str(s), Timestamp(t)) => parse_timestamp(s) == Some(*t),
        (List(x), List(y)) => x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| deep_eq(a, b)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && deep_eq(v, v2)))
        }
        (Entity(x), Entity(y)) => x.entity == y.entity && deep_eq(&x.key, &y.key),
        _ => false,
    }
}

/// Order of two present values, `None` when they have no common order.
pub fn order(a: &Value, b: &Value) -> Option<Ordering> {
    use Value::*;
    match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Str(x), Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Timestamp(x), Timestamp(y)) => Some(x.cmp(y)),
        (Duration(x), Duration(y)) => Some(x.cmp(y)),
        (Timestamp(t), Str(s)) => parse_timestamp(s).map(|u| t.cmp(&u)),
        (Str(s), Timestamp(t)) => parse_timestamp(s).map(|u| u.cmp(t)),
        _ => None,
    }
}

pub fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    if op == CmpOp::Ne {
        return !equals(a, b);
    }
    if a.is_nullish() || b.is_nullish() {
        return false;
    }
    match op {
        CmpOp::Eq => deep_eq(a, b),
        CmpOp::Ne => unreachable!("`!=` is `not ==`, answered above"),
        CmpOp::Lt => order(a, b) == Some(Ordering::Less),
        CmpOp::Le => matches!(order(a, b), Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => order(a, b) == Some(Ordering::Greater),
        CmpOp::Ge => matches!(order(a, b), Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// `elem in container`: list membership or substring; false on absent.
pub fn contains(container: &Value, elem: &Value) -> bool {
    if container.is_nullish() || elem.is_nullish() {
        return false;
    }
    match (container, elem) {
        (Value::List(items), e) => items.iter().any(|i| equals(i, e)),
        (Value::Str(s), Value::Str(sub)) => s.contains(&**sub),
        _ => false,
    }
}

fn finite(f: f64) -> Value {
    if f.is_finite() {
        Value::Float(f)
    } else {
        Value::Absent
    }
}

pub fn arith(op: ArithOp, a: &Value, b: &Value) -> Result<Value, RuntimeError> {
    use Value::*;
    if a.is_nullish() || b.is_nullish() {
        return Ok(Absent);
    }
    let num = |v: &Value| match v {
        Int(i) => Some(*i as f64),
        Float(f) => Some(*f),
        _ => None,
    };
    if let Some(r) = time_arith(op, a, b) {
        return r;
    }
    Ok(match (op, a, b) {
        (_, Int(x), Int(y)) => {
            let r = match op {
                ArithOp::Add => x.checked_add(*y),
                ArithOp::Sub => x.checked_sub(*y),
                ArithOp::Mul => x.checked_mul(*y),
                ArithOp::Div => x.checked_div(*y),
                ArithOp::Mod => x.checked_rem(*y),
            };
            r.map(Int).unwrap_or(Absent)
        }
        (ArithOp::Add, Str(x), Str(y)) => {
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Value::str(&s)
        }
        (ArithOp::Add, List(x), List(y)) => {
            let mut v = Vec::with_capacity(x.len() + y.len());
            v.extend(x.iter().cloned());
            v.extend(y.iter().cloned());
            Value::list(v)
        }
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => match op {
                ArithOp::Add => finite(x + y),
                ArithOp::Sub => finite(x - y),
                ArithOp::Mul => finite(x * y),
                ArithOp::Div if y == 0.0 => Absent,
                ArithOp::Div => finite(x / y),
                ArithOp::Mod if y == 0.0 => Absent,
                ArithOp::Mod => finite(x % y),
            },
            _ => {
                let sym = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    ArithOp::Mul => "*",
                    ArithOp::Div => "/",
                    ArithOp::Mod => "%",
                };
                return Err(RuntimeError::new(
                    Code::DynamicType,
                    format!("cannot apply `{sym}` to {} and {}", describe(a), describe(b)),
                ));
            }
        },
    })
}

/// The time cases of [`arith`] (`None`: not a time operation).
fn time_arith(op: ArithOp, a: &Value, b: &Value) -> Option<Result<Value, RuntimeError>> {
    use crate::value::{format_duration, format_timestamp, timestamp_add, timestamp_diff};
    use Value::*;
    let out_of_range = |what: &str| {
        let sym = match op {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        };
        let show = |v: &Value| match v {
            Timestamp(t) => format_timestamp(*t),
            Duration(d) => format_duration(*d),
            other => other.to_text(None),
        };
        Err(RuntimeError::new(Code::TimeOutOfRange, format!("`{} {sym} {}` is out of range: {what}", show(a), show(b))))
    };
    const TS: &str = "timestamps go from year 1 to year 9999";
    const DUR: &str = "durations go up to about 292 years";
    Some(match (op, a, b) {
        (ArithOp::Add, Timestamp(t), Duration(d)) | (ArithOp::Add, Duration(d), Timestamp(t)) => {
            timestamp_add(*t, *d).map(Timestamp).map_or_else(|| out_of_range(TS), Ok)
        }
        (ArithOp::Sub, Timestamp(t), Duration(d)) => {
            // `-d` overflows for the most negative duration: add in i128.
            (*t).checked_sub(*d as i128)
                .filter(|n| crate::value::timestamp_in_range(*n))
                .map(Timestamp)
                .map_or_else(|| out_of_range(TS), Ok)
        }
        (ArithOp::Sub, Timestamp(x), Timestamp(y)) => {
            timestamp_diff(*x, *y).map(Duration).map_or_else(|| out_of_range(DUR), Ok)
        }
        (ArithOp::Add, Duration(x), Duration(y)) => {
            x.checked_add(*y).map(Duration).map_or_else(|| out_of_range(DUR), Ok)
        }
        (ArithOp::Sub, Duration(x), Duration(y)) => {
            x.checked_sub(*y).map(Duration).map_or_else(|| out_of_range(DUR), Ok)
        }
        (ArithOp::Mul, Duration(d), Int(n)) | (ArithOp::Mul, Int(n), Duration(d)) => {
            d.checked_mul(*n).map(Duration).map_or_else(|| out_of_range(DUR), Ok)
        }
        _ => return None,
    })
}

pub fn negate(v: &Value) -> Result<Value, RuntimeError> {
    Ok(match v {
        Value::Duration(d) => match d.checked_neg() {
            Some(n) => Value::Duration(n),
            None => {
                return Err(RuntimeError::new(
                    Code::TimeOutOfRange,
                    "`-` of the most negative duration is out of range: durations go up to about 292 years",
                ))
            }
        },
        Value::Absent | Value::Null => Value::Absent,
        Value::Int(i) => i.checked_neg().map(Value::Int).unwrap_or(Value::Absent),
        Value::Float(f) => Value::Float(-f),
        other => return Err(type_error("a number", other)),
    })
}

/// `empty(x)`: true for absent, null, `""`, `[]` and `{}`.
pub fn empty(v: &Value) -> bool {
    match v {
        Value::Absent | Value::Null => true,
        Value::Str(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

pub fn len(v: &Value) -> Result<Value, RuntimeError> {
    Ok(match v {
        Value::Absent | Value::Null => Value::Absent,
        Value::Str(s) => Value::Int(s.chars().count() as i64),
        Value::List(l) => Value::Int(l.len() as i64),
        Value::Object(o) => Value::Int(o.len() as i64),
        other => return Err(type_error("a string or a list", other)),
    })
}

/// A string argument of a function; `Ok(None)` when absent or null.
pub fn str_arg(v: &Value) -> Result<Option<&str>, RuntimeError> {
    match v {
        Value::Absent | Value::Null => Ok(None),
        Value::Str(s) => Ok(Some(s)),
        other => Err(type_error("a string", other)),
    }
}

/// `int(x)`: ints as they are, floats truncated toward zero (absent when
/// out of range), decimal strings parsed; absent stays absent.
pub fn to_int(v: &Value) -> Result<Value, RuntimeError> {
    Ok(match v {
        Value::Absent | Value::Null => Value::Absent,
        Value::Int(i) => Value::Int(*i),
        Value::Float(f) => {
            let t = f.trunc();
            if t.is_finite() && t >= i64::MIN as f64 && t < i64::MAX as f64 {
                Value::Int(t as i64)
            } else {
                Value::Absent
            }
        }
        Value::Str(s) => match s.trim().parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => return Err(type_error("a decimal integer", v)),
        },
        other => return Err(type_error("a number or a decimal string", other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_null_compare_false() {
        for op in [CmpOp::Eq, CmpOp::Lt, CmpOp::Ge] {
            assert!(!compare(op, &Value::Absent, &Value::Int(1)));
            assert!(!compare(op, &Value::Null, &Value::Null));
        }
        assert!(compare(CmpOp::Ne, &Value::Int(1), &Value::Int(2)));
    }

    /// LANGUAGE.md v1: `!=` is exactly `not ==`, absent and null included.
    #[test]
    fn not_equal_is_not_equal() {
        let vals = [Value::Absent, Value::Null, Value::Int(1), Value::Float(1.0), Value::str("x"), Value::Bool(true)];
        for a in &vals {
            for b in &vals {
                assert_eq!(compare(CmpOp::Ne, a, b), !compare(CmpOp::Eq, a, b), "{a:?} != {b:?}");
            }
        }
        assert!(compare(CmpOp::Ne, &Value::Absent, &Value::str("x")));
        assert!(compare(CmpOp::Ne, &Value::Null, &Value::Null));
    }

    #[test]
    fn numbers_mix() {
        assert!(compare(CmpOp::Eq, &Value::Int(3), &Value::Float(3.0)));
        assert!(compare(CmpOp::Lt, &Value::Int(3), &Value::Float(3.5)));
        assert_eq!(arith(ArithOp::Div, &Value::Int(7), &Value::Int(2)).unwrap(), Value::Int(3));
        assert_eq!(arith(ArithOp::Div, &Value::Int(7), &Value::Int(0)).unwrap(), Value::Absent);
        assert_eq!(arith(ArithOp::Add, &Value::Int(i64::MAX), &Value::Int(1)).unwrap(), Value::Absent);
        assert_eq!(arith(ArithOp::Add, &Value::Int(1), &Value::Float(0.5)).unwrap(), Value::Float(1.5));
        assert!(arith(ArithOp::Add, &Value::str("a"), &Value::Int(1)).is_err());
    }

    #[test]
    fn uuid_and_timestamp_against_strings() {
        let u = parse_uuid("305332a450ac475eb97ce2cd167238a6").unwrap();
        assert!(equals(&Value::Uuid(u), &Value::str("305332a4-50ac-475e-b97c-e2cd167238a6")));
        assert!(!equals(&Value::Uuid(u), &Value::str("nope")));
        let t = parse_timestamp("2026-01-01T00:00:00Z").unwrap();
        assert!(compare(CmpOp::Gt, &Value::Timestamp(t), &Value::str("2025-12-31T23:59:59Z")));
    }

    #[test]
    fn membership() {
        let l = Value::list(vec![Value::Int(1), Value::Null]);
        assert!(contains(&l, &Value::Float(1.0)));
        assert!(!contains(&l, &Value::Null));
        assert!(contains(&Value::str("hello"), &Value::str("ell")));
        assert!(!contains(&Value::Absent, &Value::str("x")));
    }
}
