//! One built function as the local Lambda runs it: what it imports, read
//! from the manifest, and what would provide a module it could not import.
//! The smoke test and `invoke` both tell a failed init so.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::runtime_env::{FunctionPlan, ImageLayerStep, LayerStep, RuntimeSite};
use super::sandbox::Failure;
use crate::config::manifest::{LayerKind, Manifest, IMAGE_BASE_LAYER, IMAGE_FUNCTION_LAYER};
use crate::facts;
use crate::store::oci;

/// What one function imports, from the manifest: its ZIP and the ZIPs of its
/// attached layers, in order. The graph built them all first.
pub fn plan(manifest: &Manifest, name: &str) -> Result<FunctionPlan> {
    let entry = manifest
        .functions
        .get(name)
        .with_context(|| format!("function `{name}` is not built"))?;
    let mut layers = Vec::new();
    for layer in &entry.layers {
        let built = manifest
            .layers
            .get(layer)
            .with_context(|| format!("layer `{layer}` of function `{name}` is not built"))?;
        let zip = match built.kind {
            LayerKind::External => None,
            _ => Some(
                built
                    .zip
                    .clone()
                    .with_context(|| format!("layer `{layer}` has no ZIP"))?,
            ),
        };
        layers.push(LayerStep {
            name: layer.clone(),
            zip,
            sha256: built.sha256.clone(),
        });
    }
    // An image function runs from what its image holds.
    let image_layers = entry
        .image
        .iter()
        .flat_map(|image| {
            image
                .layers
                .iter()
                .filter(|layer| layer.name != IMAGE_BASE_LAYER)
                .map(|layer| ImageLayerStep {
                    blob: format!(
                        "{}/{}/{}",
                        image.layout,
                        oci::LAYOUT_BLOBS,
                        oci::blob_name(&layer.digest)
                    ),
                    digest: layer.digest.clone(),
                    task: layer.name == IMAGE_FUNCTION_LAYER,
                })
        })
        .collect();
    Ok(FunctionPlan {
        image_layers,
        image: entry
            .image
            .as_ref()
            .map(|image| (image.layout.clone(), image.digest.clone())),
        name: name.to_string(),
        handler: entry.handler.clone(),
        zip: entry.zip.zip.clone(),
        layers,
        memory_mb: entry.memory_mb,
        environment: entry
            .environment
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    })
}

/// `No module named 'jwt'` → `jwt`.
pub fn missing_module(failure: &Failure) -> Option<String> {
    let (_, rest) = failure.message.split_once("No module named '")?;
    rest.split_once('\'').map(|(name, _)| name.to_string())
}

/// What would provide a module the function could not import, and whether
/// that means it cannot be told here (an external layer may have it).
pub fn missing_module_hint(
    plan: &FunctionPlan,
    missing: &str,
    providers: &BTreeMap<String, Vec<String>>,
    site: &RuntimeSite,
) -> (String, Option<String>) {
    let mut skipped = None;
    let top = missing.split('.').next().unwrap_or(missing);
    let handler_module = plan.handler.rsplit_once('.').map_or("", |(module, _)| module);
    let quoted = |names: &[&String]| {
        names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let attached = |layer: &&String| plan.layers.iter().any(|step| &step.name == *layer);
    let (attached, unattached): (Vec<&String>, Vec<&String>) =
        providers.get(top).into_iter().flatten().partition(attached);
    let external: Vec<&String> = plan
        .layers
        .iter()
        .filter(|step| step.zip.is_none())
        .map(|step| &step.name)
        .collect();
    let hint = if handler_module == missing || handler_module.starts_with(&format!("{missing}.")) {
        format!(
            "the function's ZIP ({}) has no handler module `{handler_module}`",
            plan.zip
        )
    } else if facts::RUNTIME_PROVIDED.contains(&top) {
        format!(
            "`{top}` is provided by the Lambda runtime, which could not be emulated here ({})",
            site.about
        )
    } else if !attached.is_empty() {
        format!(
            "attached layer {} lists `{top}`, yet it did not import",
            quoted(&attached)
        )
    } else if !unattached.is_empty() {
        let (noun, verb) = if unattached.len() == 1 {
            ("layer", "provides")
        } else {
            ("layers", "provide")
        };
        format!(
            "{noun} {} {verb} it but {} not attached to `{}`",
            quoted(&unattached),
            if unattached.len() == 1 { "is" } else { "are" },
            plan.name
        )
    } else if !external.is_empty() {
        skipped = Some(format!(
            "`{missing}` may come from external layer {}, which is not available here",
            quoted(&external)
        ));
        "no built layer provides it".to_string()
    } else {
        "provided by no attached layer (add it to a dependency profile this function attaches)".to_string()
    };
    (hint, skipped)
}
