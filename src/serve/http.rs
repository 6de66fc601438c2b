//! The HTTP front: routing, authentication, body limits, splitting a body
//! into events, validation and the durable intake of a request.

use super::queue::Item;
use super::{reload, Shared};
use crate::decode::{DecodePlan, Decoder};
use crate::engine::hash::{hex64, Xxh64};
use crate::store::intake::Offer;
use crate::store::DeadLetter;
use crate::value::now_nanos;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tiny_http::{Header, Method, Request, Response};

/// How much of a malformed event its dead letter keeps (as `run` does).
const RAW_PREFIX: usize = 64 << 10;

/// The `source` of dead letters recorded at intake; their `line` is the
/// event's position in its request (1-based).
pub const INTAKE_SOURCE: &str = "http";

/// One handler thread's state: a decoder for the current policy's plan.
pub(super) struct Handler {
    shared: Arc<Shared>,
    decoder: Option<(Arc<DecodePlan>, Decoder)>,
}

fn header(name: &str, value: &str) -> Header {
    // Both are ASCII constants or digits here.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("an ASCII header")
}

fn json(status: u16, body: serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut text = body.to_string();
    text.push('\n');
    Response::from_string(text).with_status_code(status).with_header(header("Content-Type", "application/json"))
}

fn error(status: u16, message: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    json(status, serde_json::json!({ "error": message }))
}

/// Equal in time independent of where the first difference is: the token
/// is compared over its whole length whatever the guess.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

impl Handler {
    pub fn new(shared: Arc<Shared>) -> Handler {
        Handler { shared, decoder: None }
    }

    pub fn handle(&mut self, mut req: Request) {
        let path = req.url().split('?').next().unwrap_or("").to_string();
        let method = req.method().clone();
        let response = match (&method, path.as_str()) {
            (Method::Get, "/healthz") => {
                if self.shared.shutting_down.load(Ordering::Relaxed) {
                    error(503, "shutting down")
                } else {
                    json(200, serde_json::json!({ "status": "ok" }))
                }
            }
            (Method::Get, "/metrics") => self.metrics(),
            (Method::Post, "/events") => match self.authorize(&req) {
                Some(refused) => refused,
                None => self.events(&mut req),
            },
            (Method::Post, "/reload") => match self.authorize(&req) {
                Some(refused) => refused,
                None => match reload(&self.shared) {
                    Ok(summary) => json(200, serde_json::json!({ "reloaded": true, "message": summary })),
                    Err(diagnostics) => json(422, serde_json::json!({ "reloaded": false, "diagnostics": diagnostics })),
                },
            },
            (_, "/healthz" | "/metrics" | "/events" | "/reload") => error(405, "method not allowed")
                .with_header(header("Allow", if path == "/healthz" || path == "/metrics" { "GET" } else { "POST" })),
            _ => error(404, "no such endpoint (POST /events, POST /reload, GET /healthz, GET /metrics)"),
        };
        // A client that went away gets no answer; nothing else to do.
        let _ = req.respond(response);
    }

    /// `None` when the request carries the token; else the 401.
    fn authorize(&self, req: &Request) -> Option<Response<std::io::Cursor<Vec<u8>>>> {
        let Some(token) = &self.shared.token else { return None };
        let given = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
            .map(str::trim);
        if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return None;
        }
        self.shared.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
        Some(
            error(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")
                .with_header(header("WWW-Authenticate", "Bearer")),
        )
    }

    fn metrics(&self) -> Response<std::io::Cursor<Vec<u8>>> {
        let counts = self.shared.stats.lock().unwrap_or_else(|e| e.into_inner()).counts();
        match counts {
            Ok(c) => {
                let queued = self.shared.outstanding.load(Ordering::Relaxed).max(0) as u64;
                Response::from_string(self.shared.metrics.render(&c, queued))
                    .with_header(header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"))
            }
            Err(e) => error(503, &e.message),
        }
    }

    fn too_large(&self) -> Response<std::io::Cursor<Vec<u8>>> {
        self.shared.metrics.too_large.fetch_add(1, Ordering::Relaxed);
        let msg = format!("the body is over the limit of {} bytes (`--max-body-bytes`)", self.shared.max_body);
        error(413, &msg).with_header(header("Connection", "close"))
    }

    fn events(&mut self, req: &mut Request) -> Response<std::io::Cursor<Vec<u8>>> {
        let max = self.shared.max_body;
        if req.body_length().is_some_and(|n| n > max) {
            return self.too_large();
        }
        let mut body = Vec::new();
        if let Err(e) = req.as_reader().take(max as u64 + 1).read_to_end(&mut body) {
            return error(400, &format!("cannot read the body: {e}"));
        }
        if body.len() > max {
            return self.too_large();
        }
        let lines = split(&body);
        // Validate each event as the engine will read it: malformed ones
        // are answered and dead-lettered, never queued.
        let plan = self.shared.plan.read().unwrap_or_else(|e| e.into_inner()).clone();
        let decoder = match &mut self.decoder {
            Some((p, d)) if Arc::ptr_eq(p, &plan) => d,
            slot => &mut slot.insert((plan.clone(), Decoder::new(plan))).1,
        };
        let mut good: Vec<(String, String)> = Vec::new();
        let mut good_lines: Vec<u64> = Vec::new();
        let mut bad: Vec<(u64, Vec<u8>, String)> = Vec::new();
        for (line_no, line) in lines {
            let verdict = match std::str::from_utf8(&line) {
                Err(e) => Err(format!("the event is not UTF-8 (invalid byte at offset {})", e.valid_up_to())),
                Ok(text) => match decoder.decode_full(text.as_bytes()) {
                    Err(e) => Err(e.to_string()),
                    Ok(ev) => ev.identity().map_err(|e| e.to_string()),
                },
            };
            match verdict {
                Ok(key) => {
                    good.push((key, String::from_utf8(line).unwrap_or_default()));
                    good_lines.push(line_no);
                }
                Err(e) => bad.push((line_no, line, e)),
            }
        }
        let sh = &self.shared;
        let outstanding = sh.outstanding.load(Ordering::Relaxed).max(0) as u64;
        match admit(outstanding, good.len() as u64, sh.max_queue) {
            Admission::Admit => {}
            Admission::NeverFits => {
                sh.metrics.too_large.fetch_add(1, Ordering::Relaxed);
                let msg = format!(
                    "{} events in one request, over the queue's bound of {} (`--max-queue`)",
                    good.len(),
                    sh.max_queue
                );
                return error(413, &msg);
            }
            Admission::Busy => {
                sh.metrics.throttled.fetch_add(1, Ordering::Relaxed);
                let msg =
                    format!("{outstanding} events are waiting to be processed (bound: {}); retry later", sh.max_queue);
                return error(429, &msg).with_header(header("Retry-After", "1"));
            }
        }
        // Nothing is recorded for a refused request: not even its dead
        // letters, since the client will send it again.
        let hashes: Vec<String> = bad.iter().map(|(_, raw, _)| hex64(Xxh64::of(raw))).collect();
        let kept: Vec<String> = bad
            .iter()
            .map(|(_, raw, _)| {
                let cut = raw.len().min(RAW_PREFIX);
                String::from_utf8_lossy(&raw[..cut]).into_owned()
            })
            .collect();
        let dead: Vec<DeadLetter<'_>> = bad
            .iter()
            .enumerate()
            .map(|(i, (line_no, raw, e))| DeadLetter {
                source: INTAKE_SOURCE,
                line: *line_no,
                raw: &kept[i],
                length: raw.len() as u64,
                hash: &hashes[i],
                error: e,
            })
            .collect();
        let received_ns = now_nanos() as i64;
        let offers = {
            let mut intake = sh.intake.lock().unwrap_or_else(|e| e.into_inner());
            match intake.accept(&good, &dead, received_ns) {
                Ok(offers) => {
                    // Pushed while the intake is still locked: the queue's
                    // order is the intake's.
                    let mut items = Vec::new();
                    for (offer, (_, raw)) in offers.iter().zip(good.iter_mut()) {
                        if let Offer::Queued(seq) = offer {
                            items.push(Item { seq: *seq, raw: std::mem::take(raw).into_bytes(), received_ns });
                        }
                    }
                    sh.outstanding.fetch_add(items.len() as i64, Ordering::Relaxed);
                    sh.queue.push(items);
                    offers
                }
                Err(e) => {
                    eprintln!("herald serve: intake failed, nothing acknowledged: {}", e.message);
                    return error(503, &format!("the events could not be stored: {}", e.message))
                        .with_header(header("Retry-After", "1"));
                }
            }
        };
        let accepted = offers.iter().filter(|o| matches!(o, Offer::Queued(_))).count() as u64;
        let duplicates = offers.len() as u64 - accepted;
        sh.metrics.received.fetch_add(accepted, Ordering::Relaxed);
        sh.metrics.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        sh.metrics.rejected.fetch_add(bad.len() as u64, Ordering::Relaxed);
        let errors: Vec<serde_json::Value> =
            bad.iter().map(|(line, _, e)| serde_json::json!({ "line": line, "error": e })).collect();
        let duplicate_lines: Vec<u64> =
            offers.iter().zip(&good_lines).filter(|(o, _)| matches!(o, Offer::Duplicate)).map(|(_, l)| *l).collect();
        json(
            200,
            serde_json::json!({
                "accepted": accepted,
                "duplicates": duplicates,
                "rejected": bad.len(),
                "errors": errors,
                "duplicate_lines": duplicate_lines,
            }),
        )
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Admit,
    /// More events than the queue may ever hold: 413.
    NeverFits,
    /// Not now: 429 with `Retry-After`.
    Busy,
}

/// Back-pressure: a request is taken whole or not at all, so the events
/// acknowledged and not yet processed never exceed `max`.
fn admit(outstanding: u64, events: u64, max: u64) -> Admission {
    if events > max {
        Admission::NeverFits
    } else if outstanding + events > max {
        Admission::Busy
    } else {
        Admission::Admit
    }
}

/// The events of a body, each as one line of JSON with its position:
/// a JSON array gives its elements, a single JSON value (even spread over
/// several lines) itself, anything else is NDJSON (blank lines skipped,
/// but counted).
fn split(body: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let trimmed = body.trim_ascii();
    if trimmed.starts_with(b"[") {
        return match serde_json::from_slice::<Vec<serde_json::Value>>(trimmed) {
            Ok(values) => values.iter().enumerate().map(|(i, v)| (i as u64 + 1, v.to_string().into_bytes())).collect(),
            // Not an array after all: one malformed event, the body.
            Err(_) => vec![(1, trimmed.to_vec())],
        };
    }
    if trimmed.starts_with(b"{") && trimmed.contains(&b'\n') {
        // A pretty-printed single object: re-written on one line. NDJSON
        // fails this parse at its second line, cheaply.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(trimmed) {
            return vec![(1, v.to_string().into_bytes())];
        }
    }
    body.split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.trim_ascii()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i, l.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_events() {
        let lines = |b: &str| {
            split(b.as_bytes()).into_iter().map(|(n, l)| (n, String::from_utf8(l).unwrap())).collect::<Vec<_>>()
        };
        assert_eq!(lines("{\"a\":1}\n\n{\"b\":2}\r\n"), vec![(1, "{\"a\":1}".into()), (3, "{\"b\":2}".into())]);
        assert_eq!(lines(" [ {\"a\": 1}, {\"b\":\n 2} ] "), vec![(1, "{\"a\":1}".into()), (2, "{\"b\":2}".into())]);
        assert_eq!(lines("{\n  \"a\": 1\n}\n"), vec![(1, "{\"a\":1}".into())]);
        assert_eq!(lines("[1, "), vec![(1, "[1,".into())]);
        assert_eq!(lines(""), vec![]);
    }

    #[test]
    fn back_pressure() {
        assert_eq!(admit(0, 10, 10), Admission::Admit);
        assert_eq!(admit(1, 10, 10), Admission::Busy);
        assert_eq!(admit(0, 11, 10), Admission::NeverFits);
        assert_eq!(admit(10, 0, 10), Admission::Admit);
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
