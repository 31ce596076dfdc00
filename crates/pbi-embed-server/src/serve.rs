//! Serving alone: accept until SIGTERM or SIGINT, then stop accepting and let what is in
//! flight finish within the configured drain time. HTTP/1.1, over TLS when the
//! configuration names a certificate and key; a connection that sends no complete
//! request head within [`HEADER_READ_TIMEOUT`] (the TLS handshake included) is closed,
//! and a head over [`MAX_HEAD_BYTES`] is refused.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::Broker;
use crate::config::TlsFiles;

/// How long a connection may take to send a request head (slow clients hold nothing).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head read (a bearer token is at most 16 KiB): a larger one is
/// answered 431 (checked between reads, so it holds to within one read).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long an accept failure (no file descriptor left) pauses accepting.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// The largest certificate or key file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Serves `broker` on `listener` until `shutdown` completes, then drains: no new
/// connections, requests in flight finish, for at most the configuration's
/// `drain_seconds`.
///
/// # Errors
/// When the TLS certificate or key cannot be read or do not form a pair.
pub async fn serve(
    broker: Broker,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = broker.config().server.drain;
    let tls = broker.config().server.tls.as_ref().map(acceptor).transpose()?;
    let service = TowerToHyperService::new(broker.router());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (service, watcher) = (service.clone(), graceful.watcher());
                let tls = tls.clone();
                tokio::spawn(async move {
                    let builder = {
                        let mut builder = http1::Builder::new();
                        builder
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT)
                            .max_header_size(MAX_HEAD_BYTES)
                            .max_buf_size(MAX_HEAD_BYTES)
                            .keep_alive(true);
                        builder
                    };
                    match tls {
                        None => {
                            let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await;
                        }
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await;
                            if let Ok(Ok(stream)) = handshake {
                                let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await;
                            }
                        }
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        drain_seconds = drain.as_secs(),
        "stopping: no new connections; draining"
    );
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("drain time over: requests still in flight are dropped");
    }
    Ok(())
}

/// Reads the configured TLS certificate and key, if any, and checks that they form a
/// pair: what [`serve`] will do first, for a command line that wants to fail before it
/// says it listens.
///
/// # Errors
/// Naming the option and file: unreadable, not PEM, no key, a key that does not suit.
pub fn check_tls(config: &crate::Config) -> std::io::Result<()> {
    config.server.tls.as_ref().map(acceptor).transpose().map(|_| ())
}

/// The TLS acceptor for the configured certificate chain and key.
fn acceptor(files: &TlsFiles) -> std::io::Result<TlsAcceptor> {
    let invalid = |what: &str, path: &str, why: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("server.{what} {path}: {why}"),
        )
    };
    let cert_pem = read_pem(&files.cert).map_err(|e| invalid("tls_cert", &files.cert, e))?;
    let key_pem = read_pem(&files.key).map_err(|e| invalid("tls_key", &files.key, e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("tls_cert", &files.cert, format!("not PEM certificates: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(
            "tls_cert",
            &files.cert,
            "holds no CERTIFICATE block".into(),
        ));
    }
    // Never quoted: the key's own text.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        invalid(
            "tls_key",
            &files.key,
            "holds no unencrypted PEM private key".into(),
        )
    })?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("tls_cert", &files.cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                invalid(
                    "tls_key",
                    &files.key,
                    format!("does not suit the certificate: {e}"),
                )
            })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A PEM file's contents (a certificate, a key, a CA bundle): a regular file, at most
/// [`MAX_PEM_BYTES`].
pub(crate) fn read_pem(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("over {MAX_PEM_BYTES} bytes"));
    }
    Ok(bytes)
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
