//! Embed configurations and the RLS pre-flight through the blocking client.

use pbi_embed_emulator::{Emulator, Route};
use pbi_embed_testkit::{Ids, quick_retries};
use pbi_embed_ureq::{Client, EffectiveIdentity, EmbedOptions, ErrorKind};
use serde_json::Value;

fn client(emulator: &Emulator) -> Client {
    let (tenant, client_id, secret) = Ids::of(emulator).credentials();
    Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(tenant, client_id, secret)
        .retry_policy(quick_retries())
        .build()
        .unwrap()
}

#[test]
fn a_report_config_is_what_powerbi_client_takes() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let client = client(&emulator);
    let options =
        EmbedOptions::new().identity(EffectiveIdentity::new("alice@contoso.com").role(ids.rls_role.clone()));
    let config = client
        .report_embed_config(&ids.workspace, &ids.rls_report, &options)
        .unwrap();
    let json: Value = serde_json::to_value(&config).unwrap();
    assert_eq!(json["type"], "report");
    assert_eq!(json["id"], ids.rls_report.as_str());
    assert_eq!(json["tokenType"], 1);
    assert_eq!(json["groupId"], ids.workspace.as_str());
    assert_eq!(json["permissions"], 0);
    assert!(
        json["embedUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/reportEmbed?reportId=", emulator.base_url()))
    );
    let token = json["accessToken"].as_str().unwrap();
    let seen = emulator.introspect(token);
    assert!(seen.valid);
    let minted = seen.token.unwrap();
    assert_eq!(
        minted.operation, "EmbedToken_GenerateToken",
        "the multi-resource token"
    );
    assert!(
        minted
            .resources
            .iter()
            .any(|r| r.kind == "report" && r.id == ids.rls_report.as_str())
    );
    assert!(
        minted
            .resources
            .iter()
            .any(|r| r.kind == "dataset" && r.id == ids.rls_dataset.as_str())
    );
    assert_eq!(
        minted.identities[0].username.as_deref(),
        Some("alice@contoso.com")
    );
    assert_eq!(
        minted.identities[0].datasets,
        [ids.rls_dataset.to_string()],
        "filled from the report"
    );
    assert!(!format!("{config:?}").contains(token), "Debug hides the token");

    // The dataset's flags are cached; the token too.
    client
        .report_embed_config(&ids.workspace, &ids.rls_report, &options)
        .unwrap();
    assert_eq!(emulator.requests(Route::DatasetsGetDatasetInGroup), 1);
    assert_eq!(emulator.generate_token_requests(), 1);
}

#[test]
fn the_rls_preflight_catches_mistakes_before_minting() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let client = client(&emulator);
    let cases = [
        (
            ids.rls_report.clone(),
            EmbedOptions::new(),
            "requires an effective identity",
        ),
        (
            ids.rls_report.clone(),
            EmbedOptions::new().identity(EffectiveIdentity::new("alice")),
            "requires roles in the effective identity",
        ),
        (
            ids.report.clone(),
            EmbedOptions::new().identity(EffectiveIdentity::new("alice").role("Region")),
            "takes no effective identity",
        ),
    ];
    for (report, options, message) in cases {
        let err = client
            .report_embed_config(&ids.workspace, &report, &options)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RlsIdentity, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(message) && text.contains("(no token was minted)"),
            "{text}"
        );
    }
    assert_eq!(emulator.generate_token_requests(), 0, "no token was asked for");
    // With the pre-flight off, Power BI (here the emulator) says the same.
    let err = client
        .report_embed_config(
            &ids.workspace,
            &ids.rls_report,
            &EmbedOptions::new().rls_preflight(false),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RlsIdentity);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
}

#[test]
fn dashboard_and_tile_configs() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let client = client(&emulator);
    let identity = EmbedOptions::new().identity(ids.rls_identity("alice"));
    let dashboard = client
        .dashboard_embed_config(&ids.workspace, &ids.dashboard, &identity)
        .unwrap();
    let json = serde_json::to_value(&dashboard).unwrap();
    assert_eq!(json["type"], "dashboard");
    assert!(json.get("permissions").is_none());
    let tile = client
        .tile_embed_config(
            &ids.workspace,
            &ids.dashboard,
            &ids.tile,
            &EmbedOptions::new().identity(EffectiveIdentity::new("alice").role(ids.rls_role.clone())),
        )
        .unwrap();
    let json = serde_json::to_value(&tile).unwrap();
    assert_eq!(json["type"], "tile");
    assert_eq!(json["dashboardId"], ids.dashboard.as_str());
    assert!(emulator.introspect(json["accessToken"].as_str().unwrap()).valid);
}
