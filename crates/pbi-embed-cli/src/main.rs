//! `pbi-embed`: mint Power BI embed tokens from a shell, and run the local emulator.

// The argument docs are the `--help` text, where a URL reads best bare.
#![allow(rustdoc::bare_urls)]

mod args;
mod embed;
mod emulator;
mod failure;
mod files;
mod serve;
mod token;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _};

fn main() -> ExitCode {
    let matches = args::Cli::command().get_matches();
    let cli = args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    refuse_client_options(&matches);
    if cli.global.verbose {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "pbi_embed=debug,pbi_embed_ureq=debug,pbi_embed_core=debug",
            ))
            .init();
    }
    let result = match cli.command {
        args::Command::Token(command) => token::run(&cli.global, command),
        args::Command::Embed(command) => embed::run(&cli.global, command),
        args::Command::Emulator(options) => emulator::run(&options),
        args::Command::Serve(options) => serve::run(&options),
        args::Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Prints the completion script for `shell` (a reader that stops early is not an error).
fn completions(shell: clap_complete::Shell) -> Result<(), failure::Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut args::Cli::command(), "pbi-embed", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(failure::Failure::Usage(format!(
            "cannot write the completion script: {e}"
        ))),
        _ => Ok(()),
    }
}

/// Exits 2 when an option only `token` and `embed` read was typed for another command
/// (`pbi-embed emulator --timeout 1` would otherwise be silently ignored). Values from the
/// environment (`PBI_API_BASE`) are not the user's words here and pass.
fn refuse_client_options(matches: &clap::ArgMatches) {
    let Some((name, sub)) = matches.subcommand() else {
        return;
    };
    if matches!(name, "token" | "embed") {
        return;
    }
    let typed = |m: &clap::ArgMatches, id: &str| {
        m.try_get_raw(id).is_ok_and(|v| v.is_some()) && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    if let Some(id) = args::Global::CLIENT_ONLY
        .into_iter()
        .find(|id| typed(matches, id) || typed(sub, id))
    {
        let flag = format!("--{}", id.replace('_', "-"));
        args::Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("{flag} applies to `token` and `embed`, not to `{name}`"),
            )
            .exit();
    }
}
