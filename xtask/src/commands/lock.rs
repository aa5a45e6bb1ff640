//! `cargo xtask lock [PROFILE...] [--upgrade | --upgrade-package NAME] [--check]`:
//! resolves each dependency profile once, for the runtime and architecture,
//! into a lock beside its requirements that `build-layers` installs as it is.

use anyhow::Result;

use crate::cli::args::LockArgs;
use crate::config::Config;
use crate::ground::error::{Failed, UsageError};
use crate::ground::progress::Printer;
use crate::python::locking::{self, Resolver, Target};
use crate::steps::image::{self, BaseLock};

pub fn run(args: LockArgs) -> Result<()> {
    let config = Config::load(&args.common.overrides)?;
    let printer = Printer::new(args.common.verbosity);
    let targets = locking::targets(&config, &args.profiles)?;
    locking::refuse_pip(args.common.installer)?;
    if args.common.dry_run {
        for target in &targets {
            printer.out(&format!(
                "lock {}: would resolve {} into {}",
                target.name,
                target.requirements.display(),
                target.lock().display()
            ));
        }
        return Ok(());
    }
    let bases = args.profiles.is_empty();
    if args.check {
        if bases {
            let unpinned = BaseLock::read(&config.root)?.unpinned(&config);
            if !unpinned.is_empty() {
                return Err(UsageError::new(format!(
                    "{} not pinned in {}: {} (run cargo xtask lock)",
                    if unpinned.len() == 1 {
                        "an image base is"
                    } else {
                        "image bases are"
                    },
                    image::LOCK_FILE,
                    unpinned.join(", ")
                ))
                .into());
            }
        }
        return check(&config, &printer, &targets);
    }
    // Nothing else writes into the repository (a build reads the locks)
    // while they are resolved and written.
    let _lock = crate::store::run_lock::acquire(&config.cache_dir(), &printer)?;
    if bases {
        pin_bases(&config, &printer, args.upgrade)?;
    }
    let (resolver, notes) = Resolver::new(&config, args.upgrade, &args.upgrade_packages)?;
    for note in notes {
        printer.info(&note);
    }
    let mut failed = 0;
    for target in &targets {
        match resolver.write(&config, target) {
            Ok((lock, pinned)) => printer.info(&format!(
                "lock: {}: {pinned} distribution(s) for {} {} → {}",
                target.name,
                target.platform.runtime.name,
                target.platform.arch.name(),
                lock.display()
            )),
            Err(err) if crate::ground::error::is_usage(&err) => return Err(err),
            Err(err) => {
                // uv's reason may quote an index URL with its credentials.
                printer.error(&crate::ground::redact::urls(&format!("{err:#}")));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Failed { usage: false }.into());
    }
    Ok(())
}

/// Every image base given by tag pinned in `images.lock` (written only
/// when it changes, and only when some function is an image).
fn pin_bases(config: &Config, printer: &Printer, upgrade: bool) -> Result<()> {
    let before = BaseLock::read(&config.root)?;
    let mut lock = before.clone();
    for line in lock.pin_all(config, upgrade)? {
        printer.info(&format!("lock: image base {line}"));
    }
    let exists = config.root.join(image::LOCK_FILE).exists();
    if lock.bases != before.bases || (!exists && !lock.bases.is_empty()) {
        lock.write(&config.root)?;
        printer.info(&format!("lock: wrote {}", image::LOCK_FILE));
    }
    Ok(())
}

/// Writes nothing: every stale or missing lock, in one answer.
fn check(config: &Config, printer: &Printer, targets: &[Target]) -> Result<()> {
    let mut stale = Vec::new();
    let mut to_lock: Vec<&str> = Vec::new();
    for target in targets {
        let name = target.name.as_str();
        let Some(problem) = locking::problem(config, target)? else {
            printer.info(&format!("lock: {name}: {} is current", target.lock().display()));
            continue;
        };
        stale.push(format!("{name}: {problem}"));
        if !to_lock.contains(&name) {
            to_lock.push(name);
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    Err(UsageError::new(format!(
        "{} (run cargo xtask lock {})",
        stale.join("; "),
        to_lock.join(" ")
    ))
    .into())
}
