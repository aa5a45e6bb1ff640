//! Robustness of `build` against what happens to real checkouts: damaged
//! cache entries and ZIPs heal with a warning, concurrent runs serialise on a
//! lock, a `kill -9` at any point leaves nothing half-written under a real
//! name and the next run recovers, `--dry-run` touches nothing (no file, no
//! container probe, no installer bootstrap, no interpreter), and `smoke`
//! never imports a stale ZIP. Each outcome is compared with a from-scratch
//! build of the same repository.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Barrier, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::support::{self, html_report, Repo, Run};

const APP: &str = r#"
[workspace.metadata.lambda]
runtime = "python3.11"
architecture = "x86_64"
image = "xtask-no-such-image:never"

[workspace.metadata.lambda.layers.core]
requirements = "layers/core/requirements.txt"

[workspace.metadata.lambda.layers.extra]
requirements = "layers/extra/requirements.txt"

[workspace.metadata.lambda.layers.shared]
source = "lambdas/shared"

[workspace.metadata.lambda.functions.alpha]
source = "lambdas/alpha"
handler = "alpha_handler.lambda_handler"
layers = ["core", "shared"]

[workspace.metadata.lambda.functions.beta]
source = "lambdas/beta"
handler = "beta_handler.lambda_handler"
layers = ["extra", "shared"]

[workspace.metadata.lambda.functions.gamma]
source = "lambdas/gamma"
handler = "gamma_handler.lambda_handler"
layers = []
"#;

const ALPHA: &str =
    "import shared\nimport tool\n\n\ndef lambda_handler(event, context):\n    return tool.X\n";
const BETA: &str =
    "import helper\nimport shared\n\n\ndef lambda_handler(event, context):\n    return helper.Y\n";
const GAMMA: &str = "def lambda_handler(event, context):\n    return 3\n";

/// Two dependency profiles from local wheels, one source layer, three functions.
fn app() -> Repo {
    let repo = Repo::new(APP);
    repo.profile("core", &["tool==1.0"]);
    repo.wheel("core", "tool", "1.0", &[("tool.py", "X = 1\n")], &[]);
    repo.profile("extra", &["helper==2.0"]);
    repo.wheel("extra", "helper", "2.0", &[("helper.py", "Y = 2\n")], &[]);
    repo.write("lambdas/shared/__init__.py", "NAME = 'shared'\n");
    repo.write("lambdas/alpha/alpha_handler.py", ALPHA);
    repo.write("lambdas/beta/beta_handler.py", BETA);
    repo.write("lambdas/gamma/gamma_handler.py", GAMMA);
    fs::create_dir_all(site(&repo)).unwrap();
    repo
}

/// The empty stand-in for the runtime's site-packages: smoke needs no network.
fn site(repo: &Repo) -> PathBuf {
    repo.path().join("runtime-site")
}

fn xtask(repo: &Repo, args: &[&str]) -> Run {
    let site = site(repo).display().to_string();
    repo.xtask_with(args, &[("XTASK_RUNTIME_SITE", site.as_str())])
}

fn build(repo: &Repo) -> Run {
    xtask(repo, &["build", "--builder", "host"])
}

/// Every file under `dist/` with its bytes.
type Tree = BTreeMap<String, Vec<u8>>;

struct Outcome {
    code: i32,
    dist: Tree,
}

fn dist_tree(repo: &Repo) -> Tree {
    let dist = repo.path().join("dist");
    walk(&dist)
        .into_iter()
        .filter(|(_, metadata)| !metadata.is_dir())
        .map(|(relative, _)| {
            let bytes = fs::read(dist.join(&relative)).unwrap_or_default();
            // Its comparison with the build before and its init times
            // depend on the run.
            let bytes = if relative == "report.html" {
                html_report(&bytes)
            } else {
                bytes
            };
            (relative, bytes)
        })
        .collect()
}

/// The same application built once in a fresh repository with an empty `target/`.
fn from_scratch() -> &'static Outcome {
    static REFERENCE: OnceLock<Outcome> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let repo = app();
        let run = build(&repo);
        run.success();
        Outcome {
            code: run.code(),
            dist: dist_tree(&repo),
        }
    })
}

/// How the run's exit code and `repo`'s dist/ differ from the from-scratch
/// build; the run's stderr closes the list when there is any difference.
fn differences(repo: &Repo, run: &Run) -> Vec<String> {
    let reference = from_scratch();
    let mut problems = Vec::new();
    if run.code() != reference.code {
        problems.push(format!(
            "exit code {} (from scratch: {})",
            run.code(),
            reference.code
        ));
    }
    problems.extend(dist_differences(repo));
    if !problems.is_empty() {
        problems.push(format!("--- its stderr:\n{}", run.stderr()));
    }
    problems
}

/// How `repo`'s dist/ differs from the from-scratch build.
fn dist_differences(repo: &Repo) -> Vec<String> {
    let reference = from_scratch();
    let mut problems = Vec::new();
    let dist = dist_tree(repo);
    for (name, bytes) in &reference.dist {
        match dist.get(name) {
            None => problems.push(format!("dist/{name} is missing")),
            Some(ours) if ours != bytes => problems.push(format!(
                "dist/{name} differs from the from-scratch build ({} bytes, expected {})",
                ours.len(),
                bytes.len()
            )),
            Some(_) => {}
        }
    }
    for name in dist.keys().filter(|name| !reference.dist.contains_key(*name)) {
        problems.push(format!("dist/{name} is not in the from-scratch build"));
    }
    problems
}

#[track_caller]
fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
}

/// Every path under `root` (relative, sorted) with its metadata; symlinks are
/// not followed. Empty when `root` does not exist.
fn walk(root: &Path) -> Vec<(String, fs::Metadata)> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<(String, fs::Metadata)>) {
        let Ok(items) = fs::read_dir(dir) else { return };
        for item in items.flatten() {
            let path = item.path();
            let Ok(metadata) = fs::symlink_metadata(&path) else {
                continue;
            };
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            let is_dir = metadata.is_dir();
            out.push((relative, metadata));
            if is_dir {
                visit(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    visit(root, root, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn sha256_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Corrupted cache entries heal.

/// One cache entry: `target/lambda/store/<kind>/<key>/`.
struct Entry {
    kind: String,
    key: String,
    dir: PathBuf,
}

impl Entry {
    fn label(&self) -> String {
        format!("store/{}/{}", self.kind, self.key)
    }

    /// The output ZIPs at the top of the entry.
    fn zips(&self) -> Vec<PathBuf> {
        let mut zips: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|items| {
                items
                    .flatten()
                    .map(|item| item.path())
                    .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "zip"))
                    .collect()
            })
            .unwrap_or_default();
        zips.sort();
        zips
    }

    fn meta(&self) -> PathBuf {
        self.dir.join("meta.json")
    }
}

fn is_scratch(name: &str) -> bool {
    name.starts_with('.') || name.contains(".tmp-")
}

/// Every entry in the store, by kind then key.
fn store_entries(repo: &Repo) -> Vec<Entry> {
    let store = repo.path().join("target/lambda/store");
    let mut entries = Vec::new();
    for (relative, metadata) in walk(&store) {
        let parts: Vec<&str> = relative.split('/').collect();
        if parts.len() == 2 && metadata.is_dir() && !parts.iter().any(|part| is_scratch(part)) {
            entries.push(Entry {
                kind: parts[0].to_string(),
                key: parts[1].to_string(),
                dir: store.join(&relative),
            });
        }
    }
    entries
}

fn make_writable(path: &Path) {
    if let Ok(metadata) = fs::metadata(path) {
        let mut permissions = metadata.permissions();
        permissions.set_mode(permissions.mode() | 0o200);
        let _ = fs::set_permissions(path, permissions);
    }
}

fn truncate_to_half(path: &Path) {
    make_writable(path);
    let len = fs::metadata(path).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len / 2).unwrap();
}

/// Bytes that are no ZIP, as many as the file holds (in place, same inode).
fn overwrite_with_garbage(path: &Path) {
    make_writable(path);
    let len = fs::metadata(path).unwrap().len() as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let garbage: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    fs::write(path, garbage).unwrap();
}

/// Changes one value of a meta.json, keeping its JSON valid. With `hash`,
/// a recorded sha256 (any 64-hex string, one under a `sha256` key first);
/// without, a plain value: a number, else a bool, else a string that is no
/// hash. Returns what was changed.
fn edit_one_value(path: &Path, hash: bool) -> String {
    fn leaves<'a>(
        value: &'a mut serde_json::Value,
        at: String,
        out: &mut Vec<(String, &'a mut serde_json::Value)>,
    ) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    leaves(value, format!("{at}.{key}"), out);
                }
            }
            serde_json::Value::Array(items) => {
                for (index, value) in items.iter_mut().enumerate() {
                    leaves(value, format!("{at}[{index}]"), out);
                }
            }
            other => out.push((at, other)),
        }
    }
    fn is_hex64(value: &serde_json::Value) -> bool {
        value
            .as_str()
            .is_some_and(|text| text.len() == 64 && text.chars().all(|ch| ch.is_ascii_hexdigit()))
    }
    make_writable(path);
    // The JSON document may follow a header line (a seal); that is kept.
    let text = fs::read(path).unwrap();
    let start = match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(_) => 0,
        Err(_) => text.iter().position(|byte| *byte == b'{').unwrap_or(0),
    };
    let (header, body) = text.split_at(start);
    let mut meta: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|err| {
        panic!(
            "{} holds no JSON document after a good build: {err}",
            path.display()
        )
    });
    let mut found = Vec::new();
    leaves(&mut meta, String::new(), &mut found);
    let rank = |at: &str, value: &serde_json::Value| -> u8 {
        let hashes = if is_hex64(value) && at.ends_with("sha256") {
            0
        } else if is_hex64(value) {
            1
        } else {
            2
        };
        let plain = if value.is_number() {
            0
        } else if value.is_boolean() {
            1
        } else if value.is_string() && !is_hex64(value) {
            2
        } else {
            3
        };
        if hash {
            hashes * 4 + plain
        } else {
            plain * 3 + hashes
        }
    };
    let best = found
        .iter()
        .enumerate()
        .min_by_key(|(index, (at, value))| (rank(at, value), *index))
        .map(|(index, _)| index);
    let what = match best.map(|index| found.swap_remove(index)) {
        Some((at, value)) => {
            let before = value.to_string();
            *value = match &*value {
                serde_json::Value::String(text) if is_hex64(value) => {
                    let flipped = if text.starts_with('0') { "1" } else { "0" };
                    serde_json::Value::String(format!("{flipped}{}", &text[1..]))
                }
                serde_json::Value::Number(number) => {
                    serde_json::json!(number.as_f64().unwrap_or(0.0).floor() as i64 + 1)
                }
                serde_json::Value::Bool(flag) => serde_json::Value::Bool(!flag),
                serde_json::Value::String(text) => serde_json::Value::String(format!("{text}x")),
                _ => serde_json::Value::Bool(true),
            };
            format!("{at}: {before} -> {value}")
        }
        None => {
            meta = serde_json::json!({ "edited": true });
            "an empty document -> {\"edited\": true}".to_string()
        }
    };
    let mut edited = header.to_vec();
    edited.extend(serde_json::to_vec_pretty(&meta).unwrap());
    if body.ends_with(b"\n") {
        edited.push(b'\n');
    }
    fs::write(path, edited).unwrap();
    what
}

/// Whether a `warning` line of stderr names the entry (its key, or the
/// first 7 characters of it as short hashes are shown).
fn warns_about(stderr: &str, entry: &Entry) -> bool {
    let short = &entry.key[..entry.key.len().min(7)];
    stderr
        .lines()
        .any(|line| line.to_lowercase().contains("warning") && line.contains(short))
}

#[derive(Clone, Copy)]
enum Damage {
    TruncateZip,
    GarbageZip,
    EditMetaHash,
    EditMeta,
    InvalidMeta,
    DeleteMeta,
}

impl Damage {
    fn name(&self) -> &'static str {
        match self {
            Damage::TruncateZip => "zip truncated to half its size",
            Damage::GarbageZip => "zip overwritten with garbage of the same length",
            Damage::EditMetaHash => "meta.json with a recorded sha256 changed",
            Damage::EditMeta => "meta.json with one plain value changed",
            Damage::InvalidMeta => "meta.json holding invalid JSON",
            Damage::DeleteMeta => "meta.json deleted",
        }
    }

    fn on_zip(&self) -> bool {
        matches!(self, Damage::TruncateZip | Damage::GarbageZip)
    }

    /// Damages `entry`; returns a description, or `None` when it has nothing to damage.
    fn apply(&self, entry: &Entry) -> Option<String> {
        if self.on_zip() {
            let zip = entry.zips().into_iter().next()?;
            match self {
                Damage::TruncateZip => truncate_to_half(&zip),
                _ => overwrite_with_garbage(&zip),
            }
            return Some(format!(
                "{}/{}",
                entry.label(),
                zip.file_name()?.to_string_lossy()
            ));
        }
        let meta = entry.meta();
        if !meta.is_file() {
            return None;
        }
        let what = match self {
            Damage::EditMetaHash => edit_one_value(&meta, true),
            Damage::EditMeta => edit_one_value(&meta, false),
            Damage::InvalidMeta => {
                make_writable(&meta);
                fs::write(&meta, "{\"this is\": not JSON,").unwrap();
                "invalid JSON".to_string()
            }
            _ => {
                fs::remove_file(&meta).unwrap();
                "deleted".to_string()
            }
        };
        Some(format!("{}/meta.json ({what})", entry.label()))
    }
}

#[test]
fn damaged_cache_entries_are_discarded_with_a_warning_and_rebuilt() {
    let repo = app();
    build(&repo).success();
    let entries = store_entries(&repo);
    assert!(
        !entries.is_empty(),
        "a good build left no entries under target/lambda/store/<kind>/<key>/; target/lambda holds:\n{}",
        walk(&repo.path().join("target/lambda"))
            .iter()
            .map(|(path, _)| path.as_str())
            .filter(|path| path.split('/').count() <= 2)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut kinds: Vec<String> = entries.iter().map(|entry| entry.kind.clone()).collect();
    kinds.dedup();
    let zipped_kinds: Vec<&String> = kinds
        .iter()
        .filter(|kind| {
            entries
                .iter()
                .any(|entry| &entry.kind == *kind && !entry.zips().is_empty())
        })
        .collect();
    assert!(
        zipped_kinds.iter().any(|kind| *kind != "function"),
        "no cached layer ZIP in the store (kinds with ZIPs: {zipped_kinds:?})"
    );
    assert!(
        entries.iter().any(|entry| entry.meta().is_file()),
        "no entry holds a meta.json"
    );

    // Every damage on the first entry of every kind that has the file it damages.
    let mut cases: Vec<(Damage, String)> = Vec::new();
    for damage in [
        Damage::TruncateZip,
        Damage::GarbageZip,
        Damage::EditMetaHash,
        Damage::EditMeta,
        Damage::InvalidMeta,
        Damage::DeleteMeta,
    ] {
        for kind in &kinds {
            let applies = entries.iter().any(|entry| {
                &entry.kind == kind
                    && if damage.on_zip() {
                        !entry.zips().is_empty()
                    } else {
                        entry.meta().is_file()
                    }
            });
            if applies {
                cases.push((damage, kind.clone()));
            }
        }
    }

    let mut problems = Vec::new();
    for (damage, kind) in &cases {
        // Re-read the store: the previous case may have rebuilt entries.
        let entry = store_entries(&repo).into_iter().find(|entry| {
            &entry.kind == kind
                && if damage.on_zip() {
                    !entry.zips().is_empty()
                } else {
                    entry.meta().is_file()
                }
        });
        let Some(entry) = entry else {
            problems.push(format!("[{kind}] {}: no such entry any more", damage.name()));
            continue;
        };
        let what = damage.apply(&entry).expect("chosen because it applies");
        // Without dist/, every output must come out of the store (or be rebuilt).
        let _ = fs::remove_dir_all(repo.path().join("dist"));
        let run = build(&repo);
        let mut case = Vec::new();
        if !warns_about(&run.stderr(), &entry) {
            case.push(format!(
                "no `warning` line on stderr names the entry {}",
                entry.key
            ));
        }
        case.extend(differences(&repo, &run));
        if !case.is_empty() && !case.last().unwrap().starts_with("--- its stderr") {
            case.push(format!("--- its stderr:\n{}", run.stderr()));
        }
        if !case.is_empty() {
            problems.push(format!("{}: {what}:\n  {}", damage.name(), case.join("\n  ")));
            // Start the next case from a sound cache.
            let _ = fs::remove_dir_all(repo.path().join("target"));
            let _ = fs::remove_dir_all(repo.path().join("dist"));
            let reset = build(&repo);
            if reset.code() != 0 {
                problems.push(format!("a cold build after that failed:\n{}", reset.stderr()));
                assert_no_problems("damaged cache entries", &problems);
            }
        }
    }

    // The published ZIPs themselves: the next build restores their bytes.
    for layer in ["core", "shared"] {
        truncate_to_half(&repo.path().join(format!("dist/layers/{layer}.zip")));
    }
    let run = build(&repo);
    for problem in differences(&repo, &run) {
        problems.push(format!(
            "dist/layers/core.zip and shared.zip truncated: {problem}"
        ));
    }
    eprintln!("{} damage case(s) on kinds {kinds:?}", cases.len() + 1);
    assert_no_problems("damaged cache entries", &problems);
}

// ---------------------------------------------------------------------------
// 2. Concurrent builds.

#[test]
fn two_builds_started_together_serialise_on_a_lock() {
    let mut problems = Vec::new();
    for round in 1..=3 {
        let repo = app();
        let barrier = Barrier::new(2);
        let runs: Vec<Run> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        build(&repo)
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        for (index, run) in runs.iter().enumerate() {
            if run.code() != 0 {
                let stderr = run.stderr();
                let errors: Vec<&str> = stderr.lines().filter(|line| line.starts_with("error")).collect();
                problems.push(format!(
                    "round {round}, build {}: exit code {}: {}",
                    index + 1,
                    run.code(),
                    errors.join(" / ")
                ));
            }
        }
        for problem in dist_differences(&repo) {
            problems.push(format!("round {round}: {problem}"));
        }
        if !runs.iter().any(|run| run.stderr().contains("waiting")) {
            problems.push(format!(
                "round {round}: neither build says on stderr that it is waiting for the other\n--- stderr 1:\n{}\n--- stderr 2:\n{}",
                runs[0].stderr(),
                runs[1].stderr()
            ));
        }
    }
    assert_no_problems("concurrent builds", &problems);
}

// ---------------------------------------------------------------------------
// 3. kill -9 at twenty points of a cold build.

fn spawn_build(repo: &Repo) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build", "--builder", "host"])
        .current_dir(repo.path())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("UV_CACHE_DIR")
        .env_remove("PIP_CACHE_DIR")
        .env("XTASK_RUNTIME_SITE", site(repo))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so that the installers and interpreters it
        // started die with it.
        .process_group(0)
        .spawn()
        .expect("starting xtask")
}

/// What an interrupted build left in dist/: every ZIP must open and read
/// back, and a manifest must be JSON, complete, and name ZIPs that exist
/// with the recorded sha256.
fn half_written(repo: &Repo) -> Vec<String> {
    let mut problems = Vec::new();
    let dist = repo.path().join("dist");
    for (relative, metadata) in walk(&dist) {
        if !metadata.is_file() || !relative.ends_with(".zip") {
            continue;
        }
        let opened = fs::File::open(dist.join(&relative))
            .map_err(|err| err.to_string())
            .and_then(|file| zip::ZipArchive::new(file).map_err(|err| err.to_string()));
        let read = opened.and_then(|mut archive| {
            for index in 0..archive.len() {
                let mut file = archive.by_index(index).map_err(|err| err.to_string())?;
                std::io::copy(&mut file, &mut std::io::sink()).map_err(|err| err.to_string())?;
            }
            Ok(())
        });
        if let Err(err) = read {
            problems.push(format!("dist/{relative} is not a readable ZIP: {err}"));
        }
    }
    let manifest_path = dist.join("manifest.json");
    if !manifest_path.exists() {
        return problems;
    }
    let manifest: serde_json::Value = match serde_json::from_slice(&fs::read(&manifest_path).unwrap()) {
        Ok(manifest) => manifest,
        Err(err) => {
            problems.push(format!("dist/manifest.json is not JSON: {err}"));
            return problems;
        }
    };
    let mut named = Vec::new();
    collect_zips(&manifest, &mut named);
    for (zip, sha256) in named {
        let path = repo.path().join(&zip);
        match fs::read(&path) {
            Err(err) => problems.push(format!("dist/manifest.json names {zip}, which is missing: {err}")),
            Ok(bytes) if sha256_of(&bytes) != sha256 => problems.push(format!(
                "dist/manifest.json records sha256 {sha256} for {zip}, which holds {}",
                sha256_of(&bytes)
            )),
            Ok(_) => {}
        }
    }
    // Written only when every layer and function was built.
    let missing: Vec<String> = [
        ("layers", ["core", "extra", "shared"]),
        ("functions", ["alpha", "beta", "gamma"]),
    ]
    .iter()
    .flat_map(|(section, names)| names.iter().map(move |name| (section, name)))
    .filter(|(section, name)| manifest[**section].get(**name).is_none())
    .map(|(section, name)| format!("{section}.{name}"))
    .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "dist/manifest.json exists but lacks {}: it was written before everything was built",
            missing.join(", ")
        ));
    }
    problems
}

/// Every `{"zip": PATH, "sha256": HEX}` pair in the manifest, wherever it sits.
fn collect_zips(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            if let (Some(zip), Some(sha256)) = (
                map.get("zip").and_then(|zip| zip.as_str()),
                map.get("sha256").and_then(|sha256| sha256.as_str()),
            ) {
                out.push((zip.to_string(), sha256.to_string()));
            }
            map.values().for_each(|value| collect_zips(value, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|value| collect_zips(value, out)),
        _ => {}
    }
}

/// Temporary names (`.tmp-`) anywhere under target/lambda or dist/.
fn leftovers(repo: &Repo) -> Vec<String> {
    let mut found = Vec::new();
    for top in ["target/lambda", "dist"] {
        for (relative, _) in walk(&repo.path().join(top)) {
            let name = relative.rsplit('/').next().unwrap_or_default();
            if name.contains(".tmp-") {
                found.push(format!("{top}/{relative}"));
            }
        }
    }
    found
}

#[test]
fn kill_9_at_twenty_points_leaves_nothing_half_written_and_the_next_build_recovers() {
    let cold = app();
    let started = Instant::now();
    let run = build(&cold);
    let duration = started.elapsed();
    run.success();
    drop(cold);
    eprintln!("a cold build takes {duration:?}; killing at twenty points of it");

    let mut problems = Vec::new();
    let mut killed = 0;
    for point in 1..=20u32 {
        let repo = app();
        let mut child = spawn_build(&repo);
        std::thread::sleep(duration * point / 21);
        let group = child.id();
        assert!(group > 1, "process group {group}");
        // killpg(2) by number: procps-ng 4.0.2's `kill -9 -12345` sends
        // kill(-1, SIGKILL), every process the user may signal.
        let _ = Command::new("python3")
            .args([
                "-c",
                "import os, sys; os.killpg(int(sys.argv[1]), 9)",
                &group.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed += 1;
        }
        let when = format!("kill at {point}/21 ({status})");
        for problem in half_written(&repo) {
            problems.push(format!("{when}: {problem}"));
        }
        let run = build(&repo);
        for problem in differences(&repo, &run) {
            problems.push(format!("{when}, then build: {problem}"));
        }
        for leftover in leftovers(&repo) {
            problems.push(format!("{when}, then build: temporary leftover {leftover}"));
        }
    }
    eprintln!("{killed} of 20 builds were killed before they finished");
    assert!(
        killed > 0,
        "no build was killed: the kill missed its process group"
    );
    assert_no_problems("kill -9", &problems);
}

// ---------------------------------------------------------------------------
// 4. --dry-run touches nothing.

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Dir,
    File {
        size: u64,
        mtime: (i64, i64),
        sha256: String,
    },
    Link(PathBuf),
}

type Snapshot = BTreeMap<String, Node>;

fn snapshot(root: &Path) -> Snapshot {
    walk(root)
        .into_iter()
        .map(|(relative, metadata)| {
            let path = root.join(&relative);
            let node = if metadata.is_dir() {
                Node::Dir
            } else if metadata.file_type().is_symlink() {
                Node::Link(fs::read_link(&path).unwrap_or_default())
            } else {
                Node::File {
                    size: metadata.len(),
                    mtime: (metadata.mtime(), metadata.mtime_nsec()),
                    sha256: sha256_of(&fs::read(&path).unwrap_or_default()),
                }
            };
            (relative, node)
        })
        .collect()
}

fn snapshot_changes(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut changes = Vec::new();
    // A created directory is one change, however much it holds.
    let inside_created = |path: &str| {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|dir| !dir.as_os_str().is_empty()) {
            let dir = dir.to_str().unwrap_or_default();
            if after.contains_key(dir) && !before.contains_key(dir) {
                return true;
            }
            parent = Path::new(dir).parent();
        }
        false
    };
    for (path, node) in after {
        match before.get(path) {
            None if inside_created(path) => {}
            None if *node == Node::Dir => {
                let inside = after
                    .keys()
                    .filter(|other| other.starts_with(&format!("{path}/")))
                    .count();
                changes.push(format!("created {path}/ holding {inside} path(s)"));
            }
            None => changes.push(format!("created {path}")),
            Some(old) if old != node => changes.push(format!("changed {path}: {old:?} -> {node:?}")),
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|path| !after.contains_key(*path)) {
        changes.push(format!("removed {path}"));
    }
    changes
}

/// `docker images -q --no-trunc`, or `None` when docker does not answer.
fn docker_images() -> Option<String> {
    let answers = Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !answers {
        return None;
    }
    let output = Command::new("docker")
        .args(["images", "--no-trunc", "--format", "{{.Repository}} {{.ID}}"])
        .output()
        .ok()?;
    // What ci's image stage and the registry tests build and pull at the
    // same time, in other processes, is theirs: images pulled from a
    // registry on this machine, and ci's own base.
    let mut ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with("127.0.0.1:") && !line.starts_with("xtask-ci-"))
        .map(|line| line.rsplit(' ').next().unwrap_or(line).to_string())
        .collect();
    ids.sort();
    Some(ids.join("\n"))
}

fn find_on(path: &str, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The current PATH without every directory that holds a `uv`.
fn path_without_uv() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| !dir.join("uv").exists())
        .collect();
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

/// A directory of stand-ins for the programs a dry run must not start, each
/// logging its command line before running the real one (found on `path`):
/// the container engines, the interpreters and the installers.
struct Spies {
    dir: tempfile::TempDir,
}

impl Spies {
    fn new(path: &str) -> Spies {
        let dir = tempfile::Builder::new().prefix("xtask-spies-").tempdir().unwrap();
        let full_path = std::env::var("PATH").unwrap_or_default();
        let log = dir.path().join("log");
        fs::write(&log, "").unwrap();
        let programs = [
            "docker",
            "podman",
            "python",
            "python3",
            "python3.11",
            "pip",
            "pip3",
            "uv",
        ];
        for program in programs {
            let mut real = find_on(path, program);
            if real.is_none() && program == "python3" {
                // python3 must stay even where it only lived beside uv.
                real = Command::new("python3")
                    .args(["-c", "import sys; print(sys.executable)"])
                    .env("PATH", &full_path)
                    .output()
                    .ok()
                    .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
                    .filter(|path| path.is_file());
                assert!(real.is_some(), "no python3 on PATH");
            }
            if program == "uv" && real.is_none() {
                // No uv means no uv: a stand-in would put one on PATH.
                continue;
            }
            let run = match &real {
                Some(real) => format!("exec '{}' \"$@\"", real.display()),
                None => "exit 127".to_string(),
            };
            let script = dir.path().join(program);
            fs::write(
                &script,
                format!("#!/bin/sh\necho \"{program} $*\" >> '{}'\n{run}\n", log.display()),
            )
            .unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Spies { dir }
    }

    /// `PATH` with the stand-ins first.
    fn path(&self, path: &str) -> String {
        format!("{}:{path}", self.dir.path().display())
    }

    /// The command lines logged since the last call.
    fn take(&self) -> String {
        let log = self.dir.path().join("log");
        let text = fs::read_to_string(&log).unwrap_or_default();
        fs::write(&log, "").unwrap();
        text
    }
}

const DRY_RUN_COMMANDS: [&str; 5] = ["build-layers", "package", "check-limits", "smoke", "build"];

/// Runs every command with `--dry-run`, with and without `--json`, and
/// returns the problems; `expect_stale` names what `build --dry-run` must
/// call stale.
fn dry_runs(repo: &Repo, path: &str, expect_stale: &[&str]) -> Vec<String> {
    // No test image is built meanwhile by another test of this process.
    let _images = support::ENGINE_IMAGES
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let spies = Spies::new(path);
    let path = spies.path(path);
    let site = site(repo).display().to_string();
    let mut problems = Vec::new();
    for command in DRY_RUN_COMMANDS {
        for json in [false, true] {
            let mut args = vec![command, "--dry-run"];
            if json {
                args.push("--json");
            }
            let label = args.join(" ");
            let files_before = snapshot(repo.path());
            let images_before = docker_images();
            let run = repo.xtask_with(
                &args,
                &[("XTASK_RUNTIME_SITE", site.as_str()), ("PATH", path.as_str())],
            );
            let files_after = snapshot(repo.path());
            let images_after = docker_images();
            for change in snapshot_changes(&files_before, &files_after) {
                problems.push(format!("{label}: {change}"));
            }
            match (images_before, images_after) {
                (Some(before), Some(after)) if before != after => {
                    problems.push(format!("{label}: docker images changed:\n{before}\n->\n{after}"))
                }
                // Equal, or docker does not answer: then no image can have
                // changed, and the spies catch any engine the run starts.
                _ => {}
            }
            let started = spies.take();
            if !started.is_empty() {
                problems.push(format!("{label}: started {}", started.trim().replace('\n', "; ")));
            }
            if run.code() != 0 {
                problems.push(format!(
                    "{label}: exit code {}: {}",
                    run.code(),
                    run.stderr().trim().lines().last().unwrap_or("")
                ));
            }
            if run.stdout().trim().is_empty() {
                problems.push(format!("{label}: prints no plan on stdout"));
            } else if json {
                if let Err(err) = serde_json::from_str::<serde_json::Value>(&run.stdout()) {
                    problems.push(format!("{label}: stdout is not JSON ({err}):\n{}", run.stdout()));
                }
            }
            if command == "build" && !json {
                for name in expect_stale {
                    if !run.stdout().contains(name) {
                        problems.push(format!(
                            "{label}: the plan does not name `{name}`, which is stale:\n{}",
                            run.stdout()
                        ));
                    }
                }
            }
        }
    }
    problems
}

#[test]
fn dry_run_touches_nothing_on_a_fresh_repository_without_uv() {
    let repo = app();
    let path = path_without_uv();
    assert!(find_on(&path, "uv").is_none());
    let problems = dry_runs(&repo, &path, &[]);
    assert_no_problems("--dry-run on a fresh repository without uv on PATH", &problems);
}

#[test]
fn dry_run_touches_nothing_on_a_built_repository_and_names_what_is_stale() {
    let repo = app();
    build(&repo).success();
    repo.write("lambdas/alpha/alpha_handler.py", &format!("{ALPHA}# edited\n"));
    repo.write(
        "layers/core/requirements.txt",
        "--no-index\n--find-links wheels\ntool==1.0\n# edited\n",
    );
    let path = std::env::var("PATH").unwrap_or_default();
    let problems = dry_runs(&repo, &path, &["alpha", "core"]);
    assert_no_problems("--dry-run on a built repository after edits", &problems);
}

// ---------------------------------------------------------------------------
// 5. smoke never imports a stale ZIP.

// ---------------------------------------------------------------------------
// Untrusted bytes in a dependency.

/// A wheel's shared object whose section table offset is near 2^64 is left
/// as it is (the reader and the rewriter give up on it): the build goes on
/// and ships the file byte for byte, it does not panic.
#[test]
fn a_crafted_shared_object_is_left_as_it_is() {
    let repo = app();
    let mut crafted = vec![0u8; 64];
    crafted[..6].copy_from_slice(b"\x7fELF\x02\x01");
    crafted[0x10..0x12].copy_from_slice(&3u16.to_le_bytes());
    crafted[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
    crafted[0x28..0x30].copy_from_slice(&(u64::MAX - 2).to_le_bytes());
    crafted[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    crafted[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes());
    repo.wheel_bytes(
        "core",
        "tool",
        "1.0",
        &[("tool.py", b"X = 1\n"), ("tool_libs/libcrafted.so.1", &crafted)],
        &[],
    );
    build(&repo).success();
    let zip = repo.path().join("dist/layers/core.zip");
    let mut archive = zip::ZipArchive::new(fs::File::open(zip).unwrap()).unwrap();
    let mut shipped = Vec::new();
    std::io::Read::read_to_end(
        &mut archive.by_name("python/tool_libs/libcrafted.so.1").unwrap(),
        &mut shipped,
    )
    .unwrap();
    assert_eq!(shipped, crafted);
}

/// Tests that run functions under AWS's runtime interface client: ignored
/// by a plain `cargo test`, run by `-- --ignored needs_runtime`, and failed
/// by [`support::require_runtime`] where `XTASK_RUNTIME_CLIENT` names none.
mod needs_runtime {
    use super::*;

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn smoke_alone_imports_the_current_sources_not_a_stale_zip() {
        support::require_runtime();
        let repo = app();
        build(&repo).success();
        repo.write(
            "lambdas/alpha/alpha_handler.py",
            &format!("raise RuntimeError(\"boom\")\n{ALPHA}"),
        );
        let run = xtask(&repo, &["smoke", "--builder", "host"]);
        assert!(
            !run.stderr().contains("smoke: skipped:"),
            "this host cannot smoke-test: {}",
            run.stderr()
        );
        run.fails_with(1, "boom");
    }
}
