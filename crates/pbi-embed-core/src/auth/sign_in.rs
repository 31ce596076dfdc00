//! The one interface every credential's sign-in is behind: a small machine that starts at
//! `now`, asks for what it needs (send this request, read that file, run that program,
//! ask the token source) and ends with a bearer token or a failure.
//!
//! The flow owns everything around a sign-in (who renews, retries, the deadline, the
//! cool-down); a machine only knows its credential's wire format. Adding a credential is
//! one new file with its machine, one [`Credential`](super::credential::Credential)
//! variant, the builder and the environment reader.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::azure_cli::{AzureCliError, Command, ProgramOutput};
use super::bearer::BearerToken;
use crate::wire::cloud::Cloud;
use crate::wire::error::ExchangeError;
use crate::wire::operation::HttpRequest;

/// What a sign-in needs next, or how it ended.
pub(crate) enum SignInStep {
    /// Send this request (to Entra ID, or the managed identity endpoint).
    Send {
        /// Its name in errors and logs, such as `Entra_ClientCredentials`.
        operation: &'static str,
        /// The request.
        request: HttpRequest,
    },
    /// Read this file, at most `max_bytes` of it (a federated token, a certificate).
    Read {
        /// The file.
        path: PathBuf,
        /// What it holds, for errors: `federated token`, `certificate`.
        what: &'static str,
        /// The most bytes accepted.
        max_bytes: u64,
    },
    /// Run this program (the Azure CLI).
    Run(Command),
    /// Ask the driver's token source.
    FetchToken,
    /// Signed in.
    Done(BearerToken),
    /// No token.
    Failed(SignInError),
}

/// What the driver handed back to a sign-in.
pub(crate) enum SignInInput {
    /// The response to [`SignInStep::Send`], of any status (a transport failure never
    /// reaches the machine: the flow retries it).
    Response(http::Response<Vec<u8>>),
    /// The file's bytes (at most its `max_bytes`; the flow turns a failed read into an
    /// error naming the file).
    File(Vec<u8>),
    /// What the program did, or why it could not run.
    Program(std::io::Result<ProgramOutput>),
    /// The token source's token (the flow turns its failure into an error).
    Token(BearerToken),
}

/// Why a sign-in gave no token.
#[derive(Debug)]
pub(crate) enum SignInError {
    /// What Entra ID or the identity endpoint answered (or its answer, unreadable): a
    /// failure the flow's retry policy judges.
    Refused(ExchangeError),
    /// The sign-in could not be made from what the credential holds (a certificate file
    /// that does not load, an assertion that cannot be signed).
    Unusable(ExchangeError),
    /// The Azure CLI gave no token.
    AzureCli(AzureCliError),
    /// The credential is a fixed token Power BI no longer takes.
    CannotRenew,
}

/// The circumstances of one sign-in attempt.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt<'a> {
    /// The time of this step.
    pub(crate) now: SystemTime,
    /// The cloud signed in to (its authority host, scope and resource).
    pub(crate) cloud: &'a Cloud,
    /// Unique in the session: makes a client assertion's `jti` unique.
    pub(crate) nonce: u64,
    /// What is left of the call's deadline.
    pub(crate) remaining: Duration,
}

impl Attempt<'_> {
    /// A client assertion's unique id: the time to the nanosecond and the nonce.
    pub(crate) fn jti(&self) -> String {
        let nanos = self
            .now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{nanos:x}-{:x}", self.nonce)
    }
}

/// One credential's sign-in, as a machine: [`start`](Self::start) an attempt, then
/// [`resume`](Self::resume) it with each thing it asked for until it is done or failed.
/// A failed attempt may be started again (the flow decides).
pub(crate) trait SignIn: Send + fmt::Debug {
    /// Starts an attempt.
    fn start(&mut self, at: &Attempt<'_>) -> SignInStep;

    /// Goes on with what the driver handed back for the last step.
    fn resume(&mut self, input: SignInInput, at: &Attempt<'_>) -> SignInStep;
}

/// A machine's answer to an input it did not ask for: a bug in the flow, reported.
pub(crate) fn unasked() -> SignInStep {
    SignInStep::Failed(SignInError::Unusable(ExchangeError::invalid_input(
        "signIn",
        "the sign-in got an answer it did not ask for",
    )))
}
