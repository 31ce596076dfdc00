//! `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant, as Entra ID answers it.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, Response, StatusCode};
use serde_json::json;

use crate::fixture::ServicePrincipal;
use crate::reply::{Body, entra_error, json_response};
use crate::state::State;

/// Answers a token request for `tenant` with this form body.
pub(crate) fn token(state: &State, tenant: &str, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    let form_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'grant_type'. The request must be sent as application/x-www-form-urlencoded.",
        );
    }
    let mut form = std::collections::HashMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if form
            .insert(key.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90_015,
                &format!("Requested query string is too long or contains a duplicate parameter: '{key}'."),
            );
        }
    }
    // client_secret_basic (RFC 6749 §2.3.1): the id and secret, form-encoded, in Basic auth.
    let basic = match basic_credentials(headers) {
        Ok(basic) => basic,
        Err(reason) => {
            return entra_error(StatusCode::UNAUTHORIZED, "invalid_client", 7_000_218, reason);
        }
    };
    if basic.is_some() && form.contains_key("client_secret") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_014,
            "The client secret was given twice: in the Authorization header and in the body. Use one method.",
        );
    }
    if let Some((id, secret)) = basic {
        if form.get("client_id").is_some_and(|body_id| *body_id != id) {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900_144,
                "The client_id in the body does not match the one in the Authorization header.",
            );
        }
        form.insert("client_id".to_owned(), id);
        form.insert("client_secret".to_owned(), secret);
    }
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let fixture = &state.fixture;
    if !fixture.is_tenant(tenant) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let Some(grant_type) = field("grant_type") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    };
    if grant_type != "client_credentials" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = field("client_id") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(principal) = fixture.principal(client_id) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                fixture.tenant.domain
            ),
        );
    };
    let Some(scope) = field("scope") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    if scope != fixture.scope {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70_011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        );
    }
    if let Some(assertion_type) = field("client_assertion_type") {
        return with_assertion(
            state,
            tenant,
            principal,
            assertion_type,
            field("client_assertion"),
            form.contains_key("client_secret"),
        );
    }
    match field("client_secret") {
        None => entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ),
        Some(secret) if secret != principal.client_secret => entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                principal.client_id
            ),
        ),
        Some(_) => issued(state, &principal.client_id, Proof::Secret),
    }
}

/// The `client_assertion` sign-in (a certificate's signed JWT).
fn with_assertion(
    state: &State,
    tenant: &str,
    principal: &ServicePrincipal,
    assertion_type: &str,
    assertion: Option<&str>,
    also_secret: bool,
) -> Response<Body> {
    if assertion_type != JWT_BEARER {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            &format!("The client_assertion_type must be '{JWT_BEARER}'."),
        );
    }
    if also_secret {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "Send either a client_secret or a client_assertion, not both.",
        );
    }
    let Some(assertion) = assertion else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'client_assertion'.",
        );
    };
    let endpoint = format!("/{tenant}/oauth2/v2.0/token");
    match crate::assertion::verify(state, assertion, principal, &endpoint) {
        Ok(()) => issued(state, &principal.client_id, Proof::Certificate),
        Err(refusal) => entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            refusal.aadsts,
            &refusal.message,
        ),
    }
}

/// `client_assertion_type` for a JWT.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the app proved itself (the token's `appidacr`).
#[derive(Clone, Copy)]
enum Proof {
    Secret,
    Certificate,
}

/// The successful answer: a JWT access token for `client_id`.
fn issued(state: &State, client_id: &str, proof: Proof) -> Response<Body> {
    let lifetime = state.access_token_lifetime();
    let appidacr = match proof {
        Proof::Secret => "1",
        Proof::Certificate => "2",
    };
    let access_token = state.issue_access_token_as(client_id, lifetime, appidacr);
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": access_token,
        }),
    )
}

/// The client id and secret of an `Authorization: Basic` header, if there is one.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, &'static str> {
    use base64::Engine as _;
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = "The Authorization header is not valid Basic authentication of the client id and secret.";
    let text = value.to_str().map_err(|_| malformed)?;
    let Some(encoded) = text
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
    else {
        return Err(malformed);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or(malformed)?;
    let form_decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((form_decode(id), form_decode(secret))))
}
