//! Async Power BI embed tokens over [`reqwest`].
//!
//! ```toml
//! pbi-embed-reqwest = "0.1"
//! ```
//!
//! A [`Client`] signs in to Entra ID and mints embed tokens and `powerbi-client`
//! configurations. What surrounds each call is [`pbi_embed_core`]'s flow, which this
//! crate only pumps over a [`reqwest::Client`]:
//!
//! - the Entra access token is held and renewed 5 minutes before it expires, by one call
//!   while the others keep using the still-valid one; after Power BI's 403 `TokenExpired`
//!   the call signs in again and retries once;
//! - identical embed-token requests share one cached token until 10 minutes before it
//!   expires, and identical requests in flight at once share one call to Power BI; item
//!   metadata and datasets' RLS flags are cached for 10 minutes;
//! - 408, 429, 5xx and connection failures are retried with backoff, honouring
//!   `Retry-After`; no call outlives its deadline (60 s by default, sign-in included);
//! - redirects are never followed (a bearer token never goes to another host), every
//!   attempt is bounded as a whole (30 s) and in body size (1 MiB), and 4xx and 5xx
//!   answers reach the core's parser, so errors say what Power BI said.
//!
//! It behaves exactly like the blocking `pbi-embed-ureq` client, with the same names.
//! reqwest needs a tokio runtime; on async-std, enable its `tokio1` feature. Dropping a
//! call's future half-way leaves nothing behind: what it was fetching goes to the next
//! call that needs it.
//!
//! ```no_run
//! use pbi_embed_reqwest::{Client, EffectiveIdentity, EmbedRequest, ReportId, WorkspaceId};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder().service_principal_from_env()?.build()?;
//! let request = EmbedRequest::report(
//!     WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?,
//!     ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715")?,
//! )
//! .identity(EffectiveIdentity::new("john@contoso.com").role("sales"));
//! let config = client.embed_config(&request).await?;
//! println!("{}", serde_json::to_string(&config)?); // what powerbi.embed(element, config) takes
//! # Ok(()) }
//! ```
//!
//! # Your own client
//!
//! [`ClientBuilder::http_client`] takes your [`reqwest::Client`], sharing its connection
//! pool. Build it with `redirect(reqwest::redirect::Policy::none())`: a bearer token must
//! never follow a redirect to another host (an answer that came from elsewhere is refused,
//! but by then the request was sent). Each request gets the call's time-out.
//!
//! # TLS
//!
//! Power BI is HTTPS only. The `rustls` feature (default) or `native-tls` provides TLS;
//! with neither, only plain-HTTP loopback endpoints (such as the emulator) work.
//!
//! Servers are verified against Mozilla's roots; on the builder,
//! [`root_certificates_pem`](ClientBuilder::root_certificates_pem) trusts another CA as
//! well (a TLS-inspecting proxy's, the emulator's) and
//! [`platform_verifier`](ClientBuilder::platform_verifier) uses the system's trust store
//! instead. [`proxy`](ClientBuilder::proxy) sends every request through a proxy; without
//! it, `HTTPS_PROXY`/`ALL_PROXY` and `NO_PROXY` are honoured. A certificate that does not
//! verify ends the call at once with [`ErrorKind::Certificate`], naming the host.
//!
//! # Azure's identity crates
//!
//! With the `azure` feature, `azure::AzureCredential` makes any `azure_core`
//! `TokenCredential` (every credential of `azure_identity`) the client's token source.
//!
//! # Logging
//!
//! Each response is logged at DEBUG through `tracing` with its operation and status; no
//! secret is ever logged.

#[cfg(feature = "azure")]
pub use pbi_embed_core::azure;
mod client;

pub use client::{Client, KeepWarm};
/// The sans-IO core this client pumps, by its own name.
pub use pbi_embed_core;
// Every type the client's signatures use, by one path: the core's root (its requests,
// answers, errors, credentials, settings, the builder) and its `driver` module.
pub use pbi_embed_core::driver;
pub use pbi_embed_core::reexport::*;
pub use reqwest;
