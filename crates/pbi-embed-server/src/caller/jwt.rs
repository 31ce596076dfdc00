//! Bearer JWTs from an OpenID Connect provider: keys from the issuer's discovery document
//! and JWKS, cached, fetched again when a token names a key not seen yet (at most once
//! per the issuer's `jwks_refetch_seconds`); RS256, PS256 and ES256 only (`none` and HMAC refused);
//! issuer, audience, expiry and not-before checked with the configured leeway.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

use super::{Caller, MAX_ROLES, Refusal, checked_name};
use crate::config::{CustomerFrom, Issuer, Unmapped, is_loopback_http};

/// Keys are fetched again after this long even when every key id is known.
const KEYS_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest token read.
pub(crate) const MAX_TOKEN: usize = 16 * 1024;
/// The most verified tokens remembered (a browser sends the same token for its hour).
const MAX_VERIFIED: usize = 10_000;
/// The largest discovery document or key set read.
const MAX_DOCUMENT: usize = 256 * 1024;
/// How long fetching a document may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A key and the algorithms it may verify.
struct Key {
    key: DecodingKey,
    algorithms: &'static [Algorithm],
}

/// What the broker holds of an issuer's keys.
#[derive(Default)]
struct Keys {
    /// The keys of the last fetch that succeeded.
    by_id: HashMap<String, Key>,
    /// When that fetch was.
    fetched: Option<Instant>,
    /// When the last attempt failed, if it did (cleared by the next success).
    failed: Option<Instant>,
}

impl Keys {
    /// Whether `kid` is among keys fetched less than [`KEYS_TTL`] ago.
    fn hold(&self, kid: &str) -> bool {
        self.by_id.contains_key(kid) && self.fetched.is_some_and(|at| at.elapsed() < KEYS_TTL)
    }

    /// The last attempt to fetch the keys, whether it succeeded or not.
    fn last_attempt(&self) -> Option<Instant> {
        self.failed.or(self.fetched)
    }
}

/// One identity provider: its settings and its keys.
pub(crate) struct IssuerKeys {
    pub(crate) config: Issuer,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// Held while fetching, so that many requests with a new key id fetch once.
    fetching: Mutex<()>,
    /// Tokens already verified, by their SHA-256: the caller, until the token's `exp`.
    verified: std::sync::Mutex<HashMap<[u8; 32], (Caller, SystemTime)>>,
}

impl IssuerKeys {
    pub(crate) fn new(config: Issuer, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            keys: RwLock::new(Keys::default()),
            fetching: Mutex::new(()),
            verified: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Whether `token` names this issuer (its `iss`, unverified: only to pick the issuer
    /// whose keys then verify it).
    pub(crate) fn claims_to_be(&self, unverified_iss: &str) -> bool {
        self.config.issuer == unverified_iss
    }

    /// The caller `token` authenticates. A token verified before is not verified again
    /// until its `exp` (its signature, issuer and audience cannot have changed).
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Caller, Refusal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = SystemTime::now();
        if let Some((caller, until)) = self.remembered().get(&digest)
            && now < *until
        {
            return Ok(caller.clone());
        }
        let claims = self.verify(token).await?;
        let caller = self.caller(&claims)?;
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let until = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(exp))
            .unwrap_or(now);
        let mut verified = self.remembered();
        if verified.len() >= MAX_VERIFIED {
            verified.retain(|_, (_, until)| now < *until);
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
        }
        verified.insert(digest, (caller.clone(), until));
        Ok(caller)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Caller, SystemTime)>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn verify(&self, token: &str) -> Result<Map<String, Value>, Refusal> {
        let refuse = |why: &str| Refusal::Unauthenticated(format!("the bearer token {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("is not a JWT"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256) {
            return Err(refuse(&format!(
                "is signed with {:?}; only RS256, PS256 and ES256 are accepted",
                header.alg
            )));
        }
        let kid = header.kid.ok_or_else(|| refuse("names no key (kid)"))?;
        if !self.keys.read().await.hold(&kid) {
            self.refetch(&kid).await;
        }
        let keys = self.keys.read().await;
        let Some(key) = keys.by_id.get(&kid) else {
            // The provider may publish the key; the broker cannot tell while it cannot
            // reach it. That is the broker's trouble, not the caller's (who would
            // otherwise be told to sign in again).
            if keys.failed.is_some() {
                return Err(Refusal::Unavailable {
                    reason: format!(
                        "the signing keys of issuer {} cannot be fetched; try again later",
                        self.config.issuer
                    ),
                    retry_after: self.config.refetch_after,
                });
            }
            return Err(refuse("is signed with a key the issuer does not publish"));
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(refuse(&format!(
                "uses {:?} with a key not made for it",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway.as_secs();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            refuse(match e.kind() {
                K::ExpiredSignature => "has expired",
                K::ImmatureSignature => "is not valid yet (nbf)",
                K::InvalidAudience => "is for another audience",
                K::InvalidIssuer => "is from another issuer",
                K::InvalidSignature => "has an invalid signature",
                K::MissingRequiredClaim(_) => "lacks exp, iss or aud",
                _ => "is not valid",
            })
        })?;
        Ok(data.claims)
    }

    /// Fetches the keys again, unless the last attempt was less than the issuer's
    /// `refetch_after` ago (a flood of made-up key ids, or a provider that is down, costs
    /// one fetch per interval). Keys fetched before stay in use while fetching fails.
    async fn refetch(&self, kid: &str) {
        let _fetching = self.fetching.lock().await;
        {
            let keys = self.keys.read().await;
            let recent = keys
                .last_attempt()
                .is_some_and(|at| at.elapsed() < self.config.refetch_after);
            if keys.hold(kid) || recent {
                return;
            }
        }
        match self.fetch_keys().await {
            Ok(by_id) => {
                tracing::info!(issuer = %self.config.issuer, keys = by_id.len(), "fetched the issuer's signing keys");
                *self.keys.write().await = Keys {
                    by_id,
                    fetched: Some(Instant::now()),
                    failed: None,
                };
            }
            Err(error) => {
                tracing::warn!(issuer = %self.config.issuer, %error, "cannot fetch the issuer's signing keys");
                self.keys.write().await.failed = Some(Instant::now());
            }
        }
    }

    /// The discovery document's `jwks_uri`, then the keys there.
    async fn fetch_keys(&self) -> Result<HashMap<String, Key>, String> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let document: Value = self.get_json(&discovery).await?;
        if document.get("issuer").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err("the discovery document names another issuer".into());
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no jwks_uri")?;
        let set: JwkSet = serde_json::from_value(self.get_json(jwks_uri).await?)
            .map_err(|e| format!("the key set is not a JWKS: {e}"))?;
        let mut by_id = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(algorithms)) = (&jwk.common.key_id, algorithms_for(&jwk.algorithm)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                by_id.insert(kid.clone(), Key { key, algorithms });
            }
        }
        Ok(by_id)
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let parsed = url::Url::parse(url).map_err(|_| format!("{url} is not a URL"))?;
        if parsed.scheme() != "https" && !is_loopback_http(&parsed) {
            return Err(format!("{url} is not https"));
        }
        let mut response = self
            .http
            .get(parsed)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(format!("{url} sent more than {MAX_DOCUMENT} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url} sent invalid JSON: {e}"))
    }

    /// The caller the verified `claims` describe.
    fn caller(&self, claims: &Map<String, Value>) -> Result<Caller, Refusal> {
        let config = &self.config;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
        let customer = match &config.customer {
            CustomerFrom::Fixed(customer) => customer.clone(),
            CustomerFrom::Claim(claim) => text(claim)
                .ok_or_else(|| {
                    Refusal::Forbidden(format!("the token has no {claim} claim naming a customer"))
                })?
                .to_owned(),
        };
        let username = config
            .username_claims
            .iter()
            .find_map(|claim| text(claim))
            .map(|name| checked_name("username", name))
            .transpose()?;
        let values: Vec<&str> = match claims.get(&config.roles_claim) {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut roles: Vec<String> = Vec::new();
        for value in values {
            let mapped: Vec<String> = match (config.roles.get(value), config.unmapped_roles) {
                (Some(mapped), _) => mapped.clone(),
                (None, Unmapped::Drop) => Vec::new(),
                (None, Unmapped::Keep) => vec![checked_name("role", value)?],
                (None, Unmapped::Refuse) => {
                    return Err(Refusal::Forbidden(format!(
                        "the {} claim holds a value with no mapping in the configuration",
                        config.roles_claim
                    )));
                }
            };
            for role in mapped {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
        }
        if roles.len() > MAX_ROLES {
            return Err(Refusal::Forbidden(format!("more than {MAX_ROLES} roles")));
        }
        let subject = text("sub").unwrap_or("?");
        Ok(Caller {
            id: format!("jwt:{}#{subject}", config.issuer),
            customer,
            username,
            roles,
        })
    }
}

/// The algorithms a JWK's key may verify: RSA keys RS256 and PS256, P-256 keys ES256;
/// other keys (HMAC secrets, other curves) none.
fn algorithms_for(parameters: &AlgorithmParameters) -> Option<&'static [Algorithm]> {
    match parameters {
        AlgorithmParameters::RSA(_) => Some(&[Algorithm::RS256, Algorithm::PS256]),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Some(&[Algorithm::ES256])
        }
        _ => None,
    }
}

/// The `iss` a token says it has, unverified (to choose which issuer verifies it).
pub(crate) fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn issuer(unmapped: Unmapped) -> IssuerKeys {
        let config = Issuer {
            issuer: "https://login.example/v2.0".into(),
            audience: "api://broker".into(),
            username_claims: vec!["preferred_username".into(), "upn".into(), "email".into()],
            roles_claim: "groups".into(),
            roles: BTreeMap::from([(
                "g-sales".to_owned(),
                vec!["Sales".to_owned(), "Viewer".to_owned()],
            )]),
            unmapped_roles: unmapped,
            customer: CustomerFrom::Claim("tid".into()),
            leeway: Duration::from_secs(60),
            refetch_after: Duration::from_secs(30),
        };
        IssuerKeys::new(config, reqwest::Client::new())
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    /// An issuer holding these keys, fetched just now (nothing is fetched again).
    async fn holding(keys: Vec<(&str, Key)>) -> IssuerKeys {
        let issuer = issuer(Unmapped::Drop);
        *issuer.keys.write().await = Keys {
            by_id: keys.into_iter().map(|(kid, key)| (kid.to_owned(), key)).collect(),
            fetched: Some(Instant::now()),
            failed: None,
        };
        issuer
    }

    fn token(alg: Algorithm, kid: &str, key: &jsonwebtoken::EncodingKey) -> String {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.to_owned());
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({
            "iss": "https://login.example/v2.0", "aud": "api://broker", "exp": now + 600,
            "nbf": now, "tid": "contoso", "upn": "alice@contoso.com", "sub": "s1",
        });
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    #[tokio::test]
    async fn rs256_ps256_and_es256_verify_and_each_key_serves_only_its_own_family() {
        use aws_lc_rs::encoding::AsDer as _;
        use aws_lc_rs::signature::KeyPair as _;
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // RSA: the private key as PKCS#1 (what the signer takes), the public one as a JWK.
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = rsa.as_der().unwrap();
        let pkcs8 = pkcs8.as_ref();
        // PrivateKeyInfo: version (3 bytes) and algorithm (15) after a 4-byte head, then
        // the RSAPrivateKey in an OCTET STRING with a 4-byte head.
        assert_eq!((pkcs8[22], pkcs8[23]), (0x04, 0x82), "an RSA-2048 PKCS#8 layout");
        let rsa_signer = jsonwebtoken::EncodingKey::from_rsa_der(&pkcs8[26..]);
        let public = rsa.public_key();
        let (n, e) = (
            URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        );
        let rsa_key = Key {
            key: DecodingKey::from_rsa_components(&n, &e).unwrap(),
            algorithms: &[Algorithm::RS256, Algorithm::PS256],
        };
        // P-256.
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ec_signer = jsonwebtoken::EncodingKey::from_ec_der(&ec.serialize_der());
        let point = ec.public_key_raw();
        let ec_key = Key {
            key: DecodingKey::from_ec_components(
                &URL_SAFE_NO_PAD.encode(&point[1..33]),
                &URL_SAFE_NO_PAD.encode(&point[33..65]),
            )
            .unwrap(),
            algorithms: &[Algorithm::ES256],
        };
        let issuer = holding(vec![("rsa", rsa_key), ("ec", ec_key)]).await;
        for (alg, kid, signer) in [
            (Algorithm::RS256, "rsa", &rsa_signer),
            (Algorithm::PS256, "rsa", &rsa_signer),
            (Algorithm::ES256, "ec", &ec_signer),
        ] {
            let caller = issuer.authenticate(&token(alg, kid, signer)).await;
            assert_eq!(caller.map(|c| c.customer), Ok("contoso".to_owned()), "{alg:?}");
        }
        // An EC signature under the RSA key's id, and HMAC keyed with anything: refused.
        let wrong_family = issuer
            .authenticate(&token(Algorithm::ES256, "rsa", &ec_signer))
            .await;
        assert!(matches!(wrong_family, Err(Refusal::Unauthenticated(m)) if m.contains("not made for it")));
        let hmac = jsonwebtoken::EncodingKey::from_secret(n.as_bytes());
        let hs256 = issuer.authenticate(&token(Algorithm::HS256, "rsa", &hmac)).await;
        assert!(
            matches!(hs256, Err(Refusal::Unauthenticated(m)) if m.contains("only RS256, PS256 and ES256"))
        );
    }

    /// A token whose header names RS256 and `kid`: enough to reach the key lookup.
    fn unsigned_token(kid: &str) -> String {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()))
    }

    /// An identity provider on loopback that is down: every request is answered 500, and
    /// counted. Its issuer URL, and the count.
    async fn provider_that_is_down() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut head = [0; 1024];
                let _ = stream.read(&mut head).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        (format!("http://127.0.0.1:{port}/tenant/v2.0"), asked)
    }

    #[tokio::test]
    async fn keys_that_cannot_be_fetched_are_503_naming_the_issuer_and_asked_for_once_per_interval() {
        use std::sync::atomic::Ordering;
        let (url, asked) = provider_that_is_down().await;
        let mut down = issuer(Unmapped::Drop);
        down.config.issuer = url;
        for _ in 0..3 {
            match down.authenticate(&unsigned_token("k1")).await {
                Err(Refusal::Unavailable { reason, retry_after }) => {
                    assert!(reason.contains(&down.config.issuer), "{reason}");
                    assert_eq!(retry_after, Duration::from_secs(30));
                }
                other => panic!("not 503: {other:?}"),
            }
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1, "one fetch per refetch interval");

        // Keys fetched, the key id not among them: the caller's token is at fault (401).
        let up = holding(vec![]).await;
        let unknown = up.authenticate(&unsigned_token("k1")).await;
        assert!(
            matches!(&unknown, Err(Refusal::Unauthenticated(m)) if m.contains("does not publish")),
            "{unknown:?}"
        );
    }

    #[tokio::test]
    async fn a_key_held_is_used_without_asking_the_provider_again() {
        use std::sync::atomic::Ordering;
        let (url, asked) = provider_that_is_down().await;
        let key = Key {
            key: DecodingKey::from_secret(b"not the point"),
            algorithms: &[Algorithm::RS256],
        };
        let mut issuer = holding(vec![("k1", key)]).await;
        issuer.config.issuer = url;
        // Fetched a minute ago: past the refetch interval (30 s), within a day.
        let a_minute_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        issuer.keys.write().await.fetched = Some(a_minute_ago);

        let _ = issuer.authenticate(&unsigned_token("k1")).await;
        assert_eq!(asked.load(Ordering::SeqCst), 0, "k1 is held: not fetched again");
        // The same keys, a key id not among them: the provider is asked.
        let _ = issuer.authenticate(&unsigned_token("k2")).await;
        assert_eq!(asked.load(Ordering::SeqCst), 1, "k2 is not held: fetched");
    }

    #[test]
    fn claims_map_to_the_username_roles_and_customer_as_configured() {
        let token = claims(serde_json::json!({
            "upn": "alice@contoso.com", "email": "other@contoso.com", "tid": "contoso",
            "groups": ["g-sales", "g-other"], "sub": "s1",
        }));
        let caller = issuer(Unmapped::Drop).caller(&token).unwrap();
        assert_eq!(
            caller.username.as_deref(),
            Some("alice@contoso.com"),
            "upn before email"
        );
        assert_eq!(caller.customer, "contoso");
        assert_eq!(
            caller.roles,
            ["Sales", "Viewer"],
            "mapped; the unmapped group dropped"
        );
        let kept = issuer(Unmapped::Keep).caller(&token).unwrap();
        assert_eq!(kept.roles, ["Sales", "Viewer", "g-other"]);
        assert!(matches!(
            issuer(Unmapped::Refuse).caller(&token),
            Err(Refusal::Forbidden(_))
        ));
        let no_customer = claims(serde_json::json!({"upn": "a"}));
        assert!(
            matches!(issuer(Unmapped::Drop).caller(&no_customer), Err(Refusal::Forbidden(m)) if m.contains("tid"))
        );
    }
}
