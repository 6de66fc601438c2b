//! The compiler driver: parse, lower the schema, check. Pure: it works on
//! source text the caller has already read into a [`SourceMap`].

use crate::check;
use crate::diag::{self, Diagnostic};
use crate::ir::Program;
use crate::schema::{self, builtin, Schema};
use crate::span::{FileId, SourceMap};
use crate::syntax::{self, ast};
use std::sync::Arc;

/// Where the schema comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChoice {
    /// The built-in `authentik` schema.
    Builtin,
    /// A schema file (already in the source map).
    File(FileId),
    /// `--schema` not given: the policy files' own schema if they declare a
    /// `discriminator`, the built-in `authentik` schema otherwise.
    Auto,
}

pub struct Compiled {
    /// `Some` when there are no errors (warnings allowed).
    pub program: Option<Program>,
    pub schema: Arc<Schema>,
    /// All diagnostics, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// The checked `test` items (empty when there are errors).
    pub tests: Vec<crate::ir::Test>,
}

impl Compiled {
    pub fn errors(&self) -> usize {
        diag::error_count(&self.diagnostics)
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

fn parse_all(sources: &SourceMap, files: &[FileId], diags: &mut Vec<Diagnostic>) -> Vec<ast::File> {
    files
        .iter()
        .map(|&f| {
            let parsed = syntax::parse(f, sources.text(f));
            diags.extend(parsed.diagnostics);
            parsed.ast
        })
        .collect()
}

fn declares_discriminator(files: &[ast::File]) -> bool {
    files.iter().flat_map(|f| f.items.iter()).any(|i| matches!(i, ast::Item::Discriminator { .. }))
}

/// The schema's base file for `choice`, adding the built-in source to the
/// map when it is used.
fn base_schema(sources: &mut SourceMap, choice: SchemaChoice, policies: &[ast::File]) -> Option<FileId> {
    match choice {
        SchemaChoice::File(f) => Some(f),
        SchemaChoice::Builtin => Some(sources.add(builtin::AUTHENTIK_NAME, builtin::AUTHENTIK)),
        SchemaChoice::Auto if declares_discriminator(policies) => None,
        SchemaChoice::Auto => Some(sources.add(builtin::AUTHENTIK_NAME, builtin::AUTHENTIK)),
    }
}

/// Compile policy files against a schema. The schema is the base schema
/// (see [`SchemaChoice`]) extended with the schema items of the policy files.
pub fn compile(sources: &mut SourceMap, choice: SchemaChoice, policies: &[FileId]) -> Compiled {
    let mut diags = Vec::new();
    let policy_asts = parse_all(sources, policies, &mut diags);
    let base = base_schema(sources, choice, &policy_asts);
    let base_ast = base.map(|f| parse_all(sources, &[f], &mut diags).remove(0));
    let mut schema_files: Vec<&ast::File> = base_ast.iter().collect();
    schema_files.extend(policy_asts.iter());
    let (schema, schema_diags) = schema::lower(&schema_files);
    diags.extend(schema_diags);
    let schema = Arc::new(schema);
    // A schema file may hold rules and consts too (one grammar for both):
    // they are checked like any policy file's, before the others.
    let mut policy_refs: Vec<&ast::File> = Vec::new();
    if let SchemaChoice::File(_) = choice {
        policy_refs.extend(base_ast.iter());
    }
    policy_refs.extend(policy_asts.iter());
    let checked = check::check(schema.clone(), &policy_refs);
    diags.extend(checked.diagnostics);
    diag::sort(&mut diags);
    let (program, tests) = if diag::error_count(&diags) == 0 {
        let mut p = checked.program;
        p.sources = Arc::new(sources.clone());
        (Some(p), checked.tests)
    } else {
        (None, Vec::new())
    };
    Compiled { program, schema, diagnostics: diags, tests }
}

/// Compile only a schema (for `db init` / `db load`).
pub fn compile_schema(sources: &mut SourceMap, choice: SchemaChoice) -> (Arc<Schema>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let base = base_schema(sources, choice, &[]);
    let asts = match base {
        Some(f) => parse_all(sources, &[f], &mut diags),
        None => vec![],
    };
    let refs: Vec<&ast::File> = asts.iter().collect();
    let (schema, schema_diags) = schema::lower(&refs);
    diags.extend(schema_diags);
    diag::sort(&mut diags);
    (Arc::new(schema), diags)
}
