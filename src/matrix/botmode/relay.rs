//! Pure parts of bot mode: how a QQ message looks when the one bot account
//! posts it for someone else (relay-bot style: `<nick> text` in the plain
//! body, the name in bold in the HTML body), and the transaction id that
//! makes a send idempotent across restarts.

use serde_json::{json, Value};

use crate::core::model::{RichText, Segment};
use crate::core::text::escape_html;

use super::super::content;

/// Longest sender name shown (QQ nicks and group cards are short; a
/// stranger's name comes from the network and is cut).
const MAX_NAME_CHARS: usize = 64;

/// A QQ message as `m.room.message` content sent by the bot on behalf of
/// `nick`: `<nick> text` (or `* nick text` for an action) in `body`, and
/// `<b>nick</b>: text` in `formatted_body`.
pub fn relayed_message(nick: &str, rich: &RichText) -> Value {
    let nick: String = nick
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    // Mentions stay text: there are no ghosts to link to.
    let no_links = |_: &Segment| None;
    let rendered = content::from_rich(rich, &no_links);
    let body = rendered.get("body").and_then(Value::as_str).unwrap_or("");
    let html = match rendered.get("formatted_body").and_then(Value::as_str) {
        Some(html) => html.to_owned(),
        None => escape_html(body).replace('\n', "<br>"),
    };
    let name_html = escape_html(&nick);
    let (plain, formatted) = if rich.action {
        (
            format!("* {nick} {body}"),
            format!("* <b>{name_html}</b> {html}"),
        )
    } else {
        (
            format!("<{nick}> {body}"),
            format!("<b>{name_html}</b>: {html}"),
        )
    };
    json!({
        "msgtype": "m.text",
        "body": plain,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
    })
}

/// The Matrix transaction id of the send of bridge message `message_id`:
/// the same on every attempt, so a send retried after a crash (sent, but
/// not yet marked done) is recognised by the homeserver and not posted
/// twice. Only characters safe in a URL path segment are kept.
pub fn transaction_id(message_id: &str) -> String {
    let safe: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    // The length keeps ids that differ only in replaced characters apart.
    format!("qqbridge.{}.{safe}", message_id.len())
}

/// The room topic of a buddy portal that shows the buddy's QQ status.
pub fn presence_topic(name: &str, status: &str) -> String {
    format!("QQ chat with {name} — {status}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_text_names_the_sender_both_ways() {
        let c = relayed_message("微程", &RichText::plain("你好 <3"));
        assert_eq!(c["msgtype"], "m.text");
        assert_eq!(c["body"], "<微程> 你好 <3");
        assert_eq!(c["format"], "org.matrix.custom.html");
        assert_eq!(c["formatted_body"], "<b>微程</b>: 你好 &lt;3");
    }

    #[test]
    fn names_are_escaped_and_cleaned() {
        let c = relayed_message("<script>\n", &RichText::plain("hi"));
        assert_eq!(c["body"], "<<script>> hi");
        assert_eq!(c["formatted_body"], "<b>&lt;script&gt;</b>: hi");
    }

    #[test]
    fn actions_read_as_actions() {
        let mut rich = RichText::plain("waves");
        rich.action = true;
        let c = relayed_message("bob", &rich);
        assert_eq!(c["msgtype"], "m.text");
        assert_eq!(c["body"], "* bob waves");
        assert_eq!(c["formatted_body"], "* <b>bob</b> waves");
    }

    #[test]
    fn transaction_ids_are_stable_distinct_and_safe() {
        let a = transaction_id("0123abcd");
        assert_eq!(a, transaction_id("0123abcd"));
        assert_ne!(a, transaction_id("0123abce"));
        assert_ne!(transaction_id("a/b"), transaction_id("a/b/"));
        let odd = transaction_id("a/b c?d#é");
        assert!(
            odd.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "{odd}"
        );
    }
}
