//! What each kind of call needs, in order: a plan answers "what next?" given the answer
//! to its last need. The session fetches each need (from a cache, or by sign-in and
//! exchanges with retries); the plan only sequences them and builds the result.
//!
//! An embed configuration is the longest plan: the item's metadata (for its embed URL),
//! the RLS pre-flight against the datasets involved, then the token.

use crate::api::embed_config::{
    EmbedConfig, EmbedItem, EmbedKind, EmbedOptions, EmbedRequest, QnaMode, check_rls, create_token_request,
    dashboard_token_request, qna_token_request, report_token_request, reports_token_request,
    tile_token_request,
};
use crate::api::embed_token::EmbedToken;
use crate::api::identity::EffectiveIdentity;
use crate::api::metadata::{
    Dashboard, Dataset, GetDashboardInGroup, GetDatasetInGroup, GetReportInGroup, GetTileInGroup,
    GetTilesInGroup, Report, Tile,
};
use crate::flow::cache::Metadata;
use crate::flow::call::Call;
use crate::flow::error::Error;
use crate::wire::error::{ErrorKind, ExchangeError};
use crate::wire::ids::{DashboardId, DatasetId, ReportId, TileId, WorkspaceId};
use crate::wire::lifetime::BearerToken;
use crate::wire::operation::{ApiRequest, Prepared};
use crate::wire::response;

/// A plan: given the answer to its last need (`None` at the start), what it needs next or
/// its result.
pub(crate) trait Steps {
    type Output;
    fn next(&mut self, answer: Option<Answer>) -> Result<Next<Self::Output>, Error>;
}

pub(crate) enum Next<T> {
    Need(Need),
    Done(T),
}

/// What a plan needs fetched.
pub(crate) enum Need {
    /// This request's answer, in this form.
    Api(Prepared, Want),
    /// The session's bearer token itself.
    Bearer,
    /// This request fetched again into its cache, past the cache (refresh-ahead).
    Refresh(Prepared, Want),
}

/// Work a call hands its driver to run on its own ([`Action::Spawn`](crate::driver::Action::Spawn)):
/// fetching a cached item again before it expires (refresh-ahead). Run it with
/// [`Call::refresh`]; a driver that cannot spawn may drop it (the refresh is then tried
/// again after the deadline of a call).
#[derive(Debug)]
pub struct Background {
    pub(crate) request: Prepared,
    pub(crate) want: Want,
}

/// The plan of a refresh: fetch past the cache, then done.
struct Refresh(Option<Background>);

impl Steps for Refresh {
    type Output = ();

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<()>, Error> {
        match (self.0.take(), answer) {
            (Some(work), _) => Ok(Next::Need(Need::Refresh(work.request, work.want))),
            (None, Some(Answer::Failed(error))) => Err(error),
            (None, _) => Ok(Next::Done(())),
        }
    }
}

impl Call<'static, ()> {
    /// Runs background work a call handed out ([`Action::Spawn`](crate::driver::Action::Spawn)):
    /// the item is fetched again into its cache.
    pub fn refresh(work: Background) -> Self {
        Self::new(Refresh(Some(work)))
    }
}

/// The form an answer takes, which also says how it is cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// The successful response as it came (no cache); the plan parses it.
    Response,
    /// An embed token, through the embed-token cache.
    EmbedToken,
    /// Item metadata, through the metadata cache.
    Metadata(MetadataKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetadataKind {
    Report,
    Dashboard,
    Tile,
    Tiles,
    Dataset,
}

impl MetadataKind {
    pub(crate) fn output_name(self) -> &'static str {
        match self {
            Self::Report => "Report",
            Self::Dashboard => "Dashboard",
            Self::Tile => "Tile",
            Self::Tiles => "Tiles",
            Self::Dataset => "Dataset",
        }
    }

    pub(crate) fn parse(self, body: &[u8]) -> Result<Metadata, String> {
        Ok(match self {
            Self::Report => Metadata::Report(Report::from_json(body)?),
            Self::Dashboard => Metadata::Dashboard(Dashboard::from_json(body)?),
            Self::Tile => Metadata::Tile(Tile::from_json(body)?),
            Self::Tiles => Metadata::Tiles(GetTilesInGroup::parse_list(body)?),
            Self::Dataset => Metadata::Dataset(Dataset::from_json(body)?),
        })
    }
}

/// The answer to a need.
pub(crate) enum Answer {
    Response(http::Response<Vec<u8>>),
    Token(EmbedToken),
    Metadata(Metadata),
    Bearer(BearerToken),
    /// Nothing to do: a refresh another call is already fetching.
    Skipped,
    Failed(Error),
}

/// An answer the plan did not ask for: a bug in the session, reported, not a panic.
fn unexpected() -> Error {
    ExchangeError::invalid_input("call", "the flow got an answer of the wrong kind").into()
}

fn failed_or_unexpected(answer: Option<Answer>) -> Error {
    match answer {
        Some(Answer::Failed(error)) => error,
        _ => unexpected(),
    }
}

/// Any request, no caching: the response parsed by the request itself.
struct Execute<'r, R> {
    request: &'r R,
}

impl<R: ApiRequest> Steps for Execute<'_, R> {
    type Output = R::Output;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<R::Output>, Error> {
        match answer {
            None => Ok(Next::Need(Need::Api(
                Prepared::new(self.request)?,
                Want::Response,
            ))),
            Some(Answer::Response(response)) => {
                let request = self.request;
                let parsed = response::parse_success(&response, request.output_name(), |body| {
                    request.parse_success(body)
                })?;
                Ok(Next::Done(parsed))
            }
            other => Err(failed_or_unexpected(other)),
        }
    }
}

/// An embed token, through the embed-token cache.
struct MintToken<'r, R> {
    request: &'r R,
}

impl<R: ApiRequest<Output = EmbedToken>> Steps for MintToken<'_, R> {
    type Output = EmbedToken;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<EmbedToken>, Error> {
        match answer {
            None => Ok(Next::Need(Need::Api(
                Prepared::new(self.request)?,
                Want::EmbedToken,
            ))),
            Some(Answer::Token(token)) => Ok(Next::Done(token)),
            other => Err(failed_or_unexpected(other)),
        }
    }
}

/// The bearer token: signs in unless the held one is fresh.
struct SignIn;

impl Steps for SignIn {
    type Output = BearerToken;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<BearerToken>, Error> {
        match answer {
            None => Ok(Next::Need(Need::Bearer)),
            Some(Answer::Bearer(token)) => Ok(Next::Done(token)),
            other => Err(failed_or_unexpected(other)),
        }
    }
}

/// A dataset's metadata (its RLS flags), through the metadata cache.
struct GetDataset {
    request: GetDatasetInGroup,
}

impl Steps for GetDataset {
    type Output = Dataset;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<Dataset>, Error> {
        match answer {
            None => Ok(Next::Need(metadata_need(&self.request, MetadataKind::Dataset)?)),
            Some(Answer::Metadata(Metadata::Dataset(dataset))) => Ok(Next::Done(dataset)),
            other => Err(failed_or_unexpected(other)),
        }
    }
}

fn metadata_need<R: ApiRequest>(request: &R, kind: MetadataKind) -> Result<Need, ExchangeError> {
    Ok(Need::Api(Prepared::new(request)?, Want::Metadata(kind)))
}

/// An item that can be embedded: how to read its metadata, and what to mint from it.
trait Item: Send {
    /// The metadata request.
    fn metadata(&self) -> Result<Need, ExchangeError>;
    /// Given the metadata: more metadata to read first (answered here again), or the token
    /// to mint and the datasets whose RLS flags to check.
    fn minting(&mut self, metadata: Metadata, options: &EmbedOptions) -> Result<Minted, Error>;
    /// The configuration, given the token.
    fn config(&self, token: EmbedToken, options: &EmbedOptions) -> Result<EmbedConfig, Error>;
    /// Every configuration the token serves (one, unless several items share it).
    fn configs(&self, token: EmbedToken, options: &EmbedOptions) -> Result<Vec<EmbedConfig>, Error> {
        Ok(vec![self.config(token, options)?])
    }
}

/// What an item needs once its metadata has come.
enum Minted {
    /// Another piece of metadata first.
    More(Need),
    /// The token, after the pre-flight.
    Mint(Minting),
}

/// What to mint for an item, and what to check first.
struct Minting {
    token: Prepared,
    preflight: Vec<DatasetId>,
    identities: Vec<EffectiveIdentity>,
}

impl Minting {
    fn mint<'d, R: ApiRequest>(
        request: &R,
        preflight: impl IntoIterator<Item = &'d DatasetId>,
        identities: &[EffectiveIdentity],
    ) -> Result<Minted, Error> {
        Ok(Minted::Mint(Self {
            token: Prepared::new(request)?,
            preflight: preflight.into_iter().cloned().collect(),
            identities: identities.to_vec(),
        }))
    }
}

enum EmbedState {
    Start,
    Metadata,
    /// Checking the datasets' RLS flags, one at a time.
    Preflight(Minting),
    Token,
}

/// How a plan turns the item and its token into the call's output: one configuration, or
/// all of them (several reports under one token).
type Finish<I, O> = fn(&I, EmbedToken, &EmbedOptions) -> Result<O, Error>;

/// An embed configuration: metadata, pre-flight, token.
struct EmbedPlan<I, O> {
    workspace: WorkspaceId,
    item: I,
    options: EmbedOptions,
    state: EmbedState,
    finish: Finish<I, O>,
}

impl<I: Item, O> EmbedPlan<I, O> {
    /// The next dataset to check, or the token.
    fn after_preflight(&mut self, mut minting: Minting) -> Result<Next<O>, Error> {
        if self.options.preflight()
            && let Some(dataset) = minting.preflight.pop()
        {
            let request = GetDatasetInGroup::new(self.workspace.clone(), dataset);
            let need = metadata_need(&request, MetadataKind::Dataset)?;
            self.state = EmbedState::Preflight(minting);
            return Ok(Next::Need(need));
        }
        self.state = EmbedState::Token;
        Ok(Next::Need(Need::Api(minting.token, Want::EmbedToken)))
    }
}

impl<I: Item, O> Steps for EmbedPlan<I, O> {
    type Output = O;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<O>, Error> {
        match (std::mem::replace(&mut self.state, EmbedState::Start), answer) {
            (EmbedState::Start, None) => {
                self.state = EmbedState::Metadata;
                Ok(Next::Need(self.item.metadata()?))
            }
            (EmbedState::Metadata, Some(Answer::Metadata(metadata))) => {
                match self.item.minting(metadata, &self.options)? {
                    Minted::More(need) => {
                        self.state = EmbedState::Metadata;
                        Ok(Next::Need(need))
                    }
                    Minted::Mint(minting) => self.after_preflight(minting),
                }
            }
            (EmbedState::Preflight(minting), Some(Answer::Metadata(Metadata::Dataset(dataset)))) => {
                check_rls(&dataset, &minting.identities)?;
                self.after_preflight(minting)
            }
            // A dataset the client cannot read (in another workspace, say) is left to
            // Power BI to judge.
            (EmbedState::Preflight(minting), Some(Answer::Failed(error)))
                if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotAuthorized) =>
            {
                self.after_preflight(minting)
            }
            (EmbedState::Token, Some(Answer::Token(token))) => {
                Ok(Next::Done((self.finish)(&self.item, token, &self.options)?))
            }
            (_, other) => Err(failed_or_unexpected(other)),
        }
    }
}

struct ReportItem {
    workspace: WorkspaceId,
    report: ReportId,
    /// A visual's page and name, when one visual is embedded.
    visual: Option<(String, String)>,
    metadata: Option<Report>,
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
struct SecuredDatasets {
    /// Still to read, last first.
    unread: Vec<DatasetId>,
    /// Read, and requiring an identity.
    secured: Vec<Dataset>,
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

struct DashboardItem {
    workspace: WorkspaceId,
    dashboard: DashboardId,
    metadata: Option<Dashboard>,
    /// The tiles' datasets, read when an identity names no dataset.
    datasets: SecuredDatasets,
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
        if options.has_unbound_identity() {
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
            // An identity that names no dataset needs the datasets of the tiles.
            Metadata::Dashboard(dashboard) if options.has_unbound_identity() => {
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

struct TileItem {
    workspace: WorkspaceId,
    dashboard: DashboardId,
    tile: TileId,
    metadata: Option<Tile>,
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
struct DatasetItem {
    workspace: WorkspaceId,
    dataset: DatasetId,
    kind: EmbedKind,
    metadata: Option<Dataset>,
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

fn embed<I: Item + Sync + 'static, O: 'static>(
    item: I,
    request: &EmbedRequest,
    finish: Finish<I, O>,
) -> Call<'static, O> {
    Call::new(EmbedPlan {
        workspace: request.workspace().clone(),
        item,
        options: request.options().clone(),
        state: EmbedState::Start,
        finish,
    })
}

/// Several reports on one page under one multi-resource token: each report's metadata,
/// the datasets' flags when an identity names no dataset (it applies to those that
/// require one), then the token over every report and dataset.
struct ReportsItem {
    workspace: WorkspaceId,
    reports: Vec<ReportId>,
    metadata: Vec<Report>,
    /// The reports' datasets, read when an identity names no dataset.
    datasets: SecuredDatasets,
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

impl<'r, O> Call<'r, O> {
    /// Any Power BI request, signed in, with retries; nothing cached.
    pub fn execute<R: ApiRequest<Output = O> + Sync>(request: &'r R) -> Self {
        Self::new(Execute { request })
    }
}

impl<'r> Call<'r, EmbedToken> {
    /// An embed token from any GenerateToken request, through the embed-token cache (when
    /// it is on); identical requests in flight at once share one call to Power BI.
    pub fn embed_token<R: ApiRequest<Output = EmbedToken> + Sync>(request: &'r R) -> Self {
        Self::new(MintToken { request })
    }
}

impl Call<'static, BearerToken> {
    /// The bearer token: the held one while it is fresh, else a new sign-in.
    pub fn sign_in() -> Self {
        Self::new(SignIn)
    }
}

impl Call<'static, Dataset> {
    /// A dataset's metadata, including its RLS flags, through the metadata cache.
    pub fn dataset(workspace: &WorkspaceId, dataset: &DatasetId) -> Self {
        Self::new(GetDataset {
            request: GetDatasetInGroup::new(workspace.clone(), dataset.clone()),
        })
    }
}

/// What an embed call returns: one configuration, or every configuration one token
/// serves.
trait EmbedOutput: Send + Sized + 'static {
    fn finish<I: Item>(item: &I, token: EmbedToken, options: &EmbedOptions) -> Result<Self, Error>;
}

impl EmbedOutput for EmbedConfig {
    fn finish<I: Item>(item: &I, token: EmbedToken, options: &EmbedOptions) -> Result<Self, Error> {
        item.config(token, options)
    }
}

impl EmbedOutput for Vec<EmbedConfig> {
    fn finish<I: Item>(item: &I, token: EmbedToken, options: &EmbedOptions) -> Result<Self, Error> {
        item.configs(token, options)
    }
}

/// The plan for any embed request.
fn embed_plan<O: EmbedOutput>(request: &EmbedRequest) -> Call<'static, O> {
    let workspace = request.workspace().clone();
    if let Err(error) = check_options(request) {
        return Call::new(Refused::new(error));
    }
    match request.item().clone() {
        EmbedItem::Report(report) => embed(
            ReportItem {
                workspace,
                report,
                visual: None,
                metadata: None,
            },
            request,
            O::finish,
        ),
        EmbedItem::Reports(reports) => embed(
            ReportsItem {
                workspace,
                reports,
                metadata: Vec::new(),
                datasets: SecuredDatasets::default(),
            },
            request,
            O::finish,
        ),
        EmbedItem::Visual { report, page, visual } => embed(
            ReportItem {
                workspace,
                report,
                visual: Some((page, visual)),
                metadata: None,
            },
            request,
            O::finish,
        ),
        EmbedItem::Qna(dataset) => embed(
            DatasetItem {
                workspace,
                dataset,
                kind: EmbedKind::Qna,
                metadata: None,
            },
            request,
            O::finish,
        ),
        EmbedItem::Create(dataset) => embed(
            DatasetItem {
                workspace,
                dataset,
                kind: EmbedKind::Create,
                metadata: None,
            },
            request,
            O::finish,
        ),
        EmbedItem::Dashboard(dashboard) => embed(
            DashboardItem {
                workspace,
                dashboard,
                metadata: None,
                datasets: SecuredDatasets::default(),
            },
            request,
            O::finish,
        ),
        EmbedItem::Tile { dashboard, tile } => embed(
            TileItem {
                workspace,
                dashboard,
                tile,
                metadata: None,
            },
            request,
            O::finish,
        ),
    }
}

impl Call<'static, EmbedConfig> {
    /// The configuration `powerbi-client` takes to embed an item: its metadata (for the
    /// embed URL), the RLS pre-flight against the datasets' flags, and the token (for a
    /// report, a multi-resource token over the report and its dataset). Several reports
    /// ([`EmbedRequest::reports`]) take [`Call::embed_configs`].
    pub fn embed_config(request: &EmbedRequest) -> Self {
        if matches!(request.item(), EmbedItem::Reports(_)) {
            let error = ExchangeError::invalid_input(
                "reports",
                "several reports make several configurations: use embed_configs",
            );
            return Self::new(Refused::new(error));
        }
        embed_plan(request)
    }
}

impl Call<'static, Vec<EmbedConfig>> {
    /// Every configuration one token serves: for [`EmbedRequest::reports`], one per
    /// report, all carrying one multi-resource token over the reports and their datasets;
    /// for any other request, its one configuration.
    pub fn embed_configs(request: &EmbedRequest) -> Self {
        embed_plan(request)
    }
}

/// Options that do not fit the item, refused before anything is sent.
fn check_options(request: &EmbedRequest) -> Result<(), ExchangeError> {
    let options = request.options();
    let item = request.item();
    let is = |kind: fn(&EmbedItem) -> bool| kind(item);
    if let EmbedItem::Reports(reports) = item
        && !(1..=crate::api::token_request::MAX_ITEMS).contains(&reports.len())
    {
        return Err(ExchangeError::invalid_input(
            "reports",
            format!(
                "name 1 to {} reports (Power BI's limit for one token)",
                crate::api::token_request::MAX_ITEMS
            ),
        ));
    }
    if options.editable_requested() && !is(|i| matches!(i, EmbedItem::Report(_) | EmbedItem::Reports(_))) {
        return Err(ExchangeError::invalid_input(
            "editable",
            "applies to reports only; dashboards, tiles, visuals and Q&A are viewed, and create is authoring",
        ));
    }
    if options.page.is_some() && !is(|i| matches!(i, EmbedItem::Report(_))) {
        return Err(ExchangeError::invalid_input(
            "page",
            "applies to reports (a visual names its page itself)",
        ));
    }
    let qna = is(|i| matches!(i, EmbedItem::Qna(_)));
    if (options.question.is_some() || options.qna_mode != QnaMode::Interactive) && !qna {
        return Err(ExchangeError::invalid_input("question", "applies to Q&A only"));
    }
    if qna && options.qna_mode == QnaMode::ResultOnly && options.question.as_deref().is_none_or(str::is_empty)
    {
        return Err(ExchangeError::invalid_input(
            "question",
            "is required to show Q&A as a result only",
        ));
    }
    if let EmbedItem::Visual { page, visual, .. } = item {
        for (field, value) in [("pageName", page), ("visualName", visual)] {
            if value.trim().is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
                return Err(ExchangeError::invalid_input(
                    field,
                    "must be 1 to 256 characters, no control characters",
                ));
            }
        }
    }
    Ok(())
}

/// A call that fails at once, before anything is sent.
struct Refused<O>(Option<Error>, std::marker::PhantomData<fn() -> O>);

impl<O> Refused<O> {
    fn new(error: ExchangeError) -> Self {
        Self(Some(error.into()), std::marker::PhantomData)
    }
}

impl<O> Steps for Refused<O> {
    type Output = O;

    fn next(&mut self, _: Option<Answer>) -> Result<Next<O>, Error> {
        Err(self.0.take().unwrap_or_else(unexpected))
    }
}
