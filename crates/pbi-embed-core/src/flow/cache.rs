//! The caches as plain data: identical requests get the same embed token until it is
//! within a margin of its expiry, and item metadata is trusted for a while. Time is a
//! parameter; a driver only holds the lock around the session that owns them.
//!
//! Two requests are identical when they go to the same route with the same body (so the
//! same resources, identities, access level and lifetime) as the same profile. The cache
//! is bounded: when full, expired entries go first, then those closest to expiry.
//!
//! # When to use it
//!
//! Caching suits pages that many users open with the same identity, or no identity: one
//! token then serves them all until shortly before it expires, and Power BI is asked far
//! less often (shared-capacity tokens are limited in number). Turn it off when every
//! token must be fresh, for example when each must be audited separately (`tokenId`
//! correlates a token's use with one GenerateToken call), or when the effective identity
//! differs on every request anyway.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crate::api::embed_token::EmbedToken;
pub(crate) use crate::api::request::CacheKey;
use crate::flow::answer::{Answer, Metadata, Want};
use crate::settings::client_settings::ClientSettings;
use crate::wire::lifetime::Freshness;

/// A bounded map from requests to the embed tokens minted for them.
#[derive(Debug)]
// Public for the benchmarks (`__bench`); the crate's own otherwise.
#[cfg_attr(not(feature = "__bench"), allow(unreachable_pub))]
pub struct EmbedTokenCache {
    capacity: usize,
    margin: Duration,
    /// Each token, and when it was cached.
    entries: HashMap<CacheKey, (EmbedToken, SystemTime)>,
}

#[cfg_attr(not(feature = "__bench"), allow(unreachable_pub))]
impl EmbedTokenCache {
    /// The default number of entries.
    pub const DEFAULT_CAPACITY: usize = 1024;
    /// The default refresh margin: a token is not handed out within 10 minutes of expiry.
    pub const DEFAULT_MARGIN: Duration = Duration::from_secs(10 * 60);

    /// A cache of at most `capacity` tokens, each used until `margin` before it expires.
    #[must_use]
    pub fn new(capacity: usize, margin: Duration) -> Self {
        Self {
            capacity,
            margin,
            entries: HashMap::new(),
        }
    }

    /// The token cached for `key`, if it is fresh at `now`.
    #[must_use]
    pub fn get(&self, key: &CacheKey, now: SystemTime) -> Option<&EmbedToken> {
        self.entries
            .get(key)
            .map(|(token, _)| token)
            .filter(|token| token.freshness(now, self.margin) == Freshness::Fresh)
    }

    /// Whether the token cached for `key` expires within `window` of `now` (time to
    /// mint the next one ahead). A token is due no earlier than halfway through the time
    /// it is served (from when it was cached to `margin` before it expires): a window as
    /// long as the token's life cannot make it due at birth, and a short-lived one
    /// (`lifetimeInMinutes`) is still refreshed before it stops being served.
    pub(crate) fn is_due(&self, key: &CacheKey, now: SystemTime, window: Duration) -> bool {
        self.entries.get(key).is_some_and(|(token, cached)| {
            let life = token.expiration.duration_since(*cached).unwrap_or_default();
            let latest = life.saturating_add(self.margin) / 2;
            token.freshness(now, window.min(latest)) != Freshness::Fresh
        })
    }

    /// Stores a token for `key` (unless it is already too close to expiry to be used).
    pub fn insert(&mut self, key: CacheKey, token: EmbedToken, now: SystemTime) {
        if self.capacity == 0 || token.freshness(now, self.margin) != Freshness::Fresh {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.evict(now);
        }
        self.entries.insert(key, (token, now));
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many tokens are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is held.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Makes room for one: drops what is no longer fresh, else the entry closest to expiry.
    fn evict(&mut self, now: SystemTime) {
        let margin = self.margin;
        self.entries
            .retain(|_, (token, _)| token.freshness(now, margin) == Freshness::Fresh);
        if self.entries.len() >= self.capacity
            && let Some(key) = self
                .entries
                .iter()
                .min_by_key(|(_, (token, _))| token.expiration)
                .map(|(key, _)| key.clone())
        {
            self.entries.remove(&key);
        }
    }
}

impl Default for EmbedTokenCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY, Self::DEFAULT_MARGIN)
    }
}

/// Item metadata by request, each trusted for a time-to-live after it was read; bounded,
/// dropping the oldest first.
#[derive(Debug)]
pub(crate) struct MetadataCache {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<CacheKey, (Metadata, Instant)>,
}

impl MetadataCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            capacity,
            ttl,
            entries: HashMap::new(),
        }
    }

    /// The metadata cached for `key`, if read less than the time-to-live before `now`.
    pub(crate) fn get(&self, key: &CacheKey, now: Instant) -> Option<&Metadata> {
        self.entries
            .get(key)
            .filter(|(_, read)| now.saturating_duration_since(*read) < self.ttl)
            .map(|(metadata, _)| metadata)
    }

    /// Whether the metadata cached for `key` is in the last half of its time-to-live.
    pub(crate) fn is_due(&self, key: &CacheKey, now: Instant) -> bool {
        self.entries
            .get(key)
            .is_some_and(|(_, read)| now.saturating_duration_since(*read) >= self.ttl / 2)
    }

    pub(crate) fn insert(&mut self, key: CacheKey, metadata: Metadata, now: Instant) {
        if self.capacity == 0 || self.ttl.is_zero() {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (_, read)| now.saturating_duration_since(*read) < ttl);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, read))| *read)
                    .map(|(key, _)| key.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (metadata, now));
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Both caches of a session, asked by what a job wants.
#[derive(Debug)]
pub(crate) struct Caches {
    tokens: Option<EmbedTokenCache>,
    metadata: Option<MetadataCache>,
}

impl Caches {
    /// The caches `settings` ask for.
    pub(crate) fn new(settings: &ClientSettings) -> Self {
        let on = |(capacity, _): &(usize, Duration)| *capacity > 0;
        Self {
            tokens: settings
                .embed_cache
                .filter(on)
                .map(|(capacity, margin)| EmbedTokenCache::new(capacity, margin)),
            metadata: settings
                .metadata_cache
                .filter(|cache| on(cache) && !cache.1.is_zero())
                .map(|(capacity, ttl)| MetadataCache::new(capacity, ttl)),
        }
    }

    /// Whether answers of this form are cached (and so shared by identical requests).
    pub(crate) fn keeps(&self, want: Want) -> bool {
        match want {
            Want::EmbedToken => self.tokens.is_some(),
            Want::Metadata(_) => self.metadata.is_some(),
            Want::Response => false,
        }
    }

    /// The cached answer for `key`, if fresh.
    pub(crate) fn get(&self, want: Want, key: &CacheKey, now: (Instant, SystemTime)) -> Option<Answer> {
        match want {
            Want::EmbedToken => self
                .tokens
                .as_ref()?
                .get(key, now.1)
                .map(|token| Answer::Token(token.clone())),
            Want::Metadata(_) => self
                .metadata
                .as_ref()?
                .get(key, now.0)
                .map(|metadata| Answer::Metadata(metadata.clone())),
            Want::Response => None,
        }
    }

    /// Whether the entry for `key` is due for refresh-ahead (an embed token within
    /// `window` of expiry; metadata in the last half of its time-to-live).
    pub(crate) fn is_due(
        &self,
        want: Want,
        key: &CacheKey,
        now: (Instant, SystemTime),
        window: Duration,
    ) -> bool {
        match want {
            Want::EmbedToken => self
                .tokens
                .as_ref()
                .is_some_and(|tokens| tokens.is_due(key, now.1, window)),
            Want::Metadata(_) => self.metadata.as_ref().is_some_and(|m| m.is_due(key, now.0)),
            Want::Response => false,
        }
    }

    /// Keeps an embed token.
    pub(crate) fn put_token(&mut self, key: CacheKey, token: &EmbedToken, now: SystemTime) {
        if let Some(tokens) = &mut self.tokens {
            tokens.insert(key, token.clone(), now);
        }
    }

    /// Keeps item metadata.
    pub(crate) fn put_metadata(&mut self, key: CacheKey, metadata: &Metadata, now: Instant) {
        if let Some(cache) = &mut self.metadata {
            cache.insert(key, metadata.clone(), now);
        }
    }

    /// The embed-token cache's margin: a token is not handed out closer to its expiry.
    pub(crate) fn margin(&self) -> Duration {
        self.tokens
            .as_ref()
            .map_or(EmbedTokenCache::DEFAULT_MARGIN, |tokens| tokens.margin)
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        if let Some(tokens) = &mut self.tokens {
            tokens.clear();
        }
        if let Some(metadata) = &mut self.metadata {
            metadata.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::metadata::Dataset;
    use crate::wire::ids::ProfileId;
    use crate::{DatasetId, DatasetToken, EmbedTokenSecret, WorkspaceId};

    fn key(dataset: &str) -> CacheKey {
        let op = DatasetToken::new(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            DatasetId::parse(dataset).unwrap(),
        );
        CacheKey::new(&op, None).unwrap()
    }

    fn token(expires_in: u64, now: SystemTime) -> EmbedToken {
        EmbedToken {
            token: EmbedTokenSecret::new("t"),
            token_id: format!("id-{expires_in}"),
            expiration: now + Duration::from_secs(expires_in),
        }
    }

    #[test]
    fn hits_until_the_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut cache = EmbedTokenCache::default();
        cache.insert(key("a"), token(3600, now), now);
        assert!(cache.get(&key("a"), now).is_some());
        assert!(cache.get(&key("b"), now).is_none());
        assert!(
            cache
                .get(&key("a"), now + Duration::from_secs(3000 - 1))
                .is_some()
        );
        assert!(cache.get(&key("a"), now + Duration::from_secs(3000)).is_none());
        cache.insert(key("c"), token(300, now), now);
        assert!(
            cache.get(&key("c"), now).is_none(),
            "too close to expiry to cache"
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn due_no_earlier_than_halfway_through_the_time_served() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |s: u64| now + Duration::from_secs(s);
        // A minute-long token served until 40 s before expiry, refreshed from 50 s before:
        // due at 10 s, while it is still served until 20 s.
        let mut short = EmbedTokenCache::new(4, Duration::from_secs(40));
        short.insert(key("a"), token(60, now), now);
        let window = Duration::from_secs(50);
        assert!(!short.is_due(&key("a"), at(9), window));
        assert!(short.is_due(&key("a"), at(10), window) && short.get(&key("a"), at(10)).is_some());
        // A window as long as an hour-long token's life: not due at birth, but halfway
        // through the 50 minutes it is served.
        let mut long = EmbedTokenCache::default();
        long.insert(key("b"), token(3600, now), now);
        let whole = Duration::from_secs(3600);
        assert!(!long.is_due(&key("b"), now, whole));
        assert!(!long.is_due(&key("b"), at(1499), whole));
        assert!(long.is_due(&key("b"), at(1500), whole));
    }

    #[test]
    fn bounded_evicting_the_soonest_to_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut cache = EmbedTokenCache::new(2, Duration::from_secs(60));
        cache.insert(key("a"), token(1000, now), now);
        cache.insert(key("b"), token(2000, now), now);
        cache.insert(key("c"), token(3000, now), now);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key("a"), now).is_none());
        assert!(cache.get(&key("c"), now).is_some());
        let later = now + Duration::from_secs(1950);
        cache.insert(key("d"), token(3000, later), later);
        assert!(cache.get(&key("b"), later).is_none(), "stale entries go first");
        assert!(cache.get(&key("c"), later).is_some());
        let mut off = EmbedTokenCache::new(0, Duration::ZERO);
        off.insert(key("a"), token(1000, now), now);
        assert!(off.is_empty());
    }

    #[test]
    fn metadata_lives_for_its_ttl_and_the_oldest_goes_first() {
        let t0 = Instant::now();
        let dataset = |id: &str| {
            Metadata::Dataset(Dataset {
                id: DatasetId::parse(id).unwrap(),
                name: String::new(),
                is_effective_identity_required: false,
                is_effective_identity_roles_required: false,
                is_refreshable: None,
                is_on_prem_gateway_required: None,
                configured_by: None,
                target_storage_mode: None,
                create_report_embed_url: None,
                qna_embed_url: None,
            })
        };
        let mut cache = MetadataCache::new(2, Duration::from_secs(60));
        cache.insert(key("a"), dataset("a"), t0);
        assert!(cache.get(&key("a"), t0 + Duration::from_secs(59)).is_some());
        assert!(cache.get(&key("a"), t0 + Duration::from_secs(60)).is_none());
        cache.insert(key("b"), dataset("b"), t0 + Duration::from_secs(1));
        cache.insert(key("c"), dataset("c"), t0 + Duration::from_secs(2));
        assert!(
            cache.get(&key("a"), t0 + Duration::from_secs(2)).is_none(),
            "oldest evicted"
        );
        assert!(cache.get(&key("c"), t0 + Duration::from_secs(2)).is_some());
        let mut off = MetadataCache::new(0, Duration::from_secs(60));
        off.insert(key("a"), dataset("a"), t0);
        assert!(off.get(&key("a"), t0).is_none());
    }

    #[test]
    fn keys_differ_by_profile_and_hide_their_bytes() {
        let op = DatasetToken::new(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            DatasetId::parse("a").unwrap(),
        );
        let profile = ProfileId::parse("a4df5235-6f18-4141-9e99-0c3512f41306").unwrap();
        assert_ne!(
            CacheKey::new(&op, None).unwrap(),
            CacheKey::new(&op, Some(&profile)).unwrap()
        );
        assert!(format!("{:?}", key("a")).ends_with("bytes)"));
    }
}
