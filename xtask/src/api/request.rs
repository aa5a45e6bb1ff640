//! A request read as API Gateway reads it before routing: path and query
//! apart, query values percent-decoded, header names lower-cased and the
//! `x-forwarded-*` headers a load balancer in front adds. Both payload
//! formats and the authorizer's identity sources are built from this one
//! reading, so they cannot disagree about a value.

use std::net::IpAddr;

use super::http::HttpRequest;

/// Where the host's name comes from when a client sends no `Host` (HTTP/1.0):
/// the name the server is reached by locally.
const HOST_WITHOUT_HEADER: &str = "localhost";

pub(super) struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, percent-encoding kept (`rawPath`, `path`).
    pub raw_path: &'a str,
    /// After the first `?`, as sent; empty when there is none.
    pub raw_query: &'a str,
    /// Lower-cased names in the order received, then `x-forwarded-for`,
    /// `-port` and `-proto`.
    pub headers: Vec<(String, String)>,
    /// Decoded names and values, in the order sent.
    pub query: Vec<(String, String)>,
    pub peer: IpAddr,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    pub fn read(http: &'a HttpRequest) -> Request<'a> {
        let (raw_path, raw_query) = http.target.split_once('?').unwrap_or((&http.target, ""));
        Request {
            method: &http.method,
            raw_path,
            raw_query,
            headers: forwarded(http),
            query: query_pairs(raw_query),
            peer: http.peer,
            body: &http.body,
        }
    }

    /// Every value of a header, in order; `name` is lower case.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A header's values joined by "," (payload 2.0 and identity sources);
    /// `None` when it was not sent.
    pub fn header_joined(&self, name: &str) -> Option<String> {
        joined(self.header_values(name))
    }

    /// A query parameter's decoded values joined by ","; `None` when absent.
    pub fn query_joined(&self, name: &str) -> Option<String> {
        joined(
            self.query
                .iter()
                .filter(|(key, _)| key == name)
                .map(|(_, value)| value.as_str()),
        )
    }

    /// `requestContext.domainName`: the `Host` header without its port.
    pub fn domain_name(&self) -> &str {
        let host = self.header_values("host").next().unwrap_or(HOST_WITHOUT_HEADER);
        match host.rfind(':') {
            // `[::1]:3000` keeps its brackets; `[::1]` has no port to drop.
            Some(colon) if !host[colon..].contains(']') => &host[..colon],
            _ => host,
        }
    }

    /// `requestContext.domainPrefix`: the domain's first label.
    pub fn domain_prefix(&self) -> &str {
        let domain = self.domain_name();
        domain.split('.').next().unwrap_or(domain)
    }

    pub fn user_agent(&self) -> &str {
        self.header_values("user-agent").next().unwrap_or("")
    }

    /// Payload 2.0's `cookies`: every `cookie` header split on "; ".
    pub fn cookies(&self) -> Vec<String> {
        self.header_values("cookie")
            .flat_map(|value| value.split("; "))
            .filter(|cookie| !cookie.is_empty())
            .map(String::from)
            .collect()
    }
}

fn joined<'s>(mut values: impl Iterator<Item = &'s str>) -> Option<String> {
    let first = values.next()?.to_string();
    Some(values.fold(first, |all, value| all + "," + value))
}

/// The headers as received, lower-cased, with the client's own
/// `x-forwarded-*` replaced by the ones API Gateway's edge writes: the
/// client's `x-forwarded-for` chain extended by the peer, this port, http.
fn forwarded(http: &HttpRequest) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = http
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect();
    let client_chain: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name == "x-forwarded-for")
        .map(|(_, value)| value.clone())
        .collect();
    headers.retain(|(name, _)| {
        !matches!(
            name.as_str(),
            "x-forwarded-for" | "x-forwarded-port" | "x-forwarded-proto"
        )
    });
    let peer = http.peer.to_string();
    let chain = if client_chain.is_empty() {
        peer
    } else {
        format!("{}, {peer}", client_chain.join(", "))
    };
    headers.push(("x-forwarded-for".into(), chain));
    headers.push(("x-forwarded-port".into(), http.port.to_string()));
    headers.push(("x-forwarded-proto".into(), "http".into()));
    headers
}

/// `a=1&b=x+y&c`: decoded pairs, `+` a space, a name without `=` an empty
/// value, empty pieces (`a=1&&b=2`) skipped.
fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .collect()
}

/// `%XX` escapes turned back into bytes, read as UTF-8 (an invalid sequence
/// becomes U+FFFD, as API Gateway hands functions text). A `%` not followed
/// by two hex digits stays as it is. `plus_is_space` for query strings.
pub(super) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[index], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
                continue;
            }
            (b'+', _) if plus_is_space => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(target: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            target: target.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            body_too_large: false,
            peer: "192.0.2.7".parse().unwrap(),
            port: 3000,
        }
    }

    #[test]
    fn percent_escapes_are_decoded_and_plus_only_in_queries() {
        assert_eq!(percent_decode("a%20b+c%2Fd", false), "a b+c/d");
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("%C3%A9%zz%4", false), "é%zz%4");
        assert_eq!(percent_decode("%FF", false), "\u{fffd}");
    }

    #[test]
    fn path_and_query_are_split_at_the_first_question_mark() {
        let http = http("/a%20b?x=1&y=a+b%26c&&flag&x=2?", &[]);
        let request = Request::read(&http);
        assert_eq!(
            (request.raw_path, request.raw_query),
            ("/a%20b", "x=1&y=a+b%26c&&flag&x=2?")
        );
        let pairs: Vec<(&str, &str)> = request
            .query
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("x", "1"), ("y", "a b&c"), ("flag", ""), ("x", "2?")]);
        assert_eq!(request.query_joined("x").as_deref(), Some("1,2?"));
        assert_eq!(request.query_joined("nope"), None);
    }

    #[test]
    fn headers_are_lower_cased_and_forwarded_headers_appended() {
        let http = http(
            "/",
            &[
                ("Host", "api.example.com:3000"),
                ("X-Forwarded-For", "203.0.113.1"),
                ("X-Forwarded-Proto", "https"),
                ("Accept", "a"),
                ("accept", "b"),
            ],
        );
        let request = Request::read(&http);
        let expected: Vec<(String, String)> = [
            ("host", "api.example.com:3000"),
            ("accept", "a"),
            ("accept", "b"),
            ("x-forwarded-for", "203.0.113.1, 192.0.2.7"),
            ("x-forwarded-port", "3000"),
            ("x-forwarded-proto", "http"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(request.headers, expected);
        assert_eq!(request.header_joined("accept").as_deref(), Some("a,b"));
        assert_eq!(
            (request.domain_name(), request.domain_prefix()),
            ("api.example.com", "api")
        );
    }

    #[test]
    fn the_domain_drops_a_port_but_not_an_ipv6_address() {
        for (host, domain) in [
            ("[::1]:3000", "[::1]"),
            ("[::1]", "[::1]"),
            ("localhost", "localhost"),
        ] {
            let http = http("/", &[("host", host)]);
            assert_eq!(Request::read(&http).domain_name(), domain);
        }
    }

    #[test]
    fn cookies_are_split_on_semicolon_space() {
        let http = http("/", &[("cookie", "a=1; b=2"), ("Cookie", "c=3")]);
        assert_eq!(Request::read(&http).cookies(), ["a=1", "b=2", "c=3"]);
    }
}
