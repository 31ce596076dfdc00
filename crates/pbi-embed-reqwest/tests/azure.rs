//! The `azure` feature: an `azure_core` `TokenCredential` as the token source, asked for
//! the client's cloud's scope; what reached the emulator was signed with its token.
#![cfg(feature = "azure")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use pbi_embed_emulator::{Emulator, Route};
use pbi_embed_reqwest::azure::AzureCredential;
use pbi_embed_reqwest::azure::azure_core;
use pbi_embed_reqwest::{Client, Cloud, ErrorKind, ReportId, ReportToken, WorkspaceId};

/// A credential handing out the emulator's tokens, recording the scopes it was asked for.
#[derive(Debug)]
struct Recording {
    token: Option<String>,
    scopes: Mutex<Vec<Vec<String>>>,
}

#[async_trait::async_trait]
impl TokenCredential for Recording {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let asked = scopes.iter().map(ToString::to_string).collect();
        self.scopes.lock().unwrap().push(asked);
        let Some(token) = &self.token else {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "ManagedIdentityCredential authentication failed. no identity here",
            ));
        };
        let expires_on = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        Ok(AccessToken::new(Secret::new(token.clone()), expires_on))
    }
}

#[tokio::test]
async fn an_azure_credential_signs_the_calls_for_the_clients_cloud() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = emulator
        .issue_access_token(&ids.client_id, Duration::from_secs(3600))
        .unwrap();
    let credential = Arc::new(Recording {
        token: Some(token),
        scopes: Mutex::new(Vec::new()),
    });
    let client = Client::builder()
        .api_base(emulator.base_url())
        .token_source(AzureCredential::new(credential.clone()))
        .build()
        .unwrap();
    let request = ReportToken::view(
        WorkspaceId::parse(&ids.workspace).unwrap(),
        ReportId::parse(&ids.report).unwrap(),
    );
    let minted = client.embed_token(&request).await.unwrap();
    assert_eq!(
        emulator.minted_token(&minted.token_id).map(|t| t.client_id),
        Some(ids.client_id.clone()),
        "Power BI saw the credential's principal"
    );
    client.sign_in().await.unwrap();
    assert_eq!(emulator.requests(Route::EntraToken), 0);
    assert_eq!(
        *credential.scopes.lock().unwrap(),
        [["https://analysis.windows.net/powerbi/api/.default"]],
        "asked once, for the public cloud's scope; then held"
    );

    // Another cloud: its scope is asked for.
    let china = Client::builder()
        .cloud(Cloud::China)
        .token_source(AzureCredential::new(credential.clone()))
        .build()
        .unwrap();
    china.sign_in().await.unwrap();
    assert_eq!(
        credential.scopes.lock().unwrap()[1],
        ["https://analysis.chinacloudapi.cn/powerbi/api/.default"]
    );

    // A credential that fails: the call says so, with the credential's words as source.
    let failing = Client::builder()
        .api_base(emulator.base_url())
        .token_source(AzureCredential::new(Arc::new(Recording {
            token: None,
            scopes: Mutex::new(Vec::new()),
        })))
        .build()
        .unwrap();
    let error = failing.embed_token(&request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TokenSource);
    let source = std::error::Error::source(&error)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(source.contains("no identity here"), "{source}");
}
