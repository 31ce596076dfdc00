//! The items an embed configuration is for: how to read each one's metadata, and what
//! token to mint from it.

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
}

impl Item for ReportItem {
    fn metadata(&self) -> Result<Need, ExchangeError> {
        let request = GetReportInGroup::new(self.workspace.clone(), self.report.clone());
        metadata_need(&request, MetadataKind::Report)
    }

    fn minting(&mut self, metadata: Metadata, options: &EmbedOptions) -> Result<Minted, Error> {
        let Metadata::Report(report) = metadata else {
            return Err(unexpected());
        };
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
        let request = report_token_request(&report, options);
        let minting = Minting::mint(
            &request,
            report.dataset_id.as_ref(),
            &request.request_body().identities,
        )?;
        self.metadata = Some(report);
        Ok(minting)
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

/// For an item over several datasets (a dashboard's tiles, several reports): reads each
/// dataset's flags, one at a time, to learn which require an identity; an identity that
/// names no dataset applies to those.
#[derive(Default)]
pub(super) struct SecuredDatasets {
    /// Still to read, last first.
    pub(super) unread: Vec<DatasetId>,
    /// Read, and requiring an identity.
    pub(super) secured: Vec<Dataset>,
}

impl SecuredDatasets {
    /// Reads `datasets` (in order, each once).
    fn read(&mut self, datasets: impl Iterator<Item = DatasetId>) {
        self.unread = distinct(datasets).into_iter().rev().collect();
    }

    /// Notes a dataset's flags.
    fn record(&mut self, dataset: Dataset) {
        if dataset.is_effective_identity_required {
            self.secured.push(dataset);
        }
    }

    /// The next dataset to read, if any.
    fn next_need(&mut self, workspace: &WorkspaceId) -> Result<Option<Minted>, ExchangeError> {
        let Some(dataset) = self.unread.pop() else {
            return Ok(None);
        };
        let request = GetDatasetInGroup::new(workspace.clone(), dataset);
        Ok(Some(Minted::More(metadata_need(
            &request,
            MetadataKind::Dataset,
        )?)))
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
    /// Reads the next tile dataset's flags, or mints: identities that name no dataset
    /// apply to the tiles' datasets that require one; others are taken as given.
    fn next_dataset(&mut self, options: &EmbedOptions) -> Result<Minted, Error> {
        if let Some(more) = self.datasets.next_need(&self.workspace)? {
            return Ok(more);
        }
        let dashboard = self.metadata.as_ref().ok_or_else(unexpected)?;
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
    fn metadata(&self) -> Result<Need, ExchangeError> {
        let request = GetDashboardInGroup::new(self.workspace.clone(), self.dashboard.clone());
        metadata_need(&request, MetadataKind::Dashboard)
    }

    fn minting(&mut self, metadata: Metadata, options: &EmbedOptions) -> Result<Minted, Error> {
        match metadata {
            // An identity that names no dataset needs the datasets of the tiles; so does
            // no identity at all (none of them may require one).
            Metadata::Dashboard(dashboard) if options.needs_secured_datasets() => {
                self.metadata = Some(dashboard);
                let request = GetTilesInGroup::new(self.workspace.clone(), self.dashboard.clone());
                Ok(Minted::More(metadata_need(&request, MetadataKind::Tiles)?))
            }
            Metadata::Dashboard(dashboard) => {
                self.metadata = Some(dashboard);
                self.next_dataset(options)
            }
            Metadata::Tiles(tiles) => {
                self.datasets.read(tiles.into_iter().filter_map(|t| t.dataset_id));
                self.next_dataset(options)
            }
            Metadata::Dataset(dataset) => {
                self.datasets.record(dataset);
                self.next_dataset(options)
            }
            _ => Err(unexpected()),
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
}

impl Item for TileItem {
    fn metadata(&self) -> Result<Need, ExchangeError> {
        let request = GetTileInGroup::new(self.workspace.clone(), self.dashboard.clone(), self.tile.clone());
        metadata_need(&request, MetadataKind::Tile)
    }

    fn minting(&mut self, metadata: Metadata, options: &EmbedOptions) -> Result<Minted, Error> {
        let Metadata::Tile(tile) = metadata else {
            return Err(unexpected());
        };
        let request = tile_token_request(&self.workspace, &self.dashboard, &tile, options);
        let minting = Minting::mint(
            &request,
            tile.dataset_id.as_ref(),
            &request.request_body().identities,
        )?;
        self.metadata = Some(tile);
        Ok(minting)
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
    fn metadata(&self) -> Result<Need, ExchangeError> {
        let request = GetDatasetInGroup::new(self.workspace.clone(), self.dataset.clone());
        metadata_need(&request, MetadataKind::Dataset)
    }

    fn minting(&mut self, metadata: Metadata, options: &EmbedOptions) -> Result<Minted, Error> {
        let Metadata::Dataset(dataset) = metadata else {
            return Err(unexpected());
        };
        // Refused before a token is minted for nothing.
        self.embed_url(&dataset)?;
        let minted = if self.kind == EmbedKind::Qna {
            let request = qna_token_request(&self.workspace, &dataset.id, options);
            Minting::mint(&request, None, &request.request_body().identities)?
        } else {
            let request = create_token_request(&self.workspace, &dataset.id, options);
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

/// Several reports on one page under one multi-resource token: each report's metadata,
/// the datasets' flags when an identity names no dataset (it applies to those that
/// require one), then the token over every report and dataset.
pub(super) struct ReportsItem {
    pub(super) workspace: WorkspaceId,
    pub(super) reports: Vec<ReportId>,
    pub(super) metadata: Vec<Report>,
    /// The reports' datasets, read when an identity names no dataset.
    pub(super) datasets: SecuredDatasets,
}

impl ReportsItem {
    fn dataset_ids(&self) -> Vec<DatasetId> {
        distinct(self.metadata.iter().filter_map(|r| r.dataset_id.clone()))
    }

    /// The next report's metadata, the next dataset's flags, or the token. Identities
    /// that name no dataset apply to the datasets that require one (checked here, their
    /// flags being known); otherwise every dataset goes through the pre-flight.
    fn next(&mut self, options: &EmbedOptions) -> Result<Minted, Error> {
        if let Some(report) = self.reports.get(self.metadata.len()) {
            let request = GetReportInGroup::new(self.workspace.clone(), report.clone());
            return Ok(Minted::More(metadata_need(&request, MetadataKind::Report)?));
        }
        if let Some(more) = self.datasets.next_need(&self.workspace)? {
            return Ok(more);
        }
        let all = self.dataset_ids();
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
    fn metadata(&self) -> Result<Need, ExchangeError> {
        let first = self
            .reports
            .first()
            .ok_or_else(|| ExchangeError::invalid_input("reports", "name at least one"))?;
        metadata_need(
            &GetReportInGroup::new(self.workspace.clone(), first.clone()),
            MetadataKind::Report,
        )
    }

    fn minting(&mut self, metadata: Metadata, options: &EmbedOptions) -> Result<Minted, Error> {
        match metadata {
            Metadata::Report(report) => {
                self.metadata.push(report);
                if self.metadata.len() == self.reports.len() && options.has_unbound_identity() {
                    self.datasets.read(self.dataset_ids().into_iter());
                }
            }
            Metadata::Dataset(dataset) => self.datasets.record(dataset),
            _ => return Err(unexpected()),
        }
        self.next(options)
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
