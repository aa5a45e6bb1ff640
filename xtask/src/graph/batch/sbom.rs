//! The executor of SBOMs (`Kind::Sbom`): each function's bill of materials
//! from what its dependencies' entries hold (the function's ZIP, each
//! layer's ZIP and inventory) and the locks its key hashed.

use std::fs;

use anyhow::{bail, Context, Result};

use super::context::{Batch, Executor, Made};
use crate::config::LayerSource;
use crate::digest::bytes_sha256;
use crate::graph::{Kind, Node, Work};
use crate::steps::install::ZipData;
use crate::steps::sbom::{self, Shipped, ShippedKind, Subject};

pub(super) struct Sboms;

impl Executor for Sboms {
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        let Work::Sbom { locks } = &node.work else {
            bail!("not an SBOM");
        };
        let config = batch.config;
        let function = &config.functions[&node.name];
        let platform = config.platform_of(function);
        let built = |kind: Kind, name: &str| {
            let index = batch.graph.find(kind, name)?;
            batch.entry(index)
        };
        let code = built(Kind::Function, &function.name)
            .and_then(|entry| entry.file(Kind::Function.product_file()))
            .context("its function's ZIP is not built")?;
        let mut datas = Vec::new();
        for name in &function.layers {
            let variant = config.attached(function, name);
            let kind = match &config.layers[name].source {
                LayerSource::External { .. } => None,
                LayerSource::Requirements(_) => Some(Kind::Profile),
                LayerSource::Source(_) => Some(Kind::SourceLayer),
            };
            let Some(kind) = kind else {
                datas.push((name.clone(), variant, None));
                continue;
            };
            let entry = built(kind, &variant).with_context(|| format!("layer {variant} is not built"))?;
            let data: ZipData = serde_json::from_value(entry.data.clone())
                .with_context(|| format!("reading the cache entry {}", entry.dir.display()))?;
            let file = entry
                .file(kind.product_file())
                .with_context(|| format!("the cache entry {} has no ZIP", entry.dir.display()))?;
            datas.push((name.clone(), variant, Some((kind, data, file.sha256.clone()))));
        }
        let mut layers = Vec::new();
        for (name, variant, built) in &datas {
            let kind = match built {
                None => match &config.layers[name].source {
                    LayerSource::External { arn, .. } => ShippedKind::External { arn },
                    _ => bail!("layer {variant} is not built"),
                },
                Some((Kind::Profile, data, sha256)) => ShippedKind::Dependencies {
                    packages: data
                        .inventory
                        .as_ref()
                        .map(|inventory| inventory.packages.as_slice())
                        .unwrap_or_default(),
                    lock: match locks.iter().find(|(layer, _)| layer == variant) {
                        Some((_, lock)) => Some(read_keyed(batch, node, lock)?),
                        None => None,
                    },
                    sha256,
                },
                Some((_, _, sha256)) => ShippedKind::Source { sha256 },
            };
            layers.push(Shipped {
                name: variant.clone(),
                kind,
            });
        }
        let subject = Subject {
            function: &function.name,
            runtime: platform.runtime,
            arch: platform.arch,
            code_sha256: &code.sha256,
            layers,
        };
        let entry = batch.store.put(node.kind.store_dir(), key, |dir| {
            Ok(serde_json::to_value(sbom::write(&subject, dir)?)?)
        })?;
        Ok(Made::Built(entry))
    }
}

/// A lock's text, when it still holds the bytes the key hashed: hashes of
/// another lock never ship under this key.
fn read_keyed(batch: &Batch, node: &Node, lock: &std::path::Path) -> Result<String> {
    let path = batch.config.root.join(lock);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let keyed = node.inputs.value(&format!("file {}", lock.display()));
    if keyed != Some(format!("-{}", bytes_sha256(text.as_bytes())).as_str()) {
        bail!("{} changed during the build; run again", lock.display());
    }
    Ok(text)
}
