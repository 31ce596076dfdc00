//! The quick start: sign in as a service principal and get the embed configuration that
//! the browser's `powerbi-client` takes for a report, with a row-level-security identity,
//! through the blocking client.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! With `AZURE_CLIENT_ID` set it talks to Power BI: set `AZURE_TENANT_ID`,
//! `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `PBI_WORKSPACE_ID` and `PBI_REPORT_ID` (and
//! `PBI_USERNAME` and `PBI_ROLES`, comma-separated, for an RLS identity). Without it, it
//! starts the local emulator and uses its fixture.
//!
//! Copy it: `pbi-embed-ureq`, `pbi-embed-emulator` and `serde_json` are all it needs.

use pbi_embed_emulator::Emulator;
use pbi_embed_ureq::{
    Client, ClientId, ClientSecret, EffectiveIdentity, EmbedRequest, ReportId, TenantId, WorkspaceId,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    // Power BI when AZURE_CLIENT_ID is set; otherwise the local emulator, started here.
    let emulator = match std::env::var_os("AZURE_CLIENT_ID") {
        Some(_) => None,
        None => Some(Emulator::start()?),
    };
    let (client, request) = if let Some(emulator) = &emulator {
        let ids = emulator.ids();
        println!("The local emulator at {}", emulator.base_url());
        let client = Client::builder()
            .api_base(emulator.base_url())
            .authority_host(emulator.base_url())
            .service_principal(
                TenantId::parse(&ids.tenant)?,
                ClientId::parse(&ids.client_id)?,
                ClientSecret::new(ids.client_secret),
            )
            .build()?;
        // This report's dataset has row-level security: it needs an identity with a role.
        let request = EmbedRequest::report(
            WorkspaceId::parse(&ids.workspace)?,
            ReportId::parse(&ids.rls_report)?,
        )
        .identity(EffectiveIdentity::new("john@contoso.com").role(ids.rls_role));
        (client, request)
    } else {
        println!("Power BI, as the service principal in AZURE_*");
        let client = Client::builder().service_principal_from_env()?.build()?;
        let mut request = EmbedRequest::report(
            WorkspaceId::parse(&var("PBI_WORKSPACE_ID")?)?,
            ReportId::parse(&var("PBI_REPORT_ID")?)?,
        );
        if let Ok(username) = var("PBI_USERNAME") {
            let roles = var("PBI_ROLES").unwrap_or_default();
            let roles = roles.split(',').filter(|role| !role.is_empty());
            request = request.identity(EffectiveIdentity::new(username).roles(roles));
        }
        (client, request)
    };

    // The report's embed URL, the RLS pre-flight and the embed token, in one call.
    match client.embed_config(&request) {
        Ok(config) => {
            println!("What powerbi.embed(element, config) takes:");
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(hint) = error.hint() {
                eprintln!("hint: {hint}");
            }
            std::process::exit(1);
        }
    }
}

/// A variable that must be set.
fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}
