//! Reading the metadata table strictly: typed getters that name the full
//! key in every error, sizes and durations as people write them, and a
//! `finish` that rejects every key nobody read.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Parses `"50 MiB"`, `"1.5 MB"`, `"1000 B"` or a plain number of bytes,
/// as a whole number of bytes that may not fit in 64 bits: the caller
/// compares it with its limit before it becomes a `u64`.
pub(super) fn parse_size(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    // A long enough string of digits parses as infinity.
    Some((number * multiplier as f64).round()).filter(|bytes| bytes.is_finite())
}

/// Parses `"3 s"`, `"2.5s"` or `"500 ms"` into milliseconds, which may not
/// fit in 64 bits (see [`parse_size`]).
pub(super) fn parse_duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000.0)
    } else {
        return None;
    };
    let value: f64 = number.trim().parse().ok()?;
    let ms = (value * scale).round();
    (ms >= 0.0 && ms.is_finite()).then_some(ms)
}

/// `value` as a `u64` when it is at most `max` (and so fits in 64 bits).
fn at_most(value: f64, max: u64) -> Option<u64> {
    // `max as f64` is exact for the limits used here (all below 2^53).
    (value <= max as f64).then_some(value as u64)
}

/// The largest value a size or duration key accepts, and why: the error
/// names both, so a user sees which limit a value crossed.
pub(super) struct Limit {
    pub(super) max: u64,
    /// e.g. "Lambda's limit for a function and its layers unzipped".
    pub(super) why: &'static str,
}

/// A metadata table being read: remembers its key path for messages and
/// rejects whatever keys are left unread.
pub(super) struct Table {
    key: String,
    /// The keys not read yet. Getters take their value with [`Table::take`],
    /// never from here directly, so that every key they ask for is recorded.
    entries: Map<String, Value>,
    /// Every key name a getter asked for, present or not: the keys the code
    /// knows, which the `design_doc` test compares with docs/design.md.
    /// Recorded in test builds only; a real run pays nothing for it.
    #[cfg(test)]
    asked: Vec<String>,
}

impl Table {
    pub(super) fn new(key: &str, value: &Value) -> Result<Table, String> {
        match value {
            Value::Object(entries) => Ok(Table {
                key: key.to_string(),
                entries: entries.clone(),
                #[cfg(test)]
                asked: Vec::new(),
            }),
            _ => Err(format!("{key}: expected a table")),
        }
    }

    pub(super) fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.key)
    }

    /// The value of `name`, now read; every getter goes through here.
    fn take(&mut self, name: &str) -> Option<Value> {
        #[cfg(test)]
        if !self.asked.iter().any(|asked| asked == name) {
            self.asked.push(name.to_string());
        }
        self.entries.remove(name)
    }

    /// The key names asked for so far, in the order first asked.
    #[cfg(test)]
    pub(super) fn asked(&self) -> &[String] {
        &self.asked
    }

    pub(super) fn optional_str(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format!("{}: expected a string, found {other}", self.path(name))),
        }
    }

    pub(super) fn required_str(&mut self, name: &str) -> Result<String, String> {
        self.optional_str(name)?
            .ok_or_else(|| format!("{}: missing (e.g. {name} = \"python3.11\")", self.path(name)))
    }

    pub(super) fn optional_bool(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(flag)),
            Some(other) => Err(format!(
                "{}: expected true or false, found {other}",
                self.path(name)
            )),
        }
    }

    pub(super) fn optional_str_list(&mut self, name: &str) -> Result<Option<Vec<String>>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    other => Err(format!(
                        "{}: expected a list of strings, found {other}",
                        self.path(name)
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(format!(
                "{}: expected a list of strings, found {other}",
                self.path(name)
            )),
        }
    }

    /// A size in bytes, at most `limit.max`.
    pub(super) fn optional_size(&mut self, name: &str, limit: &Limit) -> Result<Option<u64>, String> {
        let path = self.path(name);
        let bad = |found: &dyn std::fmt::Display| {
            format!("{path}: `{found}` is not a size (e.g. \"50 MiB\"; units B, KB, MB, GB, KiB, MiB, GiB)")
        };
        let too_big = |found: &dyn std::fmt::Display| {
            format!(
                "{path}: `{found}` is more than {} bytes ({:.0} MiB), {} (e.g. \"50 MiB\")",
                limit.max,
                limit.max as f64 / f64::from(1u32 << 20),
                limit.why
            )
        };
        let bytes = match self.take(name) {
            None => return Ok(None),
            Some(Value::String(text)) => {
                let bytes = parse_size(&text).ok_or_else(|| bad(&text))?;
                at_most(bytes, limit.max).ok_or_else(|| too_big(&text))?
            }
            Some(Value::Number(number)) => {
                let bytes = number.as_u64().ok_or_else(|| bad(&number))?;
                at_most(bytes as f64, limit.max).ok_or_else(|| too_big(&number))?
            }
            Some(other) => return Err(bad(&other)),
        };
        Ok(Some(bytes))
    }

    /// A duration in milliseconds, at most `limit.max`.
    pub(super) fn optional_duration_ms(&mut self, name: &str, limit: &Limit) -> Result<Option<u64>, String> {
        let path = self.path(name);
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(text)) => {
                let ms = parse_duration_ms(&text).ok_or_else(|| {
                    format!("{path}: `{text}` is not a duration (e.g. \"3 s\" or \"500 ms\")")
                })?;
                let ms = at_most(ms, limit.max).ok_or_else(|| {
                    format!(
                        "{path}: `{text}` is more than {} s, {} (e.g. \"3 s\")",
                        limit.max as f64 / 1000.0,
                        limit.why
                    )
                })?;
                Ok(Some(ms))
            }
            Some(other) => Err(format!(
                "{path}: expected a duration such as \"3 s\", found {other}"
            )),
        }
    }

    /// A whole number, e.g. `memory = 512`.
    pub(super) fn optional_u64(&mut self, name: &str, example: &str) -> Result<Option<u64>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(number)) if number.as_u64().is_some() => Ok(number.as_u64()),
            Some(other) => Err(format!(
                "{}: expected a whole number, found {other} (e.g. {name} = {example})",
                self.path(name)
            )),
        }
    }

    /// A table of strings, e.g. `environment = { LOG_LEVEL = "INFO" }`.
    pub(super) fn optional_str_map(
        &mut self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, String> {
        let path = self.path(name);
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(entries)) => entries
                .into_iter()
                .map(|(key, value)| match value {
                    Value::String(text) => Ok((key, text)),
                    other => Err(format!(
                        "{path}.{key}: expected a string, found {other} (quote it: {key} = \"{}\")",
                        other.to_string().trim_matches('"')
                    )),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(other) => Err(format!(
                "{path}: expected a table of strings, found {other} (e.g. {name} = {{ LOG_LEVEL = \"INFO\" }})"
            )),
        }
    }

    /// A list whose items the caller reads (`routes`: strings or tables).
    pub(super) fn optional_list(&mut self, name: &str, example: &str) -> Result<Option<Vec<Value>>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(format!(
                "{}: expected a list, found {other} (e.g. {name} = {example})",
                self.path(name)
            )),
        }
    }

    /// A table the caller reads with a [`Table`] of its own (`[api]`).
    pub(super) fn optional_table(&mut self, name: &str) -> Result<Option<Value>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(table @ Value::Object(_)) => Ok(Some(table)),
            Some(_) => Err(format!("{}: expected a table", self.path(name))),
        }
    }

    pub(super) fn optional_map(&mut self, name: &str) -> Result<Vec<(String, Value)>, String> {
        match self.take(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(entries)) => Ok(entries.into_iter().collect()),
            Some(_) => Err(format!("{}: expected a table", self.path(name))),
        }
    }

    pub(super) fn finish(self) -> Result<(), String> {
        #[cfg(test)]
        asked_log::record(&self.key, self.asked());
        match self.entries.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(format!(
                "{}: unknown key (remove it or check its spelling)",
                self.path(unknown)
            )),
        }
    }
}

/// What the tables of one thread asked for, by their key path, logged as
/// each is finished: the tables live inside `Config::from_value`, so a test
/// reads their keys from here after parsing.
#[cfg(test)]
pub(crate) mod asked_log {
    use std::cell::RefCell;

    thread_local! {
        static FINISHED: RefCell<Vec<(String, Vec<String>)>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn record(key: &str, asked: &[String]) {
        FINISHED.with(|log| log.borrow_mut().push((key.to_string(), asked.to_vec())));
    }

    /// The tables finished on this thread since the last call: (key path, keys asked).
    pub(crate) fn take() -> Vec<(String, Vec<String>)> {
        FINISHED.with(|log| log.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_record_every_key_asked_for_present_or_not() {
        let value = serde_json::json!({ "runtime": "python3.11", "layers": {} });
        let mut table = Table::new("t", &value).unwrap();
        table.required_str("runtime").unwrap();
        let limit = Limit {
            max: 1,
            why: "a test",
        };
        table.optional_size("budget", &limit).unwrap();
        table.optional_map("layers").unwrap();
        table.optional_str("runtime").unwrap();
        assert_eq!(table.asked(), ["runtime", "budget", "layers"]);
        asked_log::take();
        table.finish().unwrap();
        assert_eq!(
            asked_log::take(),
            [(
                "t".to_string(),
                vec!["runtime".into(), "budget".into(), "layers".into()]
            )]
        );
    }

    #[test]
    fn sizes_use_decimal_and_binary_units() {
        assert_eq!(parse_size("50 MiB"), Some(52_428_800.0));
        assert_eq!(parse_size("250MiB"), Some(262_144_000.0));
        assert_eq!(parse_size("1.5 MB"), Some(1_500_000.0));
        assert_eq!(parse_size("12"), Some(12.0));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size(&"9".repeat(400)), None, "infinity");
    }

    #[test]
    fn durations_accept_seconds_and_milliseconds() {
        assert_eq!(parse_duration_ms("3 s"), Some(3000.0));
        assert_eq!(parse_duration_ms("2.5s"), Some(2500.0));
        assert_eq!(parse_duration_ms("500 ms"), Some(500.0));
        assert_eq!(parse_duration_ms("soon"), None);
        assert_eq!(parse_duration_ms("inf s"), None);
        assert_eq!(parse_duration_ms("1e400 ms"), None);
        assert_eq!(parse_duration_ms("NaN ms"), None);
    }

    #[test]
    fn values_past_the_limit_or_64_bits_are_refused_with_the_limit_named() {
        let limit = Limit {
            max: 262_144_000,
            why: "the limit",
        };
        for (value, accepted) in [
            (serde_json::json!("250 MiB"), Some(262_144_000)),
            (serde_json::json!(262_144_000u64), Some(262_144_000)),
            (serde_json::json!("250.001 MiB"), None),
            (serde_json::json!("99999999999999999999 GiB"), None),
            (serde_json::json!(u64::MAX), None),
        ] {
            let mut table = Table::new("t", &serde_json::json!({ "budget": value })).unwrap();
            match (table.optional_size("budget", &limit), accepted) {
                (Ok(bytes), Some(_)) => assert_eq!(bytes, accepted),
                (Err(err), None) => assert!(
                    err.starts_with("t.budget: `")
                        && err.contains("is more than 262144000 bytes (250 MiB), the limit"),
                    "{err}"
                ),
                (result, _) => panic!("{value}: {result:?}"),
            }
        }
        let limit = Limit {
            max: 10_000,
            why: "the limit",
        };
        for text in ["10.001 s", "99999999999999999999 s", "18446744073709551616 ms"] {
            let mut table = Table::new("t", &serde_json::json!({ "wait": text })).unwrap();
            let err = table.optional_duration_ms("wait", &limit).unwrap_err();
            assert!(err.contains("is more than 10 s, the limit"), "{err}");
        }
    }
}
