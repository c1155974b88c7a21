//! Message content between the world's plain text and WebQQ's content
//! arrays (webqq.md §6.1).
//!
//! The world keeps text as every QQ client typed it: faces as `[微笑]`
//! codes. Sent content (a JSON string holding `["text", ["face",14], …,
//! ["font",{…}]]`) becomes that text through the core's one plain-text
//! renderer; received content is built from it through the one parser, as
//! `[font, …segments]` with the server's artefacts: `\r` line breaks, one
//! trailing space, and optionally the Q+ Web advertisement.

use serde::ser::SerializeTuple;
use serde::{Serialize, Serializer};

use crate::core::model::{RichText, Segment};
use crate::core::text::{parse_plain, render_plain, FaceStyle};
use crate::qq::webqq::content::decode_send_content;

/// What the server appended to messages from Q+ Web users.
pub const QPLUS_TIP: &str = "【提示：此用户正在使用Q+ Web：http://web.qq.com/】";

/// The font of received messages: 宋体 10, black (every sample's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedFont {
    pub size: u32,
    pub color: &'static str,
    pub style: [u8; 3],
    pub name: &'static str,
}

const DEFAULT_FONT: ReceivedFont = ReceivedFont {
    size: 10,
    color: "000000",
    style: [0, 0, 0],
    name: "宋体",
};

/// One element of a received content array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    Font(ReceivedFont),
    Text(String),
    Face(u16),
}

impl Serialize for Element {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Element::Text(text) => s.serialize_str(text),
            Element::Face(id) => {
                let mut pair = s.serialize_tuple(2)?;
                pair.serialize_element("face")?;
                pair.serialize_element(id)?;
                pair.end()
            }
            Element::Font(font) => {
                let mut pair = s.serialize_tuple(2)?;
                pair.serialize_element("font")?;
                pair.serialize_element(font)?;
                pair.end()
            }
        }
    }
}

/// How the server dresses received text.
#[derive(Debug, Clone, Copy)]
pub struct Dressing {
    pub trailing_space: bool,
    pub qplus_tip: bool,
}

/// The content array a recipient sees for world text.
pub fn received_content(text: &str, dressing: Dressing) -> Vec<Element> {
    let mut elements = vec![Element::Font(DEFAULT_FONT)];
    for segment in parse_plain(text).segments {
        match segment {
            Segment::Face { id } => elements.push(Element::Face(id)),
            other => {
                let single = RichText {
                    segments: vec![other],
                    action: false,
                };
                push_text(&mut elements, &render_plain(&single, FaceStyle::Name));
            }
        }
    }
    if dressing.qplus_tip {
        push_text(&mut elements, QPLUS_TIP);
    }
    if dressing.trailing_space {
        push_text(&mut elements, " ");
    }
    for element in &mut elements {
        if let Element::Text(text) = element {
            *text = text.replace("\r\n", "\r").replace('\n', "\r");
        }
    }
    elements
}

/// Appends text, merging it into a text element that ends the array.
fn push_text(elements: &mut Vec<Element>, text: &str) {
    if text.is_empty() {
        return;
    }
    match elements.last_mut() {
        Some(Element::Text(last)) => last.push_str(text),
        _ => elements.push(Element::Text(text.to_owned())),
    }
}

/// The world text of a sent `content` string; `None` unless it is a JSON
/// array (the font and unknown elements are dropped).
pub fn world_text_of_sent(content: &str) -> Option<String> {
    let rich = decode_send_content(content)?;
    Some(render_plain(&rich, FaceStyle::Name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Dressing = Dressing {
        trailing_space: true,
        qplus_tip: false,
    };

    #[test]
    fn received_content_puts_the_font_first_and_a_space_last() {
        let json = serde_json::to_string(&received_content("hii", PLAIN)).unwrap();
        assert_eq!(
            json,
            r#"[["font",{"size":10,"color":"000000","style":[0,0,0],"name":"宋体"}],"hii "]"#
        );
        let json = serde_json::to_string(&received_content("a\nb[微笑]", PLAIN)).unwrap();
        assert!(json.ends_with(r#""a\rb",["face",14]," "]"#), "{json}");
        let bare = Dressing {
            trailing_space: false,
            qplus_tip: true,
        };
        let json = serde_json::to_string(&received_content("x", bare)).unwrap();
        assert!(json.ends_with(&format!("\"x{QPLUS_TIP}\"]")), "{json}");
    }

    #[test]
    fn sent_content_becomes_text_with_face_codes() {
        let content = r#"["hi ",["face",14],["font",{"name":"宋体","size":"10","style":[0,0,0],"color":"000000"}]]"#;
        assert_eq!(world_text_of_sent(content).as_deref(), Some("hi [微笑]"));
        assert_eq!(world_text_of_sent("not json"), None);
        assert_eq!(world_text_of_sent(r#"{"a":1}"#), None);
    }
}
