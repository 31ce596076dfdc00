//! What a session did, counted: exchanges by operation and status with their latency
//! (from the `now` the driver passes; no clock is read), cache hits and misses, tokens
//! minted ahead in the background, throttling and the waits it caused, and store
//! errors. Drivers hand out a copy (`Client::stats`); a broker's metrics read it.

use std::collections::BTreeMap;
use std::time::Duration;

/// The upper bounds of the latency buckets.
pub const LATENCY_BUCKETS: [Duration; 10] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2500),
    Duration::from_secs(5),
];

/// A session's counts since it was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Exchanges with Power BI and Entra ID (and identity endpoints), by operation (such
    /// as `Reports_GenerateTokenInGroup`) and HTTP status (0: no response came).
    pub exchanges: BTreeMap<(&'static str, u16), Latencies>,
    /// Embed-token cache lookups.
    pub embed_tokens: Lookups,
    /// Item-metadata cache lookups.
    pub metadata: Lookups,
    /// Embed tokens minted ahead of expiry in the background (refresh-ahead).
    pub minted_ahead: u64,
    /// Waits caused by throttling (429), and their total.
    pub throttled: u64,
    /// The total of the waits throttling caused.
    pub throttle_waits: Duration,
    /// Shared-store operations that failed (the call went on without the store).
    pub store_errors: u64,
}

/// A cache's lookups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Answered from the cache.
    pub hits: u64,
    /// Not in the cache (or due): fetched.
    pub misses: u64,
}

/// How long exchanges took, as a histogram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latencies {
    /// How many.
    pub count: u64,
    /// Their total time.
    pub total: Duration,
    /// How many took at most each of [`LATENCY_BUCKETS`] (cumulative).
    pub buckets: [u64; LATENCY_BUCKETS.len()],
}

impl ClientStats {
    /// An exchange of `operation` answered with `status` (0: none) after `took`.
    pub(crate) fn exchange(&mut self, operation: &'static str, status: u16, took: Duration) {
        let latencies = self.exchanges.entry((operation, status)).or_default();
        latencies.count += 1;
        latencies.total = latencies.total.saturating_add(took);
        for (bucket, bound) in latencies.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if took <= bound {
                *bucket += 1;
            }
        }
    }

    /// A wait of `delay` because of throttling.
    pub(crate) fn throttled(&mut self, delay: Duration) {
        self.throttled += 1;
        self.throttle_waits = self.throttle_waits.saturating_add(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanges_fall_in_their_buckets_and_add_up() {
        let mut stats = ClientStats::default();
        stats.exchange("Reports_GenerateTokenInGroup", 200, Duration::from_millis(7));
        stats.exchange("Reports_GenerateTokenInGroup", 200, Duration::from_secs(9));
        stats.throttled(Duration::from_secs(2));
        stats.throttled(Duration::from_secs(3));
        let latencies = &stats.exchanges[&("Reports_GenerateTokenInGroup", 200)];
        assert_eq!(latencies.count, 2);
        assert_eq!(latencies.total, Duration::from_millis(9007));
        assert_eq!(latencies.buckets[0], 0, "7 ms is over 5 ms");
        assert_eq!(latencies.buckets[1], 1, "and under 10 ms");
        assert_eq!(latencies.buckets[9], 1, "9 s is over every bound");
        assert_eq!(
            (stats.throttled, stats.throttle_waits),
            (2, Duration::from_secs(5))
        );
    }
}
