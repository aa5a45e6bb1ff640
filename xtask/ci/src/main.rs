//! `cargo xtask ci`'s harness, a crate of its own that only `cargo xtask
//! ci` builds (`cargo run --package xtask-ci`): a user's first build does
//! not compile it. It stands on the `xtask` library and nothing imports it.
//!
//! - this file: the stages, in order, and their verdict;
//! - `provision`: what a fresh machine lacks for the tests;
//! - `checks`: the stages beyond cargo's own (pytest, end-to-end, Terraform);
//! - `browser`: the report in headless Chromium;
//! - `emulator`: Terraform applied against an AWS emulator;
//! - `registry`: a container registry for the run, with a Lambda-like base;
//! - `images`: a copy of the example with an image function, built, pushed,
//!   pulled and run (and what the emulator stage deploys);
//! - `serve`: `cargo xtask serve` with real clients (send.py, curl,
//!   urllib, Chromium).
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
mod images;
mod lane;
mod net;
mod provision;
mod registry;
mod serve;

use std::cell::OnceCell;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::lane::{CompileAhead, Ended, Lane, Setting, CARGO_STAGES, LAST_STAGES};
use crate::provision::{provision, Skipped, TestImage};
use xtask::cli::parse::{parse, Parsed};
use xtask::cli::Common;
use xtask::config::Config;
use xtask::ground::progress::{Printer, Verbosity};
use xtask::{commands, ground::error};

/// The first stage: what the others need on this machine, or why they
/// are skipped.
const PROVISION: &str = "provision";

/// What the stages after provisioning share.
struct Harness<'a> {
    /// At the repository's root, with what provisioning put on PATH.
    sh: Shell,
    config: Config,
    options: &'a Common,
    cargo: String,
    xtask: PathBuf,
    /// The copy with an image function and the registry of its base, made
    /// by the first stage that needs it; the registry stops with the run.
    images: OnceCell<images::ImageApp>,
}

impl Harness<'_> {
    fn image_app(&self) -> Result<&images::ImageApp> {
        if let Some(app) = self.images.get() {
            return Ok(app);
        }
        let app = images::ImageApp::prepare(&self.config, &self.xtask, &self.sh)?;
        Ok(self.images.get_or_init(|| app))
    }
}

/// One stage of `ci` after provisioning.
struct Stage {
    name: &'static str,
    /// The stages provisioning can skip that leave this one out too.
    needs: &'static [&'static str],
    run: fn(&Harness) -> Result<()>,
}

/// What `ci` runs after provisioning, in order.
const STAGES: &[Stage] = &[
    Stage {
        name: "pytest",
        needs: &[],
        run: |ci| checks::pytest(&ci.sh, &ci.config, ci.options.installer),
    },
    Stage {
        name: "python lint",
        needs: &[],
        run: |ci| checks::python_lint(&ci.sh, &ci.config, ci.options.installer),
    },
    Stage {
        name: "lock --check",
        needs: &[],
        run: |ci| {
            let xtask = &ci.xtask;
            Ok(cmd!(ci.sh, "{xtask} lock --check").run()?)
        },
    },
    Stage {
        name: "end-to-end build",
        needs: &[],
        run: |ci| checks::end_to_end(&ci.sh, &ci.config),
    },
    Stage {
        name: "sbom schema",
        needs: &[],
        run: |ci| checks::sbom_schema(&ci.sh, &ci.config, ci.options.installer),
    },
    Stage {
        name: browser::STAGE,
        needs: &[browser::STAGE],
        run: |ci| browser::report_in_browser(&ci.sh, &ci.config),
    },
    Stage {
        name: "audit (fixture OSV export)",
        needs: &[],
        run: |ci| checks::audit_fixture(&ci.sh, &ci.config),
    },
    Stage {
        name: "pip and uv layers agree",
        needs: &[],
        run: |ci| checks::installers_agree(&ci.sh, &ci.config),
    },
    Stage {
        name: "container layers from the locks",
        needs: &[provision::CONTAINER_TESTS],
        run: |ci| checks::container_agrees(&ci.sh, &ci.config, provision::TEST_IMAGE),
    },
    Stage {
        name: "invoke --all (host)",
        needs: &[],
        run: |ci| {
            let xtask = &ci.xtask;
            Ok(cmd!(ci.sh, "{xtask} invoke --all --builder host --runner host").run()?)
        },
    },
    // Beside what invoke --all proved one event at a time: the same cases
    // through the API, as its clients send them.
    Stage {
        name: serve::CASES_STAGE,
        needs: &[],
        run: |ci| serve::every_case(&ci.sh, &ci.config, ci.options.installer, &ci.xtask),
    },
    Stage {
        name: serve::CURL_STAGE,
        needs: &[serve::CURL_STAGE],
        run: |ci| serve::curl_session(&ci.sh, &ci.config, ci.options.installer, &ci.xtask),
    },
    Stage {
        name: serve::CORS_STAGE,
        needs: &[serve::CORS_STAGE],
        run: |ci| serve::cors_in_chromium(&ci.sh, &ci.config, ci.options.installer, &ci.xtask),
    },
    Stage {
        name: "invoke --all (container)",
        needs: &[provision::CONTAINER_TESTS],
        // The layers as built on the host; the functions run in the test
        // image, as the Lambda image would run them.
        run: |ci| {
            let (xtask, image) = (&ci.xtask, provision::TEST_IMAGE);
            Ok(cmd!(
                ci.sh,
                "{xtask} invoke --all --builder host --runner container --image {image}"
            )
            .run()?)
        },
    },
    Stage {
        name: images::STAGE,
        needs: IMAGE_STAGES,
        run: |ci| images::build_push_pull_run(ci.image_app()?, &ci.config),
    },
    Stage {
        name: TERRAFORM,
        needs: &[TERRAFORM],
        run: |ci| checks::terraform(&ci.sh, &ci.config),
    },
    Stage {
        name: emulator::STAGE,
        // It deploys the copy with an image function, which needs what the
        // images stage needs.
        needs: &[
            TERRAFORM,
            emulator::STAGE,
            provision::CONTAINER_TESTS,
            provision::REGISTRY_TESTS,
        ],
        run: |ci| {
            let dist = ci.image_app()?.build(images::ECR_REPOSITORY)?;
            emulator::apply_against_emulator(&ci.sh, &ci.config, &dist)
        },
    },
    Stage {
        name: "terraform: a layer removed",
        needs: &[TERRAFORM],
        run: |ci| checks::layer_removal(&ci.sh, &ci.config),
    },
    // Last, beside the tests of the cargo lane: cargo builds one thing at a
    // time, and the lane's `cargo test` has finished compiling by now.
    Stage {
        name: "cargo clippy",
        needs: &[],
        run: |ci| {
            let cargo = &ci.cargo;
            Ok(cmd!(ci.sh, "{cargo} clippy --workspace --all-targets -- -D warnings").run()?)
        },
    },
];

/// Names provisioning skips stages by.
const TERRAFORM: &str = "terraform";

/// What the stages of an image function need: docker with the test image
/// (the base is built on it; the image is pulled and run) and a registry
/// with skopeo.
const IMAGE_STAGES: &[&str] = &[provision::CONTAINER_TESTS, provision::REGISTRY_TESTS];

/// Every stage's name, in the order `ci` runs them.
fn stage_names() -> impl Iterator<Item = &'static str> {
    std::iter::once(PROVISION)
        .chain(CARGO_STAGES.iter().map(|stage| stage.name))
        .chain(STAGES.iter().map(|stage| stage.name))
        .chain(LAST_STAGES.iter().map(|stage| stage.name))
}

fn main() -> ExitCode {
    // `cargo xtask ci` hands on its whole command line, parsed as it was.
    let result = match parse(commands::COMMANDS, std::env::args().skip(1)) {
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
        let plan: Vec<String> = stage_names()
            .map(|name| format!("ci: would run {name}"))
            .collect();
        Printer::new(options.verbosity).out(&plan.join("\n"));
        return Ok(());
    }
    let sh = Shell::new()?;
    sh.change_dir(&config.root);
    // The stages run this binary; `cargo test` replaces the file it was
    // started from.
    checks::keep_xtask_binary(&config)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let log = config.cache_dir().join("ci").join("cargo.log");
    let ahead = CompileAhead::start(&cargo, &config.root, &log.with_file_name("compile-ahead.log"))?;
    let mut timings = Timings::default();
    let provided = timings.time(PROVISION, || provisioned(&sh, &config));
    let Provided {
        mut skipped,
        env,
        test_image,
    } = match provided {
        Ok(provided) => provided,
        Err(err) => {
            ahead.stop();
            return Err(err);
        }
    };
    eprintln!(
        "\n==> ci: the cargo lane ({}) runs beside the stages below; its output is in {} and shown when it ends",
        CARGO_STAGES.iter().map(|stage| stage.name).collect::<Vec<_>>().join(", "),
        log.strip_prefix(&config.root).unwrap_or(&log).display()
    );
    let setting = Setting {
        cargo: cargo.clone(),
        root: config.root.clone(),
        env,
        log,
    };
    let lane = Lane::start(
        CARGO_STAGES,
        setting.clone(),
        &skipped,
        test_image.clone(),
        Some(ahead),
    )?;
    let harness = Harness {
        cargo,
        xtask: checks::xtask_binary(&config),
        sh,
        config,
        options,
        images: OnceCell::new(),
    };
    let stages = run_stages(&harness, test_image.as_deref(), &mut skipped, &mut timings);
    let mut ended = Vec::new();
    if stages.is_ok() {
        let log = setting.log.with_file_name("cargo-last.log");
        eprintln!(
            "\n==> ci: {} beside the end of the cargo lane; output in {}",
            LAST_STAGES
                .iter()
                .map(|stage| stage.name)
                .collect::<Vec<_>>()
                .join(", "),
            log.strip_prefix(&harness.config.root).unwrap_or(&log).display()
        );
        let last = Lane::start(
            LAST_STAGES,
            Setting { log, ..setting },
            &skipped,
            test_image.clone(),
            None,
        );
        ended.push(finish(lane));
        match last {
            Ok(last) => ended.push(finish(last)),
            Err(err) => return Err(err),
        }
    } else {
        ended.push(finish_early(lane));
    }
    stages?;
    for lane in ended {
        if let Some(err) = lane.failed {
            return Err(err);
        }
        timings.0.extend(lane.timings);
        skipped.extend(lane.not_run);
    }
    verdict(&timings, &skipped)
}

/// Waits for a lane and shows its output.
fn finish(lane: Lane) -> Ended {
    let log = lane.log.clone();
    let ended = lane.wait();
    show_log(&log);
    ended
}

/// Ends a lane now (the main lane failed) and shows its output.
fn finish_early(lane: Lane) -> Ended {
    let log = lane.log.clone();
    let ended = lane.stop();
    show_log(&log);
    ended
}

fn show_log(log: &std::path::Path) {
    eprintln!("\n==> ci: the output of {}", log.display());
    eprint!("{}", std::fs::read_to_string(log).unwrap_or_default());
}

/// The stages of the main lane, in order; the first failure ends them. A
/// stage that needs the test image waits for it, and is skipped (with the
/// others that need it) when it could not be built.
fn run_stages(
    harness: &Harness,
    test_image: Option<&TestImage>,
    skipped: &mut Vec<Skipped>,
    timings: &mut Timings,
) -> Result<()> {
    for stage in STAGES {
        if stage.needs.contains(&provision::CONTAINER_TESTS) {
            if let Some(Err(why)) = test_image.map(TestImage::wait) {
                if !skipped
                    .iter()
                    .any(|skip| skip.stage == provision::CONTAINER_TESTS)
                {
                    skipped.push(Skipped {
                        stage: provision::CONTAINER_TESTS,
                        why,
                    });
                }
            }
        }
        let left_out = skipped.iter().any(|skip| stage.needs.contains(&skip.stage));
        if !left_out {
            timings.time(stage.name, || (stage.run)(harness))?;
        }
    }
    Ok(())
}

/// Variables provisioning set, by name.
type Env = Vec<(&'static str, OsString)>;

/// What provisioning gives the stages.
struct Provided {
    skipped: Vec<Skipped>,
    env: Env,
    test_image: Option<Arc<TestImage>>,
}

/// Provisions the machine and points the shell at what it provided: the
/// stages it could not provide for, and the variables it set (the cargo
/// lane's commands get them too).
fn provisioned(sh: &Shell, config: &Config) -> Result<Provided> {
    let provisioned = provision(sh, config)?;
    let mut env: Env = Vec::new();
    if let Some(dir) = &provisioned.path_first {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.clone()];
        dirs.extend(std::env::split_paths(&path));
        env.push(("PATH", std::env::join_paths(dirs)?));
    }
    if let Some(mirror) = &provisioned.provider_mirror {
        env.push(("TF_PROVIDER_MIRROR", mirror.into()));
    }
    if let Some(client) = &provisioned.runtime_client {
        env.push((xtask::lambda::runtime_env::RUNTIME_CLIENT_VARIABLE, client.into()));
    }
    for (name, value) in &env {
        sh.set_var(name, value);
    }
    Ok(Provided {
        skipped: provisioned.skipped,
        env,
        test_image: provisioned.test_image,
    })
}

/// How long each stage that ran took, in order.
#[derive(Default)]
struct Timings(Vec<(&'static str, f64)>);

impl Timings {
    /// Runs one stage under its banner, timed; its failure names it.
    fn time<T>(&mut self, name: &'static str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        eprintln!("\n==> ci: {name}");
        let started = Instant::now();
        let value = work().with_context(|| format!("ci step `{name}` failed"))?;
        self.0.push((name, started.elapsed().as_secs_f64()));
        Ok(value)
    }
}

/// The table of timings and skips, and the verdict: with `CI=true` a
/// skipped stage fails the run.
fn verdict(timings: &Timings, skipped: &[Skipped]) -> Result<()> {
    eprintln!();
    for (name, seconds) in &timings.0 {
        eprintln!("  {name:<28} {seconds:>7.1} s");
    }
    for skip in skipped {
        eprintln!("  {:<28} SKIPPED: {}", skip.stage, skip.why);
    }
    let ran = timings.0.len();
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
        let names: Vec<&str> = stage_names().collect();
        let at = |name: &str| names.iter().position(|step| *step == name);
        assert!(at(browser::STAGE) > at("end-to-end build"), "{names:?}");
    }

    /// Provisioning skips the serve stages it cannot provide for by their
    /// names: each is in the table under that name, and left out by it.
    #[test]
    fn the_serve_stages_provisioning_can_skip_are_skipped_by_their_names() {
        for name in [serve::CURL_STAGE, serve::CORS_STAGE] {
            let stage = STAGES.iter().find(|stage| stage.name == name);
            assert!(stage.is_some_and(|stage| stage.needs.contains(&name)), "{name}");
        }
        let names: Vec<&str> = stage_names().collect();
        let at = |name: &str| names.iter().position(|step| *step == name);
        assert!(at(serve::CASES_STAGE) > at("end-to-end build"), "{names:?}");
    }

    /// The stages that build, push or deploy the copy with an image
    /// function are left out where docker with the test image, or the
    /// registry and skopeo, cannot be had: skipped and named, not failed.
    #[test]
    fn the_image_stages_are_skipped_by_what_they_need() {
        for name in [images::STAGE, emulator::STAGE] {
            let stage = STAGES.iter().find(|stage| stage.name == name);
            assert!(
                stage.is_some_and(|stage| stage.needs.contains(&provision::CONTAINER_TESTS)
                    && stage.needs.contains(&provision::REGISTRY_TESTS)),
                "{name}"
            );
        }
    }
}
