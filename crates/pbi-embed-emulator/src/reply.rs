//! Building responses: JSON bodies, Power BI's and Entra ID's error shapes.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// The response body type: buffered for normal answers, streamed for some faults.
pub(crate) type Body = BoxBody<Bytes, io::Error>;

/// A buffered body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(full(serde_json::to_vec(value).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Power BI's error body: `{"error":{"code":...,"message":...}}`.
pub(crate) fn power_bi_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(status, &json!({"error": {"code": code, "message": message}}))
}

/// Power BI's error body with `pbi.error` and no message, as for 401 and 404.
pub(crate) fn power_bi_pbi_error(status: StatusCode, code: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": code, "pbi.error": {
            "code": code, "parameters": {}, "details": [], "exceptionCulprit": 1
        }}}),
    )
}

/// An Entra ID (OAuth 2.0) error, with the AADSTS code, trace and correlation ids.
pub(crate) fn entra_error(status: StatusCode, error: &str, aadsts: u32, message: &str) -> Response<Body> {
    let trace_id = crate::tokens::new_guid();
    let correlation_id = crate::tokens::new_guid();
    let timestamp = crate::clock::format_rfc3339(std::time::SystemTime::now()).replace('T', " ");
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{aadsts}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={aadsts}"),
        }),
    )
}

/// A Power BI error answer, before it becomes a response.
#[derive(Debug)]
pub(crate) struct Rejection {
    status: StatusCode,
    code: &'static str,
    /// `None`: the `pbi.error` shape without a message, as 401 and 404 have.
    message: Option<String>,
    retry_after: Option<u64>,
}

impl Rejection {
    /// 400 `InvalidRequest`.
    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidRequest",
            message: Some(message.into()),
            retry_after: None,
        }
    }

    /// 401 `PowerBINotAuthorizedException`.
    pub(crate) fn not_authorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "PowerBINotAuthorizedException",
            message: None,
            retry_after: None,
        }
    }

    /// 404 `PowerBIEntityNotFound`.
    pub(crate) fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "PowerBIEntityNotFound",
            message: None,
            retry_after: None,
        }
    }

    /// 403 `TokenExpired`.
    pub(crate) fn token_expired() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "TokenExpired",
            message: Some("Access token has expired, resubmit with a new access token".to_owned()),
            retry_after: None,
        }
    }

    /// 429 with `Retry-After` in seconds.
    pub(crate) fn throttled(retry_after_seconds: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "TooManyRequests",
            message: Some(THROTTLED_MESSAGE.to_owned()),
            retry_after: Some(retry_after_seconds),
        }
    }

    /// The response.
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut response = match &self.message {
            Some(message) => power_bi_error(self.status, self.code, message),
            None => power_bi_pbi_error(self.status, self.code),
        };
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Power BI's message for 429.
pub(crate) const THROTTLED_MESSAGE: &str = "You have exceeded the amount of requests allowed in the current time frame and further requests will fail.";
