//! Whole events compared as JSON values with literals written from the
//! contract, so a key missing, extra or misspelt fails.

use serde_json::{json, Value};

use super::*;
use crate::api::fake::http;
use crate::api::http::HttpRequest;
use crate::api::routes::{select, tests::route};

const EPOCH_MS: u64 = 1_735_732_800_123;

/// A request with every kind of value: repeated headers and query names,
/// cookies, a percent-encoded path parameter and a JSON body.
fn rich() -> HttpRequest {
    http(
        "POST",
        "/users/a%20b?tag=x&tag=y&q=a+b%26c",
        &[
            ("Host", "api.example.com:3000"),
            ("User-Agent", "curl/8.5.0"),
            ("Accept", "text/plain"),
            ("accept", "application/json"),
            ("Cookie", "theme=dark; access_token=t0k"),
            ("Content-Type", "application/json"),
        ],
        br#"{"name":"bob"}"#,
    )
}

/// The event for `http` on `route_key`, as `build` makes it.
fn event_of(http: &HttpRequest, route_key: &str, build: impl Fn(&Incoming) -> Value) -> Value {
    let routes = [route(route_key, "users")];
    let request = Request::read(http);
    let selected = select(&routes, request.method, request.raw_path).expect("the route matches");
    let stamp = Stamp {
        request_id: "req-1".into(),
        epoch_ms: EPOCH_MS,
    };
    build(&Incoming {
        request: &request,
        selected: &selected,
        stamp: &stamp,
    })
}

fn v1_rich_without_body() -> Value {
    json!({
        "version": "1.0",
        "resource": "/users/{user_id}",
        "path": "/users/a%20b",
        "httpMethod": "POST",
        "headers": {
            "host": "api.example.com:3000",
            "user-agent": "curl/8.5.0",
            "accept": "application/json",
            "cookie": "theme=dark; access_token=t0k",
            "content-type": "application/json",
            "x-forwarded-for": "192.0.2.7",
            "x-forwarded-port": "3000",
            "x-forwarded-proto": "http",
        },
        "multiValueHeaders": {
            "host": ["api.example.com:3000"],
            "user-agent": ["curl/8.5.0"],
            "accept": ["text/plain", "application/json"],
            "cookie": ["theme=dark; access_token=t0k"],
            "content-type": ["application/json"],
            "x-forwarded-for": ["192.0.2.7"],
            "x-forwarded-port": ["3000"],
            "x-forwarded-proto": ["http"],
        },
        "queryStringParameters": {"tag": "y", "q": "a b&c"},
        "multiValueQueryStringParameters": {"tag": ["x", "y"], "q": ["a b&c"]},
        "pathParameters": {"user_id": "a b"},
        "stageVariables": null,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local00api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "extendedRequestId": "req-1",
            "httpMethod": "POST",
            "identity": {
                "accessKey": null,
                "accountId": null,
                "caller": null,
                "cognitoAuthenticationProvider": null,
                "cognitoAuthenticationType": null,
                "cognitoIdentityId": null,
                "cognitoIdentityPoolId": null,
                "principalOrgId": null,
                "sourceIp": "192.0.2.7",
                "user": null,
                "userAgent": "curl/8.5.0",
                "userArn": null,
            },
            "path": "/users/a%20b",
            "protocol": "HTTP/1.1",
            "requestId": "req-1",
            "requestTime": "01/Jan/2025:12:00:00 +0000",
            "requestTimeEpoch": EPOCH_MS,
            "resourceId": null,
            "resourcePath": "/users/{user_id}",
            "stage": "$default",
        },
    })
}

fn v2_rich_without_body() -> Value {
    json!({
        "version": "2.0",
        "routeKey": "POST /users/{user_id}",
        "rawPath": "/users/a%20b",
        "rawQueryString": "tag=x&tag=y&q=a+b%26c",
        "cookies": ["theme=dark", "access_token=t0k"],
        "headers": {
            "host": "api.example.com:3000",
            "user-agent": "curl/8.5.0",
            "accept": "text/plain,application/json",
            "content-type": "application/json",
            "x-forwarded-for": "192.0.2.7",
            "x-forwarded-port": "3000",
            "x-forwarded-proto": "http",
        },
        "queryStringParameters": {"tag": "x,y", "q": "a b&c"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local00api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": "POST",
                "path": "/users/a%20b",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "req-1",
            "routeKey": "POST /users/{user_id}",
            "stage": "$default",
            "time": "01/Jan/2025:12:00:00 +0000",
            "timeEpoch": EPOCH_MS,
        },
        "pathParameters": {"user_id": "a b"},
    })
}

fn with(mut event: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().unwrap() {
        event[key] = value.clone();
    }
    event
}

#[test]
fn payload_1_0_keeps_every_value_and_the_last_one() {
    let event = event_of(&rich(), "POST /users/{user_id}", |incoming| {
        integration(PayloadFormat::V1, incoming, None)
    });
    let expected = with(
        v1_rich_without_body(),
        json!({"body": r#"{"name":"bob"}"#, "isBase64Encoded": false}),
    );
    assert_eq!(event, expected);
}

#[test]
fn payload_2_0_joins_repeated_values_and_splits_cookies() {
    let event = event_of(&rich(), "POST /users/{user_id}", |incoming| {
        integration(PayloadFormat::V2, incoming, None)
    });
    let expected = with(
        v2_rich_without_body(),
        json!({"body": r#"{"name":"bob"}"#, "isBase64Encoded": false}),
    );
    assert_eq!(event, expected);
}

#[test]
fn without_query_parameters_or_body_1_0_has_nulls_and_2_0_no_keys() {
    let bare = http("GET", "/health", &[("host", "localhost:3000")], b"");
    let v1 = event_of(&bare, "$default", |incoming| {
        integration(PayloadFormat::V1, incoming, None)
    });
    for key in [
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "body",
    ] {
        assert_eq!(v1[key], Value::Null, "{key}");
        assert!(v1.as_object().unwrap().contains_key(key), "{key}");
    }
    assert_eq!(
        (&v1["resource"], &v1["isBase64Encoded"]),
        (&json!("$default"), &json!(false))
    );
    assert_eq!(v1["requestContext"]["resourcePath"], json!("$default"));
    assert_eq!(v1["requestContext"]["identity"]["userAgent"], json!(""));
    let v2 = event_of(&bare, "$default", |incoming| {
        integration(PayloadFormat::V2, incoming, None)
    });
    let keys: Vec<&String> = v2.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "headers",
            "isBase64Encoded",
            "rawPath",
            "rawQueryString",
            "requestContext",
            "routeKey",
            "version"
        ]
    );
    assert_eq!(
        (&v2["routeKey"], &v2["rawQueryString"]),
        (&json!("$default"), &json!(""))
    );
}

#[test]
fn bodies_are_text_for_textual_types_and_base64_otherwise() {
    let cases: [(Option<&str>, &[u8], &str, bool); 9] = [
        (Some("text/html; charset=utf-8"), b"<p>", "<p>", false),
        (Some("Application/JSON"), b"{}", "{}", false),
        (Some("application/vnd.api+json"), b"{}", "{}", false),
        (Some("application/xml"), b"<a/>", "<a/>", false),
        (Some("application/atom+xml"), b"<a/>", "<a/>", false),
        (Some("application/javascript"), b"f()", "f()", false),
        (Some("application/x-www-form-urlencoded"), b"a=1", "YT0x", true),
        (None, b"a=1", "YT0x", true),
        (Some("text/plain"), b"\xff", "/w==", true),
    ];
    for (content_type, body, expected, base64) in cases {
        let headers: Vec<(&str, &str)> = content_type
            .map(|value| ("content-type", value))
            .into_iter()
            .collect();
        let request = http("POST", "/u", &headers, body);
        for format in [PayloadFormat::V1, PayloadFormat::V2] {
            let event = event_of(&request, "POST /u", |incoming| {
                integration(format, incoming, None)
            });
            assert_eq!(event["body"], json!(expected), "{content_type:?} {format:?}");
            assert_eq!(
                event["isBase64Encoded"],
                json!(base64),
                "{content_type:?} {format:?}"
            );
        }
    }
}

#[test]
fn a_greedy_parameter_is_named_as_the_route_says() {
    let request = http("GET", "/static/a/b/c", &[], b"");
    for format in [PayloadFormat::V1, PayloadFormat::V2] {
        let event = event_of(&request, "GET /static/{proxy+}", |incoming| {
            integration(format, incoming, None)
        });
        assert_eq!(event["pathParameters"], json!({"proxy": "a/b/c"}));
    }
}

#[test]
fn the_authorizers_context_reaches_the_integration_in_each_format() {
    let authorized = Authorized {
        principal_id: Some("alice".into()),
        context: json!({"sub": "a11ce", "admin": true, "level": 3})
            .as_object()
            .cloned(),
        latency_ms: 42,
    };
    let v1 = event_of(&rich(), "POST /users/{user_id}", |incoming| {
        integration(PayloadFormat::V1, incoming, Some(&authorized))
    });
    assert_eq!(
        v1["requestContext"]["authorizer"],
        json!({"sub": "a11ce", "admin": true, "level": 3, "principalId": "alice", "integrationLatency": 42})
    );
    let v2 = event_of(&rich(), "POST /users/{user_id}", |incoming| {
        integration(PayloadFormat::V2, incoming, Some(&authorized))
    });
    assert_eq!(
        v2["requestContext"]["authorizer"],
        json!({"lambda": {"sub": "a11ce", "admin": true, "level": 3}})
    );
    let silent = Authorized {
        principal_id: None,
        context: None,
        latency_ms: 0,
    };
    let v2 = event_of(&rich(), "POST /users/{user_id}", |incoming| {
        integration(PayloadFormat::V2, incoming, Some(&silent))
    });
    assert_eq!(v2["requestContext"]["authorizer"], json!({"lambda": null}));
}

#[test]
fn the_authorizers_1_0_event_is_the_integrations_without_body_plus_the_method_arn() {
    let event = event_of(&rich(), "POST /users/{user_id}", |incoming| {
        authorizer(PayloadFormat::V1, incoming, &["t0k".into()])
    });
    let expected = with(
        v1_rich_without_body(),
        json!({
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:us-east-1:000000000000:local00api/$default/POST/users/a%20b",
        }),
    );
    assert_eq!(event, expected);
}

#[test]
fn the_authorizers_2_0_event_names_the_route_arn_and_identity_source() {
    let event = event_of(&rich(), "POST /users/{user_id}", |incoming| {
        authorizer(PayloadFormat::V2, incoming, &["t0k".into(), "x".into()])
    });
    let expected = with(
        v2_rich_without_body(),
        json!({
            "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:000000000000:local00api/$default/POST/users/a%20b",
            "identitySource": ["t0k", "x"],
        }),
    );
    assert_eq!(event, expected);
    let without_sources = event_of(&rich(), "POST /users/{user_id}", |incoming| {
        authorizer(PayloadFormat::V2, incoming, &[])
    });
    assert!(without_sources.get("identitySource").is_none());
}

#[test]
fn request_times_are_spelt_as_api_gateway_does() {
    for (epoch_ms, expected) in [
        (0, "01/Jan/1970:00:00:00 +0000"),
        (1_735_732_800_123, "01/Jan/2025:12:00:00 +0000"),
        (951_868_799_000, "29/Feb/2000:23:59:59 +0000"),
        (1_709_251_199_000, "29/Feb/2024:23:59:59 +0000"),
        (4_102_444_799_999, "31/Dec/2099:23:59:59 +0000"),
    ] {
        assert_eq!(request_time(epoch_ms), expected);
    }
}
