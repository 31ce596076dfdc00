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
        let o = &mut out;
        family(
            o,
            "pbi_broker_requests_total",
            "counter",
            "Requests answered, by route, status and customer.",
        );
        for ((route, status, customer), n) in &counts.requests {
            let customer = escape(customer);
            line(
                o,
                "pbi_broker_requests_total",
                &format!("route=\"{route}\",status=\"{status}\",customer=\"{customer}\""),
                n,
            );
        }
        family(
            o,
            "pbi_broker_request_seconds",
            "histogram",
            "Time to answer, by route.",
        );
        for (route, (buckets, sum, count)) in &counts.latency {
            histogram(
                o,
                "pbi_broker_request_seconds",
                &format!("route=\"{route}\""),
                BUCKETS.iter().copied().zip(buckets.iter().copied()),
                *sum,
                *count,
            );
        }
        family(
            o,
            "pbi_broker_embed_failures_total",
            "counter",
            "Embed calls that failed, by kind.",
        );
        for (kind, n) in &counts.failures {
            line(
                o,
                "pbi_broker_embed_failures_total",
                &format!("kind=\"{}\"", escape(kind)),
                n,
            );
        }
        family(
            o,
            "pbi_broker_rate_limited_total",
            "counter",
            "Requests refused by the per-caller rate limit.",
        );
        line(o, "pbi_broker_rate_limited_total", "", counts.rate_limited);
        family(
            o,
            "pbi_broker_ready",
            "gauge",
            "Whether the broker is ready (1) or not (0).",
        );
        line(o, "pbi_broker_ready", "", u8::from(ready));
        out
    }
}

/// The client's own counts, as Prometheus text: Power BI and Entra exchanges by
/// operation and status with their latency, cache lookups, tokens minted ahead,
/// throttling and its waits, store errors.
pub(crate) fn render_client(out: &mut String, stats: &ClientStats) {
    let o = out;
    family(
        o,
        "pbi_upstream_requests_total",
        "counter",
        "Requests to Power BI and Entra ID, by operation and status (0: no response).",
    );
    for ((operation, status), latencies) in &stats.exchanges {
        line(
            o,
            "pbi_upstream_requests_total",
            &format!("operation=\"{operation}\",status=\"{status}\""),
            latencies.count,
        );
    }
    family(
        o,
        "pbi_upstream_request_seconds",
        "histogram",
        "Time Power BI and Entra ID took, by operation.",
    );
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
        let bounds = LATENCY_BUCKETS.iter().map(Duration::as_secs_f64);
        histogram(
            o,
            "pbi_upstream_request_seconds",
            &format!("operation=\"{operation}\""),
            bounds.zip(buckets.iter().copied()),
            *sum,
            *count,
        );
    }
    family(
        o,
        "pbi_cache_lookups_total",
        "counter",
        "Cache lookups, by cache and result.",
    );
    for (cache, lookups) in [("embed_token", stats.embed_tokens), ("metadata", stats.metadata)] {
        line(
            o,
            "pbi_cache_lookups_total",
            &format!("cache=\"{cache}\",result=\"hit\""),
            lookups.hits,
        );
        line(
            o,
            "pbi_cache_lookups_total",
            &format!("cache=\"{cache}\",result=\"miss\""),
            lookups.misses,
        );
    }
    family(
        o,
        "pbi_minted_ahead_total",
        "counter",
        "Embed tokens minted ahead of expiry in the background.",
    );
    line(o, "pbi_minted_ahead_total", "", stats.minted_ahead);
    family(
        o,
        "pbi_throttled_total",
        "counter",
        "Waits Power BI's throttling (429) caused.",
    );
    line(o, "pbi_throttled_total", "", stats.throttled);
    family(
        o,
        "pbi_throttle_wait_seconds_total",
        "counter",
        "The time those waits took.",
    );
    line(
        o,
        "pbi_throttle_wait_seconds_total",
        "",
        stats.throttle_waits.as_secs_f64(),
    );
    family(
        o,
        "pbi_store_errors_total",
        "counter",
        "Shared-store operations that failed (calls went on without it).",
    );
    line(o, "pbi_store_errors_total", "", stats.store_errors);
}

/// A metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample: `name{labels} value` (no braces without labels).
fn line(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A histogram's samples: each bucket (upper bound in seconds, cumulative count), then
/// `+Inf`, the sum and the count.
fn histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    buckets: impl Iterator<Item = (f64, u64)>,
    sum: f64,
    count: u64,
) {
    for (bound, n) in buckets {
        line(
            out,
            &format!("{name}_bucket"),
            &format!("{labels},le=\"{bound}\""),
            n,
        );
    }
    line(
        out,
        &format!("{name}_bucket"),
        &format!("{labels},le=\"+Inf\""),
        count,
    );
    line(out, &format!("{name}_sum"), labels, sum);
    line(out, &format!("{name}_count"), labels, count);
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
