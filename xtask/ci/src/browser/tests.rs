use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use super::chromium::{file_url, run_bounded};
use super::contract::{compare, ExpectedFunction};
use super::page::parse;

/// A page as the contract has it, for `auth` (own code and two layers)
/// and `cors` (no layer).
const GOOD: &str = r#"<!DOCTYPE html>
<html><head><style>tr[data-part] { color: red } </style></head><body>
<main id="report" data-functions="2">
<!-- <section class="function" data-function="ghost"> -->
<section class="function" id="function-auth" data-function="auth" data-total-bytes="1600"
  data-limit-bytes="262144000" data-budget-bytes="" data-init-ms="12.5">
 <h2>auth</h2>
 <p class="lifecycle muted" data-runtime="python3.9" data-status="deprecated"><strong>Today: deprecated.</strong></p>
 <svg class="treemap" role="img" aria-label="auth: 1.6 KiB"><rect/></svg>
 <table class="figures"><tbody>
  <tr data-part="function" data-name="auth" data-bytes="100"><td>auth</td></tr>
  <tr data-part=layer data-name='core' data-bytes="500"><td>core</td></tr>
  <tr data-part="distribution" data-layer="core" data-name="requests" data-bytes="400"></tr>
  <tr data-part="layer" data-name="jwt" data-bytes="1000"><td>jwt &amp; friends</td></tr>
 </tbody></table>
</section>
<section class="function wide" id="function-cors" data-function="cors" data-total-bytes="70"
  data-limit-bytes="262144000" data-budget-bytes="5000000" data-init-ms="">
 <svg class="treemap" role="img" aria-label="cors"></svg>
 <table class="figures"><tr data-part="function" data-name="cors" data-bytes="70"></tr></table>
</section>
<section id="changes"><p>no previous build</p></section>
</main>
<script>const fake = '<tr data-part="layer" data-name="x" data-bytes="1">';</script>
</body></html>"#;

fn expected() -> BTreeMap<String, ExpectedFunction> {
    BTreeMap::from([
        (
            "auth".to_string(),
            ExpectedFunction {
                total: 1600,
                budget: None,
                own: 100,
                layers: vec![("core".to_string(), 500), ("jwt".to_string(), 1000)],
                status: Some("deprecated"),
            },
        ),
        (
            "cors".to_string(),
            ExpectedFunction {
                total: 70,
                budget: Some(5_000_000),
                own: 70,
                layers: Vec::new(),
                status: None,
            },
        ),
    ])
}

fn errors_of(html: &str) -> Vec<String> {
    compare(&parse(html), &expected()).err().unwrap_or_default()
}

#[test]
fn a_page_that_keeps_the_contract_passes() {
    let page = parse(GOOD);
    assert_eq!(page.sections.len(), 2, "{page:#?}");
    assert_eq!(page.sections[0].rows.len(), 4, "the script's string is no row");
    assert!(page.sections[0].treemap && page.changes);
    assert_eq!(page.sections[0].attributes["data-init-ms"], "12.5");
    assert_eq!(compare(&page, &expected()), Ok(()));
}

#[test]
fn the_dom_chromium_dumps_reads_the_same() {
    // Chromium writes attributes in double quotes, adds <tbody> and
    // escapes `&`; the page must read the same.
    let dumped = GOOD
        .replace(
            "data-part=layer data-name='core'",
            "data-part=\"layer\" data-name=\"core\"",
        )
        .replace(
            "<table class=\"figures\"><tr",
            "<table class=\"figures\"><tbody><tr",
        );
    assert_eq!(compare(&parse(&dumped), &expected()), Ok(()));
}

#[test]
fn a_missing_function_is_named() {
    let start = GOOD.find("<section class=\"function wide\"").unwrap();
    let end = GOOD.find("<section id=\"changes\"").unwrap();
    let html = format!("{}{}", &GOOD[..start], &GOOD[end..]);
    let errors = errors_of(&html);
    assert!(
        errors
            .iter()
            .any(|error| error == "function `cors`: no <section class=\"function\" data-function=\"cors\">"),
        "{errors:#?}"
    );
}

#[test]
fn a_function_the_manifest_lacks_is_named() {
    let html = GOOD.replace("data-functions=\"2\"", "data-functions=\"3\"").replace(
        "<section id=\"changes\">",
        "<section class=\"function\" data-function=\"zeta\" id=\"function-zeta\"></section><section id=\"changes\">",
    );
    let errors = errors_of(&html);
    assert!(
        errors
            .iter()
            .any(|error| error.contains("function `zeta`: a <section")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|error| error.contains("data-functions: expected 2 (the manifest's functions), found 3")),
        "{errors:#?}"
    );
}

#[test]
fn a_wrong_total_names_function_attribute_expected_and_found() {
    let html = GOOD.replace("data-total-bytes=\"1600\"", "data-total-bytes=\"1601\"");
    let errors = errors_of(&html);
    assert_eq!(
        errors[0],
        "function `auth`: data-total-bytes: expected \"1600\" (check-limits' total_unzipped_bytes), found \"1601\""
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn rows_that_do_not_sum_to_the_total_fail() {
    // The layer row disagrees with the manifest, and the sum with the total.
    let html = GOOD.replace(
        "data-name=\"jwt\" data-bytes=\"1000\"",
        "data-name=\"jwt\" data-bytes=\"999\"",
    );
    let errors = errors_of(&html);
    assert!(
        errors.iter().any(|error| error
            == "function `auth`: row layer `jwt`: data-bytes: expected 1000 (the manifest's layer unzipped_bytes), found 999"),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|error| error
            == "function `auth`: the table's function and layer rows sum to 1599 bytes: expected 1600 (check-limits' total_unzipped_bytes)"),
        "{errors:#?}"
    );
}

#[test]
fn a_missing_or_reordered_layer_row_fails() {
    let start = GOOD.find("<tr data-part=layer").unwrap();
    let end = GOOD[start..].find("</tr>").unwrap() + start + 5;
    let html = format!("{}{}", &GOOD[..start], &GOOD[end..]);
    let errors = errors_of(&html);
    assert!(
        errors.iter().any(|error| error.contains(
            "rows (data-part, data-name): expected function `auth`, layer `core`, layer `jwt`, found function `auth`, layer `jwt`"
        )),
        "{errors:#?}"
    );
}

#[test]
fn budget_limit_treemap_order_and_changes_are_checked() {
    let html = GOOD
        .replace("data-budget-bytes=\"5000000\"", "data-budget-bytes=\"\"")
        .replace(
            "<svg class=\"treemap\" role=\"img\" aria-label=\"cors\">",
            "<svg>",
        )
        .replace("<section id=\"changes\">", "<section>");
    let errors = errors_of(&html);
    assert!(errors.contains(
        &"function `cors`: data-budget-bytes: expected \"5000000\" (check-limits' budget_bytes), found \"\""
            .to_string()
    ));
    assert!(errors.contains(&"function `cors`: no <svg class=\"treemap\">".to_string()));
    assert!(errors
        .iter()
        .any(|error| error.starts_with("no <section id=\"changes\">")));

    let auth = GOOD
        .find("<section class=\"function\" id=\"function-auth\"")
        .unwrap();
    let cors = GOOD.find("<section class=\"function wide\"").unwrap();
    let changes = GOOD.find("<section id=\"changes\"").unwrap();
    let swapped = format!(
        "{}{}{}{}",
        &GOOD[..auth],
        &GOOD[cors..changes],
        &GOOD[auth..cors],
        &GOOD[changes..]
    );
    let errors = errors_of(&swapped);
    assert_eq!(
        errors,
        vec!["the function sections: expected name order [\"auth\", \"cors\"], found [\"cors\", \"auth\"]"]
    );
}

/// The runtime's status is the page script's to work out in the browser:
/// a page whose script did not run (no `data-status`), or worked it out
/// otherwise than the tool's rule, fails.
#[test]
fn a_runtime_status_the_script_did_not_give_as_the_tool_says_fails() {
    let unrun = GOOD.replace(" data-status=\"deprecated\"", "");
    assert!(
        errors_of(&unrun)
            .iter()
            .any(|e| e.contains("data-status: expected deprecated") && e.contains("found no data-status")),
        "{:?}",
        errors_of(&unrun)
    );
    let wrong = GOOD.replace("data-status=\"deprecated\"", "data-status=\"supported\"");
    assert!(
        errors_of(&wrong)
            .iter()
            .any(|e| e.contains("`auth`") && e.contains("found supported")),
        "{:?}",
        errors_of(&wrong)
    );
    let gone = GOOD.replace("<p class=\"lifecycle muted\"", "<p class=\"other\"");
    assert!(errors_of(&gone)
        .iter()
        .any(|e| e.contains("no <p class=\"lifecycle\">")));
}

/// The tool's rule on days around a runtime's dates, as the ci expects it.
#[test]
fn the_expected_status_follows_the_tools_dates() {
    use super::contract::runtime_status;
    assert_eq!(runtime_status("python3.10", (2026, 10, 30)), Some("supported"));
    assert_eq!(runtime_status("python3.10", (2026, 10, 31)), Some("deprecated"));
    assert_eq!(
        runtime_status("python3.10", (2027, 1, 15)),
        Some("blocked-update")
    );
    assert_eq!(runtime_status("python2.7", (2027, 1, 15)), None);
}

#[test]
fn not_the_report_at_all() {
    assert_eq!(
        errors_of("<html><body><p>Page not found</p></body></html>"),
        vec!["no <main id=\"report\">: not the report, or it did not load"]
    );
    assert_eq!(errors_of(""), errors_of("<main>"));
}

#[test]
fn attribute_values_are_decoded() {
    let page = parse(r#"<main id="report" data-x="a &amp; b &#60;&#x3e; &bogus c">"#);
    assert_eq!(page.main.unwrap()["data-x"], "a & b <> &bogus c");
}

#[test]
fn a_file_url_escapes_what_urls_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a report#1.html");
    fs::write(&file, "").unwrap();
    let url = file_url(&file).unwrap();
    assert!(
        url.starts_with("file:///") && url.ends_with("/a%20report%231.html"),
        "{url}"
    );
}

#[test]
fn a_run_that_hangs_is_stopped_with_its_helpers() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("helper.pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let started = Instant::now();
    let err = run_bounded(Command::new("sh").args(["-c", &script]), Duration::from_secs(1)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("did not finish in 1 s"), "{err:#}");
    let helper = fs::read_to_string(&pid_file).unwrap();
    let gone = || {
        fs::read_to_string(format!("/proc/{}/stat", helper.trim())).map_or(true, |stat| stat.contains(") Z "))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(), "the helper {} outlived the stop", helper.trim());
}
