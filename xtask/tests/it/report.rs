//! `dist/report.html` on a small application: written by every build,
//! self-contained, its totals those of check-limits, the same bytes when
//! nothing changed, a requirement's new version in its comparison, written
//! again by `cargo xtask report`, and gone with the manifest.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::support::{self, App, Repo};

/// The standard application with this budget, a second profile `extra`,
/// `hello` (its handler in `hello_handler.py`) on core, extra and shared,
/// and `bye` on shared alone.
fn config(budget: &str) -> App {
    App::standard()
        .setting(&format!("budget = \"{budget}\""))
        .layer("extra", &["requirements = \"layers/extra/requirements.txt\""])
        .function(
            "hello",
            "hello_handler.lambda_handler",
            &["core", "extra", "shared"],
        )
        .function("bye", "bye_handler.lambda_handler", &["shared"])
}

/// `core` ships `tool` (two versions lie ready) and `extra` ships it again
/// (files shipped twice) with `bigsdk`, which nothing imports.
fn app() -> Repo {
    let repo = config("50 MiB").repo();
    for (version, padding) in [("1.0", 1), ("2.0", 400)] {
        repo.wheel(
            "core",
            "tool",
            version,
            &[
                ("tool/__init__.py", &format!("VERSION = {version:?}\n")),
                ("tool/data.txt", &"x".repeat(1000 * padding)),
            ],
            &[],
        );
    }
    repo.profile("extra", &["bigsdk==1.0", "tool==1.0"]);
    repo.wheel(
        "extra",
        "bigsdk",
        "1.0",
        &[
            ("bigsdk/__init__.py", ""),
            ("bigsdk/data.txt", &"padding\n".repeat(6250)),
        ],
        &[],
    );
    repo.wheel(
        "extra",
        "tool",
        "1.0",
        &[
            ("tool/__init__.py", "VERSION = \"1.0\"\n"),
            ("tool/data.txt", &"x".repeat(1000)),
        ],
        &[],
    );
    repo.write(
        "lambdas/hello/hello_handler.py",
        "import tool\nimport shared\n\n\ndef lambda_handler(event, context):\n    return tool.VERSION\n",
    );
    repo.write(
        "lambdas/bye/bye_handler.py",
        "import shared\n\n\ndef lambda_handler(event, context):\n    return shared.NAME\n",
    );
    repo
}

/// The runtime's site-packages, empty: the smoke tests need no network.
struct Runtime(tempfile::TempDir);

impl Runtime {
    fn new() -> Runtime {
        Runtime(tempfile::tempdir().unwrap())
    }

    fn run(&self, repo: &Repo, args: &[&str]) -> support::Run {
        self.run_with(repo, args, &[])
    }

    fn run_with(&self, repo: &Repo, args: &[&str], env: &[(&str, &str)]) -> support::Run {
        let site = self.0.path().to_str().unwrap();
        let mut all = vec![("XTASK_RUNTIME_SITE", site)];
        all.extend_from_slice(env);
        repo.xtask_with(args, &all)
    }
}

const BUILD: &[&str] = &["build", "--builder", "host"];

fn report(repo: &Repo) -> String {
    String::from_utf8(repo.read("dist/report.html")).unwrap()
}

/// The attributes of the tag that starts at `tag`'s `<`.
fn attributes(tag: &str) -> BTreeMap<String, String> {
    let end = tag.find('>').expect("a whole tag");
    let mut rest = &tag[..end];
    let mut found = BTreeMap::new();
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].rsplit(' ').next().unwrap().to_string();
        let value_start = eq + 2;
        let value_end = value_start + rest[value_start..].find('"').unwrap();
        found.insert(name, rest[value_start..value_end].to_string());
        rest = &rest[value_end + 1..];
    }
    found
}

/// Every `<{element}…>` opening tag in `html` whose text starts with `start`.
fn tags<'a>(html: &'a str, start: &str) -> Vec<&'a str> {
    html.match_indices(start)
        .map(|(index, _)| &html[index..])
        .collect()
}

/// Each function section: its attributes and its HTML.
fn sections(html: &str) -> Vec<(BTreeMap<String, String>, &str)> {
    tags(html, "<section class=\"function\"")
        .into_iter()
        .map(|tag| {
            let end = tag.find("</section>").unwrap();
            (attributes(tag), &tag[..end])
        })
        .collect()
}

fn check_limits_totals(runtime: &Runtime, repo: &Repo) -> BTreeMap<String, u64> {
    let run = runtime.run(repo, &["check-limits", "--builder", "host", "--json"]);
    run.success();
    assert!(
        run.stderr().contains("report: dist/report.html"),
        "check-limits names the report:\n{}",
        run.stderr()
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    json["functions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, report)| (name.clone(), report["total_unzipped_bytes"].as_u64().unwrap()))
        .collect()
}

#[test]
fn the_same_build_writes_the_same_bytes_and_a_new_version_shows_in_changes() {
    let repo = app();
    let runtime = Runtime::new();
    runtime.run(&repo, BUILD).success();
    let path = repo.path().join("dist/report.html");
    let first = fs::read(&path).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    runtime.run(&repo, BUILD).success();
    assert_eq!(fs::read(&path).unwrap(), first, "a rebuild without changes");
    assert_eq!(
        fs::metadata(&path).unwrap().modified().unwrap(),
        mtime,
        "not rewritten"
    );
    // A no-op run skips rendering only while the page is intact.
    fs::write(&path, "edited by hand").unwrap();
    runtime.run(&repo, BUILD).success();
    assert_eq!(
        fs::read(&path).unwrap(),
        first,
        "a page edited by hand is written again"
    );

    let before = check_limits_totals(&runtime, &repo);
    repo.profile("core", &["tool==2.0"]);
    runtime.run(&repo, BUILD).success();
    let html = report(&repo);
    let after = check_limits_totals(&runtime, &repo);
    assert!(after["hello"] > before["hello"]);
    let changes = &html[html.find("<section id=\"changes\"").unwrap()..];
    let changes = &changes[..changes.find("</section>").unwrap()];
    assert!(changes.contains("data-previous=\"true\""), "{changes}");
    let delta = after["hello"] as i64 - before["hello"] as i64;
    assert!(
        changes.contains(&format!(
            "<li data-function=\"hello\" data-delta-bytes=\"{delta}\">"
        )),
        "{changes}"
    );
    assert!(changes.contains("tool 1.0 → 2.0 in layer core"), "{changes}");
    assert!(changes.contains("layer core +"), "{changes}");
    assert!(
        !changes.contains("data-function=\"bye\""),
        "bye did not change: {changes}"
    );

    // The comparison stays with the last different build.
    let second = fs::read(&path).unwrap();
    runtime.run(&repo, BUILD).success();
    assert_eq!(fs::read(&path).unwrap(), second);
}

#[test]
fn report_writes_it_again_and_a_failed_check_keeps_it() {
    let repo = app();
    let runtime = Runtime::new();
    runtime.run(&repo, BUILD).success();
    let path = repo.path().join("dist/report.html");
    let built = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();

    // `--open` with an opener that records what it was given.
    let bin = tempfile::tempdir().unwrap();
    let opened = bin.path().join("opened");
    let opener = bin.path().join("xdg-open");
    fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path_variable = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap());
    let run = runtime.run_with(
        &repo,
        &["report", "--builder", "host", "--open"],
        &[("PATH", path_variable.as_str())],
    );
    run.success();
    assert!(
        run.stderr().contains("report: dist/report.html (2 function(s))"),
        "{}",
        run.stderr()
    );
    assert_eq!(fs::read(&path).unwrap(), built, "the same page again");
    let given = fs::read_to_string(&opened).expect("xdg-open was run");
    assert!(Path::new(given.trim()).ends_with("dist/report.html"), "{given}");

    // Over the budget: check-limits fails, the report shows why.
    repo.set_metadata(&config("1 KiB").metadata());
    let run = runtime.run(&repo, BUILD);
    run.fails_with(1, "over the budget");
    let html = report(&repo);
    assert!(html.contains("<span class=\"badge bad\">check failed</span>"));
    assert!(html.contains("data-budget-bytes=\"1024\""));
    assert!(html.contains("is over the budget of 1.0 KiB"));

    // A layer that cannot be built: no manifest, so no report either.
    repo.profile("extra", &["bigsdk==9.9"]);
    let run = runtime.run(&repo, BUILD);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(!repo.path().join("dist/manifest.json").exists());
    assert!(!path.exists(), "the report went with the manifest");
    let run = runtime.run(&repo, &["report", "--builder", "host"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(!path.exists());
}

/// Tests that run functions under AWS's runtime interface client: ignored
/// by a plain `cargo test`, run by `-- --ignored needs_runtime`, and failed
/// by [`support::require_runtime`] where `XTASK_RUNTIME_CLIENT` names none.
mod needs_runtime {
    use super::*;

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_build_writes_a_self_contained_report_with_check_limits_totals() {
        support::require_runtime();
        let repo = app();
        let runtime = Runtime::new();
        let run = runtime.run(&repo, BUILD);
        run.success();
        assert!(
            run.stderr().contains("report: dist/report.html"),
            "{}",
            run.stderr()
        );
        let html = report(&repo);

        // Self-contained: nothing fetched, no path of this machine.
        for needle in [
            "http://",
            "https://",
            "<link",
            "<script src",
            "@import",
            "<img",
            "<iframe",
        ] {
            assert!(!html.contains(needle), "the report holds {needle:?}");
        }
        assert!(!html.contains(repo.path().to_str().unwrap()), "an absolute path");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<main id=\"report\" data-functions=\"2\">"));

        let totals = check_limits_totals(&runtime, &repo);
        let sections = sections(&html);
        let names: Vec<&str> = sections
            .iter()
            .map(|(attributes, _)| attributes["data-function"].as_str())
            .collect();
        assert_eq!(names, ["bye", "hello"], "every function, in name order");
        let manifest = repo.manifest();
        for (section, body) in &sections {
            let name = &section["data-function"];
            assert_eq!(section["id"], format!("function-{name}"));
            let total: u64 = section["data-total-bytes"].parse().unwrap();
            assert_eq!(total, totals[name], "{name}: the total of check-limits");
            assert_eq!(section["data-limit-bytes"], "262144000");
            assert_eq!(section["data-budget-bytes"], "52428800");
            let init: f64 = section["data-init-ms"].parse().expect("an init time");
            assert!(init > 0.0);
            assert!(body.contains("<svg class=\"treemap\" role=\"img\" aria-label=\""));
            assert!(body.contains("<table class=\"figures\">"));

            // The parts, in Lambda's order, sum to the total.
            let parts: Vec<BTreeMap<String, String>> = tags(body, "<tr data-part=\"")
                .into_iter()
                .map(attributes)
                .filter(|row| row["data-part"] != "distribution")
                .collect();
            let layers: Vec<&str> = manifest["functions"][name.as_str()]["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|layer| layer.as_str().unwrap())
                .collect();
            let mut expected = vec![("function", name.as_str())];
            expected.extend(layers.iter().map(|layer| ("layer", *layer)));
            let got: Vec<(&str, &str)> = parts
                .iter()
                .map(|row| (row["data-part"].as_str(), row["data-name"].as_str()))
                .collect();
            assert_eq!(got, expected, "{name}");
            let sum: u64 = parts
                .iter()
                .map(|row| row["data-bytes"].parse::<u64>().unwrap())
                .sum();
            assert_eq!(sum, total, "{name}: the parts add up");
            for row in &parts[1..] {
                let layer = &manifest["layers"][row["data-name"].as_str()];
                assert_eq!(row["data-bytes"], layer["unzipped_bytes"].to_string());
            }
        }

        // hello's distributions, each with the manifest's size; bigsdk is
        // unused, and tool's files ship in core and extra both.
        let hello = sections
            .iter()
            .find(|(a, _)| a["data-function"] == "hello")
            .unwrap()
            .1;
        let distributions: Vec<BTreeMap<String, String>> =
            tags(hello, "<tr class=\"sub\" data-part=\"distribution\"")
                .into_iter()
                .map(attributes)
                .collect();
        let listed: Vec<(&str, &str)> = distributions
            .iter()
            .map(|row| (row["data-layer"].as_str(), row["data-name"].as_str()))
            .collect();
        assert_eq!(listed, [("core", "tool"), ("extra", "bigsdk"), ("extra", "tool")]);
        for row in &distributions {
            let packages = manifest["layers"][row["data-layer"].as_str()]["packages"]
                .as_array()
                .unwrap();
            let package = packages
                .iter()
                .find(|p| p["name"] == row["data-name"].as_str())
                .unwrap();
            assert_eq!(row["data-bytes"], package["unzipped_bytes"].to_string());
        }
        assert!(hello.contains("<g class=\"group unused\""), "bigsdk is hatched");
        assert!(hello.contains("Unused (hatched): bigsdk 1.0 in layer <code>extra</code>"));
        assert!(
            hello.contains("<g class=\"leaf twice\">"),
            "tool's files are marked"
        );
        assert!(hello.contains("in each of the layers core, extra; extra's copy runs"));
        assert!(hello.contains("<line class=\"limit\" data-bytes=\"262144000\""));
        assert!(hello.contains("<line class=\"budget\" data-bytes=\"52428800\""));

        // The first report has nothing to compare with.
        assert!(html.contains("<section id=\"changes\" data-previous=\"false\">"));
        assert!(html.contains("No previous build to compare with"));

        // A dry run does not count it as a stray.
        let dry = runtime.run(&repo, &["build", "--builder", "host", "--dry-run"]);
        dry.success();
        assert!(!dry.stdout().contains("report.html"), "{}", dry.stdout());
    }
}
