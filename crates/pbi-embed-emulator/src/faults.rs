//! Faults on demand: answers that a broken network, proxy or service could give.
//!
//! A [`FaultRule`] says which requests it applies to, what goes wrong, and how often:
//! the next `count` matching requests, or each with a `probability`, or both. Rules are
//! tried in the order they were added; the first that applies wins.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::{Deserialize, Serialize};

use crate::reply::{self, Body};
use crate::route::Route;

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Fault {
    /// 429 with Power BI's throttling message and this `Retry-After` value (sent as given,
    /// so malformed values can be tested too).
    #[serde(rename_all = "camelCase")]
    Throttle {
        /// The `Retry-After` header value.
        retry_after: String,
    },
    /// A server error (500, 502, 503 or 504) with a Power BI error body.
    #[serde(rename_all = "camelCase")]
    ServerError {
        /// The status.
        status: u16,
    },
    /// An HTML page, as a proxy or load balancer answers.
    #[serde(rename_all = "camelCase")]
    Html {
        /// The status (200 is allowed: some proxies do that).
        status: u16,
    },
    /// A body that is not JSON, declared as JSON.
    #[serde(rename_all = "camelCase")]
    NotJson {
        /// The status.
        status: u16,
    },
    /// Any status, headers and body.
    #[serde(rename_all = "camelCase")]
    Custom {
        /// The status.
        status: u16,
        /// Headers, as name and value; a name may repeat.
        #[serde(default)]
        headers: Vec<(String, String)>,
        /// The body, as text.
        #[serde(default)]
        body: String,
    },
    /// Wait, then answer normally.
    #[serde(rename_all = "camelCase")]
    Delay {
        /// How long, in milliseconds.
        millis: u64,
    },
    /// Answer normally, but send the body one byte at a time with a pause between.
    #[serde(rename_all = "camelCase")]
    Drip {
        /// The pause, in milliseconds.
        interval_millis: u64,
    },
    /// Answer normally, but close the connection halfway through the body.
    Truncated,
    /// A 200 with a body of this many bytes, streamed.
    #[serde(rename_all = "camelCase")]
    Oversized {
        /// The body length.
        bytes: u64,
        /// Whether `Content-Length` announces it (otherwise it is chunked).
        #[serde(default)]
        advertise_length: bool,
    },
    /// Close the connection without answering.
    DropConnection,
    /// A redirect to another place.
    #[serde(rename_all = "camelCase")]
    Redirect {
        /// 301, 302, 303, 307 or 308.
        status: u16,
        /// The `Location`.
        location: String,
    },
}

/// Which requests a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum RouteMatch {
    /// Every route but the control routes.
    #[default]
    Any,
    /// The Entra ID token endpoint.
    Entra,
    /// All six GenerateToken routes.
    GenerateToken,
    /// One route.
    Only(Route),
}

impl RouteMatch {
    fn matches(self, route: Route) -> bool {
        match self {
            _ if route == Route::Control => false,
            Self::Any => true,
            Self::Entra => route == Route::EntraToken,
            Self::GenerateToken => route.is_generate_token(),
            Self::Only(only) => route == only,
        }
    }
}

/// A fault and when it applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// Which requests.
    #[serde(default)]
    pub route: RouteMatch,
    /// What goes wrong.
    pub fault: Fault,
    /// How many more requests it applies to (`None`: no limit).
    #[serde(default)]
    pub count: Option<u64>,
    /// The chance (0 to 1) that a matching request is hit (`None`: always).
    #[serde(default)]
    pub probability: Option<f64>,
}

impl FaultRule {
    /// `fault` for the next `count` requests to `route`.
    #[must_use]
    pub fn next(count: u64, route: RouteMatch, fault: Fault) -> Self {
        Self {
            route,
            fault,
            count: Some(count),
            probability: None,
        }
    }

    /// `fault` for each request to `route` with the given chance, until cleared.
    #[must_use]
    pub fn random(probability: f64, route: RouteMatch, fault: Fault) -> Self {
        Self {
            route,
            fault,
            count: None,
            probability: Some(probability),
        }
    }
}

/// The active rules.
#[derive(Default)]
pub(crate) struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    pub(crate) fn add(&self, rule: FaultRule) {
        self.lock().push(rule);
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// The fault to apply to a request to `route`, if any; counts it against its rule.
    pub(crate) fn take(&self, route: Route) -> Option<Fault> {
        let mut rules = self.lock();
        if rules.is_empty() {
            return None;
        }
        let index = rules.iter().position(|rule| {
            rule.route.matches(route) && rule.probability.is_none_or(|p| fastrand::f64() < p)
        })?;
        let rule = rules.get_mut(index)?;
        let fault = rule.fault.clone();
        if let Some(count) = &mut rule.count {
            *count = count.saturating_sub(1);
            if *count == 0 {
                rules.remove(index);
            }
        }
        Some(fault)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The pause of a [`Fault::Delay`], when that is the fault.
pub(crate) fn delay_of(fault: &Fault) -> Option<Duration> {
    match fault {
        Fault::Delay { millis } => Some(Duration::from_millis(*millis)),
        _ => None,
    }
}

/// The response a fault sends instead of the real one, for faults that replace it.
pub(crate) fn replacement(fault: &Fault, entra: bool) -> Option<Response<Body>> {
    let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // The token endpoint answers in OAuth's error shape, as Entra ID does.
    let transient = |status| {
        reply::entra_error(
            status,
            "temporarily_unavailable",
            90_033,
            "A transient error has occurred. Please try again.",
        )
    };
    Some(match fault {
        Fault::Throttle { retry_after } => {
            let mut response = if entra {
                transient(StatusCode::TOO_MANY_REQUESTS)
            } else {
                reply::power_bi_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    reply::THROTTLED_MESSAGE,
                )
            };
            if let Ok(value) = HeaderValue::from_str(retry_after) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            response
        }
        Fault::ServerError { status: code } if entra => transient(status(*code)),
        Fault::ServerError { status: code } => {
            let status = status(*code);
            let code = match status.as_u16() {
                502 => "BadGateway",
                503 => "ServiceUnavailable",
                504 => "GatewayTimeout",
                _ => "InternalServerError",
            };
            reply::power_bi_error(status, code, "An error has occurred while processing the request")
        }
        Fault::Html { status: code } => {
            let status = status(*code);
            let reason = status.canonical_reason().unwrap_or("Error");
            let page = format!(
                "<!DOCTYPE html><html><head><title>{} {reason}</title></head><body><h1>{reason}</h1>\
                 <p>The proxy could not complete the request.</p></body></html>",
                status.as_u16()
            );
            with_body(status, "text/html; charset=utf-8", reply::full(page))
        }
        Fault::NotJson { status: code } => with_body(
            status(*code),
            "application/json; charset=utf-8",
            reply::full("An error has occurred"),
        ),
        Fault::Custom {
            status: code,
            headers,
            body,
        } => {
            let mut response = Response::new(reply::full(body.clone()));
            *response.status_mut() = status(*code);
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
        Fault::Oversized {
            bytes,
            advertise_length,
        } => {
            let mut response = with_body(StatusCode::OK, "application/json; charset=utf-8", filler(*bytes));
            if *advertise_length {
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(*bytes));
            }
            response
        }
        Fault::Redirect {
            status: code,
            location,
        } => {
            let mut response = Response::new(reply::full(Bytes::new()));
            *response.status_mut() = status(*code);
            if let Ok(value) = HeaderValue::from_str(location) {
                response.headers_mut().insert(LOCATION, value);
            }
            response
        }
        Fault::Delay { .. } | Fault::Drip { .. } | Fault::Truncated | Fault::DropConnection => return None,
    })
}

/// Applies the faults that alter a real response on its way out: truncation and dripping.
pub(crate) async fn alter(fault: Option<&Fault>, response: Response<Body>) -> Response<Body> {
    let (mode, interval) = match fault {
        Some(Fault::Truncated) => (Alter::Truncate, Duration::ZERO),
        Some(Fault::Drip { interval_millis }) => (Alter::Drip, Duration::from_millis(*interval_millis)),
        _ => return response,
    };
    let (mut parts, body) = response.into_parts();
    let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let body = match mode {
        Alter::Truncate => {
            let half = bytes.slice(..bytes.len() / 2);
            let chunks = vec![
                Ok(Frame::data(half)),
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "truncated by a fault",
                )),
            ];
            StreamBody::new(futures_util::stream::iter(chunks)).boxed()
        }
        Alter::Drip => {
            let stream = futures_util::stream::unfold(0usize, move |sent| {
                let bytes = bytes.clone();
                async move {
                    if sent >= bytes.len() {
                        return None;
                    }
                    if sent > 0 {
                        tokio::time::sleep(interval).await;
                    }
                    Some((Ok(Frame::data(bytes.slice(sent..=sent))), sent + 1))
                }
            });
            StreamBody::new(stream).boxed()
        }
    };
    Response::from_parts(parts, body)
}

enum Alter {
    Truncate,
    Drip,
}

fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A streamed body of `len` bytes, produced 64 KiB at a time (never held whole).
fn filler(len: u64) -> Body {
    const CHUNK: usize = 64 * 1024;
    static BYTES: [u8; CHUNK] = [b' '; CHUNK];
    let stream = futures_util::stream::unfold(len, |remaining| async move {
        if remaining == 0 {
            return None;
        }
        let n = usize::try_from(remaining).unwrap_or(CHUNK).min(CHUNK);
        Some((
            Ok(Frame::data(Bytes::from_static(&BYTES[..n]))),
            remaining - n as u64,
        ))
    });
    StreamBody::new(stream).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_run_out() {
        let faults = Faults::default();
        faults.add(FaultRule::next(2, RouteMatch::Entra, Fault::DropConnection));
        assert_eq!(faults.take(Route::ReportsGenerateTokenInGroup), None);
        assert_eq!(faults.take(Route::EntraToken), Some(Fault::DropConnection));
        assert_eq!(faults.take(Route::Control), None);
        assert_eq!(faults.take(Route::EntraToken), Some(Fault::DropConnection));
        assert_eq!(faults.take(Route::EntraToken), None);
    }

    #[test]
    fn rules_parse_from_json() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"route":"generateToken","fault":{"kind":"throttle","retryAfter":"2"},"count":3}"#,
        )
        .unwrap();
        assert_eq!(
            rule.fault,
            Fault::Throttle {
                retry_after: "2".into()
            }
        );
        let rule: FaultRule =
            serde_json::from_str(r#"{"route":{"only":"EntraToken"},"fault":{"kind":"truncated"}}"#).unwrap();
        assert_eq!(rule.route, RouteMatch::Only(Route::EntraToken));
    }
}
