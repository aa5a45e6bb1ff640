//! `lock` against tiny wheels made by the tests: a lock pins every
//! distribution with hashes, build-layers installs it as it is (a changed
//! file is refused), a lock older than its requirements is named, pins are
//! kept until upgraded, what cannot be locked is refused, and the host and
//! the container build the same bytes from one lock.

use std::fs;

use crate::support::{self, sha256_hex, App, Repo, AT};

/// The standard application's layers, without a function; core requires
/// `app` 1.0.
fn config() -> App {
    App::standard().without("functions.hello").core(&["app==1.0"])
}

const LOCK: &str = "layers/core/requirements.python3.11-x86_64.lock";

/// core: `app` 1.0, which needs `helper`.
fn app() -> Repo {
    let repo = config().repo();
    repo.write("lambdas/shared/__init__.py", "");
    repo.wheel(
        "core",
        "app",
        "1.0",
        &[("app/__init__.py", "import helper\n")],
        &["helper"],
    );
    repo.wheel("core", "helper", "1.0", &[("helper.py", "V = 1\n")], &[]);
    repo
}

fn lock_text(repo: &Repo) -> String {
    String::from_utf8(repo.read(LOCK)).unwrap()
}

#[test]
fn a_lock_pins_everything_and_the_layer_is_built_from_it() {
    let repo = app();
    repo.xtask(&["lock"]).success();
    let lock = lock_text(&repo);
    assert!(lock.contains("# inputs-sha256: "), "{lock}");
    // No index, no find-links folder: the installer's configuration says
    // where files come from (here the requirements' --find-links).
    for option in ["--no-index", "--find-links", "--index-url"] {
        assert!(!lock.contains(option), "{lock}");
    }
    for pin in ["app==1.0", "helper==1.0"] {
        assert!(lock.contains(pin), "{lock}");
    }
    assert_eq!(lock.matches("--hash=sha256:").count(), 2, "{lock}");
    repo.xtask(&["lock", "--check"]).success();

    let run = repo.xtask(&["build-layers", "--builder", "host", "--json"]);
    run.success();
    let layer = &serde_json::from_str::<serde_json::Value>(&run.stdout()).unwrap()["layers"]["core"];
    let names: Vec<&str> = layer["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{layer}");

    // A wheel whose bytes changed under the same name and version never
    // ships: pip refuses it; uv refuses it too, or installs the bytes it
    // verified before from its cache (it knows a local wheel by its name).
    repo.wheel("core", "helper", "1.0", &[("helper.py", "V = 'tampered'\n")], &[]);
    repo.xtask(&["build-layers", "--builder", "host", "--installer", "pip"])
        .fails_with(1, "hash");
    let run = repo.xtask(&["build-layers", "--builder", "host", "--installer", "uv"]);
    if run.code() == 0 {
        let zip = repo.path().join("dist/layers/core.zip");
        let mut archive = zip::ZipArchive::new(fs::File::open(zip).unwrap()).unwrap();
        // Sourceless by default: the locked module's bytecode.
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_name("python/helper.pyc").unwrap(), &mut bytes).unwrap();
        let tampered = bytes
            .windows(b"tampered".len())
            .any(|window| window == b"tampered");
        assert!(!tampered, "the locked bytes, not the changed wheel");
    } else {
        run.fails_with(1, "Hash mismatch");
    }
}

#[test]
fn a_lock_older_than_its_requirements_names_the_command() {
    let repo = app();
    repo.xtask(&["lock"]).success();
    repo.profile("core", &["app==1.0", "helper==1.0"]);
    repo.xtask(&["build-layers", "--builder", "host"])
        .fails_with(2, "run cargo xtask lock core");
    repo.xtask(&["lock", "--check"]).fails_with(
        2,
        "its requirements layers/core/requirements.txt changed since it was written",
    );
    repo.xtask(&["lock", "core"]).success();
    repo.xtask(&["build-layers", "--builder", "host"]).success();
    // A lock that was never written is named by --check, not by build-layers.
    fs::remove_file(repo.path().join(LOCK)).unwrap();
    repo.xtask(&["lock", "--check"])
        .fails_with(2, "core: no layers/core/requirements.python3.11-x86_64.lock");
}

/// A lock of an older xtask names an index (which pip would prefer to the
/// user's): it is refused, without showing the index's credentials, until
/// `lock` rewrites it, its pins kept.
#[test]
fn a_lock_that_names_an_index_is_refused_until_rewritten() {
    let repo = app();
    repo.xtask(&["lock"]).success();
    let current = lock_text(&repo);
    let (header, pins) = current.split_once("\n\n").unwrap();
    repo.write(
        LOCK,
        &format!(
            "{header}\n--index-url https://ci-bot:placeholder-not-a-secret{AT}mirror.example/simple\n\n{pins}"
        ),
    );
    for args in [&["build-layers", "--builder", "host"][..], &["lock", "--check"]] {
        let run = repo.xtask(args);
        run.fails_with(
            2,
            &format!("names an index (`--index-url https://ci-bot:***{AT}mirror.example/simple`"),
        );
        run.fails_with(2, "(run cargo xtask lock core)");
        assert!(
            !run.stderr().contains("placeholder-not-a-secret"),
            "{}",
            run.stderr()
        );
    }
    repo.xtask(&["lock"]).success();
    assert_eq!(
        lock_text(&repo),
        current,
        "rewritten with the same pins, without the index"
    );
    repo.xtask(&["build-layers", "--builder", "host"]).success();
}

/// An index option added below the pins by hand: the plan reads only above
/// them (it reads every lock on every run), the install reads the whole
/// copy it installs and stops there; `lock --check` reads it whole too.
#[test]
fn an_index_below_the_pins_is_refused_by_the_install() {
    let repo = app();
    repo.xtask(&["lock"]).success();
    let current = lock_text(&repo);
    repo.write(
        LOCK,
        &format!(
            "{current}--extra-index-url https://ci-bot:placeholder-not-a-secret{AT}mirror.example/simple\n"
        ),
    );
    let build = repo.xtask(&["build-layers", "--builder", "host"]);
    build.fails_with(
        1,
        &format!("names an index (`--extra-index-url https://ci-bot:***{AT}mirror.example/simple`"),
    );
    assert!(
        !build.stderr().contains("placeholder-not-a-secret"),
        "{}",
        build.stderr()
    );
    repo.xtask(&["lock", "--check"])
        .fails_with(2, "names an index (`--extra-index-url");
    repo.xtask(&["lock"]).success();
    assert_eq!(lock_text(&repo), current);
}

#[test]
fn pins_stay_until_upgraded() {
    let repo = app();
    repo.profile("core", &["app"]);
    repo.xtask(&["lock"]).success();
    assert!(lock_text(&repo).contains("helper==1.0"));
    repo.wheel("core", "helper", "2.0", &[("helper.py", "V = 2\n")], &[]);
    repo.wheel(
        "core",
        "app",
        "2.0",
        &[("app/__init__.py", "import helper\n")],
        &["helper"],
    );
    repo.xtask(&["lock"]).success();
    let kept = lock_text(&repo);
    assert!(
        kept.contains("helper==1.0") && kept.contains("app==1.0"),
        "{kept}"
    );
    repo.xtask(&["lock", "--upgrade-package", "helper"]).success();
    let one = lock_text(&repo);
    assert!(one.contains("helper==2.0") && one.contains("app==1.0"), "{one}");
    repo.xtask(&["lock", "--upgrade"]).success();
    assert!(lock_text(&repo).contains("app==2.0"));
}

#[test]
fn what_cannot_be_locked_is_refused_and_nothing_is_written() {
    let repo = app();
    repo.write(
        "layers/core/requirements.txt",
        "--no-index\n--find-links wheels\n-e ./src\n",
    );
    repo.xtask(&["lock"])
        .fails_with(2, "an editable install cannot be locked");
    repo.write(
        "layers/core/requirements.txt",
        "--no-index\n--find-links wheels\nmissing==9.9\n",
    );
    repo.xtask(&["lock"]).fails_with(1, "uv could not lock it");
    assert!(!repo.path().join(LOCK).exists());
    let left: Vec<_> = fs::read_dir(repo.path().join("layers/core"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    repo.xtask(&["lock", "shared"])
        .fails_with(2, "`shared` is not a dependency profile");
    repo.xtask(&["lock", "--installer", "pip"])
        .fails_with(2, "lock resolves with uv");
}

/// `config` with `extra`, a profile stacked on core, and `hello` on core,
/// extra and shared.
fn stacked_metadata() -> String {
    config()
        .layer(
            "extra",
            &[
                "requirements = \"layers/extra/requirements.txt\"",
                "base = [\"core\"]",
            ],
        )
        .function("hello", "hello.lambda_handler", &["core", "extra", "shared"])
        .metadata()
}

/// core: app 1.0 and helper 1.0; extra: tool, which needs helper (2.0 is
/// there too, newer than core's).
fn stacked() -> Repo {
    let repo = app();
    repo.set_metadata(&stacked_metadata());
    repo.write(
        "lambdas/hello/hello.py",
        "import app, tool\n\n\ndef lambda_handler(event, context):\n    return 1\n",
    );
    repo.profile("extra", &["tool==1.0"]);
    repo.wheel(
        "extra",
        "tool",
        "1.0",
        &[("tool.py", "import helper\n")],
        &["helper"],
    );
    repo.wheel("extra", "helper", "1.0", &[("helper.py", "V = 1\n")], &[]);
    repo.wheel("extra", "helper", "2.0", &[("helper.py", "V = 2\n")], &[]);
    repo
}

fn layer_packages(run: &support::Run, layer: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    value["layers"][layer]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            format!(
                "{}=={}",
                package["name"].as_str().unwrap(),
                package["version"].as_str().unwrap()
            )
        })
        .collect()
}

/// A stacked profile ships nothing its base provides, and is held to the
/// base's versions: unlocked (the base layer's versions) and locked (the
/// base lock's pins) alike.
#[test]
fn a_stacked_profile_ships_nothing_its_base_provides() {
    let repo = stacked();
    let run = repo.xtask(&["build-layers", "--builder", "host", "--json"]);
    assert_eq!(layer_packages(run.success(), "extra"), ["tool==1.0"]);
    let excluded = serde_json::from_str::<serde_json::Value>(&run.stdout()).unwrap()["layers"]["extra"]
        ["excluded"]
        .clone();
    assert_eq!(
        excluded,
        serde_json::json!(["helper==1.0"]),
        "held to core's helper 1.0, not 2.0"
    );
    // check-limits says what the stacking saved the function.
    let run = repo.xtask(&["check-limits", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&run.success().stdout()).unwrap();
    let stacked = &report["functions"]["hello"]["stacked"][0];
    assert_eq!(stacked["layer"], "extra", "{report:#}");
    assert_eq!(stacked["bases"], serde_json::json!(["core"]));
    assert_eq!(stacked["distributions"], serde_json::json!(["helper==1.0"]));
    assert!(stacked["saved_bytes"].as_u64().unwrap() > 0, "{stacked}");
    assert!(
        run.stderr().contains("extra on core: 1 distribution(s)"),
        "{}",
        run.stderr()
    );

    repo.xtask(&["lock"]).success();
    let lock = String::from_utf8(repo.read("layers/extra/requirements.python3.11-x86_64.lock")).unwrap();
    assert!(
        lock.contains("helper==1.0") && lock.contains("tool==1.0"),
        "{lock}"
    );
    let run = repo.xtask(&["build-layers", "--builder", "host", "--json"]);
    assert_eq!(layer_packages(run.success(), "extra"), ["tool==1.0"]);
    // Relocking the base relocks what is stacked on it: its pins held it.
    repo.xtask(&["lock", "core", "--upgrade"]).success();
    repo.xtask(&["lock", "--check"]).success();
    repo.profile("core", &["app==1.0", "helper==1.0"]);
    let run = repo.xtask(&["lock", "core"]);
    assert!(
        run.success().stderr().contains("lock: extra: "),
        "{}",
        run.stderr()
    );
    repo.xtask(&["lock", "--check"]).success();
}

/// A stale lock says what changed since it was written, and every stale or
/// missing lock is named in one run, by `lock --check` and by a build.
#[test]
fn every_stale_lock_is_named_with_what_changed() {
    let repo = stacked();
    repo.xtask(&["lock"]).success();
    let core_lock = "layers/core/requirements.python3.11-x86_64.lock";
    let extra_lock = "layers/extra/requirements.python3.11-x86_64.lock";
    // The base's lock changed (by hand) under a stacked lock.
    let text = String::from_utf8(repo.read(core_lock)).unwrap();
    repo.write(core_lock, &format!("{text}# edited\n"));
    let expected = format!("{extra_lock}: its base's lock {core_lock} changed since it was written");
    repo.xtask(&["lock", "--check"]).fails_with(2, &expected);
    repo.xtask(&["build-layers", "--builder", "host"])
        .fails_with(2, &expected);
    // An included file, and two stale locks at once.
    repo.write("layers/extra/pins.txt", "tool==1.0\n");
    repo.write(
        "layers/extra/requirements.txt",
        "--no-index\n--find-links wheels\n-r pins.txt\n",
    );
    repo.xtask(&["lock", "extra"]).success();
    repo.write("layers/extra/pins.txt", "tool>=1.0\n");
    repo.profile("core", &["app==1.0", "helper==1.0"]);
    for args in [&["lock", "--check"][..], &["build-layers", "--builder", "host"]] {
        let run = repo.xtask(args);
        run.fails_with(
            2,
            &format!(
                "{core_lock}: its requirements layers/core/requirements.txt changed since it was written"
            ),
        );
        run.fails_with(2, "the included file layers/extra/pins.txt changed");
        run.fails_with(2, "(run cargo xtask lock core extra)");
    }
}

#[test]
fn stacking_mistakes_are_configuration_errors() {
    let repo = stacked();
    let cases = [
        (stacked_metadata().replace("base = [\"core\"]", "base = [\"shared\"]"), "`shared` is not a dependency profile"),
        (stacked_metadata().replace("base = [\"core\"]", "base = [\"nope\"]"), "unknown layer `nope`"),
        (stacked_metadata().replace("base = [\"core\"]", "base = [\"extra\"]"), "stacked on itself"),
        (
            stacked_metadata().replace("layers = [\"core\", \"extra\", \"shared\"]", "layers = [\"extra\", \"core\", \"shared\"]"),
            "`extra` is stacked on `core` and ships without what `core` provides: attach `core` before `extra`",
        ),
        (
            stacked_metadata().replace("source = \"lambdas/shared\"", "source = \"lambdas/shared\"\nbase = [\"core\"]"),
            "only a dependency profile (`requirements`) is stacked",
        ),
    ];
    for (metadata, message) in cases {
        repo.set_metadata(&metadata);
        repo.xtask(&["build", "--builder", "host"]).fails_with(2, message);
    }
    repo.set_metadata(&stacked_metadata());
    repo.xtask(&["lock", "extra"])
        .fails_with(2, "stacked on a profile that has no lock yet");
}

#[test]
fn the_dry_run_writes_nothing() {
    let repo = app();
    let run = repo.xtask(&["lock", "--dry-run"]);
    assert!(
        run.success()
            .stdout()
            .contains("lock core: would resolve layers/core/requirements.txt into layers/core/requirements.python3.11-x86_64.lock"),
        "{}",
        run.stdout()
    );
    assert!(!repo.path().join(LOCK).exists());
    assert!(!repo.path().join("target").exists());
}

/// `lock` writes into the repository: it waits for the run that holds the
/// repository lock (a build reading the locks) before it resolves.
#[test]
fn lock_waits_for_a_run_in_progress() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let repo = app();
    let lock_file = repo.path().join("target/lambda/lock");
    fs::create_dir_all(lock_file.parent().unwrap()).unwrap();
    // Another run: holds the lock until its stdin closes.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\nsys.stdin.read()\n",
        ])
        .arg(&lock_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    let mut lock = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("lock")
        .current_dir(repo.path())
        .env_remove("CARGO_TARGET_DIR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(lock.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains("waiting for another xtask run") {
            break;
        }
    }
    let waited = seen.contains("waiting for another xtask run");
    // Nothing was written while the other run held the repository.
    let written_meanwhile = repo.path().join(LOCK).exists();
    drop(holder.stdin.take().unwrap().write_all(b""));
    holder.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = lock.wait().unwrap();
    assert!(waited, "lock did not wait for the repository lock:\n{seen}{rest}");
    assert!(
        !written_meanwhile,
        "lock wrote while another run held the repository"
    );
    assert!(status.success(), "{seen}{rest}");
    assert!(repo.path().join(LOCK).exists());
}

/// A lock rewritten while the installer runs (here by a stand-in for uv
/// that rewrites it, then runs the real uv) never ships its new pins under
/// the old lock's key: after the old lock is restored, as `git checkout`
/// would, the build equals a build from scratch.
#[test]
fn a_lock_rewritten_during_a_build_never_ships_under_the_old_key() {
    let repo = app();
    repo.profile("core", &["app"]);
    repo.xtask(&["lock"]).success();
    let old = lock_text(&repo);
    repo.wheel("core", "helper", "2.0", &[("helper.py", "V = 2\n")], &[]);
    repo.xtask(&["lock", "--upgrade"]).success();
    let new = lock_text(&repo);
    assert!(
        old.contains("helper==1.0") && new.contains("helper==2.0"),
        "{old}\n{new}"
    );
    rewritten_during_the_install(&repo, LOCK, &old, &new);
}

/// The same for a profile without a lock: requirements edited while the
/// installer runs.
#[test]
fn requirements_edited_during_a_build_never_ship_under_the_old_key() {
    let repo = app();
    repo.wheel("core", "helper", "2.0", &[("helper.py", "V = 2\n")], &[]);
    let requirements = "layers/core/requirements.txt";
    let old = "--no-index\n--find-links wheels\napp==1.0\nhelper==1.0\n";
    let new = "--no-index\n--find-links wheels\napp==1.0\nhelper==2.0\n";
    repo.write(requirements, old);
    rewritten_during_the_install(&repo, requirements, old, new);
}

/// Builds with a stand-in for uv that writes `new` into `file` when the
/// install starts; then restores `old` and builds again: the result equals
/// a build from scratch. The first build either fails, naming the file, or
/// ships what its key says.
fn rewritten_during_the_install(repo: &Repo, file: &str, old: &str, new: &str) {
    let uv = std::process::Command::new("sh")
        .args(["-c", "command -v uv"])
        .output()
        .unwrap();
    let uv = String::from_utf8(uv.stdout).unwrap().trim().to_string();
    assert!(
        !uv.is_empty(),
        "these tests need uv on PATH (cargo xtask ci provides it)"
    );
    repo.write(file, old);
    repo.write("rewritten", new);
    let script = format!(
        "#!/bin/sh\nif [ \"$1 $2\" = \"pip install\" ]; then cp '{}' '{}'; fi\nexec '{uv}' \"$@\"\n",
        repo.path().join("rewritten").display(),
        repo.path().join(file).display()
    );
    let stand_in = repo.write("stand-in/uv", &script);
    fs::set_permissions(&stand_in, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        stand_in.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let build = ["build-layers", "--builder", "host", "--installer", "uv"];
    let during = repo.xtask_with(&[&build[..], &["--force"]].concat(), &[("PATH", path.as_str())]);
    if during.code() != 0 {
        during.fails_with(1, &format!("{file} changed during the build; run again"));
    }
    assert_eq!(repo.read(file), new.as_bytes(), "the stand-in rewrote {file}");

    // `git checkout -- layers`.
    repo.write(file, old);
    repo.xtask(&build).success();
    let incremental = repo.read("dist/layers/core.zip");
    repo.xtask(&[&build[..], &["--force"]].concat()).success();
    let scratch = repo.read("dist/layers/core.zip");
    assert!(
        incremental == scratch,
        "the incremental build shipped other bytes than a build from scratch"
    );
}

/// An architecture chosen on the command line obeys the rule that a
/// repository that locks installs only from locks, as a function's own
/// `architecture` does.
#[test]
fn another_architecture_on_the_command_line_needs_its_own_lock() {
    let repo = app();
    repo.xtask(&["lock"]).success();
    repo.xtask(&["build-layers", "--builder", "host", "--arch", "arm64"])
        .fails_with(
            2,
            "layers/core/requirements.python3.11-arm64.lock: missing, and the repository locks its profiles (run cargo xtask lock --arch arm64 core)",
        );
    repo.xtask(&["lock", "--arch", "arm64"]).success();
    assert!(repo
        .path()
        .join("layers/core/requirements.python3.11-arm64.lock")
        .is_file());
    repo.xtask(&["build-layers", "--builder", "host", "--arch", "arm64"])
        .success();
}

/// Tests that need a container engine (docker or podman) with the test
/// image: ignored by a plain `cargo test`, run by `-- --ignored needs_engine`,
/// and failed by [`support::require_engine`] where there is none.
mod needs_engine {
    use super::*;

    #[test]
    #[ignore = "needs a container engine with the test image (cargo xtask ci runs it)"]
    fn host_and_container_build_the_same_bytes_from_one_lock() {
        support::require_engine();
        let repo = app();
        let image = format!("image = \"{}\"", support::TEST_IMAGE);
        repo.set_metadata(&config().setting(&image).metadata());
        repo.xtask(&["lock"]).success();
        repo.xtask(&["build-layers", "--builder", "host"]).success();
        let host = sha256_hex(&repo.path().join("dist/layers/core.zip"));
        let run = repo.xtask(&["build-layers", "--builder", "container", "--json"]);
        let layers: serde_json::Value = serde_json::from_str(&run.success().stdout()).unwrap();
        assert_eq!(layers["layers"]["core"]["builder"], "container", "{layers:#}");
        let container = sha256_hex(&repo.path().join("dist/layers/core.zip"));
        assert_eq!(host, container, "the same lock, the same bytes");
    }
}
