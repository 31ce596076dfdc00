//! Where bearer tokens come from, and how they are kept: cached, refreshed ahead of
//! expiry by one task at a time, kept when a refresh fails while still valid.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use pbi_embed_core::{AccessToken, BearerToken, ClientCredentials, ExecuteError, HeldToken};

use crate::Error;

/// Any source of bearer tokens for the Power BI REST API: managed identity, an Azure
/// identity library, a user's own sign-in. The client caches what it returns and asks
/// again ahead of expiry.
///
/// Closures returning a future of `Result<BearerToken, _>` are token sources.
pub trait TokenSource: Send + Sync + 'static {
    /// A bearer token and its expiry.
    ///
    /// # Errors
    /// Any error; it reaches the caller as [`ExecuteError::TokenSource`].
    fn token(&self) -> TokenFuture<'_>;
}

/// The future a [`TokenSource`] returns.
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<BearerToken, Box<dyn StdError + Send + Sync>>> + Send + 'a>>;

impl<F, Fut> TokenSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<BearerToken, Box<dyn StdError + Send + Sync>>> + Send + 'static,
{
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(self())
    }
}

/// How the client authenticates.
pub(crate) enum Credential {
    /// A service principal signing in with its client secret.
    ServicePrincipal(ClientCredentials),
    /// A bearer token given once; it cannot be renewed.
    Fixed(BearerToken),
    /// A caller's token source.
    Source(Box<dyn TokenSource>),
}

impl Credential {
    /// Whether a new token can be had after Power BI says the current one expired.
    pub(crate) fn renewable(&self) -> bool {
        !matches!(self, Self::Fixed(_))
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServicePrincipal(op) => f
                .debug_struct("ServicePrincipal")
                .field("tenant", op.tenant())
                .field("client_id", op.client_id())
                .finish_non_exhaustive(),
            Self::Fixed(_) => f.write_str("Fixed(AccessToken([redacted]))"),
            Self::Source(_) => f.write_str("Source(..)"),
        }
    }
}

/// The cached bearer token.
#[derive(Debug, Default)]
pub(crate) struct BearerCache {
    held: Mutex<Option<HeldToken>>,
    /// Held while renewing: one renewal at a time.
    renewing: tokio::sync::Mutex<()>,
}

impl BearerCache {
    /// The cached token if it is fresh and not of the `rejected` generation.
    pub(crate) fn fresh(&self, margin: Duration, rejected: Option<u64>) -> Option<HeldToken> {
        lock(&self.held)
            .as_ref()
            .filter(|held| held.is_fresh(SystemTime::now(), margin, rejected))
            .cloned()
    }

    /// A usable bearer token: the cached one while fresh, else a renewed one. With
    /// `rejected`, the token of that generation is not reused.
    ///
    /// `fetch` gets a new token from the credential.
    pub(crate) async fn get<F: Future<Output = Result<BearerToken, Error>>>(
        &self,
        margin: Duration,
        rejected: Option<u64>,
        fetch: impl FnOnce() -> F,
    ) -> Result<HeldToken, Error> {
        let fresh = |held: &HeldToken| held.is_fresh(SystemTime::now(), margin, rejected);
        if let Some(held) = self.fresh(margin, rejected) {
            return Ok(held);
        }
        let _renewing = self.renewing.lock().await;
        // Someone else may have renewed while this task waited.
        let current = lock(&self.held).clone();
        if let Some(held) = current.clone().filter(fresh) {
            return Ok(held);
        }
        match fetch().await {
            Ok(token) => {
                let held = HeldToken::after(current.as_ref(), token);
                *lock(&self.held) = Some(held.clone());
                Ok(held)
            }
            Err(error) => match current.filter(|h| h.is_still_valid(SystemTime::now(), rejected)) {
                Some(still_valid) => {
                    tracing::warn!(error = %error, "renewing the access token failed; the current one is still valid");
                    Ok(still_valid)
                }
                None => Err(error),
            },
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bearer token from a fixed access token.
pub(crate) fn fixed(token: AccessToken) -> Credential {
    Credential::Fixed(BearerToken::without_expiry(token))
}

/// Maps a token source's error.
pub(crate) fn source_error(error: Box<dyn StdError + Send + Sync>) -> Error {
    ExecuteError::TokenSource(error)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn token(expires_in: u64) -> BearerToken {
        BearerToken::new(
            AccessToken::new("t"),
            SystemTime::now() + Duration::from_secs(expires_in),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refreshes_once_for_many_tasks() {
        let cache = std::sync::Arc::new(BearerCache::default());
        let fetches = std::sync::Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                tokio::spawn(async move {
                    cache
                        .get(Duration::from_secs(300), None, || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(token(3600))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn keeps_a_valid_token_when_renewal_fails_and_renews_a_rejected_one() {
        let cache = BearerCache::default();
        let margin = Duration::from_secs(300);
        let first = cache
            .get(margin, None, || async { Ok(token(200)) })
            .await
            .unwrap();
        // Inside the margin: a renewal is tried, fails, and the old token is kept.
        let failing = || async { Err(ExecuteError::BodyTooLarge { limit: 1 }) };
        let kept = cache.get(margin, None, failing).await.unwrap();
        assert_eq!(kept.generation, first.generation);
        // Rejected by Power BI: not reused even though it has not expired.
        let err = cache
            .get(margin, Some(first.generation), failing)
            .await
            .unwrap_err();
        assert!(matches!(err, ExecuteError::BodyTooLarge { .. }));
        let renewed = cache
            .get(margin, Some(first.generation), || async { Ok(token(3600)) })
            .await
            .unwrap();
        assert_eq!(renewed.generation, first.generation + 1);
    }
}
