//! What every driver must do over real sockets, written once: each check takes a
//! [`Harness`] and panics with the check's name when the driver falls short. The
//! decisions themselves (renewal, retries, caches, deadlines) are tested against the
//! core's flow with a simulated clock; these checks make sure a driver carries them
//! out — concurrency, time-outs, redirects, bodies, logging — on its HTTP stack.
//!
//! A driver's test file implements [`Harness`] and invokes
//! [`conformance_tests!`](crate::conformance_tests).

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pbi_embed_core::driver::EnvReader;
use pbi_embed_core::{
    AccessToken, BearerToken, BoxError, ClientCredentials, ClientId, ClientSecret, ClientSettings,
    Credential, DatasetId, EffectiveIdentity, EmbedConfig, EmbedRequest, EmbedToken, Error, ErrorKind,
    IdentityBlob, ProfileId, ReportId, ReportToken, RetryPolicy, TenantId, WorkspaceId,
};
use pbi_embed_emulator::{Emulator, Fault, FaultRule, Route, RouteMatch};

use crate::hostile::{FullBacklog, HUGE, HostileServer, cases};
use crate::tls::{ConnectProxy, bad_certificates, tls_emulator};
use crate::{Ids, TokenRequest, quick_retries, service_principal, settings_for};

/// A blocking token source a harness wraps into its driver's own kind.
pub type SyncSource = Arc<dyn Fn() -> Result<BearerToken, BoxError> + Send + Sync>;

/// A driver under test.
pub trait Harness: Sync {
    /// Its client.
    type Client: Clone + Send + Sync + std::fmt::Debug + 'static;

    /// Its name, for messages.
    fn name(&self) -> &'static str;

    /// A client for `settings` and `credential`; `source` backs [`Credential::TokenSource`].
    ///
    /// # Errors
    /// What building said.
    fn build(
        &self,
        settings: ClientSettings,
        credential: Credential,
        source: Option<SyncSource>,
    ) -> Result<Self::Client, Error>;

    /// A client for `settings` that signs in as the service principal that `env` names.
    /// A driver overrides this to go through its own builder's
    /// `service_principal_from_env`; the default reads `env` with the core's function.
    ///
    /// # Errors
    /// What building said.
    fn build_from_env(&self, settings: ClientSettings, env: EnvReader) -> Result<Self::Client, Error> {
        let var = |name: &'static str| {
            let value = env(name)
                .and_then(|v| v.into_string().ok())
                .filter(|v| !v.is_empty());
            value.ok_or_else(|| Error::invalid_input(name, "is not set"))
        };
        let credential = Credential::ServicePrincipal(ClientCredentials::new(
            TenantId::parse(&var("AZURE_TENANT_ID")?)?,
            ClientId::parse(&var("AZURE_CLIENT_ID")?)?,
            ClientSecret::new(var("AZURE_CLIENT_SECRET")?),
        ));
        self.build(settings, credential, None)
    }

    /// Mints every request at once (threads for a blocking driver, tasks for an async
    /// one); the results in the requests' order.
    fn mint_all(&self, client: &Self::Client, requests: &[TokenRequest]) -> Vec<Result<EmbedToken, Error>>;

    /// An embed configuration.
    ///
    /// # Errors
    /// What the call ended in.
    fn embed_config(&self, client: &Self::Client, request: &EmbedRequest) -> Result<EmbedConfig, Error>;

    /// Every configuration one token serves (several reports under one token).
    ///
    /// # Errors
    /// What the call ended in.
    fn embed_configs(&self, client: &Self::Client, request: &EmbedRequest)
    -> Result<Vec<EmbedConfig>, Error>;

    /// Signs in.
    ///
    /// # Errors
    /// What the call ended in.
    fn sign_in(&self, client: &Self::Client) -> Result<BearerToken, Error>;

    /// Warms up for `requests` (signs in, reads what their configurations need).
    ///
    /// # Errors
    /// What the call ended in.
    fn warm_up(&self, client: &Self::Client, requests: &[EmbedRequest]) -> Result<(), Error>;

    /// Fetches calls are leading now.
    fn in_flight(&self, client: &Self::Client) -> usize;

    /// Mints one request.
    ///
    /// # Errors
    /// What the call ended in.
    fn mint(&self, client: &Self::Client, request: &TokenRequest) -> Result<EmbedToken, Error> {
        self.mint_all(client, std::slice::from_ref(request))
            .pop()
            .unwrap_or_else(|| panic!("{}: mint_all returned nothing", self.name()))
    }
}

/// Declares one `#[test]` per check of this module for `$harness` (an expression).
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@each $harness;
            scenario_table, one_sign_in_for_many_calls, identical_requests_share_one_token,
            tokens_near_expiry_are_not_reused, token_expired_signs_in_again_once,
            a_fixed_token_is_not_renewed, retry_after_dates_are_honoured, an_attempt_is_bounded,
            the_deadline_bounds_the_whole_call, redirects_are_not_followed,
            sign_in_errors_say_what_entra_said, sign_in_is_retried, the_profile_reaches_power_bi,
            builder_checks, report_config, rls_preflight, preflight_skipped_when_unreadable,
            dashboard_and_tile_configs, hostile_servers, a_server_that_never_reads,
            huge_requests_are_refused_before_sending, a_connect_is_bounded,
            the_service_principal_from_the_environment, tls_with_an_extra_root,
            tls_through_a_connect_proxy, certificates_that_do_not_verify, the_platform_verifier,
            every_embed_type, managed_identity_signs_in, certificate_signs_in,
            workload_identity_signs_in, azure_cli_signs_in,
            certificate_files_are_read_at_every_sign_in, refresh_ahead_mints_in_the_background,
            steps_go_side_by_side_and_warm_up_leaves_one);
    };
    (@each $harness:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                $crate::conformance::$check(&$harness);
            }
        )*
    };
}

fn build<H: Harness>(harness: &H, settings: ClientSettings, credential: Credential) -> H::Client {
    harness
        .build(settings, credential, None)
        .unwrap_or_else(|e| panic!("{}: build: {e}", harness.name()))
}

fn ok<T>(harness: &impl Harness, what: &str, result: Result<T, Error>) -> T {
    result.unwrap_or_else(|e| panic!("{}: {what}: {e}", harness.name()))
}

fn report(ids: &Ids) -> TokenRequest {
    TokenRequest::Report(ReportToken::view(ids.workspace.clone(), ids.report.clone()))
}

fn no_cache(emulator: &Emulator) -> ClientSettings {
    let mut settings = settings_for(emulator);
    settings.embed_cache = None;
    settings
}

/// The shared scenario table ([`crate::run_scenarios`]).
pub fn scenario_table(harness: &impl Harness) {
    crate::run_scenarios(harness);
}

/// Sixteen concurrent calls sign in once. The sign-in is slowed so that every call
/// arrives while it is under way, however the threads or tasks are scheduled.
pub fn one_sign_in_for_many_calls(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, no_cache(&emulator), service_principal(&emulator));
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::Entra,
        Fault::Delay { millis: 500 },
    ));
    let requests = vec![report(&ids); 16];
    for result in harness.mint_all(&client, &requests) {
        ok(harness, "concurrent call", result);
    }
    assert_eq!(
        emulator.requests(Route::EntraToken),
        1,
        "{}: one sign-in",
        harness.name()
    );
    assert_eq!(emulator.generate_token_requests(), 16, "{}", harness.name());
    assert_eq!(
        harness.in_flight(&client),
        0,
        "{}: nothing left in flight",
        harness.name()
    );
}

/// Identical requests share one token, sequential or concurrent; another identity is
/// another token.
pub fn identical_requests_share_one_token(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    let first = ok(harness, "first", harness.mint(&client, &report(&ids)));
    for _ in 0..9 {
        let again = ok(harness, "again", harness.mint(&client, &report(&ids)));
        assert_eq!(again.token_id, first.token_id, "{}", harness.name());
    }
    assert_eq!(
        emulator.generate_token_requests(),
        1,
        "{}: sequential",
        harness.name()
    );
    let rls = TokenRequest::Report(
        ReportToken::view(ids.workspace.clone(), ids.rls_report.clone()).identity(ids.rls_identity("john")),
    );
    // Slowed, so that every call arrives while the first is under way.
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 500 },
    ));
    let tokens: Vec<String> = harness
        .mint_all(&client, &vec![rls; 16])
        .into_iter()
        .map(|r| ok(harness, "concurrent identical", r).token_id)
        .collect();
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "{}: {tokens:?}",
        harness.name()
    );
    assert_eq!(
        emulator.generate_token_requests(),
        2,
        "{}: concurrent identical calls share one",
        harness.name()
    );
    let other = TokenRequest::Report(
        ReportToken::view(ids.workspace.clone(), ids.rls_report.clone()).identity(ids.rls_identity("iris")),
    );
    ok(harness, "other identity", harness.mint(&client, &other));
    assert_eq!(
        emulator.generate_token_requests(),
        3,
        "{}: another identity",
        harness.name()
    );
    assert_eq!(harness.in_flight(&client), 0, "{}", harness.name());
}

/// A token inside the cache's margin is never served from it.
pub fn tokens_near_expiry_are_not_reused(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    let short = TokenRequest::Report(
        ReportToken::view(ids.workspace.clone(), ids.report.clone()).lifetime_in_minutes(5),
    );
    ok(harness, "first", harness.mint(&client, &short));
    ok(harness, "second", harness.mint(&client, &short));
    assert_eq!(emulator.generate_token_requests(), 2, "{}", harness.name());
}

/// Power BI's 403 `TokenExpired` leads to one new token from the source, and a retry.
pub fn token_expired_signs_in_again_once(harness: &impl Harness) {
    let emulator = Arc::new(Emulator::start().unwrap_or_else(|e| panic!("{e}")));
    let ids = Ids::of(&emulator);
    let calls = Arc::new(AtomicU32::new(0));
    let (issuer, count, client_id) = (
        Arc::clone(&emulator),
        Arc::clone(&calls),
        ids.raw.client_id.clone(),
    );
    let source: SyncSource = Arc::new(move || {
        // The first token has already expired, though it claims an hour.
        let lifetime = if count.fetch_add(1, Ordering::SeqCst) == 0 {
            0
        } else {
            3600
        };
        let token = issuer
            .issue_access_token(&client_id, Duration::from_secs(lifetime))
            .ok_or("unknown client")?;
        Ok(BearerToken::new(
            AccessToken::new(token),
            SystemTime::now() + Duration::from_secs(3600),
        ))
    });
    let client = harness
        .build(no_cache(&emulator), Credential::TokenSource, Some(source))
        .unwrap_or_else(|e| panic!("{}: {e}", harness.name()));
    ok(
        harness,
        "after TokenExpired",
        harness.mint(&client, &report(&ids)),
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "{}: one renewal", harness.name());
    assert_eq!(emulator.generate_token_requests(), 2, "{}", harness.name());
}

/// A fixed bearer token that expired ends the call with `TokenExpired`, without a retry.
pub fn a_fixed_token_is_not_renewed(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let expired = emulator
        .issue_access_token(&ids.raw.client_id, Duration::ZERO)
        .unwrap_or_default();
    let client = build(
        harness,
        settings_for(&emulator),
        Credential::BearerToken(AccessToken::new(expired)),
    );
    let err = harness.mint(&client, &report(&ids)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TokenExpired, "{}: {err}", harness.name());
    assert_eq!(
        emulator.generate_token_requests(),
        1,
        "{}: not retried",
        harness.name()
    );
}

/// A 429 whose `Retry-After` is an HTTP date is retried no sooner than that date, and a
/// 408 is retried too.
pub fn retry_after_dates_are_honoured(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, no_cache(&emulator), service_principal(&emulator));
    ok(harness, "sign-in", harness.sign_in(&client));
    // Two seconds ahead, to the second: at least one second of waiting.
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Throttle { retry_after: at },
    ));
    let started = Instant::now();
    ok(harness, "after Retry-After", harness.mint(&client, &report(&ids)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "{}: waited {waited:?}",
        harness.name()
    );
    assert_eq!(emulator.generate_token_requests(), 2, "{}", harness.name());
    let timeout_body = r#"{"error":{"code":"RequestTimeout","message":"The request timed out"}}"#;
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Custom {
            status: 408,
            headers: vec![],
            body: timeout_body.into(),
        },
    ));
    ok(harness, "after 408", harness.mint(&client, &report(&ids)));
    assert_eq!(
        emulator.generate_token_requests(),
        4,
        "{}: 408 retried",
        harness.name()
    );
}

/// One attempt is bounded by the time-out.
pub fn an_attempt_is_bounded(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let mut settings = no_cache(&emulator);
    settings.timeout = Duration::from_millis(300);
    settings.retry = RetryPolicy::none();
    let client = build(harness, settings, service_principal(&emulator));
    ok(harness, "sign-in", harness.sign_in(&client));
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 3000 },
    ));
    let started = Instant::now();
    let err = harness.mint(&client, &report(&ids)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{}: {err}", harness.name());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{}: {:?}",
        harness.name(),
        started.elapsed()
    );
    assert!(
        err.host().is_some_and(|h| h.starts_with("127.0.0.1:")),
        "{}: {err}",
        harness.name()
    );
}

/// A host that never answers a connection attempt is given up on after the connect
/// time-out, long before the attempt's own time-out; the error names the host.
pub fn a_connect_is_bounded(harness: &impl Harness) {
    let silent = FullBacklog::start();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let mut settings = no_cache(&emulator);
    settings.authority_host = Some(silent.url());
    settings.connect_timeout = Duration::from_millis(300);
    settings.timeout = Duration::from_secs(20);
    settings.retry = RetryPolicy::none();
    let client = build(harness, settings, service_principal(&emulator));
    let started = Instant::now();
    let err = harness.mint(&client, &report(&ids)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{}: {:?}: {err}",
        harness.name(),
        started.elapsed()
    );
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Network),
        "{}: {err}",
        harness.name()
    );
    let host = silent.url().trim_start_matches("http://").to_owned();
    assert_eq!(err.host(), Some(host.as_str()), "{}: {err}", harness.name());
    assert_eq!(emulator.generate_token_requests(), 0, "{}", harness.name());
}

/// `service_principal_from_env` signs in as the principal the variables name, and a
/// missing variable is named (not its value) before anything is sent.
pub fn the_service_principal_from_the_environment(harness: &impl Harness) {
    fn fixture_env(name: &str) -> Option<std::ffi::OsString> {
        let fixture = pbi_embed_emulator::Fixture::default();
        let principal = fixture.service_principals.first()?;
        match name {
            "AZURE_TENANT_ID" => Some(fixture.tenant.id.into()),
            "AZURE_CLIENT_ID" => Some(principal.client_id.clone().into()),
            "AZURE_CLIENT_SECRET" => Some(principal.client_secret.clone().into()),
            _ => None,
        }
    }
    fn without_secret(name: &str) -> Option<std::ffi::OsString> {
        (name != "AZURE_CLIENT_SECRET")
            .then(|| fixture_env(name))
            .flatten()
    }
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = harness
        .build_from_env(no_cache(&emulator), fixture_env)
        .unwrap_or_else(|e| panic!("{}: build: {e}", harness.name()));
    let token = ok(harness, "mint", harness.mint(&client, &report(&ids)));
    let minted = emulator
        .minted_token(&token.token_id)
        .unwrap_or_else(|| panic!("{}: no record", harness.name()));
    let (_, client_id, _) = ids.credentials();
    assert_eq!(minted.client_id, client_id.as_str(), "{}", harness.name());
    assert_eq!(emulator.requests(Route::EntraToken), 1, "{}", harness.name());

    let err = harness
        .build_from_env(no_cache(&emulator), without_secret)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}: {err}", harness.name());
    assert!(
        err.to_string().contains("AZURE_CLIENT_SECRET"),
        "{}: {err}",
        harness.name()
    );
    assert!(!err.was_sent(), "{}", harness.name());
}

/// A server that drips its answer, with retries, cannot take a call past its deadline.
pub fn the_deadline_bounds_the_whole_call(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let mut settings = no_cache(&emulator);
    settings.deadline = Duration::from_millis(1200);
    settings.timeout = Duration::from_secs(30);
    let client = build(harness, settings, service_principal(&emulator));
    emulator.inject(FaultRule::next(
        10,
        RouteMatch::GenerateToken,
        Fault::Drip { interval_millis: 100 },
    ));
    let started = Instant::now();
    let err = harness.mint(&client, &report(&ids)).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{}: {err}", harness.name());
    assert!(
        took < Duration::from_millis(1700),
        "{}: took {took:?}",
        harness.name()
    );
}

/// A redirect is an error that names it; the other host is never contacted.
pub fn redirects_are_not_followed(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    elsewhere.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
    let location = format!(
        "http://{}/v1.0/myorg/GenerateToken",
        elsewhere.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let client = build(harness, no_cache(&emulator), service_principal(&emulator));
    for status in [302, 307] {
        let redirect = Fault::Redirect {
            status,
            location: location.clone(),
        };
        emulator.inject(FaultRule::next(1, RouteMatch::GenerateToken, redirect));
        let err = harness.mint(&client, &report(&ids)).unwrap_err();
        assert_eq!(
            err.status().map(|s| s.as_u16()),
            Some(status),
            "{}: {err}",
            harness.name()
        );
        assert!(
            err.to_string().contains("not followed"),
            "{}: {err}",
            harness.name()
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        elsewhere.accept().is_err(),
        "{}: the other host was contacted",
        harness.name()
    );
}

/// A refused sign-in says what Entra ID said, and never the secret.
pub fn sign_in_errors_say_what_entra_said(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let (tenant, client_id, _) = Ids::of(&emulator).credentials();
    let wrong = ClientSecret::new("wrong-secret-value");
    let credential = Credential::ServicePrincipal(ClientCredentials::new(tenant, client_id, wrong));
    let client = build(harness, settings_for(&emulator), credential);
    let err = harness.sign_in(&client).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignIn, "{}: {err}", harness.name());
    let text = err.to_string();
    let expected = "Entra_ClientCredentials at 127.0.0.1:";
    assert!(text.starts_with(expected), "{}: {text}", harness.name());
    assert!(
        text.contains("Entra ID sign-in failed with 401 Unauthorized invalid_client: AADSTS7000215"),
        "{text}"
    );
    assert!(
        err.hint().is_some_and(|h| h.contains("client secret")),
        "{}: {:?}",
        harness.name(),
        err.hint()
    );
    assert!(
        !format!("{text} {err:?} {client:?}").contains("wrong-secret-value"),
        "{}",
        harness.name()
    );
    assert_eq!(
        emulator.requests(Route::EntraToken),
        1,
        "{}: a 401 is not retried",
        harness.name()
    );
}

/// A sign-in that meets a 503 is retried like any call.
pub fn sign_in_is_retried(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    emulator.inject(FaultRule::next(
        2,
        RouteMatch::Entra,
        Fault::ServerError { status: 503 },
    ));
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    ok(
        harness,
        "mint after two failed sign-ins",
        harness.mint(&client, &report(&ids)),
    );
    assert_eq!(emulator.requests(Route::EntraToken), 3, "{}", harness.name());
}

/// The profile a client acts as reaches Power BI, and the minted token records it.
pub fn the_profile_reaches_power_bi(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let profile = ProfileId::parse("a4df5235-6f18-4141-9e99-0c3512f41306").unwrap_or_else(|e| panic!("{e}"));
    let mut settings = settings_for(&emulator);
    settings.profile = Some(profile.clone());
    let client = build(harness, settings, service_principal(&emulator));
    let token = ok(harness, "with a profile", harness.mint(&client, &report(&ids)));
    let minted = emulator
        .minted_token(&token.token_id)
        .unwrap_or_else(|| panic!("not minted"));
    assert_eq!(
        minted.profile_id.as_deref(),
        Some(profile.as_str()),
        "{}",
        harness.name()
    );
}

/// A client without a credential, or with plain HTTP to a host that is not loopback
/// (where a bearer token or the secret would go in clear), is not built.
pub fn builder_checks(harness: &impl Harness) {
    let bearer = || Credential::BearerToken(AccessToken::new("t"));
    let mut plain_api = ClientSettings::default();
    plain_api.api_base = Some("http://example.com".into());
    let err = harness.build(plain_api, bearer(), None).unwrap_err();
    assert!(err.to_string().contains("apiBase"), "{}: {err}", harness.name());
    let mut plain_authority = ClientSettings::default();
    plain_authority.authority_host = Some("http://login.example.com".into());
    let err = harness.build(plain_authority, bearer(), None).unwrap_err();
    assert!(
        err.to_string().contains("authorityHost"),
        "{}: {err}",
        harness.name()
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}", harness.name());
    let mut zero = ClientSettings::default();
    zero.timeout = Duration::ZERO;
    let err = harness.build(zero, bearer(), None).unwrap_err();
    assert!(err.to_string().contains("timeout"), "{}: {err}", harness.name());
    let err = harness
        .build(ClientSettings::default(), Credential::TokenSource, None)
        .unwrap_err();
    assert!(
        err.to_string().contains("tokenSource"),
        "{}: {err}",
        harness.name()
    );
}

/// A report's configuration is what powerbi-client takes; metadata, flags and token are
/// cached, so 40 calls for one user and report make one of each upstream.
pub fn report_config(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    let request = EmbedRequest::report(ids.workspace.clone(), ids.rls_report.clone())
        .identity(EffectiveIdentity::new("alice@contoso.com").role(ids.rls_role.clone()));
    let config = ok(harness, "report config", harness.embed_config(&client, &request));
    let json = serde_json::to_value(&config).unwrap_or_default();
    assert_eq!(json["type"], "report");
    assert_eq!(json["id"], ids.rls_report.as_str());
    assert_eq!(json["tokenType"], 1);
    assert_eq!(json["groupId"], ids.workspace.as_str());
    assert_eq!(json["permissions"], 0);
    let embed_url = json["embedUrl"].as_str().unwrap_or_default();
    assert!(
        embed_url.starts_with(&format!("{}/reportEmbed?reportId=", emulator.base_url())),
        "{embed_url}"
    );
    let token = json["accessToken"].as_str().unwrap_or_default();
    let seen = emulator.introspect(token);
    assert!(seen.valid, "{}: {seen:?}", harness.name());
    let minted = seen.token.unwrap_or_else(|| panic!("no record"));
    assert_eq!(
        minted.operation, "EmbedToken_GenerateToken",
        "the multi-resource token"
    );
    assert!(
        minted
            .resources
            .iter()
            .any(|r| r.kind == "report" && r.id == ids.rls_report.as_str())
    );
    assert!(
        minted
            .resources
            .iter()
            .any(|r| r.kind == "dataset" && r.id == ids.rls_dataset.as_str())
    );
    assert_eq!(
        minted.identities[0].username.as_deref(),
        Some("alice@contoso.com")
    );
    assert_eq!(
        minted.identities[0].datasets,
        [ids.rls_dataset.to_string()],
        "filled from the report"
    );
    assert!(!format!("{config:?}").contains(token), "Debug hides the token");
    for _ in 1..40 {
        ok(harness, "again", harness.embed_config(&client, &request));
    }
    assert_eq!(
        emulator.requests(Route::ReportsGetReportInGroup),
        1,
        "{}: report metadata cached",
        harness.name()
    );
    assert_eq!(
        emulator.requests(Route::DatasetsGetDatasetInGroup),
        1,
        "{}: flags cached",
        harness.name()
    );
    assert_eq!(
        emulator.generate_token_requests(),
        1,
        "{}: token cached",
        harness.name()
    );
}

/// The RLS pre-flight names identity mistakes in its own words, and no token is minted:
/// from flags in the cache before a token is asked for, else from the flags read beside
/// the token request Power BI refused. With it off, Power BI's own refusal comes back.
pub fn rls_preflight(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    let on = |report: &ReportId| EmbedRequest::report(ids.workspace.clone(), report.clone());
    for (request, message) in rls_mistakes(&ids) {
        let err = harness.embed_config(&client, &request).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RlsIdentity, "{}: {err}", harness.name());
        let text = err.to_string();
        assert!(
            text.contains(message) && text.contains("(no token was minted)"),
            "{}: {text}",
            harness.name()
        );
        assert!(
            err.status().is_none(),
            "{}: the pre-flight answered, not Power BI",
            harness.name()
        );
    }
    assert_eq!(
        emulator.stats().minted,
        0,
        "{}: no token was minted",
        harness.name()
    );
    // Asked again, the flags are cached: refused before a token is asked for.
    let asked = emulator.generate_token_requests();
    for (request, _) in rls_mistakes(&ids) {
        let err = harness.embed_config(&client, &request).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RlsIdentity, "{}: {err}", harness.name());
    }
    assert_eq!(
        emulator.generate_token_requests(),
        asked,
        "{}: refused from the cached flags, nothing asked",
        harness.name()
    );
    let err = harness
        .embed_config(&client, &on(&ids.rls_report).rls_preflight(false))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RlsIdentity, "{}: {err}", harness.name());
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400), "{}", harness.name());
}

/// Identity mistakes, and the words the pre-flight names each with.
fn rls_mistakes(ids: &Ids) -> [(EmbedRequest, &'static str); 3] {
    let on = |report: &ReportId| EmbedRequest::report(ids.workspace.clone(), report.clone());
    [
        (on(&ids.rls_report), "requires an effective identity"),
        (
            on(&ids.rls_report).identity(EffectiveIdentity::new("alice")),
            "requires roles in the effective identity",
        ),
        (
            on(&ids.report).identity(EffectiveIdentity::new("alice").role("Region")),
            "takes no effective identity",
        ),
    ]
}

/// A dataset the client cannot read (404, 401) is left to Power BI to judge: the
/// configuration is still made.
pub fn preflight_skipped_when_unreadable(harness: &impl Harness) {
    for (status, code) in [
        (404, "PowerBIEntityNotFound"),
        (401, "PowerBINotAuthorizedException"),
    ] {
        let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
        let ids = Ids::of(&emulator);
        let body = format!(r#"{{"error":{{"code":"{code}","message":"not readable"}}}}"#);
        let fault = Fault::Custom {
            status,
            headers: vec![],
            body,
        };
        emulator.inject(FaultRule::next(
            1,
            RouteMatch::Only(Route::DatasetsGetDatasetInGroup),
            fault,
        ));
        let client = build(harness, settings_for(&emulator), service_principal(&emulator));
        let request = EmbedRequest::report(ids.workspace.clone(), ids.rls_report.clone())
            .identity(EffectiveIdentity::new("alice").role(ids.rls_role.clone()));
        ok(
            harness,
            "config with an unreadable dataset",
            harness.embed_config(&client, &request),
        );
        assert_eq!(
            emulator.requests(Route::DatasetsGetDatasetInGroup),
            1,
            "{}",
            harness.name()
        );
        assert_eq!(
            emulator.generate_token_requests(),
            1,
            "{}: {status}",
            harness.name()
        );
    }
}

/// Dashboards and tiles.
pub fn dashboard_and_tile_configs(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    let dashboard = EmbedRequest::dashboard(ids.workspace.clone(), ids.dashboard.clone())
        .identity(ids.rls_identity("alice"));
    let config = ok(harness, "dashboard", harness.embed_config(&client, &dashboard));
    let json = serde_json::to_value(&config).unwrap_or_default();
    assert_eq!(json["type"], "dashboard");
    assert!(json.get("permissions").is_none());
    let tile = EmbedRequest::tile(ids.workspace.clone(), ids.dashboard.clone(), ids.tile.clone())
        .identity(EffectiveIdentity::new("alice").role(ids.rls_role.clone()));
    let config = ok(harness, "tile", harness.embed_config(&client, &tile));
    let json = serde_json::to_value(&config).unwrap_or_default();
    assert_eq!(json["type"], "tile");
    assert_eq!(json["dashboardId"], ids.dashboard.as_str());
    assert!(
        emulator
            .introspect(json["accessToken"].as_str().unwrap_or_default())
            .valid
    );
    let editable = EmbedRequest::dashboard(ids.workspace.clone(), ids.dashboard.clone()).editable(true);
    let err = harness.embed_config(&client, &editable).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}: {err}", harness.name());
}

/// Every hostile answer ends in a typed error within its bound, with no secret in it,
/// and no redirect reaches the other host.
pub fn hostile_servers(harness: &impl Harness) {
    let decoy = HostileServer::start(
        "127.0.0.2",
        |_, _| {},
        "127.0.0.1:9".parse().unwrap_or_else(|e| panic!("{e}")),
    );
    let op = TokenRequest::Report(ReportToken::view(
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap_or_else(|e| panic!("{e}")),
        ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap_or_else(|e| panic!("{e}")),
    ));
    for case in cases() {
        let server = HostileServer::start("127.0.0.1", case.behaviour, decoy.addr());
        let mut settings = ClientSettings::default();
        settings.api_base = Some(server.url());
        settings.timeout = Duration::from_secs(2);
        settings.retry = quick_retries();
        let client = build(
            harness,
            settings,
            Credential::BearerToken(AccessToken::new("hostile-test-bearer")),
        );
        let started = Instant::now();
        let err = harness.mint(&client, &op).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), case.kind, "{}: {}: {err}", harness.name(), case.name);
        assert!(
            took <= case.within,
            "{}: {}: took {took:?}",
            harness.name(),
            case.name
        );
        assert!(
            !format!("{err} {err:?}").contains("hostile-test-bearer"),
            "{}",
            case.name
        );
        println!(
            "{:<32} {:>8.3}s  {:?}: {err}",
            case.name,
            took.as_secs_f64(),
            err.kind()
        );
    }
    assert_eq!(
        decoy.requests(),
        0,
        "{}: a redirect was followed to the other host",
        harness.name()
    );
}

/// A server that accepts and never reads cannot hold a call: sending is bounded like the
/// rest of the attempt, and the deadline ends the call.
pub fn a_server_that_never_reads(harness: &impl Harness) {
    let server = HostileServer::never_reading();
    let mut settings = ClientSettings::default();
    settings.api_base = Some(server.url());
    settings.timeout = Duration::from_secs(1);
    settings.deadline = Duration::from_secs(3);
    settings.retry = quick_retries();
    let client = build(harness, settings, Credential::BearerToken(AccessToken::new("t")));
    // Nearly a mebibyte of body: more than the loopback socket buffers take unread.
    let identity = EffectiveIdentity::new("u")
        .custom_data("x".repeat(1_000_000))
        .dataset(DatasetId::parse("d").unwrap_or_else(|e| panic!("{e}")));
    let op = TokenRequest::Report(
        ReportToken::view(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap_or_else(|e| panic!("{e}")),
            ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap_or_else(|e| panic!("{e}")),
        )
        .identity(identity),
    );
    let started = Instant::now();
    let err = harness.mint(&client, &op).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{}: {err}", harness.name());
    assert!(
        took < Duration::from_millis(3600),
        "{}: took {took:?}",
        harness.name()
    );
    assert!(
        server.requests() >= 1,
        "{}: the server was reached",
        harness.name()
    );
}

/// A request larger than Power BI takes is refused before anything is sent.
pub fn huge_requests_are_refused_before_sending(harness: &impl Harness) {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    let huge = TokenRequest::Report(
        ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
            .identity(ids.rls_identity("u").custom_data("x".repeat(2 * 1024 * 1024))),
    );
    let err = harness.mint(&client, &huge).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}: {err}", harness.name());
    assert!(
        err.to_string().contains("Power BI refuses request bodies over"),
        "{err}"
    );
    assert!(!err.was_sent());
    assert_eq!(
        emulator.requests(Route::EntraToken),
        0,
        "{}: not even a sign-in",
        harness.name()
    );
    assert_eq!(emulator.generate_token_requests(), 0, "{}", harness.name());
}

/// Huge bodies, advertised and streamed, stop at the cap: the process's peak memory stays
/// far below their size. Run it in a test binary of its own (it reads the process's peak).
pub fn huge_bodies_in_bounded_memory(harness: &impl Harness) {
    let op = TokenRequest::Report(ReportToken::view(
        WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap_or_else(|e| panic!("{e}")),
        ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap_or_else(|e| panic!("{e}")),
    ));
    let decoy = "127.0.0.1:9".parse().unwrap_or_else(|e| panic!("{e}"));
    let before = peak_rss_kib();
    for case in cases().into_iter().filter(|c| c.kind == ErrorKind::BodyTooLarge) {
        let server = HostileServer::start("127.0.0.1", case.behaviour, decoy);
        let mut settings = ClientSettings::default();
        settings.api_base = Some(server.url());
        settings.retry = RetryPolicy::none();
        let client = build(harness, settings, Credential::BearerToken(AccessToken::new("t")));
        for _ in 0..3 {
            let err = harness.mint(&client, &op).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::BodyTooLarge,
                "{}: {}: {err}",
                harness.name(),
                case.name
            );
        }
    }
    let peak = peak_rss_kib();
    println!(
        "{}: peak resident memory {} MiB (before: {} MiB) while refusing {} MiB bodies",
        harness.name(),
        peak / 1024,
        before / 1024,
        HUGE / 1024 / 1024
    );
    // The cap is 1 MiB; a body read whole would take 512 MiB. 24 MiB leaves room for the
    // runtime, the emulator-less servers' threads and the allocator, not for a body.
    assert!(
        peak > 0 && peak < 24 * 1024,
        "{}: peak RSS {peak} KiB",
        harness.name()
    );
}

/// The peak resident set size of this process (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Concurrency soak: 1,280 calls, 64 at a time, against an emulator that answers 20 % of
/// GenerateToken calls with 503 and 5 % with 429 (the first four fail for certain): every
/// call succeeds, and each of the 16 distinct requests is minted exactly once.
pub fn soak(harness: &impl Harness) {
    const CALLS: usize = 1280;
    const DISTINCT: usize = 16;
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    emulator.inject(FaultRule::next(
        4,
        RouteMatch::GenerateToken,
        Fault::ServerError { status: 503 },
    ));
    emulator.inject(FaultRule::random(
        0.20,
        RouteMatch::GenerateToken,
        Fault::ServerError { status: 503 },
    ));
    let throttle = Fault::Throttle {
        retry_after: "0".into(),
    };
    emulator.inject(FaultRule::random(
        0.05 / 0.80,
        RouteMatch::GenerateToken,
        throttle,
    ));
    let ids = Ids::of(&emulator);
    let mut settings = settings_for(&emulator);
    settings.retry = RetryPolicy::default()
        .max_retries(10)
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(50));
    settings.deadline = Duration::from_secs(30);
    let client = build(harness, settings, service_principal(&emulator));
    let distinct: Vec<TokenRequest> = (0..DISTINCT)
        .map(|i| {
            TokenRequest::Report(
                ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
                    .identity(ids.rls_identity(&format!("user-{i}"))),
            )
        })
        .collect();
    let requests: Vec<TokenRequest> = (0..CALLS).map(|i| distinct[i % DISTINCT].clone()).collect();
    let started = Instant::now();
    // 64 at a time, 20 times over.
    for (batch, requests) in requests.chunks(64).enumerate() {
        for (i, result) in harness.mint_all(&client, requests).into_iter().enumerate() {
            ok(harness, &format!("batch {batch} call {i}"), result);
        }
    }
    let stats = emulator.stats();
    println!(
        "{}: {CALLS} calls in {:?}: {} GenerateToken requests upstream, {} minted",
        harness.name(),
        started.elapsed(),
        emulator.generate_token_requests(),
        stats.minted
    );
    assert_eq!(
        stats.minted,
        DISTINCT as u64,
        "{}: each distinct request minted once",
        harness.name()
    );
    assert!(
        emulator.generate_token_requests() > DISTINCT as u64,
        "{}: the faults were hit",
        harness.name()
    );
    assert_eq!(harness.in_flight(&client), 0, "{}", harness.name());
}

/// Secrets in play for [`secret_hygiene_suite`]: none may appear in a log line or an error.
pub const BLOB: &str = "identity-blob-secret-value-0123456789";
/// A fixed bearer token Power BI refuses.
pub const FIXED_BEARER: &str = "fixed-bearer-secret-value-0123456789";
/// A wrong client secret.
pub const WRONG_SECRET: &str = "wrong-secret-value-0123456789";
/// An `IDENTITY_HEADER` the emulator does not expect.
pub const WRONG_IDENTITY_HEADER: &str = "wrong-identity-header-that-must-not-print";

/// Runs successes and failures of every kind through `harness` — an identity blob, a 429,
/// 503s until the retries run out, an RLS refusal, invalid input, `TokenExpired` renewal
/// from a token source, a refused fixed token, a wrong secret, a managed identity with its
/// header right and wrong — and returns every
/// client's and result's Display and Debug text, plus the secrets that must appear in
/// none of them nor in the log the caller captured.
pub fn secret_hygiene_suite(harness: &impl Harness) -> (Vec<String>, Vec<String>) {
    let emulator = Arc::new(Emulator::start().unwrap_or_else(|e| panic!("{e}")));
    let ids = Ids::of(&emulator);
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    let mut shown = vec![format!("{client:?}")];
    let show = |result: Result<EmbedToken, Error>| match result {
        Ok(token) => format!("{token:?}"),
        Err(e) => format!(
            "{e} {e:?} {:?}",
            std::error::Error::source(&e).map(ToString::to_string)
        ),
    };
    let mut record = |result| shown.push(show(result));
    let with_blob = TokenRequest::Report(
        ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
            .identity(ids.rls_identity("john").identity_blob(IdentityBlob::new(BLOB))),
    );
    record(harness.mint(&client, &with_blob));
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Throttle {
            retry_after: "0".into(),
        },
    ));
    record(harness.mint(&client, &report(&ids)));
    emulator.inject(FaultRule::next(
        5,
        RouteMatch::GenerateToken,
        Fault::ServerError { status: 503 },
    ));
    let lifetime = ReportToken::view(ids.workspace.clone(), ids.report.clone()).lifetime_in_minutes(20);
    record(harness.mint(&client, &TokenRequest::Report(lifetime)));
    record(harness.mint(
        &client,
        &TokenRequest::Report(ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())),
    ));
    let invalid = ReportToken::view(ids.workspace.clone(), ids.report.clone()).identity(
        EffectiveIdentity::from_identity_blob(IdentityBlob::new(BLOB))
            .role("a,b")
            .dataset(DatasetId::parse("d").unwrap_or_else(|e| panic!("{e}"))),
    );
    record(harness.mint(&client, &TokenRequest::Report(invalid)));
    let (issuer, client_id) = (Arc::clone(&emulator), ids.raw.client_id.clone());
    let source: SyncSource = Arc::new(move || {
        let token = issuer
            .issue_access_token(&client_id, Duration::ZERO)
            .ok_or("unknown")?;
        Ok(BearerToken::new(
            AccessToken::new(token),
            SystemTime::now() + Duration::from_secs(600),
        ))
    });
    let mut settings = settings_for(&emulator);
    settings.retry = RetryPolicy::none();
    let renewing = harness
        .build(settings, Credential::TokenSource, Some(source))
        .unwrap_or_else(|e| panic!("{e}"));
    record(harness.mint(&renewing, &report(&ids)));
    let fixed = build(
        harness,
        settings_for(&emulator),
        Credential::BearerToken(AccessToken::new(FIXED_BEARER)),
    );
    record(harness.mint(&fixed, &report(&ids)));
    let (tenant, client_id, secret) = ids.credentials();
    let client_secret = secret.secret().to_owned();
    let wrong = Credential::ServicePrincipal(ClientCredentials::new(
        tenant,
        client_id,
        ClientSecret::new(WRONG_SECRET),
    ));
    let wrong = build(harness, settings_for(&emulator), wrong);
    record(harness.mint(&wrong, &report(&ids)));
    // A managed identity's IDENTITY_HEADER, right and wrong.
    let identity_header = emulator.identity_header().unwrap_or_default().to_owned();
    let managed = |header: &str| {
        let identity = pbi_embed_core::ManagedIdentity::app_service(&emulator.identity_endpoint(), header)
            .unwrap_or_else(|e| panic!("{e}"));
        build(
            harness,
            no_cache(&emulator),
            Credential::ManagedIdentity(identity),
        )
    };
    let (right, wrong_header) = (managed(&identity_header), managed(WRONG_IDENTITY_HEADER));
    record(harness.mint(&right, &report(&ids)));
    record(harness.mint(&wrong_header, &report(&ids)));
    // A PKCS#12 certificate file, with its password and with a wrong one.
    let (certificate, key) = emulator
        .issue_client_certificate(&ids.raw.client_id)
        .unwrap_or_else(|| panic!("the emulator's principal"));
    let key_line = key.lines().nth(1).unwrap_or_default().to_owned();
    let pfx_path = std::env::temp_dir().join(format!(
        "pbi-embed-hygiene-{}-{}.pfx",
        std::process::id(),
        emulator.addr().port()
    ));
    std::fs::write(&pfx_path, crate::pkcs12(&certificate, &key, PFX_PASSWORD))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut file_clients = Vec::new();
    for password in [PFX_PASSWORD, WRONG_PFX_PASSWORD] {
        let (tenant, client_id, _) = ids.credentials();
        let file = pbi_embed_core::CertificateFile::new(&pfx_path).password(ClientSecret::new(password));
        let credential =
            Credential::ServicePrincipal(ClientCredentials::with_certificate_file(tenant, client_id, file));
        file_clients.push(format!("{credential:?}"));
        let with_file = build(harness, no_cache(&emulator), credential);
        record(harness.mint(&with_file, &report(&ids)));
        file_clients.push(format!("{with_file:?}"));
    }
    let _ = std::fs::remove_file(&pfx_path);
    shown.push(format!("{fixed:?} {renewing:?} {right:?} {wrong_header:?}"));
    shown.extend(file_clients);
    let secrets = vec![
        PFX_PASSWORD.into(),
        WRONG_PFX_PASSWORD.into(),
        key_line,
        client_secret,
        BLOB.into(),
        FIXED_BEARER.into(),
        WRONG_SECRET.into(),
        identity_header,
        WRONG_IDENTITY_HEADER.into(),
        // Embed tokens, and the emulator's access tokens (JWTs whose header begins
        // `{"alg":"RS256",`).
        "EMU1.".into(),
        "eyJhbGciOiJSUzI1NiIs".into(),
    ];
    (shown, secrets)
}

/// A certificate file's password in the hygiene suite, and a wrong one.
const PFX_PASSWORD: &str = "pfx-password-5e1f";
const WRONG_PFX_PASSWORD: &str = "pfx-guess-77aa";

/// Over HTTPS, trusting the emulator's CA as an extra root: signed in and minted, and
/// both requests reached the emulator. Without that root (Mozilla's roots only), its
/// certificate is refused.
pub fn tls_with_an_extra_root(harness: &impl Harness) {
    let (emulator, ca) = tls_emulator();
    let ids = Ids::of(&emulator);
    let mut settings = settings_for(&emulator);
    settings
        .connect
        .add_root_certificates_pem(ca.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let client = build(harness, settings, service_principal(&emulator));
    ok(harness, "over TLS", harness.mint(&client, &report(&ids)));
    assert_eq!(emulator.requests(Route::EntraToken), 1, "{}", harness.name());
    assert_eq!(
        emulator.requests(Route::ReportsGenerateTokenInGroup),
        1,
        "{}",
        harness.name()
    );

    let untrusting = build(harness, settings_for(&emulator), service_principal(&emulator));
    let error = harness
        .mint(&untrusting, &report(&ids))
        .expect_err("the emulator's CA is not among Mozilla's roots");
    refused_certificate(harness, "Mozilla's roots only", &error, &emulator);
    assert_eq!(
        emulator.requests(Route::EntraToken),
        1,
        "{}: nothing more reached it",
        harness.name()
    );
}

/// Through a loopback CONNECT proxy set on the builder: every connection is a tunnel to
/// the emulator, and the token is minted over TLS inside it.
pub fn tls_through_a_connect_proxy(harness: &impl Harness) {
    let (emulator, ca) = tls_emulator();
    let ids = Ids::of(&emulator);
    let proxy = ConnectProxy::start();
    let mut settings = settings_for(&emulator);
    settings
        .connect
        .add_root_certificates_pem(ca.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    settings
        .connect
        .set_proxy(&proxy.url())
        .unwrap_or_else(|e| panic!("{e}"));
    let client = build(harness, settings, service_principal(&emulator));
    ok(harness, "through the proxy", harness.mint(&client, &report(&ids)));
    let tunnels = proxy.tunnels();
    let target = emulator.addr().to_string();
    assert!(!tunnels.is_empty(), "{}: no tunnel was opened", harness.name());
    assert!(
        tunnels.iter().all(|t| *t == target),
        "{}: tunnels {tunnels:?}, expected only {target}",
        harness.name()
    );
    assert_eq!(emulator.generate_token_requests(), 1, "{}", harness.name());
}

/// A certificate for another name, an expired one, and one from an authority the client
/// does not trust each end the call at once with a certificate error naming the host:
/// nothing reaches the server's HTTP layer, and nothing is retried.
pub fn certificates_that_do_not_verify(harness: &impl Harness) {
    for (what, certificate) in bad_certificates() {
        let emulator = Emulator::builder()
            .tls(certificate.tls)
            .start()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let ids = Ids::of(&emulator);
        let mut settings = settings_for(&emulator);
        settings
            .connect
            .add_root_certificates_pem(certificate.ca_pem.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let client = build(harness, settings, service_principal(&emulator));
        let started = Instant::now();
        let error = harness.mint(&client, &report(&ids)).expect_err(what);
        refused_certificate(harness, what, &error, &emulator);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{}: {what}: not retried until the deadline ({:?})",
            harness.name(),
            started.elapsed()
        );
        assert_eq!(
            emulator.requests(Route::EntraToken),
            0,
            "{}: {what}",
            harness.name()
        );
    }
}

/// With the platform's verifier, the system's trust store decides: it does not hold the
/// emulator's CA, so its certificate is refused as one that does not verify. (That the
/// system store is really consulted is shown by the command line's test, which points it
/// at the emulator's CA through `SSL_CERT_FILE` in a process of its own.)
pub fn the_platform_verifier(harness: &impl Harness) {
    let (emulator, _) = tls_emulator();
    let ids = Ids::of(&emulator);
    let mut settings = settings_for(&emulator);
    settings.connect.set_platform_verifier(true);
    let client = build(harness, settings, service_principal(&emulator));
    let error = harness
        .mint(&client, &report(&ids))
        .expect_err("the system store does not hold the emulator's CA");
    refused_certificate(harness, "the platform verifier", &error, &emulator);
}

/// The error a certificate that does not verify ends in.
fn refused_certificate(harness: &impl Harness, what: &str, error: &Error, emulator: &Emulator) {
    let name = harness.name();
    assert_eq!(
        error.kind(),
        ErrorKind::Certificate,
        "{name}: {what}: {error} ({:?})",
        std::error::Error::source(error).map(ToString::to_string)
    );
    let host = emulator.addr().to_string();
    assert_eq!(
        error.host(),
        Some(host.as_str()),
        "{name}: {what}: names the host"
    );
    let text = error.to_string();
    assert!(
        text.contains(&host) && text.contains("certificate"),
        "{name}: {what}: {text}"
    );
    assert!(
        error.hint().is_some_and(|h| h.contains("root_certificates_pem")),
        "{name}: {what}"
    );
}

/// The built-in fixture's paginated report, its dataset (identity required, no roles),
/// and the Products dataset (no RLS), written out: what the emulator must have granted is
/// stated here, not derived from what the client sent.
const PAGINATED_REPORT: &str = "f904e89a-7ebe-4aa0-8647-e409063b4850";
const INVENTORY_DATASET: &str = "e75afc47-1150-45e0-aba7-4eb04e4876e5";
const PRODUCTS_DATASET: &str = "a8b062ca-5730-468f-9df7-43c2ba76bf5e";
const SALES_DATASET: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";
const SALES_REPORT: &str = "5b218778-e7a5-4d73-8187-f10824047715";
const WORKSPACE: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";

/// Every embed type from one call: paginated report, Q&A, visual, create, and a dashboard
/// whose identity names no dataset; each configuration is what `powerbi-client` takes and
/// each token grants, at the emulator, what it must.
pub fn every_embed_type(harness: &impl Harness) {
    let name = harness.name();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    let id = |text: &str| text.parse::<String>().unwrap_or_default();
    let minted = |config: &EmbedConfig| {
        emulator
            .minted_token(&config.token_id)
            .unwrap_or_else(|| panic!("{name}: the emulator minted no token {}", config.token_id))
    };
    let grants = |token: &pbi_embed_emulator::MintedToken| {
        let mut grants: Vec<(String, String)> = token
            .resources
            .iter()
            .map(|r| (r.kind.clone(), r.id.clone()))
            .collect();
        grants.sort();
        grants
    };
    let pair = |kind: &str, id: &str| (kind.to_owned(), id.to_owned());
    let dataset = |text: &str| DatasetId::parse(text).unwrap_or_else(|e| panic!("{e}"));

    // A paginated report over a Power BI dataset: the dataset with XMLA read, and the
    // identity twice: on the dataset, and naming the report.
    let paginated = EmbedRequest::report(
        ids.workspace.clone(),
        ReportId::parse(PAGINATED_REPORT).unwrap_or_else(|e| panic!("{e}")),
    )
    .identity(EffectiveIdentity::new("alice@contoso.com"));
    let config = ok(harness, "paginated", harness.embed_config(&client, &paginated));
    let json = serde_json::to_value(&config).unwrap_or_default();
    assert_eq!(json["type"], "report", "{name}");
    assert!(
        json["embedUrl"]
            .as_str()
            .unwrap_or_default()
            .contains("/rdlEmbed?"),
        "{name}: {json}"
    );
    assert!(
        json.get("permissions").is_none(),
        "{name}: paginated reports take no permissions"
    );
    let token = minted(&config);
    assert_eq!(token.operation, "EmbedToken_GenerateToken", "{name}");
    assert_eq!(
        grants(&token),
        [
            pair("dataset", INVENTORY_DATASET),
            pair("report", PAGINATED_REPORT)
        ],
        "{name}"
    );
    let xmla = token
        .resources
        .iter()
        .find(|r| r.kind == "dataset")
        .and_then(|r| r.xmla_permissions.clone());
    assert_eq!(xmla.as_deref(), Some("ReadOnly"), "{name}");
    let identities: Vec<(Vec<String>, Vec<String>)> = token
        .identities
        .iter()
        .map(|i| (i.datasets.clone(), i.reports.clone()))
        .collect();
    assert_eq!(
        identities,
        [
            (vec![id(INVENTORY_DATASET)], vec![]),
            (vec![], vec![id(PAGINATED_REPORT)])
        ],
        "{name}"
    );

    // Q&A over the Products dataset: the dataset's own route.
    let qna =
        EmbedRequest::qna(ids.workspace.clone(), dataset(PRODUCTS_DATASET)).question("top products by sales");
    let config = ok(harness, "qna", harness.embed_config(&client, &qna));
    let json = serde_json::to_value(&config).unwrap_or_default();
    assert_eq!(json["type"], "qna", "{name}");
    assert!(json.get("id").is_none(), "{name}: Q&A has no id");
    assert_eq!(
        json["datasetIds"],
        serde_json::json!([PRODUCTS_DATASET]),
        "{name}"
    );
    assert_eq!(
        (json["viewMode"].as_u64(), json["question"].as_str()),
        (Some(0), Some("top products by sales"))
    );
    assert!(
        json["embedUrl"]
            .as_str()
            .unwrap_or_default()
            .contains("/qnaEmbed?"),
        "{name}: {json}"
    );
    let token = minted(&config);
    assert_eq!(token.operation, "Datasets_GenerateTokenInGroup", "{name}");
    assert_eq!(grants(&token), [pair("dataset", PRODUCTS_DATASET)], "{name}");
    let before = emulator.stats();
    let result_only = EmbedRequest::qna(ids.workspace.clone(), dataset(PRODUCTS_DATASET))
        .qna_mode(pbi_embed_core::QnaMode::ResultOnly);
    let error = harness
        .embed_config(&client, &result_only)
        .expect_err("ResultOnly needs a question");
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{name}: {error}");
    assert_eq!(emulator.stats().requests, before.requests, "{name}: nothing sent");

    // A visual of the RLS report: the report's token, its page and visual names.
    let visual = EmbedRequest::visual(
        ids.workspace.clone(),
        ids.rls_report.clone(),
        "ReportSection",
        "revenueByRegion",
    )
    .identity(EffectiveIdentity::new("alice@contoso.com").role(ids.rls_role.clone()));
    let config = ok(harness, "visual", harness.embed_config(&client, &visual));
    let json = serde_json::to_value(&config).unwrap_or_default();
    assert_eq!(json["type"], "visual", "{name}");
    assert_eq!(
        (json["pageName"].as_str(), json["visualName"].as_str()),
        (Some("ReportSection"), Some("revenueByRegion"))
    );
    assert_eq!(json["id"], SALES_REPORT, "{name}");
    assert_eq!(
        grants(&minted(&config)),
        [pair("dataset", SALES_DATASET), pair("report", SALES_REPORT)],
        "{name}"
    );

    // Authoring on the Products dataset, saved to the workspace.
    let create = EmbedRequest::create(ids.workspace.clone(), dataset(PRODUCTS_DATASET));
    let config = ok(harness, "create", harness.embed_config(&client, &create));
    let json = serde_json::to_value(&config).unwrap_or_default();
    assert_eq!(json["type"], "create", "{name}");
    assert_eq!(json["datasetId"], PRODUCTS_DATASET, "{name}");
    assert!(json.get("id").is_none(), "{name}: create has no id");
    let token = minted(&config);
    assert_eq!(grants(&token), [pair("dataset", PRODUCTS_DATASET)], "{name}");
    assert_eq!(token.target_workspaces, [WORKSPACE], "{name}");

    // A dashboard with an identity that names no dataset: it applies to the tiles'
    // datasets that require one (Sales), not to those that take none (Products).
    emulator.reset_stats();
    let dashboard = EmbedRequest::dashboard(ids.workspace.clone(), ids.dashboard.clone())
        .identity(EffectiveIdentity::new("alice@contoso.com").role(ids.rls_role.clone()));
    let config = ok(harness, "dashboard", harness.embed_config(&client, &dashboard));
    let token = minted(&config);
    let bound: Vec<Vec<String>> = token.identities.iter().map(|i| i.datasets.clone()).collect();
    assert_eq!(bound, [vec![id(SALES_DATASET)]], "{name}");
    assert_eq!(
        emulator.requests(Route::DashboardsGetTilesInGroup),
        1,
        "{name}: the tiles were read"
    );

    // Two reports on one page: one token over both reports and both datasets, the
    // identity on the one dataset that requires it; each configuration carries it.
    let two = EmbedRequest::reports(
        ids.workspace.clone(),
        [ids.rls_report.clone(), ids.report.clone()],
    )
    .identity(EffectiveIdentity::new("alice@contoso.com").role(ids.rls_role.clone()));
    let configs = ok(harness, "two reports", harness.embed_configs(&client, &two));
    let ids_of: Vec<&str> = configs.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids_of, [ids.rls_report.as_str(), ids.report.as_str()], "{name}");
    assert_eq!(configs[0].token_id, configs[1].token_id, "{name}: one token");
    let token = minted(&configs[0]);
    assert_eq!(token.operation, "EmbedToken_GenerateToken", "{name}");
    assert_eq!(
        grants(&token),
        [
            pair("dataset", PRODUCTS_DATASET),
            pair("dataset", SALES_DATASET),
            pair("report", SALES_REPORT),
            pair("report", "b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd"),
        ],
        "{name}"
    );
    let bound: Vec<Vec<String>> = token.identities.iter().map(|i| i.datasets.clone()).collect();
    assert_eq!(bound, [vec![id(SALES_DATASET)]], "{name}");
    let error = harness
        .embed_config(&client, &two)
        .expect_err("several reports need embed_configs");
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{name}: {error}");
    let single = ok(harness, "one item", harness.embed_configs(&client, &create));
    assert_eq!(single.len(), 1, "{name}");
}

/// The user-assigned managed identity of the built-in fixture.
const USER_ASSIGNED_CLIENT: &str = "5c0d9e8f-7a6b-4c5d-8e9f-0a1b2c3d4e5f";

/// A managed identity signs in at the host's endpoint, App Service's (system-assigned) or
/// the instance metadata service's (a user-assigned identity, by client id and by resource
/// id), and the token is minted as that identity; a wrong `IDENTITY_HEADER` and an
/// endpoint that answers 500 end in typed errors naming the endpoint's host.
pub fn managed_identity_signs_in(harness: &impl Harness) {
    use pbi_embed_core::{ManagedIdentity, UserAssignedId};
    let name = harness.name();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let header = emulator.identity_header().unwrap_or_default().to_owned();
    let mint_as = |identity: ManagedIdentity| {
        let client = build(
            harness,
            no_cache(&emulator),
            Credential::ManagedIdentity(identity),
        );
        harness.mint(&client, &report(&ids))
    };
    let app_service = ManagedIdentity::app_service(&emulator.identity_endpoint(), header.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let token = ok(harness, "App Service", mint_as(app_service));
    let minted = emulator
        .minted_token(&token.token_id)
        .unwrap_or_else(|| panic!("{name}: not minted"));
    assert_eq!(
        minted.client_id, ids.raw.client_id,
        "{name}: as the system-assigned identity"
    );
    assert_eq!(emulator.requests(Route::ManagedIdentityAppService), 1, "{name}");
    assert_eq!(
        emulator.requests(Route::EntraToken),
        0,
        "{name}: no client-credentials sign-in"
    );

    let imds = ManagedIdentity::imds_at(&emulator.base_url()).unwrap_or_else(|e| panic!("{e}"));
    for selector in [
        UserAssignedId::ClientId(USER_ASSIGNED_CLIENT.to_owned()),
        UserAssignedId::ResourceId(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/embed-backend".to_owned(),
        ),
    ] {
        let token = ok(harness, "IMDS", mint_as(imds.clone().user_assigned(selector)));
        let minted = emulator.minted_token(&token.token_id).unwrap_or_else(|| panic!("{name}: not minted"));
        assert_eq!(minted.client_id, USER_ASSIGNED_CLIENT, "{name}: as the user-assigned identity");
    }
    assert_eq!(emulator.requests(Route::ManagedIdentityImds), 2, "{name}");

    let host = emulator.addr().to_string();
    let wrong = ManagedIdentity::app_service(&emulator.identity_endpoint(), "not-the-header")
        .unwrap_or_else(|e| panic!("{e}"));
    let error = mint_as(wrong).expect_err("a wrong IDENTITY_HEADER");
    assert_eq!(
        (error.kind(), error.status().map(|s| s.as_u16())),
        (ErrorKind::SignIn, Some(401)),
        "{name}: {error}"
    );
    assert!(error.to_string().contains("X-IDENTITY-HEADER"), "{name}: {error}");
    assert_eq!(
        error.host(),
        Some(host.as_str()),
        "{name}: names the endpoint's host"
    );
    assert!(
        !error.to_string().contains("not-the-header"),
        "{name}: never quotes the header"
    );

    let unknown = imds.clone().user_assigned(UserAssignedId::ClientId(
        "00000000-0000-0000-0000-00000000dead".to_owned(),
    ));
    let error = mint_as(unknown).expect_err("an identity the host does not have");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400), "{name}: {error}");
    assert!(
        error.to_string().contains("Identity not found"),
        "{name}: {error}"
    );

    emulator.inject(FaultRule::next(
        u64::MAX,
        RouteMatch::Only(Route::ManagedIdentityImds),
        Fault::ServerError { status: 500 },
    ));
    let error = mint_as(imds).expect_err("an endpoint that answers 500");
    assert_eq!(error.kind(), ErrorKind::ServerError, "{name}: {error}");
    assert_eq!(error.operation(), Some("ManagedIdentity_Imds"), "{name}: {error}");
}

/// A client certificate signs in with a fresh `client_assertion` at each sign-in (RS256
/// and PS256, with or without the chain), and the access token says so (`appidacr` 2); a
/// certificate the app does not have and an expired one end in Entra's AADSTS700027.
pub fn certificate_signs_in(harness: &impl Harness) {
    use pbi_embed_core::{AssertionAlgorithm, ClientCertificate};
    let name = harness.name();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let client_id = ids.raw.client_id.clone();
    let with = |certificate: ClientCertificate| {
        let (tenant, client, _) = ids.credentials();
        let credential =
            Credential::ServicePrincipal(ClientCredentials::with_certificate(tenant, client, certificate));
        build(harness, no_cache(&emulator), credential)
    };
    let load = |(certificate, key): (String, String)| {
        ClientCertificate::from_pem(&certificate, &key).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let registered = load(
        emulator
            .issue_client_certificate(&client_id)
            .unwrap_or_else(|| panic!("{name}")),
    );
    for certificate in [
        registered.clone(),
        registered
            .clone()
            .algorithm(AssertionAlgorithm::Ps256)
            .send_chain(true),
    ] {
        let client = with(certificate);
        let bearer = ok(harness, "sign in with a certificate", harness.sign_in(&client));
        let claims = bearer
            .access_token
            .secret()
            .split('.')
            .nth(1)
            .and_then(|part| {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()
            })
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .unwrap_or_default();
        assert_eq!(claims["appidacr"], "2", "{name}: signed in with a certificate");
        ok(
            harness,
            "mint with a certificate",
            harness.mint(&client, &report(&ids)),
        );
    }
    // Two clients with the same certificate sign in with two assertions: the emulator
    // refuses a jti it has seen, so equal ones would fail the second.
    for _ in 0..2 {
        ok(
            harness,
            "another sign-in",
            harness.sign_in(&with(registered.clone())),
        );
    }
    assert_eq!(emulator.requests(Route::EntraToken), 4, "{name}");

    let unregistered = load(
        emulator
            .issue_client_certificate(&ids.raw.outsider_client_id)
            .unwrap_or_else(|| panic!("{name}")),
    );
    let now = time::OffsetDateTime::now_utc();
    let expired = load(
        emulator
            .issue_client_certificate_valid(
                &client_id,
                now - time::Duration::days(30),
                now - time::Duration::days(1),
            )
            .unwrap_or_else(|| panic!("{name}")),
    );
    for (what, certificate, says) in [
        (
            "a certificate the app does not have",
            unregistered,
            "not registered",
        ),
        ("an expired certificate", expired, "expired"),
    ] {
        let error = harness.sign_in(&with(certificate)).expect_err(what);
        assert_eq!(
            (error.kind(), error.status().map(|s| s.as_u16())),
            (ErrorKind::SignIn, Some(401)),
            "{name}: {what}: {error}"
        );
        let entra = match error.entra() {
            Some(entra) => entra.clone(),
            _ => panic!("{name}: {what}: not Entra's answer: {error}"),
        };
        assert_eq!(entra.error_codes(), [700_027], "{name}: {what}: {error}");
        assert!(error.to_string().contains(says), "{name}: {what}: {error}");
    }
}

/// The subject the built-in fixture's federated credential takes.
const FEDERATED_SUBJECT: &str = "system:serviceaccount:embedding:backend";

/// A workload identity signs in with the token in its federated token file, read at each
/// sign-in (a file rewritten between two sign-ins gives the new token); a subject, issuer
/// or audience the app does not trust, and a missing file, end in typed errors.
pub fn workload_identity_signs_in(harness: &impl Harness) {
    let name = harness.name();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let file = std::env::temp_dir().join(format!(
        "pbi-embed-federated-{}-{}-{}.jwt",
        std::process::id(),
        name,
        emulator.addr().port()
    ));
    let write = |token: &str| std::fs::write(&file, token).unwrap_or_else(|e| panic!("{e}"));
    let client = |path: &std::path::Path| {
        let (tenant, client_id, _) = ids.credentials();
        let credential = Credential::ServicePrincipal(ClientCredentials::with_federated_token_file(
            tenant,
            client_id,
            path.to_owned(),
        ));
        build(harness, no_cache(&emulator), credential)
    };
    // Both clients exist before the file changes: each reads it when it signs in.
    let (first, second, third) = (client(&file), client(&file), client(&file));
    write(&emulator.issue_federated_token(FEDERATED_SUBJECT, Duration::from_secs(3600)));
    ok(harness, "workload identity", harness.sign_in(&first));
    ok(harness, "mint as it", harness.mint(&first, &report(&ids)));
    assert_eq!(emulator.requests(Route::EntraToken), 1, "{name}");

    write(&emulator.issue_federated_token("system:serviceaccount:other:intruder", Duration::from_secs(3600)));
    let error = harness
        .sign_in(&second)
        .expect_err("a subject the app does not trust");
    let code = |error: &Error| match error.entra() {
        Some(entra) => entra.error_codes().to_vec(),
        _ => Vec::new(),
    };
    assert_eq!(
        (error.kind(), code(&error)),
        (ErrorKind::SignIn, vec![700_213]),
        "{name}: {error}"
    );
    write(&emulator.issue_federated_token(&FEDERATED_SUBJECT.to_uppercase(), Duration::from_secs(3600)));
    let error = harness.sign_in(&second).expect_err("the subject in another case");
    assert_eq!(code(&error), [7_002_138], "{name}: {error}");

    write(&emulator.issue_federated_token(FEDERATED_SUBJECT, Duration::from_secs(3600)));
    ok(harness, "the rewritten file", harness.sign_in(&third));
    let _ = std::fs::remove_file(&file);

    let missing = client(&file.with_extension("missing"));
    let error = harness.sign_in(&missing).expect_err("no token file");
    assert_eq!(error.kind(), ErrorKind::TokenSource, "{name}: {error}");
    let chain = format!(
        "{error} {:?}",
        std::error::Error::source(&error).map(ToString::to_string)
    );
    assert!(chain.contains("federated token file"), "{name}: {chain}");
}

/// The Azure CLI credential runs `az` (a fake one here) with the cloud's resource and the
/// tenant, and Power BI gets its token; a signed-out CLI, a missing one and one that
/// hangs (stopped at the time-out) each end in a clear [`ErrorKind::SignIn`]. Unix only.
pub fn azure_cli_signs_in(harness: &impl Harness) {
    use crate::fake_az::FakeAz;
    use pbi_embed_core::{AzureCli, AzureCliFailure};
    if cfg!(not(unix)) {
        return;
    }
    let name = harness.name();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let (tenant, client_id, _) = ids.credentials();
    let token = emulator
        .issue_access_token(client_id.as_str(), Duration::from_secs(3600))
        .unwrap_or_else(|| panic!("{name}: the emulator knows its own principal"));
    let expires_on = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() + 3600);
    let cli = |az: &FakeAz| AzureCli::new().program(az.program()).tenant(tenant.clone());
    let az = FakeAz::signed_in(&token, expires_on);
    let client = build(harness, no_cache(&emulator), Credential::AzureCli(cli(&az)));
    ok(
        harness,
        "mint with the CLI's token",
        harness.mint(&client, &report(&ids)),
    );
    ok(harness, "mint again", harness.mint(&client, &report(&ids)));
    assert_eq!(emulator.generate_token_requests(), 2, "{name}");
    assert_eq!(
        emulator.requests(Route::EntraToken),
        0,
        "{name}: no sign-in but the CLI's"
    );
    assert_eq!(
        az.last_args(),
        [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            "https://analysis.windows.net/powerbi/api",
            "--tenant",
            tenant.as_str(),
            "NO_COLOR=true",
        ],
        "{name}"
    );

    let failure = |error: &Error| error.azure_cli().map(pbi_embed_core::AzureCliError::failure);
    let signed_out = FakeAz::signed_out();
    let client = build(
        harness,
        no_cache(&emulator),
        Credential::AzureCli(cli(&signed_out)),
    );
    let error = harness.sign_in(&client).expect_err("signed out");
    assert_eq!(
        failure(&error),
        Some(AzureCliFailure::NotSignedIn),
        "{name}: {error}"
    );
    assert_eq!(error.kind(), ErrorKind::SignIn, "{name}");
    assert!(
        error.to_string().contains("Please run 'az login'"),
        "{name}: {error}"
    );

    let missing = AzureCli::new().program(signed_out.dir().join("no-such-az"));
    let client = build(harness, no_cache(&emulator), Credential::AzureCli(missing));
    let error = harness.sign_in(&client).expect_err("no az");
    assert_eq!(
        failure(&error),
        Some(AzureCliFailure::NotInstalled),
        "{name}: {error}"
    );

    let hanging = FakeAz::hanging();
    let slow = cli(&hanging).timeout(Duration::from_millis(500));
    let client = build(harness, no_cache(&emulator), Credential::AzureCli(slow));
    let started = Instant::now();
    let error = harness.sign_in(&client).expect_err("a CLI that hangs");
    assert_eq!(
        failure(&error),
        Some(AzureCliFailure::TimedOut),
        "{name}: {error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{name}: {:?}",
        started.elapsed()
    );
    #[cfg(target_os = "linux")]
    if let Some(pid) = hanging.pid() {
        assert!(!alive(pid), "{name}: the timed-out CLI was stopped");
    }

    // As the real `az` hangs: a script waiting on its child. Both end at the time-out.
    let hanging = FakeAz::hanging_with_a_child();
    let client = build(
        harness,
        no_cache(&emulator),
        Credential::AzureCli(cli(&hanging).timeout(Duration::from_millis(500))),
    );
    let error = harness.sign_in(&client).expect_err("a CLI that hangs");
    assert_eq!(
        failure(&error),
        Some(AzureCliFailure::TimedOut),
        "{name}: {error}"
    );
    for pid in [hanging.pid(), hanging.child_pid()] {
        let pid = pid.unwrap_or_else(|| panic!("{name}: the fake CLI recorded its processes"));
        assert!(
            !alive(pid),
            "{name}: process {pid} of the CLI's group was stopped"
        );
    }

    // A CLI that answers and exits 0 but leaves a child holding its outputs: its exit
    // ends the run, at once, and the child is ended.
    let leaving = FakeAz::signed_in_leaving_a_child(&token, expires_on);
    let client = build(
        harness,
        no_cache(&emulator),
        Credential::AzureCli(cli(&leaving).timeout(Duration::from_secs(20))),
    );
    let started = Instant::now();
    ok(harness, "a CLI that leaves a child", harness.sign_in(&client));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{name}: went by the exit, not the outputs closing: {:?}",
        started.elapsed()
    );
    let child = leaving
        .child_pid()
        .unwrap_or_else(|| panic!("{name}: the fake CLI recorded its child"));
    assert!(
        !alive(child),
        "{name}: the child left holding the outputs was ended"
    );
}

/// Whether process `pid` still runs a second from now (a kill takes effect when the
/// process is next scheduled; a zombie, ended but not reaped, counts as ended).
fn alive(pid: u32) -> bool {
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
    };
    let started = Instant::now();
    while running() {
        if started.elapsed() > Duration::from_secs(1) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A certificate file (PKCS#12 with a password here) is read again at every sign-in: a
/// file replaced with an unregistered certificate is refused with Entra's AADSTS700027,
/// and one replaced back signs in again; a wrong password names the file's problem.
pub fn certificate_files_are_read_at_every_sign_in(harness: &impl Harness) {
    use pbi_embed_core::CertificateFile;
    let name = harness.name();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    let issue = |client_id: &str| {
        let (certificate, key) = emulator
            .issue_client_certificate(client_id)
            .unwrap_or_else(|| panic!("{name}"));
        crate::pkcs12(&certificate, &key, "pfx-password")
    };
    let (registered, unregistered) = (issue(&ids.raw.client_id), issue(&ids.raw.outsider_client_id));
    let path = std::env::temp_dir().join(format!(
        "pbi-embed-cert-{}-{name}-{}.pfx",
        std::process::id(),
        emulator.addr().port()
    ));
    let write = |bytes: &[u8]| std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    let client = |password: &str| {
        let (tenant, client_id, _) = ids.credentials();
        let file = CertificateFile::new(&path).password(ClientSecret::new(password));
        let credential =
            Credential::ServicePrincipal(ClientCredentials::with_certificate_file(tenant, client_id, file));
        build(harness, no_cache(&emulator), credential)
    };
    write(&registered);
    ok(
        harness,
        "sign in with a PFX file",
        harness.sign_in(&client("pfx-password")),
    );
    ok(
        harness,
        "mint as it",
        harness.mint(&client("pfx-password"), &report(&ids)),
    );

    write(&unregistered);
    let error = harness
        .sign_in(&client("pfx-password"))
        .expect_err("an unregistered certificate");
    let codes = error.entra().map(|e| e.error_codes().to_vec());
    assert_eq!(codes, Some(vec![700_027]), "{name}: {error}");
    write(&registered);
    ok(
        harness,
        "the file replaced back",
        harness.sign_in(&client("pfx-password")),
    );

    // The process's own credential is unusable: a sign-in failure, not the caller's input.
    let error = harness.sign_in(&client("wrong")).expect_err("a wrong password");
    assert_eq!(error.kind(), ErrorKind::SignIn, "{name}: {error}");
    assert!(
        error.to_string().contains("password is not the one given"),
        "{name}: {error}"
    );
    assert!(!error.to_string().contains("wrong"), "{name}: {error}");
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        emulator.requests(Route::EntraToken),
        4,
        "{name}: the wrong password sent nothing"
    );
}

/// Refresh-ahead: a cached token inside the refresh window is served at once, and the
/// driver mints the next one in the background (one GenerateToken, however many calls);
/// the call after that gets the new token without waiting.
pub fn refresh_ahead_mints_in_the_background(harness: &impl Harness) {
    let name = harness.name();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    // Embed tokens live as long as the bearer that minted them: six seconds here, served
    // (1 s margin) for five. A token is due no earlier than halfway through that, so the
    // 30-minute window makes each due after about two and a half seconds.
    emulator.set_access_token_lifetime(Duration::from_secs(6));
    let mut settings = settings_for(&emulator);
    settings.embed_cache = Some((16, Duration::from_secs(1)));
    settings.refresh_ahead = Some(Duration::from_secs(30 * 60));
    let client = build(harness, settings, service_principal(&emulator));
    let first = ok(harness, "mint", harness.mint(&client, &report(&ids)));
    std::thread::sleep(Duration::from_millis(3200));
    let served = ok(harness, "served while due", harness.mint(&client, &report(&ids)));
    assert_eq!(
        served.token_id, first.token_id,
        "{name}: served from the cache at once"
    );
    // Calls go on being served (the old token, then the new one) while the driver mints.
    let started = Instant::now();
    let mut next = served.token_id;
    while next == first.token_id && started.elapsed() < Duration::from_secs(10) {
        next = ok(harness, "while refreshing", harness.mint(&client, &report(&ids))).token_id;
    }
    assert_ne!(next, first.token_id, "{name}: the refreshed token is served");
    assert_eq!(
        emulator.generate_token_requests(),
        2,
        "{name}: one refresh, however many calls"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(emulator.generate_token_requests(), 2, "{name}: no more refreshes");
}

/// Reads that do not depend on each other reach the server side by side (a dashboard and
/// its tiles, the tiles' datasets; a token and the flags that explain a refusal), and
/// after warm-up a configuration is one request: its token.
pub fn steps_go_side_by_side_and_warm_up_leaves_one(harness: &impl Harness) {
    use pbi_embed_emulator::{FaultRule, RouteMatch};
    let name = harness.name();
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("{e}"));
    let ids = Ids::of(&emulator);
    // Every request takes a while, so requests sent together are answered together.
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::Any,
        Fault::Delay { millis: 150 },
    ));
    let dashboard = EmbedRequest::dashboard(ids.workspace.clone(), ids.dashboard.clone())
        .identity(EffectiveIdentity::new("alice@contoso.com").role("Region"));
    let report = EmbedRequest::report(ids.workspace.clone(), ids.rls_report.clone())
        .identity(EffectiveIdentity::new("alice@contoso.com").role("Region"));

    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    ok(harness, "dashboard", harness.embed_config(&client, &dashboard));
    let stats = emulator.stats();
    assert!(stats.most_at_once >= 2, "{name}: side by side: {stats:?}");
    let count = |route| emulator.requests(route);
    assert_eq!(
        (
            count(Route::EntraToken),
            count(Route::DashboardsGetDashboardInGroup),
            count(Route::DashboardsGetTilesInGroup)
        ),
        (1, 1, 1),
        "{name}: each read once"
    );

    emulator.reset_stats();
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    ok(harness, "report", harness.embed_config(&client, &report));
    let stats = emulator.stats();
    assert!(
        stats.most_at_once >= 2,
        "{name}: the flags beside the token: {stats:?}"
    );

    emulator.reset_stats();
    let client = build(harness, settings_for(&emulator), service_principal(&emulator));
    ok(
        harness,
        "warm-up",
        harness.warm_up(&client, &[report.clone(), dashboard.clone()]),
    );
    assert_eq!(
        emulator.generate_token_requests(),
        0,
        "{name}: warm-up mints nothing"
    );
    for request in [&report, &dashboard] {
        emulator.reset_stats();
        ok(harness, "after warm-up", harness.embed_config(&client, request));
        let sent: u64 = emulator.stats().requests.values().sum();
        assert_eq!(
            (sent, emulator.generate_token_requests()),
            (1, 1),
            "{name}: one round trip, the token: {:?}",
            emulator.stats()
        );
    }
}
