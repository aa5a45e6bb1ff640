//! The container builder: runs the installer inside the Lambda build image
//! with docker or podman, as the invoking user, with the requirements
//! mounted read-only and the installer's cache mounted from the host.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::facts::{Arch, Runtime};
use crate::ground::error::EnvironmentError;
use crate::python::installer::RESULT_VARIABLES;
use crate::store::tools::{Fact, Planned, Tools};

/// Environment passed into the container besides the installer's
/// [`RESULT_VARIABLES`], so that proxies work there as they do on the host;
/// they change how packages are fetched, not which.
const NETWORK_VARIABLES: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Variables that may name a CA bundle (a TLS-inspecting proxy needs it).
const CA_BUNDLE_VARIABLES: &[&str] = &["PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"];

const ENGINES: [&str; 2] = ["docker", "podman"];
/// The engines' sockets: made anew when a daemon starts.
const SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/podman/podman.sock"];
/// Docker's index of image names (changes when an image is pulled, built,
/// imported or removed), for each storage driver it may use.
const IMAGE_INDEXES: &[&str] = &[
    "/var/lib/docker/image/overlay2/repositories.json",
    "/var/lib/docker/image/fuse-overlayfs/repositories.json",
    "/var/lib/docker/image/vfs/repositories.json",
];
/// Variables that point the engines at another daemon, whose images and
/// ids are its own.
const DAEMON_VARIABLES: &[&str] = &[
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "CONTAINER_HOST",
    "CONTAINER_CONNECTION",
];

/// Which daemon the engines talk to, for the memo's labels: a digest, as
/// a daemon's address may carry credentials.
fn daemon() -> String {
    let mut hasher = crate::ground::digest::KeyHasher::default();
    for name in DAEMON_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            hasher.part(name, value.as_encoded_bytes());
        }
    }
    hasher.hex()[..16].to_string()
}

/// The memo's label of `image`'s id on `program`'s daemon.
fn image_id_label(program: &str, image: &str) -> String {
    format!("image-id {program} {image} daemon {}", daemon())
}

/// Where things are mounted inside the container.
/// The read-only input: the repository (for an install) or the runtime's
/// site-packages (for a smoke test).
pub const INPUT_DIR: &str = "/var/xtask/input";
pub const OUT_DIR: &str = "/var/xtask/out";
const CACHE_DIR: &str = "/var/xtask/cache";
const CA_BUNDLE: &str = "/var/xtask/ca-bundle.pem";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub program: String,
}

impl Engine {
    /// docker or podman, whichever answers first, remembered by the
    /// engines' binaries and sockets (a daemon that starts makes its socket
    /// anew).
    pub fn detect(sh: &Shell, tools: &Tools) -> Fact {
        let programs: Vec<PathBuf> = ENGINES
            .iter()
            .filter_map(|program| crate::store::tools::which(Path::new(program)))
            .collect();
        if programs.is_empty() {
            return Fact::Absent;
        }
        let mut files: Vec<&Path> = programs.iter().map(PathBuf::as_path).collect();
        files.extend(SOCKETS.iter().map(Path::new));
        tools.fact(&format!("engine daemon {}", daemon()), &files, || {
            ENGINES.into_iter().find_map(|program| {
                let answers = cmd!(sh, "{program} version")
                    .quiet()
                    .ignore_stdout()
                    .ignore_stderr()
                    .run()
                    .is_ok();
                answers.then(|| program.to_string())
            })
        })
    }

    /// The image's content id, `Absent` when the image is not present
    /// locally; remembered by the engine's binary, socket and image index,
    /// and the daemon it talks to.
    pub fn image_id(&self, sh: &Shell, tools: &Tools, image: &str) -> Fact {
        let Some(binary) = crate::store::tools::which(Path::new(&self.program)) else {
            return Fact::Absent;
        };
        let mut files: Vec<&Path> = vec![&binary];
        files.extend(SOCKETS.iter().chain(IMAGE_INDEXES).map(Path::new));
        tools.fact(&image_id_label(&self.program, image), &files, || {
            self.inspect_image(sh, image)
        })
    }

    fn inspect_image(&self, sh: &Shell, image: &str) -> Option<String> {
        let program = &self.program;
        let format = "{{.Id}}";
        let output = cmd!(sh, "{program} image inspect --format {format} {image}")
            .quiet()
            .ignore_status()
            .output()
            .ok()?;
        let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && !id.is_empty()).then_some(id)
    }

    /// Loads the OCI image layout in `layout` (`docker load` reads it as
    /// a tar on its standard input): the engine's answer, `Loaded image: …`.
    pub fn load_layout(&self, layout: &Path) -> Result<String> {
        use std::io::Read;
        let mut child = std::process::Command::new(&self.program)
            .arg("load")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{} load`", self.program))?;
        let stdin = child.stdin.take().expect("piped");
        let written = crate::store::oci::layout_tar(layout, std::io::BufWriter::new(stdin));
        let mut stdout = String::new();
        let mut stderr = String::new();
        child.stdout.take().expect("piped").read_to_string(&mut stdout)?;
        child.stderr.take().expect("piped").read_to_string(&mut stderr)?;
        let status = child.wait()?;
        written.with_context(|| format!("sending {} to `{} load`", layout.display(), self.program))?;
        if !status.success() {
            anyhow::bail!(
                "`{} load` refused {}: {}",
                self.program,
                layout.display(),
                stderr.trim()
            );
        }
        Ok(stdout.trim().to_string())
    }

    pub fn pull(&self, sh: &Shell, image: &str, arch: Arch) -> Result<()> {
        let program = &self.program;
        let platform = arch.container_platform();
        let output = cmd!(sh, "{program} pull --platform {platform} {image}")
            .quiet()
            .ignore_status()
            .output()?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr);
            bail!("{program} pull {image} failed: {}", message.trim());
        }
        Ok(())
    }

    /// `docker run` of `command` in `image`, with the layer's requirements
    /// directory read-only, `out` writable and the pip cache mounted. The
    /// command line carries no value of the caller's environment (anyone
    /// on the machine may read it with `ps`): such a variable is named with
    /// `--env NAME` and its value set in the engine's own environment.
    pub fn run_command<'a>(
        &self,
        sh: &'a Shell,
        run: &ContainerRun,
        command: &[String],
    ) -> Result<xshell::Cmd<'a>> {
        let program = &self.program;
        let platform = run.arch.container_platform();
        let user = match run.access {
            Access::Contained { user: Some(uid) } => format!("{uid}:{uid}"),
            _ => current_user(sh)?,
        };
        let mut args: Vec<String> = vec!["run".into(), "--rm".into(), "--platform".into(), platform.into()];
        args.extend(["--user".into(), user]);
        if self.program == "podman" {
            // Rootless podman maps the invoking user only with keep-id.
            args.push("--userns=keep-id".into());
        }
        if let Access::Contained { .. } = run.access {
            args.extend(["--network".into(), "none".into()]);
        }
        let mut mount = |host: &Path, inside: &str, read_only: bool| {
            let suffix = if read_only { ":ro" } else { "" };
            args.extend(["--volume".into(), format!("{}:{inside}{suffix}", host.display())]);
        };
        mount(&run.input_dir, INPUT_DIR, true);
        mount(&run.out_dir, OUT_DIR, false);
        mount(&run.cache_dir, CACHE_DIR, false);
        if run.access == Access::Install {
            if let Some(bundle) = ca_bundle(|name| std::env::var_os(name)) {
                mount(&bundle, CA_BUNDLE, true);
            }
        }
        let (fixed, passed) = container_env(run.access, |name| std::env::var_os(name));
        for (name, value) in &fixed {
            args.extend(["--env".into(), format!("{name}={value}")]);
        }
        for (name, _) in &passed {
            args.extend(["--env".into(), name.clone()]);
        }
        args.push("--workdir".into());
        args.push(run.workdir.clone());
        args.push(run.image.clone());
        args.extend(command.iter().cloned());
        let mut engine = cmd!(sh, "{program} {args...}");
        for (name, value) in passed {
            engine = engine.env(name, value);
        }
        Ok(engine)
    }
}

/// The caller's CA bundle, when one of [`CA_BUNDLE_VARIABLES`] names a file.
fn ca_bundle(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    CA_BUNDLE_VARIABLES
        .iter()
        .filter_map(|name| lookup(name))
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// A variable of the caller's that a build container gets, by name.
type Passed = (String, std::ffi::OsString);

/// The variables a build container gets, as (fixed, passed): fixed are the
/// tool's own constants, the same on every machine, on the command line
/// (the engine reads its own `HOME`, so that one cannot be set there);
/// passed come from the caller's environment (`lookup`) and go by name.
/// An install gets the installer's variables and the proxies; the
/// runtime's Python over a layer gets none of the caller's.
fn container_env(
    access: Access,
    lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> (Vec<(String, String)>, Vec<Passed>) {
    let mut fixed: Vec<(String, String)> = vec![
        ("HOME".into(), "/tmp".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ];
    let mut passed = Vec::new();
    if access == Access::Install {
        fixed.push(("PIP_CACHE_DIR".into(), format!("{CACHE_DIR}/pip")));
        fixed.push(("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()));
        if ca_bundle(&lookup).is_some() {
            fixed.extend(
                CA_BUNDLE_VARIABLES
                    .iter()
                    .map(|name| (name.to_string(), CA_BUNDLE.to_string())),
            );
        }
        let result_variables = RESULT_VARIABLES.iter().map(|(name, _)| *name);
        for name in result_variables.chain(NETWORK_VARIABLES.iter().copied()) {
            if let Some(value) = lookup(name) {
                passed.push((name.to_string(), value));
            }
        }
    }
    (fixed, passed)
}

/// The engine as a plan sees it: `Ready(None)` when none answers.
pub fn planned_engine(sh: &Shell, tools: &Tools) -> Planned<Option<Engine>> {
    match Engine::detect(sh, tools) {
        Fact::Known(program) => Planned::Ready(Some(Engine { program })),
        Fact::Absent => Planned::Ready(None),
        Fact::Unprobed => Planned::Pending("would ask docker and podman whether they answer".to_string()),
    }
}

/// The engine that `builder = "container"` needs: none is an error.
pub fn required_engine(sh: &Shell, tools: &Tools) -> Result<Planned<Engine>> {
    match planned_engine(sh, tools) {
        Planned::Ready(Some(engine)) => Ok(Planned::Ready(engine)),
        Planned::Pending(what) => Ok(Planned::Pending(what)),
        Planned::Ready(None) => Err(EnvironmentError::new(
            "builder = \"container\": no container engine answers (tried docker and podman): start one, or use --builder host",
        )
        .into()),
    }
}

/// The id of `image` as a plan sees it: `Ready(None)` when it is not here.
pub fn planned_image(sh: &Shell, tools: &Tools, engine: &Engine, image: &str) -> Planned<Option<String>> {
    match engine.image_id(sh, tools, image) {
        Fact::Known(id) => Planned::Ready(Some(id)),
        Fact::Absent => Planned::Ready(None),
        Fact::Unprobed => Planned::Pending(format!("would look for the image {image}")),
    }
}

/// The id of `image`, which `builder = "container"` needs: pulled when it
/// is not here (a plan that may not probe says it would).
pub fn required_image(
    sh: &Shell,
    tools: &Tools,
    engine: &Engine,
    image: &str,
    arch: Arch,
) -> Result<Planned<String>> {
    match planned_image(sh, tools, engine, image) {
        Planned::Ready(Some(id)) => return Ok(Planned::Ready(id)),
        Planned::Pending(what) => return Ok(Planned::Pending(what)),
        Planned::Ready(None) if !tools.probe => {
            return Ok(Planned::Pending(format!("would pull the image {image}")))
        }
        Planned::Ready(None) => {}
    }
    engine.pull(sh, image, arch).with_context(|| {
        format!("the build image {image} is not available (set `image` in Cargo.toml to one you have)")
    })?;
    tools.forget(&image_id_label(&engine.program, image));
    match engine.image_id(sh, tools, image) {
        Fact::Known(id) => Ok(Planned::Ready(id)),
        _ => bail!("{image} pulled but not found"),
    }
}

/// The `major.minor` of the image's `python3` (bytecode and the proof that a
/// layer imports need the runtime's own), remembered by the image's id.
/// `Ready(None)` when it has none.
pub fn image_python(
    sh: &Shell,
    tools: &Tools,
    engine: &Engine,
    image_id: &str,
    arch: Arch,
) -> Planned<Option<String>> {
    let program = &engine.program;
    let platform = arch.container_platform();
    let script = "import sys; print('%d.%d' % sys.version_info[:2])";
    let fact = tools.fact(&format!("image-python {program} {image_id}"), &[], || {
        let output = cmd!(
            sh,
            "{program} run --rm --platform {platform} --network none {image_id} python3 -c {script}"
        )
        .quiet()
        .ignore_status()
        .output()
        .ok()?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && !version.is_empty()).then_some(version)
    });
    match fact {
        Fact::Known(version) => Planned::Ready(Some(version)),
        Fact::Absent => Planned::Ready(None),
        Fact::Unprobed => Planned::Pending(format!("would ask the image {image_id} for its Python")),
    }
}

/// Whether this machine can run containers built for `arch`: natively, or
/// through a registered qemu emulator (binfmt_misc).
pub fn can_run(arch: Arch) -> Result<(), String> {
    if Arch::host() == Some(arch) {
        return Ok(());
    }
    let emulator = format!("/proc/sys/fs/binfmt_misc/qemu-{}", arch.machine());
    if std::path::Path::new(&emulator).exists() {
        Ok(())
    } else {
        Err(format!(
            "{} containers need an emulator on this machine and none is registered ({emulator})",
            arch.name()
        ))
    }
}

/// What a build container may reach besides its mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The installer: the network, and the installer's and the proxies'
    /// variables of the caller.
    Install,
    /// The runtime's Python over a layer (compiling, proving): no network,
    /// none of the caller's variables; as `user` (uid and gid) when given,
    /// else as the invoking user.
    Contained { user: Option<u32> },
}

/// One container invocation's mounts.
pub struct ContainerRun {
    pub image: String,
    pub arch: Arch,
    /// Mounted read-only at [`INPUT_DIR`].
    pub input_dir: PathBuf,
    /// The working directory inside the container.
    pub workdir: String,
    pub out_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub access: Access,
}

/// The pip command that installs `requirements` (relative to the mounted
/// repository) into the layer's `python/`. The whole repository is mounted,
/// so that the files a requirements file includes with `-r ../x.txt` are
/// there too, and pip runs in the requirements file's folder, as on the host.
pub fn install_args(requirements: &Path) -> Vec<String> {
    pip_install(&format!("{INPUT_DIR}/{}", requirements.display()))
}

/// pip installing the requirements file at `file` (a path in the container).
fn pip_install(file: &str) -> Vec<String> {
    [
        "python3",
        "-m",
        "pip",
        "install",
        "--no-compile",
        "--no-warn-script-location",
        "--no-input",
        "--target",
        &format!("{OUT_DIR}/python"),
        "-r",
        file,
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

/// The pip command that installs a lock (the copy of it in the output
/// folder, [`OUT_DIR`]`/<name>`) exactly: no dependency resolved, every
/// hash checked, and the wheels chosen for the runtime's platform as on the
/// host (one `--platform` per manylinux tag), not for the image's own
/// glibc. The files come from `find_links` (folders relative to the mounted
/// repository) and, unless `no_index`, from the index the container's
/// environment names (the lock names none).
pub fn locked_install_args(
    lock_name: &str,
    find_links: &[PathBuf],
    no_index: bool,
    runtime: Runtime,
    arch: Arch,
) -> Vec<String> {
    let mut args = pip_install(&format!("{OUT_DIR}/{lock_name}"));
    let at = args.len() - 2;
    let mut extra: Vec<String> = [
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--implementation",
        "cp",
    ]
    .map(String::from)
    .to_vec();
    if no_index {
        extra.push("--no-index".to_string());
    }
    for folder in find_links {
        extra.extend([
            "--find-links".to_string(),
            format!("{INPUT_DIR}/{}", folder.display()),
        ]);
    }
    extra.extend(["--python-version".to_string(), runtime.python_version()]);
    for tag in runtime.pip_platforms(arch) {
        extra.extend(["--platform".to_string(), tag]);
    }
    args.splice(at..at, extra);
    args
}

/// The folder of `requirements` (relative to the repository) in the container.
pub fn requirements_workdir(requirements: &Path) -> String {
    match requirements.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => format!("{INPUT_DIR}/{}", dir.display()),
        None => INPUT_DIR.to_string(),
    }
}

/// `uid:gid` of the invoking user, so that output is not owned by root.
fn current_user(sh: &Shell) -> Result<String> {
    let uid = cmd!(sh, "id -u").quiet().read().context("running id -u")?;
    let gid = cmd!(sh, "id -g").quiet().read().context("running id -g")?;
    Ok(format!("{}:{}", uid.trim(), gid.trim()))
}

/// A function's execution environment in a container, as Lambda's: the
/// whole file system read-only but `/tmp`, the function's code, layers,
/// the runtime's site-packages and its runtime interface client mounted
/// read-only where Lambda has them, an unprivileged user, and the host's
/// network so that the Runtime API and local fakes on 127.0.0.1 answer.
pub struct SandboxRun<'a> {
    pub image: &'a str,
    pub arch: Arch,
    pub name: &'a str,
    /// (host folder, path inside), all read-only.
    pub mounts: Vec<(PathBuf, String)>,
    pub env: Vec<(String, String)>,
    pub user: u32,
    /// Where it starts: `/tmp`, or the image's own working folder
    /// (`None`: an image function's image, run as Lambda runs it).
    pub workdir: Option<&'a str>,
}

impl Engine {
    /// The arguments of `docker`/`podman` that start `command` in a sandbox.
    pub fn sandbox_args(&self, run: &SandboxRun, command: &[String]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--rm", "--interactive", "--name", run.name]
            .into_iter()
            .map(String::from)
            .collect();
        args.extend(["--platform".into(), run.arch.container_platform().into()]);
        args.extend(["--user".into(), format!("{0}:{0}", run.user)]);
        args.extend(["--network".into(), "host".into(), "--read-only".into()]);
        args.extend(["--tmpfs".into(), "/tmp".into()]);
        for (host, inside) in &run.mounts {
            args.extend(["--volume".into(), format!("{}:{inside}:ro", host.display())]);
        }
        for (name, value) in last_values(&run.env) {
            if engine_reads(name) {
                args.extend(["--env".into(), format!("{name}={value}")]);
            } else {
                args.extend(["--env".into(), name.to_string()]);
            }
        }
        if let Some(workdir) = run.workdir {
            args.extend(["--workdir".into(), workdir.to_string()]);
        }
        args.push(run.image.to_string());
        args.extend(command.iter().cloned());
        args
    }

    /// The values of the variables [`Engine::sandbox_args`] names without
    /// them: the engine's process gets them in its environment and passes
    /// them on (`--env NAME`), so no command line shows them.
    pub fn sandbox_env(&self, run: &SandboxRun) -> Vec<(String, String)> {
        last_values(&run.env)
            .into_iter()
            .filter(|(name, _)| !engine_reads(name))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// The host's pid of a running container's first process.
    pub fn host_pid(&self, name: &str) -> Option<u32> {
        let output = std::process::Command::new(&self.program)
            .args(["inspect", "--format", "{{.State.Pid}}", name])
            .output()
            .ok()?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|&pid| pid > 0)
    }

    /// Stops and removes a container; quiet when it is already gone.
    pub fn remove(&self, name: &str) {
        let _ = std::process::Command::new(&self.program)
            .args(["rm", "--force", name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Each variable once, with its last value, in the order first given.
fn last_values(env: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for (name, value) in env {
        match out.iter_mut().find(|(seen, _)| *seen == name.as_str()) {
            Some(slot) => slot.1 = value.as_str(),
            None => out.push((name.as_str(), value.as_str())),
        }
    }
    out
}

/// Variables the engine's own client reads (where its configuration,
/// helpers, daemon and proxy are): a function's value for one of these
/// cannot go through the engine's environment without changing how the
/// engine runs, so it is given on the command line. The runner sets only
/// Lambda's fixed PATH and HOME among them.
fn engine_reads(name: &str) -> bool {
    const NAMES: &[&str] = &["PATH", "HOME", "TMPDIR"];
    const PREFIXES: &[&str] = &[
        "DOCKER_",
        "CONTAINER_",
        "CONTAINERS_",
        "PODMAN_",
        "BUILDAH_",
        "XDG_",
    ];
    NAMES.contains(&name)
        || NETWORK_VARIABLES.contains(&name)
        || PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_variables_go_by_name_and_only_to_the_installer() {
        let caller = |name: &str| {
            (name == "PIP_INDEX_URL" || name == "HTTPS_PROXY")
                .then(|| format!("https://{name}.example/caller-secret").into())
        };
        let (fixed, passed) = container_env(Access::Install, caller);
        let names: Vec<&str> = passed.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["PIP_INDEX_URL", "HTTPS_PROXY"]);
        assert!(
            fixed.iter().all(|(_, value)| !value.contains("caller-secret")),
            "{fixed:?}"
        );
        let (fixed, passed) = container_env(Access::Contained { user: None }, caller);
        assert!(passed.is_empty(), "{passed:?}");
        assert!(
            fixed.iter().all(|(name, _)| !name.starts_with("PIP_")),
            "{fixed:?}"
        );
    }

    #[test]
    fn a_sandboxs_values_are_not_on_the_command_line() {
        let engine = Engine {
            program: "docker".into(),
        };
        let env = [
            ("PATH", "/var/lang/bin:/usr/bin"),
            ("HOME", "/tmp"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:1234"),
            ("DB_PASSWORD", "first"),
            ("DB_PASSWORD", "s3cret-value"),
        ];
        let run = SandboxRun {
            image: "image",
            arch: Arch::X86_64,
            name: "xtask-lambda-1-0",
            mounts: Vec::new(),
            env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            user: 993,
            workdir: Some("/tmp"),
        };
        let args = engine.sandbox_args(&run, &["python3".to_string()]);
        let line = args.join(" ");
        assert!(
            !line.contains("s3cret-value") && !line.contains("first"),
            "{line}"
        );
        assert!(!line.contains("127.0.0.1:1234"), "{line}");
        assert_eq!(line.matches("--env DB_PASSWORD ").count(), 1, "{line}");
        // What the engine reads itself keeps its value on the line.
        assert!(line.contains("--env HOME=/tmp"), "{line}");
        let values = engine.sandbox_env(&run);
        assert_eq!(
            values,
            [
                ("AWS_LAMBDA_RUNTIME_API".to_string(), "127.0.0.1:1234".to_string()),
                ("DB_PASSWORD".to_string(), "s3cret-value".to_string()),
            ]
        );
    }
}
