//! The JavaScript callback text that ptlogin2 answers with (webqq.md §2.2,
//! §2.3, §2.6): `ptui_checkVC(…)` from `check`, `ptuiCB(…)` from `login`,
//! and the `g_login_sig` line of the login page.
//!
//! Parsing is liberal (spaces, either quote style, a missing `;`, the
//! 2-argument 2012 form of `ptui_checkVC`); formatting reproduces the exact
//! captured spelling, so the simulator can use it. Nothing here panics on
//! any input.

use super::crypto::{format_uin_escapes, parse_uin_escapes, Uin8};

/// Longest callback text parsed; real ones are well under 1 KiB.
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;
/// Most arguments a callback may have (ptuiCB has 6).
const MAX_ARGS: usize = 16;

/// The answer of `check`: whether a captcha is needed, and the uin bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReply {
    /// `'1'`: the user must read a captcha image.
    pub need_captcha: bool,
    /// Without captcha the verify code to use (`!PTH`); with captcha an
    /// opaque token.
    pub code: String,
    /// The QQ number as 8 bytes; absent in the 2012 two-argument form.
    pub uin8: Option<Uin8>,
}

/// A `ptuiCB(…)` callback, arguments in order (webqq.md §2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtuiCb {
    /// Argument 1: the status code.
    pub status: u32,
    /// Argument 2: `'0'`, or `'2'` with status 4 for "page expired".
    pub sub_status: String,
    /// Argument 3: the `check_sig` URL on success, else empty.
    pub url: String,
    /// Argument 4: `'0'` in every sample.
    pub arg4: String,
    /// Argument 5: the human-readable message.
    pub message: String,
    /// Argument 6: the nickname on success, the tried number on failure.
    pub nick: String,
}

/// What a `ptuiCB` status code means (webqq.md §2.6 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStatus {
    /// 0, with a `check_sig` URL to follow.
    Success,
    /// 0 with an `aq.qq.com` URL: the account is frozen.
    Frozen,
    /// 1: server busy.
    Busy,
    /// 2: the QQ number expired or is invalid.
    NumberExpired,
    /// 3: wrong account or password.
    WrongPassword,
    /// 4: wrong verify code.
    WrongCaptcha,
    /// 4 with argument 2 `'2'`: the page expired; start over at `check`.
    PageExpired,
    /// 5: verification failed.
    VerificationFailed,
    /// 6: please try again.
    Retry,
    /// 7: wrong input or parameters.
    BadInput,
    /// 8: too many logins from this IP.
    TooManyLogins,
    /// 24: cookies disabled.
    CookiesDisabled,
    /// Any other code.
    Other(u32),
}

impl PtuiCb {
    pub fn login_status(&self) -> LoginStatus {
        match self.status {
            0 if is_frozen_url(&self.url) => LoginStatus::Frozen,
            0 => LoginStatus::Success,
            1 => LoginStatus::Busy,
            2 => LoginStatus::NumberExpired,
            3 => LoginStatus::WrongPassword,
            4 if self.sub_status.trim() == "2" => LoginStatus::PageExpired,
            4 => LoginStatus::WrongCaptcha,
            5 => LoginStatus::VerificationFailed,
            6 => LoginStatus::Retry,
            7 => LoginStatus::BadInput,
            8 => LoginStatus::TooManyLogins,
            24 => LoginStatus::CookiesDisabled,
            other => LoginStatus::Other(other),
        }
    }
}

fn is_frozen_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.contains("aq.qq.com")
}

/// Parses `ptui_checkVC('0','!PTH','\x00…\x05');` (or the 2-argument form).
pub fn parse_check_vc(text: &str) -> Option<CheckReply> {
    let args = callback_args(text, "ptui_checkVC")?;
    let flag = args.first()?.raw.trim();
    let need_captcha = match flag {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    let code = args.get(1).map(|a| js_unescape(a.raw)).unwrap_or_default();
    let uin8 = match args.get(2) {
        Some(arg) => Some(parse_uin_escapes(arg.raw)?),
        None => None,
    };
    Some(CheckReply {
        need_captcha,
        code,
        uin8,
    })
}

/// Writes the exact captured form: `ptui_checkVC('0','!PTH','\x00…');`.
pub fn format_check_vc(need_captcha: bool, code: &str, uin8: &Uin8) -> String {
    format!(
        "ptui_checkVC('{}','{}','{}');",
        if need_captcha { 1 } else { 0 },
        js_escape(code),
        format_uin_escapes(uin8)
    )
}

/// Parses `ptuiCB('<code>','<n>','<url>','0','<message>', '<nick>');`.
/// Missing trailing arguments read as empty; a non-numeric status is `None`.
pub fn parse_ptui_cb(text: &str) -> Option<PtuiCb> {
    let args = callback_args(text, "ptuiCB")?;
    let status = args.first()?.raw.trim().parse::<u32>().ok()?;
    let arg = |i: usize| args.get(i).map(|a| js_unescape(a.raw)).unwrap_or_default();
    Some(PtuiCb {
        status,
        sub_status: arg(1),
        url: arg(2),
        arg4: arg(3),
        message: arg(4),
        nick: arg(5),
    })
}

/// Writes the exact captured form, with `, ` before the last argument only.
pub fn format_ptui_cb(cb: &PtuiCb) -> String {
    format!(
        "ptuiCB('{}','{}','{}','{}','{}', '{}');",
        cb.status,
        js_escape(&cb.sub_status),
        js_escape(&cb.url),
        js_escape(&cb.arg4),
        js_escape(&cb.message),
        js_escape(&cb.nick)
    )
}

/// The login page's `var g_login_sig=encodeURIComponent("<sig>");`.
pub fn parse_login_sig(html: &str) -> Option<String> {
    const MARKER: &str = "g_login_sig";
    let html = html.get(..floor_boundary(html, 256 * 1024))?;
    let after = html.get(html.find(MARKER)? + MARKER.len()..)?;
    let open = after.find(['"', '\''])?;
    let quote = after.get(open..)?.chars().next()?;
    let value = after.get(open + 1..)?;
    let end = value.find(quote)?;
    let sig = value.get(..end)?;
    (sig.len() <= 512).then(|| sig.to_owned())
}

/// A minimal login page carrying `sig` the way the real one does.
pub fn format_login_page(sig: &str) -> String {
    format!(
        "<html><head><script>var g_login_sig=encodeURIComponent(\"{}\");</script></head></html>\n",
        sig.replace(['"', '\\', '<'], "")
    )
}

/// One argument of a callback as it stands between its quotes.
struct RawArg<'a> {
    raw: &'a str,
}

/// Splits `name(<args>)` into its quoted (or bare) arguments.
fn callback_args<'a>(text: &'a str, name: &str) -> Option<Vec<RawArg<'a>>> {
    let text = text.get(..floor_boundary(text, MAX_CALLBACK_BYTES))?;
    let start = text.find(name)? + name.len();
    let mut rest = text.get(start..)?.trim_start().strip_prefix('(')?;
    let mut args = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(')') {
            let _ = after; // a trailing `;` or nothing: both fine
            return Some(args);
        }
        if args.len() >= MAX_ARGS {
            return None;
        }
        let (arg, after) = one_arg(rest)?;
        args.push(arg);
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with(')') {
            return None;
        }
    }
}

/// Reads one argument: a single- or double-quoted string (backslash escapes
/// kept raw) or a bare token up to `,` or `)`.
fn one_arg(text: &str) -> Option<(RawArg<'_>, &str)> {
    let first = text.chars().next()?;
    if first == '\'' || first == '"' {
        let body = text.get(1..)?;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == first {
                let raw = body.get(..i)?;
                return Some((RawArg { raw }, body.get(i + 1..)?));
            }
        }
        None
    } else {
        let end = text.find([',', ')'])?;
        Some((
            RawArg {
                raw: text.get(..end)?.trim(),
            },
            text.get(end..)?,
        ))
    }
}

/// Decodes JavaScript string escapes (`\'`, `\\`, `\n`, `\xHH`, `\uHHHH`).
fn js_unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(kind @ ('x' | 'u')) => {
                let digits = if kind == 'x' { 2 } else { 4 };
                let hex: String = chars.clone().take(digits).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded)
                        if hex.len() == digits && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        out.push(decoded);
                        for _ in 0..digits {
                            chars.next();
                        }
                    }
                    _ => out.push(kind),
                }
            }
            Some(other) => out.push(other),
        }
    }
    out
}

/// Escapes what would end or confuse a single-quoted JavaScript string.
fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

fn floor_boundary(text: &str, max: usize) -> usize {
    if max >= text.len() {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qq::webqq::crypto::uin_bytes;
    use proptest::prelude::*;

    #[test]
    fn check_reply_of_the_worked_example() {
        let text = r"ptui_checkVC('0','!PTH','\x00\x00\x00\x00\x64\x74\x8b\x05');";
        let reply = parse_check_vc(text);
        assert_eq!(
            reply,
            Some(CheckReply {
                need_captcha: false,
                code: "!PTH".into(),
                uin8: Some(uin_bytes(1_685_359_365)),
            })
        );
        assert_eq!(
            format_check_vc(false, "!PTH", &uin_bytes(1_685_359_365)),
            text
        );
    }

    #[test]
    fn check_reply_variants() {
        let captcha = parse_check_vc(
            "  ptui_checkVC( '1' , \"a9f8Xz\" , '\\x00\\x00\\x00\\x00\\x00\\x00\\x27\\x11' )\n",
        );
        assert_eq!(
            captcha,
            Some(CheckReply {
                need_captcha: true,
                code: "a9f8Xz".into(),
                uin8: Some(uin_bytes(10001)),
            })
        );
        // The 2012 two-argument forms.
        assert_eq!(
            parse_check_vc("ptui_checkVC('0','!LOB');").map(|r| (r.need_captcha, r.uin8)),
            Some((false, None))
        );
        assert_eq!(
            parse_check_vc("ptui_checkVC('1','token');").map(|r| r.need_captcha),
            Some(true)
        );
        for bad in [
            "",
            "ptui_checkVC",
            "ptui_checkVC('2','x','y');",
            "ptui_checkVC('0','!PTH','\\x00');",
            "ptui_checkVC('0','!PTH'",
            "ptuiCB('0');",
        ] {
            assert_eq!(parse_check_vc(bad), None, "{bad}");
        }
    }

    #[test]
    fn ptui_cb_success_sample() {
        let text = "ptuiCB('0','0','http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1685359365&service=login&nodirect=0','0','登录成功！', 'Tester');";
        let cb = parse_ptui_cb(text).expect("sample parses");
        assert_eq!(cb.status, 0);
        assert_eq!(cb.login_status(), LoginStatus::Success);
        assert_eq!(
            cb.url,
            "http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1685359365&service=login&nodirect=0"
        );
        assert_eq!(cb.message, "登录成功！");
        assert_eq!(cb.nick, "Tester");
        assert_eq!(format_ptui_cb(&cb), text);
    }

    #[test]
    fn ptui_cb_failure_samples() {
        let wrong = parse_ptui_cb(
            "ptuiCB('3','0','','0','您输入的帐号或密码不正确，请重新输入。', '1685359365');",
        );
        assert_eq!(
            wrong.map(|c| (c.login_status(), c.nick)),
            Some((LoginStatus::WrongPassword, "1685359365".to_owned()))
        );
        let cases = [
            (
                "ptuiCB('4','0','','0','您输入的验证码不正确，请重新输入。', '1');",
                LoginStatus::WrongCaptcha,
            ),
            (
                "ptuiCB('4','2','','0','页面过期，请重试。', '1');",
                LoginStatus::PageExpired,
            ),
            (
                "ptuiCB('7','0','','0','网络连接异常，请稍后再试。(1234)', '1');",
                LoginStatus::BadInput,
            ),
            (
                "ptuiCB('24','0','','0','cookies', '1');",
                LoginStatus::CookiesDisabled,
            ),
            (
                "ptuiCB('8','0','','0','x', '1');",
                LoginStatus::TooManyLogins,
            ),
            ("ptuiCB('1','0','','0','busy', '1');", LoginStatus::Busy),
            (
                "ptuiCB('2','0','','0','x', '1');",
                LoginStatus::NumberExpired,
            ),
            (
                "ptuiCB('5','0','','0','x', '1');",
                LoginStatus::VerificationFailed,
            ),
            ("ptuiCB('6','0','','0','x', '1');", LoginStatus::Retry),
            ("ptuiCB('19','0','','0','x', '1');", LoginStatus::Other(19)),
            (
                "ptuiCB('0','0','http://aq.qq.com/cn2/login_limit/abnormal','0','x', '1');",
                LoginStatus::Frozen,
            ),
            // The [004] sample with an ASCII `!`, no spaces at all.
            (
                "ptuiCB('0','0','http://www.qq.com','0','登录成功!','Tester')",
                LoginStatus::Success,
            ),
        ];
        for (text, status) in cases {
            assert_eq!(
                parse_ptui_cb(text).map(|c| c.login_status()),
                Some(status),
                "{text}"
            );
        }
        assert_eq!(parse_ptui_cb("ptuiCB('x','0');"), None);
        assert_eq!(parse_ptui_cb("ptuiCB();"), None);
        let short = parse_ptui_cb("ptuiCB('3');").map(|c| c.message);
        assert_eq!(short, Some(String::new()));
    }

    #[test]
    fn escapes_inside_arguments() {
        let cb = parse_ptui_cb(r"ptuiCB('3','0','','0','it\'s \u5B8B\x41\\', 'n');");
        assert_eq!(cb.map(|c| c.message), Some("it's 宋A\\".to_owned()));
    }

    #[test]
    fn login_sig_from_the_login_page() {
        let page = format_login_page("Abc*def-123");
        assert_eq!(parse_login_sig(&page).as_deref(), Some("Abc*def-123"));
        assert_eq!(
            parse_login_sig("var g_login_sig=encodeURIComponent('x-y');").as_deref(),
            Some("x-y")
        );
        assert_eq!(parse_login_sig("<html></html>"), None);
        assert_eq!(
            parse_login_sig("g_login_sig=encodeURIComponent(\"unterminated"),
            None
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,200}") {
            let _ = parse_check_vc(&text);
            let _ = parse_ptui_cb(&text);
            let _ = parse_login_sig(&text);
            let _ = parse_check_vc(&format!("ptui_checkVC({text}"));
            let _ = parse_ptui_cb(&format!("ptuiCB({text}"));
        }

        #[test]
        fn check_vc_round_trips(need in any::<bool>(), code in "\\PC{0,12}", uin in any::<u64>()) {
            let text = format_check_vc(need, &code, &uin_bytes(uin));
            let parsed = parse_check_vc(&text);
            prop_assert_eq!(parsed, Some(CheckReply { need_captcha: need, code, uin8: Some(uin_bytes(uin)) }));
        }

        #[test]
        fn ptui_cb_round_trips(
            status in 0u32..100,
            sub in "[0-9]{1}",
            url in "\\PC{0,60}",
            message in "\\PC{0,40}",
            nick in "\\PC{0,20}",
        ) {
            let cb = PtuiCb { status, sub_status: sub, url, arg4: "0".into(), message, nick };
            prop_assert_eq!(parse_ptui_cb(&format_ptui_cb(&cb)), Some(cb));
        }
    }
}
