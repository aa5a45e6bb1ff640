//! The events API Gateway sends: to an integration in payload format 1.0
//! or 2.0, and to the REQUEST authorizer, whose event is the integration's
//! without the body plus the ARN it decides on. Built from the request read
//! once (`request.rs`), the selected route and the caller's stamp, so the
//! same request always gives the same event: `serve`'s events can be
//! compared with the committed samples, ids and times aside.

#[cfg(test)]
mod tests;

use serde_json::{json, Map, Value};

use crate::config::api::{PayloadFormat, RouteKey};
use crate::facts::{HTTP_API_STAGE, LOCAL_ACCOUNT, LOCAL_API_ID, LOCAL_REGION};
use crate::ground::digest;
use crate::ground::utc::Utc;

use super::http::Stamp;
use super::request::Request;
use super::routes::Selected;

/// What every event is built from.
pub(super) struct Incoming<'a> {
    pub request: &'a Request<'a>,
    pub selected: &'a Selected<'a>,
    pub stamp: &'a Stamp,
}

/// The authorizer's answer as an integration sees it in `requestContext`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Authorized {
    /// An IAM answer's `principalId`; a simple answer has none.
    pub principal_id: Option<String>,
    /// The answer's `context`, values already checked to be scalars.
    pub context: Option<Map<String, Value>>,
    /// How long the authorizer took, 0 for an answer from the cache.
    pub latency_ms: u64,
}

/// The integration's event; `authorized` when the route went through the
/// authorizer, whose answer the function reads in `requestContext`.
pub(super) fn integration(
    format: PayloadFormat,
    incoming: &Incoming,
    authorized: Option<&Authorized>,
) -> Value {
    let mut event = match format {
        PayloadFormat::V1 => v1(incoming),
        PayloadFormat::V2 => v2(incoming),
    };
    let (body, base64) = body(incoming.request);
    match (format, body) {
        (PayloadFormat::V1, body) => event["body"] = body.map_or(Value::Null, Value::String),
        (PayloadFormat::V2, Some(body)) => event["body"] = Value::String(body),
        (PayloadFormat::V2, None) => {}
    }
    event["isBase64Encoded"] = Value::Bool(base64);
    if let Some(authorized) = authorized {
        event["requestContext"]["authorizer"] = match format {
            PayloadFormat::V1 => authorizer_v1(authorized),
            PayloadFormat::V2 => json!({ "lambda": authorized.context }),
        };
    }
    event
}

/// The REQUEST authorizer's event: the integration's without its body,
/// plus `type`, the ARN of what is asked for and, in 2.0, the identity
/// source values (absent when the authorizer has none).
pub(super) fn authorizer(format: PayloadFormat, incoming: &Incoming, identity_source: &[String]) -> Value {
    let arn = execute_api_arn(incoming.request);
    match format {
        PayloadFormat::V1 => {
            let mut event = v1(incoming);
            event["type"] = json!("REQUEST");
            event["methodArn"] = json!(arn);
            event
        }
        PayloadFormat::V2 => {
            let mut event = v2(incoming);
            event["type"] = json!("REQUEST");
            event["routeArn"] = json!(arn);
            if !identity_source.is_empty() {
                event["identitySource"] = json!(identity_source);
            }
            event
        }
    }
}

/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}{path}`:
/// what an IAM policy's `Resource` is matched against.
pub(super) fn execute_api_arn(request: &Request) -> String {
    format!(
        "arn:aws:execute-api:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{LOCAL_API_ID}/{HTTP_API_STAGE}/{}{}",
        request.method, request.raw_path
    )
}

/// Payload 1.0 without body and authorizer: REST API's shape, headers and
/// query both as last value and as every value.
fn v1(incoming: &Incoming) -> Value {
    let Incoming {
        request,
        selected,
        stamp,
    } = incoming;
    let resource = match &selected.route.key {
        RouteKey::Default => "$default",
        RouteKey::Route { path, .. } => path,
    };
    let query = (!request.query.is_empty()).then_some(&request.query);
    json!({
        "version": "1.0",
        "resource": resource,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": last_values(&request.headers),
        "multiValueHeaders": all_values(&request.headers),
        "queryStringParameters": query.map(|query| last_values(query)),
        "multiValueQueryStringParameters": query.map(|query| all_values(query)),
        "pathParameters": parameters(selected),
        "stageVariables": null,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": LOCAL_API_ID,
            "domainName": request.domain_name(),
            "domainPrefix": request.domain_prefix(),
            "extendedRequestId": stamp.request_id,
            "httpMethod": request.method,
            "identity": identity_v1(request),
            "path": request.raw_path,
            "protocol": "HTTP/1.1",
            "requestId": stamp.request_id,
            "requestTime": request_time(stamp.epoch_ms),
            "requestTimeEpoch": stamp.epoch_ms,
            "resourceId": null,
            "resourcePath": resource,
            "stage": HTTP_API_STAGE,
        },
    })
}

/// REST's caller identity: only the source address and user agent are
/// known to an HTTP API; the IAM and Cognito fields are there, null.
fn identity_v1(request: &Request) -> Value {
    json!({
        "accessKey": null,
        "accountId": null,
        "caller": null,
        "cognitoAuthenticationProvider": null,
        "cognitoAuthenticationType": null,
        "cognitoIdentityId": null,
        "cognitoIdentityPoolId": null,
        "principalOrgId": null,
        "sourceIp": request.peer.to_string(),
        "user": null,
        "userAgent": request.user_agent(),
        "userArn": null,
    })
}

/// 1.0's `requestContext.authorizer`: the context, flat, with the
/// principal and the authorizer's latency beside its keys.
fn authorizer_v1(authorized: &Authorized) -> Value {
    let mut object = authorized.context.clone().unwrap_or_default();
    object.insert("principalId".into(), json!(authorized.principal_id));
    object.insert("integrationLatency".into(), json!(authorized.latency_ms));
    Value::Object(object)
}

/// Payload 2.0 without body and authorizer: repeated headers and query
/// values joined by ",", cookies apart, absent keys rather than nulls.
fn v2(incoming: &Incoming) -> Value {
    let Incoming {
        request,
        selected,
        stamp,
    } = incoming;
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(name, _)| name != "cookie")
        .cloned()
        .collect();
    let route_key = selected.route.key.to_string();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": joined_values(&headers),
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": LOCAL_API_ID,
            "domainName": request.domain_name(),
            "domainPrefix": request.domain_prefix(),
            "http": {
                "method": request.method,
                "path": request.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.peer.to_string(),
                "userAgent": request.user_agent(),
            },
            "requestId": stamp.request_id,
            "routeKey": route_key,
            "stage": HTTP_API_STAGE,
            "time": request_time(stamp.epoch_ms),
            "timeEpoch": stamp.epoch_ms,
        },
    });
    let cookies = request.cookies();
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !request.query.is_empty() {
        event["queryStringParameters"] = joined_values(&request.query);
    }
    if !selected.parameters.is_empty() {
        event["pathParameters"] = parameters(selected);
    }
    event
}

fn parameters(selected: &Selected) -> Value {
    if selected.parameters.is_empty() {
        return Value::Null;
    }
    last_values(&selected.parameters)
}

fn last_values(pairs: &[(String, String)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    Value::Object(map)
}

fn all_values(pairs: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (name, value) in pairs {
        let values = map.entry(name.clone()).or_insert_with(|| json!([]));
        values
            .as_array_mut()
            .expect("built as an array")
            .push(json!(value));
    }
    Value::Object(map)
}

fn joined_values(pairs: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (name, value) in pairs {
        match map.get_mut(name) {
            Some(Value::String(all)) => {
                all.push(',');
                all.push_str(value);
            }
            _ => {
                map.insert(name.clone(), json!(value));
            }
        }
    }
    Value::Object(map)
}

/// The body as the function gets it, and whether it is base64: text for
/// textual content types (when it is UTF-8, so no byte is lost), base64 for
/// everything else, a body without a content type included.
fn body(request: &Request) -> (Option<String>, bool) {
    if request.body.is_empty() {
        return (None, false);
    }
    let textual = request
        .header_values("content-type")
        .next()
        .is_some_and(is_textual);
    match std::str::from_utf8(request.body) {
        Ok(text) if textual => (Some(text.to_string()), false),
        _ => (Some(digest::base64(request.body)), true),
    }
}

/// The media types API Gateway passes as text: `text/*`, JSON, XML and
/// JavaScript, with `+json`/`+xml` suffixes; parameters (`; charset=…`)
/// and case ignored.
fn is_textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind == "text"
        || (kind == "application"
            && (matches!(subtype, "json" | "xml" | "javascript")
                || subtype.ends_with("+json")
                || subtype.ends_with("+xml")))
}

/// `requestTime`: `dd/Mon/yyyy:HH:MM:SS +0000`, in UTC.
pub(super) fn request_time(epoch_ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = Utc::from_unix(epoch_ms / 1000);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        t.day,
        MONTHS[t.month as usize - 1],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}
