//! The WebQQ login flow (webqq.md §2): login page (for `login_sig`) →
//! `check` → (captcha image, answered by the user) → `login` with the
//! encrypted password → `ptuiCB` → the `check_sig` URL → `login2`.
//!
//! Used for the first login and for full re-logins of a running session.
//! `ptuiCB` 4 without a captcha, 4/'2' ("page expired") and 7 restart at
//! `check` (twqq does the same), at most [`MAX_RESTARTS`] times.

use rand::Rng;

use super::api::{login2, ApiError, Tokens};
use super::crypto::{encrypt_password, uin_bytes, Uin8};
use super::endpoints as ep;
use super::ptlogin::{parse_check_vc, parse_login_sig, parse_ptui_cb, LoginStatus, PtuiCb};
use super::transport::{Headers, Transport, CALL_TIMEOUT, MAX_IMAGE_BODY, MAX_TEXT_BODY};
use crate::core::model::{Presence, Uin};
use crate::qq::QqError;
use crate::secret::Secret;

/// How often one login may start over at `check`.
pub const MAX_RESTARTS: u32 = 2;
/// Longest server message quoted in an error.
const MAX_MESSAGE_CHARS: usize = 120;

/// Who logs in, and with which initial status string.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub uin: Uin,
    pub password: Secret,
    pub status: &'static str,
}

/// A finished login: the channel session.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub tokens: Tokens,
    /// The nickname `ptuiCB` greeted us with.
    pub nick: Option<String>,
    /// `uin` of the login2 result (the real number in every capture).
    pub login2_uin: u64,
}

/// Where a login stands.
#[derive(Debug)]
pub enum Progress {
    Done(LoggedIn),
    /// The user must read `image`; continue with [`continue_with_captcha`].
    Captcha {
        image: Vec<u8>,
        wait: CaptchaWait,
    },
}

/// What a login waiting for a captcha remembers.
#[derive(Debug, Clone)]
pub struct CaptchaWait {
    login_sig: String,
    uin8: Uin8,
    restarts: u32,
}

/// The status string `login2` and `change_status2` take for a presence.
pub fn status_string(presence: Presence) -> &'static str {
    match presence {
        Presence::Online => "online",
        Presence::Away => "away",
        Presence::Busy => "busy",
        Presence::Invisible => "hidden",
        Presence::Offline => "offline",
    }
}

/// The status string to log in with: logging in "offline" makes no
/// session, so it logs in hidden.
pub fn login_status_string(presence: Presence) -> &'static str {
    match presence {
        Presence::Offline => "hidden",
        other => status_string(other),
    }
}

enum Next {
    Check,
    Password {
        login_sig: String,
        uin8: Uin8,
        verify_code: String,
        after_captcha: bool,
    },
}

/// Starts a login from scratch (a fresh cookie jar).
pub async fn start(transport: &Transport, creds: &Credentials) -> Result<Progress, QqError> {
    transport.jar().clear();
    run(transport, creds, Next::Check, 0).await
}

/// Continues a login with the user's captcha answer.
pub async fn continue_with_captcha(
    transport: &Transport,
    creds: &Credentials,
    wait: CaptchaWait,
    answer: &str,
) -> Result<Progress, QqError> {
    let answer = answer.trim();
    if answer.is_empty() || answer.len() > 32 {
        return Err(QqError::BadCaptcha);
    }
    let next = Next::Password {
        login_sig: wait.login_sig,
        uin8: wait.uin8,
        // twqq sends the answer lower-cased; the hash upper-cases it.
        verify_code: answer.to_lowercase(),
        after_captcha: true,
    };
    run(transport, creds, next, wait.restarts).await
}

async fn run(
    transport: &Transport,
    creds: &Credentials,
    mut next: Next,
    mut restarts: u32,
) -> Result<Progress, QqError> {
    loop {
        next = match next {
            Next::Check => {
                let login_sig = login_page(transport).await;
                transport.jar().set("chkuin", &creds.uin.to_string());
                let check = check(transport, creds.uin, &login_sig).await?;
                let uin8 = check.uin8.unwrap_or_else(|| uin_bytes(creds.uin.0));
                if check.need_captcha {
                    tracing::info!(uin = %creds.uin, "WebQQ login needs a captcha");
                    let image = captcha_image(transport, creds.uin).await?;
                    let wait = CaptchaWait {
                        login_sig,
                        uin8,
                        restarts,
                    };
                    return Ok(Progress::Captcha { image, wait });
                }
                Next::Password {
                    login_sig,
                    uin8,
                    verify_code: check.code,
                    after_captcha: false,
                }
            }
            Next::Password {
                login_sig,
                uin8,
                verify_code,
                after_captcha,
            } => {
                let cb = password_login(
                    transport,
                    creds,
                    &login_sig,
                    &uin8,
                    &verify_code,
                    after_captcha,
                )
                .await?;
                let status = cb.login_status();
                let restartable = match status {
                    LoginStatus::Success => {
                        return finish(transport, creds, &cb).await.map(Progress::Done)
                    }
                    LoginStatus::WrongCaptcha => !after_captcha,
                    LoginStatus::PageExpired | LoginStatus::BadInput => true,
                    _ => false,
                };
                if !restartable || restarts >= MAX_RESTARTS {
                    return Err(refusal(status, &cb));
                }
                restarts += 1;
                tracing::info!(uin = %creds.uin, ?status, "WebQQ login starts over at check");
                Next::Check
            }
        };
    }
}

/// The error for a failed `ptuiCB`.
fn refusal(status: LoginStatus, cb: &PtuiCb) -> QqError {
    match status {
        LoginStatus::WrongPassword => QqError::BadCredentials,
        LoginStatus::WrongCaptcha | LoginStatus::PageExpired => QqError::BadCaptcha,
        LoginStatus::Frozen => {
            QqError::LoginRefused("the account is frozen (see aq.qq.com)".to_owned())
        }
        _ => {
            let message: String = cb.message.chars().take(MAX_MESSAGE_CHARS).collect();
            if message.trim().is_empty() {
                QqError::LoginRefused(format!("ptlogin status {}", cb.status))
            } else {
                QqError::LoginRefused(format!("{message} (status {})", cb.status))
            }
        }
    }
}

/// Step 0: the login page's `g_login_sig` (optional: "" when unavailable).
async fn login_page(transport: &Transport) -> String {
    let query = [
        ("daid", "164"),
        ("target", "self"),
        ("style", "5"),
        ("mibao_css", "m_webqq"),
        ("appid", ep::APPID),
        ("enable_qlogin", "0"),
        ("no_verifyimg", "1"),
        ("s_url", ep::CHECK_U1),
        ("f_url", "loginerroralert"),
        ("strong_login", "1"),
        ("login_state", "10"),
        ("t", "20130723001"),
    ];
    let reply = transport
        .get(
            ep::LOGIN_PAGE,
            &query,
            Headers::default(),
            CALL_TIMEOUT,
            MAX_TEXT_BODY,
        )
        .await;
    match reply.and_then(|r| r.ensure_ok()) {
        Ok(reply) => parse_login_sig(&reply.text()).unwrap_or_default(),
        Err(e) => {
            tracing::debug!(error = %e, "no WebQQ login page; logging in without login_sig");
            String::new()
        }
    }
}

/// Step 1: `check`.
async fn check(
    transport: &Transport,
    uin: Uin,
    login_sig: &str,
) -> Result<super::ptlogin::CheckReply, QqError> {
    let uin = uin.to_string();
    let r = format!("{:.10}", rand::thread_rng().gen::<f64>());
    let query = [
        ("uin", uin.as_str()),
        ("appid", ep::APPID),
        ("js_ver", ep::JS_VER),
        ("js_type", "0"),
        ("login_sig", login_sig),
        ("u1", ep::CHECK_U1),
        ("r", &r),
    ];
    let headers = Headers {
        referer: Some(ep::REFERER_CHECK),
        origin: None,
    };
    let reply = transport
        .get(ep::CHECK, &query, headers, CALL_TIMEOUT, MAX_TEXT_BODY)
        .await?
        .ensure_ok()?;
    parse_check_vc(&reply.text())
        .ok_or_else(|| QqError::Protocol("check did not answer ptui_checkVC".to_owned()))
}

/// Step 1b: the captcha image.
async fn captcha_image(transport: &Transport, uin: Uin) -> Result<Vec<u8>, QqError> {
    let uin = uin.to_string();
    let r = format!("{:.16}", rand::thread_rng().gen::<f64>());
    let query = [("aid", ep::APPID), ("r", r.as_str()), ("uin", uin.as_str())];
    let headers = Headers {
        referer: Some(ep::REFERER_CHECK),
        origin: None,
    };
    let reply = transport
        .get(
            ep::CAPTCHA_IMAGE,
            &query,
            headers,
            CALL_TIMEOUT,
            MAX_IMAGE_BODY,
        )
        .await?
        .ensure_ok()?;
    if reply.body.is_empty() {
        return Err(QqError::Protocol("the captcha image is empty".to_owned()));
    }
    Ok(reply.body)
}

/// Steps 2 and 3: encrypt the password and send `login`.
async fn password_login(
    transport: &Transport,
    creds: &Credentials,
    login_sig: &str,
    uin8: &Uin8,
    verify_code: &str,
    after_captcha: bool,
) -> Result<PtuiCb, QqError> {
    let p = encrypt_password(creds.password.expose(), uin8, verify_code);
    let uin = creds.uin.to_string();
    let action = format!("2-11-{}", rand::thread_rng().gen_range(3000..20000));
    let query = [
        ("u", uin.as_str()),
        ("p", p.expose()),
        ("verifycode", verify_code),
        ("webqq_type", "10"),
        ("remember_uin", "1"),
        ("login2qq", "1"),
        ("aid", ep::APPID),
        ("u1", ep::LOGIN_U1),
        ("h", "1"),
        ("ptredirect", "0"),
        ("ptlang", "2052"),
        ("daid", "164"),
        ("from_ui", "1"),
        ("pttype", "1"),
        ("dumy", ""),
        ("fp", "loginerroralert"),
        ("action", action.as_str()),
        ("mibao_css", "m_webqq"),
        ("t", "1"),
        ("g", "1"),
        ("js_type", "0"),
        ("js_ver", ep::JS_VER),
        ("login_sig", login_sig),
    ];
    let headers = Headers {
        referer: Some(if after_captcha {
            ep::REFERER_LOGIN_AFTER_CAPTCHA
        } else {
            ep::REFERER_LOGIN
        }),
        origin: None,
    };
    let reply = transport
        .get(ep::LOGIN, &query, headers, CALL_TIMEOUT, MAX_TEXT_BODY)
        .await?
        .ensure_ok()?;
    parse_ptui_cb(&reply.text())
        .ok_or_else(|| QqError::Protocol("login did not answer ptuiCB".to_owned()))
}

/// Steps 4 and 5: follow `check_sig`, then `login2`.
async fn finish(
    transport: &Transport,
    creds: &Credentials,
    cb: &PtuiCb,
) -> Result<LoggedIn, QqError> {
    follow_check_sig(transport, &cb.url).await?;
    let ptwebqq = transport
        .jar()
        .get("ptwebqq")
        .filter(|p| !p.is_empty())
        .map(Secret::new)
        .ok_or_else(|| QqError::Protocol("the login set no ptwebqq cookie".to_owned()))?;
    let clientid = rand::thread_rng()
        .gen_range(10_000_000u32..=99_999_999)
        .to_string();
    let result = login2(transport, creds.status, &ptwebqq, &clientid, None)
        .await
        .map_err(|e| match e {
            ApiError::Retcode(code) => {
                QqError::LoginRefused(format!("the channel login was refused (retcode {code})"))
            }
            other => other.into(),
        })?;
    tracing::info!(uin = %creds.uin, "WebQQ login complete");
    let nick = Some(cb.nick.trim().to_owned())
        .filter(|n| !n.is_empty())
        .or_else(|| nick_from_ptuserinfo(transport));
    Ok(LoggedIn {
        tokens: Tokens {
            clientid,
            ptwebqq,
            vfwebqq: result.vfwebqq,
            psessionid: result.psessionid,
        },
        nick,
        login2_uin: result.uin,
    })
}

/// GETs the path and query of the `check_sig` URL against the base URL.
/// Only its cookies matter; a redirect is the normal answer.
async fn follow_check_sig(transport: &Transport, url: &str) -> Result<(), QqError> {
    let Some(path) = path_and_query(url) else {
        // Pre-daid flows echo u1 here instead; there is nothing to follow.
        tracing::debug!("ptuiCB gave no check_sig URL");
        return Ok(());
    };
    let headers = Headers {
        referer: Some(ep::REFERER_CHECK),
        origin: None,
    };
    transport
        .get(&path, &[], headers, CALL_TIMEOUT, MAX_TEXT_BODY)
        .await?
        .ensure_ok()?;
    Ok(())
}

/// `/check_sig?…` of `http://ptlogin4.web2.qq.com/check_sig?…`, if the URL
/// is a `check_sig` URL.
fn path_and_query(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url.trim()).ok()?;
    if !parsed.path().contains("check_sig") {
        return None;
    }
    Some(match parsed.query() {
        Some(query) => format!("{}?{}", parsed.path(), query),
        None => parsed.path().to_owned(),
    })
}

/// The nickname from the `ptuserinfo` cookie (UTF-8 as hex).
fn nick_from_ptuserinfo(transport: &Transport) -> Option<String> {
    let hex = transport.jar().get("ptuserinfo")?;
    let bytes: Option<Vec<u8>> = hex
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok().filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_sig_url_keeps_path_and_query_only() {
        assert_eq!(
            path_and_query(
                "http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1685359365&service=login"
            ),
            Some("/check_sig?pttype=1&uin=1685359365&service=login".to_owned())
        );
        assert_eq!(
            path_and_query("http://ptlogin4.web2.qq.com/check_sig"),
            Some("/check_sig".to_owned())
        );
        assert_eq!(path_and_query("http://www.qq.com"), None);
        assert_eq!(path_and_query(""), None);
        assert_eq!(path_and_query("not a url"), None);
    }

    #[test]
    fn status_strings() {
        assert_eq!(status_string(Presence::Invisible), "hidden");
        assert_eq!(status_string(Presence::Offline), "offline");
        assert_eq!(login_status_string(Presence::Offline), "hidden");
        assert_eq!(login_status_string(Presence::Busy), "busy");
    }

    #[test]
    fn refusals_map_to_typed_errors() {
        let cb = |status: u32, sub: &str, message: &str| PtuiCb {
            status,
            sub_status: sub.into(),
            url: String::new(),
            arg4: "0".into(),
            message: message.into(),
            nick: "1".into(),
        };
        let c = cb(3, "0", "wrong");
        assert_eq!(refusal(c.login_status(), &c), QqError::BadCredentials);
        let c = cb(4, "0", "wrong code");
        assert_eq!(refusal(c.login_status(), &c), QqError::BadCaptcha);
        let c = cb(8, "0", "too many");
        assert_eq!(
            refusal(c.login_status(), &c),
            QqError::LoginRefused("too many (status 8)".into())
        );
        let c = cb(1, "0", "");
        assert_eq!(
            refusal(c.login_status(), &c),
            QqError::LoginRefused("ptlogin status 1".into())
        );
    }
}
