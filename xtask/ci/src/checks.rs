//! The checks of `cargo xtask ci` beyond cargo's own: the Python suite,
//! an end-to-end build of the example application with assertions on what
//! it produced, and the Terraform tests.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use xshell::{cmd, Shell};

use xtask::commands::ci::XTASK_BINARY_VARIABLE;
use xtask::config::manifest::Manifest;
use xtask::config::Config;
use xtask::ground::digest::file_sha256;
use xtask::python::installer::InstallerChoice;
use xtask::store::archive;

/// Function ZIPs must stay thin: only their handler, no shared code.
const THIN_FUNCTION_BYTES: u64 = 50 * 1024;

/// The Python suites (the example's and the tool's own scripts') in the
/// development virtualenv.
pub fn pytest(sh: &Shell, config: &Config, installer: InstallerChoice) -> Result<()> {
    let python = xtask::lambda::dev_env::python(sh, config, installer)?;
    cmd!(sh, "{python} -m pytest -p no:cacheprovider -q lambdas xtask/py")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .run()?;
    Ok(())
}

/// Validates every SBOM the end-to-end build wrote (`dist/sbom/*.cdx.json`)
/// against CycloneDX 1.6's JSON schema with the CycloneDX project's own
/// validator (`cyclonedx-python-lib`, pinned in the development virtualenv).
const VALIDATE_SBOMS: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

validator = JsonStrictValidator(SchemaVersion.V1_6)
invalid = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as file:
        error = validator.validate_str(file.read())
    if error is not None:
        invalid += 1
        print(f"{path}: {getattr(error.data, 'message', error)}", file=sys.stderr)
print(f"{len(sys.argv) - 1 - invalid} SBOM(s) valid against CycloneDX 1.6, {invalid} invalid")
sys.exit(1 if invalid else 0)
"#;

/// Every SBOM the end-to-end build left in `dist/sbom/` (one per function
/// and per dependency layer, none missing): valid CycloneDX 1.6 by the
/// CycloneDX project's validator, and its SPDX twin valid SPDX 2.3 by the
/// SPDX project's `pyspdxtools`.
pub fn sbom_schema(sh: &Shell, config: &Config, installer: InstallerChoice) -> Result<()> {
    let python = xtask::lambda::dev_env::python(sh, config, installer)?;
    let pyspdxtools = python.with_file_name("pyspdxtools");
    let dir = config.root.join("dist/sbom");
    let dependency_layers = config
        .layers
        .values()
        .filter(|layer| matches!(layer.source, xtask::config::LayerSource::Requirements(_)))
        .map(|layer| format!("layers/{}", layer.name));
    let names: Vec<String> = config
        .functions
        .keys()
        .cloned()
        .chain(dependency_layers)
        .collect();
    let mut cyclonedx = Vec::new();
    for name in &names {
        let (cdx, spdx) = (
            dir.join(format!("{name}.cdx.json")),
            dir.join(format!("{name}.spdx.json")),
        );
        for file in [&cdx, &spdx] {
            ensure!(
                file.is_file(),
                "{} is missing after the end-to-end build",
                file.display()
            );
        }
        cyclonedx.push(cdx);
        cmd!(sh, "{pyspdxtools} -i {spdx}")
            .run()
            .with_context(|| format!("{} is not valid SPDX 2.3", spdx.display()))?;
    }
    cmd!(sh, "{python} -c {VALIDATE_SBOMS} {cyclonedx...}").run()?;
    Ok(())
}

/// ruff's lint and format checks and mypy over `lambdas/` and `xtask/py/`,
/// as `pyproject.toml` configures them, with the virtualenv's pinned versions.
pub fn python_lint(sh: &Shell, config: &Config, installer: InstallerChoice) -> Result<()> {
    let python = xtask::lambda::dev_env::python(sh, config, installer)?;
    cmd!(sh, "{python} -m ruff check --no-cache xtask/py lambdas").run()?;
    cmd!(sh, "{python} -m ruff format --no-cache --check xtask/py lambdas").run()?;
    cmd!(sh, "{python} -m mypy --cache-dir=/dev/null").run()?;
    Ok(())
}

/// The example's dependency layers installed by pip and by uv on the host:
/// the same distributions, byte for byte the same ZIPs (pip is the
/// fallback where uv cannot be had). uv goes last, so that dist/ is left as
/// the default build makes it.
pub fn installers_agree(sh: &Shell, config: &Config) -> Result<()> {
    let xtask = xtask_binary(config);
    let pip = layer_hashes(sh, &xtask, &["--builder", "host", "--installer", "pip"])?;
    let uv = layer_hashes(sh, &xtask, &["--builder", "host", "--installer", "uv"])?;
    same_layers(&uv, &pip, "pip and uv built")
}

/// The example's layers built from their committed locks in the build
/// image and on the host: the same files, byte for byte, but the bytecode
/// when the two Pythons are different patch releases (each compiles its
/// own; the same release gives identical ZIPs). The host goes last.
pub fn container_agrees(sh: &Shell, config: &Config, image: &str) -> Result<()> {
    let xtask = xtask_binary(config);
    let container = layer_hashes(sh, &xtask, &["--builder", "container", "--image", image])?;
    let kept = tempfile_dir(config, "container-layers")?;
    for name in container.keys() {
        let zip = config.dist_dir().join("layers").join(format!("{name}.zip"));
        fs::copy(&zip, kept.join(format!("{name}.zip")))
            .with_context(|| format!("keeping {}", zip.display()))?;
    }
    let host = layer_hashes(sh, &xtask, &["--builder", "host"])?;
    ensure!(!host.is_empty(), "build-layers built no layer");
    for (name, sha256) in &host {
        if container.get(name) == Some(sha256) {
            eprintln!(
                "ci: layer `{name}`: the host and the container built the same ZIP (base64 sha256 {sha256})"
            );
            continue;
        }
        let ours = comparable(&config.dist_dir().join("layers").join(format!("{name}.zip")))?;
        let theirs = comparable(&kept.join(format!("{name}.zip")))?;
        ensure!(
            ours.keys().eq(theirs.keys()),
            "layer `{name}`: the host and the container built different files"
        );
        for (path, bytes) in &ours {
            ensure!(
                path.ends_with(".pyc") || theirs.get(path) == Some(bytes),
                "layer `{name}`: the host and the container built different {path}"
            );
        }
        eprintln!(
            "ci: layer `{name}`: the host and the container built the same files; only bytecode differs (two patch releases of the runtime's Python)"
        );
    }
    fs::remove_dir_all(&kept)?;
    Ok(())
}

/// A ZIP's files by path, with the RECORD lines of bytecode left out (their
/// hashes are the bytecode's) and the bytecode's own bytes emptied.
fn comparable(zip: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for (path, bytes, _) in archive::read_entries(zip)? {
        let bytes = if path.ends_with(".pyc") {
            Vec::new()
        } else if path.ends_with(".dist-info/RECORD") {
            let text = String::from_utf8_lossy(&bytes);
            let kept: Vec<&str> = text.lines().filter(|line| !line.contains(".pyc,")).collect();
            kept.join("\n").into_bytes()
        } else {
            bytes
        };
        files.insert(path, bytes);
    }
    Ok(files)
}

/// A fresh folder under the tool's cache for one check's files.
fn tempfile_dir(config: &Config, name: &str) -> Result<PathBuf> {
    let dir = config.cache_dir().join("ci").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn same_layers(one: &BTreeMap<String, String>, other: &BTreeMap<String, String>, who: &str) -> Result<()> {
    ensure!(!one.is_empty(), "build-layers built no layer");
    for (name, sha256) in one {
        let theirs = other.get(name).map(String::as_str).unwrap_or("missing");
        ensure!(
            theirs == sha256,
            "layer `{name}`: {who} different ZIPs: {sha256} and {theirs}"
        );
        eprintln!("ci: layer `{name}`: {who} the same ZIP (base64 sha256 {sha256})");
    }
    Ok(())
}

/// The xtask binary the stages run: the one `ci` was started as, copied
/// aside when `ci` starts, because `cargo test --all-features` rebuilds
/// `target/debug/xtask` under the running program.
pub fn xtask_binary(config: &Config) -> PathBuf {
    config.cache_dir().join("ci").join("xtask")
}

/// Copies the running binary to [`xtask_binary`].
pub fn keep_xtask_binary(config: &Config) -> Result<PathBuf> {
    // `cargo xtask ci` names itself: this program is the harness.
    let running = std::env::var_os(XTASK_BINARY_VARIABLE)
        .map(PathBuf::from)
        .context("XTASK_BINARY is not set: start the harness with `cargo xtask ci`")?;
    let kept = xtask_binary(config);
    fs::create_dir_all(kept.parent().context("the cache folder")?)?;
    let partial = kept.with_extension("partial");
    fs::copy(&running, &partial).with_context(|| format!("copying {} aside", running.display()))?;
    fs::rename(&partial, &kept)?;
    Ok(kept)
}

/// Each layer's base64 sha256 as `build-layers ARGS --json` reports it.
fn layer_hashes(sh: &Shell, xtask: &Path, args: &[&str]) -> Result<BTreeMap<String, String>> {
    let output = cmd!(sh, "{xtask} build-layers {args...} --json --quiet").read()?;
    let value: serde_json::Value = serde_json::from_str(&output).context("reading build-layers --json")?;
    let layers = value["layers"]
        .as_object()
        .context("build-layers --json has no layers")?;
    Ok(layers
        .iter()
        .map(|(name, layer)| {
            (
                name.clone(),
                layer["base64sha256"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// `cargo xtask build` of the example application, twice, with assertions
/// on what it produced.
/// The OSV export committed for the audit stage: made-up advisories for
/// versions the example's locks pin.
const OSV_FIXTURE: &str = "xtask/tests/fixtures/osv";

/// `audit` on the example against [`OSV_FIXTURE`]: the advisory for its
/// requests is found (with its alias, fixed version and functions), the
/// withdrawn one is not, and a threshold at its severity fails the run.
pub fn audit_fixture(sh: &Shell, config: &Config) -> Result<()> {
    let xtask = xtask_binary(config);
    let db = config.root.join(OSV_FIXTURE);
    let denied = cmd!(sh, "{xtask} audit --deny MODERATE -q")
        .env("XTASK_OSV_DB", &db)
        .ignore_status()
        .output()?;
    eprint!("{}", String::from_utf8_lossy(&denied.stderr));
    ensure!(
        denied.status.code() == Some(1),
        "audit --deny MODERATE: expected exit 1 for the fixture's MODERATE advisory, got {:?}",
        denied.status.code()
    );
    let json = cmd!(sh, "{xtask} audit --json").env("XTASK_OSV_DB", &db).read()?;
    let outcome: xtask::steps::audit::Outcome =
        serde_json::from_str(&json).context("reading audit --json")?;
    let ids: Vec<&str> = outcome
        .findings
        .iter()
        .map(|finding| finding.id.as_str())
        .collect();
    ensure!(
        ids == ["GHSA-xtsk-fixt-0001"],
        "audit found {ids:?}, expected the fixture's one advisory"
    );
    let finding = &outcome.findings[0];
    ensure!(
        finding.distribution == "requests"
            && finding.fixed == ["2.35.0"]
            && finding.aliases.iter().any(|alias| alias == "PYSEC-0000-0001")
            && finding.functions.iter().any(|function| function == "sms")
            && !finding.fails,
        "audit: unexpected finding {finding:?}"
    );
    let page = fs::read_to_string(config.report_path()).context("reading dist/report.html")?;
    ensure!(
        page.contains("data-id=\"GHSA-xtsk-fixt-0001\""),
        "dist/report.html does not show the audit's finding"
    );
    Ok(())
}

pub fn end_to_end(sh: &Shell, config: &Config) -> Result<()> {
    let xtask = xtask_binary(config);
    cmd!(sh, "{xtask} build").run()?;
    let first = artifacts(config)?;
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(config.manifest_path()).context("the build wrote no manifest")?)
            .context("reading dist/manifest.json")?;

    let dependency_layers: Vec<&String> = config
        .layers
        .iter()
        .filter(|(_, layer)| !matches!(layer.source, xtask::config::LayerSource::External { .. }))
        .map(|(name, _)| name)
        .collect();
    for name in &dependency_layers {
        let entry = manifest
            .layers
            .get(*name)
            .with_context(|| format!("layer `{name}` missing from the manifest"))?;
        let zip = entry
            .zip
            .as_deref()
            .with_context(|| format!("layer `{name}` has no ZIP"))?;
        let names = archive::list_zip(&config.root.join(zip))?;
        ensure!(
            names.iter().all(|file| file.path.starts_with("python/")),
            "layer `{name}`: a file outside python/"
        );
        // The example keeps the defaults: every profile ships slimmed and
        // sourceless (and was proven to import), which the invoke stages
        // then run.
        if entry.kind == xtask::config::manifest::LayerKind::Requirements {
            ensure!(
                entry.bytecode.as_deref() == Some("sourceless") && entry.slim == Some(true),
                "layer `{name}`: expected the default, slimmed and sourceless, got bytecode {:?}, slim {:?}",
                entry.bytecode,
                entry.slim
            );
            ensure!(
                names.iter().any(|file| file.path.ends_with(".pyc"))
                    && !names.iter().any(|file| file.path.contains("/tests/")),
                "layer `{name}`: not the sourceless, slimmed form"
            );
        }
    }
    for (name, function) in &config.functions {
        let entry = manifest
            .functions
            .get(name)
            .with_context(|| format!("function `{name}` missing"))?;
        ensure!(
            entry.zip.zipped_bytes < THIN_FUNCTION_BYTES,
            "function `{name}` is {} bytes zipped: not thin",
            entry.zip.zipped_bytes
        );
        let files = archive::list_zip(&config.root.join(&entry.zip.zip))?;
        ensure!(
            !files.iter().any(|file| file.path.starts_with("shared/")),
            "function `{name}` carries a copy of shared/"
        );
        ensure!(
            entry.layers == function.layers,
            "function `{name}`: layers differ from the configuration"
        );
    }
    eprintln!(
        "ci: {} function ZIPs, {} layers; building again to check that nothing changes",
        manifest.functions.len(),
        dependency_layers.len()
    );
    let cache_entries = count_entries(&config.cache_dir().join("store/profile"));
    cmd!(sh, "{xtask} build --quiet").run()?;
    let second = artifacts(config)?;
    ensure!(
        first == second,
        "a second build changed the artifacts:\n{first:#?}\n{second:#?}"
    );
    ensure!(
        count_entries(&config.cache_dir().join("store/profile")) == cache_entries,
        "the second build installed again instead of using the cache"
    );
    Ok(())
}

/// sha256 of every ZIP under dist/, by path.
fn artifacts(config: &Config) -> Result<BTreeMap<PathBuf, String>> {
    let mut found = BTreeMap::new();
    for dir in ["layers", "functions"] {
        let dir = config.dist_dir().join(dir);
        for item in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = item?.path();
            if path.extension().is_some_and(|ext| ext == "zip") {
                found.insert(path.clone(), file_sha256(&path)?.hex);
            }
        }
    }
    if found.is_empty() {
        bail!("the build produced no ZIP under dist/");
    }
    Ok(found)
}

fn count_entries(dir: &Path) -> usize {
    fs::read_dir(dir).map(|items| items.count()).unwrap_or(0)
}

/// The provider-free Terraform module's tests against the real manifest;
/// loudly skipped where terraform is not installed.
pub fn terraform(sh: &Shell, config: &Config) -> Result<()> {
    let script = config.root.join("terraform/test.sh");
    if !script.is_file() {
        bail!("terraform/test.sh is missing");
    }
    let manifest = config.manifest_path();
    cmd!(sh, "bash {script} {manifest}").run()?;
    Ok(())
}

/// Deletes the `sms` layer from a copy of the repository's configuration,
/// rebuilds there, and asks Terraform (the provider-free manifest module)
/// which layers it would deploy: the removed one must be gone without any
/// `.tf` edit.
/// What a copy of the example is made of, from the repository root: the
/// workspace (cargo metadata reads its members) and the application.
const APP: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "rustfmt.toml",
    ".cargo",
    "xtask",
    "layers",
    "lambdas",
];

/// Copies the example application (and `also`, such as `terraform`) into
/// `dest`, which exists.
pub fn copy_app(sh: &Shell, config: &Config, dest: &Path, also: &[&str]) -> Result<()> {
    for item in APP.iter().chain(also) {
        let source = config.root.join(item);
        if source.exists() {
            cmd!(sh, "cp -R {source} {dest}").quiet().run()?;
        }
    }
    Ok(())
}

pub fn layer_removal(sh: &Shell, config: &Config) -> Result<()> {
    let copy = config.cache_dir().join("ci-layer-removal");
    let _ = fs::remove_dir_all(&copy);
    fs::create_dir_all(&copy)?;
    copy_app(sh, config, &copy, &["terraform"])?;
    let manifest_toml = copy.join("Cargo.toml");
    let text = fs::read_to_string(&manifest_toml)?;
    // The whole table, up to the blank line that ends it.
    let header = "[workspace.metadata.lambda.layers.sms]\n";
    let attached = "layers = [\"core\", \"sms\", \"shared\"]";
    let start = text.find(header);
    ensure!(
        start.is_some() && text.contains(attached),
        "Cargo.toml no longer has the sms layer this check removes"
    );
    let start = start.unwrap_or_default();
    let end = text[start..].find("\n\n").map_or(text.len(), |at| start + at + 1);
    let without = format!("{}{}", &text[..start], &text[end..]);
    fs::write(
        &manifest_toml,
        without.replace(attached, "layers = [\"core\", \"shared\"]"),
    )?;

    let xtask = xtask_binary(config);
    let uv_cache = config.cache_dir().join("uv");
    let copy_sh = Shell::new()?;
    copy_sh.change_dir(&copy);
    cmd!(copy_sh, "{xtask} build-layers --builder host --quiet")
        .env("UV_CACHE_DIR", &uv_cache)
        .run()?;
    cmd!(copy_sh, "{xtask} package --quiet").run()?;

    let module = copy.join("terraform/modules/manifest");
    let data = copy.join("tf-data");
    let manifest = copy.join("dist/manifest.json");
    let state = copy.join("tf.tfstate");
    let _automation = sh.push_env("TF_IN_AUTOMATION", "1");
    let _data_dir = sh.push_env("TF_DATA_DIR", &data);
    cmd!(sh, "terraform -chdir={module} init -input=false -backend=false")
        .quiet()
        .ignore_stdout()
        .run()?;
    cmd!(
        sh,
        "terraform -chdir={module} apply -input=false -auto-approve -state={state} -var manifest_path={manifest}"
    )
    .quiet()
    .ignore_stdout()
    .run()?;
    let output = cmd!(
        sh,
        "terraform -chdir={module} output -state={state} -json built_layers"
    )
    .read()?;
    let layers: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&output).context("reading terraform's built_layers output")?;
    let names: Vec<&String> = layers.keys().collect();
    ensure!(
        !layers.contains_key("sms"),
        "terraform still deploys the removed layer: {names:?}"
    );
    ensure!(
        layers.contains_key("core") && layers.contains_key("shared"),
        "terraform lost other layers: {names:?}"
    );
    eprintln!("ci: after removing `sms` from Cargo.toml and rebuilding, terraform deploys {names:?}");
    let _ = fs::remove_dir_all(&copy);
    Ok(())
}
