//! The executor of SBOMs (`Kind::Sbom`): each function's bill of materials
//! from what its dependencies' entries hold (the function's ZIP, each
//! layer's ZIP and inventory) and the locks its key hashed; and each
//! dependency layer's own.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::context::{Batch, Executor, Made};
use crate::config::{Function, LayerSource, Platform};
use crate::graph::{Kind, Node, Work};
use crate::ground::digest::bytes_sha256;
use crate::steps::install::ZipData;
use crate::steps::sbom::{self, Of, Shipped, ShippedKind, Subject};
use crate::store::Entry;

pub(super) struct Sboms;

/// A built layer as its entry holds it: its kind, its data and its ZIP's sha256.
type BuiltLayer = (Kind, ZipData, String);

impl Executor for Sboms {
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        let Work::Sbom { layer, locks } = &node.work else {
            bail!("not an SBOM");
        };
        let config = batch.config;
        let built = |kind: Kind, name: &str| -> Option<&Entry> { batch.entry(batch.graph.find(kind, name)?) };
        let (name, of, platform, sha256, layers) = match layer {
            Some(layer) => {
                let entry =
                    built(Kind::Profile, layer).with_context(|| format!("layer {layer} is not built"))?;
                let Work::Profile { platform, .. } =
                    &batch.graph.nodes[batch.graph.find(Kind::Profile, layer).expect("built")].work
                else {
                    bail!("layer {layer} is not a dependency layer");
                };
                let data = built_layer(Kind::Profile, entry)?;
                let sha256 = data.2.clone();
                (
                    layer.as_str(),
                    Of::Layer,
                    *platform,
                    sha256,
                    vec![(layer.clone(), None, Some(data))],
                )
            }
            None => {
                let function = &config.functions[&node.name];
                let code = built(Kind::Function, &function.name)
                    .and_then(|entry| entry.file(Kind::Function.product_file()))
                    .context("its function's ZIP is not built")?;
                let layers = function_layers(batch, function, &built)?;
                (
                    function.name.as_str(),
                    Of::Function,
                    config.platform_of(function),
                    code.sha256.clone(),
                    layers,
                )
            }
        };
        let mut shipped = Vec::new();
        for (variant, arn, built) in &layers {
            let kind = match (built, arn) {
                (None, Some(arn)) => ShippedKind::External { arn },
                (None, None) => bail!("layer {variant} is not built"),
                (Some((Kind::Profile, data, sha256)), _) => ShippedKind::Dependencies {
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
                (Some((_, _, sha256)), _) => ShippedKind::Source { sha256 },
            };
            shipped.push(Shipped {
                name: variant.clone(),
                kind,
            });
        }
        let Platform { runtime, arch } = platform;
        let subject = Subject {
            name,
            of,
            runtime,
            arch,
            sha256: &sha256,
            layers: shipped,
        };
        let entry = batch.store.put(node.kind.store_dir(), key, |dir| {
            Ok(serde_json::to_value(sbom::write(&subject, dir)?)?)
        })?;
        Ok(Made::Built(entry))
    }
}

/// A function's layers in order, by their manifest names: an external
/// one with its ARN, a built one as its entry holds it.
#[allow(clippy::type_complexity)]
fn function_layers<'e>(
    batch: &Batch,
    function: &Function,
    built: &dyn Fn(Kind, &str) -> Option<&'e Entry>,
) -> Result<Vec<(String, Option<String>, Option<BuiltLayer>)>> {
    let config = batch.config;
    let mut layers = Vec::new();
    for name in &function.layers {
        let variant = config.attached(function, name);
        let kind = match &config.layers[name].source {
            LayerSource::External { arn, .. } => {
                layers.push((variant, Some(arn.clone()), None));
                continue;
            }
            LayerSource::Requirements(_) => Kind::Profile,
            LayerSource::Source(_) => Kind::SourceLayer,
        };
        let entry = built(kind, &variant).with_context(|| format!("layer {variant} is not built"))?;
        layers.push((variant, None, Some(built_layer(kind, entry)?)));
    }
    Ok(layers)
}

fn built_layer(kind: Kind, entry: &Entry) -> Result<BuiltLayer> {
    let data: ZipData = serde_json::from_value(entry.data.clone())
        .with_context(|| format!("reading the cache entry {}", entry.dir.display()))?;
    let file = entry
        .file(kind.product_file())
        .with_context(|| format!("the cache entry {} has no ZIP", entry.dir.display()))?;
    Ok((kind, data, file.sha256.clone()))
}

/// A lock's text, when it still holds the bytes the key hashed: hashes of
/// another lock never ship under this key.
fn read_keyed(batch: &Batch, node: &Node, lock: &Path) -> Result<String> {
    let path: PathBuf = batch.config.root.join(lock);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let keyed = node.inputs.value(&format!("file {}", lock.display()));
    if keyed != Some(format!("-{}", bytes_sha256(text.as_bytes())).as_str()) {
        bail!("{} changed during the build; run again", lock.display());
    }
    Ok(text)
}
