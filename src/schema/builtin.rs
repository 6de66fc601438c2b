//! The built-in `authentik` schema, written in Herald and embedded.

/// The name diagnostics show for the built-in schema's file.
pub const AUTHENTIK_NAME: &str = "<builtin:authentik>";

/// The source of the built-in schema.
pub const AUTHENTIK: &str = include_str!("authentik.herald");
