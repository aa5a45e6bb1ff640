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
    let mut notes = Vec::new();
    if plan.image_layers.is_empty() {
        archive::extract_zip(&config.root.join(&plan.zip), &task)
            .with_context(|| format!("extracting the ZIP of `{}`", plan.name))?;
    }
    for blob in &plan.image_layers {
        unpack_image_layer(&config.root.join(blob), &task, &opt)
            .with_context(|| format!("unpacking the image layer {blob} of `{}`", plan.name))?;
    }
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

/// One of the image's own layers: `var/task/…` into `task`, `opt/…` into
/// `opt` (later layers overwrite earlier files, as in the image).
fn unpack_image_layer(blob: &Path, task: &Path, opt: &Path) -> Result<()> {
    crate::store::oci::unpack_layer(blob, |path: &str, bytes: Vec<u8>, executable: bool| {
        let (root, rest) = if let Some(rest) = path.strip_prefix("var/task/") {
            (task, rest)
        } else if let Some(rest) = path.strip_prefix("opt/") {
            (opt, rest)
        } else {
            anyhow::bail!("`{path}` is neither under var/task nor under opt");
        };
        if rest
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            anyhow::bail!("`{path}` is not a plain path");
        }
        let dest = root.join(rest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&dest, bytes).with_context(|| format!("writing {}", dest.display()))?;
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
        Ok(())
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
