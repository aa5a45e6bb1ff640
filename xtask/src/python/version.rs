//! PEP 440 versions, parsed and ordered as pip and uv order them: what
//! the audit compares a shipped distribution's version with an advisory's
//! ranges by. Written here (about a hundred lines) rather than taken from a
//! crate: `pep440_rs` brings its own dependency tree for what is one
//! comparison. Source: https://packaging.python.org/en/latest/specifications/version-specifiers/
//! (the normalisation and the ordering), read 2026-12-07.

use std::cmp::Ordering;

/// A parsed version. Equal versions compare equal however they were
/// written (`1.0` = `1.0.0` = `v1.0`, `1.0a1` = `1.0.alpha.1`).
#[derive(Debug, Clone)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(PreKind, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Option<Vec<LocalPart>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PreKind {
    Alpha,
    Beta,
    Rc,
}

/// A segment of a local version: numbers sort after words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Word(String),
    Number(u64),
}

/// Where the pre-release segment puts a version: a dev release of a final
/// version (`1.0.dev1`) before its pre-releases, the final one after them.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreKey {
    DevOfFinal,
    Pre(PreKind, u64),
    Final,
}

/// A development release sorts before the release it leads to.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum DevKey {
    Dev(u64),
    Release,
}

impl Version {
    /// Parses a version as PEP 440 normalises it; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Version> {
        let lower = text.trim().to_ascii_lowercase();
        let text = lower.strip_prefix('v').unwrap_or(&lower);
        let (public, local) = match text.split_once('+') {
            Some((public, local)) => (public, Some(parse_local(local)?)),
            None => (text, None),
        };
        let mut rest = public;
        let epoch = match rest.split_once('!') {
            Some((epoch, after)) => {
                rest = after;
                epoch.parse().ok()?
            }
            None => 0,
        };
        let digits_end = rest
            .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .unwrap_or(rest.len());
        let (release_text, mut rest) = rest.split_at(digits_end);
        // A dot before a pre-release or dev tag belongs to the tag.
        let release_text = release_text.strip_suffix('.').unwrap_or(release_text);
        if release_text.len() < digits_end {
            rest = &public[public.len() - rest.len() - 1..];
        }
        let release: Vec<u64> = release_text
            .split('.')
            .map(|part| part.parse().ok())
            .collect::<Option<_>>()?;
        let mut version = Version {
            epoch,
            release,
            pre: None,
            post: None,
            dev: None,
            local,
        };
        if let Some((name, number, left)) =
            tag(rest, &["alpha", "a", "beta", "b", "preview", "pre", "rc", "c"])
        {
            let kind = match name {
                "alpha" | "a" => PreKind::Alpha,
                "beta" | "b" => PreKind::Beta,
                _ => PreKind::Rc,
            };
            version.pre = Some((kind, number));
            rest = left;
        }
        // `1.0-1` is the post-release `1.0.post1`.
        if let Some((number, left)) = rest.strip_prefix('-').and_then(leading_number) {
            version.post = Some(number);
            rest = left;
        } else if let Some((_, number, left)) = tag(rest, &["post", "rev", "r"]) {
            version.post = Some(number);
            rest = left;
        }
        if let Some((_, number, left)) = tag(rest, &["dev"]) {
            version.dev = Some(number);
            rest = left;
        }
        rest.is_empty().then_some(version)
    }

    /// A dev, alpha, beta or release candidate version.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    fn release_trimmed(&self) -> &[u64] {
        let end = self
            .release
            .iter()
            .rposition(|part| *part != 0)
            .map_or(0, |at| at + 1);
        &self.release[..end]
    }

    fn pre_key(&self) -> PreKey {
        match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => PreKey::DevOfFinal,
            (Some((kind, number)), _, _) => PreKey::Pre(kind, number),
            (None, _, _) => PreKey::Final,
        }
    }

    fn dev_key(&self) -> DevKey {
        self.dev.map_or(DevKey::Release, DevKey::Dev)
    }
}

/// Digits at the start of `text` (at least one), and what follows them.
fn leading_number(text: &str) -> Option<(u64, &str)> {
    let end = text.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(text.len());
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// One of `names` at the start of `text`, after at most one separator,
/// and its number after at most another (0 when it has none): PEP 440's
/// `[-_.]?name[-_.]?N?`.
fn tag<'a>(text: &'a str, names: &[&'static str]) -> Option<(&'static str, u64, &'a str)> {
    let text = text.strip_prefix(['.', '-', '_']).unwrap_or(text);
    let name = names.iter().copied().find(|name| text.starts_with(name))?;
    let after = &text[name.len()..];
    let numbered = after.strip_prefix(['.', '-', '_']).unwrap_or(after);
    match leading_number(numbered) {
        Some((number, left)) => Some((name, number, left)),
        None => Some((name, 0, after)),
    }
}

fn parse_local(text: &str) -> Option<Vec<LocalPart>> {
    text.split(['.', '-', '_'])
        .map(|part| {
            if part.is_empty() || !part.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                None
            } else if part.chars().all(|ch| ch.is_ascii_digit()) {
                part.parse().ok().map(LocalPart::Number)
            } else {
                Some(LocalPart::Word(part.to_string()))
            }
        })
        .collect()
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.release_trimmed().cmp(other.release_trimmed()))
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            .then_with(|| self.post.cmp(&other.post))
            .then_with(|| self.dev_key().cmp(&other.dev_key()))
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::Version;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap_or_else(|| panic!("`{text}` did not parse"))
    }

    #[test]
    fn spellings_pep_440_normalises_are_equal() {
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("v1.0", "1.0"),
            ("1.0a1", "1.0.alpha.1"),
            ("1.0a1", "1.0-a-1"),
            ("1.0b2", "1.0beta2"),
            ("1.0rc1", "1.0c1"),
            ("1.0rc1", "1.0-preview1"),
            ("1.0.post1", "1.0-1"),
            ("1.0.post1", "1.0.rev1"),
            ("1.0.post0", "1.0-r"),
            ("1.0.dev0", "1.0-dev"),
            ("1.0a", "1.0a0"),
            ("1.0+ubuntu.1", "1.0+ubuntu-1"),
            ("0!1.0", "1.0"),
            ("1.0RC1", "1.0rc1"),
        ] {
            assert_eq!(v(a), v(b), "{a} = {b}");
        }
    }

    #[test]
    fn versions_sort_as_the_specification_orders_them() {
        let ordered = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "2.0",
            "2026.10.19.post1",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(v(pair[1]) > v(pair[0]), "{} > {}", pair[1], pair[0]);
        }
    }

    #[test]
    fn what_is_not_a_version_is_refused() {
        for text in [
            "",
            "abc",
            "1.0+",
            "1.0+a..b",
            "1.0x1",
            "1.0-a-b",
            "1.0.post1.post2",
            "1.0.dev1a1",
        ] {
            assert!(Version::parse(text).is_none(), "`{text}` parsed");
        }
        assert!(Version::parse(&"9".repeat(30)).is_none(), "no overflow");
    }

    #[test]
    fn prereleases_are_told_apart() {
        assert!(v("1.0rc1").is_prerelease());
        assert!(v("1.0.dev1").is_prerelease());
        assert!(!v("1.0.post1").is_prerelease());
    }
}
