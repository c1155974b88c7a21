//! The QQ network side: a protocol-neutral session trait and the events a
//! session emits, with one submodule per protocol and the simulator.
//!
//! Nothing here knows Matrix or IRC exist. The core drives sessions through
//! [`QqConnector`] and [`QqSession`] and reads [`QqEvent`]s from the channel
//! it hands to `login`. A further protocol (e.g. OneBot v11) is one more
//! implementation of these two traits.

pub mod http11;
pub mod sim;
pub mod webqq;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::core::model::{
    ChatId, Contact, GroupInfo, Presence, Profile, RichText, SearchCriteria, Uin,
};
use crate::secret::Secret;

/// Which wire protocol a login uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http11,
    Webqq,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http11 => "http11",
            Protocol::Webqq => "webqq",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Protocol {
    type Err = QqError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "http11" | "http" | "1.1" => Ok(Protocol::Http11),
            "webqq" | "web" => Ok(Protocol::Webqq),
            other => Err(QqError::Unsupported(format!(
                "unknown protocol {:?} (http11 or webqq)",
                other.chars().take(16).collect::<String>()
            ))),
        }
    }
}

/// What the core asks a connector to log in with.
#[derive(Clone)]
pub struct LoginRequest {
    pub uin: Uin,
    pub password: Secret,
    /// Initial status after login.
    pub presence: Presence,
    /// A stored login restored when the bridge starts: the connector may
    /// continue the session the server still keeps for this account from
    /// before the restart (see [`QqSession::disconnect`]) instead of
    /// logging in anew. Never set for a login a person typed, since
    /// continuing a session does not check the password.
    pub resume: bool,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("uin", &self.uin)
            .field("password", &self.password)
            .field("presence", &self.presence)
            .field("resume", &self.resume)
            .finish()
    }
}

/// The result of a login step. WebQQ may ask for a captcha first.
pub enum LoginStep {
    Done(Arc<dyn QqSession>),
    NeedCaptcha {
        /// The captcha image (JPEG/PNG bytes) to show to the user.
        image: Vec<u8>,
        pending: Box<dyn PendingLogin>,
    },
}

/// A login waiting for the user to type a captcha code.
#[async_trait]
pub trait PendingLogin: Send {
    async fn submit_captcha(self: Box<Self>, code: String) -> Result<LoginStep, QqError>;
}

/// Where a session sends its events. Boxed events: a channel's first
/// block has room for 32 of them per session from the start, and a box is a
/// pointer where a message event is over a hundred bytes (README,
/// Performance: 10,000 sessions).
pub type EventSender = mpsc::Sender<Box<QqEvent>>;
/// The core's end of a session's [`EventSender`].
pub type EventReceiver = mpsc::Receiver<Box<QqEvent>>;

/// Creates sessions for one protocol against one server.
#[async_trait]
pub trait QqConnector: Send + Sync {
    fn protocol(&self) -> Protocol;
    /// Logs in. Events of the new session are sent to `events` until the
    /// session ends; the last event of a session is always
    /// [`QqEvent::SessionEnded`].
    async fn login(&self, request: LoginRequest, events: EventSender)
        -> Result<LoginStep, QqError>;
}

/// What a protocol can do, so the core can answer "not supported by this
/// protocol" instead of failing on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub groups: bool,
    pub temporary_sessions: bool,
    pub search: bool,
    pub signature: bool,
}

/// How the other side answered a friend request we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// They are our buddy now.
    Added,
    /// A verification request was sent; the answer arrives as an event.
    RequestSent,
    /// They accept nobody.
    Refused,
}

/// One logged-in QQ account.
#[async_trait]
pub trait QqSession: Send + Sync {
    fn uin(&self) -> Uin;
    fn protocol(&self) -> Protocol;
    fn capabilities(&self) -> Capabilities;
    /// The account's own nickname, when the protocol tells it.
    fn own_nick(&self) -> Option<String>;

    async fn contacts(&self) -> Result<Vec<Contact>, QqError>;
    async fn groups(&self) -> Result<Vec<GroupInfo>, QqError>;
    /// Sends a message. Resolves only once the server accepted it, or with
    /// the reason it could not be sent (after the protocol's own retries).
    async fn send(&self, chat: &ChatId, text: &RichText) -> Result<(), QqError>;
    async fn set_presence(&self, presence: Presence) -> Result<(), QqError>;
    async fn profile(&self, uin: Uin) -> Result<Profile, QqError>;
    async fn add_buddy(&self, uin: Uin, message: &str) -> Result<AddOutcome, QqError>;
    /// Answers a friend request from `uin`.
    async fn answer_request(&self, uin: Uin, accept: bool, reason: &str) -> Result<(), QqError>;
    async fn remove_buddy(&self, uin: Uin) -> Result<(), QqError>;
    async fn search(&self, criteria: &SearchCriteria) -> Result<Vec<Profile>, QqError>;
    async fn set_signature(&self, text: &str) -> Result<(), QqError>;
    /// Logs out and stops the session's background tasks.
    async fn logout(&self) -> Result<(), QqError>;
    /// Stops the session's background tasks **without** logging out: the
    /// bridge is stopping. The server keeps the session until its idle
    /// timeout and queues what arrives meanwhile, so a restart within it
    /// misses nothing. Resolves once every event already taken from the
    /// server was emitted; the last event is
    /// [`QqEvent::SessionEnded`]`(`[`EndReason::Stopped`]`)`. Sessions
    /// with nothing to keep on the server log out.
    async fn disconnect(&self) -> Result<(), QqError> {
        self.logout().await
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    LoggedOut,
    /// Logged in elsewhere or kicked by the server.
    Kicked(String),
    /// Re-login failed (e.g. password changed).
    LoginFailed(String),
    /// The bridge stopped it ([`QqSession::disconnect`]); the server may
    /// still hold it for the next start.
    Stopped,
}

/// Events a session emits, already in the canonical model.
#[derive(Debug, Clone, PartialEq)]
pub enum QqEvent {
    Message {
        chat: ChatId,
        sender: Uin,
        /// The sender's name as the protocol gave it (nick or group card).
        sender_name: Option<String>,
        text: RichText,
        /// Stable id of this message on the QQ side for de-duplication, when
        /// the protocol has one.
        remote_id: Option<String>,
    },
    Presence {
        uin: Uin,
        presence: Presence,
    },
    FriendRequest {
        uin: Uin,
        message: String,
    },
    FriendAccepted {
        uin: Uin,
    },
    FriendRefused {
        uin: Uin,
        reason: String,
    },
    /// The buddy or group list changed; re-read it.
    ContactsChanged,
    /// The connection is degraded; the session retries by itself. Sent once
    /// per outage, with [`QqEvent::Reconnected`] when it is over.
    Reconnecting {
        reason: String,
    },
    Reconnected,
    SessionEnded(EndReason),
}

/// Errors of the QQ side. Messages never contain passwords or tokens.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QqError {
    #[error("wrong QQ number or password")]
    BadCredentials,
    #[error("login refused: {0}")]
    LoginRefused(String),
    #[error("wrong captcha code")]
    BadCaptcha,
    #[error("not logged in")]
    NotLoggedIn,
    #[error("the QQ server refused the request ({0})")]
    Refused(String),
    #[error("the QQ server is throttling us; try again later")]
    Throttled,
    #[error("the QQ server did not answer ({0})")]
    Unreachable(String),
    #[error("malformed reply from the QQ server: {0}")]
    Protocol(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("unknown contact {0}")]
    UnknownContact(String),
    #[error("the session has ended")]
    SessionEnded,
}
