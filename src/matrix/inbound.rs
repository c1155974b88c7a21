//! Matrix events to the core, one stored transaction event at a time (see
//! `appservice/txn_queue.rs`). Events from the bridge's own bot and ghosts
//! are ignored. Invites of the bot open bot rooms, invites of a ghost open
//! a DM portal; a user leaving or rejoining a portal is recorded; messages
//! in portals go to QQ as the user (or through the relay account), and
//! commands go to the bot.

use serde_json::Value;

use crate::core::model::{RichText, Segment, Uin};
use crate::core::CoreError;
use crate::store::{MatrixInbound, MatrixRoom, MessageLink};

use super::content::{self, Body, Incoming};
use super::deliver::origin_id;
use super::portals::{KIND_BOT, KIND_DM, KIND_GROUP};
use super::{Matrix, MatrixError, SIDE_NAME};

/// Welcome text of a new bot room.
const WELCOME: &str = "Hello! I bridge Tencent QQ. Log in with: login <qq number> <password> \
                       [http11|webqq] (I delete that message right away). Type help for \
                       every command; in other rooms, start commands with ";

impl Matrix {
    /// Processes one stored transaction event. An error means "try this
    /// event again later" (the homeserver is unreachable, the store busy).
    pub(crate) async fn process(&self, item: &MatrixInbound) -> Result<(), MatrixError> {
        let event: Value = match serde_json::from_str(&item.event) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(id = item.id, error = %e, "dropping an unreadable stored event");
                return Ok(());
            }
        };
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        if item.kind == "ephemeral" {
            if kind == "m.presence" {
                self.on_presence(&event).await;
            }
            return Ok(());
        }
        let Some(sender) = event.get("sender").and_then(Value::as_str) else {
            return Ok(());
        };
        if self.ids.is_bridge_user(sender) {
            return Ok(());
        }
        match kind {
            "m.room.member" => self.on_member(&event, sender).await,
            "m.room.message" => self.on_message(&event, sender).await,
            _ => Ok(()),
        }
    }

    async fn on_member(&self, event: &Value, sender: &str) -> Result<(), MatrixError> {
        let (Some(room), Some(target)) = (
            event.get("room_id").and_then(Value::as_str),
            event.get("state_key").and_then(Value::as_str),
        ) else {
            return Ok(());
        };
        let content = event.get("content").cloned().unwrap_or(Value::Null);
        let membership = content
            .get("membership")
            .and_then(Value::as_str)
            .unwrap_or("");
        let direct = content
            .get("is_direct")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if membership == "invite" && self.ids.is_bot(target) {
            if self.core.permission(sender).is_none() {
                tracing::info!(%sender, %room, "refusing an invite from a user without permission");
                return self.leave(room, target).await;
            }
            self.adopt_bot_room(room, sender, direct).await?;
            let bot = self.ids.bot.to_string();
            let text = format!("{WELCOME}{}.", self.settings.command_prefix);
            return self.enqueue_notice(room, &bot, &text).await;
        }
        if membership == "invite" {
            if let Some(uin) = self.ids.ghost_uin(target) {
                return self.ghost_invited(room, sender, target, uin).await;
            }
            return Ok(());
        }
        if target == sender {
            match membership {
                "leave" | "ban" => self.user_left(room, sender).await?,
                "join" => self.user_joined(room, sender).await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// A user invited a ghost: a new DM with that QQ user.
    async fn ghost_invited(
        &self,
        room: &str,
        sender: &str,
        ghost: &str,
        uin: Uin,
    ) -> Result<(), MatrixError> {
        let owner = match self.core.login_of(sender) {
            Some(owner) if self.core.permission(sender).is_some() => owner,
            _ => {
                self.ensure_ghost(uin, None).await?;
                return self.leave(room, ghost).await;
            }
        };
        self.adopt_dm_room(room, sender, owner, uin).await
    }

    async fn on_message(&self, event: &Value, sender: &str) -> Result<(), MatrixError> {
        let (Some(room), Some(event_id), Some(body)) = (
            event.get("room_id").and_then(Value::as_str),
            event.get("event_id").and_then(Value::as_str),
            event.get("content"),
        ) else {
            return Ok(());
        };
        let meta = self.store.matrix_room(room).await?;
        let contacts = self.core.contacts(sender);
        let ids = self.ids.clone();
        let resolve = move |user_id: &str| -> Option<(Option<Uin>, String)> {
            let uin = ids.ghost_uin(user_id)?;
            let name = contacts
                .iter()
                .find(|c| c.uin == uin)
                .map(|c| c.display_name().to_owned())
                .unwrap_or_else(|| uin.to_string());
            Some((Some(uin), name))
        };
        let Some(message) = content::parse(body, &resolve) else {
            return Ok(());
        };
        let kind = meta.as_ref().map(|m| m.kind.as_str());
        let command = if kind == Some(KIND_BOT) {
            let line =
                crate::core::command::strip_prefix(&message.plain, &self.settings.command_prefix)
                    .unwrap_or(&message.plain);
            Some(line.to_owned())
        } else if message.edit {
            None
        } else {
            crate::core::command::strip_prefix(&message.plain, &self.settings.command_prefix)
                .map(str::to_owned)
        };
        if let Some(line) = command {
            if matches!(message.body, Body::Text(_)) && !message.edit {
                let voice = self.room_voice(room).await?;
                return self
                    .run_bot_command(room, &voice, sender, event_id, &line)
                    .await;
            }
            return Ok(());
        }
        match meta {
            Some(meta) if meta.kind == KIND_DM || meta.kind == KIND_GROUP => {
                self.to_qq(&meta, sender, event_id, message).await
            }
            _ => Ok(()),
        }
    }

    /// A message in a portal, on its way to QQ.
    async fn to_qq(
        &self,
        room: &MatrixRoom,
        sender: &str,
        event_id: &str,
        message: Incoming,
    ) -> Result<(), MatrixError> {
        let voice = room.creator.clone();
        if self.core.permission(sender).is_none() {
            return self
                .enqueue_notice(
                    &room.room_id,
                    &voice,
                    "You may not use this bridge; your message was not sent to QQ.",
                )
                .await;
        }
        let chats = self
            .store
            .portal_by_target(SIDE_NAME, &room.room_id)
            .await?;
        let own = self
            .core
            .login_of(sender)
            .and_then(|login| chats.iter().find(|p| p.owner == login));
        if own.is_none() {
            // Just after a restart the user's QQ login is being restored:
            // their message waits for it instead of being refused.
            let stored = self.store.logins_of(sender).await?;
            if stored
                .iter()
                .any(|l| chats.iter().any(|p| p.owner == l.uin))
            {
                return Err(MatrixError::NotReady(
                    "the QQ login of this user is being restored".to_owned(),
                ));
            }
        }
        let relay_user = self.relay_user().to_owned();
        let (bridge_user, portal, relayed) = match own {
            Some(p) => (sender.to_owned(), p.clone(), false),
            None => match (self.core.login_of(&relay_user), chats.first()) {
                (Some(_), Some(p)) if self.settings.relay.is_some() => {
                    (relay_user, p.clone(), true)
                }
                _ => {
                    let text = format!(
                        "You are not logged in to QQ, so your message was not sent. Open a \
                         direct chat with {} and send: login <qq number> <password>",
                        self.ids.bot
                    );
                    return self.enqueue_notice(&room.room_id, &voice, &text).await;
                }
            },
        };
        let mut rich = match message.body {
            Body::Text(rich) => rich,
            Body::Media {
                mxc,
                name,
                mimetype,
            } => {
                let url = self.media_link(&mxc, &name, mimetype.as_deref()).await?;
                RichText {
                    segments: vec![Segment::Link {
                        url,
                        text: Some(name),
                    }],
                    action: false,
                }
            }
            Body::Unsupported(what) => {
                let text = format!("{what} cannot be sent to QQ.");
                return self.enqueue_notice(&room.room_id, &voice, &text).await;
            }
        };
        if rich.is_empty() {
            return Ok(());
        }
        if let Some(reply_to) = &message.reply_to {
            if let Some(quote) = self.quote_of(&room.room_id, &voice, sender, reply_to).await {
                content::prepend(&mut rich, &quote);
            }
        }
        if message.edit {
            content::prepend(&mut rich, "* ");
        }
        if relayed {
            let name = self.display_name_of(sender).await;
            content::prepend(&mut rich, &format!("{name}: "));
        }
        // Recorded in the same store transaction that queues it for QQ: a
        // replay of this event (a crash before the inbound queue entry was
        // marked done) is never sent twice, and a crash cannot record the
        // event as relayed without queueing it.
        let link = MessageLink {
            side: SIDE_NAME.to_owned(),
            side_id: event_id.to_owned(),
            owner: portal.owner,
            chat: portal.chat,
            message: crate::core::bridge::new_message_id(),
        };
        let origin = origin_id(&room.room_id, event_id);
        match self
            .core
            .send_to_qq_once(&bridge_user, portal.chat, rich, Some(origin), link)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::debug!(%event_id, "Matrix event already relayed");
                Ok(())
            }
            Err(CoreError::Store(e)) => Err(e.into()),
            Err(e) => {
                let text = format!("\u{26a0} not sent to QQ: {e}");
                self.enqueue_notice(&room.room_id, &voice, &text).await
            }
        }
    }

    /// `> name: first words` of the message a reply answers.
    async fn quote_of(
        &self,
        room: &str,
        voice: &str,
        user: &str,
        event_id: &str,
    ) -> Option<String> {
        use ruma::api::client::room::get_room_event::v3::Request;
        let room_id = ruma::OwnedRoomId::try_from(room).ok()?;
        let event = ruma::OwnedEventId::try_from(event_id).ok()?;
        let who = super::ids::parse_user_id(voice).ok();
        let who = who.filter(|w| !self.ids.is_bot(w.as_str()));
        let response = self
            .hs
            .call(Request::new(room_id, event), who.as_deref())
            .await
            .map_err(|e| tracing::debug!(error = %e, "cannot fetch the replied-to event"))
            .ok()?;
        let original: Value = serde_json::from_str(response.event.json().get()).ok()?;
        let sender = original.get("sender").and_then(Value::as_str)?;
        let body = original
            .get("content")
            .and_then(|c| c.get("body"))
            .and_then(Value::as_str)?;
        let name = match self.ids.ghost_uin(sender) {
            Some(uin) => self
                .core
                .contact(user, uin)
                .map(|c| c.display_name().to_owned())
                .unwrap_or_else(|| uin.to_string()),
            None => self.display_name_of(sender).await,
        };
        Some(content::quote(&name, body))
    }

    /// A Matrix user's display name (their localpart if unknown).
    async fn display_name_of(&self, user: &str) -> String {
        use ruma::api::client::profile::get_profile_field::v3::Request;
        use ruma::profile::{ProfileFieldName, ProfileFieldValue};
        let fallback = user
            .strip_prefix('@')
            .and_then(|r| r.split_once(':'))
            .map_or(user, |(local, _)| local)
            .to_owned();
        let Ok(user_id) = super::ids::parse_user_id(user) else {
            return fallback;
        };
        match self
            .hs
            .call(Request::new(user_id, ProfileFieldName::DisplayName), None)
            .await
        {
            Ok(r) => match r.value {
                Some(ProfileFieldValue::DisplayName(d)) => Some(d),
                _ => None,
            }
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.chars().filter(|c| !c.is_control()).take(64).collect())
            .unwrap_or(fallback),
            Err(_) => fallback,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn welcome_mentions_login() {
        assert!(super::WELCOME.contains("login <qq number> <password>"));
    }
}
