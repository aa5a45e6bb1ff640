//! Image functions (`package = "image"`) end to end: built on a base pulled
//! from a registry of the test's own, pushed to it, read back by other
//! clients (skopeo, docker) and run, and every way that can go wrong said
//! on one line. Each test needs Debian's docker-registry, a container
//! engine with the test image (the base is built from it) and AWS's runtime
//! interface client: the `needs_registry` group.

mod needs_registry {
    use std::fs;
    use std::process::Command;

    use serde_json::Value;
    use xtask::store::{oci, registry};

    use crate::support::app::App;
    use crate::support::registry::{test_base, TestRegistry};
    use crate::support::{require_runtime, Repo};

    /// The standard application with `hello` as an image on `base`, pushed
    /// under `<registry>/app`.
    fn image_app(registry: &TestRegistry, base: &str) -> Repo {
        App::standard()
            .key("functions.hello", "package = \"image\"")
            .key("functions.hello", &format!("image_base = \"{base}\""))
            .setting(&format!("image_repository = \"{}/app\"", registry.host()))
            .repo()
    }

    fn skopeo(args: &[&str]) -> Value {
        let output = Command::new("skopeo")
            .args(args)
            .output()
            .expect("skopeo is installed (apt-get install skopeo; `cargo xtask ci` does)");
        assert!(
            output.status.success(),
            "skopeo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn image_of(repo: &Repo) -> Value {
        repo.manifest()["functions"]["hello"]["image"].clone()
    }

    fn layer_names(image: &Value) -> Vec<String> {
        image["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer["name"].as_str().unwrap().to_string())
            .filter(|name| name != "base")
            .collect()
    }

    #[test]
    #[ignore = "needs docker-registry, a container engine and the runtime client"]
    fn an_image_function_is_pinned_built_pushed_and_read_back_by_other_clients() {
        require_runtime();
        let registry = TestRegistry::start();
        let base = test_base(&registry);
        let tag = format!("{}/lambda/python:3.11", registry.host());
        let repo = image_app(&registry, &tag);

        // A tag is not built on until it is pinned.
        repo.xtask(&["build", "--builder", "host"])
            .fails_with(2, "cargo xtask lock");
        repo.xtask(&["lock", "--check"])
            .fails_with(2, "not pinned in images.lock");
        repo.xtask(&["lock"]).success();
        repo.xtask(&["lock", "--check"]).success();
        let lock: Value = serde_json::from_slice(&repo.read("images.lock")).unwrap();
        assert_eq!(lock["bases"][&tag]["x86_64"], base.digest.as_deref().unwrap());

        repo.xtask(&["build", "--builder", "host"]).success();
        let entry = &repo.manifest()["functions"]["hello"];
        assert_eq!(entry["package_type"], "Image");
        assert_eq!(entry["layers"], serde_json::json!([]));
        let image = image_of(&repo);
        assert_eq!(image["base"], base.to_string());
        assert_eq!(image["layout"], "dist/images/hello");
        assert_eq!(image["uri"], Value::Null, "not pushed yet");
        assert_eq!(layer_names(&image), ["core", "shared", "function"]);
        let digest = image["digest"].as_str().unwrap().to_string();

        // The layout is an OCI image layout another client reads.
        let layout = repo.path().join("dist/images/hello");
        let local = skopeo(&["inspect", &format!("oci:{}", layout.display())]);
        assert_eq!(local["Digest"], digest.as_str());
        assert_eq!(local["Architecture"], "amd64");

        let pushed = repo.xtask(&["push"]);
        pushed.success();
        let uri = format!("{}/app/hello@{digest}", registry.host());
        assert_eq!(pushed.stdout().trim(), uri);
        assert_eq!(image_of(&repo)["uri"], uri.as_str());
        // The base is on the same registry: its layers are mounted from its
        // repository; the image's own layers and its config are uploaded.
        let base_layers = image["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|layer| layer["name"] == "base")
            .count();
        assert!(base_layers > 0);
        assert!(
            pushed.stderr().contains(&format!(
                "(4 blob(s) uploaded, {base_layers} mounted from the base's repository, 0 already there)"
            )),
            "{}",
            pushed.stderr()
        );
        let remote = skopeo(&[
            "inspect",
            "--no-tags",
            "--tls-verify=false",
            &format!("docker://{uri}"),
        ]);
        assert_eq!(remote["Digest"], digest.as_str());
        assert_eq!(
            remote["Layers"].as_array().unwrap().len(),
            image["layers"].as_array().unwrap().len()
        );
        // A build after the push keeps the uri: the same image is there;
        // --docker loads it into the engine.
        let loaded = repo.xtask(&["build", "--builder", "host", "--docker"]);
        assert!(
            loaded.success().stderr().contains("Loaded image"),
            "{}",
            loaded.stderr()
        );
        assert_eq!(image_of(&repo)["uri"], uri.as_str());

        // docker pulls it and runs its handler under the runtime client.
        let answer = run_in_docker(&uri, r#"{"ping": 1}"#);
        assert_eq!(answer, "1", "hello returns tool.X from the core layer");

        // invoke runs it from its layers, and in the engine as it is.
        repo.write("event.json", "{}");
        let here = repo.xtask(&["invoke", "hello", "--builder", "host", "--event", "event.json"]);
        assert_eq!(here.success().stdout().trim(), "1");
        let contained = repo.xtask(&[
            "invoke",
            "hello",
            "--builder",
            "host",
            "--runner",
            "container",
            "--image",
            crate::support::TEST_IMAGE,
            "--event",
            "event.json",
        ]);
        assert_eq!(contained.success().stdout().trim(), "1");
    }

    #[test]
    #[ignore = "needs docker-registry, a container engine and the runtime client"]
    fn identical_inputs_give_identical_digests_and_a_handler_edit_pushes_one_layer() {
        require_runtime();
        let registry = TestRegistry::start();
        let base = test_base(&registry).to_string();
        let one = image_app(&registry, &base);
        let two = image_app(&registry, &base);
        one.xtask(&["build", "--builder", "host"]).success();
        two.xtask(&["build", "--builder", "host"]).success();
        let (first, second) = (image_of(&one), image_of(&two));
        assert_eq!(first["digest"], second["digest"], "two clones, one digest");
        assert_eq!(first["layers"], second["layers"]);

        one.xtask(&["push"]).success();
        let blobs = registry.blob_count();
        // The same image again: every blob is there, nothing is uploaded.
        let again = two.xtask(&["push", "-v"]);
        again.success();
        assert!(
            again.stderr().contains("0 blob(s) uploaded"),
            "{}",
            again.stderr()
        );
        assert_eq!(registry.blob_count(), blobs);

        fs::write(
            one.path().join("lambdas/hello/hello.py"),
            crate::support::app::HELLO.replace("return tool.X", "return tool.X + 1"),
        )
        .unwrap();
        one.xtask(&["build", "--builder", "host"]).success();
        let edited = image_of(&one);
        assert_ne!(edited["digest"], first["digest"]);
        let changed: Vec<&str> = edited["layers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(first["layers"].as_array().unwrap())
            .filter(|(new, old)| new["digest"] != old["digest"])
            .map(|(new, _)| new["name"].as_str().unwrap())
            .collect();
        assert_eq!(changed, ["function"], "only the code's layer changes");
        let pushed = one.xtask(&["push", "-v"]);
        pushed.success();
        assert!(
            pushed.stderr().contains("2 blob(s) uploaded"),
            "{}",
            pushed.stderr()
        );
        // The function's layer, the config and the manifest: three new blobs.
        assert_eq!(registry.blob_count(), blobs + 3);
    }

    #[test]
    #[ignore = "needs docker-registry, a container engine and the runtime client"]
    fn a_function_over_the_zip_limit_names_the_image_option_and_fits_as_an_image() {
        require_runtime();
        let registry = TestRegistry::start();
        let base = test_base(&registry).to_string();
        // 270 MB of data in core: over Lambda's 262,144,000 bytes unzipped.
        let big = App::standard().repo();
        big.wheel(
            "core",
            "tool",
            "1.0",
            &[
                ("tool.py", "X = 1\n"),
                ("tool_data.bin", &"0".repeat(270_000_000)),
            ],
            &[],
        );
        let zip = big.xtask(&["check-limits", "--builder", "host"]);
        zip.fails_with(1, "package = \"image\"");
        let metadata = App::standard()
            .key("functions.hello", "package = \"image\"")
            .key("functions.hello", &format!("image_base = \"{base}\""))
            .metadata();
        big.set_metadata(&metadata);
        big.xtask(&["build", "--builder", "host"]).success();
        let image = big.manifest()["functions"]["hello"]["image"].clone();
        assert!(image["unpacked_bytes"].as_u64().unwrap() > 270_000_000);
        big.write("event.json", "{}");
        let answer = big.xtask(&["invoke", "hello", "--event", "event.json"]);
        answer.success();
        assert_eq!(answer.stdout().trim(), "1");
    }

    #[test]
    #[ignore = "needs docker-registry, a container engine and the runtime client"]
    fn bad_bases_and_registries_are_one_line_errors_that_record_nothing() {
        require_runtime();
        let registry = TestRegistry::start();
        let base = test_base(&registry);
        let with_base = |base: &str| {
            let metadata = App::standard()
                .key("functions.hello", "package = \"image\"")
                .key("functions.hello", &format!("image_base = \"{base}\""))
                .metadata();
            metadata
        };
        let repo = App::standard().repo();

        // A registry that does not answer.
        let digest = base.digest.clone().unwrap();
        repo.set_metadata(&with_base(&format!("127.0.0.1:9/lambda/python@{digest}")));
        // A machine that cannot reach what the configuration names: 2, as
        // for a missing container engine.
        let down = repo.xtask(&["build", "--builder", "host"]);
        down.fails_with(2, "127.0.0.1:9");
        assert!(!repo.path().join("dist/manifest.json").exists());

        // A base for another architecture.
        let arm = App::standard()
            .setting("architecture = \"arm64\"")
            .key("functions.hello", "package = \"image\"")
            .key("functions.hello", &format!("image_base = \"{base}\""))
            .metadata();
        repo.set_metadata(&arm);
        repo.xtask(&["build", "--builder", "host"]).fails_with(1, "arm64");

        // A corrupt blob in the registry is refused, never built on.
        let manifest = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{base}"),
        ]);
        let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_string();
        let stored = registry.blob_path(&layer);
        let mut bytes = fs::read(&stored).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&stored, bytes).unwrap();
        repo.set_metadata(&with_base(&base.to_string()));
        repo.xtask(&["build", "--builder", "host"])
            .fails_with(1, "sha256");
        assert!(!repo.path().join("dist/manifest.json").exists());

        // A base without the runtime's Python: a layout of one file pushed.
        let empty = tempfile::tempdir().unwrap();
        let layer = oci::layer(vec![oci::File {
            path: "etc/os-release".to_string(),
            bytes: b"ID=none\n".to_vec(),
            executable: false,
        }])
        .unwrap();
        let config = oci::config(
            &serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
            std::slice::from_ref(&layer.info),
            &oci::Run { cmd: Vec::new(), env: Vec::new() },
        )
        .unwrap();
        let manifest = oci::manifest(&config, &[], std::slice::from_ref(&layer.info)).unwrap();
        let layout = empty.path().join("layout");
        oci::write_layout(&layout, &[&layer.blob], &config, &manifest).unwrap();
        let target = registry.reference("nopython");
        let pushed = registry::push_layout(&layout, &target, None, &|_| {}).unwrap();
        repo.set_metadata(&with_base(&target.at_digest(&pushed.digest).to_string()));
        repo.xtask(&["build", "--builder", "host"])
            .fails_with(2, "has no Python 3.11");
        assert!(!repo.path().join("dist/manifest.json").exists());
    }

    #[test]
    #[ignore = "needs docker-registry, a container engine and the runtime client"]
    fn a_registry_that_wants_credentials_says_which_and_takes_them_from_the_environment() {
        require_runtime();
        let open = TestRegistry::start();
        let base = test_base(&open).to_string();
        let locked = TestRegistry::start_with_basic_auth("user", "pass-word-1");
        let repo = App::standard()
            .key("functions.hello", "package = \"image\"")
            .key("functions.hello", &format!("image_base = \"{base}\""))
            .setting(&format!("image_repository = \"{}/app\"", locked.host()))
            .repo();
        repo.xtask(&["build", "--builder", "host"]).success();
        let refused = repo.xtask(&["push"]);
        refused.fails_with(1, "XTASK_REGISTRY_USERNAME");
        assert_eq!(
            image_of(&repo)["uri"],
            Value::Null,
            "nothing half-pushed is recorded"
        );
        assert!(!refused.stderr().contains("pass-word-1"));
        let pushed = repo.xtask_with(
            &["push"],
            &[
                ("XTASK_REGISTRY_USERNAME", "user"),
                ("XTASK_REGISTRY_PASSWORD", "pass-word-1"),
            ],
        );
        pushed.success();
        assert!(!pushed.stderr().contains("pass-word-1") && !pushed.stdout().contains("pass-word-1"));
        assert!(image_of(&repo)["uri"]
            .as_str()
            .unwrap()
            .starts_with(&locked.host()));
    }

    /// Pulls `uri` with docker and runs it as Lambda runs an image
    /// (read-only, a writable /tmp, an unprivileged user) against a
    /// one-event Runtime API: the handler's answer.
    fn run_in_docker(uri: &str, event: &str) -> String {
        let pull = Command::new("docker")
            .args(["pull", "--quiet", uri])
            .output()
            .unwrap();
        assert!(
            pull.status.success(),
            "docker pull: {}",
            String::from_utf8_lossy(&pull.stderr)
        );
        let dir = tempfile::tempdir().unwrap();
        let answer = dir.path().join("answer");
        let mut api = Command::new("python3")
            .arg("-c")
            .arg(ONE_EVENT_RUNTIME_API)
            .arg(event)
            .arg(&answer)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The port the kernel gave it (a probed free port could be taken
        // by a test's registry before the bind).
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(api.stdout.take().unwrap()),
            &mut first,
        )
        .unwrap();
        let port: u16 = first.trim().parse().unwrap();
        let name = format!("xtask-image-test-{}", std::process::id());
        let said = fs::File::create(dir.path().join("said")).unwrap();
        let mut run = Command::new("docker")
            .stdout(said.try_clone().unwrap())
            .stderr(said)
            .args(["run", "--rm", "--name", &name, "--network", "host", "--read-only"])
            .args(["--tmpfs", "/tmp", "--user", "993:993"])
            .args(["--env", &format!("AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}")])
            .arg(uri)
            .spawn()
            .unwrap();
        let status = api.wait().unwrap();
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        let _ = run.wait();
        let _ = Command::new("docker").args(["rmi", uri]).output();
        assert!(
            status.success(),
            "the runtime interface client never answered; the container said:\n{}",
            fs::read_to_string(dir.path().join("said")).unwrap_or_default()
        );
        fs::read_to_string(answer).unwrap()
    }

    /// A Runtime API that hands out one event and keeps the answer.
    const ONE_EVENT_RUNTIME_API: &str = include_str!("../fixtures/one-event-runtime-api.py");
}
