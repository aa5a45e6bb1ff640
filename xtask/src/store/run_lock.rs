//! One run at a time in a repository: a lock file under `target/lambda`.
//! A second run waits, and says so.

use std::fs::{self, File, TryLockError};
use std::path::Path;

use anyhow::{Context, Result};

use crate::ground::progress::Printer;

/// Held for the whole run; released when dropped (or when the process dies).
pub struct RepoLock(#[allow(dead_code)] File);

pub fn acquire(cache_dir: &Path, printer: &Printer) -> Result<RepoLock> {
    fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    let path = cache_dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            printer.warn(&format!(
                "waiting for another xtask run in this repository to finish ({})",
                path.display()
            ));
            file.lock()
                .with_context(|| format!("locking {}", path.display()))?;
        }
        Err(TryLockError::Error(err)) => {
            return Err(err).with_context(|| format!("locking {}", path.display()));
        }
    }
    Ok(RepoLock(file))
}
