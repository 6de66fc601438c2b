//! Rust helpers called from the generated code for predicates that need the
//! bytes of a string (`starts_with`, `matches`, `ip_in`, ...).
//!
//! Each helper answers 0 (false), 1 (true) or 2 ("ask the interpreter")
//! with exactly the interpreter's semantics (`interp::call`, `ops`): the
//! same `str` methods, the same `Regex` and `Cidr` code. It never
//! allocates on a string slot and never unwinds into the native caller.

use super::lower::{Lit, Pred};
use crate::decode::{slot_bytes, tag, Slot};
use crate::interp::ops;
use crate::value::Value;

/// The buffers string slots point into, passed by the matcher to the
/// compiled function and by it to every helper call.
#[repr(C)]
pub(crate) struct Bufs {
    pub line: *const u8,
    pub line_len: usize,
    pub scratch: *const u8,
    pub scratch_len: usize,
}

impl Bufs {
    pub(crate) fn new(line: &[u8], scratch: &[u8]) -> Bufs {
        Bufs { line: line.as_ptr(), line_len: line.len(), scratch: scratch.as_ptr(), scratch_len: scratch.len() }
    }
}

/// The symbol name of [`herald_jit_pred`] in the JIT module.
pub(crate) const PRED_SYMBOL: &str = "herald_jit_pred";

/// `pred` on the slot `slot`, three-valued (see the module comment).
///
/// # Safety
/// `slot` points to a valid `Slot`, `bufs` to a `Bufs` whose pointers are
/// valid for their lengths (built by [`Bufs::new`] from live slices), and
/// `pred` to a `Pred` owned by the matcher; all live for the call.
pub(crate) unsafe extern "C" fn herald_jit_pred(slot: *const Slot, bufs: *const Bufs, pred: *const Pred) -> u32 {
    // SAFETY: the caller's contract (above): the generated code passes the
    // slot array entry of a path below `slots_needed`, the `Bufs` the
    // matcher built on its stack for this call, and a pointer into a
    // `Box<Pred>` the `JitMatcher` keeps alive as long as the code.
    let (slot, bufs, pred) = unsafe { (&*slot, &*bufs, &*pred) };
    // SAFETY: `Bufs::new` took these pointers and lengths from slices that
    // outlive the compiled function's call (the decoded event's line and
    // the decoder's scratch buffer).
    let (line, scratch) = unsafe {
        (
            std::slice::from_raw_parts(bufs.line, bufs.line_len),
            std::slice::from_raw_parts(bufs.scratch, bufs.scratch_len),
        )
    };
    // Unwinding through `extern "C"` would abort: turn any panic into
    // "ask the interpreter", which then reports its own result.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| eval(pred, slot, line, scratch))).unwrap_or(2)
}

/// The predicate's three-valued result on one slot.
pub(crate) fn eval(pred: &Pred, slot: &Slot, line: &[u8], scratch: &[u8]) -> u32 {
    match slot.tag {
        tag::ABSENT | tag::NULL => match pred {
            // String predicates on absent/null are false (`str_arg` gives
            // `None`), `empty` is true, `len` and `lower` give absent, which
            // compares false with anything, and `!=` is `not ==`: true.
            Pred::StartsWith(_)
            | Pred::EndsWith(_)
            | Pred::Contains(_)
            | Pred::SubstrOf(_)
            | Pred::Matches(_)
            | Pred::IpIn(_) => 0,
            Pred::Len(op, _) => (*op == crate::ir::CmpOp::Ne) as u32,
            Pred::LowerEq(_, negated) | Pred::UpperEq(_, negated) => *negated as u32,
            Pred::Empty => 1,
        },
        tag::STR => {
            // `Decoded::str_of` reads invalid UTF-8 as "": rare enough to
            // leave to the interpreter.
            let Ok(s) = std::str::from_utf8(slot_bytes(line, scratch, slot.a, slot.b)) else {
                return 2;
            };
            on_str(pred, s)
        }
        tag::BOOL | tag::INT | tag::FLOAT | tag::UUID | tag::TIMESTAMP => match pred {
            // `str_arg` (and `len`) on another scalar is a run-time error:
            // the interpreter reports it.
            Pred::StartsWith(_)
            | Pred::EndsWith(_)
            | Pred::Contains(_)
            | Pred::Matches(_)
            | Pred::IpIn(_)
            | Pred::Len(..)
            | Pred::LowerEq(..)
            | Pred::UpperEq(..) => 2,
            // `ops::contains(Str, non-string)` and `ops::empty` are false.
            Pred::SubstrOf(_) | Pred::Empty => 0,
        },
        // Arrays and objects become values by parsing their JSON.
        _ => 2,
    }
}

fn on_str(pred: &Pred, s: &str) -> u32 {
    let r = match pred {
        Pred::StartsWith(l) => s.starts_with(l.as_str()),
        Pred::EndsWith(l) => s.ends_with(l.as_str()),
        Pred::Contains(l) => s.contains(l.as_str()),
        Pred::SubstrOf(l) => l.contains(s),
        Pred::Matches(re) => re.is_match(s),
        Pred::IpIn(c) => c.contains_str(s),
        // `ops::empty` on a string.
        Pred::Empty => s.is_empty(),
        Pred::Len(op, lit) => {
            let n = Value::Int(s.chars().count() as i64);
            let l = match lit {
                Lit::Int(i) => Value::Int(*i),
                Lit::Float(b) => Value::Float(f64::from_bits(*b)),
                // `lower` only builds int and float literals for `len`.
                Lit::Null | Lit::Bool(_) | Lit::Str(_) | Lit::Uuid(_) | Lit::Timestamp(_) => return 2,
            };
            ops::compare(*op, &n, &l)
        }
        // `str::to_lowercase`/`to_uppercase` without allocating: exact for
        // ASCII; anything else (final sigma, expansions) is left to the
        // interpreter.
        Pred::LowerEq(l, negated) | Pred::UpperEq(l, negated) => {
            if !s.is_ascii() {
                return 2;
            }
            let lower = matches!(pred, Pred::LowerEq(..));
            let eq = s.len() == l.len()
                && s.bytes().zip(l.bytes()).all(|(a, b)| {
                    let a = if lower { a.to_ascii_lowercase() } else { a.to_ascii_uppercase() };
                    a == b
                });
            eq != *negated
        }
    };
    r as u32
}
