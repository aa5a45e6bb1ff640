//! How a sandbox's runtime process is started: the runtime's Python on
//! the host (as the sandbox user when the tool runs as root) or in the build
//! image, with the bootstrap's arguments and Lambda's variables.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use super::layout::Layout;
use super::runtime_env::{
    FunctionPlan, Runner, RuntimeSite, CONTAINER_BASE_ENV, HOST_ENV_KEPT, LAMBDA_ENV, SCRIPT,
};
use crate::config::Config;
use crate::contain;
use crate::facts;
use crate::python::container::{Engine, SandboxRun};
use crate::store::oci;

/// What a sandbox is started with.
pub struct Start<'a> {
    pub config: &'a Config,
    pub runner: &'a Runner,
    pub site: &'a RuntimeSite,
    pub plan: &'a FunctionPlan,
    /// The function's own variables, after Lambda's.
    pub env: &'a [(String, String)],
    /// Function output (its logs) goes to stderr as it comes; otherwise it
    /// is only kept for error messages.
    pub forward_logs: bool,
    /// Each forwarded line starts with the function's name and the
    /// request id of the invocation it belongs to (`serve`).
    pub label_logs: bool,
}

/// The command that starts the runtime, and what it runs in.
pub struct Launch {
    pub command: Command,
    /// The engine and the container's name, in the build image.
    pub container: Option<(Engine, String)>,
    /// What the run cannot emulate here.
    pub notes: Vec<String>,
}

/// The runtime's process for `start`, talking to the Runtime API at `api`.
pub fn command(start: &Start, layout: &Layout, api: &str) -> Result<Launch> {
    let client = start.site.client.clone().map_err(anyhow::Error::msg)?;
    let mut notes = layout.notes.clone();
    match start.runner {
        Runner::Host { python, .. } => {
            let (task, opt) = (path_text(&layout.task), path_text(&layout.opt));
            let site = start.site.dir.as_deref().map(path_text).unwrap_or_default();
            let mut reachable = vec![layout.task.clone(), layout.opt.clone(), client.clone()];
            reachable.extend(start.site.dir.clone());
            let (python, as_sandbox_user) = sandbox_python(python, &reachable, start.config, &mut notes);
            let mut command = Command::new(&python);
            command.args(bootstrap_args(start, &task, &opt, &site, &path_text(&client)));
            command.env_clear();
            for name in HOST_ENV_KEPT {
                if let Some(value) = std::env::var_os(name) {
                    command.env(name, value);
                }
            }
            command.envs(lambda_env(start, api, &task));
            if as_sandbox_user {
                command.uid(facts::SANDBOX_UID).gid(facts::SANDBOX_UID);
            }
            // Its own process group, killed whole (sandbox.rs); a Ctrl-C
            // at the terminal reaches xtask, which ends it.
            command.process_group(0);
            Ok(Launch {
                command,
                container: None,
                notes,
            })
        }
        // By the id the smoke key holds, not the tag (which may have moved).
        Runner::Container { engine, .. } if start.plan.image.is_some() => {
            let (layout, digest) = start.plan.image.as_ref().expect("matched");
            let image = loaded_image(engine, &start.config.root.join(layout), digest)?;
            let name = container_name();
            let base = CONTAINER_BASE_ENV
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()));
            let run = SandboxRun {
                image: &image,
                arch: start.config.arch,
                name: &name,
                mounts: Vec::new(),
                env: base.chain(lambda_env(start, api, facts::TASK_ROOT)).collect(),
                user: facts::SANDBOX_UID,
                workdir: None,
            };
            // The image's own entrypoint and CMD (the handler), as Lambda runs it.
            let mut command = Command::new(&engine.program);
            command.args(engine.sandbox_args(&run, &[]));
            command.envs(engine.sandbox_env(&run));
            command.process_group(0);
            Ok(Launch {
                command,
                container: Some((engine.clone(), name)),
                notes,
            })
        }
        Runner::Container {
            engine,
            image_id: image,
            ..
        } => {
            let name = container_name();
            let site_inside = facts::runtime_site_packages(start.config.runtime);
            let mut mounts = vec![
                (layout.task.clone(), facts::TASK_ROOT.to_string()),
                (layout.opt.clone(), facts::LAYER_MOUNT.to_string()),
                (client, facts::RUNTIME_DIR.to_string()),
            ];
            mounts.extend(start.site.dir.clone().map(|dir| (dir, site_inside.clone())));
            let site = if start.site.dir.is_some() {
                site_inside.as_str()
            } else {
                ""
            };
            let base = CONTAINER_BASE_ENV
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()));
            let run = SandboxRun {
                image,
                arch: start.config.arch,
                name: &name,
                mounts,
                env: base.chain(lambda_env(start, api, facts::TASK_ROOT)).collect(),
                user: facts::SANDBOX_UID,
                workdir: Some("/tmp"),
            };
            let mut command_line = vec!["python3".to_string()];
            command_line.extend(bootstrap_args(
                start,
                facts::TASK_ROOT,
                facts::LAYER_MOUNT,
                site,
                facts::RUNTIME_DIR,
            ));
            let mut command = Command::new(&engine.program);
            // Values travel in the engine's environment, not on its
            // command line, where `ps` would show them.
            command.args(engine.sandbox_args(&run, &command_line));
            command.envs(engine.sandbox_env(&run));
            command.process_group(0);
            Ok(Launch {
                command,
                container: Some((engine.clone(), name)),
                notes,
            })
        }
        Runner::Skip(reason) => anyhow::bail!("{reason}"),
    }
}

/// A container's name of its own: `xtask-lambda-<pid>-<n>`.
fn container_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "xtask-lambda-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The engine's id of the image whose manifest is `digest` in `layout`
/// (its config's digest, which is what a loaded OCI image is named by),
/// loaded from the layout first when the engine does not have it.
fn loaded_image(engine: &Engine, layout: &Path, digest: &str) -> Result<String> {
    let manifest_path = layout.join(oci::LAYOUT_BLOBS).join(oci::blob_name(digest));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?,
    )
    .with_context(|| format!("{} is not an image manifest", manifest_path.display()))?;
    let id = manifest["config"]["digest"]
        .as_str()
        .with_context(|| format!("{} names no config", manifest_path.display()))?
        .to_string();
    let present = Command::new(&engine.program)
        .args(["image", "inspect", "--format", "{{.Id}}", &id])
        .output()
        .is_ok_and(|output| output.status.success());
    if !present {
        engine.load_layout(layout)?;
    }
    Ok(id)
}

/// `python -I -S -B -c SCRIPT TASK_ROOT OPT_ROOT RUNTIME_SITE RUNTIME_DIR HANDLER`, after the interpreter.
fn bootstrap_args(start: &Start, task: &str, opt: &str, site: &str, client: &str) -> Vec<String> {
    let handler = start.plan.handler.as_str();
    ["-I", "-S", "-B", "-c", SCRIPT, task, opt, site, client, handler]
        .map(String::from)
        .to_vec()
}

/// Lambda's variables, then the function's own from `Cargo.toml`, then
/// those of this run (the fakes', `--env`), which win.
fn lambda_env(start: &Start, api: &str, task_root: &str) -> Vec<(String, String)> {
    let (config, plan) = (start.config, start.plan);
    let own = [
        ("AWS_LAMBDA_FUNCTION_NAME", plan.name.clone()),
        ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", config.runtime.name)),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", plan.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", plan.name)),
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("LAMBDA_TASK_ROOT", task_root.to_string()),
        ("LAMBDA_RUNTIME_DIR", facts::RUNTIME_DIR.to_string()),
        ("_HANDLER", plan.handler.clone()),
    ];
    let common = LAMBDA_ENV.iter().map(|(name, value)| (*name, value.to_string()));
    common
        .chain(own)
        .map(|(name, value)| (name.to_string(), value))
        .chain(plan.environment.iter().cloned())
        .chain(start.env.iter().cloned())
        .collect()
}

/// The interpreter the sandbox user can run, and whether to switch to that
/// user: only root can, and only when the user reaches the interpreter and
/// the folders; otherwise the function runs as the invoking user, and a
/// note says what that misses.
fn sandbox_python(
    python: &Path,
    reachable: &[PathBuf],
    config: &Config,
    notes: &mut Vec<String>,
) -> (PathBuf, bool) {
    if !contain::is_root() {
        return (python.to_path_buf(), false);
    }
    let reads: Vec<&Path> = reachable.iter().map(PathBuf::as_path).collect();
    match contain::sandbox_python(python, &config.runtime.python_version(), &reads) {
        Ok(usable) => (usable, true),
        Err(why) => {
            notes.push(format!("runs as root: {why}"));
            (python.to_path_buf(), false)
        }
    }
}

pub fn path_text(path: &Path) -> String {
    path.display().to_string()
}
