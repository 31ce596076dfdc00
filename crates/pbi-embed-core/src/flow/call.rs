//! One call as a state machine a driver steps: what it needs next ([`Action`]), and what
//! the driver hands back ([`Event`]).

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use crate::auth::azure_cli::{ProgramOutput, ProgramRun};
use crate::flow::error::{BoxError, Error, TransportError};
use crate::flow::plan::{Answer, Background, Need, Steps};
use crate::flow::session::{Host, Job};
use crate::flow::store::{StoreOp, StoreReply};
use crate::wire::lifetime::BearerToken;
use crate::wire::operation::HttpRequest;

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

/// What a call needs its driver to do next.
///
/// Not `#[non_exhaustive]` on purpose: a driver must perform every action, so a new one
/// is a change every driver has to make.
#[must_use]
// An action is moved once a step; boxing the exchange would allocate once an exchange.
#[allow(clippy::large_enum_variant)]
pub enum Action<T> {
    /// Send this request, then step the call with [`Event::Response`].
    Send(Exchange),
    /// Get a bearer token from the driver's token source, then step the call with
    /// [`Event::Token`].
    FetchToken,
    /// Read this file (at most its `max_bytes`), then step the call with
    /// [`Event::File`]: a workload identity's federated token, read afresh at every
    /// sign-in (Kubernetes rotates it).
    ReadFile(FileRead),
    /// Run this program (directly, never through a shell; bounded as it says), then step
    /// the call with [`Event::Program`]: the Azure CLI, on a developer's machine.
    RunProgram(ProgramRun),
    /// Run this work on its own — a thread, a task — as [`Call::refresh`](crate::driver::Call::refresh),
    /// then step this call with [`Event::Resume`] at once (refresh-ahead: the caller is
    /// served while the item is fetched again).
    Spawn(Background),
    /// Run this operation on the shared store ([`StoreOp::run`]), then step the call with
    /// [`Event::Stored`]. Only for a session whose settings name a store.
    Store(StoreOp),
    /// Sleep this long (a retry's backoff), then step the call with [`Event::Resume`].
    Wait(Duration),
    /// Another call is getting what this one needs (the same embed token, the bearer
    /// token): wait until the driver's session wakes parked calls, at most this long,
    /// then step with [`Event::Resume`].
    Park(Duration),
    /// The call is over.
    Done(Result<T, Error>),
}

impl<T> fmt::Debug for Action<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(exchange) => f.debug_tuple("Send").field(exchange).finish(),
            Self::FetchToken => f.write_str("FetchToken"),
            Self::ReadFile(file) => f.debug_tuple("ReadFile").field(file).finish(),
            Self::RunProgram(run) => f.debug_tuple("RunProgram").field(run).finish(),
            Self::Spawn(work) => f.debug_tuple("Spawn").field(work).finish(),
            Self::Store(op) => f.debug_tuple("Store").field(op).finish(),
            Self::Wait(d) => f.debug_tuple("Wait").field(d).finish(),
            Self::Park(d) => f.debug_tuple("Park").field(d).finish(),
            Self::Done(Ok(_)) => f.write_str("Done(Ok(..))"),
            Self::Done(Err(e)) => f.debug_tuple("Done").field(e).finish(),
        }
    }
}

/// What a driver hands back to a call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Nothing new: the first step, after a [`Action::Wait`], or after a [`Action::Park`].
    Resume,
    /// The answer to [`Action::Send`]: the complete response, whatever its status, with
    /// at most the exchange's `max_response_bytes` of body; or how the transport failed.
    Response(Result<http::Response<Vec<u8>>, TransportError>),
    /// The answer to [`Action::FetchToken`].
    Token(Result<BearerToken, BoxError>),
    /// The answer to [`Action::ReadFile`]: the file's bytes (at most its `max_bytes`), or
    /// why it could not be read.
    File(Result<Vec<u8>, BoxError>),
    /// The answer to [`Action::RunProgram`]: what the program did, or why it could not
    /// run ([`NotFound`](std::io::ErrorKind::NotFound) when it is not installed,
    /// [`TimedOut`](std::io::ErrorKind::TimedOut) when it was stopped).
    Program(std::io::Result<ProgramOutput>),
    /// The answer to [`Action::Store`]: what the store gave, or how it failed (the call
    /// then goes on without it).
    Stored(Result<StoreReply, BoxError>),
}

/// A file a call needs read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRead {
    path: std::path::PathBuf,
    max_bytes: u64,
}

impl FileRead {
    pub(crate) fn new(path: &std::path::Path, max_bytes: u64) -> Self {
        Self {
            path: path.to_owned(),
            max_bytes,
        }
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Read at most this many bytes (a longer file is refused by the call).
    #[must_use]
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// One HTTP exchange to make: the request and its bounds.
///
/// A driver sends the request as built (following no redirect: a bearer token must never
/// reach another host), bounds the whole attempt — connecting, sending, the complete
/// response — by [`timeout`](Self::timeout), and reads at most
/// [`max_response_bytes`](Self::max_response_bytes) of the body.
pub struct Exchange {
    pub(crate) request: HttpRequest,
    pub(crate) url: String,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: u64,
    pub(crate) operation: &'static str,
    pub(crate) attempt: u32,
}

impl Exchange {
    /// The request.
    #[must_use]
    pub fn request(&self) -> &HttpRequest {
        &self.request
    }

    /// Takes the request out, to send it.
    #[must_use]
    pub fn into_request(self) -> HttpRequest {
        self.request
    }

    /// The request's URI as text: for a stack with its own URL type (reqwest's `Url`),
    /// which can parse this instead of formatting the URI first.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound on this attempt, never past the call's deadline.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The most response-body bytes to read; past it, hand back
    /// [`TransportError::body_too_large`].
    #[must_use]
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_bytes
    }

    /// The REST operation, such as `Reports_GenerateTokenInGroup`, for logs.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The attempt's number for this request (1 for the first).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("method", self.request.method())
            .field("uri", self.request.uri())
            .field("operation", &self.operation)
            .field("attempt", &self.attempt)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One call — an embed token, an embed configuration, any Power BI request, a sign-in —
/// as a state machine. Build it with the constructors below, then step it with
/// [`Session::step`](crate::driver::Session::step) until it is done.
///
/// A call borrows the request it was made from (`'r`). Dropping a call that is not done
/// without [`Session::abandon`](crate::driver::Session::abandon) leaves what it was
/// fetching for others to wait on until their deadline: drivers abandon in `Drop`.
#[must_use]
pub struct Call<'r, T> {
    pub(crate) steps: Box<dyn Steps<Output = T> + Send + 'r>,
    pub(crate) ticket: Option<u64>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) job: Option<Job>,
    pub(crate) answer: Option<Answer>,
    /// The last exchange's operation and host, to name the step of an error.
    pub(crate) last: Option<(&'static str, Host)>,
    pub(crate) parked: bool,
    pub(crate) finished: bool,
}

impl<'r, T> Call<'r, T> {
    pub(crate) fn new(steps: impl Steps<Output = T> + Send + 'r) -> Self {
        Self {
            steps: Box::new(steps),
            ticket: None,
            deadline: None,
            job: None,
            answer: None,
            last: None,
            parked: false,
            finished: false,
        }
    }

    /// Whether the call is over (it returned [`Action::Done`], or was abandoned).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub(crate) fn need(&mut self) -> Result<Option<Need>, Result<T, Error>> {
        match self.steps.next(self.answer.take()) {
            Ok(crate::flow::plan::Next::Need(need)) => Ok(Some(need)),
            Ok(crate::flow::plan::Next::Done(output)) => Err(Ok(output)),
            Err(error) => Err(Err(error)),
        }
    }
}

impl<T> fmt::Debug for Call<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("ticket", &self.ticket)
            .field("deadline", &self.deadline)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
