//! Finding http(s) URLs in plain text and comparing link texts with URLs.

/// URL schemes recognised in plain text. Only web links: anything else typed
/// in a chat is more likely prose than a link.
const TEXT_URL_SCHEMES: [&str; 2] = ["https://", "http://"];

/// Schemes a link may have to be kept as a link (in HTML `href`s and Matrix
/// output). Others (`javascript:`, relative paths...) keep only their text.
const LINK_SCHEMES: [&str; 4] = ["https://", "http://", "mailto:", "ftp://"];

/// Punctuation that ends a sentence rather than a URL when it comes last.
const TRAILING_PUNCTUATION: &[u8] = b".,;:!?'\"*([{<";

/// If an http(s) URL starts at byte `at` of `text`, its length in bytes.
///
/// The URL must start at a word boundary, stops at whitespace, at the first
/// non-ASCII character (Chinese text usually follows a URL without a space)
/// and at characters never found unescaped in URLs; trailing sentence
/// punctuation and unbalanced closing brackets are left out.
pub(crate) fn url_len_at(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    let scheme = TEXT_URL_SCHEMES
        .iter()
        .find(|s| starts_with_ignore_ascii_case(rest, s))?;
    let preceded_by_word = text
        .get(..at)
        .and_then(|before| before.chars().next_back())
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if preceded_by_word {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut end = scheme.len();
    while end < bytes.len() && is_url_byte(bytes[end]) {
        end += 1;
    }
    while end > scheme.len() {
        let last = bytes[end - 1];
        let unbalanced = |open: u8, close: u8| {
            last == close && count(&bytes[..end], open) < count(&bytes[..end], close)
        };
        if TRAILING_PUNCTUATION.contains(&last) || unbalanced(b'(', b')') || unbalanced(b'[', b']')
        {
            end -= 1;
        } else {
            break;
        }
    }
    let host_starts_well = bytes
        .get(scheme.len())
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'[');
    host_starts_well.then_some(end)
}

fn count(bytes: &[u8], wanted: u8) -> usize {
    bytes.iter().filter(|b| **b == wanted).count()
}

/// Printable ASCII that may appear in a URL as people paste them.
fn is_url_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'<' | b'>' | b'"' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^'
        )
}

fn starts_with_ignore_ascii_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Whether `url` has a scheme that is safe to keep as a link target.
pub(crate) fn is_linkable_url(url: &str) -> bool {
    let url = url.trim();
    LINK_SCHEMES
        .iter()
        .any(|s| starts_with_ignore_ascii_case(url, s) && url.len() > s.len())
}

/// Whether a link's text just repeats its URL (ignoring the scheme, a
/// trailing slash and ASCII case), so showing both would be noise.
pub(crate) fn link_text_is_url(text: &str, url: &str) -> bool {
    fn normalise(s: &str) -> String {
        let s = s.trim();
        let without_scheme = LINK_SCHEMES
            .iter()
            .find(|p| starts_with_ignore_ascii_case(s, p))
            .and_then(|p| s.get(p.len()..))
            .unwrap_or(s);
        without_scheme.trim_end_matches('/').to_ascii_lowercase()
    }
    normalise(text) == normalise(url)
}

/// The link text worth showing next to `url`: `None` when it is empty or
/// only repeats the URL.
pub(crate) fn distinct_link_text<'a>(text: Option<&'a str>, url: &str) -> Option<&'a str> {
    text.map(str::trim)
        .filter(|t| !t.is_empty() && !link_text_is_url(t, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(text: &str, at: usize) -> Option<&str> {
        url_len_at(text, at).map(|len| &text[at..at + len])
    }

    #[test]
    fn finds_urls_followed_by_chinese_or_punctuation() {
        assert_eq!(
            find("看http://qq.com/a?b=1，好", 3),
            Some("http://qq.com/a?b=1")
        );
        assert_eq!(
            find("https://example.org/x.", 0),
            Some("https://example.org/x")
        );
        assert_eq!(
            find("(see https://e.org/wiki/A_(b))", 5),
            Some("https://e.org/wiki/A_(b)")
        );
        assert_eq!(find("(see https://e.org/a)", 5), Some("https://e.org/a"));
        assert_eq!(find("HTTPS://E.ORG", 0), Some("HTTPS://E.ORG"));
    }

    #[test]
    fn rejects_non_urls() {
        assert_eq!(find("http://", 0), None);
        assert_eq!(find("http:// x", 0), None);
        assert_eq!(find("xhttp://e.org", 1), None);
        assert_eq!(find("ftp://e.org", 0), None);
        assert_eq!(find("hi", 5), None);
    }

    #[test]
    fn link_text_comparison_ignores_scheme_and_slash() {
        assert!(link_text_is_url("example.org", "https://example.org/"));
        assert!(link_text_is_url("HTTP://Example.org", "http://example.org"));
        assert!(!link_text_is_url("官网", "http://example.org"));
        assert_eq!(distinct_link_text(Some(" "), "http://a.b"), None);
        assert_eq!(distinct_link_text(Some("文档"), "http://a.b"), Some("文档"));
    }

    #[test]
    fn only_safe_schemes_are_linkable() {
        assert!(is_linkable_url("https://a.b"));
        assert!(is_linkable_url("mailto:x@y.z"));
        assert!(!is_linkable_url("javascript:alert(1)"));
        assert!(!is_linkable_url("https://"));
        assert!(!is_linkable_url("#top"));
    }
}
