//! An OSV record as the audit reads it (its PyPI entries only), and whether
//! it affects a version.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::cvss;
use crate::config::audit::Severity;
use crate::facts::normalize_dist_name;
use crate::python::version::Version;

/// The ecosystem of `affected[].package.ecosystem` the audit reads.
pub(super) const ECOSYSTEM: &str = "PyPI";
/// The largest record read (the largest PyPI records are a few hundred KiB).
pub(super) const RECORD_LIMIT: u64 = 16 << 20;

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

pub(super) enum Parsed {
    Advisory(Advisory),
    Withdrawn,
}

pub(super) fn parse_record(bytes: &[u8]) -> Result<Parsed, serde_json::Error> {
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
                    .then(|| cvss::cvss3_rating(&entry.score))
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
