//! Puppets: one IRC connection per QQ user, and what the network knows
//! about each (its claimed nick, connection, retry state, AWAY, channels,
//! idleness). How they connect and leave is in `puppet_life`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::core::model::{Presence, Uin};
use crate::core::text::irc_lowercase;

use super::link::Link;

/// First and longest wait between a puppet's connection attempts.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(120);
/// After this many failures in a row a message no longer waits for the
/// puppet: the bot relays it while the puppet keeps retrying.
const FAILURES_BEFORE_FALLBACK: u32 = 2;
/// How often a puppet away from its nick tries to take it back.
pub(super) const REGAIN_EVERY: Duration = Duration::from_secs(60);
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

pub(super) struct Retry {
    pub backoff: Backoff,
    pub next_attempt: Option<Instant>,
    pub failures: u32,
    pub last_error: String,
}

pub(crate) struct Puppet {
    pub uin: Uin,
    /// The nick claimed in the store: what the puppet is called when free.
    pub nick: String,
    /// The QQ nickname behind it (realname, fallbacks).
    pub qq_nick: String,
    pub(super) link: Mutex<Option<Arc<Link>>>,
    /// Held while connecting, so one puppet never connects twice at once.
    pub(crate) connecting: tokio::sync::Mutex<()>,
    banned: Mutex<Option<String>>,
    last_active: Mutex<Instant>,
    /// Messages being sent through it right now (not idle even if old).
    busy: AtomicUsize,
    pub(super) retry: Mutex<Retry>,
    /// The AWAY message matching the QQ status (None = here).
    pub(super) away: Mutex<Option<String>>,
    /// Channels it is meant to be in (rejoined after a reconnect).
    channels: Mutex<HashSet<String>>,
    /// Channels that refused it, and when.
    refused: Mutex<HashMap<String, Instant>>,
    pub(super) last_regain: Mutex<Option<Instant>>,
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
    pub(super) fn new(uin: Uin, nick: String, qq_nick: String) -> Puppet {
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

    pub(super) fn idle_for(&self) -> Duration {
        self.last_active
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    pub(super) fn is_busy(&self) -> bool {
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

    pub(super) fn set_parked(&self, parked: bool) {
        if let Ok(mut p) = self.parked.lock() {
            *p = parked;
        }
    }

    pub(super) fn away_message(&self) -> Option<String> {
        self.away.lock().ok().and_then(|a| a.clone())
    }
}

/// The AWAY message for a QQ status; `None` = present.
pub(super) fn away_for(presence: Presence) -> Option<String> {
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
    pub(super) puppets: Mutex<HashMap<Uin, Arc<Puppet>>>,
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

    pub(super) fn connected_count(&self) -> usize {
        self.all()
            .iter()
            .filter(|p| p.live_link().is_some())
            .count()
    }
}
