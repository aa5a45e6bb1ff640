//! Escaping and the page's fixed formats: grouped digits, signed sizes,
//! percentages, coordinates with one decimal, colours.

/// Escapes text for HTML content and attribute values.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// `36,017,657`.
pub(super) fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, ch) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `13.7%`.
pub(super) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".into();
    }
    format!("{:.1}%", part as f64 / whole as f64 * 100.0)
}

/// A coordinate: one decimal, no `-0.0`.
pub(super) fn num(value: f64) -> String {
    let text = format!("{value:.1}");
    if text == "-0.0" {
        "0.0".into()
    } else {
        text
    }
}

/// `text` cut to what fits in `width` pixels at about `per_char` each.
pub(super) fn fit(text: &str, width: f64, per_char: f64) -> String {
    let room = (width / per_char).floor().max(0.0) as usize;
    let count = text.chars().count();
    if count <= room {
        return text.to_string();
    }
    if room < 2 {
        return String::new();
    }
    let kept: String = text.chars().take(room - 1).collect();
    format!("{kept}…")
}

pub(super) fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// `colour` mixed with white: 0 is the colour, 1 is white.
pub(super) fn tint((r, g, b): (u8, u8, u8), white: f64) -> (u8, u8, u8) {
    let mix = |c: u8| (c as f64 + (255.0 - c as f64) * white).round() as u8;
    (mix(r), mix(g), mix(b))
}

/// Dark text on light colours, white on dark ones.
pub(super) fn text_on((r, g, b): (u8, u8, u8)) -> &'static str {
    let luminance = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
    if luminance > 150.0 {
        "#1b1f24"
    } else {
        "#fff"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_fixed() {
        assert_eq!(grouped(262_144_000), "262,144,000");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(num(-0.01), "0.0");
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(fit("abcdefgh", 30.0, 6.0), "abcd…");
        assert_eq!(fit("abc", 30.0, 6.0), "abc");
        assert_eq!(tint((0, 100, 255), 0.5), (128, 178, 255));
    }
}
