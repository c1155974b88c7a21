//! The Matrix bot mode end to end, against a real Synapse (no appservice
//! registration: the bridge logs in as an ordinary account) and the
//! built-in QQ simulator. The Matrix user is a matrix-sdk client with its
//! own SQLite crypto store, so in encrypted rooms it really decrypts what
//! the bot sent, and the bot really decrypts what it sent.
//!
//! - an unencrypted command chat and portals: login (redacted), a QQ
//!   buddy message as `<nick> text` / bold name, a reply reaching QQ, a
//!   room bound to a QQ group with `!qq bridge group 20001`;
//! - an encrypted command chat and encrypted portal, then a bridge restart
//!   in the middle: a message alice wrote while the bridge was down
//!   reaches QQ once, and the encrypted conversation continues both ways
//!   with the keys kept in the bot's store.
//!
//! Synapse not starting is a failure, never a skip.

#![cfg(feature = "matrix")]
// matrix-sdk's sync future is deeply nested.
#![recursion_limit = "256"]

#[path = "support/logs.rs"]
mod logs;
#[allow(dead_code)]
#[path = "support/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "support/synapse.rs"]
mod synapse;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matrix_sdk::config::SyncSettings;
use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use matrix_sdk::ruma::events::room::member::StrippedRoomMemberEvent;
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::room::redaction::OriginalSyncRoomRedactionEvent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomId};
use matrix_sdk::{Client, Room};
use serde_json::Value;

use qqbridge::config::Config;
use qqbridge::core::model::Uin;
use qqbridge::core::BridgeCore;
use qqbridge::matrix::botmode::{self, BotHandle};
use qqbridge::qq::sim::{self, events::EventKind, Origin, Scenario, SimConfig, SimHandle};
use qqbridge::qq::webqq::{WebqqConnector, WebqqOptions};
use qqbridge::qq::{http11::Http11Connector, QqConnector};
use qqbridge::store::{SqliteStore, Store};

use synapse::{Synapse, SynapseOptions};

const WAIT: Duration = Duration::from_secs(60);
const BOT_PASSWORD: &str = "bot-pass-5f1e0c";

// ---------------------------------------------------------------- logs

fn capture_logs() {
    logs::capture("qqbridge=debug,matrix_sdk=warn,info");
}

fn logged_text() -> String {
    logs::text()
}

/// The end of the log, for failure messages.
fn log_tail() -> String {
    logs::tail(60)
}

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out waiting for {what}; bridge log tail:\n{}",
                log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- the rig

struct Bridge {
    core: Arc<BridgeCore>,
    bot: BotHandle,
}

struct Rig {
    hs: Synapse,
    sim: SimHandle,
    config: Config,
    dir: tempfile::TempDir,
    bridge: Option<Bridge>,
    bot_id: String,
}

impl Rig {
    async fn start(encrypt_portals: bool) -> Rig {
        capture_logs();
        let mut sim_config = SimConfig::new(Scenario::demo());
        sim_config.time_scale = Some(0.01);
        let sim = sim::start(sim_config).await.expect("simulator starts");
        let hs = match Synapse::start(SynapseOptions::default()).await {
            Ok(hs) => hs,
            Err(e) => {
                panic!("Synapse must start for these tests (run scripts/install-test-deps): {e:#}")
            }
        };
        let (bot_id, _) = hs
            .register_user("qqbot", BOT_PASSWORD, false)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            r#"
database: {db}
qq:
  server: http://{qq}
  protocol: webqq
matrix:
  enabled: true
  mode: bot
  homeserver_url: {hs_url}
  domain: localhost
  bot:
    user_id: "{bot_id}"
    password: "${{QQB_TEST_BOT_PASSWORD}}"
    store_path: {store}
    encrypt_portals: {encrypt_portals}
permissions:
  "localhost": user
"#,
            db = dir.path().join("bridge.db").display(),
            qq = sim.protocol_addr(),
            hs_url = hs.base_url(),
            store = dir.path().join("bot-store").display(),
        );
        let env = |var: &str| (var == "QQB_TEST_BOT_PASSWORD").then(|| BOT_PASSWORD.to_owned());
        let config = qqbridge::config::load_str("test.yaml", &yaml, &env).expect("valid config");
        let refused = qqbridge::app::registration(&config).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("needs no appservice registration"),
            "{refused}"
        );
        let mut rig = Rig {
            hs,
            sim,
            config,
            dir,
            bridge: None,
            bot_id,
        };
        rig.start_bridge().await;
        rig
    }

    async fn start_bridge(&mut self) {
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&self.dir.path().join("bridge.db")).unwrap());
        let base = format!("http://{}", self.sim.protocol_addr());
        let webqq = WebqqConnector::with_options(
            &base,
            WebqqOptions {
                heartbeat_interval: Duration::from_millis(200),
                retry_initial: Duration::from_millis(20),
                retry_max: Duration::from_millis(200),
                ..WebqqOptions::default()
            },
        );
        let http11 = Http11Connector::new(&base)
            .unwrap()
            .with_poll_interval(Duration::from_millis(20), Duration::from_millis(100));
        let connectors: Vec<Arc<dyn QqConnector>> = vec![Arc::new(webqq), Arc::new(http11)];
        let config = self.config.clone();
        let core = BridgeCore::new(
            store.clone(),
            connectors,
            self.config.qq.protocol,
            Arc::new(move |user: &str| config.permission_of(user)),
        );
        let bot = botmode::start(core.clone(), store, &self.config)
            .await
            .expect("bot mode starts");
        core.restore_logins().await.unwrap();
        self.bridge = Some(Bridge { core, bot });
    }

    async fn stop_bridge(&mut self) {
        if let Some(bridge) = self.bridge.take() {
            bridge.bot.shutdown().await;
            bridge.core.shutdown().await;
        }
    }

    fn core(&self) -> &Arc<BridgeCore> {
        &self.bridge.as_ref().expect("bridge running").core
    }

    /// Texts `uin` received through the simulator.
    fn received_by(&self, uin: u64) -> Vec<(u64, String)> {
        self.sim
            .world()
            .received(uin)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Message { text } => Some((e.from, text)),
                _ => None,
            })
            .collect()
    }

    fn group_received_by(&self, uin: u64) -> Vec<(u64, String)> {
        self.sim
            .world()
            .received(uin)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| {
                let json = serde_json::to_value(&e).ok()?;
                (json["kind"] == "group_message")
                    .then(|| (e.from, json["text"].as_str().unwrap_or("").to_owned()))
            })
            .collect()
    }

    /// The QQ nick of `uin` as the bridge shows it to `user`.
    fn nick(&self, user: &str, uin: u64) -> String {
        self.core()
            .contact(user, Uin(uin))
            .map(|c| c.display_name().to_owned())
            .expect("a buddy")
    }

    fn assert_no_secrets_logged(&self) {
        let text = logged_text();
        assert!(
            !text.contains(BOT_PASSWORD),
            "the bot's password in the logs"
        );
        assert!(
            !text.contains("login 10001 demo"),
            "a QQ password in the logs"
        );
        let session =
            std::fs::read_to_string(self.dir.path().join("bot-store/session.json")).unwrap();
        let session: Value = serde_json::from_str(&session).unwrap();
        let token = session["access_token"].as_str().unwrap();
        assert!(token.len() > 8);
        assert!(!text.contains(token), "the bot's access token in the logs");
    }
}

// ---------------------------------------------------------------- a Matrix user

/// A message the user's client saw (decrypted when it was encrypted).
#[derive(Debug, Clone)]
struct Seen {
    room: String,
    sender: String,
    event_id: String,
    msgtype: String,
    body: String,
    formatted: Option<String>,
}

/// A Matrix user on a matrix-sdk client with its own crypto store, syncing
/// in the background and accepting every invite.
struct User {
    id: OwnedUserId,
    client: Client,
    seen: Arc<Mutex<Vec<Seen>>>,
    redacted: Arc<Mutex<Vec<String>>>,
    sync: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for User {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

impl User {
    async fn login(hs: &Synapse, localpart: &str) -> User {
        let (id, _) = hs.register_user(localpart, "pw", false).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let client = Client::builder()
            .homeserver_url(hs.base_url())
            .sqlite_store(dir.path(), None)
            .build()
            .await
            .unwrap();
        client
            .matrix_auth()
            .login_username(&id, "pw")
            .send()
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let redacted = Arc::new(Mutex::new(Vec::new()));
        {
            let seen = seen.clone();
            client.add_event_handler(move |ev: OriginalSyncRoomMessageEvent, room: Room| {
                let seen = seen.clone();
                async move {
                    let (msgtype, formatted) = match &ev.content.msgtype {
                        MessageType::Text(t) => ("m.text", t.formatted.clone()),
                        MessageType::Notice(t) => ("m.notice", t.formatted.clone()),
                        other => (other.msgtype(), None),
                    };
                    seen.lock().unwrap().push(Seen {
                        room: room.room_id().to_string(),
                        sender: ev.sender.to_string(),
                        event_id: ev.event_id.to_string(),
                        msgtype: msgtype.to_owned(),
                        body: ev.content.body().to_owned(),
                        formatted: formatted.map(|f| f.body),
                    });
                }
            });
        }
        {
            let redacted = redacted.clone();
            client.add_event_handler(move |ev: OriginalSyncRoomRedactionEvent| {
                let redacted = redacted.clone();
                async move {
                    // Room v11 keeps `redacts` in the content.
                    if let Some(id) = ev.content.redacts.or(ev.redacts) {
                        redacted.lock().unwrap().push(id.to_string());
                    }
                }
            });
        }
        let own_id = client.user_id().unwrap().to_owned();
        client.add_event_handler(move |ev: StrippedRoomMemberEvent, room: Room| {
            let own_id = own_id.clone();
            async move {
                if ev.state_key == own_id {
                    tokio::spawn(async move {
                        for _ in 0..20 {
                            if room.join().await.is_ok() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    });
                }
            }
        });
        client.sync_once(SyncSettings::default()).await.unwrap();
        let sync = {
            let client = client.clone();
            tokio::spawn(async move {
                let _ = client
                    .sync(SyncSettings::default().timeout(Duration::from_millis(500)))
                    .await;
            })
        };
        User {
            id: OwnedUserId::try_from(id).unwrap(),
            client,
            seen,
            redacted,
            sync,
            _dir: dir,
        }
    }

    /// A direct chat with the bot: encrypted (matrix-sdk's `create_dm`) or
    /// plain. Returns once the bot joined and welcomed the user.
    async fn open_command_chat(&self, bot: &str, encrypted: bool) -> OwnedRoomId {
        let bot = OwnedUserId::try_from(bot).unwrap();
        let room = if encrypted {
            self.client.create_dm(&bot).await.unwrap()
        } else {
            let mut request = CreateRoom::new();
            request.invite = vec![bot.clone()];
            request.is_direct = true;
            request.preset = Some(RoomPreset::PrivateChat);
            // The bot may redact here (the login line).
            let levels = serde_json::json!({ "users": { bot.as_str(): 50 } });
            request.power_level_content_override = Some(
                matrix_sdk::ruma::serde::Raw::new(&levels)
                    .unwrap()
                    .cast_unchecked(),
            );
            self.client.create_room(request).await.unwrap()
        };
        let id = room.room_id().to_owned();
        self.wait_message(
            "the bot's welcome",
            Some(&id),
            bot.as_str(),
            "Hello! I bridge",
        )
        .await;
        id
    }

    /// A plain room (not a DM) with the bot invited.
    async fn open_room(&self, bot: &str, name: &str) -> OwnedRoomId {
        let mut request = CreateRoom::new();
        request.name = Some(name.to_owned());
        request.invite = vec![OwnedUserId::try_from(bot).unwrap()];
        request.preset = Some(RoomPreset::PrivateChat);
        let room = self.client.create_room(request).await.unwrap();
        let id = room.room_id().to_owned();
        self.wait_message("the bot's welcome", Some(&id), bot, "Hello! I bridge")
            .await;
        id
    }

    async fn say(&self, room: &RoomId, text: &str) -> String {
        let room = self.client.get_room(room).expect("a joined room");
        let response = room
            .send(RoomMessageEventContent::text_plain(text))
            .await
            .unwrap();
        response.response.event_id.to_string()
    }

    fn find(&self, room: Option<&RoomId>, sender: &str, text: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| {
                room.is_none_or(|r| r.as_str() == s.room)
                    && s.sender == sender
                    && s.body.contains(text)
            })
            .cloned()
            .collect()
    }

    async fn wait_message(
        &self,
        what: &str,
        room: Option<&RoomId>,
        sender: &str,
        text: &str,
    ) -> Seen {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.find(room, sender, text).into_iter().next() {
                return s;
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = self
                    .seen
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|s| format!("{} {}: {}", s.room, s.sender, s.body))
                    .collect();
                panic!(
                    "{} timed out waiting for {what}; seen:\n{}\nbridge log tail:\n{}",
                    self.id,
                    seen.join("\n"),
                    log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a command and waits for the bot's answer containing `answer`.
    async fn command(&self, room: &RoomId, bot: &str, line: &str, answer: &str) -> String {
        let event = self.say(room, line).await;
        self.wait_message(line, Some(room), bot, answer).await;
        event
    }

    /// Whether the user's client knows `room` as encrypted.
    async fn is_encrypted(&self, room: &RoomId) -> bool {
        let room = self.client.get_room(room).unwrap();
        room.latest_encryption_state().await.unwrap().is_encrypted()
    }

    /// The event as the homeserver stores it (no decryption).
    async fn raw_event(&self, room: &str, event_id: &str) -> Value {
        let token = self.client.access_token().unwrap();
        let url = format!(
            "{}_matrix/client/v3/rooms/{room}/event/{event_id}",
            self.client.homeserver()
        );
        reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_mode_in_unencrypted_rooms() {
    let rig = Rig::start(false).await;
    let world = rig.sim.world().clone();
    let bot = rig.bot_id.clone();
    let alice = User::login(&rig.hs, "alice").await;
    let chat = alice.open_command_chat(&bot, false).await;

    // Logging in from the command chat; the password is redacted.
    let login = alice
        .command(
            &chat,
            &bot,
            "login 10001 demo webqq",
            "logged in to QQ as 10001",
        )
        .await;
    eventually("the login message redacted", || {
        alice
            .redacted
            .lock()
            .unwrap()
            .contains(&login)
            .then_some(())
    })
    .await;

    // A QQ buddy's message opens a portal; the bot posts it relay-style.
    world.send_message(10002, 10001, "你好 alice", Origin::Control);
    let hello = alice
        .wait_message("the buddy's message", None, &bot, "你好 alice")
        .await;
    let nick = rig.nick(alice.id.as_str(), 10002);
    assert_eq!(hello.msgtype, "m.text");
    assert_eq!(hello.body, format!("<{nick}> 你好 alice"));
    assert_eq!(
        hello.formatted.as_deref(),
        Some(format!("<b>{nick}</b>: 你好 alice").as_str())
    );
    let portal = OwnedRoomId::try_from(hello.room.as_str()).unwrap();
    assert_ne!(portal, chat, "a room of its own");
    assert!(!alice.is_encrypted(&portal).await);

    // A reply goes to QQ through alice's own login.
    eventually("alice joined the portal", || {
        alice
            .client
            .get_room(&portal)
            .filter(|r| r.state() == matrix_sdk::RoomState::Joined)
    })
    .await;
    alice.say(&portal, "hi from matrix").await;
    eventually("the reply on QQ", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(from, t)| *from == 10001 && t == "hi from matrix")
    })
    .await;

    // A room alice made herself, bound to QQ group 20001.
    let group_room = alice.open_room(&bot, "our group").await;
    alice
        .command(
            &group_room,
            &bot,
            "!qq bridge group 20001",
            "bridged to QQ group 20001",
        )
        .await;
    alice.say(&group_room, "hello group").await;
    let member = world
        .group(20001)
        .unwrap()
        .members
        .into_iter()
        .find(|m| *m != 10001)
        .unwrap();
    eventually("the group message on QQ", || {
        rig.group_received_by(member)
            .into_iter()
            .find(|(from, t)| *from == 10001 && t.contains("hello group"))
    })
    .await;
    world.send_group_message(20001, member, "group hello back", Origin::Control);
    let back = alice
        .wait_message(
            "the group message in the bound room",
            Some(&group_room),
            &bot,
            "group hello back",
        )
        .await;
    assert!(back.body.starts_with('<'), "{back:?}");
    assert!(back.formatted.unwrap().starts_with("<b>"));

    // A command meaningless elsewhere explains itself.
    alice
        .command(&chat, &bot, "bridge 20001 libera #qq", "bridge buddy")
        .await;

    rig.assert_no_secrets_logged();
    let mut rig = rig;
    rig.stop_bridge().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_mode_encrypted_conversation_survives_a_restart() {
    let mut rig = Rig::start(true).await;
    let world = rig.sim.world().clone();
    let bot = rig.bot_id.clone();
    let alice = User::login(&rig.hs, "alice").await;

    // An encrypted command chat: the welcome was decrypted by alice, and
    // the bot decrypts her login.
    let chat = alice.open_command_chat(&bot, true).await;
    assert!(alice.is_encrypted(&chat).await);
    alice
        .command(
            &chat,
            &bot,
            "login 10001 demo webqq",
            "logged in to QQ as 10001",
        )
        .await;

    // The portal the bot creates is encrypted; alice decrypts the message.
    world.send_message(10002, 10001, "secret hello", Origin::Control);
    let hello = alice
        .wait_message("the buddy's message", None, &bot, "secret hello")
        .await;
    let nick = rig.nick(alice.id.as_str(), 10002);
    assert_eq!(hello.body, format!("<{nick}> secret hello"));
    let portal = OwnedRoomId::try_from(hello.room.as_str()).unwrap();
    assert!(alice.is_encrypted(&portal).await);
    let raw = alice.raw_event(&hello.room, &hello.event_id).await;
    assert_eq!(
        raw["type"], "m.room.encrypted",
        "encrypted on the wire: {raw}"
    );
    assert!(!raw.to_string().contains("secret hello"));

    // The bot decrypts alice's reply.
    eventually("alice joined the portal", || {
        alice
            .client
            .get_room(&portal)
            .filter(|r| r.state() == matrix_sdk::RoomState::Joined)
    })
    .await;
    let reply = alice.say(&portal, "encrypted reply 1").await;
    let raw = alice.raw_event(portal.as_str(), &reply).await;
    assert_eq!(raw["type"], "m.room.encrypted", "{raw}");
    eventually("the decrypted reply on QQ", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(from, t)| *from == 10001 && t == "encrypted reply 1")
    })
    .await;

    // The bridge stops in the middle of the conversation; alice writes
    // while it is down.
    rig.stop_bridge().await;
    alice
        .say(&portal, "written while the bridge was down")
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.start_bridge().await;

    eventually("the Matrix message written during the restart", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(_, t)| t == "written while the bridge was down")
    })
    .await;

    // The encrypted conversation continues both ways.
    world.send_message(10002, 10001, "after the restart", Origin::Control);
    alice
        .wait_message(
            "a message after the restart in the same room",
            Some(&portal),
            &bot,
            "after the restart",
        )
        .await;
    alice.say(&portal, "encrypted reply 2").await;
    eventually("the reply after the restart on QQ", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(from, t)| *from == 10001 && t == "encrypted reply 2")
    })
    .await;

    // Nothing lost, nothing doubled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_qq = rig.received_by(10002);
    for text in [
        "encrypted reply 1",
        "written while the bridge was down",
        "encrypted reply 2",
    ] {
        let n = on_qq.iter().filter(|(_, t)| t == text).count();
        assert_eq!(n, 1, "{text:?} reached QQ {n} times: {on_qq:?}");
    }
    for text in ["secret hello", "after the restart"] {
        let n = alice
            .find(None, &bot, text)
            .iter()
            .filter(|s| s.body.ends_with(text))
            .count();
        assert_eq!(n, 1, "{text:?} reached Matrix {n} times");
    }
    let rooms: std::collections::HashSet<String> = alice
        .find(None, &bot, "")
        .into_iter()
        .filter(|s| s.body.starts_with(&format!("<{nick}>")))
        .map(|s| s.room)
        .collect();
    assert_eq!(rooms.len(), 1, "one portal for the buddy chat: {rooms:?}");
    let encrypted_msgs = alice
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.body.contains("after the restart"))
        .count();
    assert_eq!(encrypted_msgs, 1);

    rig.assert_no_secrets_logged();
    rig.stop_bridge().await;
}
