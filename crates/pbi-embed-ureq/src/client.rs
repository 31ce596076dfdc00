//! The blocking driver: pumps the core's calls over a [`ureq::Agent`], sleeps and waits
//! on threads.

use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant, SystemTime};

use pbi_embed_core::driver::{
    Action, Call, ClientParts, Driver, Event, Exchange, Join, Now, Responder, SharedSession, TransportError,
    request_id,
};
use pbi_embed_core::{
    ApiRequest, BearerToken, BoxedTokenSource, ClientBuilder, ClientStats, Cloud, ConnectSettings,
    EmbedConfig, EmbedRequest, EmbedToken, Error, TokenSource, TransportKind, http,
};

/// Keeps requests warm ([`Client::keep_warm`]) until dropped.
#[derive(Debug)]
pub struct KeepWarm {
    /// Dropped with the handle: the warm-up thread sees it at its next wake.
    _stop: std::sync::mpsc::Sender<()>,
}

/// The most calls of one join run at once (each on a thread while it lasts).
const SIDE_BY_SIDE: usize = 4;

impl Driver for Client {
    type Http = ureq::Agent;
    type TokenSource = BoxedTokenSource<dyn TokenSource>;

    fn build(parts: ClientParts<Self>) -> Result<Self, Error> {
        if parts.store.is_some() {
            return Err(Error::invalid_input(
                "sharedStore",
                "a shared store is async: use it with pbi-embed-reqwest",
            ));
        }
        let settings = parts.session.settings();
        let (agent, own_bound) = match parts.http {
            Some(agent) => (agent, None),
            None => {
                let config = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .timeout_connect(Some(settings.connect_timeout))
                    .timeout_per_call(Some(settings.timeout))
                    .user_agent(concat!("pbi-embed-ureq/", env!("CARGO_PKG_VERSION")));
                (
                    connect(config, &settings.connect)?.build().into(),
                    Some(settings.timeout),
                )
            }
        };
        Ok(Self {
            session: Arc::new(SharedSession::new(parts.session)),
            parked: Arc::new(Condvar::new()),
            agent,
            own_bound,
            source: parts.token_source.map(Arc::new),
        })
    }
}

/// A blocking Power BI client. Cheap to clone; clones share one session (bearer token,
/// caches, requests in flight). Build one with [`Client::builder`].
#[derive(Clone, Debug)]
pub struct Client {
    session: Arc<SharedSession>,
    /// Calls parked until another finishes what they need.
    parked: Arc<Condvar>,
    agent: ureq::Agent,
    /// The bound on an attempt our own agent applies; `None` for a caller's agent, whose
    /// requests are each configured as the core needs.
    own_bound: Option<Duration>,
    source: Option<Arc<BoxedTokenSource<dyn TokenSource>>>,
}

impl Client {
    /// A builder with safe defaults, reading the `AZURE_*` variables from the process
    /// environment when asked to.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use pbi_embed_ureq::Client;
    ///
    /// let client = Client::builder()
    ///     .from_env()? // AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, or another credential
    ///     .deadline(Duration::from_secs(20))
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), pbi_embed_ureq::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder<Self> {
        ClientBuilder::new(|name| std::env::var_os(name))
    }

    /// The configuration `powerbi-client` takes to embed a report, dashboard or tile:
    /// its metadata (cached), the RLS pre-flight against its datasets' flags (cached), and
    /// the token (through the embed-token cache).
    ///
    /// ```no_run
    /// use pbi_embed_ureq::{Client, EffectiveIdentity, EmbedRequest, ReportId, WorkspaceId};
    ///
    /// let client = Client::builder().from_env()?.build()?;
    /// let request = EmbedRequest::report(
    ///     WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?,
    ///     ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715")?,
    /// )
    /// .identity(EffectiveIdentity::new("alice@contoso.com").role("Sales"));
    /// let config = client.embed_config(&request)?;
    /// // What `powerbi.embed(element, config)` takes, with `expiration`: when to ask again.
    /// println!("{}", serde_json::to_string(&config)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::RlsIdentity`](crate::ErrorKind::RlsIdentity) from the pre-flight, or
    /// as [`Client::execute`].
    pub fn embed_config(&self, request: &EmbedRequest) -> Result<EmbedConfig, Error> {
        self.run(Call::embed_config(request))
    }

    /// Every configuration one token serves: one per report of
    /// [`EmbedRequest::reports`](crate::EmbedRequest::reports) (several reports on one
    /// page, one multi-resource token), or the one of any other request.
    ///
    /// # Errors
    /// As [`Client::embed_config`].
    pub fn embed_configs(&self, request: &EmbedRequest) -> Result<Vec<EmbedConfig>, Error> {
        self.run(Call::embed_configs(request))
    }

    /// An embed token from any GenerateToken request ([`ReportToken`](crate::ReportToken),
    /// [`MultiResourceToken`](crate::MultiResourceToken), …), through the embed-token cache.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub fn embed_token<R: ApiRequest<Output = EmbedToken> + Sync>(
        &self,
        request: &R,
    ) -> Result<EmbedToken, Error> {
        self.run(Call::embed_token(request))
    }

    /// Sends any Power BI request, signed in, with retries; nothing cached.
    ///
    /// # Errors
    /// [`Error`]: what Power BI or Entra ID said, a transport failure, the deadline,
    /// or invalid input (nothing sent).
    pub fn execute<R: ApiRequest + Sync>(&self, request: &R) -> Result<R::Output, Error> {
        self.run(Call::execute(request))
    }

    /// Signs in now (or returns the held token while it is fresh): checks the credential
    /// at start-up.
    ///
    /// # Errors
    /// What Entra ID (or the token source) said.
    pub fn sign_in(&self) -> Result<BearerToken, Error> {
        self.run(Call::sign_in())
    }

    /// Warm-up: signs in, then reads ahead what these requests' configurations need
    /// (each item's metadata and its datasets' RLS flags), side by side. Afterwards the
    /// first configuration of each costs one round trip, its token. Call it at start (it
    /// says what is wrong with the credential or an item), then [`Client::keep_warm`].
    ///
    /// ```no_run
    /// use pbi_embed_ureq::{Client, EmbedRequest, ReportId, WorkspaceId};
    ///
    /// let client = Client::builder().from_env()?.build()?;
    /// let reports = vec![EmbedRequest::report(
    ///     WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?,
    ///     ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715")?,
    /// )];
    /// client.warm_up(&reports)?;
    /// let _warm = client.keep_warm(reports); // warm until dropped
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The first item that could not be read (all are tried), or the sign-in's failure.
    pub fn warm_up(&self, requests: &[EmbedRequest]) -> Result<(), Error> {
        self.run(Call::warm_up(requests))
    }

    /// Keeps `requests` warm on a thread of its own: warms up at once, then again each
    /// interval the core gives (within half the metadata's time-to-live and half the
    /// bearer token's renewal margin), so no configuration waits on a sign-in or a read
    /// of metadata. Failures are logged and tried again at the next interval. Stops when
    /// the returned handle is dropped.
    #[must_use = "warm-up stops when the handle is dropped"]
    pub fn keep_warm(&self, requests: Vec<EmbedRequest>) -> KeepWarm {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let client = self.clone();
        std::thread::spawn(move || {
            loop {
                if let Err(error) = client.warm_up(&requests) {
                    tracing::warn!(%error, "warm-up failed; trying again at the next interval");
                }
                let interval = client.session.warm_up_interval();
                if !matches!(
                    stopped.recv_timeout(interval),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                ) {
                    break;
                }
            }
        });
        KeepWarm { _stop: stop }
    }

    /// The cloud the client talks to, with any custom hosts.
    #[must_use]
    pub fn cloud(&self) -> &Cloud {
        self.session.cloud()
    }

    /// Forgets every cached embed token and item metadata.
    pub fn clear_caches(&self) {
        self.session.clear_caches();
    }

    /// What the client did, counted: exchanges with Power BI and Entra ID by operation
    /// and status with their latency, cache hits and misses, tokens minted ahead,
    /// throttling and its waits, store errors (for metrics).
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.session.stats()
    }

    /// How many fetches calls are leading right now: zero when no call is under way.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.session.in_flight()
    }

    /// Pumps a call until it is done.
    fn run<T>(&self, call: Call<'_, T>) -> Result<T, Error> {
        let mut pump = self.session.pump(call, || self.parked.notify_all());
        let mut event = Event::resume();
        loop {
            let mut session = self.session.lock();
            let now = Now::new(Instant::now(), SystemTime::now());
            event = match pump.step_in(&mut session, event, now, fastrand::u32(..)) {
                Action::Park(most) => {
                    // Waiting releases the lock, so no wake-up is lost in between.
                    drop(self.parked.wait_timeout(session, most));
                    Event::resume()
                }
                Action::Done(result) => return result,
                action => {
                    drop(session);
                    self.perform(action)
                }
            };
        }
    }

    /// Does what the call asked, outside the lock.
    fn perform<T>(&self, action: Action<T>) -> Event {
        match action {
            Action::Send(exchange) => self.send(exchange),
            Action::FetchToken(fetch) => {
                let token = match &self.source {
                    Some(source) => source.get().token_for(fetch.scope()),
                    None => Err("the client has no token source".into()),
                };
                fetch.respond(token)
            }
            Action::ReadFile(file) => {
                let (sender, read) = std::sync::mpsc::channel();
                pbi_embed_local::read_file(file.path().to_owned(), file.max_bytes(), move |bytes| {
                    let _ = sender.send(bytes);
                });
                let read = read
                    .recv_timeout(file.timeout())
                    .unwrap_or_else(|_| Err(pbi_embed_local::read_timed_out(file.timeout())));
                file.respond(read.map_err(Into::into))
            }
            Action::RunProgram(run) => {
                let ran = pbi_embed_local::run_program(&run);
                run.respond(ran)
            }
            Action::Store(op) => op.respond(Err("pbi-embed-ureq has no shared store".into())),
            Action::Spawn(work) => {
                let client = self.clone();
                std::thread::spawn(move || {
                    if let Err(error) = client.run(Call::refresh(work)) {
                        tracing::warn!(%error, "background work failed; what is held is used until it expires");
                    }
                });
                Event::resume()
            }
            Action::Join(join) => self.join(join),
            Action::Wait(delay) => {
                tracing::info!(delay_ms = delay.as_millis(), "waiting to retry");
                std::thread::sleep(delay);
                Event::resume()
            }
            Action::Park(_) | Action::Done(_) => Event::resume(),
        }
    }

    /// Runs a join's calls side by side: this thread and at most
    /// [`SIDE_BY_SIDE`]` - 1` others, each taking the next call as it is free.
    fn join(&self, join: Join) -> Event {
        let (branches, joiner) = join.into_branches();
        joiner.respond(pbi_embed_local::side_by_side(branches, SIDE_BY_SIDE, |call| {
            self.run(call)
        }))
    }

    fn send(&self, exchange: Exchange) -> Event {
        let (request, responder) = exchange.into_request();
        let response = self.exchange(request, &responder);
        responder.respond(response)
    }

    /// Sends `request` within `bounds`' time-out, reading at most its body cap.
    fn exchange(
        &self,
        mut request: http::Request<Vec<u8>>,
        bounds: &Responder,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (timeout, limit, operation) = (bounds.timeout(), bounds.max_response_bytes(), bounds.operation());
        let attempt = bounds.attempt();
        tracing::debug!(operation, attempt, host = request.uri().host(), "sending");
        if self.own_bound.is_none_or(|bound| timeout < bound) {
            request = (self.agent.configure_request(request))
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_per_call(Some(timeout))
                .build();
        }
        let response = self.agent.run(request).map_err(transport)?;
        let (parts, mut body) = response.into_parts();
        let bytes = body
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => TransportError::body_too_large(),
                other => transport(other),
            })?;
        tracing::debug!(
            operation,
            status = parts.status.as_u16(),
            request_id = request_id(&parts.headers).as_deref(),
            "response"
        );
        Ok(http::Response::from_parts(parts, bytes))
    }
}

type AgentConfig = ureq::config::ConfigBuilder<ureq::typestate::AgentScope>;

/// Applies the proxy, the roots to trust and the crypto provider. Without a proxy set
/// here, ureq honours the environment's (`ALL_PROXY`, `HTTPS_PROXY`, `NO_PROXY`).
fn connect(mut config: AgentConfig, connect: &ConnectSettings) -> Result<AgentConfig, Error> {
    if let Some(proxy) = connect.proxy() {
        let proxy = ureq::Proxy::new(proxy.url())
            .map_err(|_| Error::invalid_input("proxy", "is not a proxy URL ureq accepts"))?;
        config = config.proxy(Some(proxy));
    }
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let extra = connect.root_certificates();
        let roots = if connect.platform_verifier() {
            if !extra.is_empty() {
                return Err(Error::invalid_input(
                    "rootCertificates",
                    "pbi-embed-ureq cannot add roots to the platform verifier: add them to the system store, or drop platform_verifier",
                ));
            }
            // ureq panics on a platform verifier over rustls without its feature.
            if cfg!(all(feature = "rustls", not(feature = "platform-verifier"))) {
                return Err(Error::invalid_input(
                    "platformVerifier",
                    "this build of pbi-embed-ureq lacks the platform-verifier feature",
                ));
            }
            RootCerts::PlatformVerifier
        } else {
            // Mozilla's roots, then the extras.
            let mozilla = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter();
            let all = mozilla
                .chain(extra)
                .map(|der| Certificate::from_der(der).to_owned());
            RootCerts::Specific(Arc::new(all.collect()))
        };
        let tls = TlsConfig::builder().root_certs(roots);
        // One crypto provider in the whole build, the one the core signs certificates
        // with: aws-lc-rs (ureq's own default would add ring).
        #[cfg(feature = "rustls")]
        let tls =
            tls.unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        Ok(config.tls_config(tls.build()))
    }
    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    if connect.root_certificates().is_empty() && !connect.platform_verifier() {
        Ok(config)
    } else {
        Err(Error::invalid_input(
            "rootCertificates",
            "this build has no TLS (features rustls or native-tls)",
        ))
    }
}

/// Classifies a ureq error for retrying and reporting.
fn transport(error: ureq::Error) -> TransportError {
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
    TransportError::new(kind, error)
}
