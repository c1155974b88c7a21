//! IRC networks: QQ chats bridged to channels on existing IRC networks,
//! with one puppet connection per active QQ user (see README.md, "IRC
//! networks").
//!
//! Identity model: the side is named `irc`. A bridged channel's IRC users
//! reach QQ through a *relay login*, a QQ account from the network's
//! `relays` that the bridge logs in itself as the bridge user
//! `irc:<network>:relay@<uin>` (or, for a channel bridged at run time, the
//! admin's own login as `irc:<network>:<nick>`). An IRC user who messages
//! the bot `login ...` becomes the bridge user `irc:<network>:<nick>`.
//! Logins go through the core, so its outbox, echo guard and
//! de-duplication apply.
//!
//! Module map:
//! - `mod.rs`: [`start`] and [`NetworksHandle`].
//! - `network`: one network's state and the loop reading its connections.
//! - `link`, `register`, `sasl`, `tls`: one client connection on
//!   `irc::proto` (registration, SASL, TLS, pacing, confirmation).
//! - `pacing`: token buckets and the connect gate.
//! - `bot`: the bot's connection (reads channels, answers commands).
//! - `puppets`, `puppet_life`, `naming`: puppet connections, how they
//!   come and go, and their nicks.
//! - `courier`: the durable, ordered delivery queues both ways.
//! - `inbound`: IRC -> QQ; `commands`: the bot's commands.
//! - `side`: the core's events for this side; `relays`: relay logins.
//! - `mappings`, `settings`, `ids`: configuration and names.

mod bot;
mod commands;
mod courier;
mod ids;
mod inbound;
mod link;
mod mappings;
mod naming;
mod network;
mod pacing;
mod puppet_life;
mod puppets;
mod register;
mod relays;
mod sasl;
mod settings;
mod side;
mod tls;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::config::NetworkConfig;
use crate::core::BridgeCore;
use crate::store::{Store, StoreError};

pub use ids::{person_user_id, relay_user_id, SIDE_NAME};

use network::Network;
use side::NetworksSide;

#[derive(Debug, thiserror::Error)]
pub enum NetworksError {
    #[error("IRC network {network}: TLS: {reason}")]
    Tls { network: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The running networks.
pub struct NetworksHandle {
    networks: Vec<Arc<Network>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Whether `user` is the relay login of a configured network (the bridge
/// logs it in itself, so it needs no `permissions` entry).
pub fn is_relay_user(configs: &[NetworkConfig], user: &str) -> bool {
    configs.iter().any(|net| {
        net.relays
            .iter()
            .any(|r| relay_user_id(&net.name, crate::core::model::Uin(r.uin)) == user)
    })
}

/// Starts every configured network: registers the `irc` chat side, logs
/// the relays in, and connects the bots. Puppets connect when needed.
/// Call before [`BridgeCore::restore_logins`], which restores the relays'
/// stored logins.
pub async fn start(
    core: Arc<BridgeCore>,
    store: Arc<dyn Store>,
    configs: &[NetworkConfig],
) -> Result<NetworksHandle, NetworksError> {
    let mut built = Vec::new();
    for config in configs {
        built.push(Network::new(config, core.clone(), store.clone()).await?);
    }
    let side = NetworksSide {
        networks: built
            .iter()
            .map(|(net, _)| (net.name().to_owned(), Arc::downgrade(net)))
            .collect::<HashMap<_, _>>(),
    };
    core.register_side(Arc::new(side));
    let mut networks = Vec::new();
    let mut tasks = Vec::new();
    for (net, events) in built {
        net.start_relays().await?;
        tasks.push(tokio::spawn(net.clone().run_events(events)));
        tasks.push(tokio::spawn(net.clone().run_bot()));
        tasks.push(tokio::spawn(net.clone().run_sweeper()));
        tracing::info!(network = %net.name(), host = %net.server.host, port = net.server.port,
            tls = net.server.tls.is_some(), "IRC network configured");
        networks.push(net);
    }
    Ok(NetworksHandle { networks, tasks })
}

impl NetworksHandle {
    /// Names of the networks, for the startup banner.
    pub fn names(&self) -> Vec<String> {
        self.networks.iter().map(|n| n.name().to_owned()).collect()
    }

    /// Whether a network's bot is connected (for tests and status).
    pub fn is_connected(&self, network: &str) -> bool {
        self.networks
            .iter()
            .any(|n| n.name() == network && n.bot_link().is_some())
    }

    /// The bot's current nick on a network.
    pub fn bot_nick(&self, network: &str) -> Option<String> {
        self.networks
            .iter()
            .find(|n| n.name() == network)
            .and_then(|n| n.bot_link())
            .map(|l| l.nick())
    }

    /// Disconnects the bots and every puppet (QUIT); queued messages stay
    /// in the store for the next start.
    pub async fn shutdown(&self) {
        for net in &self.networks {
            net.stop();
        }
        for net in &self.networks {
            net.quit_puppets("Bridge shutting down").await;
            if let Some(bot) = net.bot_link() {
                bot.quit("Bridge shutting down").await;
            }
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}
