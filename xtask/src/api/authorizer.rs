//! The Lambda REQUEST authorizer as an HTTP API runs it: its identity
//! sources read from the request (one missing or empty: 401, the function
//! never asked), its event sent, its answer read and decided on against the
//! request's ARN, and the answer cached by the identity source values for
//! the result TTL. The clock is the request's stamp, so a test moves time
//! by stamping a later request instead of sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::api::Authorizer;
use crate::facts::HTTP_API_MAX_AUTHORIZER_TTL_S;

use super::event::{self, Authorized, Incoming};
use super::http::{Functions, Invoked, Sent};
use super::policy::Answer;

/// What the authorizer decided for one request.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    Allowed(Authorized),
    /// An identity source is missing: 401.
    Unauthorized,
    /// The answer denies this request: 403.
    Forbidden,
    /// The function failed, timed out or answered nonsense: 500. Why, for
    /// the server's log.
    Failed(String),
}

/// The authorizer and the answers it gave, shared by the server's threads.
pub(super) struct Gatekeeper {
    config: Authorizer,
    /// The smaller of API Gateway's limit and the function's own timeout.
    timeout: Duration,
    cache: Mutex<HashMap<Vec<String>, Cached>>,
}

struct Cached {
    until_ms: u64,
    answer: Answer,
}

impl Gatekeeper {
    pub fn new(config: &Authorizer, timeout: Duration) -> Gatekeeper {
        Gatekeeper {
            config: config.clone(),
            timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Decides for `incoming`, asking the function unless a cached answer
    /// for the same identity source values is still fresh. Each event sent
    /// is pushed onto `sent`.
    pub fn decide(&self, incoming: &Incoming, functions: &dyn Functions, sent: &mut Vec<Sent>) -> Verdict {
        let Some(sources) = identity_source(&self.config.identity_sources, incoming) else {
            return Verdict::Unauthorized;
        };
        let arn = event::execute_api_arn(incoming.request);
        let now_ms = incoming.stamp.epoch_ms;
        if let Some(answer) = self.cached(&sources, now_ms) {
            return verdict(&answer, &arn, 0);
        }
        let event = event::authorizer(self.config.payload_format, incoming, &sources)
            .to_string()
            .into_bytes();
        let started = Instant::now();
        let invoked = functions.invoke(
            &self.config.function,
            &incoming.stamp.request_id,
            &event,
            self.timeout,
        );
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        sent.push(Sent {
            function: self.config.function.clone(),
            event,
        });
        match self.answer(invoked) {
            Ok(answer) => {
                self.remember(sources, now_ms, &answer);
                verdict(&answer, &arn, latency_ms)
            }
            Err(why) => Verdict::Failed(format!("authorizer `{}`: {why}", self.config.function)),
        }
    }

    fn answer(&self, invoked: Invoked) -> Result<Answer, String> {
        match invoked {
            Invoked::Answer(bytes) => Answer::read(self.config.response, &bytes),
            Invoked::Failed { error_type, message } => Err(format!("failed with {error_type}: {message}")),
            Invoked::TimedOut => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            Invoked::Throttled => Err("throttled: no environment free under its reserved concurrency".into()),
        }
    }

    /// Answers are cached only when there is something to key them by and
    /// a TTL to keep them for.
    fn caches(&self) -> bool {
        !self.config.identity_sources.is_empty() && self.config.result_ttl_s > 0
    }

    fn cached(&self, sources: &[String], now_ms: u64) -> Option<Answer> {
        if !self.caches() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = cache.get(sources).filter(|cached| now_ms < cached.until_ms)?;
        Some(cached.answer.clone())
    }

    fn remember(&self, sources: Vec<String>, now_ms: u64, answer: &Answer) {
        if !self.caches() {
            return;
        }
        let ttl_ms = self.config.result_ttl_s.min(HTTP_API_MAX_AUTHORIZER_TTL_S) * 1000;
        // A poisoned lock still holds whole entries: each is inserted in one step.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, cached| now_ms < cached.until_ms);
        cache.insert(
            sources,
            Cached {
                until_ms: now_ms.saturating_add(ttl_ms),
                answer: answer.clone(),
            },
        );
    }
}

fn verdict(answer: &Answer, arn: &str, latency_ms: u64) -> Verdict {
    if !answer.allows(arn) {
        return Verdict::Forbidden;
    }
    Verdict::Allowed(Authorized {
        principal_id: answer.principal_id.clone(),
        context: answer.context.clone(),
        latency_ms,
    })
}

/// Each identity source's value, in order; `None` when one is missing or
/// empty (API Gateway's 401).
fn identity_source(sources: &[String], incoming: &Incoming) -> Option<Vec<String>> {
    sources
        .iter()
        .map(|source| source_value(source, incoming).filter(|value| !value.is_empty()))
        .collect()
}

fn source_value(source: &str, incoming: &Incoming) -> Option<String> {
    let request = incoming.request;
    if let Some(name) = source.strip_prefix("$request.header.") {
        return request.header_joined(&name.to_ascii_lowercase());
    }
    if let Some(name) = source.strip_prefix("$request.querystring.") {
        return request.query_joined(name);
    }
    if let Some(name) = source.strip_prefix("$context.") {
        return context_variable(name, incoming);
    }
    // `$stageVariables.…`: the local `$default` stage has no variables.
    None
}

/// The `$context` variables an HTTP API knows before the integration runs.
fn context_variable(name: &str, incoming: &Incoming) -> Option<String> {
    let (request, stamp) = (incoming.request, incoming.stamp);
    let value = match name {
        "accountId" => crate::facts::LOCAL_ACCOUNT.to_string(),
        "apiId" => crate::facts::LOCAL_API_ID.to_string(),
        "domainName" => request.domain_name().to_string(),
        "domainPrefix" => request.domain_prefix().to_string(),
        "extendedRequestId" | "requestId" => stamp.request_id.clone(),
        "httpMethod" => request.method.to_string(),
        "identity.sourceIp" => request.peer.to_string(),
        "identity.userAgent" => request.user_agent().to_string(),
        "path" => request.raw_path.to_string(),
        "protocol" => "HTTP/1.1".to_string(),
        "requestTime" => event::request_time(stamp.epoch_ms),
        "requestTimeEpoch" => stamp.epoch_ms.to_string(),
        "routeKey" => incoming.selected.route.key.to_string(),
        "stage" => crate::facts::HTTP_API_STAGE.to_string(),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::api::fake::{http, Fake};
    use crate::api::http::{HttpRequest, Stamp};
    use crate::api::request::Request;
    use crate::api::routes::{select, tests::route};
    use crate::config::api::{AuthorizerResponse, PayloadFormat};

    const T0: u64 = 1_735_732_800_000;
    const TOKEN: (&str, &str) = ("Authorization", "Bearer t0k");

    fn keeper(sources: &[&str], ttl_s: u64, response: AuthorizerResponse) -> Gatekeeper {
        let config = Authorizer {
            function: "authorizer".into(),
            payload_format: PayloadFormat::V2,
            response,
            identity_sources: sources.iter().map(|source| source.to_string()).collect(),
            result_ttl_s: ttl_s,
        };
        Gatekeeper::new(&config, Duration::from_secs(7))
    }

    fn decide(
        keeper: &Gatekeeper,
        functions: &Fake,
        http: &HttpRequest,
        epoch_ms: u64,
    ) -> (Verdict, Vec<Sent>) {
        let routes = [route("GET /users/{id}", "users")];
        let request = Request::read(http);
        let selected = select(&routes, request.method, request.raw_path).expect("GET /users/{id}");
        let stamp = Stamp {
            request_id: format!("req-{epoch_ms}"),
            epoch_ms,
        };
        let incoming = Incoming {
            request: &request,
            selected: &selected,
            stamp: &stamp,
        };
        let mut sent = Vec::new();
        let verdict = keeper.decide(&incoming, functions, &mut sent);
        (verdict, sent)
    }

    fn policy(effect: &str, resource: &str) -> Value {
        json!({
            "principalId": "alice",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource}
            ]},
            "context": {"sub": "a11ce"},
        })
    }

    fn allowed(latency_ms: u64) -> Verdict {
        Verdict::Allowed(Authorized {
            principal_id: Some("alice".into()),
            context: json!({"sub": "a11ce"}).as_object().cloned(),
            latency_ms,
        })
    }

    /// The verdict with the authorizer's latency zeroed: a real clock's figure.
    fn steady(verdict: Verdict) -> Verdict {
        match verdict {
            Verdict::Allowed(authorized) => Verdict::Allowed(Authorized {
                latency_ms: 0,
                ..authorized
            }),
            other => other,
        }
    }

    #[test]
    fn a_missing_or_empty_identity_source_is_401_without_asking() {
        let header_only = keeper(&["$request.header.Authorization"], 0, AuthorizerResponse::Iam);
        let fake = Fake::default().returning("authorizer", policy("Allow", "*"));
        for headers in [&[][..], &[("authorization", "")][..]] {
            let (verdict, sent) = decide(&header_only, &fake, &http("GET", "/users/1", headers, b""), T0);
            assert_eq!(verdict, Verdict::Unauthorized, "{headers:?}");
            assert!(sent.is_empty());
        }
        let with_stage_variable = keeper(
            &["$request.header.Authorization", "$stageVariables.key"],
            0,
            AuthorizerResponse::Iam,
        );
        let (verdict, _) = decide(
            &with_stage_variable,
            &fake,
            &http("GET", "/users/1", &[TOKEN], b""),
            T0,
        );
        assert_eq!(verdict, Verdict::Unauthorized);
        assert!(fake.calls().is_empty());
    }

    #[test]
    fn identity_sources_are_read_from_headers_query_and_context() {
        let keeper = keeper(
            &[
                "$request.header.authorization",
                "$request.querystring.token",
                "$context.httpMethod",
            ],
            0,
            AuthorizerResponse::Simple,
        );
        let fake = Fake::default().returning("authorizer", json!({"isAuthorized": true}));
        let request = http("GET", "/users/1?token=a%20b", &[TOKEN], b"");
        let (verdict, sent) = decide(&keeper, &fake, &request, T0);
        assert!(matches!(verdict, Verdict::Allowed(_)), "{verdict:?}");
        let call = &fake.calls()[0];
        assert_eq!(call.event["identitySource"], json!(["Bearer t0k", "a b", "GET"]));
        assert_eq!(
            (call.function.as_str(), call.request_id.as_str()),
            ("authorizer", "req-1735732800000")
        );
        assert_eq!(call.timeout, Duration::from_secs(7));
        assert_eq!(sent.len(), 1);
        assert_eq!(
            serde_json::from_slice::<Value>(&sent[0].event).unwrap(),
            call.event
        );
    }

    #[test]
    fn an_iam_policy_allows_denies_and_names_the_resource() {
        let keeper = keeper(&[], 0, AuthorizerResponse::Iam);
        let request = http("GET", "/users/1", &[TOKEN], b"");
        let arn = "arn:aws:execute-api:us-east-1:000000000000:local00api/$default/GET/users/1";
        for (answer, expected) in [
            (policy("Allow", arn), allowed(0)),
            (
                policy("Allow", "arn:aws:execute-api:*:*:*/*/GET/users/*"),
                allowed(0),
            ),
            (policy("Allow", &arn.replace("/1", "/2")), Verdict::Forbidden),
            (policy("Deny", "*"), Verdict::Forbidden),
        ] {
            let fake = Fake::default().returning("authorizer", answer.clone());
            let (verdict, _) = decide(&keeper, &fake, &request, T0);
            assert_eq!(steady(verdict), expected, "{answer}");
        }
    }

    #[test]
    fn a_failing_authorizer_is_a_failure_not_a_deny() {
        let keeper = keeper(&[], 0, AuthorizerResponse::Iam);
        let request = http("GET", "/users/1", &[], b"");
        for invoked in [
            Invoked::Failed {
                error_type: "Runtime.ImportModuleError".into(),
                message: "no module".into(),
            },
            Invoked::TimedOut,
            Invoked::Throttled,
            Invoked::Answer(b"{\"isAuthorized\": true}".to_vec()),
        ] {
            let fake = Fake::default().answering("authorizer", invoked.clone());
            let (verdict, sent) = decide(&keeper, &fake, &request, T0);
            assert!(matches!(verdict, Verdict::Failed(_)), "{invoked:?}: {verdict:?}");
            assert_eq!(sent.len(), 1);
        }
    }

    #[test]
    fn an_answer_is_reused_within_its_ttl_and_asked_again_after() {
        let keeper = keeper(&["$request.header.Authorization"], 300, AuthorizerResponse::Iam);
        let fake = Fake::default().returning("authorizer", policy("Allow", "*"));
        let request = http("GET", "/users/1", &[TOKEN], b"");
        let (first, sent) = decide(&keeper, &fake, &request, T0);
        assert_eq!((steady(first), sent.len()), (allowed(0), 1));
        let (again, sent) = decide(&keeper, &fake, &request, T0 + 299_999);
        assert_eq!((again, sent.len()), (allowed(0), 0));
        assert_eq!(fake.called(), ["authorizer"]);
        let other = http("GET", "/users/1", &[("authorization", "Bearer other")], b"");
        decide(&keeper, &fake, &other, T0 + 1);
        assert_eq!(fake.calls().len(), 2, "another token is another key");
        let (later, sent) = decide(&keeper, &fake, &request, T0 + 300_000);
        assert_eq!((steady(later), sent.len()), (allowed(0), 1));
        assert_eq!(fake.calls().len(), 3);
    }

    #[test]
    fn a_cached_policy_is_decided_again_for_another_route() {
        let keeper = keeper(&["$request.header.Authorization"], 300, AuthorizerResponse::Iam);
        let arn = "arn:aws:execute-api:us-east-1:000000000000:local00api/$default/GET/users/1";
        let fake = Fake::default().returning("authorizer", policy("Allow", arn));
        let (first, _) = decide(&keeper, &fake, &http("GET", "/users/1", &[TOKEN], b""), T0);
        assert!(matches!(first, Verdict::Allowed(_)));
        let (second, sent) = decide(&keeper, &fake, &http("GET", "/users/2", &[TOKEN], b""), T0 + 1);
        assert_eq!((second, sent.len()), (Verdict::Forbidden, 0));
    }

    #[test]
    fn nothing_is_cached_without_identity_sources_or_ttl() {
        let request = http("GET", "/users/1", &[TOKEN], b"");
        for keeper in [
            keeper(&[], 300, AuthorizerResponse::Iam),
            keeper(&["$request.header.Authorization"], 0, AuthorizerResponse::Iam),
        ] {
            let fake = Fake::default().returning("authorizer", policy("Allow", "*"));
            decide(&keeper, &fake, &request, T0);
            decide(&keeper, &fake, &request, T0 + 1);
            assert_eq!(fake.calls().len(), 2);
        }
    }
}
