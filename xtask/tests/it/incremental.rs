//! An incremental build equals a from-scratch build after any one change.
//!
//! Each scenario makes one change to a shared base repository. The change is
//! applied twice: to a copy of a base that was already built (its `dist/` and
//! `target/` come along: the incremental build) and to a fresh base that was
//! never built (the build from scratch). Both are then built once, and must
//! agree on the exit code, on every file under `dist/` byte for byte, and on
//! the verdicts that `build --json` reports. Whatever the build caches or
//! skips, it may never show in what it produces. That holds for builds that
//! fail or are refused too: nothing an earlier build left in `dist/` may
//! survive where a build from scratch would not have written it.
//! (`dist/report.html` is compared without what cannot agree: its comparison
//! with the build before, which only the incremental build has, and the
//! measured init times; see `support::html_report`.) Image functions have
//! their own table in `needs_registry`: their bases come from a registry.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::support::{html_report, Repo};

/// The same arguments for every build, incremental or not. `--builder host`
/// keeps the container engine out; the base configuration names an image
/// that does not exist for the same reason.
const BUILD: &[&str] = &["build", "--builder", "host", "--json"];

const BASE: &str = r#"
[workspace.metadata.lambda]
runtime = "python3.11"
architecture = "x86_64"
image = "xtask-no-such-image:never"
budget = "50 MiB"

[workspace.metadata.lambda.layers.core]
requirements = "layers/core/requirements.txt"

[workspace.metadata.lambda.layers.extra]
requirements = "layers/extra/requirements.txt"

[workspace.metadata.lambda.layers.shared]
source = "lambdas/shared"
allow = [".env.example"]

[workspace.metadata.lambda.layers.ext]
arn = "arn:aws:lambda:us-east-1:123456789012:layer:ext:1"
unzipped_size = "1 MiB"

[workspace.metadata.lambda.functions.a]
source = "lambdas/a"
handler = "a_handler.lambda_handler"
layers = ["core", "shared"]
routes = ["GET /a", "PATCH /a/{id}"]
authorize = true

[workspace.metadata.lambda.functions.b]
source = "lambdas/b"
handler = "b_handler.lambda_handler"
layers = ["extra", "shared"]
allow = [".env.example"]

[workspace.metadata.lambda.functions.c]
source = "lambdas/c"
handler = "c_handler.lambda_handler"
routes = ["$default"]

[workspace.metadata.lambda.functions.d]
source = "lambdas/d"
handler = "d_handler.lambda_handler"
layers = ["shared", "ext"]

[workspace.metadata.lambda.api]
payload_format = "1.0"

[workspace.metadata.lambda.api.authorizer]
function = "d"
identity_sources = []
"#;

const A_HANDLER: &str = "import req\nimport shared\nfrom shared import util\n\n\n\
def lambda_handler(event, context):\n    return {\"req\": req.VERSION, \"shared\": util.greet()}\n\n\n\
def other_handler(event, context):\n    return shared.NAME\n";

const B_HANDLER: &str = "import shared\nimport tool\n\n\n\
def lambda_handler(event, context):\n    return {\"tool\": tool.VERSION, \"shared\": shared.NAME}\n";

const C_HANDLER: &str =
    "import json\n\n\ndef lambda_handler(event, context):\n    return json.dumps(event)\n";

const D_HANDLER: &str =
    "from shared import util\n\n\ndef lambda_handler(event, context):\n    return util.greet()\n";

/// Two dependency profiles from local wheels only, where `core` reads two
/// more files (`-r`, `-c`) and several versions of `req`, `urlkit` and
/// `tool` lie ready so that a pin, a constraint or the installer's
/// environment can choose another; a source layer, an external layer, and
/// four functions that import what their layers provide.
fn base() -> Repo {
    let repo = Repo::new(BASE);
    repo.profile("core", &["-r common.txt", "-c constraints.txt", "req==1.0"]);
    repo.write("layers/core/common.txt", "urlkit>=1.0\n");
    repo.write("layers/core/constraints.txt", "urlkit<3\n");
    repo.write(
        "layers/core/alt-requirements.txt",
        "--no-index\n--find-links wheels\nreq==1.1\n",
    );
    for version in ["1.0", "1.1"] {
        repo.wheel(
            "core",
            "req",
            version,
            &[(
                "req/__init__.py",
                &format!("import urlkit\n\nVERSION = {version:?}\n"),
            )],
            &["urlkit", "botocore"],
        );
    }
    for version in ["1.0", "2.0", "3.0"] {
        repo.wheel(
            "core",
            "urlkit",
            version,
            &[("urlkit/__init__.py", &format!("VERSION = {version:?}\n"))],
            &[],
        );
    }
    // Runtime-provided: left out by the default `exclude`.
    repo.wheel(
        "core",
        "botocore",
        "1.0",
        &[("botocore/__init__.py", "# big\n")],
        &[],
    );
    repo.wheel(
        "core",
        "helper",
        "1.0",
        &[("helper.py", "def help():\n    return 1\n")],
        &[],
    );

    // A release that declares its licence: only the SBOMs and the licence
    // policy see the difference from 1.0.
    repo.wheel_with_metadata(
        "core",
        "helper",
        "1.1",
        &[("helper.py", "def help():\n    return 1\n")],
        &["License-Expression: MIT"],
    );

    repo.profile("extra", &["tool==2.0"]);
    for version in ["1.0", "2.0"] {
        repo.wheel(
            "extra",
            "tool",
            version,
            &[("tool.py", &format!("VERSION = {version:?}\n"))],
            &[],
        );
    }

    repo.write("lambdas/shared/__init__.py", "NAME = 'shared'\n");
    repo.write(
        "lambdas/shared/util.py",
        "def greet():\n    return 'hello from shared'\n",
    );
    repo.write("lambdas/shared/spare.py", "SPARE = True\n");
    repo.write("lambdas/shared/.env.example", "REGION=us-east-1\n");
    // Another package named `shared`, for a source layer that moves.
    repo.write("vendor/shared/__init__.py", "NAME = 'vendored'\n");
    repo.write(
        "vendor/shared/util.py",
        "def greet():\n    return 'hello from vendor'\n",
    );

    repo.write("lambdas/a/a_handler.py", A_HANDLER);
    repo.write(
        "lambdas/a/alt.py",
        "import req\n\n\ndef handle(event, context):\n    return req.VERSION\n",
    );
    repo.write(
        "lambdas/a_v2/a_handler.py",
        &A_HANDLER.replace("return shared.NAME", "return 'v2'"),
    );
    repo.write("lambdas/b/b_handler.py", B_HANDLER);
    repo.write("lambdas/b/.env.example", "TOKEN=placeholder\n");
    repo.write("lambdas/c/c_handler.py", C_HANDLER);
    repo.write("lambdas/d/d_handler.py", D_HANDLER);
    repo
}

/// One change to the base repository, and the environment of the build that
/// follows it; `{outside}` in a value stands for a folder outside both
/// repositories, at the same path for both builds. A change may capture
/// what only the test knows (a registry's address, a base's digest).
struct Scenario {
    name: &'static str,
    change: Box<dyn Fn(&Repo) + Send + Sync>,
    env: &'static [(&'static str, &'static str)],
}

fn scenario(name: &'static str, change: impl Fn(&Repo) + Send + Sync + 'static) -> Scenario {
    Scenario {
        name,
        change: Box::new(change),
        env: &[],
    }
}

/// Replaces the only occurrence of `from` in a file: a scenario whose text
/// went missing from the base must fail loudly, not test nothing.
fn edit(repo: &Repo, relative: &str, from: &str, to: &str) {
    let text = String::from_utf8(repo.read(relative)).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{relative}: expected exactly one {from:?} in:\n{text}"
    );
    repo.write(relative, &text.replacen(from, to, 1));
}

fn config(repo: &Repo, from: &str, to: &str) {
    edit(repo, "Cargo.toml", from, to);
}

/// Adds a key right after a table's header.
fn set_key(repo: &Repo, table: &str, line: &str) {
    let header = format!("[workspace.metadata.lambda{table}]\n");
    config(repo, &header, &format!("{header}{line}\n"));
}

fn append(repo: &Repo, relative: &str, text: &str) {
    let mut old = String::from_utf8(repo.read(relative)).unwrap();
    old.push_str(text);
    repo.write(relative, &old);
}

fn remove(repo: &Repo, relative: &str) {
    fs::remove_file(repo.path().join(relative)).unwrap();
}

fn rename(repo: &Repo, from: &str, to: &str) {
    fs::rename(repo.path().join(from), repo.path().join(to)).unwrap();
}

/// A whole `[workspace.metadata.lambda.<kind>.<name>]` table of the base
/// configuration, up to the next table.
fn table(name: &str) -> String {
    BASE[table_span(BASE, name)].to_string()
}

/// Where the table `[workspace.metadata.lambda.<name>]` is in `text`: from
/// its header to the next table (its last newline included).
fn table_span(text: &str, name: &str) -> std::ops::Range<usize> {
    let header = format!("[workspace.metadata.lambda.{name}]\n");
    let start = text.find(&header).unwrap_or_else(|| panic!("no table {name}"));
    let end = text[start + header.len()..]
        .find("\n[")
        .map_or(text.len(), |end| start + header.len() + end + 1);
    start..end
}

fn global_keys() -> Vec<Scenario> {
    vec![
        scenario("nothing changed", |_| {}),
        scenario("runtime -> python3.12", |r| {
            config(r, "runtime = \"python3.11\"", "runtime = \"python3.12\"")
        }),
        scenario("runtime removed (a required key)", |r| {
            config(r, "runtime = \"python3.11\"\n", "")
        }),
        scenario("architecture -> arm64", |r| {
            config(r, "architecture = \"x86_64\"", "architecture = \"arm64\"")
        }),
        scenario("architecture removed (the default x86_64)", |r| {
            config(r, "architecture = \"x86_64\"\n", "")
        }),
        scenario("builder = host set", |r| set_key(r, "", "builder = \"host\"")),
        scenario("builder = container set (the command line says host)", |r| {
            set_key(r, "", "builder = \"container\"")
        }),
        scenario("image changed", |r| {
            config(r, "xtask-no-such-image:never", "xtask-no-such-image:other")
        }),
        scenario("image removed (the default image)", |r| {
            config(r, "image = \"xtask-no-such-image:never\"\n", "")
        }),
        scenario("exclude = [] keeps botocore", |r| set_key(r, "", "exclude = []")),
        scenario("exclude names urlkit, which req imports", |r| {
            set_key(r, "", "exclude = [\"botocore\", \"urlkit\"]")
        }),
        scenario("bytecode = checked-hash", |r| {
            set_key(r, "", "bytecode = \"checked-hash\"")
        }),
        scenario("bytecode = unchecked-hash", |r| {
            set_key(r, "", "bytecode = \"unchecked-hash\"")
        }),
        scenario("budget lowered below every function", |r| {
            config(r, "budget = \"50 MiB\"", "budget = \"1 KiB\"")
        }),
        scenario("budget removed", |r| config(r, "budget = \"50 MiB\"\n", "")),
        scenario("licenses allow only MIT (req and urlkit declare none)", |r| {
            set_key(r, "", "licenses = { allow = [\"MIT\"] }")
        }),
        scenario("import_budget set", |r| {
            set_key(r, "", "import_budget = \"10 s\"")
        }),
    ]
}

fn layer_keys() -> Vec<Scenario> {
    vec![
        scenario("core.requirements -> another file", |r| {
            config(
                r,
                "layers/core/requirements.txt",
                "layers/core/alt-requirements.txt",
            )
        }),
        scenario("extra becomes an external arn layer", |r| {
            config(
                r,
                "requirements = \"layers/extra/requirements.txt\"",
                "arn = \"arn:aws:lambda:us-east-1:123456789012:layer:tool:3\"\nunzipped_size = \"10 MiB\"",
            )
        }),
        scenario("ext.unzipped_size -> 240 MiB (over the limit)", |r| {
            config(r, "unzipped_size = \"1 MiB\"", "unzipped_size = \"240 MiB\"")
        }),
        scenario("ext.unzipped_size -> 2 MiB", |r| {
            config(r, "unzipped_size = \"1 MiB\"", "unzipped_size = \"2 MiB\"")
        }),
        scenario("ext.arn -> another version", |r| {
            config(r, "layer:ext:1", "layer:ext:2")
        }),
        scenario("ext.unzipped_size removed (required for arn)", |r| {
            config(r, "unzipped_size = \"1 MiB\"\n", "")
        }),
        scenario("core.allow set", |r| {
            set_key(r, ".layers.core", "allow = [\".env.example\"]")
        }),
        scenario("shared.allow removed (.env.example refused)", |r| {
            config(
                r,
                "source = \"lambdas/shared\"\nallow = [\".env.example\"]\n",
                "source = \"lambdas/shared\"\n",
            )
        }),
        scenario("shared.allow extended", |r| {
            config(
                r,
                "source = \"lambdas/shared\"\nallow = [\".env.example\"]",
                "source = \"lambdas/shared\"\nallow = [\".env.example\", \"dev.pem\"]",
            )
        }),
        scenario("shared.source -> another package named shared", |r| {
            config(r, "source = \"lambdas/shared\"", "source = \"vendor/shared\"")
        }),
        scenario("layer tables reordered", |r| {
            let core = table("layers.core");
            config(r, &core, "");
            append(r, "Cargo.toml", &format!("\n{core}"));
        }),
    ]
}

fn function_keys() -> Vec<Scenario> {
    vec![
        scenario("a.layers: extra added", |r| {
            config(r, "[\"core\", \"shared\"]", "[\"core\", \"extra\", \"shared\"]")
        }),
        scenario("a.layers: core removed (import req goes missing)", |r| {
            config(r, "[\"core\", \"shared\"]", "[\"shared\"]")
        }),
        scenario("a.layers reordered", |r| {
            config(r, "[\"core\", \"shared\"]", "[\"shared\", \"core\"]")
        }),
        scenario("c.layers: the external layer attached", |r| {
            set_key(r, ".functions.c", "layers = [\"ext\"]")
        }),
        scenario("d.layers: the external layer detached", |r| {
            config(r, "[\"shared\", \"ext\"]", "[\"shared\"]")
        }),
        scenario("b.layers removed (import tool goes missing)", |r| {
            config(r, "layers = [\"extra\", \"shared\"]\n", "")
        }),
        scenario("a.handler -> another module", |r| {
            config(r, "a_handler.lambda_handler", "alt.handle")
        }),
        scenario("a.handler -> another function of the module", |r| {
            config(r, "a_handler.lambda_handler", "a_handler.other_handler")
        }),
        scenario("a.handler -> a missing function", |r| {
            config(r, "a_handler.lambda_handler", "a_handler.nowhere")
        }),
        scenario("a.handler removed (a required key)", |r| {
            config(r, "handler = \"a_handler.lambda_handler\"\n", "")
        }),
        scenario("a.source -> another folder", |r| {
            config(r, "source = \"lambdas/a\"", "source = \"lambdas/a_v2\"")
        }),
        scenario("a.budget lowered below its size", |r| {
            set_key(r, ".functions.a", "budget = \"1 KiB\"")
        }),
        scenario("a.licenses deny set (a verdict only)", |r| {
            set_key(r, ".functions.a", "licenses = { deny = [\"MIT\"] }")
        }),
        scenario("c.budget raised", |r| {
            set_key(r, ".functions.c", "budget = \"200 MiB\"")
        }),
        scenario("b.bundle = true", |r| set_key(r, ".functions.b", "bundle = true")),
        scenario("b.allow removed (.env.example refused)", |r| {
            config(
                r,
                "layers = [\"extra\", \"shared\"]\nallow = [\".env.example\"]\n",
                "layers = [\"extra\", \"shared\"]\n",
            )
        }),
        scenario("c.allow set", |r| {
            set_key(r, ".functions.c", "allow = [\".env.local\"]")
        }),
        scenario(
            "a.runtime set to python3.12 (its layers built again for it)",
            |r| set_key(r, ".functions.a", "runtime = \"python3.12\""),
        ),
        scenario("a.architecture set to arm64 (smoke skipped here)", |r| {
            set_key(r, ".functions.a", "architecture = \"arm64\"")
        }),
        scenario("a.timeout set", |r| {
            set_key(r, ".functions.a", "timeout = \"10 s\"")
        }),
        scenario("memory set for every function", |r| {
            set_key(r, "", "memory = 512")
        }),
        scenario("a.environment, reserved_concurrency and log retention set", |r| {
            set_key(
                r,
                ".functions.a",
                "environment = { MODE = \"fast\" }\nreserved_concurrency = 2\nlog_retention_days = 7",
            )
        }),
    ]
}

/// The API: routes and the authorizer reach only the manifest, which is
/// written from the configuration on every run.
fn api_keys() -> Vec<Scenario> {
    vec![
        scenario("a route's path changed", |r| {
            config(r, "\"GET /a\"", "\"GET /a/list\"")
        }),
        scenario("c: a greedy route added", |r| {
            config(
                r,
                "routes = [\"$default\"]",
                "routes = [\"$default\", \"GET /c/{rest+}\"]",
            )
        }),
        scenario("a route moved from a to b", |r| {
            config(r, ", \"PATCH /a/{id}\"", "");
            set_key(r, ".functions.b", "routes = [\"PATCH /a/{id}\"]");
        }),
        scenario("a.authorize removed (its routes open)", |r| {
            config(r, "authorize = true\n", "")
        }),
        scenario("one route of a left open", |r| {
            config(r, "\"GET /a\"", "{ key = \"GET /a\", authorize = false }")
        }),
        scenario("api.payload_format -> 2.0", |r| {
            config(r, "payload_format = \"1.0\"", "payload_format = \"2.0\"")
        }),
        scenario("the authorizer gets an identity source and a cache", |r| {
            config(
                r,
                "identity_sources = []",
                "identity_sources = [\"$request.header.Authorization\"]\nresult_ttl = 300",
            )
        }),
        scenario("the authorizer answers simple responses", |r| {
            set_key(r, ".api.authorizer", "response = \"simple\"")
        }),
        scenario("the authorizer removed (a's routes refused)", |r| {
            config(r, &table("api.authorizer"), "")
        }),
        scenario("a route refused (a greedy parameter not last)", |r| {
            config(r, "\"PATCH /a/{id}\"", "\"PATCH /{id+}/a\"")
        }),
    ]
}

fn sources() -> Vec<Scenario> {
    vec![
        scenario("a: file added", |r| {
            r.write("lambdas/a/extra_module.py", "X = 1\n");
        }),
        scenario("a: handler edited", |r| {
            edit(
                r,
                "lambdas/a/a_handler.py",
                "\"req\": req.VERSION",
                "\"version\": req.VERSION",
            )
        }),
        scenario("a: file deleted", |r| remove(r, "lambdas/a/alt.py")),
        scenario("a: file renamed", |r| {
            rename(r, "lambdas/a/alt.py", "lambdas/a/alternative.py")
        }),
        scenario("a: handler raises at import", |r| {
            append(r, "lambdas/a/a_handler.py", "\nraise RuntimeError('boom')\n")
        }),
        scenario("b: handler imports a module no layer provides", |r| {
            edit(
                r,
                "lambdas/b/b_handler.py",
                "import tool\n",
                "import tool\nimport nowhere\n",
            )
        }),
        scenario("c: secret-looking file added", |r| {
            r.write("lambdas/c/id_rsa", "not a key\n");
        }),
        scenario("shared: .env added (not allowed)", |r| {
            r.write("lambdas/shared/.env", "SECRET=1\n");
        }),
        scenario("c: tests folder added (left out)", |r| {
            r.write("lambdas/c/tests/test_c.py", "def test():\n    pass\n");
        }),
        scenario("shared: file added", |r| {
            r.write("lambdas/shared/extra.py", "EXTRA = 1\n");
        }),
        scenario("shared: module edited", |r| {
            edit(r, "lambdas/shared/util.py", "hello from shared", "hi from shared")
        }),
        scenario("shared: file deleted", |r| remove(r, "lambdas/shared/spare.py")),
        scenario("shared: file renamed", |r| {
            rename(r, "lambdas/shared/spare.py", "lambdas/shared/spare2.py")
        }),
        scenario("shared: util breaks at import", |r| {
            append(r, "lambdas/shared/util.py", "\nimport nowhere\n")
        }),
        scenario("shared: file made executable", |r| {
            use std::os::unix::fs::PermissionsExt;
            let path = r.path().join("lambdas/shared/spare.py");
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        }),
    ]
}

fn requirements() -> Vec<Scenario> {
    vec![
        scenario("core: pin changed", |r| {
            edit(r, "layers/core/requirements.txt", "req==1.0", "req==1.1")
        }),
        scenario("core: requirement added", |r| {
            append(r, "layers/core/requirements.txt", "helper==1.0\n")
        }),
        scenario(
            "core: a release that declares its licence added (SBOMs change)",
            |r| append(r, "layers/core/requirements.txt", "helper==1.1\n"),
        ),
        scenario("core: comment added", |r| {
            append(r, "layers/core/requirements.txt", "# why req is pinned\n")
        }),
        scenario("core: requirements rewritten with the same bytes", |r| {
            let same = String::from_utf8(r.read("layers/core/requirements.txt")).unwrap();
            r.write("layers/core/requirements.txt", &same);
        }),
        scenario("core: a line of the -r file changed", |r| {
            edit(r, "layers/core/common.txt", "urlkit>=1.0", "urlkit==1.0")
        }),
        scenario("core: a line of the -c file changed", |r| {
            edit(r, "layers/core/constraints.txt", "urlkit<3", "urlkit<2")
        }),
        Scenario {
            name: "UV_CONSTRAINT picks an older urlkit",
            change: Box::new(|_| {}),
            env: &[("UV_CONSTRAINT", "{outside}/old-urlkit.txt")],
        },
        scenario("extra: pin changed to an older tool", |r| {
            edit(r, "layers/extra/requirements.txt", "tool==2.0", "tool==1.0")
        }),
        scenario("extra: requirement removed (import tool goes missing)", |r| {
            edit(r, "layers/extra/requirements.txt", "tool==2.0\n", "")
        }),
        scenario("extra: pin to a version that does not exist", |r| {
            edit(r, "layers/extra/requirements.txt", "tool==2.0", "tool==9.9")
        }),
    ]
}

fn renames_and_removals() -> Vec<Scenario> {
    vec![
        scenario("layer core renamed to deps", |r| {
            config(r, "layers.core]", "layers.deps]");
            config(r, "[\"core\", \"shared\"]", "[\"deps\", \"shared\"]");
        }),
        scenario("layer shared renamed to common", |r| {
            config(r, "layers.shared]", "layers.common]");
            config(r, "[\"core\", \"shared\"]", "[\"core\", \"common\"]");
            config(r, "[\"extra\", \"shared\"]", "[\"extra\", \"common\"]");
            config(r, "[\"shared\", \"ext\"]", "[\"common\", \"ext\"]");
        }),
        scenario("layer extra removed (and from b)", |r| {
            config(r, &table("layers.extra"), "");
            config(r, "[\"extra\", \"shared\"]", "[\"shared\"]");
        }),
        scenario("layer ext removed (and from d)", |r| {
            config(r, &table("layers.ext"), "");
            config(r, "[\"shared\", \"ext\"]", "[\"shared\"]");
        }),
        scenario("layer shared removed (and from every function)", |r| {
            config(r, &table("layers.shared"), "");
            config(r, "[\"core\", \"shared\"]", "[\"core\"]");
            config(r, "[\"extra\", \"shared\"]", "[\"extra\"]");
            config(r, "[\"shared\", \"ext\"]", "[\"ext\"]");
        }),
        scenario("function a renamed to alpha", |r| {
            config(r, "functions.a]", "functions.alpha]")
        }),
        scenario("function c removed", |r| config(r, &table("functions.c"), "")),
        scenario("function e added", |r| {
            r.write(
                "lambdas/e/e_handler.py",
                &D_HANDLER.replace("greet()", "greet() + '!'"),
            );
            append(
                r,
                "Cargo.toml",
                "\n[workspace.metadata.lambda.functions.e]\nsource = \"lambdas/e\"\n\
                 handler = \"e_handler.lambda_handler\"\nlayers = [\"shared\"]\n",
            );
        }),
        scenario("profile more added", |r| {
            r.profile("more", &["helper==1.0"]);
            r.wheel(
                "more",
                "helper",
                "1.0",
                &[("helper.py", "def help():\n    return 2\n")],
                &[],
            );
            append(
                r,
                "Cargo.toml",
                "\n[workspace.metadata.lambda.layers.more]\nrequirements = \"layers/more/requirements.txt\"\n",
            );
        }),
        scenario("function tables reordered", |r| {
            let a = table("functions.a");
            config(r, &a, "");
            append(r, "Cargo.toml", &format!("\n{a}"));
        }),
    ]
}

#[test]
fn global_keys_build_as_from_scratch() {
    check_all(&global_keys());
}

#[test]
fn layer_keys_build_as_from_scratch() {
    check_all(&layer_keys());
}

#[test]
fn function_keys_build_as_from_scratch() {
    check_all(&function_keys());
}

#[test]
fn api_keys_build_as_from_scratch() {
    check_all(&api_keys());
}

/// A changed route rebuilds no product, yet reaches `dist/manifest.json`
/// in the incremental build, which then equals the build from scratch.
#[test]
fn a_route_change_reaches_the_manifest() {
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir(outside.path().join("runtime-site")).unwrap();
    let built = base();
    let first = build(&built, outside.path(), &[]);
    assert_eq!(
        first.code, 0,
        "the base builds
{}",
        first.stderr
    );
    let change = |repo: &Repo| config(repo, "\"PATCH /a/{id}\"", "\"PATCH /a/{a_id}\"");
    let repo = Repo::new(BASE);
    copy_tree(built.path(), repo.path());
    change(&repo);
    let incremental = build(&repo, outside.path(), &[]);
    let scratch = base();
    change(&scratch);
    let scratch = build(&scratch, outside.path(), &[]);
    if let Some(diff) = differences(&incremental, &scratch) {
        panic!("the incremental build differs from the build from scratch:\n{diff}");
    }
    let manifest = |outcome: &Outcome| -> serde_json::Value {
        serde_json::from_slice(&outcome.dist["manifest.json"]).expect("a manifest")
    };
    let (before, after) = (manifest(&first), manifest(&incremental));
    assert_eq!(
        after["api"]["routes"]["PATCH /a/{a_id}"],
        serde_json::json!({"function": "a", "authorize": true}),
        "{after:#}"
    );
    assert!(after["api"]["routes"].get("PATCH /a/{id}").is_none(), "{after:#}");
    assert_eq!(before["functions"], after["functions"], "no product changed");
    assert_eq!(before["layers"], after["layers"], "no product changed");
}

#[test]
fn source_changes_build_as_from_scratch() {
    check_all(&sources());
}

#[test]
fn requirement_changes_build_as_from_scratch() {
    check_all(&requirements());
}

#[test]
fn renames_and_removals_build_as_from_scratch() {
    check_all(&renames_and_removals());
}

/// Image functions (`package = "image"`) next to the ZIP functions whose
/// layers they share: their images are made on a base pulled from a
/// registry of the test's own, so the group needs Debian's docker-registry,
/// docker with the test image (the bases are built from it) and AWS's
/// runtime interface client.
mod needs_registry {
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::support::registry::{extra_base, test_base, TestRegistry};
    use crate::support::require_runtime;

    /// The registry and the two bases in it, by digest: the test base and
    /// the same with one more layer (a file); `tag` names the first.
    struct Bases {
        host: String,
        first: String,
        second: String,
        first_digest: String,
        second_digest: String,
        tag: String,
    }

    /// `i`, an image on the repository's `image_base` (by digest) with the
    /// layers of ZIP function `a`, and `j`, an image on a base given by tag
    /// (pinned in `images.lock`) with those of `b`.
    const IMAGE_FUNCTIONS: &str = r#"
[workspace.metadata.lambda.functions.i]
source = "lambdas/i"
handler = "i_handler.lambda_handler"
package = "image"
layers = ["core", "shared"]

[workspace.metadata.lambda.functions.j]
source = "lambdas/j"
handler = "j_handler.lambda_handler"
package = "image"
image_base = "{tag}"
layers = ["extra", "shared"]
"#;

    /// The repository's base with the image functions, the bases and the
    /// repository their images go to set, and the tag pinned to the first
    /// base in `images.lock`.
    fn image_base(bases: &Bases) -> Repo {
        let repo = base();
        config(
            &repo,
            "budget = \"50 MiB\"\n",
            &format!(
                "budget = \"50 MiB\"\nimage_base = \"{}\"\nimage_repository = \"{}/app\"\n",
                bases.first, bases.host
            ),
        );
        append(&repo, "Cargo.toml", &IMAGE_FUNCTIONS.replace("{tag}", &bases.tag));
        repo.write("lambdas/i/i_handler.py", A_HANDLER);
        repo.write("lambdas/j/j_handler.py", B_HANDLER);
        pin(&repo, bases, &bases.first_digest);
        repo
    }

    /// `images.lock` with the tag pinned to `digest` for x86_64, as
    /// `cargo xtask lock` writes it.
    fn pin(repo: &Repo, bases: &Bases, digest: &str) {
        let lock = serde_json::json!({
            "note": "Written by `cargo xtask lock`.",
            "bases": { &bases.tag: { "x86_64": digest } },
        });
        repo.write(
            "images.lock",
            &format!("{}\n", serde_json::to_string_pretty(&lock).unwrap()),
        );
    }

    /// Replaces the only occurrence of `from` in the table
    /// `[workspace.metadata.lambda.<name>]` of the configuration.
    fn in_table(repo: &Repo, name: &str, from: &str, to: &str) {
        let text = String::from_utf8(repo.read("Cargo.toml")).unwrap();
        let span = table_span(&text, name);
        let body = &text[span.clone()];
        assert_eq!(
            body.matches(from).count(),
            1,
            "{name}: expected exactly one {from:?} in:\n{body}"
        );
        let edited = format!(
            "{}{}{}",
            &text[..span.start],
            body.replacen(from, to, 1),
            &text[span.end..]
        );
        repo.write("Cargo.toml", &edited);
    }

    /// Adds `line` to image function `function`'s table, after its
    /// `package = "image"`.
    fn image_key(repo: &Repo, function: &str, line: &str) {
        let package = "package = \"image\"\n";
        in_table(
            repo,
            &format!("functions.{function}"),
            package,
            &format!("{package}{line}\n"),
        );
    }

    fn image_scenarios(bases: &Arc<Bases>) -> Vec<Scenario> {
        // One handle on the bases for each scenario that needs them.
        let [b1, b2, b3, b4, b5, b6, b7] = std::array::from_fn(|_| Arc::clone(bases));
        vec![
            scenario("nothing changed", |_| {}),
            scenario("image_base -> another base (one more layer)", move |r| {
                config(r, &b1.first, &b1.second)
            }),
            scenario("j: the tag's pin in images.lock moved", move |r| {
                pin(r, &b2, &b2.second_digest)
            }),
            scenario("images.lock removed (j's tag unpinned)", |r| {
                remove(r, "images.lock")
            }),
            scenario("i: base by tag, pinned to the same digest", move |r| {
                image_key(r, "i", &format!("image_base = \"{}\"", b3.tag))
            }),
            scenario("core: pin changed (in a and i)", |r| {
                edit(r, "layers/core/requirements.txt", "req==1.0", "req==1.1")
            }),
            scenario("extra: pin changed (in b and j)", |r| {
                edit(r, "layers/extra/requirements.txt", "tool==2.0", "tool==1.0")
            }),
            scenario("i: handler edited", |r| {
                edit(
                    r,
                    "lambdas/i/i_handler.py",
                    "\"req\": req.VERSION",
                    "\"version\": req.VERSION",
                )
            }),
            scenario("i: handler raises at import", |r| {
                append(r, "lambdas/i/i_handler.py", "\nraise RuntimeError('boom')\n")
            }),
            scenario("i.handler -> another function of the module", |r| {
                in_table(r, "functions.i", "lambda_handler", "other_handler")
            }),
            scenario("shared: module edited (in every function)", |r| {
                edit(r, "lambdas/shared/util.py", "hello from shared", "hi from shared")
            }),
            scenario("a: package zip -> image", |r| {
                set_key(r, ".functions.a", "package = \"image\"")
            }),
            scenario("i: package image -> zip", |r| {
                in_table(r, "functions.i", "package = \"image\"\n", "")
            }),
            scenario("i: package image -> zip, said so", |r| {
                in_table(r, "functions.i", "package = \"image\"", "package = \"zip\"")
            }),
            scenario(
                "j: package image -> zip (its image_base and pin gone)",
                move |r| {
                    in_table(
                        r,
                        "functions.j",
                        &format!("package = \"image\"\nimage_base = \"{}\"\n", b4.tag),
                        "",
                    );
                    remove(r, "images.lock");
                },
            ),
            scenario("d: package -> image (its external layer refused)", |r| {
                set_key(r, ".functions.d", "package = \"image\"")
            }),
            scenario("i.image_repository set (its own)", move |r| {
                image_key(r, "i", &format!("image_repository = \"{}/own\"", b5.host))
            }),
            scenario("image_repository changed", move |r| {
                config(r, &format!("{}/app", b6.host), &format!("{}/other/app", b6.host))
            }),
            scenario("image_repository removed", move |r| {
                config(r, &format!("image_repository = \"{}/app\"\n", b7.host), "")
            }),
            scenario("i.layers reordered", |r| {
                in_table(
                    r,
                    "functions.i",
                    "[\"core\", \"shared\"]",
                    "[\"shared\", \"core\"]",
                )
            }),
            scenario("i.layers: core removed (import req goes missing)", |r| {
                in_table(r, "functions.i", "[\"core\", \"shared\"]", "[\"shared\"]")
            }),
            scenario("i.layers removed", |r| {
                in_table(r, "functions.i", "layers = [\"core\", \"shared\"]\n", "")
            }),
            scenario("i.architecture -> arm64 (the base is amd64 only)", |r| {
                image_key(r, "i", "architecture = \"arm64\"")
            }),
            scenario("j.architecture -> arm64 (its tag not pinned for arm64)", |r| {
                image_key(r, "j", "architecture = \"arm64\"")
            }),
            scenario("function i renamed to img", |r| {
                config(r, "functions.i]", "functions.img]")
            }),
            scenario("function i removed", |r| {
                let table = IMAGE_FUNCTIONS
                    .split("\n\n")
                    .find(|table| table.contains("functions.i]"))
                    .unwrap()
                    .trim_start();
                config(r, &format!("{table}\n"), "");
            }),
        ]
    }

    /// An image's blobs in `dist/` are hard links into the store; a copy of
    /// the repository (what the incremental build starts from) holds plain
    /// files, and the comparison sees them equal: it reads contents.
    fn dist_blobs_are_links_compared_by_content(built: &Repo) {
        let blobs = built.path().join("dist/images/i/blobs/sha256");
        let names: Vec<_> = fs::read_dir(&blobs)
            .unwrap_or_else(|err| panic!("{}: {err}", blobs.display()))
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(
            names.len() > 3,
            "a base layer, i's layers, its config and manifest"
        );
        for name in &names {
            let links = fs::metadata(blobs.join(name)).unwrap().nlink();
            assert!(links >= 2, "{name:?}: a link into the store ({links} link)");
        }
        let copy = Repo::new(BASE);
        copy_tree(built.path(), copy.path());
        let copied = copy.path().join("dist/images/i/blobs/sha256");
        for name in &names {
            assert_eq!(fs::metadata(copied.join(name)).unwrap().nlink(), 1, "{name:?}");
        }
        let dist = |repo: &Path| files_under(&repo.join("dist"));
        assert_eq!(dist(built.path()), dist(copy.path()), "the same contents");
        let mut changed = dist(copy.path());
        let blob = format!("images/i/blobs/sha256/{}", names[0].to_string_lossy());
        changed.get_mut(&blob).unwrap().push(b'!');
        assert_ne!(dist(built.path()), changed, "a blob's bytes count");
    }

    #[test]
    #[ignore = "needs docker-registry, a container engine and the runtime client"]
    fn image_scenarios_build_as_from_scratch() {
        require_runtime();
        let registry = TestRegistry::start();
        let first = test_base(&registry);
        let first_digest = first.digest.clone().unwrap();
        let first = first.to_string();
        let second = extra_base(&registry);
        let second_digest = second.digest.clone().unwrap();
        let second = second.to_string();
        assert_ne!(first_digest, second_digest);
        let bases = Arc::new(Bases {
            host: registry.host(),
            tag: format!("{}/lambda/python:3.11", registry.host()),
            first,
            second,
            first_digest,
            second_digest,
        });
        let scenarios = image_scenarios(&bases);
        // Two at once: this test is its group's longest by far, and
        // most of a scenario's time is copying and pulling the base's
        // blobs, not computing.
        check_all_on(
            &|| image_base(&bases),
            &scenarios,
            &|built| {
                dist_blobs_are_links_compared_by_content(built);
                a_repository_change_reaches_only_the_manifest(built, &bases);
            },
            2,
        );
    }

    /// Where images go is no input of an image: a new `image_repository`
    /// rebuilds nothing and changes, in `dist/`, the manifest's
    /// `image.repository` of each image function, and nothing else.
    fn a_repository_change_reaches_only_the_manifest(built: &Repo, bases: &Bases) {
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(outside.path().join("runtime-site")).unwrap();
        let mut before = files_under(&built.path().join("dist"));
        if let Some(page) = before.get_mut("report.html") {
            *page = html_report(page);
        }
        let repo = Repo::new(BASE);
        copy_tree(built.path(), repo.path());
        let old = format!("{}/app", bases.host);
        let new = format!("{}/elsewhere", bases.host);
        config(&repo, &old, &new);
        let after = build(&repo, outside.path(), &[]);
        assert_eq!(after.code, 0, "{}", after.stderr);
        let changed: BTreeSet<&String> = after
            .dist
            .keys()
            .chain(before.keys())
            .filter(|name| before.get(*name) != after.dist.get(*name))
            .collect();
        assert_eq!(
            changed.into_iter().collect::<Vec<_>>(),
            ["manifest.json"],
            "only the manifest changes"
        );
        let manifest = |bytes: &[u8]| -> serde_json::Value { serde_json::from_slice(bytes).unwrap() };
        let (mut was, now) = (
            manifest(&before["manifest.json"]),
            manifest(&after.dist["manifest.json"]),
        );
        for function in ["i", "j"] {
            let repository = &mut was["functions"][function]["image"]["repository"];
            assert_eq!(*repository, format!("{old}/{function}").as_str());
            *repository = format!("{new}/{function}").into();
        }
        assert_eq!(was, now, "the repositories, and nothing else");
    }
}

/// Today's binary cannot exercise the JSON comparison, so the harness
/// proves here that it ignores only timings and failure messages.
#[test]
fn the_report_ignores_only_timings_and_failure_messages() {
    let document = |import_ms: f64, error: &str, message: &str| {
        serde_json::json!({
            "ok": false,
            "verdicts": {"a": {
                "check": {"ok": true, "errors": [], "warnings": []},
                "smoke": {"ok": false, "error": error, "skipped": null, "import_ms": import_ms},
            }},
            "failed": {"smoke a": message},
        })
        .to_string()
    };
    let one = report(&document(1.5, "boom", "in /tmp/one"));
    assert_eq!(one, report(&document(99.0, "boom", "in /tmp/two")));
    assert_ne!(one, report(&document(1.5, "bang", "in /tmp/one")));
    assert_ne!(
        one,
        report(&document(1.5, "boom", "in /tmp/one").replace("smoke a", "smoke b"))
    );
    assert_eq!(report("not json\n"), Report::Text("not json\n".into()));
}

/// The HTML report's `#changes` depends on the build before and its init
/// times are measured: those, and nothing else, are left out.
#[test]
fn the_html_report_ignores_only_its_changes_and_init_times() {
    let page = |changes: &str, ms: &str, total: &str| {
        format!(
            "<main id=\"report\">\n<tr><td class=\"num\"><span class=\"ms\">{ms} ms</span> (budget 3000 ms)</td></tr>\n\
             <section id=\"changes\" data-previous=\"true\">\n<h2>Changes</h2>\n<ul><li>{changes}</li></ul>\n</section>\n\
             <section class=\"function\" data-total-bytes=\"{total}\" data-init-ms=\"{ms}\">\n\
             <p>Init <span class=\"ms\">{ms} ms</span> (budget 3000 ms).</p>\n</section>\n</main>\n"
        )
    };
    let one = html_report(page("sms +2.1 MiB: twilio 9.13.0 → 9.14.0", "144.7", "10").as_bytes());
    assert_eq!(
        one,
        html_report(page("No previous build", "99.0", "10").as_bytes())
    );
    assert_ne!(one, html_report(page("x", "144.7", "11").as_bytes()), "a total");
    assert_ne!(
        one,
        html_report(
            page("x", "144.7", "10")
                .replace("budget 3000", "budget 10")
                .as_bytes()
        ),
        "text beside a time"
    );
    assert_ne!(
        one,
        html_report(
            page("x", "144.7", "10")
                .replace("</main>", "<p>more</p></main>")
                .as_bytes()
        ),
        "what follows the changes"
    );
    let plain = b"<p>no markers</p>\n";
    assert_eq!(html_report(plain), plain.to_vec());
}

/// Runs every scenario of a table and fails once, naming each scenario whose
/// incremental build differs from its build from scratch.
fn check_all(scenarios: &[Scenario]) {
    check_all_on(&base, scenarios, &|_| {}, 1);
}

/// [`check_all`] on the base repository that `base` makes; `built_base`
/// looks at it once it is built, before any scenario. The scenarios are
/// run by `workers` threads at once: each has repositories of its own and
/// only reads the built base.
fn check_all_on(
    base: &(dyn Fn() -> Repo + Sync),
    scenarios: &[Scenario],
    built_base: &dyn Fn(&Repo),
    workers: usize,
) {
    let outside_dir = tempfile::tempdir().unwrap();
    let outside = outside_dir.path();
    // Empty: the smoke test needs no network.
    fs::create_dir(outside.join("runtime-site")).unwrap();
    fs::write(outside.join("old-urlkit.txt"), "urlkit==1.0\n").unwrap();
    let built = base();
    let first = build(&built, outside, &[]);
    assert_eq!(
        first.code, 0,
        "the base repository must build cleanly\nstdout:\n{}\nstderr:\n{}",
        first.stdout, first.stderr
    );
    built_base(&built);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(scenario) = scenarios.get(index) else {
                    break;
                };
                // Both ways round: the incremental build with the built
                // base's finished distributions (warm) against a scratch build
                // with an empty cache, and the other way round.
                let warm_scratch = index % 2 == 1;
                if let Some(diff) = check_one(base, &built, outside, scenario, warm_scratch) {
                    let failure = format!("scenario `{}`:\n{}", scenario.name, diff.trim_end());
                    failures.lock().unwrap().push((index, failure));
                }
            });
        }
    });
    // In the table's order, whichever thread found them.
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    let failures: Vec<String> = failures.into_iter().map(|(_, failure)| failure).collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenario(s) differ between an incremental build and one from scratch:\n\n{}",
        failures.len(),
        scenarios.len(),
        failures.join("\n\n")
    );
}

/// One scenario: its change made to a copy of the built base and to a
/// fresh base, each built; how the two outcomes differ, if they do.
/// With `warm_scratch`, the incremental build's cache of finished
/// distributions is empty and the scratch build uses the built base's
/// (shared with the other scenarios' scratch builds); otherwise each has
/// its own, the incremental build the copy of the base's.
fn check_one(
    base: &dyn Fn() -> Repo,
    built: &Repo,
    outside: &Path,
    scenario: &Scenario,
    warm_scratch: bool,
) -> Option<String> {
    let incremental = Repo::new(BASE);
    copy_tree(built.path(), incremental.path());
    (scenario.change)(&incremental);
    let cold = incremental.path().join("target").join("empty-user-cache");
    let warm = built.user_cache();
    let with_cache = |dir: &Path| {
        let mut env: Vec<(&str, String)> = scenario
            .env
            .iter()
            .map(|(key, value)| (*key, value.to_string()))
            .collect();
        if warm_scratch {
            env.push(("XTASK_CACHE_DIR", dir.to_str().unwrap().to_string()));
        }
        env
    };
    let env = with_cache(&cold);
    let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let incremental = build(&incremental, outside, &env);

    let scratch = base();
    (scenario.change)(&scratch);
    let env = with_cache(&warm);
    let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let scratch = build(&scratch, outside, &env);

    differences(&incremental, &scratch)
}

/// What a build shows: its exit code, its report and everything in `dist/`.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    report: Report,
    dist: BTreeMap<String, Vec<u8>>,
}

/// What a build reports on stdout, as far as it must not depend on the cache.
#[derive(Debug, PartialEq)]
enum Report {
    Json(serde_json::Value),
    Text(String),
}

fn build(repo: &Repo, outside: &Path, env: &[(&str, &str)]) -> Outcome {
    let outside = outside.to_str().unwrap();
    let mut all = vec![("XTASK_RUNTIME_SITE", format!("{outside}/runtime-site"))];
    all.extend(
        env.iter()
            .map(|(key, value)| (*key, value.replace("{outside}", outside))),
    );
    let all: Vec<(&str, &str)> = all.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let run = repo.xtask_with(BUILD, &all);
    let stdout = run.stdout();
    let mut dist = files_under(&repo.path().join("dist"));
    if let Some(page) = dist.get_mut("report.html") {
        *page = html_report(page);
    }
    Outcome {
        code: run.code(),
        report: report(&stdout),
        stdout,
        stderr: run.stderr(),
        dist,
    }
}

/// `ok`, the verdicts without their timings, and which nodes failed (their
/// messages may name temporary paths); stdout itself when it is not JSON.
fn report(stdout: &str) -> Report {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(stdout) else {
        return Report::Text(stdout.to_string());
    };
    let mut verdicts = json["verdicts"].clone();
    strip_key(&mut verdicts, "import_ms");
    let failed: Vec<&String> = json["failed"]
        .as_object()
        .map(|failed| failed.keys().collect())
        .unwrap_or_default();
    Report::Json(serde_json::json!({ "ok": json["ok"], "verdicts": verdicts, "failed": failed }))
}

fn strip_key(value: &mut serde_json::Value, key: &str) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|value| strip_key(value, key));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|value| strip_key(value, key)),
        _ => {}
    }
}

/// Every file under `dir` by its path relative to `dir`.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, prefix: &str, found: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), found);
            } else {
                found.insert(name, fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(dir, "", &mut found);
    found
}

/// A readable account of how two outcomes differ, or `None`.
fn differences(incremental: &Outcome, scratch: &Outcome) -> Option<String> {
    let mut out = Vec::new();
    if incremental.code != scratch.code {
        out.push(format!(
            "exit code: incremental {}, scratch {}\nincremental stderr, last lines:\n{}\nscratch stderr, last lines:\n{}",
            incremental.code,
            scratch.code,
            excerpt(&incremental.stderr),
            excerpt(&scratch.stderr)
        ));
    }
    if incremental.report != scratch.report {
        out.push(format!(
            "report differs:\n{}",
            line_diff(&report_text(&incremental.report), &report_text(&scratch.report))
        ));
    }
    let names: BTreeSet<&String> = incremental.dist.keys().chain(scratch.dist.keys()).collect();
    for name in names {
        match (incremental.dist.get(name), scratch.dist.get(name)) {
            (Some(_), None) => out.push(format!("dist/{name}: only in the incremental build")),
            (None, Some(_)) => out.push(format!("dist/{name}: only in the build from scratch")),
            (Some(left), Some(right)) if left != right => {
                let detail = if name == "manifest.json" {
                    line_diff(&pretty(left), &pretty(right))
                } else if name.ends_with(".zip") {
                    zip_diff(left, right)
                } else if name.ends_with(".html") {
                    line_diff(&String::from_utf8_lossy(left), &String::from_utf8_lossy(right))
                } else {
                    String::new()
                };
                out.push(format!("dist/{name} differs:\n{detail}"));
            }
            _ => {}
        }
    }
    if incremental.dist.contains_key("manifest.json") != scratch.dist.contains_key("manifest.json") {
        for (side, outcome) in [("incremental", incremental), ("scratch", scratch)] {
            if let Some(manifest) = outcome.dist.get("manifest.json") {
                out.push(format!("{side} manifest:\n{}", pretty(manifest)));
            }
        }
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

fn report_text(report: &Report) -> String {
    match report {
        Report::Json(json) => serde_json::to_string_pretty(json).unwrap(),
        Report::Text(text) => format!("(stdout is not JSON)\n{text}"),
    }
}

fn pretty(bytes: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Entries of two ZIPs that differ, by name, size and CRC.
fn zip_diff(left: &[u8], right: &[u8]) -> String {
    let entries = |bytes: &[u8]| -> BTreeMap<String, String> {
        let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes.to_vec())) else {
            return BTreeMap::from([("(not a ZIP)".to_string(), String::new())]);
        };
        (0..archive.len())
            .map(|index| {
                let mut file = archive.by_index(index).unwrap();
                let mut content = Vec::new();
                file.read_to_end(&mut content).unwrap();
                let facts = format!(
                    "{} bytes, crc {:08x}, mode {:o}",
                    file.size(),
                    file.crc32(),
                    file.unix_mode().unwrap_or(0)
                );
                (
                    file.name().map(|name| name.to_string()).unwrap_or_default(),
                    facts,
                )
            })
            .collect()
    };
    let (left, right) = (entries(left), entries(right));
    let names: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    let mut out = String::new();
    for name in names {
        match (left.get(name), right.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => out.push_str(&format!(
                "  {name}: incremental {}, scratch {}\n",
                a.map_or("absent", String::as_str),
                b.map_or("absent", String::as_str)
            )),
        }
    }
    if out.is_empty() {
        out.push_str("  same entries and contents; the archives' bytes differ\n");
    }
    out
}

/// The lines that differ, `-` for the incremental build and `+` for the build
/// from scratch, with two lines of context (a longest-common-subsequence diff).
fn line_diff(left: &str, right: &str) -> String {
    let a: Vec<&str> = left.lines().collect();
    let b: Vec<&str> = right.lines().collect();
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |index: usize| {
        let from = index.saturating_sub(2);
        let to = (index + 3).min(lines.len());
        lines[from..to].iter().any(|(mark, _)| *mark != ' ')
    };
    let mut out = String::from("  (- incremental, + scratch)\n");
    let mut skipped = false;
    for (index, (mark, line)) in lines.iter().enumerate() {
        if near_change(index) {
            out.push_str(&format!("  {mark} {line}\n"));
            skipped = false;
        } else if !skipped {
            out.push_str("  ...\n");
            skipped = true;
        }
    }
    out
}

/// Enough of a build's human output to see why it failed: a panic's own
/// message rather than its backtrace, else the last lines.
fn excerpt(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let (start, count) = match lines.iter().position(|line| line.contains("panicked at")) {
        Some(panic) => (panic, 2),
        None => (lines.len().saturating_sub(8), 8),
    };
    lines[start..lines.len().min(start + count)].join("\n")
}

/// Copies a repository that was built, `target/` and `dist/` included, with
/// modes and modification times, so that the copy is what a second build in
/// the same checkout would find.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let source = entry.path();
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&source, &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source).unwrap(), &target).unwrap();
            continue;
        } else {
            fs::copy(&source, &target).unwrap();
        }
        let metadata = fs::metadata(&source).unwrap();
        fs::set_permissions(&target, metadata.permissions()).unwrap();
        fs::File::open(&target)
            .unwrap()
            .set_modified(metadata.modified().unwrap())
            .unwrap();
    }
}
