//! The built `pbi-embed` binary against the emulator: every subcommand, each exit code,
//! the stdout shape, what stderr says, and that no secret is ever printed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use pbi_embed_emulator::{Emulator, Fault, FaultRule, RouteMatch};
use pbi_embed_testkit::{Expected, check_minted};
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
    let role = ids.rls_role.as_str();
    // Each command line, and what Power BI must receive for it, stated on its own.
    let cases: Vec<(Vec<&str>, Expected)> = vec![
        (
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
            Expected::new("Reports_GenerateTokenInGroup")
                .access("View")
                .resource("report", &ids.rls_report, false, None)
                .identity("john@contoso.com", &[role], &[&ids.rls_dataset], None),
        ),
        (
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
            Expected::new("Reports_GenerateTokenInGroup")
                .access("Edit")
                .save_as()
                .lifetime(30)
                .resource("report", &ids.report, true, None),
        ),
        (
            vec![
                "token",
                "create",
                "--workspace",
                &ids.workspace,
                "--dataset",
                &ids.dataset,
                "--allow-save-as",
            ],
            Expected::new("Reports_GenerateTokenForCreateInGroup")
                .access("Create")
                .save_as()
                .resource("dataset", &ids.dataset, false, None)
                .target(&ids.workspace),
        ),
        (
            vec![
                "token",
                "dashboard",
                "--workspace",
                &ids.workspace,
                "--dashboard",
                &ids.dashboard,
                "--identities",
                file,
                "--lifetime-minutes",
                "12",
            ],
            Expected::new("Dashboards_GenerateTokenInGroup")
                .access("View")
                .lifetime(12)
                .resource("dashboard", &ids.dashboard, false, None)
                .identity("a", &[role], &[&ids.rls_dataset], None)
                .identity("b", &[role], &[&ids.rls_dataset], None),
        ),
        (
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
                &["--custom-data", "tenant-7"][..],
            ]
            .concat(),
            Expected::new("Tiles_GenerateTokenInGroup")
                .access("View")
                .resource("tile", &ids.tile, false, None)
                .identity("john@contoso.com", &[role], &[&ids.rls_dataset], Some("tenant-7")),
        ),
        (
            vec![
                "token",
                "dataset",
                "--workspace",
                &ids.workspace,
                "--dataset",
                &ids.dataset,
            ],
            Expected::new("Datasets_GenerateTokenInGroup")
                .access("View")
                .resource("dataset", &ids.dataset, false, None),
        ),
    ];
    for (args, expected) in cases {
        let mut cmd = pbi_embed(&emulator);
        cmd.args(&args);
        let run = exec(cmd);
        let json = minted(&emulator, &run);
        let token = emulator.minted_token(json["tokenId"].as_str().unwrap()).unwrap();
        if let Err(difference) = check_minted(&expected, &token) {
            panic!("pbi-embed {}: {difference}", args.join(" "));
        }
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
        "--report",
        &ids.report,
        "--dataset",
        &xmla,
        "--dataset",
        &ids.dataset,
        "--target-workspace",
        &ids.workspace,
        "--lifetime-minutes",
        "20",
    ])
    .args(identity);
    let json = minted(&emulator, &exec(cmd));
    let token = emulator.minted_token(json["tokenId"].as_str().unwrap()).unwrap();
    let expected = Expected::new("EmbedToken_GenerateToken")
        .save_as()
        .lifetime(20)
        .resource("report", &ids.rls_report, true, None)
        .resource("report", &ids.report, false, None)
        .resource("dataset", &ids.rls_dataset, false, Some("ReadOnly"))
        .resource("dataset", &ids.dataset, false, None)
        .target(&ids.workspace)
        .identity("john@contoso.com", &[role], &[&ids.rls_dataset], None);
    check_minted(&expected, &token).unwrap_or_else(|difference| panic!("token multi: {difference}"));
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

/// An identity that names no dataset is for the report's own dataset, looked up from the
/// report's metadata, as the library's embed configurations do.
#[test]
fn a_report_identity_without_datasets_gets_the_reports_dataset() {
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
    ])
    .args(["--username", "john@contoso.com", "--role", &ids.rls_role]);
    let run = exec(cmd);
    let json = minted(&emulator, &run);
    let record = emulator
        .introspect(json["token"].as_str().unwrap())
        .token
        .unwrap();
    let expected = Expected::new("Reports_GenerateTokenInGroup")
        .access("View")
        .resource("report", &ids.rls_report, false, None)
        .identity("john@contoso.com", &[&ids.rls_role], &[&ids.rls_dataset], None);
    check_minted(&expected, &record).unwrap();
    assert_eq!(
        emulator.requests(pbi_embed_emulator::Route::ReportsGetReportInGroup),
        1
    );
}

/// `--output token` prints the bare token and a newline, for `TOKEN=$(...)`; before or
/// after the subcommand alike, and a wrong value is a usage error.
#[test]
fn the_bare_token_for_shell_use() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let dataset = ["--workspace", &ids.workspace, "--dataset", &ids.dataset];
    for placement in [
        ["token", "--output", "token", "dataset"],
        ["token", "dataset", "--output", "token"],
    ] {
        let mut cmd = pbi_embed(&emulator);
        cmd.args(placement).args(dataset);
        let run = exec(cmd);
        assert_eq!(run.code, 0, "{placement:?}: {}", run.stderr);
        let token = run
            .stdout
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("{:?}", run.stdout));
        assert!(!token.contains(['\n', '{', ' ']), "{placement:?}: {token:?}");
        let seen = emulator.introspect(token);
        assert!(seen.valid, "{placement:?}: {seen:?}");
        check_minted(
            &Expected::new("Datasets_GenerateTokenInGroup")
                .access("View")
                .resource("dataset", &ids.dataset, false, None),
            &seen.token.unwrap(),
        )
        .unwrap();
    }
    let mut cmd = pbi_embed(&emulator);
    cmd.args(["token", "--output", "yaml", "dataset"]).args(dataset);
    let run = exec(cmd);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("invalid value 'yaml'"), "{}", run.stderr);
    assert_eq!(emulator.generate_token_requests(), 2);
}

#[test]
fn exit_2_for_usage_and_invalid_input() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let xmla_typo = format!("{}:xmla-readnly", ids.dataset);
    // 50 MB of identities: refused after the first MiB is read, before anything is sent.
    let big = std::env::temp_dir().join(format!("pbi-embed-cli-big-{}.json", std::process::id()));
    std::fs::write(&big, vec![b' '; 50 * 1024 * 1024]).unwrap();
    let big_file = big.to_str().unwrap();
    let report = [
        "token",
        "report",
        "--workspace",
        &ids.workspace,
        "--report",
        &ids.report,
    ];
    let dataset = [
        "token",
        "dataset",
        "--workspace",
        &ids.workspace,
        "--dataset",
        &ids.dataset,
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }
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
                "dataset",
                "--workspace",
                &ids.workspace,
                "--dataset",
                "..",
            ],
            "invalid datasetId: \"..\" is not an id",
        ),
        (
            vec!["token", "multi", "--dataset", &xmla_typo],
            "unknown suffix :xmla-readnly",
        ),
        (with(&["--timeout", "0"], &dataset), "--timeout 0"),
        (
            with(&report, &["--identities", "/dev/zero"]),
            "larger than 1048576 bytes",
        ),
        (
            with(&report, &["--identities", big_file]),
            "larger than 1048576 bytes",
        ),
        (
            with(
                &report,
                &[
                    "--username",
                    "u",
                    "--role",
                    "a,b",
                    "--identity-dataset",
                    &ids.dataset,
                ],
            ),
            "contains a comma",
        ),
        (
            with(&report, &["--identities", "/nonexistent.json"]),
            "--identities /nonexistent.json",
        ),
        (
            with(&report, &["--identity-blob-env", "PBI_NOT_SET"]),
            "PBI_NOT_SET is not set",
        ),
        (vec!["token", "multi", "--report", "x:view"], "unknown suffix"),
        (with(&["--cloud", "mars"], &dataset), "invalid value 'mars'"),
    ];
    for (args, message) in cases {
        let mut cmd = pbi_embed(&emulator);
        cmd.args(&args);
        let started = std::time::Instant::now();
        let run = exec(cmd);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("PASSWORD"), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    }
    std::fs::remove_file(&big).unwrap();
    // Set but empty is not "not set".
    let mut cmd = pbi_embed(&emulator);
    cmd.env("PBI_EMPTY_BLOB", "")
        .args(with(&report, &["--identity-blob-env", "PBI_EMPTY_BLOB"]));
    let run = exec(cmd);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("PBI_EMPTY_BLOB is set but empty"),
        "{}",
        run.stderr
    );
    assert_eq!(emulator.generate_token_requests(), 0, "nothing reached Power BI");
    // A password in a custom host is refused and never printed.
    for flag in ["--api-base", "--authority-host"] {
        let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
        cmd.env_clear()
            .env("PBI_ACCESS_TOKEN", "t")
            .args([flag, "https://user:PASSWORD@api.example", "token", "dataset"])
            .args(["--workspace", &ids.workspace, "--dataset", &ids.dataset]);
        let run = exec(cmd);
        assert_eq!(run.code, 2, "{flag}: {}", run.stderr);
        assert!(
            run.stderr.contains("[user info removed]"),
            "{flag}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("PASSWORD"), "{flag}: {}", run.stderr);
    }
    // Two identities on the report route: refused before sending.
    let mut cmd = pbi_embed(&emulator);
    cmd.args(report)
        .args(["--identities", "-"])
        .write_stdin(r#"[{"username":"a","datasets":["x"]},{"username":"b","datasets":["x"]}]"#);
    let run = exec(cmd);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("(nothing was sent)"), "{}", run.stderr);
    assert_eq!(emulator.generate_token_requests(), 0, "nothing reached Power BI");

    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.env_clear().args(dataset);
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
    for sub in [
        "report",
        "paginated",
        "dashboard",
        "tile",
        "qna",
        "visual",
        "create",
    ] {
        let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
        cmd.args(["embed", sub, "--help"]);
        let run = exec(cmd);
        assert_eq!(run.code, 0);
        assert!(run.stdout.contains("Example:"), "embed {sub}");
    }
    let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
    cmd.args(["emulator", "--help"]);
    assert!(exec(cmd).stdout.contains("Example:"));
}

/// Issue 18's findings on the command line, one by one.
mod probe_findings {
    use super::*;

    fn dataset_args(ids: &pbi_embed_emulator::FixtureIds) -> Vec<String> {
        [
            "token",
            "dataset",
            "--workspace",
            &ids.workspace,
            "--dataset",
            &ids.dataset,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    #[test]
    fn a_huge_timeout_is_clamped_not_a_panic() {
        let emulator = Emulator::start().unwrap();
        let mut cmd = pbi_embed(&emulator);
        cmd.args(["--timeout", "18446744073709551615"])
            .args(dataset_args(&emulator.ids()));
        let run = exec(cmd);
        minted(&emulator, &run);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }

    #[test]
    fn lifetime_zero_is_power_bis_default() {
        let emulator = Emulator::start().unwrap();
        let mut cmd = pbi_embed(&emulator);
        cmd.args(dataset_args(&emulator.ids()))
            .args(["--lifetime-minutes", "0"]);
        let json = minted(&emulator, &exec(cmd));
        let token = emulator.minted_token(json["tokenId"].as_str().unwrap()).unwrap();
        assert_eq!(token.lifetime_in_minutes, Some(0));
    }

    #[cfg(unix)]
    #[test]
    fn variables_that_are_not_utf8_are_named_not_called_unset() {
        use std::os::unix::ffi::OsStringExt as _;
        let emulator = Emulator::start().unwrap();
        let ids = emulator.ids();
        let garbage = std::ffi::OsString::from_vec(vec![0xff, 0xfe, b'x']);
        let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
        cmd.env_clear()
            .env("PBI_ACCESS_TOKEN", &garbage)
            .args(["--api-base", &emulator.base_url()])
            .args(dataset_args(&ids));
        let run = exec(cmd);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("PBI_ACCESS_TOKEN: is set but is not valid UTF-8"),
            "{}",
            run.stderr
        );
        let mut cmd = pbi_embed(&emulator);
        cmd.env(BLOB_VAR, &garbage).args([
            "token",
            "report",
            "--workspace",
            &ids.workspace,
            "--report",
            &ids.rls_report,
            "--username",
            "u",
            "--identity-dataset",
            &ids.rls_dataset,
            "--identity-blob-env",
            BLOB_VAR,
        ]);
        let run = exec(cmd);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains("is not valid UTF-8"), "{}", run.stderr);
    }

    #[test]
    fn a_failed_sign_in_names_its_step_and_host() {
        let emulator = Emulator::start().unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let ids = emulator.ids();
        let mut cmd = Command::cargo_bin("pbi-embed").unwrap();
        cmd.env_clear()
            .env("AZURE_TENANT_ID", &ids.tenant)
            .env("AZURE_CLIENT_ID", &ids.client_id)
            .env("AZURE_CLIENT_SECRET", &ids.client_secret)
            .args(["--verbose", "--timeout", "5", "--api-base", &emulator.base_url()])
            .args(["--authority-host", &format!("http://{closed}")])
            .args(dataset_args(&ids));
        let run = exec(cmd);
        assert_eq!(run.code, 5, "{}", run.stderr);
        let error = run.stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
        assert!(
            error.starts_with(&format!(
                "error: Entra_ClientCredentials at {closed}: could not connect: "
            )),
            "{error}"
        );
        // --verbose names the host of every exchange, and writes no colour codes to a
        // redirected stderr.
        assert!(
            run.stderr.contains(&format!("host=\"{}\"", closed.ip())),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains('\u{1b}'), "colour codes: {:?}", run.stderr);
        assert_no_secret(&emulator, &run, &[]);
    }

    #[test]
    fn a_refused_bearer_token_says_which_credential_was_used() {
        let emulator = Emulator::start().unwrap();
        let ids = emulator.ids();
        let expired = emulator
            .issue_access_token(&ids.client_id, Duration::ZERO)
            .unwrap();
        let mut cmd = pbi_embed(&emulator);
        cmd.env("PBI_ACCESS_TOKEN", &expired)
            .arg("--verbose")
            .args(dataset_args(&ids));
        let run = exec(cmd);
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(
            run.stderr.contains(
                "PBI_ACCESS_TOKEN and AZURE_* are both set: using the bearer token from PBI_ACCESS_TOKEN"
            ),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("hint: the bearer token in PBI_ACCESS_TOKEN was refused"),
            "{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("tenant setting allows service principals"),
            "{}",
            run.stderr
        );
        assert_no_secret(&emulator, &run, &[&expired]);
    }
}

/// With its file descriptors used up, `pbi-embed emulator` waits for connections to close
/// instead of spinning on the accept loop, and serves again once they do.
#[cfg(target_os = "linux")]
#[test]
fn the_emulator_does_not_spin_when_out_of_file_descriptors() {
    let binary = assert_cmd::cargo::cargo_bin("pbi-embed");
    let stderr_path =
        std::env::temp_dir().join(format!("pbi-embed-cli-emulator-fds-{}.log", std::process::id()));
    let mut child = StdCommand::new("sh")
        .args(["-c", "ulimit -n 48 && exec \"$0\" emulator --listen 127.0.0.1:0"])
        .arg(&binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The first line ends with the base URL, the real port included.
    let base = first.trim().rsplit(' ').next().unwrap().to_owned();
    let addr = base.trim_start_matches("http://").to_owned();
    assert!(!addr.ends_with(":0"), "{first}");
    let cpu_ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let held: Vec<std::net::TcpStream> = (0..120)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks() - before;
    drop(held);
    // Clock ticks are hundredths of a second: a spinning loop would use nearly 100.
    assert!(
        used < 30,
        "the emulator used {used}/100 s of CPU in a second while out of descriptors"
    );
    std::thread::sleep(Duration::from_millis(200));
    let reply = (0..50).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let mut stream = std::net::TcpStream::connect(&addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream
            .write_all(b"GET /_emulator/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut reply = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut reply);
        reply.starts_with("HTTP/1.1 200").then_some(reply)
    });
    let exited = child.try_wait().ok().flatten();
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_path);
    assert!(
        reply.is_some(),
        "the emulator serves again once connections close (exited: {exited:?}); stderr: {stderr}"
    );
}

#[test]
fn the_emulator_refuses_options_it_would_ignore() {
    for args in [
        &["emulator", "--timeout", "1"][..],
        &["--credential", "azure-cli", "emulator"],
        &["emulator", "--api-base", "http://127.0.0.1:9"],
        &["completions", "bash", "--profile-id", "x"],
    ] {
        let output = Command::cargo_bin("pbi-embed")
            .unwrap()
            .env_clear()
            .args(args)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        let flag = args.iter().find(|a| a.starts_with("--")).unwrap();
        assert!(
            stderr.contains(&format!("{flag} applies to")),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn completions_for_every_shell_and_help_in_two_lists() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef pbi-embed"),
        ("fish", "complete -c pbi-embed"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion"),
    ] {
        let output = Command::cargo_bin("pbi-embed")
            .unwrap()
            .args(["completions", shell])
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..script.len().min(200)]
        );
        assert!(
            script.contains("identity-dataset"),
            "{shell}: the subcommands' options"
        );
    }
    let output = Command::cargo_bin("pbi-embed")
        .unwrap()
        .args(["token", "report", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    let (own, client) = help
        .split_once("Client options (token and embed):")
        .expect("the global client options under their own heading");
    assert!(own.contains("--report") && !own.contains("--api-base"), "{help}");
    assert!(
        client.contains("--api-base") && client.contains("PBI_API_BASE"),
        "{help}"
    );
}

#[test]
fn what_can_be_checked_here_is_checked_before_the_first_request() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    // The identity's dataset would come from the report's metadata: the roles are still
    // checked first, so a bad one never costs a sign-in or a read.
    let mut cmd = pbi_embed(&emulator);
    cmd.args(["token", "report", "--workspace", &ids.workspace])
        .args(["--report", &ids.rls_report, "--username", "u", "--role", "a,b"]);
    let run = exec(cmd);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("role"), "{}", run.stderr);
    let sent: u64 = emulator.stats().requests.values().sum();
    assert_eq!(sent, 0, "nothing was sent: {:?}", emulator.stats().requests);
}
