//! A CVSS v3 vector's qualitative rating, for an advisory that gives a
//! vector and no rating of its own.

use std::collections::BTreeMap;

use crate::config::audit::Severity;

/// The qualitative rating of a CVSS v3.0 or v3.1 vector's base score
/// (FIRST's specification, section 7.1 and 5: https://www.first.org/cvss/v3.1/specification-document).
pub(super) fn cvss3_rating(vector: &str) -> Option<Severity> {
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
