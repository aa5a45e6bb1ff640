//! Planning: the nodes of the whole graph, each with its own labelled
//! inputs, from the configuration, the input files and what the tools'
//! memo knows. Reads files; starts a process only where the session may
//! probe and the memo does not know a tool yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Graph, Kind, Node, Session, Work};
use crate::config::{self, Bytecode, Config, Function, Layer, LayerSource, Package, Platform};
use crate::ground::error::UsageError;
use crate::lambda::runtime_env::{choose_runner, site_identity};
use crate::python::installer::{INDEX_LOCATION_VARIABLES, RESULT_VARIABLES};
use crate::python::sources;
use crate::steps::builder::{choose_builder, finish_for, Builder, Finish};
use crate::steps::image::BaseLock;
use crate::store::inputs::Inputs;
use crate::store::tools::Planned;
use crate::{
    facts, ground::redact, python::analyze, python::interpreter, python::lockfile, python::requirements,
    steps,
};

/// Plans the whole graph of the configuration. Reads files and the tools'
/// memo; starts a process only where the session may probe and the memo
/// does not know a tool yet.
pub fn plan(session: &Session) -> Result<Graph> {
    let config = session.config;
    let lifecycle = config::lifecycle::judge(config, config::lifecycle::today()?);
    for warning in &lifecycle.warnings {
        session.printer.warn(warning);
    }
    if let Some(blocked) = lifecycle.blocked {
        return Err(blocked.into());
    }
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
    choose_builders(session, &mut graph)?;
    let site_identities = choose_runners(session, &mut graph)?;
    find_parser(session, &mut graph);
    plan_layers(session, &mut graph)?;
    for function in config.functions.values() {
        plan_function(config, &mut graph, function)?;
    }
    plan_images(config, &mut graph)?;
    for function in config.functions.values() {
        plan_sbom(config, &mut graph, function)?;
    }
    plan_layer_sboms(config, &mut graph)?;
    for function in config.functions.values() {
        let (deps, layers) = runtime_view(config, &graph, function);
        plan_check(config, &mut graph, function, deps.clone(), &layers);
        let site_identity = &site_identities[&config.platform_of(function)];
        plan_smoke(config, &mut graph, function, deps, &layers, site_identity);
    }
    Ok(graph)
}

/// One builder for each platform a dependency profile is built for.
fn choose_builders(session: &Session, graph: &mut Graph) -> Result<()> {
    let config = session.config;
    let mut platforms: Vec<Platform> = config
        .layers
        .values()
        .filter(|layer| matches!(layer.source, LayerSource::Requirements(_)))
        .flat_map(|layer| config.layer_platforms(&layer.name))
        .collect();
    platforms.sort();
    platforms.dedup();
    for platform in platforms {
        let builder = choose_builder(
            &session.sh,
            &config.at(platform),
            session.settings.installer,
            &session.tools,
            &mut graph.notes,
        )?;
        graph.builders.insert(platform, builder);
    }
    Ok(())
}

/// One runner for each platform a function runs on, and what stands in
/// for each platform's runtime (once: it may list a folder).
fn choose_runners(session: &Session, graph: &mut Graph) -> Result<BTreeMap<Platform, String>> {
    let config = session.config;
    let mut platforms: Vec<Platform> = config
        .functions
        .values()
        .map(|function| config.platform_of(function))
        .collect();
    platforms.sort();
    platforms.dedup();
    let mut site_identities = BTreeMap::new();
    for platform in platforms {
        let runner = choose_runner(&session.sh, &config.at(platform), &session.tools)?;
        graph.runners.insert(platform, runner);
        site_identities.insert(platform, site_identity(platform.runtime));
    }
    Ok(site_identities)
}

/// The interpreter that parses application code (the repository's
/// runtime's Python when there is one, which then compiles it too), when
/// there is application code.
fn find_parser(session: &Session, graph: &mut Graph) {
    let config = session.config;
    let has_source_layers = config
        .layers
        .values()
        .any(|layer| matches!(layer.source, LayerSource::Source(_)));
    if config.functions.is_empty() && !has_source_layers {
        return;
    }
    graph.parser = match interpreter::find_interpreter(&session.sh, &session.tools, config.runtime, None) {
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

/// The layers' nodes, in stack order: each dependency profile for each
/// platform it is built for, each source layer once. Every lock that
/// cannot be installed is named in one answer.
fn plan_layers(session: &Session, graph: &mut Graph) -> Result<()> {
    let config = session.config;
    let environment = environment_inputs(config)?;
    let locks_required = repository_locks(config);
    let mut lock_problems: Vec<(String, String)> = Vec::new();
    for layer in config.stack_order() {
        match &layer.source {
            LayerSource::Requirements(requirements) => {
                for platform in config.layer_platforms(&layer.name) {
                    match locked(config, &layer.name, requirements, platform, locks_required)? {
                        Ok(lock) => {
                            let variant = Variant {
                                layer,
                                requirements,
                                platform,
                                lock,
                            };
                            plan_profile(graph, config, variant, &environment)?
                        }
                        Err(problem) => lock_problems.push((layer.name.clone(), problem)),
                    }
                }
            }
            LayerSource::Source(dir) => plan_source_layer(graph, config, layer, dir)?,
            LayerSource::External { .. } => {}
        }
    }
    if !lock_problems.is_empty() {
        return Err(lock_error(session, &lock_problems).into());
    }
    Ok(())
}

/// A source layer's node: its files under their prefix.
fn plan_source_layer(graph: &mut Graph, config: &Config, layer: &Layer, dir: &Path) -> Result<()> {
    let (files, prefix) = steps::package::source_layer_files(config, layer)?;
    let mut inputs = common(Kind::SourceLayer);
    inputs.add("prefix", prefix.as_str());
    sources::key_files(&mut inputs, dir, &files)?;
    let pending = app_bytecode(graph, &mut inputs);
    graph.push(Node {
        kind: Kind::SourceLayer,
        name: layer.name.clone(),
        deps: Vec::new(),
        inputs,
        pending,
        work: Work::SourceLayer { files, prefix },
    });
    Ok(())
}

/// A function's node: its files, and the layers it bundles (their outputs
/// enter its key).
fn plan_function(config: &Config, graph: &mut Graph, function: &Function) -> Result<()> {
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
                    return Err(UsageError::new(format!(
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
    let pending = parser_input(graph, &mut inputs);
    graph.push(Node {
        kind: Kind::Function,
        name: function.name.clone(),
        deps,
        inputs,
        pending,
        work: Work::Function { files, compiles },
    });
    Ok(())
}

/// Each image function's image on its base, and each base once for each
/// architecture: a base given by tag is pinned by `images.lock`.
fn plan_images(config: &Config, graph: &mut Graph) -> Result<()> {
    let mut lock: Option<BaseLock> = None;
    for function in config.functions.values() {
        let Package::Image(spec) = &function.package else {
            continue;
        };
        let lock = match &mut lock {
            Some(lock) => lock,
            None => lock.insert(BaseLock::read(&config.root)?),
        };
        let platform = config.platform_of(function);
        let key = format!("{}.functions.{}.image_base", config::TABLE, function.name);
        // An unpinned tag fails the base's step, not the plan: commands that
        // do not need the image (build-layers, a dry run) still run.
        let (base, unpinned) = match lock.pin(&spec.base, platform.arch, &key) {
            Ok(base) => (base, None),
            Err(err) => (spec.base.clone(), Some(err.to_string())),
        };
        let base_name = format!("{base} {}", platform.arch.name());
        let base_node = match graph.find(Kind::Base, &base_name) {
            Some(index) => index,
            None => {
                let mut inputs = common(Kind::Base);
                inputs
                    .add("reference", base.to_string())
                    .add("architecture", platform.arch.name());
                graph.push(Node {
                    kind: Kind::Base,
                    name: base_name,
                    deps: Vec::new(),
                    inputs,
                    pending: None,
                    work: Work::Base {
                        reference: base,
                        arch: platform.arch,
                        unpinned,
                    },
                })
            }
        };
        let mut deps = vec![
            base_node,
            graph.find(Kind::Function, &function.name).expect("just planned"),
        ];
        for name in &function.layers {
            if let Some(index) = graph.layer(&config.attached(function, name)) {
                deps.push(index);
            }
        }
        let mut inputs = common(Kind::Image);
        inputs
            .add("handler", function.handler.as_str())
            .add("runtime", platform.runtime.name)
            .add("architecture", platform.arch.name())
            .add("layers", format!("[{}]", function.layers.join(", ")));
        graph.push(Node {
            kind: Kind::Image,
            name: function.name.clone(),
            deps,
            inputs,
            pending: None,
            work: Work::Image,
        });
    }
    Ok(())
}

/// A function's SBOM: what its ZIP and its layers ship (their outputs
/// enter its key), the locks whose hashes it lists, and what the runtime
/// provides beside them (the facts' pins, by the tool's format).
fn plan_sbom(config: &Config, graph: &mut Graph, function: &Function) -> Result<()> {
    let platform = config.platform_of(function);
    let mut deps = vec![graph.find(Kind::Function, &function.name).expect("just planned")];
    let mut inputs = common(Kind::Sbom);
    let attached: Vec<String> = function
        .layers
        .iter()
        .map(|name| config.attached(function, name))
        .collect();
    inputs
        .add("function", function.name.as_str())
        .add("runtime", platform.runtime.name)
        .add("architecture", platform.arch.name())
        .add("layers", format!("[{}]", attached.join(", ")))
        .add(
            "runtime provides",
            format!(
                "{} {} {}",
                facts::RUNTIME_PROVIDED.join(" "),
                facts::RUNTIME_BOTO3,
                facts::runtime_interface_client(platform.runtime)
            ),
        );
    let mut locks = Vec::new();
    for (name, variant) in function.layers.iter().zip(&attached) {
        match graph.layer(variant) {
            Some(index) => {
                if !deps.contains(&index) {
                    deps.push(index);
                }
                if let Work::Profile { lock: Some(lock), .. } = &graph.nodes[index].work {
                    inputs.file(&lock.display().to_string(), &config.root.join(lock), false)?;
                    locks.push((variant.clone(), lock.clone()));
                }
            }
            None => {
                if let LayerSource::External { arn, .. } = &config.layers[name].source {
                    inputs.add(format!("external {name}"), arn.as_str());
                }
            }
        }
    }
    graph.push(Node {
        kind: Kind::Sbom,
        name: function.name.clone(),
        deps,
        inputs,
        pending: None,
        work: Work::Sbom { layer: None, locks },
    });
    Ok(())
}

/// Each dependency layer's own SBOM, named `layers/<layer>` (a function's
/// name has no `/`): its output and its lock enter the key.
fn plan_layer_sboms(config: &Config, graph: &mut Graph) -> Result<()> {
    let profiles: Vec<usize> = graph.of_kind(&[Kind::Profile]);
    for index in profiles {
        let Work::Profile { platform, lock, .. } = &graph.nodes[index].work else {
            continue;
        };
        let (platform, lock) = (*platform, lock.clone());
        let layer = graph.nodes[index].name.clone();
        let mut inputs = common(Kind::Sbom);
        inputs
            .add("layer", layer.as_str())
            .add("runtime", platform.runtime.name)
            .add("architecture", platform.arch.name());
        let mut locks = Vec::new();
        if let Some(lock) = lock {
            inputs.file(&lock.display().to_string(), &config.root.join(&lock), false)?;
            locks.push((layer.clone(), lock));
        }
        graph.push(Node {
            kind: Kind::Sbom,
            name: format!("layers/{layer}"),
            deps: vec![index],
            inputs,
            pending: None,
            work: Work::Sbom {
                layer: Some(layer),
                locks,
            },
        });
    }
    Ok(())
}

/// What a function sees at run time: its ZIP and its layers in order (the
/// nodes of a check or smoke test of it), and its attached layers as
/// inputs, an external one by its ARN and size; an image function's image
/// too.
fn runtime_view(config: &Config, graph: &Graph, function: &Function) -> (Vec<usize>, Inputs) {
    let function_node = graph.find(Kind::Function, &function.name).expect("just planned");
    let mut deps = vec![function_node];
    let mut layers = Inputs::default();
    if let Some(image) = graph.find(Kind::Image, &function.name) {
        deps.push(image);
        layers.add("package", "image");
    }
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
    (deps, layers)
}

/// The check of a function against Lambda's limits and its budget.
fn plan_check(config: &Config, graph: &mut Graph, function: &Function, deps: Vec<usize>, layers: &Inputs) {
    let platform = config.platform_of(function);
    let mut inputs = common(Kind::Check);
    inputs
        .add("runtime", platform.runtime.name)
        .add("architecture", platform.arch.name())
        .add("handler", function.handler.as_str())
        .add("budget", format!("{:?}", config.budget_for(function)))
        .add(
            "licenses",
            serde_json::to_string(&config.license_policy(function)).unwrap_or_default(),
        )
        .add(
            "analyzer",
            crate::ground::digest::bytes_sha256(analyze::SCRIPT.as_bytes()),
        );
    inputs.0.extend(layers.0.iter().cloned());
    let pending = parser_input(graph, &mut inputs);
    graph.push(Node {
        kind: Kind::Check,
        name: function.name.clone(),
        deps,
        inputs,
        pending,
        work: Work::Check,
    });
}

/// The smoke test of a function, run on its platform's runner.
fn plan_smoke(
    config: &Config,
    graph: &mut Graph,
    function: &Function,
    deps: Vec<usize>,
    layers: &Inputs,
    site_identity: &str,
) {
    let platform = config.platform_of(function);
    let mut inputs = common(Kind::Smoke);
    inputs
        .add("runtime", platform.runtime.name)
        .add("architecture", platform.arch.name())
        .add("handler", function.handler.as_str())
        .add("import budget", format!("{} ms", config.import_budget_ms))
        .add("init timeout", format!("{} s", facts::INIT_TIMEOUT_S))
        .add(
            "bootstrap",
            crate::ground::digest::bytes_sha256(crate::lambda::runtime_env::SCRIPT.as_bytes()),
        )
        .add("runtime site", site_identity);
    inputs.0.extend(layers.0.iter().cloned());
    let pending = match graph.runners.get(&platform) {
        Some(Planned::Ready(runner)) => {
            inputs.add("runner", runner.identity());
            None
        }
        Some(Planned::Pending(what)) => Some(what.clone()),
        None => None,
    };
    graph.push(Node {
        kind: Kind::Smoke,
        name: function.name.clone(),
        deps,
        inputs,
        pending,
        work: Work::Smoke,
    });
}

/// One dependency profile as built for one platform, with its lock for
/// that platform, if it installs one.
struct Variant<'a> {
    layer: &'a Layer,
    requirements: &'a Path,
    platform: Platform,
    lock: Option<PathBuf>,
}

/// The node of one dependency profile built for one platform, named
/// `core` on the repository's platform and `core@python3.12-arm64` on
/// another.
fn plan_profile(graph: &mut Graph, config: &Config, variant: Variant, environment: &Inputs) -> Result<()> {
    let Variant {
        layer,
        requirements,
        platform,
        lock,
    } = variant;
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
        .add("requirements", requirements.display().to_string());
    for file in requirements::input_files(&config.root, requirements, &key)? {
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
    let (pending, finish) = match graph.builders.get(&platform) {
        Some(Planned::Ready(builder)) => {
            let (finish, note) = finish_for(&config.at(platform), layer, builder)?;
            builder_inputs(&mut inputs, builder, finish);
            if let Some(note) = note.filter(|note| !graph.notes.contains(note)) {
                graph.notes.push(note);
            }
            (None, Some(finish))
        }
        Some(Planned::Pending(what)) => (Some(what.clone()), None),
        None => (None, None),
    };
    graph.push(Node {
        kind: Kind::Profile,
        name: config.variant(&layer.name, platform),
        deps,
        inputs,
        pending,
        work: Work::Profile {
            platform,
            requirements: requirements.to_path_buf(),
            lock,
            finish,
        },
    });
    Ok(())
}

/// What decides a layer's bytes besides what it installs: what is done
/// after the install, and the builder's identity.
fn builder_inputs(inputs: &mut Inputs, builder: &Builder, finish: Finish) {
    if finish.transforms() {
        let script = crate::ground::digest::bytes_sha256(crate::steps::finish::PROVE_SCRIPT.as_bytes());
        inputs.add("proof", script);
    }
    inputs
        .add("bytecode", finish.bytecode.name())
        .add("slim", finish.slim.to_string())
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

/// The parser's identity as an input of a node that reads what it parses,
/// or what it is pending on while it is not known.
fn parser_input(graph: &Graph, inputs: &mut Inputs) -> Option<String> {
    match &graph.parser {
        Planned::Pending(what) => Some(what.clone()),
        Planned::Ready(python) => {
            inputs.add("parser", format!("{} {}", python.display(), graph.parser_version));
            None
        }
    }
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
/// they name. A value with a credential in it (a URL whose user info
/// holds a password or token) is kept redacted, with its digest: keys and
/// records never hold it.
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
