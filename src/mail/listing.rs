//! `herald outbox list`: the outbox as a table for people or JSON lines.
//! Reading is the store's ([`OutboxStore::for_each`]); this is presentation.

use std::io::Write;

use crate::store::outbox::ListError;
use crate::store::{OutboxListRow, OutboxStore};

/// One line, control characters shown as `\n`-style escapes, at most `max`
/// characters (the last one an ellipsis when cut).
fn cell(s: &str, max: usize) -> String {
    let mut flat = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            flat.extend(c.escape_default());
        } else {
            flat.push(c);
        }
    }
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `["a@x","b@y","c@z"]` → `a@x, +2`; not a JSON array of strings → the raw text.
fn recipients_summary(json: &str) -> String {
    match serde_json::from_str::<Vec<String>>(json) {
        Ok(list) => match list.len() {
            0 => "-".to_string(),
            1 => list[0].clone(),
            n => format!("{}, +{}", list[0], n - 1),
        },
        Err(_) => json.to_string(),
    }
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    out
}

/// `herald outbox list`: one row per message, as a table for people.
/// Columns: id, status, attempts, to (first recipient and how many more),
/// subject (cut at 40 characters), last error (cut at 60).
pub fn list(outbox: &OutboxStore, out: &mut impl Write) -> Result<(), ListError> {
    let mut lines: Vec<[String; 6]> = Vec::new();
    outbox.for_each(|r: OutboxListRow| {
        // A webhook shows its method and URL as "to" and its last HTTP
        // status as "subject"; one given up shows so as its status.
        let webhook = r.kind == "webhook";
        let status = if webhook && r.given_up_at.is_some() { "gave up" } else { r.status.as_str() };
        let (to, subject) = if webhook {
            let to = format!("{} {}", r.method.as_deref().unwrap_or("?"), r.url.as_deref().unwrap_or(""));
            let subject = match r.response_status {
                Some(s) => format!("webhook (HTTP {s})"),
                None => "webhook".to_string(),
            };
            (to, subject)
        } else {
            (recipients_summary(&r.to_addrs), r.subject.clone())
        };
        lines.push([
            r.id.to_string(),
            cell(status, 8),
            r.attempts.to_string(),
            cell(&to, 36),
            cell(&subject, 40),
            cell(r.last_error.as_deref().unwrap_or(""), 60),
        ]);
        Ok(())
    })?;
    if lines.is_empty() {
        writeln!(out, "the outbox is empty")?;
        return Ok(());
    }
    let header = ["ID", "STATUS", "TRIES", "TO", "SUBJECT", "LAST ERROR"];
    let mut widths = header.map(|h| h.len());
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let render = |out: &mut dyn Write, cols: [&str; 6]| -> std::io::Result<()> {
        let line = format!(
            "{:>w0$}  {}  {:>w2$}  {}  {}  {}",
            cols[0],
            pad(cols[1], widths[1]),
            cols[2],
            pad(cols[3], widths[3]),
            pad(cols[4], widths[4]),
            cols[5],
            w0 = widths[0],
            w2 = widths[2],
        );
        writeln!(out, "{}", line.trim_end())
    };
    render(out, header)?;
    for l in &lines {
        render(out, [&l[0], &l[1], &l[2], &l[3], &l[4], &l[5]])?;
    }
    Ok(())
}

fn json_list(raw: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .filter(|v| v.is_array())
        .unwrap_or_else(|| serde_json::Value::String(raw.to_string()))
}

/// `herald outbox list --format json`: one JSON object per line, every
/// column (`to`, `cc`, `bcc` as arrays; as the raw text when a row holds
/// something that is not a JSON array), with `kind`; a webhook's row adds
/// `url`, `method`, `response_status`, `response_excerpt` and
/// `given_up_at`. The body and the headers are left out (headers may hold
/// credentials).
pub fn list_json(outbox: &OutboxStore, out: &mut impl Write) -> Result<(), ListError> {
    outbox.for_each(|r: OutboxListRow| {
        let mut obj = serde_json::json!({
            "kind": r.kind,
            "id": r.id,
            "rule": r.rule,
            "event_uuid": r.event_uuid,
            "status": r.status,
            "attempts": r.attempts,
            "to": json_list(&r.to_addrs),
            "cc": json_list(&r.cc),
            "bcc": json_list(&r.bcc),
            "subject": r.subject,
            "created": r.created,
            "sent_at": r.sent_at,
            "next_attempt_at": r.next_attempt_at,
            "last_error": r.last_error,
            "lease_owner": r.lease_owner,
            "lease_until": r.lease_until,
        });
        if r.kind == "webhook" {
            if let Some(m) = obj.as_object_mut() {
                m.insert("url".into(), r.url.into());
                m.insert("method".into(), r.method.into());
                m.insert("response_status".into(), r.response_status.into());
                m.insert("response_excerpt".into(), r.response_excerpt.into());
                m.insert("given_up_at".into(), r.given_up_at.into());
            }
        }
        writeln!(out, "{obj}")?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(cell("abc", 5), "abc");
        assert_eq!(cell("abcdef", 5), "abcd…");
        assert_eq!(cell("a\r\nb", 10), "a\\r\\nb");
        assert_eq!(recipients_summary(r#"["a@x"]"#), "a@x");
        assert_eq!(recipients_summary(r#"["a@x","b@y","c@z"]"#), "a@x, +2");
        assert_eq!(recipients_summary("[]"), "-");
        assert_eq!(recipients_summary("oops"), "oops");
    }
}
