//! A web application that embeds a Power BI report for the signed-in user: a backend
//! endpoint returns an embed configuration for the user's row-level-security identity,
//! and a page loads `powerbi-client` (served locally from npm), embeds the report and
//! refreshes the token before it expires.
//!
//! ```sh
//! npm ci --prefix examples/web        # once: powerbi-client from the npm registry
//! cargo run --example web_app
//! # open http://127.0.0.1:3000/?user=alice   (also: bob; mallory has no identity)
//! ```
//!
//! `&kind=dashboard` or `&kind=tile` embeds the dashboard or tile instead (`PBI_DASHBOARD_ID`,
//! `PBI_TILE_ID`). powerbi-client embeds those only from https embed URLs on Power BI's host
//! names: real Power BI, or the emulator over TLS with `PBI_EMULATOR_TLS_NAME=emu.powerbi.com`
//! (its CA written to `PBI_EMULATOR_CA_OUT`) and a browser that trusts that CA and resolves
//! the name to 127.0.0.1, as `examples/web/browser-test.mjs` does.
//!
//! It runs against the local emulator, started in `main`, unless `AZURE_CLIENT_ID` is set:
//! then against Power BI with `AZURE_TENANT_ID`, `AZURE_CLIENT_SECRET`, `PBI_WORKSPACE_ID`,
//! `PBI_REPORT_ID`, `PBI_ROLES` (the users' role) and, for a dashboard, `PBI_DATASET_ID`.
//! `PBI_WEB_LISTEN` picks the address, `PBI_EMBED_LIFETIME_MINUTES` shortens the tokens and
//! `PBI_REFRESH_MARGIN_SECONDS` sets how long before expiry the page renews.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pbi_embed_emulator::{Emulator, Tls};
use pbi_embed_reqwest::{
    Client, ClientId, ClientSecret, DashboardId, DatasetId, EffectiveIdentity, EmbedRequest, ReportId,
    TenantId, TileId, WorkspaceId,
};
use serde_json::json;

const INDEX: &str = include_str!("../web/index.html");

/// What the app embeds: a report, and a dashboard and tile when there are some.
struct Target {
    workspace: WorkspaceId,
    report: ReportId,
    dashboard: Option<DashboardId>,
    tile: Option<TileId>,
    /// A dashboard's identity must name its datasets itself: these.
    datasets: Vec<DatasetId>,
}

struct App {
    client: Client,
    target: Target,
    /// The RLS identity of each user the app knows; a user without one is a mistake the
    /// pre-flight catches.
    users: HashMap<&'static str, Option<EffectiveIdentity>>,
    lifetime_minutes: Option<u32>,
    refresh_margin_seconds: u64,
    powerbi_js: PathBuf,
}

#[derive(serde::Deserialize)]
struct EmbedQuery {
    user: String,
    /// `report` (the default), `dashboard` or `tile`.
    #[serde(default)]
    kind: Option<String>,
}

async fn embed_config(State(app): State<Arc<App>>, Query(query): Query<EmbedQuery>) -> Response {
    let Some(identity) = app.users.get(query.user.as_str()) else {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": format!("unknown user {:?}", query.user)})),
        )
            .into_response();
    };
    let target = &app.target;
    let mut request = match (query.kind.as_deref(), &target.dashboard, &target.tile) {
        (None | Some("report"), _, _) => {
            EmbedRequest::report(target.workspace.clone(), target.report.clone())
        }
        (Some("dashboard"), Some(dashboard), _) => {
            EmbedRequest::dashboard(target.workspace.clone(), dashboard.clone())
        }
        (Some("tile"), Some(dashboard), Some(tile)) => {
            EmbedRequest::tile(target.workspace.clone(), dashboard.clone(), tile.clone())
        }
        (Some(kind @ ("dashboard" | "tile")), _, _) => {
            let error = format!("no {kind} to embed: set PBI_DASHBOARD_ID (and PBI_TILE_ID for a tile)");
            return (StatusCode::NOT_FOUND, Json(json!({ "error": error }))).into_response();
        }
        (Some(other), _, _) => {
            let error = format!("unknown kind {other:?}: report, dashboard or tile");
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
        }
    };
    if let Some(identity) = identity {
        let mut identity = identity.clone();
        // A report's and a tile's dataset come from their metadata; a dashboard's identity
        // must name the datasets itself: those of the configured identity.
        if query.kind.as_deref() == Some("dashboard") && identity.datasets.is_empty() {
            identity.datasets.clone_from(&target.datasets);
        }
        request = request.identity(identity);
    }
    if let Some(minutes) = app.lifetime_minutes {
        request = request.lifetime_in_minutes(minutes);
    }
    let config = app.client.embed_config(&request).await;
    match config {
        Ok(config) => {
            let mut body = serde_json::to_value(&config).unwrap_or_default();
            body["refreshMarginSeconds"] = json!(app.refresh_margin_seconds);
            Json(body).into_response()
        }
        Err(error) => {
            let status = if !error.was_sent() || error.status().is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::BAD_GATEWAY
            };
            (
                status,
                Json(json!({"error": error.to_string(), "kind": error.kind().to_string()})),
            )
                .into_response()
        }
    }
}

async fn powerbi_js(State(app): State<Arc<App>>) -> Response {
    match tokio::fs::read(&app.powerbi_js).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], bytes).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{} is missing: run `npm ci --prefix examples/web` first",
                app.powerbi_js.display()
            ),
        )
            .into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let required = |name: &str| env(name).ok_or_else(|| format!("{name} is not set"));
    let listen: SocketAddr = env("PBI_WEB_LISTEN")
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
        .parse()?;
    // Power BI when AZURE_CLIENT_ID is set; otherwise the local emulator, started here
    // (over HTTPS, with embed URLs under PBI_EMULATOR_TLS_NAME, when that is set).
    let emulator = match env("AZURE_CLIENT_ID") {
        Some(_) => None,
        None => {
            let builder = match env("PBI_EMULATOR_TLS_NAME") {
                Some(name) => Emulator::builder()
                    .tls(Tls::generated().name(name.as_str()))
                    .embed_host(name),
                None => Emulator::builder(),
            };
            let emulator = builder.start()?;
            if let (Some(path), Some(ca)) = (env("PBI_EMULATOR_CA_OUT"), emulator.ca_pem()) {
                std::fs::write(path, ca)?;
            }
            Some(emulator)
        }
    };
    // Each user's RLS role; mallory was never given an identity.
    let (client, target, roles) = if let Some(emulator) = &emulator {
        let ids = emulator.ids();
        let mut builder = Client::builder();
        if let Some(ca) = emulator.ca_pem() {
            // The emulator's own CA, trusted as well as Mozilla's roots.
            builder = builder.root_certificates_pem(ca);
        }
        let client = builder
            .api_base(emulator.base_url())
            .authority_host(emulator.base_url())
            .service_principal(
                TenantId::parse(&ids.tenant)?,
                ClientId::parse(&ids.client_id)?,
                ClientSecret::new(ids.client_secret),
            )
            .build()?;
        let target = Target {
            workspace: WorkspaceId::parse(&ids.workspace)?,
            report: ReportId::parse(&ids.rls_report)?,
            dashboard: Some(DashboardId::parse(&ids.dashboard)?),
            tile: Some(TileId::parse(&ids.tile)?),
            datasets: vec![DatasetId::parse(&ids.rls_dataset)?],
        };
        (client, target, (ids.rls_role, "Manager".to_owned()))
    } else {
        let client = Client::builder().service_principal_from_env()?.build()?;
        let target = Target {
            workspace: WorkspaceId::parse(&required("PBI_WORKSPACE_ID")?)?,
            report: ReportId::parse(&required("PBI_REPORT_ID")?)?,
            dashboard: env("PBI_DASHBOARD_ID")
                .map(|id| DashboardId::parse(&id))
                .transpose()?,
            tile: env("PBI_TILE_ID").map(|id| TileId::parse(&id)).transpose()?,
            datasets: env("PBI_DATASET_ID")
                .map(|id| DatasetId::parse(&id))
                .transpose()?
                .into_iter()
                .collect(),
        };
        let role = env("PBI_ROLES").and_then(|r| r.split(',').next().map(str::to_owned));
        let role = role.unwrap_or_else(|| "Region".to_owned());
        (client, target, (role.clone(), role))
    };
    let users = HashMap::from([
        (
            "alice",
            Some(EffectiveIdentity::new("alice@contoso.com").role(roles.0)),
        ),
        (
            "bob",
            Some(EffectiveIdentity::new("bob@contoso.com").role(roles.1)),
        ),
        ("mallory", None),
    ]);
    let app = Arc::new(App {
        client,
        users,
        lifetime_minutes: env("PBI_EMBED_LIFETIME_MINUTES").and_then(|m| m.parse().ok()),
        refresh_margin_seconds: env("PBI_REFRESH_MARGIN_SECONDS")
            .and_then(|m| m.parse().ok())
            .unwrap_or(10 * 60),
        powerbi_js: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("web/node_modules/powerbi-client/dist/powerbi.min.js"),
        target,
    });
    let router = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/powerbi.js", get(powerbi_js))
        .route("/api/embed", get(embed_config))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    if let Some(emulator) = &emulator {
        println!("emulator: {}", emulator.base_url());
    }
    println!("web app: http://{addr}/?user=alice");
    axum::serve(listener, router).await?;
    Ok(())
}
