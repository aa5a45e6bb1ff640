//! One batch of a run: stale nodes whose dependencies are all up to date,
//! grouped by kind so that what several nodes share (the builder, one
//! parse of the changed handlers, the smoke runner) is had once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use xshell::Shell;

use super::{Graph, Kind, Session, Status, Work};
use crate::config::manifest::{BuiltView, Manifest};
use crate::config::{Config, Platform};
use crate::lambda::runtime_env::{site_for, Runner, RuntimeSite};
use crate::steps::builder::{BuildContext, Builder};
use crate::steps::fetched::{self, verify_layer};
use crate::steps::install::{self, build_layer, LayerJob};
use crate::steps::limits::Limits;
use crate::steps::package::{self, AppCode, Compiled, Sources};
use crate::steps::smoke::{smoke_function, Setup};
use crate::store::remote_cache::RemoteCache;
use crate::store::tools::Planned;
use crate::store::Entry;

/// A node's index and what running it gave: its key and entry, or why not.
pub type Built = (usize, Result<(String, Entry)>);

/// Runs stale nodes whose dependencies are all up to date. What several
/// nodes of a kind share (the builder, the parser's answers, the smoke
/// runner) is had once for the batch.
pub fn run_batch(
    session: &Session,
    graph: &Graph,
    runnable: &[usize],
    statuses: &[Option<Status>],
    manifest: Option<&Manifest>,
) -> Result<Vec<Built>> {
    let config = session.config;
    let store = &session.store;
    let progress = session.printer.progress();
    let key_of = |index: usize| -> String {
        statuses[index]
            .as_ref()
            .and_then(Status::key)
            .expect("a runnable node has a key")
            .to_string()
    };
    let by_kind = |kind: Kind| -> Vec<usize> {
        runnable
            .iter()
            .copied()
            .filter(|&index| graph.nodes[index].kind == kind)
            .collect()
    };
    let jobs = session
        .options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let mut results: Vec<Built> = Vec::new();
    let (remote, printer, force) = (session.remote.as_ref(), session.printer, session.options.force);
    // The dependency layers this batch took from the remote cache.
    let fetched = std::sync::Mutex::new(Vec::new());
    let timed = |index: usize, work: &dyn Fn() -> Result<Entry>| -> Built {
        let node = &graph.nodes[index];
        let started = Instant::now();
        // "building layer `core`", "checking function `auth`".
        let subject = if node.kind.is_product() {
            node.kind.noun()
        } else {
            "function"
        };
        let result = work().with_context(|| format!("{} {subject} `{}`", node.kind.verb(), node.name));
        let outcome = match &result {
            Ok(_) if fetched.lock().expect("not poisoned").contains(&index) => {
                format!("fetched from the remote cache in {:.1?}", started.elapsed())
            }
            Ok(_) => format!("built in {:.1?}", started.elapsed()),
            Err(_) => "failed".to_string(),
        };
        if node.kind.is_product() {
            progress.done(&node.id(), &outcome);
        }
        (index, result.map(|entry| (key_of(index), entry)))
    };

    // Dependency layers: the slow part, as many at once as --jobs allows.
    let profiles = by_kind(Kind::Profile);
    if !profiles.is_empty() {
        for note in &graph.notes {
            progress.note(note);
        }
        // Each platform's builder and configuration, once.
        let mut platforms: BTreeMap<Platform, (&Builder, Config, usize)> = BTreeMap::new();
        for &index in &profiles {
            let Work::Profile { platform, .. } = &graph.nodes[index].work else {
                bail!("not a dependency layer");
            };
            if let Some(entry) = platforms.get_mut(platform) {
                entry.2 += 1;
                continue;
            }
            let Some(Planned::Ready(builder)) = graph.builders.get(platform) else {
                bail!(
                    "dependency layers to build for {}, but no builder was chosen",
                    platform.label()
                );
            };
            platforms.insert(*platform, (builder, config.at(*platform), 1));
        }
        if let Some(which) = remote.filter(|_| !force).and_then(RemoteCache::announce) {
            progress.note(&format!("remote cache: {which}"));
        }
        for (platform, (builder, _, count)) in &platforms {
            progress.note(&format!(
                "building {count} dependency layer(s) for {} {} with the {} builder ({})",
                platform.runtime.name,
                platform.arch.name(),
                builder.name(),
                builder.installer_id()
            ));
        }
        // The run's one shell, a copy per parallel step (a shell is not Sync).
        let shells: Vec<Shell> = profiles.iter().map(|_| session.sh.clone()).collect();
        let built: Vec<Built> = pool.install(|| {
            profiles
                .par_iter()
                .zip(shells)
                .map(|(&index, sh)| {
                    timed(index, &|| {
                        let node = &graph.nodes[index];
                        let Work::Profile {
                            requirements,
                            lock,
                            platform,
                            finish: Some(finish),
                        } = &node.work
                        else {
                            bail!("not a dependency layer with a known builder");
                        };
                        let (builder, config, _) = &platforms[platform];
                        let source = install::source(config, &node.name, requirements, lock.as_deref())?;
                        let bases = node
                            .deps
                            .iter()
                            .map(|&dep| {
                                statuses[dep]
                                    .as_ref()
                                    .and_then(Status::entry)
                                    .context("a base profile is built first")
                            })
                            .collect::<Result<Vec<&Entry>>>()?;
                        let job = LayerJob {
                            build: BuildContext {
                                sh: &sh,
                                config,
                                builder,
                            },
                            finish: *finish,
                            name: &node.name,
                            source,
                            keyed: &node.inputs,
                            provided: install::provided_by(&bases)?,
                            bases: bases.iter().map(|entry| install::layer_zip(entry)).collect(),
                        };
                        let (kind, key) = (node.kind.store_dir(), key_of(index));
                        // What another machine built under the same key, unless --force:
                        // taken only for what its bytes show, and proven as a build is.
                        if let Some(remote) = remote.filter(|_| !force) {
                            let verify = |files: &Path, claimed: &serde_json::Value| {
                                verify_layer(&job, files, claimed, &files.with_file_name("verify"))
                            };
                            if let Some(entry) =
                                remote.fetch(store, kind, &key, &node.id(), printer, &fetched::FILES, &verify)
                            {
                                fetched.lock().expect("not poisoned").push(index);
                                return Ok(entry);
                            }
                        }
                        let entry = store.put(kind, &key, |dir| {
                            Ok(serde_json::to_value(build_layer(&job, dir, progress)?)?)
                        })?;
                        if let Some(remote) = remote {
                            remote.upload(kind, &key, &entry, printer);
                        }
                        Ok(entry)
                    })
                })
                .collect()
        });
        results.extend(built);
    }

    let source_layers = by_kind(Kind::SourceLayer);
    let compiled = if graph.compiles_app_code && !source_layers.is_empty() {
        let Planned::Ready(parser) = &graph.parser else {
            bail!("source layers to compile, but no interpreter");
        };
        let code: Vec<AppCode> = source_layers
            .iter()
            .filter_map(|&index| match &graph.nodes[index].work {
                Work::SourceLayer { files, prefix } => {
                    Some(AppCode::source_layer(&graph.nodes[index].name, files, prefix))
                }
                _ => None,
            })
            .collect();
        package::check_handlers(parser, &[], &code)?.1
    } else {
        Compiled::new()
    };
    results.extend(pool.install(|| {
        source_layers
            .par_iter()
            .map(|&index| {
                timed(index, &|| {
                    let node = &graph.nodes[index];
                    let Work::SourceLayer { files, prefix } = &node.work else {
                        bail!("not a source layer");
                    };
                    let code = Sources {
                        files,
                        keyed: &node.inputs,
                        compiled: compiled.get(&node.name).map(Vec::as_slice).unwrap_or_default(),
                    };
                    let layer = &config.layers[&node.name];
                    store.put(node.kind.store_dir(), &key_of(index), |dir| {
                        let data = package::source_layer(layer, prefix, &code, dir)?;
                        Ok(serde_json::to_value(data)?)
                    })
                })
            })
            .collect::<Vec<_>>()
    }));

    // Functions: every changed handler parsed in one interpreter start.
    let functions = by_kind(Kind::Function);
    if !functions.is_empty() {
        let Planned::Ready(parser) = &graph.parser else {
            bail!("functions to package, but no interpreter to parse them");
        };
        let handlers: Vec<_> = functions
            .iter()
            .map(|&index| {
                let node = &graph.nodes[index];
                let Work::Function { files, .. } = &node.work else {
                    unreachable!("function nodes carry their files")
                };
                (&config.functions[&node.name], files.as_slice())
            })
            .collect();
        let code: Vec<AppCode> = functions
            .iter()
            .filter_map(|&index| {
                let node = &graph.nodes[index];
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
        results.extend(pool.install(|| {
            functions
                .par_iter()
                .map(|&index| {
                    timed(index, &|| {
                        let node = &graph.nodes[index];
                        if let Some(Some(problem)) = verdicts.get(&node.name) {
                            return Err(crate::error::UsageError::new(problem.clone()).into());
                        }
                        let Work::Function { files, .. } = &node.work else {
                            bail!("not a function");
                        };
                        // The layers it bundles, each with its ZIP.
                        let bundled: Vec<(String, PathBuf)> = node
                            .deps
                            .iter()
                            .filter_map(|&dep| {
                                let entry = statuses[dep].as_ref()?.entry()?;
                                Some((graph.nodes[dep].name.clone(), install::layer_zip(entry)))
                            })
                            .collect();
                        let code = Sources {
                            files,
                            keyed: &node.inputs,
                            compiled: compiled.get(&node.name).map(Vec::as_slice).unwrap_or_default(),
                        };
                        let function = &config.functions[&node.name];
                        store.put(node.kind.store_dir(), &key_of(index), |dir| {
                            let data = package::function(config, function, &code, bundled, dir)?;
                            Ok(serde_json::to_value(data)?)
                        })
                    })
                })
                .collect::<Vec<_>>()
        }));
    }

    // Checks and smoke tests read what is built; which layer provides each
    // module is worked out once for all of them.
    let built = manifest.map(|manifest| BuiltView::new(manifest, config));
    let checks = by_kind(Kind::Check);
    if !checks.is_empty() {
        let built = built.as_ref().context("checks run after the products")?;
        let Planned::Ready(parser) = &graph.parser else {
            bail!("checks to run, but no interpreter to parse the sources");
        };
        let limits = Limits::new(config, built, parser)?;
        results.extend(pool.install(|| {
            checks
                .par_iter()
                .map(|&index| {
                    timed(index, &|| {
                        let node = &graph.nodes[index];
                        let function = &config.functions[&node.name];
                        let report = limits.check_function(function)?;
                        store.put(node.kind.store_dir(), &key_of(index), |_| {
                            Ok(serde_json::to_value(&report)?)
                        })
                    })
                })
                .collect::<Vec<_>>()
        }));
    }

    let smokes = by_kind(Kind::Smoke);
    if !smokes.is_empty() {
        let built = built.as_ref().context("smoke tests run after the products")?;
        // Each platform's runner, runtime site and configuration, once.
        let mut platforms: BTreeMap<Platform, (&Runner, RuntimeSite, Config)> = BTreeMap::new();
        for &index in &smokes {
            let function = &config.functions[&graph.nodes[index].name];
            let platform = config.platform_of(function);
            if platforms.contains_key(&platform) {
                continue;
            }
            let Some(Planned::Ready(runner)) = graph.runners.get(&platform) else {
                bail!(
                    "smoke tests to run on {}, but no runner was chosen",
                    platform.label()
                );
            };
            let at = config.at(platform);
            let site = site_for(
                &session.sh,
                &at,
                &session.tools,
                session.options.installer,
                progress,
                runner,
            )?;
            platforms.insert(platform, (runner, site, at));
        }
        // Each import is a fresh process; only a few at once, so that they
        // do not slow each other down and the timings stay honest.
        let smoke_jobs = session.options.jobs.unwrap_or_else(|| jobs.min(4));
        let smoke_pool = rayon::ThreadPoolBuilder::new().num_threads(smoke_jobs).build()?;
        let outcomes: BTreeMap<usize, Built> = smoke_pool.install(|| {
            smokes
                .par_iter()
                .map(|&index| {
                    let result = timed(index, &|| {
                        let node = &graph.nodes[index];
                        let platform = config.platform_of(&config.functions[&node.name]);
                        let (runner, site, at) = &platforms[&platform];
                        let setup = Setup {
                            config: at,
                            runner,
                            site,
                            built,
                            progress,
                        };
                        let outcome = smoke_function(&setup, &node.name)?;
                        store.put(node.kind.store_dir(), &key_of(index), |_| {
                            Ok(serde_json::to_value(&outcome)?)
                        })
                    });
                    (index, result)
                })
                .collect()
        });
        results.extend(outcomes.into_values());
    }
    Ok(results)
}
