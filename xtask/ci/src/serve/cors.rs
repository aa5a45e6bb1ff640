//! "serve: CORS in Chromium": headless Chromium loads a page from a second
//! local origin (a static server on another port) whose script calls the
//! API through `cargo xtask serve --fakes` with `fetch(…, {credentials:
//! "include", headers: {Authorization: …}})`, a request the browser
//! preflights. serve runs with that origin in `ALLOWED_ORIGINS`: the
//! page's fetch succeeds and shows the status; the same page from an
//! origin not allowed (`localhost` instead of `127.0.0.1`) is blocked by
//! the browser, its fetch rejected with a TypeError. Both are read from
//! the DOM Chromium dumps, and the preflights from serve's log.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use xtask::config::Config;
use xtask::python::installer::InstallerChoice;

use super::clients::Tokens;
use super::fresh_dir;
use super::process::{command, Serve, Server};
use crate::browser::{find_chromium, run_chromium, CHROMIUM_NAMES};

/// The page: one credentialed fetch with an Authorization header, its
/// outcome written into `#result`.
const PAGE: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>serve: CORS</title></head>
<body><pre id="result">pending</pre>
<script>
const params = new URLSearchParams(location.search);
const show = (text) => { document.getElementById("result").textContent = text; };
fetch(params.get("api") + "/users", {
  credentials: "include",
  headers: {Authorization: "Bearer " + params.get("token")},
})
  .then(async (response) => {
    const body = await response.json();
    show(`status ${response.status} users ${(body.users || []).length}`);
  })
  .catch((error) => show(`rejected ${error.name}: ${error.message}`));
</script></body></html>
"#;

/// How long the page server may take to start.
const PAGE_SERVER_START: Duration = Duration::from_secs(30);

pub fn cors_in_chromium(sh: &Shell, config: &Config, installer: InstallerChoice, xtask: &Path) -> Result<()> {
    let Some((chromium, version)) = find_chromium() else {
        bail!(
            "no Chromium on PATH ({}): as root, apt-get install chromium",
            CHROMIUM_NAMES.join(", ")
        );
    };
    let python = xtask::lambda::dev_env::python(sh, config, installer)?;
    let work = fresh_dir(config, "serve-cors")?;
    let site = work.join("site");
    fs::create_dir_all(&site)?;
    fs::write(site.join("cors.html"), PAGE)?;
    let token = Tokens::sign(sh, &python, config)?.get("alice")?;

    let mut pages = command(sh, &python);
    pages
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&site);
    let pages = Server::start(
        pages,
        "the page server",
        &work.join("pages.log"),
        PAGE_SERVER_START,
    )?;
    // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    let page_port: u16 = pages
        .first_line
        .split(' ')
        .skip_while(|word| *word != "port")
        .nth(1)
        .and_then(|port| port.parse().ok())
        .with_context(|| {
            format!(
                "the page server's first line names no port: {:?}",
                pages.first_line
            )
        })?;
    let allowed = format!("http://127.0.0.1:{page_port}");
    let elsewhere = format!("http://localhost:{page_port}");

    let serve = Serve::start(
        sh,
        xtask,
        &["--env".to_string(), format!("ALLOWED_ORIGINS={allowed}")],
        &work.join("serve.log"),
    )?;
    let started = Instant::now();
    eprintln!("ci: loading the page in {version}: from {allowed} (allowed), then from {elsewhere}");
    let page = |origin: &str| format!("{origin}/cors.html?api={}&token={token}", serve.url);
    let from_allowed = result(&chromium, &work, &page(&allowed), "allowed")?;
    let from_elsewhere = result(&chromium, &work, &page(&elsewhere), "elsewhere")?;
    let log = serve.server.log_text();
    let problems = problems(&from_allowed, &from_elsewhere, &log);
    if !problems.is_empty() {
        bail!(
            "CORS through serve in Chromium:\n  {}\nthe end of serve's log:\n{}",
            problems.join("\n  "),
            serve.server.log_tail(15)
        );
    }
    drop(serve);
    drop(pages);
    eprintln!(
        "ci: CORS in Chromium: from {allowed} the fetch got {from_allowed:?}; from {elsewhere} the browser blocked it ({from_elsewhere:?}) after serve's 403 to the preflight ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

/// The page's `#result` once Chromium ran its script.
fn result(chromium: &Path, work: &Path, url: &str, name: &str) -> Result<String> {
    let dom = work.join(format!("{name}.dom.html"));
    run_chromium(
        chromium,
        work,
        &[
            "--no-proxy-server".to_string(),
            "--dump-dom".to_string(),
            url.to_string(),
        ],
        Some(&dom),
    )?;
    let html = fs::read_to_string(&dom).with_context(|| format!("reading {}", dom.display()))?;
    text_of_result(&html)
        .with_context(|| format!("no #result in the DOM Chromium dumped ({})", dom.display()))
}

/// The text of `<pre id="result">…</pre>`.
pub(super) fn text_of_result(html: &str) -> Option<String> {
    let start = html.find(r#"<pre id="result">"#)? + r#"<pre id="result">"#.len();
    let end = html[start..].find("</pre>")? + start;
    Some(html[start..end].trim().to_string())
}

/// What is not as it should be: the allowed origin's fetch answered 200
/// after serve answered its preflight 204; the other origin's rejected by
/// the browser after serve refused its preflight (403), its GET never sent.
pub(super) fn problems(from_allowed: &str, from_elsewhere: &str, log: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !from_allowed.starts_with("status 200 users ") {
        problems.push(format!(
            "the page from the allowed origin shows {from_allowed:?}, not \"status 200 users …\""
        ));
    }
    if !from_elsewhere.starts_with("rejected TypeError") {
        problems.push(format!(
            "the page from another origin shows {from_elsewhere:?}, not a fetch rejected with a TypeError"
        ));
    }
    let count = |start: &str| log.lines().filter(|line| line.starts_with(start)).count();
    for (line, wanted, why) in [
        ("OPTIONS /users -> 204", 1, "the allowed origin's preflight"),
        ("OPTIONS /users -> 403", 1, "the other origin's preflight"),
        (
            "GET /users -> 200",
            1,
            "the allowed origin's fetch (the other's never sent)",
        ),
        ("GET /users -> ", 1, "GET /users in all"),
    ] {
        let got = count(line);
        if got != wanted {
            problems.push(format!(
                "serve's log has {got} line(s) `{line}…` ({why}), not {wanted}"
            ));
        }
    }
    problems
}
