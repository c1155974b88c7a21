//! Rendering [`RichText`] for Matrix: the plain `body` plus, when the message
//! has structure plain text cannot carry (mention pills, links with their own
//! text), an `org.matrix.custom.html` `formatted_body`.

use crate::core::model::{RichText, Segment};

use super::entities::escape_html;
use super::plain::{face_text, FaceStyle};
use super::url::{distinct_link_text, is_linkable_url};

/// Renders a message for Matrix as `(body, formatted_body)`.
///
/// `mention_link` turns a mention into a pill: `(href, display name)`, e.g.
/// `("https://matrix.to/#/@_qq_10002:localhost", "微程")`; `None` leaves the
/// mention as plain `@name`. Faces become emoji (or `[name]`). All text is
/// HTML-escaped and line breaks become `<br>`. `formatted_body` is `None`
/// when it would say nothing the body does not.
pub fn render_matrix(
    rich: &RichText,
    mention_link: &dyn Fn(&Segment) -> Option<(String, String)>,
) -> (String, Option<String>) {
    let mut body = String::new();
    let mut html = String::new();
    let mut needs_html = false;
    for segment in &rich.segments {
        match segment {
            Segment::Text { text } => {
                body.push_str(text);
                push_escaped_text(&mut html, text);
            }
            Segment::Face { id } => {
                let face = face_text(*id, FaceStyle::Emoji);
                body.push_str(&face);
                html.push_str(&escape_html(&face));
            }
            Segment::Mention { name, .. } => match mention_link(segment) {
                Some((href, display)) => {
                    body.push_str(&display);
                    push_anchor(&mut html, &href, &display);
                    needs_html = true;
                }
                None => {
                    let plain = if name.starts_with('@') {
                        name.clone()
                    } else {
                        format!("@{name}")
                    };
                    body.push_str(&plain);
                    push_escaped_text(&mut html, &plain);
                }
            },
            Segment::Link { url, text } => {
                let text = distinct_link_text(text.as_deref(), url);
                match text {
                    Some(text) => {
                        body.push_str(&format!("{text} ({url})"));
                        if is_linkable_url(url) {
                            push_anchor(&mut html, url, text);
                            needs_html = true;
                        } else {
                            push_escaped_text(&mut html, &format!("{text} ({url})"));
                        }
                    }
                    // Clients linkify bare URLs themselves.
                    None => {
                        body.push_str(url);
                        push_escaped_text(&mut html, url);
                    }
                }
            }
        }
    }
    (body, needs_html.then_some(html))
}

/// Escaped text with `\n` (and `\r\n`) as `<br>`.
fn push_escaped_text(html: &mut String, text: &str) {
    let mut lines = text.split('\n');
    if let Some(first) = lines.next() {
        html.push_str(&escape_html(first.strip_suffix('\r').unwrap_or(first)));
    }
    for line in lines {
        html.push_str("<br>");
        html.push_str(&escape_html(line.strip_suffix('\r').unwrap_or(line)));
    }
}

fn push_anchor(html: &mut String, href: &str, text: &str) {
    html.push_str("<a href=\"");
    html.push_str(&escape_html(href));
    html.push_str("\">");
    push_escaped_text(html, text);
    html.push_str("</a>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Uin;

    fn pill(segment: &Segment) -> Option<(String, String)> {
        match segment {
            Segment::Mention {
                uin: Some(uin),
                name,
            } => Some((
                format!("https://matrix.to/#/@_qq_{uin}:localhost"),
                name.clone(),
            )),
            _ => None,
        }
    }

    fn text(s: &str) -> Segment {
        Segment::Text { text: s.to_owned() }
    }

    #[test]
    fn plain_messages_have_no_formatted_body() {
        let msg = RichText {
            segments: vec![
                text("你好"),
                Segment::Face { id: 14 },
                text("\n<b>不是粗体</b>"),
            ],
            action: false,
        };
        assert_eq!(
            render_matrix(&msg, &pill),
            ("你好🙂\n<b>不是粗体</b>".to_owned(), None)
        );
    }

    #[test]
    fn mentions_become_pills_and_text_is_escaped() {
        let msg = RichText {
            segments: vec![
                Segment::Mention {
                    uin: Some(Uin(10002)),
                    name: "微程<script>".into(),
                },
                text(": 看 <img src=x onerror=alert(1)> & \"引号\"\n第二行"),
                Segment::Mention {
                    uin: None,
                    name: "路人".into(),
                },
            ],
            action: false,
        };
        let (body, html) = render_matrix(&msg, &pill);
        assert_eq!(
            body,
            "微程<script>: 看 <img src=x onerror=alert(1)> & \"引号\"\n第二行@路人"
        );
        assert_eq!(
            html.as_deref(),
            Some(
                "<a href=\"https://matrix.to/#/@_qq_10002:localhost\">微程&lt;script&gt;</a>: 看 \
                 &lt;img src=x onerror=alert(1)&gt; &amp; &quot;引号&quot;<br>第二行@路人"
            )
        );
    }

    #[test]
    fn links_with_their_own_text_become_anchors() {
        let msg = RichText {
            segments: vec![
                Segment::Link {
                    url: "https://qq.com/?a=1&b=\"2\"".into(),
                    text: Some("腾讯".into()),
                },
                text(" "),
                Segment::Link {
                    url: "http://x.org".into(),
                    text: None,
                },
                text(" "),
                Segment::Link {
                    url: "javascript:alert(1)".into(),
                    text: Some("点我".into()),
                },
            ],
            action: false,
        };
        let (body, html) = render_matrix(&msg, &pill);
        assert_eq!(
            body,
            "腾讯 (https://qq.com/?a=1&b=\"2\") http://x.org 点我 (javascript:alert(1))"
        );
        assert_eq!(
            html.as_deref(),
            Some(
                "<a href=\"https://qq.com/?a=1&amp;b=&quot;2&quot;\">腾讯</a> http://x.org \
                 点我 (javascript:alert(1))"
            )
        );
    }
}
