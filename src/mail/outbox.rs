//! The `herald_outbox` table: reading rows, recording results, listing.
//!
//! Rows may have been written (or edited) by hand, so every column is read
//! leniently: a blob or number where text was expected becomes text, and
//! nothing here panics or aborts a pass because of one odd row.

use std::io::Write;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};

use super::MailError;

/// One outbox row, as delivery needs it.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub rule: String,
    pub event_uuid: String,
    pub to_addrs: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    pub created: String,
}

/// How many rows are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub failed: u64,
    pub sent: u64,
}

impl OutboxCounts {
    /// Rows not sent yet (`pending` + `failed`).
    pub fn unsent(&self) -> u64 {
        self.pending + self.failed
    }
}

fn text(v: SqlValue) -> String {
    match v {
        SqlValue::Null => String::new(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(f) => f.to_string(),
        SqlValue::Text(s) => s,
        SqlValue::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

fn opt_text(v: SqlValue) -> Option<String> {
    match v {
        SqlValue::Null => None,
        v => Some(text(v)),
    }
}

fn int(v: SqlValue) -> i64 {
    match v {
        SqlValue::Integer(i) => i,
        SqlValue::Real(f) => f as i64,
        SqlValue::Text(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// Ids of the rows a pass should consider, in id order.
pub(crate) fn select_ids(conn: &Connection, due_only: bool, now: &str) -> Result<Vec<i64>, rusqlite::Error> {
    if due_only {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM herald_outbox \
             WHERE status = 'pending' \
                OR (status = 'failed' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)) \
             ORDER BY id",
        )?;
        let ids = stmt.query_map([now], |r| r.get::<_, i64>(0))?;
        ids.collect()
    } else {
        let mut stmt = conn.prepare_cached("SELECT id FROM herald_outbox WHERE status <> 'sent' ORDER BY id")?;
        let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        ids.collect()
    }
}

/// The row with this id, unless it has been sent meanwhile.
pub(crate) fn fetch_unsent(conn: &Connection, id: i64) -> Result<Option<OutboxRow>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, rule, event_uuid, to_addrs, cc, bcc, subject, body, attempts, created \
         FROM herald_outbox WHERE id = ?1 AND status <> 'sent'",
    )?;
    stmt.query_row([id], |r| {
        Ok(OutboxRow {
            id: r.get(0)?,
            rule: text(r.get(1)?),
            event_uuid: text(r.get(2)?),
            to_addrs: text(r.get(3)?),
            cc: text(r.get(4)?),
            bcc: text(r.get(5)?),
            subject: text(r.get(6)?),
            body: text(r.get(7)?),
            attempts: int(r.get(8)?),
            created: text(r.get(9)?),
        })
    })
    .optional()
}

/// Records the server's acceptance. Autocommit: once this returns, a crash
/// cannot make the row eligible again.
pub(crate) fn mark_sent(conn: &Connection, id: i64, now: &str) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(
        "UPDATE herald_outbox \
         SET status = 'sent', sent_at = ?1, attempts = attempts + 1, last_error = NULL, \
             next_attempt_at = NULL \
         WHERE id = ?2 AND status <> 'sent'",
    )?
    .execute(params![now, id])
}

/// Records a failed attempt and when to try again.
pub(crate) fn mark_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    next_attempt_at: &str,
) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(
        "UPDATE herald_outbox \
         SET status = 'failed', attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2 \
         WHERE id = ?3 AND status <> 'sent'",
    )?
    .execute(params![error, next_attempt_at, id])
}

/// Row counts by status.
pub fn counts(conn: &Connection) -> Result<OutboxCounts, rusqlite::Error> {
    let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM herald_outbox GROUP BY status")?;
    let mut rows = stmt.query([])?;
    let mut c = OutboxCounts::default();
    while let Some(r) = rows.next()? {
        let n = r.get::<_, i64>(1)?.max(0) as u64;
        match text(r.get(0)?).as_str() {
            "pending" => c.pending += n,
            "failed" => c.failed += n,
            "sent" => c.sent += n,
            _ => {}
        }
    }
    Ok(c)
}

/// Every column of a row, for listing.
struct ListRow {
    id: i64,
    rule: String,
    event_uuid: String,
    to_addrs: String,
    cc: String,
    bcc: String,
    subject: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    created: String,
    sent_at: Option<String>,
    next_attempt_at: Option<String>,
}

fn for_each_row(conn: &Connection, mut f: impl FnMut(ListRow) -> Result<(), MailError>) -> Result<(), MailError> {
    let mut stmt = conn.prepare(
        "SELECT id, rule, event_uuid, to_addrs, cc, bcc, subject, status, attempts, last_error, \
                created, sent_at, next_attempt_at \
         FROM herald_outbox ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(ListRow {
            id: r.get(0)?,
            rule: text(r.get(1)?),
            event_uuid: text(r.get(2)?),
            to_addrs: text(r.get(3)?),
            cc: text(r.get(4)?),
            bcc: text(r.get(5)?),
            subject: text(r.get(6)?),
            status: text(r.get(7)?),
            attempts: int(r.get(8)?),
            last_error: opt_text(r.get(9)?),
            created: text(r.get(10)?),
            sent_at: opt_text(r.get(11)?),
            next_attempt_at: opt_text(r.get(12)?),
        })?;
    }
    Ok(())
}

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
pub fn list(conn: &Connection, out: &mut impl Write) -> Result<(), MailError> {
    let mut lines: Vec<[String; 6]> = Vec::new();
    for_each_row(conn, |r| {
        lines.push([
            r.id.to_string(),
            cell(&r.status, 8),
            r.attempts.to_string(),
            cell(&recipients_summary(&r.to_addrs), 36),
            cell(&r.subject, 40),
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
/// something that is not a JSON array). The body is left out.
pub fn list_json(conn: &Connection, out: &mut impl Write) -> Result<(), MailError> {
    for_each_row(conn, |r| {
        let obj = serde_json::json!({
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
        });
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
