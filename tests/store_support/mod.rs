//! Hand-built schemas, fixtures and IR filter expressions for the store
//! tests. Test-only: kept out of the shipped library.
#![allow(dead_code)]

use herald::schema::{EntityDef, FieldDef, Schema};
use herald::span::Span;
use herald::types::{EntityId, Ty};

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

// ---- fixtures ---------------------------------------------------------

pub const ADMINS: &str = "6d1c4a3e-58f2-4b7a-9a43-2b9f0f5a1c01";
/// The `ops` group's key, written in 32-hex form in the fixtures.
pub const OPS_HEX: &str = "0b7e2f6a9c3d4e5f8a1b2c3d4e5f6a7b";
pub const GRAFANA: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
pub const WIKI: &str = "f0e1d2c3-b4a5-4968-8776-655443322110";
pub const BINDING: &str = "11111111-2222-4333-8444-555555555555";

/// Sample authentik data: users 1 (akadmin), 12 (alice), 31 (bob,
/// inactive, no attributes), 40 (carol, empty email); groups
/// `authentik Admins` (users 1, 12) and `ops` (user 31, hex key);
/// applications Grafana (bound) and Wiki (unbound); one policy binding.
pub fn authentik_fixtures() -> String {
    format!(
        r#"{{
  "User": [
    {{"pk": 1, "username": "akadmin", "name": "authentik Default Admin", "email": "admin@example.com",
      "is_active": true, "attributes": {{}}, "type": "internal", "path": "users"}},
    {{"pk": 12, "username": "alice", "name": "Alice", "email": "alice@example.com", "is_active": true,
      "attributes": {{"sshPublicKey": ["ssh-ed25519 AAAA alice"], "level": 3, "admin": true}}, "type": "internal"}},
    {{"pk": 31, "username": "bob", "name": "Bob", "email": "bob@example.com", "is_active": false}},
    {{"pk": 40, "username": "carol", "name": "Carol", "email": "", "is_active": true,
      "attributes": {{"level": "high", "tags": ["x", "y"], "note": "likes grafana dashboards"}}}}
  ],
  "Group": [
    {{"pk": "{ADMINS}", "name": "authentik Admins", "attributes": {{}}, "is_superuser": true, "users": [1, 12]}},
    {{"pk": "{OPS_HEX}", "name": "ops", "attributes": {{"UserAddedHistory": []}}, "users": [31]}}
  ],
  "Application": [
    {{"pk": "{GRAFANA}", "name": "Grafana", "slug": "grafana", "meta_launch_url": "https://grafana.example.com"}},
    {{"pk": "{WIKI}", "name": "Wiki", "slug": "wiki"}}
  ],
  "PolicyBinding": [
    {{"pk": "{BINDING}", "target": "a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d", "enabled": true, "order": 0, "user": 12}}
  ]
}}"#
    )
}

// ---- IR builders --------------------------------------------------------

use herald::diag::{Code, RuntimeError};
use herald::ir::{Builtin, CmpOp, Expr, ExprKind, FieldRef, LocalId};
use herald::value::Value;

pub fn sp() -> Span {
    Span::default()
}

pub fn expr(kind: ExprKind, ty: Ty) -> Expr {
    Expr { kind, ty, span: sp() }
}

pub fn lit(v: Value) -> Expr {
    let ty = match &v {
        Value::Bool(_) => Ty::Bool,
        Value::Int(_) => Ty::Int,
        Value::Float(_) => Ty::Float,
        Value::Str(_) => Ty::String,
        Value::Uuid(_) => Ty::Uuid,
        Value::Timestamp(_) => Ty::Timestamp,
        Value::Null | Value::Absent => Ty::Null,
        _ => Ty::Any,
    };
    expr(ExprKind::Lit(v), ty)
}

/// An outer value: local `n` of type `ty` (see [`eval_locals`]).
pub fn local(n: u32, ty: Ty) -> Expr {
    expr(ExprKind::Local(LocalId(n)), ty)
}

/// Field `field` of the filtered row, typed as the schema declares it.
pub fn row(schema: &Schema, entity: EntityId, field: &str) -> Expr {
    let def = schema.entity(entity);
    if def.key.name == field {
        return expr(ExprKind::Row { entity, field: FieldRef::Key, path: vec![] }, def.key.ty.clone());
    }
    let (i, f) = def.field(field).unwrap_or_else(|| panic!("no field {field}"));
    expr(ExprKind::Row { entity, field: FieldRef::Field(i), path: vec![] }, f.ty.clone())
}

/// A path inside an `any` field of the filtered row.
pub fn row_path(schema: &Schema, entity: EntityId, field: &str, path: &[&str]) -> Expr {
    let (i, _) = schema.entity(entity).field(field).unwrap_or_else(|| panic!("no field {field}"));
    expr(
        ExprKind::Row { entity, field: FieldRef::Field(i), path: path.iter().map(|s| s.to_string()).collect() },
        Ty::Any,
    )
}

pub fn cmp(op: CmpOp, a: Expr, b: Expr) -> Expr {
    expr(ExprKind::Cmp { op, lhs: Box::new(a), rhs: Box::new(b) }, Ty::Bool)
}

pub fn eq(a: Expr, b: Expr) -> Expr {
    cmp(CmpOp::Eq, a, b)
}

pub fn and(a: Expr, b: Expr) -> Expr {
    expr(ExprKind::And(Box::new(a), Box::new(b)), Ty::Bool)
}

pub fn or(a: Expr, b: Expr) -> Expr {
    expr(ExprKind::Or(Box::new(a), Box::new(b)), Ty::Bool)
}

pub fn not(a: Expr) -> Expr {
    expr(ExprKind::Not(Box::new(a)), Ty::Bool)
}

/// `a == null` (`negated`: `a != null`).
pub fn is_null(a: Expr, negated: bool) -> Expr {
    expr(ExprKind::IsNull { operand: Box::new(a), negated }, Ty::Bool)
}

pub fn in_(elem: Expr, container: Expr) -> Expr {
    expr(ExprKind::In { elem: Box::new(elem), container: Box::new(container) }, Ty::Bool)
}

pub fn call(func: Builtin, args: Vec<Expr>) -> Expr {
    let ty = match func {
        Builtin::Len => Ty::Int.optional(),
        _ => Ty::Bool,
    };
    expr(ExprKind::Call { func, args }, ty)
}

/// An evaluator for outer values: `Lit`s, and `Local(n)` as `locals[n]`.
pub fn eval_locals(locals: Vec<Value>) -> impl FnMut(&Expr) -> Result<Value, RuntimeError> {
    move |e: &Expr| match &e.kind {
        ExprKind::Lit(v) => Ok(v.clone()),
        ExprKind::Local(LocalId(n)) => Ok(locals.get(*n as usize).cloned().unwrap_or(Value::Absent)),
        _ => Err(RuntimeError::new(Code::StoreFailure, "test evaluator: unsupported expression")),
    }
}
