//! `cargo xtask smoke`: imports each handler the way Lambda would, with its
//! attached layers extracted in order into an `/opt`-like folder, its ZIP as
//! `/var/task`, the runtime's own boto3 and Lambda's `sys.path`, in a fresh
//! isolated interpreter of the runtime's version (`py/smoke.py`). Reports the
//! import time against `import_budget` and, for a missing module, the layer
//! that would provide it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

use crate::archive;
use crate::cache::{self, TempDir};
use crate::cli::Options;
use crate::config::{BuilderChoice, Config, LayerSource};
use crate::container::{ContainerRun, Engine};
use crate::facts::{self, Arch};
use crate::installer::{self, Installer};
use crate::manifest::{LayerKind, Manifest};
use crate::progress::{self, Progress};
use crate::{python, Failed, UsageError};

const SCRIPT: &str = include_str!("../py/smoke.py");

/// The boto3 the Lambda Python runtime ships in `/var/lang/lib/python3.X/site-packages`
/// (with botocore, s3transfer, jmespath and their dependencies). Handlers import it without
/// packaging it, so the smoke test installs this pin once into the cache. The runtimes update
/// theirs every few months; only its presence and its import time matter here.
const RUNTIME_BOTO3: &str = "boto3==1.44.5";

/// A directory to use as the runtime's site-packages instead of installing
/// [`RUNTIME_BOTO3`]: for tests and machines without a package index. An empty
/// directory means "the runtime provides nothing".
const RUNTIME_SITE_VARIABLE: &str = "XTASK_RUNTIME_SITE";

/// Lambda gives the init phase (which imports the handler) 10 s; an import
/// still running by then is reported as hung. Source: AWS Lambda execution
/// environment lifecycle, "Init phase".
const INIT_TIMEOUT_S: u64 = 10;

/// What Lambda sets besides the function's own variables. The keys are fake:
/// creating a client at import works, calling AWS does not.
const LAMBDA_ENV: &[(&str, &str)] = &[
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "AKIAXTASKSMOKETEST00"),
    ("AWS_SECRET_ACCESS_KEY", "xtask-smoke-test-fake-secret-key"),
    ("AWS_SESSION_TOKEN", "xtask-smoke-test-fake-session-token"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    ("TZ", ":UTC"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
];

/// Inside the build image: the Lambda runtime's own PATH, HOME and LANG.
const CONTAINER_BASE_ENV: &[(&str, &str)] = &[
    ("PATH", "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
    ("HOME", "/tmp"),
    ("LANG", "en_US.UTF-8"),
];

/// The host variables the interpreter keeps; everything else is cleared.
const HOST_ENV_KEPT: &[&str] = &["PATH", "HOME", "LANG"];

/// The mounts of [`Engine::run_command`] as this command uses them: the work
/// folder (`task/`, `opt/`) as its output folder and the runtime's
/// site-packages as its read-only requirements folder.
const CONTAINER_WORK: &str = "/var/xtask/out";
const CONTAINER_RUNTIME_SITE: &str = "/var/xtask/requirements";

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

/// Where the imports run, or why they cannot run on this machine.
enum Runner {
    Host { python: PathBuf },
    Container { engine: Engine, image: String },
    Skip(String),
}

/// The stand-in for `/var/lang/lib/python3.X/site-packages`.
struct RuntimeSite {
    dir: Option<PathBuf>,
    /// How it was had, for messages about runtime-provided modules.
    about: String,
}

/// What `py/smoke.py` prints.
#[derive(Debug, Default, Deserialize)]
struct Report {
    ok: bool,
    import_ms: Option<f64>,
    error: Option<String>,
    missing_module: Option<String>,
    raised_in: Option<String>,
    traceback: Option<String>,
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
    let providers = providers(&config, &manifest);

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

/// With the `container` builder, the build image (its Python is the
/// runtime's); otherwise the runtime's Python on the host.
fn choose_runner(sh: &Shell, config: &Config) -> Result<Runner> {
    let foreign = Arch::host() != Some(config.arch);
    if config.builder == BuilderChoice::Container {
        let engine = Engine::detect(sh).context(
            "no container engine answers (tried docker and podman): start one, or use --builder host",
        )?;
        let emulator = format!("/proc/sys/fs/binfmt_misc/qemu-{}", config.arch.machine());
        if foreign && !Path::new(&emulator).exists() {
            return Ok(Runner::Skip(format!(
                "the functions are {} and no emulator for it is registered ({emulator})",
                config.arch.name()
            )));
        }
        if engine.image_id(sh, &config.image).is_none() {
            engine.pull(sh, &config.image, config.arch).with_context(|| {
                format!(
                    "the build image {} is not available (set `image` in Cargo.toml)",
                    config.image
                )
            })?;
        }
        let image = config.image.clone();
        return Ok(Runner::Container { engine, image });
    }
    if foreign {
        return Ok(Runner::Skip(format!(
            "the functions are {} and this host is not: its Python cannot load their binaries (use --builder container with an emulator registered)",
            config.arch.name()
        )));
    }
    let Some(python) = python::find_interpreter(sh, config.runtime, Some(Path::new("uv"))) else {
        return Ok(Runner::Skip(format!(
            "no Python {} on this host (install it, or use --builder container)",
            config.runtime.python_version()
        )));
    };
    // The interpreter runs with an empty environment: resolve shims (pyenv,
    // asdf) to the real executable while the environment is still there.
    let script = "import sys; print(sys.executable)";
    let executable = cmd!(sh, "{python} -c {script}").quiet().read().ok();
    let python = executable
        .map(|path| PathBuf::from(path.trim()))
        .filter(|path| path.is_file())
        .unwrap_or(python);
    Ok(Runner::Host { python })
}

/// The runtime's own site-packages: [`RUNTIME_SITE_VARIABLE`] if set, else
/// [`RUNTIME_BOTO3`] installed once into the cache. When that install fails
/// (offline), the smoke test goes on without it and says so once.
fn runtime_site(
    sh: &Shell,
    config: &Config,
    options: &Options,
    progress: &dyn Progress,
) -> Result<RuntimeSite> {
    if let Some(dir) = std::env::var_os(RUNTIME_SITE_VARIABLE) {
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            let message = format!("{RUNTIME_SITE_VARIABLE}={} is not a directory", dir.display());
            return Err(UsageError::new(message).into());
        }
        let about = format!("{RUNTIME_SITE_VARIABLE}={} lacks it", dir.display());
        return Ok(RuntimeSite {
            dir: Some(dir),
            about,
        });
    }
    let name = format!(
        "{}-{}-{}",
        config.runtime.name,
        config.arch.name(),
        RUNTIME_BOTO3.replace("==", "-")
    );
    let dest = config.cache_dir().join("runtime").join(name);
    let site = dest.join("site-packages");
    if !site.is_dir() || options.force {
        progress.note(&format!("smoke: installing the runtime's {RUNTIME_BOTO3} (once)"));
        if let Err(err) = install_runtime_site(sh, config, options, progress, &dest) {
            let about = format!("installing {RUNTIME_BOTO3} failed: {err:#}");
            progress.note(&format!(
                "smoke: the runtime's boto3 is not emulated ({about}); handlers that import it will fail"
            ));
            return Ok(RuntimeSite { dir: None, about });
        }
    }
    let about = format!("{RUNTIME_BOTO3} is installed in {}", site.display());
    Ok(RuntimeSite {
        dir: Some(site),
        about,
    })
}

fn install_runtime_site(
    sh: &Shell,
    config: &Config,
    options: &Options,
    progress: &dyn Progress,
    dest: &Path,
) -> Result<()> {
    let mut notes = Vec::new();
    let installer = Installer::discover(sh, &config.cache_dir(), options.installer, &mut notes);
    for note in notes {
        progress.note(&note);
    }
    let installer = installer?;
    fs::create_dir_all(dest.parent().context("the runtime cache folder")?)?;
    let temp = TempDir::beside(dest)?;
    let requirements = temp.path().join("requirements.txt");
    fs::write(&requirements, format!("{RUNTIME_BOTO3}\n"))?;
    let site = temp.path().join("site-packages");
    let (runtime, arch, cache_dir) = (config.runtime, config.arch, config.cache_dir());
    let output = installer
        .install_command(sh, &requirements, &site, runtime, arch, &cache_dir)
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running {}", installer.id()))?;
    if !output.status.success() {
        bail!("{}", installer::last_lines(&output.stderr, 3).join(" | "));
    }
    // The runtime ships its boto3 compiled; from source its import would count
    // several times over against the budget. Best effort.
    if let Some(python) = python::find_interpreter(sh, config.runtime, None) {
        let _ = cmd!(sh, "{python} -m compileall -q -j 0 {site}")
            .quiet()
            .ignore_status()
            .output();
    }
    temp.persist(dest)
}

/// Lays out one function in a temporary folder, as Lambda would, and imports
/// its handler there. Returns the report and notes on what was left out.
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

/// Runs `py/smoke.py` on the laid-out `work` folder (`task/`, `opt/`) in a
/// fresh interpreter that sees Lambda's environment and nothing else.
fn run_bootstrap(
    config: &Config,
    runner: &Runner,
    site: &RuntimeSite,
    plan: &FunctionPlan,
    work: &Path,
) -> Result<Output> {
    let timeout_s = INIT_TIMEOUT_S.max(config.import_budget_ms.div_ceil(1000) + 1);
    // After `-c SCRIPT`: TASK_ROOT OPT_ROOT RUNTIME_SITE HANDLER PYTHON_VERSION TIMEOUT_S.
    let script_args = |task: String, opt: String, site: &str| -> Vec<String> {
        let tail = [
            &plan.handler,
            &config.runtime.python_version(),
            &timeout_s.to_string(),
        ]
        .map(String::from);
        let head = ["-I", "-S", "-B", "-c", SCRIPT].map(String::from);
        head.into_iter()
            .chain([task, opt, site.to_string()])
            .chain(tail)
            .collect()
    };
    let lambda_env = |task_root: &str| {
        let own = [
            ("AWS_LAMBDA_FUNCTION_NAME", plan.name.clone()),
            ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", config.runtime.name)),
            ("LAMBDA_TASK_ROOT", task_root.to_string()),
            ("_HANDLER", plan.handler.clone()),
        ];
        let common = LAMBDA_ENV.iter().map(|(name, value)| (*name, value.to_string()));
        common.chain(own).collect::<Vec<_>>()
    };
    let sh = Shell::new()?;
    let output = match runner {
        Runner::Host { python } => {
            let task = work.join("task").display().to_string();
            let opt = work.join("opt").display().to_string();
            let site = site
                .dir
                .as_ref()
                .map(|dir| dir.display().to_string())
                .unwrap_or_default();
            let args = script_args(task.clone(), opt, &site);
            let mut command = cmd!(sh, "{python} {args...}").env_clear().quiet().ignore_status();
            for name in HOST_ENV_KEPT {
                if let Some(value) = std::env::var_os(name) {
                    command = command.env(name, value);
                }
            }
            command.envs(lambda_env(&task)).output()?
        }
        Runner::Container { engine, image } => {
            // Without a runtime site, an empty folder stands in for the mount.
            let empty = work.join("no-runtime-site");
            fs::create_dir_all(&empty)?;
            let run = ContainerRun {
                image: image.clone(),
                arch: config.arch,
                requirements_dir: site.dir.clone().unwrap_or(empty),
                out_dir: work.to_path_buf(),
                cache_dir: config.cache_dir().join("container"),
            };
            fs::create_dir_all(&run.cache_dir)?;
            let task = format!("{CONTAINER_WORK}/task");
            let site = if site.dir.is_some() {
                CONTAINER_RUNTIME_SITE
            } else {
                ""
            };
            // `env -i`: Lambda's environment and nothing of the image's.
            let mut args = vec!["env".to_string(), "-i".to_string()];
            let base = CONTAINER_BASE_ENV
                .iter()
                .map(|(name, value)| (*name, value.to_string()));
            args.extend(
                base.chain(lambda_env(&task))
                    .map(|(name, value)| format!("{name}={value}")),
            );
            args.push("python3".to_string());
            args.extend(script_args(task, format!("{CONTAINER_WORK}/opt"), site));
            engine
                .run_command(&sh, &run, &args)?
                .quiet()
                .ignore_status()
                .output()?
        }
        Runner::Skip(_) => unreachable!("a skipped run imports nothing"),
    };
    Ok(output)
}

/// The JSON line of `py/smoke.py`; when there is none, what the process left.
fn parse_report(output: &Output) -> Report {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|line| line.starts_with('{'));
    if let Some(report) = line.and_then(|line| serde_json::from_str::<Report>(line).ok()) {
        return report;
    }
    let mut error = format!("the interpreter exited ({}) without reporting", output.status);
    let tail = installer::last_lines(&output.stderr, 6);
    if !tail.is_empty() {
        error = format!("{error}: {}", tail.join(" | "));
    }
    Report {
        error: Some(error),
        ..Report::default()
    }
}

/// Top-level module name → the configured layers that provide it: dependency
/// layers from their inventory, source layers by their folder's name.
fn providers(config: &Config, manifest: &Manifest) -> BTreeMap<String, Vec<String>> {
    let mut providers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (layer, entry) in &manifest.layers {
        for name in entry.packages.iter().flat_map(|package| &package.top_level) {
            providers.entry(name.clone()).or_default().push(layer.clone());
        }
    }
    for layer in config.layers.values() {
        if let LayerSource::Source(dir) = &layer.source {
            if let Some(name) = dir.file_name().and_then(|name| name.to_str()) {
                providers
                    .entry(name.to_string())
                    .or_default()
                    .push(layer.name.clone());
            }
        }
    }
    for layers in providers.values_mut() {
        layers.sort();
        layers.dedup();
    }
    providers
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
