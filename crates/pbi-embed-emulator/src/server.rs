//! The HTTP server: hyper on tokio, HTTP/1.1 with keep-alive, one task per connection.

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::faults::{self, Fault};
use crate::reply::{self, Body};
use crate::route::{Route, classify};
use crate::state::State;
use crate::tokens::new_guid;

/// The largest request body read.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// How long in-flight requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// An answer that closes the connection instead of responding.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault")
    }
}

impl std::error::Error for Dropped {}

/// How long an accept failure (no file descriptor left, say) pauses accepting, so the
/// loop waits for connections to close instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections until `shutdown` fires, then lets open ones finish. A connection
/// that sends no complete request head within `header_read_timeout` — idle between
/// keep-alive requests included, and the TLS handshake under TLS — is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    mut shutdown: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // Out of file descriptors (or any other accept failure): wait
                // a moment rather than spinning on the same error.
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                let watcher = graceful.watcher();
                match tls.clone() {
                    None => connection(stream, state, header_read_timeout, watcher),
                    Some(acceptor) => {
                        tokio::spawn(async move {
                            let handshake = tokio::time::timeout(header_read_timeout, acceptor.accept(stream));
                            if let Ok(Ok(stream)) = handshake.await {
                                connection(stream, state, header_read_timeout, watcher);
                            }
                        });
                    }
                }
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// Serves HTTP/1.1 with keep-alive on one connection, on a task of its own.
fn connection<I>(io: I, state: Arc<State>, header_read_timeout: Duration, watcher: Watcher)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(Arc::clone(&state), request));
    let connection = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(io), service);
    let connection = watcher.watch(connection);
    tokio::spawn(async move {
        let _ = connection.await;
    });
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let (parts, body) = request.into_parts();
    let target = classify(&parts.method, parts.uri.path());
    state.count(target.route);
    let _answering = (target.route != Route::Control).then(|| state.answering());
    let fault = state.faults.take(target.route);
    if fault == Some(Fault::DropConnection) {
        return Err(Dropped);
    }
    if let Some(delay) = fault.as_ref().and_then(faults::delay_of) {
        tokio::time::sleep(delay).await;
    }
    let entra = target.route == Route::EntraToken;
    let response = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Err(_) if entra => reply::entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_015,
            &format!("The request body is larger than {MAX_REQUEST_BYTES} bytes."),
        ),
        Err(_) => {
            let message = format!("The request body is larger than {MAX_REQUEST_BYTES} bytes");
            reply::Rejection::invalid_request(message).into_response()
        }
        Ok(collected) => {
            let body = collected.to_bytes();
            match fault.as_ref().and_then(|f| faults::replacement(f, entra)) {
                Some(replaced) => replaced,
                None => dispatch(&state, &parts, &target, &body),
            }
        }
    };
    let mut response = faults::alter(fault.as_ref(), response).await;
    let request_id = HeaderValue::try_from(new_guid()).unwrap_or(HeaderValue::from_static("unknown"));
    if target.route == Route::EntraToken {
        response
            .headers_mut()
            .insert("x-ms-request-id", request_id.clone());
    }
    response.headers_mut().insert("requestid", request_id);
    Ok(response)
}

fn dispatch(
    state: &State,
    parts: &http::request::Parts,
    target: &crate::route::Target<'_>,
    body: &[u8],
) -> Response<Body> {
    match target.route {
        Route::EntraToken => {
            let tenant = target.params.first().copied().unwrap_or_default();
            crate::entra::token(state, tenant, &parts.headers, body)
        }
        Route::OpenIdConfiguration => crate::discovery::openid_configuration(
            state,
            target.params.first().copied().unwrap_or_default(),
            &parts.headers,
        ),
        Route::Jwks => crate::discovery::keys(
            state,
            target.params.first().copied().unwrap_or_default(),
            &parts.headers,
        ),
        Route::ManagedIdentityAppService => crate::managed_identity::token(
            state,
            crate::managed_identity::Endpoint::AppService,
            parts.uri.query(),
            &parts.headers,
        ),
        Route::ManagedIdentityImds => crate::managed_identity::token(
            state,
            crate::managed_identity::Endpoint::Imds,
            parts.uri.query(),
            &parts.headers,
        ),
        Route::InstanceDiscovery => crate::discovery::instance(state, parts.uri.query(), &parts.headers),
        Route::Control => crate::control::refusal(state, &parts.headers, &parts.method, body)
            .unwrap_or_else(|| crate::control::control(state, &parts.method, parts.uri.path(), body)),
        Route::EmbedPage => crate::embed_page::page(),
        route if route.is_metadata() => crate::metadata::get(state, target, &parts.headers),
        Route::Unknown => reply::power_bi_error(
            StatusCode::NOT_FOUND,
            "NoSuchRoute",
            &format!("No route matches {} {}", parts.method, parts.uri.path()),
        ),
        _ => crate::generate::generate(state, target, &parts.headers, body),
    }
}
