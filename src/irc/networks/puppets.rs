//! Puppets: one IRC connection per QQ user, connected on demand, paced by
//! the network's connect gate, reconnected with backoff, never retried once
//! banned, and disconnected when idle. A puppet keeps one nick per network
//! (claimed in the store) and takes it back when it is free again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use irc::proto::Command;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::core::model::{Presence, Uin};
use crate::core::text::irc_lowercase;
use crate::store::StoreError;

use super::ids::network_scope;
use super::link::{Forward, Link, LinkSpec, LinkTag};
use super::naming::{puppet_realname, puppet_username};
use super::network::Network;
use super::register::Registration;
use super::settings::RFC_NICKLEN;

/// First and longest wait between a puppet's connection attempts.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(120);
/// After this many failures in a row a message no longer waits for the
/// puppet: the bot relays it while the puppet keeps retrying.
const FAILURES_BEFORE_FALLBACK: u32 = 2;
/// How often a puppet away from its nick tries to take it back.
const REGAIN_EVERY: Duration = Duration::from_secs(60);
/// How long a channel that refused a puppet is not asked again.
const REFUSAL_MEMORY: Duration = Duration::from_secs(600);

/// Why a puppet cannot speak now; the bot relays for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unavailable {
    #[error("banned from the network: {0}")]
    Banned(String),
    #[error("the network's puppet limit is reached")]
    Full,
    #[error("cannot connect: {0}")]
    Failing(String),
    #[error("the channel refused it: {0}")]
    Refused(String),
}

struct Retry {
    backoff: Backoff,
    next_attempt: Option<Instant>,
    failures: u32,
    last_error: String,
}

pub(crate) struct Puppet {
    pub uin: Uin,
    /// The nick claimed in the store: what the puppet is called when free.
    pub nick: String,
    /// The QQ nickname behind it (realname, fallbacks).
    pub qq_nick: String,
    link: Mutex<Option<Arc<Link>>>,
    /// Held while connecting, so one puppet never connects twice at once.
    pub(crate) connecting: tokio::sync::Mutex<()>,
    banned: Mutex<Option<String>>,
    last_active: Mutex<Instant>,
    /// Messages being sent through it right now (not idle even if old).
    busy: AtomicUsize,
    retry: Mutex<Retry>,
    /// The AWAY message matching the QQ status (None = here).
    away: Mutex<Option<String>>,
    /// Channels it is meant to be in (rejoined after a reconnect).
    channels: Mutex<HashSet<String>>,
    /// Channels that refused it, and when.
    refused: Mutex<HashMap<String, Instant>>,
    last_regain: Mutex<Option<Instant>>,
    /// Left on purpose (idle, limit): do not reconnect by itself.
    parked: Mutex<bool>,
}

/// Marks a puppet busy while alive.
pub(crate) struct BusyGuard(Arc<Puppet>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Puppet {
    fn new(uin: Uin, nick: String, qq_nick: String) -> Puppet {
        Puppet {
            uin,
            nick,
            qq_nick,
            link: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            banned: Mutex::new(None),
            last_active: Mutex::new(Instant::now()),
            busy: AtomicUsize::new(0),
            retry: Mutex::new(Retry {
                backoff: Backoff::new(RETRY_FIRST, RETRY_MAX),
                next_attempt: None,
                failures: 0,
                last_error: String::new(),
            }),
            away: Mutex::new(None),
            channels: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashMap::new()),
            last_regain: Mutex::new(None),
            parked: Mutex::new(false),
        }
    }

    /// The server is back: the next attempt need not wait.
    pub fn reset_retry(&self) {
        if let Ok(mut r) = self.retry.lock() {
            r.backoff.reset();
            r.next_attempt = None;
        }
    }

    pub fn busy(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::Relaxed);
        BusyGuard(self.clone())
    }

    /// Its connection, if up.
    pub fn live_link(&self) -> Option<Arc<Link>> {
        self.link
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .filter(|l| l.is_alive())
    }

    pub fn link_id(&self) -> Option<u64> {
        self.link
            .lock()
            .ok()
            .and_then(|l| l.as_ref().map(|l| l.id()))
    }

    pub fn banned(&self) -> Option<String> {
        self.banned.lock().ok().and_then(|b| b.clone())
    }

    pub fn ban(&self, reason: &str) {
        if let Ok(mut b) = self.banned.lock() {
            *b = Some(reason.to_owned());
        }
    }

    pub fn touch(&self) {
        if let Ok(mut t) = self.last_active.lock() {
            *t = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        self.last_active
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }

    /// Failing repeatedly: messages should not wait for it.
    pub fn is_failing(&self) -> bool {
        self.retry
            .lock()
            .is_ok_and(|r| r.failures >= FAILURES_BEFORE_FALLBACK)
    }

    pub fn want_channel(&self, channel: &str) {
        if let Ok(mut c) = self.channels.lock() {
            c.insert(channel.to_owned());
        }
    }

    pub fn forget_channel(&self, channel: &str) {
        let folded = irc_lowercase(channel);
        if let Ok(mut c) = self.channels.lock() {
            c.retain(|x| irc_lowercase(x) != folded);
        }
    }

    pub fn wanted_channels(&self) -> Vec<String> {
        self.channels
            .lock()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn refused_recently(&self, channel: &str) -> Option<Duration> {
        let folded = irc_lowercase(channel);
        self.refused
            .lock()
            .ok()?
            .get(&folded)
            .map(|at| at.elapsed())
            .filter(|age| *age < REFUSAL_MEMORY)
    }

    pub fn note_refusal(&self, channel: &str) {
        if let Ok(mut r) = self.refused.lock() {
            r.insert(irc_lowercase(channel), Instant::now());
        }
    }

    pub fn is_parked(&self) -> bool {
        self.parked.lock().is_ok_and(|p| *p)
    }

    fn set_parked(&self, parked: bool) {
        if let Ok(mut p) = self.parked.lock() {
            *p = parked;
        }
    }

    fn away_message(&self) -> Option<String> {
        self.away.lock().ok().and_then(|a| a.clone())
    }
}

/// The AWAY message for a QQ status; `None` = present.
fn away_for(presence: Presence) -> Option<String> {
    match presence {
        Presence::Online => None,
        Presence::Away => Some("away on QQ".to_owned()),
        Presence::Busy => Some("busy on QQ".to_owned()),
        Presence::Invisible | Presence::Offline => Some("offline on QQ".to_owned()),
    }
}

/// The network's puppets by QQ number.
#[derive(Default)]
pub(crate) struct PuppetPool {
    puppets: Mutex<HashMap<Uin, Arc<Puppet>>>,
}

impl PuppetPool {
    pub fn get(&self, uin: Uin) -> Option<Arc<Puppet>> {
        self.puppets.lock().ok()?.get(&uin).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Puppet>> {
        self.puppets
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether one of our puppet connections uses (or is taking) `nick`.
    pub fn answers_to(&self, nick: &str) -> bool {
        let folded = irc_lowercase(nick);
        self.all().iter().any(|p| {
            p.link
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .is_some_and(|l| l.answers_to(&folded))
        })
    }

    fn connected_count(&self) -> usize {
        self.all()
            .iter()
            .filter(|p| p.live_link().is_some())
            .count()
    }
}

impl Network {
    /// The puppet of `uin`, creating it (and claiming its nick) the first
    /// time. `name` is how QQ named the sender, used when the QQ nickname
    /// is not known.
    pub(crate) async fn puppet(&self, uin: Uin, name: &str) -> Result<Arc<Puppet>, StoreError> {
        if let Some(p) = self.puppets.get(uin) {
            return Ok(p);
        }
        let qq_nick = self.qq_nick(uin).unwrap_or_else(|| name.to_owned());
        let nicklen = self.nicklen();
        let scope = network_scope(&self.settings.name);
        let mut claimed = None;
        for candidate in self.naming.candidates(&qq_nick, uin, nicklen) {
            if let Some(name) = self
                .store
                .claim_puppet_name(&scope, uin, &candidate)
                .await?
            {
                claimed = Some(name);
                break;
            }
        }
        let nick = claimed.unwrap_or_else(|| format!("qq{uin}"));
        let mut puppets = self
            .puppets
            .puppets
            .lock()
            .map_err(|_| StoreError::Database("puppet table poisoned".to_owned()))?;
        Ok(puppets
            .entry(uin)
            .or_insert_with(|| Arc::new(Puppet::new(uin, nick, qq_nick)))
            .clone())
    }

    fn nicklen(&self) -> usize {
        self.bot_link()
            .and_then(|l| l.nicklen())
            .unwrap_or(RFC_NICKLEN)
    }

    /// The puppet's connection, connecting it if needed: waits until
    /// `deadline` at most (a failing puppet gets one attempt, if one is
    /// due). Callers fall back to the bot on `Err`.
    pub(crate) async fn puppet_link(
        &self,
        puppet: &Arc<Puppet>,
        deadline: Instant,
    ) -> Result<Arc<Link>, Unavailable> {
        loop {
            if let Some(reason) = puppet.banned() {
                return Err(Unavailable::Banned(reason));
            }
            if let Some(link) = puppet.live_link() {
                return Ok(link);
            }
            let failing = || {
                let why = puppet
                    .retry
                    .lock()
                    .map(|r| r.last_error.clone())
                    .unwrap_or_default();
                Unavailable::Failing(why)
            };
            let Ok(_connecting) = tokio::time::timeout_at(deadline, puppet.connecting.lock()).await
            else {
                return Err(failing());
            };
            if let Some(link) = puppet.live_link() {
                return Ok(link);
            }
            let due = puppet.retry.lock().ok().and_then(|r| r.next_attempt);
            if let Some(due) = due {
                if due > deadline {
                    return Err(failing());
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = self.server_back.notified() => {}
                }
            }
            if !self.make_room(puppet).await {
                return Err(Unavailable::Full);
            }
            let Ok(Some(_permit)) = tokio::time::timeout_at(deadline, self.gate.enter()).await
            else {
                return Err(failing());
            };
            match self.open_puppet(puppet).await {
                Ok(link) => return Ok(link),
                Err(e) if e.is_ban() => {
                    tracing::warn!(network = %self.settings.name, nick = %puppet.nick, error = %e,
                        "puppet banned; it will not be retried");
                    puppet.ban(&e.to_string());
                    return Err(Unavailable::Banned(e.to_string()));
                }
                Err(e) => {
                    tracing::info!(network = %self.settings.name, nick = %puppet.nick, error = %e,
                        "puppet could not connect");
                    if let Ok(mut r) = puppet.retry.lock() {
                        r.failures += 1;
                        r.last_error = e.to_string();
                        r.next_attempt = Some(Instant::now() + r.backoff.next_delay());
                    }
                    if Instant::now() >= deadline {
                        return Err(failing());
                    }
                }
            }
        }
    }

    async fn open_puppet(
        &self,
        puppet: &Arc<Puppet>,
    ) -> Result<Arc<Link>, super::register::LinkError> {
        let nicks = self.naming.registration_nicks(
            &puppet.nick,
            &puppet.qq_nick,
            puppet.uin,
            self.nicklen(),
        );
        let username = puppet_username(puppet.uin);
        let realname = puppet_realname(&puppet.qq_nick, puppet.uin);
        let spec = LinkSpec {
            server: &self.server,
            registration: Registration {
                password: self.server.password.as_ref(),
                sasl: None,
                nicks: &nicks,
                username: &username,
                realname: &realname,
            },
            tag: LinkTag::Puppet(puppet.uin),
            forward: Forward::ToMe,
            rate: self.settings.messages_per_second,
            burst: self.settings.message_burst,
        };
        let link = Link::open(spec, self.events.clone()).await?;
        tracing::debug!(network = %self.settings.name, nick = %link.nick(), uin = %puppet.uin,
            "puppet connected");
        if let Ok(mut slot) = puppet.link.lock() {
            *slot = Some(link.clone());
        }
        if let Ok(mut r) = puppet.retry.lock() {
            r.backoff.reset();
            r.failures = 0;
            r.next_attempt = None;
        }
        puppet.set_parked(false);
        puppet.touch();
        if let Some(message) = puppet.away_message() {
            let _ = link.send(Command::AWAY(Some(message))).await;
        }
        Ok(link)
    }

    /// Makes room for one more puppet connection: fine below the limit;
    /// at it, the least recently active idle puppet leaves. False when
    /// every connected puppet is busy.
    async fn make_room(&self, newcomer: &Arc<Puppet>) -> bool {
        if self.puppets.connected_count() < self.settings.max_puppets {
            return true;
        }
        let victim = self
            .puppets
            .all()
            .into_iter()
            .filter(|p| p.uin != newcomer.uin && !p.is_busy() && p.live_link().is_some())
            .max_by_key(|p| p.idle_for());
        let Some(victim) = victim else {
            return false;
        };
        if let Some(link) = victim.live_link() {
            victim.set_parked(true);
            link.quit("Making room for another QQ user").await;
        }
        true
    }

    /// A puppet's link went down: banned puppets stay down; others that did
    /// not leave on purpose reconnect and rejoin their channels.
    pub(crate) fn puppet_closed(self: &Arc<Self>, uin: Uin, link_id: u64, reason: &str) {
        let Some(puppet) = self.puppets.get(uin) else {
            return;
        };
        if puppet.link_id() != Some(link_id) {
            return;
        }
        let ban = super::register::is_ban_reason(reason);
        if ban {
            tracing::warn!(network = %self.settings.name, nick = %puppet.nick, %reason,
                "puppet banned; it will not be retried");
            puppet.ban(reason);
            return;
        }
        if puppet.is_parked() || self.is_stopping() {
            return;
        }
        tracing::info!(network = %self.settings.name, nick = %puppet.nick, %reason,
            "puppet disconnected; reconnecting");
        if let Ok(mut r) = puppet.retry.lock() {
            r.next_attempt = Some(Instant::now() + r.backoff.next_delay());
        }
        let net = self.clone();
        tokio::spawn(async move { net.reconnect_puppet(puppet).await });
    }

    async fn reconnect_puppet(self: Arc<Self>, puppet: Arc<Puppet>) {
        // Long: the server may be restarting; each failure backs off.
        let deadline = Instant::now() + Duration::from_secs(3600);
        let Ok(link) = self.puppet_link(&puppet, deadline).await else {
            return;
        };
        for channel in puppet.wanted_channels() {
            if self.mappings.by_channel(&channel).is_none() {
                puppet.forget_channel(&channel);
                continue;
            }
            if let Ok(Err(why)) = link.join(&channel).await {
                tracing::info!(network = %self.settings.name, nick = %puppet.nick, %channel, %why,
                    "puppet could not rejoin");
                puppet.note_refusal(&channel);
            }
        }
    }

    /// QQ status of `uin` changed: its puppet goes AWAY or comes back.
    pub(crate) async fn set_presence(&self, uin: Uin, presence: Presence) {
        let Some(puppet) = self.puppets.get(uin) else {
            return;
        };
        let message = away_for(presence);
        let changed = puppet
            .away
            .lock()
            .map(|mut a| std::mem::replace(&mut *a, message.clone()) != message)
            .unwrap_or(false);
        if let (true, Some(link)) = (changed, puppet.live_link()) {
            let _ = link.send(Command::AWAY(message)).await;
        }
    }

    /// Disconnects puppets idle for longer than the idle time, and lets
    /// those away from their nick try to take it back.
    pub(crate) async fn sweep_puppets(&self) {
        for puppet in self.puppets.all() {
            let Some(link) = puppet.live_link() else {
                continue;
            };
            if !puppet.is_busy() && puppet.idle_for() >= self.settings.idle_timeout {
                tracing::debug!(network = %self.settings.name, nick = %puppet.nick, "puppet idle; leaving");
                puppet.set_parked(true);
                tokio::spawn(async move { link.quit("Idle").await });
                continue;
            }
            let due = puppet
                .last_regain
                .lock()
                .map(|t| !matches!(*t, Some(t) if t.elapsed() < REGAIN_EVERY))
                .unwrap_or(false);
            if due {
                self.regain(&puppet, &link).await;
            }
        }
    }

    /// Asks for the puppet's own nick if it is using a fallback.
    async fn regain(&self, puppet: &Puppet, link: &Link) {
        if irc_lowercase(&link.nick()) == irc_lowercase(&puppet.nick) {
            return;
        }
        if let Ok(mut t) = puppet.last_regain.lock() {
            *t = Some(Instant::now());
        }
        let _ = link.change_nick(&puppet.nick).await;
    }

    /// Someone left or changed nick: a puppet waiting for that nick takes it.
    pub(crate) async fn nick_freed(&self, nick: &str) {
        let folded = irc_lowercase(nick);
        let waiting = self
            .puppets
            .all()
            .into_iter()
            .find(|p| irc_lowercase(&p.nick) == folded);
        if let Some(puppet) = waiting {
            if let Some(link) = puppet.live_link() {
                self.regain(&puppet, &link).await;
            }
        }
    }

    /// Every puppet leaves (shutdown).
    pub(crate) async fn quit_puppets(&self, reason: &str) {
        let links: Vec<Arc<Link>> = self
            .puppets
            .all()
            .into_iter()
            .filter_map(|p| {
                p.set_parked(true);
                p.live_link()
            })
            .collect();
        futures::future::join_all(links.iter().map(|l| l.quit(reason))).await;
    }
}
