//! The API's keys: each function's `routes` and `authorize`, and
//! `[workspace.metadata.lambda.api]` with its authorizer, read strictly and
//! checked against each other as API Gateway HTTP API checks them, into the
//! one [`Api`] that the manifest carries to Terraform and `serve` answers.

use std::collections::BTreeMap;

use serde_json::Value;

use super::api::{Api, Authorizer, AuthorizerResponse, PayloadFormat, Route, RouteKey, Segment};
use super::table::Table;
use super::TABLE;
use crate::facts;

/// The identity source when none is configured: the token in the
/// `Authorization` header, as API Gateway's console proposes for a Lambda
/// authorizer (its API has no default).
const DEFAULT_IDENTITY_SOURCE: &str = "$request.header.Authorization";

/// A route as its function's table declares it, before the whole API is
/// known.
pub(super) struct Declared {
    key: RouteKey,
    authorize: bool,
    /// The key that decided `authorize`: the function's own, or the
    /// route's in its `{ key = …, authorize = … }` form.
    authorize_key: String,
}

/// A function's `routes` (route keys, or `{ key, authorize }` tables) and
/// `authorize` (whether its routes go through the authorizer).
pub(super) fn function(table: &mut Table) -> Result<Vec<Declared>, String> {
    let routes_key = table.path("routes");
    let items = table
        .optional_list("routes", "[\"GET /users\", \"PATCH /users/{user_id}\"]")?
        .unwrap_or_default();
    let authorize_key = table.path("authorize");
    let authorize = table.optional_bool("authorize")?.unwrap_or(false);
    let mut declared: Vec<Declared> = Vec::with_capacity(items.len());
    for (at, item) in items.iter().enumerate() {
        // The key a bad route key is reported under.
        let (text, own, text_key) = match item {
            Value::String(text) => (text.clone(), None, routes_key.clone()),
            Value::Object(_) => {
                let item_key = format!("{routes_key}[{at}]");
                let mut route = Table::new(&item_key, item)?;
                let text = route.optional_str("key")?.ok_or_else(|| {
                    format!("{item_key}.key: missing (e.g. {{ key = \"GET /health\", authorize = false }})")
                })?;
                let own_key = route.path("authorize");
                let own = route.optional_bool("authorize")?.map(|flag| (flag, own_key));
                route.finish()?;
                (text, own, format!("{item_key}.key"))
            }
            other => {
                return Err(format!(
                    "{routes_key}: expected a route key or {{ key = \"GET /health\", authorize = false }}, found {other}"
                ))
            }
        };
        let key = RouteKey::parse(&text).map_err(|why| format!("{text_key}: {why}"))?;
        if declared.iter().any(|earlier| earlier.key == key) {
            return Err(format!("{routes_key}: `{key}` is listed twice"));
        }
        let (authorize, authorize_key) = own.unwrap_or((authorize, authorize_key.clone()));
        declared.push(Declared {
            key,
            authorize,
            authorize_key,
        });
    }
    Ok(declared)
}

/// `[api]` and its `[api.authorizer]`, with the routes every function
/// declared (by function name; every function is there): the API.
pub(super) fn api(top: &mut Table, functions: &BTreeMap<String, Vec<Declared>>) -> Result<Api, String> {
    let (payload_format, authorizer) = match top.optional_table("api")? {
        None => (PayloadFormat::V2, None),
        Some(value) => {
            let mut table = Table::new(&top.path("api"), &value)?;
            let payload_format = payload_format(&mut table)?;
            let authorizer = match table.optional_table("authorizer")? {
                None => None,
                Some(value) => Some(authorizer(&table.path("authorizer"), &value, functions)?),
            };
            table.finish()?;
            (payload_format, authorizer)
        }
    };
    let routes = routes(functions, authorizer.is_some())?;
    Ok(Api {
        payload_format,
        authorizer,
        routes,
    })
}

/// `payload_format`: API Gateway's default is 2.0.
fn payload_format(table: &mut Table) -> Result<PayloadFormat, String> {
    match table.optional_str("payload_format")? {
        None => Ok(PayloadFormat::V2),
        Some(text) => PayloadFormat::parse(&text).ok_or_else(|| {
            format!(
                "{}: unknown payload format `{text}` (use {})",
                table.path("payload_format"),
                PayloadFormat::NAMES
            )
        }),
    }
}

/// `[api.authorizer]`: the Lambda REQUEST authorizer, one of `functions`.
fn authorizer(
    key: &str,
    value: &Value,
    functions: &BTreeMap<String, Vec<Declared>>,
) -> Result<Authorizer, String> {
    let mut table = Table::new(key, value)?;
    let function = table.optional_str("function")?.ok_or_else(|| {
        format!("{key}.function: missing (the function that decides, e.g. function = \"authorizer\")")
    })?;
    let payload_format = payload_format(&mut table)?;
    let response = match table.optional_str("response")?.as_deref() {
        None | Some("iam") => AuthorizerResponse::Iam,
        Some("simple") => AuthorizerResponse::Simple,
        Some(other) => {
            return Err(format!(
                "{key}.response: unknown response `{other}` (use iam, an IAM policy, or simple, {{\"isAuthorized\": …}})"
            ))
        }
    };
    let identity_sources = table
        .optional_str_list("identity_sources")?
        .unwrap_or_else(|| vec![DEFAULT_IDENTITY_SOURCE.to_string()]);
    let result_ttl_s = table.optional_u64("result_ttl", "300")?.unwrap_or(0);
    table.finish()?;

    if !functions.contains_key(&function) {
        let known: Vec<&str> = functions.keys().map(String::as_str).collect();
        return Err(format!(
            "{key}.function: unknown function `{function}` (define [{TABLE}.functions.{function}] or use one of: {})",
            known.join(", ")
        ));
    }
    if response == AuthorizerResponse::Simple && payload_format == PayloadFormat::V1 {
        return Err(format!(
            "{key}.response: simple responses exist only with payload format 2.0 (set payload_format = \"2.0\", or response = \"iam\")"
        ));
    }
    for source in &identity_sources {
        let named = facts::HTTP_API_IDENTITY_SOURCE_PREFIXES.iter().any(|prefix| {
            source
                .strip_prefix(prefix)
                .is_some_and(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        });
        if !named {
            return Err(format!(
                "{key}.identity_sources: `{source}` is not an identity source (use $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME)"
            ));
        }
    }
    if result_ttl_s > facts::HTTP_API_MAX_AUTHORIZER_TTL_S {
        return Err(format!(
            "{key}.result_ttl: {result_ttl_s} s is more than the {} s API Gateway caches an authorizer's answer (e.g. result_ttl = 300)",
            facts::HTTP_API_MAX_AUTHORIZER_TTL_S
        ));
    }
    if result_ttl_s > 0 && identity_sources.is_empty() {
        return Err(format!(
            "{key}.result_ttl: API Gateway caches an answer by its identity sources, and there are none (set result_ttl = 0, or name identity_sources)"
        ));
    }
    Ok(Authorizer {
        function,
        payload_format,
        response,
        identity_sources,
        result_ttl_s,
    })
}

/// Every function's routes, sorted by key: no key twice, no two keys that
/// match the same requests, none authorized without an authorizer.
fn routes(functions: &BTreeMap<String, Vec<Declared>>, has_authorizer: bool) -> Result<Vec<Route>, String> {
    let mut routes: Vec<Route> = Vec::new();
    for (name, declared) in functions {
        let routes_key = format!("{TABLE}.functions.{name}.routes");
        for route in declared {
            if let Some(other) = routes.iter().find(|other| other.key == route.key) {
                return Err(format!(
                    "{routes_key}: `{}` is also a route of `{}`: a route sends its requests to one function (remove it from one of them)",
                    route.key, other.function
                ));
            }
            if let Some(other) = routes.iter().find(|other| same_requests(&other.key, &route.key)) {
                return Err(format!(
                    "{routes_key}: `{}` matches the same requests as `{}` (function `{}`): no request could tell them apart (name the parameters alike)",
                    route.key, other.key, other.function
                ));
            }
            if route.authorize && !has_authorizer {
                return Err(format!(
                    "{}: `{}` would go through the authorizer, and there is none (add [{TABLE}.api.authorizer], or set authorize = false)",
                    route.authorize_key, route.key
                ));
            }
            routes.push(Route {
                key: route.key.clone(),
                function: name.clone(),
                authorize: route.authorize,
            });
        }
    }
    routes.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(routes)
}

/// Two keys of one method whose paths differ only in their parameters'
/// names (`GET /users/{id}`, `GET /users/{user_id}`): no request could
/// tell them apart.
fn same_requests(a: &RouteKey, b: &RouteKey) -> bool {
    let (
        RouteKey::Route {
            method: method_a,
            segments: a,
            ..
        },
        RouteKey::Route {
            method: method_b,
            segments: b,
            ..
        },
    ) = (a, b)
    else {
        return false;
    };
    method_a == method_b
        && a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Param(_), Segment::Param(_)) | (Segment::Greedy(_), Segment::Greedy(_)) => true,
            _ => false,
        })
}
