//! The configuration the browser's `powerbi-client` takes for each embed type: an
//! [`EmbedConfig`] serializes to exactly the object `powerbi.embed(element, config)`
//! takes. What to embed, and the token each type mints, is in
//! [`embed_request`](super::embed_request).

use std::fmt;
use std::time::SystemTime;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::api::embed_token::{EmbedToken, format_rfc3339};
use crate::api::metadata::{Dashboard, Dataset, Report, ReportType, Tile};
use crate::wire::ids::{DashboardId, WorkspaceId};
use crate::wire::secret::EmbedTokenSecret;

/// `models.TokenType.Embed` in `powerbi-client`.
pub const TOKEN_TYPE_EMBED: u8 = 1;
/// `models.Permissions.ReadWrite`.
const PERMISSIONS_READ_WRITE: u8 = 1;
/// `models.Permissions.Read`.
const PERMISSIONS_READ: u8 = 0;

/// What to embed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmbedKind {
    /// A report (a Power BI report or a paginated one).
    Report,
    /// A dashboard.
    Dashboard,
    /// A tile.
    Tile,
    /// One visual of a report.
    Visual,
    /// Q&A over a dataset.
    Qna,
    /// Authoring a new report on a dataset (`powerbi.createReport`).
    Create,
}

impl EmbedKind {
    /// The `type` of the configuration: `report`, `dashboard`, `tile`, `visual`, `qna` or
    /// `create`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Dashboard => "dashboard",
            Self::Tile => "tile",
            Self::Visual => "visual",
            Self::Qna => "qna",
            Self::Create => "create",
        }
    }
}

/// How Q&A is shown: `models.QnaMode` in `powerbi-client`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QnaMode {
    /// The question box and its answers (0).
    #[default]
    Interactive,
    /// Only the answer to the configured question (1); a question is required.
    ResultOnly,
}

/// The configuration `powerbi.embed(element, config)` takes, with the token's expiry.
///
/// Serializes to `{"type", "id", "embedUrl", "accessToken", "tokenType": 1, "groupId", ...}`
/// plus what each type takes: `permissions` (and `pageName`) for a report, `dashboardId`
/// for a tile, `pageName` and `visualName` for a visual, `datasetIds`, `viewMode` and
/// `question` for Q&A (no `id`), `datasetId` for create (no `id`); and `tokenId` and
/// `expiration`, which the client ignores and a page uses to refresh the token in time.
/// Its `Debug` hides the token.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use pbi_embed_core::EmbedConfig;
///
/// /// What a page's backend answers: the configuration as JSON, and in how many seconds
/// /// to ask for a new one (five minutes before the token expires).
/// fn for_the_browser(config: &EmbedConfig) -> serde_json::Result<(String, u64)> {
///     let refresh_at = config.expiration - Duration::from_secs(5 * 60);
///     let refresh_in = refresh_at.duration_since(SystemTime::now()).unwrap_or_default();
///     Ok((serde_json::to_string(config)?, refresh_in.as_secs()))
/// }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct EmbedConfig {
    /// `type`.
    pub kind: EmbedKind,
    /// `id`: the report, dashboard, tile or (visual) report id; for Q&A and create, the
    /// dataset's id (not serialized as `id`).
    pub id: String,
    /// `embedUrl`.
    pub embed_url: String,
    /// `accessToken`: the embed token.
    pub access_token: EmbedTokenSecret,
    /// The token's id.
    pub token_id: String,
    /// The token's expiry.
    pub expiration: SystemTime,
    /// `dashboardId`, for a tile.
    pub dashboard_id: Option<DashboardId>,
    /// `groupId`: the workspace.
    pub group_id: Option<WorkspaceId>,
    /// Whether the report may be edited (`permissions` ReadWrite).
    pub editable: bool,
    /// Whether the report is a paginated (RDL) report.
    pub paginated: bool,
    /// `pageName`: the page a report opens on, or a visual's page.
    pub page_name: Option<String>,
    /// `visualName`: a visual's name.
    pub visual_name: Option<String>,
    /// `question`: Q&A's question.
    pub question: Option<String>,
    /// `viewMode` of Q&A.
    pub qna_mode: QnaMode,
}

impl EmbedConfig {
    /// A report's configuration.
    #[must_use]
    pub fn report(report: &Report, workspace: &WorkspaceId, token: EmbedToken, editable: bool) -> Self {
        let mut config = Self::new(
            EmbedKind::Report,
            report.id.as_str(),
            &report.embed_url,
            token,
            Some(workspace),
            None,
            editable,
        );
        config.paginated = report.report_type == ReportType::PaginatedReport;
        config
    }

    /// A visual's configuration: the report's embed URL, its page and visual names.
    #[must_use]
    pub fn visual(
        report: &Report,
        workspace: &WorkspaceId,
        page: &str,
        visual: &str,
        token: EmbedToken,
    ) -> Self {
        let mut config = Self::new(
            EmbedKind::Visual,
            report.id.as_str(),
            &report.embed_url,
            token,
            Some(workspace),
            None,
            false,
        );
        config.page_name = Some(page.to_owned());
        config.visual_name = Some(visual.to_owned());
        config
    }

    /// Q&A over a dataset, at its `qnaEmbedURL`.
    #[must_use]
    pub fn qna(dataset: &Dataset, embed_url: &str, workspace: &WorkspaceId, token: EmbedToken) -> Self {
        Self::on_dataset(EmbedKind::Qna, dataset, embed_url, workspace, token)
    }

    /// Authoring a report on a dataset, at its `createReportEmbedURL`.
    #[must_use]
    pub fn create(dataset: &Dataset, embed_url: &str, workspace: &WorkspaceId, token: EmbedToken) -> Self {
        Self::on_dataset(EmbedKind::Create, dataset, embed_url, workspace, token)
    }

    /// A configuration over a dataset (Q&A, create), whose `id` is the dataset's.
    fn on_dataset(
        kind: EmbedKind,
        dataset: &Dataset,
        url: &str,
        workspace: &WorkspaceId,
        token: EmbedToken,
    ) -> Self {
        Self::new(
            kind,
            dataset.id.as_str(),
            url,
            token,
            Some(workspace),
            None,
            false,
        )
    }

    /// A dashboard's configuration.
    #[must_use]
    pub fn dashboard(dashboard: &Dashboard, workspace: &WorkspaceId, token: EmbedToken) -> Self {
        Self::new(
            EmbedKind::Dashboard,
            dashboard.id.as_str(),
            &dashboard.embed_url,
            token,
            Some(workspace),
            None,
            false,
        )
    }

    /// A tile's configuration.
    #[must_use]
    pub fn tile(tile: &Tile, dashboard: &DashboardId, workspace: &WorkspaceId, token: EmbedToken) -> Self {
        Self::new(
            EmbedKind::Tile,
            tile.id.as_str(),
            &tile.embed_url,
            token,
            Some(workspace),
            Some(dashboard),
            false,
        )
    }

    fn new(
        kind: EmbedKind,
        id: &str,
        embed_url: &str,
        token: EmbedToken,
        group: Option<&WorkspaceId>,
        dashboard: Option<&DashboardId>,
        editable: bool,
    ) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            embed_url: embed_url.to_owned(),
            access_token: token.token,
            token_id: token.token_id,
            expiration: token.expiration,
            dashboard_id: dashboard.cloned(),
            group_id: group.cloned(),
            editable,
            paginated: false,
            page_name: None,
            visual_name: None,
            question: None,
            qna_mode: QnaMode::Interactive,
        }
    }
}

impl fmt::Debug for EmbedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbedConfig")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("embed_url", &self.embed_url)
            .field("access_token", &self.access_token)
            .field("token_id", &self.token_id)
            .field("expiration", &format_rfc3339(self.expiration))
            .finish_non_exhaustive()
    }
}

impl Serialize for EmbedConfig {
    /// The configuration for the browser. This is the one place the embed token is
    /// serialized: it is what the browser needs.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.kind.as_str())?;
        match self.kind {
            EmbedKind::Qna | EmbedKind::Create => {}
            _ => map.serialize_entry("id", &self.id)?,
        }
        map.serialize_entry("embedUrl", &self.embed_url)?;
        map.serialize_entry("accessToken", self.access_token.secret())?;
        map.serialize_entry("tokenType", &TOKEN_TYPE_EMBED)?;
        if let Some(group) = &self.group_id {
            map.serialize_entry("groupId", group.as_str())?;
        }
        if let Some(dashboard) = &self.dashboard_id {
            map.serialize_entry("dashboardId", dashboard.as_str())?;
        }
        // Paginated reports take no permissions (their validator ignores them).
        if self.kind == EmbedKind::Report && !self.paginated {
            let permissions = if self.editable {
                PERMISSIONS_READ_WRITE
            } else {
                PERMISSIONS_READ
            };
            map.serialize_entry("permissions", &permissions)?;
        }
        if let Some(page) = &self.page_name {
            map.serialize_entry("pageName", page)?;
        }
        if let Some(visual) = &self.visual_name {
            map.serialize_entry("visualName", visual)?;
        }
        match self.kind {
            EmbedKind::Qna => {
                map.serialize_entry("datasetIds", &[&self.id])?;
                let mode: u8 = match self.qna_mode {
                    QnaMode::Interactive => 0,
                    QnaMode::ResultOnly => 1,
                };
                map.serialize_entry("viewMode", &mode)?;
                if let Some(question) = &self.question {
                    map.serialize_entry("question", question)?;
                }
            }
            EmbedKind::Create => map.serialize_entry("datasetId", &self.id)?,
            _ => {}
        }
        map.serialize_entry("tokenId", &self.token_id)?;
        map.serialize_entry("expiration", &format_rfc3339(self.expiration))?;
        map.end()
    }
}
