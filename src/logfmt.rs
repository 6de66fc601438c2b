//! Log lines on stderr: Herald's own messages (dead letters, rule errors,
//! warnings, the run summary) and the lines of `log` actions, for people
//! (`--log-format human`, the default) or as one JSON object per line
//! (`--log-format json`) for a log collector.
//!
//! A JSON line always has `time` (RFC 3339, UTC), `level` and `message`,
//! and `rule`, `event` (the event's identity) and `line` (its input line)
//! when the message is about one; extra fields (a summary's counts) follow.
//! Commands that print to stderr (`run` today, `serve` later) take a
//! [`LogFormat`] and write every line through it.

use std::io::Write;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `herald: ...` sentences; a `log` action's line is the JSON object
    /// of the v0 contract (`level`, `rule`, `event_uuid`, `line`, `message`).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// One message.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// `debug`, `info`, `warning` or `error`.
    pub level: &'a str,
    pub message: &'a str,
    pub rule: Option<&'a str>,
    /// The event's identity (`event_uuid` for authentik).
    pub event: Option<&'a str>,
    /// The event's input line.
    pub line: Option<u64>,
}

impl<'a> Record<'a> {
    /// A message about no event in particular.
    pub fn new(level: &'a str, message: &'a str) -> Record<'a> {
        Record { level, message, rule: None, event: None, line: None }
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    now.format(&fmt).unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

impl LogFormat {
    /// The JSON object of a record, with `extra` fields after the fixed ones.
    pub fn json(r: &Record<'_>, extra: serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("time".into(), now_rfc3339().into());
        m.insert("level".into(), r.level.into());
        m.insert("message".into(), r.message.into());
        if let Some(rule) = r.rule {
            m.insert("rule".into(), rule.into());
        }
        if let Some(event) = r.event {
            m.insert("event".into(), event.into());
        }
        if let Some(line) = r.line {
            m.insert("line".into(), line.into());
        }
        m.extend(extra);
        serde_json::Value::Object(m)
    }

    /// One of Herald's own messages. Human: `herald: line N: MESSAGE`
    /// (the line part only when there is one); the rule and event are
    /// already in the sentence.
    pub fn message(self, out: &mut (impl Write + ?Sized), r: &Record<'_>) {
        self.message_with(out, r, serde_json::Map::new());
    }

    /// [`message`](Self::message) with extra JSON fields (ignored by the
    /// human form, whose message says it all).
    pub fn message_with(
        self,
        out: &mut (impl Write + ?Sized),
        r: &Record<'_>,
        extra: serde_json::Map<String, serde_json::Value>,
    ) {
        // Lines go to stderr: a failed write has nowhere to be reported.
        let _ = match self {
            LogFormat::Human => match r.line {
                Some(n) => writeln!(out, "herald: line {n}: {}", r.message),
                None => writeln!(out, "herald: {}", r.message),
            },
            LogFormat::Json => writeln!(out, "{}", LogFormat::json(r, extra)),
        };
    }

    /// The line of a `log` action.
    pub fn write_action(self, out: &mut Vec<u8>, r: &Record<'_>) {
        let _ = match self {
            LogFormat::Human => {
                let j = serde_json::json!({
                    "level": r.level, "rule": r.rule, "event_uuid": r.event, "line": r.line, "message": r.message
                });
                writeln!(out, "{j}")
            }
            LogFormat::Json => writeln!(out, "{}", LogFormat::json(r, serde_json::Map::new())),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_and_json_forms() {
        let r = Record { level: "error", message: "dead letter: not JSON", rule: None, event: None, line: Some(3) };
        let mut h = Vec::new();
        LogFormat::Human.message(&mut h, &r);
        assert_eq!(String::from_utf8(h).unwrap(), "herald: line 3: dead letter: not JSON\n");
        let mut j = Vec::new();
        LogFormat::Json.message(&mut j, &Record { rule: Some("r"), event: Some("e1"), ..r });
        let text = String::from_utf8(j).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["message"], "dead letter: not JSON");
        assert_eq!((v["rule"].as_str(), v["event"].as_str(), v["line"].as_u64()), (Some("r"), Some("e1"), Some(3)));
        let t = v["time"].as_str().unwrap();
        assert!(t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn a_log_action_keeps_its_v0_line_in_human_form() {
        let r = Record { level: "info", message: "hi", rule: Some("r"), event: Some("e"), line: Some(1) };
        let mut h = Vec::new();
        LogFormat::Human.write_action(&mut h, &r);
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "{\"level\":\"info\",\"rule\":\"r\",\"event_uuid\":\"e\",\"line\":1,\"message\":\"hi\"}\n"
        );
    }
}
