//! `lock`'s work below the command: the profiles it is asked for (with
//! those stacked on them), each for every platform its functions run on
//! (`targets`); whether a lock is current (`problem`); and resolving one
//! with uv (`Resolver`). The command says what each gave.

use std::path::PathBuf;

use anyhow::Result;
use xshell::Shell;

use crate::config::{self, Config, LayerSource, Platform};
use crate::ground::error::UsageError;
use crate::python::installer::{Installer, InstallerChoice};
use crate::python::lockfile::{self, State};
use crate::store::tools::{Planned, Tools};

/// One lock to check or write: a profile for one platform.
pub struct Target {
    pub name: String,
    pub requirements: PathBuf,
    pub platform: Platform,
}

impl Target {
    /// Its lock, beside its requirements.
    pub fn lock(&self) -> PathBuf {
        lockfile::path(&self.requirements, self.platform.runtime, self.platform.arch)
    }

    fn key(&self) -> String {
        format!("layers.{}.requirements", self.name)
    }

    fn base_locks(&self, config: &Config) -> Vec<PathBuf> {
        lockfile::base_locks(config, &self.name, self.platform)
    }
}

/// The named profiles (default: all) and those stacked on them (their
/// locks were resolved under the named ones' pins), one lock per platform
/// their functions run on, bases first.
pub fn targets(config: &Config, names: &[String]) -> Result<Vec<Target>> {
    let profiles: Vec<_> = config
        .stack_order()
        .into_iter()
        .filter_map(|layer| match &layer.source {
            LayerSource::Requirements(path) => Some((layer.name.clone(), path.clone())),
            _ => None,
        })
        .collect();
    if let Some(unknown) = names
        .iter()
        .find(|name| !profiles.iter().any(|(profile, _)| profile == *name))
    {
        let known: Vec<&str> = profiles.iter().map(|(name, _)| name.as_str()).collect();
        let message = format!(
            "`{unknown}` is not a dependency profile (profiles: {})",
            known.join(", ")
        );
        return Err(UsageError::new(message).into());
    }
    let named = |name: &String| {
        names.is_empty()
            || names.contains(name)
            || config::bases_of(&config.layers, name)
                .iter()
                .any(|base| names.iter().any(|named| named == base))
    };
    Ok(profiles
        .into_iter()
        .filter(|(name, _)| named(name))
        .flat_map(|(name, requirements)| {
            config
                .layer_platforms(&name)
                .into_iter()
                .map(|platform| Target {
                    name: name.clone(),
                    requirements: requirements.clone(),
                    platform,
                })
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Only uv resolves for another platform; pip installs the locks it writes.
pub fn refuse_pip(installer: InstallerChoice) -> Result<()> {
    if installer == InstallerChoice::Pip {
        return Err(UsageError::new(
            "lock resolves with uv (pip cannot resolve for another platform); pip installs the locks",
        )
        .into());
    }
    Ok(())
}

/// What is wrong with `target`'s lock: `None` when it is current.
pub fn problem(config: &Config, target: &Target) -> Result<Option<String>> {
    let lock = target.lock();
    let inputs = lockfile::inputs(
        &config.root,
        &target.requirements,
        &target.key(),
        &target.base_locks(config),
    )?;
    Ok(match lockfile::state(&config.root, &lock, &inputs) {
        State::Current => None,
        State::Missing => Some(format!("no {}", lock.display())),
        other => Some(lockfile::problem(&lock, &other).unwrap_or_default()),
    })
}

/// uv, found once, resolving one lock after the other.
pub struct Resolver {
    sh: Shell,
    uv: Installer,
    cache_dir: PathBuf,
    /// `--upgrade`, `--upgrade-package NAME`…, as uv takes them.
    upgrade: Vec<String>,
}

impl Resolver {
    /// Finds uv (or fetches it into the cache); with what it noted on the way.
    pub fn new(
        config: &Config,
        upgrade: bool,
        upgrade_packages: &[String],
    ) -> Result<(Resolver, Vec<String>)> {
        let mut upgrade_args: Vec<String> = Vec::new();
        if upgrade {
            upgrade_args.push("--upgrade".to_string());
        }
        for package in upgrade_packages {
            upgrade_args.extend(["--upgrade-package".to_string(), package.clone()]);
        }
        let sh = Shell::new()?;
        sh.change_dir(&config.root);
        let cache_dir = config.cache_dir();
        let tools = Tools::load(&cache_dir, true);
        let mut notes = Vec::new();
        let uv = match Installer::discover(&sh, &tools, &cache_dir, InstallerChoice::Uv, &mut notes)? {
            Planned::Ready(uv) => uv,
            Planned::Pending(what) => anyhow::bail!("lock needs uv: {what}"),
        };
        tools.save()?;
        let resolver = Resolver {
            sh,
            uv,
            cache_dir,
            upgrade: upgrade_args,
        };
        Ok((resolver, notes))
    }

    /// Resolves `target` and writes its lock whole: its path and how many
    /// distributions it pins.
    pub fn write(&self, config: &Config, target: &Target) -> Result<(PathBuf, usize)> {
        let base_locks = target.base_locks(config);
        let request = lockfile::Request {
            requirements: &target.requirements,
            key: &target.key(),
            runtime: target.platform.runtime,
            arch: target.platform.arch,
            upgrade: &self.upgrade,
            base_locks: &base_locks,
        };
        lockfile::write(&self.sh, &self.uv, &config.root, &self.cache_dir, &request)
    }
}
