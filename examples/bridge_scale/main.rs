//! Scale and soak test of the whole bridge: N bridge users, each an IRC
//! client on the bridge's gateway logged in to its own QQ account (20
//! buddies) on the simulator, idle and then chatting; the bridge's memory
//! and CPU measured from `/proc` (README, Performance and Reliability).
//!
//! ```text
//! cargo build --release            # target/release/qqbridge: bridge and simulator
//! cargo run --release --example bridge_scale -- --sessions 10000
//! cargo run --release --example bridge_scale -- --sessions 1000 --qq-to-irc-per-s 50 --irc-to-qq-per-s 50
//! cargo run --release --example bridge_scale -- --soak --sessions 1000 --duration 600
//! ```
//!
//! What one run does:
//! 1. generates a scenario: one `account_ranges` entry of N accounts, each
//!    with `--friends` mutual buddies (a ring: i is a buddy of i±1 … i±10);
//! 2. starts `qqbridge sim` on it and `qqbridge run` with a generated config
//!    (embedded simulator off, `qq.server` = that simulator, IRC gateway on,
//!    SQLite on disk in a temporary directory, log level warn), both as
//!    separate processes of the `qqbridge` binary next to this example;
//! 3. connects N IRC clients to the gateway (`--login-rate` per second, at
//!    most `--login-concurrency` at once); each registers as `u<uin>` and
//!    logs in with `login <uin> <password>` to the `&qq` bot, which is how
//!    a real user does it, so the bridge holds the IRC connection, the
//!    gateway's view of the user and the QQ session of every user;
//! 4. waits `--settle` seconds for the QQ poll schedules to reach their
//!    idle interval, then measures an idle window (`--idle` seconds);
//! 5. measures a chat window (`--duration` seconds) at `--qq-to-irc-per-s`
//!    messages from QQ (the simulator's control API `/inject` from a random
//!    buddy to a random user, read by that user's IRC client) and
//!    `--irc-to-qq-per-s` messages from IRC (a random user's client sends a
//!    PRIVMSG to one of its buddies, who is a bridge user too and reads it
//!    on IRC: IRC → QQ → IRC); then waits up to `--drain` seconds for the
//!    stragglers and counts every message delivered, lost or duplicated.
//!
//! `--soak` skips the idle window and chats both ways (10 msg/s each
//! unless given) for `--duration`, sampling memory every `--sample-every`
//! seconds: RSS that keeps growing under a steady load is a leak.
//!
//! Memory is VmRSS from `/proc/<pid>/status` (VmHWM for the peak); CPU is
//! utime+stime from `/proc/<pid>/stat` as a percentage of one core.

mod irc_user;
mod ledger;
#[path = "../common/proc_stats.rs"]
mod proc_stats;
mod processes;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use irc_user::IrcUser;
use ledger::{message_text, Direction, Ledger};
use proc_stats::{cpu_seconds, peak_rss, rss};

const PASSWORD: &str = "scale";
const NICK_PREFIX: &str = "load";

#[derive(Parser, Debug)]
#[command(about = "Scale and soak test of the whole bridge (IRC gateway + QQ sessions)")]
struct Args {
    /// Bridge users (IRC clients, each logged in to its own QQ account).
    #[arg(long, default_value_t = 1000)]
    sessions: u64,
    /// QQ buddies of each account (even).
    #[arg(long, default_value_t = 20)]
    friends: u64,
    /// QQ protocol of the sessions: http11 or webqq.
    #[arg(long, default_value = "http11", value_parser = ["http11", "webqq"])]
    protocol: String,
    /// IRC logins started per second.
    #[arg(long, default_value_t = 200.0)]
    login_rate: f64,
    /// IRC logins in progress at most at once.
    #[arg(long, default_value_t = 64)]
    login_concurrency: usize,
    /// Seconds between the last login and the idle window.
    #[arg(long, default_value_t = 40)]
    settle: u64,
    /// Seconds of the idle window.
    #[arg(long, default_value_t = 60)]
    idle: u64,
    /// Seconds of the chat window (soak: the whole soak).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Messages per second from QQ users to bridge users.
    #[arg(long, default_value_t = 0.0)]
    qq_to_irc_per_s: f64,
    /// Messages per second from bridge users (IRC) to their QQ buddies.
    #[arg(long, default_value_t = 0.0)]
    irc_to_qq_per_s: f64,
    /// Seconds to wait after the chat window for messages still on their way.
    #[arg(long, default_value_t = 90)]
    drain: u64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10)]
    sample_every: u64,
    /// Soak: no idle window; both directions at 10 msg/s unless given.
    #[arg(long)]
    soak: bool,
    /// The first QQ number of the generated accounts.
    #[arg(long, default_value_t = 300_000)]
    first_uin: u64,
    /// The qqbridge binary [default: next to this example].
    #[arg(long)]
    bin: Option<std::path::PathBuf>,
    /// Print every figure as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the temporary directory (config, logs, database) and print it.
    #[arg(long)]
    keep: bool,
    /// After the windows, stop the bridge with SIGTERM and start it again
    /// on the same database; measure until every stored login is back.
    #[arg(long)]
    restart: bool,
    /// Seconds the restarted bridge gets to restore every login.
    #[arg(long, default_value_t = 600)]
    restore_timeout: u64,
}

// ------------------------------------------------------------ scenario

/// The index of a random buddy of account index `i`.
fn random_buddy(rng: &mut StdRng, i: u64, n: u64, friends: u64) -> u64 {
    if n <= friends + 1 {
        let other = rng.gen_range(0..n - 1);
        return if other >= i { other + 1 } else { other };
    }
    let half = friends / 2;
    let k = rng.gen_range(1..=half);
    if rng.gen_bool(0.5) {
        (i + k) % n
    } else {
        (i + n - k) % n
    }
}

fn scenario_yaml(args: &Args) -> String {
    let (n, first) = (args.sessions, args.first_uin);
    let mut yaml = format!(
        "# Generated by examples/bridge_scale\ntime_scale: 1.0\n\
         quirks: {{ session_idle_timeout_s: 300, heartbeat_interval_s: 60 }}\n\
         webqq: {{ captcha_policy: never }}\n\
         account_ranges:\n  - {{ first_uin: {first}, count: {n}, password: {PASSWORD}, nick_prefix: {NICK_PREFIX} }}\n\
         friendships:\n"
    );
    let half = args.friends / 2;
    for a in 0..n {
        if n <= args.friends + 1 {
            for b in a + 1..n {
                let _ = writeln!(yaml, "  - [{}, {}]", first + a, first + b);
            }
        } else {
            for k in 1..=half {
                let _ = writeln!(yaml, "  - [{}, {}]", first + a, first + (a + k) % n);
            }
        }
    }
    yaml
}

fn bridge_yaml(args: &Args, dir: &Path, sim: SocketAddr, gateway: SocketAddr) -> String {
    format!(
        "# Generated by examples/bridge_scale\n\
         database: {db}\n\
         qq:\n  protocol: {protocol}\n  server: http://{sim}\n  simulator: {{ enabled: false }}\n\
         irc:\n  gateway:\n    enabled: true\n    listen: {gateway}\n    max_clients: {max}\n\
         \x20   max_clients_per_ip: {max}\n\
         matrix: {{ enabled: false }}\n\
         logging: {{ filter: \"{filter}\" }}\n",
        db = dir.join("bridge.db").display(),
        protocol = args.protocol,
        max = args.sessions + 100,
        // A restart is followed by its `restored QQ login` lines.
        filter = if args.restart {
            "warn,qqbridge::core::bridge=info,qqbridge::qq::http11::login=info"
        } else {
            "warn"
        },
    )
}

// ------------------------------------------------------------ measuring

/// Readings of both processes at one moment.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    bridge_rss: u64,
    bridge_cpu: f64,
    sim_rss: u64,
    sim_cpu: f64,
    own_cpu: f64,
}

fn mark(bridge: u32, sim: u32) -> Mark {
    Mark {
        at: Instant::now(),
        bridge_rss: rss(bridge),
        bridge_cpu: cpu_seconds(bridge),
        sim_rss: rss(sim),
        sim_cpu: cpu_seconds(sim),
        own_cpu: cpu_seconds(std::process::id()),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Figures of a window between two marks.
fn window(a: &Mark, b: &Mark) -> Value {
    let s = (b.at - a.at).as_secs_f64().max(1e-9);
    json!({
        "seconds": s,
        "bridge_rss_mib": [mib(a.bridge_rss), mib(b.bridge_rss)],
        "bridge_cpu_pct": (b.bridge_cpu - a.bridge_cpu) / s * 100.0,
        "sim_rss_mib": [mib(a.sim_rss), mib(b.sim_rss)],
        "sim_cpu_pct": (b.sim_cpu - a.sim_cpu) / s * 100.0,
        "load_generator_cpu_pct": (b.own_cpu - a.own_cpu) / s * 100.0,
    })
}

/// Memory samples taken every few seconds while the test runs.
#[derive(Default)]
struct Samples {
    phase: Mutex<&'static str>,
    rows: Mutex<Vec<Value>>,
}

impl Samples {
    fn set_phase(&self, phase: &'static str) {
        if let Ok(mut p) = self.phase.lock() {
            *p = phase;
        }
    }

    fn start(self: &Arc<Self>, every: Duration, bridge: u32, sim: u32) {
        let samples = self.clone();
        let t0 = Instant::now();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut last = (t0, cpu_seconds(bridge));
            loop {
                tick.tick().await;
                let now = Instant::now();
                let cpu = cpu_seconds(bridge);
                let pct = (cpu - last.1) / (now - last.0).as_secs_f64().max(1e-9) * 100.0;
                last = (now, cpu);
                let phase = samples.phase.lock().map_or("?", |p| *p);
                let row = json!({
                    "t_s": (now - t0).as_secs(),
                    "phase": phase,
                    "bridge_rss_mib": mib(rss(bridge)),
                    "bridge_cpu_pct": pct,
                    "bridge_fds": processes::open_fds(bridge),
                    "sim_rss_mib": mib(rss(sim)),
                });
                if let Ok(mut rows) = samples.rows.lock() {
                    rows.push(row);
                }
            }
        });
    }
}

// ------------------------------------------------------------ phases

/// Connects and logs in every user, ramped; failures by reason.
async fn log_everybody_in(
    args: &Args,
    gateway: SocketAddr,
    ledger: &Arc<Ledger>,
) -> (Vec<IrcUser>, BTreeMap<String, u64>) {
    let permits = Arc::new(Semaphore::new(args.login_concurrency.max(1)));
    let gap = Duration::from_secs_f64(1.0 / args.login_rate.max(0.001));
    let mut tick = tokio::time::interval(gap);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = Vec::with_capacity(args.sessions as usize);
    for i in 0..args.sessions {
        tick.tick().await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let uin = args.first_uin + i;
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let user =
                irc_user::connect(gateway, uin, PASSWORD, ledger, Duration::from_secs(60)).await;
            drop(permit);
            user
        }));
    }
    let mut users = Vec::with_capacity(tasks.len());
    let mut failures = BTreeMap::new();
    for task in tasks {
        match task.await {
            Ok(Ok(user)) => users.push(user),
            Ok(Err(e)) => *failures.entry(format!("{e:#}")).or_default() += 1,
            Err(e) => *failures.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    (users, failures)
}

/// Sends the chat load for `duration`.
async fn chat_load(
    args: &Args,
    users: &[IrcUser],
    control: SocketAddr,
    ledger: &Arc<Ledger>,
    qq_rate: f64,
    irc_rate: f64,
    duration: Duration,
) {
    let n = users.len() as u64;
    if n < 2 || (qq_rate <= 0.0 && irc_rate <= 0.0) {
        tokio::time::sleep(duration).await;
        return;
    }
    // Users are indexed by account: user i is account first_uin + i when
    // every login succeeded; a failed one is simply never picked.
    let by_uin: std::collections::HashMap<u64, usize> =
        users.iter().enumerate().map(|(i, u)| (u.uin, i)).collect();
    let total = args.sessions;
    let mut rng = StdRng::seed_from_u64(9);
    let injects = Arc::new(Semaphore::new(64));
    let start = Instant::now();
    let (mut qq_sent, mut irc_sent) = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while start.elapsed() < duration {
        tick.tick().await;
        let elapsed = start.elapsed().as_secs_f64();
        while (qq_sent as f64) < qq_rate * elapsed {
            qq_sent += 1;
            let to = &users[rng.gen_range(0..users.len())];
            let from = args.first_uin
                + random_buddy(&mut rng, to.uin - args.first_uin, total, args.friends);
            let id = ledger.sending(Direction::QqToIrc, to.uin);
            let body = json!({"from": from, "to": to.uin, "text": message_text(id)});
            let (ledger, injects) = (ledger.clone(), injects.clone());
            tokio::spawn(async move {
                let _permit = injects.acquire().await;
                if let Err(e) = processes::control(control, "POST", "/inject", Some(&body)).await {
                    ledger.send_failed(id, format!("inject: {e}"));
                }
            });
        }
        while (irc_sent as f64) < irc_rate * elapsed {
            irc_sent += 1;
            let from = &users[rng.gen_range(0..users.len())];
            let to = args.first_uin
                + random_buddy(&mut rng, from.uin - args.first_uin, total, args.friends);
            if !by_uin.contains_key(&to) {
                continue;
            }
            let id = ledger.sending(Direction::IrcToQq, to);
            let line = format!("PRIVMSG {NICK_PREFIX}{to} :{}", message_text(id));
            if from.lines.try_send(line).is_err() {
                ledger.send_failed(id, "IRC client queue full or closed".to_owned());
            }
        }
    }
}

/// Waits until every message arrived or `limit` passed.
async fn drain(ledger: &Ledger, limit: Duration) -> f64 {
    let start = Instant::now();
    while ledger.outstanding() > 0 && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    start.elapsed().as_secs_f64()
}

// ------------------------------------------------------------ main

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.soak {
        args.idle = 0;
        if args.qq_to_irc_per_s <= 0.0 && args.irc_to_qq_per_s <= 0.0 {
            args.qq_to_irc_per_s = 10.0;
            args.irc_to_qq_per_s = 10.0;
        }
    }
    if args.sessions < 2 || args.friends < 2 || args.friends % 2 != 0 {
        bail!("--sessions must be at least 2 and --friends even and at least 2");
    }
    let open_files = processes::raise_open_file_limit();
    if open_files < args.sessions + 256 {
        bail!(
            "the open-file limit is {open_files}: too low for {} IRC clients",
            args.sessions
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&args, &report);
    }
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<Value> {
    let bin = processes::qqbridge_binary(args.bin.as_ref())?;
    let dir = tempfile::Builder::new().prefix("bridge-scale").tempdir()?;
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(&scenario, scenario_yaml(args))?;
    let (sim, sim_addr, control) =
        processes::start_simulator(&bin, &scenario, dir.path().join("sim.log")).await?;
    let gateway = processes::free_port()?;
    let config = dir.path().join("bridge.yaml");
    std::fs::write(&config, bridge_yaml(args, dir.path(), sim_addr, gateway))?;
    let bridge =
        processes::start_bridge(&bin, &config, gateway, dir.path().join("bridge.log")).await?;
    let (b, s) = (bridge.pid, sim.pid);
    let outcome = measure(args, b, s, gateway, control).await;
    let mut bridge_problems = bridge.log_problems();
    let mut restart = Value::Null;
    let bridge = match (&outcome, args.restart) {
        (Ok(report), true) => {
            let logins = report["sessions"].as_u64().unwrap_or(0);
            let (restarted, figures) =
                restart_bridge(args, bridge, &bin, &config, gateway, dir.path(), s, logins).await?;
            bridge_problems.extend(restarted.log_problems());
            restart = figures;
            restarted
        }
        _ => bridge,
    };
    let sim_problems = sim.log_problems();
    bridge.stop().await?;
    sim.stop().await?;
    if args.keep {
        eprintln!("kept {}", dir.keep().display());
    }
    let mut report = outcome?;
    report["restart"] = restart;
    report["bridge_log_problems"] = json!(bridge_problems);
    report["sim_log_problems"] = json!(sim_problems);
    Ok(report)
}

/// Stops the bridge as a service manager does (SIGTERM) and starts it
/// again on the same database: how long the stop took, how long until its
/// gateway listened again and until all `logins` stored logins were back
/// (its `restored QQ login` lines), how many HTTP QQ 1.1 sessions it
/// continued rather than logged in anew, and its memory and CPU meanwhile.
#[allow(clippy::too_many_arguments)]
async fn restart_bridge(
    args: &Args,
    bridge: processes::Process,
    bin: &Path,
    config: &Path,
    gateway: SocketAddr,
    dir: &Path,
    sim: u32,
    logins: u64,
) -> anyhow::Result<(processes::Process, Value)> {
    let stopping = Instant::now();
    bridge.stop().await?;
    let stop_s = stopping.elapsed().as_secs_f64();
    let log = dir.join("bridge-restarted.log");
    let starting = Instant::now();
    let sim_cpu = cpu_seconds(sim);
    let bridge = processes::start_bridge(bin, config, gateway, log.clone()).await?;
    let listening_s = starting.elapsed().as_secs_f64();
    let count = |needle: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(needle)
            .count() as u64
    };
    let deadline = starting + Duration::from_secs(args.restore_timeout);
    let restored = loop {
        let restored = count("restored QQ login");
        if restored >= logins || Instant::now() > deadline {
            break restored;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let restore_s = starting.elapsed().as_secs_f64();
    let figures = json!({
        "stop_s": stop_s,
        "listening_s": listening_s,
        "logins": logins,
        "restored": restored,
        "restore_s": restore_s,
        "continued_sessions": count("continued the session the server kept"),
        "bridge_cpu_s": cpu_seconds(bridge.pid),
        "sim_cpu_s": cpu_seconds(sim) - sim_cpu,
        "bridge_rss_mib": mib(rss(bridge.pid)),
    });
    Ok((bridge, figures))
}

async fn measure(
    args: &Args,
    bridge: u32,
    sim: u32,
    gateway: SocketAddr,
    control: SocketAddr,
) -> anyhow::Result<Value> {
    let samples = Arc::new(Samples::default());
    samples.set_phase("start");
    samples.start(Duration::from_secs(args.sample_every.max(1)), bridge, sim);
    let ledger = Arc::new(Ledger::default());
    // Let the bridge finish starting up before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = mark(bridge, sim);

    samples.set_phase("login");
    let (users, login_failures) = log_everybody_in(args, gateway, &ledger).await;
    let logged_in = mark(bridge, sim);
    let login_peak = peak_rss(bridge);
    if users.is_empty() {
        bail!("no user could log in: {login_failures:?}");
    }

    samples.set_phase("settle");
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    samples.set_phase("idle");
    let idle_start = mark(bridge, sim);
    tokio::time::sleep(Duration::from_secs(args.idle)).await;
    let idle_end = mark(bridge, sim);

    samples.set_phase("chat");
    let chat = Duration::from_secs(args.duration);
    let (qq_rate, irc_rate) = (args.qq_to_irc_per_s, args.irc_to_qq_per_s);
    let chatting = qq_rate > 0.0 || irc_rate > 0.0;
    let chat_start = mark(bridge, sim);
    if chatting {
        chat_load(args, &users, control, &ledger, qq_rate, irc_rate, chat).await;
    }
    let chat_end = mark(bridge, sim);
    samples.set_phase("drain");
    let drained_s = if chatting {
        drain(&ledger, Duration::from_secs(args.drain)).await
    } else {
        0.0
    };
    let end = mark(bridge, sim);
    let health = processes::control(control, "GET", "/health", None).await?;
    let sessions = users.len() as u64;
    let per_session_kib =
        |m: &Mark| (m.bridge_rss as f64 - before.bridge_rss as f64) / sessions as f64 / 1024.0;
    let rows = samples.rows.lock().map(|r| r.clone()).unwrap_or_default();
    let peak_sample = rows
        .iter()
        .filter(|r| r["phase"] == "chat" || r["phase"] == "drain")
        .filter_map(|r| r["bridge_rss_mib"].as_f64())
        .fold(0.0, f64::max);
    Ok(json!({
        "sessions_wanted": args.sessions,
        "sessions": sessions,
        "protocol": args.protocol,
        "friends": args.friends,
        "login_failures": login_failures,
        "login": window(&before, &logged_in),
        "bridge_peak_rss_mib_after_login": mib(login_peak),
        "idle": window(&idle_start, &idle_end),
        "idle_bridge_kib_per_session": per_session_kib(&idle_end),
        "bridge_rss_before_login_mib": mib(before.bridge_rss),
        "chat": if chatting { window(&chat_start, &chat_end) } else { Value::Null },
        "chat_rates": {"qq_to_irc_per_s": qq_rate, "irc_to_qq_per_s": irc_rate},
        "chat_bridge_kib_per_session": per_session_kib(&chat_end),
        "chat_peak_sampled_rss_mib": peak_sample,
        "drain_s": drained_s,
        "end": {"bridge_rss_mib": mib(end.bridge_rss), "bridge_peak_rss_mib": mib(peak_rss(bridge))},
        "messages": {
            "qq_to_irc": ledger.summary(Direction::QqToIrc),
            "irc_to_qq": ledger.summary(Direction::IrcToQq),
            "problems": ledger.problems(),
        },
        "sim_health": health,
        "samples": rows,
    }))
}

fn print_summary(args: &Args, r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "bridge_scale: {} of {} sessions logged in ({}), {} buddies each",
        r["sessions"], args.sessions, args.protocol, args.friends
    );
    if let Some(fails) = r["login_failures"].as_object().filter(|m| !m.is_empty()) {
        println!("  login failures: {fails:?}");
    }
    let show = |name: &str, w: &Value| {
        if w.is_null() {
            return;
        }
        println!(
            "  {name:<6} {:>6.0} s  bridge RSS {:>7.1} → {:>7.1} MiB, CPU {:>5.1} %  | sim RSS {:>6.1} → {:>6.1} MiB, CPU {:>5.1} %  | generator CPU {:>5.1} %",
            f(&w["seconds"]),
            f(&w["bridge_rss_mib"][0]),
            f(&w["bridge_rss_mib"][1]),
            f(&w["bridge_cpu_pct"]),
            f(&w["sim_rss_mib"][0]),
            f(&w["sim_rss_mib"][1]),
            f(&w["sim_cpu_pct"]),
            f(&w["load_generator_cpu_pct"]),
        );
    };
    show("login", &r["login"]);
    if args.idle > 0 {
        show("idle", &r["idle"]);
    }
    show("chat", &r["chat"]);
    println!(
        "  bridge: {:.1} KiB per session idle, {:.1} KiB under chat; peak RSS {:.1} MiB after login, {:.1} MiB at the end",
        f(&r["idle_bridge_kib_per_session"]),
        f(&r["chat_bridge_kib_per_session"]),
        f(&r["bridge_peak_rss_mib_after_login"]),
        f(&r["end"]["bridge_peak_rss_mib"]),
    );
    for dir in ["qq_to_irc", "irc_to_qq"] {
        let m = &r["messages"][dir];
        if m["sent"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        println!(
            "  {dir}: sent {} delivered {} lost {} duplicated {}; latency p50 {:.2} s p90 {:.2} s p99 {:.2} s max {:.2} s",
            m["sent"], m["delivered"], m["lost"], m["duplicated"],
            f(&m["latency_s"]["p50"]), f(&m["latency_s"]["p90"]),
            f(&m["latency_s"]["p99"]), f(&m["latency_s"]["max"]),
        );
    }
    println!("  problems: {}", r["messages"]["problems"]);
    let restart = &r["restart"];
    if !restart.is_null() {
        println!(
            "  restart (SIGTERM, same database): stopped in {:.2} s; gateway up after {:.2} s; \
             {} of {} logins restored after {:.1} s ({} HTTP QQ 1.1 sessions continued); \
             bridge CPU {:.1} s, simulator CPU {:.1} s meanwhile; bridge RSS then {:.1} MiB",
            f(&restart["stop_s"]),
            f(&restart["listening_s"]),
            restart["restored"],
            restart["logins"],
            f(&restart["restore_s"]),
            restart["continued_sessions"],
            f(&restart["bridge_cpu_s"]),
            f(&restart["sim_cpu_s"]),
            f(&restart["bridge_rss_mib"]),
        );
    }
    if args.soak {
        println!("  memory over time (t s: bridge RSS MiB, CPU %):");
        for row in r["samples"].as_array().into_iter().flatten() {
            println!(
                "    {:>5} {:<6} {:>7.1} MiB {:>5.1} %  fds {}",
                row["t_s"],
                row["phase"].as_str().unwrap_or("?"),
                f(&row["bridge_rss_mib"]),
                f(&row["bridge_cpu_pct"]),
                row["bridge_fds"]
            );
        }
    }
    for key in ["bridge_log_problems", "sim_log_problems"] {
        if let Some(p) = r[key].as_object().filter(|m| !m.is_empty()) {
            println!("  {key}:");
            for (line, count) in p.iter().take(10) {
                println!("    {count} × {line}");
            }
        }
    }
}
