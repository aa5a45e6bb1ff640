//! Reading the metadata table strictly: typed getters that name the full
//! key in every error, sizes and durations as people write them, and a
//! `finish` that rejects every key nobody read.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Parses `"50 MiB"`, `"1.5 MB"`, `"1000 B"` or a plain number of bytes.
pub(super) fn parse_size(text: &str) -> Option<u64> {
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
    Some((number * multiplier as f64).round() as u64)
}

/// Parses `"3 s"`, `"2.5s"` or `"500 ms"` into milliseconds.
pub(super) fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000.0)
    } else {
        return None;
    };
    let value: f64 = number.trim().parse().ok()?;
    (value >= 0.0).then(|| (value * scale).round() as u64)
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

    pub(super) fn optional_size(&mut self, name: &str) -> Result<Option<u64>, String> {
        let path = self.path(name);
        let bad = |found: &dyn std::fmt::Display| {
            format!("{path}: `{found}` is not a size (e.g. \"50 MiB\"; units B, KB, MB, GB, KiB, MiB, GiB)")
        };
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(text)) => parse_size(&text).map(Some).ok_or_else(|| bad(&text)),
            Some(Value::Number(number)) => number.as_u64().map(Some).ok_or_else(|| bad(&number)),
            Some(other) => Err(bad(&other)),
        }
    }

    pub(super) fn optional_duration_ms(&mut self, name: &str) -> Result<Option<u64>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(text)) => parse_duration_ms(&text).map(Some).ok_or_else(|| {
                format!(
                    "{}: `{text}` is not a duration (e.g. \"3 s\" or \"500 ms\")",
                    self.path(name)
                )
            }),
            Some(other) => Err(format!(
                "{}: expected a duration such as \"3 s\", found {other}",
                self.path(name)
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
        table.optional_size("budget").unwrap();
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
        assert_eq!(parse_size("50 MiB"), Some(52_428_800));
        assert_eq!(parse_size("250MiB"), Some(262_144_000));
        assert_eq!(parse_size("1.5 MB"), Some(1_500_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size("MiB"), None);
    }

    #[test]
    fn durations_accept_seconds_and_milliseconds() {
        assert_eq!(parse_duration_ms("3 s"), Some(3000));
        assert_eq!(parse_duration_ms("2.5s"), Some(2500));
        assert_eq!(parse_duration_ms("500 ms"), Some(500));
        assert_eq!(parse_duration_ms("soon"), None);
    }
}
