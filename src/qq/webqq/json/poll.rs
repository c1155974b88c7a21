//! `channel/poll2` replies and their events (webqq.md §5.5, §6.2).
//!
//! [`parse_poll`] maps every documented reply shape: events, 102 (nothing
//! new), an empty body or `"result":"ok"` (also nothing), 116 with a new
//! `ptwebqq`, and any other retcode. Each event is decoded on its own, so one
//! malformed or unknown event becomes [`PollEvent::Other`] instead of
//! spoiling the batch. The array keeps the server's order (newest first).

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::envelope::{parse_envelope, JsonError};
use super::lenient::{
    array_or_empty, i64_or_zero, opt_u64, string_or_empty, u64_or_zero, vec_skipping_bad,
};
use crate::secret::Secret;

/// Retcode of a poll the server held until its timeout.
pub const RETCODE_NOTHING_NEW: i64 = 102;
/// Retcode carrying a new `ptwebqq` in `p`.
pub const RETCODE_NEW_PTWEBQQ: i64 = 116;

/// What one `poll2` answer means for the poll loop.
#[derive(Debug, Clone, PartialEq)]
pub enum PollReply {
    /// Events, newest first as the server sent them.
    Events(Vec<PollEvent>),
    /// Nothing happened: 102, an empty body, `"result":"ok"`.
    Nothing,
    /// Retcode 116: store this `ptwebqq` and keep polling.
    NewPtwebqq(Secret),
    /// Any other retcode (see webqq.md §8).
    Failed(i64),
}

/// Decodes a `poll2` body.
pub fn parse_poll(body: &str) -> Result<PollReply, JsonError> {
    if body.trim().is_empty() {
        return Ok(PollReply::Nothing);
    }
    let envelope = parse_envelope(body)?;
    match envelope.retcode {
        Some(0) | None if envelope.result.is_some() => {}
        Some(0) => return Ok(PollReply::Nothing),
        Some(RETCODE_NOTHING_NEW) => return Ok(PollReply::Nothing),
        Some(RETCODE_NEW_PTWEBQQ) => {
            return Ok(match envelope.p {
                Some(p) if !p.is_empty() => PollReply::NewPtwebqq(p),
                _ => PollReply::Nothing,
            })
        }
        Some(code) => return Ok(PollReply::Failed(code)),
        None => return Err(JsonError::NoRetcode),
    }
    Ok(match envelope.result {
        Some(Value::Array(items)) => {
            PollReply::Events(items.into_iter().map(PollEvent::from_value).collect())
        }
        _ => PollReply::Nothing,
    })
}

/// One `{"poll_type":…,"value":{…}}` element.
#[derive(Debug, Clone, PartialEq)]
pub enum PollEvent {
    /// `message`: a buddy message.
    Message(BuddyMessage),
    /// `group_message`.
    GroupMessage(GroupMessage),
    /// `sess_message`: a temporary-session message.
    SessMessage(SessMessage),
    /// `discu_message`: a discussion-group message.
    DiscuMessage(DiscuMessage),
    /// `buddies_status_change`.
    StatusChange(StatusChange),
    /// `kick_message`: logged in elsewhere.
    Kick(KickMessage),
    /// `system_message` (`verify_required`, `verify_pass`, …).
    System(SystemMessage),
    /// `buddylist_change`.
    BuddyListChange(BuddyListChange),
    /// `sys_g_msg`: group joins, leaves, requests.
    GroupSystem(GroupSystemMessage),
    /// `input_notify`: the peer is typing.
    InputNotify(Notice),
    /// `shake_message`: window shake.
    Shake(Notice),
    /// Any other type, or a documented type whose value was unusable.
    Other { poll_type: String, value: Value },
}

impl PollEvent {
    /// The `poll_type` string of this event.
    pub fn poll_type(&self) -> &str {
        match self {
            PollEvent::Message(_) => "message",
            PollEvent::GroupMessage(_) => "group_message",
            PollEvent::SessMessage(_) => "sess_message",
            PollEvent::DiscuMessage(_) => "discu_message",
            PollEvent::StatusChange(_) => "buddies_status_change",
            PollEvent::Kick(_) => "kick_message",
            PollEvent::System(_) => "system_message",
            PollEvent::BuddyListChange(_) => "buddylist_change",
            PollEvent::GroupSystem(_) => "sys_g_msg",
            PollEvent::InputNotify(_) => "input_notify",
            PollEvent::Shake(_) => "shake_message",
            PollEvent::Other { poll_type, .. } => poll_type,
        }
    }

    /// Decodes one array element; never fails.
    pub fn from_value(element: Value) -> PollEvent {
        let Value::Object(mut object) = element else {
            return PollEvent::Other {
                poll_type: String::new(),
                value: element,
            };
        };
        let poll_type = match object.remove("poll_type") {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let value = object.remove("value").unwrap_or(Value::Null);
        if !value.is_object() {
            return PollEvent::Other { poll_type, value };
        }
        fn typed<T: serde::de::DeserializeOwned>(value: &Value) -> Option<T> {
            T::deserialize(value).ok()
        }
        let event = match poll_type.as_str() {
            "message" => typed(&value).map(PollEvent::Message),
            "group_message" => typed(&value).map(PollEvent::GroupMessage),
            "sess_message" => typed(&value).map(PollEvent::SessMessage),
            "discu_message" => typed(&value).map(PollEvent::DiscuMessage),
            "buddies_status_change" => typed(&value).map(PollEvent::StatusChange),
            "kick_message" => typed(&value).map(PollEvent::Kick),
            "system_message" => typed(&value).map(PollEvent::System),
            "buddylist_change" => typed(&value).map(PollEvent::BuddyListChange),
            "sys_g_msg" => typed(&value).map(PollEvent::GroupSystem),
            "input_notify" => typed(&value).map(PollEvent::InputNotify),
            "shake_message" => typed(&value).map(PollEvent::Shake),
            _ => None,
        };
        event.unwrap_or(PollEvent::Other { poll_type, value })
    }
}

/// Serialises as `{"poll_type":"…","value":{…}}`, for the simulator.
impl Serialize for PollEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("PollEvent", 2)?;
        out.serialize_field("poll_type", self.poll_type())?;
        match self {
            PollEvent::Message(v) => out.serialize_field("value", v)?,
            PollEvent::GroupMessage(v) => out.serialize_field("value", v)?,
            PollEvent::SessMessage(v) => out.serialize_field("value", v)?,
            PollEvent::DiscuMessage(v) => out.serialize_field("value", v)?,
            PollEvent::StatusChange(v) => out.serialize_field("value", v)?,
            PollEvent::Kick(v) => out.serialize_field("value", v)?,
            PollEvent::System(v) => out.serialize_field("value", v)?,
            PollEvent::BuddyListChange(v) => out.serialize_field("value", v)?,
            PollEvent::GroupSystem(v) => out.serialize_field("value", v)?,
            PollEvent::InputNotify(v) | PollEvent::Shake(v) => out.serialize_field("value", v)?,
            PollEvent::Other { value, .. } => out.serialize_field("value", value)?,
        }
        out.end()
    }
}

impl<'de> Deserialize<'de> for PollEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(PollEvent::from_value(Value::deserialize(d)?))
    }
}

/// `message` (msg_type 9). `from_uin` is the sender's alias.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BuddyMessage {
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub from_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub to_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id2: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub msg_type: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub reply_ip: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub time: u64,
    #[serde(deserialize_with = "array_or_empty")]
    pub content: Vec<Value>,
}

/// `group_message` (msg_type 43). `from_uin` is the group's gid,
/// `send_uin` the member's alias, `info_seq` the real group number.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupMessage {
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub from_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub to_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id2: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub msg_type: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub reply_ip: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub group_code: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub send_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub seq: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub time: u64,
    #[serde(deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub info_seq: Option<u64>,
    #[serde(deserialize_with = "array_or_empty")]
    pub content: Vec<Value>,
}

/// `sess_message` (msg_type 140). `id` is the gid (or discussion id) the
/// chat came through, `ruin` the sender's real number.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessMessage {
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub from_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub to_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id2: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub msg_type: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub reply_ip: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub time: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub id: u64,
    #[serde(deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub ruin: Option<u64>,
    /// 0 = via a group, 1 = via a discussion.
    #[serde(deserialize_with = "i64_or_zero")]
    pub service_type: i64,
    pub flags: Value,
    #[serde(deserialize_with = "array_or_empty")]
    pub content: Vec<Value>,
}

/// `discu_message` (msg_type 42).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscuMessage {
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub from_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub to_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id2: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub msg_type: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub reply_ip: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub did: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub send_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub seq: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub time: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub info_seq: u64,
    #[serde(deserialize_with = "array_or_empty")]
    pub content: Vec<Value>,
}

/// `buddies_status_change`: `status` is a status string (webqq.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusChange {
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
    #[serde(deserialize_with = "string_or_empty")]
    pub status: String,
    #[serde(deserialize_with = "i64_or_zero")]
    pub client_type: i64,
}

/// `kick_message` (msg_type 48), or the older `{"way":"poll",…}` form.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KickMessage {
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub from_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub to_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id2: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub msg_type: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub reply_ip: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub show_reason: i64,
    #[serde(deserialize_with = "string_or_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub way: Option<Value>,
}

/// `system_message`. `type` is `verify_required`, `verify_pass`,
/// `verify_pass_add`, `added_buddy_sig`, …; `account` is the real number.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemMessage {
    #[serde(deserialize_with = "u64_or_zero")]
    pub seq: u64,
    #[serde(rename = "type", deserialize_with = "string_or_empty")]
    pub kind: String,
    #[serde(deserialize_with = "string_or_empty")]
    pub uiuin: String,
    #[serde(deserialize_with = "u64_or_zero")]
    pub from_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub account: u64,
    #[serde(deserialize_with = "string_or_empty")]
    pub msg: String,
    #[serde(deserialize_with = "i64_or_zero")]
    pub allow: i64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub stat: i64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub client_type: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<Value>,
    #[serde(deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u64>,
}

/// `buddylist_change`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BuddyListChange {
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub added_friends: Vec<AddedFriend>,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub removed_friends: Vec<RemovedFriend>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AddedFriend {
    /// Category index.
    #[serde(deserialize_with = "u64_or_zero")]
    pub groupid: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RemovedFriend {
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
}

/// `sys_g_msg` (msg_type 33–38): `t_gcode` is the real group number; the
/// type-specific fields (`new_member`, `admin_nick`, …) stay in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupSystemMessage {
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub from_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub to_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id2: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub msg_type: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub reply_ip: u64,
    #[serde(rename = "type", deserialize_with = "string_or_empty")]
    pub kind: String,
    #[serde(deserialize_with = "u64_or_zero")]
    pub gcode: u64,
    #[serde(deserialize_with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub t_gcode: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The common fields of content-less events (`input_notify`,
/// `shake_message`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Notice {
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub from_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub to_uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub msg_id2: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub msg_type: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub reply_ip: u64,
}
