//! Serving at scale: four token-service processes (`examples/server/src/bin/token_service.rs`,
//! release build) in front of the in-process emulator, whose GenerateToken takes 150 ms;
//! a steady open-loop load over 1,000 (user, report) pairs; latency of `/api/embed` and
//! GenerateToken calls per minute, with and without refresh-ahead, with and without
//! Redis. Writes its section of `BENCHMARKS.md` (between its markers).
//!
//! Run it through `scripts/bench` (which builds the token service first), or alone:
//! `cargo build --release -p pbi-embed-examples-server --bin token_service && cargo run
//! --release -p pbi-embed-bench --bin bench-scale`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use pbi_embed_testkit::Ids;
use pbi_embed_testkit::redis::RedisServer;
use pbi_embed_testkit::token_service::TokenService;

/// Requests per second, all replicas together.
const RATE: u32 = 100;
const WARM_UP: Duration = Duration::from_secs(10);
const MEASURED: Duration = Duration::from_secs(60);
const PAIRS: usize = 1000;
/// The pairs most requests go to.
const HOT: usize = 50;
/// The share of requests for hot pairs, in percent.
const HOT_SHARE: u32 = 80;
/// How long Power BI takes to mint.
const GENERATE_DELAY_MS: u64 = 150;
/// Scaled down so that tokens turn over during the run: one-minute tokens, served until
/// 40 s before expiry, refreshed ahead from 50 s before.
const LIFETIME_MINUTES: &str = "1";
const MARGIN_SECONDS: &str = "40";
const WINDOW_SECONDS: &str = "50";

const BEGIN: &str = "<!-- bench-scale:begin -->";
const END: &str = "<!-- bench-scale:end -->";

fn token_service() -> PathBuf {
    std::env::var_os("PBI_TOKEN_SERVICE").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
                PathBuf::from,
            );
            target.join("release/token_service")
        },
        PathBuf::from,
    )
}

fn start_service(emulator: &Emulator, redis: Option<&RedisServer>, refresh_ahead: bool) -> TokenService {
    let window = if refresh_ahead { WINDOW_SECONDS } else { "0" };
    let scaled = [
        ("PBI_EMBED_LIFETIME_MINUTES", LIFETIME_MINUTES),
        ("PBI_EMBED_MARGIN_SECONDS", MARGIN_SECONDS),
        ("PBI_REFRESH_AHEAD_SECONDS", window),
    ];
    let program = token_service();
    assert!(
        program.exists(),
        "{} is missing: cargo build --release -p pbi-embed-examples-server --bin token_service",
        program.display()
    );
    TokenService::start(&program, emulator, redis, &scaled)
}

/// One measured request: whether its pair is hot, how long it took, whether it was 200.
struct Sample {
    hot: bool,
    latency: Duration,
    ok: bool,
}

struct Row {
    name: &'static str,
    all: (Duration, Duration),
    hot: (Duration, Duration),
    calls_per_minute: f64,
    failed: usize,
    samples: usize,
}

fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort_unstable();
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(index).copied().unwrap_or_default()
}

fn run(name: &'static str, redis: bool, refresh_ahead: bool) -> Row {
    let emulator = Emulator::builder()
        .worker_threads(2)
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::GenerateToken,
        Fault::Delay {
            millis: GENERATE_DELAY_MS,
        },
    ));
    let ids = Ids::of(&emulator);
    let redis = redis.then(RedisServer::start);
    let services: Vec<TokenService> = (0..4)
        .map(|_| start_service(&emulator, redis.as_ref(), refresh_ahead))
        .collect();
    let bases: Vec<String> = services.iter().map(|s| s.base().to_owned()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let (samples, calls) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut rng = fastrand::Rng::with_seed(15);
        let mut tasks = Vec::new();
        let started = Instant::now();
        let interval = Duration::from_secs(1) / RATE;
        let mut calls_at_start = None;
        let mut n: u64 = 0;
        while started.elapsed() < WARM_UP + MEASURED {
            let measured = started.elapsed() >= WARM_UP;
            if measured && calls_at_start.is_none() {
                calls_at_start = Some(emulator.generate_token_requests());
            }
            let hot = rng.u32(0..100) < HOT_SHARE;
            let user = if hot {
                rng.usize(0..HOT)
            } else {
                rng.usize(HOT..PAIRS)
            };
            let url = format!(
                "{}/api/embed?report={}&user=user{user}@contoso.com&role={}",
                bases[(n % 4) as usize],
                ids.rls_report,
                ids.rls_role
            );
            n += 1;
            let http = http.clone();
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let ok = match http.get(url).send().await {
                    Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (
                    measured,
                    Sample {
                        hot,
                        latency: sent.elapsed(),
                        ok,
                    },
                )
            }));
            // Open loop: the next request leaves on schedule, whatever the last one does.
            let next = started + interval * u32::try_from(n).unwrap_or(u32::MAX);
            tokio::time::sleep_until(next.into()).await;
        }
        let calls = emulator.generate_token_requests() - calls_at_start.unwrap_or(0);
        let mut samples = Vec::new();
        for task in tasks {
            if let Ok((true, sample)) = task.await {
                samples.push(sample);
            }
        }
        (samples, calls)
    });
    drop(services);
    let mut all: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    let mut hot: Vec<Duration> = samples.iter().filter(|s| s.hot).map(|s| s.latency).collect();
    Row {
        name,
        all: (percentile(&mut all, 0.5), percentile(&mut all, 0.99)),
        hot: (percentile(&mut hot, 0.5), percentile(&mut hot, 0.99)),
        calls_per_minute: calls as f64 / MEASURED.as_secs_f64() * 60.0,
        failed: samples.iter().filter(|s| !s.ok).count(),
        samples: samples.len(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let rows = [
        run("per-replica caches", false, false),
        run("per-replica caches, refresh-ahead", false, true),
        run("Redis", true, false),
        run("Redis, refresh-ahead", true, true),
    ];
    let mut section = format!("{BEGIN}\n## Serving at scale: four token services\n\n");
    let _ = writeln!(
        section,
        "Written by `bench-scale` (`scripts/bench`). Four `token_service` processes (release) in front of the in-process emulator, whose GenerateToken takes {GENERATE_DELAY_MS} ms; {RATE} requests a second, open loop, round-robin over the services, {HOT_SHARE}% of them for {HOT} hot (user, report) pairs and the rest spread over {} cold ones; {}-minute embed tokens served until {MARGIN_SECONDS} s before expiry, refresh-ahead from {WINDOW_SECONDS} s before, so that tokens turn over during the run. {} s of warm-up, then {} s measured. Everything on this one machine (the services, the emulator, Redis and the load).\n",
        PAIRS - HOT,
        LIFETIME_MINUTES,
        WARM_UP.as_secs(),
        MEASURED.as_secs()
    );
    section.push_str("| configuration | p50, all | p99, all | p50, hot pairs | p99, hot pairs | GenerateToken per minute | failed / requests |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for row in &rows {
        let _ = writeln!(
            section,
            "| {} | {} | {} | {} | {} | {:.0} | {} / {} |",
            row.name,
            ms(row.all.0),
            ms(row.all.1),
            ms(row.hot.0),
            ms(row.hot.1),
            row.calls_per_minute,
            row.failed,
            row.samples
        );
    }
    let with = rows[1].hot.1.max(rows[3].hot.1);
    let without = rows[0].hot.1.min(rows[2].hot.1);
    let met = |ok: bool| if ok { "met" } else { "not met" };
    let _ = writeln!(
        section,
        "\nGoal: no request for a hot pair waits on Power BI. p99 for hot pairs with refresh-ahead: at most {} (goal under 5 ms: {}); without: at least {} (expected at least {GENERATE_DELAY_MS} ms: {}).\n{END}",
        ms(with),
        met(with < Duration::from_millis(5)),
        ms(without),
        met(without >= Duration::from_millis(GENERATE_DELAY_MS))
    );
    pbi_embed_bench::write_section(BEGIN, END, &section);
    print!("{section}");
}
