//! The items an embed configuration is for: how to read each one's metadata, and what
//! token to mint from it.

use std::borrow::Cow;

use super::embed::{Item, Minted, Minting};
use super::{Metadata, MetadataKind, Need, metadata_need, unexpected};
use crate::api::embed_config::{EmbedConfig, EmbedKind};
use crate::api::embed_request::{
    EmbedOptions, check_rls, create_token_request, dashboard_token_request, qna_token_request,
    report_token_request, reports_token_request, tile_token_request,
};
use crate::api::embed_token::EmbedToken;
use crate::api::identity::EffectiveIdentity;
use crate::api::metadata::{
    Dashboard, Dataset, GetDashboardInGroup, GetDatasetInGroup, GetReportInGroup, GetTileInGroup,
    GetTilesInGroup, Report, ReportType, Tile,
};
use crate::flow::error::Error;
use crate::wire::error::ExchangeError;
use crate::wire::ids::{DashboardId, DatasetId, ReportId, TileId, WorkspaceId};

pub(super) struct ReportItem {
    pub(super) workspace: WorkspaceId,
    pub(super) report: ReportId,
    /// A visual's page and name, when one visual is embedded.
    pub(super) visual: Option<(String, String)>,
    /// Whether it must be a paginated report.
    pub(super) paginated: bool,
    pub(super) metadata: Option<Report>,
    /// Its dataset's flags, when they decide where identities go
    /// ([`EmbedOptions::binds_where_required`]).
    pub(super) flags: Option<Dataset>,
}

/// The one piece of metadata asked for.
fn one(metadata: Vec<Metadata>) -> Result<Metadata, Error> {
    let mut metadata = metadata.into_iter();
    match (metadata.next(), metadata.next()) {
        (Some(one), None) => Ok(one),
        _ => Err(unexpected()),
    }
}

impl Item for ReportItem {
    fn metadata(&self, _: &EmbedOptions) -> Result<Vec<Need>, ExchangeError> {
        let request = GetReportInGroup::new(self.workspace.clone(), self.report.clone());
        Ok(vec![metadata_need(&request, MetadataKind::Report)?])
    }

    fn minting(&mut self, metadata: Vec<Metadata>, options: &EmbedOptions) -> Result<Minted, Error> {
        for metadata in metadata {
            match metadata {
                Metadata::Report(report) => {
                    if self.paginated && report.report_type != ReportType::PaginatedReport {
                        return Err(ExchangeError::invalid_input(
                            "reportType",
                            format!(
                                "report {} ({}) is not a paginated report: embed it as a report",
                                report.name, report.id
                            ),
                        )
                        .into());
                    }
                    self.metadata = Some(report);
                }
                Metadata::Dataset(dataset) => self.flags = Some(dataset),
                _ => return Err(unexpected()),
            }
        }
        let report = self.metadata.as_ref().ok_or_else(unexpected)?;
        let options = match bound(
            &self.workspace,
            options,
            report.dataset_id.as_ref(),
            self.flags.as_ref(),
        )? {
            Binding::ReadFlags(need) => return Ok(Minted::More(vec![need])),
            Binding::As(options) => options,
        };
        let request = report_token_request(report, &options);
        Minting::mint(
            &request,
            report.dataset_id.as_ref(),
            &request.request_body().identities,
        )
    }

    fn config(&self, token: EmbedToken, options: &EmbedOptions) -> Result<EmbedConfig, Error> {
        let report = self.metadata.as_ref().ok_or_else(unexpected)?;
        if let Some((page, visual)) = &self.visual {
            return Ok(EmbedConfig::visual(report, &self.workspace, page, visual, token));
        }
        let mut config = EmbedConfig::report(report, &self.workspace, token, options.editable_requested());
        config.page_name.clone_from(&options.page);
        Ok(config)
    }
}

/// For an item over several datasets (a dashboard's tiles, several reports): each
/// dataset's flags, read side by side, tell which require an identity; an identity that
/// names no dataset applies to those.
#[derive(Default)]
pub(super) struct SecuredDatasets {
    /// Read, and requiring an identity.
    pub(super) secured: Vec<Dataset>,
}

impl SecuredDatasets {
    /// The reads of `datasets`' flags (each once).
    fn needs(
        workspace: &WorkspaceId,
        datasets: impl Iterator<Item = DatasetId>,
    ) -> Result<Vec<Need>, ExchangeError> {
        distinct(datasets)
            .into_iter()
            .map(|dataset| {
                let request = GetDatasetInGroup::new(workspace.clone(), dataset);
                metadata_need(&request, MetadataKind::Dataset)
            })
            .collect()
    }

    /// Notes a dataset's flags.
    fn record(&mut self, dataset: Dataset) {
        if dataset.is_effective_identity_required {
            self.secured.push(dataset);
        }
    }

    /// `options` as they apply here: under `identity_where_required`, with no dataset
    /// requiring an identity, the identities that name none are left off.
    fn options<'o>(&self, options: &'o EmbedOptions) -> Cow<'o, EmbedOptions> {
        if options.binds_where_required() && self.secured.is_empty() {
            Cow::Owned(options.for_no_secured_dataset())
        } else {
            Cow::Borrowed(options)
        }
    }

    /// The ids of those that require an identity.
    fn ids(&self) -> Vec<DatasetId> {
        self.secured.iter().map(|d| d.id.clone()).collect()
    }

    /// The pre-flight over the datasets read (their flags are known): `identities`
    /// suit each, and an identity naming no dataset has one to apply to.
    fn check(
        &self,
        identities: &[EffectiveIdentity],
        options: &EmbedOptions,
        of: &str,
    ) -> Result<(), ExchangeError> {
        if !options.preflight() {
            return Ok(());
        }
        if options.has_unbound_identity() && self.secured.is_empty() {
            return Err(ExchangeError::RlsPreflight {
                dataset: format!("behind {of}"),
                reason:
                    "has no row-level security, so an identity naming no dataset applies to none: send none"
                        .to_owned(),
            });
        }
        self.secured
            .iter()
            .try_for_each(|dataset| check_rls(dataset, identities))
    }
}

/// Where an item over one dataset sends its identities.
enum Binding<'o> {
    /// Its flags decide, and are not read yet: read them first.
    ReadFlags(Need),
    /// With these options (identities that name no dataset left off when the dataset
    /// takes none, under `identity_where_required`).
    As(Cow<'o, EmbedOptions>),
}

/// How `options` apply to an item over `dataset`, given its `flags` when read.
fn bound<'o>(
    workspace: &WorkspaceId,
    options: &'o EmbedOptions,
    dataset: Option<&DatasetId>,
    flags: Option<&Dataset>,
) -> Result<Binding<'o>, ExchangeError> {
    if !options.binds_where_required() {
        return Ok(Binding::As(Cow::Borrowed(options)));
    }
    Ok(match (dataset, flags) {
        (Some(dataset), None) => Binding::ReadFlags(metadata_need(
            &GetDatasetInGroup::new(workspace.clone(), dataset.clone()),
            MetadataKind::Dataset,
        )?),
        (Some(_), Some(flags)) if flags.is_effective_identity_required => Binding::As(Cow::Borrowed(options)),
        _ => Binding::As(Cow::Owned(options.for_no_secured_dataset())),
    })
}

/// Each dataset once, in order.
fn distinct(datasets: impl Iterator<Item = DatasetId>) -> Vec<DatasetId> {
    let mut unique: Vec<DatasetId> = Vec::new();
    for dataset in datasets {
        if !unique.contains(&dataset) {
            unique.push(dataset);
        }
    }
    unique
}

pub(super) struct DashboardItem {
    pub(super) workspace: WorkspaceId,
    pub(super) dashboard: DashboardId,
    pub(super) metadata: Option<Dashboard>,
    /// The tiles' datasets, read when an identity names no dataset.
    pub(super) datasets: SecuredDatasets,
}

impl DashboardItem {
    pub(super) fn new(workspace: WorkspaceId, dashboard: DashboardId) -> Self {
        Self {
            workspace,
            dashboard,
            metadata: None,
            datasets: SecuredDatasets::default(),
        }
    }

    /// The token: identities that name no dataset apply to the tiles' datasets that
    /// require one (their flags read); others are taken as given.
    fn mint(&self, options: &EmbedOptions) -> Result<Minted, Error> {
        let dashboard = self.metadata.as_ref().ok_or_else(unexpected)?;
        let options = &self.datasets.options(options);
        let request = dashboard_token_request(&self.workspace, dashboard, &self.datasets.ids(), options);
        let identities = &request.request_body().identities;
        if options.needs_secured_datasets() {
            let of = format!(
                "the tiles of dashboard {} ({})",
                dashboard.display_name, dashboard.id
            );
            self.datasets.check(identities, options, &of)?;
            return Minting::mint(&request, None, identities);
        }
        // Identities that name their datasets: the pre-flight reads those.
        let named = distinct(identities.iter().flat_map(|i| i.datasets.iter().cloned()));
        Minting::mint(&request, &named, identities)
    }
}

impl Item for DashboardItem {
    /// The dashboard, and beside it its tiles when their datasets matter: an identity
    /// that names no dataset applies to them, and no identity at all must suit them.
    fn metadata(&self, options: &EmbedOptions) -> Result<Vec<Need>, ExchangeError> {
        let mut needs = vec![metadata_need(
            &GetDashboardInGroup::new(self.workspace.clone(), self.dashboard.clone()),
            MetadataKind::Dashboard,
        )?];
        if options.needs_secured_datasets() {
            needs.push(metadata_need(
                &GetTilesInGroup::new(self.workspace.clone(), self.dashboard.clone()),
                MetadataKind::Tiles,
            )?);
        }
        Ok(needs)
    }

    fn minting(&mut self, metadata: Vec<Metadata>, options: &EmbedOptions) -> Result<Minted, Error> {
        let mut datasets = Vec::new();
        for metadata in metadata {
            match metadata {
                Metadata::Dashboard(dashboard) => self.metadata = Some(dashboard),
                Metadata::Tiles(tiles) => {
                    datasets = SecuredDatasets::needs(
                        &self.workspace,
                        tiles.into_iter().filter_map(|t| t.dataset_id),
                    )?;
                }
                Metadata::Dataset(dataset) => self.datasets.record(dataset),
                _ => return Err(unexpected()),
            }
        }
        if datasets.is_empty() {
            self.mint(options)
        } else {
            Ok(Minted::More(datasets))
        }
    }

    fn config(&self, token: EmbedToken, _: &EmbedOptions) -> Result<EmbedConfig, Error> {
        let dashboard = self.metadata.as_ref().ok_or_else(unexpected)?;
        Ok(EmbedConfig::dashboard(dashboard, &self.workspace, token))
    }
}

pub(super) struct TileItem {
    pub(super) workspace: WorkspaceId,
    pub(super) dashboard: DashboardId,
    pub(super) tile: TileId,
    pub(super) metadata: Option<Tile>,
    /// Its dataset's flags, when they decide where identities go.
    pub(super) flags: Option<Dataset>,
}

impl Item for TileItem {
    fn metadata(&self, _: &EmbedOptions) -> Result<Vec<Need>, ExchangeError> {
        let request = GetTileInGroup::new(self.workspace.clone(), self.dashboard.clone(), self.tile.clone());
        Ok(vec![metadata_need(&request, MetadataKind::Tile)?])
    }

    fn minting(&mut self, metadata: Vec<Metadata>, options: &EmbedOptions) -> Result<Minted, Error> {
        for metadata in metadata {
            match metadata {
                Metadata::Tile(tile) => self.metadata = Some(tile),
                Metadata::Dataset(dataset) => self.flags = Some(dataset),
                _ => return Err(unexpected()),
            }
        }
        let tile = self.metadata.as_ref().ok_or_else(unexpected)?;
        let options = match bound(
            &self.workspace,
            options,
            tile.dataset_id.as_ref(),
            self.flags.as_ref(),
        )? {
            Binding::ReadFlags(need) => return Ok(Minted::More(vec![need])),
            Binding::As(options) => options,
        };
        let request = tile_token_request(&self.workspace, &self.dashboard, tile, &options);
        Minting::mint(
            &request,
            tile.dataset_id.as_ref(),
            &request.request_body().identities,
        )
    }

    fn config(&self, token: EmbedToken, _: &EmbedOptions) -> Result<EmbedConfig, Error> {
        let tile = self.metadata.as_ref().ok_or_else(unexpected)?;
        Ok(EmbedConfig::tile(tile, &self.dashboard, &self.workspace, token))
    }
}

/// Q&A over a dataset, or authoring on it: the dataset's metadata gives the embed URL and
/// the RLS flags at once.
pub(super) struct DatasetItem {
    pub(super) workspace: WorkspaceId,
    pub(super) dataset: DatasetId,
    pub(super) kind: EmbedKind,
    pub(super) metadata: Option<Dataset>,
}

impl DatasetItem {
    /// The dataset's `qnaEmbedURL` or `createReportEmbedURL`.
    fn embed_url<'d>(&self, dataset: &'d Dataset) -> Result<&'d str, ExchangeError> {
        let (url, field) = if self.kind == EmbedKind::Qna {
            (&dataset.qna_embed_url, "qnaEmbedURL")
        } else {
            (&dataset.create_report_embed_url, "createReportEmbedURL")
        };
        url.as_deref().ok_or_else(|| {
            ExchangeError::invalid_input(
                field,
                format!("dataset {} has none: it cannot be embedded this way", dataset.id),
            )
        })
    }
}

impl Item for DatasetItem {
    fn metadata(&self, _: &EmbedOptions) -> Result<Vec<Need>, ExchangeError> {
        let request = GetDatasetInGroup::new(self.workspace.clone(), self.dataset.clone());
        Ok(vec![metadata_need(&request, MetadataKind::Dataset)?])
    }

    fn minting(&mut self, metadata: Vec<Metadata>, options: &EmbedOptions) -> Result<Minted, Error> {
        let Metadata::Dataset(dataset) = one(metadata)? else {
            return Err(unexpected());
        };
        // Refused before a token is minted for nothing.
        self.embed_url(&dataset)?;
        // The flags came with the metadata: they say where identities go.
        let options = match bound(&self.workspace, options, Some(&dataset.id), Some(&dataset))? {
            Binding::As(options) => options,
            Binding::ReadFlags(_) => return Err(unexpected()),
        };
        let minted = if self.kind == EmbedKind::Qna {
            let request = qna_token_request(&self.workspace, &dataset.id, &options);
            Minting::mint(&request, None, &request.request_body().identities)?
        } else {
            let request = create_token_request(&self.workspace, &dataset.id, &options);
            Minting::mint(&request, None, &request.request_body().identities)?
        };
        // The flags came with the metadata: the pre-flight needs no other read.
        if let Minted::Mint(minting) = &minted
            && options.preflight()
        {
            check_rls(&dataset, &minting.identities)?;
        }
        self.metadata = Some(dataset);
        Ok(minted)
    }

    fn config(&self, token: EmbedToken, options: &EmbedOptions) -> Result<EmbedConfig, Error> {
        let dataset = self.metadata.as_ref().ok_or_else(unexpected)?;
        let url = self.embed_url(dataset)?;
        Ok(if self.kind == EmbedKind::Qna {
            let mut config = EmbedConfig::qna(dataset, url, &self.workspace, token);
            config.question.clone_from(&options.question);
            config.qna_mode = options.qna_mode;
            config
        } else {
            EmbedConfig::create(dataset, url, &self.workspace, token)
        })
    }
}

/// Several reports on one page under one multi-resource token: the reports' metadata,
/// side by side; the datasets' flags, side by side, when an identity names no dataset (it
/// applies to those that require one); then the token over every report and dataset.
pub(super) struct ReportsItem {
    pub(super) workspace: WorkspaceId,
    pub(super) reports: Vec<ReportId>,
    pub(super) metadata: Vec<Report>,
    /// The reports' datasets, read when an identity names no dataset.
    pub(super) datasets: SecuredDatasets,
}

impl ReportsItem {
    pub(super) fn new(workspace: WorkspaceId, reports: Vec<ReportId>) -> Self {
        Self {
            workspace,
            reports,
            metadata: Vec::new(),
            datasets: SecuredDatasets::default(),
        }
    }

    fn dataset_ids(&self) -> Vec<DatasetId> {
        distinct(self.metadata.iter().filter_map(|r| r.dataset_id.clone()))
    }

    /// The token. Identities that name no dataset apply to the datasets that require one
    /// (checked here, their flags being known); otherwise every dataset goes through the
    /// pre-flight.
    fn mint(&self, options: &EmbedOptions) -> Result<Minted, Error> {
        let all = self.dataset_ids();
        let options = &self.datasets.options(options);
        let request = reports_token_request(&self.metadata, &all, &self.datasets.ids(), options);
        let identities = &request.request_body().identities;
        if options.has_unbound_identity() {
            self.datasets.check(identities, options, "these reports")?;
            return Minting::mint(&request, None, identities);
        }
        Minting::mint(&request, &all, identities)
    }
}

impl Item for ReportsItem {
    fn metadata(&self, _: &EmbedOptions) -> Result<Vec<Need>, ExchangeError> {
        if self.reports.is_empty() {
            return Err(ExchangeError::invalid_input("reports", "name at least one"));
        }
        self.reports
            .iter()
            .map(|report| {
                metadata_need(
                    &GetReportInGroup::new(self.workspace.clone(), report.clone()),
                    MetadataKind::Report,
                )
            })
            .collect()
    }

    fn minting(&mut self, metadata: Vec<Metadata>, options: &EmbedOptions) -> Result<Minted, Error> {
        let mut reports_came = false;
        for metadata in metadata {
            match metadata {
                Metadata::Report(report) => {
                    self.metadata.push(report);
                    reports_came = true;
                }
                Metadata::Dataset(dataset) => self.datasets.record(dataset),
                _ => return Err(unexpected()),
            }
        }
        if reports_came && options.has_unbound_identity() {
            let datasets = SecuredDatasets::needs(&self.workspace, self.dataset_ids().into_iter())?;
            if !datasets.is_empty() {
                return Ok(Minted::More(datasets));
            }
        }
        self.mint(options)
    }

    fn config(&self, token: EmbedToken, options: &EmbedOptions) -> Result<EmbedConfig, Error> {
        self.configs(token, options)?
            .into_iter()
            .next()
            .ok_or_else(unexpected)
    }

    fn configs(&self, token: EmbedToken, options: &EmbedOptions) -> Result<Vec<EmbedConfig>, Error> {
        Ok(self
            .metadata
            .iter()
            .map(|report| {
                EmbedConfig::report(
                    report,
                    &self.workspace,
                    token.clone(),
                    options.editable_requested(),
                )
            })
            .collect())
    }
}
