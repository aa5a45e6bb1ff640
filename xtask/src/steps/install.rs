//! The step of a dependency layer: install its profile with the chosen
//! builder, clean and inventory what the installer wrote, refuse binaries
//! the runtime cannot load, compile bytecode when asked, and zip `python/`.

use std::fs;
use std::path::Path;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::builder::{compile_bytecode, install, Builder};
use crate::archive::{self, Written};
use crate::config::{Bytecode, Config};
use crate::elf;
use crate::installer::Source;
use crate::layer_content::{self, Inventory};
use crate::progress::Progress;

/// The output file of a layer entry.
pub const LAYER_ZIP: &str = "layer.zip";

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
pub fn build_layer(
    sh: &Shell,
    config: &Config,
    builder: &Builder,
    name: &str,
    source: &Source,
    work: &Path,
    progress: &dyn Progress,
) -> Result<ZipData> {
    let install_dir = work.join("install");
    let site = install_dir.join("python");
    fs::create_dir_all(&site)?;
    progress.phase(name, "installing");
    install(sh, config, builder, source, &install_dir)?;

    progress.phase(name, "cleaning");
    let inventory = layer_content::prepare(&site, &config.exclude)?;
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
    if config.bytecode != Bytecode::None {
        progress.phase(name, "compiling bytecode");
        compile_bytecode(sh, config, builder, &install_dir)?;
    }

    progress.phase(name, "zipping");
    let written = archive::write_zip(&work.join(LAYER_ZIP), archive::tree_entries(&site, "python/")?)?;
    fs::remove_dir_all(&install_dir)?;
    Ok(ZipData {
        written: written.into(),
        inventory: Some(inventory),
        builder: Some(builder.name().to_string()),
        installer: Some(builder.installer_id()),
    })
}
