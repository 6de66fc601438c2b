//! The surface syntax: the pest grammar (`grammar/herald.pest`), the AST and
//! the translation of pest's failures into readable diagnostics. No pest type
//! leaves this module.

pub mod ast;
