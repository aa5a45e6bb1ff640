//! `cargo xtask ci`'s harness, a crate of its own that only `cargo xtask
//! ci` builds (`cargo run --package xtask-ci`): a user's first build does
//! not compile it. It stands on the `xtask` library and nothing imports it.
//!
//! - this file: the stages, in order, and their verdict;
//! - `provision`: what a fresh machine lacks for the tests;
//! - `checks`: the stages beyond cargo's own (pytest, end-to-end, Terraform);
//! - `browser`: the report in headless Chromium;
//! - `emulator`: Terraform applied against an AWS emulator.
//!
//! Everything CI checks, as one command a developer can
//! run on a fresh machine: it first has what the tests need (Python, uv,
//! the test image), then runs formatting, lints, the Rust tests (with the
//! container builder against a real engine), the Python suite, an
//! end-to-end build of the example application, its report in headless
//! Chromium and the Terraform tests. A
//! stage this machine cannot run is skipped, counted and named; with
//! `CI=true` a skipped stage fails the run.

mod browser;
mod checks;
mod emulator;
mod provision;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::provision::{provision, Skipped};
use xtask::cli::{self, Common, Parsed};
use xtask::config::Config;
use xtask::progress::{Printer, Verbosity};
use xtask::{commands, error};

/// What `ci` runs, in order.
const STEPS: &[&str] = &[
    "provision",
    "cargo fmt --check",
    "cargo clippy",
    "cargo test",
    "pytest",
    "lock --check",
    "end-to-end build",
    "report in Chromium",
    "pip and uv layers agree",
    "container layers from the locks",
    "invoke --all (host)",
    "invoke --all (container)",
    "terraform",
    "terraform apply (emulator)",
    "terraform: a layer removed",
];

fn main() -> ExitCode {
    // `cargo xtask ci` hands on its whole command line, parsed as it was.
    let result = match cli::parse(commands::COMMANDS, std::env::args().skip(1)) {
        Ok(Parsed::Help(text)) => {
            Printer::new(Verbosity::default()).out(&text);
            Ok(())
        }
        Ok(Parsed::Run(given)) => run(&given.common),
        Err(err) => Err(err.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error::report(&err),
    }
}

fn run(options: &Common) -> Result<()> {
    let config = Config::load(&options.overrides)?;
    if options.dry_run {
        // Each step is a whole program; there is no cheaper preview of them.
        let plan: Vec<String> = STEPS.iter().map(|name| format!("ci: would run {name}")).collect();
        Printer::new(options.verbosity).out(&plan.join("\n"));
        return Ok(());
    }
    let sh = Shell::new()?;
    sh.change_dir(&config.root);
    // The stages run this binary; `cargo test --all-features` replaces the
    // file it was started from.
    checks::keep_xtask_binary(&config)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut timings: Vec<(&str, f64)> = Vec::new();
    let mut step = |name: &'static str, work: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        eprintln!("\n==> ci: {name}");
        let started = Instant::now();
        work().with_context(|| format!("ci step `{name}` failed"))?;
        timings.push((name, started.elapsed().as_secs_f64()));
        Ok(())
    };

    let mut skipped: Vec<Skipped> = Vec::new();
    step("provision", &mut || {
        let provisioned = provision(&sh, &config)?;
        if let Some(dir) = &provisioned.path_first {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![dir.clone()];
            dirs.extend(std::env::split_paths(&path));
            sh.set_var("PATH", std::env::join_paths(dirs)?);
        }
        if let Some(mirror) = &provisioned.provider_mirror {
            sh.set_var("TF_PROVIDER_MIRROR", mirror);
        }
        if let Some(client) = &provisioned.runtime_client {
            sh.set_var(xtask::lambda::runtime_env::RUNTIME_CLIENT_VARIABLE, client);
        }
        skipped = provisioned.skipped;
        Ok(())
    })?;
    let no_terraform = skipped.iter().any(|skip| skip.stage == "terraform");
    let no_container = skipped.iter().any(|skip| skip.stage == "container tests");
    let no_browser = skipped.iter().any(|skip| skip.stage == browser::STAGE);
    let no_emulator = skipped
        .iter()
        .any(|skip| skip.stage == "terraform apply (emulator)");

    step("cargo fmt --check", &mut || {
        Ok(cmd!(sh, "{cargo} fmt --all -- --check").run()?)
    })?;
    step("cargo clippy", &mut || {
        Ok(cmd!(
            sh,
            "{cargo} clippy --workspace --all-targets --all-features -- -D warnings"
        )
        .run()?)
    })?;
    step("cargo test", &mut || {
        // The container tests skip themselves where no engine answers.
        Ok(cmd!(sh, "{cargo} test --workspace --all-features").run()?)
    })?;
    step("pytest", &mut || checks::pytest(&sh, &config, options.installer))?;
    let xtask = checks::xtask_binary(&config);
    step(
        "lock --check",
        &mut || Ok(cmd!(sh, "{xtask} lock --check").run()?),
    )?;
    step("end-to-end build", &mut || checks::end_to_end(&sh, &config))?;
    if !no_browser {
        step(browser::STAGE, &mut || browser::report_in_browser(&sh, &config))?;
    }
    step("pip and uv layers agree", &mut || {
        checks::installers_agree(&sh, &config)
    })?;
    if !no_container {
        let image = crate::provision::TEST_IMAGE;
        step("container layers from the locks", &mut || {
            checks::container_agrees(&sh, &config, image)
        })?;
    }
    step("invoke --all (host)", &mut || {
        Ok(cmd!(sh, "{xtask} invoke --all --builder host --runner host").run()?)
    })?;
    if !no_container {
        // The layers as built on the host; the functions run in the test
        // image, as the Lambda image would run them.
        let image = crate::provision::TEST_IMAGE;
        step("invoke --all (container)", &mut || {
            Ok(cmd!(
                sh,
                "{xtask} invoke --all --builder host --runner container --image {image}"
            )
            .run()?)
        })?;
    }
    if !no_terraform {
        step("terraform", &mut || checks::terraform(&sh, &config))?;
        if !no_emulator {
            step("terraform apply (emulator)", &mut || {
                crate::emulator::apply_against_emulator(&sh, &config)
            })?;
        }
        step("terraform: a layer removed", &mut || {
            checks::layer_removal(&sh, &config)
        })?;
    }

    eprintln!();
    for (name, seconds) in &timings {
        eprintln!("  {name:<28} {seconds:>7.1} s");
    }
    for skip in &skipped {
        eprintln!("  {:<28} SKIPPED: {}", skip.stage, skip.why);
    }
    let ran = timings.len();
    if skipped.is_empty() {
        eprintln!("ci: {ran} passed, 0 failed");
        return Ok(());
    }
    let names: Vec<&str> = skipped.iter().map(|skip| skip.stage).collect();
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        bail!(
            "CI=true and {} stage(s) skipped ({}): this kind of machine can run them",
            skipped.len(),
            names.join(", ")
        );
    }
    eprintln!("ci: skipped {}", names.join(", "));
    eprintln!("ci: {ran} passed, 0 failed, {} skipped", skipped.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_stage_is_listed_under_the_name_it_is_skipped_by() {
        let at = |name: &str| STEPS.iter().position(|step| *step == name);
        assert!(at(browser::STAGE) > at("end-to-end build"), "{STEPS:?}");
    }
}
