//! The per-caller rate limit: a token bucket per caller, `requests_per_minute` deep and
//! refilled at that rate. Time is a parameter, so the rule is tested without waiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most callers tracked; past it, the idlest are forgotten (a forgotten caller starts
/// with a full bucket).
const MAX_CALLERS: usize = 100_000;

/// Buckets by caller.
pub(crate) struct RateLimit {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimit {
    /// `per_minute` requests a minute per caller; 0 is no limit.
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `caller`'s bucket at `now`: `Ok`, or how long until one is
    /// there.
    pub(crate) fn take(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let depth = f64::from(self.per_minute);
        let per_second = depth / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            // Full buckets tell nothing: forget those first, else everyone.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_second < depth
            });
            if buckets.len() >= MAX_CALLERS {
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(caller.to_owned()).or_insert((depth, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * per_second).min(depth);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_minute_then_waits_and_others_are_not_held() {
        let limit = RateLimit::new(60);
        let start = Instant::now();
        for _ in 0..60 {
            limit.take("a", start).unwrap();
        }
        let wait = limit.take("a", start).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        limit.take("b", start).unwrap();
        limit.take("a", start + Duration::from_secs(1)).unwrap();
        assert!(RateLimit::new(0).take("a", start).is_ok());
    }
}
