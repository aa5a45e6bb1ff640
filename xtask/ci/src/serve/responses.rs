//! A response through serve against the function's own answer to the same
//! event (`cargo xtask invoke`): the same status and body, every header
//! the function gave, and nothing added but what serve adds to every
//! response. What the function makes up when it runs (a new user's id, the
//! time of a write, a token signed at the moment) may differ, as tightly
//! as it can.

use serde_json::{Map, Value};

use super::diff::{diff, shown, Sides};
use super::minted::{same_text, Minted};

/// A response as the client received it through serve.
#[derive(Debug, Clone)]
pub(super) struct Received {
    pub status: u16,
    /// In the order received, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What serve adds to a function's response (and nothing else may be
/// added): the gateway's `apigw-requestid` (xtask/src/api/gateway.rs), and
/// the HTTP server's (hyper's) `date` and `content-length`. The gateway
/// adds `content-type` only to its own answers and to payload 2.0's bare
/// JSON (xtask/src/api/response.rs), neither of which is a function's
/// structured response.
const SERVE_ADDS: [&str; 3] = ["apigw-requestid", "date", "content-length"];

/// Every difference between the response through serve and the function's
/// answer (`statusCode`, `headers` and `multiValueHeaders`, `body`
/// base64-decoded when `isBase64Encoded`): the same status and body, every
/// header the function gave with its value, and none added but
/// [`SERVE_ADDS`].
pub(super) fn response_differences(received: &Received, answer: &Value, minted: &mut Minted) -> Vec<String> {
    let mut found = Vec::new();
    let status = answer.get("statusCode").and_then(Value::as_u64);
    if status != Some(u64::from(received.status)) {
        found.push(format!(
            "status: the function answered {}, serve {}",
            shown(answer.get("statusCode")),
            received.status
        ));
    }
    match answer_headers(answer) {
        Ok(given) => found.extend(header_differences(&received.headers, &given)),
        Err(why) => found.push(why),
    }
    match answer_body(answer) {
        Ok(body) => found.extend(body_differences(&received.body, &body, minted)),
        Err(why) => found.push(why),
    }
    found
}

/// The function's headers: `headers`, then `multiValueHeaders`, a pair
/// given in both counted once.
fn answer_headers(answer: &Value) -> Result<Vec<(String, String)>, String> {
    let empty = Map::new();
    let object = |key: &str| match answer.get(key) {
        None | Some(Value::Null) => Ok(&empty),
        Some(Value::Object(object)) => Ok(object),
        Some(other) => Err(format!("the function's `{key}` is not an object: {other}")),
    };
    let mut given: Vec<(String, String)> = Vec::new();
    for (name, value) in object("headers")? {
        let value = value
            .as_str()
            .ok_or_else(|| format!("the function's header `{name}` is not a string"))?;
        given.push((name.clone(), value.to_string()));
    }
    for (name, values) in object("multiValueHeaders")? {
        let values = values
            .as_array()
            .ok_or_else(|| format!("the function's `multiValueHeaders.{name}` is not a list"))?;
        for value in values {
            let value = value
                .as_str()
                .ok_or_else(|| format!("a value of `multiValueHeaders.{name}` is not a string"))?;
            let pair = (name.clone(), value.to_string());
            if !given
                .iter()
                .any(|other| same_name(&other.0, name) && other.1 == value)
            {
                given.push(pair);
            }
        }
    }
    Ok(given)
}

fn same_name(one: &str, other: &str) -> bool {
    one.eq_ignore_ascii_case(other)
}

fn header_differences(received: &[(String, String)], given: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    let mut left: Vec<&(String, String)> = received.iter().collect();
    for (name, value) in given {
        let matching = left
            .iter()
            .position(|(other, got)| same_name(other, name) && same_text(got, value));
        match matching {
            Some(index) => {
                left.remove(index);
            }
            None => {
                let got: Vec<&str> = received
                    .iter()
                    .filter(|(other, _)| same_name(other, name))
                    .map(|(_, got)| got.as_str())
                    .collect();
                found.push(format!(
                    "header `{name}`: the function gave {value:?}, serve sent {}",
                    if got.is_empty() {
                        "none".to_string()
                    } else {
                        format!("{got:?}")
                    }
                ));
            }
        }
    }
    for name in SERVE_ADDS {
        let count = left.iter().filter(|(other, _)| same_name(other, name)).count();
        if count > 1 {
            found.push(format!("header `{name}`: serve sent it {count} times"));
        }
    }
    if !left.iter().any(|(name, _)| same_name(name, "apigw-requestid")) {
        found.push("header `apigw-requestid`: serve sent none".into());
    }
    for (name, value) in left {
        if !SERVE_ADDS.iter().any(|added| same_name(added, name)) {
            found.push(format!(
                "header `{name}: {value}`: serve added it; the function did not give it"
            ));
        }
    }
    found
}

fn answer_body(answer: &Value) -> Result<Vec<u8>, String> {
    let text = match answer.get("body") {
        None | Some(Value::Null) => "",
        Some(Value::String(text)) => text,
        Some(other) => return Err(format!("the function's body is not a string: {other}")),
    };
    match answer.get("isBase64Encoded") {
        Some(Value::Bool(true)) => xtask::ground::digest::base64_decode(text)
            .ok_or_else(|| "the function's body is not base64 though isBase64Encoded".to_string()),
        _ => Ok(text.as_bytes().to_vec()),
    }
}

fn body_differences(received: &[u8], given: &[u8], minted: &mut Minted) -> Vec<String> {
    if received == given {
        return Vec::new();
    }
    let as_json = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
    if let (Some(served), Some(invoked)) = (as_json(received), as_json(given)) {
        let mut sides = Sides {
            ours: "serve sent",
            theirs: "the function gave",
            minted: Some(minted),
        };
        let mut found = Vec::new();
        diff("body", None, &served, &invoked, &mut sides, &mut found);
        return found;
    }
    let (served, invoked) = (String::from_utf8_lossy(received), String::from_utf8_lossy(given));
    if same_text(&served, &invoked) {
        return Vec::new();
    }
    vec![format!(
        "body: the function gave {:?}, serve sent {:?}",
        super::process::shorten(&invoked, 300),
        super::process::shorten(&served, 300)
    )]
}
