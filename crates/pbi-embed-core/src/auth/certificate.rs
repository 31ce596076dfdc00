//! Sign-in with a client certificate: the client-credentials grant with a
//! `client_assertion`, a JWT the app signs with its certificate's private key (RFC 7523,
//! Entra's `private_key_jwt`). Signing is computation, so it lives here; reading the
//! certificate file is the caller's.
//!
//! The assertion's header names the certificate by its SHA-256 thumbprint (`x5t#S256`)
//! and, for RS256, also by its SHA-1 thumbprint (`x5t`), which is what Entra matches in
//! practice (Azure's SDKs disagree on the rest); its claims are `aud` (the token
//! endpoint), `iss` = `sub` (the client id), a unique `jti`, and `nbf`/`iat`/`exp` ten
//! minutes apart. A new one is signed at every sign-in.
//!
//! ```no_run
//! use pbi_embed_core::ClientCertificate;
//!
//! // One PEM file with the certificate and its (unencrypted, RSA) private key, as
//! // AZURE_CLIENT_CERTIFICATE_PATH names it.
//! let pem = std::fs::read_to_string("client.pem")?;
//! let certificate = ClientCertificate::from_pem(&pem, &pem)?;
//! println!("register this thumbprint: {}", certificate.thumbprint_sha256());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use crate::wire::error::ExchangeError;
use crate::wire::secret::ClientSecret;

/// How long an assertion is valid.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The signature algorithm of the assertion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, with both `x5t` and `x5t#S256` (what MSAL sends
    /// when given a thumbprint, and Azure's Rust SDK; the default).
    #[default]
    Rs256,
    /// RSASSA-PSS with SHA-256, with `x5t#S256` (what Entra's documentation shows).
    Ps256,
}

/// A certificate and its RSA private key, ready to sign client assertions. Debug shows
/// the thumbprint, never the key. A file read at every sign-in (so a rotated certificate
/// is picked up) is a [`CertificateFile`] instead.
///
/// ```no_run
/// use pbi_embed_core::{AssertionAlgorithm, ClientCertificate, ClientCredentials, ClientId, Credential, TenantId};
///
/// let pem = std::fs::read_to_string("/etc/app/client.pem")?; // the chain and the key
/// let certificate = ClientCertificate::from_pem(&pem, &pem)?.algorithm(AssertionAlgorithm::Ps256);
/// println!("register thumbprint {} on the app", certificate.thumbprint_sha1());
/// let credential = Credential::ServicePrincipal(ClientCredentials::with_certificate(
///     TenantId::parse("contoso.onmicrosoft.com")?,
///     ClientId::parse("00000000-0000-0000-0000-000000000001")?,
///     certificate,
/// ));
/// # let _ = credential;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientCertificate {
    key: Arc<KeyPair>,
    chain: Vec<CertificateDer<'static>>,
    sha1: String,
    sha256: String,
    algorithm: AssertionAlgorithm,
    send_chain: bool,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.sha256)
            .field("algorithm", &self.algorithm)
            .field("send_chain", &self.send_chain)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// The certificate (chain, leaf first) and its private key (PKCS#8 or PKCS#1, RSA,
    /// unencrypted), both PEM; they may be the same text (one file holding both).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] (`certificate`) naming what is missing or wrong, never
    /// quoting the key: no certificate, no key, a key that is not RSA or not valid, or a
    /// key that does not belong to the certificate.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, ExchangeError> {
        Self::from_pem_with_password(certificate_pem, key_pem, None)
    }

    /// As [`from_pem`](Self::from_pem), with a key that may be encrypted (PKCS#8
    /// `ENCRYPTED PRIVATE KEY`, PBES2) with `password`.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem); also a wrong or missing password.
    pub fn from_pem_with_password(
        certificate_pem: &str,
        key_pem: &str,
        password: Option<&str>,
    ) -> Result<Self, ExchangeError> {
        // A block with RFC 1421 headers (`Proc-Type`, `DEK-Info`) is not the PEM these
        // parsers read: say which block it is, and what to give instead.
        for text in [certificate_pem, key_pem] {
            if let Some(label) = block_with_headers(text) {
                return Err(invalid(&if label.contains("PRIVATE KEY") {
                    format!(
                        "has a {label} block in OpenSSL's traditional encrypted form (Proc-Type, DEK-Info), which is not supported: \
                         give the key as PKCS#8 (encrypted: `openssl pkcs8 -topk8 -v2 aes-256-cbc`, or plain) or PKCS#1, or a PKCS#12 file"
                    )
                } else {
                    format!(
                        "has a {label} block with PEM headers, which is not supported: give the certificate as plain PEM"
                    )
                }));
            }
        }
        let chain = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("holds a CERTIFICATE block that is not valid PEM"))?;
        let key = if key_pem.contains(ENCRYPTED_BEGIN) {
            let Some(password) = password else {
                return Err(invalid(
                    "has an encrypted private key: give its password (AZURE_CLIENT_CERTIFICATE_PASSWORD)",
                ));
            };
            KeyPair::from_pkcs8(decrypt_pkcs8(key_pem, password)?.as_bytes())
        } else {
            match PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|_| invalid("holds no PEM private key (PKCS#8 or PKCS#1)"))?
            {
                PrivateKeyDer::Pkcs8(der) => KeyPair::from_pkcs8(der.secret_pkcs8_der()),
                PrivateKeyDer::Pkcs1(der) => KeyPair::from_der(der.secret_pkcs1_der()),
                _ => {
                    return Err(invalid(
                        "has a private key that is not RSA: Entra ID takes RSA keys",
                    ));
                }
            }
        };
        Self::from_parts(chain, key)
    }

    /// A PKCS#12 (PFX) file protected by `password` (empty when it has none): its first
    /// private key and the certificate chain that goes with it.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem); also a wrong password or a damaged file.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, ExchangeError> {
        use p12_keystore::{KeyStore, Pkcs12ImportPolicy, error::Error as P12};
        let store =
            KeyStore::from_pkcs12(der, password, Pkcs12ImportPolicy::Strict).map_err(|e| match e {
                P12::MacError(_) => invalid("is a PKCS#12 file whose password is not the one given"),
                P12::UnsupportedEncryptionScheme | P12::UnsupportedMacAlgorithm => invalid(
                    "is a PKCS#12 file encrypted in a way not supported: export it with AES-256 (or as PEM)",
                ),
                _ => invalid("is neither PEM nor a valid PKCS#12 (PFX) file"),
            })?;
        let Some((_, chain)) = store.private_key_chain() else {
            return Err(invalid(
                "is a PKCS#12 file without a private key and its certificate",
            ));
        };
        let certificates = chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect();
        Self::from_parts(certificates, KeyPair::from_pkcs8(chain.key().as_der()))
    }

    /// A certificate file as Azure's identity libraries read `AZURE_CLIENT_CERTIFICATE_PATH`:
    /// PEM when it holds `-----BEGIN` (the chain and its key, which `password` may
    /// decrypt), else PKCS#12.
    ///
    /// # Errors
    /// As [`from_pem_with_password`](Self::from_pem_with_password) or
    /// [`from_pkcs12`](Self::from_pkcs12).
    pub fn from_file_contents(contents: &[u8], password: Option<&str>) -> Result<Self, ExchangeError> {
        if contents.windows(10).any(|w| w == b"-----BEGIN") {
            let text = std::str::from_utf8(contents).map_err(|_| invalid("is PEM that is not UTF-8 text"))?;
            Self::from_pem_with_password(text, text, password)
        } else {
            Self::from_pkcs12(contents, password.unwrap_or(""))
        }
    }

    fn from_parts(
        chain: Vec<CertificateDer<'static>>,
        key: Result<KeyPair, aws_lc_rs::error::KeyRejected>,
    ) -> Result<Self, ExchangeError> {
        let Some(leaf) = chain.first().cloned() else {
            return Err(invalid("holds no PEM CERTIFICATE block"));
        };
        let key =
            key.map_err(|_| invalid("has a private key that is not a valid RSA key of 2048 bits or more"))?;
        let certificate = Self {
            sha1: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &leaf)),
            sha256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &leaf)),
            key: Arc::new(key),
            chain,
            algorithm: AssertionAlgorithm::Rs256,
            send_chain: false,
        };
        certificate.check_pair(&leaf)?;
        Ok(certificate)
    }

    /// Signs with this algorithm (default [`AssertionAlgorithm::Rs256`]).
    #[must_use]
    pub fn algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Sends the certificate chain in `x5c` (for subject name and issuer authentication).
    #[must_use]
    pub fn send_chain(mut self, on: bool) -> Self {
        self.send_chain = on;
        self
    }

    /// The SHA-256 thumbprint, base64url (`x5t#S256`).
    #[must_use]
    pub fn thumbprint_sha256(&self) -> &str {
        &self.sha256
    }

    /// The SHA-1 thumbprint, base64url (`x5t`).
    #[must_use]
    pub fn thumbprint_sha1(&self) -> &str {
        &self.sha1
    }

    /// A signed assertion for `client_id` at the token endpoint `audience`, valid from
    /// `now` for ten minutes; `jti` must be unique per assertion.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] if signing fails (it does not for a key that loaded).
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
        jti: &str,
    ) -> Result<String, ExchangeError> {
        let seconds = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut header = serde_json::Map::new();
        let alg = match self.algorithm {
            AssertionAlgorithm::Rs256 => {
                header.insert("x5t".to_owned(), json!(self.sha1));
                "RS256"
            }
            AssertionAlgorithm::Ps256 => "PS256",
        };
        header.insert("alg".to_owned(), json!(alg));
        header.insert("typ".to_owned(), json!("JWT"));
        header.insert("x5t#S256".to_owned(), json!(self.sha256));
        if self.send_chain {
            let chain: Vec<String> = self.chain.iter().map(|c| STANDARD.encode(c)).collect();
            header.insert("x5c".to_owned(), json!(chain));
        }
        let header = serde_json::Value::Object(header);
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": jti,
            "nbf": seconds,
            "iat": seconds,
            "exp": seconds.saturating_add(ASSERTION_LIFETIME.as_secs()),
        });
        let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let signed = format!("{}.{}", part(&header), part(&claims));
        let signature = self.sign(signed.as_bytes())?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let encoding = match self.algorithm {
            AssertionAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
            AssertionAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
        };
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(encoding, &SystemRandom::new(), message, &mut signature)
            .map_err(|_| ExchangeError::invalid_input("certificate", "the private key could not sign"))?;
        Ok(signature)
    }

    /// The key signs what the certificate's public key verifies.
    fn check_pair(&self, leaf: &CertificateDer<'_>) -> Result<(), ExchangeError> {
        let mismatch = || {
            ExchangeError::invalid_input(
                "certificate",
                "the private key does not belong to the certificate",
            )
        };
        let message = b"pbi-embed key check";
        let signature = self.sign(message)?;
        let leaf = webpki::EndEntityCert::try_from(leaf)
            .map_err(|_| ExchangeError::invalid_input("certificate", "is not a valid X.509 certificate"))?;
        leaf.verify_signature(verifier(self.algorithm), message, &signature)
            .map_err(|_| mismatch())
    }
}

/// The PEM label of an encrypted PKCS#8 key.
const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
/// The most PBKDF2 iterations (or scrypt cost) accepted: a file cannot make signing in hang.
const MAX_KDF_COST: u64 = 1_000_000;

/// The label of the first PEM block in `text` with header lines (`Name: value`), if any.
fn block_with_headers(text: &str) -> Option<String> {
    let mut inside: Option<&str> = None;
    for line in text.lines().map(str::trim) {
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            inside = Some(label);
        } else if line.starts_with("-----END ") {
            inside = None;
        } else if let Some(label) = inside
            && line.contains(':')
        {
            return Some(label.to_owned());
        }
    }
    None
}

fn invalid(reason: &str) -> ExchangeError {
    ExchangeError::invalid_input("certificate", reason.to_owned())
}

/// The PKCS#8 key in the `ENCRYPTED PRIVATE KEY` block of `pem`, decrypted.
fn decrypt_pkcs8(pem: &str, password: &str) -> Result<pkcs8::SecretDocument, ExchangeError> {
    use pkcs8::der::Decode as _;
    use pkcs8::pkcs5::{EncryptionScheme, pbes2::Kdf};
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    // The block's base64 body (der's own PEM reader cannot decode this structure).
    let body = pem
        .split_once(ENCRYPTED_BEGIN)
        .and_then(|(_, rest)| rest.split_once(END));
    let der = body.and_then(|(body, _)| {
        let text: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        STANDARD.decode(text).ok()
    });
    let info = der
        .and_then(|der| pkcs8::EncryptedPrivateKeyInfoOwned::from_der(&der).ok())
        .ok_or_else(|| invalid("has an ENCRYPTED PRIVATE KEY block that is not valid"))?;
    let affordable = match &info.encryption_algorithm {
        EncryptionScheme::Pbes2(parameters) => match &parameters.kdf {
            Kdf::Pbkdf2(kdf) => u64::from(kdf.iteration_count) <= MAX_KDF_COST,
            Kdf::Scrypt(kdf) => kdf.cost_parameter <= MAX_KDF_COST && kdf.block_size <= 16,
            _ => false,
        },
        _ => false,
    };
    if !affordable {
        return Err(invalid(
            "has a private key encrypted in a way not supported (PBES2 with PBKDF2 or scrypt of bounded cost is)",
        ));
    }
    info.decrypt(password)
        .map_err(|_| invalid("has an encrypted private key that the password given does not decrypt"))
}

/// The verification algorithm matching `algorithm`.
fn verifier(algorithm: AssertionAlgorithm) -> &'static dyn rustls_pki_types::SignatureVerificationAlgorithm {
    match algorithm {
        AssertionAlgorithm::Rs256 => webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        AssertionAlgorithm::Ps256 => webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    }
}

/// A client certificate in a file (`AZURE_CLIENT_CERTIFICATE_PATH`): PEM (the chain and
/// its key, which may be encrypted) or PKCS#12/PFX. The driver reads it at every sign-in,
/// so a certificate rotated on disk (a Key Vault secret mounted in a pod) is picked up
/// without a restart. Debug never shows the password.
///
/// ```
/// use pbi_embed_core::{CertificateFile, ClientSecret};
///
/// // What AZURE_CLIENT_CERTIFICATE_PATH and AZURE_CLIENT_CERTIFICATE_PASSWORD name.
/// let file = CertificateFile::new("/etc/app/client.pfx").password(ClientSecret::new("pfx-password"));
/// assert!(!format!("{file:?}").contains("pfx-password"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct CertificateFile {
    path: std::path::PathBuf,
    password: Option<ClientSecret>,
    send_chain: bool,
}

impl fmt::Debug for CertificateFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateFile")
            .field("path", &self.path)
            .field("password", &self.password.is_some())
            .field("send_chain", &self.send_chain)
            .finish()
    }
}

impl CertificateFile {
    /// The file at `path`, without a password.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            path: path.into(),
            password: None,
            send_chain: false,
        }
    }

    /// The password of the PFX file or the encrypted key (`AZURE_CLIENT_CERTIFICATE_PASSWORD`).
    pub fn password(mut self, password: ClientSecret) -> Self {
        self.password = Some(password);
        self
    }

    /// Sends the chain in `x5c`, for subject name and issuer authentication
    /// (`AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`).
    pub fn send_chain(mut self, on: bool) -> Self {
        self.send_chain = on;
        self
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The certificate in `contents` (what the file holds).
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] as [`ClientCertificate::from_file_contents`] says.
    pub fn load(&self, contents: &[u8]) -> Result<ClientCertificate, ExchangeError> {
        let password = self.password.as_ref().map(ClientSecret::secret);
        Ok(ClientCertificate::from_file_contents(contents, password)?.send_chain(self.send_chain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed RSA-2048 certificate and its PKCS#8 key, for these tests only.
    const TEST_CERTIFICATE: &str = include_str!("../../tests/data/test-certificate.pem");
    const TEST_KEY: &str = include_str!("../../tests/data/test-key.pem");

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn assertions_carry_entras_header_and_claims_and_verify() {
        let certificate = ClientCertificate::from_pem(TEST_CERTIFICATE, TEST_KEY).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let assertion = certificate
            .assertion("client", "https://login/t/oauth2/v2.0/token", now, "j1")
            .unwrap();
        let parts: Vec<&str> = assertion.split('.').collect();
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t"], certificate.thumbprint_sha1());
        assert_eq!(header["x5t#S256"], certificate.thumbprint_sha256());
        assert!(header.get("x5c").is_none());
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str()),
            (Some("client"), Some("client"))
        );
        assert_eq!(claims["aud"], "https://login/t/oauth2/v2.0/token");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
            600
        );
        let der = CertificateDer::from_pem_slice(TEST_CERTIFICATE.as_bytes()).unwrap();
        let leaf = webpki::EndEntityCert::try_from(&der).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        leaf.verify_signature(
            verifier(AssertionAlgorithm::Rs256),
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .unwrap();

        let pss = certificate
            .clone()
            .algorithm(AssertionAlgorithm::Ps256)
            .send_chain(true);
        let assertion = pss.assertion("client", "aud", now, "j2").unwrap();
        let parts: Vec<&str> = assertion.split('.').collect();
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "PS256");
        assert!(header.get("x5t").is_none());
        assert_eq!(header["x5c"].as_array().unwrap().len(), 1);
        let signed = format!("{}.{}", parts[0], parts[1]);
        leaf.verify_signature(
            verifier(AssertionAlgorithm::Ps256),
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn unusable_files_are_refused_by_what_is_wrong() {
        let both = format!("{TEST_CERTIFICATE}{TEST_KEY}");
        ClientCertificate::from_pem(&both, &both).unwrap();
        for (certificate, key, want) in [
            ("", TEST_KEY, "no PEM CERTIFICATE"),
            (TEST_CERTIFICATE, "", "no PEM private key"),
            (
                TEST_CERTIFICATE,
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
            (
                TEST_CERTIFICATE,
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "not a valid RSA key",
            ),
        ] {
            let error = ClientCertificate::from_pem(certificate, key)
                .unwrap_err()
                .to_string();
            assert!(error.contains(want), "{want}: {error}");
        }
        let other_key = include_str!("../../tests/data/other-key.pem");
        let error = ClientCertificate::from_pem(TEST_CERTIFICATE, other_key)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not belong"), "{error}");
        assert!(!error.contains("PRIVATE"), "{error}");
    }

    #[test]
    fn a_traditional_encrypted_key_is_named_with_what_to_give_instead() {
        let traditional = include_str!("../../tests/data/test-key-traditional.pem");
        let both = format!("{TEST_CERTIFICATE}{traditional}");
        for (certificate, key) in [(TEST_CERTIFICATE, traditional), (both.as_str(), both.as_str())] {
            let error = ClientCertificate::from_pem_with_password(certificate, key, Some("pw"))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("RSA PRIVATE KEY") && error.contains("traditional"),
                "{error}"
            );
            assert!(error.contains("PKCS#8") && error.contains("PKCS#12"), "{error}");
            assert!(!error.contains("CERTIFICATE block that is not valid"), "{error}");
        }
    }

    #[test]
    fn pkcs12_files_and_encrypted_keys_load_with_their_password() {
        let plain = ClientCertificate::from_pem(TEST_CERTIFICATE, TEST_KEY).unwrap();
        let same = |loaded: Result<ClientCertificate, ExchangeError>, what: &str| {
            let loaded = loaded.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(loaded.thumbprint_sha256(), plain.thumbprint_sha256(), "{what}");
        };
        let pfx = include_bytes!("../../tests/data/test-certificate.pfx");
        let legacy = include_bytes!("../../tests/data/test-certificate-legacy.pfx");
        let no_password = include_bytes!("../../tests/data/test-certificate-nopass.pfx");
        same(ClientCertificate::from_pkcs12(pfx, "pfx-password"), "AES-256 PFX");
        same(
            ClientCertificate::from_pkcs12(legacy, "pfx-password"),
            "3DES/RC2 PFX",
        );
        same(
            ClientCertificate::from_file_contents(pfx, Some("pfx-password")),
            "PFX file",
        );
        same(
            ClientCertificate::from_file_contents(no_password, None),
            "PFX without a password",
        );
        let encrypted = format!(
            "{TEST_CERTIFICATE}{}",
            include_str!("../../tests/data/test-key-encrypted.pem")
        );
        same(
            ClientCertificate::from_file_contents(encrypted.as_bytes(), Some("key-password")),
            "encrypted PKCS#8",
        );

        let refused = |loaded: Result<ClientCertificate, ExchangeError>, want: &str| {
            let error = loaded.map(drop).unwrap_err().to_string();
            assert!(error.contains(want), "{want}: {error}");
            assert!(!error.contains("password\""), "{error}");
        };
        refused(
            ClientCertificate::from_pkcs12(pfx, "wrong"),
            "password is not the one given",
        );
        refused(
            ClientCertificate::from_file_contents(pfx, None),
            "password is not the one given",
        );
        refused(
            ClientCertificate::from_file_contents(encrypted.as_bytes(), None),
            "give its password",
        );
        refused(
            ClientCertificate::from_file_contents(encrypted.as_bytes(), Some("wrong")),
            "does not decrypt",
        );
        refused(
            ClientCertificate::from_file_contents(b"\x30\x03junk", None),
            "neither PEM nor",
        );
        refused(
            ClientCertificate::from_file_contents(&pfx[..pfx.len() / 2], Some("pfx-password")),
            "PKCS#12",
        );
    }
}
