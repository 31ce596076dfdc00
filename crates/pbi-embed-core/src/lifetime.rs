//! Token lifetime as data: given `now`, a held token is fresh, due for refresh, or expired.
//!
//! Both kinds of token the toolkit holds expire: the Entra ID access token (about an
//! hour) and the embed token (no later than the access token that minted it). Refreshing
//! inside a margin before expiry keeps a request from racing the deadline.

use std::time::{Duration, SystemTime};

use crate::secret::AccessToken;

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

#[cfg(test)]
mod tests {
    use super::*;

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
