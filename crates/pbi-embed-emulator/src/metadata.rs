//! The metadata reads: reports (and their pages), dashboards (and their tiles) and
//! datasets, one by id or a workspace's list (`{"@odata.context", "value": [...]}`), with
//! embed URLs pointing at the emulator's stand-in embed page: `/reportEmbed`, `/rdlEmbed`
//! for a paginated report, `/dashboardEmbed`, `/embed` for a tile, and a dataset's
//! `qnaEmbedURL` and `createReportEmbedURL`.

use http::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};

use crate::fixture::{Dashboard, Dataset, Report, Tile};
use crate::generate::{authenticate, member_workspace, percent_decoded};
use crate::reply::{Body, Rejection, json_response};
use crate::route::{Route, Target};
use crate::state::State;

/// Answers a metadata GET.
pub(crate) fn get(state: &State, target: &Target<'_>, headers: &HeaderMap) -> Response<Body> {
    try_get(state, target, headers).unwrap_or_else(Rejection::into_response)
}

fn try_get(state: &State, target: &Target<'_>, headers: &HeaderMap) -> Result<Response<Body>, Rejection> {
    let caller = authenticate(state, headers)?;
    let param = |i: usize| target.params.get(i).copied().unwrap_or_default();
    let workspace = member_workspace(state, &caller, param(0))?;
    let urls = Urls {
        base: &state.embed_base,
        group: workspace.id.to_ascii_lowercase(),
    };
    let list = |kind: &str, values: Vec<Value>| {
        json!({
            "@odata.context": format!("http://wabi-emulator.analysis.windows.net/v1.0/myorg/groups/{}/$metadata#{kind}", urls.group),
            "value": values,
        })
    };
    let body = match target.route {
        Route::ReportsGetReportInGroup => {
            urls.report(workspace.report(param(1)).ok_or_else(Rejection::not_found)?)
        }
        Route::ReportsGetReportsInGroup => list(
            "reports",
            workspace.reports.iter().map(|r| urls.report(r)).collect(),
        ),
        Route::ReportsGetPagesInGroup => {
            let report = workspace.report(param(1)).ok_or_else(Rejection::not_found)?;
            let pages = report.pages.iter().enumerate().map(
                |(order, page)| json!({"name": page.name, "displayName": page.display_name, "order": order}),
            );
            list("pages", pages.collect())
        }
        Route::DashboardsGetDashboardInGroup => {
            urls.dashboard(workspace.dashboard(param(1)).ok_or_else(Rejection::not_found)?)
        }
        Route::DashboardsGetDashboardsInGroup => list(
            "dashboards",
            workspace.dashboards.iter().map(|d| urls.dashboard(d)).collect(),
        ),
        Route::DashboardsGetTileInGroup => {
            let dashboard = workspace.dashboard(param(1)).ok_or_else(Rejection::not_found)?;
            urls.tile(
                dashboard,
                dashboard.tile(param(2)).ok_or_else(Rejection::not_found)?,
            )
        }
        Route::DashboardsGetTilesInGroup => {
            let dashboard = workspace.dashboard(param(1)).ok_or_else(Rejection::not_found)?;
            list(
                "tiles",
                dashboard.tiles.iter().map(|t| urls.tile(dashboard, t)).collect(),
            )
        }
        Route::DatasetsGetDatasetsInGroup => list(
            "datasets",
            workspace.datasets.iter().map(|d| urls.dataset(d)).collect(),
        ),
        _ => {
            let dataset = workspace
                .dataset(&percent_decoded(param(1)))
                .ok_or_else(Rejection::not_found)?;
            urls.dataset(dataset)
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// Builds each item's JSON, with URLs under the embed base and the workspace.
struct Urls<'a> {
    base: &'a str,
    group: String,
}

impl Urls<'_> {
    fn report(&self, report: &Report) -> Value {
        let (base, group) = (self.base, &self.group);
        let id = report.id.to_ascii_lowercase();
        let page = if report.report_type == "PaginatedReport" {
            "rdlEmbed"
        } else {
            "reportEmbed"
        };
        json!({
            "id": id,
            "reportType": report.report_type,
            "name": report.name,
            "webUrl": format!("{base}/groups/{group}/reports/{id}"),
            "embedUrl": format!("{base}/{page}?reportId={id}&groupId={group}"),
            "isOwnedByMe": false,
            "datasetId": report.dataset_id.to_ascii_lowercase(),
            "datasetWorkspaceId": group,
        })
    }

    fn dashboard(&self, dashboard: &Dashboard) -> Value {
        let (base, group) = (self.base, &self.group);
        let id = dashboard.id.to_ascii_lowercase();
        json!({
            "id": id,
            "displayName": dashboard.display_name,
            "isReadOnly": false,
            "webUrl": format!("{base}/groups/{group}/dashboards/{id}"),
            "embedUrl": format!("{base}/dashboardEmbed?dashboardId={id}&groupId={group}"),
        })
    }

    fn tile(&self, dashboard: &Dashboard, tile: &Tile) -> Value {
        let (base, group) = (self.base, &self.group);
        let (dash, id) = (dashboard.id.to_ascii_lowercase(), tile.id.to_ascii_lowercase());
        json!({
            "id": id,
            "title": tile.title,
            "rowSpan": 0,
            "colSpan": 0,
            "embedUrl": format!("{base}/embed?dashboardId={dash}&tileId={id}&groupId={group}"),
            "reportId": tile.report_id.as_deref().map(str::to_ascii_lowercase),
            "datasetId": tile.dataset_id.as_deref().map(str::to_ascii_lowercase),
        })
    }

    fn dataset(&self, dataset: &Dataset) -> Value {
        let (base, group) = (self.base, &self.group);
        let id = dataset.id.to_ascii_lowercase();
        json!({
            "id": id,
            "name": dataset.name,
            "addRowsAPIEnabled": false,
            "configuredBy": "emulator@contoso.com",
            "isRefreshable": true,
            "isEffectiveIdentityRequired": dataset.is_effective_identity_required,
            "isEffectiveIdentityRolesRequired": dataset.is_effective_identity_roles_required,
            "isOnPremGatewayRequired": false,
            "targetStorageMode": "Abf",
            "createReportEmbedURL": format!("{base}/reportEmbed?datasetId={id}&groupId={group}"),
            "qnaEmbedURL": format!("{base}/qnaEmbed?groupId={group}"),
        })
    }
}
