//! Checks the interpreter runs *before* it writes an outbox row, so that a bad
//! address or header is a rule error (`R0003`, `R0004`) and never a malformed
//! mail. Delivery runs the same checks again on every row it reads, because a
//! row may have been written by hand.
//!
//! # Address policy
//! Recipients (`to`, `cc`, `bcc`) must be **bare addresses**, `local@domain`,
//! as lettre's [`Address`] parses them, and additionally:
//! - no display names or angle brackets (`Name <a@b>`, `<a@b>`): the value
//!   often comes from event data, and a display name is where spoofing tricks
//!   hide (`"ceo@corp.example" <x@evil.example>`);
//! - no quoted local parts (`"a b"@x`) and no address literals (`a@[10.0.0.1]`):
//!   legal in RFC 5321 but rare, and a favourite of filter bypasses;
//! - no whitespace or control characters anywhere, at most 254 bytes, local
//!   part at most 64 bytes.
//!
//! Internationalised addresses (`ü@bü.example`) are accepted; delivering them
//! needs a server that offers SMTPUTF8, otherwise the row fails with that reason.
//!
//! The sender (`--mail-from`) is operator configuration, so it may carry a
//! display name: `Herald <herald@example.com>`; its address obeys the same policy.

use lettre::message::Mailbox;
use lettre::Address;

/// Maximum length of an address (RFC 5321 path limit minus the brackets).
const MAX_ADDRESS: usize = 254;
const MAX_LOCAL: usize = 64;

/// Checks that `addr` is a bare email address under the policy above.
/// The error is a short, lower-case message for `R0003`.
pub fn validate_address(addr: &str) -> Result<(), String> {
    parse_address(addr).map(|_| ())
}

/// [`validate_address`], returning lettre's parsed [`Address`].
pub fn parse_address(addr: &str) -> Result<Address, String> {
    let shown = show(addr);
    if addr.is_empty() {
        return Err("empty email address".to_string());
    }
    if let Some(c) = addr.chars().find(|c| c.is_control()) {
        let what = if c == '\r' || c == '\n' {
            "a line break".to_string()
        } else {
            format!("control character U+{:04X}", c as u32)
        };
        return Err(format!("invalid email address `{shown}`: contains {what}"));
    }
    if addr.contains(['<', '>']) {
        return Err(format!(
            "invalid email address `{shown}`: only a bare address such as `user@example.com` \
             is allowed, no display name or angle brackets"
        ));
    }
    if addr.chars().any(char::is_whitespace) {
        return Err(format!("invalid email address `{shown}`: contains whitespace"));
    }
    if addr.contains('"') {
        return Err(format!("invalid email address `{shown}`: quoted local parts are not allowed"));
    }
    if addr.len() > MAX_ADDRESS {
        return Err(format!("invalid email address `{shown}`: longer than {MAX_ADDRESS} bytes"));
    }
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return Err(format!("invalid email address `{shown}`: missing `@`"));
    };
    if local.is_empty() {
        return Err(format!("invalid email address `{shown}`: missing the part before `@`"));
    }
    if domain.is_empty() {
        return Err(format!("invalid email address `{shown}`: missing the domain"));
    }
    if local.len() > MAX_LOCAL {
        return Err(format!("invalid email address `{shown}`: the part before `@` is longer than {MAX_LOCAL} bytes"));
    }
    if domain.starts_with('[') {
        return Err(format!("invalid email address `{shown}`: address literals such as `[10.0.0.1]` are not allowed"));
    }
    addr.parse::<Address>().map_err(|e| {
        let why = match e {
            lettre::address::AddressError::InvalidUser => "invalid part before `@`",
            lettre::address::AddressError::InvalidDomain => "invalid domain",
            _ => "not an email address",
        };
        format!("invalid email address `{shown}`: {why}")
    })
}

/// Checks a header value written from rule data (the subject): no CR, LF,
/// NUL or other control character except TAB. `name` is the header's name,
/// used in the message (`R0004`).
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    match value.chars().find(|&c| c.is_control() && c != '\t') {
        None => Ok(()),
        Some('\r' | '\n') => Err(format!("line break in email header `{name}`")),
        Some(c) => Err(format!("control character U+{:04X} in email header `{name}`", c as u32)),
    }
}

/// Parses the sender (`--mail-from`): `user@example.com` or
/// `Display Name <user@example.com>`.
pub fn parse_mailbox(from: &str) -> Result<Mailbox, String> {
    let trimmed = from.trim();
    if trimmed.is_empty() {
        return Err("empty sender address".to_string());
    }
    if trimmed.chars().any(char::is_control) {
        return Err(format!("invalid sender `{}`: contains a control character or line break", show(from)));
    }
    let mailbox: Mailbox = trimmed.parse().map_err(|_| {
        format!("invalid sender `{}`: expected `user@example.com` or `Name <user@example.com>`", show(from))
    })?;
    // The address part obeys the recipient policy too.
    parse_address(mailbox.email.as_ref()).map_err(|e| format!("invalid sender: {e}"))?;
    Ok(mailbox)
}

/// The value for a message, escaped so control characters stay visible and
/// a long value does not flood the error table.
fn show(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= 80 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses() {
        for a in [
            "alice@example.com",
            "a.b+tag@sub.example.co.uk",
            "x@localhost",
            "o'brien@example.ie",
            "ü@bü.example",
            "first_last-1@example-2.com",
        ] {
            assert_eq!(validate_address(a), Ok(()), "{a}");
        }
    }

    #[test]
    fn bad_addresses() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("alice", "missing `@`"),
            ("@example.com", "missing the part before `@`"),
            ("alice@", "missing the domain"),
            ("alice@example.com\r\nBcc: eve@evil.example", "line break"),
            ("alice@example.com\n", "line break"),
            ("al\0ice@example.com", "U+0000"),
            (" alice@example.com", "whitespace"),
            ("alice @example.com", "whitespace"),
            ("Alice <alice@example.com>", "no display name"),
            ("<alice@example.com>", "no display name"),
            ("\"ceo@corp.example\"<x@evil.example>", "no display name"),
            ("\"a b\"@example.com", "whitespace"),
            ("\"ab\"@example.com", "quoted"),
            ("a@[10.0.0.1]", "address literals"),
            ("a@b..com", "invalid domain"),
            ("a@-b.com", "invalid domain"),
            ("a.@b.com", "invalid part before `@`"),
            ("a,b@c.com", "invalid part before `@`"),
            ("alice@example.com,bob@example.com", "invalid"),
        ];
        for &(a, want) in cases {
            let e = validate_address(a).expect_err(a);
            assert!(e.contains(want), "{a:?}: {e:?} does not contain {want:?}");
            assert!(!e.contains('\r') && !e.contains('\n'), "{e:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(validate_address(&long).unwrap_err().contains("longer than 64"));
        let long = format!("a@{}.com", "b".repeat(260));
        assert!(validate_address(&long).unwrap_err().contains("longer than 254"));
    }

    #[test]
    fn headers() {
        assert_eq!(check_header("Subject", "hello\tworld — ünïcode"), Ok(()));
        assert_eq!(check_header("Subject", ""), Ok(()));
        for (v, want) in [
            ("a\r\nBcc: eve@evil.example", "line break in email header `Subject`"),
            ("a\nb", "line break"),
            ("a\rb", "line break"),
            ("a\0b", "U+0000"),
            ("a\u{1b}[31m", "U+001B"),
        ] {
            let e = check_header("Subject", v).expect_err(v);
            assert!(e.contains(want), "{v:?}: {e}");
        }
    }

    #[test]
    fn mailboxes() {
        let m = parse_mailbox("herald@example.com").unwrap();
        assert_eq!(m.to_string(), "herald@example.com");
        let m = parse_mailbox("  Herald Alerts <herald@example.com> ").unwrap();
        assert_eq!(m.name.as_deref(), Some("Herald Alerts"));
        assert_eq!(m.email.to_string(), "herald@example.com");
        for bad in ["", "herald", "Herald <herald@example.com>\r\nBcc: x@y.z", "a@b.com x", "Herald <a@[10.0.0.1]>"] {
            assert!(parse_mailbox(bad).is_err(), "{bad:?}");
        }
    }
}
