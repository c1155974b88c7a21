//! A logged-in WebQQ session: the shared state ([`SessionCore`]) that the
//! poller, the heartbeat and the sender work on, and [`WebqqSession`], the
//! [`QqSession`] the core holds.
//!
//! The work is split by concern: `roster.rs` (contacts, groups, profiles,
//! alias lookups), `sender.rs` (messages), `poller.rs` (poll loop, relink
//! and re-login), `translate.rs` (poll events → [`crate::qq::QqEvent`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::aliases::Aliases;
use super::api::{Api, UinKind};
use super::events::EventSink;
use super::login::{status_string, Credentials, LoggedIn};
use super::roster::Roster;
use super::transport::Transport;
use super::{WebqqOptions, CAPABILITIES};
use crate::core::model::{
    ChatId, Contact, GroupInfo, Presence, Profile, RichText, SearchCriteria, Uin,
};
use crate::qq::EventSender;
use crate::qq::{AddOutcome, Capabilities, EndReason, Protocol, QqError, QqSession};
use crate::secret::Secret;

/// The state every task of one session shares.
#[derive(Debug)]
pub(super) struct SessionCore {
    pub(super) api: Api,
    /// For re-login; `status` follows `set_presence`.
    pub(super) creds: Mutex<Credentials>,
    /// The own, real QQ number.
    pub(super) own: Uin,
    pub(super) own_nick: Mutex<Option<String>>,
    pub(super) aliases: Aliases,
    pub(super) roster: Mutex<Roster>,
    pub(super) events: EventSink,
    /// The `msg_id` of the next message sent (on any send API).
    next_msg_id: AtomicU64,
    /// `get_c2cmsg_sig2` signatures by (gid, member alias).
    pub(super) signatures: Mutex<HashMap<(u64, u64), Secret>>,
    pub(super) options: WebqqOptions,
    /// Set to `true` to stop the poller and the heartbeat.
    pub(super) stop: watch::Sender<bool>,
}

impl SessionCore {
    /// A fresh `msg_id`, increasing by one per message.
    pub(super) fn next_msg_id(&self) -> u64 {
        self.next_msg_id.fetch_add(1, Ordering::SeqCst)
    }

    pub(super) fn credentials(&self) -> Credentials {
        match self.creds.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Forgets everything tied to the session's aliases (after a login
    /// that gave new ones).
    pub(super) fn forget_aliases(&self) {
        self.aliases.clear();
        if let Ok(mut roster) = self.roster.lock() {
            *roster = Roster::default();
        }
        if let Ok(mut signatures) = self.signatures.lock() {
            signatures.clear();
        }
        self.aliases.learn_person(self.own.0, self.own);
    }

    /// Ends the session: stops the tasks and sends `SessionEnded` once.
    pub(super) async fn end(&self, reason: EndReason) {
        let _ = self.stop.send(true);
        self.events.end(reason).await;
    }

    fn ensure_running(&self) -> Result<(), QqError> {
        if self.events.is_ended() {
            Err(QqError::SessionEnded)
        } else {
            Ok(())
        }
    }
}

/// Starts a session after a successful login: learns the own identity and
/// spawns the poller and the heartbeat.
pub(super) async fn start(
    transport: Arc<Transport>,
    creds: Credentials,
    logged_in: LoggedIn,
    events: EventSender,
    options: WebqqOptions,
) -> Arc<WebqqSession> {
    let (stop, _) = watch::channel(false);
    let own = creds.uin;
    let core = Arc::new(SessionCore {
        api: Api::new(transport, logged_in.tokens),
        creds: Mutex::new(creds),
        own,
        own_nick: Mutex::new(logged_in.nick),
        aliases: Aliases::new(),
        roster: Mutex::new(Roster::default()),
        events: EventSink::new(events),
        next_msg_id: AtomicU64::new(rand::thread_rng().gen_range(10_000_000..90_000_000)),
        signatures: Mutex::new(HashMap::new()),
        options,
        stop,
    });
    core.aliases.learn_person(own.0, own);
    confirm_identity(&core, logged_in.login2_uin).await;
    let poller = super::poller::spawn(core.clone());
    Arc::new(WebqqSession {
        core,
        poller: Mutex::new(Some(poller)),
    })
}

/// The login2 `uin` is the real number in every capture; if a server
/// answers something else, ask `get_friend_uin2` what it stands for.
async fn confirm_identity(core: &SessionCore, login2_uin: u64) {
    if login2_uin == 0 || login2_uin == core.own.0 {
        return;
    }
    match core.api.real_number(login2_uin, UinKind::Person).await {
        Ok(real) if real == core.own.0 => core.aliases.learn_person(login2_uin, core.own),
        Ok(_) => tracing::warn!(own = %core.own, "login2 reports a different account"),
        Err(e) => tracing::debug!(error = ?e, "cannot resolve the login2 uin"),
    }
}

/// A logged-in WebQQ account.
#[derive(Debug)]
pub struct WebqqSession {
    core: Arc<SessionCore>,
    /// The poll loop, until [`QqSession::disconnect`] waits for it.
    poller: Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl QqSession for WebqqSession {
    fn uin(&self) -> Uin {
        self.core.own
    }

    fn protocol(&self) -> Protocol {
        Protocol::Webqq
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn own_nick(&self) -> Option<String> {
        self.core.own_nick.lock().ok()?.clone()
    }

    async fn contacts(&self) -> Result<Vec<Contact>, QqError> {
        self.core.ensure_running()?;
        self.core.contacts_now().await
    }

    async fn groups(&self) -> Result<Vec<GroupInfo>, QqError> {
        self.core.ensure_running()?;
        self.core.groups_now().await
    }

    async fn send(&self, chat: &ChatId, text: &RichText) -> Result<(), QqError> {
        self.core.ensure_running()?;
        self.core.send_chat(chat, text).await
    }

    async fn set_presence(&self, presence: Presence) -> Result<(), QqError> {
        self.core.ensure_running()?;
        let status = status_string(presence);
        self.core.api.change_status(status).await?;
        if let Ok(mut creds) = self.core.creds.lock() {
            creds.status = super::login::login_status_string(presence);
        }
        Ok(())
    }

    async fn profile(&self, uin: Uin) -> Result<Profile, QqError> {
        self.core.ensure_running()?;
        self.core.profile_of(uin).await
    }

    async fn add_buddy(&self, _uin: Uin, _message: &str) -> Result<AddOutcome, QqError> {
        Err(QqError::Unsupported(
            "adding buddies is not documented for WebQQ".to_owned(),
        ))
    }

    async fn answer_request(&self, uin: Uin, accept: bool, reason: &str) -> Result<(), QqError> {
        self.core.ensure_running()?;
        if accept {
            let result = self.core.api.allow_and_add(uin.0).await?;
            self.core.aliases.learn_person(result.tuin, uin);
        } else {
            self.core.api.deny_request(uin.0, reason).await?;
        }
        Ok(())
    }

    async fn remove_buddy(&self, _uin: Uin) -> Result<(), QqError> {
        Err(QqError::Unsupported(
            "removing buddies is not documented for WebQQ".to_owned(),
        ))
    }

    async fn search(&self, _criteria: &SearchCriteria) -> Result<Vec<Profile>, QqError> {
        Err(QqError::Unsupported("WebQQ has no user search".to_owned()))
    }

    async fn set_signature(&self, text: &str) -> Result<(), QqError> {
        self.core.ensure_running()?;
        Ok(self.core.api.set_long_nick(text).await?)
    }

    async fn logout(&self) -> Result<(), QqError> {
        if self.core.events.is_ended() {
            return Ok(());
        }
        if let Err(e) = self.core.api.logout().await {
            tracing::debug!(error = ?e, "logout2 failed; ending the session anyway");
        }
        self.core.end(EndReason::LoggedOut).await;
        Ok(())
    }

    /// No `logout2`: the simulator keeps the session for two minutes
    /// without a poll (webqq.md §8) and queues group and buddy messages
    /// for it, which the next start's login takes over. The poll in
    /// flight is awaited for up to a second, as its answer may carry events
    /// the server no longer holds; one still held then is dropped, which
    /// closes its connection, and the server keeps what comes next.
    async fn disconnect(&self) -> Result<(), QqError> {
        let _ = self.core.stop.send(true);
        let poller = self.poller.lock().ok().and_then(|mut p| p.take());
        if let Some(poller) = poller {
            if poller.await.is_err() {
                tracing::warn!(own = %self.core.own, "the WebQQ poll loop failed");
            }
        }
        self.core.end(EndReason::Stopped).await;
        Ok(())
    }
}
