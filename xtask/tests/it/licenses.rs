//! The licence policy: `check-limits` fails on a distribution whose
//! declared licence is denied (naming it, its licence, its layer and the
//! function), a function's own policy adds to the repository's, an unknown
//! licence is listed, and a malformed id is a configuration error.

use crate::support::{App, Repo};

/// core ships `copyleft` 1.0 (`GPL-3.0-only`, by expression) and `vague`
/// 1.0 (a `BSD License` classifier); `hello` attaches it.
fn app(settings: &[&str]) -> Repo {
    let mut app = App::standard().core(&["copyleft==1.0", "vague==1.0"]);
    for line in settings {
        app = app.setting(line);
    }
    let repo = app.repo();
    repo.write("lambdas/shared/__init__.py", "");
    repo.write(
        "lambdas/hello/hello.py",
        "import copyleft\nimport vague\n\n\ndef lambda_handler(event, context):\n    return copyleft.V + vague.V\n",
    );
    repo.wheel_with_metadata(
        "core",
        "copyleft",
        "1.0",
        &[("copyleft.py", "V = 1\n")],
        &["License-Expression: GPL-3.0-only"],
    );
    repo.wheel_with_metadata(
        "core",
        "vague",
        "1.0",
        &[("vague.py", "V = 2\n")],
        &["Classifier: License :: OSI Approved :: BSD License"],
    );
    repo
}

const CHECK: &[&str] = &["check-limits", "--builder", "host"];

#[test]
fn a_denied_licence_fails_the_check_naming_the_distribution_its_layer_and_the_function() {
    let repo = app(&[r#"licenses = { deny = ["GPL-3.0-only"] }"#]);
    let run = repo.xtask(CHECK);
    run.fails_with(
        1,
        "licence: `copyleft` 1.0 (layer `core`) of function `hello` is `GPL-3.0-only`, which needs GPL-3.0-only denied by `licenses.deny`",
    );
    // The classifier is no SPDX expression: listed, not failed.
    assert!(
        run.stderr().contains("licences the policy cannot judge")
            && run.stderr().contains("`vague` 1.0 (layer `core`): `BSD License`"),
        "{}",
        run.stderr()
    );
    // The manifest carries the declared licences.
    let manifest = repo.manifest();
    let packages = manifest["layers"]["core"]["packages"].as_array().unwrap();
    let copyleft = packages
        .iter()
        .find(|package| package["name"] == "copyleft")
        .unwrap();
    assert_eq!(copyleft["license"], "GPL-3.0-only");
}

#[test]
fn without_a_policy_or_with_an_allowing_one_the_check_passes() {
    app(&[]).xtask(CHECK).success();
    let repo = app(&[r#"licenses = { deny = ["AGPL-3.0-only"] }"#]);
    repo.xtask(CHECK).success();
}

#[test]
fn an_allow_list_fails_what_it_does_not_name_and_what_it_cannot_judge() {
    let repo = app(&[r#"licenses = { allow = ["MIT"] }"#]);
    let run = repo.xtask(CHECK);
    run.fails_with(
        1,
        "`copyleft` 1.0 (layer `core`) of function `hello` is `GPL-3.0-only`, not in `licenses.allow`",
    );
    assert!(
        run.stderr().contains(
            "`vague` 1.0 (layer `core`) of function `hello` declares `BSD License`, not an SPDX expression"
        ),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_functions_own_policy_adds_its_denials() {
    let repo = app(&[]);
    let config = App::standard()
        .core(&["copyleft==1.0", "vague==1.0"])
        .key("functions.hello", r#"licenses = { deny = ["GPL-3.0-only"] }"#);
    repo.set_metadata(&config.metadata());
    repo.xtask(CHECK)
        .fails_with(1, "`copyleft` 1.0 (layer `core`) of function `hello`");
}

#[test]
fn a_malformed_licence_id_is_a_configuration_error() {
    let repo = app(&[r#"licenses = { deny = ["GPL 3"] }"#]);
    repo.xtask(CHECK).fails_with(
        2,
        "workspace.metadata.lambda.licenses.deny: `GPL 3` is not an SPDX licence id",
    );
    let repo = app(&[r#"licenses = { forbid = ["MIT"] }"#]);
    repo.xtask(CHECK)
        .fails_with(2, "workspace.metadata.lambda.licenses.forbid: unknown key");
}
