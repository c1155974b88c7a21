//! The gateway's shared state: the connected clients and the nicks they
//! hold, which connection is authenticated as which bridge user (only that
//! one gets the user's deliveries), each user's buddy view, and the
//! grace-period timers that log a user out of QQ when their client has been
//! gone too long.

use super::captcha::CaptchaImages;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;

use crate::core::text::irc_lowercase;
use crate::core::BridgeCore;
use crate::store::Store;

use super::buddies::{Naming, SyncCtx, UserView};
use super::connection::ClientLink;
use super::numerics::Numerics;
use super::server_time::unix_seconds;
use super::{Settings, BOT_NICK, SIDE_NAME};

/// The bridge user id of a client that registered with `nick`.
pub fn user_id_for(nick: &str) -> String {
    format!("{SIDE_NAME}:{}", irc_lowercase(nick))
}

/// Why a nick cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NickRefused {
    InUse,
}

#[derive(Default)]
struct Registry {
    clients: HashMap<u64, Arc<ClientLink>>,
    /// Folded nick -> client holding it.
    nicks: HashMap<String, u64>,
    /// Bridge user -> registered client whose identity it is.
    identities: HashMap<String, u64>,
    /// Bridge user -> the client authenticated for it.
    attached: HashMap<String, u64>,
    grace: HashMap<String, JoinHandle<()>>,
}

pub(crate) struct Gateway {
    pub core: Arc<BridgeCore>,
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    pub created: SystemTime,
    pub captchas: CaptchaImages,
    registry: Mutex<Registry>,
    views: Mutex<HashMap<String, Arc<AsyncMutex<UserView>>>>,
    next_id: AtomicU64,
    closing: AtomicBool,
    myself: Weak<Gateway>,
}

impl Gateway {
    pub fn new(core: Arc<BridgeCore>, store: Arc<dyn Store>, settings: Settings) -> Arc<Gateway> {
        Arc::new_cyclic(|myself| Gateway {
            core,
            store,
            settings,
            created: SystemTime::now(),
            captchas: CaptchaImages::default(),
            registry: Mutex::new(Registry::default()),
            views: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            myself: myself.clone(),
        })
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding this lock cannot leave it inconsistent in a
        // way that matters more than stopping the gateway would.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Adds a connected client, or says why not (stopping, full, too many
    /// from its address); the reason is what the client is told.
    pub fn add_client(&self, link: Arc<ClientLink>) -> Result<(), &'static str> {
        let mut reg = self.registry();
        if self.is_closing() || reg.clients.len() >= self.settings.max_clients {
            return Err("Too many connections");
        }
        let host = link.info().host;
        let same_host = reg
            .clients
            .values()
            .filter(|c| c.info().host == host)
            .count();
        if same_host >= self.settings.max_clients_per_ip {
            return Err("Too many connections from your address");
        }
        reg.clients.insert(link.id, link);
        Ok(())
    }

    pub fn client_count(&self) -> usize {
        self.registry().clients.len()
    }

    /// Gives `nick` to client `id` (releasing the nick it had). A nick is
    /// taken when another client has it as its nick or as its identity.
    pub fn claim_nick(&self, id: u64, nick: &str) -> Result<(), NickRefused> {
        let folded = irc_lowercase(nick);
        if folded == irc_lowercase(BOT_NICK) {
            return Err(NickRefused::InUse);
        }
        let mut reg = self.registry();
        let held_by_other = reg.nicks.get(&folded).is_some_and(|holder| *holder != id)
            || reg
                .identities
                .get(&user_id_for(nick))
                .is_some_and(|holder| *holder != id);
        if held_by_other {
            return Err(NickRefused::InUse);
        }
        reg.nicks.retain(|_, holder| *holder != id);
        reg.nicks.insert(folded, id);
        Ok(())
    }

    /// Makes `user` the identity of client `id`; false if another has it.
    pub fn claim_identity(&self, id: u64, user: &str) -> bool {
        let mut reg = self.registry();
        if reg.identities.get(user).is_some_and(|holder| *holder != id) {
            return false;
        }
        reg.identities.insert(user.to_owned(), id);
        true
    }

    /// Forgets a client. If it was the one authenticated for its user and
    /// that user is logged in to QQ, the grace period starts.
    pub async fn remove_client(&self, id: u64) {
        let detached_user = {
            let mut reg = self.registry();
            reg.clients.remove(&id);
            reg.nicks.retain(|_, holder| *holder != id);
            reg.identities.retain(|_, holder| *holder != id);
            let user = reg
                .attached
                .iter()
                .find(|(_, holder)| **holder == id)
                .map(|(user, _)| user.clone());
            if let Some(user) = &user {
                reg.attached.remove(user);
            }
            user
        };
        if let Some(user) = detached_user {
            if !self.is_closing() && self.has_qq_session(&user).await {
                self.start_grace(&user);
            }
        }
    }

    /// The client authenticated for `user`.
    pub fn attached_link(&self, user: &str) -> Option<Arc<ClientLink>> {
        let reg = self.registry();
        let id = reg.attached.get(user)?;
        reg.clients.get(id).cloned()
    }

    pub fn is_attached(&self, user: &str, id: u64) -> bool {
        self.registry().attached.get(user) == Some(&id)
    }

    /// Whether `user` has a QQ session (live, or stored and being restored).
    pub async fn has_qq_session(&self, user: &str) -> bool {
        if self.core.login_of(user).is_some() {
            return true;
        }
        match self.store.logins_of(user).await {
            Ok(logins) => !logins.is_empty(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read stored logins");
                true
            }
        }
    }

    pub fn view(&self, user: &str) -> Arc<AsyncMutex<UserView>> {
        let mut views = self
            .views
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        views.entry(user.to_owned()).or_default().clone()
    }

    /// How the view code should address this client.
    pub fn sync_ctx_parts(
        &self,
        link: &ClientLink,
    ) -> (Numerics, irc::proto::Prefix, super::caps::Caps) {
        let info = link.info();
        (
            Numerics::new(&self.settings.server_name, &info.nick),
            link.prefix(),
            info.caps,
        )
    }

    /// Makes `link` the connection of `user`: it gets the buddy list now and
    /// everything queued for the user after. `control_joined`: the client
    /// already sees `&qq` (with only the bot and itself).
    pub async fn attach(&self, user: &str, link: &Arc<ClientLink>, control_joined: bool) {
        {
            let mut reg = self.registry();
            reg.attached.insert(user.to_owned(), link.id);
            if let Some(timer) = reg.grace.remove(user) {
                timer.abort();
            }
        }
        {
            let view = self.view(user);
            let mut v = view.lock().await;
            v.reset_for_client(link.id, control_joined);
            self.refresh_view(user, &mut v, link).await;
            let (numerics, me, caps) = self.sync_ctx_parts(link);
            let ctx = SyncCtx {
                numerics: &numerics,
                me,
                caps,
                since: unix_seconds(self.created),
            };
            let lines = v.sync(&ctx);
            link.send_all(lines);
        }
        tracing::info!(%user, client = link.id, "IRC client attached");
        self.core.user_reachable(user);
    }

    /// Reloads the user's buddies and groups from the core.
    pub async fn refresh_view(&self, user: &str, v: &mut UserView, link: &ClientLink) {
        let own_nick = link.info().nick;
        let naming = Naming {
            store: &*self.store,
            scope: user,
            own_nick: &own_nick,
        };
        let owner = self.core.login_of(user);
        v.owner = owner;
        v.buddies.clear();
        let Some(owner) = owner else {
            v.clear_session();
            return;
        };
        for contact in self.core.contacts(user) {
            v.name(&naming, contact.uin, contact.display_name(), &contact.nick)
                .await;
            if let Some(person) = v.people.get_mut(&contact.uin) {
                person.realname = contact.nick.clone();
            }
            v.buddies
                .insert(contact.uin, contact.presence.as_seen_by_others());
        }
        let groups = self.load_groups(user).await;
        self.apply_groups(v, &naming, owner, groups).await;
    }

    /// Starts (or restarts) the grace timer of `user`: when it runs out
    /// with no client back, the user is logged out of QQ.
    pub fn start_grace(&self, user: &str) {
        let weak = self.myself.clone();
        let grace = self.settings.grace;
        let name = user.to_owned();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(gw) = weak.upgrade() {
                gw.grace_expired(&name).await;
            }
        });
        if let Some(old) = self.registry().grace.insert(user.to_owned(), timer) {
            old.abort();
        }
        tracing::info!(%user, seconds = grace.as_secs(), "IRC client gone; QQ session kept for the grace period");
    }

    async fn grace_expired(&self, user: &str) {
        {
            let mut reg = self.registry();
            reg.grace.remove(user);
            if reg.attached.contains_key(user) {
                return;
            }
        }
        if self.is_closing() {
            return;
        }
        tracing::info!(%user, "grace period over; logging out of QQ");
        match self.core.logout(user).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(%user, error = %e, "logout after the grace period failed"),
        }
        let view = self.view(user);
        let mut v = view.lock().await;
        v.clear_session();
    }

    /// Grace timers for users restored after a restart: they are logged out
    /// unless their client comes back in time.
    pub async fn schedule_restored_logins(&self) {
        let logins = match self.store.logins().await {
            Ok(logins) => logins,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read stored logins");
                return;
            }
        };
        let prefix = format!("{SIDE_NAME}:");
        let mut users: Vec<String> = logins
            .into_iter()
            .filter(|l| l.user.starts_with(&prefix))
            .map(|l| l.user)
            .collect();
        users.sort();
        users.dedup();
        for user in users {
            if self.attached_link(&user).is_none() {
                self.start_grace(&user);
            }
        }
    }

    /// Stops: no more clients, no more timers (QQ sessions stay as they are).
    pub fn close(&self, reason: &str) {
        self.closing.store(true, Ordering::Relaxed);
        let (links, timers) = {
            let mut reg = self.registry();
            let links: Vec<Arc<ClientLink>> = reg.clients.values().cloned().collect();
            let timers: Vec<JoinHandle<()>> = reg.grace.drain().map(|(_, t)| t).collect();
            (links, timers)
        };
        for timer in timers {
            timer.abort();
        }
        for link in links {
            link.close(reason);
        }
    }
}
