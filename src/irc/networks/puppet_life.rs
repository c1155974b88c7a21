//! Puppet connections over their life: connecting on demand through the
//! connect gate (making room at the puppet limit), reconnecting after a
//! drop unless banned or parked, AWAY for the QQ status, leaving when idle,
//! and taking a fallback nick back when it is free.

use std::sync::Arc;
use std::time::Duration;

use irc::proto::Command;
use tokio::time::Instant;

use crate::core::model::{Presence, Uin};
use crate::core::text::irc_lowercase;
use crate::store::StoreError;

use super::ids::network_scope;
use super::link::{Forward, Link, LinkSpec, LinkTag};
use super::naming::{puppet_realname, puppet_username};
use super::network::Network;
use super::puppets::{away_for, Puppet, Unavailable, REGAIN_EVERY};
use super::register::{is_ban_reason, LinkError, Registration};

/// How long a puppet that dropped tries to come back before giving up
/// until its next message.
const RECONNECT_FOR: Duration = Duration::from_secs(3600);

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

    async fn open_puppet(&self, puppet: &Arc<Puppet>) -> Result<Arc<Link>, LinkError> {
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
        if is_ban_reason(reason) {
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
        let deadline = Instant::now() + RECONNECT_FOR;
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
