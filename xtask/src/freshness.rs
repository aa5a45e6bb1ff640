//! Whether `dist/manifest.json` still describes the configuration and the
//! sources: checking stale artifacts would prove nothing.

use anyhow::{Context, Result};

use crate::config::{Config, LayerSource};
use crate::digest::bytes_sha256;
use crate::manifest::Manifest;
use crate::{package, UsageError};

/// The manifest, refused when it is missing or no longer matches the
/// configuration and the sources: checking stale artifacts proves nothing.
pub fn load_fresh_manifest(config: &Config) -> Result<Manifest> {
    let stale = |what: String, command: &str| -> anyhow::Error {
        UsageError::new(format!(
            "dist/manifest.json is stale: {what}: run cargo xtask {command}"
        ))
        .into()
    };
    let manifest = Manifest::read(&config.manifest_path())?.ok_or_else(|| {
        UsageError::new("dist/manifest.json is missing: run cargo xtask build (or build-layers and package)")
    })?;
    if manifest.runtime != config.runtime.name || manifest.architecture != config.arch.name() {
        return Err(stale(
            format!(
                "built for {} {}, configured for {} {}",
                manifest.runtime,
                manifest.architecture,
                config.runtime.name,
                config.arch.name()
            ),
            "build",
        ));
    }
    for layer in config.layers.values() {
        let entry = manifest.layers.get(&layer.name);
        match &layer.source {
            LayerSource::Requirements(path) => {
                let command = "build-layers";
                let entry =
                    entry.ok_or_else(|| stale(format!("layer `{}` is not built", layer.name), command))?;
                let bytes = std::fs::read(config.root.join(path))
                    .with_context(|| format!("reading {}", path.display()))?;
                if entry.input_sha256.as_deref() != Some(bytes_sha256(&bytes).as_str()) {
                    return Err(stale(
                        format!("{} changed since it was built", path.display()),
                        command,
                    ));
                }
            }
            LayerSource::Source(_) => {
                let entry = entry
                    .ok_or_else(|| stale(format!("layer `{}` is not packaged", layer.name), "package"))?;
                let (_, _, input) = package::source_layer_inputs(config, layer)?;
                if entry.input_sha256.as_deref() != Some(input.as_str()) {
                    return Err(stale(
                        format!("the sources of layer `{}` changed", layer.name),
                        "package",
                    ));
                }
            }
            LayerSource::External { .. } => {
                if entry.is_none() {
                    return Err(stale(
                        format!("external layer `{}` is not recorded", layer.name),
                        "package",
                    ));
                }
            }
        }
        if let Some(zip) = entry.and_then(|entry| entry.zip.as_ref().zip(entry.zipped_bytes)) {
            let on_disk = std::fs::metadata(config.root.join(zip.0))
                .map(|metadata| metadata.len())
                .ok();
            if on_disk != Some(zip.1) {
                return Err(stale(format!("{} is missing or was changed", zip.0), "build"));
            }
        }
    }
    for function in config.functions.values() {
        let entry = manifest
            .functions
            .get(&function.name)
            .ok_or_else(|| stale(format!("function `{}` is not packaged", function.name), "package"))?;
        let inputs = package::function_inputs(config, &manifest, function)?;
        if entry.input_sha256 != inputs.input_sha256 {
            return Err(stale(
                format!("the sources of function `{}` changed", function.name),
                "package",
            ));
        }
        let on_disk = std::fs::metadata(config.root.join(&entry.zip.zip))
            .map(|metadata| metadata.len())
            .ok();
        if on_disk != Some(entry.zip.zipped_bytes) {
            return Err(stale(
                format!("{} is missing or was changed", entry.zip.zip),
                "package",
            ));
        }
    }
    Ok(manifest)
}
