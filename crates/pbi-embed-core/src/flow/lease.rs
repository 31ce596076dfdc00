//! A job's use of the store replicas share, as a machine.
//!
//! Before an embed token is fetched, the job looks for another replica's record; with
//! none it takes the lock, looks once more (the holder before may have stored it and let
//! go in between) and fetches. A replica that finds the lock taken looks again every
//! `poll` until the record appears; when the lock's time-to-live has passed it tries the
//! lock once more, and if it is still held (a lock left with no expiry, or a far longer
//! one) it fetches without it, so a stuck lock delays a call by one time-to-live at most.
//! Item metadata is only looked up: reading it is cheap and changes nothing.
//!
//! After fetching, [`Publish`] writes the record and gives the lock up, then answers. A
//! store that fails or is slow ends the lease: the job goes on as if there were none.

use std::time::{Duration, Instant};

use crate::flow::answer::Answer;
use crate::flow::store::{Op, StoreReply};
use crate::settings::client_settings::SharedSettings;
use crate::wire::error::BoxError;

/// A job consulting the shared store before it fetches.
#[derive(Debug)]
pub(crate) struct Lease {
    /// The record's key.
    record: String,
    /// The lock's key: for embed tokens only.
    lock: Option<String>,
    /// A refresh gives way to any other replica's fetch.
    refresh: bool,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Asked for the record, holding the lock or not; `since` when another replica's lock
    /// was first seen.
    Looking { locked: bool, since: Option<Instant> },
    /// Waiting to look again: another replica has held the lock since `since`.
    Polling { since: Instant },
    /// Asked for the lock.
    Locking { since: Option<Instant> },
}

/// What the job does after the lease's last step.
pub(crate) enum LeaseStep {
    /// Run this operation on the store.
    Ask(Op),
    /// Wait this long, then [`resume`](Lease::resume).
    Wait(Duration),
    /// Another replica's record: the answer, once the lock this job holds (if any) is
    /// given up.
    Found(Answer, Option<String>),
    /// Fetch from Power BI; then publish as this says (`None`: the store failed, leave it).
    Fetch(Option<Shared>),
    /// Nothing to do: a refresh another replica is making.
    Skip,
}

/// What a job that fetched tells the store afterwards.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where its record goes.
    pub(crate) record: String,
    /// The lock it holds, to give up.
    pub(crate) unlock: Option<String>,
}

impl Lease {
    /// Starts a lease on `record` (locked under `lock`, for an embed token).
    pub(crate) fn start(record: String, lock: Option<String>, refresh: bool) -> (Self, LeaseStep) {
        let ask = LeaseStep::Ask(Op::Get(record.clone()));
        let lease = Self {
            record,
            lock,
            refresh,
            state: State::Looking {
                locked: false,
                since: None,
            },
        };
        (lease, ask)
    }

    /// Goes on after a [`LeaseStep::Wait`]: looks again.
    pub(crate) fn resume(&mut self) -> LeaseStep {
        match self.state {
            State::Polling { since } => {
                self.state = State::Looking {
                    locked: false,
                    since: Some(since),
                };
                LeaseStep::Ask(Op::Get(self.record.clone()))
            }
            // Nothing else waits: ask again for what was asked.
            State::Looking { .. } => LeaseStep::Ask(Op::Get(self.record.clone())),
            State::Locking { .. } => LeaseStep::Fetch(None),
        }
    }

    /// The store answered. `usable` reads a record into an answer, if it is one this job
    /// may use; `now` and `remaining` time the polling.
    pub(crate) fn on_reply(
        &mut self,
        reply: Result<StoreReply, BoxError>,
        usable: impl FnOnce(Vec<u8>) -> Option<Answer>,
        settings: SharedSettings,
        now: Instant,
        remaining: Duration,
    ) -> LeaseStep {
        let Ok(reply) = reply else {
            // The store failed or was slow: on to Power BI without it.
            return LeaseStep::Fetch(None);
        };
        let poll = |since| {
            (
                State::Polling { since },
                LeaseStep::Wait(settings.poll.min(remaining)),
            )
        };
        let (state, step) = match (&self.state, reply) {
            (State::Looking { locked, since }, StoreReply::Record(record)) => {
                if let Some(answer) = record.and_then(usable) {
                    let unlock = self.lock.clone().filter(|_| *locked);
                    return LeaseStep::Found(answer, unlock);
                }
                match (&self.lock, *locked, *since) {
                    // Metadata is not locked; a job holding the lock fetches.
                    (None, ..) | (Some(_), true, _) => return self.fetch(*locked),
                    // Another replica is minting it: look again until its lock would have
                    // expired, then try the lock (its holder may have died).
                    (Some(_), false, Some(since))
                        if now.saturating_duration_since(since) < settings.lock_ttl =>
                    {
                        poll(since)
                    }
                    (Some(lock), false, since) => (
                        State::Locking { since },
                        LeaseStep::Ask(Op::Lock(lock.clone(), settings.lock_ttl)),
                    ),
                }
            }
            // Looks once more with the lock: the holder before may have let go just now.
            (State::Locking { since }, StoreReply::Locked(true)) => (
                State::Looking {
                    locked: true,
                    since: *since,
                },
                LeaseStep::Ask(Op::Get(self.record.clone())),
            ),
            (State::Locking { .. }, StoreReply::Locked(false)) if self.refresh => return LeaseStep::Skip,
            (State::Locking { since: None }, StoreReply::Locked(false)) => poll(now),
            // Still held a time-to-live after it was first seen: a stuck lock (no expiry,
            // or a far longer one than ours). Fetch without it rather than wait on.
            (State::Locking { since: Some(_) }, StoreReply::Locked(false)) => return self.fetch(false),
            // An answer to another question: a store that misbehaves is not used.
            _ => return LeaseStep::Fetch(None),
        };
        self.state = state;
        step
    }

    fn fetch(&self, locked: bool) -> LeaseStep {
        LeaseStep::Fetch(Some(Shared {
            record: self.record.clone(),
            unlock: self.lock.clone().filter(|_| locked),
        }))
    }
}

/// A job that fetched, telling the store before it answers: the record, then the lock.
pub(crate) struct Publish {
    answer: Answer,
    /// The lock still to give up.
    unlock: Option<String>,
}

/// What publishing gave: an operation to run, or the answer, told.
pub(crate) enum PublishStep {
    /// Run this operation on the store, then go on with [`Publish::on_reply`].
    Ask(Publish, Op),
    /// Done: the answer.
    Answer(Answer),
}

impl Publish {
    /// Starts telling the store: `put` the record if there is one, then give up `unlock`.
    pub(crate) fn start(answer: Answer, put: Option<Op>, unlock: Option<String>) -> PublishStep {
        let mut publish = Self { answer, unlock };
        match put {
            Some(put) => PublishStep::Ask(publish, put),
            None => match publish.unlock.take() {
                Some(lock) => PublishStep::Ask(publish, Op::Unlock(lock)),
                None => PublishStep::Answer(publish.answer),
            },
        }
    }

    /// The store answered the last operation: the next, or the answer. A store that
    /// failed is asked nothing more.
    pub(crate) fn on_reply(mut self, reply: &Result<StoreReply, BoxError>) -> PublishStep {
        match (reply, self.unlock.take()) {
            (Ok(_), Some(lock)) => PublishStep::Ask(self, Op::Unlock(lock)),
            _ => PublishStep::Answer(self.answer),
        }
    }
}
