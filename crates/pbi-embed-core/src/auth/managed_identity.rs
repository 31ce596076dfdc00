//! Managed identity: the token endpoint of the Azure host itself, as a sans-IO request and
//! response. App Service, Functions and Container Apps name it in `IDENTITY_ENDPOINT`
//! (with the secret `IDENTITY_HEADER`); VMs, scale sets and AKS nodes have the instance
//! metadata service (IMDS) at `http://169.254.169.254`, or at the host that
//! `AZURE_POD_IDENTITY_AUTHORITY_HOST` (or the caller) names.
//!
//! Both endpoints are on the machine or its link-local network and speak plain HTTP, so
//! unlike every other endpoint, `http://` is accepted for them.
//!
//! ```
//! use pbi_embed_core::{ManagedIdentity, UserAssignedId};
//!
//! let app_service = ManagedIdentity::app_service("http://127.0.0.1:41741/msi/token", "header-secret")?;
//! let vm = ManagedIdentity::imds_at("http://127.0.0.1:8080")?
//!     .user_assigned(UserAssignedId::ClientId("00000000-0000-0000-0000-000000000001".into()));
//! assert!(!format!("{app_service:?}").contains("header-secret"));
//! # let _ = vm;
//! # Ok::<(), pbi_embed_core::ExchangeError>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, HeaderName, HeaderValue};
use http::{Method, Response};
use serde_json::Value;

use super::entra::{EntraToken, MAX_EXPIRES_IN, entra_error};
use super::sign_in::{Attempt, SignIn, SignInError, SignInInput, SignInStep, unasked};
use crate::wire::error::ExchangeError;
use crate::wire::operation::HttpRequest;
use crate::wire::response;
use crate::wire::secret::AccessToken;

/// Where the instance metadata service answers unless told otherwise.
pub const IMDS_HOST: &str = "http://169.254.169.254";
/// The App Service protocol version.
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// The IMDS protocol version.
const IMDS_API_VERSION: &str = "2018-02-01";
/// The longest identity id or header accepted.
const MAX_ID_LEN: usize = 1024;

/// A user-assigned identity, by one of its ids.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserAssignedId {
    /// Its client (application) id.
    ClientId(String),
    /// Its object (principal) id.
    ObjectId(String),
    /// Its Azure resource id (`/subscriptions/…/userAssignedIdentities/…`).
    ResourceId(String),
}

/// A managed identity: which endpoint, and which identity (the system-assigned one
/// unless a user-assigned one is named).
///
/// ```
/// use pbi_embed_core::{ManagedIdentity, UserAssignedId};
///
/// // App Service, Functions, Container Apps: what the host sets in IDENTITY_ENDPOINT and
/// // IDENTITY_HEADER (`ClientBuilder::managed_identity_from_env` reads them).
/// let app_service = ManagedIdentity::app_service("http://127.0.0.1:41741/msi/token", "a-secret-header")?;
/// // A VM or an AKS node: the instance metadata service, for a user-assigned identity.
/// let vm = ManagedIdentity::imds().user_assigned(UserAssignedId::ClientId("0b5e4c8a-1f2d-4c3b-9a8e-7d6c5b4a3f21".into()));
/// assert_eq!(vm.endpoint(), "http://169.254.169.254/metadata/identity/oauth2/token");
/// assert!(!format!("{app_service:?}").contains("a-secret-header"));
/// # Ok::<(), pbi_embed_core::ExchangeError>(())
/// ```
#[derive(Clone)]
pub struct ManagedIdentity {
    source: Source,
    user_assigned: Option<UserAssignedId>,
}

#[derive(Clone)]
enum Source {
    AppService { endpoint: url::Url, header: String },
    Imds { endpoint: url::Url },
}

impl fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, endpoint) = match &self.source {
            Source::AppService { endpoint, .. } => ("AppService", endpoint),
            Source::Imds { endpoint } => ("Imds", endpoint),
        };
        f.debug_struct("ManagedIdentity")
            .field("source", &kind)
            .field("endpoint", &endpoint.as_str())
            .field("user_assigned", &self.user_assigned)
            .finish_non_exhaustive()
    }
}

/// An http(s) URL with a host, no credentials or fragment.
fn endpoint_url(field: &'static str, text: &str) -> Result<url::Url, ExchangeError> {
    if text.len() > 2048 {
        return Err(ExchangeError::invalid_input(field, "is longer than 2048 bytes"));
    }
    let url = url::Url::parse(text)
        .map_err(|e| ExchangeError::invalid_input(field, format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ExchangeError::invalid_input(
            field,
            "must be an http:// or https:// URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(ExchangeError::invalid_input(
            field,
            "must not carry credentials or a fragment",
        ));
    }
    Ok(url)
}

/// A value that goes into a query or header: 1 to 1,024 visible characters.
fn checked_value(field: &'static str, value: &str) -> Result<(), ExchangeError> {
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(ExchangeError::invalid_input(
            field,
            "must be 1 to 1024 characters, no control characters",
        ));
    }
    Ok(())
}

impl ManagedIdentity {
    /// App Service, Functions or Container Apps: `IDENTITY_ENDPOINT` and the secret
    /// `IDENTITY_HEADER`.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] for an endpoint that is not an http(s) URL, or an empty
    /// header (never quoted).
    pub fn app_service(endpoint: &str, identity_header: impl Into<String>) -> Result<Self, ExchangeError> {
        let header = identity_header.into();
        checked_value("IDENTITY_HEADER", &header)?;
        HeaderValue::from_str(&header)
            .map_err(|_| ExchangeError::invalid_input("IDENTITY_HEADER", "is not a valid header value"))?;
        let endpoint = endpoint_url("IDENTITY_ENDPOINT", endpoint)?;
        if endpoint.query().is_some() {
            return Err(ExchangeError::invalid_input(
                "IDENTITY_ENDPOINT",
                "must not carry a query",
            ));
        }
        Ok(Self {
            source: Source::AppService { endpoint, header },
            user_assigned: None,
        })
    }

    /// The instance metadata service at its well-known address, `http://169.254.169.254`.
    #[must_use]
    pub fn imds() -> Self {
        Self::imds_at(IMDS_HOST).unwrap_or_else(|_| unreachable!("the IMDS address is a valid URL"))
    }

    /// The instance metadata service at another host (`AZURE_POD_IDENTITY_AUTHORITY_HOST`,
    /// or a local stand-in): `{host}/metadata/identity/oauth2/token`.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] for a host that is not an http(s) URL without a path.
    pub fn imds_at(host: &str) -> Result<Self, ExchangeError> {
        let base = endpoint_url("imdsHost", host.trim_end_matches('/'))?;
        if !matches!(base.path(), "" | "/") || base.query().is_some() {
            return Err(ExchangeError::invalid_input(
                "imdsHost",
                "must be scheme://host[:port] only",
            ));
        }
        let endpoint = base
            .join("/metadata/identity/oauth2/token")
            .map_err(|e| ExchangeError::invalid_input("imdsHost", e.to_string()))?;
        Ok(Self {
            source: Source::Imds { endpoint },
            user_assigned: None,
        })
    }

    /// Uses this user-assigned identity instead of the system-assigned one.
    #[must_use]
    pub fn user_assigned(mut self, id: UserAssignedId) -> Self {
        self.user_assigned = Some(id);
        self
    }

    /// The endpoint's URL (no secret in it).
    #[must_use]
    pub fn endpoint(&self) -> &str {
        match &self.source {
            Source::AppService { endpoint, .. } | Source::Imds { endpoint } => endpoint.as_str(),
        }
    }

    /// The REST-like name of the sign-in step, for errors and logs.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        match self.source {
            Source::AppService { .. } => "ManagedIdentity_AppService",
            Source::Imds { .. } => "ManagedIdentity_Imds",
        }
    }

    /// The token request for `resource` (a v1 resource such as
    /// `https://analysis.windows.net/powerbi/api`, not a scope).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when a user-assigned id is empty or too long.
    pub fn to_http(&self, resource: &str) -> Result<HttpRequest, ExchangeError> {
        let (mut url, version, resource_id_name) = match &self.source {
            Source::AppService { endpoint, .. } => (endpoint.clone(), APP_SERVICE_API_VERSION, "mi_res_id"),
            Source::Imds { endpoint } => (endpoint.clone(), IMDS_API_VERSION, "msi_res_id"),
        };
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("api-version", version)
                .append_pair("resource", resource);
            match &self.user_assigned {
                None => {}
                Some(UserAssignedId::ClientId(id)) => {
                    checked_value("clientId", id)?;
                    query.append_pair("client_id", id);
                }
                Some(UserAssignedId::ObjectId(id)) => {
                    checked_value("objectId", id)?;
                    query.append_pair("object_id", id);
                }
                Some(UserAssignedId::ResourceId(id)) => {
                    checked_value("resourceId", id)?;
                    query.append_pair(resource_id_name, id);
                }
            }
        }
        let mut request = http::Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(ACCEPT, "application/json")
            .header("Metadata", "true")
            .body(Vec::new())
            .map_err(|e| ExchangeError::invalid_input("managedIdentity", e.to_string()))?;
        if let Source::AppService { header, .. } = &self.source {
            let mut value = HeaderValue::from_str(header).map_err(|_| {
                ExchangeError::invalid_input("IDENTITY_HEADER", "is not a valid header value")
            })?;
            value.set_sensitive(true);
            request
                .headers_mut()
                .insert(HeaderName::from_static("x-identity-header"), value);
        }
        Ok(request)
    }

    /// Reads the endpoint's answer, received at `received_at`: `access_token` with
    /// `expires_in` (IMDS: seconds, as a string or a number) or `expires_on` (App Service:
    /// epoch seconds, as a string or a number). An error answer (`{"error",
    /// "error_description"}` or App Service's `{"statusCode", "message"}`) becomes
    /// [`ExchangeError::Entra`].
    ///
    /// # Errors
    /// [`ExchangeError::Entra`] for an error answer, [`ExchangeError::Decode`] for a body that is not
    /// what the endpoint documents.
    pub fn from_http<B: AsRef<[u8]>>(
        &self,
        response: &Response<B>,
        received_at: SystemTime,
    ) -> Result<EntraToken, ExchangeError> {
        const WHAT: &str = "managed identity token";
        if !response.status().is_success() {
            return Err(entra_error(response));
        }
        let decode = |reason: String| response::decode_error(WHAT, response, reason);
        let object = response::json_object(response.body().as_ref()).map_err(decode)?;
        let access_token = response::required_str(&object, "access_token").map_err(decode)?;
        let seconds = |key: &str| match object.get(key) {
            Some(Value::Number(n)) => Some(n.as_u64()),
            Some(Value::String(s)) => Some(s.trim().parse::<u64>().ok()),
            _ => None,
        };
        let expires_in = match (seconds("expires_in"), seconds("expires_on")) {
            (Some(Some(seconds)), _) => seconds,
            (None, Some(Some(on))) => {
                let now = received_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                on.saturating_sub(now)
            }
            _ => {
                return Err(decode(
                    "neither `expires_in` nor `expires_on` is a number of seconds".to_owned(),
                ));
            }
        };
        if expires_in > MAX_EXPIRES_IN {
            return Err(decode(format!(
                "the token's lifetime is longer than {MAX_EXPIRES_IN} seconds"
            )));
        }
        Ok(EntraToken {
            access_token: AccessToken::new(access_token),
            expires_in: Duration::from_secs(expires_in),
        })
    }
}

/// A managed identity signing in: one GET to its endpoint; the token's lifetime counts
/// from when it was sent.
#[derive(Debug)]
pub(crate) struct ManagedIdentitySignIn {
    identity: ManagedIdentity,
    sent_at: Option<SystemTime>,
}

impl ManagedIdentitySignIn {
    pub(crate) fn new(identity: ManagedIdentity) -> Self {
        Self {
            identity,
            sent_at: None,
        }
    }
}

impl SignIn for ManagedIdentitySignIn {
    fn start(&mut self, at: &Attempt<'_>) -> SignInStep {
        match self.identity.to_http(at.cloud.resource()) {
            Ok(request) => {
                self.sent_at = Some(at.now);
                SignInStep::Send {
                    operation: self.identity.operation(),
                    request,
                }
            }
            Err(error) => SignInStep::Failed(SignInError::Unusable(error)),
        }
    }

    fn resume(&mut self, input: SignInInput, _: &Attempt<'_>) -> SignInStep {
        let (SignInInput::Response(response), Some(sent_at)) = (input, self.sent_at) else {
            return unasked();
        };
        match self.identity.from_http(&response, sent_at) {
            Ok(token) => SignInStep::Done(token.into_bearer(sent_at)),
            Err(error) => SignInStep::Failed(SignInError::Refused(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCE: &str = "https://analysis.windows.net/powerbi/api";

    fn answer(status: u16, body: &str) -> Response<Vec<u8>> {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn app_service_requests_carry_the_header_and_the_resource() {
        let identity = ManagedIdentity::app_service("http://127.0.0.1:41741/msi/token", "s3cret")
            .unwrap()
            .user_assigned(UserAssignedId::ResourceId("/subscriptions/x/rg".into()));
        let request = identity.to_http(RESOURCE).unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().to_string(),
            "http://127.0.0.1:41741/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fanalysis.windows.net%2Fpowerbi%2Fapi&mi_res_id=%2Fsubscriptions%2Fx%2Frg"
        );
        assert!(request.headers()["x-identity-header"].is_sensitive());
        assert_eq!(request.headers()["metadata"], "true");
        assert!(!format!("{identity:?}").contains("s3cret"));
        assert_eq!(identity.operation(), "ManagedIdentity_AppService");
    }

    #[test]
    fn imds_requests_go_to_the_named_host_with_the_metadata_header() {
        let identity = ManagedIdentity::imds_at("http://127.0.0.1:8080/")
            .unwrap()
            .user_assigned(UserAssignedId::ClientId("c".into()));
        let request = identity.to_http(RESOURCE).unwrap();
        assert_eq!(
            request.uri().to_string(),
            "http://127.0.0.1:8080/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fanalysis.windows.net%2Fpowerbi%2Fapi&client_id=c"
        );
        assert!(request.headers().get("x-identity-header").is_none());
        assert_eq!(
            ManagedIdentity::imds().endpoint(),
            "http://169.254.169.254/metadata/identity/oauth2/token"
        );
        let resource = ManagedIdentity::imds_at("http://h")
            .unwrap()
            .user_assigned(UserAssignedId::ResourceId("r".into()));
        assert!(
            resource
                .to_http(RESOURCE)
                .unwrap()
                .uri()
                .to_string()
                .ends_with("&msi_res_id=r")
        );
    }

    #[test]
    fn bad_endpoints_and_ids_are_refused_by_name() {
        for (endpoint, header) in [
            ("169.254.1.1", "h"),
            ("ftp://h/x", "h"),
            ("http://u:p@h/x", "h"),
            ("http://h/x?a=1", "h"),
            ("http://h/x", ""),
            ("http://h/x", "a\nb"),
        ] {
            assert!(
                ManagedIdentity::app_service(endpoint, header).is_err(),
                "{endpoint} {header:?}"
            );
        }
        let error = ManagedIdentity::app_service("http://h/x", "line\nbreak-secret").unwrap_err();
        assert!(!error.to_string().contains("secret"));
        assert!(ManagedIdentity::imds_at("http://h/path").is_err());
        let empty = ManagedIdentity::imds().user_assigned(UserAssignedId::ObjectId(String::new()));
        assert!(
            empty
                .to_http(RESOURCE)
                .unwrap_err()
                .to_string()
                .contains("objectId")
        );
    }

    #[test]
    fn both_answer_shapes_and_their_errors_are_read() {
        let identity = ManagedIdentity::imds();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let imds = answer(
            200,
            r#"{"access_token":"eyJ0","refresh_token":"","expires_in":"3599","expires_on":"1700003599","not_before":"1699999700","resource":"https://analysis.windows.net/powerbi/api","token_type":"Bearer"}"#,
        );
        assert_eq!(
            identity.from_http(&imds, at).unwrap().expires_in,
            Duration::from_secs(3599)
        );
        let app_service = answer(
            200,
            r#"{"access_token":"eyJ0","expires_on":"1700000600","resource":"r","token_type":"Bearer","client_id":"c"}"#,
        );
        assert_eq!(
            identity.from_http(&app_service, at).unwrap().expires_in,
            Duration::from_secs(600)
        );
        let number = answer(200, r#"{"access_token":"eyJ0","expires_in":60}"#);
        assert_eq!(
            identity.from_http(&number, at).unwrap().expires_in,
            Duration::from_secs(60)
        );
        for bad in [
            r#"{"expires_in":"60"}"#,
            r#"{"access_token":"t"}"#,
            r#"{"access_token":"t","expires_in":"soon"}"#,
            "not json",
        ] {
            assert!(identity.from_http(&answer(200, bad), at).is_err(), "{bad}");
        }
        let imds_error = identity
            .from_http(
                &answer(
                    400,
                    r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
                ),
                at,
            )
            .unwrap_err();
        assert!(
            imds_error.to_string().contains("Identity not found"),
            "{imds_error}"
        );
        let app_error = identity
            .from_http(&answer(500, r#"{"statusCode":500,"message":"An unexpected error occured while fetching the AAD Token."}"#), at)
            .unwrap_err();
        assert!(app_error.to_string().contains("unexpected error"), "{app_error}");
        assert_eq!(
            app_error.kind(),
            crate::ErrorKind::ServerError,
            "retried, as a 5xx"
        );
    }
}
