//! One WebQQ request as the handlers read it: query and form parameters
//! (a form field wins over a query parameter of the same name), cookies,
//! the `r=<JSON>` payload, and the headers that matter (Referer, Host).
//!
//! Everything is bounded: the HTTP layer caps the body, at most
//! [`MAX_PARAMS`] parameters and [`MAX_COOKIES`] cookies are read, and `r`
//! is parsed with serde_json's default nesting limit.

use std::collections::HashMap;
use std::net::IpAddr;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::qq::sim::http::HttpRequest;
use crate::qq::webqq::json::value_to_u64;

/// Parameters read per request; later ones are ignored.
pub const MAX_PARAMS: usize = 64;
/// Cookies read per request; later ones are ignored.
pub const MAX_COOKIES: usize = 64;

/// A parsed request.
#[derive(Debug, Clone)]
pub struct WebRequest {
    pub path: String,
    pub ip: IpAddr,
    params: HashMap<String, String>,
    cookies: HashMap<String, String>,
    referer: Option<String>,
    host: Option<String>,
}

impl WebRequest {
    pub fn parse(request: &HttpRequest) -> WebRequest {
        let mut params = HashMap::new();
        if let Some((_, query)) = request.target.as_deref().and_then(|t| t.split_once('?')) {
            read_form(query, &mut params);
        }
        let form = request
            .header("content-type")
            .is_none_or(|t| t.contains("x-www-form-urlencoded"));
        if form && !request.body.is_empty() {
            read_form(&String::from_utf8_lossy(&request.body), &mut params);
        }
        let mut cookies = HashMap::new();
        for header in request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        {
            for pair in header.1.split(';') {
                if cookies.len() >= MAX_COOKIES {
                    break;
                }
                if let Some((name, value)) = pair.trim().split_once('=') {
                    cookies.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        WebRequest {
            path: request.path().to_owned(),
            ip: request.peer.ip(),
            params,
            cookies,
            referer: request.header("referer").map(str::to_owned),
            host: request.header("host").map(str::to_owned),
        }
    }

    /// A query or form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A non-empty cookie.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The `Host` header, if any.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether the Host is a `qq.com` name, i.e. the client maps Tencent's
    /// hostnames to the simulator and cookies may carry `DOMAIN=qq.com`.
    pub fn on_qq_com(&self) -> bool {
        self.host
            .as_deref()
            .map(|h| h.split(':').next().unwrap_or(h))
            .is_some_and(is_qq_com)
    }

    /// Whether the Referer is an http(s) URL on `qq.com` or a subdomain.
    pub fn referer_on_qq_com(&self) -> bool {
        let Some(referer) = self.referer.as_deref() else {
            return false;
        };
        let Some(rest) = referer
            .strip_prefix("http://")
            .or_else(|| referer.strip_prefix("https://"))
        else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let host = authority.split(':').next().unwrap_or(authority);
        is_qq_com(host)
    }

    /// The `r` payload as a JSON object.
    pub fn r(&self) -> Option<Map<String, Value>> {
        match serde_json::from_str(self.param("r")?).ok()? {
            Value::Object(object) => Some(object),
            _ => None,
        }
    }

    /// A field of `r`, else the parameter of the same name: `d.web2`
    /// POSTs repeat `clientid` and `psessionid` next to `r`, GETs carry
    /// them in the query.
    pub fn field(&self, r: Option<&Map<String, Value>>, name: &str) -> Option<String> {
        let from_r = r.and_then(|r| r.get(name)).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        from_r.or_else(|| self.param(name).map(str::to_owned))
    }

    /// A numeric field of `r` (number or numeric string), else the
    /// parameter.
    pub fn number(&self, r: Option<&Map<String, Value>>, name: &str) -> Option<u64> {
        match r.and_then(|r| r.get(name)) {
            Some(value) => value_to_u64(value),
            None => self.param(name)?.trim().parse().ok(),
        }
    }
}

fn is_qq_com(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "qq.com" || host.ends_with(".qq.com")
}

/// Reads `a=1&b=2` (`+` is a space, `%XX` a byte of UTF-8).
fn read_form(text: &str, out: &mut HashMap<String, String>) {
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_PARAMS {
            return;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(name), decode(value));
    }
}

fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, headers: &[(&str, &str)], body: &str) -> WebRequest {
        WebRequest::parse(&HttpRequest {
            method: "POST".into(),
            target: Some(target.into()),
            version: "HTTP/1.1".into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
            peer: "127.0.0.1:1".parse().unwrap(),
        })
    }

    #[test]
    fn parameters_cookies_and_r() {
        let req = request(
            "/channel/poll2?clientid=1&x=%E5%AE%8B",
            &[
                ("Cookie", "ptwebqq=abc; uin=o0000010001"),
                ("Referer", "http://d.web2.qq.com/proxy.html?v=1"),
                ("Host", "d.web2.qq.com:80"),
            ],
            "r=%7B%22clientid%22%3A31415926%2C%22psessionid%22%3A%22p%22%7D&clientid=2&y=a+b",
        );
        assert_eq!(req.path, "/channel/poll2");
        assert_eq!(req.param("clientid"), Some("2"));
        assert_eq!(req.param("x"), Some("宋"));
        assert_eq!(req.param("y"), Some("a b"));
        assert_eq!(req.cookie("ptwebqq"), Some("abc"));
        let r = req.r();
        assert_eq!(
            req.field(r.as_ref(), "clientid").as_deref(),
            Some("31415926")
        );
        assert_eq!(req.field(r.as_ref(), "psessionid").as_deref(), Some("p"));
        assert_eq!(req.number(r.as_ref(), "clientid"), Some(31_415_926));
        assert!(req.referer_on_qq_com() && req.on_qq_com());
    }

    #[test]
    fn referers_off_qq_com_are_refused() {
        for bad in [
            "http://evil.com/?qq.com",
            "http://qq.com.evil.com/",
            "ftp://d.web2.qq.com/",
            "",
        ] {
            let req = request("/api/x", &[("Referer", bad)], "");
            assert!(!req.referer_on_qq_com(), "{bad}");
        }
        assert!(!request("/api/x", &[], "").referer_on_qq_com());
        let req = request("/api/x", &[("Referer", "https://QQ.com:443")], "");
        assert!(req.referer_on_qq_com());
    }
}
