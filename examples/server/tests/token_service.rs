//! The token service as its users run it: four processes behind no load balancer but a
//! round-robin, one `redis-server`, one emulator; what reached Power BI and Redis.

use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use pbi_embed_reqwest::reqwest;
use pbi_embed_testkit::Ids;
use pbi_embed_testkit::redis::RedisServer;
use pbi_embed_testkit::token_service::TokenService;

/// One token-service process, killed on drop.
fn start(emulator: &Emulator, redis: Option<&RedisServer>) -> TokenService {
    TokenService::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_token_service")),
        emulator,
        redis,
        &[],
    )
}

fn embed_url(service: &TokenService, report: &str, user: &str, role: &str) -> String {
    format!(
        "{}/api/embed?report={report}&user={user}&role={role}",
        service.base()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_services_sharing_redis_make_one_generate_token_per_pair() {
    let emulator = Emulator::start().unwrap();
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 150 },
    ));
    let ids = Ids::of(&emulator);
    let redis = RedisServer::start();
    let services: Vec<TokenService> = (0..4).map(|_| start(&emulator, Some(&redis))).collect();
    let http = reqwest::Client::new();
    let mut requests = Vec::new();
    for n in 0..400 {
        let url = embed_url(
            &services[n % 4],
            ids.rls_report.as_str(),
            &format!("user{}", n % 50),
            &ids.rls_role,
        );
        let http = http.clone();
        requests.push(tokio::spawn(async move {
            let response = http.get(url).send().await.unwrap();
            (
                response.status().as_u16(),
                serde_json::from_slice::<serde_json::Value>(&response.bytes().await.unwrap()).unwrap(),
            )
        }));
    }
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{:?}",
        answers.iter().find(|(s, _)| *s != 200)
    );
    assert_eq!(
        emulator.generate_token_requests(),
        50,
        "one GenerateToken per (user, report)"
    );
    let config = &answers[0].1;
    assert_eq!(config["type"], "report");
    assert!(config["accessToken"].as_str().is_some_and(|t| !t.is_empty()));
    let token = emulator.minted_token(config["tokenId"].as_str().unwrap_or_default());
    let identities = token.map(|t| t.identities).unwrap_or_default();
    assert_eq!(
        identities.first().and_then(|i| i.username.as_deref()),
        Some("user0"),
        "the identity reached Power BI"
    );
    for (key, value) in redis.dump() {
        let text = String::from_utf8_lossy(&value);
        assert!(
            !text.contains(config["accessToken"].as_str().unwrap_or("-")),
            "a token in clear under {key}"
        );
        assert!(!key.contains("user"), "{key}");
    }
}

#[tokio::test]
async fn without_redis_bad_requests_and_refusals_say_what_was_wrong() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let service = start(&emulator, None);
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (
                response.status().as_u16(),
                serde_json::from_slice::<serde_json::Value>(&response.bytes().await.unwrap()).unwrap(),
            )
        }
    };
    let (status, config) = get(format!("{}/api/embed?report={}", service.base(), ids.report)).await;
    assert_eq!(status, 200, "{config}");
    let (status, again) = get(format!("{}/api/embed?report={}", service.base(), ids.report)).await;
    assert_eq!(
        (status, &again["tokenId"]),
        (200, &config["tokenId"]),
        "its own cache serves"
    );
    assert_eq!(emulator.generate_token_requests(), 1);

    let base = &service.base();
    for (query, field) in [
        (String::new(), "report"),
        ("report=not-a-guid".to_owned(), "report"),
        (format!("report={}&role=sales", ids.report), "role"),
        (format!("report={}&colour=red", ids.report), "colour"),
    ] {
        let (status, body) = get(format!("{base}/api/embed?{query}")).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{query}: {body}"
        );
    }
    // Power BI's refusal: its status, code and RequestId.
    let unknown = "00000000-0000-0000-0000-00000000dead";
    let (status, body) = get(format!("{base}/api/embed?report={unknown}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
    assert!(
        body["requestId"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    assert_eq!(
        emulator.generate_token_requests(),
        1,
        "nothing minted for bad requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_while_it_holds_the_lock_delays_the_others_only_the_locks_ttl() {
    let emulator = Emulator::start().unwrap();
    let ids = Ids::of(&emulator);
    let redis = RedisServer::start();
    let (mut doomed, survivor) = (start(&emulator, Some(&redis)), start(&emulator, Some(&redis)));
    // The first GenerateToken hangs: its service takes the lock, then is killed.
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 10_000 },
    ));
    let url = |service: &TokenService| embed_url(service, ids.rls_report.as_str(), "mallory", &ids.rls_role);
    let http = reqwest::Client::new();
    let hanging = tokio::spawn(http.get(url(&doomed)).send());
    let started = std::time::Instant::now();
    while !redis
        .dump()
        .iter()
        .any(|(key, _)| key.starts_with("pbi-embed:v1:lock:"))
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the lock was never taken"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    doomed.kill();
    assert!(
        hanging.await.unwrap().is_err(),
        "the killed service never answered"
    );
    let asked = std::time::Instant::now();
    let response = http.get(url(&survivor)).send().await.unwrap();
    let waited = asked.elapsed();
    assert_eq!(response.status().as_u16(), 200);
    // The lock lives 5 s from when it was taken; the survivor waits out what is left.
    assert!(waited < std::time::Duration::from_secs(6), "{waited:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "it waited for the lock to expire"
    );
    assert_eq!(
        emulator.generate_token_requests(),
        2,
        "the dead one's call and the survivor's"
    );
}
