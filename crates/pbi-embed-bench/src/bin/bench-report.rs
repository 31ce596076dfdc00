//! Runs the end-to-end benchmarks against the in-process emulator, counts allocations of
//! the core operations, reads criterion's results, and writes `BENCHMARKS.md`.
//!
//! Run it through `scripts/bench`, which runs the criterion benchmarks first.

use std::alloc::System;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use pbi_embed_bench::bare;
use pbi_embed_bench::micro::{self, Inputs, KINDS};
use pbi_embed_core::{ApiRequest, DatasetToken, EffectiveIdentity, ReportId, ReportToken, RetryPolicy};
use pbi_embed_emulator::{Emulator, Fixture, fixture::Report};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// Counts every allocation, to report allocations per operation.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations_per_op(mut op: impl FnMut()) -> f64 {
    const N: usize = 1000;
    op();
    let region = Region::new(GLOBAL);
    for _ in 0..N {
        op();
    }
    let change = region.change();
    (change.allocations + change.reallocations) as f64 / N as f64
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The target directory, where criterion left its estimates.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

/// Criterion's median estimate for a benchmark id, in nanoseconds.
fn criterion_median_ns(id: &str) -> Option<f64> {
    // Criterion names the folder after the id with `/` replaced by `_`.
    let path = target_dir()
        .join("criterion")
        .join(id.replace('/', "_"))
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux, {rustc}, release profile")
}

struct Setup {
    emulator: Emulator,
    base: String,
    bearer: String,
}

fn setup(fixture: Fixture) -> Setup {
    let emulator = Emulator::builder()
        .fixture(fixture)
        .worker_threads(1)
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let ids = emulator.ids();
    let bearer = emulator
        .issue_access_token(&ids.client_id, Duration::from_secs(24 * 3600))
        .unwrap_or_else(|| panic!("no principal"));
    let base = emulator.base_url();
    Setup {
        emulator,
        base,
        bearer,
    }
}

fn ureq_client(setup: &Setup) -> pbi_embed_ureq::Client {
    let ids = setup.emulator.ids();
    pbi_embed_ureq::Client::builder()
        .api_base(setup.base.clone())
        .authority_host(setup.base.clone())
        .service_principal(
            ids.tenant.parse().unwrap_or_else(|e| panic!("{e}")),
            ids.client_id.parse().unwrap_or_else(|e| panic!("{e}")),
            pbi_embed_core::ClientSecret::new(ids.client_secret),
        )
        .embed_token_cache(None)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn reqwest_client(setup: &Setup) -> pbi_embed_reqwest::Client {
    let ids = setup.emulator.ids();
    pbi_embed_reqwest::Client::builder()
        .api_base(setup.base.clone())
        .authority_host(setup.base.clone())
        .service_principal(
            ids.tenant.parse().unwrap_or_else(|e| panic!("{e}")),
            ids.client_id.parse().unwrap_or_else(|e| panic!("{e}")),
            pbi_embed_core::ClientSecret::new(ids.client_secret),
        )
        .embed_token_cache(None)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The call a hand-written client makes for `op`: the same URL, bearer token and bytes.
fn bare_call(setup: &Setup, op: &ReportToken) -> bare::Call {
    bare::Call {
        url: format!("{}{}", setup.base, op.path()),
        authorization: format!("Bearer {}", setup.bearer),
        body: op.body().ok().flatten().unwrap_or_default(),
    }
}

fn report_request(setup: &Setup) -> ReportToken {
    let ids = setup.emulator.ids();
    ReportToken::view(
        ids.workspace.parse().unwrap_or_else(|e| panic!("{e}")),
        ids.report.parse().unwrap_or_else(|e| panic!("{e}")),
    )
}

/// Each pair's ratio, the first value over the second.
fn ratios(pairs: &[(f64, f64)]) -> impl Iterator<Item = f64> + '_ {
    pairs.iter().map(|(a, b)| a / b)
}

fn median_f64(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The lowest and highest value.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

struct Blocking {
    /// Median latency of each client over all its calls.
    ours: Duration,
    bare: Duration,
    /// The bare client without time-outs, for reference.
    bare_untimed: Duration,
    /// Per round: (ours, bare) median latency in µs.
    rounds: Vec<(f64, f64)>,
    requests: usize,
}

fn blocking(setup: &Setup) -> Blocking {
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 500;
    let client = ureq_client(setup);
    let op = report_request(setup);
    let call = bare_call(setup, &op);
    let (timed, untimed_agent) = (bare::ureq_agent(true), bare::ureq_agent(false));
    let bare = || bare::call_ureq(&timed, &call);
    let untimed = || bare::call_ureq(&untimed_agent, &call);
    let ours = || {
        client
            .embed_token(&op)
            .map(|t| t.token_id)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    for _ in 0..200 {
        ours();
        bare();
        untimed();
    }
    let time = |f: &dyn Fn() -> String, into: &mut Vec<Duration>| {
        let mut round = Vec::with_capacity(PER_ROUND);
        for _ in 0..PER_ROUND {
            let started = Instant::now();
            std::hint::black_box(f());
            round.push(started.elapsed());
        }
        into.extend_from_slice(&round);
        micros(median(&mut round))
    };
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        // Alternate who goes first, so that drift hits both alike.
        let pair = if round % 2 == 0 {
            let ours = time(&ours, &mut a);
            (ours, time(&bare, &mut b))
        } else {
            let bare = time(&bare, &mut b);
            (time(&ours, &mut a), bare)
        };
        rounds.push(pair);
        if round % 4 == 0 {
            time(&untimed, &mut c);
        }
    }
    Blocking {
        ours: median(&mut a),
        bare: median(&mut b),
        bare_untimed: median(&mut c),
        rounds,
        requests: ROUNDS * PER_ROUND,
    }
}

struct Async {
    concurrency: usize,
    /// Per measurement pair: (ours, bare) requests per second.
    pairs: Vec<(f64, f64)>,
    /// The bare client without time-outs, requests per second (median).
    bare_untimed: f64,
}

fn run_concurrent<F, Fut>(runtime: &tokio::runtime::Runtime, concurrency: usize, total: usize, call: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    runtime.block_on(async move {
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let call = call.clone();
                tokio::spawn(async move {
                    for _ in 0..total / concurrency {
                        call().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        (total / concurrency * concurrency) as f64 / started.elapsed().as_secs_f64()
    })
}

fn asynchronous(setup: &Setup) -> Vec<Async> {
    const TOTAL: usize = 3200;
    const PAIRS: usize = 16;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let client = reqwest_client(setup);
    let op = report_request(setup);
    let call = bare_call(setup, &op);
    let ours = {
        let (client, op) = (client.clone(), op.clone());
        move || {
            let (client, op) = (client.clone(), op.clone());
            async move {
                client.embed_token(&op).await.unwrap_or_else(|e| panic!("{e}"));
            }
        }
    };
    let bare_with = |bare: reqwest::Client| {
        let call = call.clone();
        move || {
            let (bare, call) = (bare.clone(), call.clone());
            async move {
                std::hint::black_box(bare::call_reqwest(&bare, &call).await);
            }
        }
    };
    let theirs = bare_with(bare::reqwest_client(true));
    let untimed = bare_with(bare::reqwest_client(false));
    run_concurrent(&runtime, 16, 1000, ours.clone());
    run_concurrent(&runtime, 16, 1000, theirs.clone());
    run_concurrent(&runtime, 16, 1000, untimed.clone());
    [1, 16, 64]
        .into_iter()
        .map(|concurrency| {
            let ours = || run_concurrent(&runtime, concurrency, TOTAL, ours.clone());
            let bare = || run_concurrent(&runtime, concurrency, TOTAL, theirs.clone());
            let pairs: Vec<(f64, f64)> = (0..PAIRS)
                .map(|pair| {
                    if pair % 2 == 0 {
                        let ours = ours();
                        (ours, bare())
                    } else {
                        let bare = bare();
                        (ours(), bare)
                    }
                })
                .collect();
            let bare_untimed =
                median_f64((0..3).map(|_| run_concurrent(&runtime, concurrency, TOTAL, untimed.clone())));
            Async {
                concurrency,
                pairs,
                bare_untimed,
            }
        })
        .collect()
}

/// The clients' instructions per call, counted by callgrind: (pbi-embed, bare).
struct Instructions {
    blocking: (f64, f64),
    asynchronous: (f64, f64),
}

/// Counts each client's instructions per call: `client-cost` under `valgrind
/// --tool=callgrind` against this process's emulator, so only the client is counted.
/// Two run lengths per client, so that start-up cancels out.
fn instructions(setup: &Setup) -> Result<Instructions, String> {
    const SHORT: usize = 800;
    const LONG: usize = 2400;
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("client-cost");
    if !exe.exists() {
        return Err(format!(
            "{} is not built (scripts/bench builds it)",
            exe.display()
        ));
    }
    let ids = setup.emulator.ids();
    let count = |who: &str, mode: &str, calls: usize| -> Result<u64, String> {
        let output = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .args([
                who,
                mode,
                &calls.to_string(),
                &setup.base,
                &ids.workspace,
                &ids.report,
            ])
            .env("PBI_BENCH_BEARER", &setup.bearer)
            .output()
            .map_err(|e| format!("valgrind: {e}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr
            .lines()
            .find_map(|line| line.split("Collected :").nth(1))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("valgrind counted nothing for {who} {mode}: {}", stderr.trim()))
    };
    let per_call = |who: &str, mode: &str| -> Result<f64, String> {
        let (short, long) = (count(who, mode, SHORT)?, count(who, mode, LONG)?);
        Ok(long.saturating_sub(short) as f64 / (LONG - SHORT) as f64)
    };
    Ok(Instructions {
        blocking: (per_call("ours", "blocking")?, per_call("bare", "blocking")?),
        asynchronous: (per_call("ours", "async")?, per_call("bare", "async")?),
    })
}

struct CacheMix {
    requests: usize,
    per_second: f64,
    upstream: u64,
    distinct: usize,
}

/// 100 users across 10 reports with RLS, 4 threads, the embed-token cache on.
fn cache_mix() -> CacheMix {
    const USERS: usize = 100;
    const REPORTS: usize = 10;
    const REQUESTS: usize = 20_000;
    let mut fixture = Fixture::default();
    let workspace = &mut fixture.workspaces[0];
    let rls_dataset = workspace.datasets[0].id.clone();
    for i in 0..REPORTS {
        workspace.reports.push(Report {
            id: format!("00000000-0000-4000-8000-{i:012}"),
            name: format!("Regional report {i}"),
            dataset_id: rls_dataset.clone(),
            report_type: "PowerBIReport".to_owned(),
            pages: Vec::new(),
        });
    }
    let setup = setup(fixture);
    let ids = setup.emulator.ids();
    let client = pbi_embed_ureq::Client::builder()
        .api_base(setup.base.clone())
        .authority_host(setup.base.clone())
        .service_principal(
            ids.tenant.parse().unwrap_or_else(|e| panic!("{e}")),
            ids.client_id.parse().unwrap_or_else(|e| panic!("{e}")),
            pbi_embed_core::ClientSecret::new(ids.client_secret.clone()),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let dataset: pbi_embed_core::DatasetId = rls_dataset.parse().unwrap_or_else(|e| panic!("{e}"));
    let workspace: pbi_embed_core::WorkspaceId = ids.workspace.parse().unwrap_or_else(|e| panic!("{e}"));
    let requests: Vec<ReportToken> = (0..USERS * REPORTS)
        .map(|i| {
            let report = ReportId::parse(&format!("00000000-0000-4000-8000-{:012}", i % REPORTS))
                .unwrap_or_else(|e| panic!("{e}"));
            ReportToken::view(workspace.clone(), report).identity(
                EffectiveIdentity::new(format!("user-{}@contoso.com", i / REPORTS))
                    .role("Region")
                    .dataset(dataset.clone()),
            )
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (client, requests) = (&client, &requests);
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t);
                for _ in 0..REQUESTS / 4 {
                    let request = &requests[rng.usize(..requests.len())];
                    client.embed_token(request).unwrap_or_else(|e| panic!("{e}"));
                }
            });
        }
    });
    CacheMix {
        requests: REQUESTS,
        per_second: REQUESTS as f64 / started.elapsed().as_secs_f64(),
        upstream: setup.emulator.generate_token_requests(),
        distinct: USERS * REPORTS,
    }
}

/// The emulator's own round trip: a raw keep-alive socket sending the smallest
/// GenerateToken request and reading the answer, nothing else.
fn floor(setup: &Setup) -> Duration {
    let ids = setup.emulator.ids();
    let op = DatasetToken::new(
        ids.workspace.parse().unwrap_or_else(|e| panic!("{e}")),
        ids.dataset.parse().unwrap_or_else(|e| panic!("{e}")),
    );
    let body = op.body().ok().flatten().unwrap_or_default();
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        op.path(),
        setup.bearer,
        body.len(),
        String::from_utf8_lossy(&body)
    );
    let stream = TcpStream::connect(setup.emulator.addr()).unwrap_or_else(|e| panic!("{e}"));
    stream.set_nodelay(true).unwrap_or_else(|e| panic!("{e}"));
    let mut reader = BufReader::new(stream);
    let mut round_trip = || {
        reader
            .get_mut()
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap_or_else(|e| panic!("{e}"));
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap_or_else(|e| panic!("{e}"));
    };
    for _ in 0..500 {
        round_trip();
    }
    let mut times: Vec<Duration> = (0..5000)
        .map(|_| {
            let started = Instant::now();
            round_trip();
            started.elapsed()
        })
        .collect();
    median(&mut times)
}

fn main() {
    let mut out = String::new();
    let inputs = Inputs::new();
    let now = SystemTime::now();

    println!("end-to-end: blocking ...");
    let default_setup = setup(Fixture::default());
    let blocking = blocking(&default_setup);
    println!("end-to-end: async ...");
    let asynchronous = asynchronous(&default_setup);
    println!("end-to-end: instructions per call (callgrind) ...");
    let instructions = instructions(&default_setup);
    println!("end-to-end: floor ...");
    let floor = floor(&default_setup);
    drop(default_setup);
    println!("end-to-end: cache mix ...");
    let mix = cache_mix();

    let _ = writeln!(
        out,
        "# Benchmarks\n\nWritten by `scripts/bench` on {} (UTC). Machine: {}.\n",
        pbi_embed_core::EmbedToken::new(pbi_embed_core::EmbedTokenSecret::new(""), "", now)
            .expiration_rfc3339(),
        machine()
    );
    let _ = writeln!(
        out,
        "Everything runs on one machine: the emulator serves loopback HTTP on one worker thread \
         while the client under test runs on the other core. Ratios compare pbi-embed with a \
         hand-written client doing the same work in the same run, interleaved in rounds so that \
         drift hits both alike.\n"
    );
    let _ = writeln!(out, "## Core operations (criterion, median)\n");
    let _ = writeln!(
        out,
        "| operation | time | allocations | goal |\n|---|---:|---:|---|"
    );
    // Each operation's goal, and whether this run met it.
    let mut verdicts: Vec<(String, Option<bool>)> = Vec::new();
    let mut row = |name: &str, id: &str, allocations: f64| {
        let goal_ns = if id.starts_with("cache/lookup") {
            Some(200.0)
        } else if id.starts_with("build/") || id.starts_with("parse/") {
            Some(2000.0)
        } else {
            None
        };
        let measured = criterion_median_ns(id);
        let time = measured.map_or_else(
            || "(run `cargo bench`)".to_owned(),
            |ns| format!("{:.2} µs", ns / 1000.0),
        );
        let (goal, met) = match (goal_ns, measured) {
            (Some(goal), Some(ns)) => (
                format!(
                    "≤ {:.1} µs: {}",
                    goal / 1000.0,
                    if ns <= goal { "met" } else { "**missed**" }
                ),
                Some(ns <= goal),
            ),
            (Some(goal), None) => (format!("≤ {:.1} µs: not measured", goal / 1000.0), None),
            (None, _) => (String::new(), None),
        };
        if goal_ns.is_some() {
            verdicts.push((name.to_owned(), met));
        }
        let _ = writeln!(out, "| {name} | {time} | {allocations:.1} | {goal} |");
    };
    for kind in KINDS {
        let allocations = allocations_per_op(|| {
            std::hint::black_box(micro::build(&inputs, kind));
        });
        row(
            &format!("build and serialize a {kind} request"),
            &format!("build/{kind}"),
            allocations,
        );
    }
    row(
        &format!(
            "parse an EmbedToken response ({}-character token)",
            micro::TOKEN_LEN
        ),
        "parse/embed_token",
        allocations_per_op(|| {
            std::hint::black_box(micro::parse_success_borrowed(&inputs));
        }),
    );
    row(
        "parse a Power BI error (400 InvalidRequest)",
        "parse/power_bi_error",
        allocations_per_op(|| {
            std::hint::black_box(micro::parse_error(&inputs));
        }),
    );
    row(
        "classify a 429 and decide the retry",
        "retry/classify_429",
        allocations_per_op(|| {
            std::hint::black_box(micro::classify(&inputs));
        }),
    );
    row(
        "embed-token cache: look up a ready key (1,000 entries)",
        "cache/lookup",
        allocations_per_op(|| {
            std::hint::black_box(micro::cache_get(&inputs, now));
        }),
    );
    row(
        "embed-token cache: compute a request's key and look it up",
        "cache/key_and_lookup",
        allocations_per_op(|| {
            std::hint::black_box(micro::cache_lookup(&inputs, now));
        }),
    );
    let missed: Vec<&str> = verdicts
        .iter()
        .filter(|(_, met)| *met == Some(false))
        .map(|(name, _)| name.as_str())
        .collect();
    let unmeasured = verdicts.iter().filter(|(_, met)| met.is_none()).count();
    let core_verdict = match (missed.as_slice(), unmeasured) {
        ([], 0) => format!("All {} goals hold in this run.", verdicts.len()),
        ([], n) => format!("The measured goals hold; {n} were not measured in this run."),
        (names, _) => format!("Missed in this run: {}.", names.join("; ")),
    };
    let _ = writeln!(
        out,
        "\nGoals: building a request and parsing a response each at most 2 µs; a hit of the \
         embed-token cache at most 0.2 µs. {core_verdict}\n"
    );

    let _ = writeln!(out, "## Blocking: pbi-embed-ureq against bare ureq\n");
    let _ = writeln!(
        out,
        "{} report tokens minted one after another by each (embed-token cache off, retries off), in \
         {} alternating rounds of 500. The bare client posts the identical bytes with the same \
         bearer token, pulls the token out of the JSON answer, and is configured as pbi-embed \
         configures ureq: no redirects, the same connect and per-call time-outs.\n",
        blocking.requests,
        blocking.rounds.len()
    );
    let _ = writeln!(out, "| client | median latency |\n|---|---:|");
    let _ = writeln!(out, "| pbi-embed-ureq | {:.1} µs |", micros(blocking.ours));
    let _ = writeln!(out, "| bare ureq | {:.1} µs |", micros(blocking.bare));
    let _ = writeln!(
        out,
        "| bare ureq without time-outs (reference) | {:.1} µs |",
        micros(blocking.bare_untimed)
    );
    let blocking_ratio = median_f64(ratios(&blocking.rounds));
    let (lowest, highest) = range(ratios(&blocking.rounds));
    let blocking_met = if blocking_ratio <= 1.05 {
        "met"
    } else {
        "**missed**"
    };
    let _ = writeln!(
        out,
        "\n**Median latency ratio: {blocking_ratio:.3}** (goal at most 1.05: {blocking_met}): the \
         median over the rounds of each round's ratio of medians; rounds ranged from {lowest:.3} \
         to {highest:.3}.\n"
    );

    let _ = writeln!(out, "## Async: pbi-embed-reqwest against bare reqwest\n");
    let _ = writeln!(
        out,
        "3,200 report tokens per measurement on a one-thread tokio runtime, 16 measurement pairs per \
         concurrency (who goes first alternates). The bare client is configured as pbi-embed \
         configures reqwest: no redirects, the same connect time-out and overall time-out. The \
         ratio is the median of the pairs' ratios; throughputs are medians.\n"
    );
    let _ = writeln!(
        out,
        "| concurrency | pbi-embed-reqwest | bare reqwest | throughput ratio | pairs' ratios | bare reqwest without time-outs (reference) |\n|---:|---:|---:|---:|---:|---:|"
    );
    for a in &asynchronous {
        let (lo, hi) = range(ratios(&a.pairs));
        let _ = writeln!(
            out,
            "| {} | {:.0} /s | {:.0} /s | **{:.3}** | {lo:.3} to {hi:.3} | {:.0} /s |",
            a.concurrency,
            median_f64(a.pairs.iter().map(|p| p.0)),
            median_f64(a.pairs.iter().map(|p| p.1)),
            median_f64(ratios(&a.pairs)),
            a.bare_untimed
        );
    }
    let async_missed: Vec<String> = asynchronous
        .iter()
        .filter(|a| median_f64(ratios(&a.pairs)) < 0.95)
        .map(|a| a.concurrency.to_string())
        .collect();
    let async_verdict = if async_missed.is_empty() {
        "met at every concurrency".to_owned()
    } else {
        format!("**missed** at concurrency {}", async_missed.join(", "))
    };
    let _ = writeln!(out, "\nGoal: throughput ratio at least 0.95: {async_verdict}.\n");

    let _ = writeln!(out, "## CPU per call: instructions\n");
    match &instructions {
        Ok(counts) => {
            let _ = writeln!(
                out,
                "Each client alone under `valgrind --tool=callgrind` (in its own process, against \
                 the same emulator), making report-token calls as above: blocking one after \
                 another, async 16 at a time on one thread. Instructions per call, start-up \
                 subtracted (runs of 800 and 2,400 calls). Unlike time, this count is the same \
                 from run to run, so it shows what the client itself costs.\n"
            );
            let _ = writeln!(
                out,
                "| client | pbi-embed | bare, same settings | ratio |\n|---|---:|---:|---:|"
            );
            let mut over = Vec::new();
            for (name, (ours, bare)) in [
                ("ureq (blocking)", counts.blocking),
                ("reqwest (async)", counts.asynchronous),
            ] {
                let _ = writeln!(out, "| {name} | {ours:.0} | {bare:.0} | **{:.3}** |", ours / bare);
                if ours > bare {
                    over.push(format!("{name} by {:.1} %", 100.0 * (ours / bare - 1.0)));
                }
            }
            let verdict = if over.is_empty() {
                "met for both clients".to_owned()
            } else {
                format!("**missed**: {}", over.join(", "))
            };
            let _ = writeln!(
                out,
                "\nGoal: no more instructions per call than the bare client: {verdict}.\n"
            );
        }
        Err(why) => {
            let _ = writeln!(out, "Not measured in this run: {why}.\n");
        }
    }

    let _ = writeln!(out, "## The embed-token cache on a realistic mix\n");
    let _ = writeln!(
        out,
        "{} requests from 4 threads, each for one of 100 users (an RLS identity) on one of 10 reports, \
         picked at random: {} distinct requests.\n",
        mix.requests, mix.distinct
    );
    let _ = writeln!(
        out,
        "| served | upstream GenerateToken calls | hit rate |\n|---:|---:|---:|"
    );
    let _ = writeln!(
        out,
        "| {:.0} requests/s | {} | {:.1} % |",
        mix.per_second,
        mix.upstream,
        100.0 * (1.0 - mix.upstream as f64 / mix.requests as f64)
    );
    let _ = writeln!(out, "\n## The floor\n");
    let _ = writeln!(
        out,
        "The emulator's own round trip for the smallest GenerateToken request, from a raw keep-alive \
         socket that does nothing else: **{:.1} µs** median. The blocking clients above spend \
         {:.1} µs (pbi-embed-ureq) and {:.1} µs (bare ureq) per token: above the floor is the \
         HTTP client, the token's JSON, and for pbi-embed the core's work.\n",
        micros(floor),
        micros(blocking.ours),
        micros(blocking.bare)
    );
    let _ = writeln!(out, "## What it means\n");
    let us =
        |id: &str| criterion_median_ns(id).map_or_else(|| "?".to_owned(), |ns| format!("{:.2}", ns / 1000.0));
    let _ = writeln!(
        out,
        "The core's own work per call is building the request ({} µs for a report) and parsing \
         the answer ({} µs). {core_verdict}\n",
        us("build/report"),
        us("parse/embed_token")
    );
    let per_call = match &instructions {
        Ok(counts) => format!(
            "Per call, the pbi-embed clients execute about as many instructions as the \
             hand-written ones configured alike (ratios {:.3} for ureq, {:.3} for reqwest): the \
             core's request building, validation and typed parsing stand in for work a bare \
             client does as well (parsing the URL string, a header value per call, the JSON \
             into a `serde_json::Value`). ",
            counts.blocking.0 / counts.blocking.1,
            counts.asynchronous.0 / counts.asynchronous.1
        ),
        Err(_) => String::new(),
    };
    let _ = writeln!(
        out,
        "{per_call}In time, the blocking median ratio is {blocking_ratio:.3}. The async ratios move \
         by several hundredths from one measurement pair to the next (the pairs' ratios column): \
         on two cores the client's runtime thread and the emulator's thread wake each other for \
         every answer, so the report takes the median of 16 pairs. Bounding each attempt costs \
         bare ureq {:.1} µs a call ({:.1} µs with, {:.1} µs without: with a per-call bound ureq \
         resolves the host on a thread of its own); pbi-embed-ureq bounds every attempt the same way ({:.1} µs a call).\n",
        micros(blocking.bare) - micros(blocking.bare_untimed),
        micros(blocking.bare),
        micros(blocking.bare_untimed),
        micros(blocking.ours)
    );
    let _ = writeln!(
        out,
        "Against Power BI, whose answers take tens to hundreds of milliseconds over the internet, \
         a few microseconds are noise; the embed-token cache is what changes the numbers, by not \
         calling Power BI at all.\n\n\
         Reproduce: `scripts/bench` (criterion, then this report; valgrind for the instruction \
         counts). Loopback latency depends on whether the cores are idle, so absolute times \
         move between runs and machines; the ratios and instruction counts are the figures to \
         compare."
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md");
    std::fs::write(&path, &out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("{out}");
}
