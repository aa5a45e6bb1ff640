//! Reading the report's DOM contract from HTML: a small, tolerant scan of
//! start tags, which takes the contract's attributes and nothing else.

use std::collections::BTreeMap;

/// A start tag's attributes, names in lower case, values decoded.
pub type Attributes = BTreeMap<String, String>;

/// What the DOM contract's reader finds in a page.
#[derive(Debug, Default)]
pub struct Page {
    /// `<main id="report">`'s attributes.
    pub main: Option<Attributes>,
    /// The `<section class="function">`s, in document order.
    pub sections: Vec<FunctionSection>,
    /// Whether a `<section id="changes">` is there.
    pub changes: bool,
}

#[derive(Debug, Default)]
pub struct FunctionSection {
    pub attributes: Attributes,
    /// Whether it holds an `<svg class="treemap">`.
    pub treemap: bool,
    /// Its `<tr data-part=..>` rows, in order.
    pub rows: Vec<Attributes>,
    /// Its `<p class="lifecycle">`'s attributes (the page's script adds
    /// `data-status`).
    pub lifecycle: Option<Attributes>,
}

/// Reads the contract's elements from HTML: a scan of start and end tags
/// that skips comments and the bodies of scripts and styles, and takes any
/// quoting of attributes. A row belongs to the innermost open function
/// section.
pub fn parse(html: &str) -> Page {
    let bytes = html.as_bytes();
    let mut page = Page::default();
    // Open sections, innermost last: the index of a function's, or None.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut at = 0;
    while let Some(found) = html[at..].find('<') {
        at += found;
        let rest = &html[at..];
        if rest.starts_with("<!--") {
            at = rest.find("-->").map_or(html.len(), |end| at + end + 3);
            continue;
        }
        if let Some(after) = rest.strip_prefix("</") {
            let name = tag_name(after);
            if name == "section" {
                open.pop();
            }
            at = rest.find('>').map_or(html.len(), |end| at + end + 1);
            continue;
        }
        let name = tag_name(&rest[1..]);
        if name.is_empty() {
            // `<!DOCTYPE ...>`, `<?...>` or a stray `<`.
            at += 1;
            continue;
        }
        let (attributes, self_closing, end) = attributes(html, at + 1 + name.len());
        at = end;
        let current = open.iter().rev().flatten().next().copied();
        let has_class = |class: &str| {
            attributes
                .get("class")
                .is_some_and(|value| value.split_ascii_whitespace().any(|word| word == class))
        };
        match name.as_str() {
            "main" if attributes.get("id").map(String::as_str) == Some("report") => {
                page.main = Some(attributes);
            }
            "section" => {
                if has_class("function") {
                    page.sections.push(FunctionSection {
                        attributes,
                        ..FunctionSection::default()
                    });
                    open.push(Some(page.sections.len() - 1));
                } else {
                    if attributes.get("id").map(String::as_str) == Some("changes") {
                        page.changes = true;
                    }
                    open.push(None);
                }
                if self_closing {
                    open.pop();
                }
            }
            "svg" if has_class("treemap") => {
                if let Some(index) = current {
                    page.sections[index].treemap = true;
                }
            }
            "p" if has_class("lifecycle") => {
                if let Some(index) = current {
                    page.sections[index].lifecycle = Some(attributes);
                }
            }
            "tr" if attributes.contains_key("data-part") => {
                if let Some(index) = current {
                    page.sections[index].rows.push(attributes);
                }
            }
            "script" | "style" if !self_closing => {
                let close = format!("</{name}");
                at = find_ignoring_case(bytes, close.as_bytes(), at).unwrap_or(html.len());
            }
            _ => {}
        }
    }
    page
}

/// The tag name at the start of `text`, in lower case (empty if none).
fn tag_name(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The attributes of the start tag whose name ends at `at`, whether it
/// closes itself, and where the tag ends.
fn attributes(html: &str, mut at: usize) -> (Attributes, bool, usize) {
    let bytes = html.as_bytes();
    let mut found = Attributes::new();
    let mut self_closing = false;
    let skip_space = |mut at: usize| {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        at
    };
    loop {
        at = skip_space(at);
        match bytes.get(at) {
            None => return (found, self_closing, html.len()),
            Some(b'>') => return (found, self_closing, at + 1),
            Some(b'/') => {
                self_closing = true;
                at += 1;
                continue;
            }
            Some(_) => self_closing = false,
        }
        let start = at;
        while at < bytes.len() && !bytes[at].is_ascii_whitespace() && !b"=>/".contains(&bytes[at]) {
            at += 1;
        }
        let name = html[start..at].to_ascii_lowercase();
        if name.is_empty() {
            // A stray `=`: step over it.
            at += 1;
            continue;
        }
        let after_name = skip_space(at);
        let mut value = String::new();
        if bytes.get(after_name) == Some(&b'=') {
            at = skip_space(after_name + 1);
            match bytes.get(at) {
                Some(&quote) if quote == b'"' || quote == b'\'' => {
                    let end = html[at + 1..]
                        .find(quote as char)
                        .map_or(html.len(), |end| at + 1 + end);
                    value = decode(&html[at + 1..end]);
                    at = (end + 1).min(html.len());
                }
                _ => {
                    let start = at;
                    while at < bytes.len() && !bytes[at].is_ascii_whitespace() && bytes[at] != b'>' {
                        at += 1;
                    }
                    value = decode(&html[start..at]);
                }
            }
        }
        found.entry(name).or_insert(value);
    }
}

fn find_ignoring_case(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..haystack.len().saturating_sub(needle.len() - 1))
        .find(|&at| haystack[at..at + needle.len()].eq_ignore_ascii_case(needle))
}

/// HTML's character references in an attribute value: the named ones a
/// serializer writes, and numeric ones.
fn decode(value: &str) -> String {
    if !value.contains('&') {
        return value.to_string();
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|&end| end <= 10);
        let decoded = end.and_then(|end| match &rest[1..end] {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            entity => {
                let number = entity.strip_prefix('#')?;
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => number.parse().ok()?,
                };
                char::from_u32(code)
            }
        });
        match (decoded, end) {
            (Some(c), Some(end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
