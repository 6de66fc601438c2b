//! `herald trace` and `herald diff`: rendering the dry replays of
//! `engine::replay` for people (human) and programs (JSON).

use super::{load_sources, render, Format, UsageError, EXIT_OK, EXIT_USAGE};
use crate::compile;
use crate::engine::replay::{
    self, DiffOutcome, DiffReport, DiffSide, EventTrace, RuleTrace, TraceOptions, TraceReport, Verdict,
};
use crate::engine::RunError;
use crate::interp::trace::{ClauseTrace, Detail, Operand, Read};
use crate::ir::{Program, Step};
use crate::span::Span;
use crate::store::ScratchStore;
use crate::value::Value;
use serde_json::json;
use std::fmt::Write as _;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Exit code of `diff` when the versions differ (CONTRACT.md).
pub const EXIT_DIFFERENT: i32 = 1;

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("herald: {msg}");
    EXIT_USAGE
}

/// Compile `files`; diagnostics to stderr. `Err(())` when it has errors.
fn compile_files(schema: Option<&str>, files: &[PathBuf]) -> Result<Arc<Program>, Result<(), String>> {
    let (mut sources, choice, ids) = load_sources(schema, files).map_err(|UsageError(m)| Err(m))?;
    let compiled = compile::compile(&mut sources, choice, &ids);
    if !compiled.diagnostics.is_empty() {
        let style = render::Style::detect(std::io::stderr().is_terminal());
        eprint!("{}", render::human(&compiled.diagnostics, &sources, style));
        eprint!("{}", render::summary(compiled.errors(), compiled.warnings()));
    }
    compiled.program.map(Arc::new).ok_or(Ok(()))
}

/// The scratch copy of `--db` (or an empty store without it).
fn scratch(db: Option<&Path>, program: &Program) -> Result<ScratchStore, i32> {
    if db.is_some_and(crate::store::is_postgres) {
        // The scratch copy is a SQLite file copy; a PostgreSQL store would
        // need a copy inside the server (a transaction rolled back at exit).
        return Err(fail("`trace` and `diff` need a SQLite store for now (`--db PATH`), not a PostgreSQL URL"));
    }
    let s = match db {
        Some(p) => ScratchStore::copy_of(p, program.schema.clone()),
        None => ScratchStore::empty(program.schema.clone()),
    }
    .map_err(fail)?;
    s.ensure_indexes(program).map_err(fail)?;
    Ok(s)
}

fn open_events(path: &Path) -> Result<BufReader<Box<dyn std::io::Read>>, i32> {
    let r: Box<dyn std::io::Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| fail(format!("cannot read `{}`: {e}", path.display())))?)
    };
    Ok(BufReader::with_capacity(1 << 20, r))
}

fn run_error(e: RunError) -> i32 {
    fail(e)
}

pub struct TraceArgs<'a> {
    pub schema: Option<&'a str>,
    pub db: Option<&'a Path>,
    pub events: &'a Path,
    pub rules: &'a [String],
    pub lines: &'a [u64],
    pub limit: usize,
    pub now: Option<&'a str>,
    pub format: Format,
    pub files: &'a [PathBuf],
}

pub fn trace(a: &TraceArgs<'_>) -> i32 {
    let program = match compile_files(a.schema, a.files) {
        Ok(p) => p,
        Err(Err(m)) => return fail(m),
        Err(Ok(())) => return super::EXIT_COMPILE,
    };
    for r in a.rules {
        if !program.rules.iter().any(|x| &x.name == r) {
            let hint = crate::diag::suggest(r, program.rules.iter().map(|x| x.name.as_str()))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return fail(format!("--rule: the policy has no rule `{r}`{hint}"));
        }
    }
    let now = match a.now {
        None => None,
        Some(t) => match crate::value::parse_timestamp(t) {
            Some(n) => Some(n),
            None => return fail(format!("--now: `{t}` is not an RFC 3339 timestamp")),
        },
    };
    let store = match scratch(a.db, &program) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let input = match open_events(a.events) {
        Ok(i) => i,
        Err(c) => return c,
    };
    let opts = TraceOptions { lines: a.lines.to_vec(), rules: a.rules.to_vec(), limit: a.limit, now };
    let report = match replay::trace(&program, &*store, input, &opts) {
        Ok(r) => r,
        Err(e) => return run_error(e),
    };
    let mut out = std::io::stdout().lock();
    let text = match a.format {
        Format::Json => {
            format!("{}\n", serde_json::to_string_pretty(&trace_json(&program, &report)).unwrap_or_default())
        }
        Format::Human => trace_human(&program, &report),
    };
    let _ = out.write_all(text.as_bytes());
    for l in a.lines {
        if !report.events.iter().any(|e| e.line == *l) && report.omitted == 0 {
            eprintln!("herald: line {l}: no such event, or no selected rule takes its type");
        }
    }
    EXIT_OK
}

fn at(p: &Program, span: Span) -> String {
    p.locate(span).unwrap_or_default()
}

fn src(p: &Program, span: Span) -> String {
    p.sources.snippet(span).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A value for people: JSON text, `absent` for a missing value.
fn show(p: &Program, v: &Value) -> String {
    match v {
        Value::Absent => "absent".into(),
        v => v.to_json(Some(&p.schema)).to_string(),
    }
}

fn val(p: &Program, v: &Value) -> serde_json::Value {
    match v {
        Value::Absent => json!({"absent": true}),
        v => v.to_json(Some(&p.schema)),
    }
}

/// An operand's text: an event path in full (a pattern names only its
/// last field), anything else as written.
fn otext(p: &Program, o: &Operand) -> String {
    match o.path {
        Some(path) => {
            let mut s = String::from("event");
            for f in p.path(path) {
                s.push('.');
                s.push_str(f);
            }
            s
        }
        None => src(p, o.span),
    }
}

fn operand_json(p: &Program, o: &Operand) -> serde_json::Value {
    json!({"expr": otext(p, o), "at": at(p, o.span), "value": val(p, &o.value)})
}

fn detail_json(p: &Program, d: &Detail) -> serde_json::Value {
    match d {
        Detail::EventType { expected, found } => {
            json!({"kind": "event_type", "expected": expected, "found": found})
        }
        Detail::Compare { span, op, left, right } => json!({"kind": "compare", "expr": src(p, *span),
            "at": at(p, *span), "op": op, "left": operand_json(p, left), "right": operand_json(p, right)}),
        Detail::Presence { span, negated, operand } => json!({"kind": "presence", "expr": src(p, *span),
            "at": at(p, *span), "expected": if *negated { "present" } else { "absent or null" },
            "operand": operand_json(p, operand)}),
        Detail::Membership { span, elem, container } => json!({"kind": "membership", "expr": src(p, *span),
            "at": at(p, *span), "elem": operand_json(p, elem), "container": operand_json(p, container)}),
        Detail::False { span } => json!({"kind": "false", "expr": src(p, *span), "at": at(p, *span)}),
        Detail::Nothing { value } => json!({"kind": "nothing", "value": val(p, &value.value)}),
    }
}

fn read_json(p: &Program, r: &Read) -> serde_json::Value {
    json!({"entity": r.entity, "kind": r.kind, "rows": r.rows,
        "keys": r.keys.iter().map(|k| val(p, k)).collect::<Vec<_>>()})
}

/// The step of a stateful clause, found by its span.
fn step_at(p: &Program, span: Span) -> Option<&Step> {
    p.rules.iter().flat_map(|r| &r.steps).find(|s| match s {
        Step::Window(w) => w.span == span,
        Step::Throttle(t) => t.span == span,
        Step::After(a) => a.span == span,
        _ => false,
    })
}

/// What a window, throttle or `after` clause saw, for people: the count
/// against the threshold, or why it stopped the rule.
fn stateful_human(p: &Program, c: &ClauseTrace) -> Option<String> {
    match (step_at(p, c.span)?, &c.seen) {
        (Step::Window(w), Some(n)) => {
            let what = if w.distinct.is_some() { "distinct" } else { "count" };
            let verdict = if c.passed { "holds" } else { "is false" };
            Some(format!("{what} = {}: `{what} {} {}` {verdict}", show(p, n), w.op.symbol(), w.limit))
        }
        (Step::Window(_), None) => {
            Some("the event is too late for the window (before its latest event time minus its duration)".into())
        }
        (Step::Throttle(_), Some(n)) => Some(format!("throttle.suppressed = {}", show(p, n))),
        (Step::Throttle(_), None) => Some("the rule already fired for this key within the throttle's duration".into()),
        (Step::After(a), _) if !c.passed => Some(format!(
            "no earlier `{}` event that the clause accepts, with the same key, within {}",
            p.schema.event(a.event).name,
            crate::value::format_duration(i64::try_from(a.duration).unwrap_or(i64::MAX))
        )),
        _ => None,
    }
}

fn clause_json(p: &Program, c: &ClauseTrace) -> serde_json::Value {
    let mut j = json!({"clause": c.kind.keyword(), "at": at(p, c.span), "passed": c.passed,
        "detail": c.detail.as_ref().map(|d| detail_json(p, d)),
        "reads": c.reads.iter().map(|r| read_json(p, r)).collect::<Vec<_>>()});
    // Stateful clauses say what they counted (only they have a key for it,
    // so the other clauses' JSON is as before).
    match (step_at(p, c.span), &c.seen) {
        (Some(Step::Window(w)), seen) => {
            j["window"] = json!({
                "measure": if w.distinct.is_some() { "distinct" } else { "count" },
                "value": seen.as_ref().map(|v| val(p, v)),
                "op": w.op.symbol(), "limit": w.limit, "late": seen.is_none()});
        }
        (Some(Step::Throttle(_)), seen) => {
            j["throttle"] = json!({"suppressed": seen.as_ref().map(|v| val(p, v)), "held": seen.is_none()});
        }
        _ => {}
    }
    j
}

fn rule_json(p: &Program, r: &RuleTrace) -> serde_json::Value {
    let rule = p.rule(r.rule);
    let (verdict, error) = match &r.verdict {
        Verdict::Fired => ("fired", serde_json::Value::Null),
        Verdict::Silent => ("silent", serde_json::Value::Null),
        Verdict::Error(e) => {
            ("error", json!({"code": e.code.as_str(), "message": e.message, "at": e.span.map(|s| at(p, s))}))
        }
    };
    let stopped = match r.verdict {
        Verdict::Silent => r.clauses.last().map(|c| clause_json(p, c)),
        _ => None,
    };
    let mut bindings = serde_json::Map::new();
    for (n, v) in &r.bindings {
        bindings.insert(n.clone(), val(p, v));
    }
    let mut effects: Vec<serde_json::Value> = r.writes.iter().map(|w| replay::write_json(w, &p.schema)).collect();
    effects.extend(r.effects.iter().map(|e| replay::effect_json(e, &p.schema)));
    json!({"rule": rule.name, "at": at(p, rule.name_span), "fired": r.verdict == Verdict::Fired,
        "verdict": verdict, "error": error, "stopped_by": stopped,
        "clauses": r.clauses.iter().map(|c| clause_json(p, c)).collect::<Vec<_>>(),
        "bindings": bindings, "effects": effects})
}

pub fn trace_json(p: &Program, report: &TraceReport) -> serde_json::Value {
    let events: Vec<serde_json::Value> = report
        .events
        .iter()
        .map(|e: &EventTrace| {
            json!({"line": e.line, "type": e.type_name, "event": e.key, "dead_letter": e.dead_letter,
                "skipped": e.skipped,
                "rules": e.rules.iter().map(|r| rule_json(p, r)).collect::<Vec<_>>()})
        })
        .collect();
    json!({"events": events, "omitted": report.omitted})
}

fn detail_human(p: &Program, d: &Detail, out: &mut String, pad: &str) {
    let _ = match d {
        Detail::EventType { expected, found } => {
            let names: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
            writeln!(out, "{pad}the event is `{found}`; the rule matches {}", names.join(" | "))
        }
        Detail::Compare { span, op, left, right } => {
            let _ = writeln!(out, "{pad}`{}` is false ({})", src(p, *span), at(p, *span));
            let _ = writeln!(out, "{pad}  left  `{}` = {}", otext(p, left), show(p, &left.value));
            writeln!(out, "{pad}  right `{}` = {}   (operator {op})", otext(p, right), show(p, &right.value))
        }
        Detail::Presence { span, negated, operand } => {
            let _ = writeln!(out, "{pad}`{}` is false ({})", src(p, *span), at(p, *span));
            let want = if *negated { "a value" } else { "absent or null" };
            writeln!(out, "{pad}  `{}` = {} (needs {want})", otext(p, operand), show(p, &operand.value))
        }
        Detail::Membership { span, elem, container } => {
            let _ = writeln!(out, "{pad}`{}` is false ({})", src(p, *span), at(p, *span));
            let _ = writeln!(out, "{pad}  `{}` = {}", otext(p, elem), show(p, &elem.value));
            writeln!(out, "{pad}  is not in `{}` = {}", otext(p, container), show(p, &container.value))
        }
        Detail::False { span } => writeln!(out, "{pad}`{}` is false ({})", src(p, *span), at(p, *span)),
        Detail::Nothing { value } => writeln!(out, "{pad}found nothing ({})", show(p, &value.value)),
    };
}

fn read_human(p: &Program, r: &Read, out: &mut String, pad: &str) {
    let keys: Vec<String> = r.keys.iter().map(|k| show(p, k)).collect();
    let more = if (r.keys.len() as u64) < r.rows && !r.keys.is_empty() { ", ..." } else { "" };
    let keys = if keys.is_empty() { String::new() } else { format!(" (keys {}{more})", keys.join(", ")) };
    let _ =
        writeln!(out, "{pad}read {} {}: {} row{}{keys}", r.kind, r.entity, r.rows, if r.rows == 1 { "" } else { "s" });
}

pub fn trace_human(p: &Program, report: &TraceReport) -> String {
    let mut out = String::new();
    if report.events.is_empty() {
        out.push_str("no event selected (no line matched the selection, or no rule takes the events' types)\n");
    }
    for e in &report.events {
        let key = e.key.as_deref().map(|k| format!(", event {k}")).unwrap_or_default();
        let ty = if e.type_name.is_empty() { String::new() } else { format!(" `{}`", e.type_name) };
        let _ = writeln!(out, "line {}{ty}{key}", e.line);
        if let Some(d) = &e.dead_letter {
            let _ = writeln!(out, "  dead letter: {d}");
        }
        if e.skipped {
            let _ = writeln!(out, "  skipped: an event with this id came earlier in the input (`run` skips it)");
        }
        for r in &e.rules {
            let rule = p.rule(r.rule);
            let verdict = match &r.verdict {
                Verdict::Fired => "fired".to_string(),
                Verdict::Silent => "did not fire".to_string(),
                Verdict::Error(err) => format!(
                    "rule error {}: {}{}",
                    err.code,
                    err.message,
                    err.span.map(|s| format!(" (at {})", at(p, s))).unwrap_or_default()
                ),
            };
            let _ = writeln!(out, "  rule {} ({}): {verdict}", rule.name, at(p, rule.name_span));
            for c in &r.clauses {
                let mark = if c.passed { "passed" } else { "stopped the rule" };
                let _ = writeln!(out, "    {:<9} {}  {mark}", c.kind.keyword(), at(p, c.span));
                for rd in &c.reads {
                    read_human(p, rd, &mut out, "      ");
                }
                if let Some(d) = &c.detail {
                    detail_human(p, d, &mut out, "      ");
                }
                if let Some(note) = stateful_human(p, c) {
                    let _ = writeln!(out, "      {note}");
                }
            }
            if r.verdict == Verdict::Fired {
                if !r.bindings.is_empty() {
                    let _ = writeln!(out, "    bindings");
                    for (n, v) in &r.bindings {
                        let _ = writeln!(out, "      {n} = {}", show(p, v));
                    }
                }
                let _ = writeln!(out, "    effects (not applied)");
                if r.writes.is_empty() && r.effects.is_empty() {
                    let _ = writeln!(out, "      none");
                }
                for w in &r.writes {
                    let _ = writeln!(out, "      {}", replay::write_json(w, &p.schema));
                }
                for ef in &r.effects {
                    let _ = writeln!(out, "      {}", replay::effect_json(ef, &p.schema));
                }
            }
        }
    }
    if report.omitted > 0 {
        let _ = writeln!(
            out,
            "... {} more event{} not traced (use --line N or --limit N)",
            report.omitted,
            if report.omitted == 1 { "" } else { "s" }
        );
    }
    out
}

pub struct DiffArgs<'a> {
    pub schema: Option<&'a str>,
    pub db: Option<&'a Path>,
    pub events: &'a Path,
    pub format: Format,
    pub old: &'a Path,
    pub new: &'a Path,
}

pub fn diff(a: &DiffArgs<'_>) -> i32 {
    // Exit 1 means "different": a policy that does not compile is a usage
    // error here (2), never mistaken for a difference.
    let mut programs = Vec::new();
    for f in [a.old, a.new] {
        match compile_files(a.schema, &[f.to_path_buf()]) {
            Ok(p) => programs.push(p),
            Err(Err(m)) => return fail(m),
            Err(Ok(())) => {
                eprintln!("herald: `{}` does not compile", f.display());
                return EXIT_USAGE;
            }
        }
    }
    let (old_p, new_p) = (programs[0].clone(), programs[1].clone());
    let (old_s, new_s) = match (scratch(a.db, &old_p), scratch(a.db, &new_p)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let matcher =
        |p: &Arc<Program>| super::commands::make_matcher(super::Engine::Jit, p, crate::logfmt::LogFormat::Human);
    let (om, nm) = match (matcher(&old_p), matcher(&new_p)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let old = DiffSide { program: old_p, matcher: om, store: &*old_s };
    let new = DiffSide { program: new_p, matcher: nm, store: &*new_s };
    let input = match open_events(a.events) {
        Ok(i) => i,
        Err(c) => return c,
    };
    let report = match replay::diff(&old, &new, input) {
        Ok(r) => r,
        Err(e) => return run_error(e),
    };
    let text = match a.format {
        Format::Json => format!("{}\n", diff_json(&report)),
        Format::Human => diff_human(&report),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if report.differing.is_empty() {
        EXIT_OK
    } else {
        EXIT_DIFFERENT
    }
}

fn outcome_text(o: &DiffOutcome) -> String {
    match o {
        DiffOutcome::Silent => "silent".into(),
        DiffOutcome::Fired(_) => "fired".into(),
        DiffOutcome::Error(code, m) => format!("{code} ({m})"),
    }
}

fn outcome_json(o: &DiffOutcome) -> serde_json::Value {
    match o {
        DiffOutcome::Silent => json!({"fired": false}),
        DiffOutcome::Fired(effects) => json!({"fired": true, "effects": effects}),
        DiffOutcome::Error(code, m) => json!({"fired": false, "error": {"code": code, "message": m}}),
    }
}

pub fn diff_json(r: &DiffReport) -> serde_json::Value {
    let events: Vec<serde_json::Value> = r
        .differing
        .iter()
        .map(|e| {
            let changes: Vec<serde_json::Value> = e
                .changes
                .iter()
                .map(|c| {
                    let first = c.first_difference().map(|(i, o, n)| json!({"index": i, "old": o, "new": n}));
                    json!({"rule": c.rule, "old": outcome_json(&c.old), "new": outcome_json(&c.new),
                        "first_difference": first})
                })
                .collect();
            json!({"line": e.line, "event": e.key, "rules": changes})
        })
        .collect();
    let mut rules = serde_json::Map::new();
    for (n, t) in &r.totals {
        rules.insert(
            n.clone(),
            json!({"in_old": t.in_old, "in_new": t.in_new, "fired_old": t.fired_old, "fired_new": t.fired_new,
                "old_only": t.old_only, "new_only": t.new_only, "changed": t.changed}),
        );
    }
    json!({"events": r.events, "dead_letters": r.dead_letters, "differing": r.differing.len(),
        "differences": events, "rules": rules})
}

pub fn diff_human(r: &DiffReport) -> String {
    let mut out = String::new();
    for e in &r.differing {
        let key = e.key.as_deref().map(|k| format!(" (event {k})")).unwrap_or_default();
        for c in &e.changes {
            let _ = writeln!(
                out,
                "line {}{key}: rule {}: {} -> {}",
                e.line,
                c.rule,
                outcome_text(&c.old),
                outcome_text(&c.new)
            );
            let first = match (&c.old, &c.new) {
                (DiffOutcome::Fired(_), DiffOutcome::Fired(_)) => c.first_difference(),
                (DiffOutcome::Fired(a), _) => a.first().map(|x| (0, Some(x), None)),
                (_, DiffOutcome::Fired(b)) => b.first().map(|x| (0, None, Some(x))),
                _ => None,
            };
            if let Some((i, o, n)) = first {
                let show = |v: Option<&serde_json::Value>| v.map_or("(none)".to_string(), |v| v.to_string());
                let _ = writeln!(out, "    effect {}: old {}", i + 1, show(o));
                let _ = writeln!(out, "    effect {}: new {}", i + 1, show(n));
            }
        }
    }
    if !r.differing.is_empty() {
        out.push('\n');
    }
    let w = r.totals.keys().map(|k| k.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "{:<w$}  {:>9}  {:>9}  {:>8}  {:>8}  {:>7}",
        "rule", "fired old", "fired new", "old only", "new only", "changed"
    );
    for (n, t) in &r.totals {
        let note = match (t.in_old, t.in_new) {
            (true, false) => "  (removed)",
            (false, true) => "  (added)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{n:<w$}  {:>9}  {:>9}  {:>8}  {:>8}  {:>7}{note}",
            t.fired_old, t.fired_new, t.old_only, t.new_only, t.changed
        );
    }
    let _ = writeln!(
        out,
        "{} event{} differ{} out of {} ({} dead letter{})",
        r.differing.len(),
        if r.differing.len() == 1 { "" } else { "s" },
        if r.differing.len() == 1 { "s" } else { "" },
        r.events,
        r.dead_letters,
        if r.dead_letters == 1 { "" } else { "s" }
    );
    out
}
