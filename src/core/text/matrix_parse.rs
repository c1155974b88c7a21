//! Parsing Matrix `formatted_body` HTML into [`RichText`]: tags stripped,
//! block structure kept as line breaks, quotes and list markers, links kept,
//! user pills turned into mentions, reply fallbacks dropped.

use percent_encoding::percent_decode_str;

use crate::core::model::{RichText, Segment, Uin};

use super::entities::decode_entities;
use super::html::{Token, Tokenizer};
use super::url::{distinct_link_text, is_linkable_url};

/// Elements whose whole content is dropped: the reply fallback (the bridge
/// sends replies its own way) and things that are never message text.
const SKIPPED_ELEMENTS: [&str; 5] = ["mx-reply", "script", "style", "head", "title"];

/// Block elements that end a line; `p` ends a paragraph instead.
const BLOCK_ELEMENTS: [&str; 20] = [
    "div", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "section", "article", "header",
    "footer", "details", "summary", "dl", "dt", "dd", "figure", "caption",
];

/// Quote and list nesting shown at most; deeper levels look the same, which
/// keeps each line's prefix (and so the output) linear in the input.
const MAX_SHOWN_NESTING: usize = 5;

/// Maps a Matrix user id (`@_qq_10002:localhost`) to the QQ number of the
/// user if it is a QQ puppet, and the name to show for the mention.
pub type ResolveUser = dyn Fn(&str) -> Option<(Option<Uin>, String)>;

/// Parses Matrix HTML into rich text.
///
/// `resolve_user` maps a Matrix user id from a `matrix.to` (or `matrix:u/`)
/// pill to `(QQ number if the user is a QQ puppet, name to show)`; a pill it
/// does not resolve keeps its text. Never panics; runs in linear time.
pub fn parse_matrix_html(html: &str, resolve_user: &ResolveUser) -> RichText {
    let mut builder = Builder::default();
    // The skipped element being dropped and how deeply it is nested in itself.
    let mut skipping: Option<(String, usize)> = None;
    for token in Tokenizer::new(html) {
        if let Some((skipped, depth)) = &mut skipping {
            match &token {
                Token::StartTag { name, .. } if name == skipped => *depth += 1,
                Token::EndTag { name } if name == skipped => {
                    *depth -= 1;
                    if *depth == 0 {
                        skipping = None;
                    }
                }
                _ => {}
            }
            continue;
        }
        match &token {
            Token::Text(raw) => builder.text(&decode_entities(raw)),
            Token::StartTag { name, .. } if SKIPPED_ELEMENTS.contains(&name.as_str()) => {
                skipping = Some((name.clone(), 1));
            }
            Token::StartTag { name, .. } => builder.start_tag(name, &token, resolve_user),
            Token::EndTag { name } => builder.end_tag(name, resolve_user),
        }
    }
    builder.finish(resolve_user)
}

/// The Matrix user id a pill links to: `https://matrix.to/#/@alice:example.org`
/// (possibly percent-encoded, with `?via=` parameters) or
/// `matrix:u/alice:example.org`.
pub fn matrix_user_id_from_link(href: &str) -> Option<String> {
    let href = href.trim();
    let strip = |prefix: &str| {
        href.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .and_then(|_| href.get(prefix.len()..))
    };
    let (sigil, encoded) = if let Some(rest) =
        strip("https://matrix.to/#/").or_else(|| strip("http://matrix.to/#/"))
    {
        ("", rest)
    } else {
        ("@", strip("matrix:u/")?)
    };
    let encoded = encoded.split(['?', '#', '/']).next().unwrap_or("");
    let decoded = percent_decode_str(encoded).decode_utf8().ok()?;
    let id = format!("{sigil}{decoded}");
    (id.starts_with('@') && id.len() > 1 && !id.contains(char::is_whitespace)).then_some(id)
}

#[derive(Default)]
struct Builder {
    rich: RichText,
    /// Newlines owed before the next content because a block ended (at most
    /// 2: a paragraph break).
    pending_breaks: usize,
    /// Whether the current output line has content yet.
    line_has_content: bool,
    /// Whether anything was output at all (no leading blank lines).
    any_content: bool,
    /// The line was started by `<br>`: leading spaces on it were typed on
    /// purpose, unlike indentation of the HTML source before a block.
    after_hard_break: bool,
    /// Source whitespace with a line break in it: one space between words
    /// on a line, nothing at the start or end of one.
    soft_space: bool,
    quote_depth: usize,
    pre_depth: usize,
    /// Just inside `<pre>`: its first newline is not content.
    pre_fresh: bool,
    lists: Vec<List>,
    /// The `- ` or `3. ` of a list item whose content has not started.
    pending_marker: Option<String>,
    link: Option<OpenLink>,
}

struct List {
    ordered: bool,
    next_number: u64,
}

/// An `<a>` whose text is being collected until `</a>`.
struct OpenLink {
    href: String,
    text: String,
}

fn is_html_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// Splits text into `(word, whitespace after it)` pairs; the first word is
/// empty when the text starts with whitespace.
fn words_and_spaces(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let word_len = rest.find(is_html_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_len);
        let space_len = after.len() - after.trim_start_matches(is_html_whitespace).len();
        let (space, after) = after.split_at(space_len);
        rest = after;
        Some((word, space))
    })
}

/// Whitespace with a line break in it is HTML source formatting, not typed
/// text: it stands for one space at most.
fn is_source_line_break(space: &str) -> bool {
    space.contains(['\n', '\r'])
}

/// Replaces each run of whitespace that contains a line break with one
/// space; other spaces stay as typed.
fn collapse_source_line_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (word, space) in words_and_spaces(text) {
        out.push_str(word);
        out.push_str(if is_source_line_break(space) {
            " "
        } else {
            space
        });
    }
    out
}

impl Builder {
    fn start_tag(&mut self, name: &str, token: &Token<'_>, resolve: &ResolveUser) {
        match name {
            "br" => self.hard_break(),
            "p" => self.request_break(2),
            "blockquote" => {
                self.request_break(1);
                self.quote_depth += 1;
            }
            "pre" => {
                self.request_break(1);
                self.pre_depth += 1;
                self.pre_fresh = true;
            }
            "ul" | "ol" => {
                self.request_break(1);
                let start = token
                    .attr("start")
                    .and_then(|s| s.trim().parse::<u64>().ok());
                self.lists.push(List {
                    ordered: name == "ol",
                    next_number: start.unwrap_or(1),
                });
            }
            "li" => self.start_list_item(),
            "hr" => {
                self.request_break(1);
                self.emit_str("---");
                self.request_break(1);
            }
            "td" | "th" => self.soft_space = true,
            "img" => {
                let alt = token.attr("alt").or_else(|| token.attr("title"));
                if let Some(alt) = alt.map(str::trim).filter(|a| !a.is_empty()) {
                    self.emit_str(alt);
                }
            }
            "a" => {
                self.finish_link(resolve);
                self.link = Some(OpenLink {
                    href: token.attr("href").unwrap_or("").trim().to_owned(),
                    text: String::new(),
                });
            }
            _ if BLOCK_ELEMENTS.contains(&name) => self.request_break(1),
            _ => {}
        }
    }

    fn end_tag(&mut self, name: &str, resolve: &ResolveUser) {
        match name {
            "p" => self.request_break(2),
            "blockquote" => {
                self.request_break(1);
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            "pre" => {
                self.request_break(1);
                self.pre_depth = self.pre_depth.saturating_sub(1);
            }
            "ul" | "ol" => {
                self.request_break(1);
                self.lists.pop();
            }
            "li" => self.request_break(1),
            "a" => self.finish_link(resolve),
            _ if BLOCK_ELEMENTS.contains(&name) => self.request_break(1),
            _ => {}
        }
    }

    fn start_list_item(&mut self) {
        self.request_break(1);
        let indent = "  ".repeat(self.lists.len().saturating_sub(1).min(MAX_SHOWN_NESTING));
        let marker = match self.lists.last_mut() {
            Some(list) if list.ordered => {
                let number = list.next_number;
                list.next_number = number.saturating_add(1);
                format!("{indent}{number}. ")
            }
            _ => format!("{indent}- "),
        };
        self.pending_marker = Some(marker);
    }

    /// A text node, entities already decoded.
    fn text(&mut self, text: &str) {
        if let Some(link) = &mut self.link {
            link.text.push_str(&collapse_source_line_breaks(text));
            return;
        }
        if self.pre_depth > 0 {
            self.preformatted_text(text);
            return;
        }
        if text.chars().all(is_html_whitespace) {
            self.soft_space = true;
            return;
        }
        for (word, space) in words_and_spaces(text) {
            self.emit_str(word);
            if is_source_line_break(space) {
                self.soft_space = true;
            } else if self.line_has_content || self.after_hard_break {
                self.emit_str(space);
            }
        }
    }

    fn preformatted_text(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n");
        let text = match text.strip_prefix('\n') {
            Some(rest) if self.pre_fresh => rest,
            _ => &text,
        };
        self.pre_fresh = false;
        let mut lines = text.split('\n');
        if let Some(first) = lines.next() {
            self.emit_str(first);
        }
        for line in lines {
            self.hard_break();
            self.emit_str(line);
        }
    }

    /// A block boundary: `n` newlines before the next content (if any
    /// content came before it on this line).
    fn request_break(&mut self, n: usize) {
        if let Some(link) = &mut self.link {
            link.text.push(' ');
            return;
        }
        if self.line_has_content || self.pending_breaks > 0 {
            self.pending_breaks = self.pending_breaks.max(n).min(2);
        }
        self.after_hard_break = false;
    }

    /// `<br>` (or a newline in `<pre>`): ends the line now.
    fn hard_break(&mut self) {
        if let Some(link) = &mut self.link {
            link.text.push(' ');
            return;
        }
        if !self.any_content {
            return;
        }
        self.flush_breaks();
        self.rich.push_text("\n");
        self.line_has_content = false;
        self.soft_space = false;
        self.after_hard_break = true;
    }

    fn flush_breaks(&mut self) {
        if self.pending_breaks > 0 {
            if self.any_content {
                // Spaces before the end of a block were source formatting.
                if let Some(Segment::Text { text }) = self.rich.segments.last_mut() {
                    text.truncate(text.trim_end_matches([' ', '\t']).len());
                }
                self.rich.push_text(&"\n".repeat(self.pending_breaks));
            }
            self.pending_breaks = 0;
            self.line_has_content = false;
        }
    }

    /// Everything content needs before it: owed line breaks, then the quote
    /// prefix and list marker of a new line, or a pending soft space.
    fn begin_content(&mut self) {
        self.flush_breaks();
        if self.line_has_content {
            if self.soft_space {
                self.rich.push_text(" ");
            }
        } else {
            let quote = "> ".repeat(self.quote_depth.min(MAX_SHOWN_NESTING));
            self.rich.push_text(&quote);
            if let Some(marker) = self.pending_marker.take() {
                self.rich.push_text(&marker);
            }
            self.line_has_content = true;
        }
        self.soft_space = false;
        self.after_hard_break = false;
        self.any_content = true;
    }

    fn emit_str(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(link) = &mut self.link {
            link.text.push_str(text);
            return;
        }
        self.begin_content();
        // Clients write &nbsp; to keep spaces from collapsing; here every
        // space is kept anyway, and QQ/IRC users want ordinary spaces.
        self.rich.push_text(&text.replace('\u{A0}', " "));
    }

    fn emit_segment(&mut self, segment: Segment) {
        self.begin_content();
        self.rich.segments.push(segment);
    }

    fn finish_link(&mut self, resolve: &ResolveUser) {
        let Some(link) = self.link.take() else {
            return;
        };
        let text = link.text.trim_matches(is_html_whitespace).to_owned();
        if let Some(user_id) = matrix_user_id_from_link(&link.href) {
            match resolve(&user_id) {
                Some((uin, name)) => {
                    let name = if name.trim().is_empty() { text } else { name };
                    self.emit_segment(Segment::Mention { uin, name });
                }
                None if text.is_empty() => self.emit_str(&user_id),
                None => self.emit_str(&text),
            }
        } else if is_linkable_url(&link.href) {
            let text = distinct_link_text(Some(&text), &link.href).map(str::to_owned);
            self.emit_segment(Segment::Link {
                url: link.href,
                text,
            });
        } else {
            self.emit_str(&text);
        }
    }

    fn finish(mut self, resolve: &ResolveUser) -> RichText {
        self.finish_link(resolve);
        if let Some(Segment::Text { text }) = self.rich.segments.last_mut() {
            let kept = text.trim_end_matches(is_html_whitespace).len();
            text.truncate(kept);
            if text.is_empty() {
                self.rich.segments.pop();
            }
        }
        self.rich
    }
}

#[cfg(test)]
mod tests;
