//! `package`: the shared-code layer and thin function ZIPs, their refusals,
//! `bundle` mode, determinism and incremental re-zipping.

use std::fs;

use crate::support::{self, sha256_hex, zip_names, App, Repo};

/// The standard application with `hello`'s handler in `hello_handler.py`,
/// and `bye`, a function on `shared` alone.
fn config() -> App {
    App::standard()
        .function("hello", "hello_handler.lambda_handler", &["core", "shared"])
        .function("bye", "bye_handler.lambda_handler", &["shared"])
}

fn app() -> Repo {
    let repo = config().repo();
    repo.wheel(
        "core",
        "tool",
        "1.0",
        &[("tool.py", "def run():\n    return 1\n")],
        &[],
    );
    repo.write("lambdas/shared/__init__.py", "");
    repo.write(
        "lambdas/shared/response.py",
        "def ok(body):\n    return {'statusCode': 200, 'body': body}\n",
    );
    repo.write("lambdas/shared/tests/test_response.py", "def test(): pass\n");
    repo.write(
        "lambdas/hello/hello_handler.py",
        "import tool\nfrom shared.response import ok\n\ndef lambda_handler(event, context):\n    return ok(tool.run())\n",
    );
    repo.write("lambdas/hello/__pycache__/hello_handler.cpython-311.pyc", "junk");
    repo.write(
        "lambdas/bye/bye_handler.py",
        "from shared import response\n\nasync def lambda_handler(event, context):\n    return None\n",
    );
    repo
}

#[test]
fn thin_function_zips_and_a_shared_layer() {
    let repo = app();
    let run = repo.xtask(&["package", "--json"]);
    run.success();
    // The sources, and the checked-hash bytecode the runtime's Python
    // compiled from them (never the stray one in the source folder).
    let hello = repo.path().join("dist/functions/hello.zip");
    assert_eq!(
        zip_names(&hello),
        [
            "__pycache__/",
            "__pycache__/hello_handler.cpython-311.pyc",
            "hello_handler.py"
        ]
    );
    let mut archive = zip::ZipArchive::new(fs::File::open(&hello).unwrap()).unwrap();
    let mut pyc = Vec::new();
    std::io::Read::read_to_end(
        &mut archive
            .by_name("__pycache__/hello_handler.cpython-311.pyc")
            .unwrap(),
        &mut pyc,
    )
    .unwrap();
    assert_ne!(pyc, b"junk");
    assert_eq!(
        u32::from_le_bytes(pyc[4..8].try_into().unwrap()),
        0b11,
        "checked-hash"
    );
    assert_eq!(
        zip_names(&repo.path().join("dist/functions/bye.zip")),
        [
            "__pycache__/",
            "__pycache__/bye_handler.cpython-311.pyc",
            "bye_handler.py"
        ]
    );
    let shared = zip_names(&repo.path().join("dist/layers/shared.zip"));
    assert_eq!(
        shared,
        [
            "python/",
            "python/shared/",
            "python/shared/__init__.py",
            "python/shared/__pycache__/",
            "python/shared/__pycache__/__init__.cpython-311.pyc",
            "python/shared/__pycache__/response.cpython-311.pyc",
            "python/shared/response.py"
        ]
    );

    // `core` is not built by `package`, so no manifest: --json shows what is.
    assert!(!repo.path().join("dist/manifest.json").exists());
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let hello = &json["functions"]["hello"];
    assert_eq!(hello["handler"], "hello_handler.lambda_handler");
    assert_eq!(hello["layers"], serde_json::json!(["core", "shared"]));
    assert_eq!(hello["upload"], "direct");
    assert_eq!(hello["files"], 2, "the handler and its bytecode");
    assert_eq!(
        hello["sha256"].as_str().unwrap(),
        sha256_hex(&repo.path().join("dist/functions/hello.zip"))
    );
    assert_eq!(json["layers"]["shared"]["kind"], "source");
}

#[test]
fn identical_inputs_give_identical_zips_in_another_checkout() {
    let one = app();
    let two = app();
    fs::set_permissions(
        two.path().join("lambdas/hello/hello_handler.py"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let first = one.xtask(&["package", "--json"]);
    two.xtask_umask("077", &["package"]).success();
    let second = two.xtask(&["package", "--json"]);
    for zip in [
        "dist/functions/hello.zip",
        "dist/functions/bye.zip",
        "dist/layers/shared.zip",
    ] {
        assert_eq!(one.read(zip), two.read(zip), "{zip} differs");
    }
    let functions = |run: &support::Run| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&run.success().stdout()).unwrap()["functions"].clone()
    };
    assert_eq!(functions(&first), functions(&second));
}

#[test]
fn only_the_changed_function_is_rezipped() {
    let repo = app();
    repo.xtask(&["package"]).success();
    let bye = repo.path().join("dist/functions/bye.zip");
    let before = fs::metadata(&bye).unwrap().modified().unwrap();
    let noop = repo.xtask(&["package", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&noop.success().stdout()).unwrap();
    assert_eq!(
        json["written"],
        serde_json::json!([]),
        "a no-op run rewrites nothing"
    );

    repo.write(
        "lambdas/hello/hello_handler.py",
        "import tool\n\ndef lambda_handler(event, context):\n    return tool.run() + 1\n",
    );
    let edit = repo.xtask(&["package", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&edit.success().stdout()).unwrap();
    assert_eq!(json["written"], serde_json::json!(["dist/functions/hello.zip"]));
    assert_eq!(fs::metadata(&bye).unwrap().modified().unwrap(), before);

    // A change to shared code re-zips the shared layer only.
    repo.write(
        "lambdas/shared/response.py",
        "def ok(body):\n    return {'statusCode': 201}\n",
    );
    let shared = repo.xtask(&["package", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&shared.success().stdout()).unwrap();
    assert_eq!(json["written"], serde_json::json!(["dist/layers/shared.zip"]));
}

#[test]
fn secrets_escaping_symlinks_and_missing_handlers_are_refused() {
    let repo = app();
    repo.write("lambdas/hello/.env", "TOKEN=abc");
    repo.xtask(&["package"])
        .fails_with(2, "lambdas/hello/.env: it looks like a secret");
    assert!(!repo.path().join("dist/functions/hello.zip").exists());
    // Listing it explicitly ships it.
    repo.set_metadata(&config().key("functions.hello", "allow = [\".env\"]").metadata());
    repo.xtask(&["package"]).success();
    assert!(zip_names(&repo.path().join("dist/functions/hello.zip")).contains(&".env".to_string()));
    fs::remove_file(repo.path().join("lambdas/hello/.env")).unwrap();

    repo.write("lambdas/shared/server.pem", "-----BEGIN");
    repo.xtask(&["package"])
        .fails_with(2, "server.pem: it looks like a secret");
    fs::remove_file(repo.path().join("lambdas/shared/server.pem")).unwrap();

    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("leak.py"), "x = 1\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("leak.py"),
        repo.path().join("lambdas/bye/leak.py"),
    )
    .unwrap();
    repo.xtask(&["package"]).fails_with(2, "outside the repository");
    fs::remove_file(repo.path().join("lambdas/bye/leak.py")).unwrap();
    // A symlink that stays inside the repository is followed.
    std::os::unix::fs::symlink(
        repo.path().join("lambdas/shared/response.py"),
        repo.path().join("lambdas/bye/resp.py"),
    )
    .unwrap();
    repo.xtask(&["package"]).success();
    assert!(zip_names(&repo.path().join("dist/functions/bye.zip")).contains(&"resp.py".to_string()));

    repo.write(
        "lambdas/bye/bye_handler.py",
        "def something_else(event, context):\n    pass\n",
    );
    repo.xtask(&["package"])
        .fails_with(2, "defines no top-level `lambda_handler`");
    repo.write(
        "lambdas/bye/bye_handler.py",
        "def lambda_handler(event, context:\n",
    );
    repo.xtask(&["package"]).fails_with(2, "syntax error at line 1");
    fs::remove_file(repo.path().join("lambdas/bye/bye_handler.py")).unwrap();
    repo.xtask(&["package"])
        .fails_with(2, "needs bye_handler.py in lambdas/bye");
}

#[test]
fn an_unreadable_file_is_an_error() {
    let repo = app();
    let secret = repo.write("lambdas/bye/data.json", "{}");
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if fs::File::open(&secret).is_ok() {
        // root reads every file; the rule is exercised by the FIFO below instead.
        fs::remove_file(&secret).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(repo.path().join("lambdas/bye/pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        repo.xtask(&["package"]).fails_with(2, "is not a regular file");
        return;
    }
    repo.xtask(&["package"]).fails_with(2, "cannot read");
}

#[test]
fn bundle_merges_the_layers_into_the_function() {
    let repo = app();
    repo.set_metadata(&config().key("functions.hello", "bundle = true").metadata());
    // What the function bundles is built first.
    repo.xtask(&["package", "--builder", "host", "hello"]).success();
    repo.xtask(&["package", "--builder", "host"]).success();
    let names = zip_names(&repo.path().join("dist/functions/hello.zip"));
    for expected in [
        "hello_handler.py",
        "tool.pyc",
        "tool-1.0.dist-info/METADATA",
        "shared/response.py",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing from {names:?}"
        );
    }
    assert!(!names.iter().any(|name| name.starts_with("python/")), "{names:?}");
    let manifest = repo.manifest();
    assert_eq!(manifest["functions"]["hello"]["layers"], serde_json::json!([]));
    assert_eq!(
        manifest["functions"]["hello"]["bundled"],
        serde_json::json!(["core", "shared"])
    );
    // The other function still attaches the layer and carries no shared/.
    assert_eq!(
        zip_names(&repo.path().join("dist/functions/bye.zip")),
        [
            "__pycache__/",
            "__pycache__/bye_handler.cpython-311.pyc",
            "bye_handler.py"
        ]
    );
}

#[test]
fn removing_a_function_or_layer_from_the_config_drops_it_from_the_manifest() {
    let repo = app();
    let functions = |repo: &Repo| -> serde_json::Value {
        let run = repo.xtask(&["package", "--json"]);
        serde_json::from_str::<serde_json::Value>(&run.success().stdout()).unwrap()["functions"].clone()
    };
    assert!(functions(&repo)["bye"].is_object());
    assert!(repo.path().join("dist/functions/bye.zip").is_file());
    repo.set_metadata(&config().without("functions.bye").metadata());
    assert!(functions(&repo).get("bye").is_none());
    assert!(
        !repo.path().join("dist/functions/bye.zip").exists(),
        "dist/ holds what the graph produces"
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let repo = app();
    let run = repo.xtask(&["package", "--dry-run"]);
    let stdout = run.success().stdout();
    assert!(stdout.contains("layer shared: not built yet"), "{stdout}");
    assert!(stdout.contains("function hello: not built yet"), "{stdout}");
    assert!(stdout.contains("0 up to date, 3 to run"), "{stdout}");
    assert!(!repo.path().join("dist").exists());
    assert!(!repo.path().join("target").exists());
    repo.xtask(&["package", "-q"]).success();
    let again = repo.xtask(&["package", "--dry-run"]);
    let stdout = again.success().stdout();
    assert!(!stdout.contains("function hello"), "{stdout}");
    assert!(stdout.contains("3 up to date, 0 to run"), "{stdout}");
    repo.write(
        "lambdas/hello/hello_handler.py",
        "import tool\n\ndef lambda_handler(event, context):\n    return 2\n",
    );
    let edited = repo.xtask(&["package", "--dry-run"]);
    assert!(
        edited
            .success()
            .stdout()
            .contains("function hello: lambdas/hello/hello_handler.py changed"),
        "{}",
        edited.stdout()
    );
}

/// A function's source folder that is a link out of the repository is
/// refused, naming the link, its target and the fix; nothing is written.
#[test]
fn a_source_folder_linked_outside_the_repository_is_refused() {
    let repo = app();
    let outside = tempfile::tempdir().unwrap();
    fs::write(
        outside.path().join("bye_handler.py"),
        "def lambda_handler(event, context):\n    return None\n",
    )
    .unwrap();
    let bye = repo.path().join("lambdas/bye");
    fs::remove_dir_all(&bye).unwrap();
    std::os::unix::fs::symlink(outside.path(), &bye).unwrap();
    let run = repo.xtask(&["package"]);
    run.fails_with(
        2,
        "outside the repository (copy it into the repository or remove the link)",
    );
    let stderr = run.stderr();
    assert!(stderr.contains("lambdas/bye is a symlink to"), "{stderr}");
    assert!(stderr.contains(&outside.path().display().to_string()), "{stderr}");
    assert!(!repo.path().join("dist/functions/bye.zip").exists());
}

/// `settings.py -> ../../.env`: the secret filter judges the target's name
/// too; the name it ships under is what `allow` lists.
#[test]
fn a_link_to_a_secret_is_refused_unless_allowed() {
    let repo = app();
    repo.write(".env", "PASSWORD=hunter2\n");
    std::os::unix::fs::symlink("../../.env", repo.path().join("lambdas/hello/settings.py")).unwrap();
    let run = repo.xtask(&["package"]);
    run.fails_with(
        2,
        "settings.py: it is a symlink to .env, which looks like a secret",
    );
    assert!(
        run.stderr().contains("list \"settings.py\" in `allow`"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("hunter2"));
    assert!(!repo.path().join("dist/functions/hello.zip").exists());
    repo.set_metadata(
        &config()
            .key("functions.hello", "allow = [\"settings.py\"]")
            .metadata(),
    );
    repo.xtask(&["package"]).success();
    assert!(zip_names(&repo.path().join("dist/functions/hello.zip")).contains(&"settings.py".to_string()));
}

/// `vendor -> ../../.git`: a link into a version-control folder is refused
/// whatever its name (its config can hold a token); without it, all builds.
#[test]
fn a_link_into_a_version_control_folder_is_refused() {
    let repo = app();
    repo.write(
        ".git/config",
        // The userinfo `@` put in here: no credential-shaped URL in the source.
        &format!(
            "[remote \"origin\"]\nurl = https://bot:TOKEN{}example.com/r.git\n",
            '@'
        ),
    );
    std::os::unix::fs::symlink("../../.git", repo.path().join("lambdas/shared/vendor")).unwrap();
    let run = repo.xtask(&["package"]);
    run.fails_with(
        2,
        "vendor: it is a symlink to .git, inside the version-control folder `.git` (remove the link)",
    );
    assert!(!run.stderr().contains("TOKEN"));
    assert!(!repo.path().join("dist/layers/shared.zip").exists());
    fs::remove_file(repo.path().join("lambdas/shared/vendor")).unwrap();
    repo.xtask(&["package"]).success();
}
