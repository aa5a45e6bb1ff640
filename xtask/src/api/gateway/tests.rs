//! The gateway's answers end to end, with fake functions that record what
//! they were sent: which function was asked, in what order, with what
//! timeout, and what the client got back.

use serde_json::{json, Value};

use super::*;
use crate::api::fake::{http, Fake};
use crate::api::routes::tests::route;
use crate::config::api::{Authorizer, AuthorizerResponse};

const TOKEN: (&str, &str) = ("authorization", "Bearer t0k");

fn api(format: PayloadFormat, response: AuthorizerResponse, ttl_s: u64) -> Api {
    let mut users = route("GET /users/{id}", "users");
    users.authorize = true;
    Api {
        payload_format: format,
        authorizer: Some(Authorizer {
            function: "authorizer".into(),
            payload_format: format,
            response,
            identity_sources: vec!["$request.header.Authorization".into()],
            result_ttl_s: ttl_s,
        }),
        routes: vec![
            route("OPTIONS /{proxy+}", "cors"),
            users,
            route("POST /slow", "slow"),
        ],
    }
}

fn gateway(api: &Api) -> Gateway {
    let timeouts = BTreeMap::from([
        ("authorizer".to_string(), Duration::from_secs(5)),
        ("users".to_string(), Duration::from_secs(3)),
        ("slow".to_string(), Duration::from_secs(900)),
    ]);
    Gateway::new(api, &timeouts)
}

fn stamp(epoch_ms: u64) -> Stamp {
    Stamp {
        request_id: format!("req-{epoch_ms}"),
        epoch_ms,
    }
}

fn v1() -> Api {
    api(PayloadFormat::V1, AuthorizerResponse::Iam, 0)
}

fn allow() -> Value {
    json!({
        "principalId": "alice",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}
        ]},
        "context": {"sub": "a11ce"},
    })
}

fn ok(body: &str) -> Value {
    json!({"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": body})
}

/// Status, body as text and the headers of a response.
fn seen(handled: &Handled) -> (u16, String, Vec<(String, String)>) {
    let response = &handled.response;
    (
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
        response.headers.clone(),
    )
}

fn refusal(status: u16, message: &str, request_id: &str) -> (u16, String, Vec<(String, String)>) {
    let headers = [
        ("content-type", "application/json"),
        ("apigw-requestid", request_id),
    ];
    (
        status,
        format!(r#"{{"message":"{message}"}}"#),
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn the_gateway_is_shared_by_threads() {
    fn shared<T: Sync + Send>() {}
    shared::<Gateway>();
}

#[test]
fn no_route_is_404_without_invoking() {
    let fake = Fake::default();
    let handled = gateway(&v1()).handle(&http("GET", "/nowhere", &[], b""), &stamp(1), &fake);
    assert_eq!(seen(&handled), refusal(404, "Not Found", "req-1"));
    assert_eq!((handled.route, handled.sent.len()), (None, 0));
    assert!(fake.calls().is_empty());
}

#[test]
fn a_body_over_the_limit_is_413_without_invoking() {
    let fake = Fake::default().returning("slow", ok("read"));
    let mut request = http("POST", "/slow", &[], b"cut short");
    request.body_too_large = true;
    let handled = gateway(&v1()).handle(&request, &stamp(1), &fake);
    assert_eq!(seen(&handled), refusal(413, "Request Entity Too Large", "req-1"));
    let request = http(
        "POST",
        "/slow",
        &[],
        &vec![b'x'; HTTP_API_MAX_PAYLOAD_BYTES as usize + 1],
    );
    assert_eq!(
        gateway(&v1()).handle(&request, &stamp(2), &fake).response.status,
        413
    );
    assert!(fake.calls().is_empty());
    let request = http(
        "POST",
        "/slow",
        &[],
        &vec![b'x'; HTTP_API_MAX_PAYLOAD_BYTES as usize],
    );
    assert_eq!(
        gateway(&v1()).handle(&request, &stamp(3), &fake).response.status,
        200
    );
}

#[test]
fn an_answer_is_mapped_and_stamped_with_the_request_id() {
    let fake = Fake::default().returning("slow", ok("done"));
    let handled = gateway(&v1()).handle(&http("POST", "/slow", &[], b""), &stamp(7), &fake);
    let headers = [("content-type", "text/plain"), ("apigw-requestid", "req-7")];
    let headers = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(seen(&handled), (200, "done".into(), headers));
    assert_eq!(handled.route.as_deref(), Some("POST /slow"));
    let calls = fake.calls();
    assert_eq!(
        (calls[0].function.as_str(), calls[0].request_id.as_str()),
        ("slow", "req-7")
    );
    assert_eq!(calls[0].event["resource"], json!("/slow"));
}

#[test]
fn the_timeout_passed_is_the_smaller_of_30_s_and_the_functions() {
    let fake = Fake::default()
        .answering("slow", Invoked::TimedOut)
        .answering("users", Invoked::TimedOut)
        .returning("authorizer", allow());
    let gateway = gateway(&v1());
    let handled = gateway.handle(&http("POST", "/slow", &[], b""), &stamp(1), &fake);
    assert_eq!(seen(&handled), refusal(503, "Service Unavailable", "req-1"));
    gateway.handle(&http("GET", "/users/1", &[TOKEN], b""), &stamp(2), &fake);
    let timeouts: Vec<(String, Duration)> = fake
        .calls()
        .into_iter()
        .map(|call| (call.function, call.timeout))
        .collect();
    let expected = [("slow", 30), ("authorizer", 5), ("users", 3)];
    let expected: Vec<(String, Duration)> = expected
        .iter()
        .map(|(f, s)| (f.to_string(), Duration::from_secs(*s)))
        .collect();
    assert_eq!(timeouts, expected);
}

#[test]
fn a_function_error_or_malformed_answer_is_502_and_a_throttle_429() {
    let failed = Invoked::Failed {
        error_type: "KeyError".into(),
        message: "'id'".into(),
    };
    let cases = [
        (
            failed,
            refusal(502, "Internal Server Error", "req-1"),
            "KeyError: 'id'",
        ),
        (
            Invoked::Answer(br#"{"body": "no status"}"#.to_vec()),
            refusal(502, "Internal Server Error", "req-1"),
            "needs an object with `statusCode`",
        ),
        (
            Invoked::Answer(br#""bare""#.to_vec()),
            refusal(502, "Internal Server Error", "req-1"),
            "needs an object with `statusCode`",
        ),
        (
            Invoked::Throttled,
            refusal(429, "Too Many Requests", "req-1"),
            "reserved concurrency",
        ),
    ];
    for (invoked, expected, why) in cases {
        let fake = Fake::default().answering("slow", invoked.clone());
        let handled = gateway(&v1()).handle(&http("POST", "/slow", &[], b""), &stamp(1), &fake);
        assert_eq!(seen(&handled), expected, "{invoked:?}");
        // The client is told only API Gateway's words; the log says why.
        let problem = handled.problem.unwrap_or_default();
        assert!(problem.contains("`slow`") && problem.contains(why), "{problem}");
    }
}

#[test]
fn a_2_0_bare_string_is_a_json_200() {
    let api = api(PayloadFormat::V2, AuthorizerResponse::Simple, 0);
    let fake = Fake::default().answering("slow", Invoked::Answer(br#""hello""#.to_vec()));
    let handled = gateway(&api).handle(&http("POST", "/slow", &[], b""), &stamp(1), &fake);
    let headers = [("content-type", "application/json"), ("apigw-requestid", "req-1")];
    let headers = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(seen(&handled), (200, r#""hello""#.into(), headers));
}

#[test]
fn an_authorized_route_sends_the_authorizers_event_first_and_its_context_on() {
    let fake = Fake::default()
        .returning("authorizer", allow())
        .returning("users", ok("alice"));
    let handled = gateway(&v1()).handle(&http("GET", "/users/42", &[TOKEN], b""), &stamp(1), &fake);
    assert_eq!(handled.response.status, 200);
    let sent: Vec<(&str, Value)> = handled
        .sent
        .iter()
        .map(|sent| {
            (
                sent.function.as_str(),
                serde_json::from_slice(&sent.event).unwrap(),
            )
        })
        .collect();
    assert_eq!((sent[0].0, sent[1].0), ("authorizer", "users"));
    assert_eq!(sent[0].1["type"], json!("REQUEST"));
    let mut context = sent[1].1["requestContext"]["authorizer"].clone();
    assert!(context["integrationLatency"].is_u64(), "{context}");
    context["integrationLatency"] = json!(0);
    assert_eq!(
        context,
        json!({"sub": "a11ce", "principalId": "alice", "integrationLatency": 0})
    );
    assert_eq!(sent[1].1["pathParameters"], json!({"id": "42"}));
}

#[test]
fn the_2_0_integration_reads_the_context_under_lambda() {
    let api = api(PayloadFormat::V2, AuthorizerResponse::Simple, 0);
    let fake = Fake::default()
        .returning(
            "authorizer",
            json!({"isAuthorized": true, "context": {"sub": "a11ce"}}),
        )
        .returning("users", ok("alice"));
    let handled = gateway(&api).handle(&http("GET", "/users/42", &[TOKEN], b""), &stamp(1), &fake);
    assert_eq!(handled.response.status, 200);
    let event: Value = serde_json::from_slice(&handled.sent[1].event).unwrap();
    assert_eq!(
        event["requestContext"]["authorizer"],
        json!({"lambda": {"sub": "a11ce"}})
    );
}

#[test]
fn the_authorizer_refuses_with_401_403_and_500() {
    let deny = json!({"principalId": "x", "policyDocument": {"Statement": [
        {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "*"}]}});
    let cases = [
        (&[][..], Fake::default(), refusal(401, "Unauthorized", "req-1"), 0),
        (
            &[TOKEN][..],
            Fake::default().returning("authorizer", deny),
            refusal(403, "Forbidden", "req-1"),
            1,
        ),
        (
            &[TOKEN][..],
            Fake::default(),
            refusal(500, "Internal Server Error", "req-1"),
            1,
        ),
        (
            &[TOKEN][..],
            Fake::default().answering("authorizer", Invoked::TimedOut),
            refusal(500, "Internal Server Error", "req-1"),
            1,
        ),
    ];
    for (headers, fake, expected, sent) in cases {
        let handled = gateway(&v1()).handle(&http("GET", "/users/42", headers, b""), &stamp(1), &fake);
        assert_eq!(seen(&handled), expected, "{headers:?}");
        assert_eq!(handled.route.as_deref(), Some("GET /users/{id}"));
        assert_eq!(handled.sent.len(), sent);
        assert!(
            !fake.called().contains(&"users".to_string()),
            "the integration is never asked"
        );
    }
}

#[test]
fn an_open_route_never_asks_the_authorizer() {
    let fake = Fake::default().returning("cors", json!({"statusCode": 204}));
    let handled = gateway(&v1()).handle(&http("OPTIONS", "/users/42", &[], b""), &stamp(1), &fake);
    assert_eq!(handled.response.status, 204);
    assert_eq!(fake.called(), ["cors"]);
}

#[test]
fn a_cached_answer_serves_the_next_request_until_the_ttl_ends() {
    let api = api(PayloadFormat::V1, AuthorizerResponse::Iam, 60);
    let gateway = gateway(&api);
    let fake = Fake::default()
        .returning("authorizer", allow())
        .returning("users", ok("alice"));
    let request = http("GET", "/users/42", &[TOKEN], b"");
    let first = gateway.handle(&request, &stamp(1_000), &fake);
    let second = gateway.handle(&request, &stamp(60_999), &fake);
    let third = gateway.handle(&request, &stamp(61_000), &fake);
    assert_eq!(
        fake.called(),
        ["authorizer", "users", "users", "authorizer", "users"]
    );
    assert_eq!((first.sent.len(), second.sent.len(), third.sent.len()), (2, 1, 2));
    let cached: Value = serde_json::from_slice(&second.sent[0].event).unwrap();
    assert_eq!(
        cached["requestContext"]["authorizer"]["integrationLatency"],
        json!(0)
    );
}
