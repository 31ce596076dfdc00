//! Where a client's bearer token comes from, and when it is renewed: decisions as data.
//!
//! One token is held per session. A call uses it while it is fresh; when it is due for
//! renewal, one call renews it while the others keep using it as long as it is still
//! valid (or wait, when it is not). A token Power BI rejected (403 `TokenExpired`) is
//! never sent again. A renewal that fails while the held token is still valid is not
//! tried again for a short while, so an Entra ID outage does not slow every call.

use std::time::{Duration, SystemTime};

use crate::wire::lifetime::Freshness;
use crate::wire::secret::AccessToken;

/// A bearer token for the Power BI REST API and when it expires, if known.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BearerToken {
    /// The Entra ID access token.
    pub access_token: AccessToken,
    /// Its expiry; `None` for a token whose lifetime the caller does not know (it is then
    /// never refreshed ahead of time, only after Power BI says it expired).
    pub expires_at: Option<SystemTime>,
}

impl BearerToken {
    /// A token that expires at `expires_at`.
    #[must_use]
    pub fn new(access_token: AccessToken, expires_at: SystemTime) -> Self {
        Self {
            access_token,
            expires_at: Some(expires_at),
        }
    }

    /// A token of unknown lifetime.
    #[must_use]
    pub fn without_expiry(access_token: AccessToken) -> Self {
        Self {
            access_token,
            expires_at: None,
        }
    }

    /// How usable the token is at `now`, refreshed `margin` ahead of expiry.
    #[must_use]
    pub fn freshness(&self, now: SystemTime, margin: Duration) -> Freshness {
        self.expires_at.map_or(Freshness::Fresh, |expires_at| {
            Freshness::at(expires_at, now, margin)
        })
    }
}

/// A bearer token a client holds, numbered so that one Power BI rejected (403
/// `TokenExpired`) is never sent again, even if its stated expiry says it could be.
#[derive(Clone, Debug)]
pub(crate) struct HeldToken {
    /// The token.
    pub(crate) token: BearerToken,
    /// 1 for the first token held, one more for each renewal.
    pub(crate) generation: u64,
}

impl HeldToken {
    /// `token`, held after `previous` (if any).
    pub(crate) fn after(previous: Option<&Self>, token: BearerToken) -> Self {
        Self {
            token,
            generation: previous.map_or(1, |p| p.generation.saturating_add(1)),
        }
    }

    /// Whether to send it without renewing: fresh at `now` and not the `rejected` one.
    pub(crate) fn is_fresh(&self, now: SystemTime, margin: Duration, rejected: Option<u64>) -> bool {
        !self.is_rejected(rejected) && self.token.freshness(now, margin) == Freshness::Fresh
    }

    /// Whether it may still be sent when renewing failed: not expired, not `rejected`.
    pub(crate) fn is_still_valid(&self, now: SystemTime, rejected: Option<u64>) -> bool {
        !self.is_rejected(rejected) && self.token.freshness(now, Duration::ZERO).is_usable()
    }

    fn is_rejected(&self, rejected: Option<u64>) -> bool {
        rejected == Some(self.generation)
    }
}

/// How long a failed renewal is not retried while the held token is still valid.
const RENEWAL_COOL_DOWN: Duration = Duration::from_secs(30);

/// What a call should do to get a bearer token.
#[derive(Debug)]
pub(crate) enum BearerNeed {
    /// Send this one.
    Use(HeldToken),
    /// This call renews it (it now holds the renewal).
    Renew,
    /// Another call is renewing it and the held one cannot be sent: wait for it.
    Wait,
}

/// The session's bearer token and its renewal.
#[derive(Debug, Default)]
pub(crate) struct BearerState {
    held: Option<HeldToken>,
    /// The generation Power BI rejected.
    rejected: Option<u64>,
    /// The call renewing the token.
    renewing: Option<u64>,
    /// No renewal before this instant (set after a renewal failed).
    cool_down_until: Option<SystemTime>,
}

impl BearerState {
    /// A state holding a token that never expires by itself (a fixed bearer token).
    pub(crate) fn fixed(token: AccessToken) -> Self {
        Self {
            held: Some(HeldToken::after(None, BearerToken::without_expiry(token))),
            ..Self::default()
        }
    }

    /// What call `ticket` should do at `now`, renewing `margin` ahead of expiry.
    pub(crate) fn need(&mut self, ticket: u64, now: SystemTime, margin: Duration) -> BearerNeed {
        if let Some(held) = &self.held
            && held.is_fresh(now, margin, self.rejected)
        {
            return BearerNeed::Use(held.clone());
        }
        let usable = self.usable(now);
        let cooling = self.cool_down_until.is_some_and(|until| now < until);
        match (self.renewing, usable) {
            (_, Some(held)) if cooling => BearerNeed::Use(held),
            (Some(other), Some(held)) if other != ticket => BearerNeed::Use(held),
            (Some(other), None) if other != ticket => BearerNeed::Wait,
            _ => {
                self.renewing = Some(ticket);
                BearerNeed::Renew
            }
        }
    }

    /// A renewal by `ticket` gave `token`.
    pub(crate) fn renewed(&mut self, token: BearerToken) -> HeldToken {
        let held = HeldToken::after(self.held.as_ref(), token);
        self.held = Some(held.clone());
        self.renewing = None;
        self.cool_down_until = None;
        held
    }

    /// A renewal failed at `now`: the held token, if it may still be sent.
    pub(crate) fn renewal_failed(&mut self, now: SystemTime) -> Option<HeldToken> {
        self.renewing = None;
        let usable = self.usable(now);
        if usable.is_some() {
            self.cool_down_until = now.checked_add(RENEWAL_COOL_DOWN);
        }
        usable
    }

    /// Power BI rejected the token of `generation`.
    pub(crate) fn reject(&mut self, generation: u64) {
        self.rejected = Some(self.rejected.map_or(generation, |g| g.max(generation)));
        self.cool_down_until = None;
    }

    /// Gives up a renewal `ticket` holds; whether it held one.
    pub(crate) fn release(&mut self, ticket: u64) -> bool {
        let held = self.renewing == Some(ticket);
        if held {
            self.renewing = None;
        }
        held
    }

    /// Whether a token that may still be sent is held.
    pub(crate) fn has_usable(&self, now: SystemTime) -> bool {
        self.usable(now).is_some()
    }

    /// Whether a call is renewing the token.
    pub(crate) fn is_renewing(&self) -> bool {
        self.renewing.is_some()
    }

    fn usable(&self, now: SystemTime) -> Option<HeldToken> {
        self.held
            .as_ref()
            .filter(|held| held.is_still_valid(now, self.rejected))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_tokens() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let margin = Duration::from_secs(300);
        let first = HeldToken::after(
            None,
            BearerToken::new(AccessToken::new("a"), now + Duration::from_secs(200)),
        );
        assert_eq!(first.generation, 1);
        assert!(!first.is_fresh(now, margin, None), "inside the margin");
        assert!(first.is_still_valid(now, None));
        assert!(!first.is_still_valid(now, Some(1)), "rejected by Power BI");
        let second = HeldToken::after(
            Some(&first),
            BearerToken::new(AccessToken::new("b"), now + Duration::from_secs(3600)),
        );
        assert_eq!(second.generation, 2);
        assert!(second.is_fresh(now, margin, Some(1)));
        assert!(!second.is_still_valid(now + Duration::from_secs(3600), None));
    }

    #[test]
    fn bearer_tokens() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let token = BearerToken::new(AccessToken::new("a"), t0);
        assert_eq!(token.freshness(t0, Duration::ZERO), Freshness::Expired);
        let forever = BearerToken::without_expiry(AccessToken::new("a"));
        assert_eq!(forever.freshness(t0, Duration::MAX), Freshness::Fresh);
        assert_eq!(format!("{token:?}").matches("[redacted]").count(), 1);
    }

    fn token(expires_at: SystemTime) -> BearerToken {
        BearerToken::new(AccessToken::new("t"), expires_at)
    }

    #[test]
    fn one_renews_while_others_use_the_valid_token_or_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(300);
        let mut state = BearerState::default();
        assert!(matches!(state.need(1, now, margin), BearerNeed::Renew));
        assert!(
            matches!(state.need(2, now, margin), BearerNeed::Wait),
            "nothing to send yet"
        );
        let held = state.renewed(token(now + Duration::from_secs(200)));
        assert_eq!(held.generation, 1);
        // Inside the margin: call 3 renews, call 4 sends the still-valid token meanwhile.
        assert!(matches!(state.need(3, now, margin), BearerNeed::Renew));
        assert!(matches!(state.need(4, now, margin), BearerNeed::Use(h) if h.generation == 1));
        // The renewal fails: the valid token is kept, and no renewal for a while.
        assert_eq!(state.renewal_failed(now).map(|h| h.generation), Some(1));
        assert!(matches!(state.need(5, now, margin), BearerNeed::Use(_)));
        let later = now + RENEWAL_COOL_DOWN;
        assert!(matches!(state.need(5, later, margin), BearerNeed::Renew));
        assert!(state.release(5));
        assert!(!state.is_renewing());
    }

    #[test]
    fn a_rejected_token_is_never_sent_again() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(300);
        let mut state = BearerState::default();
        assert!(matches!(state.need(1, now, margin), BearerNeed::Renew));
        state.renewed(token(now + Duration::from_secs(3600)));
        state.reject(1);
        assert!(matches!(state.need(2, now, margin), BearerNeed::Renew));
        assert!(matches!(state.need(3, now, margin), BearerNeed::Wait));
        assert!(state.renewal_failed(now).is_none());
        let mut fixed = BearerState::fixed(AccessToken::new("f"));
        assert!(matches!(fixed.need(1, now, margin), BearerNeed::Use(_)));
        fixed.reject(1);
        assert!(matches!(fixed.need(1, now, margin), BearerNeed::Renew));
    }
}
