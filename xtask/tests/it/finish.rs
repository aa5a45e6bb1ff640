//! Finished dependency layers (slimmed, sourceless bytecode, the default
//! where the runtime's Python is at hand) against tiny wheels made by the
//! tests: what ships, that it imports and invokes, that a rule which breaks
//! an import fails the build naming the module and the rule, and that a
//! setting needing the runtime's Python is refused where there is none.

use std::fs;
use std::io::Read;
use std::process::Command;

use crate::support::{self, zip_names, App, Repo};

/// The standard application with `api` in place of `hello`, on core and
/// shared.
fn config() -> App {
    App::standard()
        .without("functions.hello")
        .function("api", "api.lambda_handler", &["core", "shared"])
}

const HANDLER: &str = r#"
import shared
import tool
import tool.deep


def lambda_handler(event, context):
    if event.get("fail") == "layer":
        tool.deep.explode()
    if event.get("fail") == "own":
        raise ValueError("own code failed")
    return {"statusCode": 200, "answer": tool.answer(), "native": tool.native(), "shared": shared.NAME}
"#;

/// `tool`: a package with a submodule, a test suite, a type stub, a C
/// source, a license, and a shared object with debug symbols that its
/// `__init__` loads with ctypes.
fn tool_files(native: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "tool/__init__.py",
            b"import ctypes, os\n_lib = ctypes.CDLL(os.path.join(os.path.dirname(__file__), '_native.so'))\n\ndef answer():\n    return 42\n\ndef native():\n    return _lib.native_answer()\n".to_vec(),
        ),
        (
            "tool/deep.py",
            b"def explode():\n    raise RuntimeError('deep in the layer')\n".to_vec(),
        ),
        ("tool/tests/__init__.py", b"".to_vec()),
        ("tool/tests/test_tool.py", b"def test_answer():\n    assert True\n".to_vec()),
        ("tool/__init__.pyi", b"def answer() -> int: ...\n".to_vec()),
        ("tool/_native.c", b"int native_answer(void) { return 7; }\n".to_vec()),
        ("tool/_native.so", native.to_vec()),
        ("tool-1.0.dist-info/licenses/LICENSE", b"MIT, for the tests\n".to_vec()),
    ]
}

/// A real shared object with debug symbols, built by gcc once (its debug
/// information names the folder it was built in).
fn native_library() -> Vec<u8> {
    static NATIVE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    NATIVE.get_or_init(build_native_library).clone()
}

fn build_native_library() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("native.c");
    fs::write(
        &source,
        "static const char *names[] = {\"a\", \"b\"};\nint native_answer(void) { return names[0][0] == 'a' ? 7 : 0; }\n",
    )
    .unwrap();
    let output = dir.path().join("native.so");
    let status = Command::new("gcc")
        .args(["-g", "-O1", "-shared", "-fPIC", "-o"])
        .arg(&output)
        .arg(&source)
        .status()
        .expect("gcc is needed to build a shared object for the tests");
    assert!(status.success(), "gcc failed");
    fs::read(output).unwrap()
}

fn app(extra: &[(&str, &[u8])]) -> Repo {
    let repo = config().repo();
    let native = native_library();
    let mut files: Vec<(&str, Vec<u8>)> = tool_files(&native);
    files.extend(extra.iter().map(|(path, bytes)| (*path, bytes.to_vec())));
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, bytes)| (*path, bytes.as_slice()))
        .collect();
    repo.wheel_bytes("core", "tool", "1.0", &files, &[]);
    repo.write("lambdas/api/api.py", HANDLER);
    repo
}

/// `app` with a one-module `tool`, `setting` added to its global table.
fn small_app(app: App, setting: &str) -> Repo {
    let repo = app.setting(setting).repo();
    repo.wheel("core", "tool", "1.0", &[("tool/__init__.py", "X = 1\n")], &[]);
    repo.write(
        "lambdas/api/api.py",
        "def lambda_handler(event, context):\n    return 1\n",
    );
    repo
}

fn read_entry(zip: &std::path::Path, name: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(fs::File::open(zip).unwrap()).unwrap();
    let mut bytes = Vec::new();
    archive
        .by_name(name)
        .unwrap_or_else(|_| panic!("{name} in {}", zip.display()))
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn has_debug_info(bytes: &[u8]) -> bool {
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), bytes).unwrap();
    let output = Command::new("readelf")
        .args(["-S", "-W"])
        .arg(file.path())
        .output()
        .expect("readelf (binutils) is needed to read the sections");
    let sections = String::from_utf8_lossy(&output.stdout);
    sections.contains(".debug_info") || sections.contains(".symtab")
}

#[test]
fn by_default_layers_ship_slimmed_and_sourceless() {
    let repo = app(&[]);
    let run = repo.xtask(&["build", "--builder", "host"]);
    run.success();
    let manifest = repo.manifest();
    assert_eq!(
        manifest["layers"]["core"]["bytecode"], "sourceless",
        "{manifest:#}"
    );
    assert_eq!(manifest["layers"]["core"]["slim"], true, "{manifest:#}");

    let layer = repo.path().join("dist/layers/core.zip");
    let names = zip_names(&layer);
    for shipped in [
        "python/tool/__init__.pyc",
        "python/tool/deep.pyc",
        "python/tool/_native.so",
        "python/tool-1.0.dist-info/licenses/LICENSE",
        "python/tool-1.0.dist-info/METADATA",
    ] {
        assert!(
            names.contains(&shipped.to_string()),
            "{shipped} missing: {names:?}"
        );
    }
    for gone in [
        "python/tool/__init__.py",
        "python/tool/deep.py",
        "python/tool/tests/test_tool.py",
        "python/tool/__init__.pyi",
        "python/tool/_native.c",
    ] {
        assert!(!names.contains(&gone.to_string()), "{gone} shipped: {names:?}");
    }
    let native = read_entry(&layer, "python/tool/_native.so");
    assert!(!has_debug_info(&native), "debug symbols left in _native.so");
    assert!(
        has_debug_info(&build_native_library()),
        "the test's library has symbols to strip"
    );
    // RECORD describes what ships: the bytecode, not the sources it replaced.
    let record = String::from_utf8(read_entry(&layer, "python/tool-1.0.dist-info/RECORD")).unwrap();
    assert!(record.contains("tool/deep.pyc,sha256="), "{record}");
    assert!(!record.contains("tool/deep.py,"), "{record}");
    assert!(!record.contains("tool/tests/"), "{record}");

    // Application code keeps its sources, with checked-hash bytecode beside them.
    let function = repo.path().join("dist/functions/api.zip");
    let function_names = zip_names(&function);
    assert!(
        function_names.contains(&"api.py".to_string()),
        "{function_names:?}"
    );
    let pyc = "__pycache__/api.cpython-311.pyc";
    assert!(function_names.contains(&pyc.to_string()), "{function_names:?}");
    let header = read_entry(&function, pyc);
    assert_eq!(
        u32::from_le_bytes(header[4..8].try_into().unwrap()),
        0b11,
        "checked-hash flags"
    );
    let shared = zip_names(&repo.path().join("dist/layers/shared.zip"));
    assert!(
        shared.contains(&"python/shared/__pycache__/__init__.cpython-311.pyc".to_string()),
        "{shared:?}"
    );
}

#[test]
fn the_same_inputs_give_the_same_finished_layer_and_function() {
    let one = app(&[]);
    let other = app(&[]);
    one.xtask(&["build", "--builder", "host"]).success();
    other.xtask(&["build", "--builder", "host"]).success();
    for zip in [
        "dist/layers/core.zip",
        "dist/layers/shared.zip",
        "dist/functions/api.zip",
    ] {
        assert!(
            one.read(zip) == other.read(zip),
            "{zip} differs between two checkouts"
        );
    }
}

#[test]
fn a_rule_that_breaks_an_import_fails_the_build_naming_module_and_rule() {
    // `tool.helpers` imports its own test suite at import time.
    let repo = app(&[("tool/helpers.py", b"from tool.tests import test_tool\n")]);
    let run = repo.xtask(&["build", "--builder", "host"]);
    run.fails_with(
        1,
        "tool.helpers: ModuleNotFoundError: No module named 'tool.tests'",
    );
    let stderr = run.stderr();
    assert!(stderr.contains("broken by `slim: test-suites`"), "{stderr}");
    assert!(!stderr.contains("broken by `slim: strip-symbols`"), "{stderr}");
    assert!(
        stderr.contains("slim = false` under [workspace.metadata.lambda.layers.core]"),
        "{stderr}"
    );
    assert!(
        !repo.path().join("dist/manifest.json").exists(),
        "a manifest shipped"
    );
    assert!(
        !repo.path().join("dist/layers/core.zip").exists(),
        "the layer shipped"
    );

    // The fix the message gives works.
    repo.set_metadata(&config().key("layers.core", "slim = false").metadata());
    repo.xtask(&["build", "--builder", "host"]).success();
    let names = zip_names(&repo.path().join("dist/layers/core.zip"));
    assert!(
        names.contains(&"python/tool/tests/test_tool.pyc".to_string()),
        "{names:?}"
    );
    assert_eq!(repo.manifest()["layers"]["core"]["slim"], false);
}

#[test]
fn sourceless_bytecode_that_breaks_an_import_is_named_too() {
    // A module that reads its own source at import time.
    let repo = app(&[(
        "tool/introspect.py",
        b"import inspect, sys\nSOURCE = inspect.getsource(sys.modules[__name__])\n",
    )]);
    let run = repo.xtask(&["build", "--builder", "host"]);
    run.fails_with(1, "tool.introspect: OSError");
    let stderr = run.stderr();
    assert!(stderr.contains("broken by `bytecode: sourceless`"), "{stderr}");
    assert!(stderr.contains("bytecode = \"checked-hash\""), "{stderr}");
    repo.set_metadata(&config().setting("bytecode = \"checked-hash\"").metadata());
    repo.xtask(&["build", "--builder", "host"]).success();
    let names = zip_names(&repo.path().join("dist/layers/core.zip"));
    assert!(
        names.contains(&"python/tool/introspect.py".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"python/tool/__pycache__/introspect.cpython-311.pyc".to_string()),
        "{names:?}"
    );
}

#[test]
fn bytecode_none_ships_the_layer_as_installed() {
    let repo = app(&[]);
    let as_installed = config().setting("bytecode = \"none\"");
    repo.set_metadata(&as_installed.clone().setting("slim = false").metadata());
    repo.xtask(&["build", "--builder", "host"]).success();
    let names = zip_names(&repo.path().join("dist/layers/core.zip"));
    assert!(
        names.contains(&"python/tool/tests/test_tool.py".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|name| name.ends_with(".pyc")), "{names:?}");
    let function = zip_names(&repo.path().join("dist/functions/api.zip"));
    assert_eq!(function, vec!["api.py".to_string()]);
    // Slimmed without bytecode: the proof's imports leave no bytecode behind.
    repo.set_metadata(&as_installed.setting("slim = true").metadata());
    repo.xtask(&["build", "--builder", "host"]).success();
    let names = zip_names(&repo.path().join("dist/layers/core.zip"));
    assert!(names.contains(&"python/tool/deep.py".to_string()), "{names:?}");
    assert!(!names.iter().any(|name| name.contains("tests/")), "{names:?}");
    assert!(!names.iter().any(|name| name.ends_with(".pyc")), "{names:?}");
}

#[test]
fn a_setting_that_needs_the_runtimes_python_is_refused_where_there_is_none() {
    // No Python 3.14 on this kind of machine, nor one uv may find without downloading.
    let app = config().runtime("python3.14");
    let repo = small_app(app.clone(), "bytecode = \"sourceless\"");
    let probe = Command::new("python3.14").arg("--version").output();
    assert!(
        probe.is_err(),
        "this test needs a machine without Python 3.14; this one has it"
    );
    repo.xtask(&["build-layers", "--builder", "host"]).fails_with(
        2,
        "bytecode = \"sourceless\" needs the python3.14 runtime's own Python",
    );
    // Left to their defaults, the layers ship as installed and say why.
    repo.set_metadata(&app.metadata());
    let run = repo.xtask(&["build-layers", "--builder", "host", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&run.success().stdout()).unwrap();
    assert!(
        run.stderr()
            .contains("ship as installed, without bytecode or slimming: no Python 3.14"),
        "{}",
        run.stderr()
    );
    assert_eq!(json["layers"]["core"]["bytecode"], "none", "{json:#}");
    assert_eq!(json["layers"]["core"]["slim"], false, "{json:#}");
}

/// Tests that need a container engine (docker or podman) with the test
/// image: ignored by a plain `cargo test`, run by `-- --ignored needs_engine`,
/// and failed by [`support::require_engine`] where there is none.
mod needs_engine {
    use super::*;

    #[test]
    #[ignore = "needs a container engine with the test image (cargo xtask ci runs it)"]
    fn a_build_image_with_another_python_is_refused() {
        support::require_engine();
        // The test image has Python 3.11; the layers are for 3.12.
        let repo = small_app(config().runtime("python3.12"), "slim = true");
        repo.xtask(&[
            "build-layers",
            "--builder",
            "container",
            "--image",
            support::TEST_IMAGE,
        ])
        .fails_with(2, "has Python 3.11, not the runtime's 3.12");
    }

    #[test]
    #[ignore = "needs a container engine with the test image (cargo xtask ci runs it)"]
    fn the_build_image_finishes_and_proves_the_same_layer_as_the_host() {
        support::require_engine();
        let repo = app(&[]);
        repo.xtask(&["build-layers", "--builder", "host"]).success();
        let host = repo.read("dist/layers/core.zip");
        let run = repo.xtask(&[
            "build-layers",
            "--builder",
            "container",
            "--image",
            support::TEST_IMAGE,
            "--json",
        ]);
        let json: serde_json::Value = serde_json::from_str(&run.success().stdout()).unwrap();
        let container = repo.read("dist/layers/core.zip");
        assert_eq!(json["layers"]["core"]["bytecode"], "sourceless", "{json:#}");
        assert_eq!(json["layers"]["core"]["builder"], "container", "{json:#}");
        assert!(
            host == container,
            "the host and the build image finished different layers"
        );
    }
}

/// Tests that run functions under AWS's runtime interface client: ignored
/// by a plain `cargo test`, run by `-- --ignored needs_runtime`, and failed
/// by [`support::require_runtime`] where `XTASK_RUNTIME_CLIENT` names none.
mod needs_runtime {
    use super::*;

    /// What `by_default_layers_ship_slimmed_and_sourceless` builds imports and
    /// answers under the runtime interface client, the stripped library included.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn by_default_layers_ship_slimmed_and_sourceless_and_still_invoke() {
        support::require_runtime();
        let repo = app(&[]);
        repo.xtask(&["build", "--builder", "host"]).success();
        repo.write("events/ok.json", "{}");
        repo.write("events/layer.json", "{\"fail\": \"layer\"}");
        repo.write("events/own.json", "{\"fail\": \"own\"}");
        let run = repo.xtask(&["invoke", "api", "--event", "events/ok.json"]);
        let answer = run.success().stdout();
        assert!(
            answer.contains("\"answer\": 42") || answer.contains("\"answer\":42"),
            "{answer}"
        );
        assert!(
            answer.contains("\"native\": 7") || answer.contains("\"native\":7"),
            "{answer}"
        );

        // A failure in the layer names the file and line at /opt (no source
        // text to show); a failure in the function's own code keeps its line.
        let failed = repo.xtask(&["invoke", "api", "--event", "events/layer.json"]);
        assert_eq!(failed.code(), 1, "{}", failed.stderr());
        let out = format!("{}{}", failed.stdout(), failed.stderr());
        assert!(out.contains("/opt/python/tool/deep.py\", line 2"), "{out}");
        let failed = repo.xtask(&["invoke", "api", "--event", "events/own.json"]);
        let out = format!("{}{}", failed.stdout(), failed.stderr());
        assert!(out.contains("raise ValueError(\"own code failed\")"), "{out}");
    }
}

/// Every file below `dir`, by its path relative to it.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for item in fs::read_dir(&next).unwrap().flatten() {
            if item.file_type().unwrap().is_dir() {
                pending.push(item.path());
            } else {
                files.push(item.path());
            }
        }
    }
    files.sort();
    files
}

/// The cache of finished distributions is shared by repositories: a
/// second repository whose profile differs (its requirements carry a
/// comment: another layer key, the same wheel) takes `tool` finished from
/// it, and its proof's outcome, and ships the same bytes; a damaged entry
/// is discarded, finished again and never shipped; another bytecode mode
/// misses; a repository with the very same profile takes the whole layer.
#[test]
fn finished_distributions_are_shared_verified_and_keyed() {
    let cache = tempfile::tempdir().unwrap();
    let env = [("XTASK_CACHE_DIR", cache.path().to_str().unwrap())];
    let build = |repo: &Repo| {
        let run = repo.xtask_with(&["build-layers", "--builder", "host"], &env);
        run.success();
        (
            run.stderr(),
            fs::read(repo.path().join("dist/layers/core.zip")).unwrap(),
        )
    };
    let taken = "layer `core`: 1 of 1 distribution(s) taken finished from the cache";
    // Another profile that installs the same wheel.
    let variant = |n: usize| {
        let repo = app(&[]);
        let requirements = repo.path().join("layers/core/requirements.txt");
        let mut text = fs::read_to_string(&requirements).unwrap();
        text.push_str(&format!("# variant {n}\n"));
        fs::write(&requirements, text).unwrap();
        repo
    };

    let (first, layer) = build(&app(&[]));
    assert!(
        !first.contains("taken finished"),
        "an empty cache gives nothing:\n{first}"
    );
    let finished = cache.path().join("finished");
    let entries: Vec<_> = fs::read_dir(&finished).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "one distribution finished and stored");
    let entry = entries[0].path();

    let proven = "layer `core`: proven before";
    assert!(!first.contains(proven), "{first}");
    let (second, again) = build(&variant(1));
    assert!(second.contains(taken), "{second}");
    assert!(
        second.contains(proven),
        "the same bytes are not imported again:\n{second}"
    );
    assert!(
        again == layer,
        "a layer assembled from the cache is the layer finished here"
    );

    // Same size, other bytes: found by its hash, discarded, finished again.
    let pyc = files_below(&entry)
        .into_iter()
        .find(|file| file.extension().is_some_and(|ext| ext == "pyc"))
        .expect("the finished tool holds bytecode");
    let mut bytes = fs::read(&pyc).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&pyc, &bytes).unwrap();
    let (damaged, rebuilt) = build(&variant(2));
    assert!(damaged.contains("discarding the cache entry"), "{damaged}");
    assert!(!damaged.contains("taken finished"), "{damaged}");
    assert!(rebuilt == layer, "the damaged bytecode never ships");
    assert!(fs::read(&pyc).unwrap() != bytes, "the entry was finished again");
    let (healed, _) = build(&variant(3));
    assert!(
        healed.contains(taken) && !healed.contains("discarding"),
        "{healed}"
    );

    // The very same profile: the layer itself, built by the first repository.
    let (same, whole) = build(&app(&[]));
    assert!(
        same.contains("layer core: taken from the cache every repository shares"),
        "{same}"
    );
    assert!(!same.contains("taken finished"), "nothing finished: {same}");
    assert!(whole == layer);

    // Another bytecode mode is another key.
    let checked = app(&[]);
    let text = fs::read_to_string(checked.path().join("Cargo.toml")).unwrap();
    let text = text.replacen(
        "[workspace.metadata.lambda]\n",
        "[workspace.metadata.lambda]\nbytecode = \"checked-hash\"\n",
        1,
    );
    fs::write(checked.path().join("Cargo.toml"), text).unwrap();
    let (other, _) = build(&checked);
    assert!(!other.contains("taken finished"), "{other}");
    assert_eq!(
        fs::read_dir(&finished).unwrap().count(),
        2,
        "stored under its own key"
    );
}
