//! The IO a call asks its driver for. Each request carries how its answer goes back: the
//! driver answers an [`Exchange`] with [`Exchange::respond`] (or the [`Responder`] it
//! kept when it took the request out), a [`FileRead`] with [`FileRead::respond`], and so
//! on. Each answer is an [`Event`] the call knows was asked for; a driver cannot build
//! one any other way but [`Event::resume`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::azure_cli::{Command, ProgramOutput};
use crate::auth::bearer::BearerToken;
use crate::flow::answer::Answer;
use crate::flow::error::TransportError;
use crate::flow::store::StoreReply;
use crate::wire::error::BoxError;
use crate::wire::operation::HttpRequest;

/// Which request of which call an answer is for: the one check every answer passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The call's ticket.
    pub(crate) call: u64,
    /// The request's number within the call.
    pub(crate) serial: u32,
}

/// What a driver hands back to a call: made by the answering method of what the call
/// asked for, or [`Event::resume`] after a wait, a park or a spawn (and at the start).
#[must_use]
pub struct Event(pub(crate) Answered);

/// An event's contents.
#[derive(Debug)]
pub(crate) enum Answered {
    Resume,
    Reply(Slot, Reply),
}

/// An answer to one request.
#[derive(Debug)]
pub(crate) enum Reply {
    Response(Result<http::Response<Vec<u8>>, TransportError>),
    Token(Result<BearerToken, BoxError>),
    File(Result<Vec<u8>, BoxError>),
    Program(std::io::Result<ProgramOutput>),
    Stored(Result<StoreReply, BoxError>),
    /// The answers of calls run side by side, in order.
    Joined(Vec<Answer>),
}

impl Reply {
    /// What it is, for an error that names it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Response(_) => "a response",
            Self::Token(_) => "a token",
            Self::File(_) => "a file",
            Self::Program(_) => "a program's output",
            Self::Stored(_) => "a store's answer",
            Self::Joined(_) => "the results of calls run side by side",
        }
    }
}

impl Event {
    /// Nothing new: the first step of a call, and the step after [`Action::Wait`],
    /// [`Action::Park`] or [`Action::Spawn`](crate::driver::Action::Spawn).
    ///
    /// [`Action::Wait`]: crate::driver::Action::Wait
    /// [`Action::Park`]: crate::driver::Action::Park
    pub fn resume() -> Self {
        Self(Answered::Resume)
    }

    pub(crate) fn reply(slot: Slot, reply: Reply) -> Self {
        Self(Answered::Reply(slot, reply))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Answered::Resume => f.write_str("Event::Resume"),
            Answered::Reply(_, reply) => write!(f, "Event({})", reply.name()),
        }
    }
}

/// One HTTP exchange to make: the request and its bounds.
///
/// A driver sends the request as built (following no redirect: a bearer token must never
/// reach another host), bounds the whole attempt — connecting, sending, the complete
/// response — by [`timeout`](Self::timeout), reads at most
/// [`max_response_bytes`](Self::max_response_bytes) of the body, and answers with the
/// complete response, whatever its status, or how the transport failed.
pub struct Exchange {
    pub(crate) request: HttpRequest,
    pub(crate) url: String,
    pub(crate) responder: Responder,
}

impl Exchange {
    /// The request.
    #[must_use]
    pub fn request(&self) -> &HttpRequest {
        &self.request
    }

    /// Takes the request out, to send it; the [`Responder`] keeps the exchange's bounds
    /// and answers the call.
    pub fn into_request(self) -> (HttpRequest, Responder) {
        (self.request, self.responder)
    }

    /// Answers with what came back, when the driver kept the exchange (it sent a copy,
    /// or it is a test).
    pub fn respond(self, response: Result<http::Response<Vec<u8>>, TransportError>) -> Event {
        self.responder.respond(response)
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
        self.responder.timeout
    }

    /// The most response-body bytes to read; past it, answer with
    /// [`TransportError::body_too_large`].
    #[must_use]
    pub fn max_response_bytes(&self) -> u64 {
        self.responder.max_response_bytes
    }

    /// The REST operation, such as `Reports_GenerateTokenInGroup`, for logs.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.responder.operation
    }

    /// The attempt's number for this request (1 for the first).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.responder.attempt
    }
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("method", self.request.method())
            .field("uri", self.request.uri())
            .field("operation", &self.responder.operation)
            .field("attempt", &self.responder.attempt)
            .field("timeout", &self.responder.timeout)
            .finish_non_exhaustive()
    }
}

/// Answers one [`Exchange`] whose request was taken out to be sent, and keeps its bounds
/// for the driver sending it.
#[derive(Debug)]
#[must_use]
pub struct Responder {
    pub(crate) slot: Slot,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: u64,
    pub(crate) operation: &'static str,
    pub(crate) attempt: u32,
}

impl Responder {
    /// The complete response (at most the exchange's `max_response_bytes` of body),
    /// whatever its status, or how the transport failed.
    pub fn respond(self, response: Result<http::Response<Vec<u8>>, TransportError>) -> Event {
        Event::reply(self.slot, Reply::Response(response))
    }

    /// See [`Exchange::timeout`].
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// See [`Exchange::max_response_bytes`].
    #[must_use]
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_bytes
    }

    /// See [`Exchange::operation`].
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// See [`Exchange::attempt`].
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// A file a call needs read: a workload identity's federated token or a certificate,
/// read afresh at every sign-in (Kubernetes and Key Vault rotate them).
///
/// A driver reads at most [`max_bytes`](Self::max_bytes), gives up when
/// [`timeout`](Self::timeout) passes (a FIFO or a hung mount must not hold the call), and
/// does not block an async executor while it reads.
#[derive(Debug)]
pub struct FileRead {
    pub(crate) path: PathBuf,
    pub(crate) max_bytes: u64,
    pub(crate) timeout: Duration,
    pub(crate) slot: Slot,
}

impl FileRead {
    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read at most this many bytes (a longer file is refused by the call).
    #[must_use]
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Give up reading after this long, never past the call's deadline.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Answers with the file's bytes, or why it could not be read.
    pub fn respond(self, contents: Result<Vec<u8>, BoxError>) -> Event {
        Event::reply(self.slot, Reply::File(contents))
    }
}

/// How long the outputs of a program that has exited are still read: what it wrote
/// before exiting is in the pipe already, so this is ample.
const OUTPUT_GRACE: Duration = Duration::from_millis(250);

/// A program a call needs run (the Azure CLI): directly, never through a shell, with
/// standard input closed and these extra environment variables; stopped after its
/// time-out, reading at most [`max_output_bytes`](Self::max_output_bytes) of each output.
///
/// It runs in a process group of its own (on Unix), and its exit status ends the run: once
/// it has exited, its outputs are read for at most [`output_grace`](Self::output_grace)
/// more, so a child it left behind holding them does not hold the call. On a time-out,
/// or when such a child holds the outputs, the whole group is killed: the real `az` is a
/// shell script around Python, and killing the script alone would leave Python running.
#[derive(Debug)]
pub struct ProgramRun {
    pub(crate) command: Command,
    pub(crate) slot: Slot,
}

impl ProgramRun {
    /// The program (a name looked up on `PATH`, or a path).
    #[must_use]
    pub fn program(&self) -> &Path {
        self.command.program()
    }

    /// Its arguments, each passed as one argument.
    #[must_use]
    pub fn args(&self) -> &[String] {
        self.command.args()
    }

    /// Environment variables to set for it, on top of the process's own.
    #[must_use]
    pub fn env(&self) -> &[(&'static str, &'static str)] {
        self.command.env()
    }

    /// Stop it after this long, and answer with an error of kind
    /// [`TimedOut`](std::io::ErrorKind::TimedOut).
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.command.timeout()
    }

    /// Read at most this many bytes of standard output, and as many of standard error.
    #[must_use]
    pub fn max_output_bytes(&self) -> u64 {
        self.command.max_output_bytes()
    }

    /// How long, after the program exits, its outputs are still read before what was read
    /// is its answer (and the rest of its process group is killed).
    #[must_use]
    pub fn output_grace(&self) -> Duration {
        OUTPUT_GRACE
    }

    /// Answers with what the program did, or why it could not run
    /// ([`NotFound`](std::io::ErrorKind::NotFound) when it is not installed,
    /// [`TimedOut`](std::io::ErrorKind::TimedOut) when it was stopped).
    pub fn respond(self, ran: std::io::Result<ProgramOutput>) -> Event {
        Event::reply(self.slot, Reply::Program(ran))
    }
}

/// The call needs a bearer token from the driver's token source, for
/// [`scope`](Self::scope).
#[derive(Debug)]
pub struct TokenFetch {
    pub(crate) scope: String,
    pub(crate) slot: Slot,
}

impl TokenFetch {
    /// The scope to ask for: the client's cloud's Power BI scope, such as
    /// `https://analysis.windows.net/powerbi/api/.default`.
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Answers with the token source's token, or its failure.
    pub fn respond(self, token: Result<BearerToken, BoxError>) -> Event {
        Event::reply(self.slot, Reply::Token(token))
    }
}
