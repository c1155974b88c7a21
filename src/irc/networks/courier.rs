//! The network's delivery queues (a [`crate::core::outbox::Outbox`] of its
//! own, so a message survives a bridge restart and a target's messages go
//! out in order): QQ messages to channels and nicks, spoken by the sender's
//! puppet or, when it cannot connect, by the bot as `<nick> text`; and IRC
//! users' messages to the relay login.
//!
//! A message counts as delivered only when the server has processed it
//! (see [`Link::confirm`]): a server restart in the middle re-sends it
//! instead of losing it.

use async_trait::async_trait;
use irc::proto::Command;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::core::bridge::ToQq;
use crate::core::model::{ChatId, RichText, Uin};
use crate::core::outbox::{Carried, Courier};
use crate::core::side::chat_id_serde;
use crate::core::text::{irc_payload_budget, render_irc_lines, FaceStyle};
use crate::core::CoreError;
use crate::store::{MessageLink, NewOutboxItem, OutboxItem, StoreError};

use super::ids::{from_irc_destination, network_scope, to_irc_destination, SIDE_NAME};
use super::link::{Link, LinkDown};
use super::network::Network;
use super::puppets::{Puppet, Unavailable};

/// Queued items a delivery looks ahead at to connect their puppets early.
const PREFETCH: u32 = 16;

/// Messages of one puppet to one target sent behind a single confirming
/// PING (see [`Network::carry_run_to_irc`]).
const MAX_RUN: usize = 32;

/// Who says a message on IRC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Voice {
    /// The puppet of a QQ user; `name` is how QQ named them.
    Puppet { uin: Uin, name: String },
    /// The bot, with a text before each line (`<nick> `, `[group] `).
    Bot {
        #[serde(default)]
        prefix: String,
    },
}

/// Something to say on IRC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ToIrc {
    /// A channel or a nick.
    pub target: String,
    pub voice: Voice,
    pub text: RichText,
    /// NOTICE instead of PRIVMSG (the bot's own words).
    #[serde(default)]
    pub notice: bool,
}

/// A line for the relay login with the id of the queue item carrying it,
/// if any (see [`Network::relay_to_qq`]).
pub(crate) type RelayLine = (FromIrc, Option<i64>);

/// What an IRC user said in a bridged channel, for the relay login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FromIrc {
    pub relay_user: String,
    #[serde(with = "chat_id_serde")]
    pub chat: ChatId,
    pub text: RichText,
    /// Where to report a failure.
    pub channel: String,
}

fn is_channel(target: &str) -> bool {
    target.starts_with('#') || target.starts_with('&')
}

/// How a delivery through a puppet ended.
enum Spoken {
    Done,
    /// A private message to a nick that is not on IRC now.
    Absent,
}

enum PuppetFailure {
    /// The puppet cannot speak: the bot relays.
    Unavailable(Unavailable),
    /// The connection dropped mid-way: try again later (in order).
    Down(LinkDown),
    Store(StoreError),
}

impl Network {
    pub(crate) async fn queue_to_irc(&self, item: &ToIrc) -> Result<(), StoreError> {
        let payload =
            serde_json::to_string(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.push(&to_irc_destination(self.name(), &item.target), &payload)
            .await
    }

    pub(crate) async fn queue_from_irc(&self, item: &FromIrc) -> Result<(), StoreError> {
        let payload =
            serde_json::to_string(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.push(&from_irc_destination(self.name(), &item.channel), &payload)
            .await
    }

    /// Stored before it returns. Into an idle queue for IRC, the line is on
    /// its way while it is being stored (see [`Courier::carries_unstored`]).
    async fn push(&self, destination: &str, payload: &str) -> Result<(), StoreError> {
        let Some(courier) = self.courier() else {
            return Ok(());
        };
        let item = NewOutboxItem {
            link: None,
            lane: destination.to_owned(),
            payload: payload.to_owned(),
        };
        self.outbox
            .push_all(&courier, destination, vec![item], None)
            .await?;
        Ok(())
    }

    async fn carry_to_irc(&self, destination: &str, item: &OutboxItem) -> Carried {
        let out: ToIrc = match serde_json::from_str(&item.payload) {
            Ok(o) => o,
            Err(e) => return Carried::Failed(format!("unreadable queue item: {e}")),
        };
        let Some(bot) = self.bot_link() else {
            return Carried::Later(format!("not connected to {}", self.name()));
        };
        let (uin, name) = match &out.voice {
            Voice::Bot { prefix } => return self.carry_as_bot(&bot, &out, prefix).await,
            Voice::Puppet { uin, name } => (*uin, name.clone()),
        };
        match self.speak_as_puppet(destination, &out, uin, &name).await {
            Ok(Spoken::Done) => Carried::Done,
            Ok(Spoken::Absent) => Carried::Later(format!("{} is not on IRC", out.target)),
            Err(PuppetFailure::Down(e)) => Carried::Later(e.to_string()),
            Err(PuppetFailure::Store(e)) => Carried::Later(e.to_string()),
            Err(PuppetFailure::Unavailable(why)) => {
                let nick = self
                    .puppets
                    .get(uin)
                    .map(|p| p.nick.clone())
                    .unwrap_or_else(|| name.clone());
                tracing::debug!(network = %self.name(), %nick, reason = %why, "the bot relays for a puppet");
                let prefix = if out.text.action {
                    format!("* {nick} ")
                } else {
                    format!("<{nick}> ")
                };
                self.carry_as_bot(&bot, &out, &prefix).await
            }
        }
    }

    async fn carry_as_bot(&self, bot: &Link, out: &ToIrc, prefix: &str) -> Carried {
        if is_channel(&out.target) && !bot.is_joined(&out.target) {
            self.bot_join(bot, &out.target).await;
        }
        bot.take_undelivered(&out.target);
        let mut text = out.text.clone();
        text.action = false;
        let budget =
            irc_payload_budget(bot.prefix_len(), out.target.len()).saturating_sub(prefix.len());
        let lines = render_irc_lines(&text, FaceStyle::Emoji, budget);
        for line in lines {
            let line = format!("{prefix}{line}");
            let command = if out.notice {
                Command::NOTICE(out.target.clone(), line)
            } else {
                Command::PRIVMSG(out.target.clone(), line)
            };
            if let Err(e) = bot.send(command).await {
                return Carried::Later(e.to_string());
            }
        }
        match bot.confirm().await {
            Ok(()) if bot.take_undelivered(&out.target) => {
                let why = format!("the server refused the bot's message to {}", out.target);
                // The bot's own notices to someone gone are not kept;
                // messages wait until the target can be reached.
                if out.notice && !is_channel(&out.target) {
                    Carried::Failed(why)
                } else {
                    Carried::Later(why)
                }
            }
            Ok(()) => Carried::Done,
            Err(e) => Carried::Later(e.to_string()),
        }
    }

    async fn speak_as_puppet(
        &self,
        destination: &str,
        out: &ToIrc,
        uin: Uin,
        name: &str,
    ) -> Result<Spoken, PuppetFailure> {
        let puppet = self.puppet(uin, name).await.map_err(PuppetFailure::Store)?;
        let _busy = puppet.busy();
        if puppet.live_link().is_none() {
            self.prefetch(destination);
        }
        let wait = if puppet.is_failing() {
            std::time::Duration::ZERO
        } else {
            self.settings.puppet_wait
        };
        let link = self
            .puppet_link(&puppet, Instant::now() + wait)
            .await
            .map_err(PuppetFailure::Unavailable)?;
        if is_channel(&out.target) {
            self.puppet_join(&puppet, &link, &out.target).await?;
        }
        link.take_undelivered(&out.target);
        let budget = irc_payload_budget(link.prefix_len(), out.target.len());
        for line in render_irc_lines(&out.text, FaceStyle::Emoji, budget) {
            link.send(Command::PRIVMSG(out.target.clone(), line))
                .await
                .map_err(PuppetFailure::Down)?;
        }
        link.confirm().await.map_err(PuppetFailure::Down)?;
        puppet.touch();
        if link.take_undelivered(&out.target) {
            if !is_channel(&out.target) {
                return Ok(Spoken::Absent);
            }
            // Banned or moderated in the channel: the bot speaks for it.
            puppet.note_refusal(&out.target);
            return Err(PuppetFailure::Unavailable(Unavailable::Refused(
                "cannot send to the channel".to_owned(),
            )));
        }
        Ok(Spoken::Done)
    }

    async fn puppet_join(
        &self,
        puppet: &Puppet,
        link: &Link,
        channel: &str,
    ) -> Result<(), PuppetFailure> {
        if link.is_joined(channel) {
            return Ok(());
        }
        if let Some(age) = puppet.refused_recently(channel) {
            return Err(PuppetFailure::Unavailable(Unavailable::Refused(format!(
                "refused {}s ago",
                age.as_secs()
            ))));
        }
        puppet.want_channel(channel);
        match link.join(channel).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => {
                puppet.note_refusal(channel);
                Err(PuppetFailure::Unavailable(Unavailable::Refused(why)))
            }
            Err(e) => Err(PuppetFailure::Down(e)),
        }
    }

    /// Connects (and joins) the puppets of the next queued messages in the
    /// background, so a burst from many new speakers connects them in
    /// parallel (within the connect gate) rather than one by one.
    fn prefetch(&self, destination: &str) {
        let Some(net) = self.myself() else {
            return;
        };
        let destination = destination.to_owned();
        tokio::spawn(async move {
            let Ok(items) = net.store.pending(&destination, PREFETCH).await else {
                return;
            };
            for item in items.iter().skip(1) {
                let Ok(out) = serde_json::from_str::<ToIrc>(&item.payload) else {
                    continue;
                };
                let Voice::Puppet { uin, name } = &out.voice else {
                    continue;
                };
                let Ok(puppet) = net.puppet(*uin, name).await else {
                    continue;
                };
                if puppet.live_link().is_some() || puppet.connecting.try_lock().is_err() {
                    continue;
                }
                let net = net.clone();
                let target = out.target.clone();
                tokio::spawn(async move {
                    let deadline = Instant::now() + net.settings.puppet_wait;
                    if let Ok(link) = net.puppet_link(&puppet, deadline).await {
                        if is_channel(&target) {
                            let _ = net.puppet_join(&puppet, &link, &target).await;
                        }
                    }
                });
            }
        });
    }

    fn is_from_irc(&self, destination: &str) -> bool {
        destination
            .strip_prefix(SIDE_NAME)
            .and_then(|d| d.strip_prefix(':'))
            .and_then(|d| d.strip_prefix(self.name()))
            .is_some_and(|d| d.starts_with(":from:"))
    }

    /// A burst from one QQ speaker (a busy group, a pasted conversation)
    /// goes out as consecutive PRIVMSGs followed by one PING, rather than a
    /// PING round trip after each message: the PONG confirms them all, so
    /// they are removed from the queue together. Only for the plain case,
    /// a puppet that is connected and already in the channel; `None` sends
    /// the head alone the usual way (connecting, joining, the bot relaying,
    /// refusals). Order holds because a run never mixes speakers.
    async fn carry_run_to_irc(&self, items: &[OutboxItem]) -> Option<Vec<Carried>> {
        let mut run = Vec::new();
        for item in items.iter().take(MAX_RUN) {
            let Ok(out) = serde_json::from_str::<ToIrc>(&item.payload) else {
                break;
            };
            let Voice::Puppet { uin, .. } = out.voice else {
                break;
            };
            let joins_run = run.first().is_none_or(|(first, head): &(Uin, ToIrc)| {
                *first == uin && head.target == out.target
            });
            if out.notice || !joins_run {
                break;
            }
            run.push((uin, out));
        }
        let (uin, first) = run.first()?;
        if run.len() < 2 {
            return None;
        }
        let target = first.target.clone();
        let puppet = self.puppets.get(*uin)?;
        let _busy = puppet.busy();
        let link = puppet.live_link()?;
        if puppet.is_failing()
            || (is_channel(&target)
                && (!link.is_joined(&target) || puppet.refused_recently(&target).is_some()))
        {
            return None;
        }
        // Refusals seen before this run are not this run's.
        link.take_undelivered(&target);
        let budget = irc_payload_budget(link.prefix_len(), target.len());
        for (_, out) in &run {
            for line in render_irc_lines(&out.text, FaceStyle::Emoji, budget) {
                if let Err(e) = link.send(Command::PRIVMSG(target.clone(), line)).await {
                    return Some(vec![Carried::Later(e.to_string())]);
                }
            }
        }
        if let Err(e) = link.confirm().await {
            return Some(vec![Carried::Later(e.to_string())]);
        }
        puppet.touch();
        if link.take_undelivered(&target) {
            // Which message was refused is unknown: the head goes again the
            // usual way, which notes the refusal (a channel: the bot relays
            // from then on; a nick: it waits until they are back).
            return None;
        }
        Some(vec![Carried::Done; run.len()])
    }

    /// A run of a channel's queued lines goes to the core's queue for QQ
    /// in one transaction, each linked by its queue item's id. An
    /// unreadable head goes alone (failed); the run stops before any later
    /// unreadable item, or a line for another relay login.
    async fn carry_run_to_qq(&self, items: &[OutboxItem]) -> Vec<Carried> {
        let mut lines: Vec<RelayLine> = Vec::new();
        for item in items.iter().take(MAX_RUN) {
            match serde_json::from_str::<FromIrc>(&item.payload) {
                Ok(from)
                    if lines
                        .first()
                        .is_none_or(|(f, _)| f.relay_user == from.relay_user) =>
                {
                    lines.push((from, Some(item.id)));
                }
                Err(e) if lines.is_empty() => {
                    return vec![Carried::Failed(format!("unreadable queue item: {e}"))];
                }
                _ => break,
            }
        }
        match self.relay_to_qq(&lines).await {
            Carried::Later(why) => vec![Carried::Later(why)],
            outcome => vec![outcome; lines.len()],
        }
    }

    /// Hands IRC users' words (all for one relay login) to the core's
    /// queue for QQ as the relay login's messages, in one transaction: all
    /// or none. A line's queue id, if it has one, names the message for
    /// good: when a crash makes this queue carry a run again, the core
    /// knows the link and does not queue it for QQ a second time. Without
    /// one (straight from the IRC connection, nothing to carry again) no
    /// link is needed. `Failed` means the channels have been told why.
    pub(crate) async fn relay_to_qq(&self, lines: &[RelayLine]) -> Carried {
        let Some((first, _)) = lines.first() else {
            return Carried::Done;
        };
        let relay_user = &first.relay_user;
        let queued = match self.core.login_of(relay_user) {
            Some(owner) => {
                let messages = lines
                    .iter()
                    .map(|(from, queue_id)| ToQq {
                        chat: from.chat,
                        text: from.text.clone(),
                        origin_id: None,
                        link: queue_id.map(|id| MessageLink {
                            side: network_scope(self.name()),
                            side_id: id.to_string(),
                            owner,
                            chat: from.chat,
                            message: crate::core::bridge::new_message_id(),
                        }),
                    })
                    .collect();
                self.core
                    .send_all_to_qq(relay_user, messages)
                    .await
                    .map(|_| ())
            }
            None => Err(CoreError::NotLoggedIn),
        };
        match queued {
            Ok(()) => Carried::Done,
            Err(CoreError::NotLoggedIn) => {
                // A configured relay still logging in for the first time
                // has no stored login yet, but will come: its lines wait.
                let stored = if self.is_configured_relay(relay_user) {
                    Ok(true)
                } else {
                    self.store
                        .logins_of(relay_user)
                        .await
                        .map(|l| !l.is_empty())
                };
                match stored {
                    Ok(false) => {
                        self.tell_not_relayed(lines, "no QQ login relays this channel")
                            .await;
                        Carried::Failed("the relay is not logged in".to_owned())
                    }
                    _ => Carried::Later("the relay's QQ login is not up yet".to_owned()),
                }
            }
            Err(CoreError::Store(e)) => Carried::Later(e.to_string()),
            // The queue limit guards QQ from one person's flood; a relay
            // carries a whole channel, whose lines are paced by the IRC
            // server already. They wait in the channel's own durable queue
            // (in order, woken by every new line and when the relay's queue runs
            // empty) instead of being refused.
            Err(e @ CoreError::QueueFull(_)) => {
                self.hold_back_for(relay_user);
                Carried::Later(e.to_string())
            }
            Err(e) => {
                self.tell_not_relayed(lines, &e.to_string()).await;
                Carried::Failed(e.to_string())
            }
        }
    }

    /// Tells each channel of `lines` once that its lines were not relayed,
    /// and why (a notice per line would flood a busy channel).
    async fn tell_not_relayed(&self, lines: &[RelayLine], why: &str) {
        let mut channels: Vec<(&str, usize)> = Vec::new();
        for (line, _) in lines {
            match channels.iter_mut().find(|(c, _)| *c == line.channel) {
                Some((_, n)) => *n += 1,
                None => channels.push((&line.channel, 1)),
            }
        }
        for (channel, n) in channels {
            let text = match n {
                1 => format!("not relayed to QQ: {why}"),
                n => format!("{n} lines not relayed to QQ: {why}"),
            };
            self.tell(channel, &text).await;
        }
    }

    /// A notice from the bot to a channel or nick.
    pub(crate) async fn tell(&self, target: &str, text: &str) {
        let item = ToIrc {
            target: target.to_owned(),
            voice: Voice::Bot {
                prefix: String::new(),
            },
            text: RichText::plain(text),
            notice: true,
        };
        if let Err(e) = self.queue_to_irc(&item).await {
            tracing::error!(network = %self.name(), error = %e, "cannot queue a bot notice");
        }
    }
}

#[async_trait]
impl Courier for Network {
    async fn carry(&self, destination: &str, item: &OutboxItem) -> Carried {
        if self.is_from_irc(destination) {
            let outcomes = self.carry_run_to_qq(std::slice::from_ref(item)).await;
            outcomes.into_iter().next().unwrap_or(Carried::Done)
        } else {
            self.carry_to_irc(destination, item).await
        }
    }

    async fn carry_run(&self, destination: &str, items: &[OutboxItem]) -> Vec<Carried> {
        let Some(head) = items.first() else {
            return Vec::new();
        };
        if self.is_from_irc(destination) {
            return self.carry_run_to_qq(items).await;
        }
        if let Some(outcomes) = self.carry_run_to_irc(items).await {
            return outcomes;
        }
        vec![self.carry(destination, head).await]
    }

    /// Speaking on IRC never looks at queue ids; relaying to QQ links each
    /// line by its id ([`Network::relay_to_qq`]).
    fn carries_unstored(&self, destination: &str) -> bool {
        !self.is_from_irc(destination)
    }
}
