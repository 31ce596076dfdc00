//! The scenario table through all three drivers — the blocking client, the async client
//! and the hyper example's own pump — with identical results, what reached the emulator
//! included.

use std::sync::Arc;

use pbi_embed_core::driver::{Call, Session};
use pbi_embed_core::{
    BearerToken, ClientSettings, Credential, EmbedConfig, EmbedRequest, EmbedToken, Error, ExchangeError,
};
use pbi_embed_testkit::{Harness, SyncSource, TokenRequest, run_scenarios};

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/custom_http_stack.rs"]
mod custom_http_stack;

use custom_http_stack::HyperDriver;

// Each client's own conformance harness, the same one its crate's tests use.
#[path = "../../../crates/pbi-embed-reqwest/tests/common/mod.rs"]
mod reqwest_harness;
#[path = "../../../crates/pbi-embed-ureq/tests/common/mod.rs"]
mod ureq_harness;

use reqwest_harness::Reqwest;
use ureq_harness::Ureq;

struct Hyper(tokio::runtime::Runtime);

impl Harness for Hyper {
    type Client = Arc<HyperDriver>;

    fn name(&self) -> &'static str {
        "hyper example"
    }

    fn build(
        &self,
        settings: ClientSettings,
        credential: Credential,
        source: Option<SyncSource>,
    ) -> Result<Self::Client, Error> {
        if source.is_some() {
            return Err(ExchangeError::invalid_input("tokenSource", "the example takes none").into());
        }
        let _runtime = self.0.enter();
        Ok(Arc::new(HyperDriver::new(Session::new(settings, credential)?)))
    }

    fn mint_all(&self, client: &Self::Client, requests: &[TokenRequest]) -> Vec<Result<EmbedToken, Error>> {
        self.0.block_on(async {
            let tasks: Vec<_> = requests
                .iter()
                .map(|request| {
                    let (client, request) = (Arc::clone(client), request.clone());
                    tokio::spawn(async move { client.run(Call::embed_token(&request)).await })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        })
    }

    fn embed_config(&self, client: &Self::Client, request: &EmbedRequest) -> Result<EmbedConfig, Error> {
        self.0.block_on(client.run(Call::embed_config(request)))
    }

    fn embed_configs(
        &self,
        client: &Self::Client,
        request: &EmbedRequest,
    ) -> Result<Vec<EmbedConfig>, Error> {
        self.0.block_on(client.run(Call::embed_configs(request)))
    }

    fn sign_in(&self, client: &Self::Client) -> Result<BearerToken, Error> {
        self.0.block_on(client.run(Call::sign_in()))
    }

    fn warm_up(&self, client: &Self::Client, requests: &[EmbedRequest]) -> Result<(), Error> {
        self.0.block_on(client.run(Call::warm_up(requests)))
    }

    fn in_flight(&self, client: &Self::Client) -> usize {
        client.in_flight()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn three_drivers_one_table_identical_results() {
    let hyper = run_scenarios(&Hyper(runtime()));
    let ureq = run_scenarios(&Ureq);
    let reqwest = run_scenarios(&Reqwest::new());
    assert!(!hyper.is_empty());
    assert_eq!(hyper, ureq, "hyper example and pbi-embed-ureq differ");
    assert_eq!(hyper, reqwest, "hyper example and pbi-embed-reqwest differ");
}

/// The example's own pump also gets the embed-token cache, single-flight, and the
/// embed-configuration plan: the conformance checks that need no token source.
mod conformance {
    use super::{Hyper, runtime};
    use pbi_embed_testkit::conformance;

    #[test]
    fn sign_in_caching_and_single_flight() {
        conformance::one_sign_in_for_many_calls(&Hyper(runtime()));
        conformance::identical_requests_share_one_token(&Hyper(runtime()));
    }

    #[test]
    fn retries_deadlines_and_recovery() {
        conformance::sign_in_is_retried(&Hyper(runtime()));
        conformance::retry_after_dates_are_honoured(&Hyper(runtime()));
        conformance::the_deadline_bounds_the_whole_call(&Hyper(runtime()));
        conformance::a_fixed_token_is_not_renewed(&Hyper(runtime()));
    }

    #[test]
    fn embed_configurations() {
        conformance::report_config(&Hyper(runtime()));
        conformance::rls_preflight(&Hyper(runtime()));
        conformance::steps_go_side_by_side_and_warm_up_leaves_one(&Hyper(runtime()));
    }

    #[test]
    fn hostile_servers() {
        conformance::hostile_servers(&Hyper(runtime()));
    }
}
