//! What one exchange with Power BI or Entra ID can end in: [`ExchangeError`], and the
//! [`ErrorKind`] every error of the crate is sorted into.
//!
//! Every variant says whether the request was sent. Status, error code, message,
//! `RequestId` and `Retry-After` are accessors, not text to parse. A successful (2xx)
//! body is never kept in an error, since it holds a token; a failed body is kept only as
//! a short, sanitized snippet when it is not the documented JSON shape.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

use crate::wire::redact::Secrets;
use crate::wire::retry_after::RetryAfter;
pub use crate::wire::service_error::{ApiError, EntraError, PbiError, PbiErrorDetail};

/// Any error a transport, a token source or a store reports, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most bytes of a non-JSON error body kept in an error.
pub const BODY_SNIPPET_BYTES: usize = 512;
/// The most characters of a service-supplied code or message kept in an error.
const MAX_TEXT_CHARS: usize = 2048;

/// What went wrong, in the categories a caller acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The inputs cannot form a valid request. Nothing was sent.
    InvalidInput,
    /// Power BI said the Entra access token has expired (403 `TokenExpired`): sign in again.
    TokenExpired,
    /// 401: the caller is not allowed (service principals disabled for the tenant, not a
    /// member of the workspace, a missing permission).
    NotAuthorized,
    /// Any other 403, including the embed-token quota of a shared capacity.
    Forbidden,
    /// 404: the workspace or item does not exist, or the caller cannot see it.
    NotFound,
    /// 400 about row-level security: an effective identity or its roles are required,
    /// or an identity was sent for a dataset that takes none.
    RlsIdentity,
    /// Any other 4xx: the request was malformed or refused.
    BadRequest,
    /// 408: the service timed out waiting for the request.
    RequestTimeout,
    /// 429: too many requests; see [`ExchangeError::retry_after`].
    Throttled,
    /// 5xx: the service failed.
    ServerError,
    /// Entra ID refused the sign-in (a wrong tenant, client id, secret or scope).
    SignIn,
    /// A response that is not what the API documents (a body that does not parse, a
    /// missing field, an unexpected status such as a redirect).
    UnreadableResponse,
    /// The connection failed or broke before a complete response arrived.
    Network,
    /// The server's TLS certificate did not verify (another name, expired, an
    /// authority not trusted here). Not retried.
    Certificate,
    /// The exchange took longer than the configured time-out.
    Timeout,
    /// The response body was larger than the configured cap.
    BodyTooLarge,
    /// A caller-supplied token source failed to give a bearer token.
    TokenSource,
    /// The driver pumping the call broke the flow's protocol (it handed back something
    /// other than what the call asked for): a bug in that driver.
    Driver,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidInput => "invalid input",
            Self::TokenExpired => "access token expired",
            Self::NotAuthorized => "not authorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not found",
            Self::RlsIdentity => "row-level security identity",
            Self::BadRequest => "bad request",
            Self::RequestTimeout => "request timeout",
            Self::Throttled => "throttled",
            Self::ServerError => "server error",
            Self::SignIn => "sign-in refused",
            Self::UnreadableResponse => "unreadable response",
            Self::Network => "network failure",
            Self::Certificate => "TLS certificate not trusted",
            Self::Timeout => "timed out",
            Self::BodyTooLarge => "response too large",
            Self::TokenSource => "token source failed",
            Self::Driver => "driver protocol broken",
        })
    }
}

/// An error from building a request or reading a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The inputs cannot form a valid request. Nothing was sent.
    #[error("invalid {field}: {reason} (nothing was sent)")]
    InvalidInput {
        /// The field at fault, named as on the wire (`identities[0].roles`).
        field: Cow<'static, str>,
        /// What is wrong with it.
        reason: String,
    },
    /// Power BI answered with an error status. The request was sent.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// Entra ID refused the token request. The request was sent.
    #[error("{0}")]
    Entra(Box<EntraError>),
    /// A response could not be read as the API documents it. The request was sent.
    #[error("{0}")]
    Decode(Box<DecodeError>),
    /// The RLS pre-flight found that the identities do not suit a dataset. No embed
    /// token was minted (the item's metadata may have been read).
    #[error("row-level security check failed for dataset {dataset}: it {reason} (no token was minted)")]
    RlsPreflight {
        /// The dataset, by name and id.
        dataset: String,
        /// What is wrong and what to change.
        reason: String,
    },
}

impl ExchangeError {
    /// This error with every one of `secrets` removed from what the service said: an
    /// endpoint that echoes the request (a header, the form) must not put a secret into
    /// an error, which reaches logs and, in a service, callers.
    #[must_use]
    pub(crate) fn redacted(mut self, secrets: &Secrets) -> Self {
        match &mut self {
            Self::Api(api) => api.redact(secrets),
            Self::Entra(entra) => entra.redact(secrets),
            Self::Decode(decode) => secrets.scrub(&mut decode.reason),
            Self::InvalidInput { reason, .. } | Self::RlsPreflight { reason, .. } => secrets.scrub(reason),
        }
        self
    }

    /// An [`ExchangeError::InvalidInput`] for `field`.
    pub fn invalid_input(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The category of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::Api(e) => e.kind(),
            Self::Entra(e) => e.kind(),
            Self::Decode(_) => ErrorKind::UnreadableResponse,
            Self::RlsPreflight { .. } => ErrorKind::RlsIdentity,
        }
    }

    /// The HTTP status of the response, when there was one.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::InvalidInput { .. } | Self::RlsPreflight { .. } => None,
            Self::Api(e) => Some(e.status),
            Self::Entra(e) => Some(e.status),
            Self::Decode(e) => Some(e.status),
        }
    }

    /// The service's error code: Power BI's `error.code` or Entra's `error`.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.code(),
            Self::Entra(e) => e.error(),
            _ => None,
        }
    }

    /// The service's message: Power BI's `error.message` or Entra's `error_description`.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.message(),
            Self::Entra(e) => e.description(),
            _ => None,
        }
    }

    /// The request id to quote to Microsoft support: Power BI's `RequestId` header, or
    /// Entra's `x-ms-request-id`.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.request_id(),
            Self::Entra(e) => e.request_id(),
            Self::Decode(e) => e.request_id(),
            Self::InvalidInput { .. } | Self::RlsPreflight { .. } => None,
        }
    }

    /// The `Retry-After` the service sent, if any.
    #[must_use]
    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            Self::Api(e) => e.retry_after(),
            Self::Entra(e) => e.retry_after(),
            _ => None,
        }
    }

    /// The Power BI error, when this is one.
    #[must_use]
    pub fn as_api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The Entra ID error, when this is one.
    #[must_use]
    pub fn as_entra(&self) -> Option<&EntraError> {
        match self {
            Self::Entra(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the request was sent (every variant but [`ExchangeError::InvalidInput`]).
    #[must_use]
    pub fn was_sent(&self) -> bool {
        !matches!(self, Self::InvalidInput { .. })
    }
}

/// A response that could not be read as the API documents it.
#[derive(Clone, Debug)]
pub struct DecodeError {
    pub(crate) what: &'static str,
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
    pub(crate) request_id: Option<String>,
}

impl DecodeError {
    /// What was being read, for example `EmbedToken`.
    #[must_use]
    pub fn what(&self) -> &'static str {
        self.what
    }
    /// The HTTP status of the response.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// What was wrong with it. Never quotes a successful body.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
    /// The `RequestId` (or `x-ms-request-id`) response header.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not read the {} response ({}): {}",
            self.what,
            status_text(self.status),
            self.reason
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " (RequestId {id})")?;
        }
        Ok(())
    }
}

/// `400 Bad Request`, or just `599` for a status without a reason phrase.
pub(crate) fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Makes service-supplied text safe to print: no control characters (terminal escapes,
/// line breaks), white space folded, bounded in length.
pub(crate) fn sanitize(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars));
    let mut count = 0;
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if count == max_chars {
            out.push('…');
            break;
        }
        out.push(c);
        count += 1;
    }
    out.trim().to_owned()
}

/// Sanitizes a code or message from a service.
pub(crate) fn service_text(text: &str) -> String {
    sanitize(text, MAX_TEXT_CHARS)
}

/// Sanitizes the start of a body that is not the documented JSON error shape. A JSON
/// body is quoted with its credential fields (`token`, `access_token`, ...) redacted: an
/// error status does not make a token-shaped body safe to print.
pub(crate) fn snippet(body: &[u8]) -> Option<String> {
    let redacted = crate::wire::redact::redacted_json(body);
    let body = redacted.as_deref().map_or(body, str::as_bytes);
    let head = body.get(..BODY_SNIPPET_BYTES).unwrap_or(body);
    let text = sanitize(&String::from_utf8_lossy(head), BODY_SNIPPET_BYTES);
    if text.is_empty() {
        return None;
    }
    if body.len() > BODY_SNIPPET_BYTES && !text.ends_with('…') {
        Some(format!("{text}…"))
    } else {
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_escapes_and_bounds() {
        assert_eq!(sanitize("a\u{1b}[31mred\r\n\tb", 100), "a [31mred b");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(snippet(b"   "), None);
        assert_eq!(snippet(&[0xff, b'x']).as_deref(), Some("\u{fffd}x"));
        let long = vec![b'a'; 4096];
        let s = snippet(&long).unwrap();
        assert!(s.chars().count() <= BODY_SNIPPET_BYTES + 1);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn snippets_of_json_bodies_hide_their_credentials() {
        let quoted = snippet(br#"{"token":"H4sIsecret","access_token":"eyJsecret","note":"kept"}"#).unwrap();
        assert!(!quoted.contains("secret"), "{quoted}");
        assert!(
            quoted.contains("kept") && quoted.contains("[redacted]"),
            "{quoted}"
        );
    }

    #[test]
    fn errors_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<ExchangeError>();
    }

    #[test]
    fn invalid_input_names_the_field() {
        let e = ExchangeError::invalid_input("identities[0].roles", "has 51 roles; at most 50");
        assert_eq!(
            e.to_string(),
            "invalid identities[0].roles: has 51 roles; at most 50 (nothing was sent)"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.was_sent());
    }
}
