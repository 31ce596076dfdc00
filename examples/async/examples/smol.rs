//! The async client on smol. reqwest needs tokio's reactor; `async_compat::Compat`
//! provides it around the futures that need it (it runs one tokio thread in the
//! background), and everything else stays on smol.
//!
//! ```sh
//! cargo run -p pbi-embed-examples-async --example smol
//! ```
//!
//! Against Power BI when `AZURE_CLIENT_ID` is set (with `AZURE_TENANT_ID`,
//! `AZURE_CLIENT_SECRET`, `PBI_WORKSPACE_ID`, `PBI_REPORT_ID`), the local emulator
//! otherwise.

use async_compat::Compat;
use pbi_embed_emulator::Emulator;
use pbi_embed_reqwest::{
    Client, ClientId, ClientSecret, EffectiveIdentity, EmbedRequest, ReportId, TenantId, WorkspaceId,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    // Power BI when AZURE_CLIENT_ID is set; otherwise the local emulator, started here.
    let emulator = match std::env::var_os("AZURE_CLIENT_ID") {
        Some(_) => None,
        None => Some(Emulator::start()?),
    };
    let (client, request) = match &emulator {
        Some(emulator) => {
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
            let report = ReportId::parse(&ids.rls_report)?;
            let request = EmbedRequest::report(WorkspaceId::parse(&ids.workspace)?, report)
                .identity(EffectiveIdentity::new("john@contoso.com").role(ids.rls_role));
            (client, request)
        }
        None => {
            let client = Client::builder().service_principal_from_env()?.build()?;
            let workspace = WorkspaceId::parse(&var("PBI_WORKSPACE_ID")?)?;
            (
                client,
                EmbedRequest::report(workspace, ReportId::parse(&var("PBI_REPORT_ID")?)?),
            )
        }
    };
    smol::block_on(async {
        // Three page views at once, on smol's executor; the calls run inside Compat.
        let executor = smol::Executor::new();
        let views: Vec<_> = (0..3)
            .map(|_| {
                let (client, request) = (client.clone(), request.clone());
                executor.spawn(Compat::new(async move { client.embed_config(&request).await }))
            })
            .collect();
        executor
            .run(async {
                for view in views {
                    let config = view.await?;
                    println!("on smol: token {} for {}", config.token_id, config.embed_url);
                }
                Ok(())
            })
            .await
    })
}

/// A variable that must be set.
fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}
