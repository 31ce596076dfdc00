//! Embed tokens the emulator mints: signed, so a forged or altered one is refused, and
//! remembered, so a minted embed token can be looked up again. (Access tokens are JWTs:
//! [`crate::access_token`].)
//!
//! Format: `EMU1.<base64url payload>.<base64url HMAC-SHA256>`, keyed with a random key
//! per emulator instance. The payload is JSON; nothing secret is in it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "EMU1";
/// How many minted embed tokens are remembered; the oldest are forgotten first.
const MAX_REMEMBERED: usize = 200_000;
/// How many bytes of minted tokens' records are remembered, at most (identities with
/// large custom data count for what they hold).
const MAX_REMEMBERED_BYTES: usize = 64 * 1024 * 1024;

/// What a token says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "typ", rename_all = "camelCase")]
pub enum Claims {
    /// A Power BI embed token.
    Embed {
        /// The token id.
        tid: String,
        /// Expiry, in milliseconds since the Unix epoch.
        exp: u64,
    },
}

impl Claims {
    /// The expiry instant.
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        let Self::Embed { exp, .. } = self;
        SystemTime::UNIX_EPOCH + Duration::from_millis(*exp)
    }
}

/// Signs and verifies tokens.
pub(crate) struct Signer {
    key: [u8; 32],
}

impl Signer {
    pub(crate) fn random() -> Self {
        let mut key = [0u8; 32];
        key.iter_mut().for_each(|b| *b = fastrand::u8(..));
        Self { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    pub(crate) fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{PREFIX}.{payload}");
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The claims of a token this signer issued; `None` for anything else.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (prefix, payload) = signed.split_once('.')?;
        if prefix != PREFIX {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

/// An embed token the emulator minted, as the control routes show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedToken {
    /// `tokenId`.
    pub token_id: String,
    /// The operation that minted it, such as `Reports_GenerateTokenInGroup`.
    pub operation: String,
    /// The service principal (client id) that asked.
    pub client_id: String,
    /// The service principal profile it acted as, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
    /// `View`, `Edit` or `Create` (single-item routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_level: Option<String>,
    /// What the token grants access to.
    pub resources: Vec<Resource>,
    /// Workspaces the token may save or create reports in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_workspaces: Vec<String>,
    /// Whether Save As is allowed.
    pub allow_save_as: bool,
    /// The effective identities, as sent (identity blobs shown only as present).
    pub identities: Vec<IdentitySummary>,
    /// `lifetimeInMinutes` as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_in_minutes: Option<i64>,
    /// The expiry, RFC 3339.
    pub expiration: String,
    /// The expiry, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

impl MintedToken {
    /// About how many bytes the record holds.
    fn approximate_size(&self) -> usize {
        let strings: usize = self
            .identities
            .iter()
            .map(|i| {
                i.username.as_ref().map_or(0, String::len)
                    + i.custom_data.as_ref().map_or(0, String::len)
                    + i.roles
                        .iter()
                        .chain(&i.datasets)
                        .chain(&i.reports)
                        .map(String::len)
                        .sum::<usize>()
                    + 64
            })
            .sum();
        let resources: usize = self
            .resources
            .iter()
            .map(|r| r.id.len() + r.kind.len() + 32)
            .sum();
        size_of::<Self>() + strings + resources + 256
    }
}

/// One item an embed token grants access to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `report`, `dataset`, `dashboard` or `tile`.
    pub kind: String,
    /// Its id (lower case).
    pub id: String,
    /// Whether it may be edited (reports).
    #[serde(default)]
    pub editable: bool,
    /// XMLA permissions (datasets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmla_permissions: Option<String>,
}

/// An effective identity as a minted token remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySummary {
    /// `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `roles`.
    pub roles: Vec<String>,
    /// `datasets` (lower case).
    pub datasets: Vec<String>,
    /// `reports` (lower case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<String>,
    /// `customData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
    /// Whether an identity blob was sent (its value is never shown).
    pub has_identity_blob: bool,
}

/// The minted embed tokens, by token id, oldest forgotten first.
#[derive(Default)]
pub(crate) struct TokenStore {
    inner: Mutex<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    by_id: HashMap<String, MintedToken>,
    order: VecDeque<String>,
    bytes: usize,
}

impl TokenStore {
    pub(crate) fn insert(&self, token: MintedToken) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let size = token.approximate_size();
        while inner.order.len() >= MAX_REMEMBERED || inner.bytes.saturating_add(size) > MAX_REMEMBERED_BYTES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(forgotten) = inner.by_id.remove(&oldest) {
                inner.bytes = inner.bytes.saturating_sub(forgotten.approximate_size());
            }
        }
        inner.bytes = inner.bytes.saturating_add(size);
        inner.order.push_back(token.token_id.clone());
        inner.by_id.insert(token.token_id.clone(), token);
    }

    /// The bytes the remembered records hold, approximately.
    pub(crate) fn bytes(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .bytes
    }

    pub(crate) fn get(&self, token_id: &str) -> Option<MintedToken> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.by_id.get(&token_id.to_ascii_lowercase()).cloned()
    }
}

/// A new random GUID.
pub(crate) fn new_guid() -> String {
    let n = fastrand::u128(..);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let signer = Signer::random();
        let claims = Claims::Embed {
            tid: "t".into(),
            exp: 5,
        };
        let token = signer.sign(&claims);
        assert_eq!(signer.verify(&token), Some(claims));
        assert_eq!(Signer::random().verify(&token), None, "another instance's key");
        let mut forged = token.clone();
        forged.insert(7, 'x');
        assert_eq!(signer.verify(&forged), None);
        for junk in ["", ".", "EMU1..", "EMU1.a.b", "Bearer x", "EMU1.e30.AAAA"] {
            assert_eq!(signer.verify(junk), None, "{junk}");
        }
    }

    #[test]
    fn guids() {
        let g = new_guid();
        assert!(crate::fixture::is_guid(&g), "{g}");
        assert_ne!(new_guid(), g);
    }
}
