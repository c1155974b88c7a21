//! Message content both ways, always through the core's text path:
//! QQ rich text to `m.text` / `m.emote` with an HTML `formatted_body`
//! (escaped by [`render_matrix`]; faces as emoji, mentions as pills), and
//! Matrix `m.room.message` content (ruma's types) to rich text: HTML
//! through [`parse_matrix_html`], plain bodies through [`parse_plain`],
//! emotes as actions, media as a link, replies with a short quote and
//! edits marked with `*`.

use ruma::events::room::message::{
    FormattedBody, MessageFormat, MessageType, Relation, RoomMessageEventContent,
};
use ruma::events::room::MediaSource;
use serde_json::{json, Value};

use crate::core::model::{RichText, Segment};
use crate::core::text::{parse_matrix_html, parse_plain, render_matrix, ResolveUser};

/// Longest quote of a replied-to message.
pub const QUOTE_CHARS: usize = 40;

/// An `m.notice` with a plain body.
pub fn notice(text: &str) -> Value {
    json!({ "msgtype": "m.notice", "body": text })
}

/// An `m.image` (the WebQQ captcha).
pub fn image(body: &str, mxc: &str, mimetype: &str, size: usize) -> Value {
    json!({
        "msgtype": "m.image",
        "body": body,
        "url": mxc,
        "info": { "mimetype": mimetype, "size": size },
    })
}

/// QQ rich text as message content; `mention_link` makes mention pills.
pub fn from_rich(
    rich: &RichText,
    mention_link: &dyn Fn(&Segment) -> Option<(String, String)>,
) -> Value {
    let (body, html) = render_matrix(rich, mention_link);
    let msgtype = if rich.action { "m.emote" } else { "m.text" };
    let mut content = json!({ "msgtype": msgtype, "body": body });
    if let (Some(html), Some(object)) = (html, content.as_object_mut()) {
        object.insert("format".into(), json!("org.matrix.custom.html"));
        object.insert("formatted_body".into(), json!(html));
    }
    content
}

/// A Matrix message as the bridge understands it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub body: Body,
    /// The event this one replies to.
    pub reply_to: Option<String>,
    /// An edit of an earlier message.
    pub edit: bool,
    /// The plain body as typed (commands are read from it).
    pub plain: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Text(RichText),
    /// A file: its mxc URI, file name and type.
    Media {
        mxc: String,
        name: String,
        mimetype: Option<String>,
    },
    /// Something the bridge does not carry (encrypted media, polls...).
    Unsupported(String),
}

/// Parses `m.room.message` content; `None` when it is not one.
pub fn parse(content: &Value, resolve_user: &ResolveUser) -> Option<Incoming> {
    let content: RoomMessageEventContent = serde_json::from_value(content.clone()).ok()?;
    let mut reply_to = None;
    let mut edit = false;
    let msgtype = match content.relates_to {
        Some(Relation::Replacement(replacement)) => {
            edit = true;
            replacement.new_content.msgtype
        }
        Some(Relation::Reply(reply)) => {
            reply_to = Some(reply.in_reply_to.event_id.to_string());
            content.msgtype
        }
        Some(Relation::Thread(thread)) => {
            if !thread.is_falling_back {
                reply_to = thread.in_reply_to.map(|r| r.event_id.to_string());
            }
            content.msgtype
        }
        _ => content.msgtype,
    };
    let (plain, body) = match msgtype {
        MessageType::Text(t) => {
            let body = text_body(
                &t.body,
                t.formatted.as_ref(),
                reply_to.is_some(),
                resolve_user,
            );
            (t.body, body)
        }
        MessageType::Notice(t) => {
            let body = text_body(
                &t.body,
                t.formatted.as_ref(),
                reply_to.is_some(),
                resolve_user,
            );
            (t.body, body)
        }
        MessageType::Emote(t) => {
            let body = match text_body(
                &t.body,
                t.formatted.as_ref(),
                reply_to.is_some(),
                resolve_user,
            ) {
                Body::Text(mut rich) => {
                    rich.action = true;
                    Body::Text(rich)
                }
                other => other,
            };
            (t.body, body)
        }
        MessageType::Image(m) => (
            m.body.clone(),
            media(
                m.source,
                m.filename,
                &m.body,
                m.info.and_then(|i| i.mimetype),
            ),
        ),
        MessageType::File(m) => (
            m.body.clone(),
            media(
                m.source,
                m.filename,
                &m.body,
                m.info.and_then(|i| i.mimetype),
            ),
        ),
        MessageType::Audio(m) => (
            m.body.clone(),
            media(
                m.source,
                m.filename,
                &m.body,
                m.info.and_then(|i| i.mimetype),
            ),
        ),
        MessageType::Video(m) => (
            m.body.clone(),
            media(
                m.source,
                m.filename,
                &m.body,
                m.info.and_then(|i| i.mimetype),
            ),
        ),
        MessageType::Location(l) => {
            let text = format!("{} ({})", l.body, l.geo_uri);
            (l.body, Body::Text(parse_plain(&text)))
        }
        other => {
            let body = other.body().to_owned();
            (
                body.clone(),
                Body::Unsupported(format!("{} message", other.msgtype())),
            )
        }
    };
    Some(Incoming {
        body,
        reply_to,
        edit,
        plain,
    })
}

fn text_body(
    body: &str,
    formatted: Option<&FormattedBody>,
    is_reply: bool,
    resolve_user: &ResolveUser,
) -> Body {
    match formatted {
        Some(f) if f.format == MessageFormat::Html => {
            Body::Text(parse_matrix_html(&f.body, resolve_user))
        }
        _ => {
            let body = if is_reply {
                strip_reply_fallback(body)
            } else {
                body
            };
            Body::Text(parse_plain(body))
        }
    }
}

/// A reply's plain body starts with `> ` lines quoting the original and a
/// blank line (the fallback older clients send): what follows is the reply.
pub fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    let mut rest = body;
    while rest.starts_with("> ") || rest.starts_with(">\n") {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    rest.strip_prefix('\n').unwrap_or(rest)
}

fn media(
    source: MediaSource,
    filename: Option<String>,
    body: &str,
    mimetype: Option<String>,
) -> Body {
    match source {
        MediaSource::Plain(mxc) => {
            let name = filename
                .filter(|f| !f.trim().is_empty())
                .unwrap_or_else(|| body.to_owned());
            Body::Media {
                mxc: mxc.to_string(),
                name: name.chars().take(200).collect(),
                mimetype,
            }
        }
        MediaSource::Encrypted(_) => Body::Unsupported("encrypted file".to_owned()),
    }
}

/// `> name: first words…` for the start of a reply sent to QQ.
pub fn quote(name: &str, text: &str) -> String {
    let one_line: String = strip_reply_fallback(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut short: String = one_line.chars().take(QUOTE_CHARS).collect();
    if one_line.chars().count() > QUOTE_CHARS {
        short.push('…');
    }
    format!("> {name}: {short}\n")
}

/// Puts text before a message (a quote, a relay prefix, an edit mark).
pub fn prepend(rich: &mut RichText, text: &str) {
    match rich.segments.first_mut() {
        Some(Segment::Text { text: first }) => first.insert_str(0, text),
        _ => rich.segments.insert(
            0,
            Segment::Text {
                text: text.to_owned(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Uin;

    fn resolver(id: &str) -> Option<(Option<Uin>, String)> {
        (id == "@_qq_10002:localhost").then(|| (Some(Uin(10002)), "微程".to_owned()))
    }

    #[test]
    fn text_html_and_emotes_parse() {
        let m = parse(&json!({"msgtype":"m.text","body":"hi"}), &resolver).unwrap();
        assert_eq!(m.body, Body::Text(RichText::plain("hi")));
        let m = parse(
            &json!({"msgtype":"m.text","body":"微程: hi","format":"org.matrix.custom.html",
                    "formatted_body":"<a href=\"https://matrix.to/#/@_qq_10002:localhost\">微程</a>: <b>hi</b>"}),
            &resolver,
        )
        .unwrap();
        let Body::Text(rich) = m.body else { panic!() };
        assert_eq!(
            rich.segments[0],
            Segment::Mention {
                uin: Some(Uin(10002)),
                name: "微程".into()
            }
        );
        let m = parse(&json!({"msgtype":"m.emote","body":"waves"}), &resolver).unwrap();
        let Body::Text(rich) = m.body else { panic!() };
        assert!(rich.action);
    }

    #[test]
    fn media_becomes_a_link_target_and_replies_are_found() {
        let m = parse(
            &json!({"msgtype":"m.image","body":"cat.png","url":"mxc://localhost/abc",
                    "m.relates_to":{"m.in_reply_to":{"event_id":"$x"}}}),
            &resolver,
        )
        .unwrap();
        assert_eq!(
            m.body,
            Body::Media {
                mxc: "mxc://localhost/abc".into(),
                name: "cat.png".into(),
                mimetype: None
            }
        );
        assert_eq!(m.reply_to.as_deref(), Some("$x"));
        assert!(parse(&json!({"membership":"join"}), &resolver).is_none());
    }

    #[test]
    fn reply_fallbacks_and_quotes() {
        assert_eq!(strip_reply_fallback("> <@a:b> old\n> more\n\nnew"), "new");
        assert_eq!(strip_reply_fallback("plain"), "plain");
        assert_eq!(quote("alice", "short"), "> alice: short\n");
        let long = "x".repeat(100);
        assert!(quote("a", &long).ends_with("…\n"));
    }

    #[test]
    fn rich_text_renders_escaped() {
        let c = from_rich(&RichText::plain("<b>"), &|_| None);
        assert_eq!(c["body"], "<b>");
        assert!(c.get("formatted_body").is_none());
    }
}
