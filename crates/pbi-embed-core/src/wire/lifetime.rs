//! Token lifetime as data: given `now`, a held token is fresh, due for refresh, or expired.
//!
//! Both kinds of token the toolkit holds expire: the Entra ID access token (about an
//! hour) and the embed token (no later than the access token that minted it). Refreshing
//! inside a margin before expiry keeps a request from racing the deadline.

use std::time::{Duration, SystemTime};

use crate::wire::secret::AccessToken;

/// How usable a token is at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Freshness {
    /// Valid, and not yet inside the refresh margin.
    Fresh,
    /// Still valid, but inside the refresh margin: get a new one (keep using this one if
    /// that fails).
    RefreshDue,
    /// At or past its expiry: do not use it.
    Expired,
}

impl Freshness {
    /// The freshness at `now` of a token that expires at `expires_at`, refreshed `margin`
    /// ahead of expiry. Later `now` never gives a fresher answer.
    #[must_use]
    pub fn at(expires_at: SystemTime, now: SystemTime, margin: Duration) -> Self {
        if now >= expires_at {
            Self::Expired
        } else if now.checked_add(margin).is_none_or(|t| t >= expires_at) {
            Self::RefreshDue
        } else {
            Self::Fresh
        }
    }

    /// Whether the token may still be sent (fresh or due for refresh).
    #[must_use]
    pub fn is_usable(self) -> bool {
        self != Self::Expired
    }
}

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

    #[test]
    fn boundaries() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let exp = t0 + Duration::from_secs(3600);
        let m = Duration::from_secs(300);
        assert_eq!(Freshness::at(exp, t0, m), Freshness::Fresh);
        assert_eq!(
            Freshness::at(exp, exp - m - Duration::from_nanos(1), m),
            Freshness::Fresh
        );
        assert_eq!(Freshness::at(exp, exp - m, m), Freshness::RefreshDue);
        assert_eq!(
            Freshness::at(exp, exp - Duration::from_nanos(1), m),
            Freshness::RefreshDue
        );
        assert_eq!(Freshness::at(exp, exp, m), Freshness::Expired);
        assert_eq!(
            Freshness::at(exp, exp - Duration::from_secs(1), Duration::MAX),
            Freshness::RefreshDue
        );
        assert!(Freshness::RefreshDue.is_usable());
        assert!(!Freshness::Expired.is_usable());
    }
}
