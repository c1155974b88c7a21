//! A real ngIRCd server for integration tests.
//!
//! ```ignore
//! let irc = Ngircd::start(NgircdOptions::without_flood_control()).await?;
//! let mut alice = IrcClient::connect_registered(&irc, "alice").await?;
//! alice.send("JOIN #qq").await?;
//! alice.expect(" 366 alice #qq ").await?;
//! ```
//!
//! Each instance listens on its own loopback port with a config in its own
//! temp dir. ngIRCd won't run as root: when the tests run as root it is
//! started as `nobody` outright, so the temp dir is made 0755 and its files
//! 0644. The server comes from Debian's `ngircd` package
//! (`scripts/install-test-deps`), or the binary named by `QQBRIDGE_NGIRCD`.
//!
//! The generated config: no PAM, no ident, no DNS, no connection limits
//! (`MaxConnectionsIP = 0`, for hundreds of puppets from 127.0.0.1), no
//! channel limit per user, 31-character nicks, an operator, and flood
//! control either ngIRCd's default (a client beyond ~3 commands/s is slowed
//! down) or off (`MaxPenaltyTime = 0`, for load tests).
//!
//! ngIRCd listens with a short accept backlog (about 10): more simultaneous
//! connection attempts than that wait for the kernel's SYN retry (1 s, then
//! 3 s...). Connect puppets a few at a time (e.g. 8 in flight), not all at once.
//!
//! Its files stay after a panicking test (or with `QQBRIDGE_KEEP_SERVER_DIRS`
//! set); the test's output then says where.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::process::{
    deadline_in, file_len, free_port, keep_dir_if_failing, log_tail, random_token, read_since,
    ServerProcess,
};

/// How ngIRCd is configured; `Default` has flood control on.
#[derive(Clone, Debug)]
pub struct NgircdOptions {
    /// The server's name (must contain a dot).
    pub server_name: String,
    /// ngIRCd's default flood control when true; `MaxPenaltyTime = 0`
    /// (no penalties at all) when false.
    pub flood_control: bool,
    /// A server password (`PASS`) clients must give.
    pub password: Option<String>,
    /// An IRC operator `(name, password)` for `OPER`.
    pub oper: Option<(String, String)>,
    pub max_nick_length: u32,
    /// Text appended to the generated config (whole sections, e.g.
    /// `"[Channel]\n Name = #pre\n"`).
    pub extra_config: String,
    /// How long a start (or restart) may take before it counts as failed.
    pub start_timeout: Duration,
}

impl Default for NgircdOptions {
    fn default() -> Self {
        NgircdOptions {
            server_name: "irc.qqbridge.test".into(),
            flood_control: true,
            password: None,
            oper: Some(("oper".into(), "operpass".into())),
            max_nick_length: 31,
            extra_config: String::new(),
            start_timeout: Duration::from_secs(30),
        }
    }
}

impl NgircdOptions {
    /// The load-test variant: no flood penalties (`MaxPenaltyTime = 0`).
    pub fn without_flood_control() -> Self {
        NgircdOptions {
            flood_control: false,
            ..Default::default()
        }
    }
}

/// A running ngIRCd; killed when dropped.
pub struct Ngircd {
    dir: tempfile::TempDir,
    port: u16,
    binary: PathBuf,
    options: NgircdOptions,
    process: Option<ServerProcess>,
    port_race: bool,
    /// In the MOTD: how the start-up check knows it reached this server.
    token: String,
}

impl Ngircd {
    /// Writes a config, starts ngIRCd in the foreground on a free loopback
    /// port and waits until a client can register on it.
    pub async fn start(options: NgircdOptions) -> Result<Ngircd> {
        let binary = ngircd_binary()?;
        // ngIRCd runs as nobody when we are root: it must reach its config,
        // which a private $TMPDIR would hide.
        let parent = if running_as_root() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("qqbridge-ngircd-")
            .tempdir_in(parent)
            .context("create ngircd temp dir")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let include_dir = dir.path().join("conf.d");
        std::fs::create_dir(&include_dir)?;
        std::fs::set_permissions(&include_dir, std::fs::Permissions::from_mode(0o755))?;
        let mut irc = Ngircd {
            dir,
            port: 0,
            binary,
            options,
            process: None,
            port_race: false,
            token: random_token(12),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            irc.port = free_port();
            irc.write_config()?;
            match irc.launch().await {
                Ok(()) => return Ok(irc),
                Err(e) if attempt < 3 && irc.port_race => {
                    eprintln!("ngircd could not bind port {}, retrying: {e:#}", irc.port);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn server_name(&self) -> &str {
        &self.options.server_name
    }

    pub fn password(&self) -> Option<&str> {
        self.options.password.as_deref()
    }

    /// `(name, password)` of the configured IRC operator.
    pub fn oper(&self) -> Option<(&str, &str)> {
        self.options
            .oper
            .as_ref()
            .map(|(n, p)| (n.as_str(), p.as_str()))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("ngircd.conf")
    }

    /// ngIRCd's console output (its log, with `--nodaemon`).
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("ngircd.log")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- {}:\n{}",
            self.log_path().display(),
            log_tail(&self.log_path(), lines)
        )
    }

    /// The server's process id while it runs, e.g. to read its CPU time
    /// from `/proc` in a benchmark.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ServerProcess::pid)
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(p) => p.exited().is_none(),
            None => false,
        }
    }

    /// Stops ngIRCd (SIGTERM, then SIGKILL after 5 s); every client is
    /// disconnected. [`Ngircd::resume`] or [`Ngircd::restart`] brings it back.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(5)).await?;
        }
        Ok(())
    }

    /// Kills ngIRCd at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts a stopped ngIRCd again on the same port and config.
    pub async fn resume(&mut self) -> Result<()> {
        if self.process.is_some() {
            bail!("ngircd is already running");
        }
        let deadline = deadline_in(Duration::from_secs(10));
        loop {
            match self.launch().await {
                Ok(()) => return Ok(()),
                Err(e) if self.port_race && std::time::Instant::now() < deadline => {
                    eprintln!("ngircd port {} still busy, retrying: {e:#}", self.port);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Stop, then start again on the same port (outage tests).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.resume().await
    }

    // ------------------------------------------------------------ internals

    fn write_config(&self) -> Result<()> {
        let o = &self.options;
        let mut c = String::new();
        writeln!(
            c,
            "# Generated by tests/support/ngircd.rs
[Global]
\tName = {name}
\tInfo = qqbridge test IRC server
\tAdminInfo1 = qqbridge tests
\tAdminInfo2 = localhost
\tAdminEMail = nobody@localhost
\tListen = 127.0.0.1
\tPorts = {port}
\tMotdPhrase = qqbridge test server {token}",
            name = o.server_name,
            port = self.port,
            token = self.token,
        )?;
        if let Some(pass) = &o.password {
            writeln!(c, "\tPassword = {pass}")?;
        }
        writeln!(
            c,
            "[Limits]
\tMaxConnections = 0
\tMaxConnectionsIP = 0
\tMaxJoins = 0
\tMaxNickLength = {nick}
\tMaxListSize = 1000
\tPingTimeout = 120
\tPongTimeout = 60
\tIdleTimeout = 0",
            nick = o.max_nick_length,
        )?;
        if !o.flood_control {
            writeln!(c, "\tMaxPenaltyTime = 0")?;
        }
        writeln!(
            c,
            "[Options]
\tPAM = no
\tIdent = no
\tDNS = no
\tOperCanUseMode = yes
\tRequireAuthPing = no
\tScrubCTCP = no
\tIncludeDir = {include}",
            include = self.dir().join("conf.d").display(),
        )?;
        if let Some((name, pass)) = &o.oper {
            writeln!(c, "[Operator]\n\tName = {name}\n\tPassword = {pass}")?;
        }
        if !o.extra_config.is_empty() {
            writeln!(c, "{}", o.extra_config)?;
        }
        let path = self.config_path();
        std::fs::write(&path, c)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        Ok(())
    }

    async fn launch(&mut self) -> Result<()> {
        self.port_race = false;
        let log_size = file_len(&self.log_path());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--nodaemon")
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if running_as_root() {
            // ngIRCd would drop to nobody itself; starting it as nobody
            // keeps the parent-death signal (a uid change clears it).
            let (uid, gid) = nobody();
            cmd.uid(uid).gid(gid);
        }
        let mut process = ServerProcess::spawn("ngircd", cmd)?;
        let addr = self.addr();
        let password = self.options.password.as_deref();
        let token = self.token.as_str();
        let ready = process
            .wait_ready(
                self.options.start_timeout,
                "it welcomes a client",
                || async move {
                    tokio::time::timeout(Duration::from_secs(5), probe(addr, password, token))
                        .await
                        .map_err(|_| anyhow!("no welcome within 5 s"))?
                },
            )
            .await;
        match ready {
            Ok(()) => {
                self.process = Some(process);
                Ok(())
            }
            Err(e) => {
                process.kill();
                self.port_race =
                    read_since(&self.log_path(), log_size).contains("Address already in use");
                Err(anyhow!(
                    "ngircd did not start on port {} ({}): {e:#}\n{}",
                    self.port,
                    self.binary.display(),
                    self.log_tail(40)
                ))
            }
        }
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        self.kill();
        let tail = self.log_tail(30);
        keep_dir_if_failing(&mut self.dir, "ngircd", || tail);
    }
}

/// Registers a throwaway client, waits for the welcome (001) and for the
/// MOTD line naming this instance's `token`.
async fn probe(addr: SocketAddr, password: Option<&str>, token: &str) -> Result<()> {
    let mut c = IrcClient::connect(addr).await?;
    let nick = format!("probe{}", rand::random::<u32>() % 1_000_000);
    c.register(&nick, password).await?;
    let end = c.expect(" 376 ").await?;
    if !c.lines.iter().any(|l| l.contains(token)) {
        bail!("another IRC server answers on {addr} ({end})");
    }
    c.send("QUIT :ready").await
}

// ---------------------------------------------------------------- client

/// A plain line-based IRC client for tests against a real server: sends raw
/// lines, waits for a line containing some text (answering PINGs on the way),
/// and keeps every line it read in `lines`.
pub struct IrcClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub lines: Vec<String>,
    /// How long `expect` waits for a line before failing.
    pub timeout: Duration,
}

impl IrcClient {
    pub async fn connect(addr: SocketAddr) -> Result<IrcClient> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to IRC server {addr}"))?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        Ok(IrcClient {
            reader: BufReader::new(r),
            writer: w,
            lines: Vec::new(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Connects to `irc` and registers as `nick` (with its password, if any).
    pub async fn connect_registered(irc: &Ngircd, nick: &str) -> Result<IrcClient> {
        let mut c = IrcClient::connect(irc.addr()).await?;
        c.register(nick, irc.password()).await?;
        Ok(c)
    }

    /// Sends one line (CRLF added).
    pub async fn send(&mut self, line: &str) -> Result<()> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        Ok(())
    }

    /// PASS (if given), NICK, USER, then waits for the welcome (001).
    pub async fn register(&mut self, nick: &str, password: Option<&str>) -> Result<()> {
        let mut hello = String::new();
        if let Some(pass) = password {
            hello.push_str(&format!("PASS {pass}\r\n"));
        }
        hello.push_str(&format!(
            "NICK {nick}\r\nUSER {nick} 0 * :test user {nick}\r\n"
        ));
        self.writer.write_all(hello.as_bytes()).await?;
        self.expect(&format!(" 001 {nick} ")).await?;
        Ok(())
    }

    /// The next line; `None` when the server closed the connection.
    pub async fn next_line(&mut self) -> Result<Option<String>> {
        let mut buf = Vec::new();
        match tokio::time::timeout(self.timeout, self.reader.read_until(b'\n', &mut buf)).await {
            Err(_) => bail!(
                "no line from the IRC server within {:?}; last lines: {:#?}",
                self.timeout,
                self.last_lines()
            ),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(None),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(0)) => Ok(None),
            Ok(Ok(_)) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                self.lines.push(line.clone());
                Ok(Some(line))
            }
        }
    }

    /// Reads until a line contains `needle` and returns it, answering PINGs.
    /// An ERROR line or a closed connection before that is an error.
    pub async fn expect(&mut self, needle: &str) -> Result<String> {
        loop {
            match self.next_line().await? {
                Some(line) if line.contains(needle) => return Ok(line),
                Some(line) if line.starts_with("PING") => {
                    self.send(&line.replacen("PING", "PONG", 1)).await?;
                }
                Some(line) if line.starts_with("ERROR") => {
                    bail!("server said {line:?} while we waited for {needle:?}")
                }
                Some(_) => {}
                None => bail!(
                    "connection closed while we waited for {needle:?}; last lines: {:#?}",
                    self.last_lines()
                ),
            }
        }
    }

    /// Reads until the server closes the connection; returns those lines.
    pub async fn until_closed(&mut self) -> Result<Vec<String>> {
        let start = self.lines.len();
        while self.next_line().await?.is_some() {}
        Ok(self.lines[start..].to_vec())
    }

    fn last_lines(&self) -> &[String] {
        &self.lines[self.lines.len().saturating_sub(20)..]
    }
}

/// The ngIRCd binary (Debian installs it in /usr/sbin).
pub fn ngircd_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("QQBRIDGE_NGIRCD") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("ngircd"))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("ngircd not found: run scripts/install-test-deps"))
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// uid and gid of `nobody`, from /etc/passwd (65534 when not listed).
fn nobody() -> (u32, u32) {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() > 3 && f[0] == "nobody" {
                    Some((f[2].parse().ok()?, f[3].parse().ok()?))
                } else {
                    None
                }
            })
        })
        .unwrap_or((65534, 65534))
}
