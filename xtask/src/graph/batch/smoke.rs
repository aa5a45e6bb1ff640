//! The executor of smoke tests (`Kind::Smoke`): each platform's runner and
//! runtime site once, then each function's init run as Lambda runs it, a
//! few at a time.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use rayon::ThreadPool;

use super::context::{Batch, Executor, Made};
use crate::config::manifest::BuiltView;
use crate::config::{Config, Platform};
use crate::graph::Node;
use crate::graph::Session;
use crate::lambda::runtime_env::{site_for, Runner, RuntimeSite};
use crate::steps::smoke::{smoke_function, Setup};
use crate::store::tools::Planned;

pub(super) struct Smokes<'b> {
    built: &'b BuiltView<'b>,
    /// Each platform's runner, runtime site and configuration.
    platforms: BTreeMap<Platform, (&'b Runner, RuntimeSite, Config)>,
    pool: ThreadPool,
}

impl<'b> Smokes<'b> {
    pub(super) fn prepare(session: &Session, batch: &'b Batch, nodes: &[usize]) -> Result<Smokes<'b>> {
        let built = batch.built("smoke tests")?;
        let mut platforms = BTreeMap::new();
        for &index in nodes {
            let function = &batch.config.functions[&batch.node(index).name];
            let platform = batch.config.platform_of(function);
            if platforms.contains_key(&platform) {
                continue;
            }
            let Some(Planned::Ready(runner)) = batch.graph.runners.get(&platform) else {
                bail!(
                    "smoke tests to run on {}, but no runner was chosen",
                    platform.label()
                );
            };
            let at = batch.config.at(platform);
            let site = site_for(
                &session.sh,
                &at,
                &session.tools,
                session.settings.installer,
                batch.printer.progress(),
                runner,
            )?;
            platforms.insert(platform, (runner, site, at));
        }
        let jobs = session.settings.jobs.unwrap_or_else(|| batch.jobs.min(4));
        Ok(Smokes {
            built,
            platforms,
            pool: rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?,
        })
    }
}

impl Executor for Smokes<'_> {
    /// Each import is a fresh process; only a few at once, so that they
    /// do not slow each other down and the timings stay honest.
    fn pool(&self) -> Option<&ThreadPool> {
        Some(&self.pool)
    }

    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        let platform = batch.config.platform_of(&batch.config.functions[&node.name]);
        let (runner, site, config) = &self.platforms[&platform];
        let setup = Setup {
            config,
            runner,
            site,
            built: self.built,
            progress: batch.printer.progress(),
        };
        let outcome = smoke_function(&setup, &node.name)?;
        let entry = batch.store.put(node.kind.store_dir(), key, |_| {
            Ok(serde_json::to_value(&outcome)?)
        })?;
        Ok(Made::Built(entry))
    }
}
