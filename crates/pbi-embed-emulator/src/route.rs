//! Which endpoint a request is for, read from its method and path alone.

use http::Method;

/// An endpoint of the emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Route {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    EntraToken,
    /// `POST /v1.0/myorg/groups/{groupId}/reports/{reportId}/GenerateToken`.
    ReportsGenerateTokenInGroup,
    /// `POST /v1.0/myorg/groups/{groupId}/reports/GenerateToken`.
    ReportsGenerateTokenForCreateInGroup,
    /// `POST /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}/GenerateToken`.
    DashboardsGenerateTokenInGroup,
    /// `POST /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}/tiles/{tileId}/GenerateToken`.
    TilesGenerateTokenInGroup,
    /// `POST /v1.0/myorg/groups/{groupId}/datasets/{datasetId}/GenerateToken`.
    DatasetsGenerateTokenInGroup,
    /// `POST /v1.0/myorg/GenerateToken`.
    EmbedTokenGenerateToken,
    /// `GET /v1.0/myorg/groups/{groupId}/reports/{reportId}`.
    ReportsGetReportInGroup,
    /// `GET /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}`.
    DashboardsGetDashboardInGroup,
    /// `GET /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}/tiles/{tileId}`.
    DashboardsGetTileInGroup,
    /// `GET /v1.0/myorg/groups/{groupId}/datasets/{datasetId}`.
    DatasetsGetDatasetInGroup,
    /// `GET /v1.0/myorg/groups/{groupId}/reports`.
    ReportsGetReportsInGroup,
    /// `GET /v1.0/myorg/groups/{groupId}/reports/{reportId}/pages`.
    ReportsGetPagesInGroup,
    /// `GET /v1.0/myorg/groups/{groupId}/dashboards`.
    DashboardsGetDashboardsInGroup,
    /// `GET /v1.0/myorg/groups/{groupId}/dashboards/{dashboardId}/tiles`.
    DashboardsGetTilesInGroup,
    /// `GET /v1.0/myorg/groups/{groupId}/datasets`.
    DatasetsGetDatasetsInGroup,
    /// `GET /{tenant}/v2.0/.well-known/openid-configuration`: OpenID Connect discovery.
    OpenIdConfiguration,
    /// `GET /{tenant}/discovery/v2.0/keys`: the keys that sign access tokens.
    Jwks,
    /// `GET /common/discovery/instance`: MSAL's instance discovery.
    InstanceDiscovery,
    /// `GET /msi/token`: App Service's managed-identity endpoint.
    ManagedIdentityAppService,
    /// `GET /metadata/identity/oauth2/token`: the instance metadata service's.
    ManagedIdentityImds,
    /// `GET /reportEmbed`, `/rdlEmbed`, `/qnaEmbed`, `/dashboardEmbed`, `/embed`: the
    /// stand-in embed page.
    EmbedPage,
    /// `/_emulator/...`: control and inspection.
    Control,
    /// Anything else.
    Unknown,
}

impl Route {
    /// Every route, in a stable order.
    pub const ALL: [Self; 24] = [
        Self::EntraToken,
        Self::ReportsGenerateTokenInGroup,
        Self::ReportsGenerateTokenForCreateInGroup,
        Self::DashboardsGenerateTokenInGroup,
        Self::TilesGenerateTokenInGroup,
        Self::DatasetsGenerateTokenInGroup,
        Self::EmbedTokenGenerateToken,
        Self::ReportsGetReportInGroup,
        Self::DashboardsGetDashboardInGroup,
        Self::DashboardsGetTileInGroup,
        Self::DatasetsGetDatasetInGroup,
        Self::ReportsGetReportsInGroup,
        Self::ReportsGetPagesInGroup,
        Self::DashboardsGetDashboardsInGroup,
        Self::DashboardsGetTilesInGroup,
        Self::DatasetsGetDatasetsInGroup,
        Self::OpenIdConfiguration,
        Self::Jwks,
        Self::InstanceDiscovery,
        Self::ManagedIdentityAppService,
        Self::ManagedIdentityImds,
        Self::EmbedPage,
        Self::Control,
        Self::Unknown,
    ];

    /// The REST operation id (or a name for the emulator's own routes).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::EntraToken => "Entra_Token",
            Self::ReportsGenerateTokenInGroup => "Reports_GenerateTokenInGroup",
            Self::ReportsGenerateTokenForCreateInGroup => "Reports_GenerateTokenForCreateInGroup",
            Self::DashboardsGenerateTokenInGroup => "Dashboards_GenerateTokenInGroup",
            Self::TilesGenerateTokenInGroup => "Tiles_GenerateTokenInGroup",
            Self::DatasetsGenerateTokenInGroup => "Datasets_GenerateTokenInGroup",
            Self::EmbedTokenGenerateToken => "EmbedToken_GenerateToken",
            Self::ReportsGetReportInGroup => "Reports_GetReportInGroup",
            Self::DashboardsGetDashboardInGroup => "Dashboards_GetDashboardInGroup",
            Self::DashboardsGetTileInGroup => "Dashboards_GetTileInGroup",
            Self::DatasetsGetDatasetInGroup => "Datasets_GetDatasetInGroup",
            Self::ReportsGetReportsInGroup => "Reports_GetReportsInGroup",
            Self::ReportsGetPagesInGroup => "Reports_GetPagesInGroup",
            Self::DashboardsGetDashboardsInGroup => "Dashboards_GetDashboardsInGroup",
            Self::DashboardsGetTilesInGroup => "Dashboards_GetTilesInGroup",
            Self::DatasetsGetDatasetsInGroup => "Datasets_GetDatasetsInGroup",
            Self::OpenIdConfiguration => "Entra_OpenIdConfiguration",
            Self::Jwks => "Entra_Keys",
            Self::InstanceDiscovery => "Entra_InstanceDiscovery",
            Self::ManagedIdentityAppService => "ManagedIdentity_AppService",
            Self::ManagedIdentityImds => "ManagedIdentity_Imds",
            Self::EmbedPage => "Emulator_EmbedPage",
            Self::Control => "Emulator_Control",
            Self::Unknown => "Unknown",
        }
    }

    /// Whether this is one of the six GenerateToken routes.
    #[must_use]
    pub fn is_generate_token(self) -> bool {
        matches!(
            self,
            Self::ReportsGenerateTokenInGroup
                | Self::ReportsGenerateTokenForCreateInGroup
                | Self::DashboardsGenerateTokenInGroup
                | Self::TilesGenerateTokenInGroup
                | Self::DatasetsGenerateTokenInGroup
                | Self::EmbedTokenGenerateToken
        )
    }

    /// Whether this is one of the nine metadata reads (an item or a list).
    #[must_use]
    pub fn is_metadata(self) -> bool {
        matches!(
            self,
            Self::ReportsGetReportInGroup
                | Self::DashboardsGetDashboardInGroup
                | Self::DashboardsGetTileInGroup
                | Self::DatasetsGetDatasetInGroup
                | Self::ReportsGetReportsInGroup
                | Self::ReportsGetPagesInGroup
                | Self::DashboardsGetDashboardsInGroup
                | Self::DashboardsGetTilesInGroup
                | Self::DatasetsGetDatasetsInGroup
        )
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(Self::ALL.len() - 1)
    }
}

/// A classified request: the route and the ids in its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    pub(crate) route: Route,
    /// Path parameters in order: tenant for Entra; group, item, tile for Power BI.
    pub(crate) params: Vec<&'a str>,
}

/// Classifies a request. Path matching is case-insensitive for the fixed segments, as
/// Power BI's is.
pub(crate) fn classify<'a>(method: &Method, path: &'a str) -> Target<'a> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let eq = |s: &str, want: &str| s.eq_ignore_ascii_case(want);
    let post = *method == Method::POST;
    let get = *method == Method::GET;
    let (route, params) = match segments.as_slice() {
        ["_emulator", ..] => (Route::Control, vec![]),
        [page]
            if get
                && [
                    "reportEmbed",
                    "dashboardEmbed",
                    "embed",
                    "tileEmbed",
                    "rdlEmbed",
                    "qnaEmbed",
                ]
                .iter()
                .any(|p| eq(page, p)) =>
        {
            (Route::EmbedPage, vec![*page])
        }
        [v, m, gr, group, rest @ ..] if get && eq(v, "v1.0") && eq(m, "myorg") && eq(gr, "groups") => {
            match rest {
                [r] if eq(r, "reports") => (Route::ReportsGetReportsInGroup, vec![*group]),
                [d] if eq(d, "dashboards") => (Route::DashboardsGetDashboardsInGroup, vec![*group]),
                [d] if eq(d, "datasets") => (Route::DatasetsGetDatasetsInGroup, vec![*group]),
                [r, report, p] if eq(r, "reports") && eq(p, "pages") => {
                    (Route::ReportsGetPagesInGroup, vec![*group, *report])
                }
                [d, dash, t] if eq(d, "dashboards") && eq(t, "tiles") => {
                    (Route::DashboardsGetTilesInGroup, vec![*group, *dash])
                }
                [r, report] if eq(r, "reports") => (Route::ReportsGetReportInGroup, vec![*group, *report]),
                [d, dash] if eq(d, "dashboards") => {
                    (Route::DashboardsGetDashboardInGroup, vec![*group, *dash])
                }
                [d, dash, t, tile] if eq(d, "dashboards") && eq(t, "tiles") => {
                    (Route::DashboardsGetTileInGroup, vec![*group, *dash, *tile])
                }
                [d, dataset] if eq(d, "datasets") => {
                    (Route::DatasetsGetDatasetInGroup, vec![*group, *dataset])
                }
                _ => (Route::Unknown, vec![]),
            }
        }
        [m, t] if get && eq(m, "msi") && eq(t, "token") => (Route::ManagedIdentityAppService, vec![]),
        [m, i, o, t]
            if get && eq(m, "metadata") && eq(i, "identity") && eq(o, "oauth2") && eq(t, "token") =>
        {
            (Route::ManagedIdentityImds, vec![])
        }
        [c, d, i] if get && eq(c, "common") && eq(d, "discovery") && eq(i, "instance") => {
            (Route::InstanceDiscovery, vec![])
        }
        [tenant, v, w, o]
            if get && eq(v, "v2.0") && eq(w, ".well-known") && eq(o, "openid-configuration") =>
        {
            (Route::OpenIdConfiguration, vec![*tenant])
        }
        [tenant, d, v, k] if get && eq(d, "discovery") && eq(v, "v2.0") && eq(k, "keys") => {
            (Route::Jwks, vec![*tenant])
        }
        [tenant, d, k] if get && eq(d, "discovery") && eq(k, "keys") => (Route::Jwks, vec![*tenant]),
        [tenant, o, v, t] if post && eq(o, "oauth2") && eq(v, "v2.0") && eq(t, "token") => {
            (Route::EntraToken, vec![*tenant])
        }
        [v, m, g] if post && eq(v, "v1.0") && eq(m, "myorg") && eq(g, "GenerateToken") => {
            (Route::EmbedTokenGenerateToken, vec![])
        }
        [v, m, gr, group, rest @ ..] if post && eq(v, "v1.0") && eq(m, "myorg") && eq(gr, "groups") => {
            match rest {
                [r, report, g]
                    if eq(r, "reports") && eq(g, "GenerateToken") && !eq(report, "GenerateToken") =>
                {
                    (Route::ReportsGenerateTokenInGroup, vec![*group, *report])
                }
                [r, g] if eq(r, "reports") && eq(g, "GenerateToken") => {
                    (Route::ReportsGenerateTokenForCreateInGroup, vec![*group])
                }
                [d, dash, g] if eq(d, "dashboards") && eq(g, "GenerateToken") => {
                    (Route::DashboardsGenerateTokenInGroup, vec![*group, *dash])
                }
                [d, dash, t, tile, g] if eq(d, "dashboards") && eq(t, "tiles") && eq(g, "GenerateToken") => {
                    (Route::TilesGenerateTokenInGroup, vec![*group, *dash, *tile])
                }
                [d, dataset, g] if eq(d, "datasets") && eq(g, "GenerateToken") => {
                    (Route::DatasetsGenerateTokenInGroup, vec![*group, *dataset])
                }
                _ => (Route::Unknown, vec![]),
            }
        }
        _ => (Route::Unknown, vec![]),
    };
    Target { route, params }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_route() {
        let post = Method::POST;
        let cases = [
            ("/t/oauth2/v2.0/token", Route::EntraToken),
            ("/v1.0/myorg/GenerateToken", Route::EmbedTokenGenerateToken),
            (
                "/v1.0/myorg/groups/g/reports/r/GenerateToken",
                Route::ReportsGenerateTokenInGroup,
            ),
            (
                "/v1.0/myorg/groups/g/reports/GenerateToken",
                Route::ReportsGenerateTokenForCreateInGroup,
            ),
            (
                "/v1.0/myorg/groups/g/dashboards/d/GenerateToken",
                Route::DashboardsGenerateTokenInGroup,
            ),
            (
                "/v1.0/myorg/groups/g/dashboards/d/tiles/t/GenerateToken",
                Route::TilesGenerateTokenInGroup,
            ),
            (
                "/v1.0/myorg/groups/g/datasets/d/GenerateToken",
                Route::DatasetsGenerateTokenInGroup,
            ),
            ("/v1.0/myorg/reports/r/GenerateToken", Route::Unknown),
            ("/_emulator/stats", Route::Control),
        ];
        let get = Method::GET;
        for (path, route) in [
            (
                "/t/v2.0/.well-known/openid-configuration",
                Route::OpenIdConfiguration,
            ),
            (
                "/common/v2.0/.well-known/openid-configuration",
                Route::OpenIdConfiguration,
            ),
            ("/t/discovery/v2.0/keys", Route::Jwks),
            ("/t/discovery/keys", Route::Jwks),
            ("/common/discovery/instance", Route::InstanceDiscovery),
            ("/t/.well-known/openid-configuration", Route::Unknown),
            ("/v1.0/myorg/groups/g/reports", Route::ReportsGetReportsInGroup),
            (
                "/v1.0/myorg/groups/g/reports/r/pages",
                Route::ReportsGetPagesInGroup,
            ),
            (
                "/v1.0/myorg/groups/g/dashboards",
                Route::DashboardsGetDashboardsInGroup,
            ),
            (
                "/v1.0/myorg/groups/g/dashboards/d/tiles",
                Route::DashboardsGetTilesInGroup,
            ),
            ("/v1.0/myorg/groups/g/datasets", Route::DatasetsGetDatasetsInGroup),
            ("/v1.0/myorg/groups/g/reports/r", Route::ReportsGetReportInGroup),
            ("/rdlEmbed", Route::EmbedPage),
            ("/qnaEmbed", Route::EmbedPage),
            ("/msi/token", Route::ManagedIdentityAppService),
            ("/metadata/identity/oauth2/token", Route::ManagedIdentityImds),
        ] {
            assert_eq!(classify(&get, path).route, route, "{path}");
        }
        for (path, route) in cases {
            assert_eq!(classify(&post, path).route, route, "{path}");
        }
        assert_eq!(
            classify(&Method::GET, "/v1.0/myorg/GenerateToken").route,
            Route::Unknown
        );
        assert_eq!(
            classify(&post, "/v1.0/myorg/groups/g/dashboards/d/tiles/t/generatetoken").params,
            ["g", "d", "t"]
        );
    }
}
