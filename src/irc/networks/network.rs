//! One IRC network: its settings, connections (bot and puppets), channel
//! mappings and delivery queues, and the loop that reads what every one of
//! its connections reports.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{mpsc, watch, Notify};

use crate::config::NetworkConfig;
use crate::core::model::Uin;
use crate::core::outbox::{Courier, Outbox};
use crate::core::BridgeCore;
use crate::store::{Store, StoreError};

use super::link::{Link, LinkEvent, LinkEvents, LinkTag, Server};
use super::mappings::Mappings;
use super::naming::PuppetNaming;
use super::pacing::ConnectGate;
use super::puppets::PuppetPool;
use super::settings::{Settings, RFC_NICKLEN};
use super::{tls, NetworksError};

/// Most connection events [`Network::run_events`] reads at once.
const EVENT_BURST: usize = 64;

pub(crate) struct Network {
    pub settings: Settings,
    pub server: Server,
    pub core: Arc<BridgeCore>,
    pub store: Arc<dyn Store>,
    pub gate: ConnectGate,
    pub naming: PuppetNaming,
    pub mappings: Mappings,
    pub puppets: PuppetPool,
    /// Durable, ordered queues: QQ -> IRC per target, IRC -> QQ per channel.
    pub outbox: Outbox,
    pub events: LinkEvents,
    bot: Mutex<Option<Arc<Link>>>,
    /// Whether the bot is up, for those waiting for it.
    bot_up: watch::Sender<bool>,
    /// Woken when the bot reconnects: the server is back, so puppets
    /// waiting out a retry delay try again at once.
    pub server_back: Notify,
    /// Per-user locks that keep each user's commands in order.
    command_turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// QQ nicknames learned from buddy lists and group member lists.
    qq_nicks: Mutex<HashMap<Uin, String>>,
    /// NICKLEN last announced by the server; 0 = not known yet.
    nicklen: AtomicUsize,
    stopping: AtomicBool,
    /// Relay logins whose QQ queue refused lines as full since it last ran
    /// empty: the channel queues holding those lines are woken when it does.
    relays_held_back: Mutex<HashSet<String>>,
    myself: Weak<Network>,
}

impl Network {
    /// Builds a network (nothing connects yet); the receiver gets what its
    /// connections report, for [`Network::run_events`].
    pub async fn new(
        config: &NetworkConfig,
        core: Arc<BridgeCore>,
        store: Arc<dyn Store>,
    ) -> Result<
        (
            Arc<Network>,
            mpsc::UnboundedReceiver<(LinkTag, u64, LinkEvent)>,
        ),
        NetworksError,
    > {
        let settings = Settings::from_config(config);
        let tls = if config.tls {
            Some(
                tls::connector(config.tls_ca_file.as_deref()).map_err(|e| NetworksError::Tls {
                    network: config.name.clone(),
                    reason: e,
                })?,
            )
        } else {
            None
        };
        let server = Server {
            host: config.host.clone(),
            port: config.port(),
            tls,
            password: config.password.clone().filter(|p| !p.is_empty()),
        };
        let mappings = Mappings::load(&settings, store.as_ref()).await?;
        let (events, rx) = mpsc::unbounded_channel();
        let net = Arc::new_cyclic(|myself| Network {
            gate: ConnectGate::new(settings.connects_per_second),
            naming: PuppetNaming::new(&settings.puppet_nick_template),
            outbox: Outbox::new(store.clone()),
            settings,
            server,
            core,
            store,
            mappings,
            puppets: PuppetPool::default(),
            events,
            bot: Mutex::new(None),
            bot_up: watch::channel(false).0,
            server_back: Notify::new(),
            qq_nicks: Mutex::new(HashMap::new()),
            command_turns: Mutex::new(HashMap::new()),
            nicklen: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            relays_held_back: Mutex::new(HashSet::new()),
            myself: myself.clone(),
        });
        Ok((net, rx))
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn myself(&self) -> Option<Arc<Network>> {
        self.myself.upgrade()
    }

    pub fn courier(&self) -> Option<Arc<dyn Courier>> {
        self.myself.upgrade().map(|n| n as Arc<dyn Courier>)
    }

    /// The bot's connection, when it is up and in its channels.
    pub fn bot_link(&self) -> Option<Arc<Link>> {
        self.bot
            .lock()
            .ok()
            .and_then(|b| b.clone())
            .filter(|l| l.is_alive())
    }

    /// The server's NICKLEN as the bot last learned it (RFC 2812's 9
    /// before the bot ever connected), so a puppet named while the bot is
    /// reconnecting still gets a nick of the right length.
    pub fn nicklen(&self) -> usize {
        match self.nicklen.load(Ordering::Relaxed) {
            0 => RFC_NICKLEN,
            n => n,
        }
    }

    pub(crate) fn set_bot_link(&self, link: Option<Arc<Link>>) {
        if let Some(n) = link.as_ref().and_then(|l| l.nicklen()) {
            self.nicklen.store(n, Ordering::Relaxed);
        }
        let up = link.is_some();
        if let Ok(mut b) = self.bot.lock() {
            *b = link;
        }
        self.bot_up.send_replace(up);
    }

    /// Waits until the bot is connected (so the server's NICKLEN is known
    /// before puppets are named); false if the network stops first.
    pub async fn wait_for_bot(&self) -> bool {
        let mut up = self.bot_up.subscribe();
        loop {
            if self.is_stopping() {
                return false;
            }
            if *up.borrow_and_update() && self.bot_link().is_some() {
                return true;
            }
            if up.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Whether a nick belongs to the bridge on this network (the bot or a
    /// puppet): never relayed back to QQ.
    pub fn is_ours(&self, nick: &str) -> bool {
        let folded = crate::core::text::irc_lowercase(nick);
        self.bot_link().is_some_and(|l| l.answers_to(&folded)) || self.puppets.answers_to(nick)
    }

    pub fn qq_nick(&self, uin: Uin) -> Option<String> {
        self.qq_nicks.lock().ok()?.get(&uin).cloned()
    }

    pub fn learn_qq_nick(&self, uin: Uin, nick: &str) {
        if nick.trim().is_empty() {
            return;
        }
        if let Ok(mut nicks) = self.qq_nicks.lock() {
            nicks.entry(uin).or_insert_with(|| nick.to_owned());
        }
    }

    /// The lock that orders `user`'s commands. Locks nobody holds are
    /// dropped on the way, so the map stays as small as the set of users
    /// with a command running.
    pub fn command_turn(&self, user: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut turns) = self.command_turns.lock() else {
            return Arc::new(tokio::sync::Mutex::new(()));
        };
        turns.retain(|_, lock| Arc::strong_count(lock) > 1);
        turns.entry(user.to_owned()).or_default().clone()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.outbox.stop();
    }

    /// Wakes every delivery queue of this network (after the bot came back,
    /// a relay logged in, or a restart).
    pub async fn wake_queues(&self) -> Result<(), StoreError> {
        let Some(courier) = self.courier() else {
            return Ok(());
        };
        let prefix = super::ids::destination_prefix(self.name());
        // From the first call on, an idle queue is an empty one.
        self.outbox.resume(&courier, &[&prefix]).await
    }

    /// Notes that `relay_user`'s QQ queue was full, so lines wait here.
    pub(crate) fn hold_back_for(&self, relay_user: &str) {
        if let Ok(mut held) = self.relays_held_back.lock() {
            held.insert(relay_user.to_owned());
        }
    }

    /// `relay_user`'s QQ queue ran empty: whether lines waited here for
    /// it (then this network's queues are to be woken).
    pub(crate) fn release_held_back(&self, relay_user: &str) -> bool {
        self.relays_held_back
            .lock()
            .is_ok_and(|mut held| held.remove(relay_user))
    }

    /// Reads what every connection reports, until the network stops. What
    /// is waiting is read together, up to [`EVENT_BURST`] events, so that
    /// a busy channel's lines reach the core's queue for QQ in one store
    /// transaction (see [`Network::relay_channel_lines`]); any other event
    /// first sends on the lines before it, so everything keeps its order.
    pub async fn run_events(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<(LinkTag, u64, LinkEvent)>,
    ) {
        let mut burst = Vec::with_capacity(EVENT_BURST);
        while rx.recv_many(&mut burst, EVENT_BURST).await > 0 {
            if self.is_stopping() {
                break;
            }
            let mut lines = Vec::new();
            for (tag, link_id, event) in burst.drain(..) {
                if let (LinkTag::Bot, LinkEvent::Message(message)) = (&tag, &event) {
                    if let Some(line) = self.channel_line(message) {
                        lines.push(line);
                        continue;
                    }
                }
                self.relay_channel_lines(std::mem::take(&mut lines)).await;
                match (tag, event) {
                    (LinkTag::Bot, LinkEvent::Message(message)) => {
                        self.on_bot_message(*message).await;
                    }
                    (LinkTag::Puppet(uin), LinkEvent::Message(message)) => {
                        self.on_puppet_message(uin, *message).await;
                    }
                    (LinkTag::Puppet(uin), LinkEvent::Closed { reason }) => {
                        self.puppet_closed(uin, link_id, &reason);
                    }
                    // The bot's supervisor watches its link itself.
                    (LinkTag::Bot, LinkEvent::Closed { .. }) => {}
                }
            }
            self.relay_channel_lines(lines).await;
        }
    }

    /// Idle puppets leave and fallback nicks are regained, periodically.
    pub async fn run_sweeper(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.settings.reaper_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.is_stopping() {
            tick.tick().await;
            self.sweep_puppets().await;
        }
    }
}
