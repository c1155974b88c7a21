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
    cookies: Mutex<Cookies>,
}

/// The cookies and their `Cookie` header text, kept together: a session
/// sends the same cookies with every request (every message sent, every
/// poll) and they change only while logging in, so the text is built once
/// per change instead of once per request.
#[derive(Default)]
struct Cookies {
    by_name: BTreeMap<String, String>,
    header: Option<String>,
}

impl Cookies {
    fn changed(&mut self) {
        self.header = (!self.by_name.is_empty()).then(|| {
            let mut text = String::new();
            for (name, value) in &self.by_name {
                if !text.is_empty() {
                    text.push_str("; ");
                }
                text.push_str(name);
                text.push('=');
                text.push_str(value);
            }
            text
        });
    }
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .cookies
            .lock()
            .map(|c| c.by_name.keys().cloned().collect())
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
        self.cookies.lock().ok()?.by_name.get(name).cloned()
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
            cookies.by_name.clear();
            cookies.changed();
        }
    }

    /// Applies one `Set-Cookie` header value.
    pub fn apply_set_cookie(&self, header: &str) {
        let Some((name, value, expired)) = parse_set_cookie(header) else {
            return;
        };
        if let Ok(mut cookies) = self.cookies.lock() {
            if expired {
                if cookies.by_name.remove(&name).is_some() {
                    cookies.changed();
                }
            } else {
                insert_bounded(&mut cookies, &name, &value);
            }
        }
    }

    /// The `Cookie` header text: `a=1; b=2`, or `None` when empty.
    pub fn header_text(&self) -> Option<String> {
        self.cookies.lock().ok()?.header.clone()
    }
}

fn insert_bounded(cookies: &mut Cookies, name: &str, value: &str) {
    if !valid_name(name) || name.len() + value.len() + 1 > MAX_COOKIE_BYTES {
        return;
    }
    if cookies.by_name.len() >= MAX_COOKIES && !cookies.by_name.contains_key(name) {
        return;
    }
    let value: String = value
        .chars()
        .filter(|c| !matches!(c, ';' | '\r' | '\n'))
        .collect();
    if cookies.by_name.get(name) != Some(&value) {
        cookies.by_name.insert(name.to_owned(), value);
        cookies.changed();
    }
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
        /// The header is kept, not built per request: after any changes it
        /// must still say exactly what the jar holds.
        #[test]
        fn the_header_always_says_what_the_jar_holds(
            changes in proptest::collection::vec((0u8..4, "[a-c]", "[xy]{0,2}"), 0..40)
        ) {
            let jar = CookieJar::new();
            for (change, name, value) in changes {
                match change {
                    0 => jar.set(&name, &value),
                    1 => jar.apply_set_cookie(&format!("{name}={value}; Path=/")),
                    2 => jar.apply_set_cookie(&format!("{name}=; Max-Age=0")),
                    _ => jar.clear(),
                }
            }
            let cookies = jar.cookies.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let expected: Vec<String> =
                cookies.by_name.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let expected = (!expected.is_empty()).then(|| expected.join("; "));
            drop(cookies);
            prop_assert_eq!(jar.header_text(), expected);
        }

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
