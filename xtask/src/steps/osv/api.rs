//! OSV's API, through the project's curl runner: one batch query for the
//! shipped versions, then each advisory it names.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use serde_json::Value;

use super::record::{parse_record, Answer, Loaded, Parsed, ECOSYSTEM, RECORD_LIMIT};
use crate::store::curl;

/// OSV's API (default [`API`]): another base URL, e.g. a mirror.
pub const API_VARIABLE: &str = "XTASK_OSV_API";
pub const API: &str = "https://api.osv.dev";
/// OSV's API takes at most this many queries in one batch.
const BATCH: usize = 1000;

/// Asks OSV's API which advisories affect each shipped version
/// (`querybatch`), then fetches each one (`vulns/<id>`).
pub(super) fn ask_api(base: &str, wanted: &BTreeMap<String, BTreeSet<String>>) -> Result<Answer> {
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
