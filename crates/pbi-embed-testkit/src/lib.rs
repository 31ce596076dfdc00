//! Test scenarios every driver runs — the blocking client, the async client and the
//! hyper example — so that one table decides what a call must end in, and what must have
//! reached Power BI, whichever HTTP stack carries it.

pub mod conformance;
pub mod fake_az;
pub mod hostile;
pub mod redis;
pub mod tls;
pub mod token_service;

use std::time::Duration;

use http::Method;
use pbi_embed_core::{
    ApiRequest, ClientCredentials, ClientId, ClientSecret, ClientSettings, CreateReportToken, Credential,
    DashboardId, DashboardToken, DatasetId, DatasetToken, EffectiveIdentity, EmbedToken, ErrorKind,
    ExchangeError, MultiResourceToken, ReportId, ReportToken, RetryPolicy, TenantId, TileId, TileToken,
    WorkspaceId,
};
use pbi_embed_emulator::{
    Emulator, Fault, FaultRule, FixtureIds, IdentitySummary, MintedToken, Resource, RouteMatch,
};

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
    fn validate(&self) -> Result<(), ExchangeError>;
    fn body(&self) -> Result<Option<Vec<u8>>, ExchangeError>;
}

impl<R: ApiRequest<Output = EmbedToken>> Erased for R {
    fn operation_id(&self) -> &'static str {
        ApiRequest::operation_id(self)
    }
    fn path(&self) -> String {
        ApiRequest::path(self)
    }
    fn validate(&self) -> Result<(), ExchangeError> {
        ApiRequest::validate(self)
    }
    fn body(&self) -> Result<Option<Vec<u8>>, ExchangeError> {
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
    fn validate(&self) -> Result<(), ExchangeError> {
        self.inner().validate()
    }
    fn body(&self) -> Result<Option<Vec<u8>>, ExchangeError> {
        self.inner().body()
    }
    fn parse_success(&self, body: &[u8]) -> Result<EmbedToken, String> {
        EmbedToken::from_json(body)
    }
}

/// What a scenario must end in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A token whose record at the emulator is this (see [`check_minted`]).
    Minted(Box<Expected>),
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
    /// The error's kind, status and code; `None` for a token.
    pub failure: Option<(ErrorKind, Option<u16>, Option<String>)>,
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
    Credential::ServicePrincipal(ClientCredentials::new(tenant, client_id, secret))
}

/// What Power BI must have received for a token, stated on its own (not derived from
/// the request a client built, so a client that builds the wrong request is caught).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The REST operation.
    pub operation: &'static str,
    /// `accessLevel` (single-item routes).
    pub access_level: Option<&'static str>,
    /// Whether Save As is allowed.
    pub allow_save_as: bool,
    /// `lifetimeInMinutes`.
    pub lifetime_in_minutes: Option<i64>,
    /// Every resource granted (in any order); ids in lower case, as the emulator keeps them.
    pub resources: Vec<Resource>,
    /// The identities, in order.
    pub identities: Vec<IdentitySummary>,
    /// Target workspaces.
    pub target_workspaces: Vec<String>,
}

impl Expected {
    /// A grant by `operation` of nothing yet.
    #[must_use]
    pub fn new(operation: &'static str) -> Self {
        Self {
            operation,
            access_level: None,
            allow_save_as: false,
            lifetime_in_minutes: None,
            resources: Vec::new(),
            identities: Vec::new(),
            target_workspaces: Vec::new(),
        }
    }
    /// With this access level.
    #[must_use]
    pub fn access(mut self, level: &'static str) -> Self {
        self.access_level = Some(level);
        self
    }
    /// With Save As allowed.
    #[must_use]
    pub fn save_as(mut self) -> Self {
        self.allow_save_as = true;
        self
    }
    /// With this lifetime.
    #[must_use]
    pub fn lifetime(mut self, minutes: i64) -> Self {
        self.lifetime_in_minutes = Some(minutes);
        self
    }
    /// Granting this resource.
    #[must_use]
    pub fn resource(
        mut self,
        kind: &'static str,
        id: &impl ToString,
        editable: bool,
        xmla: Option<&'static str>,
    ) -> Self {
        self.resources.push(Resource {
            kind: kind.to_owned(),
            id: id.to_string().to_ascii_lowercase(),
            editable,
            xmla_permissions: xmla.map(str::to_owned),
        });
        self
    }
    /// With this identity.
    #[must_use]
    pub fn identity(
        mut self,
        username: &'static str,
        roles: &[&str],
        datasets: &[&dyn ToString],
        custom_data: Option<&'static str>,
    ) -> Self {
        self.identities.push(IdentitySummary {
            username: Some(username.to_owned()),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            datasets: datasets
                .iter()
                .map(|d| d.to_string().to_ascii_lowercase())
                .collect(),
            reports: Vec::new(),
            custom_data: custom_data.map(str::to_owned),
            has_identity_blob: false,
        });
        self
    }
    /// With this target workspace.
    #[must_use]
    pub fn target(mut self, workspace: &impl ToString) -> Self {
        self.target_workspaces.push(workspace.to_string());
        self
    }
}

/// Checks that what the emulator minted is `expected`: the operation, the access level,
/// save-as, the lifetime, every identity, every resource (with its edit right and XMLA
/// permissions) and the target workspaces.
///
/// # Errors
/// What differs.
pub fn check_minted(expected: &Expected, minted: &MintedToken) -> Result<(), String> {
    let mismatch = |what: &str, asked: &dyn std::fmt::Debug, got: &dyn std::fmt::Debug| {
        Err(format!("{what}: expected {asked:?}, the emulator minted {got:?}"))
    };
    if minted.operation != expected.operation {
        return mismatch("operation", &expected.operation, &minted.operation);
    }
    if minted.access_level.as_deref() != expected.access_level {
        return mismatch("accessLevel", &expected.access_level, &minted.access_level);
    }
    if minted.allow_save_as != expected.allow_save_as {
        return mismatch("allowSaveAs", &expected.allow_save_as, &minted.allow_save_as);
    }
    if minted.lifetime_in_minutes != expected.lifetime_in_minutes {
        return mismatch(
            "lifetimeInMinutes",
            &expected.lifetime_in_minutes,
            &minted.lifetime_in_minutes,
        );
    }
    let sorted = |resources: &[Resource]| {
        let mut sorted = resources.to_vec();
        sorted.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
        sorted
    };
    let (want, got) = (sorted(&expected.resources), sorted(&minted.resources));
    if want != got {
        return mismatch("resources", &want, &got);
    }
    if minted.identities != expected.identities {
        return mismatch("identities", &expected.identities, &minted.identities);
    }
    if minted.target_workspaces != expected.target_workspaces {
        return mismatch(
            "targetWorkspaces",
            &expected.target_workspaces,
            &minted.target_workspaces,
        );
    }
    Ok(())
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
        let name = (harness.name(), scenario.name);
        let (failure, minted) = match (&result, &scenario.expect) {
            (Ok(token), Expect::Minted(expected)) => {
                let minted = emulator
                    .minted_token(&token.token_id)
                    .unwrap_or_else(|| panic!("{name:?}: the emulator did not mint it"));
                assert!(
                    emulator.introspect(token.token.secret()).valid,
                    "{name:?}: token not valid"
                );
                if let Err(difference) = check_minted(expected, &minted) {
                    panic!("{name:?}: {difference}");
                }
                let comparable = MintedToken {
                    token_id: String::new(),
                    expiration: String::new(),
                    expires_at_ms: 0,
                    ..minted
                };
                (None, Some(comparable))
            }
            (Err(e), Expect::Failed(kind, status, code)) => {
                let got = (
                    e.kind(),
                    e.status().map(|s| s.as_u16()),
                    e.code().map(str::to_owned),
                );
                assert_eq!(got, (*kind, *status, code.clone()), "{name:?}: {e}");
                (Some(got), None)
            }
            (result, expect) => panic!("{name:?}: expected {expect:?}, got {result:?}"),
        };
        let summary = Summary {
            name: scenario.name,
            failure,
            minted,
            upstream_calls: emulator.generate_token_requests(),
        };
        assert_eq!(
            summary.upstream_calls, scenario.upstream_calls,
            "{name:?}: upstream calls"
        );
        summaries.push(summary);
    }
    summaries
}

/// The table.
#[must_use]
pub fn scenarios(ids: &Ids) -> Vec<Scenario> {
    let ok = |name, request, expected: Expected| Scenario {
        name,
        faults: vec![],
        retry: quick_retries(),
        request,
        expect: Expect::Minted(Box::new(expected)),
        upstream_calls: 1,
    };
    let plain = || {
        Expected::new("Reports_GenerateTokenInGroup")
            .access("View")
            .resource("report", &ids.report, false, None)
    };
    let role = ids.rls_role.as_str();
    let failed = |name, request, kind, status, code, upstream_calls| Scenario {
        name,
        faults: vec![],
        retry: quick_retries(),
        request,
        expect: Expect::failed(kind, status, code),
        upstream_calls,
    };
    let plain_report = || TokenRequest::Report(ReportToken::view(ids.workspace.clone(), ids.report.clone()));
    let faulted = |name, fault: Fault, count, expect: Expect, upstream_calls| Scenario {
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
            Expected::new("Reports_GenerateTokenInGroup")
                .access("View")
                .resource("report", &ids.rls_report, false, None)
                .identity("john", &[role], &[&ids.rls_dataset], None),
        ),
        ok(
            "report for editing, save-as allowed",
            TokenRequest::Report(
                ReportToken::edit(ids.workspace.clone(), ids.report.clone()).allow_save_as(true),
            ),
            Expected::new("Reports_GenerateTokenInGroup")
                .access("Edit")
                .save_as()
                .resource("report", &ids.report, true, None),
        ),
        ok(
            "create a report",
            TokenRequest::Create(
                CreateReportToken::new(ids.workspace.clone(), ids.dataset.clone()).allow_save_as(true),
            ),
            Expected::new("Reports_GenerateTokenForCreateInGroup")
                .access("Create")
                .save_as()
                .resource("dataset", &ids.dataset, false, None)
                .target(&ids.workspace),
        ),
        ok(
            "dashboard with two identities",
            TokenRequest::Dashboard(
                DashboardToken::new(ids.workspace.clone(), ids.dashboard.clone())
                    .identities([ids.rls_identity("a"), ids.rls_identity("b")]),
            ),
            Expected::new("Dashboards_GenerateTokenInGroup")
                .access("View")
                .resource("dashboard", &ids.dashboard, false, None)
                .identity("a", &[role], &[&ids.rls_dataset], None)
                .identity("b", &[role], &[&ids.rls_dataset], None),
        ),
        ok(
            "tile",
            TokenRequest::Tile(
                TileToken::new(ids.workspace.clone(), ids.dashboard.clone(), ids.tile.clone())
                    .identity(ids.rls_identity("a").custom_data("tenant-7"))
                    .lifetime_in_minutes(20),
            ),
            Expected::new("Tiles_GenerateTokenInGroup")
                .access("View")
                .lifetime(20)
                .resource("tile", &ids.tile, false, None)
                .identity("a", &[role], &[&ids.rls_dataset], Some("tenant-7")),
        ),
        ok(
            "dataset",
            TokenRequest::Dataset(DatasetToken::new(ids.workspace.clone(), ids.dataset.clone())),
            Expected::new("Datasets_GenerateTokenInGroup")
                .access("View")
                .resource("dataset", &ids.dataset, false, None),
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
            Expected::new("EmbedToken_GenerateToken")
                .save_as()
                .lifetime(30)
                .resource("report", &ids.rls_report, false, None)
                .resource("report", &ids.report, true, None)
                .resource("dataset", &ids.rls_dataset, false, Some("ReadOnly"))
                .resource("dataset", &ids.dataset, false, None)
                .target(&ids.workspace)
                .identity("a", &[role], &[&ids.rls_dataset], None),
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
            Expect::Minted(Box::new(plain())),
            2,
        ),
        faulted(
            "503 twice, then success",
            Fault::ServerError { status: 503 },
            2,
            Expect::Minted(Box::new(plain())),
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
            Expect::Minted(Box::new(plain())),
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

/// A PKCS#12 (PFX) file holding the PEM `certificate` and its PKCS#8 `key`, protected
/// by `password` (AES-256, as OpenSSL 3 and Windows write them).
///
/// # Panics
/// When the PEM is not a certificate and a PKCS#8 key.
#[must_use]
pub fn pkcs12(certificate: &str, key: &str, password: &str) -> Vec<u8> {
    use base64::Engine as _;
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let der = |pem: &str, label: &str| {
        let body = pem
            .split_once(&format!("-----BEGIN {label}-----"))
            .and_then(|(_, rest)| rest.split_once(&format!("-----END {label}-----")))
            .map(|(body, _)| body.split_whitespace().collect::<String>())
            .unwrap_or_else(|| panic!("no {label} block"));
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let certificate =
        Certificate::from_der(&der(certificate, "CERTIFICATE")).unwrap_or_else(|e| panic!("{e}"));
    let key = PrivateKey::from_der(&der(key, "PRIVATE KEY")).unwrap_or_else(|e| panic!("{e}"));
    let mut store = KeyStore::new();
    store.add_entry(
        "client",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(b"1".as_slice(), key, [certificate])),
    );
    store.writer(password).write().unwrap_or_else(|e| panic!("{e}"))
}

/// The most code lines a driver's `src/` may hold: past it, logic is creeping into a
/// driver that belongs in the core (or in pbi-embed-local, for what both drivers need).
pub const MAX_DRIVER_CODE_LINES: usize = 300;

/// Holds the driver crate at `manifest_dir` to being a pump: at most
/// [`MAX_DRIVER_CODE_LINES`] code lines under its `src/`.
///
/// # Panics
/// When the driver is larger, or its `src/` cannot be read.
#[track_caller]
pub fn assert_driver_is_a_pump(manifest_dir: &str) {
    let lines = code_lines(&std::path::Path::new(manifest_dir).join("src"));
    assert!(
        lines <= MAX_DRIVER_CODE_LINES,
        "{lines} code lines in {manifest_dir}/src, at most {MAX_DRIVER_CODE_LINES}: move logic into the core or pbi-embed-local"
    );
}

/// The code lines (neither blank nor comments) of the Rust files under `dir`.
///
/// # Panics
/// When `dir` cannot be read.
#[must_use]
pub fn code_lines(dir: &std::path::Path) -> usize {
    let mut lines = 0;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            lines += code_lines(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            lines += text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("//"))
                .count();
        }
    }
    lines
}
