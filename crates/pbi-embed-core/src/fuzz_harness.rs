//! Entry points for the fuzz targets in `fuzz/`, and for replaying their seed corpora as
//! ordinary tests. Each takes raw bytes, reads what it needs from them, and must never
//! panic. Not part of the public API: compiled for tests, under `cfg(fuzzing)`, or with
//! the internal `__fuzz` feature the fuzz crate turns on.

#![allow(clippy::panic)] // A broken invariant must crash the fuzzer.

use std::time::SystemTime;

use http::{HeaderValue, Response};

use crate::{
    AccessToken, ApiRequest, ClientCredentials, ClientId, ClientSecret, Cloud, DatasetId, EffectiveIdentity,
    GenerateTokenRequestV2, MultiResourceToken, Operation, Outcome, ReportId, ReportToken, RetryAfter,
    RetryPolicy, TenantId, WorkspaceId, XmlaPermissions,
};

/// The statuses worth a retry, written out here rather than read from the retry policy,
/// so that a change to the policy's list is caught.
const RETRYABLE: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Splits input into a status, a few headers and a body: `status(2 bytes)`, then lines of
/// `name: value` ending in an empty line, then the body. With no headers the input goes
/// on with the empty line (a single `\n`) and the body.
fn response(data: &[u8]) -> Option<Response<&[u8]>> {
    let (status, rest) = data.split_at_checked(2)?;
    let status = u16::from_be_bytes([status.first().copied()?, status.get(1).copied()?]) % 600;
    let (head, body) = match rest.strip_prefix(b"\n") {
        Some(body) => (&[][..], body),
        None => match rest.windows(2).position(|w| w == b"\n\n") {
            Some(split) => (rest.get(..split)?, rest.get(split + 2..)?),
            None => (rest, &[][..]),
        },
    };
    let mut builder = Response::builder().status(status.max(100));
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default();
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            builder = builder.header(name, value);
        }
    }
    builder.body(body).ok()
}

/// A string field of a response's JSON body long enough that finding it elsewhere is no
/// accident, and found nowhere else in the response (a header that repeats it is not
/// the body's secret: errors may quote a Content-Type).
fn secret_field(response: &Response<&[u8]>, name: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(response.body()).ok()?;
    let text = value.get(name)?.as_str()?;
    let in_headers = response
        .headers()
        .values()
        .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(text));
    (text.len() >= 8 && !in_headers).then(|| text.to_owned())
}

/// A JSON body with every copy of `secret` cut out of its texts: what an error shows when
/// the body carries no such secret, so that a secret that is also ordinary text of the
/// error ("Power BI returned", the `[redacted]` marker) is not taken for a leak.
fn without_secret(body: &[u8], secret: &str) -> Option<Vec<u8>> {
    fn cut(value: &mut serde_json::Value, secret: &str) {
        match value {
            serde_json::Value::String(text) => *text = text.replace(secret, ""),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| cut(v, secret)),
            serde_json::Value::Object(map) => {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, mut v)| {
                        cut(&mut v, secret);
                        (key.replace(secret, ""), v)
                    })
                    .collect();
            }
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    cut(&mut value, secret);
    serde_json::to_vec(&value).ok()
}

/// The text a user sees of an error: its Display and Debug.
fn shown(error: &crate::ExchangeError) -> String {
    format!("{error} {error:?}")
}

/// An error's Display and Debug hold no secret of the body it came from, unless the same
/// error without that secret in its body shows the text as well (`baseline`, computed
/// only when the error shows it).
fn assert_not_quoted(
    error: &crate::ExchangeError,
    secret: Option<&String>,
    baseline: impl FnOnce() -> Option<String>,
) {
    if let Some(secret) = secret {
        let shown = shown(error);
        if shown.contains(secret.as_str()) {
            let ordinary = baseline().is_some_and(|b| b.contains(secret.as_str()));
            assert!(ordinary, "a secret of the body is in the error: {shown}");
        }
    }
    assert!(
        !error.to_string().contains('\n'),
        "an error message spans lines: {error}"
    );
}

/// A GenerateToken response of any status, headers and body: success only for 2xx, an
/// error with the response's status otherwise, retried exactly for the retryable
/// statuses, and no token of the body in any error.
pub fn generate_token_response(data: &[u8]) {
    let Some(response) = response(data) else { return };
    let status = response.status();
    let token = secret_field(&response, "token");
    let op = ReportToken::view(
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap_or_else(|_| unreachable!()),
        ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap_or_else(|_| unreachable!()),
    );
    let access = AccessToken::new("t");
    let cloud = Cloud::Public;
    let body = *response.body();
    let baseline = || {
        let body = without_secret(body, token.as_ref()?)?;
        let response = Response::builder().status(status).body(&body[..]).ok()?;
        op.authorize(&cloud, &access)
            .from_http(response)
            .err()
            .map(|e| shown(&e))
    };
    match op.authorize(&cloud, &access).from_http(response) {
        Ok(embed) => {
            assert!(status.is_success(), "{status} read as a token");
            assert!(!embed.token_id.is_empty());
        }
        Err(error) => {
            assert_eq!(error.status(), Some(status), "{error}");
            assert_not_quoted(&error, token.as_ref(), baseline);
            let outcome = Outcome::from(&error);
            if !status.is_success() {
                let retryable = RETRYABLE.contains(&status.as_u16());
                assert_eq!(outcome.is_transient(), retryable, "{status}: {outcome:?}");
            } else {
                assert_eq!(error.kind(), crate::ErrorKind::UnreadableResponse, "{error}");
                assert!(!outcome.is_transient(), "an unreadable success is not retried");
            }
        }
    }
}

/// A Power BI error body, read as such whatever its status: the status kept, every text
/// on one line.
pub fn power_bi_error(data: &[u8]) {
    for status in [400, 401, 403, 404, 429, 500, 503] {
        if let Ok(response) = Response::builder().status(status).body(data) {
            let error = crate::wire::response::api_error(&response);
            assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
            assert_not_quoted(&error, None, || None);
            for text in [error.code(), error.message()].into_iter().flatten() {
                assert!(!text.chars().any(char::is_control), "{text:?}");
            }
        }
    }
}

/// An Entra ID token response of any status, headers and body: a token only from a 2xx,
/// with a believable lifetime; an error with the status otherwise; never the access
/// token in an error.
pub fn entra_token_response(data: &[u8]) {
    let Some(response) = response(data) else { return };
    let status = response.status();
    let access = secret_field(&response, "access_token");
    let op = ClientCredentials::new(
        TenantId::parse("contoso.onmicrosoft.com").unwrap_or_else(|_| unreachable!()),
        ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap_or_else(|_| unreachable!()),
        ClientSecret::new("s"),
    );
    let body = *response.body();
    let baseline = || {
        let body = without_secret(body, access.as_ref()?)?;
        let response = Response::builder().status(status).body(&body[..]).ok()?;
        op.from_http(response).err().map(|e| shown(&e))
    };
    match op.from_http(response) {
        Ok(token) => {
            assert!(status.is_success(), "{status} read as a token");
            assert!(token.expires_in <= std::time::Duration::from_secs(24 * 60 * 60));
            let _ = token.into_bearer(SystemTime::UNIX_EPOCH);
        }
        Err(error) => {
            assert_eq!(error.status(), Some(status), "{error}");
            assert_not_quoted(&error, access.as_ref(), baseline);
            if !status.is_success() {
                assert!(error.as_entra().is_some(), "{error}");
                let retryable = RETRYABLE.contains(&status.as_u16());
                assert_eq!(Outcome::from(&error).is_transient(), retryable, "{status}");
            }
            let _ = error.as_entra().map(crate::EntraError::aadsts_code);
        }
    }
}

/// Item metadata of any status, headers and body: success only for 2xx, and then an
/// http(s) embed URL; an error with the status otherwise.
pub fn metadata_response(data: &[u8]) {
    let Some(response) = response(data) else { return };
    let status = response.status();
    let workspace =
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap_or_else(|_| unreachable!());
    let report = ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap_or_else(|_| unreachable!());
    let dashboard =
        crate::DashboardId::parse("69ffaa6c-b36d-4d01-96f5-1ed67c64d4af").unwrap_or_else(|_| unreachable!());
    let tile =
        crate::TileId::parse("312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b").unwrap_or_else(|_| unreachable!());
    let dataset = DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229").unwrap_or_else(|_| unreachable!());
    let (access, cloud) = (AccessToken::new("t"), Cloud::Public);
    let copy = || {
        let mut builder = Response::builder().status(status);
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        builder.body(*response.body()).ok()
    };
    let check_url = |url: &str| {
        let scheme = url::Url::parse(url)
            .map(|u| u.scheme().to_owned())
            .unwrap_or_default();
        assert!(scheme == "https" || scheme == "http", "embed URL {url:?}");
    };
    let check = |result: Result<Option<String>, crate::ExchangeError>| match result {
        Ok(url) => {
            assert!(status.is_success(), "{status} read as metadata");
            if let Some(url) = url {
                check_url(&url);
            }
        }
        Err(error) => {
            assert_eq!(error.status(), Some(status), "{error}");
            assert_not_quoted(&error, None, || None);
        }
    };
    if let Some(r) = copy() {
        let op = crate::GetReportInGroup::new(workspace.clone(), report);
        check(
            op.authorize(&cloud, &access)
                .from_http(r)
                .map(|m| Some(m.embed_url)),
        );
    }
    if let Some(r) = copy() {
        let op = crate::GetDashboardInGroup::new(workspace.clone(), dashboard.clone());
        check(
            op.authorize(&cloud, &access)
                .from_http(r)
                .map(|m| Some(m.embed_url)),
        );
    }
    if let Some(r) = copy() {
        let op = crate::GetTileInGroup::new(workspace.clone(), dashboard, tile);
        check(
            op.authorize(&cloud, &access)
                .from_http(r)
                .map(|m| Some(m.embed_url)),
        );
    }
    if let Some(r) = copy() {
        let op = crate::GetDatasetInGroup::new(workspace, dataset);
        check(op.authorize(&cloud, &access).from_http(r).map(|_| None));
    }
}

/// A `Retry-After` value, and the decision it leads to: never a wait longer than the
/// policy takes, nor past the deadline.
pub fn retry_after(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let parsed = RetryAfter::parse(&value);
    if let Some(retry_after) = parsed {
        let _ = retry_after.delay_from(SystemTime::UNIX_EPOCH);
        let outcome = Outcome::Status {
            status: http::StatusCode::TOO_MANY_REQUESTS,
            retry_after: parsed,
        };
        let policy = RetryPolicy::default();
        let remaining = std::time::Duration::from_secs(60);
        if let crate::RetryDecision::RetryAfter(delay) =
            policy.decide(outcome, 1, remaining, SystemTime::UNIX_EPOCH, 7)
        {
            assert!(
                delay
                    <= policy
                        .longest_retry_after()
                        .max(std::time::Duration::from_secs(8))
            );
            assert!(delay < remaining);
        }
    }
}

/// Ids, tenants, clouds and RFC 3339 dates from any text. A dataset id that parses never
/// moves its request off its route: the path, normalized as a URL, is the same path,
/// with the id as exactly one segment.
pub fn ids(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = ReportId::parse(&text);
    let _ = WorkspaceId::parse(&text);
    let _ = TenantId::parse(&text);
    if let Ok(dataset) = DatasetId::parse(&text) {
        let op = crate::DatasetToken::new(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap_or_else(|_| unreachable!()),
            dataset,
        );
        let path = op.path();
        let url = url::Url::parse(&format!("https://api.powerbi.com{path}"))
            .unwrap_or_else(|e| panic!("a dataset id made an invalid path {path:?}: {e}"));
        assert_eq!(url.path(), path, "normalizing the URL changed the route");
        assert_eq!(url.query(), None, "a dataset id made a query");
        assert_eq!(url.fragment(), None, "a dataset id made a fragment");
        let segments: Vec<&str> = url.path_segments().map(Iterator::collect).unwrap_or_default();
        assert_eq!(segments.len(), 7, "{path}");
        assert_eq!(segments.get(6), Some(&"GenerateToken"), "{path}");
    }
    if let Ok(cloud) = Cloud::Public.with_api_base(&text) {
        assert!(cloud.api_base().starts_with("https://") || cloud.api_base().starts_with("http://"));
    }
    // A URL with user info is never quoted as given, only in its shown form, which drops
    // the user info (text that is also elsewhere in the URL may stay, as that part).
    if let Some((_, rest)) = text.split_once("://")
        && let Some(at) = rest.split(['/', '?', '#']).next().and_then(|a| a.rfind('@'))
        && let Some(user_info) = rest.get(..at).filter(|u| !u.is_empty())
    {
        // (User info that is the marker itself shows as itself.)
        let unchanged = user_info == "[user info removed]";
        let shown = crate::wire::cloud::without_user_info(&text).replace("[user info removed]", "");
        if text.matches(user_info).count() == 1 && !unchanged {
            assert!(!shown.contains(user_info), "user info shown: {shown:?}");
        }
        let errors = [
            Cloud::Public.with_api_base(&text).err(),
            Cloud::Public.with_authority_host(&text).err(),
        ];
        for error in errors.into_iter().flatten().filter(|_| !unchanged) {
            let message = error.to_string();
            assert!(
                !message.contains(&format!("{text:?}")),
                "the URL is quoted as given: {message}"
            );
        }
    }
    let _ = text.parse::<Cloud>();
    let _ = crate::api::embed_token::parse_rfc3339(&text);
}

/// Requests built from arbitrary input: building never panics, and a request that
/// validates has a body that is JSON the request type reads back unchanged.
pub fn build_request(data: &[u8]) {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next().unwrap_or(0);
    let text = |n: u8, data: &[u8], at: usize| -> String {
        let start = at.min(data.len());
        let end = (start + usize::from(n)).min(data.len());
        String::from_utf8_lossy(data.get(start..end).unwrap_or_default()).into_owned()
    };
    let mut op = MultiResourceToken::new();
    let reports = next() % 4;
    for i in 0..reports {
        let id = format!(
            "00000000-0000-4000-8000-{:012x}",
            u64::from(next()) + u64::from(i) * 256
        );
        if let Ok(report) = ReportId::parse(&id) {
            op = if next() % 2 == 0 {
                op.report(report)
            } else {
                op.editable_report(report)
            };
        }
    }
    let datasets = next() % 4;
    for _ in 0..datasets {
        let n = next();
        let at = usize::from(next());
        if let Ok(dataset) = DatasetId::parse(&text(n % 40, data, at)) {
            op = match next() % 3 {
                0 => op.dataset(dataset),
                1 => op.dataset_with_xmla(dataset, XmlaPermissions::ReadOnly),
                _ => op.dataset_with_xmla(dataset, XmlaPermissions::Other(text(5, data, at))),
            };
        }
    }
    let identities = next() % 3;
    for _ in 0..identities {
        let (n, at) = (next(), usize::from(next()));
        let mut identity = EffectiveIdentity::new(text(n, data, at));
        for _ in 0..next() % 4 {
            let (n, at) = (next(), usize::from(next()));
            identity = identity.role(text(n % 60, data, at));
        }
        if let Ok(dataset) = DatasetId::parse(&text(next() % 40, data, usize::from(next()))) {
            identity = identity.dataset(dataset);
        }
        if next() % 4 == 0 {
            identity =
                identity.identity_blob(crate::IdentityBlob::new(text(next(), data, usize::from(next()))));
        }
        op = op.identity(identity);
    }
    if next() % 2 == 0 {
        op = op.lifetime_in_minutes(u32::from(next()));
    }
    let token = AccessToken::new(text(next() % 64, data, usize::from(next())));
    let cloud = Cloud::Public;
    let Ok(request) = op.authorize(&cloud, &token).to_http() else {
        return;
    };
    let parsed: GenerateTokenRequestV2 = serde_json::from_slice(request.body())
        .unwrap_or_else(|e| panic!("the body is not the spec's JSON: {e}"));
    let again = serde_json::to_vec(&parsed).unwrap_or_default();
    assert_eq!(&again, request.body(), "the body does not round-trip");
}

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every entry point, by the name of its fuzz target and seed folder.
pub const TARGETS: [(&str, Target); 7] = [
    ("generate_token_response", generate_token_response),
    ("power_bi_error", power_bi_error),
    ("entra_token_response", entra_token_response),
    ("metadata_response", metadata_response),
    ("retry_after", retry_after),
    ("ids", ids),
    ("build_request", build_request),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays the committed seed corpora of every fuzz target through the same entry
    /// points the fuzzer calls, so CI exercises them even without a nightly toolchain.
    #[test]
    fn every_fuzz_seed_replays_without_panicking() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        if !root.join("fuzz/Cargo.toml").exists() {
            // A packaged crate: the seeds live in the repository's `fuzz/`, not in it.
            eprintln!("no fuzz/ beside this crate (a packaged copy): seeds not replayed");
            return;
        }
        let seeds = root.join("fuzz/seeds");
        for (target, run) in super::TARGETS {
            let dir = seeds.join(target);
            let mut count = 0;
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.unwrap().path();
                run(&std::fs::read(&path).unwrap());
                count += 1;
            }
            assert!(count > 0, "no seeds for {target}");
        }
    }
}
