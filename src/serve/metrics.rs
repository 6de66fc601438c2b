//! The service's counters and the Prometheus text exposition of `/metrics`
//! (format 0.0.4, written by hand: it is a few lines).

use crate::store::intake::StoreCounts;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Counters kept in memory since the service started.
#[derive(Default)]
pub struct Metrics {
    /// Events acknowledged into the intake.
    pub received: AtomicU64,
    /// Events not queued because their identity was queued or processed.
    pub duplicates: AtomicU64,
    /// Malformed events (dead-lettered at intake).
    pub rejected: AtomicU64,
    /// Intake events whose processing committed.
    pub processed: AtomicU64,
    /// Requests refused: 401, 413, 429.
    pub unauthorized: AtomicU64,
    pub too_large: AtomicU64,
    pub throttled: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Cumulative per bucket is computed when rendering; these are per bucket
    /// (the last one is `+Inf`).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

impl Metrics {
    /// One event's time from acknowledgment to the commit of its processing.
    pub fn observe_latency(&self, nanos: i64) {
        let secs = nanos.max(0) as f64 / 1e9;
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add((nanos.max(0) / 1000) as u64, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition: in-memory counters, and the store's totals (which
    /// survive restarts: they are the record of truth).
    pub fn render(&self, store: &StoreCounts, queued: u64) -> String {
        let mut o = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(&mut o, "herald_events_received_total", "Events acknowledged into the intake.", get(&self.received));
        counter(
            &mut o,
            "herald_events_duplicate_total",
            "Events not queued: an event with their identity was queued or processed.",
            get(&self.duplicates),
        );
        counter(
            &mut o,
            "herald_events_rejected_total",
            "Malformed events, dead-lettered at intake.",
            get(&self.rejected),
        );
        counter(
            &mut o,
            "herald_events_processed_total",
            "Acknowledged events whose processing committed.",
            get(&self.processed),
        );
        let _ = writeln!(
            o,
            "# HELP herald_requests_refused_total Requests refused before intake, by reason.\n\
             # TYPE herald_requests_refused_total counter\n\
             herald_requests_refused_total{{reason=\"unauthorized\"}} {}\n\
             herald_requests_refused_total{{reason=\"too_large\"}} {}\n\
             herald_requests_refused_total{{reason=\"backpressure\"}} {}",
            get(&self.unauthorized),
            get(&self.too_large),
            get(&self.throttled)
        );
        let _ = writeln!(
            o,
            "# HELP herald_reloads_total Policy reloads, by result.\n# TYPE herald_reloads_total counter\n\
             herald_reloads_total{{result=\"ok\"}} {}\nherald_reloads_total{{result=\"refused\"}} {}",
            get(&self.reloads_ok),
            get(&self.reloads_failed)
        );
        let _ = writeln!(
            o,
            "# HELP herald_intake_pending Acknowledged events not processed yet (store).\n\
             # TYPE herald_intake_pending gauge\nherald_intake_pending {}",
            store.intake
        );
        let _ = writeln!(
            o,
            "# HELP herald_intake_queued Acknowledged events waiting in memory for the engine.\n\
             # TYPE herald_intake_queued gauge\nherald_intake_queued {queued}"
        );
        let _ = writeln!(
            o,
            "# HELP herald_rule_firings_total Rule firings (store).\n# TYPE herald_rule_firings_total counter"
        );
        for (rule, n) in &store.firings {
            let _ = writeln!(o, "herald_rule_firings_total{{rule=\"{}\"}} {n}", escape(rule));
        }
        counter(&mut o, "herald_dead_letters_total", "Dead letters (store).", store.dead_letters);
        counter(&mut o, "herald_rule_errors_total", "Rule errors (store).", store.rule_errors);
        let _ = writeln!(
            o,
            "# HELP herald_outbox_messages Outbox rows by kind and status (store).\n# TYPE herald_outbox_messages gauge"
        );
        for (kind, c) in [("email", &store.email), ("webhook", &store.webhook)] {
            for (status, n) in [("pending", c.pending), ("failed", c.failed), ("sent", c.sent)] {
                let _ = writeln!(o, "herald_outbox_messages{{kind=\"{kind}\",status=\"{status}\"}} {n}");
            }
        }
        let name = "herald_event_latency_seconds";
        let _ = writeln!(
            o,
            "# HELP {name} Time from an event's acknowledgment to the commit of its processing.\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += get(&self.buckets[i]);
            let _ = writeln!(o, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += get(&self.buckets[BUCKETS.len()]);
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(o, "{name}_sum {}", get(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(o, "{name}_count {}", get(&self.latency_count));
        o
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.observe_latency(500_000); // 0.5 ms
        m.observe_latency(20_000_000); // 20 ms
        m.observe_latency(100_000_000_000); // 100 s: only +Inf
        let text = m.render(&StoreCounts::default(), 0);
        assert!(text.contains("herald_event_latency_seconds_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("herald_event_latency_seconds_bucket{le=\"0.025\"} 2\n"), "{text}");
        assert!(text.contains("herald_event_latency_seconds_bucket{le=\"30\"} 2\n"), "{text}");
        assert!(text.contains("herald_event_latency_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("herald_event_latency_seconds_count 3\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
