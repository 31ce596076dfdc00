//! Where a client's bearer token comes from, and when it is renewed: decisions as data.
//!
//! One token is held per session. A call uses it while it is fresh; when it is due for
//! renewal, one call renews it while the others keep using it as long as it is still
//! valid (or wait, when it is not). A token Power BI rejected (403 `TokenExpired`) is
//! never sent again. A renewal that fails while the held token is still valid is not
//! tried again for a short while, so an Entra ID outage does not slow every call.

use std::time::{Duration, SystemTime};

use crate::auth::azure_cli::AzureCli;
use crate::auth::entra::ClientCredentials;
use crate::auth::managed_identity::ManagedIdentity;
use crate::wire::lifetime::{BearerToken, HeldToken};
use crate::wire::secret::AccessToken;

/// How a client gets bearer tokens for the Power BI REST API.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Credential {
    /// A service principal with a client secret or certificate (the OAuth
    /// client-credentials grant).
    ServicePrincipal(ClientCredentials),
    /// A bearer token used as is. It cannot be renewed: once Power BI says it expired,
    /// calls fail with `TokenExpired`.
    BearerToken(AccessToken),
    /// The Azure host's managed identity (App Service, Functions, Container Apps, or the
    /// instance metadata service of a VM or AKS node).
    ManagedIdentity(ManagedIdentity),
    /// Whoever is signed in to the Azure CLI (developer machines): the flow runs `az`
    /// with [`Action::RunProgram`](crate::driver::Action::RunProgram).
    AzureCli(AzureCli),
    /// Tokens from the driver's own token source: the flow asks for one with
    /// [`Action::FetchToken`](crate::driver::Action::FetchToken).
    TokenSource,
}

impl Credential {
    /// What it is, in a few words for logs (never a secret).
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            Self::ServicePrincipal(op) => op.describe(),
            Self::BearerToken(_) => "a fixed bearer token",
            Self::ManagedIdentity(_) => "the host's managed identity",
            Self::AzureCli(_) => "the Azure CLI",
            Self::TokenSource => "the client's token source",
        }
    }

    /// Whether a new token can be had after Power BI says the current one expired.
    #[must_use]
    pub fn is_renewable(&self) -> bool {
        !matches!(self, Self::BearerToken(_))
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
