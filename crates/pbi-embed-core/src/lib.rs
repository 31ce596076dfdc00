//! The sans-IO protocol core of pbi-embed: Power BI embed tokens as typed requests and
//! responses, without any IO.
//!
//! It turns typed GenerateToken requests and the Entra ID sign-in into
//! [`http::Request`] values, and reads [`http::Response`] values into typed results or
//! errors that say what Power BI said. It also owns the *whole* call as a state machine
//! ([`driver::Call`]): sign-in and the bearer token's renewal, the caches, retries, the
//! one new sign-in after `TokenExpired`, the deadline, and the steps of an embed
//! configuration. Any HTTP stack can drive it; the `pbi-embed-ureq` (blocking) and
//! `pbi-embed-reqwest` (async) crates do.
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
//! - Which roots the drivers' own HTTP clients trust and which proxy they use, checked:
//!   [`ConnectSettings`].
//! - The clouds: [`Cloud`].
//! - Errors with Power BI's status, code, message, `RequestId` and `Retry-After`: [`Error`]
//!   for a whole call (with the step and host that failed), [`ExchangeError`] for one
//!   exchange built and read by hand.
//! - Decisions as data: [`RetryPolicy`] says whether and when to retry, [`Freshness`]
//!   whether a held token is still good, and
//!   the [`driver::Session`] which bearer token to send, which cached embed token or item
//!   metadata an identical request may reuse, and which call fetches what others wait on.
//! - One builder for every driver's client: [`ClientBuilder`].
//! - Secrets that never print: [`ClientSecret`], [`AccessToken`], [`EmbedTokenSecret`],
//!   [`IdentityBlob`], and [`Redacted`] for logging requests.
//!
//! # Out of scope
//!
//! - Sending anything: no sockets, no TLS, no async runtime.
//! - Reading the clock, the environment or files: time is a parameter (`now`,
//!   `received_at`), credentials are values you pass in.
//! - Sleeping, waiting on other calls, locking: a driver does that, around the session.
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
//! # Layout
//!
//! The source is in folders named for the parts of the design, each using only those
//! above it in this list:
//!
//! - `wire/`: what both services speak: typed ids, secrets, clouds, the [`Operation`]
//!   boundary, the errors Power BI and Entra ID answer with, `Retry-After`, freshness.
//! - `settings/`: what a client is configured with: [`ClientSettings`],
//!   [`ConnectSettings`], [`RetryPolicy`].
//! - `api/`: Power BI's REST API: [`ApiRequest`] and every request, their answers,
//!   identities, embed configurations and the RLS pre-flight.
//! - `auth/`: Entra ID and every credential, each with its sign-in as a small machine
//!   behind one interface, and the bearer token a session holds.
//! - `flow/`: the call as small machines: the [`driver::Session`] coordinator, a call's
//!   plan (steps that do not depend on each other go side by side, each a call of its
//!   own), the job that fetches each need, the bearer token and retries, the shared
//!   store's lease, the caches, warm-up and the scheduling of calls.
//! - `client/`: the [`ClientBuilder`] every driver shares, and the environment reader.
//!
//! ## Adding things
//!
//! - **An operation** of the Power BI REST API: one type implementing [`ApiRequest`] in
//!   `api/` (a new file, or beside its relatives), exported from `lib.rs`. Every driver
//!   sends it with `execute` (`embed_token` for a GenerateToken); nothing else changes.
//! - **A credential**: one new file in `auth/` with its wire format and its sign-in
//!   machine (the `SignIn` trait of `auth/sign_in.rs`), one [`Credential`] variant in
//!   `auth/credential.rs` (and its arm in `Credential::sign_in`), a builder method in
//!   `client/builder.rs` and, if the environment names it, a case in
//!   `client/environment.rs`. If it needs IO no credential needed before, a new
//!   [`driver::Action`] too, which every driver then performs.
//! - **A driver** for another HTTP stack: implement [`driver::Driver`] (the builder's
//!   plug) and pump calls as [`driver`] describes; run `pbi-embed-testkit`'s conformance
//!   checks against it. The README's blocking driver is about fifty lines.
//!
//! # Choosing a transport
//!
//! Use `pbi-embed-ureq` for blocking code and `pbi-embed-reqwest` for async code. To use
//! another HTTP stack, drive a [`driver::Call`] (see [`driver`]): your stack only sends
//! requests, sleeps and waits, and gets sign-in, caching, retries and recovery with it.
//! For a single exchange, call [`Operation::to_http`], send the request, read at most
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

#[cfg(any(test, fuzzing, feature = "__fuzz"))]
#[doc(hidden)]
#[path = "fuzz_harness.rs"]
pub mod __fuzz;
/// Internal (PRIVATE!): what the benchmarks time on its own, for pbi-embed-bench only.
#[cfg(feature = "__bench")]
#[doc(hidden)]
pub mod __bench {
    pub use crate::api::request::CacheKey;
    pub use crate::flow::cache::EmbedTokenCache;
}
mod api;
mod auth;
mod client;
mod flow;
mod settings;
mod wire;

pub use api::embed_config::{EmbedConfig, EmbedKind, QnaMode, TOKEN_TYPE_EMBED};
pub use api::embed_request::{EmbedItem, EmbedRequest, check_rls};
pub use api::embed_token::EmbedToken;
pub use api::generate_token::{
    CreateReportRoute, CreateReportToken, DashboardRoute, DashboardToken, DatasetRoute, DatasetToken,
    GenerateToken, MultiResourceToken, ReportRoute, ReportToken, TileRoute, TileToken, TokenRoute,
};
pub use api::identity::{
    DatasourceConnectionDetails, DatasourceIdentity, DatasourceSelector, EffectiveIdentity, MAX_ROLE_LEN,
    MAX_ROLES, MAX_USERNAME_LEN,
};
pub use api::metadata::{
    Dashboard, Dataset, GetDashboardInGroup, GetDashboardsInGroup, GetDatasetInGroup, GetDatasetsInGroup,
    GetPagesInGroup, GetReportInGroup, GetReportsInGroup, GetTileInGroup, GetTilesInGroup, Page, Report,
    ReportType, Tile,
};
pub use api::request::{ApiRequest, Authorized, PROFILE_HEADER};
pub use api::token_request::{
    GenerateTokenRequest, GenerateTokenRequestV2, GenerateTokenRequestV2Dataset,
    GenerateTokenRequestV2Report, GenerateTokenRequestV2TargetWorkspace, MAX_ITEMS, TokenAccessLevel,
    XmlaPermissions,
};
#[cfg(feature = "azure")]
pub use auth::azure;
pub use auth::azure_cli::{AZURE_CLI_TIMEOUT, AzureCli, AzureCliError, AzureCliFailure};
pub use auth::bearer::BearerToken;
#[cfg(feature = "certificate")]
pub use auth::certificate::{AssertionAlgorithm, CertificateFile, ClientCertificate};
pub use auth::client_credentials::{CLIENT_ASSERTION_TYPE, ClientCredentials};
pub use auth::credential::Credential;
pub use auth::entra::{EntraToken, parse_token_response};
pub use auth::managed_identity::{IMDS_HOST, ManagedIdentity, UserAssignedId};
pub use auth::token_source::{AsyncTokenSource, BoxedTokenSource, TokenFuture, TokenSource};
pub use client::builder::ClientBuilder;
pub use flow::error::{Error, TransportKind};
pub use flow::stats::{ClientStats, LATENCY_BUCKETS, Latencies, Lookups};
pub use settings::client_settings::{ClientSettings, MAX_REFRESH_AHEAD, MAX_TIME_BOUND, SharedSettings};
pub use settings::connect_settings::{ConnectSettings, MAX_ROOT_CERTIFICATES, Proxy};
pub use settings::retry::{GiveUpReason, Outcome, RetryAfter, RetryDecision, RetryPolicy};
pub use wire::cloud::{Cloud, CustomCloud};
pub use wire::error::{
    ApiError, BODY_SNIPPET_BYTES, BoxError, DecodeError, EntraError, ErrorKind, ExchangeError, PbiError,
    PbiErrorDetail,
};
pub use wire::ids::{
    ClientId, DashboardId, DatasetId, MAX_DATASET_ID_LEN, ProfileId, ReportId, TenantId, TileId, WorkspaceId,
};
pub use wire::lifetime::Freshness;
pub use wire::operation::{CONTENT_TYPE_JSON, HttpRequest, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Operation};
pub use wire::redact::Redacted;
pub use wire::secret::{AccessToken, ClientSecret, EmbedTokenSecret, IdentityBlob};

/// What a driver crate re-exports at its root, in one list for every driver: every item
/// of the core's root but the `http` crate (a driver re-exports its own HTTP stack), so
/// every type a driver's public signatures use is reachable from the driver's root. The
/// [`driver`] module is re-exported beside it.
#[doc(hidden)]
pub mod reexport {
    pub use crate::{
        AZURE_CLI_TIMEOUT, AccessToken, ApiError, ApiRequest, AsyncTokenSource, Authorized, AzureCli,
        AzureCliError, AzureCliFailure, BODY_SNIPPET_BYTES, BearerToken, BoxError, BoxedTokenSource,
        CLIENT_ASSERTION_TYPE, CONTENT_TYPE_JSON, ClientBuilder, ClientCredentials, ClientId, ClientSecret,
        ClientSettings, ClientStats, Cloud, ConnectSettings, CreateReportRoute, CreateReportToken,
        Credential, CustomCloud, Dashboard, DashboardId, DashboardRoute, DashboardToken, Dataset, DatasetId,
        DatasetRoute, DatasetToken, DatasourceConnectionDetails, DatasourceIdentity, DatasourceSelector,
        DecodeError, EffectiveIdentity, EmbedConfig, EmbedItem, EmbedKind, EmbedRequest, EmbedToken,
        EmbedTokenSecret, EntraError, EntraToken, Error, ErrorKind, ExchangeError, Freshness, GenerateToken,
        GenerateTokenRequest, GenerateTokenRequestV2, GenerateTokenRequestV2Dataset,
        GenerateTokenRequestV2Report, GenerateTokenRequestV2TargetWorkspace, GetDashboardInGroup,
        GetDashboardsInGroup, GetDatasetInGroup, GetDatasetsInGroup, GetPagesInGroup, GetReportInGroup,
        GetReportsInGroup, GetTileInGroup, GetTilesInGroup, GiveUpReason, HttpRequest, IMDS_HOST,
        IdentityBlob, LATENCY_BUCKETS, Latencies, Lookups, MAX_DATASET_ID_LEN, MAX_ITEMS, MAX_REFRESH_AHEAD,
        MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_ROLE_LEN, MAX_ROLES, MAX_ROOT_CERTIFICATES,
        MAX_TIME_BOUND, MAX_USERNAME_LEN, ManagedIdentity, MultiResourceToken, Operation, Outcome,
        PROFILE_HEADER, Page, PbiError, PbiErrorDetail, ProfileId, Proxy, QnaMode, Redacted, Report,
        ReportId, ReportRoute, ReportToken, ReportType, RetryAfter, RetryDecision, RetryPolicy,
        SharedSettings, TOKEN_TYPE_EMBED, TenantId, Tile, TileId, TileRoute, TileToken, TokenAccessLevel,
        TokenFuture, TokenRoute, TokenSource, TransportKind, UserAssignedId, WorkspaceId, XmlaPermissions,
        check_rls, parse_token_response,
    };
    #[cfg(feature = "certificate")]
    pub use crate::{AssertionAlgorithm, CertificateFile, ClientCertificate};
}

pub mod driver {
    //! What only drivers need: the [`Session`] a client shares between its calls, the
    //! [`Call`] state machine it steps, the IO a call asks for, and the builder's plug
    //! ([`Driver`]).
    //!
    //! # Driving a call
    //!
    //! A driver keeps one [`Session`] behind a lock ([`SharedSession`]) and, for each
    //! call, loops: step the call with what happened ([`Pump::step`] locks for the step
    //! only), then do what the [`Action`] says. Each request for IO carries how its
    //! answer goes back, so a driver cannot answer one request with another's reply:
    //!
    //! - [`Action::Send`]: send the [`Exchange`]'s request (following no redirect),
    //!   bounded by its time-out and its body cap; answer with [`Exchange::respond`], or
    //!   take the request out with [`Exchange::into_request`] and answer with the
    //!   [`Responder`].
    //! - [`Action::FetchToken`]: ask the driver's token source for
    //!   [`TokenFetch::scope`]; answer with [`TokenFetch::respond`].
    //! - [`Action::ReadFile`]: read the file (at most its `max_bytes`, within its
    //!   time-out, off an async executor); answer with [`FileRead::respond`].
    //! - [`Action::RunProgram`]: run the program directly (never through a shell), stdin
    //!   closed, stopped after its time-out, at most its `max_output_bytes` of output read
    //!   (the Azure CLI); answer with [`ProgramRun::respond`].
    //! - [`Action::Store`]: run the operation on the driver's [`SharedStore`]
    //!   ([`StoreOp::run`] gives the answer). Only when the builder was given a store.
    //! - [`Action::Spawn`]: run the [`Background`] work as [`Call::refresh`] on its own
    //!   thread or task (refresh-ahead, the bearer token's renewal), and step this call
    //!   on with [`Event::resume`].
    //! - [`Action::Join`]: run the [`Join`]'s calls ([`Join::into_branches`]) each to
    //!   its end as any call, side by side (a blocking driver on a few threads, an async
    //!   one polling them together), then answer with [`Joiner::respond`].
    //! - [`Action::Wait`]: sleep, then step with [`Event::resume`].
    //! - [`Action::Park`]: another call fetches what this one needs; sleep until the
    //!   session wakes parked calls or the (short) time given is up, then step with
    //!   [`Event::resume`].
    //! - [`Action::Done`]: return the result.
    //!
    //! If a call is dropped before it is done (a future cancelled, a panic), the driver
    //! calls [`Session::abandon`] ([`Pump`] does it when dropped), so others do not wait
    //! on what it was fetching. An answer that is not the one asked for ends the call
    //! with [`ErrorKind::Driver`](crate::ErrorKind::Driver), saying whether anything was
    //! sent.
    //!
    //! ```
    //! use std::time::{Instant, SystemTime};
    //! use pbi_embed_core::driver::{Action, Call, Event, Now, Session};
    //! use pbi_embed_core::{AccessToken, ClientSettings, Credential, DatasetId, DatasetToken, WorkspaceId};
    //!
    //! let mut session = Session::new(ClientSettings::default(), Credential::BearerToken(AccessToken::new("eyJ0")))?;
    //! let request = DatasetToken::new(
    //!     WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?,
    //!     DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229")?,
    //! );
    //! let mut call = Call::embed_token(&request);
    //! let now = Now::new(Instant::now(), SystemTime::now());
    //! let Action::Send(exchange) = session.step(&mut call, Event::resume(), now, 0, || {}) else { unreachable!() };
    //! assert_eq!(exchange.request().uri().path(), "/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/datasets/cfafbeb1-8037-4d0c-896e-a46fb27ff229/GenerateToken");
    //! let response = pbi_embed_core::http::Response::builder()
    //!     .status(200)
    //!     .body(br#"{"token":"H4sI","tokenId":"49ae3742-54c0-4c29-af52-619ff93b5c80","expiration":"2030-07-29T17:58:19Z"}"#.to_vec())?;
    //! let Action::Done(Ok(token)) = session.step(&mut call, exchange.respond(Ok(response)), now, 0, || {}) else { unreachable!() };
    //! assert_eq!(token.token_id, "49ae3742-54c0-4c29-af52-619ff93b5c80");
    //! # Ok::<(), Box<dyn std::error::Error>>(())
    //! ```

    pub use crate::auth::azure_cli::ProgramOutput;
    pub use crate::client::builder::{ClientParts, Driver, EnvReader};
    pub use crate::flow::branch::{Branch, Join, Joiner};
    pub use crate::flow::call::{Action, Call, Now, PARK_POLL};
    pub use crate::flow::error::TransportError;
    pub use crate::flow::io::{Event, Exchange, FileRead, ProgramRun, Responder, TokenFetch};
    pub use crate::flow::plan::Background;
    pub use crate::flow::session::Session;
    pub use crate::flow::shared::{Pump, SharedSession};
    pub use crate::flow::store::{SharedStore, StoreFuture, StoreOp, StoreReply};
    pub use crate::wire::parsed_urls::ParsedUrls;
    pub use crate::wire::response::request_id;
}
