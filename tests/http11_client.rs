//! The HTTP QQ 1.1 client end to end against the real simulator over TCP:
//! every command, the quirks of the protocol, and every failure path
//! (wrong password, RES=5, RES=20 re-login, RES=3 back-off, NULL retries,
//! dropped connections, session timeout, bad bytes from the server).
//!
//! The simulator runs at `SCALE` (1/1000): its 20 s penalties take 20 ms
//! and `LI` (300 s) takes 300 ms. Nothing asserts wall-clock durations;
//! waits for events have a generous guard timeout only so that a bug fails
//! the test instead of hanging it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
#[path = "support/logs.rs"]
mod logs;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use qqbridge::core::model::{
    ChatId, GroupNumber, Presence, RichText, SearchCriteria, Segment, Uin,
};
use qqbridge::core::text::{parse_plain, render_plain, FaceStyle};
use qqbridge::qq::http11::codec::{http_reply, QueryStatReply, Reply, ReplyBody};
use qqbridge::qq::http11::transport::{Exchange, Transport};
use qqbridge::qq::http11::Http11Connector;
use qqbridge::qq::sim::session::SessionKey;
use qqbridge::qq::sim::{self, Origin, Scenario, SimConfig, SimHandle};
use qqbridge::qq::EventReceiver;
use qqbridge::qq::{
    AddOutcome, EndReason, LoginRequest, LoginStep, QqConnector, QqError, QqEvent, QqSession,
};
use qqbridge::secret::Secret;

/// Simulator time scale: protocol seconds become milliseconds.
const SCALE: f64 = 0.001;
/// Guard against hanging: no test waits longer than this for one event.
const EVENT_GUARD: Duration = Duration::from_secs(15);

const ALICE: Uin = Uin(10001);
const BOB: Uin = Uin(10002);
const HACKFAN: Uin = Uin(10003);
const SLEEPER: Uin = Uin(10004);
const PENGUIN: Uin = Uin(10005);
const OPEN: Uin = Uin(10006);
const DENY: Uin = Uin(10007);

/// The world most tests use. `LI` is long (5 s at this scale) so sessions
/// only expire in the tests that want them to.
const WORLD: &str = r#"
quirks: { session_idle_timeout_s: 5000 }
accounts:
  - { uin: 10001, password: secret-alice, nick: 演示用户, face: 3 }
  - { uin: 10002, password: secret-bob, nick: 微程, face: 270 }
  - uin: 10003
    password: secret-hackfan
    nick: "Hackfan 好"
    face: 6
    presence: busy
    profile:
      age: 19
      gender: female
      province: 江苏
      city: 苏州
      blood_type: B
      constellation: pisces
      zodiac: tiger
      intro: "网络为媒,关系为本"
  - { uin: 10004, password: secret-sleeper, nick: 睡觉的人 }
  - { uin: 10005, password: secret-penguin, nick: 小企鹅, add_policy: verify }
  - { uin: 10006, password: secret-open, nick: 开放, add_policy: open }
  - { uin: 10007, password: secret-deny, nick: 拒绝, add_policy: deny }
friendships:
  - [10001, 10002]
  - [10001, 10003]
  - [10001, 10004]
"#;

fn password_of(uin: Uin) -> &'static str {
    match uin.0 {
        10001 => "secret-alice",
        10002 => "secret-bob",
        10003 => "secret-hackfan",
        10004 => "secret-sleeper",
        10005 => "secret-penguin",
        10006 => "secret-open",
        10007 => "secret-deny",
        _ => "no-such-account",
    }
}

// ------------------------------------------------------------ harness

async fn start_sim(yaml: &str) -> SimHandle {
    let scenario = Scenario::from_yaml(yaml).expect("test scenario is valid");
    let mut config = SimConfig::new(scenario);
    config.time_scale = Some(SCALE);
    sim::start(config).await.expect("simulator starts")
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A connector tuned for the scaled simulator: fast polls and retries.
fn connector(addr: SocketAddr) -> Http11Connector {
    Http11Connector::new(&url(addr))
        .expect("valid URL")
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
        .with_poll_interval(Duration::from_millis(20), Duration::from_millis(100))
        .with_send_pacing(Duration::from_millis(5))
        .with_retry(Duration::from_millis(20), Duration::from_millis(200), 5)
        .with_outage_backoff_max(Duration::from_millis(100))
}

/// A logged-in session and its event stream.
struct Client {
    session: Arc<dyn QqSession>,
    events: EventReceiver,
    /// Every event received so far, for assertions and failure messages.
    seen: Vec<QqEvent>,
}

async fn try_login(conn: &Http11Connector, uin: Uin, password: &str) -> Result<Client, QqError> {
    let (tx, events) = mpsc::channel(1024);
    let request = LoginRequest {
        uin,
        password: Secret::new(password),
        presence: Presence::Online,
        resume: false,
    };
    match conn.login(request, tx).await? {
        LoginStep::Done(session) => Ok(Client {
            session,
            events,
            seen: Vec::new(),
        }),
        LoginStep::NeedCaptcha { .. } => panic!("HTTP QQ 1.1 never asks for a captcha"),
    }
}

async fn login(conn: &Http11Connector, uin: Uin) -> Client {
    try_login(conn, uin, password_of(uin))
        .await
        .unwrap_or_else(|e| panic!("login of {uin} failed: {e}"))
}

impl Client {
    /// Waits for the first event (from now) that `matches`.
    async fn wait_for(&mut self, what: &str, matches: impl Fn(&QqEvent) -> bool) -> QqEvent {
        let deadline = tokio::time::Instant::now() + EVENT_GUARD;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    let event = *event;
                    self.seen.push(event.clone());
                    if matches(&event) {
                        return event;
                    }
                }
                Ok(None) => panic!(
                    "event stream closed waiting for {what}; saw {:?}",
                    self.seen
                ),
                Err(_) => panic!("no {what} in time; saw {:?}", self.seen),
            }
        }
    }

    async fn message_from(&mut self, from: Uin) -> RichText {
        let event = self
            .wait_for(
                "a message",
                |e| matches!(e, QqEvent::Message { sender, .. } if *sender == from),
            )
            .await;
        match event {
            QqEvent::Message {
                chat,
                text,
                remote_id,
                ..
            } => {
                assert_eq!(chat, ChatId::Buddy(from));
                assert_eq!(remote_id, None);
                text
            }
            _ => unreachable!(),
        }
    }

    async fn presence_of(&mut self, who: Uin, presence: Presence) {
        self.wait_for(&format!("{who} {presence}"), |e| {
            matches!(e, QqEvent::Presence { uin, presence: p } if *uin == who && *p == presence)
        })
        .await;
    }

    /// Whatever arrives within `settle`, without waiting longer.
    async fn drain(&mut self, settle: Duration) -> Vec<QqEvent> {
        let mut got = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout(settle, self.events.recv()).await {
            let event = *event;
            self.seen.push(event.clone());
            got.push(event);
        }
        got
    }

    fn count(&self, matches: impl Fn(&QqEvent) -> bool) -> usize {
        self.seen.iter().filter(|e| matches(e)).count()
    }
}

fn plain(rich: &RichText) -> String {
    render_plain(rich, FaceStyle::Name)
}

fn loopback_key(uin: Uin) -> SessionKey {
    SessionKey {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        uin: uin.0,
    }
}

fn is_reconnecting(e: &QqEvent) -> bool {
    matches!(e, QqEvent::Reconnecting { .. })
}

// ------------------------------------------------------------ misbehaving servers

/// A TCP front for the simulator that drops connections on demand (the
/// NULL answer: closed without a byte) or forwards them to a target that
/// can be switched to another simulator.
#[derive(Clone)]
struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

struct ProxyState {
    target: SocketAddr,
    drop_next: usize,
    drop_all: bool,
    dropped: usize,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let proxy = Proxy {
            addr: listener.local_addr().expect("proxy address"),
            state: Arc::new(Mutex::new(ProxyState {
                target,
                drop_next: 0,
                drop_all: false,
                dropped: 0,
            })),
        };
        let state = proxy.state.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let forward_to = {
                    let mut s = state.lock().expect("proxy state");
                    if s.drop_all || s.drop_next > 0 {
                        s.drop_next = s.drop_next.saturating_sub(1);
                        s.dropped += 1;
                        None
                    } else {
                        Some(s.target)
                    }
                };
                tokio::spawn(async move {
                    match forward_to {
                        None => {
                            // Read the request so the close is a clean FIN.
                            let _ = read_request(&mut client).await;
                            let _ = client.shutdown().await;
                        }
                        Some(target) => {
                            if let Ok(mut server) = TcpStream::connect(target).await {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        }
                    }
                });
            }
        });
        proxy
    }

    fn set(&self, f: impl FnOnce(&mut ProxyState)) {
        f(&mut self.state.lock().expect("proxy state"));
    }

    fn dropped(&self) -> usize {
        self.state.lock().expect("proxy state").dropped
    }
}

/// Reads one HTTP request (head and Content-Length body); returns the body.
async fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return bytes[end + 4..end + 4 + length].to_vec();
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Vec::new(),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A fake server: `answer` maps each request body to the raw bytes written
/// back before closing.
async fn fake_server(answer: fn(&str) -> Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake server");
    let addr = listener.local_addr().expect("fake server address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let body = read_request(&mut stream).await;
                let reply = answer(&String::from_utf8_lossy(&body));
                let _ = stream.write_all(&reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// A correct Login success for 10001, whatever was asked.
fn login_ok() -> Vec<u8> {
    http_reply("VER=1.1&CMD=Login&SEQ=1&UIN=10001&RES=0&RS=0&HI=60&LI=300")
}

// ------------------------------------------------------------ login

#[tokio::test]
async fn login_reads_contacts_nicks_presence_and_own_nick() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let alice = login(&conn, ALICE).await;
    let session = &alice.session;
    assert_eq!(session.uin(), ALICE);
    assert_eq!(session.protocol(), qqbridge::qq::Protocol::Http11);
    assert_eq!(session.own_nick().as_deref(), Some("演示用户"));
    let caps = session.capabilities();
    assert!(!caps.groups && !caps.temporary_sessions && caps.search && !caps.signature);

    let contacts = session.contacts().await.expect("contacts");
    let summary: Vec<(Uin, &str, Presence, u32)> = contacts
        .iter()
        .map(|c| (c.uin, c.nick.as_str(), c.presence, c.face))
        .collect();
    // List order; offline friends' nicks and faces come from GetInfo.
    assert_eq!(
        summary,
        vec![
            (BOB, "微程", Presence::Offline, 270),
            (HACKFAN, "Hackfan 好", Presence::Busy, 6),
            (SLEEPER, "睡觉的人", Presence::Offline, 0),
        ]
    );
    assert_eq!(session.groups().await, Ok(Vec::new()));
    assert!(matches!(
        session.set_signature("hi").await,
        Err(QqError::Unsupported(_))
    ));
    let group = ChatId::Group(GroupNumber(1));
    assert!(matches!(
        session.send(&group, &RichText::plain("x")).await,
        Err(QqError::Unsupported(_))
    ));
    // The simulator sees the session from 127.0.0.1.
    assert!(sim.world().session(ALICE.0).is_some());
}

#[tokio::test]
async fn wrong_password_unknown_account_and_illegal_number() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    assert_eq!(
        try_login(&conn, ALICE, "wrong").await.err(),
        Some(QqError::BadCredentials)
    );
    assert_eq!(
        try_login(&conn, Uin(99999), "whatever").await.err(),
        Some(QqError::BadCredentials)
    );
    // RES=5: numbers below 10000 are illegal.
    assert!(matches!(
        try_login(&conn, Uin(100), "whatever").await.err(),
        Some(QqError::LoginRefused(_))
    ));
    assert!(sim.world().session(ALICE.0).is_none());
}

#[tokio::test]
async fn initial_presence_is_applied_at_login() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let (tx, _events) = mpsc::channel(64);
    let request = LoginRequest {
        uin: ALICE,
        password: Secret::new(password_of(ALICE)),
        presence: Presence::Invisible,
        resume: false,
    };
    let Ok(LoginStep::Done(_session)) = conn.login(request, tx).await else {
        panic!("login failed");
    };
    assert_eq!(
        sim.world().presence(ALICE.0),
        Some(sim::Presence::Invisible)
    );
}

#[tokio::test]
async fn passwords_and_their_md5_never_reach_the_logs() {
    // One global subscriber for the whole binary: a per-test (thread-local)
    // one raced with the other tests' threads over tracing's per-callsite
    // interest cache and now and then saw none of this test's spans.
    logs::capture("trace");

    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    assert_eq!(
        try_login(&conn, ALICE, "wrong-password").await.err(),
        Some(QqError::BadCredentials)
    );
    let mut alice = login(&conn, ALICE).await;
    alice.session.contacts().await.expect("contacts");
    alice.session.logout().await.expect("logout");
    alice
        .wait_for("the end", |e| matches!(e, QqEvent::SessionEnded(_)))
        .await;

    let logs = logs::text();
    assert!(
        logs.contains("qq_session") && logs.contains("uin=10001"),
        "no session span:\n{logs}"
    );
    assert!(
        logs.contains("qq_request") && logs.contains("seq="),
        "no request span:\n{logs}"
    );
    for secret in ["secret-alice", "wrong-password"] {
        let md5 = qqbridge::qq::http11::codec::PasswordHash::from_password(secret);
        assert!(!logs.contains(secret), "password {secret} in the logs");
        assert!(!logs.contains(md5.expose()), "md5 of {secret} in the logs");
        assert!(!logs
            .to_ascii_uppercase()
            .contains(&md5.expose().to_ascii_uppercase()));
    }
}

// ------------------------------------------------------------ chatting and presence

#[tokio::test]
async fn two_accounts_chat_in_chinese_with_faces_and_line_breaks() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let mut alice = login(&conn, ALICE).await;
    let mut bob = login(&conn, BOB).await;

    let text = "你好，世界！逗号,和&符号=百分号%2c 以及\n第二行  ";
    alice
        .session
        .send(&ChatId::Buddy(BOB), &RichText::plain(text))
        .await
        .expect("send");
    let got = bob.message_from(ALICE).await;
    assert_eq!(plain(&got), text);
    let event = bob.seen.last().cloned();
    assert!(matches!(
        event,
        Some(QqEvent::Message { sender_name: Some(name), .. }) if name == "演示用户"
    ));

    // A face has no wire form in HTTP QQ: it travels as its [name] code
    // and is a face again on arrival.
    let with_face = RichText {
        segments: vec![
            Segment::Text { text: "看".into() },
            Segment::Face { id: 14 },
        ],
        action: false,
    };
    bob.session
        .send(&ChatId::Buddy(ALICE), &with_face)
        .await
        .expect("send");
    let got = alice.message_from(BOB).await;
    assert_eq!(got, parse_plain(&plain(&with_face)));
    assert!(got.segments.contains(&Segment::Face { id: 14 }));
}

#[tokio::test]
async fn long_messages_are_split_and_arrive_in_order() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr()).with_max_message_bytes(30);
    let alice = login(&conn, ALICE).await;
    let mut bob = login(&connector(sim.protocol_addr()), BOB).await;
    let long = "春眠不觉晓处处闻啼鸟夜来风雨声花落知多少".repeat(4);
    alice
        .session
        .send(&ChatId::Buddy(BOB), &RichText::plain(long.clone()))
        .await
        .expect("send");
    let mut received = String::new();
    let mut parts = 0;
    while received.len() < long.len() {
        received.push_str(&plain(&bob.message_from(ALICE).await));
        parts += 1;
    }
    assert_eq!(received, long);
    assert!(parts >= long.len() / 30, "only {parts} parts");
}

#[tokio::test]
async fn presence_changes_are_seen_by_the_other_and_invisible_looks_offline() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let alice = login(&conn, ALICE).await;
    let mut bob = login(&conn, BOB).await;

    alice
        .session
        .set_presence(Presence::Busy)
        .await
        .expect("busy");
    bob.presence_of(ALICE, Presence::Busy).await;
    alice
        .session
        .set_presence(Presence::Invisible)
        .await
        .expect("invisible");
    bob.presence_of(ALICE, Presence::Offline).await;
    assert_eq!(
        sim.world().presence(ALICE.0),
        Some(sim::Presence::Invisible)
    );
    alice
        .session
        .set_presence(Presence::Online)
        .await
        .expect("online");
    bob.presence_of(ALICE, Presence::Online).await;
    // Away does not exist in HTTP QQ 1.1: it is sent as busy.
    alice
        .session
        .set_presence(Presence::Away)
        .await
        .expect("away");
    bob.presence_of(ALICE, Presence::Busy).await;

    // Bob's cached buddy list follows the pushes.
    let contacts = bob.session.contacts().await.expect("contacts");
    let alice_seen = contacts.iter().find(|c| c.uin == ALICE).map(|c| c.presence);
    assert_eq!(alice_seen, Some(Presence::Busy));

    // A simulated user's change arrives the same way, trailing space or not.
    sim.world()
        .set_presence(HACKFAN.0, sim::Presence::Online, Origin::Control);
    let mut alice = alice;
    alice.presence_of(HACKFAN, Presence::Online).await;
}

// ------------------------------------------------------------ friends

#[tokio::test]
async fn friend_request_with_verification_accepted_makes_both_buddies() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let mut alice = login(&conn, ALICE).await;
    let mut penguin = login(&conn, PENGUIN).await;

    // AddToList says CD=1; the client double-sends the request.
    let outcome = alice
        .session
        .add_buddy(PENGUIN, "我是演示用户，加个好友吧")
        .await;
    assert_eq!(outcome, Ok(AddOutcome::RequestSent));
    let request = penguin
        .wait_for("a friend request", |e| {
            matches!(e, QqEvent::FriendRequest { .. })
        })
        .await;
    assert_eq!(
        request,
        QqEvent::FriendRequest {
            uin: ALICE,
            message: "我是演示用户，加个好友吧".into()
        }
    );

    penguin
        .session
        .answer_request(ALICE, true, "")
        .await
        .expect("accept");
    penguin
        .wait_for("contacts changed", |e| {
            matches!(e, QqEvent::ContactsChanged)
        })
        .await;
    alice
        .wait_for(
            "accepted",
            |e| matches!(e, QqEvent::FriendAccepted { uin } if *uin == PENGUIN),
        )
        .await;
    alice
        .wait_for("contacts changed", |e| {
            matches!(e, QqEvent::ContactsChanged)
        })
        .await;

    let alice_list = alice.session.contacts().await.expect("contacts");
    assert!(alice_list
        .iter()
        .any(|c| c.uin == PENGUIN && c.nick == "小企鹅"));
    let penguin_list = penguin.session.contacts().await.expect("contacts");
    assert!(penguin_list
        .iter()
        .any(|c| c.uin == ALICE && c.nick == "演示用户"));
    // Exactly one of the two copies was delivered.
    assert_eq!(
        penguin.count(|e| matches!(e, QqEvent::FriendRequest { .. })),
        1
    );
    penguin.drain(Duration::from_millis(200)).await;
    assert_eq!(
        penguin.count(|e| matches!(e, QqEvent::FriendRequest { .. })),
        1
    );
}

#[tokio::test]
async fn friend_request_refused_with_a_reason() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let mut alice = login(&conn, ALICE).await;
    let mut penguin = login(&conn, PENGUIN).await;
    assert_eq!(
        alice.session.add_buddy(PENGUIN, "hi").await,
        Ok(AddOutcome::RequestSent)
    );
    penguin
        .wait_for("a friend request", |e| {
            matches!(e, QqEvent::FriendRequest { .. })
        })
        .await;
    penguin
        .session
        .answer_request(ALICE, false, "不认识你, sorry")
        .await
        .expect("refuse");
    let refused = alice
        .wait_for("refused", |e| matches!(e, QqEvent::FriendRefused { .. }))
        .await;
    assert_eq!(
        refused,
        QqEvent::FriendRefused {
            uin: PENGUIN,
            reason: "不认识你, sorry".into()
        }
    );
    assert!(!sim.world().is_friend(ALICE.0, PENGUIN.0));
    // Answering a request that does not exist: RES=3 (20 ms late here).
    assert!(matches!(
        penguin.session.answer_request(ALICE, true, "").await,
        Err(QqError::Refused(_))
    ));
}

#[tokio::test]
async fn add_open_and_deny_accounts_and_remove_buddies() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let mut alice = login(&conn, ALICE).await;

    assert_eq!(
        alice.session.add_buddy(OPEN, "").await,
        Ok(AddOutcome::Added)
    );
    alice
        .wait_for("contacts changed", |e| {
            matches!(e, QqEvent::ContactsChanged)
        })
        .await;
    let list = alice.session.contacts().await.expect("contacts");
    assert!(list.iter().any(|c| c.uin == OPEN && c.nick == "开放"));
    assert_eq!(
        alice.session.add_buddy(DENY, "please").await,
        Ok(AddOutcome::Refused)
    );

    alice.session.remove_buddy(SLEEPER).await.expect("remove");
    let list = alice.session.contacts().await.expect("contacts");
    assert!(!list.iter().any(|c| c.uin == SLEEPER));
    // Deleting again is the "repeated DelFromList": RES=3, 30 ms late here.
    assert!(matches!(
        alice.session.remove_buddy(SLEEPER).await,
        Err(QqError::Refused(_))
    ));
}

// ------------------------------------------------------------ profiles and search

#[tokio::test]
async fn detailed_profile_and_search() {
    let sim = start_sim(WORLD).await;
    let alice = login(&connector(sim.protocol_addr()), ALICE).await;
    let profile = alice.session.profile(HACKFAN).await.expect("profile");
    assert_eq!(profile.uin, Some(HACKFAN));
    assert_eq!(profile.nick, "Hackfan 好");
    assert_eq!(profile.face, Some(6));
    assert_eq!(profile.age, Some(19));
    assert_eq!(profile.gender.as_deref(), Some("female (女)"));
    assert_eq!(profile.province.as_deref(), Some("江苏"));
    let detail = |label: &str| {
        profile
            .details
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(detail("Blood type"), Some("B (B型)"));
    assert_eq!(detail("Constellation"), Some("Pisces (双鱼座)"));
    assert_eq!(detail("Chinese zodiac"), Some("Tiger (虎)"));
    assert_eq!(detail("Gender"), Some("female (女)"));
    assert_eq!(detail("City"), Some("苏州"));
    assert_eq!(detail("About"), Some("网络为媒,关系为本"));

    let criteria = SearchCriteria {
        age: Some(19),
        gender: Some(1),
        province: Some("江苏".into()),
    };
    let found = alice.session.search(&criteria).await.expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].uin, found[0].nick.as_str()),
        (Some(HACKFAN), "Hackfan 好")
    );
    let everybody = alice
        .session
        .search(&SearchCriteria::default())
        .await
        .expect("search");
    assert_eq!(everybody.len(), 7);
    let bad = SearchCriteria {
        gender: Some(7),
        ..SearchCriteria::default()
    };
    assert!(matches!(
        alice.session.search(&bad).await,
        Err(QqError::Unsupported(_))
    ));
}

// ------------------------------------------------------------ session lifecycle

#[tokio::test]
async fn logout_stops_everything_and_ends_the_event_stream() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let mut alice = login(&conn, ALICE).await;
    let mut bob = login(&conn, BOB).await;
    alice.session.logout().await.expect("logout");
    assert!(sim.world().session(ALICE.0).is_none());
    bob.presence_of(ALICE, Presence::Offline).await;
    let ended = alice
        .wait_for("the end", |e| matches!(e, QqEvent::SessionEnded(_)))
        .await;
    assert_eq!(ended, QqEvent::SessionEnded(EndReason::LoggedOut));
    assert_eq!(alice.session.logout().await, Ok(()));
    assert_eq!(
        alice
            .session
            .send(&ChatId::Buddy(BOB), &RichText::plain("x"))
            .await,
        Err(QqError::SessionEnded)
    );
    // Nothing follows SessionEnded, and the poller is gone for good.
    sim.world()
        .send_message(BOB.0, ALICE.0, "still there?", Origin::Control);
    assert!(alice.drain(Duration::from_millis(300)).await.is_empty());
    assert!(sim.world().session(ALICE.0).is_none());
}

#[tokio::test]
async fn expired_session_logs_in_again_transparently() {
    let sim = start_sim(WORLD).await;
    let conn = connector(sim.protocol_addr());
    let mut alice = login(&conn, ALICE).await;
    let mut bob = login(&conn, BOB).await;
    alice
        .session
        .set_presence(Presence::Busy)
        .await
        .expect("busy");
    bob.presence_of(ALICE, Presence::Busy).await;

    // The server forgets Alice: her next request gets RES=20.
    sim.world().logout(loopback_key(ALICE));
    alice.wait_for("reconnecting", is_reconnecting).await;
    alice
        .wait_for("reconnected", |e| matches!(e, QqEvent::Reconnected))
        .await;
    assert!(sim.world().session(ALICE.0).is_some());
    // The chosen presence is restored after the re-login.
    bob.presence_of(ALICE, Presence::Busy).await;
    assert_eq!(sim.world().presence(ALICE.0), Some(sim::Presence::Busy));

    // A command that hits RES=20 re-logs in by itself too.
    sim.world().logout(loopback_key(ALICE));
    alice
        .session
        .send(&ChatId::Buddy(BOB), &RichText::plain("我回来了"))
        .await
        .expect("send after expiry");
    assert_eq!(plain(&bob.message_from(ALICE).await), "我回来了");
    let _ = alice.drain(Duration::from_millis(200)).await;
    assert_eq!(alice.count(is_reconnecting), 2, "{:?}", alice.seen);
    assert_eq!(alice.count(|e| matches!(e, QqEvent::Reconnected)), 2);
}

#[tokio::test]
async fn idle_timeout_li_expires_a_silent_session_and_polling_prevents_it() {
    // LI = 1000 s = 1 s at this scale; the test client polls at least
    // every 100 ms, ten times as often.
    let short_li = WORLD.replace(
        "session_idle_timeout_s: 5000",
        "session_idle_timeout_s: 1000",
    );
    let sim = start_sim(&short_li).await;
    let mut bob = login(&connector(sim.protocol_addr()), BOB).await;

    // Polling keeps the session alive through more than two LIs.
    let mut alice = login(&connector(sim.protocol_addr()), ALICE).await;
    let started = sim.world().session(ALICE.0).map(|s| s.started);
    let _ = alice.drain(Duration::from_millis(2500)).await;
    assert_eq!(sim.world().session(ALICE.0).map(|s| s.started), started);
    assert_eq!(alice.count(is_reconnecting), 0);
    alice.session.logout().await.expect("logout");
    bob.presence_of(ALICE, Presence::Offline).await;

    // A client that polls too rarely is expired by the server (friends see
    // it go offline); its next command logs in again and goes through.
    let sleepy = connector(sim.protocol_addr())
        .with_poll_interval(Duration::from_secs(30), Duration::from_secs(30));
    let mut alice = login(&sleepy, ALICE).await;
    bob.presence_of(ALICE, Presence::Online).await;
    bob.presence_of(ALICE, Presence::Offline).await;
    assert!(sim.world().session(ALICE.0).is_none());
    alice
        .session
        .send(&ChatId::Buddy(BOB), &RichText::plain("醒了"))
        .await
        .expect("send after LI");
    assert_eq!(plain(&bob.message_from(ALICE).await), "醒了");
    alice.wait_for("reconnecting", is_reconnecting).await;
    alice
        .wait_for("reconnected", |e| matches!(e, QqEvent::Reconnected))
        .await;
}

// ------------------------------------------------------------ RES=3

/// A world whose CLTMSG rule is `interval_s` protocol seconds.
fn world_with_cltmsg_interval(interval_s: u32) -> String {
    WORLD.replace(
        "session_idle_timeout_s: 5000",
        &format!("session_idle_timeout_s: 5000, cltmsg_min_interval_s: {interval_s}"),
    )
}

#[tokio::test]
async fn sending_too_fast_is_retried_then_reported_as_throttled() {
    // 1000 s = 1 s here: far longer than any retry of this test.
    let sim = start_sim(&world_with_cltmsg_interval(1000)).await;
    let unpaced = connector(sim.protocol_addr())
        .with_send_pacing(Duration::ZERO)
        .with_throttle_attempts(3);
    let alice = login(&unpaced, ALICE).await;
    let mut bob = login(&connector(sim.protocol_addr()), BOB).await;
    let to_bob = ChatId::Buddy(BOB);
    alice
        .session
        .send(&to_bob, &RichText::plain("一"))
        .await
        .expect("first");
    assert_eq!(
        alice.session.send(&to_bob, &RichText::plain("二")).await,
        Err(QqError::Throttled)
    );
    assert_eq!(plain(&bob.message_from(ALICE).await), "一");
    assert!(bob.drain(Duration::from_millis(200)).await.is_empty());
}

#[tokio::test]
async fn res3_backs_off_and_the_retry_gets_through() {
    // 600 s = 600 ms here; the first retry waits about 1 s.
    let sim = start_sim(&world_with_cltmsg_interval(600)).await;
    let conn = connector(sim.protocol_addr())
        .with_send_pacing(Duration::ZERO)
        .with_retry(Duration::from_secs(1), Duration::from_secs(2), 5);
    let alice = login(&conn, ALICE).await;
    let mut bob = login(&connector(sim.protocol_addr()), BOB).await;
    let to_bob = ChatId::Buddy(BOB);
    alice
        .session
        .send(&to_bob, &RichText::plain("一"))
        .await
        .expect("first");
    // Immediately after: RES=3, then a retry after the back-off succeeds.
    alice
        .session
        .send(&to_bob, &RichText::plain("二"))
        .await
        .expect("second");
    assert_eq!(plain(&bob.message_from(ALICE).await), "一");
    assert_eq!(plain(&bob.message_from(ALICE).await), "二");
    // Without a retry the same situation is reported, proving RES=3 occurred.
    let no_retry = conn.clone().with_throttle_attempts(1);
    let alice2 = login(&no_retry, ALICE).await;
    // The rule is per account: leave the previous CLTMSG behind first.
    tokio::time::sleep(Duration::from_millis(700)).await;
    alice2
        .session
        .send(&to_bob, &RichText::plain("三"))
        .await
        .expect("third");
    assert_eq!(
        alice2.session.send(&to_bob, &RichText::plain("四")).await,
        Err(QqError::Throttled)
    );
}

#[tokio::test]
async fn pacing_keeps_concurrent_sends_clear_of_the_penalty() {
    // 200 ms rule, 250 ms pacing, and no retry: any RES=3 would fail a send.
    let sim = start_sim(&world_with_cltmsg_interval(200)).await;
    let paced = connector(sim.protocol_addr())
        .with_send_pacing(Duration::from_millis(250))
        .with_throttle_attempts(1);
    let alice = login(&paced, ALICE).await;
    let mut bob = login(&connector(sim.protocol_addr()), BOB).await;
    let to_bob = ChatId::Buddy(BOB);
    let texts = ["one", "two", "three"].map(RichText::plain);
    let (one, two, three) = tokio::join!(
        alice.session.send(&to_bob, &texts[0]),
        alice.session.send(&to_bob, &texts[1]),
        alice.session.send(&to_bob, &texts[2]),
    );
    assert_eq!((one, two, three), (Ok(()), Ok(()), Ok(())));
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(plain(&bob.message_from(ALICE).await));
    }
    got.sort();
    assert_eq!(got, ["one", "three", "two"]);
}

#[tokio::test]
async fn changing_status_too_often_is_throttled() {
    let yaml = WORLD.replace(
        "session_idle_timeout_s: 5000",
        "session_idle_timeout_s: 5000, change_stat_limit: 2, change_stat_window_s: 100000",
    );
    let sim = start_sim(&yaml).await;
    let alice = login(
        &connector(sim.protocol_addr()).with_throttle_attempts(2),
        ALICE,
    )
    .await;
    alice
        .session
        .set_presence(Presence::Busy)
        .await
        .expect("first");
    alice
        .session
        .set_presence(Presence::Online)
        .await
        .expect("second");
    assert_eq!(
        alice.session.set_presence(Presence::Busy).await,
        Err(QqError::Throttled)
    );
}

// ------------------------------------------------------------ NULL and outages

#[tokio::test]
async fn null_replies_are_retried_with_backoff_then_unreachable() {
    let sim = start_sim(WORLD).await;
    let proxy = Proxy::start(sim.protocol_addr()).await;
    let conn = connector(proxy.addr);

    // Three NULLs, then the login goes through.
    proxy.set(|s| s.drop_next = 3);
    let alice = login(&conn, ALICE).await;
    assert_eq!(proxy.dropped(), 3);
    assert_eq!(alice.session.own_nick().as_deref(), Some("演示用户"));

    // NULL for every attempt: Unreachable after the bounded retries.
    proxy.set(|s| s.drop_all = true);
    let before = proxy.dropped();
    assert!(matches!(
        try_login(&conn, BOB, password_of(BOB)).await.err(),
        Some(QqError::Unreachable(_))
    ));
    assert!(proxy.dropped() - before >= 5);

    // Nobody listening at all is the same.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let nowhere = closed.local_addr().expect("address");
    drop(closed);
    assert!(matches!(
        try_login(&connector(nowhere), ALICE, "x").await.err(),
        Some(QqError::Unreachable(_))
    ));
}

#[tokio::test]
async fn an_outage_emits_one_reconnecting_and_one_reconnected() {
    let sim = start_sim(WORLD).await;
    let proxy = Proxy::start(sim.protocol_addr()).await;
    let mut alice = login(&connector(proxy.addr), ALICE).await;

    proxy.set(|s| s.drop_all = true);
    alice.wait_for("reconnecting", is_reconnecting).await;
    // Let several more polls fail during the same outage.
    let failed_before = proxy.dropped();
    while proxy.dropped() < failed_before + 4 {
        let _ = alice.drain(Duration::from_millis(50)).await;
    }
    proxy.set(|s| s.drop_all = false);
    alice
        .wait_for("reconnected", |e| matches!(e, QqEvent::Reconnected))
        .await;
    assert_eq!(alice.count(is_reconnecting), 1, "{:?}", alice.seen);

    // Messages flow again.
    sim.world()
        .send_message(BOB.0, ALICE.0, "你还在吗", Origin::Control);
    assert_eq!(plain(&alice.message_from(BOB).await), "你还在吗");
}

#[tokio::test]
async fn refused_relogin_ends_the_session() {
    // The account's password changes behind the client's back: the proxy
    // moves Alice to a second server where her old password is wrong.
    let sim = start_sim(WORLD).await;
    let changed = start_sim(&WORLD.replace("secret-alice", "new-password")).await;
    let proxy = Proxy::start(sim.protocol_addr()).await;
    let mut alice = login(&connector(proxy.addr), ALICE).await;

    proxy.set(|s| s.target = changed.protocol_addr());
    let ended = alice
        .wait_for("the end", |e| matches!(e, QqEvent::SessionEnded(_)))
        .await;
    assert!(matches!(
        ended,
        QqEvent::SessionEnded(EndReason::LoginFailed(_))
    ));
    assert_eq!(alice.count(is_reconnecting), 1);
    assert!(alice.drain(Duration::from_millis(200)).await.is_empty());
    assert_eq!(alice.session.contacts().await, Err(QqError::SessionEnded));
}

#[tokio::test]
async fn dropped_connections_mid_reply_and_garbage_are_handled() {
    // Closes in the middle of the reply: a NULL look-alike, retried.
    let truncated =
        fake_server(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\nVER=1.1&CMD=Login".to_vec())
            .await;
    assert!(matches!(
        try_login(&connector(truncated), ALICE, "x").await.err(),
        Some(QqError::Unreachable(_))
    ));
    // Not HTTP at all: a typed protocol error, not a retry loop.
    let garbage = fake_server(|_| b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()).await;
    assert!(matches!(
        try_login(&connector(garbage), ALICE, "x").await.err(),
        Some(QqError::Protocol(_))
    ));
    // A reply for another account is rejected.
    let foreign =
        fake_server(|_| http_reply("VER=1.1&CMD=Login&SEQ=1&UIN=99999&RES=0&RS=0&HI=60&LI=300"))
            .await;
    assert!(matches!(
        try_login(&connector(foreign), ALICE, "x").await.err(),
        Some(QqError::Protocol(_))
    ));
}

#[tokio::test]
async fn invalid_utf8_from_the_server_is_a_typed_error_not_a_panic() {
    // RA with bytes that are not UTF-8.
    let bad_login = fake_server(|_| {
        let mut body = b"VER=1.1&CMD=Login&SEQ=1&UIN=10001&RES=0&RS=1&RA=".to_vec();
        body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        reply.extend_from_slice(&body);
        reply
    })
    .await;
    assert!(matches!(
        try_login(&connector(bad_login), ALICE, "x").await.err(),
        Some(QqError::Protocol(_))
    ));

    // Login works, everything else carries invalid UTF-8 (List, GetMsgEx).
    let bad_rest = fake_server(|request| {
        if request.contains("CMD=Login") {
            return login_ok();
        }
        let cmd = if request.contains("CMD=List") {
            "LIST"
        } else {
            "GETMSGEX"
        };
        let mut body = format!("VER=1.1&CMD={cmd}&SEQ=1&UIN=10001&RES=0&").into_bytes();
        body.extend_from_slice(b"FN=1&SN=1&UN=\xff,&MN=1&MT=9,&UN=1,&MG=\xff\xfe ,");
        let mut reply =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        reply.extend_from_slice(&body);
        reply
    })
    .await;
    let mut alice = login(&connector(bad_rest), ALICE).await;
    assert!(matches!(
        alice.session.contacts().await,
        Err(QqError::Protocol(_))
    ));
    // The poller keeps getting the bad reply: no event, no panic, still alive.
    assert!(alice.drain(Duration::from_millis(300)).await.is_empty());
    assert!(matches!(
        alice.session.contacts().await,
        Err(QqError::Protocol(_))
    ));
    alice.session.logout().await.expect("logout");
}

#[tokio::test]
async fn a_throttled_poll_backs_off_instead_of_hammering() {
    static POLLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let throttling = fake_server(|request| {
        if request.contains("CMD=Login") {
            return login_ok();
        }
        if request.contains("CMD=GetMsgEx") {
            POLLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let cmd = request
            .split('&')
            .find_map(|pair| pair.strip_prefix("CMD="))
            .unwrap_or("GetMsgEx")
            .to_ascii_uppercase();
        http_reply(&format!("VER=1.1&CMD={cmd}&SEQ=1&UIN=10001&RES=3"))
    })
    .await;
    // Polls every 20 ms when all is well: 30 polls in the window below.
    let conn = connector(throttling).with_outage_backoff_max(Duration::from_millis(200));
    let mut alice = login(&conn, ALICE).await;
    let events = alice.drain(Duration::from_millis(600)).await;
    let polls = POLLS.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..15).contains(&polls), "{polls} polls");
    // The server answers, so this is no outage.
    assert!(events.is_empty(), "{events:?}");
}

// ------------------------------------------------------------ quirks of the other seeds

#[tokio::test]
async fn the_other_seeds_spellings_and_nulls_are_tolerated() {
    let yaml = WORLD.replace(
        "quirks: { session_idle_timeout_s: 5000 }",
        r#"quirks:
  session_idle_timeout_s: 5000
  login_cmd_echo: LOGIN
  emit_comp: true
  trailing_amp_profile: "003"
  sysmsg_trailing_space: true
  addtolist_deny_code: 2
  null_mode: empty_200
  null_on_lowercase_h: 0.3"#,
    );
    let sim = start_sim(&yaml).await;
    let conn = connector(sim.protocol_addr()).with_retry(
        Duration::from_millis(10),
        Duration::from_millis(50),
        12,
    );
    let mut alice = login(&conn, ALICE).await;
    let mut bob = login(&conn, BOB).await;
    assert_eq!(alice.session.contacts().await.map(|c| c.len()), Ok(3));
    // Texts with a lowercase h sometimes get NULL (an empty 200 here): the
    // client retries until RES=0.
    for text in ["hello", "hhh 你好", "how are you?"] {
        alice
            .session
            .send(&ChatId::Buddy(BOB), &RichText::plain(text))
            .await
            .expect("send");
        assert_eq!(plain(&bob.message_from(ALICE).await), text);
    }
    // `MG=30 ` with its trailing space.
    bob.session
        .set_presence(Presence::Busy)
        .await
        .expect("busy");
    alice.presence_of(BOB, Presence::Busy).await;
    assert_eq!(
        alice.session.add_buddy(DENY, "").await,
        Ok(AddOutcome::Refused)
    );
}

#[tokio::test]
async fn query_stat_without_tn_yields_two_replies_on_one_connection() {
    let sim = start_sim(WORLD).await;
    let _alice = login(&connector(sim.protocol_addr()), ALICE).await;
    let transport = Transport::from_url(
        &url(sim.protocol_addr()),
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .expect("transport");
    let Exchange::Replies(replies) = transport
        .post("VER=1.1&CMD=Query_Stat&SEQ=4827&UIN=10001")
        .await
    else {
        panic!("no reply");
    };
    assert_eq!(replies.len(), 2);
    let first = Reply::decode(&replies[0].body).expect("first reply");
    // Alice herself and Hackfan (busy) are visible.
    assert_eq!(first.body, ReplyBody::QueryStat(QueryStatReply::Count(2)));
    let second = Reply::decode(&replies[1].body).expect("second reply");
    assert_eq!(
        second.body,
        ReplyBody::QueryStat(QueryStatReply::Online(Vec::new()))
    );
    // A malformed request gets NULL: no bytes at all.
    assert!(matches!(
        transport.post("VER=1.1&CMD=List&SEQ=1&UIN=abc").await,
        Exchange::Null(_)
    ));
}
