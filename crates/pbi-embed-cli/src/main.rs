//! `pbi-embed`: mint Power BI embed tokens from a shell, and run the local emulator.

// The argument docs are the `--help` text, where a URL reads best bare.
#![allow(rustdoc::bare_urls)]

mod args;
mod embed;
mod emulator;
mod failure;
mod token;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
