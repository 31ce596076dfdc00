//! Retry decisions as data: the drivers only sleep.
//!
//! A [`RetryPolicy`] looks at what happened to one attempt (an [`Outcome`]), how many
//! attempts were made, how much of the call's deadline is left, and a random number the
//! caller supplies, and answers [`RetryDecision::RetryAfter`] or [`RetryDecision::GiveUp`].
//! [`RetryState`] keeps one call's count and adds the one new sign-in after Power BI's
//! `TokenExpired`.
//!
//! # Which calls are safe to retry
//!
//! Every call this crate builds is safe to retry: GenerateToken mints a new, independent
//! embed token each time (an extra one does no harm and simply expires), and the Entra ID
//! client-credentials call issues a new access token each time. Neither changes state a
//! second attempt could corrupt.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, StatusCode};

use crate::wire::error::ErrorKind;

/// The `Retry-After` response header: a delay, or an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryAfter {
    /// `Retry-After: 120` (delta-seconds).
    Delay(Duration),
    /// `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` (HTTP-date).
    At(SystemTime),
}

impl RetryAfter {
    /// The longest delay read from a header; larger values are clamped to it.
    pub const MAX_SECONDS: u64 = 366 * 24 * 60 * 60;

    /// Parses one header value: delta-seconds or an HTTP-date. Anything else (`soon`,
    /// `-5`, an empty value) is `None`. Huge numbers are clamped to [`Self::MAX_SECONDS`].
    #[must_use]
    pub fn parse(value: &HeaderValue) -> Option<Self> {
        let text = value.to_str().ok()?.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            // All digits: delta-seconds. Too many digits to fit still means "very long".
            let seconds = text.parse::<u64>().unwrap_or(u64::MAX).min(Self::MAX_SECONDS);
            return Some(Self::Delay(Duration::from_secs(seconds)));
        }
        httpdate::parse_http_date(text).ok().map(Self::At)
    }

    /// Reads `Retry-After` from response headers. With several values, none is trusted.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(http::header::RETRY_AFTER).iter();
        let first = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Self::parse(first)
    }

    /// How long to wait, counted from `now`. An instant in the past means no wait.
    #[must_use]
    pub fn delay_from(self, now: SystemTime) -> Duration {
        match self {
            Self::Delay(delay) => delay,
            Self::At(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

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

impl From<&crate::ExchangeError> for Outcome {
    fn from(error: &crate::ExchangeError) -> Self {
        match (error.status(), error) {
            (_, crate::ExchangeError::Decode(_)) | (None, _) => Self::Fatal,
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

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NextStep {
    /// Stop and return the error.
    Return,
    /// Wait this long, then send again.
    Wait(Duration),
    /// Get a new bearer token (the one sent has expired), then send again at once.
    Reauthenticate,
}

/// The state of one request's retries: how many attempts were made, and whether the
/// bearer token was already renewed once.
#[derive(Clone, Debug)]
pub struct RetryState {
    policy: RetryPolicy,
    attempts: u32,
    reauthenticated: bool,
}

impl RetryState {
    /// A request about to make its first attempt under `policy`.
    #[must_use]
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            attempts: 0,
            reauthenticated: false,
        }
    }

    /// Attempts made so far.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Counts an attempt about to be sent; returns its number (1 for the first).
    pub fn start_attempt(&mut self) -> u32 {
        self.attempts = self.attempts.saturating_add(1);
        self.attempts
    }

    /// Decides what follows a failed attempt.
    ///
    /// `kind` and `outcome` describe the failure. `can_reauthenticate` says whether a new
    /// bearer token can be had (not for a fixed token). A 403 `TokenExpired` leads to one
    /// new sign-in and an immediate retry, which does not count against the policy's
    /// retries; anything else goes to the [`RetryPolicy`], with `remaining` before the
    /// call's deadline, `now` for HTTP-date `Retry-After` values and `random` for jitter.
    pub fn next(
        &mut self,
        kind: ErrorKind,
        outcome: Outcome,
        can_reauthenticate: bool,
        remaining: Duration,
        now: SystemTime,
        random: u32,
    ) -> NextStep {
        if kind == ErrorKind::TokenExpired {
            if can_reauthenticate && !self.reauthenticated {
                self.reauthenticated = true;
                return NextStep::Reauthenticate;
            }
            return NextStep::Return;
        }
        let counted = self
            .attempts
            .saturating_sub(u32::from(self.reauthenticated))
            .max(1);
        match self.policy.decide(outcome, counted, remaining, now, random) {
            RetryDecision::RetryAfter(delay) => NextStep::Wait(delay),
            RetryDecision::GiveUp(_) => NextStep::Return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            RetryAfter::parse(&hv("120")),
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert_eq!(
            RetryAfter::parse(&hv(" 0 ")),
            Some(RetryAfter::Delay(Duration::ZERO))
        );
        assert_eq!(
            RetryAfter::parse(&hv("1000000000000000000000000")),
            Some(RetryAfter::Delay(Duration::from_secs(RetryAfter::MAX_SECONDS)))
        );
        for bad in ["soon", "-5", "", "1.5", "+3", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            assert_eq!(RetryAfter::parse(&hv(bad)), None, "{bad}");
        }
        let at = RetryAfter::parse(&hv("Wed, 21 Oct 2015 07:28:00 GMT")).unwrap();
        let RetryAfter::At(t) = at else { panic!("{at:?}") };
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_445_412_480
        );
        assert_eq!(at.delay_from(t + Duration::from_secs(5)), Duration::ZERO);
        assert_eq!(at.delay_from(t - Duration::from_secs(5)), Duration::from_secs(5));
    }

    #[test]
    fn duplicate_retry_after_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.append(http::header::RETRY_AFTER, hv("1"));
        assert!(RetryAfter::from_headers(&headers).is_some());
        headers.append(http::header::RETRY_AFTER, hv("2"));
        assert_eq!(RetryAfter::from_headers(&headers), None);
    }

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

    fn throttled() -> Outcome {
        status(429, Some(1))
    }

    #[test]
    fn token_expired_reauthenticates_once() {
        let mut state = RetryState::new(RetryPolicy::default());
        let forbidden = status(403, None);
        let now = SystemTime::UNIX_EPOCH;
        let ample = Duration::from_secs(60);
        state.start_attempt();
        assert_eq!(
            state.next(ErrorKind::TokenExpired, forbidden, true, ample, now, 0),
            NextStep::Reauthenticate
        );
        state.start_attempt();
        assert_eq!(
            state.next(ErrorKind::TokenExpired, forbidden, true, ample, now, 0),
            NextStep::Return
        );
        let mut fixed = RetryState::new(RetryPolicy::default());
        fixed.start_attempt();
        assert_eq!(
            fixed.next(ErrorKind::TokenExpired, forbidden, false, ample, now, 0),
            NextStep::Return
        );
    }

    #[test]
    fn retries_follow_the_policy() {
        let mut state = RetryState::new(RetryPolicy::default().max_retries(2));
        let now = SystemTime::UNIX_EPOCH;
        let mut steps = Vec::new();
        loop {
            state.start_attempt();
            let step = state.next(
                ErrorKind::Throttled,
                throttled(),
                true,
                Duration::from_secs(60),
                now,
                0,
            );
            steps.push(step);
            if step == NextStep::Return {
                break;
            }
        }
        assert_eq!(
            steps,
            [
                NextStep::Wait(Duration::from_secs(1)),
                NextStep::Wait(Duration::from_secs(1)),
                NextStep::Return
            ]
        );
        assert_eq!(state.attempts(), 3);
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
