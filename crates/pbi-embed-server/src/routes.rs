//! The broker's HTTP surface: `GET /v1/embed/{type}/{id}`, health, readiness, metrics.
//! Every answer carries `Cache-Control: no-store`; errors are `{error, code, requestId}`
//! and never carry a secret or an upstream host.

use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use pbi_embed_reqwest::{EmbedRequest, Error, ErrorKind};
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument as _;

use crate::access::{BadRequest, Params, Target};
use crate::caller::api_key::{self, KEY_HEADER};
use crate::caller::jwt::{MAX_TOKEN, unverified_issuer};
use crate::caller::{Caller, Refusal, checked_name};
use crate::{Broker, Readiness};

/// The longest query string read.
const MAX_QUERY: usize = 4096;
/// The header carrying the request's id, both ways.
const REQUEST_ID: &str = "x-request-id";
/// Development mode's header on every answer.
const DEVELOPMENT_HEADER: &str = "x-pbi-development";

pub(crate) fn router(broker: Broker) -> Router {
    let config = &broker.0.config.server;
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let development = config.development;
    let router = Router::new()
        // HEAD is answered 405: only GET mints (axum would run the GET handler for it).
        .route("/v1/embed/{kind}/{id}", get(embed).head(not_allowed))
        .route(
            "/healthz",
            get(|| async { Json(json!({"status": "ok"})) }).head(not_allowed),
        )
        .route("/readyz", get(readyz).head(not_allowed))
        .route("/metrics", get(metrics).head(not_allowed))
        .route("/pbi-embed-client.js", get(companion).head(not_allowed))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "NotFound", "no such route", None) })
        .with_state(broker)
        .layer(axum::middleware::map_response(
            move |mut response: Response| async move {
                let headers = response.headers_mut();
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                if development {
                    headers.insert(
                        DEVELOPMENT_HEADER,
                        HeaderValue::from_static("identity from the query string; never in production"),
                    );
                }
                response
            },
        ));
    if origins.is_empty() {
        return router;
    }
    router.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET])
            .allow_headers([AUTHORIZATION])
            .max_age(Duration::from_secs(600)),
    )
}

async fn not_allowed() -> Response {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "only GET",
        None,
    );
    response
        .headers_mut()
        .insert("allow", HeaderValue::from_static("GET"));
    response
}

/// `{error, code, requestId}` with `status`.
fn error_response(status: StatusCode, code: &str, message: &str, request_id: Option<&str>) -> Response {
    (
        status,
        Json(json!({"error": message, "code": code, "requestId": request_id})),
    )
        .into_response()
}

fn bad_request(bad: &BadRequest) -> Response {
    let body = json!({"error": format!("{}: {}", bad.field, bad.message), "code": "BadRequest", "field": bad.field, "requestId": null});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn refused(refusal: &Refusal) -> Response {
    match refusal {
        Refusal::Unauthenticated(why) => {
            let mut response = error_response(StatusCode::UNAUTHORIZED, "Unauthenticated", why, None);
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Refusal::Forbidden(why) => error_response(StatusCode::FORBIDDEN, "Forbidden", why, None),
        Refusal::Unavailable { reason, retry_after } => with_retry_after(
            error_response(StatusCode::SERVICE_UNAVAILABLE, "IssuerUnavailable", reason, None),
            *retry_after,
        ),
    }
}

/// `response` with `Retry-After` in whole seconds (1 s to an hour).
fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    let seconds = wait.as_secs().clamp(1, 3600);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// What Power BI or Entra said, for a browser: its code and RequestId, in the broker's
/// words (never the upstream host or its text, which may quote a secret).
fn upstream(error: &Error) -> Response {
    let code = error.code();
    let request_id = error.request_id();
    let (status, message) = match error.kind() {
        ErrorKind::RlsIdentity if !error.was_sent() => (
            StatusCode::FORBIDDEN,
            // The pre-flight's own words: the dataset and what the identity lacks.
            error.to_string(),
        ),
        ErrorKind::RlsIdentity => (
            StatusCode::FORBIDDEN,
            "Power BI refused the row-level-security identity for this item".into(),
        ),
        ErrorKind::NotFound => (
            StatusCode::NOT_FOUND,
            "Power BI does not know this item in the customer's workspace".into(),
        ),
        ErrorKind::InvalidInput if !error.was_sent() => (StatusCode::BAD_REQUEST, error.to_string()),
        ErrorKind::Throttled => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Power BI is throttling: try again later".into(),
        ),
        ErrorKind::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "Power BI did not answer in time".into(),
        ),
        ErrorKind::SignIn
        | ErrorKind::TokenSource
        | ErrorKind::NotAuthorized
        | ErrorKind::Forbidden
        | ErrorKind::TokenExpired => (
            StatusCode::BAD_GATEWAY,
            "the broker is not allowed to embed this item: see its log".into(),
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "Power BI could not be reached or failed".into(),
        ),
    };
    let response = error_response(
        status,
        code.unwrap_or_else(|| kind_code(error.kind())),
        &message,
        request_id,
    );
    match error.retry_after() {
        Some(wait) => with_retry_after(response, wait.delay_from(SystemTime::now())),
        None => response,
    }
}

fn kind_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::RlsIdentity => "RlsIdentity",
        ErrorKind::NotFound => "NotFound",
        ErrorKind::Throttled => "Throttled",
        ErrorKind::Timeout => "Timeout",
        ErrorKind::InvalidInput => "InvalidInput",
        _ => "Upstream",
    }
}

/// The query's parameters, refusing a repeated one and a long query.
fn params(query: Option<&str>) -> Result<Params, BadRequest> {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY {
        return Err(BadRequest {
            field: "query".into(),
            message: format!("is longer than {MAX_QUERY} bytes"),
        });
    }
    let mut params: Params = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(n, _)| *n == name) {
            return Err(BadRequest {
                field: name.into_owned(),
                message: "is given more than once".into(),
            });
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    Ok(params)
}

/// Who is calling: a bearer JWT, an API key, or (development mode) the query string.
async fn authenticate(broker: &Broker, headers: &HeaderMap, params: &mut Params) -> Result<Caller, Refusal> {
    let inner = &broker.0;
    if let Some(key) = headers.get(KEY_HEADER) {
        return api_key::authenticate(&inner.config.api_keys, key.as_bytes(), headers);
    }
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| Refusal::Unauthenticated("the Authorization header is not text".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                Refusal::Unauthenticated("the Authorization header is not a bearer token".into())
            })?;
        if token.len() > MAX_TOKEN {
            return Err(Refusal::Unauthenticated(format!(
                "the bearer token is over {MAX_TOKEN} bytes"
            )));
        }
        let iss = unverified_issuer(token);
        let issuer = inner
            .issuers
            .iter()
            .find(|i| iss.as_deref().is_some_and(|iss| i.claims_to_be(iss)))
            .ok_or_else(|| {
                Refusal::Unauthenticated("the bearer token is not from a configured issuer".into())
            })?;
        return issuer.authenticate(token).await;
    }
    if inner.config.server.development {
        let mut take = |name: &str| {
            params
                .iter()
                .position(|(n, _)| n == name)
                .map(|at| params.remove(at).1)
        };
        let customer = take("customer").ok_or_else(|| {
            Refusal::Unauthenticated("development mode: name the customer in ?customer=".into())
        })?;
        let username = take("username")
            .map(|u| checked_name("username", &u))
            .transpose()?;
        let roles = take("roles")
            .map(|r| {
                r.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(|r| checked_name("role", r))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        tracing::warn!(%customer, "development mode: the identity is taken from the query string");
        return Ok(Caller {
            id: "development".into(),
            customer,
            username,
            roles,
        });
    }
    Err(Refusal::Unauthenticated(
        "no credentials: send Authorization: Bearer <token> or X-Api-Key".into(),
    ))
}

/// The request's id: the caller's `X-Request-Id` when it is a plain token (a proxy's),
/// else a new one. It is logged and sent back.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(|| format!("{:016x}", fastrand::u64(..)), str::to_owned)
}

async fn embed(
    State(broker): State<Broker>,
    Path((kind, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let route: &'static str = match kind.as_str() {
        "report" => "report",
        "paginated" => "paginated",
        "dashboard" => "dashboard",
        "tile" => "tile",
        "visual" => "visual",
        "qna" => "qna",
        "create" => "create",
        "reports" => "reports",
        _ => "unknown",
    };
    let request_id = request_id(&headers);
    let span = tracing::info_span!("request", request_id = %request_id, route);
    let (mut response, customer) = answer(&broker, &kind, &id, query.as_deref(), &headers)
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    let took = started.elapsed();
    broker.0.metrics.request(route, status, customer.as_deref(), took);
    span.in_scope(|| {
        tracing::info!(
            status,
            customer = customer.as_deref().unwrap_or(""),
            micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The answer, and the customer it was for (once known).
async fn answer(
    broker: &Broker,
    kind: &str,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> (Response, Option<String>) {
    let inner = &broker.0;
    let mut params = match params(query) {
        Ok(params) => params,
        Err(bad) => return (bad_request(&bad), None),
    };
    let caller = match authenticate(broker, headers, &mut params).await {
        Ok(caller) => caller,
        Err(refusal) => return (refused(&refusal), None),
    };
    let customer_id = Some(caller.customer.clone());
    if let Err(wait) = inner.limit.take(&caller.id, Instant::now()) {
        inner.metrics.rate_limited();
        let response = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "this caller's rate limit is reached",
            None,
        );
        return (with_retry_after(response, wait), customer_id);
    }
    let target = match Target::parse(kind, id, &mut params) {
        Ok(target) => target,
        Err(bad) => return (bad_request(&bad), customer_id),
    };
    if let Some((name, _)) = params.first() {
        let bad = BadRequest {
            field: name.clone(),
            message: format!("is not a parameter of {}", target.kind()),
        };
        return (bad_request(&bad), customer_id);
    }
    let Some(customer) = inner.config.customers.get(&caller.customer) else {
        let refusal = Refusal::Forbidden(format!("customer {:?} is not configured", caller.customer));
        return (refused(&refusal), customer_id);
    };
    let request = match target.authorize(customer, &caller) {
        Ok(request) => request,
        Err(refusal) => return (refused(&refusal), customer_id),
    };
    (mint(broker, &target, &request).await, customer_id)
}

/// The configuration(s), with when to ask again.
async fn mint(broker: &Broker, target: &Target, request: &EmbedRequest) -> Response {
    let client = &broker.0.client;
    let result = match target {
        Target::Reports(_) => client.embed_configs(request).await,
        _ => client.embed_config(request).await.map(|config| vec![config]),
    };
    match result {
        Ok(configs) => {
            broker.set_readiness(Readiness::Ready);
            let expiration = configs
                .iter()
                .map(|c| c.expiration)
                .min()
                .unwrap_or_else(SystemTime::now);
            let margin = broker.0.config.powerbi.embed_margin;
            let refresh_at = refresh_at(expiration, margin, SystemTime::now());
            let mut body = match target {
                Target::Reports(_) => json!({ "configs": configs }),
                _ => serde_json::to_value(&configs[0]).unwrap_or(Value::Null),
            };
            if let Value::Object(map) = &mut body {
                map.insert("refreshAt".into(), Value::String(rfc3339(refresh_at)));
            }
            Json(body).into_response()
        }
        Err(error) => {
            broker.0.metrics.failure(error.kind().to_string());
            if matches!(error.kind(), ErrorKind::SignIn | ErrorKind::TokenSource) {
                broker.set_readiness(Readiness::NotReady(format!("cannot sign in: {}", error.kind())));
            }
            tracing::warn!(
                kind = %error.kind(),
                status = error.status().map(|s| s.as_u16()),
                code = error.code(),
                powerbi_request_id = error.request_id(),
                %error,
                "embed failed"
            );
            upstream(&error)
        }
    }
}

/// When a browser should ask for a new token: when the broker's cache stops serving this
/// one (`margin` before it expires, and a second after, so that a browser's clock a little
/// ahead does not get the same token again), or halfway through what is left of it when
/// the margin is longer than that (a token minted too short to be cached).
pub(crate) fn refresh_at(expiration: SystemTime, margin: Duration, now: SystemTime) -> SystemTime {
    let left = expiration.duration_since(now).unwrap_or_default();
    let before = margin.saturating_sub(Duration::from_secs(1)).min(left / 2);
    expiration.checked_sub(before).unwrap_or(now)
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The browser companion, `pbi-embed-client.js`.
async fn companion() -> Response {
    (
        [("content-type", "text/javascript; charset=utf-8")],
        include_str!("../js/pbi-embed-client.js"),
    )
        .into_response()
}

async fn readyz(State(broker): State<Broker>) -> Response {
    match broker.readiness() {
        Readiness::Ready => Json(json!({"status": "ready"})).into_response(),
        Readiness::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        )
            .into_response(),
        Readiness::NotReady(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": why})),
        )
            .into_response(),
    }
}

async fn metrics(State(broker): State<Broker>) -> Response {
    let mut text = broker.0.metrics.render(broker.readiness() == Readiness::Ready);
    crate::metrics::render_client(&mut text, &broker.0.client.stats());
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_refused_and_a_long_query_too() {
        let bad = params(Some("username=alice&username=bob")).unwrap_err();
        assert_eq!(bad.field, "username");
        assert!(params(Some(&"a".repeat(MAX_QUERY + 1))).is_err());
        assert_eq!(
            params(Some("page=p1")).unwrap(),
            [("page".to_owned(), "p1".to_owned())]
        );
    }

    #[test]
    fn refresh_comes_when_the_cache_has_a_new_token() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(600);
        let hour = refresh_at(now + Duration::from_secs(3600), margin, now);
        assert_eq!(
            hour,
            now + Duration::from_secs(3000 + 1),
            "a second into the margin"
        );
        let minute = refresh_at(now + Duration::from_secs(60), margin, now);
        assert_eq!(
            minute,
            now + Duration::from_secs(30),
            "halfway for a token too short to cache"
        );
        let expired = now - Duration::from_secs(5);
        assert_eq!(
            refresh_at(expired, margin, now),
            expired,
            "already expired: at once"
        );
    }
}
