//! Deliveries from the core: the gateway as a [`ChatSide`]. Each
//! [`SideEvent`] becomes IRC lines for the connection authenticated as the
//! user; with no such connection the event stays queued (`Retry`) and is
//! replayed, in order, when the user comes back.

use std::sync::Weak;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use irc::proto::message::Tag;
use irc::proto::{Command, Message};

use crate::core::bot::friend_request_lines;
use crate::core::model::{ChatId, GroupNumber, RichText, Uin};
use crate::core::side::{ChatSide, DeliveryError, SideEvent};
use crate::core::text::{irc_payload_budget, render_irc_lines, FaceStyle};

use super::buddies::{person_prefix, Naming, SyncCtx, UserView};
use super::connection::ClientLink;
use super::control_channel::bot_notice;
use super::server_time::{format_tag, unix_seconds};
use super::sessions::Gateway;
use super::{CONTROL_CHANNEL, SIDE_NAME};

/// Longest wait for a client to take a delivery; one that cannot is not
/// reading and is disconnected (the event is delivered again later).
const MIN_FLUSH_WAIT: Duration = Duration::from_secs(1);

/// What the core holds: a weak link, so the core and the gateway do not
/// keep each other alive.
pub(crate) struct GatewaySide(pub Weak<Gateway>);

#[async_trait]
impl ChatSide for GatewaySide {
    fn name(&self) -> &str {
        SIDE_NAME
    }

    async fn deliver(&self, user: &str, event: &SideEvent) -> Result<(), DeliveryError> {
        match self.0.upgrade() {
            Some(gw) => gw.deliver(user, event).await,
            None => Err(DeliveryError::Retry(
                "the IRC gateway is stopped".to_owned(),
            )),
        }
    }
}

/// A message being rendered.
struct Incoming<'a> {
    owner: Uin,
    chat: ChatId,
    sender: Uin,
    sender_name: &'a str,
    text: &'a RichText,
    message_id: &'a str,
    at_ms: u64,
}

impl Gateway {
    pub(crate) async fn deliver(&self, user: &str, event: &SideEvent) -> Result<(), DeliveryError> {
        if matches!(event, SideEvent::Sent { .. }) {
            return Ok(());
        }
        let Some(link) = self.attached_link(user) else {
            return Err(DeliveryError::Retry(
                "no IRC client is connected for this user".to_owned(),
            ));
        };
        {
            let view = self.view(user);
            let mut v = view.lock().await;
            if v.shown.client != Some(link.id) {
                return Err(DeliveryError::Retry(
                    "the IRC client is still being set up".to_owned(),
                ));
            }
            let lines = self.render(user, &mut v, &link, event).await;
            if !link.send_all(lines) {
                return Err(DeliveryError::Retry("the IRC client went away".to_owned()));
            }
        }
        let wait = self.settings.ping_timeout.max(MIN_FLUSH_WAIT);
        if !link.flush(wait).await {
            link.close("Not reading (send timeout)");
            return Err(DeliveryError::Retry(
                "the IRC client is not reading".to_owned(),
            ));
        }
        Ok(())
    }

    fn sync_lines(&self, v: &mut UserView, link: &ClientLink) -> Vec<Message> {
        let (numerics, me, caps) = self.sync_ctx_parts(link);
        let ctx = SyncCtx {
            numerics: &numerics,
            me,
            caps,
            since: unix_seconds(self.created),
        };
        v.sync(&ctx)
    }

    /// A notice from the bot in `&qq` (or to the user if they left it).
    fn notice(&self, v: &UserView, link: &ClientLink, lines: &[String]) -> Vec<Message> {
        let target = if v.shown.control.is_some() {
            CONTROL_CHANNEL.to_owned()
        } else {
            link.nick()
        };
        bot_notice(&self.settings.server_name, &target, lines)
    }

    async fn render(
        &self,
        user: &str,
        v: &mut UserView,
        link: &ClientLink,
        event: &SideEvent,
    ) -> Vec<Message> {
        match event {
            SideEvent::Message {
                owner,
                chat,
                sender,
                sender_name,
                text,
                message_id,
                at_ms,
            } => {
                let incoming = Incoming {
                    owner: *owner,
                    chat: *chat,
                    sender: *sender,
                    sender_name,
                    text,
                    message_id,
                    at_ms: *at_ms,
                };
                self.render_message(user, v, link, incoming).await
            }
            SideEvent::Presence { uin, presence, .. } => {
                if let Some(current) = v.buddies.get_mut(uin) {
                    *current = presence.as_seen_by_others();
                }
                self.sync_lines(v, link)
            }
            SideEvent::FriendRequest { uin, message, .. } => {
                self.notice(v, link, &friend_request_lines(*uin, message))
            }
            SideEvent::FriendAccepted { uin, .. } => {
                self.refresh_view(user, v, link).await;
                let mut out = self.sync_lines(v, link);
                let nick = v
                    .nick_of(*uin)
                    .map(|n| format!(" (now {n})"))
                    .unwrap_or_default();
                out.extend(self.notice(
                    v,
                    link,
                    &[format!("{uin} accepted your buddy request{nick}")],
                ));
                out
            }
            SideEvent::FriendRefused { uin, reason, .. } => {
                let why = if reason.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", reason.trim())
                };
                self.notice(v, link, &[format!("{uin} refused your buddy request{why}")])
            }
            SideEvent::LoggedIn { .. } => {
                v.user_logged_out = None;
                self.refresh_view(user, v, link).await;
                self.sync_lines(v, link)
            }
            SideEvent::LoggedOut { owner, reason } => {
                let mut out = Vec::new();
                let current = self.core.login_of(user);
                if current.is_none() || current == Some(*owner) {
                    self.refresh_view(user, v, link).await;
                    out.extend(self.sync_lines(v, link));
                }
                if v.user_logged_out == Some(*owner) {
                    v.user_logged_out = None;
                } else {
                    out.extend(self.notice(v, link, &[format!("QQ {owner}: {reason}")]));
                }
                out
            }
            SideEvent::SendFailed {
                chat,
                preview,
                reason,
                ..
            } => {
                let what = format!("not delivered: \u{201c}{preview}\u{201d} ({reason})");
                match chat {
                    ChatId::Group(group) => {
                        let target = v.groups.get(group).map(|g| g.name.clone());
                        match target {
                            Some(channel) => {
                                bot_notice(&self.settings.server_name, &channel, &[what])
                            }
                            None => self.notice(v, link, &[format!("to QQ group {group}: {what}")]),
                        }
                    }
                    ChatId::Buddy(uin) | ChatId::Session { uin, .. } => match v.nick_of(*uin) {
                        Some(nick) => vec![Message {
                            tags: None,
                            prefix: Some(person_prefix(nick, *uin)),
                            command: Command::NOTICE(link.nick(), what),
                        }],
                        None => self.notice(v, link, &[format!("to {uin}: {what}")]),
                    },
                }
            }
            SideEvent::Sent { .. } => Vec::new(),
            SideEvent::Notice { text } => self.notice(v, link, std::slice::from_ref(text)),
        }
    }

    async fn render_message(
        &self,
        user: &str,
        v: &mut UserView,
        link: &ClientLink,
        m: Incoming<'_>,
    ) -> Vec<Message> {
        let info = link.info();
        let naming = Naming {
            store: &*self.store,
            scope: user,
            own_nick: &info.nick,
        };
        let mut out = Vec::new();
        let from_me = m.sender == m.owner;
        let sender_prefix = if from_me {
            link.prefix()
        } else {
            let nick = v
                .name(&naming, m.sender, m.sender_name, m.sender_name)
                .await;
            person_prefix(&nick, m.sender)
        };
        let target = match m.chat {
            ChatId::Group(group) => {
                self.ensure_group(user, v, &naming, m.owner, group).await;
                if !from_me {
                    if let Some(g) = v.groups.get_mut(&group) {
                        g.members.insert(m.sender);
                    }
                }
                out.extend(self.sync_lines(v, link));
                match v.groups.get(&group) {
                    Some(g) => g.name.clone(),
                    None => return out,
                }
            }
            ChatId::Buddy(peer) | ChatId::Session { uin: peer, .. } => {
                if let ChatId::Session { via_group, .. } = m.chat {
                    v.session_via.insert(peer, via_group);
                }
                if from_me {
                    // Our own message sent from elsewhere: shown as sent by
                    // us to the buddy.
                    let name = peer.to_string();
                    v.name(&naming, peer, &name, &name).await
                } else {
                    info.nick.clone()
                }
            }
        };
        let budget = irc_payload_budget(sender_prefix.to_string().len(), target.len());
        let lines = render_irc_lines(m.text, FaceStyle::Emoji, budget);
        for (i, line) in lines.into_iter().enumerate() {
            let msgid = if i == 0 {
                m.message_id.to_owned()
            } else {
                format!("{}-{i}", m.message_id)
            };
            let mut tags = Vec::new();
            if !m.message_id.is_empty() {
                tags.push(Tag("msgid".to_owned(), Some(msgid)));
            }
            if m.at_ms > 0 {
                // The time QQ delivered it, not the time of this (possibly
                // replayed) line.
                let at = UNIX_EPOCH + Duration::from_millis(m.at_ms);
                tags.push(Tag("time".to_owned(), Some(format_tag(at))));
            }
            out.push(Message {
                tags: (!tags.is_empty()).then_some(tags),
                prefix: Some(sender_prefix.clone()),
                command: Command::PRIVMSG(target.clone(), line),
            });
        }
        out
    }

    /// Makes sure the view has a channel for `group`: reloads the groups,
    /// else makes a placeholder channel.
    async fn ensure_group(
        &self,
        user: &str,
        v: &mut UserView,
        naming: &Naming<'_>,
        owner: Uin,
        group: GroupNumber,
    ) {
        if v.groups.contains_key(&group) {
            return;
        }
        let groups = self.load_groups(user).await;
        if groups.iter().any(|g| g.number == group) {
            self.apply_groups(v, naming, owner, groups).await;
        }
        if !v.groups.contains_key(&group) {
            self.placeholder_group(v, owner, group).await;
        }
    }
}
