//! The executor of source layers (`Kind::SourceLayer`): the batch's
//! layers compiled to bytecode in one interpreter start, then each zipped.

use anyhow::{bail, Result};

use super::context::{Batch, Executor, Made};
use crate::graph::Node;
use crate::graph::Work;
use crate::steps::package::{self, AppCode, Compiled, Sources};

pub(super) struct SourceLayers {
    compiled: Compiled,
}

impl SourceLayers {
    /// Their bytecode, when the parser compiles application code.
    pub(super) fn prepare(batch: &Batch, nodes: &[usize]) -> Result<SourceLayers> {
        if !batch.graph.compiles_app_code {
            return Ok(SourceLayers {
                compiled: Compiled::new(),
            });
        }
        let parser = batch.parser("source layers to compile, but no interpreter")?;
        let code: Vec<AppCode> = nodes
            .iter()
            .filter_map(|&index| match &batch.node(index).work {
                Work::SourceLayer { files, prefix } => {
                    Some(AppCode::source_layer(&batch.node(index).name, files, prefix))
                }
                _ => None,
            })
            .collect();
        Ok(SourceLayers {
            compiled: package::check_handlers(parser, &[], &code)?.1,
        })
    }
}

impl Executor for SourceLayers {
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        let Work::SourceLayer { files, prefix } = &node.work else {
            bail!("not a source layer");
        };
        let code = Sources {
            files,
            keyed: &node.inputs,
            compiled: self
                .compiled
                .get(&node.name)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        };
        let layer = &batch.config.layers[&node.name];
        let entry = batch.store.put(node.kind.store_dir(), key, |dir| {
            let data = package::source_layer(layer, prefix, &code, dir)?;
            Ok(serde_json::to_value(data)?)
        })?;
        Ok(Made::Built(entry))
    }
}
