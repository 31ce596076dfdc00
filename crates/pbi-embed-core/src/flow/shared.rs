//! What every driver's client holds: the session behind its one lock, and the token
//! sources callers bring.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::flow::call::{Action, Call, Event, Now};
use crate::flow::error::BoxError;
use crate::flow::session::Session;
use crate::wire::cloud::Cloud;
use crate::wire::lifetime::BearerToken;

/// A [`Session`] behind its lock. Steps hold the lock for microseconds and never across
/// IO or an `.await`; a panic while it was held does not poison it for others.
pub struct SharedSession {
    cloud: Cloud,
    session: Mutex<Session>,
}

impl SharedSession {
    /// Shares `session`.
    #[must_use]
    pub fn new(session: Session) -> Self {
        Self {
            cloud: session.cloud().clone(),
            session: Mutex::new(session),
        }
    }

    /// The cloud, with any custom hosts.
    #[must_use]
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// The session, locked. Drop the guard before any IO.
    pub fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets every cached embed token and item metadata.
    pub fn clear_caches(&self) {
        self.lock().clear_caches();
    }

    /// How many fetches calls are leading right now: zero when no call is under way,
    /// also after calls were dropped half-way.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight()
    }

    /// Starts pumping `call`; `wake_parked` wakes every call parked on this session.
    pub fn pump<'s, 'r, T, W: Fn()>(&'s self, call: Call<'r, T>, wake_parked: W) -> Pump<'s, 'r, T, W> {
        Pump {
            shared: self,
            call,
            wake_parked,
        }
    }
}

/// A call a driver is pumping on a [`SharedSession`]. Dropped before it is done (a
/// cancelled future, a panic), it abandons the call, so no other call waits on what it
/// was fetching.
#[must_use]
pub struct Pump<'s, 'r, T, W: Fn()> {
    shared: &'s SharedSession,
    call: Call<'r, T>,
    wake_parked: W,
}

impl<T, W: Fn()> Pump<'_, '_, T, W> {
    /// Steps the call (see [`Session::step`]), locking the session for the step only.
    pub fn step(&mut self, event: Event, now: Now, random: u32) -> Action<T> {
        let mut session = self.shared.lock();
        self.step_in(&mut session, event, now, random)
    }

    /// Steps the call with the session the driver has locked (to wait on it afterwards).
    pub fn step_in(&mut self, session: &mut Session, event: Event, now: Now, random: u32) -> Action<T> {
        session.step(&mut self.call, event, now, random, &self.wake_parked)
    }
}

impl<T, W: Fn()> Drop for Pump<'_, '_, T, W> {
    fn drop(&mut self) {
        if !self.call.is_finished() {
            self.shared.lock().abandon(&mut self.call, &self.wake_parked);
        }
    }
}

impl<T, W: Fn()> fmt::Debug for Pump<'_, '_, T, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pump")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SharedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("SharedSession");
        debug.field("cloud", &self.cloud);
        // Never wait for the lock here: Debug may run while it is held.
        if let Ok(session) = self.session.try_lock() {
            debug.field("in_flight", &session.in_flight());
        }
        debug.finish_non_exhaustive()
    }
}

/// A blocking source of bearer tokens for the Power BI REST API: a managed identity, an
/// Azure identity library, your own sign-in. The client caches what it returns and asks
/// again ahead of expiry. Closures `Fn() -> Result<BearerToken, BoxError>` are token sources.
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
