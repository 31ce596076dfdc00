//! What an outside probe found (issue 18): the emulator's resource bounds, its answers to
//! values that would overflow, Power BI's cross-workspace rule, and fidelity to what
//! Entra ID and Power BI accept.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{SCOPE, post_json, send, sign_in};
use pbi_embed_emulator::fixture::Report;
use pbi_embed_emulator::{Emulator, Fault, FaultRule, Fixture, RouteMatch};
use serde_json::json;

fn report_path(workspace: &str, report: &str) -> String {
    format!("/v1.0/myorg/groups/{workspace}/reports/{report}/GenerateToken")
}

/// A fixture where a report of the member workspace is bound to a dataset of a workspace
/// the principal is not a member of.
fn cross_workspace() -> (Fixture, String, String, String) {
    let mut fixture = Fixture::default();
    let foreign = fixture.workspaces[1].datasets[0].id.clone();
    let report = "0d0c0b0a-0908-4706-8504-030201000000".to_owned();
    fixture.workspaces[0].reports.push(Report {
        id: report.clone(),
        name: "Bound elsewhere".into(),
        dataset_id: foreign.clone(),
        report_type: "PowerBIReport".into(),
        pages: Vec::new(),
    });
    let workspace = fixture.workspaces[0].id.clone();
    (fixture, workspace, report, foreign)
}

#[test]
fn across_workspaces_the_principal_must_be_a_member_of_both() {
    let (fixture, workspace, report, foreign) = cross_workspace();
    let emulator = Emulator::builder().fixture(fixture).start().unwrap();
    let token = sign_in(&emulator);
    let addr = emulator.addr();
    let view = json!({"accessLevel": "View"});
    post_json(addr, &report_path(&workspace, &report), &token, &view)
        .assert_pbi_error(401, "PowerBINotAuthorizedException");
    post_json(
        addr,
        "/v1.0/myorg/GenerateToken",
        &token,
        &json!({"reports": [{"id": report}]}),
    )
    .assert_pbi_error(401, "PowerBINotAuthorizedException");
    let create = json!({"accessLevel": "Create", "datasetId": foreign});
    post_json(
        addr,
        &format!("/v1.0/myorg/groups/{workspace}/reports/GenerateToken"),
        &token,
        &create,
    )
    .assert_pbi_error(401, "PowerBINotAuthorizedException");
    assert_eq!(emulator.stats().minted, 0);
}

#[test]
fn remembered_tokens_are_bounded_by_bytes() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let big = "x".repeat(1_000_000);
    let body = json!({"identities": [{"username": "u", "roles": [ids.rls_role], "customData": big, "datasets": [ids.rls_dataset]}]});
    let path = format!(
        "/v1.0/myorg/groups/{}/datasets/{}/GenerateToken",
        ids.workspace, ids.rls_dataset
    );
    for _ in 0..100 {
        let reply = post_json(emulator.addr(), &path, &token, &body);
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    }
    let stats = emulator.stats();
    assert_eq!(stats.minted, 100);
    assert!(
        stats.remembered_bytes <= 64 * 1024 * 1024,
        "{} bytes remembered",
        stats.remembered_bytes
    );
    assert!(
        stats.remembered_bytes >= 32 * 1024 * 1024,
        "{} bytes",
        stats.remembered_bytes
    );
}

#[test]
fn lifetimes_that_would_overflow_are_answered_not_panicked_on() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    for minutes in [i64::MAX, i64::MAX / 60, 10_000_000_000_000] {
        let reply = post_json(
            emulator.addr(),
            &report_path(&ids.workspace, &ids.report),
            &token,
            &json!({"accessLevel": "View", "lifetimeInMinutes": minutes}),
        );
        assert_eq!(
            reply.status,
            200,
            "{minutes}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    // Zero is Power BI's "the default".
    let reply = post_json(
        emulator.addr(),
        &report_path(&ids.workspace, &ids.report),
        &token,
        &json!({"accessLevel": "View", "lifetimeInMinutes": 0}),
    );
    assert_eq!(reply.status, 200);
    let issue = json!({"clientId": ids.client_id, "lifetimeSeconds": u64::MAX});
    let reply = send(
        emulator.addr(),
        "POST",
        "/_emulator/access-tokens",
        &[("Content-Type", "application/json")],
        issue.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let lifetime = json!({"seconds": u64::MAX});
    let reply = send(
        emulator.addr(),
        "PUT",
        "/_emulator/access-token-lifetime",
        &[("Content-Type", "application/json")],
        lifetime.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["seconds"], 86_400, "clamped to a day, and said so");
    // What the token endpoint says and what the token says agree.
    let reply = common::token_request(&emulator, &ids.tenant, &ids.client_id, &ids.client_secret, SCOPE);
    let expires_in = reply.json()["expires_in"].as_u64().unwrap();
    assert_eq!(expires_in, 86_400);
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, expires_in);
}

#[test]
fn idle_connections_and_slow_heads_are_closed() {
    let emulator = Emulator::builder()
        .header_read_timeout(Duration::from_millis(300))
        .start()
        .unwrap();
    let mut idle = TcpStream::connect(emulator.addr()).unwrap();
    let mut slow = TcpStream::connect(emulator.addr()).unwrap();
    std::io::Write::write_all(&mut slow, b"GET /_emulator/stats HTTP/1.1\r\nHost: x\r\n").unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    for stream in [&mut idle, &mut slow] {
        // Closed: end of stream (or a 408 answer, then the end).
        loop {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A keep-alive connection idle after an answer is closed too.
    let mut conn = common::Conn::open(emulator.addr());
    let reply = conn.send("GET", "/_emulator/stats", &[], b"").unwrap();
    assert_eq!(reply.status, 200);
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        conn.send("GET", "/_emulator/stats", &[], b"").is_err(),
        "closed while idle"
    );
}

#[test]
fn a_client_secret_in_basic_auth_is_accepted() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let basic = |id: &str, secret: &str| {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(id), encode(secret));
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    };
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("scope", SCOPE)
        .append_pair("grant_type", "client_credentials")
        .finish();
    let path = format!("/{}/oauth2/v2.0/token", ids.tenant);
    let good = basic(&ids.client_id, &ids.client_secret);
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Authorization", good.as_str()),
    ];
    let reply = send(emulator.addr(), "POST", &path, &headers, form.as_bytes()).unwrap();
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert!(reply.json()["access_token"].is_string());
    let wrong = basic(&ids.client_id, "wrong");
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Authorization", wrong.as_str()),
    ];
    let reply = send(emulator.addr(), "POST", &path, &headers, form.as_bytes()).unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "invalid_client");
    assert_eq!(reply.json()["error_codes"][0], 7_000_215);
}

#[test]
fn the_token_endpoint_answers_in_oauths_error_shape_even_when_faulted() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::Entra,
        Fault::ServerError { status: 503 },
    ));
    let reply = common::token_request(&emulator, &ids.tenant, &ids.client_id, &ids.client_secret, SCOPE);
    assert_eq!(reply.status, 503);
    let body = reply.json();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90033:"),
        "{body}"
    );
    assert!(reply.header("x-ms-request-id").is_some());
    let form = format!(
        "client_id={}&grant_type=client_credentials&scope=x&client_secret={}",
        ids.client_id,
        "y".repeat(2 << 20)
    );
    let reply = send(
        emulator.addr(),
        "POST",
        &format!("/{}/oauth2/v2.0/token", ids.tenant),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_request");
}

#[test]
fn datasource_selectors_need_a_type_and_connection_details() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let with = |datasource: serde_json::Value| json!({"reports": [{"id": ids.report}], "datasourceIdentities": [{"identityBlob": "b", "datasources": [datasource]}]});
    let good = with(json!({"datasourceType": "Sql", "connectionDetails": {"server": "s", "database": "d"}}));
    assert_eq!(
        post_json(emulator.addr(), "/v1.0/myorg/GenerateToken", &token, &good).status,
        200
    );
    for bad in [
        json!({"connectionDetails": {"server": "s"}}),
        json!({"datasourceType": "Sql"}),
        json!({"datasourceType": "", "connectionDetails": {"server": "s"}}),
        json!({"datasourceType": "Sql", "connectionDetails": {}}),
    ] {
        let reply = post_json(
            emulator.addr(),
            "/v1.0/myorg/GenerateToken",
            &token,
            &with(bad.clone()),
        );
        assert_eq!(
            reply.status,
            400,
            "{bad}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.code(), "InvalidRequest");
    }
}
