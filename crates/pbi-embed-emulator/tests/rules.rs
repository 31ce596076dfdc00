//! Power BI's and Entra ID's rules, over real HTTP on loopback: status, error code,
//! message and RequestId of every answer.

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{SCOPE, assert_request_id, post_json, send, sign_in, token_request};
use pbi_embed_emulator::{Emulator, Route};
use serde_json::{Value, json};

fn report_path(workspace: &str, report: &str) -> String {
    format!("/v1.0/myorg/groups/{workspace}/reports/{report}/GenerateToken")
}

fn rfc3339(text: &str) -> SystemTime {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix_timestamp()).unwrap())
}

/// A JWT's header and claims, unverified.
fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode =
        || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (decode(), decode())
}

// ---- Entra ID ---------------------------------------------------------------------

#[test]
fn sign_in_issues_bearer_tokens() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    for tenant in [ids.tenant.as_str(), "contoso-emulator.onmicrosoft.com"] {
        let reply = token_request(&emulator, tenant, &ids.client_id, &ids.client_secret, SCOPE);
        assert_eq!(reply.status, 200);
        let body = reply.json();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        let (header, claims) = jwt_parts(body["access_token"].as_str().unwrap());
        assert_eq!(
            (header["typ"].as_str(), header["alg"].as_str()),
            (Some("JWT"), Some("RS256"))
        );
        assert!(header["kid"].is_string());
        assert_eq!(claims["aud"], "https://analysis.windows.net/powerbi/api");
        assert_eq!(claims["iss"], format!("https://sts.windows.net/{}/", ids.tenant));
        assert_eq!(claims["tid"], ids.tenant.as_str());
        assert_eq!(claims["appid"], ids.client_id.as_str());
        assert_eq!(
            (claims["ver"].as_str(), claims["idtyp"].as_str()),
            (Some("1.0"), Some("app"))
        );
        assert_eq!(claims["sub"], claims["oid"]);
        let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
        assert_eq!(exp - iat, 3599);
        assert!(claims["nbf"].as_u64().unwrap() <= iat);
        assert_request_id(&reply);
        assert!(reply.header("x-ms-request-id").is_some());
    }
    assert_eq!(emulator.requests(Route::EntraToken), 2);
}

#[test]
fn sign_in_failures_use_entra_codes() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let cases = [
        (
            token_request(&emulator, &ids.tenant, &ids.client_id, "wrong", SCOPE),
            401,
            "invalid_client",
            7_000_215,
        ),
        (
            token_request(
                &emulator,
                &ids.tenant,
                "00000000-0000-0000-0000-000000000009",
                "x",
                SCOPE,
            ),
            400,
            "unauthorized_client",
            700_016,
        ),
        (
            token_request(
                &emulator,
                "other.onmicrosoft.com",
                &ids.client_id,
                &ids.client_secret,
                SCOPE,
            ),
            400,
            "invalid_request",
            90_002,
        ),
        (
            token_request(
                &emulator,
                &ids.tenant,
                &ids.client_id,
                &ids.client_secret,
                "https://graph.microsoft.com/.default",
            ),
            400,
            "invalid_scope",
            70_011,
        ),
    ];
    for (reply, status, error, code) in cases {
        assert_eq!(reply.status, status);
        let body = reply.json();
        assert_eq!(body["error"], error);
        assert_eq!(body["error_codes"], json!([code]));
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        assert!(description.contains("Trace ID: "), "{description}");
        assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
        assert!(reply.header("x-ms-request-id").is_some());
    }
    let reply = send(
        emulator.addr(),
        "POST",
        &format!("/{}/oauth2/v2.0/token", ids.tenant),
        &[],
        b"grant_type=password",
    )
    .unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_request");
}

#[test]
fn unsupported_grant_type() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let reply = send(
        emulator.addr(),
        "POST",
        &format!("/{}/oauth2/v2.0/token", ids.tenant),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("grant_type=password&client_id={}", ids.client_id).as_bytes(),
    )
    .unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "unsupported_grant_type");
}

// ---- authorization ----------------------------------------------------------------

#[test]
fn missing_forged_and_expired_bearer_tokens() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let path = report_path(&ids.workspace, &ids.report);
    let body = br#"{"accessLevel":"View"}"#;

    let reply = send(
        emulator.addr(),
        "POST",
        &path,
        &[("Content-Type", "application/json")],
        body,
    )
    .unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.code(), "PowerBINotAuthorizedException");
    assert_eq!(reply.json()["error"]["pbi.error"]["exceptionCulprit"], 1);
    assert_request_id(&reply);

    // Claims changed under the same signature; a token another emulator signed.
    let token = sign_in(&emulator);
    let (_, mut claims) = jwt_parts(&token);
    claims["appid"] = json!(ids.outsider_client_id);
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
    let foreign = sign_in(&Emulator::start().unwrap());
    for bad in [forged, foreign, "EMU1.x.y".to_owned()] {
        post_json(emulator.addr(), &path, &bad, &json!({"accessLevel": "View"}))
            .assert_pbi_error(401, "PowerBINotAuthorizedException");
    }

    let expired = emulator
        .issue_access_token(&ids.client_id, Duration::ZERO)
        .unwrap();
    post_json(emulator.addr(), &path, &expired, &json!({"accessLevel": "View"})).assert_error(
        403,
        "TokenExpired",
        "Access token has expired, resubmit with a new access token",
    );
}

#[test]
fn membership_and_existence() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let other = emulator.fixture().workspaces[1].reports[0].id.clone();
    let view = json!({"accessLevel": "View"});
    post_json(
        emulator.addr(),
        &report_path(&ids.other_workspace, &other),
        &token,
        &view,
    )
    .assert_pbi_error(401, "PowerBINotAuthorizedException");
    post_json(
        emulator.addr(),
        &report_path("00000000-0000-0000-0000-000000000000", &ids.report),
        &token,
        &view,
    )
    .assert_pbi_error(404, "PowerBIEntityNotFound");
    post_json(
        emulator.addr(),
        &report_path(&ids.workspace, "00000000-0000-0000-0000-000000000000"),
        &token,
        &view,
    )
    .assert_pbi_error(404, "PowerBIEntityNotFound");
    let multi = json!({"reports": [{"id": other}]});
    post_json(emulator.addr(), "/v1.0/myorg/GenerateToken", &token, &multi)
        .assert_pbi_error(401, "PowerBINotAuthorizedException");
}

// ---- request shape ----------------------------------------------------------------

#[test]
fn malformed_bodies_and_media_types() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let auth = format!("Bearer {}", sign_in(&emulator));
    let path = report_path(&ids.workspace, &ids.report);
    let send_with =
        |headers: &[(&str, &str)], body: &[u8]| send(emulator.addr(), "POST", &path, headers, body).unwrap();

    send_with(&[("Authorization", &auth)], br#"{"accessLevel":"View"}"#).assert_error(
        400,
        "InvalidRequest",
        "The request contains an entity body but no Content-Type header",
    );
    send_with(&[("Authorization", &auth), ("Content-Type", "text/plain")], b"{}").assert_error(
        400,
        "InvalidRequest",
        "media type 'text/plain' is not supported",
    );
    send_with(
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        b"{\"accessLevel\":",
    )
    .assert_error(400, "InvalidRequest", "The request body is not valid");
    send_with(
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        br#"{"accesslevel":"View"}"#,
    )
    .assert_error(400, "InvalidRequest", "unknown field `accesslevel`");
    send_with(
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        b"",
    )
    .assert_error(400, "InvalidRequest", "The request body is required");
}

#[test]
fn access_level_rules() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let dashboard = format!(
        "/v1.0/myorg/groups/{}/dashboards/{}/GenerateToken",
        ids.workspace, ids.dashboard
    );
    let tile = format!(
        "/v1.0/myorg/groups/{}/dashboards/{}/tiles/{}/GenerateToken",
        ids.workspace, ids.dashboard, ids.tile
    );
    for path in [&dashboard, &tile] {
        post_json(emulator.addr(), path, &token, &json!({"accessLevel": "Edit"})).assert_error(
            400,
            "InvalidRequest",
            "The access level 'Edit' is not supported for this item",
        );
    }
    let create = format!("/v1.0/myorg/groups/{}/reports/GenerateToken", ids.workspace);
    post_json(
        emulator.addr(),
        &create,
        &token,
        &json!({"accessLevel": "Create"}),
    )
    .assert_error(400, "InvalidRequest", "The datasetId parameter is required");
    post_json(
        emulator.addr(),
        &report_path(&ids.workspace, &ids.report),
        &token,
        &json!({"accessLevel": "Create"}),
    )
    .assert_error(400, "InvalidRequest", "'Create' is not supported");
    post_json(
        emulator.addr(),
        &report_path(&ids.workspace, &ids.report),
        &token,
        &json!({"accessLevel": "Admin"}),
    )
    .assert_error(400, "InvalidRequest", "'Admin' is not valid");
}

#[test]
fn identity_limits() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let path = report_path(&ids.workspace, &ids.rls_report);
    let identity = |username: Value, roles: Value| json!({"username": username, "roles": roles, "datasets": [ids.rls_dataset]});
    let cases = [
        (
            json!([
                identity(json!("a"), json!([ids.rls_role])),
                identity(json!("b"), json!([ids.rls_role]))
            ]),
            "Creating embed token with multiple identities is not supported",
        ),
        (
            json!([identity(json!("u".repeat(257)), json!([ids.rls_role]))]),
            "exceeds the maximum length of 256",
        ),
        (
            json!([identity(
                json!("u"),
                json!((0..51).map(|i| format!("r{i}")).collect::<Vec<_>>())
            )]),
            "at most 50 roles",
        ),
        (
            json!([identity(json!("u"), json!(["r".repeat(51)]))]),
            "is not valid: a role is 1 to 50 characters",
        ),
        (
            json!([identity(json!("u"), json!(["Region,Manager"]))]),
            "without commas",
        ),
        (
            json!([{"roles": [ids.rls_role], "datasets": [ids.rls_dataset]}]),
            "must have a username or an identity blob",
        ),
        (
            json!([{"username": "u", "roles": [ids.rls_role]}]),
            "DatasetId is mandatory for any EffectiveIdentity",
        ),
        (
            json!([identity(json!("u"), json!(["NoSuchRole"]))]),
            "The role 'NoSuchRole' does not exist",
        ),
    ];
    for (identities, message) in cases {
        post_json(
            emulator.addr(),
            &path,
            &token,
            &json!({"accessLevel": "View", "identities": identities}),
        )
        .assert_error(400, "InvalidRequest", message);
    }
}

#[test]
fn row_level_security() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let rls = report_path(&ids.workspace, &ids.rls_report);
    post_json(emulator.addr(), &rls, &token, &json!({"accessLevel": "View"})).assert_error(
        400,
        "InvalidRequest",
        &format!(
            "Creating embed token for accessing dataset {} requires effective identity to be provided",
            ids.rls_dataset
        ),
    );
    post_json(
        emulator.addr(),
        &rls,
        &token,
        &json!({"accessLevel": "View", "identities": [{"username": "u", "datasets": [ids.rls_dataset]}]}),
    )
    .assert_error(
        400,
        "InvalidRequest",
        &format!("Creating embed token for accessing dataset {} requires roles to be included in provided effective identity", ids.rls_dataset),
    );
    post_json(
        emulator.addr(),
        &report_path(&ids.workspace, &ids.report),
        &token,
        &json!({"accessLevel": "View", "identities": [{"username": "u", "roles": ["x"], "datasets": [ids.dataset]}]}),
    )
    .assert_error(
        400,
        "InvalidRequest",
        &format!("Creating embed token for accessing dataset {} shouldn't have effective identity", ids.dataset),
    );
    // The dashboard's tiles use both datasets: one identity for the RLS one is right.
    let dashboard = format!(
        "/v1.0/myorg/groups/{}/dashboards/{}/GenerateToken",
        ids.workspace, ids.dashboard
    );
    let ok = post_json(
        emulator.addr(),
        &dashboard,
        &token,
        &json!({"accessLevel": "View", "identities": [
            {"username": "a", "roles": [ids.rls_role], "datasets": [ids.rls_dataset]},
            {"username": "b", "roles": ["Manager"], "datasets": [ids.rls_dataset]}
        ]}),
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
}

#[test]
fn multi_resource_limits() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let many: Vec<Value> = (0..51).map(|_| json!({"id": ids.report})).collect();
    post_json(
        emulator.addr(),
        "/v1.0/myorg/GenerateToken",
        &token,
        &json!({"reports": many}),
    )
    .assert_error(
        400,
        "InvalidRequest",
        "The number of reports in the request (51) exceeds the limit of 50",
    );
    post_json(emulator.addr(), "/v1.0/myorg/GenerateToken", &token, &json!({})).assert_error(
        400,
        "InvalidRequest",
        "at least one report or dataset",
    );
    post_json(
        emulator.addr(),
        "/v1.0/myorg/GenerateToken",
        &token,
        &json!({"datasets": [{"id": ids.dataset, "xmlaPermissions": "Write"}]}),
    )
    .assert_error(
        400,
        "InvalidRequest",
        "The xmlaPermissions value 'Write' is not valid",
    );
}

// ---- minting ----------------------------------------------------------------------

#[test]
fn every_route_mints_an_inspectable_token() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let rls_identity =
        json!([{"username": "john@contoso.com", "roles": [ids.rls_role], "datasets": [ids.rls_dataset]}]);
    let cases = [
        (
            report_path(&ids.workspace, &ids.rls_report),
            json!({"accessLevel": "View", "identities": rls_identity}),
            "report",
            Route::ReportsGenerateTokenInGroup,
        ),
        (
            report_path(&ids.workspace, &ids.report),
            json!({"accessLevel": "Edit", "allowSaveAs": "true"}),
            "report",
            Route::ReportsGenerateTokenInGroup,
        ),
        (
            format!("/v1.0/myorg/groups/{}/reports/GenerateToken", ids.workspace),
            json!({"accessLevel": "Create", "datasetId": ids.dataset}),
            "dataset",
            Route::ReportsGenerateTokenForCreateInGroup,
        ),
        (
            format!(
                "/v1.0/myorg/groups/{}/dashboards/{}/GenerateToken",
                ids.workspace, ids.dashboard
            ),
            json!({"accessLevel": "View", "identities": rls_identity}),
            "dashboard",
            Route::DashboardsGenerateTokenInGroup,
        ),
        (
            format!(
                "/v1.0/myorg/groups/{}/dashboards/{}/tiles/{}/GenerateToken",
                ids.workspace, ids.dashboard, ids.tile
            ),
            json!({"accessLevel": "View", "identities": rls_identity}),
            "tile",
            Route::TilesGenerateTokenInGroup,
        ),
        (
            format!(
                "/v1.0/myorg/groups/{}/datasets/{}/GenerateToken",
                ids.workspace, ids.dataset
            ),
            json!({"accessLevel": "View"}),
            "dataset",
            Route::DatasetsGenerateTokenInGroup,
        ),
        (
            "/v1.0/myorg/GenerateToken".to_owned(),
            json!({"reports": [{"id": ids.rls_report, "allowEdit": true}], "datasets": [{"id": ids.rls_dataset, "xmlaPermissions": "ReadOnly"}], "identities": rls_identity, "targetWorkspaces": [{"id": ids.workspace}]}),
            "report",
            Route::EmbedTokenGenerateToken,
        ),
    ];
    for (path, body, kind, route) in cases {
        let reply = post_json(emulator.addr(), &path, &token, &body);
        assert_eq!(
            reply.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_request_id(&reply);
        let embed = reply.json();
        assert!(embed["@odata.context"].is_string());
        let token_id = embed["tokenId"].as_str().unwrap();
        let minted = emulator.minted_token(token_id).unwrap();
        assert_eq!(minted.operation, route.name());
        assert_eq!(minted.resources[0].kind, kind);
        let seen = emulator.introspect(embed["token"].as_str().unwrap());
        assert!(seen.valid, "{seen:?}");
        assert_eq!(seen.token.unwrap().token_id, token_id);
        // Over HTTP too.
        let control = send(
            emulator.addr(),
            "GET",
            &format!("/_emulator/tokens/{token_id}"),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(control.json()["tokenId"], token_id);
    }
    let stats = emulator.stats();
    assert_eq!(stats.minted, 7);
    assert_eq!(emulator.generate_token_requests(), 7);
    assert_eq!(stats.requests["Reports_GenerateTokenInGroup"], 2);
    let minted = emulator.introspect("EMU1.forged.sig");
    assert!(!minted.valid && minted.reason.unwrap().contains("not an embed token"));
}

#[test]
fn identities_and_access_are_remembered() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let reply = post_json(
        emulator.addr(),
        &report_path(&ids.workspace, &ids.rls_report),
        &token,
        &json!({"accessLevel": "Edit", "identities": [{"username": "john@contoso.com", "roles": ["Region"], "datasets": [ids.rls_dataset], "customData": "cd", "identityBlob": {"value": "secret-blob"}}]}),
    );
    let minted = emulator
        .minted_token(reply.json()["tokenId"].as_str().unwrap())
        .unwrap();
    assert_eq!(minted.access_level.as_deref(), Some("Edit"));
    assert!(minted.resources[0].editable);
    let identity = &minted.identities[0];
    assert_eq!(identity.username.as_deref(), Some("john@contoso.com"));
    assert_eq!(identity.roles, ["Region"]);
    assert!(identity.has_identity_blob);
    assert!(!serde_json::to_string(&minted).unwrap().contains("secret-blob"));
}

#[test]
fn expiration_is_the_earlier_of_bearer_and_lifetime() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let path = report_path(&ids.workspace, &ids.report);
    let before = SystemTime::now();
    let short_bearer = emulator
        .issue_access_token(&ids.client_id, Duration::from_secs(120))
        .unwrap();
    let reply = post_json(
        emulator.addr(),
        &path,
        &short_bearer,
        &json!({"accessLevel": "View"}),
    );
    let expiration = rfc3339(reply.json()["expiration"].as_str().unwrap());
    assert!(
        expiration <= before + Duration::from_secs(121) && expiration >= before + Duration::from_secs(118)
    );

    let bearer = sign_in(&emulator);
    let reply = post_json(
        emulator.addr(),
        &path,
        &bearer,
        &json!({"accessLevel": "View", "lifetimeInMinutes": 10}),
    );
    let expiration = rfc3339(reply.json()["expiration"].as_str().unwrap());
    assert!(
        expiration <= before + Duration::from_secs(601) && expiration >= before + Duration::from_secs(598)
    );

    let reply = post_json(
        emulator.addr(),
        &path,
        &short_bearer,
        &json!({"accessLevel": "View", "lifetimeInMinutes": 10}),
    );
    let expiration = rfc3339(reply.json()["expiration"].as_str().unwrap());
    assert!(
        expiration <= before + Duration::from_secs(121),
        "lifetimeInMinutes cannot extend"
    );
    post_json(
        emulator.addr(),
        &path,
        &bearer,
        &json!({"accessLevel": "View", "lifetimeInMinutes": -1}),
    )
    .assert_error(
        400,
        "InvalidRequest",
        "lifetimeInMinutes must be a positive integer",
    );
}

#[test]
fn dataset_ids_are_percent_decoded() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let upper = ids.dataset.to_uppercase().replace('-', "%2D");
    let reply = post_json(
        emulator.addr(),
        &format!(
            "/v1.0/myorg/groups/{}/datasets/{upper}/GenerateToken",
            ids.workspace
        ),
        &token,
        &json!({"accessLevel": "View"}),
    );
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
}

#[test]
fn profiles_are_recorded_and_a_repeated_header_refused() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let auth = format!("Bearer {}", sign_in(&emulator));
    let profile = "a4df5235-6f18-4141-9e99-0c3512f41306";
    let path = report_path(&ids.workspace, &ids.report);
    let body = br#"{"accessLevel":"View"}"#;
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("X-PowerBI-Profile-Id", profile),
    ];
    let reply = send(emulator.addr(), "POST", &path, &headers, body).unwrap();
    let minted = emulator
        .minted_token(reply.json()["tokenId"].as_str().unwrap())
        .unwrap();
    assert_eq!(minted.profile_id.as_deref(), Some(profile));
    headers.push(("X-PowerBI-Profile-Id", profile));
    let reply = send(emulator.addr(), "POST", &path, &headers, body).unwrap();
    reply.assert_pbi_error(401, "PowerBINotAuthorizedException");
}

#[test]
fn unknown_routes_answer_404_with_a_request_id() {
    let emulator = Emulator::start().unwrap();
    let reply = send(
        emulator.addr(),
        "POST",
        "/v1.0/myorg/reports/x/GenerateToken",
        &[],
        b"",
    )
    .unwrap();
    reply.assert_error(
        404,
        "NoSuchRoute",
        "No route matches POST /v1.0/myorg/reports/x/GenerateToken",
    );
}

#[test]
fn discovery_documents_name_the_endpoints_and_keys_that_sign_tokens() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    // URLs name the host the client asked for: this test client sends `Host: 127.0.0.1`.
    let base = "http://127.0.0.1";
    let get = |path: &str| send(emulator.addr(), "GET", path, &[], b"").unwrap();

    let own = get(&format!(
        "/{}/v2.0/.well-known/openid-configuration",
        "contoso-emulator.onmicrosoft.com"
    ));
    assert_eq!(own.status, 200);
    let doc = own.json();
    let tenant = &ids.tenant;
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/{tenant}/oauth2/v2.0/token")
    );
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/{tenant}/oauth2/v2.0/authorize")
    );
    assert_eq!(doc["issuer"], format!("{base}/{tenant}/v2.0"));
    assert_eq!(doc["jwks_uri"], format!("{base}/{tenant}/discovery/v2.0/keys"));
    let common = get("/common/v2.0/.well-known/openid-configuration").json();
    assert_eq!(common["issuer"], format!("{base}/{{tenantid}}/v2.0"));

    let unknown = get("/other.onmicrosoft.com/v2.0/.well-known/openid-configuration");
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error"], "invalid_tenant");
    assert_eq!(unknown.json()["error_codes"], json!([90_002]));

    let keys = get(&format!("/{tenant}/discovery/v2.0/keys")).json();
    let token = sign_in(&emulator);
    let (header, _) = jwt_parts(&token);
    let key = &keys["keys"][0];
    assert_eq!(key["kid"], header["kid"]);
    assert_eq!(
        (key["kty"].as_str(), key["use"].as_str()),
        (Some("RSA"), Some("sig"))
    );
    assert_eq!(emulator.requests(Route::OpenIdConfiguration), 3);
    assert_eq!(emulator.requests(Route::Jwks), 1);

    let instance = get(
        "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://h/t/oauth2/v2.0/authorize",
    );
    assert_eq!(instance.status, 200);
    assert_eq!(
        instance.json()["tenant_discovery_endpoint"],
        format!("{base}/t/v2.0/.well-known/openid-configuration")
    );
}
