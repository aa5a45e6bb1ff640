//! `check-limits` on synthetic repositories: the hard limit through an
//! external layer's declared size, the budget, imports that no layer
//! provides, distributions nobody imports, files two layers both ship, a
//! manifest that is brought up to date first, and the JSON agreeing with the table.

use std::fs;

use crate::support::{App, Repo};

/// The standard application with a second profile, `extra`, and `hello`'s
/// handler in `hello_handler.py`, on these layers.
fn config(layers: &[&str]) -> App {
    App::standard()
        .layer("extra", &["requirements = \"layers/extra/requirements.txt\""])
        .function("hello", "hello_handler.lambda_handler", layers)
}

/// `config` on core and shared.
fn standard() -> App {
    config(&["core", "shared"])
}

/// `core`'s `tool` as a package that needs `helperdep`; `extra` ships `tool`
/// again and `bigsdk`, which nothing imports; `shared.util` imports boto3.
fn app(config: App) -> Repo {
    let repo = config.repo();
    repo.wheel(
        "core",
        "tool",
        "1.0",
        &[
            ("tool/__init__.py", "from . import helper\n"),
            ("tool/helper.py", ""),
        ],
        &["helperdep"],
    );
    repo.wheel("core", "helperdep", "1.0", &[("helperdep.py", "")], &[]);
    repo.profile("extra", &["bigsdk==1.0", "tool==1.0"]);
    repo.wheel(
        "extra",
        "bigsdk",
        "1.0",
        &[
            ("bigsdk/__init__.py", ""),
            ("bigsdk/data.txt", &"padding\n".repeat(6250)),
        ],
        &[],
    );
    repo.wheel(
        "extra",
        "tool",
        "1.0",
        &[
            ("tool/__init__.py", "from . import helper\n"),
            ("tool/helper.py", ""),
        ],
        &["helperdep"],
    );
    repo.wheel("extra", "helperdep", "1.0", &[("helperdep.py", "")], &[]);
    repo.write("lambdas/shared/__init__.py", "");
    repo.write(
        "lambdas/shared/util.py",
        "import json\nimport boto3\n\ndef dump(x):\n    return json.dumps(x)\n",
    );
    repo.write(
        "lambdas/hello/hello_handler.py",
        "import os\nimport tool\nfrom shared.util import dump\n\ndef lambda_handler(event, context):\n    return dump(tool)\n",
    );
    repo
}

fn build(repo: &Repo) {
    repo.xtask(&["build-layers", "--builder", "host", "-q"]).success();
    repo.xtask(&["package", "-q"]).success();
}

#[test]
fn a_correct_app_passes_and_the_json_matches_the_table() {
    let repo = app(standard());
    build(&repo);
    let run = repo.xtask(&["check-limits", "--json"]);
    run.success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(json["ok"], true);
    let hello = &json["functions"]["hello"];
    let manifest = repo.manifest();
    let expected_total = manifest["functions"]["hello"]["unzipped_bytes"].as_u64().unwrap()
        + manifest["layers"]["core"]["unzipped_bytes"].as_u64().unwrap()
        + manifest["layers"]["shared"]["unzipped_bytes"].as_u64().unwrap();
    assert_eq!(hello["total_unzipped_bytes"].as_u64().unwrap(), expected_total);
    assert_eq!(
        hello["headroom_bytes"].as_i64().unwrap(),
        262_144_000 - expected_total as i64
    );
    assert_eq!(hello["imports"]["provided"], serde_json::json!({"tool": "core"}));
    assert_eq!(
        hello["imports"]["runtime"],
        serde_json::json!(["boto3"]),
        "reached through shared.util"
    );
    assert_eq!(
        hello["imports"]["unused"],
        serde_json::json!([]),
        "helperdep is used through tool"
    );
    // The table on stderr says the same.
    let stderr = run.stderr();
    assert!(stderr.contains("hello  [core → shared]"), "{stderr}");
    assert!(stderr.contains("tool ← core"), "{stderr}");
    assert!(stderr.contains("1 function(s) ok"), "{stderr}");
}

#[test]
fn over_the_hard_limit_through_an_external_layer() {
    let repo = app(config(&["core", "shared", "powertools"]).layer(
        "powertools",
        &[
            "arn = \"arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7\"",
            "unzipped_size = \"250 MiB\"",
        ],
    ));
    build(&repo);
    let run = repo.xtask(&["check-limits", "--json"]);
    run.fails_with(1, "exceeds Lambda's limit of 262144000 bytes by");
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let overshoot = -json["functions"]["hello"]["headroom_bytes"].as_i64().unwrap();
    assert!(overshoot > 0);
    assert!(
        run.stderr().contains(&format!("by {overshoot} bytes")),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("hello"), "names the function");
    // … and the way out: the same content as a container image.
    let stderr = run.stderr();
    assert!(
        stderr
            .contains("set `package = \"image\"` for `hello` in Cargo.toml: as an image its layers would be"),
        "{stderr}"
    );
    assert!(
        stderr.contains("on top of the base image (Lambda allows 10.0 GiB for an image, its base included), once what the external layer(s) `powertools` hold is built here"),
        "{stderr}"
    );
}

#[test]
fn over_the_budget_only() {
    let repo = app(standard().setting("budget = \"500 B\""));
    build(&repo);
    repo.xtask(&["check-limits"])
        .fails_with(1, "over the budget of 500 B");
    // A per-function budget overrides the repository's.
    let repo = app(standard().key("functions.hello", "budget = \"500 B\""));
    build(&repo);
    repo.xtask(&["check-limits"]).fails_with(1, "over the budget");
}

#[test]
fn an_import_no_layer_provides_is_an_error_naming_the_layer_that_would() {
    let repo = app(config(&["shared"]));
    build(&repo);
    let run = repo.xtask(&["check-limits"]);
    run.fails_with(1, "imports `tool`");
    assert!(
        run.stderr()
            .contains("layer `core` provides it but is not attached to `hello`"),
        "{}",
        run.stderr()
    );

    let repo = app(standard());
    repo.write(
        "lambdas/hello/hello_handler.py",
        "import nosuchthing\n\ndef lambda_handler(event, context):\n    pass\n",
    );
    build(&repo);
    repo.xtask(&["check-limits"]).fails_with(
        1,
        "imports `nosuchthing` (hello_handler, line 1): no layer provides it",
    );
}

#[test]
fn an_unused_distribution_and_overlapping_layers_are_warnings() {
    let repo = app(config(&["core", "extra", "shared"]));
    build(&repo);
    let run = repo.xtask(&["check-limits", "--json"]);
    run.success();
    let stderr = run.stderr();
    assert!(
        stderr.contains("bigsdk 1.0 in layer `extra` is unused"),
        "{stderr}"
    );
    assert!(stderr.contains("layers `core` and `extra` both ship"), "{stderr}");
    assert!(stderr.contains("`extra`'s copy wins"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let unused = &json["functions"]["hello"]["imports"]["unused"];
    assert_eq!(unused[0]["distribution"], "bigsdk");
    assert!(unused[0]["unzipped_bytes"].as_u64().unwrap() >= 50_000);
}

/// check-limits never reads a stale manifest: it brings what it checks up
/// to date first, from one graph, and checks that.
#[test]
fn check_limits_checks_what_is_current_never_a_stale_manifest() {
    let repo = app(standard());
    repo.xtask(&["check-limits", "--builder", "host", "-q"]).success();
    repo.write(
        "lambdas/hello/hello_handler.py",
        "import nowhere_to_be_found\n\ndef lambda_handler(event, context):\n    return 2\n",
    );
    repo.xtask(&["check-limits", "--builder", "host"])
        .fails_with(1, "imports `nowhere_to_be_found`");
    let zip = fs::File::open(repo.path().join("dist/functions/hello.zip")).unwrap();
    let mut handler = String::new();
    std::io::Read::read_to_string(
        &mut zip::ZipArchive::new(zip)
            .unwrap()
            .by_name("hello_handler.py")
            .unwrap(),
        &mut handler,
    )
    .unwrap();
    assert!(
        handler.contains("nowhere_to_be_found"),
        "re-packaged before it was checked"
    );
    repo.write(
        "lambdas/hello/hello_handler.py",
        "def lambda_handler(event, context):\n    return 2\n",
    );
    repo.xtask(&["check-limits", "--builder", "host", "-q"]).success();
}
