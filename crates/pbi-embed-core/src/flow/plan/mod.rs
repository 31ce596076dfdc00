//! What each kind of call needs, in order: a plan answers "what next?" given the answer
//! to its last need. The session fetches each need (from a cache, or by sign-in and
//! exchanges with retries); the plan only sequences them and builds the result.
//!
//! The simple plans are here; an embed configuration, the longest (the item's metadata
//! for its embed URL, the RLS pre-flight against the datasets involved, then the token),
//! is in [`embed`], over the items of [`items`].

mod embed;
mod items;
mod warm_up;

use crate::api::embed_token::EmbedToken;
use crate::api::metadata::{Dataset, GetDatasetInGroup};
use crate::api::request::{ApiRequest, Prepared};
use crate::auth::bearer::BearerToken;
use crate::flow::answer::{Answer, Metadata, MetadataKind, Want};
use crate::flow::call::Call;
use crate::flow::error::Error;
use crate::wire::error::ExchangeError;
use crate::wire::ids::{DatasetId, ProfileId, WorkspaceId};
use crate::wire::response;

/// A plan: given the answer to its last need (`None` at the start), what it needs next or
/// its result.
pub(crate) trait Plan {
    type Output;
    fn next(&mut self, answer: Option<Answer>) -> Result<Next<Self::Output>, Error>;
}

pub(crate) enum Next<T> {
    Need(Need),
    /// These, side by side: answered with [`Answer::All`], in this order.
    All(Vec<Side>),
    Done(T),
}

impl<T> Next<T> {
    /// The same step, every request in it sent as `profile` (when given).
    pub(crate) fn sent_as(self, profile: Option<&ProfileId>) -> Self {
        if profile.is_none() {
            return self;
        }
        match self {
            Self::Need(need) => Self::Need(need.sent_as(profile)),
            Self::All(sides) => Self::All(
                sides
                    .into_iter()
                    .map(|side| match side {
                        Side::Need(need) => Side::Need(need.sent_as(profile)),
                        plan @ Side::Plan(_) => plan,
                    })
                    .collect(),
            ),
            done @ Self::Done(_) => done,
        }
    }

    /// `needs` fetched side by side; one alone is fetched as it is (its answer is its own).
    pub(crate) fn all(mut needs: Vec<Need>) -> Self {
        match needs.len() {
            1 => Self::Need(needs.remove(0)),
            _ => Self::All(needs.into_iter().map(Side::Need).collect()),
        }
    }
}

/// One of the steps a plan takes side by side.
pub(crate) enum Side {
    /// A need: answered at once from the cache when it is there, else fetched as a call
    /// of its own.
    Need(Need),
    /// A whole plan, run as a call of its own.
    Plan(BranchPlan),
}

/// A plan run beside others as a call of its own ([`Next::All`]).
pub(crate) type BranchPlan = Box<dyn Plan<Output = Answer> + Send>;

/// What a plan needs fetched.
pub(crate) enum Need {
    /// This request's answer, in this form.
    Api(Prepared, Want),
    /// This request's answer from the cache only ([`Answer::NotCached`] when it is not
    /// there): no IO.
    Cached(Prepared, Want),
    /// This request's answer, fetched unless the cache holds it outside the time it is
    /// due for a refresh (warm-up).
    Warm(Prepared, Want),
    /// The session's bearer token itself.
    Bearer,
    /// The session's bearer token renewed, in the background, unless it is fresh.
    RenewBearer,
    /// This request fetched again into its cache, past the cache (refresh-ahead).
    Refresh(Prepared, Want),
}

impl Need {
    /// The same need, its request sent as `profile` (when given) instead of the client's.
    pub(crate) fn sent_as(self, profile: Option<&ProfileId>) -> Self {
        match self {
            Self::Api(request, want) => Self::Api(request.sent_as(profile), want),
            Self::Cached(request, want) => Self::Cached(request.sent_as(profile), want),
            Self::Warm(request, want) => Self::Warm(request.sent_as(profile), want),
            Self::Refresh(request, want) => Self::Refresh(request.sent_as(profile), want),
            bearer @ (Self::Bearer | Self::RenewBearer) => bearer,
        }
    }

    /// The same need, for warm-up: a request fetched unless fresh in the cache.
    pub(crate) fn warm(self) -> Self {
        match self {
            Self::Api(request, want) | Self::Cached(request, want) => Self::Warm(request, want),
            other => other,
        }
    }
}

/// One need, as a plan: fetch it, answer with what came.
pub(crate) struct FetchOne(Option<Need>);

impl FetchOne {
    pub(crate) fn plan(need: Need) -> BranchPlan {
        Box::new(Self(Some(need)))
    }
}

impl Plan for FetchOne {
    type Output = Answer;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<Answer>, Error> {
        match (self.0.take(), answer) {
            (Some(need), _) => Ok(Next::Need(need)),
            (None, Some(answer)) => Ok(Next::Done(answer)),
            (None, None) => Err(unexpected()),
        }
    }
}

/// Work a call hands its driver to run on its own ([`Action::Spawn`](crate::driver::Action::Spawn)):
/// fetching a cached item again before it expires (refresh-ahead), or renewing the bearer
/// token before it expires, while calls go on with the one held. Run it with
/// [`Call::refresh`]; a driver that cannot spawn may drop it (the work is then handed
/// out again after the deadline of a call, or done by a call that needs it).
#[derive(Debug)]
pub struct Background(pub(crate) Behind);

/// What background work does.
#[derive(Debug)]
pub(crate) enum Behind {
    /// Fetch this item again into its cache.
    Item { request: Prepared, want: Want },
    /// Renew the bearer token.
    Bearer,
}

/// The plan of a refresh: fetch past the cache, then done.
struct Refresh(Option<Behind>);

impl Plan for Refresh {
    type Output = ();

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<()>, Error> {
        match (self.0.take(), answer) {
            (Some(Behind::Item { request, want }), _) => Ok(Next::Need(Need::Refresh(request, want))),
            (Some(Behind::Bearer), _) => Ok(Next::Need(Need::RenewBearer)),
            (None, Some(Answer::Failed(error))) => Err(error),
            (None, _) => Ok(Next::Done(())),
        }
    }
}

impl Call<'static, ()> {
    /// Runs background work a call handed out ([`Action::Spawn`](crate::driver::Action::Spawn)):
    /// the item is fetched again into its cache.
    pub fn refresh(work: Background) -> Self {
        Self::new(Refresh(Some(work.0)))
    }
}

/// An answer the plan did not ask for: a bug in the session, reported, not a panic.
pub(crate) fn unexpected() -> Error {
    ExchangeError::invalid_input("call", "the flow got an answer of the wrong kind").into()
}

pub(crate) fn failed_or_unexpected(answer: Option<Answer>) -> Error {
    match answer {
        Some(Answer::Failed(error)) => error,
        _ => unexpected(),
    }
}

/// Any request, no caching: the response parsed by the request itself.
struct Execute<'r, R> {
    request: &'r R,
}

impl<R: ApiRequest> Plan for Execute<'_, R> {
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

impl<R: ApiRequest<Output = EmbedToken>> Plan for MintToken<'_, R> {
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

impl Plan for SignIn {
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

impl Plan for GetDataset {
    type Output = Dataset;

    fn next(&mut self, answer: Option<Answer>) -> Result<Next<Dataset>, Error> {
        match answer {
            None => Ok(Next::Need(metadata_need(&self.request, MetadataKind::Dataset)?)),
            Some(Answer::Metadata(Metadata::Dataset(dataset))) => Ok(Next::Done(dataset)),
            other => Err(failed_or_unexpected(other)),
        }
    }
}

pub(crate) fn metadata_need<R: ApiRequest>(request: &R, kind: MetadataKind) -> Result<Need, ExchangeError> {
    Ok(Need::Api(Prepared::new(request)?, Want::Metadata(kind)))
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

/// A call that fails at once, before anything is sent.
pub(crate) struct Refused<O>(Option<Error>, std::marker::PhantomData<fn() -> O>);

impl<O> Refused<O> {
    pub(crate) fn new(error: ExchangeError) -> Self {
        Self(Some(error.into()), std::marker::PhantomData)
    }
}

impl<O> Plan for Refused<O> {
    type Output = O;

    fn next(&mut self, _: Option<Answer>) -> Result<Next<O>, Error> {
        Err(self.0.take().unwrap_or_else(unexpected))
    }
}
