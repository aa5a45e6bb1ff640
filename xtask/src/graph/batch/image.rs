//! The executors of container images: bases (`Kind::Base`), each pulled
//! by digest into its store entry, and images (`Kind::Image`), each made
//! on its base from the ZIPs of its function and layers.

use anyhow::{bail, Context, Result};

use super::context::{Batch, Executor, Made};
use crate::config::manifest::IMAGE_FUNCTION_LAYER;
use crate::config::Package;
use crate::facts;
use crate::graph::{Kind, Node, Work};
use crate::ground::error::UsageError;
use crate::steps::image::{self, BaseData, ImageInputs, Part};
use crate::steps::install;
use crate::steps::package::FUNCTION_ZIP;

pub(super) struct Bases;

impl Executor for Bases {
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        let Work::Base {
            reference,
            arch,
            unpinned,
        } = &node.work
        else {
            bail!("not a base image");
        };
        if let Some(why) = unpinned {
            return Err(UsageError::new(why.clone()).into());
        }
        let entry = batch.store.put(node.kind.store_dir(), key, |dir| {
            let data = image::pull_base(reference, *arch, dir)?;
            Ok(serde_json::to_value(data)?)
        })?;
        Ok(Made::Built(entry))
    }
}

pub(super) struct Images;

impl Executor for Images {
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        let function = &batch.config.functions[&node.name];
        let Package::Image(_) = &function.package else {
            bail!("`{}` is not an image function", node.name);
        };
        let platform = batch.config.platform_of(function);
        let mut base = None;
        let mut parts = Vec::new();
        let mut function_part = None;
        for &dep in &node.deps {
            let dep_node = batch.node(dep);
            let entry = batch
                .entry(dep)
                .with_context(|| format!("{} is not built", dep_node.id()))?;
            match dep_node.kind {
                Kind::Base => {
                    let data: BaseData = serde_json::from_value(entry.data.clone())
                        .context("reading the base's store entry")?;
                    base = Some((data, entry.dir.clone()));
                }
                Kind::Function => {
                    let file = entry
                        .file(FUNCTION_ZIP)
                        .context("the function's entry has no ZIP")?;
                    function_part = Some(Part {
                        name: IMAGE_FUNCTION_LAYER.to_string(),
                        zip: entry.dir.join(FUNCTION_ZIP),
                        zip_sha256: file.sha256.clone(),
                        root: facts::TASK_ROOT,
                    });
                }
                _ => {
                    let file = entry
                        .file(install::LAYER_ZIP)
                        .context("the layer's entry has no ZIP")?;
                    parts.push(Part {
                        name: dep_node.name.clone(),
                        zip: install::layer_zip(entry),
                        zip_sha256: file.sha256.clone(),
                        root: facts::LAYER_MOUNT,
                    });
                }
            }
        }
        let (base, base_dir) = base.context("an image without its base")?;
        parts.extend(function_part);
        let inputs = ImageInputs {
            function: &node.name,
            handler: &function.handler,
            runtime: platform.runtime,
            arch: platform.arch,
            base: &base,
            base_dir: &base_dir,
        };
        let entry = batch.store.put(node.kind.store_dir(), key, |dir| {
            let data = image::image(batch.store, &inputs, &parts, dir)?;
            Ok(serde_json::to_value(data)?)
        })?;
        Ok(Made::Built(entry))
    }
}
