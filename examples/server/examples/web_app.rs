//! A web application that embeds a Power BI report for the signed-in user: a backend
//! endpoint returns an embed configuration for the user's row-level-security identity,
//! and a page loads `powerbi-client` (served locally from npm), embeds the report and
//! refreshes the token before it expires.
//!
//! ```sh
//! npm ci --prefix examples/web        # once: powerbi-client from the npm registry
//! cargo run -p pbi-embed-examples-server --example web_app
//! # open http://127.0.0.1:3000/?user=alice   (also: bob; mallory has no identity)
//! ```
//!
//! `&kind=` embeds another kind instead: `paginated` (`PBI_PAGINATED_REPORT_ID`),
//! `dashboard` (`PBI_DASHBOARD_ID`), `tile` (`PBI_TILE_ID`), `qna` and `create` (on
//! `PBI_DATASET_ID`), `visual` (`PBI_VISUAL=page/visual` of the report) and `reports` (the
//! report and `PBI_SECOND_REPORT_ID` side by side under one token). powerbi-client embeds
//! those only from https embed URLs on Power BI's host names: real Power BI, or the emulator over TLS with `PBI_EMULATOR_TLS_NAME=emu.powerbi.com`
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

const INDEX: &str = include_str!("../../web/index.html");

/// What the app embeds: a report, and the other kinds when it has what they need.
struct Target {
    workspace: WorkspaceId,
    report: ReportId,
    dashboard: Option<DashboardId>,
    tile: Option<TileId>,
    /// A paginated report.
    paginated: Option<ReportId>,
    /// The dataset Q&A and report authoring use.
    dataset: Option<DatasetId>,
    /// A visual of `report`: its page's name and its own.
    visual: Option<(String, String)>,
    /// Another report shown beside `report` under one token.
    second_report: Option<ReportId>,
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
    /// `report` (the default), `paginated`, `dashboard`, `tile`, `qna`, `visual`,
    /// `create` or `reports` (two reports under one token: `{"configs": [...]}`).
    #[serde(default)]
    kind: Option<String>,
}

/// A JSON error answer.
fn refuse(status: StatusCode, error: String) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
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
    let workspace = target.workspace.clone();
    let kind = query.kind.as_deref().unwrap_or("report");
    let missing = |what: &str| refuse(StatusCode::NOT_FOUND, format!("no {kind} to embed: set {what}"));
    let mut request = match kind {
        "report" => EmbedRequest::report(workspace, target.report.clone()),
        "paginated" => match &target.paginated {
            Some(report) => EmbedRequest::report(workspace, report.clone()),
            None => return missing("PBI_PAGINATED_REPORT_ID"),
        },
        "dashboard" => match &target.dashboard {
            Some(dashboard) => EmbedRequest::dashboard(workspace, dashboard.clone()),
            None => return missing("PBI_DASHBOARD_ID"),
        },
        "tile" => match (&target.dashboard, &target.tile) {
            (Some(dashboard), Some(tile)) => EmbedRequest::tile(workspace, dashboard.clone(), tile.clone()),
            _ => return missing("PBI_DASHBOARD_ID and PBI_TILE_ID"),
        },
        "qna" => match &target.dataset {
            Some(dataset) => EmbedRequest::qna(workspace, dataset.clone()).question("revenue by region"),
            None => return missing("PBI_DATASET_ID"),
        },
        "create" => match &target.dataset {
            Some(dataset) => EmbedRequest::create(workspace, dataset.clone()),
            None => return missing("PBI_DATASET_ID"),
        },
        "visual" => match &target.visual {
            Some((page, visual)) => EmbedRequest::visual(workspace, target.report.clone(), page, visual),
            None => return missing("PBI_VISUAL (page/visual)"),
        },
        "reports" => match &target.second_report {
            Some(second) => EmbedRequest::reports(workspace, [target.report.clone(), second.clone()]),
            None => return missing("PBI_SECOND_REPORT_ID"),
        },
        other => {
            let error = format!(
                "unknown kind {other:?}: report, paginated, dashboard, tile, qna, visual, create or reports"
            );
            return refuse(StatusCode::BAD_REQUEST, error);
        }
    };
    // An identity that names no dataset applies to the item's: the report's, the
    // dataset's, the RLS datasets of a dashboard's tiles or of several reports.
    if let Some(identity) = identity {
        request = request.identity(identity.clone());
    }
    if let Some(minutes) = app.lifetime_minutes {
        request = request.lifetime_in_minutes(minutes);
    }
    let configs = app.client.embed_configs(&request).await;
    match configs {
        Ok(configs) => {
            let with_margin = |config| {
                let mut body = serde_json::to_value(config).unwrap_or_default();
                body["refreshMarginSeconds"] = json!(app.refresh_margin_seconds);
                body
            };
            let mut bodies: Vec<_> = configs.iter().map(with_margin).collect();
            if kind == "reports" {
                return Json(json!({ "configs": bodies })).into_response();
            }
            Json(bodies.pop().unwrap_or_default()).into_response()
        }
        // A demo: the page shows the error (the RLS pre-flight's is the point). A
        // production app logs it and sends a status only, as the README's handler does.
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
        // The fixture's paginated report (the ids only list one of each kind).
        let paginated = emulator
            .fixture()
            .workspaces
            .iter()
            .flat_map(|w| &w.reports)
            .find(|r| r.report_type == "PaginatedReport")
            .map(|r| ReportId::parse(&r.id))
            .transpose()?;
        let target = Target {
            workspace: WorkspaceId::parse(&ids.workspace)?,
            report: ReportId::parse(&ids.rls_report)?,
            dashboard: Some(DashboardId::parse(&ids.dashboard)?),
            tile: Some(TileId::parse(&ids.tile)?),
            paginated,
            dataset: Some(DatasetId::parse(&ids.rls_dataset)?),
            visual: Some(("ReportSection".to_owned(), "revenueByRegion".to_owned())),
            second_report: Some(ReportId::parse(&ids.report)?),
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
            paginated: env("PBI_PAGINATED_REPORT_ID")
                .map(|id| ReportId::parse(&id))
                .transpose()?,
            dataset: env("PBI_DATASET_ID")
                .map(|id| DatasetId::parse(&id))
                .transpose()?,
            visual: env("PBI_VISUAL").and_then(|v| {
                v.split_once('/')
                    .map(|(page, visual)| (page.to_owned(), visual.to_owned()))
            }),
            second_report: env("PBI_SECOND_REPORT_ID")
                .map(|id| ReportId::parse(&id))
                .transpose()?,
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
            .join("../web/node_modules/powerbi-client/dist/powerbi.min.js"),
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
