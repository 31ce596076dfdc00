//! The emulator as the callers' identity provider too: tokens for a web app's users
//! (username, roles, tenant, audience, lifetime), signed with the key its discovery
//! document publishes, so a broker checks them against the emulator as against Entra ID.
//!
//! The issuer is `{base}/{tenant}/v2.0`; its discovery document is at
//! `{issuer}/.well-known/openid-configuration`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::access_token::{AccessTokenSigner, unix_seconds};
use crate::clock::later;
use crate::state::State;

/// What a user token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserToken {
    /// `preferred_username`.
    pub username: String,
    /// `roles`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `tid`: the user's tenant (any text; the fixture's tenant by default).
    #[serde(default)]
    pub tenant: Option<String>,
    /// `aud`: the app the token is for.
    pub audience: String,
    /// Seconds until `exp`; negative: expired that long ago.
    pub lifetime_seconds: i64,
    /// Seconds until `nbf` (0: valid now; negative: valid since then).
    #[serde(default)]
    pub not_before_seconds: i64,
}

impl UserToken {
    /// A token for `username`, for `audience`, valid for an hour.
    #[must_use]
    pub fn new(username: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            roles: Vec::new(),
            tenant: None,
            audience: audience.into(),
            lifetime_seconds: 3600,
            not_before_seconds: 0,
        }
    }
}

/// The issuer of user tokens: `{base}/{fixture tenant}/v2.0`.
pub(crate) fn issuer(state: &State) -> String {
    format!("{}/{}/v2.0", state.base_url, state.fixture.tenant.id)
}

/// The signed token.
pub(crate) fn issue(state: &State, token: &UserToken, now: SystemTime) -> String {
    let now_s = unix_seconds(now);
    let tenant = token
        .tenant
        .clone()
        .unwrap_or_else(|| state.fixture.tenant.id.clone());
    let subject = format!("user-{:016x}", fxhash(&token.username));
    let claims = json!({
        "iss": issuer(state),
        "aud": token.audience,
        "sub": subject,
        "oid": subject,
        "tid": tenant,
        "preferred_username": token.username,
        "name": token.username,
        "roles": token.roles,
        "iat": now_s,
        "nbf": unix_seconds(offset(now, token.not_before_seconds)),
        "exp": unix_seconds(offset(now, token.lifetime_seconds)),
        "ver": "2.0",
    });
    let rotated = state
        .user_key
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    match rotated {
        Some(key) => key.sign_value(&claims),
        None => state.access.sign_value(&claims),
    }
}

/// Signs users' tokens from now on with a new key, published beside the old one: a
/// relying party that meets the new `kid` must fetch the keys again. Its key id.
///
/// # Errors
/// When no key can be generated.
pub(crate) fn rotate(state: &State) -> Result<String, String> {
    let key = std::sync::Arc::new(AccessTokenSigner::generate()?);
    let kid = key.kid().to_owned();
    *state
        .user_key
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
    Ok(kid)
}

/// The JSON Web Key Set: the access-token key, and the users' key once rotated.
pub(crate) fn jwks(state: &State, issuer: &str) -> serde_json::Value {
    let mut set = state.access.jwks(issuer);
    let rotated = state
        .user_key
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let (Some(key), Some(keys)) = (
        rotated,
        set.get_mut("keys").and_then(serde_json::Value::as_array_mut),
    ) && let Some(serde_json::Value::Array(more)) = key.jwks(issuer).get("keys").cloned()
    {
        keys.extend(more);
    }
    set
}

/// `now` moved by `seconds`, either way, saturating.
fn offset(now: SystemTime, seconds: i64) -> SystemTime {
    let by = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        later(now, by)
    } else {
        now.checked_sub(by).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// A stable, non-cryptographic hash: the same user gets the same subject.
fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
