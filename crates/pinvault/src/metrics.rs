//! Prometheus metrics: request counts and latency per route, method and status.
//! Labels are route templates (`/v1/cards/{id}`), never raw paths or values.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, &'static str, u16), Series>>,
    /// PIN verifications by outcome, in [`VERIFY_RESULTS`] order.
    verifications: [AtomicU64; VERIFY_RESULTS.len()],
    /// Webhook delivery attempts by outcome, in [`WEBHOOK_OUTCOMES`] order.
    webhook_attempts: [AtomicU64; WEBHOOK_OUTCOMES.len()],
    /// PIN blocks that did not decipher or parse, by zone key (keys the
    /// operator loaded: a bounded set).
    decrypt_failures: Mutex<BTreeMap<String, u64>>,
}

/// The outcomes of a webhook delivery attempt, as metric labels.
pub const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "retry", "gave_up"];

/// The outcomes of a PIN verification, as metric labels.
pub const VERIFY_RESULTS: [&str; 5] = [
    "match",
    "mismatch",
    "blocked",
    "card_inactive",
    "decryption_failed",
];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &axum::http::Method, status: u16, seconds: f64) {
        let mut map = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let s = map
            .entry((route.to_owned(), method_label(method), status))
            .or_default();
        s.count += 1;
        s.sum += seconds;
        for (slot, bound) in s.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *slot += 1;
            }
        }
    }

    /// Counts a PIN verification outcome (one of [`VERIFY_RESULTS`]).
    pub fn verification(&self, result: &str) {
        count(&VERIFY_RESULTS, &self.verifications, result);
    }

    /// Counts a PIN block under `zone_key_id` (an existing key the caller may
    /// use) that did not decipher or parse.
    pub fn decryption_failure(&self, zone_key_id: &str) {
        let mut map = self
            .decrypt_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *map.entry(zone_key_id.to_owned()).or_default() += 1;
    }

    /// Counts a webhook delivery attempt (one of [`WEBHOOK_OUTCOMES`]).
    pub fn webhook_attempt(&self, outcome: &str) {
        count(&WEBHOOK_OUTCOMES, &self.webhook_attempts, outcome);
    }

    pub fn render(&self) -> String {
        let map = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        counter(
            &mut out,
            "pinvault_webhook_attempts_total",
            "Webhook delivery attempts by outcome.",
            "outcome",
            WEBHOOK_OUTCOMES
                .into_iter()
                .zip(self.webhook_attempts.iter().map(load)),
        );
        counter(
            &mut out,
            "pinvault_pin_verifications_total",
            "PIN verifications by outcome.",
            "result",
            VERIFY_RESULTS
                .into_iter()
                .zip(self.verifications.iter().map(load)),
        );
        let failures = self
            .decrypt_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        counter(
            &mut out,
            "pinvault_pin_block_decryption_failures_total",
            "PIN blocks that did not decipher or parse, by zone key.",
            "zone_key_id",
            failures.iter().map(|(zone_key, n)| (zone_key.as_str(), *n)),
        );
        drop(failures);
        out.push_str("# HELP pinvault_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE pinvault_http_requests_total counter\n");
        for ((route, method, status), s) in map.iter() {
            let _ = writeln!(
                out,
                "pinvault_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str(
            "# HELP pinvault_http_request_duration_seconds Time to answer HTTP requests.\n",
        );
        out.push_str("# TYPE pinvault_http_request_duration_seconds histogram\n");
        for ((route, method, status), s) in map.iter() {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(
                    out,
                    "pinvault_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "pinvault_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "pinvault_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "pinvault_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}

/// Adds one to the counter of `which` (one of `names`, in the counters' order).
fn count(names: &[&str], counters: &[AtomicU64], which: &str) {
    if let Some(i) = names.iter().position(|n| *n == which) {
        if let Some(c) = counters.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A counter family with one label: its HELP and TYPE lines, then a sample a
/// label value.
fn counter<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    samples: impl Iterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, n) in samples {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}
