//! `/_emulator/...`: control and inspection routes, under a prefix Power BI never uses.
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /_emulator/fixture` | the fixture, credentials included (it is a local test double) |
//! | `GET /_emulator/reports/{reportId}` | a report's type, dataset, pages and their visuals (what the embed page checks a visual against) |
//! | `GET /_emulator/stats` | request counts by route, tokens minted and issued |
//! | `POST /_emulator/stats/reset` | zeroes the counts |
//! | `GET /_emulator/tokens/{tokenId}` | a minted embed token: resources, access level, identities, expiry |
//! | `POST /_emulator/introspect` | `{"token": "..."}`: whether an embed token is valid, and what it grants |
//! | `POST /_emulator/faults` | adds a fault rule (see [`FaultRule`]) |
//! | `DELETE /_emulator/faults` | removes every fault rule |
//! | `PUT /_emulator/rate-limit` | `{"requests": N, "perSeconds": S}` per principal on GenerateToken |
//! | `DELETE /_emulator/rate-limit` | removes the rate limit |
//! | `PUT /_emulator/access-token-lifetime` | `{"seconds": N}`: `expires_in` of access tokens issued from now on |
//! | `POST /_emulator/access-tokens` | `{"clientId": ..., "lifetimeSeconds": N}`: issues a bearer token directly (0 gives an expired one) |

use std::time::Duration;

use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::faults::FaultRule;
use crate::reply::{Body, json_response};
use crate::state::{MAX_ACCESS_TOKEN_LIFETIME, RateLimit, State};

/// Why a control request may not be answered, as the answer; `None` when it may be. The routes change what the emulator
/// answers and show its secrets, so only what runs on this machine may call them: a page
/// elsewhere is refused by its `Origin`, a DNS name rebound to loopback by its `Host`,
/// and a body a page could post without asking (a form, plain text) by its type.
pub(crate) fn refusal(
    state: &State,
    headers: &HeaderMap,
    method: &Method,
    body: &[u8],
) -> Option<Response<Body>> {
    let ours = |host: &str| {
        let host = host.trim_start_matches('[');
        let host = host.split_once(']').map_or_else(
            || {
                host.rsplit_once(':')
                    .filter(|(h, _)| !h.contains(':'))
                    .map_or(host, |(h, _)| h)
            },
            |(h, _)| h,
        );
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || state.hosts.iter().any(|name| name.eq_ignore_ascii_case(host))
    };
    let header = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(host) = header(HOST)
        && !ours(host)
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the control routes answer only on this machine's names (Host)",
        ));
    }
    if let Some(origin) = header(ORIGIN)
        && !origin.split_once("://").is_some_and(|(_, host)| ours(host))
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the control routes answer only pages of this machine (Origin)",
        ));
    }
    // The types a page may post anywhere without asking (a form, plain text).
    let simple = header(CONTENT_TYPE).is_some_and(|t| {
        let t = t.trim_start().to_ascii_lowercase();
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]
        .iter()
        .any(|simple| t.starts_with(simple))
    });
    if *method != Method::GET && !body.is_empty() && simple {
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON (Content-Type: application/json)",
        ));
    }
    None
}

/// Answers a control request.
pub(crate) fn control(state: &State, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    let rest = path.trim_start_matches("/_emulator").trim_end_matches('/');
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let ok = || json_response(StatusCode::OK, &json!({"ok": true}));
    match (method, segments.as_slice()) {
        (&Method::GET, ["fixture"]) => json_response(StatusCode::OK, &json!(state.fixture)),
        (&Method::GET, ["reports", id]) => match state.fixture.report(id) {
            Some((_, report)) => json_response(
                StatusCode::OK,
                &json!({
                    "id": report.id.to_ascii_lowercase(),
                    "reportType": report.report_type,
                    "datasetId": report.dataset_id.to_ascii_lowercase(),
                    "pages": report.pages,
                }),
            ),
            None => json_response(StatusCode::NOT_FOUND, &json!({"error": "no such report"})),
        },
        (&Method::GET, ["stats"]) => json_response(StatusCode::OK, &json!(state.stats())),
        (&Method::POST, ["stats", "reset"]) => {
            state.reset_stats();
            ok()
        }
        (&Method::GET, ["tokens", id]) => match state.tokens.get(id) {
            Some(token) => json_response(StatusCode::OK, &json!(token)),
            None => error(StatusCode::NOT_FOUND, &format!("no embed token with id {id}")),
        },
        (&Method::POST, ["introspect"]) => parse::<Introspect>(body).map_or_else(
            |e| *e,
            |req| {
                let found = crate::introspect(state, &req.token);
                // The embed page checks each token a host page hands it with setAccessToken.
                if req.purpose.as_deref() == Some("setAccessToken")
                    && let Some(token) = found.token.as_ref().filter(|_| found.valid)
                {
                    state.record_token_set(&token.token_id);
                }
                json_response(StatusCode::OK, &json!(found))
            },
        ),
        (&Method::GET, ["tokens-set"]) => json_response(StatusCode::OK, &json!(state.tokens_set())),
        (&Method::POST, ["faults"]) => parse::<FaultRule>(body).map_or_else(
            |e| *e,
            |rule| {
                state.faults.add(rule);
                json_response(StatusCode::CREATED, &json!({"ok": true}))
            },
        ),
        (&Method::DELETE, ["faults"]) => {
            state.faults.clear();
            ok()
        }
        (&Method::PUT, ["rate-limit"]) => parse::<RateLimit>(body).map_or_else(
            |e| *e,
            |limit| {
                state.set_rate_limit(Some(limit));
                ok()
            },
        ),
        (&Method::DELETE, ["rate-limit"]) => {
            state.set_rate_limit(None);
            ok()
        }
        // Clamped to a day, as Entra's are: `seconds` in the answer is what is issued.
        (&Method::PUT, ["access-token-lifetime"]) => match parse::<Lifetime>(body) {
            Err(refused) => *refused,
            Ok(Lifetime { seconds }) => {
                let seconds = seconds.min(MAX_ACCESS_TOKEN_LIFETIME.as_secs());
                state.set_access_token_lifetime(Duration::from_secs(seconds));
                json_response(StatusCode::OK, &json!({"ok": true, "seconds": seconds}))
            }
        },
        (&Method::POST, ["access-tokens"]) => parse::<IssueToken>(body).map_or_else(
            |e| *e,
            |req| match crate::issue_access_token(
                state,
                &req.client_id,
                Duration::from_secs(req.lifetime_seconds),
            ) {
                Some(token) => json_response(StatusCode::OK, &json!({"access_token": token})),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("no service principal {}", req.client_id),
                ),
            },
        ),
        (&Method::POST, ["user-keys", "rotate"]) => match crate::user_token::rotate(state) {
            Ok(kid) => json_response(StatusCode::OK, &json!({"kid": kid})),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
        (&Method::POST, ["user-tokens"]) => parse::<crate::UserToken>(body).map_or_else(
            |e| *e,
            |token| {
                let issued = crate::user_token::issue(state, &token, std::time::SystemTime::now());
                json_response(
                    StatusCode::OK,
                    &json!({"token": issued, "issuer": crate::user_token::issuer(state)}),
                )
            },
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no control route {method} {path}"),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Introspect {
    token: String,
    /// `setAccessToken` when the embed page checks a token handed to it to replace the
    /// one it loaded with.
    #[serde(default)]
    purpose: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lifetime {
    seconds: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IssueToken {
    client_id: String,
    lifetime_seconds: u64,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response<Body>>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, &format!("invalid body: {e}"))))
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({"error": message}))
}
