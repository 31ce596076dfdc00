//! Golden tests: the exact requests each operation builds, and what canned responses of
//! every documented kind parse into.

use std::time::{Duration, SystemTime};

use pbi_embed_core::{
    AccessToken, ApiRequest, ClientCredentials, ClientId, ClientSecret, Cloud, CreateReportToken,
    DashboardId, DashboardToken, DatasetId, DatasetToken, EffectiveIdentity, ErrorKind, ExchangeError,
    HttpRequest, MultiResourceToken, Operation, ProfileId, ReportId, ReportToken, RetryAfter, TenantId,
    TileId, TileToken, WorkspaceId, http,
};

const GROUP: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
const REPORT: &str = "5b218778-e7a5-4d73-8187-f10824047715";
const DS: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";
const PROFILE: &str = "a4df5235-6f18-4141-9e99-0c3512f41306";

fn ws() -> WorkspaceId {
    WorkspaceId::parse(GROUP).unwrap()
}
fn ds() -> DatasetId {
    DatasetId::parse(DS).unwrap()
}
fn identity() -> EffectiveIdentity {
    EffectiveIdentity::new("john@contoso.com")
        .role("sales")
        .dataset(ds())
}

/// Builds the request with a bearer token, in the given cloud, as a profile.
fn build(op: &impl ApiRequest, cloud: &Cloud) -> HttpRequest {
    let token = AccessToken::new("eyJ0eXAi.token");
    let profile = ProfileId::parse(PROFILE).unwrap();
    op.authorize(cloud, &token)
        .profile(Some(&profile))
        .to_http()
        .unwrap()
}

fn headers(request: &HttpRequest) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect()
}

fn assert_golden(request: &HttpRequest, uri: &str, body: &str) {
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), uri);
    assert_eq!(
        headers(request),
        [
            ("accept", "application/json"),
            ("authorization", "Bearer eyJ0eXAi.token"),
            ("content-type", "application/json; charset=utf-8"),
            ("x-powerbi-profile-id", PROFILE),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert!(request.headers()["authorization"].is_sensitive());
    assert_eq!(std::str::from_utf8(request.body()).unwrap(), body);
}

#[test]
fn report_view_with_identity() {
    let op = ReportToken::view(ws(), ReportId::parse(REPORT).unwrap())
        .identity(identity())
        .lifetime_in_minutes(30);
    assert_golden(
        &build(&op, &Cloud::Public),
        "https://api.powerbi.com/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/reports/5b218778-e7a5-4d73-8187-f10824047715/GenerateToken",
        r#"{"accessLevel":"View","identities":[{"username":"john@contoso.com","roles":["sales"],"datasets":["cfafbeb1-8037-4d0c-896e-a46fb27ff229"]}],"lifetimeInMinutes":30}"#,
    );
}

#[test]
fn report_edit_save_as_in_gcc() {
    let op = ReportToken::edit(ws(), ReportId::parse(REPORT).unwrap()).allow_save_as(true);
    assert_golden(
        &build(&op, &Cloud::UsGov),
        "https://api.powerbigov.us/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/reports/5b218778-e7a5-4d73-8187-f10824047715/GenerateToken",
        r#"{"accessLevel":"Edit","allowSaveAs":true}"#,
    );
}

#[test]
fn create_report() {
    let op = CreateReportToken::new(ws(), ds()).allow_save_as(false);
    assert_golden(
        &build(&op, &Cloud::China),
        "https://api.powerbi.cn/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/reports/GenerateToken",
        r#"{"accessLevel":"Create","datasetId":"cfafbeb1-8037-4d0c-896e-a46fb27ff229","allowSaveAs":false}"#,
    );
}

#[test]
fn dashboard_tile_dataset() {
    let dash = DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap();
    assert_golden(
        &build(
            &DashboardToken::new(ws(), dash.clone()).identities([identity(), identity()]),
            &Cloud::UsGovHigh,
        ),
        "https://api.high.powerbigov.us/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/dashboards/69ffaa6c-b36d-4d01-96f5-1ed67c64d4af/GenerateToken",
        r#"{"accessLevel":"View","identities":[{"username":"john@contoso.com","roles":["sales"],"datasets":["cfafbeb1-8037-4d0c-896e-a46fb27ff229"]},{"username":"john@contoso.com","roles":["sales"],"datasets":["cfafbeb1-8037-4d0c-896e-a46fb27ff229"]}]}"#,
    );
    let tile = TileId::parse("312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b").unwrap();
    assert_golden(
        &build(&TileToken::new(ws(), dash, tile), &Cloud::UsGovDod),
        "https://api.mil.powerbigov.us/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/dashboards/69ffaa6c-b36d-4d01-96f5-1ed67c64d4af/tiles/312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b/GenerateToken",
        r#"{"accessLevel":"View"}"#,
    );
    let local = Cloud::Public
        .with_api_base("http://127.0.0.1:9999/prefix/")
        .unwrap();
    assert_golden(
        &build(&DatasetToken::new(ws(), ds()), &local),
        "http://127.0.0.1:9999/prefix/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48/datasets/cfafbeb1-8037-4d0c-896e-a46fb27ff229/GenerateToken",
        r#"{"accessLevel":"View"}"#,
    );
}

#[test]
fn multi_resource() {
    let op = MultiResourceToken::new()
        .dataset(ds())
        .editable_report(ReportId::parse(REPORT).unwrap())
        .target_workspace(ws())
        .identity(identity())
        .lifetime_in_minutes(10);
    assert_golden(
        &build(&op, &Cloud::Public),
        "https://api.powerbi.com/v1.0/myorg/GenerateToken",
        r#"{"datasets":[{"id":"cfafbeb1-8037-4d0c-896e-a46fb27ff229"}],"reports":[{"id":"5b218778-e7a5-4d73-8187-f10824047715","allowEdit":true}],"targetWorkspaces":[{"id":"f089354e-8366-4e18-aea3-4cb4a3a50b48"}],"identities":[{"username":"john@contoso.com","roles":["sales"],"datasets":["cfafbeb1-8037-4d0c-896e-a46fb27ff229"]}],"lifetimeInMinutes":10}"#,
    );
}

#[test]
fn no_profile_header_unless_asked() {
    let op = DatasetToken::new(ws(), ds());
    let token = AccessToken::new("t");
    let request = op.authorize(&Cloud::Public, &token).to_http().unwrap();
    assert!(request.headers().get("x-powerbi-profile-id").is_none());
}

#[test]
fn entra_form() {
    let op = ClientCredentials::new(
        TenantId::parse("contoso.onmicrosoft.com").unwrap(),
        ClientId::parse("00000000-0000-0000-0000-00000000000a").unwrap(),
        ClientSecret::new("a b+c/d=e&f"),
    )
    .cloud(Cloud::UsGovHigh);
    let request = op.to_http().unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(
        request.uri(),
        "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(
        headers(&request),
        [
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        "client_id=00000000-0000-0000-0000-00000000000a\
         &scope=https%3A%2F%2Fhigh.analysis.usgovcloudapi.net%2Fpowerbi%2Fapi%2F.default\
         &client_secret=a+b%2Bc%2Fd%3De%26f&grant_type=client_credentials"
    );
}

// ---- canned responses -------------------------------------------------------------

fn respond(
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<pbi_embed_core::EmbedToken, ExchangeError> {
    let op = DatasetToken::new(ws(), ds());
    let token = AccessToken::new("t");
    let mut builder = http::Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    op.authorize(&Cloud::Public, &token)
        .from_http(builder.body(body).unwrap())
}

const REQUEST_ID: (&str, &str) = ("RequestId", "49c2e739-d400-429c-860b-856b92f52a4b");

/// Each body is one Power BI sent, as captured in public sources: `source` cites the row
/// of `shared/reference/powerbi-api.md` §3 (and that row's source) it is copied from, so
/// that the core's reading of an error rests on what Power BI says, not on what the
/// emulator was written to say.
#[test]
fn canned_errors() {
    struct Case {
        source: &'static str,
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        kind: ErrorKind,
        display: &'static str,
    }
    let cases = [
        Case {
            source: "§3.1: verbatim 401 body and RequestId header, S16 powerbi-docs#1109",
            status: 401,
            headers: &[REQUEST_ID],
            body: r#"{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException","parameters":{},"details":[],"exceptionCulprit":1}}}"#,
            kind: ErrorKind::NotAuthorized,
            display: "Power BI returned 401 Unauthorized PowerBINotAuthorizedException (RequestId 49c2e739-d400-429c-860b-856b92f52a4b)",
        },
        Case {
            source: "§3.2 row 1: S16 powerbi-docs#3306 (user-reported message), S19 (code InvalidRequest)",
            status: 400,
            headers: &[REQUEST_ID],
            body: r#"{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset cfafbeb1-8037-4d0c-896e-a46fb27ff229 requires effective identity to be provided"}}"#,
            kind: ErrorKind::RlsIdentity,
            display: "Power BI returned 400 Bad Request InvalidRequest: Creating embed token for accessing dataset cfafbeb1-8037-4d0c-896e-a46fb27ff229 requires effective identity to be provided (RequestId 49c2e739-d400-429c-860b-856b92f52a4b)",
        },
        Case {
            source: "§3.2 row 2: S19 (code and substring the Python client checks)",
            status: 400,
            headers: &[REQUEST_ID],
            body: r#"{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset x shouldn't have effective identity"}}"#,
            kind: ErrorKind::RlsIdentity,
            display: "Power BI returned 400 Bad Request InvalidRequest: Creating embed token for accessing dataset x shouldn't have effective identity (RequestId 49c2e739-d400-429c-860b-856b92f52a4b)",
        },
        Case {
            source: "§3.2 row 4: S16 powerbi-docs#2100",
            status: 400,
            headers: &[],
            body: r#"{"error":{"code":"InvalidRequest","message":"Creating embed token for paginated report is only supported with workspaces v2"}}"#,
            kind: ErrorKind::BadRequest,
            display: "Power BI returned 400 Bad Request InvalidRequest: Creating embed token for paginated report is only supported with workspaces v2 (no RequestId)",
        },
        Case {
            source: "§3.1: verbatim 403 body, S6",
            status: 403,
            headers: &[REQUEST_ID],
            body: r#"{"error":{"code":"TokenExpired","message":"Access token has expired, resubmit with a new access token"}}"#,
            kind: ErrorKind::TokenExpired,
            display: "Power BI returned 403 Forbidden TokenExpired: Access token has expired, resubmit with a new access token (RequestId 49c2e739-d400-429c-860b-856b92f52a4b)",
        },
        Case {
            source: "§3.2 403 row: S6 (no body given for quota, membership and permission refusals)",
            status: 403,
            headers: &[],
            body: "",
            kind: ErrorKind::Forbidden,
            display: "Power BI returned 403 Forbidden (no RequestId)",
        },
        Case {
            source: "§3.2 404 row: S6 (code); body in the pbi.error shape of the verbatim 401 of §3.1",
            status: 404,
            headers: &[REQUEST_ID],
            body: r#"{"error":{"code":"PowerBIEntityNotFound","pbi.error":{"code":"PowerBIEntityNotFound","parameters":{},"details":[],"exceptionCulprit":1}}}"#,
            kind: ErrorKind::NotFound,
            display: "Power BI returned 404 Not Found PowerBIEntityNotFound (RequestId 49c2e739-d400-429c-860b-856b92f52a4b)",
        },
        Case {
            source: "§3.2 429 row: S17 (message observed with Retry-After in seconds)",
            status: 429,
            headers: &[("Retry-After", "30")],
            body: r#"{"message":"You have exceeded the amount of requests allowed in the current time frame and further requests will fail."}"#,
            kind: ErrorKind::Throttled,
            display: "Power BI returned 429 Too Many Requests: You have exceeded the amount of requests allowed in the current time frame and further requests will fail. (no RequestId)",
        },
        Case {
            source: "§3.1: non-JSON 500 body, S6",
            status: 500,
            headers: &[REQUEST_ID],
            body: "An error has occurred",
            kind: ErrorKind::ServerError,
            display: "Power BI returned 500 Internal Server Error: An error has occurred (RequestId 49c2e739-d400-429c-860b-856b92f52a4b)",
        },
        Case {
            source: "not from Power BI: a redirect (§3.2 307 row, S6) to another host",
            status: 302,
            headers: &[("Location", "https://evil.example/steal?x=1")],
            body: "",
            kind: ErrorKind::UnreadableResponse,
            display: "Power BI returned 302 Found (a redirect to https://evil.example/steal, not followed) (no RequestId)",
        },
        Case {
            source: "not from Power BI: an HTML page from a proxy (§3.1 non-JSON bodies)",
            status: 200,
            headers: &[("Content-Type", "text/html"), REQUEST_ID],
            body: "<html>token</html>",
            kind: ErrorKind::UnreadableResponse,
            display: "could not read the EmbedToken response (200 OK): expected a JSON body, got Content-Type \"text/html\" (RequestId 49c2e739-d400-429c-860b-856b92f52a4b)",
        },
        Case {
            source: "not from Power BI: a malformed success",
            status: 200,
            headers: &[],
            body: r#"{"token":"SECRET-EMBED","tokenId":"x","expiration":"later"}"#,
            kind: ErrorKind::UnreadableResponse,
            display: "could not read the EmbedToken response (200 OK): the field `expiration` is not an RFC 3339 date-time",
        },
    ];
    for case in cases {
        let err = respond(case.status, case.headers, case.body).unwrap_err();
        assert_eq!(err.kind(), case.kind, "{}: {err}", case.source);
        assert_eq!(err.to_string(), case.display, "{}", case.source);
        assert_eq!(err.status().map(|s| s.as_u16()), Some(case.status));
        assert!(err.was_sent());
    }
}

#[test]
fn error_accessors() {
    let err = respond(
        429,
        &[("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"), REQUEST_ID],
        r#"{"error":{"code":"TooManyRequests","message":"slow down","pbi.error":{"code":"X","parameters":{"a":"b"},"details":[{"code":"DM_ErrorDetailNameCode_UnderlyingHResult","detail":{"type":1,"value":"-2147467259"}}],"exceptionCulprit":1}}}"#,
    )
    .unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequests"));
    assert_eq!(err.message(), Some("slow down"));
    assert_eq!(err.request_id(), Some("49c2e739-d400-429c-860b-856b92f52a4b"));
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    assert_eq!(err.retry_after(), Some(RetryAfter::At(at)));
    let pbi = err.as_api().unwrap().pbi_error().unwrap();
    assert_eq!(pbi.parameters, [("a".to_owned(), "b".to_owned())]);
    assert_eq!(pbi.details[0].value.as_deref(), Some("-2147467259"));
    assert_eq!(pbi.details[0].detail_type, Some(1));
}

#[test]
fn quota_is_a_forbidden_with_a_hint() {
    let err = respond(
        403,
        &[],
        r#"{"error":{"code":"Forbidden","message":"The user has exceeded the amount of embed token that can be generated on a shared capacity."}}"#,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let api = err.as_api().unwrap();
    assert!(api.is_quota_exceeded());
    assert!(api.hint().unwrap().contains("capacity"));
}

#[test]
fn invalid_input_is_reported_before_sending() {
    let token = AccessToken::new("t");
    let op = ReportToken::view(ws(), ReportId::parse(REPORT).unwrap())
        .identity(EffectiveIdentity::new("u").role("a,b").dataset(ds()));
    let err = op.authorize(&Cloud::Public, &token).to_http().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.was_sent());
    assert_eq!(
        err.to_string(),
        "invalid identities[0].roles[0]: \"a,b\" contains a comma (nothing was sent)"
    );
    let bad_token = AccessToken::new("line\nbreak");
    let err = DatasetToken::new(ws(), ds())
        .authorize(&Cloud::Public, &bad_token)
        .to_http()
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid accessToken"), "{err}");
    assert!(!err.to_string().contains("line"), "{err}");
}
