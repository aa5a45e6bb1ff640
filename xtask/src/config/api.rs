//! The HTTP API in front of the functions, as `Cargo.toml` declares it:
//! each function's routes, which of them go through the Lambda REQUEST
//! authorizer, the authorizer itself and the payload format the
//! integrations send. `dist/manifest.json` carries it to Terraform
//! (`terraform/modules/http_api`) and `serve` answers it locally, so the
//! routes are written once.

use std::fmt;

use crate::facts;

/// The event shape API Gateway sends a function (integration or authorizer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PayloadFormat {
    /// REST-like: `httpMethod`, `path`, `multiValueHeaders`, `methodArn`.
    V1,
    /// `routeKey`, `rawPath`, `cookies`, `requestContext.http`, `routeArn`.
    V2,
}

impl PayloadFormat {
    pub const NAMES: &'static str = "\"1.0\" or \"2.0\"";

    pub fn parse(text: &str) -> Option<PayloadFormat> {
        match text {
            "1.0" => Some(PayloadFormat::V1),
            "2.0" => Some(PayloadFormat::V2),
            _ => None,
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            PayloadFormat::V1 => "1.0",
            PayloadFormat::V2 => "2.0",
        }
    }
}

/// One segment of a route's path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    /// Matches itself exactly.
    Literal(String),
    /// `{name}`: one segment, handed to the function as `pathParameters.name`.
    Param(String),
    /// `{name+}`: the rest of the path (one segment or more), only last.
    Greedy(String),
}

/// A route key as API Gateway writes it: `GET /users/{user_id}`,
/// `ANY /{proxy+}`, or `$default`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteKey {
    Default,
    Route {
        /// Upper case: `GET`, `POST`, …, or `ANY` for every method.
        method: String,
        /// The path as written (`/users/{user_id}`): API Gateway's `resource`.
        path: String,
        segments: Vec<Segment>,
    },
}

impl RouteKey {
    /// A route key as API Gateway HTTP API accepts it: `$default`, or an
    /// upper-case method of [`facts::HTTP_API_METHODS`], one space and a
    /// path of `/`-separated segments, each a literal, a `{name}` or, last
    /// only, a greedy `{name+}`. Names hold letters, digits, `.`, `_` and
    /// `-`, each once in a key. The error is the reason, without the key's
    /// name: the caller knows where the text came from.
    pub fn parse(text: &str) -> Result<RouteKey, String> {
        if text == "$default" {
            return Ok(RouteKey::Default);
        }
        let example = "(e.g. \"GET /users/{user_id}\", \"ANY /{proxy+}\" or \"$default\")";
        let Some((method, path)) = text.split_once(' ') else {
            return Err(format!("`{text}` is not `METHOD /path` or `$default` {example}"));
        };
        if !facts::HTTP_API_METHODS.contains(&method) {
            let upper = method.to_ascii_uppercase();
            return Err(if facts::HTTP_API_METHODS.contains(&upper.as_str()) {
                format!("`{text}`: API Gateway takes the method in upper case: `{upper}`")
            } else {
                format!(
                    "`{text}`: unknown method `{method}` (use one of: {})",
                    facts::HTTP_API_METHODS.join(", ")
                )
            });
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("`{text}`: the path must start with `/` {example}"));
        };
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut segments = Vec::with_capacity(parts.len());
        for (at, part) in parts.iter().enumerate() {
            let segment = parse_segment(part).map_err(|why| format!("`{text}`: {why}"))?;
            let name = match &segment {
                Segment::Literal(_) => None,
                Segment::Param(name) => Some(name),
                Segment::Greedy(name) => {
                    if at + 1 != parts.len() {
                        return Err(format!(
                            "`{text}`: the greedy `{{{name}+}}` matches the rest of the path, so it must be the last segment"
                        ));
                    }
                    Some(name)
                }
            };
            if let Some(name) = name {
                let seen = segments.iter().any(|earlier| match earlier {
                    Segment::Param(other) | Segment::Greedy(other) => other == name,
                    Segment::Literal(_) => false,
                });
                if seen {
                    return Err(format!(
                        "`{text}`: the parameter `{name}` appears twice (pathParameters has one value per name: rename one)"
                    ));
                }
            }
            segments.push(segment);
        }
        Ok(RouteKey::Route {
            method: method.to_string(),
            path: path.to_string(),
            segments,
        })
    }

    /// The method, `None` for `$default`.
    pub fn method(&self) -> Option<&str> {
        match self {
            RouteKey::Default => None,
            RouteKey::Route { method, .. } => Some(method),
        }
    }
}

/// One segment between slashes: a literal, `{name}` or `{name+}`.
fn parse_segment(part: &str) -> Result<Segment, String> {
    if part.is_empty() {
        return Err(
            "an empty segment (`//`, or a `/` at the end: write `/users`, not `/users/`)".to_string(),
        );
    }
    if let Some(inner) = part.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
        if !valid {
            return Err(format!(
                "`{part}`: a parameter's name holds letters, digits, `.`, `_` and `-` (e.g. `{{user_id}}` or `{{proxy+}}`)"
            ));
        }
        return Ok(if greedy {
            Segment::Greedy(name.to_string())
        } else {
            Segment::Param(name.to_string())
        });
    }
    if part.contains(['{', '}']) {
        return Err(format!(
            "`{part}`: a parameter is a whole segment, with no text around its braces (`/files/{{name}}`, not `/files/{{name}}.json`)"
        ));
    }
    if let Some(bad) = part
        .chars()
        .find(|ch| ch.is_whitespace() || ch.is_control() || matches!(ch, '?' | '#'))
    {
        return Err(format!(
            "`{part}`: {bad:?} cannot be part of a route's path (a query string or fragment is not part of a route)"
        ));
    }
    Ok(Segment::Literal(part.to_string()))
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Default => f.write_str("$default"),
            RouteKey::Route { method, path, .. } => write!(f, "{method} {path}"),
        }
    }
}

/// A route: its key, the function it invokes, and whether the authorizer
/// decides first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub key: RouteKey,
    pub function: String,
    pub authorize: bool,
}

/// What the authorizer function answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerResponse {
    /// An IAM policy document (`principalId`, `policyDocument`, `context`).
    Iam,
    /// `{"isAuthorized": bool, "context": {...}}`: payload format 2.0 only.
    Simple,
}

/// The Lambda REQUEST authorizer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    pub function: String,
    pub payload_format: PayloadFormat,
    pub response: AuthorizerResponse,
    /// `$request.header.Authorization`, `$request.querystring.token`,
    /// `$context.…`, `$stageVariables.…`. Empty: the function is called for
    /// every request (and nothing is cached).
    pub identity_sources: Vec<String>,
    /// How long an answer is reused for the same identity source values;
    /// 0: not cached. At most 3600.
    pub result_ttl_s: u64,
}

/// The API: its routes (sorted by key), the authorizer, the payload format
/// of the integrations. No routes: the repository declares no API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub payload_format: PayloadFormat,
    pub authorizer: Option<Authorizer>,
    pub routes: Vec<Route>,
}

impl Default for Api {
    fn default() -> Api {
        Api {
            payload_format: PayloadFormat::V2,
            authorizer: None,
            routes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> Segment {
        Segment::Literal(text.to_string())
    }

    fn param(name: &str) -> Segment {
        Segment::Param(name.to_string())
    }

    #[test]
    fn route_keys_parse_into_method_path_and_segments() {
        assert_eq!(RouteKey::parse("$default"), Ok(RouteKey::Default));
        let key = RouteKey::parse("PATCH /users/{user_id}").unwrap();
        assert_eq!(
            key,
            RouteKey::Route {
                method: "PATCH".into(),
                path: "/users/{user_id}".into(),
                segments: vec![literal("users"), param("user_id")],
            }
        );
        assert_eq!(key.to_string(), "PATCH /users/{user_id}");
        assert_eq!(key.method(), Some("PATCH"));
        assert_eq!(
            RouteKey::parse("OPTIONS /{proxy+}").unwrap(),
            RouteKey::Route {
                method: "OPTIONS".into(),
                path: "/{proxy+}".into(),
                segments: vec![Segment::Greedy("proxy".into())],
            }
        );
        let root = RouteKey::parse("GET /").unwrap();
        assert_eq!(
            root,
            RouteKey::Route {
                method: "GET".into(),
                path: "/".into(),
                segments: vec![],
            }
        );
        let mixed = RouteKey::parse("ANY /v1.2/{a.b-c_d}/x/{rest+}").unwrap();
        assert_eq!(mixed.to_string(), "ANY /v1.2/{a.b-c_d}/x/{rest+}");
        for method in facts::HTTP_API_METHODS {
            assert!(RouteKey::parse(&format!("{method} /x")).is_ok(), "{method}");
        }
    }

    #[test]
    fn route_keys_api_gateway_refuses_are_refused_with_the_reason() {
        for (text, reason) in [
            ("", "is not `METHOD /path` or `$default`"),
            ("/users", "is not `METHOD /path` or `$default`"),
            ("$DEFAULT", "is not `METHOD /path` or `$default`"),
            ("get /users", "takes the method in upper case: `GET`"),
            ("FETCH /users", "unknown method `FETCH` (use one of: ANY, DELETE"),
            ("GET users", "the path must start with `/`"),
            ("GET  /users", "the path must start with `/`"),
            ("GET /users/", "an empty segment"),
            ("GET //users", "an empty segment"),
            ("GET /users /x", "' ' cannot be part of a route's path"),
            ("GET /users?id=1", "'?' cannot be part of a route's path"),
            (
                "GET /{proxy+}/x",
                "the greedy `{proxy+}` matches the rest of the path, so it must be the last segment",
            ),
            ("GET /{a}/{a}", "the parameter `a` appears twice"),
            ("GET /{a}/{a+}", "the parameter `a` appears twice"),
            ("GET /files/{name}.json", "no text around its braces"),
            ("GET /files/x{name}", "no text around its braces"),
            ("GET /files/{na}me}", "holds letters, digits"),
            ("GET /{}", "holds letters, digits"),
            ("GET /{+}", "holds letters, digits"),
            ("GET /{user id}", "holds letters, digits"),
            ("GET /{a:b}", "holds letters, digits"),
            ("GET /a}", "no text around its braces"),
        ] {
            match RouteKey::parse(text) {
                Ok(key) => panic!("{text:?} parsed as {key:?}"),
                Err(why) => assert!(why.contains(reason), "{text:?}: {why}"),
            }
        }
    }
}
