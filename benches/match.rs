//! JIT vs interpreter on the same pre-decoded events.
//!
//! - `authentik`: the five reference rules on examples/authentik/events.ndjson;
//! - `generated`: 1,000 generated rules over 30 event types;
//! - `compile_1000`: parse + check + JIT of the 1,000 rules.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald::compile::{compile, SchemaChoice};
use herald::decode::{DecodePlan, Decoded, Decoder, PlanSpec};
use herald::ir::Program;
use herald::jit::JitMatcher;
use herald::matcher::{InterpMatcher, MatchScratch, Matcher};
use herald::span::SourceMap;
use std::hint::black_box;
use std::sync::Arc;

fn compile_texts(files: &[(String, String)]) -> Arc<Program> {
    let mut sources = SourceMap::default();
    let ids: Vec<_> = files.iter().map(|(n, t)| sources.add(n, t)).collect();
    let c = compile(&mut sources, SchemaChoice::Auto, &ids);
    Arc::new(c.program.unwrap_or_else(|| panic!("bench program does not compile: {:#?}", c.diagnostics)))
}

fn authentik() -> (Arc<Program>, Vec<Vec<u8>>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/authentik");
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "herald"))
        .collect();
    names.sort();
    let files: Vec<(String, String)> =
        names.iter().map(|p| (p.display().to_string(), std::fs::read_to_string(p).expect("read"))).collect();
    let events = std::fs::read(root.join("events.ndjson")).expect("events");
    let lines = events.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(|l| l.to_vec()).collect();
    (compile_texts(&files), lines)
}

const TYPES: usize = 30;

/// 30 event types with a nested model reference, and 1,000 rules in the
/// style of the reference policies (literal patterns, bindings, `where`).
fn generated_sources() -> Vec<(String, String)> {
    let mut schema = String::from("discriminator action\nevent * { id: int?, user: { name: string?, pk: int? }? }\n");
    for t in 0..TYPES {
        schema.push_str(&format!(
            "event ev{t} {{ context: {{ model: {{ app: string, model_name: string, pk: any }}?, n: int?, f: float?, flag: bool? }} }}\n"
        ));
    }
    let mut rules = String::new();
    for i in 0..1000 {
        let t = i % TYPES;
        let app = ["core", "events", "flows", "policies"][i % 4];
        let model = format!("m{}", i % 17);
        let cond = match i % 5 {
            0 => format!("event.context.n > {}", i % 100),
            1 => format!("event.context.f <= {}.5", i % 10),
            2 => "event.context.flag == false".to_string(),
            3 => format!("event.user.name in [\"u{}\", \"admin\"]", i % 50),
            _ => format!("not (event.id == {}) and event.context.n != null", i),
        };
        rules.push_str(&format!(
            "rule g{i} {{ match ev{t} {{ context.model: {{ app: \"{app}\", model_name: \"{model}\", pk: pk }} }} where {cond} }}\n"
        ));
    }
    vec![("schema.herald".into(), schema), ("rules.herald".into(), rules)]
}

fn generated_events() -> Vec<Vec<u8>> {
    (0..300)
        .map(|i| {
            let t = i % TYPES;
            let app = ["core", "events", "flows", "policies", "other"][i % 5];
            format!(
                r#"{{"action":"ev{t}","id":{i},"user":{{"name":"u{}","pk":{i}}},"context":{{"model":{{"app":"{app}","model_name":"m{}","pk":{i}}},"n":{},"f":{}.25,"flag":{}}}}}"#,
                i % 60,
                i % 23,
                i % 120,
                i % 12,
                i % 2 == 0
            )
            .into_bytes()
        })
        .collect()
}

fn bench_pair(c: &mut Criterion, group: &str, program: Arc<Program>, lines: &[Vec<u8>]) {
    let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&program)));
    let jit = JitMatcher::compile(program.clone(), &plan).expect("jit");
    assert!(jit.fallbacks().is_empty(), "{:?}", jit.fallbacks());
    let interp = InterpMatcher::new(program.clone());
    let mut decoders: Vec<Decoder> = lines.iter().map(|_| Decoder::new(plan.clone())).collect();
    let events: Vec<Decoded<'_>> = decoders.iter_mut().zip(lines).filter_map(|(d, l)| d.decode_match(l).ok()).collect();
    assert!(!events.is_empty());
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(events.len() as u64));
    let mut scratch = MatchScratch::default();
    let mut fired = (0, 0);
    for ev in &events {
        jit.matches(ev, &mut scratch);
        fired.0 += scratch.matched.len();
        interp.matches(ev, &mut scratch);
        fired.1 += scratch.matched.len();
    }
    assert_eq!(fired.0, fired.1, "engines disagree");
    eprintln!("{group}: {} events, {} rule matches per pass", events.len(), fired.0);
    for (name, m) in [("jit", &jit as &dyn Matcher), ("interp", &interp as &dyn Matcher)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                for ev in &events {
                    m.matches(black_box(ev), &mut scratch);
                }
                black_box(scratch.matched.len())
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let (program, lines) = authentik();
    bench_pair(c, "authentik_5_rules", program, &lines);
    let sources = generated_sources();
    let generated = compile_texts(&sources);
    let events = generated_events();
    bench_pair(c, "generated_1000_rules_30_types", generated.clone(), &events);
    // The same number of events as the authentik group, so the per-event
    // figures compare code, not the cache footprint of 300 decoders.
    bench_pair(c, "generated_1000_rules_30_types_46_events", generated, &events[..46]);
    let mut g = c.benchmark_group("compile_1000_rules");
    g.sample_size(10);
    g.bench_function("parse_check_jit", |b| {
        b.iter(|| {
            let program = compile_texts(&sources);
            let plan = DecodePlan::new(PlanSpec::for_program(&program));
            black_box(JitMatcher::compile(program, &plan).expect("jit"))
        })
    });
    g.bench_function("jit_only", |b| {
        let program = compile_texts(&sources);
        let plan = DecodePlan::new(PlanSpec::for_program(&program));
        b.iter(|| black_box(JitMatcher::compile(program.clone(), &plan).expect("jit")))
    });
    g.finish();
}

criterion_group!(match_benches, benches);
criterion_main!(match_benches);
