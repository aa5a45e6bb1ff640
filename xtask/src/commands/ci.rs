//! `cargo xtask ci`: everything CI checks. The harness is a crate of its
//! own (`xtask/ci`) that only this command builds, so a user's build never
//! compiles it; this runs it with the whole command line and answers with its exit code.

use std::process::Command;

use anyhow::{Context, Result};

use crate::cli::args::CiArgs;
use crate::ground::error::Failed;

/// How the harness finds the xtask binary its stages run.
pub const XTASK_BINARY_VARIABLE: &str = "XTASK_BINARY";

pub fn run(args: CiArgs) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let xtask = std::env::current_exe().context("locating the xtask binary")?;
    let status = Command::new(cargo)
        .args(["run", "--quiet", "--package", "xtask-ci", "--"])
        .args(&args.line)
        .env(XTASK_BINARY_VARIABLE, xtask)
        .status()
        .context("starting `cargo run --package xtask-ci`")?;
    match status.code() {
        Some(0) => Ok(()),
        code => Err(Failed {
            usage: code == Some(2),
        }
        .into()),
    }
}
