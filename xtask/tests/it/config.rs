//! Every configuration rule: a bad `[workspace.metadata.lambda]` is exit
//! code 2 with one line naming the key and the fix, before any work.

use crate::support::{App, Repo};

/// The standard application without `shared`: `hello` on `core` alone, and
/// `core` installing nothing.
fn good_app() -> App {
    App::standard()
        .without("layers.shared")
        .function("hello", "hello.lambda_handler", &["core"])
        .core(&[])
}

/// `good_app`'s configuration, which each rule below breaks in one place.
fn good() -> String {
    good_app().metadata()
}

/// `good_app`'s files under the configuration `metadata`.
fn repo(metadata: &str) -> Repo {
    let repo = good_app().repo();
    repo.set_metadata(metadata);
    repo.write(
        "lambdas/hello/hello.py",
        "def lambda_handler(event, context):\n    return 1\n",
    );
    repo
}

#[test]
fn a_good_configuration_plans() {
    let repo = repo(&good());
    let run = repo.xtask(&["build-layers", "--dry-run", "--builder", "host"]);
    run.success();
    assert!(run.stdout().contains("layer core: "), "{}", run.stdout());
}

#[test]
fn each_rule_is_a_usage_error_naming_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown top-level key",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\nruntim = \"x\"",
        ),
        (
            "unknown layer key",
            "requirements = \"layers/core/requirements.txt\"",
            "requirements = \"layers/core/requirements.txt\"\nrequirement = \"x\"",
        ),
        ("no source", "requirements = \"layers/core/requirements.txt\"", ""),
        (
            "two sources",
            "requirements = \"layers/core/requirements.txt\"",
            "requirements = \"layers/core/requirements.txt\"\nsource = \"lambdas/hello\"",
        ),
        (
            "unknown layer",
            "layers = [\"core\"]",
            "layers = [\"core\", \"nope\"]",
        ),
        (
            "unknown runtime",
            "runtime = \"python3.11\"",
            "runtime = \"python2.7\"",
        ),
        (
            "unknown architecture",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\narchitecture = \"sparc\"",
        ),
        (
            "missing requirements",
            "requirements = \"layers/core/requirements.txt\"",
            "requirements = \"layers/missing/requirements.txt\"",
        ),
        (
            "bad size",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\nbudget = \"lots\"",
        ),
        (
            "bad handler",
            "handler = \"hello.lambda_handler\"",
            "handler = \"hello\"",
        ),
        (
            "bad builder",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\nbuilder = \"cloud\"",
        ),
        (
            "external without size",
            "requirements = \"layers/core/requirements.txt\"",
            "arn = \"arn:aws:lambda:us-east-1:1:layer:x:1\"",
        ),
        (
            "memory out of range",
            "layers = [\"core\"]",
            "layers = [\"core\"]\nmemory = 64",
        ),
        (
            "memory not a number",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\nmemory = \"lots\"",
        ),
        (
            "ephemeral storage out of range",
            "layers = [\"core\"]",
            "layers = [\"core\"]\nephemeral_storage = 256",
        ),
        (
            "log retention CloudWatch does not offer",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\nlog_retention_days = 10",
        ),
        (
            "a variable Lambda reserves",
            "layers = [\"core\"]",
            "layers = [\"core\"]\nenvironment = { AWS_REGION = \"eu-west-1\" }",
        ),
        (
            "a variable that is not a string",
            "layers = [\"core\"]",
            "layers = [\"core\"]\nenvironment = { RETRIES = 3 }",
        ),
        (
            "an environment over 4 KB",
            "layers = [\"core\"]",
            &format!("layers = [\"core\"]\nenvironment = {{ BIG = \"{}\" }}", "x".repeat(4100)),
        ),
        (
            "reserved concurrency is per function",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\nreserved_concurrency = 5",
        ),
        (
            "names that differ only in case",
            "[workspace.metadata.lambda.functions.hello]",
            "[workspace.metadata.lambda.layers.Core]\nrequirements = \"layers/core/requirements.txt\"\n\n[workspace.metadata.lambda.functions.hello]",
        ),
        (
            "a remote cache that is not an S3 URL",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\nremote_cache = \"https://example.com/cache\"",
        ),
        (
            "an unknown remote cache mode",
            "runtime = \"python3.11\"",
            "runtime = \"python3.11\"\nremote_cache_mode = \"write-only\"",
        ),
    ];
    let expected_key: &[&str] = &[
        "workspace.metadata.lambda.runtim: unknown key",
        "workspace.metadata.lambda.layers.core.requirement: unknown key",
        "workspace.metadata.lambda.layers.core: a layer needs one of",
        "workspace.metadata.lambda.layers.core: set exactly one of",
        "workspace.metadata.lambda.functions.hello.layers: unknown layer `nope`",
        "workspace.metadata.lambda.runtime: unknown runtime `python2.7`",
        "workspace.metadata.lambda.architecture: unknown architecture `sparc`",
        "layers/missing/requirements.txt does not exist",
        "workspace.metadata.lambda.budget: `lots` is not a size",
        "workspace.metadata.lambda.functions.hello.handler: `hello` is not `module.function`",
        "workspace.metadata.lambda.builder: unknown builder `cloud`",
        "workspace.metadata.lambda.layers.core.unzipped_size: missing",
        "workspace.metadata.lambda.functions.hello.memory: 64 MB is outside Lambda's 128 to 10240 MB",
        "workspace.metadata.lambda.memory: expected a whole number",
        "workspace.metadata.lambda.functions.hello.ephemeral_storage: 256 MB is outside",
        "workspace.metadata.lambda.log_retention_days: CloudWatch Logs keeps logs for one of 1, 3,",
        "workspace.metadata.lambda.functions.hello.environment.AWS_REGION: Lambda sets `AWS_REGION` itself",
        "workspace.metadata.lambda.functions.hello.environment.RETRIES: expected a string, found 3 (quote it",
        "workspace.metadata.lambda.functions.hello.environment: 4103 bytes of variables",
        "workspace.metadata.lambda.reserved_concurrency: unknown key",
        "workspace.metadata.lambda.layers.core: differs from `Core` only in case",
        "workspace.metadata.lambda.remote_cache: `https://example.com/cache` is not an S3 URL",
        "workspace.metadata.lambda.remote_cache_mode: unknown mode `write-only` (use read-write or read-only)",
    ];
    for ((name, from, to), needle) in cases.iter().zip(expected_key) {
        assert!(good().contains(from), "{name}: fixture does not contain {from:?}");
        let repo = repo(&good().replacen(from, to, 1));
        let run = repo.xtask(&["build-layers", "--builder", "host"]);
        assert_eq!(run.code(), 2, "{name}: expected exit 2\n{}", run.stderr());
        let stderr = run.stderr();
        assert!(
            stderr.contains(needle),
            "{name}: stderr lacks {needle:?}:\n{stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{name}: one line expected:\n{stderr}"
        );
        assert!(
            !repo.path().join("dist").exists(),
            "{name}: nothing may be written"
        );
    }
}

/// Sizes and durations that do not fit in 64 bits or that Lambda itself
/// would refuse: exit 2, one line naming the key, the limit and an example
/// of a good value. Each was accepted before (the larger ones saturated to
/// 2^64 - 1 bytes or milliseconds).
#[test]
fn sizes_and_durations_past_lambdas_limits_are_refused() {
    const TOP: &str = "runtime = \"python3.11\"";
    const FUNCTION: &str = "layers = [\"core\"]";
    const LAYER: &str = "requirements = \"layers/core/requirements.txt\"";
    let external = |size: &str| {
        format!("arn = \"arn:aws:lambda:us-east-1:123456789012:layer:x:1\"\nunzipped_size = {size}")
    };
    let unzipped = "is more than 262144000 bytes (250 MiB), Lambda's limit for a function and its layers unzipped (e.g. \"50 MiB\")";
    let cases: Vec<(&str, String, String)> = vec![
        (TOP, format!("{TOP}\nbudget = \"251 MiB\""), format!("workspace.metadata.lambda.budget: `251 MiB` {unzipped}")),
        (
            TOP,
            format!("{TOP}\nbudget = \"99999999999999999999 GiB\""),
            format!("workspace.metadata.lambda.budget: `99999999999999999999 GiB` {unzipped}"),
        ),
        (
            TOP,
            format!("{TOP}\nbudget = \"{} B\"", "9".repeat(400)),
            "workspace.metadata.lambda.budget: `99".to_string(),
        ),
        (TOP, format!("{TOP}\nbudget = 9223372036854775807"), format!("workspace.metadata.lambda.budget: `9223372036854775807` {unzipped}")),
        (
            FUNCTION,
            format!("{FUNCTION}\nbudget = \"1 GB\""),
            format!("workspace.metadata.lambda.functions.hello.budget: `1 GB` {unzipped}"),
        ),
        (
            LAYER,
            external("\"18446744073709551616 B\""),
            format!("workspace.metadata.lambda.layers.core.unzipped_size: `18446744073709551616 B` {unzipped}"),
        ),
        (
            TOP,
            format!("{TOP}\nimport_budget = \"99999999999999999999 s\""),
            "workspace.metadata.lambda.import_budget: `99999999999999999999 s` is more than 10 s, the time Lambda gives the init phase (e.g. \"3 s\")".to_string(),
        ),
        (
            TOP,
            format!("{TOP}\nimport_budget = \"11 s\""),
            "workspace.metadata.lambda.import_budget: `11 s` is more than 10 s".to_string(),
        ),
        (
            FUNCTION,
            format!("{FUNCTION}\ntimeout = \"18446744073709551616 ms\""),
            "workspace.metadata.lambda.functions.hello.timeout: `18446744073709551616 ms` is more than 900 s, Lambda's longest function timeout (e.g. \"3 s\")".to_string(),
        ),
        (
            TOP,
            format!("{TOP}\ntimeout = \"901 s\""),
            "workspace.metadata.lambda.timeout: `901 s` is more than 900 s".to_string(),
        ),
    ];
    for (from, to, needle) in &cases {
        let repo = repo(&good().replacen(from, to, 1));
        let run = repo.xtask(&["build", "--dry-run"]);
        let stderr = run.stderr();
        assert_eq!(run.code(), 2, "{to}: expected exit 2\n{stderr}");
        assert!(
            stderr.contains(needle.as_str()),
            "{to}: stderr lacks {needle:?}:\n{stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{to}: one line expected:\n{stderr}"
        );
    }
    // The limits themselves are accepted.
    let edge = good().replacen(
        TOP,
        &format!("{TOP}\nbudget = \"250 MiB\"\nimport_budget = \"10 s\"\ntimeout = \"900 s\""),
        1,
    );
    repo(&edge).xtask(&["build", "--dry-run"]).success();
}

#[test]
fn more_than_five_layers_is_refused() {
    let mut metadata = String::from("[workspace.metadata.lambda]\nruntime = \"python3.11\"\n");
    for index in 0..6 {
        metadata.push_str(&format!(
            "[workspace.metadata.lambda.layers.l{index}]\nrequirements = \"layers/core/requirements.txt\"\n"
        ));
    }
    metadata.push_str(
        "[workspace.metadata.lambda.functions.hello]\nsource = \"lambdas/hello\"\nhandler = \"hello.lambda_handler\"\nlayers = [\"l0\", \"l1\", \"l2\", \"l3\", \"l4\", \"l5\"]\n",
    );
    let repo = repo(&metadata);
    repo.xtask(&["build-layers", "--builder", "host"])
        .fails_with(2, "6 layers, but Lambda attaches at most 5");
}

#[test]
fn missing_table_and_bad_flags() {
    let repo = Repo::new("");
    repo.xtask(&["build-layers"])
        .fails_with(2, "no [workspace.metadata.lambda] table");
    repo.xtask(&["build-layers", "--arch", "mips"])
        .fails_with(2, "--arch: unknown architecture `mips`");
    repo.xtask(&["frobnicate"])
        .fails_with(2, "unknown command `frobnicate`");
    let repo = self::repo(&good());
    repo.xtask(&["build-layers", "nope"])
        .fails_with(2, "unknown layer `nope`");
}

#[test]
fn help_explains_every_command() {
    let repo = Repo::new("");
    let run = repo.xtask(&["--help"]);
    run.success();
    for command in ["build-layers", "package", "check-limits", "smoke", "build", "ci"] {
        assert!(run.stdout().contains(command), "overview lacks {command}");
        let help = repo.xtask(&[command, "--help"]);
        help.success();
        assert!(
            help.stdout().contains("Options:") && help.stdout().contains("--dry-run"),
            "{command} --help lacks the options"
        );
        assert_eq!(
            help.stdout().contains("--builder"),
            command != "ci",
            "{command} --help lists only its own options"
        );
    }
}

/// A reader that goes away (`| head`) ends the run quietly: exit 0, no panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let repo = repo(&good());
    for args in [&["--help"][..], &["build", "--dry-run", "--json"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        // Closed before the tool starts: its first write meets a broken pipe.
        drop(reader);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .current_dir(repo.path())
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn the_remote_cache_variables_are_checked_and_named() {
    let repo = repo(&good());
    repo.xtask_with(
        &["build-layers", "--builder", "host", "--dry-run"],
        &[("XTASK_REMOTE_CACHE_MODE", "sometimes")],
    )
    .fails_with(2, "XTASK_REMOTE_CACHE_MODE: unknown mode `sometimes`");
    repo.xtask_with(
        &["build-layers", "--builder", "host", "--dry-run"],
        &[("XTASK_REMOTE_CACHE", "bucket/prefix")],
    )
    .fails_with(2, "XTASK_REMOTE_CACHE: `bucket/prefix` is not an S3 URL");
}

/// `package = "image"` and its keys: the repository's `image_base` and
/// `image_repository` are accepted also when no function is an image, and
/// an image function with nothing else set plans.
#[test]
fn image_keys_are_accepted_where_they_apply() {
    let app = good_app()
        .setting("image_base = \"public.ecr.aws/lambda/python:3.11\"")
        .setting("image_repository = \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app\"");
    repo(&app.metadata())
        .xtask(&["build-layers", "--dry-run", "--builder", "host"])
        .success();
    let app = good_app()
        .key("functions.hello", "package = \"image\"")
        .key(
            "functions.hello",
            "image_base = \"127.0.0.1:5000/base/python:3.11\"",
        )
        .key("functions.hello", "image_repository = \"127.0.0.1:5000/app\"");
    repo(&app.metadata())
        .xtask(&["build-layers", "--dry-run", "--builder", "host"])
        .success();
}

/// Every image key where it cannot apply, or with a value that is no
/// reference, is exit 2 with one line naming the key and the fix.
#[test]
fn image_keys_are_refused_with_the_fix() {
    let function = "workspace.metadata.lambda.functions.hello";
    let image = |line: &str| {
        good_app()
            .key("functions.hello", "package = \"image\"")
            .key("functions.hello", line)
    };
    let cases: Vec<(App, String)> = vec![
        (
            good_app().key("functions.hello", "package = \"docker\""),
            format!("{function}.package: unknown package `docker` (use \"zip\" or \"image\")"),
        ),
        (
            good_app().setting("image_base = \"Public.ECR.aws/Lambda\""),
            "workspace.metadata.lambda.image_base: `Public.ECR.aws/Lambda` names the repository `Lambda`".to_string(),
        ),
        (
            image("image_base = \"public.ecr.aws/lambda/python@sha256:abc\""),
            format!("{function}.image_base: `public.ecr.aws/lambda/python@sha256:abc` has the digest `sha256:abc`"),
        ),
        (
            good_app().setting("image_repository = \"127.0.0.1:5000/app:latest\""),
            "workspace.metadata.lambda.image_repository: `127.0.0.1:5000/app:latest` names an image, not a repository: remove its tag or digest".to_string(),
        ),
        (
            image(&format!("image_repository = \"127.0.0.1:5000/app@sha256:{}\"", "0".repeat(64))),
            format!("{function}.image_repository: `127.0.0.1:5000/app@sha256:"),
        ),
        (
            good_app().key("functions.hello", "image_base = \"public.ecr.aws/lambda/python:3.11\""),
            format!("{function}.image_base: only an image function has one, and `hello` is a ZIP: set `package = \"image\"` or remove `image_base`"),
        ),
        (
            good_app().key("functions.hello", "image_repository = \"127.0.0.1:5000/app\""),
            format!("{function}.image_repository: only an image function has one, and `hello` is a ZIP: set `package = \"image\"` or remove `image_repository`"),
        ),
        (
            image("bundle = true"),
            format!("{function}.bundle: an image holds its layers as image layers, there is nothing to bundle: remove `bundle`"),
        ),
        (
            good_app()
                .layer(
                    "ext",
                    &["arn = \"arn:aws:lambda:us-east-1:123456789012:layer:ext:1\"", "unzipped_size = \"1 MiB\""],
                )
                .function("hello", "hello.lambda_handler", &["core", "ext"])
                .key("functions.hello", "package = \"image\""),
            format!("{function}.layers: `ext` is an external (`arn`) layer, and an image cannot attach Lambda layers: build its content here (a `requirements` or `source` layer) or use a ZIP function"),
        ),
    ];
    for (app, needle) in &cases {
        let repo = repo(&app.metadata());
        let run = repo.xtask(&["build-layers", "--builder", "host"]);
        let stderr = run.stderr();
        assert_eq!(run.code(), 2, "{needle}: expected exit 2\n{stderr}");
        assert!(
            stderr.contains(needle.as_str()),
            "stderr lacks {needle:?}:\n{stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one line expected:\n{stderr}");
        assert!(
            !repo.path().join("dist").exists(),
            "{needle}: nothing may be written"
        );
    }
}
