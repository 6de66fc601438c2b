//! Load generator for `herald serve` (benches/serve/run.sh, BENCHMARKS.md):
//!
//!   serve_load PORT TOKEN EVENTS.ndjson CLIENTS BATCH DB
//!
//! Posts the events in NDJSON batches of BATCH from CLIENTS concurrent
//! clients (one connection per request), then waits until the service has
//! processed them all and reads `herald_firing` from the store: prints the
//! events per second acknowledged, the time until everything was processed,
//! the p50/p99 time from the start of an event's request to its firing row
//! (over the events that fired: intake commit, queueing, matching, actions),
//! and the p50/p99 of the service's own histogram `herald_event_latency_seconds`
//! (intake commit to the commit of the processing, over every event; bucket
//! upper bounds).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

fn request(port: u16, method: &str, path: &str, token: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: serve_load PORT TOKEN EVENTS CLIENTS BATCH DB");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT");
    let token = args[2].clone();
    let text = std::fs::read_to_string(&args[3]).expect("EVENTS");
    let clients: usize = args[4].parse().expect("CLIENTS");
    let batch: usize = args[5].parse().expect("BATCH");
    let db = args[6].clone();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let batches: Vec<String> = lines.chunks(batch).map(|c| c.join("\n") + "\n").collect();
    let uuids: Vec<Vec<String>> = lines
        .chunks(batch)
        .map(|c| {
            c.iter()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v["event_uuid"].as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let batches = Arc::new(batches);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (batches, token) = (batches.clone(), token.clone());
            std::thread::spawn(move || {
                let mut acks = Vec::new();
                for (i, body) in batches.iter().enumerate().skip(c).step_by(clients) {
                    // The firing may commit before the client reads the 200,
                    // so latency is measured from the request's start.
                    let sent = unix_nanos();
                    loop {
                        match request(port, "POST", "/events", &token, body.as_bytes()) {
                            Ok((200, _)) => break,
                            Ok((429, _)) => std::thread::sleep(Duration::from_millis(10)),
                            Ok((s, b)) => panic!("answer {s}: {b}"),
                            Err(e) => panic!("request failed: {e}"),
                        }
                    }
                    acks.push((i, sent));
                }
                acks
            })
        })
        .collect();
    let mut ack_of_batch = vec![0i128; batches.len()];
    for t in threads {
        for (i, at) in t.join().expect("client") {
            ack_of_batch[i] = at;
        }
    }
    let accepted_in = started.elapsed();
    loop {
        let (_, m) = request(port, "GET", "/metrics", &token, b"").expect("metrics");
        if m.lines().any(|l| l == "herald_intake_pending 0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let processed_in = started.elapsed();
    let (_, m) = request(port, "GET", "/metrics", &token, b"").expect("metrics");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for l in m.lines() {
        if let Some(rest) = l.strip_prefix("herald_event_latency_seconds_bucket{le=\"") {
            let (le, v) = rest.split_once("\"} ").expect("bucket");
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().expect("le") };
            buckets.push((le, v.parse().expect("count")));
        }
    }
    let total = buckets.last().map_or(0.0, |b| b.1);
    let quantile = |q: f64| buckets.iter().find(|b| b.1 >= q * total).map_or(f64::NAN, |b| b.0 * 1000.0);
    let mut ack = std::collections::HashMap::new();
    for (i, us) in uuids.iter().enumerate() {
        for u in us {
            ack.insert(u.clone(), ack_of_batch[i]);
        }
    }
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("DB");
    let mut st = conn.prepare("SELECT event_uuid, MIN(fired_at) FROM herald_firing GROUP BY event_uuid").unwrap();
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap();
    let mut lat = Vec::new();
    for row in rows {
        let (uuid, fired) = row.unwrap();
        let Some(acked) = ack.get(&uuid) else { continue };
        let t = time::OffsetDateTime::parse(&fired, &time::format_description::well_known::Rfc3339).expect("fired_at");
        lat.push((t.unix_timestamp_nanos() - acked) as f64 / 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let n = lines.len();
    println!(
        "clients={clients}\tbatch={batch}\tevents={n}\taccepted_s={:.2}\taccepted_per_s={:.0}\tprocessed_s={:.2}\tfired={}\treq_to_firing_p50_ms={:.1}\tp99_ms={:.1}\thistogram_p50_ms<={}\tp99_ms<={}",
        accepted_in.as_secs_f64(),
        n as f64 / accepted_in.as_secs_f64(),
        processed_in.as_secs_f64(),
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        quantile(0.5),
        quantile(0.99),
    );
}
