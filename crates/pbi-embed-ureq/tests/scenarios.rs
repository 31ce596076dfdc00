//! The shared scenario table, through the blocking client, against the emulator.

use pbi_embed_emulator::Emulator;
use pbi_embed_testkit::{Expect, Ids, Scenario, Summary, TokenRequest, emulator_for, scenarios};
use pbi_embed_ureq::{Client, EmbedToken, Error};

fn client(emulator: &Emulator, scenario: &Scenario) -> Client {
    let (tenant, client_id, secret) = Ids::of(emulator).credentials();
    Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(tenant, client_id, secret)
        .retry_policy(scenario.retry)
        .max_response_bytes(1024 * 1024)
        .build()
        .unwrap()
}

fn call(client: &Client, request: &TokenRequest) -> Result<EmbedToken, Error> {
    match request {
        TokenRequest::Report(op) => client.report_token(op),
        TokenRequest::Create(op) => client.create_report_token(op),
        TokenRequest::Dashboard(op) => client.dashboard_token(op),
        TokenRequest::Tile(op) => client.tile_token(op),
        TokenRequest::Dataset(op) => client.dataset_token(op),
        TokenRequest::Multi(op) => client.multi_resource_token(op),
    }
}

fn summarize(emulator: &Emulator, result: &Result<EmbedToken, Error>) -> Summary {
    let end = match result {
        Ok(token) => {
            let minted = emulator
                .minted_token(&token.token_id)
                .expect("the emulator minted it");
            assert!(emulator.introspect(token.token.secret()).valid);
            Expect::Minted(match minted.resources[0].kind.as_str() {
                "report" => "report",
                "dashboard" => "dashboard",
                "tile" => "tile",
                _ => "dataset",
            })
        }
        Err(e) => Expect::failed(e.kind(), e.status().map(|s| s.as_u16()), e.code()),
    };
    Summary {
        end,
        upstream_calls: emulator.generate_token_requests(),
    }
}

#[test]
fn scenario_table() {
    let ids = Ids::of(&Emulator::start().unwrap());
    for scenario in scenarios(&ids) {
        let emulator = emulator_for(&scenario);
        let client = client(&emulator, &scenario);
        let result = call(&client, &scenario.request);
        let summary = summarize(&emulator, &result);
        assert_eq!(
            summary,
            Summary {
                end: scenario.expect.clone(),
                upstream_calls: scenario.upstream_calls
            },
            "{}: {result:?}",
            scenario.name
        );
    }
}
