//! Tests for Matrix HTML parsing, including round trips with
//! [`render_matrix`](crate::core::text::render_matrix).

use super::*;
use crate::core::text::{render_matrix, render_plain, FaceStyle};
use proptest::prelude::*;

/// Resolves `@_qq_<uin>:localhost` puppets to QQ users and any other user
/// to a Matrix-only name.
fn resolve(user_id: &str) -> Option<(Option<Uin>, String)> {
    if let Some(uin) = user_id
        .strip_prefix("@_qq_")
        .and_then(|rest| rest.strip_suffix(":localhost"))
    {
        let uin = uin.parse().ok()?;
        return Some((Some(Uin(uin)), format!("qq{uin}")));
    }
    (user_id == "@alice:example.org").then(|| (None, "Alice".to_owned()))
}

fn parse(html: &str) -> RichText {
    parse_matrix_html(html, &resolve)
}

fn plain(html: &str) -> String {
    render_plain(&parse(html), FaceStyle::Name)
}

fn text(s: &str) -> Segment {
    Segment::Text { text: s.to_owned() }
}

#[test]
fn strips_tags_and_decodes_entities() {
    assert_eq!(
        plain("<b>粗</b><i>斜</i> &lt;tag&gt; &amp; &quot;引号&quot;"),
        "粗斜 <tag> & \"引号\""
    );
    assert_eq!(
        plain("<font color=red>红</font><span data-mx-spoiler>秘密</span>"),
        "红秘密"
    );
}

#[test]
fn drops_the_reply_fallback() {
    let html = "<mx-reply><blockquote><a href=\"https://matrix.to/#/!room:x/$ev\">In reply to</a> \
                <a href=\"https://matrix.to/#/@alice:example.org\">@alice</a><br>原文</blockquote></mx-reply>回复内容";
    assert_eq!(plain(html), "回复内容");
}

#[test]
fn line_breaks_and_paragraphs() {
    assert_eq!(
        plain("第一行<br>第二行<br/><br />第四行"),
        "第一行\n第二行\n\n第四行"
    );
    assert_eq!(plain("<p>段落一</p>\n<p>段落二</p>\n"), "段落一\n\n段落二");
    assert_eq!(plain("a<br />\nb"), "a\nb");
    assert_eq!(plain("<div>a</div><div>b</div>"), "a\nb");
    assert_eq!(plain("one\ntwo"), "one two");
    assert_eq!(plain("<p>  indented source </p>"), "indented source");
    assert_eq!(plain("x<br>  kept"), "x\n  kept");
}

#[test]
fn block_quotes_get_prefixes() {
    assert_eq!(
        plain("<blockquote>引用<br>第二行</blockquote>回复"),
        "> 引用\n> 第二行\n回复"
    );
    assert_eq!(
        plain("<blockquote>\n<p>外</p>\n<blockquote><p>内</p></blockquote>\n</blockquote>\n<p>正文</p>"),
        "> 外\n\n> > 内\n\n正文"
    );
}

#[test]
fn lists_become_dashes_and_numbers() {
    assert_eq!(
        plain("<ul>\n<li>苹果</li>\n<li>香蕉</li>\n</ul>\n"),
        "- 苹果\n- 香蕉"
    );
    assert_eq!(
        plain("<p>清单</p><ol start=\"3\"><li>三</li><li>四</li></ol>完"),
        "清单\n\n3. 三\n4. 四\n完"
    );
    assert_eq!(
        plain("<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>"),
        "- a\n  - b\n- c"
    );
}

#[test]
fn preformatted_text_keeps_its_lines() {
    assert_eq!(
        plain("<pre><code>fn main() {\n    x();\n}\n</code></pre>"),
        "fn main() {\n    x();\n}"
    );
}

#[test]
fn links_keep_their_url() {
    assert_eq!(
        parse("看<a href=\"https://qq.com\">腾讯官网</a>和<a href=\"https://qq.com/\">qq.com</a>"),
        RichText {
            segments: vec![
                text("看"),
                Segment::Link {
                    url: "https://qq.com".into(),
                    text: Some("腾讯官网".into())
                },
                text("和"),
                Segment::Link {
                    url: "https://qq.com/".into(),
                    text: None
                },
            ],
            action: false
        }
    );
    assert_eq!(plain("<a href=\"javascript:alert(1)\">点我</a>"), "点我");
    assert_eq!(
        plain("<a href=\"https://x.org\">unterminated"),
        "unterminated (https://x.org)"
    );
}

#[test]
fn pills_become_mentions() {
    let html =
        "<a href=\"https://matrix.to/#/%40_qq_10002%3Alocalhost?via=localhost\">微程</a>: 你好 \
                <a href=\"https://matrix.to/#/@alice:example.org\">Alice (Matrix)</a> \
                <a href=\"matrix:u/_qq_10003:localhost?action=chat\">x</a> \
                <a href=\"https://matrix.to/#/@bob:example.org\">Bob</a>";
    assert_eq!(
        parse(html).segments,
        vec![
            Segment::Mention {
                uin: Some(Uin(10002)),
                name: "qq10002".into()
            },
            text(": 你好 "),
            Segment::Mention {
                uin: None,
                name: "Alice".into()
            },
            text(" "),
            Segment::Mention {
                uin: Some(Uin(10003)),
                name: "qq10003".into()
            },
            text(" Bob"),
        ]
    );
}

#[test]
fn extracts_user_ids_from_links() {
    assert_eq!(
        matrix_user_id_from_link("https://matrix.to/#/@a:b.c").as_deref(),
        Some("@a:b.c")
    );
    assert_eq!(
        matrix_user_id_from_link("HTTPS://MATRIX.TO/#/%40a%3Ab.c?via=b.c").as_deref(),
        Some("@a:b.c")
    );
    assert_eq!(
        matrix_user_id_from_link("matrix:u/a:b.c").as_deref(),
        Some("@a:b.c")
    );
    assert_eq!(
        matrix_user_id_from_link("https://matrix.to/#/#room:b.c"),
        None
    );
    assert_eq!(matrix_user_id_from_link("https://matrix.to/#/@"), None);
    assert_eq!(matrix_user_id_from_link("https://example.org/#/@a:b"), None);
}

#[test]
fn emoticons_and_images_become_their_alt_text() {
    assert_eq!(
        plain("好<img data-mx-emoticon src=\"mxc://x/y\" alt=\":猫猫:\" title=\":猫猫:\" height=32>的<img src=\"mxc://a/b\">"),
        "好:猫猫:的"
    );
}

#[test]
fn scripts_styles_and_comments_vanish() {
    assert_eq!(
        plain("a<script>alert('<b>')</script><style>p{}</style><!-- c -->b"),
        "ab"
    );
}

#[test]
fn malformed_html_degrades_to_text() {
    assert_eq!(plain("1 < 2 > 0"), "1 < 2 > 0");
    assert_eq!(plain("</p></li></blockquote>孤立结束标签"), "孤立结束标签");
    assert_eq!(plain("<b>未闭合"), "未闭合");
    assert_eq!(plain("text<b"), "text");
    assert_eq!(plain(""), "");
}

#[test]
fn hostile_nesting_stays_linear() {
    let html = "<blockquote><ul><li>".repeat(2000) + "深";
    let out = plain(&html);
    assert!(out.len() < 100, "{} bytes", out.len());
    assert!(out.ends_with('深'));
}

/// Text that renders and parses back unchanged: no leading or trailing
/// whitespace and no newlines (which HTML collapses or places by itself).
fn stable_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9<>&\"'微笑#;/:.]([a-zA-Z0-9<>&\"'微笑#;/:. ]{0,15}[a-zA-Z0-9<>&\"'微笑#;/:.])?"
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_input(html in "\\PC{0,200}") {
        let _ = parse(&html);
    }

    #[test]
    fn never_panics_on_tag_soup(
        html in "(<|>|</|/>|<a href=\"|<b>|</b>|<br>|<li>|<ol>|</ol>|<blockquote>|</blockquote>|<pre>|</pre>|<mx-reply>|</mx-reply>|<!--|-->|&|&#|;|\"|'|=|x|微|\n| )*"
    ) {
        let _ = parse(&html);
    }

    #[test]
    fn output_never_contains_tags(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("<b>".to_owned()), Just("</b>".to_owned()), Just("<br>".to_owned()),
                Just("<p>".to_owned()), Just("</p>".to_owned()), Just("<a href=\"https://x.y\">".to_owned()),
                Just("</a>".to_owned()), Just("<img alt=\"a\">".to_owned()), Just("<li>".to_owned()),
                Just("<mx-reply>".to_owned()), Just("</mx-reply>".to_owned()), Just("<script>".to_owned()),
                Just("<div class='x'>".to_owned()), Just(">".to_owned()),
                "[^&<]{0,8}",
            ],
            0..40,
        )
    ) {
        let html = parts.concat();
        // Every '<' in the input opens a tag, so none may reach the output.
        let out = render_plain(&parse(&html), FaceStyle::Name);
        prop_assert!(!out.contains('<'), "tag text in {:?} from {:?}", out, html);
    }

    #[test]
    fn render_matrix_escapes_and_parses_back(
        before in stable_text(),
        uin in 10000u64..9_999_999_999,
        after in stable_text(),
        link_text in stable_text(),
    ) {
        let msg = RichText {
            segments: vec![
                Segment::Text { text: before.clone() },
                Segment::Mention { uin: Some(Uin(uin)), name: format!("qq{uin}") },
                Segment::Text { text: format!(" {after}") },
                Segment::Link { url: "https://example.org/a?b=1&c=\"2\"".into(), text: Some(format!("«{link_text}»")) },
            ],
            action: false,
        };
        let (body, html) = render_matrix(&msg, &|segment| match segment {
            Segment::Mention { uin: Some(uin), name } => {
                Some((format!("https://matrix.to/#/@_qq_{uin}:localhost"), name.clone()))
            }
            _ => None,
        });
        let html = html.unwrap_or_default();
        prop_assert!(body.contains(&before));
        // Outside the anchor markup we wrote, no raw markup characters remain.
        let stripped = html
            .replace(&format!("<a href=\"https://matrix.to/#/@_qq_{uin}:localhost\">"), "")
            .replace("<a href=\"https://example.org/a?b=1&amp;c=&quot;2&quot;\">", "")
            .replace("</a>", "");
        prop_assert!(!stripped.contains(['<', '>', '"', '\'']), "{}", stripped);
        prop_assert!(stripped.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
            .replace("&quot;", "").replace("&#39;", "").find('&').is_none());
        let mut expected = msg.clone();
        expected.segments = vec![
            Segment::Text { text: before },
            Segment::Mention { uin: Some(Uin(uin)), name: format!("qq{uin}") },
            Segment::Text { text: format!(" {after}") },
            Segment::Link { url: "https://example.org/a?b=1&c=\"2\"".into(), text: Some(format!("«{link_text}»")) },
        ];
        prop_assert_eq!(parse(&html), expected);
    }
}
