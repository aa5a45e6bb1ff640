//! `cargo xtask build-layers`: every dependency profile installed for the
//! Lambda runtime, in parallel, cached by a key of every input, written as a
//! deterministic `dist/layers/<name>.zip` and recorded in the manifest.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xshell::Shell;

use crate::archive::{self, Written};
use crate::builder::{choose_builder, compile_bytecode, install, Builder};
use crate::cache::{self, TempDir};
use crate::cli::Options;
use crate::config::{Bytecode, Config, LayerSource};
use crate::digest::{bytes_sha256, file_sha256, KeyHasher};
use crate::layer_content::{self, Inventory};
use crate::manifest::{LayerEntry, LayerKind, Manifest, ZipFacts};
use crate::progress::{self, Progress};
use crate::{elf, Failed, UsageError};

/// Bumped whenever the layout or the cleaning rules change, so that old
/// cache entries are never reused for a different output.
const FORMAT_VERSION: &str = "2";

/// Index and find-links settings change what gets installed, so they are
/// part of the key.
const INDEX_VARIABLES: &[&str] = &[
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
];

/// One layer to build: everything decided before anything is written.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub name: String,
    pub requirements: PathBuf,
    pub requirements_sha256: String,
    pub key: String,
    pub entry_dir: PathBuf,
    pub cached: bool,
}

/// What a cache entry holds besides `layer.zip`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EntryMeta {
    inventory: Inventory,
    written: WrittenMeta,
    sha256: String,
    base64sha256: String,
    builder: String,
    installer: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct WrittenMeta {
    files: u64,
    unzipped_bytes: u64,
    zipped_bytes: u64,
}

impl From<Written> for WrittenMeta {
    fn from(written: Written) -> WrittenMeta {
        WrittenMeta {
            files: written.files,
            unzipped_bytes: written.unzipped_bytes,
            zipped_bytes: written.zipped_bytes,
        }
    }
}

pub fn run(options: &Options, names: &[String]) -> Result<()> {
    let config = Config::load(&options.overrides)?;
    let selected = select(&config, names)?;
    let progress = progress::for_terminal(options.quiet);
    let sh = Shell::new()?;
    sh.change_dir(&config.root);
    let cache_dir = config.cache_dir();
    fs::create_dir_all(cache_dir.join("layers"))
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    cache::sweep_temp(&cache_dir.join("layers"));
    cache::sweep_temp(&config.dist_dir().join("layers"));

    let builder = if selected.is_empty() {
        None
    } else {
        Some(choose_builder(&sh, &config, options, progress.as_ref())?)
    };
    let plans = match &builder {
        Some(builder) => plan(&config, builder, &selected, options.force)?,
        None => Vec::new(),
    };
    if options.dry_run {
        for plan in &plans {
            let state = if plan.cached { "cached" } else { "build" };
            println!(
                "{}\t{}\t{state}\t{}",
                plan.name,
                builder.as_ref().map_or("", Builder::name),
                plan.key
            );
        }
        return Ok(());
    }
    if let Some(builder) = &builder {
        progress.note(&format!(
            "building {} layer(s) for {} {} with the {} builder ({})",
            plans.len(),
            config.runtime.name,
            config.arch.name(),
            builder.name(),
            builder.installer_id()
        ));
    }

    let jobs = options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let outcomes: Vec<(String, Result<LayerEntry>)> = pool.install(|| {
        plans
            .par_iter()
            .map(|plan| {
                let builder = builder.as_ref().expect("plans imply a builder");
                let started = Instant::now();
                let result = build_one(&config, builder, plan, progress.as_ref())
                    .with_context(|| format!("building layer `{}`", plan.name));
                match &result {
                    Ok(entry) => {
                        let how = if plan.cached {
                            "cached".to_string()
                        } else {
                            format!("built in {:.1?}", started.elapsed())
                        };
                        progress.done(
                            &plan.name,
                            &format!(
                                "{how}, {} unzipped, {} files",
                                human_bytes(entry.unzipped_bytes),
                                entry.files.unwrap_or(0)
                            ),
                        );
                    }
                    Err(_) => progress.done(&plan.name, "failed"),
                }
                (plan.name.clone(), result)
            })
            .collect()
    });

    let mut manifest = Manifest::load_for(&config)?;
    manifest.retain_configured(&config);
    manifest.sync_external(&config);
    let mut failures = Vec::new();
    for (name, outcome) in outcomes {
        match outcome {
            Ok(entry) => {
                manifest.layers.insert(name, entry);
            }
            Err(err) => failures.push((name, err)),
        }
    }
    manifest.write(&config.manifest_path())?;

    if options.json {
        let built: serde_json::Map<String, serde_json::Value> = plans
            .iter()
            .filter_map(|plan| {
                manifest
                    .layers
                    .get(&plan.name)
                    .map(|entry| (plan.name.clone(), serde_json::to_value(entry)))
            })
            .map(|(name, value)| value.map(|value| (name, value)))
            .collect::<Result<_, _>>()?;
        let failed: serde_json::Map<String, serde_json::Value> = failures
            .iter()
            .map(|(name, err)| (name.clone(), format!("{err:#}").into()))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "layers": built, "failed": failed }))?
        );
    }
    if !options.quiet {
        print_summary(&plans, &manifest);
    }
    if failures.is_empty() {
        return Ok(());
    }
    for (_, err) in &failures {
        eprintln!("error: {err:#}");
    }
    eprintln!("error: {} of {} layer(s) failed", failures.len(), plans.len());
    Err(Failed.into())
}

/// The dependency layers to build: those named, or all of them.
fn select(config: &Config, names: &[String]) -> Result<Vec<String>> {
    let all: Vec<String> = config
        .layers
        .values()
        .filter(|layer| matches!(layer.source, LayerSource::Requirements(_)))
        .map(|layer| layer.name.clone())
        .collect();
    if names.is_empty() {
        return Ok(all);
    }
    for name in names {
        match config.layers.get(name).map(|layer| &layer.source) {
            Some(LayerSource::Requirements(_)) => {}
            Some(_) => {
                return Err(UsageError::new(format!(
                    "layer `{name}` has no `requirements`: build-layers builds dependency profiles ({})",
                    all.join(", ")
                ))
                .into())
            }
            None => {
                return Err(UsageError::new(format!(
                    "unknown layer `{name}` (configured: {})",
                    all.join(", ")
                ))
                .into())
            }
        }
    }
    Ok(names.to_vec())
}

/// Decides, for each layer, its cache key and whether the cache has it.
pub fn plan(config: &Config, builder: &Builder, names: &[String], force: bool) -> Result<Vec<LayerPlan>> {
    let mut plans = Vec::new();
    for name in names {
        let Some(LayerSource::Requirements(relative)) = config.layers.get(name).map(|layer| &layer.source)
        else {
            bail!("layer `{name}` is not a dependency profile");
        };
        let requirements = config.root.join(relative);
        let bytes = fs::read(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
        let mut key = KeyHasher::default();
        key.part("format", FORMAT_VERSION)
            .part("requirements", &bytes)
            .part("runtime", config.runtime.name)
            .part("architecture", config.arch.name())
            .part("builder", builder.name())
            .part("installer", builder.installer_id())
            .part("exclude", config.exclude.join(","))
            .part("bytecode", config.bytecode.name());
        if let Builder::Container { image, image_id, .. } = builder {
            key.part("image", image).part("image-id", image_id);
        }
        for variable in INDEX_VARIABLES {
            if let Ok(value) = std::env::var(variable) {
                key.part(variable, value);
            }
        }
        let key = key.hex();
        let entry_dir = config.cache_dir().join("layers").join(&key);
        let cached = !force && entry_dir.join("meta.json").is_file() && entry_dir.join("layer.zip").is_file();
        plans.push(LayerPlan {
            name: name.clone(),
            requirements,
            requirements_sha256: bytes_sha256(&bytes),
            key,
            entry_dir,
            cached,
        });
    }
    Ok(plans)
}

/// Builds one layer into the cache (unless it is there) and publishes it
/// to `dist/layers/<name>.zip`.
fn build_one(
    config: &Config,
    builder: &Builder,
    plan: &LayerPlan,
    progress: &dyn Progress,
) -> Result<LayerEntry> {
    if !plan.cached {
        let temp = TempDir::beside(&plan.entry_dir)?;
        let meta = build_entry(config, builder, plan, temp.path(), progress)?;
        cache::write_atomic(&temp.path().join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
        temp.persist(&plan.entry_dir)?;
    }
    let meta: EntryMeta = serde_json::from_slice(&fs::read(plan.entry_dir.join("meta.json"))?)
        .with_context(|| format!("reading the cache entry {}", plan.entry_dir.display()))?;
    let relative = format!("dist/layers/{}.zip", plan.name);
    cache::publish_file(&plan.entry_dir.join("layer.zip"), &config.root.join(&relative))?;
    let zip = ZipFacts {
        zip: relative,
        sha256: meta.sha256,
        base64sha256: meta.base64sha256,
        zipped_bytes: meta.written.zipped_bytes,
        unzipped_bytes: meta.written.unzipped_bytes,
        files: meta.written.files,
    };
    let mut entry = LayerEntry::built(LayerKind::Requirements, zip, plan.requirements_sha256.clone());
    entry.packages = meta.inventory.packages;
    entry.excluded = Some(meta.inventory.excluded);
    entry.builder = Some(meta.builder);
    entry.installer = Some(meta.installer);
    entry.cache_key = Some(plan.key.clone());
    Ok(entry)
}

fn build_entry(
    config: &Config,
    builder: &Builder,
    plan: &LayerPlan,
    work: &Path,
    progress: &dyn Progress,
) -> Result<EntryMeta> {
    let sh = Shell::new()?;
    sh.change_dir(&config.root);
    let site = work.join("python");
    fs::create_dir_all(&site)?;
    progress.phase(&plan.name, "installing");
    install(&sh, config, builder, plan, work)?;

    progress.phase(&plan.name, "cleaning");
    let inventory = layer_content::prepare(&site, &config.exclude)?;
    let problems = elf::incompatible_binaries(&site, config.runtime, config.arch)?;
    if !problems.is_empty() {
        let fix = match builder {
            Builder::Host { .. } => {
                "pin a version with a compatible wheel, or build with --builder container".to_string()
            }
            Builder::Container { image, .. } => format!(
                "the image {image} is not the runtime's OS: use {} or --builder host",
                config.runtime.default_image(config.arch)
            ),
        };
        bail!(
            "binaries the {} {} runtime cannot load:\n  {}\n({fix})",
            config.runtime.name,
            config.arch.name(),
            problems.join("\n  ")
        );
    }
    if config.bytecode != Bytecode::None {
        progress.phase(&plan.name, "compiling bytecode");
        compile_bytecode(&sh, config, builder, work)?;
    }

    progress.phase(&plan.name, "zipping");
    let zip = work.join("layer.zip");
    let written = archive::write_zip(&zip, archive::tree_entries(&site, "python/")?)?;
    let digest = file_sha256(&zip)?;
    Ok(EntryMeta {
        inventory,
        written: written.into(),
        sha256: digest.hex,
        base64sha256: digest.base64,
        builder: builder.name().to_string(),
        installer: builder.installer_id(),
    })
}

fn print_summary(plans: &[LayerPlan], manifest: &Manifest) {
    if plans.is_empty() {
        eprintln!("no dependency layers configured");
        return;
    }
    eprintln!(
        "\n  {:<12} {:>9} {:>9} {:>7}  largest packages",
        "layer", "zipped", "unzipped", "files"
    );
    for plan in plans {
        let Some(entry) = manifest
            .layers
            .get(&plan.name)
            .filter(|entry| entry.cache_key.as_deref() == Some(&plan.key))
        else {
            eprintln!("  {:<12} failed", plan.name);
            continue;
        };
        let largest: Vec<String> = entry
            .packages
            .iter()
            .take(3)
            .map(|package| format!("{} {}", package.name, human_bytes(package.unzipped_bytes)))
            .collect();
        eprintln!(
            "  {:<12} {:>9} {:>9} {:>7}  {}",
            plan.name,
            human_bytes(entry.zipped_bytes.unwrap_or(0)),
            human_bytes(entry.unzipped_bytes),
            entry.files.unwrap_or(0),
            largest.join(", ")
        );
        if let Some(excluded) = entry.excluded.as_ref().filter(|excluded| !excluded.is_empty()) {
            eprintln!(
                "  {:<12} left out (runtime-provided): {}",
                "",
                excluded.join(", ")
            );
        }
    }
}

/// `2.1 MB`-style sizes for people (MiB, as AWS counts them).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
