//! A bridge to Azure's Rust identity crates (feature `azure`): any
//! [`azure_core::credentials::TokenCredential`] — every credential of `azure_identity`
//! (managed identity, workload identity, the Azure CLI, a certificate, …) — as the
//! client's token source. It is asked for the client's cloud's Power BI scope; the client
//! holds and renews its tokens like a sign-in's.
//!
//! With pbi-embed-reqwest's feature `azure`, which re-exports this module:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo(credential: Arc<dyn azure_core::credentials::TokenCredential>) {
//! use pbi_embed_core::azure::AzureCredential;
//!
//! // `credential`: for example `azure_identity::ManagedIdentityCredential::new(None)?`.
//! let source = AzureCredential::new(credential);
//! // Then: `Client::builder().token_source(source).build()?` with pbi-embed-reqwest.
//! # let _ = source;
//! # }
//! ```

use std::sync::Arc;
use std::time::SystemTime;

/// The `azure_core` this bridge is built on, for naming its types.
pub use azure_core;

use crate::auth::bearer::BearerToken;
use crate::auth::token_source::{AsyncTokenSource, TokenFuture};
use crate::wire::cloud::Cloud;
use crate::wire::secret::AccessToken;
use azure_core::credentials::TokenCredential;

/// An `azure_core` credential as a token source. (Its Debug is the credential's, which
/// keeps its secrets out, as azure_core's credentials do.)
#[derive(Clone, Debug)]
pub struct AzureCredential {
    credential: Arc<dyn TokenCredential>,
}

impl AzureCredential {
    /// Tokens from `credential`, for whatever cloud the client is in.
    #[must_use]
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self { credential }
    }
}

impl AsyncTokenSource for AzureCredential {
    /// A token for the public cloud's scope (the client asks with its own cloud's,
    /// through [`token_for`](AsyncTokenSource::token_for)).
    fn token(&self) -> TokenFuture<'_> {
        self.token_for(Cloud::Public.scope())
    }

    fn token_for<'a>(&'a self, scope: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            let token = self.credential.get_token(&[scope], None).await?;
            Ok(BearerToken::new(
                AccessToken::new(token.token.secret()),
                SystemTime::from(token.expires_on),
            ))
        })
    }
}
