//! `--smtp URL`: where and how to deliver.
//!
//! ```text
//! smtp://[user:pass@]host[:port][?tls=required|opportunistic|none][&timeout=SECS][&deadline=SECS][&ca=PATH]
//! smtps://[user:pass@]host[:port][?timeout=SECS][&deadline=SECS][&ca=PATH]
//! ```
//!
//! - `smtp://` defaults to port 25, `smtps://` (TLS from the first byte) to 465.
//! - TLS of `smtp://` defaults to `none` when the host is a loopback address
//!   (`127.0.0.0/8`, `::1`, `localhost`) and to `required` (STARTTLS, refusing
//!   to continue in clear text) otherwise.
//! - `tls=none` or `tls=opportunistic` to another host is allowed (internal
//!   relays), but [`SmtpConfig::warning`] then says why that is risky.
//! - User and password are percent-decoded (`user%40example.com`).
//! - `timeout` (seconds, 1..=600, default 10) bounds the TCP connect and every
//!   read and write.
//! - `deadline` (seconds, 1..=3600, default 60) bounds each delivery as a
//!   whole: connecting (with greeting, TLS and login) must finish within it,
//!   and so must each message. A server that answers a byte at a time within
//!   `timeout` still cannot hold a delivery longer.
//! - `ca` names a PEM file of extra root certificates to trust (an internal
//!   relay with a private CA), in addition to the built-in web roots; it needs
//!   TLS (`tls=required`, `tls=opportunistic` or `smtps://`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// The connect, read and write timeout when the URL does not name one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The time one delivery may take in all when the URL does not name one.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Clear text; STARTTLS is not attempted.
    None,
    /// STARTTLS when the server offers it, clear text otherwise.
    Opportunistic,
    /// STARTTLS or fail: nothing (no credentials, no mail) goes out in clear text.
    Required,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::Opportunistic => "opportunistic",
            TlsMode::Required => "required",
            TlsMode::Implicit => "implicit",
        }
    }
}

/// A parsed `--smtp` URL. `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Host name or IP address, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// User name and password, percent-decoded.
    pub credentials: Option<(String, String)>,
    pub timeout: Duration,
    /// The whole time one delivery may take (see the module docs).
    pub deadline: Duration,
    /// Extra trusted root certificates (PEM), from `ca=PATH`.
    pub ca_file: Option<PathBuf>,
    warning: Option<String>,
}

impl SmtpConfig {
    /// Parses an `smtp://` or `smtps://` URL (see the module docs).
    ///
    /// Error messages never repeat the URL, so they cannot leak a password.
    pub fn parse(url: &str) -> Result<SmtpConfig, String> {
        let url = url.trim();
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid SMTP URL: {e}"))?;
        let implicit = match parsed.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(format!("unsupported URL scheme `{other}` (expected `smtp://` or `smtps://`)")),
        };
        if parsed.cannot_be_a_base() || !url[parsed.scheme().len()..].starts_with("://") {
            return Err("invalid SMTP URL: expected `smtp://host[:port]`".to_string());
        }

        let host = match parsed.host() {
            None => return Err("invalid SMTP URL: missing host".to_string()),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(url::Host::Domain(d)) => check_host(d)?,
        };

        let port = match parsed.port() {
            Some(0) => return Err("invalid SMTP URL: port 0".to_string()),
            Some(p) => p,
            None if implicit => 465,
            None => 25,
        };

        if !matches!(parsed.path(), "" | "/") {
            return Err(format!("invalid SMTP URL: unexpected path `{}`", parsed.path()));
        }
        if parsed.fragment().is_some() {
            return Err("invalid SMTP URL: unexpected `#` fragment".to_string());
        }

        let mut tls_param: Option<TlsMode> = None;
        let mut timeout_param: Option<Duration> = None;
        let mut deadline_param: Option<Duration> = None;
        let mut ca_param: Option<PathBuf> = None;
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "tls" => {
                    if tls_param.is_some() {
                        return Err("invalid SMTP URL: `tls` given twice".to_string());
                    }
                    if implicit {
                        return Err("invalid SMTP URL: `tls` does not apply to `smtps://`, which always \
                             uses TLS from the first byte"
                            .to_string());
                    }
                    tls_param = Some(match value.to_ascii_lowercase().as_str() {
                        "required" => TlsMode::Required,
                        "opportunistic" => TlsMode::Opportunistic,
                        "none" => TlsMode::None,
                        _ => {
                            return Err(format!(
                                "invalid SMTP URL: unknown `tls={value}` (expected `required`, \
                                 `opportunistic` or `none`)"
                            ))
                        }
                    });
                }
                "timeout" => {
                    if timeout_param.is_some() {
                        return Err("invalid SMTP URL: `timeout` given twice".to_string());
                    }
                    let secs = value.parse::<u64>().ok().filter(|s| (1..=600).contains(s)).ok_or_else(|| {
                        format!(
                            "invalid SMTP URL: `timeout={value}` is not a number of \
                                 seconds from 1 to 600"
                        )
                    })?;
                    timeout_param = Some(Duration::from_secs(secs));
                }
                "deadline" => {
                    if deadline_param.is_some() {
                        return Err("invalid SMTP URL: `deadline` given twice".to_string());
                    }
                    let secs = value.parse::<u64>().ok().filter(|s| (1..=3600).contains(s)).ok_or_else(|| {
                        format!("invalid SMTP URL: `deadline={value}` is not a number of seconds from 1 to 3600")
                    })?;
                    deadline_param = Some(Duration::from_secs(secs));
                }
                "ca" => {
                    if ca_param.is_some() {
                        return Err("invalid SMTP URL: `ca` given twice".to_string());
                    }
                    if value.is_empty() {
                        return Err("invalid SMTP URL: `ca` needs a file path".to_string());
                    }
                    ca_param = Some(PathBuf::from(value.as_ref()));
                }
                other => {
                    return Err(format!(
                        "invalid SMTP URL: unknown parameter `{other}` (expected `tls`, \
                         `timeout`, `deadline` or `ca`)"
                    ))
                }
            }
        }

        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            ("", Some(_)) => return Err("invalid SMTP URL: password without a user name".into()),
            (_, None) => return Err("invalid SMTP URL: user name without a password".into()),
            (user, Some(pass)) => Some((
                percent_decode(user).ok_or("invalid SMTP URL: bad percent-encoding in user")?,
                percent_decode(pass).ok_or("invalid SMTP URL: bad percent-encoding in password")?,
            )),
        };

        let loopback = is_loopback(&host);
        let tls = if implicit {
            TlsMode::Implicit
        } else {
            tls_param.unwrap_or(if loopback { TlsMode::None } else { TlsMode::Required })
        };

        if ca_param.is_some() && tls == TlsMode::None {
            return Err("invalid SMTP URL: `ca` needs TLS (`tls=required`, \
                        `tls=opportunistic` or `smtps://`)"
                .to_string());
        }

        let warning = if loopback {
            None
        } else {
            let creds = if credentials.is_some() { ", credentials included" } else { "" };
            match tls {
                TlsMode::None => Some(format!(
                    "mail to {host}:{port} is sent unencrypted (tls=none{creds}); use it only \
                     for a trusted internal relay"
                )),
                TlsMode::Opportunistic => Some(format!(
                    "mail to {host}:{port} falls back to clear text when STARTTLS is not \
                     offered (tls=opportunistic{creds}); an attacker on the path can force that"
                )),
                TlsMode::Required | TlsMode::Implicit => None,
            }
        };

        Ok(SmtpConfig {
            host,
            port,
            tls,
            credentials,
            timeout: timeout_param.unwrap_or(DEFAULT_TIMEOUT),
            deadline: deadline_param.unwrap_or(DEFAULT_DEADLINE),
            ca_file: ca_param,
            warning,
        })
    }

    /// A warning for the operator when the configuration sends mail (or
    /// credentials) to another machine without guaranteed encryption.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Whether the host is this machine (loopback address or `localhost`).
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.host)
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for SmtpConfig {
    /// The URL again, the password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls == TlsMode::Implicit { "smtps" } else { "smtp" };
        write!(f, "{scheme}://")?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{}:***@", percent_encode_userinfo(user))?;
        }
        write!(f, "{}", self.endpoint())?;
        let mut sep = '?';
        if self.tls != TlsMode::Implicit {
            write!(f, "{sep}tls={}", self.tls.as_str())?;
            sep = '&';
        }
        if self.timeout != DEFAULT_TIMEOUT {
            write!(f, "{sep}timeout={}", self.timeout.as_secs())?;
            sep = '&';
        }
        if self.deadline != DEFAULT_DEADLINE {
            write!(f, "{sep}deadline={}", self.deadline.as_secs())?;
            sep = '&';
        }
        if let Some(ca) = &self.ca_file {
            write!(f, "{sep}ca={}", ca.display())?;
        }
        Ok(())
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("password", &self.credentials.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("ca_file", &self.ca_file)
            .field("warning", &self.warning)
            .finish()
    }
}

/// A host name must be a DNS name (letters, digits, `-`, `_`, dots) or an
/// IPv4 address; lower-cased.
fn check_host(d: &str) -> Result<String, String> {
    if d.is_empty() {
        return Err("invalid SMTP URL: missing host".to_string());
    }
    let ok = d.len() <= 253
        && d.split('.').enumerate().all(|(i, label)| {
            // A single trailing dot (fully-qualified name) is fine.
            (label.is_empty() && i > 0 && d.ends_with('.') && i == d.split('.').count() - 1)
                || (!label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        });
    if !ok {
        return Err(format!("invalid SMTP URL: bad host name `{d}`"));
    }
    Ok(d.to_ascii_lowercase())
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback(),
        Ok(IpAddr::V6(a)) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m: Ipv4Addr| m.is_loopback()),
        Err(_) => false,
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> SmtpConfig {
        SmtpConfig::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn err(url: &str) -> String {
        match SmtpConfig::parse(url) {
            Ok(c) => panic!("{url}: expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn table() {
        /// (url, host, port, tls, credentials, warns)
        type Case = (&'static str, &'static str, u16, TlsMode, Option<(&'static str, &'static str)>, bool);
        let cases: &[Case] = &[
            ("smtp://127.0.0.1:2525", "127.0.0.1", 2525, TlsMode::None, None, false),
            ("smtp://127.1.2.3", "127.1.2.3", 25, TlsMode::None, None, false),
            ("smtp://localhost", "localhost", 25, TlsMode::None, None, false),
            ("smtp://LocalHost:26/", "localhost", 26, TlsMode::None, None, false),
            ("smtp://[::1]:2525", "::1", 2525, TlsMode::None, None, false),
            ("smtp://mail.example.com", "mail.example.com", 25, TlsMode::Required, None, false),
            ("smtp://Mail.Example.COM.:587", "mail.example.com.", 587, TlsMode::Required, None, false),
            ("smtp://10.0.0.5", "10.0.0.5", 25, TlsMode::Required, None, false),
            ("smtp://[2001:db8::1]:587", "2001:db8::1", 587, TlsMode::Required, None, false),
            ("smtp://user:pass@host:587?tls=required", "host", 587, TlsMode::Required, Some(("user", "pass")), false),
            ("smtp://relay.internal?tls=none", "relay.internal", 25, TlsMode::None, None, true),
            ("smtp://relay.internal?tls=NONE", "relay.internal", 25, TlsMode::None, None, true),
            ("smtp://relay:2525?tls=opportunistic", "relay", 2525, TlsMode::Opportunistic, None, true),
            ("smtp://127.0.0.1?tls=required", "127.0.0.1", 25, TlsMode::Required, None, false),
            ("smtp://localhost?tls=opportunistic", "localhost", 25, TlsMode::Opportunistic, None, false),
            ("smtps://host", "host", 465, TlsMode::Implicit, None, false),
            ("smtps://host:4650", "host", 4650, TlsMode::Implicit, None, false),
            ("smtps://127.0.0.1", "127.0.0.1", 465, TlsMode::Implicit, None, false),
            (
                "smtps://user%40example.com:pa$$word%3F%22!@smtp.example.com",
                "smtp.example.com",
                465,
                TlsMode::Implicit,
                Some(("user@example.com", "pa$$word?\"!")),
                false,
            ),
            ("  smtp://localhost:25  ", "localhost", 25, TlsMode::None, None, false),
        ];
        for &(url, host, port, tls, creds, warns) in cases {
            let c = ok(url);
            assert_eq!(c.host, host, "{url}");
            assert_eq!(c.port, port, "{url}");
            assert_eq!(c.tls, tls, "{url}");
            assert_eq!(c.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str())), creds, "{url}");
            assert_eq!(c.warning().is_some(), warns, "{url}: {:?}", c.warning());
            assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        }
    }

    #[test]
    fn warnings_mention_credentials() {
        let w = ok("smtp://u:p@relay?tls=none").warning().unwrap().to_string();
        assert!(w.contains("unencrypted") && w.contains("credentials"), "{w}");
        let w = ok("smtp://relay?tls=opportunistic").warning().unwrap().to_string();
        assert!(w.contains("STARTTLS"), "{w}");
    }

    #[test]
    fn timeout_param() {
        assert_eq!(ok("smtp://localhost?timeout=3").timeout, Duration::from_secs(3));
        assert_eq!(ok("smtps://h?timeout=600").timeout, Duration::from_secs(600));
        assert!(err("smtp://localhost?timeout=0").contains("timeout"));
        assert!(err("smtp://localhost?timeout=x").contains("timeout"));
        assert!(err("smtp://localhost?timeout=1&timeout=2").contains("twice"));
        assert_eq!(ok("smtp://localhost").deadline, DEFAULT_DEADLINE);
        assert_eq!(ok("smtp://localhost?deadline=5").deadline, Duration::from_secs(5));
        assert!(err("smtp://localhost?deadline=0").contains("`deadline=0`"));
        assert!(err("smtp://localhost?deadline=3601").contains("deadline"));
        assert!(err("smtp://localhost?deadline=1&deadline=2").contains("twice"));
        assert_eq!(ok("smtp://localhost?deadline=7").to_string(), "smtp://localhost:25?tls=none&deadline=7");
    }

    #[test]
    fn ca_param() {
        let c = ok("smtp://relay.internal:587?ca=/etc/herald/ca%20root.pem");
        assert_eq!(c.ca_file.as_deref(), Some(std::path::Path::new("/etc/herald/ca root.pem")));
        assert_eq!(c.tls, TlsMode::Required);
        assert_eq!(c.to_string(), "smtp://relay.internal:587?tls=required&ca=/etc/herald/ca root.pem");
        assert!(ok("smtps://h?ca=x.pem&timeout=5").ca_file.is_some());
        assert!(ok("smtp://127.0.0.1?tls=required&ca=x.pem").ca_file.is_some());
        assert!(err("smtp://127.0.0.1?ca=x.pem").contains("`ca` needs TLS"));
        assert!(err("smtp://h?tls=none&ca=x.pem").contains("`ca` needs TLS"));
        assert!(err("smtp://h?ca=").contains("file path"));
        assert!(err("smtp://h?ca=a&ca=b").contains("twice"));
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("http://host", "unsupported URL scheme `http`"),
            ("smtpx://host", "unsupported URL scheme"),
            ("smtp:host", "expected `smtp://host[:port]`"),
            ("smtp://", "missing host"),
            ("smtp://:25", "invalid SMTP URL"),
            ("smtp://host:0", "port 0"),
            ("smtp://host:99999", "invalid port"),
            ("smtp://host:abc", "invalid port"),
            ("smtp://host/path", "unexpected path `/path`"),
            ("smtp://host#frag", "fragment"),
            ("smtp://host?tls=maybe", "unknown `tls=maybe`"),
            ("smtp://host?tls=none&tls=required", "`tls` given twice"),
            ("smtp://host?foo=1", "unknown parameter `foo`"),
            ("smtps://host?tls=required", "does not apply to `smtps://`"),
            ("smtp://user@host", "user name without a password"),
            ("smtp://:pass@host", "password without a user name"),
            ("smtp://u%zz:p@host", "percent-encoding in user"),
            ("smtp://u:p%ff@host", "percent-encoding in password"),
            ("smtp://ho%20st", "bad host name"),
            ("smtp://ho$t", "bad host name"),
            ("not a url", "invalid SMTP URL"),
            ("", "invalid SMTP URL"),
        ];
        for &(url, want) in cases {
            let e = err(url);
            assert!(e.contains(want), "{url}: {e:?} does not contain {want:?}");
        }
    }

    #[test]
    fn errors_and_debug_hide_the_password() {
        for url in ["smtp://u:s3cret@host:0", "smtp://u:s3cret@host?x=1", "smtp://u:s3cret@h/p"] {
            assert!(!err(url).contains("s3cret"), "{url}");
        }
        let c = ok("smtp://user:s3cret@host:587");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!c.to_string().contains("s3cret"));
        assert_eq!(c.to_string(), "smtp://user:***@host:587?tls=required");
        assert_eq!(ok("smtps://[::1]").to_string(), "smtps://[::1]:465");
        assert_eq!(ok("smtp://a%40b:p@localhost").to_string(), "smtp://a%40b:***@localhost:25?tls=none");
    }

    #[test]
    fn loopback() {
        for h in ["127.0.0.1", "127.255.0.9", "localhost", "LOCALHOST.", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["128.0.0.1", "localhost.example.com", "example.com", "::2", "0.0.0.0", "10.0.0.1"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
