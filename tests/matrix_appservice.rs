//! The Matrix appservice end to end, against a real Synapse (started by
//! `tests/support/synapse.rs` from the venv `scripts/install-test-deps`
//! builds) and the built-in QQ simulator (demo scenario, WebQQ so groups
//! work): logging in from a DM with the bot (the password is redacted),
//! a buddy message opening a DM portal, replies arriving at the simulated
//! account with a read receipt, a group room both ways, ghost presence, a
//! friend request accepted from Matrix, a replayed transaction relayed
//! once, hs_token checks, a homeserver outage, and a bridge restart that
//! reuses its portals and gets what Synapse queued meanwhile.
//!
//! Synapse not starting is a failure, never a skip.

#![cfg(feature = "matrix")]

#[path = "support/logs.rs"]
mod logs;
#[allow(dead_code)]
#[path = "support/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "support/synapse.rs"]
mod synapse;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use qqbridge::config::Config;
use qqbridge::core::BridgeCore;
use qqbridge::matrix::{self, MatrixHandle};
use qqbridge::qq::sim::{
    self, events::EventKind, Origin, Presence as SimPresence, Scenario, SimConfig, SimHandle,
};
use qqbridge::qq::webqq::{WebqqConnector, WebqqOptions};
use qqbridge::qq::{http11::Http11Connector, QqConnector};
use qqbridge::store::{SqliteStore, Store};

use process::free_port;
use synapse::{Synapse, SynapseOptions};

const WAIT: Duration = Duration::from_secs(40);
const BOT: &str = "@qqbot:localhost";
const GHOST_10002: &str = "@_qq_10002:localhost";

// ---------------------------------------------------------------- logs

fn capture_logs() {
    logs::capture("qqbridge=debug,info");
}

fn logged_text() -> String {
    logs::text()
}

/// The end of the log, for failure messages.
fn log_tail() -> String {
    logs::tail(60)
}

// ---------------------------------------------------------------- the rig

struct Bridge {
    core: Arc<BridgeCore>,
    matrix: MatrixHandle,
}

struct Rig {
    hs: Synapse,
    sim: SimHandle,
    config: Config,
    dir: tempfile::TempDir,
    bridge: Option<Bridge>,
    as_token: String,
    hs_token: String,
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Rig {
    async fn start() -> Rig {
        Rig::start_with("").await
    }

    /// `extra_matrix`: more keys of the `matrix` section (indented by 2).
    async fn start_with(extra_matrix: &str) -> Rig {
        capture_logs();
        let mut sim_config = SimConfig::new(Scenario::demo());
        sim_config.time_scale = Some(0.01);
        let sim = sim::start(sim_config).await.expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        let as_port = free_port();
        let as_token = random_token();
        let hs_token = random_token();
        // Synapse's port is known only once it runs: the config is written
        // again then (the registration does not depend on it).
        let yaml = |hs_url: &str| {
            format!(
                r#"
database: {db}
qq:
  server: http://{qq}
  protocol: webqq
matrix:
  enabled: true
  homeserver_url: {hs_url}
  domain: localhost
  appservice:
    listen: 127.0.0.1:{as_port}
    url: http://127.0.0.1:{as_port}
    as_token: {as_token}
    hs_token: {hs_token}
{extra_matrix}
permissions:
  "localhost": user
"#,
                db = dir.path().join("bridge.db").display(),
                qq = sim.protocol_addr(),
            )
        };
        let config =
            qqbridge::config::load_str("test.yaml", &yaml("http://127.0.0.1:1"), &|_| None)
                .expect("test config is valid");
        let registration = qqbridge::app::registration(&config).await.unwrap();
        assert!(registration.contains(&format!("as_token: {as_token}")));
        assert!(registration.contains("rate_limited: false"));
        let hs = match Synapse::start(SynapseOptions::with_appservice(registration)).await {
            Ok(hs) => hs,
            Err(e) => {
                panic!("Synapse must start for these tests (run scripts/install-test-deps): {e:#}")
            }
        };
        let config = qqbridge::config::load_str("test.yaml", &yaml(&hs.base_url()), &|_| None)
            .expect("test config is valid");
        let mut rig = Rig {
            hs,
            sim,
            config,
            dir,
            bridge: None,
            as_token,
            hs_token,
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
        let matrix = matrix::start(core.clone(), store, &self.config)
            .await
            .expect("appservice starts");
        core.restore_logins().await.unwrap();
        self.bridge = Some(Bridge { core, matrix });
    }

    async fn stop_bridge(&mut self) {
        if let Some(bridge) = self.bridge.take() {
            bridge.matrix.shutdown().await;
            bridge.core.shutdown().await;
        }
    }

    fn as_url(&self) -> String {
        format!("http://{}", self.config.matrix.appservice.listen)
    }

    /// Texts an account received through the simulator, with the sender.
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

    fn assert_no_secrets_logged(&self) {
        let text = logged_text();
        assert!(!text.contains(&self.as_token), "as_token in the logs");
        assert!(!text.contains(&self.hs_token), "hs_token in the logs");
        assert!(!text.contains("login 10001 demo"), "a password in the logs");
    }
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

// ---------------------------------------------------------------- a Matrix user

/// A Matrix user driving the client-server API with `/sync`.
struct User {
    id: String,
    token: String,
    base: String,
    http: reqwest::Client,
    since: Option<String>,
    /// (room, event) of every timeline and ephemeral event seen.
    events: Vec<(String, Value)>,
    invites: Vec<(String, Value)>,
}

impl User {
    async fn register(hs: &Synapse, localpart: &str) -> User {
        let (id, token) = hs.register_user(localpart, "pw", false).await.unwrap();
        User {
            id,
            token,
            base: hs.base_url(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            since: None,
            events: Vec::new(),
            invites: Vec::new(),
        }
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            req = req.json(&body);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({ "error": e.to_string() })),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.request(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 200, "POST {path}: {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.request(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    async fn sync(&mut self) {
        // Room timelines up to 1,000 events, so a busy room's events are
        // not cut short between two syncs.
        let mut path =
            "/_matrix/client/v3/sync?timeout=300&filter=%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A1000%7D%7D%7D"
                .to_owned();
        if let Some(since) = &self.since {
            path.push_str(&format!("&since={since}"));
        }
        let (status, v) = self.request(reqwest::Method::GET, &path, None).await;
        if status != 200 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
        self.since = v["next_batch"].as_str().map(str::to_owned);
        if let Some(rooms) = v["rooms"]["join"].as_object() {
            for (room, data) in rooms {
                for section in ["timeline", "ephemeral"] {
                    for event in data[section]["events"].as_array().into_iter().flatten() {
                        self.events.push((room.clone(), event.clone()));
                    }
                }
            }
        }
        if let Some(rooms) = v["rooms"]["leave"].as_object() {
            for (room, data) in rooms {
                for event in data["timeline"]["events"].as_array().into_iter().flatten() {
                    self.events.push((room.clone(), event.clone()));
                }
            }
        }
        if let Some(rooms) = v["rooms"]["invite"].as_object() {
            for (room, data) in rooms {
                self.invites.push((room.clone(), data.clone()));
            }
        }
    }

    async fn wait<T>(&mut self, what: &str, mut found: impl FnMut(&User) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = found(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{} timed out waiting for {what}",
                self.id
            );
            self.sync().await;
        }
    }

    /// A message event in `room` (any room if none) from `sender` whose
    /// body contains `text`.
    fn message(&self, room: Option<&str>, sender: &str, text: &str) -> Option<(String, Value)> {
        self.events
            .iter()
            .find(|(r, e)| {
                room.is_none_or(|room| room == r)
                    && e["type"] == "m.room.message"
                    && e["sender"] == sender
                    && e["content"]["body"]
                        .as_str()
                        .is_some_and(|b| b.contains(text))
            })
            .cloned()
    }

    fn invite_from(&self, inviter: &str) -> Option<(String, Value)> {
        self.invites
            .iter()
            .find(|(_, data)| {
                data["invite_state"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["type"] == "m.room.member" && e["sender"] == inviter)
            })
            .cloned()
    }

    async fn join(&self, room: &str) {
        self.post(&format!("/_matrix/client/v3/rooms/{room}/join"), json!({}))
            .await;
    }

    async fn send(&self, room: &str, content: Value) -> String {
        let txn = random_token();
        let (status, v) = self
            .request(
                reqwest::Method::PUT,
                &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
                Some(content),
            )
            .await;
        assert_eq!(status, 200, "send: {v}");
        v["event_id"].as_str().unwrap().to_owned()
    }

    async fn say(&self, room: &str, text: &str) -> String {
        self.send(room, json!({ "msgtype": "m.text", "body": text }))
            .await
    }

    /// Opens a DM with the bot and waits for its welcome.
    async fn open_bot_room(&mut self) -> String {
        let room = self
            .post(
                "/_matrix/client/v3/createRoom",
                json!({ "is_direct": true, "invite": [BOT], "preset": "trusted_private_chat" }),
            )
            .await["room_id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.wait("the bot's welcome", |u| {
            u.message(Some(&room), BOT, "Hello!")
        })
        .await;
        room
    }

    /// Sends a bot command and returns the bot's answer containing `expect`.
    async fn command(&mut self, room: &str, line: &str, expect: &str) -> (String, Value) {
        let event = self.say(room, line).await;
        let answer = self
            .wait(&format!("an answer to {line:?}"), |u| {
                u.events
                    .iter()
                    .skip_while(|(_, e)| e["event_id"] != event.as_str())
                    .find(|(r, e)| {
                        r == room
                            && e["sender"] == BOT
                            && e["content"]["body"]
                                .as_str()
                                .is_some_and(|b| b.contains(expect))
                    })
                    .cloned()
            })
            .await;
        (event, answer.1)
    }

    /// Logs in to QQ 10001 from the bot room.
    async fn login(&mut self, room: &str) {
        self.command(room, "login 10001 demo webqq", "logged in to QQ as 10001")
            .await;
    }

    /// Accepts the DM portal invite of a ghost and returns the room.
    async fn accept_portal(&mut self, ghost: &str) -> String {
        let (room, data) = self.wait("a portal invite", |u| u.invite_from(ghost)).await;
        let direct = data["invite_state"]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["type"] == "m.room.member" && e["content"]["is_direct"] == true);
        assert!(direct, "the portal invite is a direct chat: {data}");
        self.join(&room).await;
        room
    }
}

async fn appservice_put(rig: &Rig, txn: &str, token: Option<&str>, body: Value) -> u16 {
    let mut req = reqwest::Client::new()
        .put(format!(
            "{}/_matrix/app/v1/transactions/{txn}",
            rig.as_url()
        ))
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap().status().as_u16()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buddies_groups_presence_and_friend_requests() {
    let rig = Rig::start().await;
    let world = rig.sim.world().clone();
    let mut alice = User::register(&rig.hs, "alice").await;
    let bot_room = alice.open_bot_room().await;

    // Logging in from the DM with the bot; the password is redacted.
    let (login_event, _) = alice
        .command(
            &bot_room,
            "login 10001 demo webqq",
            "logged in to QQ as 10001",
        )
        .await;
    let redacted = alice
        .wait("the login message redacted", |u| {
            u.events
                .iter()
                .find(|(_, e)| {
                    e["type"] == "m.room.redaction" && e["redacts"] == login_event.as_str()
                })
                .cloned()
        })
        .await;
    assert_eq!(redacted.1["sender"], BOT);
    let original = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{bot_room}/event/{login_event}"
        ))
        .await;
    assert_eq!(original["content"], json!({}), "password gone: {original}");

    // A buddy message opens a DM portal from the buddy's ghost.
    world.send_message(10002, 10001, "你好 alice [微笑]", Origin::Control);
    let dm = alice.accept_portal(GHOST_10002).await;
    let (_, hello) = alice
        .wait("the buddy's message", |u| {
            u.message(Some(&dm), GHOST_10002, "你好 alice")
        })
        .await;
    assert!(
        hello["content"]["body"].as_str().unwrap().contains('🙂'),
        "faces become emoji: {hello}"
    );
    let profile = alice
        .get(&format!(
            "/_matrix/client/v3/profile/{GHOST_10002}/displayname"
        ))
        .await;
    assert_eq!(profile["displayname"], "微程 (QQ)");

    // Replies: HTML becomes plain text at QQ; a mention becomes the nick;
    // the ghost's read receipt says QQ took it.
    let reply = alice
        .send(
            &dm,
            json!({
                "msgtype": "m.text",
                "body": "微程: 回复 with bold",
                "format": "org.matrix.custom.html",
                "formatted_body": format!(
                    "<a href=\"https://matrix.to/#/{GHOST_10002}\">微程</a>: 回复 with <b>bold</b> &lt;tag&gt;"
                ),
            }),
        )
        .await;
    let got = eventually("the reply at 10002", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(from, t)| *from == 10001 && t.contains("回复 with bold"))
    })
    .await;
    assert!(got.1.contains("微程"), "mention kept as the nick: {got:?}");
    assert!(got.1.contains("<tag>"), "entities decoded: {got:?}");
    assert!(!got.1.contains("<b>"), "no HTML at QQ: {got:?}");
    alice
        .wait("the ghost's read receipt", |u| {
            u.events
                .iter()
                .find(|(r, e)| {
                    r == &dm
                        && e["type"] == "m.receipt"
                        && e["content"][reply.as_str()]["m.read"][GHOST_10002].is_object()
                })
                .map(|_| ())
        })
        .await;

    // An emote goes as an action; a Matrix file becomes a link QQ can open.
    alice
        .send(&dm, json!({ "msgtype": "m.emote", "body": "waves" }))
        .await;
    eventually("the emote at 10002", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(_, t)| t.contains("waves"))
    })
    .await;
    let upload = reqwest::Client::new()
        .post(format!(
            "{}/_matrix/media/v3/upload?filename=note.txt",
            rig.hs.base_url()
        ))
        .bearer_auth(&alice.token)
        .header("Content-Type", "text/plain")
        .body("hello from a file")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mxc = upload["content_uri"].as_str().unwrap().to_owned();
    alice
        .send(
            &dm,
            json!({ "msgtype": "m.file", "body": "note.txt", "url": mxc }),
        )
        .await;
    let (_, link_text) = eventually("the file link at 10002", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(_, t)| t.contains("/_qqbridge/media/"))
    })
    .await;
    let url = link_text
        .split_whitespace()
        .find_map(|w| {
            w.trim_matches(|c| c == '(' || c == ')')
                .strip_prefix("http://")
                .map(|r| format!("http://{r}"))
        })
        .expect("a URL in the message");
    let file = reqwest::get(&url).await.unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(file.text().await.unwrap(), "hello from a file");

    // The echo account answers through the bridge.
    world.send_message(10002, 10001, "second message", Origin::Control);
    alice
        .wait("a second message in the same portal", |u| {
            u.message(Some(&dm), GHOST_10002, "second message")
        })
        .await;

    // Presence: busy on QQ is unavailable on Matrix.
    world.set_presence(10002, SimPresence::Busy, Origin::Control);
    let presence = async {
        let deadline = Instant::now() + WAIT;
        loop {
            let p = alice
                .get(&format!("/_matrix/client/v3/presence/{GHOST_10002}/status"))
                .await;
            if p["presence"] == "unavailable" {
                return p;
            }
            assert!(Instant::now() < deadline, "ghost presence: {p}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;
    assert_eq!(presence["status_msg"], "busy");

    // A group message makes a group room with the group's name, and the
    // member's ghost speaks there under their group card.
    world.send_group_message(20001, 10003, "大家好", Origin::Control);
    let (group_room, _) = alice
        .wait("a group room invite", |u| u.invite_from(BOT))
        .await;
    alice.join(&group_room).await;
    let ghost_10003 = "@_qq_10003:localhost";
    alice
        .wait("the group message", |u| {
            u.message(Some(&group_room), ghost_10003, "大家好")
        })
        .await;
    let name = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{group_room}/state/m.room.name/"
        ))
        .await;
    assert_eq!(name["name"], "QQ 桥测试群");
    let member = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{group_room}/state/m.room.member/{ghost_10003}"
        ))
        .await;
    assert_eq!(
        member["displayname"], "胡吉阳 (QQ)",
        "the group card: {member}"
    );
    let alias = alice
        .get("/_matrix/client/v3/directory/room/%23_qq_group_20001:localhost")
        .await;
    assert_eq!(alias["room_id"], group_room.as_str());
    alice.say(&group_room, "hello group").await;
    eventually("the group message at 10003", || {
        rig.group_received_by(10003)
            .into_iter()
            .find(|(from, t)| *from == 10001 && t.contains("hello group"))
    })
    .await;
    // Commands work in portals with the prefix.
    alice.say(&group_room, "!qq list").await;
    alice
        .wait("the list in the group room", |u| {
            u.message(Some(&group_room), BOT, "buddies:")
        })
        .await;

    // A friend request arrives as a bot message with the command; accepting
    // it from Matrix makes them friends.
    world.remove_friend(10001, 10003);
    world.remove_friend(10003, 10001);
    world.request_friend(10003, 10001, "加个好友吧", Origin::Control);
    let (_, request) = alice
        .wait("the friend request", |u| {
            u.message(Some(&bot_room), BOT, "accept 10003")
        })
        .await;
    let text = request["content"]["body"].as_str().unwrap();
    assert!(
        text.contains("加个好友吧") && text.contains("reject 10003"),
        "{text}"
    );
    alice
        .command(&bot_room, "accept 10003", "accepted 10003")
        .await;
    eventually("friends again", || {
        (world.is_friend(10003, 10001) && world.is_friend(10001, 10003)).then_some(())
    })
    .await;

    // Leaving the group room: group messages stop coming there (no new
    // invite either), and `pm` brings the user back in.
    alice
        .post(
            &format!("/_matrix/client/v3/rooms/{group_room}/leave"),
            json!({}),
        )
        .await;
    let invites_to = |u: &User, room: &str| u.invites.iter().filter(|(r, _)| r == room).count();
    alice
        .wait("the leave", |u| {
            u.events
                .iter()
                .find(|(r, e)| {
                    r == &group_room
                        && e["type"] == "m.room.member"
                        && e["state_key"] == u.id.as_str()
                        && e["content"]["membership"] == "leave"
                })
                .map(|_| ())
        })
        .await;
    world.send_group_message(20001, 10002, "while you were away", Origin::Control);
    world.send_message(10002, 10001, "marker after leaving", Origin::Control);
    alice
        .wait("the marker", |u| {
            u.message(Some(&dm), GHOST_10002, "marker after leaving")
        })
        .await;
    assert_eq!(
        invites_to(&alice, &group_room),
        1,
        "no invite back for a group message"
    );
    alice.command(&bot_room, "pm 20001", "invited you").await;
    alice
        .wait("a new invite to the group room", |u| {
            (invites_to(u, &group_room) == 2).then_some(())
        })
        .await;

    rig.assert_no_secrets_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_tokens_outages_and_restarts() {
    let mut rig =
        Rig::start_with("  relay: { uin: 10004, password: demo, protocol: http11 }").await;
    let world = rig.sim.world().clone();
    let mut alice = User::register(&rig.hs, "alice").await;
    let bot_room = alice.open_bot_room().await;
    alice.login(&bot_room).await;
    world.send_message(10002, 10001, "hello", Origin::Control);
    let dm = alice.accept_portal(GHOST_10002).await;
    alice
        .wait("the first message", |u| {
            u.message(Some(&dm), GHOST_10002, "hello")
        })
        .await;

    // Someone without a QQ login writes in the portal: the relay account
    // carries it, with their name.
    let bob = User::register(&rig.hs, "bob").await;
    alice
        .post(
            &format!("/_matrix/client/v3/rooms/{dm}/invite"),
            json!({ "user_id": bob.id }),
        )
        .await;
    bob.join(&dm).await;
    bob.say(&dm, "via the relay").await;
    eventually("the relayed message at 10002", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(from, t)| *from == 10004 && t.contains("bob: via the relay"))
    })
    .await;

    // The hs_token is checked on every request.
    let body = json!({ "events": [] });
    assert_eq!(
        appservice_put(&rig, "t-none", None, body.clone()).await,
        401
    );
    assert_eq!(
        appservice_put(&rig, "t-wrong", Some("not-the-token"), body.clone()).await,
        403
    );
    let status = reqwest::Client::new()
        .get(format!(
            "{}/_matrix/app/v1/users/@_qq_1:localhost",
            rig.as_url()
        ))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 403);

    // A transaction the homeserver sends twice is relayed once.
    let event = json!({
        "type": "m.room.message",
        "room_id": dm,
        "sender": alice.id,
        "event_id": "$replayed-event-1",
        "origin_server_ts": 1,
        "content": { "msgtype": "m.text", "body": "exactly once please" },
    });
    let txn = json!({ "events": [event] });
    let token = rig.hs_token.clone();
    assert_eq!(
        appservice_put(&rig, "replayed-1", Some(&token), txn.clone()).await,
        200
    );
    assert_eq!(
        appservice_put(&rig, "replayed-1", Some(&token), txn.clone()).await,
        200
    );
    // Even under another transaction id the same event is not sent twice.
    assert_eq!(
        appservice_put(&rig, "replayed-2", Some(&token), txn).await,
        200
    );
    eventually("the replayed message at 10002", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(_, t)| t.contains("exactly once please"))
    })
    .await;
    alice.say(&dm, "a marker after the replay").await;
    eventually("the marker at 10002", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(_, t)| t.contains("a marker after the replay"))
    })
    .await;
    let copies = rig
        .received_by(10002)
        .into_iter()
        .filter(|(_, t)| t.contains("exactly once please"))
        .count();
    assert_eq!(copies, 1, "relayed exactly once");

    // The homeserver is down for a while: QQ messages wait and arrive, in
    // order and once each, when it is back. The room's queue is behind
    // then, so the lines behind the one being retried go out merged into
    // one event (the retried one may have reached the homeserver, so it
    // is never merged).
    rig.hs.stop().await.unwrap();
    for i in 1..=3 {
        world.send_message(
            10002,
            10001,
            &format!("during the outage {i}"),
            Origin::Control,
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    rig.hs.resume().await.unwrap();
    alice.since = None;
    alice.events.clear();
    let outage_events = |u: &User| -> Vec<String> {
        u.events
            .iter()
            .filter(|(r, e)| {
                r == &dm && e["type"] == "m.room.message" && e["sender"] == GHOST_10002
            })
            .filter_map(|(_, e)| e["content"]["body"].as_str().map(str::to_owned))
            .filter(|b| b.starts_with("during the outage"))
            .collect()
    };
    let events = alice
        .wait("the messages from the outage", |u| {
            let events = outage_events(u);
            (events.iter().map(|b| b.lines().count()).sum::<usize>() >= 3).then_some(events)
        })
        .await;
    let lines: Vec<&str> = events.iter().flat_map(|b| b.lines()).collect();
    assert_eq!(
        lines,
        [
            "during the outage 1",
            "during the outage 2",
            "during the outage 3"
        ],
        "in order, once each: {events:?}"
    );
    assert!(events.len() < 3, "the backlog was merged: {events:?}");

    // The bridge restarts: what the user wrote meanwhile arrives (Synapse
    // kept it), and the same portal is used again.
    rig.stop_bridge().await;
    alice.say(&dm, "written while the bridge was down").await;
    rig.start_bridge().await;
    eventually("the message written during the restart", || {
        rig.received_by(10002)
            .into_iter()
            .find(|(_, t)| t.contains("written while the bridge was down"))
    })
    .await;
    eventually("the QQ login restored", || {
        rig.bridge
            .as_ref()
            .and_then(|b| b.core.login_of(&alice.id))
            .filter(|u| u.0 == 10001)
    })
    .await;
    world.send_message(10002, 10001, "after the restart", Origin::Control);
    alice
        .wait("a message after the restart in the same room", |u| {
            u.message(Some(&dm), GHOST_10002, "after the restart")
        })
        .await;
    let invites: HashSet<&String> = alice
        .invites
        .iter()
        .filter(|(_, d)| d.to_string().contains(GHOST_10002))
        .map(|(r, _)| r)
        .collect();
    assert_eq!(invites.len(), 1, "no second portal for the same chat");

    // A busy chat: a line every 2 ms for 2 s. The room keeps up by
    // merging, and after each merge its queue lingers (100 ms by default)
    // so the lines gather: a score of events rather than one per send
    // (~25 ms each here, which would make 80 or so).
    alice.events.clear();
    const BUSY: usize = 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    for i in 1..=BUSY {
        tick.tick().await;
        world.send_message(10002, 10001, &format!("busy {i}"), Origin::Control);
    }
    let busy_events = alice
        .wait("the busy chat's lines", |u| {
            let events: Vec<String> = u
                .events
                .iter()
                .filter(|(r, e)| r == &dm && e["sender"] == GHOST_10002)
                .filter_map(|(_, e)| e["content"]["body"].as_str().map(str::to_owned))
                .filter(|b| b.starts_with("busy "))
                .collect();
            let lines = events.iter().map(|b| b.lines().count()).sum::<usize>();
            (lines >= BUSY).then_some(events)
        })
        .await;
    let lines: Vec<&str> = busy_events.iter().flat_map(|b| b.lines()).collect();
    let expected: Vec<String> = (1..=BUSY).map(|i| format!("busy {i}")).collect();
    assert_eq!(lines, expected, "in order, once each");
    assert!(
        busy_events.len() <= 35,
        "{} events for {BUSY} lines: the queue did not linger after merging",
        busy_events.len()
    );

    rig.assert_no_secrets_logged();
    rig.stop_bridge().await;
}
