//! The bridge hub: owns every bridge user's QQ session, turns QQ events into
//! [`SideEvent`]s for the user's chat side, and carries chat-side messages
//! to QQ. Both directions go through the outbox (see [`crate::core::outbox`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::config::PermissionLevel;
use crate::core::buddy_list::BuddyList;
use crate::core::echo::EchoGuard;
use crate::core::model::{ChatId, Contact, GroupInfo, Presence, RichText, Uin};
use crate::core::outbox::{carry_each, Carried, Courier, Outbox};
use crate::core::side::{chat_id_serde, ChatSide, DeliveryError, SideEvent};
use crate::core::text;
use crate::qq::{
    EndReason, EventReceiver, LoginRequest, LoginStep, PendingLogin, Protocol, QqConnector,
    QqError, QqEvent, QqSession,
};
use crate::store::{MessageLink, NewOutboxItem, OutboxItem, QqLogin, Store, StoreError};

mod hand_over;

/// Channel capacity of one session's event stream: a bound so a flooding QQ
/// session applies backpressure to its own poller, never to other users.
const SESSION_EVENT_QUEUE: usize = 1024;
/// How many stored logins are re-established at once after a restart: a
/// bridge with thousands of users would otherwise open every QQ session
/// (about 15 requests each for HTTP QQ 1.1) in the same instant.
pub const RESTORE_CONCURRENCY: usize = 64;
/// Attempts for one outgoing QQ message before the user is told it failed.
const QQ_SEND_ATTEMPTS: u32 = 8;
/// Default cap on one user's messages waiting for QQ (see
/// [`BridgeCore::set_qq_queue_limit`]).
pub const DEFAULT_QQ_QUEUE_LIMIT: u64 = 1000;

/// Who may use the bridge, from the config's `permissions`.
pub type PermissionFn = Arc<dyn Fn(&str) -> Option<PermissionLevel> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("you are not logged in to QQ; use: login <qq number> <password>")]
    NotLoggedIn,
    #[error("you may not use this bridge")]
    Forbidden,
    #[error(transparent)]
    Qq(#[from] QqError),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    #[error(
        "{0} of your messages are still waiting to be sent to QQ, which is the limit; \
         nothing more is accepted until they are delivered, so send it again then"
    )]
    QueueFull(u64),
}

/// A chat-side message for QQ, as a side hands it to
/// [`BridgeCore::send_all_to_qq`].
#[derive(Debug, Clone)]
pub struct ToQq {
    pub chat: ChatId,
    pub text: RichText,
    /// The sender's own id of it, echoed back in [`SideEvent::Sent`].
    pub origin_id: Option<String>,
    /// Names the message for good (a Matrix event, an IRC queue item), so
    /// that a replay of it is recognised and not queued twice.
    pub link: Option<MessageLink>,
}

/// A chat-side message on its way to QQ, as kept in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutgoingQq {
    owner: Uin,
    #[serde(with = "chat_id_serde")]
    chat: ChatId,
    text: RichText,
    origin_id: Option<String>,
}

pub(crate) struct UserState {
    pub(crate) session: Option<Arc<dyn QqSession>>,
    pub(crate) pending_captcha: Option<Box<dyn PendingLogin>>,
    pub(crate) pending_login: Option<(Uin, Protocol, crate::secret::Secret)>,
    /// Events of the session a pending captcha login will create.
    pub(crate) pending_events: Option<EventReceiver>,
    /// The image of that captcha, until a side shows it.
    pub(crate) pending_captcha_image: Option<Vec<u8>>,
    pub(crate) contacts: BuddyList,
    /// A stored login being re-established after a restart: its QQ number,
    /// and a nudge that cuts its retry wait short.
    pub(crate) restoring: Option<(Uin, Arc<Notify>)>,
}

/// Who may make a user's session current in [`BridgeCore::attach_session`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attach {
    /// A login the user asked for.
    Asked,
    /// The restore of a stored login, unless the user logged in to
    /// another account meanwhile.
    Restored,
}

/// What `login` found about the user before logging in.
enum Before {
    Nothing,
    Session(Uin),
    Restoring(Uin, Arc<Notify>),
}

pub struct BridgeCore {
    pub(crate) store: Arc<dyn Store>,
    connectors: HashMap<Protocol, Arc<dyn QqConnector>>,
    pub(crate) default_protocol: Protocol,
    permissions: PermissionFn,
    pub(crate) users: Mutex<HashMap<String, UserState>>,
    sides: RwLock<HashMap<String, Arc<dyn ChatSide>>>,
    outbox: Outbox,
    echo: EchoGuard,
    /// Most messages one user may have waiting for QQ; beyond it new ones
    /// are refused (and the sender told), so one user whose QQ account is
    /// stuck cannot grow the database without bound.
    qq_queue_limit: AtomicU64,
    /// The tasks relaying each session's events, so that shutdown can
    /// wait until what the sessions took from QQ is stored.
    pumps: Mutex<Vec<JoinHandle<()>>>,
    myself: Weak<BridgeCore>,
}

fn side_destination(user: &str) -> String {
    format!("to:{user}")
}

fn qq_destination(user: &str) -> String {
    format!("qq:{user}")
}

fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A new bridge-wide message id (what links the copies of one message).
pub(crate) fn new_message_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl BridgeCore {
    pub fn new(
        store: Arc<dyn Store>,
        connectors: Vec<Arc<dyn QqConnector>>,
        default_protocol: Protocol,
        permissions: PermissionFn,
    ) -> Arc<BridgeCore> {
        Arc::new_cyclic(|myself| BridgeCore {
            outbox: Outbox::new(store.clone()),
            store,
            connectors: connectors.into_iter().map(|c| (c.protocol(), c)).collect(),
            default_protocol,
            permissions,
            users: Mutex::new(HashMap::new()),
            sides: RwLock::new(HashMap::new()),
            echo: EchoGuard::default(),
            qq_queue_limit: AtomicU64::new(DEFAULT_QQ_QUEUE_LIMIT),
            pumps: Mutex::new(Vec::new()),
            myself: myself.clone(),
        })
    }

    /// Sets the cap on one user's messages waiting for QQ (config
    /// `qq.max_queued_per_user`). At the cap, [`BridgeCore::send_to_qq`]
    /// refuses with [`CoreError::QueueFull`], which the side shows the sender.
    pub fn set_qq_queue_limit(&self, limit: u64) {
        self.qq_queue_limit.store(limit.max(1), Ordering::Relaxed);
    }

    fn courier(&self) -> Option<Arc<dyn Courier>> {
        self.myself.upgrade().map(|c| c as Arc<dyn Courier>)
    }

    /// Registers a chat side; it receives the events of users whose id
    /// starts with `<name>:`.
    pub fn register_side(&self, side: Arc<dyn ChatSide>) {
        if let Ok(mut sides) = self.sides.write() {
            sides.insert(side.name().to_owned(), side);
        }
    }

    fn side_of(&self, user: &str) -> Option<Arc<dyn ChatSide>> {
        // Matrix users are known by their Matrix id (`@alice:example.org`,
        // which has a `:` of its own): they belong to the `matrix` side.
        let prefix = if user.starts_with('@') {
            "matrix"
        } else {
            user.split_once(':').map_or(user, |(p, _)| p)
        };
        self.sides.read().ok()?.get(prefix).cloned()
    }

    /// The captcha image of the user's login waiting for a captcha (taken:
    /// a side shows it once, right after `login` asked for it).
    pub fn take_captcha_image(&self, user: &str) -> Option<Vec<u8>> {
        let mut users = self.users.lock().ok()?;
        users.get_mut(user)?.pending_captcha_image.take()
    }

    pub fn permission(&self, user: &str) -> Option<PermissionLevel> {
        (self.permissions)(user)
    }

    /// The QQ number a user is logged in with.
    pub fn login_of(&self, user: &str) -> Option<Uin> {
        let users = self.users.lock().ok()?;
        users.get(user)?.session.as_ref().map(|s| s.uin())
    }

    pub(crate) fn session_of(&self, user: &str) -> Result<Arc<dyn QqSession>, CoreError> {
        let users = self.users.lock().map_err(|_| CoreError::NotLoggedIn)?;
        users
            .get(user)
            .and_then(|u| u.session.clone())
            .ok_or(CoreError::NotLoggedIn)
    }

    /// The user's buddies as last known (refreshed on login and on change).
    pub fn contacts(&self, user: &str) -> Vec<Contact> {
        let Ok(users) = self.users.lock() else {
            return Vec::new();
        };
        users
            .get(user)
            .map(|u| u.contacts.to_vec())
            .unwrap_or_default()
    }

    /// The user's QQ groups (empty for protocols without groups).
    pub async fn groups(&self, user: &str) -> Result<Vec<GroupInfo>, CoreError> {
        let session = self.session_of(user)?;
        if !session.capabilities().groups {
            return Ok(Vec::new());
        }
        Ok(session.groups().await?)
    }

    pub fn contact(&self, user: &str, uin: Uin) -> Option<Contact> {
        let users = self.users.lock().ok()?;
        users.get(user)?.contacts.get(uin).cloned()
    }

    /// Tells the core a user's side is reachable again (IRC client back):
    /// anything queued for them is delivered now.
    pub fn user_reachable(&self, user: &str) {
        if let Some(courier) = self.courier() {
            self.outbox.wake(&courier, &side_destination(user));
        }
    }

    /// Queues an event for a user's chat side.
    pub async fn notify_user(&self, user: &str, event: &SideEvent) -> Result<(), CoreError> {
        let Some(courier) = self.courier() else {
            return Ok(());
        };
        let payload =
            serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.outbox
            .push(
                &courier,
                &side_destination(user),
                &side_lane(event),
                &payload,
            )
            .await?;
        Ok(())
    }

    /// Queues QQ messages for the user's side together with their links
    /// (one store transaction). Returns how many were duplicates (links
    /// already known), which are not queued.
    async fn notify_user_linked(
        &self,
        user: &str,
        messages: Vec<(SideEvent, MessageLink)>,
    ) -> Result<usize, CoreError> {
        let Some(courier) = self.courier() else {
            return Ok(0);
        };
        let items = messages
            .into_iter()
            .map(|(event, link)| {
                Ok(NewOutboxItem {
                    lane: side_lane(&event),
                    payload: serde_json::to_string(&event)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    link: Some(link),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let ids = self
            .outbox
            .push_all(&courier, &side_destination(user), items, None)
            .await?;
        Ok(ids.iter().filter(|id| id.is_none()).count())
    }

    /// Accepts a chat-side message for QQ. It is stored before this returns,
    /// and delivered in order; the outcome comes back to the user's side as
    /// [`SideEvent::Sent`] or [`SideEvent::SendFailed`].
    pub async fn send_to_qq(
        &self,
        user: &str,
        chat: ChatId,
        text: RichText,
        origin_id: Option<String>,
    ) -> Result<(), CoreError> {
        let message = ToQq {
            chat,
            text,
            origin_id,
            link: None,
        };
        self.send_all_to_qq(user, vec![message]).await.map(|_| ())
    }

    /// [`BridgeCore::send_to_qq`] for a message with an id on its side (a
    /// Matrix event): `link` is recorded in the same store transaction that
    /// queues the message, so a replay of it is recognised and a crash
    /// cannot lose it. Returns false when `link` was known (a duplicate,
    /// nothing queued).
    pub async fn send_to_qq_once(
        &self,
        user: &str,
        chat: ChatId,
        text: RichText,
        origin_id: Option<String>,
        link: MessageLink,
    ) -> Result<bool, CoreError> {
        let message = ToQq {
            chat,
            text,
            origin_id,
            link: Some(link),
        };
        let queued = self.send_all_to_qq(user, vec![message]).await?;
        Ok(queued.first().copied().unwrap_or(false))
    }

    /// Accepts several chat-side messages of one user for QQ, all stored in
    /// one transaction before this returns (a busy IRC channel's lines cost
    /// one commit instead of one each), and delivered in order. All or
    /// none: at the user's queue limit none is accepted
    /// ([`CoreError::QueueFull`]). One entry per message: false when its
    /// link was known (a duplicate, not queued).
    pub async fn send_all_to_qq(
        &self,
        user: &str,
        messages: Vec<ToQq>,
    ) -> Result<Vec<bool>, CoreError> {
        let owner = self.login_of(user).ok_or(CoreError::NotLoggedIn)?;
        let Some(courier) = self.courier() else {
            return Ok(Vec::new());
        };
        let items = messages
            .into_iter()
            .map(|m| {
                let lane = m.chat.to_string();
                let item = OutgoingQq {
                    owner,
                    chat: m.chat,
                    text: m.text,
                    origin_id: m.origin_id,
                };
                Ok(NewOutboxItem {
                    link: m.link,
                    lane,
                    payload: serde_json::to_string(&item)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let limit = self.qq_queue_limit.load(Ordering::Relaxed);
        let pushed = self
            .outbox
            .push_all(&courier, &qq_destination(user), items, Some(limit))
            .await;
        match pushed {
            Ok(ids) => Ok(ids.iter().map(Option::is_some).collect()),
            Err(StoreError::QueueFull { waiting }) => {
                tracing::warn!(%user, waiting, "QQ queue of a user is full; messages refused");
                Err(CoreError::QueueFull(waiting))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Logs a user in. Returns the reply line for the user.
    pub async fn login(
        &self,
        user: &str,
        uin: Uin,
        password: crate::secret::Secret,
        protocol: Option<Protocol>,
    ) -> Result<String, CoreError> {
        if self.permission(user).is_none() {
            return Err(CoreError::Forbidden);
        }
        let current = match self.current_or_claim(user, uin) {
            Before::Nothing => None,
            Before::Session(current) => Some(current),
            Before::Restoring(restoring, nudge) => {
                // The same account is being logged in again from the stored
                // login: a second session would fight it for the account.
                let stored = self.store.logins_of(user).await?;
                if !stored
                    .iter()
                    .any(|l| l.uin == restoring && l.password == password)
                {
                    return Err(QqError::BadCredentials.into());
                }
                nudge.notify_one();
                return Ok(format!(
                    "your QQ login {restoring} is being restored after the restart; \
                     you will be told when it is up"
                ));
            }
        };
        if let Some(current) = current {
            // A user coming back (new IRC connection, bridge restarted)
            // proves it is them with the stored password and resumes the
            // live session instead of logging in twice.
            let stored = self.store.logins_of(user).await?;
            let matches = stored
                .iter()
                .any(|l| l.uin == uin && l.password == password);
            if current == uin && matches {
                self.user_reachable(user);
                return Ok(format!("resumed your QQ session {uin}"));
            }
            if current == uin {
                return Err(QqError::BadCredentials.into());
            }
            return Ok(format!("already logged in as {current}; logout first"));
        }
        let protocol = protocol.unwrap_or(self.default_protocol);
        let connector =
            self.connectors.get(&protocol).cloned().ok_or_else(|| {
                QqError::Unsupported(format!("protocol {protocol} is not available"))
            })?;
        let (tx, rx) = mpsc::channel(SESSION_EVENT_QUEUE);
        let request = LoginRequest {
            uin,
            password: password.clone(),
            presence: Presence::Online,
            resume: false,
        };
        let step = connector.login(request, tx).await?;
        self.finish_login_step(user, uin, protocol, password, step, rx)
            .await
    }

    /// The user's current session, or a restore of the same account in
    /// progress. A restore of another account is claimed (it will give up)
    /// in the same lock, so a restore cannot attach between this check and
    /// the login that follows it.
    fn current_or_claim(&self, user: &str, uin: Uin) -> Before {
        let Ok(mut users) = self.users.lock() else {
            return Before::Nothing;
        };
        let Some(state) = users.get_mut(user) else {
            return Before::Nothing;
        };
        if let Some(session) = &state.session {
            return Before::Session(session.uin());
        }
        match state.restoring.take() {
            Some((restoring, nudge)) if restoring == uin => {
                state.restoring = Some((restoring, nudge.clone()));
                Before::Restoring(restoring, nudge)
            }
            _ => Before::Nothing,
        }
    }

    /// Whether a restore still owns the user's login (no `login` to
    /// another account since).
    fn still_restoring(&self, login: &QqLogin) -> bool {
        self.users.lock().is_ok_and(|users| {
            users
                .get(&login.user)
                .and_then(|s| s.restoring.as_ref())
                .is_some_and(|(uin, _)| *uin == login.uin)
        })
    }

    /// Continues a WebQQ login waiting for a captcha.
    pub async fn submit_captcha(&self, user: &str, code: String) -> Result<String, CoreError> {
        let (pending, creds, events) = {
            let mut users = self.users.lock().map_err(|_| CoreError::NotLoggedIn)?;
            match users.get_mut(user) {
                Some(s) => (
                    s.pending_captcha.take(),
                    s.pending_login.take(),
                    s.pending_events.take(),
                ),
                None => (None, None, None),
            }
        };
        let (Some(pending), Some((uin, protocol, password)), Some(rx)) = (pending, creds, events)
        else {
            return Ok("no login is waiting for a captcha".to_owned());
        };
        match pending.submit_captcha(code).await {
            Ok(step) => {
                self.finish_login_step(user, uin, protocol, password, step, rx)
                    .await
            }
            Err(QqError::BadCaptcha) => {
                // The protocol used the pending login up; start it again so
                // the user gets a fresh image instead of a dead end.
                drop(rx);
                let again = self.login(user, uin, password, Some(protocol)).await?;
                Ok(format!("wrong captcha code; {again}"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn finish_login_step(
        &self,
        user: &str,
        uin: Uin,
        protocol: Protocol,
        password: crate::secret::Secret,
        step: LoginStep,
        rx: EventReceiver,
    ) -> Result<String, CoreError> {
        match step {
            LoginStep::Done(session) => {
                self.store
                    .save_login(&QqLogin {
                        user: user.to_owned(),
                        uin,
                        protocol,
                        password,
                        presence: Presence::Online,
                    })
                    .await?;
                self.attach_session(user, session, rx, Attach::Asked).await;
                Ok(format!("logged in to QQ as {uin} ({protocol})"))
            }
            LoginStep::NeedCaptcha { image, pending } => {
                if let Ok(mut users) = self.users.lock() {
                    let state = users.entry(user.to_owned()).or_insert_with(empty_state);
                    state.pending_captcha = Some(pending);
                    state.pending_login = Some((uin, protocol, password));
                    state.pending_events = Some(rx);
                    state.pending_captcha_image = Some(image);
                }
                Ok(
                    "QQ wants a captcha: look at the image and answer with: captcha <code>"
                        .to_owned(),
                )
            }
        }
    }

    /// Makes a logged-in session the user's current one and starts relaying.
    /// Returns false when a restore lost to a login the user typed.
    async fn attach_session(
        &self,
        user: &str,
        session: Arc<dyn QqSession>,
        rx: EventReceiver,
        how: Attach,
    ) -> bool {
        let owner = session.uin();
        let contacts = session.contacts().await.unwrap_or_else(|e| {
            tracing::warn!(%owner, error = %e, "cannot read the buddy list");
            Vec::new()
        });
        if let Ok(mut users) = self.users.lock() {
            let state = users.entry(user.to_owned()).or_insert_with(empty_state);
            let restoring = state.restoring.take();
            if how == Attach::Restored && restoring.is_none_or(|(uin, _)| uin != owner) {
                return false;
            }
            state.session = Some(session.clone());
            state.contacts = BuddyList::new(contacts);
        }
        // Queued before the pump starts: the side hears of the login before
        // any message of it, and the worker it wakes also carries whatever
        // waited from before (a restart), so no QQ message handed straight
        // to the side (see `hand_over`) can overtake those.
        if let Err(e) = self.notify_user(user, &SideEvent::LoggedIn { owner }).await {
            tracing::error!(error = %e, "cannot queue the login event");
        }
        if let Some(core) = self.myself.upgrade() {
            let user = user.to_owned();
            let pump = tokio::spawn(async move { core.pump_events(user, owner, rx).await });
            if let Ok(mut pumps) = self.pumps.lock() {
                pumps.retain(|p| !p.is_finished());
                pumps.push(pump);
            }
        }
        if let Some(courier) = self.courier() {
            self.outbox.wake(&courier, &qq_destination(user));
        }
        true
    }

    /// Logs the user out and forgets the stored login.
    pub async fn logout(&self, user: &str) -> Result<String, CoreError> {
        let session = self.detach_session(user);
        let Some(session) = session else {
            // A stored login still being restored: stop it and forget it.
            if let Some(uin) = self.take_restore(user) {
                self.store.delete_login(user, uin).await?;
                return Ok(format!(
                    "stopped logging in to QQ {uin} again and forgot it"
                ));
            }
            return Ok("you are not logged in".to_owned());
        };
        let uin = session.uin();
        self.store.delete_login(user, uin).await?;
        if let Err(e) = session.logout().await {
            tracing::warn!(%uin, error = %e, "logout request failed");
        }
        Ok(format!("logged out of QQ {uin}"))
    }

    fn detach_session(&self, user: &str) -> Option<Arc<dyn QqSession>> {
        let mut users = self.users.lock().ok()?;
        let state = users.get_mut(user)?;
        state.contacts = BuddyList::default();
        state.session.take()
    }

    /// Sets the user's QQ status and remembers it for restarts.
    pub async fn set_presence(&self, user: &str, presence: Presence) -> Result<(), CoreError> {
        let session = self.session_of(user)?;
        session.set_presence(presence).await?;
        if let Some(mut login) = self
            .store
            .logins_of(user)
            .await?
            .into_iter()
            .find(|l| l.uin == session.uin())
        {
            login.presence = presence;
            self.store.save_login(&login).await?;
        }
        Ok(())
    }

    /// Logs in again every stored login (after a restart), in the
    /// background, retrying with backoff while the QQ server is unreachable.
    pub async fn restore_logins(&self) -> Result<usize, CoreError> {
        // Whatever any user had queued before the restart goes out first
        // (and from now on new messages may start on their way while they
        // are being stored: `Outbox::push_all`).
        if let Some(courier) = self.courier() {
            self.outbox.resume(&courier, &["to:", "qq:"]).await?;
        }
        let logins = self.store.logins().await?;
        let count = logins.len();
        let slots = Arc::new(Semaphore::new(RESTORE_CONCURRENCY));
        for login in logins {
            let Some(core) = self.myself.upgrade() else {
                break;
            };
            let nudge = Arc::new(Notify::new());
            if let Ok(mut users) = self.users.lock() {
                let state = users.entry(login.user.clone()).or_insert_with(empty_state);
                state.restoring = Some((login.uin, nudge.clone()));
            }
            let slots = slots.clone();
            tokio::spawn(async move { core.restore_login(login, &slots, &nudge).await });
        }
        Ok(count)
    }

    async fn restore_login(&self, login: QqLogin, slots: &Semaphore, nudge: &Notify) {
        self.try_restore_login(&login, slots, nudge).await;
        // Given up (captcha, refused) or done: a `login` typed from now on
        // is an ordinary one.
        if self.still_restoring(&login) {
            self.take_restore(&login.user);
        }
    }

    /// Ends a user's pending restore; returns its QQ number.
    fn take_restore(&self, user: &str) -> Option<Uin> {
        let mut users = self.users.lock().ok()?;
        users.get_mut(user)?.restoring.take().map(|(uin, _)| uin)
    }

    async fn try_restore_login(&self, login: &QqLogin, slots: &Semaphore, nudge: &Notify) {
        let Some(connector) = self.connectors.get(&login.protocol).cloned() else {
            tracing::warn!(uin = %login.uin, protocol = %login.protocol, "stored login uses an unavailable protocol");
            return;
        };
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        loop {
            let (tx, rx) = mpsc::channel(SESSION_EVENT_QUEUE);
            let request = LoginRequest {
                uin: login.uin,
                password: login.password.clone(),
                presence: login.presence,
                // Stored, so checked when it was typed; the session the
                // last run left on the server may still be there.
                resume: true,
            };
            // A slot is held for the login exchange only, not while waiting
            // out a backoff, so one unreachable account cannot hold others up.
            let attempt = {
                let _slot = slots.acquire().await;
                connector.login(request, tx).await
            };
            match attempt {
                Ok(LoginStep::Done(session)) => {
                    if self
                        .attach_session(&login.user, session.clone(), rx, Attach::Restored)
                        .await
                    {
                        tracing::info!(user = %login.user, uin = %login.uin, "restored QQ login");
                    } else {
                        tracing::info!(user = %login.user, uin = %login.uin, "the user logged in to another account meanwhile; the restored login ends");
                        if let Err(e) = session.logout().await {
                            tracing::debug!(uin = %login.uin, error = %e, "logout of the superseded restore failed");
                        }
                    }
                    return;
                }
                Ok(LoginStep::NeedCaptcha { .. }) => {
                    let _ = self
                        .notify_user(
                            &login.user,
                            &SideEvent::Notice {
                                text: format!(
                                    "QQ {} needs a captcha to log in again; use login",
                                    login.uin
                                ),
                            },
                        )
                        .await;
                    return;
                }
                Err(e @ (QqError::Unreachable(_) | QqError::Throttled | QqError::Protocol(_))) => {
                    tracing::warn!(uin = %login.uin, error = %e, "re-login failed; retrying");
                    if !self.still_restoring(login) {
                        return;
                    }
                    // The user typing `login` for this account retries now.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = nudge.notified() => {}
                    }
                }
                Err(e) => {
                    let _ = self
                        .notify_user(
                            &login.user,
                            &SideEvent::Notice {
                                text: format!("could not log in to QQ {} again: {e}", login.uin),
                            },
                        )
                        .await;
                    return;
                }
            }
        }
    }

    /// Reads one session's events until it ends. Events already waiting
    /// are taken together, so a burst of messages is written to the store
    /// in one transaction rather than one commit each.
    async fn pump_events(&self, user: String, owner: Uin, mut rx: EventReceiver) {
        while let Some(first) = rx.recv().await {
            let mut burst = vec![*first];
            while burst.len() < MAX_EVENT_BURST {
                match rx.try_recv() {
                    Ok(event) => burst.push(*event),
                    Err(_) => break,
                }
            }
            // `SessionEnded` is a session's last event.
            let ended = matches!(burst.last(), Some(QqEvent::SessionEnded(_)));
            let span = tracing::debug_span!("qq_events", %user, %owner, n = burst.len());
            // Boxed, like every per-user loop's work: the handler's state
            // exists only while events are handled, so the task of an idle
            // session stays small (README, Performance: 10,000 sessions).
            Box::pin(self.handle_qq_events(&user, owner, burst))
                .instrument(span)
                .await;
            if ended {
                break;
            }
        }
    }

    /// Relays a burst of one session's events in order. Consecutive
    /// messages are queued for the side together; anything else first
    /// writes the messages before it.
    async fn handle_qq_events(&self, user: &str, owner: Uin, burst: Vec<QqEvent>) {
        let mut messages = Vec::new();
        for event in burst {
            if !matches!(event, QqEvent::Message { .. }) {
                self.flush_messages(user, &mut messages).await;
            }
            match self.side_event_of(user, owner, event).await {
                ToSide::Nothing => {}
                ToSide::Linked(event, link) => messages.push((event, link)),
                ToSide::Event(event) => {
                    self.flush_messages(user, &mut messages).await;
                    if let Err(e) = self.notify_user(user, &event).await {
                        tracing::error!(error = %e, "cannot relay a QQ event");
                    }
                }
            }
        }
        self.flush_messages(user, &mut messages).await;
    }

    async fn flush_messages(&self, user: &str, messages: &mut Vec<(SideEvent, MessageLink)>) {
        if messages.is_empty() {
            return;
        }
        let left = self.hand_over(user, std::mem::take(messages)).await;
        if left.is_empty() {
            return;
        }
        let n = left.len();
        match self.notify_user_linked(user, left).await {
            Ok(0) => {}
            Ok(duplicates) => tracing::debug!(duplicates, "dropped duplicate QQ messages"),
            Err(e) => tracing::error!(error = %e, messages = n, "cannot relay QQ messages"),
        }
    }

    /// What one QQ event asks of the user's side, after its effect on the
    /// core's own state (contacts, presence, the session) is applied.
    async fn side_event_of(&self, user: &str, owner: Uin, event: QqEvent) -> ToSide {
        let side_event = match event {
            QqEvent::Message {
                chat,
                sender,
                sender_name,
                text,
                remote_id,
            } => {
                let plain = text::render_plain(&text, text::FaceStyle::Name);
                if self.echo.is_echo(owner, &chat, sender, &plain) {
                    tracing::debug!(%chat, "dropped our own message coming back");
                    return ToSide::Nothing;
                }
                let message_id = new_message_id();
                let sender_name = sender_name
                    .or_else(|| {
                        self.contact(user, sender)
                            .map(|c| c.display_name().to_owned())
                    })
                    .unwrap_or_else(|| sender.to_string());
                let event = SideEvent::Message {
                    owner,
                    chat,
                    sender,
                    sender_name,
                    text,
                    message_id: message_id.clone(),
                    at_ms: unix_ms_now(),
                };
                let Some(remote_id) = remote_id else {
                    return ToSide::Event(event);
                };
                // The link (for de-duplication) and the queued message are
                // written together: a crash between the two would otherwise
                // make the message look delivered when it was not.
                let link = MessageLink {
                    side: format!("qq:{owner}"),
                    side_id: remote_id,
                    owner,
                    chat,
                    message: message_id,
                };
                return ToSide::Linked(event, link);
            }
            QqEvent::Presence { uin, presence } => {
                if let Ok(mut users) = self.users.lock() {
                    if let Some(c) = users.get_mut(user).and_then(|s| s.contacts.get_mut(uin)) {
                        c.presence = presence;
                    }
                }
                SideEvent::Presence {
                    owner,
                    uin,
                    presence,
                }
            }
            QqEvent::FriendRequest { uin, message } => SideEvent::FriendRequest {
                owner,
                uin,
                message,
            },
            QqEvent::FriendAccepted { uin } => {
                self.refresh_contacts(user).await;
                SideEvent::FriendAccepted { owner, uin }
            }
            QqEvent::FriendRefused { uin, reason } => {
                SideEvent::FriendRefused { owner, uin, reason }
            }
            QqEvent::ContactsChanged => {
                self.refresh_contacts(user).await;
                SideEvent::LoggedIn { owner }
            }
            QqEvent::Reconnecting { reason } => SideEvent::Notice {
                text: format!("QQ connection trouble ({reason}); retrying, nothing is lost"),
            },
            QqEvent::Reconnected => {
                // Messages waiting out a retry delay go now, not when the
                // delay (up to 30 s after a long outage) ends.
                if let Some(courier) = self.courier() {
                    self.outbox.wake(&courier, &qq_destination(user));
                }
                SideEvent::Notice {
                    text: "QQ connection restored".to_owned(),
                }
            }
            QqEvent::SessionEnded(reason) => {
                let was_current = self.login_of(user) == Some(owner);
                if was_current {
                    self.detach_session(user);
                }
                let reason = match reason {
                    // The bridge is stopping; its next start restores the
                    // login, so there is nothing to tell.
                    EndReason::Stopped => return ToSide::Nothing,
                    EndReason::LoggedOut => "logged out".to_owned(),
                    EndReason::Kicked(why) => format!("kicked by the QQ server: {why}"),
                    EndReason::LoginFailed(why) => format!("could not log in again: {why}"),
                };
                SideEvent::LoggedOut { owner, reason }
            }
        };
        ToSide::Event(side_event)
    }

    async fn refresh_contacts(&self, user: &str) {
        let Ok(session) = self.session_of(user) else {
            return;
        };
        match session.contacts().await {
            Ok(list) => {
                if let Ok(mut users) = self.users.lock() {
                    if let Some(state) = users.get_mut(user) {
                        state.contacts = BuddyList::new(list);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot refresh the buddy list"),
        }
    }

    /// Stops relaying and disconnects every session **without logging
    /// out**: the QQ server keeps each session (and queues what arrives)
    /// until its idle timeout, and the next start continues or replaces
    /// it, so a restart misses no QQ message. Returns once what the
    /// sessions had taken from QQ is stored. Stored logins and the outbox
    /// stay on disk.
    pub async fn shutdown(&self) {
        self.outbox.stop();
        let sessions: Vec<Arc<dyn QqSession>> = match self.users.lock() {
            Ok(mut users) => users
                .values_mut()
                .filter_map(|u| u.session.take())
                .collect(),
            Err(_) => Vec::new(),
        };
        let stops = sessions.into_iter().map(|s| async move {
            let uin = s.uin();
            match tokio::time::timeout(SHUTDOWN_WAIT, s.disconnect()).await {
                Ok(Ok(())) => tracing::info!(%uin, "QQ session left to the next start"),
                Ok(Err(e)) => tracing::warn!(%uin, error = %e, "disconnecting failed"),
                Err(_) => tracing::warn!(%uin, "disconnecting timed out"),
            }
        });
        futures::future::join_all(stops).await;
        let pumps = match self.pumps.lock() {
            Ok(mut pumps) => std::mem::take(&mut *pumps),
            Err(_) => Vec::new(),
        };
        let drained = futures::future::join_all(pumps);
        if tokio::time::timeout(SHUTDOWN_WAIT, drained).await.is_err() {
            tracing::warn!("QQ events were still being stored at shutdown");
        }
    }

    async fn carry_to_side(&self, user: &str, item: &OutboxItem) -> Carried {
        let event: SideEvent = match serde_json::from_str(&item.payload) {
            Ok(e) => e,
            Err(e) => return Carried::Failed(format!("unreadable outbox item: {e}")),
        };
        let Some(side) = self.side_of(user) else {
            return Carried::Later(format!("no chat side serves {user} yet"));
        };
        match side.deliver(user, &event).await {
            Ok(()) => Carried::Done,
            Err(DeliveryError::Retry(why)) => Carried::Later(why),
            Err(DeliveryError::Permanent(why)) => Carried::Failed(why),
        }
    }

    async fn carry_to_qq(&self, user: &str, item: &OutboxItem) -> Carried {
        let out: OutgoingQq = match serde_json::from_str(&item.payload) {
            Ok(o) => o,
            Err(e) => return Carried::Failed(format!("unreadable outbox item: {e}")),
        };
        let session = match self.session_of(user) {
            Ok(s) if s.uin() == out.owner => s,
            _ => {
                // Logged out (or into another account) since the message was
                // written: it cannot go out as the account it was written as.
                if self
                    .store
                    .logins_of(user)
                    .await
                    .is_ok_and(|l| l.iter().any(|l| l.uin == out.owner))
                {
                    return Carried::Later("QQ session is logging in again".to_owned());
                }
                self.report_send_failure(
                    user,
                    &out,
                    "you are no longer logged in to that QQ account",
                )
                .await;
                return Carried::Failed("owner logged out".to_owned());
            }
        };
        match session.send(&out.chat, &out.text).await {
            Ok(()) => {
                self.echo.remember(
                    out.owner,
                    &out.chat,
                    &text::render_plain(&out.text, text::FaceStyle::Name),
                );
                if let Some(origin_id) = out.origin_id.clone() {
                    let _ = self
                        .notify_user(
                            user,
                            &SideEvent::Sent {
                                owner: out.owner,
                                chat: out.chat,
                                origin_id,
                            },
                        )
                        .await;
                }
                Carried::Done
            }
            Err(e @ (QqError::Unreachable(_) | QqError::Throttled | QqError::NotLoggedIn))
                if item.attempts + 1 < QQ_SEND_ATTEMPTS =>
            {
                Carried::Later(e.to_string())
            }
            Err(e) => {
                self.report_send_failure(user, &out, &e.to_string()).await;
                Carried::Failed(e.to_string())
            }
        }
    }

    async fn report_send_failure(&self, user: &str, out: &OutgoingQq, reason: &str) {
        let preview: String = text::render_plain(&out.text, text::FaceStyle::Name)
            .chars()
            .take(60)
            .collect();
        let event = SideEvent::SendFailed {
            owner: out.owner,
            chat: out.chat,
            origin_id: out.origin_id.clone(),
            preview,
            reason: reason.to_owned(),
        };
        if let Err(e) = self.notify_user(user, &event).await {
            tracing::error!(error = %e, "cannot queue a send-failure notice");
        }
    }
}

fn empty_state() -> UserState {
    UserState {
        restoring: None,
        session: None,
        pending_captcha: None,
        pending_login: None,
        pending_events: None,
        pending_captcha_image: None,
        contacts: BuddyList::default(),
    }
}

#[async_trait]
impl Courier for BridgeCore {
    async fn carry(&self, destination: &str, item: &OutboxItem) -> Carried {
        if let Some(user) = destination.strip_prefix("to:") {
            self.carry_to_side(user, item).await
        } else if let Some(user) = destination.strip_prefix("qq:") {
            self.carry_to_qq(user, item).await
        } else {
            Carried::Failed(format!("unknown outbox destination {destination}"))
        }
    }

    /// A chat side's events go out as runs: each is handed to the side in
    /// order, and the run leaves the outbox in one transaction afterwards
    /// rather than one per event, which halved the store round trips of a
    /// busy user's queue (README, Performance). A crash mid-run hands that
    /// run to the side again, as a crash between a delivery and its removal
    /// always could. QQ sends stay one at a time, so a repeat can only
    /// follow its original directly.
    async fn carry_run(&self, destination: &str, items: &[OutboxItem]) -> Vec<Carried> {
        let Some(user) = destination.strip_prefix("to:") else {
            return match items.first() {
                Some(item) => vec![self.carry(destination, item).await],
                None => Vec::new(),
            };
        };
        carry_each(items, MAX_SIDE_RUN, |item| self.carry_to_side(user, item)).await
    }

    /// Neither a side's events nor QQ sends look at their outbox ids.
    fn carries_unstored(&self, destination: &str) -> bool {
        destination.starts_with("to:") || destination.starts_with("qq:")
    }

    /// A user's QQ queue ran empty: their side may hand over what it held
    /// back while the queue was full.
    fn drained(&self, destination: &str) {
        if let Some(user) = destination.strip_prefix("qq:") {
            if let Some(side) = self.side_of(user) {
                side.qq_queue_drained(user);
            }
        }
    }
}

/// What one QQ event asks of the user's side.
enum ToSide {
    Nothing,
    /// A QQ message with an id: queued with its link, for de-duplication.
    Linked(SideEvent, MessageLink),
    Event(SideEvent),
}

/// Most events of one session relayed together.
const MAX_EVENT_BURST: usize = 64;

/// How long shutdown waits for a session to stop, and then for the events
/// the sessions took to be stored.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Delivery order key of a side event: one lane per chat.
fn side_lane(event: &SideEvent) -> String {
    match event {
        SideEvent::Message { chat, .. } => chat.to_string(),
        _ => String::new(),
    }
}

/// Most side events delivered before their removal is written.
const MAX_SIDE_RUN: usize = 32;
