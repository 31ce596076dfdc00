//! `pbi-embed emulator`: the local emulator in the foreground.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use pbi_embed_emulator::{Emulator, Fixture, MAX_FIXTURE_BYTES, Tls};

use crate::args::EmulatorArgs;
use crate::failure::{Failure, NETWORK, USAGE};
use crate::files::{self, EMULATOR_READ_TIMEOUT};

/// The largest TLS certificate chain or key file read.
const MAX_TLS_FILE_BYTES: u64 = 1024 * 1024;
/// How long the federated token `--federated-token-out` writes is valid.
const FEDERATED_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A file the emulator is given, as text: bounded in size and time.
fn read_text(path: &Path, what: &str, max_bytes: u64) -> Result<String, Failure> {
    let usage = |why: String| Failure::Emulator(format!("{what} {}: {why}", path.display()), USAGE);
    let bytes = files::read(path, max_bytes, EMULATOR_READ_TIMEOUT).map_err(usage)?;
    String::from_utf8(bytes).map_err(|_| usage("is not UTF-8 text".to_owned()))
}

/// Writes what `--…-out` asks for; `private` for a secret (mode 0600).
fn write(path: &Path, what: &str, contents: &str, private: bool) -> Result<(), Failure> {
    let written = if private {
        files::write_private(path, contents.as_bytes())
    } else {
        files::write_public(path, contents.as_bytes())
    };
    written.map_err(|why| {
        Failure::Emulator(
            format!("cannot write the {what} to {}: {why}", path.display()),
            USAGE,
        )
    })
}

/// Starts the emulator, prints how to use it, and serves until Ctrl-C.
pub(crate) fn run(options: &EmulatorArgs) -> Result<(), Failure> {
    let fixture = match &options.fixture {
        Some(path) => Fixture::from_json(&read_text(path, "--fixture", MAX_FIXTURE_BYTES)?)
            .map_err(|e| Failure::Emulator(format!("--fixture {}: {e}", path.display()), USAGE))?,
        None => Fixture::default(),
    };
    let mut builder = Emulator::builder().fixture(fixture).listen(options.listen);
    if let Some(tls) = tls(options)? {
        builder = builder.tls(tls);
    }
    if let Some(embed_base) = &options.embed_base {
        builder = builder.embed_base(embed_base.as_str());
    }
    let emulator = builder.start().map_err(|e| {
        use std::io::ErrorKind;
        match e.kind() {
            // Bad TLS material or a TLS name: what was given, by its option.
            ErrorKind::InvalidInput | ErrorKind::InvalidData => {
                let given = match (&options.tls_cert, &options.tls_key) {
                    (Some(cert), Some(key)) => {
                        format!("--tls-cert {} with --tls-key {}", cert.display(), key.display())
                    }
                    _ => "--tls-name".to_owned(),
                };
                Failure::Emulator(format!("{given}: {e}"), USAGE)
            }
            ErrorKind::AddrInUse | ErrorKind::AddrNotAvailable | ErrorKind::PermissionDenied => {
                Failure::Emulator(
                    format!(
                        "cannot listen on {}: {e}; choose another --listen",
                        options.listen
                    ),
                    USAGE,
                )
            }
            _ => Failure::Emulator(format!("cannot serve on {}: {e}", options.listen), NETWORK),
        }
    })?;
    let base = emulator.base_url();
    let ids = emulator.ids();
    let trust = match (&options.tls_ca_out, emulator.ca_pem()) {
        (Some(path), Some(pem)) => {
            write(path, "CA certificate", pem, false)?;
            let path = path.display();
            format!(
                "\n  CA certificate:       {path}\n    trust it: pbi-embed --ca-cert {path} … | SSL_CERT_FILE={path} | REQUESTS_CA_BUNDLE={path} (Python)"
            )
        }
        (None, Some(_)) => {
            "\n  CA certificate:       not written (add --tls-ca-out FILE to trust it)".to_owned()
        }
        _ => String::new(),
    };
    let certificate = match &options.client_certificate_out {
        Some(path) => {
            let (certificate, key) = emulator.issue_client_certificate(&ids.client_id).ok_or_else(|| {
                Failure::Emulator(
                    "the fixture has no service principal to give a certificate".to_owned(),
                    USAGE,
                )
            })?;
            write(
                path,
                "client certificate and its key",
                &format!("{certificate}{key}"),
                true,
            )?;
            format!(
                "Or sign in with a client certificate (registered on the app; the file holds its key):
  export AZURE_TENANT_ID={} AZURE_CLIENT_ID={} AZURE_CLIENT_CERTIFICATE_PATH={}
",
                ids.tenant,
                ids.client_id,
                path.display()
            )
        }
        None => String::new(),
    };
    let federated = match &options.federated_token_out {
        Some(path) => {
            let subject = emulator
                .fixture()
                .principal(&ids.client_id)
                .and_then(|principal| principal.federated_credentials.first())
                .map(|credential| credential.subject.clone())
                .ok_or_else(|| {
                    Failure::Emulator(
                        "the fixture's service principal trusts no federated credential".to_owned(),
                        USAGE,
                    )
                })?;
            let token = emulator.issue_federated_token(&subject, FEDERATED_TOKEN_LIFETIME);
            write(path, "federated token", &token, true)?;
            format!(
                "Or sign in as a workload identity (the file holds a federated token, valid 24 h):
  export AZURE_TENANT_ID={} AZURE_CLIENT_ID={} AZURE_FEDERATED_TOKEN_FILE={}
",
                ids.tenant,
                ids.client_id,
                path.display()
            )
        }
        None => String::new(),
    };
    let text = format!(
        "pbi-embed emulator listening on {base}
  Power BI API base:    {base}
  Entra authority host: {base}
  OpenID configuration: {base}/{tenant}/v2.0/.well-known/openid-configuration
  control routes:       {base}/_emulator/stats, /_emulator/tokens/{{tokenId}}, /_emulator/faults{trust}

Fixture
  tenant:          {tenant}
  client id:       {client_id}
  client secret:   {client_secret}   (the emulator's own; never use it elsewhere)
  workspace:       {workspace}
  report (RLS):    {rls_report}   dataset {rls_dataset}, requires an identity with a role such as {rls_role}
  report:          {report}   dataset {dataset}, no row-level security
  dashboard:       {dashboard}   tile {tile}

Try it (in another shell):
  export AZURE_TENANT_ID={tenant} AZURE_CLIENT_ID={client_id} AZURE_CLIENT_SECRET={client_secret}
  pbi-embed --api-base {base} --authority-host {base} token report \\
    --workspace {workspace} --report {rls_report} \\
    --username john@contoso.com --role {rls_role} --identity-dataset {rls_dataset}

{managed}{certificate}{federated}
Press Ctrl-C to stop.",
        managed = match emulator.identity_header() {
            Some(header) => format!(
                "Or sign in with a managed identity (no secret in AZURE_*):
  App Service: export IDENTITY_ENDPOINT={endpoint} IDENTITY_HEADER={header}
  VM (IMDS):   export AZURE_POD_IDENTITY_AUTHORITY_HOST={base}   and add --credential managed-identity
",
                endpoint = emulator.identity_endpoint(),
            ),
            None => String::new(),
        },
        tenant = ids.tenant,
        client_id = ids.client_id,
        client_secret = ids.client_secret,
        workspace = ids.workspace,
        rls_report = ids.rls_report,
        rls_dataset = ids.rls_dataset,
        rls_role = ids.rls_role,
        report = ids.report,
        dataset = ids.dataset,
        dashboard = ids.dashboard,
        tile = ids.tile,
    );
    emulator
        .run_until_signal(|| {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{text}");
            let _ = stdout.flush();
        })
        .map_err(|e| Failure::Emulator(format!("cannot wait for Ctrl-C: {e}"), NETWORK))?;
    eprintln!("pbi-embed emulator stopped");
    Ok(())
}

/// The TLS options, read: a generated certificate, a given one, or none.
fn tls(options: &EmulatorArgs) -> Result<Option<Tls>, Failure> {
    if let (Some(cert), Some(key)) = (&options.tls_cert, &options.tls_key) {
        return Ok(Some(Tls::from_pem(
            read_text(cert, "--tls-cert", MAX_TLS_FILE_BYTES)?,
            read_text(key, "--tls-key", MAX_TLS_FILE_BYTES)?,
        )));
    }
    if !options.tls {
        return Ok(None);
    }
    Ok(Some(
        options
            .tls_name
            .iter()
            .fold(Tls::generated(), |tls, name| tls.name(name.as_str())),
    ))
}
