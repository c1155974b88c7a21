//! The real WebQQ client against the real simulator over TCP (no fakes):
//! the login flow (plain, captcha, wrong password), contacts and groups by
//! real numbers across logins, every message kind both ways, presence,
//! friend requests, the signature, a kick and a 121 outage in the middle
//! of a poll, the exchange with an HTTP QQ 1.1 session in the same world,
//! and a captcha login through the IRC gateway.

#[path = "support/gateway.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use qqbridge::config::PermissionLevel;
use qqbridge::core::model::{ChatId, GroupNumber, Presence, RichText, Segment, Uin};
use qqbridge::core::BridgeCore;
use qqbridge::irc::gateway;
use qqbridge::qq::http11::Http11Connector;
use qqbridge::qq::sim::scenario::AccountSpec;
use qqbridge::qq::sim::{self, Origin, Scenario, SimConfig, SimHandle};
use qqbridge::qq::webqq::{WebqqConnector, WebqqOptions};
use qqbridge::qq::EventReceiver;
use qqbridge::qq::{
    EndReason, LoginRequest, LoginStep, PendingLogin, Protocol, QqConnector, QqError, QqEvent,
    QqSession,
};
use qqbridge::secret::Secret;
use qqbridge::store::{SqliteStore, Store};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use support::{raw_connect, test_config};

/// Protocol delays at 1 % (a 55 s poll hold takes 0.55 s).
const TIME_SCALE: f64 = 0.01;
/// Longest wait for any one event.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// The demo world plus: 10005, a member of group 20001 who is nobody's
/// buddy (temporary sessions); 10006, whose WebQQ logins need the captcha
/// `abcd`; 10007, a stranger who asks 10001 to be friends. No group
/// chatter, and sessions never idle out by themselves.
fn scenario() -> Scenario {
    let mut s = Scenario::demo();
    let spec = |yaml: &str| -> AccountSpec { serde_yaml::from_str(yaml).unwrap() };
    s.accounts.push(spec(
        "{ uin: 10005, password: demo, nick: 路人甲, presence: online }",
    ));
    s.accounts.push(spec(
        "{ uin: 10006, password: demo, nick: 验证码用户, presence: offline, captcha: abcd }",
    ));
    s.accounts.push(spec(
        "{ uin: 10007, password: demo, nick: 新朋友, presence: online }",
    ));
    s.friendships.push([10006, 10002]);
    s.friendships.push([10006, 10003]);
    let group = &mut s.groups[0];
    group.members.push(10005);
    group.cards.insert(10005, "路人 (群名片)".to_owned());
    group.chatter = None;
    s.quirks = serde_yaml::from_str(
        "{ session_idle_timeout_s: 100000, cltmsg_min_interval_s: 0, change_stat_limit: 1000 }",
    )
    .unwrap();
    s.webqq.session_idle_s = 100_000.0;
    s.validate().unwrap();
    s
}

async fn start_sim() -> SimHandle {
    let mut config = SimConfig::new(scenario());
    config.time_scale = Some(TIME_SCALE);
    sim::start(config).await.expect("simulator starts")
}

fn base_url(sim: &SimHandle) -> String {
    format!("http://{}", sim.protocol_addr())
}

fn webqq(sim: &SimHandle) -> WebqqConnector {
    let options = WebqqOptions {
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..WebqqOptions::default()
    };
    WebqqConnector::with_options(&base_url(sim), options)
}

fn http11(sim: &SimHandle) -> Http11Connector {
    Http11Connector::new(&base_url(sim))
        .expect("valid URL")
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
        .with_poll_interval(Duration::from_millis(20), Duration::from_millis(100))
        .with_send_pacing(Duration::from_millis(5))
        .with_retry(Duration::from_millis(20), Duration::from_millis(200), 5)
        .with_outage_backoff_max(Duration::from_millis(100))
}

fn request(uin: u64, password: &str) -> LoginRequest {
    LoginRequest {
        uin: Uin(uin),
        password: Secret::new(password),
        presence: Presence::Online,
        resume: false,
    }
}

/// A logged-in session and its events.
struct Client {
    session: Arc<dyn QqSession>,
    rx: EventReceiver,
}

impl Client {
    /// Waits for the next event matching `pred`, skipping the others.
    async fn wait(&mut self, what: &str, pred: impl Fn(&QqEvent) -> bool) -> QqEvent {
        let deadline = tokio::time::Instant::now() + EVENT_WAIT;
        let mut skipped = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) if pred(&event) => return *event,
                Ok(Some(event)) => skipped.push(event),
                Ok(None) => panic!("events closed while waiting for {what}; got {skipped:#?}"),
                Err(_) => panic!("timed out waiting for {what}; got {skipped:#?}"),
            }
        }
    }

    /// Waits for a message in `chat` and returns its sender and text.
    async fn message_in(&mut self, chat: &ChatId) -> (Uin, RichText) {
        let what = format!("a message in {chat:?}");
        match self
            .wait(
                &what,
                |e| matches!(e, QqEvent::Message { chat: c, .. } if c == chat),
            )
            .await
        {
            QqEvent::Message { sender, text, .. } => (sender, text),
            _ => unreachable!(),
        }
    }

    async fn presence_of(&mut self, uin: u64, presence: Presence) {
        self.wait(&format!("{uin} {presence:?}"), |e| {
            *e == QqEvent::Presence {
                uin: Uin(uin),
                presence,
            }
        })
        .await;
    }
}

async fn login_with(connector: &dyn QqConnector, uin: u64) -> Client {
    let (tx, rx) = mpsc::channel(256);
    match connector.login(request(uin, "demo"), tx).await {
        Ok(LoginStep::Done(session)) => {
            assert_eq!(session.uin(), Uin(uin));
            Client { session, rx }
        }
        Ok(LoginStep::NeedCaptcha { .. }) => panic!("{uin} asked for a captcha"),
        Err(e) => panic!("{uin} cannot log in: {e}"),
    }
}

async fn login(sim: &SimHandle, uin: u64) -> Client {
    login_with(&webqq(sim), uin).await
}

/// Chinese text around a face (微笑, protocol id 14).
fn chinese_with_face(text: &str) -> RichText {
    RichText {
        segments: vec![
            Segment::Text {
                text: format!("{text} "),
            },
            Segment::Face { id: 14 },
            Segment::Text {
                text: " 好的".to_owned(),
            },
        ],
        action: false,
    }
}

/// The text segments joined, and the face ids, of a message.
fn parts(text: &RichText) -> (String, Vec<u16>) {
    let mut words = String::new();
    let mut faces = Vec::new();
    for segment in &text.segments {
        match segment {
            Segment::Text { text } => words.push_str(text),
            Segment::Face { id } => faces.push(*id),
            other => panic!("unexpected segment {other:?}"),
        }
    }
    (words, faces)
}

/// Asserts that `got` carries the text and the face of `chinese_with_face(text)`.
fn assert_same_message(got: &RichText, text: &str) {
    let (words, faces) = parts(got);
    assert_eq!(faces, [14], "{got:?}");
    let words: String = words.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words, format!("{text} 好的"), "{got:?}");
}

async fn control_get(sim: &SimHandle, path: &str) -> Value {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    http.get(format!("http://{}{path}", sim.control_addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn control_post(sim: &SimHandle, path: &str, body: Value) -> (u16, Value) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = http
        .post(format!("http://{}{path}", sim.control_addr()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

// ---------------------------------------------------------------- login

#[tokio::test]
async fn login_plain_with_captcha_and_with_a_wrong_password() {
    let sim = start_sim().await;
    let connector = webqq(&sim);

    // Without captcha.
    let client = login(&sim, 10001).await;
    assert_eq!(client.session.protocol(), Protocol::Webqq);
    assert_eq!(client.session.own_nick().as_deref(), Some("演示用户"));
    let snapshot = control_get(&sim, "/accounts/10001").await;
    assert_eq!(snapshot["session"]["protocol"], "webqq", "{snapshot}");
    assert_eq!(snapshot["presence"], "online", "{snapshot}");

    // Wrong password.
    let (tx, _rx) = mpsc::channel(16);
    let error = connector.login(request(10002, "wrong"), tx).await.err();
    assert_eq!(error, Some(QqError::BadCredentials));

    // With captcha: the image, a wrong code, then a fresh login and the
    // right code.
    let need_captcha = |step: Result<LoginStep, QqError>| -> (Vec<u8>, Box<dyn PendingLogin>) {
        match step {
            Ok(LoginStep::NeedCaptcha { image, pending }) => (image, pending),
            Ok(LoginStep::Done(_)) => panic!("10006 logged in without a captcha"),
            Err(e) => panic!("10006: {e}"),
        }
    };
    let (tx, _rx) = mpsc::channel(16);
    let (image, pending) = need_captcha(connector.login(request(10006, "demo"), tx).await);
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(image.len() > 100);
    let error = pending.submit_captcha("wxyz".to_owned()).await.err();
    assert_eq!(error, Some(QqError::BadCaptcha));
    assert!(sim.world().session(10006).is_none());

    let (tx, rx) = mpsc::channel(16);
    let (again, pending) = need_captcha(connector.login(request(10006, "demo"), tx).await);
    assert_eq!(again, image, "the same code draws the same image");
    let session = match pending.submit_captcha("ABCD".to_owned()).await {
        Ok(LoginStep::Done(session)) => session,
        Ok(LoginStep::NeedCaptcha { .. }) => panic!("the right code was refused"),
        Err(e) => panic!("the right code failed: {e}"),
    };
    assert_eq!(session.uin(), Uin(10006));
    let mut client = Client { session, rx };
    let contacts = client.session.contacts().await.unwrap();
    let mut uins: Vec<u64> = contacts.iter().map(|c| c.uin.0).collect();
    uins.sort_unstable();
    assert_eq!(uins, [10002, 10003]);
    assert!(sim.world().session(10006).is_some());
    client.session.logout().await.unwrap();
    let end = client
        .wait("the end", |e| matches!(e, QqEvent::SessionEnded(_)))
        .await;
    assert_eq!(end, QqEvent::SessionEnded(EndReason::LoggedOut));
    assert!(sim.world().session(10006).is_none());
    sim.shutdown().await;
}

// ---------------------------------------------------------------- contacts

#[tokio::test]
async fn contacts_and_groups_by_real_numbers_on_every_login() {
    let sim = start_sim().await;
    let mut first_login = None;
    for round in 0..2 {
        let client = login(&sim, 10001).await;
        // Groups first: WebQQ tells buddies' presence only through group
        // member stats and status events (webqq.md documents no
        // get_online_buddies2), and all of them are in group 20001.
        let groups = client.session.groups().await.unwrap();
        assert_eq!(groups.len(), 1, "{groups:?}");
        let group = &groups[0];
        assert_eq!(group.number, GroupNumber(20001));
        assert_eq!(group.name, "QQ 桥测试群");
        let mut members: Vec<u64> = group.members.iter().map(|m| m.uin.0).collect();
        members.sort_unstable();
        assert_eq!(members, [10001, 10002, 10003, 10004, 10005]);
        let member = |uin: u64| group.members.iter().find(|m| m.uin == Uin(uin)).unwrap();
        assert_eq!(member(10002).card.as_deref(), Some("微程 (管理员)"));
        assert_eq!(member(10002).nick, "微程");
        assert_eq!(member(10003).display_name(), "胡吉阳");
        assert_eq!(member(10005).card.as_deref(), Some("路人 (群名片)"));
        assert_eq!(member(10005).nick, "路人甲");
        assert_eq!(member(10004).display_name(), "小企鹅");

        let mut contacts = client.session.contacts().await.unwrap();
        contacts.sort_by_key(|c| c.uin);
        let uins: Vec<u64> = contacts.iter().map(|c| c.uin.0).collect();
        assert_eq!(uins, [10002, 10003, 10004], "round {round}");
        let by = |uin: u64| contacts.iter().find(|c| c.uin == Uin(uin)).unwrap();
        assert_eq!(by(10002).nick, "微程");
        assert_eq!(by(10002).face, 270);
        assert_eq!(by(10002).mark_name, None);
        assert_eq!(by(10002).category.as_deref(), Some("网友"));
        assert_eq!(by(10002).presence, Presence::Online);
        assert_eq!(by(10003).nick, "Hackfan 好");
        assert_eq!(by(10003).mark_name.as_deref(), Some("老胡"));
        assert_eq!(by(10003).display_name(), "老胡");
        assert_eq!(by(10003).category.as_deref(), Some("网友"));
        assert_eq!(by(10003).presence, Presence::Busy);
        assert_ne!(by(10004).category.as_deref(), Some("网友"));
        assert_eq!(by(10004).nick, "小企鹅");

        // The profile of a buddy, by real number.
        let profile = client.session.profile(Uin(10002)).await.unwrap();
        assert_eq!(profile.nick, "微程");

        let identity = (uins, members);
        match &first_login {
            None => first_login = Some(identity),
            Some(first) => assert_eq!(first, &identity, "the same numbers on the second login"),
        }
        client.session.logout().await.unwrap();
    }
    sim.shutdown().await;
}

// ---------------------------------------------------------------- messages

#[tokio::test]
async fn buddy_group_and_temporary_session_messages_both_ways() {
    let sim = start_sim().await;
    let mut me = login(&sim, 10001).await;
    let mut buddy = login(&sim, 10002).await;
    let mut stranger = login(&sim, 10005).await;
    let group = GroupNumber(20001);

    // Buddy, both ways.
    me.session
        .send(&ChatId::Buddy(Uin(10002)), &chinese_with_face("你好微程"))
        .await
        .unwrap();
    let (from, text) = buddy.message_in(&ChatId::Buddy(Uin(10001))).await;
    assert_eq!(from, Uin(10001));
    assert_same_message(&text, "你好微程");
    buddy
        .session
        .send(&ChatId::Buddy(Uin(10001)), &chinese_with_face("收到了"))
        .await
        .unwrap();
    let (from, text) = me.message_in(&ChatId::Buddy(Uin(10002))).await;
    assert_eq!(from, Uin(10002));
    assert_same_message(&text, "收到了");

    // Group 20001, both ways: every other member receives it.
    me.session
        .send(&ChatId::Group(group), &chinese_with_face("大家好"))
        .await
        .unwrap();
    let (from, text) = buddy.message_in(&ChatId::Group(group)).await;
    assert_eq!(from, Uin(10001));
    assert_same_message(&text, "大家好");
    let (from, _) = stranger.message_in(&ChatId::Group(group)).await;
    assert_eq!(from, Uin(10001));
    buddy
        .session
        .send(&ChatId::Group(group), &chinese_with_face("群里好热闹"))
        .await
        .unwrap();
    let event = me
        .wait("group message from 10002", |e| {
            matches!(e, QqEvent::Message { chat: ChatId::Group(g), sender, .. }
                if *g == group && *sender == Uin(10002))
        })
        .await;
    let QqEvent::Message {
        text, sender_name, ..
    } = event
    else {
        unreachable!()
    };
    assert_same_message(&text, "群里好热闹");
    assert_eq!(sender_name.as_deref(), Some("微程 (管理员)"));

    // A temporary session with 10005, a member who is not a buddy.
    assert!(!sim.world().is_friend(10001, 10005));
    let to_stranger = ChatId::Session {
        via_group: group,
        uin: Uin(10005),
    };
    me.session
        .send(&to_stranger, &chinese_with_face("临时会话你好"))
        .await
        .unwrap();
    let from_me = ChatId::Session {
        via_group: group,
        uin: Uin(10001),
    };
    let (from, text) = stranger.message_in(&from_me).await;
    assert_eq!(from, Uin(10001));
    assert_same_message(&text, "临时会话你好");
    stranger
        .session
        .send(&from_me, &chinese_with_face("我不是你的好友"))
        .await
        .unwrap();
    let (from, text) = me.message_in(&to_stranger).await;
    assert_eq!(from, Uin(10005));
    assert_same_message(&text, "我不是你的好友");
    sim.shutdown().await;
}

// ---------------------------------------------------------------- presence, requests, signature

#[tokio::test]
async fn presence_friend_requests_and_the_signature() {
    let sim = start_sim().await;
    let mut me = login(&sim, 10001).await;
    let buddy = login(&sim, 10002).await;

    // Presence, invisible seen as offline.
    buddy.session.set_presence(Presence::Busy).await.unwrap();
    me.presence_of(10002, Presence::Busy).await;
    buddy.session.set_presence(Presence::Away).await.unwrap();
    me.presence_of(10002, Presence::Away).await;
    buddy
        .session
        .set_presence(Presence::Invisible)
        .await
        .unwrap();
    me.presence_of(10002, Presence::Offline).await;
    buddy.session.set_presence(Presence::Online).await.unwrap();
    me.presence_of(10002, Presence::Online).await;
    // A status set from outside the client too.
    let (status, _) =
        control_post(&sim, "/status", json!({"uin": 10003, "status": "online"})).await;
    assert_eq!(status, 200);
    me.presence_of(10003, Presence::Online).await;

    // A friend request from a stranger, accepted.
    assert!(!sim.world().is_friend(10001, 10007));
    let (status, body) = control_post(
        &sim,
        "/friend_request",
        json!({"from": 10007, "to": 10001, "message": "我是新朋友，加个好友吧"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let event = me
        .wait("friend request", |e| {
            matches!(e, QqEvent::FriendRequest { .. })
        })
        .await;
    assert_eq!(
        event,
        QqEvent::FriendRequest {
            uin: Uin(10007),
            message: "我是新朋友，加个好友吧".to_owned()
        }
    );
    me.session
        .answer_request(Uin(10007), true, "")
        .await
        .unwrap();
    assert!(sim.world().is_friend(10001, 10007));
    assert!(sim.world().is_friend(10007, 10001));
    let contacts = me.session.contacts().await.unwrap();
    let newcomer = contacts
        .iter()
        .find(|c| c.uin == Uin(10007))
        .unwrap_or_else(|| panic!("10007 is not among {contacts:?}"));
    assert_eq!(newcomer.nick, "新朋友");
    // The new buddy can write at once.
    let (status, _) = control_post(
        &sim,
        "/inject",
        json!({"from": 10007, "to": 10001, "text": "谢谢通过"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, text) = me.message_in(&ChatId::Buddy(Uin(10007))).await;
    assert_eq!(parts(&text).0.trim_end(), "谢谢通过");

    // The signature.
    me.session
        .set_signature("用 qqbridge 上 QQ 😀")
        .await
        .unwrap();
    let snapshot = control_get(&sim, "/accounts/10001").await;
    assert_eq!(snapshot["long_nick"], "用 qqbridge 上 QQ 😀", "{snapshot}");
    sim.shutdown().await;
}

// ---------------------------------------------------------------- outages

#[tokio::test]
async fn a_second_login_kicks_the_first_session() {
    let sim = start_sim().await;
    let mut first = login(&sim, 10001).await;
    // Let the first client's poll be held by the server.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = login(&sim, 10001).await;
    let event = first
        .wait("the kick", |e| matches!(e, QqEvent::SessionEnded(_)))
        .await;
    assert!(
        matches!(event, QqEvent::SessionEnded(EndReason::Kicked(_))),
        "{event:?}"
    );
    assert_eq!(
        first
            .session
            .send(&ChatId::Buddy(Uin(10002)), &RichText::plain("还在吗"))
            .await,
        Err(QqError::SessionEnded)
    );
    // The second session works.
    sim.world()
        .send_message(10002, 10001, "你换电脑了？", Origin::Control);
    let (from, text) = second.message_in(&ChatId::Buddy(Uin(10002))).await;
    assert_eq!(from, Uin(10002));
    assert_eq!(parts(&text).0.trim_end(), "你换电脑了？");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_session_ended_by_the_server_is_restored_and_keeps_receiving() {
    let sim = start_sim().await;
    let mut me = login(&sim, 10001).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let serial = sim.world().session(10001).expect("a live session").serial;
    assert!(sim
        .world()
        .end_session_by_serial(10001, serial, Origin::Server));
    // The poll gets 121; the client relinks or logs in again.
    let event = me
        .wait("reconnecting", |e| {
            matches!(e, QqEvent::Reconnecting { .. })
        })
        .await;
    assert!(
        matches!(&event, QqEvent::Reconnecting { reason } if reason.contains("121")),
        "{event:?}"
    );
    me.wait("reconnected", |e| matches!(e, QqEvent::Reconnected))
        .await;
    let live = sim.world().session(10001).expect("a new session");
    assert_ne!(live.serial, serial);

    sim.world()
        .send_message(10002, 10001, "断线以后还能收到吗？", Origin::Control);
    let (from, text) = me.message_in(&ChatId::Buddy(Uin(10002))).await;
    assert_eq!(from, Uin(10002));
    assert_eq!(parts(&text).0.trim_end(), "断线以后还能收到吗？");
    // Sending works on the restored session too.
    me.session
        .send(&ChatId::Buddy(Uin(10004)), &RichText::plain("回声测试"))
        .await
        .unwrap();
    let (from, text) = me.message_in(&ChatId::Buddy(Uin(10004))).await;
    assert_eq!(from, Uin(10004));
    assert_eq!(parts(&text).0.trim_end(), "回声测试");
    sim.shutdown().await;
}

// ---------------------------------------------------------------- cross-protocol

#[tokio::test]
async fn webqq_and_http11_sessions_chat_and_see_each_other() {
    let sim = start_sim().await;
    let mut web = login(&sim, 10001).await;
    let mut old = login_with(&http11(&sim), 10002).await;
    assert_eq!(old.session.protocol(), Protocol::Http11);

    // WebQQ → HTTP QQ 1.1.
    web.session
        .send(
            &ChatId::Buddy(Uin(10002)),
            &chinese_with_face("从 WebQQ 来的问候"),
        )
        .await
        .unwrap();
    let (from, text) = old.message_in(&ChatId::Buddy(Uin(10001))).await;
    assert_eq!(from, Uin(10001));
    assert_same_message(&text, "从 WebQQ 来的问候");

    // HTTP QQ 1.1 → WebQQ.
    old.session
        .send(&ChatId::Buddy(Uin(10001)), &chinese_with_face("老协议回复"))
        .await
        .unwrap();
    let (from, text) = web.message_in(&ChatId::Buddy(Uin(10002))).await;
    assert_eq!(from, Uin(10002));
    assert_same_message(&text, "老协议回复");

    // Presence both ways.
    // HTTP QQ 1.1 has no "away": it is busy there (http11.md).
    old.session.set_presence(Presence::Away).await.unwrap();
    web.presence_of(10002, Presence::Busy).await;
    old.session.set_presence(Presence::Online).await.unwrap();
    web.presence_of(10002, Presence::Online).await;
    web.session.set_presence(Presence::Busy).await.unwrap();
    old.presence_of(10001, Presence::Busy).await;
    web.session.set_presence(Presence::Invisible).await.unwrap();
    old.presence_of(10001, Presence::Offline).await;
    sim.shutdown().await;
}

// ---------------------------------------------------------------- IRC gateway

#[tokio::test]
async fn a_captcha_login_through_the_irc_gateway() {
    let sim = start_sim().await;
    // The image the simulator draws for 10006, as a WebQQ client sees it.
    let (tx, _rx) = mpsc::channel(16);
    let expected = match webqq(&sim).login(request(10006, "demo"), tx).await {
        Ok(LoginStep::NeedCaptcha { image, .. }) => image,
        _ => panic!("10006 needs a captcha"),
    };

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bridge.db")).unwrap());
    let connectors: Vec<Arc<dyn QqConnector>> = vec![Arc::new(http11(&sim)), Arc::new(webqq(&sim))];
    let core = BridgeCore::new(
        store.clone(),
        connectors,
        Protocol::Http11,
        Arc::new(|_: &str| Some(PermissionLevel::User)),
    );
    let gateway = gateway::start(core.clone(), store, &test_config())
        .await
        .expect("gateway starts");
    let addr = gateway.local_addr();

    let mut irc = raw_connect(addr).await;
    irc.register("carol").await;
    irc.send("PRIVMSG &qq :login 10006 demo webqq").await;
    let line = irc.expect("captcha image: ").await;
    let link = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no link in {line:?}"))
        .to_owned();
    let prefix = format!("http://{addr}/captcha/");
    assert!(link.starts_with(&prefix), "{link} is not on {addr}");

    // A plain HTTP GET on the gateway port.
    let mut http = tokio::net::TcpStream::connect(addr).await.unwrap();
    let path = &link[prefix.len() - "/captcha/".len()..];
    http.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(EVENT_WAIT, http.read_to_end(&mut response))
        .await
        .expect("the image arrives")
        .unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP header");
    let head = String::from_utf8_lossy(&response[..split]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("image/png"), "{head}");
    let body = &response[split + 4..];
    assert!(body.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(body, expected.as_slice(), "the simulator's image for 10006");

    // A wrong code ends that login attempt (the WebQQ client answers
    // BadCaptcha); the core starts it again, so a fresh link follows.
    irc.send("PRIVMSG &qq :captcha wxyz").await;
    irc.expect(":wrong captcha code; QQ wants a captcha").await;
    let line = irc.expect("captcha image: ").await;
    assert!(line.contains(&prefix), "{line}");
    assert!(!line.contains(&link), "a fresh link: {line}");
    assert!(sim.world().session(10006).is_none());

    irc.send("PRIVMSG &qq :captcha abcd").await;
    irc.expect("logged in to QQ as 10006 (webqq)").await;
    for buddy in ["WeiCheng", "HackfanHao"] {
        let join = irc.expect(&format!(":{buddy}!")).await;
        assert!(join.contains("JOIN") && join.contains("&qq"), "{join}");
    }
    assert_eq!(
        sim.world().session(10006).map(|s| s.protocol),
        Some(Origin::Webqq)
    );
    drop(gateway);
    sim.shutdown().await;
}
