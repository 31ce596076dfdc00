//! Makes report-token calls with one client against a running emulator, and nothing
//! else, so that `bench-report` can count the client's instructions per call under
//! `valgrind --tool=callgrind` (a count that, unlike time, does not move from run to run).
//!
//! ```text
//! PBI_BENCH_BEARER=... client-cost <ours|bare> <blocking|async> <calls> <api base> <workspace> <report>
//! ```
//!
//! The bearer token comes from the environment, not the command line.

use pbi_embed_bench::bare;
use pbi_embed_core::{AccessToken, ApiRequest, ReportToken, RetryPolicy};

/// Concurrent calls in the async runs, on a one-thread runtime, as in `bench-report`.
const CONCURRENCY: usize = 16;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [who, mode, calls, base, workspace, report] = args.as_slice() else {
        eprintln!("usage: client-cost <ours|bare> <blocking|async> <calls> <api base> <workspace> <report>");
        std::process::exit(2);
    };
    let calls: usize = calls.parse().unwrap_or_else(|e| panic!("calls: {e}"));
    let bearer = std::env::var("PBI_BENCH_BEARER").unwrap_or_else(|e| panic!("PBI_BENCH_BEARER: {e}"));
    let op = ReportToken::view(
        workspace.parse().unwrap_or_else(|e| panic!("{e}")),
        report.parse().unwrap_or_else(|e| panic!("{e}")),
    );
    let call = bare::Call {
        url: format!("{base}{}", op.path()),
        authorization: format!("Bearer {bearer}"),
        body: op.body().ok().flatten().unwrap_or_default(),
    };
    let token = AccessToken::new(bearer);
    match (who.as_str(), mode.as_str()) {
        ("ours", "blocking") => {
            let client = pbi_embed_ureq::Client::builder()
                .api_base(base.clone())
                .bearer_token(token)
                .embed_token_cache(None)
                .retry_policy(RetryPolicy::none())
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            for _ in 0..calls {
                client.embed_token(&op).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        ("bare", "blocking") => {
            let agent = bare::ureq_agent(true);
            for _ in 0..calls {
                std::hint::black_box(bare::call_ureq(&agent, &call));
            }
        }
        (_, "async") => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            let ours = (who == "ours").then(|| {
                pbi_embed_reqwest::Client::builder()
                    .api_base(base.clone())
                    .bearer_token(token)
                    .embed_token_cache(None)
                    .retry_policy(RetryPolicy::none())
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"))
            });
            let theirs = bare::reqwest_client(true);
            runtime.block_on(async move {
                let tasks: Vec<_> = (0..CONCURRENCY)
                    .map(|_| {
                        let (ours, theirs, op, call) =
                            (ours.clone(), theirs.clone(), op.clone(), call.clone());
                        tokio::spawn(async move {
                            for _ in 0..calls / CONCURRENCY {
                                match &ours {
                                    Some(client) => {
                                        client.embed_token(&op).await.unwrap_or_else(|e| panic!("{e}"));
                                    }
                                    None => {
                                        std::hint::black_box(bare::call_reqwest(&theirs, &call).await);
                                    }
                                }
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap_or_else(|e| panic!("{e}"));
                }
            });
        }
        _ => {
            eprintln!(
                "usage: client-cost <ours|bare> <blocking|async> <calls> <api base> <workspace> <report>"
            );
            std::process::exit(2);
        }
    }
}
