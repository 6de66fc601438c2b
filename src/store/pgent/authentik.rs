//! `--mapping authentik`: the built-in schema's entities on authentik's own
//! tables, in the tenant's schema (`public` for the default tenant).
//!
//! What is relied on (tables, columns, the app defaults an insert gives for
//! NOT NULL columns without a database default) is recorded, with its
//! sources, in `docs/authentik/tables.sql`; `docs/deploy-authentik.md` says
//! what a direct write does and does not do. The mapping is resolved
//! against the live catalog when the store opens:
//!
//! - the membership table is `authentik_core_user_ak_groups` when it exists
//!   (before authentik 2026.2), else `authentik_core_user_groups` only when
//!   its `group_id` is a uuid (before 2026.2 that name is Django's own
//!   `auth.Group` link table, with an integer `group_id`);
//! - `authentik_core_user.last_updated` (2025.8+) is set to `now()` by every
//!   update and insert Herald makes, as Django's `auto_now` would;
//! - `authentik_core_application.meta_hide`, when present, gets `false` on
//!   insert.
//!
//! A table or column that is missing is an error naming it.

use super::map::{qualified, Mapping, PgEntity, PgField, PgJoin};
use super::{pg_err, PgEntities};
use crate::diag::{Code, RuntimeError};
use crate::filter::{ColKind, Scalar};
use crate::schema::Schema;
use crate::store::{quote, StoreError};
use crate::value::Value;
use postgres::Client;

/// The default tenant's schema.
pub const DEFAULT_TENANT: &str = "public";

/// (table, columns) Herald reads or writes.
const RELIED_ON: &[(&str, &[&str])] = &[
    (
        "authentik_core_user",
        &[
            "id",
            "password",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "date_joined",
            "uuid",
            "name",
            "password_change_date",
            "attributes",
            "path",
            "type",
        ],
    ),
    ("authentik_core_group", &["group_uuid", "name", "attributes", "is_superuser"]),
    (
        "authentik_core_application",
        &[
            "policybindingmodel_ptr_id",
            "name",
            "slug",
            "meta_launch_url",
            "meta_description",
            "meta_publisher",
            "meta_icon",
            "group",
            "open_in_new_tab",
        ],
    ),
    ("authentik_policies_policybindingmodel", &["pbm_uuid", "policy_engine_mode"]),
    (
        "authentik_policies_policybinding",
        &[
            "policy_binding_uuid",
            "enabled",
            "order",
            "policy_id",
            "target_id",
            "negate",
            "timeout",
            "group_id",
            "user_id",
            "failure_result",
        ],
    ),
    ("authentik_events_event", &["event_uuid"]),
    ("authentik_events_notification", &["uuid", "severity", "body", "created", "seen", "event_id", "user_id"]),
];

fn se(e: postgres::Error) -> StoreError {
    StoreError::Sql(pg_err(e).message)
}

/// The columns of `table` in `tenant` with their types (empty: no table).
fn columns(c: &mut Client, tenant: &str, table: &str) -> Result<Vec<(String, String)>, StoreError> {
    Ok(c.query(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2",
        &[&tenant, &table],
    )
    .map_err(se)?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

fn field(name: &str, col: &str, kind: ColKind, required: bool) -> PgField {
    PgField { name: name.into(), col: quote(col), kind, required, join: None }
}

/// Check that authentik's tables and columns are there (`db init`, and
/// every open), and build the mapping of the built-in schema's entities.
pub fn mapping(c: &mut Client, schema: &Schema, tenant: &str) -> Result<Mapping, StoreError> {
    let ns: Vec<String> = c
        .query("SELECT nspname::text FROM pg_namespace WHERE nspname = $1", &[&tenant])
        .map_err(se)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if ns.is_empty() {
        return Err(StoreError::Schema(format!(
            "--mapping authentik: the database has no schema `{tenant}` (authentik's tenant schema; `public` for the default tenant)"
        )));
    }
    let mut missing = Vec::new();
    for (table, cols) in RELIED_ON {
        let have = columns(c, tenant, table)?;
        if have.is_empty() {
            missing.push(format!("table {tenant}.{table}"));
            continue;
        }
        for col in *cols {
            if !have.iter().any(|(n, _)| n == col) {
                missing.push(format!("column {tenant}.{table}.{col}"));
            }
        }
    }
    let ak = columns(c, tenant, "authentik_core_user_ak_groups")?;
    let new = columns(c, tenant, "authentik_core_user_groups")?;
    let membership = if !ak.is_empty() {
        Some(("authentik_core_user_ak_groups", ak))
    } else if new.iter().any(|(n, t)| n == "group_id" && t == "uuid") {
        Some(("authentik_core_user_groups", new))
    } else {
        missing.push(format!(
            "the group membership table ({tenant}.authentik_core_user_ak_groups before authentik 2026.2, \
             {tenant}.authentik_core_user_groups with a uuid group_id from 2026.2)"
        ));
        None
    };
    if let Some((t, cols)) = &membership {
        for col in ["user_id", "group_id"] {
            if !cols.iter().any(|(n, _)| n == col) {
                missing.push(format!("column {tenant}.{t}.{col}"));
            }
        }
    }
    if !missing.is_empty() {
        return Err(StoreError::Schema(format!(
            "--mapping authentik: the database lacks what Herald relies on (is this authentik 2025.2 or later, \
             and is `{tenant}` its tenant schema?): {}",
            missing.join(", ")
        )));
    }
    let (membership, _) = membership.expect("checked above");
    let has = |c: &mut Client, table: &str, col: &str| -> Result<bool, StoreError> {
        Ok(columns(c, tenant, table)?.iter().any(|(n, _)| n == col))
    };
    let user_touch = has(c, "authentik_core_user", "last_updated")?;
    let meta_hide = has(c, "authentik_core_application", "meta_hide")?;

    let id = |name: &str| {
        schema.entity_by_name(name).ok_or_else(|| {
            StoreError::Schema(format!("--mapping authentik needs the built-in schema's entity `{name}`"))
        })
    };
    let (user, group, app, binding) = (id("User")?, id("Group")?, id("Application")?, id("PolicyBinding")?);
    let t = |name: &str| qualified(tenant, name);
    let s = |k| ColKind::Scalar(k);
    let now = || "now()".to_string();
    let lit = |v: &str| v.to_string();

    let mut user_extra = vec![
        // Django's "unusable password" form: `!` and random text.
        (quote("password"), "'!' || md5(random()::text)".to_string()),
        (quote("first_name"), lit("''")),
        (quote("last_name"), lit("''")),
        (quote("email"), lit("''")),
        (quote("is_active"), lit("true")),
        (quote("date_joined"), now()),
        (quote("uuid"), lit("gen_random_uuid()")),
        (quote("password_change_date"), now()),
        (quote("attributes"), lit("'{}'::jsonb")),
        (quote("path"), lit("'users'")),
        (quote("type"), lit("'internal'")),
    ];
    let mut user_touch_cols = Vec::new();
    if user_touch {
        user_extra.push((quote("last_updated"), now()));
        user_touch_cols.push((quote("last_updated"), now()));
    }
    let mut ents = Vec::new();
    for eid in schema.entity_ids() {
        let def = schema.entity(eid);
        let mut e = if eid == user {
            PgEntity {
                id: eid,
                name: def.name.clone(),
                table: t("authentik_core_user"),
                key_name: def.key.name.clone(),
                key_col: quote("id"),
                key: Scalar::Int,
                fields: Vec::new(),
                columns: Vec::new(),
                select: String::new(),
                insert_extra: user_extra.clone(),
                touch: user_touch_cols.clone(),
            }
        } else if eid == group {
            PgEntity {
                id: eid,
                name: def.name.clone(),
                table: t("authentik_core_group"),
                key_name: def.key.name.clone(),
                key_col: quote("group_uuid"),
                key: Scalar::Uuid,
                fields: Vec::new(),
                columns: Vec::new(),
                select: String::new(),
                insert_extra: vec![(quote("attributes"), lit("'{}'::jsonb")), (quote("is_superuser"), lit("false"))],
                touch: Vec::new(),
            }
        } else if eid == app {
            let mut extra = vec![
                (quote("meta_launch_url"), lit("''")),
                (quote("meta_description"), lit("''")),
                (quote("meta_publisher"), lit("''")),
                (quote("meta_icon"), lit("''")),
                (quote("group"), lit("''")),
                (quote("open_in_new_tab"), lit("false")),
            ];
            if meta_hide {
                extra.push((quote("meta_hide"), lit("false")));
            }
            PgEntity {
                id: eid,
                name: def.name.clone(),
                table: t("authentik_core_application"),
                key_name: def.key.name.clone(),
                key_col: quote("policybindingmodel_ptr_id"),
                key: Scalar::Uuid,
                fields: Vec::new(),
                columns: Vec::new(),
                select: String::new(),
                insert_extra: extra,
                touch: Vec::new(),
            }
        } else if eid == binding {
            PgEntity {
                id: eid,
                name: def.name.clone(),
                table: t("authentik_policies_policybinding"),
                key_name: def.key.name.clone(),
                key_col: quote("policy_binding_uuid"),
                key: Scalar::Uuid,
                fields: Vec::new(),
                columns: Vec::new(),
                select: String::new(),
                insert_extra: vec![
                    (quote("enabled"), lit("true")),
                    // `order` has no app default; 0 sorts first, as a new binding in the UI.
                    (quote("order"), lit("0")),
                    (quote("negate"), lit("false")),
                    (quote("timeout"), lit("30")),
                    (quote("failure_result"), lit("false")),
                ],
                touch: Vec::new(),
            }
        } else {
            return Err(StoreError::Schema(format!(
                "--mapping authentik maps the built-in schema only; `{}` is not one of its entities",
                def.name
            )));
        };
        for f in &def.fields {
            let kind = ColKind::of(&f.ty);
            let required = match kind {
                ColKind::Scalar(_) | ColKind::List(_) => !f.ty.is_optional() && !f.ty.admits_absent(),
                _ => false,
            };
            let col = match (def.name.as_str(), f.name.as_str()) {
                ("User", n @ ("username" | "name" | "email" | "is_active" | "attributes" | "type" | "path")) => n,
                ("Group", n @ ("name" | "attributes" | "is_superuser")) => n,
                ("Group", "users") => {
                    let mut pf = field(&f.name, "users", kind, false);
                    pf.join = Some(PgJoin {
                        table: t(membership),
                        source: quote("group_id"),
                        target_col: quote("user_id"),
                        target: user,
                        target_key: Scalar::Int,
                        insert_extra: Vec::new(),
                    });
                    e.fields.push(pf);
                    continue;
                }
                ("Application", n @ ("name" | "slug" | "group" | "meta_launch_url")) => n,
                ("PolicyBinding", "target") => "target_id",
                ("PolicyBinding", n @ ("enabled" | "order" | "negate")) => n,
                ("PolicyBinding", "policy") => "policy_id",
                ("PolicyBinding", "group") => "group_id",
                ("PolicyBinding", "user") => "user_id",
                (en, fname) => {
                    return Err(StoreError::Schema(format!(
                    "--mapping authentik has no column for `{en}.{fname}`; it maps the built-in schema's fields only"
                )))
                }
            };
            let _ = s;
            e.fields.push(field(&f.name, col, kind, required));
        }
        e.finish();
        ents.push(e);
    }
    Ok(Mapping {
        ents,
        ddl: None,
        parents: vec![(
            app,
            format!(
        "INSERT INTO {} (\"pbm_uuid\", \"policy_engine_mode\") VALUES (($1::text)::uuid, 'any') ON CONFLICT DO NOTHING",
        t("authentik_policies_policybindingmodel")
    ),
        )],
        notification: Some(NotificationTarget {
            table: t("authentik_events_notification"),
            events: t("authentik_events_event"),
            users: t("authentik_core_user"),
        }),
    })
}

/// Where `notify` writes on the authentik mapping.
#[derive(Debug, Clone)]
pub struct NotificationTarget {
    pub table: String,
    pub events: String,
    pub users: String,
}

impl PgEntities {
    /// `notify` on the authentik mapping: one row in
    /// `authentik_events_notification` for the user with key `user_pk`,
    /// unseen, in the caller's transaction. `event_id` is the event's uuid
    /// when authentik has that event (events read from its table), else
    /// NULL: the column is a foreign key, and authentik's cleanup task
    /// deletes rows without an event, so such a notification is shown
    /// until the next cleanup. Returns `false` when no user has that key
    /// (nobody is notified, as on SQLite). `None` when this mapping writes
    /// notifications elsewhere (Herald's own table).
    pub fn notify_authentik(
        &self,
        c: &mut Client,
        user_pk: &Value,
        severity: &str,
        body: &str,
        event_uuid: Option<u128>,
    ) -> Result<Option<bool>, RuntimeError> {
        let Some(n) = &self.mapping().notification else { return Ok(None) };
        let user = self.authentik_user(n)?;
        let key = match user_pk {
            Value::Entity(row) => row.key.clone(),
            v => v.clone(),
        };
        let Some(k) = self.key_text(user, &key)? else {
            return Err(RuntimeError::new(Code::RequiredAbsent, "`notify` was given no recipient key"));
        };
        if body.contains('\0') {
            return Err(RuntimeError::new(
                Code::StoreFailure,
                "`notify`: PostgreSQL cannot store text with the NUL character (\\u0000)",
            ));
        }
        let sql = format!(
            "INSERT INTO {} (\"uuid\", \"severity\", \"body\", \"created\", \"seen\", \"event_id\", \"user_id\") \
             SELECT gen_random_uuid(), $1::text, $2::text, now(), false, \
             (SELECT e.\"event_uuid\" FROM {} AS e WHERE e.\"event_uuid\" = ($3::text)::uuid), u.\"id\" \
             FROM {} AS u WHERE u.\"id\" = ($4::text)::bigint",
            n.table, n.events, n.users
        );
        let ev = event_uuid.map(crate::value::format_uuid);
        let params = [Some(severity.to_string()), Some(body.to_string()), ev, Some(k)];
        Ok(Some(self.exec(c, &sql, &params)? == 1))
    }

    /// The entity of authentik's user table (the recipients of `notify`).
    pub(super) fn authentik_user(&self, n: &NotificationTarget) -> Result<&PgEntity, RuntimeError> {
        self.mapping()
            .ents
            .iter()
            .find(|e| e.table == n.users)
            .ok_or_else(|| RuntimeError::new(Code::StoreFailure, "the authentik mapping has no user table"))
    }

    /// A batch's `notify` rows on the authentik mapping in one statement:
    /// [`PgEntities::notify_authentik`]'s row and checks for each, in
    /// order, a row only for a user that exists; returns how many were
    /// stored.
    pub(super) fn notify_authentik_many(
        &self,
        c: &mut Client,
        n: &NotificationTarget,
        rows: &[crate::store::NotificationRow],
    ) -> Result<u64, RuntimeError> {
        let user = self.authentik_user(n)?;
        let mut cols: [Vec<Option<String>>; 4] = Default::default();
        for r in rows {
            let Some(k) = self.key_text(user, &r.user_pk.value())? else {
                return Err(RuntimeError::new(Code::RequiredAbsent, "`notify` was given no recipient key"));
            };
            if r.body.contains('\0') {
                return Err(RuntimeError::new(
                    Code::StoreFailure,
                    "`notify`: PostgreSQL cannot store text with the NUL character (\\u0000)",
                ));
            }
            // The event's identity is its uuid for authentik's events.
            let ev = crate::value::parse_uuid(&r.event_key).map(crate::value::format_uuid);
            for (col, v) in cols.iter_mut().zip([Some(r.severity.to_string()), Some(r.body.clone()), ev, Some(k)]) {
                col.push(v);
            }
        }
        // The single-row statement's `FROM users WHERE id = key` as a join:
        // a row whose user does not exist yields nothing. `created` is
        // `now()`, the transaction's time, for every row either way.
        let sql = format!(
            "INSERT INTO {} (\"uuid\", \"severity\", \"body\", \"created\", \"seen\", \"event_id\", \"user_id\") \
             SELECT gen_random_uuid(), r.sev, r.body, now(), false, \
             (SELECT e.\"event_uuid\" FROM {} AS e WHERE e.\"event_uuid\" = (r.ev)::uuid), u.\"id\" \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(sev, body, ev, k, n) \
             JOIN {} AS u ON u.\"id\" = (r.k)::bigint ORDER BY r.n",
            n.table, n.events, n.users
        );
        let st = self.prepare(c, &sql)?;
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> =
            cols.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect();
        c.execute(&st, &p).map_err(pg_err)
    }
}
