//! The sans-IO protocol core of pbi-embed: Power BI embed tokens as typed requests and
//! responses, without any IO.
//!
//! It turns typed GenerateToken requests and the Entra ID sign-in into
//! [`http::Request`] values, and reads [`http::Response`] values into typed results or
//! errors that say what Power BI said. Any HTTP client can carry them; the
//! `pbi-embed-ureq` (blocking) and `pbi-embed-reqwest` (async) crates do, with token
//! caching and retries on top.
//!
//! # In scope
//!
//! - Every GenerateToken operation: [`ReportToken`], [`CreateReportToken`],
//!   [`DashboardToken`], [`TileToken`], [`DatasetToken`] and the multi-resource
//!   [`MultiResourceToken`], with [`EffectiveIdentity`] for row-level security, checked
//!   against the documented limits before anything is sent.
//! - The metadata the browser needs ([`GetReportInGroup`] and friends) and the
//!   [`EmbedConfig`] `powerbi-client` takes, with an RLS pre-flight ([`check_rls`]).
//! - Service principal sign-in to Entra ID: [`ClientCredentials`].
//! - The clouds: [`Cloud`].
//! - Errors with Power BI's status, code, message, `RequestId` and `Retry-After`: [`Error`].
//! - Decisions as data: [`RetryPolicy`] and [`RetryState`] say whether and when to retry
//!   (and when to sign in again), [`Freshness`] whether a held token is still good,
//!   [`EmbedTokenCache`] which embed token an identical request may reuse.
//! - Secrets that never print: [`ClientSecret`], [`AccessToken`], [`EmbedTokenSecret`],
//!   [`IdentityBlob`], and [`Redacted`] for logging requests.
//!
//! # Out of scope
//!
//! - Sending anything: no sockets, no TLS, no async runtime.
//! - Reading the clock, the environment or files: time is a parameter (`now`,
//!   `received_at`), credentials are values you pass in.
//! - Sleeping between retries, caching tokens, locking: the adapters do that.
//! - Other Power BI REST APIs, and user (delegated) sign-in flows.
//!
//! # Example
//!
//! Build a request for a report embed token with an RLS identity, then read a canned
//! response, all without IO:
//!
//! ```
//! use pbi_embed_core::{
//!     http, AccessToken, ApiRequest, Cloud, DatasetId, EffectiveIdentity, Operation,
//!     ReportId, ReportToken, WorkspaceId,
//! };
//!
//! let op = ReportToken::view(
//!     WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?,
//!     ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715")?,
//! )
//! .identity(
//!     EffectiveIdentity::new("john@contoso.com")
//!         .role("sales")
//!         .dataset(DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229")?),
//! );
//!
//! let access_token = AccessToken::new("eyJ0eXAiOiJKV1Qi...");
//! let cloud = Cloud::Public;
//! let call = op.authorize(&cloud, &access_token);
//! let request = call.to_http()?;
//! assert_eq!(request.method(), http::Method::POST);
//! assert_eq!(
//!     request.uri(),
//!     "https://api.powerbi.com/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/reports/5b218778-e7a5-4d73-8187-f10824047715/GenerateToken"
//! );
//! assert!(request.headers()["authorization"].is_sensitive());
//!
//! // ... send `request` with any HTTP client, then hand back the response:
//! let response = http::Response::builder()
//!     .status(200)
//!     .header("content-type", "application/json; charset=utf-8")
//!     .header("RequestId", "49c2e739-d400-429c-860b-856b92f52a4b")
//!     .body(r#"{"token":"H4sI....AAA=","tokenId":"49ae3742-54c0-4c29-af52-619ff93b5c80","expiration":"2018-07-29T17:58:19Z"}"#)?;
//! let embed = call.from_http(response)?;
//! assert_eq!(embed.token_id, "49ae3742-54c0-4c29-af52-619ff93b5c80");
//! assert_eq!(embed.expiration_rfc3339(), "2018-07-29T17:58:19Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Choosing a transport
//!
//! Use `pbi-embed-ureq` for blocking code and `pbi-embed-reqwest` for async code. To use
//! another HTTP stack, call [`Operation::to_http`], send the request, read at most
//! [`MAX_RESPONSE_BYTES`] of the body, and pass the whole response, whatever its status,
//! to [`Operation::from_http`]. Do not follow redirects: a bearer token must never reach
//! another host.
//!
//! # Security
//!
//! Secrets are newtypes whose `Debug` prints `Name([redacted])` and which have no
//! `Display`. The `Authorization` header is marked sensitive. No secret is ever put in a
//! URI. Errors never keep a successful body (it holds a token), and keep at most
//! [`BODY_SNIPPET_BYTES`] of a failed one, sanitized. Log requests through [`Redacted`].

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub use http;

#[doc(hidden)]
#[path = "fuzz_harness.rs"]
pub mod __fuzz;
pub mod cache;
pub mod client_settings;
pub mod cloud;
pub mod embed_config;
pub mod embed_token;
pub mod entra;
pub mod error;
pub mod execute;
pub mod generate_token;
pub mod identity;
pub mod ids;
pub mod lifetime;
pub mod metadata;
pub mod operation;
pub mod redact;
pub mod response;
pub mod retry;
pub mod secret;
pub mod token_request;

pub use cache::{CacheKey, EmbedTokenCache};
pub use client_settings::{ClientSettings, service_principal_from};
pub use cloud::{Cloud, CustomCloud};
pub use embed_config::{EmbedConfig, EmbedKind, EmbedOptions, check_rls};
pub use embed_token::EmbedToken;
pub use entra::{ClientCredentials, EntraToken};
pub use error::{
    ApiError, BODY_SNIPPET_BYTES, DecodeError, EntraError, Error, ErrorKind, PbiError, PbiErrorDetail,
};
pub use execute::{ExecuteError, NextStep, RetryState, TransportKind};
pub use generate_token::{
    CreateReportRoute, CreateReportToken, DashboardRoute, DashboardToken, DatasetRoute, DatasetToken,
    GenerateToken, MultiResourceToken, ReportRoute, ReportToken, TileRoute, TileToken, TokenRoute,
};
pub use identity::{DatasourceConnectionDetails, DatasourceIdentity, DatasourceSelector, EffectiveIdentity};
pub use ids::{ClientId, DashboardId, DatasetId, ProfileId, ReportId, TenantId, TileId, WorkspaceId};
pub use lifetime::{BearerToken, Freshness, HeldToken};
pub use metadata::{
    Dashboard, Dataset, GetDashboardInGroup, GetDatasetInGroup, GetReportInGroup, GetTileInGroup, Report,
    ReportType, Tile,
};
pub use operation::{ApiRequest, Authorized, HttpRequest, MAX_RESPONSE_BYTES, Operation};
pub use redact::Redacted;
pub use retry::{GiveUpReason, Outcome, RetryAfter, RetryDecision, RetryPolicy};
pub use secret::{AccessToken, ClientSecret, EmbedTokenSecret, IdentityBlob};
pub use token_request::{
    GenerateTokenRequest, GenerateTokenRequestV2, GenerateTokenRequestV2Dataset,
    GenerateTokenRequestV2Report, GenerateTokenRequestV2TargetWorkspace, TokenAccessLevel, XmlaPermissions,
};
