//! The error bodies the services answer with: Power BI's [`ApiError`] (with `pbi.error`
//! details) and Entra ID's OAuth [`EntraError`], each with the request id to quote.

use std::fmt;

use http::StatusCode;

use crate::wire::error::{ErrorKind, status_text};
use crate::wire::redact::Secrets;
use crate::wire::retry_after::RetryAfter;

/// `pbi.error`: Power BI's own structured error detail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PbiError {
    /// `pbi.error.code`.
    pub code: Option<String>,
    /// `pbi.error.parameters`, as name and value pairs.
    pub parameters: Vec<(String, String)>,
    /// `pbi.error.details`.
    pub details: Vec<PbiErrorDetail>,
    /// `pbi.error.exceptionCulprit`.
    pub exception_culprit: Option<i64>,
}

/// One entry of `pbi.error.details`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PbiErrorDetail {
    /// `code`, for example `DM_ErrorDetailNameCode_UnderlyingHResult`.
    pub code: Option<String>,
    /// `detail.type`.
    pub detail_type: Option<i64>,
    /// `detail.value`.
    pub value: Option<String>,
}

/// A Power BI error response: any status other than 2xx.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) pbi_error: Option<PbiError>,
    pub(crate) request_id: Option<String>,
    pub(crate) retry_after: Option<RetryAfter>,
    pub(crate) location: Option<String>,
    pub(crate) body_snippet: Option<String>,
}

impl ApiError {
    /// Removes every one of `secrets` from the text Power BI sent.
    pub(crate) fn redact(&mut self, secrets: &Secrets) {
        for text in [
            &mut self.code,
            &mut self.message,
            &mut self.location,
            &mut self.body_snippet,
        ]
        .into_iter()
        .flatten()
        {
            secrets.scrub(text);
        }
        if let Some(pbi) = &mut self.pbi_error {
            pbi.code.iter_mut().for_each(|text| secrets.scrub(text));
            for (name, value) in &mut pbi.parameters {
                secrets.scrub(name);
                secrets.scrub(value);
            }
            for detail in &mut pbi.details {
                detail
                    .code
                    .iter_mut()
                    .chain(&mut detail.value)
                    .for_each(|text| secrets.scrub(text));
            }
        }
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// `error.code`, for example `InvalidRequest` or `TokenExpired`.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
    /// `error.message`.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
    /// `error["pbi.error"]`, when present.
    #[must_use]
    pub fn pbi_error(&self) -> Option<&PbiError> {
        self.pbi_error.as_ref()
    }
    /// The `RequestId` response header: quote it to Microsoft support.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
    /// The `Retry-After` response header, when present and well formed.
    #[must_use]
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.retry_after
    }
    /// The start of the body, when it was not Power BI's JSON error shape.
    #[must_use]
    pub fn body_snippet(&self) -> Option<&str> {
        self.body_snippet.as_deref()
    }
    /// Whether this 403 is the embed-token quota of a shared capacity.
    #[must_use]
    pub fn is_quota_exceeded(&self) -> bool {
        self.status == StatusCode::FORBIDDEN
            && [self.message.as_deref(), self.body_snippet.as_deref()]
                .into_iter()
                .flatten()
                .any(|m| m.contains("exceeded the amount of embed token"))
    }

    /// The category of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self.status.as_u16() {
            401 => ErrorKind::NotAuthorized,
            403 if self.code.as_deref() == Some("TokenExpired") => ErrorKind::TokenExpired,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            400 if self.is_rls_message() => ErrorKind::RlsIdentity,
            408 => ErrorKind::RequestTimeout,
            429 => ErrorKind::Throttled,
            400..=499 => ErrorKind::BadRequest,
            500..=599 => ErrorKind::ServerError,
            _ => ErrorKind::UnreadableResponse,
        }
    }

    /// A short suggestion of what to check, for the errors whose cause is usually set-up.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self.kind() {
            ErrorKind::NotAuthorized => Some(
                "check that the tenant setting allows service principals to use Power BI APIs \
                 and that the principal is a member of the workspace",
            ),
            ErrorKind::TokenExpired => Some("sign in to Entra ID again and retry"),
            ErrorKind::Forbidden if self.is_quota_exceeded() => {
                Some("the shared-capacity embed token quota is used up; assign the workspace to a capacity")
            }
            ErrorKind::RlsIdentity => Some(
                "check the dataset's isEffectiveIdentityRequired and isEffectiveIdentityRolesRequired \
                 flags and send an identity (with roles) only where they ask for one",
            ),
            ErrorKind::NotFound => Some("check the workspace and item ids"),
            _ => None,
        }
    }

    fn is_rls_message(&self) -> bool {
        self.message
            .as_deref()
            .is_some_and(|m| m.contains("effective identity") || m.contains("multiple identities"))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Power BI returned {}", status_text(self.status))?;
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => write!(f, " {code}: {message}")?,
            (Some(code), None) => write!(f, " {code}")?,
            (None, Some(message)) => write!(f, ": {message}")?,
            (None, None) => {
                if let Some(snippet) = &self.body_snippet {
                    write!(f, ": {snippet}")?;
                }
            }
        }
        if let Some(location) = &self.location {
            write!(f, " (a redirect to {location}, not followed)")?;
        }
        match &self.request_id {
            Some(id) => write!(f, " (RequestId {id})"),
            None => f.write_str(" (no RequestId)"),
        }
    }
}

/// An Entra ID token endpoint error (OAuth 2.0 error response).
#[derive(Clone, Debug)]
pub struct EntraError {
    pub(crate) status: StatusCode,
    pub(crate) error: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) error_codes: Vec<i64>,
    pub(crate) trace_id: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) retry_after: Option<RetryAfter>,
    pub(crate) body_snippet: Option<String>,
}

impl EntraError {
    /// Removes every one of `secrets` from the text Entra ID (or an identity endpoint)
    /// sent.
    pub(crate) fn redact(&mut self, secrets: &Secrets) {
        for text in [
            &mut self.error,
            &mut self.description,
            &mut self.trace_id,
            &mut self.correlation_id,
            &mut self.body_snippet,
        ]
        .into_iter()
        .flatten()
        {
            secrets.scrub(text);
        }
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The OAuth `error`, for example `invalid_client`.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    /// `error_description`, which starts with the AADSTS code.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// `error_codes`, for example `[7000215]` for an invalid client secret.
    #[must_use]
    pub fn error_codes(&self) -> &[i64] {
        &self.error_codes
    }
    /// The `AADSTS…` code at the start of the description, or built from `error_codes`.
    #[must_use]
    pub fn aadsts_code(&self) -> Option<String> {
        let from_description = self.description.as_deref().and_then(|d| {
            let code: String = d
                .strip_prefix("AADSTS")?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (!code.is_empty()).then(|| format!("AADSTS{code}"))
        });
        from_description.or_else(|| self.error_codes.first().map(|c| format!("AADSTS{c}")))
    }
    /// `trace_id`.
    #[must_use]
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }
    /// `correlation_id`.
    #[must_use]
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }
    /// The `x-ms-request-id` response header.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
    /// The `Retry-After` response header, when present and well formed.
    #[must_use]
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.retry_after
    }
    /// The start of the body, when it was not the OAuth JSON error shape.
    #[must_use]
    pub fn body_snippet(&self) -> Option<&str> {
        self.body_snippet.as_deref()
    }
    /// What to check, for the usual AADSTS codes.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        let code = self.aadsts_code()?;
        Some(match code.as_str() {
            "AADSTS7000215" | "AADSTS7000222" => {
                "the client secret is wrong or has expired: create a new one in the app registration"
            }
            "AADSTS700016" => "no app with that client id in this tenant: check the client id and the tenant",
            "AADSTS90002" => "the tenant does not exist: check the tenant id or domain",
            "AADSTS70011" => "the scope is not valid: use the cloud's …/powerbi/api/.default scope",
            "AADSTS700027" | "AADSTS700024" => {
                "the client assertion was refused: check the certificate, its thumbprint and the clock"
            }
            _ => return None,
        })
    }

    /// The category of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self.status.as_u16() {
            408 => ErrorKind::RequestTimeout,
            429 => ErrorKind::Throttled,
            500..=599 => ErrorKind::ServerError,
            400..=499 => ErrorKind::SignIn,
            _ => ErrorKind::UnreadableResponse,
        }
    }
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entra ID sign-in failed with {}", status_text(self.status))?;
        if let Some(error) = &self.error {
            write!(f, " {error}")?;
        }
        // The description repeats the trace and correlation ids on later lines.
        match self
            .description
            .as_deref()
            .and_then(|d| d.lines().find(|l| !l.is_empty()))
        {
            Some(first_line) => write!(f, ": {first_line}")?,
            None => {
                if let (None, Some(snippet)) = (&self.error, &self.body_snippet) {
                    write!(f, ": {snippet}")?;
                }
            }
        }
        let ids: Vec<String> = [
            self.trace_id.as_ref().map(|t| format!("trace ID {t}")),
            self.correlation_id
                .as_ref()
                .map(|c| format!("correlation ID {c}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !ids.is_empty() {
            write!(f, " ({})", ids.join(", "))?;
        }
        Ok(())
    }
}
