//! The runtime lifecycle as a build gate: where each function's runtime
//! stands in AWS's deprecation schedule on a given day (`facts::RUNTIMES`),
//! a warning per deprecated runtime, and a usage error for a function whose
//! runtime AWS no longer lets anyone update, unless the function says
//! `allow_deprecated_runtime = true`. The day is a parameter: the build
//! passes today's UTC date ([`today`]), tests any day they like.

use std::collections::BTreeMap;

use super::{Config, Function, TABLE};
use crate::facts::{self, Day, Lifecycle, Runtime};
use crate::ground::error::UsageError;
use crate::ground::utc::{format_day, parse_day};

/// The variable that stands in for today's date: `YYYY-MM-DD`, to see now
/// what a build will say on a coming block date.
pub const TODAY_VARIABLE: &str = "XTASK_TODAY";

/// Where a runtime stands on a day: each phase from its own date on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Supported,
    /// No longer patched; functions are still created and updated.
    Deprecated,
    /// No new function can use it; existing ones can still be updated.
    BlockedCreate,
    /// No function on it can be updated any more.
    BlockedUpdate,
}

impl Status {
    /// The status in words, for a warning.
    pub fn describe(self) -> &'static str {
        match self {
            Status::Supported => "supported",
            Status::Deprecated => "deprecated",
            Status::BlockedCreate => "deprecated and closed to new functions",
            Status::BlockedUpdate => "deprecated and closed to updates",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Supported => "supported",
            Status::Deprecated => "deprecated",
            Status::BlockedCreate => "blocked-create",
            Status::BlockedUpdate => "blocked-update",
        }
    }
}

/// The phase `lifecycle` is in on `day`: the last one whose date has come.
pub fn status(lifecycle: &Lifecycle, day: Day) -> Status {
    let reached = |date: Option<Day>| date.is_some_and(|date| date <= day);
    if reached(lifecycle.block_update) {
        Status::BlockedUpdate
    } else if reached(lifecycle.block_create) {
        Status::BlockedCreate
    } else if reached(lifecycle.deprecation) {
        Status::Deprecated
    } else {
        Status::Supported
    }
}

/// The oldest runtime the tool knows that is still supported on `day`: the
/// smallest step away from a deprecated one.
pub fn nearest_supported(day: Day) -> Option<Runtime> {
    facts::RUNTIMES
        .iter()
        .copied()
        .filter(|runtime| status(&runtime.lifecycle, day) == Status::Supported)
        .min_by_key(|runtime| runtime.python)
}

/// A date, or "not published" where AWS's table gives none yet.
pub fn format_date(date: Option<Day>) -> String {
    date.map_or_else(|| "not published".to_string(), format_day)
}

/// Today's UTC date, or the day `XTASK_TODAY` names (empty: unset, as the
/// other variables of the tool).
pub fn today() -> Result<Day, UsageError> {
    let value = std::env::var_os(TODAY_VARIABLE).map(|value| value.to_string_lossy().trim().to_string());
    if let Some(text) = value.filter(|text| !text.is_empty()) {
        return parse_day(&text).ok_or_else(|| {
            UsageError::new(format!(
                "{TODAY_VARIABLE}: `{text}` is not a date (write it YYYY-MM-DD, e.g. 2027-03-04, or unset it for today)"
            ))
        });
    }
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let now = crate::ground::utc::Utc::from_unix(seconds);
    // The calendar's numbers fit: years up to 65535, months and days up to 31.
    Ok((now.year as u16, now.month as u8, now.day as u8))
}

/// What the lifecycle says of a configuration on one day: a warning per
/// runtime past its deprecation that functions use, and the error of the
/// first function (by name) on a runtime blocked from updates that does not
/// allow it.
#[derive(Debug, Default)]
pub struct Verdict {
    pub warnings: Vec<String>,
    pub blocked: Option<UsageError>,
}

/// Judges every function's runtime on `day`.
pub fn judge(config: &Config, day: Day) -> Verdict {
    let mut by_runtime: BTreeMap<(u8, u8), (Runtime, Vec<&str>)> = BTreeMap::new();
    for function in config.functions.values() {
        let runtime = config.platform_of(function).runtime;
        by_runtime
            .entry(runtime.python)
            .or_insert_with(|| (runtime, Vec::new()))
            .1
            .push(&function.name);
    }
    let nearest = nearest_supported(day);
    let move_to = match nearest {
        Some(runtime) => format!("move to {} or newer", runtime.name),
        None => format!(
            "no runtime this tool knows is supported on {}: update the tool",
            format_day(day)
        ),
    };
    let mut verdict = Verdict::default();
    for (runtime, functions) in by_runtime.values() {
        let status = status(&runtime.lifecycle, day);
        if status == Status::Supported {
            continue;
        }
        let from = |date: Option<Day>| match date {
            Some(date) => format!("from {}", format_day(date)),
            None => "from a date not yet published".to_string(),
        };
        verdict.warnings.push(format!(
            "runtime {} is {} as of {}: AWS deprecated it {}, blocks creating functions on it {} and updating them {} (AWS's runtime table, read {}); used by {}: {move_to}",
            runtime.name,
            status.describe(),
            format_day(day),
            runtime.lifecycle.deprecation.map_or_else(|| "(no date)".to_string(), |date| format!("on {}", format_day(date))),
            from(runtime.lifecycle.block_create),
            from(runtime.lifecycle.block_update),
            format_day(facts::RUNTIME_LIFECYCLE_READ),
            functions.join(", "),
        ));
    }
    let blocked: Vec<&Function> = config
        .functions
        .values()
        .filter(|function| {
            let runtime = config.platform_of(function).runtime;
            status(&runtime.lifecycle, day) == Status::BlockedUpdate && !function.allow_deprecated_runtime
        })
        .collect();
    if let Some((function, others)) = blocked.split_first() {
        let runtime = config.platform_of(function).runtime;
        let key = format!("{TABLE}.functions.{}", function.name);
        let fix = match nearest {
            Some(nearest) => format!("set `runtime = \"{}\"` (or newer) in [{key}]", nearest.name),
            None => "update the tool for a runtime AWS still supports".to_string(),
        };
        let others = match others {
            [] => String::new(),
            others => {
                let names: Vec<&str> = others.iter().map(|other| other.name.as_str()).collect();
                format!(" (so are {})", names.join(", "))
            }
        };
        verdict.blocked = Some(UsageError::new(format!(
            "Cargo.toml: {key}: runtime {} is blocked from updates since {} (AWS's runtime table, read {}): Lambda no longer updates a function on it{others}; {fix}, or set `allow_deprecated_runtime = true` there to build it anyway",
            runtime.name,
            format_date(runtime.lifecycle.block_update),
            format_day(facts::RUNTIME_LIFECYCLE_READ),
        )));
    }
    verdict
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lifecycle(name: &str) -> Lifecycle {
        Runtime::find(name).unwrap().lifecycle
    }

    #[test]
    fn each_phase_starts_on_its_own_day() {
        let python310 = lifecycle("python3.10");
        for (day, expected) in [
            ((2026, 10, 30), Status::Supported),
            ((2026, 10, 31), Status::Deprecated),
            ((2026, 11, 29), Status::Deprecated),
            ((2026, 11, 30), Status::BlockedCreate),
            ((2027, 1, 14), Status::BlockedCreate),
            ((2027, 1, 15), Status::BlockedUpdate),
            ((2040, 1, 1), Status::BlockedUpdate),
        ] {
            assert_eq!(status(&python310, day), expected, "{}", format_day(day));
        }
    }

    #[test]
    fn a_date_not_published_is_never_reached() {
        let python311 = lifecycle("python3.11");
        assert_eq!(python311.block_update, None);
        assert_eq!(status(&python311, (2027, 6, 29)), Status::Supported);
        assert_eq!(status(&python311, (2027, 6, 30)), Status::Deprecated);
        assert_eq!(status(&python311, (2099, 12, 31)), Status::Deprecated);
    }

    #[test]
    fn the_nearest_supported_runtime_is_the_oldest_not_deprecated() {
        let name = |day| nearest_supported(day).map(|runtime| runtime.name);
        assert_eq!(name((2025, 12, 14)), Some("python3.9"));
        assert_eq!(name((2025, 12, 15)), Some("python3.10"));
        assert_eq!(name((2026, 12, 7)), Some("python3.11"));
        assert_eq!(name((2027, 6, 30)), Some("python3.12"));
        assert_eq!(name((2029, 6, 30)), None);
    }

    #[test]
    fn days_are_read_and_written_as_iso_dates() {
        assert_eq!(parse_day("2027-03-04"), Some((2027, 3, 4)));
        assert_eq!(parse_day("2028-02-29"), Some((2028, 2, 29)));
        for bad in [
            "2027-02-29",
            "2100-02-29",
            "2027-13-01",
            "2027-3-4",
            "27-03-04",
            "2027-03-04x",
            "",
            "2027-00-10",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        assert_eq!(format_day((2027, 3, 4)), "2027-03-04");
        assert_eq!(format_date(None), "not published");
    }

    /// `old` on python3.9 (the repository's runtime), `new` on python3.12,
    /// with `extra` merged into the top table and `old`'s own keys.
    fn config(top: serde_json::Value, old: serde_json::Value) -> Config {
        let root = tempfile::tempdir().unwrap();
        for name in ["old", "new"] {
            std::fs::create_dir_all(root.path().join("lambdas").join(name)).unwrap();
        }
        let mut value = json!({
            "runtime": "python3.9",
            "functions": {
                "old": {"source": "lambdas/old", "handler": "app.handler"},
                "new": {"source": "lambdas/new", "handler": "app.handler", "runtime": "python3.12"},
            },
        });
        for (key, setting) in top.as_object().unwrap() {
            value[key] = setting.clone();
        }
        for (key, setting) in old.as_object().unwrap() {
            value["functions"]["old"][key] = setting.clone();
        }
        Config::from_value(root.path(), &value).unwrap()
    }

    #[test]
    fn a_deprecated_runtime_warns_once_with_its_dates_and_functions() {
        let config = config(json!({}), json!({}));
        let verdict = judge(&config, (2026, 12, 7));
        assert!(verdict.blocked.is_none());
        assert_eq!(verdict.warnings.len(), 1, "{:?}", verdict.warnings);
        let warning = &verdict.warnings[0];
        for part in [
            "runtime python3.9 is deprecated as of 2026-12-07",
            "AWS deprecated it on 2025-12-15",
            "creating functions on it from 2027-02-01",
            "updating them from 2027-03-03",
            "used by old: move to python3.11 or newer",
        ] {
            assert!(warning.contains(part), "{part:?} in {warning}");
        }
        assert!(judge(&config, (2025, 12, 14)).warnings.is_empty());
    }

    #[test]
    fn past_its_block_update_date_a_function_fails_unless_it_allows_it() {
        let day = (2027, 3, 3);
        let blocked = judge(&config(json!({}), json!({})), day)
            .blocked
            .unwrap()
            .to_string();
        assert!(
            blocked.starts_with("Cargo.toml: workspace.metadata.lambda.functions.old: runtime python3.9 is blocked from updates since 2027-03-03"),
            "{blocked}"
        );
        assert!(
            blocked.contains("set `runtime = \"python3.11\"` (or newer)"),
            "{blocked}"
        );
        assert!(blocked.contains("allow_deprecated_runtime = true"), "{blocked}");
        assert!(!blocked.contains("so are"), "{blocked}");
        let mut both = config(json!({}), json!({}));
        both.functions.get_mut("new").unwrap().runtime = Runtime::find("python3.10");
        let later = judge(&both, (2032, 1, 1)).blocked.unwrap().to_string();
        assert!(later.contains("functions.new: runtime python3.10"), "{later}");
        assert!(later.contains("(so are old)"), "{later}");
        assert!(later.contains("update the tool"), "{later}");
        assert!(judge(&config(json!({}), json!({})), (2027, 3, 2))
            .blocked
            .is_none());

        let own = judge(&config(json!({}), json!({"allow_deprecated_runtime": true})), day);
        assert!(own.blocked.is_none());
        assert_eq!(own.warnings.len(), 1, "still warned: {:?}", own.warnings);
        let global = config(json!({"allow_deprecated_runtime": true}), json!({}));
        assert!(judge(&global, day).blocked.is_none());
        let overruled = config(
            json!({"allow_deprecated_runtime": true}),
            json!({"allow_deprecated_runtime": false}),
        );
        assert!(
            judge(&overruled, day).blocked.is_some(),
            "the function's own key wins"
        );
    }
}
