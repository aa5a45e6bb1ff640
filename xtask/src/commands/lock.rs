//! `cargo xtask lock [PROFILE...] [--upgrade | --upgrade-package NAME] [--check]`:
//! resolves each dependency profile once, for the runtime and architecture,
//! into a lock beside its requirements that `build-layers` installs as it is.

use anyhow::Result;
use xshell::Shell;

use crate::cli::Options;
use crate::config::{self, Config, LayerSource, Platform};
use crate::error::{Failed, UsageError};
use crate::progress::Printer;
use crate::python::installer::Installer;
use crate::python::installer::InstallerChoice;
use crate::python::lockfile::{self, State};
use crate::store::tools::{Planned, Tools};

pub fn run(options: &Options, names: &[String]) -> Result<()> {
    let config = Config::load(&options.overrides)?;
    let printer = Printer::new(options.verbosity);
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
    // The named profiles and those stacked on them (their locks were
    // resolved under the named ones' pins), one lock per platform their
    // functions run on, bases first.
    let named = |name: &String| {
        names.is_empty()
            || names.contains(name)
            || config::bases_of(&config.layers, name)
                .iter()
                .any(|base| names.iter().any(|named| named == base))
    };
    let chosen: Vec<(String, std::path::PathBuf, Platform)> = profiles
        .into_iter()
        .filter(|(name, _)| named(name))
        .flat_map(|(name, requirements)| {
            config
                .layer_platforms(&name)
                .into_iter()
                .map(|platform| (name.clone(), requirements.clone(), platform))
                .collect::<Vec<_>>()
        })
        .collect();
    let key = |name: &str| format!("layers.{name}.requirements");
    if options.installer == InstallerChoice::Pip {
        return Err(UsageError::new(
            "lock resolves with uv (pip cannot resolve for another platform); pip installs the locks",
        )
        .into());
    }
    if options.dry_run {
        for (name, requirements, platform) in &chosen {
            let lock = lockfile::path(requirements, platform.runtime, platform.arch);
            printer.out(&format!(
                "lock {name}: would resolve {} into {}",
                requirements.display(),
                lock.display()
            ));
        }
        return Ok(());
    }
    if options.check {
        // Every stale or missing lock, in one answer.
        let mut stale = Vec::new();
        let mut to_lock: Vec<&str> = Vec::new();
        for (name, requirements, platform) in &chosen {
            let lock = lockfile::path(requirements, platform.runtime, platform.arch);
            let inputs = lockfile::inputs(
                &config.root,
                requirements,
                &key(name),
                &lockfile::base_locks(&config, name, *platform),
            )?;
            let state = lockfile::state(&config.root, &lock, &inputs);
            let problem = match &state {
                State::Current => {
                    printer.info(&format!("lock: {name}: {} is current", lock.display()));
                    continue;
                }
                State::Missing => format!("no {}", lock.display()),
                other => lockfile::problem(&lock, other).unwrap_or_default(),
            };
            stale.push(format!("{name}: {problem}"));
            if !to_lock.contains(&name.as_str()) {
                to_lock.push(name);
            }
        }
        if stale.is_empty() {
            return Ok(());
        }
        return Err(UsageError::new(format!(
            "{} (run cargo xtask lock {})",
            stale.join("; "),
            to_lock.join(" ")
        ))
        .into());
    }
    // Nothing else writes into the repository (a build reads the locks)
    // while they are resolved and written.
    let _lock = crate::store::run_lock::acquire(&config.cache_dir(), &printer)?;
    let mut upgrade: Vec<String> = Vec::new();
    if options.upgrade {
        upgrade.push("--upgrade".to_string());
    }
    for package in &options.upgrade_packages {
        upgrade.extend(["--upgrade-package".to_string(), package.clone()]);
    }
    let sh = Shell::new()?;
    sh.change_dir(&config.root);
    let cache_dir = config.cache_dir();
    let tools = Tools::load(&cache_dir, true);
    let mut notes = Vec::new();
    // Only uv resolves for another platform; pip installs the locks it writes.
    let uv = match Installer::discover(&sh, &tools, &cache_dir, InstallerChoice::Uv, &mut notes)? {
        Planned::Ready(uv) => uv,
        Planned::Pending(what) => anyhow::bail!("lock needs uv: {what}"),
    };
    tools.save()?;
    for note in notes {
        printer.info(&note);
    }
    let mut failed = 0;
    for (name, requirements, platform) in &chosen {
        let written = lockfile::write(
            &sh,
            &uv,
            &config.root,
            &cache_dir,
            requirements,
            &key(name),
            platform.runtime,
            platform.arch,
            &upgrade,
            &lockfile::base_locks(&config, name, *platform),
        );
        match written {
            Ok((lock, pinned)) => printer.info(&format!(
                "lock: {name}: {pinned} distribution(s) for {} {} → {}",
                platform.runtime.name,
                platform.arch.name(),
                lock.display()
            )),
            Err(err) if crate::error::is_usage(&err) => return Err(err),
            Err(err) => {
                // uv's reason may quote an index URL with its credentials.
                printer.error(&crate::redact::urls(&format!("{err:#}")));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Failed { usage: false }.into());
    }
    Ok(())
}
