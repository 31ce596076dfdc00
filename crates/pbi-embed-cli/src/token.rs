//! `pbi-embed token ...`: build the request from the arguments, mint, print.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pbi_embed_ureq::ExchangeError;
use pbi_embed_ureq::{
    AccessToken, Client, ClientBuilder, Cloud, CreateReportToken, DashboardId, DashboardToken, DatasetId,
    DatasetToken, EffectiveIdentity, EmbedToken, IdentityBlob, MultiResourceToken, ProfileId, ReportId,
    ReportToken, TileId, TileToken, WorkspaceId, XmlaPermissions,
};
use pbi_embed_ureq::{ApiRequest as _, GetReportInGroup, MAX_REQUEST_BYTES};
use serde_json::json;

use crate::args::{
    AccessLevel, CloudName, CredentialKind, Global, IdentityArgs, TokenArgs, TokenCommand, TokenOutput,
};
use crate::failure::Failure;
use crate::files;

/// Runs a token subcommand.
pub(crate) fn run(global: &Global, args: TokenArgs) -> Result<(), Failure> {
    let (client, fixed_bearer) = client(global)?;
    let within = Duration::from_secs(global.timeout);
    let token = mint(&client, args.command, within).map_err(|failure| match failure {
        Failure::Call(error) if fixed_bearer => Failure::WithFixedBearer(error),
        other => other,
    })?;
    match args.output {
        TokenOutput::Json => {
            let output = json!({
                "token": token.token.secret(),
                "tokenId": token.token_id,
                "expiration": token.expiration_rfc3339(),
            });
            println!("{output}");
        }
        TokenOutput::Token => println!("{}", token.token.secret()),
    }
    Ok(())
}

fn mint(client: &Client, command: TokenCommand, within: Duration) -> Result<EmbedToken, Failure> {
    Ok(match command {
        TokenCommand::Report {
            workspace,
            report,
            access_level,
            allow_save_as,
            identity,
            lifetime_minutes,
        } => {
            let (workspace, report) = (WorkspaceId::parse(&workspace)?, ReportId::parse(&report)?);
            let mut identities = identities(&identity, within)?;
            if identities.iter().any(|i| i.datasets.is_empty()) {
                // Everything that can be checked here is, before the report is read: the
                // identities as they will be sent, bound to some dataset.
                let mut bound = identities.clone();
                for identity in bound.iter_mut().filter(|i| i.datasets.is_empty()) {
                    identity.datasets.push(DatasetId::parse(report.as_str())?);
                }
                ReportToken::view(workspace.clone(), report.clone())
                    .identities(bound)
                    .validate()?;
                // As the library's embed configurations do: an identity that names no
                // dataset is for the report's own dataset.
                let metadata = client.execute(&GetReportInGroup::new(workspace.clone(), report.clone()))?;
                if let Some(dataset) = metadata.dataset_id {
                    for identity in identities.iter_mut().filter(|i| i.datasets.is_empty()) {
                        identity.datasets.push(dataset.clone());
                    }
                }
            }
            let mut op = match access_level {
                AccessLevel::View => ReportToken::view(workspace, report),
                AccessLevel::Edit => ReportToken::edit(workspace, report),
            };
            if allow_save_as {
                op = op.allow_save_as(true);
            }
            let op = op.identities(identities);
            client.embed_token(&with_lifetime(
                op,
                lifetime_minutes,
                ReportToken::lifetime_in_minutes,
            ))?
        }
        TokenCommand::Create {
            workspace,
            dataset,
            allow_save_as,
            identity,
            lifetime_minutes,
        } => {
            let mut op = CreateReportToken::new(WorkspaceId::parse(&workspace)?, DatasetId::parse(&dataset)?);
            if allow_save_as {
                op = op.allow_save_as(true);
            }
            let op = op.identities(identities(&identity, within)?);
            client.embed_token(&with_lifetime(
                op,
                lifetime_minutes,
                CreateReportToken::lifetime_in_minutes,
            ))?
        }
        TokenCommand::Dashboard {
            workspace,
            dashboard,
            identity,
            lifetime_minutes,
        } => {
            let op = DashboardToken::new(WorkspaceId::parse(&workspace)?, DashboardId::parse(&dashboard)?)
                .identities(identities(&identity, within)?);
            client.embed_token(&with_lifetime(
                op,
                lifetime_minutes,
                DashboardToken::lifetime_in_minutes,
            ))?
        }
        TokenCommand::Tile {
            workspace,
            dashboard,
            tile,
            identity,
            lifetime_minutes,
        } => {
            let op = TileToken::new(
                WorkspaceId::parse(&workspace)?,
                DashboardId::parse(&dashboard)?,
                TileId::parse(&tile)?,
            )
            .identities(identities(&identity, within)?);
            client.embed_token(&with_lifetime(
                op,
                lifetime_minutes,
                TileToken::lifetime_in_minutes,
            ))?
        }
        TokenCommand::Dataset {
            workspace,
            dataset,
            identity,
            lifetime_minutes,
        } => {
            let op = DatasetToken::new(WorkspaceId::parse(&workspace)?, DatasetId::parse(&dataset)?)
                .identities(identities(&identity, within)?);
            client.embed_token(&with_lifetime(
                op,
                lifetime_minutes,
                DatasetToken::lifetime_in_minutes,
            ))?
        }
        TokenCommand::Multi {
            reports,
            datasets,
            target_workspaces,
            identity,
            lifetime_minutes,
        } => {
            let mut op = MultiResourceToken::new();
            for report in &reports {
                op = match report.rsplit_once(':') {
                    Some((id, "edit")) => op.editable_report(ReportId::parse(id)?),
                    Some((_, suffix)) => {
                        return Err(Failure::Usage(format!(
                            "--report {report}: unknown suffix :{suffix}; use :edit"
                        )));
                    }
                    None => op.report(ReportId::parse(report)?),
                };
            }
            for dataset in &datasets {
                op = match dataset.rsplit_once(':') {
                    Some((id, "xmla-readonly")) => {
                        op.dataset_with_xmla(DatasetId::parse(id)?, XmlaPermissions::ReadOnly)
                    }
                    Some((_, suffix)) => {
                        return Err(Failure::Usage(format!(
                            "--dataset {dataset}: unknown suffix :{suffix}; use :xmla-readonly"
                        )));
                    }
                    None => op.dataset(DatasetId::parse(dataset)?),
                };
            }
            for workspace in &target_workspaces {
                op = op.target_workspace(WorkspaceId::parse(workspace)?);
            }
            let op = op.identities(identities(&identity, within)?);
            client.embed_token(&with_lifetime(
                op,
                lifetime_minutes,
                MultiResourceToken::lifetime_in_minutes,
            ))?
        }
    })
}

fn with_lifetime<T>(op: T, minutes: Option<u32>, set: fn(T, u32) -> T) -> T {
    match minutes {
        Some(minutes) => set(op, minutes),
        None => op,
    }
}

/// The identities the arguments describe: none, one, or a file's (read within `within`).
pub(crate) fn identities(args: &IdentityArgs, within: Duration) -> Result<Vec<EffectiveIdentity>, Failure> {
    if let Some(path) = &args.identities {
        let text = read_identities(path, within)?;
        return serde_json::from_str(&text).map_err(|e| {
            Failure::Usage(format!(
                "--identities {}: not a JSON array of identities in Power BI's format: {e}",
                path.display()
            ))
        });
    }
    let blob = match &args.identity_blob_env {
        Some(var) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Some(IdentityBlob::new(value)),
            Ok(_) => {
                return Err(Failure::Usage(format!(
                    "--identity-blob-env {var}: the variable {var} is set but empty"
                )));
            }
            Err(std::env::VarError::NotPresent) => {
                return Err(Failure::Usage(format!(
                    "--identity-blob-env {var}: the variable {var} is not set"
                )));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Failure::Usage(format!(
                    "--identity-blob-env {var}: the variable {var} is not valid UTF-8"
                )));
            }
        },
        None => None,
    };
    let mut identity = match (&args.username, blob) {
        (Some(username), blob) => {
            let identity = EffectiveIdentity::new(username.clone());
            match blob {
                Some(blob) => identity.identity_blob(blob),
                None => identity,
            }
        }
        (None, Some(blob)) => EffectiveIdentity::from_identity_blob(blob),
        (None, None) if args.identity_datasets.is_empty() && args.identity_reports.is_empty() => {
            return Ok(Vec::new());
        }
        (None, None) => {
            return Err(Failure::Usage(
                "--identity-dataset and --identity-report need --username or --identity-blob-env".to_owned(),
            ));
        }
    };
    identity = identity.roles(args.roles.iter().cloned());
    for dataset in &args.identity_datasets {
        identity = identity.dataset(DatasetId::parse(dataset)?);
    }
    for report in &args.identity_reports {
        identity = identity.report(ReportId::parse(report)?);
    }
    if let Some(data) = &args.custom_data {
        identity = identity.custom_data(data.clone());
    }
    Ok(vec![identity])
}

/// Reads an identities file (or standard input for `-`), refusing more than Power BI
/// takes in a whole request body, within `within`.
fn read_identities(path: &Path, within: Duration) -> Result<String, Failure> {
    let usage = |why: String| Failure::Usage(format!("--identities {}: {why}", path.display()));
    let bytes = files::read(path, MAX_REQUEST_BYTES as u64, within).map_err(usage)?;
    String::from_utf8(bytes).map_err(|_| usage("not UTF-8 text".to_owned()))
}

/// The largest CA or certificate file read.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A PEM file's bytes (CA or client certificate), at most [`MAX_CA_FILE_BYTES`], within
/// `within`.
fn read_ca_file(path: &Path, from: &str, within: Duration) -> Result<Vec<u8>, Failure> {
    files::read(path, MAX_CA_FILE_BYTES, within)
        .map_err(|why| Failure::Usage(format!("{from} {}: {why}", path.display())))
}

/// The client the global options and the environment describe, and whether it uses the
/// bearer token from `PBI_ACCESS_TOKEN`. `--timeout` bounds the whole command: sign-in,
/// retries and all.
pub(crate) fn client(global: &Global) -> Result<(Client, bool), Failure> {
    let cloud = match global.cloud {
        CloudName::Public => Cloud::Public,
        CloudName::Usgov => Cloud::UsGov,
        CloudName::Usgovhigh => Cloud::UsGovHigh,
        CloudName::Usgovdod => Cloud::UsGovDod,
        CloudName::China => Cloud::China,
    };
    if global.timeout == 0 {
        return Err(Failure::Usage(
            "--timeout 0: the command needs some time; give a number of seconds above zero".to_owned(),
        ));
    }
    let bound = Duration::from_secs(global.timeout);
    let mut builder = Client::builder().cloud(cloud).deadline(bound).timeout(bound);
    if let Some(url) = &global.api_base {
        builder = builder.api_base(url.clone());
    }
    if let Some(url) = &global.authority_host {
        builder = builder.authority_host(url.clone());
    }
    if let Some(profile) = &global.profile_id {
        builder = builder.profile(ProfileId::parse(profile)?);
    }
    let var = env_var;
    // With the platform verifier, SSL_CERT_FILE is the system store's own setting (it
    // reads it); otherwise it names CAs to trust as well as Mozilla's roots.
    let ca_file = match &global.ca_cert {
        Some(path) => Some((path.clone(), "--ca-cert")),
        None if global.platform_verifier => None,
        None => var("SSL_CERT_FILE")?.map(|path| (PathBuf::from(path), "SSL_CERT_FILE")),
    };
    if let Some((path, from)) = ca_file {
        builder = builder.root_certificates_pem(read_ca_file(&path, from, bound)?);
    }
    builder = builder.platform_verifier(global.platform_verifier);
    let (builder, fixed_bearer) = credential(global.credential, builder)?;
    Ok((builder.embed_token_cache(None).build()?, fixed_bearer))
}

/// The credential `--credential` and the environment choose. `auto`: `PBI_ACCESS_TOKEN`,
/// then what the library's `from_env` chooses (a secret, a certificate file, a workload
/// identity, App Service's managed identity, in that order); a VM's managed identity and
/// the Azure CLI only when `--credential` asks for them.
fn credential(
    kind: CredentialKind,
    builder: ClientBuilder<Client>,
) -> Result<(ClientBuilder<Client>, bool), Failure> {
    let var = env_var;
    let bearer = var("PBI_ACCESS_TOKEN")?;
    let builder = match kind {
        CredentialKind::Auto | CredentialKind::Token if bearer.is_some() => {
            let secret_set = [
                "AZURE_CLIENT_SECRET",
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "AZURE_FEDERATED_TOKEN_FILE",
            ]
            .into_iter()
            .any(|name| matches!(var(name), Ok(Some(_))));
            let message = if secret_set {
                "PBI_ACCESS_TOKEN and AZURE_* are both set: using the bearer token from PBI_ACCESS_TOKEN"
            } else {
                "using the bearer token from PBI_ACCESS_TOKEN"
            };
            tracing::info!(credential = "PBI_ACCESS_TOKEN", "{message}");
            let token = AccessToken::new(bearer.unwrap_or_default());
            return Ok((builder.bearer_token(token), true));
        }
        CredentialKind::Token => {
            return Err(Failure::Usage(
                "--credential token: PBI_ACCESS_TOKEN is not set".to_owned(),
            ));
        }
        CredentialKind::Auto => builder.from_env().map_err(|error| match error.exchange() {
            Some(ExchangeError::InvalidInput { field, .. }) if field == "credential" => Failure::Usage(
                "no credentials: set PBI_ACCESS_TOKEN, or AZURE_TENANT_ID and AZURE_CLIENT_ID with \
                 AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE, or run \
                 where IDENTITY_ENDPOINT and IDENTITY_HEADER name a managed identity (--credential \
                 managed-identity for a VM's, --credential azure-cli for a developer's `az login`)"
                    .to_owned(),
            ),
            _ => Failure::Call(error),
        })?,
        CredentialKind::Secret => builder.service_principal_from_env()?,
        CredentialKind::Certificate => builder.certificate_from_env()?,
        CredentialKind::WorkloadIdentity => builder.workload_identity_from_env()?,
        CredentialKind::ManagedIdentity => builder.managed_identity_from_env()?,
        CredentialKind::AzureCli => builder.azure_cli_from_env()?,
    };
    if let Some(credential) = builder.chosen_credential() {
        tracing::info!(credential = credential.describe(), "signing in");
    }
    Ok((builder, false))
}

/// A variable of the process environment as text: `None` when it is unset or empty, an
/// error naming it (never quoting it) when it is not UTF-8.
fn env_var(name: &'static str) -> Result<Option<String>, Failure> {
    match std::env::var(name) {
        Ok(text) => Ok(Some(text).filter(|text| !text.is_empty())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(ExchangeError::invalid_input(name, "is set but is not valid UTF-8").into())
        }
    }
}
