//! What comes from IRC: IRC users' messages in bridged channels (read by
//! the bot only, so each is relayed once) on their way to the relay login
//! as `<nick> text`; commands sent privately to the bot; and private
//! messages to puppets from IRC users who logged in to QQ, which go to QQ
//! as theirs. Nothing from the bridge's own connections is relayed.

use std::sync::Arc;

use irc::proto::{Command, Message};

use crate::core::model::{ChatId, RichText, Uin};
use crate::core::outbox::Carried;
use crate::core::text::{irc_lowercase, parse_ctcp, parse_irc};

use super::courier::FromIrc;
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
    pub(crate) async fn on_bot_message(self: &Arc<Self>, message: Message) {
        let Some(nick) = message.source_nickname().map(str::to_owned) else {
            return;
        };
        match &message.command {
            Command::PRIVMSG(target, text) | Command::NOTICE(target, text) => {
                if self.is_ours(&nick) {
                    return;
                }
                let notice = matches!(message.command, Command::NOTICE(..));
                if is_channel(target) {
                    self.on_channel_message(target, &nick, text, notice).await;
                } else if !notice {
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

    async fn on_channel_message(&self, channel: &str, nick: &str, text: &str, notice: bool) {
        let Some(mapping) = self.mappings.by_channel(channel) else {
            return;
        };
        let Some(rich) = relayed_text(nick, text, notice) else {
            return;
        };
        let item = FromIrc {
            relay_user: mapping.relay_user,
            chat: mapping.chat,
            text: rich,
            channel: mapping.channel,
        };
        // With nothing waiting in the channel's queue and the relay logged
        // in, the line goes straight to the core's (durable) queue for QQ:
        // one store write instead of three and no task hand-off (README,
        // Performance). Lines are read one at a time, so none can pass it.
        if self.queue_is_empty(&from_irc_destination(self.name(), &item.channel)) {
            match self.relay_to_qq(&item, None).await {
                Carried::Later(why) => {
                    tracing::debug!(network = %self.name(), %channel, %why, "IRC line queued for QQ");
                }
                Carried::Done | Carried::Failed(_) => return,
            }
        }
        if let Err(e) = self.queue_from_irc(&item).await {
            tracing::error!(network = %self.name(), %channel, error = %e,
                "cannot queue an IRC message for QQ; it is lost");
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
