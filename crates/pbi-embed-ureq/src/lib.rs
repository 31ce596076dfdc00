//! Blocking Power BI embed tokens over [`ureq`].
//!
//! ```toml
//! pbi-embed-ureq = "0.1"
//! ```
//!
//! A [`Client`] signs in to Entra ID and mints embed tokens and `powerbi-client`
//! configurations. What surrounds each call is [`pbi_embed_core`]'s flow, which this
//! crate only pumps over a [`ureq::Agent`]:
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
//! ```no_run
//! use pbi_embed_ureq::{Client, EffectiveIdentity, EmbedRequest, ReportId, WorkspaceId};
//!
//! let client = Client::builder().service_principal_from_env()?.build()?;
//! let request = EmbedRequest::report(
//!     WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?,
//!     ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715")?,
//! )
//! .identity(EffectiveIdentity::new("john@contoso.com").role("sales"));
//! let config = client.embed_config(&request)?;
//! println!("{}", serde_json::to_string(&config)?); // what powerbi.embed(element, config) takes
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Your own agent
//!
//! [`ClientBuilder::http_client`] takes your [`ureq::Agent`]; every request is then
//! configured to follow no redirect, to pass 4xx and 5xx answers through, and to be
//! bounded by the call's time-out.
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
//! `platform_verifier` needs the `platform-verifier` feature (default) with rustls, and
//! takes no extra roots here: add them to the system store instead.
//!
//! # Logging
//!
//! Each attempt is logged through `tracing` (operation, attempt, host at DEBUG; status and
//! RequestId at DEBUG; waits before a retry at INFO); no secret is ever logged.
//!
//! ureq's protocol layer (`ureq_proto`) logs every byte it sends and receives at TRACE
//! through the `log` crate: the `Authorization` header with the bearer token, and the
//! embed token in the answer. ureq has no switch for that, and a library cannot filter
//! another crate's records without owning the program's logger. So the default feature
//! `cap-log-level` enables `log`'s `max_level_debug`, which compiles `log` TRACE records
//! out of the whole program.
//!
//! The trade-off, stated: while `pbi-embed-ureq` is built with default features, an
//! application gets no `log` TRACE records from any crate (`tracing` events are not
//! affected, nor `log` records at DEBUG and above). The `log` crate asks libraries not to
//! set its level features; we judge a bearer token in a log file the worse harm, because
//! TRACE is what people turn on to debug an HTTP problem, and the logs then go to
//! tickets and chat. To opt out, turn default features off
//! (`default-features = false, features = ["rustls"]`) and filter the `ureq_proto`
//! target at TRACE in your logger (for example `RUST_LOG=trace,ureq_proto=debug`). The
//! test suite checks both sides: with the cap no secret reaches a TRACE subscriber; without
//! it ureq's records do carry the bearer token.

mod client;

pub use client::{Client, KeepWarm};
/// The sans-IO core this client pumps, by its own name.
pub use pbi_embed_core;
// Every type the client's signatures use, by one path: the core's root (its requests,
// answers, errors, credentials, settings, the builder) and its `driver` module.
pub use pbi_embed_core::driver;
pub use pbi_embed_core::reexport::*;
pub use ureq;
