//! The development virtualenv: the Python suite's requirements
//! (`lambdas/requirements-dev.txt`: pytest, moto, the handlers' packages),
//! for `cargo xtask ci`'s tests and the local fakes of `invoke --all`.
//! Made with uv when there is one, reused while that file does not change.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::config::Config;
use crate::ground::digest::file_sha256;
use crate::python::installer::InstallerChoice;
use crate::python::installer::{self, Installer};
use crate::store::tools::{Planned, Tools};

/// The requirements of the development environment, from the repository root.
pub const REQUIREMENTS: &str = "lambdas/requirements-dev.txt";

/// The virtualenv's interpreter, made first when missing or stale.
pub fn python(sh: &Shell, config: &Config, choice: InstallerChoice) -> Result<PathBuf> {
    let requirements = config.root.join(REQUIREMENTS);
    let venv = config.cache_dir().join("ci-venv");
    venv_python(sh, config, &requirements, &venv, choice)
        .with_context(|| format!("the development virtualenv from {REQUIREMENTS}"))
}

/// The interpreter of a virtualenv at `venv` holding `requirements`, made
/// first when missing or when that file changed since (its sha256 is kept
/// in the virtualenv).
pub fn venv_python(
    sh: &Shell,
    config: &Config,
    requirements: &Path,
    venv: &Path,
    choice: InstallerChoice,
) -> Result<PathBuf> {
    let stamp = venv.join(".requirements.sha256");
    let wanted = file_sha256(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?
        .hex;
    let python = venv.join("bin/python");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let _ = fs::remove_dir_all(venv);
    let mut notes = Vec::new();
    let tools = Tools::load(&config.cache_dir(), true);
    let installer = match Installer::discover(sh, &tools, &config.cache_dir(), choice, &mut notes)? {
        Planned::Ready(installer) => installer,
        Planned::Pending(what) => bail!("no installer: {what}"),
    };
    tools.save()?;
    for note in notes {
        eprintln!("{}", crate::ground::redact::urls(&note));
    }
    match installer.kind {
        installer::Kind::Uv => {
            let uv = &installer.program;
            let uv_cache = config.cache_dir().join("uv");
            cmd!(sh, "{uv} venv --quiet --python python3 {venv}")
                .env("UV_PYTHON_DOWNLOADS", "never")
                .run()?;
            cmd!(sh, "{uv} pip install --quiet --python {python} -r {requirements}")
                .env("UV_CACHE_DIR", uv_cache)
                .run()?;
        }
        installer::Kind::Pip => {
            cmd!(sh, "python3 -m venv {venv}").run()?;
            cmd!(
                sh,
                "{python} -m pip install --quiet --disable-pip-version-check -r {requirements}"
            )
            .run()?;
        }
    }
    fs::write(&stamp, &wanted)?;
    Ok(python)
}
