//! Reading `[workspace.metadata.lambda]` into a [`Config`]: from cargo's
//! metadata, with the command line's overrides and the environment's
//! remote cache, and validated key by key. Every error is a usage error
//! that names the key and how to fix it; keys are read in the order the
//! table documents them, so the first problem reported is the same one
//! every time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use super::manifest::{IMAGE_BASE_LAYER, IMAGE_FUNCTION_LAYER};
use super::routes::{self, Declared};
use super::table::{Limit, Table};
use super::workspace::Workspace;
use super::{
    bases_of, deploy, BuilderChoice, Bytecode, Config, Deploy, Function, ImageSpec, Layer, LayerSource,
    Overrides, Package, RunnerChoice, DEFAULT_EVENTS, TABLE,
};
use crate::facts::{self, Arch, Runtime};
use crate::ground::error::UsageError;
use crate::store::registry::Reference;
use crate::store::remote_cache::{Mode as RemoteMode, Settings as RemoteSettings};

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

/// An image function's own budget: nothing bigger than Lambda's image
/// limit can deploy (the ZIP limit does not apply to an image).
const IMAGE_LIMIT: Limit = Limit {
    max: facts::MAX_IMAGE_BYTES,
    why: "Lambda's limit for a container image, all its layers uncompressed",
};

/// What a function's image keys fall back to: the repository's runtime and
/// its `image_base` and `image_repository`.
struct ImageDefaults {
    runtime: Runtime,
    base: Option<Reference>,
    repository: Option<Reference>,
}

/// What a function's keys fall back to beside those of `Deploy` and
/// `ImageDefaults`: the repository's `allow_deprecated_runtime`.
struct FunctionDefaults {
    allow_deprecated_runtime: bool,
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
        let runtime = find_runtime(&format!("{TABLE}.runtime"), &top.required_str("runtime")?)?;
        let function_defaults = FunctionDefaults {
            allow_deprecated_runtime: top.optional_bool("allow_deprecated_runtime")?.unwrap_or(false),
        };
        let arch = match top.optional_str("architecture")? {
            None => Arch::X86_64,
            Some(name) => find_arch(&format!("{TABLE}.architecture"), &name)?,
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
        let image_defaults = ImageDefaults {
            runtime,
            base: image_base(&mut top)?,
            repository: image_repository(&mut top)?,
        };
        let exclude = exclude(&mut top)?;
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
        let remote_cache = remote_cache(&mut top)?;
        let licenses = super::licenses::LicensePolicy::read(&mut top)?.unwrap_or_default();
        let layers = layers(root, &mut top)?;
        let defaults = (&deploy, &image_defaults, &function_defaults);
        let (functions, declared) = functions(root, &mut top, &layers, defaults)?;
        let api = routes::api(&mut top, &declared)?;
        let audit = super::audit::audit(&mut top)?;
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
            licenses,
            events,
            remote_cache,
            log_retention_days: deploy.log_retention_days,
            layers,
            functions,
            api,
            audit,
        })
    }
}

/// `runtime` at `key`: one of the runtimes the tool knows.
fn find_runtime(key: &str, name: &str) -> Result<Runtime, String> {
    Runtime::find(name).ok_or_else(|| {
        let known: Vec<_> = facts::RUNTIMES.iter().map(|r| r.name).collect();
        format!(
            "{key}: unknown runtime `{name}` (use one of: {})",
            known.join(", ")
        )
    })
}

/// `architecture` at `key`.
fn find_arch(key: &str, name: &str) -> Result<Arch, String> {
    Arch::parse(name).ok_or_else(|| format!("{key}: unknown architecture `{name}` (use x86_64 or arm64)"))
}

/// `exclude`, normalised, sorted and without repeats; the runtime's own
/// distributions when it is not set.
fn exclude(top: &mut Table) -> Result<Vec<String>, String> {
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
    Ok(exclude)
}

/// `remote_cache_mode` and `remote_cache`.
fn remote_cache(top: &mut Table) -> Result<Option<RemoteSettings>, String> {
    let remote_mode = match top.optional_str("remote_cache_mode")? {
        None => RemoteMode::ReadWrite,
        Some(name) => RemoteMode::parse(&name).ok_or_else(|| {
            format!("{TABLE}.remote_cache_mode: unknown mode `{name}` (use read-write or read-only)")
        })?,
    };
    Ok(match top.optional_str("remote_cache")? {
        None => None,
        Some(url) => Some(RemoteSettings::parse(
            &format!("{TABLE}.remote_cache"),
            &url,
            remote_mode,
        )?),
    })
}

/// `[layers.*]`, each valid, their names distinct in any case, and their
/// `base`s dependency profiles without a cycle.
fn layers(root: &Path, top: &mut Table) -> Result<BTreeMap<String, Layer>, String> {
    let mut layers = BTreeMap::new();
    let mut folded = BTreeMap::new();
    for (name, value) in top.optional_map("layers")? {
        let layer = parse_layer(root, &name, &value)?;
        check_case_unique(&format!("{TABLE}.layers"), &name, &mut folded)?;
        layers.insert(name, layer);
    }
    check_bases(&layers)?;
    Ok(layers)
}

/// What every function's keys fall back to.
type Defaults<'a> = (&'a Deploy, &'a ImageDefaults, &'a FunctionDefaults);

/// The functions and the routes each declares.
type Functions = (BTreeMap<String, Function>, BTreeMap<String, Vec<Declared>>);

/// `[functions.*]`, each valid against the layers, their names distinct
/// in any case; and the routes each declares, for the API.
fn functions(
    root: &Path,
    top: &mut Table,
    layers: &BTreeMap<String, Layer>,
    defaults: Defaults,
) -> Result<Functions, String> {
    let mut functions = BTreeMap::new();
    let mut declared = BTreeMap::new();
    let mut folded = BTreeMap::new();
    for (name, value) in top.optional_map("functions")? {
        let (function, routes) = parse_function(root, &name, &value, layers, defaults)?;
        check_case_unique(&format!("{TABLE}.functions"), &name, &mut folded)?;
        functions.insert(name.clone(), function);
        declared.insert(name, routes);
    }
    Ok((functions, declared))
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

fn parse_function(
    root: &Path,
    name: &str,
    value: &Value,
    layers: &BTreeMap<String, Layer>,
    (defaults, images, function_defaults): Defaults,
) -> Result<(Function, Vec<Declared>), String> {
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
    check_handler(&key, name, &handler)?;
    let is_image = match table.optional_str("package")?.as_deref() {
        None | Some("zip") => false,
        Some("image") => true,
        Some(other) => {
            return Err(format!(
                "{key}.package: unknown package `{other}` (use \"zip\" or \"image\")"
            ))
        }
    };
    let function_layers = table.optional_str_list("layers")?.unwrap_or_default();
    check_function_layers(&key, &function_layers, layers, is_image)?;
    let budget_limit = if is_image { &IMAGE_LIMIT } else { &UNZIPPED_LIMIT };
    let budget = table.optional_size("budget", budget_limit)?;
    let bundle = table.optional_bool("bundle")?.unwrap_or(false);
    if bundle && is_image {
        return Err(format!(
            "{key}.bundle: an image holds its layers as image layers, there is nothing to bundle: remove `bundle`"
        ));
    }
    let allow = table.optional_str_list("allow")?.unwrap_or_default();
    let licenses = super::licenses::LicensePolicy::read(&mut table)?;
    let runtime = match table.optional_str("runtime")? {
        None => None,
        Some(name) => Some(find_runtime(&format!("{key}.runtime"), &name)?),
    };
    let allow_deprecated_runtime = table
        .optional_bool("allow_deprecated_runtime")?
        .unwrap_or(function_defaults.allow_deprecated_runtime);
    let arch = match table.optional_str("architecture")? {
        None => None,
        Some(name) => Some(find_arch(&format!("{key}.architecture"), &name)?),
    };
    let image_base = image_base(&mut table)?;
    let image_repository = image_repository(&mut table)?;
    let package = if is_image {
        let runtime = runtime.unwrap_or(images.runtime);
        Package::Image(image_spec(
            &key,
            name,
            runtime,
            image_base,
            image_repository,
            images,
        )?)
    } else {
        for (set, what) in [
            (image_base.is_some(), "image_base"),
            (image_repository.is_some(), "image_repository"),
        ] {
            if set {
                return Err(format!(
                    "{key}.{what}: only an image function has one, and `{name}` is a ZIP: set `package = \"image\"` or remove `{what}`"
                ));
            }
        }
        Package::Zip
    };
    let deploy = deploy::function(&mut table, defaults)?;
    let routes = routes::function(&mut table)?;
    table.finish()?;
    let function = Function {
        name: name.to_string(),
        source,
        handler,
        layers: function_layers,
        budget,
        bundle,
        licenses,
        allow,
        deploy,
        runtime,
        arch,
        package,
        allow_deprecated_runtime,
    };
    Ok((function, routes))
}

/// `image_base` of `table`: an image reference, by tag or by digest.
fn image_base(table: &mut Table) -> Result<Option<Reference>, String> {
    let path = table.path("image_base");
    match table.optional_str("image_base")? {
        None => Ok(None),
        Some(text) => Reference::parse(&text)
            .map(Some)
            .map_err(|err| format!("{path}: {err} (e.g. \"public.ecr.aws/lambda/python:3.12\")")),
    }
}

/// `image_repository` of `table`: a repository, named without tag or
/// digest (`push` names each image by its digest, under the function's name).
fn image_repository(table: &mut Table) -> Result<Option<Reference>, String> {
    let path = table.path("image_repository");
    let example = "e.g. \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app\"";
    let Some(text) = table.optional_str("image_repository")? else {
        return Ok(None);
    };
    let repository = Reference::parse(&text).map_err(|err| format!("{path}: {err} ({example})"))?;
    if repository.tag.is_some() || repository.digest.is_some() {
        return Err(format!(
            "{path}: `{text}` names an image, not a repository: remove its tag or digest (each function is pushed to `<repository>/<function>` by its digest; {example})"
        ));
    }
    Ok(Some(repository))
}

/// An image function's base (its own `image_base`, else the repository's,
/// else AWS's for its runtime) and repository (its own `image_repository`,
/// else the repository's, with its name under it).
fn image_spec(
    key: &str,
    name: &str,
    runtime: Runtime,
    base: Option<Reference>,
    repository: Option<Reference>,
    images: &ImageDefaults,
) -> Result<ImageSpec, String> {
    let base = match base.or_else(|| images.base.clone()) {
        Some(base) => base,
        None => Reference::parse(&facts::default_image_base(runtime)).map_err(|err| {
            format!("{key}: the default base image is not a reference: {err} (set `image_base`)")
        })?,
    };
    let repository = match repository.or_else(|| images.repository.clone()) {
        None => None,
        Some(repository) => {
            let child = repository.child(name);
            Reference::parse(&child.to_string()).map_err(|_| {
                format!(
                    "{key}: `{name}` cannot name a repository under `{repository}` (`push` puts it at `{child}`; a repository's parts are lowercase letters and digits joined by `.`, `_` or `-`): rename the function"
                )
            })?;
            Some(child)
        }
    };
    Ok(ImageSpec { base, repository })
}

/// A handler is `module.function`, each part a Python identifier.
fn check_handler(key: &str, name: &str, handler: &str) -> Result<(), String> {
    let valid_handler = handler.rsplit_once('.').is_some_and(|(module, function)| {
        !function.is_empty() && module.split('.').chain([function]).all(is_identifier)
    });
    if !valid_handler {
        return Err(format!(
            "{key}.handler: `{handler}` is not `module.function` (e.g. \"{name}_handler.lambda_handler\")"
        ));
    }
    Ok(())
}

/// A function's layers: each defined and listed once, every profile a
/// layer is stacked on attached before it, and no more than Lambda attaches
/// (an image holds any number, but none attached by ARN).
fn check_function_layers(
    key: &str,
    function_layers: &[String],
    layers: &BTreeMap<String, Layer>,
    is_image: bool,
) -> Result<(), String> {
    for layer in function_layers {
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
        if is_image && [IMAGE_BASE_LAYER, IMAGE_FUNCTION_LAYER].contains(&layer.as_str()) {
            return Err(format!(
                "{key}.layers: an image names its base's layers and its code `{IMAGE_BASE_LAYER}` and `{IMAGE_FUNCTION_LAYER}`, so a layer of an image cannot be named `{layer}`: rename the layer"
            ));
        }
        if is_image && matches!(layers[layer].source, LayerSource::External { .. }) {
            return Err(format!(
                "{key}.layers: `{layer}` is an external (`arn`) layer, and an image cannot attach Lambda layers: build its content here (a `requirements` or `source` layer) or use a ZIP function"
            ));
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
    if function_layers.len() > facts::MAX_LAYERS && !is_image {
        return Err(format!(
            "{key}.layers: {} layers, but Lambda attaches at most {} (merge profiles, set bundle = true or package = \"image\")",
            function_layers.len(),
            facts::MAX_LAYERS
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A repository with the functions `functions` (each in `lambdas/<name>`),
    /// the layers `core` (a profile) and `ext` (external), and `top` merged in.
    fn parse(top: Value, functions: Value) -> Result<Config, String> {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("layers/core")).unwrap();
        std::fs::write(root.path().join("layers/core/requirements.txt"), "").unwrap();
        let mut value = json!({
            "runtime": "python3.11",
            "layers": {
                "core": {"requirements": "layers/core/requirements.txt"},
                "ext": {"arn": "arn:aws:lambda:us-east-1:123456789012:layer:x:1", "unzipped_size": "1 MiB"},
            },
        });
        for (name, table) in functions.as_object().unwrap() {
            std::fs::create_dir_all(root.path().join("lambdas").join(name)).unwrap();
            let mut table = table.clone();
            table["source"] = json!(format!("lambdas/{name}"));
            table["handler"] = json!("app.lambda_handler");
            value["functions"][name] = table;
        }
        for (key, setting) in top.as_object().unwrap() {
            value[key] = setting.clone();
        }
        Config::from_value(root.path(), &value)
    }

    fn image(config: &Config, function: &str) -> ImageSpec {
        match &config.functions[function].package {
            Package::Image(spec) => spec.clone(),
            Package::Zip => panic!("{function} is a ZIP"),
        }
    }

    #[test]
    fn a_function_is_a_zip_unless_it_says_image() {
        let config = parse(json!({}), json!({"a": {}, "b": {"package": "zip"}})).unwrap();
        assert_eq!(config.functions["a"].package, Package::Zip);
        assert_eq!(config.functions["b"].package, Package::Zip);
    }

    #[test]
    fn an_image_stands_on_aws_base_for_its_own_runtime_unless_a_base_is_set() {
        let config = parse(
            json!({}),
            json!({
                "a": {"package": "image"},
                "b": {"package": "image", "runtime": "python3.12"},
            }),
        )
        .unwrap();
        assert_eq!(
            image(&config, "a").base.to_string(),
            "public.ecr.aws/lambda/python:3.11"
        );
        assert_eq!(
            image(&config, "b").base.to_string(),
            "public.ecr.aws/lambda/python:3.12"
        );
        assert_eq!(image(&config, "a").repository, None);

        let digest = format!("sha256:{}", "ab".repeat(32));
        let config = parse(
            json!({"image_base": "127.0.0.1:5000/base/python:3.11", "image_repository": "127.0.0.1:5000/app"}),
            json!({
                "a": {"package": "image", "layers": ["core"]},
                "b": {
                    "package": "image",
                    "image_base": format!("registry.example.com/py@{digest}"),
                    "image_repository": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team",
                },
                "c": {},
            }),
        )
        .unwrap();
        let a = image(&config, "a");
        assert_eq!(a.base.to_string(), "127.0.0.1:5000/base/python:3.11");
        assert_eq!(a.repository.unwrap().to_string(), "127.0.0.1:5000/app/a");
        let b = image(&config, "b");
        assert_eq!(b.base.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(
            b.repository.unwrap().to_string(),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/b"
        );
        assert_eq!(
            config.functions["c"].package,
            Package::Zip,
            "globals apply to images only"
        );
    }

    #[test]
    fn an_image_holds_more_than_five_layers_and_a_budget_past_the_zip_limit() {
        let mut layers = json!({});
        let mut names = Vec::new();
        for index in 0..7 {
            layers[format!("l{index}")] = json!({"requirements": "layers/core/requirements.txt"});
            names.push(format!("l{index}"));
        }
        let functions = json!({"a": {"package": "image", "layers": names, "budget": "2 GiB"}});
        let config = parse(json!({"layers": layers}), functions).unwrap();
        assert_eq!(config.functions["a"].layers.len(), 7);
        assert_eq!(config.functions["a"].budget, Some(2 << 30));
        let functions = json!({"a": {"package": "image", "budget": "11 GiB"}});
        let err = parse(json!({}), functions).unwrap_err();
        assert!(
            err.contains("functions.a.budget: `11 GiB` is more than 10737418240 bytes"),
            "{err}"
        );
    }

    #[test]
    fn image_keys_are_refused_where_they_cannot_apply() {
        let key = "workspace.metadata.lambda";
        for (top, functions, says) in [
            (json!({}), json!({"a": {"package": "docker"}}), format!("{key}.functions.a.package: unknown package `docker` (use \"zip\" or \"image\")")),
            (json!({"image_base": "Bad/Name"}), json!({}), format!("{key}.image_base: `Bad/Name`")),
            (json!({}), json!({"a": {"package": "image", "image_base": "x@sha256:12"}}), format!("{key}.functions.a.image_base: `x@sha256:12` has the digest")),
            (json!({"image_repository": "127.0.0.1:5000/app:v1"}), json!({}), format!("{key}.image_repository: `127.0.0.1:5000/app:v1` names an image, not a repository: remove its tag or digest")),
            (json!({}), json!({"a": {"image_base": "python:3.11"}}), format!("{key}.functions.a.image_base: only an image function has one, and `a` is a ZIP: set `package = \"image\"` or remove `image_base`")),
            (json!({}), json!({"a": {"image_repository": "127.0.0.1:5000/app"}}), format!("{key}.functions.a.image_repository: only an image function has one")),
            (json!({}), json!({"a": {"package": "image", "bundle": true}}), format!("{key}.functions.a.bundle: an image holds its layers as image layers")),
            (json!({}), json!({"a": {"package": "image", "layers": ["core", "ext"]}}), format!("{key}.functions.a.layers: `ext` is an external (`arn`) layer, and an image cannot attach Lambda layers: build its content here")),
            (json!({"layers": {"base": {"source": "lambdas/a"}}}), json!({"a": {"package": "image", "layers": ["base"]}}), format!("{key}.functions.a.layers: an image names its base's layers and its code `base` and `function`, so a layer of an image cannot be named `base`: rename the layer")),
            (json!({"image_repository": "127.0.0.1:5000/app"}), json!({"Big": {"package": "image"}}), format!("{key}.functions.Big: `Big` cannot name a repository under `127.0.0.1:5000/app`")),
        ] {
            let err = parse(top, functions).unwrap_err();
            assert!(err.starts_with(&says), "expected {says:?}, got {err:?}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
