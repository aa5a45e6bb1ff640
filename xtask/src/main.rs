//! `cargo xtask`: builds, packages and verifies this repository's Python
//! AWS Lambda functions. Dispatch only: the command line is read against
//! the table of commands, and the command it names runs.

use std::process::ExitCode;

use xtask::cli::parse::{parse, Parsed};
use xtask::ground::progress::{Printer, Verbosity};
use xtask::{commands, ground::error};

fn main() -> ExitCode {
    let result = match parse(commands::COMMANDS, std::env::args().skip(1)) {
        Ok(Parsed::Help(text)) => {
            Printer::new(Verbosity::default()).out(&text);
            Ok(())
        }
        Ok(Parsed::Run(given)) => (given.command.run)(given),
        Err(err) => Err(err.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error::report(&err),
    }
}
