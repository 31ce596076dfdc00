//! What a request asks to embed ([`Target`], from the route and query), whether the
//! caller's customer may embed it (denied by default), and the [`EmbedRequest`] that
//! follows: the customer's workspace and profile, the caller's identity, the customer's
//! lifetime and edit rights.

use pbi_embed_reqwest::{DashboardId, DatasetId, EffectiveIdentity, EmbedRequest, QnaMode, ReportId, TileId};

use crate::caller::{Caller, Refusal};
use crate::config::{Customer, IdentityRule, Item};

/// The most reports one request may embed together.
pub(crate) const MAX_REPORTS: usize = 20;

/// What a request asks to embed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Report {
        report: ReportId,
        page: Option<String>,
    },
    Paginated(ReportId),
    Dashboard(DashboardId),
    Tile {
        dashboard: DashboardId,
        tile: TileId,
    },
    Visual {
        report: ReportId,
        page: String,
        visual: String,
    },
    Qna {
        dataset: DatasetId,
        question: Option<String>,
    },
    Create(DatasetId),
    Reports(Vec<ReportId>),
}

/// A request the broker cannot read (400): the field and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadRequest {
    pub(crate) field: String,
    pub(crate) message: String,
}

fn bad(field: &str, message: impl Into<String>) -> BadRequest {
    BadRequest {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The query's parameters, each at most once.
pub(crate) type Params = Vec<(String, String)>;

fn take(params: &mut Params, name: &str) -> Option<String> {
    let at = params.iter().position(|(n, _)| n == name)?;
    Some(params.remove(at).1)
}

/// A page or visual name, or a question: 1 to `max` characters, no control characters.
fn text(field: &str, value: String, max: usize) -> Result<String, BadRequest> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(bad(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(value)
}

impl Target {
    /// The target `kind`/`id` with the query's `params` (those it takes are removed;
    /// any left over are the caller's to refuse).
    pub(crate) fn parse(kind: &str, id: &str, params: &mut Params) -> Result<Self, BadRequest> {
        let report_id = || ReportId::parse(id).map_err(|e| bad("id", e.to_string()));
        Ok(match kind {
            "report" => Self::Report {
                report: report_id()?,
                page: take(params, "page").map(|p| text("page", p, 256)).transpose()?,
            },
            "paginated" => Self::Paginated(report_id()?),
            "dashboard" => Self::Dashboard(DashboardId::parse(id).map_err(|e| bad("id", e.to_string()))?),
            "tile" => {
                let dashboard =
                    take(params, "dashboard").ok_or_else(|| bad("dashboard", "is required for a tile"))?;
                Self::Tile {
                    dashboard: DashboardId::parse(&dashboard).map_err(|e| bad("dashboard", e.to_string()))?,
                    tile: TileId::parse(id).map_err(|e| bad("id", e.to_string()))?,
                }
            }
            "visual" => Self::Visual {
                report: report_id()?,
                page: text(
                    "page",
                    take(params, "page").ok_or_else(|| bad("page", "is required for a visual"))?,
                    256,
                )?,
                visual: text(
                    "visual",
                    take(params, "visual").ok_or_else(|| bad("visual", "is required for a visual"))?,
                    256,
                )?,
            },
            "qna" => Self::Qna {
                dataset: DatasetId::parse(id).map_err(|e| bad("id", e.to_string()))?,
                question: take(params, "question")
                    .map(|q| text("question", q, 1000))
                    .transpose()?,
            },
            "create" => Self::Create(DatasetId::parse(id).map_err(|e| bad("id", e.to_string()))?),
            "reports" => {
                let ids: Vec<&str> = id.split(',').collect();
                if ids.len() > MAX_REPORTS {
                    return Err(bad("id", format!("more than {MAX_REPORTS} reports")));
                }
                let mut reports = Vec::new();
                for id in ids {
                    let report = ReportId::parse(id).map_err(|e| bad("id", e.to_string()))?;
                    if !reports.contains(&report) {
                        reports.push(report);
                    }
                }
                Self::Reports(reports)
            }
            other => {
                return Err(bad(
                    "type",
                    format!(
                        "{other:?} is not report, paginated, dashboard, tile, visual, qna, create or reports"
                    ),
                ));
            }
        })
    }

    /// The route's name, for metrics and logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Report { .. } => "report",
            Self::Paginated(_) => "paginated",
            Self::Dashboard(_) => "dashboard",
            Self::Tile { .. } => "tile",
            Self::Visual { .. } => "visual",
            Self::Qna { .. } => "qna",
            Self::Create(_) => "create",
            Self::Reports(_) => "reports",
        }
    }

    /// The configured items it needs allowed.
    fn items(&self) -> Vec<Item> {
        match self {
            Self::Report { report, .. } | Self::Paginated(report) | Self::Visual { report, .. } => {
                vec![Item::Report(report.clone())]
            }
            Self::Dashboard(dashboard) | Self::Tile { dashboard, .. } => {
                vec![Item::Dashboard(dashboard.clone())]
            }
            Self::Qna { dataset, .. } | Self::Create(dataset) => vec![Item::Dataset(dataset.clone())],
            Self::Reports(reports) => reports.iter().cloned().map(Item::Report).collect(),
        }
    }

    /// The request `caller` may make for this target as `customer`: refused (403) unless
    /// the customer may embed every item it names.
    pub(crate) fn authorize(&self, customer: &Customer, caller: &Caller) -> Result<EmbedRequest, Refusal> {
        for item in self.items() {
            if !customer.items.allows(&item) {
                return Err(Refusal::Forbidden(format!(
                    "customer {} may not embed {}",
                    customer.id,
                    describe(&item)
                )));
            }
        }
        if matches!(self, Self::Create(_)) && !customer.editable {
            return Err(Refusal::Forbidden(format!(
                "customer {} may not create reports (editable is off)",
                customer.id
            )));
        }
        let workspace = customer.workspace.clone();
        let mut request = match self.clone() {
            Self::Report { report, page } => {
                let request = EmbedRequest::report(workspace, report).editable(customer.editable);
                match page {
                    Some(page) => request.page(page),
                    None => request,
                }
            }
            Self::Paginated(report) => EmbedRequest::paginated(workspace, report),
            Self::Dashboard(dashboard) => EmbedRequest::dashboard(workspace, dashboard),
            Self::Tile { dashboard, tile } => EmbedRequest::tile(workspace, dashboard, tile),
            Self::Visual { report, page, visual } => EmbedRequest::visual(workspace, report, page, visual),
            Self::Qna { dataset, question } => match question {
                Some(question) => EmbedRequest::qna(workspace, dataset)
                    .question(question)
                    .qna_mode(QnaMode::ResultOnly),
                None => EmbedRequest::qna(workspace, dataset),
            },
            Self::Create(dataset) => EmbedRequest::create(workspace, dataset),
            Self::Reports(reports) => EmbedRequest::reports(workspace, reports).editable(customer.editable),
        };
        if customer.identity != IdentityRule::None {
            let username = caller.username.clone().ok_or_else(|| {
                Refusal::Forbidden(format!(
                    "customer {} embeds with the user's identity, and the caller's credentials name no user",
                    customer.id
                ))
            })?;
            let roles = if caller.roles.is_empty() {
                customer.roles.clone()
            } else {
                caller.roles.clone()
            };
            request = request.identity(
                roles
                    .into_iter()
                    .fold(EffectiveIdentity::new(username), EffectiveIdentity::role),
            );
            if customer.identity == IdentityRule::WhereRequired {
                request = request.identity_where_required();
            }
        }
        if let Some(profile) = &customer.profile {
            request = request.profile(profile.clone());
        }
        if let Some(minutes) = customer.lifetime_minutes {
            request = request.lifetime_in_minutes(minutes);
        }
        Ok(request)
    }
}

fn describe(item: &Item) -> String {
    match item {
        Item::Report(id) => format!("report {id}"),
        Item::Dashboard(id) => format!("dashboard {id}"),
        Item::Dataset(id) => format!("dataset {id}"),
    }
}

/// What warm-up reads for `customer`: each listed item, as its profile (identity-free:
/// warm-up reads metadata only).
pub(crate) fn warm_up_requests(customer: &Customer) -> Vec<EmbedRequest> {
    let crate::config::Items::Listed(items) = &customer.items else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let workspace = customer.workspace.clone();
            let request = match item {
                Item::Report(id) => EmbedRequest::report(workspace, id.clone()),
                Item::Dashboard(id) => EmbedRequest::dashboard(workspace, id.clone()),
                Item::Dataset(id) => EmbedRequest::qna(workspace, id.clone()),
            };
            match &customer.profile {
                Some(profile) => request.profile(profile.clone()),
                None => request,
            }
        })
        .collect()
}
