//! A response through serve against the function's own answer to the same
//! event (`cargo xtask invoke`): the same status and body, every header
//! the function gave, and nothing added but what serve adds to every
//! response. What the function makes up when it runs (a new user's id, the
//! time of a write, a token signed at the moment) may differ, as tightly
//! as it can.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::diff::{diff, shape, shown, Sides};

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

/// Values a function makes up each time it runs, in its JSON bodies, so
/// that under `invoke` they differ from serve's: a new user's id, which
/// must differ consistently (the same made-up id stands for the same user
/// in every later answer), and the time of a write (to the second, so two
/// writes may share one), which must only look alike.
pub(super) const MINTED_IDS: [&str; 1] = ["user_id"];
pub(super) const MINTED_TIMES: [&str; 3] = ["created_at", "updated_at", "last_login_at"];

/// The made-up ids seen so far: serve's, paired with `invoke`'s.
#[derive(Debug, Default)]
pub(super) struct Minted {
    /// Every event serve sent, as text: an id a client sent (a seeded
    /// user's, in a path or a token's context) was not made up.
    sent: String,
    pairs: BTreeMap<String, String>,
    taken: BTreeMap<String, String>,
}

impl Minted {
    pub(super) fn knowing(sent: String) -> Minted {
        Minted {
            sent,
            ..Minted::default()
        }
    }

    /// For two lists of records with a made-up id (a scan of the users
    /// table, ordered by id, so a made-up id puts its record elsewhere):
    /// for each of serve's, the index of invoke's record with the same id
    /// (or the one its made-up id stands for), then made-up ones for
    /// made-up ones, the others in order.
    /// Other lists keep their order.
    pub(super) fn matching(&self, ours: &[Value], theirs: &[Value]) -> Vec<usize> {
        fn id(record: &Value) -> Option<&str> {
            MINTED_IDS.iter().find_map(|key| record.get(key)?.as_str())
        }
        let in_order = (0..theirs.len()).collect();
        if !ours.iter().chain(theirs).all(|record| id(record).is_some()) {
            return in_order;
        }
        let mut free: Vec<usize> = in_order;
        let mut found: Vec<Option<usize>> = Vec::new();
        for record in ours {
            let ours = id(record).unwrap_or_default();
            let wanted = self.pairs.get(ours).map_or(ours, String::as_str);
            let at = free.iter().position(|&at| id(&theirs[at]) == Some(wanted));
            found.push(at.map(|at| free.remove(at)));
        }
        // A record no client named (made up) for one no client named.
        let made_up = |record: &Value| id(record).is_some_and(|id| !self.sent.contains(id));
        for (record, slot) in ours.iter().zip(found.iter_mut()) {
            if slot.is_none() && made_up(record) {
                let at = free.iter().position(|&at| made_up(&theirs[at]));
                *slot = at.map(|at| free.remove(at));
            }
        }
        let mut rest = free.into_iter();
        found
            .into_iter()
            .map(|at| at.or_else(|| rest.next()).unwrap_or_default())
            .collect()
    }

    /// Whether serve's `served` may stand for invoke's `invoked`: they look
    /// alike, no client sent either, and neither stands for another value
    /// already.
    pub(super) fn pair(&mut self, served: &str, invoked: &str) -> bool {
        if shape(served) != shape(invoked) || self.sent.contains(served) || self.sent.contains(invoked) {
            return false;
        }
        match (self.pairs.get(served), self.taken.get(invoked)) {
            (Some(known), _) => known == invoked,
            (None, Some(_)) => false,
            (None, None) => {
                self.pairs.insert(served.to_string(), invoked.to_string());
                self.taken.insert(invoked.to_string(), served.to_string());
                true
            }
        }
    }
}

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
        Some(Value::Bool(true)) => xtask::digest::base64_decode(text)
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

/// Two texts equal but for the JSON Web Tokens in them, when each pair of
/// tokens says the same but for when it was signed: a token the fakes sign
/// at the moment (the `auth` callback's cookies) has its times (`iat`,
/// `exp`, `auth_time`) and so its signature of that moment; the rest of
/// its claims and its lifetime must be equal.
pub(super) fn same_text(one: &str, other: &str) -> bool {
    one == other || without_token_times(one) == without_token_times(other)
}

/// `text` with every JWT replaced by its header and claims, its times
/// replaced by its lifetime.
fn without_token_times(text: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate.find(|c| !is_token_char(c)).unwrap_or(candidate.len());
        let token = &candidate[..end];
        match token_without_times(token) {
            Some(readable) => out.push_str(&readable),
            None => out.push_str(token),
        }
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

fn token_without_times(token: &str) -> Option<String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, _signature] = parts.as_slice() else {
        return None;
    };
    let header: Value = serde_json::from_slice(&base64url_decode(header)?).ok()?;
    let mut claims: Value = serde_json::from_slice(&base64url_decode(claims)?).ok()?;
    let claims_object = claims.as_object_mut()?;
    let issued = claims_object.remove("iat").and_then(|value| value.as_i64());
    let expires = claims_object.remove("exp").and_then(|value| value.as_i64());
    claims_object.remove("auth_time");
    let lifetime = match (issued, expires) {
        (Some(issued), Some(expires)) => (expires - issued).to_string(),
        _ => "?".into(),
    };
    Some(format!("<token {header} {claims} lifetime {lifetime}>"))
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    xtask::digest::base64_decode(&standard)
}
