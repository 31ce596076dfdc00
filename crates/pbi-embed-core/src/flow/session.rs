//! The state a client shares between its calls — its configuration, the bearer token, the
//! caches, the scheduling of calls — and the one function that steps a call.
//!
//! A driver keeps a [`Session`] behind one lock and steps each call with
//! [`Session::step`] while holding it; steps never block and do no IO, so the lock is
//! held for microseconds. The session only coordinates: a call's plan says what it
//! needs, a job fetches each need ([`job`](super::job)), the bearer state and the
//! credential's sign-in machine give the token, the scheduler says who runs.

use std::time::Duration;

use crate::api::request::ApiBase;
use crate::auth::bearer::BearerState;
use crate::auth::credential::Credential;
use crate::flow::answer::Answer;
use crate::flow::branch::Join;
use crate::flow::cache::Caches;
use crate::flow::call::{Action, Call, CallState, Now, Owed, PARK_POLL, Running, Work};
use crate::flow::error::{Error, Step};
use crate::flow::io::{Exchange, FileRead, ProgramRun, Reply, Responder, TokenFetch};
use crate::flow::job::{Config, Ctx, Io, Job, Progress};
use crate::flow::plan::{Background, FetchOne, Need, Next, Plan, Side, unexpected};
use crate::flow::scheduler::Scheduler;
use crate::flow::stats::ClientStats;
use crate::flow::store::StoreOp;
use crate::settings::client_settings::ClientSettings;
use crate::wire::cloud::Cloud;

/// Where steps side by side stand once the cache has answered what it holds.
enum SideBySide {
    /// All answered.
    Answered(Vec<Answer>),
    /// The rest for the driver to run.
    Join(Join),
}

/// The shared state of one client: configuration, credential, bearer token, caches and
/// the calls under way. Plain data: the driver holds the lock.
#[derive(Debug)]
pub struct Session {
    config: Config,
    bearer: BearerState,
    caches: Caches,
    scheduler: Scheduler,
    stats: ClientStats,
}

impl Session {
    /// A session for `credential` with `settings`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when a setting is
    /// meaningless (a zero time-out or deadline, a zero body cap, a refresh-ahead window
    /// inside the cache's margin) or a custom URL is invalid.
    pub fn new(settings: ClientSettings, credential: Credential) -> Result<Self, Error> {
        let settings = settings.checked()?;
        let cloud = settings.resolved_cloud()?;
        let bearer = match &credential {
            Credential::BearerToken(token) => BearerState::fixed(token.clone()),
            _ => BearerState::default(),
        };
        Ok(Self {
            stats: ClientStats::default(),
            caches: Caches::new(&settings),
            config: Config {
                api_base: ApiBase::of(&cloud)?,
                credential: credential.for_cloud(&cloud),
                cloud,
                settings,
            },
            bearer,
            scheduler: Scheduler::default(),
        })
    }

    /// The cloud, with any custom hosts applied.
    #[must_use]
    pub fn cloud(&self) -> &Cloud {
        &self.config.cloud
    }

    /// The settings, as checked.
    #[must_use]
    pub fn settings(&self) -> &ClientSettings {
        &self.config.settings
    }

    /// The credential.
    #[must_use]
    pub fn credential(&self) -> &Credential {
        &self.config.credential
    }

    /// How often to run [`Call::warm_up`] to keep what it fetched warm: within half the
    /// metadata's time-to-live (entries are fetched again in their second half) and half
    /// the bearer token's renewal margin (renewed inside it), at least a second apart.
    #[must_use]
    pub fn warm_up_interval(&self) -> Duration {
        let settings = &self.config.settings;
        let metadata = settings.metadata_cache.map_or(Duration::MAX, |(_, ttl)| ttl / 2);
        (settings.access_token_margin / 2)
            .min(metadata)
            .max(Duration::from_secs(1))
    }

    /// Forgets every cached embed token and item metadata.
    pub fn clear_caches(&mut self) {
        self.caches.clear();
    }

    /// What the session did, counted (see [`ClientStats`]).
    #[must_use]
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// How many fetches calls are leading right now (cacheable requests and the bearer
    /// token's renewal). Zero when no call is under way.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.scheduler.in_flight() + usize::from(self.bearer.is_renewing())
    }

    /// Steps `call`: hands it `event` and returns what it needs next.
    ///
    /// `now` is the time of this step and `random` any uniformly random number (for
    /// retry jitter). When the step releases something other calls were parked on, it
    /// calls `wake_parked` (while the driver still holds the lock): the driver then wakes
    /// every parked call, which steps again with [`Event::resume`](crate::driver::Event::resume).
    pub fn step<T>(
        &mut self,
        call: &mut Call<'_, T>,
        event: crate::flow::io::Event,
        now: Now,
        random: u32,
        wake_parked: impl FnOnce(),
    ) -> Action<T> {
        let Call { plan, state } = call;
        if let CallState::New { inherited } = *state {
            let deadline = inherited.or_else(|| now.instant.checked_add(self.config.settings.deadline));
            *state = CallState::Running(Running::new(self.scheduler.admit(), deadline));
        }
        let CallState::Running(run) = state else {
            return Action::Done(Err(Error::driver("stepped a call that has ended".into(), None)));
        };
        // What the driver owed is paid by this step, whatever comes of it.
        let owed = std::mem::replace(&mut run.owed, Owed::Resume);
        if owed == Owed::Parked {
            self.scheduler.unpark();
        }
        let action = match Running::accept(owed, event) {
            Ok(reply) => self.advance(plan.as_mut(), run, reply, now, random),
            Err(misuse) => Action::Done(Err(Error::driver(misuse, run.last.as_ref()))),
        };
        let parked = matches!(action, Action::Park(_));
        if let Action::Done(_) = action {
            self.end(state);
        }
        if self.scheduler.take_wake(parked) {
            wake_parked();
        }
        action
    }

    /// Ends a call that will not be stepped again (its driver dropped it half-way):
    /// whatever it was fetching is left to the next call that needs it. Calls
    /// `wake_parked` when others may now go on.
    pub fn abandon<T>(&mut self, call: &mut Call<'_, T>, wake_parked: impl FnOnce()) {
        self.end(&mut call.state);
        if self.scheduler.take_wake(false) {
            wake_parked();
        }
    }

    /// A call is over: what it led and held is let go.
    fn end(&mut self, state: &mut CallState) {
        if let CallState::Running(run) = std::mem::replace(state, CallState::Ended) {
            if let Work::Job(job) = &run.work {
                job.release(&mut self.scheduler);
            }
            if self.bearer.release(run.ticket) {
                self.scheduler.wake();
            }
            if run.owed == Owed::Parked {
                self.scheduler.unpark();
            }
        }
    }

    /// Goes on with the call until it needs IO or is done.
    fn advance<T>(
        &mut self,
        plan: &mut (dyn Plan<Output = T> + Send + '_),
        run: &mut Running,
        mut reply: Option<Reply>,
        now: Now,
        random: u32,
    ) -> Action<T> {
        loop {
            let remaining = run.remaining(now.instant);
            let progress = match &mut run.work {
                Work::Plan(answer) => {
                    if let Some(work) = run.spawns.pop() {
                        run.owed = Owed::Resume;
                        return Action::Spawn(work);
                    }
                    match plan.next(answer.take()) {
                        Ok(Next::Need(need)) => {
                            run.work = Work::Job(Job::new(need, &self.config, &self.caches));
                            continue;
                        }
                        Ok(Next::All(sides)) => match self.side_by_side(sides, run, now, random) {
                            SideBySide::Answered(answers) => {
                                run.work = Work::Plan(Some(Answer::All(answers)));
                                continue;
                            }
                            SideBySide::Join(join) => return Action::Join(join),
                        },
                        Ok(Next::Done(output)) => return Action::Done(Ok(output)),
                        Err(error) => return Action::Done(Err(error.at(run.last.as_ref()))),
                    }
                }
                Work::Joined { known, at } => {
                    let mut known = std::mem::take(known);
                    match reply.take() {
                        Some(Reply::Joined(results)) => {
                            for (index, result) in at.iter().zip(results) {
                                if let Some(slot) = known.get_mut(*index) {
                                    *slot = Some(result);
                                }
                            }
                        }
                        _ => {
                            let error = Error::driver(
                                "stepped on without the results of the calls run side by side".into(),
                                run.last.as_ref(),
                            );
                            return Action::Done(Err(error));
                        }
                    }
                    let answers = known
                        .into_iter()
                        .map(|answer| answer.unwrap_or_else(|| Answer::Failed(unexpected())))
                        .collect();
                    run.work = Work::Plan(Some(Answer::All(answers)));
                    continue;
                }
                Work::Job(job) if reply.is_none() && remaining.is_zero() => {
                    job.fail(Error::deadline(self.config.settings.deadline, run.last.clone()))
                }
                Work::Job(job) => {
                    let time = (now, random, remaining);
                    let mut ctx = self.ctx(run.ticket, time, &mut run.last, &mut run.spawns);
                    job.advance(&mut ctx, reply.take())
                }
            };
            match progress {
                Progress::Io(io) => return self.io(run, io, remaining),
                Progress::Answer(answer) => {
                    if let Work::Job(job) = std::mem::replace(&mut run.work, Work::Plan(Some(answer))) {
                        job.release(&mut self.scheduler);
                    }
                }
                Progress::Continue => {}
            }
        }
    }

    /// Steps side by side: those the cache answers are answered here (no IO, no call of
    /// their own); the others go to the driver as calls of their own, ending by this
    /// call's deadline.
    fn side_by_side(&mut self, sides: Vec<Side>, run: &mut Running, now: Now, random: u32) -> SideBySide {
        let mut known: Vec<Option<Answer>> = Vec::with_capacity(sides.len());
        let (mut branches, mut at) = (Vec::new(), Vec::new());
        for side in sides {
            let plan = match side {
                Side::Need(Need::Api(request, want)) => {
                    let peek = Need::Cached(request.clone(), want);
                    match self.peek(peek, run, now, random) {
                        Answer::NotCached => FetchOne::plan(Need::Api(request, want)),
                        cached => {
                            known.push(Some(cached));
                            continue;
                        }
                    }
                }
                Side::Need(need) => FetchOne::plan(need),
                Side::Plan(plan) => plan,
            };
            at.push(known.len());
            known.push(None);
            branches.push(Call::branch(plan, run.deadline));
        }
        if branches.is_empty() {
            return SideBySide::Answered(known.into_iter().flatten().collect());
        }
        run.work = Work::Joined { known, at };
        SideBySide::Join(Join {
            branches,
            slot: run.ask(),
        })
    }

    /// A need that looks only in the cache, answered here.
    fn peek(&mut self, need: Need, run: &mut Running, now: Now, random: u32) -> Answer {
        let mut job = Job::new(need, &self.config, &self.caches);
        let time = (now, random, run.remaining(now.instant));
        let mut ctx = self.ctx(run.ticket, time, &mut run.last, &mut run.spawns);
        match job.advance(&mut ctx, None) {
            Progress::Answer(answer) => answer,
            _ => Answer::NotCached,
        }
    }

    /// What a job of call `ticket` works with at `time` (now, a random number, what is
    /// left of the deadline), noting the call's last exchange and background work.
    fn ctx<'a>(
        &'a mut self,
        ticket: u64,
        (now, random, remaining): (Now, u32, Duration),
        last: &'a mut Option<Step>,
        spawns: &'a mut Vec<Background>,
    ) -> Ctx<'a> {
        Ctx {
            config: &self.config,
            bearer: &mut self.bearer,
            caches: &mut self.caches,
            scheduler: &mut self.scheduler,
            ticket,
            now,
            random,
            remaining,
            last,
            spawns,
            stats: &mut self.stats,
        }
    }

    /// Addresses `io` to the call: the request for the driver, with the slot its answer
    /// must name.
    fn io<T>(&mut self, run: &mut Running, io: Io, remaining: Duration) -> Action<T> {
        let settings = &self.config.settings;
        match io {
            Io::Send {
                request,
                url,
                operation,
                attempt,
            } => Action::Send(Exchange {
                request,
                url,
                responder: Responder {
                    slot: run.ask(),
                    timeout: settings.timeout.min(remaining),
                    max_response_bytes: settings.max_response_bytes,
                    operation,
                    attempt,
                },
            }),
            Io::FetchToken => Action::FetchToken(TokenFetch {
                scope: self.config.cloud.scope().to_owned(),
                slot: run.ask(),
            }),
            Io::Read { path, max_bytes } => Action::ReadFile(FileRead {
                path,
                max_bytes,
                timeout: settings.timeout.min(remaining),
                slot: run.ask(),
            }),
            Io::Run(command) => Action::RunProgram(ProgramRun {
                command,
                slot: run.ask(),
            }),
            Io::Store(op) => Action::Store(StoreOp { op, slot: run.ask() }),
            Io::Wait(delay) => {
                run.owed = Owed::Resume;
                Action::Wait(delay)
            }
            Io::Park => {
                run.owed = Owed::Parked;
                self.scheduler.park();
                Action::Park(remaining.min(PARK_POLL))
            }
        }
    }
}
