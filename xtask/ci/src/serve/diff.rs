//! Two JSON values compared leaf by leaf, every difference one line
//! naming its path, so a failure reads as a diff. For responses it allows
//! what a function makes up when it runs (`minted::Minted`) and tokens
//! signed at another moment (`minted::same_text`).

use serde_json::Value;

use super::minted::{same_text, shape, Minted, MINTED_IDS, MINTED_TIMES};

/// The value at a dotted path of object keys.
pub(super) fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |value, key| value.get(key))
}

pub(super) fn shown(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".into(),
        Some(value) => super::process::shorten(&value.to_string(), 160),
    }
}

/// The two sides of a comparison, by name, and what may differ between
/// them: nothing for events; for responses, what [`Minted`] and
/// [`same_text`] allow.
pub(super) struct Sides<'m> {
    pub ours: &'static str,
    pub theirs: &'static str,
    pub minted: Option<&'m mut Minted>,
}

/// Every difference between two JSON values, one line each, by path;
/// `key` is the object key `ours` is under.
pub(super) fn diff(
    path: &str,
    key: Option<&str>,
    ours: &Value,
    theirs: &Value,
    sides: &mut Sides,
    found: &mut Vec<String>,
) {
    let here = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    let (our_side, their_side) = (sides.ours, sides.theirs);
    match (ours, theirs) {
        (Value::Object(one), Value::Object(other)) => {
            let keys: std::collections::BTreeSet<&String> = one.keys().chain(other.keys()).collect();
            for name in keys {
                match (one.get(name), other.get(name)) {
                    (Some(a), Some(b)) => diff(&here(name), Some(name), a, b, sides, found),
                    (a, b) => found.push(format!(
                        "{}: {our_side} {}, {their_side} {}",
                        here(name),
                        shown(a),
                        shown(b)
                    )),
                }
            }
        }
        (Value::Array(one), Value::Array(other)) if one.len() == other.len() => {
            let order = match &sides.minted {
                Some(minted) => minted.matching(one, other),
                None => (0..other.len()).collect(),
            };
            for (index, (a, b)) in one.iter().zip(order.iter().map(|&at| &other[at])).enumerate() {
                diff(&here(&index.to_string()), key, a, b, sides, found);
            }
        }
        (a, b) if a == b => {}
        (Value::String(a), Value::String(b)) if sides.minted.is_some() && same_text(a, b) => {}
        (Value::String(a), Value::String(b))
            if key.is_some_and(|key| MINTED_TIMES.contains(&key)) && sides.minted.is_some() =>
        {
            if shape(a) != shape(b) {
                found.push(format!(
                    "{path}: {our_side} {a:?} and {their_side} {b:?} are not alike (times of a write)"
                ));
            }
        }
        (Value::String(a), Value::String(b))
            if key.is_some_and(|key| MINTED_IDS.contains(&key)) && sides.minted.is_some() =>
        {
            if !sides.minted.as_mut().is_some_and(|minted| minted.pair(a, b)) {
                found.push(format!(
                    "{path}: {our_side} {a:?} cannot stand for {their_side} {b:?} (a made-up id, but sent by a client or not consistently)"
                ));
            }
        }
        (a, b) => found.push(format!(
            "{}: {our_side} {}, {their_side} {}",
            if path.is_empty() {
                "(the whole value)"
            } else {
                path
            },
            shown(Some(a)),
            shown(Some(b))
        )),
    }
}
