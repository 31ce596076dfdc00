//! Token sources: bearer tokens from the caller's own sign-in (an Azure identity library,
//! a vault), blocking or async. A client caches what they return and asks again ahead of
//! expiry, as for its own sign-ins.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use super::bearer::BearerToken;
use crate::wire::error::BoxError;

/// A blocking source of bearer tokens for the Power BI REST API: a managed identity, an
/// Azure identity library, your own sign-in. The client caches what it returns and asks
/// again ahead of expiry. Closures `Fn() -> Result<BearerToken, BoxError>` are token sources.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use pbi_embed_core::{AccessToken, BearerToken, BoxError, TokenSource};
///
/// // A vault that hands out tokens another process refreshes.
/// let from_vault = || -> Result<BearerToken, BoxError> {
///     let token = AccessToken::new("eyJ0eXAi...");
///     Ok(BearerToken::new(token, SystemTime::now() + Duration::from_secs(3600)))
/// };
/// let token = from_vault.token_for("https://analysis.windows.net/powerbi/api/.default")?;
/// assert!(token.expires_at.is_some());
/// // A driver's builder takes it: `Client::builder().token_source(from_vault)`.
/// # Ok::<(), BoxError>(())
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// A bearer token and its expiry.
    ///
    /// # Errors
    /// Any error; the call fails with [`ErrorKind::TokenSource`](crate::ErrorKind::TokenSource).
    fn token(&self) -> Result<BearerToken, BoxError>;

    /// A bearer token for `scope` (the client's cloud's Power BI scope, such as
    /// `https://analysis.windows.net/powerbi/api/.default`): what drivers call. By default
    /// the scope is ignored and [`token`](Self::token) answers; a source that serves many
    /// scopes (an Azure identity credential) uses it.
    ///
    /// # Errors
    /// As [`token`](Self::token).
    fn token_for(&self, scope: &str) -> Result<BearerToken, BoxError> {
        let _ = scope;
        self.token()
    }
}

impl<F> TokenSource for F
where
    F: Fn() -> Result<BearerToken, BoxError> + Send + Sync + 'static,
{
    fn token(&self) -> Result<BearerToken, BoxError> {
        self()
    }
}

/// The future an [`AsyncTokenSource`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<BearerToken, BoxError>> + Send + 'a>>;

/// An async source of bearer tokens, as [`TokenSource`] is a blocking one. Closures
/// returning a future of `Result<BearerToken, BoxError>` are token sources.
pub trait AsyncTokenSource: Send + Sync + 'static {
    /// A bearer token and its expiry.
    ///
    /// # Errors
    /// Any error; the call fails with [`ErrorKind::TokenSource`](crate::ErrorKind::TokenSource).
    fn token(&self) -> TokenFuture<'_>;

    /// A bearer token for `scope` (the client's cloud's Power BI scope): what drivers
    /// call. By default the scope is ignored and [`token`](Self::token) answers; a source
    /// that serves many scopes (an Azure identity credential) uses it.
    ///
    /// # Errors
    /// As [`token`](Self::token).
    fn token_for<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
        let _ = scope;
        self.token()
    }
}

impl<F, Fut> AsyncTokenSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<BearerToken, BoxError>> + Send + 'static,
{
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(self())
    }
}

/// A token source, boxed for a client builder: made from any [`TokenSource`] or
/// [`AsyncTokenSource`] with `into()`.
pub struct BoxedTokenSource<T: ?Sized>(Box<T>);

impl<T: ?Sized> BoxedTokenSource<T> {
    /// The source.
    #[must_use]
    pub fn get(&self) -> &T {
        &self.0
    }
}

impl<S: TokenSource> From<S> for BoxedTokenSource<dyn TokenSource> {
    fn from(source: S) -> Self {
        Self(Box::new(source))
    }
}

impl<S: AsyncTokenSource> From<S> for BoxedTokenSource<dyn AsyncTokenSource> {
    fn from(source: S) -> Self {
        Self(Box::new(source))
    }
}

impl<T: ?Sized> fmt::Debug for BoxedTokenSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxedTokenSource(..)")
    }
}
