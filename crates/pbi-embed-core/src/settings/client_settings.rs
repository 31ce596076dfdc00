//! What every client is configured with, apart from its HTTP stack and its credential:
//! the cloud, time bounds, the body cap, retries, refresh margins and the caches. Every
//! driver's builder fills one of these, so their defaults cannot drift.

use crate::settings::connect_settings::ConnectSettings;
use std::ffi::OsString;
use std::time::Duration;

use crate::flow::cache::{EmbedTokenCache, MetadataCache};
use crate::settings::retry::RetryPolicy;
use crate::wire::cloud::Cloud;
use crate::wire::error::ExchangeError;
use crate::wire::ids::{ClientId, ProfileId, TenantId};
use crate::wire::operation::MAX_RESPONSE_BYTES;
use crate::wire::secret::ClientSecret;

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
    /// The bound on one attempt of one exchange: connecting, sending, and the whole
    /// response (default 30 s).
    pub timeout: Duration,
    /// The bound on a whole call, sign-in and retries included (default 60 s): no call
    /// outlives it, and no retry waits past it.
    pub deadline: Duration,
    /// The largest response body read (default 1 MiB).
    pub max_response_bytes: u64,
    /// When to retry.
    pub retry: RetryPolicy,
    /// How long before expiry the access token is renewed (default 5 minutes).
    pub access_token_margin: Duration,
    /// The embed-token cache's capacity and margin (default 1,024 and 10 minutes);
    /// `None` turns it off.
    pub embed_cache: Option<(usize, Duration)>,
    /// The item-metadata cache's capacity and time-to-live (default 1,024 and 10
    /// minutes): reports', dashboards', tiles' metadata and datasets' RLS flags.
    pub metadata_cache: (usize, Duration),
    /// Refresh-ahead (default off): a cached embed token this close to expiry (but not
    /// yet inside the embed cache's margin) is served at once and minted again in the
    /// background by one task; item metadata in the last half of its time-to-live is
    /// served and read again the same way. So no caller waits on Power BI for an item it
    /// asks for often. Must be longer than the embed cache's margin.
    pub refresh_ahead: Option<Duration>,
    /// Whether the driver has a shared store ([`SharedStore`](crate::driver::SharedStore))
    /// for embed tokens, and how the flow uses it (default none: the in-process cache).
    pub shared: Option<crate::flow::store::SharedSettings>,
    /// Root certificates and proxy for the driver's own HTTP client.
    pub connect: ConnectSettings,
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
            deadline: Duration::from_secs(60),
            max_response_bytes: MAX_RESPONSE_BYTES,
            retry: RetryPolicy::default(),
            access_token_margin: Duration::from_secs(5 * 60),
            embed_cache: Some((EmbedTokenCache::DEFAULT_CAPACITY, EmbedTokenCache::DEFAULT_MARGIN)),
            metadata_cache: (1024, Duration::from_secs(10 * 60)),
            refresh_ahead: None,
            shared: None,
            connect: ConnectSettings::default(),
        }
    }
}

/// The longest time bound accepted; longer ones are clamped to it.
pub const MAX_TIME_BOUND: Duration = Duration::from_secs(24 * 60 * 60);

impl ClientSettings {
    /// The cloud with the custom hosts applied.
    ///
    /// # Errors
    /// When a custom URL is invalid (see [`Cloud::custom`]).
    pub fn resolved_cloud(&self) -> Result<Cloud, ExchangeError> {
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

    pub(crate) fn new_metadata_cache(&self) -> MetadataCache {
        let (capacity, ttl) = self.metadata_cache;
        MetadataCache::new(capacity, ttl)
    }

    /// These settings with their time bounds clamped to [`MAX_TIME_BOUND`].
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] naming a setting that is meaningless: a zero time-out,
    /// connect time-out or deadline, or a zero body cap.
    pub fn checked(mut self) -> Result<Self, ExchangeError> {
        for (name, bound) in [
            ("timeout", &mut self.timeout),
            ("connectTimeout", &mut self.connect_timeout),
            ("deadline", &mut self.deadline),
        ] {
            if bound.is_zero() {
                return Err(ExchangeError::invalid_input(name, "must be longer than zero"));
            }
            *bound = (*bound).min(MAX_TIME_BOUND);
        }
        if self.max_response_bytes == 0 {
            return Err(ExchangeError::invalid_input(
                "maxResponseBytes",
                "must be at least 1",
            ));
        }
        if let (Some(window), Some((_, margin))) = (self.refresh_ahead, self.embed_cache)
            && window <= margin
        {
            return Err(ExchangeError::invalid_input(
                "refreshAhead",
                "must be longer than the embed cache's margin (the token is served until the margin)",
            ));
        }
        Ok(self)
    }
}

/// A variable from `lookup` (usually over the process environment), as text: `None` when
/// it is unset or empty.
///
/// # Errors
/// [`ExchangeError::InvalidInput`] naming the variable when its value is not UTF-8 (never quoting it).
pub fn env_text(
    lookup: impl Fn(&str) -> Option<OsString>,
    name: &'static str,
) -> Result<Option<String>, ExchangeError> {
    match lookup(name) {
        None => Ok(None),
        Some(value) => match value.into_string() {
            Ok(text) if text.is_empty() => Ok(None),
            Ok(text) => Ok(Some(text)),
            Err(_) => Err(ExchangeError::invalid_input(
                name,
                "is set but is not valid UTF-8",
            )),
        },
    }
}

/// A service principal's credentials from variables named as Azure tools name them:
/// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`. The caller supplies
/// the lookup (usually over the process environment), so the core reads none itself.
///
/// # Errors
/// [`ExchangeError::InvalidInput`] naming a variable that is missing or malformed, never its value.
pub fn service_principal_from(
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<(TenantId, ClientId, ClientSecret), ExchangeError> {
    let var = |name: &'static str| {
        env_text(&lookup, name)?.ok_or_else(|| ExchangeError::invalid_input(name, "is not set"))
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
    fn meaningless_bounds_are_refused_and_huge_ones_clamped() {
        let zero = ClientSettings {
            timeout: Duration::ZERO,
            ..ClientSettings::default()
        };
        assert_eq!(
            zero.checked().unwrap_err().to_string(),
            "invalid timeout: must be longer than zero (nothing was sent)"
        );
        let huge = ClientSettings {
            deadline: Duration::MAX,
            ..ClientSettings::default()
        }
        .checked()
        .unwrap();
        assert_eq!(huge.deadline, MAX_TIME_BOUND);
    }

    #[test]
    fn credentials_from_a_lookup() {
        let vars = |name: &str| match name {
            "AZURE_TENANT_ID" => Some(OsString::from("contoso.onmicrosoft.com")),
            "AZURE_CLIENT_ID" => Some(OsString::from("00000000-0000-0000-0000-000000000001")),
            _ => None,
        };
        let err = service_principal_from(vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid AZURE_CLIENT_SECRET: is not set (nothing was sent)"
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt as _;
            let bad = |name: &str| match name {
                "AZURE_TENANT_ID" => Some(OsString::from_vec(vec![0xff, b's', b'3'])),
                _ => None,
            };
            let err = service_principal_from(bad).unwrap_err().to_string();
            assert_eq!(
                err,
                "invalid AZURE_TENANT_ID: is set but is not valid UTF-8 (nothing was sent)"
            );
        }
    }
}
