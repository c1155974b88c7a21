//! HTTP for the WebQQ client: one reqwest client shared by every login of a
//! connector (its connection pool, TLS and resolver state cost ~300 KiB, and
//! was once built per login: README, Performance), each login with its own
//! flat cookie jar sent and filled per request; every host reached through
//! one base URL (keep the path of each real URL, drop the host), the browser
//! headers webqq.md §1.3 asks for, bounded reply bodies and error texts
//! without URLs (query strings carry the encrypted password and the session
//! tokens).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT_CHARSET, COOKIE, ORIGIN, REFERER, SET_COOKIE, USER_AGENT,
};
use reqwest::redirect::Policy;
use reqwest::{RequestBuilder, StatusCode};

use super::cookies::CookieJar;
use crate::qq::QqError;

/// A desktop browser of late 2013 (Chrome 31 on Windows 7).
pub const DESKTOP_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/31.0.1650.63 Safari/537.36";
/// Largest JSON or callback body read.
pub const MAX_TEXT_BODY: usize = 8 * 1024 * 1024;
/// Largest captcha image read.
pub const MAX_IMAGE_BODY: usize = 2 * 1024 * 1024;
/// Time allowed for an ordinary call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The headers of one call besides the fixed ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers {
    pub referer: Option<&'static str>,
    pub origin: Option<&'static str>,
}

/// A reply: the status and the (bounded) body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Fails on HTTP error statuses: 5xx as unreachable, 4xx as protocol.
    pub fn ensure_ok(self) -> Result<Self, QqError> {
        if self.status.is_server_error() {
            return Err(QqError::Unreachable(format!(
                "HTTP {}",
                self.status.as_u16()
            )));
        }
        if self.status.is_client_error() {
            return Err(QqError::Protocol(format!("HTTP {}", self.status.as_u16())));
        }
        Ok(self)
    }
}

/// The HTTP client every WebQQ login of a connector shares. It keeps no
/// cookies itself: each [`Transport`] sends and fills its own jar.
pub fn shared_client() -> Result<reqwest::Client, QqError> {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(DESKTOP_USER_AGENT));
    headers.insert(ACCEPT_CHARSET, HeaderValue::from_static("UTF-8,*;q=0.5"));
    reqwest::Client::builder()
        .default_headers(headers)
        // check_sig answers 302 to web2.qq.com; only its cookies matter.
        .redirect(Policy::none())
        // The server is the simulator or a tunnel the user set up;
        // environment proxies would only get in between.
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| QqError::Unsupported(e.without_url().to_string()))
}

/// The HTTP side of one login: the shared client, base URL and the login's
/// own cookie jar.
#[derive(Debug)]
pub struct Transport {
    client: reqwest::Client,
    /// Parsed once: parsing a URL string per request (host, IDNA) was
    /// ~4 % of the bridge's work on a message sent to QQ.
    base: reqwest::Url,
    /// `base`'s path without the trailing `/`, the prefix of every path.
    base_path: String,
    jar: Arc<CookieJar>,
}

impl Transport {
    /// A login's transport for `base_url` (`http://host:port` or with a
    /// path prefix) over `client` (see [`shared_client`]).
    pub fn new(base_url: &str, client: reqwest::Client) -> Result<Self, QqError> {
        let base = reqwest::Url::parse(base_url.trim())
            .ok()
            .filter(|url| url.has_host() && url.query().is_none() && url.fragment().is_none())
            .ok_or_else(|| QqError::Unsupported("the WebQQ base URL is not a URL".to_owned()))?;
        let base_path = base.path().trim_end_matches('/').to_owned();
        Ok(Transport {
            client,
            base,
            base_path,
            jar: Arc::new(CookieJar::new()),
        })
    }

    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }

    /// The full URL of a path (`/channel/poll2`) or path with query.
    fn url(&self, path: &str) -> reqwest::Url {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let slash = if path.starts_with('/') { "" } else { "/" };
        let mut url = self.base.clone();
        url.set_path(&format!("{}{slash}{path}", self.base_path));
        url.set_query(query);
        url
    }

    /// GET `path` with query parameters.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        headers: Headers,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Reply, QqError> {
        let request = self.client.get(self.url(path)).query(query);
        self.send(path, request, headers, timeout, max_body).await
    }

    /// POST `path` with an `application/x-www-form-urlencoded` body.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: Headers,
        timeout: Duration,
    ) -> Result<Reply, QqError> {
        let request = self.client.post(self.url(path)).form(form);
        self.send(path, request, headers, timeout, MAX_TEXT_BODY)
            .await
    }

    async fn send(
        &self,
        path: &str,
        mut request: RequestBuilder,
        headers: Headers,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Reply, QqError> {
        if let Some(referer) = headers.referer {
            request = request.header(REFERER, referer);
        }
        if let Some(origin) = headers.origin {
            request = request.header(ORIGIN, origin);
        }
        // The jar is flat (webqq.md §1.3: every cookie goes to every host).
        if let Some(cookies) = self.jar.header_text() {
            request = request.header(COOKIE, cookies);
        }
        let endpoint = path.split('?').next().unwrap_or("");
        let mut response = request.timeout(timeout).send().await.map_err(describe)?;
        for set_cookie in response.headers().get_all(SET_COOKIE) {
            if let Ok(text) = set_cookie.to_str() {
                self.jar.apply_set_cookie(text);
            }
        }
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > max_body {
                tracing::warn!(endpoint, "WebQQ reply over the size limit");
                return Err(QqError::Protocol(format!(
                    "reply of {endpoint} larger than {max_body} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::trace!(
            endpoint,
            status = status.as_u16(),
            bytes = body.len(),
            "WebQQ reply"
        );
        Ok(Reply { status, body })
    }
}

/// A transport error as text without the URL (which may carry secrets).
fn describe(error: reqwest::Error) -> QqError {
    let what = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        error.without_url().to_string()
    };
    QqError::Unreachable(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(base: &str) -> Transport {
        Transport::new(base, reqwest::Client::new()).expect("a valid base URL")
    }

    #[test]
    fn paths_are_appended_to_the_base_path_with_their_query() {
        let plain = transport("http://127.0.0.1:8000");
        assert_eq!(
            plain.url("/channel/poll2").as_str(),
            "http://127.0.0.1:8000/channel/poll2"
        );
        let prefixed = transport(" http://qq.example:81/webqq/ ");
        assert_eq!(
            prefixed.url("/api/get_friend_info2?tuin=7&t=1").as_str(),
            "http://qq.example:81/webqq/api/get_friend_info2?tuin=7&t=1"
        );
        assert_eq!(
            prefixed.url("check").as_str(),
            "http://qq.example:81/webqq/check"
        );
    }

    #[test]
    fn a_base_that_is_not_an_absolute_url_is_refused() {
        for bad in [
            "",
            "qq.example:81",
            "/webqq",
            "http://qq.example/?a=1",
            "http://qq.example/#top",
        ] {
            assert!(
                Transport::new(bad, reqwest::Client::new()).is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
