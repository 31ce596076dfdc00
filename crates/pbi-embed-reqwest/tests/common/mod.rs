//! The async client as a conformance [`Harness`], on a tokio runtime of its own.

use pbi_embed_reqwest::ClientSettings;
use pbi_embed_reqwest::{BearerToken, Client, EmbedConfig, EmbedRequest, EmbedToken, Error};
use pbi_embed_reqwest::{Credential, driver::EnvReader};
use pbi_embed_testkit::{Harness, SyncSource, TokenRequest};

pub(crate) struct Reqwest {
    runtime: tokio::runtime::Runtime,
}

impl Reqwest {
    pub(crate) fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Self { runtime }
    }
}

impl Harness for Reqwest {
    type Client = Client;

    fn name(&self) -> &'static str {
        "pbi-embed-reqwest"
    }

    fn build(
        &self,
        settings: ClientSettings,
        credential: Credential,
        source: Option<SyncSource>,
    ) -> Result<Client, Error> {
        let builder = Client::builder().settings(settings).credential(credential);
        match source {
            Some(source) => builder
                .token_source(move || {
                    let token = source();
                    async move { token }
                })
                .build(),
            None => builder.build(),
        }
    }

    fn build_from_env(&self, settings: ClientSettings, env: EnvReader) -> Result<Client, Error> {
        pbi_embed_reqwest::ClientBuilder::new(env)
            .settings(settings)
            .service_principal_from_env()?
            .build()
    }

    fn mint_all(&self, client: &Client, requests: &[TokenRequest]) -> Vec<Result<EmbedToken, Error>> {
        self.runtime.block_on(async {
            let tasks: Vec<_> = requests
                .iter()
                .map(|request| {
                    let (client, request) = (client.clone(), request.clone());
                    tokio::spawn(async move { client.embed_token(&request).await })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        })
    }

    fn embed_config(&self, client: &Client, request: &EmbedRequest) -> Result<EmbedConfig, Error> {
        self.runtime.block_on(client.embed_config(request))
    }

    fn embed_configs(&self, client: &Client, request: &EmbedRequest) -> Result<Vec<EmbedConfig>, Error> {
        self.runtime.block_on(client.embed_configs(request))
    }

    fn sign_in(&self, client: &Client) -> Result<BearerToken, Error> {
        self.runtime.block_on(client.sign_in())
    }

    fn warm_up(&self, client: &Client, requests: &[EmbedRequest]) -> Result<(), Error> {
        self.runtime.block_on(client.warm_up(requests))
    }

    fn in_flight(&self, client: &Client) -> usize {
        client.in_flight()
    }
}
