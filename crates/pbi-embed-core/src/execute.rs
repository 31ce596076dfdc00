//! What the adapters share when they execute an operation: one error type over any
//! transport, and the retry loop's decisions as data.
//!
//! An adapter sends, reads at most [`MAX_RESPONSE_BYTES`](crate::MAX_RESPONSE_BYTES),
//! parses with the operation, and on failure asks [`RetryState::next`] what to do:
//! return the error, wait and send again, or sign in again and send again. It only sleeps.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime};

use http::StatusCode;

use crate::error::{Error, ErrorKind};
use crate::retry::{Outcome, RetryAfter, RetryDecision, RetryPolicy};

/// How a transport failed, as far as retrying and reporting go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// The connection could not be made (refused, unreachable, DNS, TLS handshake).
    Connect,
    /// The exchange timed out.
    Timeout,
    /// The connection broke while sending or receiving.
    Io,
    /// Anything else the transport reports (a bad URL, a protocol violation).
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "could not connect",
            Self::Timeout => "timed out",
            Self::Io => "the connection failed",
            Self::Other => "the HTTP exchange failed",
        })
    }
}

/// An error from executing an operation over a transport whose errors are `E`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError<E: StdError + Send + Sync + 'static> {
    /// The request was invalid (nothing was sent), or Power BI or Entra ID answered with
    /// an error, or the answer could not be read.
    #[error(transparent)]
    Service(#[from] Error),
    /// The transport failed before a complete response arrived. The request may have been
    /// sent.
    #[error("{kind}: {source}")]
    Transport {
        /// How it failed.
        kind: TransportKind,
        /// The transport's error.
        #[source]
        source: E,
    },
    /// The response body was larger than `limit` bytes; reading stopped there.
    #[error("the response body is larger than {limit} bytes; reading stopped")]
    BodyTooLarge {
        /// The cap.
        limit: u64,
    },
    /// The caller's token source could not give a bearer token. Nothing was sent.
    #[error("the token source failed: {0}")]
    TokenSource(#[source] Box<dyn StdError + Send + Sync>),
}

impl<E: StdError + Send + Sync + 'static> ExecuteError<E> {
    /// The category of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Service(e) => e.kind(),
            Self::Transport {
                kind: TransportKind::Timeout,
                ..
            } => ErrorKind::Timeout,
            Self::Transport { .. } => ErrorKind::Network,
            Self::BodyTooLarge { .. } => ErrorKind::BodyTooLarge,
            Self::TokenSource(_) => ErrorKind::TokenSource,
        }
    }

    /// The service error, when the service answered (or the input was invalid).
    #[must_use]
    pub fn service(&self) -> Option<&Error> {
        match self {
            Self::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status, when a response arrived.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        self.service().and_then(Error::status)
    }

    /// Power BI's `error.code` or Entra's `error`.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.service().and_then(Error::code)
    }

    /// The `RequestId` to quote to Microsoft support.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.service().and_then(Error::request_id)
    }

    /// The `Retry-After` the service sent.
    #[must_use]
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.service().and_then(Error::retry_after)
    }

    /// What this failure means for retrying.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Service(e) => Outcome::from(e),
            Self::Transport {
                kind: TransportKind::Timeout,
                ..
            } => Outcome::TimedOut,
            Self::Transport {
                kind: TransportKind::Connect | TransportKind::Io,
                ..
            } => Outcome::ConnectionFailed,
            Self::Transport { .. } | Self::BodyTooLarge { .. } | Self::TokenSource(_) => Outcome::Fatal,
        }
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

/// The state of one call's retry loop: how many attempts were made, and whether the
/// bearer token was already renewed once.
#[derive(Clone, Debug)]
pub struct RetryState {
    policy: RetryPolicy,
    attempts: u32,
    reauthenticated: bool,
}

impl RetryState {
    /// A call about to make its first attempt under `policy`.
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
        self.attempts += 1;
        self.attempts
    }

    /// Decides what follows a failed attempt.
    ///
    /// `kind` and `outcome` describe the failure. `can_reauthenticate` says whether a new
    /// bearer token can be had (not for a fixed token). A 403 `TokenExpired` leads to one
    /// new sign-in and an immediate retry, which does not count against the policy's
    /// retries; anything else goes to the [`RetryPolicy`], with `elapsed` since the first
    /// attempt, `now` for HTTP-date `Retry-After` values and `random` for jitter.
    pub fn next(
        &mut self,
        kind: ErrorKind,
        outcome: Outcome,
        can_reauthenticate: bool,
        elapsed: Duration,
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
        match self.policy.decide(outcome, counted, elapsed, now, random) {
            RetryDecision::RetryAfter(delay) => NextStep::Wait(delay),
            RetryDecision::GiveUp(_) => NextStep::Return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled() -> Outcome {
        Outcome::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(RetryAfter::Delay(Duration::from_secs(1))),
        }
    }

    #[test]
    fn token_expired_reauthenticates_once() {
        let mut state = RetryState::new(RetryPolicy::default());
        let forbidden = Outcome::Status {
            status: StatusCode::FORBIDDEN,
            retry_after: None,
        };
        let now = SystemTime::UNIX_EPOCH;
        state.start_attempt();
        assert_eq!(
            state.next(ErrorKind::TokenExpired, forbidden, true, Duration::ZERO, now, 0),
            NextStep::Reauthenticate
        );
        state.start_attempt();
        assert_eq!(
            state.next(ErrorKind::TokenExpired, forbidden, true, Duration::ZERO, now, 0),
            NextStep::Return
        );
        let mut fixed = RetryState::new(RetryPolicy::default());
        fixed.start_attempt();
        assert_eq!(
            fixed.next(ErrorKind::TokenExpired, forbidden, false, Duration::ZERO, now, 0),
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
            let step = state.next(ErrorKind::Throttled, throttled(), true, Duration::ZERO, now, 0);
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
    fn transport_kinds_map_to_outcomes() {
        let e: ExecuteError<std::io::Error> = ExecuteError::Transport {
            kind: TransportKind::Timeout,
            source: std::io::Error::other("slow"),
        };
        assert_eq!(e.outcome(), Outcome::TimedOut);
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(e.to_string(), "timed out: slow");
        let e: ExecuteError<std::io::Error> = ExecuteError::BodyTooLarge { limit: 10 };
        assert_eq!(e.outcome(), Outcome::Fatal);
        assert_eq!(e.kind(), ErrorKind::BodyTooLarge);
    }
}
