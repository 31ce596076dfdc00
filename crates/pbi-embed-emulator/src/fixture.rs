//! The emulated tenant: who may sign in, and which workspaces, reports, dashboards,
//! tiles and datasets exist.
//!
//! A fixture is JSON (see `fixtures/default.json`, which is also the built-in default).
//! Field names are Power BI's where Power BI has one.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in fixture, `fixtures/default.json`.
pub const DEFAULT_FIXTURE_JSON: &str = include_str!("../fixtures/default.json");

/// An error in a fixture file.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The file could not be read.
    #[error("cannot read fixture {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The JSON does not match the fixture format.
    #[error("fixture is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// The fixture is well formed but inconsistent.
    #[error("fixture is not consistent: {0}")]
    Invalid(String),
}

/// The largest fixture file read (the default is a few kilobytes).
pub const MAX_FIXTURE_BYTES: u64 = 16 * 1024 * 1024;

/// The whole emulated tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    /// The Entra ID tenant.
    pub tenant: Tenant,
    /// The scope the token endpoint accepts.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// `expires_in` of issued access tokens.
    #[serde(default = "default_lifetime")]
    pub access_token_lifetime_seconds: u64,
    /// Service principals that can sign in.
    pub service_principals: Vec<ServicePrincipal>,
    /// Workspaces and their content.
    pub workspaces: Vec<Workspace>,
    /// The host's managed identities (App Service and IMDS endpoints), if any.
    #[serde(default)]
    pub managed_identity: Option<ManagedIdentities>,
}

/// The managed identities the emulated Azure host has.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedIdentities {
    /// The `IDENTITY_HEADER` the App Service endpoint expects.
    pub identity_header: String,
    /// The identities; each acts as the service principal with its client id.
    pub identities: Vec<ManagedIdentity>,
}

/// One managed identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedIdentity {
    /// Its client id: a service principal of the fixture.
    pub client_id: String,
    /// Its object id.
    pub object_id: String,
    /// Its Azure resource id (user-assigned identities).
    #[serde(default)]
    pub resource_id: Option<String>,
    /// Whether it is the host's system-assigned identity (at most one).
    #[serde(default)]
    pub system_assigned: bool,
}

fn default_scope() -> String {
    "https://analysis.windows.net/powerbi/api/.default".to_owned()
}
fn default_lifetime() -> u64 {
    3599
}

/// The Entra ID tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    /// The tenant GUID.
    pub id: String,
    /// A verified domain that names the tenant too.
    pub domain: String,
}

/// A service principal (an app registration with a client secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipal {
    /// The application (client) id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// A name for people.
    #[serde(default)]
    pub display_name: String,
    /// Certificates (PEM) registered on the app: client assertions signed with their keys
    /// sign in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    /// Federated credentials: external tokens (workload identity) that sign in as the app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_credentials: Vec<FederatedCredential>,
}

/// A federated identity credential: which external tokens the app trusts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredential {
    /// The token's `iss`, exactly.
    pub issuer: String,
    /// The token's `sub`, exactly (case-sensitive).
    pub subject: String,
    /// Accepted `aud` values (Entra takes one: `api://AzureADTokenExchange`).
    pub audiences: Vec<String>,
}

/// A workspace (a "group" in REST paths).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workspace {
    /// The workspace id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The client ids of the service principals that are members.
    pub members: Vec<String>,
    /// Datasets.
    #[serde(default)]
    pub datasets: Vec<Dataset>,
    /// Reports.
    #[serde(default)]
    pub reports: Vec<Report>,
    /// Dashboards.
    #[serde(default)]
    pub dashboards: Vec<Dashboard>,
}

/// A dataset (semantic model) and its row-level-security settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dataset {
    /// The dataset id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether an embed token must carry an effective identity for it.
    pub is_effective_identity_required: bool,
    /// Whether that identity must carry roles.
    pub is_effective_identity_roles_required: bool,
    /// The RLS roles the model defines (an identity may only use these). Empty: any.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A report.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Report {
    /// The report id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The dataset it is bound to.
    pub dataset_id: String,
    /// `PowerBIReport` or `PaginatedReport`.
    #[serde(default = "default_report_type")]
    pub report_type: String,
    /// Its pages (GetPagesInGroup), with the visuals on each.
    #[serde(default)]
    pub pages: Vec<Page>,
}

/// A report page.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Page {
    /// `name`, what `pageName` takes (such as `ReportSection1`).
    pub name: String,
    /// `displayName`.
    pub display_name: String,
    /// The names of its visuals (what `visualName` takes).
    #[serde(default)]
    pub visuals: Vec<String>,
}

fn default_report_type() -> String {
    "PowerBIReport".to_owned()
}

/// A dashboard.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dashboard {
    /// The dashboard id.
    pub id: String,
    /// Its name.
    pub display_name: String,
    /// Its tiles.
    #[serde(default)]
    pub tiles: Vec<Tile>,
}

/// A tile on a dashboard.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tile {
    /// The tile id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The report it shows, if any.
    #[serde(default)]
    pub report_id: Option<String>,
    /// The dataset it queries, if any.
    #[serde(default)]
    pub dataset_id: Option<String>,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::from_json(DEFAULT_FIXTURE_JSON)
            .unwrap_or_else(|e| unreachable!("the built-in fixture is valid: {e}"))
    }
}

impl Fixture {
    /// Parses and checks a fixture.
    ///
    /// # Errors
    /// When the JSON does not match the format, or ids are not GUIDs, are duplicated, or
    /// refer to things that do not exist.
    pub fn from_json(json: &str) -> Result<Self, FixtureError> {
        let fixture: Self = serde_json::from_str(json)?;
        fixture.check().map_err(FixtureError::Invalid)?;
        Ok(fixture)
    }

    /// Reads a fixture file: a regular file of at most [`MAX_FIXTURE_BYTES`] (a FIFO or a
    /// device such as `/dev/zero` could hold the emulator or fill its memory; read those
    /// yourself, bounded, and use [`Self::from_json`]).
    ///
    /// # Errors
    /// As [`Self::from_json`], or when the file cannot be read, is not a regular file, or
    /// is larger than the bound.
    pub fn from_file(path: &Path) -> Result<Self, FixtureError> {
        use std::io::Read as _;
        let failed = |source| FixtureError::Read {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(failed)?;
        if !file.metadata().map_err(failed)?.is_file() {
            return Err(failed(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mut json = String::new();
        file.take(MAX_FIXTURE_BYTES + 1)
            .read_to_string(&mut json)
            .map_err(failed)?;
        if json.len() as u64 > MAX_FIXTURE_BYTES {
            return Err(failed(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("larger than {MAX_FIXTURE_BYTES} bytes"),
            )));
        }
        Self::from_json(&json)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        let mut id = |kind: &str, id: &str| {
            if !is_guid(id) {
                return Err(format!("{kind} id {id:?} is not a GUID"));
            }
            if !seen.insert(id.to_ascii_lowercase()) {
                return Err(format!("{kind} id {id} is used twice"));
            }
            Ok(())
        };
        id("tenant", &self.tenant.id)?;
        for sp in &self.service_principals {
            id("service principal", &sp.client_id)?;
        }
        if let Some(managed) = &self.managed_identity {
            for identity in &managed.identities {
                id("managed identity object", &identity.object_id)?;
                if self.principal(&identity.client_id).is_none() {
                    return Err(format!(
                        "managed identity {} is not a service principal of the fixture",
                        identity.client_id
                    ));
                }
            }
            if managed.identities.iter().filter(|i| i.system_assigned).count() > 1 {
                return Err("more than one system-assigned managed identity".to_owned());
            }
        }
        for ws in &self.workspaces {
            id("workspace", &ws.id)?;
            for d in &ws.datasets {
                id("dataset", &d.id)?;
            }
            for r in &ws.reports {
                id("report", &r.id)?;
            }
            for dash in &ws.dashboards {
                id("dashboard", &dash.id)?;
                for t in &dash.tiles {
                    id("tile", &t.id)?;
                }
            }
        }
        let datasets: HashSet<String> = self.datasets().map(|(_, d)| d.id.to_ascii_lowercase()).collect();
        for (_, r) in self.reports() {
            if !datasets.contains(&r.dataset_id.to_ascii_lowercase()) {
                return Err(format!(
                    "report {} is bound to unknown dataset {}",
                    r.id, r.dataset_id
                ));
            }
        }
        if self.service_principals.is_empty() {
            return Err("there is no service principal".to_owned());
        }
        Ok(())
    }

    /// The service principal with this client id.
    #[must_use]
    pub fn principal(&self, client_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals
            .iter()
            .find(|sp| sp.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The workspace with this id.
    #[must_use]
    pub fn workspace(&self, id: &str) -> Option<&Workspace> {
        self.workspaces.iter().find(|w| w.id.eq_ignore_ascii_case(id))
    }

    /// Every dataset, with its workspace.
    pub fn datasets(&self) -> impl Iterator<Item = (&Workspace, &Dataset)> {
        self.workspaces
            .iter()
            .flat_map(|w| w.datasets.iter().map(move |d| (w, d)))
    }

    /// Every report, with its workspace.
    pub fn reports(&self) -> impl Iterator<Item = (&Workspace, &Report)> {
        self.workspaces
            .iter()
            .flat_map(|w| w.reports.iter().map(move |r| (w, r)))
    }

    /// The dataset with this id, anywhere, with its workspace.
    #[must_use]
    pub fn dataset(&self, id: &str) -> Option<(&Workspace, &Dataset)> {
        self.datasets().find(|(_, d)| d.id.eq_ignore_ascii_case(id))
    }

    /// The report with this id, anywhere, with its workspace.
    #[must_use]
    pub fn report(&self, id: &str) -> Option<(&Workspace, &Report)> {
        self.reports().find(|(_, r)| r.id.eq_ignore_ascii_case(id))
    }

    /// Whether `tenant` (a GUID or domain) names this tenant.
    #[must_use]
    pub fn is_tenant(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.tenant.id) || tenant.eq_ignore_ascii_case(&self.tenant.domain)
    }
}

impl Workspace {
    /// Whether the service principal is a member.
    #[must_use]
    pub fn has_member(&self, client_id: &str) -> bool {
        self.members.iter().any(|m| m.eq_ignore_ascii_case(client_id))
    }
    /// The report with this id in this workspace.
    #[must_use]
    pub fn report(&self, id: &str) -> Option<&Report> {
        self.reports.iter().find(|r| r.id.eq_ignore_ascii_case(id))
    }
    /// The dataset with this id in this workspace.
    #[must_use]
    pub fn dataset(&self, id: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|d| d.id.eq_ignore_ascii_case(id))
    }
    /// The dashboard with this id in this workspace.
    #[must_use]
    pub fn dashboard(&self, id: &str) -> Option<&Dashboard> {
        self.dashboards.iter().find(|d| d.id.eq_ignore_ascii_case(id))
    }
}

impl Dashboard {
    /// The tile with this id on this dashboard.
    #[must_use]
    pub fn tile(&self, id: &str) -> Option<&Tile> {
        self.tiles.iter().find(|t| t.id.eq_ignore_ascii_case(id))
    }
}

/// Whether `s` is a hyphenated GUID.
pub(crate) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_fixture_file_is_a_bounded_regular_file() {
        let error = Fixture::from_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let big = std::env::temp_dir().join(format!("fixture-{}.json", std::process::id()));
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_FIXTURE_BYTES + 10).unwrap();
        let error = Fixture::from_file(&big).unwrap_err().to_string();
        let _ = std::fs::remove_file(&big);
        assert!(error.contains("larger than"), "{error}");
    }

    #[test]
    fn default_fixture_is_consistent() {
        let f = Fixture::default();
        assert_eq!(f.workspaces.len(), 2);
        let sales = &f.workspaces[0];
        assert!(sales.has_member(&f.service_principals[0].client_id));
        assert!(!f.workspaces[1].has_member(&f.service_principals[0].client_id));
        assert!(f.datasets().any(|(_, d)| d.is_effective_identity_roles_required));
        assert!(f.datasets().any(|(_, d)| !d.is_effective_identity_required));
    }

    #[test]
    fn inconsistent_fixtures_are_refused() {
        let mut f = Fixture::default();
        f.workspaces[0].reports[0].dataset_id = "00000000-0000-0000-0000-000000000000".into();
        let json = serde_json::to_string(&f).unwrap();
        assert!(
            Fixture::from_json(&json)
                .unwrap_err()
                .to_string()
                .contains("unknown dataset")
        );
        let dup = DEFAULT_FIXTURE_JSON.replace(
            "5b218778-e7a5-4d73-8187-f10824047715",
            "b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd",
        );
        assert!(
            Fixture::from_json(&dup)
                .unwrap_err()
                .to_string()
                .contains("used twice")
        );
        assert!(Fixture::from_json("{}").is_err());
    }
}
