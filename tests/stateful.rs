//! Windows, throttles and sequences (`after`) against a reference model.
//!
//! The model below keeps, per rule, every event it was shown and recomputes
//! each answer from scratch (no pruning, no cache, no store): it is the
//! contract of docs/language.md written as the most direct code. The engine
//! runs the same streams on SQLite files, under the interpreter and the JIT,
//! with `--batch` 1 and large, one and four threads, and across a restart in
//! the middle of the stream (a fresh cache reading the state back from the
//! store); every run must fire the same rules on the same events with the
//! same bound values, and leave the same store.

use herald::compile::{self, SchemaChoice};
use herald::decode::{DecodePlan, PlanSpec};
use herald::engine::{self, InterpMatcher, Matcher, RunOptions};
use herald::ir::Program;
use herald::jit::JitMatcher;
use herald::span::SourceMap;
use herald::store::Store;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

const POLICY: &str = r#"
rule per_user {
  match login_failed { context.username: name }
  window 10m by name count >= 3
  action log(message: "count={window.count} first={window.first} last={window.last}")
}
rule per_ip_users {
  match login_failed { client_ip: ip, context.username: name }
  window 5m by ip distinct name >= 2
  action log(message: "count={window.count} distinct={window.distinct}")
}
rule quiet {
  match login_failed { context.username: name }
  throttle 10m by name
  action log(message: "suppressed={throttle.suppressed}")
}
rule burst_once {
  match login_failed { context.username: name }
  window 10m by name count >= 2
  throttle 30m by name
  action log(message: "count={window.count} suppressed={throttle.suppressed}")
}
rule global {
  match login_failed
  throttle 1h
  action log(message: "suppressed={throttle.suppressed}")
}
rule seq {
  match login_failed { context.username: name }
  after login as prev { user.username: name, client_ip: ip } within 10m
  action log(message: "prev={prev.created} ip={ip}")
}
"#;

const MIN: i64 = 60;

fn program() -> Arc<Program> {
    static P: OnceLock<Arc<Program>> = OnceLock::new();
    P.get_or_init(|| {
        let mut sources = SourceMap::new();
        let id = sources.add("stateful.herald", POLICY.to_string());
        let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &[id]);
        Arc::new(compiled.program.unwrap_or_else(|| panic!("policy compiles: {:?}", compiled.diagnostics)))
    })
    .clone()
}

// ---------------------------------------------------------------- events

#[derive(Debug, Clone)]
struct Ev {
    id: u32,
    /// Seconds after the base time; `None`: the event has no `created`.
    time: Option<i64>,
    user: &'static str,
    ip: &'static str,
    /// A `login` (recorded by `seq`'s `after`) instead of a `login_failed`.
    login: bool,
}

const BASE: i64 = 1_777_885_200; // 2026-05-04T09:00:00Z

fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn line(e: &Ev) -> String {
    let mut j = if e.login {
        serde_json::json!({
            "action": "login",
            "event_uuid": format!("00000000-0000-4000-8000-{:012x}", e.id),
            "client_ip": e.ip,
            "user": { "username": e.user, "pk": 7 },
        })
    } else {
        serde_json::json!({
            "action": "login_failed",
            "event_uuid": format!("00000000-0000-4000-8000-{:012x}", e.id),
            "client_ip": e.ip,
            "context": { "username": e.user },
        })
    };
    if let Some(t) = e.time {
        j["created"] = serde_json::Value::String(rfc3339(BASE + t));
    }
    j.to_string()
}

fn input(events: &[Ev]) -> Vec<u8> {
    let mut out = String::new();
    for e in events {
        out.push_str(&line(e));
        out.push('\n');
    }
    out.into_bytes()
}

/// Streams with bursts, gaps landing exactly on window edges, events out of
/// order, equal times, duplicate ids and the odd event without a time.
fn stream() -> impl Strategy<Value = Vec<Ev>> {
    let step = prop_oneof![
        4 => Just(0i64),
        6 => Just(MIN),
        3 => Just(5 * MIN),
        3 => Just(10 * MIN),
        2 => Just(30 * MIN),
        1 => Just(60 * MIN),
        1 => Just(2 * 60 * MIN),
        2 => Just(-MIN),
        2 => Just(-5 * MIN),
        1 => Just(-10 * MIN),
        1 => Just(-40 * MIN),
    ];
    let item = ((step, 0usize..3, 0usize..2), (0u8..20, 0u8..40, 0u8..4));
    prop::collection::vec(item, 1..60).prop_map(|items| {
        let mut now = 0i64;
        let mut out: Vec<Ev> = Vec::new();
        for (i, ((step, user, ip), (dup, timeless, kind))) in items.into_iter().enumerate() {
            now += step;
            if dup == 0 && !out.is_empty() {
                // The same event again (a replayed line).
                let again = out[i % out.len()].clone();
                out.push(again);
                continue;
            }
            let id = if dup == 1 && !out.is_empty() { out[(i * 7) % out.len()].id } else { i as u32 + 1 };
            out.push(Ev {
                id,
                time: if timeless == 0 { None } else { Some(now) },
                user: ["alice", "bob", "carol"][user],
                ip: ["10.0.0.1", "10.0.0.2"][ip],
                login: kind == 0,
            });
        }
        out
    })
}

// ---------------------------------------------------------------- the model

/// One firing: rule, input line, the message its action logged.
type Firing = (String, u64, String);

#[derive(Default)]
struct Clause {
    watermark: Option<i64>,
    /// Window: every recorded event (key, time, distinct value).
    events: Vec<(String, i64, Option<String>)>,
    /// Throttle: every firing (key, time), and the events it stopped since
    /// the key's last firing.
    fired: Vec<(String, i64)>,
    suppressed: Vec<(String, i64)>,
    /// After: every recorded earlier event (key, time, ip), in input order.
    recorded: Vec<(String, i64, String)>,
}

impl Clause {
    /// Too late: at or before `watermark - d`. Otherwise the watermark moves.
    fn place(&mut self, t: i64, d: i64) -> bool {
        if self.watermark.is_some_and(|w| t <= w - d) {
            return false;
        }
        self.watermark = Some(self.watermark.map_or(t, |w| w.max(t)));
        true
    }

    fn window(&mut self, key: &str, t: i64, d: i64, value: Option<&str>) -> Option<(i64, i64, i64, i64)> {
        if !self.place(t, d) {
            return None;
        }
        self.events.push((key.to_string(), t, value.map(str::to_string)));
        let inside: Vec<_> =
            self.events.iter().filter(|(k, time, _)| k == key && *time > t - d && *time <= t).collect();
        let distinct: BTreeSet<_> = inside.iter().filter_map(|(_, _, v)| v.as_ref()).collect();
        let first = inside.iter().map(|e| e.1).min().unwrap();
        let last = inside.iter().map(|e| e.1).max().unwrap();
        Some((inside.len() as i64, distinct.len() as i64, first, last))
    }

    fn throttle(&mut self, key: &str, t: i64, d: i64) -> Option<i64> {
        if !self.place(t, d) {
            return None;
        }
        if self.fired.iter().any(|(k, f)| k == key && *f > t - d && *f <= t) {
            self.suppressed.push((key.to_string(), t));
            return None;
        }
        // Stopped events older than twice the throttle before the latest
        // time seen are forgotten (docs/language.md).
        let horizon = self.watermark.unwrap() - 2 * d;
        Some(self.suppressed.iter().filter(|(k, s)| k == key && *s > horizon).count() as i64)
    }

    /// `after`: record an earlier event (unless too late to place).
    fn record(&mut self, key: &str, t: i64, d: i64, ip: &str) {
        if self.place(t, d) {
            self.recorded.push((key.to_string(), t, ip.to_string()));
        }
    }

    /// `after` at `t`: the recorded event of `key` with the latest time in
    /// `[t - d, t]`, the later recorded among equal times.
    fn after(&mut self, key: &str, t: i64, d: i64) -> Option<(i64, String)> {
        if !self.place(t, d) {
            return None;
        }
        let mut best: Option<&(String, i64, String)> = None;
        for r in self.recorded.iter().filter(|(k, time, _)| k == key && *time >= t - d && *time <= t) {
            if best.is_none_or(|b| r.1 >= b.1) {
                best = Some(r);
            }
        }
        best.map(|(_, time, ip)| (*time, ip.clone()))
    }

    fn fire(&mut self, key: &str, t: i64) {
        self.fired.push((key.to_string(), t));
        self.suppressed.retain(|(k, _)| k != key);
    }
}

fn clause<'a>(clauses: &'a mut BTreeMap<(&'static str, u32), Clause>, rule: &'static str, n: u32) -> &'a mut Clause {
    clauses.entry((rule, n)).or_default()
}

fn ts(secs: i64) -> String {
    rfc3339(BASE + secs)
}

fn model(events: &[Ev]) -> Vec<Firing> {
    let mut clauses: BTreeMap<(&str, u32), Clause> = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let line = i as u64 + 1;
        // Every rule has a stateful clause and every event reaches one (or
        // fails for want of a time): each event gets a replay record.
        if !seen.insert(e.id) {
            continue;
        }
        let Some(t) = e.time else { continue };
        if e.login {
            // No rule matches a login; `seq`'s `after` records it.
            clause(&mut clauses, "seq", 0).record(e.user, t, 10 * MIN, e.ip);
            continue;
        }
        if let Some((time, ip)) = clause(&mut clauses, "seq", 0).after(e.user, t, 10 * MIN) {
            out.push(("seq".into(), line, format!("prev={} ip={ip}", ts(time))));
        }
        if let Some((count, _, first, last)) = clause(&mut clauses, "per_user", 0).window(e.user, t, 10 * MIN, None) {
            if count >= 3 {
                out.push(("per_user".into(), line, format!("count={count} first={} last={}", ts(first), ts(last))));
            }
        }
        let user = format!("\"{}\"", e.user);
        if let Some((count, distinct, _, _)) =
            clause(&mut clauses, "per_ip_users", 0).window(e.ip, t, 5 * MIN, Some(&user))
        {
            if distinct >= 2 {
                out.push(("per_ip_users".into(), line, format!("count={count} distinct={distinct}")));
            }
        }
        if let Some(s) = clause(&mut clauses, "quiet", 0).throttle(e.user, t, 10 * MIN) {
            clause(&mut clauses, "quiet", 0).fire(e.user, t);
            out.push(("quiet".into(), line, format!("suppressed={s}")));
        }
        if let Some((count, _, _, _)) = clause(&mut clauses, "burst_once", 0).window(e.user, t, 10 * MIN, None) {
            if count >= 2 {
                if let Some(s) = clause(&mut clauses, "burst_once", 1).throttle(e.user, t, 30 * MIN) {
                    clause(&mut clauses, "burst_once", 1).fire(e.user, t);
                    out.push(("burst_once".into(), line, format!("count={count} suppressed={s}")));
                }
            }
        }
        if let Some(s) = clause(&mut clauses, "global", 0).throttle("", t, 60 * MIN) {
            clause(&mut clauses, "global", 0).fire("", t);
            out.push(("global".into(), line, format!("suppressed={s}")));
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------- the engine

#[derive(Clone, Copy, Debug)]
enum Engine {
    Interp,
    Jit,
}

fn matcher(program: &Arc<Program>, engine: Engine) -> Arc<dyn Matcher> {
    match engine {
        Engine::Interp => Arc::new(InterpMatcher::new(program.clone())),
        Engine::Jit => {
            let plan = DecodePlan::new(PlanSpec::for_program(program));
            Arc::new(JitMatcher::compile(program.clone(), &plan).expect("JIT compiles"))
        }
    }
}

/// Run `input` on the store at `db`; the firings with their log messages.
fn run(db: &Path, input: &[u8], engine: Engine, batch: usize, workers: usize) -> Vec<Firing> {
    let program = program();
    let store = Store::open(db, program.schema.clone()).expect("store opens");
    let opts = RunOptions { batch, workers, ..RunOptions::default() };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    engine::run(
        program.clone(),
        matcher(&program, engine),
        &store,
        std::io::Cursor::new(input),
        opts,
        &mut out,
        &mut err,
    )
    .expect("run");
    let mut firings = Vec::new();
    for l in String::from_utf8(err).unwrap().lines().filter(|l| l.starts_with('{')) {
        let j: serde_json::Value = serde_json::from_str(l).unwrap();
        firings.push((
            j["rule"].as_str().unwrap().to_string(),
            j["line"].as_u64().unwrap(),
            j["message"].as_str().unwrap().to_string(),
        ));
    }
    firings.sort();
    firings
}

fn dump(db: &Path) -> String {
    Store::open(db, program().schema.clone()).expect("store opens").dump()
}

/// What is left of the store once the run-specific parts are masked: the
/// checkpoint names the input's length, which differs between a whole run
/// and one in two parts only in `updated`-like columns the dump masks.
fn state_rows(db: &Path) -> Vec<String> {
    let store = Store::open(db, program().schema.clone()).expect("store opens");
    let mut st = store
        .connection()
        .prepare("SELECT rule, clause, key, kind, time, coalesce(value, '') FROM herald_state_entry ORDER BY 1, 2, 3, 5, 4, 6")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok(format!(
                "{} {} {} {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?
            ))
        })
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Interpreter and JIT, batch 1 and large, one and four threads, and a
    /// restart half way: all fire exactly what the model fires, and leave
    /// the same store.
    #[test]
    fn engine_agrees_with_the_model(events in stream(), cut in 0usize..60) {
        let expected = model(&events);
        let bytes = input(&events);
        let dir = tempfile::tempdir().unwrap();
        let mut dumps = Vec::new();
        for (n, (engine, batch, workers)) in
            [(Engine::Interp, 1, 1), (Engine::Jit, 100_000, 4), (Engine::Jit, 1, 1), (Engine::Interp, 7, 4)].into_iter().enumerate()
        {
            let db = dir.path().join(format!("run{n}.db"));
            let got = run(&db, &bytes, engine, batch, workers);
            prop_assert_eq!(&got, &expected, "{:?} batch {} threads {}", engine, batch, workers);
            // The same input again changes nothing: every event is known.
            let before = dump(&db);
            prop_assert_eq!(run(&db, &bytes, engine, batch, workers), Vec::<Firing>::new());
            prop_assert_eq!(&dump(&db), &before);
            dumps.push(before);
        }
        for d in &dumps[1..] {
            prop_assert_eq!(d, &dumps[0]);
        }
        // A restart after `cut` lines: the second process starts with an
        // empty cache and reads the state of the first from the store.
        let cut = cut.min(events.len());
        let db = dir.path().join("split.db");
        let mut got = run(&db, &input(&events[..cut]), Engine::Jit, 3, 2);
        got.extend(run(&db, &bytes, Engine::Jit, 3, 2));
        got.sort();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(state_rows(&db), state_rows(&dir.path().join("run0.db")));
    }
}

// ---------------------------------------------------------------- boundaries

fn ev(id: u32, time: i64, user: &'static str) -> Ev {
    Ev { id, time: Some(time), user, ip: "10.0.0.1", login: false }
}

fn login(id: u32, time: i64, user: &'static str, ip: &'static str) -> Ev {
    Ev { id, time: Some(time), user, ip, login: true }
}

fn fired(events: &[Ev], rule: &str) -> Vec<(u64, String)> {
    let dir = tempfile::tempdir().unwrap();
    let got = run(&dir.path().join("s.db"), &input(events), Engine::Jit, 100, 2);
    assert_eq!(got, model(events), "engine and model disagree");
    got.into_iter().filter(|f| f.0 == rule).map(|f| (f.1, f.2)).collect()
}

/// The window is `(t - D, t]`: an event exactly D after the first no longer
/// sees it.
#[test]
fn an_event_exactly_d_after_the_first_does_not_count_it() {
    let at = |m: i64| m * MIN;
    // 0, 5m, 10m: the third is exactly 10m after the first, so its window
    // holds two events; 9m59s would have held three.
    assert_eq!(fired(&[ev(1, at(0), "bob"), ev(2, at(5), "bob"), ev(3, at(10), "bob")], "per_user"), vec![]);
    let got = fired(&[ev(1, at(0), "bob"), ev(2, at(5), "bob"), ev(3, at(10) - 1, "bob")], "per_user");
    assert_eq!(got, vec![(3, format!("count=3 first={} last={}", ts(0), ts(at(10) - 1)))]);
}

/// Events with the same time are all inside each other's window.
#[test]
fn events_with_the_same_time_count_together() {
    let got = fired(&[ev(1, 0, "bob"), ev(2, 0, "bob"), ev(3, 0, "bob")], "per_user");
    assert_eq!(got, vec![(3, format!("count=3 first={} last={}", ts(0), ts(0)))]);
}

/// A throttle passes the first event of a key whenever it comes, and counts
/// what it stopped.
#[test]
fn a_throttle_key_that_first_appears_late_passes() {
    let events =
        [ev(1, 0, "bob"), ev(2, MIN, "bob"), ev(3, 2 * MIN, "bob"), ev(4, 3 * MIN, "carol"), ev(5, 11 * MIN, "bob")];
    let got = fired(&events, "quiet");
    assert_eq!(got, vec![(1, "suppressed=0".into()), (4, "suppressed=0".into()), (5, "suppressed=2".into())]);
}

/// An out-of-order event lands by its own time and can complete a window.
#[test]
fn a_late_event_completes_a_window_by_its_own_time() {
    // 0 and 6m, then 14m (its window `(4m, 14m]` holds 6m and 14m), then a
    // late 7m: its window `(-3m, 7m]` holds 0, 6m and 7m, not 14m.
    let events = [ev(1, 0, "bob"), ev(2, 6 * MIN, "bob"), ev(3, 14 * MIN, "bob"), ev(4, 7 * MIN, "bob")];
    assert_eq!(fired(&events, "per_user"), vec![(4, format!("count=3 first={} last={}", ts(0), ts(7 * MIN)))]);
}

/// An event at or before `watermark - D` is too late to place: it stops the
/// rule and is not recorded.
#[test]
fn an_event_older_than_the_window_behind_the_latest_is_dropped() {
    let events = [ev(1, 60 * MIN, "bob"), ev(2, 50 * MIN, "bob"), ev(3, 51 * MIN, "bob"), ev(4, 55 * MIN, "bob")];
    // 50m is exactly 10m behind the watermark 60m: too late. 51m and 55m
    // are placed; the window of 55m holds 51m and 55m (and not 60m).
    assert_eq!(fired(&events, "per_user"), vec![]);
    let events = [ev(1, 60 * MIN, "bob"), ev(2, 51 * MIN, "bob"), ev(3, 52 * MIN, "bob"), ev(4, 55 * MIN, "bob")];
    assert_eq!(fired(&events, "per_user"), vec![(4, format!("count=3 first={} last={}", ts(51 * MIN), ts(55 * MIN)))]);
}

/// An event without its time field fails each stateful rule and changes no
/// state: the `time` field is a required `timestamp`, so its absence
/// contradicts the schema (R0006).
#[test]
fn an_event_without_time_is_a_rule_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let events = [Ev { id: 1, time: None, user: "bob", ip: "10.0.0.1", login: false }];
    assert_eq!(run(&db, &input(&events), Engine::Interp, 10, 1), vec![]);
    let store = Store::open(&db, program().schema.clone()).unwrap();
    let codes: Vec<String> = store
        .connection()
        .prepare("SELECT code FROM herald_rule_error ORDER BY rule")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(codes, vec!["R0006"; 6]);
    let n: i64 = store.connection().query_row("SELECT count(*) FROM herald_state_entry", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
}

/// State is bounded by live keys: a long stream over many keys leaves only
/// the entries of the last window(s).
#[test]
fn expired_state_is_pruned() {
    let users: [&'static str; 3] = ["alice", "bob", "carol"];
    let events: Vec<Ev> = (0..600).map(|i| ev(i + 1, i64::from(i) * MIN, users[i as usize % 3])).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    assert_eq!(run(&db, &input(&events), Engine::Jit, 1000, 2), model(&events));
    let store = Store::open(&db, program().schema.clone()).unwrap();
    let n: i64 = store.connection().query_row("SELECT count(*) FROM herald_state_entry", [], |r| r.get(0)).unwrap();
    // Every clause keeps at most 2D (+ one sweep period D) of entries: with
    // one event a minute and D of at most 1h that is a few hundred rows of
    // the 600 x 5 recorded, never all of them.
    assert!(n < 600, "{n} state rows left after 600 events");
}

// ---------------------------------------------------------------- sequences

/// `after ... within D` covers `[t - D, t]`: an earlier event exactly D
/// before counts, one a second more does not.
#[test]
fn an_earlier_event_exactly_d_before_completes_a_sequence() {
    let events = [login(1, 0, "bob", "10.0.0.9"), ev(2, 10 * MIN, "bob")];
    assert_eq!(fired(&events, "seq"), vec![(2, format!("prev={} ip=10.0.0.9", ts(0)))]);
    let events = [login(1, 0, "bob", "10.0.0.9"), ev(2, 10 * MIN + 1, "bob")];
    assert_eq!(fired(&events, "seq"), vec![]);
}

/// An earlier event at the same time counts; of several, the latest binds
/// `prev` (the later in the input among equal times).
#[test]
fn the_latest_earlier_event_binds_prev() {
    let events = [
        login(1, 0, "bob", "10.0.0.1"),
        login(2, 3 * MIN, "bob", "10.0.0.2"),
        login(3, 5 * MIN, "bob", "10.0.0.3"),
        login(4, 5 * MIN, "bob", "10.0.0.4"),
        ev(5, 5 * MIN, "bob"),
    ];
    assert_eq!(fired(&events, "seq"), vec![(5, format!("prev={} ip=10.0.0.4", ts(5 * MIN)))]);
}

/// The join key: an earlier event of another user never completes the
/// sequence.
#[test]
fn a_shared_binding_mismatch_does_not_complete_a_sequence() {
    let events = [login(1, 0, "alice", "10.0.0.1"), ev(2, MIN, "bob"), ev(3, 2 * MIN, "alice")];
    assert_eq!(fired(&events, "seq"), vec![(3, format!("prev={} ip=10.0.0.1", ts(0)))]);
}

/// Order of arrival does not matter, event time does: a login that arrives
/// after the failure but happened before it completes the sequence for a
/// later failure; the failure already processed is not revisited.
#[test]
fn a_late_earlier_event_counts_by_its_own_time() {
    let events = [ev(1, 5 * MIN, "bob"), login(2, 2 * MIN, "bob", "10.0.0.7"), ev(3, 6 * MIN, "bob")];
    assert_eq!(fired(&events, "seq"), vec![(3, format!("prev={} ip=10.0.0.7", ts(2 * MIN)))]);
    // A login after the failure (by time) does not precede it.
    let events = [login(1, 6 * MIN, "bob", "10.0.0.7"), ev(2, 5 * MIN, "bob")];
    assert_eq!(fired(&events, "seq"), vec![]);
}

/// A login matches no rule, but it is recorded, marked processed, and a
/// replay of it records nothing twice.
#[test]
fn recorded_events_are_processed_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let events = [login(1, 0, "bob", "10.0.0.7")];
    assert_eq!(run(&db, &input(&events), Engine::Jit, 10, 2), vec![]);
    assert_eq!(run(&db, &input(&events), Engine::Interp, 10, 1), vec![]);
    let store = Store::open(&db, program().schema.clone()).unwrap();
    let n: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM herald_state_entry WHERE rule = 'seq'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let p: i64 = store.connection().query_row("SELECT count(*) FROM herald_processed", [], |r| r.get(0)).unwrap();
    assert_eq!(p, 1);
}

/// An earlier event the recorder cannot read fails `seq` for that event (a
/// rule error, R0006), records nothing, and does not stop the run: a value
/// that contradicts the schema (`client_ip` is a `string?`), or no time.
#[test]
fn an_unreadable_earlier_event_is_a_rule_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut bad_ip: serde_json::Value = serde_json::from_str(&line(&login(1, 0, "bob", "10.0.0.1"))).unwrap();
    bad_ip["client_ip"] = serde_json::json!(5);
    let no_time = line(&Ev { id: 2, time: None, user: "bob", ip: "10.0.0.1", login: true });
    let later = line(&ev(3, MIN, "bob"));
    let text = format!("{bad_ip}\n{no_time}\n{later}\n");
    let got = run(&db, text.as_bytes(), Engine::Jit, 10, 2);
    assert!(got.iter().all(|f| f.0 != "seq"), "{got:?}");
    // The run went on: the later failure reached the other rules.
    assert!(got.iter().any(|f| f.0 == "quiet" && f.1 == 3), "{got:?}");
    let store = Store::open(&db, program().schema.clone()).unwrap();
    let errors: Vec<(String, String)> = store
        .connection()
        .prepare("SELECT rule, code FROM herald_rule_error ORDER BY line")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(errors, vec![("seq".to_string(), "R0006".to_string()); 2]);
    let n: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM herald_state_entry WHERE rule = 'seq'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}
