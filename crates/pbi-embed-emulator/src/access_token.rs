//! Entra ID access tokens as Entra issues them for an app: RS256 JWTs (v1.0 claims) signed
//! with a key the emulator makes at start and publishes at its `jwks_uri`, so code that
//! reads claims or checks signatures works against the emulator as against Entra.

use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The claims of an app-only access token for Power BI (Entra's v1.0 token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The resource: `https://analysis.windows.net/powerbi/api`.
    pub aud: String,
    /// `https://sts.windows.net/{tenant}/`.
    pub iss: String,
    /// The identity provider, the same as `iss` for an app.
    pub idp: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Not before, Unix seconds.
    pub nbf: u64,
    /// Expires, Unix seconds.
    pub exp: u64,
    /// The application (client) id.
    pub appid: String,
    /// How the app authenticated: `"1"` a secret, `"2"` a certificate.
    pub appidacr: String,
    /// The service principal's object id.
    pub oid: String,
    /// The subject: the object id, for an app.
    pub sub: String,
    /// The tenant.
    pub tid: String,
    /// A unique token id.
    pub uti: String,
    /// `"1.0"`.
    pub ver: String,
    /// `"app"`.
    pub idtyp: String,
}

/// Why an access token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a JWT signed with the emulator's key (or altered).
    Invalid,
    /// Signed, but for another audience or issuer.
    WrongAudience,
    /// Past its `exp`.
    Expired,
}

/// The signing key, its id and its self-signed certificate.
pub(crate) struct AccessTokenSigner {
    key: KeyPair,
    kid: String,
    certificate_der: Vec<u8>,
}

impl AccessTokenSigner {
    /// A new 2048-bit RSA key and a self-signed certificate for it.
    pub(crate) fn generate() -> Result<Self, String> {
        let (key, _, certificate) = rsa_certificate("accounts.accesscontrol.windows.net", None)?;
        let certificate_der = certificate.der().to_vec();
        // Entra's key id is the certificate's SHA-1 thumbprint, base64url; any stable,
        // unique id serves clients, which only match it.
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&certificate_der)[..20]);
        Ok(Self {
            key,
            kid,
            certificate_der,
        })
    }

    /// The signed token: `header.claims.signature`.
    pub(crate) fn sign(&self, claims: &AccessClaims) -> String {
        self.sign_value(&serde_json::to_value(claims).unwrap_or_default())
    }

    /// The key's id, as tokens' headers carry it.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// Any claims, signed with the published key (federated tokens the emulator issues).
    pub(crate) fn sign_value(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid, "x5t": self.kid});
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
        let signed = format!("{}.{}", encode(&header), encode(claims));
        let mut signature = vec![0; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        // Signing with a freshly generated key into a buffer of its modulus' size cannot
        // fail; an empty signature (refused on use) would show it if it ever did.
        if self
            .key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                signed.as_bytes(),
                &mut signature,
            )
            .is_err()
        {
            signature.clear();
        }
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The claims of a token this key signed (whatever they say).
    pub(crate) fn verify_value(&self, token: &str) -> Option<Value> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        let header: Value = decode_json(header).ok()?;
        if header.get("kid").and_then(Value::as_str) != Some(self.kid.as_str()) {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, self.public_key_der())
            .verify(signed.as_bytes(), &signature)
            .ok()?;
        decode_json(payload).ok()
    }

    /// The claims of a token this signer issued for `audience` that is valid at `now`.
    pub(crate) fn verify(
        &self,
        token: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<AccessClaims, Refusal> {
        let (signed, signature) = token.rsplit_once('.').ok_or(Refusal::Invalid)?;
        let (header, payload) = signed.split_once('.').ok_or(Refusal::Invalid)?;
        let header: Value = decode_json(header)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256")
            || header.get("kid").and_then(Value::as_str) != Some(self.kid.as_str())
        {
            return Err(Refusal::Invalid);
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Refusal::Invalid)?;
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, self.public_key_der())
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| Refusal::Invalid)?;
        let claims: AccessClaims = decode_json(payload)?;
        if claims.aud != audience {
            return Err(Refusal::WrongAudience);
        }
        if unix_seconds(now) >= claims.exp {
            return Err(Refusal::Expired);
        }
        Ok(claims)
    }

    /// The JSON Web Key Set at `jwks_uri`, as Entra publishes it.
    pub(crate) fn jwks(&self, issuer: &str) -> Value {
        let public = self.key.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(n),
            "e": URL_SAFE_NO_PAD.encode(e),
            "x5c": [STANDARD.encode(&self.certificate_der)],
            "issuer": issuer,
        }]})
    }

    fn public_key_der(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, Refusal> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| Refusal::Invalid)?;
    serde_json::from_slice(&bytes).map_err(|_| Refusal::Invalid)
}

/// A new RSA-2048 key and a self-signed certificate for `subject` (valid from and until
/// the times given, or rcgen's defaults): the key for signing, the key as rcgen holds it,
/// and the certificate.
fn rsa_certificate(
    subject: &str,
    validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
) -> Result<(KeyPair, rcgen::KeyPair, rcgen::Certificate), String> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| "cannot generate an RSA key")?;
    let pkcs8 = key.as_der().map_err(|_| "cannot encode the RSA key")?;
    let rcgen_key =
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_ref().into(), &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| format!("cannot load the RSA key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(Vec::new()).map_err(|e| e.to_string())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, subject);
    if let Some((not_before, not_after)) = validity {
        params.not_before = not_before;
        params.not_after = not_after;
    }
    let certificate = params.self_signed(&rcgen_key).map_err(|e| e.to_string())?;
    Ok((key, rcgen_key, certificate))
}

/// A new RSA-2048 key and a self-signed certificate for it, valid from `not_before` to
/// `not_after`, both PEM (the key PKCS#8): a client certificate to register on an app.
pub(crate) fn client_certificate(
    subject: &str,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> Result<(String, String), String> {
    let (_, key, certificate) = rsa_certificate(subject, Some((not_before, not_after)))?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// Whole seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The claims of a token issued now for `client_id` in `tenant`, valid for `lifetime`.
pub(crate) fn app_claims(tenant: &str, client_id: &str, resource: &str, lifetime: Duration) -> AccessClaims {
    let now = SystemTime::now();
    let iat = unix_seconds(now);
    let issuer = format!("https://sts.windows.net/{tenant}/");
    let oid = object_id(client_id);
    AccessClaims {
        aud: resource.to_owned(),
        iss: issuer.clone(),
        idp: issuer,
        iat,
        // Entra back-dates nbf by five minutes to allow for clock skew.
        nbf: iat.saturating_sub(300),
        exp: unix_seconds(crate::clock::later(now, lifetime)),
        appid: client_id.to_owned(),
        appidacr: "1".to_owned(),
        sub: oid.clone(),
        oid,
        tid: tenant.to_owned(),
        uti: URL_SAFE_NO_PAD.encode(fastrand::u128(..).to_le_bytes()),
        ver: "1.0".to_owned(),
        idtyp: "app".to_owned(),
    }
}

/// A stable object id for a service principal, derived from its client id.
pub(crate) fn object_id(client_id: &str) -> String {
    let digest = Sha256::digest(format!("oid:{}", client_id.to_ascii_lowercase()));
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCE: &str = "https://analysis.windows.net/powerbi/api";

    fn claims(lifetime: Duration) -> AccessClaims {
        app_claims("tenant", "client", RESOURCE, lifetime)
    }

    #[test]
    fn a_signed_token_verifies_and_carries_entra_claims() {
        let signer = AccessTokenSigner::generate().unwrap();
        let token = signer.sign(&claims(Duration::from_secs(60)));
        let verified = signer.verify(&token, RESOURCE, SystemTime::now()).unwrap();
        assert_eq!(verified.iss, "https://sts.windows.net/tenant/");
        assert_eq!(verified.appid, "client");
        assert_eq!(verified.sub, verified.oid);
        assert_eq!(verified.exp - verified.iat, 60);
    }

    #[test]
    fn altered_foreign_expired_and_misdirected_tokens_are_refused() {
        let signer = AccessTokenSigner::generate().unwrap();
        let other = AccessTokenSigner::generate().unwrap();
        let token = signer.sign(&claims(Duration::from_secs(60)));
        let now = SystemTime::now();
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.rsplit_once('.').unwrap();
        let mut forged = claims(Duration::from_secs(60));
        forged.appid = "someone-else".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let altered = format!("{head}.{forged_payload}.{signature}");
        assert_eq!(signer.verify(&altered, RESOURCE, now), Err(Refusal::Invalid));
        let foreign = other.sign(&claims(Duration::from_secs(60)));
        assert_eq!(signer.verify(&foreign, RESOURCE, now), Err(Refusal::Invalid));
        assert_eq!(
            signer.verify(&token, "https://graph.microsoft.com", now),
            Err(Refusal::WrongAudience)
        );
        let expired = signer.sign(&claims(Duration::ZERO));
        assert_eq!(signer.verify(&expired, RESOURCE, now), Err(Refusal::Expired));
        assert_eq!(signer.verify("not.a.jwt", RESOURCE, now), Err(Refusal::Invalid));
    }

    #[test]
    fn the_published_key_matches_the_signing_key() {
        let signer = AccessTokenSigner::generate().unwrap();
        let jwks = signer.jwks("issuer");
        let key = &jwks["keys"][0];
        assert_eq!(key["kid"], signer.kid.as_str());
        let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_eq!(key["e"], "AQAB");
        // Verifying with the published components, as a client would.
        let token = signer.sign(&claims(Duration::from_secs(60)));
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let components = signature::RsaPublicKeyComponents {
            n: n.as_slice(),
            e: &[1u8, 0, 1][..],
        };
        components
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                signed.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).unwrap(),
            )
            .unwrap();
    }

    #[test]
    fn object_ids_are_stable_guids() {
        let oid = object_id("ABC");
        assert_eq!(oid, object_id("abc"));
        assert_eq!(oid.len(), 36);
        assert_ne!(oid, object_id("abd"));
    }
}
