//! `pbi-embed embed ...`: the configuration `powerbi.embed` takes, as JSON.

use std::time::Duration;

use pbi_embed_ureq::{DashboardId, DatasetId, EmbedRequest, QnaMode, ReportId, TileId, WorkspaceId};

use crate::args::{EmbedArgs, EmbedCommand, EmbedCommon, Global, TokenOutput};
use crate::failure::Failure;
use crate::token::{client, identities};

/// Runs an embed subcommand: prints the configuration on one line (or, with `--output
/// token`, its bare embed token).
pub(crate) fn run(global: &Global, args: EmbedArgs) -> Result<(), Failure> {
    let (request, common) = request(args.command)?;
    let mut request = request
        .identities(identities(&common.identity, Duration::from_secs(global.timeout))?)
        .rls_preflight(!common.no_preflight);
    if let Some(minutes) = common.lifetime_minutes {
        request = request.lifetime_in_minutes(minutes);
    }
    let (client, fixed_bearer) = client(global)?;
    let config = client
        .embed_config(&request)
        .map_err(|error| match fixed_bearer {
            true => Failure::WithFixedBearer(error),
            false => Failure::Call(error),
        })?;
    match args.output {
        TokenOutput::Json => {
            let json = serde_json::to_string(&config)
                .map_err(|e| Failure::Usage(format!("cannot print the configuration: {e}")))?;
            println!("{json}");
        }
        TokenOutput::Token => println!("{}", config.access_token.secret()),
    }
    Ok(())
}

/// The request the arguments describe (ids checked before anything is sent).
fn request(command: EmbedCommand) -> Result<(EmbedRequest, EmbedCommon), Failure> {
    let workspace = |id: &str| WorkspaceId::parse(id);
    Ok(match command {
        EmbedCommand::Report {
            report,
            page,
            edit,
            common,
        } => {
            let mut request =
                EmbedRequest::report(workspace(&report.workspace)?, ReportId::parse(&report.report)?)
                    .editable(edit);
            if let Some(page) = page {
                request = request.page(page);
            }
            (request, common)
        }
        EmbedCommand::Paginated { report, common } => (
            EmbedRequest::paginated(workspace(&report.workspace)?, ReportId::parse(&report.report)?),
            common,
        ),
        EmbedCommand::Dashboard {
            workspace: ws,
            dashboard,
            common,
        } => (
            EmbedRequest::dashboard(workspace(&ws)?, DashboardId::parse(&dashboard)?),
            common,
        ),
        EmbedCommand::Tile {
            workspace: ws,
            dashboard,
            tile,
            common,
        } => (
            EmbedRequest::tile(
                workspace(&ws)?,
                DashboardId::parse(&dashboard)?,
                TileId::parse(&tile)?,
            ),
            common,
        ),
        EmbedCommand::Qna {
            workspace: ws,
            dataset,
            question,
            result_only,
            common,
        } => {
            let mut request = EmbedRequest::qna(workspace(&ws)?, DatasetId::parse(&dataset)?);
            if let Some(question) = question {
                request = request.question(question);
            }
            if result_only {
                request = request.qna_mode(QnaMode::ResultOnly);
            }
            (request, common)
        }
        EmbedCommand::Visual {
            report,
            page,
            visual,
            common,
        } => (
            EmbedRequest::visual(
                workspace(&report.workspace)?,
                ReportId::parse(&report.report)?,
                page,
                visual,
            ),
            common,
        ),
        EmbedCommand::Create {
            workspace: ws,
            dataset,
            common,
        } => (
            EmbedRequest::create(workspace(&ws)?, DatasetId::parse(&dataset)?),
            common,
        ),
    })
}
