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
    /// When it was obtained (its lifetime is counted from here).
    obtained_at: Option<SystemTime>,
}

impl HeldToken {
    /// `token`, obtained at `now` (if known), held after `previous` (if any).
    pub(crate) fn after(previous: Option<&Self>, token: BearerToken, now: Option<SystemTime>) -> Self {
        Self {
            token,
            generation: previous.map_or(1, |p| p.generation.saturating_add(1)),
            obtained_at: now,
        }
    }

    /// Whether to send it without renewing: fresh at `now` and not the `rejected` one.
    /// The renewal margin is at most half the token's lifetime: a token shorter than the
    /// margin (a managed identity may hand out one) is still used for half its life,
    /// rather than renewed at every call.
    pub(crate) fn is_fresh(&self, now: SystemTime, margin: Duration, rejected: Option<u64>) -> bool {
        let lifetime = match (self.obtained_at, self.token.expires_at) {
            (Some(obtained), Some(expires)) => expires.duration_since(obtained).unwrap_or_default(),
            _ => Duration::MAX,
        };
        let margin = margin.min(lifetime / 2);
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

/// Sign-ins start at most this many at once, then at most one each
/// [`SIGN_IN_INTERVAL`]: whatever an identity endpoint answers (a token shorter than a
/// second, a server that keeps failing), the client never hammers it.
const SIGN_IN_BURST: u32 = 3;
/// See [`SIGN_IN_BURST`].
const SIGN_IN_INTERVAL: Duration = Duration::from_secs(1);

/// What a call should do to get a bearer token.
#[derive(Debug)]
pub(crate) enum BearerNeed {
    /// Send this one.
    Use(HeldToken),
    /// Send this one, and hand its renewal to background work: it is due, but still
    /// valid, so no caller need wait on a sign-in.
    UseAndRenewBehind(HeldToken),
    /// This call renews it (it now holds the renewal).
    Renew,
    /// Another call is renewing it and the held one cannot be sent: wait for it.
    Wait,
    /// No token can be sent and no sign-in may start for this long.
    Hold(Duration),
}

/// The session's bearer token and its renewal.
#[derive(Debug, Default)]
pub(crate) struct BearerState {
    held: Option<HeldToken>,
    /// The generation Power BI rejected.
    rejected: Option<u64>,
    /// The call renewing the token.
    renewing: Option<u64>,
    /// A renewal was handed to background work (until it starts, or the token can no
    /// longer be sent and a caller renews it).
    behind: bool,
    /// No renewal before this instant (set after a renewal failed).
    cool_down_until: Option<SystemTime>,
    /// How many sign-ins may start now (at most [`SIGN_IN_BURST`]), as of `checked`.
    allowance: Option<(u32, SystemTime)>,
}

impl BearerState {
    /// A state holding a token that never expires by itself (a fixed bearer token).
    pub(crate) fn fixed(token: AccessToken) -> Self {
        Self {
            held: Some(HeldToken::after(None, BearerToken::without_expiry(token), None)),
            ..Self::default()
        }
    }

    /// What call `ticket` should do at `now`, renewing `margin` ahead of expiry. A call
    /// that may hand the renewal to the background (`behind`) is never told to renew
    /// while the held token may still be sent.
    pub(crate) fn need(
        &mut self,
        ticket: u64,
        now: SystemTime,
        margin: Duration,
        behind: bool,
    ) -> BearerNeed {
        if let Some(held) = &self.held
            && held.is_fresh(now, margin, self.rejected)
        {
            return BearerNeed::Use(held.clone());
        }
        let usable = self.usable(now);
        let cooling = self.cool_down_until.is_some_and(|until| now < until);
        match (self.renewing, usable) {
            (_, Some(held)) if cooling => BearerNeed::Use(held),
            (None, Some(held)) if behind && self.behind => BearerNeed::Use(held),
            (None, Some(held)) if behind => {
                self.behind = true;
                BearerNeed::UseAndRenewBehind(held)
            }
            (Some(other), Some(held)) if other != ticket => BearerNeed::Use(held),
            (Some(other), None) if other != ticket => BearerNeed::Wait,
            (_, usable) => match (self.may_start(now), usable) {
                (Ok(()), _) => {
                    self.renewing = Some(ticket);
                    BearerNeed::Renew
                }
                (Err(_), Some(held)) => BearerNeed::Use(held),
                (Err(wait), None) => BearerNeed::Hold(wait),
            },
        }
    }

    /// Whether a sign-in may start at `now` (it is then counted), or how long until one
    /// may: a bucket of [`SIGN_IN_BURST`] starts, refilled one each [`SIGN_IN_INTERVAL`].
    fn may_start(&mut self, now: SystemTime) -> Result<(), Duration> {
        let (mut left, mut since) = self.allowance.unwrap_or((SIGN_IN_BURST, now));
        let elapsed = now.duration_since(since).unwrap_or_default();
        let refills = elapsed.as_nanos() / SIGN_IN_INTERVAL.as_nanos();
        if refills > 0 {
            let refills = u32::try_from(refills).unwrap_or(u32::MAX);
            left = left.saturating_add(refills).min(SIGN_IN_BURST);
            since = since
                .checked_add(SIGN_IN_INTERVAL.saturating_mul(refills))
                .unwrap_or(now);
        }
        if left == SIGN_IN_BURST {
            // Full: the next refill counts from this start.
            since = now;
        }
        if left == 0 {
            self.allowance = Some((0, since));
            let waited = now.duration_since(since).unwrap_or_default();
            return Err(SIGN_IN_INTERVAL.saturating_sub(waited));
        }
        self.allowance = Some((left - 1, since));
        Ok(())
    }

    /// A renewal by `ticket` gave `token`, at `now`.
    pub(crate) fn renewed(&mut self, token: BearerToken, now: SystemTime) -> HeldToken {
        let held = HeldToken::after(self.held.as_ref(), token, Some(now));
        self.held = Some(held.clone());
        self.renewing = None;
        self.behind = false;
        self.cool_down_until = None;
        held
    }

    /// A renewal failed at `now`: the held token, if it may still be sent.
    pub(crate) fn renewal_failed(&mut self, now: SystemTime) -> Option<HeldToken> {
        self.renewing = None;
        self.behind = false;
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
            Some(now - Duration::from_secs(3400)),
        );
        assert_eq!(first.generation, 1);
        assert!(!first.is_fresh(now, margin, None), "inside the margin");
        assert!(first.is_still_valid(now, None));
        assert!(!first.is_still_valid(now, Some(1)), "rejected by Power BI");
        let second = HeldToken::after(
            Some(&first),
            BearerToken::new(AccessToken::new("b"), now + Duration::from_secs(3600)),
            Some(now),
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
    fn a_due_but_valid_token_is_renewed_behind_the_callers_once() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(300);
        let mut state = BearerState::default();
        assert!(
            matches!(state.need(1, now, margin, true), BearerNeed::Renew),
            "nothing to send: the caller signs in"
        );
        // An hour-long token with 200 s left: inside the 300 s margin.
        state.renewed(
            token(now + Duration::from_secs(200)),
            now - Duration::from_secs(3400),
        );
        // Inside the margin: the first caller hands the renewal out, the next just send.
        assert!(matches!(
            state.need(2, now, margin, true),
            BearerNeed::UseAndRenewBehind(_)
        ));
        assert!(matches!(state.need(3, now, margin, true), BearerNeed::Use(_)));
        // The background work renews (it may not hand out again).
        assert!(matches!(state.need(4, now, margin, false), BearerNeed::Renew));
        assert!(matches!(state.need(5, now, margin, true), BearerNeed::Use(_)));
        state.renewal_failed(now);
        // Failed: after the cool-down, it is handed out again.
        let later = now + RENEWAL_COOL_DOWN;
        assert!(matches!(
            state.need(6, later, margin, true),
            BearerNeed::UseAndRenewBehind(_)
        ));
        // Handed out but never run, and the token expired: a caller renews itself.
        let expired = now + Duration::from_secs(201);
        assert!(matches!(state.need(7, expired, margin, true), BearerNeed::Renew));
    }

    #[test]
    fn one_renews_while_others_use_the_valid_token_or_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(300);
        let mut state = BearerState::default();
        assert!(matches!(state.need(1, now, margin, false), BearerNeed::Renew));
        assert!(
            matches!(state.need(2, now, margin, false), BearerNeed::Wait),
            "nothing to send yet"
        );
        // A token obtained an hour ago, with 200 s left: inside the 300 s margin.
        let held = state.renewed(
            token(now + Duration::from_secs(200)),
            now - Duration::from_secs(3400),
        );
        assert_eq!(held.generation, 1);
        // Inside the margin: call 3 renews, call 4 sends the still-valid token meanwhile.
        assert!(matches!(state.need(3, now, margin, false), BearerNeed::Renew));
        assert!(matches!(state.need(4, now, margin, false), BearerNeed::Use(h) if h.generation == 1));
        // The renewal fails: the valid token is kept, and no renewal for a while.
        assert_eq!(state.renewal_failed(now).map(|h| h.generation), Some(1));
        assert!(matches!(state.need(5, now, margin, false), BearerNeed::Use(_)));
        let later = now + RENEWAL_COOL_DOWN;
        assert!(matches!(state.need(5, later, margin, false), BearerNeed::Renew));
        assert!(state.release(5));
        assert!(!state.is_renewing());
    }

    #[test]
    fn a_rejected_token_is_never_sent_again() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(300);
        let mut state = BearerState::default();
        assert!(matches!(state.need(1, now, margin, false), BearerNeed::Renew));
        state.renewed(token(now + Duration::from_secs(3600)), now);
        state.reject(1);
        assert!(matches!(state.need(2, now, margin, false), BearerNeed::Renew));
        assert!(matches!(state.need(3, now, margin, false), BearerNeed::Wait));
        assert!(state.renewal_failed(now).is_none());
        let mut fixed = BearerState::fixed(AccessToken::new("f"));
        assert!(matches!(fixed.need(1, now, margin, false), BearerNeed::Use(_)));
        fixed.reject(1);
        assert!(matches!(fixed.need(1, now, margin, false), BearerNeed::Renew));
    }

    #[test]
    fn a_token_shorter_than_the_margin_is_used_for_half_its_life() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(300);
        let mut state = BearerState::default();
        assert!(matches!(state.need(1, now, margin, false), BearerNeed::Renew));
        state.renewed(token(now + Duration::from_secs(60)), now);
        assert!(matches!(
            state.need(2, now + Duration::from_secs(29), margin, false),
            BearerNeed::Use(_)
        ));
        assert!(matches!(
            state.need(3, now + Duration::from_secs(30), margin, false),
            BearerNeed::Renew
        ));
    }

    #[test]
    fn sign_ins_start_three_at_once_then_one_a_second() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(300);
        let mut state = BearerState::default();
        let mut started = Vec::new();
        // An endpoint whose tokens are always expired: every call wants a new one.
        for tenth in 0..50 {
            let at = now + Duration::from_millis(100 * tenth);
            match state.need(tenth, at, margin, false) {
                BearerNeed::Renew => {
                    started.push(tenth);
                    assert!(state.renewal_failed(at).is_none());
                }
                BearerNeed::Hold(wait) => assert!(wait <= SIGN_IN_INTERVAL && !wait.is_zero()),
                other => panic!("{other:?}"),
            }
        }
        // Three at once, then one a second over the five seconds.
        assert_eq!(started, [0, 1, 2, 10, 20, 30, 40]);
    }
}
