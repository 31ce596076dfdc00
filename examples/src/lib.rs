//! Shared set-up for the examples: real Power BI when the `AZURE_*` and `PBI_*`
//! variables are set, the local emulator otherwise.

use pbi_embed_core::{
    ClientId, ClientSecret, Cloud, DashboardId, DatasetId, EffectiveIdentity, Error, ReportId, TenantId,
    TileId, WorkspaceId,
};
use pbi_embed_emulator::Emulator;

/// Where the examples mint tokens, and for what.
#[derive(Debug)]
pub struct Target {
    /// The cloud, pointed at the emulator when there is one.
    pub cloud: Cloud,
    /// The service principal.
    pub tenant: TenantId,
    /// Its client id.
    pub client_id: ClientId,
    /// Its secret.
    pub client_secret: ClientSecret,
    /// The report's workspace.
    pub workspace: WorkspaceId,
    /// The report.
    pub report: ReportId,
    /// A dashboard in the same workspace, if one is named.
    pub dashboard: Option<DashboardId>,
    /// A tile on that dashboard, if one is named.
    pub tile: Option<TileId>,
    /// The RLS identity to embed with, if any.
    pub identity: Option<EffectiveIdentity>,
    /// The emulator, when the example runs against it (kept alive while in use).
    pub emulator: Option<Emulator>,
}

impl Target {
    /// Real Power BI from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
    /// `PBI_WORKSPACE_ID` and `PBI_REPORT_ID` (with an optional RLS identity from
    /// `PBI_USERNAME`, `PBI_ROLES` (comma-separated) and `PBI_DATASET_ID`, and optionally
    /// `PBI_DASHBOARD_ID` and `PBI_TILE_ID`); the emulator when `AZURE_CLIENT_ID` is not
    /// set, with embed URLs under `PBI_EMULATOR_EMBED_BASE` when that is set (see
    /// [`pbi_embed_emulator::EmulatorBuilder::embed_base`]).
    ///
    /// # Errors
    /// A variable that is set but malformed, or an emulator that cannot start.
    pub fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if var("AZURE_CLIENT_ID").is_none() {
            return Self::emulator(var("PBI_EMULATOR_EMBED_BASE"));
        }
        let required = |name: &'static str| var(name).ok_or_else(|| Error::invalid_input(name, "is not set"));
        let identity = match (var("PBI_USERNAME"), var("PBI_DATASET_ID")) {
            (Some(username), Some(dataset)) => Some(
                EffectiveIdentity::new(username)
                    .roles(
                        var("PBI_ROLES")
                            .unwrap_or_default()
                            .split(',')
                            .filter(|r| !r.is_empty()),
                    )
                    .dataset(DatasetId::parse(&dataset)?),
            ),
            _ => None,
        };
        Ok(Self {
            cloud: Cloud::Public,
            tenant: TenantId::parse(&required("AZURE_TENANT_ID")?)?,
            client_id: ClientId::parse(&required("AZURE_CLIENT_ID")?)?,
            client_secret: ClientSecret::new(required("AZURE_CLIENT_SECRET")?),
            workspace: WorkspaceId::parse(&required("PBI_WORKSPACE_ID")?)?,
            report: ReportId::parse(&required("PBI_REPORT_ID")?)?,
            dashboard: var("PBI_DASHBOARD_ID")
                .map(|id| DashboardId::parse(&id))
                .transpose()?,
            tile: var("PBI_TILE_ID").map(|id| TileId::parse(&id)).transpose()?,
            identity,
            emulator: None,
        })
    }

    /// The emulator's fixture: its principal, its report over the dataset that requires
    /// an identity with roles, its dashboard and tile.
    fn emulator(embed_base: Option<String>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let builder = Emulator::builder();
        let builder = match embed_base {
            Some(base) => builder.embed_base(base),
            None => builder,
        };
        let emulator = builder.start()?;
        let ids = emulator.ids();
        let base = emulator.base_url();
        Ok(Self {
            cloud: Cloud::Public.with_api_base(&base)?.with_authority_host(&base)?,
            tenant: TenantId::parse(&ids.tenant)?,
            client_id: ClientId::parse(&ids.client_id)?,
            client_secret: ClientSecret::new(ids.client_secret),
            workspace: WorkspaceId::parse(&ids.workspace)?,
            report: ReportId::parse(&ids.rls_report)?,
            dashboard: Some(DashboardId::parse(&ids.dashboard)?),
            tile: Some(TileId::parse(&ids.tile)?),
            identity: Some(
                EffectiveIdentity::new("john@contoso.com")
                    .role(ids.rls_role)
                    .dataset(DatasetId::parse(&ids.rls_dataset)?),
            ),
            emulator: Some(emulator),
        })
    }

    /// `emulator at http://...` or `Power BI (public cloud)`.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.emulator {
            Some(e) => format!("the local emulator at {}", e.base_url()),
            None => format!("Power BI ({} cloud)", self.cloud.name()),
        }
    }

    /// The report's embed URL in the Power BI app, for a named cloud.
    #[must_use]
    pub fn embed_url(&self) -> Option<String> {
        self.cloud.app_host().map(|host| {
            format!(
                "{host}/reportEmbed?reportId={}&groupId={}",
                self.report, self.workspace
            )
        })
    }
}
