//! `[workspace.metadata.lambda]` of the root `Cargo.toml`, read into typed
//! structs. Strict: an unknown key or a bad value is a usage error that names
//! the key and says how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use crate::facts::{self, Arch, Runtime};
use crate::UsageError;

const TABLE: &str = "workspace.metadata.lambda";

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

/// Whether layers ship `.pyc` files; only hash-based ones survive the fixed
/// ZIP timestamps (PEP 552).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bytecode {
    None,
    CheckedHash,
    UncheckedHash,
}

impl Bytecode {
    pub fn name(self) -> &'static str {
        match self {
            Bytecode::None => "none",
            Bytecode::CheckedHash => "checked-hash",
            Bytecode::UncheckedHash => "unchecked-hash",
        }
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
    /// Normalised distribution names left out of every dependency layer.
    pub exclude: Vec<String>,
    pub bytecode: Bytecode,
    pub budget: Option<u64>,
    pub import_budget_ms: u64,
    pub layers: BTreeMap<String, Layer>,
    pub functions: BTreeMap<String, Function>,
}

/// What the command line may override.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub arch: Option<Arch>,
    pub builder: Option<BuilderChoice>,
}

impl Config {
    /// Reads the configuration of the workspace around the current directory.
    pub fn load(overrides: &Overrides) -> Result<Config> {
        let metadata = cargo_metadata::MetadataCommand::new()
            .no_deps()
            .exec()
            .map_err(|err| UsageError::new(format!("cannot read the workspace: {err}")))?;
        let root = metadata.workspace_root.into_std_path_buf();
        let target_dir = metadata.target_directory.into_std_path_buf();
        let Some(table) = metadata.workspace_metadata.get("lambda") else {
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
        let bytecode = match top.optional_str("bytecode")?.as_deref() {
            None | Some("none") => Bytecode::None,
            Some("checked-hash") => Bytecode::CheckedHash,
            Some("unchecked-hash") => Bytecode::UncheckedHash,
            Some(other) => {
                return Err(format!(
                    "{TABLE}.bytecode: unknown mode `{other}` (use none, checked-hash or unchecked-hash)"
                ))
            }
        };
        let budget = top.optional_size("budget")?;
        let import_budget_ms = top
            .optional_duration_ms("import_budget")?
            .unwrap_or(facts::DEFAULT_IMPORT_BUDGET_MS);

        let mut layers = BTreeMap::new();
        for (name, value) in top.optional_map("layers")? {
            let layer = parse_layer(root, &name, &value)?;
            layers.insert(name, layer);
        }
        let mut functions = BTreeMap::new();
        for (name, value) in top.optional_map("functions")? {
            let function = parse_function(root, &name, &value, &layers)?;
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
            exclude,
            bytecode,
            budget,
            import_budget_ms,
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

    /// Everything this tool keeps between runs; `cargo clean` removes it.
    pub fn cache_dir(&self) -> PathBuf {
        self.target_dir.join("lambda")
    }

    /// The budget that applies to one function: its own, else the repository's.
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
    let unzipped_size = table.optional_size("unzipped_size")?;
    let allow = table.optional_str_list("allow")?.unwrap_or_default();
    table.finish()?;
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
    })
}

fn parse_function(
    root: &Path,
    name: &str,
    value: &Value,
    layers: &BTreeMap<String, Layer>,
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
    if function_layers.len() > facts::MAX_LAYERS {
        return Err(format!(
            "{key}.layers: {} layers, but Lambda attaches at most {} (merge profiles or set bundle = true)",
            function_layers.len(),
            facts::MAX_LAYERS
        ));
    }
    let budget = table.optional_size("budget")?;
    let bundle = table.optional_bool("bundle")?.unwrap_or(false);
    let allow = table.optional_str_list("allow")?.unwrap_or_default();
    table.finish()?;
    Ok(Function {
        name: name.to_string(),
        source,
        handler,
        layers: function_layers,
        budget,
        bundle,
        allow,
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

/// Parses `"50 MiB"`, `"1.5 MB"`, `"1000 B"` or a plain number of bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    Some((number * multiplier as f64).round() as u64)
}

/// Parses `"3 s"`, `"2.5s"` or `"500 ms"` into milliseconds.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000.0)
    } else {
        return None;
    };
    let value: f64 = number.trim().parse().ok()?;
    (value >= 0.0).then(|| (value * scale).round() as u64)
}

/// A metadata table being read: remembers its key path for messages and
/// rejects whatever keys are left unread.
struct Table {
    key: String,
    entries: Map<String, Value>,
}

impl Table {
    fn new(key: &str, value: &Value) -> Result<Table, String> {
        match value {
            Value::Object(entries) => Ok(Table {
                key: key.to_string(),
                entries: entries.clone(),
            }),
            _ => Err(format!("{key}: expected a table")),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.key)
    }

    fn optional_str(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.entries.remove(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format!("{}: expected a string, found {other}", self.path(name))),
        }
    }

    fn required_str(&mut self, name: &str) -> Result<String, String> {
        self.optional_str(name)?
            .ok_or_else(|| format!("{}: missing (e.g. {name} = \"python3.11\")", self.path(name)))
    }

    fn optional_bool(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.entries.remove(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(flag)),
            Some(other) => Err(format!(
                "{}: expected true or false, found {other}",
                self.path(name)
            )),
        }
    }

    fn optional_str_list(&mut self, name: &str) -> Result<Option<Vec<String>>, String> {
        match self.entries.remove(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    other => Err(format!(
                        "{}: expected a list of strings, found {other}",
                        self.path(name)
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(format!(
                "{}: expected a list of strings, found {other}",
                self.path(name)
            )),
        }
    }

    fn optional_size(&mut self, name: &str) -> Result<Option<u64>, String> {
        let path = self.path(name);
        let bad = |found: &dyn std::fmt::Display| {
            format!("{path}: `{found}` is not a size (e.g. \"50 MiB\"; units B, KB, MB, GB, KiB, MiB, GiB)")
        };
        match self.entries.remove(name) {
            None => Ok(None),
            Some(Value::String(text)) => parse_size(&text).map(Some).ok_or_else(|| bad(&text)),
            Some(Value::Number(number)) => number.as_u64().map(Some).ok_or_else(|| bad(&number)),
            Some(other) => Err(bad(&other)),
        }
    }

    fn optional_duration_ms(&mut self, name: &str) -> Result<Option<u64>, String> {
        match self.entries.remove(name) {
            None => Ok(None),
            Some(Value::String(text)) => parse_duration_ms(&text).map(Some).ok_or_else(|| {
                format!(
                    "{}: `{text}` is not a duration (e.g. \"3 s\" or \"500 ms\")",
                    self.path(name)
                )
            }),
            Some(other) => Err(format!(
                "{}: expected a duration such as \"3 s\", found {other}",
                self.path(name)
            )),
        }
    }

    fn optional_map(&mut self, name: &str) -> Result<Vec<(String, Value)>, String> {
        match self.entries.remove(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(entries)) => Ok(entries.into_iter().collect()),
            Some(_) => Err(format!("{}: expected a table", self.path(name))),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self.entries.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(format!(
                "{}: unknown key (remove it or check its spelling)",
                self.path(unknown)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_decimal_and_binary_units() {
        assert_eq!(parse_size("50 MiB"), Some(52_428_800));
        assert_eq!(parse_size("250MiB"), Some(262_144_000));
        assert_eq!(parse_size("1.5 MB"), Some(1_500_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size("MiB"), None);
    }

    #[test]
    fn durations_accept_seconds_and_milliseconds() {
        assert_eq!(parse_duration_ms("3 s"), Some(3000));
        assert_eq!(parse_duration_ms("2.5s"), Some(2500));
        assert_eq!(parse_duration_ms("500 ms"), Some(500));
        assert_eq!(parse_duration_ms("soon"), None);
    }
}
