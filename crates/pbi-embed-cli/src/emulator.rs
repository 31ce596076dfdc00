//! `pbi-embed emulator`: the local emulator in the foreground.

use std::io::Write as _;

use pbi_embed_emulator::{Emulator, Fixture};

use crate::args::EmulatorArgs;
use crate::failure::{Failure, NETWORK, USAGE};

/// Starts the emulator, prints how to use it, and serves until Ctrl-C.
pub(crate) fn run(options: &EmulatorArgs) -> Result<(), Failure> {
    let fixture = match &options.fixture {
        Some(path) => Fixture::from_file(path).map_err(|e| Failure::Emulator(e.to_string(), USAGE))?,
        None => Fixture::default(),
    };
    let emulator = Emulator::builder()
        .fixture(fixture)
        .listen(options.listen)
        .start()
        .map_err(|e| Failure::Emulator(format!("cannot listen on {}: {e}", options.listen), NETWORK))?;
    let base = emulator.base_url();
    let ids = emulator.ids();
    let text = format!(
        "pbi-embed emulator listening on {base}
  Power BI API base:    {base}
  Entra authority host: {base}
  control routes:       {base}/_emulator/stats, /_emulator/tokens/{{tokenId}}, /_emulator/faults

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

Press Ctrl-C to stop.",
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
