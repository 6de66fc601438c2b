//! `herald db load` on PostgreSQL: the fixture format, checks, messages
//! and merge rules of `store::load` (its validation functions are shared),
//! written through the mapping in the caller's transaction.

use super::map::{param_cast, pg_type};
use super::{pg_err, sql_text as param_text, PgEntities, PgEntity};
use crate::diag::suggest;
use crate::store::convert::describe_json;
use crate::store::filter::ColKind;
use crate::store::load::{check_row, deep_merge, scalar, sql_text, sql_to_json_elem, RowHead};
use crate::store::{LoadError, LoadMode, LoadStats};
use postgres::types::ToSql;
use postgres::Client;
use rusqlite::types::Value as Sql;
use serde_json::Value as J;
use std::collections::{HashMap, HashSet};

struct Link {
    entity: String,
    row: usize,
    key: String,
    field: String,
    target_entity: usize,
    target: Sql,
}

fn db_err(name: &str, idx: usize, key: Option<&str>, field: Option<String>, e: impl std::fmt::Display) -> LoadError {
    LoadError::at(name, Some(idx), key, field, format!("database error: {e}"))
}

impl PgEntities {
    /// Load fixtures inside the caller's transaction (which it commits
    /// when this returns `Ok` and rolls back otherwise). Every problem is
    /// returned; a failed statement ends the load (PostgreSQL aborts the
    /// transaction at the first error).
    pub fn load_fixtures(&self, c: &mut Client, json: &str, mode: LoadMode) -> Result<LoadStats, Vec<LoadError>> {
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
        let schema = self.schema().clone();
        let mut errors = Vec::new();
        let mut stats = LoadStats::default();
        let mut links = Vec::new();
        let mut failed = HashSet::new();
        for (name, rows) in &top {
            let Some(id) = schema.entity_by_name(name) else {
                let hint = suggest(name, schema.entity_names())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        format!(
                            "; the entities are {}",
                            schema.entity_names().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
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
            let Some(e) = self.mapping().ent(id) else { continue };
            let n = self.load_rows(c, e, rows, mode, &mut errors, &mut links, &mut stats.links, &mut failed);
            stats.rows.push((name.clone(), n));
            if errors.iter().any(|e| e.message.starts_with("database error")) {
                return Err(errors);
            }
        }
        for l in &links {
            if failed.contains(&(l.target_entity, sql_text(&l.target))) {
                continue;
            }
            let t = &self.mapping().ents[l.target_entity];
            let sql = format!("SELECT 1 FROM {} AS t WHERE {}", t.table, t.key_eq(1));
            let p = param_text(&l.target, t.key);
            match c.query(sql.as_str(), &[&p as &(dyn ToSql + Sync)]) {
                Ok(r) if !r.is_empty() => {}
                Ok(_) => errors.push(LoadError::at(
                    &l.entity,
                    Some(l.row),
                    Some(&l.key),
                    Some(l.field.clone()),
                    format!("no `{}` with {} {}", t.name, t.key_name, sql_text(&l.target)),
                )),
                Err(e) => {
                    errors.push(LoadError::new(format!("database error: {}", pg_err(e).message)));
                    break;
                }
            }
        }
        if errors.is_empty() {
            Ok(stats)
        } else {
            Err(errors)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn load_rows(
        &self,
        c: &mut Client,
        e: &PgEntity,
        rows: &[J],
        mode: LoadMode,
        errors: &mut Vec<LoadError>,
        links: &mut Vec<Link>,
        nlinks: &mut usize,
        failed: &mut HashSet<(usize, String)>,
    ) -> usize {
        let name = &e.name;
        let any_fields: Vec<usize> = e.columns.iter().copied().filter(|&i| e.fields[i].kind == ColKind::Any).collect();
        let existing = format!(
            "SELECT 1{} FROM {} AS t WHERE {}",
            any_fields.iter().map(|&i| format!(", (t.{})::text", e.fields[i].col)).collect::<String>(),
            e.table,
            e.key_eq(1)
        );
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut ok_rows = 0;
        let known: Vec<&str> =
            std::iter::once(e.key_name.as_str()).chain(e.fields.iter().map(|f| f.name.as_str())).collect();
        for (idx, row) in rows.iter().enumerate() {
            let before = errors.len();
            let Some(RowHead { obj, key, key_text }) =
                check_row(name, &e.key_name, e.key, &known, idx, row, &mut seen, errors)
            else {
                continue;
            };
            let key_ref = key_text.as_deref();
            let kparam = key.as_ref().and_then(|k| param_text(k, e.key));
            let mut stored: Option<HashMap<usize, Option<String>>> = None;
            let mut exists = false;
            if let Some(k) = &kparam {
                match c.query(existing.as_str(), &[k as &(dyn ToSql + Sync)]) {
                    Ok(rows) => {
                        if let Some(r) = rows.first() {
                            exists = true;
                            let mut m = HashMap::new();
                            for (n, &i) in any_fields.iter().enumerate() {
                                m.insert(i, r.get::<_, Option<String>>(n + 1));
                            }
                            stored = Some(m);
                        }
                    }
                    Err(err) => {
                        errors.push(db_err(name, idx, key_ref, None, pg_err(err).message));
                        return ok_rows;
                    }
                }
            }
            let merging = mode == LoadMode::Merge && exists;
            // (field index, parameter text) of the columns to write.
            let mut values: Vec<(usize, Option<String>)> = Vec::new();
            let mut joins: Vec<(usize, Vec<(usize, Sql)>)> = Vec::new();
            for (fi, f) in e.fields.iter().enumerate() {
                let v = obj.get(&f.name);
                if merging && v.is_none() {
                    continue;
                }
                let err = |m: String, at: String| LoadError::at(name, Some(idx), key_ref, Some(at), m);
                if let Some(j) = &f.join {
                    let t = &self.mapping().ents[j.target.0 as usize];
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
                let value: Option<String> = match v {
                    None | Some(J::Null) => {
                        if f.required {
                            let m = if v.is_none() {
                                "missing required field".to_string()
                            } else {
                                "a required field cannot be null".to_string()
                            };
                            errors.push(err(m, f.name.clone()));
                        }
                        None
                    }
                    Some(j) => match f.kind {
                        ColKind::Scalar(s) => match scalar(j, s, s.name()) {
                            Ok(v) => param_text(&v, s),
                            Err(m) => {
                                errors.push(err(m, f.name.clone()));
                                None
                            }
                        },
                        ColKind::Any => {
                            let old = if merging {
                                stored.as_ref().and_then(|m| m.get(&fi).cloned().flatten())
                            } else {
                                None
                            };
                            match old.and_then(|t| serde_json::from_str::<J>(&t).ok()) {
                                Some(mut old) => {
                                    deep_merge(&mut old, j);
                                    Some(old.to_string())
                                }
                                None => Some(j.to_string()),
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
                                Some(J::Array(arr).to_string())
                            }
                            other => {
                                errors.push(err(
                                    format!("expected a list, found {}", describe_json(other)),
                                    f.name.clone(),
                                ));
                                None
                            }
                        },
                        ColKind::ManyToMany(_) => None,
                    },
                };
                // JSON null in an `any` column is SQL NULL, as on SQLite.
                let value = value.filter(|t| !(matches!(f.kind, ColKind::Any) && t == "null"));
                if value.as_deref().is_some_and(|t| t.contains('\0') || t.contains("\\u0000")) {
                    errors.push(err(
                        "PostgreSQL cannot store text with the NUL character (\\u0000)".into(),
                        f.name.clone(),
                    ));
                }
                values.push((fi, value));
            }
            if errors.len() > before {
                if let Some(k) = &key {
                    failed.insert((e.id.0 as usize, sql_text(k)));
                }
                continue;
            }
            let (Some(key), Some(kp)) = (key, kparam) else { continue };
            let mut params: Vec<Option<String>> = vec![Some(kp.clone())];
            let written = if exists {
                let sets: Vec<String> = values
                    .iter()
                    .enumerate()
                    .map(|(n, (fi, _))| {
                        let f = &e.fields[*fi];
                        format!("{} = (${}::text)::{}", f.col, n + 2, pg_type(f.kind))
                    })
                    .chain(e.touch.iter().map(|(c, v)| format!("{c} = {v}")))
                    .collect();
                params.extend(values.iter().map(|(_, v)| v.clone()));
                if values.is_empty() {
                    Ok(0)
                } else {
                    let sql = format!("UPDATE {} AS t SET {} WHERE {}", e.table, sets.join(", "), e.key_eq(1));
                    let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                    c.execute(sql.as_str(), &p)
                }
            } else {
                let mut names = vec![e.key_col.clone()];
                let mut marks = vec![param_cast(1, e.key)];
                for (n, (fi, v)) in values.iter().enumerate() {
                    let f = &e.fields[*fi];
                    names.push(f.col.clone());
                    marks.push(format!("(${}::text)::{}", n + 2, pg_type(f.kind)));
                    params.push(v.clone());
                }
                for (col, v) in &e.insert_extra {
                    if !names.contains(col) {
                        names.push(col.clone());
                        marks.push(v.clone());
                    }
                }
                for (pe, parent) in &self.mapping().parents {
                    if *pe == e.id {
                        if let Err(err) = c.execute(parent.as_str(), &[&Some(kp.clone()) as &(dyn ToSql + Sync)]) {
                            errors.push(db_err(name, idx, key_ref, None, pg_err(err).message));
                            return ok_rows;
                        }
                    }
                }
                let sql = format!("INSERT INTO {} ({}) VALUES ({})", e.table, names.join(", "), marks.join(", "));
                let p: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                c.execute(sql.as_str(), &p)
            };
            if let Err(err) = written {
                errors.push(db_err(name, idx, key_ref, None, pg_err(err).message));
                return ok_rows;
            }
            for (fi, targets) in joins {
                let f = &e.fields[fi];
                let Some(j) = f.join.as_ref() else { continue };
                let del = format!("DELETE FROM {} WHERE {} = {}", j.table, j.source, param_cast(1, e.key));
                if let Err(err) = c.execute(del.as_str(), &[&Some(kp.clone()) as &(dyn ToSql + Sync)]) {
                    errors.push(db_err(name, idx, key_ref, Some(f.name.clone()), pg_err(err).message));
                    return ok_rows;
                }
                for (i, t) in targets {
                    let Some(tp) = param_text(&t, j.target_key) else { continue };
                    let ent = &self.mapping().ents[e.id.0 as usize];
                    match self.link_raw(c, ent, fi, &kp, &tp) {
                        Ok(n) => *nlinks += n as usize,
                        Err(err) => {
                            errors.push(db_err(name, idx, key_ref, Some(format!("{}[{i}]", f.name)), err.message));
                            return ok_rows;
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
            let _ = key;
            ok_rows += 1;
        }
        ok_rows
    }
}
