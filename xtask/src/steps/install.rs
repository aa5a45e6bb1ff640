//! The step of a dependency layer: install its profile with the chosen
//! builder, clean and inventory what the installer wrote, refuse binaries
//! the runtime cannot load, compile bytecode when asked, and zip `python/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::builder::{install, Builder, LayerJob};
use super::finish::{finish_layer, prove_layer};
use crate::config::Config;
use crate::ground::progress::Progress;
use crate::python::elf;
use crate::python::installer::{Source, RESULT_VARIABLES};
use crate::python::layer_content::{self, Inventory};
use crate::python::requirements;
use crate::store::archive::{self, Written};
use crate::store::inputs::Inputs;
use crate::store::Entry;

/// The output file of a layer entry.
pub const LAYER_ZIP: &str = "layer.zip";

/// The constraints a stacked profile is installed under, in the install folder.
const PROVIDED_CONSTRAINTS: &str = "provided-by-bases.txt";

/// The private copy of a lock the installer reads, in the install folder:
/// the bytes the key hashed, whatever happens to the lock meanwhile.
const LOCK_COPY: &str = "locked-requirements.txt";

/// What the profile at `requirements` installs from: its lock when it has
/// one (with the local wheel folders its requirements name, and nothing
/// else of them), else the requirements themselves. Paths are relative to
/// the repository root.
pub fn source(config: &Config, name: &str, requirements: &Path, lock: Option<&Path>) -> Result<Source> {
    let Some(lock) = lock else {
        return Ok(Source::requirements(config.root.join(requirements)));
    };
    let key = format!("layers.{name}.requirements");
    let local = requirements::local_sources(&config.root, requirements, &key)?;
    Ok(Source::Lock {
        file: config.root.join(lock),
        // A folder that is not there has nothing to offer (and would make
        // some installers fail).
        find_links: local
            .folders
            .iter()
            .map(|folder| config.root.join(folder))
            .filter(|folder| folder.is_dir())
            .collect(),
        no_index: local.no_index,
    })
}

/// The ZIP of a built layer's store entry.
pub fn layer_zip(entry: &Entry) -> PathBuf {
    entry.dir.join(LAYER_ZIP)
}

/// What the profiles a stacked profile stands on provide: their
/// distributions, `(name, version)`, from their built entries.
pub fn provided_by(bases: &[&Entry]) -> Result<Vec<(String, String)>> {
    let mut provided = Vec::new();
    for entry in bases {
        let data: ZipData = serde_json::from_value(entry.data.clone())?;
        for package in data
            .inventory
            .map(|inventory| inventory.packages)
            .unwrap_or_default()
        {
            provided.push((package.name, package.version));
        }
    }
    Ok(provided)
}

/// Fails the step when a file the key hashed (`file <path>` in `keyed`,
/// paths relative to `root`) no longer holds those bytes: what is built
/// from it would ship under the key of other bytes.
fn verify_unchanged(root: &Path, keyed: &Inputs) -> Result<()> {
    for (label, value) in &keyed.0 {
        let Some(relative) = label.strip_prefix("file ") else {
            continue;
        };
        // An installer variable's file is labelled with the variable's name
        // (`PIP_CONSTRAINT constraints.txt`).
        let relative = match relative.split_once(' ') {
            Some((name, file)) if RESULT_VARIABLES.iter().any(|(variable, _)| *variable == name) => file,
            _ => relative,
        };
        let path = root.join(relative);
        let now = crate::ground::digest::file_sha256(&path)
            .map(|digest| digest.hex)
            .ok();
        if now.as_deref() != Some(value.get(1..).unwrap_or_default()) {
            bail!("{relative} changed during the build; run again");
        }
    }
    Ok(())
}

/// The lock's bytes, checked against the key, copied into `dir` for the
/// installer: it reads exactly what was hashed.
fn snapshot_lock(root: &Path, lock: &Path, keyed: &Inputs, dir: &Path) -> Result<PathBuf> {
    let relative = lock.strip_prefix(root).unwrap_or(lock);
    let bytes = fs::read(lock).with_context(|| format!("reading {}", relative.display()))?;
    let hashed = keyed.value(&format!("file {}", relative.display()));
    if hashed.and_then(|value| value.get(1..)) != Some(crate::ground::digest::bytes_sha256(&bytes).as_str()) {
        bail!("{} changed during the build; run again", relative.display());
    }
    // The plan looked above the pins only; what the installer reads is read whole.
    if let Some(line) = crate::python::lockfile::index_line(&String::from_utf8_lossy(&bytes)) {
        let problem = crate::python::lockfile::State::NamesIndex(line.trim().to_string());
        bail!(
            "{} (run cargo xtask lock)",
            crate::python::lockfile::problem(relative, &problem).unwrap_or_default()
        );
    }
    let copy = dir.join(LOCK_COPY);
    fs::write(&copy, bytes).with_context(|| format!("writing {}", copy.display()))?;
    Ok(copy)
}

/// What the entry of a ZIP product (a layer or a function) records besides
/// the ZIP: its size unzipped and, for a dependency layer, what it holds
/// and how it was built.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZipData {
    pub written: WrittenData,
    #[serde(default)]
    pub inventory: Option<Inventory>,
    #[serde(default)]
    pub builder: Option<String>,
    #[serde(default)]
    pub installer: Option<String>,
    /// What was done to a dependency layer after the install (`bytecode`,
    /// `slim`), and the bytes each slimming rule removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<FinishData>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishData {
    pub bytecode: String,
    pub slim: bool,
    #[serde(default)]
    pub saved: std::collections::BTreeMap<String, u64>,
    /// Modules imported with the runtime's Python before the layer shipped.
    #[serde(default)]
    pub proven: usize,
    /// Modules that did not import, as installed either (see `Finished`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unimportable: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct WrittenData {
    pub files: u64,
    pub unzipped_bytes: u64,
}

impl ZipData {
    /// The data of a ZIP of application code (a source layer or a
    /// function): what it holds, and nothing installed or finished.
    pub fn of_app_code(written: WrittenData) -> ZipData {
        ZipData {
            written,
            inventory: None,
            builder: None,
            installer: None,
            finish: None,
        }
    }
}

impl From<Written> for WrittenData {
    fn from(written: Written) -> WrittenData {
        WrittenData {
            files: written.files,
            unzipped_bytes: written.unzipped_bytes,
        }
    }
}

/// Where a stacked layer's install made ahead of its node waits for it,
/// under the run's cache folder.
pub const AHEAD_DIR: &str = "ahead";

/// The folder of `job`'s install made ahead: named by the layer and by
/// what the install reads (its own inputs, the builder and the installer).
fn ahead_dir(job: &LayerJob) -> std::path::PathBuf {
    let mut key = crate::ground::digest::KeyHasher::default();
    for (label, value) in &job.keyed.0 {
        key.part(label, value);
    }
    let builder = job.build.builder;
    key.part("builder", builder.name())
        .part("installer", builder.installer_id());
    job.build
        .config
        .cache_dir()
        .join(AHEAD_DIR)
        .join(format!("{}-{}", job.name, &key.hex()[..16]))
}

/// Installs a locked profile before its node runs, while the profiles it
/// is stacked on are built: its install needs nothing of theirs (what they
/// provide is left out when it is cleaned). Its node takes the install if
/// the same inputs still hold then; otherwise it goes unused and the next
/// run removes it.
pub fn install_ahead(job: &LayerJob) -> Result<()> {
    if !matches!(job.source, Source::Lock { .. }) {
        return Ok(());
    }
    let dest = ahead_dir(job);
    if dest.exists() {
        return Ok(());
    }
    fs::create_dir_all(dest.parent().context("the ahead folder")?)?;
    let temp = crate::ground::atomic::TempDir::beside(&dest)?;
    let install = temp.path().join("install");
    fs::create_dir_all(install.join("python"))?;
    install_profile(job, &install)?;
    temp.persist_unless_there(&dest)
}

/// The install of `job` made ahead, moved to `install_dir`, when there is
/// one and the files its key hashed still hold those bytes.
fn take_ahead(job: &LayerJob, install_dir: &Path) -> Result<bool> {
    let ahead = ahead_dir(job);
    if !ahead.join("install").is_dir() {
        return Ok(false);
    }
    let taken = verify_unchanged(&job.build.config.root, job.keyed).is_ok()
        && fs::rename(ahead.join("install"), install_dir).is_ok();
    let _ = fs::remove_dir_all(&ahead);
    Ok(taken)
}

/// Builds the layer of `job` into `work`.
pub fn build_layer(job: &LayerJob, work: &Path, progress: &dyn Progress) -> Result<ZipData> {
    let install_dir = work.join("install");
    let site = install_dir.join("python");
    if !take_ahead(job, &install_dir)? {
        fs::create_dir_all(&site)?;
        progress.phase(job.name, "installing");
        install_profile(job, &install_dir)?;
    }

    progress.phase(job.name, "cleaning");
    let mut inventory = clean(job, &site)?;
    let mut finished = None;
    if job.finish.transforms() {
        progress.phase(job.name, "finishing");
        let done = finish_layer(job, &install_dir, progress)?;
        if done.reused.0 > 0 {
            progress.note(&format!(
                "layer `{}`: {} of {} distribution(s) taken finished from the cache",
                job.name, done.reused.0, done.reused.1
            ));
        }
        inventory.packages = layer_content::inventory(&site)?;
        finished = Some(done);
    }

    let zip = work.join(LAYER_ZIP);
    let entries = archive::tree_entries(&site, "python/")?;
    let mut finish_data = None;
    let written = match finished {
        None => {
            progress.phase(job.name, "zipping");
            archive::write_zip(&zip, entries)?
        }
        // The proof reads the finished layer while it is zipped.
        Some(mut finished) => {
            progress.phase(job.name, "zipping and proving");
            let (written, proved) = std::thread::scope(|scope| {
                let zipping = scope.spawn(|| archive::write_zip(&zip, entries));
                let proved = prove_layer(job, &install_dir, &mut finished);
                (zipping.join(), proved)
            });
            proved?;
            let written = written.map_err(|_| anyhow::anyhow!("the ZIP writer panicked"))??;
            for note in &finished.notes {
                progress.note(note);
            }
            finish_data = Some(FinishData {
                bytecode: job.finish.bytecode.name().to_string(),
                slim: job.finish.slim,
                saved: finished.saved,
                proven: finished.proven,
                unimportable: finished.unimportable,
            });
            written
        }
    };
    fs::remove_dir_all(&install_dir)?;
    let builder = job.build.builder;
    Ok(ZipData {
        written: written.into(),
        inventory: Some(inventory),
        builder: Some(builder.name().to_string()),
        installer: Some(builder.installer_id()),
        finish: finish_data,
    })
}

/// Installs the profile into `install_dir/python`: from the lock's private
/// copy, or from its requirements held to what its bases provide; a file
/// of its key changed meanwhile fails it.
fn install_profile(job: &LayerJob, install_dir: &Path) -> Result<()> {
    let root = &job.build.config.root;
    verify_unchanged(root, job.keyed)?;
    let source = match &job.source {
        Source::Lock {
            file,
            find_links,
            no_index,
        } => Source::Lock {
            file: snapshot_lock(root, file, job.keyed, install_dir)?,
            find_links: find_links.clone(),
            no_index: *no_index,
        },
        Source::Requirements { file, .. } if !job.provided.is_empty() => {
            let constraints = install_dir.join(PROVIDED_CONSTRAINTS);
            let pins: String = job
                .provided
                .iter()
                .map(|(name, version)| format!("{name}=={version}\n"))
                .collect();
            fs::write(&constraints, pins)?;
            Source::Requirements {
                file: file.clone(),
                constraints: Some(constraints),
            }
        }
        source => source.clone(),
    };
    install(&job.build, &source, install_dir)?;
    verify_unchanged(root, job.keyed)?;
    match &source {
        Source::Requirements {
            constraints: Some(file),
            ..
        }
        | Source::Lock { file, .. } => fs::remove_file(file)?,
        Source::Requirements { .. } => {}
    }
    Ok(())
}

/// Cleans what the installer wrote into `site` (the configured exclusions
/// and what the bases provide left out) and refuses binaries the runtime
/// cannot load: what it holds.
fn clean(job: &LayerJob, site: &Path) -> Result<Inventory> {
    let config = job.build.config;
    let mut leave_out = config.exclude.clone();
    leave_out.extend(
        job.provided
            .iter()
            .map(|(name, _)| crate::facts::normalize_dist_name(name)),
    );
    let inventory = layer_content::prepare(site, &leave_out)?;
    let problems = elf::incompatible_binaries(site, config.runtime, config.arch)?;
    if !problems.is_empty() {
        let fix = match job.build.builder {
            Builder::Host { .. } => {
                "pin a version with a compatible wheel, or build with --builder container".to_string()
            }
            Builder::Container { image, .. } => format!(
                "the image {image} is not the runtime's OS: use {} or --builder host",
                config.runtime.default_image(config.arch)
            ),
        };
        bail!(
            "binaries the {} {} runtime cannot load:\n  {}\n({fix})",
            config.runtime.name,
            config.arch.name(),
            problems.join("\n  ")
        );
    }
    Ok(inventory)
}
