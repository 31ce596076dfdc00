//! How a whole call fails: [`Error`], whatever HTTP stack carried it.
//!
//! A call is a flow of one or more exchanges (sign-in, item metadata, GenerateToken). Its
//! error says what went wrong, what Power BI or Entra ID said about it, and at which step
//! and host. A transport's own error is kept as the [`source`](std::error::Error::source),
//! never repeated in the message.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::auth::azure_cli::AzureCliError;
use crate::settings::retry::{Outcome, RetryAfter};
use crate::wire::error::{ApiError, BoxError, EntraError, ErrorKind, ExchangeError};

/// How a transport failed, as far as retrying and reporting go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// The connection could not be made (refused, unreachable, DNS, TLS handshake).
    Connect,
    /// The attempt ran out of time.
    Timeout,
    /// The connection broke while sending or receiving.
    Io,
    /// The server's TLS certificate did not verify (another name, expired, an unknown
    /// authority): not retried, never downgraded.
    Certificate,
    /// The response body was larger than the exchange allows; reading stopped.
    BodyTooLarge,
    /// Anything else the transport reports (a bad URL, a protocol violation).
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "could not connect",
            Self::Timeout => "timed out",
            Self::Io => "the connection failed",
            Self::Certificate => "the server's TLS certificate did not verify",
            Self::BodyTooLarge => "the response body was too large; reading stopped",
            Self::Other => "the HTTP exchange failed",
        })
    }
}

/// A transport's failure to complete one exchange, as a driver hands it back to the flow.
#[derive(Debug)]
pub struct TransportError {
    kind: TransportKind,
    source: Option<BoxError>,
}

impl TransportError {
    /// A failure of `kind`, caused by the transport's own error. A connection that
    /// failed because the server's certificate did not verify (as rustls or the native
    /// TLS stack say in the error's chain) becomes [`TransportKind::Certificate`].
    pub fn new(kind: TransportKind, source: impl Into<BoxError>) -> Self {
        let source = source.into();
        let kind = match kind {
            TransportKind::Connect | TransportKind::Io | TransportKind::Other
                if is_certificate_failure(source.as_ref()) =>
            {
                TransportKind::Certificate
            }
            kind => kind,
        };
        Self {
            kind,
            source: Some(source),
        }
    }

    /// The response body passed the exchange's `max_response_bytes`.
    #[must_use]
    pub fn body_too_large() -> Self {
        Self {
            kind: TransportKind::BodyTooLarge,
            source: None,
        }
    }

    /// How it failed.
    #[must_use]
    pub fn kind(&self) -> TransportKind {
        self.kind
    }
}

/// Whether an error's chain says a certificate did not verify: rustls's
/// `invalid peer certificate: …`, OpenSSL's and Secure Transport's `certificate verify
/// failed`, SChannel's `certificate chain … not trusted`.
fn is_certificate_failure(error: &(dyn StdError + 'static)) -> bool {
    const MARKERS: [&str; 3] = [
        "invalid peer certificate",
        "certificate verify failed",
        "certificate chain",
    ];
    let mut next = Some(error);
    // A chain is short; the bound keeps a cyclic one from looping.
    for _ in 0..16 {
        let Some(error) = next else { break };
        let text = error.to_string().to_ascii_lowercase();
        if MARKERS.iter().any(|m| text.contains(m)) {
            return true;
        }
        next = error.source();
    }
    false
}

/// Where a call failed: the REST operation and the host it went to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) operation: &'static str,
    pub(crate) host: String,
}

impl Step {
    /// The step of sending `request` as `operation`: its host (and port), never any user
    /// information in the URI.
    pub(crate) fn of(operation: &'static str, request: &crate::wire::operation::HttpRequest) -> Self {
        let authority = request.uri().authority().map_or("", |a| a.as_str());
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        Self {
            operation,
            host: host.to_owned(),
        }
    }
}

#[derive(Debug)]
enum Cause {
    Service(ExchangeError),
    Transport(TransportError),
    Deadline(Duration),
    TokenSource(BoxError),
    AzureCli(AzureCliError),
    /// The driver handed back something other than what the call asked for.
    Driver(String),
    /// The credential gave nothing usable: a token already expired or unfit for a
    /// header, a certificate file that does not load. The service's side, not the
    /// caller's input.
    Credential(String),
}

/// The error of a whole call: what Power BI or Entra ID said, or why no answer came, and
/// at which step and host.
///
/// The message is one line; the transport's own error, when there is one, is its
/// [`source`](StdError::source). Use [`kind`](Self::kind) to act on it and the accessors
/// for the service's status, code, message and `RequestId`; [`hint`](Self::hint) says
/// what to do about the common ones. It never carries a secret.
///
/// ```
/// use pbi_embed_core::{Error, ErrorKind};
///
/// /// What a web handler answers its browser: a status, never the error's text (it
/// /// names hosts, datasets and request ids, which belong in the server's log).
/// fn status_for(error: &Error) -> u16 {
///     match error.kind() {
///         ErrorKind::InvalidInput | ErrorKind::RlsIdentity => 400,
///         ErrorKind::NotFound => 404,
///         ErrorKind::Throttled => 429,
///         _ => 502,
///     }
/// }
///
/// let error = Error::invalid_input("reportId", "\"x\" is not a GUID");
/// assert_eq!(status_for(&error), 400);
/// assert!(!error.was_sent());
/// assert_eq!(error.to_string(), "invalid reportId: \"x\" is not a GUID (nothing was sent)");
/// ```
#[derive(Debug)]
pub struct Error {
    cause: Cause,
    step: Option<Box<Step>>,
}

impl Error {
    /// An error of kind [`ErrorKind::InvalidInput`] for `field`: nothing was sent.
    pub fn invalid_input(
        field: impl Into<std::borrow::Cow<'static, str>>,
        reason: impl Into<String>,
    ) -> Self {
        ExchangeError::invalid_input(field, reason).into()
    }

    /// The category of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match &self.cause {
            Cause::Service(e) => e.kind(),
            Cause::AzureCli(_) => ErrorKind::SignIn,
            Cause::Driver(_) => ErrorKind::Driver,
            Cause::Credential(_) => ErrorKind::SignIn,
            Cause::Transport(t) => match t.kind {
                TransportKind::Timeout => ErrorKind::Timeout,
                TransportKind::BodyTooLarge => ErrorKind::BodyTooLarge,
                TransportKind::Certificate => ErrorKind::Certificate,
                _ => ErrorKind::Network,
            },
            Cause::Deadline(_) => ErrorKind::Timeout,
            Cause::TokenSource(_) => ErrorKind::TokenSource,
        }
    }

    /// What one exchange ended in, when Power BI or Entra ID answered (or the input was
    /// invalid, or the RLS pre-flight refused).
    #[must_use]
    pub fn exchange(&self) -> Option<&ExchangeError> {
        match &self.cause {
            Cause::Service(e) => Some(e),
            _ => None,
        }
    }

    /// Power BI's error, when Power BI answered with one.
    #[must_use]
    pub fn api(&self) -> Option<&ApiError> {
        self.exchange().and_then(ExchangeError::as_api)
    }

    /// Entra ID's (or a managed identity endpoint's) error, when the sign-in was refused.
    #[must_use]
    pub fn entra(&self) -> Option<&EntraError> {
        self.exchange().and_then(ExchangeError::as_entra)
    }

    /// Why the Azure CLI gave no token, when it is the credential.
    #[must_use]
    pub fn azure_cli(&self) -> Option<&AzureCliError> {
        match &self.cause {
            Cause::AzureCli(e) => Some(e),
            _ => None,
        }
    }

    /// How the transport failed, when it did.
    #[must_use]
    pub fn transport_kind(&self) -> Option<TransportKind> {
        match &self.cause {
            Cause::Transport(t) => Some(t.kind),
            _ => None,
        }
    }

    /// The HTTP status, when a response arrived.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        self.exchange().and_then(ExchangeError::status)
    }

    /// Power BI's `error.code` or Entra's `error`.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.exchange().and_then(ExchangeError::code)
    }

    /// Power BI's `error.message` or Entra's `error_description`.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.exchange().and_then(ExchangeError::message)
    }

    /// The `RequestId` to quote to Microsoft support.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.exchange().and_then(ExchangeError::request_id)
    }

    /// The `Retry-After` the service sent.
    #[must_use]
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.exchange().and_then(ExchangeError::retry_after)
    }

    /// The REST operation that failed, such as `Reports_GenerateTokenInGroup` or
    /// `Entra_ClientCredentials`; `None` when nothing was sent.
    #[must_use]
    pub fn operation(&self) -> Option<&'static str> {
        self.step.as_ref().map(|s| s.operation)
    }

    /// The host (and port) the failed step went to.
    #[must_use]
    pub fn host(&self) -> Option<&str> {
        self.step.as_ref().map(|s| s.host.as_str())
    }

    /// Whether anything was sent (every error but invalid input and the RLS pre-flight's
    /// before any request).
    #[must_use]
    pub fn was_sent(&self) -> bool {
        match &self.cause {
            Cause::Service(e) => e.was_sent() && self.step.is_some(),
            _ => self.step.is_some(),
        }
    }

    /// What to try next, when there is advice: for Power BI's errors, Entra ID's, time-outs.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match &self.cause {
            Cause::Service(ExchangeError::Api(api)) => api.hint(),
            Cause::Service(ExchangeError::Entra(entra)) => entra.hint(),
            Cause::AzureCli(cli) => cli.hint(),
            Cause::Driver(_) => {
                Some("the HTTP stack's driver broke the flow's protocol: a bug to report to its authors")
            }
            Cause::Credential(_) => Some(
                "the credential is misconfigured or its endpoint misbehaves: check it (its file, its identity endpoint)",
            ),
            Cause::Deadline(_) => Some("the whole call ran out of time; allow a longer deadline"),
            Cause::Transport(t) if t.kind == TransportKind::Timeout => {
                Some("the server did not answer in time; check the host, or allow a longer time-out")
            }
            Cause::Transport(t) if t.kind == TransportKind::Certificate => Some(
                "the server's certificate is not trusted here: for a private CA (a TLS-inspecting proxy, the emulator) add it with root_certificates_pem, or use the platform verifier",
            ),
            Cause::Transport(t) if t.kind == TransportKind::Connect => {
                Some("check the host name, the network and any proxy between them")
            }
            _ => None,
        }
    }

    /// What this failure means for retrying.
    pub(crate) fn outcome(&self) -> Outcome {
        match &self.cause {
            Cause::Service(e) => Outcome::from(e),
            Cause::Transport(t) => match t.kind {
                TransportKind::Timeout => Outcome::TimedOut,
                TransportKind::Connect | TransportKind::Io => Outcome::ConnectionFailed,
                TransportKind::Certificate | TransportKind::BodyTooLarge | TransportKind::Other => {
                    Outcome::Fatal
                }
            },
            Cause::Deadline(_)
            | Cause::TokenSource(_)
            | Cause::AzureCli(_)
            | Cause::Driver(_)
            | Cause::Credential(_) => Outcome::Fatal,
        }
    }

    pub(crate) fn transport(error: TransportError, step: Step) -> Self {
        Self {
            cause: Cause::Transport(error),
            step: Some(Box::new(step)),
        }
    }

    pub(crate) fn deadline(deadline: Duration, step: Option<Step>) -> Self {
        Self {
            cause: Cause::Deadline(deadline),
            step: step.map(Box::new),
        }
    }

    pub(crate) fn token_source(error: BoxError) -> Self {
        Self {
            cause: Cause::TokenSource(error),
            step: None,
        }
    }

    pub(crate) fn from_azure_cli(error: AzureCliError) -> Self {
        Self {
            cause: Cause::AzureCli(error),
            step: None,
        }
    }

    /// The credential gave nothing usable (`reason`), at `step` if it was an exchange.
    pub(crate) fn credential(reason: String, step: Option<&Step>) -> Self {
        Self {
            cause: Cause::Credential(reason),
            step: step.map(|step| Box::new(step.clone())),
        }
    }

    /// The driver handed back `what`; `last` is the call's last exchange, if any.
    pub(crate) fn driver(what: String, last: Option<&Step>) -> Self {
        Self {
            cause: Cause::Driver(what),
            step: last.map(|step| Box::new(step.clone())),
        }
    }

    /// Names the step, unless one is named already.
    pub(crate) fn at(mut self, step: Option<&Step>) -> Self {
        if self.step.is_none()
            && let Some(step) = step
            && !matches!(
                self.cause,
                Cause::Service(ExchangeError::InvalidInput { .. } | ExchangeError::RlsPreflight { .. })
            )
        {
            self.step = Some(Box::new(step.clone()));
        }
        self
    }
}

impl From<ExchangeError> for Error {
    fn from(error: ExchangeError) -> Self {
        Self {
            cause: Cause::Service(error),
            step: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(step) = self
            .step
            .as_ref()
            .filter(|_| !matches!(self.cause, Cause::Driver(_)))
        {
            write!(f, "{} at {}: ", step.operation, step.host)?;
        }
        match &self.cause {
            Cause::Service(e) => write!(f, "{e}"),
            Cause::Transport(t) => write!(f, "{}", t.kind),
            Cause::Deadline(deadline) => {
                write!(f, "the call's deadline of {} passed", Seconds(*deadline))
            }
            Cause::TokenSource(_) => f.write_str("the token source could not give a bearer token"),
            Cause::AzureCli(e) => write!(f, "{e}"),
            Cause::Credential(reason) => f.write_str(reason),
            Cause::Driver(what) => write!(
                f,
                "the driver {what}; drivers hand back exactly what each action asks for ({})",
                if self.step.is_some() {
                    "requests were sent before"
                } else {
                    "nothing was sent"
                }
            ),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.cause {
            Cause::Transport(t) => t.source.as_deref().map(|s| s as &(dyn StdError + 'static)),
            Cause::TokenSource(e) => Some(e.as_ref()),
            // The service's error is the message itself.
            Cause::Service(_)
            | Cause::Deadline(_)
            | Cause::AzureCli(_)
            | Cause::Driver(_)
            | Cause::Credential(_) => None,
        }
    }
}

/// A duration for people: `3 s`, `1.5 s`, `250 ms`.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis < 1000 {
            write!(f, "{millis} ms")
        } else if millis.is_multiple_of(1000) {
            write!(f, "{} s", millis / 1000)
        } else {
            write!(f, "{:.1} s", self.0.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> Step {
        Step {
            operation: "Reports_GenerateTokenInGroup",
            host: "api.powerbi.com".into(),
        }
    }

    #[test]
    fn transport_errors_name_step_and_host_and_keep_the_source_apart() {
        let e = Error::transport(
            TransportError::new(TransportKind::Connect, std::io::Error::other("lookup failed")),
            step(),
        );
        assert_eq!(
            e.to_string(),
            "Reports_GenerateTokenInGroup at api.powerbi.com: could not connect"
        );
        assert_eq!(e.source().unwrap().to_string(), "lookup failed");
        assert_eq!(e.kind(), ErrorKind::Network);
        assert_eq!(e.outcome(), Outcome::ConnectionFailed);
        assert_eq!(e.host(), Some("api.powerbi.com"));
        assert!(e.was_sent());
        let too_large = Error::transport(TransportError::body_too_large(), step());
        assert_eq!(too_large.kind(), ErrorKind::BodyTooLarge);
        assert_eq!(too_large.outcome(), Outcome::Fatal);
    }

    #[test]
    fn certificate_failures_anywhere_in_the_chain_are_not_retried() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("io error")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let rustls = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let e = Error::transport(TransportError::new(TransportKind::Io, Wrapper(rustls)), step());
        assert_eq!(e.kind(), ErrorKind::Certificate);
        assert_eq!(e.outcome(), Outcome::Fatal);
        assert_eq!(
            e.to_string(),
            "Reports_GenerateTokenInGroup at api.powerbi.com: the server's TLS certificate did not verify"
        );
        assert!(e.hint().unwrap().contains("root_certificates_pem"));
        let openssl = std::io::Error::other("error:0A000086:SSL routines::certificate verify failed");
        let kind = TransportError::new(TransportKind::Connect, openssl).kind();
        assert_eq!(kind, TransportKind::Certificate);
        // A time-out stays a time-out, whatever its message.
        let timeout = std::io::Error::other("invalid peer certificate");
        assert_eq!(
            TransportError::new(TransportKind::Timeout, timeout).kind(),
            TransportKind::Timeout
        );
        let refused = std::io::Error::other("connection refused");
        assert_eq!(
            TransportError::new(TransportKind::Connect, refused).kind(),
            TransportKind::Connect
        );
    }

    #[test]
    fn invalid_input_names_no_step() {
        let e =
            Error::from(ExchangeError::invalid_input("reportId", "\"x\" is not a GUID")).at(Some(&step()));
        assert_eq!(
            e.to_string(),
            "invalid reportId: \"x\" is not a GUID (nothing was sent)"
        );
        assert!(!e.was_sent());
        assert!(e.source().is_none());
    }

    #[test]
    fn deadlines_read_well() {
        let e = Error::deadline(Duration::from_secs(3), Some(step()));
        assert_eq!(
            e.to_string(),
            "Reports_GenerateTokenInGroup at api.powerbi.com: the call's deadline of 3 s passed"
        );
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(
            Error::deadline(Duration::from_millis(1500), None).to_string(),
            "the call's deadline of 1.5 s passed"
        );
    }
}
