//! Clouds: where the Power BI REST API and Entra ID live, and the scope to ask for.
//!
//! [`Cloud::Public`] is the commercial cloud; the US government and China clouds have
//! their own hosts and scopes. [`Cloud::custom`] points at anything else, such as the
//! local emulator or a proxy: HTTPS only, except plain HTTP to a loopback address.

use std::fmt;
use std::str::FromStr;

use crate::wire::error::ExchangeError;

/// A Power BI cloud: its REST API base, its Entra ID authority host and its scope.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Cloud {
    /// The commercial cloud: `api.powerbi.com`, `login.microsoftonline.com`.
    #[default]
    Public,
    /// US Government Community Cloud (GCC): `api.powerbigov.us`.
    UsGov,
    /// US Government Community Cloud High: `api.high.powerbigov.us`.
    UsGovHigh,
    /// US Department of Defense: `api.mil.powerbigov.us`.
    UsGovDod,
    /// China, operated by 21Vianet: `api.powerbi.cn`.
    China,
    /// Hosts and scope of your choosing (validated).
    Custom(CustomCloud),
}

/// The endpoints of a [`Cloud::Custom`]; build it with [`Cloud::custom`],
/// [`Cloud::with_api_base`] or [`Cloud::with_authority_host`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomCloud {
    api_base: String,
    authority_host: String,
    scope: String,
}

/// The endpoints of a cloud, borrowed from it.
struct Endpoints<'a> {
    api_base: &'a str,
    authority_host: &'a str,
    scope: &'a str,
    app_host: Option<&'static str>,
}

impl Cloud {
    fn endpoints(&self) -> Endpoints<'_> {
        let (api_base, authority_host, scope, app_host) = match self {
            Self::Public => (
                "https://api.powerbi.com",
                "https://login.microsoftonline.com",
                "https://analysis.windows.net/powerbi/api/.default",
                "https://app.powerbi.com",
            ),
            Self::UsGov => (
                "https://api.powerbigov.us",
                "https://login.microsoftonline.com",
                "https://analysis.usgovcloudapi.net/powerbi/api/.default",
                "https://app.powerbigov.us",
            ),
            Self::UsGovHigh => (
                "https://api.high.powerbigov.us",
                "https://login.microsoftonline.us",
                "https://high.analysis.usgovcloudapi.net/powerbi/api/.default",
                "https://app.high.powerbigov.us",
            ),
            Self::UsGovDod => (
                "https://api.mil.powerbigov.us",
                "https://login.microsoftonline.us",
                "https://mil.analysis.usgovcloudapi.net/powerbi/api/.default",
                "https://app.mil.powerbigov.us",
            ),
            Self::China => (
                "https://api.powerbi.cn",
                "https://login.chinacloudapi.cn",
                "https://analysis.chinacloudapi.cn/powerbi/api/.default",
                "https://app.powerbi.cn",
            ),
            Self::Custom(c) => {
                return Endpoints {
                    api_base: &c.api_base,
                    authority_host: &c.authority_host,
                    scope: &c.scope,
                    app_host: None,
                };
            }
        };
        Endpoints {
            api_base,
            authority_host,
            scope,
            app_host: Some(app_host),
        }
    }
}

impl Cloud {
    /// The named clouds, for listing in help texts.
    pub const NAMED: [Self; 5] = [
        Self::Public,
        Self::UsGov,
        Self::UsGovHigh,
        Self::UsGovDod,
        Self::China,
    ];

    /// A cloud with its own API base, authority host and scope.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when a URL does not parse, is not HTTPS (plain HTTP is
    /// accepted for loopback hosts only), or has a query, fragment or user info; or the
    /// scope is empty.
    pub fn custom(api_base: &str, authority_host: &str, scope: &str) -> Result<Self, ExchangeError> {
        if scope.trim().is_empty() || scope.chars().any(char::is_control) {
            return Err(ExchangeError::invalid_input(
                "scope",
                "must be a non-empty scope such as https://analysis.windows.net/powerbi/api/.default",
            ));
        }
        Ok(Self::Custom(CustomCloud {
            api_base: base_url("apiBase", api_base)?,
            authority_host: base_url("authorityHost", authority_host)?,
            scope: scope.to_owned(),
        }))
    }

    /// This cloud with another API base (the scope and authority host stay).
    ///
    /// # Errors
    /// As [`Cloud::custom`].
    pub fn with_api_base(&self, api_base: &str) -> Result<Self, ExchangeError> {
        Self::custom(api_base, self.authority_host(), self.scope())
    }

    /// This cloud with another Entra ID authority host (the scope and API base stay).
    ///
    /// # Errors
    /// As [`Cloud::custom`].
    pub fn with_authority_host(&self, authority_host: &str) -> Result<Self, ExchangeError> {
        Self::custom(self.api_base(), authority_host, self.scope())
    }

    /// The REST API base, without a trailing slash: `https://api.powerbi.com`.
    #[must_use]
    pub fn api_base(&self) -> &str {
        self.endpoints().api_base
    }

    /// The Entra ID authority host, without a trailing slash:
    /// `https://login.microsoftonline.com`.
    #[must_use]
    pub fn authority_host(&self) -> &str {
        self.endpoints().authority_host
    }

    /// The scope to request from Entra ID: `https://analysis.windows.net/powerbi/api/.default`.
    #[must_use]
    pub fn scope(&self) -> &str {
        self.endpoints().scope
    }

    /// The resource a managed identity or the Azure CLI asks a token for: the scope
    /// without `/.default` (`https://analysis.windows.net/powerbi/api`).
    #[must_use]
    pub fn resource(&self) -> &str {
        let scope = self.scope();
        scope.strip_suffix("/.default").unwrap_or(scope)
    }

    /// The Power BI app host that embed URLs point at (`https://app.powerbi.com`), for a
    /// named cloud.
    #[must_use]
    pub fn app_host(&self) -> Option<&'static str> {
        self.endpoints().app_host
    }

    /// The short name used on command lines: `public`, `usgov`, `usgovhigh`,
    /// `usgovdod`, `china`, or `custom`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::UsGov => "usgov",
            Self::UsGovHigh => "usgovhigh",
            Self::UsGovDod => "usgovdod",
            Self::China => "china",
            Self::Custom(_) => "custom",
        }
    }
}

impl fmt::Debug for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Custom(c) => f.debug_tuple("Custom").field(c).finish(),
            named => write!(f, "Cloud({})", named.name()),
        }
    }
}

impl FromStr for Cloud {
    type Err = ExchangeError;

    /// Parses a named cloud (`public`, `usgov`, `usgovhigh`, `usgovdod`, `china`), in any case.
    fn from_str(s: &str) -> Result<Self, ExchangeError> {
        Self::NAMED
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ExchangeError::invalid_input(
                    "cloud",
                    format!(
                        "{:?} is not one of public, usgov, usgovhigh, usgovdod, china",
                        crate::wire::ids::truncate(s)
                    ),
                )
            })
    }
}

/// `input` as it may be quoted in an error: without its user info, and bounded.
fn shown(input: &str) -> String {
    crate::wire::ids::truncate(&without_user_info(input))
}

/// `input` with whatever stands between `://` and the last `@` of the authority (user
/// info, perhaps a password) replaced by `[user info removed]`.
pub(crate) fn without_user_info(input: &str) -> String {
    let Some((scheme, rest)) = input.split_once("://") else {
        return input.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|a| a.rfind('@')) {
        Some(at) => format!(
            "{scheme}://[user info removed]{}",
            rest.get(at..).unwrap_or_default()
        ),
        None => input.to_owned(),
    }
}

/// Validates a base URL and returns it without a trailing slash.
fn base_url(field: &'static str, input: &str) -> Result<String, ExchangeError> {
    let input_shown = shown(input);
    let url = url::Url::parse(input)
        .map_err(|e| ExchangeError::invalid_input(field, format!("{input_shown:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    let reason = match url.scheme() {
        _ if url.host().is_none() => Some("has no host"),
        "https" => None,
        "http" if loopback => None,
        "http" => Some("must use https (plain http is allowed only for loopback hosts)"),
        _ => Some("must be an https URL"),
    }
    .or_else(|| {
        (!url.username().is_empty() || url.password().is_some()).then_some("must not contain user info")
    })
    .or_else(|| url.query().is_some().then_some("must not have a query"))
    .or_else(|| url.fragment().is_some().then_some("must not have a fragment"));
    match reason {
        Some(reason) => Err(ExchangeError::invalid_input(
            field,
            format!("{input_shown:?} {reason}"),
        )),
        None => Ok(url.as_str().trim_end_matches('/').to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_clouds() {
        assert_eq!(Cloud::Public.api_base(), "https://api.powerbi.com");
        assert_eq!(Cloud::UsGov.authority_host(), "https://login.microsoftonline.com");
        assert_eq!(
            Cloud::UsGovHigh.authority_host(),
            "https://login.microsoftonline.us"
        );
        assert_eq!(
            Cloud::UsGovDod.scope(),
            "https://mil.analysis.usgovcloudapi.net/powerbi/api/.default"
        );
        assert_eq!(Cloud::China.api_base(), "https://api.powerbi.cn");
        for c in Cloud::NAMED {
            assert_eq!(c.name().parse::<Cloud>().unwrap(), c);
            assert!(c.scope().ends_with("/powerbi/api/.default"));
        }
        assert!("mars".parse::<Cloud>().is_err());
        assert_eq!("USGOV".parse::<Cloud>().unwrap(), Cloud::UsGov);
    }

    #[test]
    fn custom_clouds_are_https_or_loopback() {
        let c = Cloud::Public.with_api_base("http://127.0.0.1:8080/").unwrap();
        assert_eq!(c.api_base(), "http://127.0.0.1:8080");
        assert_eq!(c.scope(), Cloud::Public.scope());
        assert_eq!(c.authority_host(), Cloud::Public.authority_host());
        assert!(Cloud::Public.with_api_base("http://[::1]:1/pbi").is_ok());
        assert!(Cloud::Public.with_api_base("http://localhost:1").is_ok());
        assert!(Cloud::Public.with_api_base("https://proxy.example/pbi/").is_ok());
        for bad in [
            "http://api.powerbi.com",
            "http://10.0.0.1",
            "ftp://x.example",
            "https://u:p@x.example",
            "https://x.example/?q=1",
            "https://x.example/#f",
            "not a url",
        ] {
            let err = Cloud::Public.with_api_base(bad).unwrap_err();
            assert!(err.to_string().contains("apiBase"), "{bad}: {err}");
        }
        assert!(Cloud::custom("https://a.example", "https://b.example", " ").is_err());
    }

    #[test]
    fn a_password_in_a_url_is_never_quoted() {
        for input in [
            "http://user:PASSWORD@api.example",
            "https://user:PASSWORD@x.example/path",
            "http://user:PASSWORD@@weird host/",
            "http://:PASSWORD@10.0.0.1",
        ] {
            for err in [
                Cloud::Public.with_api_base(input).unwrap_err(),
                Cloud::Public.with_authority_host(input).unwrap_err(),
            ] {
                let text = err.to_string();
                assert!(!text.contains("PASSWORD"), "{text}");
                assert!(text.contains("[user info removed]"), "{text}");
            }
        }
    }
}
