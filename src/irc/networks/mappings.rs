//! Which channel carries which QQ chat, through which relay login: the
//! config's mappings plus those made at run time with `bridge`, which are
//! stored as portals (owner = relay's QQ number, side `irc:<network>`,
//! target = channel) and so survive a restart.

use std::sync::RwLock;

use crate::core::model::{ChatId, Uin};
use crate::core::text::irc_lowercase;
use crate::store::{Portal, Store, StoreError};

use super::ids::{network_scope, relay_user_id};
use super::settings::Settings;

/// One bridged channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub channel: String,
    /// The relay login's QQ number (the portal owner).
    pub owner: Uin,
    pub chat: ChatId,
    /// The bridge user whose login relays IRC users' messages.
    pub relay_user: String,
    /// From the config file: `unbridge` cannot remove it.
    pub from_config: bool,
}

#[derive(Default)]
pub(crate) struct Mappings {
    list: RwLock<Vec<Mapping>>,
}

impl Mappings {
    /// The config's mappings and the stored ones. A stored mapping whose
    /// relay is no longer known (login gone) is skipped with a warning.
    pub async fn load(settings: &Settings, store: &dyn Store) -> Result<Mappings, StoreError> {
        let mut list: Vec<Mapping> = settings
            .channels
            .iter()
            .map(|c| Mapping {
                channel: c.channel.clone(),
                owner: c.relay,
                chat: c.chat,
                relay_user: relay_user_id(&settings.name, c.relay),
                from_config: true,
            })
            .collect();
        let side = network_scope(&settings.name);
        let logins = store.logins().await?;
        for portal in store.portals(&side).await? {
            let folded = irc_lowercase(&portal.target);
            if list.iter().any(|m| irc_lowercase(&m.channel) == folded) {
                continue;
            }
            let relay_user = if settings.relays.iter().any(|r| r.uin == portal.owner.0) {
                Some(relay_user_id(&settings.name, portal.owner))
            } else {
                logins
                    .iter()
                    .find(|l| l.uin == portal.owner && l.user.starts_with(&format!("{side}:")))
                    .map(|l| l.user.clone())
            };
            let Some(relay_user) = relay_user else {
                tracing::warn!(network = %settings.name, channel = %portal.target, owner = %portal.owner,
                    "a bridged channel's relay login is gone; it stays unbridged");
                continue;
            };
            list.push(Mapping {
                channel: portal.target,
                owner: portal.owner,
                chat: portal.chat,
                relay_user,
                from_config: false,
            });
        }
        Ok(Mappings {
            list: RwLock::new(list),
        })
    }

    fn read(&self) -> Vec<Mapping> {
        self.list.read().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn all(&self) -> Vec<Mapping> {
        self.read()
    }

    /// Channels where `owner`'s chat appears.
    pub fn channels_for(&self, owner: Uin, chat: &ChatId) -> Vec<String> {
        self.read()
            .into_iter()
            .filter(|m| m.owner == owner && m.chat == *chat)
            .map(|m| m.channel)
            .collect()
    }

    /// Whether any relay bridges `chat` on this network.
    pub fn is_bridged(&self, chat: &ChatId) -> bool {
        self.read().iter().any(|m| m.chat == *chat)
    }

    pub fn by_channel(&self, channel: &str) -> Option<Mapping> {
        let folded = irc_lowercase(channel);
        self.read()
            .into_iter()
            .find(|m| irc_lowercase(&m.channel) == folded)
    }

    /// Adds a runtime mapping and stores it.
    pub async fn add(
        &self,
        store: &dyn Store,
        network: &str,
        m: Mapping,
    ) -> Result<(), StoreError> {
        store
            .save_portal(&Portal {
                owner: m.owner,
                chat: m.chat,
                side: network_scope(network),
                target: m.channel.clone(),
            })
            .await?;
        if let Ok(mut list) = self.list.write() {
            list.push(m);
        }
        Ok(())
    }

    /// Removes a runtime mapping from memory and the store.
    pub async fn remove(
        &self,
        store: &dyn Store,
        network: &str,
        m: &Mapping,
    ) -> Result<(), StoreError> {
        store
            .delete_portal(m.owner, &m.chat, &network_scope(network))
            .await?;
        if let Ok(mut list) = self.list.write() {
            list.retain(|x| x != m);
        }
        Ok(())
    }
}
