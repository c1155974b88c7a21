//! Message content arrays ↔ [`RichText`] (webqq.md §6.1).
//!
//! * Received: a JSON array with the font element **first**, then text
//!   strings, `["face", id]`, `["offpic", …]` and `["cface", …]`. Decoding
//!   accepts the font anywhere and skips what it does not know; the server's
//!   artefacts (trailing space, `\r`, the Q+ Web advert) are removed by the
//!   one text path, [`crate::core::text::clean_qq_wire`].
//! * Sent: text and faces first, the font **last**, and the whole array is a
//!   JSON **string** inside the request JSON (double encoding).
//!
//! Long messages are cut into pieces with the one splitter,
//! [`crate::core::text::split_message_for_limit`].

use serde::Serialize;
use serde_json::Value;

use super::json::value_to_u64;
use crate::core::faces::MAX_FACE_ID;
use crate::core::model::{RichText, Segment};
use crate::core::text::{
    clean_qq_wire, emoji_to_faces, face_text, render_plain, split_message_for_limit, FaceStyle,
};

/// Shown for a picture (`offpic`, `cface`), which the model cannot carry.
pub const PICTURE_PLACEHOLDER: &str = "[图片]";
/// What one face counts for against a message's byte budget (the length of
/// `["face",134]`).
pub const FACE_COST_BYTES: usize = 12;

/// One text-or-face element of a message, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireElement {
    Text(String),
    Face(u16),
}

/// The font element sent after the message (`size` as a string, as xhan
/// and lwqq send it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendFont {
    pub name: String,
    pub size: String,
    pub style: [u8; 3],
    pub color: String,
}

impl Default for SendFont {
    /// 宋体, size 10, black, no styles: the font of every sample.
    fn default() -> Self {
        SendFont {
            name: "宋体".to_owned(),
            size: "10".to_owned(),
            style: [0, 0, 0],
            color: "000000".to_owned(),
        }
    }
}

/// Decodes a received content array as the server sent it (trailing space
/// and `\r` included).
pub fn decode_content(elements: &[Value]) -> RichText {
    let mut rich = RichText::default();
    for element in elements {
        match element {
            Value::String(text) => rich.push_text(text),
            Value::Array(parts) => match parts.first().and_then(Value::as_str) {
                Some("face") => {
                    let id = parts
                        .get(1)
                        .and_then(value_to_u64)
                        .and_then(|id| u16::try_from(id).ok());
                    if let Some(id) = id {
                        rich.segments.push(Segment::Face { id });
                    }
                }
                Some("offpic" | "cface") => rich.push_text(PICTURE_PLACEHOLDER),
                // The font, and anything newer than this document.
                _ => {}
            },
            _ => {}
        }
    }
    rich
}

/// Decodes a received content array and removes the server's artefacts.
pub fn received_text(elements: &[Value]) -> RichText {
    clean_qq_wire(decode_content(elements))
}

/// The wire elements of an outgoing message: emoji that stand for faces
/// become faces, mentions and links become their plain text, faces the
/// server would not accept become their `[name]` text, and neighbouring
/// texts merge.
pub fn outgoing_elements(rich: &RichText) -> Vec<WireElement> {
    let rich = emoji_to_faces(rich.clone());
    let mut out: Vec<WireElement> = Vec::new();
    for segment in rich.segments {
        match segment {
            Segment::Text { text } => push_text(&mut out, text),
            Segment::Face { id } if id <= MAX_FACE_ID => out.push(WireElement::Face(id)),
            Segment::Face { id } => push_text(&mut out, face_text(id, FaceStyle::Name)),
            other => {
                let single = RichText {
                    segments: vec![other],
                    action: false,
                };
                push_text(&mut out, render_plain(&single, FaceStyle::Name));
            }
        }
    }
    out
}

fn push_text(out: &mut Vec<WireElement>, text: String) {
    if text.is_empty() {
        return;
    }
    if let Some(WireElement::Text(last)) = out.last_mut() {
        last.push_str(&text);
    } else {
        out.push(WireElement::Text(text));
    }
}

/// The inner JSON text of `content`: elements, then the font.
pub fn encode_send_content(elements: &[WireElement], font: &SendFont) -> String {
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Out<'a> {
        Text(&'a str),
        Face((&'static str, u16)),
        Font((&'static str, &'a SendFont)),
    }
    let mut items: Vec<Out<'_>> = elements
        .iter()
        .map(|e| match e {
            WireElement::Text(text) => Out::Text(text),
            WireElement::Face(id) => Out::Face(("face", *id)),
        })
        .collect();
    items.push(Out::Font(("font", font)));
    // ok: serialising strings, integers and a plain struct cannot fail.
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".to_owned())
}

/// The elements of a sent `content` string (what the simulator receives):
/// the inner JSON array, with the font dropped. `None` if it is not a JSON
/// array.
pub fn decode_send_content(content: &str) -> Option<RichText> {
    match serde_json::from_str::<Value>(content).ok()? {
        Value::Array(elements) => Some(decode_content(&elements)),
        _ => None,
    }
}

/// The bytes an element costs against a message's budget.
fn cost(element: &WireElement) -> usize {
    match element {
        WireElement::Text(text) => text.len(),
        WireElement::Face(_) => FACE_COST_BYTES,
    }
}

/// Cuts a message into pieces of at most `max(max_bytes, FACE_COST_BYTES)`
/// bytes (text bytes plus [`FACE_COST_BYTES`] per face), keeping elements
/// whole where they fit and cutting long texts with the one splitter.
pub fn split_elements(elements: Vec<WireElement>, max_bytes: usize) -> Vec<Vec<WireElement>> {
    let budget = max_bytes.max(FACE_COST_BYTES);
    let mut pieces: Vec<Vec<WireElement>> = Vec::new();
    let mut current: Vec<WireElement> = Vec::new();
    let mut used = 0;
    for element in elements {
        let size = cost(&element);
        if used + size <= budget {
            used += size;
            current.push(element);
            continue;
        }
        if !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
            used = 0;
        }
        match element {
            WireElement::Text(text) if text.len() > budget => {
                let mut parts = split_message_for_limit(&text, budget);
                let last = parts.pop();
                pieces.extend(parts.into_iter().map(|p| vec![WireElement::Text(p)]));
                if let Some(last) = last {
                    used = last.len();
                    current.push(WireElement::Text(last));
                }
            }
            other => {
                used = cost(&other);
                current.push(other);
            }
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn text(t: &str) -> Segment {
        Segment::Text { text: t.into() }
    }

    #[test]
    fn received_sample_of_section_6_1() {
        let content: Value = serde_json::from_str(
            r#"[["font",{"size":10,"color":"000000","style":[0,0,0],"name":"\u5B8B\u4F53"}],"hello",["face",14]," world\r2nd line "]"#,
        )
        .unwrap_or_default();
        let elements = content.as_array().cloned().unwrap_or_default();
        assert_eq!(
            decode_content(&elements).segments,
            vec![
                text("hello"),
                Segment::Face { id: 14 },
                text(" world\r2nd line ")
            ]
        );
        assert_eq!(
            received_text(&elements).segments,
            vec![
                text("hello"),
                Segment::Face { id: 14 },
                text(" world\n2nd line")
            ]
        );
    }

    #[test]
    fn worked_example_hii_loses_its_trailing_space() {
        let elements = vec![
            json!(["font", {"size":10,"color":"000000","style":[0,0,0],"name":"宋体"}]),
            json!("hii "),
        ];
        assert_eq!(received_text(&elements), RichText::plain("hii"));
    }

    #[test]
    fn a_lone_space_after_a_final_face_disappears() {
        let elements = vec![json!(["font", {}]), json!(["face", 0]), json!(" ")];
        assert_eq!(
            received_text(&elements).segments,
            vec![Segment::Face { id: 0 }]
        );
    }

    #[test]
    fn pictures_and_unknown_elements() {
        let elements = vec![
            json!(["font", {}]),
            json!(["offpic", {"success":1,"file_path":"/x"}]),
            json!(["cface", "{GUID}.jPg", ""]),
            json!(["face", "13"]),
            json!(["face", -1]),
            json!(["face", 70000]),
            json!(["shake", 1]),
            json!(42),
            json!(null),
            json!("ok "),
        ];
        assert_eq!(
            received_text(&elements).segments,
            vec![text("[图片][图片]"), Segment::Face { id: 13 }, text("ok")]
        );
    }

    #[test]
    fn qplus_advert_is_removed() {
        let elements = vec![
            json!(["font", {}]),
            json!("在吗【提示：此用户正在使用Q+ Web：http://web.qq.com/】 "),
        ];
        assert_eq!(received_text(&elements), RichText::plain("在吗"));
    }

    #[test]
    fn send_content_of_the_worked_example() {
        let rich = RichText {
            segments: vec![text("hi "), Segment::Face { id: 14 }],
            action: false,
        };
        let inner = encode_send_content(&outgoing_elements(&rich), &SendFont::default());
        assert_eq!(
            inner,
            r#"["hi ",["face",14],["font",{"name":"宋体","size":"10","style":[0,0,0],"color":"000000"}]]"#
        );
        // Double encoding: inside the request JSON it is a string.
        let r = json!({"to": 3901234567u64, "content": inner});
        assert!(r
            .to_string()
            .contains(r#""content":"[\"hi \",[\"face\",14],[\"font\""#));
        assert_eq!(decode_send_content(&inner), Some(rich));
    }

    #[test]
    fn outgoing_flattens_mentions_links_emoji_and_odd_faces() {
        let rich = RichText {
            segments: vec![
                Segment::Mention {
                    uin: None,
                    name: "Carol".into(),
                },
                text(" see "),
                Segment::Link {
                    url: "http://x.example/".into(),
                    text: None,
                },
                text(" 🙂"),
                Segment::Face { id: 500 },
            ],
            action: false,
        };
        assert_eq!(
            outgoing_elements(&rich),
            vec![
                WireElement::Text("@Carol see http://x.example/ ".into()),
                WireElement::Face(14),
                WireElement::Text("[表情500]".into()),
            ]
        );
    }

    #[test]
    fn splitting_keeps_elements_whole_and_cuts_long_text() {
        let elements = vec![
            WireElement::Text("a".repeat(15)),
            WireElement::Face(14),
            WireElement::Text("b".repeat(45)),
        ];
        let pieces = split_elements(elements, 20);
        assert_eq!(
            pieces,
            vec![
                vec![WireElement::Text("a".repeat(15))],
                vec![WireElement::Face(14)],
                vec![WireElement::Text("b".repeat(20))],
                vec![WireElement::Text("b".repeat(20))],
                vec![WireElement::Text("b".repeat(5))],
            ]
        );
        assert_eq!(
            split_elements(vec![WireElement::Text("short".into())], 20).len(),
            1
        );
        assert!(split_elements(Vec::new(), 20).is_empty());
    }

    fn arb_segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            "[^\\p{C}\\u{1F300}-\\u{1FAFF}\\u{2600}-\\u{27BF}]{1,20}"
                .prop_map(|t| Segment::Text { text: t }),
            (0u16..=MAX_FACE_ID).prop_map(|id| Segment::Face { id }),
        ]
    }

    fn normalise(segments: Vec<Segment>) -> RichText {
        let mut rich = RichText::default();
        for s in segments {
            match s {
                Segment::Text { text } => rich.push_text(&text),
                other => rich.segments.push(other),
            }
        }
        rich
    }

    proptest! {
        #[test]
        fn decode_never_panics(value in any::<String>(), n in any::<i64>()) {
            let elements = vec![json!(value), json!(["face", n]), json!([n]), json!(["font"]), json!([]), json!({"a": n})];
            let _ = received_text(&elements);
            let _ = decode_send_content(&value);
        }

        #[test]
        fn send_content_round_trips(segments in prop::collection::vec(arb_segment(), 0..8)) {
            let rich = emoji_to_faces(normalise(segments));
            let inner = encode_send_content(&outgoing_elements(&rich), &SendFont::default());
            prop_assert_eq!(decode_send_content(&inner), Some(rich));
        }

        #[test]
        fn split_pieces_fit_the_budget(segments in prop::collection::vec(arb_segment(), 0..8), max in 0usize..64) {
            let rich = normalise(segments);
            for piece in split_elements(outgoing_elements(&rich), max) {
                prop_assert!(!piece.is_empty());
                prop_assert!(piece.iter().map(cost).sum::<usize>() <= max.max(FACE_COST_BYTES));
            }
        }
    }
}
