//! What `invoke` is asked, checked against the configuration before
//! anything is built: one function and its event (a file, stdin or `{}`)
//! within Lambda's limit, or `--all`, every sample event; the variables and
//! stand-in layers it is given.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::samples::{self, Sample};
use crate::config::Config;
use crate::facts;
use crate::ground::error::UsageError;

/// What `invoke` is asked, as given.
pub struct Asked<'a> {
    pub functions: &'a [String],
    /// Every sample event instead of one function.
    pub all: bool,
    /// A JSON file, or `-` for stdin (default: `{}`).
    pub event: Option<&'a str>,
    /// `KEY=VALUE`, for the function's environment.
    pub env: &'a [String],
    /// `NAME=ZIP`: a local ZIP standing in for a layer.
    pub layers: &'a [String],
}

/// What `invoke` was asked, checked before anything is built.
pub struct Request {
    pub functions: Vec<String>,
    /// `None`: `--all`, the sample events; else the one event.
    pub event: Option<Vec<u8>>,
    pub samples: BTreeMap<String, Vec<Sample>>,
    pub env: Vec<(String, String)>,
    /// Stand-ins for layers, by name.
    pub layers: BTreeMap<String, PathBuf>,
}

impl Request {
    pub fn new(config: &Config, asked: &Asked) -> Result<Request> {
        let names = asked.functions;
        if asked.all != names.is_empty() || names.len() > 1 {
            return Err(usage(
                "invoke takes one FUNCTION, or --all (see cargo xtask invoke --help)".to_string(),
            ));
        }
        if let Some(unknown) = names.iter().find(|name| !config.functions.contains_key(*name)) {
            let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
            return Err(usage(format!(
                "unknown function `{unknown}` (configured: {})",
                known.join(", ")
            )));
        }
        let env = env_pairs(asked.env)?;
        let layers = stand_in_layers(config, asked.layers)?;
        if asked.all {
            if asked.event.is_some() {
                return Err(usage(
                    "--event goes with one FUNCTION, not with --all".to_string(),
                ));
            }
            let samples = samples::load(config)?;
            for (function, events) in &samples {
                for sample in events {
                    let file = format!("{}/{function}/{}.json", config.events.display(), sample.name);
                    within_event_limit(&file, sample.body.len() as u64)?;
                }
            }
            let functions = samples.keys().cloned().collect();
            return Ok(Request {
                functions,
                event: None,
                samples,
                env,
                layers,
            });
        }
        let event = read_event(asked.event)?;
        samples::json(asked.event.unwrap_or("the event"), &event)?;
        Ok(Request {
            functions: names.to_vec(),
            event: Some(event),
            samples: BTreeMap::new(),
            env,
            layers,
        })
    }
}

fn usage(message: String) -> anyhow::Error {
    UsageError::new(message).into()
}

pub fn env_pairs(given: &[String]) -> Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for pair in given {
        let Some((name, value)) = pair.split_once('=').filter(|(name, _)| !name.is_empty()) else {
            return Err(usage(format!("--env: `{pair}` is not KEY=VALUE")));
        };
        env.push((name.to_string(), value.to_string()));
    }
    Ok(env)
}

fn stand_in_layers(config: &Config, given: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut layers = BTreeMap::new();
    for pair in given {
        let Some((name, zip)) = pair.split_once('=') else {
            return Err(usage(format!("--layer: `{pair}` is not NAME=ZIP")));
        };
        if !config.layers.contains_key(name) {
            return Err(usage(format!("--layer: no layer `{name}` is configured")));
        }
        // As the user typed it: from the current folder.
        let zip = std::env::current_dir()?.join(zip);
        if !zip.is_file() {
            return Err(usage(format!("--layer: {} is not a file", zip.display())));
        }
        layers.insert(name.to_string(), zip);
    }
    Ok(layers)
}

/// The one event: `{}`, stdin, or a file, within Lambda's limit.
fn read_event(given: Option<&str>) -> Result<Vec<u8>> {
    match given {
        None => Ok(b"{}".to_vec()),
        Some("-") => {
            // One byte more than the limit is enough to refuse it.
            let mut bytes = Vec::new();
            std::io::stdin()
                .take(facts::MAX_SYNC_EVENT_BYTES + 1)
                .read_to_end(&mut bytes)
                .context("reading the event from stdin")?;
            if bytes.len() as u64 > facts::MAX_SYNC_EVENT_BYTES {
                return Err(usage(format!(
                    "--event -: the event on stdin is over Lambda's limit of {} bytes for a synchronous invocation (RequestTooLargeException): make it smaller",
                    facts::MAX_SYNC_EVENT_BYTES
                )));
            }
            Ok(bytes)
        }
        Some(file) => {
            let path = PathBuf::from(file);
            let cannot_read =
                |err: std::io::Error| usage(format!("--event: cannot read {}: {err}", path.display()));
            within_event_limit(file, std::fs::metadata(&path).map_err(cannot_read)?.len())?;
            let bytes = std::fs::read(&path).map_err(cannot_read)?;
            within_event_limit(file, bytes.len() as u64)?;
            Ok(bytes)
        }
    }
}

/// Lambda refuses a synchronous invocation whose event is over its limit
/// before the function runs (`RequestTooLargeException`); so does `invoke`.
fn within_event_limit(file: &str, size: u64) -> Result<()> {
    let limit = facts::MAX_SYNC_EVENT_BYTES;
    if size <= limit {
        return Ok(());
    }
    Err(usage(format!(
        "{file}: the event is {size} bytes, over Lambda's limit of {limit} bytes for a synchronous invocation (RequestTooLargeException): make it smaller"
    )))
}
