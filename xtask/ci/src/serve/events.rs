//! An event serve sent for a sample case against the committed one: equal
//! but for what describes the connection and the moment, each of which
//! must hold this connection's value instead.

use serde_json::Value;

use super::diff::{at, diff, shown, Sides};

/// What serve's event says of the connection and the moment, which the
/// committed event cannot know: left out of the comparison, and checked
/// against the connection instead.
pub(super) struct Connection<'a> {
    /// The `apigw-requestid` of the response.
    pub request_id: &'a str,
    /// The port serve listens on (`x-forwarded-port`).
    pub port: u16,
}

/// The headers serve appends to the client's, which describe the connection.
const FORWARDED: [&str; 3] = ["x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"];

/// The client's address: every client of the stages is on this machine.
const PEER: &str = "127.0.0.1";

/// Every difference between the committed event and the one serve sent,
/// but for what describes the connection and the moment (request ids,
/// times, the source address, `x-forwarded-*`, the authorizer's latency),
/// each of which must instead hold this connection's value.
pub(super) fn event_differences(committed: &Value, sent: &Value, connection: &Connection) -> Vec<String> {
    let mut found = connection_differences(sent, connection, committed);
    let (mut committed, mut sent) = (committed.clone(), sent.clone());
    for event in [&mut committed, &mut sent] {
        forget_connection(event);
    }
    let mut sides = Sides {
        ours: "the committed event",
        theirs: "serve's event",
        minted: None,
    };
    diff("", None, &committed, &sent, &mut sides, &mut found);
    found
}

/// The connection's values where serve's event holds them.
fn connection_differences(sent: &Value, connection: &Connection, committed: &Value) -> Vec<String> {
    let port = connection.port.to_string();
    let mut wanted: Vec<(String, Value)> = vec![
        ("requestContext.requestId".into(), connection.request_id.into()),
        (
            "requestContext.extendedRequestId".into(),
            connection.request_id.into(),
        ),
        ("requestContext.identity.sourceIp".into(), PEER.into()),
    ];
    for (name, value) in FORWARDED.iter().zip([PEER, port.as_str(), "http"]) {
        wanted.push((format!("headers.{name}"), value.into()));
        wanted.push((format!("multiValueHeaders.{name}"), Value::from(vec![value])));
    }
    let mut found = Vec::new();
    for (path, value) in wanted {
        let got = at(sent, &path);
        if got != Some(&value) {
            found.push(format!(
                "{path}: the connection's is {value}, serve's {}",
                shown(got)
            ));
        }
    }
    let time = at(sent, "requestContext.requestTime").and_then(Value::as_str);
    if !time.is_some_and(is_request_time) {
        found.push(format!(
            "requestContext.requestTime: not dd/Mon/yyyy:HH:MM:SS +0000 but {}",
            shown(at(sent, "requestContext.requestTime"))
        ));
    }
    if !at(sent, "requestContext.requestTimeEpoch").is_some_and(Value::is_u64) {
        found.push("requestContext.requestTimeEpoch: not a number of milliseconds".into());
    }
    // Only on an authorized route, where the committed event has it too.
    let latency = "requestContext.authorizer.integrationLatency";
    if at(committed, latency).is_some() && !at(sent, latency).is_some_and(Value::is_u64) {
        found.push(format!(
            "{latency}: not a number of milliseconds but {}",
            shown(at(sent, latency))
        ));
    }
    found
}

/// "07/Dec/2026:09:48:41 +0000".
fn is_request_time(text: &str) -> bool {
    let shape: String = text
        .chars()
        .map(|c| match c {
            '0'..='9' => '9',
            c if c.is_ascii_alphabetic() => 'a',
            c => c,
        })
        .collect();
    shape == "99/aaa/9999:99:99:99 +9999"
}

/// Removes what describes the connection and the moment.
fn forget_connection(event: &mut Value) {
    if let Some(context) = event.get_mut("requestContext").and_then(Value::as_object_mut) {
        for key in [
            "requestId",
            "extendedRequestId",
            "requestTime",
            "requestTimeEpoch",
        ] {
            context.remove(key);
        }
        if let Some(identity) = context.get_mut("identity").and_then(Value::as_object_mut) {
            identity.remove("sourceIp");
        }
        if let Some(authorizer) = context.get_mut("authorizer").and_then(Value::as_object_mut) {
            authorizer.remove("integrationLatency");
        }
    }
    for key in ["headers", "multiValueHeaders"] {
        if let Some(headers) = event.get_mut(key).and_then(Value::as_object_mut) {
            for name in FORWARDED {
                headers.remove(name);
            }
        }
    }
}
