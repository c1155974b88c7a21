//! Crash recovery of the real `qqbridge run` binary: a two-way conversation
//! between an IRC gateway client (QQ 10001) and a QQ buddy (10002) while the
//! bridge is SIGKILLed at random moments (seeded; the seed is printed, set
//! `QQBRIDGE_CRASH_SEED` to replay one) and restarted on the same SQLite
//! file. The simulator runs in this test process, so the QQ side (queued
//! messages, the live session) outlives every bridge.
//!
//! What is asserted, per direction (README, Reliability, "Exactly-once,
//! side by side", explains why):
//! - QQ → IRC: every message the bridge had stored arrives exactly once and
//!   in order, the IRC client de-duplicating replays by their IRCv3 `msgid`
//!   (a kill between writing the line and completing the outbox item
//!   replays it with the same `msgid`). HTTP QQ 1.1's `GetMsgEx` removes
//!   what it returns and has no acknowledgement, so messages the server had
//!   handed to the killed bridge before it stored them are lost; the test
//!   computes exactly that set at each kill (taken from the server's queue,
//!   not in the database, not shown) and requires every other message.
//! - IRC → QQ: every message arrives, in order; a repeat can only directly
//!   follow its original (IRC has no acknowledgement, so the client resends
//!   the line a kill cut off; `CLTMSG` has no idempotency key, so a kill
//!   after the server accepted it and before the outbox item was completed
//!   sends it again), at most two per kill.
//!
//! The same harness (real binary, in-process simulator, line-level IRC
//! client) also runs graceful restarts (SIGTERM: nothing may be lost, over
//! either protocol) and a QQ server outage: the simulator shut down mid-
//! conversation and restarted on the same port with no memory of the
//! bridge's session.

#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use process::{deadline_in, free_port, read_since, wait_until, ServerProcess};
use qqbridge::qq::sim::{self, EventKind, Scenario, SimConfig, World};
use qqbridge::store::{SqliteStore, Store};

/// Messages per direction.
const N: usize = 120;
/// Times the bridge is killed during the conversation.
const KILLS: usize = 4;
const ME: u64 = 10001;
const BUDDY: u64 = 10002;
const NICK: &str = "alice";
const WAIT: Duration = Duration::from_secs(30);

const SCENARIO: &str = r#"
time_scale: 1.0
quirks:
  # The bridge paces its sends at 40 ms (qq.http11.send_pacing_ms), so the
  # conversation takes seconds instead of the real 1 s per message.
  cltmsg_min_interval_s: 0.02
accounts:
  - { uin: 10001, password: demo, nick: Me, presence: offline }
  - { uin: 10002, password: demo, nick: Buddy, presence: online }
friendships:
  - [10001, 10002]
"#;

fn q2i(n: usize) -> String {
    format!("q2i-{n:04}")
}

fn i2q(n: usize) -> String {
    format!("i2q-{n:04}")
}

// ---------------------------------------------------------------- the bridge

struct Bridge {
    config: PathBuf,
    log: PathBuf,
    database: PathBuf,
    gateway: SocketAddr,
    process: Option<ServerProcess>,
}

impl Bridge {
    fn new(dir: &Path, qq: SocketAddr) -> Bridge {
        Bridge::with_protocol(dir, qq, "http11")
    }

    /// A bridge whose logins use `protocol` (`http11` or `webqq`).
    fn with_protocol(dir: &Path, qq: SocketAddr, protocol: &str) -> Bridge {
        let gateway: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let database = dir.join("bridge.db");
        let config = dir.join("bridge.yaml");
        let yaml = format!(
            r#"database: {db}
qq:
  protocol: {protocol}
  server: http://{qq}
  simulator: {{ enabled: false }}
  http11: {{ send_pacing_ms: 40, poll_fast_ms: 50 }}
irc:
  gateway:
    enabled: true
    listen: {gateway}
    flood_burst: 100000
    flood_lines_per_s: 100000.0
matrix: {{ enabled: false }}
logging: {{ filter: info }}
"#,
            db = database.display(),
        );
        std::fs::write(&config, yaml).unwrap();
        Bridge {
            config,
            log: dir.join("bridge.log"),
            database,
            gateway,
            process: None,
        }
    }

    /// Starts the bridge; with `restored`, also waits until it has logged
    /// in again the stored QQ login (so the IRC client resumes it).
    async fn start(&mut self, restored: bool) {
        let from = process::file_len(&self.log);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qqbridge"));
        cmd.args(["run", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut process = ServerProcess::spawn("qqbridge", cmd).unwrap();
        let (gateway, log) = (self.gateway, self.log.clone());
        process
            .wait_ready(WAIT, "gateway listening, login restored", || {
                let log = log.clone();
                async move {
                    TcpStream::connect(gateway)
                        .await
                        .map_err(|e| e.to_string())?;
                    if restored && !read_since(&log, from).contains("restored QQ login") {
                        return Err("QQ login not restored yet".to_owned());
                    }
                    Ok::<(), String>(())
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", process::log_tail(&self.log, 40)));
        self.process = Some(process);
    }

    fn pid(&self) -> i32 {
        self.process.as_ref().and_then(|p| p.pid()).unwrap() as i32
    }

    /// SIGTERM, as a service manager stops it; waits until it has exited
    /// by itself, successfully.
    async fn terminate(&mut self) {
        let mut process = self.process.take().expect("the bridge runs");
        let pid = process.pid().expect("a live child") as i32;
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = process.exited() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the bridge stops within {WAIT:?} of SIGTERM\n{}",
                process::log_tail(&self.log, 40)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            status.success(),
            "a SIGTERMed bridge exits successfully, got {status}\n{}",
            process::log_tail(&self.log, 40)
        );
    }

    /// Reaps the killed bridge.
    fn reap(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}

fn sigkill_group(pid: i32) {
    // SAFETY: kill(2) on the process group of our own child.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

// ---------------------------------------------------------------- IRC client

/// A line-level IRC client that keeps every line it reads.
struct Irc {
    writer: OwnedWriteHalf,
    lines: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
    seen: usize,
}

impl Irc {
    async fn connect(addr: SocketAddr) -> Irc {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (read, writer) = stream.into_split();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (l, c) = (lines.clone(), closed.clone());
        tokio::spawn(async move {
            let mut read = BufReader::new(read).lines();
            while let Ok(Some(line)) = read.next_line().await {
                l.lock().unwrap().push(line);
            }
            c.store(true, Ordering::SeqCst);
        });
        Irc {
            writer,
            lines,
            closed,
            seen: 0,
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// False when the connection is gone.
    async fn send(&mut self, line: &str) -> bool {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .is_ok()
    }

    /// Waits for a line (read after the previous match) containing
    /// `needle`; `None` when the connection closes or after `WAIT`.
    async fn wait_for(&mut self, needle: &str) -> Option<String> {
        self.wait_for_any(&[needle]).await
    }

    /// [`Irc::wait_for`] a line containing any of `needles`.
    async fn wait_for_any(&mut self, needles: &[&str]) -> Option<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let lines = self.lines.lock().unwrap();
                let found = lines[self.seen..]
                    .iter()
                    .position(|l| needles.iter().any(|n| l.contains(n)));
                if let Some(i) = found {
                    self.seen += i + 1;
                    return Some(lines[self.seen - 1].clone());
                }
            }
            if self.is_closed() || Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Registers with message-tags (for `msgid`) and logs in (or resumes).
    async fn join_as(addr: SocketAddr) -> Irc {
        Irc::join_with(addr, NICK, ME).await
    }

    async fn join_with(addr: SocketAddr, nick: &str, uin: u64) -> Irc {
        let mut irc = Irc::connect(addr).await;
        irc.send("CAP REQ :message-tags").await;
        irc.send(&format!("NICK {nick}")).await;
        irc.send(&format!("USER {nick} 0 * :crash test")).await;
        irc.send("CAP END").await;
        irc.wait_for(" 001 ").await.expect("registered");
        irc.send(&format!("PRIVMSG &qq :login {uin} demo")).await;
        let logged_in = format!("logged in to QQ as {uin}");
        irc.wait_for_any(&[&logged_in, "resumed your QQ session"])
            .await
            .unwrap_or_else(|| panic!("login answer; got {:?}", irc.lines.lock().unwrap()));
        // Buddies may have been shown before the answer.
        irc.seen = 0;
        irc
    }

    async fn closed_within(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_closed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.is_closed()
    }
}

/// Waits until the lines of earlier connections (`earlier`) and of `irc`
/// together hold `want` distinct messages (by `msgid`) from QQ `uin`;
/// returns them all in the order read, replays included.
async fn wait_for_messages(
    earlier: &[String],
    irc: &Irc,
    uin: &str,
    want: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    wait_until(deadline_in(WAIT), "every QQ message on IRC", || {
        let mut all = earlier.to_vec();
        all.extend(irc.lines.lock().unwrap().iter().cloned());
        let got = messages_from(&all, uin);
        let distinct = got.iter().map(|(id, _)| id).collect::<HashSet<_>>().len();
        async move {
            if distinct >= want {
                Ok(got)
            } else {
                Err(format!("{distinct} of {want} so far"))
            }
        }
    })
    .await
}

/// Messages from the buddy in the client's lines: (msgid, text).
fn buddy_messages(lines: &[String]) -> Vec<(String, String)> {
    messages_from(lines, "10002")
}

/// Messages from QQ `uin` in the client's lines: (msgid, text).
fn messages_from(lines: &[String], uin: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in lines {
        let Ok(m) = line.parse::<irc::proto::Message>() else {
            continue;
        };
        let from_buddy =
            matches!(&m.prefix, Some(irc::proto::Prefix::Nickname(_, user, _)) if user == uin);
        if let (true, irc::proto::Command::PRIVMSG(_, text)) = (from_buddy, &m.command) {
            let msgid = m
                .tags
                .iter()
                .flatten()
                .find(|t| t.0 == "msgid")
                .and_then(|t| t.1.clone())
                .expect("every message carries a msgid");
            out.push((msgid, text.trim().to_owned()));
        }
    }
    out
}

/// Whether an outbox payload (JSON) holds `text` as one of its strings
/// (the wire may add a trailing space).
fn holds_text(payload: &str, text: &str) -> bool {
    fn walk(v: &serde_json::Value, text: &str) -> bool {
        match v {
            serde_json::Value::String(s) => s.trim() == text,
            serde_json::Value::Array(items) => items.iter().any(|i| walk(i, text)),
            serde_json::Value::Object(map) => map.values().any(|i| walk(i, text)),
            _ => false,
        }
    }
    let value: serde_json::Value = serde_json::from_str(payload).expect("outbox payloads are JSON");
    walk(&value, text)
}

// ---------------------------------------------------------------- test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_survives_repeated_sigkills_of_the_bridge() {
    let started = Instant::now();
    let seed: u64 = std::env::var("QQBRIDGE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed: {seed} (QQBRIDGE_CRASH_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let sim = sim::start(SimConfig::new(Scenario::from_yaml(SCENARIO).unwrap()))
        .await
        .unwrap();
    let world = sim.world().clone();
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = Bridge::new(dir.path(), sim.protocol_addr());

    let (mut sent_q2i, mut acked_i2q) = (0usize, 0usize);
    let mut lost_in_flight: BTreeSet<String> = BTreeSet::new();
    let mut client_lines: Vec<String> = Vec::new();
    let mut kills_done = 0;
    // Messages found stored but not yet shown at a kill (they must arrive).
    let mut waiting_in_db = 0;

    for round in 0..=KILLS {
        bridge.start(round > 0).await;
        let mut irc = Irc::join_as(bridge.gateway).await;
        let buddy_nick = {
            let line = irc.wait_for("!10002@").await.expect("the buddy is shown");
            let m: irc::proto::Message = line.parse().unwrap();
            m.source_nickname().unwrap().to_owned()
        };
        // The killer: SIGKILL at a random moment of this round.
        let killer = (round < KILLS).then(|| {
            let pid = bridge.pid();
            let after = Duration::from_millis(rng.gen_range(200..1500));
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                sigkill_group(pid);
            })
        });
        // Talk until the bridge dies (or, in the last round, until done).
        while !irc.is_closed() && (sent_q2i < N || acked_i2q < N) {
            if sent_q2i < N {
                world.send_message(BUDDY, ME, &q2i(sent_q2i), sim::Origin::Control);
                sent_q2i += 1;
            }
            if acked_i2q < N {
                let n = acked_i2q;
                // Stop-and-wait: the PONG after the PRIVMSG says the line was
                // processed, i.e. the message is in the outbox.
                let ok = irc.send(&format!("PRIVMSG {buddy_nick} :{}", i2q(n))).await
                    && irc.send(&format!("PING :ack-{n}.")).await
                    && irc.wait_for(&format!("ack-{n}.")).await.is_some();
                if ok {
                    acked_i2q += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(killer) = killer {
            killer.await.unwrap();
            kills_done += 1;
            assert!(
                irc.closed_within(WAIT).await,
                "the killed bridge's connection closes"
            );
            bridge.reap();
            client_lines.extend(irc.lines.lock().unwrap().iter().cloned());
            // What the server handed to the dead bridge that it had not
            // stored yet: taken from the queue, not in the database, not shown.
            let log: Vec<String> = world
                .received(ME)
                .unwrap()
                .into_iter()
                .map(|e| match e.kind {
                    EventKind::Message { text } => text.trim().to_owned(),
                    other => panic!("10001 only gets messages here, got {other:?}"),
                })
                .collect();
            let pending = world.snapshot(ME).unwrap().pending_events;
            let taken = &log[..log.len() - pending];
            let stored = {
                let store = SqliteStore::open(&bridge.database).unwrap();
                store
                    .pending(&format!("to:gateway:{NICK}"), 100_000)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|i| i.payload)
                    .collect::<Vec<_>>()
            };
            let shown: HashSet<String> = buddy_messages(&client_lines)
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            for text in taken {
                let in_db = stored.iter().any(|p| holds_text(p, text));
                if in_db && !shown.contains(text) {
                    waiting_in_db += 1;
                }
                if !in_db && !shown.contains(text) {
                    lost_in_flight.insert(text.clone());
                }
            }
            // Messages that arrive at QQ while the bridge is down wait there.
            for _ in 0..3 {
                if sent_q2i < N {
                    world.send_message(BUDDY, ME, &q2i(sent_q2i), sim::Origin::Control);
                    sent_q2i += 1;
                }
            }
        } else {
            // Last round: let everything drain, then compare.
            let expected_q2i: Vec<String> = (0..N)
                .map(q2i)
                .filter(|t| !lost_in_flight.contains(t))
                .collect();
            let shown = wait_for_messages(&client_lines, &irc, "10002", expected_q2i.len())
                .await
                .unwrap();
            let at_qq = wait_until(deadline_in(WAIT), "every IRC message at QQ", || {
                let got: Vec<String> = world
                    .received(BUDDY)
                    .unwrap()
                    .into_iter()
                    .filter(|e| e.from == ME)
                    .filter_map(|e| match e.kind {
                        EventKind::Message { text } => Some(text.trim().to_owned()),
                        _ => None,
                    })
                    .collect();
                let last = got.last().cloned();
                async move {
                    if last == Some(i2q(N - 1)) {
                        Ok(got)
                    } else {
                        Err(format!("{} so far, last {last:?}", got.len()))
                    }
                }
            })
            .await
            .unwrap();

            // QQ → IRC: exactly once (by msgid) and in order.
            let mut by_id: HashMap<String, String> = HashMap::new();
            let mut order = Vec::new();
            let mut replays = 0;
            for (id, text) in &shown {
                match by_id.get(id) {
                    Some(t) => {
                        assert_eq!(t, text, "one msgid, one text");
                        replays += 1;
                    }
                    None => {
                        by_id.insert(id.clone(), text.clone());
                        order.push(text.clone());
                    }
                }
            }
            assert_eq!(
                order, expected_q2i,
                "QQ → IRC: every stored message exactly once, in order (seed {seed})"
            );
            // IRC → QQ: in order, a repeat only right after its original.
            let mut collapsed: Vec<String> = Vec::new();
            let mut repeats = 0;
            for text in &at_qq {
                if collapsed.last() == Some(text) {
                    repeats += 1;
                } else {
                    collapsed.push(text.clone());
                }
            }
            let expected_i2q: Vec<String> = (0..N).map(i2q).collect();
            assert_eq!(
                collapsed, expected_i2q,
                "IRC → QQ: every message, in order (seed {seed})"
            );
            assert!(
                repeats <= 2 * KILLS,
                "IRC → QQ: at most two repeats per kill, got {repeats} (seed {seed})"
            );
            println!(
                "crash test: {kills_done} kills, {N}+{N} messages; QQ→IRC: {} lost in GetMsgEx \
                 flight, {waiting_in_db} stored but unshown at a kill, {replays} replays \
                 de-duplicated by msgid; IRC→QQ: {repeats} repeats; {:?}",
                lost_in_flight.len(),
                started.elapsed()
            );
        }
    }
    assert_eq!(kills_done, KILLS);
    bridge.reap();
    sim.shutdown().await;
}

const GROUP: u64 = 20001;

const RESTART_SCENARIO: &str = r#"
time_scale: 1.0
quirks:
  cltmsg_min_interval_s: 0.02
  # A second Login while the first session lives is refused until it
  # times out (http11.md §3): a restart must continue the session.
  relogin_while_online: strict
accounts:
  - { uin: 10001, password: demo, nick: Me, presence: offline }
  - { uin: 10002, password: demo, nick: Buddy, presence: online }
friendships:
  - [10001, 10002]
groups:
  - { number: 20001, name: Restart group, owner: 10002, members: [10001, 10002] }
"#;

/// The bridge is stopped with SIGTERM (as a service manager stops it for
/// an upgrade) and started again on the same database, three times, while
/// a QQ buddy keeps writing, to the user and (over WebQQ, which has groups)
/// to a group they share. Every message reaches the IRC client exactly
/// once and in order: unlike a SIGKILL, a graceful stop loses nothing,
/// since the bridge leaves its QQ session on the server for the next start
/// instead of logging out, and stores what it took before it exits.
async fn graceful_restarts_lose_no_qq_message(protocol: &str) {
    const MESSAGES: usize = 240;
    const RESTARTS: usize = 3;
    let started = Instant::now();
    let sim = sim::start(SimConfig::new(
        Scenario::from_yaml(RESTART_SCENARIO).unwrap(),
    ))
    .await
    .unwrap();
    let world = sim.world().clone();
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = Bridge::with_protocol(dir.path(), sim.protocol_addr(), protocol);
    let with_group = protocol == "webqq";
    let to_group = |n: usize| format!("grp-{n:04}");

    bridge.start(false).await;
    let mut irc = Irc::join_as(bridge.gateway).await;
    // The buddy writes all along: every 10 ms, across the restarts.
    let writer = {
        let world = world.clone();
        tokio::spawn(async move {
            for n in 0..MESSAGES {
                world.send_message(BUDDY, ME, &q2i(n), sim::Origin::Control);
                if with_group {
                    world.send_group_message(GROUP, BUDDY, &to_group(n), sim::Origin::Control);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut lines: Vec<String> = Vec::new();
    for _ in 0..RESTARTS {
        let after = Duration::from_millis(rand::thread_rng().gen_range(300..700));
        tokio::time::sleep(after).await;
        bridge.terminate().await;
        assert!(
            irc.closed_within(WAIT).await,
            "the stopped bridge closes its clients"
        );
        lines.extend(irc.lines.lock().unwrap().iter().cloned());
        // A moment down, as a restart takes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        bridge.start(true).await;
        irc = Irc::join_as(bridge.gateway).await;
    }
    writer.await.unwrap();

    let want_buddy: Vec<String> = (0..MESSAGES).map(q2i).collect();
    let want_group: Vec<String> = if with_group {
        (0..MESSAGES).map(to_group).collect()
    } else {
        Vec::new()
    };
    let want = want_buddy.len() + want_group.len();
    let shown = wait_for_messages(&lines, &irc, "10002", want)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process::log_tail(&bridge.log, 60)));
    // Exactly once (a replay keeps its msgid and is not counted twice),
    // and each chat in order.
    let mut seen: HashSet<String> = HashSet::new();
    let (mut buddy, mut group) = (Vec::new(), Vec::new());
    for (id, text) in shown {
        if seen.insert(id) {
            if text.starts_with("grp-") {
                group.push(text);
            } else {
                buddy.push(text);
            }
        }
    }
    assert_eq!(
        buddy, want_buddy,
        "{protocol}: buddy messages once each, in order"
    );
    assert_eq!(
        group, want_group,
        "{protocol}: group messages once each, in order"
    );
    let log = std::fs::read_to_string(&bridge.log).unwrap_or_default();
    if protocol == "http11" {
        // Strict re-login: only continuing the kept session gets back in.
        assert_eq!(
            log.matches("continued the session the server kept").count(),
            RESTARTS,
            "each restart continues the HTTP QQ 1.1 session"
        );
    }
    assert!(!log.contains("logged out"), "a stop does not log QQ out");
    println!(
        "{protocol}: {RESTARTS} graceful restarts, {} messages, none lost, {:?}",
        want_buddy.len() + want_group.len(),
        started.elapsed()
    );
    bridge.reap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restarts_lose_no_qq_message_over_http11() {
    graceful_restarts_lose_no_qq_message("http11").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restarts_lose_no_qq_message_over_webqq() {
    graceful_restarts_lose_no_qq_message("webqq").await;
}

/// Texts of the messages `to` received from `from`.
fn messages_between(world: &World, from: u64, to: u64) -> Vec<String> {
    world
        .received(to)
        .unwrap()
        .into_iter()
        .filter(|e| e.from == from)
        .filter_map(|e| match e.kind {
            EventKind::Message { text } => Some(text.trim().to_owned()),
            _ => None,
        })
        .collect()
}

/// The QQ server disappears mid-conversation (shut down, connections
/// refused) and comes back on the same port with a fresh state (so the
/// bridge's session is unknown there): messages written on IRC meanwhile
/// wait in the outbox and arrive exactly once, in order; the bridge logs in
/// again by itself; the user is told once about the outage, not per retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qq_server_outage_mid_conversation_loses_nothing_and_is_told_once() {
    const PHASE: usize = 30;
    let started = Instant::now();
    let port = free_port();
    let start_sim = || async move {
        let mut config = SimConfig::new(Scenario::from_yaml(SCENARIO).unwrap());
        config.listen = format!("127.0.0.1:{port}").parse().unwrap();
        sim::start(config).await.unwrap()
    };
    let sim1 = start_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = Bridge::new(dir.path(), sim1.protocol_addr());
    bridge.start(false).await;
    let mut irc = Irc::join_as(bridge.gateway).await;
    let line = irc.wait_for("!10002@").await.expect("the buddy is shown");
    let buddy_nick = line
        .parse::<irc::proto::Message>()
        .unwrap()
        .source_nickname()
        .unwrap()
        .to_owned();
    let say = |n: usize| format!("PRIVMSG {buddy_nick} :{}", i2q(n));

    // Phase 1: both ways, server up.
    for n in 0..PHASE {
        sim1.world()
            .send_message(BUDDY, ME, &q2i(n), sim::Origin::Control);
        assert!(irc.send(&say(n)).await);
    }
    let world1 = sim1.world().clone();
    wait_until(deadline_in(WAIT), "phase 1 at QQ", || {
        let got = messages_between(&world1, ME, BUDDY);
        async move {
            if got.len() >= PHASE {
                Ok(())
            } else {
                Err(format!("{} so far", got.len()))
            }
        }
    })
    .await
    .unwrap();
    let lines = irc.lines.clone();
    wait_until(deadline_in(WAIT), "phase 1 on IRC", || {
        let got = buddy_messages(&lines.lock().unwrap()).len();
        async move {
            if got >= PHASE {
                Ok(())
            } else {
                Err(format!("{got} so far"))
            }
        }
    })
    .await
    .unwrap();
    let phase1_at_qq = messages_between(&world1, ME, BUDDY);
    assert_eq!(phase1_at_qq, (0..PHASE).map(i2q).collect::<Vec<_>>());

    // The server goes away; IRC keeps talking (and gets its PONGs: the
    // messages are accepted into the outbox).
    sim1.shutdown().await;
    for n in PHASE..2 * PHASE {
        assert!(irc.send(&say(n)).await);
        assert!(irc.send(&format!("PING :ack-{n}.")).await);
        assert!(irc.wait_for(&format!("ack-{n}.")).await.is_some());
    }
    wait_until(deadline_in(WAIT), "the outage noticed", || {
        let told = irc
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("QQ connection trouble"));
        async move {
            if told {
                Ok(())
            } else {
                Err("not yet")
            }
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Back, with no memory of the bridge's session.
    let sim2 = start_sim().await;
    let world2 = sim2.world().clone();
    wait_until(deadline_in(WAIT), "the bridge logged in again", || {
        let online = world2.snapshot(ME).unwrap().session.is_some();
        async move {
            if online {
                Ok(())
            } else {
                Err("no session yet")
            }
        }
    })
    .await
    .unwrap();
    for n in PHASE..2 * PHASE {
        world2.send_message(BUDDY, ME, &q2i(n), sim::Origin::Control);
    }
    let at_qq = wait_until(deadline_in(WAIT), "phase 2 at QQ", || {
        let got = messages_between(&world2, ME, BUDDY);
        async move {
            if got.len() >= PHASE {
                Ok(got)
            } else {
                Err(format!("{} so far", got.len()))
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        at_qq,
        (PHASE..2 * PHASE).map(i2q).collect::<Vec<_>>(),
        "written during the outage: each once, in order"
    );
    let shown = wait_until(deadline_in(WAIT), "phase 2 on IRC", || {
        let got = buddy_messages(&lines.lock().unwrap());
        async move {
            if got.len() >= 2 * PHASE {
                Ok(got)
            } else {
                Err(format!("{} so far", got.len()))
            }
        }
    })
    .await
    .unwrap();
    let texts: Vec<String> = shown.into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, (0..2 * PHASE).map(q2i).collect::<Vec<_>>());
    // Told once: one "trouble" notice for the whole outage, however many
    // polls and sends failed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = irc.lines.lock().unwrap().clone();
    let trouble = all
        .iter()
        .filter(|l| l.contains("QQ connection trouble"))
        .count();
    assert_eq!(trouble, 1, "one outage notice: {all:#?}");
    assert!(
        !all.iter().any(|l| l.contains("not delivered")),
        "nothing reported as failed"
    );
    println!("QQ outage test: {:?}", started.elapsed());
    bridge.reap();
    sim2.shutdown().await;
}

/// Two users on one bridge; 10003's QQ server side answers every request
/// NULL. 10001's conversation is not held up meanwhile; 10003's messages
/// wait and arrive once, in order, after the fault ends.
const TWO_USERS: &str = r#"
time_scale: 1.0
quirks: { cltmsg_min_interval_s: 0.02 }
accounts:
  - { uin: 10001, password: demo, nick: Me, presence: offline }
  - { uin: 10002, password: demo, nick: Buddy, presence: online }
  - { uin: 10003, password: demo, nick: Carol, presence: offline }
  - { uin: 10004, password: demo, nick: Dave, presence: online }
friendships:
  - [10001, 10002]
  - [10003, 10004]
"#;

/// `POST path` with a JSON body to the simulator's control API; the status.
async fn control_post(addr: SocketAddr, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer)
        .await
        .unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_broken_qq_session_does_not_hold_up_another() {
    const M: usize = 30;
    let started = Instant::now();
    let sim = sim::start(SimConfig::new(Scenario::from_yaml(TWO_USERS).unwrap()))
        .await
        .unwrap();
    let world = sim.world().clone();
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = Bridge::new(dir.path(), sim.protocol_addr());
    bridge.start(false).await;
    let mut alice = Irc::join_as(bridge.gateway).await;
    let mut carol = Irc::join_with(bridge.gateway, "carol", 10003).await;
    let nick_of = |line: String| {
        line.parse::<irc::proto::Message>()
            .unwrap()
            .source_nickname()
            .unwrap()
            .to_owned()
    };
    let buddy = nick_of(alice.wait_for("!10002@").await.unwrap());
    let dave = nick_of(carol.wait_for("!10004@").await.unwrap());

    // Carol's account breaks: every request NULL.
    let status = control_post(
        sim.control_addr(),
        "/fault",
        r#"{"uin":10003,"null_replies":true}"#,
    )
    .await;
    assert!(status.contains(" 200 "), "{status}");
    for n in 0..10 {
        assert!(carol.send(&format!("PRIVMSG {dave} :carol-{n:02}")).await);
        assert!(carol.send(&format!("PING :c-{n}.")).await);
        assert!(carol.wait_for(&format!("c-{n}.")).await.is_some());
    }

    // Alice's conversation goes on, both ways, while Carol is stuck.
    for n in 0..M {
        world.send_message(BUDDY, ME, &q2i(n), sim::Origin::Control);
        assert!(alice.send(&format!("PRIVMSG {buddy} :{}", i2q(n))).await);
    }
    let lines = alice.lines.clone();
    let (w, want) = (world.clone(), (0..M).map(i2q).collect::<Vec<_>>());
    wait_until(deadline_in(WAIT), "Alice's messages at QQ", || {
        let got = messages_between(&w, ME, BUDDY);
        let want = want.clone();
        async move {
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        }
    })
    .await
    .unwrap();
    let want = (0..M).map(q2i).collect::<Vec<_>>();
    wait_until(deadline_in(WAIT), "Alice's messages on IRC", || {
        let got: Vec<String> = buddy_messages(&lines.lock().unwrap())
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let want = want.clone();
        async move {
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        }
    })
    .await
    .unwrap();
    assert!(
        messages_between(&world, 10003, 10004).is_empty(),
        "Carol's account was broken all along"
    );

    // Carol's account recovers: her messages arrive, once, in order.
    world.set_null_replies(10003, false);
    let want: Vec<String> = (0..10).map(|n| format!("carol-{n:02}")).collect();
    let w = world.clone();
    wait_until(
        deadline_in(Duration::from_secs(60)),
        "Carol's messages",
        || {
            let got = messages_between(&w, 10003, 10004);
            let want = want.clone();
            async move {
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            }
        },
    )
    .await
    .unwrap();
    let trouble = |irc: &Irc| {
        irc.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("QQ connection trouble"))
            .count()
    };
    assert_eq!(
        trouble(&alice),
        0,
        "Alice is not told about Carol's trouble"
    );
    assert!(trouble(&carol) <= 1, "Carol is told at most once");
    println!("isolation test: {:?}", started.elapsed());
    bridge.reap();
    sim.shutdown().await;
}
