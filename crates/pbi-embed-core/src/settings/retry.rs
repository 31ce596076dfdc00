//! When to retry, as data: the drivers only sleep.
//!
//! A [`RetryPolicy`] looks at what happened to one attempt (an [`Outcome`]), how many
//! attempts were made, how much of the call's deadline is left, and a random number the
//! caller supplies, and answers [`RetryDecision::RetryAfter`] or [`RetryDecision::GiveUp`].
//!
//! # Which calls are safe to retry
//!
//! Every call this crate builds is safe to retry: GenerateToken mints a new, independent
//! embed token each time (an extra one does no harm and simply expires), and the Entra ID
//! client-credentials call issues a new access token each time. Neither changes state a
//! second attempt could corrupt.

use std::time::{Duration, SystemTime};

use http::StatusCode;

use crate::wire::error::ExchangeError;
pub use crate::wire::retry_after::RetryAfter;

/// What happened to one attempt, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A complete response arrived with this status (and maybe a `Retry-After`).
    Status {
        /// The response status.
        status: StatusCode,
        /// The parsed `Retry-After` header.
        retry_after: Option<RetryAfter>,
    },
    /// The connection could not be made, or broke before a response was complete.
    ConnectionFailed,
    /// The attempt ran out of time.
    TimedOut,
    /// Anything else: not retried (invalid input, a response that cannot be read).
    Fatal,
}

impl Outcome {
    /// Whether this outcome is worth another attempt at all: 408, 429, 500, 502, 503,
    /// 504, a failed connection or a time-out.
    #[must_use]
    pub fn is_transient(self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
            Self::ConnectionFailed | Self::TimedOut => true,
            Self::Fatal => false,
        }
    }
}

impl From<&ExchangeError> for Outcome {
    fn from(error: &ExchangeError) -> Self {
        match (error.status(), error) {
            (_, ExchangeError::Decode(_)) | (None, _) => Self::Fatal,
            (Some(status), _) => Self::Status {
                status,
                retry_after: error.retry_after(),
            },
        }
    }
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then send the request again.
    RetryAfter(Duration),
    /// Stop and report the last attempt's error.
    GiveUp(GiveUpReason),
}

/// Why a [`RetryPolicy`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The outcome is not transient (success, a client error, invalid input).
    NotRetryable,
    /// The policy's maximum number of retries was reached.
    AttemptsExhausted,
    /// Waiting would take the call past its deadline.
    DeadlineTooClose,
    /// The service asked for a wait longer than the policy accepts.
    RetryAfterTooLong(Duration),
}

/// When and how often to retry. Defaults: 3 retries, backoff from 500 ms doubling up to
/// 8 s with jitter, `Retry-After` honoured up to 30 s. No wait ever takes a call past its
/// deadline (see `ClientSettings::deadline`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }
    /// The most retries after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }
    /// The first backoff; each later one doubles, up to [`Self::max_backoff`].
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }
    /// The longest backoff between attempts when the service gives no `Retry-After`.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }
    /// The longest `Retry-After` honoured; a longer one gives up at once rather than wait.
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }
    /// The configured retry count.
    #[must_use]
    pub fn retries(&self) -> u32 {
        self.max_retries
    }
    /// The longest `Retry-After` honoured.
    #[must_use]
    pub fn longest_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Decides what to do after attempt number `attempt` (1 for the first) ended in
    /// `outcome`, with `remaining` left before the call's deadline.
    ///
    /// `now` resolves an HTTP-date `Retry-After`; `random` is any uniformly random `u32`
    /// from the caller's source, used for jitter: the backoff is scaled into
    /// `[backoff / 2, backoff]`. A `Retry-After` replaces the backoff when it is longer, as long as
    /// it is within [`Self::max_retry_after`].
    #[must_use]
    pub fn decide(
        &self,
        outcome: Outcome,
        attempt: u32,
        remaining: Duration,
        now: SystemTime,
        random: u32,
    ) -> RetryDecision {
        if !outcome.is_transient() {
            return RetryDecision::GiveUp(GiveUpReason::NotRetryable);
        }
        if attempt > self.max_retries {
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let server_wait = match outcome {
            Outcome::Status {
                retry_after: Some(retry_after),
                ..
            } => Some(retry_after.delay_from(now)),
            _ => None,
        };
        if let Some(wait) = server_wait
            && wait > self.max_retry_after
        {
            return RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong(wait));
        }
        let backoff = self.backoff(attempt, random);
        let delay = server_wait.map_or(backoff, |wait| wait.max(backoff));
        if delay >= remaining {
            return RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose);
        }
        RetryDecision::RetryAfter(delay)
    }

    /// The jittered exponential backoff after attempt `attempt`.
    fn backoff(&self, attempt: u32, random: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff);
        // Equal jitter: half fixed, half random.
        let half = base / 2;
        let fraction = f64::from(random) / f64::from(u32::MAX);
        half + half.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<u64>) -> Outcome {
        Outcome::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: retry_after.map(|s| RetryAfter::Delay(Duration::from_secs(s))),
        }
    }

    #[test]
    fn decisions() {
        let p = RetryPolicy::default();
        let now = SystemTime::UNIX_EPOCH;
        let ample = Duration::from_secs(60);
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(
                p.decide(status(code, None), 1, ample, now, 0),
                RetryDecision::RetryAfter(_)
            ));
        }
        for code in [200, 400, 401, 403, 404, 501, 505] {
            assert_eq!(
                p.decide(status(code, None), 1, ample, now, 0),
                RetryDecision::GiveUp(GiveUpReason::NotRetryable)
            );
        }
        assert_eq!(
            p.decide(status(429, Some(7)), 1, ample, now, 0),
            RetryDecision::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            p.decide(status(429, Some(3600)), 1, ample, now, 0),
            RetryDecision::GiveUp(GiveUpReason::RetryAfterTooLong(Duration::from_secs(3600)))
        );
        assert_eq!(
            p.decide(Outcome::ConnectionFailed, 4, ample, now, 0),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        assert_eq!(
            p.decide(status(503, Some(20)), 1, Duration::from_secs(10), now, 0),
            RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose)
        );
        assert_eq!(
            RetryPolicy::none().decide(Outcome::TimedOut, 1, ample, now, 0),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0), Duration::from_millis(250));
        assert_eq!(p.backoff(1, u32::MAX), Duration::from_millis(500));
        assert_eq!(p.backoff(2, u32::MAX), Duration::from_millis(1000));
        assert_eq!(p.backoff(3, u32::MAX), Duration::from_millis(2000));
        assert_eq!(p.backoff(40, u32::MAX), Duration::from_secs(8));
    }
}
