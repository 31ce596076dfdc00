//! The 24 official request/response examples of the six GenerateToken operations
//! (Microsoft's OpenAPI `x-ms-examples`) as test vectors: the typed API builds each
//! request, which must serialize to the official JSON, and each official response parses.

use pbi_embed_core::{
    AccessToken, ApiRequest, Cloud, CreateReportToken, DashboardId, DashboardToken, DatasetId, DatasetToken,
    DatasourceConnectionDetails, DatasourceIdentity, DatasourceSelector, EffectiveIdentity, IdentityBlob,
    MultiResourceToken, Operation, ReportId, ReportToken, TileId, TileToken, WorkspaceId, XmlaPermissions,
    http,
};
use serde_json::Value;

const EXAMPLES: &str = include_str!("data/powerbi-embed-examples.json");

const GROUP: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
const REPORT: &str = "5b218778-e7a5-4d73-8187-f10824047715";
const DASHBOARD: &str = "69ffaa6c-b36d-4d01-96f5-1ed67c64d4af";
const TILE: &str = "312fbfe9-2eda-44e0-9ed0-ab5dc571bb4b";
const DS: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";
const DS2: &str = "a8b062ca-5730-468f-9df7-43c2ba76bf5e";
const DS3: &str = "e75afc47-1150-45e0-aba7-4eb04e4876e5";
const R1: &str = "b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd";
const R2: &str = "759908bb-ead8-4a43-9645-7ffbf921c68d";
const PAGINATED: &str = "f904e89a-7ebe-4aa0-8647-e409063b4850";
const BLOB: &str = "eyJ0eX....AAA=";

fn ws() -> WorkspaceId {
    WorkspaceId::parse(GROUP).unwrap()
}
fn report(id: &str) -> ReportId {
    ReportId::parse(id).unwrap()
}
fn ds(id: &str) -> DatasetId {
    DatasetId::parse(id).unwrap()
}
fn dash() -> DashboardId {
    DashboardId::parse(DASHBOARD).unwrap()
}
fn tile() -> TileId {
    TileId::parse(TILE).unwrap()
}
fn john(role: &str, dataset: &str) -> EffectiveIdentity {
    EffectiveIdentity::new("john@contoso.com")
        .role(role)
        .dataset(ds(dataset))
}
fn blob_identity() -> EffectiveIdentity {
    EffectiveIdentity::from_identity_blob(IdentityBlob::new(BLOB)).dataset(ds(DS))
}
fn sql(server: &str, database: &str) -> DatasourceSelector {
    DatasourceSelector::new(
        "Sql",
        DatasourceConnectionDetails::server_database(server, database),
    )
}
fn mysql(server: &str, database: &str) -> DatasourceSelector {
    DatasourceSelector::new(
        "MySql",
        DatasourceConnectionDetails::server_database(server, database),
    )
}

/// What a typed operation puts on the wire: operation id, path and JSON body.
struct Wire {
    operation_id: &'static str,
    path: String,
    body: Value,
}

fn wire(op: &impl ApiRequest) -> Wire {
    op.validate().unwrap();
    Wire {
        operation_id: op.operation_id(),
        path: op.path(),
        body: serde_json::from_slice(&op.body().unwrap().unwrap()).unwrap(),
    }
}

/// The typed API's version of each official example, in the file's order.
fn typed_examples() -> Vec<Wire> {
    let r = || report(REPORT);
    vec![
        wire(&ReportToken::view(ws(), r()).identity(john("sales", DS))),
        wire(&ReportToken::view(ws(), r()).identity(john("sales", DS).custom_data("john_contoso.com"))),
        wire(&ReportToken::view(ws(), r()).identity(john("sales", DS).role("marketing"))),
        wire(&ReportToken::view(ws(), r()).identity(blob_identity())),
        wire(&ReportToken::edit(ws(), r()).identity(john("sales", DS))),
        wire(&ReportToken::view(ws(), r()).allow_save_as(true)),
        wire(&ReportToken::view(ws(), r()).identity(EffectiveIdentity::new("John Smith").report(report(DS)))),
        wire(&CreateReportToken::new(ws(), ds(DS))),
        wire(&CreateReportToken::new(ws(), ds(DS)).identity(john("sales", DS))),
        wire(
            &DashboardToken::new(ws(), dash()).identities([
                john("sales", DS),
                EffectiveIdentity::new("john_contoso")
                    .role("product")
                    .dataset(ds(DS2)),
            ]),
        ),
        wire(&DashboardToken::new(ws(), dash()).identity(blob_identity())),
        wire(&TileToken::new(ws(), dash(), tile()).identity(john("sales", DS))),
        wire(
            &TileToken::new(ws(), dash(), tile()).identity(john("sales", DS).custom_data("john_contoso.com")),
        ),
        wire(&TileToken::new(ws(), dash(), tile()).identity(blob_identity())),
        wire(&DatasetToken::new(ws(), ds(DS))),
        wire(
            &MultiResourceToken::new()
                .dataset(ds(DS))
                .dataset(ds(DS3))
                .report(report(R1))
                .identity(john("sales", DS))
                .identity(
                    EffectiveIdentity::new("iris@contoso.com")
                        .role("executive")
                        .dataset(ds(DS3)),
                ),
        ),
        wire(
            &MultiResourceToken::new()
                .dataset(ds(DS))
                .editable_report(report(R1))
                .report(report(R2)),
        ),
        wire(
            &MultiResourceToken::new()
                .dataset(ds(DS))
                .report(report(R1))
                .identity(john("sales", DS))
                .lifetime_in_minutes(10),
        ),
        wire(
            &MultiResourceToken::new()
                .dataset(ds(DS))
                .report(report(R1))
                .report(report(PAGINATED)),
        ),
        wire(
            &MultiResourceToken::new()
                .dataset_with_xmla(ds(R1), XmlaPermissions::ReadOnly)
                .dataset_with_xmla(ds(DS), XmlaPermissions::ReadOnly)
                .report(report(PAGINATED))
                .datasource_identity(DatasourceIdentity::new(
                    IdentityBlob::new(BLOB),
                    vec![sql("Best-Sql-Server", "Database3")],
                )),
        ),
        wire(
            &MultiResourceToken::new()
                .dataset_with_xmla(ds(DS), XmlaPermissions::ReadOnly)
                .report(report(R1))
                .identity(john("sales", DS))
                .identity(EffectiveIdentity::new("john@contoso.com").report(report(R1))),
        ),
        wire(
            &MultiResourceToken::new()
                .report(report(R1))
                .datasource_identity(DatasourceIdentity::new(
                    IdentityBlob::new(BLOB),
                    vec![sql("New-Sql-Server", "New-Sql-Database")],
                )),
        ),
        wire(
            &MultiResourceToken::new()
                .report(report(R1))
                .datasource_identity(DatasourceIdentity::new(
                    IdentityBlob::new(BLOB),
                    vec![
                        sql("New-Sql-Server", "New-Sql-Database"),
                        mysql("New-MySql-Server", "New-MySql-Database"),
                    ],
                )),
        ),
        wire(
            &MultiResourceToken::new()
                .report(report(R1))
                .datasource_identity(DatasourceIdentity::new(
                    IdentityBlob::new(BLOB),
                    vec![sql("New-Sql-Server", "New-Sql-Database")],
                ))
                .datasource_identity(DatasourceIdentity::new(
                    IdentityBlob::new("eyJ0dW....AAA="),
                    vec![mysql("New-MySql-Server", "New-MySql-Database")],
                )),
        ),
    ]
}

fn official() -> Vec<Value> {
    let file: Value = serde_json::from_str(EXAMPLES).unwrap();
    file["examples"].as_array().unwrap().clone()
}

/// The one official example that sends `"allowSaveAs": "true"` (a string, against its
/// own schema): the typed API sends the boolean.
fn fix_up(mut body: Value) -> Value {
    if let Some(v) = body.get_mut("allowSaveAs")
        && v == "true"
    {
        *v = Value::Bool(true);
    }
    body
}

#[test]
fn every_official_request_body_is_built_by_the_typed_api() {
    let official = official();
    let typed = typed_examples();
    assert_eq!(official.len(), 24);
    assert_eq!(typed.len(), official.len());
    for (i, (example, ours)) in official.iter().zip(&typed).enumerate() {
        let name = example["name"].as_str().unwrap();
        assert_eq!(ours.operation_id, example["operationId"], "#{i} {name}");
        assert_eq!(ours.path, example["path"], "#{i} {name}");
        assert_eq!(example["method"], "POST");
        assert_eq!(ours.body, fix_up(example["requestBody"].clone()), "#{i} {name}");
    }
}

#[test]
fn every_official_request_body_deserializes_into_the_request_types() {
    for example in official() {
        let body = fix_up(example["requestBody"].clone());
        if example["operationId"] == "EmbedToken_GenerateToken" {
            let parsed: pbi_embed_core::GenerateTokenRequestV2 =
                serde_json::from_value(body.clone()).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), body);
        } else {
            let parsed: pbi_embed_core::GenerateTokenRequest = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), body);
        }
    }
}

#[test]
fn every_official_response_parses() {
    let token = AccessToken::new("eyJ0");
    let cloud = Cloud::Public;
    let op = ReportToken::view(ws(), report(REPORT));
    for example in official() {
        assert_eq!(example["responseStatus"], 200);
        let body = serde_json::to_vec(&example["responseBody"]).unwrap();
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/json; charset=utf-8")
            .body(body)
            .unwrap();
        let embed = op.authorize(&cloud, &token).from_http(response).unwrap();
        assert_eq!(embed.token.secret(), example["responseBody"]["token"]);
        assert_eq!(embed.token_id, example["responseBody"]["tokenId"]);
        assert_eq!(embed.expiration_rfc3339(), example["responseBody"]["expiration"]);
    }
}
