//! `cargo xtask package`: source layers (shared application code, as
//! `python/<package>/…`) and one thin ZIP per function holding only its own
//! folder. Unchanged inputs are not re-zipped, so an unchanged artifact keeps
//! its bytes and its mtime.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::analyze::{self, HandlerRequest};
use crate::archive::{self, Content, Entry};
use crate::build_layers::human_bytes;
use crate::cache;
use crate::cli::Options;
use crate::config::{Config, Function, Layer, LayerSource};
use crate::digest::file_sha256;
use crate::facts;
use crate::manifest::{FunctionEntry, LayerEntry, LayerKind, Manifest, ZipFacts};
use crate::sources::{self, SourceFile};
use crate::{python, UsageError};

/// Bumped whenever the layout of the ZIPs changes.
const FORMAT_VERSION: &str = "1";

/// A function to package: its files and what else goes into its ZIP.
struct FunctionPlan<'a> {
    function: &'a Function,
    files: Vec<SourceFile>,
    bundled: Vec<Entry>,
    input_sha256: String,
    up_to_date: bool,
}

pub fn run(options: &Options, names: &[String]) -> Result<()> {
    let config = Config::load(&options.overrides)?;
    let selected = select(&config, names)?;
    let sh = Shell::new()?;
    sh.change_dir(&config.root);
    let mut manifest = Manifest::load_for(&config)?;
    manifest.retain_configured(&config);
    manifest.sync_external(&config);
    cache::sweep_temp(&config.dist_dir().join("layers"));
    cache::sweep_temp(&config.dist_dir().join("functions"));

    let mut written = Vec::new();
    for layer in config.layers.values() {
        if let LayerSource::Source(_) = &layer.source {
            let (files, prefix, input) = source_layer_inputs(&config, layer)?;
            let relative = format!("dist/layers/{}.zip", layer.name);
            let previous = manifest.layers.get(&layer.name);
            let current = previous.filter(|entry| {
                entry.input_sha256.as_deref() == Some(input.as_str())
                    && zip_matches(&config.root, entry.zip.as_deref(), entry.sha256.as_deref())
            });
            if options.dry_run {
                let state = if current.is_some() { "up-to-date" } else { "zip" };
                println!("layer\t{}\t{state}\t{relative}", layer.name);
                continue;
            }
            if current.is_some() {
                continue;
            }
            let zip = write(&config.root, &relative, sources::entries(&files, &prefix))?;
            manifest.layers.insert(
                layer.name.clone(),
                LayerEntry::built(LayerKind::Source, zip, input),
            );
            written.push(relative);
        }
    }

    let plans = plan_functions(&config, &manifest, &selected)?;
    check_handlers(&sh, &config, &plans)?;
    if options.dry_run {
        for plan in &plans {
            let state = if plan.up_to_date { "up-to-date" } else { "zip" };
            println!(
                "function\t{}\t{state}\tdist/functions/{}.zip",
                plan.function.name, plan.function.name
            );
        }
        return Ok(());
    }
    for plan in plans {
        if plan.up_to_date {
            continue;
        }
        let function = plan.function;
        let relative = format!("dist/functions/{}.zip", function.name);
        let mut entries = plan.bundled;
        // The function's own files win over bundled layer content, as
        // /var/task comes before /opt on sys.path.
        let own = sources::entries(&plan.files, "");
        entries.retain(|entry| !own.iter().any(|file| file.path == entry.path));
        entries.extend(own);
        let zip = write(&config.root, &relative, entries)?;
        let upload = if zip.zipped_bytes > facts::MAX_DIRECT_UPLOAD_BYTES {
            "s3"
        } else {
            "direct"
        };
        let (layers, bundled) = if function.bundle {
            (Vec::new(), function.layers.clone())
        } else {
            (function.layers.clone(), Vec::new())
        };
        manifest.functions.insert(
            function.name.clone(),
            FunctionEntry {
                zip,
                handler: function.handler.clone(),
                layers,
                bundled,
                upload: upload.to_string(),
                input_sha256: plan.input_sha256,
            },
        );
        written.push(relative);
    }
    manifest.write(&config.manifest_path())?;

    if options.json {
        let value = serde_json::json!({
            "layers": manifest.layers.iter().filter(|(_, entry)| entry.kind == LayerKind::Source).collect::<std::collections::BTreeMap<_, _>>(),
            "functions": manifest.functions,
            "written": written,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    if !options.quiet {
        print_summary(&config, &manifest, &written);
    }
    Ok(())
}

fn usage(err: anyhow::Error) -> anyhow::Error {
    UsageError::new(format!("{err:#}")).into()
}

fn select<'a>(config: &'a Config, names: &[String]) -> Result<Vec<&'a Function>> {
    if names.is_empty() {
        return Ok(config.functions.values().collect());
    }
    names
        .iter()
        .map(|name| {
            config.functions.get(name).ok_or_else(|| {
                let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
                UsageError::new(format!(
                    "unknown function `{name}` (configured: {})",
                    known.join(", ")
                ))
                .into()
            })
        })
        .collect()
}

fn plan_functions<'a>(
    config: &Config,
    manifest: &Manifest,
    selected: &[&'a Function],
) -> Result<Vec<FunctionPlan<'a>>> {
    let mut plans = Vec::new();
    for function in selected {
        let inputs = function_inputs(config, manifest, function)?;
        let up_to_date = manifest.functions.get(&function.name).is_some_and(|entry| {
            entry.input_sha256 == inputs.input_sha256
                && zip_matches(&config.root, Some(&entry.zip.zip), Some(&entry.zip.sha256))
        });
        plans.push(FunctionPlan {
            function,
            files: inputs.files,
            bundled: inputs.bundled,
            input_sha256: inputs.input_sha256,
            up_to_date,
        });
    }
    Ok(plans)
}

/// What goes into a function's ZIP, and the hash that identifies it.
pub struct FunctionInputs {
    pub files: Vec<SourceFile>,
    pub bundled: Vec<Entry>,
    pub input_sha256: String,
}

pub fn function_inputs(config: &Config, manifest: &Manifest, function: &Function) -> Result<FunctionInputs> {
    let key = format!("functions.{}.source", function.name);
    let files = sources::collect(&config.root, &function.source, &key, &function.allow).map_err(usage)?;
    if handler_file(function, &files).is_none() {
        let (module, _) = function.handler_parts();
        return Err(UsageError::new(format!(
            "functions.{}.handler: `{}` needs {}.py in {}, which is not there",
            function.name,
            function.handler,
            module.replace('.', "/"),
            function.source.display()
        ))
        .into());
    }
    let mut bundled = Vec::new();
    let mut extra = vec![
        ("format".to_string(), FORMAT_VERSION.to_string()),
        ("handler".to_string(), function.handler.clone()),
    ];
    if function.bundle {
        for name in &function.layers {
            let (entries, hash) = layer_content_for_bundle(config, manifest, &function.name, name)?;
            bundled.extend(entries);
            extra.push((format!("bundle:{name}"), hash));
        }
    }
    let extra: Vec<(&str, &str)> = extra.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let input_sha256 = sources::content_hash(&files, &extra)?;
    Ok(FunctionInputs {
        files,
        bundled,
        input_sha256,
    })
}

/// A source layer's files, the prefix they get (`python/<package>/`) and
/// the hash that identifies them.
pub fn source_layer_inputs(config: &Config, layer: &Layer) -> Result<(Vec<SourceFile>, String, String)> {
    let LayerSource::Source(dir) = &layer.source else {
        bail!("layer `{}` is not a source layer", layer.name);
    };
    let key = format!("layers.{}.source", layer.name);
    let files = sources::collect(&config.root, dir, &key, &layer.allow).map_err(usage)?;
    if files.is_empty() {
        return Err(UsageError::new(format!("{key}: {} holds no files to package", dir.display())).into());
    }
    let package = dir
        .file_name()
        .and_then(|name| name.to_str())
        .context("source layer folder name")?;
    let prefix = format!("python/{package}/");
    let input = sources::content_hash(&files, &[("format", FORMAT_VERSION), ("prefix", &prefix)])?;
    Ok((files, prefix, input))
}

/// A layer's files re-rooted for a function ZIP (`python/x` → `x`), and the
/// hash that identifies them.
fn layer_content_for_bundle(
    config: &Config,
    manifest: &Manifest,
    function: &str,
    name: &str,
) -> Result<(Vec<Entry>, String)> {
    let layer = &config.layers[name];
    match &layer.source {
        LayerSource::External { .. } => Err(UsageError::new(format!(
            "functions.{function}.bundle: layer `{name}` is external (an ARN) and cannot be bundled; attach it instead"
        ))
        .into()),
        LayerSource::Requirements(_) | LayerSource::Source(_) => {
            let entry = manifest.layers.get(name).filter(|entry| entry.zip.is_some()).with_context(|| {
                let command = if matches!(layer.source, LayerSource::Requirements(_)) { "build-layers" } else { "package" };
                format!("functions.{function}.bundle: layer `{name}` is not built yet: run cargo xtask {command} first")
            })?;
            let zip_path = config.root.join(entry.zip.as_deref().unwrap_or_default());
            let entries = archive::read_entries(&zip_path)?
                .into_iter()
                .filter_map(|(path, bytes, executable)| {
                    path.strip_prefix("python/").map(|rest| Entry {
                        path: rest.to_string(),
                        content: Content::Bytes(bytes),
                        executable,
                    })
                })
                .collect();
            Ok((entries, entry.sha256.clone().unwrap_or_default()))
        }
    }
}

/// The file of the handler's module: `a.b.f` → `a/b.py` or `a/b/__init__.py`.
fn handler_file<'a>(function: &Function, files: &'a [SourceFile]) -> Option<&'a SourceFile> {
    let (module, _) = function.handler_parts();
    let module_path = module.replace('.', "/");
    files.iter().find(|file| {
        file.relative == format!("{module_path}.py") || file.relative == format!("{module_path}/__init__.py")
    })
}

/// Parses each changed handler module and checks that it defines its handler.
fn check_handlers(sh: &Shell, config: &Config, plans: &[FunctionPlan]) -> Result<()> {
    let mut request = analyze::Request::default();
    for plan in plans.iter().filter(|plan| !plan.up_to_date) {
        let (_, name) = plan.function.handler_parts();
        let file = handler_file(plan.function, &plan.files).expect("checked while planning");
        request.handlers.push(HandlerRequest {
            key: plan.function.name.clone(),
            file: file.path.display().to_string(),
            name: name.to_string(),
        });
    }
    if request.handlers.is_empty() {
        return Ok(());
    }
    let python = python::find_interpreter(sh, config.runtime, None, &config.cache_dir())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let answer = analyze::run(sh, &python, &request)?;
    for plan in plans.iter().filter(|plan| !plan.up_to_date) {
        let function = plan.function;
        match answer.handlers.get(&function.name) {
            Some(check) if check.ok => {}
            Some(check) => {
                return Err(UsageError::new(format!(
                    "functions.{}.handler: `{}`: {} {}",
                    function.name,
                    function.handler,
                    function.source.display(),
                    check.error.as_deref().unwrap_or("is not usable")
                ))
                .into())
            }
            None => bail!("the handler of `{}` was not checked", function.name),
        }
    }
    Ok(())
}

/// Whether the ZIP the manifest names is on disk with the recorded hash.
fn zip_matches(root: &Path, zip: Option<&str>, sha256: Option<&str>) -> bool {
    let (Some(zip), Some(sha256)) = (zip, sha256) else {
        return false;
    };
    file_sha256(&root.join(zip)).is_ok_and(|digest| digest.hex == sha256)
}

fn write(root: &Path, relative: &str, entries: Vec<Entry>) -> Result<ZipFacts> {
    let path = root.join(relative);
    let written = archive::write_zip(&path, entries)?;
    let digest = file_sha256(&path)?;
    Ok(ZipFacts {
        zip: relative.to_string(),
        sha256: digest.hex,
        base64sha256: digest.base64,
        zipped_bytes: written.zipped_bytes,
        unzipped_bytes: written.unzipped_bytes,
        files: written.files,
    })
}

fn print_summary(config: &Config, manifest: &Manifest, written: &[String]) {
    eprintln!(
        "\n  {:<12} {:>6} {:>10} {:>10}  layers",
        "function", "files", "zipped", "unzipped"
    );
    for (name, entry) in &manifest.functions {
        let layers = if entry.bundled.is_empty() {
            entry.layers.join(", ")
        } else {
            format!("(bundled: {})", entry.bundled.join(", "))
        };
        eprintln!(
            "  {:<12} {:>6} {:>10} {:>10}  {}",
            name,
            entry.zip.files,
            human_bytes(entry.zip.zipped_bytes),
            human_bytes(entry.zip.unzipped_bytes),
            layers
        );
    }
    for (name, layer) in manifest
        .layers
        .iter()
        .filter(|(_, entry)| entry.kind == LayerKind::Source)
    {
        let users = config
            .functions
            .values()
            .filter(|function| function.layers.contains(name) && !function.bundle)
            .count();
        eprintln!(
            "  layer `{name}`: {} files, {} unzipped, shipped once for {users} function(s) instead of {} as copies",
            layer.files.unwrap_or(0),
            human_bytes(layer.unzipped_bytes),
            human_bytes(layer.unzipped_bytes * users as u64)
        );
    }
    if written.is_empty() {
        eprintln!("  nothing changed: no ZIP rewritten");
    } else {
        eprintln!("  wrote {}", written.join(", "));
    }
}
