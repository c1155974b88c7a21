//! Starts everything the relay benchmark measures, on loopback: the QQ
//! simulator (in this process, or with `--sim-process` as a process of its
//! own, `qqbridge sim`), a real ngIRCd and a real Synapse (the test
//! harnesses), qqbridge as its own process (the release binary, so its CPU
//! time is its own) bridging QQ groups to a Matrix room and IRC channels,
//! heisenbridge on the same two servers, and the people at the ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::process::{Child, Command};

use qqbridge::qq::sim::{self, Scenario, SimConfig, SimHandle};

use crate::arrivals::{tag, Arrivals};
use crate::clients::{poll, IrcUser, MatrixUser, QqUser};
use crate::ngircd::{Ngircd, NgircdOptions};
use crate::process::free_port;
use crate::synapse::{Synapse, SynapseOptions};

/// Group bridged to Matrix and IRC (`#qq`): the latency paths and the
/// Matrix<->IRC comparison.
pub const GROUP_BOTH: u64 = 20001;
/// Group no bridge is in: the QQ floor.
pub const GROUP_FLOOR: u64 = 20002;
/// Group bridged to Matrix only: QQ -> Matrix throughput.
pub const GROUP_MATRIX: u64 = 20003;
/// Group bridged to IRC only (`#qqt`): QQ <-> IRC throughput.
pub const GROUP_IRC: u64 = 20004;
/// Group of the relay and carol alone, bridged to a Matrix room and IRC
/// `#qqm`: the IRC -> Matrix throughput ramp, whose lines no other QQ
/// client takes (heisenbridge's path has none either; in GROUP_BOTH the
/// benchmark's own QQ reader and writer would get each line too).
pub const GROUP_IRC_MATRIX: u64 = 20006;
/// Its IRC channel.
pub const IRC_MATRIX_CHANNEL: &str = "#qqm";
/// Group of erin's QQ account, a channel on the built-in IRC gateway.
pub const GROUP_GATEWAY: u64 = 20005;
/// Its channel on the gateway (from the group's name).
pub const GATEWAY_CHANNEL: &str = "#gw";

const BOT: &str = "@qqbot:localhost";
const HB_BOT: &str = "@heisenbridge:localhost";

/// Accounts: 10001 the IRC relay, 10002 carol's (Matrix), 10003 the QQ
/// reader, 10004 the QQ writer, 10005 erin's (the built-in IRC gateway).
const SCENARIO: &str = r#"
time_scale: 1.0
account_ranges:
  - { first_uin: 10001, count: 5, password: demo, nick_prefix: "bench", presence: online }
groups:
  - { number: 20001, name: both, members: [10001, 10002, 10003, 10004] }
  - { number: 20002, name: floor, members: [10003, 10004] }
  - { number: 20003, name: matrix, members: [10002, 10004] }
  - { number: 20004, name: irc, members: [10001, 10004] }
  - { number: 20005, name: gw, members: [10004, 10005] }
  - { number: 20006, name: ircmatrix, members: [10001, 10002] }
"#;

/// Where the QQ simulator runs.
pub enum QqServer {
    /// In this process: the throughput ramps write through its world
    /// directly, at no client cost.
    InProcess(SimHandle),
    /// `qqbridge sim` as its own process, as a QQ server is to its clients:
    /// every QQ hop then crosses a process boundary, in the floor as on the
    /// bridged paths (in this process the floor's sender, server and
    /// reader share one runtime, so a floor message can go from socket to
    /// socket without any thread waking from sleep).
    Process {
        /// Killed when the rig is dropped.
        _child: Child,
    },
}

pub struct Rig {
    pub arrivals: Arc<Arrivals>,
    pub sim: QqServer,
    pub irc: Ngircd,
    pub hs: Synapse,
    pub bridge: Child,
    pub heisenbridge: Option<Child>,
    pub alice: IrcUser,
    pub bob: IrcUser,
    pub carol: MatrixUser,
    pub dave: MatrixUser,
    /// On the bridge's own IRC gateway, logged in to QQ 10005.
    pub erin: IrcUser,
    pub hbowner: Option<MatrixUser>,
    /// 10003's session: alive for its events task, which records arrivals.
    pub _qq_reader: QqUser,
    pub qq_writer: QqUser,
    /// carol's portal room of GROUP_BOTH.
    pub room_both: String,
    /// carol and dave's plain room: the Matrix floor.
    pub room_floor: String,
    /// hbowner's heisenbridge room of `#hb`.
    pub room_hb: Option<String>,
    _dir: tempfile::TempDir,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The qqbridge binary: `QQBRIDGE_BIN`, else the one built next to this
/// example.
fn bridge_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("QQBRIDGE_BIN") {
        return Ok(bin.into());
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("qqbridge"))
        .context("no target directory")?;
    if !bin.exists() {
        bail!(
            "{} is missing: build it first with `cargo build --release`",
            bin.display()
        );
    }
    Ok(bin)
}

fn heisenbridge_python() -> Result<PathBuf> {
    let py = manifest_dir().join("target/heisenbridge-venv/bin/python");
    if !py.exists() {
        bail!("heisenbridge is not installed: run scripts/install-bench-deps");
    }
    Ok(py)
}

impl Rig {
    pub async fn start(with_heisenbridge: bool, sim_process: bool) -> Result<Rig> {
        let arrivals = Arc::new(Arrivals::default());
        let dir = tempfile::tempdir()?;

        let (sim, qq_addr) = if sim_process {
            start_sim_process(dir.path()).await?
        } else {
            let sim = sim::start(SimConfig::new(Scenario::from_yaml(SCENARIO)?)).await?;
            let addr = sim.protocol_addr();
            (QqServer::InProcess(sim), addr)
        };
        let qq_base = format!("http://{qq_addr}");
        eprintln!("QQ simulator on {qq_addr}");

        let irc = Ngircd::start(NgircdOptions::without_flood_control()).await?;
        eprintln!("ngIRCd on {} (flood control off)", irc.addr());

        // heisenbridge writes its own registration.
        let hb_port = free_port();
        let hb_reg = dir.path().join("heisenbridge.yaml");
        let mut appservices = Vec::new();
        if with_heisenbridge {
            let status = Command::new(heisenbridge_python()?)
                .args(["-m", "heisenbridge", "--generate", "-c"])
                .arg(&hb_reg)
                .args(["-l", "127.0.0.1", "-p", &hb_port.to_string()])
                .stdout(Stdio::null())
                .status()
                .await?;
            if !status.success() {
                bail!("heisenbridge --generate failed: {status}");
            }
            appservices.push(std::fs::read_to_string(&hb_reg)?);
        }

        let as_port = free_port();
        let gateway_port = free_port();
        let tokens = (
            format!("as{:030x}", rand::random::<u128>()),
            format!("hs{:030x}", rand::random::<u128>()),
        );
        let config_path = dir.path().join("bridge.yaml");
        let yaml = |hs_url: &str| {
            bridge_yaml(
                dir.path(),
                &qq_base,
                hs_url,
                as_port,
                &tokens,
                irc.port(),
                gateway_port,
            )
        };
        let placeholder =
            qqbridge::config::load_str("bench.yaml", &yaml("http://127.0.0.1:1"), &|_| None)?;
        appservices.push(qqbridge::app::registration(&placeholder).await?);
        let hs = Synapse::start(SynapseOptions {
            appservices,
            log_level: std::env::var("RELAY_BENCH_SYNAPSE_LOG")
                .unwrap_or_else(|_| "WARNING".into()),
            ..SynapseOptions::default()
        })
        .await?;
        eprintln!("Synapse on {} in {}", hs.base_url(), hs.dir().display());
        std::fs::write(&config_path, yaml(&hs.base_url()))?;

        let mut bridge = Command::new(bridge_binary()?);
        bridge.arg("run").arg("--config").arg(&config_path);
        // A profiling run sets the bridge's log filter, and its log is kept
        // after the run; otherwise the config's own filter applies.
        let log_path = match std::env::var("RELAY_BENCH_BRIDGE_LOG") {
            Ok(filter) => {
                bridge.env("RUST_LOG", filter);
                manifest_dir().join("target/relay_bench-bridge.log")
            }
            Err(_) => {
                bridge.env_remove("RUST_LOG");
                dir.path().join("bridge.log")
            }
        };
        eprintln!("qqbridge log: {}", log_path.display());
        let bridge = bridge
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting qqbridge")?;
        eprintln!("qqbridge pid {}", bridge.id().unwrap_or(0));

        let channels = ["#qq", "#qqt", IRC_MATRIX_CHANNEL, "#floor", "#hb"];
        let alice =
            IrcUser::connect(irc.addr(), "alice", &channels, "alice", arrivals.clone()).await?;
        let bob = IrcUser::connect(irc.addr(), "bob", &channels, "bob", arrivals.clone()).await?;
        alice.wait_line(":qqbot!").await?;

        let (carol_id, carol_token) = hs.register_user("carol", "pw", false).await?;
        let carol = MatrixUser::start(
            hs.base_url(),
            carol_id,
            carol_token,
            "carol",
            arrivals.clone(),
        )
        .await?;
        let (dave_id, dave_token) = hs.register_user("dave", "pw", false).await?;
        let dave =
            MatrixUser::start(hs.base_url(), dave_id, dave_token, "dave", arrivals.clone()).await?;

        // carol logs in to QQ 10002 from a DM with the bridge bot.
        let dm = carol
            .create_room(
                json!({"is_direct": true, "invite": [BOT], "preset": "trusted_private_chat"}),
            )
            .await?;
        carol.wait_message(Some(&dm), BOT, "").await?;
        carol.say(&dm, "login 10002 demo webqq").await?;
        carol
            .wait_message(Some(&dm), BOT, "logged in to QQ as 10002")
            .await?;

        let qq_reader = QqUser::login(&qq_base, 10003, "qq10003", arrivals.clone()).await?;
        let qq_writer = QqUser::login(&qq_base, 10004, "qq10004", arrivals.clone()).await?;

        // The first message of a group opens its portal room.
        let ghost = "@_qq_10004:localhost";
        qq_writer.say_in_group(GROUP_BOTH, "warm-both").await?;
        let room_both = carol.wait_message(None, ghost, "warm-both").await?;
        qq_writer.say_in_group(GROUP_MATRIX, "warm-matrix").await?;
        carol.wait_message(None, ghost, "warm-matrix").await?;
        // The relay is in #qq and #qqt once it relays there.
        qq_writer.say_in_group(GROUP_IRC, "warm-irc").await?;
        poll("the relay in #qqt", || {
            alice
                .lines
                .lock()
                .ok()?
                .iter()
                .any(|l| l.contains("JOIN") && l.contains("#qqt") && l.starts_with(":bench"))
                .then_some(())
        })
        .await
        .ok();
        // The first line in #qqm opens its portal room (the relay's ghost
        // posts it).
        let warm = tag("warm-qqm", 0);
        alice
            .send(&format!("PRIVMSG {IRC_MATRIX_CHANNEL} :{warm}"))
            .await?;
        carol
            .wait_message(None, "@_qq_10001:localhost", &warm)
            .await?;

        // erin logs in to QQ 10005 on the bridge's own IRC gateway; the
        // first message of her group makes her join its channel.
        let erin = IrcUser::connect(
            std::net::SocketAddr::from(([127, 0, 0, 1], gateway_port)),
            "erin",
            &[],
            "erin",
            arrivals.clone(),
        )
        .await?;
        erin.wait_line(" 001 erin ").await?;
        erin.send("PRIVMSG &qq :login 10005 demo webqq").await?;
        let warm = tag("warm-gw", 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            qq_writer.say_in_group(GROUP_GATEWAY, &warm).await?;
            if arrivals
                .wait("erin", &warm, Duration::from_secs(2))
                .await
                .is_some()
            {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("erin never saw her group on the IRC gateway");
            }
        }

        let room_floor = carol
            .create_room(json!({"invite": [dave.id.clone()], "preset": "private_chat"}))
            .await?;
        dave.wait_invite(&carol.id, &[]).await?;
        carol.say(&room_floor, "warm-floor").await?;
        dave.wait_message(Some(&room_floor), &carol.id, "warm-floor")
            .await?;

        let mut rig = Rig {
            arrivals,
            sim,
            irc,
            hs,
            bridge,
            heisenbridge: None,
            alice,
            bob,
            carol,
            dave,
            erin,
            hbowner: None,
            _qq_reader: qq_reader,
            qq_writer,
            room_both,
            room_floor,
            room_hb: None,
            _dir: dir,
        };
        if with_heisenbridge {
            rig.start_heisenbridge(&hb_reg, hb_port).await?;
        }
        Ok(rig)
    }

    /// heisenbridge with hbowner as its owner, connected to ngIRCd and in
    /// `#hb`, set up through its control room as a person would.
    async fn start_heisenbridge(&mut self, registration: &Path, port: u16) -> Result<()> {
        let (id, token) = self.hs.register_user("hbowner", "pw", false).await?;
        let log = std::fs::File::create(self._dir.path().join("heisenbridge.log"))?;
        let child = Command::new(heisenbridge_python()?)
            .args(["-m", "heisenbridge", "-c"])
            .arg(registration)
            .args(["-l", "127.0.0.1", "-p", &port.to_string(), "-o", &id])
            .arg(self.hs.base_url())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting heisenbridge")?;
        eprintln!("heisenbridge pid {}", child.id().unwrap_or(0));
        self.heisenbridge = Some(child);
        let owner = MatrixUser::start(
            self.hs.base_url(),
            id,
            token,
            "hbowner",
            self.arrivals.clone(),
        )
        .await?;
        // heisenbridge opens a control room with its owner by itself.
        let control = owner.wait_invite(HB_BOT, &[]).await?;
        owner.join(&control).await.ok();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let irc_port = self.irc.port();
        for cmd in [
            "ADDNETWORK bench".to_owned(),
            format!("ADDSERVER bench 127.0.0.1 {irc_port}"),
            "OPEN bench".to_owned(),
        ] {
            owner.say(&control, &cmd).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let network = owner
            .wait_invite(HB_BOT, std::slice::from_ref(&control))
            .await?;
        owner
            .wait_message(Some(&network), HB_BOT, "Welcome")
            .await?;
        owner.say(&network, "NICK hbbench").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        owner.say(&network, "CONNECT").await?;
        // ngIRCd's welcome (001) names the client `hbbench!user@host`;
        // heisenbridge waits 2 s after it before joining channels.
        owner
            .wait_message(Some(&network), HB_BOT, "hbbench!")
            .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        owner.say(&network, "JOIN #hb").await?;
        let room = owner
            .wait_invite(HB_BOT, &[control.clone(), network.clone()])
            .await?;
        self.alice.wait_line(":hbbench!").await?;
        owner.join(&room).await.ok();
        self.hbowner = Some(owner);
        self.room_hb = Some(room);
        Ok(())
    }
}

/// `qqbridge sim` on a free port with the benchmark's scenario, once it
/// accepts connections.
async fn start_sim_process(dir: &Path) -> Result<(QqServer, std::net::SocketAddr)> {
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, SCENARIO)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new(bridge_binary()?)
        .arg("sim")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--scenario")
        .arg(&scenario)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sim.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting qqbridge sim")?;
    eprintln!("QQ simulator pid {}", child.id().unwrap_or(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if std::time::Instant::now() > deadline {
            bail!("qqbridge sim never listened on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((QqServer::Process { _child: child }, addr))
}

fn bridge_yaml(
    dir: &Path,
    qq_base: &str,
    hs_url: &str,
    as_port: u16,
    tokens: &(String, String),
    irc_port: u16,
    gateway_port: u16,
) -> String {
    format!(
        r##"database: {db}
qq:
  server: {qq_base}
  protocol: webqq
irc:
  gateway:
    enabled: true
    listen: 127.0.0.1:{gateway_port}
    # Flood control off, as on the ngIRCd of the benchmark.
    flood_burst: 1000000
    flood_lines_per_s: 1000000
  networks:
    - name: bench
      host: 127.0.0.1
      port: {irc_port}
      bot_nick: qqbot
      relays: [{{uin: 10001, password: demo, protocol: webqq}}]
      channels:
        - {{channel: "#qq", group: {GROUP_BOTH}}}
        - {{channel: "#qqt", group: {GROUP_IRC}}}
        - {{channel: "{IRC_MATRIX_CHANNEL}", group: {GROUP_IRC_MATRIX}}}
      limits: {{messages_per_second: 100000, message_burst: 1000, connects_per_second: 20}}
matrix:
  enabled: true
  homeserver_url: {hs_url}
  domain: localhost
  appservice:
    listen: 127.0.0.1:{as_port}
    url: http://127.0.0.1:{as_port}
    as_token: {as_token}
    hs_token: {hs_token}
permissions:
  "*": user
logging:
  filter: warn
"##,
        db = dir.join("bridge.db").display(),
        as_token = tokens.0,
        hs_token = tokens.1,
    )
}
