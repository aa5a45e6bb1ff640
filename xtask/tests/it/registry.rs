//! The registry client against real registries on this machine: pulls
//! verified blob by blob, pushes that upload only what is missing, and the
//! one-line errors of a registry that refuses, lies or does not answer.

use std::path::{Path, PathBuf};

use xtask::facts::Arch;
use xtask::store::oci;
use xtask::store::registry::{self, Reference};

use crate::support::net::free_port;

/// A small image's OCI layout at `dir`: a bottom layer and a top layer
/// holding `top`, on a linux/amd64 config. Returns the manifest's digest.
fn layout(dir: &Path, top: &str) -> String {
    let file = |path: &str, text: &str| oci::File {
        path: path.to_string(),
        bytes: text.as_bytes().to_vec(),
        executable: false,
    };
    let bottom = oci::layer(vec![file("opt/python/lib.py", "LIB = 1\n")]).unwrap();
    let top = oci::layer(vec![file("var/task/handler.py", top)]).unwrap();
    let base = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/lambda-entrypoint.sh"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    let run = oci::Run {
        cmd: vec!["handler.handler".to_string()],
        env: Vec::new(),
    };
    let layers = [bottom, top];
    let infos = [layers[0].info.clone(), layers[1].info.clone()];
    let config = oci::config(&base, &infos, &run).unwrap();
    let manifest = oci::manifest(&config, &[], &infos).unwrap();
    oci::write_layout(dir, &[&layers[0].blob, &layers[1].blob], &config, &manifest).unwrap()
}

/// An image's OCI layout in a temporary folder of its own (removed with
/// the value), made by one of the functions above: what the push tests
/// push.
struct Image {
    _work: tempfile::TempDir,
    path: PathBuf,
    /// The manifest's digest.
    digest: String,
}

impl Image {
    fn new(make: impl FnOnce(&Path) -> String) -> Image {
        let work = tempfile::tempdir().unwrap();
        let path = work.path().join("image");
        let digest = make(&path);
        Image {
            _work: work,
            path,
            digest,
        }
    }

    /// [`layout`]'s small image with `top` in its top layer.
    fn small(top: &str) -> Image {
        Image::new(|dir| layout(dir, top))
    }

    fn push(&self, repository: &Reference, tag: Option<&str>) -> anyhow::Result<registry::Pushed> {
        registry::push_layout(&self.path, repository, tag, &|_| {})
    }

    /// Its manifest, from the layout.
    fn manifest(&self) -> serde_json::Value {
        let hex = self.digest.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(self.path.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    }
}

/// The error's whole text, which must be one line.
fn one_line(err: anyhow::Error) -> String {
    let text = format!("{err:#}");
    assert!(!text.contains('\n'), "an error is one line: {text}");
    text
}

#[test]
fn an_unreachable_registry_is_a_one_line_error_naming_its_url() {
    let port = free_port();
    let reference = Reference::parse(&format!("127.0.0.1:{port}/base/python:3.11")).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let err = one_line(registry::pull(&reference, Arch::X86_64, dest.path()).unwrap_err());
    assert!(
        err.contains(&format!(
            "cannot reach the registry at http://127.0.0.1:{port}/v2/base/python/manifests/3.11"
        )) && err.contains("is it running? is the name right?"),
        "{err}"
    );
}

mod needs_registry {
    use std::process::Command;
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use super::*;
    use crate::support::registry::{test_base, Proxy, TestRegistry};

    /// The client reads its credentials from the environment: one test at a time.
    fn serial() -> MutexGuard<'static, ()> {
        static SERIAL: Mutex<()> = Mutex::new(());
        let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        for name in [
            registry::ENV_TOKEN,
            registry::ENV_USERNAME,
            registry::ENV_PASSWORD,
        ] {
            std::env::remove_var(name);
        }
        guard
    }

    fn sha256_of(path: &Path) -> String {
        format!("sha256:{}", crate::support::sha256_hex(path))
    }

    #[test]
    #[ignore = "needs docker-registry, docker with the test image and the runtime client"]
    fn a_pulled_base_has_every_blob_verified_and_another_architecture_is_refused() {
        let _serial = serial();
        let registry = TestRegistry::start();
        let base = test_base(&registry);
        let dest = tempfile::tempdir().unwrap();
        let into = dest.path().join("base");
        let pulled = registry::pull(&base, Arch::X86_64, &into).unwrap();
        assert_eq!(
            pulled.reference.digest.as_deref(),
            Some(pulled.manifest.digest.as_str())
        );
        assert_eq!(sha256_of(&into.join("manifest.json")), pulled.manifest.digest);
        let blobs: Vec<_> = std::iter::once(&pulled.manifest.config)
            .chain(&pulled.manifest.layers)
            .collect();
        assert!(
            blobs.len() >= 3,
            "the test image's layers, the runtime client's and the entrypoint's"
        );
        for blob in blobs {
            let path = into.join(blob.hex());
            assert_eq!(sha256_of(&path), blob.digest);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), blob.size);
        }
        assert_eq!(
            pulled.config["config"]["Entrypoint"],
            serde_json::json!(["/lambda-entrypoint.sh"])
        );
        assert_eq!(pulled.config["config"]["WorkingDir"], "/var/task");
        let env = pulled.config["config"]["Env"].to_string();
        assert!(
            env.contains("LAMBDA_TASK_ROOT=/var/task") && env.contains("LAMBDA_RUNTIME_DIR=/var/runtime"),
            "{env}"
        );
        // By tag, the same image.
        let by_tag = registry::Client::new(&base, false)
            .unwrap()
            .platform_manifest(&registry.reference("lambda/python:3.11"), Arch::X86_64)
            .unwrap();
        assert_eq!(by_tag.digest, pulled.manifest.digest);

        let arm = dest.path().join("arm");
        let err = one_line(registry::pull(&base, Arch::Arm64, &arm).unwrap_err());
        assert!(
            err.contains("linux/amd64")
                && err.contains("not linux/arm64")
                && err.contains("use a base built for linux/arm64"),
            "{err}"
        );
        assert!(!arm.join("manifest.json").exists());
    }

    #[test]
    #[ignore = "needs docker-registry and skopeo"]
    fn a_push_uploads_only_what_the_registry_lacks_and_reads_back_with_skopeo() {
        let _serial = serial();
        let registry = TestRegistry::start();
        let first = Image::small("def handler(e, c): return 1\n");
        let digest = first.digest.clone();
        let repository = registry.reference("team/app");
        let messages = std::cell::RefCell::new(Vec::new());
        let pushed = registry::push_layout(&first.path, &repository, Some("v1"), &|line: &str| {
            messages.borrow_mut().push(line.to_string())
        })
        .unwrap();
        assert_eq!(pushed.digest, digest);
        assert_eq!(
            (pushed.uploaded.len(), pushed.present.len()),
            (3, 0),
            "{pushed:?}"
        );
        assert_eq!(messages.borrow().len(), 3);
        assert_eq!(
            registry.blob_count(),
            4,
            "two layers, the config and the manifest"
        );

        let inspected = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{}/team/app@{digest}", registry.host()))
            .output()
            .expect("this test needs skopeo (`apt-get install skopeo`; `cargo xtask ci` installs it)");
        assert!(
            inspected.status.success(),
            "{}",
            String::from_utf8_lossy(&inspected.stderr)
        );
        let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
        assert_eq!(inspected["Digest"], digest.as_str());
        assert_eq!(inspected["Architecture"], "amd64");
        assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);
        let by_tag = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{}/team/app:v1", registry.host()))
            .output()
            .unwrap();
        assert_eq!(
            registry::digest_of(&by_tag.stdout),
            digest,
            "the tag names the same manifest"
        );

        let again = first.push(&repository, None).unwrap();
        assert_eq!((again.uploaded.len(), again.present.len()), (0, 3), "{again:?}");
        assert_eq!(registry.blob_count(), 4);

        let second = Image::small("def handler(e, c): return 2\n");
        let pushed = second.push(&repository, None).unwrap();
        assert_eq!(pushed.digest, second.digest);
        let manifest = second.manifest();
        let config = manifest["config"]["digest"].as_str().unwrap().to_string();
        let top = manifest["layers"][1]["digest"].as_str().unwrap().to_string();
        let bottom = manifest["layers"][0]["digest"].as_str().unwrap().to_string();
        let mut uploaded = pushed.uploaded.clone();
        uploaded.sort();
        let mut expected = vec![config, top];
        expected.sort();
        assert_eq!(uploaded, expected, "the changed layer and the config only");
        assert_eq!(pushed.present, [bottom]);
        assert_eq!(registry.blob_count(), 4 + 3, "the new layer, config and manifest");
    }

    #[test]
    #[ignore = "needs docker-registry (and python3 for its bcrypt password)"]
    fn basic_auth_names_the_variables_without_them_and_works_with_them() {
        let _serial = serial();
        let registry = TestRegistry::start_with_basic_auth("tester", "pa55-word");
        let image = Image::small("x = 1\n");
        let digest = image.digest.clone();
        let repository = registry.reference("team/app");
        let err = one_line(image.push(&repository, None).unwrap_err());
        assert!(
            err.contains("HTTP 401")
                && err.contains(registry::ENV_USERNAME)
                && err.contains(registry::ENV_PASSWORD),
            "{err}"
        );
        std::env::set_var(registry::ENV_USERNAME, "tester");
        std::env::set_var(registry::ENV_PASSWORD, "wrong");
        let err = one_line(image.push(&repository, None).unwrap_err());
        assert!(err.contains("check that XTASK_REGISTRY_USERNAME"), "{err}");
        assert!(!err.contains("wrong"), "{err}");
        std::env::set_var(registry::ENV_PASSWORD, "pa55-word");
        let pushed = image.push(&repository, Some("latest")).unwrap();
        assert_eq!(pushed.digest, digest);
        let dest = tempfile::tempdir().unwrap();
        let pulled = registry::pull(&repository.at_digest(&digest), Arch::X86_64, dest.path()).unwrap();
        assert_eq!(pulled.manifest.digest, digest);
    }

    #[test]
    #[ignore = "needs docker-registry"]
    fn a_corrupted_blob_in_the_registry_is_refused_and_nothing_is_kept() {
        let _serial = serial();
        let registry = TestRegistry::start();
        let image = Image::small("x = 1\n");
        let digest = image.digest.clone();
        let repository = registry.reference("team/app");
        image.push(&repository, None).unwrap();
        let manifest = image.manifest();
        let top = manifest["layers"][1]["digest"].as_str().unwrap().to_string();
        let stored = registry.blob_path(&top);
        let mut bytes = std::fs::read(&stored).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&stored, &bytes).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let err =
            one_line(registry::pull(&repository.at_digest(&digest), Arch::X86_64, dest.path()).unwrap_err());
        assert!(
            err.contains(&format!("corrupt blob {top} from {}/team/app", registry.host())),
            "{err}"
        );
        let left: Vec<PathBuf> = std::fs::read_dir(dest.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.to_string_lossy().contains(top.trim_start_matches("sha256:")))
            .collect();
        assert!(left.is_empty(), "nothing of the corrupt blob is kept: {left:?}");
        // A digest the registry does not have is a one-line error too.
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err =
            one_line(registry::pull(&repository.at_digest(&wrong), Arch::X86_64, dest.path()).unwrap_err());
        assert!(err.contains("is not in the registry"), "{err}");
    }

    #[test]
    #[ignore = "needs docker-registry and python3"]
    fn a_token_service_is_asked_once_per_repository_with_the_scopes_needed() {
        let _serial = serial();
        let registry = TestRegistry::start();
        let proxy = Proxy::start(&registry, "token");
        let image = Image::small("x = 1\n");
        let digest = image.digest.clone();
        let repository = Reference::parse(&format!("{}/team/app", proxy.host())).unwrap();
        let pushed = image.push(&repository, Some("v1")).unwrap();
        assert_eq!(
            (pushed.digest.as_str(), pushed.uploaded.len()),
            (digest.as_str(), 3)
        );
        let dest = tempfile::tempdir().unwrap();
        let tagged = Reference::parse(&format!("{}/team/app:v1", proxy.host())).unwrap();
        let pulled = registry::pull(&tagged, Arch::X86_64, dest.path()).unwrap();
        assert_eq!(pulled.manifest.digest, digest);
        let scopes = proxy.recorded("scopes");
        assert_eq!(
            scopes,
            [
                "repository:team/app:pull",
                "repository:team/app:pull,push",
                "repository:team/app:pull"
            ],
            "one token for the push (pull and push), one for the pull"
        );
    }

    /// 17 MiB that gzip cannot shrink: a layer of two chunks.
    fn two_chunk_layout(dir: &Path) -> String {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..17 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let layer = oci::layer(vec![oci::File {
            path: "var/task/noise.bin".to_string(),
            bytes: noise,
            executable: false,
        }])
        .unwrap();
        let base = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}});
        let run = oci::Run {
            cmd: vec!["h.handler".to_string()],
            env: Vec::new(),
        };
        let config = oci::config(&base, std::slice::from_ref(&layer.info), &run).unwrap();
        let manifest = oci::manifest(&config, &[], std::slice::from_ref(&layer.info)).unwrap();
        oci::write_layout(dir, &[&layer.blob], &config, &manifest).unwrap()
    }

    #[test]
    #[ignore = "needs docker-registry and python3"]
    fn a_lost_chunk_is_resent_from_where_the_registry_stopped() {
        let _serial = serial();
        let registry = TestRegistry::start();
        let image = Image::new(two_chunk_layout);
        let digest = image.digest.clone();
        let manifest = image.manifest();
        let config = format!("0-{}", manifest["config"]["size"].as_u64().unwrap() - 1);
        let size = manifest["layers"][0]["size"].as_u64().unwrap();
        let chunk = 16 * 1024 * 1024u64;
        assert!(size > chunk, "the layer takes two chunks");
        let (first, second) = (format!("0-{}", chunk - 1), format!("{chunk}-{}", size - 1));

        // The layer's second chunk lost: the upload's status says the first arrived.
        let lost = Proxy::start(&registry, "lose-later-chunk");
        let repository = Reference::parse(&format!("{}/team/lost", lost.host())).unwrap();
        assert_eq!(image.push(&repository, None).unwrap().digest, digest);
        assert_eq!(
            lost.recorded("patches"),
            [config.clone(), first.clone(), second.clone(), second.clone()],
            "the lost chunk is sent again, and only it"
        );

        // The config's chunk broken half way: the registry drops the upload, which starts over.
        let broken = Proxy::start(&registry, "break-first-chunk");
        let repository = Reference::parse(&format!("{}/team/broken", broken.host())).unwrap();
        assert_eq!(image.push(&repository, None).unwrap().digest, digest);
        assert_eq!(
            broken.recorded("patches"),
            [config.clone(), config, first, second]
        );

        for path in ["team/lost", "team/broken"] {
            let dest = tempfile::tempdir().unwrap();
            let pulled = registry::pull(
                &registry.reference(path).at_digest(&digest),
                Arch::X86_64,
                dest.path(),
            )
            .unwrap();
            let layer = &pulled.manifest.layers[0];
            assert_eq!(sha256_of(&dest.path().join(layer.hex())), layer.digest);
        }
    }
}

mod needs_moto {
    use super::*;
    use crate::support::moto;

    /// ECR's password is asked for with the remote cache's AWS credentials,
    /// signed, from the endpoint `XTASK_ECR_ENDPOINT` names (moto's here).
    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn an_ecr_registry_gets_its_password_from_get_authorization_token() {
        let server = moto::start();
        let ecr = Reference::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app").unwrap();
        let vars = [
            (registry::ENV_ECR_ENDPOINT, server.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_CONFIG_FILE", "/dev/null".to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ];
        for (name, value) in &vars {
            std::env::set_var(name, value);
        }
        let client = registry::Client::new(&ecr, true);
        let without_keys = {
            std::env::remove_var("AWS_ACCESS_KEY_ID");
            registry::Client::new(&ecr, true).map(|_| ())
        };
        for (name, _) in &vars {
            std::env::remove_var(name);
        }
        let used = client.unwrap().credentials_used();
        assert!(
            used.contains("ECR's password") && used.contains("AWS_ACCESS_KEY_ID from the environment"),
            "{used}"
        );
        let err = one_line(without_keys.unwrap_err());
        assert!(
            err.contains("AWS_ACCESS_KEY_ID") && err.contains("Amazon ECR"),
            "{err}"
        );
    }
}
