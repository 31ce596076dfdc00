//! What the running emulator holds: the fixture, its signing key, the tokens it minted,
//! request counts, faults and limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::access_token::AccessTokenSigner;
use crate::faults::Faults;
use crate::fixture::Fixture;
use crate::route::Route;
use crate::tokens::{Signer, TokenStore};

/// A per-principal limit on GenerateToken calls: at most `requests` in each window of
/// `per_seconds`; more are answered 429 with `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window, in seconds.
    pub per_seconds: u64,
}

/// Request counts, by route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Requests received, by route name (faulted ones included).
    pub requests: HashMap<String, u64>,
    /// Embed tokens minted.
    pub minted: u64,
    /// Access tokens issued.
    pub access_tokens_issued: u64,
    /// Bytes the remembered minted-token records hold, approximately (bounded at 64 MiB).
    pub remembered_bytes: u64,
    /// The most requests answered at once (control routes aside): above one, a client
    /// sent requests side by side.
    pub most_at_once: u64,
}

/// Counts a request as being answered while it lives.
pub(crate) struct Answering<'s>(&'s AtomicU64);

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The longest access-token lifetime the emulator issues: a day, as the clients accept.
/// The most `setAccessToken` token ids remembered.
const MAX_TOKENS_SET: usize = 10_000;

pub(crate) const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

pub(crate) struct State {
    pub(crate) fixture: Fixture,
    /// Where embed URLs point.
    pub(crate) embed_base: String,
    /// The emulator's own base URL, `{scheme}://{addr}`.
    pub(crate) base_url: String,
    /// The host names it answers to besides loopback ones (its TLS names, its embed
    /// host): what a control request's `Host` and `Origin` may name.
    pub(crate) hosts: Vec<String>,
    pub(crate) signer: Signer,
    /// Signs and checks access tokens.
    pub(crate) access: AccessTokenSigner,
    /// Token ids embed pages accepted through `setAccessToken`, in order (bounded).
    tokens_set: Mutex<Vec<String>>,
    /// Signs users' tokens once their key has been rotated (before that, `access` does).
    pub(crate) user_key: Mutex<Option<std::sync::Arc<AccessTokenSigner>>>,
    /// Certificates registered at run time: (client id, PEM).
    pub(crate) certificates: Mutex<Vec<(String, String)>>,
    /// Client assertions' `jti` values already used.
    pub(crate) used_assertions: crate::assertion::UsedAssertions,
    pub(crate) tokens: TokenStore,
    pub(crate) faults: Faults,
    counts: [AtomicU64; Route::ALL.len()],
    pub(crate) minted: AtomicU64,
    pub(crate) issued: AtomicU64,
    /// Requests being answered now, and the most at once.
    at_once: (AtomicU64, AtomicU64),
    access_token_lifetime_ms: AtomicU64,
    rate_limit: Mutex<Option<RateLimit>>,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl State {
    pub(crate) fn new(fixture: Fixture, base_url: String, embed_base: String) -> std::io::Result<Self> {
        let lifetime = fixture
            .access_token_lifetime_seconds
            .min(MAX_ACCESS_TOKEN_LIFETIME.as_secs())
            .saturating_mul(1000);
        let access = AccessTokenSigner::generate().map_err(std::io::Error::other)?;
        Ok(Self {
            access,
            user_key: Mutex::new(None),
            tokens_set: Mutex::new(Vec::new()),
            used_assertions: crate::assertion::UsedAssertions::default(),
            certificates: Mutex::new(Vec::new()),
            fixture,
            embed_base,
            base_url,
            hosts: Vec::new(),
            signer: Signer::random(),
            tokens: TokenStore::default(),
            faults: Faults::default(),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            minted: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            at_once: (AtomicU64::new(0), AtomicU64::new(0)),
            access_token_lifetime_ms: AtomicU64::new(lifetime),
            rate_limit: Mutex::new(None),
            windows: Mutex::new(HashMap::new()),
        })
    }

    /// The certificates (PEM) registered on `client_id`: the fixture's and those added at
    /// run time.
    pub(crate) fn certificates_of(&self, client_id: &str) -> Vec<String> {
        let mut certificates = self
            .fixture
            .principal(client_id)
            .map(|p| p.certificates.clone())
            .unwrap_or_default();
        if let Ok(added) = self.certificates.lock() {
            certificates.extend(
                added
                    .iter()
                    .filter(|(id, _)| id.eq_ignore_ascii_case(client_id))
                    .map(|(_, pem)| pem.clone()),
            );
        }
        certificates
    }

    /// The resource access tokens are for: the scope without `/.default`.
    pub(crate) fn resource(&self) -> &str {
        let scope = self.fixture.scope.as_str();
        scope.strip_suffix("/.default").unwrap_or(scope)
    }

    /// Signs an access token for a principal that signed in with a secret, valid for
    /// `lifetime`, and counts it.
    pub(crate) fn issue_access_token(&self, client_id: &str, lifetime: Duration) -> String {
        self.issue_access_token_as(client_id, lifetime, "1")
    }

    /// The same, with `appidacr` saying how the app authenticated (`"2"`: a certificate).
    pub(crate) fn issue_access_token_as(
        &self,
        client_id: &str,
        lifetime: Duration,
        appidacr: &str,
    ) -> String {
        let mut claims =
            crate::access_token::app_claims(&self.fixture.tenant.id, client_id, self.resource(), lifetime);
        appidacr.clone_into(&mut claims.appidacr);
        self.issued.fetch_add(1, Ordering::Relaxed);
        self.access.sign(&claims)
    }

    /// An embed page accepted `token_id` through `setAccessToken`.
    pub(crate) fn record_token_set(&self, token_id: &str) {
        let mut set = self
            .tokens_set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if set.len() < MAX_TOKENS_SET {
            set.push(token_id.to_owned());
        }
    }

    /// The token ids embed pages accepted through `setAccessToken`, in order.
    pub(crate) fn tokens_set(&self) -> Vec<String> {
        self.tokens_set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn count(&self, route: Route) {
        if let Some(c) = self.counts.get(route.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn requests(&self, route: Route) -> u64 {
        self.counts
            .get(route.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            requests: Route::ALL
                .iter()
                .map(|r| (r.name().to_owned(), self.requests(*r)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            minted: self.minted.load(Ordering::Relaxed),
            access_tokens_issued: self.issued.load(Ordering::Relaxed),
            remembered_bytes: u64::try_from(self.tokens.bytes()).unwrap_or(u64::MAX),
            most_at_once: self.at_once.1.load(Ordering::Relaxed),
        }
    }

    /// A request is being answered until the guard drops.
    pub(crate) fn answering(&self) -> Answering<'_> {
        let now = self.at_once.0.fetch_add(1, Ordering::Relaxed) + 1;
        self.at_once.1.fetch_max(now, Ordering::Relaxed);
        Answering(&self.at_once.0)
    }

    pub(crate) fn reset_stats(&self) {
        self.counts.iter().for_each(|c| c.store(0, Ordering::Relaxed));
        self.at_once.1.store(0, Ordering::Relaxed);
        self.minted.store(0, Ordering::Relaxed);
        self.issued.store(0, Ordering::Relaxed);
    }

    pub(crate) fn access_token_lifetime(&self) -> Duration {
        Duration::from_millis(self.access_token_lifetime_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn set_access_token_lifetime(&self, lifetime: Duration) {
        let lifetime = lifetime.min(MAX_ACCESS_TOKEN_LIFETIME);
        let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        self.access_token_lifetime_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn set_rate_limit(&self, limit: Option<RateLimit>) {
        *self
            .rate_limit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = limit;
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Counts a GenerateToken call against the principal's window; `Some(wait)` when it
    /// is over the limit.
    pub(crate) fn over_rate_limit(&self, client_id: &str, now: Instant) -> Option<Duration> {
        let limit = (*self
            .rate_limit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))?;
        let window = Duration::from_secs(limit.per_seconds.max(1));
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = windows.entry(client_id.to_ascii_lowercase()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= limit.requests {
            return Some(window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        None
    }
}
