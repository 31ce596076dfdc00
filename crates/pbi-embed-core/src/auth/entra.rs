//! Entra ID's token endpoint on the wire: the answer to a token request (the bearer token
//! and how long it lives) and Entra's error shape, which managed identity endpoints share.

use std::time::{Duration, SystemTime};

use crate::wire::redact::Secrets;
use http::Response;
use serde_json::Value;

use crate::auth::bearer::BearerToken;
use crate::settings::retry::RetryAfter;
use crate::wire::error::{self, EntraError, ExchangeError};
use crate::wire::lifetime::Freshness;
use crate::wire::response;
use crate::wire::secret::AccessToken;

/// The `Content-Type` of the token request.
pub(crate) const CONTENT_TYPE_FORM: &str = "application/x-www-form-urlencoded";

/// The longest `expires_in` believed: one day. Entra issues tokens for about an hour.
pub(crate) const MAX_EXPIRES_IN: u64 = 24 * 60 * 60;

/// A successful token response: the bearer token and how long it lives.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EntraToken {
    /// `access_token`: send it as `Authorization: Bearer …`.
    pub access_token: AccessToken,
    /// `expires_in`: its lifetime, counted from when the response was received.
    pub expires_in: Duration,
}

impl EntraToken {
    /// When the token expires, given when its response was received. The core never reads
    /// the clock: the caller passes the instant.
    #[must_use]
    pub fn expires_at(&self, received_at: SystemTime) -> SystemTime {
        received_at.checked_add(self.expires_in).unwrap_or(received_at)
    }

    /// The token with its expiry, given when its response was received.
    #[must_use]
    pub fn into_bearer(self, received_at: SystemTime) -> BearerToken {
        let expires_at = self.expires_at(received_at);
        BearerToken::new(self.access_token, expires_at)
    }

    /// How usable the token is at `now`, if it was received at `received_at`.
    #[must_use]
    pub fn freshness(&self, received_at: SystemTime, now: SystemTime, margin: Duration) -> Freshness {
        Freshness::at(self.expires_at(received_at), now, margin)
    }
}

/// Parses a response of the Entra ID token endpoint, of any status.
///
/// # Errors
/// [`ExchangeError::Entra`] for an error status, [`ExchangeError::Decode`] for a success whose body lacks
/// `access_token` or a usable `expires_in`, or whose `token_type` is not `Bearer`.
pub fn parse_token_response<B: AsRef<[u8]>>(response: &Response<B>) -> Result<EntraToken, ExchangeError> {
    const WHAT: &str = "Entra ID token";
    if !response.status().is_success() {
        return Err(entra_error(response));
    }
    let decode = |reason: String| response::decode_error(WHAT, response, reason);
    response::check_json(response).map_err(decode)?;
    let object = response::json_object(response.body().as_ref()).map_err(decode)?;
    let access_token = response::required_str(&object, "access_token").map_err(decode)?;
    if let Some(token_type) = object.get("token_type")
        && !token_type
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    {
        return Err(decode("the field `token_type` is not `Bearer`".to_owned()));
    }
    // v2 sends a number; the v1 endpoint sent a string of digits.
    let expires_in = match object.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        _ => return Err(decode("the field `expires_in` is missing".to_owned())),
    }
    .filter(|&s| s <= MAX_EXPIRES_IN)
    .ok_or_else(|| {
        decode(format!(
            "the field `expires_in` is not a number of seconds up to {MAX_EXPIRES_IN}"
        ))
    })?;
    Ok(EntraToken {
        access_token: AccessToken::new(access_token),
        expires_in: Duration::from_secs(expires_in),
    })
}

/// Parses an Entra ID error response of any shape into an [`ExchangeError::Entra`] (a managed
/// identity endpoint's too: App Service says `message` where Entra says
/// `error_description`).
pub(crate) fn entra_error<B: AsRef<[u8]>>(response: &Response<B>) -> ExchangeError {
    let body = response.body().as_ref();
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let object = parsed.as_ref().and_then(Value::as_object);
    let field = |key: &str| object.and_then(|o| o.get(key)).and_then(Value::as_str);
    let text = |key: &str| field(key).map(error::service_text).filter(|s| !s.is_empty());
    // The description keeps its line structure: its first line is the message, later
    // lines repeat the trace and correlation ids.
    let description = field("error_description")
        .or_else(|| field("message"))
        .map(|s| s.lines().map(error::service_text).collect::<Vec<_>>().join("\n"))
        .filter(|s| !s.trim().is_empty());
    let mut error = EntraError {
        status: response.status(),
        error: text("error"),
        description,
        error_codes: object
            .and_then(|o| o.get("error_codes"))
            .and_then(Value::as_array)
            .map(|codes| codes.iter().take(16).filter_map(Value::as_i64).collect())
            .unwrap_or_default(),
        trace_id: text("trace_id"),
        correlation_id: text("correlation_id"),
        request_id: response::request_id(response.headers()),
        retry_after: RetryAfter::from_headers(response.headers()),
        body_snippet: None,
    };
    if error.error.is_none() && error.description.is_none() {
        error.body_snippet = error::snippet(body);
    }
    ExchangeError::Entra(Box::new(error)).redacted(&Secrets::of_body(object))
}
