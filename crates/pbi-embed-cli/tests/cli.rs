//! The built `pbi-embed` binary against the emulator: every subcommand, each exit code,
//! the stdout shape, what stderr says, and that no secret is ever printed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use serde_json::Value;

const BLOB: &str = "identity-blob-value-that-must-not-print";

/// The binary, signed in to `emulator` as its service principal.
fn pbi_embed(emulator: &Emulator) -> Command {
    pbi_embed_at(emulator, &emulator.base_url())
}

/// The same, with another API base.
fn pbi_embed_at(emulator: &Emulator, api_base: &str) -> Command {
    let ids = emulator.ids();
    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.env_clear()
        .env("AZURE_TENANT_ID", &ids.tenant)
        .env("AZURE_CLIENT_ID", &ids.client_id)
        .env("AZURE_CLIENT_SECRET", &ids.client_secret)
        .env(BLOB_VAR, BLOB)
        .args(["--api-base", api_base, "--authority-host", &emulator.base_url()]);
    cmd
}

const BLOB_VAR: &str = "PBI_TEST_IDENTITY_BLOB";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn exec(mut cmd: Command) -> Run {
    let output = cmd.timeout(Duration::from_secs(60)).output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Asserts success and returns the printed embed token.
fn minted(emulator: &Emulator, run: &Run) -> Value {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let json: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let object = json.as_object().unwrap();
    assert_eq!(object.len(), 3, "{json}");
    for field in ["token", "tokenId", "expiration"] {
        assert!(json[field].is_string(), "{field} in {json}");
    }
    assert!(emulator.introspect(json["token"].as_str().unwrap()).valid);
    json
}

fn assert_no_secret(emulator: &Emulator, run: &Run, extra: &[&str]) {
    let ids = emulator.ids();
    let secrets = [ids.client_secret.as_str(), BLOB]
        .into_iter()
        .chain(extra.iter().copied());
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret),
            "stdout leaks a secret: {}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(secret),
            "stderr leaks a secret: {}",
            run.stderr
        );
    }
}

#[test]
fn every_token_subcommand() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let identity = [
        "--username",
        "john@contoso.com",
        "--role",
        &ids.rls_role,
        "--identity-dataset",
        &ids.rls_dataset,
    ];
    let identities_file =
        std::env::temp_dir().join(format!("pbi-embed-cli-identities-{}.json", std::process::id()));
    std::fs::write(
        &identities_file,
        format!(
            r#"[{{"username":"a","roles":["{role}"],"datasets":["{ds}"]}},{{"username":"b","roles":["{role}"],"datasets":["{ds}"]}}]"#,
            role = ids.rls_role,
            ds = ids.rls_dataset
        ),
    )
    .unwrap();
    let file = identities_file.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        [
            &[
                "token",
                "report",
                "--workspace",
                &ids.workspace,
                "--report",
                &ids.rls_report,
            ][..],
            &identity[..],
        ]
        .concat(),
        vec![
            "token",
            "report",
            "--workspace",
            &ids.workspace,
            "--report",
            &ids.report,
            "--access-level",
            "edit",
            "--allow-save-as",
            "--lifetime-minutes",
            "30",
        ],
        vec![
            "token",
            "create",
            "--workspace",
            &ids.workspace,
            "--dataset",
            &ids.dataset,
            "--allow-save-as",
        ],
        vec![
            "token",
            "dashboard",
            "--workspace",
            &ids.workspace,
            "--dashboard",
            &ids.dashboard,
            "--identities",
            file,
        ],
        [
            &[
                "token",
                "tile",
                "--workspace",
                &ids.workspace,
                "--dashboard",
                &ids.dashboard,
                "--tile",
                &ids.tile,
            ][..],
            &identity[..],
        ]
        .concat(),
        vec![
            "token",
            "dataset",
            "--workspace",
            &ids.workspace,
            "--dataset",
            &ids.dataset,
        ],
    ];
    for args in cases {
        let mut cmd = pbi_embed(&emulator);
        cmd.args(&args);
        let run = exec(cmd);
        minted(&emulator, &run);
        assert_no_secret(&emulator, &run, &[]);
    }
    let multi = format!("{}:edit", ids.rls_report);
    let xmla = format!("{}:xmla-readonly", ids.rls_dataset);
    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "token",
        "multi",
        "--report",
        &multi,
        "--dataset",
        &xmla,
        "--target-workspace",
        &ids.workspace,
    ])
    .args(identity);
    let json = minted(&emulator, &exec(cmd));
    let token = emulator.minted_token(json["tokenId"].as_str().unwrap()).unwrap();
    assert!(token.resources.iter().any(|r| r.editable));
    assert!(
        token
            .resources
            .iter()
            .any(|r| r.xmla_permissions.as_deref() == Some("ReadOnly"))
    );
    assert_eq!(token.target_workspaces, std::slice::from_ref(&ids.workspace));
    std::fs::remove_file(identities_file).unwrap();
}

#[test]
fn identities_from_stdin_and_blob_from_the_environment() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "token",
        "dashboard",
        "--workspace",
        &ids.workspace,
        "--dashboard",
        &ids.dashboard,
        "--identities",
        "-",
    ])
    .write_stdin(format!(
        r#"[{{"username":"a","roles":["{}"],"datasets":["{}"]}}]"#,
        ids.rls_role, ids.rls_dataset
    ));
    minted(&emulator, &exec(cmd));

    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "--verbose",
        "token",
        "report",
        "--workspace",
        &ids.workspace,
        "--report",
        &ids.rls_report,
    ])
    .args([
        "--username",
        "u",
        "--role",
        &ids.rls_role,
        "--identity-dataset",
        &ids.rls_dataset,
        "--identity-blob-env",
        BLOB_VAR,
    ]);
    let run = exec(cmd);
    let json = minted(&emulator, &run);
    assert!(
        emulator
            .minted_token(json["tokenId"].as_str().unwrap())
            .unwrap()
            .identities[0]
            .has_identity_blob
    );
    assert!(run.stderr.contains("DEBUG"), "--verbose logs: {}", run.stderr);
    assert_no_secret(&emulator, &run, &[]);
}

#[test]
fn a_bearer_token_from_the_environment() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let bearer = emulator
        .issue_access_token(&ids.client_id, Duration::from_secs(600))
        .unwrap();
    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.env_clear().env("PBI_ACCESS_TOKEN", &bearer).args([
        "--verbose",
        "--api-base",
        &emulator.base_url(),
        "token",
        "dataset",
        "--workspace",
        &ids.workspace,
        "--dataset",
        &ids.dataset,
    ]);
    let run = exec(cmd);
    minted(&emulator, &run);
    assert_no_secret(&emulator, &run, &[&bearer]);
}

#[test]
fn exit_2_for_usage_and_invalid_input() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "token",
                "report",
                "--workspace",
                "not-a-guid",
                "--report",
                &ids.report,
            ],
            "invalid groupId",
        ),
        (
            vec!["token", "report", "--workspace", &ids.workspace],
            "--report <ID>",
        ),
        (
            vec![
                "token",
                "report",
                "--workspace",
                &ids.workspace,
                "--report",
                &ids.report,
                "--lifetime-minutes",
                "0",
            ],
            "lifetimeInMinutes",
        ),
        (
            vec![
                "token",
                "report",
                "--workspace",
                &ids.workspace,
                "--report",
                &ids.report,
                "--username",
                "u",
                "--role",
                "a,b",
                "--identity-dataset",
                &ids.dataset,
            ],
            "contains a comma",
        ),
        (
            vec![
                "token",
                "report",
                "--workspace",
                &ids.workspace,
                "--report",
                &ids.report,
                "--identities",
                "/nonexistent.json",
            ],
            "--identities /nonexistent.json",
        ),
        (
            vec![
                "token",
                "report",
                "--workspace",
                &ids.workspace,
                "--report",
                &ids.report,
                "--identity-blob-env",
                "PBI_NOT_SET",
            ],
            "PBI_NOT_SET is not set",
        ),
        (vec!["token", "multi", "--report", "x:view"], "unknown suffix"),
        (
            vec![
                "--cloud",
                "mars",
                "token",
                "dataset",
                "--workspace",
                &ids.workspace,
                "--dataset",
                &ids.dataset,
            ],
            "invalid value 'mars'",
        ),
    ];
    for (args, message) in cases {
        let mut cmd = pbi_embed(&emulator);
        cmd.args(&args);
        let run = exec(cmd);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // Two identities on the report route: refused before sending.
    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "token",
        "report",
        "--workspace",
        &ids.workspace,
        "--report",
        &ids.report,
        "--identities",
        "-",
    ])
    .write_stdin(r#"[{"username":"a","datasets":["x"]},{"username":"b","datasets":["x"]}]"#);
    let run = exec(cmd);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("(nothing was sent)"), "{}", run.stderr);
    assert_eq!(emulator.generate_token_requests(), 0, "nothing reached Power BI");

    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.env_clear().args([
        "token",
        "dataset",
        "--workspace",
        &ids.workspace,
        "--dataset",
        &ids.dataset,
    ]);
    let run = exec(cmd);
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("error: no credentials"), "{}", run.stderr);
}

#[test]
fn exit_3_when_power_bi_refuses() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "token",
        "report",
        "--workspace",
        &ids.workspace,
        "--report",
        &ids.rls_report,
    ]);
    let run = exec(cmd);
    assert_eq!(run.code, 3);
    let first = run.stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: Reports_GenerateTokenInGroup at 127.0.0.1:")
            && first.contains(&format!(
                ": Power BI returned 400 Bad Request InvalidRequest: Creating embed token for accessing dataset {} requires effective identity to be provided (RequestId ",
                ids.rls_dataset
            )),
        "{first}"
    );
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert_no_secret(&emulator, &run, &[]);

    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "token",
        "report",
        "--workspace",
        &ids.other_workspace,
        "--report",
        &ids.report,
    ]);
    let run = exec(cmd);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("401 Unauthorized PowerBINotAuthorizedException"),
        "{}",
        run.stderr
    );
}

#[test]
fn exit_4_when_sign_in_fails() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let mut cmd = pbi_embed(&emulator);
    cmd.env("AZURE_CLIENT_SECRET", "a-wrong-secret-that-must-not-print")
        .args([
            "--verbose",
            "token",
            "dataset",
            "--workspace",
            &ids.workspace,
            "--dataset",
            &ids.dataset,
        ]);
    let run = exec(cmd);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let first = run.stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        first.contains("Entra ID sign-in failed with 401 Unauthorized invalid_client: AADSTS7000215"),
        "{first}"
    );
    assert_no_secret(&emulator, &run, &["a-wrong-secret-that-must-not-print"]);

    // --cloud picks the scope; --api-base and --authority-host change the hosts only.
    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "--cloud",
        "usgov",
        "token",
        "dataset",
        "--workspace",
        &ids.workspace,
        "--dataset",
        &ids.dataset,
    ]);
    let run = exec(cmd);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid_scope: AADSTS70011"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("https://analysis.usgovcloudapi.net/powerbi/api/.default"),
        "{}",
        run.stderr
    );
}

#[test]
fn exit_5_for_network_failures_and_unreadable_answers() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut cmd = pbi_embed_at(&emulator, &closed);
    cmd.args([
        "--timeout",
        "2",
        "token",
        "dataset",
        "--workspace",
        &ids.workspace,
        "--dataset",
        &ids.dataset,
    ]);
    let run = exec(cmd);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: Datasets_GenerateTokenInGroup at 127.0.0.1:")
            && run.stderr.contains(": could not connect: "),
        "{}",
        run.stderr
    );

    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Html { status: 200 },
    ));
    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "token",
        "dataset",
        "--workspace",
        &ids.workspace,
        "--dataset",
        &ids.dataset,
    ]);
    let run = exec(cmd);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("could not read the EmbedToken response (200 OK): expected a JSON body"),
        "{}",
        run.stderr
    );
}

/// `--timeout` bounds the whole command: a server that drip-feeds every answer, retried,
/// cannot keep it past the bound (plus the time to start and print).
#[test]
fn timeout_bounds_the_whole_command() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    emulator.inject(FaultRule::next(
        100,
        RouteMatch::GenerateToken,
        Fault::Drip { interval_millis: 200 },
    ));
    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "--timeout",
        "3",
        "token",
        "dataset",
        "--workspace",
        &ids.workspace,
        "--dataset",
        &ids.dataset,
    ]);
    let started = std::time::Instant::now();
    let run = exec(cmd);
    let took = started.elapsed();
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("timed out") || run.stderr.contains("deadline"),
        "{}",
        run.stderr
    );
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_millis(3600),
        "took {took:?}"
    );
}

#[test]
fn retries_carry_through() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    emulator.inject(FaultRule::next(
        1,
        RouteMatch::GenerateToken,
        Fault::Throttle {
            retry_after: "1".into(),
        },
    ));
    let mut cmd = pbi_embed(&emulator);
    cmd.args([
        "token",
        "dataset",
        "--workspace",
        &ids.workspace,
        "--dataset",
        &ids.dataset,
    ]);
    minted(&emulator, &exec(cmd));
    assert_eq!(emulator.generate_token_requests(), 2);
}

#[test]
fn the_emulator_subcommand_serves_until_interrupted() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let binary = assert_cmd::cargo::cargo_bin("pbi-embed");
    let mut child = StdCommand::new(&binary)
        .args(["emulator", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    while !banner.contains("Press Ctrl-C to stop.") {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the emulator exited: {banner}"
        );
        banner.push_str(&line);
    }
    let base = format!("http://127.0.0.1:{port}");
    assert!(banner.contains(&format!("listening on {base}")), "{banner}");
    // The printed example works as printed.
    let exports = banner
        .lines()
        .find(|l| l.trim_start().starts_with("export "))
        .unwrap();
    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.env_clear();
    for pair in exports.trim_start().trim_start_matches("export ").split(' ') {
        let (k, v) = pair.split_once('=').unwrap();
        cmd.env(k, v);
    }
    let example: String = banner
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("pbi-embed --api-base"))
        .take_while(|l| !l.is_empty())
        .map(|l| l.trim().trim_end_matches('\\').trim().to_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let args: Vec<&str> = example.split_whitespace().skip(1).collect();
    cmd.args(&args);
    let output = cmd.timeout(Duration::from_secs(30)).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let status = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
    let _ = std::io::stdout().flush();
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in ["report", "create", "dashboard", "tile", "dataset", "multi"] {
        let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
        cmd.args(["token", sub, "--help"]);
        let run = exec(cmd);
        assert_eq!(run.code, 0);
        assert!(run.stdout.contains("Example:"), "{sub}");
    }
    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.args(["emulator", "--help"]);
    assert!(exec(cmd).stdout.contains("Example:"));
}
