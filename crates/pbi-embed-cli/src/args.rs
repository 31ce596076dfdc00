//! The command-line interface, as clap parses it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Mint Power BI embed tokens, and run a local Power BI emulator.
///
/// Credentials come from the environment only (arguments show in process lists):
/// PBI_ACCESS_TOKEN (a bearer token); AZURE_TENANT_ID and AZURE_CLIENT_ID with
/// AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE; a
/// managed identity; or the Azure CLI (see --credential). HTTPS_PROXY (or ALL_PROXY) names a proxy,
/// NO_PROXY the hosts that bypass it; SSL_CERT_FILE a CA file to trust (see --ca-cert).
///
/// Exit codes: 0 success; 2 usage or invalid input (nothing was sent); 3 Power BI
/// answered with an error; 4 Entra ID sign-in failed; 5 network failure, time-out, or a
/// response that could not be read.
#[derive(Debug, Parser)]
#[command(name = "pbi-embed", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options for the commands that call Power BI (`token`, `embed`); `--verbose` for all.
#[derive(Debug, Args)]
#[command(next_help_heading = "Client options (token and embed)")]
pub(crate) struct Global {
    /// The Power BI cloud: API base, sign-in host and scope together.
    #[arg(long, global = true, value_enum, default_value = "public")]
    pub(crate) cloud: CloudName,
    /// The API root, like https://api.powerbi.com (the /v1.0/myorg/... paths are appended).
    #[arg(long, global = true, value_name = "URL", env = "PBI_API_BASE")]
    pub(crate) api_base: Option<String>,
    /// The sign-in host, like https://login.microsoftonline.com (/{tenant}/oauth2/v2.0/token is appended).
    #[arg(long, global = true, value_name = "URL", env = "AZURE_AUTHORITY_HOST")]
    pub(crate) authority_host: Option<String>,
    /// Act as this service principal profile (X-PowerBI-Profile-Id).
    #[arg(long, global = true, value_name = "ID")]
    pub(crate) profile_id: Option<String>,
    /// The bound on the whole command, sign-in and retries included, in seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Trust the CA certificates in this PEM file as well as Mozilla's roots (a
    /// TLS-inspecting proxy's, the emulator's). Default: the file SSL_CERT_FILE names
    /// (which, with --platform-verifier, the system trust store reads itself).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Verify servers with the system's trust store instead of Mozilla's roots.
    #[arg(long, global = true)]
    pub(crate) platform_verifier: bool,
    /// How to sign in (credentials always come from the environment).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub(crate) credential: CredentialKind,
    /// Log what happens to stderr (secrets are never logged).
    #[arg(long, short, global = true, help_heading = "Options")]
    pub(crate) verbose: bool,
}

impl Global {
    /// The options above that only `token` and `embed` use, by their argument ids.
    pub(crate) const CLIENT_ONLY: [&'static str; 8] = [
        "cloud",
        "api_base",
        "authority_host",
        "profile_id",
        "timeout",
        "ca_cert",
        "platform_verifier",
        "credential",
    ];
}

/// How the command signs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum CredentialKind {
    /// PBI_ACCESS_TOKEN, then AZURE_CLIENT_SECRET (with AZURE_TENANT_ID, AZURE_CLIENT_ID),
    /// then AZURE_CLIENT_CERTIFICATE_PATH, then AZURE_FEDERATED_TOKEN_FILE, then
    /// IDENTITY_ENDPOINT and IDENTITY_HEADER (App Service's managed identity);
    /// AZURE_AUTHORITY_HOST names the sign-in host.
    Auto,
    /// The bearer token in PBI_ACCESS_TOKEN.
    Token,
    /// The service principal of AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET.
    Secret,
    /// The service principal of AZURE_TENANT_ID and AZURE_CLIENT_ID with the certificate
    /// file AZURE_CLIENT_CERTIFICATE_PATH names: PEM (certificate and RSA key, which may
    /// be encrypted) or PKCS#12/PFX, its password in AZURE_CLIENT_CERTIFICATE_PASSWORD
    /// (AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true sends the chain).
    Certificate,
    /// Workload identity federation: AZURE_TENANT_ID, AZURE_CLIENT_ID and the token in the
    /// file AZURE_FEDERATED_TOKEN_FILE names (read at every sign-in).
    WorkloadIdentity,
    /// The host's managed identity: IDENTITY_ENDPOINT and IDENTITY_HEADER, else the
    /// instance metadata service (AZURE_POD_IDENTITY_AUTHORITY_HOST or 169.254.169.254);
    /// AZURE_CLIENT_ID picks a user-assigned identity.
    ManagedIdentity,
    /// Whoever is signed in to the Azure CLI (`az login`; `az` runs, never through a
    /// shell), in the tenant AZURE_TENANT_ID names if set.
    AzureCli,
}

/// The named clouds.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum CloudName {
    /// Commercial cloud.
    Public,
    /// US Government Community Cloud (GCC).
    Usgov,
    /// US Government Community Cloud High.
    Usgovhigh,
    /// US Department of Defense.
    Usgovdod,
    /// China (21Vianet).
    China,
}

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Mint an embed token; prints {"token", "tokenId", "expiration"} as JSON (or, with
    /// `--output token`, the bare token).
    Token(TokenArgs),
    /// Print the configuration `powerbi.embed(element, config)` takes (embed URL, embed
    /// token, ids), as JSON: the item's metadata, the RLS pre-flight, then the token.
    Embed(EmbedArgs),
    /// Run the local Power BI and Entra ID emulator in the foreground (Ctrl-C stops it).
    #[command(
        after_help = "Example:\n  pbi-embed emulator --listen 127.0.0.1:8080\n\nExample (HTTPS, for clients that trust ca.pem):\n  pbi-embed emulator --tls --tls-ca-out ca.pem"
    )]
    Emulator(EmulatorArgs),
    /// Run the embed-token broker: callers authenticated (bearer JWTs or API keys),
    /// customers kept apart, metrics and health. The sign-in comes from AZURE_*, Redis
    /// from PBI_REDIS_URL and PBI_CACHE_KEY.
    #[command(
        after_help = "Example:\n  pbi-embed serve --config broker.toml\n  pbi-embed serve --config broker.toml --check-config"
    )]
    Serve(ServeArgs),
    /// Print a completion script for a shell to stdout.
    #[command(
        after_help = "Examples:\n  pbi-embed completions bash > ~/.local/share/bash-completion/completions/pbi-embed\n  pbi-embed completions zsh > \"${fpath[1]}/_pbi-embed\"\n  pbi-embed completions fish > ~/.config/fish/completions/pbi-embed.fish"
    )]
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `pbi-embed serve`: the broker's configuration.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The TOML configuration (see the pbi-embed-server README).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// Check the configuration, print a summary and exit (0 when valid, 2 naming the
    /// file, line and field when not).
    #[arg(long)]
    pub(crate) check_config: bool,
}

/// `pbi-embed token`: what to print, and which token.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// What to print: `json` ({"token", "tokenId", "expiration"}) or `token` (the bare
    /// token and a newline, for shell use: TOKEN=$(pbi-embed token ... --output token)).
    #[arg(long, value_enum, default_value = "json", global = true)]
    pub(crate) output: TokenOutput,
    #[command(subcommand)]
    pub(crate) command: TokenCommand,
}

/// How `pbi-embed token` prints what it minted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TokenOutput {
    /// `{"token", "tokenId", "expiration"}` on one line.
    Json,
    /// The bare token.
    Token,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Reports GenerateTokenInGroup: view or edit a report.
    #[command(
        after_help = "Example:\n  pbi-embed token report --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --report 5b218778-e7a5-4d73-8187-f10824047715 \\\n    --username john@contoso.com --role Region --identity-dataset cfafbeb1-8037-4d0c-896e-a46fb27ff229"
    )]
    Report {
        /// The workspace id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The report id.
        #[arg(long, value_name = "ID")]
        report: String,
        /// View only, or view and edit.
        #[arg(long, value_enum, default_value = "view")]
        access_level: AccessLevel,
        /// Let the embedded report be saved as a new report.
        #[arg(long)]
        allow_save_as: bool,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Shorten the token's lifetime to at most this many minutes.
        #[arg(long, value_name = "N")]
        lifetime_minutes: Option<u32>,
    },
    /// Reports GenerateTokenForCreateInGroup: create a report from a dataset.
    #[command(
        after_help = "Example:\n  pbi-embed token create --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 --dataset a8b062ca-5730-468f-9df7-43c2ba76bf5e"
    )]
    Create {
        /// The workspace the report is created in.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The dataset the report is built on.
        #[arg(long, value_name = "ID")]
        dataset: String,
        /// Let the new report be saved as another report too.
        #[arg(long)]
        allow_save_as: bool,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Shorten the token's lifetime to at most this many minutes.
        #[arg(long, value_name = "N")]
        lifetime_minutes: Option<u32>,
    },
    /// Dashboards GenerateTokenInGroup: view a dashboard (several identities allowed).
    #[command(
        after_help = "Example:\n  pbi-embed token dashboard --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --dashboard 69ffaa6c-b36d-4d01-96f5-1ed67c64d4af --identities identities.json"
    )]
    Dashboard {
        /// The workspace id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The dashboard id.
        #[arg(long, value_name = "ID")]
        dashboard: String,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Shorten the token's lifetime to at most this many minutes.
        #[arg(long, value_name = "N")]
        lifetime_minutes: Option<u32>,
    },
    /// Tiles GenerateTokenInGroup: view one tile of a dashboard.
    #[command(
        after_help = "Example:\n  pbi-embed token tile --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --dashboard 69ffaa6c-b36d-4d01-96f5-1ed67c64d4af --tile 4c1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    )]
    Tile {
        /// The workspace id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The dashboard id.
        #[arg(long, value_name = "ID")]
        dashboard: String,
        /// The tile id.
        #[arg(long, value_name = "ID")]
        tile: String,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Shorten the token's lifetime to at most this many minutes.
        #[arg(long, value_name = "N")]
        lifetime_minutes: Option<u32>,
    },
    /// Datasets GenerateTokenInGroup: Q&A over a dataset.
    #[command(
        after_help = "Example:\n  pbi-embed token dataset --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 --dataset a8b062ca-5730-468f-9df7-43c2ba76bf5e"
    )]
    Dataset {
        /// The workspace id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The dataset id.
        #[arg(long, value_name = "ID")]
        dataset: String,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Shorten the token's lifetime to at most this many minutes.
        #[arg(long, value_name = "N")]
        lifetime_minutes: Option<u32>,
    },
    /// Embed Token GenerateToken: one token for several reports and datasets.
    #[command(
        after_help = "Example:\n  pbi-embed token multi --report 5b218778-e7a5-4d73-8187-f10824047715:edit \\\n    --dataset cfafbeb1-8037-4d0c-896e-a46fb27ff229:xmla-readonly \\\n    --username john@contoso.com --role Region --identity-dataset cfafbeb1-8037-4d0c-896e-a46fb27ff229"
    )]
    Multi {
        /// A report to view; append :edit to allow editing. Repeatable.
        #[arg(long = "report", value_name = "ID[:edit]")]
        reports: Vec<String>,
        /// A dataset; append :xmla-readonly for read access to its XMLA endpoint. Repeatable.
        #[arg(long = "dataset", value_name = "ID[:xmla-readonly]")]
        datasets: Vec<String>,
        /// A workspace reports may be saved or created in. Repeatable.
        #[arg(long = "target-workspace", value_name = "ID")]
        target_workspaces: Vec<String>,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Shorten the token's lifetime to at most this many minutes.
        #[arg(long, value_name = "N")]
        lifetime_minutes: Option<u32>,
    },
}

/// `pbi-embed embed`: what to print, and which item.
#[derive(Debug, Args)]
pub(crate) struct EmbedArgs {
    /// What to print: `json` (the configuration, on one line) or `token` (its bare embed
    /// token and a newline).
    #[arg(long, value_enum, default_value = "json", global = true)]
    pub(crate) output: TokenOutput,
    #[command(subcommand)]
    pub(crate) command: EmbedCommand,
}

/// `pbi-embed embed`: which item.
#[derive(Debug, Subcommand)]
pub(crate) enum EmbedCommand {
    /// A report (a paginated one too: its reportType decides the token).
    #[command(
        after_help = "Example:\n  pbi-embed embed report --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --report 5b218778-e7a5-4d73-8187-f10824047715 --username john@contoso.com --role Region"
    )]
    Report {
        #[command(flatten)]
        report: ReportArgs,
        /// The page to open on (its `name`, such as ReportSection1).
        #[arg(long, value_name = "NAME")]
        page: Option<String>,
        /// Let the report be edited (permissions ReadWrite, an editable token).
        #[arg(long)]
        edit: bool,
        #[command(flatten)]
        common: EmbedCommon,
    },
    /// A paginated (RDL) report: the token covers its dataset with XMLA read access, and
    /// each identity is also given for the report.
    #[command(
        after_help = "Example:\n  pbi-embed embed paginated --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --report f904e89a-7ebe-4aa0-8647-e409063b4850 --username john@contoso.com"
    )]
    Paginated {
        #[command(flatten)]
        report: ReportArgs,
        #[command(flatten)]
        common: EmbedCommon,
    },
    /// A dashboard; an identity that names no dataset applies to its tiles' RLS datasets.
    #[command(
        after_help = "Example:\n  pbi-embed embed dashboard --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --dashboard 69ffaa6c-b36d-4d01-96f5-1ed67c64d4af --username john@contoso.com --role Region"
    )]
    Dashboard {
        /// The workspace id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The dashboard id.
        #[arg(long, value_name = "ID")]
        dashboard: String,
        #[command(flatten)]
        common: EmbedCommon,
    },
    /// One tile of a dashboard.
    #[command(
        after_help = "Example:\n  pbi-embed embed tile --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --dashboard 69ffaa6c-b36d-4d01-96f5-1ed67c64d4af --tile 4c1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    )]
    Tile {
        /// The workspace id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The dashboard id.
        #[arg(long, value_name = "ID")]
        dashboard: String,
        /// The tile id.
        #[arg(long, value_name = "ID")]
        tile: String,
        #[command(flatten)]
        common: EmbedCommon,
    },
    /// Q&A over a dataset.
    #[command(
        after_help = "Example:\n  pbi-embed embed qna --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --dataset a8b062ca-5730-468f-9df7-43c2ba76bf5e --question \"top products by sales\""
    )]
    Qna {
        /// The workspace id.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The dataset id.
        #[arg(long, value_name = "ID")]
        dataset: String,
        /// The question to ask.
        #[arg(long, value_name = "TEXT")]
        question: Option<String>,
        /// Show only the answer to --question (viewMode ResultOnly).
        #[arg(long, requires = "question")]
        result_only: bool,
        #[command(flatten)]
        common: EmbedCommon,
    },
    /// One visual of a report.
    #[command(
        after_help = "Example:\n  pbi-embed embed visual --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --report 5b218778-e7a5-4d73-8187-f10824047715 --page ReportSection --visual revenueByRegion \\\n    --username john@contoso.com --role Region"
    )]
    Visual {
        #[command(flatten)]
        report: ReportArgs,
        /// The page's `name` (such as ReportSection).
        #[arg(long, value_name = "NAME")]
        page: String,
        /// The visual's name.
        #[arg(long, value_name = "NAME")]
        visual: String,
        #[command(flatten)]
        common: EmbedCommon,
    },
    /// Authoring a new report on a dataset (powerbi.createReport), saved to the workspace.
    #[command(
        after_help = "Example:\n  pbi-embed embed create --workspace f089354e-8366-4e18-aea3-4cb4a3a50b48 \\\n    --dataset a8b062ca-5730-468f-9df7-43c2ba76bf5e"
    )]
    Create {
        /// The workspace the new report is saved to.
        #[arg(long, value_name = "ID")]
        workspace: String,
        /// The dataset it is built on.
        #[arg(long, value_name = "ID")]
        dataset: String,
        #[command(flatten)]
        common: EmbedCommon,
    },
}

/// A report in a workspace.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The workspace id.
    #[arg(long, value_name = "ID")]
    pub(crate) workspace: String,
    /// The report id.
    #[arg(long, value_name = "ID")]
    pub(crate) report: String,
}

/// What every `pbi-embed embed` takes: the identity and the token's lifetime.
#[derive(Debug, Args)]
pub(crate) struct EmbedCommon {
    #[command(flatten)]
    pub(crate) identity: IdentityArgs,
    /// Shorten the token's lifetime to at most this many minutes.
    #[arg(long, value_name = "N")]
    pub(crate) lifetime_minutes: Option<u32>,
    /// Skip the RLS pre-flight (Power BI then judges the identities itself).
    #[arg(long)]
    pub(crate) no_preflight: bool,
}

/// View or edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum AccessLevel {
    /// View only.
    View,
    /// View and edit.
    Edit,
}

/// One row-level-security identity, or a file of them.
#[derive(Debug, Args)]
pub(crate) struct IdentityArgs {
    /// The effective username that row-level security sees.
    #[arg(long, value_name = "NAME", conflicts_with = "identities")]
    pub(crate) username: Option<String>,
    /// An RLS role of the identity. Repeatable.
    #[arg(long = "role", value_name = "ROLE", requires = "username")]
    pub(crate) roles: Vec<String>,
    /// A dataset the identity applies to. Repeatable.
    #[arg(long = "identity-dataset", value_name = "ID")]
    pub(crate) identity_datasets: Vec<String>,
    /// A (paginated) report the identity applies to. Repeatable.
    #[arg(long = "identity-report", value_name = "ID")]
    pub(crate) identity_reports: Vec<String>,
    /// Custom data for the model's CUSTOMDATA().
    #[arg(long, value_name = "TEXT", requires = "username")]
    pub(crate) custom_data: Option<String>,
    /// The environment variable holding an identity blob (an Azure SQL access token).
    #[arg(long, value_name = "VAR", conflicts_with = "identities")]
    pub(crate) identity_blob_env: Option<String>,
    /// A JSON array of identities in Power BI's wire format; '-' reads standard input.
    #[arg(long, value_name = "FILE")]
    pub(crate) identities: Option<PathBuf>,
}

/// Options of `pbi-embed emulator`.
#[derive(Debug, Args)]
pub(crate) struct EmulatorArgs {
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// A fixture file (JSON) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub(crate) fixture: Option<PathBuf>,
    /// Serve HTTPS, with a certificate for localhost, 127.0.0.1 and ::1 signed by a
    /// certificate authority made at start (see --tls-ca-out).
    #[arg(long)]
    pub(crate) tls: bool,
    /// Another name (DNS name or IP address) the generated certificate covers; repeatable.
    #[arg(long, value_name = "NAME", requires = "tls", conflicts_with = "tls_cert")]
    pub(crate) tls_name: Vec<String>,
    /// Write the certificate authority (PEM) here, for clients to trust.
    #[arg(long, value_name = "FILE", requires = "tls", conflicts_with = "tls_cert")]
    pub(crate) tls_ca_out: Option<PathBuf>,
    /// Serve this certificate chain (PEM, leaf first) instead of a generated one.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Make a client certificate for the fixture's service principal, register it, and
    /// write it with its private key (PEM) here, for AZURE_CLIENT_CERTIFICATE_PATH.
    #[arg(long, value_name = "FILE")]
    pub(crate) client_certificate_out: Option<PathBuf>,
    /// Write a federated token (valid 24 h) that the fixture's service principal trusts
    /// here, for AZURE_FEDERATED_TOKEN_FILE (workload identity).
    #[arg(long, value_name = "FILE")]
    pub(crate) federated_token_out: Option<PathBuf>,
    /// Where embed URLs point (default: the emulator's own base URL), for a browser that
    /// reaches the emulator under another name.
    #[arg(long, value_name = "URL")]
    pub(crate) embed_base: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_interface_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
