//! The blocking driver: pumps the core's calls over a [`ureq::Agent`], sleeps and waits
//! on threads.

use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant, SystemTime};

use pbi_embed_core::ConnectSettings;
use pbi_embed_core::driver::{
    Action, BoxError, BoxedTokenSource, Call, ClientParts, Driver, Event, Exchange, FileRead, Now,
    ProgramOutput, ProgramRun, SharedSession, TokenSource, TransportError, request_id,
};
use pbi_embed_core::{
    ApiRequest, BearerToken, EmbedConfig, EmbedRequest, EmbedToken, Error, TransportKind, http,
};

impl Driver for Client {
    type Http = ureq::Agent;
    type TokenSource = BoxedTokenSource<dyn TokenSource>;

    fn build(parts: ClientParts<Self>) -> Result<Self, Error> {
        if parts.store.is_some() {
            return Err(pbi_embed_core::ExchangeError::invalid_input(
                "sharedStore",
                "a shared store is async: use it with pbi-embed-reqwest",
            )
            .into());
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
    pub fn builder() -> crate::ClientBuilder {
        crate::ClientBuilder::new(|name| std::env::var_os(name))
    }

    /// The configuration `powerbi-client` takes to embed a report, dashboard or tile:
    /// its metadata (cached), the RLS pre-flight against its datasets' flags (cached), and
    /// the token (through the embed-token cache).
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

    /// The client's session: its cloud, its caches, what is in flight.
    #[must_use]
    pub fn session(&self) -> &SharedSession {
        &self.session
    }

    /// Pumps a call until it is done.
    fn run<T>(&self, call: Call<'_, T>) -> Result<T, Error> {
        let mut pump = self.session.pump(call, || self.parked.notify_all());
        let mut event = Event::Resume;
        loop {
            let mut session = self.session.lock();
            let now = Now::new(Instant::now(), SystemTime::now());
            event = match pump.step_in(&mut session, event, now, fastrand::u32(..)) {
                Action::Park(most) => {
                    // Waiting releases the lock, so no wake-up is lost in between.
                    drop(self.parked.wait_timeout(session, most));
                    Event::Resume
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
            Action::Send(exchange) => Event::Response(self.send(exchange)),
            Action::FetchToken => Event::Token(match &self.source {
                Some(source) => source.get().token_for(self.session.cloud().scope()),
                None => Err("the client has no token source".into()),
            }),
            Action::ReadFile(file) => Event::File(read_bounded(&file)),
            Action::RunProgram(run) => Event::Program(run_program(&run)),
            Action::Store(_) => Event::Stored(Err("pbi-embed-ureq has no shared store".into())),
            Action::Spawn(work) => {
                let client = self.clone();
                std::thread::spawn(move || {
                    if let Err(error) = client.run(Call::refresh(work)) {
                        tracing::warn!(%error, "refresh-ahead failed; the cached item is served until its margin");
                    }
                });
                Event::Resume
            }
            Action::Wait(delay) => {
                tracing::info!(delay_ms = delay.as_millis(), "waiting to retry");
                std::thread::sleep(delay);
                Event::Resume
            }
            Action::Park(_) | Action::Done(_) => Event::Resume,
        }
    }

    /// One exchange: the whole attempt bounded, at most the cap of body read.
    fn send(&self, exchange: Exchange) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (timeout, limit) = (exchange.timeout(), exchange.max_response_bytes());
        let operation = exchange.operation();
        let attempt = exchange.attempt();
        let mut request = exchange.into_request();
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

/// Applies the proxy and the roots to trust. Without one, ureq's defaults hold: the
/// environment's proxy (`ALL_PROXY`, `HTTPS_PROXY`, `NO_PROXY`) and Mozilla's roots.
fn connect(mut config: AgentConfig, connect: &ConnectSettings) -> Result<AgentConfig, Error> {
    use pbi_embed_core::ExchangeError;
    if let Some(proxy) = connect.proxy() {
        let proxy = ureq::Proxy::new(proxy.url())
            .map_err(|_| ExchangeError::invalid_input("proxy", "is not a proxy URL ureq accepts"))?;
        config = config.proxy(Some(proxy));
    }
    let extra = connect.root_certificates();
    if !connect.platform_verifier() && extra.is_empty() {
        return Ok(config);
    }
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let roots = if connect.platform_verifier() {
            if !extra.is_empty() {
                return Err(ExchangeError::invalid_input(
                    "rootCertificates",
                    "pbi-embed-ureq cannot add roots to the platform verifier: add them to the system store, or drop platform_verifier",
                )
                .into());
            }
            // ureq panics on a platform verifier over rustls without its feature.
            if cfg!(all(feature = "rustls", not(feature = "platform-verifier"))) {
                return Err(ExchangeError::invalid_input(
                    "platformVerifier",
                    "this build of pbi-embed-ureq lacks the platform-verifier feature",
                )
                .into());
            }
            RootCerts::PlatformVerifier
        } else {
            // ureq's specific roots replace its defaults: Mozilla's roots, then the extras.
            let mozilla = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter();
            let all = mozilla
                .chain(extra)
                .map(|der| Certificate::from_der(der).to_owned());
            RootCerts::Specific(Arc::new(all.collect()))
        };
        Ok(config.tls_config(TlsConfig::builder().root_certs(roots).build()))
    }
    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    Err(ExchangeError::invalid_input(
        "rootCertificates",
        "this build has no TLS (features rustls or native-tls)",
    )
    .into())
}

/// Reads at most the file's `max_bytes` (a workload identity's federated token).
fn read_bounded(file: &FileRead) -> Result<Vec<u8>, BoxError> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(file.path())?
        .take(file.max_bytes())
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Runs a program as the call asks (the Azure CLI): no shell, stdin closed, each output
/// read to its cap on a thread of its own, killed when its time-out passes.
fn run_program(run: &ProgramRun) -> std::io::Result<ProgramOutput> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(run.program())
        .args(run.args())
        .envs(run.env().iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (sender, outputs) = std::sync::mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|pipe| Box::new(pipe) as _),
        child.stderr.take().map(|pipe| Box::new(pipe) as _),
    ];
    for (index, pipe) in pipes.into_iter().enumerate() {
        let (sender, limit) = (sender.clone(), run.max_output_bytes());
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(limit).read_to_end(&mut bytes);
            }
            let _ = sender.send((index, bytes));
        });
    }
    let deadline = Instant::now().checked_add(run.timeout());
    let mut printed = [Vec::new(), Vec::new()];
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The pipes close when the program ends (unless it left a child holding them).
    for _ in 0..2 {
        let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
        match outputs.recv_timeout(left) {
            Ok((index, bytes)) => printed[index] = bytes,
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
    let [stdout, stderr] = printed;
    Ok(ProgramOutput::new(status.code(), stdout, stderr))
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
