//! Who is calling: a bearer JWT from the web app's identity provider ([`jwt`]), an API
//! key of a trusted backend ([`api_key`]), or, in development mode on loopback only, the
//! query string. The customer and the RLS identity come from here, never from the
//! browser's word.

pub(crate) mod api_key;
pub(crate) mod jwt;

use std::fmt;

/// A caller, authenticated.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who, for logs, metrics and the rate limit: `key:{name}`, `jwt:{issuer}#{sub}` or
    /// `development`.
    pub id: String,
    /// The customer it belongs to.
    pub customer: String,
    /// The RLS username, when its credentials name one.
    pub username: Option<String>,
    /// The RLS roles (mapped), possibly none.
    pub roles: Vec<String>,
}

impl fmt::Debug for Caller {
    // The username is personal data: logs name the caller by id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("id", &self.id)
            .field("customer", &self.customer)
            .field("roles", &self.roles.len())
            .finish_non_exhaustive()
    }
}

/// Why a caller was not let in: 401 (who are you?), 403 (not this) or 503 (cannot tell
/// now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials, or credentials that do not hold (401).
    Unauthenticated(String),
    /// Authenticated, but refused (403).
    Forbidden(String),
    /// The credentials cannot be checked now: the identity provider's signing keys
    /// cannot be fetched (503, with `Retry-After`).
    Unavailable {
        /// What cannot be reached, naming the issuer.
        reason: String,
        /// When the broker tries the provider again.
        retry_after: std::time::Duration,
    },
}

/// The longest username or role taken from a caller.
pub(crate) const MAX_NAME: usize = 256;
/// The most roles taken from a caller (Power BI's limit per identity).
pub(crate) const MAX_ROLES: usize = 50;

/// `name` as an RLS username or role: 1 to 256 characters, no control characters.
pub(crate) fn checked_name(what: &str, name: &str) -> Result<String, Refusal> {
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Refusal::Forbidden(format!(
            "the {what} must be 1 to {MAX_NAME} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}
