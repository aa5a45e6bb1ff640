//! A function laid out as Lambda lays it out: its ZIP extracted at a
//! `/var/task`, its layers in order at an `/opt`, read-only and with the
//! permissions Lambda's unprivileged sandbox user has on each file.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::runtime_env::FunctionPlan;
use crate::atomic::TempDir;
use crate::config::Config;
use crate::contain::reaper::{self, Owned, Watched};
use crate::store::archive;

/// A function laid out as Lambda lays it out, removed when dropped.
pub struct Layout {
    work: TempDir,
    /// Removed on SIGINT/SIGTERM too.
    _watched: Watched,
    pub task: PathBuf,
    pub opt: PathBuf,
    /// What was left out (external layers without a local copy).
    pub notes: Vec<String>,
}

/// Extracts the function's ZIP and its layers (later layers overwrite
/// earlier files), then gives every file and folder the permissions the
/// sandbox user has on Lambda, where the files belong to root: the "other"
/// bits, without write. A file a ZIP stored as 0600 is unreadable there,
/// and here too. `local_layers` stands in for external layers by name.
pub fn lay_out(
    config: &Config,
    plan: &FunctionPlan,
    local_layers: &BTreeMap<String, PathBuf>,
) -> Result<Layout> {
    let sandboxes = config.cache_dir().join("sandbox");
    fs::create_dir_all(&sandboxes).with_context(|| format!("creating {}", sandboxes.display()))?;
    let work = TempDir::beside(&sandboxes.join(&plan.name))?;
    let watched = reaper::watch(Owned::Folder(work.path().to_path_buf()));
    let (task, opt) = (work.path().join("task"), work.path().join("opt"));
    fs::create_dir_all(&task)?;
    fs::create_dir_all(&opt)?;
    archive::extract_zip(&config.root.join(&plan.zip), &task)
        .with_context(|| format!("extracting the ZIP of `{}`", plan.name))?;
    let mut notes = Vec::new();
    for layer in &plan.layers {
        let zip = match (&layer.zip, local_layers.get(&layer.name)) {
            (_, Some(local)) => local.clone(),
            (Some(zip), None) => config.root.join(zip),
            (None, None) => {
                notes.push(format!(
                    "layer `{}` is external: not available here (give a local copy with --layer {}=ZIP)",
                    layer.name, layer.name
                ));
                continue;
            }
        };
        archive::extract_zip(&zip, &opt).with_context(|| format!("extracting layer `{}`", layer.name))?;
    }
    for dir in [&task, &opt] {
        as_sandbox_user_sees(dir)?;
    }
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755))?;
    Ok(Layout {
        work,
        _watched: watched,
        task,
        opt,
        notes,
    })
}

/// Every mode becomes what "other" may do, read and execute only.
fn as_sandbox_user_sees(path: &Path) -> Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    if metadata.is_dir() {
        for entry in fs::read_dir(path)? {
            as_sandbox_user_sees(&entry?.path())?;
        }
    }
    let other = metadata.mode() & 0o005;
    fs::set_permissions(path, fs::Permissions::from_mode(other * 0o111))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

impl Drop for Layout {
    fn drop(&mut self) {
        // Read-only folders cannot be emptied by a user who is not root.
        crate::atomic::make_writable(self.work.path());
    }
}
