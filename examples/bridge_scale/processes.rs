//! The two processes under test, the QQ simulator (`qqbridge sim`) and the
//! bridge (`qqbridge run`), started from the `qqbridge` binary built next to
//! this example; their memory and CPU read from `/proc`; the simulator's
//! control API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A child process, killed when dropped.
pub struct Process {
    child: tokio::process::Child,
    pub pid: u32,
    pub log: PathBuf,
}

impl Process {
    fn spawn(
        bin: &Path,
        args: &[&std::ffi::OsStr],
        log: PathBuf,
        stdout: Stdio,
    ) -> anyhow::Result<Process> {
        let stderr = std::fs::File::create(&log).context("creating a log file")?;
        let child = tokio::process::Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("{} exited at once", bin.display()))?;
        Ok(Process { child, pid, log })
    }

    /// SIGTERM, then SIGKILL if it has not exited after 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill only sends a signal, to the process this program started.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Lines of its log at WARN or ERROR level, by message (timestamp cut).
    pub fn log_problems(&self) -> BTreeMap<String, u64> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut problems = BTreeMap::new();
        for line in text.lines() {
            if line.contains("WARN") || line.contains("ERROR") {
                let key: String = line
                    .split_once(' ')
                    .map_or(line, |(_, rest)| rest)
                    .chars()
                    .take(110)
                    .collect();
                *problems.entry(key).or_default() += 1;
            }
        }
        problems
    }
}

/// The `qqbridge` binary built with this example's profile.
pub fn qqbridge_binary(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("locating this program")?;
    // target/<profile>/examples/bridge_scale -> target/<profile>/qqbridge
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("qqbridge"))
        .ok_or_else(|| anyhow!("cannot tell the target directory from {}", exe.display()))?;
    if !bin.is_file() {
        bail!(
            "{} is missing: run `cargo build --release` first, or pass --bin",
            bin.display()
        );
    }
    Ok(bin)
}

/// Starts `qqbridge sim` and reads its protocol and control addresses.
pub async fn start_simulator(
    bin: &Path,
    scenario: &Path,
    log: PathBuf,
) -> anyhow::Result<(Process, SocketAddr, SocketAddr)> {
    let args = [
        "sim".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--control".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--scenario".as_ref(),
        scenario.as_os_str(),
    ];
    let mut sim = Process::spawn(bin, &args, log, Stdio::piped())?;
    let stdout = sim
        .child
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
            .ok_or_else(|| anyhow!("the simulator exited; see {}", sim.log.display()))?;
        if let Some(addr) = line.split(" on ").nth(1) {
            let addr = addr
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_start_matches("http://");
            if line.contains("control API") {
                control = Some(addr.parse()?);
            } else if line.contains("serving HTTP QQ 1.1") {
                protocol = Some(addr.parse()?);
            }
        }
    }
    // Keep reading stdout so the simulator never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let protocol = protocol.ok_or_else(|| anyhow!("no protocol address"))?;
    let control = control.ok_or_else(|| anyhow!("no control address"))?;
    Ok((sim, protocol, control))
}

/// Starts `qqbridge run -c config` and waits until its IRC gateway accepts
/// connections.
pub async fn start_bridge(
    bin: &Path,
    config: &Path,
    gateway: SocketAddr,
    log: PathBuf,
) -> anyhow::Result<Process> {
    let args = ["run".as_ref(), "-c".as_ref(), config.as_os_str()];
    let mut bridge = Process::spawn(bin, &args, log, Stdio::null())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(gateway).await.is_ok() {
            return Ok(bridge);
        }
        if !bridge.alive() {
            bail!("the bridge exited; see {}", bridge.log.display());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the bridge's IRC gateway did not come up within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free loopback port (bound and released; the bridge binds it next).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

// ------------------------------------------------------------ /proc

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Raises this process's soft open-file limit to the hard limit; returns
/// the soft limit in force afterwards.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        let wanted = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
            return limit.rlim_max;
        }
    }
    limit.rlim_cur
}

// ------------------------------------------------------------ control API

/// One request to the simulator's control API; the reply body as JSON.
pub async fn control(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await??;
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no body in the control API's reply to {path}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "{method} {path}: {}: {body}",
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(serde_json::from_str(body)?)
}
