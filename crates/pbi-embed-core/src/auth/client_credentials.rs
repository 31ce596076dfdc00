//! A service principal's sign-in to Entra ID: the OAuth 2.0 client-credentials grant.
//!
//! `POST {authority host}/{tenant}/oauth2/v2.0/token` with a form body naming the client,
//! the cloud's `…/powerbi/api/.default` scope and the proof of who the app is: a client
//! secret, a client assertion signed with a certificate (in memory, or a file read at
//! every sign-in), or a workload identity's federated token (a file read at every
//! sign-in). The answer is a bearer token for the Power BI REST API, valid for about an
//! hour.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Method, Response};

#[cfg(feature = "certificate")]
use super::certificate::{CertificateFile, ClientCertificate};
use super::entra::{CONTENT_TYPE_FORM, EntraToken, parse_token_response};
use super::sign_in::{Attempt, SignIn, SignInError, SignInInput, SignInStep, unasked};
use crate::wire::cloud::Cloud;
use crate::wire::error::ExchangeError;
use crate::wire::ids::{ClientId, TenantId};
use crate::wire::operation::{HttpRequest, Operation};
use crate::wire::secret::ClientSecret;

/// The `client_assertion_type` of a signed assertion or a federated token (RFC 7523).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The largest federated token read.
const MAX_FEDERATED_TOKEN_BYTES: u64 = 64 * 1024;
/// The largest certificate file read (a PFX with a long chain is a few kilobytes).
#[cfg(feature = "certificate")]
const MAX_CERTIFICATE_FILE_BYTES: u64 = 1024 * 1024;

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
    #[cfg(feature = "certificate")]
    Certificate(ClientCertificate),
    /// A certificate file, read (and loaded) at every sign-in.
    #[cfg(feature = "certificate")]
    CertificateFile(CertificateFile),
    /// A workload identity: the token in this file is the assertion.
    FederatedTokenFile(PathBuf),
}

impl ClientCredentials {
    fn with(tenant: TenantId, client_id: ClientId, proof: Proof) -> Self {
        Self {
            cloud: Cloud::Public,
            tenant,
            client_id,
            proof,
        }
    }

    /// Credentials of a service principal with a client secret, in the public cloud.
    pub fn new(tenant: TenantId, client_id: ClientId, client_secret: ClientSecret) -> Self {
        Self::with(tenant, client_id, Proof::Secret(client_secret))
    }

    /// Credentials of a service principal with a client certificate: each sign-in sends
    /// a newly signed `client_assertion` (build the request with
    /// [`to_http_at`](Self::to_http_at), which takes the time).
    #[cfg(feature = "certificate")]
    pub fn with_certificate(tenant: TenantId, client_id: ClientId, certificate: ClientCertificate) -> Self {
        Self::with(tenant, client_id, Proof::Certificate(certificate))
    }

    /// Credentials of a workload identity (Kubernetes, GitHub Actions, any OIDC issuer
    /// Entra trusts): the token in `token_file` is sent as the `client_assertion`, read
    /// afresh at every sign-in by the driver ([`Action::ReadFile`](crate::driver::Action::ReadFile)).
    pub fn with_federated_token_file(tenant: TenantId, client_id: ClientId, token_file: PathBuf) -> Self {
        Self::with(tenant, client_id, Proof::FederatedTokenFile(token_file))
    }

    /// Credentials of a service principal with a client certificate in a file, read and
    /// loaded at every sign-in ([`Action::ReadFile`](crate::driver::Action::ReadFile)).
    #[cfg(feature = "certificate")]
    pub fn with_certificate_file(tenant: TenantId, client_id: ClientId, file: CertificateFile) -> Self {
        Self::with(tenant, client_id, Proof::CertificateFile(file))
    }

    /// How it proves who it is, in a few words for logs (never the secret).
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self.proof {
            Proof::Secret(_) => "a service principal with a client secret",
            #[cfg(feature = "certificate")]
            Proof::Certificate(_) => "a service principal with a client certificate",
            #[cfg(feature = "certificate")]
            Proof::CertificateFile(_) => "a service principal with a certificate file",
            Proof::FederatedTokenFile(_) => "a workload identity (federated token file)",
        }
    }

    /// The federated token file, for a workload identity.
    #[must_use]
    pub fn federated_token_file(&self) -> Option<&Path> {
        match &self.proof {
            Proof::FederatedTokenFile(path) => Some(path),
            _ => None,
        }
    }

    /// The file a sign-in reads first, what it holds, and the most bytes it may have:
    /// a workload identity's federated token, or a certificate file.
    fn file_to_read(&self) -> Option<(&Path, &'static str, u64)> {
        match &self.proof {
            Proof::FederatedTokenFile(path) => Some((path, "federated token", MAX_FEDERATED_TOKEN_BYTES)),
            #[cfg(feature = "certificate")]
            Proof::CertificateFile(file) => Some((file.path(), "certificate", MAX_CERTIFICATE_FILE_BYTES)),
            _ => None,
        }
    }

    /// The sign-in request at `now` from what the credential's file holds: the federated
    /// token as the assertion (as the file holds it, as Azure's libraries use it), or an
    /// assertion signed with the certificate the file holds.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`]: an empty or non-UTF-8 token, an unusable
    /// certificate file (never quoting it), or a credential that reads no file.
    pub fn to_http_from_file(
        &self,
        contents: &[u8],
        now: SystemTime,
        jti: &str,
    ) -> Result<HttpRequest, ExchangeError> {
        let _ = (now, jti);
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
            #[cfg(feature = "certificate")]
            Proof::CertificateFile(file) => {
                let certificate = file.load(contents)?;
                self.to_http_with_assertion(&certificate.assertion(
                    self.client_id.as_str(),
                    &self.token_endpoint(),
                    now,
                    jti,
                )?)
            }
            _ => Err(ExchangeError::invalid_input(
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
    /// [`ExchangeError::InvalidInput`] when the authority host makes no valid URI, or the
    /// credential signs in with a file's contents.
    pub fn to_http_at(&self, now: SystemTime, jti: &str) -> Result<HttpRequest, ExchangeError> {
        let _ = (now, jti);
        self.request(|form| {
            match &self.proof {
                Proof::Secret(secret) => {
                    form.append_pair("client_secret", secret.secret());
                }
                #[cfg(feature = "certificate")]
                Proof::Certificate(certificate) => {
                    let assertion =
                        certificate.assertion(self.client_id.as_str(), &self.token_endpoint(), now, jti)?;
                    form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
                        .append_pair("client_assertion", &assertion);
                }
                _ => {
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

    /// Its sign-in, as a machine.
    pub(crate) fn sign_in(&self) -> Box<dyn SignIn> {
        Box::new(ServicePrincipalSignIn {
            credentials: self.clone(),
            sent_at: None,
        })
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
            #[cfg(feature = "certificate")]
            Proof::Certificate(_) => Err(ExchangeError::invalid_input(
                "certificate",
                "a client assertion needs the time: use ClientCredentials::to_http_at",
            )),
            _ => Err(ExchangeError::invalid_input(
                "credential",
                "signs in with a file's contents: use to_http_from_file",
            )),
        }
    }

    fn from_http<B: AsRef<[u8]>>(&self, response: Response<B>) -> Result<EntraToken, ExchangeError> {
        parse_token_response(&response)
    }
}

/// A service principal signing in: read its file first (a federated token, a certificate
/// file), then send the form; the token's lifetime counts from when it was sent.
#[derive(Debug)]
struct ServicePrincipalSignIn {
    credentials: ClientCredentials,
    sent_at: Option<SystemTime>,
}

impl ServicePrincipalSignIn {
    fn send(&mut self, request: Result<HttpRequest, ExchangeError>, at: &Attempt<'_>) -> SignInStep {
        match request {
            Ok(request) => {
                self.sent_at = Some(at.now);
                SignInStep::Send {
                    operation: self.credentials.name(),
                    request,
                }
            }
            Err(error) => SignInStep::Failed(SignInError::Unusable(error)),
        }
    }
}

impl SignIn for ServicePrincipalSignIn {
    fn start(&mut self, at: &Attempt<'_>) -> SignInStep {
        self.sent_at = None;
        match self.credentials.file_to_read() {
            Some((path, what, max_bytes)) => SignInStep::Read {
                path: path.to_owned(),
                what,
                max_bytes,
            },
            None => {
                let request = self.credentials.to_http_at(at.now, &at.jti());
                self.send(request, at)
            }
        }
    }

    fn resume(&mut self, input: SignInInput, at: &Attempt<'_>) -> SignInStep {
        match (input, self.sent_at) {
            (SignInInput::File(contents), None) => {
                let request = self.credentials.to_http_from_file(&contents, at.now, &at.jti());
                self.send(request, at)
            }
            (SignInInput::Response(response), Some(sent_at)) => match parse_token_response(&response) {
                Ok(token) => SignInStep::Done(token.into_bearer(sent_at)),
                Err(error) => SignInStep::Failed(SignInError::Refused(error)),
            },
            _ => unasked(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::secret::ClientSecret;
    use std::time::Duration;

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
