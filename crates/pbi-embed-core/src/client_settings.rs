//! What every client is configured with, apart from its HTTP stack and its credential:
//! the cloud, time bounds, the body cap, retries, refresh margins and the embed-token
//! cache. Both adapters' builders fill one of these, so their defaults cannot drift.

use std::time::Duration;

use crate::cache::EmbedTokenCache;
use crate::cloud::Cloud;
use crate::error::Error;
use crate::ids::{ClientId, ProfileId, TenantId};
use crate::operation::MAX_RESPONSE_BYTES;
use crate::retry::RetryPolicy;
use crate::secret::ClientSecret;

/// Client settings, with safe defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientSettings {
    /// The cloud (default [`Cloud::Public`]).
    pub cloud: Cloud,
    /// Another API base, replacing the cloud's (the scope stays the cloud's).
    pub api_base: Option<String>,
    /// Another Entra ID authority host, replacing the cloud's.
    pub authority_host: Option<String>,
    /// The service principal profile to act as on every call.
    pub profile: Option<ProfileId>,
    /// The bound on connecting (default 10 s).
    pub connect_timeout: Duration,
    /// The bound on an exchange (default 30 s).
    pub timeout: Duration,
    /// The largest response body read (default 1 MiB).
    pub max_response_bytes: u64,
    /// When to retry.
    pub retry: RetryPolicy,
    /// How long before expiry the access token is renewed (default 5 minutes).
    pub access_token_margin: Duration,
    /// The embed-token cache's capacity and margin (default 1,024 and 10 minutes);
    /// `None` turns it off.
    pub embed_cache: Option<(usize, Duration)>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            cloud: Cloud::Public,
            api_base: None,
            authority_host: None,
            profile: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_response_bytes: MAX_RESPONSE_BYTES,
            retry: RetryPolicy::default(),
            access_token_margin: Duration::from_secs(5 * 60),
            embed_cache: Some((EmbedTokenCache::DEFAULT_CAPACITY, EmbedTokenCache::DEFAULT_MARGIN)),
        }
    }
}

impl ClientSettings {
    /// The cloud with the custom hosts applied.
    ///
    /// # Errors
    /// When a custom URL is invalid (see [`Cloud::custom`]).
    pub fn resolved_cloud(&self) -> Result<Cloud, Error> {
        let mut cloud = self.cloud.clone();
        if let Some(api_base) = &self.api_base {
            cloud = cloud.with_api_base(api_base)?;
        }
        if let Some(authority_host) = &self.authority_host {
            cloud = cloud.with_authority_host(authority_host)?;
        }
        Ok(cloud)
    }

    /// An embed-token cache as configured, if on.
    #[must_use]
    pub fn new_embed_cache(&self) -> Option<EmbedTokenCache> {
        self.embed_cache
            .map(|(capacity, margin)| EmbedTokenCache::new(capacity, margin))
    }
}

/// A service principal's credentials from variables named as Azure tools name them:
/// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`. The caller supplies
/// the lookup (usually over the process environment), so the core reads none itself.
///
/// # Errors
/// [`Error::InvalidInput`] naming a variable that is missing or malformed, never its value.
pub fn service_principal_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(TenantId, ClientId, ClientSecret), Error> {
    let var = |name: &'static str| {
        lookup(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::invalid_input(name, "is not set"))
    };
    Ok((
        TenantId::parse(&var("AZURE_TENANT_ID")?)?,
        ClientId::parse(&var("AZURE_CLIENT_ID")?)?,
        ClientSecret::new(var("AZURE_CLIENT_SECRET")?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_hosts_keep_the_scope() {
        let settings = ClientSettings {
            cloud: Cloud::UsGov,
            api_base: Some("http://127.0.0.1:1".into()),
            ..ClientSettings::default()
        };
        let cloud = settings.resolved_cloud().unwrap();
        assert_eq!(cloud.api_base(), "http://127.0.0.1:1");
        assert_eq!(cloud.scope(), Cloud::UsGov.scope());
        assert!(
            ClientSettings {
                api_base: Some("http://x.example".into()),
                ..ClientSettings::default()
            }
            .resolved_cloud()
            .is_err()
        );
    }

    #[test]
    fn credentials_from_a_lookup() {
        let vars = |name: &str| match name {
            "AZURE_TENANT_ID" => Some("contoso.onmicrosoft.com".to_owned()),
            "AZURE_CLIENT_ID" => Some("00000000-0000-0000-0000-000000000001".to_owned()),
            _ => None,
        };
        let err = service_principal_from(vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid AZURE_CLIENT_SECRET: is not set (nothing was sent)"
        );
    }
}
