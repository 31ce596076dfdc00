//! One call as a state machine a driver steps: what it needs next ([`Action`]), and where
//! it is ([`Call`]). What it is for — an embed token, a configuration, any request — is
//! its plan; how each need is fetched is its job.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use crate::flow::answer::Answer;
use crate::flow::branch::Join;
use crate::flow::error::{Error, Step};
use crate::flow::io::{Answered, Event, Exchange, FileRead, ProgramRun, Reply, Slot, TokenFetch};
use crate::flow::job::Job;
use crate::flow::plan::{Background, Plan};
use crate::flow::store::StoreOp;

/// The time at one step of a call: a monotonic instant for deadlines, time-outs and
/// time-to-live, and the wall clock for token expiry and `Retry-After` dates. The core
/// never reads a clock; drivers pass this in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock.
    pub instant: Instant,
    /// The wall clock.
    pub wall: SystemTime,
}

impl Now {
    /// The time given by both clocks.
    #[must_use]
    pub fn new(instant: Instant, wall: SystemTime) -> Self {
        Self { instant, wall }
    }

    /// This time plus `duration` on both clocks (saturating), for simulated clocks.
    #[must_use]
    pub fn after(self, duration: Duration) -> Self {
        Self {
            instant: self.instant.checked_add(duration).unwrap_or(self.instant),
            wall: self.wall.checked_add(duration).unwrap_or(self.wall),
        }
    }
}

/// What a call needs its driver to do next. Each request for IO carries how its answer
/// goes back (its `respond` method, or [`StoreOp::run`]); after a wait, a park or a
/// spawn, step with [`Event::resume`].
///
/// Not `#[non_exhaustive]` on purpose: a driver must perform every action, so a new one
/// is a change every driver has to make.
#[must_use]
// An action is moved once a step; boxing the exchange would allocate once an exchange.
#[allow(clippy::large_enum_variant)]
pub enum Action<T> {
    /// Send this request; answer with [`Exchange::respond`] (or the responder of
    /// [`Exchange::into_request`]).
    Send(Exchange),
    /// Get a bearer token from the driver's token source; answer with
    /// [`TokenFetch::respond`].
    FetchToken(TokenFetch),
    /// Read this file (at most its `max_bytes`, within its time-out, without blocking an
    /// async executor); answer with [`FileRead::respond`].
    ReadFile(FileRead),
    /// Run this program (directly, never through a shell; bounded as it says); answer
    /// with [`ProgramRun::respond`]: the Azure CLI, on a developer's machine.
    RunProgram(ProgramRun),
    /// Run this operation on the shared store; [`StoreOp::run`] gives the answer. Only for
    /// a session whose settings name a store.
    Store(StoreOp),
    /// Run this work on its own — a thread, a task — as [`Call::refresh`], then step this
    /// call with [`Event::resume`] at once (refresh-ahead: the caller is served while the
    /// item is fetched again). A driver that cannot spawn may drop it.
    Spawn(Background),
    /// Run these calls side by side, each to its end as any call (the datasets of a
    /// dashboard's tiles, a token and the flags that explain a refusal), then step this
    /// one with their results ([`Joiner::respond`](crate::driver::Joiner::respond)).
    /// Concurrently is the point (a blocking driver within a small bound of threads);
    /// one after the other is correct too.
    Join(Join),
    /// Sleep this long (a retry's backoff, a look at the shared store again), then step
    /// with [`Event::resume`].
    Wait(Duration),
    /// Another call is getting what this one needs (the same embed token, the bearer
    /// token): step again with [`Event::resume`] when the session wakes parked calls, or
    /// after this long at the most. It is short ([`PARK_POLL`] at most), so a driver that
    /// only sleeps it is correct; one that wakes early wastes no time.
    Park(Duration),
    /// The call is over.
    Done(Result<T, Error>),
}

/// The longest a parked call is told to sleep before it looks again.
pub const PARK_POLL: Duration = Duration::from_millis(20);

impl<T> fmt::Debug for Action<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(exchange) => f.debug_tuple("Send").field(exchange).finish(),
            Self::FetchToken(fetch) => f.debug_tuple("FetchToken").field(fetch).finish(),
            Self::ReadFile(file) => f.debug_tuple("ReadFile").field(file).finish(),
            Self::RunProgram(run) => f.debug_tuple("RunProgram").field(run).finish(),
            Self::Spawn(work) => f.debug_tuple("Spawn").field(work).finish(),
            Self::Store(op) => f.debug_tuple("Store").field(op).finish(),
            Self::Join(join) => f.debug_tuple("Join").field(join).finish(),
            Self::Wait(d) => f.debug_tuple("Wait").field(d).finish(),
            Self::Park(d) => f.debug_tuple("Park").field(d).finish(),
            Self::Done(Ok(_)) => f.write_str("Done(Ok(..))"),
            Self::Done(Err(e)) => f.debug_tuple("Done").field(e).finish(),
        }
    }
}

/// One call — an embed token, an embed configuration, any Power BI request, a sign-in —
/// as a state machine. Build it with the constructors below, then step it with
/// [`Session::step`](crate::driver::Session::step) (or a
/// [`Pump`](crate::driver::Pump)) until it is done.
///
/// A call borrows the request it was made from (`'r`). Dropping a call that is not done
/// without [`Session::abandon`](crate::driver::Session::abandon) leaves what it was
/// fetching for others to wait on until their deadline: a [`Pump`](crate::driver::Pump)
/// abandons it when dropped.
#[must_use]
pub struct Call<'r, T> {
    pub(crate) plan: Box<dyn Plan<Output = T> + Send + 'r>,
    pub(crate) state: CallState,
}

/// Where a call is.
// A call lives on its driver's stack and is moved into `Running` once: boxing it would
// cost an allocation a call for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum CallState {
    /// Not stepped yet; a branch of another call ends by its deadline (`inherited`),
    /// any other call after the session's.
    New { inherited: Option<Instant> },
    /// Under way.
    Running(Running),
    /// Done, or abandoned.
    Ended,
}

/// A call under way.
pub(crate) struct Running {
    /// Its number in the session.
    pub(crate) ticket: u64,
    /// When it must be over.
    pub(crate) deadline: Option<Instant>,
    /// What it is doing.
    pub(crate) work: Work,
    /// The last exchange sent, to name the step of an error.
    pub(crate) last: Option<Step>,
    /// What the driver owes it.
    pub(crate) owed: Owed,
    /// The number of the last request for IO handed out.
    serial: u32,
    /// Refresh-ahead work to hand out.
    pub(crate) spawns: Vec<Background>,
}

/// What a running call is doing.
// Switched once a need; boxing the job would allocate once a need.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Work {
    /// Asking its plan what next, with the answer to the last need.
    Plan(Option<Answer>),
    /// Fetching a need.
    Job(Job),
    /// Waiting for the calls it asked to run side by side: the answers known already
    /// (from the cache), and where in that list each call's result goes.
    Joined {
        known: Vec<Option<Answer>>,
        at: Vec<usize>,
    },
}

/// What the driver owes a running call before it goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owed {
    /// A resume (the first step, after a wait or a spawn).
    Resume,
    /// A resume, once the session wakes parked calls (or the park's time is up).
    Parked,
    /// The answer to this request.
    Reply(Slot),
}

impl<'r, T> Call<'r, T> {
    pub(crate) fn new(plan: impl Plan<Output = T> + Send + 'r) -> Self {
        Self {
            plan: Box::new(plan),
            state: CallState::New { inherited: None },
        }
    }

    /// Whether the call is over (it returned [`Action::Done`], or was abandoned).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.state, CallState::Ended)
    }
}

impl Running {
    pub(crate) fn new(ticket: u64, deadline: Option<Instant>) -> Self {
        Self {
            ticket,
            deadline,
            work: Work::Plan(None),
            last: None,
            owed: Owed::Resume,
            serial: 0,
            spawns: Vec::new(),
        }
    }

    /// The one check every event passes: it is what the call asked for (`owed`). The
    /// reply it carries, if any, or what went wrong.
    pub(crate) fn accept(owed: Owed, event: Event) -> Result<Option<Reply>, String> {
        match (owed, event.0) {
            (Owed::Resume | Owed::Parked, Answered::Resume) => Ok(None),
            (Owed::Reply(slot), Answered::Reply(answered, reply)) if answered == slot => Ok(Some(reply)),
            (Owed::Reply(_), Answered::Resume) => {
                Err("stepped on without the answer it was asked for".into())
            }
            (Owed::Reply(_), Answered::Reply(_, reply)) => Err(format!(
                "handed back {} for another request than the one asked for",
                reply.name()
            )),
            (Owed::Resume | Owed::Parked, Answered::Reply(_, reply)) => {
                Err(format!("handed back {} where none was asked for", reply.name()))
            }
        }
    }

    /// A new request for IO: the slot its answer must name.
    pub(crate) fn ask(&mut self) -> Slot {
        self.serial = self.serial.wrapping_add(1);
        let slot = Slot {
            call: self.ticket,
            serial: self.serial,
        };
        self.owed = Owed::Reply(slot);
        slot
    }

    /// What is left before the deadline at `now`; a call without one has all the time
    /// there is.
    pub(crate) fn remaining(&self, now: Instant) -> Duration {
        self.deadline
            .map_or(Duration::MAX, |d| d.saturating_duration_since(now))
    }
}

impl<T> fmt::Debug for Call<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            CallState::New { .. } => "new",
            CallState::Running(_) => "running",
            CallState::Ended => "ended",
        };
        f.debug_struct("Call")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
