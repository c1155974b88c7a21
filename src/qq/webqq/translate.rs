//! Poll events → [`QqEvent`]s in the canonical model: aliases become real
//! numbers (from the event itself where it carries them, else through
//! `get_friend_uin2`), content becomes cleaned [`RichText`], group senders
//! get their group card as name, and `msg_id2` becomes the `remote_id`.

use super::api::ApiError;
use super::content::received_text;
use super::json::{
    BuddyMessage, GroupMessage, PollEvent, SessMessage, StatusChange, SystemMessage,
};
use super::roster::presence_of_status;
use super::session::SessionCore;
use crate::backoff::{retry, Backoff};
use crate::core::model::{ChatId, GroupNumber, Uin};
use crate::qq::QqEvent;

/// What one poll event asks the poll loop to do.
#[derive(Debug)]
pub(super) enum Outcome {
    Emit(QqEvent),
    /// `kick_message`: the session is over.
    Kicked(String),
    Nothing,
}

/// Said when a `kick_message` carries no reason.
const DEFAULT_KICK_REASON: &str = "logged in elsewhere";

/// Attempts per event when a number lookup fails for network reasons.
const LOOKUP_ATTEMPTS: u32 = 3;

impl SessionCore {
    /// Translates one event, retrying lookups that failed on the network.
    pub(super) async fn translate(&self, event: PollEvent) -> Outcome {
        let mut backoff = Backoff::new(self.options.retry_initial, self.options.retry_max);
        let result = retry(
            &mut backoff,
            LOOKUP_ATTEMPTS,
            |e: &ApiError| matches!(e, ApiError::Transport(_)),
            || self.translate_once(event.clone()),
        )
        .await;
        result.unwrap_or_else(|e| {
            tracing::warn!(error = ?e, "dropping a WebQQ event whose sender is unknown");
            Outcome::Nothing
        })
    }

    async fn translate_once(&self, event: PollEvent) -> Result<Outcome, ApiError> {
        match event {
            PollEvent::Message(m) => self.buddy_message(m).await,
            PollEvent::GroupMessage(m) => self.group_message(m).await,
            PollEvent::SessMessage(m) => self.sess_message(m).await,
            PollEvent::StatusChange(s) => self.status_change(s).await,
            PollEvent::System(s) => self.system_message(s).await,
            PollEvent::Kick(k) => {
                let reason = k.reason.trim();
                Ok(Outcome::Kicked(if reason.is_empty() {
                    DEFAULT_KICK_REASON.to_owned()
                } else {
                    reason.chars().take(200).collect()
                }))
            }
            PollEvent::BuddyListChange(_) => {
                if let Ok(mut roster) = self.roster.lock() {
                    roster.friends = None;
                }
                Ok(Outcome::Emit(QqEvent::ContactsChanged))
            }
            PollEvent::GroupSystem(g) => {
                if let Ok(mut roster) = self.roster.lock() {
                    roster.group_infos.remove(&g.gcode);
                    roster.groups = None;
                }
                Ok(Outcome::Emit(QqEvent::ContactsChanged))
            }
            other => {
                tracing::debug!(poll_type = other.poll_type(), "WebQQ event not bridged");
                Ok(Outcome::Nothing)
            }
        }
    }

    async fn buddy_message(&self, m: BuddyMessage) -> Result<Outcome, ApiError> {
        let text = received_text(&m.content);
        if text.is_empty() {
            return Ok(Outcome::Nothing);
        }
        let sender = self.real_person(m.from_uin).await?;
        let sender_name = self
            .roster
            .lock()
            .ok()
            .and_then(|r| r.friend_name(m.from_uin));
        Ok(Outcome::Emit(QqEvent::Message {
            chat: ChatId::Buddy(sender),
            sender,
            sender_name,
            text,
            remote_id: remote_id(m.msg_id2),
        }))
    }

    async fn group_message(&self, m: GroupMessage) -> Result<Outcome, ApiError> {
        let text = received_text(&m.content);
        if text.is_empty() {
            return Ok(Outcome::Nothing);
        }
        let code = self.code_of_group_event(m.from_uin, m.group_code).await?;
        let group = match m.info_seq.filter(|n| *n != 0) {
            Some(number) => {
                let number = GroupNumber(number);
                self.aliases.learn_group(code, number);
                number
            }
            None => self.aliases.group(&self.api, code).await?,
        };
        let sender = self.real_person(m.send_uin).await?;
        let sender_name = self.member_name(code, m.send_uin).await;
        Ok(Outcome::Emit(QqEvent::Message {
            chat: ChatId::Group(group),
            sender,
            sender_name,
            text,
            remote_id: remote_id(m.msg_id2),
        }))
    }

    /// The group code of a group event: `group_code`, else via the gid.
    async fn code_of_group_event(&self, gid: u64, code: u64) -> Result<u64, ApiError> {
        if code != 0 {
            if gid != 0 {
                if let Ok(mut roster) = self.roster.lock() {
                    roster.gid_to_code.insert(gid, code);
                }
            }
            return Ok(code);
        }
        let known = self
            .roster
            .lock()
            .ok()
            .and_then(|r| r.gid_to_code.get(&gid).copied());
        if let Some(code) = known {
            return Ok(code);
        }
        self.load_groups()
            .await?
            .into_iter()
            .find(|g| g.gid == gid)
            .map(|g| g.code)
            .ok_or_else(|| ApiError::Malformed("group event for an unknown group".to_owned()))
    }

    /// The sender's card or nick in a group, fetching the group's details
    /// once if they are not cached.
    async fn member_name(&self, code: u64, alias: u64) -> Option<String> {
        let cached = self.roster.lock().ok().map(|r| {
            (
                r.group_infos.contains_key(&code),
                r.member_name(code, alias),
            )
        });
        match cached {
            Some((true, name)) => name,
            _ => {
                if let Err(e) = self.load_group_info(code).await {
                    tracing::debug!(error = ?e, "no group details for a sender name");
                }
                self.roster.lock().ok()?.member_name(code, alias)
            }
        }
    }

    async fn sess_message(&self, m: SessMessage) -> Result<Outcome, ApiError> {
        let text = received_text(&m.content);
        if text.is_empty() {
            return Ok(Outcome::Nothing);
        }
        let sender = match m.ruin.filter(|r| *r != 0) {
            Some(real) => {
                let real = Uin(real);
                self.aliases.learn_person(m.from_uin, real);
                real
            }
            None => self.real_person(m.from_uin).await?,
        };
        // Discussion groups (service_type 1) are not in the model: their
        // temporary chats arrive as one-to-one chats.
        let via_group = if m.service_type == 0 {
            match self.code_of_group_event(m.id, 0).await {
                Ok(code) => self.aliases.group(&self.api, code).await.ok(),
                Err(_) => None,
            }
        } else {
            None
        };
        let chat = match via_group {
            Some(via_group) => ChatId::Session {
                via_group,
                uin: sender,
            },
            None => ChatId::Buddy(sender),
        };
        let sender_name = match self.aliases.code_of(via_group.unwrap_or(GroupNumber(0))) {
            Some(code) => self.member_name(code, m.from_uin).await,
            None => None,
        };
        Ok(Outcome::Emit(QqEvent::Message {
            chat,
            sender,
            sender_name,
            text,
            remote_id: remote_id(m.msg_id2),
        }))
    }

    async fn status_change(&self, s: StatusChange) -> Result<Outcome, ApiError> {
        let presence = presence_of_status(&s.status);
        if let Ok(mut roster) = self.roster.lock() {
            roster.presence.insert(s.uin, presence);
        }
        let uin = self.real_person(s.uin).await?;
        Ok(Outcome::Emit(QqEvent::Presence { uin, presence }))
    }

    async fn system_message(&self, s: SystemMessage) -> Result<Outcome, ApiError> {
        let uin = if s.account != 0 {
            let real = Uin(s.account);
            self.aliases.learn_person(s.from_uin, real);
            real
        } else {
            self.real_person(s.from_uin).await?
        };
        Ok(match s.kind.as_str() {
            "verify_required" => Outcome::Emit(QqEvent::FriendRequest {
                uin,
                message: s.msg,
            }),
            "verify_pass" | "verify_pass_add" => Outcome::Emit(QqEvent::FriendAccepted { uin }),
            "added_buddy_sig" => Outcome::Emit(QqEvent::ContactsChanged),
            other => {
                tracing::debug!(kind = other, "WebQQ system message not bridged");
                Outcome::Nothing
            }
        })
    }
}

/// `msg_id2` as the message's stable id (0 means "not given").
fn remote_id(msg_id2: u64) -> Option<String> {
    (msg_id2 != 0).then(|| msg_id2.to_string())
}
