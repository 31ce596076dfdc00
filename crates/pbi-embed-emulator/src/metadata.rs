//! The four metadata reads: reports, dashboards, tiles and datasets, with their embed
//! URLs pointing at the emulator's stand-in embed page.

use http::{HeaderMap, Response, StatusCode};
use serde_json::json;

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
    let group = workspace.id.to_ascii_lowercase();
    let base = &state.embed_base;
    let body = match target.route {
        Route::ReportsGetReportInGroup => {
            let report = workspace.report(param(1)).ok_or_else(Rejection::not_found)?;
            let id = report.id.to_ascii_lowercase();
            json!({
                "id": id,
                "reportType": report.report_type,
                "name": report.name,
                "webUrl": format!("{base}/groups/{group}/reports/{id}"),
                "embedUrl": format!("{base}/reportEmbed?reportId={id}&groupId={group}"),
                "isOwnedByMe": false,
                "datasetId": report.dataset_id.to_ascii_lowercase(),
                "datasetWorkspaceId": group,
            })
        }
        Route::DashboardsGetDashboardInGroup => {
            let dashboard = workspace.dashboard(param(1)).ok_or_else(Rejection::not_found)?;
            let id = dashboard.id.to_ascii_lowercase();
            json!({
                "id": id,
                "displayName": dashboard.display_name,
                "isReadOnly": false,
                "webUrl": format!("{base}/groups/{group}/dashboards/{id}"),
                "embedUrl": format!("{base}/dashboardEmbed?dashboardId={id}&groupId={group}"),
            })
        }
        Route::DashboardsGetTileInGroup => {
            let dashboard = workspace.dashboard(param(1)).ok_or_else(Rejection::not_found)?;
            let tile = dashboard.tile(param(2)).ok_or_else(Rejection::not_found)?;
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
        _ => {
            let dataset = workspace
                .dataset(&percent_decoded(param(1)))
                .ok_or_else(Rejection::not_found)?;
            json!({
                "id": dataset.id.to_ascii_lowercase(),
                "name": dataset.name,
                "addRowsAPIEnabled": false,
                "configuredBy": "emulator@contoso.com",
                "isRefreshable": true,
                "isEffectiveIdentityRequired": dataset.is_effective_identity_required,
                "isEffectiveIdentityRolesRequired": dataset.is_effective_identity_roles_required,
                "isOnPremGatewayRequired": false,
                "targetStorageMode": "Abf",
            })
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}
