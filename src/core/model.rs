//! The canonical model every side of the bridge speaks: QQ numbers, chats,
//! presence and rich text. Protocol codecs translate into these types at the
//! edge, so the core never sees a wire format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A real QQ number (never a per-session WebQQ alias). QQ numbers exceed 2^31,
/// so they are always `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Uin(pub u64);

impl fmt::Display for Uin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Uin {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .map(Uin)
            .map_err(|_| ModelError::BadUin(s.chars().take(32).collect()))
    }
}

/// A QQ group (群), identified by its real group number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupNumber(pub u64);

impl fmt::Display for GroupNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A conversation on the QQ side, as seen from one logged-in account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChatId {
    /// One-to-one chat with a buddy (or a stranger over HTTP QQ 1.1).
    Buddy(Uin),
    /// A group chat.
    Group(GroupNumber),
    /// A temporary session (临时会话) with a group member who is not a buddy;
    /// WebQQ needs the group it started from to sign the messages.
    Session { via_group: GroupNumber, uin: Uin },
}

impl ChatId {
    /// The QQ number a one-to-one chat is with (buddy or temporary session).
    pub fn peer(&self) -> Option<Uin> {
        match self {
            ChatId::Buddy(u) | ChatId::Session { uin: u, .. } => Some(*u),
            ChatId::Group(_) => None,
        }
    }
}

/// Stable text form used as a key in the store and in logs:
/// `buddy:10002`, `group:123456`, `sess:123456:10002`.
impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatId::Buddy(u) => write!(f, "buddy:{u}"),
            ChatId::Group(g) => write!(f, "group:{g}"),
            ChatId::Session { via_group, uin } => write!(f, "sess:{via_group}:{uin}"),
        }
    }
}

impl FromStr for ChatId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModelError::BadChatId(s.chars().take(64).collect());
        let mut parts = s.split(':');
        let kind = parts.next().ok_or_else(bad)?;
        let a = parts.next().ok_or_else(bad)?;
        let num = |t: &str| t.parse::<u64>().map_err(|_| bad());
        let chat = match kind {
            "buddy" => ChatId::Buddy(Uin(num(a)?)),
            "group" => ChatId::Group(GroupNumber(num(a)?)),
            "sess" => {
                let b = parts.next().ok_or_else(bad)?;
                ChatId::Session {
                    via_group: GroupNumber(num(a)?),
                    uin: Uin(num(b)?),
                }
            }
            _ => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(chat)
    }
}

/// Presence as users understand it. Protocol codes (HTTP QQ `ST`, WebQQ
/// status strings) map onto this at the protocol edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Online,
    Away,
    Busy,
    /// Only ever our own status: others see an invisible user as offline.
    Invisible,
    #[default]
    Offline,
}

impl Presence {
    /// What other users see: invisible is indistinguishable from offline.
    pub fn as_seen_by_others(self) -> Presence {
        match self {
            Presence::Invisible => Presence::Offline,
            p => p,
        }
    }

    pub fn is_available(self) -> bool {
        matches!(self, Presence::Online | Presence::Away | Presence::Busy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Away => "away",
            Presence::Busy => "busy",
            Presence::Invisible => "invisible",
            Presence::Offline => "offline",
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Presence {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "online" | "available" => Ok(Presence::Online),
            "away" => Ok(Presence::Away),
            "busy" | "dnd" => Ok(Presence::Busy),
            "invisible" | "hidden" => Ok(Presence::Invisible),
            "offline" => Ok(Presence::Offline),
            other => Err(ModelError::BadPresence(other.chars().take(32).collect())),
        }
    }
}

/// One piece of a message. Every chat side renders these its own way through
/// `core::text`; nothing else formats message text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Segment {
    Text {
        text: String,
    },
    /// A classic QQ face by its protocol id (not the panel index).
    Face {
        id: u16,
    },
    /// A mention of a QQ user; `name` is what the sender saw.
    Mention {
        uin: Option<Uin>,
        name: String,
    },
    Link {
        url: String,
        text: Option<String>,
    },
}

/// A message body: an ordered list of segments plus whether it is an action
/// (`/me`, Matrix `m.emote`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RichText {
    pub segments: Vec<Segment>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub action: bool,
}

impl RichText {
    pub fn plain(text: impl Into<String>) -> Self {
        RichText {
            segments: vec![Segment::Text { text: text.into() }],
            action: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| match s {
            Segment::Text { text } => text.is_empty(),
            _ => false,
        })
    }

    /// Appends text, merging with a trailing text segment.
    pub fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(Segment::Text { text: last }) = self.segments.last_mut() {
            last.push_str(text);
        } else {
            self.segments.push(Segment::Text {
                text: text.to_owned(),
            });
        }
    }
}

/// A QQ buddy as listed by a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub uin: Uin,
    pub nick: String,
    /// The name the account owner gave this buddy (WebQQ mark name).
    pub mark_name: Option<String>,
    pub presence: Presence,
    pub face: u32,
    pub category: Option<String>,
}

impl Contact {
    pub fn display_name(&self) -> &str {
        self.mark_name.as_deref().unwrap_or(&self.nick)
    }
}

/// A QQ group and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub number: GroupNumber,
    pub name: String,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub uin: Uin,
    pub nick: String,
    /// The group card (群名片), the member's name inside this group.
    pub card: Option<String>,
}

impl GroupMember {
    pub fn display_name(&self) -> &str {
        self.card
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or(&self.nick)
    }
}

/// A user profile: the fields every protocol can fill, plus labelled extras
/// (city, school, blood type...) in the protocol's own order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    pub uin: Option<Uin>,
    pub nick: String,
    pub face: Option<u32>,
    pub gender: Option<String>,
    pub age: Option<u32>,
    pub province: Option<String>,
    /// Further `label -> value` lines, already human-readable.
    pub details: Vec<(String, String)>,
}

/// Criteria for `search` (HTTP QQ 1.1 Finger: age, gender, province).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchCriteria {
    pub age: Option<u32>,
    /// 0 male, 1 female (HTTP QQ 1.1 SX).
    pub gender: Option<u8>,
    pub province: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("not a QQ number: {0:?}")]
    BadUin(String),
    #[error("not a chat id: {0:?} (expected buddy:N, group:N or sess:G:N)")]
    BadChatId(String),
    #[error("unknown status {0:?} (online, away, busy, invisible, offline)")]
    BadPresence(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chat_id_text_form_round_trips() {
        for chat in [
            ChatId::Buddy(Uin(10002)),
            ChatId::Group(GroupNumber(346167134)),
            ChatId::Session {
                via_group: GroupNumber(1),
                uin: Uin(3924684389),
            },
        ] {
            assert_eq!(chat.to_string().parse::<ChatId>(), Ok(chat));
        }
        assert!("buddy:".parse::<ChatId>().is_err());
        assert!("group:1:2".parse::<ChatId>().is_err());
        assert!("room:1".parse::<ChatId>().is_err());
    }

    #[test]
    fn invisible_is_offline_to_others() {
        assert_eq!(Presence::Invisible.as_seen_by_others(), Presence::Offline);
        assert_eq!(Presence::Busy.as_seen_by_others(), Presence::Busy);
    }

    proptest! {
        #[test]
        fn chat_id_parse_never_panics(s in ".*") {
            let _ = s.parse::<ChatId>();
        }
    }
}
