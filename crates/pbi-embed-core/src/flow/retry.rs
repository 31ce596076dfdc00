//! One request's retries: how many attempts were made, and the one new sign-in after
//! Power BI's `TokenExpired`. What a failure is worth is the [`RetryPolicy`]'s call.

use std::time::{Duration, SystemTime};

use crate::settings::retry::{Outcome, RetryDecision, RetryPolicy};
use crate::wire::error::ErrorKind;

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum NextStep {
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
pub(crate) struct RetryState {
    policy: RetryPolicy,
    attempts: u32,
    reauthenticated: bool,
}

impl RetryState {
    /// A request about to make its first attempt under `policy`.
    #[must_use]
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            attempts: 0,
            reauthenticated: false,
        }
    }

    /// Attempts made so far.
    #[cfg(test)]
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Counts an attempt about to be sent; returns its number (1 for the first).
    pub(crate) fn start_attempt(&mut self) -> u32 {
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
    pub(crate) fn next(
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
    use crate::settings::retry::RetryAfter;
    use http::StatusCode;

    fn status(code: u16, retry_after: Option<u64>) -> Outcome {
        Outcome::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: retry_after.map(|s| RetryAfter::Delay(Duration::from_secs(s))),
        }
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

    fn throttled() -> Outcome {
        status(429, Some(1))
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
}
