//! Concurrency soak: 64 threads against an emulator that answers 20 % of GenerateToken
//! calls with 503 and 5 % with 429. Every call succeeds within the retry budget, nothing
//! panics, and identical requests are coalesced: each distinct request is minted once.

use std::time::{Duration, Instant};

use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use pbi_embed_testkit::Ids;
use pbi_embed_ureq::{Client, ReportToken, RetryPolicy};

const THREADS: usize = 64;
const CALLS_PER_THREAD: usize = 20;
const DISTINCT: usize = 16;

#[test]
fn sixty_four_threads_through_503s_and_429s() {
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
    let requests: Vec<ReportToken> = (0..DISTINCT)
        .map(|i| {
            ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
                .identity(ids.rls_identity(&format!("user-{i}")))
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (client, requests) = (&client, &requests);
            s.spawn(move || {
                for c in 0..CALLS_PER_THREAD {
                    let request = &requests[(t + c) % DISTINCT];
                    client
                        .report_token(request)
                        .unwrap_or_else(|e| panic!("thread {t} call {c}: {e}"));
                }
            });
        }
    });
    let stats = emulator.stats();
    println!(
        "{} calls in {:?}: {} GenerateToken requests upstream, {} tokens minted",
        THREADS * CALLS_PER_THREAD,
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
