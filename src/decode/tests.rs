//! Unit tests and property tests of the decoder.

use super::*;
use crate::schema::{EventDef, FieldDef, RecordDef, Schema};
use crate::span::Span;
use crate::types::{RecordId, Ty};
use proptest::prelude::*;
use serde_json::Value as J;

// ---------------------------------------------------------------- schemas

fn rec(s: &mut Schema, name: Option<&str>, fields: Vec<(&str, Ty)>) -> RecordId {
    let id = s.add_record(RecordDef {
        name: name.map(String::from),
        fields: fields.into_iter().map(|(n, ty)| FieldDef { name: n.into(), ty, span: Span::default() }).collect(),
        span: Span::default(),
    });
    if let Some(n) = name {
        s.index_type(n.into(), id);
    }
    id
}

fn opt(t: Ty) -> Ty {
    t.optional()
}

/// A subset of the authentik schema (see shared/BUILTIN_SCHEMA.md), plus a
/// `typed` event with one field of every type.
pub(super) fn authentik() -> Schema {
    let mut s = Schema::default();
    let model_ref = rec(
        &mut s,
        Some("ModelRef"),
        vec![("app", Ty::String), ("model_name", Ty::String), ("pk", Ty::Any), ("name", opt(Ty::String))],
    );
    let event_user = rec(
        &mut s,
        Some("EventUser"),
        vec![
            ("pk", Ty::Any),
            ("username", opt(Ty::String)),
            ("email", opt(Ty::String)),
            ("is_anonymous", opt(Ty::Bool)),
        ],
    );
    let http = rec(
        &mut s,
        Some("HttpRequest"),
        vec![("path", opt(Ty::String)), ("method", opt(Ty::String)), ("args", Ty::Any)],
    );
    let geo =
        rec(&mut s, Some("Geo"), vec![("country", opt(Ty::String)), ("lat", opt(Ty::Float)), ("long", opt(Ty::Float))]);
    let common_ctx = vec![
        ("message", opt(Ty::String)),
        ("http_request", opt(Ty::Record(http))),
        ("geo", opt(Ty::Record(geo))),
        ("asn", Ty::Any),
    ];
    let common_fields = |ctx: RecordId| {
        vec![
            ("event_uuid", Ty::Uuid),
            ("created", Ty::Timestamp),
            ("expires", opt(Ty::Timestamp)),
            ("app", opt(Ty::String)),
            ("user", opt(Ty::Record(event_user))),
            ("client_ip", opt(Ty::String)),
            ("brand", opt(Ty::Record(model_ref))),
            ("context", opt(Ty::Record(ctx))),
            ("action", Ty::String),
        ]
    };
    let cctx = rec(&mut s, None, common_ctx.clone());
    let common = rec(&mut s, None, common_fields(cctx));
    s.common = Some(common);
    s.discriminator = Some("action".into());
    s.identity = Some(vec!["event_uuid".into()]);

    let event_top = |s: &mut Schema, name: &str, extra: Vec<(&str, Ty)>, top: Vec<(&str, Ty)>| {
        let mut f = common_ctx.clone();
        f.extend(extra);
        let ctx = rec(s, None, f);
        let mut fields = common_fields(ctx);
        fields.extend(top);
        let r = rec(s, None, fields);
        s.add_event(EventDef { name: name.into(), record: r, span: Span::default() });
    };
    let event = |s: &mut Schema, name: &str, extra: Vec<(&str, Ty)>| event_top(s, name, extra, vec![]);
    let kd = rec(&mut s, None, vec![("known_device", opt(Ty::Bool)), ("mfa_devices", Ty::Any)]);
    event(
        &mut s,
        "login",
        vec![
            ("auth_method", opt(Ty::String)),
            ("auth_method_args", opt(Ty::Record(kd))),
            ("source", opt(Ty::Record(model_ref))),
        ],
    );
    event(&mut s, "login_failed", vec![("username", opt(Ty::String)), ("stage", opt(Ty::Record(model_ref)))]);
    event(&mut s, "logout", vec![]);
    event(&mut s, "model_created", vec![("model", Ty::Record(model_ref)), ("diff", Ty::Any)]);
    event(&mut s, "model_updated", vec![("model", Ty::Record(model_ref)), ("diff", Ty::Any)]);
    event(&mut s, "model_deleted", vec![("model", Ty::Record(model_ref))]);
    event(&mut s, "email_sent", vec![("subject", opt(Ty::String)), ("to_email", opt(Ty::String.list()))]);
    let inner = rec(&mut s, None, vec![("x", Ty::Int), ("y", opt(Ty::Uuid))]);
    event_top(
        &mut s,
        "typed",
        vec![],
        vec![
            ("i", opt(Ty::Int)),
            ("f", opt(Ty::Float)),
            ("s", opt(Ty::String)),
            ("b", opt(Ty::Bool)),
            ("u", opt(Ty::Uuid)),
            ("t", opt(Ty::Timestamp)),
            ("a", Ty::Any),
            ("ri", Ty::Int),
            ("lu", opt(Ty::Uuid.list())),
            ("lr", opt(Ty::Record(inner).list())),
            ("r", opt(Ty::Record(inner))),
            ("n", Ty::Null),
        ],
    );
    s
}

fn split(p: &str) -> Vec<String> {
    if p.is_empty() {
        vec![]
    } else {
        p.split('.').map(String::from).collect()
    }
}

/// A plan where every type's match paths are `paths` and full paths add `body`.
fn plan_with(schema: Schema, paths: &[&str], body: &[&str], literals: &[&str]) -> Arc<DecodePlan> {
    let n = schema.events.len();
    let all: Vec<Vec<String>> = paths.iter().chain(body).map(|p| split(p)).collect();
    let m: Vec<PathId> = (0..paths.len() as u32).map(PathId).collect();
    let f: Vec<PathId> = (0..all.len() as u32).map(PathId).collect();
    Arc::new(DecodePlan::new(PlanSpec {
        schema: Arc::new(schema),
        paths: all,
        match_paths: vec![m; n + 1],
        full_paths: vec![f; n + 1],
        literals: literals.iter().map(|s| s.to_string()).collect(),
    }))
}

fn decoder(paths: &[&str]) -> Decoder {
    Decoder::new(plan_with(authentik(), paths, &[], &[]))
}

const UUID: &str = "75ef35e6-e6b6-48f1-8e7b-90029db5103f";

/// An event of type `action` with extra top-level members.
fn ev(action: &str, extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(r#"{{"event_uuid":"{UUID}","created":"2026-04-14T08:02:07.556423Z","action":"{action}"{sep}{extra}}}"#)
}

fn val(d: &mut Decoder, line: &str, p: u32) -> Result<Value, DecodeError> {
    let dd = d.decode_full(line.as_bytes())?;
    Ok(dd.value(PathId(p)))
}

/// Why a line fails: the line's error (a dead letter) or, when it decodes,
/// its first contradiction.
fn err(d: &mut Decoder, line: &str) -> String {
    if let Err(e) = d.decode_full(line.as_bytes()) {
        return e.to_string();
    }
    contra(d, line).to_string()
}

fn contra(d: &mut Decoder, line: &str) -> DecodeError {
    let x = d.decode_full(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: not decoded: {e}"));
    let p = (0..x.slots().len() as u32)
        .map(PathId)
        .find(|&p| x.slot(p).tag == tag::CONTRA)
        .unwrap_or_else(|| panic!("expected a contradiction in {line}"));
    assert_eq!(x.value(p), Value::Absent, "a contradicted slot has no value");
    x.contradiction(p).unwrap().clone()
}

fn model(extra: &str) -> String {
    ev(
        "model_created",
        &format!(r#""context":{{"model":{{"app":"authentik_core","model_name":"user","pk":31{extra}}}}}"#),
    )
}

// ---------------------------------------------------------------- basics

#[test]
fn decodes_paths_and_types() {
    let mut d = decoder(&["context.model.app", "context.model.pk", "user.username", "event_uuid", "created", "action"]);
    let line = model("");
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.type_name(), "model_created");
    assert_eq!(x.event_type, d_type(&x, "model_created"));
    assert_eq!(x.value(PathId(0)), Value::str("authentik_core"));
    assert_eq!(x.value(PathId(1)), Value::Int(31));
    assert_eq!(x.value(PathId(2)), Value::Absent);
    assert_eq!(x.value(PathId(3)), Value::Uuid(crate::value::parse_uuid(UUID).unwrap()));
    assert_eq!(
        x.value(PathId(4)),
        Value::Timestamp(crate::value::parse_timestamp("2026-04-14T08:02:07.556423Z").unwrap())
    );
    assert_eq!(x.value(PathId(5)), Value::str("model_created"));
    assert_eq!(x.slots()[1], Slot { tag: tag::INT, sym: 0, a: 31, b: 0 });
    assert_eq!(x.identity().unwrap(), UUID);
}

fn d_type(x: &Decoded, name: &str) -> Option<EventTypeId> {
    x.dec.plan.event_type(name)
}

#[test]
fn strings_point_into_the_line_or_scratch() {
    let p = plan_with(authentik(), &["context.model.app", "context.model.model_name"], &[], &["user", "core"]);
    let mut d = Decoder::new(p.clone());
    let line = model("").replace("\"user\"", "\"us\\u0065r\"");
    let x = d.decode_match(line.as_bytes()).unwrap();
    let app = x.slots()[0];
    assert_eq!(app.tag, tag::STR);
    assert_eq!(app.a & SCRATCH, 0);
    assert_eq!(x.str_of(&app), "authentik_core");
    assert_eq!(&x.line()[app.a as usize..(app.a + app.b) as usize], b"authentik_core");
    assert_eq!(app.sym, 0);
    let mn = x.slots()[1];
    assert_ne!(mn.a & SCRATCH, 0);
    assert_eq!(x.str_of(&mn), "user");
    assert_eq!(mn.sym, p.sym("user").unwrap());
    assert_eq!(p.sym("user"), Some(1));
    assert_eq!(p.sym("core"), Some(2));
    assert_eq!(p.sym("nope"), None);
    let off = (mn.a & !SCRATCH) as usize;
    assert_eq!(&x.scratch()[off..off + mn.b as usize], b"user");
}

#[test]
fn absent_null_and_deeper() {
    let mut d = decoder(&["user.username", "user", "client_ip", "context.geo.country"]);
    let x = ev("login", r#""user":null,"client_ip":null"#);
    assert_eq!(val(&mut d, &x, 0).unwrap(), Value::Absent);
    assert_eq!(val(&mut d, &x, 1).unwrap(), Value::Null);
    assert_eq!(val(&mut d, &x, 2).unwrap(), Value::Null);
    assert_eq!(val(&mut d, &x, 3).unwrap(), Value::Absent);
    let x = ev("login", r#""user":{"username":null},"context":{"geo":null}"#);
    assert_eq!(val(&mut d, &x, 0).unwrap(), Value::Null);
    assert_eq!(val(&mut d, &x, 3).unwrap(), Value::Absent);
    let x = ev("login", r#""user":{}"#);
    assert_eq!(val(&mut d, &x, 0).unwrap(), Value::Absent);
    let s = d.decode_full(x.as_bytes()).unwrap();
    assert_eq!(s.slots()[0].tag, tag::ABSENT);
    assert_eq!(s.slots()[1].tag, tag::OBJECT);
    assert_eq!(s.slots()[2].tag, tag::ABSENT);
}

#[test]
fn required_missing_or_null_is_an_error() {
    let mut d = decoder(&["context.model.app"]);
    let e = err(&mut d, &ev("model_created", r#""context":{}"#));
    assert_eq!(e, "`$.context.model`: expected ModelRef, found nothing");
    let e = err(&mut d, &ev("model_created", r#""context":{"model":{"model_name":"x","pk":1}}"#));
    assert_eq!(e, "`$.context.model.app`: expected string, found nothing");
    let e = err(&mut d, &ev("model_created", r#""context":{"model":null}"#));
    assert_eq!(e, "`$.context.model`: expected ModelRef, found null");
    // An optional record on the way: absent, no error.
    assert_eq!(val(&mut d, &ev("model_created", ""), 0).unwrap(), Value::Absent);
    assert_eq!(val(&mut d, &ev("model_created", r#""context":null"#), 0).unwrap(), Value::Absent);
    // A type that does not read the path does not check it.
    assert_eq!(val(&mut d, &ev("login", r#""context":{}"#), 0).unwrap(), Value::Absent);
    // The error only when a rule reads the path.
    let mut d2 = decoder(&["user.username"]);
    assert!(d2.decode_full(ev("model_created", r#""context":{}"#).as_bytes()).is_ok());
}

#[test]
fn type_mismatches() {
    let mut d = decoder(&["i", "f", "s", "b", "u", "t", "ri", "context.model"]);
    let t = |extra: &str| ev("typed", &format!(r#""ri":1,{extra}"#));
    assert_eq!(err(&mut d, &t(r#""i":"abc""#)), r#"`$.i`: expected int, found string "abc""#);
    assert_eq!(err(&mut d, &t(r#""i":1.0"#)), "`$.i`: expected int, found number 1.0");
    assert_eq!(err(&mut d, &t(r#""i":1e3"#)), "`$.i`: expected int, found number 1e3");
    assert_eq!(
        err(&mut d, &t(r#""i":9223372036854775808"#)),
        "`$.i`: expected int, found number 9223372036854775808 (out of range)"
    );
    assert_eq!(err(&mut d, &t(r#""f":"1""#)), r#"`$.f`: expected float, found string "1""#);
    assert_eq!(err(&mut d, &t(r#""s":1"#)), "`$.s`: expected string, found number 1");
    assert_eq!(err(&mut d, &t(r#""b":"true""#)), r#"`$.b`: expected bool, found string "true""#);
    assert_eq!(err(&mut d, &t(r#""u":"not-a-uuid""#)), r#"`$.u`: expected uuid, found string "not-a-uuid""#);
    assert_eq!(err(&mut d, &t(r#""t":"yesterday""#)), r#"`$.t`: expected timestamp, found string "yesterday""#);
    assert_eq!(err(&mut d, &t(r#""t":[]"#)), "`$.t`: expected timestamp, found array");
    assert_eq!(err(&mut d, &ev("typed", "")), "`$.ri`: expected int, found nothing");
    assert_eq!(err(&mut d, &ev("typed", r#""ri":null"#)), "`$.ri`: expected int, found null");
    let long = "x".repeat(100);
    let e = err(&mut d, &t(&format!(r#""i":"{long}""#)));
    assert_eq!(e, format!(r#"`$.i`: expected int, found string "{}"…"#, "x".repeat(40)));
    // Structured error.
    match contra(&mut d, &t(r#""i":"abc""#)) {
        DecodeError::Type { path, expected, found } => {
            assert_eq!((path.as_str(), expected.as_str(), found.as_str()), ("$.i", "int", "string \"abc\""));
        }
        other => panic!("{other:?}"),
    }
    // Good values.
    let line =
        t(r#""i":-42,"f":3,"s":"x","b":false,"u":"305332A450AC475EB97CE2CD167238A6","t":"2026-04-14T10:02:07+02:00""#);
    let x = d.decode_full(line.as_bytes()).unwrap();
    assert_eq!(x.value(PathId(0)), Value::Int(-42));
    assert_eq!(x.value(PathId(1)), Value::Float(3.0));
    assert_eq!(x.slots()[1].tag, tag::FLOAT);
    assert_eq!(x.value(PathId(2)), Value::str("x"));
    assert_eq!(x.value(PathId(3)), Value::Bool(false));
    assert_eq!(x.value(PathId(4)), Value::Uuid(0x305332a450ac475eb97ce2cd167238a6));
    let ts = crate::value::parse_timestamp("2026-04-14T08:02:07Z").unwrap();
    assert_eq!(x.value(PathId(5)), Value::Timestamp(ts));
    assert_eq!(x.value(PathId(6)), Value::Int(1));
    // A record on the way that is not an object.
    let e = err(&mut d, &ev("model_created", r#""context":{"model":"x"}"#));
    assert_eq!(e, r#"`$.context.model`: expected ModelRef, found string "x""#);
    let e = err(&mut d, &ev("model_created", r#""context":[1]"#));
    assert!(e.starts_with("`$.context`: expected { message: string?"), "{e}");
}

#[test]
fn a_contradiction_is_per_slot_not_per_line() {
    // `s` contradicts the schema; `i` and the identity decode as usual.
    let mut d = decoder(&["s", "i"]);
    let line = ev("typed", r#""ri":1,"s":276,"i":5"#);
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.slot(PathId(0)).tag, tag::CONTRA);
    assert_eq!(x.contradiction(PathId(0)).unwrap().to_string(), "`$.s`: expected string, found number 276");
    assert_eq!(x.value(PathId(1)), Value::Int(5));
    assert!(x.contradiction(PathId(1)).is_none());
    assert_eq!(x.identity().unwrap(), UUID);
    // The next event starts clean.
    let line = ev("typed", r#""ri":1,"s":"x""#);
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.value(PathId(0)), Value::str("x"));
    assert!(x.contradiction(PathId(0)).is_none());
    // Malformed lines and a missing discriminator are still errors.
    assert!(d.decode_match(br#"{"s":1}"#).is_err());
    assert!(d.decode_match(br#"{"action":1}"#).is_err());
    assert!(d.decode_match(b"{\"action\":").is_err());
}

#[test]
fn numbers_out_of_range_fail_only_where_read() {
    let mut d = decoder(&["i", "f", "a", "context.diff"]);
    // Unread: any valid JSON number is fine, however large.
    let nines = "9".repeat(400);
    for big in ["1e400", "-1e400", "1E+999", nines.as_str(), "18446744073709551617"] {
        let line = ev("typed", &format!(r#""ri":1,"i":2,"f":0.5,"unread":{big},"deep":[{{"x":{big}}}]"#));
        let x = d.decode_match(line.as_bytes()).unwrap_or_else(|e| panic!("{big}: {e}"));
        assert_eq!((x.value(PathId(0)), x.value(PathId(1))), (Value::Int(2), Value::Float(0.5)), "{big}");
        assert!((0..4).all(|p| x.contradiction(PathId(p)).is_none()), "{big}");
    }
    // Read: a contradiction at the field.
    let e = err(&mut d, &ev("typed", r#""ri":1,"f":1e400"#));
    assert_eq!(e, "`$.f`: expected float, found number 1e400 (out of range)");
    let e = err(&mut d, &ev("typed", r#""ri":1,"i":18446744073709551617"#));
    assert_eq!(e, "`$.i`: expected int, found number 18446744073709551617 (out of range)");
    let e = err(&mut d, &ev("typed", r#""ri":1,"a":-1e400"#));
    assert_eq!(e, "`$.a`: expected a number, found number -1e400 (out of range)");
    // Inside an `any` value that is read: the value is contradicted, not
    // silently absent.
    let e = err(
        &mut d,
        &ev("model_updated", r#""context":{"model":{"app":"a","model_name":"m","pk":1},"diff":{"n":[1e400]}}"#),
    );
    assert_eq!(e, "`$.context.diff`: expected any, found object with a number out of range");
    // `any` keeps a large integer as a float (as JSON parsers do).
    let line = ev("typed", r#""ri":1,"a":18446744073709551617"#);
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.value(PathId(2)), Value::Float(18446744073709551617.0));
    // Inside a typed list or record.
    let mut d = decoder(&["lr", "r"]);
    let e = err(&mut d, &ev("typed", r#""ri":1,"r":{"x":1e400}"#));
    assert_eq!(e, "`$.r.x`: expected int, found number 1e400");
}

#[test]
fn timestamps_outside_years_1_to_9999_contradict_the_schema() {
    let mut d = decoder(&["t", "created"]);
    for t in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59"] {
        let e = err(&mut d, &ev("typed", &format!(r#""ri":1,"t":"{t}""#)));
        assert_eq!(e, format!(r#"`$.t`: expected timestamp, found string "{t}""#));
    }
    let line = ev("typed", r#""ri":1,"t":"9999-12-31T23:59:59+23:59""#);
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert!(matches!(x.value(PathId(0)), Value::Timestamp(_)));
}

#[test]
fn uuid_forms_and_timestamps() {
    let mut d = decoder(&["u", "t"]);
    let forms = [
        "305332a450ac475eb97ce2cd167238a6",
        "305332a4-50ac-475e-b97c-e2cd167238a6",
        "305332A4-50AC-475E-B97C-E2CD167238A6",
        "305332a4-50ac-475e-b97c-e2cd167238a\\u0036",
    ];
    for f in forms {
        let x = ev("typed", &format!(r#""ri":1,"u":"{f}""#));
        assert_eq!(val(&mut d, &x, 0).unwrap(), Value::Uuid(0x305332a450ac475eb97ce2cd167238a6), "{f}");
    }
    for bad in [
        "305332a450ac475eb97ce2cd167238a",
        "305332a4-50ac475e-b97c-e2cd167238a6x",
        "",
        "{305332a4-50ac-475e-b97c-e2cd167238a6}",
    ] {
        let x = ev("typed", &format!(r#""ri":1,"u":"{bad}""#));
        assert!(err(&mut d, &x).starts_with("`$.u`: expected uuid"), "{bad}");
    }
    let x = ev("typed", r#""ri":1,"t":"1969-12-31T23:59:59.5Z""#);
    assert_eq!(val(&mut d, &x, 1).unwrap(), Value::Timestamp(-500_000_000));
    let s = d.decode_full(x.as_bytes()).unwrap().slots()[1];
    assert_eq!(s.tag, tag::TIMESTAMP);
    assert_eq!(((s.b as u128) << 64 | s.a as u128) as i128, -500_000_000);
    for bad in ["2026-04-14", "2026-04-14T08:02:07", "2026-13-14T08:02:07Z", "x"] {
        let x = ev("typed", &format!(r#""ri":1,"t":"{bad}""#));
        assert!(err(&mut d, &x).starts_with("`$.t`: expected timestamp"), "{bad}");
    }
}

#[test]
fn any_reads_by_kind_and_navigates_dynamically() {
    let mut d = decoder(&["a", "a.k", "a.k.z", "context.model.pk", "context.asn.x"]);
    let cases: Vec<(&str, Value)> = vec![
        (r#""s""#, Value::str("s")),
        ("12", Value::Int(12)),
        ("-9223372036854775808", Value::Int(i64::MIN)),
        ("9223372036854775808", Value::Float(9223372036854775808.0)),
        ("1.5", Value::Float(1.5)),
        ("1e2", Value::Float(100.0)),
        ("-0", Value::Float(-0.0)),
        ("true", Value::Bool(true)),
        ("null", Value::Null),
        ("[1,\"x\"]", Value::list(vec![Value::Int(1), Value::str("x")])),
    ];
    for (json, want) in cases {
        let x = ev("typed", &format!(r#""ri":1,"a":{json}"#));
        assert_eq!(val(&mut d, &x, 0).unwrap(), want, "{json}");
        assert_eq!(val(&mut d, &x, 1).unwrap(), Value::Absent, "{json}");
    }
    let x = ev("typed", r#""ri":1,"a":{"k":{"z":[1]}}"#);
    assert_eq!(val(&mut d, &x, 2).unwrap(), Value::list(vec![Value::Int(1)]));
    let x = ev("typed", r#""ri":1,"a":{"k":"str"}"#);
    assert_eq!(val(&mut d, &x, 1).unwrap(), Value::str("str"));
    assert_eq!(val(&mut d, &x, 2).unwrap(), Value::Absent);
    let x = ev("typed", r#""ri":1,"a":{"k":null}"#);
    assert_eq!(val(&mut d, &x, 1).unwrap(), Value::Null);
    assert_eq!(val(&mut d, &x, 2).unwrap(), Value::Absent);
    // `pk: any` inside a record: string or int, never an error.
    let x = ev("model_created", r#""context":{"model":{"app":"a","model_name":"m","pk":"abc"}}"#);
    assert_eq!(val(&mut d, &x, 3).unwrap(), Value::str("abc"));
    let x = ev("model_created", r#""context":{"model":{"app":"a","model_name":"m"}}"#);
    assert_eq!(val(&mut d, &x, 3).unwrap(), Value::Absent);
    let x = ev("login", r#""context":{"asn":{"x":{"y":1}}}"#);
    let o = val(&mut d, &x, 4).unwrap();
    assert_eq!(o.get("y"), Value::Int(1));
}

#[test]
fn whole_event_and_records() {
    let mut d = decoder(&["", "context.model", "r", "lr"]);
    let x = model(r#","name":null"#);
    let v = val(&mut d, &x, 0).unwrap();
    assert_eq!(v.get("event_uuid"), Value::Uuid(crate::value::parse_uuid(UUID).unwrap()));
    assert_eq!(v.get("action"), Value::str("model_created"));
    let m = val(&mut d, &x, 1).unwrap();
    assert_eq!(m.get("pk"), Value::Int(31));
    assert_eq!(m.get("name"), Value::Null);
    // Records are checked deeply where they are read.
    let e = err(&mut d, &ev("model_created", r#""context":{"model":{"app":1,"model_name":"m","pk":1}}"#));
    assert_eq!(e, "`$.context.model.app`: expected string, found number 1");
    let e = err(&mut d, &ev("typed", r#""ri":1,"r":{"x":1,"y":"nope"}"#));
    assert_eq!(e, r#"`$.r.y`: expected uuid, found string "nope""#);
    let e = err(&mut d, &ev("typed", r#""ri":1,"lr":[{"x":1},{"y":null}]"#));
    assert_eq!(e, "`$.lr[1].x`: expected int, found nothing");
    let x = ev("typed", &format!(r#""ri":1,"r":{{"x":1,"y":"{}"}},"lr":[]"#, "305332a450ac475eb97ce2cd167238a6"));
    let r = val(&mut d, &x, 2).unwrap();
    assert_eq!(r.get("y"), Value::Uuid(0x305332a450ac475eb97ce2cd167238a6));
    assert_eq!(val(&mut d, &x, 3).unwrap(), Value::list(vec![]));
}

#[test]
fn typed_lists() {
    let mut d = decoder(&["lu", "context.to_email"]);
    let x = ev("typed", r#""ri":1,"lu":["305332a450ac475eb97ce2cd167238a6","305332a4-50ac-475e-b97c-e2cd167238a7"]"#);
    assert_eq!(
        val(&mut d, &x, 0).unwrap(),
        Value::list(vec![
            Value::Uuid(0x305332a450ac475eb97ce2cd167238a6),
            Value::Uuid(0x305332a450ac475eb97ce2cd167238a7)
        ])
    );
    let e = err(&mut d, &ev("typed", r#""ri":1,"lu":["305332a450ac475eb97ce2cd167238a6","zz"]"#));
    assert_eq!(e, r#"`$.lu[1]`: expected uuid, found string "zz""#);
    let e = err(&mut d, &ev("typed", r#""ri":1,"lu":{}"#));
    assert_eq!(e, "`$.lu`: expected [uuid], found object");
    let e = err(&mut d, &ev("email_sent", r#""context":{"to_email":["a",null]}"#));
    assert_eq!(e, "`$.context.to_email[1]`: expected string, found null");
    let x = ev("email_sent", r#""context":{"to_email":["a@x", "b@y"]}"#);
    assert_eq!(val(&mut d, &x, 1).unwrap(), Value::list(vec![Value::str("a@x"), Value::str("b@y")]));
}

#[test]
fn duplicate_keys_last_wins() {
    let mut d = decoder(&["user.username", "client_ip", "context.model.app"]);
    let x = ev("login", r#""client_ip":"a","client_ip":"b""#);
    assert_eq!(val(&mut d, &x, 1).unwrap(), Value::str("b"));
    // A later object replaces an earlier one entirely.
    let x = ev("login", r#""user":{"username":"a"},"user":{"email":"e"}"#);
    assert_eq!(val(&mut d, &x, 0).unwrap(), Value::Absent);
    let x = ev("login", r#""user":{"username":"a"},"user":null"#);
    assert_eq!(val(&mut d, &x, 0).unwrap(), Value::Absent);
    let x = ev("login", r#""user":{"username":"a","username":"c"}"#);
    assert_eq!(val(&mut d, &x, 0).unwrap(), Value::str("c"));
    // An earlier bad value is hidden by a later good one.
    let x = ev("login", r#""user":{"username":1,"username":"ok"}"#);
    assert_eq!(val(&mut d, &x, 0).unwrap(), Value::str("ok"));
    // The discriminator: the last one names the type, also after the
    // decoder specialised on the first.
    let line = r#"{"action":"login","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-04-14T08:02:07Z","context":{"model":{"app":"X","model_name":"m","pk":1}},"action":"model_created"}"#;
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.type_name(), "model_created");
    assert_eq!(x.value(PathId(2)), Value::str("X"));
    let line = r#"{"action":"model_created","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-04-14T08:02:07Z","action":7}"#;
    assert_eq!(err(&mut d, line), "`$.action`: expected string, found number 7");
}

#[test]
fn escaped_keys_match() {
    let mut d = decoder(&["user.username", "context.model.app"]);
    let line = format!(
        r#"{{"\u0061ction":"model_created","event_uuid":"{UUID}","created":"2026-04-14T08:02:07Z","us\u0065r":{{"username":"a\"b\\c\u00e9\ud83d\ude00"}},"context":{{"model":{{"app":"x","model_name":"m","pk":1}}}}}}"#
    );
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.type_name(), "model_created");
    assert_eq!(x.value(PathId(0)), Value::str("a\"b\\c\u{e9}\u{1F600}"));
    assert_eq!(x.value(PathId(1)), Value::str("x"));
    let line = ev("login", r#""user":{"username":"tab\there\n\/\b\f\r"}"#);
    assert_eq!(val(&mut d, &line, 0).unwrap(), Value::str("tab\there\n/\u{8}\u{c}\r"));
    let line = ev("log\\u0069n", "");
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.type_name(), "login");
    assert!(x.event_type.is_some());
}

#[test]
fn discriminator_rules() {
    let mut d = decoder(&["client_ip", "context.model.app"]);
    let e = err(&mut d, r#"{"event_uuid":"x"}"#);
    assert_eq!(e, "`$.action`: expected string, found nothing");
    let e = err(&mut d, r#"{"action":5}"#);
    assert_eq!(e, "`$.action`: expected string, found number 5");
    let e = err(&mut d, r#"{"action":null}"#);
    assert_eq!(e, "`$.action`: expected string, found null");
    let e = err(&mut d, r#"{"action":{"a":1}}"#);
    assert_eq!(e, "`$.action`: expected string, found object");
    // Undeclared type: not an error, decoded with the common fields.
    let line = ev("secret_view", r#""client_ip":"1.2.3.4","context":{"model":5}"#);
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.event_type, None);
    assert_eq!(x.type_name(), "secret_view");
    assert_eq!(x.value(PathId(0)), Value::str("1.2.3.4"));
    assert_eq!(x.value(PathId(1)), Value::Absent);
    // Nested `action` keys are not the discriminator.
    let e = err(&mut d, r#"{"user":{"action":"login"}}"#);
    assert_eq!(e, "`$.action`: expected string, found nothing");
}

#[test]
fn json_errors() {
    let mut d = decoder(&["client_ip"]);
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "not valid JSON: expected a value at byte 0"),
        (b"   ", "not valid JSON: expected a value at byte 3"),
        (b"[1,2]", "the event is not a JSON object (found array)"),
        (b"\"x\"", "the event is not a JSON object (found string)"),
        (b"42", "the event is not a JSON object (found number)"),
        (b"null", "the event is not a JSON object (found null)"),
        (b"{\"a\":1} x", "not valid JSON: trailing characters after the JSON value at byte 8"),
        (b"{\"a\":1}{}", "not valid JSON: trailing characters after the JSON value at byte 7"),
        (b"{\"a\":1 \"b\":2}", "not valid JSON: expected `,` or `}` at byte 7"),
        (b"{\"a\" 1}", "not valid JSON: expected `:` at byte 5"),
        (b"{\"a\":1,}", "not valid JSON: expected a string key at byte 7"),
        (b"{a:1}", "not valid JSON: expected a string key at byte 1"),
        (b"{\"a\":[1,]}", "not valid JSON: expected a value at byte 8"),
        (b"{\"a\":[1 2]}", "not valid JSON: expected `,` or `]` at byte 8"),
        (b"{\"a\":01}", "not valid JSON: invalid number (leading zero) at byte 6"),
        (b"{\"a\":1.}", "not valid JSON: invalid number at byte 7"),
        (b"{\"a\":-}", "not valid JSON: invalid number at byte 6"),
        (b"{\"a\":.5}", "not valid JSON: expected a value at byte 5"),
        (b"{\"a\":+1}", "not valid JSON: expected a value at byte 5"),
        (b"{\"a\":1e}", "not valid JSON: invalid number at byte 7"),
        (b"{\"a\":tru}", "not valid JSON: expected a value at byte 5"),
        (b"{\"a\":nul", "not valid JSON: expected a value at byte 5"),
        (b"{\"a\":\"x}", "not valid JSON: unterminated string at byte 8"),
        (b"{\"a\":\"\\x\"}", "not valid JSON: invalid escape at byte 6"),
        (b"{\"a\":\"\\u12\"}", "not valid JSON: invalid `\\u` escape at byte 6"),
        (b"{\"a\":\"\\ud800\"}", "not valid JSON: lone surrogate in `\\u` escape at byte 6"),
        (b"{\"a\":\"\\udc00\"}", "not valid JSON: lone surrogate in `\\u` escape at byte 6"),
        (b"{\"a\":\"\\ud800\\u0041\"}", "not valid JSON: lone surrogate in `\\u` escape at byte 6"),
        (b"{\"a\":\"x\ty\"}", "not valid JSON: control character in string at byte 7"),
        (b"{\"a\":\"\x00\"}", "not valid JSON: control character in string at byte 6"),
        (b"{\"a\":1", "not valid JSON: expected `,` or `}` at byte 6"),
        (b"{", "not valid JSON: expected a string key at byte 1"),
        (b"{\"a\":1]", "not valid JSON: expected `,` or `}` at byte 6"),
        (b"{\"\xff\":1}", "invalid UTF-8 at byte 2"),
        (b"{\"a\xc3\":1}", "invalid UTF-8 at byte 3"),
        (b"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8 at byte 6"),
        (b"{\"a\":\"\xc0\xaf\"}", "invalid UTF-8 at byte 6"),
        (b"\xef\xbb\xbf{}", "not valid JSON: expected a value at byte 0"),
        (b"{\"a\":1}\xff", "invalid UTF-8 at byte 7"),
    ];
    for (line, want) in cases {
        let got = match d.decode_match(line) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
        // serde_json agrees that these are not JSON objects.
        let sj = serde_json::from_slice::<J>(line).map(|v| v.is_object()).unwrap_or(false);
        assert!(!sj, "{}", String::from_utf8_lossy(line));
    }
    // Surrounding whitespace is fine; so is non-ASCII text in strings.
    let line = format!(" \t{} \r\n", ev("login", r#""client_ip":"é€😀""#));
    assert_eq!(val(&mut d, &line, 0).unwrap(), Value::str("é€😀"));
}

#[test]
fn nesting_limit_matches_serde_json() {
    let mut d = decoder(&["a"]);
    for depth in [1usize, 100, 126, 127, 128, 129, 5000, 100_000] {
        let inner = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let line = format!(r#"{{"action":"typed","x":{inner}}}"#);
        let ours = d.decode_match(line.as_bytes());
        let theirs = serde_json::from_str::<J>(&line);
        assert_eq!(ours.is_ok(), theirs.is_ok(), "depth {depth}");
        if depth + 1 > scan::MAX_DEPTH {
            assert!(matches!(ours, Err(DecodeError::TooDeep { .. })), "depth {depth}");
        }
        // Unclosed: still an error, no stack overflow.
        let line = format!(r#"{{"x":{}"#, "{\"a\":".repeat(depth));
        assert!(d.decode_match(line.as_bytes()).is_err());
    }
    assert!(d.decode_match(format!("{}{}", "[".repeat(127), "]".repeat(127)).as_bytes()).is_err());
}

#[test]
fn slots_reset_between_events() {
    let p = Arc::new(DecodePlan::new({
        let schema = authentik();
        let n = schema.events.len();
        let login = schema.event_by_name("login").unwrap().0 as usize;
        let mc = schema.event_by_name("model_created").unwrap().0 as usize;
        let mut m = vec![vec![]; n + 1];
        m[login] = vec![PathId(0)];
        m[mc] = vec![PathId(1)];
        let mut f = m.clone();
        f[login].push(PathId(2));
        PlanSpec {
            schema: Arc::new(schema),
            paths: vec![split("client_ip"), split("context.model.app"), split("app")],
            match_paths: m,
            full_paths: f,
            literals: vec![],
        }
    }));
    assert_eq!(p.slot_count(), 4); // + identity
    assert_eq!(p.identity_path(), Some(PathId(3)));
    let mut d = Decoder::new(p);
    let a = ev("login", r#""client_ip":"ip","app":"x""#);
    let x = d.decode_match(a.as_bytes()).unwrap();
    assert_eq!(x.slots()[0].tag, tag::STR);
    assert_eq!(x.slots()[2].tag, tag::ABSENT);
    assert_eq!(x.slots()[3].tag, tag::ABSENT);
    let x = d.decode_full(a.as_bytes()).unwrap();
    assert_eq!(x.slots()[2].tag, tag::STR);
    assert_eq!(x.slots()[3].tag, tag::UUID);
    let b = model("");
    let x = d.decode_match(b.as_bytes()).unwrap();
    assert_eq!(x.slots()[0].tag, tag::ABSENT);
    assert_eq!(x.slots()[1].tag, tag::STR);
    assert_eq!(x.slots()[2].tag, tag::ABSENT);
    assert_eq!(x.slots()[3].tag, tag::ABSENT);
    // After a contradiction or an error, the next event starts clean.
    let line = ev("model_created", r#""context":{}"#);
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.slots()[1].tag, tag::CONTRA);
    assert!(d.decode_match(b"{\"action\":").is_err());
    let x = d.decode_match(a.as_bytes()).unwrap();
    assert!(x.slots().iter().enumerate().all(|(i, s)| (i == 0) == (s.tag != tag::ABSENT)));
    assert_eq!(x.identity().unwrap(), UUID);
}

#[test]
fn identity_rules() {
    let mut d = decoder(&[]);
    let line = ev("login", "");
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.identity().unwrap(), UUID);
    let line = r#"{"action":"login","event_uuid":"305332A450AC475EB97CE2CD167238A6"}"#;
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.identity().unwrap(), "305332a4-50ac-475e-b97c-e2cd167238a6");
    let x = d.decode_match(br#"{"action":"login"}"#).unwrap();
    assert_eq!(x.identity().unwrap_err().to_string(), "`$.event_uuid`: expected uuid, found nothing");
    let x = d.decode_match(br#"{"action":"login","event_uuid":3}"#).unwrap();
    assert_eq!(x.identity().unwrap_err().to_string(), "`$.event_uuid`: expected uuid, found number 3");
    // decode_full reads the identity like any path: a bad one is a
    // contradiction there, and `identity` the error (a dead letter).
    let x = d.decode_full(br#"{"action":"login"}"#).unwrap();
    assert!(x.identity().is_err());

    // String and int identities.
    for (ty, json, want) in [(Ty::String, r#""a\u0062c""#, "abc"), (Ty::Int, "-12", "-12"), (Ty::Any, "7", "7")] {
        let mut s = Schema::default();
        let r = rec(&mut s, None, vec![("id", ty), ("t", Ty::String)]);
        s.common = Some(r);
        s.discriminator = Some("t".into());
        s.identity = Some(vec!["id".into()]);
        let mut d = Decoder::new(plan_with(s, &[], &[], &[]));
        let line = format!(r#"{{"t":"x","id":{json}}}"#);
        let x = d.decode_match(line.as_bytes()).unwrap();
        assert_eq!(x.identity().unwrap(), want);
    }

    // No identity: a stable hash of the line, whitespace-trimmed.
    let mut s = Schema::default();
    s.common = Some(rec(&mut s, None, vec![]));
    let mut d = Decoder::new(plan_with(s, &[], &[], &[]));
    let h1 = d.decode_match(b"{\"a\":1}").unwrap().identity().unwrap();
    let h2 = d.decode_match(b"  {\"a\":1}\r").unwrap().identity().unwrap();
    let h3 = d.decode_match(b"{\"a\":2}").unwrap().identity().unwrap();
    assert_eq!(h1, h2);
    assert_ne!(h1, h3);
    assert_eq!(h1.len(), 32);
    assert_eq!(format!("{:032x}", fnv1a_128(b"")), "6c62272e07bb014262b821756295c58d");
    assert_eq!(format!("{:032x}", fnv1a_128(b"a")), "d228cb696f1a8caf78912b704e4a8964");
    assert_eq!(h1, format!("{:032x}", fnv1a_128(b"{\"a\":1}")));
}

#[test]
fn no_discriminator_means_undeclared() {
    let mut s = Schema::default();
    let r = rec(&mut s, None, vec![("a", Ty::Any), ("b", opt(Ty::Int))]);
    s.common = Some(r);
    let mut d = Decoder::new(plan_with(s, &["a", "b"], &[], &[]));
    let x = d.decode_match(br#"{"a":{"x":1},"b":2}"#).unwrap();
    assert_eq!(x.event_type, None);
    assert_eq!(x.type_name(), "");
    assert_eq!(x.value(PathId(1)), Value::Int(2));
    assert!(x.identity().unwrap().len() == 32);
}

#[test]
fn unknown_paths_are_absent() {
    // A path that names no field of the type (or goes through a scalar).
    let mut d = decoder(&["context.nope", "client_ip.x", "context.model.app.x"]);
    let x = model("");
    assert_eq!(val(&mut d, &x, 0).unwrap(), Value::Absent);
    assert_eq!(val(&mut d, &x, 1).unwrap(), Value::Absent);
    assert_eq!(val(&mut d, &x, 2).unwrap(), Value::Absent);
}

#[test]
fn match_and_full_paths_differ() {
    let mut d = Decoder::new(plan_with(authentik(), &["client_ip"], &["user.username"], &[]));
    let line = ev("login", r#""client_ip":"ip","user":{"username":5}"#);
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.value(PathId(0)), Value::str("ip"));
    assert_eq!(x.value(PathId(1)), Value::Absent);
    assert_eq!(err(&mut d, &line), "`$.user.username`: expected string, found number 5");
}

fn reference_lines() -> Vec<String> {
    include_str!("../../examples/authentik/events.ndjson").lines().map(String::from).collect()
}

/// The reference extraction from serde_json: absent when missing or when a
/// non-object is on the way.
fn extract(v: &J, path: &[String]) -> Value {
    let mut cur = v;
    for seg in path {
        match cur.get(seg) {
            Some(x) if cur.is_object() => cur = x,
            _ => return Value::Absent,
        }
    }
    Value::from_json(cur)
}

#[test]
fn every_reference_line() {
    let paths = [
        "action",
        "client_ip",
        "user.username",
        "user.pk",
        "context.model.app",
        "context.model.model_name",
        "context.model.pk",
        "context.model.name",
        "context.auth_method_args.known_device",
        "context.diff.users.add",
        "context.http_request.path",
        "context.geo.lat",
        "context.message",
        "brand.name",
        "context.diff",
        "app",
    ];
    let plan = plan_with(authentik(), &paths, &["", "user", "context.geo"], &["authentik_core", "user"]);
    let mut d = Decoder::new(plan.clone());
    let lines = reference_lines();
    assert_eq!(lines.len(), 46);
    let mut declared = 0;
    for line in &lines {
        let j: J = serde_json::from_str(line).unwrap();
        let x = d.decode_match(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(x.type_name(), j["action"].as_str().unwrap());
        declared += x.event_type.is_some() as usize;
        for (i, p) in paths.iter().enumerate() {
            let want = extract(&j, &split(p));
            let got = x.value(PathId(i as u32));
            // Typed fields convert; compare through JSON.
            assert_eq!(got.to_json(None), want.to_json(None), "{p} in {line}");
        }
        let x = d.decode_full(line.as_bytes()).unwrap();
        assert_eq!(x.identity().unwrap(), j["event_uuid"].as_str().unwrap());
        assert_eq!(x.value(PathId(paths.len() as u32)).to_json(None)["action"], j["action"]);
    }
    assert!(declared > 30, "{declared}");
}

#[test]
fn for_program_derives_the_spec() {
    use crate::ir::*;
    let schema = Arc::new(authentik());
    let n = schema.events.len();
    let login = schema.event_by_name("login").unwrap();
    let sp = Span::default();
    let ev_expr = |p: u32, ty: Ty| Expr { kind: ExprKind::Event(PathId(p)), ty, span: sp };
    let lit = |v: Value| Expr::lit(v, Ty::String, sp);
    let cmp = |l: Expr, r: Expr| Expr {
        kind: ExprKind::Cmp { op: CmpOp::Eq, lhs: Box::new(l), rhs: Box::new(r) },
        ty: Ty::Bool,
        span: sp,
    };
    let rule = |id: u32, events: MatchEvents, cond: Expr, steps: Vec<Step>| Rule {
        id: RuleId(id),
        name: format!("r{id}"),
        name_span: sp,
        span: sp,
        matcher: Match { events, cond, bindings: vec![(LocalId(0), PathId(2))], span: sp },
        steps,
        actions: vec![],
        locals: vec![],
    };
    let in_list = Expr {
        kind: ExprKind::In {
            elem: Box::new(ev_expr(1, Ty::String)),
            container: Box::new(Expr {
                kind: ExprKind::List(vec![lit(Value::str("b")), lit(Value::str("a"))]),
                ty: Ty::String.list(),
                span: sp,
            }),
        },
        ty: Ty::Bool,
        span: sp,
    };
    let program = Program {
        schema: schema.clone(),
        rules: vec![
            rule(
                0,
                MatchEvents::Types(vec![login]),
                cmp(ev_expr(0, Ty::String), lit(Value::str("a"))),
                vec![Step::Guard { cond: ev_expr(3, Ty::Bool), span: sp }],
            ),
            rule(
                1,
                MatchEvents::Any,
                cmp(ev_expr(1, Ty::String), lit(Value::list(vec![Value::str("c"), Value::Int(1)]))),
                vec![],
            ),
            rule(2, MatchEvents::Types(vec![]), in_list, vec![]),
        ],
        paths: vec![split("client_ip"), split("app"), split("user.username"), split("context.auth_method")],
        sources: Default::default(),
    };
    let spec = PlanSpec::for_program(&program);
    assert_eq!(spec.match_paths.len(), n + 1);
    assert_eq!(spec.match_paths[login.0 as usize], vec![PathId(0), PathId(1), PathId(2)]);
    assert_eq!(spec.full_paths[login.0 as usize], vec![PathId(0), PathId(1), PathId(2), PathId(3)]);
    assert_eq!(spec.match_paths[n], vec![PathId(1), PathId(2)]);
    assert_eq!(spec.literals, vec!["a", "c", "b"]);
    let plan = DecodePlan::new(spec);
    assert_eq!(plan.slot_count(), 5);
    assert_eq!(plan.identity_path(), Some(PathId(4)));
    assert_eq!(plan.sym("a"), Some(1));
    assert_eq!(plan.sym("b"), Some(3));
    assert_eq!(plan.event_type("login"), Some(login));
    assert_eq!(plan.event_type("nope"), None);
    assert!(plan.full_paths(Some(login)).any(|p| p == PathId(4)));
}

// ---------------------------------------------------------------- properties

/// A plan over a schema without discriminator whose fields are all `any`.
fn any_plan(paths: Vec<Vec<String>>) -> Arc<DecodePlan> {
    let mut s = Schema::default();
    let r = rec(&mut s, None, KEYS.iter().map(|k| (*k, Ty::Any)).collect());
    s.common = Some(r);
    let ids: Vec<PathId> = (0..paths.len() as u32).map(PathId).collect();
    Arc::new(DecodePlan::new(PlanSpec {
        schema: Arc::new(s),
        paths,
        match_paths: vec![ids.clone()],
        full_paths: vec![ids],
        literals: vec!["a".into(), "x y".into()],
    }))
}

const KEYS: [&str; 6] = ["a", "b", "c", "é", "x y", ""];
/// Keys as written in JSON (some escaped spellings of the same key).
const RAW_KEYS: [&str; 9] = ["a", "b", "c", "é", "x y", "", "\\u0061", "\\u00e9", "b\\u0000"];

fn arb_ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("\n\t\r ")]
}

fn arb_leaf() -> impl Strategy<Value = String> {
    let numbers = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        prop::sample::select(vec![
            "0",
            "-0",
            "1",
            "-12",
            "1.5",
            "1e5",
            "1E+2",
            "-0.0e-1",
            "123456789012345678901234567890",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "1e308",
            "1.8e308",
            "1e400",
            "-1e400",
            "1e-400",
            "0e99999",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "1e+",
            "--1",
            "0x10",
            "1.2.3",
            "NaN",
            "Infinity",
        ])
        .prop_map(String::from),
    ];
    let strings = prop::sample::select(vec![
        "",
        "a",
        "abc def",
        "\\n",
        "\\u0041",
        "\\ud83d\\ude00",
        "é",
        "\\u00e9",
        "\\\"",
        "\\\\",
        "\\/",
        "😀",
        "\\x",
        "\\ud800",
        "\\udc00",
        "\\ud800\\u0041",
        "\t",
        "\\u12",
        "\\u12g4",
        "\u{7f}",
        "\\",
        "305332a450ac475eb97ce2cd167238a6",
    ])
    .prop_map(|s| format!("\"{s}\""));
    prop_oneof![
        1 => prop::sample::select(vec!["null", "true", "false", "nul", "tru", "nulll"]).prop_map(String::from),
        3 => numbers,
        3 => strings,
    ]
}

fn arb_json_text() -> impl Strategy<Value = String> {
    arb_leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec((prop::sample::select(RAW_KEYS.to_vec()), arb_ws(), inner.clone()), 0..6).prop_map(
                |kvs| {
                    let body: Vec<String> =
                        kvs.into_iter().map(|(k, w, v)| format!("{w}\"{k}\"{w}:{w}{v}{w}")).collect();
                    format!("{{{}}}", body.join(","))
                }
            ),
            prop::collection::vec((arb_ws(), inner), 0..6).prop_map(|vs| {
                let body: Vec<String> = vs.into_iter().map(|(w, v)| format!("{w}{v}")).collect();
                format!("[{}]", body.join(","))
            }),
        ]
    })
}

/// Small byte-level damage, sometimes.
fn arb_mutated() -> impl Strategy<Value = Vec<u8>> {
    (arb_json_text(), prop::option::weighted(0.3, (any::<prop::sample::Index>(), any::<u8>(), 0..3u8))).prop_map(
        |(text, m)| {
            let mut b = text.into_bytes();
            if let Some((ix, byte, op)) = m {
                if !b.is_empty() {
                    let i = ix.index(b.len());
                    match op {
                        0 => b[i] = byte,
                        1 => {
                            b.remove(i);
                        }
                        _ => b.insert(i, byte),
                    }
                }
            }
            b
        },
    )
}

fn arb_path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(KEYS.to_vec()).prop_map(String::from), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut d = decoder(&["context.model.app", "user", "", "context.diff.x", "client_ip"]);
        let _ = d.decode_match(&bytes).map(|x| { let _ = x.identity(); x.value(PathId(1)) });
        let _ = d.decode_full(&bytes).map(|x| x.value(PathId(2)));
        let mut wrapped = br#"{"action":"model_created","context":"#.to_vec();
        wrapped.extend_from_slice(&bytes);
        let _ = d.decode_full(&wrapped);
    }

    #[test]
    fn verdict_matches_serde_json(bytes in arb_mutated()) {
        let mut d = Decoder::new(any_plan(vec![vec!["a".into()], vec!["b".into(), "a".into()]]));
        let ours = d.decode_match(&bytes);
        let theirs = serde_json::from_slice::<J>(&bytes);
        // serde_json rejects numbers too large for an f64 (and stops
        // there); JSON does not, and neither do we: only a rule that reads
        // one fails. `numbers_out_of_range_fail_only_where_read` covers them.
        prop_assume!(!matches!(&theirs, Err(e) if e.to_string().starts_with("number out of range")));
        let want = matches!(&theirs, Ok(v) if v.is_object());
        prop_assert_eq!(ours.is_ok(), want, "{} {:?} {:?}", String::from_utf8_lossy(&bytes), ours.err(), theirs.err());
    }

    #[test]
    fn values_match_reference_extraction(text in arb_json_text(), paths in prop::collection::vec(arb_path(), 1..6)) {
        let Ok(j) = serde_json::from_str::<J>(&text) else { return Ok(()) };
        let text = if j.is_object() { text } else { format!("{{\"a\":{text}}}") };
        let j: J = serde_json::from_str(&text).unwrap();
        let plan = any_plan(paths.clone());
        let mut d = Decoder::new(plan.clone());
        for full in [false, true] {
            let x = if full { d.decode_full(text.as_bytes()) } else { d.decode_match(text.as_bytes()) };
            let x = x.unwrap();
            for (i, p) in paths.iter().enumerate() {
                let got = x.value(PathId(i as u32));
                prop_assert_eq!(&got, &extract(&j, p), "{:?} in {}", p, text);
                let s = x.slots()[i];
                if s.tag == tag::STR {
                    prop_assert_eq!(s.sym, plan.sym(x.str_of(&s)).unwrap_or(0));
                }
            }
        }
    }

    #[test]
    fn typed_values_match_or_fail_where_read(
        i in prop::sample::select(vec!["1", "-7", "1.5", "\"1\"", "null", "9223372036854775808", "1e2", "-0"]),
        f in prop::sample::select(vec!["1", "-7", "1.5", "\"1\"", "null", "2.5e-3"]),
        u in prop::sample::select(vec!["\"305332a450ac475eb97ce2cd167238a6\"", "\"305332a4-50ac-475e-b97c-e2cd167238a6\"", "\"x\"", "1", "null"]),
        t in prop::sample::select(vec!["\"2026-04-14T08:02:07Z\"", "\"2026-04-14T08:02:07.5+01:00\"", "\"2026-04-14\"", "null", "[]"]),
        present in prop::collection::vec(any::<bool>(), 4),
        read in prop::collection::vec(any::<bool>(), 4),
    ) {
        let names = ["i", "f", "u", "t"];
        let vals = [i, f, u, t];
        let mut members = vec!["\"action\":\"typed\"".to_string(), "\"ri\":0".to_string()];
        for k in 0..4 {
            if present[k] {
                members.push(format!("\"{}\":{}", names[k], vals[k]));
            }
        }
        let line = format!("{{{}}}", members.join(","));
        let read_paths: Vec<&str> = (0..4).filter(|&k| read[k]).map(|k| names[k]).collect();
        let mut d = decoder(&read_paths);
        let j: J = serde_json::from_str(&line).unwrap();
        // The reference: per field, by declared type.
        let mut want_err = None;
        let mut want = Vec::new();
        for (k, name) in names.iter().enumerate() {
            if !read[k] { continue; }
            let v = j.get(*name);
            let w = match (k, v) {
                (_, None) => Some(Value::Absent),
                (_, Some(J::Null)) => Some(Value::Null),
                (0, Some(J::Number(n))) if !vals[0].contains(['.', 'e']) => n.as_i64().map(Value::Int).or_else(|| (vals[0] == "-0").then_some(Value::Int(0))),
                (1, Some(J::Number(n))) => n.as_f64().map(Value::Float),
                (2, Some(J::String(s))) => crate::value::parse_uuid(s).map(Value::Uuid),
                (3, Some(J::String(s))) => crate::value::parse_timestamp(s).map(Value::Timestamp),
                _ => None,
            };
            if w.is_none() {
                want_err.get_or_insert(format!("$.{name}"));
            }
            want.push(w);
        }
        match d.decode_match(line.as_bytes()) {
            Ok(x) => {
                // Every field has its value, or is contradicted (absent).
                for (k, w) in want.iter().enumerate() {
                    let p = PathId(k as u32);
                    prop_assert_eq!(x.contradiction(p).is_some(), w.is_none(), "{}", line);
                    prop_assert_eq!(&x.value(p), w.as_ref().unwrap_or(&Value::Absent), "{}", line);
                }
            }
            Err(e) => prop_assert!(false, "{}: {}", line, e),
        }
        // A contradiction is per field: the first one read, in path order.
        let x = d.decode_match(line.as_bytes()).unwrap();
        let first = (0..read_paths.len() as u32).find_map(|k| x.contradiction(PathId(k)));
        match first {
            Some(DecodeError::Type { path, .. }) => prop_assert_eq!(Some(path.clone()), want_err, "{}", line),
            Some(e) => prop_assert!(false, "{}: {}", line, e),
            None => prop_assert!(want_err.is_none(), "{} should fail at {:?}", line, want_err),
        }
    }
}

#[test]
fn event_time_is_decoded_with_every_full_decode() {
    let mut schema = authentik();
    schema.time = Some("created".into());
    let n = schema.events.len();
    let p = Arc::new(DecodePlan::new(PlanSpec {
        schema: Arc::new(schema),
        paths: vec![split("client_ip")],
        match_paths: vec![vec![PathId(0)]; n + 1],
        full_paths: vec![vec![PathId(0)]; n + 1],
        literals: vec![],
    }));
    // The program does not read `created`: the plan adds a slot for it.
    assert_eq!(p.slot_count(), 3);
    assert_eq!(p.time_path(), Some(PathId(2)));
    let mut d = Decoder::new(p);
    let line = ev("login", "");
    // A match decode does not read it; a full decode does.
    let x = d.decode_match(line.as_bytes()).unwrap();
    assert_eq!(x.slots()[2].tag, tag::ABSENT);
    let x = d.decode_full(line.as_bytes()).unwrap();
    let t = crate::value::parse_timestamp("2026-04-14T08:02:07.556423Z").unwrap();
    assert_eq!(x.event_time().unwrap(), Some(t));
    // Missing, or not a timestamp: an error naming the field.
    let x = d.decode_full(br#"{"action":"login","event_uuid":"305332a450ac475eb97ce2cd167238a6"}"#).unwrap();
    assert!(x.event_time().unwrap_err().message.contains("$.created"));
    let x = d
        .decode_full(br#"{"action":"login","event_uuid":"305332a450ac475eb97ce2cd167238a6","created":"soon"}"#)
        .unwrap();
    assert!(x.event_time().unwrap_err().message.contains("expected timestamp"));
    // Without a `time` item there is no event time.
    let mut d = decoder(&[]);
    let x = d.decode_full(line.as_bytes()).unwrap();
    assert_eq!(x.event_time().unwrap(), None);
}

// ---------------------------------------------------------------- skim

/// A plan where only `login` has match paths: every other type (declared
/// or not) is skimmed by `decode_match`.
fn skim_plan() -> Arc<DecodePlan> {
    let schema = authentik();
    let n = schema.events.len();
    let login = schema.events.iter().position(|e| e.name == "login").unwrap();
    let mut m = vec![Vec::new(); n + 1];
    m[login] = vec![PathId(0), PathId(1)];
    Arc::new(DecodePlan::new(PlanSpec {
        schema: Arc::new(schema),
        paths: vec![split("user.pk"), split("context.auth_method_args.known_device")],
        match_paths: m.clone(),
        full_paths: m,
        literals: vec![],
    }))
}

/// What a decode says about a line: its error, or its type and type name.
fn verdict(x: Result<Decoded<'_>, DecodeError>) -> Result<(Option<EventTypeId>, String), String> {
    x.map(|x| (x.event_type, x.type_name().to_string())).map_err(|e| e.to_string())
}

/// `decode_full` never skims: it is the reference for `decode_match`.
fn skim_agrees(d: &mut Decoder, line: &[u8]) -> Result<(Option<EventTypeId>, String), String> {
    let full = verdict(d.decode_full(line));
    let fast = verdict(d.decode_match(line));
    assert_eq!(fast, full, "{}", String::from_utf8_lossy(line));
    fast
}

#[test]
fn skim_agrees_with_the_full_scan() {
    let plan = skim_plan();
    let mut d = Decoder::new(plan.clone());
    let ty = |n: &str| plan.event_type(n);
    // (line, takes the fast path, type name or error)
    let deep = format!(r#"{{"action":"logout","a":{}1{}}}"#, "[".repeat(127), "]".repeat(127));
    let deep_ok = format!(r#"{{"action":"logout","a":{}1{}}}"#, "[".repeat(126), "]".repeat(126));
    let cases: Vec<(Vec<u8>, bool, Result<&str, &str>)> = vec![
        (ev("logout", "").into(), true, Ok("logout")),
        (br#"{"action":"secret_view"}"#.to_vec(), true, Ok("secret_view")),
        (ev("login", "").into(), false, Ok("login")),
        // A nested `action` key before the real one, either way round.
        (br#"{"user":{"action":"login"},"action":"logout"}"#.to_vec(), false, Ok("logout")),
        (br#"{"user":{"action":"logout"},"action":"login"}"#.to_vec(), false, Ok("login")),
        (br#"{"user":{"action":"logout"}}"#.to_vec(), false, Err("`$.action`: expected string, found nothing")),
        (br#"{"user":[{"action":"logout"}],"action":"logout"}"#.to_vec(), false, Ok("logout")),
        // The key twice: the last one wins.
        (br#"{"action":"logout","action":"login"}"#.to_vec(), false, Ok("login")),
        (br#"{"action":"login","action":"logout"}"#.to_vec(), false, Ok("logout")),
        (br#"{"action":"logout","action":5}"#.to_vec(), false, Err("`$.action`: expected string, found number 5")),
        // Strings that contain the key, escaped quotes, escaped keys.
        (br#"{"m":"say \"action\":\"login\"","action":"logout"}"#.to_vec(), true, Ok("logout")),
        (br#"{"m":"\\","action":"logout","n":"\"action\":"}"#.to_vec(), true, Ok("logout")),
        (br#"{"\u0061ction":"logout"}"#.to_vec(), false, Ok("logout")),
        (br#"{"action":"logout","\u0061ction":"login"}"#.to_vec(), false, Ok("login")),
        (br#"{"action":"log\u006fut"}"#.to_vec(), false, Ok("logout")),
        // Whitespace anywhere.
        (b"{ \"action\" : \"logout\" }".to_vec(), false, Ok("logout")),
        (b"{\"action\": \"logout\"}".to_vec(), false, Ok("logout")),
        (
            b" {\"action\":\"logout\" ,\t\"a\" : [ 1 , { } , [ ] ] , \"b\":{ \"c\" :null} } ".to_vec(),
            true,
            Ok("logout"),
        ),
        (
            r#"{"action":"logout","n":[-0.5e-3,1E+2,0,1e400,true,false,null,"é😀"]}"#.as_bytes().to_vec(),
            true,
            Ok("logout"),
        ),
        (deep_ok.into_bytes(), true, Ok("logout")),
        // Malformed lines stay dead letters, with the full scan's reason.
        (deep.into_bytes(), false, Err("not valid JSON: nested deeper than 127 levels at byte 149")),
        (br#"{"action":"logout",}"#.to_vec(), false, Err("")),
        (br#"{"action":"logout""#.to_vec(), false, Err("")),
        (br#"{"action":"logout"} x"#.to_vec(), false, Err("")),
        (br#"{"action":"logout","a":[1,2,]}"#.to_vec(), false, Err("")),
        (br#"{"action":"logout","a":01}"#.to_vec(), false, Err("")),
        (br#"{"action":"logout","a":tru}"#.to_vec(), false, Err("")),
        (br#"{"action":"logout","a":"\ud800"}"#.to_vec(), false, Err("")),
        (b"{\"action\":\"logout\",\"a\":\"\x01\"}".to_vec(), false, Err("")),
        (b"{\"action\":\"logout\",\"a\":\"\xff\"}".to_vec(), false, Err("invalid UTF-8 at byte 24")),
        (b"{\"action\":\"logout\",\"a\":1}\xc3".to_vec(), false, Err("")),
        (br#"[{"action":"logout"}]"#.to_vec(), false, Err("the event is not a JSON object (found array)")),
        (br#"{"action":"logout","a":{"b":1,"c"}}"#.to_vec(), false, Err("")),
        (br#"{"action":"logout","a":{"b":1]}"#.to_vec(), false, Err("")),
    ];
    for (line, fast, want) in &cases {
        let shown = String::from_utf8_lossy(line);
        let mut keybuf = Vec::new();
        assert_eq!(skim(&plan, &mut keybuf, line).is_some(), *fast, "fast path for {shown}");
        let got = skim_agrees(&mut d, line);
        match (want, &got) {
            (Ok(name), Ok((t, n))) => {
                assert_eq!(n, name, "{shown}");
                assert_eq!(*t, ty(name), "{shown}");
            }
            (Err(""), Err(_)) => {}
            (Err(e), Err(g)) => assert_eq!(g, e, "{shown}"),
            _ => panic!("{shown}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn skimmed_events_have_no_slots() {
    let mut d = Decoder::new(skim_plan());
    let login = br#"{"action":"login","user":{"pk":5},"context":{"auth_method_args":{"known_device":false}}}"#;
    let x = d.decode_match(login).unwrap();
    assert_eq!(x.value(PathId(0)), Value::Int(5));
    assert_eq!(x.value(PathId(1)), Value::Bool(false));
    // The same fields on a skimmed type: nothing is decoded, nothing left over.
    let logout = br#"{"action":"logout","user":{"pk":5},"context":{"auth_method_args":{"known_device":false}}}"#;
    let x = d.decode_match(logout).unwrap();
    assert_eq!(x.type_name(), "logout");
    // The identity is still there for who asks (decoded again, in full).
    assert_eq!(x.identity().unwrap_err().to_string(), "`$.event_uuid`: expected uuid, found nothing");
    assert!(x.slots().iter().all(|s| *s == Slot::ABSENT), "{:?}", x.slots());
    // A full decode of it still reads what it needs.
    let x = d.decode_full(logout).unwrap();
    assert_eq!(x.type_name(), "logout");
}

/// Members of a line for the skim property: the discriminator (in several
/// spellings, values and kinds), decoys nested in values, and noise.
fn arb_member() -> impl Strategy<Value = String> {
    let disc = prop::sample::select(vec![
        r#""action":"logout""#,
        r#""action":"login""#,
        r#""action":"secret_view""#,
        r#""action":"log\u006fut""#,
        r#""action":5"#,
        r#""action":null"#,
        r#""\u0061ction":"logout""#,
        r#""action" : "logout""#,
        r#""user":{"action":"logout"}"#,
        r#""user":{"pk":1,"action":"login"}"#,
        r#""l":[{"action":"logout"},"\"action\":\"logout\""]"#,
        r#""m":"\\""#,
    ])
    .prop_map(String::from);
    let noise = (prop::sample::select(RAW_KEYS.to_vec()), arb_json_text()).prop_map(|(k, v)| format!("\"{k}\":{v}"));
    prop_oneof![2 => disc, 1 => noise]
}

fn arb_skim_line() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(arb_member(), 0..6),
        prop::option::weighted(0.3, (any::<prop::sample::Index>(), any::<u8>(), 0..3u8)),
    )
        .prop_map(|(members, m)| {
            let mut b = format!("{{{}}}", members.join(",")).into_bytes();
            if let Some((ix, byte, op)) = m {
                let i = ix.index(b.len());
                match op {
                    0 => b[i] = byte,
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, byte),
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    /// Whatever the line, skimming or not changes nothing a caller sees:
    /// the same error, or the same type and type name.
    #[test]
    fn skim_is_invisible(line in arb_skim_line()) {
        let mut d = Decoder::new(skim_plan());
        let _ = skim_agrees(&mut d, &line);
        let theirs = serde_json::from_slice::<J>(&line);
        prop_assume!(!matches!(&theirs, Err(e) if e.to_string().starts_with("number out of range")));
        if !matches!(&theirs, Ok(v) if v.is_object()) {
            prop_assert!(d.decode_match(&line).is_err(), "{}", String::from_utf8_lossy(&line));
        }
    }
}

// ---------------------------------------------------------------- install

/// Everything a caller can see of a fully decoded event: its error, or its
/// type, type name, every slot's value and contradiction, its identity (or
/// why it has none) and its time.
fn seen(x: Result<Decoded<'_>, DecodeError>) -> Result<String, String> {
    let x = x.map_err(|e| e.to_string())?;
    let mut out = format!("{:?} {:?}", x.event_type, x.type_name());
    for p in (0..x.slots().len() as u32).map(PathId) {
        out += &format!(" | {:?} {:?}", x.value(p), x.contradiction(p));
    }
    out += &format!(" | identity {:?}", x.identity().map_err(|e| e.to_string()));
    out += &format!(" | time {:?}", x.event_time().map_err(|e| e.message));
    Ok(out)
}

/// What the engine's writer sees of `line` when a worker decoded it
/// (`decode_full_owned`, then `install` into a decoder that held `before`)
/// equals what `decode_full` gives, errors included: a line that fails
/// full decoding, or has no identity, fails `decode_full_owned` with the
/// error the writer used to find.
fn install_agrees(plan: &Arc<DecodePlan>, before: &[u8], line: &[u8]) {
    let shown = String::from_utf8_lossy(line);
    let mut reference = Decoder::new(plan.clone());
    let want = seen(reference.decode_full(line));
    let mut worker = Decoder::new(plan.clone());
    let mut writer = Decoder::new(plan.clone());
    // Both decoders hold another event first: nothing of it may remain.
    let _ = worker.decode_match(before);
    if let Ok(prev) = worker.decode_full_owned(before) {
        let _ = writer.install(&prev, before);
    }
    let _ = worker.decode_match(line);
    match worker.decode_full_owned(line) {
        Ok(full) => {
            assert_eq!(full.identity(), reference.decode_full(line).unwrap().identity().unwrap(), "{shown}");
            assert_eq!(seen(Ok(writer.install(&full, line))), want, "{shown}");
        }
        Err(e) => {
            // The same reason as the decode, or as the identity after it.
            let reason = match reference.decode_full(line) {
                Err(d) => d.to_string(),
                Ok(x) => x.identity().expect_err("decode_full_owned failed, so must the identity").to_string(),
            };
            assert_eq!(e.to_string(), reason, "{shown}");
        }
    }
}

#[test]
fn installed_events_read_as_decoded() {
    let plan = plan_with(
        authentik(),
        &["action", "user.username", "context.model.pk"],
        &["event_uuid", "created", "client_ip", "context", "user", "context.model.app", "app"],
        &["login"],
    );
    let mut lines: Vec<Vec<u8>> = reference_lines().into_iter().map(String::into_bytes).collect();
    lines.extend([
        // Escapes put strings in the scratch buffer.
        ev("login", r#""user":{"username":"a\"b\u00e9"},"client_ip":"1\u002e2""#).into_bytes(),
        // Contradictions, a missing and a bad identity, a bad time.
        model(r#","app":5"#).into_bytes(),
        br#"{"action":"login","created":"2026-04-14T08:02:07Z"}"#.to_vec(),
        br#"{"action":"login","event_uuid":7}"#.to_vec(),
        format!(r#"{{"action":"login","event_uuid":"{UUID}","created":"yesterday"}}"#).into_bytes(),
        format!(r#"{{"action":"nope","event_uuid":"{UUID}","created":"2026-04-14T08:02:07Z","x":[1]}}"#).into_bytes(),
        // Not events at all.
        b"{\"action\":\"login\"".to_vec(),
        b"[1]".to_vec(),
        b"{\"a\":\"\xff\"}".to_vec(),
    ]);
    for before in &lines {
        for line in &lines {
            install_agrees(&plan, before, line);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Generated lines (decoys, repeated keys, byte damage) on the skim
    /// plan: installing a worker's decode is invisible too.
    #[test]
    fn install_is_invisible(before in arb_skim_line(), line in arb_skim_line()) {
        install_agrees(&skim_plan(), &before, &line);
    }
}
