//! The server itself: keep-alive, many clients at once, fixtures from files, the control
//! routes, configuration and shutdown.

mod common;

use std::time::Duration;

use common::{Conn, SCOPE, send, sign_in, token_request};
use pbi_embed_emulator::{Emulator, Fixture, Route};
use serde_json::json;

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let auth = format!("Bearer {}", sign_in(&emulator));
    let mut conn = Conn::open(emulator.addr());
    let path = format!(
        "/v1.0/myorg/groups/{}/reports/{}/GenerateToken",
        ids.workspace, ids.report
    );
    for _ in 0..50 {
        let reply = conn
            .send(
                "POST",
                &path,
                &[("Authorization", &auth), ("Content-Type", "application/json")],
                br#"{"accessLevel":"View"}"#,
            )
            .unwrap();
        assert_eq!(reply.status, 200);
    }
    assert_eq!(emulator.requests(Route::ReportsGenerateTokenInGroup), 50);
}

#[test]
fn many_clients_at_once() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let auth = format!("Bearer {}", sign_in(&emulator));
    let path = format!(
        "/v1.0/myorg/groups/{}/reports/{}/GenerateToken",
        ids.workspace, ids.report
    );
    std::thread::scope(|scope| {
        for _ in 0..32 {
            scope.spawn(|| {
                let mut conn = Conn::open(emulator.addr());
                for _ in 0..20 {
                    let reply = conn
                        .send(
                            "POST",
                            &path,
                            &[("Authorization", &auth), ("Content-Type", "application/json")],
                            br#"{"accessLevel":"View"}"#,
                        )
                        .unwrap();
                    assert_eq!(reply.status, 200);
                }
            });
        }
    });
    assert_eq!(emulator.stats().minted, 640);
}

#[test]
fn fixture_from_a_file() {
    let mut fixture = Fixture::default();
    fixture.tenant.domain = "fabrikam.onmicrosoft.com".into();
    fixture.service_principals[0].client_secret = "file-secret".into();
    let path = std::env::temp_dir().join(format!("pbi-embed-fixture-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string_pretty(&fixture).unwrap()).unwrap();
    let loaded = Fixture::from_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let emulator = Emulator::builder().fixture(loaded).start().unwrap();
    let ids = emulator.ids();
    let reply = token_request(
        &emulator,
        "fabrikam.onmicrosoft.com",
        &ids.client_id,
        "file-secret",
        SCOPE,
    );
    assert_eq!(reply.status, 200);
    let missing = Fixture::from_file(std::path::Path::new("/nonexistent/fixture.json")).unwrap_err();
    assert!(missing.to_string().contains("cannot read fixture"), "{missing}");
}

#[test]
fn short_access_token_lifetimes() {
    let emulator = Emulator::builder()
        .access_token_lifetime(Duration::from_secs(2))
        .start()
        .unwrap();
    let ids = emulator.ids();
    let reply = token_request(&emulator, &ids.tenant, &ids.client_id, &ids.client_secret, SCOPE);
    assert_eq!(reply.json()["expires_in"], 2);
    emulator.set_access_token_lifetime(Duration::from_secs(60));
    let reply = token_request(&emulator, &ids.tenant, &ids.client_id, &ids.client_secret, SCOPE);
    assert_eq!(reply.json()["expires_in"], 60);
    let over_http = send(
        emulator.addr(),
        "PUT",
        "/_emulator/access-token-lifetime",
        &[],
        br#"{"seconds":5}"#,
    )
    .unwrap();
    assert_eq!(over_http.status, 200);
    let reply = token_request(&emulator, &ids.tenant, &ids.client_id, &ids.client_secret, SCOPE);
    assert_eq!(reply.json()["expires_in"], 5);
}

#[test]
fn control_routes() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let fixture = send(emulator.addr(), "GET", "/_emulator/fixture", &[], b"").unwrap();
    assert_eq!(fixture.json()["tenant"]["id"], ids.tenant.as_str());

    let token = sign_in(&emulator);
    let stats = send(emulator.addr(), "GET", "/_emulator/stats", &[], b"")
        .unwrap()
        .json();
    assert_eq!(stats["requests"]["Entra_Token"], 1);
    assert_eq!(stats["accessTokensIssued"], 1);
    assert_eq!(
        send(emulator.addr(), "POST", "/_emulator/stats/reset", &[], b"")
            .unwrap()
            .status,
        200
    );
    assert_eq!(emulator.requests(Route::EntraToken), 0);

    let issued = send(
        emulator.addr(),
        "POST",
        "/_emulator/access-tokens",
        &[],
        format!(r#"{{"clientId":"{}","lifetimeSeconds":0}}"#, ids.client_id).as_bytes(),
    )
    .unwrap();
    let expired = issued.json()["access_token"].as_str().unwrap().to_owned();
    let path = format!(
        "/v1.0/myorg/groups/{}/reports/{}/GenerateToken",
        ids.workspace, ids.report
    );
    common::post_json(emulator.addr(), &path, &expired, &json!({"accessLevel": "View"})).assert_error(
        403,
        "TokenExpired",
        "expired",
    );

    let minted = common::post_json(emulator.addr(), &path, &token, &json!({"accessLevel": "View"})).json();
    let introspected = send(
        emulator.addr(),
        "POST",
        "/_emulator/introspect",
        &[],
        serde_json::to_vec(&json!({"token": minted["token"]}))
            .unwrap()
            .as_slice(),
    )
    .unwrap()
    .json();
    assert_eq!(introspected["valid"], true);
    assert_eq!(introspected["token"]["tokenId"], minted["tokenId"]);

    let limit = send(
        emulator.addr(),
        "PUT",
        "/_emulator/rate-limit",
        &[],
        br#"{"requests":1,"perSeconds":60}"#,
    )
    .unwrap();
    assert_eq!(limit.status, 200);
    assert_eq!(
        common::post_json(emulator.addr(), &path, &token, &json!({})).status,
        200
    );
    assert_eq!(
        common::post_json(emulator.addr(), &path, &token, &json!({})).status,
        429
    );
    assert_eq!(
        send(emulator.addr(), "DELETE", "/_emulator/rate-limit", &[], b"")
            .unwrap()
            .status,
        200
    );

    let unknown = send(emulator.addr(), "GET", "/_emulator/nope", &[], b"").unwrap();
    assert_eq!(unknown.status, 404);
    let missing = send(
        emulator.addr(),
        "GET",
        "/_emulator/tokens/00000000-0000-0000-0000-000000000000",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(missing.status, 404);
}

#[test]
fn shutdown_stops_serving() {
    let emulator = Emulator::start().unwrap();
    let addr = emulator.addr();
    assert!(send(addr, "GET", "/_emulator/stats", &[], b"").is_ok());
    emulator.shutdown();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}
