use serde_json::{json, Value};

use super::clients::parse_response;
use super::cors::{problems, text_of_result};
use super::events::{event_differences, Connection};
use super::minted::{same_text, Minted};
use super::responses::{response_differences, Received};

/// A committed event, as generate.py writes one (the connection: a
/// client at 203.0.113.10 over HTTPS on 443).
fn committed() -> Value {
    json!({
        "version": "1.0",
        "resource": "/users/{user_id}",
        "path": "/users/b0b",
        "httpMethod": "GET",
        "headers": {
            "host": "local00api.execute-api.us-east-1.amazonaws.com",
            "accept": "application/json",
            "x-forwarded-for": "203.0.113.10",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "multiValueHeaders": {
            "host": ["local00api.execute-api.us-east-1.amazonaws.com"],
            "accept": ["application/json"],
            "x-forwarded-for": ["203.0.113.10"],
            "x-forwarded-port": ["443"],
            "x-forwarded-proto": ["https"]
        },
        "pathParameters": {"user_id": "b0b"},
        "requestContext": {
            "authorizer": {"sub": "b0b", "principalId": "b0b", "integrationLatency": 42},
            "extendedRequestId": "committed-id",
            "identity": {"sourceIp": "203.0.113.10", "userAgent": ""},
            "requestId": "committed-id",
            "requestTime": "01/Jan/2025:12:00:00 +0000",
            "requestTimeEpoch": 1735732800000u64
        },
        "body": null,
        "isBase64Encoded": false
    })
}

/// What serve sends for the same request on port 8123, id "abc".
fn served() -> Value {
    let mut event = committed();
    for (name, value) in [
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-port", "8123"),
        ("x-forwarded-proto", "http"),
    ] {
        event["headers"][name] = json!(value);
        event["multiValueHeaders"][name] = json!([value]);
    }
    let context = &mut event["requestContext"];
    context["requestId"] = json!("abc");
    context["extendedRequestId"] = json!("abc");
    context["identity"]["sourceIp"] = json!("127.0.0.1");
    context["requestTime"] = json!("07/Dec/2026:09:48:41 +0000");
    context["requestTimeEpoch"] = json!(1796636921000u64);
    context["authorizer"]["integrationLatency"] = json!(3);
    event
}

const CONNECTION: Connection = Connection {
    request_id: "abc",
    port: 8123,
};

#[test]
fn an_event_equal_but_for_the_connection_and_the_moment_passes() {
    assert_eq!(
        event_differences(&committed(), &served(), &CONNECTION),
        Vec::<String>::new()
    );
}

#[test]
fn any_other_difference_in_an_event_is_named_by_its_path() {
    let mut event = served();
    event["headers"]["accept"] = json!("text/html");
    event["pathParameters"] = json!({"user_id": "dave"});
    event["requestContext"]["authorizer"]["groups"] = json!("admins");
    event.as_object_mut().unwrap().remove("isBase64Encoded");
    assert_eq!(
        event_differences(&committed(), &event, &CONNECTION),
        [
            r#"headers.accept: the committed event "application/json", serve's event "text/html""#,
            "isBase64Encoded: the committed event false, serve's event (absent)",
            r#"pathParameters.user_id: the committed event "b0b", serve's event "dave""#,
            r#"requestContext.authorizer.groups: the committed event (absent), serve's event "admins""#,
        ]
    );
}

#[test]
fn what_describes_the_connection_must_be_this_connections() {
    let mut event = served();
    event["headers"]["x-forwarded-port"] = json!("443");
    event["requestContext"]["extendedRequestId"] = json!("other");
    event["requestContext"]["requestTime"] = json!("2026-12-07T09:48:41Z");
    event["requestContext"]["authorizer"]
        .as_object_mut()
        .unwrap()
        .remove("integrationLatency");
    let found = event_differences(&committed(), &event, &CONNECTION);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found[0].starts_with("requestContext.extendedRequestId: the connection's is \"abc\""));
    assert!(found[1].starts_with("headers.x-forwarded-port: the connection's is \"8123\""));
    assert!(found[2].starts_with("requestContext.requestTime: not dd/Mon/yyyy"));
    assert!(found[3].starts_with("requestContext.authorizer.integrationLatency: not a number"));
}

fn received(status: u16, headers: &[(&str, &str)], body: &str) -> Received {
    Received {
        status,
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// What serve's HTTP server and gateway add to every response.
const ADDED: [(&str, &str); 3] = [
    ("date", "Mon, 07 Dec 2026 09:48:41 GMT"),
    ("content-length", "2"),
    ("apigw-requestid", "abc"),
];

#[test]
fn a_response_with_the_functions_status_headers_and_body_and_only_serves_additions_passes() {
    let answer = json!({
        "statusCode": 302,
        "headers": {"Location": "http://localhost:3000/", "Vary": "Origin"},
        "multiValueHeaders": {"Set-Cookie": ["a=1; Path=/", "b=2"], "Vary": ["Origin"]},
        "body": "e30=",
        "isBase64Encoded": true
    });
    let mut headers = vec![
        ("Location", "http://localhost:3000/"),
        ("Vary", "Origin"),
        ("Set-Cookie", "a=1; Path=/"),
        ("set-cookie", "b=2"),
    ];
    headers.extend(ADDED);
    let got = received(302, &headers, "{}");
    assert_eq!(
        response_differences(&got, &answer, &mut Minted::default()),
        Vec::<String>::new()
    );
}

#[test]
fn a_changed_status_a_lost_or_changed_header_an_added_one_and_another_body_are_each_named() {
    let answer = json!({
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Vary": "Origin", "X-Kept": "yes"},
        "body": "{\"users\": []}"
    });
    let mut headers = vec![
        ("content-type", "text/plain"),
        ("X-Kept", "yes"),
        ("x-extra", "1"),
    ];
    headers.extend(ADDED);
    let got = received(201, &headers, r#"{"users": [1]}"#);
    assert_eq!(
        response_differences(&got, &answer, &mut Minted::default()),
        [
            "status: the function answered 200, serve 201",
            r#"header `Content-Type`: the function gave "application/json", serve sent ["text/plain"]"#,
            r#"header `Vary`: the function gave "Origin", serve sent none"#,
            "header `content-type: text/plain`: serve added it; the function did not give it",
            "header `x-extra: 1`: serve added it; the function did not give it",
            "body.users: serve sent [1], the function gave []",
        ]
    );
    let without_id = received(200, &[("Date", "x")], "");
    let found = response_differences(&without_id, &json!({"statusCode": 200}), &mut Minted::default());
    assert_eq!(found, ["header `apigw-requestid`: serve sent none"]);
}

#[test]
fn a_made_up_id_must_stand_for_the_same_value_every_time_and_times_only_look_alike() {
    let mut minted = Minted::default();
    let user =
        |id: &str, at: &str| format!(r#"{{"user_id": "{id}", "created_at": "{at}", "updated_at": "{at}"}}"#);
    let answer = |body: String| json!({"statusCode": 200, "body": body});
    let (served_id, invoked_id) = (
        "6f1c2d3e-0000-4000-8000-00000000000a",
        "9a8b7c6d-0000-4000-8000-00000000000b",
    );
    let through_serve = |id: &str| {
        received(
            200,
            &[("apigw-requestid", "r")],
            &user(id, "2026-12-07T09:48:41+00:00"),
        )
    };
    let created = answer(user(invoked_id, "2026-12-07T09:49:20+00:00"));
    assert!(response_differences(&through_serve(served_id), &created, &mut minted).is_empty());
    // Later, the same user again: consistent.
    assert!(response_differences(&through_serve(served_id), &created, &mut minted).is_empty());
    // Another id of serve's for the same user of invoke's: not consistent.
    let other = "11111111-0000-4000-8000-00000000000c";
    let found = response_differences(&through_serve(other), &created, &mut minted);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("body.user_id: serve sent \"11111111"),
        "{found:?}"
    );
    // An id a client sent (a seeded user's) was not made up: it must be equal.
    let bob = "b0b00000-0000-4000-8000-000000000002";
    let mut minted = Minted::knowing(format!(r#"{{"path": "/users/{bob}"}}"#));
    let seeded = answer(user(bob, "2026-12-07T09:49:20+00:00"));
    let dave = "d0d00000-0000-4000-8000-000000000003";
    let found = response_differences(&through_serve(dave), &seeded, &mut minted);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(response_differences(&through_serve(bob), &seeded, &mut minted).is_empty());
    assert!(response_differences(&through_serve(served_id), &created, &mut minted).is_empty());
    let not_a_time = answer(user(invoked_id, "yesterday"));
    let found = response_differences(&through_serve(served_id), &not_a_time, &mut minted);
    assert_eq!(found.len(), 2, "{found:?}");
}

/// A JWT of `claims` with a made-up signature.
fn token(claims: Value) -> String {
    let encode = |value: &Value| {
        xtask::ground::digest::base64(value.to_string().as_bytes())
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    };
    format!(
        "{}.{}.c2ln",
        encode(&json!({"alg": "RS256", "kid": "k"})),
        encode(&claims)
    )
}

#[test]
fn tokens_signed_at_another_moment_are_the_same_but_other_claims_are_not() {
    let claims = |iat: i64, sub: &str| json!({"sub": sub, "iat": iat, "exp": iat + 3600, "auth_time": iat});
    let cookie = |claims: Value| format!("access_token={}; Max-Age=3600; Secure", token(claims));
    assert!(same_text(
        &cookie(claims(100, "alice")),
        &cookie(claims(160, "alice"))
    ));
    assert!(!same_text(
        &cookie(claims(100, "alice")),
        &cookie(claims(100, "bob"))
    ));
    let longer = json!({"sub": "alice", "iat": 160, "exp": 160 + 7200});
    assert!(!same_text(&cookie(claims(100, "alice")), &cookie(longer)));
    assert!(!same_text(
        &cookie(claims(100, "alice")),
        &cookie(claims(160, "alice")).replace("Secure", "HttpOnly")
    ));
}

#[test]
fn a_list_ordered_by_id_may_put_a_made_up_record_elsewhere_but_holds_the_same_records() {
    let record = |id: &str, name: &str| json!({"user_id": id, "name": name});
    let (alice, bob) = (
        "a11ce000-0000-4000-8000-000000000001",
        "b0b00000-0000-4000-8000-000000000002",
    );
    let (made_by_serve, made_by_invoke) = (
        "f0000000-0000-4000-8000-00000000000a",
        "10000000-0000-4000-8000-00000000000b",
    );
    let sent = format!("/users/{alice} /users/{bob}");
    let list = |records: Vec<Value>| json!({"users": records}).to_string();
    let through_serve = received(
        200,
        &[("apigw-requestid", "r")],
        &list(vec![
            record(alice, "Alice"),
            record(bob, "Bob"),
            record(made_by_serve, "Erin"),
        ]),
    );
    let answer = json!({"statusCode": 200, "body": list(vec![
        record(made_by_invoke, "Erin"), record(alice, "Alice"), record(bob, "Bob"),
    ])});
    let found = response_differences(&through_serve, &answer, &mut Minted::knowing(sent.clone()));
    assert!(found.is_empty(), "{found:?}");

    let renamed = json!({"statusCode": 200, "body": list(vec![
        record(made_by_invoke, "Erin"), record(alice, "Alice"), record(bob, "Robert"),
    ])});
    let found = response_differences(&through_serve, &renamed, &mut Minted::knowing(sent.clone()));
    assert_eq!(
        found,
        [r#"body.users.1.name: serve sent "Bob", the function gave "Robert""#]
    );
    let dave = "d0d00000-0000-4000-8000-000000000003";
    let other_user = json!({"statusCode": 200, "body": list(vec![
        record(made_by_invoke, "Erin"), record(alice, "Alice"), record(dave, "Bob"),
    ])});
    let sent_dave = format!("{sent} /users/{dave}");
    let found = response_differences(&through_serve, &other_user, &mut Minted::knowing(sent_dave));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("body.users.1.user_id: serve sent \"b0b"),
        "{found:?}"
    );
}

#[test]
fn curls_output_is_read_past_a_100_continue() {
    let output = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\napigw-requestid: x\r\n\r\n{\"message\":\"Request Entity Too Large\"}";
    let got = parse_response(output).unwrap();
    assert_eq!(got.status, 413);
    assert_eq!(
        got.headers,
        [
            ("Content-Type".to_string(), "application/json".to_string()),
            ("apigw-requestid".to_string(), "x".to_string())
        ]
    );
    assert_eq!(got.body, br#"{"message":"Request Entity Too Large"}"#);
    assert!(parse_response(b"HTTP/1.1 200 OK\r\nno end").is_err());
}

#[test]
fn the_browser_checks_fail_unless_both_outcomes_and_both_preflights_are_seen() {
    let page = r#"<html><body><pre id="result">status 200 users 3</pre><script>x</script></body></html>"#;
    assert_eq!(text_of_result(page).as_deref(), Some("status 200 users 3"));
    assert_eq!(text_of_result("<html></html>"), None);
    let log = "OPTIONS /users -> 204 OPTIONS /{proxy+} 3.1 ms (a)\n\
               GET /users -> 200 GET /users 40.2 ms (b)\n\
               OPTIONS /users -> 403 OPTIONS /{proxy+} 2.0 ms (c)\n";
    let blocked = "rejected TypeError: Failed to fetch";
    assert!(problems("status 200 users 3", blocked, log).is_empty());
    assert_eq!(problems(blocked, blocked, log).len(), 1);
    assert_eq!(problems("status 200 users 3", "status 200 users 3", log).len(), 1);
    let sent_anyway = format!("{log}GET /users -> 403 GET /users 1.0 ms (d)\n");
    assert_eq!(problems("status 200 users 3", blocked, &sent_anyway).len(), 1);
    let no_preflight = log.replace("OPTIONS /users -> 403", "OPTIONS /other -> 403");
    assert_eq!(problems("status 200 users 3", blocked, &no_preflight).len(), 1);
}
