//! Replicas (async clients, each with its own cache and its own `RedisStore`) sharing one
//! real `redis-server` and one emulator: what reached Power BI, and what Redis holds.

use std::sync::Arc;
use std::time::Duration;

use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use pbi_embed_redis::{EncryptionKey, RedisStore};
use pbi_embed_reqwest::{Client, ReportToken};
use pbi_embed_testkit::redis::RedisServer;
use pbi_embed_testkit::{Ids, service_principal, settings_for};

const KEY: [u8; 32] = *b"replicas-share-this-32-byte-key!";

fn replica(emulator: &Emulator, redis: &RedisServer) -> Client {
    let store = RedisStore::new(&redis.url(), EncryptionKey::new("k1", &KEY).unwrap())
        .unwrap()
        .timeout(Duration::from_millis(200));
    Client::builder()
        .settings(settings_for(emulator))
        .credential(service_principal(emulator))
        .shared_store(Arc::new(store))
        .build()
        .unwrap()
}

fn pair(ids: &Ids, user: usize) -> ReportToken {
    ReportToken::view(ids.workspace.clone(), ids.rls_report.clone())
        .identity(ids.rls_identity(&format!("user{user}@contoso.com")))
}

/// Every request of `users` × `per_pair`, spread over the replicas, all at once; the
/// token ids by user.
async fn storm(
    replicas: &[Client],
    ids: &Ids,
    users: std::ops::Range<usize>,
    per_pair: usize,
) -> Vec<(usize, String)> {
    let mut tasks = Vec::new();
    for n in 0..users.len() * per_pair {
        let user = users.start + n % users.len();
        let (client, request) = (replicas[n % replicas.len()].clone(), pair(ids, user));
        tasks.push(tokio::spawn(
            async move { (user, client.embed_token(&request).await) },
        ));
    }
    let mut minted = Vec::new();
    for task in tasks {
        let (user, result) = task.await.unwrap();
        minted.push((
            user,
            result
                .unwrap_or_else(|e| panic!("a request failed: {e}"))
                .token_id,
        ));
    }
    minted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_replicas_make_one_call_per_pair_and_store_no_token_in_clear() {
    let emulator = Emulator::start().unwrap();
    // Power BI takes its time, so that the cold requests overlap.
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 150 },
    ));
    let ids = Ids::of(&emulator);
    let redis = RedisServer::start();
    let replicas: Vec<Client> = (0..4).map(|_| replica(&emulator, &redis)).collect();
    let minted = storm(&replicas, &ids, 0..50, 8).await;
    assert_eq!(minted.len(), 400);
    assert_eq!(
        emulator.generate_token_requests(),
        50,
        "one GenerateToken per (user, report)"
    );
    for user in 0..50 {
        let mut tokens: Vec<&String> = minted
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, t)| t)
            .collect();
        tokens.dedup();
        assert_eq!(tokens.len(), 1, "every replica served user {user} the same token");
    }
    let dump = redis.dump();
    let records: Vec<_> = dump
        .iter()
        .filter(|(key, _)| key.starts_with("pbi-embed:v1:token:"))
        .collect();
    assert_eq!(
        records.len(),
        50,
        "{:?}",
        dump.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    assert!(
        dump.iter().all(|(key, _)| !key.starts_with("pbi-embed:v1:lock:")),
        "every lock given up"
    );
    for (key, value) in &dump {
        assert!(!key.contains("user"), "no identity in a key: {key}");
        let text = String::from_utf8_lossy(value);
        assert!(
            !text.contains("EMU1.") && !text.contains("tokenId"),
            "a token in clear under {key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_fails_no_request_and_sharing_resumes_when_it_is_back() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let mut redis = RedisServer::start();
    let replicas: Vec<Client> = (0..4).map(|_| replica(&emulator, &redis)).collect();
    storm(&replicas, &ids, 0..10, 4).await;
    assert_eq!(emulator.generate_token_requests(), 10);

    // Stopped in the middle of a run (Power BI slowed so that the run is under way):
    // new pairs go to Power BI from each replica; nothing fails.
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 150 },
    ));
    let running = {
        let (replicas, ids) = (replicas.clone(), ids.clone());
        tokio::spawn(async move { storm(&replicas, &ids, 100..110, 4).await })
    };
    tokio::time::sleep(Duration::from_millis(60)).await;
    redis.stop();
    let minted = running.await.unwrap();
    emulator.clear_faults();
    assert_eq!(minted.len(), 40, "no request failed");
    let during = emulator.generate_token_requests() - 10;
    assert!((10..=40).contains(&during), "{during} calls while Redis was down");

    // Back (empty): a new pair is minted once and the other replicas read it.
    redis.restart();
    let before = emulator.generate_token_requests();
    // Each replica's connection comes back at its first command after the restart (the
    // one that finds it broken goes to Power BI): probe each until it writes again.
    let started = std::time::Instant::now();
    let mut probe = 1000;
    for replica in &replicas {
        loop {
            let records = redis.dump().len();
            probe += 1;
            replica.embed_token(&pair(&ids, probe)).await.unwrap();
            if redis.dump().len() > records {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "a replica never wrote again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let before_shared = emulator.generate_token_requests();
    let request = pair(&ids, 5000);
    replicas[1].embed_token(&request).await.unwrap();
    for replica in &replicas[2..] {
        replica.embed_token(&request).await.unwrap();
    }
    replicas[0].embed_token(&request).await.unwrap();
    assert_eq!(
        emulator.generate_token_requests() - before_shared,
        1,
        "shared again"
    );
    assert!(emulator.generate_token_requests() >= before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_dies_holding_the_lock_delays_the_others_only_its_ttl() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let redis = RedisServer::start();
    let lock_ttl = Duration::from_secs(1);
    let with_short_locks = || {
        let mut settings = settings_for(&emulator);
        settings.shared = Some(pbi_embed_core::SharedSettings {
            lock_ttl,
            poll: Duration::from_millis(25),
        });
        let store = RedisStore::new(&redis.url(), EncryptionKey::new("k1", &KEY).unwrap()).unwrap();
        Client::builder()
            .settings(settings)
            .credential(service_principal(&emulator))
            .shared_store(Arc::new(store))
            .build()
            .unwrap()
    };
    let (dying, survivor) = (with_short_locks(), with_short_locks());
    // The first GenerateToken hangs; its replica dies (the call is dropped) holding the lock.
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 3000 },
    ));
    let request = pair(&ids, 7);
    let doomed = {
        let request = request.clone();
        tokio::spawn(async move { dying.embed_token(&request).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.abort();
    assert!(
        redis
            .dump()
            .iter()
            .any(|(key, _)| key.starts_with("pbi-embed:v1:lock:")),
        "the lock is left behind"
    );
    let started = std::time::Instant::now();
    survivor.embed_token(&request).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(600),
        "it waited for the lock: {waited:?}"
    );
    assert!(
        waited < lock_ttl + Duration::from_millis(800),
        "no longer than the lock's TTL: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_left_without_a_ttl_delays_a_request_one_ttl_and_it_succeeds() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let redis = RedisServer::start();
    let lock_ttl = Duration::from_secs(1);
    let replica = || {
        let mut settings = settings_for(&emulator);
        settings.shared = Some(pbi_embed_core::SharedSettings {
            lock_ttl,
            poll: Duration::from_millis(25),
        });
        let store = RedisStore::new(&redis.url(), EncryptionKey::new("k1", &KEY).unwrap()).unwrap();
        Client::builder()
            .settings(settings)
            .credential(service_principal(&emulator))
            .shared_store(Arc::new(store))
            .build()
            .unwrap()
    };
    let request = pair(&ids, 9);
    replica().embed_token(&request).await.unwrap();
    let record = redis
        .dump()
        .into_iter()
        .map(|(key, _)| key)
        .find(|key| key.starts_with("pbi-embed:v1:token:"))
        .expect("the record");
    // Someone sets the lock by hand, with no expiry, and the record goes.
    redis.command(&["DEL", &record]);
    redis.command(&["SET", &record.replace(":token:", ":lock:"), "stuck"]);
    let before = emulator.generate_token_requests();
    let started = std::time::Instant::now();
    replica().embed_token(&request).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= lock_ttl, "it waited for the holder first: {waited:?}");
    assert!(
        waited < lock_ttl + Duration::from_millis(800),
        "then minted without the lock: {waited:?}"
    );
    assert_eq!(emulator.generate_token_requests(), before + 1);
}

/// What redis-server has sent its clients so far, in bytes.
fn bytes_sent(redis: &RedisServer) -> u64 {
    let info = redis.command(&["INFO", "stats"]).pop().unwrap_or_default();
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|line| line.strip_prefix("total_net_output_bytes:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_value_under_a_record_key_is_a_miss_that_costs_a_bounded_read() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let redis = RedisServer::start();
    let request = pair(&ids, 11);
    replica(&emulator, &redis).embed_token(&request).await.unwrap();
    let record = redis
        .dump()
        .into_iter()
        .map(|(key, _)| key)
        .find(|key| key.starts_with("pbi-embed:v1:token:"))
        .expect("the record");
    // 16 MiB of junk under the record's key (SETRANGE pads with zero bytes).
    redis.command(&["SETRANGE", &record, &(16 * 1024 * 1024).to_string(), "x"]);
    let before = (bytes_sent(&redis), emulator.generate_token_requests());
    replica(&emulator, &redis).embed_token(&request).await.unwrap();
    let sent = bytes_sent(&redis) - before.0;
    assert_eq!(
        emulator.generate_token_requests(),
        before.1 + 1,
        "a miss: minted again"
    );
    // Two reads (before and after taking the lock) of at most 1 MiB each, not 16 MiB.
    assert!(sent < 4 * 1024 * 1024, "redis sent {sent} bytes for it");
}
