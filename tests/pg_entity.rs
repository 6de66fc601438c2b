//! Entity access on PostgreSQL (`store::pgent`, Herald's own tables in the
//! schema `herald`) against the SQLite store, on a real server: fixtures
//! load to the same dump; every read and write (`set`/`append`/`remove`
//! on columns, JSON paths and many-to-many fields, `upsert`, `delete`,
//! links, and their errors) gives the same answer on both, step by step,
//! and the stores end equal.

mod pg_db;
mod pg_support;
mod store_support;

use herald::diag::RuntimeError;
use herald::interp::Db;
use herald::store::pgent::normalise_dump;
use herald::store::Store;
use herald::types::EntityId;
use herald::value::{parse_uuid, Row, Value};
use pg_db::PgDb;
use std::sync::Arc;
use store_support::*;

struct Both {
    _dir: tempfile::TempDir,
    lite: Store,
    pg: PgDb,
    _db: pg_support::TestDb,
}

fn both(tag: &str) -> Both {
    let schema = Arc::new(authentik_schema());
    let dir = tempfile::tempdir().unwrap();
    let mut lite = Store::open(&dir.path().join("h.db"), schema.clone()).unwrap();
    lite.load_fixtures(&authentik_fixtures()).unwrap();
    let db = pg_support::TestDb::new(tag);
    let pg = PgDb::herald(&db.url, schema);
    pg.load(&authentik_fixtures());
    Both { _dir: dir, lite, pg, _db: db }
}

/// The SQLite dump's entity part (up to Herald's own tables).
fn entity_dump(s: &Store) -> String {
    let d = s.dump();
    let cut = d.find("== herald_").unwrap_or(d.len());
    d[..cut].to_string()
}

fn sorted_json(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), sorted_json(&m[k]))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted_json).collect()),
        o => o.clone(),
    }
}

/// A value with object keys sorted (jsonb keeps its own key order).
fn norm(v: &Value) -> String {
    match v {
        Value::Entity(r) => norm_row(r),
        Value::List(items) => format!("[{}]", items.iter().map(norm).collect::<Vec<_>>().join(", ")),
        Value::Object(_) => sorted_json(&v.to_json(None)).to_string(),
        v => format!("{v:?}"),
    }
}

fn norm_row(r: &Arc<Row>) -> String {
    format!("{:?} {:?} [{}]", r.entity, r.key, r.fields.iter().map(norm).collect::<Vec<_>>().join(", "))
}

fn outcome<T>(r: Result<T, RuntimeError>, f: impl Fn(&T) -> String) -> String {
    match r {
        Ok(v) => format!("ok {}", f(&v)),
        Err(e) => format!("error {:?}", e.code),
    }
}

fn idx(b: &Both, e: EntityId, name: &str) -> usize {
    b.lite.schema().entity(e).fields.iter().position(|f| f.name == name).unwrap()
}

fn uuid(t: &str) -> Value {
    Value::Uuid(parse_uuid(t).unwrap())
}

fn obj(j: serde_json::Value) -> Value {
    Value::from_json(&j)
}

/// One step on both stores: the same answer, or the test fails naming it.
fn same(b: &Both, what: &str, op: &dyn Fn(&dyn Db) -> String) {
    let l = op(&b.lite);
    let p = op(&b.pg);
    assert_eq!(p, l, "{what}: PostgreSQL (left) and SQLite (right) disagree");
}

#[test]
fn fixtures_load_to_the_same_dump() {
    let b = both("pgent_load");
    assert_eq!(normalise_dump(&b.pg.dump()), normalise_dump(&entity_dump(&b.lite)));
    assert!(b.pg.dump().contains("== Group (2 rows)"), "{}", b.pg.dump());
}

#[test]
fn reads_agree() {
    let b = both("pgent_reads");
    let users = idx(&b, GROUP, "users");
    for key in [
        Value::Int(12),
        Value::Float(12.0),
        Value::Int(999),
        Value::Null,
        Value::Absent,
        Value::str("12"),
        Value::Float(1.5),
    ] {
        same(&b, &format!("User[{key:?}]"), &|d| {
            outcome(d.lookup(USER, &key), |r| format!("{:?}", r.as_ref().map(norm_row)))
        });
    }
    for key in [uuid(ADMINS), Value::str(OPS_HEX), Value::str(ADMINS), Value::str("nope"), Value::Int(3)] {
        same(&b, &format!("Group[{key:?}]"), &|d| {
            outcome(d.lookup(GROUP, &key), |r| format!("{:?}", r.as_ref().map(norm_row)))
        });
        same(&b, &format!("Group[{key:?}].users"), &|d| {
            outcome(d.related(GROUP, &key, users), |rs| rs.iter().map(norm_row).collect::<Vec<_>>().join("; "))
        });
    }
    let keys = [Value::Int(40), Value::Int(999), Value::Null, Value::Int(1), Value::Int(40)];
    same(&b, "User[keys]", &|d| {
        outcome(d.lookup_many(USER, &keys), |rs| rs.iter().map(norm_row).collect::<Vec<_>>().join("; "))
    });
    same(&b, "User[bad keys]", &|d| {
        outcome(d.lookup_many(USER, &[Value::Int(1), Value::Bool(true)]), |rs| rs.len().to_string())
    });
}

#[test]
fn writes_agree_step_by_step() {
    let b = both("pgent_writes");
    let attrs = idx(&b, USER, "attributes");
    let name = idx(&b, USER, "name");
    let email = idx(&b, USER, "email");
    let typ = idx(&b, USER, "type");
    let active = idx(&b, USER, "is_active");
    let users = idx(&b, GROUP, "users");
    let gattrs = idx(&b, GROUP, "attributes");
    let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let v = |d: &Value| norm(d);
    // set: whole columns, conversions, errors.
    same(&b, "set name", &|d| outcome(d.set_field(USER, &Value::Int(12), name, &[], &Value::str("Alice B.")), v));
    same(&b, "set name null", &|d| outcome(d.set_field(USER, &Value::Int(12), name, &[], &Value::Null), v));
    same(&b, "set type null", &|d| outcome(d.set_field(USER, &Value::Int(12), typ, &[], &Value::Null), v));
    same(&b, "set active int", &|d| outcome(d.set_field(USER, &Value::Int(12), active, &[], &Value::Int(1)), v));
    same(&b, "set active false", &|d| outcome(d.set_field(USER, &Value::Int(12), active, &[], &Value::Bool(false)), v));
    same(&b, "set missing row", &|d| outcome(d.set_field(USER, &Value::Int(999), email, &[], &Value::str("x")), v));
    same(&b, "set no key", &|d| outcome(d.set_field(USER, &Value::Absent, email, &[], &Value::str("x")), v));
    // JSON paths.
    same(&b, "set attributes.a.b", &|d| {
        outcome(d.set_field(USER, &Value::Int(31), attrs, &p(&["a", "b"]), &Value::Int(5)), v)
    });
    same(&b, "set attributes.level", &|d| {
        outcome(
            d.set_field(USER, &Value::Int(12), attrs, &p(&["level"]), &obj(serde_json::json!({"x": [1, 2.5, "s"]}))),
            v,
        )
    });
    same(&b, "set through a non-object", &|d| {
        outcome(d.set_field(USER, &Value::Int(12), attrs, &p(&["admin", "deep"]), &Value::Int(1)), v)
    });
    same(&b, "unset attributes.level", &|d| {
        outcome(d.set_field(USER, &Value::Int(40), attrs, &p(&["level"]), &Value::Absent), v)
    });
    same(&b, "set whole attributes", &|d| {
        outcome(d.set_field(USER, &Value::Int(1), attrs, &[], &obj(serde_json::json!({"z": 1, "a": {"b": null}}))), v)
    });
    same(&b, "path into a string field", &|d| {
        outcome(d.set_field(USER, &Value::Int(1), name, &p(&["x"]), &Value::Int(1)), v)
    });
    // append.
    same(&b, "append to attributes.sshPublicKey", &|d| {
        outcome(d.append(USER, &Value::Int(12), attrs, &p(&["sshPublicKey"]), &Value::str("ssh-rsa B")), v)
    });
    same(&b, "append creates a list", &|d| {
        outcome(d.append(USER, &Value::Int(31), attrs, &p(&["keys"]), &Value::Int(7)), v)
    });
    same(&b, "append to a non-list", &|d| {
        outcome(d.append(USER, &Value::Int(40), attrs, &p(&["note"]), &Value::Int(7)), v)
    });
    same(&b, "append absent", &|d| outcome(d.append(USER, &Value::Int(40), attrs, &p(&["tags"]), &Value::Absent), v));
    same(&b, "append history", &|d| {
        outcome(d.append(GROUP, &Value::str(OPS_HEX), gattrs, &p(&["UserAddedHistory"]), &Value::str("2026 - bob")), v)
    });
    same(&b, "append member", &|d| outcome(d.append(GROUP, &uuid(ADMINS), users, &[], &Value::Int(40)), v));
    same(&b, "append member again", &|d| outcome(d.append(GROUP, &uuid(ADMINS), users, &[], &Value::Int(40)), v));
    same(&b, "append a string member", &|d| outcome(d.append(GROUP, &uuid(ADMINS), users, &[], &Value::str("x")), v));
    // remove.
    same(&b, "remove attributes.tags", &|d| outcome(d.remove(USER, &Value::Int(40), attrs, &p(&["tags"])), v));
    same(&b, "remove a missing key", &|d| outcome(d.remove(USER, &Value::Int(40), attrs, &p(&["none", "x"])), v));
    same(&b, "remove type", &|d| outcome(d.remove(USER, &Value::Int(1), typ, &[]), v));
    same(&b, "remove a required field", &|d| outcome(d.remove(USER, &Value::Int(1), email, &[]), v));
    same(&b, "remove members", &|d| outcome(d.remove(GROUP, &Value::str(OPS_HEX), users, &[]), v));
    // set of a many-to-many field.
    same(&b, "set members", &|d| {
        outcome(
            d.set_field(
                GROUP,
                &Value::str(OPS_HEX),
                users,
                &[],
                &Value::list(vec![Value::Int(12), Value::Int(1), Value::Int(77)]),
            ),
            v,
        )
    });
    same(&b, "set members of a missing group", &|d| {
        outcome(
            d.set_field(GROUP, &Value::str("00000000000000000000000000000000"), users, &[], &Value::list(vec![])),
            v,
        )
    });
    // links.
    same(&b, "link add", &|d| {
        outcome(d.link(GROUP, &Value::str(OPS_HEX), users, &Value::Int(31), true), |_| String::new())
    });
    same(&b, "link add twice", &|d| {
        outcome(d.link(GROUP, &Value::str(OPS_HEX), users, &Value::Int(31), true), |_| String::new())
    });
    same(&b, "link remove", &|d| {
        outcome(d.link(GROUP, &Value::str(OPS_HEX), users, &Value::Int(12), false), |_| String::new())
    });
    same(&b, "link remove missing", &|d| {
        outcome(d.link(GROUP, &Value::str(OPS_HEX), users, &Value::Int(500), false), |_| String::new())
    });
    same(&b, "link on a missing row", &|d| {
        outcome(d.link(GROUP, &Value::str("00000000000000000000000000000001"), users, &Value::Int(1), true), |_| {
            String::new()
        })
    });
    same(&b, "link a wrong kind", &|d| {
        outcome(d.link(GROUP, &Value::str(OPS_HEX), users, &Value::str("bob"), true), |_| String::new())
    });
    // upsert.
    let fields = |who: &str| {
        vec![
            (idx(&b, USER, "username"), Value::str(who)),
            (name, Value::str(who)),
            (email, Value::str(&format!("{who}@example.com"))),
            (active, Value::Bool(true)),
            (attrs, obj(serde_json::json!({"team": "blue", "a": 1}))),
        ]
    };
    same(&b, "upsert create", &|d| outcome(d.upsert(USER, &Value::Int(77), &fields("dora")), norm_row));
    same(&b, "upsert update", &|d| outcome(d.upsert(USER, &Value::Int(77), &[(name, Value::str("Dora"))]), norm_row));
    same(&b, "upsert missing required", &|d| {
        outcome(d.upsert(USER, &Value::Int(78), &[(name, Value::str("x"))]), norm_row)
    });
    same(&b, "upsert wrong type", &|d| {
        outcome(d.upsert(USER, &Value::Int(77), &[(active, Value::str("yes"))]), norm_row)
    });
    same(&b, "upsert no key", &|d| outcome(d.upsert(USER, &Value::Null, &fields("x")), norm_row));
    same(&b, "upsert a group by hex key", &|d| {
        outcome(
            d.upsert(
                GROUP,
                &Value::str("99999999999999999999999999999999"),
                &[(idx(&b, GROUP, "name"), Value::str("new")), (gattrs, obj(serde_json::json!({})))],
            ),
            norm_row,
        )
    });
    // delete, with links on both sides.
    same(&b, "delete user 12", &|d| outcome(d.delete(USER, &Value::Int(12)), |x| x.to_string()));
    same(&b, "delete again", &|d| outcome(d.delete(USER, &Value::Int(12)), |x| x.to_string()));
    same(&b, "delete the admins", &|d| outcome(d.delete(GROUP, &uuid(ADMINS)), |x| x.to_string()));
    same(&b, "delete absent key", &|d| outcome(d.delete(GROUP, &Value::Absent), |x| x.to_string()));
    b.pg.commit();
    assert_eq!(normalise_dump(&b.pg.dump()), normalise_dump(&entity_dump(&b.lite)));
}

/// PostgreSQL's text holds no NUL: writing one is a store error (R0005)
/// that leaves the transaction usable, and a key with one finds nothing.
#[test]
fn nul_is_a_clear_error_on_postgres() {
    let b = both("pgent_nul");
    let name = idx(&b, USER, "name");
    let attrs = idx(&b, USER, "attributes");
    let e = b.pg.set_field(USER, &Value::Int(12), name, &[], &Value::str("a\u{0}b")).unwrap_err();
    assert_eq!(e.code, herald::diag::Code::StoreFailure, "{}", e.message);
    assert!(e.message.contains("NUL"), "{}", e.message);
    let e = b.pg.set_field(USER, &Value::Int(12), attrs, &["k".into()], &Value::str("\u{0}")).unwrap_err();
    assert!(e.message.contains("NUL"), "{}", e.message);
    assert!(b.pg.lookup(GROUP, &Value::str("\u{0}")).is_err(), "a bad uuid text is R0001");
    // The transaction still works.
    assert_eq!(b.pg.set_field(USER, &Value::Int(12), name, &[], &Value::str("ok")).unwrap(), Value::str("ok"));
}

/// The server down: a clear error, not a panic.
#[test]
fn a_closed_connection_is_a_store_error() {
    let b = both("pgent_down");
    let mut admin = pg_support::admin();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&b._db.name],
        )
        .unwrap();
    let e = b.pg.lookup(USER, &Value::Int(12)).unwrap_err();
    assert_eq!(e.code, herald::diag::Code::StoreFailure);
    assert!(e.message.contains("store failed"), "{}", e.message);
}
