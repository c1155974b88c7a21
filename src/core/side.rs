//! The seam between the core and a chat side (IRC gateway, Matrix, IRC
//! networks): what the core delivers to a side, and how a side answers.
//!
//! Everything the core delivers goes through the store's outbox first, so
//! [`SideEvent`] is serialisable and a side that cannot take an event right
//! now (client disconnected, homeserver down) answers
//! [`DeliveryError::Retry`] and gets it again later, in order.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::core::model::{ChatId, Presence, RichText, Uin};

/// Something the core tells one bridge user through their chat side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SideEvent {
    /// A QQ message for the user.
    Message {
        /// The user's own QQ number (the login that received it).
        owner: Uin,
        #[serde(with = "chat_id_text")]
        chat: ChatId,
        sender: Uin,
        /// The sender's name as QQ showed it (nick, mark name or group card).
        sender_name: String,
        text: RichText,
        /// The bridge-wide message id (for replies and de-duplication).
        message_id: String,
        /// When the bridge received it (Unix milliseconds), so a message
        /// replayed after an outage keeps its original time.
        #[serde(default)]
        at_ms: u64,
    },
    Presence {
        owner: Uin,
        uin: Uin,
        presence: Presence,
    },
    FriendRequest {
        owner: Uin,
        uin: Uin,
        message: String,
    },
    FriendAccepted {
        owner: Uin,
        uin: Uin,
    },
    FriendRefused {
        owner: Uin,
        uin: Uin,
        reason: String,
    },
    /// The user's QQ session is up; the side should (re)build its view of
    /// contacts and groups.
    LoggedIn {
        owner: Uin,
    },
    /// The QQ session ended (logout, kicked, re-login failed).
    LoggedOut {
        owner: Uin,
        reason: String,
    },
    /// A message the user sent could not be delivered to QQ.
    SendFailed {
        owner: Uin,
        #[serde(with = "chat_id_text")]
        chat: ChatId,
        /// The side's id of the failed message, when it had one.
        origin_id: Option<String>,
        preview: String,
        reason: String,
    },
    /// QQ accepted a message the user sent (for read receipts).
    Sent {
        owner: Uin,
        #[serde(with = "chat_id_text")]
        chat: ChatId,
        origin_id: String,
    },
    /// A line from the bridge bot (status, warnings).
    Notice {
        text: String,
    },
}

/// Why a side did not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Not now (client away, server down): keep it and try again later.
    #[error("delivery postponed: {0}")]
    Retry(String),
    /// Never (e.g. the room is gone): the core logs it and moves on.
    #[error("delivery impossible: {0}")]
    Permanent(String),
}

/// A chat side as the core sees it.
#[async_trait]
pub trait ChatSide: Send + Sync {
    /// Short name: the prefix of the user ids this side owns, followed by
    /// `:` (e.g. `gateway` owns `gateway:alice`), and the outbox
    /// destination prefix. Matrix user ids (`@alice:example.org`) belong to
    /// the side named `matrix`.
    fn name(&self) -> &str;
    /// Delivers one event to one of this side's users. Called in order per
    /// user, never concurrently for the same user.
    async fn deliver(&self, user: &str, event: &SideEvent) -> Result<(), DeliveryError>;
    /// Whether [`ChatSide::deliver`] stores an event durably before it
    /// answers `Ok` (in a queue of the side's own), without waiting on a
    /// remote server to do so. The core then hands a user's QQ messages to
    /// the side at once when nothing of theirs waits in its own outbox,
    /// instead of storing them there first: the side's commit keeps them
    /// across a crash all the same (README, Performance).
    fn stores_deliveries(&self) -> bool {
        false
    }
    /// `user`'s queue for QQ ran empty: everything in it was sent or
    /// reported. A side that holds messages back while that queue was full
    /// ([`crate::core::bridge::CoreError::QueueFull`]) may hand them over now
    /// rather than when its own retry delay ends.
    fn qq_queue_drained(&self, _user: &str) {}
}

/// ChatId is stored in its stable text form (`buddy:10002`), which keeps
/// the outbox readable and independent of serde's enum layout.
pub(crate) mod chat_id_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::core::model::ChatId;

    pub fn serialize<S: Serializer>(chat: &ChatId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(chat)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChatId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) use chat_id_text as chat_id_serde;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json() {
        let e = SideEvent::Message {
            owner: Uin(10001),
            chat: ChatId::Buddy(Uin(10002)),
            sender: Uin(10002),
            sender_name: "微程".into(),
            text: RichText::plain("你好"),
            message_id: "m1".into(),
            at_ms: 1_700_000_000_000,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"chat\":\"buddy:10002\""), "{json}");
        assert_eq!(serde_json::from_str::<SideEvent>(&json).unwrap(), e);
    }
}
