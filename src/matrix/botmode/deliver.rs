//! QQ to Matrix in bot mode: the side the core delivers to. The core's
//! durable outbox calls [`BotSide::deliver`] in order per user and keeps an
//! event while the answer is `Retry` (homeserver down), across restarts.
//! A QQ message is sent with a transaction id derived from its bridge
//! message id, so a retry after a crash between the send and the outbox's
//! acknowledgement is recognised by the homeserver instead of doubled.
//! matrix-sdk encrypts for encrypted rooms.

use std::sync::Weak;

use async_trait::async_trait;
use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use matrix_sdk::ruma::events::receipt::ReceiptThread;
use matrix_sdk::ruma::{OwnedEventId, TransactionId};
use serde_json::Value;

use crate::config::PresenceDisplay;
use crate::core::bot::friend_request_lines;
use crate::core::model::{ChatId, Presence, RichText, Uin};
use crate::core::side::{ChatSide, DeliveryError, SideEvent};

use super::super::content;
use super::super::SIDE_NAME;
use super::relay::{presence_topic, relayed_message, transaction_id};
use super::{BotError, BotMode};

/// The bot-mode side as the core holds it.
pub(crate) struct BotSide(pub Weak<BotMode>);

#[async_trait]
impl ChatSide for BotSide {
    fn name(&self) -> &str {
        SIDE_NAME
    }

    async fn deliver(&self, user: &str, event: &SideEvent) -> Result<(), DeliveryError> {
        let Some(bot) = self.0.upgrade() else {
            return Err(DeliveryError::Retry(
                "the Matrix side is stopped".to_owned(),
            ));
        };
        bot.deliver(user, event).await.map_err(|e| match e {
            BotError::Permanent(e) => DeliveryError::Permanent(e),
            e => DeliveryError::Retry(e.to_string()),
        })
    }
}

impl BotMode {
    async fn deliver(&self, user: &str, event: &SideEvent) -> Result<(), BotError> {
        match event {
            SideEvent::Message {
                owner,
                chat,
                sender,
                sender_name,
                text,
                message_id,
                ..
            } => {
                self.deliver_message(user, *owner, *chat, *sender, sender_name, text, message_id)
                    .await
            }
            SideEvent::Presence {
                owner,
                uin,
                presence,
            } => self.show_presence(user, *owner, *uin, *presence).await,
            SideEvent::FriendRequest { uin, message, .. } => {
                let text = friend_request_lines(*uin, message).join("\n");
                self.bot_notice(user, &text).await
            }
            SideEvent::FriendAccepted { uin, .. } => {
                let name = self
                    .core
                    .contact(user, *uin)
                    .map(|c| format!(" ({})", c.nick))
                    .unwrap_or_default();
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
            SideEvent::LoggedIn { .. } => Ok(()),
            SideEvent::LoggedOut { owner, reason } => {
                if reason == "logged out" {
                    // The user's own `logout`: its reply said it already.
                    return Ok(());
                }
                self.bot_notice(user, &format!("QQ {owner}: {reason}"))
                    .await
            }
            SideEvent::SendFailed {
                owner,
                chat,
                origin_id,
                preview,
                reason,
            } => {
                let text =
                    format!("\u{26a0} not delivered to QQ: \u{201c}{preview}\u{201d} ({reason})");
                let room = match origin_id.as_deref().and_then(|o| o.split_once(' ')) {
                    Some((room, _)) => Some(room.to_owned()),
                    None => self
                        .store
                        .portal(*owner, chat, SIDE_NAME)
                        .await?
                        .map(|p| p.target),
                };
                match room {
                    Some(room) => self.send_notice(&room, &text).await,
                    None => self.bot_notice(user, &text).await,
                }
            }
            SideEvent::Sent { origin_id, .. } => {
                let Some((room, event_id)) = origin_id.split_once(' ') else {
                    return Ok(());
                };
                let (Ok(room), Ok(event_id)) = (self.room(room), OwnedEventId::try_from(event_id))
                else {
                    return Ok(());
                };
                // A read receipt: QQ has it. Best effort, like on QQ.
                if let Err(e) = room
                    .send_single_receipt(ReceiptType::Read, ReceiptThread::Unthreaded, event_id)
                    .await
                {
                    tracing::debug!(error = %e, "cannot send a read receipt");
                }
                Ok(())
            }
            SideEvent::Notice { text } => self.bot_notice(user, text).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn deliver_message(
        &self,
        user: &str,
        owner: Uin,
        chat: ChatId,
        sender: Uin,
        sender_name: &str,
        text: &RichText,
        message_id: &str,
    ) -> Result<(), BotError> {
        let nick = self
            .core
            .contact(user, sender)
            .map(|c| c.display_name().to_owned())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| sender_name.to_owned());
        let nick = if nick.trim().is_empty() {
            sender.to_string()
        } else {
            nick
        };
        let room_name = match chat {
            ChatId::Group(g) => self
                .core
                .groups(user)
                .await
                .ok()
                .and_then(|groups| groups.into_iter().find(|x| x.number == g))
                .map(|x| x.name)
                .unwrap_or_else(|| g.to_string()),
            ChatId::Buddy(peer) | ChatId::Session { uin: peer, .. } => self
                .core
                .contact(user, peer)
                .map(|c| c.display_name().to_owned())
                .unwrap_or_else(|| nick.clone()),
        };
        let room = self.portal(user, owner, chat, &room_name).await?;
        let content = relayed_message(&nick, text);
        self.send(&room, content, &transaction_id(message_id)).await
    }

    /// A buddy's QQ status in its portal: the topic or a notice.
    async fn show_presence(
        &self,
        user: &str,
        owner: Uin,
        uin: Uin,
        presence: Presence,
    ) -> Result<(), BotError> {
        if self.settings.presence_display == PresenceDisplay::Off {
            return Ok(());
        }
        let Some(portal) = self
            .store
            .portal(owner, &ChatId::Buddy(uin), SIDE_NAME)
            .await?
        else {
            return Ok(());
        };
        let name = self
            .core
            .contact(user, uin)
            .map(|c| c.display_name().to_owned())
            .unwrap_or_else(|| uin.to_string());
        let status = presence.as_seen_by_others().to_string();
        match self.settings.presence_display {
            PresenceDisplay::Topic => {
                let room = self.room(&portal.target)?;
                room.set_room_topic(&presence_topic(&name, &status))
                    .await
                    .map_err(super::inbound::classify_sdk)?;
                Ok(())
            }
            _ => {
                self.send_notice(&portal.target, &format!("{name} is now {status} on QQ"))
                    .await
            }
        }
    }

    /// A notice in the user's command chat with the bot.
    pub(super) async fn bot_notice(&self, user: &str, text: &str) -> Result<(), BotError> {
        let room = self.bot_room(user).await?;
        self.send_notice(&room, text).await
    }

    pub(super) async fn send_notice(&self, room: &str, text: &str) -> Result<(), BotError> {
        let txn = TransactionId::new();
        self.send(room, content::notice(text), txn.as_str()).await
    }

    /// Sends (encrypting in encrypted rooms) with the given transaction id.
    async fn send(&self, room: &str, content: Value, txn: &str) -> Result<(), BotError> {
        let matrix_room = self.room(room)?;
        let txn = <&TransactionId>::from(txn);
        matrix_room
            .send_raw("m.room.message", content)
            .with_transaction_id(txn)
            .await
            .map_err(super::inbound::classify_sdk)?;
        Ok(())
    }
}
