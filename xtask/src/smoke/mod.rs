//! `cargo xtask smoke`: imports each handler the way Lambda would, with its
//! attached layers extracted in order into an `/opt`-like folder, its ZIP as
//! `/var/task`, the runtime's own boto3 and Lambda's `sys.path`, in a fresh
//! isolated interpreter of the runtime's version (`py/smoke.py`). Reports the
//! import time against `import_budget` and, for a missing module, the layer
//! that would provide it.

use std::collections::BTreeMap;
use std::fs;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use xshell::Shell;

use crate::archive;
use crate::cache::{self, TempDir};
use crate::cli::Options;
use crate::config::{Config, LayerSource};
use crate::facts::{self};
use crate::installer::{self};
use crate::manifest::{LayerKind, Manifest};
use crate::progress::{self, Progress};
use crate::{Failed, UsageError};

mod runner;

use runner::{choose_runner, parse_report, run_bootstrap, runtime_site, Report, Runner, RuntimeSite};

/// One function to import: everything decided before anything touches the disk.
#[derive(Debug, Clone, Serialize)]
struct FunctionPlan {
    name: String,
    handler: String,
    /// Repository-relative, as the manifest records it.
    zip: String,
    /// Attached layers in Lambda's merge order: later ones overwrite earlier files.
    layers: Vec<LayerStep>,
}

#[derive(Debug, Clone, Serialize)]
struct LayerStep {
    name: String,
    /// `None` for an external layer: only its ARN is known.
    zip: Option<String>,
}

/// One function's verdict, as `--json` shows it. A `skipped` function is
/// neither ok nor failed: it could not be checked here.
#[derive(Debug, Default, Serialize)]
struct Outcome {
    ok: bool,
    import_ms: Option<f64>,
    budget_ms: u64,
    error: Option<String>,
    missing_module: Option<String>,
    skipped: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceback: Option<String>,
}

impl Outcome {
    fn failed(&self) -> bool {
        !self.ok && self.skipped.is_none()
    }
}

pub fn run(options: &Options, names: &[String]) -> Result<()> {
    let config = Config::load(&options.overrides)?;
    let selected = select(&config, names)?;
    let manifest = Manifest::read(&config.manifest_path())?.ok_or_else(|| {
        UsageError::new("dist/manifest.json is missing: run cargo xtask build-layers and cargo xtask package")
    })?;
    let plans = plan(&config, &manifest, &selected)?;
    if options.dry_run {
        return print_plan(&plans, options.json);
    }
    if plans.is_empty() {
        eprintln!("no functions configured");
        return Ok(());
    }
    let progress = progress::for_terminal(options.quiet);
    let sh = Shell::new()?;
    sh.change_dir(&config.root);
    let budget_ms = config.import_budget_ms;
    let runner = choose_runner(&sh, &config)?;
    if let Runner::Skip(reason) = &runner {
        eprintln!("smoke: skipped: {reason}");
        let skipped = || Outcome {
            budget_ms,
            skipped: Some(reason.clone()),
            ..Outcome::default()
        };
        let outcomes = plans.iter().map(|plan| (plan.name.clone(), skipped())).collect();
        return print_json(options.json, &outcomes);
    }
    let site = runtime_site(&sh, &config, options, progress.as_ref())?;
    let smoke_dir = config.cache_dir().join("smoke");
    fs::create_dir_all(&smoke_dir).with_context(|| format!("creating {}", smoke_dir.display()))?;
    cache::sweep_temp(&smoke_dir);
    let providers = manifest.providers(&config);

    // Each import is a fresh process; only a few at once, so that they do not
    // slow each other down and the timings stay honest.
    let jobs = options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let outcomes: BTreeMap<String, Outcome> = pool.install(|| {
        plans
            .par_iter()
            .map(|plan| {
                let outcome = match smoke_one(&config, &runner, &site, plan, progress.as_ref()) {
                    Ok((report, notes)) => judge(&config, plan, report, notes, &providers, &site),
                    Err(err) => Outcome {
                        budget_ms,
                        error: Some(format!("{err:#}")),
                        ..Outcome::default()
                    },
                };
                let short = match (outcome.ok, &outcome.skipped) {
                    (true, _) => format!("ok, {}", ms(outcome.import_ms)),
                    (false, Some(_)) => "unverified".to_string(),
                    (false, None) => "FAILED".to_string(),
                };
                progress.done(&plan.name, &short);
                (plan.name.clone(), outcome)
            })
            .collect()
    });
    print_json(options.json, &outcomes)?;
    print_table(&outcomes, options.quiet);
    let failed = outcomes.values().filter(|outcome| outcome.failed()).count();
    if failed == 0 {
        return Ok(());
    }
    eprintln!(
        "error: {failed} of {} function(s) failed the smoke test",
        outcomes.len()
    );
    Err(Failed.into())
}

/// The functions named, or all of them.
fn select(config: &Config, names: &[String]) -> Result<Vec<String>> {
    if let Some(unknown) = names.iter().find(|name| !config.functions.contains_key(*name)) {
        let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
        let message = format!("unknown function `{unknown}` (configured: {})", known.join(", "));
        return Err(UsageError::new(message).into());
    }
    if names.is_empty() {
        return Ok(config.functions.keys().cloned().collect());
    }
    Ok(names.to_vec())
}

/// Reads what each function imports from the manifest: its ZIP and the ZIPs
/// of its attached layers, in order. Everything must be built already.
fn plan(config: &Config, manifest: &Manifest, selected: &[String]) -> Result<Vec<FunctionPlan>> {
    let usage = |message: String| -> anyhow::Error { UsageError::new(message).into() };
    if manifest.runtime != config.runtime.name || manifest.architecture != config.arch.name() {
        return Err(usage(format!(
            "dist/manifest.json was built for {} {}, not {} {}: run cargo xtask build-layers and cargo xtask package",
            manifest.runtime,
            manifest.architecture,
            config.runtime.name,
            config.arch.name()
        )));
    }
    let mut plans = Vec::new();
    for name in selected {
        let entry = manifest.functions.get(name).ok_or_else(|| {
            usage(format!(
                "function `{name}` is not in dist/manifest.json: run cargo xtask package"
            ))
        })?;
        if !config.root.join(&entry.zip.zip).is_file() {
            return Err(usage(format!(
                "{} is missing: run cargo xtask package",
                entry.zip.zip
            )));
        }
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let built = manifest.layers.get(layer);
            let on_disk = |zip: &String| config.root.join(zip).is_file();
            let zip = match built {
                Some(built) if built.kind == LayerKind::External => None,
                Some(built) if built.zip.as_ref().is_some_and(on_disk) => built.zip.clone(),
                _ => {
                    let command = match config.layers.get(layer).map(|layer| &layer.source) {
                        Some(LayerSource::Source(_)) => "package",
                        _ => "build-layers",
                    };
                    return Err(usage(format!(
                        "layer `{layer}` of function `{name}` is not built: run cargo xtask {command}"
                    )));
                }
            };
            layers.push(LayerStep {
                name: layer.clone(),
                zip,
            });
        }
        plans.push(FunctionPlan {
            name: name.clone(),
            handler: entry.handler.clone(),
            zip: entry.zip.zip.clone(),
            layers,
        });
    }
    Ok(plans)
}

/// `name  handler  zip  layer=zip …`, one function a line (or `--json`).
fn print_plan(plans: &[FunctionPlan], json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "plan": plans }))?
        );
        return Ok(());
    }
    for plan in plans {
        let layers: Vec<String> = plan
            .layers
            .iter()
            .map(|layer| format!("{}={}", layer.name, layer.zip.as_deref().unwrap_or("external")))
            .collect();
        println!(
            "{}\t{}\t{}\t{}",
            plan.name,
            plan.handler,
            plan.zip,
            layers.join(" ")
        );
    }
    Ok(())
}

/// Lays out one function as Lambda would and imports its handler.
fn smoke_one(
    config: &Config,
    runner: &Runner,
    site: &RuntimeSite,
    plan: &FunctionPlan,
    progress: &dyn Progress,
) -> Result<(Report, Vec<String>)> {
    let work = TempDir::beside(&config.cache_dir().join("smoke").join(&plan.name))?;
    let (task, opt) = (work.path().join("task"), work.path().join("opt"));
    fs::create_dir_all(&task)?;
    fs::create_dir_all(&opt)?;
    progress.phase(&plan.name, "extracting");
    archive::extract_zip(&config.root.join(&plan.zip), &task)?;
    let mut notes = Vec::new();
    for layer in &plan.layers {
        match &layer.zip {
            Some(zip) => archive::extract_zip(&config.root.join(zip), &opt)
                .with_context(|| format!("extracting layer `{}`", layer.name))?,
            None => notes.push(format!(
                "layer `{}` is external: not available to the smoke test",
                layer.name
            )),
        }
    }

    progress.phase(&plan.name, "importing");
    let output = run_bootstrap(config, runner, site, plan, work.path())?;
    Ok((parse_report(&output), notes))
}

/// Turns a report into a verdict: the budget, and for a missing module what
/// would provide it.
fn judge(
    config: &Config,
    plan: &FunctionPlan,
    report: Report,
    notes: Vec<String>,
    providers: &BTreeMap<String, Vec<String>>,
    site: &RuntimeSite,
) -> Outcome {
    let budget_ms = config.import_budget_ms;
    let mut outcome = Outcome {
        ok: report.ok,
        import_ms: report.import_ms.map(|ms| (ms * 10.0).round() / 10.0),
        budget_ms,
        missing_module: report.missing_module.clone(),
        notes,
        ..Outcome::default()
    };
    if report.ok {
        let took = report.import_ms.unwrap_or(0.0);
        if took > budget_ms as f64 {
            outcome.ok = false;
            outcome.error = Some(format!(
                "the import took {}, over the budget of {budget_ms} ms (import_budget)",
                ms(Some(took))
            ));
        }
        return outcome;
    }
    let mut error = report.error.unwrap_or_else(|| "the import failed".to_string());
    let Some(missing) = &report.missing_module else {
        if let Some(place) = &report.raised_in {
            error = format!("{error} (raised in {place})");
        }
        outcome.error = Some(error);
        outcome.traceback = report.traceback;
        return outcome;
    };
    if let Some(place) = &report.raised_in {
        error = format!("{error} — imported by {place}");
    }
    let top = missing.split('.').next().unwrap_or(missing);
    let handler_module = plan.handler.rsplit_once('.').map_or("", |(module, _)| module);
    let quoted = |names: &[&String]| {
        names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let attached = |layer: &&String| plan.layers.iter().any(|step| &step.name == *layer);
    let (attached, unattached): (Vec<&String>, Vec<&String>) =
        providers.get(top).into_iter().flatten().partition(attached);
    let external: Vec<&String> = plan
        .layers
        .iter()
        .filter(|step| step.zip.is_none())
        .map(|step| &step.name)
        .collect();
    let hint = if handler_module == missing || handler_module.starts_with(&format!("{missing}.")) {
        format!(
            "the function's ZIP ({}) has no handler module `{handler_module}`",
            plan.zip
        )
    } else if facts::RUNTIME_PROVIDED.contains(&top) {
        format!(
            "`{top}` is provided by the Lambda runtime, which the smoke test could not emulate ({})",
            site.about
        )
    } else if !attached.is_empty() {
        format!(
            "attached layer {} lists `{top}`, yet it did not import",
            quoted(&attached)
        )
    } else if !unattached.is_empty() {
        format!(
            "layer {} provides it but is not attached to `{}`",
            quoted(&unattached),
            plan.name
        )
    } else if !external.is_empty() {
        outcome.skipped = Some(format!(
            "`{missing}` may come from external layer {}, which is not available to the smoke test",
            quoted(&external)
        ));
        "no built layer provides it".to_string()
    } else {
        "provided by no attached layer (add it to a dependency profile this function attaches)".to_string()
    };
    outcome.error = Some(format!("{error}; {hint}"));
    outcome
}

fn ms(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms < 10.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{ms:.0} ms"),
        None => "—".to_string(),
    }
}

fn print_json(json: bool, outcomes: &BTreeMap<String, Outcome>) -> Result<()> {
    if json {
        let value = serde_json::json!({ "functions": outcomes });
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

/// Function, import time, budget and verdict on stderr; with `--quiet` only
/// the functions that failed.
fn print_table(outcomes: &BTreeMap<String, Outcome>, quiet: bool) {
    let rows: Vec<(&String, &Outcome)> = outcomes
        .iter()
        .filter(|(_, outcome)| !quiet || outcome.failed())
        .collect();
    if rows.is_empty() {
        return;
    }
    eprintln!("\n  {:<14} {:>9} {:>9}  verdict", "function", "import", "budget");
    for (name, outcome) in rows {
        let verdict = match (&outcome.skipped, &outcome.error) {
            (Some(reason), Some(error)) => format!("unverified: {error}; {reason}"),
            (Some(reason), None) => format!("skipped: {reason}"),
            (None, Some(error)) => format!("FAILED: {error}"),
            (None, None) => "ok".to_string(),
        };
        let budget = format!("{} ms", outcome.budget_ms);
        eprintln!("  {name:<14} {:>9} {budget:>9}  {verdict}", ms(outcome.import_ms));
        for note in &outcome.notes {
            eprintln!("  {:<14} note: {note}", "");
        }
        if let Some(traceback) = &outcome.traceback {
            for line in installer::last_lines(traceback.as_bytes(), 8) {
                eprintln!("  {:<14} | {line}", "");
            }
        }
    }
}
