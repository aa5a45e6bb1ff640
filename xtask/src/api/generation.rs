//! One build turned into what `serve` answers with: the gateway for the
//! API the configuration declares (only the routes of the served
//! functions) and a pool of environments per function. A reload keeps the
//! pool of every function whose build did not change, so only the
//! functions a save affected start afresh.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::gateway::Gateway;
use super::pool::{Pool, Pools, Runs, Spec};
use super::server::Generation;
use crate::config::api::Api;
use crate::config::{Config, Platform};
use crate::ground::error::EnvironmentError;
use crate::lambda::function::plan;
use crate::lambda::invoke::{self, Here};

/// What `serve` was asked: the functions it serves (all when empty) and
/// the variables each gets besides its own (the fakes', `--env`'s).
pub struct Served {
    pub functions: Vec<String>,
    pub env: BTreeMap<String, Vec<(String, String)>>,
}

impl Served {
    /// The served functions of `config`, the authorizer with them when a
    /// served route needs it.
    pub fn names(&self, config: &Config) -> Vec<String> {
        let mut names: Vec<String> = if self.functions.is_empty() {
            config.functions.keys().cloned().collect()
        } else {
            self.functions.clone()
        };
        let api = self.api(config);
        if let Some(authorizer) = &api.authorizer {
            if api.routes.iter().any(|route| route.authorize) && !names.contains(&authorizer.function) {
                names.push(authorizer.function.clone());
            }
        }
        names.retain(|name| config.functions.contains_key(name));
        names
    }

    /// The API with only the routes of the served functions.
    pub fn api(&self, config: &Config) -> Api {
        let mut api = config.api.clone();
        if !self.functions.is_empty() {
            api.routes
                .retain(|route| self.functions.contains(&route.function));
        }
        api
    }
}

/// The generation `number` for the build `here` describes, with `previous`'s pools where
/// they run exactly the same thing. Returns the names of the functions
/// whose environments are new.
pub fn generation(
    here: &Here,
    served: &Served,
    previous: Option<&Generation>,
    number: usize,
) -> Result<(Generation, Vec<String>)> {
    let (config, manifest) = (here.config, here.built.manifest);
    let mut runs: BTreeMap<Platform, Arc<Runs>> = BTreeMap::new();
    let mut pools = Pools::default();
    let mut fresh = Vec::new();
    let dir = config.cache_dir().join("serve");
    for name in served.names(config) {
        let function = &config.functions[&name];
        let plan = plan(manifest, &name)?;
        let entry = &manifest.functions[&name];
        let mut content = vec![entry.zip.sha256.clone()];
        content.extend(entry.layers.iter().map(|layer| {
            manifest.layers[layer]
                .sha256
                .clone()
                .unwrap_or_else(|| format!("external {layer}"))
        }));
        let spec = Spec {
            content,
            plan,
            env: served.env.get(&name).cloned().unwrap_or_default(),
            reserved: function.deploy.reserved_concurrency,
        };
        let kept = previous
            .and_then(|previous| previous.pools.0.get(&name))
            .filter(|pool| pool.spec.same_as(&spec));
        let pool = match kept {
            Some(pool) => Arc::clone(pool),
            None => {
                let platform = config.platform_of(function);
                let runs = match runs.get(&platform) {
                    Some(runs) => Arc::clone(runs),
                    None => {
                        let made = Arc::new(runs_for(here, platform, &name)?);
                        runs.insert(platform, Arc::clone(&made));
                        made
                    }
                };
                fresh.push(name.clone());
                Arc::new(Pool::new(spec, runs, &dir)?)
            }
        };
        pools.0.insert(name, pool);
    }
    let timeouts = config
        .functions
        .iter()
        .map(|(name, function)| (name.clone(), Duration::from_secs(function.deploy.timeout_s)))
        .collect();
    let gateway = Gateway::new(&served.api(config), &timeouts);
    Ok((
        Generation {
            number,
            gateway,
            pools,
        },
        fresh,
    ))
}

/// What runs the functions of `platform`, as `invoke` finds it, kept.
fn runs_for(here: &Here, platform: Platform, function: &str) -> Result<Runs> {
    let ready = invoke::ready(here, platform)?.map_err(|reason| {
        EnvironmentError::new(format!(
            "serve: `{function}` ({}) cannot run here: {reason}",
            platform.label()
        ))
    })?;
    Ok(Runs {
        config: ready.config,
        runner: ready.runner.clone(),
        site: ready.site,
        providers: here.built.providers.clone(),
    })
}
