//! The IRC gateway end to end: the built-in QQ simulator (demo scenario),
//! the real HTTP QQ 1.1 client, the core and the gateway, with the `irc`
//! crate's client as the user, and once with a real terminal client (irssi
//! driven in tmux). Login, the buddy list, Chinese messages both ways
//! (through the echo account too), presence, a friend request accepted from
//! IRC, and reconnect replay.

#[path = "support/gateway.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command as Process;
use std::sync::Arc;
use std::time::Duration;

use irc::proto::{Capability, Command, Message, Response};

use qqbridge::config::PermissionLevel;
use qqbridge::core::BridgeCore;
use qqbridge::irc::gateway::{self, GatewayHandle};
use qqbridge::qq::http11::Http11Connector;
use qqbridge::qq::sim::{
    self, events::EventKind, Origin, Presence as SimPresence, Scenario, SimConfig, SimHandle,
};
use qqbridge::qq::webqq::{WebqqConnector, WebqqOptions};
use qqbridge::qq::{Protocol, QqConnector};
use qqbridge::store::{SqliteStore, Store};

use support::*;

/// Simulated protocol delays (penalties, idle timeouts) at 1 %.
const TIME_SCALE: f64 = 0.01;

struct Bridge {
    sim: SimHandle,
    core: Arc<BridgeCore>,
    gateway: GatewayHandle,
    _dir: tempfile::TempDir,
}

impl Bridge {
    async fn start() -> Bridge {
        Bridge::start_with(false).await
    }

    /// With `webqq`, logins may also use the WebQQ client (groups).
    async fn start_with(webqq: bool) -> Bridge {
        capture_logs();
        let mut config = SimConfig::new(Scenario::demo());
        config.time_scale = Some(TIME_SCALE);
        let sim = sim::start(config).await.expect("simulator starts");
        let connector = Http11Connector::new(&format!("http://{}", sim.protocol_addr()))
            .expect("valid URL")
            .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
            .with_poll_interval(Duration::from_millis(20), Duration::from_millis(100))
            .with_send_pacing(Duration::from_millis(5))
            .with_retry(Duration::from_millis(20), Duration::from_millis(200), 5)
            .with_outage_backoff_max(Duration::from_millis(100));
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("bridge.db")).unwrap());
        let mut connectors: Vec<Arc<dyn QqConnector>> = vec![Arc::new(connector)];
        if webqq {
            let options = WebqqOptions {
                retry_initial: Duration::from_millis(20),
                retry_max: Duration::from_millis(200),
                ..WebqqOptions::default()
            };
            connectors.push(Arc::new(WebqqConnector::with_options(
                &format!("http://{}", sim.protocol_addr()),
                options,
            )));
        }
        let core = BridgeCore::new(
            store.clone(),
            connectors,
            Protocol::Http11,
            Arc::new(|_: &str| Some(PermissionLevel::User)),
        );
        let gateway = gateway::start(core.clone(), store, &test_config())
            .await
            .expect("gateway starts");
        Bridge {
            sim,
            core,
            gateway,
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }

    /// Texts of the messages an account received through the simulator.
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
}

fn joined(m: &Message, nick: &str, channel: &str) -> bool {
    m.source_nickname() == Some(nick)
        && matches!(&m.command, Command::JOIN(c, _, _) if c == channel)
}

async fn demo_login(bridge: &Bridge, nick: &str) -> IrcUser {
    let mut user = IrcUser::connect_with(
        bridge.addr(),
        nick,
        &[Capability::AwayNotify, Capability::MultiPrefix],
    )
    .await;
    user.wait_for("greeting", |m| text_of(m).contains("Type \"help\""))
        .await;
    assert_eq!(
        user.login(10001, "demo").await,
        "logged in to QQ as 10001 (http11)"
    );
    for buddy in ["WeiCheng", "HackfanHao", "XiaoQiE"] {
        user.wait_for(buddy, |m| joined(m, buddy, "&qq")).await;
    }
    user
}

#[tokio::test]
async fn chatting_with_the_demo_accounts_through_the_simulator() {
    let bridge = Bridge::start().await;
    let mut alice = demo_login(&bridge, "alice").await;
    let world = bridge.sim.world().clone();

    // The buddy list: idents are QQ numbers, realnames the QQ nicks;
    // Hackfan 好 is busy in the demo scenario.
    alice.raw("WHO &qq");
    alice
        .wait_for("end of WHO", |m| {
            matches!(m.command, Command::Response(Response::RPL_ENDOFWHO, _))
        })
        .await;
    let rows: Vec<Vec<String>> = alice
        .all()
        .iter()
        .filter(|m| numeric(m) == Some(352))
        .map(numeric_args)
        .collect();
    let row = |nick: &str| {
        rows.iter()
            .find(|r| r[5] == nick)
            .cloned()
            .unwrap_or_else(|| panic!("{nick}: {rows:?}"))
    };
    assert_eq!(row("WeiCheng")[2..=3], ["10002", "qq"].map(String::from));
    assert_eq!(row("WeiCheng")[7], "0 微程");
    assert_eq!(row("HackfanHao")[6], "G+");
    assert_eq!(row("XiaoQiE")[7], "0 小企鹅");

    // QQ to IRC.
    world.send_message(10002, 10001, "你好！我是微程。", Origin::Control);
    let m = alice
        .wait_for("message from 微程", |m| is_privmsg_from(m, "WeiCheng"))
        .await;
    assert_eq!(text_of(&m), "你好！我是微程。");

    // IRC to QQ, and back through the echo account.
    alice.say("XiaoQiE", "你好，小企鹅！");
    let echo = alice
        .wait_for("echo", |m| is_privmsg_from(m, "XiaoQiE"))
        .await;
    assert_eq!(text_of(&echo), "你好，小企鹅！");
    assert!(bridge
        .received_by(10004)
        .contains(&(10001, "你好，小企鹅！".to_owned())));
    alice.say("WeiCheng", "收到，谢谢");
    eventually("微程 got it", || {
        bridge
            .received_by(10002)
            .contains(&(10001, "收到，谢谢".to_owned()))
    })
    .await;

    // Presence from QQ.
    world.set_presence(10002, SimPresence::Busy, Origin::Control);
    let away = alice
        .wait_for("away", |m| {
            m.source_nickname() == Some("WeiCheng") && matches!(m.command, Command::AWAY(_))
        })
        .await;
    assert!(matches!(&away.command, Command::AWAY(Some(r)) if r == "Busy"));
    world.set_presence(10002, SimPresence::Offline, Origin::Control);
    alice
        .wait_for("devoiced", |m| {
            m.to_string().contains("MODE &qq -v") && m.to_string().contains("WeiCheng")
        })
        .await;

    // Presence to QQ.
    alice.raw("AWAY :开会中");
    eventually("busy on QQ", || {
        world.presence(10001) == Some(SimPresence::Busy)
    })
    .await;
    alice.raw("AWAY");
    eventually("online on QQ", || {
        world.presence(10001) == Some(SimPresence::Online)
    })
    .await;
}

#[tokio::test]
async fn a_friend_request_from_qq_is_accepted_from_irc() {
    let bridge = Bridge::start().await;
    let mut alice = demo_login(&bridge, "alice").await;
    let world = bridge.sim.world().clone();
    // 微程 drops 演示用户 and asks to be friends again.
    world.remove_friend(10001, 10002);
    world.remove_friend(10002, 10001);
    world.request_friend(10002, 10001, "加个好友吧", Origin::Control);
    let notice = alice
        .wait_for("request", |m| {
            text_of(m).starts_with("10002 wants to add you")
        })
        .await;
    assert!(
        matches!(&notice.command, Command::NOTICE(t, _) if t == "&qq"),
        "{notice}"
    );
    assert!(text_of(&notice).contains("加个好友吧"));
    let how = alice
        .wait_for("how", |m| text_of(m).contains("accept 10002"))
        .await;
    assert!(text_of(&how).contains("reject 10002"));
    alice.say("&qq", "accept 10002");
    assert_eq!(
        alice.bot_reply("accepted").await,
        "accepted 10002 as a buddy"
    );
    eventually("friends again", || {
        world.is_friend(10002, 10001) && world.is_friend(10001, 10002)
    })
    .await;
}

#[tokio::test]
async fn a_client_that_reconnects_gets_what_it_missed() {
    let bridge = Bridge::start().await;
    let alice = demo_login(&bridge, "alice").await;
    alice.vanish();
    eventually("client gone", || bridge.gateway.client_count() == 0).await;
    let world = bridge.sim.world().clone();
    for i in 1..=3 {
        world.send_message(10002, 10001, &format!("你不在的时候{i}"), Origin::Control);
    }
    // The QQ session is still online (grace period).
    assert!(world.session(10001).is_some());

    let mut back = IrcUser::connect(bridge.addr(), "alice").await;
    back.wait_for("auth request", |m| text_of(m).starts_with("/OPER"))
        .await;
    back.raw("OPER 10001 demo");
    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(text_of(
            &back
                .wait_for("replay", |m| is_privmsg_from(m, "WeiCheng"))
                .await,
        ));
    }
    assert_eq!(got, vec!["你不在的时候1", "你不在的时候2", "你不在的时候3"]);
    assert!(bridge.core.login_of("gateway:alice").is_some());
}

#[tokio::test]
async fn a_webqq_group_is_a_channel_with_members_and_messages_both_ways() {
    let bridge = Bridge::start_with(true).await;
    let world = bridge.sim.world().clone();
    let mut alice = IrcUser::connect(bridge.addr(), "alice").await;
    alice
        .wait_for("greeting", |m| text_of(m).contains("Type \"help\""))
        .await;
    alice.say("&qq", "login 10001 demo webqq");
    assert_eq!(
        alice.bot_reply("login").await,
        "logged in to QQ as 10001 (webqq)"
    );
    // The demo group "QQ 桥测试群" (20001) with 10002-10004 in it.
    let channel = "#QQQiaoCeShiQun";
    alice
        .wait_for("group channel", |m| joined(m, "alice", channel))
        .await;
    let topic = alice.wait_for("topic", |m| numeric(m) == Some(332)).await;
    assert_eq!(
        numeric_args(&topic)[1..],
        [channel, "QQ 桥测试群"].map(String::from)
    );
    let names = alice
        .wait_for("names", |m| {
            numeric(m) == Some(353) && numeric_args(m)[2] == channel
        })
        .await;
    let mut members: Vec<String> = numeric_args(&names)[3]
        .split(' ')
        .map(String::from)
        .collect();
    members.sort();
    // Over WebQQ 演示用户 calls Hackfan 好 by a mark name, 老胡: the nick
    // follows the name the user gave.
    assert_eq!(members, vec!["LaoHu", "WeiCheng", "XiaoQiE", "alice"]);
    // Group cards are the realnames in the channel's WHO.
    alice.raw(&format!("WHO {channel}"));
    alice
        .wait_for("end of WHO", |m| numeric(m) == Some(315))
        .await;
    let card = alice
        .all()
        .iter()
        .filter(|m| numeric(m) == Some(352))
        .map(numeric_args)
        .find(|r| r[5] == "WeiCheng")
        .expect("WeiCheng in WHO");
    assert_eq!(card[7], "0 微程 (管理员)");
    alice.raw("WHOIS LaoHu");
    let whois = alice.wait_for("WHOIS", |m| numeric(m) == Some(311)).await;
    assert_eq!(
        numeric_args(&whois)[2..],
        ["10003", "qq", "*", "Hackfan 好"].map(String::from)
    );

    world.send_group_message(20001, 10002, "欢迎来到测试群！", Origin::Control);
    let m = alice
        .wait_for("group message", |m| {
            is_privmsg_from(m, "WeiCheng")
                && matches!(&m.command, Command::PRIVMSG(t, _) if t == channel)
        })
        .await;
    assert_eq!(text_of(&m), "欢迎来到测试群！");

    alice.say(channel, "谢谢大家");
    eventually("the group got it", || {
        world.received(10002).unwrap_or_default().iter().any(|e| {
            matches!(&e.kind, EventKind::GroupMessage { group: 20001, text } if text == "谢谢大家")
                && e.from == 10001
        })
    })
    .await;
}

// ---------------------------------------------------------------- irssi

/// tmux (private socket) running irssi, for a real terminal client.
struct Terminal {
    socket: std::path::PathBuf,
    session: String,
}

impl Terminal {
    fn tmux(&self) -> Process {
        let mut cmd = Process::new("tmux");
        cmd.arg("-u").arg("-S").arg(&self.socket);
        cmd
    }

    fn start(home: &Path, addr: SocketAddr) -> Terminal {
        let terminal = Terminal {
            socket: home.join("tmux.sock"),
            session: "irssi".to_owned(),
        };
        let irssi = format!(
            "env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color irssi --home={} -n tester -c {} -p {}",
            home.display(),
            addr.ip(),
            addr.port()
        );
        let status = terminal
            .tmux()
            .args([
                "new-session",
                "-d",
                "-s",
                &terminal.session,
                "-x",
                "200",
                "-y",
                "50",
                &irssi,
            ])
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        terminal
    }

    /// Types a line (literally) and Enter.
    fn type_line(&self, line: &str) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", &self.session, "-l", line])
            .status()
            .expect("tmux");
        assert!(ok.success());
        let ok = self
            .tmux()
            .args(["send-keys", "-t", &self.session, "Enter"])
            .status()
            .expect("tmux");
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-t", &self.session])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Switches to the window called `name` (a query irssi opens when the
    /// first message arrives) until it shows `needle`.
    async fn goto_window_showing(&self, name: &str, needle: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.type_line(&format!("/window goto {name}"));
            tokio::time::sleep(Duration::from_millis(300)).await;
            let screen = self.screen();
            if screen.contains(needle) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("irssi never showed {needle:?} in {name}; screen:\n{screen}");
            }
        }
    }

    /// Waits until the visible screen contains every one of `needles`.
    async fn wait_screen(&self, what: &str, needles: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("irssi never showed {what} {needles:?}; screen:\n{screen}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

fn have(program: &str) -> bool {
    Process::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn irssi_in_tmux_logs_in_and_chats_in_chinese() {
    if !have("irssi") || !have("tmux") {
        assert!(
            std::env::var_os("CI").is_none(),
            "irssi and tmux are required in CI (scripts/install-test-deps installs them)"
        );
        eprintln!("skipping: irssi or tmux is not installed (run scripts/install-test-deps)");
        return;
    }
    let bridge = Bridge::start().await;
    let home = tempfile::tempdir().unwrap();
    let term = Terminal::start(home.path(), bridge.addr());
    term.wait_screen(
        "the welcome",
        &["Welcome to the QQ gateway", "End of /MOTD"],
    )
    .await;

    // Log in without the password ever being shown.
    term.type_line("/oper 10001 demo");
    eventually("logged in", || {
        bridge.core.login_of("gateway:tester").is_some()
    })
    .await;
    term.type_line("/window goto &qq");
    let screen = term
        .wait_screen(
            "the buddy list",
            &[
                "logged in to QQ as 10001",
                "WeiCheng [10002@qq] has joined &qq",
                "XiaoQiE [10004@qq]",
            ],
        )
        .await;
    assert!(
        screen.contains("+vvv") || screen.contains("+vv"),
        "buddies are voiced:\n{screen}"
    );
    assert!(
        !screen.contains("demo "),
        "the password is not on screen:\n{screen}"
    );

    // Chat with the echo account.
    term.type_line("/msg XiaoQiE 你好，小企鹅！");
    eventually("小企鹅 got it", || {
        bridge
            .received_by(10004)
            .contains(&(10001, "你好，小企鹅！".to_owned()))
    })
    .await;
    term.type_line("/window goto XiaoQiE");
    let screen = term
        .wait_screen("the echo", &["<XiaoQiE> 你好，小企鹅！"])
        .await;
    assert!(screen.contains("<tester> 你好，小企鹅！"), "{screen}");

    // A message from QQ opens a query window.
    bridge
        .sim
        .world()
        .send_message(10002, 10001, "周末一起吃饭？", Origin::Control);
    term.goto_window_showing("WeiCheng", "<WeiCheng> 周末一起吃饭？")
        .await;
    term.type_line("好啊");
    eventually("微程 got the answer", || {
        bridge
            .received_by(10002)
            .contains(&(10001, "好啊".to_owned()))
    })
    .await;

    // WHOIS shows the QQ profile (irssi prints it in the open query).
    term.type_line("/whois WeiCheng");
    term.wait_screen("the profile", &["10002@qq", "程序员", "End of WHOIS"])
        .await;
    term.type_line("/quit");
}
