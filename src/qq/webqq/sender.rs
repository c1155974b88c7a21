//! Sending messages (webqq.md §5.7–§5.10): resolve the chat to aliases,
//! cut the message to the size limit, and send each piece with a fresh
//! `msg_id` through `send_buddy_msg2`, `send_qun_msg2` or (after
//! `get_c2cmsg_sig2` with the group's gid) `send_sess_msg2`. A piece counts
//! as sent only on `{"retcode":0,"result":"ok"}`.

use super::api::{retcode_ends_session, ApiError, SendTarget};
use super::content::{encode_send_content, outgoing_elements, split_elements, SendFont};
use super::session::SessionCore;
use crate::core::model::{ChatId, RichText};
use crate::qq::QqError;
use crate::secret::Secret;

/// Temporary-session signatures kept before the cache starts over.
const MAX_SIGNATURES: usize = 4096;

/// Where the pieces of one message go, in this session's aliases.
enum Route {
    Buddy { to: u64 },
    Group { gid: u64 },
    Session { gid: u64, to: u64 },
}

impl SessionCore {
    pub(super) async fn send_chat(&self, chat: &ChatId, text: &RichText) -> Result<(), QqError> {
        let elements = outgoing_elements(text);
        if elements.is_empty() {
            return Ok(());
        }
        let route = self.route(chat).await?;
        let font = SendFont::default();
        for piece in split_elements(elements, self.options.max_message_bytes) {
            let content = encode_send_content(&piece, &font);
            self.send_piece(&route, &content).await?;
        }
        tracing::debug!(%chat, "WebQQ message sent");
        Ok(())
    }

    async fn route(&self, chat: &ChatId) -> Result<Route, QqError> {
        Ok(match *chat {
            ChatId::Buddy(uin) => Route::Buddy {
                to: self.friend_alias(uin).await?,
            },
            ChatId::Group(number) => Route::Group {
                gid: self.group_ids(number).await?.0,
            },
            ChatId::Session { via_group, uin } => {
                let (gid, code) = self.group_ids(via_group).await?;
                let to = self.member_alias(code, uin).await?;
                Route::Session { gid, to }
            }
        })
    }

    async fn send_piece(&self, route: &Route, content: &str) -> Result<(), QqError> {
        match *route {
            Route::Buddy { to } => Ok(self
                .api
                .send_message(SendTarget::Buddy { to }, content, self.next_msg_id())
                .await?),
            Route::Group { gid } => Ok(self
                .api
                .send_message(SendTarget::Group { gid }, content, self.next_msg_id())
                .await?),
            Route::Session { gid, to } => {
                let signature = self.session_signature(gid, to, false).await?;
                let first = self.send_sess(to, &signature, content).await;
                match first {
                    // A stale or refused signature (108 in the simulator):
                    // fetch a new one once, unless the session is gone.
                    Err(ApiError::Retcode(code)) if code == 108 || !retcode_ends_session(code) => {
                        let signature = self.session_signature(gid, to, true).await?;
                        Ok(self.send_sess(to, &signature, content).await?)
                    }
                    other => Ok(other?),
                }
            }
        }
    }

    async fn send_sess(&self, to: u64, group_sig: &Secret, content: &str) -> Result<(), ApiError> {
        self.api
            .send_message(
                SendTarget::Session { to, group_sig },
                content,
                self.next_msg_id(),
            )
            .await
    }

    /// The cached signature for (gid, member alias), or a fresh one.
    async fn session_signature(&self, gid: u64, to: u64, fresh: bool) -> Result<Secret, QqError> {
        if !fresh {
            if let Some(Some(sig)) = self
                .signatures
                .lock()
                .ok()
                .map(|s| s.get(&(gid, to)).cloned())
            {
                return Ok(sig);
            }
        }
        let sig = self.api.session_signature(gid, to).await?;
        if let Ok(mut signatures) = self.signatures.lock() {
            if signatures.len() >= MAX_SIGNATURES {
                signatures.clear();
            }
            signatures.insert((gid, to), sig.clone());
        }
        Ok(sig)
    }
}
