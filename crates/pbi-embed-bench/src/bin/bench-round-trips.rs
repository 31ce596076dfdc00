//! Round trips: what a user of an embedded report waits for. Every request to the
//! emulator is delayed by a fixed time (as Power BI and Entra ID are, over the internet),
//! and each embed type's configuration is timed cold (a new client), after warm-up, and
//! hot (its token cached, refresh-ahead on). The wall time divided by the delay is the
//! number of round trips made one after another; the emulator counts the requests (and
//! the most answered at once). Writes its section of `BENCHMARKS.md` (between its
//! markers).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pbi_embed_core::{
    ClientId, ClientSecret, DashboardId, DatasetId, EffectiveIdentity, EmbedRequest, ReportId, TenantId,
    TileId, WorkspaceId,
};
use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};

const BEGIN: &str = "<!-- round-trips:begin -->";
const END: &str = "<!-- round-trips:end -->";
/// The delay on every request.
const DELAY: Duration = Duration::from_millis(200);
/// Each measurement is the median of this many runs.
const RUNS: usize = 3;

/// The default fixture's paginated report and a visual of its RLS report.
const PAGINATED_REPORT: &str = "f904e89a-7ebe-4aa0-8647-e409063b4850";
const PAGE: &str = "ReportSection";
const VISUAL: &str = "salesTrend";

/// One measurement: wall time, requests the emulator answered, the most at once.
#[derive(Clone, Copy)]
struct Measured {
    wall: Duration,
    requests: u64,
    most_at_once: u64,
}

impl Measured {
    /// Round trips one after another: the wall time in delays, rounded.
    fn round_trips(self) -> u64 {
        let delays = self.wall.as_secs_f64() / DELAY.as_secs_f64();
        // A run of n round trips takes n delays and a few milliseconds.
        delays.round() as u64
    }
}

/// An id of the emulator's own fixture.
fn ok<T>(parsed: Result<T, pbi_embed_core::ExchangeError>) -> T {
    parsed.unwrap_or_else(|e| panic!("{e}"))
}

fn client(emulator: &Emulator, refresh_ahead: bool) -> pbi_embed_ureq::Client {
    let ids = emulator.ids();
    let mut builder = pbi_embed_ureq::Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(
            ok(TenantId::parse(&ids.tenant)),
            ok(ClientId::parse(&ids.client_id)),
            ClientSecret::new(ids.client_secret),
        );
    if refresh_ahead {
        builder = builder.refresh_ahead(Duration::from_secs(15 * 60));
    }
    builder.build().unwrap_or_else(|e| panic!("{e}"))
}

/// Times `run` against `emulator`, counting what reached it.
fn measure(emulator: &Emulator, run: impl FnOnce()) -> Measured {
    emulator.reset_stats();
    let started = Instant::now();
    run();
    let wall = started.elapsed();
    let stats = emulator.stats();
    Measured {
        wall,
        requests: stats.requests.values().sum(),
        most_at_once: stats.most_at_once,
    }
}

/// The median of `RUNS` measurements by wall time.
fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by_key(|m| m.wall);
    runs[runs.len() / 2]
}

struct Row {
    name: &'static str,
    cold: Measured,
    warm: Measured,
    hot: Measured,
}

fn row(emulator: &Emulator, name: &'static str, request: &EmbedRequest) -> Row {
    let embed = |client: &pbi_embed_ureq::Client| {
        client
            .embed_config(request)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    };
    let cold = median(
        (0..RUNS)
            .map(|_| {
                let client = client(emulator, false);
                measure(emulator, || embed(&client))
            })
            .collect(),
    );
    let warm = median(
        (0..RUNS)
            .map(|_| {
                let client = client(emulator, false);
                client
                    .warm_up(std::slice::from_ref(request))
                    .unwrap_or_else(|e| panic!("{name}: warm-up: {e}"));
                measure(emulator, || embed(&client))
            })
            .collect(),
    );
    let hot = median(
        (0..RUNS)
            .map(|_| {
                let client = client(emulator, true);
                embed(&client);
                measure(emulator, || embed(&client))
            })
            .collect(),
    );
    Row {
        name,
        cold,
        warm,
        hot,
    }
}

fn main() {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::Any,
        Fault::Delay {
            millis: u64::try_from(DELAY.as_millis()).unwrap_or(u64::MAX),
        },
    ));
    let ids = emulator.ids();
    let workspace = ok(WorkspaceId::parse(&ids.workspace));
    let rls_report = ok(ReportId::parse(&ids.rls_report));
    let dashboard = ok(DashboardId::parse(&ids.dashboard));
    let alice = || EffectiveIdentity::new("alice@contoso.com").role(ids.rls_role.clone());
    let requests: Vec<(&'static str, EmbedRequest)> = vec![
        (
            "report with an RLS identity",
            EmbedRequest::report(workspace.clone(), rls_report.clone()).identity(alice()),
        ),
        (
            "report without RLS",
            EmbedRequest::report(workspace.clone(), ok(ReportId::parse(&ids.report))),
        ),
        (
            "paginated report with an identity",
            EmbedRequest::paginated(workspace.clone(), ok(ReportId::parse(PAGINATED_REPORT)))
                .identity(EffectiveIdentity::new("alice@contoso.com")),
        ),
        (
            "visual with an RLS identity",
            EmbedRequest::visual(workspace.clone(), rls_report.clone(), PAGE, VISUAL).identity(alice()),
        ),
        (
            "dashboard with an identity (two tiles' datasets)",
            EmbedRequest::dashboard(workspace.clone(), dashboard.clone()).identity(alice()),
        ),
        (
            "tile with an identity",
            EmbedRequest::tile(workspace.clone(), dashboard, ok(TileId::parse(&ids.tile))).identity(alice()),
        ),
        (
            "Q&A",
            EmbedRequest::qna(workspace.clone(), ok(DatasetId::parse(&ids.dataset))),
        ),
        (
            "create",
            EmbedRequest::create(workspace, ok(DatasetId::parse(&ids.dataset))),
        ),
    ];
    let rows: Vec<Row> = requests
        .iter()
        .map(|(name, request)| {
            println!("round trips: {name} ...");
            row(&emulator, name, request)
        })
        .collect();

    let mut section = format!(
        "{BEGIN}\n## Round trips: cold, warm and hot\n\nEvery request to the emulator (Power BI and \
         Entra ID) is delayed by {} ms, as a request over the internet is; each embed \
         configuration is made with pbi-embed-ureq (median of {RUNS} runs). **Round trips** are \
         the wall time in delays: what the user waits for, one after another. **Requests** are \
         those the emulator answered; **at once** the most it answered at the same time. Cold: a \
         new client (sign-in included). Warm: a new client after `warm_up` for the item. Hot: \
         the same (user, item) again, refresh-ahead on.\n\n\
         | configuration | cold: round trips (wall) | cold: requests, at once | warm: round trips (wall) | warm: requests | hot: round trips (wall) | hot: requests |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        DELAY.as_millis()
    );
    let wall = |m: Measured| format!("{:.2} s", m.wall.as_secs_f64());
    for row in &rows {
        let _ = writeln!(
            section,
            "| {} | **{}** ({}) | {}, {} | **{}** ({}) | {} | **{}** ({}) | {} |",
            row.name,
            row.cold.round_trips(),
            wall(row.cold),
            row.cold.requests,
            row.cold.most_at_once,
            row.warm.round_trips(),
            wall(row.warm),
            row.warm.requests,
            row.hot.round_trips(),
            wall(row.hot),
            row.hot.requests,
        );
    }
    let cold_report = rows[..2].iter().all(|r| r.cold.round_trips() <= 3);
    let cold_dashboard = rows
        .iter()
        .filter(|r| r.name.starts_with("dashboard"))
        .all(|r| r.cold.round_trips() <= 4);
    let warm_one = rows
        .iter()
        .all(|r| r.warm.round_trips() == 1 && r.warm.requests == 1);
    let hot_none = rows.iter().all(|r| r.hot.requests == 0);
    let met = |ok: bool| if ok { "met" } else { "**missed**" };
    let _ = writeln!(
        section,
        "\nGoals: a report's configuration cold in at most 3 round trips, with or without RLS: \
         {}; a dashboard's with an identity in at most 4: {}; after warm-up, every type in one \
         (its token): {}; hot pairs with refresh-ahead in none: {}.\n{END}",
        met(cold_report),
        met(cold_dashboard),
        met(warm_one),
        met(hot_none)
    );

    pbi_embed_bench::write_section(BEGIN, END, &section);
    print!("{section}");
}
