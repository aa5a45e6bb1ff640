//! `smoke` against small applications built by the tests: Lambda's layout
//! and `sys.path`, isolation from the host, missing modules and the layer
//! that would provide them, errors at import, the import budget, layer order
//! and the container runner.

use std::fs;

use crate::support::{self, App, Repo, Run};

/// The standard application and `plain`, a function on `shared` alone.
fn config() -> App {
    App::standard().function("plain", "plain.lambda_handler", &["shared"])
}

/// Checks, at import, that the handler sees what Lambda would show it.
const HELLO: &str = r#"
import os
import sys

import shared
import tool

task_root = os.environ["LAMBDA_TASK_ROOT"]
assert sys.path[0] == task_root, sys.path
assert os.getcwd() == task_root
assert sys.path[1].endswith("/opt/python/lib/python3.11/site-packages"), sys.path
assert sys.path[2].endswith("/opt/python"), sys.path
assert tool.__file__.startswith(sys.path[2]), tool.__file__
assert os.environ["AWS_LAMBDA_FUNCTION_NAME"] == "hello"
assert os.environ["_HANDLER"] == "hello.lambda_handler"
assert os.environ["AWS_REGION"] == "us-east-1"
assert "XTASK_TEST_HOST_ONLY" not in os.environ, "the host environment leaked in"
try:
    import pip
except ImportError:
    pass
else:
    raise AssertionError("the host's site-packages leaked in: " + pip.__file__)
print("handler output must not break the report")


def lambda_handler(event, context):
    return {"tool": tool.X, "shared": shared.NAME}
"#;

const PLAIN: &str = "import shared\n\n\ndef lambda_handler(event, context):\n    return shared.NAME\n";

fn app() -> Repo {
    let repo = config().repo();
    repo.write("lambdas/hello/hello.py", HELLO);
    repo.write("lambdas/plain/plain.py", PLAIN);
    repo
}

fn build(repo: &Repo, extra: &[&str]) {
    let mut layers = vec!["build-layers", "--builder", "host"];
    layers.extend_from_slice(extra);
    repo.xtask(&layers).success();
    let mut package = vec!["package"];
    package.extend_from_slice(extra);
    repo.xtask(&package).success();
}

/// `smoke ARGS` with an empty stand-in for the runtime's site-packages (no
/// network) and a host variable that must not reach the handler. Fails the
/// test when this host cannot run the smoke test at all.
fn smoke(repo: &Repo, args: &[&str]) -> Run {
    let site = repo.path().join("runtime-site");
    fs::create_dir_all(&site).unwrap();
    smoke_with_site(repo, args, &site.display().to_string())
}

fn smoke_with_site(repo: &Repo, args: &[&str], site: &str) -> Run {
    let mut all = vec!["smoke"];
    all.extend_from_slice(args);
    let run = repo.xtask_with(
        &all,
        &[("XTASK_RUNTIME_SITE", site), ("XTASK_TEST_HOST_ONLY", "1")],
    );
    // The machine cannot run functions at all (a whole-run skip), not one
    // function's verdict (an external layer not at hand is such a verdict).
    assert!(
        !(run.code() == 0
            && run.stderr().contains("smoke: skipped:")
            && !run.stderr().contains("may come from external layer")),
        "this test runs functions, and this host cannot: {}",
        run.stderr().trim()
    );
    run
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|err| panic!("{err}: {}", run.stdout()))
}

#[test]
fn the_plan_names_what_is_stale_and_touches_nothing() {
    let repo = app();
    build(&repo, &[]);
    let site = repo.path().join("runtime-site");
    fs::create_dir_all(&site).unwrap();
    let site = site.display().to_string();
    let env = [("XTASK_RUNTIME_SITE", site.as_str())];
    let run = repo.xtask_with(&["smoke", "--dry-run", "hello"], &env);
    assert!(
        run.success().stdout().contains("smoke hello: not built yet"),
        "{}",
        run.stdout()
    );
    assert!(!run.stdout().contains("smoke plain"), "{}", run.stdout());
    assert!(!repo.path().join("target/lambda/sandbox").exists());
    assert!(!repo.path().join("target/lambda/store/smoke").exists());
}

#[test]
fn usage_errors_say_what_to_run() {
    let repo = app();
    repo.xtask(&["smoke", "nope"])
        .fails_with(2, "unknown function `nope` (configured: hello, plain)");
}

#[test]
fn a_foreign_architecture_is_skipped_on_the_host() {
    let foreign = if std::env::consts::ARCH == "aarch64" {
        "x86_64"
    } else {
        "arm64"
    };
    let repo = app();
    build(&repo, &["--arch", foreign]);
    let run = repo.xtask_with(
        &["smoke", "--builder", "host", "--arch", foreign, "--json"],
        &[("XTASK_RUNTIME_SITE", "/")],
    );
    run.success();
    assert!(run.stderr().contains("smoke: skipped:"), "{}", run.stderr());
    assert!(json(&run)["functions"]["hello"]["skipped"].is_string());
}

/// Tests that run functions under AWS's runtime interface client: ignored
/// by a plain `cargo test`, run by `-- --ignored needs_runtime`, and failed
/// by [`support::require_runtime`] where `XTASK_RUNTIME_CLIENT` names none.
mod needs_runtime {
    use super::*;

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_correct_app_imports_with_lambdas_layout() {
        support::require_runtime();
        let repo = app();
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host", "--json"]);
        run.success();
        let report = json(&run);
        for function in ["hello", "plain"] {
            let outcome = &report["functions"][function];
            assert_eq!(outcome["ok"], true, "{report:#}");
            assert!(outcome["import_ms"].as_f64().unwrap() >= 0.0, "{report:#}");
            assert_eq!(outcome["budget_ms"], 3000);
            assert!(outcome["error"].is_null());
        }
        assert!(run.stderr().contains("verdict"), "{}", run.stderr());
        // The temporary layout is gone.
        let leftovers: Vec<_> = fs::read_dir(repo.path().join("target/lambda/sandbox"))
            .unwrap()
            .flatten()
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_module_no_layer_provides_is_named() {
        support::require_runtime();
        let repo = app();
        repo.write("lambdas/plain/plain.py", &format!("import twilio\n{PLAIN}"));
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host", "--json"]);
        run.fails_with(
            1,
            "Runtime.ImportModuleError: Unable to import module 'plain': No module named 'twilio'",
        );
        assert!(
            run.stderr().contains("provided by no attached layer"),
            "{}",
            run.stderr()
        );
        assert!(
            run.stderr().contains("1 of 2 function(s) failed"),
            "{}",
            run.stderr()
        );
        let report = json(&run);
        assert_eq!(report["functions"]["plain"]["ok"], false);
        assert_eq!(report["functions"]["plain"]["missing_module"], "twilio");
        assert_eq!(report["functions"]["hello"]["ok"], true);
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_layer_that_is_not_attached_is_named() {
        support::require_runtime();
        let repo = app();
        repo.write("lambdas/plain/plain.py", &format!("import tool\n{PLAIN}"));
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host", "plain"]);
        run.fails_with(1, "layer `core` provides it but is not attached to `plain`");
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn an_error_at_import_fails_with_its_message() {
        support::require_runtime();
        let repo = app();
        repo.write(
            "lambdas/plain/plain.py",
            &format!("{PLAIN}\nraise RuntimeError('boom')\n"),
        );
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host", "plain"]);
        run.fails_with(1, "RuntimeError: boom (raised in plain line 7)");
        // Lambda's paths, not the temporary layout's.
        assert!(
            run.stderr().contains("File \"/var/task/plain.py\", line 7"),
            "{}",
            run.stderr()
        );
        assert!(!run.stderr().contains("<frozen"), "{}", run.stderr());
    }

    /// Init fails as Lambda's does: a handler the module does not define is
    /// `Runtime.HandlerNotFound`. (One that is not callable fails only when an
    /// event comes: `invoke` shows that.)
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_missing_handler_fails_as_lambda_says() {
        support::require_runtime();
        let repo = app();
        // It passes package's static check; only importing shows the problem.
        repo.write(
            "lambdas/plain/plain.py",
            &format!("{PLAIN}\ndel lambda_handler\n"),
        );
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host", "--json"]);
        run.fails_with(
            1,
            "Runtime.HandlerNotFound: Handler 'lambda_handler' missing on module 'plain'",
        );
        let report = json(&run);
        assert_eq!(
            report["functions"]["plain"]["error_type"],
            "Runtime.HandlerNotFound"
        );
        assert_eq!(report["functions"]["hello"]["ok"], true);
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_slow_import_fails_the_budget() {
        support::require_runtime();
        let repo = app();
        repo.set_metadata(&config().setting("import_budget = \"1 ms\"").metadata());
        repo.write(
            "lambdas/plain/plain.py",
            &format!("import time\ntime.sleep(0.05)\n{PLAIN}"),
        );
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host", "--json", "plain"]);
        run.fails_with(1, "over the budget of 1 ms (import_budget)");
        let report = json(&run);
        assert!(report["functions"]["plain"]["import_ms"].as_f64().unwrap() >= 50.0);
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_later_layer_overwrites_an_earlier_one() {
        support::require_runtime();
        let repo = Repo::new(
            r#"
[workspace.metadata.lambda]
runtime = "python3.11"

[workspace.metadata.lambda.layers.first]
requirements = "layers/first/requirements.txt"

[workspace.metadata.lambda.layers.second]
requirements = "layers/second/requirements.txt"

[workspace.metadata.lambda.functions.forward]
source = "lambdas/forward"
handler = "forward.lambda_handler"
layers = ["first", "second"]

[workspace.metadata.lambda.functions.backward]
source = "lambdas/backward"
handler = "backward.lambda_handler"
layers = ["second", "first"]
"#,
        );
        repo.profile("first", &["one==1.0"]);
        repo.wheel("first", "one", "1.0", &[("same.py", "WHO = 'first'\n")], &[]);
        repo.profile("second", &["two==1.0"]);
        repo.wheel("second", "two", "1.0", &[("same.py", "WHO = 'second'\n")], &[]);
        let handler = |expected: &str| {
            format!(
                "import same\n\nassert same.WHO == {expected:?}, same.WHO\n\n\ndef lambda_handler(event, context):\n    return same.WHO\n"
            )
        };
        repo.write("lambdas/forward/forward.py", &handler("second"));
        repo.write("lambdas/backward/backward.py", &handler("first"));
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host"]);
        run.success();
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn boto3_comes_from_the_runtime() {
        support::require_runtime();
        let repo = app();
        repo.write("lambdas/plain/plain.py", &format!("import boto3\n{PLAIN}"));
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host", "plain"]);
        run.fails_with(1, "`boto3` is provided by the Lambda runtime");
        // A stand-in for the runtime's own site-packages, after the layers on sys.path.
        let site = repo.path().join("fake-runtime");
        fs::create_dir_all(&site).unwrap();
        fs::write(
            site.join("boto3.py"),
            "import sys\nassert __file__.startswith(sys.path[3])\n",
        )
        .unwrap();
        smoke_with_site(
            &repo,
            &["--builder", "host", "plain"],
            &site.display().to_string(),
        )
        .success();
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn an_external_layer_is_noted_and_not_blamed() {
        support::require_runtime();
        let repo = app();
        let powertools = config()
            .layer(
                "powertools",
                &[
                    "arn = \"arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7\"",
                    "unzipped_size = \"80 MiB\"",
                ],
            )
            .function("plain", "plain.lambda_handler", &["shared", "powertools"]);
        repo.set_metadata(&powertools.metadata());
        repo.write(
            "lambdas/plain/plain.py",
            &format!("import aws_lambda_powertools\n{PLAIN}"),
        );
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "host", "--json", "plain"]);
        run.success();
        assert!(
            run.stderr()
                .contains("layer `powertools` is external: not available here"),
            "{}",
            run.stderr()
        );
        let outcome = &json(&run)["functions"]["plain"];
        assert_eq!(outcome["ok"], false);
        assert!(outcome["skipped"]
            .as_str()
            .unwrap()
            .contains("external layer `powertools`"));
    }

    /// smoke imports what is current: it re-packages an edited handler first.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn smoke_never_imports_a_stale_zip() {
        support::require_runtime();
        let repo = app();
        build(&repo, &[]);
        let first = smoke(&repo, &["--builder", "host"]);
        first.success();
        repo.write(
            "lambdas/plain/plain.py",
            "raise RuntimeError('boom')\n\ndef lambda_handler(event, context):\n    pass\n",
        );
        smoke(&repo, &["--builder", "host", "plain"]).fails_with(1, "RuntimeError: boom");
    }

    /// The layers' `/opt` is laid out once and kept across handler edits;
    /// a kept tree changed behind the tool's back is laid out again, never
    /// imported from.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_kept_layer_tree_outlives_a_handler_edit_and_is_never_used_damaged() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        support::require_runtime();
        let repo = app();
        build(&repo, &[]);
        smoke(&repo, &["--builder", "host", "plain"]).success();
        // In the cache every repository shares (the test's own) when the
        // sandbox user reaches it, else under target/lambda.
        let kept = [
            repo.user_cache().join("laid-out"),
            repo.path().join("target/lambda/laid-out"),
        ]
        .into_iter()
        .find(|dir| dir.is_dir())
        .expect("a folder of kept trees");
        let trees = || -> Vec<std::path::PathBuf> {
            let mut trees: Vec<_> = fs::read_dir(&kept)
                .unwrap()
                .flatten()
                .filter(|item| !item.file_name().to_string_lossy().starts_with('.'))
                .map(|item| item.path())
                .collect();
            trees.sort();
            trees
        };
        let [tree] = trees().try_into().expect("one kept tree: plain's layers");
        // A tree laid out again is a new `opt` folder: another inode, or the
        // same one reused with a new ctime.
        let made = || {
            let opt = fs::metadata(tree.join("opt")).unwrap();
            (opt.ino(), opt.ctime(), opt.ctime_nsec())
        };
        let before = made();

        let edit = |n: u32| repo.write("lambdas/plain/plain.py", &format!("{PLAIN}\n# edit {n}\n"));
        edit(1);
        smoke(&repo, &["--builder", "host", "plain"]).success();
        assert_eq!(
            trees(),
            vec![tree.clone()],
            "a handler edit keeps the layers' tree"
        );
        assert_eq!(made(), before, "and does not lay it out again");

        // The shared code's module, changed in place in the kept tree.
        let module = tree.join("opt/python/shared.py");
        let module = if module.exists() {
            module
        } else {
            tree.join("opt/python/shared/__init__.py")
        };
        for dir in module
            .ancestors()
            .skip(1)
            .take_while(|dir| dir.starts_with(&tree))
        {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(&module, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&module, "raise RuntimeError('imported from a damaged tree')\n").unwrap();
        edit(2);
        smoke(&repo, &["--builder", "host", "plain"]).success();
        assert_ne!(made(), before, "the damaged tree was laid out again");
        assert!(
            !fs::read_to_string(&module).unwrap().contains("damaged tree"),
            "the kept tree holds the layer's own module again"
        );
    }

    /// A fresh clone on a used machine: the layers' tree that another
    /// repository's smoke test laid out from the same bytes, in the cache
    /// both share, is used as it is, and nothing is laid out again.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn another_clone_uses_the_layers_tree_laid_out_before() {
        use std::os::unix::fs::MetadataExt;
        support::require_runtime();
        let (first, second) = (app(), app());
        build(&first, &[]);
        build(&second, &[]);
        let cache = first.path().join("shared-cache");
        let site = first.path().join("runtime-site");
        fs::create_dir_all(&site).unwrap();
        let smoke_in = |repo: &Repo| {
            let env = [
                ("XTASK_RUNTIME_SITE", site.to_str().unwrap()),
                ("XTASK_TEST_HOST_ONLY", "1"),
                ("XTASK_CACHE_DIR", cache.to_str().unwrap()),
            ];
            repo.xtask_with(&["smoke", "--builder", "host", "plain"], &env)
                .success();
        };
        let trees = || -> Vec<(std::path::PathBuf, u64, i64, i64)> {
            let mut trees: Vec<_> = fs::read_dir(cache.join("laid-out"))
                .unwrap()
                .flatten()
                .filter(|item| !item.file_name().to_string_lossy().starts_with('.'))
                .map(|item| {
                    let opt = fs::metadata(item.path().join("opt")).unwrap();
                    (item.path(), opt.ino(), opt.ctime(), opt.ctime_nsec())
                })
                .collect();
            trees.sort();
            trees
        };
        smoke_in(&first);
        let laid_out = trees();
        assert_eq!(laid_out.len(), 1, "one tree: plain's layers");
        smoke_in(&second);
        assert_eq!(trees(), laid_out, "the second clone laid out nothing again");
        assert!(
            !second.path().join("target/lambda/laid-out").exists(),
            "nor in its own folder"
        );
    }
}

/// Tests that need a container engine (docker or podman) with the test
/// image: ignored by a plain `cargo test`, run by `-- --ignored needs_engine`,
/// and failed by [`support::require_engine`] where there is none.
mod needs_engine {
    use super::*;

    #[test]
    #[ignore = "needs a container engine with the test image, and the runtime interface client (cargo xtask ci runs it)"]
    fn the_container_runner_imports_in_the_build_image() {
        support::require_engine();
        support::require_runtime();
        let repo = app();
        let image = format!("image = \"{}\"", support::TEST_IMAGE);
        repo.set_metadata(&config().setting(&image).metadata());
        build(&repo, &[]);
        let run = smoke(&repo, &["--builder", "container", "--json"]);
        run.success();
        assert_eq!(json(&run)["functions"]["hello"]["ok"], true);
    }
}
