//! How a failed command ends: one readable sentence on stderr, and an exit code that
//! says whose fault it was.

use std::process::ExitCode;

use std::error::Error as _;

use pbi_embed_ureq::ExchangeError;
use pbi_embed_ureq::{Error, ErrorKind};

/// Exit code: usage or invalid input; nothing was sent.
pub(crate) const USAGE: u8 = 2;
/// Exit code: Power BI answered with an error.
pub(crate) const POWER_BI: u8 = 3;
/// Exit code: the Entra ID sign-in failed.
pub(crate) const SIGN_IN: u8 = 4;
/// Exit code: a network failure, a time-out, or a response that could not be read.
pub(crate) const NETWORK: u8 = 5;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input found before anything was sent.
    Usage(String),
    /// The call failed.
    Call(Error),
    /// The call failed with the bearer token from `PBI_ACCESS_TOKEN`.
    WithFixedBearer(Error),
    /// The emulator could not run.
    Emulator(String, u8),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Call(error)
    }
}

impl From<ExchangeError> for Failure {
    fn from(error: ExchangeError) -> Self {
        Self::Call(error.into())
    }
}

impl Failure {
    /// Prints the failure and returns its exit code.
    pub(crate) fn report(self) -> ExitCode {
        let code = match &self {
            Self::Usage(message) => {
                eprintln!("error: {message}");
                USAGE
            }
            Self::Emulator(message, code) => {
                eprintln!("error: {message}");
                *code
            }
            Self::WithFixedBearer(error) if refused(error) => {
                report_call(error);
                eprintln!(
                    "hint: the bearer token in PBI_ACCESS_TOKEN was refused (expired, or for another \
                     tenant or audience); get a new one, or unset PBI_ACCESS_TOKEN to sign in with \
                     AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
                );
                exit_code(error)
            }
            Self::Call(error) | Self::WithFixedBearer(error) if error.kind() == ErrorKind::Certificate => {
                report_call(error);
                eprintln!(
                    "hint: the server's certificate is not trusted here: for a private CA (a \
                     TLS-inspecting proxy, the emulator) give its PEM file with --ca-cert FILE or \
                     SSL_CERT_FILE, or use --platform-verifier for the system's trust store"
                );
                exit_code(error)
            }
            Self::Call(error) | Self::WithFixedBearer(error) => {
                report_call(error);
                if let Some(hint) = error.hint() {
                    eprintln!("hint: {hint}");
                }
                exit_code(error)
            }
        };
        ExitCode::from(code)
    }
}

/// Whether Power BI refused the bearer token itself.
fn refused(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::NotAuthorized | ErrorKind::TokenExpired | ErrorKind::Forbidden
    )
}

/// Prints the error, then what the transport said (its sources), on one line.
fn report_call(error: &Error) {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    eprintln!("error: {line}");
}

/// The exit code of a failed call.
fn exit_code(error: &Error) -> u8 {
    match (error.exchange(), error.kind()) {
        (Some(ExchangeError::InvalidInput { .. } | ExchangeError::RlsPreflight { .. }), _) => USAGE,
        (Some(ExchangeError::Api(_)), _) => POWER_BI,
        (Some(ExchangeError::Entra(_)), _) | (_, ErrorKind::TokenSource | ErrorKind::SignIn) => SIGN_IN,
        _ => NETWORK,
    }
}
