//! The ghost registry: QQ users as Matrix users
//! `@<user_prefix><qq number>:<domain>`, registered on demand with
//! `m.login.application_service`, their global display name from the QQ
//! nickname (through `displayname_template`), and their membership and
//! per-room name (a group card) in each room. What was done is kept in the
//! store, so a restart does not redo it.

use ruma::api::client::account::register;
use ruma::api::client::profile::set_profile_field;
use ruma::profile::ProfileFieldValue;
use ruma::OwnedUserId;

use crate::core::model::Uin;
use crate::store::MatrixMember;

use super::client::HsError;
use super::ids::parse_user_id;
use super::{Matrix, MatrixError};

/// Longest display name set (Synapse allows 256 characters).
const MAX_DISPLAYNAME_CHARS: usize = 200;

impl Matrix {
    /// `displayname_template` filled in for one QQ user.
    pub(crate) fn ghost_name(&self, uin: Uin, nick: &str) -> String {
        let nick = nick.trim();
        let nick = if nick.is_empty() {
            uin.to_string()
        } else {
            nick.to_owned()
        };
        let name = self
            .settings
            .displayname_template
            .replace("{uin}", &uin.to_string())
            .replace("{nick}", &nick);
        name.chars()
            .filter(|c| !c.is_control())
            .take(MAX_DISPLAYNAME_CHARS)
            .collect()
    }

    /// The ghost of `uin`, registered, with its global display name from
    /// `nick` (when given; a ghost keeps the name it has otherwise).
    pub(crate) async fn ensure_ghost(
        &self,
        uin: Uin,
        nick: Option<&str>,
    ) -> Result<OwnedUserId, MatrixError> {
        let ghost = self.ids.ghost(uin)?;
        let stored = self.store.matrix_ghost(ghost.as_str()).await?;
        let current = match stored {
            Some(name) => name,
            None => {
                self.register(&ghost).await?;
                self.store.save_matrix_ghost(ghost.as_str(), None).await?;
                None
            }
        };
        let wanted = nick.map(|n| self.ghost_name(uin, n));
        if let Some(wanted) = wanted {
            if current.as_deref() != Some(wanted.as_str()) {
                self.set_global_name(&ghost, &wanted).await?;
                // A global rename rewrites the ghost's member event in every
                // room: per-room names must be set again.
                self.store
                    .delete_matrix_members(None, ghost.as_str())
                    .await?;
                self.store
                    .save_matrix_ghost(ghost.as_str(), Some(&wanted))
                    .await?;
            }
        }
        Ok(ghost)
    }

    /// The ghost's global display name as last set.
    pub(crate) async fn ghost_global_name(&self, ghost: &str) -> Option<String> {
        self.store
            .matrix_ghost(ghost)
            .await
            .ok()
            .flatten()
            .flatten()
    }

    async fn register(&self, user: &OwnedUserId) -> Result<(), MatrixError> {
        let localpart = user.localpart().to_owned();
        let make = || {
            let mut request = register::v3::Request::new();
            request.username = Some(localpart.clone());
            request.login_type = Some(register::LoginType::ApplicationService);
            request.inhibit_login = true;
            request
        };
        match self.hs.call_retrying(make, None).await {
            Ok(_) => Ok(()),
            Err(HsError::Refused { errcode, .. }) if errcode == "M_USER_IN_USE" => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_global_name(&self, user: &OwnedUserId, name: &str) -> Result<(), MatrixError> {
        let make = || {
            set_profile_field::v3::Request::new(
                user.clone(),
                ProfileFieldValue::DisplayName(name.to_owned()),
            )
        };
        let who = (!self.ids.is_bot(user.as_str())).then_some(user.as_ref());
        self.hs.call_retrying(make, who).await?;
        Ok(())
    }

    /// Gives the bot its display name once.
    pub(crate) async fn ensure_bot_profile(&self) -> Result<(), MatrixError> {
        const BOT_NAME: &str = "QQ bridge bot";
        let bot = self.ids.bot.clone();
        if self
            .store
            .matrix_ghost(bot.as_str())
            .await?
            .flatten()
            .as_deref()
            == Some(BOT_NAME)
        {
            return Ok(());
        }
        self.set_global_name(&bot, BOT_NAME).await?;
        self.store
            .save_matrix_ghost(bot.as_str(), Some(BOT_NAME))
            .await?;
        Ok(())
    }

    /// Makes sure `user` (a ghost) is joined to `room`, invited by
    /// `inviter` if needed, with `displayname` as its name in this room.
    pub(crate) async fn ensure_member(
        &self,
        room: &str,
        user: &str,
        inviter: &str,
        displayname: Option<&str>,
    ) -> Result<(), MatrixError> {
        let known = self.store.matrix_member(room, user).await?;
        let global = self.ghost_global_name(user).await;
        // The name this room should show: a per-room one only when it
        // differs from the global name.
        let wanted = displayname.filter(|d| Some(*d) != global.as_deref());
        match &known {
            Some(m) if wanted.is_none() || m.displayname.as_deref() == wanted => return Ok(()),
            _ => {}
        }
        let ghost = parse_user_id(user)?;
        if known.is_none() {
            if let Some(uin) = self.ids.ghost_uin(user) {
                self.ensure_ghost(uin, None).await?;
            }
            if inviter != user {
                self.invite(room, inviter, user).await?;
            }
            self.join(room, &ghost).await?;
        }
        if let Some(name) = wanted {
            self.set_room_name(room, &ghost, name).await?;
        }
        self.store
            .save_matrix_member(&MatrixMember {
                room_id: room.to_owned(),
                user_id: user.to_owned(),
                displayname: wanted.map(str::to_owned),
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn join(&self, room: &str, user: &OwnedUserId) -> Result<(), MatrixError> {
        use ruma::api::client::membership::join_room_by_id::v3::Request;
        let room_id = ruma::OwnedRoomId::try_from(room)
            .map_err(|e| MatrixError::BadId(format!("{room:?}: {e}")))?;
        let who = (!self.ids.is_bot(user.as_str())).then_some(user.as_ref());
        self.hs
            .call_retrying(|| Request::new(room_id.clone()), who)
            .await?;
        Ok(())
    }

    /// Leaves a room (the bot refusing an invite, a ghost dropping out).
    pub(crate) async fn leave(&self, room: &str, user: &str) -> Result<(), MatrixError> {
        use ruma::api::client::membership::leave_room::v3::Request;
        let room_id = ruma::OwnedRoomId::try_from(room)
            .map_err(|e| MatrixError::BadId(format!("{room:?}: {e}")))?;
        let user = parse_user_id(user)?;
        let who = (!self.ids.is_bot(user.as_str())).then_some(user.as_ref());
        self.hs
            .call_retrying(|| Request::new(room_id.clone()), who)
            .await?;
        Ok(())
    }

    /// The ghost's name in one room (its group card), as a member event.
    async fn set_room_name(
        &self,
        room: &str,
        ghost: &OwnedUserId,
        name: &str,
    ) -> Result<(), MatrixError> {
        use ruma::api::client::state::send_state_event::v3::Request;
        use ruma::events::StateEventType;
        let room_id = ruma::OwnedRoomId::try_from(room)
            .map_err(|e| MatrixError::BadId(format!("{room:?}: {e}")))?;
        let content = serde_json::json!({ "membership": "join", "displayname": name });
        let raw = serde_json::value::to_raw_value(&content)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        let make = || {
            Request::new_raw(
                room_id.clone(),
                StateEventType::RoomMember,
                ghost.to_string(),
                ruma::serde::Raw::from_json(raw.clone()),
            )
        };
        self.hs.call_retrying(make, Some(ghost)).await?;
        Ok(())
    }
}
