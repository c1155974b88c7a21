//! Load test: thousands of HTTP QQ 1.1 client sessions against the QQ
//! simulator, measuring both processes (see docs/load-http11.md).
//!
//! ```text
//! cargo build --release            # the simulator binary, target/release/qqbridge
//! cargo run --release --example http11_load -- --sessions 10000 --duration 120
//! cargo run --release --example http11_load -- --sessions 10000 --messages-per-s 100
//! ```
//!
//! What it does:
//! 1. generates a scenario with `--sessions` accounts (one `account_ranges`
//!    entry) of `--friends` mutual buddies each (a ring: account i is a
//!    buddy of i±1 … i±friends/2), real time (`time_scale` 1) and the
//!    default `LI` of 300 s;
//! 2. starts `qqbridge sim` on it as a separate process (the binary next to
//!    this example's directory, built with the same profile);
//! 3. logs every account in with the real [`Http11Connector`], ramped
//!    (`--login-rate` per second, at most `--login-concurrency` at once),
//!    each session with its own event channel and consumer task as the
//!    bridge core has;
//! 4. lets the sessions settle into their idle poll schedule (`--settle`),
//!    then measures for `--duration` seconds while they poll, optionally
//!    with `--messages-per-s` chat messages spread over the sessions, each
//!    checked to arrive as a `QqEvent::Message` at its recipient;
//! 5. checks on the simulator's control API that every session is alive
//!    (`GET /accounts/<uin>`: a live HTTP QQ 1.1 session from the expected
//!    source address), logs everybody out and stops the simulator.
//!
//! Memory is VmRSS from `/proc/<pid>/status` (VmHWM for the peak), CPU is
//! utime+stime from `/proc/<pid>/stat`, as a percentage of one core over
//! the measured window; so are the machine's softirq time (where loopback
//! TCP is mostly processed, charged to no process) and its total busy time
//! (everything, other programs included: a busy machine shows there). The load generator's own figures are the client
//! side: what the bridge pays for its HTTP QQ 1.1 sessions. Requests are
//! counted through the client's own `qq_request` tracing spans, failed
//! exchanges through its "no reply (NULL)" debug events, so the client's
//! code runs unchanged.
//!
//! Every HTTP QQ 1.1 request is a new TCP connection. The simulator closes
//! first (it sends FIN right after the reply), so the TIME_WAIT sockets are
//! on the server side and the client's ephemeral ports are free again as
//! soon as each exchange ends. `--source-addrs K` spreads the sessions
//! over the loopback addresses 127.0.0.1 … 127.0.0.K anyway (each session
//! always uses the same one: the simulator identifies sessions by source
//! address and UIN), which multiplies the usable 4-tuples by K should a
//! client ever close first (e.g. on its read timeout).
//!
//! Bounded by design: every phase has a deadline, all traffic stays on
//! 127.0.0.0/8, and the simulator process is stopped at the end (also when
//! the test fails: it is killed when its handle is dropped).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, Semaphore};

use qqbridge::core::model::{ChatId, Presence, RichText, Uin};
use qqbridge::core::text::{render_plain, FaceStyle};
use qqbridge::qq::http11::Http11Connector;
use qqbridge::qq::EventReceiver;
use qqbridge::qq::{EndReason, LoginRequest, LoginStep, QqConnector, QqEvent, QqSession};
use qqbridge::secret::Secret;

#[path = "common/proc_stats.rs"]
mod proc_stats;
use proc_stats::{cpu_seconds, peak_rss, rss};

/// The event queue of one session, as the bridge core sizes it.
const SESSION_EVENT_QUEUE: usize = 1024;
const PASSWORD: &str = "load";
/// Marks the load test's chat messages: `lt-<id>`.
const MESSAGE_PREFIX: &str = "lt-";

#[derive(Parser, Debug, Clone)]
#[command(about = "HTTP QQ 1.1 load test: many client sessions against the QQ simulator")]
struct Args {
    /// Client sessions (accounts) to log in.
    #[arg(long, default_value_t = 1000)]
    sessions: u32,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Chat messages per second during the window (0: idle sessions).
    #[arg(long, default_value_t = 0.0)]
    messages_per_s: f64,
    /// Buddies of each account (a ring, so this should be even).
    #[arg(long, default_value_t = 20)]
    friends: u32,
    /// Logins started per second.
    #[arg(long, default_value_t = 200.0)]
    login_rate: f64,
    /// Logins in progress at once, at most.
    #[arg(long, default_value_t = 64)]
    login_concurrency: usize,
    /// Seconds between the last login and the window, so that the poll
    /// schedules reach their idle interval.
    #[arg(long, default_value_t = 40.0)]
    settle: f64,
    /// Seconds after the window for the last messages to arrive (a message
    /// not received by then is lost). Above the idle poll interval (20 s).
    #[arg(long, default_value_t = 30.0)]
    drain: f64,
    /// Spread the sessions over the source addresses 127.0.0.1 … 127.0.0.K
    /// (1: let the system choose, as a bridge does).
    #[arg(long, default_value_t = 1)]
    source_addrs: u8,
    /// First QQ number of the generated accounts.
    #[arg(long, default_value_t = 200_000)]
    first_uin: u64,
    /// The `qqbridge` binary [default: next to this example's directory].
    #[arg(long)]
    sim_bin: Option<PathBuf>,
    /// Print the results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------- /proc

/// Busy, softirq and total jiffies of the whole machine (all cores).
fn machine_jiffies() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    let softirq = values.get(6).copied().unwrap_or(0);
    (total.saturating_sub(idle), softirq, total)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The state of both processes and the machine at one moment.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    sim_rss: u64,
    sim_cpu: f64,
    own_rss: u64,
    own_cpu: f64,
    machine: (u64, u64, u64),
    requests: u64,
}

impl Mark {
    fn take(sim: u32, requests: u64) -> Mark {
        let own = std::process::id();
        Mark {
            at: Instant::now(),
            sim_rss: rss(sim),
            sim_cpu: cpu_seconds(sim),
            own_rss: rss(own),
            own_cpu: cpu_seconds(own),
            machine: machine_jiffies(),
            requests,
        }
    }
}

/// CPU and request figures between two marks.
#[derive(Debug, Clone, Copy)]
struct Span {
    seconds: f64,
    /// Percent of one core.
    sim_cpu: f64,
    own_cpu: f64,
    /// Percent of one core: every process and the kernel.
    machine_busy: f64,
    /// Percent of one core: softirq work (loopback TCP is mostly that),
    /// which is not counted in any process's utime+stime.
    softirq: f64,
    requests_per_s: f64,
}

fn between(a: &Mark, b: &Mark) -> Span {
    let seconds = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let busy = b.machine.0.saturating_sub(a.machine.0) as f64;
    let softirq = b.machine.1.saturating_sub(a.machine.1) as f64;
    let total = b.machine.2.saturating_sub(a.machine.2).max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Span {
        seconds,
        sim_cpu: 100.0 * (b.sim_cpu - a.sim_cpu) / seconds,
        own_cpu: 100.0 * (b.own_cpu - a.own_cpu) / seconds,
        machine_busy: 100.0 * cores * busy / total,
        softirq: 100.0 * cores * softirq / total,
        requests_per_s: b.requests.saturating_sub(a.requests) as f64 / seconds,
    }
}

fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

// ------------------------------------------------------ request counting

/// Counts the client's requests and failed exchanges through its tracing:
/// every request runs in a `qq_request` span (field `cmd`), every NULL is
/// a debug event with a `cause`, and trouble is logged at WARN or above.
/// Everything else is disabled at its call site, so it costs nothing.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    by_command: Mutex<HashMap<String, u64>>,
    /// "null: <cause>" and "warn: <message>", with how often.
    errors: Mutex<HashMap<String, u64>>,
    next_span: AtomicU64,
}

fn bump(map: &Mutex<HashMap<String, u64>>, key: String) {
    if let Ok(mut map) = map.lock() {
        *map.entry(key).or_default() += 1;
    }
}

fn snapshot(map: &Mutex<HashMap<String, u64>>) -> HashMap<String, u64> {
    map.lock().map(|m| m.clone()).unwrap_or_default()
}

struct Fields {
    wanted: &'static str,
    value: Option<String>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == self.wanted {
            self.value = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == self.wanted {
            let mut text = format!("{value:?}");
            text.truncate(80);
            self.value = Some(text);
        }
    }
}

fn field(record: impl FnOnce(&mut Fields), wanted: &'static str) -> String {
    let mut fields = Fields {
        wanted,
        value: None,
    };
    record(&mut fields);
    fields.value.unwrap_or_else(|| "?".to_owned())
}

struct Counter(Arc<Counts>);

impl Counter {
    fn wanted(metadata: &tracing::Metadata<'_>) -> bool {
        if !metadata.target().starts_with("qqbridge") {
            return false;
        }
        if metadata.is_span() {
            return metadata.name() == "qq_request";
        }
        *metadata.level() <= tracing::Level::WARN || metadata.fields().field("cause").is_some()
    }
}

impl tracing::Subscriber for Counter {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Counter::wanted(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        Counter::wanted(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if attrs.metadata().name() == "qq_request" {
            self.0.requests.fetch_add(1, Ordering::Relaxed);
            bump(&self.0.by_command, field(|f| attrs.record(f), "cmd"));
        }
        tracing::span::Id::from_u64(self.0.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let key = if event.metadata().fields().field("cause").is_some() {
            format!("null: {}", field(|f| event.record(f), "cause"))
        } else {
            format!(
                "{}: {}",
                event.metadata().level().as_str().to_ascii_lowercase(),
                field(|f| event.record(f), "message")
            )
        };
        bump(&self.0.errors, key);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// ------------------------------------------------------------ simulator

/// The scenario: one account range, a ring of mutual friendships.
fn scenario_yaml(args: &Args) -> String {
    let n = u64::from(args.sessions);
    let first = args.first_uin;
    let mut yaml = format!(
        "# Generated by examples/http11_load.rs\ntime_scale: 1.0\n\
         quirks: {{ session_idle_timeout_s: 300, heartbeat_interval_s: 60 }}\n\
         account_ranges:\n  - {{ first_uin: {first}, count: {n}, password: {PASSWORD}, nick_prefix: \"load\" }}\n\
         friendships:\n"
    );
    for (a, b) in ring_pairs(n, u64::from(args.friends)) {
        let _ = writeln!(yaml, "  - [{}, {}]", first + a, first + b);
    }
    yaml
}

/// Pairs of account indexes: i with i+1 … i+half (mod n), or everybody
/// with everybody when there are too few accounts for the ring.
fn ring_pairs(n: u64, friends: u64) -> Vec<(u64, u64)> {
    let half = friends / 2;
    if n <= friends {
        return (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect();
    }
    (0..n)
        .flat_map(|a| (1..=half).map(move |k| (a, (a + k) % n)))
        .collect()
}

/// The `qqbridge` binary built with this example's profile.
fn simulator_binary(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.sim_bin {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("locating this program")?;
    // target/<profile>/examples/http11_load -> target/<profile>/qqbridge
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("qqbridge"))
        .ok_or_else(|| anyhow!("cannot tell the target directory from {}", exe.display()))?;
    if !bin.is_file() {
        bail!(
            "the simulator binary {} is missing: run `cargo build --release` (or without \
             --release for a debug run) first, or pass --sim-bin",
            bin.display()
        );
    }
    Ok(bin)
}

/// The simulator process; killed when dropped.
struct Simulator {
    child: tokio::process::Child,
    pid: u32,
    protocol: SocketAddr,
    control: SocketAddr,
    log: PathBuf,
}

impl Simulator {
    async fn start(bin: &Path, scenario: &Path, log: PathBuf) -> anyhow::Result<Simulator> {
        let stderr = std::fs::File::create(&log).context("creating the simulator log")?;
        let mut child = tokio::process::Command::new(bin)
            .args(["sim", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
            .arg("--scenario")
            .arg(scenario)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the simulator exited at once"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no simulator stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut protocol, mut control) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while protocol.is_none() || control.is_none() {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .context("the simulator did not start within 120 s")??
                .ok_or_else(|| anyhow!("the simulator exited; see {}", log.display()))?;
            if let Some(addr) = line.split(" on ").nth(1) {
                let addr = addr.trim().trim_start_matches("http://");
                if line.contains("control API") {
                    control = Some(addr.parse()?);
                } else if line.contains("serving HTTP QQ 1.1") {
                    protocol = Some(addr.parse()?);
                }
            }
        }
        // Keep reading stdout so the simulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Simulator {
            child,
            pid,
            protocol: protocol.ok_or_else(|| anyhow!("no protocol address"))?,
            control: control.ok_or_else(|| anyhow!("no control address"))?,
            log,
        })
    }

    /// SIGTERM, then SIGKILL if it has not exited after 10 s.
    async fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill only sends a signal, to the process this program started.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }

    /// Lines of its log at WARN or ERROR level, by message.
    fn log_problems(&self) -> HashMap<String, u64> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut problems = HashMap::new();
        for line in text.lines() {
            if line.contains(" WARN ") || line.contains(" ERROR ") {
                // Strip the timestamp; keep level, target and message.
                let key: String = line
                    .split_once(' ')
                    .map_or(line, |(_, rest)| rest)
                    .chars()
                    .take(100)
                    .collect();
                *problems.entry(key).or_default() += 1;
            }
        }
        problems
    }
}

/// `GET path` on the control API, as JSON.
async fn control_get(addr: SocketAddr, path: &str) -> anyhow::Result<Value> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await??;
    let text = String::from_utf8_lossy(&reply);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or_else(|| anyhow!("no body in the control API's reply to {path}"))?;
    Ok(serde_json::from_str(body)?)
}

// -------------------------------------------------------------- clients

/// What the sessions' event consumers and the chat load share.
#[derive(Default)]
struct Shared {
    /// Set before the final logout: `SessionEnded` is expected from then on.
    logging_out: AtomicBool,
    ended_early: Mutex<HashMap<String, u64>>,
    reconnecting: Mutex<HashMap<String, u64>>,
    reconnected: AtomicU64,
    presence_events: AtomicU64,
    other_events: AtomicU64,
    chat: Mutex<ChatState>,
    received: AtomicU64,
    unexpected_messages: AtomicU64,
    latencies_ms: Mutex<Vec<f64>>,
    send_errors: Mutex<HashMap<String, u64>>,
    sent_ok: AtomicU64,
}

/// Chat messages not received yet, by id.
#[derive(Default)]
struct ChatState {
    /// When each send was started (a receipt may come before the sender
    /// learns of its RES=0).
    open: HashMap<u64, Instant>,
    /// Those whose send succeeded: still here at the end means lost.
    accepted: std::collections::HashSet<u64>,
}

fn error_kind(error: &impl std::fmt::Debug) -> String {
    let text = format!("{error:?}");
    let kind: String = text.chars().take_while(|c| c.is_alphanumeric()).collect();
    if kind.is_empty() {
        text
    } else {
        kind
    }
}

/// The bridge core's part of a session: drain its events.
async fn consume_events(mut events: EventReceiver, shared: Arc<Shared>) {
    while let Some(event) = events.recv().await {
        match *event {
            QqEvent::Message { text, .. } => on_message(&shared, &text),
            QqEvent::Presence { .. } => {
                shared.presence_events.fetch_add(1, Ordering::Relaxed);
            }
            QqEvent::Reconnecting { reason } => bump(&shared.reconnecting, reason),
            QqEvent::Reconnected => {
                shared.reconnected.fetch_add(1, Ordering::Relaxed);
            }
            QqEvent::SessionEnded(reason) => {
                if !(shared.logging_out.load(Ordering::Relaxed) && reason == EndReason::LoggedOut) {
                    bump(&shared.ended_early, format!("{reason:?}"));
                }
            }
            _ => {
                shared.other_events.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn on_message(shared: &Shared, text: &RichText) {
    let text = render_plain(text, FaceStyle::Name);
    let id = text
        .trim()
        .strip_prefix(MESSAGE_PREFIX)
        .and_then(|id| id.parse::<u64>().ok());
    let started = id.and_then(|id| {
        let mut chat = shared.chat.lock().ok()?;
        chat.accepted.remove(&id);
        chat.open.remove(&id)
    });
    match started {
        Some(started) => {
            shared.received.fetch_add(1, Ordering::Relaxed);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if let Ok(mut latencies) = shared.latencies_ms.lock() {
                latencies.push(ms);
            }
        }
        None => {
            shared.unexpected_messages.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct LoggedIn {
    index: u64,
    session: Arc<dyn QqSession>,
}

struct LoginResults {
    sessions: Vec<LoggedIn>,
    errors: HashMap<String, u64>,
    latencies_ms: Vec<f64>,
}

async fn log_everybody_in(
    args: &Args,
    connectors: &[Arc<Http11Connector>],
    shared: &Arc<Shared>,
) -> LoginResults {
    let slots = Arc::new(Semaphore::new(args.login_concurrency.max(1)));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.login_rate.max(0.1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(args.sessions as usize);
    let started = Instant::now();
    let mut last_report = Instant::now();
    for index in 0..u64::from(args.sessions) {
        ticker.tick().await;
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let connector = Arc::clone(&connectors[(index as usize) % connectors.len()]);
        let shared = Arc::clone(shared);
        let uin = Uin(args.first_uin + index);
        tasks.push(tokio::spawn(async move {
            let (tx, rx) = mpsc::channel(SESSION_EVENT_QUEUE);
            tokio::spawn(consume_events(rx, shared));
            let request = LoginRequest {
                uin,
                password: Secret::new(PASSWORD),
                presence: Presence::Online,
                resume: false,
            };
            let begun = Instant::now();
            let outcome = connector.login(request, tx).await;
            let ms = begun.elapsed().as_secs_f64() * 1000.0;
            drop(permit);
            match outcome {
                Ok(LoginStep::Done(session)) => Ok((LoggedIn { index, session }, ms)),
                Ok(LoginStep::NeedCaptcha { .. }) => Err("NeedCaptcha".to_owned()),
                Err(error) => Err(error_kind(&error)),
            }
        }));
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!(
                "  login: {} of {} started after {:.0} s",
                index + 1,
                args.sessions,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let mut results = LoginResults {
        sessions: Vec::with_capacity(tasks.len()),
        errors: HashMap::new(),
        latencies_ms: Vec::with_capacity(tasks.len()),
    };
    for task in tasks {
        match task.await {
            Ok(Ok((logged_in, ms))) => {
                results.sessions.push(logged_in);
                results.latencies_ms.push(ms);
            }
            Ok(Err(kind)) => *results.errors.entry(kind).or_default() += 1,
            Err(join) => *results.errors.entry(format!("task: {join}")).or_default() += 1,
        }
    }
    results
}

/// Sends `rate` messages per second until `until`, each from a random
/// session to a random one of its ring buddies that is logged in (random,
/// so that a recipient is not by construction the next sender, whose own
/// send would make it poll at once).
async fn chat_load(
    args: &Args,
    sessions: &[LoggedIn],
    logged_in: &std::collections::HashSet<u64>,
    shared: &Arc<Shared>,
    until: Instant,
) -> u64 {
    let n = u64::from(args.sessions);
    let half = (u64::from(args.friends) / 2).max(1);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(
        1.0 / args.messages_per_s.max(0.001),
    ));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rng = StdRng::from_entropy();
    let mut sent = 0u64;
    while Instant::now() < until && !sessions.is_empty() {
        ticker.tick().await;
        let from = &sessions[rng.gen_range(0..sessions.len())];
        let offset = rng.gen_range(1..=half);
        let to = if rng.gen_bool(0.5) {
            (from.index + offset) % n
        } else {
            (from.index + n - offset % n) % n
        };
        if to == from.index || !logged_in.contains(&to) {
            continue;
        }
        let id = sent;
        sent += 1;
        let chat = ChatId::Buddy(Uin(args.first_uin + to));
        let session = Arc::clone(&from.session);
        let shared = Arc::clone(shared);
        let begun = Instant::now();
        if let Ok(mut state) = shared.chat.lock() {
            state.open.insert(id, begun);
        }
        tokio::spawn(async move {
            let text = RichText::plain(format!("{MESSAGE_PREFIX}{id}"));
            let outcome = session.send(&chat, &text).await;
            let Ok(mut state) = shared.chat.lock() else {
                return;
            };
            match outcome {
                Ok(()) => {
                    shared.sent_ok.fetch_add(1, Ordering::Relaxed);
                    if state.open.contains_key(&id) {
                        state.accepted.insert(id);
                    }
                }
                Err(error) => {
                    state.open.remove(&id);
                    bump(&shared.send_errors, error_kind(&error));
                }
            }
        });
    }
    sent
}

/// Asks the control API about every logged-in account: alive means a live
/// HTTP QQ 1.1 session from the session's source address.
async fn count_alive(
    control: SocketAddr,
    sessions: &[LoggedIn],
    args: &Args,
    sources: &[Option<IpAddr>],
) -> (u64, HashMap<String, u64>) {
    let slots = Arc::new(Semaphore::new(16));
    let mut checks = Vec::with_capacity(sessions.len());
    for logged_in in sessions {
        let uin = args.first_uin + logged_in.index;
        let expected_ip = sources[(logged_in.index as usize) % sources.len()]
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .to_string();
        let slots = Arc::clone(&slots);
        checks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let account = control_get(control, &format!("/accounts/{uin}")).await;
            match account {
                Ok(account) => {
                    let session = &account["session"];
                    if session.is_null() {
                        Err("no session".to_owned())
                    } else if session["protocol"] != "http11" {
                        Err(format!("session over {}", session["protocol"]))
                    } else if session["ip"] != expected_ip.as_str() {
                        Err(format!("session from {}", session["ip"]))
                    } else {
                        Ok(())
                    }
                }
                Err(error) => Err(format!("control API: {error}")),
            }
        }));
    }
    let mut alive = 0;
    let mut problems = HashMap::new();
    for check in checks {
        match check.await {
            Ok(Ok(())) => alive += 1,
            Ok(Err(problem)) => *problems.entry(problem).or_default() += 1,
            Err(join) => *problems.entry(join.to_string()).or_default() += 1,
        }
    }
    (alive, problems)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(|a, b| a.total_cmp(b));
    values
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn kib_per(bytes_after: u64, bytes_before: u64, sessions: u64) -> f64 {
    (bytes_after as f64 - bytes_before as f64) / 1024.0 / sessions.max(1) as f64
}

// ------------------------------------------------------------------ main

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.sessions == 0 || args.duration <= 0.0 || args.login_rate <= 0.0 {
        bail!("--sessions, --duration and --login-rate must be positive");
    }
    if args.source_addrs == 0 || args.source_addrs > 254 {
        bail!("--source-addrs must be 1 to 254");
    }
    let counts = Arc::new(Counts::default());
    tracing::subscriber::set_global_default(Counter(Arc::clone(&counts)))
        .context("installing the request counter")?;
    let open_files = raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(args.clone(), counts, open_files))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

async fn run(args: Args, counts: Arc<Counts>, open_files: u64) -> anyhow::Result<Value> {
    let bin = simulator_binary(&args)?;
    let dir = tempfile::tempdir()?;
    let scenario = dir.path().join("load-scenario.yaml");
    std::fs::write(&scenario, scenario_yaml(&args))?;
    let load_at_start = load_average();

    eprintln!(
        "starting {} with {} accounts of {} buddies",
        bin.display(),
        args.sessions,
        args.friends
    );
    let sim = Simulator::start(&bin, &scenario, dir.path().join("sim.log")).await?;
    let health = control_get(sim.control, "/health").await?;
    eprintln!(
        "simulator pid {} on {} (control {}): {} accounts",
        sim.pid, sim.protocol, sim.control, health["accounts"]
    );
    let url = format!("http://{}", sim.protocol);
    let sources: Vec<Option<IpAddr>> = if args.source_addrs == 1 {
        vec![None]
    } else {
        (1..=args.source_addrs)
            .map(|last| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))))
            .collect()
    };
    let connectors = sources
        .iter()
        .map(|source| {
            let connector = Http11Connector::new(&url)?;
            Ok(Arc::new(match source {
                Some(ip) => connector.with_local_addr(*ip),
                None => connector,
            }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shared = Arc::new(Shared::default());
    let requests = || counts.requests.load(Ordering::Relaxed);

    // Login.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = Mark::take(sim.pid, requests());
    eprintln!(
        "logging in {} sessions at {}/s ({} at once)",
        args.sessions, args.login_rate, args.login_concurrency
    );
    let logins = log_everybody_in(&args, &connectors, &shared).await;
    let after_login = Mark::take(sim.pid, requests());
    let login_span = between(&before, &after_login);
    let logged_in = logins.sessions.len() as u64;
    eprintln!(
        "{} logged in, {} failed, in {:.1} s; settling for {} s",
        logged_in,
        args.sessions as u64 - logged_in,
        login_span.seconds,
        args.settle
    );

    // Settle, then the measured window.
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let window_start = Mark::take(sim.pid, requests());
    let window_end_at = Instant::now() + Duration::from_secs_f64(args.duration);
    let sampler = {
        let sim_pid = sim.pid;
        tokio::spawn(async move {
            let (mut sim_peak, mut own_peak) = (0u64, 0u64);
            while Instant::now() < window_end_at {
                sim_peak = sim_peak.max(rss(sim_pid));
                own_peak = own_peak.max(rss(std::process::id()));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            (sim_peak, own_peak)
        })
    };
    eprintln!(
        "measuring for {} s{}",
        args.duration,
        if args.messages_per_s > 0.0 {
            format!(" with {} messages/s", args.messages_per_s)
        } else {
            " (idle)".to_owned()
        }
    );
    let index_set: std::collections::HashSet<u64> =
        logins.sessions.iter().map(|s| s.index).collect();
    let messages_sent = if args.messages_per_s > 0.0 {
        chat_load(&args, &logins.sessions, &index_set, &shared, window_end_at).await
    } else {
        0
    };
    tokio::time::sleep(window_end_at.saturating_duration_since(Instant::now())).await;
    let window_end = Mark::take(sim.pid, requests());
    let window = between(&window_start, &window_end);
    let (sim_window_peak, own_window_peak) = sampler.await.unwrap_or((0, 0));
    let health_end = control_get(sim.control, "/health").await?;

    // Let the last messages arrive.
    if messages_sent > 0 {
        let drain_until = Instant::now() + Duration::from_secs_f64(args.drain);
        while Instant::now() < drain_until {
            let open = shared.chat.lock().map(|c| c.open.len()).unwrap_or(0);
            if open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let (alive, dead_reasons) = count_alive(sim.control, &logins.sessions, &args, &sources).await;
    let client_alive =
        logged_in.saturating_sub(snapshot(&shared.ended_early).values().sum::<u64>());
    eprintln!("{alive} of {logged_in} sessions alive on the simulator; logging out");

    // Logout.
    shared.logging_out.store(true, Ordering::Relaxed);
    let logout_begun = Instant::now();
    let slots = Arc::new(Semaphore::new(256));
    let mut logouts = Vec::with_capacity(logins.sessions.len());
    for logged_in in &logins.sessions {
        let session = Arc::clone(&logged_in.session);
        let slots = Arc::clone(&slots);
        logouts.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            session.logout().await
        }));
    }
    let mut logout_errors: HashMap<String, u64> = HashMap::new();
    for logout in logouts {
        match logout.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => *logout_errors.entry(error_kind(&error)).or_default() += 1,
            Err(join) => *logout_errors.entry(join.to_string()).or_default() += 1,
        }
    }
    let logout_s = logout_begun.elapsed().as_secs_f64();
    let health_after_logout = control_get(sim.control, "/health").await?;
    let sim_hwm = peak_rss(sim.pid);
    let own_hwm = peak_rss(std::process::id());
    let sim_problems = sim.log_problems();
    drop(logins.sessions);
    sim.stop().await?;

    let latencies = sorted(std::mem::take(
        &mut *shared
            .latencies_ms
            .lock()
            .map_err(|_| anyhow!("poisoned"))?,
    ));
    let login_latencies = sorted(logins.latencies_ms);
    // Accepted by the server but never received; sends that never
    // finished are "unresolved".
    let (lost, unresolved) = shared
        .chat
        .lock()
        .map(|c| {
            (
                c.accepted.len() as u64,
                (c.open.len() - c.accepted.len()) as u64,
            )
        })
        .unwrap_or((0, 0));
    let n = logged_in.max(1);
    let report = json!({
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "load_average_at_start": load_at_start,
            "load_average_at_end": load_average(),
            "open_file_limit": open_files,
        },
        "config": {
            "sessions": args.sessions,
            "friends": args.friends,
            "duration_s": args.duration,
            "settle_s": args.settle,
            "messages_per_s": args.messages_per_s,
            "login_rate": args.login_rate,
            "login_concurrency": args.login_concurrency,
            "source_addrs": args.source_addrs,
        },
        "login": {
            "logged_in": logged_in,
            "errors": logins.errors,
            "seconds": login_span.seconds,
            "latency_ms": {
                "p50": percentile(&login_latencies, 50.0),
                "p90": percentile(&login_latencies, 90.0),
                "p99": percentile(&login_latencies, 99.0),
            },
            "requests_per_s": login_span.requests_per_s,
            "sim_cpu_pct": login_span.sim_cpu,
            "client_cpu_pct": login_span.own_cpu,
            "machine_busy_pct": login_span.machine_busy,
            "softirq_pct": login_span.softirq,
        },
        "window": {
            "seconds": window.seconds,
            "requests": window_end.requests - window_start.requests,
            "requests_per_s": window.requests_per_s,
            "sim_cpu_pct": window.sim_cpu,
            "client_cpu_pct": window.own_cpu,
            "machine_busy_pct": window.machine_busy,
            "softirq_pct": window.softirq,
            "sim_sessions_at_end": health_end["sessions"],
        },
        "alive": {
            "simulator": alive,
            "client": client_alive,
            "dead_reasons": dead_reasons,
            "ended_early": snapshot(&shared.ended_early),
        },
        "sim_rss": {
            "before_login_mib": mib(before.sim_rss),
            "after_login_mib": mib(after_login.sim_rss),
            "window_end_mib": mib(window_end.sim_rss),
            "window_peak_mib": mib(sim_window_peak),
            "peak_hwm_mib": mib(sim_hwm),
            "per_session_kib": kib_per(window_end.sim_rss, before.sim_rss, n),
        },
        "client_rss": {
            "before_login_mib": mib(before.own_rss),
            "after_login_mib": mib(after_login.own_rss),
            "window_end_mib": mib(window_end.own_rss),
            "window_peak_mib": mib(own_window_peak),
            "peak_hwm_mib": mib(own_hwm),
            "per_session_kib": kib_per(window_end.own_rss, before.own_rss, n),
        },
        "requests_by_command": snapshot(&counts.by_command),
        "client_errors": snapshot(&counts.errors),
        "client_events": {
            "presence": shared.presence_events.load(Ordering::Relaxed),
            "reconnecting": snapshot(&shared.reconnecting),
            "reconnected": shared.reconnected.load(Ordering::Relaxed),
            "other": shared.other_events.load(Ordering::Relaxed),
        },
        "sim_log_problems": sim_problems,
        "chat": {
            "sent": messages_sent,
            "accepted": shared.sent_ok.load(Ordering::Relaxed),
            "delivered": shared.received.load(Ordering::Relaxed),
            "lost": lost,
            "unresolved": unresolved,
            "send_errors": snapshot(&shared.send_errors),
            "unexpected": shared.unexpected_messages.load(Ordering::Relaxed),
            "latency_ms": {
                "p50": percentile(&latencies, 50.0),
                "p90": percentile(&latencies, 90.0),
                "p99": percentile(&latencies, 99.0),
                "max": latencies.last().copied().unwrap_or(f64::NAN),
            },
        },
        "logout": {
            "seconds": logout_s,
            "errors": logout_errors,
            "sim_sessions_after": health_after_logout["sessions"],
        },
    });
    Ok(report)
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let map = |v: &Value| {
        let entries: Vec<String> = v
            .as_object()
            .map(|o| o.iter().map(|(k, v)| format!("{k} ×{v}")).collect())
            .unwrap_or_default();
        if entries.is_empty() {
            "none".to_owned()
        } else {
            entries.join("; ")
        }
    };
    let c = &r["config"];
    println!(
        "HTTP QQ 1.1 load: {} sessions × {} buddies, {} s window{}, {} source address(es)",
        c["sessions"],
        c["friends"],
        c["duration_s"],
        if f(&c["messages_per_s"]) > 0.0 {
            format!(", {} messages/s", c["messages_per_s"])
        } else {
            ", idle".to_owned()
        },
        c["source_addrs"]
    );
    let l = &r["login"];
    let w = &r["window"];
    let a = &r["alive"];
    let s = &r["sim_rss"];
    let cl = &r["client_rss"];
    let rows = [
        (
            "logged in / alive at end (sim, client)".to_owned(),
            format!("{} / {}, {}", l["logged_in"], a["simulator"], a["client"]),
        ),
        (
            "login: time, p50/p99 latency".to_owned(),
            format!(
                "{:.1} s, {:.0}/{:.0} ms, errors: {}",
                f(&l["seconds"]),
                f(&l["latency_ms"]["p50"]),
                f(&l["latency_ms"]["p99"]),
                map(&l["errors"])
            ),
        ),
        (
            "login: CPU sim / client / softirq / machine".to_owned(),
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} %  ({:.0} req/s)",
                f(&l["sim_cpu_pct"]),
                f(&l["client_cpu_pct"]),
                f(&l["softirq_pct"]),
                f(&l["machine_busy_pct"]),
                f(&l["requests_per_s"])
            ),
        ),
        (
            "window: requests/s".to_owned(),
            format!(
                "{:.0} ({} requests)",
                f(&w["requests_per_s"]),
                w["requests"]
            ),
        ),
        (
            "window: sim CPU (% of one core)".to_owned(),
            format!("{:.1} %", f(&w["sim_cpu_pct"])),
        ),
        (
            "window: client CPU (% of one core)".to_owned(),
            format!("{:.1} %", f(&w["client_cpu_pct"])),
        ),
        (
            "window: softirq / whole machine busy".to_owned(),
            format!(
                "{:.1} % / {:.1} %",
                f(&w["softirq_pct"]),
                f(&w["machine_busy_pct"])
            ),
        ),
        (
            "sim RSS: before login → window end (peak)".to_owned(),
            format!(
                "{:.1} → {:.1} MiB ({:.1} MiB)",
                f(&s["before_login_mib"]),
                f(&s["window_end_mib"]),
                f(&s["peak_hwm_mib"])
            ),
        ),
        (
            "sim RSS per session".to_owned(),
            format!("{:.1} KiB", f(&s["per_session_kib"])),
        ),
        (
            "client RSS: before login → window end (peak)".to_owned(),
            format!(
                "{:.1} → {:.1} MiB ({:.1} MiB)",
                f(&cl["before_login_mib"]),
                f(&cl["window_end_mib"]),
                f(&cl["peak_hwm_mib"])
            ),
        ),
        (
            "client RSS per session".to_owned(),
            format!("{:.1} KiB", f(&cl["per_session_kib"])),
        ),
        ("client errors".to_owned(), map(&r["client_errors"])),
        (
            "client events".to_owned(),
            format!(
                "{} presence, reconnecting: {}, ended early: {}",
                r["client_events"]["presence"],
                map(&r["client_events"]["reconnecting"]),
                map(&a["ended_early"])
            ),
        ),
        ("sim log warnings".to_owned(), map(&r["sim_log_problems"])),
    ];
    for (name, value) in rows {
        println!("  {name:<46} {value}");
    }
    let chat = &r["chat"];
    if chat["sent"].as_u64().unwrap_or(0) > 0 {
        println!(
            "  {:<46} {} sent, {} accepted, {} delivered, {} lost, send errors: {}",
            "chat",
            chat["sent"],
            chat["accepted"],
            chat["delivered"],
            chat["lost"],
            map(&chat["send_errors"])
        );
        println!(
            "  {:<46} p50 {:.0} / p90 {:.0} / p99 {:.0} / max {:.0} ms",
            "chat latency (send → Message event)",
            f(&chat["latency_ms"]["p50"]),
            f(&chat["latency_ms"]["p90"]),
            f(&chat["latency_ms"]["p99"]),
            f(&chat["latency_ms"]["max"])
        );
    }
    println!(
        "  {:<46} {:.1} s, errors: {}, sim sessions after: {}",
        "logout",
        f(&r["logout"]["seconds"]),
        map(&r["logout"]["errors"]),
        r["logout"]["sim_sessions_after"]
    );
    println!(
        "  {:<46} {} → {}",
        "load average (start → end)",
        r["machine"]["load_average_at_start"],
        r["machine"]["load_average_at_end"]
    );
}
