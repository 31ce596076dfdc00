//! Entra ID sign-in for a service principal: the OAuth 2.0 client-credentials grant.
//!
//! `POST {authority host}/{tenant}/oauth2/v2.0/token` with a form body naming the client,
//! its secret and the cloud's `…/powerbi/api/.default` scope. The answer is a bearer
//! token for the Power BI REST API, valid for about an hour.

use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Method, Response};
use serde_json::Value;

use crate::auth::certificate::{CLIENT_ASSERTION_TYPE, ClientCertificate};
use crate::settings::retry::RetryAfter;
use crate::wire::cloud::Cloud;
use crate::wire::error::{self, EntraError, ExchangeError};
use crate::wire::ids::{ClientId, TenantId};
use crate::wire::lifetime::{BearerToken, Freshness};
use crate::wire::operation::{HttpRequest, Operation};
use crate::wire::response;
use crate::wire::secret::{AccessToken, ClientSecret};

/// The `Content-Type` of the token request.
pub(crate) const CONTENT_TYPE_FORM: &str = "application/x-www-form-urlencoded";

/// The longest `expires_in` believed: one day. Entra issues tokens for about an hour.
pub(crate) const MAX_EXPIRES_IN: u64 = 24 * 60 * 60;

/// The client-credentials token request of a service principal.
///
/// ```
/// use pbi_embed_core::{ClientCredentials, ClientId, ClientSecret, Cloud, Operation, TenantId};
///
/// let op = ClientCredentials::new(
///     TenantId::parse("contoso.onmicrosoft.com")?,
///     ClientId::parse("00000000-0000-0000-0000-000000000001")?,
///     ClientSecret::new("s3cr3t"),
/// )
/// .cloud(Cloud::UsGov);
/// let request = op.to_http()?;
/// assert_eq!(request.uri(), "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
/// # Ok::<(), pbi_embed_core::ExchangeError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientCredentials {
    cloud: Cloud,
    tenant: TenantId,
    client_id: ClientId,
    proof: Proof,
}

/// How the app proves who it is.
#[derive(Clone, Debug)]
enum Proof {
    Secret(ClientSecret),
    Certificate(ClientCertificate),
    /// A certificate file, read (and loaded) at every sign-in.
    CertificateFile(CertificateFile),
    /// A workload identity: the token in this file is the assertion.
    FederatedTokenFile(std::path::PathBuf),
}

/// The largest federated token read.
const MAX_FEDERATED_TOKEN_BYTES: u64 = 64 * 1024;
/// The largest certificate file read (a PFX with a long chain is a few kilobytes).
const MAX_CERTIFICATE_FILE_BYTES: u64 = 1024 * 1024;

/// A client certificate in a file (`AZURE_CLIENT_CERTIFICATE_PATH`): PEM (the chain and
/// its key, which may be encrypted) or PKCS#12/PFX. The driver reads it at every sign-in,
/// so a certificate rotated on disk (a Key Vault secret mounted in a pod) is picked up
/// without a restart. Debug never shows the password.
#[derive(Clone)]
#[must_use]
pub struct CertificateFile {
    path: std::path::PathBuf,
    password: Option<ClientSecret>,
    send_chain: bool,
}

impl std::fmt::Debug for CertificateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateFile")
            .field("path", &self.path)
            .field("password", &self.password.is_some())
            .field("send_chain", &self.send_chain)
            .finish()
    }
}

impl CertificateFile {
    /// The file at `path`, without a password.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            path: path.into(),
            password: None,
            send_chain: false,
        }
    }

    /// The password of the PFX file or the encrypted key (`AZURE_CLIENT_CERTIFICATE_PASSWORD`).
    pub fn password(mut self, password: ClientSecret) -> Self {
        self.password = Some(password);
        self
    }

    /// Sends the chain in `x5c`, for subject name and issuer authentication
    /// (`AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`).
    pub fn send_chain(mut self, on: bool) -> Self {
        self.send_chain = on;
        self
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The certificate in `contents` (what the file holds).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] as [`ClientCertificate::from_file_contents`] says.
    pub fn load(&self, contents: &[u8]) -> Result<ClientCertificate, ExchangeError> {
        let password = self.password.as_ref().map(ClientSecret::secret);
        Ok(ClientCertificate::from_file_contents(contents, password)?.send_chain(self.send_chain))
    }
}

impl ClientCredentials {
    /// Credentials of a service principal with a client secret, in the public cloud.
    pub fn new(tenant: TenantId, client_id: ClientId, client_secret: ClientSecret) -> Self {
        Self {
            cloud: Cloud::Public,
            tenant,
            client_id,
            proof: Proof::Secret(client_secret),
        }
    }

    /// Credentials of a service principal with a client certificate: each sign-in sends
    /// a newly signed `client_assertion` (build the request with
    /// [`to_http_at`](Self::to_http_at), which takes the time).
    pub fn with_certificate(tenant: TenantId, client_id: ClientId, certificate: ClientCertificate) -> Self {
        Self {
            cloud: Cloud::Public,
            tenant,
            client_id,
            proof: Proof::Certificate(certificate),
        }
    }

    /// Credentials of a workload identity (Kubernetes, GitHub Actions, any OIDC issuer
    /// Entra trusts): the token in `token_file` is sent as the `client_assertion`, read
    /// afresh at every sign-in by the driver ([`Action::ReadFile`](crate::driver::Action::ReadFile)).
    pub fn with_federated_token_file(
        tenant: TenantId,
        client_id: ClientId,
        token_file: std::path::PathBuf,
    ) -> Self {
        Self {
            cloud: Cloud::Public,
            tenant,
            client_id,
            proof: Proof::FederatedTokenFile(token_file),
        }
    }

    /// Credentials of a service principal with a client certificate in a file, read and
    /// loaded at every sign-in ([`Action::ReadFile`](crate::driver::Action::ReadFile)).
    pub fn with_certificate_file(tenant: TenantId, client_id: ClientId, file: CertificateFile) -> Self {
        Self {
            cloud: Cloud::Public,
            tenant,
            client_id,
            proof: Proof::CertificateFile(file),
        }
    }

    /// How it proves who it is, in a few words for logs (never the secret).
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self.proof {
            Proof::Secret(_) => "a service principal with a client secret",
            Proof::Certificate(_) => "a service principal with a client certificate",
            Proof::CertificateFile(_) => "a service principal with a certificate file",
            Proof::FederatedTokenFile(_) => "a workload identity (federated token file)",
        }
    }

    /// The federated token file, for a workload identity.
    #[must_use]
    pub fn federated_token_file(&self) -> Option<&std::path::Path> {
        match &self.proof {
            Proof::FederatedTokenFile(path) => Some(path),
            _ => None,
        }
    }

    /// The file a sign-in reads first, what it holds, and the most bytes it may have:
    /// a workload identity's federated token, or a certificate file.
    #[must_use]
    pub fn file_to_read(&self) -> Option<(&std::path::Path, &'static str, u64)> {
        match &self.proof {
            Proof::FederatedTokenFile(path) => Some((path, "federated token", MAX_FEDERATED_TOKEN_BYTES)),
            Proof::CertificateFile(file) => Some((&file.path, "certificate", MAX_CERTIFICATE_FILE_BYTES)),
            Proof::Secret(_) | Proof::Certificate(_) => None,
        }
    }

    /// The sign-in request at `now` from the contents of [`file_to_read`](Self::file_to_read):
    /// the federated token as the assertion (as the file holds it, as Azure's libraries
    /// use it), or an assertion signed with the certificate the file holds.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`]: an empty or non-UTF-8 token, an unusable certificate
    /// file (never quoting it), or no file to read.
    pub fn to_http_from_file(
        &self,
        contents: &[u8],
        now: SystemTime,
        jti: &str,
    ) -> Result<HttpRequest, ExchangeError> {
        match &self.proof {
            Proof::FederatedTokenFile(_) => {
                let token = std::str::from_utf8(contents).map_err(|_| {
                    ExchangeError::invalid_input("AZURE_FEDERATED_TOKEN_FILE", "is not UTF-8 text")
                })?;
                if token.trim().is_empty() {
                    return Err(ExchangeError::invalid_input(
                        "AZURE_FEDERATED_TOKEN_FILE",
                        "is empty",
                    ));
                }
                self.to_http_with_assertion(token)
            }
            Proof::CertificateFile(file) => {
                let certificate = file.load(contents)?;
                self.to_http_with_assertion(&certificate.assertion(
                    self.client_id.as_str(),
                    &self.token_endpoint(),
                    now,
                    jti,
                )?)
            }
            Proof::Secret(_) | Proof::Certificate(_) => Err(ExchangeError::invalid_input(
                "credential",
                "signs in without a file: use to_http_at",
            )),
        }
    }

    /// The sign-in request with an assertion obtained elsewhere (a workload identity's
    /// federated token, as the file holds it).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when the authority host makes no valid URI.
    pub fn to_http_with_assertion(&self, assertion: &str) -> Result<HttpRequest, ExchangeError> {
        self.request(|form| {
            form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
                .append_pair("client_assertion", assertion);
            Ok(())
        })
    }

    /// The token endpoint: `{authority host}/{tenant}/oauth2/v2.0/token`.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.cloud.authority_host(),
            self.tenant
        )
    }

    /// The sign-in request at `now`; `jti` makes a certificate's assertion unique (a
    /// secret's request ignores both).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when the authority host makes no valid URI.
    pub fn to_http_at(&self, now: SystemTime, jti: &str) -> Result<HttpRequest, ExchangeError> {
        self.request(|form| {
            match &self.proof {
                Proof::Secret(secret) => {
                    form.append_pair("client_secret", secret.secret());
                }
                Proof::Certificate(certificate) => {
                    let assertion =
                        certificate.assertion(self.client_id.as_str(), &self.token_endpoint(), now, jti)?;
                    form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
                        .append_pair("client_assertion", &assertion);
                }
                Proof::FederatedTokenFile(_) | Proof::CertificateFile(_) => {
                    return Err(ExchangeError::invalid_input(
                        "credential",
                        "signs in with a file's contents: use to_http_from_file",
                    ));
                }
            }
            Ok(())
        })
    }

    /// The form's common fields around what `proof` adds.
    fn request(
        &self,
        proof: impl FnOnce(&mut url::form_urlencoded::Serializer<'_, String>) -> Result<(), ExchangeError>,
    ) -> Result<HttpRequest, ExchangeError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("client_id", self.client_id.as_str())
            .append_pair("scope", self.cloud.scope());
        proof(&mut form)?;
        let body = form.append_pair("grant_type", "client_credentials").finish();
        http::Request::builder()
            .method(Method::POST)
            .uri(self.token_endpoint())
            .header(CONTENT_TYPE, CONTENT_TYPE_FORM)
            .header(ACCEPT, "application/json")
            .body(body.into_bytes())
            .map_err(|e| ExchangeError::invalid_input("authorityHost", e.to_string()))
    }

    /// Signs in to this cloud's authority host, for this cloud's scope.
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }
}

impl Operation for ClientCredentials {
    type Output = EntraToken;

    fn name(&self) -> &'static str {
        "Entra_ClientCredentials"
    }

    /// The sign-in request. A certificate's assertion needs the time, which the core
    /// never reads: for certificates, use [`ClientCredentials::to_http_at`].
    fn to_http(&self) -> Result<HttpRequest, ExchangeError> {
        match self.proof {
            Proof::Secret(_) => self.to_http_at(SystemTime::UNIX_EPOCH, ""),
            Proof::FederatedTokenFile(_) | Proof::CertificateFile(_) => Err(ExchangeError::invalid_input(
                "credential",
                "signs in with a file's contents: use to_http_from_file",
            )),
            Proof::Certificate(_) => Err(ExchangeError::invalid_input(
                "certificate",
                "a client assertion needs the time: use ClientCredentials::to_http_at",
            )),
        }
    }

    fn from_http<B: AsRef<[u8]>>(&self, response: Response<B>) -> Result<EntraToken, ExchangeError> {
        parse_token_response(&response)
    }
}

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
    ExchangeError::Entra(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> ClientCredentials {
        ClientCredentials::new(
            TenantId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            ClientSecret::new("p@ss&word=1"),
        )
    }

    #[test]
    fn form_body() {
        let request = op().to_http().unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(
            request.uri(),
            "https://login.microsoftonline.com/f089354e-8366-4e18-aea3-4cb4a3a50b48/oauth2/v2.0/token"
        );
        assert_eq!(request.headers()[CONTENT_TYPE], CONTENT_TYPE_FORM);
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(request.body()).into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("client_id", "00000000-0000-0000-0000-000000000001"),
                ("scope", "https://analysis.windows.net/powerbi/api/.default"),
                ("client_secret", "p@ss&word=1"),
                ("grant_type", "client_credentials"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    fn response(status: u16, body: &str) -> Response<Vec<u8>> {
        Response::builder()
            .status(status)
            .header("content-type", "application/json; charset=utf-8")
            .header("x-ms-request-id", "req-1")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn success() {
        let t = op()
            .from_http(response(
                200,
                r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAi"}"#,
            ))
            .unwrap();
        assert_eq!(t.access_token.secret(), "eyJ0eXAi");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(t.expires_at(at), at + Duration::from_secs(3599));
        let v1 = op()
            .from_http(response(
                200,
                r#"{"token_type":"bearer","expires_in":"3600","access_token":"x"}"#,
            ))
            .unwrap();
        assert_eq!(v1.expires_in, Duration::from_secs(3600));
    }

    #[test]
    fn malformed_success() {
        for (body, want) in [
            (r#"{"expires_in":3599}"#, "`access_token` is missing"),
            (r#"{"access_token":"x"}"#, "`expires_in` is missing"),
            (r#"{"access_token":"x","expires_in":-1}"#, "`expires_in` is not"),
            (
                r#"{"access_token":"x","expires_in":1e300}"#,
                "`expires_in` is not",
            ),
            (
                r#"{"access_token":"x","expires_in":3599,"token_type":"mac"}"#,
                "`token_type`",
            ),
        ] {
            let err = op().from_http(response(200, body)).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::UnreadableResponse);
            assert!(err.to_string().contains(want), "{err}");
            assert!(!err.to_string().contains("\"x\""));
        }
    }

    #[test]
    fn oauth_error() {
        let body = r#"{
          "error": "invalid_scope",
          "error_description": "AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope https://foo.microsoft.com/.default is not valid.\r\nTrace ID: 255d1aef-8c98-452f-ac51-23d051240864\r\nCorrelation ID: fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7\r\nTimestamp: 2016-01-09 02:02:12Z",
          "error_codes": [70011],
          "timestamp": "YYYY-MM-DD HH:MM:SSZ",
          "trace_id": "255d1aef-8c98-452f-ac51-23d051240864",
          "correlation_id": "fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7"
        }"#;
        let err = op().from_http(response(400, body)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::SignIn);
        assert_eq!(
            err.to_string(),
            "Entra ID sign-in failed with 400 Bad Request invalid_scope: AADSTS70011: The provided value for \
             the input parameter 'scope' is not valid. The scope https://foo.microsoft.com/.default is not valid. \
             (trace ID 255d1aef-8c98-452f-ac51-23d051240864, correlation ID fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7)"
        );
        let entra = err.as_entra().unwrap();
        assert_eq!(entra.error_codes(), [70011]);
        assert_eq!(entra.aadsts_code().as_deref(), Some("AADSTS70011"));
        assert_eq!(err.request_id(), Some("req-1"));
    }
}
