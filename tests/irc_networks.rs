//! IRC networks end to end: a real ngIRCd (tests/support/ngircd.rs), the
//! built-in QQ simulator (WebQQ, so groups work), the core and the networks
//! side, with a plain line client playing the IRC user. A bridged group
//! channel both ways with Chinese nicks and text, no loops, a nick
//! collision and its regain, idle puppets leaving and coming back without
//! losing a message, 200 puppets joining under ngIRCd's flood control,
//! ngIRCd restarted mid-conversation, line splitting and injection
//! attempts, bridging at run time, personal use through the bot, a K-lined
//! puppet replaced by the bot, queued messages surviving a bridge restart,
//! passwords kept out of the logs, and (with `--features matrix`, against a
//! real Synapse) a group bridged to Matrix and IRC at once.
//!
//! ngIRCd not starting is a failure, never a skip.

#[path = "support/logs.rs"]
mod logs;
#[allow(dead_code)]
#[path = "support/ngircd.rs"]
mod ngircd;
#[allow(dead_code)]
#[path = "support/process.rs"]
mod process;
#[cfg(feature = "matrix")]
#[allow(dead_code)]
#[path = "support/synapse.rs"]
mod synapse;

/// The three-way relay needs the Matrix side (`--features matrix`).
#[cfg(feature = "matrix")]
#[path = "irc_networks/three_way.rs"]
mod three_way;

use std::sync::Arc;
use std::time::{Duration, Instant};

use irc::proto::{Command, Message};

use qqbridge::config::{NetworkConfig, PermissionLevel};
use qqbridge::core::model::{ChatId, RichText, Uin};
use qqbridge::core::BridgeCore;
use qqbridge::irc::networks::{self, NetworksHandle};
use qqbridge::qq::sim::scenario::{AccountRange, GroupSpec, ScenarioPassword};
use qqbridge::qq::sim::{self, events::EventKind, Origin, Scenario, SimConfig, SimHandle};
use qqbridge::qq::webqq::{WebqqConnector, WebqqOptions};
use qqbridge::qq::{http11::Http11Connector, Protocol, QqConnector};
use qqbridge::store::{SqliteStore, Store};

use ngircd::{IrcClient, Ngircd, NgircdOptions};

/// Simulated QQ protocol delays (WebQQ poll hold, penalties) at 1 %.
const TIME_SCALE: f64 = 0.01;
const WAIT: Duration = Duration::from_secs(60);
const NETWORK: &str = "test";
const RELAY: &str = "irc:test:relay@10001";

// ---------------------------------------------------------------- logs

fn capture_logs() {
    logs::capture("qqbridge=trace,info");
}

fn logged_text() -> String {
    logs::text()
}

// ---------------------------------------------------------------- the bridge

struct Bridge {
    sim: Arc<SimHandle>,
    core: Arc<BridgeCore>,
    networks: NetworksHandle,
    _dir: tempfile::TempDir,
}

/// The demo scenario without Hackfan's group chatter (it would talk into
/// every test's channel).
fn quiet_demo() -> Scenario {
    let mut scenario = Scenario::demo();
    for group in &mut scenario.groups {
        group.chatter = None;
    }
    scenario
}

/// The network's YAML: ngIRCd's address, the relay 10001 over WebQQ, fast
/// pacing unless `extra` overrides keys (later keys win).
fn network_yaml(irc: &Ngircd, extra: &str) -> String {
    format!(
        "name: {NETWORK}\nhost: 127.0.0.1\nport: {port}\nbot_nick: qqbot\n\
         relays: [{{uin: 10001, password: demo, protocol: webqq}}]\n{extra}",
        port = irc.port(),
    )
}

/// A bridge (quiet demo) with `#qq` bridged to group 20001, once its bot
/// has joined the channel `alice` is in.
async fn bridge_group_channel(irc: &Ngircd, alice: &mut User) -> Bridge {
    let yaml = network_yaml(irc, "channels: [{channel: \"#qq\", group: 20001}]\n");
    let bridge = Bridge::start(quiet_demo(), &yaml).await;
    alice
        .wait_for("the bot joins", |m| joined(m, "qqbot", "#qq"))
        .await;
    bridge
}

impl Bridge {
    async fn start(scenario: Scenario, network_yaml: &str) -> Bridge {
        let (sim, dir) = Bridge::simulator(scenario).await;
        Bridge::start_on(sim, dir, network_yaml).await
    }

    /// A simulator and an empty database directory for a bridge.
    async fn simulator(scenario: Scenario) -> (Arc<SimHandle>, tempfile::TempDir) {
        capture_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = SimConfig::new(scenario);
        config.time_scale = Some(TIME_SCALE);
        let sim = Arc::new(sim::start(config).await.expect("simulator starts"));
        (sim, dir)
    }

    /// A bridge on an existing simulator and database directory, once its
    /// relay is logged in.
    async fn start_on(sim: Arc<SimHandle>, dir: tempfile::TempDir, network_yaml: &str) -> Bridge {
        let bridge = Bridge::launch_on(sim, dir, network_yaml).await;
        bridge
            .until("the relay is logged in", || {
                bridge.core.login_of(RELAY).is_some()
            })
            .await;
        bridge
    }

    /// [`Bridge::start_on`] without waiting for the relay.
    async fn launch_on(sim: Arc<SimHandle>, dir: tempfile::TempDir, network_yaml: &str) -> Bridge {
        let base = format!("http://{}", sim.protocol_addr());
        let http11 = Http11Connector::new(&base)
            .expect("valid URL")
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
            .with_poll_interval(Duration::from_millis(20), Duration::from_millis(100))
            .with_send_pacing(Duration::from_millis(5))
            .with_retry(Duration::from_millis(20), Duration::from_millis(200), 5)
            .with_outage_backoff_max(Duration::from_millis(100));
        let webqq = WebqqConnector::with_options(
            &base,
            WebqqOptions {
                retry_initial: Duration::from_millis(20),
                retry_max: Duration::from_millis(200),
                ..WebqqOptions::default()
            },
        );
        let connectors: Vec<Arc<dyn QqConnector>> = vec![Arc::new(http11), Arc::new(webqq)];
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("bridge.db")).expect("database opens"));
        let core = BridgeCore::new(
            store.clone(),
            connectors,
            Protocol::Http11,
            Arc::new(|user: &str| {
                Some(if user == "irc:test:alice" {
                    PermissionLevel::Admin
                } else {
                    PermissionLevel::User
                })
            }),
        );
        let config: NetworkConfig = serde_yaml::from_str(network_yaml).expect("network config");
        let networks = networks::start(core.clone(), store, &[config])
            .await
            .expect("networks start");
        core.restore_logins().await.expect("logins restore");
        Bridge {
            sim,
            core,
            networks,
            _dir: dir,
        }
    }

    /// Stops the bridge as the binary does on SIGTERM; returns what a new
    /// one needs to start where this one stopped.
    async fn stop(self) -> (Arc<SimHandle>, tempfile::TempDir) {
        self.networks.shutdown().await;
        self.core.shutdown().await;
        (self.sim, self._dir)
    }

    async fn until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A QQ user writes to a group.
    fn qq_says(&self, group: u64, from: u64, text: &str) {
        let outcome = self
            .sim
            .world()
            .send_group_message(group, from, text, Origin::Control);
        assert_eq!(
            outcome,
            sim::world::GroupMessageOutcome::Delivered,
            "{from} -> {group}"
        );
    }

    /// Group messages `uin` received from `from`.
    fn group_texts(&self, uin: u64, from: u64) -> Vec<String> {
        self.sim
            .world()
            .received(uin)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.from == from)
            .filter_map(|e| match e.kind {
                EventKind::GroupMessage { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    }

    /// One-to-one messages `uin` received from `from`.
    fn buddy_texts(&self, uin: u64, from: u64) -> Vec<String> {
        self.sim
            .world()
            .received(uin)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.from == from)
            .filter_map(|e| match e.kind {
                EventKind::Message { text } => Some(text),
                _ => None,
            })
            .collect()
    }
}

// ---------------------------------------------------------------- the IRC user

/// A person on IRC: a raw line client that parses what it reads.
struct User {
    client: IrcClient,
    nick: String,
}

impl User {
    async fn connect(irc: &Ngircd, nick: &str) -> User {
        let client = IrcClient::connect_registered(irc, nick)
            .await
            .unwrap_or_else(|e| panic!("{nick} cannot register: {e:#}\n{}", irc.log_tail(30)));
        User {
            client,
            nick: nick.to_owned(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.client.send(line).await.expect("IRC write");
    }

    /// The next message, answering PINGs; panics when the connection ends.
    async fn next(&mut self) -> Message {
        loop {
            let line = self
                .client
                .next_line()
                .await
                .unwrap_or_else(|e| panic!("{}: {e:#}", self.nick))
                .unwrap_or_else(|| panic!("{}: the server closed the connection", self.nick));
            if let Some(rest) = line.strip_prefix("PING") {
                self.send(&format!("PONG{rest}")).await;
                continue;
            }
            if let Ok(m) = line.parse::<Message>() {
                return m;
            }
        }
    }

    async fn wait_for(&mut self, what: &str, mut pred: impl FnMut(&Message) -> bool) -> Message {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = tokio::time::timeout(left, self.next())
                .await
                .unwrap_or_else(|_| panic!("{} timed out waiting for {what}", self.nick));
            if pred(&m) {
                return m;
            }
        }
    }

    /// Sends a PING and returns the NOTICEs read before its PONG: what
    /// the user was told up to now.
    async fn notices_until_pong(&mut self) -> Vec<String> {
        self.send("PING :done").await;
        let mut notices = Vec::new();
        loop {
            let m = self.next().await;
            if matches!(&m.command, Command::PONG(..)) {
                return notices;
            }
            if let Command::NOTICE(_, text) = &m.command {
                notices.push(text.clone());
            }
        }
    }

    async fn join(&mut self, channel: &str) {
        self.send(&format!("JOIN {channel}")).await;
        let me = self.nick.clone();
        self.wait_for("own JOIN", |m| joined(m, &me, channel)).await;
    }

    async fn say(&mut self, target: &str, text: &str) {
        self.send(&format!("PRIVMSG {target} :{text}")).await;
    }

    /// The next PRIVMSG to `target` from `nick`, as text.
    async fn said(&mut self, nick: &str, target: &str) -> String {
        let m = self
            .wait_for(&format!("a message from {nick} in {target}"), |m| {
                privmsg(m, nick, target).is_some()
            })
            .await;
        privmsg(&m, nick, target).unwrap_or_default()
    }
}

fn joined(m: &Message, nick: &str, channel: &str) -> bool {
    m.source_nickname() == Some(nick)
        && matches!(&m.command, Command::JOIN(c, _, _) if c.eq_ignore_ascii_case(channel))
}

fn privmsg(m: &Message, nick: &str, target: &str) -> Option<String> {
    match &m.command {
        Command::PRIVMSG(t, text)
            if m.source_nickname() == Some(nick) && t.eq_ignore_ascii_case(target) =>
        {
            Some(text.clone())
        }
        _ => None,
    }
}

fn numeric(m: &Message) -> Option<u16> {
    match &m.command {
        Command::Response(r, _) => Some(*r as u16),
        Command::Raw(verb, _) => verb.parse().ok(),
        _ => None,
    }
}

fn numeric_args(m: &Message) -> Vec<String> {
    match &m.command {
        Command::Response(_, args) | Command::Raw(_, args) => args.clone(),
        _ => Vec::new(),
    }
}

async fn ngircd(options: NgircdOptions) -> Ngircd {
    Ngircd::start(options)
        .await
        .unwrap_or_else(|e| panic!("ngircd must start (run scripts/install-test-deps): {e:#}"))
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn a_group_channel_works_both_ways_with_chinese_nicks_and_no_loops() {
    let irc = ngircd(NgircdOptions::default()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let bridge = bridge_group_channel(&irc, &mut alice).await;

    // QQ -> IRC: 微程 (10002) speaks through the puppet WeiCheng[qq].
    bridge.qq_says(20001, 10002, "大家好，我是微程 /微笑");
    alice
        .wait_for("the puppet joins", |m| joined(m, "WeiCheng[qq]", "#qq"))
        .await;
    assert_eq!(
        alice.said("WeiCheng[qq]", "#qq").await,
        "大家好，我是微程 🙂"
    );
    alice.send("WHOIS WeiCheng[qq]").await;
    let whois = alice.wait_for("WHOIS", |m| numeric(m) == Some(311)).await;
    assert_eq!(numeric_args(&whois).last().unwrap(), "微程 (QQ 10002)");

    // IRC -> QQ: alice's words reach the group through the relay, with
    // her nick and without formatting codes; an action too.
    alice.say("#qq", "你好 \x02微程\x02 \x0304!").await;
    alice.say("#qq", "\x01ACTION waves\x01").await;
    bridge
        .until("alice's messages reach the group", || {
            bridge.group_texts(10002, 10001).len() >= 2
        })
        .await;
    assert_eq!(
        bridge.group_texts(10002, 10001),
        vec!["<alice> 你好 微程 !", "* alice waves"]
    );

    // The puppet's own message was never relayed back to QQ, nor the
    // bot's: only alice's two lines came from the relay.
    bridge.qq_says(20001, 10003, "Hackfan 也来了");
    assert_eq!(alice.said("HackfanHao[qq]", "#qq").await, "Hackfan 也来了");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bridge.group_texts(10004, 10001).len(), 2, "no loops");
}

#[tokio::test]
async fn lines_said_before_the_relay_is_up_wait_for_it_and_keep_their_order() {
    // alice talks faster than ngIRCd's flood control lets a client.
    let irc = ngircd(NgircdOptions {
        flood_control: false,
        ..NgircdOptions::default()
    })
    .await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    // The relay's first login fails for now: the simulator answers every
    // HTTP QQ 1.1 request of 10001 with NULL, so it has no session and no
    // stored login yet. (HTTP QQ 1.1 has no groups: the channel is the
    // relay's chat with its buddy 微程.)
    let (sim, dir) = Bridge::simulator(quiet_demo()).await;
    sim.world().set_null_replies(10001, true);
    let yaml = format!(
        "name: {NETWORK}\nhost: 127.0.0.1\nport: {port}\nbot_nick: qqbot\n\
         relays: [{{uin: 10001, password: demo, protocol: http11}}]\n\
         channels: [{{channel: \"#qq\", buddy: 10002}}]\n",
        port = irc.port(),
    );
    let bridge = Bridge::launch_on(sim, dir, &yaml).await;
    alice
        .wait_for("the bot joins", |m| joined(m, "qqbot", "#qq"))
        .await;
    let line = |i: usize| format!("<alice> 第 {i} 行");
    for i in 1..=100 {
        alice.say("#qq", &format!("第 {i} 行")).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bridge.core.login_of(RELAY).is_none());
    assert!(bridge.buddy_texts(10002, 10001).is_empty());

    // The relay comes up while alice keeps talking: the waiting lines go
    // first, and none said meanwhile passes them.
    bridge.sim.world().set_null_replies(10001, false);
    let mut i = 101;
    while bridge.core.login_of(RELAY).is_none() {
        alice.say("#qq", &format!("第 {i} 行")).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..40 {
        alice.say("#qq", &format!("第 {i} 行")).await;
        i += 1;
        tokio::task::yield_now().await;
    }
    let said = i - 1;
    let expected: Vec<String> = (1..=said).map(line).collect();
    let deadline = Instant::now() + WAIT;
    while bridge.buddy_texts(10002, 10001).len() < said {
        assert!(
            Instant::now() < deadline,
            "{} of {said} lines arrived: {:?}",
            bridge.buddy_texts(10002, 10001).len(),
            bridge.buddy_texts(10002, 10001)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bridge.buddy_texts(10002, 10001), expected);
    // Nobody was told that a line was lost.
    let notices = alice.notices_until_pong().await;
    assert!(notices.is_empty(), "{notices:?}");
}

#[tokio::test]
async fn a_taken_nick_falls_back_and_is_regained() {
    let irc = ngircd(NgircdOptions::default()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    // Someone on IRC already uses 微程's puppet nick.
    let mut squatter = User {
        client: IrcClient::connect(irc.addr()).await.expect("connect"),
        nick: "WeiCheng[qq]".to_owned(),
    };
    squatter
        .send("NICK WeiCheng[qq]\r\nUSER squatter 0 * :not a puppet")
        .await;
    squatter
        .wait_for("welcome", |m| numeric(m) == Some(1))
        .await;
    squatter.join("#qq").await;
    let bridge = bridge_group_channel(&irc, &mut alice).await;

    bridge.qq_says(20001, 10002, "我的昵称被占了");
    assert_eq!(
        alice.said("WeiCheng0002[qq]", "#qq").await,
        "我的昵称被占了"
    );

    // The squatter leaves: the puppet takes its nick back.
    squatter.send("QUIT :bye").await;
    let renamed = alice
        .wait_for("the puppet regains its nick", |m| {
            m.source_nickname() == Some("WeiCheng0002[qq]")
                && matches!(&m.command, Command::NICK(n) if n == "WeiCheng[qq]")
        })
        .await;
    drop(renamed);
    bridge.qq_says(20001, 10002, "拿回来了");
    assert_eq!(alice.said("WeiCheng[qq]", "#qq").await, "拿回来了");
    // The fallback nick's and the regained nick's lines never came back.
    alice.say("#qq", "欢迎回来").await;
    bridge
        .until("alice's line reaches QQ", || {
            !bridge.group_texts(10002, 10001).is_empty()
        })
        .await;
    assert_eq!(bridge.group_texts(10002, 10001), vec!["<alice> 欢迎回来"]);
}

#[tokio::test]
async fn an_idle_puppet_leaves_and_its_next_messages_bring_it_back_in_order() {
    let irc = ngircd(NgircdOptions::default()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let yaml = network_yaml(
        &irc,
        "channels: [{channel: \"#qq\", group: 20001}]\nlimits: {idle_timeout_s: 2}\n",
    );
    let bridge = Bridge::start(quiet_demo(), &yaml).await;
    alice
        .wait_for("the bot joins", |m| joined(m, "qqbot", "#qq"))
        .await;

    bridge.qq_says(20001, 10002, "说完就走");
    assert_eq!(alice.said("WeiCheng[qq]", "#qq").await, "说完就走");
    let started = Instant::now();
    alice
        .wait_for("the idle puppet quits", |m| {
            m.source_nickname() == Some("WeiCheng[qq]") && matches!(m.command, Command::QUIT(_))
        })
        .await;
    assert!(started.elapsed() >= Duration::from_millis(1500));

    for i in 1..=5 {
        bridge.qq_says(20001, 10002, &format!("回来了 {i}"));
    }
    alice
        .wait_for("the puppet comes back", |m| {
            joined(m, "WeiCheng[qq]", "#qq")
        })
        .await;
    for i in 1..=5 {
        assert_eq!(
            alice.said("WeiCheng[qq]", "#qq").await,
            format!("回来了 {i}")
        );
    }
}

/// A burst from one speaker, once its puppet is in the channel, goes out
/// in runs behind one confirming PING each (`carry_run`): every line
/// arrives once and in order, including when speakers then alternate.
#[tokio::test]
async fn a_burst_from_one_speaker_arrives_complete_and_in_order() {
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let yaml = network_yaml(
        &irc,
        "channels: [{channel: \"#qq\", group: 20001}]\n\
         limits: {messages_per_second: 10000, message_burst: 1000}\n",
    );
    let bridge = Bridge::start(quiet_demo(), &yaml).await;
    alice
        .wait_for("the bot joins", |m| joined(m, "qqbot", "#qq"))
        .await;
    bridge.qq_says(20001, 10002, "开始");
    assert_eq!(alice.said("WeiCheng[qq]", "#qq").await, "开始");

    // 100 from one speaker (runs of up to 32), then 10 alternating.
    let mut expected = Vec::new();
    for i in 1..=100 {
        let text = format!("连发 {i}");
        bridge.qq_says(20001, 10002, &text);
        expected.push(("WeiCheng[qq]", text));
    }
    bridge.qq_says(20001, 10003, "插话");
    expected.push(("HackfanHao[qq]", "插话".to_owned()));
    for i in 1..=10 {
        let (uin, nick) = if i % 2 == 0 {
            (10002, "WeiCheng[qq]")
        } else {
            (10003, "HackfanHao[qq]")
        };
        let text = format!("轮流 {i}");
        bridge.qq_says(20001, uin, &text);
        expected.push((nick, text));
    }
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let m = tokio::time::timeout(WAIT, alice.next())
            .await
            .unwrap_or_else(|_| panic!("only got {} lines: {seen:?}", seen.len()));
        for nick in ["WeiCheng[qq]", "HackfanHao[qq]"] {
            if let Some(text) = privmsg(&m, nick, "#qq") {
                seen.push((nick, text));
            }
        }
    }
    assert_eq!(seen, expected);
}

/// A busy channel: the bot reads the lines waiting together and hands
/// them to the relay's queue for QQ in one transaction; all of them still
/// reach the group once each and in order.
#[tokio::test]
async fn a_busy_channel_reaches_the_group_complete_and_in_order() {
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let bridge = bridge_group_channel(&irc, &mut alice).await;
    // 200: the simulator remembers the last 256 messages an account got.
    let expected: Vec<String> = (1..=200).map(|i| format!("<alice> 刷屏 {i}")).collect();
    for i in 1..=200 {
        alice.say("#qq", &format!("刷屏 {i}")).await;
    }
    let deadline = Instant::now() + WAIT;
    while bridge.group_texts(10002, 10001).len() < expected.len() {
        let got = bridge.group_texts(10002, 10001);
        assert!(
            Instant::now() < deadline,
            "{} of 200 lines reached the group; missing: {:?}",
            got.len(),
            expected
                .iter()
                .filter(|l| !got.contains(l))
                .collect::<Vec<_>>(),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bridge.group_texts(10002, 10001), expected);
}

/// At the relay's queue limit (which guards QQ from one person's flood)
/// a channel's lines are not refused: they wait in the channel's own
/// queue, and once QQ takes messages again they all go, after the ones
/// queued before, in order, with nobody told that anything was lost.
#[tokio::test]
async fn at_the_relays_queue_limit_lines_wait_in_the_channels_queue_in_order() {
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let yaml = format!(
        "name: {NETWORK}\nhost: 127.0.0.1\nport: {port}\nbot_nick: qqbot\n\
         relays: [{{uin: 10001, password: demo, protocol: http11}}]\n\
         channels: [{{channel: \"#qq\", buddy: 10002}}]\n",
        port = irc.port(),
    );
    let bridge = Bridge::start(quiet_demo(), &yaml).await;
    alice
        .wait_for("the bot joins", |m| joined(m, "qqbot", "#qq"))
        .await;
    // QQ stops taking the relay's messages; five fill its queue.
    bridge.core.set_qq_queue_limit(5);
    bridge.sim.world().set_null_replies(10001, true);
    let mut expected = Vec::new();
    for i in 1..=5 {
        let text = format!("排队 {i}");
        bridge
            .core
            .send_to_qq(
                RELAY,
                ChatId::Buddy(Uin(10002)),
                RichText::plain(text.clone()),
                None,
            )
            .await
            .expect("below the limit");
        expected.push(text);
    }
    for i in 1..=20 {
        alice.say("#qq", &format!("等待 {i}")).await;
        expected.push(format!("<alice> 等待 {i}"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(bridge.buddy_texts(10002, 10001).is_empty());

    bridge.sim.world().set_null_replies(10001, false);
    bridge
        .until("all the lines reach QQ", || {
            bridge.buddy_texts(10002, 10001).len() >= expected.len()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bridge.buddy_texts(10002, 10001), expected);
    // Nobody was told that a line was not relayed.
    let notices = alice.notices_until_pong().await;
    assert!(notices.is_empty(), "{notices:?}");
}

/// Lines said in a channel whose relay has no QQ login any more are
/// refused, and the channel is told how many with one notice per run of
/// lines ("5 lines not relayed to QQ: …"), never silently: the counts of
/// the notices add up to the lines said.
#[tokio::test]
async fn lines_no_login_relays_are_refused_with_a_counted_notice() {
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let bridge = bridge_group_channel(&irc, &mut alice).await;

    // The relay already bridges 20001 to #qq, so alice's own login (Hackfan,
    // 10003, over WebQQ: HTTP QQ 1.1 has no groups) relays it to #mine; then
    // she logs out.
    let told = |m: &Message, part: &str| matches!(&m.command, Command::NOTICE(t, x) if t == "alice" && x.contains(part));
    alice.say("qqbot", "login 10003 demo webqq").await;
    alice
        .wait_for("the login", |m| told(m, "logged in to QQ as 10003"))
        .await;
    alice.say("qqbot", "bridge 20001 test #mine").await;
    alice
        .wait_for("the bridge", |m| told(m, "relayed by QQ 10003"))
        .await;
    alice.join("#mine").await;
    alice.say("qqbot", "logout").await;
    alice
        .wait_for("the logout", |m| told(m, "logged out of QQ 10003"))
        .await;

    let mut bob = User::connect(&irc, "bob").await;
    bob.join("#mine").await;
    let said = 5;
    let lines: Vec<String> = (1..=said)
        .map(|i| format!("PRIVMSG #mine :无人转发 {i}"))
        .collect();
    // One write, so the lines reach the bridge together.
    bob.send(&lines.join("\r\n")).await;

    let why = "no QQ login relays this channel";
    let mut refused = 0;
    while refused < said {
        let m = bob
            .wait_for("a refusal notice in #mine", |m| {
                m.source_nickname() == Some("qqbot")
                    && matches!(&m.command, Command::NOTICE(t, _) if t == "#mine")
            })
            .await;
        let Command::NOTICE(_, text) = &m.command else {
            unreachable!()
        };
        refused += match text.split_once(" lines not relayed to QQ: ") {
            Some((n, reason)) => {
                assert_eq!(reason, why, "{text}");
                let n: usize = n.parse().unwrap_or_else(|_| panic!("a count: {text}"));
                assert!(n > 1, "{text}");
                n
            }
            None => {
                assert_eq!(text, &format!("not relayed to QQ: {why}"));
                1
            }
        };
    }
    assert_eq!(refused, said, "every line is told about once");
    let more = bob.notices_until_pong().await;
    assert!(more.is_empty(), "{more:?}");
    assert!(bridge.group_texts(10004, 10003).is_empty());
}

#[tokio::test]
async fn two_hundred_puppets_join_under_flood_control_and_all_speak_in_order() {
    const MEMBERS: u64 = 200;
    const FIRST: u64 = 300_000;
    let irc = ngircd(NgircdOptions::default()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#big").await;
    let mut scenario = quiet_demo();
    scenario.account_ranges.push(AccountRange {
        first_uin: FIRST,
        count: MEMBERS as u32,
        password: ScenarioPassword("demo".into()),
        nick_prefix: "成员".into(),
        presence: Default::default(),
        add_policy: Default::default(),
    });
    let mut members = vec![10001];
    members.extend(FIRST..FIRST + MEMBERS);
    scenario.groups.push(GroupSpec {
        number: 20002,
        name: "大群".into(),
        memo: String::new(),
        owner: Some(10001),
        members,
        cards: Default::default(),
        chatter: None,
    });
    let yaml = network_yaml(
        &irc,
        "channels: [{channel: \"#big\", group: 20002}]\nconnect_members: true\n\
         limits: {max_puppets: 250, connects_per_second: 25, messages_per_second: 2, message_burst: 3}\n",
    );
    let started = Instant::now();
    let bridge = Bridge::start(scenario, &yaml).await;

    // Every member's puppet joins; nobody is killed for flooding.
    let mut joins = std::collections::HashSet::new();
    while joins.len() < MEMBERS as usize {
        let m = alice.wait_for("200 puppets joining", |_| true).await;
        match &m.command {
            Command::JOIN(..) => {
                if let Some(nick) = m.source_nickname().filter(|n| n.ends_with("[qq]")) {
                    joins.insert(nick.to_owned());
                }
            }
            Command::QUIT(reason) => panic!("{:?} left: {reason:?}", m.source_nickname()),
            Command::KILL(_, reason) => panic!("{:?} killed: {reason}", m.source_nickname()),
            _ => {}
        }
    }
    let joined_in = started.elapsed();
    assert!(joins.contains("ChengYuan300000[qq]"), "{joins:?}");
    // Paced: 200 connections at 25 per second cannot take less than ~8 s.
    assert!(joined_in >= Duration::from_secs(7), "{joined_in:?}");

    // Then all of them speak at once: the burst drains in order.
    for uin in FIRST..FIRST + MEMBERS {
        bridge.qq_says(20002, uin, &format!("第{}个", uin - FIRST));
    }
    for uin in FIRST..FIRST + MEMBERS {
        let nick = format!("ChengYuan{uin}[qq]");
        assert_eq!(
            alice.said(&nick, "#big").await,
            format!("第{}个", uin - FIRST)
        );
    }
    eprintln!(
        "200 puppets joined in {joined_in:?}; all spoke after {:?}",
        started.elapsed()
    );
    let log = std::fs::read_to_string(irc.log_path()).unwrap_or_default();
    assert!(!log.contains("Excess"), "flood kills in the ngIRCd log");
}

#[tokio::test]
async fn a_server_restart_mid_conversation_loses_nothing_and_keeps_order() {
    let mut irc = ngircd(NgircdOptions::default()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let bridge = bridge_group_channel(&irc, &mut alice).await;
    let speakers = [(10002, "WeiCheng[qq]"), (10003, "HackfanHao[qq]")];
    let line = |i: usize| format!("消息 {i}");
    let mut seen: Vec<String> = Vec::new();
    let record = |m: &Message, seen: &mut Vec<String>| {
        for (_, nick) in speakers {
            if let Some(text) = privmsg(m, nick, "#qq") {
                seen.push(text);
            }
        }
    };

    // A conversation under way...
    for i in 1..=4 {
        bridge.qq_says(20001, speakers[i % 2].0, &line(i));
    }
    while seen.len() < 2 {
        let m = alice.next().await;
        record(&m, &mut seen);
    }
    // ...when the server goes down, with messages in flight.
    for i in 5..=6 {
        bridge.qq_says(20001, speakers[i % 2].0, &line(i));
    }
    irc.stop().await.expect("ngircd stops");
    for line_text in alice.client.until_closed().await.unwrap_or_default() {
        if let Ok(m) = line_text.parse::<Message>() {
            record(&m, &mut seen);
        }
    }
    for i in 7..=10 {
        bridge.qq_says(20001, speakers[i % 2].0, &line(i));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    irc.resume().await.expect("ngircd starts again");
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    for i in 11..=12 {
        bridge.qq_says(20001, speakers[i % 2].0, &line(i));
    }
    let deadline = Instant::now() + WAIT;
    while !seen.contains(&line(12)) {
        assert!(Instant::now() < deadline, "only got {seen:?}");
        let m = tokio::time::timeout(WAIT, alice.next())
            .await
            .expect("messages after the restart");
        record(&m, &mut seen);
    }
    // Every line, in order; a line in flight at the restart may have
    // been processed and re-sent, so repeats of one line are tolerated.
    let mut unique = seen.clone();
    unique.dedup();
    let expected: Vec<String> = (1..=12).map(line).collect();
    assert_eq!(unique, expected, "seen: {seen:?}");
    assert!(seen.len() <= expected.len() + 1, "seen: {seen:?}");
}

#[tokio::test]
async fn long_lines_are_split_and_injection_attempts_stay_text() {
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let bridge = bridge_group_channel(&irc, &mut alice).await;

    bridge.qq_says(
        20001,
        10002,
        "第一行\r\nQUIT :bye\0\nPRIVMSG #qq :injected\rMODE #qq +o WeiCheng[qq]",
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(alice.said("WeiCheng[qq]", "#qq").await);
    }
    assert_eq!(
        got,
        vec![
            "第一行",
            "QUIT :bye",
            "PRIVMSG #qq :injected",
            "MODE #qq +o WeiCheng[qq]"
        ]
    );

    // 700 Chinese characters (2100 bytes): several lines, cut between
    // characters, nothing lost.
    let long: String = "桥接测试中文长消息".chars().cycle().take(700).collect();
    bridge.qq_says(20001, 10002, &long);
    let mut joined_text = String::new();
    let mut pieces = 0;
    while joined_text.chars().count() < 700 {
        let piece = alice.said("WeiCheng[qq]", "#qq").await;
        // The whole line as relayed to alice fits in 512 bytes.
        let framing = ":WeiCheng[qq]!~qq10002@127.0.0.1 PRIVMSG #qq :\r\n".len();
        assert!(piece.len() + framing <= 512, "{} bytes", piece.len());
        joined_text.push_str(&piece);
        pieces += 1;
    }
    assert_eq!(joined_text, long);
    assert!(pieces >= 5, "{pieces} pieces");

    // The puppet is still there: nothing was taken as a command.
    alice.send("NAMES #qq").await;
    let names = alice.wait_for("NAMES", |m| numeric(m) == Some(353)).await;
    assert!(
        numeric_args(&names)
            .last()
            .unwrap()
            .contains("WeiCheng[qq]"),
        "{names:?}"
    );
    // And the QQ side got nothing back.
    assert!(bridge.group_texts(10003, 10001).is_empty());
}

#[tokio::test]
async fn bridging_at_run_time_and_personal_use_through_the_bot() {
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    let yaml = network_yaml(&irc, "");
    let bridge = Bridge::start(quiet_demo(), &yaml).await;
    bridge
        .until("the bot is up", || bridge.networks.is_connected(NETWORK))
        .await;

    // alice (an admin) bridges group 20001 to #live; the relay is in it.
    alice.say("qqbot", "bridge 20001 test #live").await;
    let reply = alice
        .wait_for(
            "the bridge reply",
            |m| matches!(&m.command, Command::NOTICE(t, _) if t == "alice"),
        )
        .await;
    let Command::NOTICE(_, text) = &reply.command else {
        unreachable!()
    };
    assert_eq!(
        text,
        "bridged QQ group 20001 to #live (relayed by QQ 10001)"
    );
    alice.join("#live").await;
    bridge.qq_says(20001, 10004, "新频道");
    assert_eq!(alice.said("XiaoQiE[qq]", "#live").await, "新频道");

    // bob brings his own QQ account (Hackfan, 10003) by messaging the bot.
    let mut bob = User::connect(&irc, "bob").await;
    bob.say("qqbot", "login 10003 demo").await;
    let reply = bob
        .wait_for(
            "the login reply",
            |m| matches!(&m.command, Command::NOTICE(_, t) if t.contains("logged in")),
        )
        .await;
    assert!(
        matches!(&reply.command, Command::NOTICE(_, t) if t == "logged in to QQ as 10003 (http11)"),
        "{reply:?}"
    );
    // 微程 writes to Hackfan: it arrives as a private message from his puppet.
    let world = bridge.sim.world().clone();
    world.send_message(10002, 10003, "在吗？", Origin::Control);
    assert_eq!(bob.said("WeiCheng[qq]", "bob").await, "在吗？");
    // bob answers the puppet: 微程 gets it from Hackfan.
    bob.say("WeiCheng[qq]", "在的").await;
    bridge
        .until("bob's answer reaches 微程", || {
            bridge
                .buddy_texts(10002, 10003)
                .contains(&"在的".to_owned())
        })
        .await;
    // 微程 is busy on QQ: the puppet is away on IRC.
    world.set_presence(10002, sim::Presence::Busy, Origin::Control);
    let deadline = Instant::now() + WAIT;
    loop {
        bob.send("WHOIS WeiCheng[qq]").await;
        let away = bob
            .wait_for("the end of WHOIS", |m| {
                numeric(m) == Some(301) || numeric(m) == Some(318)
            })
            .await;
        if numeric(&away) == Some(301) {
            assert_eq!(numeric_args(&away).last().unwrap(), "busy on QQ");
            break;
        }
        assert!(Instant::now() < deadline, "the puppet never went away");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Someone without a QQ login is told how to get one.
    alice.say("WeiCheng[qq]", "hello?").await;
    let hint = alice
        .wait_for("the login hint", |m| {
            matches!(&m.command, Command::NOTICE(t, x) if t == "alice" && x.contains("not logged in"))
        })
        .await;
    drop(hint);

    // Unbridging: the bot leaves #live; non-admins may not.
    bob.say("qqbot", "unbridge 20001 test #live").await;
    bob.wait_for(
        "the refusal",
        |m| matches!(&m.command, Command::NOTICE(_, t) if t.contains("only bridge admins")),
    )
    .await;
    alice.say("qqbot", "unbridge 20001 test #live").await;
    alice
        .wait_for("the bot leaves", |m| {
            m.source_nickname() == Some("qqbot")
                && matches!(&m.command, Command::PART(c, _) if c == "#live")
        })
        .await;
}

#[tokio::test]
async fn a_k_lined_puppet_is_not_retried_and_the_bot_relays_for_it() {
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let bridge = bridge_group_channel(&irc, &mut alice).await;
    bridge.qq_says(20001, 10002, "还在");
    assert_eq!(alice.said("WeiCheng[qq]", "#qq").await, "还在");

    let (name, password) = irc.oper().expect("an operator");
    alice.send(&format!("OPER {name} {password}")).await;
    alice.wait_for("oper", |m| numeric(m) == Some(381)).await;
    alice
        .send("KLINE *!~qq10002@* 3600 :no puppets please")
        .await;
    alice
        .wait_for("the puppet is killed", |m| {
            m.source_nickname() == Some("WeiCheng[qq]") && matches!(m.command, Command::QUIT(_))
        })
        .await;

    bridge.qq_says(20001, 10002, "被封了");
    assert_eq!(alice.said("qqbot", "#qq").await, "<WeiCheng[qq]> 被封了");
    // It was not let back in to try again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = std::fs::read_to_string(irc.log_path()).unwrap_or_default();
    let attempts = log.matches("~qq10002@").count();
    assert!(attempts <= 3, "the banned puppet kept retrying: {attempts}");
}

#[tokio::test]
async fn messages_queued_while_the_network_is_down_survive_a_bridge_restart() {
    let mut irc = ngircd(NgircdOptions::default()).await;
    let yaml = network_yaml(&irc, "channels: [{channel: \"#qq\", group: 20001}]\n");
    let bridge = Bridge::start(quiet_demo(), &yaml).await;
    bridge
        .until("the bot is up", || bridge.networks.is_connected(NETWORK))
        .await;

    // The IRC server goes away; QQ keeps talking; the bridge restarts.
    irc.stop().await.expect("ngircd stops");
    bridge
        .until("the bot notices", || !bridge.networks.is_connected(NETWORK))
        .await;
    for i in 1..=3 {
        bridge.qq_says(20001, 10002, &format!("断线时 {i}"));
    }
    // The messages are in the bridge's queue (the relay got them all).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (sim, dir) = bridge.stop().await;

    irc.resume().await.expect("ngircd starts again");
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let bridge = Bridge::start_on(sim, dir, &yaml).await;
    for i in 1..=3 {
        assert_eq!(
            alice.said("WeiCheng[qq]", "#qq").await,
            format!("断线时 {i}")
        );
    }
    drop(bridge);
}

#[tokio::test]
async fn passwords_are_used_but_never_logged() {
    let server_password = format!("srv{:016x}", rand::random::<u64>());
    let nickserv_password = format!("ns{:016x}", rand::random::<u64>());
    let irc = ngircd(NgircdOptions {
        password: Some(server_password.clone()),
        ..NgircdOptions::without_flood_control()
    })
    .await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let yaml = network_yaml(
        &irc,
        &format!(
            "password: {server_password}\nnickserv: {{password: {nickserv_password}}}\n\
             channels: [{{channel: \"#qq\", group: 20001}}]\n"
        ),
    );
    let bridge = Bridge::start(quiet_demo(), &yaml).await;
    // The bot and a puppet get in: the server password works.
    alice
        .wait_for("the bot joins", |m| joined(m, "qqbot", "#qq"))
        .await;
    bridge.qq_says(20001, 10002, "有密码的服务器");
    assert_eq!(alice.said("WeiCheng[qq]", "#qq").await, "有密码的服务器");
    // A QQ password typed to the bot.
    alice.say("qqbot", "login 10004 demo").await;
    alice
        .wait_for("the login reply", |m| {
            matches!(&m.command, Command::NOTICE(_, t) if t.contains("logged in to QQ as 10004"))
        })
        .await;
    let logs = logged_text();
    assert!(
        !logs.contains(&server_password),
        "the server password was logged"
    );
    assert!(
        !logs.contains(&nickserv_password),
        "the NickServ password was logged"
    );
    assert!(!logs.contains("10004 demo"), "a QQ password was logged");
    assert!(
        logs.contains("login 10004 [redacted]"),
        "commands are logged, redacted"
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, as PEM files
/// readable by ngIRCd (which runs as nobody).
fn tls_files() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("qqbridge-tls-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("cert.pem", cert.pem()),
        ("key.pem", key.serialize_pem()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let ca_path = dir.path().join("ca.pem");
    (dir, ca_path)
}

#[tokio::test]
async fn the_bot_and_puppets_connect_over_tls() {
    let (tls_dir, ca) = tls_files();
    let tls_port = process::free_port();
    let irc = ngircd(NgircdOptions {
        extra_config: format!(
            "[SSL]\n\tCertFile = {}\n\tKeyFile = {}\n\tPorts = {tls_port}\n",
            tls_dir.path().join("cert.pem").display(),
            tls_dir.path().join("key.pem").display(),
        ),
        ..NgircdOptions::without_flood_control()
    })
    .await;
    let mut alice = User::connect(&irc, "alice").await;
    alice.join("#qq").await;
    let yaml = format!(
        "name: {NETWORK}\nhost: 127.0.0.1\nport: {tls_port}\ntls: true\ntls_ca_file: {}\n\
         bot_nick: qqbot\nrelays: [{{uin: 10001, password: demo, protocol: webqq}}]\n\
         channels: [{{channel: \"#qq\", group: 20001}}]\n",
        ca.display()
    );
    let bridge = Bridge::start(quiet_demo(), &yaml).await;
    alice
        .wait_for("the bot joins over TLS", |m| joined(m, "qqbot", "#qq"))
        .await;
    bridge.qq_says(20001, 10002, "加密连接");
    assert_eq!(alice.said("WeiCheng[qq]", "#qq").await, "加密连接");
    let log = std::fs::read_to_string(irc.log_path()).unwrap_or_default();
    assert!(
        log.contains("SSL") || log.contains("TLS"),
        "ngIRCd saw TLS clients"
    );
}

#[tokio::test]
async fn in_a_moderated_channel_messages_wait_for_a_voice_and_are_not_lost() {
    let irc = ngircd(NgircdOptions::without_flood_control()).await;
    let mut alice = User::connect(&irc, "alice").await;
    // alice made the channel, so she is its operator: she moderates it.
    alice.join("#qq").await;
    alice.send("MODE #qq +m").await;
    let bridge = bridge_group_channel(&irc, &mut alice).await;

    // Neither the puppet nor the bot may speak: the message waits.
    bridge.qq_says(20001, 10002, "等待发言权");
    alice
        .wait_for("the puppet joins", |m| joined(m, "WeiCheng[qq]", "#qq"))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    alice.send("MODE #qq +v qqbot").await;
    // The bot got a voice: it speaks for the puppet, which has none.
    assert_eq!(
        alice.said("qqbot", "#qq").await,
        "<WeiCheng[qq]> 等待发言权"
    );
}
