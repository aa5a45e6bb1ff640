//! Planning: the nodes of the whole graph, each with its own labelled
//! inputs, from the configuration, the input files and what the tools'
//! memo knows. Reads files; starts a process only where the session may
//! probe and the memo does not know a tool yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Graph, Inputs, Kind, Node, Session, Work};
use crate::config::{self, Bytecode, Config, Layer, LayerSource, Platform};
use crate::error::UsageError;
use crate::lambda::runtime_env::{choose_runner, site_identity};
use crate::python::installer::{INDEX_LOCATION_VARIABLES, RESULT_VARIABLES};
use crate::python::sources;
use crate::steps::builder::{choose_builder, finish_for, Builder};
use crate::store::tools::Planned;
use crate::{
    facts, python::analyze, python::interpreter, python::lockfile, python::requirements, redact, steps,
};

/// Plans the whole graph of the configuration. Reads files and the tools'
/// memo; starts a process only where the session may probe and the memo
/// does not know a tool yet.
pub fn plan(session: &Session) -> Result<Graph> {
    let config = session.config;
    let mut graph = Graph {
        nodes: Vec::new(),
        by_id: BTreeMap::new(),
        builders: BTreeMap::new(),
        runners: BTreeMap::new(),
        parser: Planned::Pending(String::new()),
        parser_version: String::new(),
        compiles_app_code: false,
        notes: Vec::new(),
    };

    // One builder for each platform a dependency profile is built for, one
    // runner for each platform a function runs on.
    let mut profile_platforms: Vec<Platform> = config
        .layers
        .values()
        .filter(|layer| matches!(layer.source, LayerSource::Requirements(_)))
        .flat_map(|layer| config.layer_platforms(&layer.name))
        .collect();
    profile_platforms.sort();
    profile_platforms.dedup();
    for platform in profile_platforms {
        let builder = choose_builder(
            &session.sh,
            &config.at(platform),
            session.settings.installer,
            &session.tools,
            &mut graph.notes,
        )?;
        graph.builders.insert(platform, builder);
    }
    let mut function_platforms: Vec<Platform> = config
        .functions
        .values()
        .map(|function| config.platform_of(function))
        .collect();
    function_platforms.sort();
    function_platforms.dedup();
    // What stands in for each platform's runtime, once: it may list a folder.
    let mut site_identities: BTreeMap<Platform, String> = BTreeMap::new();
    for platform in function_platforms {
        let runner = choose_runner(&session.sh, &config.at(platform), &session.tools)?;
        graph.runners.insert(platform, runner);
        site_identities.insert(platform, site_identity(platform.runtime));
    }
    let has_source_layers = config
        .layers
        .values()
        .any(|layer| matches!(layer.source, LayerSource::Source(_)));
    if !config.functions.is_empty() || has_source_layers {
        graph.parser = match interpreter::find_interpreter(&session.sh, &session.tools, config.runtime, None)
        {
            Planned::Ready(found) => {
                graph.compiles_app_code = found.is_some() && config.bytecode != Some(Bytecode::None);
                let python = found.unwrap_or_else(|| PathBuf::from("python3"));
                match interpreter::full_version(&session.sh, &session.tools, &python) {
                    Planned::Ready(version) => {
                        graph.parser_version = version;
                        Planned::Ready(python)
                    }
                    Planned::Pending(what) => Planned::Pending(what),
                }
            }
            Planned::Pending(what) => Planned::Pending(what),
        };
    }
    let environment = environment_inputs(config)?;
    let locks_required = repository_locks(config);
    // Every lock that cannot be installed, named in one answer.
    let mut lock_problems: Vec<(String, String)> = Vec::new();

    for layer in config.stack_order() {
        match &layer.source {
            LayerSource::Requirements(path) => {
                for platform in config.layer_platforms(&layer.name) {
                    match locked(config, &layer.name, path, platform, locks_required)? {
                        Ok(lock) => {
                            plan_profile(&mut graph, config, layer, path, platform, lock, &environment)?
                        }
                        Err(problem) => lock_problems.push((layer.name.clone(), problem)),
                    }
                }
            }
            LayerSource::Source(dir) => {
                let (files, prefix) = steps::package::source_layer_files(config, layer)?;
                let mut inputs = common(Kind::SourceLayer);
                inputs.add("prefix", prefix.as_str());
                sources::key_files(&mut inputs, dir, &files)?;
                let pending = app_bytecode(&graph, &mut inputs);
                graph.push(Node {
                    kind: Kind::SourceLayer,
                    name: layer.name.clone(),
                    deps: Vec::new(),
                    inputs,
                    pending,
                    work: Work::SourceLayer { files, prefix },
                });
            }
            LayerSource::External { .. } => {}
        }
    }
    if !lock_problems.is_empty() {
        return Err(lock_error(session, &lock_problems).into());
    }

    for function in config.functions.values() {
        let files = steps::package::function_files(config, function)?;
        let mut inputs = common(Kind::Function);
        inputs
            .add("handler", function.handler.as_str())
            .add("bundle", function.bundle.to_string());
        let mut deps = Vec::new();
        if function.bundle {
            inputs.add("bundled", format!("[{}]", function.layers.join(", ")));
            for name in &function.layers {
                match graph.layer(&config.attached(function, name)) {
                    Some(index) => deps.push(index),
                    None => {
                        return Err(crate::error::UsageError::new(format!(
                            "functions.{}.bundle: layer `{name}` is external (an ARN) and cannot be bundled; attach it instead",
                            function.name
                        ))
                        .into())
                    }
                }
            }
        }
        sources::key_files(&mut inputs, &function.source, &files)?;
        // Bytecode is compiled for the repository's runtime, whose Python parses.
        let compiles = graph.compiles_app_code && config.platform_of(function).runtime == config.runtime;
        inputs.add("bytecode", if compiles { "checked-hash" } else { "none" });
        let pending = match &graph.parser {
            Planned::Pending(what) => Some(what.clone()),
            Planned::Ready(python) => {
                inputs.add("parser", format!("{} {}", python.display(), graph.parser_version));
                None
            }
        };
        graph.push(Node {
            kind: Kind::Function,
            name: function.name.clone(),
            deps,
            inputs,
            pending,
            work: Work::Function { files, compiles },
        });
    }

    for function in config.functions.values() {
        let function_node = graph.find(Kind::Function, &function.name).expect("just planned");
        // What the function sees at run time: its ZIP and its layers in order.
        let mut deps = vec![function_node];
        let mut layers = Inputs::default();
        let attached: &[String] = &function.layers;
        layers.add("layers", format!("[{}]", attached.join(", ")));
        for name in attached {
            match graph.layer(&config.attached(function, name)) {
                Some(index) => {
                    if !deps.contains(&index) {
                        deps.push(index);
                    }
                }
                None => {
                    if let LayerSource::External { arn, unzipped_bytes } = &config.layers[name].source {
                        layers.add(format!("external {name}"), format!("{arn} {unzipped_bytes}"));
                    }
                }
            }
        }

        let platform = config.platform_of(function);
        let mut check = common(Kind::Check);
        check
            .add("runtime", platform.runtime.name)
            .add("architecture", platform.arch.name())
            .add("handler", function.handler.as_str())
            .add("budget", format!("{:?}", config.budget_for(function)))
            .add(
                "analyzer",
                crate::digest::bytes_sha256(analyze::SCRIPT.as_bytes()),
            );
        check.0.extend(layers.0.iter().cloned());
        let check_pending = match &graph.parser {
            Planned::Pending(what) => Some(what.clone()),
            Planned::Ready(python) => {
                check.add("parser", format!("{} {}", python.display(), graph.parser_version));
                None
            }
        };
        graph.push(Node {
            kind: Kind::Check,
            name: function.name.clone(),
            deps: deps.clone(),
            inputs: check,
            pending: check_pending,
            work: Work::Check,
        });

        let mut smoke = common(Kind::Smoke);
        smoke
            .add("runtime", platform.runtime.name)
            .add("architecture", platform.arch.name())
            .add("handler", function.handler.as_str())
            .add("import budget", format!("{} ms", config.import_budget_ms))
            .add("init timeout", format!("{} s", facts::INIT_TIMEOUT_S))
            .add(
                "bootstrap",
                crate::digest::bytes_sha256(crate::lambda::runtime_env::SCRIPT.as_bytes()),
            )
            .add("runtime site", site_identities[&platform].as_str());
        smoke.0.extend(layers.0.iter().cloned());
        let smoke_pending = match graph.runners.get(&platform) {
            Some(Planned::Ready(runner)) => {
                smoke.add("runner", runner.identity());
                None
            }
            Some(Planned::Pending(what)) => Some(what.clone()),
            None => None,
        };
        graph.push(Node {
            kind: Kind::Smoke,
            name: function.name.clone(),
            deps,
            inputs: smoke,
            pending: smoke_pending,
            work: Work::Smoke,
        });
    }
    Ok(graph)
}

/// The node of one dependency profile built for one platform, named
/// `core` on the repository's platform and `core@python3.12-arm64` on
/// another.
fn plan_profile(
    graph: &mut Graph,
    config: &Config,
    layer: &Layer,
    path: &Path,
    platform: Platform,
    lock: Option<PathBuf>,
    environment: &Inputs,
) -> Result<()> {
    let key = format!("layers.{}.requirements", layer.name);
    let mut inputs = common(Kind::Profile);
    // A stacked profile depends on every profile below it, built for the
    // same platform: their outputs (what they provide) enter its key.
    let bases = config::bases_of(&config.layers, &layer.name);
    let deps: Vec<usize> = bases
        .iter()
        .filter_map(|base| graph.find(Kind::Profile, &config.variant(base, platform)))
        .collect();
    inputs.add("base", format!("[{}]", bases.join(", ")));
    inputs
        .add("runtime", platform.runtime.name)
        .add("architecture", platform.arch.name())
        .add("exclude", format!("[{}]", config.exclude.join(", ")))
        .add("requirements", path.display().to_string());
    for file in requirements::input_files(&config.root, path, &key)? {
        inputs.file(&file.display().to_string(), &config.root.join(&file), false)?;
    }
    if let Some(lock) = &lock {
        inputs.file(&lock.display().to_string(), &config.root.join(lock), false)?;
    }
    // A lock's hashes decide its bytes, wherever they are fetched from: the
    // index variables count only where the installer resolves.
    inputs.0.extend(
        environment
            .0
            .iter()
            .filter(|(label, _)| lock.is_none() || !names_index_location(label))
            .cloned(),
    );
    let mut pending = None;
    let mut finish = None;
    match graph.builders.get(&platform) {
        Some(Planned::Ready(builder)) => {
            let (chosen, note) = finish_for(&config.at(platform), layer, builder)?;
            if let Some(note) = note {
                if !graph.notes.contains(&note) {
                    graph.notes.push(note);
                }
            }
            finish = Some(chosen);
            if chosen.transforms() {
                let script = crate::digest::bytes_sha256(crate::steps::finish::PROVE_SCRIPT.as_bytes());
                inputs.add("proof", script);
            }
            inputs
                .add("bytecode", chosen.bytecode.name())
                .add("slim", chosen.slim.to_string())
                .add("builder", builder.name())
                .add("installer", builder.installer_id());
            match builder {
                Builder::Container {
                    image,
                    image_id,
                    python,
                    ..
                } => {
                    inputs
                        .add("image", image.as_str())
                        .add("image id", image_id.as_str())
                        .add("image python", python.as_deref().unwrap_or("none"));
                }
                Builder::Host {
                    interpreter: Some(python),
                    interpreter_version,
                    ..
                } => {
                    // The patch release too: it compiles the bytecode.
                    inputs.add(
                        "interpreter",
                        format!("{} {interpreter_version}", python.display()),
                    );
                }
                Builder::Host { .. } => {}
            }
        }
        Some(Planned::Pending(what)) => pending = Some(what.clone()),
        None => {}
    }
    graph.push(Node {
        kind: Kind::Profile,
        name: config.variant(&layer.name, platform),
        deps,
        inputs,
        pending,
        work: Work::Profile {
            platform,
            requirements: path.to_path_buf(),
            lock,
            finish,
        },
    });
    Ok(())
}

/// A source layer's bytecode: compiled by the parser when it is the
/// runtime's own Python (it enters the key), pending while it is not known.
fn app_bytecode(graph: &Graph, inputs: &mut Inputs) -> Option<String> {
    match &graph.parser {
        Planned::Pending(what) => Some(what.clone()),
        Planned::Ready(python) if graph.compiles_app_code => {
            inputs
                .add("bytecode", "checked-hash")
                .add("parser", format!("{} {}", python.display(), graph.parser_version));
            None
        }
        Planned::Ready(_) => {
            inputs.add("bytecode", "none");
            None
        }
    }
}

fn common(kind: Kind) -> Inputs {
    let mut inputs = Inputs::default();
    inputs.add("kind", kind.store_dir()).add("format", kind.format());
    inputs
}

/// The installer variables that are set, and the content of the files
/// they name. A value with a credential in it (`https://ci-bot:TOKEN@…`)
/// is kept redacted, with its digest: keys and records never hold it.
fn environment_inputs(config: &Config) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for (name, names_files) in RESULT_VARIABLES {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        inputs.add(format!("env {name}"), redact::for_key(&value));
        if *names_files {
            for file in value.split_whitespace() {
                let path = config.root.join(file);
                if path.is_file() {
                    inputs.file(&format!("{name} {file}"), &path, false)?;
                }
            }
        }
    }
    Ok(inputs)
}

/// Whether an `env …` input is a variable that says where distributions
/// are fetched from.
fn names_index_location(label: &str) -> bool {
    label
        .strip_prefix("env ")
        .is_some_and(|name| INDEX_LOCATION_VARIABLES.contains(&name))
}

/// Whether any dependency profile has a lock, for any runtime and
/// architecture: a repository that locks installs every profile from a
/// lock, resolving none at build time, also for a platform chosen on the
/// command line (`--arch`) that no lock was written for yet.
fn repository_locks(config: &Config) -> bool {
    config.layers.values().any(|layer| match &layer.source {
        LayerSource::Requirements(path) => lockfile::any_exists(&config.root, path),
        _ => false,
    })
}

/// The profile's lock for the platform (`Ok(None)`: it has none, and the
/// repository does not lock); `Err` with what is wrong when it is missing
/// where the repository locks, older than its inputs, or names an index.
fn locked(
    config: &Config,
    name: &str,
    requirements: &Path,
    platform: Platform,
    required: bool,
) -> Result<Result<Option<PathBuf>, String>> {
    let key = format!("layers.{name}.requirements");
    let lock = lockfile::path(requirements, platform.runtime, platform.arch);
    let inputs = lockfile::inputs(
        &config.root,
        requirements,
        &key,
        &lockfile::base_locks(config, name, platform),
    )?;
    let state = lockfile::planned_state(&config.root, &lock, &inputs);
    Ok(match state {
        lockfile::State::Missing if required => Err(format!(
            "{}: missing, and the repository locks its profiles",
            lock.display()
        )),
        lockfile::State::Missing => Ok(None),
        lockfile::State::Current => Ok(Some(lock)),
        other => Err(lockfile::problem(&lock, &other).unwrap_or_default()),
    })
}

/// One configuration error for every lock that cannot be installed, with
/// the one command that writes them all (on the platform chosen on the
/// command line, when one was).
fn lock_error(session: &Session, problems: &[(String, String)]) -> UsageError {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in problems {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let arch = match session.settings.overrides.arch {
        Some(arch) => format!("--arch {} ", arch.name()),
        None => String::new(),
    };
    let lines: Vec<&str> = problems.iter().map(|(_, problem)| problem.as_str()).collect();
    UsageError::new(format!(
        "{} (run cargo xtask lock {arch}{})",
        lines.join("; "),
        names.join(" ")
    ))
}
