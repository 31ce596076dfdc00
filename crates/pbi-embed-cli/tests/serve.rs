//! `pbi-embed serve` as a process: its configuration checked with file, line and field;
//! SIGTERM with a request in flight (it completes, new connections are refused, exit 0).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt as _;
use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};

fn config(emulator: &Emulator, extra: &str) -> tempfile_path::Path {
    let ids = emulator.ids();
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
development = true
drain_seconds = 10
{extra}
[powerbi]
api_base = "{base}"
authority_host = "{base}"

[[customers]]
id = "contoso"
workspace = "{workspace}"
identity = "none"
items = [{{ type = "report", id = "{report}" }}]
"#,
        base = emulator.base_url(),
        workspace = ids.workspace,
        report = ids.report,
    );
    tempfile_path::Path::with(&text)
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
    let mut child = StdCommand::cargo_bin("pbi-embed")
        .unwrap()
        .args(["serve", "--config"])
        .arg(&file.0)
        .env_remove("AZURE_CLIENT_CERTIFICATE_PATH")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .env_remove("IDENTITY_ENDPOINT")
        .env("AZURE_TENANT_ID", emulator.ids().tenant)
        .env("AZURE_CLIENT_ID", emulator.ids().client_id)
        .env("AZURE_CLIENT_SECRET", emulator.ids().client_secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();

    // Power BI slow: the request is in flight when SIGTERM comes.
    emulator.inject(FaultRule::random(
        1.0,
        RouteMatch::GenerateToken,
        Fault::Delay { millis: 1500 },
    ));
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /v1/embed/report/{}?customer=contoso HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        emulator.ids().report
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    assert!(
        StdCommand::new("kill")
            .args(["-TERM", &child.id().to_string()])
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
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(sent.elapsed() < Duration::from_secs(8), "drained, not waited out");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(
        stderr.contains("\"level\":\"WARN\""),
        "JSON logs, development mode said: {stderr}"
    );
}
