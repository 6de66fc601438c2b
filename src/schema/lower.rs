//! Lowering schema items from parsed files into a [`Schema`], with the
//! schema's own diagnostics.
//!
//! Lowering never stops at the first problem: an unknown type becomes
//! [`Ty::Error`] (which fits everywhere, so nothing downstream reports it
//! again), a duplicate declaration is reported and the first one kept.

use super::{EntityDef, EventDef, FieldDef, RecordDef, Schema};
use crate::diag::{suggest, Code, Diagnostic};
use crate::span::Span;
use crate::syntax::ast;
use crate::types::{EntityId, RecordId, Ty};
use std::collections::HashMap;

/// Schema problems as plain data; [`SchemaError::to_diagnostic`] holds the prose.
#[derive(Debug, Clone)]
pub enum SchemaError {
    UnknownType {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    DuplicateField {
        span: Span,
        name: String,
        first: Span,
        owner: String,
    },
    ConflictingField {
        span: Span,
        name: String,
        common: Span,
        event: String,
    },
    DuplicateEvent {
        span: Span,
        name: String,
        first: Span,
    },
    DuplicateTypeName {
        span: Span,
        name: String,
        first: Option<Span>,
    },
    InvalidKeyType {
        span: Span,
        entity: String,
        found: String,
    },
    UnknownRecipient {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    DuplicateSchemaItem {
        span: Span,
        item: &'static str,
        first: Span,
    },
    /// `discriminator`: the item is the discriminator, not the identity.
    InvalidIdentity {
        span: Span,
        reason: String,
        discriminator: bool,
    },
    InvalidEntityField {
        span: Span,
        entity: String,
        field: String,
        found: String,
        help: String,
    },
    RecursiveType {
        span: Span,
        name: String,
    },
    MissingDiscriminator {
        span: Span,
    },
    EntityInEvent {
        span: Span,
        entity: String,
    },
    /// E0122: `time` names no required `timestamp` field of every event.
    InvalidTimeField {
        span: Span,
        reason: String,
        help: String,
    },
}

impl SchemaError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            SchemaError::UnknownType { span, name, suggestion } => {
                Diagnostic::new(Code::UnknownType, *span, format!("unknown type `{name}`"))
                    .with_label("not a type")
                    .with_help(match suggestion {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "use a built-in type (`bool`, `int`, `float`, `string`, `timestamp`, `uuid`, `any`), a `type` or an `entity`".into(),
                    })
            }
            SchemaError::DuplicateField { span, name, first, owner } => Diagnostic::new(
                Code::DuplicateField,
                *span,
                format!("field `{name}` is declared twice in {owner}"),
            )
            .with_label("declared again here")
            .with_secondary(*first, "first declared here")
            .with_help("remove one of the declarations or rename it"),
            SchemaError::ConflictingField { span, name, common, event } => Diagnostic::new(
                Code::DuplicateField,
                *span,
                format!("field `{name}` of event `{event}` conflicts with the same field of `event *`"),
            )
            .with_label("declared with a different type here")
            .with_secondary(*common, "declared for every event here")
            .with_help("give the field the same type as in `event *`, or use records so the two merge field by field"),
            SchemaError::DuplicateEvent { span, name, first } => {
                Diagnostic::new(Code::DuplicateEvent, *span, format!("event type `{name}` is declared twice"))
                    .with_label("declared again here")
                    .with_secondary(*first, "first declared here")
                    .with_help("merge the two declarations into one")
            }
            SchemaError::DuplicateTypeName { span, name, first } => {
                let d = Diagnostic::new(Code::DuplicateTypeName, *span, format!("the name `{name}` is already taken"))
                    .with_label("declared again here");
                match first {
                    Some(f) => d
                        .with_secondary(*f, "first declared here")
                        .with_help("types and entities share one namespace: rename one of them"),
                    None => d.with_help(format!("`{name}` is a built-in type: choose another name")),
                }
            }
            SchemaError::InvalidKeyType { span, entity, found } => Diagnostic::new(
                Code::InvalidKeyType,
                *span,
                format!("the key of entity `{entity}` cannot be of type `{found}`"),
            )
            .with_label("not a key type")
            .with_help("declare the key as `int`, `string` or `uuid`"),
            SchemaError::UnknownRecipient { span, name, suggestion } => {
                Diagnostic::new(Code::UnknownRecipient, *span, format!("`recipient` names `{name}`, which is not an entity"))
                    .with_label("no such entity")
                    .with_help(match suggestion {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "name an entity declared with `entity`, e.g. `recipient User`".into(),
                    })
            }
            SchemaError::DuplicateSchemaItem { span, item, first } => {
                Diagnostic::new(Code::DuplicateSchemaItem, *span, format!("`{item}` is declared twice"))
                    .with_label("declared again here")
                    .with_secondary(*first, "first declared here")
                    .with_help(format!("a schema has one `{item}`: remove one of them"))
            }
            SchemaError::InvalidIdentity { span, reason, discriminator } => {
                Diagnostic::new(Code::InvalidIdentity, *span, reason.clone()).with_label("here").with_help(
                    if *discriminator {
                        "declare the discriminator in `event *` as a required `string`"
                    } else {
                        "name a required `uuid`, `string` or `int` field of `event *`"
                    },
                )
            }
            SchemaError::InvalidEntityField { span, entity, field, found, help } => Diagnostic::new(
                Code::InvalidEntityField,
                *span,
                format!("field `{field}` of entity `{entity}` cannot be stored as `{found}`"),
            )
            .with_label("not a storable type")
            .with_help(help.clone()),
            SchemaError::RecursiveType { span, name } => {
                Diagnostic::new(Code::RecursiveType, *span, format!("type `{name}` requires a value of itself"))
                    .with_label("this field makes the type infinite")
                    .with_help("make the field optional (`?`) or a list")
            }
            SchemaError::MissingDiscriminator { span } => Diagnostic::new(
                Code::MissingDiscriminator,
                *span,
                "the schema declares event types but no `discriminator`",
            )
            .with_label("event type declared here")
            .with_help("add `discriminator FIELD` naming the event field that holds the event type"),
            SchemaError::InvalidTimeField { span, reason, help } => {
                Diagnostic::new(Code::InvalidTimeField, *span, reason.clone())
                    .with_label("not the event's time")
                    .with_help(help.clone())
            }
            SchemaError::EntityInEvent { span, entity } => Diagnostic::new(
                Code::EntityInEvent,
                *span,
                format!("entity `{entity}` cannot be the type of an event field"),
            )
            .with_label("events are JSON, not store rows")
            .with_help(format!(
                "declare the field with the key type of `{entity}` and look the row up in a guard: `{entity}[event.field]`"
            )),
        }
    }
}

const BUILTIN_TYPES: [&str; 7] = ["bool", "int", "float", "string", "timestamp", "uuid", "any"];

fn builtin(name: &str) -> Option<Ty> {
    Some(match name {
        "bool" => Ty::Bool,
        "int" => Ty::Int,
        "float" => Ty::Float,
        "string" => Ty::String,
        "timestamp" => Ty::Timestamp,
        "uuid" => Ty::Uuid,
        "any" => Ty::Any,
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Named {
    Record(RecordId),
    Entity(EntityId),
}

struct Lowerer {
    schema: Schema,
    errors: Vec<SchemaError>,
    names: HashMap<String, (Named, Span)>,
}

/// Build the schema from the schema items of `files`, in order. Policy
/// items are ignored here.
// `claim_name` reports a clash as it answers; keeping it out of match
// guards keeps that side effect visible.
#[allow(clippy::collapsible_match)]
pub fn lower(files: &[&ast::File]) -> (Schema, Vec<Diagnostic>) {
    let mut l = Lowerer { schema: Schema::default(), errors: Vec::new(), names: HashMap::new() };
    let items: Vec<&ast::Item> = files.iter().flat_map(|f| f.items.iter()).collect();

    // Pass 1: names, so types may be used before their declaration.
    let mut types: Vec<(&ast::TypeDecl, RecordId)> = Vec::new();
    let mut entities: Vec<(&ast::EntityDecl, EntityId)> = Vec::new();
    for item in &items {
        match item {
            ast::Item::Type(t) => {
                if l.claim_name(&t.name) {
                    let id = l.schema.add_record(RecordDef {
                        name: Some(t.name.name.clone()),
                        fields: vec![],
                        span: t.span,
                    });
                    l.schema.index_type(t.name.name.clone(), id);
                    l.names.insert(t.name.name.clone(), (Named::Record(id), t.name.span));
                    types.push((t, id));
                }
            }
            ast::Item::Entity(e) => {
                if l.claim_name(&e.name) {
                    let placeholder = FieldDef { name: String::new(), ty: Ty::Error, span: e.span };
                    let id = l.schema.add_entity(EntityDef {
                        name: e.name.name.clone(),
                        key: placeholder,
                        fields: vec![],
                        span: e.span,
                    });
                    l.names.insert(e.name.name.clone(), (Named::Entity(id), e.name.span));
                    entities.push((e, id));
                }
            }
            _ => {}
        }
    }

    // Pass 2: schema-level items.
    let mut discriminator: Option<&ast::Ident> = None;
    let mut identity: Option<(&Vec<ast::Ident>, Span)> = None;
    let mut recipient: Option<&ast::Ident> = None;
    let mut time: Option<&ast::Ident> = None;
    for item in &items {
        match item {
            ast::Item::Discriminator { field, span } => match discriminator {
                Some(first) => l.errors.push(SchemaError::DuplicateSchemaItem {
                    span: *span,
                    item: "discriminator",
                    first: first.span,
                }),
                None => discriminator = Some(field),
            },
            ast::Item::Identity { path, span } => match identity {
                Some((_, first)) => {
                    l.errors.push(SchemaError::DuplicateSchemaItem { span: *span, item: "identity", first })
                }
                None => identity = Some((path, *span)),
            },
            ast::Item::Recipient { entity, span } => match recipient {
                Some(first) => l.errors.push(SchemaError::DuplicateSchemaItem {
                    span: *span,
                    item: "recipient",
                    first: first.span,
                }),
                None => recipient = Some(entity),
            },
            ast::Item::Time { field, span } => match time {
                Some(first) => {
                    l.errors.push(SchemaError::DuplicateSchemaItem { span: *span, item: "time", first: first.span })
                }
                None => time = Some(field),
            },
            _ => {}
        }
    }

    // Pass 3: named records and entities.
    for (t, id) in &types {
        let fields = l.fields(&t.fields, &format!("type `{}`", t.name.name), false);
        l.schema.records[id.0 as usize].fields = fields;
    }
    for (t, id) in &types {
        l.check_recursion(t, *id);
    }
    for (e, id) in &entities {
        l.entity(e, *id);
    }

    // Pass 4: events. `event *` declarations merge; named events merge with them.
    let mut common_fields: Vec<FieldDef> = Vec::new();
    let mut first_event: Option<Span> = None;
    for item in &items {
        if let ast::Item::Event(ev) = item {
            if let ast::EventName::Common(_) = ev.name {
                let fields = l.fields(&ev.fields, "`event *`", true);
                l.merge_into(&mut common_fields, fields, None);
            }
        }
    }
    if let Some(d) = discriminator {
        match common_fields.iter().find(|f| f.name == d.name) {
            Some(f) if !Ty::String.fits(&f.ty) || f.ty.is_optional() => l.errors.push(SchemaError::InvalidIdentity {
                span: d.span,
                discriminator: true,
                reason: format!(
                    "the discriminator `{}` is declared as a field that is not a required `string`",
                    d.name
                ),
            }),
            Some(_) => {}
            None => common_fields.push(FieldDef { name: d.name.clone(), ty: Ty::String, span: d.span }),
        }
        l.schema.discriminator = Some(d.name.clone());
        l.schema.discriminator_span = Some(d.span);
    }
    let has_common = items.iter().any(|i| matches!(i, ast::Item::Event(_))) || discriminator.is_some();
    if has_common {
        let id = l.schema.add_record(RecordDef { name: None, fields: common_fields.clone(), span: Span::default() });
        l.schema.common = Some(id);
    }
    let mut seen: HashMap<String, Span> = HashMap::new();
    for item in &items {
        if let ast::Item::Event(ev) = item {
            let name = match &ev.name {
                ast::EventName::Common(_) => continue,
                ast::EventName::Named(n) => n,
            };
            first_event.get_or_insert(ev.span);
            if let Some(first) = seen.get(&name.name) {
                // Redeclaring an event in another file (a policy file over the
                // built-in schema, say) extends it field by field; within one
                // file it is a mistake.
                if first.file != name.span.file {
                    if let Some(idx) = l.schema.events.iter().position(|e| e.name == name.name) {
                        let own = l.fields(&ev.fields, &format!("event `{}`", name.name), true);
                        let mut merged = l.schema.record(l.schema.events[idx].record).fields.clone();
                        l.merge_into(&mut merged, own, Some(&name.name));
                        let record = l.schema.add_record(RecordDef { name: None, fields: merged, span: ev.span });
                        l.schema.events[idx].record = record;
                    }
                    continue;
                }
                l.errors.push(SchemaError::DuplicateEvent { span: name.span, name: name.name.clone(), first: *first });
                continue;
            }
            seen.insert(name.name.clone(), name.span);
            let own = l.fields(&ev.fields, &format!("event `{}`", name.name), true);
            let mut merged = common_fields.clone();
            l.merge_into(&mut merged, own, Some(&name.name));
            let record = l.schema.add_record(RecordDef { name: None, fields: merged, span: ev.span });
            l.schema.add_event(EventDef { name: name.name.clone(), record, span: ev.span });
        }
    }
    if let (Some(span), None) = (first_event, discriminator) {
        l.errors.push(SchemaError::MissingDiscriminator { span });
    }

    if let Some((path, span)) = identity {
        l.identity(path, span);
    }
    if let Some(t) = time {
        l.time(t);
    }
    if let Some(r) = recipient {
        match l.schema.entity_by_name(&r.name) {
            Some(id) => {
                l.schema.recipient = Some(id);
                l.schema.recipient_span = Some(r.span);
            }
            None => {
                let suggestion = suggest(&r.name, l.schema.entity_names());
                l.errors.push(SchemaError::UnknownRecipient { span: r.span, name: r.name.clone(), suggestion });
            }
        }
    }

    let diags = l.errors.iter().map(SchemaError::to_diagnostic).collect();
    (l.schema, diags)
}

impl Lowerer {
    /// Reserve a type/entity name; false (with a diagnostic) when taken.
    fn claim_name(&mut self, name: &ast::Ident) -> bool {
        if builtin(&name.name).is_some() {
            self.errors.push(SchemaError::DuplicateTypeName { span: name.span, name: name.name.clone(), first: None });
            return false;
        }
        if let Some((_, first)) = self.names.get(&name.name) {
            self.errors.push(SchemaError::DuplicateTypeName {
                span: name.span,
                name: name.name.clone(),
                first: Some(*first),
            });
            return false;
        }
        true
    }

    fn fields(&mut self, decls: &[ast::FieldDecl], owner: &str, in_event: bool) -> Vec<FieldDef> {
        let mut out: Vec<FieldDef> = Vec::new();
        for d in decls {
            let ty = self.ty(&d.ty, in_event);
            if let Some(first) = out.iter().find(|f| f.name == d.name.name) {
                self.errors.push(SchemaError::DuplicateField {
                    span: d.name.span,
                    name: d.name.name.clone(),
                    first: first.span,
                    owner: owner.to_string(),
                });
                continue;
            }
            out.push(FieldDef { name: d.name.name.clone(), ty, span: d.name.span });
        }
        out
    }

    fn ty(&mut self, t: &ast::TypeExpr, in_event: bool) -> Ty {
        match t {
            ast::TypeExpr::Named(n) => {
                if let Some(b) = builtin(&n.name) {
                    return b;
                }
                match self.names.get(&n.name) {
                    Some((Named::Record(r), _)) => Ty::Record(*r),
                    Some((Named::Entity(e), _)) => {
                        if in_event {
                            self.errors.push(SchemaError::EntityInEvent { span: n.span, entity: n.name.clone() });
                            Ty::Error
                        } else {
                            Ty::Entity(*e)
                        }
                    }
                    None => {
                        let candidates: Vec<&str> =
                            BUILTIN_TYPES.iter().copied().chain(self.names.keys().map(|k| k.as_str())).collect();
                        let suggestion = suggest(&n.name, candidates);
                        self.errors.push(SchemaError::UnknownType { span: n.span, name: n.name.clone(), suggestion });
                        Ty::Error
                    }
                }
            }
            ast::TypeExpr::Optional(inner, _) => self.ty(inner, in_event).optional(),
            ast::TypeExpr::List(inner, _) => self.ty(inner, in_event).list(),
            ast::TypeExpr::Record(fields, span) => {
                let fields = self.fields(fields, "this record", in_event);
                Ty::Record(self.schema.add_record(RecordDef { name: None, fields, span: *span }))
            }
        }
    }

    /// Merge `extra` into `into`: a field present in both merges field by
    /// field when both are records (the later declaration decides whether the
    /// merged field is optional); otherwise the types must agree.
    fn merge_into(&mut self, into: &mut Vec<FieldDef>, extra: Vec<FieldDef>, event: Option<&str>) {
        for f in extra {
            match into.iter().position(|g| g.name == f.name) {
                None => into.push(f),
                Some(i) => {
                    let existing = into[i].clone();
                    let merged = match (existing.ty.unwrap_optional(), f.ty.unwrap_optional()) {
                        (Ty::Record(a), Ty::Record(b)) => {
                            let mut fields = self.schema.record(*a).fields.clone();
                            let more = self.schema.record(*b).fields.clone();
                            self.merge_into(&mut fields, more, event);
                            let span = self.schema.record(*b).span;
                            let id = self.schema.add_record(RecordDef { name: None, fields, span });
                            let ty = Ty::Record(id);
                            Some(if f.ty.is_optional() { ty.optional() } else { ty })
                        }
                        _ if existing.ty == f.ty || f.ty.has_error() || existing.ty.has_error() => Some(f.ty.clone()),
                        _ => None,
                    };
                    match merged {
                        Some(ty) => into[i] = FieldDef { name: f.name, ty, span: f.span },
                        None => match event {
                            Some(ev) => self.errors.push(SchemaError::ConflictingField {
                                span: f.span,
                                name: f.name.clone(),
                                common: existing.span,
                                event: ev.to_string(),
                            }),
                            None => self.errors.push(SchemaError::DuplicateField {
                                span: f.span,
                                name: f.name.clone(),
                                first: existing.span,
                                owner: "`event *`".into(),
                            }),
                        },
                    }
                }
            }
        }
    }

    fn check_recursion(&mut self, t: &ast::TypeDecl, id: RecordId) {
        // Only a chain of required record fields back to the start is
        // infinite; optionals and lists end the chain.
        fn reaches(s: &Schema, from: RecordId, target: RecordId, seen: &mut Vec<RecordId>) -> bool {
            if seen.contains(&from) {
                return false;
            }
            seen.push(from);
            s.record(from).fields.iter().any(|f| match &f.ty {
                Ty::Record(r) => *r == target || reaches(s, *r, target, seen),
                _ => false,
            })
        }
        for f in &self.schema.record(id).fields {
            if let Ty::Record(r) = &f.ty {
                if *r == id || reaches(&self.schema, *r, id, &mut Vec::new()) {
                    self.errors.push(SchemaError::RecursiveType { span: f.span, name: t.name.name.clone() });
                    return;
                }
            }
        }
    }

    fn entity(&mut self, e: &ast::EntityDecl, id: EntityId) {
        let key_ty = self.ty(&e.key.ty, false);
        if !matches!(key_ty, Ty::Int | Ty::String | Ty::Uuid | Ty::Error) {
            let found = crate::types::TyDisplay { ty: &key_ty, schema: &self.schema }.to_string();
            self.errors.push(SchemaError::InvalidKeyType { span: e.key.ty.span(), entity: e.name.name.clone(), found });
        }
        let key = FieldDef { name: e.key.name.name.clone(), ty: key_ty, span: e.key.name.span };
        let owner = format!("entity `{}`", e.name.name);
        let mut fields = Vec::new();
        for d in &e.fields {
            if d.name.name == key.name {
                self.errors.push(SchemaError::DuplicateField {
                    span: d.name.span,
                    name: d.name.name.clone(),
                    first: key.span,
                    owner: owner.clone(),
                });
                continue;
            }
            if let Some(first) = fields.iter().find(|f: &&FieldDef| f.name == d.name.name) {
                self.errors.push(SchemaError::DuplicateField {
                    span: d.name.span,
                    name: d.name.name.clone(),
                    first: first.span,
                    owner: owner.clone(),
                });
                continue;
            }
            let ty = self.ty(&d.ty, false);
            let problem: Option<&str> = match &ty {
                t if t.has_error() => None,
                t if t.is_scalar() || *t == Ty::Any => None,
                Ty::Optional(inner) if inner.is_scalar() => None,
                Ty::List(inner) => match &**inner {
                    Ty::Entity(_) => None,
                    t if t.is_scalar() || *t == Ty::Any => None,
                    _ => Some("a list field holds scalars (stored as JSON) or entities (many-to-many)"),
                },
                Ty::Optional(inner) if matches!(**inner, Ty::List(_)) => {
                    Some("a list field cannot be optional: an empty list already means none")
                }
                Ty::Entity(_) => Some("store the related row's key (e.g. `int`), or use `[Entity]` for many-to-many"),
                _ => Some("use a scalar type, `any` (stored as JSON), a list of scalars or `[Entity]`"),
            };
            if let Some(help) = problem {
                let found = crate::types::TyDisplay { ty: &ty, schema: &self.schema }.to_string();
                self.errors.push(SchemaError::InvalidEntityField {
                    span: d.ty.span(),
                    entity: e.name.name.clone(),
                    field: d.name.name.clone(),
                    found,
                    help: help.to_string(),
                });
                fields.push(FieldDef { name: d.name.name.clone(), ty: Ty::Error, span: d.name.span });
                continue;
            }
            fields.push(FieldDef { name: d.name.name.clone(), ty, span: d.name.span });
        }
        let def = &mut self.schema.entities[id.0 as usize];
        def.key = key;
        def.fields = fields;
    }

    /// `time FIELD`: a required `timestamp` of `event *`, or, when `event *`
    /// does not have it, of every declared event type (then an event of an
    /// undeclared type has no time). Windows and throttles place events by
    /// it, so an event that may lack it would have no place.
    fn time(&mut self, field: &ast::Ident) {
        let name = field.name.as_str();
        let help = format!("declare `{name}: timestamp` in `event *`, or name the field that holds the event's time");
        let shown = |l: &Lowerer, ty: &Ty| crate::types::TyDisplay { ty, schema: &l.schema }.to_string();
        let Some(common) = self.schema.common else {
            self.errors.push(SchemaError::InvalidTimeField {
                span: field.span,
                reason: "`time` needs event fields, but the schema declares none".into(),
                help,
            });
            return;
        };
        match self.schema.record(common).field(name).map(|(_, f)| f.ty.clone()) {
            Some(Ty::Timestamp) => {}
            Some(ty) if ty.has_error() => return,
            Some(ty) => {
                let found = shown(self, &ty);
                let help = if ty.unwrap_optional() == &Ty::Timestamp {
                    format!("make it required (`{name}: timestamp`): every event needs a time")
                } else {
                    format!("the event's time is a `timestamp`; name another field, or declare `{name}` as one")
                };
                self.errors.push(SchemaError::InvalidTimeField {
                    span: field.span,
                    reason: format!("the time field `{name}` is `{found}`, not a required `timestamp`"),
                    help,
                });
                return;
            }
            None => {
                // Not common: every declared event type must have it.
                let mut missing = None;
                for ev in &self.schema.events {
                    match self.schema.record(ev.record).field(name).map(|(_, f)| f.ty.clone()) {
                        Some(Ty::Timestamp) => {}
                        Some(ty) if ty.has_error() => return,
                        other => {
                            missing = Some((ev.name.clone(), other));
                            break;
                        }
                    }
                }
                if self.schema.events.is_empty() {
                    missing = Some((String::new(), None));
                }
                if let Some((event, ty)) = missing {
                    let all: Vec<&str> = self
                        .schema
                        .events
                        .iter()
                        .flat_map(|e| self.schema.record(e.record).fields.iter().map(|f| f.name.as_str()))
                        .chain(self.schema.record(common).fields.iter().map(|f| f.name.as_str()))
                        .collect();
                    let suggestion = suggest(name, all);
                    let reason = match (&ty, event.is_empty()) {
                        (_, true) => format!("`time` names `{name}`, which is not a field of `event *`"),
                        (None, false) => format!("`time` names `{name}`, which event `{event}` does not have"),
                        (Some(t), false) => format!(
                            "the time field `{name}` is `{}` in event `{event}`, not a required `timestamp`",
                            shown(self, t)
                        ),
                    };
                    let help = match suggestion {
                        Some(s) if ty.is_none() => format!("did you mean `{s}`?"),
                        _ => help,
                    };
                    self.errors.push(SchemaError::InvalidTimeField { span: field.span, reason, help });
                    return;
                }
            }
        }
        self.schema.time = Some(name.to_string());
        self.schema.time_span = Some(field.span);
    }

    fn identity(&mut self, path: &[ast::Ident], span: Span) {
        let Some(common) = self.schema.common else {
            self.errors.push(SchemaError::InvalidIdentity {
                span,
                reason: "`identity` needs event fields, but the schema declares none".into(),
                discriminator: false,
            });
            return;
        };
        let segs: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
        match self.schema.path_type(common, &segs) {
            Ok(Ty::Uuid | Ty::String | Ty::Int) => {
                self.schema.identity = Some(segs.iter().map(|s| s.to_string()).collect());
                self.schema.identity_span = Some(span);
            }
            Ok(ty) if ty.has_error() => {}
            Ok(ty) => {
                let found = crate::types::TyDisplay { ty: &ty, schema: &self.schema }.to_string();
                self.errors.push(SchemaError::InvalidIdentity {
                    span: path.last().map(|i| i.span).unwrap_or(span),
                    reason: format!("the identity field must be a required `uuid`, `string` or `int`, not `{found}`"),
                    discriminator: false,
                });
            }
            Err(i) => self.errors.push(SchemaError::InvalidIdentity {
                span: path[i].span,
                reason: format!("`identity` names `{}`, which is not a field of `event *`", path[i].name),
                discriminator: false,
            }),
        }
    }
}
