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
