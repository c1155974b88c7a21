//! The durable per-room send queue. Everything the bridge does inside a
//! room after creating it (messages, ghost joins, per-room names, read
//! receipts, redactions, re-invites) is a [`RoomOp`] stored in the outbox
//! under `matrix:<room id>` before anything is sent, and carried by the
//! core's [`Outbox`](crate::core::outbox::Outbox) worker of that room: one
//! request at a time per room, in order (Synapse forks a room's history on
//! concurrent sends), retried with backoff while the homeserver is down,
//! and resumed from the store after a restart. The outbox item id makes
//! the Matrix transaction id, so a send retried after a lost answer is not
//! duplicated by the homeserver. A queue that is behind sends one ghost's
//! waiting lines as one event ([`backlog_merge`]).

use std::sync::Weak;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use ruma::events::MessageLikeEventType;
use ruma::serde::Raw;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, TransactionId};

use crate::core::outbox::{self, Carried, Courier};
use crate::store::OutboxItem;

use super::backlog_merge;
use super::client::HsError;
use super::ids::parse_user_id;
use super::{Matrix, MatrixError};

/// Outbox destinations of room queues start with this.
pub const DESTINATION_PREFIX: &str = "matrix:";

/// One thing to do in a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RoomOp {
    /// Send a message event as `sender` (the bot or a ghost).
    Send {
        sender: String,
        event_type: String,
        content: Value,
    },
    /// Make sure a ghost is joined (invited by `inviter` first), with this
    /// per-room display name when it differs from its global one.
    Member {
        user: String,
        inviter: String,
        displayname: Option<String>,
    },
    /// A read receipt from `user` (QQ accepted the message).
    Receipt { user: String, event_id: String },
    /// Redact an event (a password typed to the bot).
    Redact {
        user: String,
        event_id: String,
        reason: String,
    },
    /// Invite the user back (a DM portal they had left gets a message).
    Invite { inviter: String, user: String },
    /// Several waiting `m.room.message` lines of one sender sent as one
    /// event (see [`backlog_merge`](super::backlog_merge)); never merged
    /// again, since its transaction id may have reached the homeserver.
    Merged {
        sender: String,
        lines: usize,
        content: Value,
    },
}

/// The courier of the room queues, held by the outbox workers.
pub(crate) struct RoomCourier(pub Weak<Matrix>);

#[async_trait]
impl Courier for RoomCourier {
    async fn carry(&self, destination: &str, item: &OutboxItem) -> Carried {
        let Some(matrix) = self.0.upgrade() else {
            return Carried::Later("the Matrix side is stopped".to_owned());
        };
        let Some(room) = destination.strip_prefix(DESTINATION_PREFIX) else {
            return Carried::Failed(format!("not a room queue: {destination}"));
        };
        let op: RoomOp = match serde_json::from_str(&item.payload) {
            Ok(op) => op,
            Err(e) => return Carried::Failed(format!("unreadable room operation: {e}")),
        };
        matrix.carry_op(room, item.id, &op).await
    }

    /// Enough of the queue to merge as many lines as configured.
    fn batch(&self) -> u32 {
        let lines = self.0.upgrade().map_or(0, |m| m.settings.merge_lines);
        u32::try_from(lines).map_or(u32::MAX, |l| l.max(outbox::BATCH))
    }

    /// Merges the lines one ghost has waiting at the head of the queue
    /// into one event when the room is behind; otherwise the head alone.
    async fn carry_run(&self, destination: &str, items: &[OutboxItem]) -> Vec<Carried> {
        let Some(head) = items.first() else {
            return Vec::new();
        };
        if let Some(outcomes) = self.carry_merged(destination, items).await {
            return outcomes;
        }
        vec![self.carry(destination, head).await]
    }
}

impl RoomCourier {
    /// Carries the merge planned for the head of `items`, if there is one.
    async fn carry_merged(&self, destination: &str, items: &[OutboxItem]) -> Option<Vec<Carried>> {
        let matrix = self.0.upgrade()?;
        let room = destination.strip_prefix(DESTINATION_PREFIX)?;
        let merge = backlog_merge::plan(
            items,
            matrix.merge_floor.get().copied(),
            matrix.settings.merge_lines,
        )?;
        // Stored before it is sent: a crash then resends the merged event
        // under the same transaction id, never its lines again.
        let stored = match serde_json::to_string(&merge.op) {
            Ok(payload) => matrix
                .store
                .merge_outbox_items(merge.keep, &payload, &merge.absorbed)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = stored {
            tracing::warn!(%room, error = %e, "cannot merge waiting lines; sending them one by one");
            return None;
        }
        Some(match matrix.carry_op(room, merge.keep, &merge.op).await {
            // The absorbed items are gone from the store already; the
            // worker passes over them.
            Carried::Later(why) => vec![Carried::Later(why)],
            outcome => {
                let merged = 1 + merge.absorbed.len();
                if lingers_after(merged, items.len(), matrix.settings.merge_lines) {
                    tokio::time::sleep(matrix.settings.merge_linger).await;
                }
                vec![outcome; merged]
            }
        })
    }
}

/// A merge of at least this many lines means the homeserver is that far
/// behind the room: worth lingering for. Fewer, and the room goes back to
/// sending at once; with the default 100 ms linger a room stays lingering
/// while it gets more than ~30 lines a second.
const LINGER_FROM_LINES: usize = 4;

/// Whether a room's queue lingers after sending a merge of `merged` lines
/// out of the `read` it had: only when the room is well behind and the
/// merge took all it had read, so the next lines gather into one fuller
/// event instead of going out as soon as this one is through. A merge cut
/// short by its limits or by another sender goes on at once: more lines
/// are already waiting.
fn lingers_after(merged: usize, read: usize, max_lines: usize) -> bool {
    merged >= LINGER_FROM_LINES && merged == read && merged < max_lines
}

impl Matrix {
    /// Carries one operation and says what the outbox should do with it.
    async fn carry_op(&self, room: &str, item_id: i64, op: &RoomOp) -> Carried {
        match self.perform(room, item_id, op).await {
            Ok(()) => Carried::Done,
            Err(MatrixError::Homeserver(e)) if e.is_transient() => {
                self.homeserver_down();
                Carried::Later(e.to_string())
            }
            Err(MatrixError::Store(e)) => Carried::Later(e.to_string()),
            Err(e) => {
                tracing::warn!(%room, error = %e, "a Matrix room operation failed for good");
                Carried::Failed(e.to_string())
            }
        }
    }
}

fn room_id(room: &str) -> Result<OwnedRoomId, MatrixError> {
    OwnedRoomId::try_from(room).map_err(|e| MatrixError::BadId(format!("{room:?}: {e}")))
}

fn event_id(event: &str) -> Result<OwnedEventId, MatrixError> {
    OwnedEventId::try_from(event).map_err(|e| MatrixError::BadId(format!("{event:?}: {e}")))
}

impl Matrix {
    /// Queues an operation in a room (stored before this returns).
    pub(crate) async fn enqueue(&self, room: &str, op: &RoomOp) -> Result<(), MatrixError> {
        let payload = serde_json::to_string(op)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        let id = self
            .rooms
            .push(
                &self.courier,
                &format!("{DESTINATION_PREFIX}{room}"),
                room,
                &payload,
            )
            .await?;
        self.merge_floor.get_or_init(|| id);
        Ok(())
    }

    /// Queues a plain notice in a room, spoken by `sender`.
    pub(crate) async fn enqueue_notice(
        &self,
        room: &str,
        sender: &str,
        text: &str,
    ) -> Result<(), MatrixError> {
        let content = super::content::notice(text);
        self.enqueue(
            room,
            &RoomOp::Send {
                sender: sender.to_owned(),
                event_type: "m.room.message".to_owned(),
                content,
            },
        )
        .await
    }

    /// The user id to assert for a request: none for the bot itself.
    fn identity(&self, user: &str) -> Result<Option<OwnedUserId>, MatrixError> {
        if self.ids.is_bot(user) {
            Ok(None)
        } else {
            parse_user_id(user).map(Some)
        }
    }

    pub(crate) async fn perform(
        &self,
        room: &str,
        item_id: i64,
        op: &RoomOp,
    ) -> Result<(), MatrixError> {
        match op {
            RoomOp::Send {
                sender,
                event_type,
                content,
            } => {
                self.send_as_ghost(room, item_id, sender, event_type, content)
                    .await
            }
            RoomOp::Merged {
                sender, content, ..
            } => {
                self.send_as_ghost(room, item_id, sender, "m.room.message", content)
                    .await
            }
            RoomOp::Member {
                user,
                inviter,
                displayname,
            } => {
                self.ensure_member(room, user, inviter, displayname.as_deref())
                    .await
            }
            RoomOp::Receipt {
                user,
                event_id: event,
            } => {
                use ruma::api::client::receipt::create_receipt::v3::{ReceiptType, Request};
                let request = Request::new(room_id(room)?, ReceiptType::Read, event_id(event)?);
                let who = self.identity(user)?;
                match self.hs.call(request, who.as_deref()).await {
                    Ok(_) => Ok(()),
                    // Not in the room (any more): nothing to acknowledge.
                    Err(e @ HsError::Refused { .. }) => {
                        tracing::debug!(%room, error = %e, "read receipt refused");
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            RoomOp::Redact {
                user,
                event_id: event,
                reason,
            } => {
                use ruma::api::client::redact::redact_event::v3::Request;
                let mut request =
                    Request::new(room_id(room)?, event_id(event)?, TransactionId::new());
                request.reason = Some(reason.clone());
                let who = self.identity(user)?;
                match self.hs.call(request, who.as_deref()).await {
                    Ok(_) => Ok(()),
                    Err(e @ HsError::Refused { .. }) => {
                        let notice = "I could not remove your message with the password \
                                      (not allowed in this room): please delete it yourself.";
                        tracing::info!(%room, error = %e, "cannot redact a password message");
                        let voice = self.room_voice(room).await?;
                        self.send_event(
                            room,
                            &format!("qqbridge.{item_id}.redact-failed"),
                            &voice,
                            "m.room.message",
                            &super::content::notice(notice),
                        )
                        .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            RoomOp::Invite { inviter, user } => self.invite(room, inviter, user).await,
        }
    }

    /// Sends a message event as `sender` under the item's transaction id;
    /// a ghost that is not in the room (any more) joins, then sends again.
    async fn send_as_ghost(
        &self,
        room: &str,
        item_id: i64,
        sender: &str,
        event_type: &str,
        content: &Value,
    ) -> Result<(), MatrixError> {
        let txn = format!("qqbridge.{item_id}");
        match self
            .send_event(room, &txn, sender, event_type, content)
            .await
        {
            Err(MatrixError::Homeserver(HsError::Refused { errcode, .. }))
                if errcode == "M_FORBIDDEN" && !self.ids.is_bot(sender) =>
            {
                // The ghost is not (or no longer) in the room: join
                // it again, then send once more.
                self.store.delete_matrix_members(Some(room), sender).await?;
                let inviter = self.room_voice(room).await?;
                self.ensure_member(room, sender, &inviter, None).await?;
                self.send_event(room, &txn, sender, event_type, content)
                    .await
            }
            other => other,
        }
    }

    async fn send_event(
        &self,
        room: &str,
        txn: &str,
        sender: &str,
        event_type: &str,
        content: &Value,
    ) -> Result<(), MatrixError> {
        use ruma::api::client::message::send_message_event::v3::Request;
        let raw = serde_json::value::to_raw_value(content)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        let request = Request::new_raw(
            room_id(room)?,
            ruma::OwnedTransactionId::from(txn),
            MessageLikeEventType::from(event_type),
            Raw::from_json(raw),
        );
        let who = self.identity(sender)?;
        self.hs.call(request, who.as_deref()).await?;
        Ok(())
    }

    /// Invites `user` as `inviter`; being in the room already is fine.
    pub(crate) async fn invite(
        &self,
        room: &str,
        inviter: &str,
        user: &str,
    ) -> Result<(), MatrixError> {
        use ruma::api::client::membership::invite_user::v3::{
            InvitationRecipient, InviteUserId, Request,
        };
        let recipient = InvitationRecipient::from(InviteUserId::new(parse_user_id(user)?));
        let request = Request::new(room_id(room)?, recipient);
        let who = self.identity(inviter)?;
        match self.hs.call(request, who.as_deref()).await {
            Ok(_) => Ok(()),
            Err(HsError::Refused { message, .. })
                if message.contains("already in the room")
                    || message.contains("already joined") =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Who speaks for the bridge in a room: the DM ghost, or the bot.
    pub(crate) async fn room_voice(&self, room: &str) -> Result<String, MatrixError> {
        Ok(self
            .store
            .matrix_room(room)
            .await?
            .map(|r| r.creator)
            .unwrap_or_else(|| self.ids.bot.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_behind_room_whose_merge_took_everything_lingers() {
        // Well behind, everything read was merged: linger.
        assert!(lingers_after(12, 12, 256));
        // A few lines behind: send at once (a calm room stays calm).
        assert!(!lingers_after(3, 3, 256));
        // More was read than merged (another sender, a reply, the size
        // limit): those go out now.
        assert!(!lingers_after(12, 20, 256));
        // A full merge: more lines are surely waiting.
        assert!(!lingers_after(256, 256, 256));
    }
}
