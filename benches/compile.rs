//! Compiler front end: parse, check (schema lowering + type check), and the
//! whole driver (`compile::compile`: parse + lower + check), for the five
//! example policies and a generated 1,000-rule policy over 30 event types.
//! Target (issue 2): parse+check of the 1,000-rule policy under 200 ms.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald::check;
use herald::compile::{self, SchemaChoice};
use herald::schema::{self, builtin};
use herald::span::SourceMap;
use herald::syntax::{self, ast};
use std::hint::black_box;
use std::sync::Arc;

fn bench_set(c: &mut Criterion, label: &str, files: Vec<(String, String)>) {
    // Fail early (not inside the timing loop) if the inputs do not compile.
    let program = common::compile_sources(&files);
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let mut g = c.benchmark_group(format!("compile/{label}"));
    g.throughput(Throughput::Elements(program.rules.len() as u64));
    if program.rules.len() > 100 {
        // Hundreds of milliseconds per iteration: keep the run short.
        g.sample_size(10);
    }

    let mut sources = SourceMap::new();
    let ids: Vec<_> = files.iter().map(|(n, t)| sources.add(n.as_str(), t.as_str())).collect();
    let schema_id = sources.add(builtin::AUTHENTIK_NAME, builtin::AUTHENTIK);
    g.bench_function("parse", |b| {
        b.iter(|| {
            for &id in &ids {
                black_box(syntax::parse(id, sources.text(id)));
            }
        })
    });

    let policy_asts: Vec<ast::File> = ids.iter().map(|&id| syntax::parse(id, sources.text(id)).ast).collect();
    let schema_ast = syntax::parse(schema_id, sources.text(schema_id)).ast;
    g.bench_function("check", |b| {
        b.iter(|| {
            let mut files: Vec<&ast::File> = vec![&schema_ast];
            files.extend(policy_asts.iter());
            let (schema, diags) = schema::lower(&files);
            let policies: Vec<&ast::File> = policy_asts.iter().collect();
            let checked = check::check(Arc::new(schema), &policies);
            black_box((diags, checked))
        })
    });

    g.bench_function("parse+check", |b| {
        b.iter(|| {
            let mut sources = SourceMap::new();
            let ids: Vec<_> = files.iter().map(|(n, t)| sources.add(n.as_str(), t.as_str())).collect();
            let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &ids);
            assert!(compiled.program.is_some());
            black_box(compiled)
        })
    });
    g.finish();
    eprintln!("compile/{label}: {} rules, {} bytes of policy", program.rules.len(), bytes);
}

fn compile_benches(c: &mut Criterion) {
    bench_set(c, "examples", common::example_policies());
    bench_set(c, "generated_1000", vec![("generated.herald".to_string(), common::generated_policy(1000))]);
}

criterion_group!(benches, compile_benches);
criterion_main!(benches);
