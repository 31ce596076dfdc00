//! One need of a plan, fetched: its life as a machine.
//!
//! A job looks in the cache first and joins an identical fetch another call leads; else
//! it leads the fetch itself. With a shared store it consults it first (a [`Lease`]),
//! then fetches from Power BI ([`Fetching`]: bearer token, send, retries), keeps the
//! answer in the cache, tells the store ([`Publish`]) and answers.

use std::path::PathBuf;
use std::time::Duration;

use crate::api::request::{ApiBase, Prepared};
use crate::auth::azure_cli::Command;
use crate::auth::bearer::BearerState;
use crate::auth::credential::Credential;
use crate::flow::answer::{Answer, Want};
use crate::flow::cache::{CacheKey, Caches};
use crate::flow::call::Now;
use crate::flow::error::{Error, Step};
use crate::flow::fetch::{FetchStep, Fetching};
use crate::flow::io::Reply;
use crate::flow::lease::{Lease, LeaseStep, Publish, PublishStep, Shared};
use crate::flow::plan::{Background, Behind, Need};
use crate::flow::retry::RetryState;
use crate::flow::scheduler::{Flight, Scheduler};
use crate::flow::store::{self, Op, StoreReply};
use crate::settings::client_settings::ClientSettings;
use crate::wire::cloud::Cloud;
use crate::wire::error::BoxError;
use crate::wire::lifetime::Freshness;
use crate::wire::operation::HttpRequest;

/// What a session was made with, checked once.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) settings: ClientSettings,
    pub(crate) cloud: Cloud,
    pub(crate) api_base: ApiBase,
    pub(crate) credential: Credential,
}

/// What a job works with while it steps: the session's parts and the call's time.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) bearer: &'a mut BearerState,
    pub(crate) caches: &'a mut Caches,
    pub(crate) scheduler: &'a mut Scheduler,
    /// The call's ticket.
    pub(crate) ticket: u64,
    pub(crate) now: Now,
    /// Any uniformly random number (for retry jitter).
    pub(crate) random: u32,
    /// What is left of the call's deadline.
    pub(crate) remaining: Duration,
    /// The call's last exchange.
    pub(crate) last: &'a mut Option<Step>,
    /// The call's refresh-ahead work to hand out.
    pub(crate) spawns: &'a mut Vec<Background>,
    /// What the session did, counted.
    pub(crate) stats: &'a mut crate::flow::stats::ClientStats,
}

/// What a step of a job gave.
pub(crate) enum Progress {
    /// IO for the driver.
    Io(Io),
    /// The job is done.
    Answer(Answer),
    /// Step again at once.
    Continue,
}

/// IO for the driver, before the session addresses it to the call.
pub(crate) enum Io {
    Send {
        request: HttpRequest,
        url: String,
        operation: &'static str,
        attempt: u32,
    },
    FetchToken,
    Read {
        path: PathBuf,
        max_bytes: u64,
    },
    Run(Command),
    Store(Op),
    Wait(Duration),
    Park,
}

/// What a job fetches.
pub(crate) enum Target {
    /// The session's bearer token itself.
    Bearer,
    /// A Power BI request's answer in this form; `key` when identical requests share it.
    Request {
        request: Prepared,
        want: Want,
        key: Option<CacheKey>,
    },
}

/// Whom a job works for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A caller, who waits for the answer.
    Caller,
    /// A caller who only looks in the cache: no IO.
    Peek,
    /// Warm-up: fetches what the cache does not hold fresh, outside its refresh time.
    Warm,
    /// Refresh-ahead, in the background: past the cache, giving way to any other fetch.
    Refresh,
}

/// One need, being fetched.
pub(crate) struct Job {
    target: Target,
    role: Role,
    retry: RetryState,
    stage: Stage,
}

enum Stage {
    /// Look in the cache; join an identical fetch, or lead it.
    Lookup,
    /// Leading; consulting the shared store first.
    Lease(Lease),
    /// Leading (when shared); fetching from Power BI, then telling the store if `shared`.
    Fetch {
        shared: Option<Shared>,
        fetching: Fetching,
    },
    /// Telling the store, then answering.
    Publish(Publish),
    /// Answered, after leading the fetch.
    Done,
}

impl Job {
    /// A job for `need`.
    pub(crate) fn new(need: Need, config: &Config, caches: &Caches) -> Self {
        let (target, role) = match need {
            Need::Bearer => (Target::Bearer, Role::Caller),
            Need::RenewBearer => (Target::Bearer, Role::Refresh),
            Need::Api(request, want) => (Self::request(request, want, config, caches), Role::Caller),
            Need::Cached(request, want) => (Self::request(request, want, config, caches), Role::Peek),
            Need::Warm(request, want) => (Self::request(request, want, config, caches), Role::Warm),
            Need::Refresh(request, want) => (Self::request(request, want, config, caches), Role::Refresh),
        };
        Self {
            target,
            role,
            retry: RetryState::new(config.settings.retry),
            stage: Stage::Lookup,
        }
    }

    fn request(request: Prepared, want: Want, config: &Config, caches: &Caches) -> Target {
        // Embed tokens are shared only while their cache is on (off, each call mints its
        // own); metadata always.
        let shared = match want {
            Want::EmbedToken => caches.keeps(want),
            Want::Metadata(_) => true,
            Want::Response => false,
        };
        let key = shared.then(|| request.key(config.settings.profile.as_ref()));
        Target::Request { request, want, key }
    }

    /// Steps the job with the driver's `reply` to its last IO (`None` to resume).
    pub(crate) fn advance(&mut self, ctx: &mut Ctx<'_>, reply: Option<Reply>) -> Progress {
        let (want, refresh) = (self.want(), self.role == Role::Refresh);
        if let Some(Reply::Stored(Err(_))) = &reply {
            ctx.stats.store_errors += 1;
        }
        match (&mut self.stage, reply) {
            (Stage::Lookup, _) => self.lookup(ctx),
            (Stage::Lease(lease), Some(Reply::Stored(stored))) => {
                let (settings, now) = (ctx.config.settings.shared.unwrap_or_default(), ctx.now);
                let margin = ctx.caches.margin();
                let window = ctx.config.settings.refresh_ahead;
                let usable = |record: Vec<u8>| usable(want, &record, refresh, now, margin, window);
                let step = lease.on_reply(stored, usable, settings, now.instant, ctx.remaining);
                self.on_lease(ctx, step)
            }
            (Stage::Lease(lease), _) => {
                let step = lease.resume();
                self.on_lease(ctx, step)
            }
            (Stage::Fetch { fetching, .. }, reply) => {
                let request = match &self.target {
                    Target::Bearer => None,
                    Target::Request { request, .. } => Some(request),
                };
                let step = fetching.step(ctx, request, self.role, &mut self.retry, reply);
                self.on_fetch(ctx, step)
            }
            (Stage::Publish(_), Some(Reply::Stored(stored))) => self.publish_next(&stored),
            (Stage::Publish(_), _) => self.publish_next(&Err("the store was not answered".into())),
            // Never stepped: a job is taken away when it answers.
            (Stage::Done, _) => Progress::Answer(Answer::Failed(Error::invalid_input(
                "flow",
                "a finished job was stepped again",
            ))),
        }
    }

    /// Ends the job with `error` (the call's deadline passed): gives up the shared lock
    /// first if it holds it.
    pub(crate) fn fail(&mut self, error: Error) -> Progress {
        let lock = match &mut self.stage {
            Stage::Fetch { shared, .. } => shared.as_mut().and_then(|shared| shared.unlock.take()),
            _ => None,
        };
        self.publish(Answer::Failed(error), None, lock)
    }

    /// The job ends (answered, failed or abandoned): what it led is let go.
    pub(crate) fn release(&self, scheduler: &mut Scheduler) {
        let Target::Request { key: Some(key), .. } = &self.target else {
            return;
        };
        if self.role == Role::Refresh {
            scheduler.refreshed(key);
        }
        // Past the lookup, a job leads the fetch of its key.
        if !matches!(self.stage, Stage::Lookup) {
            scheduler.land(key);
        }
    }

    fn want(&self) -> Want {
        match &self.target {
            Target::Bearer => Want::Response,
            Target::Request { want, .. } => *want,
        }
    }

    /// The cache, an identical fetch under way, or this job's own.
    fn lookup(&mut self, ctx: &mut Ctx<'_>) -> Progress {
        let Target::Request {
            request,
            want,
            key: Some(key),
        } = &self.target
        else {
            // Nothing to look up: a need that looks only in the cache finds nothing.
            if self.role == Role::Peek {
                return Progress::Answer(Answer::NotCached);
            }
            return self.fetch(None);
        };
        let now = (ctx.now.instant, ctx.now.wall);
        let cached = match self.role {
            Role::Caller | Role::Peek => ctx.caches.get(*want, key, now),
            // Warm-up takes what is cached only while it is not due for a refresh.
            Role::Warm => {
                let window = ctx.config.settings.refresh_ahead.unwrap_or_default();
                let due = ctx.caches.is_due(*want, key, now, window);
                ctx.caches.get(*want, key, now).filter(|_| !due)
            }
            Role::Refresh => None,
        };
        // Callers' lookups are counted; a peek only when it finds (a miss is counted by
        // the caller's lookup that follows it).
        let lookups = match want {
            Want::EmbedToken => Some(&mut ctx.stats.embed_tokens),
            Want::Metadata(_) => Some(&mut ctx.stats.metadata),
            Want::Response => None,
        };
        match (lookups, self.role, cached.is_some()) {
            (Some(lookups), Role::Caller | Role::Peek, true) => lookups.hits += 1,
            (Some(lookups), Role::Caller, false) => lookups.misses += 1,
            _ => {}
        }
        if let Some(answer) = cached {
            refresh_if_due(ctx, request, *want, key);
            return Progress::Answer(answer);
        }
        if self.role == Role::Peek {
            return Progress::Answer(Answer::NotCached);
        }
        match ctx.scheduler.lead(key, ctx.ticket) {
            // A refresh has nothing to do while another call fetches the item.
            Flight::Joined if self.role == Role::Refresh => return Progress::Answer(Answer::Skipped),
            Flight::Joined => return Progress::Io(Io::Park),
            Flight::Leading => {}
        }
        // Tokens and item metadata are shared; a metadata refresh reads Power BI itself
        // (a record may be as old as the time-to-live).
        let shared = ctx.config.settings.shared.is_some()
            && match want {
                Want::EmbedToken => true,
                Want::Metadata(_) => self.role != Role::Refresh,
                Want::Response => false,
            };
        if !shared {
            return self.fetch(None);
        }
        let lock = (*want == Want::EmbedToken).then(|| store::lock_key(key));
        let (lease, step) = Lease::start(store::record_key(*want, key), lock, self.role == Role::Refresh);
        self.stage = Stage::Lease(lease);
        self.on_lease(ctx, step)
    }

    fn fetch(&mut self, shared: Option<Shared>) -> Progress {
        self.stage = Stage::Fetch {
            shared,
            fetching: Fetching::Bearer,
        };
        Progress::Continue
    }

    fn on_lease(&mut self, ctx: &mut Ctx<'_>, step: LeaseStep) -> Progress {
        match step {
            LeaseStep::Ask(op) => Progress::Io(Io::Store(op)),
            LeaseStep::Wait(delay) => Progress::Io(Io::Wait(delay)),
            LeaseStep::Found(answer, unlock) => {
                if let Target::Request { key: Some(key), .. } = &self.target {
                    keep(ctx, key, &answer);
                }
                self.publish(answer, None, unlock)
            }
            LeaseStep::Fetch(shared) => self.fetch(shared),
            LeaseStep::Skip => Progress::Answer(Answer::Skipped),
        }
    }

    fn on_fetch(&mut self, ctx: &mut Ctx<'_>, step: FetchStep) -> Progress {
        let shared = match &mut self.stage {
            Stage::Fetch { shared, .. } => shared.take(),
            _ => None,
        };
        let (answer, record) = match step {
            FetchStep::Io(io) => {
                self.restore(shared);
                return Progress::Io(io);
            }
            FetchStep::Continue => {
                self.restore(shared);
                return Progress::Continue;
            }
            FetchStep::Bearer(token) => (Answer::Bearer(token), None),
            FetchStep::Failed(error) => (Answer::Failed(error), None),
            FetchStep::Response(response) => self.parsed(ctx, response, shared.is_some()),
        };
        let (put, unlock) = match shared {
            Some(Shared { record: key, unlock }) => {
                (record.map(|(bytes, ttl)| Op::Put(key, bytes, ttl)), unlock)
            }
            None => (None, None),
        };
        self.publish(answer, put, unlock)
    }

    /// Puts back the share a fetch step did not use.
    fn restore(&mut self, taken: Option<Shared>) {
        if let Stage::Fetch { shared, .. } = &mut self.stage {
            *shared = taken;
        }
    }

    /// A successful response, read as the job wants it and kept in the cache; when
    /// `shared`, with the record to share and its time-to-live, if it is worth sharing.
    fn parsed(
        &self,
        ctx: &mut Ctx<'_>,
        response: http::Response<Vec<u8>>,
        shared: bool,
    ) -> (Answer, Option<(Vec<u8>, Duration)>) {
        let Target::Request { want, key, .. } = &self.target else {
            return (Answer::Response(response), None);
        };
        let failed = |error: crate::wire::error::ExchangeError| {
            Answer::Failed(Error::from(error).at(ctx.last.as_ref()))
        };
        let answer = match want {
            Want::Response => return (Answer::Response(response), None),
            Want::EmbedToken => {
                match crate::wire::response::parse_success(&response, "EmbedToken", |body| {
                    crate::api::embed_token::EmbedToken::from_json(body)
                }) {
                    Ok(token) => Answer::Token(token),
                    Err(error) => return (failed(error), None),
                }
            }
            Want::Metadata(kind) => {
                match crate::wire::response::parse_success(&response, kind.output_name(), |b| kind.parse(b)) {
                    Ok(metadata) => Answer::Metadata(metadata),
                    Err(error) => return (failed(error), None),
                }
            }
        };
        if let Some(key) = key {
            keep(ctx, key, &answer);
        }
        if self.role == Role::Refresh && matches!(answer, Answer::Token(_)) {
            ctx.stats.minted_ahead += 1;
        }
        if !shared {
            return (answer, None);
        }
        // Tokens are shared until the margin; metadata as Power BI sent it, for its TTL.
        let record = match &answer {
            Answer::Token(token) => Some((
                store::encode(token),
                store::record_ttl(token, ctx.now.wall, ctx.caches.margin()),
            )),
            Answer::Metadata(_) => ctx
                .config
                .settings
                .metadata_cache
                .map(|(_, ttl)| (response.into_body(), ttl)),
            _ => None,
        };
        (answer, record.filter(|(_, ttl)| !ttl.is_zero()))
    }

    /// Tells the store (`put`, then `unlock`) before answering, or answers.
    fn publish(&mut self, answer: Answer, put: Option<Op>, unlock: Option<String>) -> Progress {
        self.published(Publish::start(answer, put, unlock))
    }

    fn published(&mut self, step: PublishStep) -> Progress {
        match step {
            PublishStep::Ask(publish, op) => {
                self.stage = Stage::Publish(publish);
                Progress::Io(Io::Store(op))
            }
            PublishStep::Answer(answer) => Progress::Answer(answer),
        }
    }

    fn publish_next(&mut self, stored: &Result<StoreReply, BoxError>) -> Progress {
        let Stage::Publish(publish) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return Progress::Continue;
        };
        self.published(publish.on_reply(stored))
    }
}

/// A record from the store as `want`, if usable: an embed token fresh outside the
/// cache's `margin` (for a refresh, outside the refresh `window` too), or metadata.
fn usable(
    want: Want,
    record: &[u8],
    refresh: bool,
    now: Now,
    margin: Duration,
    window: Option<Duration>,
) -> Option<Answer> {
    match want {
        Want::EmbedToken => store::decode(record, now.wall, margin)
            .filter(|token| {
                !refresh || window.is_none_or(|w| token.freshness(now.wall, w) == Freshness::Fresh)
            })
            .map(Answer::Token),
        Want::Metadata(kind) => kind.parse(record).ok().map(Answer::Metadata),
        Want::Response => None,
    }
}

/// Keeps an answer in the cache.
fn keep(ctx: &mut Ctx<'_>, key: &CacheKey, answer: &Answer) {
    match answer {
        Answer::Token(token) => ctx.caches.put_token(key.clone(), token, ctx.now.wall),
        Answer::Metadata(metadata) => ctx.caches.put_metadata(key.clone(), metadata, ctx.now.instant),
        _ => {}
    }
}

/// Refresh-ahead: hands out a refresh of the item a call was just served from the cache,
/// when it is due and no one fetches or refreshes it already.
fn refresh_if_due(ctx: &mut Ctx<'_>, request: &Prepared, want: Want, key: &CacheKey) {
    let Some(window) = ctx.config.settings.refresh_ahead else {
        return;
    };
    let now = ctx.now;
    let due = ctx.caches.is_due(want, key, (now.instant, now.wall), window);
    // A refresh that never reported back (its driver dropped it) is tried again after a
    // call's deadline.
    if due
        && ctx
            .scheduler
            .may_refresh(key, now.instant, ctx.config.settings.deadline)
    {
        ctx.scheduler.refreshing(key.clone(), now.instant);
        ctx.spawns.push(Background(Behind::Item {
            request: request.clone(),
            want,
        }));
    }
}
