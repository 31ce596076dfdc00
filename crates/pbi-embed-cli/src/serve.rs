//! `pbi-embed serve`: the embed-token broker on its own, configured by a TOML file, with
//! the sign-in, Redis URL and cache key from the environment. JSON logs on stderr;
//! SIGTERM or SIGINT stops accepting and drains.

use std::time::Duration;

use pbi_embed_server::{Broker, Config};

use crate::args::ServeArgs;
use crate::failure::Failure;
use crate::files;

/// How long reading the configuration may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the broker signs in and reads its items ahead again.
const WARM_UP_EVERY: Duration = Duration::from_secs(150);

pub(crate) fn run(options: &ServeArgs) -> Result<(), Failure> {
    let path = &options.config;
    let usage = |why: String| Failure::Emulator(why, crate::failure::USAGE);
    let bytes = files::read(
        path,
        pbi_embed_server::config::MAX_CONFIG_BYTES as u64,
        READ_TIMEOUT,
    )
    .map_err(|e| usage(format!("--config {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| usage(format!("--config {}: is not UTF-8 text", path.display())))?;
    let config = Config::parse(&path.display().to_string(), &text).map_err(|e| usage(e.to_string()))?;
    pbi_embed_server::check_tls(&config).map_err(|e| usage(e.to_string()))?;
    if options.check_config {
        println!(
            "{}: ok ({} customers, {} issuers, {} API keys)",
            path.display(),
            config.customers.len(),
            config.issuers.len(),
            config.api_keys.len()
        );
        return Ok(());
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PBI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Emulator(format!("cannot start the runtime: {e}"), crate::failure::NETWORK))?;
    runtime.block_on(async {
        let listen = config.server.listen;
        let broker = Broker::from_env(config).map_err(|e| usage(format!("the sign-in or the store: {e}")))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| usage(format!("server.listen {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| usage(e.to_string()))?;
        if broker.config().server.development {
            tracing::warn!("development mode: callers' identities come from the query string");
        }
        let scheme = if broker.config().server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        println!("listening on {scheme}://{addr}");
        let warm = broker.keep_ready(WARM_UP_EVERY);
        let served = pbi_embed_server::serve(broker, listener, pbi_embed_server::shutdown_signal()).await;
        warm.abort();
        served.map_err(|e| Failure::Emulator(format!("serving: {e}"), crate::failure::NETWORK))
    })
}
