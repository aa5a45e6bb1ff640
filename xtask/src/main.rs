//! `cargo xtask`: builds, packages and verifies this repository's Python
//! AWS Lambda functions. Dispatch only; each subcommand lives in its module.

mod analyze;
mod archive;
mod build_layers;
mod builder;
mod cache;
mod check_limits;
mod ci;
mod cli;
mod config;
mod container;
mod digest;
mod elf;
mod facts;
mod freshness;
mod import_check;
mod installer;
mod layer_content;
mod manifest;
mod package;
mod progress;
mod python;
mod smoke;
mod sources;

use std::fmt;
use std::process::ExitCode;

use cli::Command;

fn main() -> ExitCode {
    let invocation = match cli::parse(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(err) => return report(&err.into()),
    };
    let result = match &invocation.command {
        Command::Help(text) => {
            print!("{text}");
            Ok(())
        }
        Command::BuildLayers(names) => build_layers::run(&invocation.options, names),
        Command::Package(names) => package::run(&invocation.options, names),
        Command::CheckLimits => check_limits::run(&invocation.options),
        Command::Smoke(names) => smoke::run(&invocation.options, names),
        Command::Build => build(&invocation.options),
        Command::Ci => ci::run(&invocation.options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// The main job: every step in order, stopping at the first that fails.
fn build(options: &cli::Options) -> anyhow::Result<()> {
    if options.json || options.dry_run {
        // Each step has its own plan and its own JSON document.
        return Err(UsageError::new(
            "build takes neither --json nor --dry-run: use them with build-layers, package, check-limits or smoke",
        )
        .into());
    }
    build_layers::run(options, &[])?;
    package::run(options, &[])?;
    check_limits::run(options)?;
    smoke::run(options, &[])
}

/// Prints the error chain on one line and picks the exit code: 2 for bad
/// usage or configuration, 1 for work that failed.
fn report(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<Failed>().is_none() {
        eprintln!("error: {err:#}");
    }
    if err.chain().any(|cause| cause.is::<UsageError>()) {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// Bad usage or configuration: exit code 2.
#[derive(Debug)]
pub struct UsageError(String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError(message.into())
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Work that failed and whose details were already printed: exit code 1
/// without another message.
#[derive(Debug)]
pub struct Failed;

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for Failed {}
