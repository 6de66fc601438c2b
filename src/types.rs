//! Herald's static types.

use std::fmt;

/// Index of a record type in [`crate::schema::Schema::records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub u32);

/// Index of an entity in [`crate::schema::Schema::entities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId(pub u32);

/// Index of an event type in [`crate::schema::Schema::events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventTypeId(pub u32);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ty {
    /// The type of an expression that already produced a diagnostic. It is
    /// compatible with everything, so one mistake is reported once.
    Error,
    /// The element type of `[]`: compatible with every type.
    Never,
    /// The type of the `null` literal.
    Null,
    Bool,
    Int,
    Float,
    String,
    Timestamp,
    /// A length of time (`30s`, `t2 - t1`). Not a schema field type: JSON
    /// has no duration, so events and the store never hold one.
    Duration,
    Uuid,
    /// A dynamic JSON value; field access and conversions are checked at run time.
    Any,
    /// `T?`: may be absent or null. Never nested (`T??` is `T?`).
    Optional(Box<Ty>),
    List(Box<Ty>),
    Record(RecordId),
    Entity(EntityId),
}

impl Ty {
    /// `T?`, without nesting optionals; `any` and `null` already admit absence.
    pub fn optional(self) -> Ty {
        match self {
            Ty::Optional(_) | Ty::Error | Ty::Null | Ty::Any => self,
            t => Ty::Optional(Box::new(t)),
        }
    }

    pub fn list(self) -> Ty {
        Ty::List(Box::new(self))
    }

    /// The type with one level of optional removed.
    pub fn unwrap_optional(&self) -> &Ty {
        match self {
            Ty::Optional(t) => t,
            t => t,
        }
    }

    pub fn is_optional(&self) -> bool {
        matches!(self, Ty::Optional(_))
    }

    /// True for types whose values may be absent or null at run time.
    pub fn admits_absent(&self) -> bool {
        matches!(self, Ty::Optional(_) | Ty::Any | Ty::Null | Ty::Error)
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Ty::Error)
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    /// Scalars are the types a store column holds directly.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Ty::Bool | Ty::Int | Ty::Float | Ty::String | Ty::Timestamp | Ty::Uuid)
    }

    /// Does a value of type `self` fit where `expected` is required?
    /// `Error`, `Never` and `any` fit everywhere (any is checked at run time);
    /// `T` fits `T?`; `null` fits `T?`; `int` fits `float`.
    pub fn fits(&self, expected: &Ty) -> bool {
        use Ty::*;
        match (self, expected) {
            (Error, _) | (_, Error) | (Never, _) => true,
            (_, Any) => true,
            (Any, _) => true,
            (Null, Optional(_)) => true,
            (Optional(a), Optional(b)) => a.fits(b),
            (a, Optional(b)) => a.fits(b),
            (Int, Float) => true,
            (List(a), List(b)) => a.fits(b),
            (a, b) => a == b,
        }
    }

    /// Does the type mention `Error` anywhere? Diagnostics about such a
    /// type would be second-hand, so they are suppressed.
    pub fn has_error(&self) -> bool {
        match self {
            Ty::Error => true,
            Ty::Optional(t) | Ty::List(t) => t.has_error(),
            _ => false,
        }
    }
}

/// A type together with the names it refers to, for messages.
pub struct TyDisplay<'a> {
    pub ty: &'a Ty,
    pub schema: &'a crate::schema::Schema,
}

impl fmt::Display for TyDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            Ty::Error => f.write_str("{unknown}"),
            Ty::Never => f.write_str("nothing"),
            Ty::Null => f.write_str("null"),
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Float => f.write_str("float"),
            Ty::String => f.write_str("string"),
            Ty::Timestamp => f.write_str("timestamp"),
            Ty::Duration => f.write_str("duration"),
            Ty::Uuid => f.write_str("uuid"),
            Ty::Any => f.write_str("any"),
            Ty::Optional(t) => write!(f, "{}?", TyDisplay { ty: t, schema: self.schema }),
            Ty::List(t) => write!(f, "[{}]", TyDisplay { ty: t, schema: self.schema }),
            Ty::Record(r) => {
                let rec = self.schema.record(*r);
                match &rec.name {
                    Some(n) => f.write_str(n),
                    None => {
                        f.write_str("{ ")?;
                        for (i, fd) in rec.fields.iter().enumerate() {
                            if i > 0 {
                                f.write_str(", ")?;
                            }
                            if i == 3 {
                                f.write_str("...")?;
                                break;
                            }
                            write!(f, "{}: {}", fd.name, TyDisplay { ty: &fd.ty, schema: self.schema })?;
                        }
                        f.write_str(" }")
                    }
                }
            }
            Ty::Entity(e) => f.write_str(&self.schema.entity(*e).name),
        }
    }
}
