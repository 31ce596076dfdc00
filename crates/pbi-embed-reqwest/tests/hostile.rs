//! Hostile servers over real loopback sockets: every case ends in a typed error within
//! its bound, and no redirect reaches the other host.

use std::time::{Duration, Instant};

use pbi_embed_reqwest::{AccessToken, Client, ReportId, ReportToken, WorkspaceId};
use pbi_embed_testkit::hostile::{HostileServer, cases};
use pbi_embed_testkit::quick_retries;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_answer_ends_in_a_typed_error_in_time() {
    let decoy = HostileServer::start("127.0.0.2", |_, _| {}, "127.0.0.1:9".parse().unwrap());
    let op = ReportToken::view(
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
        ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap(),
    );
    for case in cases() {
        let server = HostileServer::start("127.0.0.1", case.behaviour, decoy.addr());
        let client = Client::builder()
            .api_base(server.url())
            .bearer_token(AccessToken::new("hostile-test-bearer"))
            .timeout(Duration::from_secs(2))
            .retry_policy(quick_retries())
            .build()
            .unwrap();
        let started = Instant::now();
        let err = client.report_token(&op).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), case.kind, "{}: {err}", case.name);
        assert!(took <= case.within, "{}: took {took:?}", case.name);
        assert!(!err.to_string().contains("hostile-test-bearer"));
        println!(
            "{:<32} {:>8.3}s  {:?}: {err}",
            case.name,
            took.as_secs_f64(),
            err.kind()
        );
    }
    assert_eq!(decoy.requests(), 0, "a redirect was followed to the other host");
}
