//! Decoding and matching non-firing events with the JIT allocates nothing
//! once warm.

use herald::compile::{compile, SchemaChoice};
use herald::decode::{DecodePlan, Decoder, PlanSpec};
use herald::jit::JitMatcher;
use herald::matcher::{after_conditions, MatchScratch, Matcher};
use herald::span::SourceMap;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

struct Counting;

// Per thread: the test harness runs this file's tests in parallel, and one
// test's set-up allocations must not count against another's hot loop.
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn counting(on: bool) {
    COUNTING.with(|c| c.set(on));
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

fn count_one() {
    // `try_with`: an allocation during thread teardown is not ours to count.
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn non_firing_events_allocate_nothing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/authentik");
    let mut sources = SourceMap::default();
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "herald"))
        .collect();
    names.sort();
    let mut ids: Vec<_> =
        names.iter().map(|p| sources.add(p.display().to_string(), std::fs::read_to_string(p).expect("read"))).collect();
    // Predicates compiled as calls into Rust helpers (regex, CIDR, prefix)
    // must not allocate either; the lines below have these fields set.
    ids.push(
        sources.add(
            "predicates.herald",
            r#"rule predicates {
             match model_created | model_updated
               where matches(event.context.model.model_name, "^(?:usr|grp)[0-9]+$")
                  or starts_with(event.context.model.app, "zzz")
                  or "evil" in event.context.model.model_name
             action log("predicate")
           }
           rule predicates_ip {
             match any where ends_with(event.client_ip, ".255") or ip_in(event.client_ip, "10.0.0.0/8")
             action log("ip")
           }"#
            .to_string(),
        ),
    );
    let c = compile(&mut sources, SchemaChoice::Auto, &ids);
    let program = Arc::new(c.program.unwrap_or_else(|| panic!("examples compile: {:#?}", c.diagnostics)));
    let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&program)));
    let jit = JitMatcher::compile(program.clone(), &plan).expect("jit");
    assert!(jit.fallbacks().is_empty(), "{:?}", jit.fallbacks());
    // Non-firing: right types, other values (and an undeclared type).
    let lines: Vec<&[u8]> = vec![
        br#"{"action":"model_created","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-01-01T00:00:00Z","client_ip":"192.168.1.7","context":{"model":{"app":"authentik_core","model_name":"group","pk":"x"}}}"#,
        br#"{"action":"model_updated","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-01-01T00:00:00Z","context":{"model":{"app":"authentik_\u0063ore","model_name":"token","pk":1}}}"#,
        br#"{"action":"login","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-01-01T00:00:00Z","client_ip":"2001:db8::\u0031","context":{"auth_method_args":{"known_device":true}}}"#,
        br#"{"action":"login","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-01-01T00:00:00Z","context":{}}"#,
        br#"{"action":"something_else","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-01-01T00:00:00Z"}"#,
    ];
    let mut dec = Decoder::new(plan);
    let mut scratch = MatchScratch::default();
    let mut round = |count: bool| {
        for l in &lines {
            let ev = dec.decode_match(l).expect("decodes");
            counting(count);
            jit.matches(&ev, &mut scratch);
            counting(false);
            assert!(scratch.matched.is_empty(), "{}", String::from_utf8_lossy(l));
        }
    };
    round(false); // warm-up: buffers reach their size
    ALLOCS.with(|a| a.set(0));
    for _ in 0..1000 {
        round(true);
    }
    assert_eq!(allocs(), 0, "the JIT matcher allocated on non-firing events");
}

/// The example policies (no `match any` rule): events of types no rule
/// names take the decoder's skim path, and `login` events from known devices
/// are tested against `takeover_suspect`'s `after` condition as the workers
/// do. Decoding, matching and the `after` test are all counted.
#[test]
fn skimmed_and_unrecorded_events_allocate_nothing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/authentik");
    let mut sources = SourceMap::default();
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "herald"))
        .collect();
    names.sort();
    let ids: Vec<_> =
        names.iter().map(|p| sources.add(p.display().to_string(), std::fs::read_to_string(p).expect("read"))).collect();
    let c = compile(&mut sources, SchemaChoice::Auto, &ids);
    let program = Arc::new(c.program.unwrap_or_else(|| panic!("examples compile: {:#?}", c.diagnostics)));
    let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&program)));
    let jit = JitMatcher::compile(program.clone(), &plan).expect("jit");
    let after =
        JitMatcher::compile(Arc::new(after_conditions(&program).expect("an after clause")), &plan).expect("jit");
    assert!(after.fallbacks().is_empty(), "{:?}", after.fallbacks());
    let lines: Vec<&[u8]> = vec![
        br#"{"event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","user":{"pk":5,"action":"login"},"action":"logout","context":{"http_request":{"path":"/a\"b","args":{}}},"created":"2026-01-01T00:00:00Z"}"#,
        br#"{"action":"authorize_application","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-01-01T00:00:00Z","context":{"scopes":"openid \u00e9","geo":{"lat":1.5e3,"long":-2}}}"#,
        br#"{"action":"custom_undeclared","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-01-01T00:00:00Z","x":[null,true,false,[],{}]}"#,
        br#"{"action":"login","event_uuid":"75ef35e6-e6b6-48f1-8e7b-90029db5103f","created":"2026-01-01T00:00:00Z","user":{"pk":7},"context":{"auth_method_args":{"known_device":true}}}"#,
    ];
    let mut dec = Decoder::new(plan);
    let mut scratch = MatchScratch::default();
    let mut after_scratch = MatchScratch::default();
    let mut round = |count: bool| {
        for l in &lines {
            counting(count);
            let ev = dec.decode_match(l).expect("decodes");
            jit.matches(&ev, &mut scratch);
            after.matches(&ev, &mut after_scratch);
            counting(false);
            assert!(scratch.matched.is_empty(), "{}", String::from_utf8_lossy(l));
            assert!(after_scratch.matched.is_empty(), "{}", String::from_utf8_lossy(l));
        }
    };
    round(false);
    ALLOCS.with(|a| a.set(0));
    for _ in 0..1000 {
        round(true);
    }
    assert_eq!(allocs(), 0, "decoding or matching allocated on non-firing events");
}
