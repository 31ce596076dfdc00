//! HTTPS: a certificate authority the emulator makes for itself (or a certificate it is
//! given), and the rustls server configuration built from it.
//!
//! ```
//! use pbi_embed_emulator::{Emulator, Tls};
//!
//! let emulator = Emulator::builder().tls(Tls::generated().name("emu.local")).start()?;
//! assert!(emulator.base_url().starts_with("https://127.0.0.1:"));
//! let ca = emulator.ca_pem().expect("a generated certificate has a CA");
//! assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::sync::Arc;

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Names every generated certificate covers.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// How long a generated authority and its certificate are valid: long enough for a day's
/// work, short enough that one trusted in a browser and forgotten stops mattering.
const GENERATED_VALIDITY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How the emulator serves HTTPS.
#[derive(Clone)]
#[must_use]
pub struct Tls {
    source: Source,
    names: Vec<String>,
}

#[derive(Clone)]
enum Source {
    Generated,
    Pem { chain: String, key: String },
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.source {
            Source::Generated => "generated",
            Source::Pem { .. } => "pem (key redacted)",
        };
        f.debug_struct("Tls")
            .field("source", &source)
            .field("names", &self.names)
            .finish()
    }
}

impl Tls {
    /// A certificate for `localhost`, `127.0.0.1` and `::1` (and each [`Tls::name`]),
    /// signed by a certificate authority made at start; [`crate::Emulator::ca_pem`] gives
    /// the authority's certificate for clients to trust.
    pub fn generated() -> Self {
        Self {
            source: Source::Generated,
            names: Vec::new(),
        }
    }

    /// Serves this certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or
    /// SEC1), both PEM, instead.
    pub fn from_pem(chain: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            source: Source::Pem {
                chain: chain.into(),
                key: key.into(),
            },
            names: Vec::new(),
        }
    }

    /// Another DNS name or IP address the generated certificate covers (checked at
    /// start: a host name of letters, digits and hyphens, or an IP address; no wildcard).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.names.push(name.into());
        self
    }

    /// The names added with [`Tls::name`].
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The server configuration, and the authority's certificate (PEM) when generated.
    pub(crate) fn server_config(&self) -> io::Result<(Arc<ServerConfig>, Option<String>)> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
        };
        let (chain, key, ca_pem) = match &self.source {
            Source::Generated => {
                for name in &self.names {
                    check_name(name).map_err(|why| invalid(&format!("the TLS name {name:?}"), &why))?;
                }
                let generated =
                    generate(&self.names).map_err(|e| invalid("cannot make a certificate", &e))?;
                (vec![generated.leaf], generated.key, Some(generated.ca_pem))
            }
            Source::Pem { chain, key } => {
                let chain = CertificateDer::pem_slice_iter(chain.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("the TLS certificate is not valid PEM", &e))?;
                if chain.is_empty() {
                    return Err(invalid("the TLS certificate file", &"holds no CERTIFICATE block"));
                }
                // The key's own error could quote it; name only what was wrong.
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| {
                    invalid(
                        "the TLS key",
                        &"holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                    )
                })?;
                (chain, key, None)
            }
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("TLS", &e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| invalid("the TLS certificate and key do not make a usable pair", &e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((Arc::new(config), ca_pem))
    }
}

struct Generated {
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    ca_pem: String,
}

/// Why `name` cannot go in a certificate, if it cannot: a host name (labels of ASCII
/// letters, digits and inner hyphens, 1 to 63 characters, 253 in all) or an IP address.
pub(crate) fn check_name(name: &str) -> Result<(), &'static str> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if name.is_empty() || name.len() > 253 {
        return Err("is not 1 to 253 characters");
    }
    if !name.is_ascii() {
        return Err("is not ASCII: give an internationalized name in its xn-- form");
    }
    if name.contains('*') {
        return Err("is a wildcard: name each host");
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !name.split('.').all(label_ok) {
        return Err("is not a host name (letters, digits and hyphens between dots)");
    }
    Ok(())
}

/// The window a generated certificate is valid in: from a day ago (clocks drift) for
/// [`GENERATED_VALIDITY`].
fn validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::from(SystemTime::now());
    let day = time::Duration::days(1);
    let validity = time::Duration::try_from(GENERATED_VALIDITY).unwrap_or(day);
    (now - day, now + validity)
}

/// A CA and a leaf certificate for the loopback names and `names`. The CA may sign for
/// those names only (name constraints) and, like the leaf, is valid for a week.
fn generate(names: &[String]) -> Result<Generated, rcgen::Error> {
    let mut all: Vec<String> = LOOPBACK_NAMES.iter().map(|n| (*n).to_owned()).collect();
    all.extend(
        names
            .iter()
            .filter(|n| !all.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let (not_before, not_after) = validity();

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "pbi-embed emulator CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    ca.name_constraints = Some(NameConstraints {
        permitted_subtrees: all
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                    ip,
                    if ip.is_ipv4() { 32 } else { 128 },
                )),
                Err(_) => GeneralSubtree::DnsName(name.clone()),
            })
            .collect(),
        excluded_subtrees: Vec::new(),
    });
    let ca_certificate = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(all)?;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    leaf.distinguished_name
        .push(DnType::CommonName, "pbi-embed emulator");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Generated {
        leaf: leaf.der().clone(),
        key: PrivateKeyDer::try_from(leaf_key.serialize_der())
            .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?,
        ca_pem: ca_certificate.pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_names_and_addresses_go_in_a_certificate() {
        for good in [
            "emu.powerbi.com",
            "localhost",
            "a-b.example",
            "10.0.0.1",
            "::1",
            "xn--bcher-kva.example",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
            assert!(Tls::generated().name(good).server_config().is_ok(), "{good}");
        }
        for bad in [
            "",
            "*",
            "*.com",
            "a b",
            "a\nb",
            "../../etc",
            "a_b.com",
            "-a.com",
            "b\u{fc}cher.example",
            &"a".repeat(64),
        ] {
            let error = Tls::generated().name(bad).server_config().unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(error.to_string().contains("TLS name"), "{error}");
        }
    }

    #[test]
    fn a_generated_authority_is_short_lived_and_signs_for_its_names_only() {
        let generated = generate(&["emu.powerbi.com".to_owned()]).unwrap();
        let ca = CertificateDer::from_pem_slice(generated.ca_pem.as_bytes()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&ca).unwrap();
        let lifetime = parsed.validity().not_after.timestamp() - parsed.validity().not_before.timestamp();
        assert!(lifetime <= 9 * 24 * 60 * 60, "{lifetime} s");
        let constraints = parsed
            .name_constraints()
            .unwrap()
            .expect("name constraints")
            .value;
        let permitted = format!("{:?}", constraints.permitted_subtrees);
        assert!(
            permitted.contains("emu.powerbi.com") && permitted.contains("localhost"),
            "{permitted}"
        );
    }

    #[test]
    fn a_generated_certificate_comes_with_its_authority() {
        let (config, ca) = Tls::generated().name("emu.local").server_config().unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(ca.unwrap().contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn bad_pem_is_a_clear_error_that_does_not_quote_the_key() {
        let error = Tls::from_pem("nothing", "secret-key-material")
            .server_config()
            .unwrap_err();
        assert!(error.to_string().contains("no CERTIFICATE"), "{error}");
        let generated = generate(&[]).unwrap();
        let chain = generated.ca_pem;
        let error = Tls::from_pem(chain, "secret-key-material")
            .server_config()
            .unwrap_err();
        assert!(error.to_string().contains("TLS key"), "{error}");
        assert!(!error.to_string().contains("secret-key-material"));
        assert!(!format!("{:?}", Tls::from_pem("c", "secret-key-material")).contains("secret"));
    }
}
