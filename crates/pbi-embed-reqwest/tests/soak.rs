//! Concurrency soak: 1,000 concurrent token requests against an emulator that answers
//! 20 % of GenerateToken calls with 503 and 5 % with 429. Every call succeeds within the
//! retry budget, nothing panics, and identical requests are coalesced: each distinct
//! request is minted once.

use std::time::{Duration, Instant};

use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use pbi_embed_reqwest::{Client, ReportToken, RetryPolicy};
use pbi_embed_testkit::Ids;

const CONCURRENT: usize = 1000;
const DISTINCT: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_through_503s_and_429s() {
    let emulator = Emulator::start().unwrap();
    // The first four GenerateToken calls fail whatever the dice say, so the faults are
    // certain to be hit (with only the random rules, 16 upstream calls all pass 1 % of runs).
    emulator.inject(FaultRule::next(
        4,
        RouteMatch::GenerateToken,
        Fault::ServerError { status: 503 },
    ));
    emulator.inject(FaultRule::random(
        0.20,
        RouteMatch::GenerateToken,
        Fault::ServerError { status: 503 },
    ));
    emulator.inject(FaultRule::random(
        0.05 / 0.80,
        RouteMatch::GenerateToken,
        Fault::Throttle {
            retry_after: "0".into(),
        },
    ));
    let ids = Ids::of(&emulator);
    let (tenant, client_id, secret) = ids.credentials();
    let client = Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(tenant, client_id, secret)
        .retry_policy(
            RetryPolicy::default()
                .max_retries(10)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(50))
                .total_budget(Duration::from_secs(30)),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let calls: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let client = client.clone();
            let request = ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
                .identity(ids.rls_identity(&format!("user-{}", i % DISTINCT)));
            tokio::spawn(async move { client.report_token(&request).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        call.await.unwrap().unwrap_or_else(|e| panic!("call {i}: {e}"));
    }
    let stats = emulator.stats();
    println!(
        "{CONCURRENT} calls in {:?}: {} GenerateToken requests upstream, {} tokens minted",
        started.elapsed(),
        emulator.generate_token_requests(),
        stats.minted
    );
    assert_eq!(stats.minted, DISTINCT as u64, "each distinct request minted once");
    assert!(
        emulator.generate_token_requests() > DISTINCT as u64,
        "the faults were hit"
    );
}
