//! What sign-in libraries ask an authority before they sign in: OpenID Connect discovery
//! (`/{tenant}/v2.0/.well-known/openid-configuration`), the signing keys (`jwks_uri`) and
//! MSAL's instance discovery (`/common/discovery/instance`).
//!
//! URLs in the documents name the host the client asked for (its `Host` header, when it
//! is a plain host and port), so a client that reaches the emulator as `localhost` or
//! under a `--tls-name` is sent back to the same name its certificate covers.

use http::header::HOST;
use http::{HeaderMap, Response, StatusCode};
use serde_json::json;

use crate::reply::{Body, entra_error, json_response};
use crate::state::State;

/// Tenants that name no single tenant; their documents carry `{tenantid}` in the issuer.
const MULTI_TENANT: [&str; 3] = ["common", "organizations", "consumers"];

/// The base URL the client used: `{scheme}://{Host}`, or the emulator's own.
pub(crate) fn base(state: &State, headers: &HeaderMap) -> String {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).filter(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    });
    let scheme = state
        .base_url
        .split_once("://")
        .map_or("http", |(scheme, _)| scheme);
    match host {
        Some(host) => format!("{scheme}://{host}"),
        None => state.base_url.clone(),
    }
}

/// Which tenant id a path names: the fixture's, or a multi-tenant name; `None` for a
/// tenant that is not found.
fn tenant_id<'a>(state: &'a State, tenant: &'a str) -> Option<&'a str> {
    if state.fixture.is_tenant(tenant) {
        return Some(&state.fixture.tenant.id);
    }
    MULTI_TENANT
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tenant))
        .then_some(tenant)
}

/// Entra's answer for a tenant that is not found.
fn unknown_tenant(tenant: &str) -> Response<Body> {
    entra_error(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        90_002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) fn openid_configuration(state: &State, tenant: &str, headers: &HeaderMap) -> Response<Body> {
    let Some(tid) = tenant_id(state, tenant) else {
        return unknown_tenant(tenant);
    };
    let base = base(state, headers);
    let issuer_tenant = if tid == state.fixture.tenant.id {
        tid
    } else {
        "{tenantid}"
    };
    json_response(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{issuer_tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{base}/oidc/userinfo"),
            "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys` (and `/{tenant}/discovery/keys`): the keys that
/// sign access tokens.
pub(crate) fn keys(state: &State, tenant: &str, headers: &HeaderMap) -> Response<Body> {
    if tenant_id(state, tenant).is_none() {
        return unknown_tenant(tenant);
    }
    let issuer = format!("{}/{{tenantid}}/v2.0", base(state, headers));
    json_response(StatusCode::OK, &crate::user_token::jwks(state, &issuer))
}

/// `GET /common/discovery/instance?authorization_endpoint=…`: MSAL's instance discovery,
/// answered for the emulator's own host.
pub(crate) fn instance(state: &State, query: Option<&str>, headers: &HeaderMap) -> Response<Body> {
    let endpoint = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "authorization_endpoint")
        .map(|(_, v)| v.into_owned());
    let Some(endpoint) = endpoint.and_then(|e| url::Url::parse(&e).ok()) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request must contain the following parameter: 'authorization_endpoint'.",
        );
    };
    let tenant = endpoint
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    let base = base(state, headers);
    let host = base.split_once("://").map_or(base.as_str(), |(_, h)| h);
    json_response(
        StatusCode::OK,
        &json!({
            "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }),
    )
}
