//! An embed-token broker for Power BI: what every team that embeds Power BI for its
//! customers otherwise writes by hand.
//!
//! A request flows: the caller is authenticated (a bearer JWT from the web app's identity
//! provider, or an API key of a trusted backend) → its customer and RLS identity come
//! from its credentials, never from the browser's word → the customer's allowed items,
//! workspace and service principal profile come from the configuration (denied by
//! default) → one [`Client`] serves every customer (one sign-in, caches keyed per
//! profile, refresh-ahead, the Redis store) → the configuration `powerbi-client` takes,
//! with when to refresh it.
//!
//! Mount [`Broker::router`] in your own axum server, or run it alone with
//! `pbi-embed serve --config broker.toml` (see [`serve`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), pbi_embed_server::BoxError> {
//! use pbi_embed_server::{Broker, Config};
//!
//! let config = Config::parse("broker.toml", &std::fs::read_to_string("broker.toml")?)?;
//! let broker = Broker::from_env(config)?;
//! let app = axum::Router::new().nest("/pbi", broker.router());
//! # let _ = app;
//! # Ok(()) }
//! ```
//!
//! Routes: `GET /v1/embed/{type}/{id}` (`report`, `paginated`, `dashboard`,
//! `tile?dashboard=`, `visual?page=&visual=`, `qna`, `create`, `reports` with ids
//! comma-separated), `GET /healthz`, `GET /readyz`, `GET /metrics`.

mod access;
mod caller;
pub mod config;
mod limit;
mod metrics;
mod routes;
mod serve;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pbi_embed_reqwest::Client;
use pbi_embed_reqwest::driver::SharedStore;

/// What the broker's set-up fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The key `/readyz` reads to see whether the shared store answers (never written).
const STORE_PROBE: &str = "pbi-embed:v1:ready-probe";

pub use caller::{Caller, Refusal};
pub use config::{Config, ConfigError};
pub use serve::{HEADER_READ_TIMEOUT, MAX_HEAD_BYTES, check_tls, serve, shutdown_signal};

/// The CA bundle `powerbi.ca_file` names, read once: trusted by the client and by the
/// HTTP client that fetches the issuers' keys.
fn ca_pem(config: &Config) -> Result<Option<Vec<u8>>, BoxError> {
    let Some(path) = &config.powerbi.ca_file else {
        return Ok(None);
    };
    let pem = serve::read_pem(path).map_err(|e| format!("powerbi.ca_file {path}: {e}"))?;
    Ok(Some(pem))
}

/// Whether the broker can serve: `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Signing in and reading the configured items ahead.
    Starting,
    /// Signed in; the configured items' metadata read.
    Ready,
    /// It cannot serve, and why (the credential is refused, Power BI cannot be reached).
    NotReady(String),
}

/// The broker: its configuration, its one Power BI client, and what it counts.
#[derive(Clone)]
pub struct Broker(Arc<Inner>);

struct Inner {
    config: Config,
    client: Client,
    /// The store the client shares through, checked by `/readyz`.
    store: Option<Arc<dyn SharedStore>>,
    issuers: Vec<caller::jwt::IssuerKeys>,
    metrics: metrics::Metrics,
    limit: limit::RateLimit,
    readiness: Mutex<Readiness>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("customers", &self.0.config.customers.len())
            .field("issuers", &self.0.issuers.len())
            .field("readiness", &self.readiness())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker for `config`, calling Power BI with `client`.
    ///
    /// # Errors
    /// When `powerbi.ca_file` cannot be read, or the HTTP client for the issuers' keys
    /// cannot be built.
    pub fn new(config: Config, client: Client) -> Result<Self, BoxError> {
        let ca = ca_pem(&config)?;
        Self::build(config, client, None, ca.as_deref())
    }

    /// A broker whose `client` shares its tokens through `store` (the same one given to
    /// its builder): `/readyz` then also says whether the store answers.
    ///
    /// # Errors
    /// As [`Broker::new`].
    pub fn with_store(config: Config, client: Client, store: Arc<dyn SharedStore>) -> Result<Self, BoxError> {
        let ca = ca_pem(&config)?;
        Self::build(config, client, Some(store), ca.as_deref())
    }

    /// The broker `pbi-embed serve` runs: the client from the environment
    /// ([`Broker::client_from_env`]), with Redis when `PBI_REDIS_URL` is set.
    ///
    /// # Errors
    /// As [`Broker::client_from_env`] and [`Broker::new`].
    pub fn from_env(config: Config) -> Result<Self, BoxError> {
        let ca = ca_pem(&config)?;
        let (client, store) = Self::upstream_from_env(&config, ca.as_deref())?;
        Self::build(config, client, store, ca.as_deref())
    }

    fn build(
        config: Config,
        client: Client,
        store: Option<Arc<dyn SharedStore>>,
        ca: Option<&[u8]>,
    ) -> Result<Self, BoxError> {
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build()?;
        let issuers = config
            .issuers
            .iter()
            .cloned()
            .map(|issuer| caller::jwt::IssuerKeys::new(issuer, http.clone()))
            .collect();
        Ok(Self(Arc::new(Inner {
            limit: limit::RateLimit::new(config.server.requests_per_minute),
            config,
            client,
            store,
            issuers,
            metrics: metrics::Metrics::default(),
            readiness: Mutex::new(Readiness::Starting),
        })))
    }

    /// The client `config` asks for, signed in as the environment says (`AZURE_*`, as
    /// Azure's libraries read it), sharing tokens through Redis when `PBI_REDIS_URL` is
    /// set (with `PBI_CACHE_KEY`, base64 of 32 bytes, `PBI_CACHE_KEY_ID`,
    /// `PBI_REDIS_TIMEOUT_MS`, the bound on each Redis command, default 50, and while
    /// rotating `PBI_PREVIOUS_CACHE_KEY` with `PBI_PREVIOUS_CACHE_KEY_ID`: see
    /// [`RedisStore::from_env`](pbi_embed_redis::RedisStore::from_env)).
    ///
    /// # Errors
    /// When the environment names no usable credential or store.
    pub fn client_from_env(config: &Config) -> Result<Client, BoxError> {
        Ok(Self::upstream_from_env(config, ca_pem(config)?.as_deref())?.0)
    }

    /// The client, trusting `ca` too, and the store it shares through (Redis, when
    /// configured).
    fn upstream_from_env(
        config: &Config,
        ca: Option<&[u8]>,
    ) -> Result<(Client, Option<Arc<dyn SharedStore>>), BoxError> {
        let powerbi = &config.powerbi;
        let mut builder = Client::builder();
        if let Some(base) = &powerbi.api_base {
            builder = builder.api_base(base.clone());
        }
        if let Some(host) = &powerbi.authority_host {
            builder = builder.authority_host(host.clone());
        }
        if let Some(pem) = ca {
            builder = builder.root_certificates_pem(pem);
        }
        builder = builder
            .from_env()?
            .embed_token_cache(Some((100_000, powerbi.embed_margin)));
        if !powerbi.refresh_ahead.is_zero() {
            builder = builder.refresh_ahead(powerbi.refresh_ahead);
        }
        let store =
            pbi_embed_redis::RedisStore::from_env()?.map(|redis| Arc::new(redis) as Arc<dyn SharedStore>);
        if let Some(store) = &store {
            builder = builder.shared_store(Arc::clone(store));
        }
        Ok((builder.build()?, store))
    }

    /// The routes, to serve or to mount in an app's own router.
    pub fn router(&self) -> axum::Router {
        routes::router(self.clone())
    }

    /// Whether it can serve.
    #[must_use]
    pub fn readiness(&self) -> Readiness {
        self.0
            .readiness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_readiness(&self, readiness: Readiness) {
        let mut current = self
            .0
            .readiness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current != readiness {
            match &readiness {
                Readiness::Ready => tracing::info!("ready"),
                Readiness::NotReady(why) => tracing::warn!(reason = %why, "not ready"),
                Readiness::Starting => {}
            }
            *current = readiness;
        }
    }

    /// Signs in and reads every configured item's metadata ahead, so that the first
    /// caller's configuration costs one round trip; sets [`Readiness`] from the result.
    pub async fn warm_up(&self) -> Readiness {
        let requests: Vec<_> = self
            .0
            .config
            .customers
            .values()
            .flat_map(access::warm_up_requests)
            .collect();
        let readiness = match self.0.client.sign_in().await {
            Err(error) => Readiness::NotReady(format!("cannot sign in: {}", error.kind())),
            Ok(_) => {
                if let Err(error) = self.0.client.warm_up(&requests).await {
                    // An item that cannot be read is the caller's 404 later, not a
                    // reason to stop serving the others.
                    tracing::warn!(%error, "warm-up could not read every configured item");
                }
                self.store_answers().await
            }
        };
        self.set_readiness(readiness.clone());
        readiness
    }

    /// Ready, or not when the shared store does not answer within a second.
    async fn store_answers(&self) -> Readiness {
        let Some(store) = &self.0.store else {
            return Readiness::Ready;
        };
        match tokio::time::timeout(Duration::from_secs(1), store.get(STORE_PROBE)).await {
            Ok(Ok(_)) => Readiness::Ready,
            Ok(Err(_)) | Err(_) => Readiness::NotReady("the shared store (Redis) does not answer".into()),
        }
    }

    /// Warms up now and again every `interval` (half the metadata's TTL suits), keeping
    /// [`Readiness`] current; stops when the task is aborted.
    pub fn keep_ready(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let broker = self.clone();
        tokio::spawn(async move {
            loop {
                let readiness = broker.warm_up().await;
                // Not ready: try again sooner.
                let wait = if readiness == Readiness::Ready {
                    interval
                } else {
                    interval.min(Duration::from_secs(5))
                };
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.config
    }
}
