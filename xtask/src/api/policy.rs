//! What a Lambda authorizer answered, read strictly, and what it decides
//! for one request: an IAM policy evaluated as IAM does (an explicit Deny
//! wins, then an Allow, else deny) against the request's execute-api ARN,
//! or a simple response's `isAuthorized`. The answer is kept apart from
//! the decision because the cache reuses an answer for later requests,
//! whose ARNs differ: a policy that names one route allows only that one.

use serde_json::{Map, Value};

use crate::config::api::AuthorizerResponse;

/// An authorizer's answer, understood.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Answer {
    pub grant: Grant,
    pub principal_id: Option<String>,
    pub context: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Grant {
    Simple { authorized: bool },
    Policy(Vec<Statement>),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Statement {
    pub allow: bool,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// The action API Gateway asks an authorizer's policy about, lower case:
/// IAM compares actions without regard to case.
const INVOKE: &str = "execute-api:invoke";

impl Answer {
    /// Reads `bytes` as the answer `kind` promises; an error says what is
    /// wrong with it (API Gateway answers 500 for any of them).
    pub fn read(kind: AuthorizerResponse, bytes: &[u8]) -> Result<Answer, String> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|err| format!("the authorizer's answer is not JSON: {err}"))?;
        let object = value
            .as_object()
            .ok_or("the authorizer's answer is not a JSON object")?;
        let grant = match kind {
            AuthorizerResponse::Simple => match object.get("isAuthorized") {
                Some(Value::Bool(authorized)) => Grant::Simple {
                    authorized: *authorized,
                },
                _ => return Err("a simple response needs `isAuthorized` true or false".into()),
            },
            AuthorizerResponse::Iam => Grant::Policy(statements(object)?),
        };
        let principal_id = match object.get("principalId") {
            None | Some(Value::Null) => None,
            Some(Value::String(principal)) => Some(principal.clone()),
            Some(_) => return Err("`principalId` is not a string".into()),
        };
        Ok(Answer {
            grant,
            principal_id,
            context: context(object)?,
        })
    }

    /// Whether this answer lets the request for `arn` through.
    pub fn allows(&self, arn: &str) -> bool {
        match &self.grant {
            Grant::Simple { authorized } => *authorized,
            Grant::Policy(statements) => {
                let applies = |statement: &&Statement| {
                    statement
                        .actions
                        .iter()
                        .any(|action| wildcard_match(&action.to_ascii_lowercase(), INVOKE))
                        && statement
                            .resources
                            .iter()
                            .any(|resource| wildcard_match(resource, arn))
                };
                let matching: Vec<&Statement> = statements.iter().filter(applies).collect();
                !matching.is_empty() && matching.iter().all(|statement| statement.allow)
            }
        }
    }
}

/// `policyDocument.Statement`: one statement or a list, each with
/// `Effect`, `Action` and `Resource` (a string or a list of them).
fn statements(answer: &Map<String, Value>) -> Result<Vec<Statement>, String> {
    let document = answer
        .get("policyDocument")
        .and_then(Value::as_object)
        .ok_or("an IAM response needs a `policyDocument` object")?;
    let listed = match document.get("Statement") {
        Some(Value::Array(statements)) => statements.iter().collect(),
        Some(statement @ Value::Object(_)) => vec![statement],
        _ => return Err("`policyDocument.Statement` is neither a statement nor a list of them".into()),
    };
    listed
        .into_iter()
        .map(|statement| {
            let allow = match statement.get("Effect").and_then(Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err("a statement's `Effect` is neither \"Allow\" nor \"Deny\"".to_string()),
            };
            Ok(Statement {
                allow,
                actions: strings(statement, "Action")?,
                resources: strings(statement, "Resource")?,
            })
        })
        .collect()
}

fn strings(statement: &Value, key: &str) -> Result<Vec<String>, String> {
    let wrong = || format!("a statement's `{key}` is neither a string nor a list of strings");
    match statement.get(key) {
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(many)) => many
            .iter()
            .map(|value| value.as_str().map(String::from).ok_or_else(wrong))
            .collect(),
        _ => Err(wrong()),
    }
}

/// `context`: absent or an object of strings, numbers and booleans, which
/// is all API Gateway passes on.
fn context(answer: &Map<String, Value>) -> Result<Option<Map<String, Value>>, String> {
    match answer.get("context") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(context)) => match context
            .iter()
            .find(|(_, value)| !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)))
        {
            Some((key, _)) => Err(format!(
                "context value `{key}` is not a string, number or boolean"
            )),
            None => Ok(Some(context.clone())),
        },
        Some(_) => Err("`context` is not an object".into()),
    }
}

/// IAM's wildcards: `*` any run of characters, `?` one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and how much of the text it had taken.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:local00api/$default/GET/users/42";

    fn iam(statements: Value) -> Answer {
        let answer = json!({"principalId": "alice", "policyDocument": {"Version": "2012-10-17", "Statement": statements}});
        Answer::read(AuthorizerResponse::Iam, answer.to_string().as_bytes()).unwrap()
    }

    fn statement(effect: &str, action: Value, resource: Value) -> Value {
        json!({"Effect": effect, "Action": action, "Resource": resource})
    }

    #[test]
    fn an_allow_for_the_requests_arn_or_a_wildcard_lets_it_through() {
        for resource in [
            json!(ARN),
            json!("*"),
            json!("arn:aws:execute-api:*:*:local00api/*/GET/users/*"),
            json!(["x", ARN]),
        ] {
            assert!(
                iam(json!([statement(
                    "Allow",
                    json!("execute-api:Invoke"),
                    resource.clone()
                )]))
                .allows(ARN),
                "{resource}"
            );
        }
        for action in [
            json!("*"),
            json!("execute-api:*"),
            json!(["s3:GetObject", "execute-api:invoke"]),
        ] {
            assert!(
                iam(json!(statement("Allow", action.clone(), json!(ARN)))).allows(ARN),
                "{action}"
            );
        }
    }

    #[test]
    fn another_resource_or_action_or_no_statement_is_a_deny() {
        let other = ARN.replace("/42", "/43");
        assert!(!iam(json!([statement(
            "Allow",
            json!("execute-api:Invoke"),
            json!(other)
        )]))
        .allows(ARN));
        assert!(!iam(json!([statement(
            "Allow",
            json!("execute-api:Invoke"),
            json!(format!("{ARN}/more"))
        )]))
        .allows(ARN));
        assert!(!iam(json!([statement(
            "Allow",
            json!("execute-api:ManageConnections"),
            json!("*")
        )]))
        .allows(ARN));
        assert!(!iam(json!([])).allows(ARN));
    }

    #[test]
    fn an_explicit_deny_wins_over_an_allow() {
        let answer = iam(json!([
            statement("Allow", json!("execute-api:Invoke"), json!("*")),
            statement(
                "Deny",
                json!("execute-api:Invoke"),
                json!("arn:aws:execute-api:*:*:*/*/GET/users/4?")
            ),
        ]));
        assert!(!answer.allows(ARN));
        assert!(answer.allows(&ARN.replace("/42", "/420")));
        assert!(!iam(json!([statement("Deny", json!("*"), json!("*"))])).allows(ARN));
    }

    #[test]
    fn a_simple_response_decides_with_is_authorized() {
        let read = |answer: Value| Answer::read(AuthorizerResponse::Simple, answer.to_string().as_bytes());
        assert!(read(json!({"isAuthorized": true})).unwrap().allows(ARN));
        assert!(
            !read(json!({"isAuthorized": false, "context": {"why": "expired"}}))
                .unwrap()
                .allows(ARN)
        );
        assert!(read(json!({"isAuthorized": "yes"})).is_err());
    }

    #[test]
    fn context_keeps_scalars_and_refuses_anything_else() {
        let answer = Answer::read(
            AuthorizerResponse::Simple,
            br#"{"isAuthorized": true, "principalId": "p", "context": {"s": "x", "n": 1.5, "b": false}}"#,
        )
        .unwrap();
        assert_eq!(
            answer.context,
            json!({"s": "x", "n": 1.5, "b": false}).as_object().cloned()
        );
        assert_eq!(answer.principal_id.as_deref(), Some("p"));
        for context in [
            json!({"list": [1]}),
            json!({"object": {}}),
            json!({"none": null}),
            json!("flat"),
        ] {
            let answer = json!({"isAuthorized": true, "context": context});
            assert!(
                Answer::read(AuthorizerResponse::Simple, answer.to_string().as_bytes()).is_err(),
                "{context}"
            );
        }
    }

    #[test]
    fn a_malformed_iam_answer_is_refused() {
        for answer in [
            json!("Allow"),
            json!({"principalId": "p"}),
            json!({"policyDocument": {"Statement": "Allow"}}),
            json!({"policyDocument": {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}}),
            json!({"policyDocument": {"Statement": [{"Effect": "Allow", "Resource": "*"}]}}),
            json!({"policyDocument": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": [1]}]}}),
            json!({"principalId": 7, "policyDocument": {"Statement": []}}),
        ] {
            assert!(
                Answer::read(AuthorizerResponse::Iam, answer.to_string().as_bytes()).is_err(),
                "{answer}"
            );
        }
        assert!(Answer::read(AuthorizerResponse::Iam, b"not json").is_err());
    }

    #[test]
    fn wildcards_match_as_iam_reads_them() {
        for (pattern, text, matches) in [
            ("*", "", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*/GET/*", "x/GET/users/1", true),
            ("a*b*c", "aXbYbZc", true),
            ("abc", "abcd", false),
        ] {
            assert_eq!(wildcard_match(pattern, text), matches, "{pattern} {text}");
        }
    }
}
