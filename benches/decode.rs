//! Event decoding: Herald's schema-driven decoder (`decode_match`, the
//! workers' pass, and `decode_full`, the writer's pass for matched events)
//! against serde_json parsing the same lines into a `Value` and skipping
//! them with `IgnoredAny` (the cheapest full validation serde offers).
//! Input: the 46 example authentik events, with the paths the five example
//! policies read.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald::decode::{DecodePlan, Decoder, PlanSpec};
use std::hint::black_box;
use std::sync::Arc;

fn decode_benches(c: &mut Criterion) {
    let program = common::compile_sources(&common::example_policies());
    let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&program)));
    let events = common::example_events();
    let bytes: usize = events.iter().map(|l| l.len() + 1).sum();
    let mut decoder = Decoder::new(plan);
    // Every example line must decode, or the comparison would be unfair.
    for l in &events {
        if let Err(e) = decoder.decode_full(l) {
            panic!("example event does not decode: {e}");
        }
    }

    let mut g = c.benchmark_group("decode/examples");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("herald_decode_match", |b| {
        b.iter(|| {
            for l in &events {
                let d = decoder.decode_match(l).expect("decodes");
                black_box(d.event_type);
            }
        })
    });
    g.bench_function("herald_decode_full", |b| {
        b.iter(|| {
            for l in &events {
                let d = decoder.decode_full(l).expect("decodes");
                black_box(d.event_type);
            }
        })
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| {
            for l in &events {
                let v: serde_json::Value = serde_json::from_slice(l).expect("valid JSON");
                black_box(v);
            }
        })
    });
    g.bench_function("serde_json_ignored_any", |b| {
        b.iter(|| {
            for l in &events {
                let v: serde::de::IgnoredAny = serde_json::from_slice(l).expect("valid JSON");
                black_box(v);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, decode_benches);
criterion_main!(benches);
