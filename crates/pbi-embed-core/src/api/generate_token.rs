//! The six GenerateToken operations.
//!
//! | type | REST operation | route |
//! |---|---|---|
//! | [`ReportToken`] | Reports GenerateTokenInGroup | `POST /v1.0/myorg/groups/{groupId}/reports/{reportId}/GenerateToken` |
//! | [`CreateReportToken`] | Reports GenerateTokenForCreateInGroup | `POST /v1.0/myorg/groups/{groupId}/reports/GenerateToken` |
//! | [`DashboardToken`] | Dashboards GenerateTokenInGroup | `POST /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}/GenerateToken` |
//! | [`TileToken`] | Tiles GenerateTokenInGroup | `POST /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}/tiles/{tileId}/GenerateToken` |
//! | [`DatasetToken`] | Datasets GenerateTokenInGroup | `POST /v1.0/myorg/groups/{groupId}/datasets/{datasetId}/GenerateToken` |
//! | [`MultiResourceToken`] | Embed Token GenerateToken | `POST /v1.0/myorg/GenerateToken` |
//!
//! The single-item operations share one type, [`GenerateToken`], over a route. Their
//! constructors only offer what the route takes: `Edit` only for reports, `Create` and a
//! dataset only on the create route, `allowSaveAs` only for reports. Dashboards take any
//! number of identities, the other single-item routes one. The "My workspace" routes are
//! not offered: the API removed them.

use std::fmt;

use http::Method;

use crate::api::embed_token::EmbedToken;
use crate::api::identity::{DatasourceIdentity, EffectiveIdentity};
use crate::api::request::ApiRequest;
use crate::api::token_request::{
    GenerateTokenRequest, GenerateTokenRequestV2, GenerateTokenRequestV2Dataset,
    GenerateTokenRequestV2Report, GenerateTokenRequestV2TargetWorkspace, TokenAccessLevel, XmlaPermissions,
    validate_common,
};
use crate::wire::error::ExchangeError;
use crate::wire::ids::{DashboardId, DatasetId, ReportId, TileId, WorkspaceId};

mod sealed {
    pub trait Sealed {}
}

/// Where a single-item GenerateToken call goes, and what that route accepts.
/// Implemented by the five route types of this module only.
pub trait TokenRoute: sealed::Sealed + Clone + fmt::Debug {
    /// The REST operation id.
    const OPERATION_ID: &'static str;

    /// How many identities the route takes (`None`: any number).
    const MAX_IDENTITIES: Option<usize>;
    /// The access levels the route takes.
    const ACCESS_LEVELS: &'static [&'static str];
    /// Whether the route takes `allowSaveAs`.
    const ALLOWS_SAVE_AS: bool;
    /// Whether the route requires `datasetId` (and others refuse it).
    const REQUIRES_DATASET_ID: bool;

    /// The path below the API base.
    fn path(&self) -> String;
}

/// Route of Reports GenerateTokenInGroup: a report to view or edit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportRoute {
    /// The report's workspace.
    pub workspace: WorkspaceId,
    /// The report.
    pub report: ReportId,
}

/// Route of Reports GenerateTokenForCreateInGroup: a new report in a workspace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CreateReportRoute {
    /// The workspace the report is created in.
    pub workspace: WorkspaceId,
}

/// Route of Dashboards GenerateTokenInGroup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DashboardRoute {
    /// The dashboard's workspace.
    pub workspace: WorkspaceId,
    /// The dashboard.
    pub dashboard: DashboardId,
}

/// Route of Tiles GenerateTokenInGroup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TileRoute {
    /// The dashboard's workspace.
    pub workspace: WorkspaceId,
    /// The dashboard the tile is on.
    pub dashboard: DashboardId,
    /// The tile.
    pub tile: TileId,
}

/// Route of Datasets GenerateTokenInGroup (for Q&A embedding).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DatasetRoute {
    /// The dataset's workspace.
    pub workspace: WorkspaceId,
    /// The dataset.
    pub dataset: DatasetId,
}

impl sealed::Sealed for ReportRoute {}
impl TokenRoute for ReportRoute {
    const OPERATION_ID: &'static str = "Reports_GenerateTokenInGroup";
    fn path(&self) -> String {
        self.workspace
            .path(&["/reports/", self.report.as_str(), "/GenerateToken"])
    }
    const MAX_IDENTITIES: Option<usize> = Some(1);
    const ACCESS_LEVELS: &'static [&'static str] = &["View", "Edit"];
    const ALLOWS_SAVE_AS: bool = true;
    const REQUIRES_DATASET_ID: bool = false;
}

impl sealed::Sealed for CreateReportRoute {}
impl TokenRoute for CreateReportRoute {
    const OPERATION_ID: &'static str = "Reports_GenerateTokenForCreateInGroup";
    fn path(&self) -> String {
        self.workspace.path(&["/reports/GenerateToken"])
    }
    const MAX_IDENTITIES: Option<usize> = Some(1);
    const ACCESS_LEVELS: &'static [&'static str] = &["Create"];
    const ALLOWS_SAVE_AS: bool = true;
    const REQUIRES_DATASET_ID: bool = true;
}

impl sealed::Sealed for DashboardRoute {}
impl TokenRoute for DashboardRoute {
    const OPERATION_ID: &'static str = "Dashboards_GenerateTokenInGroup";
    fn path(&self) -> String {
        self.workspace
            .path(&["/dashboards/", self.dashboard.as_str(), "/GenerateToken"])
    }
    const MAX_IDENTITIES: Option<usize> = None;
    const ACCESS_LEVELS: &'static [&'static str] = &["View"];
    const ALLOWS_SAVE_AS: bool = false;
    const REQUIRES_DATASET_ID: bool = false;
}

impl sealed::Sealed for TileRoute {}
impl TokenRoute for TileRoute {
    const OPERATION_ID: &'static str = "Tiles_GenerateTokenInGroup";
    fn path(&self) -> String {
        self.workspace.path(&[
            "/dashboards/",
            self.dashboard.as_str(),
            "/tiles/",
            self.tile.as_str(),
            "/GenerateToken",
        ])
    }
    const MAX_IDENTITIES: Option<usize> = Some(1);
    const ACCESS_LEVELS: &'static [&'static str] = &["View"];
    const ALLOWS_SAVE_AS: bool = false;
    const REQUIRES_DATASET_ID: bool = false;
}

impl sealed::Sealed for DatasetRoute {}
impl TokenRoute for DatasetRoute {
    const OPERATION_ID: &'static str = "Datasets_GenerateTokenInGroup";
    fn path(&self) -> String {
        self.workspace
            .path(&["/datasets/", &self.dataset.path_segment(), "/GenerateToken"])
    }
    const MAX_IDENTITIES: Option<usize> = Some(1);
    const ACCESS_LEVELS: &'static [&'static str] = &["View"];
    const ALLOWS_SAVE_AS: bool = false;
    const REQUIRES_DATASET_ID: bool = false;
}

/// A single-item GenerateToken call: a route and its [`GenerateTokenRequest`] body.
/// Use the aliases: [`ReportToken`], [`CreateReportToken`], [`DashboardToken`],
/// [`TileToken`], [`DatasetToken`].
#[derive(Clone, Debug)]
#[must_use]
pub struct GenerateToken<R> {
    route: R,
    body: GenerateTokenRequest,
}

/// Reports GenerateTokenInGroup: view or edit a report.
pub type ReportToken = GenerateToken<ReportRoute>;
/// Reports GenerateTokenForCreateInGroup: create a report from a dataset.
pub type CreateReportToken = GenerateToken<CreateReportRoute>;
/// Dashboards GenerateTokenInGroup: view a dashboard.
pub type DashboardToken = GenerateToken<DashboardRoute>;
/// Tiles GenerateTokenInGroup: view one tile of a dashboard.
pub type TileToken = GenerateToken<TileRoute>;
/// Datasets GenerateTokenInGroup: Q&A over a dataset.
pub type DatasetToken = GenerateToken<DatasetRoute>;

impl<R: TokenRoute> GenerateToken<R> {
    fn with_level(route: R, level: TokenAccessLevel) -> Self {
        Self {
            route,
            body: GenerateTokenRequest {
                access_level: Some(level),
                ..GenerateTokenRequest::default()
            },
        }
    }

    /// Adds an RLS identity. Only dashboards take more than one.
    pub fn identity(mut self, identity: EffectiveIdentity) -> Self {
        self.body.identities.push(identity);
        self
    }

    /// Adds RLS identities. Only dashboards take more than one.
    pub fn identities(mut self, identities: impl IntoIterator<Item = EffectiveIdentity>) -> Self {
        self.body.identities.extend(identities);
        self
    }

    /// Shortens the token's lifetime to at most `minutes` (0: Power BI's default).
    pub fn lifetime_in_minutes(mut self, minutes: u32) -> Self {
        self.body.lifetime_in_minutes = Some(minutes);
        self
    }

    /// The route.
    #[must_use]
    pub fn route(&self) -> &R {
        &self.route
    }

    /// The request body as it will be sent.
    #[must_use]
    pub fn request_body(&self) -> &GenerateTokenRequest {
        &self.body
    }
}

impl ReportToken {
    /// A token to view a report.
    pub fn view(workspace: WorkspaceId, report: ReportId) -> Self {
        Self::with_level(ReportRoute { workspace, report }, TokenAccessLevel::View)
    }

    /// A token to view and edit a report.
    pub fn edit(workspace: WorkspaceId, report: ReportId) -> Self {
        Self::with_level(ReportRoute { workspace, report }, TokenAccessLevel::Edit)
    }

    /// Lets the embedded report be saved as a new report (needs Content.Create).
    pub fn allow_save_as(mut self, allow: bool) -> Self {
        self.body.allow_save_as = Some(allow);
        self
    }
}

impl CreateReportToken {
    /// A token to create a report in `workspace` from `dataset`.
    pub fn new(workspace: WorkspaceId, dataset: DatasetId) -> Self {
        let mut op = Self::with_level(CreateReportRoute { workspace }, TokenAccessLevel::Create);
        op.body.dataset_id = Some(dataset);
        op
    }

    /// Lets the new report be saved as another report too.
    pub fn allow_save_as(mut self, allow: bool) -> Self {
        self.body.allow_save_as = Some(allow);
        self
    }
}

impl DashboardToken {
    /// A token to view a dashboard.
    pub fn new(workspace: WorkspaceId, dashboard: DashboardId) -> Self {
        Self::with_level(DashboardRoute { workspace, dashboard }, TokenAccessLevel::View)
    }
}

impl TileToken {
    /// A token to view one tile.
    pub fn new(workspace: WorkspaceId, dashboard: DashboardId, tile: TileId) -> Self {
        Self::with_level(
            TileRoute {
                workspace,
                dashboard,
                tile,
            },
            TokenAccessLevel::View,
        )
    }
}

impl DatasetToken {
    /// A token for Q&A over a dataset.
    pub fn new(workspace: WorkspaceId, dataset: DatasetId) -> Self {
        Self::with_level(DatasetRoute { workspace, dataset }, TokenAccessLevel::View)
    }
}

impl<R: TokenRoute> ApiRequest for GenerateToken<R> {
    type Output = EmbedToken;

    fn operation_id(&self) -> &'static str {
        R::OPERATION_ID
    }
    fn output_name(&self) -> &'static str {
        "EmbedToken"
    }
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> String {
        self.route.path()
    }

    fn validate(&self) -> Result<(), ExchangeError> {
        let body = &self.body;
        if let Some(level) = &body.access_level {
            let known = matches!(
                level,
                TokenAccessLevel::View | TokenAccessLevel::Edit | TokenAccessLevel::Create
            );
            if known && !R::ACCESS_LEVELS.contains(&level.as_str()) {
                return Err(ExchangeError::invalid_input(
                    "accessLevel",
                    format!(
                        "{level} is not allowed here; this route takes {}",
                        R::ACCESS_LEVELS.join(" or ")
                    ),
                ));
            }
        }
        if body.allow_save_as.is_some() && !R::ALLOWS_SAVE_AS {
            return Err(ExchangeError::invalid_input(
                "allowSaveAs",
                "applies to reports only",
            ));
        }
        match (&body.dataset_id, R::REQUIRES_DATASET_ID) {
            (None, true) => {
                return Err(ExchangeError::invalid_input(
                    "datasetId",
                    "is required to create a report",
                ));
            }
            (Some(_), false) => {
                return Err(ExchangeError::invalid_input(
                    "datasetId",
                    "applies to the create-report route only",
                ));
            }
            _ => {}
        }
        validate_common(&body.identities, R::MAX_IDENTITIES)
    }

    fn body(&self) -> Result<Option<Vec<u8>>, ExchangeError> {
        serialize(&self.body)
    }

    fn parse_success(&self, body: &[u8]) -> Result<EmbedToken, String> {
        EmbedToken::from_json(body)
    }
}

/// Embed Token GenerateToken: one token for several reports and datasets, optionally
/// with target workspaces to save or create reports in. Power BI recommends it for
/// reports and datasets; dashboards and tiles need their own routes.
///
/// ```
/// use pbi_embed_core::{DatasetId, MultiResourceToken, ReportId, XmlaPermissions};
///
/// let op = MultiResourceToken::new()
///     .report(ReportId::parse("b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd")?)
///     .dataset_with_xmla(DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229")?, XmlaPermissions::ReadOnly)
///     .lifetime_in_minutes(10);
/// # Ok::<(), pbi_embed_core::ExchangeError>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct MultiResourceToken {
    body: GenerateTokenRequestV2,
}

impl MultiResourceToken {
    /// An empty request: add at least one report or dataset.
    pub fn new() -> Self {
        Self::default()
    }

    /// A request with this body, as given (checked when it is sent).
    pub fn from_request(body: GenerateTokenRequestV2) -> Self {
        Self { body }
    }

    /// Adds a report to view.
    pub fn report(self, report: ReportId) -> Self {
        self.push_report(report, None)
    }

    /// Adds a report to view and edit (needs Report.ReadWrite.All).
    pub fn editable_report(self, report: ReportId) -> Self {
        self.push_report(report, Some(true))
    }

    fn push_report(mut self, id: ReportId, allow_edit: Option<bool>) -> Self {
        self.body
            .reports
            .push(GenerateTokenRequestV2Report { id, allow_edit });
        self
    }

    /// Adds a dataset.
    pub fn dataset(self, dataset: DatasetId) -> Self {
        self.push_dataset(dataset, None)
    }

    /// Adds a dataset with XMLA permissions.
    pub fn dataset_with_xmla(self, dataset: DatasetId, permissions: XmlaPermissions) -> Self {
        self.push_dataset(dataset, Some(permissions))
    }

    fn push_dataset(mut self, id: DatasetId, xmla_permissions: Option<XmlaPermissions>) -> Self {
        self.body
            .datasets
            .push(GenerateTokenRequestV2Dataset { id, xmla_permissions });
        self
    }

    /// Adds a workspace that reports may be saved or created in.
    pub fn target_workspace(mut self, workspace: WorkspaceId) -> Self {
        self.body
            .target_workspaces
            .push(GenerateTokenRequestV2TargetWorkspace { id: workspace });
        self
    }

    /// Adds an RLS identity (any number).
    pub fn identity(mut self, identity: EffectiveIdentity) -> Self {
        self.body.identities.push(identity);
        self
    }

    /// Adds RLS identities.
    pub fn identities(mut self, identities: impl IntoIterator<Item = EffectiveIdentity>) -> Self {
        self.body.identities.extend(identities);
        self
    }

    /// Adds an SSO identity for DirectQuery data sources.
    pub fn datasource_identity(mut self, identity: DatasourceIdentity) -> Self {
        self.body.datasource_identities.push(identity);
        self
    }

    /// Shortens the token's lifetime to at most `minutes` (0: Power BI's default).
    pub fn lifetime_in_minutes(mut self, minutes: u32) -> Self {
        self.body.lifetime_in_minutes = Some(minutes);
        self
    }

    /// The request body as it will be sent.
    #[must_use]
    pub fn request_body(&self) -> &GenerateTokenRequestV2 {
        &self.body
    }
}

impl ApiRequest for MultiResourceToken {
    type Output = EmbedToken;

    fn operation_id(&self) -> &'static str {
        "EmbedToken_GenerateToken"
    }
    fn output_name(&self) -> &'static str {
        "EmbedToken"
    }
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> String {
        "/v1.0/myorg/GenerateToken".to_owned()
    }
    fn validate(&self) -> Result<(), ExchangeError> {
        self.body.validate()
    }
    fn body(&self) -> Result<Option<Vec<u8>>, ExchangeError> {
        serialize(&self.body)
    }
    fn parse_success(&self, body: &[u8]) -> Result<EmbedToken, String> {
        EmbedToken::from_json(body)
    }
}

fn serialize<T: serde::Serialize>(body: &T) -> Result<Option<Vec<u8>>, ExchangeError> {
    // Most bodies fit, so serializing rarely reallocates.
    let mut out = Vec::with_capacity(256);
    serde_json::to_writer(&mut out, body).map_err(|e| ExchangeError::invalid_input("body", e.to_string()))?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> WorkspaceId {
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap()
    }
    fn ds(s: &str) -> DatasetId {
        DatasetId::parse(s).unwrap()
    }

    #[test]
    fn dataset_ids_are_encoded_in_paths() {
        let op = DatasetToken::new(ws(), ds("a/b c?d"));
        assert_eq!(
            op.path(),
            "/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/datasets/a%2Fb%20c%3Fd/GenerateToken"
        );
    }

    #[test]
    fn route_rules() {
        let id = || EffectiveIdentity::new("u").dataset(ds("d"));
        let r = ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap();
        let dash = DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap();
        let tile = TileId::parse("312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b").unwrap();

        ReportToken::view(ws(), r.clone())
            .identity(id())
            .validate()
            .unwrap();
        let two = ReportToken::view(ws(), r.clone()).identity(id()).identity(id());
        assert!(
            two.validate()
                .unwrap_err()
                .to_string()
                .contains("invalid identities: has 2 identities")
        );
        DashboardToken::new(ws(), dash.clone())
            .identities([id(), id(), id()])
            .validate()
            .unwrap();
        assert!(
            TileToken::new(ws(), dash, tile)
                .identities([id(), id()])
                .validate()
                .is_err()
        );
        assert!(
            DatasetToken::new(ws(), ds("d"))
                .identities([id(), id()])
                .validate()
                .is_err()
        );
        // Zero is Power BI's "the default lifetime".
        ReportToken::edit(ws(), r)
            .lifetime_in_minutes(0)
            .validate()
            .unwrap();
        CreateReportToken::new(ws(), ds("d"))
            .allow_save_as(true)
            .validate()
            .unwrap();
    }

    #[test]
    fn rules_hold_for_bodies_built_by_hand() {
        let mut op = DashboardToken::new(
            ws(),
            DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap(),
        );
        op.body.access_level = Some(TokenAccessLevel::Edit);
        assert!(
            op.validate()
                .unwrap_err()
                .to_string()
                .contains("accessLevel: Edit is not allowed here")
        );
        op.body.access_level = Some(TokenAccessLevel::Other("Future".into()));
        op.validate().unwrap();
        op.body.allow_save_as = Some(true);
        assert!(op.validate().unwrap_err().to_string().contains("allowSaveAs"));
        op.body.allow_save_as = None;
        op.body.dataset_id = Some(ds("d"));
        assert!(op.validate().unwrap_err().to_string().contains("datasetId"));
    }
}
