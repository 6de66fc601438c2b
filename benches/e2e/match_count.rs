//! Count, per rule, the events whose `match` clause accepts them (what the
//! jaq and Python baselines of `benches/e2e/run.sh` must agree with), plus
//! dead letters. Built as the `match_count` example:
//!
//! ```text
//! cargo run --release --example match_count -- EVENTS.ndjson POLICY.herald...
//! ```
//!
//! It decodes every line with `decode_match` and runs the reference
//! interpreter's matcher, i.e. exactly the worker half of `herald run`;
//! guards and actions are not run (firings depend on the store).

use herald::compile::{self, SchemaChoice};
use herald::decode::{DecodePlan, Decoder, PlanSpec};
use herald::engine::{InterpMatcher, MatchScratch, Matcher};
use herald::span::SourceMap;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: match_count EVENTS.ndjson POLICY.herald...");
        std::process::exit(2);
    }
    let mut sources = SourceMap::new();
    let mut ids = Vec::new();
    for p in &args[1..] {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| {
            eprintln!("cannot read {p}: {e}");
            std::process::exit(2)
        });
        ids.push(sources.add(p.as_str(), text));
    }
    let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &ids);
    let Some(program) = compiled.program else {
        eprintln!("the policies do not compile ({} errors)", compiled.errors());
        std::process::exit(1)
    };
    let program = Arc::new(program);
    let plan = Arc::new(DecodePlan::new(PlanSpec::for_program(&program)));
    let mut decoder = Decoder::new(plan);
    let matcher = InterpMatcher::new(program.clone());
    let mut scratch = MatchScratch::default();
    let mut counts: BTreeMap<String, u64> = program.rules.iter().map(|r| (r.name.clone(), 0)).collect();
    let (mut events, mut dead, mut matched_events, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let file = std::fs::File::open(&args[0]).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", args[0]);
        std::process::exit(2)
    });
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("read error: {e}");
                std::process::exit(2)
            }
        }
        while let Some(b'\n' | b'\r') = line.last() {
            line.pop();
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        events += 1;
        match decoder.decode_match(&line) {
            Err(_) => dead += 1,
            Ok(ev) => {
                matcher.matches(&ev, &mut scratch);
                if !scratch.matched.is_empty() {
                    matched_events += 1;
                }
                for (id, err) in &scratch.matched {
                    if err.is_some() {
                        errors += 1;
                    } else {
                        *counts.get_mut(&program.rule(*id).name).expect("every rule is counted") += 1;
                    }
                }
            }
        }
    }
    let by_rule: serde_json::Map<String, serde_json::Value> =
        counts.into_iter().map(|(k, v)| (k, serde_json::Value::from(v))).collect();
    let out = serde_json::json!({
        "events": events, "dead_letters": dead, "matched_events": matched_events,
        "match_errors": errors, "by_rule": by_rule,
    });
    println!("{out}");
}
