//! `pbi-embed serve` as a process: its configuration checked with file, line and field;
//! SIGTERM with a request in flight (it completes, new connections are refused, exit 0).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt as _;
use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};

/// A development-mode configuration (identity from the query string) with `extra` lines
/// in `[server]`.
fn config(emulator: &Emulator, extra: &str) -> tempfile_path::Path {
    let server = format!("development = true\ndrain_seconds = 10\n{extra}");
    tempfile_path::Path::with(&config_text(emulator, &server, "", ""))
}

/// A configuration against `emulator` with one customer, contoso, who may embed its
/// report: `server` and `powerbi` lines added to those sections, `issuers` after them.
fn config_text(emulator: &Emulator, server: &str, powerbi: &str, issuers: &str) -> String {
    let ids = emulator.ids();
    format!(
        r#"[server]
listen = "127.0.0.1:0"
{server}
[powerbi]
api_base = "{base}"
authority_host = "{base}"
{powerbi}
{issuers}
[[customers]]
id = "contoso"
workspace = "{workspace}"
identity = "none"
items = [{{ type = "report", id = "{report}" }}]
"#,
        base = emulator.base_url(),
        workspace = ids.workspace,
        report = ids.report,
    )
}

/// A file removed when dropped.
mod tempfile_path {
    pub(crate) struct Path(pub(crate) std::path::PathBuf);
    impl Path {
        pub(crate) fn with(text: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "pbi-serve-{}-{}.toml",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn check_config_says_ok_or_names_the_file_line_and_field() {
    let emulator = Emulator::start().unwrap();
    let good = config(&emulator, "");
    let output = StdCommand::cargo_bin("pbi-embed")
        .unwrap()
        .args(["serve", "--check-config", "--config"])
        .arg(&good.0)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok (1 customers"));

    let bad = config(&emulator, "requests_per_minute = \"many\"\n");
    let output = StdCommand::cargo_bin("pbi-embed")
        .unwrap()
        .args(["serve", "--check-config", "--config"])
        .arg(&bad.0)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:5: requests_per_minute:", bad.0.display());
    assert!(stderr.contains(&expected), "{expected} in {stderr}");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0() {
    let emulator = Emulator::start().unwrap();
    let file = config(&emulator, "");
    let mut broker = Broker::start(&emulator, &file.0, None);
    let addr = broker.addr.clone();

    // Power BI slow: the request is in flight when SIGTERM comes.
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 1500 },
    ));
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /v1/embed/report/{}?customer=contoso HTTP/1.1\r\nHost: {addr}\r\nX-Request-Id: drain-1\r\nConnection: close\r\n\r\n",
        emulator.ids().report
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    assert!(
        StdCommand::new("kill")
            .args(["-TERM", &broker.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "no new connections while draining"
    );
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("accessToken"), "{answer}");
    let status = broker.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(sent.elapsed() < Duration::from_secs(8), "drained, not waited out");
    let stderr = broker.logs();
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(answer.contains("x-request-id: drain-1"), "{answer}");
    assert!(
        answer.contains("x-pbi-development: identity from the query string"),
        "development mode says so on every answer: {answer}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("\"answered\"") && l.contains("\"request_id\":\"drain-1\"")),
        "the request's log line carries its id: {stderr}"
    );
    assert!(
        stderr.contains("\"level\":\"WARN\""),
        "JSON logs, development mode said: {stderr}"
    );
}

/// A `pbi-embed serve` process signed in as the emulator's principal, killed on drop;
/// its stderr (the JSON logs) goes to a file.
struct Broker {
    child: std::process::Child,
    addr: String,
    logs: tempfile_path::Path,
}

impl Broker {
    fn start(emulator: &Emulator, config: &std::path::Path, redis: Option<&str>) -> Self {
        let logs = tempfile_path::Path::with("");
        let mut command = StdCommand::cargo_bin("pbi-embed").unwrap();
        command
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
            .env_remove("AZURE_FEDERATED_TOKEN_FILE")
            .env_remove("IDENTITY_ENDPOINT")
            .env_remove("PBI_REDIS_URL")
            .env("AZURE_TENANT_ID", emulator.ids().tenant)
            .env("AZURE_CLIENT_ID", emulator.ids().client_id)
            .env("AZURE_CLIENT_SECRET", emulator.ids().client_secret)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&logs.0).unwrap());
        if let Some(url) = redis {
            command
                .env("PBI_REDIS_URL", url)
                .env("PBI_CACHE_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
                // The test counts mints: a store slower than 50 ms under load must not
                // make a broker give up on it.
                .env("PBI_REDIS_TIMEOUT_MS", "1000");
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap()
            .to_owned();
        Self { child, addr, logs }
    }

    /// What it logged so far.
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs.0).unwrap_or_default()
    }

    /// `GET path` with a bearer token: the status line and the body.
    fn get(&self, path: &str, bearer: &str) -> (String, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (
            head.lines().next().unwrap_or_default().to_owned(),
            body.to_owned(),
        )
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn four_brokers_and_one_redis_mint_once_per_customer_user_and_item() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let redis = pbi_embed_testkit::redis::RedisServer::start();
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"

[powerbi]
api_base = "{base}"
authority_host = "{base}"

[[issuers]]
issuer = "{issuer}"
audience = "api://broker"
customer_claim = "tid"

[[customers]]
id = "tenant-a"
workspace = "{workspace}"
profile = "a4df5235-6f18-4141-9e99-0c3512f41306"
roles = ["{role}"]
items = [{{ type = "report", id = "{rls_report}" }}]

[[customers]]
id = "tenant-b"
workspace = "{workspace}"
profile = "0b6c4f39-7d5e-4f0e-9a34-3a9cf1a1d2b7"
identity = "none"
items = [{{ type = "report", id = "{report}" }}]
"#,
        base = emulator.base_url(),
        issuer = emulator.user_token_issuer(),
        workspace = ids.workspace,
        role = ids.rls_role,
        rls_report = ids.rls_report,
        report = ids.report,
    );
    let file = tempfile_path::Path::with(&text);
    let brokers: Vec<Broker> = (0..4)
        .map(|_| Broker::start(&emulator, &file.0, Some(&redis.url())))
        .collect();
    // Power BI takes its time, so that cold requests overlap across the brokers.
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 150 },
    ));

    // Five users of A on A's report, five of B on B's (B sends no identity: one token).
    let token = |user: &str, tenant: &str| {
        let mut token = pbi_embed_emulator::UserToken::new(user, "api://broker");
        token.tenant = Some(tenant.to_owned());
        emulator.issue_user_token(&token)
    };
    let mut requests = Vec::new();
    for n in 0..5 {
        requests.push((
            token(&format!("a{n}@a.com"), "tenant-a"),
            format!("/v1/embed/report/{}", ids.rls_report),
        ));
        requests.push((
            token(&format!("b{n}@b.com"), "tenant-b"),
            format!("/v1/embed/report/{}", ids.report),
        ));
    }
    let answers: Vec<(String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..80)
            .map(|i| {
                let (bearer, path) = &requests[i % requests.len()];
                let broker = &brokers[i % brokers.len()];
                scope.spawn(move || broker.get(path, bearer))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, body) in &answers {
        assert!(status.contains(" 200 "), "{status} {body}");
    }
    assert_eq!(
        emulator.generate_token_requests(),
        6,
        "one GenerateToken per (customer, user, item) across four brokers: five users of A, one token for B"
    );
}

/// `powerbi.ca_file` against the emulator over HTTPS with its own CA: the broker signs
/// in, fetches the issuer's keys and mints through it. Without the file, callers get 503
/// naming the issuer whose keys cannot be fetched, and no request reaches GenerateToken.
#[test]
fn ca_file_is_trusted_for_power_bi_entra_and_the_issuers() {
    let (emulator, ca) = pbi_embed_testkit::tls::tls_emulator();
    let ids = emulator.ids();
    let ca_path = tempfile_path::Path::with(&ca);
    let issuer = format!(
        "[[issuers]]\nissuer = \"{}\"\naudience = \"api://broker\"\ncustomer_claim = \"tid\"\n",
        emulator.user_token_issuer()
    );
    let text = |ca_line: &str| config_text(&emulator, "", ca_line, &issuer);
    let mut token = pbi_embed_emulator::UserToken::new("b@b.com", "api://broker");
    token.tenant = Some("contoso".to_owned());
    let bearer = emulator.issue_user_token(&token);
    let path = format!("/v1/embed/report/{}", ids.report);

    let untrusted = tempfile_path::Path::with(&text(""));
    let broker = Broker::start(&emulator, &untrusted.0, None);
    let (status, body) = broker.get(&path, &bearer);
    // The issuer's keys cannot be fetched: the broker's trouble (503 naming the issuer),
    // not the caller's (401 would tell it to sign in again).
    assert!(status.contains(" 503 "), "{status} {body}");
    assert!(
        body.contains("IssuerUnavailable") && body.contains(&emulator.user_token_issuer()),
        "{body}"
    );
    assert_eq!(emulator.generate_token_requests(), 0, "{status} {body}");
    drop(broker);

    let trusted =
        tempfile_path::Path::with(&text(&format!("ca_file = {:?}", ca_path.0.display().to_string())));
    let broker = Broker::start(&emulator, &trusted.0, None);
    let (status, body) = broker.get(&path, &bearer);
    assert!(status.contains(" 200 "), "{status} {body}");
    assert!(body.contains("accessToken"), "{body}");
    assert_eq!(emulator.generate_token_requests(), 1, "{body}");

    let missing = tempfile_path::Path::with(&text("ca_file = \"/nonexistent/ca.pem\""));
    let output = assert_cmd::Command::cargo_bin("pbi-embed")
        .unwrap()
        .args(["serve", "--config"])
        .arg(&missing.0)
        .env("AZURE_TENANT_ID", ids.tenant)
        .env("AZURE_CLIENT_ID", ids.client_id)
        .env("AZURE_CLIENT_SECRET", ids.client_secret)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("powerbi.ca_file /nonexistent/ca.pem"),
        "names the field and the path: {stderr}"
    );
}
