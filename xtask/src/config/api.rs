//! The HTTP API in front of the functions, as `Cargo.toml` declares it:
//! each function's routes, which of them go through the Lambda REQUEST
//! authorizer, the authorizer itself and the payload format the
//! integrations send. `dist/manifest.json` carries it to Terraform
//! (`terraform/modules/http_api`) and `serve` answers it locally, so the
//! routes are written once.

use std::fmt;

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
