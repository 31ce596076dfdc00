//! Client assertions (`private_key_jwt`) as Entra ID checks them: the certificate named by
//! the header's thumbprint (`x5t` or `x5t#S256`, base64 or base64url, padded or not) must
//! be registered on the app and unexpired; the signature (RS256 or PS256) must verify; the
//! audience must be this token endpoint, `iss` and `sub` the client id, the time window
//! current (five minutes of skew allowed, float seconds accepted); a `jti` is used once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use crate::access_token::unix_seconds;
use crate::fixture::ServicePrincipal;
use crate::state::State;

/// The allowed clock skew, seconds.
const SKEW: u64 = 300;
/// At most this many `jti` values are remembered (the oldest expire first).
const MAX_REMEMBERED: usize = 100_000;

/// Why an assertion was refused: the AADSTS code and message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) aadsts: u32,
    pub(crate) message: String,
}

fn refuse(aadsts: u32, message: impl Into<String>) -> Refusal {
    Refusal {
        aadsts,
        message: message.into(),
    }
}

/// The `jti` values already used, with their expiry.
#[derive(Default)]
pub(crate) struct UsedAssertions(Mutex<HashMap<String, u64>>);

impl UsedAssertions {
    /// Records `jti` until `exp`; false when it was already used.
    fn first_use(&self, jti: &str, exp: u64, now: u64) -> bool {
        let Ok(mut used) = self.0.lock() else { return false };
        if used.len() >= MAX_REMEMBERED {
            used.retain(|_, until| *until > now);
        }
        if used.len() >= MAX_REMEMBERED {
            return false;
        }
        used.insert(jti.to_owned(), exp).is_none()
    }
}

/// Decodes a thumbprint however producers encode it.
fn thumbprint(text: &str) -> Option<Vec<u8>> {
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn decode_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// A time claim as seconds (integers or floats, as MSAL sends them).
fn seconds(claims: &Value, name: &str) -> Option<u64> {
    let value = claims.get(name)?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// Checks `assertion` from `principal` at the token endpoint whose path is `endpoint_path`
/// (`/{tenant}/oauth2/v2.0/token`).
pub(crate) fn verify(
    state: &State,
    assertion: &str,
    principal: &ServicePrincipal,
    endpoint_path: &str,
) -> Result<(), Refusal> {
    let used = &state.used_assertions;
    let malformed = || refuse(50_027, "Invalid JWT token. The token is malformed.");
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header_json = decode_part(header).ok_or_else(malformed)?;
    let claims = decode_part(payload).ok_or_else(malformed)?;
    // A token the emulator issued as an external identity provider: workload identity
    // federation, matched against the app's federated credentials.
    if header_json.get("kid").and_then(Value::as_str) == Some(state.access.kid())
        && header_json.get("x5t#S256").is_none()
    {
        let claims = state.access.verify_value(assertion).ok_or_else(|| {
            refuse(
                50_027,
                "Invalid JWT token. The federated token's signature does not verify.",
            )
        })?;
        return federated(&claims, principal);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed())?;
    let algorithm = match header_json.get("alg").and_then(Value::as_str) {
        Some("RS256") => webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        Some("PS256") => webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        other => {
            return Err(refuse(
                50_027,
                format!(
                    "Invalid JWT token. Unsupported algorithm {}.",
                    other.unwrap_or("(none)")
                ),
            ));
        }
    };
    let wanted: Vec<(Vec<u8>, bool)> = [("x5t#S256", true), ("x5t", false)]
        .iter()
        .filter_map(|(name, sha256)| {
            let text = header_json.get(*name)?.as_str()?;
            Some((thumbprint(text)?, *sha256))
        })
        .collect();
    if wanted.is_empty() {
        return Err(refuse(
            50_027,
            "Invalid JWT token. The token has no x5t or x5t#S256 header naming its certificate.",
        ));
    }
    let registered: Vec<CertificateDer<'static>> = state
        .certificates_of(&principal.client_id)
        .iter()
        .filter_map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).ok())
        .collect();
    let matches = |der: &CertificateDer<'_>| {
        wanted.iter().any(|(print, sha256)| {
            let algorithm = if *sha256 {
                &aws_lc_rs::digest::SHA256
            } else {
                &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY
            };
            aws_lc_rs::digest::digest(algorithm, der).as_ref() == print.as_slice()
        })
    };
    let Some(certificate) = registered.iter().find(|der| matches(der)) else {
        let shown = header_json
            .get("x5t#S256")
            .or_else(|| header_json.get("x5t"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(refuse(
            700_027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{shown}']"
            ),
        ));
    };
    let now = unix_seconds(SystemTime::now());
    if let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate)
        && !parsed.validity().is_valid_at(
            x509_parser::time::ASN1Time::from_timestamp(i64::try_from(now).unwrap_or(i64::MAX))
                .unwrap_or_else(|_| x509_parser::time::ASN1Time::now()),
        )
    {
        return Err(refuse(
            700_027,
            "Client assertion contains an invalid signature. [Reason - The key used is expired.]",
        ));
    }
    let signed = &assertion[..header.len() + 1 + payload.len()];
    let leaf = webpki::EndEntityCert::try_from(certificate).map_err(|_| malformed())?;
    leaf.verify_signature(algorithm, signed.as_bytes(), &signature)
        .map_err(|_| refuse(700_027, "Client assertion failed signature validation."))?;

    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    let audience_ok = claim("aud").is_some_and(|aud| {
        aud.starts_with("http")
            && aud
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('/'))
                .is_some_and(|(_, path)| format!("/{path}").eq_ignore_ascii_case(endpoint_path))
    });
    if !audience_ok {
        return Err(refuse(
            50_027,
            format!(
                "Invalid JWT token. The audience '{}' is not this token endpoint.",
                claim("aud").unwrap_or("")
            ),
        ));
    }
    let client_id = principal.client_id.as_str();
    if !claim("iss").is_some_and(|iss| iss.eq_ignore_ascii_case(client_id)) {
        return Err(refuse(
            50_027,
            "Invalid JWT token. The issuer is not the client id.",
        ));
    }
    if claim("sub") != claim("iss") {
        return Err(refuse(
            50_048,
            "Subject mismatches Issuer claim in the client assertion.",
        ));
    }
    let (nbf, exp) = (
        seconds(&claims, "nbf")
            .or_else(|| seconds(&claims, "iat"))
            .unwrap_or(0),
        seconds(&claims, "exp"),
    );
    let Some(exp) = exp else {
        return Err(refuse(50_027, "Invalid JWT token. The token has no exp claim."));
    };
    if nbf > now.saturating_add(SKEW) || exp.saturating_add(SKEW) <= now {
        return Err(refuse(
            700_024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}."
            ),
        ));
    }
    let Some(jti) = claim("jti").filter(|j| !j.is_empty()) else {
        return Err(refuse(50_027, "Invalid JWT token. The token has no jti claim."));
    };
    if !used.first_use(jti, exp.saturating_add(SKEW), now) {
        return Err(refuse(
            50_027,
            format!("Invalid JWT token. The assertion with jti '{jti}' was already used."),
        ));
    }
    Ok(())
}

/// The audience every federated credential of Entra takes.
pub(crate) const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The issuer of the federated tokens the emulator issues.
pub(crate) const FEDERATION_ISSUER: &str = "https://federation.emulator.pbi-embed.invalid";

/// A federated token (workload identity) against the app's federated credentials.
/// A federated token is reused until it rotates (Kubernetes keeps one for about an hour),
/// so its `jti` is not single-use.
fn federated(claims: &Value, principal: &ServicePrincipal) -> Result<(), Refusal> {
    let claim = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
    let advice = "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.";
    let (issuer, subject) = (claim("iss"), claim("sub"));
    let by_issuer: Vec<_> = principal
        .federated_credentials
        .iter()
        .filter(|c| c.issuer == issuer)
        .collect();
    if by_issuer.is_empty() {
        return Err(refuse(
            700_211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{issuer}'. {advice}"
            ),
        ));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let by_subject: Vec<_> = by_issuer.iter().filter(|c| c.subject == subject).collect();
    if by_subject.is_empty() {
        if by_issuer.iter().any(|c| c.subject.eq_ignore_ascii_case(subject)) {
            return Err(refuse(
                7_002_138,
                format!(
                    "The subject '{subject}' matches a federated identity record only when case is ignored: the match is case-sensitive."
                ),
            ));
        }
        return Err(refuse(
            700_213,
            format!(
                "No matching federated identity record found for presented assertion subject '{subject}'. {advice}"
            ),
        ));
    }
    if !by_subject
        .iter()
        .any(|c| c.audiences.iter().any(|a| audiences.contains(&a.as_str())))
    {
        return Err(refuse(
            700_212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'. {advice}",
                audiences.join(", ")
            ),
        ));
    }
    let now = unix_seconds(SystemTime::now());
    let exp = seconds(claims, "exp").unwrap_or(0);
    if exp.saturating_add(SKEW) <= now
        || seconds(claims, "nbf").is_some_and(|nbf| nbf > now.saturating_add(SKEW))
    {
        return Err(refuse(
            700_024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, expiry time of assertion {exp}."
            ),
        ));
    }
    Ok(())
}
