//! The IO boundary: an [`Operation`] turns into an `http::Request` and reads an
//! `http::Response`, without doing any IO itself.

use crate::wire::error::ExchangeError;

/// An HTTP request as built by this crate: a small, fully buffered body.
pub type HttpRequest = http::Request<Vec<u8>>;

/// The largest response body a caller should read; the drivers stop reading past it.
/// Power BI's answers to these calls are a few KiB.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// The largest request body sent. Power BI refuses larger ones; a request over it fails
/// as invalid input before anything is sent.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The `Content-Type` of JSON request bodies.
pub const CONTENT_TYPE_JSON: &str = "application/json; charset=utf-8";

/// One HTTP exchange with Power BI or Entra ID, described without doing any IO.
///
/// Implementations never read the clock, the environment or the network; a transport
/// sends what [`to_http`](Self::to_http) built and hands back the complete response,
/// whatever its status.
pub trait Operation {
    /// What a successful response parses into.
    type Output;

    /// A short name for logs: the REST operation id, such as `Reports_GenerateTokenInGroup`.
    fn name(&self) -> &'static str;

    /// Builds the request. It takes `&self`, so a retry can build it again.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when the inputs cannot form a valid request. Nothing was sent.
    fn to_http(&self) -> Result<HttpRequest, ExchangeError>;

    /// Reads a complete response of any status.
    #[allow(clippy::wrong_self_convention)] // The name pairs with `to_http`, as in the design.
    ///
    /// # Errors
    /// [`ExchangeError::Api`] or [`ExchangeError::Entra`] for an error status, [`ExchangeError::Decode`] for a
    /// success whose body is not what the API documents.
    fn from_http<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<Self::Output, ExchangeError>;
}
