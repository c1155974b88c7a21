//! The Matrix side in bot mode: the bridge logs in as one ordinary Matrix
//! account with matrix-sdk (no application service, no ghosts), syncs and
//! relays, including in end-to-end encrypted rooms (matrix-sdk's crypto
//! with its SQLite store, so keys survive restarts).
//!
//! Module map:
//! - `mod.rs`: [`start`], [`BotHandle`], the shared `BotMode` state.
//! - `session.rs`: login, the saved session, cross-signing.
//! - `sync.rs`: the sync loop; the sync token is saved only after every
//!   event of a batch was handled, so a crash replays instead of losing.
//! - `inbound.rs`: invites, commands and messages from Matrix to QQ
//!   (each event once: message links de-duplicate a replay).
//! - `deliver.rs`: the [`ChatSide`](crate::core::side::ChatSide): QQ
//!   messages, notices and presence into rooms, with transaction ids
//!   derived from the bridge message id.
//! - `rooms.rs`: portal and bot rooms (created, bound with `bridge`).
//! - `relay.rs`: pure formatting and transaction ids.
//!
//! The side registers under [`SIDE_NAME`](super::SIDE_NAME) like the
//! appservice (only one of them runs) and stores its rooms in the same
//! tables (`portals`, `matrix_rooms`).

mod deliver;
mod inbound;
pub mod relay;
mod rooms;
mod session;
mod sync;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use matrix_sdk::ruma::OwnedUserId;
use matrix_sdk::Client;
use tokio::task::JoinHandle;

use crate::config::{Config, PresenceDisplay};
use crate::core::model::Presence;
use crate::core::BridgeCore;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// matrix-sdk or the homeserver (never contains a secret).
    #[error("{0}")]
    Sdk(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not possible yet (a QQ login is being restored): try again soon.
    #[error("not ready: {0}")]
    NotReady(String),
    /// Nothing will ever make this work (a bad id, a room that is gone).
    #[error("{0}")]
    Permanent(String),
}

impl BotError {
    fn io(path: &Path, source: std::io::Error) -> BotError {
        BotError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn sdk(e: impl std::fmt::Display) -> BotError {
        BotError::Sdk(e.to_string())
    }
}

/// Bot mode settings from the config.
#[derive(Debug, Clone)]
pub(crate) struct BotSettings {
    pub command_prefix: String,
    pub presence_display: PresenceDisplay,
    pub presence_to_qq: bool,
    pub encrypt_portals: bool,
}

/// The shared state of the bot-mode side.
pub(crate) struct BotMode {
    pub core: Arc<BridgeCore>,
    pub store: Arc<dyn Store>,
    pub client: Client,
    pub bot_id: OwnedUserId,
    pub settings: BotSettings,
    /// Serialises room creation, so one chat never gets two rooms.
    room_lock: tokio::sync::Mutex<()>,
    /// The QQ status last set from each user's Matrix presence.
    presence_set: Mutex<HashMap<String, Presence>>,
}

/// A running bot-mode side.
pub struct BotHandle {
    bot: Arc<BotMode>,
    tasks: Vec<JoinHandle<()>>,
}

impl BotHandle {
    /// The bot's Matrix id, for the startup banner.
    pub fn bot_user_id(&self) -> String {
        self.bot.bot_id.to_string()
    }

    /// The bot's device id and Ed25519 fingerprint, for verifying it by
    /// comparing keys.
    pub async fn device_fingerprint(&self) -> Option<(String, String)> {
        let device = self.bot.client.device_id()?.to_string();
        let key = self.bot.client.encryption().ed25519_key().await?;
        Some((device, key))
    }

    /// Stops syncing; the stores keep everything for the next start.
    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for BotHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Logs the bot account in (or restores its login), registers the
/// `matrix` side with the core and starts syncing.
pub async fn start(
    core: Arc<BridgeCore>,
    store: Arc<dyn Store>,
    config: &Config,
) -> Result<BotHandle, BotError> {
    let matrix = &config.matrix;
    let bot_config = matrix
        .bot
        .clone()
        .ok_or_else(|| BotError::Sdk("matrix.bot is missing".to_owned()))?;
    let client = session::client(&matrix.homeserver_url, &bot_config).await?;
    let bot_id = client
        .user_id()
        .ok_or_else(|| BotError::Sdk("the bot is not logged in".to_owned()))?
        .to_owned();
    let bot = Arc::new(BotMode {
        core: core.clone(),
        store,
        client,
        bot_id,
        settings: BotSettings {
            command_prefix: matrix.command_prefix.trim().to_owned(),
            presence_display: bot_config.presence_display,
            presence_to_qq: matrix.presence.to_qq,
            encrypt_portals: bot_config.encrypt_portals,
        },
        room_lock: tokio::sync::Mutex::new(()),
        presence_set: Mutex::new(HashMap::new()),
    });
    core.register_side(Arc::new(deliver::BotSide(Arc::downgrade(&bot))));
    let task = {
        let bot = bot.clone();
        tokio::spawn(async move { bot.run_sync(bot_config).await })
    };
    tracing::info!(bot = %bot.bot_id, "Matrix bot mode started");
    Ok(BotHandle {
        bot,
        tasks: vec![task],
    })
}
