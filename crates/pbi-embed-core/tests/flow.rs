//! The whole call, tested once for every driver: the session's flow stepped with a
//! simulated clock and canned answers. No sockets, no sleeps: a `Wait` moves the clock.
//!
//! Bearer renewal, single-flight, the caches, retries and backoff, `TokenExpired`
//! recovery, deadlines, abandoned calls and the embed-configuration plan are decided
//! here; the drivers' conformance tests only check that they carry the decisions out.

use std::time::{Duration, Instant, SystemTime};

use pbi_embed_core::driver::{Action, Call, Event, Exchange, Now, Session, TransportError};
use pbi_embed_core::{
    AccessToken, BearerToken, ClientCredentials, ClientId, ClientSecret, ClientSettings, Credential,
    DatasetId, EffectiveIdentity, EmbedRequest, ErrorKind, ProfileId, ReportId, ReportToken, RetryPolicy,
    TenantId, TransportKind, WorkspaceId, http,
};

const WORKSPACE: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
const REPORT: &str = "5b218778-e7a5-4d73-8187-f10824047715";
const DATASET: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";

/// What a simulated server answers.
type Answer = Result<http::Response<Vec<u8>>, TransportError>;

/// A session and its simulated clock.
struct Sim {
    session: Session,
    now: Now,
    wakes: u32,
    /// Background work the calls handed out (refresh-ahead), not yet run.
    spawned: Vec<pbi_embed_core::driver::Background>,
}

impl Sim {
    fn new(settings: ClientSettings) -> Self {
        let credential = Credential::ServicePrincipal(ClientCredentials::new(
            TenantId::parse("contoso.onmicrosoft.com").unwrap(),
            ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            ClientSecret::new("s3cr3t"),
        ));
        Self::with(settings, credential)
    }

    fn with(settings: ClientSettings, credential: Credential) -> Self {
        // Both clocks start at a fixed, simulated time.
        let now = Now::new(
            Instant::now(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000),
        );
        Self {
            session: Session::new(settings, credential).unwrap(),
            now,
            wakes: 0,
            spawned: Vec::new(),
        }
    }

    fn step<T>(&mut self, call: &mut Call<'_, T>, event: Event) -> Action<T> {
        let wakes = &mut self.wakes;
        self.session
            .step(call, event, self.now, u32::MAX / 2, || *wakes += 1)
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now.after(by);
    }

    /// Runs the background work handed out so far (as a driver's thread or task would):
    /// whether each succeeded, and what they sent.
    fn run_spawned(&mut self, server: &mut dyn FnMut(&Exchange, Now) -> Answer) -> (Vec<bool>, Vec<String>) {
        let (mut outcomes, mut sent) = (Vec::new(), Vec::new());
        while let Some(work) = self.spawned.pop() {
            let (result, work_sent) = self.drive(&mut Call::refresh(work), server);
            outcomes.push(result.is_ok());
            sent.extend(work_sent);
        }
        (outcomes, sent)
    }

    /// Steps `call` to its end, answering each exchange with `server` and moving the
    /// clock on each wait. Returns the result and what was sent, in order.
    fn drive<T>(
        &mut self,
        call: &mut Call<'_, T>,
        server: &mut dyn FnMut(&Exchange, Now) -> Answer,
    ) -> (Result<T, pbi_embed_core::Error>, Vec<String>) {
        let mut sent = Vec::new();
        let mut event = Event::resume();
        loop {
            event = match self.step(call, event) {
                Action::Send(exchange) => {
                    sent.push(exchange.operation().to_owned());
                    let answer = server(&exchange, self.now);
                    exchange.respond(answer)
                }
                Action::Wait(delay) => {
                    sent.push(format!("wait {}ms", delay.as_millis()));
                    self.advance(delay);
                    Event::resume()
                }
                Action::Done(result) => return (result, sent),
                Action::Park(_) => panic!("parked with no other call under way"),
                Action::FetchToken(_) => panic!("no token source here"),
                Action::ReadFile(file) => panic!("no file here: {}", file.path().display()),
                Action::RunProgram(run) => panic!("no program here: {run:?}"),
                Action::Store(op) => panic!("no store here: {op:?}"),
                Action::Spawn(work) => {
                    sent.push("spawn".to_owned());
                    self.spawned.push(work);
                    Event::resume()
                }
                // One branch after the other here; what they sent is listed as a set.
                Action::Join(join) => {
                    let (branches, joiner) = join.into_branches();
                    let mut results = Vec::new();
                    let mut side_by_side = Vec::new();
                    for mut branch in branches {
                        let (result, branch_sent) = self.drive(&mut branch, server);
                        results.push(result);
                        side_by_side.extend(branch_sent);
                    }
                    side_by_side.sort();
                    sent.push(format!("[{}]", side_by_side.join(" | ")));
                    joiner.respond(results)
                }
            };
        }
    }
}

fn json(status: u16, body: &str) -> Answer {
    Ok(http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("RequestId", "req-1")
        .body(body.as_bytes().to_vec())
        .unwrap())
}

fn signed_in(expires_in: u64) -> Answer {
    json(
        200,
        &format!(r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"eyJ0.{expires_in}"}}"#),
    )
}

/// An embed token expiring `minutes` after `now`.
fn minted(now: Now, minutes: u64, id: &str) -> Answer {
    let expiration = pbi_embed_core::EmbedToken::new(
        pbi_embed_core::EmbedTokenSecret::new(""),
        "",
        now.wall + Duration::from_secs(minutes * 60),
    )
    .expiration_rfc3339();
    json(
        200,
        &format!(r#"{{"token":"H4sI.{id}","tokenId":"{id}","expiration":"{expiration}"}}"#),
    )
}

fn error(
    status: u16,
    code: &str,
    retry_after: Option<&str>,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    let mut builder = http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("RequestId", "req-2");
    if let Some(value) = retry_after {
        builder = builder.header("Retry-After", value);
    }
    Ok(builder
        .body(format!(r#"{{"error":{{"code":"{code}","message":"{code} happened"}}}}"#).into_bytes())
        .unwrap())
}

fn is_sign_in(exchange: &Exchange) -> bool {
    exchange.operation() == "Entra_ClientCredentials"
}

fn report() -> ReportToken {
    ReportToken::view(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(REPORT).unwrap(),
    )
}

fn no_cache() -> ClientSettings {
    let mut settings = ClientSettings::default();
    settings.embed_cache = None;
    settings
}

/// A server that signs in for an hour and mints 60-minute tokens numbered by call.
fn healthy() -> impl FnMut(&Exchange, Now) -> Answer {
    let mut n = 0;
    move |exchange, now| {
        if is_sign_in(exchange) {
            signed_in(3600)
        } else {
            n += 1;
            minted(now, 60, &format!("t{n}"))
        }
    }
}

#[test]
fn the_bearer_token_is_reused_while_fresh_and_renewed_inside_the_margin() {
    let mut sim = Sim::new(no_cache());
    let request = report();
    let mut server = healthy();
    let (result, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    result.unwrap();
    assert_eq!(sent, ["Entra_ClientCredentials", "Reports_GenerateTokenInGroup"]);
    sim.advance(Duration::from_secs(54 * 60));
    let (_, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!(sent, ["Reports_GenerateTokenInGroup"], "fresh: reused");
    sim.advance(Duration::from_secs(60));
    let (_, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!(
        sent,
        ["Reports_GenerateTokenInGroup", "spawn"],
        "5 minutes before expiry: sent with the valid token, renewed behind the call"
    );
    let (outcomes, sent) = sim.run_spawned(&mut server);
    assert_eq!(
        (outcomes, sent),
        (vec![true], vec!["Entra_ClientCredentials".to_owned()])
    );
    let (_, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!(sent, ["Reports_GenerateTokenInGroup"], "the renewed one");
}

#[test]
fn no_call_waits_on_the_renewal_of_a_token_that_is_still_valid() {
    let mut sim = Sim::new(no_cache());
    let request = report();
    sim.drive(&mut Call::embed_token(&request), &mut healthy())
        .0
        .unwrap();
    sim.advance(Duration::from_secs(56 * 60));
    let (mut a, mut b) = (Call::embed_token(&request), Call::embed_token(&request));
    let mut send = |call: &mut Call<'_, _>| {
        let Action::Send(sent) = sim.step(call, Event::resume()) else {
            panic!()
        };
        assert_eq!(sent.operation(), "Reports_GenerateTokenInGroup", "no wait");
        assert_eq!(sent.request().headers()["authorization"], "Bearer eyJ0.3600");
        sent
    };
    let (to_a, to_b) = (send(&mut a), send(&mut b));
    let now = sim.now;
    let Action::Spawn(_) = sim.step(&mut a, to_a.respond(minted(now, 60, "a"))) else {
        panic!("a hands the renewal out")
    };
    assert!(matches!(sim.step(&mut a, Event::resume()), Action::Done(Ok(_))));
    assert!(
        matches!(
            sim.step(&mut b, to_b.respond(minted(now, 60, "b"))),
            Action::Done(Ok(_))
        ),
        "b does not hand it out again"
    );
}

#[test]
fn without_a_valid_token_others_park_until_the_sign_in_is_done() {
    let mut sim = Sim::new(no_cache());
    let request = report();
    let (mut a, mut b) = (Call::embed_token(&request), Call::embed_token(&request));
    let Action::Send(sign_in) = sim.step(&mut a, Event::resume()) else {
        panic!()
    };
    assert!(is_sign_in(&sign_in));
    assert!(matches!(sim.step(&mut b, Event::resume()), Action::Park(_)));
    assert_eq!(sim.session.in_flight(), 1, "the renewal");
    let Action::Send(api) = sim.step(&mut a, sign_in.respond(signed_in(3600))) else {
        panic!()
    };
    assert_eq!(api.operation(), "Reports_GenerateTokenInGroup");
    assert_eq!(sim.wakes, 1, "the parked call was woken");
    let Action::Send(api) = sim.step(&mut b, Event::resume()) else {
        panic!()
    };
    assert_eq!(
        api.operation(),
        "Reports_GenerateTokenInGroup",
        "b sends with a's token"
    );
}

#[test]
fn a_failed_renewal_keeps_the_valid_token_and_is_not_retried_at_once() {
    let mut sim = Sim::new(no_cache());
    let request = report();
    sim.drive(&mut Call::embed_token(&request), &mut healthy())
        .0
        .unwrap();
    sim.advance(Duration::from_secs(56 * 60));
    let mut failing = |exchange: &Exchange, now| {
        if is_sign_in(exchange) {
            error(503, "ServiceUnavailable", None)
        } else {
            minted(now, 60, "t")
        }
    };
    let (result, sent) = sim.drive(&mut Call::embed_token(&request), &mut failing);
    result.unwrap();
    assert_eq!(sent, ["Reports_GenerateTokenInGroup", "spawn"]);
    let (_, sent) = sim.run_spawned(&mut failing);
    assert_eq!(
        sent,
        ["Entra_ClientCredentials"],
        "no sign-in retries while valid"
    );
    let (_, sent) = sim.drive(&mut Call::embed_token(&request), &mut failing);
    assert_eq!(
        sent,
        ["Reports_GenerateTokenInGroup"],
        "no new sign-in during the cool-down"
    );
    sim.advance(Duration::from_secs(30));
    let (_, sent) = sim.drive(&mut Call::embed_token(&request), &mut healthy());
    assert_eq!(
        sent,
        ["Reports_GenerateTokenInGroup", "spawn"],
        "tried again after it"
    );
    let (outcomes, sent) = sim.run_spawned(&mut healthy());
    assert_eq!(
        (outcomes, sent),
        (vec![true], vec!["Entra_ClientCredentials".to_owned()])
    );
}

#[test]
fn without_a_token_a_failing_sign_in_is_retried_and_a_refused_one_is_not() {
    let mut sim = Sim::new(no_cache());
    let mut flaky = 0;
    let (result, sent) = sim.drive(&mut Call::embed_token(&report()), &mut |exchange, now| {
        if is_sign_in(exchange) {
            flaky += 1;
            if flaky == 1 {
                error(503, "ServiceUnavailable", None)
            } else {
                signed_in(3600)
            }
        } else {
            minted(now, 60, "t")
        }
    });
    result.unwrap();
    assert_eq!(
        sent,
        [
            "Entra_ClientCredentials",
            "wait 375ms",
            "Entra_ClientCredentials",
            "Reports_GenerateTokenInGroup"
        ]
    );

    let mut sim = Sim::new(no_cache());
    let refused = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;
    let (result, sent) = sim.drive(&mut Call::embed_token(&report()), &mut |_, _| json(401, refused));
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignIn);
    assert_eq!(err.code(), Some("invalid_client"));
    assert_eq!(err.operation(), Some("Entra_ClientCredentials"));
    assert_eq!(err.host(), Some("login.microsoftonline.com"));
    assert_eq!(sent, ["Entra_ClientCredentials"]);
    assert_eq!(sim.session.in_flight(), 0);
}

#[test]
fn an_already_expired_token_fails_the_call_and_sign_ins_are_rationed() {
    let mut sim = Sim::new(no_cache());
    let request = report();
    let mut sign_ins = 0;
    let mut expired = |exchange: &Exchange, now| {
        if is_sign_in(exchange) {
            sign_ins += 1;
            signed_in(0)
        } else {
            minted(now, 60, "t")
        }
    };
    let (result, sent) = sim.drive(&mut Call::embed_token(&request), &mut expired);
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::SignIn, "{error}");
    assert_eq!(
        error.to_string(),
        "Entra_ClientCredentials at login.microsoftonline.com: a service principal with a client secret gave a token that has already expired"
    );
    assert!(error.was_sent());
    assert_eq!(sent, ["Entra_ClientCredentials"], "no retry, no loop");
    // Calls keep coming, four a second: three sign-ins at once, then at most one a
    // second (a call waits for its turn), whatever the endpoint answers.
    let start = sim.now;
    for _ in 0..20 {
        sim.advance(Duration::from_millis(250));
        let (result, _) = sim.drive(&mut Call::embed_token(&request), &mut expired);
        assert!(result.is_err());
    }
    let seconds = sim.now.instant.duration_since(start.instant).as_secs_f64();
    assert!(
        f64::from(sign_ins) <= 3.0 + seconds,
        "{sign_ins} sign-ins in {seconds} s"
    );
    assert!(seconds >= 15.0, "the calls waited their turn: {seconds} s");
}

#[test]
fn secrets_an_upstream_echoes_never_reach_an_error() {
    // An identity endpoint that quotes the request's headers in its refusal.
    let header = "the-identity-header-secret";
    let identity =
        pbi_embed_core::ManagedIdentity::app_service("http://127.0.0.1:41741/msi/token", header).unwrap();
    let mut sim = Sim::with(no_cache(), Credential::ManagedIdentity(identity));
    let echo = |exchange: &Exchange| {
        let headers: Vec<String> = exchange
            .request()
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("")))
            .collect();
        headers.join("; ")
    };
    let (result, _) = sim.drive(&mut Call::sign_in(), &mut |exchange, _| {
        let body = serde_json::json!({"statusCode": 400, "message": echo(exchange)}).to_string();
        json(400, &body)
    });
    let error = result.unwrap_err();
    assert!(
        error.to_string().contains("x-identity-header"),
        "the echo is quoted: {error}"
    );
    assert!(!error.to_string().contains(header), "{error}");
    assert!(!format!("{error:?}").contains(header), "{error:?}");
    // A client secret in Entra's echo of the form, as sent or form-encoded.
    let mut sim = Sim::new(no_cache());
    let (result, _) = sim.drive(&mut Call::sign_in(), &mut |exchange, _| {
        let form = String::from_utf8(exchange.request().body().clone()).unwrap();
        let body = serde_json::json!({"error": "invalid_request", "error_description": format!("bad form: {form}; s3cr3t")}).to_string();
        json(400, &body)
    });
    let error = result.unwrap_err().to_string();
    assert!(error.contains("bad form") && !error.contains("s3cr3t"), "{error}");
    // Power BI quoting the bearer token it was sent.
    let mut sim = Sim::new(no_cache());
    let (result, _) = sim.drive(&mut Call::embed_token(&report()), &mut |exchange, _| {
        if is_sign_in(exchange) {
            return signed_in(3600);
        }
        let auth = exchange.request().headers()["authorization"]
            .to_str()
            .unwrap()
            .to_owned();
        json(
            400,
            &format!(r#"{{"error":{{"code":"InvalidRequest","message":"you sent {auth}"}}}}"#),
        )
    });
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("you sent Bearer") && !error.contains("eyJ0.3600"),
        "{error}"
    );
}

#[test]
fn token_expired_signs_in_again_once() {
    let mut sim = Sim::new(no_cache());
    let mut api_calls = 0;
    let (result, sent) = sim.drive(&mut Call::embed_token(&report()), &mut |exchange, now| {
        if is_sign_in(exchange) {
            return signed_in(3600);
        }
        api_calls += 1;
        if api_calls == 1 {
            error(403, "TokenExpired", None)
        } else {
            minted(now, 60, "t")
        }
    });
    result.unwrap();
    assert_eq!(
        sent,
        [
            "Entra_ClientCredentials",
            "Reports_GenerateTokenInGroup",
            "Entra_ClientCredentials",
            "Reports_GenerateTokenInGroup"
        ]
    );
    // Twice in a row: the second is the caller's.
    let mut sim = Sim::new(no_cache());
    let (result, sent) = sim.drive(&mut Call::embed_token(&report()), &mut |exchange, _| {
        if is_sign_in(exchange) {
            signed_in(3600)
        } else {
            error(403, "TokenExpired", None)
        }
    });
    assert_eq!(result.unwrap_err().kind(), ErrorKind::TokenExpired);
    assert_eq!(sent.len(), 4);
    // A fixed bearer token is never renewed.
    let mut sim = Sim::with(no_cache(), Credential::BearerToken(AccessToken::new("fixed")));
    let (result, sent) = sim.drive(&mut Call::embed_token(&report()), &mut |_, _| {
        error(403, "TokenExpired", None)
    });
    assert_eq!(result.unwrap_err().kind(), ErrorKind::TokenExpired);
    assert_eq!(sent, ["Reports_GenerateTokenInGroup"]);
}

#[test]
fn retries_back_off_and_honour_retry_after_in_both_forms() {
    let mut settings = no_cache();
    settings.retry = RetryPolicy::default().max_retries(4);
    let mut sim = Sim::new(settings);
    sim.drive(&mut Call::sign_in(), &mut healthy()).0.unwrap();
    let date = httpdate::fmt_http_date(sim.now.wall + Duration::from_secs(12));
    let mut answers = vec![
        error(503, "ServiceUnavailable", None),
        error(503, "ServiceUnavailable", None),
        error(429, "TooManyRequests", Some("7")),
        error(429, "TooManyRequests", Some(&date)),
    ]
    .into_iter();
    let (result, sent) = sim.drive(&mut Call::embed_token(&report()), &mut |_, now| {
        answers.next().unwrap_or_else(|| minted(now, 60, "t"))
    });
    result.unwrap();
    // Backoff 500 ms then 1 s, with the jitter at its middle; then the server's waits. The
    // date named 12 s after the start, read 8.125 s in, leaves 3.875 s.
    let waits: Vec<&String> = sent.iter().filter(|s| s.starts_with("wait")).collect();
    assert_eq!(waits, ["wait 375ms", "wait 750ms", "wait 7000ms", "wait 3875ms"]);
}

#[test]
fn no_wait_and_no_attempt_reaches_past_the_deadline() {
    let mut settings = no_cache();
    settings.deadline = Duration::from_secs(10);
    settings.timeout = Duration::from_secs(30);
    let mut sim = Sim::new(settings);
    let request = report();
    let mut call = Call::embed_token(&request);
    let Action::Send(sign_in) = sim.step(&mut call, Event::resume()) else {
        panic!()
    };
    assert_eq!(
        sign_in.timeout(),
        Duration::from_secs(10),
        "the attempt ends with the deadline"
    );
    sim.advance(Duration::from_secs(4));
    let Action::Send(api) = sim.step(&mut call, sign_in.respond(signed_in(3600))) else {
        panic!()
    };
    assert_eq!(api.timeout(), Duration::from_secs(6));
    sim.advance(Duration::from_secs(1));
    // A 429 asking for 20 s with 5 s left: give up now rather than wait past it.
    let Action::Done(result) = sim.step(&mut call, api.respond(error(429, "TooManyRequests", Some("20"))))
    else {
        panic!()
    };
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Throttled);
}

#[test]
fn a_call_parked_past_its_deadline_ends_with_a_time_out() {
    let mut settings = no_cache();
    settings.deadline = Duration::from_secs(3);
    let mut sim = Sim::new(settings);
    let request = report();
    let (mut a, mut b) = (Call::embed_token(&request), Call::embed_token(&request));
    let _ = sim.step(&mut a, Event::resume());
    let Action::Park(most) = sim.step(&mut b, Event::resume()) else {
        panic!()
    };
    // Short, so a driver that only sleeps it looks again soon (the deadline is 3 s).
    assert_eq!(most, pbi_embed_core::driver::PARK_POLL);
    let Action::Park(_) = sim.step(&mut b, Event::resume()) else {
        panic!("still parked: the sign-in is under way")
    };
    sim.advance(Duration::from_secs(3));
    let Action::Done(result) = sim.step(&mut b, Event::resume()) else {
        panic!()
    };
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.to_string(), "the call's deadline of 3 s passed");
}

#[test]
fn transport_failures_are_retried_and_name_the_step_and_host() {
    let mut settings = no_cache();
    settings.retry = RetryPolicy::default().max_retries(1);
    let mut sim = Sim::new(settings);
    sim.drive(&mut Call::sign_in(), &mut healthy()).0.unwrap();
    let (result, sent) = sim.drive(&mut Call::embed_token(&report()), &mut |_, _| {
        Err(TransportError::new(
            TransportKind::Connect,
            std::io::Error::other("connection refused"),
        ))
    });
    let err = result.unwrap_err();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(err.kind(), ErrorKind::Network);
    assert_eq!(
        err.to_string(),
        "Reports_GenerateTokenInGroup at api.powerbi.com: could not connect"
    );
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "connection refused"
    );
}

#[test]
fn identical_requests_share_one_call_and_then_the_cache() {
    let mut sim = Sim::new(ClientSettings::default());
    let request = report();
    sim.drive(&mut Call::sign_in(), &mut healthy()).0.unwrap();
    let (mut a, mut b) = (Call::embed_token(&request), Call::embed_token(&request));
    let Action::Send(sent) = sim.step(&mut a, Event::resume()) else {
        panic!()
    };
    assert!(
        matches!(sim.step(&mut b, Event::resume()), Action::Park(_)),
        "b waits for a's call"
    );
    let Action::Done(Ok(token)) = sim.step(&mut a, sent.respond(minted(sim.now, 60, "shared"))) else {
        panic!()
    };
    assert_eq!(sim.wakes, 1);
    let Action::Done(Ok(same)) = sim.step(&mut b, Event::resume()) else {
        panic!("b should be served from the cache")
    };
    assert_eq!(same.token_id, token.token_id);
    // Until 10 minutes before expiry.
    sim.advance(Duration::from_secs(49 * 60));
    let Action::Done(Ok(_)) = sim.step(&mut Call::embed_token(&request), Event::resume()) else {
        panic!()
    };
    sim.advance(Duration::from_secs(60));
    let Action::Send(_) = sim.step(&mut Call::embed_token(&request), Event::resume()) else {
        panic!("inside the margin")
    };
    // Another identity is another request.
    let other = report().identity(
        EffectiveIdentity::new("u")
            .role("r")
            .dataset(DatasetId::parse(DATASET).unwrap()),
    );
    let Action::Send(_) = sim.step(&mut Call::embed_token(&other), Event::resume()) else {
        panic!()
    };
}

#[test]
fn a_parked_call_served_at_once_is_counted_out_once() {
    let mut sim = Sim::new(ClientSettings::default());
    let request = report();
    sim.drive(&mut Call::sign_in(), &mut healthy()).0.unwrap();
    let (mut a, mut b, mut c) = (
        Call::embed_token(&request),
        Call::embed_token(&request),
        Call::embed_token(&request),
    );
    let Action::Send(sent) = sim.step(&mut a, Event::resume()) else {
        panic!()
    };
    assert!(matches!(sim.step(&mut b, Event::resume()), Action::Park(_)));
    assert!(matches!(sim.step(&mut c, Event::resume()), Action::Park(_)));
    let Action::Done(Ok(_)) = sim.step(&mut a, sent.respond(minted(sim.now, 60, "a"))) else {
        panic!()
    };
    // B is served from the cache at once; C has not stepped yet, and is still parked.
    let Action::Done(Ok(_)) = sim.step(&mut b, Event::resume()) else {
        panic!()
    };
    let wakes = sim.wakes;
    // Another fetch ends: C, still parked, must be woken.
    let other = report().identity(
        EffectiveIdentity::new("u")
            .role("r")
            .dataset(DatasetId::parse(DATASET).unwrap()),
    );
    let mut d = Call::embed_token(&other);
    let Action::Send(sent) = sim.step(&mut d, Event::resume()) else {
        panic!()
    };
    let Action::Done(Ok(_)) = sim.step(&mut d, sent.respond(minted(sim.now, 60, "d"))) else {
        panic!()
    };
    assert_eq!(sim.wakes, wakes + 1, "the parked call is woken");
    let Action::Done(Ok(_)) = sim.step(&mut c, Event::resume()) else {
        panic!()
    };
}

#[test]
fn tokens_minted_inside_the_margin_are_not_cached() {
    let mut sim = Sim::new(ClientSettings::default());
    let request = report();
    let mut server = |exchange: &Exchange, now| {
        if is_sign_in(exchange) {
            signed_in(3600)
        } else {
            minted(now, 5, "short")
        }
    };
    sim.drive(&mut Call::embed_token(&request), &mut server)
        .0
        .unwrap();
    let (_, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!(sent, ["Reports_GenerateTokenInGroup"]);
}

#[test]
fn an_abandoned_call_hands_its_fetch_to_the_next() {
    let mut sim = Sim::new(ClientSettings::default());
    let request = report();
    sim.drive(&mut Call::sign_in(), &mut healthy()).0.unwrap();
    let (mut a, mut b) = (Call::embed_token(&request), Call::embed_token(&request));
    let Action::Send(_) = sim.step(&mut a, Event::resume()) else {
        panic!()
    };
    assert!(matches!(sim.step(&mut b, Event::resume()), Action::Park(_)));
    let mut woken = false;
    sim.session.abandon(&mut a, || woken = true);
    assert!(woken, "the parked call is woken");
    assert!(a.is_finished());
    let Action::Send(sent) = sim.step(&mut b, Event::resume()) else {
        panic!("b leads now")
    };
    let Action::Done(Ok(_)) = sim.step(&mut b, sent.respond(minted(sim.now, 60, "b"))) else {
        panic!()
    };
    assert_eq!(sim.session.in_flight(), 0);
    // An abandoned sign-in is handed over too.
    let mut sim = Sim::new(no_cache());
    let (mut a, mut b) = (Call::embed_token(&request), Call::embed_token(&request));
    let _ = sim.step(&mut a, Event::resume());
    assert!(matches!(sim.step(&mut b, Event::resume()), Action::Park(_)));
    sim.session.abandon(&mut a, || {});
    let Action::Send(sign_in) = sim.step(&mut b, Event::resume()) else {
        panic!()
    };
    assert!(is_sign_in(&sign_in));
}

#[test]
fn an_embed_configuration_reads_the_flags_beside_the_token_and_they_explain_a_refusal() {
    let mut sim = Sim::new(ClientSettings::default());
    let request = EmbedRequest::report(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(REPORT).unwrap(),
    )
    .identity(EffectiveIdentity::new("alice").role("Sales"));
    let report_json = format!(
        r#"{{"id":"{REPORT}","name":"Sales","datasetId":"{DATASET}","embedUrl":"https://app.powerbi.com/reportEmbed?reportId={REPORT}"}}"#
    );
    let dataset_answer = std::cell::Cell::new(404);
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        "Entra_ClientCredentials" => signed_in(3600),
        "Reports_GetReportInGroup" => json(200, &report_json),
        "Datasets_GetDatasetInGroup" if dataset_answer.get() == 404 => {
            error(404, "PowerBIEntityNotFound", None)
        }
        "Datasets_GetDatasetInGroup" => json(
            200,
            &format!(
                r#"{{"id":"{DATASET}","name":"Sales","isEffectiveIdentityRequired":true,"isEffectiveIdentityRolesRequired":true}}"#
            ),
        ),
        _ => {
            let body = std::str::from_utf8(exchange.request().body()).unwrap().to_owned();
            assert!(
                body.contains(DATASET),
                "the identity got the report's dataset: {body}"
            );
            // As Power BI: an identity without the roles the dataset requires is refused.
            if body.contains("\"roles\"") {
                minted(now, 60, "config")
            } else {
                error(400, "InvalidRequest", None)
            }
        }
    };
    let (config, sent) = sim.drive(&mut Call::embed_config(&request), &mut server);
    let config = config.unwrap();
    assert_eq!(
        config.embed_url,
        format!("https://app.powerbi.com/reportEmbed?reportId={REPORT}")
    );
    assert_eq!(
        sent,
        [
            "Entra_ClientCredentials",
            "Reports_GetReportInGroup",
            "[Datasets_GetDatasetInGroup | EmbedToken_GenerateToken]"
        ],
        "three round trips; a 404 for the flags read beside the token is not retried"
    );
    let (config, sent) = sim.drive(&mut Call::embed_config(&request), &mut server);
    assert!(sent.is_empty(), "hot: the cached token, nothing else: {sent:?}");
    assert_eq!(
        config.unwrap().embed_url,
        format!("https://app.powerbi.com/reportEmbed?reportId={REPORT}")
    );

    // A refusal, explained by the flags read beside the token.
    dataset_answer.set(200);
    sim.advance(Duration::from_secs(10 * 60));
    sim.session.clear_caches();
    let no_roles = EmbedRequest::report(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(REPORT).unwrap(),
    )
    .identity(EffectiveIdentity::new("alice"));
    let (result, sent) = sim.drive(&mut Call::embed_config(&no_roles), &mut server);
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RlsIdentity, "{error}");
    assert!(
        error.to_string().contains("requires roles"),
        "the pre-flight's words: {error}"
    );
    assert_eq!(
        sent,
        [
            "Reports_GetReportInGroup",
            "[Datasets_GetDatasetInGroup | EmbedToken_GenerateToken]"
        ]
    );
    // With the flags cached, the pre-flight refuses before anything is minted.
    let (result, sent) = sim.drive(&mut Call::embed_config(&no_roles), &mut server);
    assert_eq!(result.unwrap_err().kind(), ErrorKind::RlsIdentity);
    assert!(sent.is_empty(), "refused from the cache: {sent:?}");
}

#[test]
fn the_metadata_cache_is_switched_off_as_the_token_cache_is() {
    let mut settings = no_cache();
    settings.metadata_cache = None;
    let mut sim = Sim::new(settings);
    let request = EmbedRequest::report(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(REPORT).unwrap(),
    );
    let report_json = format!(
        r#"{{"id":"{REPORT}","name":"Sales","datasetId":"{DATASET}","embedUrl":"https://app.powerbi.com/reportEmbed"}}"#
    );
    let dataset_json = format!(
        r#"{{"id":"{DATASET}","name":"Sales","isEffectiveIdentityRequired":false,"isEffectiveIdentityRolesRequired":false}}"#
    );
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        "Entra_ClientCredentials" => signed_in(3600),
        "Reports_GetReportInGroup" => json(200, &report_json),
        "Datasets_GetDatasetInGroup" => json(200, &dataset_json),
        _ => minted(now, 60, "t"),
    };
    sim.drive(&mut Call::embed_config(&request), &mut server)
        .0
        .unwrap();
    let (_, sent) = sim.drive(&mut Call::embed_config(&request), &mut server);
    assert_eq!(
        sent,
        [
            "Reports_GetReportInGroup",
            "[Datasets_GetDatasetInGroup | EmbedToken_GenerateToken]"
        ],
        "nothing cached"
    );
}

#[test]
fn invalid_input_ends_the_call_before_anything_is_sent() {
    let mut sim = Sim::new(ClientSettings::default());
    let two = report()
        .identity(EffectiveIdentity::new("a").dataset(DatasetId::parse(DATASET).unwrap()))
        .identity(EffectiveIdentity::new("b").dataset(DatasetId::parse(DATASET).unwrap()));
    let Action::Done(Err(err)) = sim.step(&mut Call::embed_token(&two), Event::resume()) else {
        panic!()
    };
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.was_sent());
    let huge = report().identity(
        EffectiveIdentity::new("u".repeat(200))
            .custom_data("x".repeat(1_100_000))
            .dataset(DatasetId::parse(DATASET).unwrap()),
    );
    let Action::Done(Err(err)) = sim.step(&mut Call::embed_token(&huge), Event::resume()) else {
        panic!()
    };
    assert!(
        err.to_string()
            .contains("Power BI refuses request bodies over 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn a_driver_that_breaks_the_protocol_gets_an_error_not_a_panic() {
    let mut sim = Sim::new(ClientSettings::default());
    let request = report();
    // The answer to another call's request.
    let mut other = Call::sign_in();
    let Action::Send(foreign) = sim.step(&mut other, Event::resume()) else {
        panic!()
    };
    let mut call = Call::embed_token(&request);
    let Action::Done(Err(err)) = sim.step(&mut call, foreign.respond(signed_in(1))) else {
        panic!()
    };
    assert!(
        err.to_string()
            .contains("drivers hand back exactly what each action asks for"),
        "{err}"
    );
    let Action::Done(Err(_)) = sim.step(&mut call, Event::resume()) else {
        panic!("an ended call stays ended")
    };
}

#[test]
fn a_missing_answer_is_named_with_whether_anything_was_sent() {
    let mut sim = Sim::new(ClientSettings::default());
    let request = report();
    // Stepped on without the sign-in's response, after the sign-in was sent.
    let mut call = Call::embed_token(&request);
    let Action::Send(sign_in) = sim.step(&mut call, Event::resume()) else {
        panic!()
    };
    let Action::Done(Err(err)) = sim.step(&mut call, Event::resume()) else {
        panic!()
    };
    assert_eq!(err.kind(), ErrorKind::Driver);
    assert!(err.was_sent(), "the sign-in went out");
    assert!(
        err.to_string().contains("without the answer it was asked for")
            && err.to_string().contains("requests were sent before"),
        "{err}"
    );
    // The late answer to an ended call is refused too, and what it led is free again.
    let Action::Done(Err(_)) = sim.step(&mut call, sign_in.respond(signed_in(3600))) else {
        panic!()
    };
    assert_eq!(sim.session.in_flight(), 0);
    // (A stale answer cannot be made: an answer consumes what it answers.)
}

#[test]
fn a_token_source_is_asked_through_the_driver() {
    let mut sim = Sim::with(no_cache(), Credential::TokenSource);
    let request = report();
    let mut call = Call::embed_token(&request);
    let Action::FetchToken(fetch) = sim.step(&mut call, Event::resume()) else {
        panic!()
    };
    let token = BearerToken::new(
        AccessToken::new("from-source"),
        sim.now.wall + Duration::from_secs(3600),
    );
    let Action::Send(api) = sim.step(&mut call, fetch.respond(Ok(token))) else {
        panic!()
    };
    assert_eq!(api.request().headers()["authorization"], "Bearer from-source");
    let mut failing = Sim::with(no_cache(), Credential::TokenSource);
    let mut call = Call::embed_token(&request);
    let Action::FetchToken(fetch) = failing.step(&mut call, Event::resume()) else {
        panic!()
    };
    let Action::Done(Err(err)) = failing.step(&mut call, fetch.respond(Err("vault unreachable".into())))
    else {
        panic!()
    };
    assert_eq!(err.kind(), ErrorKind::TokenSource);
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "vault unreachable"
    );
}

#[test]
fn a_dashboard_identity_binds_to_its_tiles_rls_datasets_or_is_refused_before_minting() {
    let mut sim = Sim::new(no_cache());
    let request = dashboard_request();
    let secured = std::cell::Cell::new(true);
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        // The RLS dataset, once made plain.
        "Datasets_GetDatasetInGroup" if !secured.get() => {
            let id = exchange
                .request()
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            json(
                200,
                &format!(
                    r#"{{"id":"{id}","name":"d","isEffectiveIdentityRequired":false,"isEffectiveIdentityRolesRequired":false}}"#
                ),
            )
        }
        "Dashboards_GenerateTokenInGroup" => {
            let body = std::str::from_utf8(exchange.request().body()).unwrap().to_owned();
            assert!(
                body.contains(DATASET) && !body.contains(PLAIN),
                "bound to the RLS dataset only: {body}"
            );
            dashboard_server(exchange, now)
        }
        _ => dashboard_server(exchange, now),
    };
    let (config, sent) = sim.drive(&mut Call::embed_config(&request), &mut server);
    assert_eq!(config.unwrap().id, DASHBOARD);
    assert_eq!(
        sent,
        [
            // The sign-in, then the dashboard and its tiles side by side.
            "[Dashboards_GetDashboardInGroup | Dashboards_GetTilesInGroup | Entra_ClientCredentials]",
            "[Datasets_GetDatasetInGroup | Datasets_GetDatasetInGroup]",
            "Dashboards_GenerateTokenInGroup"
        ],
        "four round trips"
    );
    secured.set(false);
    sim.session.clear_caches();
    let (result, sent) = sim.drive(&mut Call::embed_config(&request), &mut server);
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RlsIdentity, "{error}");
    assert!(error.to_string().contains("dashboard Exec"), "{error}");
    assert!(
        !sent.iter().any(|s| s.contains("GenerateToken")),
        "no token minted: {sent:?}"
    );
}

#[test]
fn a_dashboard_without_an_identity_over_an_rls_dataset_is_refused_before_minting() {
    const DASHBOARD: &str = "69ffaa6c-b36d-4d01-96f5-1ed67c64d4af";
    let mut sim = Sim::new(no_cache());
    let request = EmbedRequest::dashboard(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        pbi_embed_core::DashboardId::parse(DASHBOARD).unwrap(),
    );
    let secured = std::cell::Cell::new(true);
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        "Entra_ClientCredentials" => signed_in(3600),
        "Dashboards_GetDashboardInGroup" => json(
            200,
            &format!(
                r#"{{"id":"{DASHBOARD}","displayName":"Exec","embedUrl":"https://app.powerbi.com/dashboardEmbed"}}"#
            ),
        ),
        "Dashboards_GetTilesInGroup" => json(
            200,
            &format!(
                r#"{{"value":[{{"id":"312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b","embedUrl":"https://app.powerbi.com/embed","datasetId":"{DATASET}"}}]}}"#
            ),
        ),
        "Datasets_GetDatasetInGroup" => json(
            200,
            &format!(
                r#"{{"id":"{DATASET}","name":"Sales","isEffectiveIdentityRequired":{0},"isEffectiveIdentityRolesRequired":{0}}}"#,
                secured.get()
            ),
        ),
        _ => minted(now, 60, "dashboard"),
    };
    let (result, sent) = sim.drive(&mut Call::embed_config(&request), &mut server);
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RlsIdentity, "{error}");
    assert!(
        error.to_string().contains("Sales") && error.to_string().contains("requires an effective identity"),
        "{error}"
    );
    assert!(!sent.iter().any(|s| s.contains("GenerateToken")), "{sent:?}");
    // Without RLS behind its tiles, it is minted.
    secured.set(false);
    sim.session.clear_caches();
    let (result, _) = sim.drive(&mut Call::embed_config(&request), &mut server);
    assert_eq!(result.unwrap().id, DASHBOARD);
}

#[test]
fn qna_on_a_dataset_without_a_qna_url_is_refused_before_minting() {
    let mut sim = Sim::new(no_cache());
    let request = EmbedRequest::qna(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        DatasetId::parse(DATASET).unwrap(),
    );
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        "Entra_ClientCredentials" => signed_in(3600),
        "Datasets_GetDatasetInGroup" => json(
            200,
            &format!(
                r#"{{"id":"{DATASET}","name":"d","isEffectiveIdentityRequired":false,"isEffectiveIdentityRolesRequired":false}}"#
            ),
        ),
        _ => minted(now, 60, "qna"),
    };
    let (result, sent) = sim.drive(&mut Call::embed_config(&request), &mut server);
    let error = result.unwrap_err();
    assert!(error.to_string().contains("qnaEmbedURL"), "{error}");
    assert_eq!(sent, ["Entra_ClientCredentials", "Datasets_GetDatasetInGroup"]);
}

#[test]
fn a_workload_identity_reads_its_token_file_at_every_sign_in() {
    let credential = Credential::ServicePrincipal(ClientCredentials::with_federated_token_file(
        TenantId::parse("contoso.onmicrosoft.com").unwrap(),
        ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
        "/var/run/secrets/azure/tokens/azure-identity-token".into(),
    ));
    let mut sim = Sim::with(ClientSettings::default(), credential);
    let file_contents = std::cell::RefCell::new(String::from("eyJ.first.token\n"));
    let sign_in =
        |sim: &mut Sim, answer: Answer| -> (Vec<String>, Result<BearerToken, pbi_embed_core::Error>) {
            let mut call = Call::sign_in();
            let mut event = Event::resume();
            let mut sent_assertions = Vec::new();
            let mut answer = Some(answer);
            loop {
                event = match sim.step(&mut call, event) {
                    Action::ReadFile(file) => {
                        assert_eq!(
                            file.path(),
                            std::path::Path::new("/var/run/secrets/azure/tokens/azure-identity-token")
                        );
                        assert!(file.max_bytes() > 1024, "room for a real token");
                        file.respond(Ok(file_contents.borrow().as_bytes().to_vec()))
                    }
                    Action::Send(exchange) => {
                        let body = exchange.request().body().clone();
                        let form: std::collections::HashMap<String, String> =
                            url::form_urlencoded::parse(&body).into_owned().collect();
                        assert_eq!(
                            form["client_assertion_type"],
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                        );
                        assert!(!form.contains_key("client_secret"));
                        sent_assertions.push(form["client_assertion"].clone());
                        exchange.respond(answer.take().expect("one exchange per sign-in"))
                    }
                    Action::Done(result) => return (sent_assertions, result),
                    other => panic!("unexpected {other:?}"),
                };
            }
        };
    let (sent, token) = sign_in(&mut sim, signed_in(60));
    // Used as the file holds it (not trimmed), as Azure's libraries do.
    assert_eq!(sent, ["eyJ.first.token\n"]);
    token.unwrap();
    // The 60 s token is inside the renewal margin, so it is renewed past half its life
    // (not at every call): that sign-in reads the file again.
    sim.advance(Duration::from_secs(31));
    *file_contents.borrow_mut() = "eyJ.rotated.token".to_owned();
    let (sent, _) = sign_in(&mut sim, signed_in(3600));
    assert_eq!(sent, ["eyJ.rotated.token"]);
    // An empty or unreadable file is the call's error, not a panic.
    sim.session.clear_caches();
    *file_contents.borrow_mut() = String::new();
    let mut call = Call::sign_in();
    let mut event = Event::resume();
    let mut sim2 = Sim::with(
        ClientSettings::default(),
        Credential::ServicePrincipal(ClientCredentials::with_federated_token_file(
            TenantId::parse("contoso.onmicrosoft.com").unwrap(),
            ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            "/missing".into(),
        )),
    );
    let error = loop {
        event = match sim2.step(&mut call, event) {
            Action::ReadFile(file) => file.respond(Err("No such file or directory".into())),
            Action::Done(result) => break result.unwrap_err(),
            Action::Wait(delay) => {
                sim2.advance(delay);
                Event::resume()
            }
            other => panic!("unexpected {other:?}"),
        };
    };
    assert_eq!(error.kind(), ErrorKind::TokenSource);
    let source = std::error::Error::source(&error)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        source.contains("federated token file /missing could not be read"),
        "{source}"
    );
}

#[test]
fn the_azure_cli_runs_once_per_token_and_its_refusal_is_not_retried() {
    let cli = pbi_embed_core::AzureCli::new().tenant(TenantId::parse("contoso.onmicrosoft.com").unwrap());
    let mut sim = Sim::with(ClientSettings::default(), Credential::AzureCli(cli));
    let runs = std::cell::Cell::new(0);
    let answer_with = |sim: &mut Sim, stdout: String, status: i32| {
        let request = report();
        let mut call = Call::embed_token(&request);
        let mut event = Event::resume();
        let mut sent = Vec::new();
        loop {
            event = match sim.step(&mut call, event) {
                Action::RunProgram(run) => {
                    runs.set(runs.get() + 1);
                    assert_eq!(run.program(), std::path::Path::new("az"));
                    assert_eq!(
                        run.args()[4..],
                        [
                            "--resource",
                            "https://analysis.windows.net/powerbi/api",
                            "--tenant",
                            "contoso.onmicrosoft.com"
                        ]
                    );
                    let stderr = if status == 0 {
                        ""
                    } else {
                        "ERROR: Please run 'az login' to setup account."
                    };
                    run.respond(Ok(pbi_embed_core::driver::ProgramOutput::new(
                        Some(status),
                        stdout.clone().into_bytes(),
                        stderr.into(),
                    )))
                }
                Action::Send(exchange) => {
                    let auth = exchange.request().headers()["authorization"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    sent.push(auth);
                    exchange.respond(minted(sim.now, 3600, "embed"))
                }
                Action::Done(result) => return (result.map(drop), sent),
                other => panic!("unexpected {other:?}"),
            };
        }
    };
    let epoch = |now: Now| now.wall.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let stdout = format!(
        r#"{{"accessToken":"eyJ.cli","expires_on":{}}}"#,
        epoch(sim.now) + 3600
    );
    let (result, sent) = answer_with(&mut sim, stdout.clone(), 0);
    result.unwrap();
    assert_eq!(sent, ["Bearer eyJ.cli"]);
    sim.session.clear_caches();
    let (result, sent) = answer_with(&mut sim, stdout, 0);
    result.unwrap();
    assert_eq!(sent, ["Bearer eyJ.cli"]);
    assert_eq!(runs.get(), 1, "the CLI's token is held until its renewal margin");
    // After expiry the CLI runs again; signed out, the call fails at once (no retry).
    sim.advance(Duration::from_secs(3600));
    sim.session.clear_caches();
    let (result, sent) = answer_with(&mut sim, String::new(), 1);
    let error = result.unwrap_err();
    assert_eq!(runs.get(), 2);
    assert!(sent.is_empty(), "nothing reached Power BI");
    assert_eq!(error.kind(), ErrorKind::SignIn);
    assert!(error.to_string().contains("is not signed in"), "{error}");
    assert!(error.hint().unwrap().contains("az login"));
}

#[test]
fn refresh_ahead_serves_at_once_and_mints_the_next_token_in_the_background() {
    let mut settings = ClientSettings::default();
    settings.refresh_ahead = Some(Duration::from_secs(15 * 60));
    let mut sim = Sim::new(settings);
    let mut server = healthy();
    let request = report();
    let token_id =
        |result: Result<pbi_embed_core::EmbedToken, pbi_embed_core::Error>| result.unwrap().token_id;
    let (result, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!(token_id(result), "t1");
    assert_eq!(sent, ["Entra_ClientCredentials", "Reports_GenerateTokenInGroup"]);
    // 44 minutes on, 16 left: not due yet.
    sim.advance(Duration::from_secs(44 * 60));
    let (result, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!((token_id(result).as_str(), sent.len()), ("t1", 0));
    // 47 minutes on, 13 left: inside the window, outside the margin. Served at once; one
    // refresh handed out, however many calls come meanwhile.
    sim.advance(Duration::from_secs(3 * 60));
    for _ in 0..3 {
        let (result, _) = sim.drive(&mut Call::embed_token(&request), &mut server);
        assert_eq!(token_id(result), "t1", "served from the cache, no wait");
    }
    assert_eq!(sim.spawned.len(), 1, "one refresh for the item");
    let work = sim.spawned.pop().unwrap();
    let (result, sent) = sim.drive(&mut Call::refresh(work), &mut server);
    result.unwrap();
    // Past the cache; the access token (13 minutes left) is renewed first, since Power BI
    // caps the embed token's expiry at it.
    assert_eq!(sent, ["Entra_ClientCredentials", "Reports_GenerateTokenInGroup"]);
    let (result, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!(token_id(result), "t2", "the refreshed token is served");
    assert!(sent.is_empty() && sim.spawned.is_empty());

    // A refresh that fails leaves the old token served; the next call due hands out another.
    sim.advance(Duration::from_secs(47 * 60));
    let (result, _) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!(token_id(result), "t2");
    let work = sim.spawned.pop().unwrap();
    let mut failing = |exchange: &Exchange, now: Now| match is_sign_in(exchange) {
        true => signed_in(3600),
        false => {
            let _ = now;
            error(403, "PowerBINotAuthorizedException", None)
        }
    };
    let (result, _) = sim.drive(&mut Call::refresh(work), &mut failing);
    assert!(result.is_err());
    let (result, _) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert_eq!(token_id(result), "t2", "still served until the margin");
    assert_eq!(sim.spawned.len(), 1, "and refreshed again");
    // Inside the margin, a caller waits for a new token, as without refresh-ahead.
    sim.spawned.clear();
    sim.advance(Duration::from_secs(4 * 60));
    let (result, sent) = sim.drive(&mut Call::embed_token(&request), &mut server);
    assert!(token_id(result).starts_with('t'));
    assert!(
        sent.contains(&"Reports_GenerateTokenInGroup".to_owned()),
        "{sent:?}"
    );
}

#[test]
fn a_refresh_window_cannot_defeat_the_caches() {
    // Longer than half an embed token's hour: refused, saying why.
    let mut settings = ClientSettings::default();
    settings.refresh_ahead = Some(Duration::from_secs(3600));
    let error = Session::new(settings, Credential::BearerToken(AccessToken::new("t"))).unwrap_err();
    assert!(
        error.to_string().contains("refreshAhead") && error.to_string().contains("30 minutes"),
        "{error}"
    );
    // Tokens asked to live ten minutes, a fifteen-minute window: a token is due no
    // earlier than halfway through the nine minutes it is served, so not at birth.
    let mut settings = ClientSettings::default();
    settings.embed_cache = Some((16, Duration::from_secs(60)));
    settings.refresh_ahead = Some(Duration::from_secs(15 * 60));
    let mut sim = Sim::new(settings);
    let request = report();
    let minted_count = std::cell::Cell::new(0);
    let mut server = |exchange: &Exchange, now| {
        if is_sign_in(exchange) {
            signed_in(3600)
        } else {
            minted_count.set(minted_count.get() + 1);
            minted(now, 10, "short")
        }
    };
    for _ in 0..30 {
        let (result, _) = sim.drive(&mut Call::embed_token(&request), &mut server);
        result.unwrap();
    }
    assert_eq!(minted_count.get(), 1, "one GenerateToken");
    assert!(sim.spawned.is_empty(), "and no refresh at once");
    // Halfway through, it is refreshed ahead.
    sim.advance(Duration::from_secs(270));
    sim.drive(&mut Call::embed_token(&request), &mut server)
        .0
        .unwrap();
    assert_eq!(sim.spawned.len(), 1);
}

#[test]
fn refresh_ahead_must_outlast_the_margin() {
    let mut settings = ClientSettings::default();
    settings.refresh_ahead = Some(Duration::from_secs(5 * 60));
    let error = Session::new(settings, Credential::BearerToken(AccessToken::new("t"))).unwrap_err();
    assert!(error.to_string().contains("refreshAhead"), "{error}");
}

/// A store in memory, shared by simulated replicas; `down` makes every operation fail.
#[derive(Debug, Default)]
struct MemStore {
    records: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    locks: std::sync::Mutex<std::collections::HashSet<String>>,
    down: std::sync::atomic::AtomicBool,
    ops: std::sync::Mutex<Vec<String>>,
}

impl MemStore {
    fn ready<T: Send + 'static>(&self, op: &str, value: T) -> pbi_embed_core::driver::StoreFuture<'_, T> {
        self.ops.lock().unwrap().push(op.to_owned());
        let down = self.down.load(std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            if down {
                Err("connection refused".into())
            } else {
                Ok(value)
            }
        })
    }
}

impl pbi_embed_core::driver::SharedStore for MemStore {
    fn get<'a>(&'a self, key: &'a str) -> pbi_embed_core::driver::StoreFuture<'a, Option<Vec<u8>>> {
        let record = self.records.lock().unwrap().get(key).cloned();
        self.ready("get", record)
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        record: &'a [u8],
        _: Duration,
    ) -> pbi_embed_core::driver::StoreFuture<'a, ()> {
        if !self.down.load(std::sync::atomic::Ordering::Relaxed) {
            self.records
                .lock()
                .unwrap()
                .insert(key.to_owned(), record.to_vec());
        }
        self.ready("put", ())
    }
    fn lock<'a>(&'a self, key: &'a str, _: Duration) -> pbi_embed_core::driver::StoreFuture<'a, bool> {
        let taken = !self.down.load(std::sync::atomic::Ordering::Relaxed)
            && self.locks.lock().unwrap().insert(key.to_owned());
        self.ready("lock", taken)
    }
    fn unlock<'a>(&'a self, key: &'a str) -> pbi_embed_core::driver::StoreFuture<'a, ()> {
        self.locks.lock().unwrap().remove(key);
        self.ready("unlock", ())
    }
}

/// Runs a store operation whose future is ready at once.
fn run_op(store: &MemStore, op: pbi_embed_core::driver::StoreOp) -> Event {
    use std::future::Future as _;
    let mut future = std::pin::pin!(op.run(Some(store)));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(event) => event,
        std::task::Poll::Pending => panic!("the memory store is never pending"),
    }
}

/// Steps `call` to its end on `sim` with `store`; what it sent (operations, store ops,
/// waits) in order.
fn drive_shared<T>(
    sim: &mut Sim,
    store: &MemStore,
    call: &mut Call<'_, T>,
    server: &mut dyn FnMut(&Exchange, Now) -> Answer,
    on_wait: &mut dyn FnMut(&mut Sim),
) -> (Result<T, pbi_embed_core::Error>, Vec<String>) {
    let mut sent = Vec::new();
    let mut event = Event::resume();
    loop {
        event = match sim.step(call, event) {
            Action::Send(exchange) => {
                sent.push(exchange.operation().to_owned());
                let answer = server(&exchange, sim.now);
                exchange.respond(answer)
            }
            Action::Store(op) => {
                sent.push(format!("store {}", op.name()));
                run_op(store, op)
            }
            Action::Wait(delay) => {
                sent.push("wait".to_owned());
                sim.advance(delay);
                on_wait(sim);
                Event::resume()
            }
            Action::Join(join) => {
                let (branches, joiner) = join.into_branches();
                let mut results = Vec::new();
                let mut side_by_side = Vec::new();
                for mut branch in branches {
                    let (result, branch_sent) = drive_shared(sim, store, &mut branch, server, on_wait);
                    results.push(result);
                    side_by_side.extend(branch_sent);
                }
                side_by_side.sort();
                sent.push(format!("[{}]", side_by_side.join(" | ")));
                joiner.respond(results)
            }
            Action::Done(result) => return (result, sent),
            other => panic!("unexpected {other:?}"),
        };
    }
}

fn shared_settings() -> ClientSettings {
    let mut settings = ClientSettings::default();
    settings.shared = Some(pbi_embed_core::SharedSettings::default());
    settings
}

#[test]
fn a_replica_that_finds_the_record_after_taking_the_lock_gives_the_lock_up() {
    // Another replica stored the token and let go between this one's look and its lock.
    let store = MemStore::default();
    let mut a = Sim::new(shared_settings());
    let request = report();
    let record = {
        let mut other = Sim::new(ClientSettings::default());
        let token = other
            .drive(&mut Call::embed_token(&request), &mut healthy())
            .0
            .unwrap();
        serde_json::json!({"token": token.token.secret(), "tokenId": "stored", "expiration": token.expiration_rfc3339()}).to_string()
    };
    let mut call = Call::embed_token(&request);
    let mut event = Event::resume();
    let mut ops = Vec::new();
    let result = loop {
        event = match a.step(&mut call, event) {
            Action::Store(op) => {
                ops.push(op.name());
                if op.name() == "lock" {
                    // The other replica's record lands just now.
                    let key = format!("{op:?}");
                    let hash = key.split("pbi-embed:v1:lock:").nth(1).unwrap()[..64].to_owned();
                    store
                        .records
                        .lock()
                        .unwrap()
                        .insert(format!("pbi-embed:v1:token:{hash}"), record.clone().into_bytes());
                }
                run_op(&store, op)
            }
            Action::Done(result) => break result,
            other => panic!("unexpected {other:?}"),
        };
    };
    assert_eq!(result.unwrap().token_id, "stored");
    assert_eq!(ops, ["get", "lock", "get", "unlock"]);
    assert!(store.locks.lock().unwrap().is_empty(), "the lock was given up");
}

#[test]
fn replicas_share_one_token_through_the_store_and_go_on_without_it() {
    let store = MemStore::default();
    let (mut a, mut b) = (Sim::new(shared_settings()), Sim::new(shared_settings()));
    let mut server = healthy();
    let request = report();
    let (result, sent) = drive_shared(
        &mut a,
        &store,
        &mut Call::embed_token(&request),
        &mut server,
        &mut |_| {},
    );
    let minted = result.unwrap();
    assert_eq!(
        sent,
        [
            "store get",
            "store lock",
            "store get",
            "Entra_ClientCredentials",
            "Reports_GenerateTokenInGroup",
            "store put",
            "store unlock"
        ]
    );
    let records = store.records.lock().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert!(records.keys().all(|k| k.starts_with("pbi-embed:v1:token:")));
    // Replica B: the record, no sign-in, no GenerateToken.
    let (result, sent) = drive_shared(
        &mut b,
        &store,
        &mut Call::embed_token(&request),
        &mut server,
        &mut |_| {},
    );
    assert_eq!(result.unwrap().token_id, minted.token_id);
    assert_eq!(sent, ["store get"]);
    // B again: its own cache now.
    let (_, sent) = drive_shared(
        &mut b,
        &store,
        &mut Call::embed_token(&request),
        &mut server,
        &mut |_| {},
    );
    assert!(sent.is_empty());

    // The store down: C goes to Power BI itself, and the call does not fail.
    let mut c = Sim::new(shared_settings());
    store.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let (result, sent) = drive_shared(
        &mut c,
        &store,
        &mut Call::embed_token(&request),
        &mut server,
        &mut |_| {},
    );
    assert_ne!(result.unwrap().token_id, minted.token_id);
    assert_eq!(
        sent,
        [
            "store get",
            "Entra_ClientCredentials",
            "Reports_GenerateTokenInGroup"
        ]
    );
}

#[test]
fn a_replica_waits_for_the_lock_holders_token_and_takes_over_from_a_dead_one() {
    let store = MemStore::default();
    let mut b = Sim::new(shared_settings());
    let mut server = healthy();
    let request = report();
    let key = {
        // Replica A took the lock and is minting.
        let mut a = Sim::new(shared_settings());
        let mut call = Call::embed_token(&request);
        let mut event = Event::resume();
        loop {
            event = match a.step(&mut call, event) {
                Action::Store(op) => run_op(&store, op),
                Action::Send(_) => break,
                other => panic!("unexpected {other:?}"),
            };
        }
        store.locks.lock().unwrap().iter().next().cloned().unwrap()
    };
    // B finds no record and the lock taken: it looks again every 25 ms. A's token lands
    // after three looks; B takes it.
    let record = {
        let mut c = Sim::new(ClientSettings::default());
        let (token, _) = c.drive(&mut Call::embed_token(&request), &mut server);
        let token = token.unwrap();
        serde_json::json!({"token": token.token.secret(), "tokenId": "from-a", "expiration": token.expiration_rfc3339()}).to_string()
    };
    let token_key = key.replace(":lock:", ":token:");
    let mut waits = 0;
    let (result, sent) = drive_shared(
        &mut b,
        &store,
        &mut Call::embed_token(&request),
        &mut server,
        &mut |_| {
            waits += 1;
            if waits == 3 {
                store
                    .records
                    .lock()
                    .unwrap()
                    .insert(token_key.clone(), record.clone().into_bytes());
            }
        },
    );
    assert_eq!(result.unwrap().token_id, "from-a");
    assert!(!sent.iter().any(|s| s.contains("GenerateToken")), "{sent:?}");
    assert_eq!(sent.iter().filter(|s| *s == "wait").count(), 3, "{sent:?}");
    assert_eq!(
        sent.iter().filter(|s| *s == "store lock").count(),
        1,
        "while waiting it only looks for the record: {sent:?}"
    );

    // A dies holding the lock (it stays until its TTL, 5 s): D waits that long, then its
    // lock attempt succeeds (the store expired A's) and it mints itself.
    store.records.lock().unwrap().clear();
    let mut d = Sim::new(shared_settings());
    let started = d.now;
    let (result, sent) = drive_shared(
        &mut d,
        &store,
        &mut Call::embed_token(&request),
        &mut server,
        &mut |sim| {
            if sim.now.instant.duration_since(started.instant) >= Duration::from_secs(5) {
                store.locks.lock().unwrap().clear();
            }
        },
    );
    result.unwrap();
    assert!(
        sent.contains(&"Reports_GenerateTokenInGroup".to_owned()),
        "{sent:?}"
    );
    let waited = d.now.instant.duration_since(started.instant);
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    assert!(store.locks.lock().unwrap().is_empty(), "D gave its lock up");
}

#[test]
fn replicas_share_item_metadata_as_power_bi_sent_it() {
    let store = MemStore::default();
    let request = EmbedRequest::report(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(REPORT).unwrap(),
    )
    .identity(EffectiveIdentity::new("alice").role("Sales"));
    let report_json = format!(
        r#"{{"id":"{REPORT}","name":"Sales","datasetId":"{DATASET}","embedUrl":"https://app.powerbi.com/reportEmbed?reportId={REPORT}"}}"#
    );
    let dataset_json = format!(
        r#"{{"id":"{DATASET}","name":"Sales","isEffectiveIdentityRequired":true,"isEffectiveIdentityRolesRequired":true}}"#
    );
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        "Entra_ClientCredentials" => signed_in(3600),
        "Reports_GetReportInGroup" => json(200, &report_json),
        "Datasets_GetDatasetInGroup" => json(200, &dataset_json),
        _ => minted(now, 60, "shared"),
    };
    let mut a = Sim::new(shared_settings());
    let (config, sent) = drive_shared(
        &mut a,
        &store,
        &mut Call::embed_config(&request),
        &mut server,
        &mut |_| {},
    );
    config.unwrap();
    let puts: usize = sent.iter().map(|s| s.matches("store put").count()).sum();
    assert_eq!(puts, 3, "the report, the dataset and the token: {sent:?}");
    let keys: Vec<String> = store.records.lock().unwrap().keys().cloned().collect();
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("pbi-embed:v1:item:"))
            .count(),
        2,
        "{keys:?}"
    );
    // Replica B reads all three from the store: nothing reaches Power BI or Entra ID.
    let mut b = Sim::new(shared_settings());
    let (config, sent) = drive_shared(
        &mut b,
        &store,
        &mut Call::embed_config(&request),
        &mut server,
        &mut |_| {},
    );
    assert_eq!(config.unwrap().token_id, "shared");
    assert_eq!(
        sent,
        ["store get", "[store get | store get]"],
        "metadata and token from the store (the token and the flags side by side)"
    );
}

// ---- Steps side by side ----

const DASHBOARD: &str = "69ffaa6c-b36d-4d01-96f5-1ed67c64d4af";
const PLAIN: &str = "a8b062ca-5730-468f-9df7-43c2ba76bf5e";

/// A Power BI with a dashboard over two tiles: one on the RLS dataset, one on a plain one.
fn dashboard_server(exchange: &Exchange, now: Now) -> Answer {
    match exchange.operation() {
        "Entra_ClientCredentials" => signed_in(3600),
        "Dashboards_GetDashboardInGroup" => json(
            200,
            &format!(
                r#"{{"id":"{DASHBOARD}","displayName":"Exec","embedUrl":"https://app.powerbi.com/dashboardEmbed"}}"#
            ),
        ),
        "Dashboards_GetTilesInGroup" => json(
            200,
            &format!(
                r#"{{"value":[{{"id":"312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b","embedUrl":"https://app.powerbi.com/embed","datasetId":"{DATASET}"}},{{"id":"4c1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b","embedUrl":"https://app.powerbi.com/embed","datasetId":"{PLAIN}"}}]}}"#
            ),
        ),
        "Datasets_GetDatasetInGroup" => {
            let rls = exchange.request().uri().path().ends_with(DATASET);
            let id = if rls { DATASET } else { PLAIN };
            json(
                200,
                &format!(
                    r#"{{"id":"{id}","name":"d","isEffectiveIdentityRequired":{rls},"isEffectiveIdentityRolesRequired":{rls}}}"#
                ),
            )
        }
        _ => minted(now, 60, "dashboard"),
    }
}

fn dashboard_request() -> EmbedRequest {
    EmbedRequest::dashboard(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        pbi_embed_core::DashboardId::parse(DASHBOARD).unwrap(),
    )
    .identity(EffectiveIdentity::new("alice").role("Sales"))
}

/// Steps each branch of a join to its first exchange: the branches and their exchanges.
fn to_first_send(
    sim: &mut Sim,
    join: pbi_embed_core::driver::Join,
) -> (
    Vec<Call<'static, pbi_embed_core::driver::Branch>>,
    Vec<Exchange>,
    pbi_embed_core::driver::Joiner,
) {
    let (mut branches, joiner) = join.into_branches();
    let sends = branches
        .iter_mut()
        .map(|branch| match sim.step(branch, Event::resume()) {
            Action::Send(exchange) => exchange,
            other => panic!("a branch's first step: {other:?}"),
        })
        .collect();
    (branches, sends, joiner)
}

#[test]
fn steps_side_by_side_answered_in_reverse_order_give_the_same_configuration() {
    let mut sim = Sim::new(no_cache());
    sim.drive(&mut Call::sign_in(), &mut dashboard_server).0.unwrap();
    let request = dashboard_request();
    let mut call = Call::embed_config(&request);
    let mut event = Event::resume();
    let mut joins = 0;
    let config = loop {
        event = match sim.step(&mut call, event) {
            Action::Join(join) => {
                joins += 1;
                let (mut branches, sends, joiner) = to_first_send(&mut sim, join);
                assert_eq!(sends.len(), 2, "two side by side");
                // Answered last first: each branch ends on its own answer.
                let mut results: Vec<_> = (0..branches.len()).map(|_| None).collect();
                for (index, exchange) in sends.into_iter().enumerate().rev() {
                    let answer = dashboard_server(&exchange, sim.now);
                    match sim.step(&mut branches[index], exchange.respond(answer)) {
                        Action::Done(result) => results[index] = Some(result),
                        other => panic!("{other:?}"),
                    }
                }
                joiner.respond(results.into_iter().map(Option::unwrap).collect())
            }
            Action::Send(exchange) => {
                assert_eq!(exchange.operation(), "Dashboards_GenerateTokenInGroup");
                let body = std::str::from_utf8(exchange.request().body()).unwrap().to_owned();
                assert!(
                    body.contains(DATASET) && !body.contains(PLAIN),
                    "bound to the RLS dataset: {body}"
                );
                let answer = dashboard_server(&exchange, sim.now);
                exchange.respond(answer)
            }
            Action::Done(result) => break result,
            other => panic!("{other:?}"),
        };
    };
    assert_eq!(config.unwrap().id, DASHBOARD);
    assert_eq!(joins, 2, "the dashboard beside its tiles, then the two datasets");
    assert_eq!(sim.session.in_flight(), 0);
}

#[test]
fn one_step_side_by_side_failing_fails_the_call_before_minting() {
    let mut sim = Sim::new(no_cache());
    let request = dashboard_request();
    let mut server = |exchange: &Exchange, now| {
        if exchange.request().uri().path().ends_with(PLAIN) {
            error(401, "PowerBINotAuthorizedException", None)
        } else {
            dashboard_server(exchange, now)
        }
    };
    let (result, sent) = sim.drive(&mut Call::embed_config(&request), &mut server);
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotAuthorized, "{error}");
    assert!(
        error.to_string().contains("Datasets_GetDatasetInGroup"),
        "names its step: {error}"
    );
    assert!(!sent.iter().any(|s| s.contains("GenerateToken")), "{sent:?}");
    assert_eq!(sim.session.in_flight(), 0);
}

#[test]
fn the_deadline_passing_while_a_step_side_by_side_is_out_ends_the_call() {
    let mut settings = no_cache();
    settings.deadline = Duration::from_secs(10);
    let mut sim = Sim::new(settings);
    let request = EmbedRequest::report(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(REPORT).unwrap(),
    )
    .identity(EffectiveIdentity::new("alice").role("Sales"));
    let report_json = format!(
        r#"{{"id":"{REPORT}","name":"Sales","datasetId":"{DATASET}","embedUrl":"https://app.powerbi.com/reportEmbed"}}"#
    );
    let mut call = Call::embed_config(&request);
    let mut event = Event::resume();
    let result = loop {
        event = match sim.step(&mut call, event) {
            Action::Send(exchange) if exchange.operation() == "Reports_GetReportInGroup" => {
                // Half the deadline goes on the report.
                sim.advance(Duration::from_secs(5));
                exchange.respond(json(200, &report_json))
            }
            Action::Send(exchange) => exchange.respond(signed_in(3600)),
            Action::Join(join) => {
                let (mut branches, sends, joiner) = to_first_send(&mut sim, join);
                let operations: Vec<_> = sends.iter().map(Exchange::operation).collect();
                assert_eq!(
                    operations,
                    ["EmbedToken_GenerateToken", "Datasets_GetDatasetInGroup"]
                );
                assert!(
                    sends.iter().all(|s| s.timeout() == Duration::from_secs(5)),
                    "bounded by the call's deadline, not one of their own"
                );
                let mut sends = sends.into_iter();
                let (token, flags) = (sends.next().unwrap(), sends.next().unwrap());
                // The flags come at once; the token is still out when the deadline passes.
                let flags_answer = json(
                    200,
                    &format!(
                        r#"{{"id":"{DATASET}","name":"Sales","isEffectiveIdentityRequired":true,"isEffectiveIdentityRolesRequired":true}}"#
                    ),
                );
                let Action::Done(flags_result) = sim.step(&mut branches[1], flags.respond(flags_answer))
                else {
                    panic!()
                };
                sim.advance(Duration::from_secs(6));
                let timed_out = Err(TransportError::new(TransportKind::Timeout, "no answer"));
                let Action::Done(token_result) = sim.step(&mut branches[0], token.respond(timed_out)) else {
                    panic!("no retry past the deadline")
                };
                joiner.respond(vec![token_result, flags_result])
            }
            Action::Done(result) => break result,
            other => panic!("{other:?}"),
        };
    };
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(
        error.to_string().contains("EmbedToken_GenerateToken"),
        "names the step out: {error}"
    );
    assert_eq!(sim.session.in_flight(), 0);
}

#[test]
fn a_driver_that_answers_a_join_short_fails_the_call_not_the_process() {
    let mut sim = Sim::new(no_cache());
    sim.drive(&mut Call::sign_in(), &mut dashboard_server).0.unwrap();
    let request = dashboard_request();
    let mut call = Call::embed_config(&request);
    let Action::Join(join) = sim.step(&mut call, Event::resume()) else {
        panic!()
    };
    let (branches, joiner) = join.into_branches();
    drop(branches);
    let Action::Done(result) = sim.step(&mut call, joiner.respond(Vec::new())) else {
        panic!()
    };
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Driver);
}

// ---- Warm-up ----

#[test]
fn after_warm_up_a_configuration_costs_one_round_trip_and_warm_up_keeps_it_so() {
    let mut sim = Sim::new(ClientSettings::default());
    assert_eq!(
        sim.session.warm_up_interval(),
        Duration::from_secs(150),
        "half of the 5 minutes' margin and of the 10 minutes' TTL"
    );
    let report_request = EmbedRequest::report(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(REPORT).unwrap(),
    )
    .identity(EffectiveIdentity::new("alice").role("Sales"));
    let report_json = format!(
        r#"{{"id":"{REPORT}","name":"Sales","datasetId":"{DATASET}","embedUrl":"https://app.powerbi.com/reportEmbed"}}"#
    );
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        "Reports_GetReportInGroup" => json(200, &report_json),
        _ => dashboard_server(exchange, now),
    };
    let requests = [report_request.clone(), dashboard_request()];
    let (result, sent) = sim.drive(&mut Call::warm_up(&requests), &mut server);
    result.unwrap();
    assert_eq!(sent[0], "Entra_ClientCredentials", "{sent:?}");
    let reads: usize = sent.iter().map(|s| s.matches("Get").count()).sum();
    assert_eq!(
        reads, 5,
        "the report, the dashboard, its tiles and two datasets (the report's is a tile's too, read once): {sent:?}"
    );
    assert!(
        !sent.iter().any(|s| s.contains("GenerateToken")),
        "warm-up mints nothing: {sent:?}"
    );

    for request in &requests {
        let (config, sent) = sim.drive(&mut Call::embed_config(request), &mut server);
        config.unwrap();
        assert_eq!(sent.len(), 1, "one round trip: {sent:?}");
        assert!(
            sent[0].ends_with("GenerateToken") || sent[0].ends_with("GenerateTokenInGroup"),
            "{sent:?}"
        );
    }

    // Again at once: everything is fresh, nothing is sent.
    let (_, sent) = sim.drive(&mut Call::warm_up(&requests), &mut server);
    assert!(!sent.iter().any(|s| s.contains('_')), "nothing sent: {sent:?}");
    // In the metadata's second half-life, warm-up reads it again; before the bearer's
    // margin, no sign-in.
    sim.advance(Duration::from_secs(6 * 60));
    let (_, sent) = sim.drive(&mut Call::warm_up(&requests), &mut server);
    let reads: usize = sent.iter().map(|s| s.matches("Get").count()).sum();
    assert_eq!(reads, 5, "{sent:?}");
    assert!(!sent.iter().any(|s| s.contains("Entra")), "{sent:?}");
    // Inside the bearer's renewal margin, warm-up renews it (no caller will wait on it).
    sim.advance(Duration::from_secs(50 * 60));
    let (_, sent) = sim.drive(&mut Call::warm_up(&requests[..1]), &mut server);
    assert_eq!(sent[0], "Entra_ClientCredentials", "{sent:?}");
}

#[test]
fn warm_up_tries_every_item_and_says_which_failed() {
    let mut sim = Sim::new(ClientSettings::default());
    let missing = EmbedRequest::report(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(REPORT).unwrap(),
    );
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        "Reports_GetReportInGroup" => error(404, "PowerBIEntityNotFound", None),
        _ => dashboard_server(exchange, now),
    };
    let (result, sent) = sim.drive(&mut Call::warm_up(&[missing, dashboard_request()]), &mut server);
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(error.to_string().contains("Reports_GetReportInGroup"), "{error}");
    let reads: usize = sent.iter().map(|s| s.matches("Dashboards_Get").count()).sum();
    assert_eq!(reads, 2, "the dashboard was warmed all the same: {sent:?}");
}

#[test]
fn each_request_goes_as_its_profile_under_one_sign_in_and_caches_keep_profiles_apart() {
    const A: &str = "a4df5235-6f18-4141-9e99-0c3512f41306";
    const B: &str = "0b6c4f39-7d5e-4f0e-9a34-3a9cf1a1d2b7";
    let mut sim = Sim::new(ClientSettings::default());
    let for_profile = |profile: &str| {
        EmbedRequest::report(
            WorkspaceId::parse(WORKSPACE).unwrap(),
            ReportId::parse(REPORT).unwrap(),
        )
        .identity(EffectiveIdentity::new("alice").role("Sales"))
        .profile(ProfileId::parse(profile).unwrap())
    };
    let report_json = format!(
        r#"{{"id":"{REPORT}","name":"Sales","datasetId":"{DATASET}","embedUrl":"https://app.powerbi.com/reportEmbed"}}"#
    );
    let seen = std::cell::RefCell::new(Vec::new());
    let mut server = |exchange: &Exchange, now| {
        let header = exchange
            .request()
            .headers()
            .get("x-powerbi-profile-id")
            .map(|v| v.to_str().unwrap().to_owned());
        seen.borrow_mut().push((exchange.operation().to_owned(), header));
        match exchange.operation() {
            "Entra_ClientCredentials" => signed_in(3600),
            "Reports_GetReportInGroup" => json(200, &report_json),
            "Datasets_GetDatasetInGroup" => json(
                200,
                &format!(
                    r#"{{"id":"{DATASET}","name":"Sales","isEffectiveIdentityRequired":true,"isEffectiveIdentityRolesRequired":true}}"#
                ),
            ),
            _ => minted(now, 60, "t"),
        }
    };
    for profile in [A, B, A, B] {
        let (config, _) = sim.drive(&mut Call::embed_config(&for_profile(profile)), &mut server);
        config.unwrap();
    }
    let seen = seen.into_inner();
    let sign_ins = seen.iter().filter(|(op, _)| op == "Entra_ClientCredentials");
    assert_eq!(sign_ins.count(), 1, "one sign-in serves both profiles: {seen:?}");
    for (op, header) in &seen {
        if op != "Entra_ClientCredentials" {
            assert!(header.is_some(), "{op} went without its profile: {seen:?}");
        }
    }
    for profile in [A, B] {
        let of_profile: Vec<&str> = seen
            .iter()
            .filter(|(_, header)| header.as_deref() == Some(profile))
            .map(|(op, _)| op.as_str())
            .collect();
        assert_eq!(
            of_profile.len(),
            3,
            "each profile reads its own metadata and mints its own token once, then its cache serves: {seen:?}"
        );
        assert!(of_profile.contains(&"Reports_GetReportInGroup"), "{seen:?}");
    }
}

#[test]
fn an_identity_where_required_goes_only_to_datasets_that_require_one() {
    const PLAIN_REPORT: &str = "b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd";
    let mut sim = Sim::new(ClientSettings::default());
    let bodies = std::cell::RefCell::new(Vec::new());
    let mut server = |exchange: &Exchange, now| match exchange.operation() {
        "Reports_GetReportInGroup" => {
            let plain = exchange.request().uri().path().ends_with(PLAIN_REPORT);
            let (id, dataset) = if plain {
                (PLAIN_REPORT, PLAIN)
            } else {
                (REPORT, DATASET)
            };
            json(
                200,
                &format!(
                    r#"{{"id":"{id}","name":"r","datasetId":"{dataset}","embedUrl":"https://app.powerbi.com/reportEmbed"}}"#
                ),
            )
        }
        "Dashboards_GetDashboardInGroup"
        | "Dashboards_GetTilesInGroup"
        | "Datasets_GetDatasetInGroup"
        | "Entra_ClientCredentials" => dashboard_server(exchange, now),
        _ => {
            bodies
                .borrow_mut()
                .push(String::from_utf8(exchange.request().body().clone()).unwrap());
            minted(now, 60, "t")
        }
    };
    let user = || EffectiveIdentity::new("alice").role("Sales");
    let report = |id: &str| {
        EmbedRequest::report(
            WorkspaceId::parse(WORKSPACE).unwrap(),
            ReportId::parse(id).unwrap(),
        )
        .identity(user())
        .identity_where_required()
    };

    // The RLS report: its flags read first (they decide the token), the identity bound.
    let (config, sent) = sim.drive(&mut Call::embed_config(&report(REPORT)), &mut server);
    config.unwrap();
    assert_eq!(
        sent,
        [
            "Entra_ClientCredentials",
            "Reports_GetReportInGroup",
            "Datasets_GetDatasetInGroup",
            "EmbedToken_GenerateToken"
        ]
    );
    assert!(
        bodies.borrow()[0].contains("alice") && bodies.borrow()[0].contains(DATASET),
        "{:?}",
        bodies.borrow()
    );

    // The plain report: no identity sent, and not refused.
    let (config, _) = sim.drive(&mut Call::embed_config(&report(PLAIN_REPORT)), &mut server);
    config.unwrap();
    assert!(!bodies.borrow()[1].contains("alice"), "{}", bodies.borrow()[1]);
    // Without the option, the pre-flight refuses it, as before.
    let strict = EmbedRequest::report(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        ReportId::parse(PLAIN_REPORT).unwrap(),
    )
    .identity(user());
    let (result, _) = sim.drive(&mut Call::embed_config(&strict), &mut server);
    assert_eq!(result.unwrap_err().kind(), ErrorKind::RlsIdentity);

    // A dashboard over an RLS tile and a plain one: the identity bound to the RLS dataset only.
    let dashboard = dashboard_request().identity_where_required();
    let (config, _) = sim.drive(&mut Call::embed_config(&dashboard), &mut server);
    config.unwrap();
    let body = bodies.borrow().last().unwrap().clone();
    assert!(body.contains(DATASET) && !body.contains(PLAIN), "{body}");

    // Warm: the flags cached, the RLS report costs its token alone.
    sim.advance(Duration::from_secs(3600));
    sim.session.clear_caches();
    let (_, sent) = sim.drive(&mut Call::warm_up(&[report(REPORT)]), &mut server);
    assert!(
        sent.iter().any(|s| s.contains("Datasets_GetDatasetInGroup")),
        "{sent:?}"
    );
    let (config, sent) = sim.drive(&mut Call::embed_config(&report(REPORT)), &mut server);
    config.unwrap();
    assert_eq!(sent, ["EmbedToken_GenerateToken"], "one round trip after warm-up");
}

#[test]
fn the_session_counts_exchanges_their_latency_lookups_and_throttling() {
    let mut sim = Sim::new(ClientSettings::default());
    let request = report();
    let mut throttled_once = false;
    // Each exchange takes 120 ms of the simulated clock; GenerateToken is throttled once.
    let mut run = |sim: &mut Sim| {
        let mut call = Call::embed_token(&request);
        let mut event = Event::resume();
        loop {
            event = match sim.step(&mut call, event) {
                Action::Send(exchange) => {
                    sim.advance(Duration::from_millis(120));
                    let answer = if is_sign_in(&exchange) {
                        signed_in(3600)
                    } else if !throttled_once {
                        throttled_once = true;
                        error(429, "TooManyRequests", Some("2"))
                    } else {
                        minted(sim.now, 60, "t1")
                    };
                    exchange.respond(answer)
                }
                Action::Wait(delay) => {
                    sim.advance(delay);
                    Event::resume()
                }
                Action::Done(result) => return result.unwrap(),
                _ => panic!("nothing else here"),
            };
        }
    };
    run(&mut sim);
    run(&mut sim);
    let stats = sim.session.stats();
    let sign_in = &stats.exchanges[&("Entra_ClientCredentials", 200)];
    assert_eq!(sign_in.count, 1);
    let minted = &stats.exchanges[&("Reports_GenerateTokenInGroup", 200)];
    let refused = &stats.exchanges[&("Reports_GenerateTokenInGroup", 429)];
    assert_eq!((minted.count, refused.count), (1, 1), "{stats:?}");
    assert_eq!(
        minted.total,
        Duration::from_millis(120),
        "the simulated clock's latency"
    );
    assert_eq!(minted.buckets[5], 1, "within 250 ms: {minted:?}");
    assert_eq!(minted.buckets[4], 0, "not within 100 ms");
    assert_eq!(
        (stats.throttled, stats.throttle_waits),
        (1, Duration::from_secs(2))
    );
    assert_eq!(
        (stats.embed_tokens.hits, stats.embed_tokens.misses),
        (1, 1),
        "the first call missed, the second was served from the cache"
    );
    assert_eq!((stats.minted_ahead, stats.store_errors), (0, 0));
}
