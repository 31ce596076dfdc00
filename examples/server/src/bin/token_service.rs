//! A token service: `GET /api/embed?report={id}&user={name}&role={role}` returns the
//! configuration `powerbi.embed(element, config)` takes for that report and
//! row-level-security identity (`role` repeatable, `user` and `role` optional). Run as
//! many replicas as you like behind a load balancer; with Redis they share their tokens.
//!
//! **It trusts its caller**: whoever reaches it names any user and role, so it belongs
//! behind a backend that has authenticated the user, never where a browser can call it.
//! For a service browsers call, with callers authenticated and customers kept apart,
//! deploy the broker (`pbi-embed serve`, the `pbi-embed-server` crate).
//!
//! ```sh
//! # Against the emulator (pbi-embed emulator prints its ids and secret):
//! PBI_WORKSPACE_ID=… PBI_API_BASE=http://127.0.0.1:8081 AZURE_AUTHORITY_HOST=http://127.0.0.1:8081 \
//! AZURE_TENANT_ID=… AZURE_CLIENT_ID=… AZURE_CLIENT_SECRET=… \
//! PBI_REDIS_URL=redis://127.0.0.1:6379/ PBI_CACHE_KEY=$(openssl rand -base64 32) \
//! cargo run -p pbi-embed-examples-server --bin token_service
//! curl 'http://127.0.0.1:8080/api/embed?report=…&user=alice@contoso.com&role=sales'
//! ```
//!
//! Configured by the environment only:
//!
//! - `PBI_LISTEN`: the address (default `127.0.0.1:8080`; port 0 picks one). The first
//!   line printed is `listening on http://ADDRESS`.
//! - `PBI_WORKSPACE_ID` (required); `PBI_API_BASE`, `AZURE_AUTHORITY_HOST` (or
//!   `PBI_AUTHORITY_HOST`) for another
//!   Power BI or Entra ID (the emulator).
//! - The sign-in, as Azure's libraries read it: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` with
//!   `AZURE_CLIENT_SECRET`, `AZURE_CLIENT_CERTIFICATE_PATH` or `AZURE_FEDERATED_TOKEN_FILE`,
//!   or App Service's managed identity.
//! - `PBI_REDIS_URL` (optional; without it each replica's own cache serves) and
//!   `PBI_CACHE_KEY` (base64 of 32 bytes, required with Redis: tokens are encrypted at
//!   rest), `PBI_CACHE_KEY_ID` (default `k1`), `PBI_PREVIOUS_CACHE_KEY` (with
//!   `PBI_PREVIOUS_CACHE_KEY_ID`, while rotating); `PBI_REDIS_TIMEOUT_MS`, the bound on
//!   each Redis command (default 50; past it the service goes on without the store).
//! - `PBI_REFRESH_AHEAD_SECONDS` (default 900; 0 turns it off), `PBI_EMBED_MARGIN_SECONDS`
//!   (default 600), `PBI_EMBED_LIFETIME_MINUTES` (default Power BI's).
//!
//! Answers: 200 with the configuration; 400 with `{"error", "field"}` for a bad request
//! (nothing sent); Power BI's or Entra ID's status with `{"error", "code", "requestId"}`
//! when they refuse; 502 when they cannot be reached; 503 when the call ran out of time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use pbi_embed_redis::RedisStore;
use pbi_embed_reqwest::{Client, EffectiveIdentity, EmbedRequest, Error, ErrorKind, ReportId, WorkspaceId};
use serde_json::json;

/// The most roles one request may name (Power BI's limit per identity).
const MAX_ROLES: usize = 50;
/// The longest query string read.
const MAX_QUERY: usize = 4096;

struct Service {
    client: Client,
    workspace: WorkspaceId,
    lifetime_minutes: Option<u32>,
}

fn bad_request(field: &str, error: impl Into<String>) -> Response {
    let body = json!({ "error": error.into(), "field": field });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// What Power BI or Entra ID said, with their status; ours otherwise.
fn refused(error: &Error) -> Response {
    let status = match (error.status(), error.kind()) {
        (_, ErrorKind::InvalidInput | ErrorKind::RlsIdentity) if !error.was_sent() => StatusCode::BAD_REQUEST,
        (Some(status), _) => StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        (None, ErrorKind::Timeout) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    let body = json!({
        "error": error.to_string(),
        "code": error.code(),
        "requestId": error.request_id(),
        "kind": error.kind().to_string(),
    });
    (status, Json(body)).into_response()
}

async fn embed(State(service): State<Arc<Service>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY {
        return bad_request("query", format!("is longer than {MAX_QUERY} bytes"));
    }
    let (mut report, mut user, mut roles) = (None, None, Vec::new());
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "report" => report = Some(value.into_owned()),
            "user" => user = Some(value.into_owned()),
            "role" if roles.len() < MAX_ROLES => roles.push(value.into_owned()),
            "role" => return bad_request("role", format!("more than {MAX_ROLES} roles")),
            other => return bad_request(other, "is not a parameter (report, user, role)"),
        }
    }
    let Some(report) = report else {
        return bad_request("report", "is required");
    };
    let report = match ReportId::parse(&report) {
        Ok(report) => report,
        Err(error) => return bad_request("report", error.to_string()),
    };
    let mut request = EmbedRequest::report(service.workspace.clone(), report);
    match (user, roles.is_empty()) {
        (Some(user), _) => {
            let identity = roles
                .into_iter()
                .fold(EffectiveIdentity::new(user), EffectiveIdentity::role);
            request = request.identity(identity);
        }
        (None, false) => return bad_request("role", "needs a user"),
        (None, true) => {}
    }
    if let Some(minutes) = service.lifetime_minutes {
        request = request.lifetime_in_minutes(minutes);
    }
    match service.client.embed_config(&request).await {
        Ok(config) => Json(config).into_response(),
        Err(error) => refused(&error),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reads the configuration, then serves until Ctrl-C.
async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let seconds = |name: &str, default: u64| -> Result<Duration, String> {
        match env(name) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .parse()
                .map(Duration::from_secs)
                .map_err(|_| format!("{name} is not a number of seconds")),
        }
    };
    let listen: SocketAddr = env("PBI_LISTEN")
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
        .parse()
        .map_err(|_| "PBI_LISTEN is not an address like 127.0.0.1:8080")?;
    let workspace = WorkspaceId::parse(&env("PBI_WORKSPACE_ID").ok_or("PBI_WORKSPACE_ID is not set")?)?;
    let margin = seconds("PBI_EMBED_MARGIN_SECONDS", 600)?;
    let window = seconds("PBI_REFRESH_AHEAD_SECONDS", 900)?;
    let lifetime_minutes = env("PBI_EMBED_LIFETIME_MINUTES")
        .map(|v| {
            v.parse()
                .map_err(|_| "PBI_EMBED_LIFETIME_MINUTES is not a number")
        })
        .transpose()?;

    let mut builder = Client::builder()
        .from_env()?
        .embed_token_cache(Some((10_000, margin)));
    if !window.is_zero() {
        builder = builder.refresh_ahead(window);
    }
    // PBI_API_BASE and AZURE_AUTHORITY_HOST are read by `from_env`; PBI_AUTHORITY_HOST,
    // this service's older name for the latter, still works.
    if let Some(host) = env("PBI_AUTHORITY_HOST") {
        builder = builder.authority_host(host);
    }
    if let Some(store) = RedisStore::from_env()? {
        builder = builder.shared_store(Arc::new(store));
    }
    let service = Arc::new(Service {
        client: builder.build()?,
        workspace,
        lifetime_minutes,
    });
    let app = Router::new()
        .route("/api/embed", get(embed))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(service);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
