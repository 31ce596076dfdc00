//! The async client on tokio: 50 concurrent requests for the same report and identity
//! share one embed token, minted by one GenerateToken call.
//!
//! ```sh
//! cargo run -p pbi-embed-examples-async --example async_tokio
//! ```
//!
//! Against Power BI when `AZURE_CLIENT_ID` is set (with `AZURE_TENANT_ID`,
//! `AZURE_CLIENT_SECRET`, `PBI_WORKSPACE_ID`, `PBI_REPORT_ID`), the local emulator
//! otherwise.

use pbi_embed_emulator::Emulator;
use pbi_embed_reqwest::{
    Client, ClientId, ClientSecret, EffectiveIdentity, ReportId, ReportToken, TenantId, WorkspaceId,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Power BI when AZURE_CLIENT_ID is set; otherwise the local emulator, started here.
    let emulator = match std::env::var_os("AZURE_CLIENT_ID") {
        Some(_) => None,
        None => Some(Emulator::start()?),
    };
    let (client, request) = if let Some(emulator) = &emulator {
        let ids = emulator.ids();
        let client = Client::builder()
            .api_base(emulator.base_url())
            .authority_host(emulator.base_url())
            .service_principal(
                TenantId::parse(&ids.tenant)?,
                ClientId::parse(&ids.client_id)?,
                ClientSecret::new(ids.client_secret),
            )
            .build()?;
        let identity = EffectiveIdentity::new("john@contoso.com")
            .role(ids.rls_role)
            .dataset(ids.rls_dataset.parse()?);
        let report = ReportId::parse(&ids.rls_report)?;
        (
            client,
            ReportToken::view(WorkspaceId::parse(&ids.workspace)?, report).identity(identity),
        )
    } else {
        let client = Client::builder().service_principal_from_env()?.build()?;
        let workspace = WorkspaceId::parse(&var("PBI_WORKSPACE_ID")?)?;
        (
            client,
            ReportToken::view(workspace, ReportId::parse(&var("PBI_REPORT_ID")?)?),
        )
    };

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
    if let Some(emulator) = &emulator {
        let calls = emulator.generate_token_requests();
        println!("The emulator saw {calls} GenerateToken call(s).");
        if calls != 1 {
            return Err(format!("expected one GenerateToken call, the emulator saw {calls}").into());
        }
    }
    Ok(())
}

/// A variable that must be set.
fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}
