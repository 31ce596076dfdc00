//! How a driver's own HTTP client connects: which root certificates it trusts and
//! through which proxy. Data only, checked here; each driver applies it to its stack.
//!
//! The roots are Mozilla's (bundled) unless the platform's verifier is asked for
//! (corporate CAs in the system store); extra roots are trusted *in addition* to either.
//! Proxies named in `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` are honoured by the drivers'
//! HTTP stacks themselves; [`ConnectSettings::set_proxy`] names one for this client only.
//! A caller's own HTTP client is used as it was configured, and none of this applies.

use std::fmt;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::wire::error::ExchangeError;

/// At most this many extra root certificates.
pub const MAX_ROOT_CERTIFICATES: usize = 1_000;

/// Root certificates and proxy for a driver's own HTTP client.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectSettings {
    roots: Vec<CertificateDer<'static>>,
    platform_verifier: bool,
    proxy: Option<Proxy>,
}

impl fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("extra_roots", &self.roots.len())
            .field("platform_verifier", &self.platform_verifier)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl ConnectSettings {
    /// Trusts the certificates of a PEM file's text (every `CERTIFICATE` block) as well
    /// as the default roots; returns how many were added.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] (`rootCertificates`) when the text holds no certificate,
    /// a block is not valid PEM, or there would be more than [`MAX_ROOT_CERTIFICATES`].
    pub fn add_root_certificates_pem(&mut self, pem: &[u8]) -> Result<usize, ExchangeError> {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                ExchangeError::invalid_input("rootCertificates", format!("is not valid PEM: {e}"))
            })?;
        if certificates.is_empty() {
            return Err(ExchangeError::invalid_input(
                "rootCertificates",
                "holds no PEM CERTIFICATE block",
            ));
        }
        self.add(certificates)
    }

    /// Trusts one DER-encoded certificate as well as the default roots.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when empty or one too many.
    pub fn add_root_certificate_der(&mut self, der: impl Into<Vec<u8>>) -> Result<usize, ExchangeError> {
        let der = der.into();
        if der.is_empty() {
            return Err(ExchangeError::invalid_input(
                "rootCertificates",
                "a certificate is empty",
            ));
        }
        self.add(vec![CertificateDer::from(der)])
    }

    fn add(&mut self, certificates: Vec<CertificateDer<'static>>) -> Result<usize, ExchangeError> {
        if self.roots.len().saturating_add(certificates.len()) > MAX_ROOT_CERTIFICATES {
            return Err(ExchangeError::invalid_input(
                "rootCertificates",
                format!("more than {MAX_ROOT_CERTIFICATES} certificates"),
            ));
        }
        let added = certificates.len();
        self.roots.extend(certificates);
        Ok(added)
    }

    /// Uses the platform's certificate verifier (the system's trust store, with its
    /// corporate CAs) instead of Mozilla's bundled roots.
    pub fn set_platform_verifier(&mut self, on: bool) {
        self.platform_verifier = on;
    }

    /// Sends every request through this proxy (`http://` or `https://`, optionally with
    /// `user:password@`), whatever the environment says.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] (`proxy`) naming what is wrong, never quoting a password.
    pub fn set_proxy(&mut self, url: &str) -> Result<(), ExchangeError> {
        self.proxy = Some(Proxy::parse(url)?);
        Ok(())
    }

    /// The extra roots, DER.
    #[must_use]
    pub fn root_certificates(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// Whether the platform's verifier replaces Mozilla's roots.
    #[must_use]
    pub fn platform_verifier(&self) -> bool {
        self.platform_verifier
    }

    /// The proxy set for this client, if any.
    #[must_use]
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// Whether anything differs from the defaults (the stack's own roots, the
    /// environment's proxy).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A proxy URL: `http://` or `https://`, a host, optionally a port and credentials.
/// Debug and Display hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    url: url::Url,
}

impl Proxy {
    /// The longest proxy URL accepted.
    pub const MAX_LEN: usize = 2048;

    /// Checks a proxy URL.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] (`proxy`) for another scheme, no host, a path or query,
    /// or more than [`Proxy::MAX_LEN`] bytes; the message never quotes the URL.
    pub fn parse(text: &str) -> Result<Self, ExchangeError> {
        let invalid = |reason: &str| ExchangeError::invalid_input("proxy", reason.to_owned());
        if text.len() > Self::MAX_LEN {
            return Err(invalid("is longer than 2048 bytes"));
        }
        let url = url::Url::parse(text)
            .map_err(|e| ExchangeError::invalid_input("proxy", format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must be an http:// or https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("names no host"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("must be scheme://[user:password@]host[:port] only"));
        }
        Ok(Self { url })
    }

    /// The URL as given, credentials included: for the driver's HTTP stack only.
    #[must_use]
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The URL without credentials, safe to show.
    #[must_use]
    pub fn redacted(&self) -> String {
        let mut shown = self.url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("[redacted]"));
        }
        shown.as_str().to_owned()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Proxy").field(&self.redacted()).finish()
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PEM framing around arbitrary bytes is enough: PEM parsing does not decode X.509.
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";

    #[test]
    fn roots_come_from_every_certificate_block() {
        let mut settings = ConnectSettings::default();
        assert!(settings.is_default());
        let two = format!("{PEM}junk between blocks\n{PEM}");
        assert_eq!(settings.add_root_certificates_pem(two.as_bytes()).unwrap(), 2);
        assert_eq!(settings.root_certificates().len(), 2);
        assert!(!settings.is_default());
        assert_eq!(settings.root_certificates()[0].as_ref(), [0x30, 0x82, 0x01, 0x00]);
    }

    #[test]
    fn pem_without_certificates_or_broken_is_refused_by_name() {
        let mut settings = ConnectSettings::default();
        for bad in [
            "",
            "not pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let error = settings.add_root_certificates_pem(bad.as_bytes()).unwrap_err();
            assert!(error.to_string().contains("rootCertificates"), "{error}");
        }
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(settings.add_root_certificates_pem(broken.as_bytes()).is_err());
        assert!(settings.root_certificates().is_empty());
    }

    #[test]
    fn too_many_roots_are_refused() {
        let mut settings = ConnectSettings::default();
        let many = PEM.repeat(MAX_ROOT_CERTIFICATES + 1);
        assert!(settings.add_root_certificates_pem(many.as_bytes()).is_err());
        assert!(settings.add_root_certificate_der(Vec::new()).is_err());
    }

    #[test]
    fn proxies_are_checked_and_never_show_a_password() {
        let proxy = Proxy::parse("http://user:hunter2@proxy.corp:3128").unwrap();
        assert_eq!(proxy.url(), "http://user:hunter2@proxy.corp:3128/");
        assert!(!format!("{proxy:?} {proxy}").contains("hunter2"));
        for bad in [
            "socks5://proxy:1080",
            "proxy.corp:3128",
            "http://",
            "http://proxy/path",
            "http://proxy/?q=1",
        ] {
            let error = Proxy::parse(bad).unwrap_err().to_string();
            assert!(error.contains("proxy"), "{bad}: {error}");
        }
        let error = Proxy::parse("ftp://u:hunter2@p").unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(Proxy::parse(&format!("http://{}", "a".repeat(3000))).is_err());
    }
}
