//! Deliveries from the core: the Matrix side as a [`ChatSide`]. Each
//! [`SideEvent`] for a Matrix user becomes work in a room: a portal is
//! found or created (this needs the homeserver: while it is down the event
//! stays in the core's outbox, `Retry`, in order), then the messages are
//! put in the room's durable send queue.

use std::sync::Weak;

use async_trait::async_trait;

use crate::core::bot::friend_request_lines;
use crate::core::model::{ChatId, Contact, RichText, Segment, Uin};
use crate::core::side::{ChatSide, DeliveryError, SideEvent};

use super::ids::matrix_to;
use super::room_queue::RoomOp;
use super::{content, Matrix, MatrixError, SIDE_NAME};

/// The Matrix side as the core holds it (weak: the core and the side do
/// not keep each other alive).
pub(crate) struct MatrixSide(pub Weak<Matrix>);

#[async_trait]
impl ChatSide for MatrixSide {
    fn name(&self) -> &str {
        SIDE_NAME
    }

    async fn deliver(&self, user: &str, event: &SideEvent) -> Result<(), DeliveryError> {
        let Some(matrix) = self.0.upgrade() else {
            return Err(DeliveryError::Retry(
                "the Matrix side is stopped".to_owned(),
            ));
        };
        matrix.deliver(user, event).await.map_err(|e| match e {
            MatrixError::Homeserver(h) if !h.is_transient() => {
                DeliveryError::Permanent(h.to_string())
            }
            MatrixError::BadId(id) => DeliveryError::Permanent(id),
            e => DeliveryError::Retry(e.to_string()),
        })
    }
}

/// A message's origin id as given to the core: the room and the event, so
/// the outcome (`Sent`, `SendFailed`) finds its way back.
pub fn origin_id(room: &str, event_id: &str) -> String {
    format!("{room} {event_id}")
}

fn split_origin(origin: &str) -> Option<(&str, &str)> {
    origin.split_once(' ')
}

impl Matrix {
    async fn deliver(&self, user: &str, event: &SideEvent) -> Result<(), MatrixError> {
        let is_relay = user == self.relay_user();
        match event {
            SideEvent::Message {
                owner,
                chat,
                sender,
                sender_name,
                text,
                ..
            } => {
                if is_relay {
                    // The relay account's own view: its messages reach the
                    // rooms through the sessions of the users who see them.
                    return Ok(());
                }
                self.deliver_message(user, *owner, *chat, *sender, sender_name, text)
                    .await
            }
            SideEvent::Presence { uin, presence, .. } => {
                if !self.settings.presence_from_qq || is_relay {
                    return Ok(());
                }
                let nick = self.core.contact(user, *uin).map(|c| c.nick);
                self.set_ghost_presence(*uin, *presence, nick.as_deref())
                    .await
            }
            SideEvent::FriendRequest { uin, message, .. } => {
                let text = friend_request_lines(*uin, message).join("\n");
                self.bot_notice(user, &text).await
            }
            SideEvent::FriendAccepted { uin, .. } => {
                let nick = self.core.contact(user, *uin).map(|c| c.nick);
                if let Some(nick) = &nick {
                    self.ensure_ghost(*uin, Some(nick)).await?;
                }
                let name = nick.map(|n| format!(" ({n})")).unwrap_or_default();
                self.bot_notice(user, &format!("{uin}{name} is now your QQ buddy"))
                    .await
            }
            SideEvent::FriendRefused { uin, reason, .. } => {
                let why = if reason.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", reason.trim())
                };
                self.bot_notice(user, &format!("{uin} refused your buddy request{why}"))
                    .await
            }
            SideEvent::LoggedIn { .. } => {
                if is_relay {
                    return Ok(());
                }
                self.sync_contacts(user).await
            }
            SideEvent::LoggedOut { owner, reason } => {
                if is_relay {
                    tracing::warn!(%owner, %reason, "the relay account was logged out");
                    return Ok(());
                }
                if reason == "logged out" {
                    // The user's own `logout`: its reply said it already.
                    return Ok(());
                }
                self.bot_notice(user, &format!("QQ {owner}: {reason}"))
                    .await
            }
            SideEvent::SendFailed {
                chat,
                origin_id,
                preview,
                reason,
                owner,
            } => {
                let text =
                    format!("\u{26a0} not delivered to QQ: \u{201c}{preview}\u{201d} ({reason})");
                let room = match origin_id.as_deref().and_then(split_origin) {
                    Some((room, _)) => Some(room.to_owned()),
                    None => self
                        .store
                        .portal(*owner, chat, SIDE_NAME)
                        .await?
                        .map(|p| p.target),
                };
                match room {
                    Some(room) => {
                        let voice = self.room_voice(&room).await?;
                        self.enqueue_notice(&room, &voice, &text).await
                    }
                    None if is_relay => Ok(()),
                    None => self.bot_notice(user, &text).await,
                }
            }
            SideEvent::Sent { origin_id, .. } => {
                let Some((room, event_id)) = split_origin(origin_id) else {
                    return Ok(());
                };
                let voice = self.room_voice(room).await?;
                self.enqueue(
                    room,
                    &RoomOp::Receipt {
                        user: voice,
                        event_id: event_id.to_owned(),
                    },
                )
                .await
            }
            SideEvent::Notice { text } => {
                if is_relay {
                    tracing::info!(%text, "relay account notice");
                    return Ok(());
                }
                self.bot_notice(user, text).await
            }
        }
    }

    /// A notice from the bot in the user's bot room.
    pub(crate) async fn bot_notice(&self, user: &str, text: &str) -> Result<(), MatrixError> {
        let room = self.bot_room(user).await?;
        let bot = self.ids.bot.to_string();
        self.enqueue_notice(&room, &bot, text).await
    }

    async fn deliver_message(
        &self,
        user: &str,
        owner: Uin,
        chat: ChatId,
        sender: Uin,
        sender_name: &str,
        text: &RichText,
    ) -> Result<(), MatrixError> {
        let nick: Option<String> = match self.core.contact(user, sender) {
            Some(c) => Some(c.nick),
            // A stranger: the name QQ showed, unless the ghost has a name.
            None => {
                let ghost = self.ids.ghost(sender)?;
                let named = self.ghost_global_name(ghost.as_str()).await.is_some();
                (!named).then(|| sender_name.to_owned())
            }
        };
        let dm_nick = match chat {
            ChatId::Buddy(peer) | ChatId::Session { uin: peer, .. } => self
                .core
                .contact(user, peer)
                .map(|c| c.nick)
                .or_else(|| (peer == sender).then(|| sender_name.to_owned())),
            ChatId::Group(_) => None,
        };
        let Some(room) = self
            .portal(user, owner, chat, dm_nick.as_deref(), false)
            .await?
        else {
            tracing::debug!(%user, %chat, "the user left this portal; message not posted");
            return Ok(());
        };
        let ghost = self.ensure_ghost(sender, nick.as_deref()).await?;
        let voice = self.room_voice(&room).await?;
        if ghost.as_str() != voice {
            // Group members (and our own account writing from elsewhere)
            // join before they speak, under their group card in groups.
            let per_room = match chat {
                ChatId::Group(_) => Some(self.ghost_name(sender, sender_name)),
                _ => None,
            };
            let known = self.store.matrix_member(&room, ghost.as_str()).await?;
            let global = self.ghost_global_name(ghost.as_str()).await;
            let wanted = per_room.filter(|n| Some(n) != global.as_ref());
            let up_to_date = known.is_some_and(|m| wanted.is_none() || m.displayname == wanted);
            if !up_to_date {
                self.enqueue(
                    &room,
                    &RoomOp::Member {
                        user: ghost.to_string(),
                        inviter: voice.clone(),
                        displayname: wanted,
                    },
                )
                .await?;
            }
        }
        let mention_link = self.mention_links(user);
        let body = content::from_rich(text, &mention_link);
        self.enqueue(
            &room,
            &RoomOp::Send {
                sender: ghost.to_string(),
                event_type: "m.room.message".to_owned(),
                content: body,
            },
        )
        .await
    }

    /// Mentions of QQ users become pills of their ghosts.
    fn mention_links(&self, user: &str) -> impl Fn(&Segment) -> Option<(String, String)> + '_ {
        let contacts: Vec<Contact> = self.core.contacts(user);
        move |segment: &Segment| match segment {
            Segment::Mention {
                uin: Some(uin),
                name,
            } => {
                let ghost = self.ids.ghost(*uin).ok()?;
                let shown = contacts
                    .iter()
                    .find(|c| c.uin == *uin)
                    .map(|c| c.display_name().to_owned())
                    .unwrap_or_else(|| name.trim_start_matches('@').to_owned());
                Some((matrix_to(ghost.as_str()), shown))
            }
            _ => None,
        }
    }

    /// After a login: every buddy's ghost gets its name and presence.
    async fn sync_contacts(&self, user: &str) -> Result<(), MatrixError> {
        /// Buddies synchronised at once; the rest follow as they speak.
        const MAX_SYNCED: usize = 500;
        for contact in self.core.contacts(user).into_iter().take(MAX_SYNCED) {
            if self.settings.presence_from_qq && contact.presence.as_seen_by_others().is_available()
            {
                self.set_ghost_presence(contact.uin, contact.presence, Some(&contact.nick))
                    .await?;
            } else {
                self.ensure_ghost(contact.uin, Some(&contact.nick)).await?;
            }
        }
        Ok(())
    }
}
