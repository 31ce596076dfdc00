//! The Azure CLI credential (developer machines): the `az account get-access-token`
//! command to run and how to read its answer, as data. The driver runs the program —
//! directly, never through a shell — and hands back what it printed
//! ([`Action::RunProgram`](crate::driver::Action::RunProgram)).
//!
//! ```
//! use pbi_embed_core::{AzureCli, TenantId};
//!
//! // `az` from PATH (az.cmd on Windows), in the tenant the developer signed in to, or:
//! let cli = AzureCli::new().tenant(TenantId::parse("contoso.onmicrosoft.com")?);
//! # let _ = cli;
//! # Ok::<(), pbi_embed_core::ExchangeError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::bearer::BearerToken;
use super::sign_in::{Attempt, SignIn, SignInError, SignInInput, SignInStep, unasked};
use crate::wire::error::ExchangeError;
use crate::wire::ids::TenantId;
use crate::wire::secret::AccessToken;

/// How long the Azure CLI may take by default (what Azure's Python library allows).
pub const AZURE_CLI_TIMEOUT: Duration = Duration::from_secs(10);
/// The most output read from the program (an access token is a few kilobytes).
const MAX_OUTPUT_BYTES: u64 = 64 * 1024;
/// The most of the CLI's own error text quoted in an error.
const MAX_QUOTED_CHARS: usize = 400;

/// Sign in as whoever is signed in to the Azure CLI (`az login`): for developer machines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureCli {
    program: PathBuf,
    tenant: Option<TenantId>,
    timeout: Duration,
}

impl Default for AzureCli {
    fn default() -> Self {
        Self::new()
    }
}

impl AzureCli {
    /// `az` from `PATH` (`az.cmd` on Windows), in the CLI's current tenant, allowed
    /// [`AZURE_CLI_TIMEOUT`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            program: PathBuf::from(if cfg!(windows) { "az.cmd" } else { "az" }),
            tenant: None,
            timeout: AZURE_CLI_TIMEOUT,
        }
    }

    /// Asks for a token of this tenant (`--tenant`), as `AZURE_TENANT_ID` names it.
    #[must_use]
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Runs this program instead of `az` from `PATH`.
    #[must_use]
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// Allows the CLI this long (it starts Python; the first run after an upgrade is slow).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command run for a token of `resource` (the cloud's Power BI resource), within
    /// `most` at the latest.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when `resource` is not an `https://` URL (it is an
    /// argument: nothing that reads as an option may reach the command line).
    pub(crate) fn command(&self, resource: &str, most: Duration) -> Result<Command, ExchangeError> {
        if !resource.starts_with("https://") || resource.chars().any(char::is_whitespace) {
            return Err(ExchangeError::invalid_input("resource", "is not an https:// URL"));
        }
        let mut args: Vec<String> = ["account", "get-access-token", "--output", "json", "--resource"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        args.push(resource.to_owned());
        if let Some(tenant) = &self.tenant {
            args.extend(["--tenant".to_owned(), tenant.as_str().to_owned()]);
        }
        Ok(Command {
            program: self.program.clone(),
            args,
            env: vec![("AZURE_CORE_NO_COLOR", "true")],
            timeout: self.timeout.min(most),
            // One byte more than is accepted, so a longer output is told apart.
            max_output_bytes: MAX_OUTPUT_BYTES + 1,
        })
    }

    /// Reads what the program did: the bearer token it printed, or why there is none.
    ///
    /// # Errors
    /// [`AzureCliError`]: the CLI is missing, not signed in, failed (with its own words),
    /// timed out, or printed something that is not a usable token.
    pub(crate) fn read_output(
        &self,
        ran: std::io::Result<ProgramOutput>,
        now: SystemTime,
    ) -> Result<BearerToken, AzureCliError> {
        let fail = |failure, detail: Option<String>| {
            Err(AzureCliError {
                failure,
                detail,
                program: self.program.clone(),
                timeout: self.timeout,
            })
        };
        let output = match ran {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return fail(AzureCliFailure::NotInstalled, None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return fail(AzureCliFailure::TimedOut, None);
            }
            Err(e) => return fail(AzureCliFailure::Failed, Some(quoted(e.to_string().as_bytes()))),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status != Some(0) {
            let words = quoted(&output.stderr);
            let failure =
                if output.status == Some(127) || stderr.trim_start().starts_with("'az' is not recognized") {
                    AzureCliFailure::NotInstalled
                } else if (stderr.contains("az login") || stderr.contains("az account set"))
                    && !stderr.contains("AADSTS")
                {
                    AzureCliFailure::NotSignedIn
                } else {
                    AzureCliFailure::Failed
                };
            let detail = (!words.is_empty()).then_some(words);
            let detail = detail.or_else(|| output.status.map(|code| format!("exit status {code}")));
            return fail(failure, detail);
        }
        match parse(&output.stdout, now) {
            Ok(token) => Ok(token),
            Err(reason) => fail(AzureCliFailure::Unreadable, Some(reason.to_owned())),
        }
    }
}

/// The token in the CLI's JSON: `accessToken`, and `expires_on` (POSIX seconds; the older
/// `expiresOn` is local time without a zone, so it is not trusted).
fn parse(stdout: &[u8], now: SystemTime) -> Result<BearerToken, &'static str> {
    if stdout.len() as u64 > MAX_OUTPUT_BYTES {
        return Err("it printed more than 64 KiB");
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(stdout) else {
        return Err("it did not print a JSON object");
    };
    let token = match object.get("accessToken") {
        Some(Value::String(token)) if !token.is_empty() => token,
        _ => return Err("its JSON has no accessToken"),
    };
    let seconds = match object.get("expires_on") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        None => return Err("its JSON has no expires_on (Azure CLI 2.54.0 or newer prints it)"),
        Some(_) => None,
    };
    let expires_at = seconds
        .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .ok_or("its expires_on is not a time in POSIX seconds")?;
    if expires_at <= now {
        return Err("the token it gave has already expired");
    }
    Ok(BearerToken::new(AccessToken::new(token.clone()), expires_at))
}

/// The first lines of a program's error text, without control characters, bounded.
fn quoted(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let joined = lines.join(" ");
    let mut quoted: String = joined
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_QUOTED_CHARS)
        .collect();
    if joined.chars().count() > MAX_QUOTED_CHARS {
        quoted.push('…');
    }
    quoted
}

/// The Azure CLI's command: run directly (never through a shell), with standard input
/// closed, these extra environment variables, killed after its time-out, reading at most
/// `max_output_bytes` of each output. Drivers get it as
/// [`ProgramRun`](crate::driver::ProgramRun).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Command {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    timeout: Duration,
    max_output_bytes: u64,
}

impl Command {
    pub(crate) fn program(&self) -> &Path {
        &self.program
    }

    pub(crate) fn args(&self) -> &[String] {
        &self.args
    }

    pub(crate) fn env(&self) -> &[(&'static str, &'static str)] {
        &self.env
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn max_output_bytes(&self) -> u64 {
        self.max_output_bytes
    }
}

/// The Azure CLI signing in: run `az`, read what it printed.
#[derive(Debug)]
pub(crate) struct AzureCliSignIn(pub(crate) AzureCli);

impl SignIn for AzureCliSignIn {
    fn start(&mut self, at: &Attempt<'_>) -> SignInStep {
        match self.0.command(at.cloud.resource(), at.remaining) {
            Ok(command) => SignInStep::Run(command),
            Err(error) => SignInStep::Failed(SignInError::Unusable(error)),
        }
    }

    fn resume(&mut self, input: SignInInput, at: &Attempt<'_>) -> SignInStep {
        let SignInInput::Program(ran) = input else {
            return unasked();
        };
        match self.0.read_output(ran, at.now) {
            Ok(token) => SignInStep::Done(token),
            Err(error) => SignInStep::Failed(SignInError::AzureCli(error)),
        }
    }
}

/// What a program did: its exit code (`None` when a signal ended it) and what it
/// printed (each at most the run's `max_output_bytes`).
#[derive(Clone, PartialEq, Eq)]
pub struct ProgramOutput {
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl ProgramOutput {
    /// The program's exit code and output.
    #[must_use]
    pub fn new(status: Option<i32>, stdout: Vec<u8>, stderr: Vec<u8>) -> Self {
        Self {
            status,
            stdout,
            stderr,
        }
    }
}

impl fmt::Debug for ProgramOutput {
    // The output holds an access token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgramOutput")
            .field("status", &self.status)
            .field("stdout_bytes", &self.stdout.len())
            .field("stderr_bytes", &self.stderr.len())
            .finish()
    }
}

/// Why the Azure CLI gave no token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AzureCliFailure {
    /// The program was not found.
    NotInstalled,
    /// No one is signed in (`az login`), or not to the tenant asked for.
    NotSignedIn,
    /// It failed for another reason, given in its own words.
    Failed,
    /// It did not finish in time and was stopped.
    TimedOut,
    /// It printed something that is not a usable token.
    Unreadable,
}

/// The Azure CLI gave no token: why, and what it said.
#[derive(Clone, Debug)]
pub struct AzureCliError {
    failure: AzureCliFailure,
    detail: Option<String>,
    program: PathBuf,
    timeout: Duration,
}

impl AzureCliError {
    /// Why.
    #[must_use]
    pub fn failure(&self) -> AzureCliFailure {
        self.failure
    }

    /// What the CLI said (its first lines of error text, bounded), or what was wrong
    /// with its output.
    #[must_use]
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// What to do about it.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self.failure {
            AzureCliFailure::NotInstalled => {
                Some("install the Azure CLI (https://aka.ms/azure-cli), or sign in another way")
            }
            AzureCliFailure::NotSignedIn => Some("run `az login` (with --tenant for another tenant)"),
            AzureCliFailure::TimedOut => {
                Some("run `az account get-access-token` yourself to see why it is slow")
            }
            AzureCliFailure::Unreadable => Some("update the Azure CLI (`az upgrade`)"),
            AzureCliFailure::Failed => None,
        }
    }
}

impl fmt::Display for AzureCliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = self.program.display();
        match self.failure {
            AzureCliFailure::NotInstalled => write!(f, "the Azure CLI ({program}) was not found")?,
            AzureCliFailure::NotSignedIn => write!(f, "the Azure CLI ({program}) is not signed in")?,
            AzureCliFailure::Failed => write!(f, "the Azure CLI ({program}) failed")?,
            AzureCliFailure::TimedOut => write!(
                f,
                "the Azure CLI ({program}) did not answer within {} s and was stopped",
                self.timeout.as_secs_f64()
            )?,
            AzureCliFailure::Unreadable => write!(f, "the Azure CLI's ({program}) answer is unusable")?,
        }
        match &self.detail {
            Some(detail) => write!(f, ": {detail}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(1_800_000_000);

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + NOW
    }

    fn ran(status: i32, stdout: &str, stderr: &str) -> std::io::Result<ProgramOutput> {
        Ok(ProgramOutput::new(Some(status), stdout.into(), stderr.into()))
    }

    fn failure(result: Result<BearerToken, AzureCliError>) -> (AzureCliFailure, String) {
        match result {
            Err(e) => (e.failure(), e.to_string()),
            Ok(_) => panic!("not an Azure CLI error"),
        }
    }

    #[test]
    fn the_command_is_argv_never_a_shell_line() {
        let tenant = TenantId::parse("contoso.onmicrosoft.com").unwrap();
        let run = AzureCli::new()
            .tenant(tenant)
            .command("https://analysis.windows.net/powerbi/api", Duration::from_secs(3))
            .unwrap();
        assert_eq!(
            run.args(),
            [
                "account",
                "get-access-token",
                "--output",
                "json",
                "--resource",
                "https://analysis.windows.net/powerbi/api",
                "--tenant",
                "contoso.onmicrosoft.com"
            ]
        );
        assert_eq!(run.timeout(), Duration::from_secs(3), "bounded by what is left");
        assert_eq!(run.env(), [("AZURE_CORE_NO_COLOR", "true")]);
        for resource in ["--help", "http://x", "https://a b"] {
            assert!(
                AzureCli::new().command(resource, Duration::MAX).is_err(),
                "{resource}"
            );
        }
    }

    #[test]
    fn a_token_and_its_expiry_are_read() {
        let expires = NOW.as_secs() + 3600;
        let json = format!(
            r#"{{"accessToken":"eyJ0","expiresOn":"2027-01-15 10:00:00.000000","expires_on":{expires},"tokenType":"Bearer"}}"#
        );
        let token = AzureCli::new().read_output(ran(0, &json, ""), now()).unwrap();
        assert_eq!(token.access_token.secret(), "eyJ0");
        assert_eq!(
            token.expires_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(expires))
        );
        let as_string = format!(r#"{{"accessToken":"eyJ0","expires_on":"{expires}"}}"#);
        assert!(AzureCli::new().read_output(ran(0, &as_string, ""), now()).is_ok());
    }

    #[test]
    fn unusable_answers_are_refused_by_what_is_wrong() {
        let cases = [
            ("not json", "JSON object"),
            (r#"{"expires_on": 1900000000}"#, "accessToken"),
            (
                r#"{"accessToken":"t","expiresOn":"2027-01-15 10:00:00.000000"}"#,
                "2.54.0",
            ),
            (r#"{"accessToken":"t","expires_on":"soon"}"#, "POSIX"),
            (
                r#"{"accessToken":"t","expires_on":18446744073709551615}"#,
                "POSIX",
            ),
            (r#"{"accessToken":"t","expires_on":1000}"#, "already expired"),
        ];
        for (stdout, says) in cases {
            let (kind, text) = failure(AzureCli::new().read_output(ran(0, stdout, ""), now()));
            assert_eq!(kind, AzureCliFailure::Unreadable, "{stdout}");
            assert!(text.contains(says), "{stdout}: {text}");
            assert!(!text.contains("\"t\""), "never quotes the output: {text}");
        }
    }

    #[test]
    fn failures_say_what_the_cli_said() {
        let cli = AzureCli::new();
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            failure(cli.read_output(Err(missing), now())).0,
            AzureCliFailure::NotInstalled
        );
        assert_eq!(
            failure(cli.read_output(ran(127, "", "sh: az: not found"), now())).0,
            AzureCliFailure::NotInstalled
        );
        let (kind, text) = failure(cli.read_output(
            ran(1, "", "ERROR: Please run 'az login' to setup account.\n"),
            now(),
        ));
        assert_eq!(kind, AzureCliFailure::NotSignedIn);
        assert!(
            text.ends_with("ERROR: Please run 'az login' to setup account."),
            "{text}"
        );
        let (kind, text) = failure(cli.read_output(
            ran(
                1,
                "",
                "ERROR: AADSTS700082: The refresh token has expired. Run 'az login'.\n",
            ),
            now(),
        ));
        assert_eq!(kind, AzureCliFailure::Failed, "Entra's refusal is quoted as such");
        assert!(text.contains("AADSTS700082"), "{text}");
        let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
        let (kind, text) = failure(cli.read_output(Err(timed_out), now()));
        assert_eq!(kind, AzureCliFailure::TimedOut);
        assert!(text.contains("10 s"), "{text}");
        let (_, text) = failure(cli.read_output(ran(2, "", &"x\u{1b}[31m".repeat(500)), now()));
        assert!(text.chars().count() < 500 && !text.contains('\u{1b}'), "{text}");
        let (_, text) = failure(cli.read_output(ran(3, "", ""), now()));
        assert!(text.ends_with("exit status 3"), "{text}");
    }
}
