//! Test scenarios every driver runs — the blocking client, the async client and the
//! hyper example — so that one table decides what a call must end in, and what must have
//! reached Power BI, whichever HTTP stack carries it.

pub mod conformance;
pub mod hostile;

use std::time::Duration;

use http::Method;
use pbi_embed_core::driver::Credential;
use pbi_embed_core::{
    ApiRequest, ClientCredentials, ClientId, ClientSecret, ClientSettings, CreateReportToken, DashboardId,
    DashboardToken, DatasetId, DatasetToken, EffectiveIdentity, EmbedToken, Error, ErrorKind,
    MultiResourceToken, ReportId, ReportToken, RetryPolicy, TenantId, TileId, TileToken, WorkspaceId,
};
use pbi_embed_emulator::{Emulator, Fault, FaultRule, FixtureIds, IdentitySummary, MintedToken, RouteMatch};

pub use conformance::{Harness, SyncSource};

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

impl TokenRequest {
    fn inner(&self) -> &dyn Erased {
        match self {
            Self::Report(op) => op,
            Self::Create(op) => op,
            Self::Dashboard(op) => op,
            Self::Tile(op) => op,
            Self::Dataset(op) => op,
            Self::Multi(op) => op,
        }
    }
}

/// The object-safe part of [`ApiRequest`], to delegate to.
trait Erased {
    fn operation_id(&self) -> &'static str;
    fn path(&self) -> String;
    fn validate(&self) -> Result<(), Error>;
    fn body(&self) -> Result<Option<Vec<u8>>, Error>;
}

impl<R: ApiRequest<Output = EmbedToken>> Erased for R {
    fn operation_id(&self) -> &'static str {
        ApiRequest::operation_id(self)
    }
    fn path(&self) -> String {
        ApiRequest::path(self)
    }
    fn validate(&self) -> Result<(), Error> {
        ApiRequest::validate(self)
    }
    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        ApiRequest::body(self)
    }
}

/// Any token request, as one request type, so a driver mints it with `embed_token`.
impl ApiRequest for TokenRequest {
    type Output = EmbedToken;

    fn operation_id(&self) -> &'static str {
        self.inner().operation_id()
    }
    fn output_name(&self) -> &'static str {
        "EmbedToken"
    }
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> String {
        self.inner().path()
    }
    fn validate(&self) -> Result<(), Error> {
        self.inner().validate()
    }
    fn body(&self) -> Result<Option<Vec<u8>>, Error> {
        self.inner().body()
    }
    fn parse_success(&self, body: &[u8]) -> Result<EmbedToken, String> {
        EmbedToken::from_json(body)
    }
}

/// What a scenario must end in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A token whose record at the emulator matches the request (see [`check_minted`]).
    Minted,
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
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The scenario.
    pub name: &'static str,
    /// [`Expect`] of what happened.
    pub end: Expect,
    /// What the emulator minted, as it recorded it (token ids and expiries left out).
    pub minted: Option<MintedToken>,
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
}

/// Settings for a client of `emulator`: its base URL for both hosts, quick retries, a
/// 10 s deadline.
#[must_use]
pub fn settings_for(emulator: &Emulator) -> ClientSettings {
    let mut settings = ClientSettings::default();
    settings.api_base = Some(emulator.base_url());
    settings.authority_host = Some(emulator.base_url());
    settings.retry = quick_retries();
    settings.deadline = Duration::from_secs(10);
    settings
}

/// The emulator's service principal, as a credential.
#[must_use]
pub fn service_principal(emulator: &Emulator) -> Credential {
    let (tenant, client_id, secret) = Ids::of(emulator).credentials();
    Credential::ClientSecret(ClientCredentials::new(tenant, client_id, secret))
}

/// Checks that what the emulator minted is what `request` asked for: the operation, the
/// access level, save-as, the lifetime, every identity, every resource (with its edit
/// right and XMLA permissions) and the target workspaces.
///
/// # Errors
/// What differs.
pub fn check_minted(request: &TokenRequest, minted: &MintedToken) -> Result<(), String> {
    let mismatch = |what: &str, asked: &dyn std::fmt::Debug, got: &dyn std::fmt::Debug| {
        Err(format!("{what}: asked {asked:?}, the emulator minted {got:?}"))
    };
    if minted.operation != ApiRequest::operation_id(request) {
        return mismatch("operation", &ApiRequest::operation_id(request), &minted.operation);
    }
    let (identities, lifetime) = match request {
        TokenRequest::Multi(op) => {
            let body = op.request_body();
            for report in &body.reports {
                let editable = report.allow_edit == Some(true);
                if !minted
                    .resources
                    .iter()
                    .any(|r| r.kind == "report" && r.id == report.id.as_str() && r.editable == editable)
                {
                    return mismatch("report", &(report.id.as_str(), editable), &minted.resources);
                }
            }
            for dataset in &body.datasets {
                let xmla = dataset.xmla_permissions.as_ref().map(|x| x.as_str().to_owned());
                if !minted.resources.iter().any(|r| {
                    r.kind == "dataset"
                        && r.id.eq_ignore_ascii_case(dataset.id.as_str())
                        && r.xmla_permissions == xmla
                }) {
                    return mismatch("dataset", &(dataset.id.as_str(), xmla), &minted.resources);
                }
            }
            let targets: Vec<&str> = body.target_workspaces.iter().map(|w| w.id.as_str()).collect();
            if minted.target_workspaces != targets {
                return mismatch("targetWorkspaces", &targets, &minted.target_workspaces);
            }
            (&body.identities, body.lifetime_in_minutes)
        }
        single => {
            let (body, kind, id) = match single {
                TokenRequest::Report(op) => (op.request_body(), "report", op.route().report.as_str()),
                TokenRequest::Create(op) => {
                    let dataset = op.request_body().dataset_id.as_ref().map_or("", |d| d.as_str());
                    (op.request_body(), "dataset", dataset)
                }
                TokenRequest::Dashboard(op) => {
                    (op.request_body(), "dashboard", op.route().dashboard.as_str())
                }
                TokenRequest::Tile(op) => (op.request_body(), "tile", op.route().tile.as_str()),
                TokenRequest::Dataset(op) => (op.request_body(), "dataset", op.route().dataset.as_str()),
                TokenRequest::Multi(_) => unreachable!("handled above"),
            };
            let level = body.access_level.as_ref().map(|l| l.as_str().to_owned());
            if minted.access_level != level {
                return mismatch("accessLevel", &level, &minted.access_level);
            }
            let save_as = body.allow_save_as.unwrap_or(false);
            if minted.allow_save_as != save_as {
                return mismatch("allowSaveAs", &save_as, &minted.allow_save_as);
            }
            let first = minted
                .resources
                .first()
                .map(|r| (r.kind.as_str(), r.id.as_str(), r.editable));
            let editable = level.as_deref() == Some("Edit");
            if first != Some((kind, &id.to_ascii_lowercase(), editable)) {
                return mismatch("resource", &(kind, id, editable), &minted.resources);
            }
            (&body.identities, body.lifetime_in_minutes)
        }
    };
    let asked: Vec<IdentitySummary> = identities.iter().map(summary).collect();
    if minted.identities != asked {
        return mismatch("identities", &asked, &minted.identities);
    }
    let lifetime = lifetime.map(i64::from);
    if minted.lifetime_in_minutes != lifetime {
        return mismatch("lifetimeInMinutes", &lifetime, &minted.lifetime_in_minutes);
    }
    Ok(())
}

/// An identity as the emulator records it.
fn summary(identity: &EffectiveIdentity) -> IdentitySummary {
    IdentitySummary {
        username: identity.username.clone(),
        roles: identity.roles.clone(),
        datasets: identity
            .datasets
            .iter()
            .map(|d| d.as_str().to_ascii_lowercase())
            .collect(),
        reports: identity.reports.iter().map(|r| r.as_str().to_owned()).collect(),
        custom_data: identity.custom_data.clone(),
        has_identity_blob: identity.identity_blob.is_some(),
    }
}

/// Runs every scenario through `harness` (which builds a client and mints), asserts each
/// ends as expected with what it asked for at the emulator, and returns the summaries (to
/// compare drivers).
///
/// # Panics
/// When a scenario ends otherwise.
pub fn run_scenarios<H: Harness>(harness: &H) -> Vec<Summary> {
    let ids = Ids::of(&Emulator::start().unwrap_or_else(|e| panic!("emulator: {e}")));
    let mut summaries = Vec::new();
    for scenario in scenarios(&ids) {
        let emulator = emulator_for(&scenario);
        let mut settings = settings_for(&emulator);
        settings.retry = scenario.retry;
        let result = harness
            .build(settings, service_principal(&emulator), None)
            .and_then(|client| harness.mint(&client, &scenario.request));
        let (end, minted) = match &result {
            Ok(token) => {
                let minted = emulator.minted_token(&token.token_id).unwrap_or_else(|| {
                    panic!(
                        "{}: {}: the emulator did not mint it",
                        harness.name(),
                        scenario.name
                    )
                });
                assert!(
                    emulator.introspect(token.token.secret()).valid,
                    "{}: token not valid",
                    scenario.name
                );
                if let Err(difference) = check_minted(&scenario.request, &minted) {
                    panic!("{}: {}: {difference}", harness.name(), scenario.name);
                }
                let comparable = MintedToken {
                    token_id: String::new(),
                    expiration: String::new(),
                    expires_at_ms: 0,
                    ..minted
                };
                (Expect::Minted, Some(comparable))
            }
            Err(e) => (
                Expect::failed(e.kind(), e.status().map(|s| s.as_u16()), e.code()),
                None,
            ),
        };
        let summary = Summary {
            name: scenario.name,
            end,
            minted,
            upstream_calls: emulator.generate_token_requests(),
        };
        assert_eq!(
            (&summary.end, summary.upstream_calls),
            (&scenario.expect, scenario.upstream_calls),
            "{}: {}: {result:?}",
            harness.name(),
            scenario.name
        );
        summaries.push(summary);
    }
    summaries
}

/// The table.
#[must_use]
pub fn scenarios(ids: &Ids) -> Vec<Scenario> {
    let ok = |name, request| Scenario {
        name,
        faults: vec![],
        retry: quick_retries(),
        request,
        expect: Expect::Minted,
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
        ),
        ok(
            "report for editing, save-as allowed",
            TokenRequest::Report(
                ReportToken::edit(ids.workspace.clone(), ids.report.clone()).allow_save_as(true),
            ),
        ),
        ok(
            "create a report",
            TokenRequest::Create(
                CreateReportToken::new(ids.workspace.clone(), ids.dataset.clone()).allow_save_as(true),
            ),
        ),
        ok(
            "dashboard with two identities",
            TokenRequest::Dashboard(
                DashboardToken::new(ids.workspace.clone(), ids.dashboard.clone())
                    .identities([ids.rls_identity("a"), ids.rls_identity("b")]),
            ),
        ),
        ok(
            "tile",
            TokenRequest::Tile(
                TileToken::new(ids.workspace.clone(), ids.dashboard.clone(), ids.tile.clone())
                    .identity(ids.rls_identity("a").custom_data("tenant-7"))
                    .lifetime_in_minutes(20),
            ),
        ),
        ok(
            "dataset",
            TokenRequest::Dataset(DatasetToken::new(ids.workspace.clone(), ids.dataset.clone())),
        ),
        ok(
            "multi-resource with RLS and XMLA",
            TokenRequest::Multi(
                MultiResourceToken::new()
                    .report(ids.rls_report.clone())
                    .editable_report(ids.report.clone())
                    .dataset_with_xmla(ids.rls_dataset.clone(), pbi_embed_core::XmlaPermissions::ReadOnly)
                    .dataset(ids.dataset.clone())
                    .target_workspace(ids.workspace.clone())
                    .identity(ids.rls_identity("a"))
                    .lifetime_in_minutes(30),
            ),
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
            Expect::Minted,
            2,
        ),
        faulted(
            "503 twice, then success",
            Fault::ServerError { status: 503 },
            2,
            Expect::Minted,
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
            Expect::Minted,
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
