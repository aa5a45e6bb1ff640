//! The remote cache of dependency layers, against moto's S3 on 127.0.0.1:
//! what one checkout builds, another with its own local cache takes from
//! the bucket byte for byte without installing anything; a corrupted entry
//! is rejected and rebuilt; `read-only` never writes; a remote that does
//! not answer slows nothing down much and fails nothing.

mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::{moto, Repo};

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
        &[("req/__init__.py", "VERSION = '1.0'\n")],
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
fn a_second_checkout_takes_every_layer_from_the_remote_cache() {
    let Some(moto) = moto::start() else { return };
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
fn a_corrupted_remote_entry_is_rejected_and_rebuilt() {
    let Some(moto) = moto::start() else { return };
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
fn read_only_never_writes() {
    let Some(moto) = moto::start() else { return };
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
