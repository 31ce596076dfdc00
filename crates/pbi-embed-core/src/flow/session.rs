//! The state a client shares between its calls — the cloud, the credential, the bearer
//! token, the caches, the requests in flight — and the one function that steps a call.
//!
//! A driver keeps a [`Session`] behind one lock and steps each call with
//! [`Session::step`] while holding it; steps never block and do no IO, so the lock is
//! held for microseconds. Everything a call decides — reuse or renew the bearer token,
//! serve from a cache or join an identical request in flight, retry after a delay, sign
//! in again after `TokenExpired`, give up at the deadline — is decided here, once for
//! every driver.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crate::api::embed_token::EmbedToken;
use crate::auth::azure_cli::{ProgramOutput, ProgramRun};
use crate::auth::bearer::{BearerNeed, BearerState, Credential};
use crate::auth::entra::parse_token_response;
use crate::flow::cache::{CacheKey, EmbedTokenCache, MetadataCache};
use crate::flow::call::{Action, Call, Event, Exchange, FileRead, Now};
use crate::flow::error::{BoxError, Error, Step, TransportError};
use crate::flow::plan::{Answer, Background, Need, Want};
use crate::flow::store::{self, Op, StoreOp, StoreReply};
use crate::settings::client_settings::ClientSettings;
use crate::settings::retry::{NextStep, RetryState};
use crate::wire::cloud::Cloud;
use crate::wire::error::ExchangeError;
use crate::wire::lifetime::{BearerToken, Freshness, HeldToken};
use crate::wire::operation::{ApiBase, HttpRequest, Operation, Prepared};
use crate::wire::response;

/// Which host an exchange went to, for naming the step of an error.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Host {
    Api,
    Authority,
    /// The managed identity endpoint.
    Identity,
}

/// The shared state of one client: configuration, credential, bearer token, caches and
/// requests in flight. Plain data: the driver holds the lock.
#[derive(Debug)]
pub struct Session {
    cloud: Cloud,
    api_base: ApiBase,
    settings: ClientSettings,
    credential: Credential,
    bearer: BearerState,
    tokens: Option<EmbedTokenCache>,
    metadata: MetadataCache,
    /// Who is fetching each cacheable request right now.
    flights: HashMap<CacheKey, u64>,
    /// Refreshes handed out (refresh-ahead), and when: one at a time per item.
    refreshing: HashMap<CacheKey, Instant>,
    /// Refreshes to hand to the driver at the next step.
    spawns: Vec<Background>,
    next_ticket: u64,
    parked: usize,
    wake: bool,
}

/// One request a call is fetching: its cache lookup, bearer token, attempts and retries.
pub(crate) struct Job {
    request: Option<Prepared>,
    want: Want,
    key: Option<CacheKey>,
    /// A refresh (refresh-ahead): past the cache, and nothing to do if another fetches.
    background: bool,
    /// The shared store is consulted (an embed token, with a store, while it answers).
    shared: bool,
    /// This job holds the shared lock on its request.
    locked: bool,
    /// The answer, kept while the shared store is written and the lock given up.
    stash: Option<Answer>,
    leading: bool,
    retry: RetryState,
    phase: Phase,
}

enum Phase {
    /// Look in the cache; join an identical request in flight, or lead it.
    Lookup,
    /// Get a bearer token (first, after a backoff, or after `TokenExpired`).
    Bearer,
    /// Sent with the bearer token of this generation; awaiting the response.
    Sent { generation: u64 },
    /// This call renews the bearer token.
    SignIn(SignIn),
    /// Waiting on the shared store.
    Shared(Shared),
}

/// What a job asked the shared store.
#[derive(Clone, Copy, Debug)]
enum Shared {
    /// For the record; `since` when it first found the lock taken.
    Getting { since: Option<Instant> },
    /// Waiting before looking again (another replica holds the lock).
    Waiting { since: Instant },
    /// For the lock.
    Locking,
    /// Writing the record.
    Putting,
    /// Giving up the lock.
    Unlocking,
}

/// This call renewing the bearer token.
struct SignIn {
    retry: RetryState,
    state: SignInState,
}

enum SignInState {
    Ready,
    Sent {
        at: SystemTime,
    },
    Fetching,
    /// Reading a workload identity's token file.
    Reading,
    /// Running the Azure CLI.
    Running,
}

/// What advancing a job gave.
enum Progress {
    Io(Io),
    Answer(Answer),
    Continue,
}

/// IO for the driver, before it is typed for a call.
#[allow(clippy::large_enum_variant)] // Moved once, into an `Action`.
enum Io {
    Send(Exchange),
    FetchToken,
    ReadFile(FileRead),
    RunProgram(ProgramRun),
    Store(StoreOp),
    Wait(Duration),
    Park(Duration),
}

impl Session {
    /// A session for `credential` with `settings`.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when a setting is meaningless (a zero time-out or deadline,
    /// a zero body cap) or a custom URL is invalid.
    pub fn new(settings: ClientSettings, credential: Credential) -> Result<Self, ExchangeError> {
        let settings = settings.checked()?;
        let cloud = settings.resolved_cloud()?;
        let (credential, bearer) = match credential {
            Credential::ServicePrincipal(op) => (
                Credential::ServicePrincipal(op.cloud(cloud.clone())),
                BearerState::default(),
            ),
            Credential::BearerToken(token) => {
                (Credential::BearerToken(token.clone()), BearerState::fixed(token))
            }
            Credential::ManagedIdentity(identity) => {
                (Credential::ManagedIdentity(identity), BearerState::default())
            }
            Credential::TokenSource => (Credential::TokenSource, BearerState::default()),
            Credential::AzureCli(cli) => (Credential::AzureCli(cli), BearerState::default()),
        };
        Ok(Self {
            api_base: ApiBase::of(&cloud)?,
            tokens: settings.new_embed_cache(),
            metadata: settings.new_metadata_cache(),
            cloud,
            settings,
            credential,
            bearer,
            flights: HashMap::new(),
            refreshing: HashMap::new(),
            spawns: Vec::new(),
            next_ticket: 0,
            parked: 0,
            wake: false,
        })
    }

    /// The cloud, with any custom hosts applied.
    #[must_use]
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// The settings, as checked.
    #[must_use]
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Forgets every cached embed token and item metadata.
    pub fn clear_caches(&mut self) {
        if let Some(tokens) = &mut self.tokens {
            tokens.clear();
        }
        self.metadata.clear();
    }

    /// How many fetches calls are leading right now (cacheable requests and the bearer
    /// token's renewal). Zero when no call is under way.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.flights.len() + usize::from(self.bearer.is_renewing())
    }

    /// Steps `call`: hands it `event` and returns what it needs next.
    ///
    /// `now` is the time of this step and `random` any uniformly random number (for
    /// retry jitter). When the step releases something other calls were parked on, it
    /// calls `wake_parked` (while the driver still holds the lock): the driver then wakes
    /// every parked call, which steps again with [`Event::Resume`].
    pub fn step<T>(
        &mut self,
        call: &mut Call<'_, T>,
        event: Event,
        now: Now,
        random: u32,
        wake_parked: impl FnOnce(),
    ) -> Action<T> {
        if call.finished {
            return Action::Done(Err(misuse("stepped a call that has ended")));
        }
        let ticket = match call.ticket {
            Some(ticket) => ticket,
            None => {
                self.next_ticket += 1;
                call.ticket = Some(self.next_ticket);
                call.deadline = now.instant.checked_add(self.settings.deadline);
                self.next_ticket
            }
        };
        if std::mem::take(&mut call.parked) {
            self.parked = self.parked.saturating_sub(1);
        }
        let action = self.advance(call, ticket, event, now, random);
        match &action {
            Action::Done(_) => self.finish(call, ticket),
            Action::Park(_) => {
                call.parked = true;
                self.parked += 1;
            }
            _ => {}
        }
        if std::mem::take(&mut self.wake) && self.parked > usize::from(call.parked) {
            wake_parked();
        }
        action
    }

    /// Ends a call that will not be stepped again (its driver dropped it half-way):
    /// whatever it was fetching is left to the next call that needs it. Calls
    /// `wake_parked` when others may now go on.
    pub fn abandon<T>(&mut self, call: &mut Call<'_, T>, wake_parked: impl FnOnce()) {
        if call.finished {
            return;
        }
        if let Some(ticket) = call.ticket {
            self.finish(call, ticket);
        }
        call.finished = true;
        if std::mem::take(&mut self.wake) && self.parked > 0 {
            wake_parked();
        }
    }

    fn finish<T>(&mut self, call: &mut Call<'_, T>, ticket: u64) {
        if let Some(job) = call.job.take() {
            self.release(&job);
        }
        if self.bearer.release(ticket) {
            self.wake = true;
        }
        if std::mem::take(&mut call.parked) {
            self.parked = self.parked.saturating_sub(1);
        }
        call.finished = true;
    }

    fn release(&mut self, job: &Job) {
        if job.background
            && let Some(key) = &job.key
        {
            self.refreshing.remove(key);
        }
        if job.leading
            && let Some(key) = &job.key
        {
            self.flights.remove(key);
            self.wake = true;
        }
    }

    fn advance<T>(
        &mut self,
        call: &mut Call<'_, T>,
        ticket: u64,
        event: Event,
        now: Now,
        random: u32,
    ) -> Action<T> {
        let mut progress = match event {
            Event::Resume => Progress::Continue,
            Event::Response(response) => self.on_response(call, response, now, random),
            Event::Token(token) => self.on_token(call, token, now),
            Event::File(file) => self.on_file(call, file, now, ticket),
            Event::Program(ran) => self.on_program(call, ran, now),
            Event::Stored(reply) => self.on_stored(call, reply, now),
        };
        loop {
            match progress {
                Progress::Io(io) => return self.io(io),
                Progress::Answer(answer) => {
                    // A job holding the shared lock gives it up before it answers.
                    if let Some(job) = call.job.as_mut()
                        && let Some(unlock) = job.unlock()
                    {
                        job.stash = Some(answer);
                        return Action::Store(unlock);
                    }
                    if let Some(job) = call.job.take() {
                        self.release(&job);
                    }
                    call.answer = Some(answer);
                }
                Progress::Continue => {}
            }
            if let Some(work) = self.spawns.pop() {
                return Action::Spawn(work);
            }
            progress = match &mut call.job {
                None => match call.need() {
                    Ok(Some(need)) => {
                        call.job = Some(self.job(need));
                        Progress::Continue
                    }
                    Ok(None) => return Action::Done(Err(misuse("the plan needed nothing"))),
                    Err(done) => {
                        return Action::Done(done.map_err(|e| e.at(self.step_of(call.last).as_ref())));
                    }
                },
                Some(job) => {
                    let remaining = remaining(call.deadline, now.instant);
                    if remaining.is_zero() {
                        let step = self.step_of(call.last);
                        Progress::Answer(Answer::Failed(Error::deadline(self.settings.deadline, step)))
                    } else {
                        self.advance_job(job, &mut call.last, ticket, now, remaining)
                    }
                }
            };
        }
    }

    fn job(&self, need: Need) -> Job {
        let (request, want, background) = match need {
            Need::Api(request, want) => (Some(request), want, false),
            Need::Refresh(request, want) => (Some(request), want, true),
            Need::Bearer => (None, Want::Response, false),
        };
        let cached = match want {
            Want::EmbedToken => self.tokens.is_some(),
            Want::Metadata(_) => true,
            Want::Response => false,
        };
        let key = request
            .as_ref()
            .filter(|_| cached)
            .map(|r| r.key(self.settings.profile.as_ref()));
        // Tokens and item metadata are shared; a metadata refresh reads Power BI itself
        // (a record may be as old as the time-to-live).
        let shared = self.settings.shared.is_some()
            && key.is_some()
            && match want {
                Want::EmbedToken => true,
                Want::Metadata(_) => !background,
                Want::Response => false,
            };
        Job {
            request,
            want,
            key,
            background,
            shared,
            locked: false,
            stash: None,
            leading: false,
            retry: RetryState::new(self.settings.retry),
            phase: Phase::Lookup,
        }
    }

    fn advance_job(
        &mut self,
        job: &mut Job,
        last: &mut Option<(&'static str, Host)>,
        ticket: u64,
        now: Now,
        remaining: Duration,
    ) -> Progress {
        match &mut job.phase {
            Phase::Lookup => {
                if let Some(key) = &job.key {
                    if !job.background
                        && let Some(answer) = self.cached(job.want, key, now)
                    {
                        self.refresh_if_due(job, key, now);
                        return Progress::Answer(answer);
                    }
                    match self.flights.get(key) {
                        // A refresh has nothing to do while another call fetches the item.
                        Some(&owner) if owner != ticket && job.background => {
                            return Progress::Answer(Answer::Skipped);
                        }
                        Some(&owner) if owner != ticket => return Progress::Io(Io::Park(remaining)),
                        _ => {
                            self.flights.insert(key.clone(), ticket);
                            job.leading = true;
                        }
                    }
                    if job.shared {
                        job.phase = Phase::Shared(Shared::Getting { since: None });
                        return Progress::Io(Io::Store(StoreOp(Op::Get(store::record_key(job.want, key)))));
                    }
                }
                job.phase = Phase::Bearer;
                Progress::Continue
            }
            Phase::Shared(Shared::Waiting { since }) => {
                let since = *since;
                match &job.key {
                    Some(key) => {
                        job.phase = Phase::Shared(Shared::Getting { since: Some(since) });
                        Progress::Io(Io::Store(StoreOp(Op::Get(store::record_key(job.want, key)))))
                    }
                    None => Progress::Answer(Answer::Failed(misuse("waited on the store without a key"))),
                }
            }
            Phase::Shared(_) => Progress::Answer(Answer::Failed(misuse(
                "stepped a store operation without its answer",
            ))),
            Phase::Bearer => {
                // Power BI caps an embed token's expiry at the access token's: a refresh
                // renews an access token that would expire within the window first, or
                // the new embed token would be due again at once.
                let margin = match (job.background, self.settings.refresh_ahead) {
                    (true, Some(window)) => self.settings.access_token_margin.max(window),
                    _ => self.settings.access_token_margin,
                };
                match self.bearer.need(ticket, now.wall, margin) {
                    BearerNeed::Use(held) => self.send(job, held, last, remaining),
                    BearerNeed::Wait => Progress::Io(Io::Park(remaining)),
                    BearerNeed::Renew => match &self.credential {
                        Credential::ServicePrincipal(_)
                        | Credential::ManagedIdentity(_)
                        | Credential::AzureCli(_) => {
                            job.phase = Phase::SignIn(SignIn {
                                retry: RetryState::new(self.settings.retry),
                                state: SignInState::Ready,
                            });
                            Progress::Continue
                        }
                        Credential::TokenSource => {
                            job.phase = Phase::SignIn(SignIn {
                                retry: RetryState::new(self.settings.retry),
                                state: SignInState::Fetching,
                            });
                            Progress::Io(Io::FetchToken)
                        }
                        Credential::BearerToken(_) => match self.bearer.renewal_failed(now.wall) {
                            Some(held) => self.send(job, held, last, remaining),
                            None => Progress::Answer(Answer::Failed(
                                ExchangeError::invalid_input(
                                    "credential",
                                    "the bearer token was refused and cannot be renewed",
                                )
                                .into(),
                            )),
                        },
                    },
                }
            }
            Phase::SignIn(sign_in) => {
                let ready = matches!(sign_in.state, SignInState::Ready);
                // A federated token or a certificate file: read it first, at every sign-in.
                if let (true, Some((file, _, max))) = (ready, self.file_to_read()) {
                    sign_in.state = SignInState::Reading;
                    // One byte more than is accepted, so a longer file is told apart.
                    return Progress::Io(Io::ReadFile(FileRead::new(file, max + 1)));
                }
                if let (true, Credential::AzureCli(cli)) = (ready, &self.credential) {
                    return match cli.to_run(self.cloud.resource(), remaining) {
                        Ok(run) => {
                            sign_in.state = SignInState::Running;
                            Progress::Io(Io::RunProgram(run))
                        }
                        Err(error) => self.renewal_failed(job, error.into(), last, now, remaining),
                    };
                }
                match (ready, self.sign_in_request(now.wall, ticket)) {
                    (true, Some((operation, host, request))) => {
                        self.send_sign_in(job, operation, host, request, last, now, remaining)
                    }
                    _ => Progress::Answer(Answer::Failed(misuse("stepped a sign-in without its answer"))),
                }
            }
            Phase::Sent { .. } => {
                Progress::Answer(Answer::Failed(misuse("stepped a call without its response")))
            }
        }
    }

    /// Sends a sign-in request (or fails the renewal if it could not be built).
    #[allow(clippy::too_many_arguments)]
    fn send_sign_in(
        &mut self,
        job: &mut Job,
        operation: &'static str,
        host: Host,
        request: Result<HttpRequest, ExchangeError>,
        last: &mut Option<(&'static str, Host)>,
        now: Now,
        remaining: Duration,
    ) -> Progress {
        let request = match request {
            Ok(request) => request,
            Err(error) => return self.renewal_failed(job, error.into(), last, now, remaining),
        };
        let Phase::SignIn(sign_in) = &mut job.phase else {
            return Progress::Answer(Answer::Failed(misuse("sent a sign-in outside one")));
        };
        let attempt = sign_in.retry.start_attempt();
        sign_in.state = SignInState::Sent { at: now.wall };
        *last = Some((operation, host));
        Progress::Io(Io::Send(Exchange {
            url: request.uri().to_string(),
            request,
            timeout: self.settings.timeout.min(remaining),
            max_response_bytes: self.settings.max_response_bytes,
            operation,
            attempt,
        }))
    }

    /// The file a sign-in reads first (a federated token, a certificate file).
    fn file_to_read(&self) -> Option<(&std::path::Path, &'static str, u64)> {
        match &self.credential {
            Credential::ServicePrincipal(op) => op.file_to_read(),
            _ => None,
        }
    }

    /// The sign-in's file arrived: sign in with what it holds.
    fn on_file<T>(
        &mut self,
        call: &mut Call<'_, T>,
        file: Result<Vec<u8>, BoxError>,
        now: Now,
        ticket: u64,
    ) -> Progress {
        let remaining = remaining(call.deadline, now.instant);
        let Some(job) = call.job.as_mut() else {
            return Progress::Answer(Answer::Failed(misuse(
                "handed a file to a call that asked for none",
            )));
        };
        let (
            Phase::SignIn(SignIn {
                state: SignInState::Reading,
                ..
            }),
            Credential::ServicePrincipal(op),
            Some((path, what, max)),
        ) = (&job.phase, &self.credential, self.file_to_read())
        else {
            return Progress::Answer(Answer::Failed(misuse(
                "handed a file to a call that asked for none",
            )));
        };
        let read = file.and_then(|bytes| match bytes.len() as u64 > max {
            true => Err(format!("it is larger than {max} bytes").into()),
            false => Ok(bytes),
        });
        let contents = match read {
            Ok(contents) => contents,
            Err(error) => {
                let error = format!("the {what} file {} could not be read: {error}", path.display());
                return self.renewal_failed(
                    job,
                    Error::token_source(error.into()),
                    &mut call.last,
                    now,
                    remaining,
                );
            }
        };
        let (operation, request) = (
            op.name(),
            op.to_http_from_file(&contents, now.wall, &jti(now.wall, ticket)),
        );
        self.send_sign_in(
            job,
            operation,
            Host::Authority,
            request,
            &mut call.last,
            now,
            remaining,
        )
    }

    /// The embed-token cache's margin (a token is not handed out closer to its expiry).
    fn embed_margin(&self) -> Duration {
        self.settings
            .embed_cache
            .map_or(EmbedTokenCache::DEFAULT_MARGIN, |(_, margin)| margin)
    }

    /// The shared store answered.
    fn on_stored<T>(
        &mut self,
        call: &mut Call<'_, T>,
        reply: Result<StoreReply, BoxError>,
        now: Now,
    ) -> Progress {
        let remaining = remaining(call.deadline, now.instant);
        let margin = self.embed_margin();
        let window = self.settings.refresh_ahead;
        let (Some(job), Some(shared)) = (call.job.as_mut(), self.settings.shared) else {
            return Progress::Answer(Answer::Failed(misuse(
                "handed a store's answer to a call that asked none",
            )));
        };
        let (Phase::Shared(step), Some(key)) = (&job.phase, job.key.clone()) else {
            return Progress::Answer(Answer::Failed(misuse(
                "handed a store's answer to a call that asked none",
            )));
        };
        let step = *step;
        let Ok(reply) = reply else {
            // The store failed or was slow: go on without it, to Power BI.
            job.shared = false;
            job.locked = false;
            return match step {
                Shared::Putting | Shared::Unlocking => {
                    Progress::Answer(job.stash.take().unwrap_or(Answer::Skipped))
                }
                _ => {
                    job.phase = Phase::Bearer;
                    Progress::Continue
                }
            };
        };
        let wait = |job: &mut Job, since: Instant| {
            job.phase = Phase::Shared(Shared::Waiting { since });
            Progress::Io(Io::Wait(shared.poll.min(remaining)))
        };
        match (step, reply) {
            (Shared::Getting { .. }, StoreReply::Record(record)) if matches!(job.want, Want::Metadata(_)) => {
                // Another replica's reading of the item; none: read it (no lock, a read
                // is cheap and changes nothing).
                let Want::Metadata(kind) = job.want else {
                    return Progress::Continue;
                };
                if let Some(metadata) = record.and_then(|record| kind.parse(&record).ok()) {
                    self.metadata.insert(key, metadata.clone(), now.instant);
                    return Progress::Answer(Answer::Metadata(metadata));
                }
                job.phase = Phase::Bearer;
                Progress::Continue
            }
            (Shared::Getting { since }, StoreReply::Record(record)) => {
                // Another replica's token; a refresh wants one that is not due itself.
                let usable = record
                    .and_then(|record| store::decode(&record, now.wall, margin))
                    .filter(|token| {
                        !job.background
                            || window
                                .is_none_or(|window| token.freshness(now.wall, window) == Freshness::Fresh)
                    });
                if let Some(token) = usable {
                    if let Some(cache) = &mut self.tokens {
                        cache.insert(key, token.clone(), now.wall);
                    }
                    return Progress::Answer(Answer::Token(token));
                }
                if job.locked {
                    // Still none with the lock held: this replica mints it.
                    job.phase = Phase::Bearer;
                    return Progress::Continue;
                }
                match since {
                    // Another replica is minting it: look again until its lock would
                    // have expired, then take the lock (its holder may have died).
                    Some(since) if now.instant.saturating_duration_since(since) < shared.lock_ttl => {
                        wait(job, since)
                    }
                    _ => {
                        job.phase = Phase::Shared(Shared::Locking);
                        Progress::Io(Io::Store(StoreOp(Op::Lock(
                            store::lock_key(&key),
                            shared.lock_ttl,
                        ))))
                    }
                }
            }
            (Shared::Locking, StoreReply::Locked(true)) => {
                // Looks once more: the holder before may have stored it and let go
                // between this replica's look and its lock.
                job.locked = true;
                job.phase = Phase::Shared(Shared::Getting { since: None });
                Progress::Io(Io::Store(StoreOp(Op::Get(store::record_key(job.want, &key)))))
            }
            (Shared::Locking, StoreReply::Locked(false)) if job.background => {
                Progress::Answer(Answer::Skipped)
            }
            (Shared::Locking, StoreReply::Locked(false)) => wait(job, now.instant),
            (Shared::Putting | Shared::Unlocking, _) => {
                Progress::Answer(job.stash.take().unwrap_or(Answer::Skipped))
            }
            _ => Progress::Answer(Answer::Failed(misuse("the store answered another operation"))),
        }
    }

    /// Refresh-ahead: hands out a refresh of the item a call was just served from the
    /// cache, when it is due and no one fetches or refreshes it already.
    fn refresh_if_due(&mut self, job: &Job, key: &CacheKey, now: Now) {
        let Some(window) = self.settings.refresh_ahead else {
            return;
        };
        let due = match job.want {
            Want::EmbedToken => self
                .tokens
                .as_ref()
                .is_some_and(|tokens| tokens.is_due(key, now.wall, window)),
            Want::Metadata(_) => self.metadata.is_due(key, now.instant),
            Want::Response => false,
        };
        // A refresh that never reported back (its driver dropped it) is retried after a
        // call's deadline.
        let refreshing = self
            .refreshing
            .get(key)
            .is_some_and(|started| now.instant.saturating_duration_since(*started) < self.settings.deadline);
        if !due || refreshing || self.flights.contains_key(key) {
            return;
        }
        if let Some(request) = job.request.clone() {
            self.refreshing.insert(key.clone(), now.instant);
            self.spawns.push(Background {
                request,
                want: job.want,
            });
        }
    }

    fn cached(&self, want: Want, key: &CacheKey, now: Now) -> Option<Answer> {
        match want {
            Want::EmbedToken => self
                .tokens
                .as_ref()?
                .get(key, now.wall)
                .map(|token| Answer::Token(token.clone())),
            Want::Metadata(_) => self
                .metadata
                .get(key, now.instant)
                .map(|metadata| Answer::Metadata(metadata.clone())),
            Want::Response => None,
        }
    }

    /// Sends the job's request with `held`, or answers with the token itself.
    fn send(
        &self,
        job: &mut Job,
        held: HeldToken,
        last: &mut Option<(&'static str, Host)>,
        remaining: Duration,
    ) -> Progress {
        let Some(prepared) = &job.request else {
            return Progress::Answer(Answer::Bearer(held.token));
        };
        let (request, url) = match prepared.to_http(
            &self.api_base,
            &held.token.access_token,
            self.settings.profile.as_ref(),
        ) {
            Ok(built) => built,
            Err(error) => return Progress::Answer(Answer::Failed(error.into())),
        };
        let attempt = job.retry.start_attempt();
        job.phase = Phase::Sent {
            generation: held.generation,
        };
        *last = Some((prepared.operation, Host::Api));
        Progress::Io(Io::Send(Exchange {
            request,
            url,
            timeout: self.settings.timeout.min(remaining),
            max_response_bytes: self.settings.max_response_bytes,
            operation: prepared.operation,
            attempt,
        }))
    }

    fn on_response<T>(
        &mut self,
        call: &mut Call<'_, T>,
        response: Result<http::Response<Vec<u8>>, TransportError>,
        now: Now,
        random: u32,
    ) -> Progress {
        let remaining = remaining(call.deadline, now.instant);
        let Some(job) = call.job.as_mut() else {
            return Progress::Answer(Answer::Failed(misuse(
                "handed a response to a call that sent none",
            )));
        };
        // The step's host is only written out for an error.
        let last = call.last;
        let step = || {
            self.step_of(last)
                .ok_or_else(|| misuse("handed a response to a call that sent none"))
        };
        match &mut job.phase {
            Phase::Sent { generation } => {
                let generation = *generation;
                let result = match response {
                    Ok(response) if response.status().is_success() => Ok(response),
                    Ok(response) => Err(step().map_or_else(
                        |misuse| misuse,
                        |step| Error::from(response::api_error(&response)).at(Some(&step)),
                    )),
                    Err(error) => {
                        Err(step().map_or_else(|misuse| misuse, |step| Error::transport(error, step)))
                    }
                };
                match result {
                    Ok(response) => self.parsed(job, &response, call.last, now),
                    Err(error) => {
                        let renewable = self.credential.is_renewable();
                        match job.retry.next(
                            error.kind(),
                            error.outcome(),
                            renewable,
                            remaining,
                            now.wall,
                            random,
                        ) {
                            NextStep::Reauthenticate => {
                                self.bearer.reject(generation);
                                job.phase = Phase::Bearer;
                                Progress::Continue
                            }
                            NextStep::Wait(delay) => {
                                job.phase = Phase::Bearer;
                                Progress::Io(Io::Wait(delay))
                            }
                            _ => Progress::Answer(Answer::Failed(error)),
                        }
                    }
                }
            }
            Phase::SignIn(SignIn {
                state: SignInState::Sent { at },
                ..
            }) => {
                let at = *at;
                // Entra's answer of any status is read by its own parser.
                let signed_in = match response {
                    Ok(response) => match &self.credential {
                        Credential::ManagedIdentity(identity) => identity.from_http(&response, now.wall),
                        _ => parse_token_response(&response),
                    }
                    .map_err(|e| step().map_or_else(|misuse| misuse, |step| Error::from(e).at(Some(&step)))),
                    Err(error) => {
                        Err(step().map_or_else(|misuse| misuse, |step| Error::transport(error, step)))
                    }
                };
                match signed_in {
                    Ok(token) => self.renewed(job, token.into_bearer(at), &mut call.last, now, remaining),
                    Err(error) => self.sign_in_failed(job, error, &mut call.last, now, remaining, random),
                }
            }
            _ => Progress::Answer(Answer::Failed(misuse(
                "handed a response to a call that sent none",
            ))),
        }
    }

    fn on_token<T>(
        &mut self,
        call: &mut Call<'_, T>,
        token: Result<BearerToken, BoxError>,
        now: Now,
    ) -> Progress {
        let remaining = remaining(call.deadline, now.instant);
        let Some(job) = call.job.as_mut() else {
            return Progress::Answer(Answer::Failed(misuse(
                "handed a token to a call that asked for none",
            )));
        };
        let fetching = matches!(
            job.phase,
            Phase::SignIn(SignIn {
                state: SignInState::Fetching,
                ..
            })
        );
        match (fetching, token) {
            (true, Ok(token)) => self.renewed(job, token, &mut call.last, now, remaining),
            (true, Err(error)) => {
                self.renewal_failed(job, Error::token_source(error), &mut call.last, now, remaining)
            }
            _ => Progress::Answer(Answer::Failed(misuse(
                "handed a token to a call that asked for none",
            ))),
        }
    }

    /// The Azure CLI ran: its token, or why there is none (not retried: the CLI's own
    /// sign-in is not transient).
    fn on_program<T>(
        &mut self,
        call: &mut Call<'_, T>,
        ran: std::io::Result<ProgramOutput>,
        now: Now,
    ) -> Progress {
        let remaining = remaining(call.deadline, now.instant);
        let Some(job) = call.job.as_mut() else {
            return Progress::Answer(Answer::Failed(misuse(
                "handed a program's output to a call that ran none",
            )));
        };
        let (
            Phase::SignIn(SignIn {
                state: SignInState::Running,
                ..
            }),
            Credential::AzureCli(cli),
        ) = (&job.phase, &self.credential)
        else {
            return Progress::Answer(Answer::Failed(misuse(
                "handed a program's output to a call that ran none",
            )));
        };
        match cli.from_output(ran, now.wall) {
            Ok(token) => self.renewed(job, token, &mut call.last, now, remaining),
            Err(error) => self.renewal_failed(job, error.into(), &mut call.last, now, remaining),
        }
    }

    /// A renewal gave `token`: the renewing call goes on with it at once, even when it
    /// is already inside the renewal margin (a managed identity may hand out a token
    /// close to its expiry): checking its freshness again would renew again, in a loop.
    fn renewed(
        &mut self,
        job: &mut Job,
        token: BearerToken,
        last: &mut Option<(&'static str, Host)>,
        now: Now,
        remaining: Duration,
    ) -> Progress {
        let held = self.bearer.renewed(token);
        self.wake = true;
        job.phase = Phase::Bearer;
        if held.is_still_valid(now.wall, None) {
            return self.send(job, held, last, remaining);
        }
        Progress::Continue
    }

    /// A sign-in attempt failed: retry while no valid token is held, else fall back.
    fn sign_in_failed(
        &mut self,
        job: &mut Job,
        error: Error,
        last: &mut Option<(&'static str, Host)>,
        now: Now,
        remaining: Duration,
        random: u32,
    ) -> Progress {
        if let Phase::SignIn(sign_in) = &mut job.phase
            && !self.bearer.has_usable(now.wall)
            && let NextStep::Wait(delay) =
                sign_in
                    .retry
                    .next(error.kind(), error.outcome(), false, remaining, now.wall, random)
        {
            // The call keeps the renewal while it waits to sign in again.
            sign_in.state = SignInState::Ready;
            return Progress::Io(Io::Wait(delay));
        }
        self.renewal_failed(job, error, last, now, remaining)
    }

    /// No new token: send the held one while it is valid, else fail with `error`.
    fn renewal_failed(
        &mut self,
        job: &mut Job,
        error: Error,
        last: &mut Option<(&'static str, Host)>,
        now: Now,
        remaining: Duration,
    ) -> Progress {
        self.wake = true;
        match self.bearer.renewal_failed(now.wall) {
            Some(held) => self.send(job, held, last, remaining),
            None => Progress::Answer(Answer::Failed(error)),
        }
    }

    /// A successful response, parsed as the job wants it (and cached).
    fn parsed(
        &mut self,
        job: &mut Job,
        response: &http::Response<Vec<u8>>,
        last: Option<(&'static str, Host)>,
        now: Now,
    ) -> Progress {
        let failed = |error: ExchangeError| {
            Progress::Answer(Answer::Failed(Error::from(error).at(self.step_of(last).as_ref())))
        };
        match job.want {
            Want::Response => Progress::Answer(Answer::Response(response.clone())),
            Want::EmbedToken => {
                match response::parse_success(response, "EmbedToken", EmbedToken::from_json) {
                    Ok(token) => {
                        if let (Some(key), Some(cache)) = (&job.key, &mut self.tokens) {
                            cache.insert(key.clone(), token.clone(), now.wall);
                        }
                        // Shared with the other replicas, until the margin.
                        let ttl = store::record_ttl(&token, now.wall, self.embed_margin());
                        if let (true, Some(key), false) = (job.shared, &job.key, ttl.is_zero()) {
                            let put = Op::Put(store::record_key(job.want, key), store::encode(&token), ttl);
                            job.stash = Some(Answer::Token(token));
                            job.phase = Phase::Shared(Shared::Putting);
                            return Progress::Io(Io::Store(StoreOp(put)));
                        }
                        Progress::Answer(Answer::Token(token))
                    }
                    Err(error) => failed(error),
                }
            }
            Want::Metadata(kind) => {
                match response::parse_success(response, kind.output_name(), |b| kind.parse(b)) {
                    Ok(metadata) => {
                        if let Some(key) = &job.key {
                            self.metadata.insert(key.clone(), metadata.clone(), now.instant);
                        }
                        // Shared as Power BI sent it, for the time-to-live.
                        let ttl = self.settings.metadata_cache.1;
                        if let (true, Some(key), false) = (job.shared, &job.key, ttl.is_zero()) {
                            let put = Op::Put(store::record_key(job.want, key), response.body().clone(), ttl);
                            job.stash = Some(Answer::Metadata(metadata));
                            job.phase = Phase::Shared(Shared::Putting);
                            return Progress::Io(Io::Store(StoreOp(put)));
                        }
                        Progress::Answer(Answer::Metadata(metadata))
                    }
                    Err(error) => failed(error),
                }
            }
        }
    }

    fn io<T>(&self, io: Io) -> Action<T> {
        match io {
            Io::Send(exchange) => Action::Send(exchange),
            Io::FetchToken => Action::FetchToken,
            Io::ReadFile(file) => Action::ReadFile(file),
            Io::RunProgram(run) => Action::RunProgram(run),
            Io::Store(op) => Action::Store(op),
            Io::Wait(delay) => Action::Wait(delay),
            Io::Park(most) => Action::Park(most),
        }
    }

    /// The sign-in request of a credential that signs in itself (a client secret, a
    /// managed identity): its operation, its host and the request.
    fn sign_in_request(
        &self,
        now: SystemTime,
        ticket: u64,
    ) -> Option<(&'static str, Host, Result<HttpRequest, ExchangeError>)> {
        match &self.credential {
            Credential::ServicePrincipal(op) => {
                Some((op.name(), Host::Authority, op.to_http_at(now, &jti(now, ticket))))
            }
            Credential::ManagedIdentity(identity) => Some((
                identity.operation(),
                Host::Identity,
                identity.to_http(self.cloud.resource()),
            )),
            Credential::BearerToken(_) | Credential::TokenSource | Credential::AzureCli(_) => None,
        }
    }

    /// The step an exchange was, with its host.
    fn step_of(&self, last: Option<(&'static str, Host)>) -> Option<Step> {
        let (operation, host) = last?;
        let base = match (host, &self.credential) {
            (Host::Api, _) => self.cloud.api_base(),
            (Host::Identity, Credential::ManagedIdentity(identity)) => identity.endpoint(),
            (Host::Authority | Host::Identity, _) => self.cloud.authority_host(),
        };
        Some(Step {
            operation,
            host: host_of(base).to_owned(),
        })
    }
}

/// A client assertion's unique id: the time to the nanosecond and the call's ticket
/// (unique in the session).
fn jti(now: SystemTime, ticket: u64) -> String {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{ticket:x}")
}

/// `api.powerbi.com` of `https://api.powerbi.com/base`.
fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// What is left before `deadline` at `now`; a call without one has all the time there is.
fn remaining(deadline: Option<Instant>, now: Instant) -> Duration {
    deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now))
}

/// A driver broke the protocol of the flow: reported as an error, never a panic.
fn misuse(what: &str) -> Error {
    ExchangeError::invalid_input(
        "driver",
        format!("{what}; drivers hand back exactly what each action asks for"),
    )
    .into()
}

impl Job {
    /// The unlock to send before the job answers, when it holds the shared lock.
    fn unlock(&mut self) -> Option<StoreOp> {
        let key = self.key.as_ref().filter(|_| self.locked)?;
        let unlock = StoreOp(Op::Unlock(store::lock_key(key)));
        self.locked = false;
        self.phase = Phase::Shared(Shared::Unlocking);
        Some(unlock)
    }
}
