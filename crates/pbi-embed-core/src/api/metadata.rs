//! The item metadata a browser needs: Reports GetReportInGroup and GetReportsInGroup,
//! Reports GetPagesInGroup, Dashboards GetDashboardInGroup and GetDashboardsInGroup,
//! Dashboards GetTileInGroup and GetTilesInGroup, Datasets GetDatasetInGroup and
//! GetDatasetsInGroup. A list answers `{"value": [...]}`.
//!
//! The embed URL comes from here, and a dataset's row-level-security flags, which
//! [`check_rls`](crate::check_rls) uses to catch identity mistakes before a token is
//! minted.

use http::Method;
use serde_json::{Map, Value};

use crate::api::request::ApiRequest;
use crate::wire::error::ExchangeError;
use crate::wire::ids::{DashboardId, DatasetId, ReportId, TileId, WorkspaceId};
use crate::wire::response::{json_object, required_str};

/// `reportType`: a Power BI report or a paginated (RDL) report.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportType {
    /// `PowerBIReport`.
    PowerBiReport,
    /// `PaginatedReport`.
    PaginatedReport,
    /// A value this crate does not know.
    Other(String),
}

/// `Report`: what GetReportInGroup returns (the fields embedding uses).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// `id`.
    pub id: ReportId,
    /// `name`.
    pub name: String,
    /// `embedUrl`: where the browser's `powerbi-client` loads the report from.
    pub embed_url: String,
    /// `datasetId`: the dataset it is bound to.
    pub dataset_id: Option<DatasetId>,
    /// `reportType` (a Power BI report when absent).
    pub report_type: ReportType,
    /// `webUrl`.
    pub web_url: Option<String>,
}

/// `Dashboard`: what GetDashboardInGroup returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dashboard {
    /// `id`.
    pub id: DashboardId,
    /// `displayName`.
    pub display_name: String,
    /// `embedUrl`.
    pub embed_url: String,
    /// `isReadOnly`.
    pub is_read_only: Option<bool>,
}

/// `Tile`: what GetTileInGroup returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tile {
    /// `id`.
    pub id: TileId,
    /// `title`.
    pub title: String,
    /// `embedUrl`.
    pub embed_url: String,
    /// `reportId`: the report the tile was pinned from, if any.
    pub report_id: Option<ReportId>,
    /// `datasetId`: the dataset it queries, if any.
    pub dataset_id: Option<DatasetId>,
}

/// `Dataset`: what GetDatasetInGroup returns (the fields embedding uses).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dataset {
    /// `id`.
    pub id: DatasetId,
    /// `name`.
    pub name: String,
    /// `isEffectiveIdentityRequired`: an embed token must carry an identity for it.
    pub is_effective_identity_required: bool,
    /// `isEffectiveIdentityRolesRequired`: that identity must carry roles.
    pub is_effective_identity_roles_required: bool,
    /// `isRefreshable`.
    pub is_refreshable: Option<bool>,
    /// `isOnPremGatewayRequired`.
    pub is_on_prem_gateway_required: Option<bool>,
    /// `configuredBy`.
    pub configured_by: Option<String>,
    /// `targetStorageMode`, for example `Abf` (import) or `PremiumFiles`.
    pub target_storage_mode: Option<String>,
    /// `createReportEmbedURL`: where `powerbi.createReport` authors a report on it.
    pub create_report_embed_url: Option<String>,
    /// `qnaEmbedURL`: where Q&A over it is embedded.
    pub qna_embed_url: Option<String>,
}

/// `Page`: a report page, from GetPagesInGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// `name`: what `pageName` in an embed configuration takes (e.g. `ReportSection1`).
    pub name: String,
    /// `displayName`: the label people see.
    pub display_name: String,
    /// `order` (the specification's example sends it as a string; both are read).
    pub order: Option<i64>,
}

/// Reports GetReportInGroup: `GET /v1.0/myorg/groups/{groupId}/reports/{reportId}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetReportInGroup {
    workspace: WorkspaceId,
    report: ReportId,
}

/// Dashboards GetDashboardInGroup: `GET /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetDashboardInGroup {
    workspace: WorkspaceId,
    dashboard: DashboardId,
}

/// Dashboards GetTileInGroup:
/// `GET /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}/tiles/{tileId}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetTileInGroup {
    workspace: WorkspaceId,
    dashboard: DashboardId,
    tile: TileId,
}

/// Datasets GetDatasetInGroup: `GET /v1.0/myorg/groups/{groupId}/datasets/{datasetId}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetDatasetInGroup {
    workspace: WorkspaceId,
    dataset: DatasetId,
}

/// Reports GetReportsInGroup: `GET /v1.0/myorg/groups/{groupId}/reports`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetReportsInGroup {
    workspace: WorkspaceId,
}

/// Reports GetPagesInGroup: `GET /v1.0/myorg/groups/{groupId}/reports/{reportId}/pages`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetPagesInGroup {
    workspace: WorkspaceId,
    report: ReportId,
}

/// Dashboards GetDashboardsInGroup: `GET /v1.0/myorg/groups/{groupId}/dashboards`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetDashboardsInGroup {
    workspace: WorkspaceId,
}

/// Dashboards GetTilesInGroup: `GET /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}/tiles`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetTilesInGroup {
    workspace: WorkspaceId,
    dashboard: DashboardId,
}

/// Datasets GetDatasetsInGroup: `GET /v1.0/myorg/groups/{groupId}/datasets`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct GetDatasetsInGroup {
    workspace: WorkspaceId,
}

impl GetReportsInGroup {
    /// The reports in `workspace`.
    pub fn new(workspace: WorkspaceId) -> Self {
        Self { workspace }
    }
}

impl GetPagesInGroup {
    /// The pages of `report` in `workspace`.
    pub fn new(workspace: WorkspaceId, report: ReportId) -> Self {
        Self { workspace, report }
    }
}

impl GetDashboardsInGroup {
    /// The dashboards in `workspace`.
    pub fn new(workspace: WorkspaceId) -> Self {
        Self { workspace }
    }
}

impl GetTilesInGroup {
    /// The tiles of `dashboard` in `workspace`.
    pub fn new(workspace: WorkspaceId, dashboard: DashboardId) -> Self {
        Self { workspace, dashboard }
    }
}

impl GetDatasetsInGroup {
    /// The datasets in `workspace`.
    pub fn new(workspace: WorkspaceId) -> Self {
        Self { workspace }
    }
}

impl GetReportInGroup {
    /// The report `report` in `workspace`.
    pub fn new(workspace: WorkspaceId, report: ReportId) -> Self {
        Self { workspace, report }
    }
}

impl GetDashboardInGroup {
    /// The dashboard `dashboard` in `workspace`.
    pub fn new(workspace: WorkspaceId, dashboard: DashboardId) -> Self {
        Self { workspace, dashboard }
    }
}

impl GetTileInGroup {
    /// The tile `tile` of `dashboard` in `workspace`.
    pub fn new(workspace: WorkspaceId, dashboard: DashboardId, tile: TileId) -> Self {
        Self {
            workspace,
            dashboard,
            tile,
        }
    }
}

impl GetDatasetInGroup {
    /// The dataset `dataset` in `workspace`.
    pub fn new(workspace: WorkspaceId, dataset: DatasetId) -> Self {
        Self { workspace, dataset }
    }
}

/// A field by its camelCase name, also accepting other casings (the spec spells some
/// dataset fields in PascalCase).
fn field<'m>(object: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn optional_str(object: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match field(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("the field `{name}` is not a string")),
    }
}

fn optional_bool(object: &Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match field(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("the field `{name}` is not a boolean")),
    }
}

fn id<T>(
    object: &Map<String, Value>,
    name: &str,
    parse: fn(&str) -> Result<T, ExchangeError>,
) -> Result<T, String> {
    let text = field(object, name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the field `{name}` is missing or not a string"))?;
    parse(text).map_err(|_| format!("the field `{name}` is not a valid id"))
}

fn optional_id<T>(
    object: &Map<String, Value>,
    name: &str,
    parse: fn(&str) -> Result<T, ExchangeError>,
) -> Result<Option<T>, String> {
    match optional_str(object, name)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => parse(&text)
            .map(Some)
            .map_err(|_| format!("the field `{name}` is not a valid id")),
    }
}

/// `embedUrl`: required, an absolute http(s) URL.
fn embed_url(object: &Map<String, Value>) -> Result<String, String> {
    optional_url(object, "embedUrl")?.ok_or_else(|| "the field `embedUrl` is missing".to_owned())
}

/// An optional absolute http(s) URL.
fn optional_url(object: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match optional_str(object, name)? {
        None => Ok(None),
        Some(text) => match url::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(Some(text)),
            _ => Err(format!("the field `{name}` is not an http(s) URL")),
        },
    }
}

/// A list's items: `{"value": [...]}`, each parsed by `item`. The reason names the item
/// at fault by position and never quotes the body.
fn list<T>(body: &[u8], item: fn(&Map<String, Value>) -> Result<T, String>) -> Result<Vec<T>, String> {
    let object = json_object(body)?;
    let Some(Value::Array(values)) = object.get("value") else {
        return Err("the field `value` is missing or not an array".to_owned());
    };
    values
        .iter()
        .enumerate()
        .map(|(i, value)| match value {
            Value::Object(o) => item(o).map_err(|e| format!("item {i} of `value`: {e}")),
            _ => Err(format!("item {i} of `value` is not an object")),
        })
        .collect()
}

/// The parts every metadata GET shares.
macro_rules! get_request {
    ($name:ident, $operation:literal, $output:ident, $what:literal) => {
        get_request!($name, $operation, $output, $what, $output::from_json);
    };
    ($name:ident, $operation:literal, $output:ty, $what:literal, $parse:expr) => {
        impl ApiRequest for $name {
            type Output = $output;

            fn operation_id(&self) -> &'static str {
                $operation
            }
            fn output_name(&self) -> &'static str {
                $what
            }
            fn method(&self) -> Method {
                Method::GET
            }
            fn path(&self) -> String {
                self.path_below_api()
            }
            fn validate(&self) -> Result<(), ExchangeError> {
                Ok(())
            }
            fn body(&self) -> Result<Option<Vec<u8>>, ExchangeError> {
                Ok(None)
            }
            fn parse_success(&self, body: &[u8]) -> Result<$output, String> {
                $parse(body)
            }
        }
    };
}

impl GetReportInGroup {
    fn path_below_api(&self) -> String {
        self.workspace.path(&["/reports/", self.report.as_str()])
    }
}
impl GetDashboardInGroup {
    fn path_below_api(&self) -> String {
        self.workspace.path(&["/dashboards/", self.dashboard.as_str()])
    }
}
impl GetTileInGroup {
    fn path_below_api(&self) -> String {
        self.workspace.path(&[
            "/dashboards/",
            self.dashboard.as_str(),
            "/tiles/",
            self.tile.as_str(),
        ])
    }
}
impl GetDatasetInGroup {
    fn path_below_api(&self) -> String {
        self.workspace.path(&["/datasets/", &self.dataset.path_segment()])
    }
}

impl GetReportsInGroup {
    fn path_below_api(&self) -> String {
        self.workspace.path(&["/reports"])
    }
}
impl GetPagesInGroup {
    fn path_below_api(&self) -> String {
        self.workspace
            .path(&["/reports/", self.report.as_str(), "/pages"])
    }
}
impl GetDashboardsInGroup {
    fn path_below_api(&self) -> String {
        self.workspace.path(&["/dashboards"])
    }
}
impl GetTilesInGroup {
    fn path_below_api(&self) -> String {
        self.workspace
            .path(&["/dashboards/", self.dashboard.as_str(), "/tiles"])
    }
}
impl GetDatasetsInGroup {
    fn path_below_api(&self) -> String {
        self.workspace.path(&["/datasets"])
    }
}

get_request!(GetReportInGroup, "Reports_GetReportInGroup", Report, "Report");
get_request!(
    GetReportsInGroup,
    "Reports_GetReportsInGroup",
    Vec<Report>,
    "Reports",
    |b| list(b, Report::from_object)
);
get_request!(
    GetPagesInGroup,
    "Reports_GetPagesInGroup",
    Vec<Page>,
    "Pages",
    |b| list(b, Page::from_object)
);
get_request!(
    GetDashboardsInGroup,
    "Dashboards_GetDashboardsInGroup",
    Vec<Dashboard>,
    "Dashboards",
    |b| list(b, Dashboard::from_object)
);
get_request!(
    GetTilesInGroup,
    "Dashboards_GetTilesInGroup",
    Vec<Tile>,
    "Tiles",
    Self::parse_list
);

impl GetTilesInGroup {
    /// Parses a successful body: the tiles.
    pub(crate) fn parse_list(body: &[u8]) -> Result<Vec<Tile>, String> {
        list(body, Tile::from_object)
    }
}
get_request!(
    GetDatasetsInGroup,
    "Datasets_GetDatasetsInGroup",
    Vec<Dataset>,
    "Datasets",
    |b| list(b, Dataset::from_object)
);
get_request!(
    GetDashboardInGroup,
    "Dashboards_GetDashboardInGroup",
    Dashboard,
    "Dashboard"
);
get_request!(GetTileInGroup, "Dashboards_GetTileInGroup", Tile, "Tile");
get_request!(
    GetDatasetInGroup,
    "Datasets_GetDatasetInGroup",
    Dataset,
    "Dataset"
);

impl Report {
    /// Parses a successful body. The reason never quotes it.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, String> {
        Self::from_object(&json_object(body)?)
    }

    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        Ok(Self {
            id: id(o, "id", ReportId::parse)?,
            name: optional_str(o, "name")?.unwrap_or_default(),
            embed_url: embed_url(o)?,
            dataset_id: optional_id(o, "datasetId", DatasetId::parse)?,
            report_type: match optional_str(o, "reportType")?.as_deref() {
                None | Some("PowerBIReport") => ReportType::PowerBiReport,
                Some("PaginatedReport") => ReportType::PaginatedReport,
                Some(other) => ReportType::Other(other.to_owned()),
            },
            web_url: optional_str(o, "webUrl")?,
        })
    }
}

impl Dashboard {
    /// Parses a successful body. The reason never quotes it.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, String> {
        Self::from_object(&json_object(body)?)
    }

    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        Ok(Self {
            id: id(o, "id", DashboardId::parse)?,
            display_name: optional_str(o, "displayName")?.unwrap_or_default(),
            embed_url: embed_url(o)?,
            is_read_only: optional_bool(o, "isReadOnly")?,
        })
    }
}

impl Tile {
    /// Parses a successful body. The reason never quotes it.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, String> {
        Self::from_object(&json_object(body)?)
    }

    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        Ok(Self {
            id: id(o, "id", TileId::parse)?,
            title: optional_str(o, "title")?.unwrap_or_default(),
            embed_url: embed_url(o)?,
            report_id: optional_id(o, "reportId", ReportId::parse)?,
            dataset_id: optional_id(o, "datasetId", DatasetId::parse)?,
        })
    }
}

impl Dataset {
    /// Parses a successful body. The reason never quotes it.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, String> {
        Self::from_object(&json_object(body)?)
    }

    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        let flag =
            |name: &str| optional_bool(o, name)?.ok_or_else(|| format!("the field `{name}` is missing"));
        Ok(Self {
            id: DatasetId::parse(required_str(o, "id")?)
                .map_err(|_| "the field `id` is not a valid id".to_owned())?,
            name: optional_str(o, "name")?.unwrap_or_default(),
            is_effective_identity_required: flag("isEffectiveIdentityRequired")?,
            is_effective_identity_roles_required: flag("isEffectiveIdentityRolesRequired")?,
            is_refreshable: optional_bool(o, "isRefreshable")?,
            is_on_prem_gateway_required: optional_bool(o, "isOnPremGatewayRequired")?,
            configured_by: optional_str(o, "configuredBy")?,
            target_storage_mode: optional_str(o, "targetStorageMode")?,
            create_report_embed_url: optional_url(o, "createReportEmbedURL")?,
            qna_embed_url: optional_url(o, "qnaEmbedURL")?,
        })
    }
}

impl Page {
    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        let order = match field(o, "order") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_i64().ok_or("the field `order` is not an integer")?),
            Some(Value::String(s)) => Some(
                s.trim()
                    .parse()
                    .map_err(|_| "the field `order` is not an integer")?,
            ),
            Some(_) => return Err("the field `order` is not an integer".to_owned()),
        };
        Ok(Self {
            name: required_str(o, "name")?.to_owned(),
            display_name: optional_str(o, "displayName")?.unwrap_or_default(),
            order,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_examples_parse() {
        let dataset = GetDatasetInGroup::new(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229").unwrap(),
        );
        let parsed = dataset
            .parse_success(br#"{"id": "cfafbeb1-8037-4d0c-896e-a46fb27ff229", "name": "SalesMarketing", "addRowsAPIEnabled": false, "configuredBy": "john@contoso.com", "isRefreshable": true, "isEffectiveIdentityRequired": true, "isEffectiveIdentityRolesRequired": true, "isOnPremGatewayRequired": false, "targetStorageMode": "Abf"}"#)
            .unwrap();
        assert!(parsed.is_effective_identity_required && parsed.is_effective_identity_roles_required);
        assert_eq!(parsed.target_storage_mode.as_deref(), Some("Abf"));
        let pascal = dataset
            .parse_success(
                br#"{"id":"x","IsEffectiveIdentityRequired":false,"IsEffectiveIdentityRolesRequired":false}"#,
            )
            .unwrap();
        assert!(!pascal.is_effective_identity_required);
        assert_eq!(
            dataset.path(),
            "/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/datasets/cfafbeb1-8037-4d0c-896e-a46fb27ff229"
        );

        let report = GetReportInGroup::new(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap(),
        );
        let parsed = report
            .parse_success(br#"{"datasetId": "cfafbeb1-8037-4d0c-896e-a46fb27ff229", "id": "5b218778-e7a5-4d73-8187-f10824047715", "name": "SalesMarketing", "webUrl": "https://app.powerbi.com/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/reports/5b218778-e7a5-4d73-8187-f10824047715", "embedUrl": "https://app.powerbi.com/reportEmbed?reportId=5b218778-e7a5-4d73-8187-f10824047715&groupId=f089354e-8366-4e18-aea3-4cb4a3a50b48"}"#)
            .unwrap();
        assert_eq!(parsed.report_type, ReportType::PowerBiReport);
        assert!(
            parsed
                .embed_url
                .starts_with("https://app.powerbi.com/reportEmbed?")
        );
        assert_eq!(report.method(), Method::GET);

        let tile = GetTileInGroup::new(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap(),
            TileId::parse("312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b").unwrap(),
        );
        let parsed = tile
            .parse_success(br#"{"id": "312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b", "title": "SalesMarketingTile", "embedUrl": "https://app.powerbi.com/embed?dashboardId=69ffaa6c-b36d-4d01-96f5-1ed67c64d4af&tileId=312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b&groupId=f089354e-8366-4e18-aea3-4cb4a3a50b48", "rowSpan": 0, "colSpan": 0, "reportId": "5b218778-e7a5-4d73-8187-f10824047715", "datasetId": "cfafbeb1-8037-4d0c-896e-a46fb27ff229"}"#)
            .unwrap();
        assert!(parsed.report_id.is_some() && parsed.dataset_id.is_some());

        let dashboard = GetDashboardInGroup::new(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap(),
        );
        let parsed = dashboard
            .parse_success(br#"{"id": "69ffaa6c-b36d-4d01-96f5-1ed67c64d4af", "displayName": "SalesMarketing", "embedUrl": "https://app.powerbi.com/dashboardEmbed?dashboardId=69ffaa6c-b36d-4d01-96f5-1ed67c64d4af&groupId=f089354e-8366-4e18-aea3-4cb4a3a50b48", "isReadOnly": false}"#)
            .unwrap();
        assert_eq!(parsed.display_name, "SalesMarketing");
    }

    #[test]
    fn malformed_metadata() {
        let report = GetReportInGroup::new(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap(),
        );
        for (body, want) in [
            (
                r#"{"id":"5b218778-e7a5-4d73-8187-f10824047715"}"#,
                "`embedUrl` is missing",
            ),
            (
                r#"{"id":"nope","embedUrl":"https://x"}"#,
                "`id` is not a valid id",
            ),
            (
                r#"{"id":"5b218778-e7a5-4d73-8187-f10824047715","embedUrl":"javascript:alert(1)"}"#,
                "not an http(s) URL",
            ),
        ] {
            assert!(
                report.parse_success(body.as_bytes()).unwrap_err().contains(want),
                "{body}"
            );
        }
    }

    fn workspace() -> WorkspaceId {
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap()
    }

    #[test]
    fn lists_parse_from_the_specifications_examples() {
        let reports = GetReportsInGroup::new(workspace());
        assert_eq!(
            reports.path(),
            "/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/reports"
        );
        let parsed = reports
            .parse_success(br#"{"value": [{"datasetId": "cfafbeb1-8037-4d0c-896e-a46fb27ff229", "id": "5b218778-e7a5-4d73-8187-f10824047715", "name": "SalesMarketing", "embedUrl": "https://app.powerbi.com/reportEmbed?reportId=5b218778-e7a5-4d73-8187-f10824047715&groupId=f089354e-8366-4e18-aea3-4cb4a3a50b48", "reportType": "PowerBIReport"}, {"id": "6b218778-e7a5-4d73-8187-f10824047715", "name": "Invoice", "embedUrl": "https://app.powerbi.com/rdlEmbed?reportId=6b218778-e7a5-4d73-8187-f10824047715", "reportType": "PaginatedReport"}]}"#)
            .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].report_type, ReportType::PaginatedReport);
        assert_eq!(parsed[1].dataset_id, None);

        let pages = GetPagesInGroup::new(
            workspace(),
            ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap(),
        );
        assert!(
            pages
                .path()
                .ends_with("/reports/5b218778-e7a5-4d73-8187-f10824047715/pages")
        );
        let parsed = pages
            .parse_success(br#"{"value": [{"displayName": "Regional Sales Analysis", "name": "ReportSection", "order": "0"}, {"displayName": "Geographic Analysis", "name": "ReportSection1", "order": 1}]}"#)
            .unwrap();
        assert_eq!(
            (parsed[0].name.as_str(), parsed[0].order),
            ("ReportSection", Some(0))
        );
        assert_eq!(parsed[1].order, Some(1));

        let datasets = GetDatasetsInGroup::new(workspace());
        let parsed = datasets
            .parse_success(br#"{"value": [{"id": "cfafbeb1-8037-4d0c-896e-a46fb27ff229", "name": "SalesMarketing", "isEffectiveIdentityRequired": false, "isEffectiveIdentityRolesRequired": false, "CreateReportEmbedURL": "https://app.powerbi.com/reportEmbed?config=e30", "QnaEmbedURL": "https://app.powerbi.com/qnaEmbed?config=e30"}]}"#)
            .unwrap();
        assert!(
            parsed[0]
                .create_report_embed_url
                .as_deref()
                .unwrap()
                .contains("reportEmbed")
        );
        assert!(parsed[0].qna_embed_url.as_deref().unwrap().contains("qnaEmbed"));

        let dashboards = GetDashboardsInGroup::new(workspace());
        assert!(dashboards.parse_success(br#"{"value": []}"#).unwrap().is_empty());
        let tiles = GetTilesInGroup::new(
            workspace(),
            DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap(),
        );
        assert!(
            tiles
                .path()
                .ends_with("/dashboards/69ffaa6c-b36d-4d01-96f5-1ed67c64d4af/tiles")
        );
        assert_eq!(tiles.operation_id(), "Dashboards_GetTilesInGroup");
    }

    #[test]
    fn malformed_lists_name_the_item() {
        let reports = GetReportsInGroup::new(workspace());
        for (body, want) in [
            (r#"{}"#, "`value` is missing"),
            (r#"{"value": {}}"#, "`value` is missing or not an array"),
            (r#"{"value": [1]}"#, "item 0 of `value` is not an object"),
            (
                r#"{"value": [{"id": "nope", "embedUrl": "https://x"}]}"#,
                "item 0 of `value`: the field `id`",
            ),
        ] {
            let error = reports.parse_success(body.as_bytes()).unwrap_err();
            assert!(error.contains(want), "{body}: {error}");
        }
        let pages = GetPagesInGroup::new(
            workspace(),
            ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap(),
        );
        assert!(
            pages
                .parse_success(br#"{"value": [{"name": "p", "order": "first"}]}"#)
                .is_err()
        );
        let datasets = GetDatasetsInGroup::new(workspace());
        let bad_url = br#"{"value": [{"id": "d", "isEffectiveIdentityRequired": false, "isEffectiveIdentityRolesRequired": false, "qnaEmbedURL": "javascript:x"}]}"#;
        assert!(
            datasets
                .parse_success(bad_url)
                .unwrap_err()
                .contains("qnaEmbedURL")
        );
    }
}
