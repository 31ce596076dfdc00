//! What to embed ([`EmbedRequest`]), the token each embed type mints from its item's
//! metadata, and the row-level-security pre-flight ([`check_rls`]) that catches identity
//! mistakes before a token is minted.
//!
//! The flow, which the drivers run: fetch the item's metadata (for its embed URL), check
//! the datasets' RLS flags against the identities, mint the matching token
//! ([`report_token_request`] and friends), and return the item's
//! [`EmbedConfig`](super::embed_config::EmbedConfig).

use crate::api::embed_config::QnaMode;
use crate::api::generate_token::{DashboardToken, DatasetToken, MultiResourceToken, TileToken};
use crate::api::identity::EffectiveIdentity;
use crate::api::metadata::{Dashboard, Dataset, Report, ReportType, Tile};
use crate::api::token_request::XmlaPermissions;
use crate::wire::error::ExchangeError;
use crate::wire::ids::{DashboardId, DatasetId, ProfileId, ReportId, TileId, WorkspaceId};

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
/// # Ok::<(), pbi_embed_core::ExchangeError>(())
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
    /// A report (paginated or not: its `reportType` decides).
    Report(ReportId),
    /// A report that must be a paginated one: any other is refused before minting.
    Paginated(ReportId),
    /// A dashboard.
    Dashboard(DashboardId),
    /// A tile of a dashboard.
    Tile {
        /// The dashboard.
        dashboard: DashboardId,
        /// The tile.
        tile: TileId,
    },
    /// One visual of a report.
    Visual {
        /// The report.
        report: ReportId,
        /// The page's `name` (from GetPagesInGroup, not its display name).
        page: String,
        /// The visual's name.
        visual: String,
    },
    /// Several reports on one page, under one multi-resource token.
    Reports(Vec<ReportId>),
    /// Q&A over a dataset.
    Qna(DatasetId),
    /// Authoring a new report on a dataset, saved to the request's workspace.
    Create(DatasetId),
}

impl EmbedRequest {
    /// A report, viewed. Its token covers the report and its dataset. A paginated report
    /// (its `reportType`) gets the dataset with XMLA read access and, for each identity, a
    /// second one naming the report, as Power BI requires.
    pub fn report(workspace: WorkspaceId, report: ReportId) -> Self {
        Self::new(workspace, EmbedItem::Report(report))
    }

    /// A paginated (RDL) report, as [`report`](Self::report) embeds one, but refused
    /// before a token is minted when the report is an ordinary one (its `reportType`).
    pub fn paginated(workspace: WorkspaceId, report: ReportId) -> Self {
        Self::new(workspace, EmbedItem::Paginated(report))
    }

    /// A dashboard. An RLS identity that names no dataset applies to the datasets of the
    /// dashboard's tiles (read with GetTilesInGroup).
    pub fn dashboard(workspace: WorkspaceId, dashboard: DashboardId) -> Self {
        Self::new(workspace, EmbedItem::Dashboard(dashboard))
    }

    /// Several reports on one page (at most 50) under one multi-resource token over the
    /// reports and their datasets: [`Call::embed_configs`](crate::driver::Call::embed_configs)
    /// gives one configuration per report, each carrying that token. An identity that
    /// names no dataset applies to the datasets that require one.
    pub fn reports(workspace: WorkspaceId, reports: impl IntoIterator<Item = ReportId>) -> Self {
        let mut unique: Vec<ReportId> = Vec::new();
        for report in reports {
            if !unique.contains(&report) {
                unique.push(report);
            }
        }
        Self::new(workspace, EmbedItem::Reports(unique))
    }

    /// One visual of a report, by its page's `name` and its own name; the token is the
    /// report's.
    pub fn visual(
        workspace: WorkspaceId,
        report: ReportId,
        page: impl Into<String>,
        visual: impl Into<String>,
    ) -> Self {
        let (page, visual) = (page.into(), visual.into());
        Self::new(workspace, EmbedItem::Visual { report, page, visual })
    }

    /// Q&A over a dataset (Power BI supports one), with a token for that dataset.
    pub fn qna(workspace: WorkspaceId, dataset: DatasetId) -> Self {
        Self::new(workspace, EmbedItem::Qna(dataset))
    }

    /// Authoring a new report on a dataset (`powerbi.createReport`), saved to
    /// `workspace`: a token over the dataset with `workspace` as its target.
    pub fn create(workspace: WorkspaceId, dataset: DatasetId) -> Self {
        Self::new(workspace, EmbedItem::Create(dataset))
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

    /// The page a report opens on (`pageName`, the page's `name`).
    pub fn page(mut self, page: impl Into<String>) -> Self {
        self.options.page = Some(page.into());
        self
    }

    /// Q&A's question (required for [`QnaMode::ResultOnly`]).
    pub fn question(mut self, question: impl Into<String>) -> Self {
        self.options.question = Some(question.into());
        self
    }

    /// How Q&A is shown (default [`QnaMode::Interactive`]).
    pub fn qna_mode(mut self, mode: QnaMode) -> Self {
        self.options.qna_mode = mode;
        self
    }

    /// Shortens the token's lifetime to at most `minutes`.
    pub fn lifetime_in_minutes(mut self, minutes: u32) -> Self {
        self.options.lifetime_in_minutes = Some(minutes);
        self
    }

    /// Sends the identities that name no dataset only to the datasets that require an
    /// identity, and leaves them off the others, instead of refusing an item whose
    /// dataset has no row-level security: for a backend that always knows its user but
    /// not which datasets use RLS. The datasets' flags are then read before the token is
    /// minted (one round trip more on a cold client; none once warm-up has read them).
    pub fn identity_where_required(mut self) -> Self {
        self.options.where_required = true;
        self
    }

    /// Acts as this service principal profile (`X-PowerBI-Profile-Id` on every request of
    /// the call) instead of the client's: one client, one sign-in and one set of caches
    /// serve many customers, each under its own profile. Cache keys include the profile,
    /// so customers never share an item's metadata or a token.
    pub fn profile(mut self, profile: ProfileId) -> Self {
        self.options.profile = Some(profile);
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
    pub(crate) page: Option<String>,
    pub(crate) question: Option<String>,
    pub(crate) qna_mode: QnaMode,
    /// The service principal profile, when not the client's.
    pub(crate) profile: Option<ProfileId>,
    /// Identities that name no dataset go only where a dataset requires one.
    where_required: bool,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            identities: Vec::new(),
            editable: false,
            rls_preflight: true,
            lifetime_in_minutes: None,
            page: None,
            question: None,
            qna_mode: QnaMode::Interactive,
            profile: None,
            where_required: false,
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
        self.identities_for_all(dataset.into_iter())
    }

    /// The identities, with those that name nothing applied to each of `datasets`.
    pub(crate) fn identities_for_all<'d>(
        &self,
        datasets: impl Iterator<Item = &'d DatasetId> + Clone,
    ) -> Vec<EffectiveIdentity> {
        self.identities
            .iter()
            .cloned()
            .map(|identity| {
                if identity.datasets.is_empty() && identity.reports.is_empty() {
                    datasets.clone().fold(identity, |i, d| i.dataset(d.clone()))
                } else {
                    identity
                }
            })
            .collect()
    }

    /// `op` with the token's lifetime shortened, when asked for.
    pub(crate) fn with_lifetime<Op: Lifetime>(&self, op: Op) -> Op {
        match self.lifetime_in_minutes {
            Some(minutes) => op.with_lifetime_in_minutes(minutes),
            None => op,
        }
    }

    /// Whether identities that name no dataset go only where a dataset requires one, and
    /// some identity names none: then the flags decide the token.
    pub(crate) fn binds_where_required(&self) -> bool {
        self.where_required && self.has_unbound_identity()
    }

    /// These options for an item none of whose datasets requires an identity, under
    /// [`EmbedRequest::identity_where_required`]: the identities that name no dataset left
    /// off, the others kept.
    pub(crate) fn for_no_secured_dataset(&self) -> Self {
        let mut options = self.clone();
        if self.where_required {
            options
                .identities
                .retain(|i| !(i.datasets.is_empty() && i.reports.is_empty()));
        }
        options
    }

    /// Whether some identity names no dataset and no report.
    /// Whether the pre-flight must learn which of an item's datasets require an
    /// identity: one names no dataset (it applies to those), or none is given at all
    /// (then none may).
    pub(crate) fn needs_secured_datasets(&self) -> bool {
        self.has_unbound_identity() || (self.rls_preflight && self.identities.is_empty())
    }

    pub(crate) fn has_unbound_identity(&self) -> bool {
        self.identities
            .iter()
            .any(|i| i.datasets.is_empty() && i.reports.is_empty())
    }
}

/// A token request whose lifetime can be shortened.
pub(crate) trait Lifetime {
    fn with_lifetime_in_minutes(self, minutes: u32) -> Self;
}

impl Lifetime for MultiResourceToken {
    fn with_lifetime_in_minutes(self, minutes: u32) -> Self {
        self.lifetime_in_minutes(minutes)
    }
}

impl<R: crate::api::generate_token::TokenRoute> Lifetime for crate::api::generate_token::GenerateToken<R> {
    fn with_lifetime_in_minutes(self, minutes: u32) -> Self {
        self.lifetime_in_minutes(minutes)
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
    let paginated = report.report_type == ReportType::PaginatedReport;
    if let Some(dataset) = &report.dataset_id {
        op = if paginated {
            // A paginated report reads its Power BI dataset through the XMLA endpoint.
            op.dataset_with_xmla(dataset.clone(), XmlaPermissions::ReadOnly)
        } else {
            op.dataset(dataset.clone())
        };
    }
    op = op.identities(options.identities_for(report.dataset_id.as_ref()));
    if paginated {
        // Power BI takes the paginated report's identity in its own entry, naming the
        // report (EffectiveIdentity.reports is for paginated reports only).
        let for_report = options
            .identities
            .iter()
            .filter(|i| i.datasets.is_empty() && i.reports.is_empty())
            .filter_map(|i| i.username.clone())
            .map(|username| EffectiveIdentity::new(username).report(report.id.clone()));
        op = op.identities(for_report.collect::<Vec<_>>());
    }
    options.with_lifetime(op)
}

/// The token request for several reports: each report, each dataset once, identities
/// that name nothing applied to `secured` (the datasets that require one).
pub(crate) fn reports_token_request(
    reports: &[Report],
    datasets: &[DatasetId],
    secured: &[DatasetId],
    options: &EmbedOptions,
) -> MultiResourceToken {
    let mut op = MultiResourceToken::new();
    for report in reports {
        op = if options.editable {
            op.editable_report(report.id.clone())
        } else {
            op.report(report.id.clone())
        };
    }
    for dataset in datasets {
        op = op.dataset(dataset.clone());
    }
    op = op.identities(options.identities_for_all(secured.iter()));
    options.with_lifetime(op)
}

/// The token request for a dashboard: identities that name no dataset apply to the
/// datasets of its tiles.
pub(crate) fn dashboard_token_request(
    workspace: &WorkspaceId,
    dashboard: &Dashboard,
    tile_datasets: &[DatasetId],
    options: &EmbedOptions,
) -> DashboardToken {
    let op = DashboardToken::new(workspace.clone(), dashboard.id.clone())
        .identities(options.identities_for_all(tile_datasets.iter()));
    options.with_lifetime(op)
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
    options.with_lifetime(op)
}

/// The token request for Q&A: the dataset's own route (`View`), as Power BI documents.
pub(crate) fn qna_token_request(
    workspace: &WorkspaceId,
    dataset: &DatasetId,
    options: &EmbedOptions,
) -> DatasetToken {
    let op = DatasetToken::new(workspace.clone(), dataset.clone())
        .identities(options.identities_for(Some(dataset)));
    options.with_lifetime(op)
}

/// The token request for authoring on a dataset: the dataset, and the workspace the new
/// report is saved to.
pub(crate) fn create_token_request(
    workspace: &WorkspaceId,
    dataset: &DatasetId,
    options: &EmbedOptions,
) -> MultiResourceToken {
    let op = MultiResourceToken::new()
        .dataset(dataset.clone())
        .target_workspace(workspace.clone())
        .identities(options.identities_for(Some(dataset)));
    options.with_lifetime(op)
}

/// The RLS pre-flight: whether `identities` suit `dataset`'s flags, before any token is
/// minted.
///
/// # Errors
/// [`ExchangeError::RlsPreflight`] naming the dataset and what to change: an identity is required
/// and none applies to it, roles are required and an identity has none, or an identity
/// applies to a dataset that takes none.
pub fn check_rls(dataset: &Dataset, identities: &[EffectiveIdentity]) -> Result<(), ExchangeError> {
    let applying: Vec<&EffectiveIdentity> = identities
        .iter()
        .filter(|i| i.datasets.contains(&dataset.id))
        .collect();
    let fail = |reason: &str| {
        Err(ExchangeError::RlsPreflight {
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
            create_report_embed_url: None,
            qna_embed_url: None,
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

    #[test]
    fn every_token_request_carries_the_lifetime_asked_for() {
        let workspace = WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap();
        let ds = DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229").unwrap();
        let request = EmbedRequest::qna(workspace.clone(), ds.clone()).lifetime_in_minutes(17);
        let options = request.options();
        let dashboard = Dashboard {
            id: DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap(),
            display_name: String::new(),
            embed_url: "https://app.powerbi.com/dashboardEmbed".into(),
            is_read_only: None,
        };
        assert_eq!(
            qna_token_request(&workspace, &ds, options)
                .request_body()
                .lifetime_in_minutes,
            Some(17)
        );
        assert_eq!(
            create_token_request(&workspace, &ds, options)
                .request_body()
                .lifetime_in_minutes,
            Some(17)
        );
        assert_eq!(
            dashboard_token_request(&workspace, &dashboard, &[], options)
                .request_body()
                .lifetime_in_minutes,
            Some(17)
        );
        assert_eq!(
            reports_token_request(&[], &[], &[], options)
                .request_body()
                .lifetime_in_minutes,
            Some(17)
        );
        let plain = EmbedRequest::qna(workspace.clone(), ds.clone());
        assert_eq!(
            qna_token_request(&workspace, &ds, plain.options())
                .request_body()
                .lifetime_in_minutes,
            None
        );
    }
}
