//! A local emulator of the Power BI embed-token REST API and the Entra ID token endpoint.
//!
//! It serves real HTTP on `127.0.0.1`, so tests, examples and benchmarks can mint embed
//! tokens without a Power BI tenant: the six GenerateToken routes with Power BI's rules
//! (workspace membership, row-level security, identity limits) and its status codes,
//! error codes and messages; the client-credentials grant of Entra ID; and control routes
//! to inspect minted tokens, count requests and inject faults.
//!
//! Over HTTPS ([`EmulatorBuilder::tls`], [`Tls`]) it also answers what Microsoft's sign-in
//! libraries ask first (OpenID Connect discovery, the signing keys, instance discovery),
//! and its access tokens are RS256 JWTs with Entra's app claims ([`AccessClaims`]), so
//! MSAL and azure-identity sign in to it unchanged but for the CA and the authority host.
//!
//! ```
//! use pbi_embed_emulator::Emulator;
//!
//! let emulator = Emulator::start()?;
//! let base = emulator.base_url(); // http://127.0.0.1:<port>, for both API and sign-in
//! let ids = emulator.ids();
//! assert!(base.starts_with("http://127.0.0.1:"));
//! assert_eq!(ids.workspace, "f089354e-8366-4e18-aea3-4cb4a3a50b48");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The emulator parses requests with its own types, written from Microsoft's
//! specification, and shares no code with `pbi-embed-core`: a wire-format bug in a
//! client shows up as a failed test here instead of hiding behind a shared one.
//!
//! Every response carries a `RequestId` header (and the token endpoint's an
//! `x-ms-request-id`). The fixture format is described in [`fixture`] and by
//! `fixtures/default.json`, the built-in default. Control routes are listed in [`control`].

pub mod access_token;
pub mod control;
pub mod faults;
pub mod fixture;
pub mod route;
pub mod state;
pub mod tokens;
pub mod user_token;

mod assertion;
mod clock;
mod discovery;
mod embed_page;
mod entra;
mod generate;
mod managed_identity;
mod metadata;
mod reply;
mod server;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::oneshot;

pub use access_token::AccessClaims;
pub use faults::{Fault, FaultRule, RouteMatch};
pub use fixture::{Fixture, MAX_FIXTURE_BYTES};
pub use route::Route;
pub use state::{RateLimit, Stats};
pub use tls::Tls;
pub use tokens::{Claims, IdentitySummary, MintedToken, Resource};
pub use user_token::UserToken;

use state::State;
use tokens::unix_ms;

/// How to start an [`Emulator`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EmulatorBuilder {
    fixture: Fixture,
    listen: SocketAddr,
    worker_threads: usize,
    embed_base: Option<String>,
    embed_host: Option<String>,
    header_read_timeout: Duration,
    tls: Option<Tls>,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            fixture: Fixture::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            worker_threads: 2,
            embed_base: None,
            embed_host: None,
            header_read_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

impl EmulatorBuilder {
    /// Serves this fixture instead of the built-in one.
    pub fn fixture(mut self, fixture: Fixture) -> Self {
        self.fixture = fixture;
        self
    }

    /// Listens here (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The `expires_in` of access tokens (default: the fixture's, 3599 s).
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.fixture.access_token_lifetime_seconds = lifetime.as_secs();
        self
    }

    /// Where embed URLs point (default: the emulator's own base URL). A browser test that
    /// routes an https Power BI host name to the emulator sets it, for example to
    /// `https://emu.powerbi.com`, since `powerbi-client` accepts only such hosts.
    pub fn embed_base(mut self, url: impl Into<String>) -> Self {
        self.embed_base = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Embed URLs name this host, with the emulator's own scheme and port: under TLS with
    /// [`Tls::name`]`("emu.powerbi.com")` and a browser that resolves that name to the
    /// emulator, `powerbi-client` embeds from `https://emu.powerbi.com:<port>/…` itself.
    /// [`embed_base`](Self::embed_base) wins when both are set.
    pub fn embed_host(mut self, host: impl Into<String>) -> Self {
        self.embed_host = Some(host.into());
        self
    }

    /// How long a connection may take to send a request's head, or stay idle between
    /// keep-alive requests, before it is closed (default 30 s; at least 1 ms).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Serves HTTPS (and only HTTPS) on the same routes: [`Tls::generated`] makes a
    /// certificate authority and a certificate for the loopback names, which
    /// [`Emulator::ca_pem`] then gives to clients to trust.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Server threads (default 2).
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = threads.max(1);
        self
    }

    /// Binds the socket and starts serving on a thread of its own; returns once it
    /// accepts connections.
    ///
    /// # Errors
    /// When the runtime cannot start, the address cannot be bound, or the TLS
    /// certificate or key is not usable.
    pub fn start(self) -> std::io::Result<Emulator> {
        let (tls, ca_pem) = match &self.tls {
            Some(tls) => {
                let (config, ca_pem) = tls.server_config()?;
                (Some(tokio_rustls::TlsAcceptor::from(config)), ca_pem)
            }
            None => (None, None),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.worker_threads)
            .thread_name("pbi-embed-emulator")
            .enable_all()
            .build()?;
        // Bound with std, so that starting works from inside another async runtime too.
        let listener = std::net::TcpListener::bind(self.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let base_url = format!("{scheme}://{addr}");
        let embed_base = match (self.embed_base, self.embed_host) {
            (Some(base), _) => base,
            (None, Some(host)) => format!("{scheme}://{host}:{}", addr.port()),
            (None, None) => base_url.clone(),
        };
        let mut state = State::new(self.fixture, base_url, embed_base.clone())?;
        state.hosts = self
            .tls
            .iter()
            .flat_map(|tls| tls.names().iter().cloned())
            .collect();
        if let Some(host) = url::Url::parse(&embed_base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            state.hosts.push(host);
        }
        let state = Arc::new(state);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let serving = Arc::clone(&state);
        let header_read_timeout = self.header_read_timeout;
        let thread = std::thread::Builder::new()
            .name("pbi-embed-emulator".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            server::serve(listener, serving, tls, header_read_timeout, shutdown_rx).await
                        }
                        Err(error) => eprintln!("pbi-embed-emulator: cannot serve: {error}"),
                    }
                });
            })?;
        Ok(Emulator {
            addr,
            state,
            ca_pem,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops it.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    ca_pem: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The identifiers of the built-in fixture that examples and tests use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureIds {
    /// The tenant GUID.
    pub tenant: String,
    /// The service principal's client id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// A principal that is a member of no workspace the other is in.
    pub outsider_client_id: String,
    /// The workspace the principal is a member of.
    pub workspace: String,
    /// A workspace it is not a member of.
    pub other_workspace: String,
    /// A report on the dataset that requires an identity with roles.
    pub rls_report: String,
    /// That dataset.
    pub rls_dataset: String,
    /// A role that dataset defines.
    pub rls_role: String,
    /// A report on a dataset without row-level security.
    pub report: String,
    /// That dataset.
    pub dataset: String,
    /// A dashboard.
    pub dashboard: String,
    /// A tile on it, over the RLS dataset.
    pub tile: String,
}

impl Emulator {
    /// Starts an emulator with the built-in fixture on a free loopback port.
    ///
    /// # Errors
    /// As [`EmulatorBuilder::start`].
    pub fn start() -> std::io::Result<Self> {
        Self::builder().start()
    }

    /// A builder, to choose the fixture, address or token lifetime.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The socket address served.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (`https://` under [`EmulatorBuilder::tls`]): both the
    /// Power BI API base and the Entra authority host.
    #[must_use]
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// Makes a client certificate (RSA-2048, self-signed, valid from a day ago for a year)
    /// and registers it on the service principal `client_id`; returns the certificate and
    /// its private key (PKCS#8), PEM. `None` for an unknown client id.
    #[must_use]
    pub fn issue_client_certificate(&self, client_id: &str) -> Option<(String, String)> {
        let now = time::OffsetDateTime::now_utc();
        self.issue_client_certificate_valid(
            client_id,
            now - time::Duration::days(1),
            now + time::Duration::days(365),
        )
    }

    /// The same, valid from `not_before` to `not_after` (an expired one, say).
    #[must_use]
    pub fn issue_client_certificate_valid(
        &self,
        client_id: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Option<(String, String)> {
        let principal = self.state.fixture.principal(client_id)?;
        let subject = principal.display_name.clone();
        let (certificate, key) = access_token::client_certificate(&subject, not_before, not_after).ok()?;
        if let Ok(mut registered) = self.state.certificates.lock() {
            registered.push((principal.client_id.clone(), certificate.clone()));
        }
        Some((certificate, key))
    }

    /// A federated token, as a Kubernetes service account (or any OIDC issuer Entra
    /// trusts) would get it: `iss` the emulator's federation issuer, `sub` as given, `aud`
    /// `api://AzureADTokenExchange`, valid for `lifetime`, signed with the key at
    /// `jwks_uri`. Write it to the file `AZURE_FEDERATED_TOKEN_FILE` names; it signs in as
    /// the app whose federated credential matches (the built-in fixture's service
    /// principal takes `system:serviceaccount:embedding:backend`).
    #[must_use]
    pub fn issue_federated_token(&self, subject: &str, lifetime: Duration) -> String {
        let now = SystemTime::now();
        self.issue_federated_token_valid(subject, now, clock::later(now, lifetime))
    }

    /// The same, valid from `not_before` until `expires` (an expired one, say).
    #[must_use]
    pub fn issue_federated_token_valid(
        &self,
        subject: &str,
        not_before: SystemTime,
        expires: SystemTime,
    ) -> String {
        let nbf = access_token::unix_seconds(not_before);
        let claims = serde_json::json!({
            "iss": assertion::FEDERATION_ISSUER,
            "sub": subject,
            "aud": assertion::TOKEN_EXCHANGE_AUDIENCE,
            "iat": nbf,
            "nbf": nbf,
            "exp": access_token::unix_seconds(expires),
            "jti": tokens::new_guid(),
        });
        self.state.access.sign_value(&claims)
    }

    /// `IDENTITY_ENDPOINT` of the emulated App Service managed-identity endpoint:
    /// `{base}/msi/token`. The instance metadata service answers at the base URL itself
    /// (`AZURE_POD_IDENTITY_AUTHORITY_HOST`).
    #[must_use]
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.state.base_url)
    }

    /// `IDENTITY_HEADER`: the secret the App Service endpoint expects, when the fixture
    /// has managed identities.
    #[must_use]
    pub fn identity_header(&self) -> Option<&str> {
        self.state
            .fixture
            .managed_identity
            .as_ref()
            .map(|m| m.identity_header.as_str())
    }

    /// The certificate authority (PEM) that signed the emulator's generated TLS
    /// certificate, for clients to trust; `None` without TLS or with a given certificate.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The fixture served.
    #[must_use]
    pub fn fixture(&self) -> &Fixture {
        &self.state.fixture
    }

    /// The identifiers examples and tests use, read from the built-in fixture layout:
    /// the first principal, its workspace, the RLS and non-RLS reports, the dashboard.
    #[must_use]
    pub fn ids(&self) -> FixtureIds {
        fixture_ids(&self.state.fixture)
    }

    /// Adds a fault rule.
    pub fn inject(&self, rule: FaultRule) {
        self.state.faults.add(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Sets or removes the per-principal rate limit on GenerateToken.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.state.set_rate_limit(limit);
    }

    /// Sets the `expires_in` of access tokens issued from now on.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.state.set_access_token_lifetime(lifetime);
    }

    /// Requests received on `route` so far.
    #[must_use]
    pub fn requests(&self, route: Route) -> u64 {
        self.state.requests(route)
    }

    /// Requests received on all six GenerateToken routes so far.
    #[must_use]
    pub fn generate_token_requests(&self) -> u64 {
        Route::ALL
            .iter()
            .filter(|r| r.is_generate_token())
            .map(|r| self.state.requests(*r))
            .sum()
    }

    /// All counts.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Zeroes the counts.
    pub fn reset_stats(&self) {
        self.state.reset_stats();
    }

    /// A minted embed token, by token id.
    #[must_use]
    pub fn minted_token(&self, token_id: &str) -> Option<MintedToken> {
        self.state.tokens.get(token_id)
    }

    /// The token ids embed pages accepted through powerbi-client's `setAccessToken`, in
    /// order (`GET /_emulator/tokens-set`): what a page that keeps its embed alive did.
    #[must_use]
    pub fn tokens_set(&self) -> Vec<String> {
        self.state.tokens_set()
    }

    /// Checks an embed token: whether the emulator issued it, whether it has expired, and
    /// what it grants.
    #[must_use]
    pub fn introspect(&self, token: &str) -> Introspection {
        introspect(&self.state, token)
    }

    /// A token for a web app's user, as the callers' identity provider: signed with the
    /// key the emulator publishes, issued by [`Self::user_token_issuer`].
    #[must_use]
    pub fn issue_user_token(&self, token: &UserToken) -> String {
        user_token::issue(&self.state, token, SystemTime::now())
    }

    /// Signs users' tokens from now on with a new key, published beside the old ones (a
    /// key rotation at the identity provider). Returns the new key's id.
    ///
    /// # Errors
    /// When no key can be generated.
    pub fn rotate_user_key(&self) -> Result<String, String> {
        user_token::rotate(&self.state)
    }

    /// The issuer of user tokens, `{base}/{tenant}/v2.0`: its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    #[must_use]
    pub fn user_token_issuer(&self) -> String {
        user_token::issuer(&self.state)
    }

    /// Issues an access token for a principal directly, bypassing sign-in; a zero
    /// lifetime gives an already expired token. `None` for an unknown client id.
    #[must_use]
    pub fn issue_access_token(&self, client_id: &str, lifetime: Duration) -> Option<String> {
        issue_access_token(&self.state, client_id, lifetime)
    }

    /// Stops accepting connections, lets open requests finish (up to 5 s), and waits for
    /// the server thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Listens for Ctrl-C (SIGINT) and SIGTERM, calls `ready` (say, to print the base
    /// URL), blocks until one arrives, then shuts down.
    ///
    /// The handlers are installed before `ready` runs, so a process that is told the
    /// emulator is ready can always stop it, even once its file descriptors run out.
    ///
    /// # Errors
    /// When the signal handlers cannot be installed.
    pub fn run_until_signal(mut self, ready: impl FnOnce()) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let mut interrupt = signal(SignalKind::interrupt())?;
                let mut terminate = signal(SignalKind::terminate())?;
                ready();
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                let ctrl_c = tokio::signal::ctrl_c();
                ready();
                ctrl_c.await?;
            }
            Ok::<(), std::io::Error>(())
        })?;
        self.stop();
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the emulator knows of an embed token.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Introspection {
    /// Issued by this emulator, unaltered, and not expired.
    pub valid: bool,
    /// Why not, when not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the token grants, when the emulator issued it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<MintedToken>,
}

pub(crate) fn introspect(state: &State, token: &str) -> Introspection {
    let invalid = |reason: &str, token: Option<MintedToken>| Introspection {
        valid: false,
        reason: Some(reason.to_owned()),
        token,
    };
    let Some(Claims::Embed { tid, exp }) = state.signer.verify(token) else {
        return invalid(
            "not an embed token issued by this emulator (or it was altered)",
            None,
        );
    };
    let minted = state.tokens.get(&tid);
    if unix_ms(SystemTime::now()) >= exp {
        return invalid("the embed token has expired", minted);
    }
    match minted {
        None => invalid("the embed token is no longer remembered", None),
        Some(minted) => Introspection {
            valid: true,
            reason: None,
            token: Some(minted),
        },
    }
}

pub(crate) fn issue_access_token(state: &State, client_id: &str, lifetime: Duration) -> Option<String> {
    let principal = state.fixture.principal(client_id)?;
    Some(state.issue_access_token(&principal.client_id, lifetime))
}

fn fixture_ids(fixture: &Fixture) -> FixtureIds {
    let principal = fixture.service_principals.first();
    let client_id = principal.map(|p| p.client_id.clone()).unwrap_or_default();
    let member = fixture.workspaces.iter().find(|w| w.has_member(&client_id));
    let other = fixture.workspaces.iter().find(|w| !w.has_member(&client_id));
    let datasets = member.map(|w| w.datasets.as_slice()).unwrap_or_default();
    let reports = member.map(|w| w.reports.as_slice()).unwrap_or_default();
    let rls = datasets.iter().find(|d| d.is_effective_identity_roles_required);
    let plain = datasets.iter().find(|d| !d.is_effective_identity_required);
    let report_on = |d: Option<&fixture::Dataset>| {
        d.and_then(|d| reports.iter().find(|r| r.dataset_id.eq_ignore_ascii_case(&d.id)))
            .map(|r| r.id.clone())
            .unwrap_or_default()
    };
    let dashboard = member.and_then(|w| w.dashboards.first());
    FixtureIds {
        tenant: fixture.tenant.id.clone(),
        client_id: client_id.clone(),
        client_secret: principal.map(|p| p.client_secret.clone()).unwrap_or_default(),
        outsider_client_id: fixture
            .service_principals
            .get(1)
            .map(|p| p.client_id.clone())
            .unwrap_or_default(),
        workspace: member.map(|w| w.id.clone()).unwrap_or_default(),
        other_workspace: other.map(|w| w.id.clone()).unwrap_or_default(),
        rls_report: report_on(rls),
        rls_dataset: rls.map(|d| d.id.clone()).unwrap_or_default(),
        rls_role: rls.and_then(|d| d.roles.first().cloned()).unwrap_or_default(),
        report: report_on(plain),
        dataset: plain.map(|d| d.id.clone()).unwrap_or_default(),
        dashboard: dashboard.map(|d| d.id.clone()).unwrap_or_default(),
        tile: dashboard
            .and_then(|d| d.tiles.first())
            .map(|t| t.id.clone())
            .unwrap_or_default(),
    }
}
