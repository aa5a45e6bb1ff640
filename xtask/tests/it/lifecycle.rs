//! The runtime lifecycle as a build gate: a function on a deprecated
//! runtime is built with a warning naming the runtime's dates, the
//! functions on it and the runtime to move to; once AWS blocks updates to
//! it, the build stops with exit 2 unless the function allows it.
//! `XTASK_TODAY` stands in for the day, so every test but the first gives
//! the same answer whatever the calendar says.

use crate::support::{App, Repo};

/// The standard application and `legacy`, a function like `hello` on
/// python3.9 (deprecated 2025-12-15; AWS blocks updates from 2027-03-03).
fn config() -> App {
    App::standard()
        .function("legacy", "legacy.lambda_handler", &["shared"])
        .key("functions.legacy", "runtime = \"python3.9\"")
}

fn app(config: &App) -> Repo {
    let repo = config.repo();
    repo.write(
        "lambdas/legacy/legacy.py",
        "import shared\n\n\ndef lambda_handler(event, context):\n    return shared.NAME\n",
    );
    repo
}

const WARNING: &str = "runtime python3.9 is";
const DATES: &str = "AWS deprecated it on 2025-12-15, blocks creating functions on it from 2027-02-01 and updating them from 2027-03-03";

#[test]
fn a_python39_function_is_warned_about_today() {
    // The real calendar: python3.9 is past its deprecation for good, so the
    // warning is there whatever today is (and the build fails after its
    // block-update date, which the other tests pin).
    let repo = app(&config());
    let run = repo.xtask(&["build", "--dry-run"]);
    let stderr = run.stderr();
    assert!(stderr.contains(WARNING), "{stderr}");
    assert!(stderr.contains(DATES), "{stderr}");
    assert!(stderr.contains("used by legacy:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_deprecated_runtime_warns_and_builds() {
    let repo = app(&config());
    let run = repo.xtask_with(&["package", "--quiet"], &[("XTASK_TODAY", "2026-12-07")]);
    run.success();
    let stderr = run.stderr();
    assert_eq!(stderr.matches(WARNING).count(), 1, "once per runtime:\n{stderr}");
    assert!(
        stderr.contains("runtime python3.9 is deprecated as of 2026-12-07"),
        "{stderr}"
    );
    assert!(stderr.contains(DATES), "{stderr}");
    assert!(
        stderr.contains("used by legacy: move to python3.11 or newer"),
        "{stderr}"
    );
    assert!(repo.path().join("dist/functions/legacy.zip").is_file());
    // The day before its deprecation, nothing to say.
    let run = repo.xtask_with(&["package"], &[("XTASK_TODAY", "2025-12-14")]);
    run.success();
    assert!(!run.stderr().contains(WARNING), "{}", run.stderr());
}

#[test]
fn past_its_block_update_date_the_build_stops_unless_the_function_allows_it() {
    let repo = app(&config());
    let blocked = [("XTASK_TODAY", "2027-03-03")];
    for command in ["build", "package"] {
        let run = repo.xtask_with(&[command, "--dry-run"], &blocked);
        run.fails_with(
            2,
            "Cargo.toml: workspace.metadata.lambda.functions.legacy: runtime python3.9 is blocked from updates since 2027-03-03",
        );
        let stderr = run.stderr();
        assert!(
            stderr.contains("set `runtime = \"python3.11\"` (or newer) in [workspace.metadata.lambda.functions.legacy], or set `allow_deprecated_runtime = true` there"),
            "{stderr}"
        );
        assert!(stderr.contains(WARNING), "the warning comes first:\n{stderr}");
    }
    // A day earlier it still builds.
    repo.xtask_with(&["package"], &[("XTASK_TODAY", "2027-03-02")])
        .success();

    repo.set_metadata(
        &config()
            .key("functions.legacy", "allow_deprecated_runtime = true")
            .metadata(),
    );
    let run = repo.xtask_with(&["package"], &blocked);
    run.success();
    assert!(
        run.stderr()
            .contains("runtime python3.9 is deprecated and closed to updates as of 2027-03-03"),
        "still warned:\n{}",
        run.stderr()
    );
    assert!(repo.path().join("dist/functions/legacy.zip").is_file());

    // The repository's default, which the function's own key overrules.
    let global = config().setting("allow_deprecated_runtime = true");
    repo.set_metadata(&global.metadata());
    repo.xtask_with(&["package"], &blocked).success();
    repo.set_metadata(
        &global
            .key("functions.legacy", "allow_deprecated_runtime = false")
            .metadata(),
    );
    repo.xtask_with(&["package"], &blocked)
        .fails_with(2, "functions.legacy: runtime python3.9 is blocked from updates");
}

#[test]
fn a_bad_day_or_key_is_named() {
    let repo = app(&config());
    repo.xtask_with(&["build", "--dry-run"], &[("XTASK_TODAY", "2027-02-30")])
        .fails_with(2, "XTASK_TODAY: `2027-02-30` is not a date (write it YYYY-MM-DD");
    repo.set_metadata(
        &config()
            .key("functions.legacy", "allow_deprecated_runtime = \"yes\"")
            .metadata(),
    );
    repo.xtask(&["build", "--dry-run"])
        .fails_with(2, "functions.legacy.allow_deprecated_runtime");
}

#[test]
fn the_report_holds_each_functions_runtime_dates_and_the_same_bytes_on_any_day() {
    let repo = app(&config());
    let site = tempfile::tempdir().unwrap();
    let site = site.path().to_str().unwrap();
    let env = [("XTASK_RUNTIME_SITE", site), ("XTASK_TODAY", "2026-12-07")];
    repo.xtask_with(&["build", "--builder", "host"], &env).success();
    let html = String::from_utf8(repo.read("dist/report.html")).unwrap();
    assert!(
        html.contains("<p class=\"lifecycle muted\" data-runtime=\"python3.9\" data-deprecation=\"2025-12-15\" data-block-create=\"2027-02-01\" data-block-update=\"2027-03-03\">"),
        "{html}"
    );
    assert!(
        html.contains("<p class=\"lifecycle muted\" data-runtime=\"python3.11\" data-deprecation=\"2027-06-30\" data-block-create=\"\" data-block-update=\"\">"),
        "{html}"
    );
    assert!(html.contains("updating them from a date not yet published"));
    // The page holds no clock (its script works the status out where it is
    // read, see ci's Chromium stage): built on a later day, the same bytes.
    assert!(html.contains("p.setAttribute('data-status', status)"));
    let later = [("XTASK_RUNTIME_SITE", site), ("XTASK_TODAY", "2027-03-02")];
    repo.xtask_with(&["report", "--builder", "host"], &later)
        .success();
    assert_eq!(String::from_utf8(repo.read("dist/report.html")).unwrap(), html);
}
