//! How a failed command ends: one readable sentence on stderr, and an exit code that
//! says whose fault it was.

use std::process::ExitCode;

use pbi_embed_ureq::{Error, ExecuteError};

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
    /// The emulator could not run.
    Emulator(String, u8),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Call(error)
    }
}

impl From<pbi_embed_ureq::error::Error> for Failure {
    fn from(error: pbi_embed_ureq::error::Error) -> Self {
        Self::Call(ExecuteError::Service(error))
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
            Self::Call(error) => {
                eprintln!("error: {error}");
                if let Some(hint) = error.service().and_then(|e| e.as_api()).and_then(|e| e.hint()) {
                    eprintln!("hint: {hint}");
                }
                exit_code(error)
            }
        };
        ExitCode::from(code)
    }
}

/// The exit code of a failed call.
fn exit_code(error: &Error) -> u8 {
    match error {
        ExecuteError::Service(
            pbi_embed_ureq::error::Error::InvalidInput { .. }
            | pbi_embed_ureq::error::Error::RlsPreflight { .. },
        ) => USAGE,
        ExecuteError::Service(pbi_embed_ureq::error::Error::Api(_)) => POWER_BI,
        ExecuteError::Service(pbi_embed_ureq::error::Error::Entra(_)) | ExecuteError::TokenSource(_) => {
            SIGN_IN
        }
        _ => NETWORK,
    }
}
