//! A 512 MiB body, advertised and streamed, is stopped at the 1 MiB cap with bounded
//! memory: the process's peak resident memory stays far below the body's size.

use std::time::{Duration, Instant};

use pbi_embed_core::ErrorKind;
use pbi_embed_testkit::hostile::{HUGE, HostileServer, cases};
use pbi_embed_ureq::{AccessToken, Client, ReportId, ReportToken, RetryPolicy, WorkspaceId};

/// The peak resident set size of this process (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn huge_bodies_stop_at_the_cap_in_bounded_memory() {
    let op = ReportToken::view(
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
        ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap(),
    );
    let decoy = "127.0.0.1:9".parse().unwrap();
    for case in cases().into_iter().filter(|c| c.kind == ErrorKind::BodyTooLarge) {
        let server = HostileServer::start("127.0.0.1", case.behaviour, decoy);
        let client = Client::builder()
            .api_base(server.url())
            .bearer_token(AccessToken::new("t"))
            .retry_policy(RetryPolicy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        for _ in 0..3 {
            let started = Instant::now();
            let err = client.report_token(&op).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{}: {err}", case.name);
            println!("{}: stopped after {:?}", case.name, started.elapsed());
        }
    }
    let peak = peak_rss_kib();
    println!(
        "peak resident memory: {} MiB while refusing {} MiB bodies",
        peak / 1024,
        HUGE / 1024 / 1024
    );
    assert!(peak > 0 && peak < 64 * 1024, "peak RSS {peak} KiB");
}
