//! `build-layers` against tiny wheels made by the tests: layer layout,
//! exclusion of runtime-provided distributions, determinism, the cache key,
//! failure isolation and the container builder.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::support::{self, sha256_hex, zip_names, Repo, AT};

const TWO_PROFILES: &str = r#"
[workspace.metadata.lambda]
runtime = "python3.11"

[workspace.metadata.lambda.layers.alpha]
requirements = "layers/alpha/requirements.txt"

[workspace.metadata.lambda.layers.beta]
requirements = "layers/beta/requirements.txt"
"#;

/// The two profiles, built with `image`.
fn with_image(image: &str) -> String {
    TWO_PROFILES.replace(
        "runtime = \"python3.11\"",
        &format!("runtime = \"python3.11\"\nimage = \"{image}\""),
    )
}

/// alpha: `app` that pulls in botocore transitively; beta: `tool`.
fn two_profiles() -> Repo {
    let repo = Repo::new(TWO_PROFILES);
    repo.profile("alpha", &["app==1.0"]);
    repo.wheel(
        "alpha",
        "app",
        "1.0",
        &[("app/__init__.py", "import botocore\n"), ("app/data.txt", "x")],
        &["botocore"],
    );
    repo.wheel(
        "alpha",
        "botocore",
        "1.0",
        &[("botocore/__init__.py", "# big\n")],
        &[],
    );
    repo.profile("beta", &["tool==2.0"]);
    repo.wheel(
        "beta",
        "tool",
        "2.0",
        &[("tool.py", "def run():\n    return 2\n")],
        &[],
    );
    repo
}

/// `ARGS --dry-run --json`: the plan, as the tool would run it.
fn plan_of(repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--dry-run", "--json"]);
    let run = repo.xtask_with(&all, env);
    serde_json::from_str(&run.success().stdout()).expect("the plan is JSON")
}

/// The plan's entry for dependency layer `name`: `state:key`.
fn layer_state(plan: &serde_json::Value, name: &str) -> String {
    let node = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["kind"] == "profile" && node["name"] == name)
        .unwrap_or_else(|| panic!("no layer {name} in {plan:#}"));
    format!("{}:{}", node["state"].as_str().unwrap(), node["key"])
}

#[test]
fn builds_python_layers_without_runtime_provided_packages() {
    let repo = two_profiles();
    let run = repo.xtask(&["build-layers", "--builder", "host", "--json"]);
    run.success();

    let names = zip_names(&repo.path().join("dist/layers/alpha.zip"));
    // By default, sourceless: the bytecode in place of the source.
    assert!(
        names.contains(&"python/app/__init__.pyc".to_string()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"python/app/__init__.py".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"python/app-1.0.dist-info/METADATA".to_string()),
        "{names:?}"
    );
    assert!(names.iter().all(|name| name.starts_with("python/")), "{names:?}");
    assert!(
        !names.iter().any(|name| name.contains("botocore")),
        "transitive botocore must be left out: {names:?}"
    );
    assert!(!names
        .iter()
        .any(|name| name.contains("__pycache__") || name.contains("/bin/")));

    let manifest = repo.manifest();
    let alpha = &manifest["layers"]["alpha"];
    assert_eq!(alpha["kind"], "requirements");
    assert_eq!(alpha["zip"], "dist/layers/alpha.zip");
    assert_eq!(alpha["excluded"], serde_json::json!(["botocore==1.0"]));
    assert_eq!(alpha["packages"][0]["name"], "app");
    assert_eq!(alpha["packages"][0]["top_level"], serde_json::json!(["app"]));
    assert_eq!(alpha["builder"], "host");
    assert_eq!(
        alpha["sha256"].as_str().unwrap(),
        sha256_hex(&repo.path().join("dist/layers/alpha.zip"))
    );
    assert_eq!(
        manifest["layers"]["beta"]["packages"][0]["top_level"],
        serde_json::json!(["tool"])
    );
    assert_eq!(manifest["runtime"], "python3.11");
    assert_eq!(manifest["architecture"], "x86_64");

    let json: serde_json::Value = serde_json::from_str(&run.stdout()).expect("--json prints JSON on stdout");
    assert_eq!(json["layers"]["alpha"]["sha256"], alpha["sha256"]);
    assert_eq!(json["failed"], serde_json::json!({}));
}

#[test]
fn an_explicit_exclude_list_replaces_the_default() {
    let repo = two_profiles();
    repo.set_metadata(&TWO_PROFILES.replace(
        "runtime = \"python3.11\"",
        "runtime = \"python3.11\"\nexclude = []",
    ));
    repo.xtask(&["build-layers", "--builder", "host", "alpha"])
        .success();
    let names = zip_names(&repo.path().join("dist/layers/alpha.zip"));
    assert!(
        names.contains(&"python/botocore/__init__.pyc".to_string()),
        "{names:?}"
    );
}

#[test]
fn same_inputs_give_identical_zips_across_checkouts_and_umasks() {
    let one = two_profiles();
    let two = two_profiles();
    // Different modes and mtimes on the inputs, different umask for the run.
    let requirements = two.path().join("layers/beta/requirements.txt");
    fs::set_permissions(&requirements, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    two.write(
        "layers/beta/requirements.txt",
        &String::from_utf8(two.read("layers/beta/requirements.txt")).unwrap(),
    );
    one.xtask_umask("022", &["build-layers", "--builder", "host"])
        .success();
    two.xtask_umask("077", &["build-layers", "--builder", "host"])
        .success();
    for layer in ["alpha", "beta"] {
        let path = format!("dist/layers/{layer}.zip");
        assert_eq!(
            one.read(&path),
            two.read(&path),
            "{layer}.zip differs between checkouts"
        );
    }
    assert_eq!(one.manifest()["layers"], two.manifest()["layers"]);
}

#[test]
fn a_second_run_is_a_cache_hit_that_rewrites_nothing() {
    let repo = two_profiles();
    repo.xtask(&["build-layers", "--builder", "host"]).success();
    let zip = repo.path().join("dist/layers/alpha.zip");
    let before = (
        sha256_hex(&zip),
        fs::metadata(&zip).unwrap().mtime_nsec(),
        fs::metadata(&zip).unwrap().mtime(),
    );
    let plan = plan_of(&repo, &["build-layers", "--builder", "host"], &[]);
    assert!(layer_state(&plan, "alpha").starts_with("fresh:"), "{plan:#}");
    assert_eq!(plan["builder"], "host");
    repo.xtask(&["build-layers", "--builder", "host"]).success();
    let after = (
        sha256_hex(&zip),
        fs::metadata(&zip).unwrap().mtime_nsec(),
        fs::metadata(&zip).unwrap().mtime(),
    );
    assert_eq!(before, after, "a cache hit must not rewrite the ZIP");
    // The wheels a requirements file finds are inputs: without them the
    // layer is stale (and cannot be built); restoring them is a hit again.
    let wheels = repo.path().join("layers/alpha/wheels");
    let kept = repo.path().join("kept-wheels");
    fs::rename(&wheels, &kept).unwrap();
    fs::create_dir(&wheels).unwrap();
    repo.xtask(&["build-layers", "--builder", "host"])
        .fails_with(1, "layer `alpha`");
    fs::remove_dir(&wheels).unwrap();
    fs::rename(&kept, &wheels).unwrap();
    let plan = plan_of(&repo, &["build-layers", "--builder", "host"], &[]);
    assert!(layer_state(&plan, "alpha").starts_with("fresh:"), "{plan:#}");
    // --force ignores the cache: the install runs again, to the same bytes.
    let forced = repo.xtask(&["build-layers", "--builder", "host", "--force", "alpha"]);
    assert!(
        forced.success().stderr().contains("layer alpha: built"),
        "{}",
        forced.stderr()
    );
    assert_eq!(sha256_hex(&zip), before.0);
}

/// Every input of the key changes the key; nothing else does.
#[test]
fn each_part_of_the_cache_key_causes_a_miss() {
    let repo = two_profiles();
    repo.xtask(&["build-layers", "--builder", "host"]).success();
    let key = |args: &[&str]| -> String {
        let mut all = vec!["build-layers", "--builder", "host", "alpha"];
        all.extend_from_slice(args);
        layer_state(&plan_of(&repo, &all, &[]), "alpha")
    };
    let base = key(&[]);
    assert!(base.starts_with("fresh:"), "{base}");
    assert_eq!(key(&[]), base, "the key is stable");

    let mut seen = vec![base.clone()];
    let mut expect_miss = |label: &str, value: String| {
        assert!(
            value.starts_with("stale:"),
            "{label}: expected a miss, got {value}"
        );
        assert!(
            !seen.contains(&value),
            "{label}: key collides with an earlier one"
        );
        seen.push(value);
    };
    expect_miss("architecture", key(&["--arch", "arm64"]));
    // pip's version is not known before a run asks: the plan says so.
    assert_eq!(key(&["--installer", "pip"]), "stale:null");

    let with = |extra: &str| {
        TWO_PROFILES.replace(
            "runtime = \"python3.11\"",
            &format!("runtime = \"python3.11\"\n{extra}"),
        )
    };
    repo.set_metadata(&TWO_PROFILES.replace("python3.11", "python3.12"));
    expect_miss("runtime", key(&[]));
    repo.set_metadata(&with("exclude = [\"boto3\"]"));
    expect_miss("exclude", key(&[]));
    repo.set_metadata(&with("bytecode = \"checked-hash\""));
    expect_miss("bytecode", key(&[]));
    repo.set_metadata(TWO_PROFILES);
    assert_eq!(key(&[]), base, "back to the original configuration: a hit again");

    let requirements = String::from_utf8(repo.read("layers/alpha/requirements.txt")).unwrap();
    repo.write(
        "layers/alpha/requirements.txt",
        &format!("{requirements}# a comment changes the bytes\n"),
    );
    expect_miss("requirements", key(&[]));
    repo.write("layers/alpha/requirements.txt", &requirements);
    let with_env = |name: &str, value: &str| {
        let plan = plan_of(
            &repo,
            &["build-layers", "--builder", "host", "alpha"],
            &[(name, value)],
        );
        layer_state(&plan, "alpha")
    };
    expect_miss("index", with_env("UV_INDEX_URL", "http://127.0.0.1:9/simple"));
    repo.write("constraints.txt", "app<2\n");
    let constrained = with_env("UV_CONSTRAINT", "constraints.txt");
    repo.write("constraints.txt", "app<3\n");
    assert_ne!(
        with_env("UV_CONSTRAINT", "constraints.txt"),
        constrained,
        "the constraint file's content counts"
    );
    expect_miss("constraint", constrained);
    repo.write("layers/common.txt", "# shared pins\n");
    repo.write(
        "layers/alpha/requirements.txt",
        &format!("{requirements}-c ../common.txt\n"),
    );
    let included = key(&[]);
    repo.write("layers/common.txt", "# shared pins, edited\n");
    assert_ne!(key(&[]), included, "an included file's content counts");
    expect_miss("included file", included);
}

#[test]
fn one_failing_profile_does_not_stop_the_others() {
    let repo = two_profiles();
    repo.profile("alpha", &["nothere==9.9"]);
    let run = repo.xtask(&["build-layers", "--builder", "host", "--jobs", "2"]);
    run.fails_with(1, "layer `alpha`");
    assert!(
        run.stderr().contains("nothere"),
        "the installer's own lines name the package:\n{}",
        run.stderr()
    );
    assert!(run.stderr().contains("1 of 2 step(s) failed"), "{}", run.stderr());
    assert!(repo.path().join("dist/layers/beta.zip").is_file());
    assert!(!repo.path().join("dist/layers/alpha.zip").exists());
    // A manifest would describe a layer that is not there: none is written.
    assert!(!repo.path().join("dist/manifest.json").exists());
    let json: serde_json::Value = serde_json::from_str(
        &repo
            .xtask(&["build-layers", "--builder", "host", "--json"])
            .stdout(),
    )
    .unwrap();
    assert!(json["layers"]["beta"].is_object());
    assert!(json["failed"]["alpha"].is_string());
    // Nothing half-built is left in the cache.
    let entries: Vec<_> = fs::read_dir(repo.path().join("target/lambda/store/profile"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(entries.len(), 1, "only beta's entry: {entries:?}");
}

#[test]
fn a_source_only_package_points_to_the_container() {
    let repo = two_profiles();
    repo.profile("alpha", &["sdistonly==1.0"]);
    // A source distribution and no wheel: nothing to cross-install.
    let wheels = repo.path().join("layers/alpha/wheels");
    let status = std::process::Command::new("tar")
        .args(["-czf", "sdistonly-1.0.tar.gz", "--files-from", "/dev/null"])
        .current_dir(&wheels)
        .status()
        .unwrap();
    assert!(status.success());
    let run = repo.xtask(&["build-layers", "--builder", "host", "alpha"]);
    run.fails_with(1, "--builder container");
    // The installer's own message names the package; the tool says so too.
    assert!(
        run.stderr().contains("no wheel of `sdistonly`"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_wheel_for_the_wrong_platform_is_caught_at_build_time() {
    let repo = two_profiles();
    repo.profile("alpha", &["native==1.0"]);
    // A "pure" wheel that smuggles in an aarch64-only extension.
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[18..20].copy_from_slice(&183u16.to_le_bytes());
    repo.wheel_bytes("alpha", "native", "1.0", &[("native/_ext.so", &elf)], &[]);
    repo.xtask(&["build-layers", "--builder", "host", "alpha"])
        .fails_with(1, "native/_ext.so is not a x86_64 binary");
}

#[test]
fn pip_is_the_fallback_installer_and_gives_the_same_layer_content() {
    let repo = two_profiles();
    let run = repo.xtask(&[
        "build-layers",
        "--builder",
        "host",
        "--installer",
        "pip",
        "--json",
        "beta",
    ]);
    let json: serde_json::Value = serde_json::from_str(&run.success().stdout()).unwrap();
    assert!(json["layers"]["beta"]["installer"]
        .as_str()
        .unwrap()
        .starts_with("pip "));
    let names = zip_names(&repo.path().join("dist/layers/beta.zip"));
    assert!(names.contains(&"python/tool.pyc".to_string()), "{names:?}");
}

#[test]
fn hash_based_bytecode_when_asked() {
    let repo = two_profiles();
    repo.set_metadata(&TWO_PROFILES.replace(
        "runtime = \"python3.11\"",
        "runtime = \"python3.11\"\nbytecode = \"checked-hash\"",
    ));
    // This kind of machine has Python 3.11, the runtime's.
    repo.xtask(&["build-layers", "--builder", "host", "beta"])
        .success();
    let zip = repo.path().join("dist/layers/beta.zip");
    let names = zip_names(&zip);
    let pyc = "python/__pycache__/tool.cpython-311.pyc";
    assert!(names.contains(&pyc.to_string()), "{names:?}");
    let mut archive = zip::ZipArchive::new(fs::File::open(&zip).unwrap()).unwrap();
    let mut header = [0u8; 8];
    std::io::Read::read_exact(&mut archive.by_name(pyc).unwrap(), &mut header).unwrap();
    // PEP 552 flags word: bit 0 = hash-based, bit 1 = checked.
    assert_eq!(u32::from_le_bytes(header[4..8].try_into().unwrap()), 0b11);
}

#[test]
fn a_layer_removed_from_the_config_leaves_the_manifest() {
    let repo = two_profiles();
    repo.xtask(&["build-layers", "--builder", "host", "-q"]).success();
    assert!(repo.manifest()["layers"]["beta"].is_object());
    let without_beta = TWO_PROFILES
        .split("[workspace.metadata.lambda.layers.beta]")
        .next()
        .unwrap()
        .to_string();
    repo.set_metadata(&without_beta);
    repo.xtask(&["build-layers", "--builder", "host", "-q"]).success();
    let layers = repo.manifest()["layers"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(layers, ["alpha"], "Terraform reads this map: no .tf edit needed");
}

/// Python 3.11 interpreters of two different releases, each as its real
/// binary and full version: every `python3.11` on PATH asked (a version
/// manager's shim answers with its own choice). With only one release
/// here, a copy of it (`venv --copies`) is the second: another binary, the
/// same version.
fn two_pythons(scratch: &std::path::Path) -> [(std::path::PathBuf, String); 2] {
    let script =
        "import os, platform, sys; print(os.path.realpath(sys.executable)); print(platform.python_version())";
    let mut found: Vec<(std::path::PathBuf, String)> = Vec::new();
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let Ok(output) = std::process::Command::new(dir.join("python3.11"))
            .args(["-c", script])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut lines = text.lines();
        if let (true, Some(path), Some(version)) = (output.status.success(), lines.next(), lines.next()) {
            if !found.iter().any(|(_, seen)| seen == version) {
                found.push((path.into(), version.to_string()));
            }
        }
    }
    assert!(!found.is_empty(), "this test needs a python3.11 on PATH");
    if found.len() == 1 {
        let copy = scratch.join("copy");
        let status = std::process::Command::new(&found[0].0)
            .args(["-m", "venv", "--copies", "--without-pip"])
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        found.push((copy.join("bin/python3.11"), found[0].1.clone()));
    }
    [found[0].clone(), found[1].clone()]
}

/// A version manager's shim (pyenv, asdf, mise) is a script whose answer
/// depends on its environment: the key follows the interpreter that runs,
/// and the incremental build equals the one from scratch.
#[test]
fn the_interpreter_behind_a_shim_is_what_runs() {
    let scratch = tempfile::tempdir().unwrap();
    let [(first, first_version), (second, second_version)] = two_pythons(scratch.path());
    let shims = scratch.path().join("shims");
    fs::create_dir_all(&shims).unwrap();
    let shim = shims.join("python3.11");
    fs::write(
        &shim,
        format!(
            "#!/bin/sh\n# a stand-in for a pyenv shim (which names pyenv, as this line does): it chooses by PYENV_VERSION\nif [ \"$PYENV_VERSION\" = second ]; then exec '{}' \"$@\"; fi\nexec '{}' \"$@\"\n",
            second.display(),
            first.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap());
    let args = ["build-layers", "--builder", "host", "alpha"];
    let build = |repo: &Repo, choice: &str| {
        repo.xtask_with(&args, &[("PATH", &path), ("PYENV_VERSION", choice)])
            .success();
        let plan = plan_of(repo, &args, &[("PATH", &path), ("PYENV_VERSION", choice)]);
        let state = layer_state(&plan, "alpha");
        assert!(state.starts_with("fresh:"), "{choice}: {plan:#}");
        state
    };

    let repo = two_profiles();
    let with_first = build(&repo, "first");
    let unrelated = plan_of(
        &repo,
        &args,
        &[("PATH", &path), ("PYENV_VERSION", "first"), ("UNRELATED", "1")],
    );
    assert_eq!(
        layer_state(&unrelated, "alpha"),
        with_first,
        "a variable the shim ignores"
    );
    let switched = plan_of(&repo, &args, &[("PATH", &path), ("PYENV_VERSION", "second")]);
    assert!(
        !layer_state(&switched, "alpha").starts_with("fresh:"),
        "another interpreter runs ({first_version} -> {second_version}): {switched:#}"
    );
    let with_second = build(&repo, "second");
    assert_ne!(with_second, with_first, "{first:?} and {second:?} share a key");

    let from_scratch = two_profiles();
    assert_eq!(build(&from_scratch, "second"), with_second);
    assert_eq!(
        repo.read("dist/layers/alpha.zip"),
        from_scratch.read("dist/layers/alpha.zip")
    );
}

/// A URL's credentials never show: not in a failed build's errors, not in
/// `--dry-run` or `--json`, not in an error about the configuration.
#[test]
fn index_credentials_never_reach_the_output() {
    let repo = two_profiles();
    // beta asks the index, which nothing listens on: it fails at once.
    repo.write("layers/beta/requirements.txt", "tool==2.0\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let index = |token: &str| format!("https://ci-bot:{token}{AT}127.0.0.1:{port}/simple");
    let (one, two) = (index("SECRET-TOKEN-ONE"), index("SECRET-TOKEN-TWO"));
    let env = |url: &str| {
        [
            ("UV_INDEX_URL", url.to_string()),
            ("PIP_INDEX_URL", url.to_string()),
            ("UV_HTTP_RETRIES", "0".to_string()),
            ("PIP_RETRIES", "0".to_string()),
        ]
    };
    let run = |args: &[&str], url: &str| {
        let env = env(url);
        let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
        repo.xtask_with(args, &env)
    };
    let mut outputs = Vec::new();
    let built = run(&["build-layers", "--builder", "host", "-v"], &one);
    built.fails_with(1, "layer `beta`");
    outputs.push(built);
    for installer in ["uv", "pip"] {
        outputs.push(run(
            &[
                "build-layers",
                "--builder",
                "host",
                "--installer",
                installer,
                "--json",
                "-v",
            ],
            &two,
        ));
    }
    // The index changed: each plan says so, with the value it changed to.
    outputs.push(run(
        &["build-layers", "--builder", "host", "--dry-run", "-v"],
        &one,
    ));
    outputs.push(run(
        &["build-layers", "--builder", "host", "--dry-run", "--json"],
        &two,
    ));
    outputs.push(run(
        &["build-layers", "--builder", "host", "--dry-run", "-q"],
        &one,
    ));
    repo.set_metadata(&TWO_PROFILES.replace(
        "runtime = \"python3.11\"",
        &format!("runtime = \"python3.11\"\nremote_cache = \"{one}\""),
    ));
    let misconfigured = run(&["build-layers", "--builder", "host"], &one);
    misconfigured.fails_with(2, "remote_cache");
    outputs.push(misconfigured);
    for output in &outputs {
        for text in [output.stdout(), output.stderr()] {
            assert!(!text.contains("SECRET-TOKEN"), "a token in the output:\n{text}");
        }
    }
    assert!(
        outputs
            .iter()
            .any(|output| output.stderr().contains("ci-bot:***@")),
        "the URLs are shown, redacted"
    );
}

/// Tests that need a container engine (docker or podman) with the test
/// image: ignored by a plain `cargo test`, run by `-- --ignored needs_engine`,
/// and failed by [`support::require_engine`] where there is none.
mod needs_engine {
    use super::*;

    #[test]
    #[ignore = "needs a container engine with the test image (cargo xtask ci runs it)"]
    fn the_container_builder_runs_in_a_real_engine() {
        support::require_engine();
        let repo = two_profiles();
        repo.set_metadata(&with_image(support::TEST_IMAGE));
        repo.xtask(&["build-layers", "--builder", "container"]).success();
        let zip = repo.path().join("dist/layers/alpha.zip");
        let names = zip_names(&zip);
        assert!(
            names.contains(&"python/app/__init__.pyc".to_string()),
            "{names:?}"
        );
        assert!(!names.iter().any(|name| name.contains("botocore")), "{names:?}");
        let manifest = repo.manifest();
        assert_eq!(manifest["layers"]["alpha"]["builder"], "container");
        // The image's Python (the runtime's version) compiled and proved it.
        assert_eq!(manifest["layers"]["alpha"]["bytecode"], "sourceless");
        // Output belongs to the invoking user, not to root inside the container.
        let uid = fs::metadata(repo.path()).unwrap().uid();
        assert_eq!(fs::metadata(&zip).unwrap().uid(), uid);
        for entry in fs::read_dir(repo.path().join("target/lambda/store/profile"))
            .unwrap()
            .flatten()
        {
            assert_eq!(entry.metadata().unwrap().uid(), uid);
        }
        // auto picks the container when the image is there, and it is a cache hit.
        let auto = plan_of(&repo, &["build-layers"], &[]);
        assert_eq!(auto["builder"], "container", "{auto:#}");
        assert!(layer_state(&auto, "alpha").starts_with("fresh:"), "{auto:#}");
        // A missing image under auto falls back to the host, saying why.
        repo.set_metadata(&with_image("xtask-test-missing:none"));
        let fallback = repo.xtask(&["build-layers"]);
        fallback.success();
        assert!(
            fallback
                .stderr()
                .contains("builder: host (docker has no image xtask-test-missing:none")
                || fallback
                    .stderr()
                    .contains("builder: host (podman has no image xtask-test-missing:none"),
            "{}",
            fallback.stderr()
        );
        assert_eq!(repo.manifest()["layers"]["alpha"]["builder"], "host");
    }

    /// A requirements file may include one outside its folder (`-r ../x.txt`):
    /// the container sees the repository, not only the requirements' folder.
    #[test]
    #[ignore = "needs a container engine with the test image (cargo xtask ci runs it)"]
    fn an_included_requirements_file_is_there_in_the_container_too() {
        support::require_engine();
        let repo = two_profiles();
        repo.set_metadata(&with_image(support::TEST_IMAGE));
        repo.write(
            "layers/beta/requirements.txt",
            "--no-index\n--find-links wheels\n-r ../pins/beta.txt\n",
        );
        repo.write("layers/pins/beta.txt", "tool==2.0\n");
        for builder in ["container", "host"] {
            repo.xtask(&["build-layers", "--builder", builder, "beta"])
                .success();
            let names = zip_names(&repo.path().join("dist/layers/beta.zip"));
            assert!(
                names.contains(&"python/tool.pyc".to_string()),
                "{builder}: {names:?}"
            );
        }
    }

    /// Complaint 7 of peers.md: arm64 layers built under slow emulation, or with
    /// x86 binaries. auto cross-installs for a foreign architecture instead.
    #[test]
    #[ignore = "needs a container engine with the test image (cargo xtask ci runs it)"]
    fn a_foreign_architecture_is_cross_installed_not_emulated() {
        support::require_engine();
        let foreign = if std::env::consts::ARCH == "x86_64" {
            "arm64"
        } else {
            "x86_64"
        };
        let machine = if foreign == "arm64" { "aarch64" } else { "x86_64" };
        let repo = two_profiles();
        repo.set_metadata(&with_image(support::TEST_IMAGE));
        // A first run learns what the engine has; a dry run only reads that.
        repo.xtask(&["build-layers", "--arch", foreign]).success();
        let plan = plan_of(&repo, &["build-layers", "--arch", foreign], &[]);
        let emulated = std::path::Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{machine}")).exists();
        if emulated {
            assert_eq!(plan["builder"], "container", "{plan:#}");
            return;
        }
        assert_eq!(plan["builder"], "host", "{plan:#}");
        let notes = plan["notes"].to_string();
        assert!(
            notes.contains(&format!("cross-installing {foreign} wheels")),
            "{notes}"
        );
        repo.xtask(&["build-layers", "--arch", foreign, "--builder", "container"])
            .fails_with(2, "need an emulator on this machine");
        assert!(
            repo.path().join("dist/layers/alpha.zip").is_file(),
            "a machine that cannot build is no reason to empty dist/"
        );
    }

    /// What the memo knows of an engine's images belongs to the daemon it
    /// asked: pointed at another daemon, the plan asks again instead of keying
    /// the layer with the first daemon's image id.
    #[test]
    #[ignore = "needs a container engine with the test image (cargo xtask ci runs it)"]
    fn the_image_id_belongs_to_the_daemon_that_answered() {
        support::require_engine();
        let repo = two_profiles();
        repo.set_metadata(&with_image(support::TEST_IMAGE));
        let args = ["build-layers", "--builder", "container", "beta"];
        repo.xtask(&args).success();
        let plan = plan_of(&repo, &args, &[]);
        assert!(layer_state(&plan, "beta").starts_with("fresh:"), "{plan:#}");
        let elsewhere = plan_of(
            &repo,
            &args,
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        assert!(
            !layer_state(&elsewhere, "beta").starts_with("fresh:"),
            "another daemon's images are not known: {elsewhere:#}"
        );
    }
}

/// Tests that install from PyPI: ignored by a plain `cargo test`, run by
/// `-- --ignored needs_pypi`, and failed where PyPI does not answer.
mod needs_pypi {
    use super::*;

    /// With no uv on PATH the tool installs its pinned uv into the cache with
    /// pip, from PyPI.
    #[test]
    #[ignore = "needs PyPI, where pip finds uv (cargo xtask ci runs it)"]
    fn uv_is_bootstrapped_into_the_cache_when_absent() {
        let repo = two_profiles();
        let bin = repo.path().join("bin-without-uv");
        fs::create_dir_all(&bin).unwrap();
        let python = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap();
        let python = String::from_utf8(python.stdout).unwrap();
        std::os::unix::fs::symlink(python.trim(), bin.join("python3")).unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let cargo_dir = std::path::Path::new(&cargo)
            .parent()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default();
        let path = format!("{}:{cargo_dir}:/usr/bin:/bin", bin.display());
        let run = repo.xtask_with(
            &["build-layers", "--builder", "host", "--installer", "uv", "beta"],
            &[("PATH", &path)],
        );
        assert!(
            run.code() == 0 || !run.stderr().contains("bootstrapping uv"),
            "this test needs PyPI, where pip finds the pinned uv:\n{}",
            run.stderr()
        );
        run.success();
        assert!(run.stderr().contains("uv 0.13.9"), "{}", run.stderr());
        assert!(repo.path().join("target/lambda/tools/uv-0.13.9/bin/uv").is_file());
        assert!(repo.path().join("dist/layers/beta.zip").is_file());
        // The run remembered the uv it bootstrapped: the dry run that follows,
        // still without uv on PATH, plans what the run does (nothing).
        for installer in ["uv", "auto"] {
            let args = [
                "build-layers",
                "--builder",
                "host",
                "--installer",
                installer,
                "beta",
            ];
            let plan = plan_of(&repo, &args, &[("PATH", &path)]);
            assert!(
                layer_state(&plan, "beta").starts_with("fresh:"),
                "{installer}: {plan:#}"
            );
            let again = repo.xtask_with(&args, &[("PATH", &path)]);
            let stderr = again.success().stderr();
            assert!(
                !stderr.contains("built in") && !stderr.contains("bootstrapped"),
                "{installer}: {stderr}"
            );
        }
    }
}
