//! A Redis store for pbi-embed: replicas of a backend share embed tokens, so R replicas
//! make one GenerateToken call where they made R, and identical cold requests on
//! different replicas wait for one of them (a lock with a short TTL) instead of each
//! calling Power BI.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pbi_embed_redis::{EncryptionKey, RedisStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // 32 bytes from your secret store, base64 (PBI_CACHE_KEY in the token service).
//! let key = EncryptionKey::from_base64("k1", "q0bq0NyS4v6V9xZ3lq7QnY1n7n9pXk3iY0fRkq1bq0A=")?;
//! let store = RedisStore::new("redis://127.0.0.1:6379/", key)?;
//! let client = pbi_embed_reqwest::Client::builder()
//!     .from_env()?
//!     .shared_store(Arc::new(store))
//!     .build()?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! - **Encrypted at rest.** Each record is AES-256-GCM under the application's key, with
//!   the key's id stored beside it and the Redis key as associated data: a dump or
//!   `MONITOR` shows no usable token, and a record moved to another key does not
//!   decrypt. Give older keys with [`RedisStore::previous_key`] to rotate.
//! - **Never a single point of failure.** Every command is bounded (50 ms by default);
//!   when Redis is down or slow the client serves from its own cache and Power BI, and
//!   says so once in the log. After a failure the store does not ask Redis again for a
//!   second ([`RETRY_AFTER`]), so a slow Redis costs nothing meanwhile; then one command
//!   tries, and when Redis is back, sharing resumes.
//! - Keys are `pbi-embed:v1:token:` and `pbi-embed:v1:lock:` followed by the SHA-256 of
//!   the request: never a secret, no identity in clear.

mod env;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use pbi_embed_core::BoxError;
use pbi_embed_core::driver::{SharedStore, StoreFuture};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

/// The default bound on one Redis command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// How long commands fail at once after one failed.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// The record format's version byte.
const VERSION: u8 = 1;
/// The longest key id.
const MAX_KEY_ID: usize = 64;
/// The largest record read back: a sealed embed token or item metadata (Power BI's
/// answers are capped at 1 MiB), with its envelope.
const MAX_RECORD_BYTES: usize = 1024 * 1024 + 256;

/// A 256-bit key for records at rest, with the id stored beside each record. Debug shows
/// the id only.
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    key: Arc<LessSafeKey>,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a key or a URL was refused.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl EncryptionKey {
    /// A key of exactly 32 bytes, named `id` (1 to 64 characters of `A-Za-z0-9._-`).
    ///
    /// # Errors
    /// A key of another length or an invalid id; the error never quotes the key.
    pub fn new(id: &str, key: &[u8]) -> Result<Self, ConfigError> {
        let valid_id = !id.is_empty()
            && id.len() <= MAX_KEY_ID
            && id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid_id {
            return Err(ConfigError(
                "the key id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'".into(),
            ));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| ConfigError(format!("the key {id} must be 32 bytes, not {}", key.len())))?;
        // All zeros (an unset buffer), or any one byte 32 times: a placeholder, not a key.
        if key.windows(2).all(|pair| pair[0] == pair[1]) {
            return Err(ConfigError(format!(
                "the key {id} is one byte repeated, a placeholder rather than a key: make one with `openssl rand -base64 32`"
            )));
        }
        Ok(Self {
            id: id.to_owned(),
            key: Arc::new(LessSafeKey::new(unbound)),
        })
    }

    /// A key given as base64 (standard alphabet, padded or not), as `PBI_CACHE_KEY` holds it.
    ///
    /// # Errors
    /// Not base64, or not 32 bytes once decoded; the error never quotes the key.
    pub fn from_base64(id: &str, key: &str) -> Result<Self, ConfigError> {
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let bytes = engine
            .decode(key.trim())
            .map_err(|_| ConfigError(format!("the key {id} is not base64")))?;
        Self::new(id, &bytes)
    }

    /// Its id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Embed tokens in Redis, encrypted, for [`ClientBuilder::shared_store`](pbi_embed_core::ClientBuilder::shared_store).
pub struct RedisStore {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    key: EncryptionKey,
    previous: Vec<EncryptionKey>,
    timeout: Duration,
    /// This store's lock value: only its own locks are given up.
    owner: String,
    random: SystemRandom,
    /// Whether the last command failed (to log an outage once, and its end).
    down: AtomicBool,
    /// While Redis fails, commands before this instant fail at once (no one waits for a
    /// Redis that is slow); the first after it tries Redis again.
    retry_at: std::sync::Mutex<Option<Instant>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.client.get_connection_info();
        f.debug_struct("RedisStore")
            .field("addr", &info.addr().to_string())
            .field("key", &self.key.id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`, `rediss://` for TLS, a password in the
    /// URL is never shown), encrypting with `key`. Connects lazily: Redis may be down at
    /// start.
    ///
    /// # Errors
    /// An invalid URL (not quoted: it may hold a password).
    pub fn new(url: &str, key: EncryptionKey) -> Result<Self, ConfigError> {
        let client = redis::Client::open(url)
            .map_err(|_| ConfigError("the Redis URL is not valid (redis://host:port/db)".into()))?;
        let random = SystemRandom::new();
        let mut owner = [0u8; 16];
        random
            .fill(&mut owner)
            .map_err(|_| ConfigError("no randomness for the lock owner".into()))?;
        Ok(Self {
            client,
            connection: Mutex::new(None),
            key,
            previous: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            owner: owner.iter().map(|b| format!("{b:02x}")).collect(),
            random,
            down: AtomicBool::new(false),
            retry_at: std::sync::Mutex::new(None),
        })
    }

    /// Also decrypts records written under an older key (rotation: write with the new
    /// key, read both until the old records expire).
    #[must_use]
    pub fn previous_key(mut self, key: EncryptionKey) -> Self {
        self.previous.push(key);
        self
    }

    /// The bound on each command (default 50 ms): past it the call goes on without Redis.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs one command, bounded, logging an outage once and its end. After a failure,
    /// commands fail at once for [`RETRY_AFTER`], then one tries Redis again.
    async fn command<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, BoxError> {
        let retry_at = |at: Option<Instant>| {
            if let Ok(mut retry_at) = self.retry_at.lock() {
                *retry_at = at;
            }
        };
        match self.retry_at.lock().ok().and_then(|at| *at) {
            Some(at) if Instant::now() < at => {
                return Err("Redis failed a moment ago; not asked again yet".into());
            }
            // This command tries Redis again; the others fail at once meanwhile.
            Some(_) => retry_at(Instant::now().checked_add(RETRY_AFTER)),
            None => {}
        }
        let result = tokio::time::timeout(self.timeout, async {
            let mut connection = self.connection().await?;
            command
                .query_async::<T>(&mut connection)
                .await
                .map_err(BoxError::from)
        })
        .await
        .unwrap_or_else(|_| Err("Redis did not answer in time".into()));
        retry_at(
            result
                .is_err()
                .then(|| Instant::now().checked_add(RETRY_AFTER))
                .flatten(),
        );
        match &result {
            Ok(_) if self.down.swap(false, Ordering::Relaxed) => {
                tracing::info!("Redis answers again: embed tokens are shared again");
            }
            Err(error) if !self.down.swap(true, Ordering::Relaxed) => {
                tracing::warn!(%error, "Redis is unreachable: serving from this process's cache and Power BI until it is back");
            }
            _ => {}
        }
        result
    }

    /// The connection, made on first use (the manager reconnects by itself after).
    async fn connection(&self) -> Result<ConnectionManager, BoxError> {
        let mut connection = self.connection.lock().await;
        if let Some(manager) = connection.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *connection = Some(manager.clone());
        Ok(manager)
    }

    /// `record` sealed for `redis_key`: version, key id, nonce, ciphertext and tag.
    fn seal(&self, redis_key: &str, record: &[u8]) -> Result<Vec<u8>, BoxError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| "no randomness for a nonce")?;
        let mut sealed = record.to_vec();
        self.key
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(redis_key),
                &mut sealed,
            )
            .map_err(|_| "the record could not be encrypted")?;
        let id = self.key.id.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.push(u8::try_from(id.len()).map_err(|_| "key id too long")?);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The record in `sealed`, if a known key opens it for `redis_key`.
    fn open(&self, redis_key: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        let (&id_len, rest) = rest.split_first()?;
        if version != VERSION || rest.len() < usize::from(id_len) + NONCE_LEN {
            return None;
        }
        let (id, rest) = rest.split_at(usize::from(id_len));
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key = std::iter::once(&self.key)
            .chain(&self.previous)
            .find(|key| key.id.as_bytes() == id)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(redis_key), &mut buffer)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Milliseconds for a TTL, at least 1.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl SharedStore for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            // At most one byte past the largest record: a huge value someone put under the
            // key costs this much, not its size, at every request.
            let mut get = redis::cmd("GETRANGE");
            get.arg(key).arg(0).arg(MAX_RECORD_BYTES);
            let sealed: Vec<u8> = self.command(get).await?;
            if sealed.is_empty() || sealed.len() > MAX_RECORD_BYTES {
                return Ok(None);
            }
            // A record no key opens (another application's, a retired key) is a miss.
            Ok(self.open(key, &sealed))
        })
    }

    fn put<'a>(&'a self, key: &'a str, record: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let sealed = self.seal(key, record)?;
            let mut set = redis::cmd("SET");
            set.arg(key).arg(sealed).arg("PX").arg(millis(ttl));
            self.command::<()>(set).await
        })
    }

    fn lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut set = redis::cmd("SET");
            set.arg(key).arg(&self.owner).arg("NX").arg("PX").arg(millis(ttl));
            let taken: Option<String> = self.command(set).await?;
            Ok(taken.is_some())
        })
    }

    fn unlock<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // Only our own lock: it may have expired and been taken by another replica.
            let mut eval = redis::cmd("EVAL");
            eval.arg("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")
                .arg(1)
                .arg(key)
                .arg(&self.owner);
            self.command::<i64>(eval).await.map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_1: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
    const KEY_2: [u8; 32] = *b"fedcba9876543210fedcba9876543210";

    #[test]
    fn a_placeholder_key_is_refused() {
        for placeholder in [[0; 32], [0x42; 32]] {
            let error = EncryptionKey::new("k1", &placeholder).unwrap_err().to_string();
            assert!(
                error.contains("placeholder") && error.contains("openssl rand"),
                "{error}"
            );
        }
        assert!(EncryptionKey::new("k1", &KEY_1).is_ok());
    }

    fn new_store() -> RedisStore {
        RedisStore::new("redis://127.0.0.1:1/", EncryptionKey::new("k2", &KEY_2).unwrap()).unwrap()
    }

    #[test]
    fn records_are_sealed_to_their_key_and_open_with_any_known_key() {
        let store = new_store().previous_key(EncryptionKey::new("k1", &KEY_1).unwrap());
        let sealed = store
            .seal("pbi-embed:v1:token:aa", b"{\"token\":\"H4sI.secret\"}")
            .unwrap();
        assert!(!sealed.windows(4).any(|w| w == b"H4sI"), "no token in clear");
        assert_eq!(&sealed[2..4], b"k2", "the key id is stored");
        assert_eq!(
            store.open("pbi-embed:v1:token:aa", &sealed).unwrap(),
            b"{\"token\":\"H4sI.secret\"}"
        );
        assert!(
            store.open("pbi-embed:v1:token:bb", &sealed).is_none(),
            "bound to its key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(store.open("pbi-embed:v1:token:aa", &tampered).is_none());
        // Written under the older key: still read after a rotation.
        let old = RedisStore::new("redis://127.0.0.1:1/", EncryptionKey::new("k1", &KEY_1).unwrap()).unwrap();
        let sealed = old.seal("pbi-embed:v1:token:aa", b"old").unwrap();
        assert_eq!(store.open("pbi-embed:v1:token:aa", &sealed).unwrap(), b"old");
        assert!(
            new_store().open("pbi-embed:v1:token:aa", &sealed).is_none(),
            "an unknown key id"
        );
        for short in [&[][..], &[1], &[1, 5, b'k'], &[9, 0, 0]] {
            assert!(store.open("k", short).is_none());
        }
    }

    #[test]
    fn keys_and_urls_are_checked_without_being_quoted() {
        let error = EncryptionKey::from_base64("k1", "c2hvcnQ=")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("32 bytes, not 5") && !error.contains("c2hvcnQ"),
            "{error}"
        );
        assert!(EncryptionKey::from_base64("k1", "%%%").is_err());
        assert!(EncryptionKey::new("", &[0; 32]).is_err());
        assert!(EncryptionKey::new("k 1", &[0; 32]).is_err());
        let key = EncryptionKey::from_base64("k1", &base64::engine::general_purpose::STANDARD.encode(KEY_1))
            .unwrap();
        assert!(!format!("{key:?}").contains("9"), "{key:?}");
        let error = RedisStore::new("nope://user:hunter2@host", key.clone())
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        let store = RedisStore::new("redis://:hunter2@127.0.0.1:6390/0", key).unwrap();
        assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
    }

    #[tokio::test]
    async fn a_redis_that_is_down_fails_fast_and_is_not_asked_again_at_once() {
        let store = new_store();
        let started = Instant::now();
        let first = store.get("pbi-embed:v1:token:aa").await.unwrap_err().to_string();
        assert!(!first.contains("not asked again"), "{first}");
        let second = store
            .lock("pbi-embed:v1:lock:aa", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(second.to_string().contains("not asked again"), "{second}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // After the pause, Redis is asked again.
        *store.retry_at.lock().unwrap() = Some(Instant::now());
        let third = store.get("pbi-embed:v1:token:aa").await.unwrap_err().to_string();
        assert!(!third.contains("not asked again"), "{third}");
    }
}
