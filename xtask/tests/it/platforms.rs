//! Functions on their own runtime and architecture beside the
//! repository's: each dependency profile is built (and locked) once per
//! platform its functions run on, the manifest says which build each
//! function attaches and what each layer is compatible with, and a function
//! this machine cannot run is skipped by smoke, saying why.

use crate::support::{self, App, Repo};

/// The standard application and `edge`, a function like `hello` on its own
/// runtime and architecture.
fn config(runtime: &str, architecture: &str) -> App {
    App::standard()
        .function("edge", "edge.lambda_handler", &["core", "shared"])
        .key("functions.edge", &format!("runtime = \"{runtime}\""))
        .key("functions.edge", &format!("architecture = \"{architecture}\""))
}

fn app() -> Repo {
    let repo = config("python3.12", "arm64").repo();
    repo.write("lambdas/edge/edge.py", support::app::HELLO);
    repo
}

#[test]
fn a_bad_runtime_or_architecture_is_named() {
    let repo = app();
    repo.set_metadata(&config("python2.7", "arm64").metadata());
    repo.xtask(&["build"])
        .fails_with(2, "functions.edge.runtime: unknown runtime `python2.7`");
    repo.set_metadata(&config("python3.12", "sparc").metadata());
    repo.xtask(&["build"])
        .fails_with(2, "functions.edge.architecture: unknown architecture `sparc`");
}

/// Tests that run functions under AWS's runtime interface client: ignored
/// by a plain `cargo test`, run by `-- --ignored needs_runtime`, and failed
/// by [`support::require_runtime`] where `XTASK_RUNTIME_CLIENT` names none.
mod needs_runtime {
    use super::*;

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_function_on_python312_arm64_beside_python311_x86_64() {
        support::require_runtime();
        let repo = app();
        let site = repo.path().join("runtime-site");
        std::fs::create_dir_all(&site).unwrap();
        let run = repo.xtask_with(
            &["build", "--builder", "host", "--json"],
            &[("XTASK_RUNTIME_SITE", site.to_str().unwrap())],
        );
        run.success();
        let manifest = repo.manifest();
        let core = &manifest["layers"]["core"];
        let edge_core = &manifest["layers"]["core@python3.12-arm64"];
        assert_eq!(
            core["runtimes"],
            serde_json::json!(["python3.11"]),
            "{manifest:#}"
        );
        assert_eq!(core["architectures"], serde_json::json!(["x86_64"]));
        assert_eq!(
            edge_core["runtimes"],
            serde_json::json!(["python3.12"]),
            "{manifest:#}"
        );
        assert_eq!(edge_core["architectures"], serde_json::json!(["arm64"]));
        assert_eq!(edge_core["zip"], "dist/layers/core@python3.12-arm64.zip");
        assert!(repo
            .path()
            .join("dist/layers/core@python3.12-arm64.zip")
            .is_file());
        // One ZIP of source code serves both.
        let shared = &manifest["layers"]["shared"];
        assert_eq!(
            shared["runtimes"],
            serde_json::json!(["python3.11", "python3.12"])
        );
        assert_eq!(shared["architectures"], serde_json::json!(["arm64", "x86_64"]));
        let edge = &manifest["functions"]["edge"];
        assert_eq!(edge["runtime"], "python3.12");
        assert_eq!(edge["architecture"], "arm64");
        assert_eq!(
            edge["layers"],
            serde_json::json!(["core@python3.12-arm64", "shared"])
        );
        assert_eq!(
            manifest["functions"]["hello"]["layers"],
            serde_json::json!(["core", "shared"])
        );

        // Checked with its own layers; smoke-tested where it can run, skipped
        // (not passed) where it cannot, saying why.
        let verdicts: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
        assert_eq!(verdicts["verdicts"]["edge"]["check"]["ok"], true, "{verdicts:#}");
        let smoke = &verdicts["verdicts"]["edge"]["smoke"];
        let why = smoke["skipped"].as_str().unwrap_or_default();
        assert!(why.contains("arm64"), "{smoke}");
        assert_eq!(verdicts["verdicts"]["hello"]["smoke"]["ok"], true, "{verdicts:#}");

        // One lock per platform.
        repo.xtask(&["lock"]).success();
        for lock in [
            "requirements.python3.11-x86_64.lock",
            "requirements.python3.12-arm64.lock",
        ] {
            assert!(repo.path().join("layers/core").join(lock).is_file(), "{lock}");
        }
        repo.xtask_with(
            &["build", "--builder", "host"],
            &[("XTASK_RUNTIME_SITE", site.to_str().unwrap())],
        )
        .success();
        // invoke says that the arm64 function cannot run here.
        repo.xtask_with(
            &["invoke", "--builder", "host", "edge"],
            &[("XTASK_RUNTIME_SITE", site.to_str().unwrap())],
        )
        .fails_with(2, "`edge` (python3.12 arm64) cannot run here");
    }
}
