//! `audit`'s work on plain values: what each function ships (read from the
//! manifest: every distribution of every layer it holds, and the runtime's
//! boto3 where it ships none of its own), the advisories that affect it
//! (one finding per advisory and its aliases, per distribution and
//! version), the ignores of `[audit]` applied, and the verdict at a
//! threshold. `dist/audit.json` is this value, for machines and the report.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::audit::{Audit as Policy, Date, Severity};
use crate::config::manifest::Manifest;
use crate::facts::{self, normalize_dist_name};
use crate::steps::osv::Advisory;

/// The "layer" the runtime's own boto3 comes from.
pub const RUNTIME: &str = "(runtime)";

/// One distribution at one version, and where it ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    pub name: String,
    pub version: String,
    /// `(function, layer)`, sorted.
    pub places: BTreeSet<(String, String)>,
}

/// Every distribution the `functions` ship, by normalised name and version.
pub fn shipped(manifest: &Manifest, functions: &[String]) -> BTreeMap<(String, String), Shipped> {
    let mut shipped: BTreeMap<(String, String), Shipped> = BTreeMap::new();
    let mut add = |name: &str, version: &str, function: &str, layer: &str| {
        let key = (normalize_dist_name(name), version.to_string());
        shipped
            .entry(key)
            .or_insert_with(|| Shipped {
                name: name.to_string(),
                version: version.to_string(),
                places: BTreeSet::new(),
            })
            .places
            .insert((function.to_string(), layer.to_string()));
    };
    let (runtime_name, runtime_version) = facts::RUNTIME_BOTO3
        .split_once("==")
        .expect("RUNTIME_BOTO3 is a pin");
    for function in functions {
        let Some(entry) = manifest.functions.get(function) else {
            continue;
        };
        let mut own_boto3 = false;
        for layer in entry.contents().iter().chain(&entry.bundled) {
            let packages = manifest.layers.get(layer).map(|layer| layer.packages.as_slice());
            for package in packages.unwrap_or_default() {
                own_boto3 |= normalize_dist_name(&package.name) == runtime_name;
                add(&package.name, &package.version, function, layer);
            }
        }
        if !own_boto3 {
            add(runtime_name, runtime_version, function, RUNTIME);
        }
    }
    shipped
}

/// A fingerprint of what ships, so that a recorded audit is shown only
/// for the build it checked.
pub fn shipped_sha256(shipped: &BTreeMap<(String, String), Shipped>) -> String {
    let mut hasher = crate::ground::digest::KeyHasher::default();
    for ((name, version), entry) in shipped {
        for (function, layer) in &entry.places {
            hasher.part("shipped", format!("{name}=={version} {function} {layer}"));
        }
    }
    hasher.hex()
}

/// The names and versions to ask a source about.
pub fn wanted(shipped: &BTreeMap<(String, String), Shipped>) -> BTreeMap<String, BTreeSet<String>> {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, version) in shipped.keys() {
        wanted.entry(name.clone()).or_default().insert(version.clone());
    }
    wanted
}

/// One advisory (with its aliases) affecting one distribution at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: String,
    pub distribution: String,
    pub version: String,
    /// The versions that fix it, lowest first; empty: none known.
    pub fixed: Vec<String>,
    pub functions: Vec<String>,
    pub layers: Vec<String>,
    /// An ignore of `[audit]` that lets it pass (until its date, for its reason).
    pub ignored: Option<IgnoreState>,
    /// Whether it fails the verdict.
    pub fails: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreState {
    pub reason: String,
    pub until: String,
    /// Past its date: the finding counts again.
    pub expired: bool,
}

/// What `audit` found, as written to `dist/audit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    /// Where the advisories came from.
    pub source: String,
    /// The day it ran (UTC), which decides whether an ignore has expired.
    pub checked_on: String,
    /// The threshold, `null`: none (no finding fails).
    pub deny: Option<String>,
    pub functions: Vec<String>,
    pub distributions: usize,
    pub shipped_sha256: String,
    pub findings: Vec<Finding>,
    /// Ignores that match no finding: stale, or mistyped.
    pub unused_ignores: Vec<String>,
}

/// The findings of `advisories` in `shipped`, with `policy`'s ignores
/// applied as of `today`, judged at `deny`.
pub fn judge(
    shipped: &BTreeMap<(String, String), Shipped>,
    advisories: &[Advisory],
    policy: &Policy,
    deny: Option<Severity>,
    today: Date,
) -> (Vec<Finding>, Vec<String>) {
    let mut findings = Vec::new();
    for ((name, version), entry) in shipped {
        let matched: Vec<Matched> = advisories
            .iter()
            .filter_map(|advisory| Some((advisory, advisory.affects(name, version)?)))
            .collect();
        for group in alias_groups(&matched) {
            findings.push(finding(entry, &group, policy, deny, today));
        }
    }
    findings.sort_by(|a, b| {
        let severity = |finding: &Finding| std::cmp::Reverse(rank(&finding.severity));
        (severity(a), &a.distribution, &a.version, &a.id).cmp(&(
            severity(b),
            &b.distribution,
            &b.version,
            &b.id,
        ))
    });
    let unused = policy
        .ignore
        .iter()
        .filter(|ignore| {
            !findings
                .iter()
                .any(|finding| finding.id == ignore.id || finding.aliases.contains(&ignore.id))
        })
        .map(|ignore| ignore.id.clone())
        .collect();
    (findings, unused)
}

fn rank(severity: &str) -> u8 {
    // Unrated sorts with the most severe: it fails at every threshold.
    match Severity::parse(severity) {
        Some(severity) => severity as u8,
        None => u8::MAX,
    }
}

/// A matched advisory and the versions that fix it.
type Matched<'a> = (&'a Advisory, Vec<String>);

/// The matched advisories, grouped where one names another (or both name
/// the same alias): PYSEC, GHSA and CVE records of one flaw are one finding.
fn alias_groups<'a>(matched: &[Matched<'a>]) -> Vec<Vec<Matched<'a>>> {
    let names = |advisory: &Advisory| -> BTreeSet<String> {
        std::iter::once(advisory.id.clone())
            .chain(advisory.aliases.iter().cloned())
            .collect()
    };
    let mut groups: Vec<(BTreeSet<String>, Vec<Matched>)> = Vec::new();
    for (advisory, fixed) in matched {
        let mut own = names(advisory);
        let mut members = vec![(*advisory, fixed.clone())];
        // Merge every group this one touches.
        let mut at = 0;
        while at < groups.len() {
            if groups[at].0.is_disjoint(&own) {
                at += 1;
            } else {
                let (ids, more) = groups.remove(at);
                own.extend(ids);
                members.extend(more);
            }
        }
        groups.push((own, members));
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

fn finding(
    entry: &Shipped,
    group: &[Matched],
    policy: &Policy,
    deny: Option<Severity>,
    today: Date,
) -> Finding {
    let mut ids: Vec<&str> = group.iter().map(|(advisory, _)| advisory.id.as_str()).collect();
    // GitHub's id first (it carries the rating), then PyPI's own, then the rest.
    ids.sort_by_key(|id| {
        (
            !id.starts_with("GHSA-"),
            !id.starts_with("PYSEC-"),
            id.to_string(),
        )
    });
    let id = ids[0].to_string();
    let aliases: BTreeSet<String> = group
        .iter()
        .flat_map(|(advisory, _)| {
            std::iter::once(advisory.id.clone()).chain(advisory.aliases.iter().cloned())
        })
        .filter(|alias| *alias != id)
        .collect();
    let rated = group
        .iter()
        .map(|(advisory, _)| advisory.severity)
        .max()
        .unwrap_or(Severity::Unknown);
    let summary = ids
        .iter()
        .filter_map(|id| group.iter().find(|(advisory, _)| advisory.id == *id))
        .map(|(advisory, _)| advisory.summary.trim())
        .find(|summary| !summary.is_empty())
        .unwrap_or_default()
        .to_string();
    let mut fixed: Vec<String> = Vec::new();
    for (_, versions) in group {
        for version in versions {
            if !fixed.contains(version) {
                fixed.push(version.clone());
            }
        }
    }
    fixed.sort_by(|a, b| {
        use crate::python::version::Version;
        Version::parse(a).cmp(&Version::parse(b)).then_with(|| a.cmp(b))
    });
    let ignored = policy
        .ignore
        .iter()
        .find(|ignore| ignore.id == id || aliases.contains(&ignore.id))
        .map(|ignore| IgnoreState {
            reason: ignore.reason.clone(),
            until: ignore.until.to_string(),
            expired: today > ignore.until,
        });
    let silenced = ignored.as_ref().is_some_and(|ignore| !ignore.expired);
    let fails = !silenced && deny.is_some_and(|deny| rated.fails_at(deny));
    let functions: BTreeSet<String> = entry
        .places
        .iter()
        .map(|(function, _)| function.clone())
        .collect();
    let layers: BTreeSet<String> = entry.places.iter().map(|(_, layer)| layer.clone()).collect();
    Finding {
        id,
        aliases: aliases.into_iter().collect(),
        summary,
        severity: rated.name().to_string(),
        distribution: entry.name.clone(),
        version: entry.version.clone(),
        fixed,
        functions: functions.into_iter().collect(),
        layers: layers.into_iter().collect(),
        ignored,
        fails,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::audit::Ignore;
    use crate::steps::osv::{Affected, Event};

    fn advisory(id: &str, aliases: &[&str], severity: Severity, fixed: &str) -> Advisory {
        Advisory {
            id: id.to_string(),
            aliases: aliases.iter().map(|alias| alias.to_string()).collect(),
            summary: format!("summary of {id}"),
            severity,
            affected: vec![Affected {
                name: "tool".to_string(),
                versions: Vec::new(),
                ranges: vec![vec![Event::Introduced("0".into()), Event::Fixed(fixed.into())]],
            }],
        }
    }

    fn shipped_tool() -> BTreeMap<(String, String), Shipped> {
        let mut places = BTreeSet::new();
        places.insert(("hello".to_string(), "core".to_string()));
        places.insert(("other".to_string(), "core".to_string()));
        BTreeMap::from([(
            ("tool".to_string(), "1.0".to_string()),
            Shipped {
                name: "Tool".to_string(),
                version: "1.0".to_string(),
                places,
            },
        )])
    }

    const TODAY: Date = Date {
        year: 2026,
        month: 12,
        day: 7,
    };

    #[test]
    fn aliases_make_one_finding_with_the_highest_rating() {
        let advisories = [
            advisory(
                "PYSEC-2026-1",
                &["CVE-2026-1", "GHSA-aaaa-bbbb-cccc"],
                Severity::Unknown,
                "1.2",
            ),
            advisory("GHSA-aaaa-bbbb-cccc", &["CVE-2026-1"], Severity::High, "1.1"),
            advisory("GHSA-zzzz-zzzz-zzzz", &[], Severity::Low, "2.0"),
        ];
        let (findings, unused) = judge(
            &shipped_tool(),
            &advisories,
            &Policy::default(),
            Some(Severity::High),
            TODAY,
        );
        assert_eq!(findings.len(), 2, "{findings:#?}");
        let first = &findings[0];
        assert_eq!(first.id, "GHSA-aaaa-bbbb-cccc");
        assert_eq!(first.aliases, ["CVE-2026-1", "PYSEC-2026-1"]);
        assert_eq!((first.severity.as_str(), first.fails), ("HIGH", true));
        assert_eq!(first.fixed, ["1.1", "1.2"]);
        assert_eq!(first.functions, ["hello", "other"]);
        assert_eq!(first.layers, ["core"]);
        assert_eq!((findings[1].severity.as_str(), findings[1].fails), ("LOW", false));
        assert!(unused.is_empty());
    }

    #[test]
    fn an_ignore_holds_until_its_date_by_id_or_alias() {
        let advisories = [advisory(
            "GHSA-aaaa-bbbb-cccc",
            &["CVE-2026-1"],
            Severity::Critical,
            "1.1",
        )];
        let ignore = |until: Date| Policy {
            deny: None,
            ignore: vec![
                Ignore {
                    id: "CVE-2026-1".into(),
                    reason: "not reachable".into(),
                    until,
                },
                Ignore {
                    id: "GHSA-none".into(),
                    reason: "old".into(),
                    until,
                },
            ],
        };
        let (findings, unused) = judge(
            &shipped_tool(),
            &advisories,
            &ignore(TODAY),
            Some(Severity::Low),
            TODAY,
        );
        assert!(!findings[0].fails, "the last day still holds");
        assert_eq!(unused, ["GHSA-none"]);
        let yesterday = Date { day: 6, ..TODAY };
        let (findings, _) = judge(
            &shipped_tool(),
            &advisories,
            &ignore(yesterday),
            Some(Severity::Low),
            TODAY,
        );
        assert!(findings[0].fails && findings[0].ignored.as_ref().unwrap().expired);
    }

    #[test]
    fn without_a_threshold_nothing_fails() {
        let advisories = [advisory("MAL-2026-1", &[], Severity::Unknown, "9")];
        let (findings, _) = judge(&shipped_tool(), &advisories, &Policy::default(), None, TODAY);
        assert!(!findings[0].fails);
        let (findings, _) = judge(
            &shipped_tool(),
            &advisories,
            &Policy::default(),
            Some(Severity::Critical),
            TODAY,
        );
        assert!(findings[0].fails, "unrated fails at every threshold");
    }
}
