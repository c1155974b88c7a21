//! WebQQ reply bodies and their encoding styles (webqq.md §1.4): the
//! `retcode` envelopes, `\uXXXX` (upper-case hex) for every non-ASCII
//! character in `d.web2` channel replies, raw UTF-8 on `s.web2`, and
//! `\u003c`/`\u003e`/`\u0026` for markup everywhere.

use std::fmt::Write;

use serde::Serialize;

use super::quirks::JsonUnicodeEscape;
use crate::qq::sim::http::HttpResponse;
use crate::qq::webqq::json::ok_body;

/// Which host a reply comes from, for its string style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `d.web2.qq.com/channel/*`.
    Channel,
    /// `s.web2.qq.com/api/*` and the heartbeat.
    Service,
}

/// Retcodes the simulator answers (webqq.md §8; [SIM] where noted).
pub mod retcode {
    /// The poll was held and nothing happened.
    pub const NOTHING_NEW: i64 = 102;
    /// Missing or invalid cookies, tokens, Referer; a stale session.
    pub const BAD_SESSION: i64 = 103;
    /// A missing cookie at login2; a bad `group_sig` [SIM].
    pub const MISSING_COOKIE: i64 = 108;
    /// A new ptwebqq in `p`.
    pub const NEW_PTWEBQQ: i64 = 116;
    /// The connection was lost (expired or kicked session), once.
    pub const CONNECTION_LOST: i64 = 121;
    /// Wrong friend-list hash (2014).
    pub const WRONG_HASH: i64 = 50;
    /// An unknown alias, status or malformed parameter [SIM].
    pub const UNKNOWN: i64 = 100_000;
    /// A bad group code (or gid).
    pub const BAD_GROUP: i64 = 100_001;
    /// A login2 that makes no sense (bad clientid or status).
    pub const LOGIN_REFUSED: i64 = 100_006;
}

/// `{"retcode":N,"errmsg":""}`, the usual error.
pub fn error(code: i64) -> String {
    format!("{{\"retcode\":{code},\"errmsg\":\"\"}}")
}

/// `{"retcode":N}`, the bare form (100000, 100001, 50).
pub fn bare(code: i64) -> String {
    format!("{{\"retcode\":{code}}}")
}

/// `{"retcode":121,"t":"0"}`.
pub fn connection_lost() -> String {
    format!("{{\"retcode\":{},\"t\":\"0\"}}", retcode::CONNECTION_LOST)
}

/// `{"retcode":116,"p":"<ptwebqq>"}`.
pub fn new_ptwebqq(ptwebqq: &str) -> String {
    let p = serde_json::Value::String(ptwebqq.to_owned());
    format!("{{\"retcode\":{},\"p\":{p}}}", retcode::NEW_PTWEBQQ)
}

/// `{"retcode":0,"result":"ok"}`.
pub fn ok_string() -> String {
    r#"{"retcode":0,"result":"ok"}"#.to_owned()
}

/// `{"retcode":0,"result":<result>}` with the result's keys in declaration
/// order.
pub fn ok<T: Serialize>(result: &T) -> String {
    // ok: the results are plain structs of numbers, strings and lists.
    ok_body(result).unwrap_or_else(|_| error(retcode::UNKNOWN))
}

/// `{"retcode":0,"result":[<events>]}` from already-encoded events.
pub fn events(encoded: &[String]) -> String {
    format!("{{\"retcode\":0,\"result\":[{}]}}", encoded.join(","))
}

/// Re-spells serde_json's output in the host's style. Non-ASCII and markup
/// characters only ever occur inside JSON strings, so replacing them
/// anywhere in the text is exact.
pub fn styled(json: &str, host: Host, policy: JsonUnicodeEscape) -> String {
    let escape_unicode = match policy {
        JsonUnicodeEscape::ChannelOnly => host == Host::Channel,
        JsonUnicodeEscape::Everywhere => true,
        JsonUnicodeEscape::Never => false,
    };
    let mut out = String::with_capacity(json.len() + json.len() / 4);
    let mut units = [0u16; 2];
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c if escape_unicode && !c.is_ascii() => {
                for unit in c.encode_utf16(&mut units) {
                    // ok: writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A 200 reply carrying a JSON body, on a kept-alive connection.
pub fn json_response(body: &str) -> HttpResponse {
    HttpResponse::simple(
        200,
        "OK",
        "text/plain; charset=utf-8",
        body.as_bytes(),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_style_escapes_non_ascii_in_upper_case() {
        let json = r#"{"name":"宋体","t":"a<b>&c","e":"😀"}"#;
        assert_eq!(
            styled(json, Host::Channel, JsonUnicodeEscape::ChannelOnly),
            r#"{"name":"\u5B8B\u4F53","t":"a\u003cb\u003e\u0026c","e":"\uD83D\uDE00"}"#
        );
        assert_eq!(
            styled(json, Host::Service, JsonUnicodeEscape::ChannelOnly),
            r#"{"name":"宋体","t":"a\u003cb\u003e\u0026c","e":"😀"}"#
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&styled(json, Host::Service, JsonUnicodeEscape::Everywhere))
                .unwrap();
        assert_eq!(parsed["name"], "宋体");
        assert_eq!(parsed["t"], "a<b>&c");
    }

    #[test]
    fn envelopes() {
        assert_eq!(error(103), r#"{"retcode":103,"errmsg":""}"#);
        assert_eq!(bare(50), r#"{"retcode":50}"#);
        assert_eq!(connection_lost(), r#"{"retcode":121,"t":"0"}"#);
        assert_eq!(new_ptwebqq("ab"), r#"{"retcode":116,"p":"ab"}"#);
        assert_eq!(
            events(&["{}".into(), "[]".into()]),
            r#"{"retcode":0,"result":[{},[]]}"#
        );
    }
}
