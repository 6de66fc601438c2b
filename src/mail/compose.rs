//! An outbox row → a lettre message and its SMTP envelope.

use std::time::{Duration, SystemTime};

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::{Address, Message};

use super::validate::{check_header, parse_address};
use crate::store::OutboxRow;

/// A message ready to send.
pub(crate) struct Composed {
    pub envelope: Envelope,
    pub message: Message,
}

/// `<herald.{id}.{first 8 alphanumerics of the event uuid}@{domain of from}>`:
/// the same for every attempt of a row, so a receiver (or a human) can spot
/// the duplicate left by a crash between the server's acceptance and the
/// store's `sent` mark.
pub(crate) fn message_id(id: i64, event_uuid: &str, from: &Mailbox) -> String {
    let mut event: String =
        event_uuid.chars().filter(char::is_ascii_alphanumeric).take(8).collect::<String>().to_ascii_lowercase();
    if event.is_empty() {
        event.push('0');
    }
    format!("<herald.{id}.{event}@{}>", from.email.domain())
}

fn recipients(column: &str, raw: &str) -> Result<Vec<Address>, String> {
    let list: Vec<String> =
        serde_json::from_str(raw).map_err(|_| format!("`{column}` is not a JSON array of addresses"))?;
    list.iter().map(|a| parse_address(a).map_err(|e| format!("`{column}`: {e}"))).collect()
}

/// Builds the message of a row. The error is the reason the row cannot be
/// sent (recorded as its `last_error`).
pub(crate) fn compose(row: &OutboxRow, from: &Mailbox) -> Result<Composed, String> {
    let to = recipients("to_addrs", &row.to_addrs)?;
    let cc = recipients("cc", &row.cc)?;
    let bcc = recipients("bcc", &row.bcc)?;
    check_header("Subject", &row.subject)?;

    // The envelope: every recipient once, Bcc included; Bcc never appears
    // in a header.
    let mut rcpt: Vec<Address> = Vec::with_capacity(to.len() + cc.len() + bcc.len());
    for a in to.iter().chain(&cc).chain(&bcc) {
        if !rcpt.contains(a) {
            rcpt.push(a.clone());
        }
    }
    if rcpt.is_empty() {
        return Err("no recipients".to_string());
    }
    let envelope =
        Envelope::new(Some(from.email.clone()), rcpt).map_err(|e| format!("cannot build the envelope: {e}"))?;

    let date = value_time(&row.created).unwrap_or_else(SystemTime::now);
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(row.subject.clone())
        .message_id(Some(message_id(row.id, &row.event_uuid, from)))
        .date(date)
        .header(ContentType::TEXT_PLAIN)
        // RFC 3834: tells auto-responders not to answer.
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".to_string()));
    if check_header("X-Herald-Rule", &row.rule).is_ok() && !row.rule.is_empty() {
        builder =
            builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Herald-Rule"), row.rule.clone()));
    }
    for a in to {
        builder = builder.to(Mailbox::new(None, a));
    }
    for a in cc {
        builder = builder.cc(Mailbox::new(None, a));
    }
    let message = builder
        .envelope(envelope.clone())
        .body(crlf_lines(&row.body))
        .map_err(|e| format!("cannot build the message: {e}"))?;
    Ok(Composed { envelope, message })
}

/// Every line end as CRLF: a lone CR or a lone LF becomes CRLF. lettre
/// sends a 7-bit body as it is, and a bare CR or LF in it is how SMTP
/// smuggling starts (`\r.\r\n` ends the message early for a server that
/// takes a lone CR as a line end, and whatever follows is read as a new
/// command or a second message). After this, the only `.` lines are those
/// lettre's dot-stuffing escapes.
pub(crate) fn crlf_lines(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + body.len() / 32);
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

/// The row's `created` time as the message's `Date`.
fn value_time(created: &str) -> Option<SystemTime> {
    let nanos = crate::value::parse_timestamp(created)?;
    let nanos = u64::try_from(nanos).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> OutboxRow {
        OutboxRow {
            id: 7,
            rule: "welcome".into(),
            event_uuid: "305332a4-50ac-475e-b97c-e2cd167238a6".into(),
            to_addrs: r#"["alice@example.com","bob@example.com"]"#.into(),
            cc: r#"["carol@example.com"]"#.into(),
            bcc: r#"["audit@example.com","alice@example.com"]"#.into(),
            subject: "Hello".into(),
            body: "line 1\nline 2\n".into(),
            attempts: 0,
            created: "2026-04-14T08:02:07.556423Z".into(),
            kind: "email".into(),
            url: String::new(),
            method: String::new(),
            headers: String::new(),
        }
    }

    fn from() -> Mailbox {
        "Herald <herald@alerts.example.com>".parse().unwrap()
    }

    #[test]
    fn composes_headers_and_envelope() {
        let c = compose(&row(), &from()).unwrap();
        let rcpt: Vec<String> = c.envelope.to().iter().map(|a| a.to_string()).collect();
        assert_eq!(rcpt, ["alice@example.com", "bob@example.com", "carol@example.com", "audit@example.com"]);
        assert_eq!(c.envelope.from().unwrap().to_string(), "herald@alerts.example.com");
        let text = String::from_utf8(c.message.formatted()).unwrap();
        assert!(text.contains("Message-ID: <herald.7.305332a4@alerts.example.com>\r\n"), "{text}");
        assert!(text.contains("Date: Tue, 14 Apr 2026 08:02:07 +0000\r\n"), "{text}");
        assert!(text.contains("To: alice@example.com, bob@example.com\r\n"), "{text}");
        assert!(text.contains("Cc: carol@example.com\r\n"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-generated\r\n"), "{text}");
        assert!(text.contains("X-Herald-Rule: welcome\r\n"), "{text}");
        assert!(!text.to_ascii_lowercase().contains("bcc"), "{text}");
        assert!(!text.contains("audit@"), "{text}");
        assert!(text.ends_with("line 1\r\nline 2\r\n"), "{text:?}");
    }

    #[test]
    fn line_ends_become_crlf() {
        assert_eq!(crlf_lines("a\rb\nc\r\nd\r\re"), "a\r\nb\r\nc\r\nd\r\n\r\ne");
        assert_eq!(crlf_lines("x\r.\r\ny"), "x\r\n.\r\ny");
        assert_eq!(crlf_lines("\n\r"), "\r\n\r\n");
        assert_eq!(crlf_lines("é\rü"), "é\r\nü");
        let mut r = row();
        r.body = "one\r.\r\nMAIL FROM:<x@y.z>\rtwo\n.\nthree".into();
        let text = String::from_utf8(compose(&r, &from()).unwrap().message.formatted()).unwrap();
        let bytes = text.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\r' {
                assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}: {text:?}");
            }
            if b == b'\n' {
                assert_eq!(bytes[i - 1], b'\r', "bare LF at {i}: {text:?}");
            }
        }
    }

    #[test]
    fn reasons() {
        let f = from();
        type Case = (fn(&mut OutboxRow), &'static str);
        let cases: &[Case] = &[
            (|r| r.to_addrs = "not json".into(), "`to_addrs` is not a JSON array"),
            (|r| r.cc = r#"{"a":1}"#.into(), "`cc` is not a JSON array"),
            (|r| r.bcc = "[1]".into(), "`bcc` is not a JSON array"),
            (|r| r.to_addrs = r#"["nope"]"#.into(), "`to_addrs`: invalid email address `nope`"),
            (|r| r.cc = r#"["A <a@b.c>"]"#.into(), "`cc`: invalid email address"),
            (|r| r.subject = "a\r\nBcc: x@y.z".into(), "line break in email header `Subject`"),
            (
                |r| {
                    r.to_addrs = "[]".into();
                    r.cc = "[]".into();
                    r.bcc = "[]".into();
                },
                "no recipients",
            ),
        ];
        for (edit, want) in cases {
            let mut r = row();
            edit(&mut r);
            let e = compose(&r, &f).err().expect(want);
            assert!(e.contains(want), "{e:?} does not contain {want:?}");
        }
    }

    #[test]
    fn bcc_only_and_odd_rows() {
        let mut r = row();
        r.to_addrs = "[]".into();
        r.cc = "[]".into();
        r.rule = "bad\nrule".into();
        r.event_uuid = "--".into();
        r.created = "yesterday".into();
        let c = compose(&r, &from()).unwrap();
        let text = String::from_utf8(c.message.formatted()).unwrap();
        assert!(!text.contains("\r\nTo:") && !text.contains("X-Herald-Rule"), "{text}");
        assert!(text.contains("<herald.7.0@alerts.example.com>"), "{text}");
        assert_eq!(c.envelope.to().len(), 2);
    }
}
