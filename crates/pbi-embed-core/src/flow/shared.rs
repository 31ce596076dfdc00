//! What every driver's client holds: the session behind its one lock, and the pump that
//! steps one call on it.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::flow::call::{Action, Call, Now};
use crate::flow::io::Event;
use crate::flow::session::Session;
use crate::wire::cloud::Cloud;

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

    /// A copy of the session's counts ([`Session::stats`]).
    #[must_use]
    pub fn stats(&self) -> crate::ClientStats {
        self.lock().stats().clone()
    }

    /// See [`Session::warm_up_interval`].
    #[must_use]
    pub fn warm_up_interval(&self) -> std::time::Duration {
        self.lock().warm_up_interval()
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
