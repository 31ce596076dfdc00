//! The async driver: pumps the core's calls over a [`reqwest::Client`], sleeping and
//! parking on tokio; the session's lock is never held across an `.await`.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use pbi_embed_core::driver::{
    Action, Background, Call, ClientParts, Driver, Event, Exchange, Join, Now, ParsedUrls, Responder,
    SharedSession, SharedStore, TransportError, request_id,
};
use pbi_embed_core::{
    ApiRequest, AsyncTokenSource, BearerToken, BoxedTokenSource, ClientBuilder, ClientStats, Cloud,
    ConnectSettings, EmbedConfig, EmbedRequest, EmbedToken, Error, TransportKind, http,
};
use tokio::sync::Notify;

impl Driver for Client {
    type Http = reqwest::Client;
    type TokenSource = BoxedTokenSource<dyn AsyncTokenSource>;

    fn build(parts: ClientParts<Self>) -> Result<Self, Error> {
        let settings = parts.session.settings();
        let caller_client = parts.http.is_some();
        let http = match parts.http {
            Some(http) => http,
            None => {
                let builder = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(settings.connect_timeout)
                    .user_agent(concat!("pbi-embed-reqwest/", env!("CARGO_PKG_VERSION")));
                connect(builder, &settings.connect)?
                    .build()
                    .map_err(|e| Error::invalid_input("httpClient", e.to_string()))?
            }
        };
        let urls = ParsedUrls::new(parts.session.cloud().api_base())
            .map_err(|e| Error::invalid_input("apiBase", e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                urls,
                session: SharedSession::new(parts.session),
                parked: Notify::new(),
                http,
                caller_client,
                source: parts.token_source,
                store: parts.store,
            }),
        })
    }
}

/// Keeps requests warm ([`Client::keep_warm`]) until dropped.
#[derive(Debug)]
pub struct KeepWarm(tokio::task::AbortHandle);

impl Drop for KeepWarm {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An async Power BI client, with the same methods as the blocking `pbi-embed-ureq` one.
/// Cheap to clone; clones share one session (bearer token, caches, requests in flight).
/// Build one with [`Client::builder`].
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Each request's URL, parsed once (reqwest takes a parsed URL).
    urls: ParsedUrls,
    session: SharedSession,
    /// Wakes calls parked until another finishes what they need.
    parked: Notify,
    http: reqwest::Client,
    /// Whether `http` is the caller's (which may follow redirects) rather than ours.
    caller_client: bool,
    source: Option<BoxedTokenSource<dyn AsyncTokenSource>>,
    /// The store shared with other replicas, if any.
    store: Option<Arc<dyn SharedStore>>,
}

impl Client {
    /// The configuration `powerbi-client` takes to embed a report, dashboard or tile:
    /// its metadata (cached), the RLS pre-flight against its datasets' flags (cached), and
    /// the token (through the embed-token cache).
    ///
    /// # Errors
    /// [`ErrorKind::RlsIdentity`](crate::ErrorKind::RlsIdentity) from the pre-flight, or
    /// as [`Client::execute`].
    pub async fn embed_config(&self, request: &EmbedRequest) -> Result<EmbedConfig, Error> {
        self.run(Call::embed_config(request)).await
    }

    /// Every configuration one token serves: one per report of
    /// [`EmbedRequest::reports`](crate::EmbedRequest::reports) (several reports on one
    /// page, one multi-resource token), or the one of any other request.
    ///
    /// # Errors
    /// As [`Client::embed_config`].
    pub async fn embed_configs(&self, request: &EmbedRequest) -> Result<Vec<EmbedConfig>, Error> {
        self.run(Call::embed_configs(request)).await
    }

    /// An embed token from any GenerateToken request ([`ReportToken`](crate::ReportToken),
    /// [`MultiResourceToken`](crate::MultiResourceToken), …), through the embed-token cache.
    ///
    /// # Errors
    /// As [`Client::execute`].
    pub async fn embed_token<R>(&self, request: &R) -> Result<EmbedToken, Error>
    where
        R: ApiRequest<Output = EmbedToken> + Sync,
    {
        self.run(Call::embed_token(request)).await
    }

    /// Sends any Power BI request, signed in, with retries; nothing cached.
    ///
    /// # Errors
    /// [`Error`]: what Power BI or Entra ID said, a transport failure, the deadline,
    /// or invalid input (nothing sent).
    pub async fn execute<R: ApiRequest + Sync>(&self, request: &R) -> Result<R::Output, Error> {
        self.run(Call::execute(request)).await
    }

    /// Signs in now (or returns the held token while it is fresh): checks the credential
    /// at start-up.
    ///
    /// # Errors
    /// What Entra ID (or the token source) said.
    pub async fn sign_in(&self) -> Result<BearerToken, Error> {
        self.run(Call::sign_in()).await
    }

    /// Warm-up: signs in, then reads ahead what these requests' configurations need
    /// (each item's metadata and its datasets' RLS flags), side by side. Afterwards the
    /// first configuration of each costs one round trip, its token. Call it at start (it
    /// says what is wrong with the credential or an item), then [`Client::keep_warm`].
    ///
    /// # Errors
    /// The first item that could not be read (all are tried), or the sign-in's failure.
    pub async fn warm_up(&self, requests: &[EmbedRequest]) -> Result<(), Error> {
        self.run(Call::warm_up(requests)).await
    }

    /// Keeps `requests` warm in a task of its own (on the current tokio runtime): warms
    /// up at once, then again each interval the core gives (within half the metadata's
    /// time-to-live and half the bearer token's renewal margin), so no configuration
    /// waits on a sign-in or a read of metadata. Failures are logged and tried again at
    /// the next interval. Stops when the returned handle is dropped.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use pbi_embed_reqwest::{Client, EmbedRequest, ReportId, WorkspaceId};
    ///
    /// let client = Client::builder().from_env()?.build()?;
    /// let reports = vec![EmbedRequest::report(
    ///     WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?,
    ///     ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715")?,
    /// )];
    /// client.warm_up(&reports).await?; // at start: says what is wrong
    /// let _warm = client.keep_warm(reports); // warm until dropped
    /// # Ok(()) }
    /// ```
    #[must_use = "warm-up stops when the handle is dropped"]
    pub fn keep_warm(&self, requests: Vec<EmbedRequest>) -> KeepWarm {
        let client = self.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = client.warm_up(&requests).await {
                    tracing::warn!(%error, "warm-up failed; trying again at the next interval");
                }
                tokio::time::sleep(client.inner.session.warm_up_interval()).await;
            }
        });
        KeepWarm(task.abort_handle())
    }

    /// The cloud the client talks to, with any custom hosts.
    #[must_use]
    pub fn cloud(&self) -> &Cloud {
        self.inner.session.cloud()
    }

    /// Forgets every cached embed token and item metadata.
    pub fn clear_caches(&self) {
        self.inner.session.clear_caches();
    }

    /// What the client did, counted: exchanges with Power BI and Entra ID by operation
    /// and status with their latency, cache hits and misses, tokens minted ahead,
    /// throttling and its waits, store errors (for metrics).
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.inner.session.stats()
    }

    /// How many fetches calls are leading right now: zero when no call is under way,
    /// also after calls were dropped half-way.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.inner.session.in_flight()
    }

    /// A builder with safe defaults, reading the `AZURE_*` variables from the process
    /// environment when asked to.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use pbi_embed_reqwest::Client;
    ///
    /// let client = Client::builder()
    ///     .from_env()? // AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, or another credential
    ///     .refresh_ahead(Duration::from_secs(15 * 60))
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), pbi_embed_reqwest::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder<Self> {
        ClientBuilder::new(|name| std::env::var_os(name))
    }

    /// Runs background work (refresh-ahead) as a task of its own. (A function apart from
    /// `run`: a future cannot name its own type while it is being inferred.)
    fn spawn(&self, work: Background) {
        let client = self.clone();
        tokio::spawn(async move {
            if let Err(error) = client.run(Call::refresh(work)).await {
                tracing::warn!(%error, "background work failed; what is held is used until it expires");
            }
        });
    }

    /// Runs a join's calls side by side, polled together in this task (dropping it
    /// abandons them all). Boxed, as `spawn` is apart, for the future to have a type.
    fn join(&self, join: Join) -> std::pin::Pin<Box<dyn Future<Output = Event> + Send + '_>> {
        Box::pin(async move {
            let (branches, joiner) = join.into_branches();
            let results =
                futures_util::future::join_all(branches.into_iter().map(|call| self.run(call))).await;
            joiner.respond(results)
        })
    }

    /// Pumps a call until it is done. Dropping the future abandons the call.
    async fn run<T>(&self, call: Call<'_, T>) -> Result<T, Error> {
        let inner = &*self.inner;
        let mut pump = inner.session.pump(call, || inner.parked.notify_waiters());
        let mut event = Event::resume();
        loop {
            // Registered before the step, so a wake-up between step and wait is not lost.
            let woken = inner.parked.notified();
            let now = Now::new(Instant::now(), SystemTime::now());
            event = match pump.step(event, now, fastrand::u32(..)) {
                Action::Send(exchange) => inner.send(exchange).await,
                Action::FetchToken(fetch) => {
                    let token = match &inner.source {
                        Some(source) => source.get().token_for(fetch.scope()).await,
                        None => Err("the client has no token source".into()),
                    };
                    fetch.respond(token)
                }
                // On threads of their own, never the executor's nor its blocking pool (a
                // runtime waits for that pool at shutdown; a FIFO would hang it).
                Action::ReadFile(file) => {
                    let (sender, read) = tokio::sync::oneshot::channel();
                    pbi_embed_local::read_file(file.path().to_owned(), file.max_bytes(), move |bytes| {
                        let _ = sender.send(bytes);
                    });
                    let read = match tokio::time::timeout(file.timeout(), read).await {
                        Ok(Ok(bytes)) => bytes.map_err(Into::into),
                        Ok(Err(_)) => Err("the reading thread ended without an answer".into()),
                        Err(_) => Err(pbi_embed_local::read_timed_out(file.timeout()).into()),
                    };
                    file.respond(read)
                }
                Action::RunProgram(run) => {
                    let (sender, ran) = tokio::sync::oneshot::channel();
                    std::thread::spawn(move || {
                        let output = pbi_embed_local::run_program(&run);
                        let _ = sender.send(run.respond(output));
                    });
                    // A thread that panicked answered nothing: the call ends with a driver error.
                    ran.await.unwrap_or_else(|_| Event::resume())
                }
                Action::Store(op) => op.run(inner.store.as_deref()).await,
                Action::Spawn(work) => {
                    self.spawn(work);
                    Event::resume()
                }
                Action::Join(join) => self.join(join).await,
                Action::Wait(delay) => {
                    tracing::info!(delay_ms = delay.as_millis(), "waiting to retry");
                    tokio::time::sleep(delay).await;
                    Event::resume()
                }
                Action::Park(most) => {
                    let _ = tokio::time::timeout(most, woken).await;
                    Event::resume()
                }
                Action::Done(result) => return result,
            };
        }
    }
}

impl Inner {
    /// One exchange, answered: the whole attempt bounded, at most the cap of body read.
    async fn send(&self, exchange: Exchange) -> Event {
        let url = self.urls.get(exchange.url());
        let (request, responder) = exchange.into_request();
        let response = match url {
            Ok(url) => self.exchange(request, url, &responder).await,
            Err(error) => Err(TransportError::new(TransportKind::Other, error)),
        };
        responder.respond(response)
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
        url: reqwest::Url,
        bounds: &Responder,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (timeout, limit, operation) = (bounds.timeout(), bounds.max_response_bytes(), bounds.operation());
        let attempt = bounds.attempt();
        tracing::debug!(operation, attempt, host = url.host_str(), "sending");
        let (parts, body) = request.into_parts();
        let mut request = reqwest::Request::new(parts.method, url);
        *request.headers_mut() = parts.headers;
        *request.body_mut() = Some(body.into());
        *request.timeout_mut() = Some(timeout);
        let sent_to = self.caller_client.then(|| request.url().clone());
        let mut response = self.http.execute(request).await.map_err(transport)?;
        if sent_to.is_some_and(|sent_to| response.url() != &sent_to) {
            // A caller's client that follows redirects: refuse what came from elsewhere.
            let followed = "the HTTP client followed a redirect; build it with redirect::Policy::none()";
            return Err(TransportError::new(TransportKind::Other, followed));
        }
        let length = response.content_length().unwrap_or(0);
        if length > limit {
            return Err(TransportError::body_too_large());
        }
        let mut body = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(TransportError::body_too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            operation,
            status = response.status().as_u16(),
            request_id = request_id(response.headers()).as_deref(),
            "response"
        );
        let mut parsed = http::Response::new(body);
        *parsed.status_mut() = response.status();
        *parsed.headers_mut() = std::mem::take(response.headers_mut());
        Ok(parsed)
    }
}

/// Classifies a reqwest error for retrying and reporting.
fn transport(error: reqwest::Error) -> TransportError {
    let kind = if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_connect() {
        TransportKind::Connect
    } else if error.is_body() || error.is_request() || error.is_decode() {
        TransportKind::Io
    } else {
        TransportKind::Other
    };
    TransportError::new(kind, error)
}

/// Applies the proxy and the roots to trust: Mozilla's (bundled) unless the platform's
/// verifier is asked for, plus any extra roots. Without a proxy set here, reqwest honours
/// the environment's (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`).
fn connect(
    mut builder: reqwest::ClientBuilder,
    connect: &ConnectSettings,
) -> Result<reqwest::ClientBuilder, Error> {
    if let Some(proxy) = connect.proxy() {
        let proxy = reqwest::Proxy::all(proxy.url())
            .map_err(|_| Error::invalid_input("proxy", "is not a proxy URL reqwest accepts"))?;
        builder = builder.proxy(proxy);
    }
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    {
        use reqwest::Certificate;
        let der = |der: &[u8]| {
            Certificate::from_der(der).map_err(|e| Error::invalid_input("rootCertificates", e.to_string()))
        };
        let extra = connect.root_certificates().iter().map(|c| der(c));
        builder = if connect.platform_verifier() {
            builder.tls_certs_merge(extra.collect::<Result<Vec<_>, _>>()?)
        } else {
            let mozilla = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().map(|c| der(c));
            builder.tls_certs_only(mozilla.chain(extra).collect::<Result<Vec<_>, _>>()?)
        };
        Ok(builder)
    }
    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    if connect.root_certificates().is_empty() && !connect.platform_verifier() {
        Ok(builder)
    } else {
        Err(Error::invalid_input(
            "rootCertificates",
            "this build has no TLS (features rustls or native-tls)",
        )
        .into())
    }
}
