//! `cargo xtask`: builds, packages and verifies this repository's Python
//! AWS Lambda functions. Dispatch only; each subcommand lives in
//! `commands/`, the build graph in `graph/`, its steps in `steps/`, and what
//! they stand on in the modules below.

mod analyze;
mod archive;
mod atomic;
mod browser;
mod checks;
mod cli;
mod commands;
mod config;
mod contain;
mod container;
#[cfg(test)]
mod design_doc;
mod dev_env;
mod digest;
mod drive;
mod elf;
mod emulator;
mod error;
mod facts;
mod fakes;
mod graph;
mod import_check;
mod installer;
mod layer_content;
mod lock;
mod lockfile;
mod manifest;
mod progress;
mod provision;
mod python;
mod reaper;
mod redact;
mod remote_cache;
mod render;
mod report;
mod requirements;
mod runtime_api;
mod sources;
mod steps;
mod store;
mod tools;

use std::process::ExitCode;

use cli::Command;

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
        Command::Ci => commands::ci::run(options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error::report(&err),
    }
}
