//! The core operations the microbenchmarks time, shared by the criterion bench and the
//! allocation counts of the report.

use std::time::{Duration, SystemTime};

use pbi_embed_core::__bench::{CacheKey, EmbedTokenCache};
use pbi_embed_core::{
    AccessToken, ApiRequest, Cloud, CreateReportToken, DashboardId, DashboardToken, DatasetId, DatasetToken,
    EffectiveIdentity, EmbedToken, EmbedTokenSecret, MultiResourceToken, Operation, Outcome, ReportId,
    ReportToken, RetryPolicy, TileId, TileToken, WorkspaceId, XmlaPermissions, http,
};

/// A realistic embed token length (Power BI's are about a kilobyte of base64).
pub const TOKEN_LEN: usize = 1200;

fn ws() -> WorkspaceId {
    WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap_or_else(|e| panic!("{e}"))
}
fn report() -> ReportId {
    ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap_or_else(|e| panic!("{e}"))
}
fn dataset() -> DatasetId {
    DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229").unwrap_or_else(|e| panic!("{e}"))
}
fn identity() -> EffectiveIdentity {
    EffectiveIdentity::new("john@contoso.com")
        .role("Region")
        .dataset(dataset())
}

/// The fixed inputs of the microbenchmarks.
#[derive(Debug)]
pub struct Inputs {
    /// A bearer token.
    pub access_token: AccessToken,
    /// The public cloud.
    pub cloud: Cloud,
    /// A report request with an RLS identity.
    pub report: ReportToken,
    /// A 200 GenerateToken response with a realistic token.
    pub success: http::Response<Vec<u8>>,
    /// A Power BI 400 about RLS.
    pub error: http::Response<Vec<u8>>,
    /// A 429 with Retry-After.
    pub throttled: http::Response<Vec<u8>>,
    /// A cache holding 1,000 tokens.
    pub cache: EmbedTokenCache,
    /// The key of one of them.
    pub key: CacheKey,
}

impl Inputs {
    /// Builds the inputs.
    #[must_use]
    pub fn new() -> Self {
        let token: String = std::iter::repeat_n('A', TOKEN_LEN).collect();
        let body = format!(
            r#"{{"@odata.context":"https://api.powerbi.com/v1.0/myorg/$metadata#Microsoft.PowerBI.ServiceContracts.Api.V1.EmbedToken","token":"{token}","tokenId":"49ae3742-54c0-4c29-af52-619ff93b5c80","expiration":"2028-07-29T17:58:19Z"}}"#
        );
        let response = |status: u16, headers: &[(&str, &str)], body: &str| {
            let mut builder = http::Response::builder().status(status);
            for (k, v) in headers {
                builder = builder.header(*k, *v);
            }
            builder
                .body(body.as_bytes().to_vec())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let json = ("content-type", "application/json; charset=utf-8");
        let request_id = ("requestid", "49c2e739-d400-429c-860b-856b92f52a4b");
        let now = SystemTime::now();
        let mut cache = EmbedTokenCache::new(2000, Duration::from_secs(600));
        let mut key = None;
        for i in 0..1000 {
            let op = ReportToken::view(ws(), report()).identity(
                EffectiveIdentity::new(format!("user-{i}"))
                    .role("Region")
                    .dataset(dataset()),
            );
            let k = CacheKey::new(&op, None).unwrap_or_else(|e| panic!("{e}"));
            cache.insert(
                k.clone(),
                EmbedToken::new(
                    EmbedTokenSecret::new("t"),
                    format!("id-{i}"),
                    now + Duration::from_secs(3600),
                ),
                now,
            );
            if i == 500 {
                key = Some(k);
            }
        }
        Self {
            access_token: AccessToken::new("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.signature"),
            cloud: Cloud::Public,
            report: ReportToken::view(ws(), report()).identity(identity()),
            success: response(200, &[json, request_id], &body),
            error: response(
                400,
                &[json, request_id],
                r#"{"error":{"code":"InvalidRequest","message":"Creating embed token for accessing dataset cfafbeb1-8037-4d0c-896e-a46fb27ff229 requires effective identity to be provided"}}"#,
            ),
            throttled: response(
                429,
                &[json, ("retry-after", "30")],
                r#"{"error":{"code":"TooManyRequests"}}"#,
            ),
            cache,
            key: key.unwrap_or_else(|| panic!("no key")),
        }
    }
}

impl Default for Inputs {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds and serializes one request of each kind; returns total body bytes.
pub fn build(inputs: &Inputs, kind: &str) -> usize {
    let dash =
        || DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap_or_else(|e| panic!("{e}"));
    let built = match kind {
        "report" => ReportToken::view(ws(), report())
            .identity(identity())
            .authorize(&inputs.cloud, &inputs.access_token)
            .to_http(),
        "create" => CreateReportToken::new(ws(), dataset())
            .authorize(&inputs.cloud, &inputs.access_token)
            .to_http(),
        "dashboard" => DashboardToken::new(ws(), dash())
            .identity(identity())
            .authorize(&inputs.cloud, &inputs.access_token)
            .to_http(),
        "tile" => TileToken::new(
            ws(),
            dash(),
            TileId::parse("312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b").unwrap_or_else(|e| panic!("{e}")),
        )
        .identity(identity())
        .authorize(&inputs.cloud, &inputs.access_token)
        .to_http(),
        "dataset" => DatasetToken::new(ws(), dataset())
            .authorize(&inputs.cloud, &inputs.access_token)
            .to_http(),
        _ => MultiResourceToken::new()
            .report(report())
            .dataset_with_xmla(dataset(), XmlaPermissions::ReadOnly)
            .identity(identity())
            .authorize(&inputs.cloud, &inputs.access_token)
            .to_http(),
    };
    built.map(|r| r.body().len()).unwrap_or_else(|e| panic!("{e}"))
}

/// The request kinds [`build`] knows.
pub const KINDS: [&str; 6] = ["report", "create", "dashboard", "tile", "dataset", "multi"];

/// Parses the success response.
pub fn parse_success(inputs: &Inputs) -> usize {
    let response = inputs.success.clone();
    inputs
        .report
        .authorize(&inputs.cloud, &inputs.access_token)
        .from_http(response)
        .map(|t| t.token_id.len())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Parses the success response without copying it first (the cost of parsing alone).
pub fn parse_success_borrowed(inputs: &Inputs) -> usize {
    let (parts, body) = (inputs.success.status(), inputs.success.body().as_slice());
    let response = http::Response::builder()
        .status(parts)
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .unwrap_or_else(|e| panic!("{e}"));
    inputs
        .report
        .authorize(&inputs.cloud, &inputs.access_token)
        .from_http(response)
        .map(|t| t.token_id.len())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Parses the Power BI error.
pub fn parse_error(inputs: &Inputs) -> usize {
    let response = http::Response::builder()
        .status(inputs.error.status())
        .header("requestid", "49c2e739-d400-429c-860b-856b92f52a4b")
        .body(inputs.error.body().as_slice())
        .unwrap_or_else(|e| panic!("{e}"));
    match inputs
        .report
        .authorize(&inputs.cloud, &inputs.access_token)
        .from_http(response)
    {
        Err(e) => e.code().map_or(0, str::len),
        Ok(_) => 0,
    }
}

/// Classifies a 429 for retry and decides.
pub fn classify(inputs: &Inputs) -> bool {
    let status = inputs.throttled.status();
    let retry_after = pbi_embed_core::RetryAfter::from_headers(inputs.throttled.headers());
    let outcome = Outcome::Status { status, retry_after };
    matches!(
        RetryPolicy::default().decide(outcome, 1, Duration::ZERO, SystemTime::UNIX_EPOCH, 12345),
        pbi_embed_core::RetryDecision::RetryAfter(_)
    )
}

/// Computes a request's cache key and looks it up.
pub fn cache_lookup(inputs: &Inputs, now: SystemTime) -> bool {
    let op = ReportToken::view(ws(), report()).identity(
        EffectiveIdentity::new("user-500")
            .role("Region")
            .dataset(dataset()),
    );
    let key = CacheKey::new(&op, None).unwrap_or_else(|e| panic!("{e}"));
    inputs.cache.get(&key, now).is_some()
}

/// Looks up a ready key.
pub fn cache_get(inputs: &Inputs, now: SystemTime) -> bool {
    inputs.cache.get(&inputs.key, now).is_some()
}
