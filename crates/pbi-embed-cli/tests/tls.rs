//! The command line over HTTPS: trusting the emulator's CA (`--ca-cert`, `SSL_CERT_FILE`),
//! through a CONNECT proxy (`HTTPS_PROXY`, `NO_PROXY`), and refusing certificates that
//! do not verify; `pbi-embed emulator --tls` end to end.

use std::io::{BufRead, BufReader};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use pbi_embed_emulator::{Emulator, Route};
use pbi_embed_testkit::tls::{ConnectProxy, bad_certificates, tls_emulator};

/// `pbi-embed token report` against `emulator`, signed in as its service principal,
/// with nothing else from the environment.
fn token_report(emulator: &Emulator) -> Command {
    let ids = emulator.ids();
    let base = emulator.base_url();
    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.env_clear()
        .env("AZURE_TENANT_ID", &ids.tenant)
        .env("AZURE_CLIENT_ID", &ids.client_id)
        .env("AZURE_CLIENT_SECRET", &ids.client_secret)
        .args(["--api-base", &base, "--authority-host", &base, "--timeout", "20"])
        .args([
            "token",
            "report",
            "--workspace",
            &ids.workspace,
            "--report",
            &ids.report,
        ]);
    cmd.timeout(Duration::from_secs(60));
    cmd
}

/// A CA file, removed when dropped.
struct CaFile(std::path::PathBuf);

impl CaFile {
    fn with(pem: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("pbi-embed-ca-{}-{n}.pem", std::process::id()));
        std::fs::write(&path, pem).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn assert_minted(output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json["token"].is_string(), "{json}");
}

#[test]
fn ca_cert_and_ssl_cert_file_trust_the_emulators_ca() {
    let (emulator, ca) = tls_emulator();
    let file = CaFile::with(&ca);
    let output = token_report(&emulator)
        .args(["--ca-cert", file.path()])
        .output()
        .unwrap();
    assert_minted(&output);
    let output = token_report(&emulator)
        .env("SSL_CERT_FILE", file.path())
        .output()
        .unwrap();
    assert_minted(&output);
    assert_eq!(emulator.requests(Route::ReportsGenerateTokenInGroup), 2);
    assert_eq!(emulator.requests(Route::EntraToken), 2);
}

#[test]
fn the_platform_verifier_reads_the_system_store() {
    let (emulator, ca) = tls_emulator();
    let file = CaFile::with(&ca);
    // The system store (rustls-native-certs) takes SSL_CERT_FILE as its bundle: the
    // emulator's CA is trusted only if the platform verifier is really the one used.
    let output = token_report(&emulator)
        .arg("--platform-verifier")
        .env("SSL_CERT_FILE", file.path())
        .output()
        .unwrap();
    assert_minted(&output);
    let output = token_report(&emulator)
        .arg("--platform-verifier")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("TLS certificate did not verify"), "{stderr}");
}

#[test]
fn without_the_ca_the_certificate_is_refused_with_a_hint() {
    let (emulator, _) = tls_emulator();
    let output = token_report(&emulator).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains(&emulator.addr().to_string()),
        "names the host: {stderr}"
    );
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(stderr.contains("--ca-cert"), "{stderr}");
    assert_eq!(emulator.requests(Route::EntraToken), 0);

    let unreadable = token_report(&emulator)
        .args(["--ca-cert", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unreadable.stderr);
    assert_eq!(unreadable.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--ca-cert /nonexistent/ca.pem"), "{stderr}");
    let empty = CaFile::with("no certificate here");
    let output = token_report(&emulator)
        .env("SSL_CERT_FILE", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rootCertificates"), "{stderr}");
}

#[test]
fn certificates_that_do_not_verify_end_in_a_clear_error() {
    for (what, certificate) in bad_certificates() {
        let emulator = Emulator::builder().tls(certificate.tls).start().unwrap();
        let file = CaFile::with(&certificate.ca_pem);
        let output = token_report(&emulator)
            .args(["--ca-cert", file.path()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(5), "{what}: {stderr}");
        assert!(
            stderr.contains("TLS certificate did not verify"),
            "{what}: {stderr}"
        );
        assert!(stderr.contains(&emulator.addr().to_string()), "{what}: {stderr}");
        assert_eq!(emulator.requests(Route::EntraToken), 0, "{what}");
    }
}

#[test]
fn https_proxy_tunnels_every_connection_and_no_proxy_bypasses_it() {
    let (emulator, ca) = tls_emulator();
    let file = CaFile::with(&ca);
    let proxy = ConnectProxy::start();
    let output = token_report(&emulator)
        .args(["--ca-cert", file.path()])
        .env("HTTPS_PROXY", proxy.url())
        .output()
        .unwrap();
    assert_minted(&output);
    let tunnels = proxy.tunnels();
    assert!(!tunnels.is_empty(), "no tunnel opened");
    assert!(
        tunnels.iter().all(|t| *t == emulator.addr().to_string()),
        "{tunnels:?}"
    );

    let output = token_report(&emulator)
        .args(["--ca-cert", file.path()])
        .env("HTTPS_PROXY", proxy.url())
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    assert_minted(&output);
    assert_eq!(proxy.tunnels().len(), tunnels.len(), "NO_PROXY: no new tunnel");
    assert_eq!(emulator.generate_token_requests(), 2);
}

#[test]
fn the_tls_emulator_prints_its_https_url_first_and_writes_its_ca() {
    let dir = std::env::temp_dir().join(format!("pbi-embed-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("pbi-embed"))
        .args([
            "emulator",
            "--tls",
            "--tls-name",
            "emu.local",
            "--listen",
            "127.0.0.1:0",
            "--tls-ca-out",
        ])
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first.rsplit(' ').next().unwrap().to_owned();
    assert!(
        first.starts_with("pbi-embed emulator listening on https://127.0.0.1:"),
        "{first}"
    );
    assert!(
        !base.ends_with(":0"),
        "the port bound, not the one asked for: {first}"
    );
    let mut text = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("Press Ctrl-C") {
            break;
        }
        text.push_str(&line);
        text.push('\n');
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.split_whitespace().next().unwrap().to_owned())
            .unwrap()
    };
    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.env_clear()
        .env("AZURE_TENANT_ID", field("tenant:"))
        .env("AZURE_CLIENT_ID", field("client id:"))
        .env("AZURE_CLIENT_SECRET", field("client secret:"))
        .args(["--api-base", &base, "--authority-host", &base, "--ca-cert"])
        .arg(&ca)
        .args([
            "token",
            "report",
            "--workspace",
            &field("workspace:"),
            "--report",
            &field("report:"),
        ]);
    let output = cmd.timeout(Duration::from_secs(60)).output().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_minted(&output);
    assert!(text.contains("CA certificate:"), "{text}");
}

#[test]
fn the_emulator_exits_2_for_what_it_was_given_and_names_it() {
    let emulator = Emulator::start().unwrap();
    let (certificate, key) = emulator
        .issue_client_certificate(&emulator.ids().client_id)
        .unwrap();
    let (other, _) = emulator
        .issue_client_certificate(&emulator.ids().client_id)
        .unwrap();
    let (cert_file, key_file, other_file, empty) = (
        CaFile::with(&certificate),
        CaFile::with(&key),
        CaFile::with(&other),
        CaFile::with(""),
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--tls",
                "--tls-cert",
                other_file.path(),
                "--tls-key",
                key_file.path(),
            ],
            "match",
        ),
        (
            vec!["--tls", "--tls-cert", empty.path(), "--tls-key", key_file.path()],
            "--tls-cert",
        ),
        (
            vec![
                "--tls",
                "--tls-cert",
                key_file.path(),
                "--tls-key",
                key_file.path(),
            ],
            "--tls-cert",
        ),
        (
            vec!["--tls", "--tls-cert", cert_file.path(), "--tls-key", empty.path()],
            "--tls-key",
        ),
        (vec!["--tls", "--tls-name", ""], "--tls-name"),
        (vec!["--tls", "--tls-name", "*"], "--tls-name"),
        (vec!["--tls", "--tls-name", "*.com"], "--tls-name"),
        (vec!["--tls", "--tls-name", "a b"], "--tls-name"),
        (vec!["--tls", "--tls-name", "../../etc"], "--tls-name"),
        (vec!["--tls", "--tls-name", "a_b.com"], "--tls-name"),
        (vec!["--tls", "--tls-name", "bücher.example"], "--tls-name"),
        (vec!["--tls", "--tls-name", "x\ny"], "--tls-name"),
    ];
    for (args, named) in cases {
        let output = Command::cargo_bin("pbi-embed")
            .unwrap()
            .env_clear()
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(&args)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} names {named}: {stderr}");
        assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    }
    let output = Command::cargo_bin("pbi-embed")
        .unwrap()
        .env_clear()
        .args(["emulator", "--listen", &busy])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a port in use: {stderr}");
    assert!(stderr.contains(&busy), "{stderr}");
    drop(taken);
}
