//! The configuration wing: the repository as its team declares it and as
//! a build declares it to Terraform. Imports the store wing and the
//! ground floor.
//!
//! - this file and `table`, `deploy`, `workspace`: the configuration;
//! - `manifest`: `dist/manifest.json`, what was built.
//!
//! `[workspace.metadata.lambda]` of the root `Cargo.toml`, read into typed
//! structs. Strict: an unknown key or a bad value is a usage error that names
//! the key and says how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use crate::error::UsageError;
use crate::facts::{self, Arch, Runtime};
use crate::store::remote_cache::{Mode as RemoteMode, Settings as RemoteSettings};

mod deploy;
#[cfg(test)]
mod design_doc;
pub mod manifest;
mod table;
mod workspace;

pub use deploy::Deploy;

#[cfg(test)]
pub(crate) use table::asked_log;
use table::{Limit, Table};
use workspace::Workspace;

/// Budgets and an external layer's size: nothing bigger can deploy.
const UNZIPPED_LIMIT: Limit = Limit {
    max: facts::MAX_UNZIPPED_BYTES,
    why: "Lambda's limit for a function and its layers unzipped",
};

/// An import slower than Lambda's init phase never finishes there.
const IMPORT_BUDGET_LIMIT: Limit = Limit {
    max: facts::INIT_TIMEOUT_S * 1000,
    why: "the time Lambda gives the init phase",
};

pub(crate) const TABLE: &str = "workspace.metadata.lambda";

/// The tool's folder in cargo's target directory.
pub const CACHE_DIR: &str = "lambda";

/// Where `invoke --all` finds sample events when `events` is not set.
pub const DEFAULT_EVENTS: &str = "lambdas/events";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderChoice {
    Auto,
    Container,
    Host,
}

impl BuilderChoice {
    pub fn parse(value: &str) -> Option<BuilderChoice> {
        match value {
            "auto" => Some(BuilderChoice::Auto),
            "container" => Some(BuilderChoice::Container),
            "host" => Some(BuilderChoice::Host),
            _ => None,
        }
    }
}

/// Whether dependency layers ship `.pyc` files; only hash-based ones
/// survive the fixed ZIP timestamps (PEP 552). `Sourceless` ships the
/// `.pyc` in place of the `.py`: nothing to read, hash or compile at import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bytecode {
    None,
    CheckedHash,
    UncheckedHash,
    Sourceless,
}

impl Bytecode {
    pub const NAMES: &'static str = "none, checked-hash, unchecked-hash or sourceless";

    pub fn name(self) -> &'static str {
        match self {
            Bytecode::None => "none",
            Bytecode::CheckedHash => "checked-hash",
            Bytecode::UncheckedHash => "unchecked-hash",
            Bytecode::Sourceless => "sourceless",
        }
    }

    pub fn parse(name: &str) -> Option<Bytecode> {
        [
            Bytecode::None,
            Bytecode::CheckedHash,
            Bytecode::UncheckedHash,
            Bytecode::Sourceless,
        ]
        .into_iter()
        .find(|mode| mode.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSource {
    /// A dependency profile: `requirements.txt` installed by `build-layers`.
    Requirements(PathBuf),
    /// Application code packaged by `package` as `python/<dir name>/…`.
    Source(PathBuf),
    /// A layer built elsewhere, attached by ARN and counted by its declared size.
    External { arn: String, unzipped_bytes: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    pub source: LayerSource,
    /// Files packaged even though they look like secrets (relative to the source).
    pub allow: Vec<String>,
    /// The profiles a dependency profile is stacked on: resolved together
    /// with them, and without what they provide.
    pub base: Vec<String>,
    /// A dependency profile's own `slim`, over the repository's.
    pub slim: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub source: PathBuf,
    pub handler: String,
    pub layers: Vec<String>,
    pub budget: Option<u64>,
    pub bundle: bool,
    pub allow: Vec<String>,
    /// Memory, timeout, environment and the rest of what Lambda runs it with.
    pub deploy: Deploy,
    /// Its own runtime and architecture, instead of the repository's.
    pub runtime: Option<Runtime>,
    pub arch: Option<Arch>,
}

/// Where code runs: a Lambda runtime on an architecture. A dependency
/// profile is built once for each platform its functions run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub runtime: Runtime,
    pub arch: Arch,
}

impl Platform {
    /// `python3.12-arm64`.
    pub fn label(&self) -> String {
        format!("{}-{}", self.runtime.name, self.arch.name())
    }
}

impl PartialOrd for Platform {
    fn partial_cmp(&self, other: &Platform) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Platform {
    fn cmp(&self, other: &Platform) -> std::cmp::Ordering {
        (self.runtime.name, self.arch.name()).cmp(&(other.runtime.name, other.arch.name()))
    }
}

impl Function {
    /// `sms_handler.lambda_handler` → (`sms_handler`, `lambda_handler`).
    pub fn handler_parts(&self) -> (&str, &str) {
        self.handler
            .rsplit_once('.')
            .expect("validated when the configuration was read")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The workspace root: every relative path in the configuration starts here.
    pub root: PathBuf,
    /// Cargo's target directory: the cache lives under it.
    pub target_dir: PathBuf,
    pub runtime: Runtime,
    pub arch: Arch,
    pub builder: BuilderChoice,
    pub image: String,
    /// `--runner`: not a key of the table.
    pub runner: RunnerChoice,
    /// Normalised distribution names left out of every dependency layer.
    pub exclude: Vec<String>,
    /// `None`: the default, `sourceless` wherever the runtime's own Python
    /// is at hand to compile and prove the layers, else `none`.
    pub bytecode: Option<Bytecode>,
    /// `None`: the default, like `bytecode`'s.
    pub slim: Option<bool>,
    pub budget: Option<u64>,
    pub import_budget_ms: u64,
    /// Sample events (`<events>/<function>/<name>.json`) for `invoke --all`.
    pub events: PathBuf,
    /// The remote cache of dependency layers (`remote_cache`,
    /// `remote_cache_mode`; the environment's `XTASK_REMOTE_CACHE` and
    /// `XTASK_REMOTE_CACHE_MODE` win).
    pub remote_cache: Option<RemoteSettings>,
    /// The repository's `log_retention_days`: the retention of the log
    /// groups that belong to no function (the HTTP API's access log) and of
    /// every function without its own.
    pub log_retention_days: u64,
    pub layers: BTreeMap<String, Layer>,
    pub functions: BTreeMap<String, Function>,
}

/// What the command line may override.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub arch: Option<Arch>,
    pub builder: Option<BuilderChoice>,
    pub image: Option<String>,
    pub runner: Option<RunnerChoice>,
}

/// Where functions run for `smoke` and `invoke` (`--runner`): by default in
/// the build image when the builder is `container`, else on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunnerChoice {
    #[default]
    FollowBuilder,
    Host,
    Container,
}

impl Config {
    /// Reads the configuration of the workspace around the current directory.
    pub fn load(overrides: &Overrides) -> Result<Config> {
        Config::load_in_workspace(overrides).1
    }

    /// The configuration, and the workspace's root and target directory
    /// whenever they were found (also when the table is invalid: what was
    /// built from it must go).
    pub fn load_in_workspace(overrides: &Overrides) -> (Option<(PathBuf, PathBuf)>, Result<Config>) {
        let metadata = match Workspace::read() {
            Ok(metadata) => metadata,
            Err(err) => {
                let err = UsageError::new(format!("cannot read the workspace: {err}"));
                return (None, Err(err.into()));
            }
        };
        let found = (metadata.workspace_root.clone(), metadata.target_directory.clone());
        (Some(found), Config::from_metadata(metadata, overrides))
    }

    fn from_metadata(metadata: Workspace, overrides: &Overrides) -> Result<Config> {
        let root = metadata.workspace_root;
        let target_dir = metadata.target_directory;
        let Some(table) = metadata
            .metadata
            .as_ref()
            .and_then(|metadata| metadata.get("lambda"))
        else {
            return Err(UsageError::new(format!(
                "{}: no [{TABLE}] table: add one (see README.md)",
                root.join("Cargo.toml").display()
            ))
            .into());
        };
        let mut config = Config::from_value(&root, table)
            .map_err(|message| UsageError::new(format!("Cargo.toml: {message}")))?;
        config.target_dir = target_dir;
        if let Some(arch) = overrides.arch {
            if config.image == config.runtime.default_image(config.arch) {
                config.image = config.runtime.default_image(arch);
            }
            config.arch = arch;
        }
        if let Some(builder) = overrides.builder {
            config.builder = builder;
        }
        if let Some(image) = &overrides.image {
            config.image = image.clone();
        }
        config.runner = overrides.runner.unwrap_or_default();
        config.remote_cache = crate::store::remote_cache::with_env(config.remote_cache.take())?;
        Ok(config)
    }

    /// Parses and validates the table. Errors are one line: `key: problem (fix)`.
    pub fn from_value(root: &Path, value: &Value) -> Result<Config, String> {
        let mut top = Table::new(TABLE, value)?;
        let runtime_name = top.required_str("runtime")?;
        let runtime = Runtime::find(&runtime_name).ok_or_else(|| {
            let known: Vec<_> = facts::RUNTIMES.iter().map(|r| r.name).collect();
            format!(
                "{TABLE}.runtime: unknown runtime `{runtime_name}` (use one of: {})",
                known.join(", ")
            )
        })?;
        let arch = match top.optional_str("architecture")? {
            None => Arch::X86_64,
            Some(name) => Arch::parse(&name).ok_or_else(|| {
                format!("{TABLE}.architecture: unknown architecture `{name}` (use x86_64 or arm64)")
            })?,
        };
        let builder = match top.optional_str("builder")? {
            None => BuilderChoice::Auto,
            Some(name) => BuilderChoice::parse(&name).ok_or_else(|| {
                format!("{TABLE}.builder: unknown builder `{name}` (use auto, container or host)")
            })?,
        };
        let image = top
            .optional_str("image")?
            .unwrap_or_else(|| runtime.default_image(arch));
        let exclude = match top.optional_str_list("exclude")? {
            None => facts::RUNTIME_PROVIDED
                .iter()
                .map(|name| name.to_string())
                .collect(),
            Some(names) => names,
        };
        let mut exclude: Vec<String> = exclude
            .iter()
            .map(|name| facts::normalize_dist_name(name))
            .collect();
        exclude.sort();
        exclude.dedup();
        let bytecode = match top.optional_str("bytecode")? {
            None => None,
            Some(name) => Some(Bytecode::parse(&name).ok_or_else(|| {
                format!(
                    "{TABLE}.bytecode: unknown mode `{name}` (use {})",
                    Bytecode::NAMES
                )
            })?),
        };
        let slim = top.optional_bool("slim")?;
        let deploy = deploy::repository(&mut top)?;
        let budget = top.optional_size("budget", &UNZIPPED_LIMIT)?;
        let import_budget_ms = top
            .optional_duration_ms("import_budget", &IMPORT_BUDGET_LIMIT)?
            .unwrap_or(facts::DEFAULT_IMPORT_BUDGET_MS);
        let events = match top.optional_str("events")? {
            Some(events) => existing_path(root, &format!("{TABLE}.events"), &events, true)?,
            None => PathBuf::from(DEFAULT_EVENTS),
        };
        let remote_mode = match top.optional_str("remote_cache_mode")? {
            None => RemoteMode::ReadWrite,
            Some(name) => RemoteMode::parse(&name).ok_or_else(|| {
                format!("{TABLE}.remote_cache_mode: unknown mode `{name}` (use read-write or read-only)")
            })?,
        };
        let remote_cache = match top.optional_str("remote_cache")? {
            None => None,
            Some(url) => Some(RemoteSettings::parse(
                &format!("{TABLE}.remote_cache"),
                &url,
                remote_mode,
            )?),
        };

        let mut layers = BTreeMap::new();
        let mut folded = BTreeMap::new();
        for (name, value) in top.optional_map("layers")? {
            let layer = parse_layer(root, &name, &value)?;
            check_case_unique(&format!("{TABLE}.layers"), &name, &mut folded)?;
            layers.insert(name, layer);
        }
        check_bases(&layers)?;
        let mut functions = BTreeMap::new();
        let mut folded = BTreeMap::new();
        for (name, value) in top.optional_map("functions")? {
            let function = parse_function(root, &name, &value, &layers, &deploy)?;
            check_case_unique(&format!("{TABLE}.functions"), &name, &mut folded)?;
            functions.insert(name, function);
        }
        top.finish()?;
        Ok(Config {
            root: root.to_path_buf(),
            target_dir: root.join("target"),
            runtime,
            arch,
            builder,
            image,
            runner: RunnerChoice::FollowBuilder,
            exclude,
            bytecode,
            slim,
            budget,
            import_budget_ms,
            events,
            remote_cache,
            log_retention_days: deploy.log_retention_days,
            layers,
            functions,
        })
    }

    pub fn dist_dir(&self) -> PathBuf {
        self.root.join("dist")
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dist_dir().join("manifest.json")
    }

    /// `dist/report.html`: written with the manifest, after the checks.
    pub fn report_path(&self) -> PathBuf {
        self.dist_dir().join("report.html")
    }

    /// Everything this tool keeps between runs; `cargo clean` removes it.
    pub fn cache_dir(&self) -> PathBuf {
        self.target_dir.join(CACHE_DIR)
    }

    /// The budget that applies to one function: its own, else the repository's.
    /// The layers with every profile after the profiles it is stacked on
    /// (the configuration refuses cycles), otherwise by name.
    pub fn stack_order(&self) -> Vec<&Layer> {
        let mut ordered: Vec<&Layer> = Vec::new();
        let mut left: Vec<&Layer> = self.layers.values().collect();
        while !left.is_empty() {
            let ready = left
                .iter()
                .position(|layer| {
                    layer
                        .base
                        .iter()
                        .all(|base| ordered.iter().any(|done| &done.name == base))
                })
                .unwrap_or(0);
            ordered.push(left.remove(ready));
        }
        ordered
    }

    /// The repository's runtime and architecture.
    pub fn default_platform(&self) -> Platform {
        Platform {
            runtime: self.runtime,
            arch: self.arch,
        }
    }

    /// A function's own runtime and architecture, or the repository's.
    pub fn platform_of(&self, function: &Function) -> Platform {
        Platform {
            runtime: function.runtime.unwrap_or(self.runtime),
            arch: function.arch.unwrap_or(self.arch),
        }
    }

    /// The configuration as a step for `platform` sees it: its runtime and
    /// architecture, and the default image for them unless one is set.
    pub fn at(&self, platform: Platform) -> Config {
        let mut config = self.clone();
        if config.image == self.runtime.default_image(self.arch) {
            config.image = platform.runtime.default_image(platform.arch);
        }
        config.runtime = platform.runtime;
        config.arch = platform.arch;
        config
    }

    /// The platforms of the functions that attach (or bundle) `layer`, the
    /// repository's when none does.
    pub fn layer_platforms(&self, layer: &str) -> Vec<Platform> {
        let mut platforms: Vec<Platform> = self
            .functions
            .values()
            .filter(|function| function.layers.iter().any(|name| name == layer))
            .map(|function| self.platform_of(function))
            .collect();
        platforms.sort();
        platforms.dedup();
        if platforms.is_empty() {
            platforms.push(self.default_platform());
        }
        platforms
    }

    /// The name of a dependency profile's build for `platform`: the layer's
    /// own name on the repository's platform, `core@python3.12-arm64` on
    /// another (`@` is not allowed in configured names).
    pub fn variant(&self, layer: &str, platform: Platform) -> String {
        if platform == self.default_platform() {
            layer.to_string()
        } else {
            format!("{layer}@{}", platform.label())
        }
    }

    /// The layer a function attaches under `name`, by the name it is built
    /// under: a dependency profile's build for the function's platform.
    pub fn attached(&self, function: &Function, name: &str) -> String {
        match self.layers.get(name).map(|layer| &layer.source) {
            Some(LayerSource::Requirements(_)) => self.variant(name, self.platform_of(function)),
            _ => name.to_string(),
        }
    }

    pub fn budget_for(&self, function: &Function) -> Option<u64> {
        function.budget.or(self.budget)
    }
}

fn parse_layer(root: &Path, name: &str, value: &Value) -> Result<Layer, String> {
    let key = format!("{TABLE}.layers.{name}");
    check_name(&key, name)?;
    let mut table = Table::new(&key, value)?;
    let requirements = table.optional_str("requirements")?;
    let source = table.optional_str("source")?;
    let arn = table.optional_str("arn")?;
    let unzipped_size = table.optional_size("unzipped_size", &UNZIPPED_LIMIT)?;
    let allow = table.optional_str_list("allow")?.unwrap_or_default();
    let base = table.optional_str_list("base")?.unwrap_or_default();
    let slim = table.optional_bool("slim")?;
    table.finish()?;
    if !base.is_empty() && requirements.is_none() {
        return Err(format!(
            "{key}.base: only a dependency profile (`requirements`) is stacked on others; remove it"
        ));
    }
    if slim.is_some() && requirements.is_none() {
        return Err(format!(
            "{key}.slim: only a dependency profile (`requirements`) is slimmed; remove it"
        ));
    }
    let source = match (requirements, source, arn) {
        (Some(path), None, None) => {
            let path = existing_path(root, &format!("{key}.requirements"), &path, false)?;
            LayerSource::Requirements(path)
        }
        (None, Some(path), None) => {
            LayerSource::Source(existing_path(root, &format!("{key}.source"), &path, true)?)
        }
        (None, None, Some(arn)) => {
            if !arn.starts_with("arn:") || !arn.contains(":layer:") {
                return Err(format!("{key}.arn: `{arn}` is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)"));
            }
            let unzipped_bytes = unzipped_size.ok_or_else(|| {
                format!("{key}.unzipped_size: missing (an external layer must declare its unzipped size, e.g. \"80 MiB\", so that limits can be checked)")
            })?;
            return Ok(Layer {
                name: name.to_string(),
                source: LayerSource::External { arn, unzipped_bytes },
                allow,
                base,
                slim,
            });
        }
        (None, None, None) => {
            return Err(format!(
                "{key}: a layer needs one of `requirements`, `source` or `arn`"
            ))
        }
        _ => {
            return Err(format!(
                "{key}: set exactly one of `requirements`, `source` or `arn`, not several"
            ))
        }
    };
    if unzipped_size.is_some() {
        return Err(format!(
            "{key}.unzipped_size: only an external (`arn`) layer declares its size; remove it"
        ));
    }
    Ok(Layer {
        name: name.to_string(),
        source,
        allow,
        base,
        slim,
    })
}

/// Each `base` names another dependency profile, and no profile stands on
/// itself, however far down.
fn check_bases(layers: &BTreeMap<String, Layer>) -> Result<(), String> {
    for layer in layers.values() {
        let key = format!("{TABLE}.layers.{}.base", layer.name);
        for base in &layer.base {
            match layers.get(base).map(|base| &base.source) {
                Some(LayerSource::Requirements(_)) => {}
                Some(_) => {
                    return Err(format!(
                        "{key}: `{base}` is not a dependency profile (`requirements`)"
                    ))
                }
                None => {
                    return Err(format!(
                        "{key}: unknown layer `{base}` (define [{TABLE}.layers.{base}])"
                    ))
                }
            }
        }
        let mut seen = vec![layer.name.as_str()];
        let mut queue: Vec<&str> = layer.base.iter().map(String::as_str).collect();
        while let Some(next) = queue.pop() {
            if next == layer.name {
                return Err(format!(
                    "{key}: `{}` ends up stacked on itself (through {})",
                    layer.name,
                    seen.join(" → ")
                ));
            }
            if !seen.contains(&next) {
                seen.push(next);
                queue.extend(layers[next].base.iter().map(String::as_str));
            }
        }
    }
    Ok(())
}

/// Every profile a profile stands on, nearest first.
pub fn bases_of<'a>(layers: &'a BTreeMap<String, Layer>, name: &str) -> Vec<&'a str> {
    let mut all: Vec<&str> = Vec::new();
    let mut queue: Vec<&str> = layers
        .get(name)
        .map(|layer| layer.base.iter().map(String::as_str).collect())
        .unwrap_or_default();
    queue.reverse();
    while let Some(next) = queue.pop() {
        if !all.contains(&next) {
            all.push(next);
            let mut more: Vec<&str> = layers[next].base.iter().map(String::as_str).collect();
            more.reverse();
            queue.extend(more);
        }
    }
    all
}

fn parse_function(
    root: &Path,
    name: &str,
    value: &Value,
    layers: &BTreeMap<String, Layer>,
    defaults: &Deploy,
) -> Result<Function, String> {
    let key = format!("{TABLE}.functions.{name}");
    check_name(&key, name)?;
    let mut table = Table::new(&key, value)?;
    let source = table.optional_str("source")?.ok_or_else(|| {
        format!("{key}.source: missing (the folder holding the handler, e.g. \"lambdas/{name}\")")
    })?;
    let source = existing_path(root, &format!("{key}.source"), &source, true)?;
    let handler = table
        .optional_str("handler")?
        .ok_or_else(|| format!("{key}.handler: missing (e.g. \"{name}_handler.lambda_handler\")"))?;
    let valid_handler = handler.rsplit_once('.').is_some_and(|(module, function)| {
        !function.is_empty() && module.split('.').chain([function]).all(is_identifier)
    });
    if !valid_handler {
        return Err(format!(
            "{key}.handler: `{handler}` is not `module.function` (e.g. \"{name}_handler.lambda_handler\")"
        ));
    }
    let function_layers = table.optional_str_list("layers")?.unwrap_or_default();
    for layer in &function_layers {
        if !layers.contains_key(layer) {
            let known: Vec<_> = layers.keys().map(String::as_str).collect();
            return Err(format!(
                "{key}.layers: unknown layer `{layer}` (define [{TABLE}.layers.{layer}] or use one of: {})",
                known.join(", ")
            ));
        }
        if function_layers.iter().filter(|other| *other == layer).count() > 1 {
            return Err(format!("{key}.layers: `{layer}` is listed twice"));
        }
    }
    for (at, layer) in function_layers.iter().enumerate() {
        for base in bases_of(layers, layer) {
            if !function_layers[..at].iter().any(|earlier| earlier == base) {
                return Err(format!(
                    "{key}.layers: `{layer}` is stacked on `{base}` and ships without what `{base}` provides: attach `{base}` before `{layer}`"
                ));
            }
        }
    }
    if function_layers.len() > facts::MAX_LAYERS {
        return Err(format!(
            "{key}.layers: {} layers, but Lambda attaches at most {} (merge profiles or set bundle = true)",
            function_layers.len(),
            facts::MAX_LAYERS
        ));
    }
    let budget = table.optional_size("budget", &UNZIPPED_LIMIT)?;
    let bundle = table.optional_bool("bundle")?.unwrap_or(false);
    let allow = table.optional_str_list("allow")?.unwrap_or_default();
    let runtime = match table.optional_str("runtime")? {
        None => None,
        Some(name) => Some(Runtime::find(&name).ok_or_else(|| {
            let known: Vec<_> = facts::RUNTIMES.iter().map(|r| r.name).collect();
            format!(
                "{key}.runtime: unknown runtime `{name}` (use one of: {})",
                known.join(", ")
            )
        })?),
    };
    let arch = match table.optional_str("architecture")? {
        None => None,
        Some(name) => Some(Arch::parse(&name).ok_or_else(|| {
            format!("{key}.architecture: unknown architecture `{name}` (use x86_64 or arm64)")
        })?),
    };
    let deploy = deploy::function(&mut table, defaults)?;
    table.finish()?;
    Ok(Function {
        name: name.to_string(),
        source,
        handler,
        layers: function_layers,
        budget,
        bundle,
        allow,
        deploy,
        runtime,
        arch,
    })
}

fn check_name(key: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{key}: the name may hold only letters, digits, `-` and `_` (at most 64)"
        ))
    }
}

/// Names that differ only in case would give files that collide on a
/// case-insensitive file system (`dist/layers/Core.zip`, `core.zip`).
/// `folded` maps each lowercased name seen so far to its spelling.
fn check_case_unique(key: &str, name: &str, folded: &mut BTreeMap<String, String>) -> Result<(), String> {
    match folded.insert(name.to_ascii_lowercase(), name.to_string()) {
        Some(other) => Err(format!(
            "{key}.{name}: differs from `{other}` only in case (their files would collide in dist/): rename one"
        )),
        None => Ok(()),
    }
}

fn is_identifier(part: &str) -> bool {
    let mut chars = part.chars();
    chars
        .next()
        .is_some_and(|ch| ch == '_' || ch.is_ascii_alphabetic())
        && chars.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

/// A path relative to the workspace root that must exist.
fn existing_path(root: &Path, key: &str, path: &str, want_dir: bool) -> Result<PathBuf, String> {
    let relative = PathBuf::from(path);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(format!(
            "{key}: `{path}` must be a path inside the repository, relative to its root"
        ));
    }
    let full = root.join(&relative);
    let ok = if want_dir { full.is_dir() } else { full.is_file() };
    if !ok {
        let what = if want_dir { "directory" } else { "file" };
        return Err(format!(
            "{key}: {path} does not exist or is not a {what} (create it or fix the path)"
        ));
    }
    Ok(relative)
}
