//! The broker's configuration: a TOML file (see the crate's README for a whole one), read
//! into checked settings. Every error names the file, the line and the field.
//!
//! Secrets are not in the file: the sign-in comes from the environment (`AZURE_*`, as
//! Azure's libraries read it) and so do the Redis URL and cache key.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use pbi_embed_reqwest::{DashboardId, DatasetId, ProfileId, ReportId, WorkspaceId};
use serde::Deserialize;
use toml::Spanned;

/// Where a configuration failed: the file, the line, the field and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (as named to [`Config::parse`]).
    pub file: String,
    /// The line, from 1, when known.
    pub line: Option<usize>,
    /// The field (`customers[1].workspace`, `server.listen`), when known.
    pub field: String,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}: {}", self.file, self.field, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.field, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The checked configuration of a broker.
#[derive(Clone, Debug)]
pub struct Config {
    /// How it listens.
    pub server: Server,
    /// Power BI and Entra ID.
    pub powerbi: PowerBi,
    /// Identity providers whose bearer JWTs authenticate callers.
    pub issuers: Vec<Issuer>,
    /// API keys of trusted backends.
    pub api_keys: Vec<ApiKey>,
    /// The customers, by id: what each may embed, and how.
    pub customers: BTreeMap<String, Customer>,
}

/// How the broker listens and protects itself.
#[derive(Clone, Debug)]
pub struct Server {
    /// The address (`listen`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Development mode (`development`): the caller's identity from the query string,
    /// allowed on a loopback address only.
    pub development: bool,
    /// How long in-flight requests may finish after SIGTERM or SIGINT (`drain_seconds`,
    /// default 10).
    pub drain: Duration,
    /// Requests per minute one caller may make (`requests_per_minute`, default 600; 0
    /// turns the limit off).
    pub requests_per_minute: u32,
    /// Origins allowed to call from a browser (`cors_origins`; none by default).
    pub cors_origins: Vec<String>,
    /// TLS: the certificate chain and private key files, PEM (`tls_cert`, `tls_key`);
    /// plain HTTP without (behind a proxy that terminates TLS).
    pub tls: Option<TlsFiles>,
}

/// The broker's own TLS: PEM files, read when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (`tls_cert`).
    pub cert: String,
    /// The private key (`tls_key`).
    pub key: String,
}

/// Power BI and Entra ID settings (the sign-in itself comes from the environment).
#[derive(Clone, Debug)]
pub struct PowerBi {
    /// Another API base (`api_base`: the emulator, a sovereign cloud's).
    pub api_base: Option<String>,
    /// Another Entra ID host (`authority_host`).
    pub authority_host: Option<String>,
    /// Tokens are minted again this long before they expire, in the background
    /// (`refresh_ahead_seconds`, default 900; 0 turns it off).
    pub refresh_ahead: Duration,
    /// A cached token is served until this long before it expires
    /// (`embed_margin_seconds`, default 600).
    pub embed_margin: Duration,
    /// Certificate authorities (PEM) to trust besides the platform's for every outbound
    /// connection: Power BI, Entra ID and the issuers' discovery documents (`ca_file`:
    /// the emulator's over TLS, a proxy's).
    pub ca_file: Option<String>,
}

/// An identity provider (OpenID Connect) whose bearer JWTs authenticate callers.
#[derive(Clone, Debug)]
pub struct Issuer {
    /// `issuer`: the tokens' `iss`, exactly; its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// `audience`: the tokens' `aud` must include it.
    pub audience: String,
    /// Claims read for the RLS username, first present wins (`username_claims`, default
    /// `preferred_username`, `upn`, `email`).
    pub username_claims: Vec<String>,
    /// The claim holding roles or groups (`roles_claim`, default `roles`).
    pub roles_claim: String,
    /// Claim values to RLS roles (`[issuers.roles]`).
    pub roles: BTreeMap<String, Vec<String>>,
    /// What a claim value with no mapping does (`unmapped_roles`).
    pub unmapped_roles: Unmapped,
    /// Which customer a caller belongs to.
    pub customer: CustomerFrom,
    /// Clock skew allowed on `exp` and `nbf` (`leeway_seconds`, default 60).
    pub leeway: Duration,
    /// The soonest the keys are fetched again when a token names an unknown key id
    /// (`jwks_refetch_seconds`, default 30, 1 to 3600): a flood of made-up key ids costs
    /// one fetch per interval.
    pub refetch_after: Duration,
}

/// What a role claim value with no mapping does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unmapped {
    /// It is left out (the default).
    Drop,
    /// It is used as the RLS role as it is.
    Keep,
    /// The request is refused (403).
    Refuse,
}

/// Where a caller's customer comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustomerFrom {
    /// This claim's value (`customer_claim`, for instance `tid`) is the customer's id.
    Claim(String),
    /// Every caller of this issuer is this customer (`customer`).
    Fixed(String),
}

/// A trusted backend's API key, which may name the user and roles in headers.
#[derive(Clone, Debug)]
pub struct ApiKey {
    /// `name`, for logs and metrics.
    pub name: String,
    /// `sha256`: the key's SHA-256, hex (`printf %s "$KEY" | sha256sum`).
    pub sha256: [u8; 32],
    /// `customer`: the customer the key serves.
    pub customer: String,
}

/// A customer: its service principal profile, workspace, the items it may embed and how.
#[derive(Clone, Debug)]
pub struct Customer {
    /// `id`.
    pub id: String,
    /// `workspace`: where its items are.
    pub workspace: WorkspaceId,
    /// `profile`: the service principal profile it is served as (`X-PowerBI-Profile-Id`).
    pub profile: Option<ProfileId>,
    /// `roles`: the RLS roles of a caller who brings none.
    pub roles: Vec<String>,
    /// `identity`: whether the caller's identity is sent to Power BI.
    pub identity: IdentityRule,
    /// `lifetime_minutes`: the embed token's lifetime, at most.
    pub lifetime_minutes: Option<u32>,
    /// `editable`: reports may be edited and new ones created.
    pub editable: bool,
    /// `items`, or `all_items = true`.
    pub items: Items,
}

/// Whether a customer's callers' identity goes to Power BI as an RLS identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityRule {
    /// The caller's username and roles, on every token (the default): a caller without a
    /// username is refused.
    User,
    /// The caller's username and roles, only to datasets that require an identity (their
    /// flags read first, and kept in the metadata cache): for a customer whose datasets
    /// differ. A caller without a username is refused.
    WhereRequired,
    /// None: the customer's datasets have no row-level security.
    None,
}

/// What a customer may embed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Items {
    /// Anything in its workspace.
    All,
    /// These items (and their tiles, visuals and pages).
    Listed(Vec<Item>),
}

/// An item a customer may embed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A report: the report, paginated or not, its visuals, and several reports together.
    Report(ReportId),
    /// A dashboard and its tiles.
    Dashboard(DashboardId),
    /// A dataset: Q&A over it, and creating reports on it when the customer is editable.
    Dataset(DatasetId),
}

impl Items {
    /// Whether `item` is allowed.
    #[must_use]
    pub fn allows(&self, item: &Item) -> bool {
        match self {
            Self::All => true,
            Self::Listed(items) => items.contains(item),
        }
    }
}

// ---- the file's shape -------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    powerbi: PowerBiSection,
    #[serde(default)]
    issuers: Vec<Spanned<IssuerSection>>,
    #[serde(default)]
    api_keys: Vec<Spanned<ApiKeySection>>,
    #[serde(default)]
    customers: Vec<Spanned<CustomerSection>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    listen: Option<Spanned<String>>,
    #[serde(default)]
    development: bool,
    drain_seconds: Option<u64>,
    requests_per_minute: Option<u32>,
    #[serde(default)]
    cors_origins: Vec<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PowerBiSection {
    api_base: Option<String>,
    authority_host: Option<String>,
    refresh_ahead_seconds: Option<Spanned<u64>>,
    embed_margin_seconds: Option<u64>,
    ca_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerSection {
    issuer: Spanned<String>,
    audience: String,
    username_claims: Option<Vec<String>>,
    roles_claim: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
    unmapped_roles: Option<Unmapped>,
    customer_claim: Option<String>,
    customer: Option<Spanned<String>>,
    leeway_seconds: Option<u64>,
    jwks_refetch_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeySection {
    name: String,
    sha256: Spanned<String>,
    customer: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerSection {
    id: Spanned<String>,
    workspace: Spanned<String>,
    profile: Option<Spanned<String>>,
    #[serde(default)]
    roles: Vec<String>,
    identity: Option<IdentityRule>,
    lifetime_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    editable: bool,
    #[serde(default)]
    all_items: bool,
    #[serde(default)]
    items: Vec<Spanned<ItemSection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemSection {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// The longest configuration file read.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

impl Config {
    /// Reads and checks a configuration from `text`, the contents of `file` (used in
    /// errors only).
    ///
    /// # Errors
    /// [`ConfigError`] naming the line and field: TOML that does not parse, an unknown or
    /// missing field, an id that is not a GUID, a reference to a customer that is not
    /// configured, a customer with nothing to embed.
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        let at = Locator { file, text };
        if text.len() > MAX_CONFIG_BYTES {
            return Err(at.error(None, "file", format!("is over {MAX_CONFIG_BYTES} bytes")));
        }
        let parsed: File = toml::from_str(text).map_err(|e| at.toml(&e))?;
        let server = server(&at, parsed.server)?;
        let powerbi = powerbi(&at, parsed.powerbi)?;
        let mut customers = BTreeMap::new();
        for (n, section) in parsed.customers.into_iter().enumerate() {
            let span = section.span();
            let customer = customer(&at, n, section.into_inner())?;
            if customers.contains_key(&customer.id) {
                return Err(at.error(Some(span), &format!("customers[{n}].id"), "is used twice".into()));
            }
            customers.insert(customer.id.clone(), customer);
        }
        let known = |field: &str, name: &Spanned<String>| {
            if customers.contains_key(name.get_ref()) {
                Ok(name.get_ref().clone())
            } else {
                Err(at.error(
                    Some(name.span()),
                    field,
                    format!("names customer {:?}, which is not configured", name.get_ref()),
                ))
            }
        };
        let mut issuers = Vec::new();
        for (n, section) in parsed.issuers.into_iter().enumerate() {
            let (span, section) = (section.span(), section.into_inner());
            let field = |name: &str| format!("issuers[{n}].{name}");
            url::Url::parse(section.issuer.get_ref())
                .ok()
                .filter(|u| u.scheme() == "https" || is_loopback_http(u))
                .ok_or_else(|| {
                    at.error(
                        Some(section.issuer.span()),
                        &field("issuer"),
                        "is not an https URL (http only on a loopback address)".into(),
                    )
                })?;
            let customer = match (section.customer_claim, &section.customer) {
                (Some(claim), None) => CustomerFrom::Claim(claim),
                (None, Some(name)) => CustomerFrom::Fixed(known(&field("customer"), name)?),
                _ => {
                    return Err(at.error(
                        Some(span),
                        &field("customer"),
                        "give exactly one of customer_claim (a claim naming the customer) and customer (a fixed one)".into(),
                    ));
                }
            };
            issuers.push(Issuer {
                issuer: section.issuer.into_inner(),
                audience: section.audience,
                username_claims: section
                    .username_claims
                    .unwrap_or_else(|| ["preferred_username", "upn", "email"].map(String::from).to_vec()),
                roles_claim: section.roles_claim.unwrap_or_else(|| "roles".into()),
                roles: section.roles,
                unmapped_roles: section.unmapped_roles.unwrap_or(Unmapped::Drop),
                customer,
                leeway: Duration::from_secs(section.leeway_seconds.unwrap_or(60).min(600)),
                refetch_after: Duration::from_secs(section.jwks_refetch_seconds.unwrap_or(30).clamp(1, 3600)),
            });
        }
        let mut api_keys = Vec::new();
        let mut hashes = HashSet::new();
        for (n, section) in parsed.api_keys.into_iter().enumerate() {
            let section = section.into_inner();
            let field = |name: &str| format!("api_keys[{n}].{name}");
            let sha256 = hex32(section.sha256.get_ref()).ok_or_else(|| {
                at.error(
                    Some(section.sha256.span()),
                    &field("sha256"),
                    "is not a SHA-256 in hex (64 characters; printf %s \"$KEY\" | sha256sum)".into(),
                )
            })?;
            if !hashes.insert(sha256) {
                return Err(at.error(
                    Some(section.sha256.span()),
                    &field("sha256"),
                    "is used twice".into(),
                ));
            }
            api_keys.push(ApiKey {
                name: section.name,
                sha256,
                customer: known(&field("customer"), &section.customer)?,
            });
        }
        if issuers.is_empty() && api_keys.is_empty() && !server.development {
            return Err(at.error(
                None,
                "issuers",
                "no way for callers to authenticate: configure [[issuers]] or [[api_keys]]".into(),
            ));
        }
        Ok(Self {
            server,
            powerbi,
            issuers,
            api_keys,
            customers,
        })
    }
}

fn server(at: &Locator<'_>, section: ServerSection) -> Result<Server, ConfigError> {
    let listen = match &section.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(text) => text.get_ref().parse().map_err(|_| {
            at.error(
                Some(text.span()),
                "server.listen",
                "is not an address like 127.0.0.1:8080".into(),
            )
        })?,
    };
    if section.development && !listen.ip().is_loopback() {
        return Err(at.error(
            section.listen.as_ref().map(Spanned::span),
            "server.development",
            format!(
                "takes the caller's identity from the query string: only on a loopback address, not {listen}"
            ),
        ));
    }
    let mut cors_origins = Vec::new();
    for (n, origin) in section.cors_origins.iter().enumerate() {
        let parsed = url::Url::parse(origin.get_ref()).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.path() == "/"
                && u.query().is_none()
        });
        match parsed {
            Some(url) => cors_origins.push(url.origin().ascii_serialization()),
            None => {
                return Err(at.error(
                    Some(origin.span()),
                    &format!("server.cors_origins[{n}]"),
                    "is not an origin like https://app.contoso.com".into(),
                ));
            }
        }
    }
    let tls = match (section.tls_cert, section.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.into_inner(),
            key: key.into_inner(),
        }),
        (Some(one), None) | (None, Some(one)) => {
            return Err(at.error(
                Some(one.span()),
                "server.tls_cert",
                "give both tls_cert and tls_key, or neither".into(),
            ));
        }
    };
    Ok(Server {
        listen,
        tls,
        development: section.development,
        drain: Duration::from_secs(section.drain_seconds.unwrap_or(10).min(3600)),
        requests_per_minute: section.requests_per_minute.unwrap_or(600),
        cors_origins,
    })
}

fn powerbi(at: &Locator<'_>, section: PowerBiSection) -> Result<PowerBi, ConfigError> {
    let margin = section.embed_margin_seconds.unwrap_or(600).min(3600);
    let window = section
        .refresh_ahead_seconds
        .as_ref()
        .map_or(900, |w| *w.get_ref());
    if window != 0 && window <= margin {
        return Err(at.error(
            section.refresh_ahead_seconds.as_ref().map(Spanned::span),
            "powerbi.refresh_ahead_seconds",
            format!("must exceed embed_margin_seconds ({margin}), or be 0 to turn refresh-ahead off"),
        ));
    }
    if window > 1800 {
        return Err(at.error(
            section.refresh_ahead_seconds.as_ref().map(Spanned::span),
            "powerbi.refresh_ahead_seconds",
            "is over 1800: a window that long would mint at every request".into(),
        ));
    }
    Ok(PowerBi {
        api_base: section.api_base,
        authority_host: section.authority_host,
        refresh_ahead: Duration::from_secs(window),
        embed_margin: Duration::from_secs(margin),
        ca_file: section.ca_file,
    })
}

fn customer(at: &Locator<'_>, n: usize, section: CustomerSection) -> Result<Customer, ConfigError> {
    let field = |name: &str| format!("customers[{n}].{name}");
    let id = section.id.get_ref().clone();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(at.error(
            Some(section.id.span()),
            &field("id"),
            "must be 1 to 128 characters, none of them control characters".into(),
        ));
    }
    let workspace = WorkspaceId::parse(section.workspace.get_ref())
        .map_err(|e| at.error(Some(section.workspace.span()), &field("workspace"), e.to_string()))?;
    let profile = section
        .profile
        .map(|p| {
            ProfileId::parse(p.get_ref())
                .map_err(|e| at.error(Some(p.span()), &field("profile"), e.to_string()))
        })
        .transpose()?;
    if let Some(minutes) = &section.lifetime_minutes
        && !(1..=1440).contains(minutes.get_ref())
    {
        return Err(at.error(
            Some(minutes.span()),
            &field("lifetime_minutes"),
            "must be 1 to 1440".into(),
        ));
    }
    let items = if section.all_items {
        if !section.items.is_empty() {
            return Err(at.error(
                Some(section.id.span()),
                &field("items"),
                "give items or all_items = true, not both".into(),
            ));
        }
        Items::All
    } else {
        let mut items = Vec::new();
        for (i, item) in section.items.into_iter().enumerate() {
            let span = item.span();
            let item = item.into_inner();
            let bad = |e: String| at.error(Some(span.clone()), &field(&format!("items[{i}]")), e);
            items.push(match item.kind.as_str() {
                "report" => Item::Report(ReportId::parse(&item.id).map_err(|e| bad(e.to_string()))?),
                "dashboard" => Item::Dashboard(DashboardId::parse(&item.id).map_err(|e| bad(e.to_string()))?),
                "dataset" => Item::Dataset(DatasetId::parse(&item.id).map_err(|e| bad(e.to_string()))?),
                other => return Err(bad(format!("type {other:?} is not report, dashboard or dataset"))),
            });
        }
        if items.is_empty() {
            return Err(at.error(
                Some(section.id.span()),
                &field("items"),
                "the customer may embed nothing: list its items, or set all_items = true".into(),
            ));
        }
        Items::Listed(items)
    };
    Ok(Customer {
        id,
        workspace,
        profile,
        roles: section.roles,
        identity: section.identity.unwrap_or(IdentityRule::User),
        lifetime_minutes: section.lifetime_minutes.map(Spanned::into_inner),
        editable: section.editable,
        items,
    })
}

/// An http URL on a loopback address (a local identity provider, the emulator).
pub(crate) fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Turns byte spans into lines of the file.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Locator<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn error(&self, span: Option<Range<usize>>, field: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: span.map(|s| self.line(&s)),
            field: field.to_owned(),
            message,
        }
    }

    /// A TOML error: its line, and the key written on that line as the field.
    fn toml(&self, error: &toml::de::Error) -> ConfigError {
        let line = error.span().map(|s| self.line(&s));
        let field = line
            .and_then(|l| self.text.lines().nth(l - 1))
            .map(str::trim)
            .map(|l| match l.split_once('=') {
                Some((key, _)) => key.trim().to_owned(),
                None => l.trim_matches(['[', ']']).to_owned(),
            })
            .filter(|f| !f.is_empty() && f.len() <= 80)
            .unwrap_or_else(|| "file".into());
        ConfigError {
            file: self.file.to_owned(),
            line,
            field,
            message: error.message().trim().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
    const REPORT: &str = "5b218778-e7a5-4d73-8187-f10824047715";

    fn good() -> String {
        format!(
            r#"
[server]
listen = "127.0.0.1:0"

[[issuers]]
issuer = "https://login.contoso.com/tenant/v2.0"
audience = "api://broker"
customer_claim = "tid"

[issuers.roles]
"Sales.Manager" = ["Manager"]

[[api_keys]]
name = "billing"
sha256 = "{}"
customer = "contoso"

[[customers]]
id = "contoso"
workspace = "{WORKSPACE}"
items = [{{ type = "report", id = "{REPORT}" }}]
"#,
            "ab".repeat(32)
        )
    }

    #[test]
    fn a_whole_configuration_reads() {
        let config = Config::parse("broker.toml", &good()).unwrap();
        let customer = &config.customers["contoso"];
        assert_eq!(customer.identity, IdentityRule::User);
        assert!(
            customer
                .items
                .allows(&Item::Report(ReportId::parse(REPORT).unwrap()))
        );
        assert_eq!(config.issuers[0].customer, CustomerFrom::Claim("tid".into()));
        assert_eq!(config.issuers[0].username_claims[0], "preferred_username");
        assert_eq!(config.api_keys[0].sha256, [0xab; 32]);
    }

    /// Each mistake, and the line and field its error names.
    #[test]
    fn every_error_names_the_file_line_and_field() {
        let cases: [(&str, &str, usize, &str, &str); 9] = [
            (
                "workspace = \"f089354e",
                "workspace = \"nope",
                20,
                "customers[0].workspace",
                "GUID",
            ),
            (
                "sha256 = \"abab",
                "sha256 = \"zz",
                15,
                "api_keys[0].sha256",
                "SHA-256",
            ),
            (
                "customer = \"contoso\"\n\n[[customers]]",
                "customer = \"acme\"\n\n[[customers]]",
                16,
                "api_keys[0].customer",
                "acme",
            ),
            (
                "listen = \"127.0.0.1:0\"",
                "listen = \"localhost\"",
                3,
                "server.listen",
                "address",
            ),
            (
                "listen = \"127.0.0.1:0\"",
                "listen = \"0.0.0.0:80\"\ndevelopment = true",
                3,
                "server.development",
                "loopback",
            ),
            (
                "audience = \"api://broker\"",
                "audience = \"api://broker\"\ncolour = 1",
                8,
                "colour",
                "unknown field",
            ),
            (
                "items = [",
                "lifetime_minutes = 0\nitems = [",
                21,
                "customers[0].lifetime_minutes",
                "1 to 1440",
            ),
            (
                "type = \"report\"",
                "type = \"book\"",
                21,
                "customers[0].items[0]",
                "book",
            ),
            (
                "customer_claim = \"tid\"",
                "",
                5,
                "issuers[0].customer",
                "exactly one",
            ),
        ];
        for (from, to, line, field, says) in cases {
            let text = good().replacen(from, to, 1);
            assert_ne!(text, good(), "{from}");
            let error = Config::parse("broker.toml", &text).unwrap_err();
            let shown = error.to_string();
            assert!(shown.starts_with("broker.toml:"), "{shown}");
            assert_eq!(error.line, Some(line), "{shown}");
            assert!(
                error.field.contains(field) || shown.contains(field),
                "{field}: {shown}"
            );
            assert!(shown.contains(says), "{says}: {shown}");
        }
    }

    #[test]
    fn a_customer_with_nothing_to_embed_and_no_way_in_are_refused() {
        let text = good().replace(
            &format!("items = [{{ type = \"report\", id = \"{REPORT}\" }}]"),
            "",
        );
        let error = Config::parse("b.toml", &text).unwrap_err();
        assert_eq!(error.field, "customers[0].items", "{error}");
        let minimal = format!("[[customers]]\nid = \"a\"\nworkspace = \"{WORKSPACE}\"\nall_items = true\n");
        let error = Config::parse("b.toml", &minimal).unwrap_err();
        assert!(error.to_string().contains("authenticate"), "{error}");
    }
}
