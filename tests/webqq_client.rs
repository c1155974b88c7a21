//! The WebQQ client against an in-test fake server that answers with the
//! samples of webqq.md: the login flow (with and without captcha, wrong
//! password, wrong captcha, refusals), the session calls, a poll cycle with
//! every bridged poll_type and the retcodes 102/116/121/103, the kick, and
//! that no secret reaches the logs.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qqbridge::core::model::{ChatId, GroupNumber, Presence, RichText, Segment, Uin};
use qqbridge::qq::webqq::crypto::{encrypt_password, friend_hash, uin_bytes};
use qqbridge::qq::webqq::endpoints as ep;
use qqbridge::qq::webqq::ptlogin::{format_check_vc, format_login_page};
use qqbridge::qq::webqq::{WebqqConnector, WebqqOptions, CAPABILITIES};
use qqbridge::qq::EventReceiver;
use qqbridge::qq::{EndReason, LoginRequest, LoginStep, QqConnector, QqError, QqEvent, QqSession};
use qqbridge::secret::Secret;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

const OWN: u64 = 1_685_359_365;
const PASSWORD: &str = "password123";
const PTWEBQQ: &str = "a4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1";
const PTWEBQQ_ROTATED: &str = "9f0c77e5d2b4a1c3e8f6a7b9c0d1e2f3a4b5c6d7e8f9a0b1";
const VF: [&str; 2] = [
    "2aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53a130",
    "7bbcde228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53f00d",
];
const PSID: [&str; 2] = [
    "83680467640019636f6e6e7365727665725f77656271714031302e302e302e370000123400000abc016e0400058b74646d0000000a406b4a694738586e42456d000000282aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53a130",
    "83680467640019636f6e6e7365727665725f77656271714031302e302e302e370000123400000abc016e0400058b74646d0000000a406b4a694738586e42456d000000287bbcde228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53f00d",
];
const SKEY: &str = "@kJiG8XnBE";
const CAPTCHA_ANSWER: &str = "xkcd";
const GROUP_SIG: &str = "5d1e0c0b9f6a43d2a1c88e07f3b4aa61c0de5510f0b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0fake-captcha-jpeg";

const ALICE: (u64, u64) = (3_901_234_567, 20_002_000);
const BOB: (u64, u64) = (2_123_456_789, 30_003_000);
const CAROL: (u64, u64) = (1_999_888_777, 40_004_000);
const GROUP: (u64, u64, u64) = (1_122_334_455, 3_344_556_677, 445_566); // gid, code, number

/// One request as the fake saw it.
#[derive(Debug, Clone, Default)]
struct Req {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    form: HashMap<String, String>,
}

impl Req {
    fn r(&self) -> Value {
        self.form
            .get("r")
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null)
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let header = self.headers.get("cookie")?;
        header.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A scripted poll answer.
#[derive(Debug, Clone)]
enum PollStep {
    Body(String),
    /// Answer 116 with this ptwebqq and accept only it from now on.
    Rotate(&'static str),
    /// Answer this retcode and expire the session (only a new login helps).
    Expire(i64),
}

struct Fake {
    captcha: Mutex<bool>,
    password: Mutex<String>,
    forced_ptui: Mutex<Option<String>>,
    ptwebqq: Mutex<String>,
    /// Index into VF/PSID of the live session; `None` when expired.
    session: Mutex<Option<usize>>,
    logins: AtomicUsize,
    relinks: AtomicUsize,
    polls: Mutex<VecDeque<PollStep>>,
    poll_ready: Notify,
    send_replies: Mutex<VecDeque<String>>,
    requests: Mutex<Vec<Req>>,
}

impl Fake {
    fn new() -> Self {
        Fake {
            captcha: Mutex::new(false),
            password: Mutex::new(PASSWORD.to_owned()),
            forced_ptui: Mutex::new(None),
            ptwebqq: Mutex::new(PTWEBQQ.to_owned()),
            session: Mutex::new(None),
            logins: AtomicUsize::new(0),
            relinks: AtomicUsize::new(0),
            polls: Mutex::new(VecDeque::new()),
            poll_ready: Notify::new(),
            send_replies: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        }
    }

    fn push_poll(&self, step: PollStep) {
        self.polls.lock().unwrap().push_back(step);
        self.poll_ready.notify_waiters();
    }

    fn requests_to(&self, path: &str) -> Vec<Req> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }

    fn live(&self) -> Option<usize> {
        *self.session.lock().unwrap()
    }

    fn vf_ok(&self, req: &Req) -> bool {
        let vf = req
            .r()
            .get("vfwebqq")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| req.query.get("vfwebqq").cloned());
        self.live().is_some_and(|i| vf.as_deref() == Some(VF[i]))
    }

    fn psid_ok(&self, req: &Req) -> bool {
        let psid = req
            .form
            .get("psessionid")
            .or_else(|| req.query.get("psessionid"))
            .cloned();
        let cookie_ok =
            req.cookie("ptwebqq").as_deref() == Some(self.ptwebqq.lock().unwrap().as_str());
        cookie_ok
            && self
                .live()
                .is_some_and(|i| psid.as_deref() == Some(PSID[i]))
    }

    async fn handle(&self, req: Req) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.requests.lock().unwrap().push(req.clone());
        let text = |body: String| (200u16, Vec::new(), body.into_bytes());
        let error = |code: i64| text(json!({"retcode": code, "errmsg": ""}).to_string());
        let ok = || text(r#"{"retcode":0,"result":"ok"}"#.to_owned());
        let uin8 = uin_bytes(OWN);
        match req.path.as_str() {
            ep::LOGIN_PAGE => text(format_login_page("Abc*def-123")),
            ep::CHECK => {
                let captcha = *self.captcha.lock().unwrap();
                let body = if captcha {
                    format_check_vc(true, "cap-token", &uin8)
                } else {
                    format_check_vc(false, "!PTH", &uin8)
                };
                let cookies = vec![
                    ("Set-Cookie".into(), "ptvfsession=3c1e9a77; PATH=/; DOMAIN=qq.com;".into()),
                    ("Set-Cookie".into(), "confirmuin=0; PATH=/; DOMAIN=ptlogin2.qq.com;".into()),
                ];
                (200, cookies, body.into_bytes())
            }
            ep::CAPTCHA_IMAGE => (
                200,
                vec![("Set-Cookie".into(), "verifysession=vs-1; PATH=/; DOMAIN=qq.com;".into())],
                JPEG.to_vec(),
            ),
            ep::LOGIN => self.login(&req),
            "/check_sig" => (
                302,
                vec![
                    (
                        "Location".into(),
                        "http://web2.qq.com/loginproxy.html?login2qq=1&webqq_type=10".into(),
                    ),
                    ("Set-Cookie".into(), "p_skey=pskey-1; PATH=/; DOMAIN=web2.qq.com;".into()),
                ],
                Vec::new(),
            ),
            ep::LOGIN2 => self.login2(&req),
            ep::GET_USER_FRIENDS2 => {
                if !self.vf_ok(&req) {
                    return error(103);
                }
                let hash = friend_hash(OWN, &self.ptwebqq.lock().unwrap());
                if req.r()["hash"] != json!(hash) || req.r()["h"] != json!("hello") {
                    return text(r#"{"retcode":50}"#.to_owned());
                }
                text(FRIENDS.to_owned())
            }
            ep::GET_GROUP_NAME_LIST_MASK2 => {
                if !self.vf_ok(&req) {
                    return error(103);
                }
                text(GROUPS.to_owned())
            }
            ep::GET_GROUP_INFO_EXT2 => {
                if !self.vf_ok(&req) {
                    return error(103);
                }
                if req.query.get("gcode").map(String::as_str) != Some("3344556677") {
                    return text(r#"{"retcode":100001}"#.to_owned());
                }
                text(GROUP_INFO.to_owned())
            }
            ep::GET_FRIEND_UIN2 => {
                if !self.vf_ok(&req) {
                    return error(103);
                }
                let tuin: u64 = req.query.get("tuin").and_then(|t| t.parse().ok()).unwrap_or(0);
                let kind = req.query.get("type").cloned().unwrap_or_default();
                let account = match (kind.as_str(), tuin) {
                    ("1", t) if t == ALICE.0 => ALICE.1,
                    ("1", t) if t == BOB.0 => BOB.1,
                    ("1", t) if t == CAROL.0 => CAROL.1,
                    ("4", t) if t == GROUP.1 => GROUP.2,
                    _ => return text(r#"{"retcode":100000}"#.to_owned()),
                };
                text(json!({"retcode":0,"result":{"uiuin":"","account":account,"uin":tuin}}).to_string())
            }
            ep::POLL2 => self.poll(&req).await,
            ep::SEND_BUDDY_MSG2 | ep::SEND_QUN_MSG2 | ep::SEND_SESS_MSG2 => {
                if !self.psid_ok(&req) {
                    return error(103);
                }
                if req.path == ep::SEND_SESS_MSG2 && req.r()["group_sig"] != json!(GROUP_SIG) {
                    return error(108);
                }
                match self.send_replies.lock().unwrap().pop_front() {
                    Some(body) => text(body),
                    None => ok(),
                }
            }
            ep::GET_C2CMSG_SIG2 => {
                if !self.psid_ok(&req) || req.query.get("id").map(String::as_str) != Some("1122334455") {
                    return error(103);
                }
                text(json!({"retcode":0,"result":{"type":0,"value":GROUP_SIG,"flags":{"text":1,"pic":1,"file":1,"audio":1,"video":1}}}).to_string())
            }
            ep::CHANGE_STATUS2 | ep::LOGOUT2 => {
                if !self.psid_ok(&req) {
                    return error(103);
                }
                ok()
            }
            ep::SET_LONG_NICK2 => text(r#"{"retcode":0,"result":{"result":0}}"#.to_owned()),
            ep::ALLOW_AND_ADD2 => text(
                json!({"retcode":0,"result":{"result1":0,"account":req.r()["account"],"tuin":CAROL.0,"stat":10}})
                    .to_string(),
            ),
            ep::DENY_ADDED_REQUEST2 => text(r#"{"retcode":0,"result":{"result":0}}"#.to_owned()),
            ep::GET_MSG_TIP => text(r#"{"retcode":0,"result":{"c":0,"s":0}}"#.to_owned()),
            _ => (404, Vec::new(), b"not found".to_vec()),
        }
    }

    fn login(&self, req: &Req) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let cb = |s: &str| (200u16, Vec::new(), s.as_bytes().to_vec());
        if let Some(forced) = self.forced_ptui.lock().unwrap().clone() {
            return cb(&forced);
        }
        if req.cookie("ptvfsession").is_none() {
            return cb("ptuiCB('24','0','','0','cookies', '1685359365');");
        }
        let captcha = *self.captcha.lock().unwrap();
        let verifycode = req.query.get("verifycode").cloned().unwrap_or_default();
        let code = if captcha {
            if req.cookie("verifysession").is_none()
                || !verifycode.eq_ignore_ascii_case(CAPTCHA_ANSWER)
            {
                return cb(
                    "ptuiCB('4','0','','0','您输入的验证码不正确，请重新输入。', '1685359365');",
                );
            }
            CAPTCHA_ANSWER
        } else {
            "!PTH"
        };
        let expected = encrypt_password(&self.password.lock().unwrap(), &uin_bytes(OWN), code);
        if req.query.get("p").map(String::as_str) != Some(expected.expose()) {
            return cb(
                "ptuiCB('3','0','','0','您输入的帐号或密码不正确，请重新输入。', '1685359365');",
            );
        }
        let ptwebqq = self.ptwebqq.lock().unwrap().clone();
        let cookies = vec![
            (
                "Set-Cookie".into(),
                "uin=o1685359365; PATH=/; DOMAIN=qq.com;".into(),
            ),
            (
                "Set-Cookie".into(),
                format!("skey={SKEY}; PATH=/; DOMAIN=qq.com;"),
            ),
            (
                "Set-Cookie".into(),
                "ETK=; PATH=/; DOMAIN=ptlogin2.qq.com;".into(),
            ),
            (
                "Set-Cookie".into(),
                "ptuserinfo=546573746572; PATH=/; DOMAIN=ptlogin2.qq.com;".into(),
            ),
            (
                "Set-Cookie".into(),
                format!("ptwebqq={ptwebqq}; PATH=/; DOMAIN=qq.com;"),
            ),
        ];
        let body = "ptuiCB('0','0','http://ptlogin4.web2.qq.com/check_sig?pttype=1&uin=1685359365&service=login&nodirect=0&s_url=http%3A%2F%2Fweb2.qq.com%2Floginproxy.html&aid=1003903&daid=164','0','登录成功！', 'Tester');";
        (200, cookies, body.as_bytes().to_vec())
    }

    fn login2(&self, req: &Req) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let text = |v: Value| (200u16, Vec::new(), v.to_string().into_bytes());
        let r = req.r();
        let ptwebqq = self.ptwebqq.lock().unwrap().clone();
        if req.cookie("ptwebqq").as_deref() != Some(ptwebqq.as_str())
            || r["ptwebqq"] != json!(ptwebqq)
        {
            return text(json!({"retcode":103,"errmsg":""}));
        }
        let index = if r["psessionid"].is_null() {
            let n = self.logins.fetch_add(1, Ordering::SeqCst);
            n.min(1)
        } else {
            self.relinks.fetch_add(1, Ordering::SeqCst);
            match self.live() {
                Some(i) if r["psessionid"] == json!(PSID[i]) => i,
                _ => return text(json!({"retcode":103,"errmsg":""})),
            }
        };
        *self.session.lock().unwrap() = Some(index);
        text(
            json!({"retcode":0,"result":{"uin":OWN,"cip":3232235777u64,"index":1075,"port":43332,"status":r["status"],"vfwebqq":VF[index],"psessionid":PSID[index],"user_state":0,"f":0}}),
        )
    }

    async fn poll(&self, req: &Req) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let text = |s: String| (200u16, Vec::new(), s.into_bytes());
        if !self.psid_ok(req) {
            return text(r#"{"retcode":103,"errmsg":""}"#.to_owned());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        loop {
            let notified = self.poll_ready.notified();
            if let Some(step) = self.polls.lock().unwrap().pop_front() {
                return match step {
                    PollStep::Body(body) => text(body),
                    PollStep::Rotate(p) => {
                        *self.ptwebqq.lock().unwrap() = p.to_owned();
                        text(json!({"retcode":116,"p":p}).to_string())
                    }
                    PollStep::Expire(code) => {
                        *self.session.lock().unwrap() = None;
                        text(json!({"retcode":code,"errmsg":""}).to_string())
                    }
                };
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return text(r#"{"retcode":102,"errmsg":""}"#.to_owned());
            }
        }
    }
}

const FRIENDS: &str = r#"{"retcode":0,"result":{
  "friends":[{"flag":4,"uin":3901234567,"categories":1},{"flag":0,"uin":2123456789,"categories":0}],
  "marknames":[{"uin":2123456789,"markname":"Bobby"}],
  "categories":[{"index":1,"sort":1,"name":"Classmates"}],
  "vipinfo":[{"vip_level":0,"u":3901234567,"is_vip":0},{"vip_level":3,"u":2123456789,"is_vip":1}],
  "info":[{"face":0,"flag":25707010,"nick":"Alice","uin":3901234567},{"face":270,"flag":8389126,"nick":"Bob","uin":2123456789}]}}"#;

const GROUPS: &str = r#"{"retcode":0,"result":{"gmasklist":[],"gnamelist":[{"flag":1090519041,"name":"Rust fans","gid":1122334455,"code":3344556677}],"gmarklist":[]}}"#;

const GROUP_INFO: &str = r#"{"retcode":0,"result":{
  "stats":[{"client_type":1,"uin":3901234567,"stat":10},{"client_type":41,"uin":1685359365,"stat":10}],
  "minfo":[{"nick":"Alice","province":"江苏","gender":"female","uin":3901234567,"country":"中国","city":"苏州"},
           {"nick":"Carol","province":"","gender":"female","uin":1999888777,"country":"","city":""},
           {"nick":"Tester","province":"广东","gender":"male","uin":1685359365,"country":"中国","city":"深圳"}],
  "ginfo":{"face":0,"memo":"","class":10048,"fingermemo":"","code":3344556677,"createtime":1388307595,"flag":1090519041,
           "level":0,"name":"Rust fans","gid":1122334455,"owner":1685359365,
           "members":[{"muin":3901234567,"mflag":21},{"muin":1999888777,"mflag":0},{"muin":1685359365,"mflag":20}],"option":1},
  "cards":[{"muin":1999888777,"card":"Carol (admin)"}],
  "vipinfo":[{"vip_level":0,"u":3901234567,"is_vip":0},{"vip_level":0,"u":1999888777,"is_vip":0},{"vip_level":0,"u":1685359365,"is_vip":0}]}}"#;

// ---------------------------------------------------------------- HTTP glue

fn parse_pairs(text: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{text}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

async fn read_request(stream: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Req {
        method,
        path: path.to_owned(),
        query: parse_pairs(query),
        form: parse_pairs(&String::from_utf8_lossy(&body)),
        headers,
    })
}

async fn serve(fake: Arc<Fake>, listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let fake = fake.clone();
        tokio::spawn(async move {
            let Some(req) = read_request(&mut stream).await else {
                return;
            };
            let (status, headers, body) = fake.handle(req).await;
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                if status == 200 { "OK" } else { "Other" },
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        });
    }
}

async fn start_fake() -> (Arc<Fake>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = Arc::new(Fake::new());
    tokio::spawn(serve(fake.clone(), listener));
    (fake, base)
}

fn fast_options() -> WebqqOptions {
    WebqqOptions {
        heartbeat_interval: Duration::from_millis(100),
        poll_failures_before_relink: 3,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        ..WebqqOptions::default()
    }
}

fn request(password: &str) -> LoginRequest {
    LoginRequest {
        uin: Uin(OWN),
        password: Secret::new(password),
        presence: Presence::Online,
        resume: false,
    }
}

async fn login(base: &str, options: WebqqOptions) -> (Arc<dyn QqSession>, EventReceiver) {
    let (tx, rx) = mpsc::channel(64);
    let connector = WebqqConnector::with_options(base, options);
    match connector.login(request(PASSWORD), tx).await {
        Ok(LoginStep::Done(session)) => (session, rx),
        Ok(LoginStep::NeedCaptcha { .. }) => panic!("unexpected captcha"),
        Err(e) => panic!("login failed: {e}"),
    }
}

async fn next_event(rx: &mut EventReceiver) -> QqEvent {
    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        Ok(Some(event)) => *event,
        Ok(None) => panic!("the event channel closed"),
        Err(_) => panic!("no event within 10 s"),
    }
}

fn poll_body(events: Value) -> PollStep {
    PollStep::Body(json!({"retcode":0,"result":events}).to_string())
}

fn text_of(event: &QqEvent) -> String {
    match event {
        QqEvent::Message { text, .. } => {
            qqbridge::core::text::render_plain(text, Default::default())
        }
        _ => String::new(),
    }
}

// -------------------------------------------------------------------- tests

#[tokio::test]
async fn login_without_captcha_follows_the_documented_flow() {
    let (fake, base) = start_fake().await;
    let (session, mut rx) = login(&base, fast_options()).await;

    assert_eq!(
        &fake.paths()[..5],
        &[
            ep::LOGIN_PAGE,
            ep::CHECK,
            ep::LOGIN,
            "/check_sig",
            ep::LOGIN2
        ]
    );
    let check = &fake.requests_to(ep::CHECK)[0];
    assert_eq!(check.method, "GET");
    assert_eq!(check.header("referer"), Some(ep::REFERER_CHECK));
    assert_eq!(check.cookie("chkuin").as_deref(), Some("1685359365"));
    assert_eq!(check.query["appid"], "1003903");
    assert_eq!(check.query["login_sig"], "Abc*def-123");
    assert!(check
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("Mozilla/5.0")));

    let login_req = &fake.requests_to(ep::LOGIN)[0];
    assert_eq!(login_req.query["p"], "6B336642C524AB0FE9F08E3D46195C50");
    assert_eq!(login_req.query["verifycode"], "!PTH");
    assert_eq!(login_req.query["u"], "1685359365");
    assert_eq!(login_req.query["daid"], "164");
    assert_eq!(login_req.query["fp"], "loginerroralert");
    assert_eq!(login_req.header("referer"), Some(ep::REFERER_LOGIN));
    assert!(login_req.cookie("ptvfsession").is_some());

    let check_sig = &fake.requests_to("/check_sig")[0];
    assert_eq!(check_sig.query["uin"], "1685359365");
    assert_eq!(
        check_sig.query["s_url"],
        "http://web2.qq.com/loginproxy.html"
    );

    let login2 = &fake.requests_to(ep::LOGIN2)[0];
    let r = login2.r();
    assert_eq!(login2.method, "POST");
    assert_eq!(r["ptwebqq"], json!(PTWEBQQ));
    assert_eq!(r["status"], json!("online"));
    assert_eq!(r["passwd_sig"], json!(""));
    assert!(r["psessionid"].is_null());
    assert_eq!(login2.form["psessionid"], "null");
    let clientid = r["clientid"].as_str().unwrap_or_default().to_owned();
    assert_eq!(clientid.len(), 8);
    assert!(clientid.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(login2.form["clientid"], clientid);
    assert_eq!(login2.cookie("ptwebqq").as_deref(), Some(PTWEBQQ));
    assert_eq!(login2.cookie("skey").as_deref(), Some(SKEY));
    assert_eq!(login2.header("origin"), Some(ep::ORIGIN_D));
    assert_eq!(login2.header("referer"), Some(ep::REFERER_D_PROXY_2));

    assert_eq!(session.uin(), Uin(OWN));
    assert_eq!(session.own_nick().as_deref(), Some("Tester"));
    assert_eq!(session.capabilities(), CAPABILITIES);

    let contacts = session.contacts().await.expect("contacts");
    let friends_req = &fake.requests_to(ep::GET_USER_FRIENDS2)[0];
    assert_eq!(friends_req.r()["hash"], json!("07215B3751C4064E"));
    assert_eq!(friends_req.r()["vfwebqq"], json!(VF[0]));
    assert_eq!(friends_req.header("referer"), Some(ep::REFERER_S_PROXY_3));
    assert_eq!(contacts.len(), 2);
    let alice = contacts
        .iter()
        .find(|c| c.uin == Uin(ALICE.1))
        .expect("Alice");
    assert_eq!(alice.nick, "Alice");
    assert_eq!(alice.category.as_deref(), Some("Classmates"));
    let bob = contacts.iter().find(|c| c.uin == Uin(BOB.1)).expect("Bob");
    assert_eq!(bob.mark_name.as_deref(), Some("Bobby"));
    assert_eq!(bob.face, 270);
    assert_eq!(bob.category.as_deref(), Some("我的好友"));

    let groups = session.groups().await.expect("groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].number, GroupNumber(GROUP.2));
    assert_eq!(groups[0].name, "Rust fans");
    let members: Vec<(u64, &str, Option<&str>)> = groups[0]
        .members
        .iter()
        .map(|m| (m.uin.0, m.nick.as_str(), m.card.as_deref()))
        .collect();
    assert_eq!(
        members,
        vec![
            (ALICE.1, "Alice", None),
            (CAROL.1, "Carol", Some("Carol (admin)")),
            (OWN, "Tester", None)
        ]
    );
    let group_lookup = fake
        .requests_to(ep::GET_FRIEND_UIN2)
        .into_iter()
        .find(|r| r.query["type"] == "4")
        .expect("a type-4 lookup");
    assert_eq!(group_lookup.query["tuin"], "3344556677");
    assert!(fake
        .requests_to(ep::GET_FRIEND_UIN2)
        .iter()
        .all(|r| r.query["tuin"] != OWN.to_string()));
    // Presence from the group's online list.
    let contacts = session.contacts().await.expect("contacts");
    assert_eq!(
        contacts
            .iter()
            .find(|c| c.uin == Uin(ALICE.1))
            .map(|c| c.presence),
        Some(Presence::Online)
    );
    let profile = session.profile(Uin(ALICE.1)).await.expect("profile");
    assert_eq!(profile.nick, "Alice");
    assert_eq!(profile.province.as_deref(), Some("江苏"));
    assert_eq!(profile.gender.as_deref(), Some("female"));
    assert!(matches!(
        session.profile(Uin(99)).await,
        Err(QqError::UnknownContact(_))
    ));

    session.logout().await.expect("logout");
    assert_eq!(fake.requests_to(ep::LOGOUT2).len(), 1);
    loop {
        match next_event(&mut rx).await {
            QqEvent::SessionEnded(reason) => {
                assert_eq!(reason, EndReason::LoggedOut);
                break;
            }
            QqEvent::Presence { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .ok()
        .flatten()
        .is_none());
    assert_eq!(
        session
            .send(&ChatId::Buddy(Uin(ALICE.1)), &RichText::plain("x"))
            .await,
        Err(QqError::SessionEnded)
    );
}

#[tokio::test]
async fn login_with_captcha_and_a_wrong_answer() {
    let (fake, base) = start_fake().await;
    *fake.captcha.lock().unwrap() = true;
    let connector = WebqqConnector::with_options(&base, fast_options());

    let (tx, _rx) = mpsc::channel(16);
    let Ok(LoginStep::NeedCaptcha { image, pending }) =
        connector.login(request(PASSWORD), tx).await
    else {
        panic!("expected a captcha");
    };
    assert_eq!(image, JPEG);
    let image_req = &fake.requests_to(ep::CAPTCHA_IMAGE)[0];
    assert_eq!(image_req.query["aid"], "1003903");
    assert_eq!(image_req.query["uin"], "1685359365");
    assert!(matches!(
        pending.submit_captcha("nope".into()).await,
        Err(QqError::BadCaptcha)
    ));
    assert!(fake.requests_to(ep::LOGIN2).is_empty());

    let (tx, mut rx) = mpsc::channel(16);
    let Ok(LoginStep::NeedCaptcha { pending, .. }) = connector.login(request(PASSWORD), tx).await
    else {
        panic!("expected a captcha");
    };
    let Ok(LoginStep::Done(session)) = pending.submit_captcha(" XKCD ".into()).await else {
        panic!("the right answer logs in");
    };
    let login_req = fake.requests_to(ep::LOGIN).pop().expect("login request");
    assert_eq!(login_req.query["verifycode"], "xkcd");
    assert_eq!(login_req.query["p"], "ECD521E61680F58172848A3CCFA9FF0A");
    assert_eq!(
        login_req.header("referer"),
        Some(ep::REFERER_LOGIN_AFTER_CAPTCHA)
    );
    assert!(login_req.cookie("verifysession").is_some());
    assert_eq!(session.uin(), Uin(OWN));
    session.logout().await.expect("logout");
    assert_eq!(
        next_event(&mut rx).await,
        QqEvent::SessionEnded(EndReason::LoggedOut)
    );
}

#[tokio::test]
async fn wrong_password_and_other_refusals() {
    let (fake, base) = start_fake().await;
    let connector = WebqqConnector::with_options(&base, fast_options());
    let (tx, _rx) = mpsc::channel(16);
    assert!(matches!(
        connector.login(request("wrong"), tx).await,
        Err(QqError::BadCredentials)
    ));
    assert!(fake.requests_to(ep::LOGIN2).is_empty());

    *fake.forced_ptui.lock().unwrap() =
        Some("ptuiCB('8','0','','0','您的IP登录过于频繁', '1685359365');".to_owned());
    let (tx, _rx) = mpsc::channel(16);
    match connector.login(request(PASSWORD), tx).await {
        Err(QqError::LoginRefused(text)) => {
            assert!(text.contains("频繁") && text.contains("8"), "{text}")
        }
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("unexpected success"),
    }

    // 7 restarts at check, then gives up.
    *fake.forced_ptui.lock().unwrap() =
        Some("ptuiCB('7','0','','0','网络连接异常', '1');".to_owned());
    let before = fake.requests_to(ep::CHECK).len();
    let (tx, _rx) = mpsc::channel(16);
    assert!(matches!(
        connector.login(request(PASSWORD), tx).await,
        Err(QqError::LoginRefused(_))
    ));
    assert_eq!(fake.requests_to(ep::CHECK).len() - before, 3);

    *fake.forced_ptui.lock().unwrap() = Some("garbage".to_owned());
    let (tx, _rx) = mpsc::channel(16);
    assert!(matches!(
        connector.login(request(PASSWORD), tx).await,
        Err(QqError::Protocol(_))
    ));

    let (tx, _rx) = mpsc::channel(16);
    let nowhere = WebqqConnector::new("http://127.0.0.1:9");
    assert!(matches!(
        nowhere.login(request(PASSWORD), tx).await,
        Err(QqError::Unreachable(_))
    ));
}

#[tokio::test]
async fn poll_cycle_with_every_poll_type_and_retcode() {
    let (fake, base) = start_fake().await;
    let (session, mut rx) = login(&base, fast_options()).await;
    let font = json!(["font", {"size":10,"color":"000000","style":[0,0,0],"name":"宋体"}]);
    let buddy = json!({"poll_type":"message","value":{"msg_id":24225,"from_uin":ALICE.0,"to_uin":OWN,"msg_id2":950054,"msg_type":9,"reply_ip":176498455,"time":1388368696,"content":[font.clone(),"hii "]}});

    fake.push_poll(PollStep::Body(r#"{"retcode":102,"errmsg":""}"#.into()));
    // Newest first: the group message is newer than Alice's.
    fake.push_poll(poll_body(json!([
        {"poll_type":"group_message","value":{"msg_id":13663,"from_uin":GROUP.0,"to_uin":OWN,"msg_id2":886022,"msg_type":43,"reply_ip":176756826,"group_code":GROUP.1,"send_uin":CAROL.0,"seq":27,"time":1388368698,"info_seq":GROUP.2,"content":[["font",{"size":13,"color":"004faa","style":[0,0,0],"name":"STKaiti"}],"ooo "]}},
        buddy.clone()
    ])));
    let first = next_event(&mut rx).await;
    assert_eq!(
        first,
        QqEvent::Message {
            chat: ChatId::Buddy(Uin(ALICE.1)),
            sender: Uin(ALICE.1),
            sender_name: None,
            text: RichText::plain("hii"),
            remote_id: Some("950054".into()),
        }
    );
    let second = next_event(&mut rx).await;
    assert_eq!(
        second,
        QqEvent::Message {
            chat: ChatId::Group(GroupNumber(GROUP.2)),
            sender: Uin(CAROL.1),
            sender_name: Some("Carol (admin)".into()),
            text: RichText::plain("ooo"),
            remote_id: Some("886022".into()),
        }
    );

    // A re-delivered message is dropped; a status change goes through.
    fake.push_poll(poll_body(json!([
        {"poll_type":"buddies_status_change","value":{"uin":BOB.0,"status":"away","client_type":1}},
        buddy
    ])));
    assert_eq!(
        next_event(&mut rx).await,
        QqEvent::Presence {
            uin: Uin(BOB.1),
            presence: Presence::Away
        }
    );

    // 116 rotates ptwebqq: cookie, hash and later calls use the new value.
    fake.push_poll(PollStep::Rotate(PTWEBQQ_ROTATED));
    fake.push_poll(PollStep::Body(String::new()));
    fake.push_poll(PollStep::Body(r#"{"retcode":0,"result":"ok"}"#.into()));
    fake.push_poll(poll_body(json!([
        {"poll_type":"input_notify","value":{"msg_id":1,"from_uin":ALICE.0,"to_uin":OWN,"msg_id2":2,"msg_type":121,"reply_ip":4294967295u64}},
        {"poll_type":"system_message","value":{"seq":63433,"type":"verify_required","uiuin":"","from_uin":CAROL.0,"account":CAROL.1,"msg":"hi, add me?","allow":1,"stat":10,"client_type":1}},
        {"poll_type":"future_thing","value":{"x":1}}
    ])));
    assert_eq!(
        next_event(&mut rx).await,
        QqEvent::FriendRequest {
            uin: Uin(CAROL.1),
            message: "hi, add me?".into()
        }
    );
    let contacts = session
        .contacts()
        .await
        .expect("the hash uses the rotated ptwebqq");
    assert_eq!(contacts.len(), 2);
    let friends_req = fake
        .requests_to(ep::GET_USER_FRIENDS2)
        .pop()
        .expect("friends");
    assert_eq!(
        friends_req.r()["hash"],
        json!(friend_hash(OWN, PTWEBQQ_ROTATED))
    );
    assert_eq!(
        friends_req.cookie("ptwebqq").as_deref(),
        Some(PTWEBQQ_ROTATED)
    );

    // A temporary-session message through the group.
    fake.push_poll(poll_body(json!([
        {"poll_type":"sess_message","value":{"msg_id":5,"from_uin":CAROL.0,"to_uin":OWN,"msg_id2":6,"msg_type":140,"reply_ip":1,"time":3,"id":GROUP.0,"ruin":CAROL.1,"service_type":0,"flags":{"text":1,"pic":1,"file":1,"audio":1,"video":1},"content":[font.clone(),"psst",["face",14]," "]}}
    ])));
    let sess = next_event(&mut rx).await;
    assert_eq!(
        sess,
        QqEvent::Message {
            chat: ChatId::Session {
                via_group: GroupNumber(GROUP.2),
                uin: Uin(CAROL.1)
            },
            sender: Uin(CAROL.1),
            sender_name: Some("Carol (admin)".into()),
            text: RichText {
                segments: vec![
                    Segment::Text {
                        text: "psst".into()
                    },
                    Segment::Face { id: 14 }
                ],
                action: false
            },
            remote_id: Some("6".into()),
        }
    );

    // A group message without info_seq: the number comes from type 4.
    fake.push_poll(poll_body(json!([
        {"poll_type":"group_message","value":{"msg_id":7,"from_uin":GROUP.0,"to_uin":OWN,"msg_id2":8,"msg_type":43,"reply_ip":1,"group_code":GROUP.1,"send_uin":ALICE.0,"seq":28,"time":1,"content":[font.clone(),"line1\rline2 "]}}
    ])));
    let group_msg = next_event(&mut rx).await;
    assert!(
        matches!(&group_msg, QqEvent::Message { chat: ChatId::Group(GroupNumber(n)), sender: Uin(s), .. } if *n == GROUP.2 && *s == ALICE.1)
    );
    assert_eq!(text_of(&group_msg), "line1\nline2");

    // 121: relink with the current psessionid.
    fake.push_poll(PollStep::Body(r#"{"retcode":121,"t":"0"}"#.into()));
    assert!(matches!(
        next_event(&mut rx).await,
        QqEvent::Reconnecting { .. }
    ));
    assert_eq!(next_event(&mut rx).await, QqEvent::Reconnected);
    let relink = fake.requests_to(ep::LOGIN2).pop().expect("relink");
    assert_eq!(relink.r()["psessionid"], json!(PSID[0]));
    assert_eq!(relink.r()["ptwebqq"], json!(PTWEBQQ_ROTATED));
    assert_eq!(fake.relinks.load(Ordering::SeqCst), 1);

    // 103: the session is gone; a full login from check.
    let checks_before = fake.requests_to(ep::CHECK).len();
    fake.push_poll(PollStep::Expire(103));
    assert!(matches!(
        next_event(&mut rx).await,
        QqEvent::Reconnecting { .. }
    ));
    assert_eq!(next_event(&mut rx).await, QqEvent::Reconnected);
    assert_eq!(fake.requests_to(ep::CHECK).len(), checks_before + 1);
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    assert_eq!(fake.live(), Some(1));
    let contacts = session
        .contacts()
        .await
        .expect("contacts with the new vfwebqq");
    assert_eq!(contacts.len(), 2);

    // The heartbeat runs beside the poll.
    for _ in 0..100 {
        if !fake.requests_to(ep::GET_MSG_TIP).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tip = &fake.requests_to(ep::GET_MSG_TIP)[0];
    assert_eq!(tip.query["tp"], "1");
    assert_eq!(tip.query["rc"], "1");
    assert_eq!(tip.header("referer"), Some(ep::REFERER_WEB2));

    // Buddy list changes, then the kick ends the session.
    fake.push_poll(poll_body(json!([
        {"poll_type":"kick_message","value":{"msg_id":9,"from_uin":10000,"to_uin":OWN,"msg_id2":10,"msg_type":48,"reply_ip":0,"show_reason":1,"reason":"您的帐号在另一地点登录，您已被迫下线。"}},
        {"poll_type":"buddylist_change","value":{"added_friends":[{"groupid":0,"uin":CAROL.0}],"removed_friends":[]}}
    ])));
    assert_eq!(next_event(&mut rx).await, QqEvent::ContactsChanged);
    assert_eq!(
        next_event(&mut rx).await,
        QqEvent::SessionEnded(EndReason::Kicked(
            "您的帐号在另一地点登录，您已被迫下线。".into()
        ))
    );
    assert!(tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .ok()
        .flatten()
        .is_none());
}

#[tokio::test]
async fn relogin_with_a_changed_password_ends_the_session() {
    let (fake, base) = start_fake().await;
    let (_session, mut rx) = login(&base, fast_options()).await;
    *fake.password.lock().unwrap() = "changed".to_owned();
    fake.push_poll(PollStep::Expire(108));
    assert!(matches!(
        next_event(&mut rx).await,
        QqEvent::Reconnecting { .. }
    ));
    assert!(matches!(
        next_event(&mut rx).await,
        QqEvent::SessionEnded(EndReason::LoginFailed(_))
    ));
    assert!(tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .ok()
        .flatten()
        .is_none());
}

#[tokio::test]
async fn sending_to_buddies_groups_and_temporary_sessions() {
    let (fake, base) = start_fake().await;
    let options = WebqqOptions {
        max_message_bytes: 40,
        ..fast_options()
    };
    let (session, _rx) = login(&base, options).await;

    let hi = RichText {
        segments: vec![
            Segment::Text { text: "hi ".into() },
            Segment::Face { id: 14 },
        ],
        action: false,
    };
    session
        .send(&ChatId::Buddy(Uin(ALICE.1)), &hi)
        .await
        .expect("buddy send");
    let sent = fake
        .requests_to(ep::SEND_BUDDY_MSG2)
        .pop()
        .expect("send_buddy_msg2");
    let r = sent.r();
    assert_eq!(r["to"], json!(ALICE.0));
    assert_eq!(r["face"], json!(564));
    assert_eq!(
        r["content"],
        json!(
            r#"["hi ",["face",14],["font",{"name":"宋体","size":"10","style":[0,0,0],"color":"000000"}]]"#
        )
    );
    assert_eq!(r["psessionid"], json!(PSID[0]));
    assert_eq!(sent.form["psessionid"], PSID[0]);
    assert_eq!(
        sent.form["clientid"],
        r["clientid"].as_str().unwrap_or_default()
    );
    assert_eq!(sent.header("referer"), Some(ep::REFERER_S_PROXY_3));
    assert_eq!(sent.header("origin"), Some(ep::ORIGIN_D));
    let first_id = r["msg_id"].as_u64().expect("msg_id");

    session
        .send(
            &ChatId::Group(GroupNumber(GROUP.2)),
            &RichText::plain("hello group"),
        )
        .await
        .expect("group send");
    let qun = fake
        .requests_to(ep::SEND_QUN_MSG2)
        .pop()
        .expect("send_qun_msg2")
        .r();
    assert_eq!(qun["group_uin"], json!(GROUP.0));
    assert_eq!(qun["msg_id"], json!(first_id + 1));

    let sess_chat = ChatId::Session {
        via_group: GroupNumber(GROUP.2),
        uin: Uin(CAROL.1),
    };
    session
        .send(&sess_chat, &RichText::plain("hi Carol"))
        .await
        .expect("sess send");
    session
        .send(&sess_chat, &RichText::plain("again"))
        .await
        .expect("sess send");
    let sigs = fake.requests_to(ep::GET_C2CMSG_SIG2);
    assert_eq!(sigs.len(), 1, "the signature is cached");
    assert_eq!(sigs[0].query["id"], "1122334455");
    assert_eq!(sigs[0].query["to_uin"], CAROL.0.to_string());
    assert_eq!(sigs[0].query["service_type"], "0");
    let sess = fake.requests_to(ep::SEND_SESS_MSG2);
    assert_eq!(sess.len(), 2);
    assert_eq!(sess[0].r()["to"], json!(CAROL.0));
    assert_eq!(sess[0].r()["group_sig"], json!(GROUP_SIG));
    assert_eq!(sess[0].r()["service_type"], json!(0));
    assert_eq!(sess[1].r()["msg_id"], json!(first_id + 3));

    // Long text is split to the limit; the pieces join back.
    let long = "一二三四五六七八九十 ".repeat(6);
    session
        .send(&ChatId::Buddy(Uin(BOB.1)), &RichText::plain(long.clone()))
        .await
        .expect("long send");
    let pieces: Vec<String> = fake
        .requests_to(ep::SEND_BUDDY_MSG2)
        .iter()
        .filter(|r| r.r()["to"] == json!(BOB.0))
        .map(|r| {
            let inner: Value =
                serde_json::from_str(r.r()["content"].as_str().unwrap_or("[]")).unwrap_or_default();
            inner[0].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(pieces.len() > 1);
    assert!(pieces.iter().all(|p| p.len() <= 40));
    assert_eq!(pieces.concat(), long);

    // Only {"retcode":0,"result":"ok"} counts as sent.
    fake.send_replies
        .lock()
        .unwrap()
        .push_back(r#"{"retcode":0,"result":"maybe"}"#.into());
    assert!(matches!(
        session
            .send(&ChatId::Buddy(Uin(ALICE.1)), &RichText::plain("x"))
            .await,
        Err(QqError::Protocol(_))
    ));
    fake.send_replies
        .lock()
        .unwrap()
        .push_back(r#"{"retcode":1202,"errmsg":""}"#.into());
    assert!(matches!(
        session
            .send(&ChatId::Buddy(Uin(ALICE.1)), &RichText::plain("x"))
            .await,
        Err(QqError::Refused(_))
    ));
    fake.send_replies
        .lock()
        .unwrap()
        .push_back(r#"{"retcode":108,"errmsg":""}"#.into());
    assert_eq!(
        session
            .send(&ChatId::Buddy(Uin(ALICE.1)), &RichText::plain("x"))
            .await,
        Err(QqError::NotLoggedIn)
    );
    assert!(matches!(
        session
            .send(&ChatId::Buddy(Uin(12345)), &RichText::plain("x"))
            .await,
        Err(QqError::UnknownContact(_))
    ));
    assert!(matches!(
        session
            .send(&ChatId::Group(GroupNumber(1)), &RichText::plain("x"))
            .await,
        Err(QqError::UnknownContact(_))
    ));
    let before = fake.requests_to(ep::SEND_BUDDY_MSG2).len();
    session
        .send(&ChatId::Buddy(Uin(ALICE.1)), &RichText::plain(""))
        .await
        .expect("nothing to send");
    assert_eq!(fake.requests_to(ep::SEND_BUDDY_MSG2).len(), before);

    // The other session calls.
    session
        .set_presence(Presence::Away)
        .await
        .expect("presence");
    assert_eq!(
        fake.requests_to(ep::CHANGE_STATUS2)[0].query["newstatus"],
        "away"
    );
    session
        .set_presence(Presence::Invisible)
        .await
        .expect("presence");
    assert_eq!(
        fake.requests_to(ep::CHANGE_STATUS2)[1].query["newstatus"],
        "hidden"
    );
    session
        .set_signature("new signature text")
        .await
        .expect("signature");
    let nick = &fake.requests_to(ep::SET_LONG_NICK2)[0];
    assert_eq!(nick.r()["nlk"], json!("new signature text"));
    assert_eq!(nick.header("referer"), Some(ep::REFERER_S_PROXY_1));
    session
        .answer_request(Uin(CAROL.1), true, "")
        .await
        .expect("accept");
    let allow = fake.requests_to(ep::ALLOW_AND_ADD2)[0].r();
    assert_eq!(
        (allow["account"].clone(), allow["gid"].clone()),
        (json!(CAROL.1), json!(0))
    );
    session
        .answer_request(Uin(CAROL.1), false, "no thanks")
        .await
        .expect("refuse");
    assert_eq!(
        fake.requests_to(ep::DENY_ADDED_REQUEST2)[0].r()["msg"],
        json!("no thanks")
    );
    assert!(matches!(
        session.add_buddy(Uin(1), "hi").await,
        Err(QqError::Unsupported(_))
    ));
    assert!(matches!(
        session.remove_buddy(Uin(1)).await,
        Err(QqError::Unsupported(_))
    ));
    assert!(matches!(
        session.search(&Default::default()).await,
        Err(QqError::Unsupported(_))
    ));
    session.logout().await.expect("logout");
}

/// Captures every tracing line of the current thread.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_reaches_the_logs_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (fake, base) = start_fake().await;
    let (session, mut rx) = login(&base, fast_options()).await;
    let mut errors = Vec::new();
    session.contacts().await.expect("contacts");
    session.groups().await.expect("groups");
    fake.push_poll(PollStep::Rotate(PTWEBQQ_ROTATED));
    fake.push_poll(PollStep::Body(r#"{"retcode":121,"t":"0"}"#.into()));
    assert!(matches!(
        next_event(&mut rx).await,
        QqEvent::Reconnecting { .. }
    ));
    assert_eq!(next_event(&mut rx).await, QqEvent::Reconnected);
    let sess_chat = ChatId::Session {
        via_group: GroupNumber(GROUP.2),
        uin: Uin(CAROL.1),
    };
    session
        .send(&sess_chat, &RichText::plain("hi"))
        .await
        .expect("sess send");
    fake.send_replies
        .lock()
        .unwrap()
        .push_back(r#"{"retcode":103,"errmsg":""}"#.into());
    errors.push(session.send(&sess_chat, &RichText::plain("x")).await);
    fake.push_poll(PollStep::Expire(103));
    assert!(matches!(
        next_event(&mut rx).await,
        QqEvent::Reconnecting { .. }
    ));
    assert_eq!(next_event(&mut rx).await, QqEvent::Reconnected);
    session.logout().await.expect("logout");

    let (tx, _rx) = mpsc::channel(4);
    let connector = WebqqConnector::with_options(&base, fast_options());
    errors.push(
        connector
            .login(request("wrong-password"), tx)
            .await
            .map(|_| ()),
    );
    let (tx, _rx) = mpsc::channel(4);
    errors.push(
        WebqqConnector::new("http://127.0.0.1:9")
            .login(request(PASSWORD), tx)
            .await
            .map(|_| ()),
    );

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    let error_texts: String = errors.iter().map(|e| format!("{e:?} ")).collect();
    assert!(logs.contains("WebQQ login"), "logs were captured: {logs}");
    for secret in [
        PASSWORD,
        "wrong-password",
        PTWEBQQ,
        PTWEBQQ_ROTATED,
        VF[0],
        VF[1],
        PSID[0],
        PSID[1],
        SKEY,
        GROUP_SIG,
        "6B336642C524AB0FE9F08E3D46195C50",
    ] {
        assert!(
            !logs.contains(secret),
            "a secret reached the logs: {secret}"
        );
        assert!(
            !error_texts.contains(secret),
            "a secret reached an error: {secret}"
        );
    }
}
