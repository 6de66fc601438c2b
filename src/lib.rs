//! Herald: a typed, JIT-compiled policy language for event-driven automation.
//!
//! The pipeline (see ARCHITECTURE.md):
//!
//! ```text
//! text ─syntax::parse─▶ AST ─schema::lower─▶ Schema ─check::check─▶ ir::Program
//! NDJSON ─decode─▶ slots ─jit / interp (match)─▶ interp (guards, actions) ─▶ store ─▶ mail, webhook
//! ```
//!
//! `syntax`, `schema`, `check` and `compile` are the pure compiler core: no
//! IO, no SQLite, no `unsafe`. Only `jit` may use `unsafe`.
#![deny(unsafe_code)]

pub mod analysis;
pub mod builtins;
pub mod check;
pub mod cli;
pub mod compile;
pub mod decode;
pub mod diag;
pub mod effect;
pub mod engine;
pub mod filter;
pub mod interp;
pub mod ir;
pub mod jit;
pub mod logfmt;
pub mod lsp;
pub mod mail;
pub mod matcher;
pub mod schema;
pub mod serve;
pub mod span;
pub mod store;
pub mod syntax;
pub mod types;
pub mod value;
pub mod webhook;
