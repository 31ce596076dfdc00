//! Test scenarios shared by the blocking and async adapters, so that one table runs
//! through both and must give the same results.

pub mod hostile;

use std::time::Duration;

use pbi_embed_core::{
    ClientId, ClientSecret, CreateReportToken, DashboardId, DashboardToken, DatasetId, DatasetToken,
    EffectiveIdentity, ErrorKind, MultiResourceToken, ReportId, ReportToken, RetryPolicy, TenantId, TileId,
    TileToken, WorkspaceId,
};
use pbi_embed_emulator::{Emulator, Fault, FaultRule, FixtureIds, RouteMatch};

/// A request of any token kind.
#[derive(Clone, Debug)]
pub enum TokenRequest {
    /// Reports GenerateTokenInGroup.
    Report(ReportToken),
    /// Reports GenerateTokenForCreateInGroup.
    Create(CreateReportToken),
    /// Dashboards GenerateTokenInGroup.
    Dashboard(DashboardToken),
    /// Tiles GenerateTokenInGroup.
    Tile(TileToken),
    /// Datasets GenerateTokenInGroup.
    Dataset(DatasetToken),
    /// Embed Token GenerateToken.
    Multi(MultiResourceToken),
}

/// What a scenario must end in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A token granting this kind of resource first (`report`, `dashboard`, ...).
    Minted(&'static str),
    /// An error of this kind, with this status and service code.
    Failed(ErrorKind, Option<u16>, Option<String>),
}

impl Expect {
    /// [`Expect::Failed`] from a string literal code.
    #[must_use]
    pub fn failed(kind: ErrorKind, status: Option<u16>, code: Option<&str>) -> Self {
        Self::Failed(kind, status, code.map(str::to_owned))
    }
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// What it shows.
    pub name: &'static str,
    /// Faults injected before the call.
    pub faults: Vec<FaultRule>,
    /// The retry policy of the client.
    pub retry: RetryPolicy,
    /// The request.
    pub request: TokenRequest,
    /// The expected end.
    pub expect: Expect,
    /// The GenerateToken requests the emulator must have seen.
    pub upstream_calls: u64,
}

/// What a call ended in, in comparable terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// [`Expect`] of what happened.
    pub end: Expect,
    /// The GenerateToken requests the emulator saw.
    pub upstream_calls: u64,
}

/// Parsed fixture ids.
#[derive(Clone, Debug)]
pub struct Ids {
    /// The member workspace.
    pub workspace: WorkspaceId,
    /// The other workspace.
    pub other_workspace: WorkspaceId,
    /// Report on the RLS dataset.
    pub rls_report: ReportId,
    /// The RLS dataset.
    pub rls_dataset: DatasetId,
    /// A role it defines.
    pub rls_role: String,
    /// Report without RLS.
    pub report: ReportId,
    /// Dataset without RLS.
    pub dataset: DatasetId,
    /// The dashboard.
    pub dashboard: DashboardId,
    /// A tile on it.
    pub tile: TileId,
    /// The raw ids.
    pub raw: FixtureIds,
}

impl Ids {
    /// The ids of a running emulator's fixture.
    #[must_use]
    pub fn of(emulator: &Emulator) -> Self {
        let raw = emulator.ids();
        Self {
            workspace: WorkspaceId::parse(&raw.workspace).unwrap_or_else(|e| panic!("{e}")),
            other_workspace: WorkspaceId::parse(&raw.other_workspace).unwrap_or_else(|e| panic!("{e}")),
            rls_report: ReportId::parse(&raw.rls_report).unwrap_or_else(|e| panic!("{e}")),
            rls_dataset: DatasetId::parse(&raw.rls_dataset).unwrap_or_else(|e| panic!("{e}")),
            rls_role: raw.rls_role.clone(),
            report: ReportId::parse(&raw.report).unwrap_or_else(|e| panic!("{e}")),
            dataset: DatasetId::parse(&raw.dataset).unwrap_or_else(|e| panic!("{e}")),
            dashboard: DashboardId::parse(&raw.dashboard).unwrap_or_else(|e| panic!("{e}")),
            tile: TileId::parse(&raw.tile).unwrap_or_else(|e| panic!("{e}")),
            raw,
        }
    }

    /// The service principal's credentials.
    #[must_use]
    pub fn credentials(&self) -> (TenantId, ClientId, ClientSecret) {
        (
            TenantId::parse(&self.raw.tenant).unwrap_or_else(|e| panic!("{e}")),
            ClientId::parse(&self.raw.client_id).unwrap_or_else(|e| panic!("{e}")),
            ClientSecret::new(self.raw.client_secret.clone()),
        )
    }

    /// An identity the RLS dataset accepts.
    pub fn rls_identity(&self, username: &str) -> EffectiveIdentity {
        EffectiveIdentity::new(username)
            .role(self.rls_role.clone())
            .dataset(self.rls_dataset.clone())
    }
}

/// A fast retry policy for tests: 2 retries, 10 ms backoff, `Retry-After` up to 2 s.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(2)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(20))
        .max_retry_after(Duration::from_secs(2))
        .total_budget(Duration::from_secs(10))
}

/// The table.
#[must_use]
pub fn scenarios(ids: &Ids) -> Vec<Scenario> {
    let ok = |name, request, kind| Scenario {
        name,
        faults: vec![],
        retry: quick_retries(),
        request,
        expect: Expect::Minted(kind),
        upstream_calls: 1,
    };
    let failed = |name, request, kind, status, code, upstream_calls| Scenario {
        name,
        faults: vec![],
        retry: quick_retries(),
        request,
        expect: Expect::failed(kind, status, code),
        upstream_calls,
    };
    let plain_report = || TokenRequest::Report(ReportToken::view(ids.workspace.clone(), ids.report.clone()));
    let faulted = |name, fault: Fault, count, expect, upstream_calls| Scenario {
        name,
        faults: vec![FaultRule::next(count, RouteMatch::GenerateToken, fault)],
        retry: quick_retries(),
        request: plain_report(),
        expect,
        upstream_calls,
    };
    vec![
        ok(
            "report with an RLS identity",
            TokenRequest::Report(
                ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
                    .identity(ids.rls_identity("john")),
            ),
            "report",
        ),
        ok(
            "report for editing, save-as allowed",
            TokenRequest::Report(
                ReportToken::edit(ids.workspace.clone(), ids.report.clone()).allow_save_as(true),
            ),
            "report",
        ),
        ok(
            "create a report",
            TokenRequest::Create(CreateReportToken::new(ids.workspace.clone(), ids.dataset.clone())),
            "dataset",
        ),
        ok(
            "dashboard with two identities",
            TokenRequest::Dashboard(
                DashboardToken::new(ids.workspace.clone(), ids.dashboard.clone())
                    .identities([ids.rls_identity("a"), ids.rls_identity("b")]),
            ),
            "dashboard",
        ),
        ok(
            "tile",
            TokenRequest::Tile(
                TileToken::new(ids.workspace.clone(), ids.dashboard.clone(), ids.tile.clone())
                    .identity(ids.rls_identity("a")),
            ),
            "tile",
        ),
        ok(
            "dataset",
            TokenRequest::Dataset(DatasetToken::new(ids.workspace.clone(), ids.dataset.clone())),
            "dataset",
        ),
        ok(
            "multi-resource with RLS and XMLA",
            TokenRequest::Multi(
                MultiResourceToken::new()
                    .report(ids.rls_report.clone())
                    .dataset_with_xmla(ids.rls_dataset.clone(), pbi_embed_core::XmlaPermissions::ReadOnly)
                    .identity(ids.rls_identity("a"))
                    .lifetime_in_minutes(30),
            ),
            "report",
        ),
        failed(
            "RLS identity missing",
            TokenRequest::Report(ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())),
            ErrorKind::RlsIdentity,
            Some(400),
            Some("InvalidRequest"),
            1,
        ),
        failed(
            "not a member of the workspace",
            TokenRequest::Dataset(DatasetToken::new(
                ids.other_workspace.clone(),
                DatasetId::parse("7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d").unwrap_or_else(|e| panic!("{e}")),
            )),
            ErrorKind::NotAuthorized,
            Some(401),
            Some("PowerBINotAuthorizedException"),
            1,
        ),
        failed(
            "unknown report",
            TokenRequest::Report(ReportToken::view(
                ids.workspace.clone(),
                ReportId::parse("00000000-0000-0000-0000-000000000000").unwrap_or_else(|e| panic!("{e}")),
            )),
            ErrorKind::NotFound,
            Some(404),
            Some("PowerBIEntityNotFound"),
            1,
        ),
        failed(
            "invalid input is caught before sending",
            TokenRequest::Report(
                ReportToken::view(ids.workspace.clone(), ids.report.clone())
                    .identity(ids.rls_identity("a"))
                    .identity(ids.rls_identity("b")),
            ),
            ErrorKind::InvalidInput,
            None,
            None,
            0,
        ),
        faulted(
            "429 with Retry-After, then success",
            Fault::Throttle {
                retry_after: "1".into(),
            },
            1,
            Expect::Minted("report"),
            2,
        ),
        faulted(
            "503 twice, then success",
            Fault::ServerError { status: 503 },
            2,
            Expect::Minted("report"),
            3,
        ),
        faulted(
            "503 until the retries run out",
            Fault::ServerError { status: 503 },
            10,
            Expect::failed(ErrorKind::ServerError, Some(503), Some("ServiceUnavailable")),
            3,
        ),
        faulted(
            "429 asking for an hour gives up at once",
            Fault::Throttle {
                retry_after: "3600".into(),
            },
            10,
            Expect::failed(ErrorKind::Throttled, Some(429), Some("TooManyRequests")),
            1,
        ),
        faulted(
            "an HTML page with 200",
            Fault::Html { status: 200 },
            1,
            Expect::failed(ErrorKind::UnreadableResponse, Some(200), None),
            1,
        ),
        faulted(
            "a non-JSON 400",
            Fault::NotJson { status: 400 },
            1,
            Expect::failed(ErrorKind::BadRequest, Some(400), None),
            1,
        ),
        faulted(
            "a dropped connection, then success",
            Fault::DropConnection,
            1,
            Expect::Minted("report"),
            2,
        ),
        faulted(
            "an oversized body",
            Fault::Oversized {
                bytes: 4 * 1024 * 1024,
                advertise_length: false,
            },
            1,
            Expect::failed(ErrorKind::BodyTooLarge, None, None),
            1,
        ),
        faulted(
            "a redirect is not followed",
            Fault::Redirect {
                status: 307,
                location: "http://127.0.0.1:9/elsewhere".into(),
            },
            1,
            Expect::failed(ErrorKind::UnreadableResponse, Some(307), None),
            1,
        ),
    ]
}

/// Starts an emulator for a scenario, with its faults injected after sign-in is possible.
#[must_use]
pub fn emulator_for(scenario: &Scenario) -> Emulator {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("emulator: {e}"));
    for fault in &scenario.faults {
        emulator.inject(fault.clone());
    }
    emulator
}
