//! Who runs: the calls of one session, which of them leads each fetch that identical
//! requests share, who is parked waiting on another, and the refresh-ahead work handed
//! out. Plain bookkeeping; the session asks it and tells it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::flow::cache::CacheKey;

/// The session's calls, as far as their scheduling goes.
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    /// The last ticket handed out; each call gets the next.
    tickets: u64,
    /// Which call fetches each shared request right now.
    flights: HashMap<CacheKey, u64>,
    /// The refreshes handed out (refresh-ahead), and when: one at a time per item.
    refreshing: HashMap<CacheKey, Instant>,
    /// How many calls are parked.
    parked: usize,
    /// Whether something parked calls wait on was let go since the last look.
    woken: bool,
}

/// Whether a call leads the fetch of a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flight {
    /// This call fetches it (it did already, or does from now on).
    Leading,
    /// Another call fetches it.
    Joined,
}

impl Scheduler {
    /// A ticket for a new call.
    pub(crate) fn admit(&mut self) -> u64 {
        self.tickets = self.tickets.wrapping_add(1);
        self.tickets
    }

    /// Call `ticket` fetches `key`, unless another does.
    pub(crate) fn lead(&mut self, key: &CacheKey, ticket: u64) -> Flight {
        match self.flights.get(key) {
            Some(&owner) if owner != ticket => Flight::Joined,
            Some(_) => Flight::Leading,
            None => {
                self.flights.insert(key.clone(), ticket);
                Flight::Leading
            }
        }
    }

    /// Whether any call fetches `key`.
    pub(crate) fn is_fetching(&self, key: &CacheKey) -> bool {
        self.flights.contains_key(key)
    }

    /// The fetch of `key` is over: those waiting on it may go on.
    pub(crate) fn land(&mut self, key: &CacheKey) {
        if self.flights.remove(key).is_some() {
            self.woken = true;
        }
    }

    /// A refresh of `key` may be handed out at `now`: none is under way (one whose driver
    /// never reported back is given up after `patience`), and no call fetches it.
    pub(crate) fn may_refresh(&self, key: &CacheKey, now: Instant, patience: Duration) -> bool {
        let under_way = self
            .refreshing
            .get(key)
            .is_some_and(|started| now.saturating_duration_since(*started) < patience);
        !under_way && !self.is_fetching(key)
    }

    /// A refresh of `key` was handed out at `now`.
    pub(crate) fn refreshing(&mut self, key: CacheKey, now: Instant) {
        self.refreshing.insert(key, now);
    }

    /// The refresh of `key` is over.
    pub(crate) fn refreshed(&mut self, key: &CacheKey) {
        self.refreshing.remove(key);
    }

    /// A call parks.
    pub(crate) fn park(&mut self) {
        self.parked += 1;
    }

    /// A parked call steps again.
    pub(crate) fn unpark(&mut self) {
        self.parked = self.parked.saturating_sub(1);
    }

    /// Something parked calls may wait on was let go (a bearer token renewed, a fetch
    /// abandoned).
    pub(crate) fn wake(&mut self) {
        self.woken = true;
    }

    /// Whether parked calls (other than the one stepping, when `stepping_parked`) should be
    /// woken now; clears the mark.
    pub(crate) fn take_wake(&mut self, stepping_parked: bool) -> bool {
        std::mem::take(&mut self.woken) && self.parked > usize::from(stepping_parked)
    }

    /// How many fetches calls lead right now.
    pub(crate) fn in_flight(&self) -> usize {
        self.flights.len()
    }
}
