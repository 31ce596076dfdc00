//! Token lifetime as data: given `now`, a held token is fresh, due for refresh, or expired.
//!
//! Both kinds of token the toolkit holds expire: the Entra ID access token (about an
//! hour) and the embed token (no later than the access token that minted it). Refreshing
//! inside a margin before expiry keeps a request from racing the deadline.

use std::time::{Duration, SystemTime};

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

#[cfg(test)]
mod tests {
    use super::*;

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
