//! `cargo xtask`: builds, packages and verifies this repository's Python
//! AWS Lambda functions. Dispatch only: the library's `commands` wing holds
//! each subcommand.

use std::process::ExitCode;

use xtask::cli::{self, Command};
use xtask::{commands, error, progress};

fn main() -> ExitCode {
    let invocation = match cli::parse(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(err) => return error::report(&err.into()),
    };
    let options = &invocation.options;
    let result = match &invocation.command {
        Command::Help(text) => {
            progress::Printer::new(options.verbosity).out(text);
            Ok(())
        }
        Command::BuildLayers(names) => commands::build_layers::run(options, names),
        Command::Package(names) => commands::package::run(options, names),
        Command::CheckLimits => commands::check_limits::run(options),
        Command::Smoke(names) => commands::smoke::run(options, names),
        Command::Invoke(names) => commands::invoke::run(options, names),
        Command::Lock(names) => commands::lock::run(options, names),
        Command::Build => commands::build::run(options),
        Command::Report => commands::report::run(options),
        Command::Ci => commands::ci::run(&std::env::args().skip(1).collect::<Vec<_>>()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error::report(&err),
    }
}
