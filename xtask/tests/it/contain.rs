//! Third-party code, and the interpreter's tools over it, run with nothing
//! they do not need: a test wheel's module records what its import during
//! the layer proof sees (environment, user, network), a stand-in
//! interpreter records what compiling and parsing see, and a stand-in
//! container engine records the command lines anyone could read with `ps`.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::{self, App, Repo};

/// What a CI runner's environment may hold, none of which the contained
/// processes need: credentials, tokens, an index URL with a token, and one
/// innocent variable (nothing outside the allow-list passes either).
const CALLER: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", concat!("AKIA", "CONTAINEDTEST01")),
    ("AWS_SECRET_ACCESS_KEY", "contained-secret-access-key"),
    ("AWS_SESSION_TOKEN", "contained-session-token"),
    ("GITHUB_TOKEN", "ghp_contained_token"),
    (
        "PIP_INDEX_URL",
        // Put together, so that no credential-shaped URL stands in the source.
        concat!("https://ci-bot:contained-index-token", "@", "127.0.0.1:9/simple"),
    ),
    ("XTASK_TEST_INNOCENT", "contained-innocent-value"),
];

/// What a contained process may get of the environment.
fn allowed(name: &str) -> bool {
    [
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LANGUAGE",
        "TZ",
        "LD_LIBRARY_PATH",
    ]
    .contains(&name)
        || name.starts_with("LC_")
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").unwrap().uid() == 0
}

/// An empty file anyone may append to: the sandbox user writes it.
fn shared_record(repo: &Repo, name: &str) -> PathBuf {
    let path = repo.path().join(name);
    fs::write(&path, "").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    path
}

/// The standard application's `core`, requiring `spy` (each test writes its
/// wheel), and `api` on it alone in place of `hello`.
fn app() -> Repo {
    let repo = App::standard()
        .without("layers.shared")
        .without("functions.hello")
        .function("api", "api.lambda_handler", &["core"])
        .core(&["spy==1.0"])
        .repo();
    repo.write(
        "lambdas/api/api.py",
        "import spy\n\n\ndef lambda_handler(event, context):\n    return 1\n",
    );
    repo
}

/// Asserts that `env` holds nothing of [`CALLER`] and nothing outside the
/// allow-list, and a home of its own.
#[track_caller]
fn assert_contained_env(env: &BTreeMap<String, String>, what: &str) {
    for (name, value) in env {
        assert!(allowed(name), "{what} got {name}: {env:#?}");
        for (_, secret) in CALLER {
            assert!(!value.contains(secret), "{what} got {secret} in {name}");
        }
    }
    let home = std::env::var("HOME").unwrap_or_default();
    assert_ne!(env.get("HOME"), Some(&home), "{what} got the caller's home");
}

/// A module that records, on import, what it sees into `record`: its
/// user, its environment, whether 127.0.0.1:`port` answers. The path is
/// baked in, since no variable of the test reaches it.
fn spy_module(record: &Path, port: u16) -> String {
    format!(
        r#"import json, os, socket
_seen = {{"uid": os.getuid(), "env": dict(os.environ)}}
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
    _seen["connected"] = True
except OSError as err:
    _seen["connected"] = False
    _seen["error"] = repr(err)
with open({record:?}, "a") as _file:
    _file.write(json.dumps(_seen) + "\n")
"#,
        record = record.display().to_string()
    )
}

#[test]
fn the_layer_proof_imports_third_party_code_without_secrets_privilege_or_network() {
    let repo = app();
    let record = shared_record(&repo, "spy.jsonl");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spy = spy_module(&record, port);
    repo.wheel("core", "spy", "1.0", &[("spy/__init__.py", &spy)], &[]);
    repo.xtask_with(&["build-layers", "--builder", "host"], CALLER)
        .success();

    let text = fs::read_to_string(&record).unwrap();
    let seen: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        !seen.is_empty(),
        "the proof did not import the test wheel's module"
    );
    for seen in &seen {
        let env: BTreeMap<String, String> = serde_json::from_value(seen["env"].clone()).unwrap();
        assert_contained_env(&env, "the proof's import");
        if running_as_root() {
            assert_eq!(seen["uid"], 993, "the proof imported as {}", seen["uid"]);
            assert_eq!(seen["connected"], false, "the proof reached 127.0.0.1: {seen}");
        }
    }
    if running_as_root() {
        listener.set_nonblocking(true).unwrap();
        let accepted = listener.accept();
        assert!(
            accepted
                .as_ref()
                .is_err_and(|err| err.kind() == std::io::ErrorKind::WouldBlock),
            "the listener saw a connection: {accepted:?}"
        );
    }
}

/// A `python3.11` that others can run (the sandbox user runs the proof
/// with it): the first on PATH outside private folders.
fn reachable_python() -> PathBuf {
    let reachable = |path: &Path| {
        let Ok(path) = path.canonicalize() else {
            return false;
        };
        fs::metadata(&path).is_ok_and(|metadata| metadata.is_file() && metadata.mode() & 0o005 == 0o005)
            && path
                .ancestors()
                .skip(1)
                .all(|dir| fs::metadata(dir).is_ok_and(|metadata| metadata.mode() & 0o001 != 0))
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3.11"))
        .find(|candidate| reachable(candidate))
        .expect("this test needs a python3.11 on PATH that other users can run")
}

#[test]
fn a_layer_the_sandbox_user_cannot_reach_is_proven_as_root_and_said() {
    let repo = app();
    let record = shared_record(&repo, "spy.jsonl");
    repo.wheel(
        "core",
        "spy",
        "1.0",
        &[("spy/__init__.py", &spy_module(&record, 9))],
        &[],
    );
    // With umask 077 the tool's own folders under target/ are closed to others.
    let run = repo.xtask_umask("077", &["build-layers", "--builder", "host"]);
    let stderr = run.success().stderr();
    let text = fs::read_to_string(&record).unwrap();
    if running_as_root() {
        let target = repo.path().join("target");
        assert!(
            stderr.contains(&format!(
                "the layer proofs import third-party code as root: the sandbox user (uid 993) cannot enter {}",
                target.display()
            )),
            "{stderr}"
        );
        assert!(text.contains("\"uid\": 0"), "{text}");
    } else {
        // Only root can switch users: nothing to fall back from, nothing to say.
        assert!(!stderr.contains("as root"), "{stderr}");
        assert!(
            !text.is_empty(),
            "the proof did not import the test wheel's module"
        );
    }
}

/// The pids of running processes whose command line is `sleep SECONDS`.
fn sleepers(seconds: &str) -> Vec<u32> {
    let wanted = format!("sleep\0{seconds}\0");
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| cmdline == wanted.as_bytes())
        })
        .collect()
}

#[test]
fn a_process_a_module_starts_during_the_proof_does_not_outlive_it() {
    let repo = app();
    // Detached from the proof's output, so that only an end of its process
    // group ends it; the duration names it among this machine's processes.
    let seconds = "4817";
    let module = format!(
        "import subprocess\nsubprocess.Popen(['sleep', '{seconds}'], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    );
    repo.wheel("core", "spy", "1.0", &[("spy/__init__.py", &module)], &[]);
    let before = sleepers(seconds);
    repo.xtask(&["build-layers", "--builder", "host"]).success();
    let left: Vec<u32> = sleepers(seconds)
        .into_iter()
        .filter(|pid| !before.contains(pid))
        .collect();
    for pid in &left {
        let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    }
    assert!(
        left.is_empty(),
        "the proof left `sleep {seconds}` running: {left:?}"
    );
}

/// SIGTERM to xtask while the proof imports a module that does not return:
/// the proof's processes end with xtask, as a function's do.
#[test]
fn sigterm_during_the_proof_ends_its_processes() {
    let repo = app();
    let started = shared_record(&repo, "started.txt");
    let seconds = "4819";
    let module = format!(
        "import os, time\nwith open({started:?}, 'a') as f:\n    f.write(str(os.getpid()))\ntime.sleep({seconds})\n",
        started = started.display().to_string()
    );
    repo.wheel("core", "spy", "1.0", &[("spy/__init__.py", &module)], &[]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build-layers", "--builder", "host"])
        .current_dir(repo.path())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("UV_CACHE_DIR")
        .env_remove("PIP_CACHE_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Bounded: the install and the proof's start take seconds here.
    let mut pid = String::new();
    for _ in 0..1200 {
        pid = fs::read_to_string(&started).unwrap_or_default();
        if !pid.is_empty() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let importing: u32 = pid
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the proof never imported the module ({pid:?})"));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let ended = child.wait().unwrap();
    assert!(!ended.success(), "{ended}");
    // A zombie has ended; only a live process of the proof counts.
    let alive = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
    };
    let mut left = alive(importing);
    for _ in 0..100 {
        if !left {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = alive(importing);
    }
    if left {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &importing.to_string()])
            .status();
    }
    assert!(!left, "the proof's python ({importing}) outlived xtask");
}

/// Tests that need a container engine (docker or podman) with the test
/// image: ignored by a plain `cargo test`, run by `-- --ignored needs_engine`,
/// and failed by [`support::require_engine`] where there is none.
mod needs_engine {
    use super::*;

    #[test]
    #[ignore = "needs a container engine with the test image (cargo xtask ci runs it)"]
    fn the_container_builders_command_line_holds_no_value_of_the_callers_environment() {
        let engine = support::require_engine();
        let repo = app();
        repo.wheel("core", "spy", "1.0", &[("spy/__init__.py", "X = 1\n")], &[]);
        let real = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {engine}")])
            .output()
            .unwrap();
        let real = String::from_utf8(real.stdout).unwrap().trim().to_string();
        let record = repo.path().join("engine-argv.txt");
        // A stand-in engine that records its arguments (what `ps` shows), one a
        // line, then runs the real one.
        let stand_in = repo.write(
            &format!("engine/{engine}"),
            &format!(
                "#!/bin/sh\n{{ for arg in \"$@\"; do printf '%s\\n' \"$arg\"; done; echo '--- end'; }} >> {}\nexec {real} \"$@\"\n",
                record.display()
            ),
        );
        fs::set_permissions(&stand_in, fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            stand_in.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env = CALLER.to_vec();
        env.push(("PATH", &path));
        repo.xtask_with(
            &[
                "build-layers",
                "--builder",
                "container",
                "--image",
                support::TEST_IMAGE,
            ],
            &env,
        )
        .success();

        let text = fs::read_to_string(&record).unwrap();
        for (_, secret) in CALLER {
            assert!(
                !text.contains(secret),
                "{secret} on the engine's command line:\n{text}"
            );
        }
        let runs: Vec<Vec<&str>> = text
            .split("--- end\n")
            .map(|run| run.lines().collect::<Vec<_>>())
            .filter(|args| args.first() == Some(&"run"))
            .collect();
        let passes = |args: &[&str], name: &str| args.windows(2).any(|pair| pair == ["--env", name]);
        let install = runs
            .iter()
            .find(|args| args.contains(&"pip"))
            .unwrap_or_else(|| panic!("no install recorded:\n{text}"));
        assert!(
            passes(install, "PIP_INDEX_URL"),
            "the installer lost the index variable: {install:?}"
        );
        let contained: Vec<&Vec<&str>> = runs
            .iter()
            .filter(|args| {
                args.iter()
                    .any(|arg| arg.ends_with("prove.py") || *arg == "compileall")
            })
            .collect();
        assert!(contained.len() >= 2, "no proof or compilation recorded:\n{text}");
        for args in contained {
            assert!(
                args.windows(2).any(|pair| pair == ["--network", "none"]),
                "on the network: {args:?}"
            );
            assert!(!passes(args, "PIP_INDEX_URL"), "got the index variable: {args:?}");
            let proof = args.iter().any(|arg| arg.ends_with("prove.py"));
            if proof && running_as_root() {
                assert!(
                    args.windows(2).any(|pair| pair == ["--user", "993:993"]),
                    "the proof ran as root: {args:?}"
                );
            }
        }
        // Every container runs the image the key names by its id: a tag moved
        // after the plan cannot put another image's bytes under the key.
        let id = std::process::Command::new(engine)
            .args(["image", "inspect", "--format", "{{.Id}}", support::TEST_IMAGE])
            .output()
            .unwrap();
        let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
        assert!(id.starts_with("sha256:"), "{id}");
        for args in &runs {
            assert!(
                args.contains(&id.as_str()),
                "not run by the image id {id}: {args:?}"
            );
            assert!(!args.contains(&support::TEST_IMAGE), "run by the tag: {args:?}");
        }
    }
}

/// Tests that install from PyPI: ignored by a plain `cargo test`, run by
/// `-- --ignored needs_pypi`, and failed where PyPI does not answer.
mod needs_pypi {
    use super::*;

    #[test]
    #[ignore = "needs PyPI, where the runtime's boto3 comes from (cargo xtask ci runs it)"]
    fn compiling_and_parsing_run_without_secrets_or_network() {
        let repo = app();
        repo.wheel("core", "spy", "1.0", &[("spy/__init__.py", "X = 1\n")], &[]);
        let record = shared_record(&repo, "python-runs.txt");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // A stand-in for the runtime's Python that records, per start, the
        // user, whether 127.0.0.1 answers, the first arguments and the whole
        // environment, then runs the real one under its own name.
        let stand_in = repo.write(
            "bin/python3.11",
            &format!(
                r#"#!/bin/bash
net=fail
(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && net=ok
args=$(printf '%s ' "$@" | head -c 400 | tr '\n' ' ')
{{ printf '=== uid=%s net=%s args=%s\n' "$(id -u)" "$net" "$args"; env; }} >> {record}
exec -a "$0" {python} "$@"
"#,
                record = record.display(),
                python = reachable_python().display()
            ),
        );
        fs::set_permissions(&stand_in, fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            stand_in.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env = CALLER.to_vec();
        env.push(("PATH", &path));
        // `build`: the layers, the functions, the checks and the smoke test,
        // which compiles the runtime's own site-packages (boto3) once.
        let run = repo.xtask_with(&["build", "--builder", "host"], &env);
        run.success();
        assert!(
            !run.stderr().contains("the runtime's boto3 is not emulated"),
            "this test needs PyPI, where the runtime's boto3 comes from:\n{}",
            run.stderr()
        );

        let text = fs::read_to_string(&record).unwrap();
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for run in text.split("=== ").skip(1) {
            let (head, body) = run.split_once('\n').unwrap();
            let kind = if head.contains("compileall") && head.contains("site-packages") {
                "compiling the runtime's site-packages"
            } else if head.contains("compileall") {
                "compiling the layer"
            } else if head.contains("prove.py") {
                "proving the layer"
            } else if head.contains("Static facts about Python sources") {
                "parsing the sources"
            } else {
                // Probes for the version, the smoke test: not this test's business.
                continue;
            };
            *kinds.entry(kind).or_default() += 1;
            let env: BTreeMap<String, String> = body
                .lines()
                .filter_map(|line| line.split_once('='))
                // What the stand-in's own shell sets.
                .filter(|(name, _)| !["PWD", "OLDPWD", "SHLVL", "_"].contains(name))
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
            assert_contained_env(&env, &format!("{kind} ({head})"));
            if running_as_root() {
                assert!(head.contains("net=fail"), "{kind} reached 127.0.0.1: {head}");
                if kind == "proving the layer" {
                    assert!(head.contains("uid=993"), "{kind}: {head}");
                }
            }
        }
        for kind in [
            "compiling the layer",
            "proving the layer",
            "parsing the sources",
            "compiling the runtime's site-packages",
        ] {
            assert!(
                kinds.contains_key(kind),
                "no run of {kind} recorded: {kinds:?}\n{text}"
            );
        }
    }
}
