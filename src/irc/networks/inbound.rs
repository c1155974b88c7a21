//! What comes from IRC: IRC users' messages in bridged channels (read by
//! the bot only, so each is relayed once) on their way to the relay login
//! as `<nick> text`; commands sent privately to the bot; and private
//! messages to puppets from IRC users who logged in to QQ, which go to QQ
//! as theirs. Nothing from the bridge's own connections is relayed.

use std::collections::HashMap;
use std::sync::Arc;

use irc::proto::{Command, Message};

use crate::core::model::{ChatId, RichText, Uin};
use crate::core::outbox::Carried;
use crate::core::text::{irc_lowercase, parse_ctcp, parse_irc};

use super::courier::{FromIrc, RelayLine};
use super::ids::{from_irc_destination, person_user_id};
use super::network::Network;

/// `<nick> text`, `* nick text` or `-nick- text`: an IRC user's words as a
/// relayed QQ message (formatting codes stripped, faces and links parsed).
/// `None` for CTCP requests other than ACTION and for empty messages.
pub(crate) fn relayed_text(nick: &str, text: &str, notice: bool) -> Option<RichText> {
    if let Some((command, _)) = parse_ctcp(text) {
        if !command.eq_ignore_ascii_case("ACTION") {
            return None;
        }
    }
    let mut rich = parse_irc(text);
    if rich.is_empty() {
        return None;
    }
    let prefix = if rich.action {
        format!("* {nick} ")
    } else if notice {
        format!("-{nick}- ")
    } else {
        format!("<{nick}> ")
    };
    rich.action = false;
    let mut prefixed = RichText::plain(prefix);
    for segment in rich.segments {
        match segment {
            crate::core::model::Segment::Text { text } => prefixed.push_text(&text),
            other => prefixed.segments.push(other),
        }
    }
    Some(prefixed)
}

fn is_channel(target: &str) -> bool {
    target.starts_with('#') || target.starts_with('&')
}

impl Network {
    /// What an IRC user said in a bridged channel, as seen by the bot, ready
    /// for the relay login; `None` for anything else (see
    /// [`Network::relay_channel_lines`] for where it goes).
    pub(crate) fn channel_line(&self, message: &Message) -> Option<FromIrc> {
        let (Command::PRIVMSG(channel, text) | Command::NOTICE(channel, text)) = &message.command
        else {
            return None;
        };
        let nick = message.source_nickname()?;
        if !is_channel(channel) || self.is_ours(nick) {
            return None;
        }
        let mapping = self.mappings.by_channel(channel)?;
        let notice = matches!(message.command, Command::NOTICE(..));
        Some(FromIrc {
            relay_user: mapping.relay_user,
            chat: mapping.chat,
            text: relayed_text(nick, text, notice)?,
            channel: mapping.channel,
        })
    }

    /// What the bot sees other than lines of bridged channels.
    pub(crate) async fn on_bot_message(self: &Arc<Self>, message: Message) {
        let Some(nick) = message.source_nickname().map(str::to_owned) else {
            return;
        };
        match &message.command {
            Command::PRIVMSG(target, text) | Command::NOTICE(target, text) => {
                // Channel lines were taken by `channel_line` (or are not
                // bridged); the bot's own are never relayed.
                if is_channel(target) || self.is_ours(&nick) {
                    return;
                }
                if !matches!(message.command, Command::NOTICE(..)) {
                    // Notices are never answered (RFC 2812), which also keeps
                    // two bots from talking to each other forever.
                    let net = self.clone();
                    let text = text.clone();
                    tokio::spawn(async move { net.on_command(&nick, &text).await });
                }
            }
            Command::QUIT(_) => self.nick_freed(&nick).await,
            Command::NICK(_) if !self.is_ours(&nick) => self.nick_freed(&nick).await,
            Command::KICK(channel, target, _)
                if self
                    .bot_link()
                    .is_some_and(|l| l.answers_to(&irc_lowercase(target))) =>
            {
                self.rejoin_later(channel.clone());
            }
            _ => {}
        }
    }

    /// Lines said in bridged channels, in the order they came, as read
    /// together from the connections. A channel with nothing waiting in its
    /// queue (and a relay logged in) skips it: its lines go straight to the
    /// core's durable queue for QQ, one store transaction for all the lines
    /// of one relay login instead of three writes a line and no task
    /// hand-off (README, Performance). Whether a channel skips is decided
    /// once for the whole burst, and bursts are read one at a time, so no
    /// line can pass another of its channel.
    pub(crate) async fn relay_channel_lines(&self, lines: Vec<FromIrc>) {
        if lines.is_empty() {
            return;
        }
        let mut skips: HashMap<String, bool> = HashMap::new();
        let mut straight: Vec<(String, Vec<RelayLine>)> = Vec::new();
        let mut queued = Vec::new();
        for line in lines {
            let destination = from_irc_destination(self.name(), &line.channel);
            let skip = *skips
                .entry(destination)
                .or_insert_with_key(|d| self.outbox.is_empty(d));
            if !skip {
                queued.push(line);
                continue;
            }
            match straight
                .iter_mut()
                .find(|(user, _)| *user == line.relay_user)
            {
                Some((_, run)) => run.push((line, None)),
                None => straight.push((line.relay_user.clone(), vec![(line, None)])),
            }
        }
        for (_, run) in straight {
            if let Carried::Later(why) = self.relay_to_qq(&run).await {
                tracing::debug!(network = %self.name(), lines = run.len(), %why,
                    "IRC lines queued for QQ");
                queued.extend(run.into_iter().map(|(line, _)| line));
            }
        }
        for line in queued {
            if let Err(e) = self.queue_from_irc(&line).await {
                tracing::error!(network = %self.name(), channel = %line.channel, error = %e,
                    "cannot queue an IRC message for QQ; it is lost");
            }
        }
    }

    pub(crate) async fn on_puppet_message(self: &Arc<Self>, uin: Uin, message: Message) {
        let Some(nick) = message.source_nickname().map(str::to_owned) else {
            return;
        };
        match &message.command {
            Command::PRIVMSG(_, text) if !self.is_ours(&nick) => {
                self.on_private_message(uin, &nick, text).await;
            }
            Command::KICK(channel, _, _) => {
                if let Some(puppet) = self.puppets.get(uin) {
                    puppet.forget_channel(channel);
                }
            }
            _ => {}
        }
    }

    /// An IRC user wrote to a puppet: with their own QQ login, it goes to
    /// that QQ user as their message.
    async fn on_private_message(&self, uin: Uin, nick: &str, text: &str) {
        if let Some((command, _)) = parse_ctcp(text) {
            if !command.eq_ignore_ascii_case("ACTION") {
                return;
            }
        }
        let rich = parse_irc(text);
        if rich.is_empty() {
            return;
        }
        let user = person_user_id(self.name(), nick);
        if self.core.login_of(&user).is_none() {
            let bot = self
                .bot_link()
                .map(|l| l.nick())
                .unwrap_or_else(|| self.settings.bot_nick.clone());
            self.tell(
                nick,
                &format!(
                    "You are not logged in to QQ, so this was not sent. \
                     To use your own QQ account: /msg {bot} login <qq number> <password>"
                ),
            )
            .await;
            return;
        }
        if let Err(e) = self
            .core
            .send_to_qq(&user, ChatId::Buddy(uin), rich, None)
            .await
        {
            self.tell(nick, &format!("not sent to QQ: {e}")).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irc_messages_are_prefixed_and_cleaned() {
        let plain =
            |r: RichText| crate::core::text::render_plain(&r, crate::core::text::FaceStyle::Name);
        assert_eq!(
            plain(relayed_text("bob", "\x02hi\x02 \x0304there", false).unwrap()),
            "<bob> hi there"
        );
        assert_eq!(
            plain(relayed_text("bob", "\x01ACTION waves\x01", false).unwrap()),
            "* bob waves"
        );
        assert_eq!(
            plain(relayed_text("bob", "psst", true).unwrap()),
            "-bob- psst"
        );
        assert!(relayed_text("bob", "\x01VERSION\x01", false).is_none());
        assert!(relayed_text("bob", "\x02\x02", false).is_none());
    }
}
