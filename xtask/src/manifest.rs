//! `dist/manifest.json`: what was built, read by check-limits, smoke and
//! Terraform. Each command updates its own part; the file is rewritten
//! atomically and only when its content changes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cache::write_atomic;
use crate::config::{Config, LayerSource};
use crate::layer_content::Package;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub runtime: String,
    pub architecture: String,
    #[serde(default)]
    pub layers: BTreeMap<String, LayerEntry>,
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Requirements,
    Source,
    External,
}

/// Sizes and hashes of one written ZIP (flattened into the entries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipFacts {
    pub zip: String,
    pub sha256: String,
    pub base64sha256: String,
    pub zipped_bytes: u64,
    pub unzipped_bytes: u64,
    pub files: u64,
}

/// One layer. Flat, as design.md shows it: a built layer has the ZIP keys,
/// an external one only `arn` and its declared `unzipped_bytes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEntry {
    pub kind: LayerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipped_bytes: Option<u64>,
    pub unzipped_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Hash of the inputs (requirements file or source tree): how check-limits
    /// tells that the manifest is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

impl LayerEntry {
    /// A layer this tool wrote as a ZIP.
    pub fn built(kind: LayerKind, zip: ZipFacts, input_sha256: String) -> LayerEntry {
        LayerEntry {
            kind,
            zip: Some(zip.zip),
            sha256: Some(zip.sha256),
            base64sha256: Some(zip.base64sha256),
            zipped_bytes: Some(zip.zipped_bytes),
            unzipped_bytes: zip.unzipped_bytes,
            files: Some(zip.files),
            packages: Vec::new(),
            excluded: None,
            builder: None,
            installer: None,
            cache_key: None,
            input_sha256: Some(input_sha256),
            arn: None,
        }
    }

    pub fn external(arn: &str, unzipped_bytes: u64) -> LayerEntry {
        LayerEntry {
            kind: LayerKind::External,
            zip: None,
            sha256: None,
            base64sha256: None,
            zipped_bytes: None,
            unzipped_bytes,
            files: None,
            packages: Vec::new(),
            excluded: None,
            builder: None,
            installer: None,
            cache_key: None,
            input_sha256: None,
            arn: Some(arn.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionEntry {
    #[serde(flatten)]
    pub zip: ZipFacts,
    pub handler: String,
    /// The layers attached at deploy time, in Lambda's merge order.
    pub layers: Vec<String>,
    /// Layers whose content was merged into the ZIP (`bundle = true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundled: Vec<String>,
    /// `direct` or `s3`: whether the ZIP is small enough to upload directly.
    pub upload: String,
    pub input_sha256: String,
}

impl Manifest {
    /// The manifest on disk if it matches the configured runtime and
    /// architecture; otherwise an empty one for them.
    pub fn load_for(config: &Config) -> Result<Manifest> {
        let fresh = Manifest {
            runtime: config.runtime.name.to_string(),
            architecture: config.arch.name().to_string(),
            ..Manifest::default()
        };
        match Manifest::read(&config.manifest_path())? {
            Some(existing)
                if existing.runtime == fresh.runtime && existing.architecture == fresh.architecture =>
            {
                Ok(existing)
            }
            _ => Ok(fresh),
        }
    }

    /// `None` when there is no manifest yet.
    pub fn read(path: &Path) -> Result<Option<Manifest>> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        let manifest = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a manifest this tool wrote; delete it and rebuild",
                path.display()
            )
        })?;
        Ok(Some(manifest))
    }

    /// Writes the manifest, unless the file already says exactly this.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        if fs::read_to_string(path).is_ok_and(|existing| existing == text) {
            return Ok(());
        }
        write_atomic(path, text.as_bytes())
    }

    /// Drops layers and functions the configuration no longer has, so that
    /// Terraform stops deploying them.
    pub fn retain_configured(&mut self, config: &Config) {
        self.layers.retain(|name, _| config.layers.contains_key(name));
        self.functions
            .retain(|name, _| config.functions.contains_key(name));
    }

    /// Top-level module name → the configured layers that provide it: dependency
    /// layers from their inventory, source layers by their folder's name.
    pub fn providers(&self, config: &Config) -> BTreeMap<String, Vec<String>> {
        let mut providers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (layer, entry) in &self.layers {
            for name in entry.packages.iter().flat_map(|package| &package.top_level) {
                providers.entry(name.clone()).or_default().push(layer.clone());
            }
        }
        for layer in config.layers.values() {
            if let LayerSource::Source(dir) = &layer.source {
                if let Some(name) = dir.file_name().and_then(|name| name.to_str()) {
                    providers
                        .entry(name.to_string())
                        .or_default()
                        .push(layer.name.clone());
                }
            }
        }
        for layers in providers.values_mut() {
            layers.sort();
            layers.dedup();
        }
        providers
    }

    /// Records the external layers (ARN and declared size) as configured.
    pub fn sync_external(&mut self, config: &Config) {
        for layer in config.layers.values() {
            if let LayerSource::External { arn, unzipped_bytes } = &layer.source {
                self.layers
                    .insert(layer.name.clone(), LayerEntry::external(arn, *unzipped_bytes));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_json() {
        let zip = ZipFacts {
            zip: "dist/layers/core.zip".into(),
            sha256: "ab".into(),
            base64sha256: "qw==".into(),
            zipped_bytes: 10,
            unzipped_bytes: 20,
            files: 3,
        };
        let mut manifest = Manifest {
            runtime: "python3.11".into(),
            architecture: "x86_64".into(),
            ..Manifest::default()
        };
        manifest.layers.insert(
            "core".into(),
            LayerEntry::built(LayerKind::Requirements, zip.clone(), "cd".into()),
        );
        manifest.layers.insert(
            "ext".into(),
            LayerEntry::external("arn:aws:lambda:x:1:layer:y:1", 99),
        );
        manifest.functions.insert(
            "f".into(),
            FunctionEntry {
                zip,
                handler: "h.lambda_handler".into(),
                layers: vec!["core".into(), "ext".into()],
                bundled: vec![],
                upload: "direct".into(),
                input_sha256: "ef".into(),
            },
        );
        let text = serde_json::to_string(&manifest).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["layers"]["core"]["unzipped_bytes"], 20);
        assert_eq!(
            value["layers"]["ext"],
            serde_json::json!({"kind": "external", "unzipped_bytes": 99, "arn": "arn:aws:lambda:x:1:layer:y:1"})
        );
        assert_eq!(value["functions"]["f"]["sha256"], "ab");
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, manifest);
    }
}
