//! A network's settings in the form the code uses them, from its
//! [`NetworkConfig`] (already validated).

use std::time::Duration;

use crate::config::{NetworkConfig, RelayConfig};
use crate::core::model::{ChatId, GroupNumber, Uin};
use crate::secret::Secret;

/// NICKLEN of RFC 2812, for servers that do not announce theirs.
pub(crate) const RFC_NICKLEN: usize = 9;

/// A channel mapping from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfiguredChannel {
    pub channel: String,
    pub relay: Uin,
    pub chat: ChatId,
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub name: String,
    pub bot_nick: String,
    pub sasl: Option<(String, Secret)>,
    /// (services nick, password).
    pub nickserv: Option<(String, Secret)>,
    pub puppet_nick_template: String,
    pub connect_members: bool,
    pub max_puppets: usize,
    pub connects_per_second: f64,
    pub messages_per_second: f64,
    pub message_burst: u32,
    pub idle_timeout: Duration,
    pub puppet_wait: Duration,
    pub relays: Vec<RelayConfig>,
    pub channels: Vec<ConfiguredChannel>,
}

impl Settings {
    pub fn from_config(config: &NetworkConfig) -> Settings {
        let limits = &config.limits;
        let channels = config
            .channels
            .iter()
            .filter_map(|m| {
                let chat = match (m.group, m.buddy) {
                    (Some(g), _) => ChatId::Group(GroupNumber(g)),
                    (None, Some(b)) => ChatId::Buddy(Uin(b)),
                    (None, None) => return None,
                };
                Some(ConfiguredChannel {
                    channel: m.channel.clone(),
                    relay: Uin(m.relay_uin(config)?),
                    chat,
                })
            })
            .collect();
        Settings {
            name: config.name.clone(),
            bot_nick: config.bot_nick.clone(),
            sasl: config
                .sasl
                .as_ref()
                .map(|s| (s.username.clone(), s.password.clone())),
            nickserv: config
                .nickserv
                .as_ref()
                .map(|n| (n.service.clone(), n.password.clone())),
            puppet_nick_template: config.puppet_nick_template.clone(),
            connect_members: config.connect_members,
            max_puppets: limits.max_puppets.max(1),
            connects_per_second: limits.connects_per_second,
            messages_per_second: limits.messages_per_second,
            message_burst: limits.message_burst.max(1),
            idle_timeout: Duration::from_secs(limits.idle_timeout_s.max(1)),
            puppet_wait: Duration::from_secs(limits.puppet_wait_s),
            relays: config.relays.clone(),
            channels,
        }
    }

    /// How often idle puppets are looked for: often enough that a puppet
    /// leaves close to its idle time, rarely enough to cost nothing.
    pub fn reaper_interval(&self) -> Duration {
        (self.idle_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(30))
    }
}
