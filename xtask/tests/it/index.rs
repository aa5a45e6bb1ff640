//! The user's index, behind a mirror on 127.0.0.1 (a PEP 503 index over the
//! tests' own wheels, served by Python's http.server, logging requests): a
//! lock names no index, a locked install asks the mirror the index
//! variables name and only it (uv and pip alike), a dead index fails the
//! install, a locked layer's key holds no index location, and a token in
//! an index URL reaches neither `target/` nor any output.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::{self, write_wheel, Repo, AT};

const APP: &str = r#"
[workspace.metadata.lambda]
runtime = "python3.11"

[workspace.metadata.lambda.layers.core]
requirements = "layers/core/requirements.txt"
"#;

const LOCK: &str = "layers/core/requirements.python3.11-x86_64.lock";

/// A PEP 503 index of `app` 1.0 (which needs `helper`) and `helper` 1.0,
/// served until dropped; every request it answers is logged.
struct Mirror {
    server: Child,
    log: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mirror {
    fn start() -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        write_wheel(
            &files,
            "app",
            "1.0",
            &[("app/__init__.py", b"import helper\n")],
            &["helper"],
        );
        write_wheel(&files, "helper", "1.0", &[("helper.py", b"V = 1\n")], &[]);
        for name in ["app", "helper"] {
            let wheel = format!("{name}-1.0-py3-none-any.whl");
            let sha = support::sha256_hex(&files.join(&wheel));
            let page = dir.path().join("simple").join(name);
            fs::create_dir_all(&page).unwrap();
            fs::write(
                page.join("index.html"),
                format!("<!DOCTYPE html><html><body><a href=\"../../files/{wheel}#sha256={sha}\">{wheel}</a></body></html>\n"),
            )
            .unwrap();
        }
        let log = dir.path().join("requests.log");
        let mut server = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting python3 -m http.server");
        // "Serving HTTP on 127.0.0.1 port 43567 (http://127.0.0.1:43567/) ..."
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("http.server said {line:?}"));
        Mirror {
            server,
            log,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/simple", self.port)
    }

    /// The request lines answered so far (`GET /simple/app/ HTTP/1.1`).
    fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split('"').nth(1).map(str::to_string))
            .collect()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// An index URL nothing answers: a port that was free a moment ago.
fn dead_index() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/simple")
}

fn app() -> Repo {
    let repo = Repo::new(APP);
    repo.write("layers/core/requirements.txt", "app==1.0\n");
    repo
}

/// The installer variables pointing at `index`, with caches of their own
/// (so that every install asks the index) and few retries (a dead index
/// fails at once; pip says why only when it retries).
fn index_env(index: &str, caches: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("PIP_INDEX_URL", index.to_string()),
        ("UV_INDEX_URL", index.to_string()),
        ("UV_CACHE_DIR", caches.join("uv").display().to_string()),
        ("PIP_CACHE_DIR", caches.join("pip").display().to_string()),
        ("UV_HTTP_RETRIES", "0".to_string()),
        ("PIP_RETRIES", "1".to_string()),
    ]
}

fn run(repo: &Repo, args: &[&str], env: &[(&'static str, String)]) -> support::Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    repo.xtask_with(args, &env)
}

/// The key a dry run gives the profile `core`.
fn core_key(repo: &Repo, env: &[(&'static str, String)]) -> String {
    let plan = run(
        repo,
        &["build-layers", "--builder", "host", "--dry-run", "--json"],
        env,
    );
    let plan: serde_json::Value = serde_json::from_str(&plan.success().stdout()).unwrap();
    plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["name"] == "core")
        .and_then(|node| node["key"].as_str())
        .unwrap_or_else(|| panic!("no key for core: {plan:#}"))
        .to_string()
}

#[test]
fn a_locked_install_asks_the_users_index_and_only_it() {
    let locked_at = Mirror::start();
    let users = Mirror::start();
    let repo = app();
    let caches = tempfile::tempdir().unwrap();
    run(&repo, &["lock"], &index_env(&locked_at.url(), caches.path())).success();
    let lock = String::from_utf8(repo.read(LOCK)).unwrap();
    assert!(
        lock.contains("app==1.0") && lock.contains("helper==1.0"),
        "{lock}"
    );
    for named in [
        "127.0.0.1",
        "--index-url",
        "--extra-index-url",
        "--find-links",
        "-i ",
        "-f ",
    ] {
        assert!(
            !lock.contains(named),
            "the lock names an index ({named}):\n{lock}"
        );
    }
    let asked_at_lock = locked_at.requests().len();

    for installer in ["uv", "pip"] {
        let caches = tempfile::tempdir().unwrap();
        let before = users.requests().len();
        let args = [
            "build-layers",
            "--builder",
            "host",
            "--installer",
            installer,
            "--force",
        ];
        run(&repo, &args, &index_env(&users.url(), caches.path())).success();
        let asked = users.requests()[before..].to_vec();
        for wheel in ["app-1.0-py3-none-any.whl", "helper-1.0-py3-none-any.whl"] {
            assert!(
                asked
                    .iter()
                    .any(|request| request.starts_with(&format!("GET /files/{wheel}"))),
                "{installer} did not fetch {wheel} from the user's mirror: {asked:?}"
            );
        }
        assert_eq!(
            locked_at.requests().len(),
            asked_at_lock,
            "{installer} asked the index the lock was resolved from"
        );
    }

    // Two mirrors, one key: the hashes decide the bytes.
    let key = core_key(&repo, &index_env(&locked_at.url(), caches.path()));
    assert_eq!(key, core_key(&repo, &index_env(&users.url(), caches.path())));

    // A dead index fails the locked install: no other index is reached.
    for installer in ["uv", "pip"] {
        let caches = tempfile::tempdir().unwrap();
        let before = (locked_at.requests().len(), users.requests().len());
        let args = [
            "build-layers",
            "--builder",
            "host",
            "--installer",
            installer,
            "--force",
        ];
        run(&repo, &args, &index_env(&dead_index(), caches.path()))
            .fails_with(1, "the package index could not be read");
        assert_eq!(
            (locked_at.requests().len(), users.requests().len()),
            before,
            "{installer} reached another index"
        );
    }
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(items) = fs::read_dir(dir) else {
        return found;
    };
    for item in items.flatten() {
        let path = item.path();
        let Ok(kind) = item.file_type() else { continue };
        if kind.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if kind.is_file() {
            let bytes = fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|window| window == needle) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn an_index_token_reaches_no_file_and_no_output() {
    let mirror = Mirror::start();
    let repo = app();
    let caches = repo.path().join("target/lambda/test-caches");
    let with_token = |token: &str| {
        let url = mirror
            .url()
            .replace("http://", &format!("http://ci-bot:{token}{AT}"));
        let mut env = index_env(&url, &caches);
        // The installers' caches where xtask keeps them, under target/.
        env.retain(|(key, _)| !key.ends_with("CACHE_DIR"));
        env
    };
    let tokens = ["tok3n-one-8f2b9c", "tok3n-two-51d0ae"];
    let mut output = String::new();
    let keep = |output: &mut String, run: &support::Run| {
        output.push_str(&run.stdout());
        output.push_str(&run.stderr());
    };
    // Unlocked: the index is part of the key, as a digest.
    let one = with_token(tokens[0]);
    let run_one = run(&repo, &["build-layers", "--builder", "host", "-v"], &one);
    keep(&mut output, run_one.success());
    let two = with_token(tokens[1]);
    for args in [
        &["build-layers", "--builder", "host", "--dry-run", "-v"][..],
        &["build-layers", "--builder", "host", "--dry-run", "--json"],
    ] {
        let run = run(&repo, args, &two);
        keep(&mut output, run.success());
    }
    assert!(
        output.contains("ci-bot:***@"),
        "the dry run says the index changed, redacted:\n{output}"
    );
    assert_ne!(
        core_key(&repo, &one),
        core_key(&repo, &two),
        "another token, another key"
    );
    // Locked: the lock names no index, the token is nowhere either.
    keep(&mut output, run(&repo, &["lock"], &one).success());
    keep(
        &mut output,
        run(&repo, &["build-layers", "--builder", "host", "-v"], &two).success(),
    );
    for token in tokens {
        assert!(!output.contains(token), "{token} in the output:\n{output}");
        for dir in ["target", "dist", "layers"] {
            let holding = files_holding(&repo.path().join(dir), token.as_bytes());
            assert!(holding.is_empty(), "{token} stored in {holding:?}");
        }
    }
}
