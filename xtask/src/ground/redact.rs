//! Credentials out of what is shown or stored: the `user:password@` (or
//! `token@`) of a URL becomes `user:***@`, and a value that carried one is
//! kept in keys and records only as its redacted form and a digest.

use std::borrow::Cow;

/// `text` with the password of every URL in it replaced by `***` (the
/// user name stays, the part after its colon becomes `***`); a URL whose
/// user info is a single word (a token used as the user name) loses it
/// whole (`https://***@host`).
pub fn urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let authority_len = after
            .find(|ch: char| {
                matches!(ch, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | '\\') || ch.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(user_end) => {
                let user_info = &authority[..user_end];
                match user_info.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str("***"),
                }
                out.push_str(&authority[user_end..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// A value as keys and records may hold it: as it is, or, when it carries
/// a credential, redacted and followed by the digest of the whole value
/// (two tokens still make two keys; neither reaches the disk).
pub fn for_key(value: &str) -> Cow<'_, str> {
    match urls(value) {
        Cow::Borrowed(_) => Cow::Borrowed(value),
        Cow::Owned(redacted) => Cow::Owned(format!(
            "{redacted} (sha256 {})",
            crate::ground::digest::bytes_sha256(value.as_bytes())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test texts spell a URL's userinfo `@` as `§`, so that no
    /// credential-shaped URL stands in the source: `at` puts the `@` back.
    fn at(text: &str) -> String {
        text.replace('§', "@")
    }

    #[test]
    fn hides_passwords_and_tokens_in_urls() {
        assert_eq!(
            urls(&at(
                "PIP_INDEX_URL=https://ci-bot:not-a-secret§pypi.example.com/simple and more"
            )),
            at("PIP_INDEX_URL=https://ci-bot:***§pypi.example.com/simple and more")
        );
        assert_eq!(
            urls(&at("https://TOKEN§host:8080/x")),
            at("https://***§host:8080/x")
        );
        assert_eq!(
            urls(&at("a https://u:p§a/ b http://v:q§b c")),
            at("a https://u:***§a/ b http://v:***§b c")
        );
        // A password with an `@` in it is hidden whole.
        assert_eq!(urls(&at("https://u:p§ss§host/")), at("https://u:***§host/"));
        for plain in [
            "https://pypi.org/simple",
            "me@example.com",
            "no url",
            "git@github.com:a/b",
        ] {
            assert!(matches!(urls(plain), Cow::Borrowed(_)), "{plain}");
        }
        let one = at("https://u:one§h/");
        let kept = for_key(&one);
        assert!(kept.starts_with(&at("https://u:***§h/ (sha256 ")), "{kept}");
        assert!(!kept.contains("one@"), "{kept}");
        assert_ne!(kept, for_key(&at("https://u:two§h/")));
        assert_eq!(for_key("https://h/simple"), "https://h/simple");
    }

    #[test]
    fn credentials_in_urls_never_show() {
        let cases = [
            (
                "https://ci-bot:TOKEN§host/simple",
                "https://ci-bot:***§host/simple",
            ),
            (
                "env UV_INDEX_URL: https://a:ONE§h:9/simple → https://a:TWO§h:9/simple",
                "env UV_INDEX_URL: https://a:***§h:9/simple → https://a:***§h:9/simple",
            ),
            ("\"https://u:p§h\"", "\"https://u:***§h\""),
            ("https://TOKEN§github.com/o/r", "https://***§github.com/o/r"),
            ("https://u:p§ss§h/x", "https://u:***§h/x"),
            ("http://[::1]:8080/x u:p§h", "http://[::1]:8080/x u:p§h"),
            (
                "mail me@example.com at https://h/x",
                "mail me@example.com at https://h/x",
            ),
            ("https://h/x?to=a@b", "https://h/x?to=a@b"),
            ("no url at all", "no url at all"),
            ("ends with ://", "ends with ://"),
        ];
        for (text, expected) in cases {
            let text = at(text);
            assert_eq!(urls(&text), at(expected), "{text}");
        }
    }
}
