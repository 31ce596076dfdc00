//! The six GenerateToken routes, with Power BI's rules, status codes, error codes and
//! messages. Request bodies are parsed here, from the specification, with the
//! emulator's own types.
//!
//! The emulator is stricter than Power BI in one way, on purpose: unknown or miscased
//! JSON fields are refused (Power BI ignores them), so that a client's spelling mistake
//! shows up as a failed test instead of a silently ignored option.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::access_token::Refusal;
use crate::clock::format_rfc3339;
use crate::fixture::{Dataset, Workspace, is_guid};
use crate::reply::{Body, Rejection, json_response};
use crate::route::{Route, Target};
use crate::state::State;
use crate::tokens::{Claims, IdentitySummary, MintedToken, Resource, new_guid, unix_ms};

/// The most items of each kind in a multi-resource request.
const MAX_ITEMS: usize = 50;
const MAX_ROLES: usize = 50;
const MAX_ROLE_LEN: usize = 50;
const MAX_USERNAME_LEN: usize = 256;

/// The body of the five single-item routes (`GenerateTokenRequest`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SingleItemBody {
    access_level: Option<String>,
    dataset_id: Option<String>,
    /// Power BI (JSON.NET) also reads `"true"` as a boolean; an official example sends it.
    #[serde(default, deserialize_with = "bool_or_string")]
    allow_save_as: Option<bool>,
    identities: Option<Vec<Identity>>,
    lifetime_in_minutes: Option<i64>,
}

/// The body of the multi-resource route (`GenerateTokenRequestV2`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MultiResourceBody {
    datasets: Option<Vec<ItemDataset>>,
    reports: Option<Vec<ItemReport>>,
    target_workspaces: Option<Vec<ItemWorkspace>>,
    identities: Option<Vec<Identity>>,
    lifetime_in_minutes: Option<i64>,
    datasource_identities: Option<Vec<DatasourceIdentity>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ItemDataset {
    id: String,
    xmla_permissions: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ItemReport {
    id: String,
    allow_edit: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ItemWorkspace {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DatasourceIdentity {
    identity_blob: String,
    datasources: Vec<DatasourceSelector>,
}

/// `DatasourceSelector`: both fields are required by the specification.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DatasourceSelector {
    datasource_type: String,
    connection_details: serde_json::Map<String, serde_json::Value>,
}

/// `EffectiveIdentity`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Identity {
    username: Option<String>,
    roles: Option<Vec<String>>,
    datasets: Option<Vec<String>>,
    reports: Option<Vec<String>>,
    custom_data: Option<String>,
    identity_blob: Option<IdentityBlob>,
    #[allow(dead_code)] // Accepted and ignored, as it only affects Power BI's audit log.
    auditable_context: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityBlob {
    #[allow(dead_code)] // Never read: an identity blob is only checked for presence.
    value: String,
}

fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Bool(bool),
        Text(String),
    }
    match Option::<Lenient>::deserialize(d)? {
        None => Ok(None),
        Some(Lenient::Bool(b)) => Ok(Some(b)),
        Some(Lenient::Text(t)) if t.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Lenient::Text(t)) if t.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(Lenient::Text(t)) => Err(serde::de::Error::custom(format!("{t:?} is not a boolean"))),
    }
}

/// The caller, from a valid bearer token.
pub(crate) struct Caller {
    client_id: String,
    token_expires_at: SystemTime,
    profile_id: Option<String>,
}

/// What a request asks for, once its route and body are understood.
struct Grant {
    operation: &'static str,
    access_level: Option<String>,
    resources: Vec<Resource>,
    /// Datasets whose RLS rules apply, lower case.
    datasets: BTreeSet<String>,
    /// Reports named in the request, lower case.
    reports: BTreeSet<String>,
    target_workspaces: Vec<String>,
    allow_save_as: bool,
    identities: Vec<Identity>,
    max_identities: Option<usize>,
    lifetime_in_minutes: Option<i64>,
}

/// Answers one GenerateToken request.
pub(crate) fn generate(
    state: &State,
    target: &Target<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    try_generate(state, target, headers, body).unwrap_or_else(Rejection::into_response)
}

fn try_generate(
    state: &State,
    target: &Target<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response<Body>, Rejection> {
    let caller = authenticate(state, headers)?;
    if let Some(wait) = state.over_rate_limit(&caller.client_id, Instant::now()) {
        return Err(throttled(wait));
    }
    let grant = match target.route {
        Route::EmbedTokenGenerateToken => multi_resource(state, &caller, parse_json(headers, body)?)?,
        route => single_item(state, &caller, route, &target.params, parse_json(headers, body)?)?,
    };
    check_identities(state, &grant)?;
    Ok(mint(state, &caller, grant, headers))
}

/// Reads the bearer token: 401 when missing or not ours, 403 `TokenExpired` when expired.
pub(crate) fn authenticate(state: &State, headers: &HeaderMap) -> Result<Caller, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Rejection::not_authorized());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return Err(Rejection::not_authorized());
    };
    let claims = match state.access.verify(token, state.resource(), SystemTime::now()) {
        Ok(claims) => claims,
        Err(Refusal::Expired) => return Err(Rejection::token_expired()),
        Err(Refusal::Invalid | Refusal::WrongAudience) => return Err(Rejection::not_authorized()),
    };
    let token_expires_at = SystemTime::UNIX_EPOCH + Duration::from_secs(claims.exp);
    if claims.tid != state.fixture.tenant.id || state.fixture.principal(&claims.appid).is_none() {
        return Err(Rejection::not_authorized());
    }
    let sub = claims.appid.to_ascii_lowercase();
    let mut profiles = headers.get_all("x-powerbi-profile-id").iter();
    let profile_id = match (profiles.next(), profiles.next()) {
        (None, _) => None,
        (Some(p), None) => match p.to_str() {
            Ok(p) if is_guid(p) => Some(p.to_ascii_lowercase()),
            _ => {
                return Err(Rejection::invalid_request(
                    "The X-PowerBI-Profile-Id header is not a valid GUID",
                ));
            }
        },
        // Power BI's documentation warns that a repeated profile header is refused.
        (Some(_), Some(_)) => return Err(Rejection::not_authorized()),
    };
    Ok(Caller {
        client_id: sub,
        token_expires_at,
        profile_id,
    })
}

fn throttled(wait: Duration) -> Rejection {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Rejection::throttled(seconds.max(1))
}

/// Checks the media type and parses the JSON body.
fn parse_json<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, Rejection> {
    if body.is_empty() {
        return Err(Rejection::invalid_request(
            "The request body is required (a GenerateTokenRequest)",
        ));
    }
    let Some(content_type) = headers.get(CONTENT_TYPE) else {
        return Err(Rejection::invalid_request(
            "The request contains an entity body but no Content-Type header. The inferred media type \
             'application/octet-stream' is not supported for this resource.",
        ));
    };
    let essence = content_type
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(Rejection::invalid_request(format!(
            "The request entity's media type '{essence}' is not supported for this resource."
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| Rejection::invalid_request(format!("The request body is not valid: {e}")))
}

/// The workspace, if the caller may use it: 404 when unknown, 401 when not a member.
pub(crate) fn member_workspace<'s>(
    state: &'s State,
    caller: &Caller,
    id: &str,
) -> Result<&'s Workspace, Rejection> {
    let workspace = state.fixture.workspace(id).ok_or_else(Rejection::not_found)?;
    if workspace.has_member(&caller.client_id) {
        Ok(workspace)
    } else {
        Err(Rejection::not_authorized())
    }
}

/// A report bound to a dataset in another workspace needs the caller to be a member of
/// that one too (Power BI: "at least Member of both").
fn member_of_dataset_workspace(state: &State, caller: &Caller, dataset_id: &str) -> Result<(), Rejection> {
    match state.fixture.dataset(dataset_id) {
        Some((workspace, _)) => member_workspace(state, caller, &workspace.id).map(|_| ()),
        // A paginated report over no Power BI dataset.
        None => Ok(()),
    }
}

fn access_level(requested: Option<&str>, allowed: &[&str]) -> Result<String, Rejection> {
    let level = requested.unwrap_or("View");
    let known = ["View", "Edit", "Create"]
        .into_iter()
        .find(|l| l.eq_ignore_ascii_case(level));
    match known {
        None => Err(Rejection::invalid_request(format!(
            "The access level '{level}' is not valid. Use View, Edit or Create"
        ))),
        Some(l) if !allowed.contains(&l) => Err(Rejection::invalid_request(format!(
            "The access level '{l}' is not supported for this item. Use {}",
            allowed.join(" or ")
        ))),
        Some(l) => Ok(l.to_owned()),
    }
}

fn resource(kind: &str, id: &str) -> Resource {
    Resource {
        kind: kind.to_owned(),
        id: id.to_ascii_lowercase(),
        editable: false,
        xmla_permissions: None,
    }
}

pub(crate) fn percent_decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

fn single_item(
    state: &State,
    caller: &Caller,
    route: Route,
    params: &[&str],
    body: SingleItemBody,
) -> Result<Grant, Rejection> {
    let param = |i: usize| params.get(i).copied().unwrap_or_default();
    let workspace = member_workspace(state, caller, param(0))?;
    let mut grant = Grant {
        operation: route.name(),
        access_level: None,
        resources: Vec::new(),
        datasets: BTreeSet::new(),
        reports: BTreeSet::new(),
        target_workspaces: Vec::new(),
        allow_save_as: body.allow_save_as.unwrap_or(false),
        identities: body.identities.unwrap_or_default(),
        max_identities: Some(1),
        lifetime_in_minutes: body.lifetime_in_minutes,
    };
    let level = body.access_level.as_deref();
    match route {
        Route::ReportsGenerateTokenInGroup => {
            let report = workspace.report(param(1)).ok_or_else(Rejection::not_found)?;
            member_of_dataset_workspace(state, caller, &report.dataset_id)?;
            let level = access_level(level, &["View", "Edit"])?;
            let mut r = resource("report", &report.id);
            r.editable = level == "Edit";
            grant.resources.push(r);
            grant.reports.insert(report.id.to_ascii_lowercase());
            grant.datasets.insert(report.dataset_id.to_ascii_lowercase());
            grant.access_level = Some(level);
        }
        Route::ReportsGenerateTokenForCreateInGroup => {
            let level = access_level(level, &["Create"])?;
            let Some(dataset_id) = &body.dataset_id else {
                return Err(Rejection::invalid_request(
                    "The datasetId parameter is required to create a report",
                ));
            };
            let (dataset_workspace, dataset) = state
                .fixture
                .dataset(dataset_id)
                .ok_or_else(Rejection::not_found)?;
            // Across workspaces, the caller must be a member of both.
            member_workspace(state, caller, &dataset_workspace.id)?;
            grant.resources.push(resource("dataset", &dataset.id));
            grant.datasets.insert(dataset.id.to_ascii_lowercase());
            grant.target_workspaces.push(workspace.id.to_ascii_lowercase());
            grant.access_level = Some(level);
        }
        Route::DashboardsGenerateTokenInGroup => {
            let dashboard = workspace.dashboard(param(1)).ok_or_else(Rejection::not_found)?;
            grant.access_level = Some(access_level(level, &["View"])?);
            grant.resources.push(resource("dashboard", &dashboard.id));
            grant.datasets.extend(
                dashboard
                    .tiles
                    .iter()
                    .filter_map(|t| t.dataset_id.as_ref())
                    .map(|d| d.to_ascii_lowercase()),
            );
            grant.max_identities = None;
        }
        Route::TilesGenerateTokenInGroup => {
            let dashboard = workspace.dashboard(param(1)).ok_or_else(Rejection::not_found)?;
            let tile = dashboard.tile(param(2)).ok_or_else(Rejection::not_found)?;
            grant.access_level = Some(access_level(level, &["View"])?);
            grant.resources.push(resource("tile", &tile.id));
            grant
                .datasets
                .extend(tile.dataset_id.as_ref().map(|d| d.to_ascii_lowercase()));
        }
        _ => {
            let dataset = workspace
                .dataset(&percent_decoded(param(1)))
                .ok_or_else(Rejection::not_found)?;
            grant.access_level = Some(access_level(level, &["View"])?);
            grant.resources.push(resource("dataset", &dataset.id));
            grant.datasets.insert(dataset.id.to_ascii_lowercase());
        }
    }
    if route != Route::ReportsGenerateTokenForCreateInGroup && body.dataset_id.is_some() {
        return Err(Rejection::invalid_request(
            "The datasetId parameter only applies to report creation",
        ));
    }
    Ok(grant)
}

fn multi_resource(state: &State, caller: &Caller, body: MultiResourceBody) -> Result<Grant, Rejection> {
    let datasets = body.datasets.unwrap_or_default();
    let reports = body.reports.unwrap_or_default();
    let targets = body.target_workspaces.unwrap_or_default();
    for (name, len) in [
        ("datasets", datasets.len()),
        ("reports", reports.len()),
        ("targetWorkspaces", targets.len()),
    ] {
        if len > MAX_ITEMS {
            return Err(Rejection::invalid_request(format!(
                "The number of {name} in the request ({len}) exceeds the limit of {MAX_ITEMS}"
            )));
        }
    }
    if datasets.is_empty() && reports.is_empty() {
        return Err(Rejection::invalid_request(
            "The request must contain at least one report or dataset",
        ));
    }
    for identity in body.datasource_identities.iter().flatten() {
        if identity.identity_blob.is_empty() || identity.datasources.is_empty() {
            return Err(Rejection::invalid_request(
                "A datasource identity needs an identityBlob and at least one datasource",
            ));
        }
        if let Some(selector) = identity
            .datasources
            .iter()
            .find(|d| d.datasource_type.is_empty() || d.connection_details.is_empty())
        {
            return Err(Rejection::invalid_request(format!(
                "A datasource needs a datasourceType and its connectionDetails (datasourceType '{}')",
                selector.datasource_type
            )));
        }
    }
    let mut grant = Grant {
        operation: Route::EmbedTokenGenerateToken.name(),
        access_level: None,
        resources: Vec::new(),
        datasets: BTreeSet::new(),
        reports: BTreeSet::new(),
        target_workspaces: Vec::new(),
        allow_save_as: !targets.is_empty(),
        identities: body.identities.unwrap_or_default(),
        max_identities: None,
        lifetime_in_minutes: body.lifetime_in_minutes,
    };
    for item in &reports {
        let (workspace, report) = state.fixture.report(&item.id).ok_or_else(Rejection::not_found)?;
        member_workspace(state, caller, &workspace.id)?;
        member_of_dataset_workspace(state, caller, &report.dataset_id)?;
        let mut r = resource("report", &report.id);
        r.editable = item.allow_edit.unwrap_or(false);
        grant.resources.push(r);
        grant.reports.insert(report.id.to_ascii_lowercase());
        grant.datasets.insert(report.dataset_id.to_ascii_lowercase());
    }
    for item in &datasets {
        let (workspace, dataset) = state.fixture.dataset(&item.id).ok_or_else(Rejection::not_found)?;
        member_workspace(state, caller, &workspace.id)?;
        let xmla = match item.xmla_permissions.as_deref() {
            None => None,
            Some(p) if p.eq_ignore_ascii_case("Off") => Some("Off".to_owned()),
            Some(p) if p.eq_ignore_ascii_case("ReadOnly") => Some("ReadOnly".to_owned()),
            Some(p) => {
                return Err(Rejection::invalid_request(format!(
                    "The xmlaPermissions value '{p}' is not valid. Use Off or ReadOnly"
                )));
            }
        };
        let mut r = resource("dataset", &dataset.id);
        r.xmla_permissions = xmla;
        grant.resources.push(r);
        grant.datasets.insert(dataset.id.to_ascii_lowercase());
    }
    for item in &targets {
        let workspace = member_workspace(state, caller, &item.id)?;
        grant.target_workspaces.push(workspace.id.to_ascii_lowercase());
    }
    Ok(grant)
}

/// Power BI's identity rules: how many, their limits, and row-level security.
fn check_identities(state: &State, grant: &Grant) -> Result<(), Rejection> {
    if let Some(max) = grant.max_identities
        && grant.identities.len() > max
    {
        return Err(Rejection::invalid_request(
            "Creating embed token with multiple identities is not supported",
        ));
    }
    for identity in &grant.identities {
        match &identity.username {
            None if identity.identity_blob.is_none() => {
                return Err(Rejection::invalid_request(
                    "An effective identity must have a username or an identity blob",
                ));
            }
            Some(name) if name.is_empty() => {
                return Err(Rejection::invalid_request(
                    "The effective identity username must not be empty",
                ));
            }
            Some(name) if name.chars().count() > MAX_USERNAME_LEN => {
                return Err(Rejection::invalid_request(format!(
                    "The effective identity username exceeds the maximum length of {MAX_USERNAME_LEN} characters"
                )));
            }
            _ => {}
        }
        let roles = identity.roles.as_deref().unwrap_or_default();
        if roles.len() > MAX_ROLES {
            return Err(Rejection::invalid_request(format!(
                "An effective identity can contain at most {MAX_ROLES} roles"
            )));
        }
        for role in roles {
            if role.is_empty() || role.chars().count() > MAX_ROLE_LEN || role.contains(',') {
                return Err(Rejection::invalid_request(format!(
                    "The role '{role}' is not valid: a role is 1 to {MAX_ROLE_LEN} characters without commas"
                )));
            }
        }
        for dataset in identity.datasets.iter().flatten() {
            if !grant.datasets.contains(&dataset.to_ascii_lowercase()) {
                return Err(Rejection::invalid_request(format!(
                    "The effective identity refers to dataset {dataset}, which is not part of this request"
                )));
            }
        }
        // An identity's `reports` (paginated reports) are not checked against the request:
        // Microsoft's own example names a report that the request does not.
        for report in identity.reports.iter().flatten() {
            if !is_guid(report) {
                return Err(Rejection::invalid_request(format!(
                    "The effective identity refers to report '{report}', which is not a report id"
                )));
            }
        }
        if identity.datasets.as_ref().is_none_or(Vec::is_empty)
            && identity.reports.as_ref().is_none_or(Vec::is_empty)
        {
            return Err(Rejection::invalid_request(
                "DatasetId is mandatory for any EffectiveIdentity",
            ));
        }
    }
    for dataset_id in &grant.datasets {
        let Some((_, dataset)) = state.fixture.dataset(dataset_id) else {
            continue;
        };
        check_dataset_rls(dataset, &grant.identities)?;
    }
    if let Some(minutes) = grant.lifetime_in_minutes
        && minutes < 0
    {
        return Err(Rejection::invalid_request(
            "lifetimeInMinutes must be a positive integer",
        ));
    }
    Ok(())
}

fn check_dataset_rls(dataset: &Dataset, identities: &[Identity]) -> Result<(), Rejection> {
    let id = dataset.id.to_ascii_lowercase();
    let applying: Vec<&Identity> = identities
        .iter()
        .filter(|i| i.datasets.iter().flatten().any(|d| d.eq_ignore_ascii_case(&id)))
        .collect();
    if !dataset.is_effective_identity_required {
        if !applying.is_empty() {
            return Err(Rejection::invalid_request(format!(
                "Creating embed token for accessing dataset {id} shouldn't have effective identity"
            )));
        }
        return Ok(());
    }
    if applying.is_empty() {
        return Err(Rejection::invalid_request(format!(
            "Creating embed token for accessing dataset {id} requires effective identity to be provided"
        )));
    }
    for identity in applying {
        let roles = identity.roles.as_deref().unwrap_or_default();
        if dataset.is_effective_identity_roles_required
            && roles.is_empty()
            && identity.identity_blob.is_none()
        {
            return Err(Rejection::invalid_request(format!(
                "Creating embed token for accessing dataset {id} requires roles to be included in provided effective identity"
            )));
        }
        if let Some(role) = roles.iter().find(|r| {
            !dataset.roles.is_empty() && !dataset.roles.iter().any(|known| known.eq_ignore_ascii_case(r))
        }) {
            return Err(Rejection::invalid_request(format!(
                "The role '{role}' does not exist in dataset {id}"
            )));
        }
    }
    Ok(())
}

fn mint(state: &State, caller: &Caller, grant: Grant, headers: &HeaderMap) -> Response<Body> {
    let now = SystemTime::now();
    let mut expires_at = caller.token_expires_at;
    if let Some(minutes) = grant.lifetime_in_minutes.filter(|m| *m > 0) {
        let minutes = u64::try_from(minutes).unwrap_or(u64::MAX);
        let lifetime = Duration::from_secs(minutes.saturating_mul(60));
        expires_at = expires_at.min(crate::clock::later(now, lifetime));
    }
    // Power BI reports whole seconds: round down so the token never outlives its bearer.
    let expires_ms = unix_ms(expires_at) / 1000 * 1000;
    let token_id = new_guid();
    let token = state.signer.sign(&Claims::Embed {
        tid: token_id.clone(),
        exp: expires_ms,
    });
    let expiration = format_rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(expires_ms));
    state.tokens.insert(MintedToken {
        token_id: token_id.clone(),
        operation: grant.operation.to_owned(),
        client_id: caller.client_id.clone(),
        profile_id: caller.profile_id.clone(),
        access_level: grant.access_level,
        resources: grant.resources,
        target_workspaces: grant.target_workspaces,
        allow_save_as: grant.allow_save_as,
        identities: grant
            .identities
            .iter()
            .map(|i| IdentitySummary {
                username: i.username.clone(),
                roles: i.roles.clone().unwrap_or_default(),
                datasets: i
                    .datasets
                    .iter()
                    .flatten()
                    .map(|d| d.to_ascii_lowercase())
                    .collect(),
                reports: i
                    .reports
                    .iter()
                    .flatten()
                    .map(|r| r.to_ascii_lowercase())
                    .collect(),
                custom_data: i.custom_data.clone(),
                has_identity_blob: i.identity_blob.is_some(),
            })
            .collect(),
        lifetime_in_minutes: grant.lifetime_in_minutes,
        expiration: expiration.clone(),
        expires_at_ms: expires_ms,
    });
    state.minted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The scheme and host the client used (https on the TLS emulator).
    let base = crate::discovery::base(state, headers);
    json_response(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("{base}/v1.0/myorg/$metadata#Microsoft.PowerBI.ServiceContracts.Api.V1.EmbedToken"),
            "token": token,
            "tokenId": token_id,
            "expiration": expiration,
        }),
    )
}
