//! Route selection as an HTTP API does it: among the routes whose method is
//! the request's (or `ANY`) and whose segments match its path, the most
//! specific one, read left to right (a literal beats a `{param}`, a
//! `{param}` beats a greedy `{name+}`), an exact method before `ANY`;
//! `$default` only when nothing else matches. Matching is on whole
//! segments of the path as sent, each percent-decoded: `/users/` is not
//! `/users`, and `%2F` inside a segment does not split it.

use crate::config::api::{Route, RouteKey, Segment};

use super::request::percent_decode;

/// The route a request goes to and the values of its path parameters.
pub(super) struct Selected<'r> {
    pub route: &'r Route,
    /// Decoded values named as the route names them (`proxy` for
    /// `{proxy+}`), in the route's order; empty when it has none.
    pub parameters: Parameters,
}

/// How specific a matched route is, segment by segment (0 literal, 1
/// parameter, 2 greedy) and then by method (0 exact, 1 `ANY`): lower is
/// chosen first.
type Rank = (Vec<u8>, u8);

/// Path parameters by name, decoded.
type Parameters = Vec<(String, String)>;

pub(super) fn select<'r>(routes: &'r [Route], method: &str, raw_path: &str) -> Option<Selected<'r>> {
    let mut best: Option<(Rank, Selected<'r>)> = None;
    for route in routes {
        let RouteKey::Route {
            method: route_method,
            segments,
            ..
        } = &route.key
        else {
            continue;
        };
        let method_rank = match route_method.as_str() {
            exact if exact == method => 0,
            "ANY" => 1,
            _ => continue,
        };
        let Some((path_rank, parameters)) = match_path(segments, raw_path) else {
            continue;
        };
        let rank = (path_rank, method_rank);
        if best.as_ref().is_none_or(|(best_rank, _)| rank < *best_rank) {
            best = Some((rank, Selected { route, parameters }));
        }
    }
    best.map(|(_, selected)| selected).or_else(|| {
        let route = routes.iter().find(|route| route.key == RouteKey::Default)?;
        Some(Selected {
            route,
            parameters: Vec::new(),
        })
    })
}

/// The rank of each segment and the parameters, when `segments` match the
/// path.
fn match_path(segments: &[Segment], raw_path: &str) -> Option<(Vec<u8>, Parameters)> {
    let sent: Vec<&str> = raw_path.strip_prefix('/')?.split('/').collect();
    // `/` is one empty segment, whether the route's path was read as no
    // segments or as one empty literal.
    let root = [Segment::Literal(String::new())];
    let segments = if segments.is_empty() { &root[..] } else { segments };
    let mut ranks = Vec::with_capacity(segments.len());
    let mut parameters = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(literal) => {
                if percent_decode(sent.get(index)?, false) != *literal {
                    return None;
                }
                ranks.push(0);
            }
            Segment::Param(name) => {
                let value = sent.get(index).filter(|value| !value.is_empty())?;
                parameters.push((name.clone(), percent_decode(value, false)));
                ranks.push(1);
            }
            Segment::Greedy(name) => {
                let rest = sent.get(index..)?.join("/");
                if rest.is_empty() {
                    return None;
                }
                parameters.push((name.clone(), percent_decode(&rest, false)));
                ranks.push(2);
                return Some((ranks, parameters));
            }
        }
    }
    (sent.len() == segments.len()).then_some((ranks, parameters))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A route key as `RouteKey::parse` reads one; written here so these
    /// tests stand without the parser.
    pub fn key(text: &str) -> RouteKey {
        if text == "$default" {
            return RouteKey::Default;
        }
        let (method, path) = text.split_once(' ').unwrap();
        let segments = path
            .trim_start_matches('/')
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.into()),
                        None => Segment::Param(name.into()),
                    },
                    None => Segment::Literal(segment.into()),
                },
            )
            .collect();
        RouteKey::Route {
            method: method.into(),
            path: path.into(),
            segments,
        }
    }

    pub fn route(text: &str, function: &str) -> Route {
        Route {
            key: key(text),
            function: function.into(),
            authorize: false,
        }
    }

    fn routes(keys: &[&str]) -> Vec<Route> {
        keys.iter().map(|text| route(text, text)).collect()
    }

    /// The chosen route's key and its parameters, or "none".
    fn chosen(routes: &[Route], method: &str, path: &str) -> String {
        match select(routes, method, path) {
            None => "none".into(),
            Some(selected) if selected.parameters.is_empty() => selected.route.function.clone(),
            Some(selected) => {
                let parameters: Vec<String> = selected
                    .parameters
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                format!("{} [{}]", selected.route.function, parameters.join(" "))
            }
        }
    }

    #[test]
    fn exact_beats_parameter_beats_greedy_beats_default() {
        let all = routes(&["$default", "GET /{proxy+}", "GET /users/{id}", "GET /users/me"]);
        assert_eq!(chosen(&all, "GET", "/users/me"), "GET /users/me");
        assert_eq!(chosen(&all, "GET", "/users/bob"), "GET /users/{id} [id=bob]");
        assert_eq!(
            chosen(&all, "GET", "/users/bob/x"),
            "GET /{proxy+} [proxy=users/bob/x]"
        );
        assert_eq!(chosen(&all, "POST", "/users/me"), "$default");
        assert_eq!(chosen(&routes(&["GET /users/me"]), "GET", "/elsewhere"), "none");
    }

    #[test]
    fn a_literal_wins_at_the_first_segment_where_routes_differ() {
        let all = routes(&["GET /{a}/b/c", "GET /a/{b}/{c}"]);
        assert_eq!(chosen(&all, "GET", "/a/b/c"), "GET /a/{b}/{c} [b=b c=c]");
        let all = routes(&["GET /a/{proxy+}", "GET /a/{b}/c"]);
        assert_eq!(chosen(&all, "GET", "/a/x/c"), "GET /a/{b}/c [b=x]");
    }

    #[test]
    fn an_exact_method_beats_any_and_head_is_not_get() {
        let all = routes(&["ANY /users", "GET /users"]);
        assert_eq!(chosen(&all, "GET", "/users"), "GET /users");
        assert_eq!(chosen(&all, "POST", "/users"), "ANY /users");
        assert_eq!(chosen(&routes(&["GET /users"]), "HEAD", "/users"), "none");
        assert_eq!(
            chosen(&routes(&["ANY /{proxy+}", "GET /users"]), "POST", "/users"),
            "ANY /{proxy+} [proxy=users]"
        );
    }

    #[test]
    fn a_trailing_slash_is_a_segment_of_its_own() {
        let all = routes(&["GET /users", "GET /users/{id}"]);
        assert_eq!(chosen(&all, "GET", "/users/"), "none");
        assert_eq!(
            chosen(&routes(&["GET /{proxy+}"]), "GET", "/users/"),
            "GET /{proxy+} [proxy=users/]"
        );
    }

    #[test]
    fn the_root_matches_only_slash() {
        let all = routes(&["GET /", "GET /{proxy+}"]);
        assert_eq!(chosen(&all, "GET", "/"), "GET /");
        assert_eq!(chosen(&all, "GET", "/a"), "GET /{proxy+} [proxy=a]");
        assert_eq!(chosen(&routes(&["GET /{proxy+}"]), "GET", "/"), "none");
        assert_eq!(chosen(&routes(&["GET /"]), "GET", "*"), "none");
    }

    #[test]
    fn path_parameters_are_percent_decoded_after_splitting() {
        let all = routes(&["GET /users/{id}", "GET /files/{proxy+}", "GET /a b"]);
        assert_eq!(
            chosen(&all, "GET", "/users/a%20b%2Fc+d"),
            "GET /users/{id} [id=a b/c+d]"
        );
        assert_eq!(
            chosen(&all, "GET", "/files/a/b/c"),
            "GET /files/{proxy+} [proxy=a/b/c]"
        );
        assert_eq!(
            chosen(&all, "GET", "/files/a%2Fb/c"),
            "GET /files/{proxy+} [proxy=a/b/c]"
        );
        assert_eq!(chosen(&all, "GET", "/a%20b"), "GET /a b");
    }
}
