//! `cargo xtask ci`'s "terraform apply (emulator)": terraform/envs/dev
//! applied with the real hashicorp/aws provider (from the filesystem mirror
//! in `TF_PROVIDER_MIRROR`) against moto in server mode on 127.0.0.1,
//! which this stage starts and stops. It proves that what the emulated AWS
//! API then holds is what dist/manifest.json says (code hashes and sizes,
//! settings, layers in order, log retention, reserved concurrency, the HTTP
//! API's routes, the functions they invoke, their payload format and
//! authorization, and the authorizer) and that a plan right after the apply
//! is empty. The dist/ applied is the caller's: in `ci`, that of the copy
//! of the application in which `cors` ships as an image (`crate::images`),
//! so that the image path (below) runs too.
//!
//! Nothing lands in the work tree: Terraform runs on a copy of terraform/
//! in the tool's cache, with dist/ linked where envs/dev looks for it
//! (`../../../dist/manifest.json`), an override file pointing the provider
//! at moto and a variables file of made-up Cognito ids and secret ARNs.
//! moto lives in its own virtualenv, remade when
//! terraform/tests/emulator/requirements.txt changes.
//!
//! - this file: the stage, in order: prepare, apply, verify;
//! - `moto`: the emulator's lifecycle;
//! - `terraform`: the copy of terraform/ and terraform run against moto;
//! - `deployed`: what the emulated API holds against the manifest;
//! - `image`: image functions: their repositories applied first, their
//!   images put into moto's ECR as `push` would, their uris recorded.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use xshell::Shell;

use xtask::config::Config;
use xtask::python::installer::InstallerChoice;

use deployed::{differences, read_deployed, report};
use image::{image_functions, push_to_moto};
use moto::Moto;
use terraform::{copy_terraform, plan_text, Terraform};

mod deployed;
mod image;
mod moto;
mod terraform;
#[cfg(test)]
mod tests;

/// moto and the packages that read its state, from the repository root.
pub const REQUIREMENTS: &str = "terraform/tests/emulator/requirements.txt";

/// envs/dev's `name_prefix`, given explicitly so that the names compared are
/// the names deployed.
const NAME_PREFIX: &str = "lambda-app-dev";

/// moto's account (what its STS answers), in the made-up secret ARNs.
const ACCOUNT: &str = "123456789012";
const REGION: &str = xtask::facts::LOCAL_REGION;

/// The stage's name in `ci` (and in its list of skipped stages).
pub const STAGE: &str = "terraform apply (emulator)";

/// Applies terraform/envs/dev to what `dist` holds against moto and checks
/// the result (see the module's documentation). The provider comes from
/// `TF_PROVIDER_MIRROR`.
pub fn apply_against_emulator(sh: &Shell, config: &Config, dist: &Path) -> Result<()> {
    let started = Instant::now();
    let mut manifest = read_manifest(dist)?;
    let mut emulated = Emulated::prepare(sh, config, dist)?;
    if let Err(err) = emulated.apply(&mut manifest) {
        if !lost_create(&err) {
            return Err(err);
        }
        // Seen once in five runs on a loaded machine: moto logged a
        // CreateFunction as answered (201) that the provider never got; its
        // retry then met "already exist" until the create timed out. That
        // is the emulator's glitch, not the configuration's: one more
        // apply, from nothing, against a fresh moto, says which.
        eprintln!(
            "{STAGE}: {err:#}\n{STAGE}: the provider missed moto's answer to a create; applying once more against a fresh moto"
        );
        emulated.finish();
        manifest = read_manifest(dist)?;
        emulated = Emulated::prepare(sh, config, dist)?;
        emulated.apply(&mut manifest)?;
    }
    emulated.verify(&manifest)?;
    emulated.finish();
    eprintln!("{STAGE}: passed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A create the provider retried against what moto had already made.
fn lost_create(err: &anyhow::Error) -> bool {
    let text = format!("{err:#}");
    text.contains("ResourceConflictException") && text.contains("already exist")
}

fn read_manifest(dist: &Path) -> Result<Value> {
    let path = dist.join("manifest.json");
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// A copy of terraform/ initialised against a running moto.
struct Emulated {
    /// The copy, the variables, moto's log; removed when all went well.
    work: PathBuf,
    python: PathBuf,
    terraform: Terraform,
    var_file: String,
    /// Dropped last: moto is stopped on every way out.
    moto: Moto,
}

impl Emulated {
    /// moto's virtualenv, the copy of terraform/ with the override and the
    /// variables, moto started, `terraform init` done.
    fn prepare(sh: &Shell, config: &Config, dist: &Path) -> Result<Emulated> {
        let mirror = sh
            .var("TF_PROVIDER_MIRROR")
            .ok()
            .filter(|dir| !dir.is_empty())
            .context(
                "TF_PROVIDER_MIRROR is not set: the stage needs a filesystem mirror holding hashicorp/aws",
            )?;
        let python = xtask::lambda::dev_env::venv_python(
            sh,
            config,
            &config.root.join(REQUIREMENTS),
            &config.cache_dir().join("tools").join("emulator-venv"),
            InstallerChoice::Uv,
        )
        .with_context(|| format!("making moto's virtualenv from {REQUIREMENTS}"))?;

        let work = fresh_copy(config, dist)?;
        let moto = Moto::start(&python, &work.join("moto.log"))?;
        let endpoint = moto.endpoint();
        eprintln!("{STAGE}: moto answers on {endpoint}");
        let (terraform, tfvars) = Terraform::against_moto(sh, &work, &endpoint, &mirror)?;
        terraform.init()?;
        Ok(Emulated {
            work,
            python,
            terraform,
            var_file: format!("-var-file={}", tfvars.display()),
            moto,
        })
    }

    /// The apply; with image functions, first their repositories, then
    /// their images into moto's ECR (`manifest` gets their uris, and so
    /// does the copy's dist/manifest.json), then the whole.
    fn apply(&self, manifest: &mut Value) -> Result<()> {
        let applying = Instant::now();
        if !image_functions(manifest).is_empty() {
            self.terraform
                .run(&[
                    "apply",
                    "-input=false",
                    "-no-color",
                    "-auto-approve",
                    "-target=module.ecr",
                    &self.var_file,
                ])
                .context(
                    "terraform apply -target=module.ecr (the image functions' repositories) against moto",
                )?;
            push_to_moto(&self.python, &self.moto.endpoint(), &self.work, manifest)?;
            let path = self.work.join("dist").join("manifest.json");
            fs::write(&path, serde_json::to_vec_pretty(manifest)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        self.terraform
            .run(&[
                "apply",
                "-input=false",
                "-no-color",
                "-auto-approve",
                &self.var_file,
            ])
            .with_context(|| {
                format!(
                    "terraform apply of envs/dev against moto (its log: {})",
                    self.work.join("moto.log").display()
                )
            })?;
        let resources = self.terraform.run(&["state", "list"])?;
        let count = String::from_utf8_lossy(&resources.stdout).lines().count();
        eprintln!(
            "{STAGE}: {count} resources applied in {:.1} s",
            applying.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// What the API holds against `manifest`, then an empty plan: every
    /// failure in one error.
    fn verify(&self, manifest: &Value) -> Result<()> {
        let deployed = read_deployed(&self.python, &self.moto.endpoint())?;
        let differences = differences(manifest, &deployed, NAME_PREFIX);
        if differences.is_empty() {
            eprintln!(
                "{STAGE}: {} functions and their layers, the API's {} routes, its authorizer and its access log hold what dist/manifest.json says",
                manifest["functions"]
                    .as_object()
                    .map_or(0, |functions| functions.len()),
                manifest["api"]["routes"]
                    .as_object()
                    .map_or(0, |routes| routes.len())
            );
        }
        let plan = self.terraform.output(&[
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            &self.var_file,
        ])?;
        let plan_problem = match plan.status.code() {
            Some(0) => {
                eprintln!("{STAGE}: the plan right after the apply is empty");
                None
            }
            Some(2) => Some(format!(
                "`terraform plan` right after the apply is not empty:\n{}",
                plan_text(&plan.stdout)
            )),
            _ => Some(format!(
                "`terraform plan` after the apply failed:\n{}",
                tail(&[plan.stdout.as_slice(), plan.stderr.as_slice()].concat(), 40)
            )),
        };
        let mut problems = Vec::new();
        if !differences.is_empty() {
            problems.push(report(&differences));
        }
        problems.extend(plan_problem);
        if problems.is_empty() {
            return Ok(());
        }
        bail!(
            "{}\n(the applied copy is kept in {})",
            problems.join("\n\n"),
            self.work.display()
        )
    }

    /// Stops moto and removes the copy.
    fn finish(self) {
        let work = self.work.clone();
        drop(self);
        let _ = fs::remove_dir_all(work);
    }
}

/// The stage's folder in the cache, made again: a copy of terraform/ and a
/// dist/ where envs/dev reads it (`../../../dist/manifest.json` and the
/// ZIPs and image layouts it names): dist/'s entries linked, its
/// manifest.json copied, since the stage records in it the uris of the
/// images it puts into moto.
fn fresh_copy(config: &Config, dist: &Path) -> Result<PathBuf> {
    let work = config.cache_dir().join("ci-emulator");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    copy_terraform(&config.root.join("terraform"), &work.join("terraform"))?;
    let copy = work.join("dist");
    fs::create_dir_all(&copy)?;
    for item in fs::read_dir(dist).with_context(|| format!("listing {}", dist.display()))? {
        let item = item?;
        let name = item.file_name();
        if name == "manifest.json" {
            fs::copy(item.path(), copy.join(&name))
                .with_context(|| format!("copying {}", item.path().display()))?;
        } else {
            std::os::unix::fs::symlink(item.path(), copy.join(&name))
                .with_context(|| format!("linking {} into {}", item.path().display(), copy.display()))?;
        }
    }
    Ok(work)
}

/// The last `count` lines of a command's output, indented.
fn tail(output: &[u8], count: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(count);
    lines[start..]
        .iter()
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
