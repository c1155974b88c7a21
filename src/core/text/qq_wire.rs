//! Removing the artefacts QQ servers add to message text (webqq.md §6.1,
//! http11.md `MG=hi ,`): the trailing space, `\r` line breaks and the Q+ Web
//! advertisement.

use crate::core::model::{RichText, Segment};

/// Start of the advertisement the WebQQ server appends to messages sent from
/// Q+ Web: `【提示：此用户正在使用Q+ Web：http://web.qq.com/】` (also seen
/// with `web3.qq.com`).
const QPLUS_AD_START: &str = "【提示";
/// Text that identifies a `【提示…】` bracket as the advertisement rather
/// than something a user wrote.
const QPLUS_AD_MARKER: &str = "Q+ Web";
const QPLUS_AD_END: char = '】';
/// Longest advertisement accepted, in bytes, so a stray `【提示` cannot
/// swallow a long message.
const QPLUS_AD_MAX_BYTES: usize = 160;

/// Cleans one message's text as it came off the QQ wire.
pub fn clean_qq_wire_text(text: &str) -> String {
    let mut text = normalise_line_breaks(text);
    strip_server_suffixes(&mut text);
    remove_qplus_ads(&mut text);
    text
}

/// Cleans a message decoded from WebQQ content: line breaks in every text
/// segment, the advertisement wherever it is, and the server's trailing
/// space on the last segment (a lone `" "` after a final face disappears).
pub fn clean_qq_wire(rich: RichText) -> RichText {
    let mut segments: Vec<Segment> = rich
        .segments
        .into_iter()
        .map(|segment| match segment {
            Segment::Text { text } => Segment::Text {
                text: normalise_line_breaks(&text),
            },
            other => other,
        })
        .collect();
    if let Some(Segment::Text { text }) = segments.last_mut() {
        strip_server_suffixes(text);
    }
    for segment in &mut segments {
        if let Segment::Text { text } = segment {
            remove_qplus_ads(text);
        }
    }
    segments.retain(|s| !matches!(s, Segment::Text { text } if text.is_empty()));
    RichText {
        segments,
        action: rich.action,
    }
}

/// `\r\n` and lone `\r` (WebQQ's usual line break) become `\n`.
fn normalise_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Removes the one space the server appends, and an advertisement at the
/// very end together with the space on either side of it. Spaces the user
/// typed before the server's space are kept.
fn strip_server_suffixes(text: &mut String) {
    strip_one_trailing_space(text);
    if let Some(start) = trailing_ad_start(text) {
        text.truncate(start);
        strip_one_trailing_space(text);
    }
}

fn strip_one_trailing_space(text: &mut String) {
    if text.ends_with(' ') {
        text.pop();
    }
}

/// Where an advertisement that ends `text` starts.
fn trailing_ad_start(text: &str) -> Option<usize> {
    if !text.ends_with(QPLUS_AD_END) {
        return None;
    }
    let start = text.rfind(QPLUS_AD_START)?;
    let ad = text.get(start..)?;
    (ad.len() <= QPLUS_AD_MAX_BYTES && ad.contains(QPLUS_AD_MARKER)).then_some(start)
}

/// Removes advertisements anywhere in `text`.
fn remove_qplus_ads(text: &mut String) {
    let mut search_from = 0;
    while let Some(found) = text.get(search_from..).and_then(|t| t.find(QPLUS_AD_START)) {
        let start = search_from + found;
        let end = text
            .get(start..)
            .and_then(|t| t.find(QPLUS_AD_END))
            .map(|i| start + i + QPLUS_AD_END.len_utf8());
        match end.and_then(|end| Some((end, text.get(start..end)?))) {
            Some((end, ad)) if ad.len() <= QPLUS_AD_MAX_BYTES && ad.contains(QPLUS_AD_MARKER) => {
                text.replace_range(start..end, "");
                search_from = start;
            }
            _ => search_from = start + QPLUS_AD_START.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AD: &str = "【提示：此用户正在使用Q+ Web：http://web.qq.com/】";

    #[test]
    fn strips_the_servers_trailing_space_only() {
        assert_eq!(clean_qq_wire_text("hi "), "hi");
        assert_eq!(clean_qq_wire_text("你好  "), "你好 ");
        assert_eq!(clean_qq_wire_text("hi"), "hi");
        assert_eq!(clean_qq_wire_text(" "), "");
        assert_eq!(clean_qq_wire_text(""), "");
    }

    #[test]
    fn converts_carriage_returns() {
        assert_eq!(
            clean_qq_wire_text("第一行\r第二行\r\n第三行 "),
            "第一行\n第二行\n第三行"
        );
        assert_eq!(clean_qq_wire_text("hello\r "), "hello\n");
    }

    #[test]
    fn removes_the_qplus_advertisement_in_any_position() {
        assert_eq!(clean_qq_wire_text(&format!("在吗 {AD}")), "在吗");
        assert_eq!(clean_qq_wire_text(&format!("在吗{AD} ")), "在吗");
        assert_eq!(clean_qq_wire_text(&format!("在吗 {AD} ")), "在吗");
        let web3 = AD.replace("web.qq.com", "web3.qq.com");
        assert_eq!(clean_qq_wire_text(&format!("a{web3}b ")), "ab");
        // A bracket that merely starts like the advertisement stays.
        assert_eq!(clean_qq_wire_text("【提示】明天开会 "), "【提示】明天开会");
        assert_eq!(clean_qq_wire_text("【提示 "), "【提示");
    }

    #[test]
    fn cleans_rich_text_from_webqq_content() {
        let wire = RichText {
            segments: vec![
                Segment::Text {
                    text: "hello\r".into(),
                },
                Segment::Face { id: 14 },
                Segment::Text { text: " ".into() },
            ],
            action: false,
        };
        let clean = clean_qq_wire(wire);
        assert_eq!(
            clean.segments,
            vec![
                Segment::Text {
                    text: "hello\n".into()
                },
                Segment::Face { id: 14 }
            ]
        );
        let with_ad = clean_qq_wire(RichText::plain(format!("hii {AD}")));
        assert_eq!(with_ad, RichText::plain("hii"));
    }
}
