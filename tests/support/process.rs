//! Plumbing shared by the real-server harnesses (`synapse`, `ngircd`):
//! loopback ports, bounded waits, and child processes that never outlive
//! the test.
//!
//! A server is started in its own process group, so stopping it also stops
//! whatever it forked, and it is killed when its handle is dropped (also on
//! a panicking test). As a last resort for a test binary that dies without
//! unwinding (SIGKILL, abort), every server gets `PR_SET_PDEATHSIG`, tied
//! to one spawner thread that lives as long as the test binary, so a server
//! kept in a `static` outlives the test that started it but not the binary.

use std::collections::HashSet;
use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

// ---------------------------------------------------------------- ports

/// A loopback TCP port that is free right now and that no other caller in
/// this test binary has been given.
///
/// Ports come from below the kernel's ephemeral range, so the outgoing
/// connections of concurrent tests (and `bind(127.0.0.1:0)` listeners) can't
/// take the port between this call and the server's own `bind`. A server
/// that still loses that race fails to start; the harnesses then retry on
/// another port.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = if ephemeral_low > 12000 {
        (10000, ephemeral_low)
    } else {
        (ephemeral_low.max(1024), u16::MAX)
    };
    for _ in 0..1000 {
        let port = rand::random::<u16>() % (high - low) + low;
        if given.lock().unwrap().contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            given.lock().unwrap().insert(port);
            return port;
        }
    }
    // Hardly reachable; let the kernel pick.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A random alphanumeric token of `len` characters.
pub fn random_token(len: usize) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

// ---------------------------------------------------------------- waits

/// The instant `timeout` from now, to pass to [`wait_until`].
pub fn deadline_in(timeout: Duration) -> Instant {
    Instant::now() + timeout
}

/// Runs `check` every 50 ms until it returns `Ok`, and returns that value.
/// Past `deadline` it fails, saying what it waited for and the last error
/// `check` gave. Real (not tokio's paused) time.
pub async fn wait_until<T, E, F, Fut>(deadline: Instant, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
    E: std::fmt::Display,
{
    loop {
        let last = match check().await {
            Ok(v) => return Ok(v),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            bail!("timed out waiting for {what}; last error: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- processes

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` from a thread that lives as long as the test binary, in a
/// new process group, with SIGKILL as its parent-death signal.
fn spawn_owned(mut cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("test-server-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the test-server spawner thread");
        Mutex::new(tx)
    });
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

/// A running server process (and its process group), killed on drop.
pub struct ServerProcess {
    name: String,
    child: Option<Child>,
}

impl ServerProcess {
    /// Starts `cmd` (stdout and stderr should already point at a log file).
    pub fn spawn(name: &str, cmd: Command) -> Result<Self> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let child = spawn_owned(cmd).with_context(|| format!("cannot start {name} ({program})"))?;
        Ok(ServerProcess {
            name: name.to_string(),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `Some(status)` once the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn signal_group(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: plain kill(2) on our own child's process group.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), signal);
            }
        }
    }

    /// SIGTERM to the whole group, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> Result<()> {
        if self.child.is_none() {
            return Ok(());
        }
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        Ok(())
    }

    /// SIGKILL to the whole group (a crash, as far as the server knows),
    /// and reap the process.
    pub fn kill(&mut self) {
        self.signal_group(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `check` every 50 ms until it returns `Ok` (the server is ready)
    /// and returns that value. Fails at once if the process ends, and after
    /// `timeout` with the last error `check` gave.
    pub async fn wait_ready<T, E, F, Fut>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: std::fmt::Display,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited ({status}) before it was ready ({what})",
                    self.name
                );
            }
            let last = match check().await {
                Ok(v) => return Ok(v),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready after {timeout:?} ({what}); last error: {last}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Keeps a server's temp dir when the test is panicking (or always, with
/// `QQBRIDGE_KEEP_SERVER_DIRS` set), printing where it is and, on a panic,
/// `tail()` (the end of the server's log).
pub fn keep_dir_if_failing(dir: &mut tempfile::TempDir, name: &str, tail: impl FnOnce() -> String) {
    let panicking = std::thread::panicking();
    if panicking || std::env::var_os("QQBRIDGE_KEEP_SERVER_DIRS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("{name} files kept in {}", dir.path().display());
        if panicking {
            eprintln!("{}", tail());
        }
    }
}

/// The last `lines` lines of a (log) file, or a note that it can't be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("({}: {e})", path.display()),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The size of a file, 0 when it does not exist.
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// What a file holds past byte `from` (lossy UTF-8).
pub fn read_since(path: &Path, from: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned()
}
