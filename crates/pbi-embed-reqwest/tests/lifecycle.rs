//! Token lifecycle, caching, recovery and safe defaults of the async client, against
//! the emulator on loopback.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pbi_embed_emulator::{Emulator, Fault, FaultRule, Route, RouteMatch};
use pbi_embed_reqwest::{
    AccessToken, BearerToken, Client, ClientBuilder, ErrorKind, ReportToken, RetryPolicy,
};
use pbi_embed_testkit::{Ids, quick_retries};

fn builder(emulator: &Emulator) -> ClientBuilder {
    let (tenant, client_id, secret) = Ids::of(emulator).credentials();
    Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(tenant, client_id, secret)
        .retry_policy(quick_retries())
}

fn report(ids: &Ids) -> ReportToken {
    ReportToken::view(ids.workspace.clone(), ids.report.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_is_reused_then_refreshed_ahead_of_expiry() {
    let emulator = Emulator::builder()
        .access_token_lifetime(Duration::from_secs(3))
        .start()
        .unwrap();
    let ids = Ids::of(&emulator);
    let client = builder(&emulator)
        .access_token_refresh_margin(Duration::from_secs(2))
        .embed_token_cache(None)
        .build()
        .unwrap();
    client.report_token(&report(&ids)).await.unwrap();
    client.report_token(&report(&ids)).await.unwrap();
    assert_eq!(emulator.requests(Route::EntraToken), 1, "reused while fresh");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.report_token(&report(&ids)).await.unwrap();
    assert_eq!(
        emulator.requests(Route::EntraToken),
        2,
        "renewed inside the margin, before expiry"
    );
    assert_eq!(emulator.generate_token_requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sign_in_for_many_threads() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let client = builder(&emulator).embed_token_cache(None).build().unwrap();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (client, op) = (client.clone(), report(&ids));
            tokio::spawn(async move { client.report_token(&op).await.unwrap() })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(emulator.requests(Route::EntraToken), 1);
    assert_eq!(emulator.generate_token_requests(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_share_one_embed_token() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let client = builder(&emulator).build().unwrap();
    let first = client.report_token(&report(&ids)).await.unwrap();
    for _ in 0..9 {
        assert_eq!(
            client.report_token(&report(&ids)).await.unwrap().token_id,
            first.token_id
        );
    }
    assert_eq!(emulator.generate_token_requests(), 1, "sequential");

    let rls =
        ReportToken::view(ids.workspace.clone(), ids.rls_report.clone()).identity(ids.rls_identity("john"));
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (client, op) = (client.clone(), rls.clone());
            tokio::spawn(async move { client.report_token(&op).await.unwrap() })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(
        emulator.generate_token_requests(),
        2,
        "concurrent identical requests share one call"
    );

    let other =
        ReportToken::view(ids.workspace.clone(), ids.rls_report.clone()).identity(ids.rls_identity("iris"));
    client.report_token(&other).await.unwrap();
    assert_eq!(
        emulator.generate_token_requests(),
        3,
        "another identity is another token"
    );
    client.clear_embed_token_cache();
    client.report_token(&report(&ids)).await.unwrap();
    assert_eq!(emulator.generate_token_requests(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_near_expiry_are_not_reused() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let client = builder(&emulator).build().unwrap();
    // A 5-minute token is inside the default 10-minute margin: never served from cache.
    let short = report(&ids).lifetime_in_minutes(5);
    client.report_token(&short).await.unwrap();
    client.report_token(&short).await.unwrap();
    assert_eq!(emulator.generate_token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expired_signs_in_again_once() {
    let emulator = Arc::new(Emulator::start().unwrap());
    let ids = Ids::of(&emulator);
    let calls = Arc::new(AtomicU32::new(0));
    let (source_emulator, source_calls) = (Arc::clone(&emulator), Arc::clone(&calls));
    let client_id = ids.raw.client_id.clone();
    let client = Client::builder()
        .api_base(emulator.base_url())
        .token_source(move || {
            // The first token has already expired, though it claims an hour.
            let lifetime = if source_calls.fetch_add(1, Ordering::SeqCst) == 0 {
                0
            } else {
                3600
            };
            let token = source_emulator
                .issue_access_token(&client_id, Duration::from_secs(lifetime))
                .unwrap();
            async move {
                Ok(BearerToken::new(
                    AccessToken::new(token),
                    SystemTime::now() + Duration::from_secs(3600),
                ))
            }
        })
        .build()
        .unwrap();
    client.report_token(&report(&ids)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(emulator.generate_token_requests(), 2);

    let expired = emulator
        .issue_access_token(&ids.raw.client_id, Duration::ZERO)
        .unwrap();
    let fixed = Client::builder()
        .api_base(emulator.base_url())
        .bearer_token(AccessToken::new(expired))
        .build()
        .unwrap();
    let err = fixed.report_token(&report(&ids)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenExpired);
    assert_eq!(
        emulator.generate_token_requests(),
        3,
        "a fixed token cannot be renewed: no retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let client = builder(&emulator).build().unwrap();
    client.sign_in().await.unwrap();
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Throttle {
            retry_after: "1".into(),
        },
    ));
    let started = Instant::now();
    client.report_token(&report(&ids)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(emulator.generate_token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_times_out_within_the_bound() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let client = builder(&emulator)
        .timeout(Duration::from_millis(300))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    client.sign_in().await.unwrap();
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 3000 },
    ));
    let started = Instant::now();
    let err = client.report_token(&report(&ids)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let location = format!(
        "http://{}/v1.0/myorg/GenerateToken",
        elsewhere.local_addr().unwrap()
    );
    let client = builder(&emulator).build().unwrap();
    for status in [302, 307] {
        emulator.inject(FaultRule::next(
            1,
            RouteMatch::GenerateToken,
            Fault::Redirect {
                status,
                location: location.clone(),
            },
        ));
        let err = client.report_token(&report(&ids)).await.unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert!(err.to_string().contains("not followed"), "{err}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(elsewhere.accept().is_err(), "the other host was never contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_errors_say_what_entra_said() {
    let emulator = Emulator::start().unwrap();
    let (tenant, client_id, _) = Ids::of(&emulator).credentials();
    let client = Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(
            tenant,
            client_id,
            pbi_embed_reqwest::ClientSecret::new("wrong-secret-value"),
        )
        .build()
        .unwrap();
    let err = client.sign_in().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignIn);
    let text = err.to_string();
    assert!(
        text.starts_with("Entra ID sign-in failed with 401 Unauthorized invalid_client: AADSTS7000215"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret-value"));
    assert!(err.service().and_then(|e| e.as_entra()).is_some());
    assert!(!format!("{client:?} {err:?}").contains("wrong-secret-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_checks() {
    let err = Client::builder().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = Client::builder()
        .bearer_token(AccessToken::new("t"))
        .api_base("http://example.com")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("apiBase"), "{err}");
}
