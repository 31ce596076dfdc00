//! The broker against the emulator, which is both Power BI and the callers' identity
//! provider: caller authentication, customers kept apart, identities mapped, and what
//! reached Power BI.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pbi_embed_emulator::{Emulator, Route, UserToken};
use pbi_embed_reqwest::Client;
use pbi_embed_server::{Broker, Config, Readiness};
use pbi_embed_testkit::Ids;
use serde_json::Value;
use sha2::{Digest, Sha256};

const AUDIENCE: &str = "api://broker";
const PROFILE_A: &str = "a4df5235-6f18-4141-9e99-0c3512f41306";
const PROFILE_B: &str = "0b6c4f39-7d5e-4f0e-9a34-3a9cf1a1d2b7";
const API_KEY: &str = "a backend's long random key";

fn config_text(emulator: &Emulator, ids: &Ids) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
requests_per_minute = 1000
cors_origins = ["https://app.contoso.com"]

[[issuers]]
issuer = "{issuer}"
audience = "{AUDIENCE}"
customer_claim = "tid"
unmapped_roles = "drop"
jwks_refetch_seconds = 1

[issuers.roles]
"Sales.Manager" = ["{role}"]

[[api_keys]]
name = "billing"
sha256 = "{key_hash}"
customer = "tenant-a"

[[customers]]
id = "tenant-a"
workspace = "{workspace}"
profile = "{PROFILE_A}"
roles = ["{role}"]
items = [{{ type = "report", id = "{rls_report}" }}]

[[customers]]
id = "tenant-c"
workspace = "{workspace}"
roles = ["{role}"]
identity = "where-required"
editable = true
all_items = true

[[customers]]
id = "tenant-b"
workspace = "{workspace}"
profile = "{PROFILE_B}"
identity = "where-required"
items = [{{ type = "report", id = "{report}" }}]
"#,
        issuer = emulator.user_token_issuer(),
        role = ids.rls_role,
        key_hash = Sha256::digest(API_KEY.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        workspace = ids.workspace,
        rls_report = ids.rls_report,
        report = ids.report,
    )
}

fn client(emulator: &Emulator, secret: Option<&str>) -> Client {
    let (tenant, client_id, right) = Ids::of(emulator).credentials();
    let secret = secret.map_or(right, |s| pbi_embed_reqwest::ClientSecret::new(s.to_owned()));
    Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(tenant, client_id, secret)
        .build()
        .unwrap()
}

/// A broker on a free port: its base URL.
async fn start(broker: Broker) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(pbi_embed_server::serve(broker, listener, std::future::pending()));
    format!("http://{addr}")
}

fn user(emulator: &Emulator, username: &str, tenant: &str, roles: &[&str]) -> String {
    let mut token = UserToken::new(username, AUDIENCE);
    token.tenant = Some(tenant.to_owned());
    token.roles = roles.iter().map(|r| (*r).to_owned()).collect();
    emulator.issue_user_token(&token)
}

async fn get(url: &str, bearer: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A token with `header` and `claims`, signed with nonsense (or not at all).
fn forged(header: &Value, claims: &Value, signature: &str) -> String {
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{signature}", encode(header), encode(claims))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_authenticated_and_customers_kept_apart() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let config = Config::parse("broker.toml", &config_text(&emulator, &ids)).unwrap();
    let broker = Broker::new(config, client(&emulator, None)).unwrap();
    assert_eq!(broker.warm_up().await, Readiness::Ready);
    let base = start(broker).await;
    let report_a = format!("{base}/v1/embed/report/{}", ids.rls_report);
    let report_b = format!("{base}/v1/embed/report/{}", ids.report);
    emulator.reset_stats();

    // A's user, with a role claim mapped to the dataset's RLS role.
    let alice = user(
        &emulator,
        "alice@a.com",
        "tenant-a",
        &["Sales.Manager", "Unmapped"],
    );
    let (status, headers, body) = get(&report_a, Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        body["refreshAt"].is_string() && body["accessToken"].is_string(),
        "{body}"
    );
    let minted = emulator.minted_token(body["tokenId"].as_str().unwrap()).unwrap();
    assert_eq!(
        minted.profile_id.as_deref(),
        Some(PROFILE_A),
        "A's profile reached Power BI"
    );
    assert_eq!(minted.identities.len(), 1, "{minted:?}");
    assert_eq!(minted.identities[0].username.as_deref(), Some("alice@a.com"));
    assert_eq!(
        minted.identities[0].roles,
        std::slice::from_ref(&ids.rls_role),
        "mapped; the unmapped value dropped"
    );

    // B's user: B's profile, and no identity (B's report's dataset requires none, and B
    // sends the user's identity only where one is required).
    let bob = user(&emulator, "bob@b.com", "tenant-b", &[]);
    let (status, _, body) = get(&report_b, Some(&bob)).await;
    assert_eq!(status, 200, "{body}");
    let minted = emulator.minted_token(body["tokenId"].as_str().unwrap()).unwrap();
    assert_eq!(minted.profile_id.as_deref(), Some(PROFILE_B));
    assert!(minted.identities.is_empty(), "{minted:?}");

    // A's user asking for B's report: 403 naming it, and nothing reaches Power BI.
    let before = emulator.stats();
    let (status, _, body) = get(&report_b, Some(&alice)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains(&ids.report.to_string()),
        "{body}"
    );
    assert_eq!(
        emulator.stats().requests,
        before.requests,
        "nothing sent for a refusal"
    );
    assert_eq!(
        emulator.requests(Route::EntraToken),
        0,
        "one sign-in (at warm-up) serves both customers"
    );

    // The API key of a trusted backend, naming the user in a header.
    let response = reqwest::Client::new()
        .get(&report_a)
        .header("x-api-key", API_KEY)
        .header("x-pbi-username", "carol@a.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let minted = emulator.minted_token(body["tokenId"].as_str().unwrap()).unwrap();
    assert_eq!(minted.identities[0].username.as_deref(), Some("carol@a.com"));
    assert_eq!(
        minted.identities[0].roles,
        std::slice::from_ref(&ids.rls_role),
        "the customer's default roles"
    );
    let wrong = reqwest::Client::new()
        .get(&report_a)
        .header("x-api-key", "a wrong key")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // Every way a bearer token can be wrong: 401, and nothing sent.
    let minted_before = emulator.stats().minted;
    let mut expired = UserToken::new("alice@a.com", AUDIENCE);
    expired.tenant = Some("tenant-a".into());
    expired.lifetime_seconds = -120; // past the 60 s leeway
    let mut early = expired.clone();
    early.lifetime_seconds = 3600;
    early.not_before_seconds = 600;
    let mut elsewhere = early.clone();
    elsewhere.not_before_seconds = 0;
    elsewhere.audience = "api://another-app".into();
    let claims = serde_json::json!({
        "iss": emulator.user_token_issuer(), "aud": AUDIENCE, "tid": "tenant-a",
        "preferred_username": "mallory", "exp": 4_000_000_000u64,
    });
    let other_issuer = {
        let mut c = claims.clone();
        c["iss"] = "https://evil.example/v2.0".into();
        c
    };
    let valid_kid = jsonwebtoken::decode_header(&alice).unwrap().kid.unwrap();
    let cases = [
        ("no token", None),
        ("expired", Some(emulator.issue_user_token(&expired))),
        ("not yet valid", Some(emulator.issue_user_token(&early))),
        ("another audience", Some(emulator.issue_user_token(&elsewhere))),
        (
            "another issuer",
            Some(forged(
                &serde_json::json!({"alg": "RS256", "kid": valid_kid}),
                &other_issuer,
                "c2ln",
            )),
        ),
        (
            "alg none",
            Some(forged(&serde_json::json!({"alg": "none"}), &claims, "")),
        ),
        (
            "HS256 keyed with the public key",
            Some(hs256_with_public_key(&emulator, &claims, &valid_kid).await),
        ),
        (
            "unknown kid",
            Some(forged(
                &serde_json::json!({"alg": "RS256", "kid": "not-published"}),
                &claims,
                "c2ln",
            )),
        ),
        (
            "a valid header with another signature",
            Some(forged(
                &serde_json::json!({"alg": "RS256", "kid": valid_kid}),
                &claims,
                "c2ln",
            )),
        ),
    ];
    for (case, token) in cases {
        let (status, headers, body) = get(&report_a, token.as_deref()).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(headers["www-authenticate"], "Bearer", "{case}");
    }
    assert_eq!(
        emulator.stats().minted,
        minted_before,
        "nothing minted for a refused caller"
    );

    // Only GET mints; a repeated parameter is refused.
    let head = reqwest::Client::new()
        .head(&report_a)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 405);
    let (status, _, body) = get(&format!("{report_a}?page=a&page=b"), Some(&alice)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("page")), "{body}");
    assert_eq!(emulator.stats().minted, minted_before);

    // The metrics count what was done, and what reached Power BI as the emulator saw it.
    assert_eq!(emulator.stats().minted, 3);
    let (_, _, metrics) = get(&format!("{base}/metrics"), None).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    for line in [
        "pbi_broker_requests_total{route=\"report\",status=\"200\",customer=\"tenant-a\"} 2",
        "pbi_broker_requests_total{route=\"report\",status=\"200\",customer=\"tenant-b\"} 1",
        "pbi_broker_requests_total{route=\"report\",status=\"403\",customer=\"tenant-a\"} 1",
        "pbi_broker_requests_total{route=\"report\",status=\"401\",customer=\"\"} 10",
        "pbi_broker_ready 1",
        // Three tokens, one sign-in (at warm-up).
        "pbi_upstream_requests_total{operation=\"EmbedToken_GenerateToken\",status=\"200\"} 3",
        "pbi_upstream_requests_total{operation=\"Entra_ClientCredentials\",status=\"200\"} 1",
        "pbi_cache_lookups_total{cache=\"embed_token\",result=\"miss\"} 3",
        "pbi_throttled_total 0",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

/// The classic confusion attack: HS256, keyed with the RSA public key's bytes.
async fn hs256_with_public_key(emulator: &Emulator, claims: &Value, kid: &str) -> String {
    let jwks: Value = reqwest::get(format!(
        "{}/{}/discovery/v2.0/keys",
        emulator.base_url(),
        emulator.ids().tenant
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let modulus = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(modulus.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_the_credential_is_refused() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let config = Config::parse("broker.toml", &config_text(&emulator, &ids)).unwrap();
    let broker = Broker::new(config, client(&emulator, Some("a wrong secret"))).unwrap();
    let base = start(broker.clone()).await;
    let (status, _, body) = get(&format!("{base}/readyz"), None).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("starting")));
    assert!(matches!(broker.warm_up().await, Readiness::NotReady(_)));
    let (status, _, body) = get(&format!("{base}/readyz"), None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("sign in"), "{body}");
    let (status, _, _) = get(&format!("{base}/healthz"), None).await;
    assert_eq!(status, 200, "alive all the same");

    // A caller gets the broker's words: no upstream host, no 401 passed through.
    let alice = user(&emulator, "alice@a.com", "tenant-a", &["Sales.Manager"]);
    let (status, _, body) = get(
        &format!("{base}/v1/embed/report/{}", ids.rls_report),
        Some(&alice),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("a wrong secret"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_picked_up_without_a_restart_and_made_up_kids_cost_one_fetch() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let config = Config::parse("broker.toml", &config_text(&emulator, &ids)).unwrap();
    let base = start(Broker::new(config, client(&emulator, None)).unwrap()).await;
    let report = format!("{base}/v1/embed/report/{}", ids.rls_report);
    let alice = || user(&emulator, "alice@a.com", "tenant-a", &["Sales.Manager"]);
    let (status, _, body) = get(&report, Some(&alice())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emulator.requests(Route::Jwks), 1, "keys fetched once");

    // Made-up key ids, many at once: at most one more fetch, and all refused.
    let claims = serde_json::json!({
        "iss": emulator.user_token_issuer(), "aud": AUDIENCE, "tid": "tenant-a", "exp": 4_000_000_000u64,
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let flood = (0..20).map(|n| {
        let token = forged(
            &serde_json::json!({"alg": "RS256", "kid": format!("made-up-{n}")}),
            &claims,
            "c2ln",
        );
        let report = report.clone();
        async move { get(&report, Some(&token)).await.0 }
    });
    let statuses = futures_util::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(
        emulator.requests(Route::Jwks),
        2,
        "one fetch for twenty unknown key ids"
    );

    // The identity provider rotates its key: the new kid is fetched, no restart.
    let kid = emulator.rotate_user_key().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = alice();
    assert_eq!(
        jsonwebtoken::decode_header(&rotated).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    let (status, _, body) = get(&report, Some(&rotated)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emulator.requests(Route::Jwks), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_verified_once_is_refused_after_it_expires() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let text = config_text(&emulator, &ids).replace(
        "jwks_refetch_seconds = 1",
        "jwks_refetch_seconds = 1\nleeway_seconds = 0",
    );
    let config = Config::parse("broker.toml", &text).unwrap();
    let base = start(Broker::new(config, client(&emulator, None)).unwrap()).await;
    let report = format!("{base}/v1/embed/report/{}", ids.rls_report);
    let mut short = UserToken::new("alice@a.com", AUDIENCE);
    short.tenant = Some("tenant-a".into());
    short.lifetime_seconds = 1;
    let token = emulator.issue_user_token(&short);
    for _ in 0..3 {
        let (status, _, body) = get(&report, Some(&token)).await;
        assert_eq!(status, 200, "{body}");
    }
    // exp is in whole seconds, checked against whole seconds: two more and it is past.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let (status, _, body) = get(&report, Some(&token)).await;
    assert_eq!(
        status, 401,
        "a remembered token is not served past its exp: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answers_429_with_retry_after_and_cors_allows_only_its_origins() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let text = config_text(&emulator, &ids).replace("requests_per_minute = 1000", "requests_per_minute = 3");
    let config = Config::parse("broker.toml", &text).unwrap();
    let base = start(Broker::new(config, client(&emulator, None)).unwrap()).await;
    let report = format!("{base}/v1/embed/report/{}", ids.rls_report);
    let alice = user(&emulator, "alice@a.com", "tenant-a", &["Sales.Manager"]);
    let bob = user(&emulator, "bob@a.com", "tenant-a", &["Sales.Manager"]);
    for _ in 0..3 {
        assert_eq!(get(&report, Some(&alice)).await.0, 200);
    }
    let (status, headers, body) = get(&report, Some(&alice)).await;
    assert_eq!(status, 429, "{body}");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert_eq!(
        get(&report, Some(&bob)).await.0,
        200,
        "another caller is not held"
    );

    // CORS: the configured origin may read answers and send Authorization; others not.
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, &report)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.contoso.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.contoso.com"
    );
    assert!(
        allowed.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_files_and_slow_clients_are_cut_off() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let dir = std::env::temp_dir().join(format!("pbi-broker-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = pbi_embed_testkit::tls::server_certificate();
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), &key).unwrap();
    let (_, _, other_key) = pbi_embed_testkit::tls::server_certificate();
    std::fs::write(dir.join("other-key.pem"), &other_key).unwrap();
    let with_tls = |key_file: &str| {
        let text = config_text(&emulator, &ids).replace(
            "requests_per_minute = 1000",
            &format!(
                "requests_per_minute = 1000\ntls_cert = \"{}\"\ntls_key = \"{}\"",
                dir.join("cert.pem").display(),
                dir.join(key_file).display()
            ),
        );
        Config::parse("broker.toml", &text).unwrap()
    };

    // A key that does not suit the certificate: refused before serving, naming the option.
    let error = pbi_embed_server::check_tls(&with_tls("other-key.pem")).unwrap_err();
    assert!(error.to_string().contains("server.tls_key"), "{error}");
    assert!(
        !error.to_string().contains("PRIVATE KEY"),
        "the key is never quoted: {error}"
    );

    let config = with_tls("key.pem");
    pbi_embed_server::check_tls(&config).unwrap();
    let base = start(Broker::new(config, client(&emulator, None)).unwrap()).await;
    let https = base.replace("http://", "https://");
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let alice = user(&emulator, "alice@a.com", "tenant-a", &["Sales.Manager"]);
    let response = trusting
        .get(format!("{https}/v1/embed/report/{}", ids.rls_report))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "no plain HTTP beside TLS"
    );

    // A client that never finishes its request head is cut off (TLS handshake or not).
    let plain = start(
        Broker::new(
            Config::parse("broker.toml", &config_text(&emulator, &ids)).unwrap(),
            client(&emulator, None),
        )
        .unwrap(),
    )
    .await;
    // A head well over the bound is refused, not buffered (the bound is checked between
    // reads, so it holds to within one read).
    let huge = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .header("x-padding", "a".repeat(2 * pbi_embed_server::MAX_HEAD_BYTES))
        .send()
        .await;
    assert!(
        huge.as_ref().map_or(true, |r| r.status() == 431),
        "{:?}",
        huge.map(|r| r.status())
    );
    let started = std::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(plain.trim_start_matches("http://"))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(
        pbi_embed_server::HEADER_READ_TIMEOUT + Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut slow, &mut buffer),
    )
    .await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(started.elapsed() >= pbi_embed_server::HEADER_READ_TIMEOUT - Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_the_shared_store_does_not_answer() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let mut redis = pbi_embed_testkit::redis::RedisServer::start();
    let store = std::sync::Arc::new(
        pbi_embed_redis::RedisStore::new(
            &redis.url(),
            pbi_embed_redis::EncryptionKey::new("k1", b"0123456789abcdef0123456789abcdef").unwrap(),
        )
        .unwrap(),
    );
    let (tenant, client_id, secret) = ids.credentials();
    let client = Client::builder()
        .api_base(emulator.base_url())
        .authority_host(emulator.base_url())
        .service_principal(tenant, client_id, secret)
        .shared_store(store.clone())
        .build()
        .unwrap();
    let config = Config::parse("broker.toml", &config_text(&emulator, &ids)).unwrap();
    let broker = Broker::with_store(config, client, store).unwrap();
    let base = start(broker.clone()).await;
    assert_eq!(broker.warm_up().await, Readiness::Ready);
    redis.stop();
    let readiness = broker.warm_up().await;
    assert!(
        matches!(&readiness, Readiness::NotReady(why) if why.contains("store")),
        "{readiness:?}"
    );
    let (status, _, body) = get(&format!("{base}/readyz"), None).await;
    assert_eq!(status, 503, "{body}");
    // A caller is still served: the store is a cache, not a dependency.
    let alice = user(&emulator, "alice@a.com", "tenant-a", &["Sales.Manager"]);
    let (status, _, _) = get(
        &format!("{base}/v1/embed/report/{}", ids.rls_report),
        Some(&alice),
    )
    .await;
    assert_eq!(status, 200);
    redis.restart();
    // The store fails fast for a second after an outage, then tries again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(broker.warm_up().await, Readiness::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_embed_type_through_the_broker() {
    const PAGINATED: &str = "f904e89a-7ebe-4aa0-8647-e409063b4850";
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let config = Config::parse("broker.toml", &config_text(&emulator, &ids)).unwrap();
    let base = start(Broker::new(config, client(&emulator, None)).unwrap()).await;
    let carol = user(&emulator, "carol@c.com", "tenant-c", &[]);
    let cases = [
        (format!("report/{}", ids.rls_report), "report"),
        (format!("paginated/{PAGINATED}"), "report"),
        (format!("dashboard/{}", ids.dashboard), "dashboard"),
        (format!("tile/{}?dashboard={}", ids.tile, ids.dashboard), "tile"),
        (
            format!(
                "visual/{}?page=ReportSection&visual=revenueByRegion",
                ids.rls_report
            ),
            "visual",
        ),
        (format!("qna/{}", ids.rls_dataset), "qna"),
        (format!("create/{}", ids.rls_dataset), "create"),
    ];
    for (path, kind) in cases {
        let (status, _, body) = get(&format!("{base}/v1/embed/{path}"), Some(&carol)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["type"], kind, "{path}: {body}");
        assert!(body["refreshAt"].is_string(), "{path}: {body}");
        let minted = emulator.minted_token(body["tokenId"].as_str().unwrap()).unwrap();
        let carried = minted
            .identities
            .iter()
            .any(|i| i.username.as_deref() == Some("carol@c.com"));
        assert!(
            carried,
            "{path}: the identity went where the dataset requires it: {minted:?}"
        );
    }
    // Several reports under one token: an RLS one and a plain one; the identity only
    // where required.
    let (status, _, body) = get(
        &format!("{base}/v1/embed/reports/{},{}", ids.rls_report, ids.report),
        Some(&carol),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["configs"].as_array().unwrap().len(), 2, "{body}");
    let minted = emulator
        .minted_token(body["configs"][0]["tokenId"].as_str().unwrap())
        .unwrap();
    assert_eq!(minted.identities.len(), 1, "{minted:?}");
    assert_eq!(
        minted.identities[0].datasets,
        [ids.rls_dataset.to_string()],
        "{minted:?}"
    );

    // What cannot be embedded is refused with the field named.
    let (status, _, body) = get(
        &format!("{base}/v1/embed/paginated/{}", ids.rls_report),
        Some(&carol),
    )
    .await;
    assert_eq!(status, 400, "an ordinary report as paginated: {body}");
    let (status, _, body) = get(&format!("{base}/v1/embed/tile/{}", ids.tile), Some(&carol)).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("dashboard")),
        "{body}"
    );
    let (status, _, body) = get(&format!("{base}/v1/embed/book/{}", ids.report), Some(&carol)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("type")), "{body}");
    let (status, _, body) = get(
        &format!("{base}/v1/embed/report/{}?colour=red", ids.report),
        Some(&carol),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("colour")), "{body}");
}
