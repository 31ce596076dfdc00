//! The Azure host's managed-identity endpoints, as the host serves them on its own
//! address: App Service's (`GET /msi/token`, protocol 2019-08-01, secret
//! `X-IDENTITY-HEADER`) and the instance metadata service's
//! (`GET /metadata/identity/oauth2/token`, protocol 2018-02-01, `Metadata: true`), with
//! their answer and error shapes. Tokens are the emulator's JWT access tokens for the
//! identity's service principal.

use std::time::SystemTime;

use http::{HeaderMap, Response, StatusCode};
use serde_json::json;

use crate::access_token::unix_seconds;
use crate::fixture::ManagedIdentity;
use crate::reply::{Body, json_response};
use crate::state::State;

/// Which endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    AppService,
    Imds,
}

/// Answers a token request on `endpoint`.
pub(crate) fn token(
    state: &State,
    endpoint: Endpoint,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response<Body> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refuse = |status: StatusCode, error: &str, message: &str| match endpoint {
        // App Service's error shape; IMDS answers in OAuth's.
        Endpoint::AppService => json_response(
            status,
            &json!({"statusCode": status.as_u16(), "message": message}),
        ),
        Endpoint::Imds => json_response(status, &json!({"error": error, "error_description": message})),
    };
    let Some(managed) = &state.fixture.managed_identity else {
        return refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            "This host has no managed identity (the fixture names none).",
        );
    };
    match endpoint {
        Endpoint::AppService => {
            if header("x-identity-header") != Some(managed.identity_header.as_str()) {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.",
                );
            }
        }
        Endpoint::Imds => {
            if !header("metadata").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Required metadata header not specified",
                );
            }
        }
    }
    let versions: &[&str] = match endpoint {
        Endpoint::AppService => &["2019-08-01"],
        Endpoint::Imds => &["2018-02-01", "2019-08-01"],
    };
    match param("api-version") {
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required query variable 'api-version' is missing",
            );
        }
        Some(version) if !versions.contains(&version) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("Api version {version} is not supported by this endpoint"),
            );
        }
        Some(_) => {}
    }
    if param("resource") != Some(state.resource()) {
        let resource = param("resource").unwrap_or_default();
        // App Service answers a wrong resource with a vague 500, as MSAL notes.
        return match endpoint {
            Endpoint::AppService => refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "",
                "An unexpected error occured while fetching the AAD Token.",
            ),
            Endpoint::Imds => refuse(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                &format!(
                    "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}.",
                    state.fixture.tenant.domain
                ),
            ),
        };
    }
    let resource_id = match endpoint {
        Endpoint::AppService => "mi_res_id",
        Endpoint::Imds => "msi_res_id",
    };
    let selected: Option<&ManagedIdentity> = match (
        param("client_id"),
        param("object_id").or_else(|| param("principal_id")),
        param(resource_id),
    ) {
        (Some(id), None, None) => managed
            .identities
            .iter()
            .find(|i| i.client_id.eq_ignore_ascii_case(id)),
        (None, Some(id), None) => managed
            .identities
            .iter()
            .find(|i| i.object_id.eq_ignore_ascii_case(id)),
        (None, None, Some(id)) => managed.identities.iter().find(|i| {
            i.resource_id
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(id))
        }),
        (None, None, None) => managed.identities.iter().find(|i| i.system_assigned),
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Only one of client_id, object_id and the resource id may be given.",
            );
        }
    };
    let Some(identity) = selected else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "Identity not found");
    };
    let lifetime = state.access_token_lifetime();
    let now = SystemTime::now();
    let access_token = state.issue_access_token(&identity.client_id, lifetime);
    let expires_on = unix_seconds(now).saturating_add(lifetime.as_secs());
    let body = match endpoint {
        Endpoint::AppService => json!({
            "access_token": access_token,
            "expires_on": expires_on.to_string(),
            "resource": state.resource(),
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }),
        Endpoint::Imds => json!({
            "access_token": access_token,
            "refresh_token": "",
            "expires_in": lifetime.as_secs().to_string(),
            "expires_on": expires_on.to_string(),
            "not_before": unix_seconds(now).to_string(),
            "resource": state.resource(),
            "token_type": "Bearer",
        }),
    };
    json_response(StatusCode::OK, &body)
}
