//! World events → `poll2` events (webqq.md §6.2), each encoded once as
//! `{"poll_type":…,"value":{…}}` with the captured key order, so a batch
//! (or a duplicate) is just these texts joined.
//!
//! | World event | poll_type |
//! |---|---|
//! | message | `message` (msg_type 9) |
//! | temporary-session message | `sess_message` (140, `ruin` = real sender) |
//! | group message | `group_message` (43, `from_uin` = gid, `info_seq` = real number) |
//! | status | `buddies_status_change` (status string, client_type) |
//! | friend request | `system_message` `verify_required` |
//! | request accepted | `system_message` `verify_pass_add` |
//! | request refused | nothing: no WebQQ sample shows one [SIM] |
//!
//! The server itself adds `kick_message` (login elsewhere) and
//! `buddylist_change` (after `allow_and_add2`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::aliases::Aliased;
use super::content::{received_content, Dressing, Element};
use super::sessions::SessionState;
use super::status::{client_type, stat_code, status_string};
use super::WebqqService;
use crate::qq::sim::events::{Event, EventKind, Origin};
use crate::qq::webqq::json::{
    AddedFriend, BuddyListChange, KickMessage, StatusChange, SystemMessage,
};

/// `from_uin` of server notices (kick_message).
const SYSTEM_UIN: u64 = 10_000;
/// `reply_ip` of every message (a server address; opaque to clients).
const REPLY_IP: u64 = 176_498_455;
/// What a kicked session is told.
pub const KICK_REASON: &str = "您的帐号在另一地点登录，您已被迫下线。";

/// `{"poll_type":…,"value":…}`.
#[derive(Serialize)]
struct Polled<'a, T> {
    poll_type: &'a str,
    value: T,
}

/// `message` (buddy).
#[derive(Serialize)]
struct MessageValue {
    msg_id: u64,
    from_uin: u64,
    to_uin: u64,
    msg_id2: u64,
    msg_type: i64,
    reply_ip: u64,
    time: u64,
    content: Vec<Element>,
}

/// `group_message`.
#[derive(Serialize)]
struct GroupMessageValue {
    msg_id: u64,
    from_uin: u64,
    to_uin: u64,
    msg_id2: u64,
    msg_type: i64,
    reply_ip: u64,
    group_code: u64,
    send_uin: u64,
    seq: u64,
    time: u64,
    info_seq: u64,
    content: Vec<Element>,
}

/// `sess_message`.
#[derive(Serialize)]
struct SessMessageValue {
    msg_id: u64,
    from_uin: u64,
    to_uin: u64,
    msg_id2: u64,
    msg_type: i64,
    reply_ip: u64,
    time: u64,
    id: u64,
    ruin: u64,
    service_type: i64,
    flags: SessFlags,
    content: Vec<Element>,
}

#[derive(Serialize)]
struct SessFlags {
    text: u8,
    pic: u8,
    file: u8,
    audio: u8,
    video: u8,
}

fn encode<T: Serialize>(poll_type: &str, value: T) -> Option<String> {
    serde_json::to_string(&Polled { poll_type, value }).ok()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl WebqqService {
    /// The alias of `what` in this session (the own number for oneself).
    fn alias(&self, state: &mut SessionState, what: Aliased) -> u64 {
        state.aliases.alias(what, |n| self.world.number_in_use(n))
    }

    fn dressing(&self, event: &Event) -> Dressing {
        Dressing {
            trailing_space: self.quirks.append_trailing_space,
            qplus_tip: self.quirks.qplus_tip && event.via == Origin::Webqq,
        }
    }

    /// The poll event for a world event, if WebQQ shows it.
    pub(super) fn translate(
        &self,
        state: &mut SessionState,
        own: u64,
        event: &Event,
    ) -> Option<String> {
        let from = event.from;
        match &event.kind {
            EventKind::Message { text } => {
                let value = MessageValue {
                    msg_id: state.take_msg_id(),
                    from_uin: self.alias(state, Aliased::Person(from)),
                    to_uin: own,
                    msg_id2: self.take_msg_id2(),
                    msg_type: 9,
                    reply_ip: REPLY_IP,
                    time: unix_now(),
                    content: received_content(text, self.dressing(event)),
                };
                encode("message", value)
            }
            EventKind::SessionMessage { group, text } => {
                let value = SessMessageValue {
                    msg_id: state.take_msg_id(),
                    from_uin: self.alias(state, Aliased::Person(from)),
                    to_uin: own,
                    msg_id2: self.take_msg_id2(),
                    msg_type: 140,
                    reply_ip: REPLY_IP,
                    time: unix_now(),
                    id: self.alias(state, Aliased::GroupId(*group)),
                    ruin: from,
                    service_type: 0,
                    flags: SessFlags {
                        text: 1,
                        pic: 1,
                        file: 1,
                        audio: 1,
                        video: 1,
                    },
                    content: received_content(text, self.dressing(event)),
                };
                encode("sess_message", value)
            }
            EventKind::GroupMessage { group, text } => {
                let value = GroupMessageValue {
                    msg_id: state.take_msg_id(),
                    from_uin: self.alias(state, Aliased::GroupId(*group)),
                    to_uin: own,
                    msg_id2: self.take_msg_id2(),
                    msg_type: 43,
                    reply_ip: REPLY_IP,
                    group_code: self.alias(state, Aliased::GroupCode(*group)),
                    send_uin: self.alias(state, Aliased::Person(from)),
                    seq: self.take_group_seq(*group),
                    time: unix_now(),
                    info_seq: *group,
                    content: received_content(text, self.dressing(event)),
                };
                encode("group_message", value)
            }
            EventKind::Status { presence } => {
                let protocol = self.world.session(from).map(|s| s.protocol);
                let value = StatusChange {
                    uin: self.alias(state, Aliased::Person(from)),
                    status: status_string(presence.seen_by_others()).to_owned(),
                    client_type: client_type(protocol),
                };
                encode("buddies_status_change", value)
            }
            EventKind::FriendRequest { text } => {
                let value = self.system_message(state, from, "verify_required", text);
                encode("system_message", value)
            }
            EventKind::FriendAccepted { text } => {
                let mut value = self.system_message(state, from, "verify_pass_add", text);
                value.group_id = Some(0);
                encode("system_message", value)
            }
            EventKind::FriendRefused { .. } => None,
        }
    }

    /// A `system_message` about `from` (`account` is the real number).
    fn system_message(
        &self,
        state: &mut SessionState,
        from: u64,
        kind: &str,
        text: &str,
    ) -> SystemMessage {
        let presence = self
            .world
            .presence(from)
            .unwrap_or_default()
            .seen_by_others();
        let protocol = self.world.session(from).map(|s| s.protocol);
        SystemMessage {
            seq: state.take_msg_id(),
            kind: kind.to_owned(),
            uiuin: String::new(),
            from_uin: self.alias(state, Aliased::Person(from)),
            account: from,
            msg: text.to_owned(),
            allow: i64::from(kind == "verify_required"),
            stat: stat_code(presence),
            client_type: client_type(protocol),
            sig: None,
            group_id: None,
        }
    }

    /// The `kick_message` of a session whose account logged in elsewhere.
    pub(super) fn kick_event(&self, state: &mut SessionState, own: u64) -> Option<String> {
        let value = KickMessage {
            msg_id: state.take_msg_id(),
            from_uin: SYSTEM_UIN,
            to_uin: own,
            msg_id2: self.take_msg_id2(),
            msg_type: 48,
            reply_ip: REPLY_IP,
            show_reason: 1,
            reason: KICK_REASON.to_owned(),
            way: None,
        };
        encode("kick_message", value)
    }

    /// The `buddylist_change` telling a session it has a new friend.
    pub(super) fn friend_added_event(
        &self,
        state: &mut SessionState,
        friend: u64,
        category: u32,
    ) -> Option<String> {
        let value = BuddyListChange {
            added_friends: vec![AddedFriend {
                groupid: u64::from(category),
                uin: self.alias(state, Aliased::Person(friend)),
            }],
            removed_friends: Vec::new(),
        };
        encode("buddylist_change", value)
    }
}
