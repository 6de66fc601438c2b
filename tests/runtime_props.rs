//! Property tests, in process: random and hostile events (absent fields,
//! nulls, wrong types, huge and deeply nested values, invalid UTF-8, huge
//! numbers) never panic the decoder, the matcher or the interpreter, and a
//! whole run over them keeps its accounting straight.

use herald::compile::{self, SchemaChoice};
use herald::decode::{DecodePlan, Decoder, PlanSpec};
use herald::effect::RuleEffects;
use herald::engine::{self, InterpMatcher, MatchScratch, Matcher, RunOptions};
use herald::interp::{self, Interp, Outcome};
use herald::ir::Program;
use herald::span::SourceMap;
use herald::store::Store;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

const POLICIES: [&str; 6] = [
    "examples/authentik/application_without_bindings.herald",
    "examples/authentik/archive_ssh_keys.herald",
    "examples/authentik/group_addition_history.herald",
    "examples/authentik/unknown_device_login.herald",
    "examples/authentik/welcome_email.herald",
    "tests/runtime_data/props.herald",
];

fn program() -> Arc<Program> {
    static P: OnceLock<Arc<Program>> = OnceLock::new();
    P.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = SourceMap::new();
        let ids: Vec<_> = POLICIES
            .iter()
            .map(|p| sources.add(*p, std::fs::read_to_string(root.join(p)).expect("read policy")))
            .collect();
        let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &ids);
        Arc::new(compiled.program.unwrap_or_else(|| panic!("policies compile: {:?}", compiled.diagnostics)))
    })
    .clone()
}

fn store(program: &Program) -> Store {
    let mut store = Store::open_in_memory(program.schema.clone()).expect("in-memory store");
    let fixtures = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/authentik/fixtures.json"))
        .expect("fixtures");
    store.load_fixtures(&fixtures).expect("fixtures load");
    // A dynamic value for `any_arithmetic` to trip over.
    store
        .connection()
        .execute("UPDATE \"User\" SET attributes = '{\"level\": \"high\"}' WHERE pk = 15", [])
        .expect("update");
    store.ensure_indexes(program).expect("indexes");
    store
}

// ---------------------------------------------------------------- strategies

/// A JSON text for a leaf or a small tree, biased towards the values that
/// trouble decoders: absent-ish, null, wrong types, extreme numbers.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        Just("1e400".to_string()),
        Just("-1e400".to_string()),
        Just("123456789012345678901234567890".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("9223372036854775808".to_string()),
        Just("0.0000000000000000000000000001".to_string()),
        Just("12".to_string()),
        Just("31".to_string()),
        Just("\"\"".to_string()),
        Just("\"10.1.2.3\"".to_string()),
        Just("\"192.168.4.4\"".to_string()),
        Just("\"authentik_core\"".to_string()),
        Just("\"user\"".to_string()),
        Just("\"2026-04-14T08:01:13.552081Z\"".to_string()),
        Just("\"75ef35e6-e6b6-48f1-8e7b-90029db5103f\"".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("\"\\u0000\\n\\r\\\"\"".to_string()),
        "[ -~]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        (1usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        (1usize..200).prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
        (1usize..5).prop_map(|n| serde_json::to_string(&"x".repeat(n * 40_000)).unwrap()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((field_name(), inner), 0..4).prop_map(|v| {
                let fields: Vec<String> = v.into_iter().map(|(k, x)| format!("{}:{x}", json_str(&k))).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Names the schema and the rules use, and a few they do not.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("pk"),
        Just("app"),
        Just("model_name"),
        Just("name"),
        Just("users"),
        Just("add"),
        Just("known_device"),
        Just("auth_method"),
        Just("lat"),
        Just("level"),
        Just("zzz"),
    ]
    .prop_map(String::from)
}

fn action() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("\"login\"".to_string())),
        Just(Some("\"model_created\"".to_string())),
        Just(Some("\"model_updated\"".to_string())),
        Just(Some("\"model_deleted\"".to_string())),
        Just(Some("\"no_such_action\"".to_string())),
        json_value().prop_map(Some),
    ]
}

/// An event object: each well-known field is absent, hostile or
/// plausible.
fn event() -> impl Strategy<Value = String> {
    let opt = |s: BoxedStrategy<String>| prop::option::weighted(0.7, s);
    (
        action(),
        opt(prop_oneof![Just("\"75ef35e6-e6b6-48f1-8e7b-90029db5103f\"".to_string()), json_value()].boxed()),
        opt(prop_oneof![Just("\"2026-04-14T08:01:13Z\"".to_string()), json_value()].boxed()),
        opt(json_value().boxed()),
        opt(json_value().boxed()),
        opt(context().boxed()),
    )
        .prop_map(|(action, uuid, created, user, ip, context)| {
            let mut fields = Vec::new();
            let mut push = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    fields.push(format!("{}:{v}", json_str(k)));
                }
            };
            push("action", action);
            push("event_uuid", uuid);
            push("created", created);
            push("user", user.map(|u| format!("{{\"pk\":{u}}}")));
            push("client_ip", ip);
            push("context", context);
            format!("{{{}}}", fields.join(","))
        })
}

fn context() -> impl Strategy<Value = String> {
    let opt = |s: BoxedStrategy<String>| prop::option::weighted(0.6, s);
    (
        opt(json_value().boxed()),
        opt(json_value().boxed()),
        opt(json_value().boxed()),
        opt(json_value().boxed()),
        opt(json_value().boxed()),
        opt(json_value().boxed()),
    )
        .prop_map(|(app, pk, name, add, known, lat)| {
            let model = format!(
                "{{\"app\":{},\"model_name\":\"user\",\"pk\":{},\"name\":{}}}",
                app.unwrap_or_else(|| "\"authentik_core\"".into()),
                pk.unwrap_or_else(|| "12".into()),
                name.unwrap_or_else(|| "\"x\"".into())
            );
            format!(
                "{{\"model\":{model},\"diff\":{{\"users\":{{\"add\":{}}}}},\"auth_method_args\":{{\"known_device\":{}}},\"geo\":{{\"lat\":{}}}}}",
                add.unwrap_or_else(|| "[12, 15]".into()),
                known.unwrap_or_else(|| "false".into()),
                lat.unwrap_or_else(|| "50.5".into())
            )
        })
}

/// Bytes of a line: an event, possibly damaged (cut, a byte replaced by a
/// random one, which may make it invalid UTF-8).
fn line() -> impl Strategy<Value = Vec<u8>> {
    (event(), prop::option::weighted(0.3, (any::<prop::sample::Index>(), any::<u8>(), any::<bool>()))).prop_map(
        |(ev, damage)| {
            let mut bytes = ev.into_bytes();
            if let Some((at, byte, cut)) = damage {
                let i = at.index(bytes.len());
                if cut {
                    bytes.truncate(i);
                } else {
                    bytes[i] = byte;
                }
            }
            bytes
        },
    )
}

// ---------------------------------------------------------------- properties

/// Decode, match and run every matched rule against a real (in-memory)
/// store, the way the engine's writer does; returns how many rules fired.
fn evaluate(program: &Program, store: &Store, decoder: &mut Decoder, line: &[u8]) -> usize {
    let matcher = InterpMatcher::new(Arc::new(program.clone()));
    let mut scratch = MatchScratch::default();
    let matched = match decoder.decode_match(line) {
        Ok(ev) => {
            let _ = ev.identity();
            matcher.matches(&ev, &mut scratch);
            std::mem::take(&mut scratch.matched)
        }
        Err(e) => {
            // A dead letter's reason is printable and non-empty.
            assert!(!e.to_string().is_empty());
            return 0;
        }
    };
    let Ok(ev) = decoder.decode_full(line) else { return 0 };
    // The identity must not panic on hostile input either.
    let _ = ev.identity();
    let mut env = Vec::new();
    let mut fired = 0;
    for (id, err) in matched {
        if err.is_some() {
            continue;
        }
        let rule = program.rule(id);
        interp::bind_patterns(rule, &ev, &mut env);
        let it = Interp { program, event: &ev, db: store, now: 0 };
        store.savepoint("p").unwrap();
        match interp::run_rule(&it, rule, &mut env, &mut RuleEffects::default()) {
            Ok(Outcome::Fired) => {
                fired += 1;
                store.release("p").unwrap();
            }
            Ok(Outcome::Stopped) => store.release("p").unwrap(),
            Err(e) => {
                assert!(e.code.as_str().starts_with('R'), "run-time errors carry R codes: {e:?}");
                store.rollback_to("p").unwrap();
            }
        }
    }
    fired
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn events_never_panic_decoder_or_interpreter(lines in prop::collection::vec(line(), 1..4)) {
        let program = program();
        thread_local!(static STORE: std::cell::OnceCell<Store> = const { std::cell::OnceCell::new() });
        STORE.with(|cell| {
            let store = cell.get_or_init(|| store(&program));
            let mut decoder = Decoder::new(Arc::new(DecodePlan::new(PlanSpec::for_program(&program))));
            store.begin().unwrap();
            for l in &lines {
                evaluate(&program, store, &mut decoder, l);
            }
            store.rollback().unwrap();
        });
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let program = program();
        let mut decoder = Decoder::new(Arc::new(DecodePlan::new(PlanSpec::for_program(&program))));
        if let Ok(ev) = decoder.decode_match(&bytes) {
            let _ = ev.identity();
        }
        let _ = decoder.decode_full(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// A whole run over hostile input: never a panic, never a fatal error,
    /// and every non-blank line is counted.
    #[test]
    fn whole_runs_account_for_every_line(lines in prop::collection::vec(line(), 1..12), batch in 1usize..5) {
        let program = program();
        let store = store(&program);
        let mut input = Vec::new();
        for l in &lines {
            // A line break inside a damaged line would split it: keep one line per event.
            input.extend(l.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
            input.push(b'\n');
        }
        let matcher: Arc<dyn Matcher> = Arc::new(InterpMatcher::new(program.clone()));
        let opts = RunOptions { batch, workers: 2, ..RunOptions::default() };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let stats = engine::run(program.clone(), matcher, &store, std::io::Cursor::new(input.clone()), opts, &mut out, &mut err)
            .expect("a run over bad events still succeeds");
        let non_blank = input.split(|&b| b == b'\n').filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()) ).count() as u64;
        prop_assert_eq!(stats.events, non_blank);
        let dead: i64 = store.connection().query_row("SELECT count(*) FROM herald_dead_letter", [], |r| r.get(0)).unwrap();
        prop_assert_eq!(dead as u64, stats.dead_letters);
        let firings: i64 = store.connection().query_row("SELECT count(*) FROM herald_firing", [], |r| r.get(0)).unwrap();
        prop_assert_eq!(firings as u64, stats.firings);
        prop_assert_eq!(String::from_utf8(out).unwrap().lines().count() as u64, stats.firings);
    }
}

/// The harness above really reaches guards and actions: the example events
/// fire rules through `evaluate`, and the generator's plausible defaults do
/// too (otherwise the properties would only exercise the decoder).
#[test]
fn the_harness_reaches_the_interpreter() {
    let program = program();
    let store = store(&program);
    let mut decoder = Decoder::new(Arc::new(DecodePlan::new(PlanSpec::for_program(&program))));
    let events = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/authentik/events.ndjson"))
        .expect("events");
    store.begin().unwrap();
    let fired: usize = events.lines().map(|l| evaluate(&program, &store, &mut decoder, l.as_bytes())).sum();
    assert!(fired >= 7, "{fired}");
    let generated = r#"{"action":"model_updated","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-04-14T08:01:13Z","user":{"pk":12},"context":{"model":{"app":"authentik_core","model_name":"user","pk":12,"name":"x"},"diff":{"users":{"add":[12, 15]}}}}"#;
    assert!(evaluate(&program, &store, &mut decoder, generated.as_bytes()) >= 2);
    store.rollback().unwrap();
}

/// Every checkpoint a run writes (read back inside each batch transaction,
/// through `RunOptions::in_commit`) describes the input's bytes exactly:
/// its offset ends a line (or the input), its line is the number of lines
/// up to there, its prefix hash is XXH64 of those bytes and its last hash
/// XXH64 of that line without its terminator. The input spans several
/// 1 MiB chunks, with CRLF and blank lines, dead letters (which count
/// towards the batch, so commits fall inside chunks) and a last line
/// without a line end. Stored checkpoints compare against these values, so
/// they must not change when the reader's work moves between threads
/// (issue 12: line counting moved from the reader to the workers).
#[test]
fn every_checkpoint_describes_the_bytes_before_it() {
    use herald::engine::hash::Xxh64;
    let program = program();
    let store = store(&program);
    let events = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/authentik/events.ndjson"))
        .expect("events");
    let events: Vec<&str> = events.lines().collect();
    let mut input = Vec::new();
    let mut i = 0usize;
    while input.len() < 3 << 20 {
        match i % 5 {
            // Fresh ids, so no event is a duplicate of an earlier one.
            0 | 1 => {
                let e = events[i % events.len()];
                let at = e.find("\"event_uuid\":\"").expect("an id") + 14;
                input.extend(format!("{}{i:08x}{}", &e[..at], &e[at + 8..]).as_bytes());
            }
            2 => input.extend_from_slice(b"{not json"),
            3 => input.extend_from_slice(b"   "),
            _ => input
                .extend(format!("{{\"action\":\"login\",\"n\":{i},\"pad\":\"{}\"}}", "p".repeat(i % 700)).as_bytes()),
        }
        input.extend_from_slice(if i.is_multiple_of(3) { b"\r\n" } else { b"\n" });
        i += 1;
    }
    input.extend_from_slice(b"{\"the\":\"end\"}");
    let first = input.split(|&b| b == b'\n').next().unwrap();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let key = format!("{:032x}", herald::decode::fnv1a_128(first));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let hook: herald::engine::InCommit = Box::new(move |store, line| {
        let cp = store.checkpoint(&key)?.expect("a checkpoint in the batch transaction");
        record.lock().unwrap().push((line, cp));
        Ok(())
    });
    let matcher: Arc<dyn Matcher> = Arc::new(InterpMatcher::new(program.clone()));
    let opts = RunOptions { batch: 97, workers: 2, in_commit: Some(hook), ..RunOptions::default() };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    engine::run(program.clone(), matcher, &store, std::io::Cursor::new(input.clone()), opts, &mut out, &mut err)
        .expect("runs");
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 20, "{} commits", seen.len());
    let ends: Vec<usize> = input.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1).collect();
    let mut inside = 0;
    for (line, cp) in seen.iter() {
        let offset = cp.offset as usize;
        assert_eq!(cp.line, *line, "the hook is told the checkpoint's line");
        let n =
            if offset == input.len() { ends.len() + 1 } else { ends.binary_search(&offset).expect("ends a line") + 1 };
        assert_eq!(cp.line, n as u64, "line at offset {offset}");
        assert_eq!(cp.prefix_hash.as_deref(), Some(format!("{:016x}", Xxh64::of(&input[..offset])).as_str()));
        let start = if n == 1 { 0 } else { ends[n - 2] };
        let mut text = &input[start..offset];
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        assert_eq!(cp.last_hash, format!("{:016x}", Xxh64::of(text)), "line {n}");
        if offset % (1 << 20) > 4096 && offset != input.len() {
            inside += 1;
        }
    }
    assert!(inside > 5, "commits inside chunks: {inside}");
    assert_eq!(seen.last().unwrap().1.offset, input.len() as u64);
}
