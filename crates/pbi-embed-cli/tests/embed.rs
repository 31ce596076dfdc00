//! `pbi-embed embed <type>` against the emulator: the printed configuration is what
//! powerbi-client takes, and the token it carries grants, at the emulator, what it must.

use std::time::Duration;

use assert_cmd::Command;
use pbi_embed_emulator::{Emulator, Route};
use serde_json::Value;

const WORKSPACE: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
const SALES_REPORT: &str = "5b218778-e7a5-4d73-8187-f10824047715";
const SALES_DATASET: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";
const PRODUCTS_DATASET: &str = "a8b062ca-5730-468f-9df7-43c2ba76bf5e";
const PAGINATED_REPORT: &str = "f904e89a-7ebe-4aa0-8647-e409063b4850";
const INVENTORY_DATASET: &str = "e75afc47-1150-45e0-aba7-4eb04e4876e5";
const DASHBOARD: &str = "69ffaa6c-b36d-4d01-96f5-1ed67c64d4af";
const TILE: &str = "312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b";

/// Runs `pbi-embed embed <args>` signed in to `emulator`; the exit code, stdout's JSON
/// (if any) and stderr.
fn embed(emulator: &Emulator, args: &[&str]) -> (i32, Value, String) {
    let ids = emulator.ids();
    let base = emulator.base_url();
    let output = Command::cargo_bin("pbi-embed")
        .unwrap()
        .env_clear()
        .env("AZURE_TENANT_ID", &ids.tenant)
        .env("AZURE_CLIENT_ID", &ids.client_id)
        .env("AZURE_CLIENT_SECRET", &ids.client_secret)
        .args(["--api-base", &base, "--authority-host", &base, "embed"])
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (
        output.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The (kind, id) pairs the emulator granted for the configuration's token, sorted.
fn grants(emulator: &Emulator, config: &Value) -> Vec<(String, String)> {
    let token = emulator
        .minted_token(config["tokenId"].as_str().unwrap())
        .unwrap();
    let mut grants: Vec<_> = token.resources.into_iter().map(|r| (r.kind, r.id)).collect();
    grants.sort();
    grants
}

fn pair(kind: &str, id: &str) -> (String, String) {
    (kind.to_owned(), id.to_owned())
}

#[test]
fn every_embed_type_prints_what_powerbi_client_takes() {
    let emulator = Emulator::start().unwrap();
    let identity = ["--username", "alice@contoso.com", "--role", "Region"];

    let (code, report, stderr) = embed(
        &emulator,
        &[
            &[
                "report",
                "--workspace",
                WORKSPACE,
                "--report",
                SALES_REPORT,
                "--page",
                "ReportSection1",
            ][..],
            &identity,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (report["type"].as_str(), report["id"].as_str()),
        (Some("report"), Some(SALES_REPORT))
    );
    assert_eq!(
        (report["tokenType"].as_u64(), report["permissions"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(report["pageName"], "ReportSection1");
    assert!(report["accessToken"].is_string() && report["expiration"].is_string());
    assert_eq!(
        grants(&emulator, &report),
        [pair("dataset", SALES_DATASET), pair("report", SALES_REPORT)]
    );

    let (code, paginated, stderr) = embed(
        &emulator,
        &[
            "paginated",
            "--workspace",
            WORKSPACE,
            "--report",
            PAGINATED_REPORT,
            "--username",
            "alice@contoso.com",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        paginated["embedUrl"].as_str().unwrap().contains("/rdlEmbed?"),
        "{paginated}"
    );
    assert!(paginated.get("permissions").is_none());
    assert_eq!(
        grants(&emulator, &paginated),
        [
            pair("dataset", INVENTORY_DATASET),
            pair("report", PAGINATED_REPORT)
        ]
    );

    let (code, dashboard, stderr) = embed(
        &emulator,
        &[
            &["dashboard", "--workspace", WORKSPACE, "--dashboard", DASHBOARD][..],
            &identity,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(dashboard["type"], "dashboard");
    let token = emulator
        .minted_token(dashboard["tokenId"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        token.identities[0].datasets,
        [SALES_DATASET],
        "the tiles' RLS dataset"
    );
    assert_eq!(emulator.requests(Route::DashboardsGetTilesInGroup), 1);

    let (code, tile, stderr) = embed(
        &emulator,
        &[
            &[
                "tile",
                "--workspace",
                WORKSPACE,
                "--dashboard",
                DASHBOARD,
                "--tile",
                TILE,
            ][..],
            &identity,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (tile["type"].as_str(), tile["dashboardId"].as_str()),
        (Some("tile"), Some(DASHBOARD))
    );

    let (code, qna, stderr) = embed(
        &emulator,
        &[
            "qna",
            "--workspace",
            WORKSPACE,
            "--dataset",
            PRODUCTS_DATASET,
            "--question",
            "top products",
            "--result-only",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(qna["type"], "qna");
    assert!(qna.get("id").is_none());
    assert_eq!(qna["datasetIds"], serde_json::json!([PRODUCTS_DATASET]));
    assert_eq!(
        (qna["viewMode"].as_u64(), qna["question"].as_str()),
        (Some(1), Some("top products"))
    );
    assert_eq!(grants(&emulator, &qna), [pair("dataset", PRODUCTS_DATASET)]);

    let (code, visual, stderr) = embed(
        &emulator,
        &[
            &[
                "visual",
                "--workspace",
                WORKSPACE,
                "--report",
                SALES_REPORT,
                "--page",
                "ReportSection",
                "--visual",
                "salesTrend",
            ][..],
            &identity,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (visual["type"].as_str(), visual["visualName"].as_str()),
        (Some("visual"), Some("salesTrend"))
    );
    assert_eq!(visual["pageName"], "ReportSection");

    let (code, create, stderr) = embed(
        &emulator,
        &["create", "--workspace", WORKSPACE, "--dataset", PRODUCTS_DATASET],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (create["type"].as_str(), create["datasetId"].as_str()),
        (Some("create"), Some(PRODUCTS_DATASET))
    );
    let token = emulator
        .minted_token(create["tokenId"].as_str().unwrap())
        .unwrap();
    assert_eq!(token.target_workspaces, [WORKSPACE]);
}

#[test]
fn mistakes_are_refused_before_a_token_is_minted() {
    let emulator = Emulator::start().unwrap();
    // The RLS report without an identity: the pre-flight names the dataset (exit 2).
    let (code, _, stderr) = embed(
        &emulator,
        &["report", "--workspace", WORKSPACE, "--report", SALES_REPORT],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("requires an effective identity") && stderr.contains("Sales"),
        "{stderr}"
    );
    // A blank page name, and an id that is not one: refused before anything is sent.
    let (code, _, stderr) = embed(
        &emulator,
        &[
            "visual",
            "--workspace",
            WORKSPACE,
            "--report",
            SALES_REPORT,
            "--page",
            " ",
            "--visual",
            "x",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("pageName"), "{stderr}");
    let (code, _, stderr) = embed(
        &emulator,
        &["qna", "--workspace", "not-a-guid", "--dataset", PRODUCTS_DATASET],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(emulator.stats().minted, 0, "no token minted");
}

#[test]
fn every_text_field_is_checked_alike_before_anything_is_sent() {
    let emulator = Emulator::start().unwrap();
    let long = "p".repeat(100_000);
    let visual = |page: &str, visual: &str| {
        vec![
            "visual".to_owned(),
            "--workspace".to_owned(),
            WORKSPACE.to_owned(),
            "--report".to_owned(),
            SALES_REPORT.to_owned(),
            "--page".to_owned(),
            page.to_owned(),
            "--visual".to_owned(),
            visual.to_owned(),
            "--username".to_owned(),
            "alice@contoso.com".to_owned(),
            "--role".to_owned(),
            "Region".to_owned(),
        ]
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (visual("", "salesTrend"), "pageName"),
        (visual(&long, "salesTrend"), "pageName"),
        (visual("Report\u{7}Section", "salesTrend"), "pageName"),
        (visual("ReportSection", ""), "visualName"),
        (visual("ReportSection", &long), "visualName"),
        (
            [
                "qna",
                "--workspace",
                WORKSPACE,
                "--dataset",
                PRODUCTS_DATASET,
                "--question",
            ]
            .map(str::to_owned)
            .into_iter()
            .chain([long.clone()])
            .collect(),
            "question",
        ),
        (
            [
                "qna",
                "--workspace",
                WORKSPACE,
                "--dataset",
                PRODUCTS_DATASET,
                "--question",
                "top\nproducts",
            ]
            .map(str::to_owned)
            .to_vec(),
            "question",
        ),
    ];
    for (args, field) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, stderr) = embed(&emulator, &args);
        assert_eq!(code, 2, "{field}: {stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
        assert!(
            stderr.len() < 2_000,
            "the error does not echo the input: {}",
            stderr.len()
        );
    }
    let sent: u64 = emulator.stats().requests.values().sum();
    assert_eq!(sent, 0, "nothing was sent");

    // `embed paginated` names an ordinary report: refused, not embedded as a report.
    let (code, _, stderr) = embed(
        &emulator,
        &[
            "paginated",
            "--workspace",
            WORKSPACE,
            "--report",
            SALES_REPORT,
            "--username",
            "alice@contoso.com",
            "--role",
            "Region",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("paginated"), "{stderr}");
    assert_eq!(emulator.generate_token_requests(), 0);
}

#[test]
fn the_bare_token_of_a_configuration_for_shell_use() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let base = emulator.base_url();
    let output = Command::cargo_bin("pbi-embed")
        .unwrap()
        .env_clear()
        .env("AZURE_TENANT_ID", &ids.tenant)
        .env("AZURE_CLIENT_ID", &ids.client_id)
        .env("AZURE_CLIENT_SECRET", &ids.client_secret)
        // The API base from the environment, as the library and the examples read it.
        .env("PBI_API_BASE", &base)
        .env("AZURE_AUTHORITY_HOST", &base)
        .args(["embed", "--output", "token", "create", "--workspace", WORKSPACE])
        .args(["--dataset", PRODUCTS_DATASET])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').unwrap();
    assert!(!token.is_empty() && !token.contains(['{', '\n', ' ']), "{stdout}");
    let introspected = emulator.introspect(token);
    assert!(introspected.valid, "the emulator minted it");
}
