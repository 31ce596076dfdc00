//! pbi-embed over an HTTP stack of your own, here hyper's client. The whole call — sign-in
//! and the bearer token's renewal, the embed-token cache, retries with backoff, the new
//! sign-in after `TokenExpired`, the deadline — runs in pbi-embed-core's flow; this file
//! only does what the flow asks: send, sleep, wait for another call.
//!
//! ```sh
//! cargo run -p pbi-embed-examples-async --example custom_http_stack
//! ```
//!
//! It starts the local emulator and mints a report embed token twice: the second comes
//! from the cache, and both share one sign-in.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pbi_embed_core::driver::{
    Action, Call, Event, FileRead, Join, Now, Session, SharedSession, TransportError,
};
use pbi_embed_core::{
    BoxError, ClientCredentials, ClientId, ClientSecret, ClientSettings, Credential, Error, ReportId,
    ReportToken, TenantId, TransportKind, WorkspaceId, http,
};
use pbi_embed_emulator::{Emulator, Route};
use tokio::sync::Notify;

/// pbi-embed's flow, driven over hyper.
#[derive(Debug)]
pub struct HyperDriver {
    http: Client<HttpConnector, Full<Bytes>>,
    session: SharedSession,
    parked: Notify,
}

impl HyperDriver {
    /// A driver for `session`.
    pub fn new(session: Session) -> Self {
        let http = Client::builder(TokioExecutor::new()).build_http();
        let (session, parked) = (SharedSession::new(session), Notify::new());
        Self {
            http,
            session,
            parked,
        }
    }

    /// Fetches calls are leading right now (zero when idle).
    pub fn in_flight(&self) -> usize {
        self.session.in_flight()
    }

    /// Pumps a call to its end: the core decides, this only does what it asks.
    pub async fn run<T>(&self, call: Call<'_, T>) -> Result<T, Error> {
        let mut pump = self.session.pump(call, || self.parked.notify_waiters());
        let mut event = Event::resume();
        loop {
            let woken = self.parked.notified();
            let now = Now::new(Instant::now(), SystemTime::now());
            event = match pump.step(event, now, fastrand::u32(..)) {
                Action::Send(exchange) => {
                    let (timeout, limit) = (exchange.timeout(), exchange.max_response_bytes());
                    let (request, responder) = exchange.into_request();
                    responder.respond(self.send(request, timeout, limit).await)
                }
                Action::Wait(delay) => {
                    tokio::time::sleep(delay).await;
                    Event::resume()
                }
                Action::Park(most) => {
                    let _ = tokio::time::timeout(most, woken).await;
                    Event::resume()
                }
                Action::FetchToken(fetch) => fetch.respond(Err("this driver has no token source".into())),
                // A federated token or certificate file, read at every sign-in.
                Action::ReadFile(file) => {
                    let read = read_file(&file).await;
                    file.respond(read)
                }
                // This stack runs no programs (the Azure CLI credential).
                Action::RunProgram(run) => run.respond(Err(std::io::ErrorKind::Unsupported.into())),
                // Refresh-ahead's background work; a stack that spawns nothing may drop it.
                Action::Spawn(_) => Event::resume(),
                // Only asked for when the builder was given a shared store.
                Action::Store(op) => op.respond(Err("no shared store".into())),
                // Steps that do not depend on each other: each a call of its own, run
                // side by side in this task.
                Action::Join(join) => self.join(join).await,
                Action::Done(result) => return result,
            };
        }
    }

    /// A join's calls, polled together (boxed: `run` cannot await itself unboxed).
    fn join(&self, join: Join) -> std::pin::Pin<Box<dyn Future<Output = Event> + Send + '_>> {
        Box::pin(async move {
            let (branches, joiner) = join.into_branches();
            joiner.respond(futures_util::future::join_all(branches.into_iter().map(|b| self.run(b))).await)
        })
    }

    /// One exchange, bounded as a whole, reading at most the cap of body. hyper's client
    /// follows no redirect.
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
        timeout: std::time::Duration,
        limit: u64,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let request = request.map(|body| Full::new(Bytes::from(body)));
        let attempt = async {
            let response = self.http.request(request).await.map_err(|e| {
                let kind = if e.is_connect() {
                    TransportKind::Connect
                } else {
                    TransportKind::Io
                };
                TransportError::new(kind, e)
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
            let bytes = body
                .collect()
                .await
                .map_err(|e| match e.is::<LengthLimitError>() {
                    true => TransportError::body_too_large(),
                    false => TransportError::new(TransportKind::Io, e),
                })?;
            Ok(http::Response::from_parts(parts, bytes.to_bytes().to_vec()))
        };
        let bounded = tokio::time::timeout(timeout, attempt).await;
        bounded.map_err(|elapsed| TransportError::new(TransportKind::Timeout, elapsed))?
    }
}

/// Reads at most the file's cap, off the executor, within its time-out.
async fn read_file(file: &FileRead) -> Result<Vec<u8>, BoxError> {
    use std::io::Read as _;
    let (path, cap) = (file.path().to_owned(), file.max_bytes());
    let read = tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        std::fs::File::open(path)?.take(cap).read_to_end(&mut bytes)?;
        Ok::<_, std::io::Error>(bytes)
    });
    match tokio::time::timeout(file.timeout(), read).await {
        Ok(read) => Ok(read??),
        Err(_) => Err("the file gave no answer in time".into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The local emulator stands in for Power BI and Entra ID; point `api_base` and
    // `authority_host` elsewhere (or leave them unset) for the real ones.
    let emulator = Emulator::start()?;
    let ids = emulator.ids();
    let mut settings = ClientSettings::default();
    settings.api_base = Some(emulator.base_url());
    settings.authority_host = Some(emulator.base_url());
    let credential = Credential::ServicePrincipal(ClientCredentials::new(
        TenantId::parse(&ids.tenant)?,
        ClientId::parse(&ids.client_id)?,
        ClientSecret::new(ids.client_secret),
    ));
    let driver = HyperDriver::new(Session::new(settings, credential)?);

    let request = ReportToken::view(WorkspaceId::parse(&ids.workspace)?, ReportId::parse(&ids.report)?);
    let first = driver.run(Call::embed_token(&request)).await?;
    let second = driver.run(Call::embed_token(&request)).await?;
    println!(
        "Driving pbi-embed-core with hyper against {}",
        emulator.base_url()
    );
    println!("token id:   {}", first.token_id);
    println!("expires at: {}", first.expiration_rfc3339());
    println!(
        "the second came from the cache: {}; sign-ins: {}; GenerateToken calls: {}",
        second.token_id == first.token_id,
        emulator.requests(Route::EntraToken),
        emulator.generate_token_requests(),
    );
    Ok(())
}
