//! A small, bounded HTML tokenizer: enough for the HTML subset Matrix
//! clients send (`formatted_body`), tolerant of malformed input, linear in
//! the input size and free of panics.

use super::entities::decode_entities;

/// One lexical piece of an HTML document. Comments, doctypes and processing
/// instructions are skipped and never produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// Raw text, entities not yet decoded.
    Text(&'a str),
    StartTag {
        /// Lowercased tag name.
        name: String,
        /// Lowercased attribute names with entity-decoded values.
        attrs: Vec<(String, String)>,
    },
    EndTag {
        /// Lowercased tag name.
        name: String,
    },
}

impl Token<'_> {
    /// The value of an attribute of a start tag.
    pub(crate) fn attr(&self, wanted: &str) -> Option<&str> {
        match self {
            Token::StartTag { attrs, .. } => attrs
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.as_str()),
            _ => None,
        }
    }
}

/// Attributes kept per tag; later ones are parsed and dropped, which bounds
/// memory for hostile input.
const MAX_ATTRS: usize = 32;

/// Elements whose content is raw text up to their end tag (never markup).
const RAW_TEXT_ELEMENTS: [&str; 2] = ["script", "style"];

/// Splits HTML into [`Token`]s.
pub(crate) struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
    /// Inside a raw-text element: the name of the end tag that closes it.
    raw_text_until: Option<&'static str>,
}

impl<'a> Tokenizer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Tokenizer {
            src,
            pos: 0,
            raw_text_until: None,
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    /// Gives up on the rest of the input (an unterminated tag or comment,
    /// which browsers drop too).
    fn finish(&mut self) {
        self.pos = self.src.len();
    }

    /// Skips to just after the next `needle`, or to the end; whether
    /// `needle` was found.
    fn skip_past(&mut self, needle: &str) -> bool {
        match self.rest().find(needle) {
            Some(i) => {
                self.pos += i + needle.len();
                true
            }
            None => {
                self.finish();
                false
            }
        }
    }

    fn raw_text(&mut self, end_tag: &'static str) -> Option<Token<'a>> {
        self.raw_text_until = None;
        let rest = self.rest();
        let closing = format!("</{end_tag}");
        let len = find_ignore_ascii_case(rest, &closing).unwrap_or(rest.len());
        self.pos += len;
        if len == 0 {
            return self.next();
        }
        rest.get(..len).map(Token::Text)
    }

    fn text(&mut self) -> Token<'a> {
        let rest = self.rest();
        // The first character is text even when it is a '<' that cannot
        // open a tag; the text runs to the next '<' after it.
        let first_len = rest.chars().next().map_or(0, char::len_utf8);
        let len = rest
            .get(first_len..)
            .and_then(|after| after.find('<'))
            .map_or(rest.len(), |i| first_len + i);
        self.pos += len;
        Token::Text(rest.get(..len).unwrap_or(""))
    }

    fn end_tag(&mut self) -> Option<Token<'a>> {
        // At "</x": skip "</", read the name, then everything up to '>'.
        self.pos += 2;
        let name = self.tag_name();
        self.skip_past(">").then_some(Token::EndTag { name })
    }

    fn tag_name(&mut self) -> String {
        let rest = self.rest();
        let len = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or("").to_ascii_lowercase()
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.pos += rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_whitespace())
                .len();
    }

    /// Parses a start tag at "<x"; `None` when the input ends inside it.
    fn start_tag(&mut self) -> Option<Token<'a>> {
        self.pos += 1;
        let name = self.tag_name();
        let mut attrs = Vec::new();
        loop {
            self.skip_whitespace();
            let rest = self.rest();
            let Some(first) = rest.chars().next() else {
                return None; // input ended inside the tag
            };
            if first == '>' {
                self.pos += 1;
                break;
            }
            if first == '/' {
                self.pos += 1;
                continue;
            }
            // An attribute name may start with '='; take at least one
            // character so the loop always advances.
            let name_len = rest
                .char_indices()
                .skip(1)
                .find(|(_, c)| c.is_ascii_whitespace() || matches!(c, '/' | '>' | '='))
                .map_or(rest.len(), |(i, _)| i);
            let attr_name = rest.get(..name_len).unwrap_or("").to_ascii_lowercase();
            self.pos += name_len;
            self.skip_whitespace();
            let value = if self.rest().starts_with('=') {
                self.pos += 1;
                self.skip_whitespace();
                self.attr_value()?
            } else {
                String::new()
            };
            if attrs.len() < MAX_ATTRS {
                attrs.push((attr_name, value));
            }
        }
        if let Some(raw) = RAW_TEXT_ELEMENTS.iter().find(|r| **r == name) {
            self.raw_text_until = Some(raw);
        }
        Some(Token::StartTag { name, attrs })
    }

    /// A quoted or unquoted attribute value, entity-decoded; `None` when the
    /// input ends inside a quoted value.
    fn attr_value(&mut self) -> Option<String> {
        let rest = self.rest();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
        let raw = match quote {
            Some(q) => {
                let inner = rest.get(1..)?;
                let len = inner.find(q)?;
                self.pos += len + 2;
                inner.get(..len)?
            }
            None => {
                let len = rest
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .unwrap_or(rest.len());
                self.pos += len;
                rest.get(..len)?
            }
        };
        Some(decode_entities(raw).into_owned())
    }
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if let Some(end_tag) = self.raw_text_until {
            return self.raw_text(end_tag);
        }
        loop {
            let rest = self.rest();
            let mut chars = rest.chars();
            match (chars.next()?, chars.next()) {
                ('<', Some('!')) if rest.starts_with("<!--") => {
                    self.pos += 4;
                    self.skip_past("-->");
                }
                ('<', Some('!' | '?')) => {
                    self.skip_past(">");
                }
                ('<', Some('/')) => match chars.next() {
                    Some(c) if c.is_ascii_alphabetic() => {
                        if let Some(tag) = self.end_tag() {
                            return Some(tag);
                        }
                    }
                    // "</>" and "</ …>" are bogus comments to a browser.
                    _ => {
                        self.skip_past(">");
                    }
                },
                ('<', Some(c)) if c.is_ascii_alphabetic() => match self.start_tag() {
                    Some(tag) => return Some(tag),
                    None => self.finish(),
                },
                _ => return Some(self.text()),
            }
        }
    }
}

fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len().max(1))
        .position(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn start(name: &str, attrs: &[(&str, &str)]) -> Token<'static> {
        Token::StartTag {
            name: name.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn end(name: &str) -> Token<'static> {
        Token::EndTag { name: name.into() }
    }

    fn tokens(html: &str) -> Vec<Token<'_>> {
        Tokenizer::new(html).collect()
    }

    #[test]
    fn tokenizes_tags_attributes_and_text() {
        assert_eq!(
            tokens(r#"你好<A HREF="https://matrix.to/#/@a:b?x=1&amp;y=2" class=pill>阿</a><br/>"#),
            vec![
                Token::Text("你好"),
                start(
                    "a",
                    &[
                        ("href", "https://matrix.to/#/@a:b?x=1&y=2"),
                        ("class", "pill")
                    ]
                ),
                Token::Text("阿"),
                end("a"),
                start("br", &[]),
            ]
        );
        assert_eq!(
            tokens("<img data-mx-emoticon alt=':cat:'>"),
            vec![start("img", &[("data-mx-emoticon", ""), ("alt", ":cat:")])]
        );
    }

    #[test]
    fn skips_comments_doctypes_and_bogus_tags() {
        assert_eq!(
            tokens("<!DOCTYPE html><!-- <b>no</b> -->a<?x?>b</>c</ d>e"),
            vec![
                Token::Text("a"),
                Token::Text("b"),
                Token::Text("c"),
                Token::Text("e")
            ]
        );
    }

    #[test]
    fn lone_angle_brackets_are_text() {
        assert_eq!(tokens("a < b"), vec![Token::Text("a "), Token::Text("< b")]);
        assert_eq!(tokens("1<2"), vec![Token::Text("1"), Token::Text("<2")]);
        assert_eq!(
            tokens("<<b>x"),
            vec![Token::Text("<"), start("b", &[]), Token::Text("x")]
        );
    }

    #[test]
    fn unterminated_markup_is_dropped() {
        assert_eq!(tokens("ok<b class=\"x"), vec![Token::Text("ok")]);
        assert_eq!(tokens("ok<b"), vec![Token::Text("ok")]);
        assert_eq!(tokens("ok<!-- never closed"), vec![Token::Text("ok")]);
        assert_eq!(tokens("ok</b"), vec![Token::Text("ok")]);
    }

    #[test]
    fn script_content_is_raw_text() {
        assert_eq!(
            tokens("<script>if (a<b) x('</p>')</SCRIPT>z"),
            vec![
                start("script", &[]),
                Token::Text("if (a<b) x('</p>')"),
                end("script"),
                Token::Text("z")
            ]
        );
    }

    proptest! {
        #[test]
        fn tokenizer_never_panics_and_terminates(s in "(<|>|/|!|-|=|\"|'|&|#|;|[a-z]|微| |\n){0,120}") {
            let _ = Tokenizer::new(&s).count();
        }

        #[test]
        fn tokenizer_handles_any_unicode(s in "\\PC{0,120}") {
            let _ = Tokenizer::new(&s).count();
        }
    }
}
