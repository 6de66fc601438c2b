//! A `Db` over `store::pgent` on a real PostgreSQL database, for tests
//! that drive the interpreter against PostgreSQL entity tables: one
//! connection, one open transaction (the engine's shape: the operations
//! run inside the caller's transaction).
#![allow(dead_code)]

use herald::diag::RuntimeError;
use herald::interp::Db;
use herald::ir::{Expr, QueryKind};
use herald::schema::Schema;
use herald::store::pgent::{Mapping, PgEntities};
use herald::types::EntityId;
use herald::value::{Row, Value};
use std::cell::RefCell;
use std::sync::Arc;

pub struct PgDb {
    pub client: RefCell<postgres::Client>,
    pub ents: PgEntities,
}

impl PgDb {
    /// Herald's own mapping: creates the entity tables (committed), then
    /// opens the transaction the operations run in.
    pub fn herald(url: &str, schema: Arc<Schema>) -> PgDb {
        let map = Mapping::herald(&schema).expect("the schema maps");
        PgDb::with_mapping(url, schema, map)
    }

    pub fn with_mapping(url: &str, schema: Arc<Schema>, map: Mapping) -> PgDb {
        let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
        let ents = PgEntities::new(schema, map);
        client.batch_execute("BEGIN").unwrap();
        ents.create_tables(&mut client).expect("tables");
        client.batch_execute("COMMIT; BEGIN").unwrap();
        PgDb { client: RefCell::new(client), ents }
    }

    /// Commit what was written and open the next transaction.
    pub fn commit(&self) {
        self.client.borrow_mut().batch_execute("COMMIT; BEGIN").unwrap();
    }

    pub fn load(&self, json: &str) {
        let mut c = self.client.borrow_mut();
        self.ents
            .load_fixtures(&mut c, json, herald::store::LoadMode::Merge)
            .unwrap_or_else(|e| panic!("fixtures do not load on PostgreSQL: {e:?}\n{json}"));
        c.batch_execute("COMMIT; BEGIN").unwrap();
    }

    pub fn dump(&self) -> String {
        self.ents.dump_entities(&mut self.client.borrow_mut()).unwrap()
    }
}

impl Db for PgDb {
    fn lookup(&self, entity: EntityId, key: &Value) -> Result<Option<Arc<Row>>, RuntimeError> {
        self.ents.lookup(&mut self.client.borrow_mut(), entity, key)
    }
    fn lookup_many(&self, entity: EntityId, keys: &[Value]) -> Result<Vec<Arc<Row>>, RuntimeError> {
        self.ents.lookup_many(&mut self.client.borrow_mut(), entity, keys)
    }
    fn related(&self, entity: EntityId, key: &Value, field: usize) -> Result<Vec<Arc<Row>>, RuntimeError> {
        self.ents.related(&mut self.client.borrow_mut(), entity, key, field)
    }
    fn query(
        &self,
        kind: QueryKind,
        entity: EntityId,
        filter: Option<&Expr>,
        eval: &mut dyn FnMut(&Expr) -> Result<Value, RuntimeError>,
    ) -> Result<Value, RuntimeError> {
        // Outer values first: they may read the store (a nested query).
        let (sql, params) = self.ents.query_sql(kind, entity, filter, eval)?;
        self.ents.run_query(&mut self.client.borrow_mut(), kind, entity, &sql, &params)
    }
    fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        self.ents.set_field(&mut self.client.borrow_mut(), entity, key, field, path, value)
    }
    fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        self.ents.append(&mut self.client.borrow_mut(), entity, key, field, path, value)
    }
    fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError> {
        self.ents.remove(&mut self.client.borrow_mut(), entity, key, field, path)
    }
    fn upsert(&self, entity: EntityId, key: &Value, fields: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError> {
        self.ents.upsert(&mut self.client.borrow_mut(), entity, key, fields)
    }
    fn delete(&self, entity: EntityId, key: &Value) -> Result<bool, RuntimeError> {
        self.ents.delete(&mut self.client.borrow_mut(), entity, key)
    }
    fn link(&self, entity: EntityId, key: &Value, field: usize, target: &Value, add: bool) -> Result<(), RuntimeError> {
        self.ents.link(&mut self.client.borrow_mut(), entity, key, field, target, add)
    }
}
