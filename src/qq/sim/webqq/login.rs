//! The ptlogin2 steps (webqq.md §2.2-§2.7): the login page with
//! `g_login_sig`, `check` (`ptui_checkVC`), the captcha image, `login`
//! (`ptuiCB`, with the password check of §2.5 and the cookies of the
//! captured reply) and `check_sig` (302 with more cookies).
//!
//! Cookies carry `DOMAIN=…qq.com` only when the request's Host is a qq.com
//! name (the client maps Tencent's hosts to the simulator); on a plain
//! `127.0.0.1:port` base they are host-only, so ordinary cookie jars keep
//! them [SIM].

use md5::{Digest, Md5};
use rand::Rng;

use super::captcha::captcha_png;
use super::desk::{CaptchaRecord, CheckRecord, Ticket};
use super::quirks::CaptchaPolicy;
use super::request::WebRequest;
use super::tokens::{new_login_sig, new_ptwebqq, new_skey, random_hex};
use super::WebqqService;
use crate::qq::sim::http::HttpResponse;
use crate::qq::webqq::crypto::{uin_bytes, Uin8};
use crate::qq::webqq::ptlogin::{format_check_vc, format_login_page, format_ptui_cb, PtuiCb};

/// `ptuiCB` texts (webqq.md §2.6); the 7 and 24 wordings are [SIM].
const SUCCESS: &str = "登录成功！";
const WRONG_PASSWORD: &str = "您输入的帐号或密码不正确，请重新输入。";
const WRONG_CAPTCHA: &str = "您输入的验证码不正确，请重新输入。";
const PAGE_EXPIRED: &str = "页面过期，请重试。";
const BAD_INPUT: &str = "网络连接异常，请稍后再试。";
const NO_COOKIES: &str = "网络错误，请检查您的浏览器是否禁用了cookies。";
/// Where `check_sig` redirects.
const LOGIN_PROXY: &str = "http://web2.qq.com/loginproxy.html?login2qq=1&webqq_type=10";
/// Headers of every ptlogin2 reply (the captured ones).
const SERVER: (&str, &str) = ("Server", "Tencent Login Server/2.0.0");
const P3P: (&str, &str) = ("P3P", "CP=\"CAO PSA OUR\"");
const NO_CACHE: [(&str, &str); 2] = [
    ("Pragma", "no-cache"),
    ("Cache-Control", "no-cache; must-revalidate"),
];
const JAVASCRIPT: (&str, &str) = ("Content-Type", "application/x-javascript; charset=utf-8");

/// A `Set-Cookie` value in the captured spelling.
fn cookie(req: &WebRequest, name: &str, value: &str, domain: &str, expires: bool) -> String {
    let mut text = format!("{name}={value};");
    if expires {
        text.push_str(" EXPIRES=Fri, 02-Jan-2020 00:00:00 GMT;");
    }
    text.push_str(" PATH=/;");
    if req.on_qq_com() {
        text.push_str(&format!(" DOMAIN={domain};"));
    }
    text
}

/// A ptlogin2 reply: JavaScript text with its cookies.
fn javascript(body: &str, cookies: &[String]) -> HttpResponse {
    let mut headers = vec![SERVER, P3P];
    headers.extend(cookies.iter().map(|c| ("Set-Cookie", c.as_str())));
    headers.extend(NO_CACHE);
    headers.push(JAVASCRIPT);
    HttpResponse::with_headers(200, "OK", &headers, body.as_bytes(), false)
}

/// `o` and the number padded to 10 digits (`uin`, `pt2gguin`, `p_uin`).
fn o_uin(uin: u64) -> String {
    format!("o{uin:010}")
}

/// A random code of `n` upper-case letters.
fn letters(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(rng.gen_range(b'A'..=b'Z')))
        .collect()
}

/// The expected `p` of webqq.md §2.5, from the stored MD5 of the password
/// (`h1`, as lower-case hex): `None` if that is not 32 hex digits.
fn expected_p(password_md5_hex: &str, uin8: &Uin8, verify_code: &str) -> Option<String> {
    if password_md5_hex.len() != 32 {
        return None;
    }
    let h1: Option<Vec<u8>> = (0..32)
        .step_by(2)
        .map(|i| {
            password_md5_hex
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect();
    let mut inner = Md5::new();
    inner.update(h1?);
    inner.update(uin8);
    let h2 = upper_hex(&inner.finalize());
    let mut outer = Md5::new();
    outer.update(h2.as_bytes());
    outer.update(verify_code.to_uppercase().as_bytes());
    Some(upper_hex(&outer.finalize()))
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A failed `ptuiCB`, naming the number that was tried.
fn refusal(status: u32, sub_status: &str, message: &str, tried: &str) -> String {
    format_ptui_cb(&PtuiCb {
        status,
        sub_status: sub_status.to_owned(),
        url: String::new(),
        arg4: "0".to_owned(),
        message: message.to_owned(),
        nick: tried.to_owned(),
    })
}

impl WebqqService {
    /// Step 0: a page carrying `g_login_sig` (never checked afterwards).
    pub(super) fn login_page(&self) -> HttpResponse {
        let page = format_login_page(&new_login_sig());
        HttpResponse::simple(
            200,
            "OK",
            "text/html; charset=utf-8",
            page.as_bytes(),
            false,
        )
    }

    /// Step 1: `ptui_checkVC('0'|'1', code-or-token, uin bytes)`.
    pub(super) fn check(&self, req: &WebRequest) -> HttpResponse {
        let Some(uin) = req.param("uin").and_then(|u| u.trim().parse::<u64>().ok()) else {
            return HttpResponse::simple(
                400,
                "Bad Request",
                "text/plain; charset=utf-8",
                b"uin?\n",
                false,
            );
        };
        let fixed = self.captchas.get(&uin);
        let captcha = fixed.is_some()
            || match self.quirks.captcha_policy {
                CaptchaPolicy::Never => false,
                CaptchaPolicy::Always => true,
                CaptchaPolicy::Random(p) => rand::random::<f64>() < p,
            };
        let code = match fixed {
            Some(code) => code.clone(),
            None if captcha => letters(4),
            None => format!("!{}", letters(3)),
        };
        let ptvfsession = random_hex(48);
        let shown = if captcha {
            random_hex(16)
        } else {
            code.clone()
        };
        self.desk.add_check(
            &ptvfsession,
            CheckRecord {
                uin,
                code,
                captcha,
                issued: tokio::time::Instant::now(),
            },
        );
        tracing::debug!(uin, captcha, "WebQQ check");
        let cookies = [
            cookie(req, "ptvfsession", &ptvfsession, "qq.com", false),
            cookie(req, "confirmuin", "0", "ptlogin2.qq.com", false),
        ];
        javascript(&format_check_vc(captcha, &shown, &uin_bytes(uin)), &cookies)
    }

    /// Step 1b: the captcha of the caller's check, as a PNG, with the
    /// `verifysession` cookie that names it.
    pub(super) fn captcha_image(&self, req: &WebRequest) -> HttpResponse {
        let uin = req.param("uin").and_then(|u| u.trim().parse::<u64>().ok());
        let check = self.desk.peek_check(req.cookie("ptvfsession"), uin);
        let (uin, code) = match check.filter(|c| c.captcha) {
            Some(check) => (check.uin, check.code),
            // An image nobody's check asked for still shows a code.
            None => (uin.unwrap_or_default(), letters(4)),
        };
        let verifysession = random_hex(40);
        let png = captcha_png(&code);
        self.desk.add_captcha(
            &verifysession,
            CaptchaRecord {
                uin,
                code,
                issued: tokio::time::Instant::now(),
            },
        );
        let set_cookie = cookie(req, "verifysession", &verifysession, "qq.com", false);
        let headers = [
            SERVER,
            ("Set-Cookie", set_cookie.as_str()),
            ("Content-Type", "image/png"),
        ];
        HttpResponse::with_headers(200, "OK", &headers, &png, false)
    }

    /// Step 3: checks the verify code and `p`, then sets the session
    /// cookies and answers the `check_sig` URL.
    pub(super) fn password_login(&self, req: &WebRequest) -> HttpResponse {
        let tried = req.param("u").unwrap_or_default().trim().to_owned();
        let reply = self.check_password(req, &tried);
        match reply {
            Ok((body, cookies)) => javascript(&body, &cookies),
            Err(body) => javascript(&body, &[]),
        }
    }

    fn check_password(
        &self,
        req: &WebRequest,
        tried: &str,
    ) -> Result<(String, Vec<String>), String> {
        let bad_input = || {
            let code = rand::thread_rng().gen_range(10_000..99_999);
            refusal(7, "0", &format!("{BAD_INPUT}({code})"), tried)
        };
        let uin = tried.parse::<u64>().map_err(|_| bad_input())?;
        let p = req
            .param("p")
            .filter(|p| p.len() == 32)
            .ok_or_else(bad_input)?;
        let verify_code = req.param("verifycode").ok_or_else(bad_input)?;
        let strict = self.quirks.strict_cookies;
        let ptvfsession = req.cookie("ptvfsession");
        if strict && ptvfsession.is_none() {
            return Err(refusal(24, "0", NO_COOKIES, tried));
        }
        let expired = || refusal(4, "2", PAGE_EXPIRED, tried);
        let check = self
            .desk
            .take_check(ptvfsession, (!strict).then_some(uin))
            .ok_or_else(expired)?;
        if check.uin != uin {
            return Err(bad_input());
        }
        if self.desk.expired(check.issued) {
            return Err(expired());
        }
        let expected_code = if check.captcha {
            match req.cookie("verifysession") {
                Some(vs) => {
                    let captcha = self
                        .desk
                        .take_captcha(vs)
                        .filter(|c| c.uin == uin)
                        .ok_or_else(|| refusal(4, "0", WRONG_CAPTCHA, tried))?;
                    if self.desk.expired(captcha.issued) {
                        return Err(expired());
                    }
                    captcha.code
                }
                None if strict => return Err(refusal(24, "0", NO_COOKIES, tried)),
                None => check.code,
            }
        } else {
            check.code
        };
        if !verify_code.trim().eq_ignore_ascii_case(&expected_code) {
            tracing::debug!(uin, "WebQQ login: wrong verify code");
            return Err(refusal(4, "0", WRONG_CAPTCHA, tried));
        }
        let account = self.world.account(uin);
        let expected = account
            .as_ref()
            .and_then(|a| expected_p(a.password_md5.expose(), &uin_bytes(uin), verify_code.trim()));
        if !expected.is_some_and(|e| e.eq_ignore_ascii_case(p)) {
            tracing::debug!(uin, "WebQQ login: wrong account or password");
            return Err(refusal(3, "0", WRONG_PASSWORD, tried));
        }
        let nick = account.map(|a| a.nick).unwrap_or_default();
        Ok(self.issue_ticket(req, uin, &nick))
    }

    /// The success reply and cookies of a passed password check.
    fn issue_ticket(&self, req: &WebRequest, uin: u64, nick: &str) -> (String, Vec<String>) {
        let ptwebqq = new_ptwebqq();
        let skey = new_skey();
        let ptsigx = random_hex(64);
        self.desk.add_ticket(
            &ptwebqq,
            Ticket {
                uin,
                skey: skey.clone(),
                ptsigx: ptsigx.clone(),
                issued: tokio::time::Instant::now(),
            },
        );
        let nick_hex: String = nick.bytes().map(|b| format!("{b:02x}")).collect();
        let cookies = vec![
            cookie(req, "pt2gguin", &o_uin(uin), "qq.com", true),
            cookie(req, "uin", &o_uin(uin), "qq.com", false),
            cookie(req, "skey", &skey, "qq.com", false),
            cookie(req, "ETK", "", "ptlogin2.qq.com", false),
            cookie(req, "ptuserinfo", &nick_hex, "ptlogin2.qq.com", false),
            cookie(req, "ptwebqq", &ptwebqq, "qq.com", false),
        ];
        let host = req.host().unwrap_or("ptlogin4.web2.qq.com");
        let url = format!(
            "http://{host}/check_sig?pttype=1&uin={uin}&service=login&nodirect=0&ptsigx={ptsigx}\
             &s_url=http%3A%2F%2Fweb2.qq.com%2Floginproxy.html%3Flogin2qq%3D1%26webqq_type%3D10\
             &f_url=&ptlang=2052&ptredirect=100&aid=1003903&daid=164&j_later=0&low_login_hour=0\
             &regmaster=0&pt_login_type=1&pt_aid=0&pt_aaid=0&pt_light=0"
        );
        tracing::debug!(uin, "WebQQ password check passed");
        let body = format_ptui_cb(&PtuiCb {
            status: 0,
            sub_status: "0".to_owned(),
            url,
            arg4: "0".to_owned(),
            message: SUCCESS.to_owned(),
            nick: nick.to_owned(),
        });
        (body, cookies)
    }

    /// Step 4: `302` to the login proxy; a URL of a live ticket also sets
    /// `p_skey`, `p_uin` and `pt4_token`.
    pub(super) fn check_sig(&self, req: &WebRequest) -> HttpResponse {
        let uin = req.param("uin").and_then(|u| u.trim().parse::<u64>().ok());
        let ticket = match (uin, req.param("ptsigx")) {
            (Some(uin), Some(ptsigx)) => self.desk.ticket_by_ptsigx(uin, ptsigx),
            _ => None,
        };
        let cookies: Vec<String> = match ticket {
            Some(ticket) => vec![
                cookie(req, "p_skey", &random_hex(22), "web2.qq.com", false),
                cookie(req, "p_uin", &o_uin(ticket.uin), "web2.qq.com", false),
                cookie(req, "pt4_token", &random_hex(16), "web2.qq.com", false),
            ],
            None => Vec::new(),
        };
        let mut headers = vec![SERVER, P3P, ("Location", LOGIN_PROXY)];
        headers.extend(cookies.iter().map(|c| ("Set-Cookie", c.as_str())));
        headers.push(("Content-Type", "text/html; charset=utf-8"));
        HttpResponse::with_headers(302, "Found", &headers, b"", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qq::http11::codec::PasswordHash;
    use crate::qq::webqq::crypto::encrypt_password;

    #[test]
    fn expected_p_matches_the_clients_encryption() {
        let md5 = PasswordHash::from_password("password123");
        let uin8 = uin_bytes(1_685_359_365);
        assert_eq!(
            expected_p(md5.expose(), &uin8, "!PTH").as_deref(),
            Some("6B336642C524AB0FE9F08E3D46195C50")
        );
        assert_eq!(
            expected_p(md5.expose(), &uin8, "xkcd"),
            Some(
                encrypt_password("password123", &uin8, "XKCD")
                    .expose()
                    .to_owned()
            )
        );
        assert_eq!(expected_p("short", &uin8, "x"), None);
        assert_eq!(o_uin(10001), "o0000010001");
    }
}
