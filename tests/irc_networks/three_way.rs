//! A QQ group bridged to a Matrix room (a real Synapse, the appservice) and
//! to an IRC channel (a real ngIRCd) at once: a message from any of the
//! three reaches the other two, once. Built with `--features matrix`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use qqbridge::config::{Config, NetworkConfig};
use qqbridge::core::BridgeCore;
use qqbridge::irc::networks;
use qqbridge::matrix;
use qqbridge::qq::sim::{self, Origin, SimConfig};
use qqbridge::qq::webqq::{WebqqConnector, WebqqOptions};
use qqbridge::qq::{http11::Http11Connector, QqConnector};
use qqbridge::store::{SqliteStore, Store};

use super::ngircd::NgircdOptions;
use super::process::free_port;
use super::synapse::{Synapse, SynapseOptions};
use super::{joined, network_yaml, ngircd, privmsg, quiet_demo, User, RELAY};

const WAIT: Duration = Duration::from_secs(60);
const BOT: &str = "@qqbot:localhost";

/// A Matrix user on the client-server API, reading with `/sync`.
struct MatrixUser {
    token: String,
    base: String,
    http: reqwest::Client,
    since: Option<String>,
    events: Vec<(String, Value)>,
    invites: Vec<(String, Value)>,
}

impl MatrixUser {
    async fn register(hs: &Synapse, localpart: &str) -> MatrixUser {
        let (_, token) = hs
            .register_user(localpart, "pw", false)
            .await
            .expect("register");
        MatrixUser {
            token,
            base: hs.base_url(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            since: None,
            events: Vec::new(),
            invites: Vec::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("Synapse answers");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap_or(Value::Null)
    }

    async fn sync(&mut self) {
        let mut path = "/_matrix/client/v3/sync?timeout=300".to_owned();
        if let Some(since) = &self.since {
            path.push_str(&format!("&since={since}"));
        }
        let v = self.call(reqwest::Method::GET, &path, None).await;
        self.since = v["next_batch"].as_str().map(str::to_owned);
        for (room, data) in v["rooms"]["join"].as_object().into_iter().flatten() {
            for event in data["timeline"]["events"].as_array().into_iter().flatten() {
                self.events.push((room.clone(), event.clone()));
            }
        }
        for (room, data) in v["rooms"]["invite"].as_object().into_iter().flatten() {
            self.invites.push((room.clone(), data.clone()));
        }
    }

    async fn wait<T>(&mut self, what: &str, mut found: impl FnMut(&MatrixUser) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = found(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.sync().await;
        }
    }

    /// Bodies of the messages in `room` from `sender`.
    fn bodies(&self, room: &str, sender: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|(r, e)| r == room && e["type"] == "m.room.message" && e["sender"] == sender)
            .filter_map(|(_, e)| e["content"]["body"].as_str().map(str::to_owned))
            .collect()
    }

    async fn say(&self, room: &str, text: &str) {
        let txn = format!("{:032x}", rand::random::<u128>());
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
        self.call(
            reqwest::Method::PUT,
            &path,
            Some(json!({ "msgtype": "m.text", "body": text })),
        )
        .await;
    }

    async fn join(&self, room: &str) {
        let path = format!("/_matrix/client/v3/rooms/{room}/join");
        self.call(reqwest::Method::POST, &path, Some(json!({})))
            .await;
    }
}

fn config_yaml(
    dir: &std::path::Path,
    qq: &str,
    hs_url: &str,
    as_port: u16,
    tokens: (&str, &str),
) -> String {
    format!(
        "database: {db}\nqq:\n  server: http://{qq}\n  protocol: webqq\nmatrix:\n  enabled: true\n  \
         homeserver_url: {hs_url}\n  domain: localhost\n  appservice:\n    listen: 127.0.0.1:{as_port}\n    \
         url: http://127.0.0.1:{as_port}\n    as_token: {}\n    hs_token: {}\npermissions:\n  \"*\": user\n",
        tokens.0,
        tokens.1,
        db = dir.join("bridge.db").display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_bridged_to_matrix_and_irc_relays_each_message_to_the_other_two_once() {
    super::capture_logs();
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;

    let mut sim_config = SimConfig::new(quiet_demo());
    sim_config.time_scale = Some(super::TIME_SCALE);
    let sim = sim::start(sim_config).await.expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let as_port = free_port();
    let tokens = (
        format!("as{:030x}", rand::random::<u128>()),
        format!("hs{:030x}", rand::random::<u128>()),
    );
    let tokens = (tokens.0.as_str(), tokens.1.as_str());
    let qq = sim.protocol_addr().to_string();
    let placeholder = config_yaml(dir.path(), &qq, "http://127.0.0.1:1", as_port, tokens);
    let config = qqbridge::config::load_str("t.yaml", &placeholder, &|_| None).expect("config");
    let registration = qqbridge::app::registration(&config)
        .await
        .expect("registration");
    let hs = Synapse::start(SynapseOptions::with_appservice(registration))
        .await
        .unwrap_or_else(|e| panic!("Synapse must start (run scripts/install-test-deps): {e:#}"));
    let yaml = config_yaml(dir.path(), &qq, &hs.base_url(), as_port, tokens);
    let config: Config = qqbridge::config::load_str("t.yaml", &yaml, &|_| None).expect("config");

    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("bridge.db")).expect("database"));
    let base = format!("http://{qq}");
    let webqq = WebqqConnector::with_options(
        &base,
        WebqqOptions {
            retry_initial: Duration::from_millis(20),
            retry_max: Duration::from_millis(200),
            ..WebqqOptions::default()
        },
    );
    let http11 = Http11Connector::new(&base).expect("URL");
    let connectors: Vec<Arc<dyn QqConnector>> = vec![Arc::new(webqq), Arc::new(http11)];
    let permissions = config.clone();
    let core = BridgeCore::new(
        store.clone(),
        connectors,
        config.qq.protocol,
        Arc::new(move |user: &str| permissions.permission_of(user)),
    );
    let matrix = matrix::start(core.clone(), store.clone(), &config)
        .await
        .expect("appservice starts");
    let network: NetworkConfig = serde_yaml::from_str(&network_yaml(
        &irc,
        "channels: [{channel: \"#qq\", group: 20001}]\n",
    ))
    .expect("network config");
    let nets = networks::start(core.clone(), store, &[network])
        .await
        .expect("networks start");
    core.restore_logins().await.expect("restore");
    alice
        .wait_for("the bot joins", |m| joined(m, "qqbot", "#qq"))
        .await;
    let deadline = Instant::now() + WAIT;
    while core.login_of(RELAY).is_none() {
        assert!(Instant::now() < deadline, "the relay logs in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // carol is on Matrix with her own QQ account, 微程 (10002).
    let mut carol = MatrixUser::register(&hs, "carol").await;
    let dm = carol
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(json!({ "is_direct": true, "invite": [BOT], "preset": "trusted_private_chat" })),
        )
        .await["room_id"]
        .as_str()
        .expect("room id")
        .to_owned();
    carol
        .wait("the bot's welcome", |u| {
            (!u.bodies(&dm, BOT).is_empty()).then_some(())
        })
        .await;
    carol.say(&dm, "login 10002 demo webqq").await;
    carol
        .wait("the login", |u| {
            u.bodies(&dm, BOT)
                .iter()
                .any(|b| b.contains("logged in to QQ as 10002"))
                .then_some(())
        })
        .await;

    // From QQ: Hackfan (10003) reaches Matrix and IRC.
    let world = sim.world().clone();
    world.send_group_message(20001, 10003, "来自QQ", Origin::Control);
    let room = carol
        .wait("the group room invite", |u| {
            u.invites
                .iter()
                .find(|(_, d)| d.to_string().contains(BOT))
                .map(|(r, _)| r.clone())
        })
        .await;
    carol.join(&room).await;
    carol
        .wait("QQ's message on Matrix", |u| {
            u.bodies(&room, "@_qq_10003:localhost")
                .contains(&"来自QQ".to_owned())
                .then_some(())
        })
        .await;
    assert_eq!(alice.said("HackfanHao[qq]", "#qq").await, "来自QQ");

    // From Matrix: carol's words go to QQ as 微程 and to IRC from her puppet.
    carol.say(&room, "来自Matrix").await;
    assert_eq!(alice.said("WeiCheng[qq]", "#qq").await, "来自Matrix");

    // From IRC: alice's words reach QQ and Matrix through the relay.
    alice.say("#qq", "来自IRC").await;
    carol
        .wait("IRC's message on Matrix", |u| {
            u.bodies(&room, "@_qq_10001:localhost")
                .contains(&"<alice> 来自IRC".to_owned())
                .then_some(())
        })
        .await;

    // Once each, everywhere.
    tokio::time::sleep(Duration::from_secs(2)).await;
    carol.sync().await;
    let qq_10003: Vec<(u64, String)> = world
        .received(10003)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e.kind {
            sim::events::EventKind::GroupMessage { text, .. } => Some((e.from, text)),
            _ => None,
        })
        .collect();
    assert_eq!(
        qq_10003,
        vec![
            (10002, "来自Matrix".to_owned()),
            (10001, "<alice> 来自IRC".to_owned())
        ]
    );
    let on_matrix: Vec<String> = carol
        .events
        .iter()
        .filter(|(r, e)| *r == room && e["type"] == "m.room.message")
        .filter_map(|(_, e)| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    for text in ["来自QQ", "来自Matrix", "<alice> 来自IRC"] {
        assert_eq!(
            on_matrix.iter().filter(|b| *b == text).count(),
            1,
            "{text} on Matrix: {on_matrix:?}"
        );
    }
    let more = tokio::time::timeout(Duration::from_secs(1), alice.next()).await;
    if let Ok(m) = more {
        for nick in ["WeiCheng[qq]", "HackfanHao[qq]", "qqbot"] {
            assert!(privmsg(&m, nick, "#qq").is_none(), "a repeat on IRC: {m:?}");
        }
    }
    nets.shutdown().await;
    matrix.shutdown().await;
    core.shutdown().await;
}
