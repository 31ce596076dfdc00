//! Blocking Power BI embed tokens over [`ureq`].
//!
//! ```toml
//! pbi-embed-ureq = "0.1"
//! ```
//!
//! A [`Client`] signs in to Entra ID, mints embed tokens with any of the GenerateToken
//! operations of [`pbi_embed_core`], and takes care of what surrounds them:
//!
//! - the Entra access token is cached and refreshed 5 minutes before it expires, one
//!   refresh at a time however many threads wait; a still-valid token is kept if a refresh
//!   fails; after Power BI's 403 `TokenExpired` it signs in again and retries once;
//! - identical embed-token requests share one cached token until 10 minutes before it
//!   expires, and concurrent identical requests share one call (see
//!   [`ClientBuilder::embed_token_cache`]);
//! - 408, 429, 5xx and connection failures are retried with backoff, honouring
//!   `Retry-After`, within a total time budget ([`pbi_embed_core::RetryPolicy`]);
//! - redirects are never followed (a bearer token never goes to another host), every
//!   exchange is bounded (10 s to connect, 30 s in all, 1 MiB of body), and 4xx and 5xx
//!   answers reach the core's parser, so errors say what Power BI said.
//!
//! ```no_run
//! use pbi_embed_ureq::{Client, ReportId, ReportToken, WorkspaceId, EffectiveIdentity, DatasetId};
//!
//! let client = Client::builder().service_principal_from_env()?.build()?;
//! let token = client.report_token(
//!     &ReportToken::view(WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?, ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715")?)
//!         .identity(EffectiveIdentity::new("john@contoso.com").role("sales").dataset(DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229")?)),
//! )?;
//! println!("{} expires {}", token.token_id, token.expiration_rfc3339());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # TLS
//!
//! Power BI is HTTPS only. The `rustls` feature (default) or `native-tls` provides TLS;
//! with neither, only plain-HTTP loopback endpoints (such as the emulator) work.
//!
//! # Logging
//!
//! Each call is a `tracing` span `pbi_embed` with the operation, and each attempt logs its
//! number, status, `RequestId` and elapsed time. No secret is ever logged.

mod client;
mod credential;

pub use client::{Client, ClientBuilder};
pub use credential::TokenSource;
pub use pbi_embed_core::*;

/// Errors of this crate: the core's errors, or ureq's.
pub type Error = ExecuteError<ureq::Error>;
