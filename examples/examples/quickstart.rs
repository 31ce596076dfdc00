//! The quick start: sign in as a service principal and mint a report embed token with a
//! row-level-security identity, through the blocking client.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! With no `AZURE_*` variables set it starts the local emulator and uses its fixture.
//! With `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `PBI_WORKSPACE_ID`
//! and `PBI_REPORT_ID` set it does the same against Power BI (add `PBI_USERNAME`,
//! `PBI_ROLES` and `PBI_DATASET_ID` for an RLS identity).

use pbi_embed_examples::Target;
use pbi_embed_ureq::{Client, ReportToken};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let target = Target::from_env()?;
    println!("Minting a report embed token from {}", target.describe());

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
    let token = match client.embed_token(&request) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(hint) = error.service().and_then(|e| e.as_api()).and_then(|e| e.hint()) {
                eprintln!("hint: {hint}");
            }
            std::process::exit(1);
        }
    };

    println!("token id:   {}", token.token_id);
    println!("expires at: {}", token.expiration_rfc3339());
    println!();
    println!("What the browser's powerbi-client needs (powerbi.embed(element, config)):");
    let mut config = json!({
        "type": "report",
        "id": target.report.as_str(),
        "tokenType": 1, // models.TokenType.Embed
        "accessToken": token.token.secret(),
    });
    if let Some(url) = target.embed_url() {
        config["embedUrl"] = json!(url);
    }
    println!("{}", serde_json::to_string_pretty(&config)?);
    if let Some(emulator) = &target.emulator {
        let minted = emulator
            .minted_token(&token.token_id)
            .ok_or("the emulator forgot the token")?;
        if let Some(identity) = minted.identities.first() {
            println!();
            println!(
                "The emulator minted it for {} with roles {}.",
                identity.username.as_deref().unwrap_or("(no username)"),
                identity.roles.join(", ")
            );
        }
    }
    Ok(())
}
