//! A store that replicas share (Redis, through `pbi-embed-redis`): embed tokens kept
//! under keys derived from the request, and a lock so that identical cold requests on
//! different replicas make one call to Power BI.
//!
//! The core only defines the store ([`SharedStore`]) and decides when to use it; the flow
//! hands the driver [`Action::Store`](crate::driver::Action::Store) operations, which it
//! runs with [`StoreOp::run`]. A store that fails or is slow never fails a call: the
//! call goes on as if there were none (its own cache, then Power BI).
//!
//! Embed tokens are locked so that one replica mints each; item metadata (reports',
//! dashboards', tiles' and datasets' answers, as Power BI sent them) is only shared.
//!
//! Keys are `pbi-embed:v1:{token,item,lock}:` and the SHA-256 of the request as the cache knows it
//! (route, body, profile): never a secret, and no identity in clear. Records hold the
//! embed token in clear; a store encrypts them at rest (`pbi-embed-redis` does).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

use crate::api::embed_token::EmbedToken;
use crate::api::request::CacheKey;
use crate::flow::answer::Want;
use crate::flow::io::{Event, Reply, Slot};
use crate::wire::error::BoxError;
use crate::wire::lifetime::Freshness;

/// The future a [`SharedStore`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>;

/// A key-value store shared by replicas, with expiring records and a lock. Each
/// operation should give up quickly (tens of milliseconds) when the store is slow: an
/// error only makes the call go on without it.
pub trait SharedStore: Send + Sync + fmt::Debug + 'static {
    /// The record under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Stores `record` under `key` for `ttl`.
    fn put<'a>(&'a self, key: &'a str, record: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()>;
    /// Takes the lock `key` for `ttl` if no one holds it; whether it was taken.
    fn lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;
    /// Gives up the lock `key` (taken by [`lock`](Self::lock)).
    fn unlock<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
}

/// One operation on the shared store, for the driver to run with [`StoreOp::run`], which
/// gives the [`Event`] that answers the call.
pub struct StoreOp {
    pub(crate) op: Op,
    pub(crate) slot: Slot,
}

pub(crate) enum Op {
    Get(String),
    Put(String, Vec<u8>, Duration),
    Lock(String, Duration),
    Unlock(String),
}

/// What a store operation gave.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreReply {
    /// The record read (`get`).
    Record(Option<Vec<u8>>),
    /// Whether the lock was taken (`lock`).
    Locked(bool),
    /// Done (`put`, `unlock`).
    Done,
}

impl StoreOp {
    /// Runs the operation on `store`, the driver's (none is an error: the call goes on
    /// without a store), and answers the call with what it gave.
    pub async fn run(self, store: Option<&dyn SharedStore>) -> Event {
        let slot = self.slot;
        Event::reply(slot, Reply::Stored(Self::on(self.op, store).await))
    }

    /// Answers the call with what a driver that runs the operation itself got (a driver
    /// without a store answers an error: the call goes on without one).
    pub fn respond(self, reply: Result<StoreReply, BoxError>) -> Event {
        Event::reply(self.slot, Reply::Stored(reply))
    }

    async fn on(op: Op, store: Option<&dyn SharedStore>) -> Result<StoreReply, BoxError> {
        let store = store.ok_or("the client has no shared store")?;
        Ok(match op {
            Op::Get(key) => StoreReply::Record(store.get(&key).await?),
            Op::Put(key, record, ttl) => {
                store.put(&key, &record, ttl).await?;
                StoreReply::Done
            }
            Op::Lock(key, ttl) => StoreReply::Locked(store.lock(&key, ttl).await?),
            Op::Unlock(key) => {
                store.unlock(&key).await?;
                StoreReply::Done
            }
        })
    }

    /// The operation's name (`get`, `put`, `lock`, `unlock`), for logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.op {
            Op::Get(_) => "get",
            Op::Put(..) => "put",
            Op::Lock(..) => "lock",
            Op::Unlock(_) => "unlock",
        }
    }
}

impl fmt::Debug for StoreOp {
    // A record holds an embed token: only the operation and its key are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match &self.op {
            Op::Get(key) | Op::Put(key, ..) | Op::Lock(key, _) | Op::Unlock(key) => key,
        };
        f.debug_struct("StoreOp")
            .field("op", &self.name())
            .field("key", key)
            .finish()
    }
}

/// The store key of what a job wants: an embed token, or an item's metadata.
pub(crate) fn record_key(want: Want, key: &CacheKey) -> String {
    let kind = match want {
        Want::Metadata(_) => "item",
        Want::EmbedToken | Want::Response => "token",
    };
    format!("pbi-embed:v1:{kind}:{}", digest_of(key))
}

/// The lock key of an embed token request.
pub(crate) fn lock_key(key: &CacheKey) -> String {
    format!("pbi-embed:v1:lock:{}", digest_of(key))
}

/// The request's SHA-256, hex.
fn digest_of(key: &CacheKey) -> String {
    hex(&Sha256::digest(key.bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An embed token as a record.
pub(crate) fn encode(token: &EmbedToken) -> Vec<u8> {
    serde_json::json!({
        "token": token.token.secret(),
        "tokenId": token.token_id,
        "expiration": token.expiration_rfc3339(),
    })
    .to_string()
    .into_bytes()
}

/// A record's embed token, if it is one and usable at `now` (outside `margin`).
pub(crate) fn decode(record: &[u8], now: SystemTime, margin: Duration) -> Option<EmbedToken> {
    let token = EmbedToken::from_json(record).ok()?;
    (token.freshness(now, margin) == Freshness::Fresh).then_some(token)
}

/// How long a record of `token` is worth keeping: until `margin` before it expires.
pub(crate) fn record_ttl(token: &EmbedToken, now: SystemTime, margin: Duration) -> Duration {
    token
        .expiration
        .duration_since(now)
        .unwrap_or_default()
        .saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmbedTokenSecret, ReportId, ReportToken, WorkspaceId};

    #[test]
    fn keys_name_no_identity_and_records_round_trip() {
        let request = ReportToken::view(
            WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(),
            ReportId::parse("5b218778-e7a5-4d73-8187-f10824047715").unwrap(),
        )
        .identity(
            crate::EffectiveIdentity::new("john@contoso.com")
                .role("sales")
                .dataset(crate::DatasetId::parse("cfafbeb1-8037-4d0c-896e-a46fb27ff229").unwrap()),
        );
        let key = CacheKey::new(&request, None).unwrap();
        let (token_key, lock_key) = (record_key(Want::EmbedToken, &key), lock_key(&key));
        assert!(token_key.starts_with("pbi-embed:v1:token:") && token_key.len() == 19 + 64);
        assert!(!token_key.contains("john") && lock_key.starts_with("pbi-embed:v1:lock:"));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let token = EmbedToken::new(
            EmbedTokenSecret::new("H4sI.t"),
            "id-1",
            now + Duration::from_secs(3600),
        );
        let record = encode(&token);
        let margin = Duration::from_secs(600);
        assert_eq!(decode(&record, now, margin).unwrap().token_id, "id-1");
        assert_eq!(record_ttl(&token, now, margin), Duration::from_secs(3000));
        let late = now + Duration::from_secs(3001);
        assert!(
            decode(&record, late, margin).is_none(),
            "inside the margin: not used"
        );
        assert!(decode(b"not json", now, margin).is_none());
        let put = StoreOp {
            op: Op::Put(token_key, record, margin),
            slot: Slot { call: 1, serial: 1 },
        };
        assert!(!format!("{put:?}").contains("H4sI"));
    }
}
