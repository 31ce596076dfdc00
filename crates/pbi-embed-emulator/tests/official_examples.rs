//! Microsoft's 24 official GenerateToken examples, sent byte for byte to the emulator.
//!
//! The examples are not one consistent tenant (one lists an RLS dataset without an
//! identity, another names a dataset's id as a report), so each is sent to an emulator
//! serving the smallest world that example implies: the ids it names, a dataset that
//! requires an identity exactly when the example sends one for it (with the roles it
//! sends), a paginated report where an identity names it. Every one must be minted, and
//! the minted record must show what the example asked for.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{post_json, sign_in};
use pbi_embed_emulator::fixture::{Dashboard, Dataset, Report, Tile, Workspace};
use pbi_embed_emulator::{Emulator, Fixture};
use serde_json::Value;

const EXAMPLES: &str = include_str!("data/powerbi-embed-examples.json");

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The world one example implies.
fn world(example: &Value) -> Fixture {
    let body = &example["requestBody"];
    let params = &example["pathParameters"];
    let identities = body["identities"].as_array().cloned().unwrap_or_default();
    // Datasets named anywhere, with the identities' roles for each.
    let mut datasets: BTreeMap<String, (bool, BTreeSet<String>, bool)> = BTreeMap::new();
    let mut named = |id: &str| {
        datasets
            .entry(id.to_ascii_lowercase())
            .or_insert((false, BTreeSet::new(), true));
    };
    for id in [&params["datasetId"], &body["datasetId"]]
        .into_iter()
        .filter_map(Value::as_str)
    {
        named(id);
    }
    for dataset in body["datasets"].as_array().into_iter().flatten() {
        named(dataset["id"].as_str().unwrap_or_default());
    }
    let mut paginated = BTreeSet::new();
    for identity in &identities {
        let roles = strings(&identity["roles"]);
        let blob = identity.get("identityBlob").is_some();
        for id in strings(&identity["datasets"]) {
            let entry = datasets
                .entry(id.to_ascii_lowercase())
                .or_insert((false, BTreeSet::new(), true));
            entry.0 = true;
            entry.1.extend(roles.iter().cloned());
            entry.2 &= !roles.is_empty() || blob;
        }
        paginated.extend(
            strings(&identity["reports"])
                .into_iter()
                .map(|r| r.to_ascii_lowercase()),
        );
    }
    let identity_datasets: Vec<String> = identities
        .iter()
        .flat_map(|i| strings(&i["datasets"]))
        .map(|d| d.to_ascii_lowercase())
        .collect();
    // Reports: the path's and the body's; a Power BI report is bound to the example's
    // identity dataset, or to a dataset without row-level security of its own.
    let plain_dataset = "00000000-0000-4000-8000-00000000da7a".to_owned();
    let mut reports = Vec::new();
    let report_ids = params["reportId"].as_str().map(str::to_owned).into_iter().chain(
        body["reports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str())
            .map(str::to_owned),
    );
    for id in report_ids {
        let id = id.to_ascii_lowercase();
        let is_paginated = paginated.contains(&id);
        let dataset_id = match (params["reportId"].as_str().is_some(), identity_datasets.first()) {
            (true, Some(dataset)) if !is_paginated => dataset.clone(),
            _ => plain_dataset.clone(),
        };
        reports.push(Report {
            id,
            name: "Official example".into(),
            dataset_id,
            report_type: if is_paginated {
                "PaginatedReport"
            } else {
                "PowerBIReport"
            }
            .into(),
            pages: Vec::new(),
        });
    }
    datasets
        .entry(plain_dataset)
        .or_insert((false, BTreeSet::new(), true));
    let dashboards = params["dashboardId"]
        .as_str()
        .map(|dashboard| Dashboard {
            id: dashboard.to_owned(),
            display_name: "Official example".into(),
            tiles: [params["tileId"]
                .as_str()
                .unwrap_or("312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b")]
            .into_iter()
            .map(|tile| tile.to_owned())
            .chain(
                identity_datasets
                    .iter()
                    .enumerate()
                    .skip(1)
                    .map(|(i, _)| format!("00000000-0000-4000-8000-0000000071e{i}")),
            )
            .zip(
                identity_datasets
                    .iter()
                    .cloned()
                    .map(Some)
                    .chain(std::iter::repeat(None)),
            )
            .map(|(id, dataset_id)| Tile {
                id,
                title: "Official example".into(),
                report_id: None,
                dataset_id,
            })
            .collect(),
        })
        .into_iter()
        .collect();
    let mut fixture = Fixture::default();
    let principal = fixture.service_principals[0].client_id.clone();
    fixture.workspaces = vec![Workspace {
        id: params["groupId"]
            .as_str()
            .unwrap_or("f089354e-8366-4e18-aea3-4cb4a3a50b48")
            .to_owned(),
        name: "Official examples".into(),
        members: vec![principal],
        datasets: datasets
            .into_iter()
            .map(|(id, (required, roles, roles_required))| Dataset {
                id,
                name: "Official example".into(),
                is_effective_identity_required: required,
                is_effective_identity_roles_required: required && roles_required,
                roles: roles.into_iter().collect(),
            })
            .collect(),
        reports,
        dashboards,
    }];
    fixture
}

#[test]
fn every_official_example_is_minted_as_asked() {
    let examples: Value = serde_json::from_str(EXAMPLES).unwrap();
    let examples = examples["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 24);
    for (i, example) in examples.iter().enumerate() {
        let name = example["name"].as_str().unwrap_or_default();
        let emulator = Emulator::builder().fixture(world(example)).start().unwrap();
        let token = sign_in(&emulator);
        let path = example["path"].as_str().unwrap();
        let reply = post_json(emulator.addr(), path, &token, &example["requestBody"]);
        assert_eq!(
            reply.status,
            200,
            "example {i} ({name}): {}",
            String::from_utf8_lossy(&reply.body)
        );
        let minted = emulator
            .minted_token(reply.json()["tokenId"].as_str().unwrap())
            .unwrap();
        assert_eq!(minted.operation, example["operationId"], "example {i}");
        let body = &example["requestBody"];
        let sent_identities = body["identities"].as_array().map_or(0, Vec::len);
        assert_eq!(minted.identities.len(), sent_identities, "example {i}");
        if let Some(level) = body["accessLevel"].as_str() {
            assert_eq!(minted.access_level.as_deref(), Some(level), "example {i}");
        }
        if body["allowSaveAs"] == "true" {
            assert!(
                minted.allow_save_as,
                "example {i}: allowSaveAs as the string \"true\""
            );
        }
        if let Some(minutes) = body["lifetimeInMinutes"].as_i64() {
            assert_eq!(minted.lifetime_in_minutes, Some(minutes), "example {i}");
        }
        for report in body["reports"].as_array().into_iter().flatten() {
            let id = report["id"].as_str().unwrap();
            let editable = report["allowEdit"] == true;
            assert!(
                minted
                    .resources
                    .iter()
                    .any(|r| r.kind == "report" && r.id == id && r.editable == editable),
                "example {i}: report {id}"
            );
        }
        for dataset in body["datasets"].as_array().into_iter().flatten() {
            let xmla = dataset["xmlaPermissions"].as_str();
            assert!(
                minted.resources.iter().any(|r| r.kind == "dataset"
                    && r.id == dataset["id"].as_str().unwrap()
                    && r.xmla_permissions.as_deref() == xmla),
                "example {i}: dataset {dataset}"
            );
        }
    }
}
