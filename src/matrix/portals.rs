//! Portals: the Matrix rooms QQ chats appear in, kept in the store so a
//! restart reuses them.
//!
//! - A buddy (or temporary-session) chat is a direct-message room created
//!   by the buddy's ghost with `is_direct`, inviting the user; the ghost's
//!   `m.direct` lists it (the user's client records its side when the user
//!   accepts the `is_direct` invite).
//! - A group is a room created by the bot, named after the group, with the
//!   alias `#<alias_prefix>group_<number>:<domain>` (the first user's room
//!   gets it; aliases are unique on a server); members' ghosts join when
//!   they first speak.
//! - The bot room is the user's direct chat with the bot.
//!
//! A user who leaves a portal stops getting it: group messages are no
//! longer posted there, and a DM portal invites the user again only when
//! the buddy writes (or the user asks with `pm`). Joining again (accepting
//! the invite) resumes it.

use ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use ruma::OwnedUserId;

use crate::core::model::{ChatId, GroupNumber, Uin};
use crate::store::{MatrixMember, MatrixRoom, Portal};

use super::client::HsError;
use super::ids::parse_user_id;
use super::room_queue::RoomOp;
use super::{Matrix, MatrixError, SIDE_NAME};

/// Longest wait for a QQ group list when naming a new group room.
const GROUPS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub const KIND_DM: &str = "dm";
pub const KIND_GROUP: &str = "group";
pub const KIND_BOT: &str = "bot";
pub const KIND_OTHER: &str = "other";

impl Matrix {
    /// The room `user` sees `owner`'s `chat` in, created the first time.
    /// `None` when the user left that (group) portal. `nick` names the DM
    /// ghost of a new buddy chat.
    pub(crate) async fn portal(
        &self,
        user: &str,
        owner: Uin,
        chat: ChatId,
        nick: Option<&str>,
        reinvite: bool,
    ) -> Result<Option<String>, MatrixError> {
        let _guard = self.portal_lock.lock().await;
        if let Some(existing) = self.store.portal(owner, &chat, SIDE_NAME).await? {
            let room = existing.target;
            let meta = self.store.matrix_room(&room).await?;
            match meta {
                Some(mut meta) if meta.user_left => {
                    if meta.kind == KIND_GROUP && !reinvite {
                        return Ok(None);
                    }
                    self.enqueue(
                        &room,
                        &RoomOp::Invite {
                            inviter: meta.creator.clone(),
                            user: user.to_owned(),
                        },
                    )
                    .await?;
                    meta.user_left = false;
                    self.store.save_matrix_room(&meta).await?;
                    return Ok(Some(room));
                }
                _ => return Ok(Some(room)),
            }
        }
        let room = match chat {
            ChatId::Buddy(peer) | ChatId::Session { uin: peer, .. } => {
                self.create_dm_room(user, peer, nick).await?
            }
            ChatId::Group(group) => self.create_group_room(user, owner, group).await?,
        };
        self.store
            .save_portal(&Portal {
                owner,
                chat,
                side: SIDE_NAME.to_owned(),
                target: room.clone(),
            })
            .await?;
        tracing::info!(%user, %chat, %room, "created a Matrix portal");
        Ok(Some(room))
    }

    async fn create_room(
        &self,
        creator: &OwnedUserId,
        make: impl Fn() -> CreateRoom,
    ) -> Result<String, MatrixError> {
        let who = (!self.ids.is_bot(creator.as_str())).then_some(creator.as_ref());
        let response = self.hs.call_retrying(make, who).await?;
        Ok(response.room_id.to_string())
    }

    async fn create_dm_room(
        &self,
        user: &str,
        peer: Uin,
        nick: Option<&str>,
    ) -> Result<String, MatrixError> {
        let ghost = self.ensure_ghost(peer, nick).await?;
        let invitee = parse_user_id(user)?;
        let room = self
            .create_room(&ghost, || {
                let mut request = CreateRoom::new();
                request.is_direct = true;
                request.invite = vec![invitee.clone()];
                request.preset = Some(RoomPreset::TrustedPrivateChat);
                request.topic = Some(format!("QQ chat with {peer}"));
                request
            })
            .await?;
        self.remember_room(&room, KIND_DM, user, ghost.as_str())
            .await?;
        self.update_direct(ghost.as_str(), KIND_DM).await;
        Ok(room)
    }

    async fn create_group_room(
        &self,
        user: &str,
        owner: Uin,
        group: GroupNumber,
    ) -> Result<String, MatrixError> {
        let name = self
            .group_name(user, owner, group)
            .await
            .unwrap_or_else(|| format!("QQ group {group}"));
        let invitee = parse_user_id(user)?;
        let bot = self.ids.bot.clone();
        let alias = self.ids.group_alias_localpart(group);
        let make = |with_alias: bool| {
            let mut request = CreateRoom::new();
            request.name = Some(name.clone());
            request.topic = Some(format!("QQ group {group}, bridged by qqbridge"));
            request.invite = vec![invitee.clone()];
            request.preset = Some(RoomPreset::PrivateChat);
            if with_alias {
                request.room_alias_name = Some(alias.clone());
            }
            request
        };
        let room = match self.create_room(&bot, || make(true)).await {
            Ok(room) => room,
            // Another user's room of this group has the alias already.
            Err(MatrixError::Homeserver(HsError::Refused { errcode, .. }))
                if errcode == "M_ROOM_IN_USE" =>
            {
                self.create_room(&bot, || make(false)).await?
            }
            Err(e) => return Err(e),
        };
        self.remember_room(&room, KIND_GROUP, user, bot.as_str())
            .await?;
        Ok(room)
    }

    async fn group_name(&self, user: &str, owner: Uin, group: GroupNumber) -> Option<String> {
        let session = self.core.session_of(user).ok()?;
        if session.uin() != owner || !session.capabilities().groups {
            return None;
        }
        let groups = tokio::time::timeout(GROUPS_TIMEOUT, session.groups())
            .await
            .ok()?
            .ok()?;
        groups
            .into_iter()
            .find(|g| g.number == group)
            .map(|g| g.name)
            .filter(|n| !n.trim().is_empty())
    }

    async fn remember_room(
        &self,
        room: &str,
        kind: &str,
        user: &str,
        creator: &str,
    ) -> Result<(), MatrixError> {
        self.store
            .save_matrix_room(&MatrixRoom {
                room_id: room.to_owned(),
                kind: kind.to_owned(),
                user: user.to_owned(),
                creator: creator.to_owned(),
                user_left: false,
            })
            .await?;
        self.store
            .save_matrix_member(&MatrixMember {
                room_id: room.to_owned(),
                user_id: creator.to_owned(),
                displayname: None,
            })
            .await?;
        Ok(())
    }

    /// The user's direct chat with the bot, created when there is none.
    pub(crate) async fn bot_room(&self, user: &str) -> Result<String, MatrixError> {
        let _guard = self.portal_lock.lock().await;
        let rooms = self.store.matrix_rooms_of(user, KIND_BOT).await?;
        if let Some(room) = rooms.into_iter().rev().find(|r| !r.user_left) {
            return Ok(room.room_id);
        }
        let invitee = parse_user_id(user)?;
        let bot = self.ids.bot.clone();
        let room = self
            .create_room(&bot, || {
                let mut request = CreateRoom::new();
                request.is_direct = true;
                request.invite = vec![invitee.clone()];
                request.preset = Some(RoomPreset::TrustedPrivateChat);
                request.name = Some("QQ bridge".to_owned());
                request
            })
            .await?;
        self.remember_room(&room, KIND_BOT, user, bot.as_str())
            .await?;
        self.update_direct(bot.as_str(), KIND_BOT).await;
        Ok(room)
    }

    /// Rewrites `m.direct` of a ghost (or the bot) from the rooms it made:
    /// `{ "<user>": ["<room>", ...] }`. Best effort.
    pub(crate) async fn update_direct(&self, creator: &str, kind: &str) {
        use ruma::api::client::config::set_global_account_data::v3::Request;
        use ruma::events::GlobalAccountDataEventType;
        let rooms = match self.store.matrix_rooms_by_creator(creator, kind).await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read rooms for m.direct");
                return;
            }
        };
        let mut direct: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for room in rooms.into_iter().filter(|r| !r.user_left) {
            direct.entry(room.user).or_default().push(room.room_id);
        }
        let Ok(user) = parse_user_id(creator) else {
            return;
        };
        let Ok(raw) = serde_json::value::to_raw_value(&direct) else {
            return;
        };
        let make = || {
            Request::new_raw(
                user.clone(),
                GlobalAccountDataEventType::Direct,
                ruma::serde::Raw::from_json(raw.clone()),
            )
        };
        let who = (!self.ids.is_bot(creator)).then_some(user.as_ref());
        if let Err(e) = self.hs.call_retrying(make, who).await {
            tracing::warn!(%creator, error = %e, "cannot update m.direct");
        }
    }

    /// The user left a room of ours: stop posting there.
    pub(crate) async fn user_left(&self, room: &str, user: &str) -> Result<(), MatrixError> {
        let Some(mut meta) = self.store.matrix_room(room).await? else {
            return Ok(());
        };
        if meta.user != user || meta.user_left {
            return Ok(());
        }
        meta.user_left = true;
        self.store.save_matrix_room(&meta).await?;
        tracing::info!(%room, %user, kind = %meta.kind, "user left a bridged room");
        if meta.kind == KIND_DM || meta.kind == KIND_BOT {
            self.update_direct(&meta.creator, &meta.kind).await;
        }
        Ok(())
    }

    /// The user joined a room of ours (again): post there again.
    pub(crate) async fn user_joined(&self, room: &str, user: &str) -> Result<(), MatrixError> {
        let Some(mut meta) = self.store.matrix_room(room).await? else {
            return Ok(());
        };
        if meta.user != user || !meta.user_left {
            return Ok(());
        }
        meta.user_left = false;
        self.store.save_matrix_room(&meta).await?;
        if meta.kind == KIND_DM || meta.kind == KIND_BOT {
            self.update_direct(&meta.creator, &meta.kind).await;
        }
        Ok(())
    }

    /// The user invited a ghost to a new direct chat: it becomes the DM
    /// portal of that buddy (replacing an older one).
    pub(crate) async fn adopt_dm_room(
        &self,
        room: &str,
        user: &str,
        owner: Uin,
        peer: Uin,
    ) -> Result<(), MatrixError> {
        let _guard = self.portal_lock.lock().await;
        let nick = self.core.contact(user, peer).map(|c| c.nick);
        let ghost = self.ensure_ghost(peer, nick.as_deref()).await?;
        self.join(room, &ghost).await?;
        self.remember_room(room, KIND_DM, user, ghost.as_str())
            .await?;
        self.store
            .save_portal(&Portal {
                owner,
                chat: ChatId::Buddy(peer),
                side: SIDE_NAME.to_owned(),
                target: room.to_owned(),
            })
            .await?;
        self.update_direct(ghost.as_str(), KIND_DM).await;
        Ok(())
    }

    /// The bot was invited to a room by a user: it joins; a direct chat
    /// becomes the user's bot room.
    pub(crate) async fn adopt_bot_room(
        &self,
        room: &str,
        user: &str,
        direct: bool,
    ) -> Result<(), MatrixError> {
        let bot = self.ids.bot.clone();
        self.join(room, &bot).await?;
        let kind = if direct { KIND_BOT } else { KIND_OTHER };
        self.remember_room(room, kind, user, bot.as_str()).await?;
        if direct {
            self.update_direct(bot.as_str(), KIND_BOT).await;
        }
        Ok(())
    }
}
