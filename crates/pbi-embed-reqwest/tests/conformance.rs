//! The conformance table, through the async client over real loopback sockets, and what
//! only an async client can be put through: futures dropped half-way.

use std::time::Duration;

use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use pbi_embed_reqwest::{Client, ReportToken};
use pbi_embed_testkit::{Ids, service_principal, settings_for};

mod common;

pbi_embed_testkit::conformance_tests!(common::Reqwest::new());

#[test]
fn soak() {
    pbi_embed_testkit::conformance::soak(&common::Reqwest::new());
}

/// A browser that disconnects drops its request's future; 1,000 of them, dropped while
/// leading a sign-in, an embed-token fetch or parked behind one, leave nothing in flight,
/// and the next call still gets its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_calls_leave_nothing_in_flight() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    // Every answer takes a while, so the futures are dropped mid-exchange.
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::Any,
        Fault::Delay { millis: 200 },
    ));
    let client = Client::builder()
        .settings(settings_for(&emulator))
        .credential(service_principal(&emulator))
        .build()
        .unwrap();
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let client = client.clone();
            let request = ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
                .identity(ids.rls_identity(&format!("user-{}", i % 50)));
            tokio::spawn(async move { client.embed_token(&request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client.in_flight() > 0, "the calls are under way");
    for call in &calls {
        call.abort();
    }
    for call in calls {
        assert!(call.await.unwrap_err().is_cancelled());
    }
    assert_eq!(client.in_flight(), 0, "the in-flight table is empty");
    emulator.clear_faults();
    let request =
        ReportToken::view(ids.workspace.clone(), ids.rls_report.clone()).identity(ids.rls_identity("user-1"));
    tokio::time::timeout(Duration::from_secs(5), client.embed_token(&request))
        .await
        .expect("no call waits on an abandoned one")
        .unwrap();
}
