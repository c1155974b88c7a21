//! `irc.networks`: puppet connections and bridged channels on existing IRC
//! networks (see `src/irc/networks`). Every key is documented in
//! `bridge.example.yaml`; checks that need more than a type live in
//! [`validate_networks`].

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::load::{ConfigError, Source};
use super::RelayConfig;
use crate::core::text::{irc_lowercase, is_valid_irc_nick};
use crate::secret::Secret;

/// The placeholder of [`NetworkConfig::puppet_nick_template`].
pub const NICK_PLACEHOLDER: &str = "{nick}";

/// One IRC network the bridge connects to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Short name: part of user ids (`irc:<name>:<nick>`), of bot commands
    /// (`bridge 123 <name> #chan`) and of stored puppet names.
    pub name: String,
    pub host: String,
    /// Default 6697 with TLS, else 6667.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the certificate authorities trusted for TLS; none = the
    /// system bundle.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Server password (`PASS`), sent by the bot and every puppet.
    #[serde(default)]
    pub password: Option<Secret>,
    /// SASL PLAIN for the bot.
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
    /// `IDENTIFY` to NickServ for the bot after connecting.
    #[serde(default)]
    pub nickserv: Option<NickservConfig>,
    #[serde(default = "default_bot_nick")]
    pub bot_nick: String,
    /// Puppet nicks: `{nick}` is the QQ nickname in pinyin, sanitised.
    #[serde(default = "default_puppet_template")]
    pub puppet_nick_template: String,
    /// Connect a puppet for every member of a bridged group when the relay
    /// login comes up, instead of only when a member first speaks.
    #[serde(default)]
    pub connect_members: bool,
    #[serde(default)]
    pub limits: NetworkLimits,
    /// QQ accounts the bridge logs in itself to relay IRC users' messages
    /// into bridged chats.
    #[serde(default)]
    pub relays: Vec<RelayConfig>,
    /// QQ chats bridged to channels of this network.
    #[serde(default)]
    pub channels: Vec<ChannelMapping>,
}

/// The bot's SASL PLAIN account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    pub username: String,
    pub password: Secret,
}

/// The bot's NickServ password.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NickservConfig {
    pub password: Secret,
    /// The services nick to identify to.
    #[serde(default = "default_nickserv")]
    pub service: String,
}

/// Pacing and sizing, so a big group never floods the network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkLimits {
    /// Most puppet connections at once; beyond it the least recently
    /// active idle puppet leaves, or the bot relays for the newcomer.
    #[serde(default = "default_max_puppets")]
    pub max_puppets: usize,
    /// New connections (bot and puppets) per second, network-wide.
    #[serde(default = "default_connects_per_second")]
    pub connects_per_second: f64,
    /// IRC commands per second on one connection (messages, joins, pings).
    #[serde(default = "default_messages_per_second")]
    pub messages_per_second: f64,
    /// Commands one connection may send at once before the rate applies.
    #[serde(default = "default_message_burst")]
    pub message_burst: u32,
    /// Seconds without a message after which a puppet disconnects; its
    /// next message reconnects it.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
    /// Seconds a message waits for its puppet to connect before the bot
    /// relays it as `<nick> text`.
    #[serde(default = "default_puppet_wait")]
    pub puppet_wait_s: u64,
}

impl Default for NetworkLimits {
    fn default() -> Self {
        NetworkLimits {
            max_puppets: default_max_puppets(),
            connects_per_second: default_connects_per_second(),
            messages_per_second: default_messages_per_second(),
            message_burst: default_message_burst(),
            idle_timeout_s: default_idle_timeout(),
            puppet_wait_s: default_puppet_wait(),
        }
    }
}

/// A QQ chat bridged to a channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelMapping {
    pub channel: String,
    /// A QQ group number (give this or `buddy`).
    #[serde(default)]
    pub group: Option<u64>,
    /// A QQ number: the relay's one-to-one chat with that buddy.
    #[serde(default)]
    pub buddy: Option<u64>,
    /// QQ number of the relay (from `relays`) whose login carries this
    /// chat; may be left out when the network has exactly one relay.
    #[serde(default)]
    pub relay: Option<u64>,
}

impl ChannelMapping {
    /// The relay's QQ number, resolved against the network's relays.
    pub fn relay_uin(&self, network: &NetworkConfig) -> Option<u64> {
        match (self.relay, network.relays.as_slice()) {
            (Some(uin), _) => Some(uin),
            (None, [only]) => Some(only.uin),
            _ => None,
        }
    }
}

fn default_bot_nick() -> String {
    "qqbridge".to_owned()
}
fn default_puppet_template() -> String {
    "{nick}[qq]".to_owned()
}
fn default_nickserv() -> String {
    "NickServ".to_owned()
}
fn default_max_puppets() -> usize {
    100
}
fn default_connects_per_second() -> f64 {
    0.5
}
fn default_messages_per_second() -> f64 {
    1.0
}
fn default_message_burst() -> u32 {
    3
}
fn default_idle_timeout() -> u64 {
    86_400
}
fn default_puppet_wait() -> u64 {
    30
}

impl NetworkConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(if self.tls { 6697 } else { 6667 })
    }
}

/// Whether `name` is a channel name the bridge can use safely: a `#` or
/// `&` channel of at most 50 bytes without spaces, commas, BELs or control
/// characters (RFC 2812 §1.3).
pub fn is_valid_channel(name: &str) -> bool {
    name.len() > 1
        && name.len() <= 50
        && (name.starts_with('#') || name.starts_with('&'))
        && !name
            .chars()
            .any(|c| c == ' ' || c == ',' || c == ':' || c.is_control())
}

/// Whether `name` can name a network: it appears in user ids and commands.
fn is_valid_network_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(super) fn validate_networks(
    source: &Source<'_>,
    networks: &[NetworkConfig],
) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, net) in networks.iter().enumerate() {
        let key = |leaf: &str| format!("irc.networks[{i}].{leaf}");
        if !is_valid_network_name(&net.name) {
            return Err(source.error(
                &key("name"),
                "must be 1-32 letters, digits, - or _ (it appears in user ids and commands)",
            ));
        }
        if !names.insert(net.name.to_ascii_lowercase()) {
            return Err(source.error(&key("name"), format!("{:?} is used twice", net.name)));
        }
        if net.host.trim().is_empty() || net.host.contains(char::is_whitespace) {
            return Err(source.error(&key("host"), "must be a host name or address"));
        }
        if net.port == Some(0) {
            return Err(source.error(&key("port"), "must be 1-65535"));
        }
        if net.tls_ca_file.is_some() && !net.tls {
            return Err(source.error(&key("tls_ca_file"), "only makes sense with tls: true"));
        }
        if !is_valid_irc_nick(&net.bot_nick, 30) {
            return Err(source.error(
                &key("bot_nick"),
                "must be a valid IRC nick (letter or one of []\\`_^{|} first, at most 30)",
            ));
        }
        validate_template(source, &key("puppet_nick_template"), net)?;
        validate_limits(source, i, &net.limits)?;
        validate_relays_and_channels(source, i, net)?;
    }
    Ok(())
}

fn validate_template(
    source: &Source<'_>,
    key: &str,
    net: &NetworkConfig,
) -> Result<(), ConfigError> {
    let template = &net.puppet_nick_template;
    if template.matches(NICK_PLACEHOLDER).count() != 1 {
        return Err(source.error(key, "must contain {nick} exactly once"));
    }
    // The shortest puppet nick must be valid, and leave room for the nick.
    let sample = template.replace(NICK_PLACEHOLDER, "a");
    if !is_valid_irc_nick(&sample, 24) {
        return Err(source.error(
            key,
            "around {nick} only nick characters are allowed (letters, digits, []\\`_^{|}-), \
             at most 23 of them",
        ));
    }
    if irc_lowercase(&sample) == irc_lowercase(&net.bot_nick) {
        return Err(source.error(key, "puppet nicks would collide with bot_nick"));
    }
    Ok(())
}

/// The highest `connects_per_second` / `messages_per_second` accepted: far
/// above what a public network allows, but reachable on a private server
/// with flood control off (the relay benchmark's ngIRCd).
const MAX_RATE: f64 = 100_000.0;

fn validate_limits(
    source: &Source<'_>,
    i: usize,
    limits: &NetworkLimits,
) -> Result<(), ConfigError> {
    let key = |leaf: &str| format!("irc.networks[{i}].limits.{leaf}");
    if limits.max_puppets == 0 {
        return Err(source.error(&key("max_puppets"), "must be at least 1"));
    }
    for (leaf, value) in [
        ("connects_per_second", limits.connects_per_second),
        ("messages_per_second", limits.messages_per_second),
    ] {
        if !(value.is_finite() && value > 0.0 && value <= MAX_RATE) {
            return Err(source.error(&key(leaf), "must be a number above 0 (at most 100000)"));
        }
    }
    if limits.message_burst == 0 {
        return Err(source.error(&key("message_burst"), "must be at least 1"));
    }
    if limits.idle_timeout_s == 0 {
        return Err(source.error(&key("idle_timeout_s"), "must be at least 1"));
    }
    Ok(())
}

fn validate_relays_and_channels(
    source: &Source<'_>,
    i: usize,
    net: &NetworkConfig,
) -> Result<(), ConfigError> {
    let mut relays = HashSet::new();
    for (r, relay) in net.relays.iter().enumerate() {
        if !relays.insert(relay.uin) {
            return Err(source.error(
                &format!("irc.networks[{i}].relays[{r}].uin"),
                format!("QQ {} is listed twice", relay.uin),
            ));
        }
    }
    let mut channels = HashSet::new();
    let mut chats = HashSet::new();
    for (c, mapping) in net.channels.iter().enumerate() {
        let key = |leaf: &str| format!("irc.networks[{i}].channels[{c}].{leaf}");
        if !is_valid_channel(&mapping.channel) {
            return Err(source.error(
                &key("channel"),
                "must be a #channel (at most 50 bytes, no spaces, commas or colons)",
            ));
        }
        if !channels.insert(irc_lowercase(&mapping.channel)) {
            return Err(source.error(
                &key("channel"),
                format!("{} is mapped twice", mapping.channel),
            ));
        }
        let chat = match (mapping.group, mapping.buddy) {
            (Some(g), None) => format!("group:{g}"),
            (None, Some(b)) => format!("buddy:{b}"),
            _ => {
                return Err(source.error(
                    &key("group"),
                    "give either group (a QQ group number) or buddy (a QQ number)",
                ))
            }
        };
        let Some(relay) = mapping.relay_uin(net) else {
            return Err(source.error(
                &key("relay"),
                "name the relay's QQ number (the network has no single relay)",
            ));
        };
        if !relays.contains(&relay) {
            return Err(source.error(
                &key("relay"),
                format!("QQ {relay} is not in this network's relays"),
            ));
        }
        if !chats.insert((relay, chat.clone())) {
            return Err(source.error(
                &key("channel"),
                format!("{chat} is already bridged through relay {relay} on this network"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::load_str;

    fn load(networks: &str) -> Result<super::super::Config, super::super::ConfigError> {
        let text = format!("qq:\n  server: http://127.0.0.1:8000\nirc:\n  networks:\n{networks}");
        load_str("test.yaml", &text, &|var| {
            (var == "SASL_PW").then(|| "from-env".to_owned())
        })
    }

    const GOOD: &str = "    - name: libera
      host: irc.libera.chat
      tls: true
      sasl: { username: qqbridge, password: \"${SASL_PW}\" }
      relays: [{ uin: 10001, password: demo, protocol: webqq }]
      channels:
        - { channel: \"#qq\", group: 20001 }
        - { channel: \"#buddy\", buddy: 10002, relay: 10001 }
";

    #[test]
    fn a_full_network_loads_with_defaults_and_env_secrets() {
        let config = load(GOOD).unwrap();
        let net = &config.irc.networks[0];
        assert_eq!(net.port(), 6697);
        assert_eq!(net.bot_nick, "qqbridge");
        assert_eq!(net.puppet_nick_template, "{nick}[qq]");
        assert_eq!(net.limits.max_puppets, 100);
        assert_eq!(net.sasl.as_ref().unwrap().password.expose(), "from-env");
        assert_eq!(net.channels[0].relay_uin(net), Some(10001));
    }

    #[test]
    fn mistakes_are_refused_with_their_key() {
        let cases = [
            (
                GOOD.replace("name: libera", "name: \"li bera\""),
                "irc.networks[0].name",
            ),
            (
                GOOD.replace("\"#qq\", group", "\"qq\", group"),
                "irc.networks[0].channels[0].channel",
            ),
            (
                GOOD.replace("group: 20001", "group: 20001, buddy: 3"),
                "irc.networks[0].channels[0].group",
            ),
            (
                GOOD.replace("relay: 10001", "relay: 999"),
                "irc.networks[0].channels[1].relay",
            ),
            (
                GOOD.replace("\"#buddy\"", "\"#QQ\""),
                "irc.networks[0].channels[1].channel",
            ),
            (
                GOOD.replace(
                    "tls: true",
                    "tls: true\n      puppet_nick_template: \"qq {nick}\"",
                ),
                "irc.networks[0].puppet_nick_template",
            ),
            (
                GOOD.replace(
                    "tls: true",
                    "tls: true\n      puppet_nick_template: \"{nick}{nick}\"",
                ),
                "irc.networks[0].puppet_nick_template",
            ),
            (
                GOOD.replace(
                    "tls: true",
                    "tls: true\n      limits: { messages_per_second: 0 }",
                ),
                "irc.networks[0].limits.messages_per_second",
            ),
            (
                GOOD.replace("tls: true", "tls: false\n      tls_ca_file: /x.pem"),
                "irc.networks[0].tls_ca_file",
            ),
        ];
        for (text, key) in cases {
            let e = load(&text).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
        }
        let e = load(&format!(
            "{GOOD}{}",
            GOOD.replace("#qq", "#other").replace("#buddy", "#b2")
        ))
        .unwrap_err();
        assert!(e.message.contains("used twice"), "{e}");
        let e = load(&GOOD.replace("${SASL_PW}", "${NOT_SET}")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("irc.networks[0].sasl.password"));
    }

    #[test]
    fn an_empty_list_is_fine_and_a_network_is_a_chat_side() {
        let text = "qq:\n  server: http://127.0.0.1:8000\nirc:\n  networks: []\n  gateway: { enabled: true }\n";
        assert!(load_str("t.yaml", text, &|_| None).is_ok());
        assert!(load(GOOD).is_ok(), "networks alone are enough to run");
    }
}
