//! Conformance of the QQ simulator's HTTP QQ 1.1 side with
//! shared/protocol/http11.md, over real TCP: the worked session of §9 byte
//! for byte, every NULL trigger, sessions, the friend-request handshake,
//! status broadcasts, penalties, expiry, the quirk flags and the control API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use qqbridge::qq::http11::codec::{
    http_request, parse_http_replies, AckCode, AddToListCode, AddToListReply, DenyCode, Gender,
    InfoReply, ListReply, LoginReply, MsgEntry, Params, PasswordHash, QueryStatReply, Reply,
    ReplyBody, Request, RequestShape, Status, Zodiac,
};
use qqbridge::qq::sim::{start, Scenario, SimConfig, SimError, SimHandle};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::Instant;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LC: &str = "9326B87B234E7235";
const HEAD: &str = "HTTP/1.1 200 OK\r\nServer: tencent imserver/1.0.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: ";

/// The accounts of http11.md §9 (10001000 / `secret`, Alice, Bob).
const WORKED_EXAMPLE: &str = r#"
quirks: { login_cmd_echo: LOGIN, query_stat_include_self: false }
accounts:
  - { uin: 10001000, password: secret, nick: Me }
  - { uin: 20002000, password: alice, nick: Alice, face: 0, presence: online }
  - { uin: 30003000, password: bob, nick: Bob, face: 270, presence: online }
friendships: [[10001000, 20002000], [10001000, 30003000]]
"#;

/// Accounts with the three add policies (10002 verify, 10003 deny, 10004
/// open) and 10001's friend 10005, at 1/1000 speed: a 20 s penalty takes
/// 20 ms. Sessions and the double-send window stay long (100 s).
fn policies(extra_quirks: &str) -> String {
    format!(
        r#"
time_scale: 0.001
quirks: {{ session_idle_timeout_s: 100000, ack_double_send_window_s: 100000, {extra_quirks} }}
accounts:
  - {{ uin: 10001, password: a, nick: 甲 }}
  - {{ uin: 10002, password: b, nick: 乙, add_policy: verify }}
  - {{ uin: 10003, password: c, nick: 丙, add_policy: deny }}
  - {{ uin: 10004, password: d, nick: 丁, add_policy: open, presence: online }}
  - {{ uin: 10005, password: e, nick: 戊, presence: offline }}
friendships: [[10001, 10005]]
"#
    )
}

async fn start_sim(yaml: &str) -> SimHandle {
    let scenario = Scenario::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
    start(SimConfig::new(scenario)).await.unwrap()
}

/// Writes `bytes` from local address `ip` and reads until the server closes.
async fn exchange_from(ip: IpAddr, addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip, 0)).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .expect("the server neither answered nor closed")
        .unwrap();
    out
}

async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    exchange_from(LOCAL, addr, bytes).await
}

/// A standard `POST / HTTP/1.1` request for `body`.
fn post(body: &str) -> Vec<u8> {
    http_request(body, "tqq.tencent.com:8000", RequestShape::Standard)
}

/// A request whose body is raw bytes (e.g. not UTF-8).
fn raw_post(body: &[u8]) -> Vec<u8> {
    [
        format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
        body,
    ]
    .concat()
}

/// The exact bytes of one reply with `body`.
fn framed(body: &str) -> String {
    format!("{HEAD}{}\r\n\r\n{body}", body.len())
}

async fn body_of(addr: SocketAddr, body: &str) -> String {
    let raw = exchange(addr, &post(body)).await;
    let replies = parse_http_replies(&raw).unwrap();
    assert_eq!(replies.len(), 1, "{}", String::from_utf8_lossy(&raw));
    String::from_utf8(replies[0].body.clone()).unwrap()
}

/// A typed client for one account from one address.
struct Qq {
    addr: SocketAddr,
    ip: IpAddr,
    uin: u64,
    seq: u32,
}

impl Qq {
    fn new(sim: &SimHandle, uin: u64) -> Qq {
        Qq {
            addr: sim.protocol_addr(),
            ip: LOCAL,
            uin,
            seq: 1000,
        }
    }

    fn connecting_from(mut self, ip: IpAddr) -> Qq {
        self.ip = ip;
        self
    }

    /// Sends a request; `None` is NULL (no bytes at all).
    async fn call(&mut self, params: Params) -> Option<Reply> {
        self.seq += 1;
        let request = Request::new(self.seq.to_string(), self.uin, params);
        let raw = exchange_from(self.ip, self.addr, &post(&request.encode())).await;
        let replies = parse_http_replies(&raw).unwrap();
        let first = replies.first()?;
        let reply = Reply::decode(&first.body).unwrap();
        assert_eq!((reply.cmd, reply.uin), (request.cmd(), self.uin));
        assert_eq!(reply.seq, self.seq.to_string());
        Some(reply)
    }

    async fn body(&mut self, params: Params) -> ReplyBody {
        self.call(params)
            .await
            .expect("NULL where a reply was expected")
            .body
    }

    async fn login(&mut self, password: &str) -> ReplyBody {
        let password = PasswordHash::from_password(password);
        self.body(Params::Login {
            password,
            m5: Some("1".into()),
        })
        .await
    }

    async fn login_ok(&mut self, password: &str) {
        let reply = self.login(password).await;
        assert!(
            matches!(
                reply,
                ReplyBody::Login(LoginReply::Success {
                    heartbeat_s: 60,
                    ..
                })
            ),
            "{reply:?}"
        );
    }

    async fn messages(&mut self) -> Vec<MsgEntry> {
        match self.body(Params::GetMsgEx).await {
            ReplyBody::Messages(entries) => entries,
            other => panic!("GetMsgEx answered {other:?}"),
        }
    }

    async fn online(&mut self) -> Vec<(u64, Status)> {
        match self
            .body(Params::QueryStat {
                tn: Some(50),
                un: Some(0),
            })
            .await
        {
            ReplyBody::QueryStat(QueryStatReply::Online(list)) => {
                list.into_iter().map(|f| (f.uin, f.status)).collect()
            }
            other => panic!("Query_Stat answered {other:?}"),
        }
    }

    async fn friends(&mut self) -> Vec<u64> {
        match self
            .body(Params::List {
                tn: Some(160),
                un: Some(0),
            })
            .await
        {
            ReplyBody::List(ListReply::Friends(list)) => list,
            other => panic!("List answered {other:?}"),
        }
    }
}

/// Calls the control API.
async fn control(sim: &SimHandle, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = exchange(sim.control_addr(), request.as_bytes()).await;
    let replies = parse_http_replies(&raw).unwrap();
    let reply = replies
        .first()
        .expect("control API closed without answering");
    (
        reply.status,
        serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
    )
}

/// `(from, kind, text-or-presence)` of everything `uin` received.
async fn received(sim: &SimHandle, uin: u64) -> Vec<(u64, String, String)> {
    let (status, events) = control(sim, "GET", &format!("/received/{uin}"), None).await;
    assert_eq!(status, 200);
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let detail = e
                .get("text")
                .or_else(|| e.get("presence"))
                .and_then(Value::as_str);
            (
                e["from"].as_u64().unwrap(),
                e["kind"].as_str().unwrap().to_owned(),
                detail.unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits (bounded) until `condition` holds; the simulator acts on its own.
async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "condition never became true");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn worked_example_session_byte_for_byte() {
    let sim = start_sim(WORKED_EXAMPLE).await;
    let addr = sim.protocol_addr();

    // 1. Login
    let login = "VER=1.1&CMD=Login&SEQ=4821&UIN=10001000&PS=5ebe2294ecd0e0f08eab7690d2a6ee69&M5=1&LC=9326B87B234E7235";
    let request = format!("POST / HTTP/1.1\r\nHost: tqq.tencent.com:8000\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{login}");
    let reply = exchange(addr, request.as_bytes()).await;
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        format!("{HEAD}63\r\n\r\nVER=1.1&CMD=LOGIN&SEQ=4821&UIN=10001000&RES=0&RS=0&HI=60&LI=300")
    );
    for friend in [20002000, 30003000] {
        assert_eq!(
            received(&sim, friend).await,
            [(10001000, "status".into(), "online".into())]
        );
    }
    // Meanwhile Alice writes and Bob turns busy.
    let (status, _) = control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": 20002000, "to": 10001000, "text": "hello"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = control(
        &sim,
        "POST",
        "/status",
        Some(json!({"uin": 30003000, "status": "busy"})),
    )
    .await;
    assert_eq!(status, 200);

    // 2. List, 3. Query_Stat with TN=50
    assert_eq!(
        body_of(addr, "VER=1.1&CMD=List&SEQ=4822&UIN=10001000&TN=160&UN=0").await,
        "VER=1.1&CMD=LIST&SEQ=4822&UIN=10001000&RES=0&FN=1&SN=2&UN=20002000,30003000,"
    );
    assert_eq!(
        body_of(addr, "VER=1.1&CMD=Query_Stat&SEQ=4823&UIN=10001000&TN=50&UN=0").await,
        "VER=1.1&CMD=QUERY_STAT&SEQ=4823&UIN=10001000&RES=0&FC=0,270,&FN=1&SN=2&ST=10,30,&UN=20002000,30003000,&NK=Alice,Bob,"
    );
    // 4. GetMsgEx
    let raw = exchange(addr, &post("VER=1.1&CMD=GetMsgEx&SEQ=4824&UIN=10001000")).await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        framed("VER=1.1&CMD=GETMSGEX&SEQ=4824&UIN=10001000&RES=0&MN=2&MT=9,99,&UN=20002000,30003000,&MG=hello ,30,")
    );
    // 5. CLTMSG to Alice, raw UTF-8 text with a space
    let raw = exchange(
        addr,
        &post("VER=1.1&CMD=CLTMSG&SEQ=4825&UIN=10001000&UN=20002000&MG=hi there"),
    )
    .await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        framed("VER=1.1&CMD=CLTMSG&SEQ=4825&UIN=10001000&RES=0&")
    );
    // 6. Idle poll
    let raw = exchange(addr, &post("VER=1.1&CMD=GetMsgEx&SEQ=4826&UIN=10001000")).await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        framed("VER=1.1&CMD=GETMSGEX&SEQ=4826&UIN=10001000&RES=0&MN=0&MT=&UN=&MG=")
    );
    // 7. Query_Stat without TN, sent exactly like the PHP probe.
    let probe = b"POST HTTP/1.1\r\nContent-length: 44\r\nConnection: close\r\n\r\nVER=1.1&CMD=Query_Stat&SEQ=4827&UIN=10001000\r\n\r\n";
    let raw = exchange(addr, probe).await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        format!(
            "{}\r\n{}",
            framed("VER=1.1&CMD=QUERY_STAT&SEQ=4827&UIN=10001000&RES=0&FN=2"),
            framed("VER=1.1&CMD=QUERY_STAT&SEQ=4827&UIN=10001000&RES=0&FC=&FN=1&SN=0&ST=&UN=&NK=")
        )
    );
    // 8. Logout
    let raw = exchange(addr, &post("VER=1.1&CMD=Logout&SEQ=4828&UIN=10001000")).await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        framed("VER=1.1&CMD=LOGOUT&SEQ=4828&UIN=10001000&RES=0")
    );
    let alice = received(&sim, 20002000).await;
    assert_eq!(
        alice.last(),
        Some(&(10001000, "status".into(), "offline".into()))
    );
    assert!(alice.contains(&(10001000, "message".into(), "hi there".into())));
    // 9. After logout
    let raw = exchange(addr, &post("VER=1.1&CMD=List&SEQ=4829&UIN=10001000")).await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        framed("VER=1.1&CMD=LIST&SEQ=4829&UIN=10001000&RES=20")
    );
    // 10. Malformed request: no bytes at all.
    assert!(exchange(addr, &post("VER=1.1&CMD=List&SEQ=1&UIN=abc"))
        .await
        .is_empty());

    // Alice logs in and reads her queue: the space after user text is the server's.
    let mut alice = Qq::new(&sim, 20002000).connecting_from(OTHER_IP);
    assert!(matches!(
        alice.login("alice").await,
        ReplyBody::Login(LoginReply::Success { .. })
    ));
    let raw = exchange_from(
        OTHER_IP,
        addr,
        &post("VER=1.1&CMD=GetMsgEx&SEQ=7&UIN=20002000"),
    )
    .await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        framed("VER=1.1&CMD=GETMSGEX&SEQ=7&UIN=20002000&RES=0&MN=3&MT=99,9,99,&UN=10001000,10001000,10001000,&MG=10,hi there ,20,")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn every_null_trigger_closes_without_a_byte() {
    let sim = start_sim(&policies("")).await;
    let addr = sim.protocol_addr();
    let mut me = Qq::new(&sim, 10001);
    // Not logged in yet: malformed requests still get NULL, not RES=20.
    let triggers: Vec<Vec<u8>> = [
        "VER=1.3&CMD=List&SEQ=1&UIN=10001",
        "VER=&CMD=List&SEQ=1&UIN=10001",
        "VER=1.1&CMD=List&SEQ=1&UIN=10001x",
        "VER=1.1&CMD=GetMsgEx&SEQ=1&UIN=",
        "VER=1.1&CMD=Logout&SEQ=1&UIN=abc",
        "VER=1.1&CMD=List&SEQ=1&UIN=10001&TN=160&UN=x",
        "VER=1.1&CMD=List&SEQ=1&UIN=10001&TN=1x",
        "VER=1.1&CMD=Query_Stat&SEQ=1&UIN=10001&TN=x&UN=0",
        "VER=1.1&CMD=GetInfo&SEQ=1&UIN=10001&LV=x&UN=10002",
        "VER=1.1&CMD=GetInfo&SEQ=1&UIN=10001&LV=1&UN=y",
        "VER=1.1&CMD=AddToList&SEQ=1&UIN=10001&UN=z",
        "VER=1.1&CMD=Ack_AddToList&SEQ=1&UIN=10001&UN=10002&CD=x&RS=hi",
        "VER=1.1&CMD=DelFromList&SEQ=1&UIN=10001&UN=-1",
        "VER=1.1&CMD=CLTMSG&SEQ=1&UIN=10001&UN=a&MG=hi",
        "VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS=&M5=1&LC=9326B87B234E7235",
        "VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS=0cc175b9c0f1b6a831c399e269772661&M6=1&LC=1223423545756679",
        "VER=1.1&CMD=Change_Stat&SEQ=1&UIN=10001&ST=50",
        "VER=1.1&CMD=Fly&SEQ=1&UIN=10001",
        "garbage",
    ]
    .iter()
    .map(|body| post(body))
    .chain([
        post("VER=1.1&CMD=Ack_AddToList&SEQ=1&UIN=10001&UN=10002&CD=0&RS=%FF%FE"),
        post(""),
        raw_post(b"VER=1.1&CMD=CLTMSG&SEQ=1&UIN=10001&UN=1&MG=\xff\xfe\xfd\xfc"),
        // GET is not supported.
        b"GET / HTTP/1.1\r\nHost: tqq.tencent.com:8000\r\n\r\n".to_vec(),
    ])
    .collect();
    for request in &triggers {
        assert!(
            exchange(addr, request).await.is_empty(),
            "answered: {}",
            String::from_utf8_lossy(request)
        );
    }
    // The same holds once logged in, e.g. for every illegal status code.
    me.login_ok("a").await;
    for st in (0..=60)
        .step_by(5)
        .filter(|st| ![10, 20, 30, 40].contains(st))
    {
        let body = format!("VER=1.1&CMD=Change_Stat&SEQ=1&UIN=10001&ST={st}");
        assert!(
            exchange(addr, &post(&body)).await.is_empty(),
            "ST={st} answered"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn null_variants_are_configurable() {
    let sim = start_sim(
        "quirks: { null_mode: empty_200, null_on_lowercase_h: 1.0 }\naccounts: [{ uin: 10001, password: a, nick: a }]\n",
    )
    .await;
    let addr = sim.protocol_addr();
    assert_eq!(
        String::from_utf8(exchange(addr, &post("VER=9&CMD=List&SEQ=1&UIN=1")).await).unwrap(),
        framed("")
    );
    let mut me = Qq::new(&sim, 10001);
    me.login_ok("a").await;
    // The 'h' quirk (here with probability 1) comes before anything else.
    assert_eq!(
        String::from_utf8(
            exchange(
                addr,
                &post("VER=1.1&CMD=CLTMSG&SEQ=1&UIN=10001&UN=10001&MG=hush")
            )
            .await
        )
        .unwrap(),
        framed("")
    );
    assert_eq!(
        me.body(Params::CltMsg {
            to: 10001,
            text: "HUSH".into()
        })
        .await,
        ReplyBody::Done
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn login_results_and_the_session_check() {
    let sim = start_sim(&policies("")).await;
    let mut me = Qq::new(&sim, 10001);
    // Before login: RES=20 for everything but Login and Logout.
    let commands = [
        Params::List {
            tn: Some(160),
            un: Some(0),
        },
        Params::QueryStat { tn: None, un: None },
        Params::GetInfo {
            level: 2,
            target: 10002,
        },
        Params::AddToList { target: 10002 },
        Params::AckAddToList {
            target: 10002,
            code: AckCode::Request,
            text: "hi".into(),
        },
        Params::DelFromList { target: 10005 },
        Params::ChangeStat {
            status: Status::Busy,
        },
        Params::GetMsgEx,
        Params::CltMsg {
            to: 10002,
            text: "hi".into(),
        },
        Params::Finger {
            age: None,
            gender: None,
            province: None,
        },
    ];
    for params in &commands {
        assert_eq!(
            me.body(params.clone()).await,
            ReplyBody::NotLoggedIn,
            "{params:?}"
        );
    }
    // Logout always succeeds.
    assert_eq!(me.body(Params::Logout).await, ReplyBody::Done);
    // Illegal numbers, unknown accounts, wrong passwords.
    for uin in [100, 9999] {
        assert_eq!(Qq::new(&sim, uin).login("x").await, ReplyBody::IllegalUin);
    }
    assert_eq!(
        Qq::new(&sim, 99999).login("x").await,
        ReplyBody::Login(LoginReply::Failure {
            reason: "登录失败".into()
        })
    );
    assert_eq!(
        me.login("wrong").await,
        ReplyBody::Login(LoginReply::Failure {
            reason: "密码错误".into()
        })
    );
    // Default echo is `Login`; VER 1.0 and 1.2 are served and answered as 1.1.
    let body = format!(
        "VER=1.0&CMD=Login&SEQ=5&UIN=10001&PS={}&M5=1&LC={LC}",
        PasswordHash::from_password("a").expose()
    );
    assert_eq!(
        body_of(sim.protocol_addr(), &body).await,
        "VER=1.1&CMD=Login&SEQ=5&UIN=10001&RES=0&RS=0&HI=60&LI=100000"
    );
    assert_eq!(
        body_of(sim.protocol_addr(), "VER=1.2&CMD=list&SEQ=6&UIN=10001").await,
        "VER=1.1&CMD=LIST&SEQ=6&UIN=10001&RES=0&FN=1"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sessions_are_keyed_by_ip_and_uin() {
    let sim = start_sim(&policies("")).await;
    let mut me = Qq::new(&sim, 10001);
    let mut same_uin_elsewhere = Qq::new(&sim, 10001).connecting_from(OTHER_IP);
    let mut other_uin = Qq::new(&sim, 10005);
    me.login_ok("a").await;
    assert_eq!(
        same_uin_elsewhere.body(Params::GetMsgEx).await,
        ReplyBody::NotLoggedIn
    );
    // A logout from another address ends nothing.
    assert_eq!(
        same_uin_elsewhere.body(Params::Logout).await,
        ReplyBody::Done
    );
    assert!(matches!(
        me.body(Params::GetMsgEx).await,
        ReplyBody::Messages(_)
    ));
    // Two numbers from one address are independent.
    other_uin.login_ok("e").await;
    assert_eq!(other_uin.body(Params::Logout).await, ReplyBody::Done);
    assert!(matches!(
        me.body(Params::GetMsgEx).await,
        ReplyBody::Messages(_)
    ));
    assert_eq!(
        other_uin.body(Params::GetMsgEx).await,
        ReplyBody::NotLoggedIn
    );
    // Default: a second login replaces the first, wherever it comes from.
    same_uin_elsewhere.login_ok("a").await;
    assert_eq!(me.body(Params::GetMsgEx).await, ReplyBody::NotLoggedIn);
    sim.shutdown().await;

    let strict = start_sim("quirks: { relogin_while_online: strict }\naccounts: [{ uin: 10001, password: a, nick: a }]\n").await;
    let mut first = Qq::new(&strict, 10001);
    first.login_ok("a").await;
    assert!(matches!(
        Qq::new(&strict, 10001)
            .connecting_from(OTHER_IP)
            .login("a")
            .await,
        ReplyBody::Login(LoginReply::Failure { .. })
    ));
    assert_eq!(first.body(Params::Logout).await, ReplyBody::Done);
    Qq::new(&strict, 10001)
        .connecting_from(OTHER_IP)
        .login_ok("a")
        .await;
    strict.shutdown().await;
}

#[tokio::test]
async fn friend_requests_verify_open_and_deny() {
    let sim = start_sim(&policies("")).await;
    let (mut me, mut verifier) = (
        Qq::new(&sim, 10001),
        Qq::new(&sim, 10002).connecting_from(OTHER_IP),
    );
    me.login_ok("a").await;
    verifier.login_ok("b").await;

    // Open: added at once (one way), CD=0.
    let add = |target, code| ReplyBody::AddToList(AddToListReply { code, target });
    assert_eq!(
        me.body(Params::AddToList { target: 10004 }).await,
        add(10004, AddToListCode::Added)
    );
    assert_eq!(me.friends().await, [10005, 10004]);
    // Deny: CD=3 by default, nothing changes; a request to it is refused.
    assert_eq!(
        me.body(Params::AddToList { target: 10003 }).await,
        add(10003, AddToListCode::Refused(DenyCode::Three))
    );
    // Verify: CD=1, then the double send of Ack_AddToList CD=2.
    assert_eq!(
        me.body(Params::AddToList { target: 10002 }).await,
        add(10002, AddToListCode::NeedsVerification)
    );
    let request = |text: &str| Params::AckAddToList {
        target: 10002,
        code: AckCode::Request,
        text: text.into(),
    };
    // Sent concurrently: one half is refused (late) and dropped, one delivered.
    let mut twin = Qq::new(&sim, 10001);
    let (first, second) = tokio::join!(
        me.body(request("我是甲, 加我吧")),
        twin.body(request("我是甲, 加我吧!"))
    );
    let delivered = match (first, second) {
        (ReplyBody::Refused, ReplyBody::Done) => "我是甲, 加我吧!",
        (ReplyBody::Done, ReplyBody::Refused) => "我是甲, 加我吧",
        other => panic!("double send answered {other:?}"),
    };
    let entries = verifier.messages().await;
    assert_eq!(
        entries,
        [MsgEntry::FriendRequest {
            from: 10001,
            text: delivered.into()
        }]
    );
    // The verifier accepts: both lists gain each other, the requester gets MT=3.
    let accept = Params::AckAddToList {
        target: 10001,
        code: AckCode::Accept,
        text: String::new(),
    };
    assert_eq!(verifier.body(accept.clone()).await, ReplyBody::Done);
    assert!(me.messages().await.contains(&MsgEntry::Accepted {
        from: 10002,
        text: String::new()
    }));
    assert_eq!(me.friends().await, [10005, 10004, 10002]);
    assert_eq!(verifier.friends().await, [10001]);
    // Nothing left to accept: RES=3.
    assert_eq!(verifier.body(accept).await, ReplyBody::Refused);
    // Refusal path: 10005 asks 10002 (sent via the control API), 10002 refuses.
    let (status, _) = control(
        &sim,
        "POST",
        "/friend_request",
        Some(json!({"from": 10005, "to": 10002, "message": "hi"})),
    )
    .await;
    assert_eq!(status, 200);
    let reject = Params::AckAddToList {
        target: 10005,
        code: AckCode::Reject,
        text: "不认识你".into(),
    };
    assert_eq!(verifier.body(reject).await, ReplyBody::Done);
    assert!(received(&sim, 10005).await.contains(&(
        10002,
        "friend_refused".into(),
        "不认识你".into()
    )));
    // Invalid CD and requests to a deny account: RES=3.
    let invalid = Params::AckAddToList {
        target: 10002,
        code: AckCode::Other(5),
        text: "TEST".into(),
    };
    assert_eq!(me.body(invalid).await, ReplyBody::Refused);
    sim.shutdown().await;

    // [001]'s deny code and a single send when the double send is off.
    let sim = start_sim(&policies("addtolist_deny_code: 2, ack_double_send: false")).await;
    let mut me = Qq::new(&sim, 10001);
    me.login_ok("a").await;
    assert_eq!(
        me.body(Params::AddToList { target: 10003 }).await,
        add(10003, AddToListCode::Refused(DenyCode::Two))
    );
    assert_eq!(me.body(request("once")).await, ReplyBody::Done);
    assert_eq!(
        received(&sim, 10002).await,
        [(10001, "friend_request".into(), "once".into())]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn status_changes_are_broadcast_and_invisible_is_offline() {
    let sim = start_sim(&policies("").replace("presence: offline", "presence: online")).await;
    let (mut me, mut friend) = (
        Qq::new(&sim, 10001),
        Qq::new(&sim, 10005).connecting_from(OTHER_IP),
    );
    friend.login_ok("e").await;
    me.login_ok("a").await;
    assert_eq!(
        friend.messages().await,
        [MsgEntry::Status {
            from: 10001,
            status: Status::Online
        }]
    );
    // Query_Stat lists visible friends and, by default, the requester itself.
    assert_eq!(
        me.online().await,
        [(10005, Status::Online), (10001, Status::Online)]
    );
    for (st, seen) in [
        (Status::Busy, Status::Busy),
        (Status::Invisible, Status::Offline),
        (Status::Online, Status::Online),
    ] {
        assert_eq!(
            me.body(Params::ChangeStat { status: st }).await,
            ReplyBody::Done
        );
        assert_eq!(
            friend.messages().await,
            [MsgEntry::Status {
                from: 10001,
                status: seen
            }]
        );
    }
    // An invisible friend is not listed.
    assert_eq!(
        friend
            .body(Params::ChangeStat {
                status: Status::Invisible
            })
            .await,
        ReplyBody::Done
    );
    assert_eq!(me.online().await, [(10001, Status::Online)]);
    // ST=20 keeps the session alive while looking offline.
    let mut third = Qq::new(&sim, 10002);
    third.login_ok("b").await;
    assert_eq!(
        third
            .body(Params::ChangeStat {
                status: Status::Offline
            })
            .await,
        ReplyBody::Done
    );
    assert_eq!(third.messages().await, []);
    // Logout broadcasts 20.
    assert_eq!(me.body(Params::Logout).await, ReplyBody::Done);
    assert_eq!(
        friend.messages().await,
        [MsgEntry::Status {
            from: 10001,
            status: Status::Offline
        }]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn penalties_answer_res3_after_the_scaled_delay() {
    // Windows long enough that back-to-back requests always fall inside them.
    let sim = start_sim(
        r#"
time_scale: 0.001
quirks: { cltmsg_min_interval_s: 60000, change_stat_window_s: 60000, session_idle_timeout_s: 100000 }
accounts:
  - { uin: 10001, password: a, nick: a }
  - { uin: 10002, password: b, nick: b }
friendships: [[10001, 10002]]
"#,
    )
    .await;
    let scale = sim.time_scale();
    let mut me = Qq::new(&sim, 10001);
    me.login_ok("a").await;

    let send = || Params::CltMsg {
        to: 10002,
        text: "too fast".into(),
    };
    assert_eq!(me.body(send()).await, ReplyBody::Done);
    let started = Instant::now();
    assert_eq!(me.body(send()).await, ReplyBody::Refused);
    assert!(started.elapsed() >= scale.secs(20.0));
    assert_eq!(
        received(&sim, 10002).await,
        [(10001, "message".into(), "too fast".into())]
    );

    for _ in 0..3 {
        assert_eq!(
            me.body(Params::ChangeStat {
                status: Status::Busy
            })
            .await,
            ReplyBody::Done
        );
    }
    let started = Instant::now();
    assert_eq!(
        me.body(Params::ChangeStat {
            status: Status::Online
        })
        .await,
        ReplyBody::Refused
    );
    assert!(started.elapsed() >= scale.secs(20.0));

    assert_eq!(
        me.body(Params::DelFromList { target: 10002 }).await,
        ReplyBody::Done
    );
    let started = Instant::now();
    let raw = exchange(
        sim.protocol_addr(),
        &post("VER=1.1&CMD=DelFromList&SEQ=9&UIN=10001&UN=10002"),
    )
    .await;
    assert!(started.elapsed() >= scale.secs(30.0));
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        framed("VER=1.1&CMD=DelFromList&SEQ=9&UIN=10001&RES=3")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_held_res3_does_not_block_other_requests() {
    // Real timing: the penalty reply is held for 20 s while others go on.
    let sim = start_sim(
        "accounts: [{ uin: 10001, password: a, nick: a }, { uin: 10002, password: b, nick: b }]\n",
    )
    .await;
    let mut me = Qq::new(&sim, 10001);
    me.login_ok("a").await;
    let invalid = Params::AckAddToList {
        target: 10002,
        code: AckCode::Other(3),
        text: String::new(),
    };
    let mut waiting = Qq::new(&sim, 10001);
    let held = tokio::spawn(async move { waiting.body(invalid).await });
    for _ in 0..3 {
        assert!(matches!(
            me.body(Params::GetMsgEx).await,
            ReplyBody::Messages(_)
        ));
    }
    assert!(!held.is_finished());
    held.abort();
    sim.shutdown().await;
}

#[tokio::test]
async fn idle_sessions_expire_and_polling_keeps_them() {
    let sim = start_sim(
        r#"
time_scale: 0.001
accounts:
  - { uin: 10001, password: a, nick: a }
  - { uin: 10002, password: b, nick: b, presence: online }
friendships: [[10001, 10002]]
"#,
    )
    .await;
    let mut me = Qq::new(&sim, 10001);
    me.login_ok("a").await;
    let world = sim.world().clone();
    eventually(|| world.session(10001).is_none()).await;
    assert_eq!(me.body(Params::GetMsgEx).await, ReplyBody::NotLoggedIn);
    assert_eq!(
        received(&sim, 10002).await,
        [
            (10001, "status".into(), "online".into()),
            (10001, "status".into(), "offline".into())
        ]
    );
    sim.shutdown().await;

    // LI=300 s at 1/100: 3 s. Polling every 100 ms keeps the session.
    let sim =
        start_sim("time_scale: 0.01\naccounts: [{ uin: 10001, password: a, nick: a }]\n").await;
    let mut me = Qq::new(&sim, 10001);
    me.login_ok("a").await;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert!(matches!(
            me.body(Params::GetMsgEx).await,
            ReplyBody::Messages(_)
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn seed_003_profile_and_other_spellings() {
    let sim = start_sim(
        r#"
quirks: { trailing_amp_profile: "003", sysmsg_trailing_space: true, emit_comp: true, double_reply_separator: "" }
accounts:
  - { uin: 29501213, password: p, nick: "鶹鸑", face: 270 }
  - { uin: 24259132, password: q, nick: 微程, face: 270, presence: online }
friendships: [[29501213, 24259132]]
"#,
    )
    .await;
    let addr = sim.protocol_addr();
    let login = format!(
        "VER=1.1&CMD=Login&SEQ=11281&UIN=29501213&PS={}&M5=1&LC={LC}",
        PasswordHash::from_password("p").expose()
    );
    assert_eq!(
        body_of(addr, &login).await,
        "VER=1.1&CMD=Login&SEQ=11281&UIN=29501213&RES=0&RS=0&HI=60&LI=300&COMP=NOKIA8F3A18D6E27"
    );
    assert_eq!(
        body_of(addr, "VER=1.1&CMD=Query_Stat&SEQ=-1&UIN=29501213&TN=50&UN=0").await,
        "VER=1.1&CMD=QUERY_STAT&SEQ=-1&UIN=29501213&RES=0&FC=270,270,&FN=1&SN=2&ST=10,10,&UN=24259132,29501213,&NK=微程,鶹鸑,&"
    );
    let raw = exchange(addr, &post("VER=1.1&CMD=Query_Stat&SEQ=2&UIN=29501213")).await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        format!(
            "{}{}",
            framed("VER=1.1&CMD=QUERY_STAT&SEQ=2&UIN=29501213&RES=0&FN=2"),
            framed("VER=1.1&CMD=QUERY_STAT&SEQ=2&UIN=29501213&RES=0&FC=&FN=1&SN=0&ST=&UN=&NK=&")
        )
    );
    control(
        &sim,
        "POST",
        "/status",
        Some(json!({"uin": 24259132, "status": "busy"})),
    )
    .await;
    control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": 24259132, "to": 29501213, "text": "asdf,asdf"})),
    )
    .await;
    assert_eq!(
        body_of(addr, "VER=1.1&CMD=GetMsgEx&SEQ=56661&UIN=29501213").await,
        "VER=1.1&CMD=GETMSGEX&SEQ=56661&UIN=29501213&RES=0&MN=2&MT=99,9,&UN=24259132,24259132,&MG=30 ,asdf%252casdf ,&"
    );
    assert_eq!(
        body_of(
            addr,
            "VER=1.1&CMD=CLTMSG&SEQ=15803&UIN=29501213&UN=24259132&MG=x"
        )
        .await,
        "VER=1.1&CMD=CLTMSG&SEQ=15803&UIN=29501213&RES=0"
    );
    assert_eq!(
        body_of(addr, "VER=1.1&CMD=Change_Stat&SEQ=17512&UIN=29501213&ST=10").await,
        "VER=1.1&CMD=Change_Stat&SEQ=17512&UIN=29501213&RES=0&"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn demo_world_profiles_echo_and_finger() {
    let sim = start(SimConfig::new(Scenario::demo())).await.unwrap();
    let mut me = Qq::new(&sim, 10001);
    me.login_ok("demo").await;
    assert_eq!(me.friends().await, [10002, 10003, 10004]);
    assert_eq!(
        me.online().await,
        [
            (10002, Status::Online),
            (10003, Status::Busy),
            (10004, Status::Online),
            (10001, Status::Online)
        ]
    );
    // Chinese nicknames and free text survive byte for byte.
    let raw = body_of(
        sim.protocol_addr(),
        "VER=1.1&CMD=Query_Stat&SEQ=1&UIN=10001&TN=50&UN=0",
    )
    .await;
    assert!(
        raw.ends_with("&NK=微程,Hackfan 好,小企鹅,演示用户,"),
        "{raw}"
    );
    let detailed = me
        .body(Params::GetInfo {
            level: 3,
            target: 10002,
        })
        .await;
    let ReplyBody::GetInfo(info) = detailed else {
        panic!("{detailed:?}")
    };
    let InfoReply::Detailed { info, extras, .. } = *info else {
        panic!("not detailed")
    };
    assert_eq!(info.intro, "网络为媒,关系为本,信息为财,客户为主.\r\n");
    assert_eq!(extras.zodiac, Zodiac::Dog);
    let brief = body_of(
        sim.protocol_addr(),
        "VER=1.1&CMD=GetInfo&SEQ=2&UIN=10001&LV=0&UN=10003",
    )
    .await;
    assert_eq!(
        brief,
        "VER=1.1&CMD=GETINFO&SEQ=2&UIN=10001&RES=0&LV=0&UN=10003&NK=Hackfan 好"
    );
    let normal = body_of(
        sim.protocol_addr(),
        "VER=1.1&CMD=GetInfo&SEQ=3&UIN=10001&LV=2&UN=10002",
    )
    .await;
    assert!(
        normal.contains("&PR=网络为媒%252c关系为本%252c信息为财%252c客户为主.%0d%0a&"),
        "{normal}"
    );
    // Unknown account: NULL.
    assert!(me
        .call(Params::GetInfo {
            level: 2,
            target: 55555
        })
        .await
        .is_none());
    // The echo bot answers with the same text, commas and all.
    assert_eq!(
        me.body(Params::CltMsg {
            to: 10004,
            text: "你好, 小企鹅 & 100%".into()
        })
        .await,
        ReplyBody::Done
    );
    assert!(me.messages().await.contains(&MsgEntry::User {
        from: 10004,
        text: "你好, 小企鹅 & 100%".into()
    }));
    // Finger (1.0 list): by gender and province.
    let found = me
        .body(Params::Finger {
            age: None,
            gender: Some(Gender::Male),
            province: Some("江苏".into()),
        })
        .await;
    let ReplyBody::Finger(entries) = found else {
        panic!("{found:?}")
    };
    assert_eq!(
        entries.iter().map(|e| (e.uin, e.age)).collect::<Vec<_>>(),
        [(10003, 19)]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stranger_messages_can_be_hidden() {
    let sim = start_sim(&policies("hide_stranger_messages: true")).await;
    let (mut me, mut stranger) = (
        Qq::new(&sim, 10001),
        Qq::new(&sim, 10002).connecting_from(OTHER_IP),
    );
    me.login_ok("a").await;
    stranger.login_ok("b").await;
    assert_eq!(
        stranger
            .body(Params::CltMsg {
                to: 10001,
                text: "ad".into()
            })
            .await,
        ReplyBody::Done
    );
    assert_eq!(me.messages().await, []);
    // Once 10001 has written to 10002, 10002's messages are shown.
    assert_eq!(
        me.body(Params::CltMsg {
            to: 10002,
            text: "who?".into()
        })
        .await,
        ReplyBody::Done
    );
    tokio::time::sleep(sim.time_scale().secs(2.0)).await; // Past 10002's CLTMSG interval.
    assert_eq!(
        stranger
            .body(Params::CltMsg {
                to: 10001,
                text: "me".into()
            })
            .await,
        ReplyBody::Done
    );
    assert_eq!(
        me.messages().await,
        [MsgEntry::User {
            from: 10002,
            text: "me".into()
        }]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_http_front_end_is_tolerant_but_bounded() {
    let sim = start_sim(&policies("")).await;
    let addr = sim.protocol_addr();
    let body = "VER=1.1&CMD=Logout&SEQ=1&UIN=10001";
    let expected = framed("VER=1.1&CMD=LOGOUT&SEQ=1&UIN=10001&RES=0");
    // Bare LF line endings, odd header case, a query string, trailing bytes.
    let loose = format!(
        "POST /?x=1 HTTP/1.0\nCONTENT-LENGTH: {}\nX-Other: 1\n\n{body}GARBAGE",
        body.len()
    );
    assert_eq!(
        String::from_utf8(exchange(addr, loose.as_bytes()).await).unwrap(),
        expected
    );
    // A request written in small pieces.
    let request = post(body);
    let socket = TcpSocket::new_v4().unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    for piece in request.chunks(7) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    // No Content-Length, a huge body, a broken request line: closed.
    for bad in [
        format!("POST / HTTP/1.1\r\n\r\n{body}"),
        "POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n".to_owned(),
        format!(
            "POST / HTTP/1.1 x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{body}"),
    ] {
        assert!(exchange(addr, bad.as_bytes()).await.is_empty(), "{bad}");
    }
    // Other paths are not HTTP QQ.
    let other = exchange(
        addr,
        format!(
            "POST /inject HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert!(String::from_utf8(other)
        .unwrap()
        .starts_with("HTTP/1.1 404 "));
    sim.shutdown().await;
}

#[tokio::test]
async fn control_api_on_its_own_loopback_port_only() {
    let sim = start_sim(&policies("")).await;
    let (status, health) = control(&sim, "GET", "/health", None).await;
    assert_eq!(
        (status, health["ok"].as_bool(), health["accounts"].as_u64()),
        (200, Some(true), Some(5))
    );
    let (status, _) = control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": 10002, "to": 10001, "text": "hi"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": 10002, "to": 777, "text": "hi"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": 10002, "to": 10001, "txt": "hi"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = control(
        &sim,
        "POST",
        "/status",
        Some(json!({"uin": 10002, "status": "away"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = control(
        &sim,
        "POST",
        "/friend_request",
        Some(json!({"from": 10001, "to": 10003, "message": "x"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = control(
        &sim,
        "POST",
        "/friend_request",
        Some(json!({"from": 10001, "to": 10002, "message": "加我"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, account) = control(&sim, "GET", "/accounts/10002", None).await;
    assert_eq!(status, 200);
    assert_eq!(account["presence"], "away");
    assert_eq!(account["friend_requests_from"], json!([10001]));
    let (status, _) = control(
        &sim,
        "POST",
        "/friend_response",
        Some(json!({"from": 10002, "to": 10001, "accept": true})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sim.world().friends(10002), [10001]);
    let inbox = received(&sim, 10001).await;
    assert_eq!(
        inbox,
        [
            (10002, "message".into(), "hi".into()),
            (10002, "friend_accepted".into(), String::new())
        ]
    );
    let (status, _) = control(&sim, "GET", "/nothing", None).await;
    assert_eq!(status, 404);

    // The protocol port knows nothing of the control API.
    for request in [
        "GET /health HTTP/1.1\r\n\r\n",
        "GET /received/10001 HTTP/1.1\r\n\r\n",
    ] {
        let raw =
            String::from_utf8(exchange(sim.protocol_addr(), request.as_bytes()).await).unwrap();
        assert!(
            raw.starts_with("HTTP/1.1 404 ") && !raw.contains("\"ok\""),
            "{raw}"
        );
    }
    sim.shutdown().await;

    // The control API refuses to listen anywhere but on loopback.
    let mut config = SimConfig::new(Scenario::empty());
    config.control_listen = "0.0.0.0:0".parse().unwrap();
    assert!(matches!(
        start(config).await,
        Err(SimError::ControlNotLoopback(_))
    ));
}

#[tokio::test]
async fn hundreds_of_clients_poll_concurrently() {
    let sim = start_sim(
        "account_ranges: [{ first_uin: 300000, count: 300, password: p, nick_prefix: u }]\n",
    )
    .await;
    let clients = (300000..300300).map(|uin| {
        let mut client = Qq::new(&sim, uin);
        tokio::spawn(async move {
            client.login_ok("p").await;
            for _ in 0..3 {
                assert_eq!(client.messages().await, []);
            }
        })
    });
    for client in futures::future::join_all(clients).await {
        client.unwrap();
    }
    assert_eq!(sim.world().session_count(), 300);
    sim.shutdown().await;
}

#[tokio::test]
async fn scripted_status_cycles_are_broadcast() {
    let sim = start_sim(
        r#"
time_scale: 0.001
quirks: { session_idle_timeout_s: 100000 }
accounts:
  - { uin: 10001, password: a, nick: a }
  - uin: 10002
    password: b
    nick: b
    presence: online
    script: { status_cycle: { every_s: 20, statuses: [busy, invisible, online] } }
friendships: [[10001, 10002]]
"#,
    )
    .await;
    let mut me = Qq::new(&sim, 10001);
    me.login_ok("a").await;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 3 && Instant::now() < deadline {
        seen.extend(me.messages().await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Whichever change came first, the rest follow the cycle's order.
    let cycle = [Status::Busy, Status::Offline, Status::Online];
    let seen: Vec<Status> = seen
        .into_iter()
        .map(|entry| match entry {
            MsgEntry::Status {
                from: 10002,
                status,
            } => status,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert!(seen.len() >= 3, "{seen:?}");
    let start = cycle.iter().position(|s| *s == seen[0]).unwrap();
    for (offset, status) in seen.iter().enumerate() {
        assert_eq!(*status, cycle[(start + offset) % 3], "{seen:?}");
    }
    sim.shutdown().await;
}
