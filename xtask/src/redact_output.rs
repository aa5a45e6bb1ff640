//! What no output may show: the credentials of a URL (`https://ci-bot:TOKEN@host`
//! prints as `https://ci-bot:***@host`). The printer and the error report
//! pass every line through here, whatever it quotes (an index variable, an
//! installer's stderr, a configuration value).

use std::borrow::Cow;

/// `text` with the password of every `scheme://user:password@host` replaced
/// by `***`, and a user alone (`https://TOKEN@host`, a token more often than
/// a name) too.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let authority_start = start + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        // The authority ends where a path, query, fragment or the quoted
        // text around the URL begins.
        let end = after
            .find(|ch: char| ch.is_whitespace() || "/?#\"'`<>\\".contains(ch))
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str("***"),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn credentials_in_urls_never_show() {
        let cases = [
            (
                "https://ci-bot:TOKEN@host/simple",
                "https://ci-bot:***@host/simple",
            ),
            (
                "env UV_INDEX_URL: https://a:ONE@h:9/simple → https://a:TWO@h:9/simple",
                "env UV_INDEX_URL: https://a:***@h:9/simple → https://a:***@h:9/simple",
            ),
            ("\"https://u:p@h\"", "\"https://u:***@h\""),
            ("https://TOKEN@github.com/o/r", "https://***@github.com/o/r"),
            ("https://u:p@ss@h/x", "https://u:***@h/x"),
            ("http://[::1]:8080/x u:p@h", "http://[::1]:8080/x u:p@h"),
            (
                "mail me@example.com at https://h/x",
                "mail me@example.com at https://h/x",
            ),
            ("https://h/x?to=a@b", "https://h/x?to=a@b"),
            ("no url at all", "no url at all"),
            ("ends with ://", "ends with ://"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact_urls(text), expected, "{text}");
        }
    }
}
