//! `dist/report.html` in a real browser, a stage of `cargo xtask ci`:
//! headless Chromium (Debian's `chromium`, which `provision` installs) loads
//! the report, its DOM after the scripts ran is read back with
//! `--dump-dom` and held against the manifest and check-limits (every
//! function there, nothing else, every total and every row equal), and a
//! screenshot is left under the tool's cache for people to look at.
//!
//! The DOM contract the generator keeps: `<main id="report"
//! data-functions="N">`; per manifest function, in name order, `<section
//! class="function" id="function-NAME" data-function="NAME"
//! data-total-bytes="T" data-limit-bytes=".." data-budget-bytes="B or empty">`
//! holding an `<svg class="treemap">` and a table whose `<tr
//! data-part="function|layer" data-name=".." data-bytes="..">` rows (its own
//! code, then each attached layer in order) sum to T; a `<section
//! id="changes">`. The page is read with a small, tolerant scan of start
//! tags: the contract's attributes are all it needs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use xtask::config::manifest::Manifest;
use xtask::config::Config;
use xtask::facts::MAX_UNZIPPED_BYTES;
use xtask::progress::human_bytes;

/// The stage's name in `ci` (and in its list of skipped stages).
pub const STAGE: &str = "report in Chromium";

/// The names a Chromium goes by on PATH, Debian's first.
pub const CHROMIUM_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "chromium-headless-shell",
];

/// How long one Chromium run may take before it is stopped.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// The screenshot's viewport: a desktop width, tall enough for several
/// functions.
const WINDOW_SIZE: &str = "1280,2000";

/// A Chromium on PATH that starts (`--version` answers), and what it says
/// it is. Ubuntu's `chromium-browser` may be a stub asking for snap: it is
/// passed over.
pub fn find_chromium() -> Option<(PathBuf, String)> {
    CHROMIUM_NAMES.iter().find_map(|name| {
        let program = xtask::store::tools::which(Path::new(name))?;
        let mut command = Command::new(&program);
        command
            .arg("--version")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let (status, stdout) = run_bounded(&mut command, Duration::from_secs(10)).ok()?;
        let version = stdout.trim().to_string();
        (status.success() && !version.is_empty()).then_some((program, version))
    })
}

/// The stage: dist/report.html in headless Chromium, checked against
/// dist/manifest.json and `check-limits --json`, then a screenshot in
/// `target/lambda/report/report.png`.
pub fn report_in_browser(sh: &Shell, config: &Config) -> Result<()> {
    let Some((chromium, version)) = find_chromium() else {
        bail!(
            "no Chromium on PATH ({}): as root, apt-get install chromium",
            CHROMIUM_NAMES.join(", ")
        );
    };
    let report = config.dist_dir().join("report.html");
    if !report.is_file() {
        bail!("{} is missing: the build writes it", report.display());
    }
    let manifest: Manifest = serde_json::from_slice(
        &fs::read(config.manifest_path()).context("the build wrote no dist/manifest.json")?,
    )
    .context("reading dist/manifest.json")?;
    let xtask = crate::checks::xtask_binary(config);
    // Over a limit or not, check-limits prints every function's figures.
    let limits = cmd!(sh, "{xtask} check-limits --json --quiet")
        .ignore_status()
        .read()
        .context("running check-limits --json")?;
    let limits: serde_json::Value =
        serde_json::from_str(&limits).context("reading check-limits --json: not JSON")?;
    let expected = expected(&manifest, &limits)?;

    // Beside the report's own history; Chromium's profile, DOM and log in
    // a folder of their own.
    let shots = config.cache_dir().join("report");
    let work = shots.join("chromium");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let url = file_url(&report)?;
    eprintln!("ci: loading {url} in {version} ({})", chromium.display());
    let dom = work.join("report.dom.html");
    run_chromium(
        &chromium,
        &work,
        &["--dump-dom".to_string(), url.clone()],
        Some(&dom),
    )?;
    let html = fs::read_to_string(&dom).with_context(|| format!("reading {}", dom.display()))?;
    if html.trim().is_empty() {
        bail!("Chromium printed no DOM for {url}");
    }
    let page = parse(&html);
    if let Err(errors) = compare(&page, &expected) {
        bail!(
            "dist/report.html as Chromium shows it disagrees with the manifest and check-limits:\n  {}",
            errors.join("\n  ")
        );
    }
    for (name, function) in &expected {
        let mut parts = vec![format!("function {}", function.own)];
        parts.extend(
            function
                .layers
                .iter()
                .map(|(layer, bytes)| format!("{layer} {bytes}")),
        );
        eprintln!(
            "ci: report: `{name}` {} = {} bytes, as check-limits and the manifest say",
            human_bytes(function.total),
            parts.join(" + ")
        );
    }

    let screenshot = shots.join("report.png");
    let _ = fs::remove_file(&screenshot);
    run_chromium(
        &chromium,
        &work,
        &[
            format!("--screenshot={}", screenshot.display()),
            format!("--window-size={WINDOW_SIZE}"),
            "--hide-scrollbars".to_string(),
            url,
        ],
        None,
    )?;
    let written = fs::metadata(&screenshot).map(|meta| meta.len()).unwrap_or(0);
    if written == 0 {
        bail!("Chromium wrote no screenshot to {}", screenshot.display());
    }
    eprintln!(
        "ci: report in Chromium: {} functions, every total equal to check-limits' and the manifest's; screenshot: {}",
        expected.len(),
        screenshot.display()
    );
    Ok(())
}

/// `file://` and the absolute path, with what a URL cannot hold escaped.
fn file_url(path: &Path) -> Result<String> {
    let path = fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(url)
}

/// One headless Chromium run with a fresh profile under `work`, bounded
/// by [`CHROMIUM_TIMEOUT`]; stdout into `stdout` when given. Its chatter
/// (D-Bus, GPU) goes to a log shown only when it fails.
fn run_chromium(chromium: &Path, work: &Path, args: &[String], stdout: Option<&Path>) -> Result<()> {
    let profile = work.join("chromium-profile");
    let _ = fs::remove_dir_all(&profile);
    let log_path = work.join("chromium.log");
    let log = fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new(chromium);
    // As root Chromium refuses its sandbox; in containers /dev/shm is small.
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .args([
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        // Scripts run (in virtual time) before the DOM is dumped or drawn.
        .arg("--virtual-time-budget=5000")
        .args(args)
        .stderr(log);
    match stdout {
        Some(path) => {
            let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            command.stdout(file);
        }
        None => {
            command.stdout(Stdio::null());
        }
    }
    let status = run_bounded(&mut command, CHROMIUM_TIMEOUT);
    let _ = fs::remove_dir_all(&profile);
    let failed = match status {
        Ok((status, _)) if status.success() => return Ok(()),
        Ok((status, _)) => format!("Chromium failed ({status})"),
        Err(err) => format!("{err:#}"),
    };
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().filter(|line| !line.contains("dbus")).collect();
    let tail = &tail[tail.len().saturating_sub(15)..];
    bail!(
        "{failed}; the last of its log ({}):\n{}",
        log_path.display(),
        tail.join("\n")
    )
}

/// Runs `command` in a process group of its own; past `limit` the whole
/// group (the browser and its helpers) is asked to end, then the browser
/// itself is killed. What it printed on a piped stdout (a short answer:
/// nothing reads it before the end).
fn run_bounded(command: &mut Command, limit: Duration) -> Result<(ExitStatus, String)> {
    let mut child = command
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting Chromium")?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut stdout = String::new();
            if let Some(mut pipe) = child.stdout.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stdout)?;
            }
            return Ok((status, stdout));
        }
        if Instant::now() >= deadline {
            stop(&mut child);
            bail!("Chromium did not finish in {} s and was stopped", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-TERM", "--", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What the report must say of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFunction {
    /// check-limits' `total_unzipped_bytes`.
    pub total: u64,
    /// check-limits' `budget_bytes`.
    pub budget: Option<u64>,
    /// The manifest's `unzipped_bytes` of the function's own ZIP.
    pub own: u64,
    /// The manifest's attached layers, in order, with their `unzipped_bytes`.
    pub layers: Vec<(String, u64)>,
}

/// Every manifest function's figures, with check-limits' total and budget.
fn expected(manifest: &Manifest, limits: &serde_json::Value) -> Result<BTreeMap<String, ExpectedFunction>> {
    let mut expected = BTreeMap::new();
    for (name, entry) in &manifest.functions {
        let report = &limits["functions"][name];
        let Some(total) = report["total_unzipped_bytes"].as_u64() else {
            bail!("check-limits --json has no total_unzipped_bytes for function `{name}`");
        };
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let bytes = manifest
                .layers
                .get(layer)
                .map(|built| built.unzipped_bytes)
                .with_context(|| format!("function `{name}`: layer `{layer}` is not in the manifest"))?;
            layers.push((layer.clone(), bytes));
        }
        expected.insert(
            name.clone(),
            ExpectedFunction {
                total,
                budget: report["budget_bytes"].as_u64(),
                own: entry.zip.unzipped_bytes,
                layers,
            },
        );
    }
    Ok(expected)
}

/// A start tag's attributes, names in lower case, values decoded.
pub type Attributes = BTreeMap<String, String>;

/// What the DOM contract's reader finds in a page.
#[derive(Debug, Default)]
pub struct Page {
    /// `<main id="report">`'s attributes.
    pub main: Option<Attributes>,
    /// The `<section class="function">`s, in document order.
    pub sections: Vec<FunctionSection>,
    /// Whether a `<section id="changes">` is there.
    pub changes: bool,
}

#[derive(Debug, Default)]
pub struct FunctionSection {
    pub attributes: Attributes,
    /// Whether it holds an `<svg class="treemap">`.
    pub treemap: bool,
    /// Its `<tr data-part=..>` rows, in order.
    pub rows: Vec<Attributes>,
}

/// Reads the contract's elements from HTML: a scan of start and end tags
/// that skips comments and the bodies of scripts and styles, and takes any
/// quoting of attributes. A row belongs to the innermost open function
/// section.
pub fn parse(html: &str) -> Page {
    let bytes = html.as_bytes();
    let mut page = Page::default();
    // Open sections, innermost last: the index of a function's, or None.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut at = 0;
    while let Some(found) = html[at..].find('<') {
        at += found;
        let rest = &html[at..];
        if rest.starts_with("<!--") {
            at = rest.find("-->").map_or(html.len(), |end| at + end + 3);
            continue;
        }
        if let Some(after) = rest.strip_prefix("</") {
            let name = tag_name(after);
            if name == "section" {
                open.pop();
            }
            at = rest.find('>').map_or(html.len(), |end| at + end + 1);
            continue;
        }
        let name = tag_name(&rest[1..]);
        if name.is_empty() {
            // `<!DOCTYPE ...>`, `<?...>` or a stray `<`.
            at += 1;
            continue;
        }
        let (attributes, self_closing, end) = attributes(html, at + 1 + name.len());
        at = end;
        let current = open.iter().rev().flatten().next().copied();
        let has_class = |class: &str| {
            attributes
                .get("class")
                .is_some_and(|value| value.split_ascii_whitespace().any(|word| word == class))
        };
        match name.as_str() {
            "main" if attributes.get("id").map(String::as_str) == Some("report") => {
                page.main = Some(attributes);
            }
            "section" => {
                if has_class("function") {
                    page.sections.push(FunctionSection {
                        attributes,
                        ..FunctionSection::default()
                    });
                    open.push(Some(page.sections.len() - 1));
                } else {
                    if attributes.get("id").map(String::as_str) == Some("changes") {
                        page.changes = true;
                    }
                    open.push(None);
                }
                if self_closing {
                    open.pop();
                }
            }
            "svg" if has_class("treemap") => {
                if let Some(index) = current {
                    page.sections[index].treemap = true;
                }
            }
            "tr" if attributes.contains_key("data-part") => {
                if let Some(index) = current {
                    page.sections[index].rows.push(attributes);
                }
            }
            "script" | "style" if !self_closing => {
                let close = format!("</{name}");
                at = find_ignoring_case(bytes, close.as_bytes(), at).unwrap_or(html.len());
            }
            _ => {}
        }
    }
    page
}

/// The tag name at the start of `text`, in lower case (empty if none).
fn tag_name(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The attributes of the start tag whose name ends at `at`, whether it
/// closes itself, and where the tag ends.
fn attributes(html: &str, mut at: usize) -> (Attributes, bool, usize) {
    let bytes = html.as_bytes();
    let mut found = Attributes::new();
    let mut self_closing = false;
    let skip_space = |mut at: usize| {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        at
    };
    loop {
        at = skip_space(at);
        match bytes.get(at) {
            None => return (found, self_closing, html.len()),
            Some(b'>') => return (found, self_closing, at + 1),
            Some(b'/') => {
                self_closing = true;
                at += 1;
                continue;
            }
            Some(_) => self_closing = false,
        }
        let start = at;
        while at < bytes.len() && !bytes[at].is_ascii_whitespace() && !b"=>/".contains(&bytes[at]) {
            at += 1;
        }
        let name = html[start..at].to_ascii_lowercase();
        if name.is_empty() {
            // A stray `=`: step over it.
            at += 1;
            continue;
        }
        let after_name = skip_space(at);
        let mut value = String::new();
        if bytes.get(after_name) == Some(&b'=') {
            at = skip_space(after_name + 1);
            match bytes.get(at) {
                Some(&quote) if quote == b'"' || quote == b'\'' => {
                    let end = html[at + 1..]
                        .find(quote as char)
                        .map_or(html.len(), |end| at + 1 + end);
                    value = decode(&html[at + 1..end]);
                    at = (end + 1).min(html.len());
                }
                _ => {
                    let start = at;
                    while at < bytes.len() && !bytes[at].is_ascii_whitespace() && bytes[at] != b'>' {
                        at += 1;
                    }
                    value = decode(&html[start..at]);
                }
            }
        }
        found.entry(name).or_insert(value);
    }
}

fn find_ignoring_case(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..haystack.len().saturating_sub(needle.len() - 1))
        .find(|&at| haystack[at..at + needle.len()].eq_ignore_ascii_case(needle))
}

/// HTML's character references in an attribute value: the named ones a
/// serializer writes, and numeric ones.
fn decode(value: &str) -> String {
    if !value.contains('&') {
        return value.to_string();
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|&end| end <= 10);
        let decoded = end.and_then(|end| match &rest[1..end] {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            entity => {
                let number = entity.strip_prefix('#')?;
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => number.parse().ok()?,
                };
                char::from_u32(code)
            }
        });
        match (decoded, end) {
            (Some(c), Some(end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The page held against what it must say; every disagreement, each naming
/// the function, the attribute, what was expected and what was found.
pub fn compare(page: &Page, expected: &BTreeMap<String, ExpectedFunction>) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let Some(main) = &page.main else {
        return Err(vec![
            "no <main id=\"report\">: not the report, or it did not load".to_string(),
        ]);
    };
    let count = expected.len().to_string();
    let found = main.get("data-functions").map_or("nothing", String::as_str);
    if found != count {
        errors.push(format!(
            "<main id=\"report\">: data-functions: expected {count} (the manifest's functions), found {found}"
        ));
    }

    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for section in &page.sections {
        let Some(name) = section.attributes.get("data-function") else {
            errors.push("a <section class=\"function\"> without data-function".to_string());
            continue;
        };
        order.push(name.clone());
        if !seen.insert(name.clone()) {
            errors.push(format!(
                "function `{name}`: more than one <section class=\"function\">"
            ));
            continue;
        }
        match expected.get(name) {
            Some(function) => compare_function(name, section, function, &mut errors),
            None => errors.push(format!(
                "function `{name}`: a <section class=\"function\"> for a function the manifest does not have"
            )),
        }
    }
    for name in expected.keys() {
        if !seen.contains(name) {
            errors.push(format!(
                "function `{name}`: no <section class=\"function\" data-function=\"{name}\">"
            ));
        }
    }
    let mut sorted = order.clone();
    sorted.sort();
    if order != sorted {
        errors.push(format!(
            "the function sections: expected name order {sorted:?}, found {order:?}"
        ));
    }
    if !page.changes {
        errors.push("no <section id=\"changes\"> (the comparison with the previous build)".to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn compare_function(
    name: &str,
    section: &FunctionSection,
    function: &ExpectedFunction,
    errors: &mut Vec<String>,
) {
    let attribute = |key: &str| section.attributes.get(key).map(String::as_str);
    let mut expect = |key: &str, expected: &str, source: &str| {
        let found = attribute(key);
        if found != Some(expected) {
            let found = found.map_or("nothing".to_string(), |value| format!("\"{value}\""));
            errors.push(format!(
                "function `{name}`: {key}: expected \"{expected}\" ({source}), found {found}"
            ));
        }
    };
    expect("id", &format!("function-{name}"), "the contract");
    expect(
        "data-total-bytes",
        &function.total.to_string(),
        "check-limits' total_unzipped_bytes",
    );
    expect(
        "data-limit-bytes",
        &MAX_UNZIPPED_BYTES.to_string(),
        "Lambda's limit",
    );
    expect(
        "data-budget-bytes",
        &function
            .budget
            .map(|budget| budget.to_string())
            .unwrap_or_default(),
        "check-limits' budget_bytes",
    );
    if !section.treemap {
        errors.push(format!("function `{name}`: no <svg class=\"treemap\">"));
    }

    // The function's own row, then each layer's, as the manifest has them.
    let mut wanted = vec![("function", name.to_string(), function.own)];
    wanted.extend(
        function
            .layers
            .iter()
            .map(|(layer, bytes)| ("layer", layer.clone(), *bytes)),
    );
    let rows: Vec<&Attributes> = section
        .rows
        .iter()
        .filter(|row| {
            matches!(
                row.get("data-part").map(String::as_str),
                Some("function" | "layer")
            )
        })
        .collect();
    let describe = |row: &Attributes| {
        format!(
            "{} `{}`",
            row.get("data-part").map_or("", String::as_str),
            row.get("data-name").map_or("", String::as_str)
        )
    };
    let found_parts: Vec<String> = rows.iter().map(|row| describe(row)).collect();
    let wanted_parts: Vec<String> = wanted
        .iter()
        .map(|(part, name, _)| format!("{part} `{name}`"))
        .collect();
    if found_parts != wanted_parts {
        errors.push(format!(
            "function `{name}`: the table's function and layer rows (data-part, data-name): expected {}, found {}",
            wanted_parts.join(", "),
            if found_parts.is_empty() {
                "none".to_string()
            } else {
                found_parts.join(", ")
            }
        ));
    }
    let mut sum: u64 = 0;
    for row in &rows {
        let text = row.get("data-bytes").map_or("", String::as_str);
        let Ok(bytes) = text.parse::<u64>() else {
            errors.push(format!(
                "function `{name}`: row {}: data-bytes: expected a number of bytes, found \"{text}\"",
                describe(row)
            ));
            continue;
        };
        sum += bytes;
        let wanted = wanted.iter().find(|(part, wanted_name, _)| {
            row.get("data-part").map(String::as_str) == Some(part)
                && row.get("data-name").map(String::as_str) == Some(wanted_name.as_str())
        });
        if let Some((part, _, expected)) = wanted {
            if bytes != *expected {
                let source = if *part == "function" {
                    "the manifest's function unzipped_bytes"
                } else {
                    "the manifest's layer unzipped_bytes"
                };
                errors.push(format!(
                    "function `{name}`: row {}: data-bytes: expected {expected} ({source}), found {bytes}",
                    describe(row)
                ));
            }
        }
    }
    if !rows.is_empty() && sum != function.total {
        errors.push(format!(
            "function `{name}`: the table's function and layer rows sum to {sum} bytes: expected {} (check-limits' total_unzipped_bytes)",
            function.total
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page as the contract has it, for `auth` (own code and two layers)
    /// and `cors` (no layer).
    const GOOD: &str = r#"<!DOCTYPE html>
<html><head><style>tr[data-part] { color: red } </style></head><body>
<main id="report" data-functions="2">
<!-- <section class="function" data-function="ghost"> -->
<section class="function" id="function-auth" data-function="auth" data-total-bytes="1600"
  data-limit-bytes="262144000" data-budget-bytes="" data-init-ms="12.5">
 <h2>auth</h2>
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
                },
            ),
            (
                "cors".to_string(),
                ExpectedFunction {
                    total: 70,
                    budget: Some(5_000_000),
                    own: 70,
                    layers: Vec::new(),
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
                .any(|error| error
                    == "function `cors`: no <section class=\"function\" data-function=\"cors\">"),
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
            vec![
                "the function sections: expected name order [\"auth\", \"cors\"], found [\"cors\", \"auth\"]"
            ]
        );
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
            fs::read_to_string(format!("/proc/{}/stat", helper.trim()))
                .map_or(true, |stat| stat.contains(") Z "))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "the helper {} outlived the stop", helper.trim());
    }
}
