//! The blocking client as a conformance [`Harness`].

use pbi_embed_testkit::{Harness, SyncSource, TokenRequest};
use pbi_embed_ureq::ClientSettings;
use pbi_embed_ureq::{BearerToken, Client, EmbedConfig, EmbedRequest, EmbedToken, Error};
use pbi_embed_ureq::{Credential, driver::EnvReader};

pub(crate) struct Ureq;

impl Harness for Ureq {
    type Client = Client;

    fn name(&self) -> &'static str {
        "pbi-embed-ureq"
    }

    fn build(
        &self,
        settings: ClientSettings,
        credential: Credential,
        source: Option<SyncSource>,
    ) -> Result<Client, Error> {
        let builder = Client::builder().settings(settings).credential(credential);
        match source {
            Some(source) => builder.token_source(move || source()).build(),
            None => builder.build(),
        }
    }

    fn build_from_env(&self, settings: ClientSettings, env: EnvReader) -> Result<Client, Error> {
        pbi_embed_ureq::ClientBuilder::new(env)
            .settings(settings)
            .service_principal_from_env()?
            .build()
    }

    fn mint_all(&self, client: &Client, requests: &[TokenRequest]) -> Vec<Result<EmbedToken, Error>> {
        std::thread::scope(|scope| {
            let threads: Vec<_> = requests
                .iter()
                .map(|request| scope.spawn(move || client.embed_token(request)))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    fn embed_config(&self, client: &Client, request: &EmbedRequest) -> Result<EmbedConfig, Error> {
        client.embed_config(request)
    }

    fn embed_configs(&self, client: &Client, request: &EmbedRequest) -> Result<Vec<EmbedConfig>, Error> {
        client.embed_configs(request)
    }

    fn sign_in(&self, client: &Client) -> Result<BearerToken, Error> {
        client.sign_in()
    }

    fn warm_up(&self, client: &Client, requests: &[EmbedRequest]) -> Result<(), Error> {
        client.warm_up(requests)
    }

    fn in_flight(&self, client: &Client) -> usize {
        client.in_flight()
    }
}
