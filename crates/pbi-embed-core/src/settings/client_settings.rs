//! What every client is configured with, apart from its HTTP stack and its credential:
//! the cloud, time bounds, the body cap, retries, refresh margins and the caches. Every
//! driver's builder fills one of these, so their defaults cannot drift.

use std::time::Duration;

use crate::settings::connect_settings::ConnectSettings;
use crate::settings::retry::RetryPolicy;
use crate::wire::cloud::Cloud;
use crate::wire::error::ExchangeError;
use crate::wire::ids::ProfileId;
use crate::wire::operation::MAX_RESPONSE_BYTES;

/// The caches' default capacity.
pub(crate) const DEFAULT_CACHE_CAPACITY: usize = 1024;
/// The embed-token cache's default margin: a token is not handed out within 10 minutes of
/// expiry.
pub(crate) const DEFAULT_EMBED_MARGIN: Duration = Duration::from_secs(10 * 60);
/// The metadata cache's default time-to-live.
pub(crate) const DEFAULT_METADATA_TTL: Duration = Duration::from_secs(10 * 60);

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
    /// `None` (or a zero capacity) turns it off.
    pub embed_cache: Option<(usize, Duration)>,
    /// The item-metadata cache's capacity and time-to-live (default 1,024 and 10
    /// minutes): reports', dashboards', tiles' metadata and datasets' RLS flags; `None`
    /// (or a zero capacity or time-to-live) turns it off.
    pub metadata_cache: Option<(usize, Duration)>,
    /// Refresh-ahead (default off): a cached embed token this close to expiry (but not
    /// yet inside the embed cache's margin) is served at once and minted again in the
    /// background by one task; item metadata in the last half of its time-to-live is
    /// served and read again the same way. So no caller waits on Power BI for an item it
    /// asks for often. Must be longer than the embed cache's margin.
    pub refresh_ahead: Option<Duration>,
    /// Whether the driver has a shared store ([`SharedStore`](crate::driver::SharedStore))
    /// for embed tokens, and how the flow uses it (default none: the in-process cache).
    pub shared: Option<SharedSettings>,
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
            embed_cache: Some((DEFAULT_CACHE_CAPACITY, DEFAULT_EMBED_MARGIN)),
            metadata_cache: Some((DEFAULT_CACHE_CAPACITY, DEFAULT_METADATA_TTL)),
            refresh_ahead: None,
            shared: None,
            connect: ConnectSettings::default(),
        }
    }
}

/// How the flow uses a store shared with other replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedSettings {
    /// How long a lock is held at most: a replica that dies holding one delays the
    /// others this long, and a lock held longer (one left with no expiry) is passed by
    /// after this long (default 5 s).
    pub lock_ttl: Duration,
    /// How often a replica waiting for another's token looks for it (default 25 ms).
    pub poll: Duration,
}

impl Default for SharedSettings {
    fn default() -> Self {
        Self {
            lock_ttl: Duration::from_secs(5),
            poll: Duration::from_millis(25),
        }
    }
}

/// The longest refresh-ahead window accepted: half an embed token's usual hour.
pub const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(30 * 60);

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
        if self
            .refresh_ahead
            .is_some_and(|window| window > MAX_REFRESH_AHEAD)
        {
            return Err(ExchangeError::invalid_input(
                "refreshAhead",
                "must be at most 30 minutes: embed tokens live about an hour, and a longer window would mint again at every call",
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
}
