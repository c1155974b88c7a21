//! Tests for IRC text handling.

use super::*;
use crate::core::model::Segment;
use proptest::prelude::*;

#[test]
fn strips_every_formatting_code() {
    assert_eq!(
        strip_irc_formatting("\x02粗体\x02 \x1d斜\x1d\x1f下\x1f\x1e删\x1e\x11等宽\x11\x16反\x0f"),
        "粗体 斜下删等宽反"
    );
    assert_eq!(
        strip_irc_formatting("\x0304红\x03 \x034,12蓝底\x03 \x03999"),
        "红 蓝底 9"
    );
    assert_eq!(strip_irc_formatting("\x034,hello"), ",hello");
    assert_eq!(strip_irc_formatting("\x03,12x"), ",12x");
    assert_eq!(
        strip_irc_formatting("\x04FF0000red\x04 \x04ff0000,00FF00both"),
        "red both"
    );
    assert_eq!(strip_irc_formatting("1\x0312,3456"), "156");
    assert_eq!(strip_irc_formatting("纯文本"), "纯文本");
}

#[test]
fn parses_and_renders_actions() {
    assert_eq!(parse_irc_action("\x01ACTION 挥手\x01"), (true, "挥手"));
    assert_eq!(parse_irc_action("\x01ACTION waves"), (true, "waves"));
    assert_eq!(parse_irc_action("\x01ACTION\x01"), (true, ""));
    assert_eq!(
        parse_irc_action("\x01VERSION\x01"),
        (false, "\x01VERSION\x01")
    );
    assert_eq!(parse_irc_action("ACTION hi"), (false, "ACTION hi"));
    assert_eq!(render_irc_action("挥手"), "\x01ACTION 挥手\x01");
    assert_eq!(parse_ctcp("\x01VERSION\x01"), Some(("VERSION", "")));
    assert_eq!(parse_ctcp("\x01\x01"), None);
}

#[test]
fn parse_irc_builds_rich_text() {
    let rich = parse_irc("\x01ACTION \x02笑\x02[微笑]\x01");
    assert!(rich.action);
    assert_eq!(
        rich.segments,
        vec![
            Segment::Text { text: "笑".into() },
            Segment::Face { id: 14 }
        ]
    );
}

#[test]
fn budget_matches_the_512_byte_line() {
    let prefix = "WeiCheng!~qq@qq.example.org";
    let target = "#qq-群";
    let budget = irc_payload_budget(prefix.len(), target.len());
    let text = "x".repeat(budget);
    let line = format!(":{prefix} PRIVMSG {target} :{text}\r\n");
    assert_eq!(line.len(), 512);
    assert_eq!(irc_payload_budget(600, 10), 0);
}

#[test]
fn splits_lines_and_drops_injection_bytes() {
    assert_eq!(
        split_irc_lines("第一行\r\n第二行\r第三\0行\n\nQUIT", 100),
        vec!["第一行", "第二行", "第三行", "QUIT"]
    );
    assert!(split_irc_lines("\r\n\0", 100).is_empty());
    assert!(split_irc_lines("", 100).is_empty());
}

#[test]
fn long_lines_are_cut_within_the_budget() {
    let lines = split_irc_lines("你好世界", 7);
    assert_eq!(lines, vec!["你好", "世界"]);
    let lines = split_irc_lines("hello brave new world", 16);
    assert_eq!(lines, vec!["hello brave new ", "world"]);
}

#[test]
fn rendered_actions_fit_with_their_wrapper() {
    let rich = RichText {
        segments: vec![Segment::Text {
            text: "跳舞".repeat(10) + "\x01VERSION\x01",
        }],
        action: true,
    };
    let lines = render_irc_lines(&rich, FaceStyle::Emoji, 30);
    assert!(lines.len() > 1);
    for line in &lines {
        assert!(line.len() <= 30, "{line:?}");
        assert!(parse_irc_action(line).0);
        assert!(!parse_irc_action(line).1.contains('\x01'));
    }
}

/// What one input line should become: its text without NUL.
fn cleaned(line: &str) -> String {
    line.chars().filter(|c| *c != '\0').collect()
}

proptest! {
    #[test]
    fn split_lines_fit_and_carry_no_line_breaks(
        text in "(\\PC|\r|\n|\0| ){0,300}",
        max in 4usize..120,
    ) {
        for line in split_irc_lines(&text, max) {
            prop_assert!(!line.is_empty());
            prop_assert!(line.len() <= max, "{} > {}", line.len(), max);
            prop_assert!(!line.contains(['\r', '\n', '\0']));
        }
    }

    #[test]
    fn split_lines_reassemble_each_input_line(
        text in "(\\PC|\r|\n|\0| ){0,300}",
        max in 0usize..120,
    ) {
        let mut expected = Vec::new();
        let mut all_pieces = Vec::new();
        for line in text.split(['\r', '\n']) {
            let pieces = split_irc_lines(line, max);
            prop_assert_eq!(pieces.concat(), cleaned(line));
            for piece in &pieces {
                prop_assert!(piece.len() <= max.max(4));
            }
            expected.extend(pieces);
        }
        all_pieces.extend(split_irc_lines(&text, max));
        prop_assert_eq!(all_pieces, expected);
    }

    #[test]
    fn stripping_formatting_is_idempotent(text in "(\\PC|[\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f]|[0-9a-f,]){0,100}") {
        let once = strip_irc_formatting(&text);
        prop_assert_eq!(strip_irc_formatting(&once), once.clone());
        prop_assert!(!once.contains(['\x02', '\x03', '\x04', '\x0f', '\x11', '\x16', '\x1d', '\x1e', '\x1f']));
    }
}
