//! HTML character references: decoding (`&lt;`, `&#20320;`) and escaping
//! text for element content and attribute values.

use std::borrow::Cow;

/// Named entities worth knowing in chat messages. Unknown ones stay as typed.
const NAMED_ENTITIES: &[(&str, &str)] = &[
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", "\u{A0}"),
    ("ensp", "\u{2002}"),
    ("emsp", "\u{2003}"),
    ("thinsp", "\u{2009}"),
    ("shy", ""),
    ("zwj", "\u{200D}"),
    ("zwnj", "\u{200C}"),
    ("copy", "©"),
    ("reg", "®"),
    ("trade", "™"),
    ("hellip", "…"),
    ("mdash", "—"),
    ("ndash", "–"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("middot", "·"),
    ("bull", "•"),
    ("times", "×"),
    ("divide", "÷"),
    ("deg", "°"),
    ("plusmn", "±"),
    ("euro", "€"),
    ("yen", "¥"),
    ("pound", "£"),
    ("cent", "¢"),
    ("sect", "§"),
    ("para", "¶"),
];

/// Longest entity body considered (`&#x10FFFF;` has 8 characters between
/// `&` and `;`); longer runs are not entities.
const MAX_ENTITY_LEN: usize = 10;

/// Decodes character references: named ones from a small table, decimal
/// `&#39;` and hex `&#x27;` (the `;` is optional for numeric ones, as in
/// browsers). Invalid code points and NUL become U+FFFD.
pub(crate) fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or(""));
        let after = rest.get(amp + 1..).unwrap_or("");
        match decode_one_entity(after) {
            Some((decoded, consumed)) => {
                out.push_str(&decoded);
                rest = after.get(consumed..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Decodes the entity at the start of `after` (the text after `&`),
/// returning it and how many bytes it used.
fn decode_one_entity(after: &str) -> Option<(Cow<'static, str>, usize)> {
    if let Some(numeric) = after.strip_prefix('#') {
        let (digits_start, radix) = match numeric.chars().next() {
            Some('x' | 'X') => (1, 16),
            _ => (0, 10),
        };
        let digits_area = numeric.get(digits_start..)?;
        let digits_len = digits_area
            .find(|c: char| !c.is_digit(radix))
            .unwrap_or(digits_area.len());
        if digits_len == 0 || digits_len > MAX_ENTITY_LEN - 2 {
            return None;
        }
        let digits = digits_area.get(..digits_len)?;
        let code = u32::from_str_radix(digits, radix).ok()?;
        let c = char::from_u32(code)
            .filter(|c| *c != '\0')
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        let with_semicolon = usize::from(digits_area.get(digits_len..)?.starts_with(';'));
        let consumed = 1 + digits_start + digits_len + with_semicolon;
        return Some((Cow::Owned(c.to_string()), consumed));
    }
    let end = after
        .char_indices()
        .take(MAX_ENTITY_LEN + 1)
        .find(|(_, c)| *c == ';')
        .map(|(i, _)| i)?;
    let name = after.get(..end)?;
    NAMED_ENTITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| (Cow::Borrowed(*value), end + 1))
}

/// Escapes text for HTML element content and double- or single-quoted
/// attribute values.
pub(crate) fn escape_html(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_entities() {
        assert_eq!(
            decode_entities("a &lt;b&gt; &amp;amp; &#20320;&#x597D; &nbsp;"),
            "a <b> &amp; 你好 \u{A0}"
        );
        assert_eq!(
            decode_entities("&#0; &#xD800; &#x110000;"),
            "\u{FFFD} \u{FFFD} \u{FFFD}"
        );
        assert_eq!(
            decode_entities("&unknown; & &; &#; &#x; &#39"),
            "&unknown; & &; &#; &#x; '"
        );
        assert_eq!(decode_entities("AT&T"), "AT&T");
    }

    #[test]
    fn escapes_markup_characters() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape_html("微笑"), "微笑");
    }

    proptest! {
        #[test]
        fn escaped_text_decodes_back(s in "\\PC{0,80}") {
            let escaped = escape_html(&s);
            prop_assert_eq!(decode_entities(&escaped), s.as_str());
            prop_assert!(!escaped.contains(['<', '>', '"', '\'']));
        }

        #[test]
        fn decoding_never_panics(s in "(&|#|x|;|[0-9a-f]|amp|lt|微){0,60}") {
            let _ = decode_entities(&s);
        }
    }
}
