//! A dependency layer fetched from the remote cache, taken only for what its
//! own bytes show: the ZIP is read within Lambda's size limit, its entry's
//! data (files, sizes, distributions) recomputed from what it unpacks to and
//! compared with what the remote claims, and the unpacked layer proven by
//! import as a freshly built one is, before it may ship.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use zip::ZipArchive;

use super::builder::LayerJob;
use super::finish::{modules_of, Proof};
use super::install::{FinishData, WrittenData, ZipData, LAYER_ZIP};
use crate::facts::{normalize_dist_name, MAX_UNZIPPED_BYTES};
use crate::python::layer_content::{self, Inventory};

/// The files a fetched layer's entry holds, each with the most it may be.
pub const FILES: [(&str, u64); 1] = [(LAYER_ZIP, MAX_UNZIPPED_BYTES)];

/// The data of the layer in `files/layer.zip`, recomputed from its bytes
/// in `work`; `claimed` is the remote's data, which must be the same as
/// what this machine would have recorded building `job`. `Err` says why
/// the entry is not taken.
pub fn verify_layer(
    job: &LayerJob,
    files: &Path,
    claimed: &serde_json::Value,
    work: &Path,
) -> Result<serde_json::Value, String> {
    let claimed_data: ZipData =
        serde_json::from_value(claimed.clone()).map_err(|err| format!("its data is not a layer's: {err}"))?;
    let install = work.join("install");
    let written = unpack(&files.join(LAYER_ZIP), &install).map_err(|err| format!("{err:#}"))?;
    let site = install.join("python");
    let packages = layer_content::inventory(&site).map_err(|err| format!("{err:#}"))?;
    let claimed_inventory = claimed_data.inventory.clone().unwrap_or_default();
    // What was left out is not in the ZIP to count: only the names are
    // taken, and only of distributions the ZIP indeed does not hold.
    let shipped: BTreeSet<String> = packages
        .iter()
        .map(|package| normalize_dist_name(&package.name))
        .collect();
    for pin in &claimed_inventory.excluded {
        let name = pin.split_once("==").map(|(name, _)| normalize_dist_name(name));
        if name.is_none_or(|name| name.is_empty() || shipped.contains(&name)) {
            return Err(format!("its data says `{pin}` was left out of layer.zip"));
        }
    }
    let modules = modules_of(&site).map_err(|err| format!("{err:#}"))?;
    let finish = job.finish.transforms().then(|| {
        let claimed = claimed_data.finish.clone();
        FinishData {
            bytecode: job.finish.bytecode.name().to_string(),
            slim: job.finish.slim,
            // The bytes the rules removed are gone: no check reads them.
            saved: claimed.as_ref().map(|f| f.saved.clone()).unwrap_or_default(),
            proven: modules.len(),
            unimportable: claimed.map(|f| f.unimportable).unwrap_or_default(),
        }
    });
    let recomputed = ZipData {
        written,
        inventory: Some(Inventory {
            packages,
            excluded: claimed_inventory.excluded.clone(),
        }),
        builder: Some(job.build.builder.name().to_string()),
        installer: Some(job.build.builder.installer_id()),
        finish,
    };
    let data = serde_json::to_value(&recomputed).map_err(|err| err.to_string())?;
    if &data != claimed {
        return Err(mismatch(claimed, &data));
    }
    if let Some(finish) = &recomputed.finish {
        prove_fetched(job, &install, &modules, &finish.unimportable)?;
    }
    Ok(data)
}

/// Which part of the claimed data the ZIP contradicts, in a few words.
fn mismatch(claimed: &serde_json::Value, actual: &serde_json::Value) -> String {
    let claimed_written = &claimed["written"];
    let written = &actual["written"];
    if claimed_written != written {
        return format!(
            "its data says layer.zip unpacks to {} bytes in {} files, and it unpacks to {} in {}",
            claimed_written["unzipped_bytes"],
            claimed_written["files"],
            written["unzipped_bytes"],
            written["files"]
        );
    }
    let differs: Vec<String> = actual
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(field, value)| claimed.get(field.as_str()) != Some(value))
        .map(|(field, _)| format!("`{field}`"))
        .chain(
            claimed
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(field, _)| actual.get(field.as_str()).is_none())
                .map(|(field, _)| format!("`{field}`")),
        )
        .collect();
    format!("its data's {} do not match layer.zip", differs.join(", "))
}

/// Imports every module of the unpacked layer, on top of its bases, with
/// the proof of a fresh build: a module that does not import, and that the
/// build that made it did not record as not importing as installed either,
/// rejects it.
fn prove_fetched(
    job: &LayerJob,
    install: &Path,
    modules: &[String],
    tolerated: &[String],
) -> Result<(), String> {
    let proof = Proof::stage(&job.build, install, &job.bases).map_err(|err| format!("{err:#}"))?;
    // What containment this machine lacks is said by the layers it builds;
    // a fetched copy is proven under the same containment.
    let mut notes = Vec::new();
    let failed = proof
        .imports("python", modules, &mut notes)
        .map_err(|err| format!("proving it: {err:#}"))?;
    match failed.iter().find(|(module, _)| !tolerated.contains(module)) {
        Some((module, why)) => Err(format!("its module `{module}` does not import ({why})")),
        None => Ok(()),
    }
}

/// Unpacks a layer ZIP into `dest` within Lambda's limit: every entry under
/// `python/`, no name twice, at most `MAX_UNZIPPED_BYTES` in all (checked on
/// the sizes it declares before anything is written, and on the bytes it
/// inflates to while writing). What it holds, counted as the ZIP writer does.
fn unpack(zip: &Path, dest: &Path) -> Result<WrittenData> {
    let file = fs::File::open(zip).with_context(|| format!("opening {}", zip.display()))?;
    let mut archive = ZipArchive::new(BufReader::new(file)).context("layer.zip is not a ZIP")?;
    let mut declared: u64 = 0;
    let mut names = BTreeSet::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index)?;
        let name = entry.name()?.to_string();
        let inside = entry
            .enclosed_name()
            .is_some_and(|path| path.starts_with("python") && !path.is_absolute());
        if !inside {
            anyhow::bail!("layer.zip holds `{name}`, outside python/");
        }
        if !names.insert(name.trim_end_matches('/').to_string()) {
            anyhow::bail!("layer.zip holds `{name}` twice");
        }
        declared = declared.saturating_add(entry.size());
    }
    if declared > MAX_UNZIPPED_BYTES {
        anyhow::bail!(
            "layer.zip unpacks to {declared} bytes, more than the {MAX_UNZIPPED_BYTES} a layer may have"
        );
    }
    let mut written = WrittenData {
        files: 0,
        unzipped_bytes: 0,
    };
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let relative = entry
            .enclosed_name()
            .context("an entry checked above")?
            .to_path_buf();
        let target = dest.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let size = entry.size();
        let name = entry.name()?.to_string();
        let mut out = fs::File::create(&target).with_context(|| format!("writing {}", target.display()))?;
        let copied = io::copy(&mut (&mut entry).take(size.saturating_add(1)), &mut out)
            .with_context(|| format!("inflating layer.zip's `{name}`"))?;
        if copied != size {
            anyhow::bail!("layer.zip's `{name}` inflates to more or less than the {size} bytes it declares");
        }
        let mode = entry.unix_mode().map_or(0o644, |mode| mode & 0o755);
        fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o600))?;
        written.files += 1;
        written.unzipped_bytes += size;
    }
    Ok(written)
}
