//! A real Synapse homeserver for integration tests.
//!
//! ```ignore
//! let reg = AppserviceRegistration::new("qq", "_qq_bot", Some(&bridge_url))
//!     .exclusive_users("@_qq_.*:localhost");
//! let mut hs = Synapse::start(SynapseOptions::with_appservice(reg.to_yaml())).await?;
//! let (user_id, token) = hs.register_user("alice", "secret", false).await?;
//! ```
//!
//! Each instance has its own loopback port and temp dir (config, SQLite
//! database, media, logs), so tests can run in parallel. Synapse comes from
//! the venv that `scripts/install-test-deps` builds in `target/synapse-venv`
//! (or the interpreter named by `QQBRIDGE_SYNAPSE_PYTHON`); when it is not
//! there, `start` fails with a message saying so: tests never skip.
//!
//! The generated homeserver.yaml: server_name `localhost`, SQLite, every
//! rate limit out of reach, `enable_registration: false` with a
//! `registration_shared_secret` (see [`Synapse::register_user`]), presence
//! on, one listener (client API, admin API, keys) and no federation, no
//! trusted key servers. Appservice registrations are read by Synapse only
//! when it starts, so they go in the options.
//!
//! Its files stay after a panicking test (or with `QQBRIDGE_KEEP_SERVER_DIRS`
//! set); the test's output then says where.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::Sha1;

pub use super::process::random_token;
use super::process::{
    deadline_in, file_len, free_port, keep_dir_if_failing, log_tail, read_since, ServerProcess,
};

/// How Synapse is configured; `Default` is a plain homeserver.
#[derive(Clone, Debug)]
pub struct SynapseOptions {
    /// Appservice registration files (YAML text), e.g. from
    /// [`AppserviceRegistration::to_yaml`].
    pub appservices: Vec<String>,
    /// YAML appended to the generated homeserver.yaml. A top-level key
    /// given here wins over the generated one (the last duplicate wins).
    pub extra_config: String,
    /// Python log level of Synapse's log file (`homeserver.log`).
    pub log_level: String,
    /// How long a start (or restart) may take before it counts as failed.
    pub start_timeout: Duration,
}

impl Default for SynapseOptions {
    fn default() -> Self {
        SynapseOptions {
            appservices: Vec::new(),
            extra_config: String::new(),
            log_level: "INFO".into(),
            start_timeout: Duration::from_secs(120),
        }
    }
}

impl SynapseOptions {
    pub fn with_appservice(registration_yaml: impl Into<String>) -> Self {
        SynapseOptions {
            appservices: vec![registration_yaml.into()],
            ..Default::default()
        }
    }
}

/// A running Synapse; stopped (with its child processes) when dropped.
pub struct Synapse {
    dir: tempfile::TempDir,
    port: u16,
    python: PathBuf,
    shared_secret: String,
    /// The id of this instance's signing key, e.g. `a_x7Gq2LmP`: how the
    /// start-up check knows it reached this Synapse and not another one.
    key_id: String,
    options: SynapseOptions,
    process: Option<ServerProcess>,
    http: reqwest::Client,
    /// Whether the last failed launch could not bind its port.
    port_race: bool,
}

pub const SERVER_NAME: &str = "localhost";

impl Synapse {
    /// Writes a fresh config and data dir, starts Synapse on a free loopback
    /// port and waits until `/_matrix/client/versions` answers.
    pub async fn start(options: SynapseOptions) -> Result<Synapse> {
        let python = synapse_python()?;
        let dir = tempfile::Builder::new()
            .prefix("qqbridge-synapse-")
            .tempdir()
            .context("create Synapse temp dir")?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut hs = Synapse {
            dir,
            port: 0,
            python,
            shared_secret: random_token(32),
            key_id: format!("a_{}", random_token(8)),
            options,
            process: None,
            http,
            port_race: false,
        };
        hs.write_static_files()?;
        // Another process may take the port between free_port() and
        // Synapse's bind: then try again on another one.
        let mut attempt = 0;
        loop {
            attempt += 1;
            hs.port = free_port();
            hs.write_homeserver_yaml()?;
            match hs.launch().await {
                Ok(()) => return Ok(hs),
                Err(e) if attempt < 3 && hs.port_race => {
                    eprintln!("Synapse could not bind port {}, retrying: {e:#}", hs.port);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn server_name(&self) -> &'static str {
        SERVER_NAME
    }

    /// `@localpart:localhost`.
    pub fn user_id(&self, localpart: &str) -> String {
        format!("@{localpart}:{SERVER_NAME}")
    }

    /// The temp dir holding config, database, media and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Synapse's own log (Python logging).
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("homeserver.log")
    }

    /// Synapse's stdout and stderr (start-up errors land here).
    pub fn stdio_log_path(&self) -> PathBuf {
        self.dir().join("stdio.log")
    }

    /// The last `lines` lines of both logs, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- {}:\n{}\n--- {}:\n{}",
            self.stdio_log_path().display(),
            log_tail(&self.stdio_log_path(), lines),
            self.log_path().display(),
            log_tail(&self.log_path(), lines)
        )
    }

    pub fn shared_secret(&self) -> &str {
        &self.shared_secret
    }

    /// A plain HTTP client (no proxy) for talking to this Synapse.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
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

    /// Registers a user through the shared-secret admin API
    /// (`/_synapse/admin/v1/register`) and returns `(user_id, access_token)`.
    pub async fn register_user(
        &self,
        localpart: &str,
        password: &str,
        admin: bool,
    ) -> Result<(String, String)> {
        let url = format!("{}/_synapse/admin/v1/register", self.base_url());
        let nonce: Value = self
            .http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let nonce = nonce["nonce"]
            .as_str()
            .ok_or_else(|| anyhow!("no nonce in {nonce}"))?;
        let mut mac = Hmac::<Sha1>::new_from_slice(self.shared_secret.as_bytes())?;
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(localpart.as_bytes());
        mac.update(b"\0");
        mac.update(password.as_bytes());
        mac.update(b"\0");
        mac.update(if admin { b"admin" } else { b"notadmin" });
        let mac = hex(&mac.finalize().into_bytes());
        let body = json!({
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac,
        });
        let resp = self.http.post(&url).json(&body).send().await?;
        let status = resp.status();
        let reply: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("registering {localpart} failed: {status} {reply}");
        }
        let field = |k: &str| {
            reply[k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("no {k} in {reply}"))
        };
        Ok((field("user_id")?, field("access_token")?))
    }

    /// Stops Synapse (SIGTERM, then SIGKILL after 10 s) and its children.
    /// Data stays; [`Synapse::resume`] or [`Synapse::restart`] brings it back.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(10)).await?;
        }
        Ok(())
    }

    /// Kills Synapse at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts a stopped Synapse again, on the same port and data.
    pub async fn resume(&mut self) -> Result<()> {
        if self.process.is_some() {
            bail!("Synapse is already running");
        }
        // The old listening socket may linger for a moment.
        let deadline = deadline_in(Duration::from_secs(10));
        loop {
            match self.launch().await {
                Ok(()) => return Ok(()),
                Err(e) if self.port_race && std::time::Instant::now() < deadline => {
                    eprintln!("Synapse port {} still busy, retrying: {e:#}", self.port);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Stop, then start again on the same port and data (outage tests).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.resume().await
    }

    // ------------------------------------------------------------ internals

    fn write_static_files(&self) -> Result<()> {
        let dir = self.dir();
        // An ed25519 signing key is its 32-byte seed, in unpadded base64.
        let seed: [u8; 32] = rand::random();
        let key = base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed);
        std::fs::write(
            dir.join("signing.key"),
            format!("ed25519 {} {key}\n", self.key_id),
        )?;
        let log_config = format!(
            r#"version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {log}
    encoding: utf8
root:
  level: {level}
  handlers: [file]
loggers:
  synapse.storage.SQL:
    level: WARNING
disable_existing_loggers: false
"#,
            log = yaml_str(&self.log_path()),
            level = self.options.log_level,
        );
        std::fs::write(dir.join("log.config"), log_config)?;
        for (i, reg) in self.options.appservices.iter().enumerate() {
            std::fs::write(dir.join(format!("appservice-{i}.yaml")), reg)?;
        }
        Ok(())
    }

    fn write_homeserver_yaml(&self) -> Result<()> {
        let dir = self.dir();
        let appservices: Vec<String> = (0..self.options.appservices.len())
            .map(|i| yaml_str(&dir.join(format!("appservice-{i}.yaml"))))
            .collect();
        let mut y = String::new();
        writeln!(
            y,
            r#"# Generated by tests/support/synapse.rs
server_name: "{SERVER_NAME}"
report_stats: false
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client, keys]
        compress: false
database:
  name: sqlite3
  args:
    database: {db}
log_config: {log_config}
media_store_path: {media}
signing_key_path: {signing_key}
trusted_key_servers: []
suppress_key_server_warning: true
registration_shared_secret: "{secret}"
enable_registration: false
macaroon_secret_key: "{macaroon}"
form_secret: "{form}"
presence:
  enabled: true
enable_metrics: false
url_preview_enabled: false
room_list_publication_rules:
  - action: allow
app_service_config_files: [{appservices}]"#,
            port = self.port,
            db = yaml_str(&dir.join("homeserver.db")),
            log_config = yaml_str(&dir.join("log.config")),
            media = yaml_str(&dir.join("media_store")),
            signing_key = yaml_str(&dir.join("signing.key")),
            secret = self.shared_secret,
            macaroon = random_token(32),
            form = random_token(32),
            appservices = appservices.join(", "),
        )?;
        // Rate limits out of reach: tests drive far more than people do.
        let high = "{per_second: 100000, burst_count: 1000000}";
        for key in [
            "rc_message",
            "rc_registration",
            "rc_registration_token_validity",
            "rc_admin_redaction",
            "rc_joins_per_room",
            "rc_key_requests",
            "rc_3pid_validation",
            "rc_third_party_invite",
            "rc_media_create",
            "rc_delayed_event_mgmt",
            "rc_room_creation",
            "rc_reports",
            "rc_user_directory",
            "rc_profile",
        ] {
            writeln!(y, "{key}: {high}")?;
        }
        writeln!(
            y,
            "rc_login: {{address: {high}, account: {high}, failed_attempts: {high}}}"
        )?;
        writeln!(y, "rc_joins: {{local: {high}, remote: {high}}}")?;
        writeln!(
            y,
            "rc_invites: {{per_room: {high}, per_user: {high}, per_issuer: {high}}}"
        )?;
        writeln!(y, "rc_presence: {{per_user: {high}}}")?;
        writeln!(
            y,
            "rc_federation: {{window_size: 1000, sleep_limit: 100000, sleep_delay: 0, \
             reject_limit: 100000, concurrent: 1000}}"
        )?;
        if !self.options.extra_config.is_empty() {
            writeln!(y, "# extra_config\n{}", self.options.extra_config)?;
        }
        std::fs::write(dir.join("homeserver.yaml"), y)?;
        Ok(())
    }

    /// Starts the process and waits until it answers (or fails).
    async fn launch(&mut self) -> Result<()> {
        let dir = self.dir().to_path_buf();
        self.port_race = false;
        let log_sizes = (file_len(&self.stdio_log_path()), file_len(&self.log_path()));
        let stdio = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stdio_log_path())?;
        let mut cmd = Command::new(&self.python);
        cmd.args(["-m", "synapse.app.homeserver", "--config-path"])
            .arg(dir.join("homeserver.yaml"))
            .current_dir(&dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(stdio.try_clone()?)
            .stderr(stdio);
        let mut process = ServerProcess::spawn("Synapse", cmd)?;
        let base = self.base_url();
        let http = &self.http;
        let key = format!("ed25519:{}", self.key_id);
        let ready = process
            .wait_ready(
                self.options.start_timeout,
                "it answers /_matrix/client/versions",
                || {
                    let versions = http
                        .get(format!("{base}/_matrix/client/versions"))
                        .timeout(Duration::from_secs(2))
                        .send();
                    let keys = http
                        .get(format!("{base}/_matrix/key/v2/server"))
                        .timeout(Duration::from_secs(2))
                        .send();
                    let key = &key;
                    async move {
                        versions.await?.error_for_status()?;
                        let keys: Value = keys.await?.error_for_status()?.json().await?;
                        if keys["verify_keys"].get(key).is_none() {
                            bail!("another server answers on this port: {keys}");
                        }
                        anyhow::Ok(())
                    }
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
                self.port_race = self.lost_port_race(log_sizes);
                Err(anyhow!(
                    "Synapse did not start on port {} (python {}): {e:#}\n{}",
                    self.port,
                    self.python.display(),
                    self.log_tail(40)
                ))
            }
        }
    }

    /// Whether the logs written since `sizes` say the port was taken.
    fn lost_port_race(&self, sizes: (u64, u64)) -> bool {
        let logs = read_since(&self.stdio_log_path(), sizes.0)
            + read_since(&self.log_path(), sizes.1).as_str();
        logs.contains("Address already in use")
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        // Before the temp dir goes.
        self.kill();
        let tail = self.log_tail(30);
        keep_dir_if_failing(&mut self.dir, "Synapse", || tail);
    }
}

/// The Python interpreter of the Synapse venv.
pub fn synapse_python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("QQBRIDGE_SYNAPSE_PYTHON") {
        let python = PathBuf::from(p);
        if !python.exists() {
            bail!(
                "QQBRIDGE_SYNAPSE_PYTHON={} does not exist",
                python.display()
            );
        }
        return Ok(python);
    }
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/synapse-venv/bin/python");
    if !python.exists() {
        bail!(
            "{} not found: Synapse is not installed; run scripts/install-test-deps",
            python.display()
        );
    }
    Ok(python)
}

// ---------------------------------------------------------------- appservices

/// An appservice registration, written out with [`Self::to_yaml`].
#[derive(Clone, Debug)]
pub struct AppserviceRegistration {
    pub id: String,
    /// Where Synapse pushes transactions; `None` for no pushes.
    pub url: Option<String>,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    /// `(regex, exclusive)`.
    pub users: Vec<(String, bool)>,
    pub aliases: Vec<(String, bool)>,
    pub rooms: Vec<(String, bool)>,
    pub rate_limited: bool,
    pub receive_ephemeral: bool,
}

impl AppserviceRegistration {
    /// Random tokens, `rate_limited: false`, no namespaces yet.
    pub fn new(id: &str, sender_localpart: &str, url: Option<&str>) -> Self {
        AppserviceRegistration {
            id: id.into(),
            url: url.map(str::to_string),
            as_token: random_token(32),
            hs_token: random_token(32),
            sender_localpart: sender_localpart.into(),
            users: Vec::new(),
            aliases: Vec::new(),
            rooms: Vec::new(),
            rate_limited: false,
            receive_ephemeral: false,
        }
    }

    pub fn exclusive_users(mut self, regex: &str) -> Self {
        self.users.push((regex.into(), true));
        self
    }

    pub fn exclusive_aliases(mut self, regex: &str) -> Self {
        self.aliases.push((regex.into(), true));
        self
    }

    pub fn to_yaml(&self) -> String {
        let ns = |v: &[(String, bool)]| -> Vec<Value> {
            v.iter()
                .map(|(regex, exclusive)| json!({"regex": regex, "exclusive": exclusive}))
                .collect()
        };
        let reg = json!({
            "id": self.id,
            "url": self.url,
            "as_token": self.as_token,
            "hs_token": self.hs_token,
            "sender_localpart": self.sender_localpart,
            "rate_limited": self.rate_limited,
            "receive_ephemeral": self.receive_ephemeral,
            "namespaces": {
                "users": ns(&self.users),
                "aliases": ns(&self.aliases),
                "rooms": ns(&self.rooms),
            },
        });
        serde_yaml::to_string(&reg).expect("registration serialises")
    }
}

// ---------------------------------------------------------------- helpers

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A path as a double-quoted YAML scalar.
fn yaml_str(path: &Path) -> String {
    serde_json::to_string(&path.to_string_lossy()).unwrap()
}
