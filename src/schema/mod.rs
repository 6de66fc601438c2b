//! The event schema: event types, named records and store entities.
//!
//! A [`Schema`] is built by [`lower`] from the schema items of one or more
//! parsed files (the built-in `authentik` schema, a `--schema` file, and
//! schema items in policy files). It is pure data; the checker, the decoder
//! and the store all read it.

pub mod builtin;
pub mod lower;

pub use lower::{lower, SchemaError};

use crate::span::Span;
use crate::types::{EntityId, EventTypeId, RecordId, Ty};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub ty: Ty,
    pub span: Span,
}

/// A record type: a named `type`, an inline `{ ... }`, or an event type's
/// merged field set.
#[derive(Debug, Clone)]
pub struct RecordDef {
    /// `Some` for named `type`s, `None` for inline records and events.
    pub name: Option<String>,
    pub fields: Vec<FieldDef>,
    pub span: Span,
}

impl RecordDef {
    pub fn field(&self, name: &str) -> Option<(usize, &FieldDef)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct EventDef {
    pub name: String,
    /// The event's fields, with the fields of `event *` merged in and the
    /// discriminator field added as `string`.
    pub record: RecordId,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct EntityDef {
    pub name: String,
    pub key: FieldDef,
    /// Non-key fields. `[Entity]` fields are many-to-many (join tables).
    pub fields: Vec<FieldDef>,
    pub span: Span,
}

impl EntityDef {
    pub fn field(&self, name: &str) -> Option<(usize, &FieldDef)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }

    /// The target entity when field `idx` is a many-to-many field.
    pub fn many_to_many(&self, idx: usize) -> Option<EntityId> {
        match &self.fields[idx].ty {
            Ty::List(inner) => match **inner {
                Ty::Entity(e) => Some(e),
                _ => None,
            },
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The top-level event field naming the event type.
    pub discriminator: Option<String>,
    pub discriminator_span: Option<Span>,
    /// The path of the event's unique id; `None` means a hash of the raw line.
    pub identity: Option<Vec<String>>,
    pub identity_span: Option<Span>,
    pub recipient: Option<EntityId>,
    pub recipient_span: Option<Span>,
    /// The top-level event field that is the event's time (`time created`):
    /// a required `timestamp` of every declared event type. Windows,
    /// throttles and sequences place events by it, never by the wall clock.
    pub time: Option<String>,
    pub time_span: Option<Span>,
    pub records: Vec<RecordDef>,
    pub events: Vec<EventDef>,
    /// The record of `event *` plus the discriminator: the fields every event
    /// has, and the type of events whose type the schema does not declare.
    pub common: Option<RecordId>,
    pub entities: Vec<EntityDef>,
    event_index: HashMap<String, EventTypeId>,
    entity_index: HashMap<String, EntityId>,
    /// Named records (`type`) by name.
    type_index: HashMap<String, RecordId>,
}

impl Schema {
    pub fn record(&self, id: RecordId) -> &RecordDef {
        &self.records[id.0 as usize]
    }

    pub fn entity(&self, id: EntityId) -> &EntityDef {
        &self.entities[id.0 as usize]
    }

    pub fn event(&self, id: EventTypeId) -> &EventDef {
        &self.events[id.0 as usize]
    }

    pub fn event_by_name(&self, name: &str) -> Option<EventTypeId> {
        self.event_index.get(name).copied()
    }

    pub fn entity_by_name(&self, name: &str) -> Option<EntityId> {
        self.entity_index.get(name).copied()
    }

    pub fn type_by_name(&self, name: &str) -> Option<RecordId> {
        self.type_index.get(name).copied()
    }

    pub fn event_ids(&self) -> impl Iterator<Item = EventTypeId> {
        (0..self.events.len() as u32).map(EventTypeId)
    }

    pub fn entity_ids(&self) -> impl Iterator<Item = EntityId> {
        (0..self.entities.len() as u32).map(EntityId)
    }

    /// The record describing an event of type `ty`, or of an undeclared type
    /// (`None`): the common fields.
    pub fn event_record(&self, ty: Option<EventTypeId>) -> Option<RecordId> {
        match ty {
            Some(t) => Some(self.event(t).record),
            None => self.common,
        }
    }

    /// The declared type of a static field path inside a record, following
    /// records and optionals; once the path enters `any`, the rest is `any`.
    /// Optionality anywhere along the path makes the result optional.
    /// Returns `Err(i)` when segment `i` names no field.
    pub fn path_type(&self, record: RecordId, path: &[&str]) -> Result<Ty, usize> {
        let mut ty = Ty::Record(record);
        let mut optional = false;
        for (i, seg) in path.iter().enumerate() {
            if ty.is_optional() {
                optional = true;
            }
            match ty.unwrap_optional() {
                Ty::Any => return Ok(Ty::Any),
                Ty::Record(r) => match self.record(*r).field(seg) {
                    Some((_, f)) => ty = f.ty.clone(),
                    None => return Err(i),
                },
                _ => return Err(i),
            }
        }
        Ok(if optional { ty.optional() } else { ty })
    }

    pub(crate) fn add_record(&mut self, rec: RecordDef) -> RecordId {
        self.records.push(rec);
        RecordId(self.records.len() as u32 - 1)
    }

    pub(crate) fn index_type(&mut self, name: String, id: RecordId) {
        self.type_index.insert(name, id);
    }

    pub(crate) fn add_event(&mut self, ev: EventDef) -> EventTypeId {
        let id = EventTypeId(self.events.len() as u32);
        self.event_index.insert(ev.name.clone(), id);
        self.events.push(ev);
        id
    }

    /// Adds an entity (for programs and tests that build a schema by hand).
    pub fn add_entity(&mut self, en: EntityDef) -> EntityId {
        let id = EntityId(self.entities.len() as u32);
        self.entity_index.insert(en.name.clone(), id);
        self.entities.push(en);
        id
    }

    /// Names of all event types, for "did you mean".
    pub fn event_names(&self) -> impl Iterator<Item = &str> {
        self.events.iter().map(|e| e.name.as_str())
    }

    pub fn entity_names(&self) -> impl Iterator<Item = &str> {
        self.entities.iter().map(|e| e.name.as_str())
    }
}
