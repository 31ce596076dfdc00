//! One builder for every driver's client: the settings, the credential and the driver's
//! own parts, with safe defaults; the driver only turns them into its client.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use std::sync::Arc;

use crate::auth::azure_cli::AzureCli;
#[cfg(feature = "certificate")]
use crate::auth::certificate::{CertificateFile, ClientCertificate};
use crate::auth::client_credentials::ClientCredentials;
use crate::auth::credential::Credential;
use crate::auth::managed_identity::ManagedIdentity;
use crate::client::environment::{self, env_text, service_principal_from};
use crate::flow::error::Error;
use crate::flow::session::Session;
use crate::flow::store::SharedStore;
use crate::settings::client_settings::{ClientSettings, SharedSettings};
use crate::settings::retry::RetryPolicy;
use crate::wire::cloud::Cloud;
use crate::wire::error::ExchangeError;
use crate::wire::ids::{ClientId, ProfileId, TenantId};
use crate::wire::secret::{AccessToken, ClientSecret};

/// A driver's client (`pbi-embed-ureq`'s, `pbi-embed-reqwest`'s, your own), as
/// [`ClientBuilder`] makes it.
pub trait Driver: Sized {
    /// Its HTTP client, which a caller may bring ([`ClientBuilder::http_client`]).
    type Http;
    /// Its token source ([`ClientBuilder::token_source`]).
    type TokenSource;

    /// Makes the client.
    ///
    /// # Errors
    /// When its HTTP client cannot be made.
    fn build(parts: ClientParts<Self>) -> Result<Self, Error>;
}

/// How a builder reads environment variables (the process environment's `var_os`); the core reads none
/// itself.
pub type EnvReader = fn(&str) -> Option<OsString>;

/// What a driver gets to build its client from.
#[non_exhaustive]
pub struct ClientParts<D: Driver> {
    /// The session, with its settings checked and its credential bound to the cloud.
    pub session: Session,
    /// The caller's token source, when the credential is one.
    pub token_source: Option<D::TokenSource>,
    /// The caller's own HTTP client, when given.
    pub http: Option<D::Http>,
    /// The store shared with other replicas, when given (the session's settings then
    /// name it).
    pub store: Option<Arc<dyn SharedStore>>,
}

impl<D: Driver> fmt::Debug for ClientParts<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientParts")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Builds a client of driver `D` (`pbi_embed_ureq::Client`, `pbi_embed_reqwest::Client`,
/// your own): the credential, the cloud, time bounds, caches, connections. Every setting
/// has a safe default; only the credential is required. Get one from the driver's
/// `Client::builder()`.
///
/// ```no_run
/// # fn demo<D: pbi_embed_core::driver::Driver>(builder: pbi_embed_core::ClientBuilder<D>) -> Result<D, pbi_embed_core::Error> {
/// use std::time::Duration;
///
/// let client = builder
///     .from_env()? // the credential the environment names
///     .deadline(Duration::from_secs(20))
///     .refresh_ahead(Duration::from_secs(15 * 60))
///     .build()?;
/// # Ok(client) }
/// ```
#[must_use]
pub struct ClientBuilder<D: Driver> {
    env: EnvReader,
    settings: ClientSettings,
    credential: Option<Credential>,
    token_source: Option<D::TokenSource>,
    http: Option<D::Http>,
    store: Option<Arc<dyn SharedStore>>,
    /// The first invalid setting given, reported by [`ClientBuilder::build`].
    deferred: Option<ExchangeError>,
}

impl<D: Driver> fmt::Debug for ClientBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("settings", &self.settings)
            .field("credential", &self.credential)
            .field("token_source", &self.token_source.is_some())
            .field("http", &self.http.is_some())
            .field("store", &self.store.is_some())
            .finish()
    }
}

impl<D: Driver> ClientBuilder<D> {
    /// A builder with the defaults, reading environment variables with `env` (drivers
    /// pass the process environment's `var_os`).
    pub fn new(env: EnvReader) -> Self {
        Self {
            env,
            settings: ClientSettings::default(),
            credential: None,
            token_source: None,
            http: None,
            store: None,
            deferred: None,
        }
    }

    /// All settings at once, replacing those set so far, except what configures the
    /// client's connections and its shared store: root certificates, the platform
    /// verifier and a proxy given before are kept unless `settings` sets its own, and a
    /// shared store given with [`shared_store`](Self::shared_store) stays in use.
    pub fn settings(mut self, mut settings: ClientSettings) -> Self {
        if settings.connect.is_default() {
            settings.connect = std::mem::take(&mut self.settings.connect);
        }
        if self.store.is_some() && settings.shared.is_none() {
            settings.shared = self.settings.shared;
        }
        self.settings = settings;
        self
    }

    /// How to get bearer tokens, replacing any set so far. For
    /// [`Credential::TokenSource`], give a [`token_source`](Self::token_source) instead.
    pub fn credential(mut self, credential: Credential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// The cloud (default [`Cloud::Public`]): API base, authority host and scope together.
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.settings.cloud = cloud;
        self
    }

    /// Another API base, such as `http://127.0.0.1:8080` for the emulator (the scope stays
    /// the cloud's). HTTPS only, except for loopback hosts.
    pub fn api_base(mut self, url: impl Into<String>) -> Self {
        self.settings.api_base = Some(url.into());
        self
    }

    /// Another Entra ID authority host (the scope stays the cloud's). HTTPS only, except
    /// for loopback hosts: the client secret is sent there.
    pub fn authority_host(mut self, url: impl Into<String>) -> Self {
        self.settings.authority_host = Some(url.into());
        self
    }

    /// Sign in as a service principal with a client secret.
    pub fn service_principal(mut self, tenant: TenantId, client_id: ClientId, secret: ClientSecret) -> Self {
        self.credential = Some(Credential::ServicePrincipal(ClientCredentials::new(
            tenant, client_id, secret,
        )));
        self
    }

    /// Sign in as a service principal with a client certificate (a signed
    /// `client_assertion` at each sign-in).
    #[cfg(feature = "certificate")]
    pub fn certificate(
        mut self,
        tenant: TenantId,
        client_id: ClientId,
        certificate: ClientCertificate,
    ) -> Self {
        self.credential = Some(Credential::ServicePrincipal(ClientCredentials::with_certificate(
            tenant,
            client_id,
            certificate,
        )));
        self
    }

    /// Sign in as a workload identity (workload identity federation): the token in
    /// `token_file` is the assertion, read afresh at every sign-in.
    pub fn workload_identity(
        mut self,
        tenant: TenantId,
        client_id: ClientId,
        token_file: std::path::PathBuf,
    ) -> Self {
        self.credential = Some(Credential::ServicePrincipal(
            ClientCredentials::with_federated_token_file(tenant, client_id, token_file),
        ));
        self
    }

    /// Sign in as the workload identity that `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
    /// `AZURE_FEDERATED_TOKEN_FILE` name (what AKS workload identity sets), at the
    /// `AZURE_AUTHORITY_HOST` if one is set.
    ///
    /// # Errors
    /// When a variable is missing or malformed; the error names it.
    pub fn workload_identity_from_env(self) -> Result<Self, Error> {
        let credential = environment::workload_identity_from(self.env)?;
        Ok(self.credential(credential).hosts_from_env()?)
    }

    /// Sign in as the service principal named by `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
    /// `AZURE_CLIENT_SECRET`, as Azure's tools name them, at the `AZURE_AUTHORITY_HOST` if
    /// one is set.
    ///
    /// # Errors
    /// When a variable is missing or malformed; the error names it, never its value.
    pub fn service_principal_from_env(self) -> Result<Self, Error> {
        let (tenant, client_id, secret) = service_principal_from(self.env)?;
        Ok(self
            .service_principal(tenant, client_id, secret)
            .hosts_from_env()?)
    }

    /// Sign in as a service principal with the certificate in a file (PEM, its key
    /// possibly encrypted, or PKCS#12), read and loaded at every sign-in so a rotated
    /// file is picked up.
    #[cfg(feature = "certificate")]
    pub fn certificate_file(mut self, tenant: TenantId, client_id: ClientId, file: CertificateFile) -> Self {
        self.credential = Some(Credential::ServicePrincipal(
            ClientCredentials::with_certificate_file(tenant, client_id, file),
        ));
        self
    }

    /// Sign in as the service principal of `AZURE_TENANT_ID` and `AZURE_CLIENT_ID` with
    /// the certificate file `AZURE_CLIENT_CERTIFICATE_PATH` names (its password in
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`; the chain sent when
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` is `1` or `true`), at the
    /// `AZURE_AUTHORITY_HOST` if one is set.
    ///
    /// # Errors
    /// When a variable is missing or malformed; the error names it, never the password.
    pub fn certificate_from_env(self) -> Result<Self, Error> {
        let credential = environment::certificate_from(self.env)?;
        Ok(self.credential(credential).hosts_from_env()?)
    }

    /// Sign in with the credential the environment names, in the order Azure's identity
    /// libraries use: `AZURE_CLIENT_SECRET`, then `AZURE_CLIENT_CERTIFICATE_PATH`, then
    /// `AZURE_FEDERATED_TOKEN_FILE` (each with `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`),
    /// then App Service's managed identity (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`);
    /// `AZURE_AUTHORITY_HOST` names the sign-in host and `PBI_API_BASE` the API base
    /// (every `*_from_env` reads these two, unless the builder was given them). A VM's managed identity and the
    /// Azure CLI are never chosen by themselves: ask with
    /// [`managed_identity_from_env`](Self::managed_identity_from_env) or
    /// [`azure_cli_from_env`](Self::azure_cli_from_env).
    ///
    ///
    /// # Errors
    /// When a credential is set but incomplete or malformed (the error names the variable,
    /// never a secret), or none is set (the error says what to set).
    pub fn from_env(self) -> Result<Self, Error> {
        let credential = environment::credential_from(self.env)?;
        Ok(self.credential(credential).hosts_from_env()?)
    }

    /// Sign in as whoever is signed in to the Azure CLI (developer machines).
    pub fn azure_cli(mut self, cli: AzureCli) -> Self {
        self.credential = Some(Credential::AzureCli(cli));
        self
    }

    /// Sign in with the Azure CLI, in the tenant `AZURE_TENANT_ID` names (else the CLI's
    /// own).
    ///
    /// # Errors
    /// When `AZURE_TENANT_ID` is malformed.
    pub fn azure_cli_from_env(self) -> Result<Self, Error> {
        let cli = environment::azure_cli_from(self.env)?;
        Ok(self.azure_cli(cli).hosts_from_env()?)
    }

    /// The credential given so far, if any (to log which one the environment chose).
    #[must_use]
    pub fn chosen_credential(&self) -> Option<&Credential> {
        self.credential.as_ref()
    }

    /// Takes `AZURE_AUTHORITY_HOST` as the sign-in host and `PBI_API_BASE` as the API
    /// base (the emulator's, say), unless given: one variable each, that the library, the
    /// command line and the examples all read.
    fn hosts_from_env(mut self) -> Result<Self, ExchangeError> {
        if self.settings.authority_host.is_none() {
            self.settings.authority_host = env_text(self.env, "AZURE_AUTHORITY_HOST")?;
        }
        if self.settings.api_base.is_none() {
            self.settings.api_base = env_text(self.env, "PBI_API_BASE")?;
        }
        Ok(self)
    }

    /// Sign in with the Azure host's managed identity.
    pub fn managed_identity(mut self, identity: ManagedIdentity) -> Self {
        self.credential = Some(Credential::ManagedIdentity(identity));
        self
    }

    /// Sign in with the managed identity the environment describes, as Azure's identity
    /// libraries read it: `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (App Service,
    /// Functions, Container Apps), else the instance metadata service at
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` or `http://169.254.169.254`; `AZURE_CLIENT_ID`
    /// picks a user-assigned identity by client id.
    ///
    /// # Errors
    /// When a variable is malformed; the error names it, never the header's value.
    pub fn managed_identity_from_env(self) -> Result<Self, Error> {
        let identity = environment::managed_identity_from(self.env)?;
        Ok(self.managed_identity(identity).hosts_from_env()?)
    }

    /// Use this bearer token as is. It cannot be renewed: after it expires, calls fail
    /// with [`ErrorKind::TokenExpired`](crate::ErrorKind::TokenExpired).
    pub fn bearer_token(mut self, token: AccessToken) -> Self {
        self.credential = Some(Credential::BearerToken(token));
        self
    }

    /// Get bearer tokens from your own source (a managed identity, an Azure identity
    /// library, your own sign-in); they are cached and renewed like a sign-in's.
    pub fn token_source(mut self, source: impl Into<D::TokenSource>) -> Self {
        self.credential = Some(Credential::TokenSource);
        self.token_source = Some(source.into());
        self
    }

    /// Act as this service principal profile (`X-PowerBI-Profile-Id`) on every call.
    pub fn profile(mut self, profile: ProfileId) -> Self {
        self.settings.profile = Some(profile);
        self
    }

    /// The bound on connecting (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// The bound on one attempt of one exchange — connecting, sending and the whole
    /// response (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// The bound on a whole call, sign-in and retries included (default 60 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.settings.deadline = deadline;
        self
    }

    /// The largest response body read (default 1 MiB).
    pub fn max_response_bytes(mut self, limit: u64) -> Self {
        self.settings.max_response_bytes = limit;
        self
    }

    /// When to retry (default [`RetryPolicy::default`]); [`RetryPolicy::none`] turns it off.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = policy;
        self
    }

    /// How long before expiry the access token is renewed (default 5 minutes).
    pub fn access_token_refresh_margin(mut self, margin: Duration) -> Self {
        self.settings.access_token_margin = margin;
        self
    }

    /// The embed-token cache: at most `capacity` tokens, each reused until `margin`
    /// before it expires (default 1,024 and 10 minutes); `None` turns it off.
    ///
    /// Caching suits pages that many users open with the same identity, or none: one
    /// token serves them all until shortly before it expires, and Power BI is asked far
    /// less often. Turn it off when each token must be audited on its own (`tokenId`
    /// correlates a token's use with one GenerateToken call).
    pub fn embed_token_cache(mut self, cache: Option<(usize, Duration)>) -> Self {
        self.settings.embed_cache = cache;
        self
    }

    /// Shares embed tokens with other replicas through `store` (Redis, with
    /// `pbi-embed-redis`), with a lock so that identical cold requests on different
    /// replicas make one call to Power BI; the in-process cache stays in front of it. A
    /// store that fails or is slow never fails a call. The async client only.
    pub fn shared_store(mut self, store: Arc<dyn SharedStore>) -> Self {
        self.settings.shared.get_or_insert_with(SharedSettings::default);
        self.store = Some(store);
        self
    }

    /// Refresh-ahead (default off): a cached embed token within `window` of expiry (but
    /// not yet inside the embed cache's margin) is served at once and minted again in the
    /// background, by one task; item metadata in the last half of its time-to-live is
    /// read again the same way. With the default 10-minute margin, 15 minutes is a good
    /// window: a token asked for at least every 5 minutes never makes a caller wait on
    /// Power BI. `window` must be longer than the margin ([`build`](Self::build) says so).
    pub fn refresh_ahead(mut self, window: Duration) -> Self {
        self.settings.refresh_ahead = Some(window);
        self
    }

    /// The item-metadata cache: at most `capacity` items, each trusted for `ttl`
    /// (default 1,024 and 10 minutes); `None` turns it off, as for the embed-token cache.
    pub fn metadata_cache(mut self, cache: Option<(usize, Duration)>) -> Self {
        self.settings.metadata_cache = cache;
        self
    }

    /// Trusts the certificates in this PEM text (every `CERTIFICATE` block) as well as
    /// the default roots: a corporate TLS-inspecting proxy's CA, or the emulator's.
    /// Invalid PEM is reported by [`build`](Self::build).
    pub fn root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        let added = self.settings.connect.add_root_certificates_pem(pem.as_ref());
        self.defer(added.map(drop));
        self
    }

    /// Trusts one DER-encoded certificate as well as the default roots.
    pub fn root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        let added = self.settings.connect.add_root_certificate_der(der);
        self.defer(added.map(drop));
        self
    }

    /// Verifies servers with the platform's verifier (the system trust store, with
    /// corporate CAs) instead of Mozilla's bundled roots.
    pub fn platform_verifier(mut self, on: bool) -> Self {
        self.settings.connect.set_platform_verifier(on);
        self
    }

    /// Sends every request through this proxy (`http://` or `https://`, credentials
    /// allowed), instead of the one `HTTPS_PROXY`/`ALL_PROXY` name (which the drivers
    /// honour, with `NO_PROXY`, when none is set here). An invalid URL is reported by
    /// [`build`](Self::build), without quoting it.
    pub fn proxy(mut self, url: &str) -> Self {
        let set = self.settings.connect.set_proxy(url);
        self.defer(set);
        self
    }

    fn defer(&mut self, result: Result<(), ExchangeError>) {
        if let Err(error) = result {
            self.deferred.get_or_insert(error);
        }
    }

    /// Your own HTTP client, sharing its connection pool with your application. Configure
    /// it as the driver's documentation says (above all, to follow no redirect).
    pub fn http_client(mut self, http: D::Http) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// When no credential was given, a custom URL, root certificate or proxy is invalid,
    /// a setting is meaningless, or connection settings were given with your own HTTP
    /// client (configure yours instead).
    pub fn build(self) -> Result<D, Error> {
        if let Some(error) = self.deferred {
            return Err(error.into());
        }
        if self.http.is_some() && !self.settings.connect.is_default() {
            return Err(ExchangeError::invalid_input(
                "httpClient",
                "root certificates, the platform verifier and a proxy configure the client's own HTTP client; configure yours instead",
            )
            .into());
        }
        let credential = self.credential.ok_or_else(|| {
            ExchangeError::invalid_input(
                "credential",
                "give a service principal, a bearer token or a token source",
            )
        })?;
        if matches!(credential, Credential::TokenSource) && self.token_source.is_none() {
            return Err(ExchangeError::invalid_input(
                "tokenSource",
                "the credential is a token source, but none was given",
            )
            .into());
        }
        D::build(ClientParts {
            session: Session::new(self.settings, credential)?,
            token_source: self.token_source,
            http: self.http,
            store: self.store,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver that keeps what it was built from.
    #[derive(Debug)]
    struct Parts(Session, bool, bool);

    impl Driver for Parts {
        type Http = ();
        type TokenSource = ();

        fn build(parts: ClientParts<Self>) -> Result<Self, Error> {
            Ok(Self(parts.session, parts.http.is_some(), parts.store.is_some()))
        }
    }

    /// A store that is never asked anything.
    #[derive(Debug)]
    struct NoStore;

    impl SharedStore for NoStore {
        fn get<'a>(&'a self, _: &'a str) -> crate::flow::store::StoreFuture<'a, Option<Vec<u8>>> {
            Box::pin(async { Ok(None) })
        }
        fn put<'a>(
            &'a self,
            _: &'a str,
            _: &'a [u8],
            _: Duration,
        ) -> crate::flow::store::StoreFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
        fn lock<'a>(&'a self, _: &'a str, _: Duration) -> crate::flow::store::StoreFuture<'a, bool> {
            Box::pin(async { Ok(true) })
        }
        fn unlock<'a>(&'a self, _: &'a str) -> crate::flow::store::StoreFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    #[test]
    fn whole_settings_keep_the_store_and_the_connections_given_before() {
        let settings = ClientSettings {
            deadline: Duration::from_secs(7),
            ..ClientSettings::default()
        };
        let built = builder()
            .shared_store(Arc::new(NoStore))
            .root_certificates_pem(PEM)
            .proxy("http://proxy.corp:3128")
            .settings(settings.clone())
            .build()
            .unwrap();
        assert_eq!(
            built.0.settings().deadline,
            Duration::from_secs(7),
            "the settings given"
        );
        assert!(built.2, "the store reaches the driver");
        assert!(built.0.settings().shared.is_some(), "and the flow uses it");
        let connect = &built.0.settings().connect;
        assert_eq!(connect.root_certificates().len(), 1, "the roots given before");
        assert!(connect.proxy().is_some(), "the proxy given before");
        // Settings with connections of their own replace those given before.
        let mut own = settings;
        own.connect.set_platform_verifier(true);
        let built = builder()
            .root_certificates_pem(PEM)
            .settings(own)
            .build()
            .unwrap();
        assert!(built.0.settings().connect.platform_verifier());
        assert!(built.0.settings().connect.root_certificates().is_empty());
    }

    #[test]
    fn every_cache_is_switched_off_the_same_way() {
        let built = builder()
            .embed_token_cache(None)
            .metadata_cache(None)
            .build()
            .unwrap();
        assert_eq!(built.0.settings().embed_cache, None);
        assert_eq!(built.0.settings().metadata_cache, None);
    }

    fn builder() -> ClientBuilder<Parts> {
        ClientBuilder::new(|_| None).bearer_token(AccessToken::new("t"))
    }

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";

    #[test]
    fn connection_settings_reach_the_driver() {
        let built = builder()
            .root_certificates_pem(PEM)
            .root_certificate_der(vec![0x30, 0])
            .platform_verifier(true)
            .proxy("http://proxy.corp:3128")
            .build()
            .unwrap();
        let connect = &built.0.settings().connect;
        assert_eq!(connect.root_certificates().len(), 2);
        assert!(connect.platform_verifier());
        assert_eq!(connect.proxy().unwrap().url(), "http://proxy.corp:3128/");
    }

    #[test]
    fn invalid_connection_settings_fail_the_build_by_name() {
        let error = builder().root_certificates_pem("nothing").build().unwrap_err();
        assert!(error.to_string().contains("rootCertificates"), "{error}");
        let error = builder()
            .proxy("socks5://user:hunter2@proxy:1080")
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("proxy"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        // The first invalid setting is the one reported.
        let error = builder()
            .proxy("nope")
            .root_certificates_pem("nothing")
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("proxy"), "{error}");
    }

    #[test]
    fn connection_settings_do_not_apply_to_a_callers_http_client() {
        let error = builder()
            .http_client(())
            .proxy("http://proxy:3128")
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("httpClient"), "{error}");
        assert!(builder().http_client(()).build().unwrap().1);
    }

    #[test]
    fn from_env_takes_the_authority_host_unless_one_was_given() {
        fn env(name: &str) -> Option<OsString> {
            let value = match name {
                "AZURE_TENANT_ID" => "contoso.onmicrosoft.com",
                "AZURE_CLIENT_ID" => "00000000-0000-0000-0000-000000000001",
                "AZURE_CLIENT_SECRET" => "s",
                "AZURE_AUTHORITY_HOST" => "https://login.microsoftonline.us",
                _ => return None,
            };
            Some(value.into())
        }
        let built = ClientBuilder::<Parts>::new(env)
            .from_env()
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            built.0.cloud().authority_host(),
            "https://login.microsoftonline.us"
        );
        let given = ClientBuilder::<Parts>::new(env)
            .authority_host("https://login.partner.microsoftonline.cn")
            .from_env()
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            given.0.cloud().authority_host(),
            "https://login.partner.microsoftonline.cn"
        );
    }
}
