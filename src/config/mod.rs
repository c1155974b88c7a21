//! The bridge configuration: typed structs loaded from YAML.
//!
//! The key paths documented in `bridge.example.yaml` are a contract other
//! tools rely on; extend around them, do not rename them. Loading, `${ENV}`
//! expansion and error reporting with file lines live in `load`; checks
//! that span several keys live in `validate`.

mod load;
mod networks;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::qq::Protocol;
use crate::secret::Secret;

pub use load::{load_file, load_str, ConfigError};
pub use networks::{
    is_valid_channel, ChannelMapping, NetworkConfig, NetworkLimits, NickservConfig, SaslConfig,
    NICK_PLACEHOLDER,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SQLite database file.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    pub qq: QqConfig,
    #[serde(default)]
    pub irc: IrcConfig,
    #[serde(default)]
    pub matrix: MatrixConfig,
    /// `"@user:server"`, `"server"` or `"*"` -> `user` | `admin`.
    #[serde(default = "default_permissions")]
    pub permissions: BTreeMap<String, PermissionLevel>,
    #[serde(default)]
    pub logging: LoggingConfig,
}

fn default_database() -> PathBuf {
    PathBuf::from("qqbridge.db")
}

fn default_permissions() -> BTreeMap<String, PermissionLevel> {
    BTreeMap::from([("*".to_owned(), PermissionLevel::User)])
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QqConfig {
    /// Default protocol for logins that do not name one.
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    /// Base URL of the QQ server; every WebQQ path hangs off the same base.
    pub server: String,
    #[serde(default)]
    pub simulator: SimulatorConfig,
    /// Most messages one bridge user may have waiting for QQ; beyond it a
    /// new message is refused and its sender told why.
    #[serde(default = "default_max_queued_per_user")]
    pub max_queued_per_user: u64,
    /// HTTP QQ 1.1 client timings (match them to the server's rules).
    #[serde(default)]
    pub http11: Http11Tuning,
}

fn default_max_queued_per_user() -> u64 {
    crate::core::bridge::DEFAULT_QQ_QUEUE_LIMIT
}

/// The HTTP QQ 1.1 client's pacing, for servers whose timings differ from
/// Tencent's (e.g. the simulator run with a `time_scale`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http11Tuning {
    /// Minimum gap between two sent messages of one account (the server
    /// penalises a CLTMSG sooner than 1 s after the previous one).
    #[serde(default = "default_send_pacing_ms")]
    pub send_pacing_ms: u64,
    /// GetMsgEx interval right after activity.
    #[serde(default = "default_poll_fast_ms")]
    pub poll_fast_ms: u64,
}

fn default_send_pacing_ms() -> u64 {
    1100
}

fn default_poll_fast_ms() -> u64 {
    1000
}

impl Default for Http11Tuning {
    fn default() -> Self {
        Http11Tuning {
            send_pacing_ms: default_send_pacing_ms(),
            poll_fast_ms: default_poll_fast_ms(),
        }
    }
}

fn default_protocol() -> Protocol {
    Protocol::Http11
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Start the embedded simulator inside the bridge process.
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_sim_listen")]
    pub listen: SocketAddr,
    /// `null` = built-in demo scenario, else a YAML file.
    #[serde(default)]
    pub scenario: Option<PathBuf>,
    /// Loopback address of the test-only control API; none when absent.
    #[serde(default)]
    pub control_listen: Option<SocketAddr>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            enabled: false,
            listen: default_sim_listen(),
            scenario: None,
            control_listen: None,
        }
    }
}

fn default_sim_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcConfig {
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Puppet connections and bridged channels on existing IRC networks.
    #[serde(default)]
    pub networks: Vec<NetworkConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_gateway_listen")]
    pub listen: SocketAddr,
    /// Server password (PASS) clients must send; none = open.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The server name shown to clients.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// How long a disconnected client's QQ sessions stay logged in, with
    /// messages kept for replay on reconnect.
    #[serde(default = "default_grace_period")]
    pub grace_period_s: u64,
    /// Most clients connected at once.
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
    /// Most clients connected at once from one IP address, so one host
    /// cannot take every slot.
    #[serde(default = "default_max_clients_per_ip")]
    pub max_clients_per_ip: usize,
    /// Seconds a client may stay silent before the gateway sends it a PING.
    #[serde(default = "default_ping_interval")]
    pub ping_interval_s: u64,
    /// Seconds a client has to answer a PING before it is dropped.
    #[serde(default = "default_ping_timeout")]
    pub ping_timeout_s: u64,
    /// Flood control: lines a client may send at once before being slowed
    /// down to `flood_lines_per_s` (reading is delayed, nothing is dropped).
    #[serde(default = "default_flood_burst")]
    pub flood_burst: u32,
    #[serde(default = "default_flood_rate")]
    pub flood_lines_per_s: f64,
    /// Lines that may wait to be written to one client; a client that does
    /// not read that many is disconnected instead of stalling the bridge.
    #[serde(default = "default_send_queue")]
    pub send_queue_lines: usize,
    /// Serve TLS with this certificate and key (PEM files); none = plain.
    #[serde(default)]
    pub tls: Option<GatewayTlsConfig>,
}

/// The gateway's TLS certificate chain and private key, as PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayTlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            enabled: false,
            listen: default_gateway_listen(),
            password: None,
            server_name: default_server_name(),
            grace_period_s: default_grace_period(),
            max_clients: default_max_clients(),
            max_clients_per_ip: default_max_clients_per_ip(),
            ping_interval_s: default_ping_interval(),
            ping_timeout_s: default_ping_timeout(),
            flood_burst: default_flood_burst(),
            flood_lines_per_s: default_flood_rate(),
            send_queue_lines: default_send_queue(),
            tls: None,
        }
    }
}

fn default_gateway_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6667))
}
fn default_server_name() -> String {
    "qqbridge".to_owned()
}
fn default_grace_period() -> u64 {
    600
}
fn default_max_clients() -> usize {
    100
}
fn default_max_clients_per_ip() -> usize {
    20
}
fn default_ping_interval() -> u64 {
    90
}
fn default_ping_timeout() -> u64 {
    60
}
fn default_flood_burst() -> u32 {
    10
}
fn default_flood_rate() -> f64 {
    2.0
}
fn default_send_queue() -> usize {
    4096
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MatrixMode {
    #[default]
    Appservice,
    Bot,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub mode: MatrixMode,
    #[serde(default = "default_homeserver_url")]
    pub homeserver_url: String,
    #[serde(default = "default_domain")]
    pub domain: String,
    #[serde(default)]
    pub appservice: AppserviceConfig,
    /// Global display name of QQ ghosts; `{nick}` is the QQ nickname (or
    /// group card, per room) and `{uin}` the QQ number.
    #[serde(default = "default_displayname_template")]
    pub displayname_template: String,
    /// Prefix of bot commands in rooms other than the DM with the bot.
    #[serde(default = "default_command_prefix")]
    pub command_prefix: String,
    /// A QQ account that relays messages of Matrix users who have not
    /// logged in (prefixed with their display name); none = such messages
    /// are refused with a notice.
    #[serde(default)]
    pub relay: Option<RelayConfig>,
    #[serde(default)]
    pub presence: MatrixPresenceConfig,
    /// The bot mode's account and store (`matrix.mode: bot`).
    #[serde(default)]
    pub bot: Option<MatrixBotConfig>,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        MatrixConfig {
            enabled: false,
            mode: MatrixMode::Appservice,
            homeserver_url: default_homeserver_url(),
            domain: default_domain(),
            appservice: AppserviceConfig::default(),
            displayname_template: default_displayname_template(),
            command_prefix: default_command_prefix(),
            relay: None,
            presence: MatrixPresenceConfig::default(),
            bot: None,
        }
    }
}

/// Bot mode: the bridge logs in as an ordinary Matrix account (matrix-sdk,
/// end-to-end encryption) instead of registering an application service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixBotConfig {
    /// The bot's account, `@qqbot:example.org`.
    pub user_id: String,
    /// Password (used to log in, and to set up cross-signing once).
    #[serde(default)]
    pub password: Option<Secret>,
    /// A file holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An access token of an existing login, instead of a password.
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub access_token_file: Option<PathBuf>,
    /// Display name of the bot's device (what users see when verifying).
    #[serde(default = "default_bot_device_name")]
    pub device_name: String,
    /// Directory of matrix-sdk's SQLite state and crypto stores and the
    /// saved login. Losing it loses the bot's encryption keys.
    #[serde(default = "default_bot_store_path")]
    pub store_path: PathBuf,
    /// Encrypts matrix-sdk's stores with this passphrase.
    #[serde(default)]
    pub store_passphrase: Option<Secret>,
    /// How a QQ buddy's status change is shown in its room.
    #[serde(default)]
    pub presence_display: PresenceDisplay,
    /// Whether the rooms the bot creates are end-to-end encrypted.
    #[serde(default = "default_true")]
    pub encrypt_portals: bool,
}

/// Where bot mode shows a QQ buddy's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PresenceDisplay {
    /// The portal's room topic.
    Topic,
    /// A notice in the portal when it changes.
    #[default]
    Notice,
    Off,
}

fn default_bot_device_name() -> String {
    "qqbridge".to_owned()
}
fn default_bot_store_path() -> PathBuf {
    PathBuf::from("qqbridge-matrix-store")
}

impl MatrixBotConfig {
    /// The password, from the config or its file.
    pub fn password(&self) -> std::io::Result<Option<Secret>> {
        secret_or_file(self.password.as_ref(), self.password_file.as_deref())
    }

    /// The access token, from the config or its file.
    pub fn access_token(&self) -> std::io::Result<Option<Secret>> {
        secret_or_file(
            self.access_token.as_ref(),
            self.access_token_file.as_deref(),
        )
    }
}

fn secret_or_file(
    value: Option<&Secret>,
    file: Option<&std::path::Path>,
) -> std::io::Result<Option<Secret>> {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        return Ok(Some(v.clone()));
    }
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            let text = text.trim_end_matches(['\r', '\n']);
            Ok((!text.is_empty()).then(|| Secret::new(text)))
        }
        None => Ok(None),
    }
}

fn default_displayname_template() -> String {
    "{nick} (QQ)".to_owned()
}
fn default_command_prefix() -> String {
    "!qq".to_owned()
}

/// The relay QQ account (logged in by the bridge itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    pub uin: u64,
    pub password: Secret,
    /// Defaults to `qq.protocol`.
    #[serde(default)]
    pub protocol: Option<Protocol>,
}

/// Presence synchronisation between QQ and Matrix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixPresenceConfig {
    /// QQ status of buddies -> presence of their ghosts.
    #[serde(default = "default_true")]
    pub from_qq: bool,
    /// The Matrix user's own presence -> their QQ status.
    #[serde(default = "default_true")]
    pub to_qq: bool,
}

impl Default for MatrixPresenceConfig {
    fn default() -> Self {
        MatrixPresenceConfig {
            from_qq: true,
            to_qq: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_homeserver_url() -> String {
    "http://127.0.0.1:8008".to_owned()
}
fn default_domain() -> String {
    "localhost".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppserviceConfig {
    #[serde(default = "default_as_id")]
    pub id: String,
    #[serde(default = "default_as_listen")]
    pub listen: SocketAddr,
    /// Where the homeserver reaches the bridge.
    #[serde(default = "default_as_url")]
    pub url: String,
    #[serde(default = "default_sender_localpart")]
    pub sender_localpart: String,
    #[serde(default = "default_prefix")]
    pub user_prefix: String,
    #[serde(default = "default_prefix")]
    pub alias_prefix: String,
    /// `generate` (or absent) = generated once and kept in the store.
    #[serde(default)]
    pub as_token: Option<Secret>,
    /// Like `as_token`.
    #[serde(default)]
    pub hs_token: Option<Secret>,
    /// Base URL under which QQ users can open Matrix media through the
    /// bridge (`<public_url>/_qqbridge/media/...`, served by the appservice
    /// listener); none = `url`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Largest appservice transaction body accepted, in bytes.
    #[serde(default = "default_max_transaction_bytes")]
    pub max_transaction_bytes: usize,
    /// When a room's send queue is behind (the homeserver slower than the
    /// chat), up to this many waiting plain lines of one ghost go out as
    /// one multi-line event (at most [`MAX_MERGE_BACKLOG_LINES`], and 24 KiB
    /// of text); 0 or 1 = always one event per message.
    #[serde(default = "default_merge_backlog_lines")]
    pub merge_backlog_lines: usize,
    /// After sending merged lines, a room's queue waits this long (ms)
    /// before it reads its next lines, so a busy room's lines gather into
    /// fewer, fuller events instead of keeping the homeserver busy with one
    /// event per send; a room that keeps up never waits. 0 = never wait.
    #[serde(default = "default_merge_linger_ms")]
    pub merge_linger_ms: u64,
}

/// The longest `merge_linger_ms`: beyond this, lines would look late.
pub const MAX_MERGE_LINGER_MS: u64 = 2_000;

fn default_merge_linger_ms() -> u64 {
    100
}

/// The most lines `merge_backlog_lines` may ask for: a room queue reads
/// that many items at a time to plan its merge.
pub const MAX_MERGE_BACKLOG_LINES: usize = 1000;

fn default_merge_backlog_lines() -> usize {
    256
}

fn default_max_transaction_bytes() -> usize {
    // 100 events of at most 64 KiB each, plus JSON framing.
    8 * 1024 * 1024
}

impl Default for AppserviceConfig {
    fn default() -> Self {
        AppserviceConfig {
            id: default_as_id(),
            listen: default_as_listen(),
            url: default_as_url(),
            sender_localpart: default_sender_localpart(),
            user_prefix: default_prefix(),
            alias_prefix: default_prefix(),
            as_token: None,
            hs_token: None,
            public_url: None,
            max_transaction_bytes: default_max_transaction_bytes(),
            merge_backlog_lines: default_merge_backlog_lines(),
            merge_linger_ms: default_merge_linger_ms(),
        }
    }
}

fn default_as_id() -> String {
    "qqbridge".to_owned()
}
fn default_as_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 29331))
}
fn default_as_url() -> String {
    "http://127.0.0.1:29331".to_owned()
}
fn default_sender_localpart() -> String {
    "qqbot".to_owned()
}
fn default_prefix() -> String {
    "_qq_".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionLevel {
    User,
    Admin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// A tracing filter (`info`, `qqbridge=debug,info`); `RUST_LOG` wins.
    #[serde(default = "default_log_filter")]
    pub filter: String,
    #[serde(default)]
    pub json: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            filter: default_log_filter(),
            json: false,
        }
    }
}

fn default_log_filter() -> String {
    "info".to_owned()
}

impl Config {
    /// The permission level of a chat-side user id (`@alice:example.org`),
    /// most specific rule first: exact user, then server, then `*`.
    pub fn permission_of(&self, user_id: &str) -> Option<PermissionLevel> {
        if let Some(level) = self.permissions.get(user_id) {
            return Some(*level);
        }
        if let Some((_, server)) = user_id.split_once(':') {
            if let Some(level) = self.permissions.get(server) {
                return Some(*level);
            }
        }
        self.permissions.get("*").copied()
    }
}
