//! `[workspace.metadata.lambda.audit]`: the severity at which `cargo xtask
//! audit` fails (`deny`) and the advisories it is told to let pass for a
//! while (`ignore`), each with a reason and an expiry date.

use serde_json::Value;

use super::table::Table;

/// An advisory's severity, in the words GitHub's advisory database (and
/// OSV's `database_specific.severity` from it) uses, lowest first.
/// `Unknown` stands for no rating at all, never for "low".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Unknown,
    Low,
    Moderate,
    High,
    Critical,
}

impl Severity {
    pub const NAMES: &'static str = "LOW, MODERATE, HIGH or CRITICAL";

    /// A threshold or a rating as written (any case; `MEDIUM` is `MODERATE`,
    /// as CVSS calls it). `Unknown` is no threshold.
    pub fn parse(text: &str) -> Option<Severity> {
        match text.trim().to_ascii_uppercase().as_str() {
            "LOW" => Some(Severity::Low),
            "MODERATE" | "MEDIUM" => Some(Severity::Moderate),
            "HIGH" => Some(Severity::High),
            "CRITICAL" => Some(Severity::Critical),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Moderate => "MODERATE",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Whether a finding of this severity fails at `threshold`. An
    /// advisory nobody rated cannot be shown to be below any threshold
    /// (a malicious package's has no rating), so it fails at every one.
    pub fn fails_at(self, threshold: Severity) -> bool {
        self == Severity::Unknown || self >= threshold
    }
}

/// A calendar date, `YYYY-MM-DD`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u64,
    pub month: u64,
    pub day: u64,
}

impl Date {
    /// `YYYY-MM-DD`, a day of the calendar.
    pub fn parse(text: &str) -> Option<Date> {
        crate::ground::utc::parse_day(text).map(Date::from_day)
    }

    /// A day as the runtime lifecycle gives it (`lifecycle::today`, which
    /// honours `XTASK_TODAY`).
    pub fn from_day((year, month, day): crate::ground::utc::Day) -> Date {
        Date {
            year: year.into(),
            month: month.into(),
            day: day.into(),
        }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// An advisory let pass until a date, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    /// The advisory's id or one of its aliases (`GHSA-…`, `PYSEC-…`, `CVE-…`).
    pub id: String,
    pub reason: String,
    /// The last day it applies (UTC); from the day after, the advisory counts again.
    pub until: Date,
}

/// What `audit` holds a build to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// A finding at or above it fails `audit` (`--deny` wins); `None`: none fails.
    pub deny: Option<Severity>,
    pub ignore: Vec<Ignore>,
}

/// `[audit]` of the top table.
pub(super) fn audit(top: &mut Table) -> Result<Audit, String> {
    let Some(value) = top.optional_table("audit")? else {
        return Ok(Audit::default());
    };
    let mut table = Table::new(&top.path("audit"), &value)?;
    let deny = match table.optional_str("deny")? {
        None => None,
        Some(text) => Some(Severity::parse(&text).ok_or_else(|| {
            format!(
                "{}: unknown severity `{text}` (use {})",
                table.path("deny"),
                Severity::NAMES
            )
        })?),
    };
    let example = "[{ id = \"GHSA-xxxx-xxxx-xxxx\", reason = \"not reachable: we never parse untrusted XML\", until = \"2027-01-31\" }]";
    let items = table.optional_list("ignore", example)?.unwrap_or_default();
    let mut ignore = Vec::new();
    for (at, item) in items.iter().enumerate() {
        ignore.push(ignore_item(&format!("{}[{at}]", table.path("ignore")), item)?);
    }
    table.finish()?;
    Ok(Audit { deny, ignore })
}

/// One `ignore` entry: all three keys are required, so that every advisory
/// let pass says why and stops passing on its own.
fn ignore_item(key: &str, value: &Value) -> Result<Ignore, String> {
    let mut table = Table::new(key, value).map_err(|_| {
        format!("{key}: expected a table {{ id = \"…\", reason = \"…\", until = \"YYYY-MM-DD\" }}")
    })?;
    let id = table.optional_str("id")?.filter(|id| !id.trim().is_empty());
    let reason = table
        .optional_str("reason")?
        .filter(|reason| !reason.trim().is_empty());
    let until = table.optional_str("until")?;
    table.finish()?;
    let id =
        id.ok_or_else(|| format!("{key}.id: missing (the advisory's id, e.g. \"GHSA-xxxx-xxxx-xxxx\")"))?;
    let reason = reason.ok_or_else(|| {
        format!("{key}.reason: missing (say why `{id}` may ship, e.g. \"the vulnerable function is never called\")")
    })?;
    let until = until.ok_or_else(|| {
        format!("{key}.until: missing (the last day `{id}` may be ignored, e.g. \"2027-01-31\")")
    })?;
    let until = Date::parse(&until)
        .ok_or_else(|| format!("{key}.until: `{until}` is not a date (YYYY-MM-DD, e.g. \"2027-01-31\")"))?;
    Ok(Ignore {
        id: id.trim().to_string(),
        reason,
        until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: serde_json::Value) -> Result<Audit, String> {
        let top = serde_json::json!({ "audit": value });
        let mut table = Table::new("t", &top).unwrap();
        audit(&mut table)
    }

    #[test]
    fn deny_and_ignores_are_read_and_checked() {
        let audit = parse(serde_json::json!({
            "deny": "high",
            "ignore": [{"id": "GHSA-aaaa-bbbb-cccc", "reason": "unused", "until": "2024-02-29"}],
        }))
        .unwrap();
        assert_eq!(audit.deny, Some(Severity::High));
        assert_eq!(audit.ignore[0].until.to_string(), "2024-02-29");
        for (value, needle) in [
            (
                serde_json::json!({"deny": "SEVERE"}),
                "t.audit.deny: unknown severity `SEVERE`",
            ),
            (
                serde_json::json!({"ignore": [{"id": "X", "until": "2027-01-01"}]}),
                "t.audit.ignore[0].reason: missing",
            ),
            (
                serde_json::json!({"ignore": [{"id": "X", "reason": "r"}]}),
                "t.audit.ignore[0].until: missing",
            ),
            (
                serde_json::json!({"ignore": [{"id": "X", "reason": "r", "until": "2023-02-29"}]}),
                "t.audit.ignore[0].until: `2023-02-29` is not a date",
            ),
            (
                serde_json::json!({"ignore": ["X"]}),
                "t.audit.ignore[0]: expected a table",
            ),
            (
                serde_json::json!({"denied": "LOW"}),
                "t.audit.denied: unknown key",
            ),
        ] {
            let err = parse(value.clone()).unwrap_err();
            assert!(err.starts_with(needle), "{value}: {err}");
        }
    }

    #[test]
    fn an_unrated_advisory_fails_at_every_threshold() {
        assert!(Severity::High.fails_at(Severity::Moderate));
        assert!(Severity::High.fails_at(Severity::High));
        assert!(!Severity::Moderate.fails_at(Severity::High));
        assert!(Severity::Unknown.fails_at(Severity::Critical));
    }
}
