//! The metadata routes and the stand-in embed page, over real HTTP.

mod common;

use common::{send, sign_in};
use pbi_embed_emulator::Emulator;

fn get(emulator: &Emulator, path: &str, token: &str) -> common::Reply {
    let auth = format!("Bearer {token}");
    send(emulator.addr(), "GET", path, &[("Authorization", &auth)], b"").unwrap()
}

#[test]
fn items_with_embed_urls() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let base = emulator.base_url();
    let group = format!("/v1.0/myorg/groups/{}", ids.workspace);

    let report = get(&emulator, &format!("{group}/reports/{}", ids.rls_report), &token);
    assert_eq!(report.status, 200);
    let report = report.json();
    assert_eq!(
        report["embedUrl"],
        format!(
            "{base}/reportEmbed?reportId={}&groupId={}",
            ids.rls_report, ids.workspace
        )
    );
    assert_eq!(report["datasetId"], ids.rls_dataset.as_str());
    assert_eq!(report["reportType"], "PowerBIReport");

    let dashboard = get(
        &emulator,
        &format!("{group}/dashboards/{}", ids.dashboard),
        &token,
    )
    .json();
    assert!(
        dashboard["embedUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}/dashboardEmbed?dashboardId="))
    );
    let tile = get(
        &emulator,
        &format!("{group}/dashboards/{}/tiles/{}", ids.dashboard, ids.tile),
        &token,
    )
    .json();
    assert_eq!(tile["datasetId"], ids.rls_dataset.as_str());
    assert!(
        tile["embedUrl"]
            .as_str()
            .unwrap()
            .contains(&format!("tileId={}", ids.tile))
    );
    let dataset = get(
        &emulator,
        &format!("{group}/datasets/{}", ids.rls_dataset),
        &token,
    )
    .json();
    assert_eq!(dataset["isEffectiveIdentityRequired"], true);
    assert_eq!(dataset["isEffectiveIdentityRolesRequired"], true);
    let plain = get(&emulator, &format!("{group}/datasets/{}", ids.dataset), &token).json();
    assert_eq!(plain["isEffectiveIdentityRequired"], false);
}

#[test]
fn metadata_follows_the_same_rules() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let path = format!("/v1.0/myorg/groups/{}/reports/{}", ids.workspace, ids.report);
    let reply = send(emulator.addr(), "GET", &path, &[], b"").unwrap();
    reply.assert_pbi_error(401, "PowerBINotAuthorizedException");
    get(
        &emulator,
        &format!(
            "/v1.0/myorg/groups/{}/reports/00000000-0000-0000-0000-000000000000",
            ids.workspace
        ),
        &token,
    )
    .assert_pbi_error(404, "PowerBIEntityNotFound");
    get(
        &emulator,
        &format!(
            "/v1.0/myorg/groups/{}/reports/{}",
            ids.other_workspace, ids.report
        ),
        &token,
    )
    .assert_pbi_error(401, "PowerBINotAuthorizedException");
}

#[test]
fn the_embed_page_is_served_at_every_embed_url() {
    let emulator = Emulator::builder()
        .embed_base("https://emu.powerbi.com")
        .start()
        .unwrap();
    let ids = emulator.ids();
    let token = sign_in(&emulator);
    let report = get(
        &emulator,
        &format!("/v1.0/myorg/groups/{}/reports/{}", ids.workspace, ids.report),
        &token,
    )
    .json();
    assert!(
        report["embedUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://emu.powerbi.com/reportEmbed?")
    );
    for path in [
        "/reportEmbed?reportId=x",
        "/dashboardEmbed?dashboardId=x",
        "/embed?tileId=x",
    ] {
        let page = send(emulator.addr(), "GET", path, &[], b"").unwrap();
        assert_eq!(page.status, 200);
        assert!(page.header("content-type").unwrap().starts_with("text/html"));
        let html = String::from_utf8(page.body).unwrap();
        assert!(
            html.contains("/_emulator/introspect") && html.contains("events/"),
            "{path}"
        );
    }
}
