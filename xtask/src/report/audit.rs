//! What `audit` shows: each finding, the summary line, and the named skip;
//! and what the report shows of the last audit (`dist/audit.json`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::manifest::Manifest;
use crate::config::Config;
use crate::steps::audit::{self, Finding, Outcome};
use crate::steps::osv::{Source, DB_VARIABLE};

/// What the report knows of advisories for the build it shows.
#[derive(Debug, Clone, Serialize)]
pub(crate) enum Shown {
    /// No `dist/audit.json` (or one this version cannot read).
    NotAudited,
    /// One that checked other distributions than the manifest ships.
    Stale {
        checked_on: String,
    },
    Audited(Outcome),
}

/// `dist/audit.json`, when it describes what `manifest` ships.
pub(crate) fn recorded(config: &Config, manifest: &Manifest) -> Shown {
    let Some(outcome) = std::fs::read(config.audit_path())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Outcome>(&bytes).ok())
    else {
        return Shown::NotAudited;
    };
    let now = audit::shipped_sha256(&audit::shipped(manifest, &outcome.functions));
    let every = outcome
        .functions
        .iter()
        .all(|name| manifest.functions.contains_key(name));
    if now == outcome.shipped_sha256 && every {
        Shown::Audited(outcome)
    } else {
        Shown::Stale {
            checked_on: outcome.checked_on,
        }
    }
}

/// The one line of an audit that had no advisory database to ask.
pub fn skipped(source: &Source, why: &str) -> String {
    match source {
        Source::Api(_) => format!(
            "audit: skipped: no advisory database: OSV's API unreachable ({why}) and {DB_VARIABLE} not set"
        ),
        Source::Export(path) => format!("audit: skipped: no advisory database: {}: {why}", path.display()),
    }
}

/// Every finding, most severe first, then the summary line.
pub fn findings(outcome: &Outcome, records: usize, withdrawn: usize) -> String {
    let mut text = String::new();
    for finding in &outcome.findings {
        text.push_str(&finding_lines(finding, outcome.deny.as_deref()));
    }
    let mut by_severity: BTreeMap<&str, usize> = BTreeMap::new();
    for finding in &outcome.findings {
        *by_severity.entry(finding.severity.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = ["CRITICAL", "HIGH", "MODERATE", "LOW", "UNKNOWN"]
        .iter()
        .filter_map(|name| by_severity.get(name).map(|count| format!("{count} {name}")))
        .collect();
    let ignored = outcome
        .findings
        .iter()
        .filter(|finding| finding.ignored.as_ref().is_some_and(|ignore| !ignore.expired))
        .count();
    let failing = outcome.findings.iter().filter(|finding| finding.fails).count();
    let verdict = match &outcome.deny {
        Some(deny) => format!("{failing} at or above {deny} (the threshold)"),
        None => "no threshold set (--deny or audit.deny): none fails".to_string(),
    };
    text.push_str(&format!(
        "audit: {} distribution(s) of {} function(s) against {} ({records} record(s) read, {withdrawn} withdrawn left out): {} finding(s){}; {ignored} ignored; {verdict}\n",
        outcome.distributions,
        outcome.functions.len(),
        outcome.source,
        outcome.findings.len(),
        if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) },
    ));
    text
}

fn finding_lines(finding: &Finding, deny: Option<&str>) -> String {
    let aliases = if finding.aliases.is_empty() {
        String::new()
    } else {
        format!(" ({})", finding.aliases.join(", "))
    };
    let mut text = format!(
        "{} {}{aliases}: {} {}\n",
        finding.severity, finding.id, finding.distribution, finding.version
    );
    if !finding.summary.is_empty() {
        text.push_str(&format!("  {}\n", finding.summary));
    }
    text.push_str(&format!(
        "  ships in {} (layers: {})\n",
        finding.functions.join(", "),
        finding.layers.join(", ")
    ));
    if finding.fixed.is_empty() {
        text.push_str("  fixed in: no fixed version known\n");
    } else {
        text.push_str(&format!("  fixed in: {}\n", finding.fixed.join(", ")));
    }
    match &finding.ignored {
        Some(ignore) if ignore.expired => text.push_str(&format!(
            "  ignore expired on {} ({}): it counts again\n",
            ignore.until, ignore.reason
        )),
        Some(ignore) => text.push_str(&format!("  ignored until {}: {}\n", ignore.until, ignore.reason)),
        None => {}
    }
    if finding.fails {
        text.push_str(&format!("  fails: at or above {}\n", deny.unwrap_or_default()));
    }
    text
}
