//! The sample events of `invoke --all`: `<events>/<function>/<name>.json`
//! with `expect.json` beside them naming each one's expected status (or an
//! authorizer's policy effect), and the verdict on what a function answered.
//! `requests.json` beside them is no event: it holds the cases' HTTP forms,
//! what a client sends the API (`serve`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;

use super::sandbox::Answer;
use crate::config::Config;
use crate::ground::error::UsageError;

/// Each function's expectations, beside its events.
const EXPECT_FILE: &str = "expect.json";
/// The cases' HTTP forms, beside the events: not an event.
const REQUESTS_FILE: &str = "requests.json";

/// One sample event and what it must answer.
pub struct Sample {
    pub name: String,
    pub body: Vec<u8>,
    pub expect: Value,
}

/// The bytes as JSON, or a usage error naming the file and the line.
pub fn json(file: &str, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|err| {
        UsageError::new(format!(
            "{file}: not JSON: line {} column {}: {err}",
            err.line(),
            err.column()
        ))
        .into()
    })
}

/// `<events>/<function>/<name>.json` with `<events>/<function>/expect.json`
/// naming each one's expected status (or the authorizer's policy effect).
pub fn load(config: &Config) -> Result<BTreeMap<String, Vec<Sample>>> {
    let root = config.root.join(&config.events);
    let mut all = BTreeMap::new();
    for function in config.functions.keys() {
        let dir = root.join(function);
        if !dir.is_dir() {
            continue;
        }
        let label = |name: &str| format!("{}/{function}/{name}", config.events.display());
        let expect_path = dir.join(EXPECT_FILE);
        let expect_bytes = std::fs::read(&expect_path).map_err(|err| {
            UsageError::new(format!(
                "{}: {err} (every events folder has one: {{\"<event>\": <status>}})",
                label(EXPECT_FILE)
            ))
        })?;
        let Value::Object(mut expect) = json(&label(EXPECT_FILE), &expect_bytes)? else {
            return Err(UsageError::new(format!("{}: not an object", label(EXPECT_FILE))).into());
        };
        let mut samples = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .filter(|path| {
                path.file_name()
                    .is_some_and(|name| name != EXPECT_FILE && name != REQUESTS_FILE)
            })
            .collect();
        files.sort();
        for file in files {
            let name = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let body = std::fs::read(&file)?;
            json(&label(&format!("{name}.json")), &body)?;
            let Some(expected) = expect.remove(&name) else {
                return Err(UsageError::new(format!(
                    "{}: no expectation for event `{name}` (add \"{name}\": <status>)",
                    label(EXPECT_FILE)
                ))
                .into());
            };
            samples.push(Sample {
                name,
                body,
                expect: expected,
            });
        }
        if let Some(stray) = expect.keys().next() {
            return Err(UsageError::new(format!(
                "{}: `{stray}` has no event file {stray}.json",
                label(EXPECT_FILE)
            ))
            .into());
        }
        all.insert(function.clone(), samples);
    }
    if all.is_empty() {
        return Err(UsageError::new(format!(
            "no sample events: add {}/<function>/<name>.json and expect.json",
            config.events.display()
        ))
        .into());
    }
    Ok(all)
}

/// One line of `invoke --all`'s table.
pub struct Verdict {
    pub function: String,
    pub event: String,
    pub expected: String,
    pub got: String,
    pub duration_ms: Option<f64>,
    pub error: Option<String>,
}

impl Verdict {
    /// The function did not start: every event of it fails so.
    pub fn init_failed(function: &str, sample: &Sample, error: String) -> Verdict {
        Verdict {
            function: function.to_string(),
            event: sample.name.clone(),
            expected: show(&sample.expect),
            got: "init error".to_string(),
            duration_ms: None,
            error: Some(error),
        }
    }

    /// The answer against the expectation; a function error carries the
    /// last lines the function printed.
    pub fn judge(function: &str, sample: &Sample, answer: &Answer, log_tail: &[String]) -> Verdict {
        let mut row = Verdict {
            function: function.to_string(),
            event: sample.name.clone(),
            expected: show(&sample.expect),
            got: String::new(),
            duration_ms: Some(answer.duration_ms),
            error: None,
        };
        match &answer.result {
            Err(failure) => {
                row.got = "error".to_string();
                let mut error = format!("{}: {}", failure.error_type, failure.message);
                if !log_tail.is_empty() {
                    error = format!("{error}\n    {}", log_tail.join("\n    "));
                }
                row.error = Some(error);
            }
            Ok(body) => {
                let response: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let got = match &sample.expect {
                    Value::String(_) => response["policyDocument"]["Statement"][0]["Effect"].clone(),
                    _ => response["statusCode"].clone(),
                };
                row.got = show(&got);
                if got != sample.expect {
                    let body = String::from_utf8_lossy(body);
                    let short: String = body.chars().take(300).collect();
                    row.error = Some(format!(
                        "expected {}, got {}: {short}",
                        show(&sample.expect),
                        row.got
                    ));
                }
            }
        }
        row
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::json;

    use super::*;

    #[test]
    fn requests_json_beside_the_events_is_not_an_event() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("lambdas/echo")).unwrap();
        let events = root.path().join("lambdas/events/echo");
        fs::create_dir_all(&events).unwrap();
        fs::write(events.join("ok.json"), "{}").unwrap();
        fs::write(events.join(EXPECT_FILE), r#"{"ok": 200}"#).unwrap();
        let form = json!({"ok": {"method": "GET", "target": "/", "headers": [["host", "local"]],
            "body": null, "status": 200}});
        fs::write(events.join(REQUESTS_FILE), form.to_string()).unwrap();
        let table = json!({
            "runtime": "python3.12",
            "functions": {"echo": {"source": "lambdas/echo", "handler": "echo.lambda_handler"}},
        });
        let config = Config::from_value(root.path(), &table).unwrap();

        let samples = load(&config).unwrap();

        let names: Vec<&str> = samples["echo"]
            .iter()
            .map(|sample| sample.name.as_str())
            .collect();
        assert_eq!(names, ["ok"]);
        assert_eq!(samples["echo"][0].expect, json!(200));
    }
}
