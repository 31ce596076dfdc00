//! The async client driven from async-std: reqwest needs tokio's reactor, which
//! async-std's `tokio1` feature provides.
//!
//! ```sh
//! cargo run --example async_std
//! ```

use pbi_embed_examples::Target;
use pbi_embed_reqwest::{Client, ReportToken};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let target = Target::from_env()?;
    println!(
        "Minting a report embed token from {} on async-std",
        target.describe()
    );
    let client = Client::builder()
        .cloud(target.cloud.clone())
        .service_principal(
            target.tenant.clone(),
            target.client_id.clone(),
            target.client_secret.clone(),
        )
        .build()?;
    let mut request = ReportToken::view(target.workspace.clone(), target.report.clone());
    if let Some(identity) = &target.identity {
        request = request.identity(identity.clone());
    }
    let token = client.embed_token(&request).await?;
    println!("token id:   {}", token.token_id);
    println!("expires at: {}", token.expiration_rfc3339());
    Ok(())
}
