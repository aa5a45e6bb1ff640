//! The executor of checks (`Kind::Check`): the sources analysed once for
//! the batch, then each function checked against Lambda's limits and its
//! budget with what is built.

use anyhow::Result;

use super::context::{Batch, Executor, Made};
use crate::graph::Node;
use crate::steps::limits::Limits;

pub(super) struct Checks<'b> {
    limits: Limits<'b>,
}

impl<'b> Checks<'b> {
    pub(super) fn prepare(batch: &'b Batch) -> Result<Checks<'b>> {
        let built = batch.built("checks")?;
        let parser = batch.parser("checks to run, but no interpreter to parse the sources")?;
        Ok(Checks {
            limits: Limits::new(batch.config, built, parser)?,
        })
    }
}

impl Executor for Checks<'_> {
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        let report = self.limits.check_function(&batch.config.functions[&node.name])?;
        let entry = batch
            .store
            .put(node.kind.store_dir(), key, |_| Ok(serde_json::to_value(&report)?))?;
        Ok(Made::Built(entry))
    }
}
