//! Embed configurations for the browser's `powerbi-client`, and the row-level-security
//! pre-flight that catches identity mistakes before a token is minted.
//!
//! The flow, which the adapters run: fetch the item's metadata (for its embed URL), check
//! the dataset's RLS flags against the identities ([`check_rls`]), mint the matching token
//! ([`report_token_request`] and friends), and return an [`EmbedConfig`], which serializes
//! to exactly the object `powerbi.embed(element, config)` takes.

use std::fmt;
use std::time::SystemTime;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::embed_token::{EmbedToken, format_rfc3339};
use crate::error::Error;
use crate::generate_token::MultiResourceToken;
use crate::generate_token::{DashboardToken, TileToken};
use crate::identity::EffectiveIdentity;
use crate::ids::{DashboardId, DatasetId, ReportId, TileId, WorkspaceId};
use crate::metadata::{Dashboard, Dataset, Report, Tile};
use crate::secret::EmbedTokenSecret;

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
    /// A report.
    Report,
    /// A dashboard.
    Dashboard,
    /// A tile.
    Tile,
}

impl EmbedKind {
    /// The `type` of the configuration: `report`, `dashboard` or `tile`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Dashboard => "dashboard",
            Self::Tile => "tile",
        }
    }
}

/// The configuration `powerbi.embed(element, config)` takes, with the token's expiry.
///
/// Serializes to `{"type", "id", "embedUrl", "accessToken", "tokenType": 1, ...}` plus
/// `dashboardId` for a tile, `permissions` for a report, and `tokenId` and `expiration`
/// (which the client ignores and a page uses to refresh the token in time). Its `Debug`
/// hides the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct EmbedConfig {
    /// `type`.
    pub kind: EmbedKind,
    /// `id`: the report, dashboard or tile id.
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
}

impl EmbedConfig {
    /// A report's configuration.
    #[must_use]
    pub fn report(report: &Report, workspace: &WorkspaceId, token: EmbedToken, editable: bool) -> Self {
        Self::new(
            EmbedKind::Report,
            report.id.as_str(),
            &report.embed_url,
            token,
            Some(workspace),
            None,
            editable,
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
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("embedUrl", &self.embed_url)?;
        map.serialize_entry("accessToken", self.access_token.secret())?;
        map.serialize_entry("tokenType", &TOKEN_TYPE_EMBED)?;
        if let Some(group) = &self.group_id {
            map.serialize_entry("groupId", group.as_str())?;
        }
        if let Some(dashboard) = &self.dashboard_id {
            map.serialize_entry("dashboardId", dashboard.as_str())?;
        }
        if self.kind == EmbedKind::Report {
            let permissions = if self.editable {
                PERMISSIONS_READ_WRITE
            } else {
                PERMISSIONS_READ
            };
            map.serialize_entry("permissions", &permissions)?;
        }
        map.serialize_entry("tokenId", &self.token_id)?;
        map.serialize_entry("expiration", &format_rfc3339(self.expiration))?;
        map.end()
    }
}

/// What to embed, and how: the item, the RLS identities, edit rights, the token's
/// lifetime, and whether to run the RLS pre-flight (on by default).
///
/// ```
/// use pbi_embed_core::{EffectiveIdentity, EmbedRequest, ReportId, WorkspaceId};
///
/// let request = EmbedRequest::report(
///     WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48")?,
///     ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715")?,
/// )
/// // No dataset named: the identity applies to the report's dataset.
/// .identity(EffectiveIdentity::new("john@contoso.com").role("sales"))
/// .lifetime_in_minutes(30);
/// # Ok::<(), pbi_embed_core::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct EmbedRequest {
    workspace: WorkspaceId,
    item: EmbedItem,
    options: EmbedOptions,
}

/// The item an [`EmbedRequest`] embeds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmbedItem {
    /// A report.
    Report(ReportId),
    /// A dashboard.
    Dashboard(DashboardId),
    /// A tile of a dashboard.
    Tile {
        /// The dashboard.
        dashboard: DashboardId,
        /// The tile.
        tile: TileId,
    },
}

impl EmbedRequest {
    /// A report, viewed. Its token covers the report and its dataset.
    pub fn report(workspace: WorkspaceId, report: ReportId) -> Self {
        Self::new(workspace, EmbedItem::Report(report))
    }

    /// A dashboard. Its metadata names no dataset, so each RLS identity must name its
    /// datasets.
    pub fn dashboard(workspace: WorkspaceId, dashboard: DashboardId) -> Self {
        Self::new(workspace, EmbedItem::Dashboard(dashboard))
    }

    /// One tile of a dashboard.
    pub fn tile(workspace: WorkspaceId, dashboard: DashboardId, tile: TileId) -> Self {
        Self::new(workspace, EmbedItem::Tile { dashboard, tile })
    }

    fn new(workspace: WorkspaceId, item: EmbedItem) -> Self {
        Self {
            workspace,
            item,
            options: EmbedOptions::default(),
        }
    }

    /// Adds an RLS identity. One that names no dataset (and no report) applies to the
    /// item's dataset.
    pub fn identity(mut self, identity: EffectiveIdentity) -> Self {
        self.options.identities.push(identity);
        self
    }

    /// Adds RLS identities.
    pub fn identities(mut self, identities: impl IntoIterator<Item = EffectiveIdentity>) -> Self {
        self.options.identities.extend(identities);
        self
    }

    /// Lets a report be edited (`permissions` ReadWrite, an editable token).
    pub fn editable(mut self, editable: bool) -> Self {
        self.options.editable = editable;
        self
    }

    /// Turns the RLS pre-flight on (the default) or off.
    pub fn rls_preflight(mut self, on: bool) -> Self {
        self.options.rls_preflight = on;
        self
    }

    /// Shortens the token's lifetime to at most `minutes`.
    pub fn lifetime_in_minutes(mut self, minutes: u32) -> Self {
        self.options.lifetime_in_minutes = Some(minutes);
        self
    }

    /// The workspace.
    #[must_use]
    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// The item.
    #[must_use]
    pub fn item(&self) -> &EmbedItem {
        &self.item
    }

    pub(crate) fn options(&self) -> &EmbedOptions {
        &self.options
    }
}

/// How to embed: the identities, edit rights, lifetime, and the pre-flight.
#[derive(Clone, Debug)]
pub(crate) struct EmbedOptions {
    identities: Vec<EffectiveIdentity>,
    editable: bool,
    rls_preflight: bool,
    lifetime_in_minutes: Option<u32>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            identities: Vec::new(),
            editable: false,
            rls_preflight: true,
            lifetime_in_minutes: None,
        }
    }
}

impl EmbedOptions {
    /// Whether the pre-flight runs.
    pub(crate) fn preflight(&self) -> bool {
        self.rls_preflight
    }
    /// Whether edit rights were asked for.
    pub(crate) fn editable_requested(&self) -> bool {
        self.editable
    }
    /// The identities, with those that name nothing applied to `dataset`.
    pub(crate) fn identities_for(&self, dataset: Option<&DatasetId>) -> Vec<EffectiveIdentity> {
        self.identities
            .iter()
            .cloned()
            .map(|identity| match dataset {
                Some(dataset) if identity.datasets.is_empty() && identity.reports.is_empty() => {
                    identity.dataset(dataset.clone())
                }
                _ => identity,
            })
            .collect()
    }
}

/// The token request for a report: the multi-resource token covering the report and its
/// dataset, as Power BI recommends.
pub(crate) fn report_token_request(report: &Report, options: &EmbedOptions) -> MultiResourceToken {
    let mut op = if options.editable {
        MultiResourceToken::new().editable_report(report.id.clone())
    } else {
        MultiResourceToken::new().report(report.id.clone())
    };
    if let Some(dataset) = &report.dataset_id {
        op = op.dataset(dataset.clone());
    }
    op = op.identities(options.identities_for(report.dataset_id.as_ref()));
    match options.lifetime_in_minutes {
        Some(minutes) => op.lifetime_in_minutes(minutes),
        None => op,
    }
}

/// The token request for a dashboard. Its identities are taken as given: a dashboard's
/// metadata names no dataset to apply them to.
pub(crate) fn dashboard_token_request(
    workspace: &WorkspaceId,
    dashboard: &Dashboard,
    options: &EmbedOptions,
) -> DashboardToken {
    let op =
        DashboardToken::new(workspace.clone(), dashboard.id.clone()).identities(options.identities_for(None));
    match options.lifetime_in_minutes {
        Some(minutes) => op.lifetime_in_minutes(minutes),
        None => op,
    }
}

/// The token request for a tile.
pub(crate) fn tile_token_request(
    workspace: &WorkspaceId,
    dashboard: &DashboardId,
    tile: &Tile,
    options: &EmbedOptions,
) -> TileToken {
    let op = TileToken::new(workspace.clone(), dashboard.clone(), tile.id.clone())
        .identities(options.identities_for(tile.dataset_id.as_ref()));
    match options.lifetime_in_minutes {
        Some(minutes) => op.lifetime_in_minutes(minutes),
        None => op,
    }
}

/// The RLS pre-flight: whether `identities` suit `dataset`'s flags, before any token is
/// minted.
///
/// # Errors
/// [`Error::RlsPreflight`] naming the dataset and what to change: an identity is required
/// and none applies to it, roles are required and an identity has none, or an identity
/// applies to a dataset that takes none.
pub fn check_rls(dataset: &Dataset, identities: &[EffectiveIdentity]) -> Result<(), Error> {
    let applying: Vec<&EffectiveIdentity> = identities
        .iter()
        .filter(|i| i.datasets.contains(&dataset.id))
        .collect();
    let fail = |reason: &str| {
        Err(Error::RlsPreflight {
            dataset: format!("{} ({})", dataset.name, dataset.id),
            reason: reason.to_owned(),
        })
    };
    if !dataset.is_effective_identity_required {
        if !applying.is_empty() {
            return fail("has no row-level security and takes no effective identity: send none for it");
        }
        return Ok(());
    }
    if applying.is_empty() {
        return fail("requires an effective identity: send the signed-in user's username (and roles) for it");
    }
    if dataset.is_effective_identity_roles_required
        && let Some(identity) = applying
            .iter()
            .find(|i| i.roles.is_empty() && i.identity_blob.is_none())
    {
        return fail(&format!(
            "requires roles in the effective identity: add the RLS roles of {}",
            identity.username.as_deref().unwrap_or("the user")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(required: bool, roles: bool) -> Dataset {
        Dataset {
            id: DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229").unwrap(),
            name: "Sales".into(),
            is_effective_identity_required: required,
            is_effective_identity_roles_required: roles,
            is_refreshable: None,
            is_on_prem_gateway_required: None,
            configured_by: None,
            target_storage_mode: None,
        }
    }

    #[test]
    fn preflight_names_the_dataset_and_the_fix() {
        let ds = dataset(true, true);
        let with_roles = EffectiveIdentity::new("u").role("r").dataset(ds.id.clone());
        check_rls(&ds, std::slice::from_ref(&with_roles)).unwrap();
        let err = check_rls(&ds, &[]).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::RlsIdentity);
        assert_eq!(
            err.to_string(),
            "row-level security check failed for dataset Sales (cfafbeb1-8037-4d0c-896e-a46fb27ff229): it requires an \
             effective identity: send the signed-in user's username (and roles) for it (no token was minted)"
        );
        let no_roles = EffectiveIdentity::new("u").dataset(ds.id.clone());
        assert!(
            check_rls(&ds, &[no_roles])
                .unwrap_err()
                .to_string()
                .contains("requires roles")
        );
        let plain = dataset(false, false);
        assert!(
            check_rls(&plain, &[with_roles])
                .unwrap_err()
                .to_string()
                .contains("takes no effective identity")
        );
        check_rls(&plain, &[]).unwrap();
    }

    #[test]
    fn identities_without_datasets_get_the_items() {
        let request = EmbedRequest::report(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap(),
        )
        .identity(EffectiveIdentity::new("u").role("r"));
        let ds = DatasetId::parse("d").unwrap();
        assert_eq!(request.options().identities_for(Some(&ds))[0].datasets, [ds]);
    }
}
