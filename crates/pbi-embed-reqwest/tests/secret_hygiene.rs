//! Secret hygiene: every log line at TRACE (tracing and `log` records alike) and every
//! error's Display and Debug, across a suite of successes and failures, must be free of
//! the client secret, bearer tokens, embed tokens and identity blobs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use pbi_embed_reqwest::{
    AccessToken, BearerToken, Client, ClientSecret, EffectiveIdentity, IdentityBlob, ReportToken, RetryPolicy,
};
use pbi_embed_testkit::{Ids, quick_retries};

const BLOB: &str = "identity-blob-secret-value-0123456789";
const FIXED_BEARER: &str = "fixed-bearer-secret-value-0123456789";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_line_or_error() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let (tenant, client_id, secret) = ids.credentials();
    let client_secret = secret.secret().to_owned();
    let client = Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(tenant.clone(), client_id.clone(), secret)
        .retry_policy(quick_retries())
        .build()
        .unwrap();
    let mut shown = vec![format!("{client:?}")];
    let record = |shown: &mut Vec<String>,
                  result: Result<pbi_embed_reqwest::EmbedToken, pbi_embed_reqwest::Error>| {
        shown.push(match result {
            Ok(token) => format!("{token:?}"),
            Err(e) => format!("{e} {e:?}"),
        });
    };

    let with_blob = ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
        .identity(ids.rls_identity("john").identity_blob(IdentityBlob::new(BLOB)));
    shown.push(format!("{with_blob:?}"));
    record(&mut shown, client.report_token(&with_blob).await);
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Throttle {
            retry_after: "0".into(),
        },
    ));
    record(
        &mut shown,
        client
            .report_token(&ReportToken::view(ids.workspace.clone(), ids.report.clone()))
            .await,
    );
    emulator.inject(FaultRule::next(
        5,
        RouteMatch::GenerateToken,
        Fault::ServerError { status: 503 },
    ));
    record(
        &mut shown,
        client
            .report_token(
                &ReportToken::view(ids.workspace.clone(), ids.report.clone()).lifetime_in_minutes(20),
            )
            .await,
    );
    record(
        &mut shown,
        client
            .report_token(&ReportToken::view(ids.workspace.clone(), ids.rls_report.clone()))
            .await,
    );
    let invalid = ReportToken::view(ids.workspace.clone(), ids.report.clone())
        .identity(EffectiveIdentity::from_identity_blob(IdentityBlob::new(BLOB)).role("a,b"));
    record(&mut shown, client.report_token(&invalid).await);

    // A rejected bearer token, renewed from a token source.
    let issuer = Arc::new(emulator);
    let source_issuer = Arc::clone(&issuer);
    let raw_client_id = ids.raw.client_id.clone();
    let renewing = Client::builder()
        .api_base(issuer.base_url())
        .token_source(move || {
            let token = source_issuer
                .issue_access_token(&raw_client_id, Duration::ZERO)
                .unwrap();
            async move {
                Ok(BearerToken::new(
                    AccessToken::new(token),
                    SystemTime::now() + Duration::from_secs(600),
                ))
            }
        })
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    record(
        &mut shown,
        renewing
            .report_token(&ReportToken::view(ids.workspace.clone(), ids.report.clone()))
            .await,
    );

    // A fixed bearer token Power BI refuses, and a sign-in with a wrong secret.
    let fixed = Client::builder()
        .api_base(issuer.base_url())
        .bearer_token(AccessToken::new(FIXED_BEARER))
        .build()
        .unwrap();
    shown.push(format!("{fixed:?}"));
    record(
        &mut shown,
        fixed
            .report_token(&ReportToken::view(ids.workspace.clone(), ids.report.clone()))
            .await,
    );
    let wrong = Client::builder()
        .api_base(issuer.base_url())
        .authority_host(issuer.base_url())
        .service_principal(
            tenant,
            client_id,
            ClientSecret::new("wrong-secret-value-0123456789"),
        )
        .build()
        .unwrap();
    record(
        &mut shown,
        wrong
            .report_token(&ReportToken::view(ids.workspace.clone(), ids.report.clone()))
            .await,
    );

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("attempt failed"),
        "the suite logged its failures: {logs}"
    );
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "{logs}");
    let everything = format!("{logs}\n{}", shown.join("\n"));
    for secret in [
        client_secret.as_str(),
        BLOB,
        FIXED_BEARER,
        "wrong-secret-value-0123456789",
        "EMU1.",
    ] {
        assert!(!everything.contains(secret), "{secret:?} leaked:\n{everything}");
    }
}
