//! Serving alone: accept until SIGTERM or SIGINT, then stop accepting and let what is in
//! flight finish within the configured drain time.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::Broker;

/// Serves `broker` on `listener` until `shutdown` completes, then drains: no new
/// connections, requests in flight finish, for at most the configuration's
/// `drain_seconds`.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    broker: Broker,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = broker.config().server.drain;
    let stopping = Arc::new(Notify::new());
    let notify = stopping.clone();
    let server = axum::serve(listener, broker.router()).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!(
            drain_seconds = drain.as_secs(),
            "stopping: no new connections; draining"
        );
        notify.notify_one();
    });
    tokio::select! {
        result = server => result,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(drain).await;
        } => {
            tracing::warn!("drain time over: requests still in flight are dropped");
            Ok(())
        }
    }
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
