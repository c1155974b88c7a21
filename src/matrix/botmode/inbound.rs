//! Matrix to QQ in bot mode: invites of the bot (accepted from permitted
//! users only), commands (the core's command language, plus `bridge` /
//! `unbridge` for the room they are typed in), and messages in portals,
//! which go to QQ through the sender's own QQ login. Every event is
//! handled once: its event id is recorded as a message link first, so a
//! sync replayed after a crash does not send or run anything twice.

use matrix_sdk::ruma::{EventId, OwnedRoomId};
use serde_json::Value;

use crate::core::bot::CommandContext;
use crate::core::command::{self, Command};
use crate::core::model::{ChatId, Uin};
use crate::core::CoreError;
use crate::store::MessageLink;

use super::super::content::{self, Body};
use super::super::portals::{KIND_BOT, KIND_DM, KIND_GROUP, KIND_OTHER};
use super::super::SIDE_NAME;
use super::{BotError, BotMode};

/// Welcome text of a new command chat.
const WELCOME: &str = "Hello! I bridge Tencent QQ. Log in with: login <qq number> <password> \
                       [http11|webqq] (I delete that message right away). Type help for \
                       every command; in other rooms, start commands with ";

/// The chat recorded in the message link of a command (commands belong to
/// no QQ chat; the link only marks the event as handled).
const COMMAND_CHAT: ChatId = ChatId::Buddy(Uin(0));

impl BotMode {
    /// An invite of the bot: accepted from users with permission.
    pub(super) async fn on_invite(
        &self,
        room_id: &OwnedRoomId,
        state: &[Value],
    ) -> Result<(), BotError> {
        let bot = self.bot_id.as_str();
        let Some(invite) = state.iter().find(|e| {
            e["type"] == "m.room.member"
                && e["state_key"] == bot
                && e["content"]["membership"] == "invite"
        }) else {
            return Ok(());
        };
        let Some(inviter) = invite["sender"].as_str() else {
            return Ok(());
        };
        let direct = invite["content"]["is_direct"].as_bool().unwrap_or(false);
        if self.core.permission(inviter).is_none() {
            tracing::info!(%inviter, room = %room_id, "refusing an invite from a user without permission");
            if let Some(room) = self.client.get_room(room_id) {
                room.leave().await.map_err(classify_sdk)?;
            }
            return Ok(());
        }
        self.client
            .join_room_by_id(room_id)
            .await
            .map_err(classify_sdk)?;
        let room = room_id.to_string();
        if self.store.matrix_room(&room).await?.is_none() {
            let kind = if direct { KIND_BOT } else { KIND_OTHER };
            self.store
                .save_matrix_room(&crate::store::MatrixRoom {
                    room_id: room.clone(),
                    kind: kind.to_owned(),
                    user: inviter.to_owned(),
                    creator: self.bot_id.to_string(),
                    user_left: false,
                })
                .await?;
        }
        let text = format!("{WELCOME}{}.", self.settings.command_prefix);
        self.send_notice(&room, &text).await
    }

    /// One timeline event of a joined room.
    pub(super) async fn on_timeline_event(
        &self,
        room_id: &OwnedRoomId,
        event: &Value,
    ) -> Result<(), BotError> {
        let (Some(sender), Some(event_id)) = (event["sender"].as_str(), event["event_id"].as_str())
        else {
            return Ok(());
        };
        if sender == self.bot_id.as_str() {
            return Ok(());
        }
        let room = room_id.to_string();
        match event["type"].as_str() {
            Some("m.room.message") => self.on_message(&room, sender, event_id, event).await,
            Some("m.room.encrypted") => {
                // matrix-sdk could not decrypt it (the sender's device did
                // not share its key with the bot): say so, once.
                if !self.first_time(event_id, COMMAND_CHAT, Uin(0)).await? {
                    return Ok(());
                }
                tracing::warn!(%room, %event_id, "cannot decrypt a Matrix message");
                self.send_notice(
                    &room,
                    "\u{26a0} I could not decrypt a message, so it was not sent to QQ. \
                     Check that your client shares keys with unverified devices (or \
                     verify me) and send it again.",
                )
                .await
            }
            Some("m.room.member") if event["state_key"] == sender => {
                let membership = event["content"]["membership"].as_str().unwrap_or("");
                if let Some(mut meta) = self.store.matrix_room(&room).await? {
                    if meta.user == sender {
                        let left = matches!(membership, "leave" | "ban");
                        if meta.user_left != left && matches!(membership, "leave" | "ban" | "join")
                        {
                            meta.user_left = left;
                            self.store.save_matrix_room(&meta).await?;
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Records `event_id` as handled; `false` when it already was.
    async fn first_time(&self, event_id: &str, chat: ChatId, owner: Uin) -> Result<bool, BotError> {
        let link = MessageLink {
            side: SIDE_NAME.to_owned(),
            side_id: event_id.to_owned(),
            owner,
            chat,
            message: crate::core::bridge::new_message_id(),
        };
        let inserted = self.store.insert_message_links(&[link]).await?;
        Ok(inserted == [true])
    }

    async fn on_message(
        &self,
        room: &str,
        sender: &str,
        event_id: &str,
        event: &Value,
    ) -> Result<(), BotError> {
        let no_users = |_: &str| None;
        let Some(message) = content::parse(&event["content"], &no_users) else {
            return Ok(());
        };
        let meta = self.store.matrix_room(room).await?;
        let kind = meta.as_ref().map(|m| m.kind.as_str());
        let prefix = &self.settings.command_prefix;
        let command = if kind == Some(KIND_BOT) {
            Some(command::strip_prefix(&message.plain, prefix).unwrap_or(&message.plain))
        } else if message.edit {
            None
        } else {
            command::strip_prefix(&message.plain, prefix)
        };
        if let Some(line) = command {
            if message.edit || !matches!(message.body, Body::Text(_)) {
                return Ok(());
            }
            if !self.first_time(event_id, COMMAND_CHAT, Uin(0)).await? {
                tracing::debug!(%event_id, "Matrix command already handled");
                return Ok(());
            }
            return self.run_command(room, sender, event_id, line).await;
        }
        match meta {
            Some(meta) if meta.kind == KIND_DM || meta.kind == KIND_GROUP => {
                self.to_qq(room, sender, event_id, message).await
            }
            _ => Ok(()),
        }
    }

    /// A message in a portal, to QQ through the sender's own login.
    async fn to_qq(
        &self,
        room: &str,
        sender: &str,
        event_id: &str,
        message: content::Incoming,
    ) -> Result<(), BotError> {
        if self.core.permission(sender).is_none() {
            return self
                .send_notice(
                    room,
                    "You may not use this bridge; your message was not sent to QQ.",
                )
                .await;
        }
        let chats = self.store.portal_by_target(SIDE_NAME, room).await?;
        let own = self
            .core
            .login_of(sender)
            .and_then(|login| chats.iter().find(|p| p.owner == login).cloned());
        let Some(portal) = own else {
            // Just after a restart the user's QQ login is being restored:
            // the message waits for it instead of being refused.
            let stored = self.store.logins_of(sender).await?;
            if stored
                .iter()
                .any(|l| chats.iter().any(|p| p.owner == l.uin))
            {
                return Err(BotError::NotReady(
                    "the QQ login of this user is being restored".to_owned(),
                ));
            }
            if !self.first_time(event_id, COMMAND_CHAT, Uin(0)).await? {
                return Ok(());
            }
            return self
                .send_notice(
                    room,
                    "You are not logged in to QQ with the account of this room, so your \
                     message was not sent. Send me: login <qq number> <password>",
                )
                .await;
        };
        let mut rich = match message.body {
            Body::Text(rich) => rich,
            Body::Media { name, .. } => crate::core::model::RichText::plain(format!(
                "[{name}: a file sent on Matrix; bot mode does not carry files yet]"
            )),
            Body::Unsupported(what) => {
                if !self.first_time(event_id, portal.chat, portal.owner).await? {
                    return Ok(());
                }
                return self
                    .send_notice(room, &format!("{what} cannot be sent to QQ."))
                    .await;
            }
        };
        if rich.is_empty() {
            return Ok(());
        }
        if message.edit {
            content::prepend(&mut rich, "* ");
        }
        // Recorded in the same store transaction that queues it for QQ: a
        // replayed sync batch never sends it twice, and a crash cannot
        // record the event as relayed without queueing it.
        let link = MessageLink {
            side: SIDE_NAME.to_owned(),
            side_id: event_id.to_owned(),
            owner: portal.owner,
            chat: portal.chat,
            message: crate::core::bridge::new_message_id(),
        };
        let origin = format!("{room} {event_id}");
        match self
            .core
            .send_to_qq_once(sender, portal.chat, rich, Some(origin), link)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::debug!(%event_id, "Matrix event already relayed");
                Ok(())
            }
            Err(CoreError::Store(e)) => Err(e.into()),
            Err(e) => {
                self.send_notice(room, &format!("\u{26a0} not sent to QQ: {e}"))
                    .await
            }
        }
    }

    /// One command line from `sender` in `room`; the answer is a notice
    /// there. A `login` line is redacted first: it holds a password.
    async fn run_command(
        &self,
        room: &str,
        sender: &str,
        event_id: &str,
        line: &str,
    ) -> Result<(), BotError> {
        tracing::debug!(user = %sender, command = %command::redact(line), "Matrix bot command");
        let parsed = command::parse(line);
        if matches!(parsed, Ok(Command::Login { .. })) {
            let redacted = match (self.room(room), EventId::parse(event_id)) {
                (Ok(matrix_room), Ok(event)) => matrix_room
                    .redact(&event, Some("contains a password"), None)
                    .await
                    .map_err(|e| tracing::warn!(error = %e, "cannot redact a login message"))
                    .is_ok(),
                _ => false,
            };
            if !redacted {
                // In a room the user created the bot may lack the power to
                // redact: the user must know their password is still there.
                self.send_notice(
                    room,
                    "\u{26a0} I cannot delete your login message (I may not redact in this \
                     room): please delete it yourself, it contains your QQ password.",
                )
                .await?;
            }
        }
        if self.core.permission(sender).is_none() {
            return self
                .send_notice(room, &CoreError::Forbidden.to_string())
                .await;
        }
        let ctx = CommandContext {
            user: sender,
            name_scope: None,
        };
        let lines = match parsed {
            Err(e) => vec![e.to_string()],
            Ok(Command::Help) => {
                let mut lines = vec![format!(
                    "Commands (in rooms other than this chat, start them with {}):",
                    self.settings.command_prefix
                )];
                lines.extend(
                    command::help_lines()
                        .into_iter()
                        .filter(|l| !l.starts_with("rename") && !l.contains("#channel")),
                );
                lines
            }
            Ok(Command::BridgeRoom(chat)) => vec![self.bind_room(room, sender, chat).await?],
            Ok(Command::UnbridgeRoom) => vec![self.unbind_room(room, sender).await?],
            Ok(Command::Pm(target)) => vec![self.open_chat(&ctx, target).await],
            Ok(Command::Bridge { .. } | Command::Unbridge { .. }) => vec![
                "in Matrix, bridge this room with: bridge buddy <qq number> or bridge group \
                 <group number>"
                    .to_owned(),
            ],
            Ok(cmd) => {
                let lines = self.core.execute(&ctx, cmd).await;
                if let Some(image) = self.core.take_captcha_image(sender) {
                    self.post_captcha(room, image).await?;
                }
                lines
            }
        };
        self.send_notice(room, &lines.join("\n")).await
    }

    /// `pm <qq number|nick|group number>`: the portal, created if needed.
    async fn open_chat(
        &self,
        ctx: &CommandContext<'_>,
        target: crate::core::command::Target,
    ) -> String {
        let Some(owner) = self.core.login_of(ctx.user) else {
            return CoreError::NotLoggedIn.to_string();
        };
        let uin = match self.core.resolve(ctx, &target).await {
            Ok(uin) => uin,
            Err(e) => return e.to_string(),
        };
        let groups = self.core.groups(ctx.user).await.unwrap_or_default();
        let group = groups.iter().find(|g| g.number.0 == uin.0);
        let (chat, name) = match group {
            Some(g) => (ChatId::Group(g.number), g.name.clone()),
            None => (
                ChatId::Buddy(uin),
                self.core
                    .contact(ctx.user, uin)
                    .map(|c| c.nick)
                    .unwrap_or_else(|| uin.to_string()),
            ),
        };
        match self.portal(ctx.user, owner, chat, &name).await {
            Ok(room) => {
                // Invite again in case the user left it.
                if let (Ok(r), Ok(user)) = (
                    self.room(&room),
                    matrix_sdk::ruma::OwnedUserId::try_from(ctx.user),
                ) {
                    let _ = r.invite_user_by_id(&user).await;
                }
                format!("the chat with {name} is open; check your invites")
            }
            Err(e) => format!("cannot open that chat now: {e}"),
        }
    }

    /// A WebQQ captcha as an image in the room.
    async fn post_captcha(&self, room: &str, image: Vec<u8>) -> Result<(), BotError> {
        let mime = if image.starts_with(&[0x89, b'P', b'N', b'G']) {
            mime::IMAGE_PNG
        } else {
            mime::IMAGE_JPEG
        };
        let matrix_room = self.room(room)?;
        matrix_room
            .send_attachment(
                "captcha",
                &mime,
                image,
                matrix_sdk::attachment::AttachmentConfig::new(),
            )
            .await
            .map_err(classify_sdk)?;
        Ok(())
    }

    /// A Matrix user's presence becomes their QQ status (when logged in
    /// and it changed), as in appservice mode.
    pub(super) async fn on_presence(&self, event: &Value) {
        if !self.settings.presence_to_qq {
            return;
        }
        let Some(sender) = event["sender"].as_str() else {
            return;
        };
        if sender == self.bot_id.as_str() || self.core.login_of(sender).is_none() {
            return;
        }
        let Some(wanted) = event["content"]["presence"]
            .as_str()
            .and_then(super::super::presence::from_matrix)
        else {
            return;
        };
        let changed = match self.presence_set.lock() {
            Ok(mut set) => set.insert(sender.to_owned(), wanted) != Some(wanted),
            Err(_) => false,
        };
        if !changed {
            return;
        }
        if let Err(e) = self.core.set_presence(sender, wanted).await {
            tracing::warn!(user = %sender, error = %e, "cannot set the QQ status");
            if let Ok(mut set) = self.presence_set.lock() {
                set.remove(sender);
            }
        }
    }
}

/// A matrix-sdk failure: permanent when the homeserver refused for good
/// (a 4xx other than 429), otherwise worth retrying.
pub(super) fn classify_sdk(e: matrix_sdk::Error) -> BotError {
    match e.as_client_api_error().map(|c| c.status_code.as_u16()) {
        Some(status) if (400..500).contains(&status) && status != 429 => {
            BotError::Permanent(e.to_string())
        }
        _ => BotError::sdk(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn welcome_mentions_login() {
        assert!(super::WELCOME.contains("login <qq number> <password>"));
    }
}
