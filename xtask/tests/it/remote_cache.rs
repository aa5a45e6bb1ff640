//! The remote cache of dependency layers, against moto's S3 on 127.0.0.1:
//! what one checkout builds, another with its own local cache takes from
//! the bucket byte for byte without installing anything; a corrupted entry
//! is rejected and rebuilt; `read-only` never writes; a remote that does
//! not answer slows nothing down much and fails nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{self, moto, Repo};

const BUCKET: &str = "layers";

const METADATA: &str = r#"
[workspace.metadata.lambda]
runtime = "python3.11"
image = "xtask-no-such-image:never"

[workspace.metadata.lambda.layers.core]
requirements = "layers/core/requirements.txt"

[workspace.metadata.lambda.layers.extra]
requirements = "layers/extra/requirements.txt"
"#;

const BUILD: &[&str] = &["build-layers", "--builder", "host"];

/// The same small application in a new checkout, with its own target/.
fn app(remote: &str) -> Repo {
    // The key belongs to the top-level table: right after its header.
    let repo = Repo::new(&METADATA.replacen(
        "[workspace.metadata.lambda]\n",
        &format!("[workspace.metadata.lambda]\nremote_cache = \"{remote}\"\n"),
        1,
    ));
    repo.profile("core", &["req"]);
    repo.wheel(
        "core",
        "req",
        "1.0",
        &[
            ("req/__init__.py", "VERSION = '1.0'\n"),
            // A module that does not import as installed (an optional
            // dependency missing): a fetched copy is not rejected for it.
            ("req/optional.py", "import not_installed_anywhere\n"),
        ],
        &[],
    );
    repo.profile("extra", &["tool"]);
    repo.wheel(
        "extra",
        "tool",
        "2.0",
        &[("tool/__init__.py", "VERSION = '2.0'\n")],
        &[],
    );
    repo
}

/// The environment of every build: moto's endpoint and made-up keys, no
/// file of the machine's AWS settings, and a package index that does not
/// answer (the same in every checkout: the installer's variables are part
/// of a layer's key).
fn env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL_S3", endpoint.into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("UV_INDEX_URL", "http://127.0.0.1:9/simple".into()),
        ("PIP_INDEX_URL", "http://127.0.0.1:9/simple".into()),
        ("XTASK_REMOTE_CACHE_MODE", "read-write".into()),
    ]
}

fn build(repo: &Repo, env: &[(&'static str, String)], extra: &[(&'static str, String)]) -> support::Run {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    for (key, value) in extra {
        all.retain(|(other, _)| other != key);
        all.push((key, value.as_str()));
    }
    repo.xtask_with(BUILD, &all)
}

/// A uv cache folder that is a file: any install fails, and nothing in a
/// layer's key changes.
fn no_installs(repo: &Repo) -> (&'static str, String) {
    let blocker = repo.write("uv-cache-is-a-file", "");
    ("UV_CACHE_DIR", blocker.to_string_lossy().into_owned())
}

fn layer(repo: &Repo, name: &str) -> Vec<u8> {
    repo.read(&format!("dist/layers/{name}.zip"))
}

#[test]
fn an_unreachable_remote_fails_nothing_and_warns_once() {
    // The environment's URL wins over the configuration's.
    let repo = app("s3://configured-but-unused");
    let env = env("http://127.0.0.1:9");
    let started = Instant::now();
    let run = build(
        &repo,
        &env,
        &[("XTASK_REMOTE_CACHE", "s3://layers/ci".to_string())],
    );
    run.success();
    let stderr = run.stderr();
    assert_eq!(stderr.matches("does not answer").count(), 1, "{stderr}");
    assert!(stderr.contains("s3://layers/ci"), "{stderr}");
    assert!(stderr.contains("building locally"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(fs::metadata(repo.path().join("dist/layers/core.zip")).is_ok());
}

/// `core`'s entry in the bucket of a checkout that uploaded it: the keys of
/// its ZIP and meta, and the meta.
fn core_entry(moto: &moto::Moto, built: &Repo) -> (String, String, serde_json::Value) {
    let key = built.manifest()["layers"]["core"]["cache_key"]
        .as_str()
        .expect("core's cache key")
        .to_string();
    let meta_key = moto
        .keys(BUCKET)
        .into_iter()
        .find(|object| object.ends_with(&format!("/{key}/meta.json")))
        .expect("core's entry is in the bucket");
    let zip_key = meta_key.replace("/meta.json", "/layer.zip");
    let meta = serde_json::from_slice(&moto.get(BUCKET, &meta_key)).unwrap();
    (zip_key, meta_key, meta)
}

/// Replaces `core`'s entry with `zip` and a meta whose file list is right
/// for it (its real sha256 and size) and whose data is `data`.
fn replace_core(moto: &moto::Moto, work: &Repo, zip: &Path, data: serde_json::Value) {
    let (zip_key, meta_key, mut meta) = core_entry(moto, work);
    meta["files"] = serde_json::json!([{
        "name": "layer.zip",
        "sha256": support::sha256_hex(zip),
        "bytes": fs::metadata(zip).unwrap().len(),
    }]);
    meta["data"] = data;
    moto.put(BUCKET, &zip_key, zip);
    let meta_file = work.write("poisoned-meta.json", &serde_json::to_string(&meta).unwrap());
    moto.put(BUCKET, &meta_key, &meta_file);
}

/// `zip` with one more file, `path`, of `size` bytes of `content` repeated
/// (written by Python's zipfile, deflated).
fn zip_with(work: &Repo, zip: &Path, path: &str, content: &str, size: u64) -> PathBuf {
    let out = work.path().join("poisoned.zip");
    let script = r#"
import sys, zipfile
source, out, name, content, size = sys.argv[1:6]
content, size = content.encode(), int(size)
with zipfile.ZipFile(source) as old, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
    for info in old.infolist():
        new.writestr(info, old.read(info))
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with new.open(info, "w") as file:
        chunk = content * max(1, (1 << 20) // len(content))
        left = size
        while left > 0:
            file.write(chunk[:left])
            left -= min(left, len(chunk))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .arg(&out)
        .args([path, content, &size.to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

#[test]
fn a_local_entry_whose_data_does_not_parse_is_rebuilt() {
    let repo = app("s3://unused");
    repo.set_metadata(METADATA);
    let env = env("http://127.0.0.1:9");
    build(&repo, &env, &[]).success();
    let good = layer(&repo, "core");
    let key = repo.manifest()["layers"]["core"]["cache_key"]
        .as_str()
        .unwrap()
        .to_string();
    // A sealed meta (its checksum right) whose data is no layer's.
    let meta_path = repo
        .path()
        .join(format!("target/lambda/store/profile/{key}/meta.json"));
    let text = fs::read_to_string(&meta_path).unwrap();
    let (_, body) = text.split_once('\n').unwrap();
    let mut body: serde_json::Value = serde_json::from_str(body).unwrap();
    body["data"] = serde_json::json!({"bogus": true});
    let body = serde_json::to_vec_pretty(&body).unwrap();
    let seal = {
        use sha2::Digest;
        sha2::Sha256::digest(&body)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    fs::write(&meta_path, [seal.as_bytes(), b"\n", &body].concat()).unwrap();

    let run = build(&repo, &env, &[]);
    run.success();
    assert!(
        run.stderr().contains("discarding the cache entry"),
        "{}",
        run.stderr()
    );
    assert_eq!(layer(&repo, "core"), good);
    let run = build(&repo, &env, &[]);
    run.success();
    assert!(!run.stderr().contains("warning"), "{}", run.stderr());
}

/// A stand-in for curl, first on PATH, that records every argument it is
/// given and runs the real one.
fn recording_curl(work: &Repo) -> (String, PathBuf) {
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v curl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let log = work.path().join("curl-argv.log");
    let bin = work.path().join("recording-bin");
    let script = format!(
        "#!/bin/sh\nfor arg in \"$@\"; do printf '%s\\n' \"$arg\" >> '{}'; done\nexec '{}' \"$@\"\n",
        log.display(),
        real.trim()
    );
    let curl = work.write("recording-bin/curl", &script);
    fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    (path, log)
}

/// A server that answers every request with S3's 403 AccessDenied.
fn refusing_server() -> String {
    let body =
        "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
    answering_server(format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// A server on 127.0.0.1 that reads each request's head and answers `answer`.
fn answering_server(answer: String) -> String {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                match std::io::Read::read(&mut stream, &mut byte) {
                    Ok(1) => request.push(byte[0]),
                    _ => break,
                }
            }
            let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
        }
    });
    format!("http://{address}")
}

#[test]
fn a_refusal_names_the_credentials_used() {
    let endpoint = refusing_server();
    let mut env = env(&endpoint);
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    env.retain(|(key, _)| !key.starts_with("AWS_ACCESS") && !key.starts_with("AWS_SECRET"));
    env.push(("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE".into()));
    env.push(("AWS_SECRET_ACCESS_KEY", secret.into()));
    let repo = app("s3://layers/ci");
    let run = build(&repo, &env, &[]);
    run.success();
    let stderr = run.stderr();
    assert_eq!(stderr.matches("warning").count(), 1, "{stderr}");
    for needle in [
        "403",
        "AccessDenied",
        "AKIA…MPLE",
        "AWS_ACCESS_KEY_ID",
        "s3://layers/ci",
        "building locally",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing:\n{stderr}");
    }
    assert!(
        !stderr.contains(secret) && !stderr.contains("AKIAIOSFODNN7EXAMPLE"),
        "{stderr}"
    );
}

#[test]
fn an_answer_is_held_to_our_own_size_limit() {
    // A meta.json of 10^15 bytes, by the server's word: refused at once,
    // not waited for.
    let endpoint = answering_server(
        "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\nConnection: close\r\n\r\n{\"format\": 1,"
            .to_string(),
    );
    let repo = app("s3://layers/ci");
    let run = build(
        &repo,
        &env(&endpoint),
        &[("XTASK_REMOTE_CACHE_MODE", "read-only".into())],
    );
    run.success();
    assert_eq!(
        run.stderr().matches("meta.json is over 4194304 bytes").count(),
        2,
        "{}",
        run.stderr()
    );
}

/// Tests against moto's S3 server: ignored by a plain `cargo test`, run by
/// `-- --ignored needs_moto`, and failed by [`moto::start`] where its
/// virtualenv cannot be made.
mod needs_moto {
    use super::*;

    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn a_second_checkout_takes_every_layer_from_the_remote_cache() {
        let moto = moto::start();
        moto.create_bucket(BUCKET);
        let env = env(&moto.endpoint());

        let first = app("s3://layers/ci");
        let run = build(&first, &env, &[]);
        run.success();
        assert!(!run.stderr().contains("warning"), "{}", run.stderr());
        let keys = moto.keys(BUCKET);
        assert_eq!(keys.len(), 4, "a ZIP and a meta per layer: {keys:?}");
        for key in &keys {
            assert!(key.starts_with("ci/profile/"), "{key}");
            assert!(
                key.ends_with("/layer.zip") || key.ends_with("/meta.json"),
                "{key}"
            );
        }

        let (_, _, meta) = core_entry(&moto, &first);
        assert_eq!(
            meta["data"]["finish"]["unimportable"],
            serde_json::json!(["req.optional"]),
            "the build records what did not import as installed either"
        );

        // Its own local cache, the same inputs, and no install that could work.
        let second = app("s3://layers/ci");
        let blocked = no_installs(&second);
        let run = build(&second, &env, std::slice::from_ref(&blocked));
        run.success();
        assert_eq!(
            run.stderr().matches("fetched from the remote cache").count(),
            2,
            "{}",
            run.stderr()
        );
        for name in ["core", "extra"] {
            assert_eq!(layer(&first, name), layer(&second, name), "{name}.zip differs");
        }
        assert_eq!(moto.keys(BUCKET), keys, "nothing new uploaded");
        let manifest = second.manifest();
        assert_eq!(
            manifest["layers"]["core"]["sha256"],
            first.manifest()["layers"]["core"]["sha256"]
        );

        // A second run is served by the local store; and the install would
        // indeed have failed there (--force skips the remote cache).
        let run = build(&second, &env, std::slice::from_ref(&blocked));
        run.success();
        assert!(!run.stderr().contains("fetched"), "{}", run.stderr());
        let forced = second.xtask_with(
            &["build-layers", "--builder", "host", "--force"],
            &env.iter()
                .map(|(key, value)| (*key, value.as_str()))
                .chain([(blocked.0, blocked.1.as_str())])
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            forced.code(),
            1,
            "an install must fail there:\n{}",
            forced.stderr()
        );
    }

    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn a_corrupted_remote_entry_is_rejected_and_rebuilt() {
        let moto = moto::start();
        moto.create_bucket(BUCKET);
        let env = env(&moto.endpoint());
        let first = app("s3://layers");
        build(&first, &env, &[]).success();
        let zip_key = moto
            .keys(BUCKET)
            .into_iter()
            .find(|key| key.ends_with("/layer.zip"))
            .unwrap();
        let good = moto.get(BUCKET, &zip_key);
        let bad = first.write("bad.zip", "not the layer that was built");
        moto.put(BUCKET, &zip_key, &bad);

        let second = app("s3://layers");
        let run = build(&second, &env, &[]);
        run.success();
        let stderr = run.stderr();
        assert_eq!(
            stderr.matches("does not match its recorded sha256").count(),
            1,
            "{stderr}"
        );
        assert_eq!(
            stderr.matches("fetched from the remote cache").count(),
            1,
            "{stderr}"
        );
        for name in ["core", "extra"] {
            assert_eq!(layer(&first, name), layer(&second, name), "{name}.zip differs");
        }
        // The rebuild (read-write) replaced the damaged object.
        assert_eq!(moto.get(BUCKET, &zip_key), good);
    }

    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn read_only_never_writes() {
        let moto = moto::start();
        moto.create_bucket(BUCKET);
        let env = env(&moto.endpoint());
        let read_only = [("XTASK_REMOTE_CACHE_MODE", "read-only".to_string())];

        let untrusted = app("s3://layers/pr");
        build(&untrusted, &env, &read_only).success();
        assert!(moto.keys(BUCKET).is_empty(), "{:?}", moto.keys(BUCKET));

        // Filled by a trusted build, then read by an untrusted one that writes nothing.
        let trusted = app("s3://layers/pr");
        build(&trusted, &env, &[]).success();
        let keys = moto.keys(BUCKET);
        assert_eq!(keys.len(), 4, "{keys:?}");
        let reader = app("s3://layers/pr");
        let blocked = no_installs(&reader);
        let run = build(&reader, &env, &[read_only[0].clone(), blocked]);
        run.success();
        assert_eq!(run.stderr().matches("fetched from the remote cache").count(), 2);
        assert_eq!(moto.keys(BUCKET), keys);
        for name in ["core", "extra"] {
            assert_eq!(layer(&trusted, name), layer(&reader, name));
        }
    }

    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn a_meta_that_lies_about_the_layers_size_is_not_believed() {
        let moto = moto::start();
        moto.create_bucket(BUCKET);
        let env = env(&moto.endpoint());
        let first = app("s3://layers");
        build(&first, &env, &[]).success();
        let (_, _, meta) = core_entry(&moto, &first);
        // The claim stays the honest layer's few hundred bytes; the ZIP unpacks
        // to 314 MB, over Lambda's limit.
        let zip = zip_with(
            &first,
            &first.path().join("dist/layers/core.zip"),
            "python/req/padding.bin",
            "0",
            314 * 1024 * 1024,
        );
        assert!(fs::metadata(&zip).unwrap().len() < 2 * 1024 * 1024);
        replace_core(&moto, &first, &zip, meta["data"].clone());

        let second = app("s3://layers");
        let run = build(&second, &env, &[("XTASK_REMOTE_CACHE_MODE", "read-only".into())]);
        run.success();
        let stderr = run.stderr();
        assert!(
            stderr.contains("discarding the remote cache entry")
                && stderr.contains("more than the 262144000"),
            "{stderr}"
        );
        assert_eq!(
            layer(&first, "core"),
            layer(&second, "core"),
            "the layer was rebuilt"
        );
        let checked = second.xtask_with(&["check-limits"], &[("XTASK_REMOTE_CACHE_MODE", "read-only")]);
        assert!(!checked.stdout().contains("314"), "{}", checked.stdout());
    }

    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn a_malformed_remote_entry_never_enters_the_local_store() {
        let moto = moto::start();
        moto.create_bucket(BUCKET);
        let env = env(&moto.endpoint());
        let first = app("s3://layers");
        build(&first, &env, &[]).success();
        // The right ZIP, the right sha256, and data that is no layer's.
        replace_core(
            &moto,
            &first,
            &first.path().join("dist/layers/core.zip"),
            serde_json::json!({"bogus": true}),
        );

        let second = app("s3://layers");
        let read_only = [("XTASK_REMOTE_CACHE_MODE", "read-only".to_string())];
        let run = build(&second, &env, &read_only);
        run.success();
        assert!(
            run.stderr().contains("discarding the remote cache entry")
                && run.stderr().contains("not a layer's"),
            "{}",
            run.stderr()
        );
        assert_eq!(layer(&first, "core"), layer(&second, "core"));
        // Also without the remote cache, the next run finds a sound entry.
        second.set_metadata(METADATA);
        let run = build(&second, &env, &[]);
        run.success();
        assert!(!run.stderr().contains("warning"), "{}", run.stderr());
    }

    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn a_fetched_layer_is_proven_before_it_ships() {
        let moto = moto::start();
        moto.create_bucket(BUCKET);
        let env = env(&moto.endpoint());
        let first = app("s3://layers");
        build(&first, &env, &[]).success();
        assert_ne!(
            first.manifest()["layers"]["core"]["bytecode"],
            "none",
            "layers are finished, and so proven, here"
        );
        let (_, _, meta) = core_entry(&moto, &first);
        // One more module, which fails to import; the data says so consistently
        // (one more file, its bytes, one more module proven): only the proof
        // can tell.
        let evil = "raise RuntimeError('poisoned')\n";
        let zip = zip_with(
            &first,
            &first.path().join("dist/layers/core.zip"),
            "python/req/evil.py",
            evil,
            evil.len() as u64,
        );
        let mut data = meta["data"].clone();
        let count = |value: &serde_json::Value| value.as_u64().unwrap();
        data["written"]["files"] = (count(&data["written"]["files"]) + 1).into();
        data["written"]["unzipped_bytes"] =
            (count(&data["written"]["unzipped_bytes"]) + evil.len() as u64).into();
        data["finish"]["proven"] = (count(&data["finish"]["proven"]) + 1).into();
        replace_core(&moto, &first, &zip, data);

        let second = app("s3://layers");
        let run = build(&second, &env, &[("XTASK_REMOTE_CACHE_MODE", "read-only".into())]);
        run.success();
        let stderr = run.stderr();
        assert!(
            stderr.contains("discarding the remote cache entry")
                && stderr.contains("`req.evil` does not import"),
            "{stderr}"
        );
        assert_eq!(layer(&first, "core"), layer(&second, "core"));
    }

    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn a_claimed_size_never_sets_a_download_bound() {
        let moto = moto::start();
        moto.create_bucket(BUCKET);
        let env = env(&moto.endpoint());
        let first = app("s3://layers");
        build(&first, &env, &[]).success();
        let (_, meta_key, mut meta) = core_entry(&moto, &first);
        meta["files"][0]["bytes"] = 1_000_000_000_000_000u64.into();
        let meta_file = first.write("claims.json", &serde_json::to_string(&meta).unwrap());
        moto.put(BUCKET, &meta_key, &meta_file);

        let second = app("s3://layers");
        let run = build(&second, &env, &[("XTASK_REMOTE_CACHE_MODE", "read-only".into())]);
        run.success();
        assert!(
            run.stderr().contains("more than the 262144000 it may have"),
            "{}",
            run.stderr()
        );
        assert_eq!(layer(&first, "core"), layer(&second, "core"));
    }

    #[test]
    #[ignore = "needs moto's server in a virtualenv made with uv (cargo xtask ci runs it)"]
    fn no_request_is_on_a_command_line() {
        let moto = moto::start();
        moto.create_bucket(BUCKET);
        let mut env = env(&moto.endpoint());
        env.push(("AWS_SESSION_TOKEN", "session-token-of-this-test".into()));
        let first = app("s3://layers/ci");
        let (path, log) = recording_curl(&first);
        let run = build(&first, &env, &[("PATH", path.clone())]);
        run.success();
        let second = app("s3://layers/ci");
        let run = build(&second, &env, &[("PATH", path)]);
        run.success();
        assert_eq!(run.stderr().matches("fetched from the remote cache").count(), 2);

        let argv = fs::read_to_string(&log).expect("curl was run");
        assert!(argv.contains("--config"), "{argv}");
        for secret in [
            "Signature",
            "Credential",
            "X-Amz",
            "x-amz",
            "session-token-of-this-test",
            "testing",
            &moto.endpoint(),
            "/layers/",
            "layer.zip",
        ] {
            assert!(
                !argv.contains(secret),
                "`{secret}` on curl's command line:\n{argv}"
            );
        }
        for secret in ["Signature", "session-token-of-this-test", &moto.endpoint()] {
            assert!(!run.stderr().contains(secret), "{}", run.stderr());
        }
    }
}
