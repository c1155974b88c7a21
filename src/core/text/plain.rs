//! Plain text: rendering [`RichText`] for QQ wire text, IRC and the Matrix
//! `body`, and parsing plain text (face codes, URLs) back into segments.

use crate::core::faces::{
    self, face_by_emoji_char, face_by_name, face_id_by_code, MAX_FACE_NAME_CHARS,
};
use crate::core::model::{RichText, Segment};

use super::url::{distinct_link_text, url_len_at};

/// How faces are written in plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaceStyle {
    /// The face's emoji where it has one, else its `[name]` code: for Matrix
    /// and IRC, whose clients show emoji.
    #[default]
    Emoji,
    /// Always the `[微笑]` code: for QQ clients, which turn codes back into
    /// faces (or at least show a name their users recognise).
    Name,
}

/// The plain-text form of one face.
pub fn face_text(id: u16, style: FaceStyle) -> String {
    match (style, faces::face_emoji(id)) {
        (FaceStyle::Emoji, Some(emoji)) => emoji.to_owned(),
        _ => format!("[{}]", faces::face_label(id)),
    }
}

/// Renders rich text as plain text. Mentions become `@name`, links their
/// URL (or `text (url)` when the text says something the URL does not).
/// The action flag is not rendered: each side marks actions its own way.
pub fn render_plain(rich: &RichText, style: FaceStyle) -> String {
    let mut out = String::new();
    for segment in &rich.segments {
        match segment {
            Segment::Text { text } => out.push_str(text),
            Segment::Face { id } => out.push_str(&face_text(*id, style)),
            Segment::Mention { name, .. } => {
                // A name that already carries the @ (some clients include it)
                // must not become @@name.
                if !name.starts_with('@') {
                    out.push('@');
                }
                out.push_str(name);
            }
            Segment::Link { url, text } => match distinct_link_text(text.as_deref(), url) {
                Some(text) => {
                    out.push_str(text);
                    out.push_str(" (");
                    out.push_str(url);
                    out.push(')');
                }
                None => out.push_str(url),
            },
        }
    }
    out
}

/// Parses plain text: face codes as QQ users type them (`[微笑]`, `/微笑`,
/// and this module's `[表情15]` for unnamed ids) become faces, http(s) URLs
/// become links, everything else stays text. Emoji stay text; see
/// [`emoji_to_faces`].
pub fn parse_plain(text: &str) -> RichText {
    let mut rich = RichText::default();
    let mut text_start = 0;
    let mut at = 0;
    while at < text.len() {
        if let Some((len, segment)) = token_at(text, at) {
            rich.push_text(text.get(text_start..at).unwrap_or(""));
            rich.segments.push(segment);
            at += len;
            text_start = at;
            continue;
        }
        at += text
            .get(at..)
            .and_then(|rest| rest.chars().next())
            .map_or(1, char::len_utf8);
    }
    rich.push_text(text.get(text_start..).unwrap_or(""));
    rich
}

/// The face code or URL starting at byte `at`, with its length in bytes.
fn token_at(text: &str, at: usize) -> Option<(usize, Segment)> {
    let rest = text.get(at..)?;
    match rest.as_bytes().first()? {
        b'[' => bracket_face_at(rest),
        b'/' => slash_face_at(rest),
        b'h' | b'H' => url_len_at(text, at).and_then(|len| {
            let url = rest.get(..len)?.to_owned();
            Some((len, Segment::Link { url, text: None }))
        }),
        _ => None,
    }
}

/// Longest bracket code in characters: `[表情134]`.
const MAX_BRACKET_CODE_CHARS: usize = 7;

/// `[微笑]` or `[表情15]` at the start of `rest`.
fn bracket_face_at(rest: &str) -> Option<(usize, Segment)> {
    let close = rest
        .char_indices()
        .take(MAX_BRACKET_CODE_CHARS)
        .find(|(_, c)| *c == ']')
        .map(|(i, _)| i)?;
    let code = rest.get(..=close)?;
    face_id_by_code(code).map(|id| (code.len(), Segment::Face { id }))
}

/// `/微笑` at the start of `rest`: the longest face name right after the
/// slash (`/糗大了` is one face, not `/糗` + text). The ASCII names `NO`
/// and `OK` must end at a word boundary so `/OKAY` stays text.
fn slash_face_at(rest: &str) -> Option<(usize, Segment)> {
    let name_area = rest.get(1..)?;
    let ends: Vec<usize> = name_area
        .char_indices()
        .take(MAX_FACE_NAME_CHARS)
        .map(|(i, c)| i + c.len_utf8())
        .collect();
    ends.into_iter().rev().find_map(|end| {
        let name = name_area.get(..end)?;
        let face = face_by_name(name)?;
        let next = name_area.get(end..).and_then(|s| s.chars().next());
        let ascii_name = name.is_ascii();
        if ascii_name && next.is_some_and(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        Some((1 + end, Segment::Face { id: face.id }))
    })
}

/// Turns emoji that stand for a classic face into face segments (for the
/// WebQQ side, whose clients show faces but not emoji). Emoji inside a
/// zero-width-joiner sequence (👨‍👩‍👧, ❤️‍🔥) are left alone, since the
/// sequence means something else; a skin tone or U+FE0F after the emoji is
/// absorbed into the face.
pub fn emoji_to_faces(rich: RichText) -> RichText {
    let mut out = RichText {
        segments: Vec::with_capacity(rich.segments.len()),
        action: rich.action,
    };
    for segment in rich.segments {
        match segment {
            Segment::Text { text } => push_text_with_faces(&mut out, &text),
            other => out.segments.push(other),
        }
    }
    out
}

fn push_text_with_faces(out: &mut RichText, text: &str) {
    let mut text_start = 0;
    let mut previous: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let after_joiner = previous == Some('\u{200D}');
        previous = Some(c);
        let Some(face) = face_by_emoji_char(c) else {
            continue;
        };
        let mut end = at + c.len_utf8();
        while let Some(&(i, modifier)) = chars.peek() {
            if modifier == '\u{FE0F}' || ('\u{1F3FB}'..='\u{1F3FF}').contains(&modifier) {
                end = i + modifier.len_utf8();
                previous = Some(modifier);
                chars.next();
            } else {
                break;
            }
        }
        let before_joiner = chars.peek().is_some_and(|(_, next)| *next == '\u{200D}');
        if after_joiner || before_joiner {
            continue;
        }
        out.push_text(text.get(text_start..at).unwrap_or(""));
        out.segments.push(Segment::Face { id: face.id });
        text_start = end;
    }
    out.push_text(text.get(text_start..).unwrap_or(""));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Uin;
    use proptest::prelude::*;

    fn text(s: &str) -> Segment {
        Segment::Text { text: s.to_owned() }
    }

    fn face(id: u16) -> Segment {
        Segment::Face { id }
    }

    fn rich(segments: Vec<Segment>) -> RichText {
        RichText {
            segments,
            action: false,
        }
    }

    #[test]
    fn renders_faces_in_both_styles() {
        let msg = rich(vec![text("你好"), face(14), face(98), face(15)]);
        assert_eq!(render_plain(&msg, FaceStyle::Emoji), "你好🙂[抠鼻][表情15]");
        assert_eq!(
            render_plain(&msg, FaceStyle::Name),
            "你好[微笑][抠鼻][表情15]"
        );
    }

    #[test]
    fn renders_mentions_and_links() {
        let msg = rich(vec![
            Segment::Mention {
                uin: Some(Uin(10002)),
                name: "微程".into(),
            },
            text(" 看 "),
            Segment::Link {
                url: "http://qq.com/".into(),
                text: Some("qq.com".into()),
            },
            text(" 和 "),
            Segment::Link {
                url: "http://w.qq.com".into(),
                text: Some("网页版".into()),
            },
            Segment::Mention {
                uin: None,
                name: "@already".into(),
            },
        ]);
        assert_eq!(
            render_plain(&msg, FaceStyle::Name),
            "@微程 看 http://qq.com/ 和 网页版 (http://w.qq.com)@already"
        );
    }

    #[test]
    fn parses_face_codes_in_both_forms() {
        assert_eq!(
            parse_plain("大家好[微笑]/呲牙再见/糗大了"),
            rich(vec![
                text("大家好"),
                face(14),
                face(13),
                text("再见"),
                face(100)
            ])
        );
        assert_eq!(parse_plain("[表情15]"), rich(vec![face(15)]));
        assert_eq!(
            parse_plain("/OK /OKAY"),
            rich(vec![face(124), text(" /OKAY")])
        );
    }

    #[test]
    fn leaves_non_codes_alone() {
        for s in [
            "[不是表情]",
            "[微笑",
            "a/b",
            "[]",
            "/",
            "[",
            "and/or",
            "[表情999]",
        ] {
            assert_eq!(parse_plain(s), RichText::plain(s), "{s}");
        }
        assert_eq!(parse_plain(""), RichText::default());
    }

    #[test]
    fn parses_urls_inside_chinese_text() {
        assert_eq!(
            parse_plain("看这个http://t.cn/abc，不错[强]"),
            rich(vec![
                text("看这个"),
                Segment::Link {
                    url: "http://t.cn/abc".into(),
                    text: None
                },
                text("，不错"),
                face(46),
            ])
        );
    }

    #[test]
    fn name_style_round_trips_through_parse() {
        let msg = rich(vec![
            text("早"),
            face(14),
            text("！"),
            face(0),
            face(134),
            face(20),
        ]);
        assert_eq!(parse_plain(&render_plain(&msg, FaceStyle::Name)), msg);
    }

    #[test]
    fn converts_emoji_to_faces_but_not_inside_sequences() {
        let converted = emoji_to_faces(RichText::plain("好👍🏻哦❤️!❤️‍🔥👨‍👩‍👧🙂"));
        assert_eq!(
            converted,
            rich(vec![
                text("好"),
                face(46),
                text("哦"),
                face(36),
                text("!❤️‍🔥👨‍👩‍👧"),
                face(14)
            ])
        );
    }

    proptest! {
        #[test]
        fn parse_then_render_by_name_is_stable(
            s in "(微笑|糗大了|表情1|NO|\\[|\\]|/|http://a.b|[a-z .好])*"
        ) {
            let parsed = parse_plain(&s);
            prop_assert_eq!(parse_plain(&render_plain(&parsed, FaceStyle::Name)), parsed);
        }

        #[test]
        fn parse_plain_without_codes_or_urls_is_one_text(s in "[^\\[/hH]{0,80}") {
            prop_assert_eq!(parse_plain(&s), if s.is_empty() {
                RichText::default()
            } else {
                RichText::plain(s.clone())
            });
        }

        #[test]
        fn emoji_to_faces_keeps_everything_else(s in "[a好🙂👍❤🍉\u{200D}\u{FE0F}]{0,20}") {
            let converted = emoji_to_faces(RichText::plain(s.clone()));
            let without_vs16 = |t: &str| t.replace('\u{FE0F}', "");
            prop_assert_eq!(
                without_vs16(&render_plain(&converted, FaceStyle::Emoji)),
                without_vs16(&s)
            );
        }
    }
}
