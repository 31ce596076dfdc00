//! The plan of an embed configuration: the item's metadata (for its embed URL), the RLS
//! pre-flight against the datasets involved, then the token; for one item, or several
//! reports under one token.
//!
//! Round trips are what a user waits for, so reads that do not depend on each other go
//! side by side ([`Next::All`]): a dashboard and its tiles, the tiles' datasets, several
//! reports. Where the token does not depend on the datasets' flags (the identity is bound
//! already), a token in the cache is served before anything else; flags in the cache are
//! checked before minting; flags not cached are read beside the token, and used only to
//! explain a refusal.

use super::items::{DashboardItem, DatasetItem, ReportItem, ReportsItem, TileItem};
use super::{
    Answer, BranchPlan, Metadata, MetadataKind, Need, Next, Plan, Refused, Want, failed_or_unexpected,
};
use crate::api::embed_config::{EmbedConfig, EmbedKind, QnaMode};
use crate::api::embed_request::{EmbedItem, EmbedOptions, EmbedRequest, check_rls};
use crate::api::embed_token::EmbedToken;
use crate::api::identity::EffectiveIdentity;
use crate::api::metadata::GetDatasetInGroup;
use crate::api::request::{ApiRequest, Prepared};
use crate::flow::call::Call;
use crate::flow::error::Error;
use crate::wire::error::{ErrorKind, ExchangeError};
use crate::wire::ids::{DatasetId, WorkspaceId};

/// An item that can be embedded: how to read its metadata, and what to mint from it.
pub(super) trait Item: Send {
    /// The first metadata to read (several are read side by side).
    fn metadata(&self, options: &EmbedOptions) -> Result<Vec<Need>, ExchangeError>;
    /// Given the metadata asked for last, in order: more to read first, or the token to
    /// mint and the datasets whose RLS flags to check.
    fn minting(&mut self, metadata: Vec<Metadata>, options: &EmbedOptions) -> Result<Minted, Error>;
    /// The configuration, given the token.
    fn config(&self, token: EmbedToken, options: &EmbedOptions) -> Result<EmbedConfig, Error>;
    /// Every configuration the token serves (one, unless several items share it).
    fn configs(&self, token: EmbedToken, options: &EmbedOptions) -> Result<Vec<EmbedConfig>, Error> {
        Ok(vec![self.config(token, options)?])
    }
}

/// What an item needs once its metadata has come.
pub(super) enum Minted {
    /// More metadata first (side by side).
    More(Vec<Need>),
    /// The token, after the pre-flight.
    Mint(Minting),
}

/// What to mint for an item, and what to check first.
pub(super) struct Minting {
    token: Prepared,
    preflight: Vec<DatasetId>,
    pub(super) identities: Vec<EffectiveIdentity>,
}

impl Minting {
    pub(super) fn mint<'d, R: ApiRequest>(
        request: &R,
        preflight: impl IntoIterator<Item = &'d DatasetId>,
        identities: &[EffectiveIdentity],
    ) -> Result<Minted, Error> {
        let mut datasets: Vec<DatasetId> = Vec::new();
        for dataset in preflight {
            if !datasets.contains(dataset) {
                datasets.push(dataset.clone());
            }
        }
        Ok(Minted::Mint(Self {
            token: Prepared::new(request)?,
            preflight: datasets,
            identities: identities.to_vec(),
        }))
    }

    /// A refusal of this token, explained by the flags read beside it when they show
    /// the identities do not suit a dataset; else the refusal as Power BI gave it.
    fn explain(&self, refusal: Error, flags: Vec<Answer>) -> Error {
        if !matches!(refusal.kind(), ErrorKind::RlsIdentity | ErrorKind::BadRequest) {
            return refusal;
        }
        flags
            .into_iter()
            .find_map(|answer| match answer {
                Answer::Metadata(Metadata::Dataset(dataset)) => check_rls(&dataset, &self.identities).err(),
                _ => None,
            })
            .map_or(refusal, Error::from)
    }
}

enum EmbedState {
    Start,
    /// Reading the item's metadata.
    Metadata,
    /// Looking for the token in the cache (no IO).
    CachedToken(Minting),
    /// Looking for the datasets' flags in the cache (no IO), `asking` now: those cached
    /// are checked here, the others read `beside` the token.
    CachedFlags {
        minting: Minting,
        asking: DatasetId,
        beside: Vec<DatasetId>,
    },
    /// Minting, with the flags not cached read beside (first the token, then those).
    Token(Minting),
    /// Warm-up: reading the flags ahead.
    Flags,
}

/// How a plan turns the item and its token into the call's output: one configuration, or
/// all of them (several reports under one token).
type Finish<I, O> = fn(&I, EmbedToken, &EmbedOptions) -> Result<O, Error>;

/// What an embed plan is for.
enum Purpose<I, O> {
    /// The configuration(s), from the item and its token.
    Configure(Finish<I, O>),
    /// Only what is read ahead of minting, fetched unless fresh (warm-up): the item's
    /// metadata and its datasets' flags; then what this makes.
    Prepare(fn() -> O),
}

/// An embed configuration: metadata, pre-flight, token.
struct EmbedPlan<I, O> {
    workspace: WorkspaceId,
    item: I,
    options: EmbedOptions,
    state: EmbedState,
    purpose: Purpose<I, O>,
}

impl<I: Item, O> EmbedPlan<I, O> {
    /// `needs`, side by side; for warm-up, fetched unless fresh in the cache.
    fn read(&self, needs: Vec<Need>) -> Next<O> {
        match self.purpose {
            Purpose::Prepare(_) => Next::all(needs.into_iter().map(Need::warm).collect()),
            Purpose::Configure(_) => Next::all(needs),
        }
    }

    fn flags(&self, dataset: DatasetId) -> Result<Prepared, ExchangeError> {
        Prepared::new(&GetDatasetInGroup::new(self.workspace.clone(), dataset))
    }

    /// The item's metadata is in: the token, from the cache or minted, with the
    /// pre-flight around it; for warm-up, the flags.
    fn mint(&mut self, minting: Minting) -> Result<Next<O>, Error> {
        let preflight = self.options.preflight() && !minting.preflight.is_empty();
        if let Purpose::Prepare(_) = self.purpose {
            if !preflight {
                return self.prepared();
            }
            let needs = minting
                .preflight
                .iter()
                .map(|d| {
                    Ok(Need::Warm(
                        self.flags(d.clone())?,
                        Want::Metadata(MetadataKind::Dataset),
                    ))
                })
                .collect::<Result<Vec<_>, ExchangeError>>()?;
            self.state = EmbedState::Flags;
            return Ok(Next::all(needs));
        }
        if !preflight {
            let need = Need::Api(minting.token.clone(), Want::EmbedToken);
            self.state = EmbedState::Token(minting);
            return Ok(Next::Need(need));
        }
        let need = Need::Cached(minting.token.clone(), Want::EmbedToken);
        self.state = EmbedState::CachedToken(minting);
        Ok(Next::Need(need))
    }

    /// The next dataset's flags from the cache, or the token with those not cached.
    fn next_flags(&mut self, mut minting: Minting, beside: Vec<DatasetId>) -> Result<Next<O>, Error> {
        if let Some(dataset) = minting.preflight.pop() {
            let need = Need::Cached(
                self.flags(dataset.clone())?,
                Want::Metadata(MetadataKind::Dataset),
            );
            self.state = EmbedState::CachedFlags {
                minting,
                asking: dataset,
                beside,
            };
            return Ok(Next::Need(need));
        }
        let mut needs = vec![Need::Api(minting.token.clone(), Want::EmbedToken)];
        for dataset in beside {
            needs.push(Need::Api(
                self.flags(dataset)?,
                Want::Metadata(MetadataKind::Dataset),
            ));
        }
        self.state = EmbedState::Token(minting);
        Ok(Next::all(needs))
    }

    fn finished(&self, token: EmbedToken) -> Result<Next<O>, Error> {
        match &self.purpose {
            Purpose::Configure(finish) => Ok(Next::Done(finish(&self.item, token, &self.options)?)),
            Purpose::Prepare(_) => Err(super::unexpected()),
        }
    }

    fn prepared(&self) -> Result<Next<O>, Error> {
        match &self.purpose {
            Purpose::Prepare(done) => Ok(Next::Done(done())),
            Purpose::Configure(_) => Err(super::unexpected()),
        }
    }
}

impl<I: Item, O> Plan for EmbedPlan<I, O> {
    type Output = O;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<O>, Error> {
        // Every request of the call goes as the request's profile, when it names one.
        let next = self.step(answer)?;
        Ok(next.sent_as(self.options.profile.as_ref()))
    }
}

impl<I: Item, O> EmbedPlan<I, O> {
    fn step(&mut self, answer: Option<Answer>) -> Result<Next<O>, Error> {
        match (std::mem::replace(&mut self.state, EmbedState::Start), answer) {
            (EmbedState::Start, None) => {
                self.state = EmbedState::Metadata;
                let needs = self.item.metadata(&self.options)?;
                Ok(self.read(needs))
            }
            (EmbedState::Metadata, Some(answer)) => {
                let metadata = answer
                    .into_list()
                    .into_iter()
                    .map(|answer| match answer {
                        Answer::Metadata(metadata) => Ok(metadata),
                        other => Err(failed_or_unexpected(Some(other))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                match self.item.minting(metadata, &self.options)? {
                    Minted::More(needs) => {
                        self.state = EmbedState::Metadata;
                        Ok(self.read(needs))
                    }
                    Minted::Mint(minting) => self.mint(minting),
                }
            }
            (EmbedState::CachedToken(_), Some(Answer::Token(token))) => self.finished(token),
            (EmbedState::CachedToken(minting), Some(Answer::NotCached)) => {
                self.next_flags(minting, Vec::new())
            }
            (
                EmbedState::CachedFlags {
                    minting,
                    asking,
                    mut beside,
                },
                Some(answer),
            ) => {
                match answer {
                    Answer::Metadata(Metadata::Dataset(dataset)) => check_rls(&dataset, &minting.identities)?,
                    Answer::NotCached => beside.push(asking),
                    other => return Err(failed_or_unexpected(Some(other))),
                }
                self.next_flags(minting, beside)
            }
            (EmbedState::Token(minting), Some(answer)) => {
                let mut answers = answer.into_list().into_iter();
                match answers.next() {
                    Some(Answer::Token(token)) => self.finished(token),
                    Some(Answer::Failed(refusal)) => Err(minting.explain(refusal, answers.collect())),
                    other => Err(failed_or_unexpected(other)),
                }
            }
            // Flags that cannot be read ahead (a dataset in another workspace) are left to
            // the pre-flight of the call that mints.
            (EmbedState::Flags, Some(_)) => self.prepared(),
            (_, other) => Err(failed_or_unexpected(other)),
        }
    }
}

fn embed<I: Item + Sync + 'static, O: Send + 'static>(
    item: I,
    request: &EmbedRequest,
    finish: Finish<I, O>,
) -> Call<'static, O> {
    Call::new(plan_for(item, request, Purpose::Configure(finish)))
}

fn plan_for<I: Item, O>(item: I, request: &EmbedRequest, purpose: Purpose<I, O>) -> EmbedPlan<I, O> {
    EmbedPlan {
        workspace: request.workspace().clone(),
        item,
        options: request.options().clone(),
        state: EmbedState::Start,
        purpose,
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

/// Something done with the item of a request, whatever the item's type.
trait WithItem {
    type Output;
    fn with<I: Item + Sync + 'static>(self, item: I) -> Self::Output;
}

/// Does `with` with the item `request` names.
fn for_item<W: WithItem>(request: &EmbedRequest, with: W) -> W::Output {
    let workspace = request.workspace().clone();
    let report = |report, visual, paginated| ReportItem {
        workspace: workspace.clone(),
        report,
        visual,
        paginated,
        metadata: None,
        flags: None,
    };
    let dataset = |dataset, kind| DatasetItem {
        workspace: workspace.clone(),
        dataset,
        kind,
        metadata: None,
    };
    match request.item().clone() {
        EmbedItem::Report(id) => with.with(report(id, None, false)),
        EmbedItem::Paginated(id) => with.with(report(id, None, true)),
        EmbedItem::Visual {
            report: id,
            page,
            visual,
        } => with.with(report(id, Some((page, visual)), false)),
        EmbedItem::Reports(reports) => with.with(ReportsItem::new(workspace.clone(), reports)),
        EmbedItem::Qna(id) => with.with(dataset(id, EmbedKind::Qna)),
        EmbedItem::Create(id) => with.with(dataset(id, EmbedKind::Create)),
        EmbedItem::Dashboard(dashboard) => with.with(DashboardItem::new(workspace.clone(), dashboard)),
        EmbedItem::Tile { dashboard, tile } => with.with(TileItem {
            workspace: workspace.clone(),
            dashboard,
            tile,
            metadata: None,
            flags: None,
        }),
    }
}

/// The call that makes an embed request's configuration(s).
struct Configure<'q, O>(&'q EmbedRequest, std::marker::PhantomData<fn() -> O>);

impl<O: EmbedOutput> WithItem for Configure<'_, O> {
    type Output = Call<'static, O>;

    fn with<I: Item + Sync + 'static>(self, item: I) -> Call<'static, O> {
        embed(item, self.0, O::finish)
    }
}

/// The plan that reads ahead what an embed request's configuration will need.
struct Prepare<'q>(&'q EmbedRequest);

impl WithItem for Prepare<'_> {
    type Output = BranchPlan;

    fn with<I: Item + Sync + 'static>(self, item: I) -> BranchPlan {
        Box::new(plan_for(item, self.0, Purpose::Prepare(|| Answer::Ready)))
    }
}

/// The plan for any embed request.
fn embed_plan<O: EmbedOutput>(request: &EmbedRequest) -> Call<'static, O> {
    if let Err(error) = check_options(request) {
        return Call::new(Refused::new(error));
    }
    for_item(request, Configure(request, std::marker::PhantomData))
}

/// What `request`'s configuration reads before it mints (its item's metadata and its
/// datasets' flags), fetched unless fresh in the cache: warm-up, as a plan of its own.
pub(super) fn prepare(request: &EmbedRequest) -> BranchPlan {
    if let Err(error) = check_options(request) {
        return Box::new(Refused::new(error));
    }
    for_item(request, Prepare(request))
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
    if options.page.is_some() && !is(|i| matches!(i, EmbedItem::Report(_) | EmbedItem::Paginated(_))) {
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
    // Every name and text that reaches the configuration: one rule for each.
    let mut texts: Vec<(&'static str, &str, usize)> = Vec::new();
    if let EmbedItem::Visual { page, visual, .. } = item {
        texts.extend([
            ("pageName", page.as_str(), MAX_NAME_CHARS),
            ("visualName", visual, MAX_NAME_CHARS),
        ]);
    }
    if let Some(page) = &options.page {
        texts.push(("pageName", page, MAX_NAME_CHARS));
    }
    if let Some(question) = &options.question {
        texts.push(("question", question, MAX_QUESTION_CHARS));
    }
    for (field, value, most) in texts {
        if value.trim().is_empty() || value.chars().count() > most || value.chars().any(char::is_control) {
            return Err(ExchangeError::invalid_input(
                field,
                format!("must be 1 to {most} characters, no control characters"),
            ));
        }
    }
    Ok(())
}

/// The longest page or visual name taken (Power BI's are far shorter).
const MAX_NAME_CHARS: usize = 256;
/// The longest Q&A question taken.
const MAX_QUESTION_CHARS: usize = 1000;
