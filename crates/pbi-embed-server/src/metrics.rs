//! What the broker did, in Prometheus's text format (`GET /metrics`): requests by route,
//! status and customer, their latency, embed failures by kind, rate-limited requests,
//! and whether it is ready; and what its client did (the core's [`ClientStats`]):
//! requests to Power BI and Entra ID by operation and status with their latency, cache
//! hits and misses, tokens minted ahead, throttling and its waits, store errors.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use pbi_embed_reqwest::{ClientStats, LATENCY_BUCKETS};

/// Latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Counts {
    /// (route, status, customer) → requests.
    requests: BTreeMap<(&'static str, u16, String), u64>,
    /// route → (bucket counts, sum of seconds, count).
    latency: BTreeMap<&'static str, ([u64; BUCKETS.len()], f64, u64)>,
    /// error kind → embed calls that failed with it.
    failures: BTreeMap<String, u64>,
    rate_limited: u64,
    /// Distinct customers seen, bounded: past [`MAX_CUSTOMERS`], labels read `other`.
    customers: HashSet<String>,
}

/// The most distinct customer labels kept.
const MAX_CUSTOMERS: usize = 1000;

/// The broker's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    counts: Mutex<Counts>,
}

impl Metrics {
    /// A request answered.
    pub(crate) fn request(&self, route: &'static str, status: u16, customer: Option<&str>, took: Duration) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut customer = customer.unwrap_or("").to_owned();
        if !counts.customers.contains(&customer) {
            if counts.customers.len() >= MAX_CUSTOMERS {
                customer = "other".into();
            } else {
                counts.customers.insert(customer.clone());
            }
        }
        *counts.requests.entry((route, status, customer)).or_default() += 1;
        let seconds = took.as_secs_f64();
        let entry = counts.latency.entry(route).or_default();
        for (bucket, limit) in entry.0.iter_mut().zip(BUCKETS) {
            if seconds <= limit {
                *bucket += 1;
            }
        }
        entry.1 += seconds;
        entry.2 += 1;
    }

    /// An embed call that failed, by the error's kind.
    pub(crate) fn failure(&self, kind: String) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.failures.entry(kind).or_default() += 1;
    }

    /// A request refused by the rate limit.
    pub(crate) fn rate_limited(&self) {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .rate_limited += 1;
    }

    /// Everything, as Prometheus's text format.
    pub(crate) fn render(&self, ready: bool) -> String {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP pbi_broker_requests_total Requests answered, by route, status and customer."
        );
        let _ = writeln!(out, "# TYPE pbi_broker_requests_total counter");
        for ((route, status, customer), n) in &counts.requests {
            let _ = writeln!(
                out,
                "pbi_broker_requests_total{{route=\"{route}\",status=\"{status}\",customer=\"{}\"}} {n}",
                escape(customer)
            );
        }
        let _ = writeln!(out, "# HELP pbi_broker_request_seconds Time to answer, by route.");
        let _ = writeln!(out, "# TYPE pbi_broker_request_seconds histogram");
        for (route, (buckets, sum, count)) in &counts.latency {
            for (n, limit) in buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "pbi_broker_request_seconds_bucket{{route=\"{route}\",le=\"{limit}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "pbi_broker_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "pbi_broker_request_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(
                out,
                "pbi_broker_request_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pbi_broker_embed_failures_total Embed calls that failed, by kind."
        );
        let _ = writeln!(out, "# TYPE pbi_broker_embed_failures_total counter");
        for (kind, n) in &counts.failures {
            let _ = writeln!(
                out,
                "pbi_broker_embed_failures_total{{kind=\"{}\"}} {n}",
                escape(kind)
            );
        }
        let _ = writeln!(
            out,
            "# HELP pbi_broker_rate_limited_total Requests refused by the per-caller rate limit."
        );
        let _ = writeln!(out, "# TYPE pbi_broker_rate_limited_total counter");
        let _ = writeln!(out, "pbi_broker_rate_limited_total {}", counts.rate_limited);
        let _ = writeln!(
            out,
            "# HELP pbi_broker_ready Whether the broker is ready (1) or not (0)."
        );
        let _ = writeln!(out, "# TYPE pbi_broker_ready gauge");
        let _ = writeln!(out, "pbi_broker_ready {}", u8::from(ready));
        out
    }
}

/// The client's own counts, as Prometheus text: Power BI and Entra exchanges by
/// operation and status with their latency, cache lookups, tokens minted ahead,
/// throttling and its waits, store errors.
pub(crate) fn render_client(out: &mut String, stats: &ClientStats) {
    let _ = writeln!(
        out,
        "# HELP pbi_upstream_requests_total Requests to Power BI and Entra ID, by operation and status (0: no response)."
    );
    let _ = writeln!(out, "# TYPE pbi_upstream_requests_total counter");
    for ((operation, status), latencies) in &stats.exchanges {
        let _ = writeln!(
            out,
            "pbi_upstream_requests_total{{operation=\"{operation}\",status=\"{status}\"}} {}",
            latencies.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP pbi_upstream_request_seconds Time Power BI and Entra ID took, by operation."
    );
    let _ = writeln!(out, "# TYPE pbi_upstream_request_seconds histogram");
    let mut by_operation: BTreeMap<&str, ([u64; LATENCY_BUCKETS.len()], f64, u64)> = BTreeMap::new();
    for ((operation, _), latencies) in &stats.exchanges {
        let entry = by_operation.entry(operation).or_default();
        for (sum, n) in entry.0.iter_mut().zip(latencies.buckets) {
            *sum += n;
        }
        entry.1 += latencies.total.as_secs_f64();
        entry.2 += latencies.count;
    }
    for (operation, (buckets, sum, count)) in &by_operation {
        for (n, bound) in buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                out,
                "pbi_upstream_request_seconds_bucket{{operation=\"{operation}\",le=\"{}\"}} {n}",
                bound.as_secs_f64()
            );
        }
        let _ = writeln!(
            out,
            "pbi_upstream_request_seconds_bucket{{operation=\"{operation}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "pbi_upstream_request_seconds_sum{{operation=\"{operation}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "pbi_upstream_request_seconds_count{{operation=\"{operation}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP pbi_cache_lookups_total Cache lookups, by cache and result."
    );
    let _ = writeln!(out, "# TYPE pbi_cache_lookups_total counter");
    for (cache, lookups) in [("embed_token", stats.embed_tokens), ("metadata", stats.metadata)] {
        let _ = writeln!(
            out,
            "pbi_cache_lookups_total{{cache=\"{cache}\",result=\"hit\"}} {}",
            lookups.hits
        );
        let _ = writeln!(
            out,
            "pbi_cache_lookups_total{{cache=\"{cache}\",result=\"miss\"}} {}",
            lookups.misses
        );
    }
    let _ = writeln!(
        out,
        "# HELP pbi_minted_ahead_total Embed tokens minted ahead of expiry in the background."
    );
    let _ = writeln!(out, "# TYPE pbi_minted_ahead_total counter");
    let _ = writeln!(out, "pbi_minted_ahead_total {}", stats.minted_ahead);
    let _ = writeln!(
        out,
        "# HELP pbi_throttled_total Waits Power BI's throttling (429) caused."
    );
    let _ = writeln!(out, "# TYPE pbi_throttled_total counter");
    let _ = writeln!(out, "pbi_throttled_total {}", stats.throttled);
    let _ = writeln!(
        out,
        "# HELP pbi_throttle_wait_seconds_total The time those waits took."
    );
    let _ = writeln!(out, "# TYPE pbi_throttle_wait_seconds_total counter");
    let _ = writeln!(
        out,
        "pbi_throttle_wait_seconds_total {}",
        stats.throttle_waits.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "# HELP pbi_store_errors_total Shared-store operations that failed (calls went on without it)."
    );
    let _ = writeln!(out, "# TYPE pbi_store_errors_total counter");
    let _ = writeln!(out, "pbi_store_errors_total {}", stats.store_errors);
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_prometheus_text() {
        let metrics = Metrics::default();
        metrics.request("report", 200, Some("contoso"), Duration::from_micros(700));
        metrics.request("report", 200, Some("contoso"), Duration::from_millis(20));
        metrics.request("report", 403, Some("a\"b"), Duration::from_millis(1));
        metrics.rate_limited();
        let text = metrics.render(true);
        assert!(
            text.contains(
                "pbi_broker_requests_total{route=\"report\",status=\"200\",customer=\"contoso\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("customer=\"a\\\"b\"} 1"), "{text}");
        assert!(
            text.contains("pbi_broker_request_seconds_bucket{route=\"report\",le=\"0.001\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("pbi_broker_request_seconds_count{route=\"report\"} 3"),
            "{text}"
        );
        assert!(text.contains("pbi_broker_rate_limited_total 1"), "{text}");
        assert!(text.contains("pbi_broker_ready 1"), "{text}");
    }
}
