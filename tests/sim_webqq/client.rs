//! The test client of `sim_webqq`: a browser-like WebQQ client with a
//! cookie jar the tests fully control, the ptlogin2 steps one by one, a
//! logged-in session's calls, an HTTP QQ 1.1 client for the same world,
//! the control API, and the scenario every test starts from.

use std::collections::BTreeMap;

use qqbridge::qq::http11::codec::{MsgEntry, Params, PasswordHash, Reply, ReplyBody, Request};
use qqbridge::qq::sim::{start, Scenario, SimConfig, SimHandle};
use qqbridge::qq::webqq::crypto::{encrypt_password, friend_hash, Uin8};
use qqbridge::qq::webqq::endpoints as ep;
use qqbridge::qq::webqq::json::{parse_poll, PollEvent, PollReply};
use qqbridge::qq::webqq::ptlogin::{parse_check_vc, parse_login_sig, parse_ptui_cb, PtuiCb};
use serde_json::{json, Value};

pub const ME: u64 = 1_685_359_365;
pub const ALICE: u64 = 20_002_000;
pub const BOB: u64 = 30_003_000;
pub const CAROL: u64 = 40_004_000;
pub const DAVE: u64 = 50_005_000;
pub const ECHO: u64 = 60_006_000;
pub const GROUP: u64 = 445_566;

/// webqq.md §5's cast, at 1/100 speed (a 55 s poll hold takes 0.55 s).
/// Dave is the HTTP QQ 1.1 user; Carol needs a captcha; Echo echoes.
pub fn cast(webqq: &str) -> String {
    // Sessions never idle out unless a test says otherwise.
    let idle = if webqq.contains("session_idle_s") {
        String::new()
    } else {
        "session_idle_s: 100000, ".to_owned()
    };
    format!(
        r#"
time_scale: 0.01
quirks: {{ session_idle_timeout_s: 100000, cltmsg_min_interval_s: 0, change_stat_limit: 1000 }}
webqq: {{ {idle}{webqq} }}
accounts:
  - uin: {ME}
    password: password123
    nick: Tester
    categories: [{{ index: 1, name: Classmates, friends: [{ALICE}] }}]
    marknames: {{ {BOB}: Bobby }}
  - {{ uin: {ALICE}, password: alice, nick: Alice, presence: online, profile: {{ gender: female, province: 江苏, city: 苏州, country: 中国 }} }}
  - {{ uin: {BOB}, password: bob, nick: Bob, face: 270, presence: online }}
  - {{ uin: {CAROL}, password: carol, nick: Carol, presence: online, captcha: abcd }}
  - {{ uin: {DAVE}, password: dave, nick: 大卫 }}
  - {{ uin: {ECHO}, password: echo, nick: Echo, presence: online, script: {{ echo: true }} }}
friendships: [[{ME}, {ALICE}], [{ME}, {BOB}], [{ME}, {DAVE}], [{ME}, {ECHO}], [{ALICE}, {DAVE}]]
groups:
  - number: {GROUP}
    name: Rust fans
    memo: 只谈 Rust
    owner: {ME}
    members: [{ME}, {ALICE}, {CAROL}, {DAVE}]
    cards: {{ {CAROL}: "Carol (admin)", {ALICE}: 爱丽丝 }}
"#
    )
}

pub async fn start_sim(yaml: &str) -> SimHandle {
    let scenario = Scenario::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
    start(SimConfig::new(scenario)).await.unwrap()
}

/// One HTTP reply.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub const CHANNEL_REFERER: &str = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2";

/// A browser-like client with a flat cookie jar it fully controls.
pub struct Web {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    pub referer: Option<&'static str>,
}

impl Web {
    pub fn new(sim: &SimHandle) -> Web {
        Web {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
            base: format!("http://{}", sim.protocol_addr()),
            cookies: BTreeMap::new(),
            referer: Some(CHANNEL_REFERER),
        }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Resp {
        let mut request = request;
        if let Some(referer) = self.referer {
            request = request.header("Referer", referer);
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header("Cookie", jar.join("; "));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response.bytes().await.unwrap().to_vec();
        let resp = Resp {
            status,
            headers,
            body,
        };
        for cookie in resp.set_cookies() {
            let first = cookie.split(';').next().unwrap_or("");
            if let Some((name, value)) = first.split_once('=') {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        resp
    }

    pub async fn get(&mut self, path: &str, query: &[(&str, &str)]) -> Resp {
        let request = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }
}

/// The ptlogin2 steps up to (not including) login2.
pub async fn password_step(
    web: &mut Web,
    uin: u64,
    password: &str,
    captcha: Option<&str>,
) -> PtuiCb {
    let page = web.get(ep::LOGIN_PAGE, &[("appid", ep::APPID)]).await;
    let sig = parse_login_sig(&page.text()).expect("login page carries g_login_sig");
    assert_eq!(sig.len(), 64);
    web.cookies.insert("chkuin".into(), uin.to_string());
    let uin_text = uin.to_string();
    let check = web
        .get(
            ep::CHECK,
            &[
                ("uin", &uin_text),
                ("appid", ep::APPID),
                ("js_ver", ep::JS_VER),
                ("js_type", "0"),
                ("login_sig", &sig),
                ("u1", ep::CHECK_U1),
                ("r", "0.4188294212"),
            ],
        )
        .await;
    let vc = parse_check_vc(&check.text()).expect("ptui_checkVC");
    let uin8: Uin8 = vc.uin8.expect("three arguments");
    let code = if vc.need_captcha {
        let image = web
            .get(
                ep::CAPTCHA_IMAGE,
                &[("aid", ep::APPID), ("r", "0.5"), ("uin", &uin_text)],
            )
            .await;
        assert!(image.body.starts_with(b"\x89PNG"));
        captcha.expect("a captcha was asked for").to_owned()
    } else {
        vc.code
    };
    let p = encrypt_password(password, &uin8, &code);
    login_with(web, uin, p.expose(), &code).await
}

/// Sends `login` with a given `p` and verify code.
pub async fn login_with(web: &mut Web, uin: u64, p: &str, code: &str) -> PtuiCb {
    let reply = login_raw(web, uin, p, code).await;
    parse_ptui_cb(&reply.text()).unwrap_or_else(|| panic!("not ptuiCB: {}", reply.text()))
}

/// The raw reply of `login`.
pub async fn login_raw(web: &mut Web, uin: u64, p: &str, code: &str) -> Resp {
    let uin = uin.to_string();
    let reply = web
        .get(
            ep::LOGIN,
            &[
                ("u", uin.as_str()),
                ("p", p),
                ("verifycode", code),
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
                ("action", "2-11-7438"),
                ("mibao_css", "m_webqq"),
                ("t", "1"),
                ("g", "1"),
                ("js_type", "0"),
                ("js_ver", ep::JS_VER),
                ("login_sig", ""),
            ],
        )
        .await;
    assert_eq!(
        reply.header("content-type"),
        Some("application/x-javascript; charset=utf-8")
    );
    reply
}

/// Follows the check_sig URL of a successful ptuiCB.
pub async fn follow_check_sig(web: &mut Web, cb: &PtuiCb) -> Resp {
    let url = reqwest::Url::parse(&cb.url).unwrap();
    let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    let request = web.http.get(format!("{}{path}", web.base));
    web.send(request).await
}

/// A logged-in WebQQ session.
pub struct Session {
    pub web: Web,
    pub uin: u64,
    pub clientid: String,
    pub ptwebqq: String,
    pub vfwebqq: String,
    pub psessionid: String,
}

/// POSTs login2 and returns the raw reply.
pub async fn login2(web: &mut Web, r: Value, clientid: &str) -> Resp {
    web.post(
        ep::LOGIN2,
        &[
            ("r", &r.to_string()),
            ("clientid", clientid),
            ("psessionid", "null"),
        ],
    )
    .await
}

/// The whole flow for an account without captcha.
pub async fn login(sim: &SimHandle, uin: u64, password: &str) -> Session {
    login_with_clientid(sim, uin, password, None, json!("31415926")).await
}

pub async fn login_with_clientid(
    sim: &SimHandle,
    uin: u64,
    password: &str,
    captcha: Option<&str>,
    clientid: Value,
) -> Session {
    let mut web = Web::new(sim);
    let cb = password_step(&mut web, uin, password, captcha).await;
    assert_eq!(cb.status, 0, "{cb:?}");
    assert_eq!(follow_check_sig(&mut web, &cb).await.status, 302);
    let ptwebqq = web.cookies["ptwebqq"].clone();
    let r = json!({"status":"online","ptwebqq":ptwebqq,"passwd_sig":"","clientid":clientid,"psessionid":null});
    let clientid = match &clientid {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let reply = login2(&mut web, r, &clientid).await.json();
    assert_eq!(reply["retcode"], 0, "{reply}");
    let result = &reply["result"];
    assert_eq!(result["uin"], uin);
    Session {
        uin,
        clientid,
        ptwebqq,
        vfwebqq: result["vfwebqq"].as_str().unwrap().to_owned(),
        psessionid: result["psessionid"].as_str().unwrap().to_owned(),
        web,
    }
}

impl Session {
    /// A d.web2 POST with clientid/psessionid inside `r` and next to it.
    pub async fn channel_post(&mut self, path: &str, mut r: Value) -> Resp {
        r["clientid"] = json!(self.clientid);
        r["psessionid"] = json!(self.psessionid);
        let (clientid, psessionid) = (self.clientid.clone(), self.psessionid.clone());
        self.web
            .post(
                path,
                &[
                    ("r", &r.to_string()),
                    ("clientid", &clientid),
                    ("psessionid", &psessionid),
                ],
            )
            .await
    }

    /// A d.web2 GET with clientid, psessionid and t.
    pub async fn channel_get(&mut self, path: &str, query: &[(&str, &str)]) -> Value {
        let mut query = query.to_vec();
        let (clientid, psessionid) = (self.clientid.clone(), self.psessionid.clone());
        query.push(("clientid", &clientid));
        query.push(("psessionid", &psessionid));
        query.push(("t", "1388368702000"));
        self.web.get(path, &query).await.json()
    }

    /// An s.web2 POST with vfwebqq in `r`.
    pub async fn api_post(&mut self, path: &str, mut r: Value) -> Resp {
        r["vfwebqq"] = json!(self.vfwebqq);
        self.web.post(path, &[("r", &r.to_string())]).await
    }

    /// An s.web2 GET with vfwebqq and t.
    pub async fn api_get(&mut self, path: &str, query: &[(&str, &str)]) -> Resp {
        let mut query = query.to_vec();
        let vfwebqq = self.vfwebqq.clone();
        query.push(("vfwebqq", &vfwebqq));
        query.push(("t", "1388368700123"));
        self.web.get(path, &query).await
    }

    pub async fn poll_raw(&mut self) -> Resp {
        self.channel_post(ep::POLL2, json!({"key": 0, "ids": []}))
            .await
    }

    pub async fn poll(&mut self) -> PollReply {
        parse_poll(&self.poll_raw().await.text()).unwrap()
    }

    /// Polls until `count` events came (at most 10 polls).
    pub async fn events(&mut self, count: usize) -> Vec<PollEvent> {
        let mut all = Vec::new();
        for _ in 0..10 {
            if let PollReply::Events(mut batch) = self.poll().await {
                batch.reverse(); // oldest first
                all.extend(batch);
            }
            if all.len() >= count {
                return all;
            }
        }
        panic!("only {} of {count} events: {all:?}", all.len());
    }

    /// Polls until an event matches (at most 10 polls); returns it.
    pub async fn event_where(&mut self, what: impl Fn(&PollEvent) -> bool) -> PollEvent {
        for _ in 0..10 {
            if let PollReply::Events(batch) = self.poll().await {
                if let Some(found) = batch.into_iter().rev().find(|e| what(e)) {
                    return found;
                }
            }
        }
        panic!("no such event");
    }

    pub async fn friends(&mut self) -> Value {
        let hash = friend_hash(self.uin, &self.ptwebqq);
        self.api_post(ep::GET_USER_FRIENDS2, json!({"h": "hello", "hash": hash}))
            .await
            .json()
    }

    /// Alias → real number through get_friend_uin2.
    pub async fn real(&mut self, tuin: u64, kind: u8) -> Value {
        let (tuin, kind) = (tuin.to_string(), kind.to_string());
        self.api_get(
            ep::GET_FRIEND_UIN2,
            &[
                ("tuin", &tuin),
                ("verifysession", ""),
                ("type", &kind),
                ("code", ""),
            ],
        )
        .await
        .json()
    }

    /// The alias of a friend in this session.
    pub async fn alias_of(&mut self, real: u64) -> u64 {
        let friends = self.friends().await;
        for entry in friends["result"]["friends"].as_array().unwrap() {
            let alias = entry["uin"].as_u64().unwrap();
            if self.real(alias, 1).await["result"]["account"] == real {
                return alias;
            }
        }
        panic!("{real} is not a friend");
    }

    /// (gid, code) of the test group.
    pub async fn group_ids(&mut self) -> (u64, u64) {
        let list = self
            .api_post(ep::GET_GROUP_NAME_LIST_MASK2, json!({}))
            .await
            .json();
        let group = &list["result"]["gnamelist"][0];
        (
            group["gid"].as_u64().unwrap(),
            group["code"].as_u64().unwrap(),
        )
    }

    pub async fn send(&mut self, path: &str, mut r: Value, text: &str) -> Value {
        let content =
            json!([text, ["font", {"name":"宋体","size":"10","style":[0,0,0],"color":"000000"}]]);
        r["content"] = json!(content.to_string());
        r["msg_id"] = json!(43_690_001 + rand_small());
        r["face"] = json!(564);
        self.channel_post(path, r).await.json()
    }
}

fn rand_small() -> u64 {
    u64::from(rand::random::<u16>())
}

/// The text of a received content array (font dropped, nothing cleaned).
pub fn content_text(content: &[Value]) -> String {
    content
        .iter()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) if a.first() == Some(&json!("face")) => {
                Some(format!("<face {}>", a[1]))
            }
            _ => None,
        })
        .collect()
}

/// An HTTP QQ 1.1 client over the same port.
pub struct Http11 {
    pub http: reqwest::Client,
    pub url: String,
    pub uin: u64,
    pub seq: u32,
}

impl Http11 {
    pub fn new(sim: &SimHandle, uin: u64) -> Http11 {
        Http11 {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            url: format!("http://{}/", sim.protocol_addr()),
            uin,
            seq: 100,
        }
    }

    pub async fn call(&mut self, params: Params) -> ReplyBody {
        self.seq += 1;
        let request = Request::new(self.seq.to_string(), self.uin, params);
        let body = self
            .http
            .post(&self.url)
            .body(request.encode())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        Reply::decode(&body).unwrap().body
    }

    pub async fn login(&mut self, password: &str) {
        let reply = self
            .call(Params::Login {
                password: PasswordHash::from_password(password),
                m5: Some("1".into()),
            })
            .await;
        assert!(matches!(reply, ReplyBody::Login(_)), "{reply:?}");
    }

    pub async fn messages(&mut self) -> Vec<MsgEntry> {
        match self.call(Params::GetMsgEx).await {
            ReplyBody::Messages(entries) => entries,
            other => panic!("{other:?}"),
        }
    }
}

pub async fn control(
    sim: &SimHandle,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}{path}", sim.control_addr());
    let request = match body {
        Some(body) => http.request(method.parse().unwrap(), url).json(&body),
        None => http.request(method.parse().unwrap(), url),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Another handle on the same session (same cookies and tokens).
pub fn login_clone(session: &Session) -> Session {
    Session {
        web: Web {
            http: session.web.http.clone(),
            base: session.web.base.clone(),
            cookies: session.web.cookies.clone(),
            referer: session.web.referer,
        },
        uin: session.uin,
        clientid: session.clientid.clone(),
        ptwebqq: session.ptwebqq.clone(),
        vfwebqq: session.vfwebqq.clone(),
        psessionid: session.psessionid.clone(),
    }
}
