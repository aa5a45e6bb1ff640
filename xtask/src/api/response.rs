//! What the client gets: a function's answer mapped to HTTP as payload
//! format 1.0 or 2.0 reads it, or one of API Gateway's own answers with
//! its exact JSON body. A function's answer that does not fit its format
//! is a 502 as in AWS, with the reason kept for the server's log.

use serde_json::{Map, Value};

use crate::config::api::PayloadFormat;
use crate::ground::digest;

use super::http::HttpResponse;

/// API Gateway's own answers, each with the status and body AWS sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    NotFound,
    TooLarge,
    Unauthorized,
    Forbidden,
    AuthorizerFailed,
    IntegrationFailed,
    TimedOut,
    Throttled,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::NotFound => 404,
            Refusal::TooLarge => 413,
            Refusal::Unauthorized => 401,
            Refusal::Forbidden => 403,
            Refusal::AuthorizerFailed => 500,
            Refusal::IntegrationFailed => 502,
            Refusal::TimedOut => 503,
            Refusal::Throttled => 429,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::NotFound => "Not Found",
            Refusal::TooLarge => "Request Entity Too Large",
            Refusal::Unauthorized => "Unauthorized",
            Refusal::Forbidden => "Forbidden",
            Refusal::AuthorizerFailed | Refusal::IntegrationFailed => "Internal Server Error",
            Refusal::TimedOut => "Service Unavailable",
            Refusal::Throttled => "Too Many Requests",
        }
    }

    pub fn response(self) -> HttpResponse {
        HttpResponse {
            status: self.status(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!(r#"{{"message":"{}"}}"#, self.message()).into_bytes(),
        }
    }
}

/// A function's answer as HTTP; `Err` says why it is malformed (502).
pub(super) fn from_function(format: PayloadFormat, answer: &[u8]) -> Result<HttpResponse, String> {
    let value: Value = serde_json::from_slice(answer)
        .map_err(|err| format!("the function's response is not JSON: {err}"))?;
    match (format, &value) {
        (_, Value::Object(object)) if object.contains_key("statusCode") => structured(format, object),
        (PayloadFormat::V1, _) => Err("a payload 1.0 response needs an object with `statusCode`".into()),
        // 2.0 takes any other JSON as the body of a 200, exactly as returned.
        (PayloadFormat::V2, _) => Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: answer.to_vec(),
        }),
    }
}

/// `statusCode`, `headers`, `multiValueHeaders`, `cookies` (2.0), `body`
/// and `isBase64Encoded`; a key given as null is a key left out.
fn structured(format: PayloadFormat, object: &Map<String, Value>) -> Result<HttpResponse, String> {
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|status| u16::try_from(status).ok())
        .filter(|status| (100..=599).contains(status))
        .ok_or("`statusCode` is not an HTTP status")?;
    let mut headers = merged_headers(object)?;
    if format == PayloadFormat::V2 {
        for cookie in string_list(object.get("cookies"), "cookies")? {
            headers.push(("set-cookie".into(), cookie));
        }
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(body)) => body.clone(),
        Some(_) => return Err("`body` is not a string".into()),
    };
    let body = match object.get("isBase64Encoded") {
        None | Some(Value::Null | Value::Bool(false)) => body.into_bytes(),
        Some(Value::Bool(true)) => digest::base64_decode(&body).ok_or("`body` is not base64")?,
        Some(_) => return Err("`isBase64Encoded` is not a boolean".into()),
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// `headers`, then `multiValueHeaders`: a pair given in both is sent once,
/// as API Gateway merges them.
fn merged_headers(object: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let mut multi = Vec::new();
    for (name, values) in object_entries(object.get("multiValueHeaders"), "multiValueHeaders")? {
        for value in string_list(Some(values), &format!("multiValueHeaders.{name}"))? {
            multi.push((name.clone(), value));
        }
    }
    let mut headers = Vec::new();
    for (name, value) in object_entries(object.get("headers"), "headers")? {
        let Value::String(value) = value else {
            return Err(format!("`headers.{name}` is not a string"));
        };
        let again = multi
            .iter()
            .any(|(other, other_value)| other.eq_ignore_ascii_case(name) && other_value == value);
        if !again {
            headers.push((name.clone(), value.clone()));
        }
    }
    headers.extend(multi);
    Ok(headers)
}

fn object_entries<'v>(value: Option<&'v Value>, key: &str) -> Result<Vec<(&'v String, &'v Value)>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(object)) => Ok(object.iter().collect()),
        Some(_) => Err(format!("`{key}` is not an object")),
    }
}

fn string_list(value: Option<&Value>, key: &str) -> Result<Vec<String>, String> {
    let wrong = || format!("`{key}` is not a list of strings");
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(String::from).ok_or_else(wrong))
            .collect(),
        Some(_) => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(format: PayloadFormat, answer: Value) -> Result<HttpResponse, String> {
        from_function(format, answer.to_string().as_bytes())
    }

    fn pairs(headers: &[(&str, &str)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn api_gateways_own_answers_have_its_exact_bodies() {
        for (refusal, status, body) in [
            (Refusal::NotFound, 404, r#"{"message":"Not Found"}"#),
            (
                Refusal::TooLarge,
                413,
                r#"{"message":"Request Entity Too Large"}"#,
            ),
            (Refusal::Unauthorized, 401, r#"{"message":"Unauthorized"}"#),
            (Refusal::Forbidden, 403, r#"{"message":"Forbidden"}"#),
            (
                Refusal::AuthorizerFailed,
                500,
                r#"{"message":"Internal Server Error"}"#,
            ),
            (
                Refusal::IntegrationFailed,
                502,
                r#"{"message":"Internal Server Error"}"#,
            ),
            (Refusal::TimedOut, 503, r#"{"message":"Service Unavailable"}"#),
            (Refusal::Throttled, 429, r#"{"message":"Too Many Requests"}"#),
        ] {
            let response = refusal.response();
            assert_eq!(
                (response.status, response.body.as_slice()),
                (status, body.as_bytes())
            );
            assert_eq!(response.headers, pairs(&[("content-type", "application/json")]));
        }
    }

    #[test]
    fn a_structured_answer_maps_status_headers_and_body() {
        for format in [PayloadFormat::V1, PayloadFormat::V2] {
            let response = map(
                format,
                json!({"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-One": "a"},
                       "multiValueHeaders": {"X-Many": ["b", "c"], "X-One": ["a"]}, "body": "made"}),
            )
            .unwrap();
            assert_eq!(response.status, 201);
            assert_eq!(
                response.headers,
                pairs(&[
                    ("Content-Type", "text/plain"),
                    ("X-Many", "b"),
                    ("X-Many", "c"),
                    ("X-One", "a")
                ])
            );
            assert_eq!(response.body, b"made");
        }
    }

    #[test]
    fn a_base64_body_is_decoded() {
        let answer = json!({"statusCode": 200, "body": "AP8=", "isBase64Encoded": true});
        assert_eq!(map(PayloadFormat::V2, answer).unwrap().body, [0x00, 0xff]);
        let answer = json!({"statusCode": 200, "body": "AP8=", "isBase64Encoded": false});
        assert_eq!(map(PayloadFormat::V1, answer).unwrap().body, b"AP8=");
        let answer = json!({"statusCode": 200, "body": "not base64!", "isBase64Encoded": true});
        assert!(map(PayloadFormat::V1, answer).is_err());
    }

    #[test]
    fn cookies_become_set_cookie_headers_in_2_0() {
        let answer = json!({"statusCode": 200, "cookies": ["a=1; Path=/", "b=2"], "headers": {"x": "y"}});
        let response = map(PayloadFormat::V2, answer.clone()).unwrap();
        assert_eq!(
            response.headers,
            pairs(&[("x", "y"), ("set-cookie", "a=1; Path=/"), ("set-cookie", "b=2")])
        );
        assert_eq!(
            map(PayloadFormat::V1, answer).unwrap().headers,
            pairs(&[("x", "y")])
        );
    }

    #[test]
    fn a_1_0_answer_without_status_code_is_malformed() {
        for answer in [
            json!({"body": "hi"}),
            json!("hello"),
            json!([1]),
            json!({"statusCode": "200"}),
        ] {
            assert!(map(PayloadFormat::V1, answer.clone()).is_err(), "{answer}");
        }
        assert!(from_function(PayloadFormat::V1, b"not json").is_err());
    }

    #[test]
    fn a_2_0_answer_without_status_code_is_a_json_200() {
        for answer in [r#""hello""#, r#"{"message": "hi"}"#, "[1, 2]", "42"] {
            let response = from_function(PayloadFormat::V2, answer.as_bytes()).unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(response.headers, pairs(&[("content-type", "application/json")]));
            assert_eq!(response.body, answer.as_bytes(), "the JSON text as returned");
        }
        assert!(from_function(PayloadFormat::V2, b"hello").is_err());
    }

    #[test]
    fn wrongly_typed_fields_are_malformed() {
        for answer in [
            json!({"statusCode": 99}),
            json!({"statusCode": 200, "headers": {"x": 1}}),
            json!({"statusCode": 200, "headers": ["x"]}),
            json!({"statusCode": 200, "multiValueHeaders": {"x": "y"}}),
            json!({"statusCode": 200, "body": {"a": 1}}),
            json!({"statusCode": 200, "isBase64Encoded": "yes"}),
            json!({"statusCode": 200, "cookies": "a=1"}),
        ] {
            assert!(map(PayloadFormat::V2, answer.clone()).is_err(), "{answer}");
        }
        let nulls = json!({"statusCode": 204, "headers": null, "multiValueHeaders": null, "body": null, "cookies": null});
        assert_eq!(map(PayloadFormat::V2, nulls).unwrap().status, 204);
    }
}
