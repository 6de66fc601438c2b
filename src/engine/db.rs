//! The SQLite store as the interpreter's [`Db`].

use crate::diag::RuntimeError;
use crate::interp::Db;
use crate::ir::{Expr, QueryKind};
use crate::store::Store;
use crate::types::EntityId;
use crate::value::{Row, Value};
use std::sync::Arc;

impl Db for Store {
    fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        Store::lookup(self, entity, key)
    }
    fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        Store::lookup_many(self, entity, keys)
    }
    fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError> {
        Store::related(self, entity, key, field)
    }
    fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&Expr>,
        eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        Store::query(self, kind, entity, filter, eval)
    }
    fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        Store::set_field(self, entity, key, field, path, value)
    }
    fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        Store::append(self, entity, key, field, path, value)
    }
    fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError> {
        Store::remove(self, entity, key, field, path)
    }
    fn notify(
        &self,
        rule: &str,
        event_key: &str,
        user_pk: &Value,
        severity: &str,
        body: &str,
    ) -> Result<(), RuntimeError> {
        Store::insert_notification(self, rule, event_key, user_pk, severity, body).map(|_| ())
    }
    fn send_email(
        &self,
        rule: &str,
        event_key: &str,
        to: &[String],
        cc: &[String],
        bcc: &[String],
        subject: &str,
        body: &str,
    ) -> Result<(), RuntimeError> {
        Store::insert_outbox(self, rule, event_key, to, cc, bcc, subject, body).map(|_| ())
    }
}
