//! [`Http11Session`]: one logged-in HTTP QQ 1.1 account as a [`QqSession`].
//!
//! Every command goes through [`SessionLink::request`] (NULL retries,
//! transparent re-login on `RES=20`). Messages go through the paced
//! [`MessageSender`]; events come from the poller task started at login.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::codec::{AckCode, AddToListCode, Gender, Params, ReplyBody, Version};
use super::contacts::ContactBook;
use super::link::{unexpected, SessionLink};
use super::poller;
use super::profile::{profile_from_info, read_finger};
use super::sender::MessageSender;
use super::wire::CallError;
use crate::backoff::{self, Backoff};
use crate::core::model::{
    ChatId, Contact, GroupInfo, Presence, Profile, RichText, SearchCriteria, Uin,
};
use crate::qq::{AddOutcome, Capabilities, EndReason, Protocol, QqError, QqEvent, QqSession};

/// The GetInfo level `profile()` asks for: 3 and above is the detailed
/// profile (26 keys).
const DETAILED_PROFILE_LEVEL: u32 = 3;

/// One logged-in HTTP QQ 1.1 account.
pub struct Http11Session {
    link: Arc<SessionLink>,
    book: Arc<ContactBook>,
    sender: MessageSender,
    poller: Mutex<Option<JoinHandle<()>>>,
    span: tracing::Span,
}

impl std::fmt::Debug for Http11Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http11Session")
            .field("uin", &self.link.uin())
            .finish_non_exhaustive()
    }
}

impl Http11Session {
    /// Reads the buddy list and starts the poller of a freshly logged-in
    /// account. A buddy list that cannot be read is retried on the next
    /// `contacts()` instead of failing the login.
    pub(crate) async fn start(link: Arc<SessionLink>, span: tracing::Span) -> Self {
        let book = Arc::new(ContactBook::new());
        if let Err(e) = book.refresh(&link).await {
            tracing::warn!(error = %e, "cannot read the buddy list yet");
        }
        let poller = tokio::spawn(poller::run(link.clone(), book.clone()).instrument(span.clone()));
        Http11Session {
            link,
            book,
            sender: MessageSender::new(),
            poller: Mutex::new(Some(poller)),
            span,
        }
    }

    fn take_poller(&self) -> Option<JoinHandle<()>> {
        match self.poller.lock() {
            Ok(mut poller) => poller.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    /// Stops the poller, then logs out on the server or not, then emits
    /// `SessionEnded`.
    async fn stop(&self, log_out: bool) {
        if self.link.events.is_ended() {
            return;
        }
        self.link.close();
        if let Some(poller) = self.take_poller() {
            if poller.await.is_err() {
                tracing::warn!("the poller task failed");
            }
        }
        let reason = if log_out {
            log_out_on_server(&self.link).await;
            EndReason::LoggedOut
        } else {
            EndReason::Stopped
        };
        self.link.events.end(reason).await;
    }

    fn check_open(&self) -> Result<(), QqError> {
        if self.link.is_closing() {
            Err(QqError::SessionEnded)
        } else {
            Ok(())
        }
    }

    /// Sends the verification request twice at once, as the server demands
    /// (one copy is dropped with a late `RES=3`); success if either copy
    /// got `RES=0`.
    async fn request_verification(&self, uin: Uin, message: &str) -> Result<AddOutcome, QqError> {
        let params = Params::AckAddToList {
            target: uin.0,
            code: AckCode::Request,
            text: message.to_owned(),
        };
        let (first, second) =
            tokio::join!(self.link.request(params.clone()), self.link.request(params));
        match (first, second) {
            (Ok(ReplyBody::Done), _) | (_, Ok(ReplyBody::Done)) => Ok(AddOutcome::RequestSent),
            (Ok(ReplyBody::Refused), Ok(ReplyBody::Refused)) => Err(QqError::Refused(
                "the server delivered neither copy of the friend request".into(),
            )),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(other), _) => Err(unexpected("Ack_AddToList", &other)),
        }
    }

    async fn delete_buddy(&self, uin: Uin) -> Result<(), QqError> {
        match self
            .link
            .request(Params::DelFromList { target: uin.0 })
            .await?
        {
            ReplyBody::Done => {
                self.book.mark_stale();
                self.link.events.emit(QqEvent::ContactsChanged).await;
                Ok(())
            }
            ReplyBody::Refused => Err(QqError::Refused(format!(
                "{uin} is not (or no longer) a buddy"
            ))),
            other => Err(unexpected("DelFromList", &other)),
        }
    }
}

#[async_trait]
impl QqSession for Http11Session {
    fn uin(&self) -> Uin {
        self.link.uin()
    }

    fn protocol(&self) -> Protocol {
        Protocol::Http11
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            groups: false,
            temporary_sessions: false,
            search: true,
            signature: false,
        }
    }

    fn own_nick(&self) -> Option<String> {
        self.book.own_nick()
    }

    async fn contacts(&self) -> Result<Vec<Contact>, QqError> {
        self.check_open()?;
        self.book
            .contacts(&self.link)
            .instrument(self.span.clone())
            .await
    }

    /// HTTP QQ 1.1 has no groups: the list is always empty.
    async fn groups(&self) -> Result<Vec<GroupInfo>, QqError> {
        self.check_open()?;
        Ok(Vec::new())
    }

    async fn send(&self, chat: &ChatId, text: &RichText) -> Result<(), QqError> {
        self.check_open()?;
        let ChatId::Buddy(to) = chat else {
            return Err(QqError::Unsupported(
                "HTTP QQ 1.1 has no groups or temporary sessions".into(),
            ));
        };
        self.sender
            .send(&self.link, *to, text)
            .instrument(self.span.clone())
            .await
    }

    async fn set_presence(&self, presence: Presence) -> Result<(), QqError> {
        self.check_open()?;
        self.link
            .change_presence(presence)
            .instrument(self.span.clone())
            .await
    }

    async fn profile(&self, uin: Uin) -> Result<Profile, QqError> {
        self.check_open()?;
        let params = Params::GetInfo {
            level: DETAILED_PROFILE_LEVEL,
            target: uin.0,
        };
        match self
            .link
            .request(params)
            .instrument(self.span.clone())
            .await?
        {
            ReplyBody::GetInfo(info) => Ok(profile_from_info(*info)),
            ReplyBody::Refused => Err(QqError::UnknownContact(uin.to_string())),
            other => Err(unexpected("GetInfo", &other)),
        }
    }

    async fn add_buddy(&self, uin: Uin, message: &str) -> Result<AddOutcome, QqError> {
        self.check_open()?;
        async {
            match self
                .link
                .request(Params::AddToList { target: uin.0 })
                .await?
            {
                ReplyBody::AddToList(reply) => match reply.code {
                    AddToListCode::Added => {
                        self.book.mark_stale();
                        self.link.events.emit(QqEvent::ContactsChanged).await;
                        Ok(AddOutcome::Added)
                    }
                    AddToListCode::NeedsVerification => {
                        self.request_verification(uin, message).await
                    }
                    AddToListCode::Refused(_) => Ok(AddOutcome::Refused),
                },
                ReplyBody::Refused => Err(QqError::Refused("AddToList".into())),
                other => Err(unexpected("AddToList", &other)),
            }
        }
        .instrument(self.span.clone())
        .await
    }

    async fn answer_request(&self, uin: Uin, accept: bool, reason: &str) -> Result<(), QqError> {
        self.check_open()?;
        let params = Params::AckAddToList {
            target: uin.0,
            code: if accept {
                AckCode::Accept
            } else {
                AckCode::Reject
            },
            text: reason.to_owned(),
        };
        async {
            match self.link.request(params).await? {
                ReplyBody::Done => {
                    if accept {
                        self.book.mark_stale();
                        self.link.events.emit(QqEvent::ContactsChanged).await;
                    }
                    Ok(())
                }
                ReplyBody::Refused => Err(QqError::Refused(
                    "the server did not deliver the answer".into(),
                )),
                other => Err(unexpected("Ack_AddToList", &other)),
            }
        }
        .instrument(self.span.clone())
        .await
    }

    async fn remove_buddy(&self, uin: Uin) -> Result<(), QqError> {
        self.check_open()?;
        self.delete_buddy(uin).instrument(self.span.clone()).await
    }

    /// Finger from the VER=1.0 list; criteria left out match everybody.
    async fn search(&self, criteria: &SearchCriteria) -> Result<Vec<Profile>, QqError> {
        self.check_open()?;
        let gender =
            match criteria.gender {
                Some(code) => Some(Gender::from_code(u32::from(code)).ok_or_else(|| {
                    QqError::Unsupported("gender is 0 (male) or 1 (female)".into())
                })?),
                None => None,
            };
        let params = Params::Finger {
            age: criteria.age,
            gender,
            province: criteria.province.clone(),
        };
        self.link
            .run(Version::V1_0, params, Default::default(), |wire, answer| {
                read_finger(wire, answer)
            })
            .instrument(self.span.clone())
            .await
    }

    async fn set_signature(&self, _text: &str) -> Result<(), QqError> {
        Err(QqError::Unsupported(
            "HTTP QQ 1.1 has no personal signature".into(),
        ))
    }

    /// Stops the poller, sends Logout (best effort: the server forgets a
    /// silent session anyway) and emits `SessionEnded(LoggedOut)`.
    async fn logout(&self) -> Result<(), QqError> {
        self.stop(true).instrument(self.span.clone()).await;
        Ok(())
    }

    /// Stops the poller (a GetMsgEx in flight finishes and its messages
    /// are emitted) without Logout: the server keeps the session for `LI`
    /// and queues messages for it, and the next start continues it
    /// (`LoginRequest::resume`).
    async fn disconnect(&self) -> Result<(), QqError> {
        self.stop(false).instrument(self.span.clone()).await;
        Ok(())
    }
}

/// Sends Logout, retrying NULL; the session ends locally whatever happens,
/// since the server forgets a silent session after `LI` anyway.
async fn log_out_on_server(link: &SessionLink) {
    let mut delays = Backoff::new(link.options.retry_initial, link.options.retry_max);
    let answer = backoff::retry(
        &mut delays,
        link.options.retry_attempts,
        |e| matches!(e, CallError::Null(_)),
        || link.wire.call(Version::V1_1, &Params::Logout),
    )
    .await;
    if let Err(e) = answer {
        tracing::warn!(?e, "Logout got no answer; ending the session anyway");
    }
}

impl Drop for Http11Session {
    /// A session dropped without `logout` must not poll forever: stop the
    /// poller, and log out in the background when a runtime is there.
    fn drop(&mut self) {
        if self.link.is_closing() {
            return;
        }
        self.link.close();
        if let Some(poller) = self.take_poller() {
            poller.abort();
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let link = self.link.clone();
            runtime.spawn(
                async move {
                    log_out_on_server(&link).await;
                    link.events.end(EndReason::LoggedOut).await;
                }
                .instrument(self.span.clone()),
            );
        }
    }
}
