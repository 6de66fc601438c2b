//! Hand-built schemas for tests (the schema lowering is separate work).

use crate::schema::{EntityDef, FieldDef, Schema};
use crate::span::Span;
use crate::types::{EntityId, Ty};

pub const USER: EntityId = EntityId(0);
pub const GROUP: EntityId = EntityId(1);
pub const APPLICATION: EntityId = EntityId(2);
pub const POLICY_BINDING: EntityId = EntityId(3);

fn field(name: &str, ty: Ty) -> FieldDef {
    FieldDef { name: name.to_string(), ty, span: Span::default() }
}

/// An entity definition from a key and `(name, type)` fields.
pub fn entity(name: &str, key: (&str, Ty), fields: &[(&str, Ty)]) -> EntityDef {
    EntityDef {
        name: name.to_string(),
        key: field(key.0, key.1),
        fields: fields.iter().map(|(n, t)| field(n, t.clone())).collect(),
        span: Span::default(),
    }
}

/// A schema holding these entities (ids in order: `EntityId(0)`, ...).
pub fn schema_of(entities: Vec<EntityDef>) -> Schema {
    let mut s = Schema::default();
    for e in entities {
        s.add_entity(e);
    }
    s
}

fn opt(t: Ty) -> Ty {
    t.optional()
}

/// The authentik entities of BUILTIN_SCHEMA.md: `User` (key `pk: int`),
/// `Group` (key `pk: uuid`, `users: [User]`), `Application`,
/// `PolicyBinding`; `recipient User`.
pub fn authentik_entities() -> Vec<EntityDef> {
    vec![
        entity(
            "User",
            ("pk", Ty::Int),
            &[
                ("username", Ty::String),
                ("name", Ty::String),
                ("email", Ty::String),
                ("is_active", Ty::Bool),
                ("attributes", Ty::Any),
                ("type", opt(Ty::String)),
                ("path", opt(Ty::String)),
            ],
        ),
        entity(
            "Group",
            ("pk", Ty::Uuid),
            &[
                ("name", Ty::String),
                ("attributes", Ty::Any),
                ("is_superuser", opt(Ty::Bool)),
                ("users", Ty::Entity(USER).list()),
            ],
        ),
        entity(
            "Application",
            ("pk", Ty::Uuid),
            &[
                ("name", Ty::String),
                ("slug", Ty::String),
                ("group", opt(Ty::String)),
                ("meta_launch_url", opt(Ty::String)),
            ],
        ),
        entity(
            "PolicyBinding",
            ("pk", Ty::Uuid),
            &[
                ("target", Ty::Uuid),
                ("enabled", opt(Ty::Bool)),
                ("order", opt(Ty::Int)),
                ("negate", opt(Ty::Bool)),
                ("policy", opt(Ty::Uuid)),
                ("group", opt(Ty::Uuid)),
                ("user", opt(Ty::Int)),
            ],
        ),
    ]
}

pub fn authentik_schema() -> Schema {
    let mut s = schema_of(authentik_entities());
    s.recipient = Some(USER);
    s
}
