//! The plan of an embed configuration: the item's metadata (for its embed URL), the RLS
//! pre-flight against the datasets involved, then the token; for one item, or several
//! reports under one token.

use super::items::{DashboardItem, DatasetItem, ReportItem, ReportsItem, SecuredDatasets, TileItem};
use super::{
    Answer, Metadata, MetadataKind, Need, Next, Plan, Refused, Want, failed_or_unexpected, metadata_need,
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
pub(super) enum Minted {
    /// Another piece of metadata first.
    More(Need),
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

impl<I: Item, O> Plan for EmbedPlan<I, O> {
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
                paginated: false,
                metadata: None,
            },
            request,
            O::finish,
        ),
        EmbedItem::Paginated(report) => embed(
            ReportItem {
                workspace,
                report,
                visual: None,
                paginated: true,
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
                paginated: false,
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
