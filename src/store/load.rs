//! `herald db load`: fixtures as `{"Entity": [{row}, ...], ...}`.
//!
//! All or nothing, in one transaction; every problem is reported, each
//! naming the entity, the row index (and key when known) and the field.
//! Rows upsert by key. By default ([`LoadMode::Merge`]) a row that exists
//! keeps what the file does not mention, so a re-sync of users does not
//! wipe what rules wrote: an `any` field is deep-merged into the stored
//! value (the file's keys win, other keys stay), any other field given in
//! the file (even as `null`) is replaced, a field the file omits keeps its
//! value, and a many-to-many array replaces that row's links. With
//! [`LoadMode::Replace`] the file's row is the whole row: omitted optional
//! fields become NULL and omitted many-to-many fields no links. A new row
//! is the file's row in both modes. Many-to-many targets must exist once
//! the whole file is loaded.

use super::convert::{describe_json, quote_short};
use super::filter::{ColKind, Scalar};
use super::{EntityInfo, Store};
use crate::diag::suggest;
use crate::value::{format_timestamp_store, format_uuid, parse_timestamp, parse_uuid};
use rusqlite::types::Value as Sql;
use rusqlite::OptionalExtension;
use serde_json::Value as J;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One problem in a fixtures file.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The entity name as written in the file.
    pub entity: Option<String>,
    /// The row's index in the entity's array.
    pub row: Option<usize>,
    /// The row's key as written, when known.
    pub key: Option<String>,
    /// The field, with an element index when inside an array: `users[1]`.
    pub field: Option<String>,
    pub message: String,
    /// For malformed JSON: 1-based line and column.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl LoadError {
    /// A problem with no place in the file.
    pub(crate) fn message(message: impl Into<String>) -> LoadError {
        LoadError::new(message)
    }

    pub(in crate::store) fn new(message: impl Into<String>) -> LoadError {
        LoadError { entity: None, row: None, key: None, field: None, message: message.into(), line: None, column: None }
    }

    pub(in crate::store) fn at(
        entity: &str,
        row: Option<usize>,
        key: Option<&str>,
        field: Option<String>,
        message: impl Into<String>,
    ) -> LoadError {
        LoadError {
            entity: Some(entity.to_string()),
            row,
            key: key.map(str::to_string),
            field,
            ..LoadError::new(message)
        }
    }

    /// `Group[2].users[1]`.
    pub fn location(&self) -> String {
        let mut s = String::new();
        if let Some(e) = &self.entity {
            s.push_str(e);
            if let Some(r) = self.row {
                s.push_str(&format!("[{r}]"));
            }
            if let Some(f) = &self.field {
                s.push('.');
                s.push_str(f);
            }
        }
        s
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = self.location();
        if loc.is_empty() {
            f.write_str(&self.message)?;
        } else {
            write!(f, "{loc}: {}", self.message)?;
        }
        if let (Some(k), Some(_)) = (&self.key, &self.field) {
            write!(f, " (row key {k})")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// What a load wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Rows per entity, in the file's order.
    pub rows: Vec<(String, usize)>,
    /// Many-to-many links written.
    pub links: usize,
}

impl LoadStats {
    pub fn total(&self) -> usize {
        self.rows.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for LoadStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            self.rows.iter().map(|(e, n)| format!("{n} {e} row{}", if *n == 1 { "" } else { "s" })).collect();
        if parts.is_empty() {
            f.write_str("nothing loaded")
        } else {
            write!(f, "loaded {}", parts.join(", "))?;
            if self.links > 0 {
                write!(f, " and {} link{}", self.links, if self.links == 1 { "" } else { "s" })?;
            }
            Ok(())
        }
    }
}

/// A JSON fixture value as the SQL of a scalar column. `label` names the
/// expected type in messages (`int`, `int (User key)`).
pub(in crate::store) fn scalar(j: &J, s: Scalar, label: &str) -> Result<Sql, String> {
    let wrong = || format!("expected {label}, found {}", describe_json(j));
    match (s, j) {
        (Scalar::Int, J::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64))
            .map(Sql::Integer)
            .ok_or_else(wrong),
        (Scalar::Float, J::Number(n)) => n.as_f64().map(Sql::Real).ok_or_else(wrong),
        (Scalar::Bool, J::Bool(b)) => Ok(Sql::Integer(i64::from(*b))),
        (Scalar::Str, J::String(t)) => Ok(Sql::Text(t.clone())),
        (Scalar::Uuid, J::String(t)) => match parse_uuid(t) {
            Some(u) => Ok(Sql::Text(format_uuid(u))),
            None => Err(format!("invalid uuid {} ({label}: 32 hex digits, dashed or not)", quote_short(t))),
        },
        (Scalar::Timestamp, J::String(t)) => match parse_timestamp(t) {
            Some(ts) => Ok(Sql::Text(format_timestamp_store(ts))),
            None => Err(format!("invalid timestamp {} ({label}: RFC 3339, e.g. 2026-04-14T08:02:07Z)", quote_short(t))),
        },
        _ => Err(wrong()),
    }
}

pub(in crate::store) fn sql_to_json_elem(v: Sql, s: Scalar) -> J {
    match v {
        Sql::Integer(i) if s == Scalar::Bool => J::Bool(i != 0),
        Sql::Integer(i) => J::from(i),
        Sql::Real(f) => serde_json::Number::from_f64(f).map(J::Number).unwrap_or(J::Null),
        Sql::Text(t) => J::String(t),
        _ => J::Null,
    }
}

/// How a fixture row is applied to a row that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadMode {
    /// Keep what the file does not say; deep-merge `any` fields.
    #[default]
    Merge,
    /// The file's row replaces the stored row.
    Replace,
}

/// `new` deep-merged into `old`: objects merge key by key (the keys of
/// `new` win, recursively); anything else is replaced by `new`.
pub(in crate::store) fn deep_merge(old: &mut J, new: &J) {
    match (old, new) {
        (J::Object(o), J::Object(n)) => {
            for (k, v) in n {
                match o.get_mut(k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        o.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (old, new) => *old = new.clone(),
    }
}

/// A pending check that a many-to-many target exists.
struct Link {
    entity: String,
    row: usize,
    key: String,
    field: String,
    target_entity: usize,
    target: Sql,
}

impl Store {
    /// Load fixtures (`herald db load`), merging into existing rows. All or
    /// nothing: on any problem nothing is written and every problem is
    /// returned.
    pub fn load_fixtures(&mut self, json: &str) -> Result<LoadStats, Vec<LoadError>> {
        self.load_fixtures_with(json, LoadMode::Merge)
    }

    /// [`load_fixtures`](Self::load_fixtures) with an explicit [`LoadMode`].
    pub fn load_fixtures_with(&mut self, json: &str, mode: LoadMode) -> Result<LoadStats, Vec<LoadError>> {
        let doc: J = serde_json::from_str(json).map_err(|e| {
            vec![LoadError {
                line: Some(e.line()),
                column: Some(e.column()),
                ..LoadError::new(format!("malformed JSON: {e}"))
            }]
        })?;
        let J::Object(top) = doc else {
            return Err(vec![LoadError::new(format!(
                "expected an object of entity arrays such as {{\"User\": [...]}}, found {}",
                describe_json(&doc)
            ))]);
        };
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            return Err(vec![LoadError::new(format!("cannot start a transaction: {e}"))]);
        }
        let mut errors = Vec::new();
        let mut stats = LoadStats::default();
        let mut links = Vec::new();
        let mut failed = HashSet::new();
        for (name, rows) in &top {
            let Some(id) = self.schema.entity_by_name(name) else {
                let hint = suggest(name, self.schema.entity_names())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        format!(
                            "; the entities are {}",
                            self.schema.entity_names().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                        )
                    });
                errors.push(LoadError::at(name, None, None, None, format!("unknown entity{hint}")));
                continue;
            };
            let J::Array(rows) = rows else {
                errors.push(LoadError::at(
                    name,
                    None,
                    None,
                    None,
                    format!("expected an array of rows, found {}", describe_json(rows)),
                ));
                continue;
            };
            let info = &self.ents[id.0 as usize];
            let n = self.load_rows(info, rows, mode, &mut errors, &mut links, &mut stats.links, &mut failed);
            stats.rows.push((name.clone(), n));
        }
        // Many-to-many targets must exist (in the database or the file);
        // a target whose own row failed was already reported.
        for l in &links {
            if failed.contains(&(l.target_entity, sql_text(&l.target))) {
                continue;
            }
            let t = &self.ents[l.target_entity];
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {} WHERE {} = ?1)", t.table, t.key_col);
            let found = self.conn.query_row(&sql, [&l.target], |r| r.get::<_, bool>(0));
            match found {
                Ok(true) => {}
                Ok(false) => errors.push(LoadError::at(
                    &l.entity,
                    Some(l.row),
                    Some(&l.key),
                    Some(l.field.clone()),
                    format!("no `{}` with {} {}", t.name, t.key_name, sql_text(&l.target)),
                )),
                Err(e) => errors.push(LoadError::new(format!("database error: {e}"))),
            }
        }
        if errors.is_empty() {
            match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(stats),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(vec![LoadError::new(format!("cannot commit: {e}"))])
                }
            }
        } else {
            let _ = self.conn.execute_batch("ROLLBACK");
            Err(errors)
        }
    }

    /// Validate and upsert the rows of one entity; returns how many were
    /// valid.
    #[allow(clippy::too_many_arguments)]
    fn load_rows(
        &self,
        info: &EntityInfo,
        rows: &[J],
        mode: LoadMode,
        errors: &mut Vec<LoadError>,
        links: &mut Vec<Link>,
        nlinks: &mut usize,
        failed: &mut HashSet<(usize, String)>,
    ) -> usize {
        let name = &info.name;
        let mut cols = vec![info.key_col.clone()];
        cols.extend(info.columns.iter().map(|&i| info.fields[i].col.clone()));
        let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let update: Vec<String> = cols[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
        let upsert = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO {}",
            info.table,
            cols.join(", "),
            placeholders.join(", "),
            info.key_col,
            if update.is_empty() { "NOTHING".to_string() } else { format!("UPDATE SET {}", update.join(", ")) }
        );
        // Merging reads the stored row first: whether it exists (then the
        // file may omit required fields) and its `any` columns.
        let any_fields: Vec<usize> =
            info.columns.iter().copied().filter(|&i| info.fields[i].kind == ColKind::Any).collect();
        let existing = format!(
            "SELECT 1{} FROM {} WHERE {} = ?1",
            any_fields.iter().map(|&i| format!(", {}", info.fields[i].col)).collect::<String>(),
            info.table,
            info.key_col
        );
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut ok_rows = 0;
        let known: Vec<&str> =
            std::iter::once(info.key_name.as_str()).chain(info.fields.iter().map(|f| f.name.as_str())).collect();
        for (idx, row) in rows.iter().enumerate() {
            let before = errors.len();
            let Some(RowHead { obj, key, key_text }) =
                check_row(name, &info.key_name, info.key, &known, idx, row, &mut seen, errors)
            else {
                continue;
            };
            let key_ref = key_text.as_deref();
            // The stored row's `any` values (by field index) when merging
            // into a row that exists.
            let mut stored: Option<HashMap<usize, Option<String>>> = None;
            if let (LoadMode::Merge, Some(k)) = (mode, &key) {
                let found = self.conn.prepare_cached(&existing).and_then(|mut st| {
                    st.query_row([k], |r| {
                        let mut m = HashMap::new();
                        for (n, &i) in any_fields.iter().enumerate() {
                            m.insert(i, r.get::<_, Option<String>>(n + 1)?);
                        }
                        Ok(m)
                    })
                    .optional()
                });
                match found {
                    Ok(s) => stored = s,
                    Err(e) => {
                        errors.push(LoadError::at(name, Some(idx), key_ref, None, format!("database error: {e}")))
                    }
                }
            }
            let merging = stored.is_some();
            // Columns given in the file, in `values` order (the key first).
            let mut given = vec![true];
            let mut values = vec![key.clone().unwrap_or(Sql::Null)];
            let mut joins: Vec<(usize, Vec<(usize, Sql)>)> = Vec::new();
            for (fi, f) in info.fields.iter().enumerate() {
                let v = obj.get(&f.name);
                if merging && v.is_none() {
                    // Omitted: the stored value (or links) stay.
                    if f.join.is_none() {
                        given.push(false);
                        values.push(Sql::Null);
                    }
                    continue;
                }
                let err = |m: String, at: String| LoadError::at(name, Some(idx), key_ref, Some(at), m);
                if let Some(j) = &f.join {
                    let t = &self.ents[j.target.0 as usize];
                    let label = format!("{} ({} key)", j.target_key.name(), t.name);
                    let mut targets = Vec::new();
                    match v {
                        None | Some(J::Null) => {}
                        Some(J::Array(items)) => {
                            for (i, item) in items.iter().enumerate() {
                                match scalar(item, j.target_key, &label) {
                                    Ok(s) => targets.push((i, s)),
                                    Err(m) => errors.push(err(m, format!("{}[{i}]", f.name))),
                                }
                            }
                        }
                        Some(other) => errors.push(err(
                            format!("expected an array of `{}` keys, found {}", t.name, describe_json(other)),
                            f.name.clone(),
                        )),
                    }
                    joins.push((fi, targets));
                    continue;
                }
                let value = match v {
                    None | Some(J::Null) => {
                        if f.required {
                            let m = if v.is_none() {
                                "missing required field".to_string()
                            } else {
                                "a required field cannot be null".to_string()
                            };
                            errors.push(err(m, f.name.clone()));
                        }
                        Sql::Null
                    }
                    Some(j) => match f.kind {
                        ColKind::Scalar(s) => scalar(j, s, s.name()).unwrap_or_else(|m| {
                            errors.push(err(m, f.name.clone()));
                            Sql::Null
                        }),
                        ColKind::Any => {
                            let old = stored.as_ref().and_then(|m| m.get(&fi).cloned().flatten());
                            match old.and_then(|t| serde_json::from_str::<J>(&t).ok()) {
                                Some(mut old) => {
                                    deep_merge(&mut old, j);
                                    Sql::Text(old.to_string())
                                }
                                None => Sql::Text(j.to_string()),
                            }
                        }
                        ColKind::List(el) => match j {
                            J::Array(items) => {
                                let mut arr = Vec::with_capacity(items.len());
                                for (i, item) in items.iter().enumerate() {
                                    match el {
                                        Some(s) => match scalar(item, s, s.name()) {
                                            Ok(v) => arr.push(sql_to_json_elem(v, s)),
                                            Err(m) => errors.push(err(m, format!("{}[{i}]", f.name))),
                                        },
                                        None => arr.push(item.clone()),
                                    }
                                }
                                Sql::Text(J::Array(arr).to_string())
                            }
                            other => {
                                errors.push(err(
                                    format!("expected a list, found {}", describe_json(other)),
                                    f.name.clone(),
                                ));
                                Sql::Null
                            }
                        },
                        ColKind::ManyToMany(_) => Sql::Null,
                    },
                };
                given.push(true);
                values.push(value);
            }
            if errors.len() > before {
                if let Some(k) = &key {
                    failed.insert((info.id.0 as usize, sql_text(k)));
                }
                continue;
            }
            let key = key.expect("a row without errors has a key");
            let written = if merging {
                // Only the columns the file gives; none: nothing to update.
                let sets: Vec<String> = (1..cols.len())
                    .filter(|&c| given[c])
                    .enumerate()
                    .map(|(n, c)| format!("{} = ?{}", cols[c], n + 2))
                    .collect();
                if sets.is_empty() {
                    Ok(0)
                } else {
                    let sql = format!("UPDATE {} SET {} WHERE {} = ?1", info.table, sets.join(", "), info.key_col);
                    let params = values.iter().zip(&given).filter(|(_, g)| **g).map(|(v, _)| v);
                    self.conn.prepare_cached(&sql).and_then(|mut st| st.execute(rusqlite::params_from_iter(params)))
                }
            } else {
                self.conn.prepare_cached(&upsert).and_then(|mut st| st.execute(rusqlite::params_from_iter(&values)))
            };
            if let Err(e) = written {
                errors.push(LoadError::at(name, Some(idx), key_ref, None, format!("database error: {e}")));
                continue;
            }
            for (fi, targets) in joins {
                let f = &info.fields[fi];
                let j = f.join.as_ref().expect("join field");
                let del = format!("DELETE FROM {} WHERE \"source\" = ?1", j.table);
                let ins =
                    format!("INSERT INTO {} (\"source\", \"target\") VALUES (?1, ?2) ON CONFLICT DO NOTHING", j.table);
                if let Err(e) = self.conn.prepare_cached(&del).and_then(|mut st| st.execute([&key])) {
                    errors.push(LoadError::at(
                        name,
                        Some(idx),
                        key_ref,
                        Some(f.name.clone()),
                        format!("database error: {e}"),
                    ));
                    continue;
                }
                for (i, t) in targets {
                    match self.conn.prepare_cached(&ins).and_then(|mut st| st.execute([&key, &t])) {
                        Ok(n) => *nlinks += n,
                        Err(e) => {
                            errors.push(LoadError::at(
                                name,
                                Some(idx),
                                key_ref,
                                Some(format!("{}[{i}]", f.name)),
                                format!("database error: {e}"),
                            ));
                        }
                    }
                    links.push(Link {
                        entity: name.clone(),
                        row: idx,
                        key: key_text.clone().unwrap_or_default(),
                        field: format!("{}[{i}]", f.name),
                        target_entity: j.target.0 as usize,
                        target: t,
                    });
                }
            }
            ok_rows += 1;
        }
        ok_rows
    }
}

/// An SQL key as text for messages: `12`, `"abc"`.
pub(in crate::store) fn sql_text(v: &Sql) -> String {
    match v {
        Sql::Integer(i) => i.to_string(),
        Sql::Real(f) => f.to_string(),
        Sql::Text(t) => quote_short(t),
        Sql::Null => "null".into(),
        Sql::Blob(_) => "<blob>".into(),
    }
}

/// The checks every fixture row gets on either backend before its fields:
/// it is an object, names only fields of the entity, has a key of the key's
/// type, and that key was not in an earlier row (`seen`, by canonical
/// text). Errors go to `errors`; `None` for a row that is not an object.
#[allow(clippy::too_many_arguments)]
pub(in crate::store) fn check_row<'r>(
    name: &str,
    key_name: &str,
    key_type: Scalar,
    known: &[&str],
    idx: usize,
    row: &'r J,
    seen: &mut HashMap<String, usize>,
    errors: &mut Vec<LoadError>,
) -> Option<RowHead<'r>> {
    let J::Object(obj) = row else {
        errors.push(LoadError::at(
            name,
            Some(idx),
            None,
            None,
            format!("expected an object, found {}", describe_json(row)),
        ));
        return None;
    };
    let key_text = obj.get(key_name).map(|k| match k {
        J::String(s) => quote_short(s),
        k => k.to_string(),
    });
    let key_ref = key_text.as_deref();
    for field in obj.keys() {
        if !known.contains(&field.as_str()) {
            let hint =
                suggest(field, known.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            errors.push(LoadError::at(
                name,
                Some(idx),
                key_ref,
                Some(field.clone()),
                format!("unknown field of `{name}`{hint}"),
            ));
        }
    }
    let key = match obj.get(key_name) {
        None | Some(J::Null) => {
            errors.push(LoadError::at(name, Some(idx), None, Some(key_name.to_string()), "missing key"));
            None
        }
        Some(k) => match scalar(k, key_type, &format!("{} (the key)", key_type.name())) {
            Ok(v) => Some(v),
            Err(m) => {
                errors.push(LoadError::at(name, Some(idx), None, Some(key_name.to_string()), m));
                None
            }
        },
    };
    if let Some(k) = &key {
        let canon = sql_text(k);
        if let Some(first) = seen.insert(canon.clone(), idx) {
            errors.push(LoadError::at(
                name,
                Some(idx),
                key_ref,
                None,
                format!("duplicate key {key_name} {canon} (also row {first})"),
            ));
        }
    }
    Some(RowHead { obj, key, key_text })
}

/// What [`check_row`] found in a row.
pub(in crate::store) struct RowHead<'r> {
    pub obj: &'r serde_json::Map<String, J>,
    /// The key, when present and of the key's type.
    pub key: Option<Sql>,
    /// The key as error messages show it.
    pub key_text: Option<String>,
}
