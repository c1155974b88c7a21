//! The network's bot: one connection that joins every bridged channel,
//! reads what IRC users say there (the only connection that does, so each
//! message is relayed once), answers commands sent to it privately, and
//! relays for puppets that cannot connect. It reconnects with backoff and
//! rejoins after a server restart.

use std::sync::Arc;
use std::time::Duration;

use irc::proto::Command;

use crate::backoff::Backoff;

use super::link::{Forward, Link, LinkSpec, LinkTag};
use super::network::Network;
use super::register::{LinkError, Registration};

const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(60);
/// Waits before rejoining a channel the bot was kicked from.
const REJOIN_DELAY: Duration = Duration::from_secs(5);
/// Nick fallbacks for the bot: `bot`, `bot_`, `bot__`...
const BOT_NICK_FALLBACKS: usize = 4;

impl Network {
    /// Keeps the bot connected until the network stops.
    pub async fn run_bot(self: Arc<Self>) {
        let mut backoff = Backoff::new(RECONNECT_FIRST, RECONNECT_MAX);
        while !self.is_stopping() {
            let opened = match self.gate.enter().await {
                Some(_permit) => self.open_bot().await,
                None => return,
            };
            match opened {
                Ok(link) => {
                    backoff.reset();
                    tracing::info!(network = %self.name(), nick = %link.nick(), "bot connected");
                    self.bot_up(&link).await;
                    let reason = link.closed().await;
                    self.set_bot_link(None);
                    if self.is_stopping() {
                        return;
                    }
                    tracing::warn!(network = %self.name(), %reason, "bot disconnected; reconnecting");
                }
                Err(e @ LinkError::Banned(_)) => {
                    tracing::error!(network = %self.name(), error = %e,
                        "the bot is banned from the network; retrying rarely");
                    for _ in 0..10 {
                        backoff.next_delay();
                    }
                }
                Err(e) => {
                    tracing::warn!(network = %self.name(), error = %e, "bot cannot connect; retrying");
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn open_bot(&self) -> Result<Arc<Link>, LinkError> {
        let base = &self.settings.bot_nick;
        let nicks: Vec<String> = (0..BOT_NICK_FALLBACKS)
            .map(|n| format!("{base}{}", "_".repeat(n)))
            .collect();
        let sasl = self
            .settings
            .sasl
            .as_ref()
            .map(|(user, password)| (user.as_str(), password));
        let spec = LinkSpec {
            server: &self.server,
            registration: Registration {
                password: self.server.password.as_ref(),
                sasl,
                nicks: &nicks,
                username: "qqbridge",
                realname: "QQ bridge bot (qqbridge)",
            },
            tag: LinkTag::Bot,
            forward: Forward::All,
            rate: self.settings.messages_per_second,
            burst: self.settings.message_burst,
        };
        Link::open(spec, self.events.clone()).await
    }

    /// The bot is registered: identify, join the bridged channels, then
    /// let everything waiting for the network go.
    async fn bot_up(&self, link: &Arc<Link>) {
        if let Some((service, password)) = &self.settings.nickserv {
            let identify =
                Command::PRIVMSG(service.clone(), format!("IDENTIFY {}", password.expose()));
            if link.send(identify).await.is_err() {
                return;
            }
        }
        for mapping in self.mappings.all() {
            self.bot_join(link, &mapping.channel).await;
        }
        self.set_bot_link(Some(link.clone()));
        for puppet in self.puppets.all() {
            puppet.reset_retry();
        }
        self.server_back.notify_waiters();
        if let Err(e) = self.wake_queues().await {
            tracing::error!(network = %self.name(), error = %e, "cannot read the delivery queues");
        }
    }

    pub(crate) async fn bot_join(&self, link: &Link, channel: &str) {
        match link.join(channel).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                tracing::warn!(network = %self.name(), %channel, %why, "the bot cannot join")
            }
            Err(e) => tracing::warn!(network = %self.name(), %channel, error = %e, "join failed"),
        }
    }

    /// The bot was kicked: back in a moment, if the channel is still bridged.
    pub(crate) fn rejoin_later(self: &Arc<Self>, channel: String) {
        let net = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REJOIN_DELAY).await;
            if net.mappings.by_channel(&channel).is_none() {
                return;
            }
            if let Some(link) = net.bot_link() {
                net.bot_join(&link, &channel).await;
            }
        });
    }
}
