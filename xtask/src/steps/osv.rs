//! OSV advisories for PyPI: read from a local export (a folder of OSV
//! JSON records, or the ZIP OSV publishes per ecosystem) or asked of OSV's
//! API through curl, and matched against a distribution's version.
//!
//! The schema: https://ossf.github.io/osv-schema/ (`affected[].ranges` of
//! type `ECOSYSTEM`, evaluated as its "Evaluation" section says), read
//! 2026-12-07. An export is untrusted input: every record is read within a
//! size bound and one that is not an OSV record is an error naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::config::audit::Severity;
use crate::error::UsageError;
use crate::facts::normalize_dist_name;
use crate::python::version::Version;
use crate::store::curl;

/// Names a local OSV export: a folder of `<ID>.json` records, or OSV's
/// per-ecosystem `all.zip`.
pub const DB_VARIABLE: &str = "XTASK_OSV_DB";
/// OSV's API (default [`API`]): another base URL, e.g. a mirror.
pub const API_VARIABLE: &str = "XTASK_OSV_API";
pub const API: &str = "https://api.osv.dev";
/// The ecosystem of `affected[].package.ecosystem` the audit reads.
const ECOSYSTEM: &str = "PyPI";
/// The largest record read (the largest PyPI records are a few hundred KiB).
const RECORD_LIMIT: u64 = 16 << 20;
/// OSV's API takes at most this many queries in one batch.
const BATCH: usize = 1000;

/// Where advisories come from.
#[derive(Debug, Clone)]
pub enum Source {
    Export(PathBuf),
    Api(String),
}

impl Source {
    /// `XTASK_OSV_DB` when set, else OSV's API (`XTASK_OSV_API`, or OSV's own).
    pub fn from_env() -> Source {
        match std::env::var_os(DB_VARIABLE).filter(|value| !value.is_empty()) {
            Some(path) => Source::Export(PathBuf::from(path)),
            None => Source::Api(
                std::env::var(API_VARIABLE)
                    .ok()
                    .filter(|url| !url.is_empty())
                    .unwrap_or_else(|| API.to_string()),
            ),
        }
    }

    /// As output and `dist/audit.json` name it: an export by its path in
    /// the repository, else by its file name (no path of this machine).
    pub fn describe(&self, root: &Path) -> String {
        match self {
            Source::Export(path) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                let shown = match absolute.strip_prefix(root) {
                    Ok(inside) => inside.display().to_string(),
                    Err(_) => path.file_name().map_or_else(
                        || path.display().to_string(),
                        |name| name.to_string_lossy().into_owned(),
                    ),
                };
                format!("the OSV export {shown} ({DB_VARIABLE})")
            }
            // A mirror's URL may carry a credential: never into dist/audit.json.
            Source::Api(url) => format!("OSV's API at {}", crate::redact::urls(url)),
        }
    }
}

/// One advisory as the audit needs it: only its PyPI packages.
#[derive(Debug, Clone)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: Severity,
    pub affected: Vec<Affected>,
}

/// One `affected[]` entry of the PyPI ecosystem.
#[derive(Debug, Clone)]
pub struct Affected {
    /// PEP 503-normalised.
    pub name: String,
    pub versions: Vec<String>,
    /// Each `ECOSYSTEM` range's events, as written.
    pub ranges: Vec<Vec<Event>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
}

/// What a local export or the API gave for the distributions asked about.
#[derive(Debug, Default)]
pub struct Loaded {
    pub advisories: Vec<Advisory>,
    /// Records read (the whole export, or the API's answers).
    pub records: usize,
    /// Withdrawn advisories, left out.
    pub withdrawn: usize,
}

/// The answer of a source: advisories, or why there was none to ask.
pub enum Answer {
    Loaded(Loaded),
    Unreachable(String),
}

/// The advisories for `wanted` (name → the versions shipped) from `source`.
pub fn load(source: &Source, wanted: &BTreeMap<String, BTreeSet<String>>) -> Result<Answer> {
    match source {
        Source::Export(path) => read_export(path, wanted).map(Answer::Loaded),
        Source::Api(url) => ask_api(url, wanted),
    }
}

/// A folder (every `*.json` below it) or a ZIP of records.
fn read_export(path: &Path, wanted: &BTreeMap<String, BTreeSet<String>>) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut keep = |origin: &str, bytes: &[u8]| -> Result<()> {
        loaded.records += 1;
        match parse_record(bytes).map_err(|err| {
            UsageError::new(format!(
                "{DB_VARIABLE}: {origin}: not an OSV record: {err} (point it at a folder of OSV JSON files or OSV's all.zip for PyPI)"
            ))
        })? {
            Parsed::Withdrawn => loaded.withdrawn += 1,
            Parsed::Advisory(advisory) => {
                if advisory.affected.iter().any(|affected| wanted.contains_key(&affected.name)) {
                    loaded.advisories.push(advisory);
                }
            }
        }
        Ok(())
    };
    let metadata = std::fs::metadata(path).map_err(|err| {
        UsageError::new(format!(
            "{DB_VARIABLE}: {}: {err} (name a folder of OSV JSON files or OSV's all.zip for PyPI, or unset it to ask OSV's API)",
            path.display()
        ))
    })?;
    if metadata.is_dir() {
        let mut files = Vec::new();
        json_files(path, &mut files)?;
        files.sort();
        for file in files {
            let bytes = read_bounded(File::open(&file), &file.display().to_string())?;
            keep(&file.display().to_string(), &bytes)?;
        }
    } else {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|err| {
            UsageError::new(format!(
                "{DB_VARIABLE}: {}: neither a folder nor a ZIP of OSV records: {err}",
                path.display()
            ))
        })?;
        for index in 0..archive.len() {
            let entry = archive.by_index(index);
            let origin = format!("{} (entry {index})", path.display());
            let mut entry =
                entry.map_err(|err| UsageError::new(format!("{DB_VARIABLE}: {origin}: {err}")))?;
            let name = entry.name().unwrap_or_default().to_string();
            if entry.is_dir() || !name.ends_with(".json") {
                continue;
            }
            let origin = format!("{}: {name}", path.display());
            let bytes = read_bounded(Ok(&mut entry), &origin)?;
            keep(&origin, &bytes)?;
        }
    }
    Ok(loaded)
}

fn json_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() {
            json_files(&path, files)?;
        } else if path.extension().is_some_and(|extension| extension == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// At most [`RECORD_LIMIT`] bytes of a record, counted as read.
fn read_bounded(reader: std::io::Result<impl Read>, origin: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .and_then(|reader| reader.take(RECORD_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|err| UsageError::new(format!("{DB_VARIABLE}: {origin}: {err}")))?;
    if bytes.len() as u64 > RECORD_LIMIT {
        return Err(UsageError::new(format!(
            "{DB_VARIABLE}: {origin}: more than {RECORD_LIMIT} bytes, larger than any OSV record"
        ))
        .into());
    }
    Ok(bytes)
}

/// Asks OSV's API which advisories affect each shipped version
/// (`querybatch`), then fetches each one (`vulns/<id>`).
fn ask_api(base: &str, wanted: &BTreeMap<String, BTreeSet<String>>) -> Result<Answer> {
    let queries: Vec<Value> = wanted
        .iter()
        .flat_map(|(name, versions)| {
            versions.iter().map(move |version| {
                serde_json::json!({"package": {"name": name, "ecosystem": ECOSYSTEM}, "version": version})
            })
        })
        .collect();
    let base = base.trim_end_matches('/');
    let mut ids = BTreeSet::new();
    for chunk in queries.chunks(BATCH) {
        let body = serde_json::json!({ "queries": chunk }).to_string();
        let answer = match request(&format!("{base}/v1/querybatch"), Some(&body))? {
            Ok(answer) => answer,
            Err(why) => return Ok(Answer::Unreachable(why)),
        };
        for result in answer["results"].as_array().into_iter().flatten() {
            for vuln in result["vulns"].as_array().into_iter().flatten() {
                if let Some(id) = vuln["id"].as_str() {
                    ids.insert(id.to_string());
                }
            }
        }
    }
    let mut loaded = Loaded::default();
    for id in ids {
        let record = match request(&format!("{base}/v1/vulns/{id}"), None)? {
            Ok(record) => record,
            Err(why) => return Ok(Answer::Unreachable(why)),
        };
        loaded.records += 1;
        match parse_record(record.to_string().as_bytes())
            .with_context(|| format!("OSV's API answered {id} with something that is not an OSV record"))?
        {
            Parsed::Withdrawn => loaded.withdrawn += 1,
            Parsed::Advisory(advisory) => loaded.advisories.push(advisory),
        }
    }
    Ok(Answer::Loaded(loaded))
}

/// One request to the API: its JSON answer, or why there was none.
fn request(url: &str, body: Option<&str>) -> Result<Result<Value, String>> {
    let mut config = format!("url = {}\n", curl::quoted(url));
    if let Some(body) = body {
        config.push_str("request = \"POST\"\nheader = \"Content-Type: application/json\"\n");
        config.push_str(&format!("data-binary = {}\n", curl::quoted(body)));
    }
    let mut answer = Vec::new();
    let status = match curl::run(&config, &mut answer, RECORD_LIMIT, curl::max_time(RECORD_LIMIT)) {
        Ok(status) => status,
        Err(curl::Failure::Unavailable(why)) => return Ok(Err(format!("{url}: {why}"))),
        Err(curl::Failure::TooLarge) => {
            anyhow::bail!("{url}: the answer is larger than {RECORD_LIMIT} bytes")
        }
    };
    if status != 200 {
        return Ok(Err(format!("{url} answered HTTP {status}")));
    }
    let value = serde_json::from_slice(&answer).with_context(|| format!("{url}: the answer is not JSON"))?;
    Ok(Ok(value))
}

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    severity: Option<Vec<ScoreEntry>>,
    #[serde(default)]
    affected: Option<Vec<AffectedEntry>>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct ScoreEntry {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct AffectedEntry {
    #[serde(default)]
    package: Option<PackageEntry>,
    #[serde(default)]
    ranges: Option<Vec<RangeEntry>>,
    #[serde(default)]
    versions: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct PackageEntry {
    #[serde(default)]
    ecosystem: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct RangeEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<BTreeMap<String, String>>,
}

enum Parsed {
    Advisory(Advisory),
    Withdrawn,
}

fn parse_record(bytes: &[u8]) -> Result<Parsed, serde_json::Error> {
    let record: Record = serde_json::from_slice(bytes)?;
    if record.withdrawn.is_some() {
        return Ok(Parsed::Withdrawn);
    }
    let severity = record
        .database_specific
        .as_ref()
        .and_then(|specific| specific["severity"].as_str())
        .and_then(Severity::parse)
        .or_else(|| {
            record.severity.iter().flatten().find_map(|entry| {
                (entry.kind == "CVSS_V3")
                    .then(|| cvss3_rating(&entry.score))
                    .flatten()
            })
        })
        .unwrap_or(Severity::Unknown);
    let affected = record
        .affected
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| {
            let package = entry.package?;
            (package.ecosystem == ECOSYSTEM).then(|| Affected {
                name: normalize_dist_name(&package.name),
                versions: entry.versions.unwrap_or_default(),
                ranges: entry
                    .ranges
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|range| range.kind == "ECOSYSTEM")
                    .map(|range| range.events.into_iter().filter_map(event).collect())
                    .collect(),
            })
        })
        .collect();
    Ok(Parsed::Advisory(Advisory {
        id: record.id,
        aliases: record.aliases.unwrap_or_default(),
        summary: record.summary.unwrap_or_default(),
        severity,
        affected,
    }))
}

fn event(map: BTreeMap<String, String>) -> Option<Event> {
    let (kind, version) = map.into_iter().next()?;
    match kind.as_str() {
        "introduced" => Some(Event::Introduced(version)),
        "fixed" => Some(Event::Fixed(version)),
        "last_affected" => Some(Event::LastAffected(version)),
        _ => None,
    }
}

impl Advisory {
    /// Whether `version` of `name` (normalised) is affected; if so, the
    /// versions that fix it, lowest first.
    pub fn affects(&self, name: &str, version: &str) -> Option<Vec<String>> {
        let parsed = Version::parse(version);
        let mut affected = false;
        let mut fixed: Vec<(Option<Version>, String)> = Vec::new();
        for entry in self.affected.iter().filter(|entry| entry.name == name) {
            let listed = entry
                .versions
                .iter()
                .any(|listed| match (&parsed, Version::parse(listed)) {
                    (Some(parsed), Some(listed)) => *parsed == listed,
                    _ => listed == version,
                });
            let in_range = parsed
                .as_ref()
                .is_some_and(|parsed| entry.ranges.iter().any(|range| in_range(range, parsed)));
            if listed || in_range {
                affected = true;
                for event in entry.ranges.iter().flatten() {
                    if let Event::Fixed(text) = event {
                        let at = Version::parse(text);
                        let later = match (&at, &parsed) {
                            (Some(at), Some(parsed)) => at > parsed,
                            _ => true,
                        };
                        if later && !fixed.iter().any(|(_, known)| known == text) {
                            fixed.push((at, text.clone()));
                        }
                    }
                }
            }
        }
        fixed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        affected.then(|| fixed.into_iter().map(|(_, text)| text).collect())
    }
}

/// OSV's evaluation of one `ECOSYSTEM` range: its events in version
/// order, `introduced` opening, `fixed` (at or below the version) and
/// `last_affected` (below it) closing. A range with a version that is not
/// PEP 440 cannot be ordered, and matches nothing (the `versions` list still does).
fn in_range(events: &[Event], version: &Version) -> bool {
    let mut ordered: Vec<(Option<Version>, &Event)> = Vec::new();
    for event in events {
        let text = match event {
            Event::Introduced(text) | Event::Fixed(text) | Event::LastAffected(text) => text,
        };
        let at = match (event, text.as_str()) {
            (Event::Introduced(_), "0") => None,
            _ => match Version::parse(text) {
                Some(at) => Some(at),
                None => return false,
            },
        };
        ordered.push((at, event));
    }
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    let mut affected = false;
    for (at, event) in ordered {
        match (event, at) {
            (Event::Introduced(_), None) => affected = true,
            (Event::Introduced(_), Some(at)) if *version >= at => affected = true,
            (Event::Fixed(_), Some(at)) if *version >= at => affected = false,
            (Event::LastAffected(_), Some(at)) if *version > at => affected = false,
            _ => {}
        }
    }
    affected
}

/// The qualitative rating of a CVSS v3.0 or v3.1 vector's base score
/// (FIRST's specification, section 7.1 and 5: https://www.first.org/cvss/v3.1/specification-document).
fn cvss3_rating(vector: &str) -> Option<Severity> {
    let metrics: BTreeMap<&str, &str> = vector
        .split('/')
        .skip(1)
        .filter_map(|part| part.split_once(':'))
        .collect();
    if !vector.starts_with("CVSS:3.") {
        return None;
    }
    let changed = match *metrics.get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let value = |metric: &str, table: &[(&str, f64)]| -> Option<f64> {
        let given = metrics.get(metric)?;
        table
            .iter()
            .find(|(name, _)| name == given)
            .map(|(_, value)| *value)
    };
    let av = value("AV", &[("N", 0.85), ("A", 0.62), ("L", 0.55), ("P", 0.2)])?;
    let ac = value("AC", &[("L", 0.77), ("H", 0.44)])?;
    let pr = if changed {
        value("PR", &[("N", 0.85), ("L", 0.68), ("H", 0.5)])?
    } else {
        value("PR", &[("N", 0.85), ("L", 0.62), ("H", 0.27)])?
    };
    let ui = value("UI", &[("N", 0.85), ("R", 0.62)])?;
    let cia = [("H", 0.56), ("L", 0.22), ("N", 0.0)];
    let (c, i, a) = (value("C", &cia)?, value("I", &cia)?, value("A", &cia)?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    let score = if impact <= 0.0 {
        0.0
    } else if changed {
        roundup((1.08 * (impact + exploitability)).min(10.0))
    } else {
        roundup((impact + exploitability).min(10.0))
    };
    Some(match score {
        score if score >= 9.0 => Severity::Critical,
        score if score >= 7.0 => Severity::High,
        score if score >= 4.0 => Severity::Moderate,
        _ => Severity::Low,
    })
}

/// CVSS v3.1's Roundup: the smallest number of one decimal at or above.
fn roundup(value: f64) -> f64 {
    let scaled = (value * 100_000.0).round() as i64;
    if scaled % 10_000 == 0 {
        scaled as f64 / 100_000.0
    } else {
        (scaled / 10_000 + 1) as f64 / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advisory(affected: serde_json::Value) -> Advisory {
        let record = serde_json::json!({"id": "GHSA-test", "affected": affected});
        match parse_record(record.to_string().as_bytes()).unwrap() {
            Parsed::Advisory(advisory) => advisory,
            Parsed::Withdrawn => panic!("withdrawn"),
        }
    }

    fn range(events: serde_json::Value) -> Advisory {
        advisory(serde_json::json!([{
            "package": {"ecosystem": "PyPI", "name": "Some_Thing"},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
        }]))
    }

    #[test]
    fn introduced_and_fixed_bound_what_is_affected() {
        let advisory = range(serde_json::json!([
            {"introduced": "0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3.1"}
        ]));
        for (version, affected) in [
            ("0.1", true),
            ("1.4.9", true),
            ("1.5rc1", true),
            ("1.5", false),
            ("1.7", false),
            ("2.0.dev1", false),
            ("2.0", true),
            ("2.3", true),
            ("2.3.1", false),
            ("2.3.1.post1", false),
        ] {
            let found = advisory.affects("some-thing", version);
            assert_eq!(found.is_some(), affected, "{version}");
        }
        assert_eq!(advisory.affects("some-thing", "1.0").unwrap(), ["1.5", "2.3.1"]);
        assert_eq!(advisory.affects("some-thing", "2.1").unwrap(), ["2.3.1"]);
        assert!(advisory.affects("other", "1.0").is_none(), "another package");
    }

    #[test]
    fn last_affected_includes_its_own_version() {
        let advisory = range(serde_json::json!([{"introduced": "1.0"}, {"last_affected": "1.2"}]));
        assert!(advisory.affects("some-thing", "0.9").is_none());
        assert!(advisory.affects("some-thing", "1.2").is_some());
        assert!(advisory.affects("some-thing", "1.2.post1").is_none());
        assert!(
            advisory.affects("some-thing", "1!0.5").is_none(),
            "an epoch is later still"
        );
    }

    #[test]
    fn epochs_order_before_releases() {
        let advisory = range(serde_json::json!([{"introduced": "0"}, {"fixed": "1!1.0"}]));
        assert!(
            advisory.affects("some-thing", "2026.1").is_some(),
            "epoch 0 < epoch 1"
        );
        assert!(advisory.affects("some-thing", "1!1.0").is_none());
    }

    #[test]
    fn listed_versions_match_as_pep_440_spells_them() {
        let advisory = advisory(serde_json::json!([{
            "package": {"ecosystem": "PyPI", "name": "thing"},
            "versions": ["1.0", "1.1rc1", "weird-tag"],
        }, {
            "package": {"ecosystem": "npm", "name": "thing"},
            "versions": ["2.0"],
        }]));
        assert!(advisory.affects("thing", "1.0.0").is_some());
        assert!(advisory.affects("thing", "1.1rc1").is_some());
        assert!(advisory.affects("thing", "1.1").is_none());
        assert!(advisory.affects("thing", "weird-tag").is_some());
        assert!(
            advisory.affects("thing", "2.0").is_none(),
            "npm's entry is not PyPI's"
        );
    }

    #[test]
    fn severity_from_github_else_from_the_cvss_vector() {
        let parse = |record: serde_json::Value| match parse_record(record.to_string().as_bytes()).unwrap() {
            Parsed::Advisory(advisory) => advisory.severity,
            Parsed::Withdrawn => panic!("withdrawn"),
        };
        let github = serde_json::json!({"id": "G", "database_specific": {"severity": "MODERATE"}});
        assert_eq!(parse(github), Severity::Moderate);
        // 9.8, 7.5, 6.1 and 3.1 by FIRST's calculator.
        for (vector, severity) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Severity::Critical),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Severity::High),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", Severity::Moderate),
            ("CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", Severity::Low),
        ] {
            let record = serde_json::json!({"id": "P", "severity": [{"type": "CVSS_V3", "score": vector}]});
            assert_eq!(parse(record), severity, "{vector}");
        }
        let v4 = serde_json::json!({"id": "P", "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}]});
        assert_eq!(parse(v4), Severity::Unknown);
        assert_eq!(parse(serde_json::json!({"id": "M"})), Severity::Unknown);
    }

    #[test]
    fn withdrawn_advisories_are_left_out_and_bad_records_refused() {
        let withdrawn = serde_json::json!({"id": "W", "withdrawn": "2024-01-01T00:00:00Z"});
        assert!(matches!(
            parse_record(withdrawn.to_string().as_bytes()),
            Ok(Parsed::Withdrawn)
        ));
        assert!(parse_record(b"{\"summary\": \"no id\"}").is_err());
        assert!(parse_record(b"not json").is_err());
    }
}
