//! Inputs shared by the criterion benches: the example policies and events,
//! and a generated large policy.
// Each bench uses a different subset of these helpers.
#![allow(dead_code)]

use herald::compile::{self, SchemaChoice};
use herald::ir::Program;
use herald::span::SourceMap;
use std::fmt::Write;
use std::path::Path;

pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/authentik");

/// 30 event types of the built-in authentik schema.
pub const TYPES: [&str; 30] = [
    "login",
    "login_failed",
    "logout",
    "password_set",
    "impersonation_started",
    "impersonation_ended",
    "model_created",
    "model_updated",
    "model_deleted",
    "authorize_application",
    "suspicious_request",
    "email_sent",
    "policy_exception",
    "policy_execution",
    "configuration_error",
    "configuration_warning",
    "user_write",
    "secret_view",
    "secret_rotate",
    "invitation_used",
    "source_linked",
    "flow_execution",
    "property_mapping_exception",
    "system_task_execution",
    "system_task_exception",
    "system_exception",
    "update_available",
    "export_ready",
    "review_initiated",
    "review_overdue",
];

/// `(file name, text)` of the five example policies, in file-name order.
pub fn example_policies() -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(EXAMPLES)
        .expect("examples/authentik exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "herald"))
        .collect();
    files.sort();
    files.iter().map(|p| (p.display().to_string(), std::fs::read_to_string(p).expect("readable policy"))).collect()
}

pub fn example_fixtures() -> String {
    std::fs::read_to_string(Path::new(EXAMPLES).join("fixtures.json")).expect("readable fixtures")
}

/// The example events, one per line (without the newline).
pub fn example_events() -> Vec<Vec<u8>> {
    let text = std::fs::read(Path::new(EXAMPLES).join("events.ndjson")).expect("readable events");
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| l.to_vec()).collect()
}

/// `n` events cycling through the example events, each with its own
/// `event_uuid` (the copy number is written over the uuid's last 12 hex
/// digits), so that replay protection does not skip the copies.
pub fn many_events(n: usize) -> Vec<u8> {
    let events = example_events();
    with_fresh_uuids((0..n).map(|i| &events[i % events.len()][..]))
}

/// The lines, each with its own `event_uuid` (the line number is written
/// over the uuid's last 12 hex digits), newline-terminated.
pub fn with_fresh_uuids<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let text = std::str::from_utf8(line).expect("UTF-8 events");
        let key = "\"event_uuid\":\"";
        match text.find(key) {
            Some(at) if text.len() >= at + key.len() + 36 => {
                let start = at + key.len();
                out.extend_from_slice(&line[..start + 24]);
                let _ = write!(Bytes(&mut out), "{i:012x}");
                out.extend_from_slice(&line[start + 36..]);
            }
            _ => out.extend_from_slice(line),
        }
        out.push(b'\n');
    }
    out
}

struct Bytes<'a>(&'a mut Vec<u8>);

impl Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A policy of `n` rules spread over the 30 event types of [`TYPES`], in a
/// mix of shapes: patterns with bindings, `where` clauses with string
/// functions and regexes, store guards, and each kind of action.
pub fn generated_policy(n: usize) -> String {
    let mut s = String::from("const admins = \"authentik Admins\"\nconst sender_domain = \"example.com\"\n\n");
    for i in 0..n {
        let ty = TYPES[i % TYPES.len()];
        let _ = match i % 5 {
            0 => writeln!(
                s,
                "rule r{i} {{\n  match {ty} {{ context.http_request.method: \"POST\", user.username: name }}\n  \
                 where event.client_ip == \"10.0.{}.{}\" or starts_with(event.context.http_request.path, \"/api/v{i}/\")\n  \
                 action log(\"rule r{i}: {{name}} from {{event.client_ip}}\", level: \"warning\")\n}}\n",
                i / 250,
                i % 250
            ),
            1 => writeln!(
                s,
                "rule r{i} {{\n  match {ty} {{ user.pk: pk }} where event.context.geo.country == \"C{}\" and not (event.app == \"x{i}\")\n  \
                 guard let u = User[pk]\n  guard u.is_active and not empty(u.email)\n  \
                 action notify(to: u, severity: \"notice\", body: \"Hello {{u.name}} (rule {i})\")\n}}\n",
                i % 50
            ),
            2 => writeln!(
                s,
                "rule r{i} {{\n  match {ty} where matches(event.context.http_request.user_agent, \"^curl/{i}\\\\.[0-9]+\")\n  \
                 let n = count Group(name == admins)\n  guard n > 0\n  \
                 action send_email(to: \"ops{i}@{{sender_domain}}\", subject: \"r{i}\", body: \"{{n}} groups, {{event.created}}\")\n}}\n"
            ),
            3 => writeln!(
                s,
                "rule r{i} {{\n  match {ty} {{ user: {{ pk: pk, email: email }} }} where ends_with(email, \"@corp{i}.example\")\n  \
                 guard let u = User[pk]\n  action {{\n    set u.attributes.last_{ty} = event.created\n    \
                 append \"{{event.event_uuid}}\" to u.attributes.seen\n  }}\n}}\n"
            ),
            _ => writeln!(
                s,
                "rule r{i} {{\n  match {ty} where len(event.context.message) > {} and \"token\" in event.context.message\n  \
                 action log(\"long message ({i})\")\n}}\n",
                100 + i
            ),
        };
    }
    s
}

/// Compile `(name, text)` sources against the built-in schema; panics on
/// compile errors (a bench's inputs are fixed and known to be valid).
pub fn compile_sources(files: &[(String, String)]) -> Program {
    let mut sources = SourceMap::new();
    let ids: Vec<_> = files.iter().map(|(n, t)| sources.add(n.as_str(), t.as_str())).collect();
    let compiled = compile::compile(&mut sources, SchemaChoice::Builtin, &ids);
    match compiled.program {
        Some(p) => p,
        None => {
            panic!("bench policy does not compile: {:#?}", &compiled.diagnostics[..compiled.diagnostics.len().min(5)])
        }
    }
}
