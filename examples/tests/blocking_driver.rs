//! The README's blocking driver (`src/blocking_driver.rs`): what the README shows is this
//! file, and eight threads running it at once against the emulator share one sign-in and
//! all finish at once (a parked call is told to look again soon, so a driver that only
//! sleeps does not sleep until its deadline).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use pbi_embed_core::driver::{Call, Exchange, Session, SharedSession, TransportError};
use pbi_embed_core::{
    ClientCredentials, ClientId, ClientSecret, ClientSettings, Credential, ReportId, ReportToken, TenantId,
    TransportKind, WorkspaceId, http,
};
use pbi_embed_emulator::{Emulator, Route};
use pbi_embed_examples::blocking_driver::run;
use pbi_embed_ureq::ureq;

#[test]
fn the_readme_shows_this_driver() {
    let file = include_str!("../src/blocking_driver.rs");
    let code = &file[file.find("use std::io::Read").unwrap()..];
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(code.trim_end()),
        "README.md's blocking driver differs from examples/src/blocking_driver.rs"
    );
}

#[test]
fn eight_threads_at_once_share_one_sign_in_and_finish_within_a_second() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let mut settings = ClientSettings::default();
    settings.api_base = Some(emulator.base_url());
    settings.authority_host = Some(emulator.base_url());
    let credential = Credential::ServicePrincipal(ClientCredentials::new(
        TenantId::parse(&ids.tenant).unwrap(),
        ClientId::parse(&ids.client_id).unwrap(),
        ClientSecret::new(ids.client_secret.clone()),
    ));
    let session = Arc::new(SharedSession::new(Session::new(settings, credential).unwrap()));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let send = move |exchange: &Exchange| -> Result<http::Response<Vec<u8>>, TransportError> {
        let failed = |e: ureq::Error| TransportError::new(TransportKind::Io, e);
        let response = agent.run(exchange.request().clone()).map_err(failed)?;
        let (parts, mut body) = response.into_parts();
        let limit = exchange.max_response_bytes();
        let bytes = body.with_config().limit(limit).read_to_vec().map_err(failed)?;
        Ok(http::Response::from_parts(parts, bytes))
    };
    let request = ReportToken::view(
        WorkspaceId::parse(&ids.workspace).unwrap(),
        ReportId::parse(&ids.report).unwrap(),
    );
    let start = Arc::new(Barrier::new(8));
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (session, start, send, request) =
                (session.clone(), start.clone(), send.clone(), request.clone());
            std::thread::spawn(move || {
                start.wait();
                run(&session, Call::embed_token(&request), &send).map(|token| token.token_id)
            })
        })
        .collect();
    let tokens: Vec<String> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap().unwrap())
        .collect();
    let took = started.elapsed();
    assert_eq!(
        emulator.requests(Route::EntraToken),
        1,
        "one sign-in for all eight"
    );
    assert!(
        tokens.iter().all(|id| *id == tokens[0]),
        "identical requests share one token"
    );
    assert_eq!(emulator.generate_token_requests(), 1);
    assert!(took < Duration::from_secs(1), "eight calls took {took:?}");
    assert_eq!(session.in_flight(), 0);
}
