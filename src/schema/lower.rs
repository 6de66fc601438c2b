//! Lowering schema items from parsed files into a [`Schema`].
use super::Schema;
use crate::diag::Diagnostic;
use crate::syntax::ast;

/// Schema problems as data; see `to_diagnostic`.
#[derive(Debug, Clone)]
pub enum SchemaError {}

/// Build the schema from the schema items of `files`, in order.
pub fn lower(_files: &[&ast::File]) -> (Schema, Vec<Diagnostic>) {
    (Schema::default(), Vec::new())
}
