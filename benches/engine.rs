//! `engine::run` end to end in memory: events from a byte buffer, decode and
//! match in worker threads, guards and actions against an in-memory SQLite
//! store loaded with the example fixtures, firing lines into a buffer.
//! Parameters: the engine (`interp`, `jit`) and the policy (the five
//! examples, or a generated 1,000-rule policy over 30 event types).
//!
//! The input: 20,000 lines built from the 46 example events, each with its
//! own `event_uuid`. Every 25th line is one of the example events that the
//! five example rules match (cycling through them); the other lines cycle
//! through the example events that no example rule matches. So about 4% of
//! the events match, close to the mix of `benches/e2e/run.sh` (the example
//! file alone, where half the events fire, would mostly measure the store).

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use herald::decode::{DecodePlan, Decoder, PlanSpec};
use herald::engine::{self, InterpMatcher, MatchScratch, Matcher, RunOptions};
use herald::ir::Program;
use herald::jit::JitMatcher;
use herald::store::Store;
use std::sync::Arc;

const EVENTS: usize = 20_000;

/// The matcher of an engine by its CLI name.
fn matcher(engine: &str, program: &Arc<Program>) -> Arc<dyn Matcher> {
    match engine {
        "interp" => Arc::new(InterpMatcher::new(program.clone())),
        // As `herald run --engine jit` does (src/cli/commands.rs): the plan is
        // built from the same program as the engine's, so the interned ids of
        // string literals agree.
        "jit" => {
            let plan = DecodePlan::new(PlanSpec::for_program(program));
            match JitMatcher::compile(program.clone(), &plan) {
                Ok(m) => Arc::new(m),
                Err(e) => panic!("the JIT does not compile the bench policy: {e}"),
            }
        }
        other => panic!("unknown engine {other}"),
    }
}

/// See the module comment.
fn bench_input(examples: &Program) -> Vec<u8> {
    let program = Arc::new(examples.clone());
    let matcher = InterpMatcher::new(program.clone());
    let mut decoder = Decoder::new(Arc::new(DecodePlan::new(PlanSpec::for_program(&program))));
    let mut scratch = MatchScratch::default();
    let (mut matching, mut filler) = (Vec::new(), Vec::new());
    for line in common::example_events() {
        let Ok(ev) = decoder.decode_match(&line) else { continue };
        matcher.matches(&ev, &mut scratch);
        if scratch.matched.is_empty() {
            filler.push(line);
        } else {
            matching.push(line);
        }
    }
    assert!(!matching.is_empty() && !filler.is_empty());
    common::with_fresh_uuids((0..EVENTS).map(|i| {
        if i % 25 == 0 {
            &matching[(i / 25) % matching.len()][..]
        } else {
            &filler[i % filler.len()][..]
        }
    }))
}

fn fresh_store(program: &Program, fixtures: &str) -> Store {
    let mut store = Store::open_in_memory(program.schema.clone()).expect("in-memory store");
    if let Err(e) = store.load_fixtures(fixtures) {
        panic!("fixtures do not load: {e:?}");
    }
    store.ensure_indexes(program).expect("indexes");
    store
}

fn engine_benches(c: &mut Criterion) {
    let fixtures = common::example_fixtures();
    let examples = common::example_policies();
    let input = bench_input(&common::compile_sources(&examples));
    let policies = [
        ("examples_5", examples.clone()),
        ("generated_1000", vec![("generated.herald".to_string(), common::generated_policy(1000))]),
    ];
    let mut g = c.benchmark_group("engine/run_in_memory");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(10);
    for (label, files) in &policies {
        let program = Arc::new(common::compile_sources(files));
        for engine in ["interp", "jit"] {
            let m = matcher(engine, &program);
            g.bench_with_input(BenchmarkId::new(*label, engine), &m, |b, m| {
                b.iter_batched(
                    || fresh_store(&program, &fixtures),
                    |store| {
                        let mut out = Vec::new();
                        let mut err = Vec::new();
                        let opts = RunOptions { source: "bench".into(), ..RunOptions::default() };
                        let stats =
                            engine::run(program.clone(), m.clone(), &store, &input[..], opts, &mut out, &mut err)
                                .expect("the run succeeds");
                        assert_eq!(stats.events, EVENTS as u64);
                        (store, stats)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, engine_benches);
criterion_main!(benches);
