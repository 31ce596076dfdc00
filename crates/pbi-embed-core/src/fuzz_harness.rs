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

/// Splits input into a status, a few headers and a body: `status(2 bytes)`, then lines of
/// `name: value` up to an empty line, then the body.
fn response(data: &[u8]) -> Option<Response<&[u8]>> {
    let (status, rest) = data.split_at_checked(2)?;
    let status = u16::from_be_bytes([status.first().copied()?, status.get(1).copied()?]) % 600;
    let split = rest.windows(2).position(|w| w == b"\n\n").unwrap_or(0);
    let (head, body) = rest.split_at(split);
    let body = body.get(2..).unwrap_or_default();
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

/// A GenerateToken response of any status, headers and body.
pub fn generate_token_response(data: &[u8]) {
    let Some(response) = response(data) else { return };
    let op = ReportToken::view(
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap_or_else(|_| unreachable!()),
        ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap_or_else(|_| unreachable!()),
    );
    let token = AccessToken::new("t");
    let cloud = Cloud::Public;
    if let Err(error) = op.authorize(&cloud, &token).from_http(response) {
        let _ = (
            error.to_string(),
            format!("{error:?}"),
            error.kind(),
            Outcome::from(&error),
        );
    }
}

/// A Power BI error body, read as such whatever its status.
pub fn power_bi_error(data: &[u8]) {
    for status in [400, 401, 403, 404, 429, 500, 503] {
        if let Ok(response) = Response::builder().status(status).body(data) {
            let error = crate::response::api_error(&response);
            let _ = (error.to_string(), error.kind(), error.code(), error.message());
        }
    }
}

/// An Entra ID token response of any status, headers and body.
pub fn entra_token_response(data: &[u8]) {
    let Some(response) = response(data) else { return };
    let op = ClientCredentials::new(
        TenantId::parse("contoso.onmicrosoft.com").unwrap_or_else(|_| unreachable!()),
        ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap_or_else(|_| unreachable!()),
        ClientSecret::new("s"),
    );
    match op.from_http(response) {
        Ok(token) => {
            let _ = token.into_bearer(SystemTime::UNIX_EPOCH);
        }
        Err(error) => {
            let _ = (
                error.to_string(),
                error.kind(),
                error.as_entra().map(crate::EntraError::aadsts_code),
            );
        }
    }
}

/// A `Retry-After` value, and the decision it leads to.
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
        let _ = RetryPolicy::default().decide(
            outcome,
            1,
            std::time::Duration::from_secs(60),
            SystemTime::UNIX_EPOCH,
            7,
        );
    }
}

/// Ids, tenants, clouds and RFC 3339 dates from any text.
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
        assert!(
            op.path().parse::<http::Uri>().is_ok(),
            "a dataset id made an invalid path"
        );
    }
    let _ = Cloud::Public.with_api_base(&text);
    let _ = text.parse::<Cloud>();
    let _ = crate::embed_token::parse_rfc3339(&text);
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
pub const TARGETS: [(&str, Target); 6] = [
    ("generate_token_response", generate_token_response),
    ("power_bi_error", power_bi_error),
    ("entra_token_response", entra_token_response),
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
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
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
