//! The executor of function ZIPs (`Kind::Function`): every changed handler
//! parsed, and the code compiled, in one interpreter start; then each ZIP
//! made, over the layers it bundles.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::context::{Batch, Executor, Made};
use crate::graph::Node;
use crate::graph::Work;
use crate::ground::error::UsageError;
use crate::steps::install;
use crate::steps::package::{self, AppCode, Compiled, Sources};

pub(super) struct Functions {
    /// What is wrong with each function's handler (`None`: nothing).
    verdicts: BTreeMap<String, Option<String>>,
    compiled: Compiled,
}

impl Functions {
    pub(super) fn prepare(batch: &Batch, nodes: &[usize]) -> Result<Functions> {
        let parser = batch.parser("functions to package, but no interpreter to parse them")?;
        let handlers: Vec<_> = nodes
            .iter()
            .map(|&index| {
                let node = batch.node(index);
                let Work::Function { files, .. } = &node.work else {
                    unreachable!("function nodes carry their files")
                };
                (&batch.config.functions[&node.name], files.as_slice())
            })
            .collect();
        let code: Vec<AppCode> = nodes
            .iter()
            .filter_map(|&index| {
                let node = batch.node(index);
                match &node.work {
                    Work::Function {
                        files,
                        compiles: true,
                    } => Some(AppCode::function(&node.name, files)),
                    _ => None,
                }
            })
            .collect();
        let (verdicts, compiled) = package::check_handlers(parser, &handlers, &code)?;
        Ok(Functions { verdicts, compiled })
    }
}

impl Executor for Functions {
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        if let Some(Some(problem)) = self.verdicts.get(&node.name) {
            return Err(UsageError::new(problem.clone()).into());
        }
        let Work::Function { files, .. } = &node.work else {
            bail!("not a function");
        };
        // The layers it bundles, each with its ZIP.
        let bundled: Vec<(String, PathBuf)> = node
            .deps
            .iter()
            .filter_map(|&dep| {
                Some((
                    batch.node(dep).name.clone(),
                    install::layer_zip(batch.entry(dep)?),
                ))
            })
            .collect();
        let code = Sources {
            files,
            keyed: &node.inputs,
            compiled: self
                .compiled
                .get(&node.name)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        };
        let function = &batch.config.functions[&node.name];
        let entry = batch.store.put(node.kind.store_dir(), key, |dir| {
            let data = package::function(batch.config, function, &code, bundled, dir)?;
            Ok(serde_json::to_value(data)?)
        })?;
        Ok(Made::Built(entry))
    }
}
