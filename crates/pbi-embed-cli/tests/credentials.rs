//! `--credential`: which sign-in the command line uses, from the environment only, and
//! what reached the emulator (which endpoint, as which identity).

use std::time::Duration;

use assert_cmd::Command;
use pbi_embed_emulator::{Emulator, Route};

const WORKSPACE: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
const REPORT: &str = "b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd";
const USER_ASSIGNED: &str = "5c0d9e8f-7a6b-4c5d-8e9f-0a1b2c3d4e5f";

/// `pbi-embed [args] token report` against `emulator` with only `env` set; exit code,
/// the minting principal (if a token came back) and stderr.
fn mint(emulator: &Emulator, args: &[&str], env: &[(&str, &str)]) -> (i32, Option<String>, String) {
    let base = emulator.base_url();
    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.env_clear()
        .args(["--api-base", &base, "--authority-host", &base])
        .args(args);
    cmd.args(["token", "report", "--workspace", WORKSPACE, "--report", REPORT]);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let output = cmd.timeout(Duration::from_secs(60)).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let principal = json["tokenId"]
        .as_str()
        .and_then(|id| emulator.minted_token(id))
        .map(|t| t.client_id);
    (
        output.status.code().unwrap_or(-1),
        principal,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn auto_uses_app_services_managed_identity_when_no_secret_is_set() {
    let emulator = Emulator::start().unwrap();
    let endpoint = emulator.identity_endpoint();
    let header = emulator.identity_header().unwrap().to_owned();
    let env = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", header.as_str()),
    ];
    let (code, principal, stderr) = mint(&emulator, &[], &env);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        principal.as_deref(),
        Some(emulator.ids().client_id.as_str()),
        "the system-assigned identity"
    );
    assert_eq!(emulator.requests(Route::ManagedIdentityAppService), 1);
    assert_eq!(emulator.requests(Route::EntraToken), 0);

    // A secret in the environment wins over the host's identity, as Azure's libraries do.
    let ids = emulator.ids();
    let with_secret = [
        env[0],
        env[1],
        ("AZURE_TENANT_ID", ids.tenant.as_str()),
        ("AZURE_CLIENT_ID", ids.client_id.as_str()),
        ("AZURE_CLIENT_SECRET", ids.client_secret.as_str()),
    ];
    let (code, _, stderr) = mint(&emulator, &[], &with_secret);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(emulator.requests(Route::EntraToken), 1);
    assert_eq!(emulator.requests(Route::ManagedIdentityAppService), 1);
}

#[test]
fn managed_identity_reaches_imds_only_when_asked_and_by_the_named_host() {
    let emulator = Emulator::start().unwrap();
    let base = emulator.base_url();
    let env = [
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", base.as_str()),
        ("AZURE_CLIENT_ID", USER_ASSIGNED),
    ];
    // Without --credential, IMDS is never tried: no credential is a usage error.
    let (code, _, stderr) = mint(&emulator, &[], &env);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("managed identity"), "{stderr}");
    assert_eq!(emulator.requests(Route::ManagedIdentityImds), 0);
    let (code, principal, stderr) = mint(&emulator, &["--credential", "managed-identity"], &env);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        principal.as_deref(),
        Some(USER_ASSIGNED),
        "the user-assigned identity AZURE_CLIENT_ID names"
    );
    assert_eq!(emulator.requests(Route::ManagedIdentityImds), 1);
}

#[test]
fn managed_identity_failures_exit_4_with_what_the_endpoint_said() {
    let emulator = Emulator::start().unwrap();
    let endpoint = emulator.identity_endpoint();
    let env = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", "wrong-header-value"),
    ];
    let (code, _, stderr) = mint(&emulator, &["--credential", "managed-identity"], &env);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("X-IDENTITY-HEADER") && stderr.contains("401"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&emulator.addr().to_string()),
        "names the endpoint's host: {stderr}"
    );
    assert!(
        !stderr.contains("wrong-header-value"),
        "never prints the header: {stderr}"
    );

    let base = emulator.base_url();
    let unknown = [
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", base.as_str()),
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-00000000dead"),
    ];
    let (code, _, stderr) = mint(&emulator, &["--credential", "managed-identity"], &unknown);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("Identity not found"), "{stderr}");

    let (code, _, stderr) = mint(&emulator, &["--credential", "token"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("PBI_ACCESS_TOKEN"), "{stderr}");
}

/// A PEM file removed when dropped.
struct PemFile(std::path::PathBuf);

impl PemFile {
    fn with(text: impl AsRef<[u8]>, name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("pbi-embed-{}-{name}.pem", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for PemFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_client_certificate_signs_in_from_the_environment() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let (certificate, key) = emulator.issue_client_certificate(&ids.client_id).unwrap();
    let file = PemFile::with(format!("{certificate}{key}"), "client");
    let env = [
        ("AZURE_TENANT_ID", ids.tenant.as_str()),
        ("AZURE_CLIENT_ID", ids.client_id.as_str()),
        ("AZURE_CLIENT_CERTIFICATE_PATH", file.path()),
    ];
    // auto picks the certificate when there is no secret.
    let (code, principal, stderr) = mint(&emulator, &[], &env);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(principal.as_deref(), Some(ids.client_id.as_str()));
    let (code, _, stderr) = mint(&emulator, &["--credential", "certificate"], &env);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(emulator.requests(Route::EntraToken), 2);
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");

    // A PKCS#12 file and its password, as Windows and OpenSSL export them.
    let pfx = PemFile::with(
        pbi_embed_testkit::pkcs12(&certificate, &key, "pfx-pw"),
        "client-pfx",
    );
    let with_password = [
        env[0],
        env[1],
        ("AZURE_CLIENT_CERTIFICATE_PATH", pfx.path()),
        ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pfx-pw"),
    ];
    let (code, principal, stderr) = mint(&emulator, &[], &with_password);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(principal.as_deref(), Some(ids.client_id.as_str()));
    assert_eq!(emulator.requests(Route::EntraToken), 3);
    let wrong = [
        with_password[0],
        with_password[1],
        with_password[2],
        ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "guess"),
    ];
    // The caller's request was fine: the credential the process was given is not usable,
    // which is a sign-in failure (exit 4), not invalid input.
    let (code, _, stderr) = mint(&emulator, &["--credential", "certificate"], &wrong);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("password is not the one given") && !stderr.contains("guess"),
        "{stderr}"
    );
    assert_eq!(
        emulator.requests(Route::EntraToken),
        3,
        "nothing sent with a wrong password"
    );

    // A certificate registered on another app: Entra's AADSTS700027, exit 4.
    let (other, other_key) = emulator
        .issue_client_certificate(&ids.outsider_client_id)
        .unwrap();
    let other_file = PemFile::with(format!("{other}{other_key}"), "other");
    let unregistered = [
        env[0],
        env[1],
        ("AZURE_CLIENT_CERTIFICATE_PATH", other_file.path()),
    ];
    let (code, _, stderr) = mint(&emulator, &["--credential", "certificate"], &unregistered);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("AADSTS700027"), "{stderr}");
}

#[test]
fn the_emulator_hands_out_a_client_certificate() {
    use std::io::{BufRead, BufReader};
    let path = std::env::temp_dir().join(format!("pbi-embed-{}-emulator-client.pem", std::process::id()));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pbi-embed"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--client-certificate-out"])
        .arg(&path)
        .arg("--federated-token-out")
        .arg(path.with_extension("jwt"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .next()
        .unwrap()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let text: Vec<String> = lines
        .map_while(Result::ok)
        .take_while(|l| !l.starts_with("Press Ctrl-C"))
        .collect();
    let exports = text
        .iter()
        .find(|l| l.contains("AZURE_CLIENT_CERTIFICATE_PATH="))
        .unwrap()
        .clone();
    let value = |name: &str| {
        exports
            .split_whitespace()
            .find_map(|word| word.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let output = Command::cargo_bin("pbi-embed")
        .unwrap()
        .env_clear()
        .env("AZURE_TENANT_ID", value("AZURE_TENANT_ID"))
        .env("AZURE_CLIENT_ID", value("AZURE_CLIENT_ID"))
        .env(
            "AZURE_CLIENT_CERTIFICATE_PATH",
            value("AZURE_CLIENT_CERTIFICATE_PATH"),
        )
        .args(["--api-base", &base, "--authority-host", &base, "token", "report"])
        .args(["--workspace", WORKSPACE, "--report", REPORT])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn workload_identity_reads_the_federated_token_file() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let good = emulator.issue_federated_token(
        "system:serviceaccount:embedding:backend",
        Duration::from_secs(600),
    );
    let file = PemFile::with(&good, "federated");
    let env = [
        ("AZURE_TENANT_ID", ids.tenant.as_str()),
        ("AZURE_CLIENT_ID", ids.client_id.as_str()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.path()),
    ];
    let (code, principal, stderr) = mint(&emulator, &[], &env);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(principal.as_deref(), Some(ids.client_id.as_str()));
    std::fs::write(
        &file.0,
        emulator.issue_federated_token("system:serviceaccount:other:intruder", Duration::from_secs(600)),
    )
    .unwrap();
    let (code, _, stderr) = mint(&emulator, &["--credential", "workload-identity"], &env);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("AADSTS700213"), "{stderr}");
    let missing = [
        env[0],
        env[1],
        ("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token"),
    ];
    let (code, _, stderr) = mint(&emulator, &["--credential", "workload-identity"], &missing);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("federated token file /nonexistent/token"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn the_azure_cli_signs_in_when_asked_for() {
    use pbi_embed_testkit::fake_az::FakeAz;
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let token = emulator
        .issue_access_token(&ids.client_id, Duration::from_secs(3600))
        .unwrap();
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let az = FakeAz::signed_in(&token, expires_on);
    let path = az.dir().to_str().unwrap().to_owned();
    let env = [("PATH", path.as_str()), ("AZURE_TENANT_ID", ids.tenant.as_str())];
    // Never chosen by `auto`.
    let (code, _, stderr) = mint(&emulator, &[], &env);
    assert_eq!(code, 2, "{stderr}");
    assert!(az.last_args().is_empty(), "auto did not run az");
    let (code, principal, stderr) = mint(&emulator, &["--credential", "azure-cli", "-v"], &env);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(principal.as_deref(), Some(ids.client_id.as_str()));
    assert_eq!(
        az.last_args()[4..8],
        [
            "--resource",
            "https://analysis.windows.net/powerbi/api",
            "--tenant",
            ids.tenant.as_str()
        ]
    );
    assert_eq!(emulator.requests(Route::EntraToken), 0);
    assert!(
        stderr.contains("the Azure CLI") && !stderr.contains(&token),
        "{stderr}"
    );

    let signed_out = FakeAz::signed_out();
    let path = signed_out.dir().to_str().unwrap().to_owned();
    let (code, _, stderr) = mint(
        &emulator,
        &["--credential", "azure-cli"],
        &[("PATH", path.as_str())],
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("is not signed in") && stderr.contains("az login"),
        "{stderr}"
    );
    let (code, _, stderr) = mint(
        &emulator,
        &["--credential", "azure-cli"],
        &[("PATH", "/nonexistent")],
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("was not found") && stderr.contains("install"),
        "{stderr}"
    );
}

#[test]
fn an_identity_endpoint_answering_expired_tokens_is_not_hammered() {
    let emulator = Emulator::start().unwrap();
    emulator.set_access_token_lifetime(Duration::ZERO);
    let endpoint = emulator.identity_endpoint();
    let header = emulator.identity_header().unwrap().to_owned();
    let env = [
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", header.as_str()),
    ];
    let started = std::time::Instant::now();
    let (code, _, stderr) = mint(&emulator, &["--timeout", "20"], &env);
    let took = started.elapsed();
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("expired") && stderr.contains("127.0.0.1"),
        "names why and the endpoint: {stderr}"
    );
    let sent = emulator.requests(Route::ManagedIdentityAppService);
    assert!((1..=4).contains(&sent), "{sent} sign-in requests");
    // Ends on the refusal, not at the 20 s deadline.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(emulator.generate_token_requests(), 0);
}

/// A named pipe nobody writes to: reading it blocks forever.
#[cfg(unix)]
fn fifo(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("pbi-embed-{}-{name}.fifo", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    path
}

#[cfg(unix)]
#[test]
fn a_credential_file_that_never_answers_ends_at_the_timeout() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let pipe = fifo("credential");
    let pipe_path = pipe.to_str().unwrap();
    for variable in ["AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE"] {
        let env = [
            ("AZURE_TENANT_ID", ids.tenant.as_str()),
            ("AZURE_CLIENT_ID", ids.client_id.as_str()),
            (variable, pipe_path),
        ];
        let started = std::time::Instant::now();
        let (code, _, stderr) = mint(&emulator, &["--timeout", "3"], &env);
        let took = started.elapsed();
        assert!(code == 4 || code == 5, "{variable}: exit {code}: {stderr}");
        assert!(
            stderr.contains("credential") || stderr.contains(pipe_path),
            "{stderr}"
        );
        // A generous bound for a loaded machine: without the fix this never ends.
        assert!(took < Duration::from_secs(8), "{variable}: took {took:?}");
    }
    // The identities file the command line reads itself: exit 2, nothing sent.
    let base = emulator.base_url();
    let started = std::time::Instant::now();
    let output = Command::cargo_bin("pbi-embed")
        .unwrap()
        .env_clear()
        .env("AZURE_TENANT_ID", &ids.tenant)
        .env("AZURE_CLIENT_ID", &ids.client_id)
        .env("AZURE_CLIENT_SECRET", &ids.client_secret)
        .args(["--api-base", &base, "--authority-host", &base, "--timeout", "3"])
        .args(["token", "dashboard", "--workspace", WORKSPACE])
        .args([
            "--dashboard",
            "69ffaa6c-b36d-4d01-96f5-1ed67c64d4af",
            "--identities",
            pipe_path,
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--identities"), "{stderr}");
    assert!(took < Duration::from_secs(8), "--identities: took {took:?}");
    let _ = std::fs::remove_file(&pipe);
    assert_eq!(emulator.requests(Route::EntraToken), 0);
}

#[cfg(unix)]
#[test]
fn secret_files_the_emulator_writes_are_private_and_never_follow_links() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("pbi-embed-{}-private", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pbi-embed"))
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let _ = std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut first,
        );
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        (first, String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let certificate = dir.join("client.pem");
    let token = dir.join("token.jwt");
    let (first, stderr) = run(&[
        "--client-certificate-out".as_ref(),
        certificate.as_os_str(),
        "--federated-token-out".as_ref(),
        token.as_os_str(),
    ]);
    assert!(first.contains("listening"), "{first}{stderr}");
    for file in [&certificate, &token] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    assert!(
        std::fs::read_to_string(&certificate)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let jwt = std::fs::read_to_string(&token).unwrap();
    assert_eq!(jwt.trim().split('.').count(), 3, "a JWT: {jwt}");

    // A link planted where the key goes: refused, and what it points to is untouched.
    let target = dir.join("target.txt");
    std::fs::write(&target, "keep me").unwrap();
    let link = dir.join("link.pem");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (first, stderr) = run(&["--client-certificate-out".as_ref(), link.as_os_str()]);
    assert!(!first.contains("listening"), "{first}");
    assert!(stderr.contains("link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    let _ = std::fs::remove_dir_all(&dir);
}
