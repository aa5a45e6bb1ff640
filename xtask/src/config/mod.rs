//! The configuration wing: the repository as its team declares it and as
//! a build declares it to Terraform. Imports the store wing and the
//! ground floor.
//!
//! - this file: the configuration's types, and what a build asks of them;
//! - `api`: the HTTP API in front of the functions (routes, authorizer);
//! - `load`: reading and validating `[workspace.metadata.lambda]` into them,
//!   with `table` (strict typed getters), `deploy` (how Lambda runs a
//!   function), `routes` (the API's keys) and `workspace` (cargo's metadata);
//! - `audit`: what `cargo xtask audit` holds a build to (`[audit]`);
//! - `manifest`: `dist/manifest.json`, what was built.
//!
//! `[workspace.metadata.lambda]` of the root `Cargo.toml`, read into typed
//! structs. Strict: an unknown key or a bad value is a usage error that names
//! the key and says how to fix it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::facts::{Arch, Runtime};
use crate::store::registry::Reference;
use crate::store::remote_cache::Settings as RemoteSettings;

pub mod api;
pub mod audit;
mod deploy;
#[cfg(test)]
mod design_doc;
pub mod licenses;
pub mod lifecycle;
mod load;
pub mod manifest;
mod routes;
mod table;
mod workspace;

pub use deploy::Deploy;

#[cfg(test)]
pub(crate) use table::asked_log;

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
    /// Its own `licenses`, with the repository's (`Config::license_policy`).
    pub licenses: Option<licenses::LicensePolicy>,
    pub allow: Vec<String>,
    /// Memory, timeout, environment and the rest of what Lambda runs it with.
    pub deploy: Deploy,
    /// Its own runtime and architecture, instead of the repository's.
    pub runtime: Option<Runtime>,
    pub arch: Option<Arch>,
    /// How it ships: a ZIP with layers attached, or a container image.
    pub package: Package,
    /// `allow_deprecated_runtime`, its own else the repository's: built even
    /// when AWS no longer lets anyone update a function on its runtime.
    pub allow_deprecated_runtime: bool,
}

/// How a function ships (`package`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Package {
    /// A ZIP, its layers attached by Lambda.
    #[default]
    Zip,
    /// A container image: the base, then one image layer per layer it
    /// would attach, then its code.
    Image(ImageSpec),
}

/// An image function's base and where `push` puts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// `image_base`: its own, else the repository's, else AWS's base image
    /// for its runtime (`facts::default_image_base`). A tag is pinned by
    /// digest in `images.lock` by `cargo xtask lock`.
    pub base: Reference,
    /// `image_repository` (its own, else the repository's) with the
    /// function's name under it: `<registry>/<path>/<function>`.
    pub repository: Option<Reference>,
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
    /// The licences every function may ship (`licenses`).
    pub licenses: licenses::LicensePolicy,
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
    /// The HTTP API in front of the functions (each function's `routes` and
    /// `authorize`, `[api]`): deployed from the manifest, served by `serve`.
    pub api: api::Api,
    /// `[audit]`: the severity `audit` fails at and the advisories it lets pass.
    pub audit: audit::Audit,
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

    /// What `audit` last found: written by `audit` only, kept by every run.
    pub fn audit_path(&self) -> PathBuf {
        self.dist_dir().join("audit.json")
    }

    /// Everything this tool keeps between runs; `cargo clean` removes it.
    pub fn cache_dir(&self) -> PathBuf {
        self.target_dir.join(CACHE_DIR)
    }

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
    /// The licence policy that applies to `function`.
    pub fn license_policy(&self, function: &Function) -> licenses::LicensePolicy {
        licenses::LicensePolicy::for_function(&self.licenses, function.licenses.as_ref())
    }

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

    /// The budget that applies to one function: its own, else the repository's.
    pub fn budget_for(&self, function: &Function) -> Option<u64> {
        function.budget.or(self.budget)
    }
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

/// The most the cache every repository of the user shares may hold:
/// `XTASK_CACHE_MAX` as a size, else 2 GiB. A value that is no size is
/// refused (exit 2).
pub fn user_cache_bound() -> anyhow::Result<u64> {
    use crate::store::user_cache::{DEFAULT_MAX_BYTES, MAX_VARIABLE};
    let Ok(value) = std::env::var(MAX_VARIABLE) else {
        return Ok(DEFAULT_MAX_BYTES);
    };
    match parse_bytes(&value) {
        Some(bytes) => Ok(bytes),
        None => Err(crate::ground::error::UsageError::new(format!(
            "{MAX_VARIABLE}={value} is not a size (write it as \"2 GiB\", \"500 MB\" or a number of bytes)"
        ))
        .into()),
    }
}

/// A size as people write it (`"2 GiB"`, `"500 MB"`, `"1.5KiB"`, a plain
/// number of bytes), when it is one that fits in 64 bits.
pub fn parse_bytes(text: &str) -> Option<u64> {
    table::parse_size(text)
        .filter(|bytes| *bytes <= u64::MAX as f64)
        .map(|bytes| bytes as u64)
}
