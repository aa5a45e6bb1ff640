//! The step of a dependency layer: install its profile with the chosen
//! builder, clean and inventory what the installer wrote, refuse binaries
//! the runtime cannot load, compile bytecode when asked, and zip `python/`.

use std::fs;
use std::path::Path;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::builder::{install, Builder, Finish};
use super::finish::finish_layer;
use crate::archive::{self, Written};
use crate::config::Config;
use crate::elf;
use crate::installer::Source;
use crate::layer_content::{self, Inventory};
use crate::progress::Progress;

/// The output file of a layer entry.
pub const LAYER_ZIP: &str = "layer.zip";

/// The constraints a stacked profile is installed under, in the install folder.
const PROVIDED_CONSTRAINTS: &str = "provided-by-bases.txt";

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

impl From<Written> for WrittenData {
    fn from(written: Written) -> WrittenData {
        WrittenData {
            files: written.files,
            unzipped_bytes: written.unzipped_bytes,
        }
    }
}

/// Builds the layer `name` from `source` (an absolute path) into `work`.
/// `provided` are the distributions of the profiles it is stacked on: an
/// unlocked install is held to their versions, and none of them ships;
/// `bases` are their ZIPs, for the proof that the finished layer imports.
#[allow(clippy::too_many_arguments)]
pub fn build_layer(
    sh: &Shell,
    config: &Config,
    builder: &Builder,
    finish: Finish,
    name: &str,
    source: &Source,
    provided: &[(String, String)],
    bases: &[std::path::PathBuf],
    work: &Path,
    progress: &dyn Progress,
) -> Result<ZipData> {
    let install_dir = work.join("install");
    let site = install_dir.join("python");
    fs::create_dir_all(&site)?;
    progress.phase(name, "installing");
    let source = match source {
        Source::Requirements { file, .. } if !provided.is_empty() => {
            let constraints = install_dir.join(PROVIDED_CONSTRAINTS);
            let pins: String = provided
                .iter()
                .map(|(name, version)| format!("{name}=={version}\n"))
                .collect();
            fs::write(&constraints, pins)?;
            Source::Requirements {
                file: file.clone(),
                constraints: Some(constraints),
            }
        }
        _ => source.clone(),
    };
    install(sh, config, builder, &source, &install_dir)?;
    if let Source::Requirements {
        constraints: Some(file),
        ..
    } = &source
    {
        fs::remove_file(file)?;
    }

    progress.phase(name, "cleaning");
    let mut leave_out = config.exclude.clone();
    leave_out.extend(
        provided
            .iter()
            .map(|(name, _)| crate::facts::normalize_dist_name(name)),
    );
    let mut inventory = layer_content::prepare(&site, &leave_out)?;
    let problems = elf::incompatible_binaries(&site, config.runtime, config.arch)?;
    if !problems.is_empty() {
        let fix = match builder {
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
    let mut finish_data = None;
    if finish.transforms() {
        progress.phase(name, "finishing and proving");
        let finished = finish_layer(sh, config, builder, finish, name, &install_dir, bases)?;
        inventory.packages = layer_content::inventory(&site)?;
        finish_data = Some(FinishData {
            bytecode: finish.bytecode.name().to_string(),
            slim: finish.slim,
            saved: finished.saved,
            proven: finished.proven,
            unimportable: finished.unimportable,
        });
    }

    progress.phase(name, "zipping");
    let written = archive::write_zip(&work.join(LAYER_ZIP), archive::tree_entries(&site, "python/")?)?;
    fs::remove_dir_all(&install_dir)?;
    Ok(ZipData {
        written: written.into(),
        inventory: Some(inventory),
        builder: Some(builder.name().to_string()),
        installer: Some(builder.installer_id()),
        finish: finish_data,
    })
}
