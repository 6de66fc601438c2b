//! Schema-driven event decoding: one NDJSON line into a fixed array of
//! [`Slot`]s, one per event path the rules read, skipping every other
//! subtree without building values.
//!
//! (Interface fixed here; implementation in progress.)

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
}

/// Bit 63 of `Slot::a`: the bytes are in the decoder's scratch buffer.
pub const SCRATCH: u64 = 1 << 63;

impl Slot {
    pub const ABSENT: Slot = Slot { tag: tag::ABSENT, sym: 0, a: 0, b: 0 };
}
