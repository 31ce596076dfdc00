//! The async client on tokio: many concurrent requests for the same report and identity
//! share one embed token, minted once.
//!
//! ```sh
//! cargo run --example async_tokio
//! ```
//!
//! Runs against the emulator unless the `AZURE_*` and `PBI_*` variables are set (see the
//! quick start).

use pbi_embed_examples::Target;
use pbi_embed_reqwest::{Client, ReportToken};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let target = Target::from_env()?;
    println!("Minting report embed tokens from {}", target.describe());
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

    // 50 page views at once, as a busy backend would see them.
    let views: Vec<_> = (0..50)
        .map(|_| {
            let (client, request) = (client.clone(), request.clone());
            tokio::spawn(async move { client.embed_token(&request).await })
        })
        .collect();
    let mut token_ids = std::collections::BTreeSet::new();
    for view in views {
        token_ids.insert(view.await??.token_id);
    }
    println!(
        "50 concurrent requests were served by {} embed token(s): {token_ids:?}",
        token_ids.len()
    );
    // What this example shows, checked: one token, minted by one GenerateToken call.
    if token_ids.len() != 1 {
        return Err(format!("expected one shared token, got {}", token_ids.len()).into());
    }
    if let Some(emulator) = &target.emulator {
        let calls = emulator.generate_token_requests();
        println!("The emulator saw {calls} GenerateToken call(s).");
        if calls != 1 {
            return Err(format!("expected one GenerateToken call, the emulator saw {calls}").into());
        }
    }
    Ok(())
}
