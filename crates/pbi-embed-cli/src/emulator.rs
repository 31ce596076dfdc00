//! `pbi-embed emulator`: the local emulator in the foreground.

use std::io::Write as _;

use pbi_embed_emulator::{Emulator, Fixture, Tls};

use crate::args::EmulatorArgs;
use crate::failure::{Failure, NETWORK, USAGE};

/// Starts the emulator, prints how to use it, and serves until Ctrl-C.
pub(crate) fn run(options: &EmulatorArgs) -> Result<(), Failure> {
    let fixture = match &options.fixture {
        Some(path) => Fixture::from_file(path).map_err(|e| Failure::Emulator(e.to_string(), USAGE))?,
        None => Fixture::default(),
    };
    let mut builder = Emulator::builder().fixture(fixture).listen(options.listen);
    if let Some(tls) = tls(options)? {
        builder = builder.tls(tls);
    }
    if let Some(embed_base) = &options.embed_base {
        builder = builder.embed_base(embed_base.as_str());
    }
    let emulator = builder
        .start()
        .map_err(|e| Failure::Emulator(format!("cannot serve on {}: {e}", options.listen), NETWORK))?;
    let base = emulator.base_url();
    let ids = emulator.ids();
    let trust = match (&options.tls_ca_out, emulator.ca_pem()) {
        (Some(path), Some(pem)) => {
            std::fs::write(path, pem).map_err(|e| {
                Failure::Emulator(
                    format!("cannot write the CA certificate to {}: {e}", path.display()),
                    USAGE,
                )
            })?;
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
            std::fs::write(path, format!("{certificate}{key}")).map_err(|e| {
                Failure::Emulator(
                    format!("cannot write the client certificate to {}: {e}", path.display()),
                    USAGE,
                )
            })?;
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

{managed}{certificate}
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
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read_to_string(path).map_err(|e| {
            Failure::Emulator(
                format!("cannot read the TLS {what} {}: {e}", path.display()),
                USAGE,
            )
        })
    };
    if let (Some(cert), Some(key)) = (&options.tls_cert, &options.tls_key) {
        return Ok(Some(Tls::from_pem(read(cert, "certificate")?, read(key, "key")?)));
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
