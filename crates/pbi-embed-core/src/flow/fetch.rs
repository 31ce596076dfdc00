//! Fetching one request from Power BI, as a machine: get a bearer token (send the held
//! one, park while another call renews it, or renew it here through the credential's
//! sign-in machine), send, and read the answer: done, retry after a wait, sign in again
//! once after `TokenExpired`, or fail.

use std::path::PathBuf;

use crate::api::request::Prepared;
use crate::auth::bearer::{BearerNeed, BearerToken, HeldToken};
use crate::auth::sign_in::{Attempt, SignIn, SignInError, SignInInput, SignInStep};
use crate::flow::error::{Error, Step};
use crate::flow::io::Reply;
use crate::flow::job::{Ctx, Io, Role};
use crate::flow::plan::{Background, Behind};
use crate::flow::retry::{NextStep, RetryState};
use crate::wire::redact::Secrets;
use crate::wire::response;
use crate::wire::secret::AccessToken;

/// Where a fetch is.
pub(crate) enum Fetching {
    /// Get a bearer token (first, after a backoff, or after `TokenExpired`).
    Bearer,
    /// This job renews the session's bearer token.
    SignIn(Box<Renewal>),
    /// Sent with this bearer token (of this generation) at `at`; awaiting the response.
    Sent {
        generation: u64,
        bearer: AccessToken,
        at: std::time::Instant,
    },
    /// Waiting before the next attempt.
    Backoff,
}

/// What one step of a fetch gave.
pub(crate) enum FetchStep {
    /// IO for the driver.
    Io(Io),
    /// The successful response.
    Response(http::Response<Vec<u8>>),
    /// The bearer token itself (a sign-in call).
    Bearer(BearerToken),
    /// No answer.
    Failed(Error),
    /// Step again at once.
    Continue,
}

/// A job renewing the session's bearer token: the credential's sign-in machine, what it
/// waits for, and its own retries.
pub(crate) struct Renewal {
    machine: Box<dyn SignIn>,
    waiting: Waiting,
    retry: RetryState,
    /// The secrets the last sign-in request carried, kept out of any error.
    sent: Secrets,
}

/// What a renewal waits for.
enum Waiting {
    /// The response to its sign-in request, sent at the instant given.
    Response(Step, std::time::Instant),
    /// A file's bytes.
    File {
        path: PathBuf,
        what: &'static str,
        max_bytes: u64,
    },
    /// A program's output.
    Program,
    /// The token source's token.
    Token,
    /// The end of a backoff before the next attempt.
    Backoff,
}

impl Fetching {
    /// Steps the fetch of `request` (`None`: the bearer token itself) with the driver's
    /// `reply` to its last IO, if any.
    pub(crate) fn step(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: Option<&Prepared>,
        role: Role,
        retry: &mut RetryState,
        reply: Option<Reply>,
    ) -> FetchStep {
        match (std::mem::replace(self, Self::Bearer), reply) {
            (Self::Bearer, _) => self.bearer(ctx, request, role, retry),
            (Self::Backoff, _) => FetchStep::Continue,
            (
                Self::Sent {
                    generation,
                    bearer,
                    at,
                },
                Some(Reply::Response(response)),
            ) => self.on_response(ctx, (generation, &bearer, at), retry, response),
            (Self::SignIn(renewal), reply) => self.renewal(ctx, renewal, request, retry, reply),
            (
                Self::Sent {
                    generation,
                    bearer,
                    at,
                },
                _,
            ) => {
                *self = Self::Sent {
                    generation,
                    bearer,
                    at,
                };
                FetchStep::Failed(Error::invalid_input(
                    "flow",
                    "a sent request was stepped without its response",
                ))
            }
        }
    }

    /// Sends with the held token, parks behind another call's renewal, or renews.
    fn bearer(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: Option<&Prepared>,
        role: Role,
        retry: &mut RetryState,
    ) -> FetchStep {
        // Power BI caps an embed token's expiry at the access token's: a refresh renews
        // an access token that would expire within the window first, or the new embed
        // token would be due again at once.
        let settings = &ctx.config.settings;
        let margin = match (role, settings.refresh_ahead) {
            (Role::Refresh, Some(window)) => settings.access_token_margin.max(window),
            _ => settings.access_token_margin,
        };
        // A caller's request goes on with a token that is due but valid; its renewal is
        // handed to the background, so no caller waits on a sign-in but the first.
        let behind = role == Role::Caller && request.is_some();
        match ctx.bearer.need(ctx.ticket, ctx.now.wall, margin, behind) {
            BearerNeed::Use(held) => self.send(ctx, request, retry, held),
            BearerNeed::UseAndRenewBehind(held) => {
                ctx.spawns.push(Background(Behind::Bearer));
                self.send(ctx, request, retry, held)
            }
            BearerNeed::Wait => FetchStep::Io(Io::Park),
            // Sign-ins are rationed: wait for the next one (the deadline still holds).
            BearerNeed::Hold(wait) => {
                *self = Self::Backoff;
                FetchStep::Io(Io::Wait(wait.min(ctx.remaining)))
            }
            BearerNeed::Renew => {
                let renewal = Renewal {
                    machine: ctx.config.credential.sign_in(),
                    waiting: Waiting::Backoff,
                    retry: RetryState::new(ctx.config.settings.retry),
                    sent: Secrets::default(),
                };
                self.renewal(ctx, Box::new(renewal), request, retry, None)
            }
        }
    }

    /// Sends the request with `held`, or answers with the token itself.
    fn send(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: Option<&Prepared>,
        retry: &mut RetryState,
        held: HeldToken,
    ) -> FetchStep {
        let Some(prepared) = request else {
            return FetchStep::Bearer(held.token);
        };
        let profile = ctx.config.settings.profile.as_ref();
        let (request, url) = match prepared.to_http(&ctx.config.api_base, &held.token.access_token, profile) {
            Ok(built) => built,
            Err(error) => return FetchStep::Failed(error.into()),
        };
        *ctx.last = Some(Step::of(prepared.operation, &request));
        *self = Self::Sent {
            generation: held.generation,
            bearer: held.token.access_token,
            at: ctx.now.instant,
        };
        FetchStep::Io(Io::Send {
            request,
            url,
            operation: prepared.operation,
            attempt: retry.start_attempt(),
        })
    }

    /// Power BI answered (or the transport failed): the response, a retry, or the error.
    fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        (generation, bearer, at): (u64, &AccessToken, std::time::Instant),
        retry: &mut RetryState,
        response: Result<http::Response<Vec<u8>>, crate::flow::error::TransportError>,
    ) -> FetchStep {
        let step = ctx.last.clone();
        if let Some(step) = &step {
            record(ctx, step, &response, at);
        }
        let error = match response {
            Ok(response) if response.status().is_success() => return FetchStep::Response(response),
            Ok(response) => {
                // Whatever Power BI echoes, the bearer token sent does not reach an error.
                let mut sent = Secrets::default();
                sent.add(bearer.secret());
                Error::from(response::api_error(&response).redacted(&sent)).at(step.as_ref())
            }
            Err(transport) => match step {
                Some(step) => Error::transport(transport, step),
                None => Error::invalid_input("flow", "a response came for a request never sent"),
            },
        };
        let renewable = ctx.config.credential.is_renewable();
        let (remaining, now, random) = (ctx.remaining, ctx.now.wall, ctx.random);
        match retry.next(error.kind(), error.outcome(), renewable, remaining, now, random) {
            NextStep::Reauthenticate => {
                ctx.bearer.reject(generation);
                FetchStep::Continue
            }
            NextStep::Wait(delay) => {
                if error.kind() == crate::wire::error::ErrorKind::Throttled {
                    ctx.stats.throttled(delay);
                }
                *self = Self::Backoff;
                FetchStep::Io(Io::Wait(delay))
            }
            NextStep::Return => FetchStep::Failed(error),
        }
    }

    /// Steps a renewal: starts or goes on with the credential's sign-in machine.
    fn renewal(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut renewal: Box<Renewal>,
        request: Option<&Prepared>,
        retry: &mut RetryState,
        reply: Option<Reply>,
    ) -> FetchStep {
        let at = Attempt {
            now: ctx.now.wall,
            cloud: &ctx.config.cloud,
            nonce: ctx.ticket,
            remaining: ctx.remaining,
        };
        let input = match (std::mem::replace(&mut renewal.waiting, Waiting::Backoff), reply) {
            (Waiting::Backoff, _) => Ok(None),
            (Waiting::Response(step, sent_at), Some(Reply::Response(response))) => {
                record(ctx, &step, &response, sent_at);
                match response {
                    Ok(response) => Ok(Some(SignInInput::Response(response))),
                    Err(transport) => Err((Error::transport(transport, step), true)),
                }
            }
            (Waiting::File { max_bytes, .. }, Some(Reply::File(Ok(bytes))))
                if bytes.len() as u64 <= max_bytes =>
            {
                Ok(Some(SignInInput::File(bytes)))
            }
            (
                Waiting::File {
                    path,
                    what,
                    max_bytes,
                },
                Some(Reply::File(read)),
            ) => {
                let why = read.err().map_or_else(
                    || format!("it is larger than {max_bytes} bytes"),
                    |e| e.to_string(),
                );
                let error = format!("the {what} file {} could not be read: {why}", path.display());
                Err((Error::token_source(error.into()), false))
            }
            (Waiting::Program, Some(Reply::Program(ran))) => Ok(Some(SignInInput::Program(ran))),
            (Waiting::Token, Some(Reply::Token(Ok(token)))) => Ok(Some(SignInInput::Token(token))),
            (Waiting::Token, Some(Reply::Token(Err(error)))) => Err((Error::token_source(error), false)),
            (_, _) => Err((
                Error::invalid_input("flow", "a sign-in got an answer it did not ask for"),
                false,
            )),
        };
        let step = match input {
            Ok(None) => renewal.machine.start(&at),
            Ok(Some(input)) => renewal.machine.resume(input, &at),
            Err((error, retryable)) => {
                return self.sign_in_failed(ctx, renewal, request, retry, error, retryable);
            }
        };
        match step {
            SignInStep::Send {
                operation,
                request: sign_in,
            } => {
                let step = Step::of(operation, &sign_in);
                *ctx.last = Some(step.clone());
                renewal.waiting = Waiting::Response(step, ctx.now.instant);
                renewal.sent = Secrets::of_request(&sign_in);
                let attempt = renewal.retry.start_attempt();
                let url = sign_in.uri().to_string();
                *self = Self::SignIn(renewal);
                FetchStep::Io(Io::Send {
                    request: sign_in,
                    url,
                    operation,
                    attempt,
                })
            }
            SignInStep::Read {
                path,
                what,
                max_bytes,
            } => {
                // One byte more than is accepted, so a longer file is told apart.
                let read = Io::Read {
                    path: path.clone(),
                    max_bytes: max_bytes.saturating_add(1),
                };
                renewal.waiting = Waiting::File {
                    path,
                    what,
                    max_bytes,
                };
                *self = Self::SignIn(renewal);
                FetchStep::Io(read)
            }
            SignInStep::Run(command) => {
                renewal.waiting = Waiting::Program;
                *self = Self::SignIn(renewal);
                FetchStep::Io(Io::Run(command))
            }
            SignInStep::FetchToken => {
                renewal.waiting = Waiting::Token;
                *self = Self::SignIn(renewal);
                FetchStep::Io(Io::FetchToken)
            }
            SignInStep::Done(token) => match unusable(&token, ctx.now.wall) {
                // Checked here, once for every credential: an already expired token
                // would only make the flow sign in again at once, in a loop.
                Some(why) => {
                    let what = ctx.config.credential.describe();
                    let reason = format!("{what} gave a token that {why}");
                    let error = Error::credential(reason, ctx.last.as_ref());
                    self.renewal_failed(ctx, request, retry, error)
                }
                None => self.renewed(ctx, request, retry, token),
            },
            SignInStep::Failed(failure) => {
                let (error, retryable) = match failure {
                    SignInError::Refused(error) => {
                        let error = error.redacted(&renewal.sent);
                        (Error::from(error).at(ctx.last.as_ref()), true)
                    }
                    SignInError::Unusable(error) => {
                        let what = ctx.config.credential.describe();
                        (
                            Error::credential(format!("{what} cannot sign in: {error}"), None),
                            false,
                        )
                    }
                    SignInError::AzureCli(error) => (Error::from_azure_cli(error), false),
                    SignInError::CannotRenew => (
                        Error::invalid_input(
                            "credential",
                            "the bearer token was refused and cannot be renewed",
                        ),
                        false,
                    ),
                };
                self.sign_in_failed(ctx, renewal, request, retry, error, retryable)
            }
        }
    }

    /// A renewal gave `token`: the renewing call goes on with it at once, even when it
    /// is already inside the renewal margin (a managed identity may hand out a token
    /// close to its expiry): checking its freshness again would renew again, in a loop.
    fn renewed(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: Option<&Prepared>,
        retry: &mut RetryState,
        token: BearerToken,
    ) -> FetchStep {
        let held = ctx.bearer.renewed(token, ctx.now.wall);
        ctx.scheduler.wake();
        *self = Self::Bearer;
        if held.is_still_valid(ctx.now.wall, None) {
            return self.send(ctx, request, retry, held);
        }
        FetchStep::Continue
    }

    /// A sign-in attempt failed: tried again while no valid token is held and the policy
    /// allows (a transient refusal or transport failure), else the renewal ends.
    fn sign_in_failed(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut renewal: Box<Renewal>,
        request: Option<&Prepared>,
        retry: &mut RetryState,
        error: Error,
        retryable: bool,
    ) -> FetchStep {
        if retryable && !ctx.bearer.has_usable(ctx.now.wall) {
            let (remaining, now, random) = (ctx.remaining, ctx.now.wall, ctx.random);
            if let NextStep::Wait(delay) =
                renewal
                    .retry
                    .next(error.kind(), error.outcome(), false, remaining, now, random)
            {
                // The call keeps the renewal while it waits to sign in again.
                renewal.waiting = Waiting::Backoff;
                *self = Self::SignIn(renewal);
                return FetchStep::Io(Io::Wait(delay));
            }
        }
        self.renewal_failed(ctx, request, retry, error)
    }

    /// No new token: send the held one while it is valid, else fail with `error`.
    fn renewal_failed(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: Option<&Prepared>,
        retry: &mut RetryState,
        error: Error,
    ) -> FetchStep {
        ctx.scheduler.wake();
        match ctx.bearer.renewal_failed(ctx.now.wall) {
            Some(held) => self.send(ctx, request, retry, held),
            None => FetchStep::Failed(error),
        }
    }
}

/// Why a credential's `token` cannot be used at `now`, if it cannot.
fn unusable(token: &BearerToken, now: std::time::SystemTime) -> Option<&'static str> {
    if token.access_token.authorization().is_none() {
        return Some("cannot go in an Authorization header (empty, or with control characters)");
    }
    match token.freshness(now, std::time::Duration::ZERO) {
        crate::wire::lifetime::Freshness::Expired => Some("has already expired"),
        _ => None,
    }
}

/// Counts an exchange of `step` answered (or failed) now that was sent at `at`.
fn record(
    ctx: &mut Ctx<'_>,
    step: &Step,
    response: &Result<http::Response<Vec<u8>>, crate::flow::error::TransportError>,
    at: std::time::Instant,
) {
    let status = response.as_ref().map_or(0, |r| r.status().as_u16());
    let took = ctx.now.instant.saturating_duration_since(at);
    ctx.stats.exchange(step.operation, status, took);
}
