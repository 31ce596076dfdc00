//! Every fault, over real HTTP on loopback, and the per-principal rate limit.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, assert_request_id, post_json, send, sign_in};
use pbi_embed_emulator::{Emulator, Fault, FaultRule, RateLimit, Route, RouteMatch};
use serde_json::json;

fn report(emulator: &Emulator, token: &str) -> common::Reply {
    let ids = emulator.ids();
    post_json(
        emulator.addr(),
        &format!(
            "/v1.0/myorg/groups/{}/reports/{}/GenerateToken",
            ids.workspace, ids.report
        ),
        token,
        &json!({"accessLevel": "View"}),
    )
}

fn once(emulator: &Emulator, fault: Fault) {
    emulator.inject(FaultRule::next(1, RouteMatch::GenerateToken, fault));
}

#[test]
fn throttle_with_retry_after() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    once(
        &emulator,
        Fault::Throttle {
            retry_after: "7".into(),
        },
    );
    let reply = report(&emulator, &token);
    reply.assert_error(429, "TooManyRequests", "You have exceeded the amount of requests");
    assert_eq!(reply.header("Retry-After"), Some("7"));
    assert_eq!(report(&emulator, &token).status, 200, "the fault was used up");
}

#[test]
fn server_errors() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    for (status, code) in [
        (500, "InternalServerError"),
        (502, "BadGateway"),
        (503, "ServiceUnavailable"),
        (504, "GatewayTimeout"),
    ] {
        once(&emulator, Fault::ServerError { status });
        report(&emulator, &token).assert_error(status, code, "An error has occurred");
    }
}

#[test]
fn html_and_non_json_bodies() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    for status in [200, 502] {
        once(&emulator, Fault::Html { status });
        let reply = report(&emulator, &token);
        assert_eq!(reply.status, status);
        assert!(reply.header("content-type").unwrap().starts_with("text/html"));
        assert!(String::from_utf8_lossy(&reply.body).starts_with("<!DOCTYPE html>"));
        assert_request_id(&reply);
    }
    once(&emulator, Fault::NotJson { status: 500 });
    let reply = report(&emulator, &token);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&reply.body).is_err());
}

#[test]
fn custom_answers_with_repeated_headers() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    once(
        &emulator,
        Fault::Custom {
            status: 429,
            headers: vec![
                ("Retry-After".into(), "1".into()),
                ("Retry-After".into(), "2".into()),
            ],
            body: "slow down".into(),
        },
    );
    let reply = report(&emulator, &token);
    assert_eq!(reply.status, 429);
    assert_eq!(
        reply
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .count(),
        2
    );
    assert_eq!(reply.body, b"slow down");
}

#[test]
fn delay_then_answer() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    once(&emulator, Fault::Delay { millis: 300 });
    let started = Instant::now();
    assert_eq!(report(&emulator, &token).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn drip_sends_a_byte_at_a_time() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    once(&emulator, Fault::Drip { interval_millis: 2 });
    let started = Instant::now();
    let reply = report(&emulator, &token);
    assert_eq!(reply.status, 200);
    let len = reply.body.len();
    assert!(len > 200, "{len}");
    assert!(
        started.elapsed() >= Duration::from_millis(2 * (len as u64 - 1)),
        "{:?}",
        started.elapsed()
    );
    assert!(reply.json()["token"].is_string());
}

#[test]
fn truncated_body_closes_the_connection() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    once(&emulator, Fault::Truncated);
    let ids = emulator.ids();
    let auth = format!("Bearer {token}");
    let result = send(
        emulator.addr(),
        "POST",
        &format!(
            "/v1.0/myorg/groups/{}/reports/{}/GenerateToken",
            ids.workspace, ids.report
        ),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        br#"{"accessLevel":"View"}"#,
    );
    let err = result.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn oversized_bodies_stream() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    let ids = emulator.ids();
    let auth = format!("Bearer {token}");
    let bytes = 300 * 1024 * 1024;
    let limit = 2 * 1024 * 1024;
    for advertise_length in [true, false] {
        once(
            &emulator,
            Fault::Oversized {
                bytes,
                advertise_length,
            },
        );
        let reply = Conn::open(emulator.addr())
            .send_limited(
                "POST",
                &format!(
                    "/v1.0/myorg/groups/{}/reports/{}/GenerateToken",
                    ids.workspace, ids.report
                ),
                &[("Authorization", &auth), ("Content-Type", "application/json")],
                br#"{"accessLevel":"View"}"#,
                limit,
            )
            .unwrap();
        assert_eq!(reply.status, 200);
        assert!(
            reply.body.len() >= limit && reply.body.len() < limit + 128 * 1024,
            "{}",
            reply.body.len()
        );
        if advertise_length {
            assert_eq!(reply.header("content-length"), Some(bytes.to_string().as_str()));
        } else {
            assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
        }
    }
}

#[test]
fn dropped_connection() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    once(&emulator, Fault::DropConnection);
    let ids = emulator.ids();
    let auth = format!("Bearer {token}");
    let err = send(
        emulator.addr(),
        "POST",
        &format!(
            "/v1.0/myorg/groups/{}/reports/{}/GenerateToken",
            ids.workspace, ids.report
        ),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        br#"{"accessLevel":"View"}"#,
    )
    .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        "{err}"
    );
}

#[test]
fn redirects() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    for status in [302, 307] {
        once(
            &emulator,
            Fault::Redirect {
                status,
                location: "http://127.0.0.2:9/steal".into(),
            },
        );
        let reply = report(&emulator, &token);
        assert_eq!(reply.status, status);
        assert_eq!(reply.header("location"), Some("http://127.0.0.2:9/steal"));
    }
}

#[test]
fn faults_target_routes_and_can_be_random() {
    let emulator = Emulator::start().unwrap();
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::Entra,
        Fault::ServerError { status: 503 },
    ));
    let ids = emulator.ids();
    let failed = common::token_request(
        &emulator,
        &ids.tenant,
        &ids.client_id,
        &ids.client_secret,
        common::SCOPE,
    );
    assert_eq!(failed.status, 503);
    let token = sign_in(&emulator);
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::Only(Route::DashboardsGenerateTokenInGroup),
        Fault::ServerError { status: 500 },
    ));
    assert_eq!(report(&emulator, &token).status, 200, "another route is not hit");

    emulator.inject(FaultRule::random(
        0.5,
        RouteMatch::GenerateToken,
        Fault::ServerError { status: 503 },
    ));
    let statuses: Vec<u16> = (0..200).map(|_| report(&emulator, &token).status).collect();
    let failed = statuses.iter().filter(|s| **s == 503).count();
    assert!((50..150).contains(&failed), "{failed} of 200");
    emulator.clear_faults();
    assert_eq!(report(&emulator, &token).status, 200);
}

#[test]
fn faults_over_the_control_route() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    let rule = br#"{"route":"generateToken","fault":{"kind":"throttle","retryAfter":"3"},"count":2}"#;
    let reply = send(
        emulator.addr(),
        "POST",
        "/_emulator/faults",
        &[("Content-Type", "application/json")],
        rule,
    )
    .unwrap();
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(report(&emulator, &token).status, 429);
    let reply = send(emulator.addr(), "DELETE", "/_emulator/faults", &[], b"").unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(report(&emulator, &token).status, 200);
    let bad = send(
        emulator.addr(),
        "POST",
        "/_emulator/faults",
        &[("Content-Type", "application/json")],
        b"{\"fault\":{\"kind\":\"nope\"}}",
    )
    .unwrap();
    assert_eq!(bad.status, 400);
}

#[test]
fn control_routes_answer_only_this_machine() {
    let emulator = Emulator::start().unwrap();
    let rule = br#"{"route":"generateToken","fault":{"kind":"throttle","retryAfter":"3"},"count":2}"#;
    let post = |headers: &[(&str, &str)]| {
        send(emulator.addr(), "POST", "/_emulator/faults", headers, rule)
            .unwrap()
            .status
    };
    // A page elsewhere posting a "simple" cross-site request: refused by its Origin, and a
    // body it could send without asking (text/plain) is refused even without one.
    assert_eq!(
        post(&[("Content-Type", "text/plain"), ("Origin", "https://evil.example")]),
        403
    );
    assert_eq!(post(&[("Content-Type", "text/plain")]), 415);
    assert_eq!(
        post(&[
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.example")
        ]),
        403
    );
    assert_eq!(
        post(&[
            ("Content-Type", "application/json"),
            ("Origin", "http://127.0.0.1:3000")
        ]),
        201
    );
    // DNS rebinding: a name that is not this machine's, resolved to it.
    let mut stream = std::net::TcpStream::connect(emulator.addr()).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /_emulator/fixture HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    assert!(
        !reply.contains(&emulator.ids().client_secret),
        "the fixture's secret stays in"
    );
    assert_eq!(
        send(emulator.addr(), "GET", "/_emulator/stats", &[], b"")
            .unwrap()
            .status,
        200,
        "loopback callers are answered"
    );
}

#[test]
fn rate_limit_per_principal() {
    let emulator = Emulator::start().unwrap();
    let token = sign_in(&emulator);
    emulator.set_rate_limit(Some(RateLimit {
        requests: 3,
        per_seconds: 60,
    }));
    for _ in 0..3 {
        assert_eq!(report(&emulator, &token).status, 200);
    }
    let reply = report(&emulator, &token);
    reply.assert_error(429, "TooManyRequests", "You have exceeded");
    let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    emulator.set_rate_limit(None);
    assert_eq!(report(&emulator, &token).status, 200);
}
