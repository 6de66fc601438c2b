//! Typed writes: `set`, `append`, `remove` on entity rows; `upsert` and
//! `delete` of whole rows; `add`/`remove … from` of many-to-many links.
//!
//! Each write returns the column's new value (as a read would give it) so
//! the caller can refresh its row snapshot; many-to-many fields return
//! `Absent` (they are read with `related`). Errors: R0001 for a value of
//! the wrong type (or a path through a non-object), R0002 for an absent
//! value in a required column, R0005 when SQLite fails or the row is gone.

use super::convert::{describe, json_to_scalar, json_to_value, scalar_to_json, scalar_to_sql, sql_to_scalar};
use super::filter::ColKind;
use super::{sql_err, EntityInfo, FieldInfo, JoinInfo, Store};
use crate::diag::{Code, RuntimeError};
use crate::types::EntityId;
use crate::value::{Row, Value};
use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::Value as J;
use std::sync::Arc;

fn place(info: &EntityInfo, f: &FieldInfo, path: &[String]) -> String {
    let mut s = format!("{}.{}", info.name, f.name);
    for p in path {
        s.push('.');
        s.push_str(p);
    }
    s
}

fn dyn_err(msg: String) -> RuntimeError {
    RuntimeError::new(Code::DynamicType, msg)
}

pub(in crate::store) fn json_kind(j: &J) -> &'static str {
    match j {
        J::Null => "null",
        J::Bool(_) => "a bool",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "an object",
    }
}

/// Walk `path` from `root`, creating missing (or null) intermediate
/// objects, and return the slot's parent object and the last key.
/// `Err(i)`: segment `i` is neither absent, null nor an object.
pub(in crate::store) fn walk_create<'j>(
    root: &'j mut J,
    path: &[String],
) -> Result<&'j mut serde_json::Map<String, J>, (usize, &'static str)> {
    let mut cur = root;
    for (i, seg) in path.iter().enumerate() {
        if cur.is_null() {
            *cur = J::Object(serde_json::Map::new());
        }
        let kind = json_kind(cur);
        let J::Object(map) = cur else { return Err((i, kind)) };
        if i + 1 == path.len() {
            return Ok(map);
        }
        cur = map.entry(seg.clone()).or_insert(J::Null);
    }
    unreachable!("walk_create needs a non-empty path")
}

/// Appends to one place (a row's list, or a list at a path inside its
/// `any` column) held in memory until [`Store::flush_append`].
#[derive(Debug)]
pub struct PendingAppend {
    entity: EntityId,
    field: usize,
    path: Vec<String>,
    key: Value,
    k: Sql,
    /// The column's JSON with every appended element in place.
    root: J,
    /// `root` as a read of the column gives it, kept in step.
    value: Value,
}

/// Push `elem` onto the list at `path` inside `v` (objects in source
/// order; a repeated key means its last occurrence, as a JSON read keeps).
/// `false` when `v` has no list there.
fn push_value(v: &mut Value, path: &[String], elem: Value) -> bool {
    let mut cur = v;
    for seg in path {
        let Value::Object(fields) = cur else { return false };
        match std::sync::Arc::make_mut(fields).iter_mut().rev().find(|(k, _)| **k == **seg) {
            Some((_, next)) => cur = next,
            None => return false,
        }
    }
    match cur {
        Value::List(items) => {
            std::sync::Arc::make_mut(items).push(elem);
            true
        }
        _ => false,
    }
}

impl Store {
    /// The key of a row being written; the row must exist.
    fn write_key(&self, info: &EntityInfo, key: &Value) -> Result<Sql, RuntimeError> {
        match self.key_sql(info, key)? {
            Some(k) => Ok(k),
            None => Err(RuntimeError::new(Code::RequiredAbsent, format!("no key to write a `{}` row", info.name))),
        }
    }

    fn no_row(info: &EntityInfo, key: &Value) -> RuntimeError {
        RuntimeError::new(
            Code::StoreFailure,
            format!("no `{}` row with {} {}", info.name, info.key_name, key.to_text(None)),
        )
    }

    /// The current JSON of an `any`/list column (`Null` for SQL NULL).
    fn read_json(&self, info: &EntityInfo, f: &FieldInfo, k: &Sql, key: &Value) -> Result<J, RuntimeError> {
        let sql = format!("SELECT {} FROM {} WHERE {} = ?1", f.col, info.table, info.key_col);
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        let mut rows = st.query([k]).map_err(sql_err)?;
        let Some(r) = rows.next().map_err(sql_err)? else { return Err(Store::no_row(info, key)) };
        match r.get_ref(0).map_err(sql_err)? {
            ValueRef::Null => Ok(J::Null),
            ValueRef::Text(t) | ValueRef::Blob(t) => Ok(serde_json::from_slice(t).unwrap_or(J::Null)),
            ValueRef::Integer(i) => Ok(J::from(i)),
            ValueRef::Real(x) => Ok(serde_json::Number::from_f64(x).map(J::Number).unwrap_or(J::Null)),
        }
    }

    fn write_col(&self, info: &EntityInfo, f: &FieldInfo, k: &Sql, key: &Value, v: Sql) -> Result<(), RuntimeError> {
        let sql = format!("UPDATE {} SET {} = ?1 WHERE {} = ?2", info.table, f.col, info.key_col);
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        let n = st.execute(rusqlite::params![v, k]).map_err(sql_err)?;
        if n == 0 {
            return Err(Store::no_row(info, key));
        }
        Ok(())
    }

    fn write_json(&self, info: &EntityInfo, f: &FieldInfo, k: &Sql, key: &Value, j: &J) -> Result<Value, RuntimeError> {
        let v = if j.is_null() { Sql::Null } else { Sql::Text(j.to_string()) };
        self.write_col(info, f, k, key, v)?;
        Ok(json_to_value(j, f.kind))
    }

    /// Run `f` atomically: inside the caller's transaction, or in a
    /// savepoint of its own when none is open.
    fn atomically<T>(&self, f: impl FnOnce() -> Result<T, RuntimeError>) -> Result<T, RuntimeError> {
        if self.in_transaction() {
            return f();
        }
        self.savepoint("herald_write")?;
        match f() {
            Ok(v) => {
                self.release("herald_write")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.rollback_to("herald_write");
                Err(e)
            }
        }
    }

    fn target_key(&self, j: &JoinInfo, v: &Value, what: &str) -> Result<Sql, RuntimeError> {
        let t = self.ent(j.target)?;
        match self.key_sql(t, v)? {
            Some(k) => Ok(k),
            None => Err(RuntimeError::new(Code::RequiredAbsent, format!("{what}: no `{}` key", t.name))),
        }
    }

    fn insert_join(&self, j: &JoinInfo, src: &Sql, target: &Sql) -> Result<(), RuntimeError> {
        let sql = format!("INSERT INTO {} (\"source\", \"target\") VALUES (?1, ?2) ON CONFLICT DO NOTHING", j.table);
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        st.execute([src, target]).map_err(sql_err)?;
        Ok(())
    }

    fn clear_join(&self, j: &JoinInfo, src: &Sql) -> Result<(), RuntimeError> {
        let sql = format!("DELETE FROM {} WHERE \"source\" = ?1", j.table);
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        st.execute([src]).map_err(sql_err)?;
        Ok(())
    }

    fn check_exists(&self, info: &EntityInfo, k: &Sql, key: &Value) -> Result<(), RuntimeError> {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {} WHERE {} = ?1)", info.table, info.key_col);
        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
        let found: bool = st.query_row([k], |r| r.get(0)).map_err(sql_err)?;
        if found {
            Ok(())
        } else {
            Err(Store::no_row(info, key))
        }
    }

    /// `set row.field[.path] = value`. A whole column is converted to its
    /// declared type (int fits float; a string fits uuid and timestamp
    /// when it parses; anything fits `any`); absent or null empties an
    /// optional column and is R0002 for a required one. A path inside an
    /// `any` column creates missing objects on the way; absent removes the
    /// key. A many-to-many field takes a list of keys or rows.
    pub fn set_field(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        let info = self.ent(entity)?;
        let f = info.field(field)?;
        let k = self.write_key(info, key)?;
        let at = place(info, f, path);
        if let Some(j) = &f.join {
            if !path.is_empty() {
                return Err(dyn_err(format!("`{at}`: a many-to-many field has no fields inside")));
            }
            let targets = match value {
                Value::Absent | Value::Null => Vec::new(),
                Value::List(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.target_key(j, v, &format!("`{at}[{i}]`")))
                    .collect::<Result<Vec<_>, _>>()?,
                v => return Err(dyn_err(format!("`{at}` takes a list of keys, not {}", describe(v)))),
            };
            return self.atomically(|| {
                self.check_exists(info, &k, key)?;
                self.clear_join(j, &k)?;
                for t in &targets {
                    self.insert_join(j, &k, t)?;
                }
                Ok(Value::Absent)
            });
        }
        if !path.is_empty() {
            if f.kind != ColKind::Any {
                return Err(dyn_err(format!(
                    "`{}.{}` is not an `any` field; it has no fields inside",
                    info.name, f.name
                )));
            }
            return self.atomically(|| {
                let mut root = self.read_json(info, f, &k, key)?;
                let new = match value {
                    Value::Absent => None,
                    v => Some(v.to_json(Some(&self.schema))),
                };
                if new.is_none() && root.is_null() {
                    return Ok(Value::Null);
                }
                match walk_create(&mut root, path) {
                    Ok(map) => {
                        let last = &path[path.len() - 1];
                        match new {
                            Some(v) => {
                                map.insert(last.clone(), v);
                            }
                            None => {
                                map.shift_remove(last);
                            }
                        }
                    }
                    Err((i, kind)) => {
                        return Err(dyn_err(format!(
                            "`{}` is {kind}, not an object; cannot set `{}` inside it",
                            place(info, f, &path[..i]),
                            path[i]
                        )))
                    }
                }
                self.write_json(info, f, &k, key, &root)
            });
        }
        let (sql, new) = self.column_value(info, f, value, &at)?;
        self.write_col(info, f, &k, key, sql)?;
        Ok(new)
    }

    /// A whole-column value: its SQL form and its value as read back.
    fn column_value(
        &self,
        info: &EntityInfo,
        f: &FieldInfo,
        value: &Value,
        at: &str,
    ) -> Result<(Sql, Value), RuntimeError> {
        if value.is_nullish() {
            if f.required {
                return Err(RuntimeError::new(
                    Code::RequiredAbsent,
                    format!("`{at}` is required; it cannot be set to {}", describe(value)),
                ));
            }
            return Ok((Sql::Null, Value::Null));
        }
        let _ = info;
        match f.kind {
            ColKind::Scalar(s) => match scalar_to_sql(value, s) {
                Some(sql) => {
                    let new = sql_to_scalar(ValueRef::from(&sql), s);
                    Ok((sql, new))
                }
                None => Err(dyn_err(format!("`{at}` is {}; cannot set it to {}", s.name(), describe(value)))),
            },
            ColKind::Any => {
                let j = value.to_json(Some(&self.schema));
                let new = json_to_value(&j, f.kind);
                Ok((if j.is_null() { Sql::Null } else { Sql::Text(j.to_string()) }, new))
            }
            ColKind::List(el) => {
                let Value::List(items) = value else {
                    return Err(dyn_err(format!("`{at}` is a list; cannot set it to {}", describe(value))));
                };
                let mut arr = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    arr.push(self.list_elem(el, v, || format!("{at}[{i}]"))?);
                }
                let j = J::Array(arr);
                let new = json_to_value(&j, f.kind);
                Ok((Sql::Text(j.to_string()), new))
            }
            ColKind::ManyToMany(_) => unreachable!("many-to-many fields have no column"),
        }
    }

    /// `at` names the place for an error message (built only then).
    fn list_elem(
        &self,
        el: Option<super::filter::Scalar>,
        v: &Value,
        at: impl FnOnce() -> String,
    ) -> Result<J, RuntimeError> {
        match el {
            Some(s) => scalar_to_json(v, s)
                .ok_or_else(|| dyn_err(format!("`{}`: expected {}, found {}", at(), s.name(), describe(v)))),
            None => Ok(v.to_json(Some(&self.schema))),
        }
    }

    /// `append value to row.field[.path]`: push onto the list there,
    /// creating it (and missing objects on the way) when absent; R0001 when
    /// something other than a list is there. Appending an absent value
    /// changes nothing. A many-to-many field takes a key or a row.
    ///
    /// This writes at once (one read and one write of the whole column per
    /// call); the engine uses [`Store::append_buffered`] instead.
    pub fn append(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        self.atomically(|| {
            let mut buf = None;
            let new = self.append_buffered(&mut buf, entity, key, field, path, value)?;
            self.flush_append(&mut buf)?;
            Ok(new)
        })
    }

    /// `append`, keeping a run of appends to the same place in `buf`
    /// instead of rewriting the column each time: each append to the place
    /// `buf` holds costs one push, so a loop of n appends is linear, not
    /// quadratic (issue 13: 20,000 appends in one event took 85 s). Returns
    /// the column's new value as a read after [`Store::flush_append`] would
    /// give it. Appending to another place flushes `buf` first; the caller
    /// must flush it before anything else reads or writes the store, and
    /// may drop it unflushed to discard the appends (a failed rule).
    pub fn append_buffered(
        &self,
        buf: &mut Option<PendingAppend>,
        entity: EntityId,
        key: &Value,
        field: usize,
        path: &[String],
        value: &Value,
    ) -> Result<Value, RuntimeError> {
        let info = self.ent(entity)?;
        let f = info.field(field)?;
        let k = self.write_key(info, key)?;
        // The place's name is for error messages: built only for one (the
        // success path runs once per appended item).
        let at = || place(info, f, path);
        if let Some(j) = &f.join {
            self.flush_append(buf)?;
            if !path.is_empty() {
                return Err(dyn_err(format!("`{}`: a many-to-many field has no fields inside", at())));
            }
            if value.is_nullish() {
                return Ok(Value::Absent);
            }
            let t = self.target_key(j, value, &format!("`{}`", at()))?;
            return self.atomically(|| {
                self.check_exists(info, &k, key)?;
                self.insert_join(j, &k, &t)?;
                Ok(Value::Absent)
            });
        }
        let el = match f.kind {
            ColKind::List(el) if path.is_empty() => el,
            ColKind::Any => None,
            ColKind::List(_) => {
                return Err(dyn_err(format!(
                    "`{}.{}` is not an `any` field; it has no fields inside",
                    info.name, f.name
                )))
            }
            _ => return Err(dyn_err(format!("`{}` is not a list; cannot append to it", at()))),
        };
        let same = buf.as_ref().is_some_and(|b| b.entity == entity && b.field == field && b.path == path && b.k == k);
        if !same {
            self.flush_append(buf)?;
            let mut root = self.read_json(info, f, &k, key)?;
            if matches!(value, Value::Absent) {
                return Ok(json_to_value(&root, f.kind));
            }
            let elem = self.list_elem(el, value, || format!("{}[]", at()))?;
            let slot: &mut J = if path.is_empty() {
                &mut root
            } else {
                match walk_create(&mut root, path) {
                    Ok(map) => map.entry(path[path.len() - 1].clone()).or_insert(J::Null),
                    Err((i, kind)) => {
                        return Err(dyn_err(format!(
                            "`{}` is {kind}, not an object; cannot append inside it",
                            place(info, f, &path[..i])
                        )))
                    }
                }
            };
            match slot {
                J::Null => *slot = J::Array(vec![elem]),
                J::Array(items) => items.push(elem),
                other => {
                    return Err(dyn_err(format!("`{}` is {}, not a list; cannot append to it", at(), json_kind(other))))
                }
            }
            let value = json_to_value(&root, f.kind);
            *buf = Some(PendingAppend { entity, field, path: path.to_vec(), key: key.clone(), k, root, value });
            return Ok(buf.as_ref().map_or(Value::Absent, |b| b.value.clone()));
        }
        let Some(b) = buf.as_mut() else { return Ok(Value::Absent) };
        if matches!(value, Value::Absent) {
            return Ok(b.value.clone());
        }
        let elem = self.list_elem(el, value, || format!("{}[]", at()))?;
        let elem_value = match el {
            Some(s) => json_to_scalar(&elem, s).unwrap_or_else(|| Value::from_json(&elem)),
            None => Value::from_json(&elem),
        };
        // The buffer began with a list at `path` (created if need be).
        let mut list = Some(&mut b.root);
        for seg in path {
            list = list.and_then(|j| j.get_mut(seg.as_str()));
        }
        let Some(J::Array(items)) = list else {
            return Err(dyn_err(format!("`{}` is not a list; cannot append to it", at())));
        };
        items.push(elem);
        // The value is extended in place: the caller holds no other
        // reference to it (the interpreter drops its snapshot's copy before
        // appending), so `make_mut` copies nothing.
        if !push_value(&mut b.value, path, elem_value) {
            b.value = json_to_value(&b.root, f.kind);
        }
        Ok(b.value.clone())
    }

    /// Write the appends `buf` holds (if any) to their column.
    pub fn flush_append(&self, buf: &mut Option<PendingAppend>) -> Result<(), RuntimeError> {
        let Some(b) = buf.take() else { return Ok(()) };
        let info = self.ent(b.entity)?;
        let f = info.field(b.field)?;
        let sql = if b.root.is_null() { Sql::Null } else { Sql::Text(b.root.to_string()) };
        self.atomically(|| self.write_col(info, f, &b.k, &b.key, sql))
    }

    /// `remove row.field[.path]`: empty an optional column (R0002 for a
    /// required one), clear a many-to-many field, or delete the key at a
    /// path inside an `any` column (nothing happens when it is not there).
    pub fn remove(&self, entity: EntityId, key: &Value, field: usize, path: &[String]) -> Result<Value, RuntimeError> {
        let info = self.ent(entity)?;
        let f = info.field(field)?;
        let k = self.write_key(info, key)?;
        let at = place(info, f, path);
        if let Some(j) = &f.join {
            if !path.is_empty() {
                return Err(dyn_err(format!("`{at}`: a many-to-many field has no fields inside")));
            }
            return self.atomically(|| {
                self.check_exists(info, &k, key)?;
                self.clear_join(j, &k)?;
                Ok(Value::Absent)
            });
        }
        if path.is_empty() {
            if f.required {
                return Err(RuntimeError::new(
                    Code::RequiredAbsent,
                    format!("`{at}` is required; it cannot be removed"),
                ));
            }
            self.write_col(info, f, &k, key, Sql::Null)?;
            return Ok(Value::Null);
        }
        if f.kind != ColKind::Any {
            return Err(dyn_err(format!("`{}.{}` is not an `any` field; it has no fields inside", info.name, f.name)));
        }
        self.atomically(|| {
            let mut root = self.read_json(info, f, &k, key)?;
            let mut cur = &mut root;
            for seg in &path[..path.len() - 1] {
                match cur.get_mut(seg.as_str()) {
                    Some(next) if next.is_object() => cur = next,
                    _ => return Ok(json_to_value(&root, f.kind)),
                }
            }
            let removed = match cur {
                J::Object(map) => map.shift_remove(&path[path.len() - 1]).is_some(),
                _ => false,
            };
            if removed {
                self.write_json(info, f, &k, key, &root)
            } else {
                Ok(json_to_value(&root, f.kind))
            }
        })
    }

    /// `upsert E[key] { ... }`: update the given columns of the row with
    /// `key`, or insert it with them when there is none. Each value replaces
    /// its column exactly as `set` would (an `any` field is not merged: that
    /// is `db load`'s job); an omitted column keeps its value on update and
    /// is NULL on insert, so inserting without a required column is R0002.
    /// An absent key is R0002. Returns the row as now stored.
    pub fn upsert(&self, entity: EntityId, key: &Value, fields: &[(usize, Value)]) -> Result<Arc<Row>, RuntimeError> {
        let info = self.ent(entity)?;
        let k = self.write_key(info, key)?;
        let mut cols = Vec::with_capacity(fields.len());
        let mut vals = Vec::with_capacity(fields.len() + 1);
        for (i, v) in fields {
            let f = info.field(*i)?;
            if f.join.is_some() {
                // The checker refuses this (E0418); a hand-built program
                // gets an error, not a silently ignored field.
                return Err(dyn_err(format!("`upsert` cannot set the many-to-many field `{}.{}`", info.name, f.name)));
            }
            let (sql, _) = self.column_value(info, f, v, &format!("{}.{}", info.name, f.name))?;
            cols.push(f.col.as_str());
            vals.push(sql);
        }
        self.atomically(|| {
            let exists = {
                let sql = format!("SELECT EXISTS (SELECT 1 FROM {} WHERE {} = ?1)", info.table, info.key_col);
                let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
                st.query_row([&k], |r| r.get::<_, bool>(0)).map_err(sql_err)?
            };
            if exists {
                if !cols.is_empty() {
                    let set: Vec<String> = cols.iter().enumerate().map(|(n, c)| format!("{c} = ?{}", n + 1)).collect();
                    let sql = format!(
                        "UPDATE {} SET {} WHERE {} = ?{}",
                        info.table,
                        set.join(", "),
                        info.key_col,
                        cols.len() + 1
                    );
                    let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
                    let params = vals.iter().chain(std::iter::once(&k));
                    st.execute(rusqlite::params_from_iter(params)).map_err(sql_err)?;
                }
            } else {
                let given: Vec<usize> = fields.iter().map(|(i, _)| *i).collect();
                let missing: Vec<&str> = info
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| f.required && !given.contains(i))
                    .map(|(_, f)| f.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    let list = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
                    return Err(RuntimeError::new(
                        Code::RequiredAbsent,
                        format!(
                            "`upsert` cannot create the `{}` row with {} {}: required field{} {list} not given",
                            info.name,
                            info.key_name,
                            key.to_text(None),
                            if missing.len() == 1 { "" } else { "s" }
                        ),
                    ));
                }
                let mut names = vec![info.key_col.as_str()];
                names.extend(cols.iter().copied());
                let marks: Vec<String> = (1..=names.len()).map(|n| format!("?{n}")).collect();
                let sql = format!("INSERT INTO {} ({}) VALUES ({})", info.table, names.join(", "), marks.join(", "));
                let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
                let params = std::iter::once(&k).chain(vals.iter());
                st.execute(rusqlite::params_from_iter(params)).map_err(sql_err)?;
            }
            self.lookup(entity, key)?.ok_or_else(|| Store::no_row(info, key))
        })
    }

    /// `delete E[key]`: remove the row and every many-to-many link from it
    /// (its own join tables) and to it (other entities' join tables that
    /// target its entity), so a row created later with the same key starts
    /// with no links. `false` when there was no row; an absent key deletes
    /// nothing.
    pub fn delete(&self, entity: EntityId, key: &Value) -> Result<bool, RuntimeError> {
        let info = self.ent(entity)?;
        let Some(k) = self.key_sql(info, key)? else { return Ok(false) };
        self.atomically(|| {
            for other in &self.ents {
                for f in &other.fields {
                    let Some(j) = &f.join else { continue };
                    if other.id == entity {
                        self.clear_join(j, &k)?;
                    }
                    if j.target == entity {
                        let sql = format!("DELETE FROM {} WHERE \"target\" = ?1", j.table);
                        let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
                        st.execute([&k]).map_err(sql_err)?;
                    }
                }
            }
            let sql = format!("DELETE FROM {} WHERE {} = ?1", info.table, info.key_col);
            let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
            Ok(st.execute([&k]).map_err(sql_err)? > 0)
        })
    }

    /// `add target to row.field` (`add`) or `remove target from row.field`:
    /// insert or delete one link of a many-to-many field. The row must exist
    /// (R0005); the target is a key or row of the field's entity (R0001 for
    /// another kind) and need not exist, as with `db load`: a link to a
    /// missing row is skipped by reads. Existing links are not added twice;
    /// removing a missing link changes nothing.
    pub fn link(
        &self,
        entity: EntityId,
        key: &Value,
        field: usize,
        target: &Value,
        add: bool,
    ) -> Result<(), RuntimeError> {
        let info = self.ent(entity)?;
        let f = info.field(field)?;
        let Some(j) = &f.join else {
            return Err(dyn_err(format!("`{}.{}` is not a many-to-many field", info.name, f.name)));
        };
        let k = self.write_key(info, key)?;
        let t = self.target_key(j, target, &format!("`{}.{}`", info.name, f.name))?;
        self.atomically(|| {
            self.check_exists(info, &k, key)?;
            if add {
                self.insert_join(j, &k, &t)
            } else {
                let sql = format!("DELETE FROM {} WHERE \"source\" = ?1 AND \"target\" = ?2", j.table);
                let mut st = self.conn.prepare_cached(&sql).map_err(sql_err)?;
                st.execute([&k, &t]).map_err(sql_err)?;
                Ok(())
            }
        })
    }
}
