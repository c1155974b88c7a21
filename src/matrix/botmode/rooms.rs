//! Bot-mode rooms, kept in the store's `portals` and `matrix_rooms`
//! tables like the appservice's:
//! - a portal per QQ buddy chat or group the bot creates for the user (a
//!   direct chat for a buddy), end-to-end encrypted unless configured
//!   otherwise, inviting the user; or a room the user invited the bot to
//!   and bound with `bridge buddy <qq>` / `bridge group <number>`;
//! - the bot room: the user's direct chat with the bot, for commands and
//!   notices (created by the bot when it has something to say and the user
//!   never opened one).

use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId};
use matrix_sdk::Room;

use crate::core::model::{ChatId, Uin};
use crate::store::{MatrixRoom, Portal};

use super::super::portals::{KIND_BOT, KIND_DM, KIND_GROUP, KIND_OTHER};
use super::super::SIDE_NAME;
use super::{BotError, BotMode};

impl BotMode {
    /// The matrix-sdk room for a stored room id.
    pub(super) fn room(&self, room_id: &str) -> Result<Room, BotError> {
        let id = OwnedRoomId::try_from(room_id)
            .map_err(|_| BotError::Permanent(format!("invalid room id {room_id}")))?;
        self.client
            .get_room(&id)
            .ok_or_else(|| BotError::Sdk(format!("room {room_id} not known yet")))
    }

    /// The room `user` sees `owner`'s `chat` in, created the first time.
    pub(super) async fn portal(
        &self,
        user: &str,
        owner: Uin,
        chat: ChatId,
        name: &str,
    ) -> Result<String, BotError> {
        let _guard = self.room_lock.lock().await;
        if let Some(existing) = self.store.portal(owner, &chat, SIDE_NAME).await? {
            return Ok(existing.target);
        }
        let (kind, title) = match chat {
            ChatId::Group(g) => (KIND_GROUP, format!("{name} (QQ group {g})")),
            _ => (KIND_DM, format!("{name} (QQ)")),
        };
        let room = self.create_room(user, &title, kind == KIND_DM).await?;
        self.store
            .save_portal(&Portal {
                owner,
                chat,
                side: SIDE_NAME.to_owned(),
                target: room.clone(),
            })
            .await?;
        self.store
            .save_matrix_room(&MatrixRoom {
                room_id: room.clone(),
                kind: kind.to_owned(),
                user: user.to_owned(),
                creator: self.bot_id.to_string(),
                user_left: false,
            })
            .await?;
        tracing::info!(%user, %chat, %room, "Matrix bot: portal created");
        Ok(room)
    }

    /// The user's direct chat with the bot, created when needed.
    pub(super) async fn bot_room(&self, user: &str) -> Result<String, BotError> {
        let _guard = self.room_lock.lock().await;
        let rooms = self.store.matrix_rooms_of(user, KIND_BOT).await?;
        if let Some(room) = rooms.into_iter().find(|r| !r.user_left) {
            return Ok(room.room_id);
        }
        let room = self.create_room(user, "QQ bridge", true).await?;
        self.store
            .save_matrix_room(&MatrixRoom {
                room_id: room.clone(),
                kind: KIND_BOT.to_owned(),
                user: user.to_owned(),
                creator: self.bot_id.to_string(),
                user_left: false,
            })
            .await?;
        Ok(room)
    }

    async fn create_room(&self, user: &str, name: &str, direct: bool) -> Result<String, BotError> {
        let user_id = OwnedUserId::try_from(user)
            .map_err(|_| BotError::Permanent(format!("invalid Matrix user id {user}")))?;
        let mut request = CreateRoom::new();
        request.name = Some(name.to_owned());
        request.invite = vec![user_id];
        request.is_direct = direct;
        request.preset = Some(RoomPreset::PrivateChat);
        if self.settings.encrypt_portals {
            let encryption = RoomEncryptionEventContent::with_recommended_defaults();
            request.initial_state =
                vec![InitialStateEvent::with_empty_state_key(encryption).to_raw_any()];
        }
        let room = self
            .client
            .create_room(request)
            .await
            .map_err(super::inbound::classify_sdk)?;
        Ok(room.room_id().to_string())
    }

    /// `bridge buddy|group <number>` typed in `room`: that room becomes
    /// the portal of the chat (replacing a room the bot created before).
    pub(super) async fn bind_room(
        &self,
        room: &str,
        user: &str,
        chat: ChatId,
    ) -> Result<String, BotError> {
        let Some(owner) = self.core.login_of(user) else {
            return Ok(crate::core::CoreError::NotLoggedIn.to_string());
        };
        let meta = self.store.matrix_room(room).await?;
        if meta.as_ref().is_some_and(|m| m.kind == KIND_BOT) {
            return Ok(
                "this is your command chat with me; invite me to another room and type \
                 the command there"
                    .to_owned(),
            );
        }
        let _guard = self.room_lock.lock().await;
        for old in self.store.portal_by_target(SIDE_NAME, room).await? {
            self.store
                .delete_portal(old.owner, &old.chat, SIDE_NAME)
                .await?;
        }
        self.store
            .save_portal(&Portal {
                owner,
                chat,
                side: SIDE_NAME.to_owned(),
                target: room.to_owned(),
            })
            .await?;
        let kind = match chat {
            ChatId::Group(_) => KIND_GROUP,
            _ => KIND_DM,
        };
        self.store
            .save_matrix_room(&MatrixRoom {
                room_id: room.to_owned(),
                kind: kind.to_owned(),
                user: user.to_owned(),
                creator: self.bot_id.to_string(),
                user_left: false,
            })
            .await?;
        Ok(match chat {
            ChatId::Group(g) => format!("this room is now bridged to QQ group {g}"),
            other => format!("this room is now bridged to your QQ chat {other}"),
        })
    }

    /// `unbridge` typed in `room`.
    pub(super) async fn unbind_room(&self, room: &str, user: &str) -> Result<String, BotError> {
        let _guard = self.room_lock.lock().await;
        let portals = self.store.portal_by_target(SIDE_NAME, room).await?;
        let Some(owner) = self.core.login_of(user) else {
            return Ok(crate::core::CoreError::NotLoggedIn.to_string());
        };
        let mine: Vec<_> = portals.into_iter().filter(|p| p.owner == owner).collect();
        if mine.is_empty() {
            return Ok("this room is not bridged to any of your QQ chats".to_owned());
        }
        for portal in &mine {
            self.store
                .delete_portal(portal.owner, &portal.chat, SIDE_NAME)
                .await?;
        }
        if let Some(mut meta) = self.store.matrix_room(room).await? {
            meta.kind = KIND_OTHER.to_owned();
            self.store.save_matrix_room(&meta).await?;
        }
        Ok("this room is no longer bridged".to_owned())
    }
}
