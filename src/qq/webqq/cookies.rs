//! The session's cookie jar; the transport sends it with every request and
//! fills it from every reply (the HTTP client is shared by all sessions).
//!
//! WebQQ spreads its cookies over `qq.com`, `ptlogin2.qq.com` and
//! `web2.qq.com` (webqq.md §3.1). This client reaches every host through
//! one base URL (the simulator serves them all on one port), so the jar is
//! flat: it keeps `name → value` whatever `Domain`/`Path` say and sends every
//! cookie with every request, which is what `Domain=qq.com` means for the
//! API hosts. The client also writes cookies itself: `chkuin` before
//! `check`, and `ptwebqq` when a poll hands out a new one (retcode 116).
//!
//! Values are session credentials: `Debug` lists names only.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// At most this many cookies are kept; further new names are ignored.
const MAX_COOKIES: usize = 64;
/// Longest `name=value` accepted (browsers use 4096).
const MAX_COOKIE_BYTES: usize = 4096;

#[derive(Default)]
pub struct CookieJar {
    cookies: Mutex<BTreeMap<String, String>>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .cookies
            .lock()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("CookieJar").field("names", &names).finish()
    }
}

impl CookieJar {
    pub fn new() -> Self {
        CookieJar::default()
    }

    /// The value of a cookie, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        self.cookies.lock().ok()?.get(name).cloned()
    }

    /// Sets a cookie as the client itself (`chkuin`, a rotated `ptwebqq`).
    pub fn set(&self, name: &str, value: &str) {
        if let Ok(mut cookies) = self.cookies.lock() {
            insert_bounded(&mut cookies, name, value);
        }
    }

    /// Forgets every cookie (before a fresh login).
    pub fn clear(&self) {
        if let Ok(mut cookies) = self.cookies.lock() {
            cookies.clear();
        }
    }

    /// Applies one `Set-Cookie` header value.
    pub fn apply_set_cookie(&self, header: &str) {
        let Some((name, value, expired)) = parse_set_cookie(header) else {
            return;
        };
        if let Ok(mut cookies) = self.cookies.lock() {
            if expired {
                cookies.remove(&name);
            } else {
                insert_bounded(&mut cookies, &name, &value);
            }
        }
    }

    /// The `Cookie` header text: `a=1; b=2`, or `None` when empty.
    pub fn header_text(&self) -> Option<String> {
        let cookies = self.cookies.lock().ok()?;
        if cookies.is_empty() {
            return None;
        }
        Some(
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

fn insert_bounded(cookies: &mut BTreeMap<String, String>, name: &str, value: &str) {
    if !valid_name(name) || name.len() + value.len() + 1 > MAX_COOKIE_BYTES {
        return;
    }
    if cookies.len() >= MAX_COOKIES && !cookies.contains_key(name) {
        return;
    }
    let value: String = value
        .chars()
        .filter(|c| !matches!(c, ';' | '\r' | '\n'))
        .collect();
    cookies.insert(name.to_owned(), value);
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b';' | b',' | b'"'))
}

/// `name=value; Attr=…` → (name, value, whether it deletes the cookie).
fn parse_set_cookie(header: &str) -> Option<(String, String, bool)> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    let value = value.trim().trim_matches('"');
    if !valid_name(name) {
        return None;
    }
    let mut expired = false;
    for attr in parts {
        let (key, val) = attr.split_once('=').unwrap_or((attr, ""));
        let key = key.trim().to_ascii_lowercase();
        if key == "max-age" {
            expired |= val.trim().parse::<i64>().is_ok_and(|age| age <= 0);
        } else if key == "expires" {
            expired |= expires_in_a_past_year(val);
        }
    }
    Some((name.to_owned(), value.to_owned(), expired))
}

/// Whether an `Expires` date lies in a year before the current one (the
/// usual way to delete a cookie is a 1970 date). Finer dates are not
/// needed: WebQQ cookies live for a session.
fn expires_in_a_past_year(date: &str) -> bool {
    let Some(year) = date
        .split(|c: char| !c.is_ascii_digit())
        .find(|t| t.len() == 4)
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return false;
    };
    let now_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Close enough for "is it an earlier year" (leap days do not matter).
    let this_year = 1970 + now_secs / 31_556_952;
    year < this_year
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_the_captured_login_cookies_whatever_the_domain() {
        let jar = CookieJar::new();
        for header in [
            "pt2gguin=o1685359365; EXPIRES=Fri, 02-Jan-2020 00:00:00 GMT; PATH=/; DOMAIN=qq.com;",
            "uin=o1685359365; PATH=/; DOMAIN=qq.com;",
            "skey=@kJiG8XnBE; PATH=/; DOMAIN=qq.com;",
            "ETK=; PATH=/; DOMAIN=ptlogin2.qq.com;",
            "ptwebqq=a4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1; PATH=/; DOMAIN=qq.com;",
        ] {
            jar.apply_set_cookie(header);
        }
        assert_eq!(jar.get("uin").as_deref(), Some("o1685359365"));
        assert_eq!(jar.get("ETK").as_deref(), Some(""));
        assert_eq!(jar.get("skey").as_deref(), Some("@kJiG8XnBE"));
        // The 2020 expiry of the 2013 capture is in the past now: deleted.
        assert_eq!(jar.get("pt2gguin"), None);
        let header = jar.header_text().unwrap_or_default();
        assert!(header.contains("ptwebqq=a4c1"), "{header}");
        assert!(!format!("{jar:?}").contains("kJiG8"));
    }

    #[test]
    fn deletion_and_client_side_cookies() {
        let jar = CookieJar::new();
        jar.set("chkuin", "1685359365");
        jar.apply_set_cookie("chkuin=x; Max-Age=0");
        assert_eq!(jar.get("chkuin"), None);
        jar.set("ptwebqq", "new");
        assert_eq!(jar.header_text().as_deref(), Some("ptwebqq=new"));
        jar.set("bad name", "x");
        jar.apply_set_cookie("novalue");
        jar.apply_set_cookie("=x");
        assert_eq!(jar.header_text().as_deref(), Some("ptwebqq=new"));
        jar.clear();
        assert_eq!(jar.header_text(), None);
    }

    #[test]
    fn the_jar_is_bounded() {
        let jar = CookieJar::new();
        for i in 0..200 {
            jar.set(&format!("c{i}"), "v");
        }
        jar.set("big", &"x".repeat(10_000));
        assert_eq!(
            jar.header_text().map(|h| h.matches('=').count()),
            Some(MAX_COOKIES)
        );
    }

    proptest! {
        #[test]
        fn set_cookie_parsing_never_panics(header in "\\PC{0,120}") {
            let jar = CookieJar::new();
            jar.apply_set_cookie(&header);
            if let Some(text) = jar.header_text() {
                prop_assert!(!text.contains('\n'));
            }
        }
    }
}
