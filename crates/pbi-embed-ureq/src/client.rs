//! The blocking client: configuration, one generic `execute`, and the embed-token cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use pbi_embed_core::embed_config::{dashboard_token_request, report_token_request, tile_token_request};
use pbi_embed_core::http;
use pbi_embed_core::{
    AccessToken, ApiRequest, BearerToken, CacheKey, ClientCredentials, ClientId, ClientSecret,
    ClientSettings, Cloud, CreateReportToken, DashboardId, DashboardToken, Dataset, DatasetId, DatasetToken,
    EmbedConfig, EmbedOptions, EmbedToken, EmbedTokenCache, ErrorKind, ExecuteError, GetDashboardInGroup,
    GetDatasetInGroup, GetReportInGroup, GetTileInGroup, MultiResourceToken, NextStep, Operation, ProfileId,
    ReportId, ReportToken, RetryPolicy, RetryState, TenantId, TileId, TileToken, TransportKind, WorkspaceId,
    check_rls, service_principal_from,
};

use crate::Error;
use crate::credential::{BearerCache, Credential, TokenSource, fixed, source_error};

/// Builds a [`Client`]. Every setting has a safe default; only the credential is required.
#[derive(Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    settings: ClientSettings,
    credential: Option<Credential>,
}

impl ClientBuilder {
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

    /// Another Entra ID authority host (the scope stays the cloud's).
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

    /// Sign in as the service principal named by `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
    /// `AZURE_CLIENT_SECRET`, as Azure tools name them.
    ///
    /// # Errors
    /// When a variable is missing or malformed; the error names it, never its value.
    pub fn service_principal_from_env(self) -> Result<Self, Error> {
        let (tenant, client_id, secret) = service_principal_from(|name| std::env::var(name).ok())?;
        Ok(self.service_principal(tenant, client_id, secret))
    }

    /// Use this bearer token as is. It cannot be renewed: after it expires, calls fail
    /// with [`ErrorKind::TokenExpired`](pbi_embed_core::ErrorKind::TokenExpired).
    pub fn bearer_token(mut self, token: AccessToken) -> Self {
        self.credential = Some(fixed(token));
        self
    }

    /// Get bearer tokens from your own source (cached and renewed like a sign-in).
    pub fn token_source(mut self, source: impl TokenSource) -> Self {
        self.credential = Some(Credential::Source(Box::new(source)));
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

    /// The bound on an HTTP exchange (default 30 s): on waiting for the answer's head, and
    /// on receiving its body, each.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
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
    /// before it expires (default 1024 and 10 minutes); `None` turns it off. See
    /// [`pbi_embed_core::cache`] for when to use it.
    pub fn embed_token_cache(mut self, cache: Option<(usize, Duration)>) -> Self {
        self.settings.embed_cache = cache;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// When no credential was given, or a custom URL is invalid.
    pub fn build(self) -> Result<Client, Error> {
        let credential = self.credential.ok_or_else(|| {
            pbi_embed_core::Error::invalid_input(
                "credential",
                "give a service principal, a bearer token or a token source",
            )
        })?;
        let settings = self.settings;
        let cloud = settings.resolved_cloud()?;
        let credential = match credential {
            Credential::ServicePrincipal(op) => Credential::ServicePrincipal(op.cloud(cloud.clone())),
            other => other,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(settings.connect_timeout))
            // The bound applies to waiting for the answer's head and to receiving its body,
            // each (request bodies are a few hundred bytes and never block on sending).
            // ureq 3.5's global and per-call timers cost about 90 µs a call on loopback
            // (see BENCHMARKS.md); these cost about 1.5 µs.
            .timeout_recv_response(Some(settings.timeout))
            .timeout_recv_body(Some(settings.timeout))
            .user_agent(concat!("pbi-embed-ureq/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            inner: Arc::new(Inner {
                agent,
                cloud,
                credential,
                bearer: BearerCache::default(),
                embed_cache: settings.new_embed_cache().map(Mutex::new),
                settings,
                in_flight: Mutex::new(HashMap::new()),
                datasets: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// A blocking Power BI client. Cheap to clone; clones share caches.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    agent: ureq::Agent,
    cloud: Cloud,
    credential: Credential,
    settings: ClientSettings,
    bearer: BearerCache,
    embed_cache: Option<Mutex<EmbedTokenCache>>,
    /// One lock per embed-token request in flight, so identical ones share a call.
    in_flight: Mutex<HashMap<CacheKey, Arc<Mutex<()>>>>,
    /// Datasets' RLS flags, for the pre-flight.
    datasets: Mutex<HashMap<(WorkspaceId, DatasetId), (Dataset, Instant)>>,
}

/// How long a dataset's RLS flags are trusted.
const DATASET_FLAGS_TTL: Duration = Duration::from_secs(10 * 60);

impl Client {
    /// A builder with safe defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The cloud the client talks to.
    #[must_use]
    pub fn cloud(&self) -> &Cloud {
        &self.inner.cloud
    }

    /// Sends any Power BI call, signed in, with retries; no caching.
    ///
    /// # Errors
    /// [`Error`]: what Power BI or Entra ID said, a transport failure, or invalid input.
    pub fn execute<R: ApiRequest>(&self, request: &R) -> Result<R::Output, Error> {
        let span = tracing::info_span!("pbi_embed", operation = request.operation_id());
        let _entered = span.enter();
        request.validate()?;
        let inner = &self.inner;
        let started = Instant::now();
        let mut state = RetryState::new(inner.settings.retry);
        let mut rejected = None;
        loop {
            let held = inner
                .bearer
                .get(inner.settings.access_token_margin, rejected, || {
                    self.fetch_bearer()
                })?;
            let attempt = state.start_attempt();
            let operation = request
                .authorize(&inner.cloud, &held.token.access_token)
                .profile(inner.settings.profile.as_ref());
            let result = self.send(&operation);
            let error = match result {
                Ok(output) => {
                    tracing::debug!(attempt, elapsed_ms = elapsed_ms(started), "ok");
                    return Ok(output);
                }
                Err(error) => error,
            };
            log_failure(attempt, started, &error);
            let step = state.next(
                error.kind(),
                error.outcome(),
                inner.credential.renewable(),
                started.elapsed(),
                SystemTime::now(),
                fastrand::u32(..),
            );
            match step {
                NextStep::Wait(delay) => std::thread::sleep(delay),
                NextStep::Reauthenticate => rejected = Some(held.generation),
                _ => return Err(error),
            }
        }
    }

    /// Mints an embed token with any GenerateToken operation, through the embed-token
    /// cache when it is on.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn embed_token<R: ApiRequest<Output = EmbedToken>>(&self, request: &R) -> Result<EmbedToken, Error> {
        let Some(cache) = &self.inner.embed_cache else {
            return self.execute(request);
        };
        let key = CacheKey::new(request, self.inner.settings.profile.as_ref())?;
        if let Some(token) = lock(cache).get(&key, SystemTime::now()) {
            return Ok(token.clone());
        }
        // Identical requests queue on one lock; the first calls Power BI, the rest find
        // its token in the cache.
        let slot = Arc::clone(lock(&self.inner.in_flight).entry(key.clone()).or_default());
        let result = {
            let _turn = lock(&slot);
            let cached = lock(cache).get(&key, SystemTime::now()).cloned();
            match cached {
                Some(token) => Ok(token),
                None => self.execute(request).inspect(|token| {
                    lock(cache).insert(key.clone(), token.clone(), SystemTime::now());
                }),
            }
        };
        let mut in_flight = lock(&self.inner.in_flight);
        if Arc::strong_count(&slot) == 2 {
            in_flight.remove(&key);
        }
        result
    }

    /// Reports GenerateTokenInGroup: a token to view or edit a report.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn report_token(&self, request: &ReportToken) -> Result<EmbedToken, Error> {
        self.embed_token(request)
    }

    /// Reports GenerateTokenForCreateInGroup: a token to create a report from a dataset.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn create_report_token(&self, request: &CreateReportToken) -> Result<EmbedToken, Error> {
        self.embed_token(request)
    }

    /// Dashboards GenerateTokenInGroup: a token to view a dashboard.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn dashboard_token(&self, request: &DashboardToken) -> Result<EmbedToken, Error> {
        self.embed_token(request)
    }

    /// Tiles GenerateTokenInGroup: a token to view one tile.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn tile_token(&self, request: &TileToken) -> Result<EmbedToken, Error> {
        self.embed_token(request)
    }

    /// Datasets GenerateTokenInGroup: a token for Q&A over a dataset.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn dataset_token(&self, request: &DatasetToken) -> Result<EmbedToken, Error> {
        self.embed_token(request)
    }

    /// Embed Token GenerateToken: one token for several reports and datasets.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn multi_resource_token(&self, request: &MultiResourceToken) -> Result<EmbedToken, Error> {
        self.embed_token(request)
    }

    /// The configuration `powerbi-client` takes to embed a report: its metadata (for the
    /// embed URL), the RLS pre-flight against its dataset's flags, and a multi-resource
    /// token for the report and its dataset, through the embed-token cache.
    ///
    /// # Errors
    /// [`ErrorKind::RlsIdentity`] from the pre-flight, or as [`Client::execute`].
    pub fn report_embed_config(
        &self,
        workspace: &WorkspaceId,
        report: &ReportId,
        options: &EmbedOptions,
    ) -> Result<EmbedConfig, Error> {
        let metadata = self.execute(&GetReportInGroup::new(workspace.clone(), report.clone()))?;
        let request = report_token_request(&metadata, options);
        if options.preflight()
            && let Some(dataset) = &metadata.dataset_id
        {
            self.preflight(workspace, dataset, &request.request_body().identities)?;
        }
        let token = self.embed_token(&request)?;
        Ok(EmbedConfig::report(
            &metadata,
            workspace,
            token,
            options.editable_requested(),
        ))
    }

    /// The configuration `powerbi-client` takes to embed a dashboard.
    ///
    /// Unlike a report's or a tile's, a dashboard's metadata does not name its datasets, so
    /// each RLS identity in `options` must name the datasets it applies to.
    ///
    /// # Errors
    /// As [`Client::execute`]; an identity that names no dataset fails as invalid input,
    /// before anything is sent.
    pub fn dashboard_embed_config(
        &self,
        workspace: &WorkspaceId,
        dashboard: &DashboardId,
        options: &EmbedOptions,
    ) -> Result<EmbedConfig, Error> {
        let metadata = self.execute(&GetDashboardInGroup::new(workspace.clone(), dashboard.clone()))?;
        let token = self.embed_token(&dashboard_token_request(workspace, &metadata, options))?;
        Ok(EmbedConfig::dashboard(&metadata, workspace, token))
    }

    /// The configuration `powerbi-client` takes to embed a tile, with the RLS pre-flight
    /// against the tile's dataset.
    ///
    /// # Errors
    /// [`ErrorKind::RlsIdentity`] from the pre-flight, or as [`Client::execute`].
    pub fn tile_embed_config(
        &self,
        workspace: &WorkspaceId,
        dashboard: &DashboardId,
        tile: &TileId,
        options: &EmbedOptions,
    ) -> Result<EmbedConfig, Error> {
        let metadata = self.execute(&GetTileInGroup::new(
            workspace.clone(),
            dashboard.clone(),
            tile.clone(),
        ))?;
        let request = tile_token_request(workspace, dashboard, &metadata, options);
        if options.preflight()
            && let Some(dataset) = &metadata.dataset_id
        {
            self.preflight(workspace, dataset, &request.request_body().identities)?;
        }
        let token = self.embed_token(&request)?;
        Ok(EmbedConfig::tile(&metadata, dashboard, workspace, token))
    }

    /// A dataset's metadata, including its RLS flags; cached for 10 minutes.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn dataset(&self, workspace: &WorkspaceId, dataset: &DatasetId) -> Result<Dataset, Error> {
        let key = (workspace.clone(), dataset.clone());
        let cached = lock(&self.inner.datasets)
            .get(&key)
            .filter(|(_, at)| at.elapsed() < DATASET_FLAGS_TTL)
            .map(|(flags, _)| flags.clone());
        if let Some(flags) = cached {
            return Ok(flags);
        }
        let flags = self.execute(&GetDatasetInGroup::new(workspace.clone(), dataset.clone()))?;
        lock(&self.inner.datasets).insert(key, (flags.clone(), Instant::now()));
        Ok(flags)
    }

    /// Runs the RLS pre-flight. A dataset the client cannot read (in another workspace,
    /// say) is left to Power BI to judge.
    fn preflight(
        &self,
        workspace: &WorkspaceId,
        dataset: &DatasetId,
        identities: &[pbi_embed_core::EffectiveIdentity],
    ) -> Result<(), Error> {
        match self.dataset(workspace, dataset) {
            Ok(flags) => Ok(check_rls(&flags, identities)?),
            Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotAuthorized) => {
                tracing::debug!(error = %error, "RLS pre-flight skipped: the dataset cannot be read");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Signs in now (or returns the cached token while it is fresh). Useful to check
    /// credentials at start-up.
    ///
    /// # Errors
    /// What Entra ID (or the token source) said.
    pub fn sign_in(&self) -> Result<BearerToken, Error> {
        let inner = &self.inner;
        Ok(inner
            .bearer
            .get(inner.settings.access_token_margin, None, || self.fetch_bearer())?
            .token)
    }

    /// Forgets every cached embed token.
    pub fn clear_embed_token_cache(&self) {
        if let Some(cache) = &self.inner.embed_cache {
            lock(cache).clear();
        }
    }

    /// Gets a new bearer token from the credential, retrying the sign-in like any call.
    fn fetch_bearer(&self) -> Result<BearerToken, Error> {
        match &self.inner.credential {
            Credential::Fixed(token) => Ok(token.clone()),
            Credential::Source(source) => source.token().map_err(source_error),
            Credential::ServicePrincipal(op) => {
                let span = tracing::info_span!("pbi_embed", operation = op.name());
                let started = Instant::now();
                let mut state = RetryState::new(self.inner.settings.retry);
                loop {
                    let attempt = state.start_attempt();
                    let received_at = SystemTime::now();
                    let error = match span.in_scope(|| self.send(op)) {
                        Ok(token) => return Ok(token.into_bearer(received_at)),
                        Err(error) => error,
                    };
                    span.in_scope(|| log_failure(attempt, started, &error));
                    let step = state.next(
                        error.kind(),
                        error.outcome(),
                        false,
                        started.elapsed(),
                        SystemTime::now(),
                        fastrand::u32(..),
                    );
                    match step {
                        NextStep::Wait(delay) => std::thread::sleep(delay),
                        _ => return Err(error),
                    }
                }
            }
        }
    }

    /// One HTTP exchange: build, send, read at most the cap, parse.
    fn send<O: Operation>(&self, operation: &O) -> Result<O::Output, Error> {
        let request = operation.to_http()?;
        let response = self.inner.agent.run(request).map_err(transport)?;
        let (parts, mut body) = response.into_parts();
        let limit = self.inner.settings.max_response_bytes;
        let bytes = body
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => ExecuteError::BodyTooLarge { limit },
                other => transport(other),
            })?;
        let response = http::Response::from_parts(parts, bytes);
        tracing::debug!(
            status = response.status().as_u16(),
            request_id = pbi_embed_core::response::request_id(response.headers()).as_deref(),
            "response"
        );
        Ok(operation.from_http(response)?)
    }
}

/// Classifies a ureq error for retrying and reporting.
fn transport(error: ureq::Error) -> Error {
    let kind = match &error {
        ureq::Error::Timeout(_) => TransportKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Tls(_) => {
            TransportKind::Connect
        }
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => TransportKind::Timeout,
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => TransportKind::Connect,
        ureq::Error::Io(_) | ureq::Error::Protocol(_) | ureq::Error::BodyStalled => TransportKind::Io,
        _ => TransportKind::Other,
    };
    ExecuteError::Transport { kind, source: error }
}

fn log_failure(attempt: u32, started: Instant, error: &Error) {
    tracing::info!(
        attempt,
        status = error.status().map(|s| s.as_u16()),
        request_id = error.request_id(),
        elapsed_ms = elapsed_ms(started),
        error = %error,
        "attempt failed"
    );
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
