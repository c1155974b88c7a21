//! Relay logins: the QQ accounts of `relays` that the bridge logs in itself
//! (through the core, so its outbox, echo guard and de-duplication apply)
//! to carry IRC users' messages into bridged chats; and what happens when
//! one comes up: queued IRC messages go out, and with `connect_members`
//! every member of its bridged groups gets a puppet.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::config::RelayConfig;
use crate::core::model::{ChatId, Uin};
use crate::core::CoreError;
use crate::qq::QqError;

use super::ids::{parse_user_id, relay_user_id, Who};
use super::network::Network;

/// How long a pre-connected member's puppet may take to connect.
const MEMBER_CONNECT_WAIT: Duration = Duration::from_secs(600);

impl Network {
    /// Logs in the configured relays that the store will not restore: a
    /// stored login with the configured credentials is restored by the
    /// core; a stale one (other account or password) is replaced.
    pub(crate) async fn start_relays(self: &Arc<Self>) -> Result<(), crate::store::StoreError> {
        // Relays no longer in the config are not logged in again.
        for login in self.store.logins().await? {
            let configured = self.is_configured_relay(&login.user);
            let ours = match parse_user_id(&login.user) {
                Some((net, Who::Relay(_))) => net == self.name(),
                _ => false,
            };
            if ours && !configured {
                tracing::info!(network = %self.name(), uin = %login.uin, "forgetting a relay no longer configured");
                self.store.delete_login(&login.user, login.uin).await?;
            }
        }
        for relay in self.settings.relays.clone() {
            let user = relay_user_id(self.name(), Uin(relay.uin));
            let stored = self.store.logins_of(&user).await?;
            let current = stored.iter().any(|l| {
                l.uin == Uin(relay.uin)
                    && l.password == relay.password
                    && !matches!(relay.protocol, Some(p) if p != l.protocol)
            });
            if current {
                continue;
            }
            for old in stored {
                self.store.delete_login(&user, old.uin).await?;
            }
            let net = self.clone();
            tokio::spawn(async move { net.log_relay_in(user, relay).await });
        }
        Ok(())
    }

    /// Whether `user` is one of this network's configured relay logins.
    pub(crate) fn is_configured_relay(&self, user: &str) -> bool {
        self.settings
            .relays
            .iter()
            .any(|r| relay_user_id(self.name(), Uin(r.uin)) == user)
    }

    async fn log_relay_in(self: Arc<Self>, user: String, relay: RelayConfig) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        while !self.is_stopping() {
            let password = relay.password.clone();
            match self
                .core
                .login(&user, Uin(relay.uin), password, relay.protocol)
                .await
            {
                Ok(reply) => {
                    tracing::info!(network = %self.name(), uin = relay.uin, %reply, "relay login");
                    return;
                }
                Err(CoreError::Qq(
                    e @ (QqError::Unreachable(_) | QqError::Throttled | QqError::Protocol(_)),
                )) => {
                    tracing::warn!(network = %self.name(), uin = relay.uin, error = %e,
                        "relay login failed; retrying");
                }
                Err(e) => {
                    tracing::error!(network = %self.name(), uin = relay.uin, error = %e,
                        "relay login failed; IRC users' messages cannot reach QQ");
                    return;
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// A relay login is up: release what IRC users said meanwhile, learn
    /// the members' QQ nicknames, and connect members' puppets if asked.
    pub(crate) async fn relay_up(&self, user: &str, owner: Uin) {
        if let Err(e) = self.wake_queues().await {
            tracing::error!(network = %self.name(), error = %e, "cannot read the delivery queues");
        }
        for contact in self.core.contacts(user) {
            self.learn_qq_nick(contact.uin, &contact.nick);
        }
        let bridged: Vec<(String, u64)> = self
            .mappings
            .all()
            .into_iter()
            .filter(|m| m.owner == owner)
            .filter_map(|m| match m.chat {
                ChatId::Group(g) => Some((m.channel, g.0)),
                _ => None,
            })
            .collect();
        if bridged.is_empty() {
            return;
        }
        let Ok(session) = self.core.session_of(user) else {
            return;
        };
        let groups = match session.groups().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(network = %self.name(), error = %e, "cannot read the relay's groups");
                return;
            }
        };
        let mut members = Vec::new();
        for group in &groups {
            for member in &group.members {
                self.learn_qq_nick(member.uin, &member.nick);
            }
            for (channel, _) in bridged.iter().filter(|(_, g)| *g == group.number.0) {
                members.extend(
                    group
                        .members
                        .iter()
                        .filter(|m| m.uin != owner)
                        .map(|m| (channel.clone(), m.uin, m.nick.clone())),
                );
            }
        }
        if self.settings.connect_members {
            if let Some(net) = self.myself() {
                tokio::spawn(async move { net.connect_members(members).await });
            }
        }
    }

    /// Connects and joins the puppets of group members, up to the puppet
    /// limit, all through the connect gate (so in small paced batches).
    async fn connect_members(self: Arc<Self>, members: Vec<(String, Uin, String)>) {
        if !self.wait_for_bot().await {
            return;
        }
        let limit = self.settings.max_puppets;
        let tasks = members.into_iter().take(limit).map(|(channel, uin, nick)| {
            let net = self.clone();
            async move {
                let Ok(puppet) = net.puppet(uin, &nick).await else {
                    return;
                };
                puppet.want_channel(&channel);
                let deadline = Instant::now() + MEMBER_CONNECT_WAIT;
                if let Ok(link) = net.puppet_link(&puppet, deadline).await {
                    if let Ok(Err(why)) = link.join(&channel).await {
                        tracing::info!(network = %net.name(), nick = %puppet.nick, %channel, %why,
                            "member puppet cannot join");
                        puppet.note_refusal(&channel);
                    }
                }
            }
        });
        futures::future::join_all(tasks).await;
    }
}
